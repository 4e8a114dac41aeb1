//! The monitor as a library: checks, thresholds, reporting and webhooks, driven by `run`.

pub mod alerting;
pub mod checks;
pub mod cli;
pub mod report;
pub mod thresholds;
pub mod webhook;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use checks::Target;
use cli::{CheckArgs, Cli, Command};
use report::{CheckResult, PassReport, State, worst};
use thresholds::{Overrides, Thresholds};

/// Runs the command line; returns the exit code.
pub async fn run(cli: Cli) -> u8 {
    let json = cli.json;
    match cli.command {
        Command::Check(args) => match prepare(&args) {
            Ok((client, target, thresholds)) => {
                let results = checks::run_pass(&client, &target, &thresholds).await;
                print_pass(&target.url, &results, json, None);
                worst(&results).exit_code()
            }
            Err(message) => unknown("config", &message, json),
        },
        Command::Watch {
            check,
            interval,
            webhook,
            webhook_timeout,
            webhook_attempts,
            passes,
            failure_threshold,
            success_threshold,
            reminder,
            no_send_on_resolved,
            maintenance,
        } => match prepare(&check).and_then(|prepared| {
            // Flags over stack.yaml's `monitor.alerting` over the defaults.
            let stack_file = check.stack.clone().unwrap_or_else(|| PathBuf::from(stack::DEFAULT_FILE));
            let section = if check.stack.is_some() || stack_file.exists() {
                stack::ToolSections::load(&stack_file).map_err(|e| e.one_line())?.monitor.alerting
            } else {
                stack::Alerting::default()
            };
            if reminder.is_some_and(|r| r.as_secs() < 60) {
                return Err("--reminder under 1m would page every pass: give at least 1m, e.g. --reminder 30m".into());
            }
            let mut windows = Vec::new();
            for w in if maintenance.is_empty() { &section.maintenance } else { &maintenance } {
                windows.extend(alerting::Window::parse(w)?);
            }
            let rules = alerting::Rules {
                failure_threshold: failure_threshold.unwrap_or(section.failure_threshold).max(1),
                success_threshold: success_threshold.unwrap_or(section.success_threshold).max(1),
                reminder: reminder.or(section.reminder.as_ref().map(stack::HumanDuration::get)),
                send_on_resolved: section.send_on_resolved && !no_send_on_resolved,
                maintenance: windows,
            };
            Ok((prepared, rules))
        }) {
            Ok(((client, target, thresholds), rules)) => {
                let delivery = webhook::Delivery {
                    attempts: webhook_attempts.max(1),
                    timeout: webhook_timeout,
                    ..Default::default()
                };
                let hook = webhook.map(|url| (url, delivery));
                watch(client, target, thresholds, json, Watching { interval, webhook: hook, passes, rules }).await
            }
            Err(message) => unknown("config", &message, json),
        },
    }
}

/// A command line clap refused (its message as clap renders it): UNKNOWN (3), with its first
/// line as the reason.
pub fn usage_error(clap_message: &str, json: bool) -> u8 {
    let first = clap_message.lines().next().unwrap_or_default();
    unknown("usage", first.trim_start_matches("error: "), json)
}

/// Bad configuration is UNKNOWN (3): the check could not run.
fn unknown(check: &'static str, message: &str, json: bool) -> u8 {
    let result = CheckResult::new(check, State::Unknown, message);
    print_pass("", std::slice::from_ref(&result), json, None);
    State::Unknown.exit_code()
}

fn prepare(args: &CheckArgs) -> Result<(reqwest::Client, Target, Thresholds), String> {
    let overrides = Overrides {
        cpu_warning: args.cpu_warning,
        cpu_critical: args.cpu_critical,
        memory_warning: args.memory_warning,
        memory_critical: args.memory_critical,
        latency_warning: args.latency_warning,
        latency_critical: args.latency_critical,
        certificate_warning_days: args.certificate_warning_days,
        certificate_critical_days: args.certificate_critical_days,
    };
    let stack_file = args.stack.clone().unwrap_or_else(|| PathBuf::from(stack::DEFAULT_FILE));
    let thresholds = Thresholds::resolve(&overrides, &stack_file, args.stack.is_some()).map_err(|e| e.to_string())?;
    let mut url = args.url.as_deref().unwrap_or_default().trim().trim_end_matches('/').to_owned();
    // `-H HOST[:PORT]`, as Nagios plugins take a host.
    if !url.is_empty() && !url.contains("://") {
        url = format!("http://{url}");
    }
    if url.is_empty() {
        return Err("no service URL: pass --url or set API_URL (e.g. API_URL=http://127.0.0.1:4000)".into());
    }
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(format!("the URL \"{url}\" must start with http:// or https://"));
    }
    let mut builder = reqwest::Client::builder()
        .user_agent(concat!("konnichiwa-monitor/", env!("CARGO_PKG_VERSION")))
        // The certificate check reads the certificate the server presented.
        .tls_info(true);
    if let Some(path) = &args.ca_cert {
        let pem = std::fs::read(path).map_err(|e| format!("--ca-cert {}: {e}", path.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| format!("--ca-cert {}: not PEM certificates ({e})", path.display()))?;
        if certs.is_empty() {
            return Err(format!(
                "--ca-cert {}: holds no certificate (expected -----BEGIN CERTIFICATE----- blocks)",
                path.display()
            ));
        }
        builder = builder.tls_certs_merge(certs);
    }
    let api_key = std::env::var("API_KEY").ok().filter(|k| !k.is_empty());
    if api_key.is_some() {
        stack::net::check_key_transport(
            &url,
            args.send_key_over_http,
            "--send-key-over-http (or set SEND_KEY_OVER_HTTP=1)",
        )?;
    }
    let client = builder.build().map_err(|e| format!("cannot build the HTTP client: {e}"))?;
    Ok((client, Target { url, api_key, timeout: args.timeout }, thresholds))
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

fn print_pass(url: &str, results: &[CheckResult], json: bool, stamp: Option<&str>) {
    if json {
        let state = worst(results);
        let report =
            PassReport { url, state, exit_code: state.exit_code(), checks: results, checked_at_unix_ms: now_ms() };
        println!("{}", serde_json::to_string(&report).unwrap_or_default());
    } else {
        match stamp {
            Some(s) => {
                for r in results {
                    println!("{s} {}", r.line());
                }
            }
            None => print!("{}", report::plugin_output(results)),
        }
    }
}

/// How `watch` repeats its pass and whom it tells.
struct Watching {
    interval: std::time::Duration,
    webhook: Option<(String, webhook::Delivery)>,
    passes: Option<u64>,
    rules: alerting::Rules,
}

async fn watch(client: reqwest::Client, target: Target, thresholds: Thresholds, json: bool, how: Watching) -> u8 {
    let Watching { interval, webhook, passes, rules } = how;
    let mut alerting = alerting::Alerting::new(rules);
    let mut previous: HashMap<&'static str, State> = HashMap::new();
    let mut deliveries = Vec::new();
    let mut last = State::Ok;
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let shutdown = app::shutdown::signal();
    tokio::pin!(shutdown);
    let mut pass = 0u64;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            () = &mut shutdown => break,
        }
        let results = checks::run_pass(&client, &target, &thresholds).await;
        last = worst(&results);
        let first = pass == 0;
        let changed: Vec<CheckResult> =
            results.iter().filter(|r| previous.get(r.check) != Some(&r.state)).cloned().collect();
        for r in &results {
            previous.insert(r.check, r.state);
        }
        if first {
            print_pass(&target.url, &results, json, None);
        } else if !changed.is_empty() {
            let stamp = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
            print_pass(&target.url, &changed, json, Some(&stamp));
        }
        // Sent: what the alerting rules confirm (by default every change, and a first pass's
        // problems), and reminders; nothing in a maintenance window.
        let notices = alerting.observe(&results, SystemTime::now());
        if let (Some((url, delivery)), false) = (&webhook, notices.is_empty()) {
            let body = webhook::message(&target.url, last, &notices);
            deliveries.push(webhook::send(client.clone(), url.clone(), body, *delivery));
        }
        deliveries.retain(|d| !d.is_finished());
        pass += 1;
        if passes.is_some_and(|n| pass >= n) {
            break;
        }
    }
    // Let deliveries in flight finish (each is bounded by its own timeout and retries).
    for d in deliveries {
        let _ = d.await;
    }
    last.exit_code()
}
