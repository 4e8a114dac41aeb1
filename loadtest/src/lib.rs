//! The load generator as a library: scenario, engine, statistics, SLO gate and reports, driven by
//! `run`, which returns the exit code.

pub mod cli;
pub mod engine;
pub mod live;
pub mod report;
pub mod scenario;
pub mod slo;
pub mod stats;
pub mod tls;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cli::{Cli, Command, OutputArgs, RunArgs};
use engine::{Model, RunPlan};
use report::json::{ReportDoc, document, stats_of};
use serde_json::json;
use stats::RunStats;

/// Exit codes, documented in `--help` and the README.
pub mod exit {
    pub const MET: u8 = 0;
    pub const FAILED: u8 = 1;
    pub const SLO_MISSED: u8 = 3;
    /// Interrupted (SIGINT/SIGTERM): the report covers the time until then, but an interrupted
    /// run is never a pass (128 + SIGINT, as shells report it).
    pub const INTERRUPTED: u8 = 130;
}

pub async fn run(cli: Cli) -> u8 {
    let result = match cli.command {
        Some(Command::Merge { files, output }) => merge(&files, &output, cli.run.stack.as_deref()),
        None => load(cli.run).await,
    };
    match result {
        Ok(doc) => {
            if doc.interrupted {
                exit::INTERRUPTED
            } else if doc.slo_met {
                exit::MET
            } else {
                exit::SLO_MISSED
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            exit::FAILED
        }
    }
}

/// The stack file's `slo:` and `loadtest:` sections (only those are read and checked): from the
/// file named, or ./stack.yaml when present.
fn stack_file(named: Option<&Path>) -> Result<Option<stack::ToolSections>, String> {
    match named {
        Some(p) => stack::ToolSections::load(p).map(Some).map_err(|e| e.to_string()),
        None if Path::new(stack::DEFAULT_FILE).exists() => {
            stack::ToolSections::load(stack::DEFAULT_FILE).map(Some).map_err(|e| e.to_string())
        }
        None => Ok(None),
    }
}

fn objectives(output: &OutputArgs, stack: Option<&stack::ToolSections>) -> Vec<slo::Objective> {
    if !output.slos.is_empty() {
        return output.slos.clone();
    }
    slo::from_stack(&stack.map(|s| s.slo.clone()).unwrap_or_default())
}

async fn load(args: RunArgs) -> Result<ReportDoc, String> {
    let stack = stack_file(args.stack.as_deref())?;
    let section = stack.as_ref().and_then(|s| s.loadtest.clone()).unwrap_or_default();
    let host = args
        .host
        .clone()
        .ok_or("--host is required (or LOADTEST_HOST): the service's URL, e.g. http://127.0.0.1:4000")?;
    let ca_certs = match &args.ca_cert {
        Some(path) => tls::read_ca_file(path)?,
        None => Vec::new(),
    };
    let target = engine::resolve(&host, &ca_certs).await?;
    let duration =
        args.duration.or(section.duration.as_ref().map(stack::HumanDuration::get)).unwrap_or(Duration::from_secs(60));
    if duration.is_zero() {
        return Err("--duration must be longer than 0s".into());
    }
    let endpoints = if !args.endpoints.is_empty() {
        args.endpoints.clone()
    } else if !section.endpoints.is_empty() {
        section
            .endpoints
            .iter()
            .map(|e| scenario::Endpoint { path: e.path.clone(), weight: e.weight, auth: e.auth })
            .collect()
    } else {
        scenario::default_mix()
    };
    let api_key = std::env::var("API_KEY").ok().filter(|k| !k.is_empty());
    if endpoints.iter().any(|e| e.auth) && api_key.is_none() {
        return Err("the mix includes /inspect or /metrics but API_KEY is not set: export it, put it in .env, or pass --endpoint to choose the mix".into());
    }
    let model = match args.rate {
        Some(rate) => {
            Model::Open { rate, connections: args.connections.unwrap_or(((rate / 10.0).ceil() as u32).clamp(10, 1000)) }
        }
        None => {
            let users = args.users.or(section.users).unwrap_or(10);
            if users == 0 {
                return Err("--users must be at least 1".into());
            }
            let spawn_rate = args.spawn_rate.or(section.spawn_rate).unwrap_or(f64::from(users));
            if spawn_rate <= 0.0 || !spawn_rate.is_finite() {
                return Err("--spawn-rate must be a positive number of users per second".into());
            }
            Model::Closed { users, spawn_rate, think_time: args.think_time }
        }
    };
    let model_json = match &model {
        Model::Closed { users, spawn_rate, think_time } => json!({
            "kind": "closed", "users": users, "spawn_rate": spawn_rate,
            "think_time": think_time.map(|(a, b)| [a.as_secs_f64(), b.as_secs_f64()]),
        }),
        Model::Open { rate, connections } => json!({ "kind": "open", "rate": rate, "connections": connections }),
    };
    let offered = match &model {
        Model::Open { rate, .. } => Some(*rate),
        Model::Closed { .. } => None,
    };
    for o in objectives(&args.output, stack.as_ref()) {
        if let Some(why) = slo::cannot_show(&o, offered) {
            eprintln!("note: {why}: it will be reported as not judged");
        }
    }
    let started = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
    let plan = RunPlan { target: target.clone(), model, duration, timeout: args.timeout, endpoints, api_key };
    let stop = interruption();
    let stats = engine::run(plan, live::Progress::new(args.quiet), stop.clone()).await?;
    let interrupted = stop.requested().then_some(duration);
    let run = Run {
        target: &target.url,
        model: model_json,
        started,
        generator: Some(report::Generator::measure()),
        interrupted,
    };
    finish(&run, &stats, &args.output, stack.as_ref())
}

/// The first SIGINT or SIGTERM stops the load and lets the run write its reports (as k6, locust
/// and oha do); a second one exits at once. Returns the engine's stop, which also says whether
/// it came.
fn interruption() -> engine::Stop {
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) else { return };
        let mut signal = async || {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        };
        signal().await;
        let _ = tx.send(true);
        eprintln!("\ninterrupted: stopping the load and writing the report (interrupt again to quit at once)");
        signal().await;
        std::process::exit(i32::from(exit::INTERRUPTED));
    });
    engine::Stop::new(rx)
}

fn merge(files: &[PathBuf], output: &OutputArgs, stack_path: Option<&Path>) -> Result<ReportDoc, String> {
    let stack = stack_file(stack_path)?;
    let mut merged = RunStats::default();
    let mut targets = Vec::new();
    let mut started = u64::MAX;
    for f in files {
        let text = std::fs::read_to_string(f).map_err(|e| format!("cannot read {}: {e}", f.display()))?;
        let doc: ReportDoc =
            serde_json::from_str(&text).map_err(|e| format!("{}: not a loadtest result ({e})", f.display()))?;
        let stats = stats_of(&doc).map_err(|e| format!("{}: {e}", f.display()))?;
        merged.merge(&stats);
        if !targets.contains(&doc.target) {
            targets.push(doc.target.clone());
        }
        started = started.min(doc.started_at_unix_ms);
    }
    let target = targets.join(", ");
    let run = Run {
        target: &target,
        model: json!({ "kind": "merged", "runs": files.len() }),
        started,
        generator: None,
        interrupted: None,
    };
    finish(&run, &merged, output, stack.as_ref())
}

/// What a report says about the run besides its measurements.
struct Run<'a> {
    target: &'a str,
    model: serde_json::Value,
    started: u64,
    generator: Option<report::Generator>,
    /// The planned duration, when an interrupt cut the run short.
    interrupted: Option<Duration>,
}

fn finish(
    run: &Run,
    stats: &RunStats,
    output: &OutputArgs,
    stack: Option<&stack::ToolSections>,
) -> Result<ReportDoc, String> {
    let offered = run.model.get("rate").and_then(serde_json::Value::as_f64);
    let verdicts = slo::evaluate(&objectives(output, stack), &stats.total(), stats.rps(), offered);
    let mut doc = document(run.target, run.model.clone(), run.started, stats, verdicts, run.generator);
    doc.interrupted = run.interrupted.is_some();
    doc.planned_seconds = run.interrupted.map(|d| d.as_secs_f64());
    print!("{}", report::text::render(&doc));
    let write = |path: &Path, text: String| {
        std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
    };
    if let Some(path) = &output.json {
        write(path, serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?)?;
    }
    if let Some(path) = &output.html {
        write(path, report::html::render(&doc))?;
    }
    if let Some(prefix) = &output.csv {
        report::csv::write(prefix, &doc).map_err(|e| format!("cannot write {prefix}_stats*.csv: {e}"))?;
    }
    Ok(doc)
}
