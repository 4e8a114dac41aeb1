//! `monitor check` and `monitor/monitor.sh` against the real app on port 0 and a fake app that
//! answers chosen figures: every state and failure mode, and on each the two implementations
//! print the same bytes (the measured latency aside) and exit with the same code.

mod common;

use std::process::Output;
use std::time::Duration;

use common::{Inspect, KEY, container, fake_app, fake_app_tls, healthy, monitor, monitor_sh, real_app, report, stdout};

/// A threshold given both ways: (binary flag, its value, monitor.sh variable, its value).
type Setting<'a> = (&'a str, &'a str, &'a str, &'a str);

/// Thresholds at 100% keep the real-app tests independent of how busy this machine is; the
/// threshold logic itself is driven by the fake app below.
const CALM: &[Setting<'static>] = &[
    ("--cpu-warning", "100", "CPU_WARNING", "100"),
    ("--cpu-critical", "100", "CPU_CRITICAL", "100"),
    ("--memory-warning", "100", "MEMORY_WARNING", "100"),
    ("--memory-critical", "100", "MEMORY_CRITICAL", "100"),
];

/// The measured latency is the one figure two runs cannot share: `in N ms` and
/// `health_latency=Ns` become `#`.
fn mask_latency(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        let next = [("in ", " ms"), ("health_latency=", "s;")]
            .iter()
            .filter_map(|(before, after)| {
                let at = rest.find(before)?;
                let digits_from = at + before.len();
                let len = rest[digits_from..].find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
                (len > 0 && rest[digits_from + len..].starts_with(after)).then_some((at, digits_from, len))
            })
            .min_by_key(|(at, _, _)| *at);
        match next {
            Some((_, from, len)) => {
                out.push_str(&rest[..from]);
                out.push('#');
                rest = &rest[from + len..];
            }
            None => {
                out.push_str(rest);
                break;
            }
        }
    }
    out
}

/// Runs both implementations with the same settings; asserts the same exit code and the same
/// bytes; returns the binary's output.
async fn both(url: &str, key: Option<&str>, settings: &[Setting<'_>], extra_flags: &[&str]) -> Output {
    let mut args = vec!["check", "--url", url];
    let mut env = Vec::new();
    for (flag, value, var, env_value) in settings {
        args.extend([*flag, *value]);
        env.push((*var, *env_value));
    }
    args.extend_from_slice(extra_flags);
    let bin = monitor(&args, key).await;
    let sh = monitor_sh(url, key, &env).await;
    assert_eq!(
        mask_latency(&stdout(&bin)),
        mask_latency(&stdout(&sh)),
        "monitor and monitor.sh differ (stderr of monitor.sh: {})",
        String::from_utf8_lossy(&sh.stderr)
    );
    assert_eq!(bin.status.code(), sh.status.code(), "exit codes differ:\n{}", stdout(&bin));
    bin
}

#[test]
fn the_latency_mask_touches_only_the_latency() {
    let line = "OK - health: 200 in 12 ms | health_latency=0.012s;0.5;2;0 cpu_used=5%;70;90;0;100\n";
    assert_eq!(mask_latency(line), "OK - health: 200 in # ms | health_latency=#s;0.5;2;0 cpu_used=5%;70;90;0;100\n");
}

/// monitor.sh with `args`, no API_URL in its environment, and thresholds a busy test machine
/// does not reach (`CALM`).
async fn monitor_sh_args(args: &[&str]) -> Output {
    tokio::process::Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/monitor.sh"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(CALM.iter().map(|s| (s.2, s.3)))
        .env("API_KEY", KEY)
        .current_dir(std::env::temp_dir())
        .output()
        .await
        .expect("run monitor.sh")
}

#[tokio::test]
async fn monitor_sh_takes_url_and_help_and_refuses_what_it_does_not_know() {
    let app = real_app().await;
    let url = app.url();
    let checked = monitor_sh_args(&["--url", &url]).await;
    assert_eq!(checked.status.code(), Some(0), "--url names the service: {}", stdout(&checked));
    assert!(stdout(&checked).starts_with("OK - health: 200 in "), "{}", stdout(&checked));
    let by_host = monitor_sh_args(&["-H", url.trim_start_matches("http://")]).await;
    assert_eq!(by_host.status.code(), Some(0), "-H HOST:PORT as the binary takes it: {}", stdout(&by_host));
    let help = monitor_sh_args(&["--help"]).await;
    assert_eq!(help.status.code(), Some(0));
    assert!(stdout(&help).starts_with("Usage: monitor.sh [--url|-H URL]"), "{}", stdout(&help));
    for args in [&["--bogus"][..], &["--url"][..]] {
        let refused = monitor_sh_args(args).await;
        assert_eq!(refused.status.code(), Some(3), "{args:?}");
        assert!(stdout(&refused).starts_with("UNKNOWN - "), "a plugin's UNKNOWN line first: {}", stdout(&refused));
    }
}

#[tokio::test]
async fn the_real_app_is_ok_and_the_first_line_is_the_summary() {
    let app = real_app().await;
    let url = app.url();
    // Live figures change between two runs: the byte comparison is the fake app's (below).
    let args: Vec<&str> =
        ["check", "--url", url.as_str()].into_iter().chain(CALM.iter().flat_map(|s| [s.0, s.1])).collect();
    let out = monitor(&args, Some(KEY)).await;
    let env: Vec<(&str, &str)> = CALM.iter().map(|s| (s.2, s.3)).collect();
    let sh = monitor_sh(&url, Some(KEY), &env).await;
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert_eq!(sh.status.code(), Some(0), "{}", stdout(&sh));
    let heads = |t: &str| t.lines().map(|l| l.split(" - ").next().unwrap_or_default().to_owned()).collect::<Vec<_>>();
    assert_eq!(heads(&text), heads(&stdout(&sh)));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(lines[0].starts_with("OK - health: 200 in "), "{text}");
    assert!(
        lines[0].contains("| health_latency=") && lines[0].contains(" cpu_used=") && lines[0].contains(" memory_used="),
        "all perfdata on line 1: {text}"
    );
    assert!(lines[1].starts_with("OK: health - 200 in ") && !lines[1].contains('|'), "{text}");
    assert!(lines[2].starts_with("OK: cpu - CPU "), "{text}");
    assert!(lines[3].starts_with("OK: memory - memory ") && lines[3].contains("of the host's"), "{text}");
}

#[tokio::test]
async fn a_wrong_key_or_none_is_unknown_and_says_so() {
    let app = real_app().await;
    let url = app.url();
    let out = both(&url, Some("not-the-key-at-all"), CALM, &[]).await;
    assert_eq!(out.status.code(), Some(3));
    assert!(stdout(&out).starts_with("UNKNOWN - inspect: the service refused the API key (401)"), "{}", stdout(&out));
    let no_key = both(&url, None, CALM, &[]).await;
    assert_eq!(no_key.status.code(), Some(3));
    assert!(stdout(&no_key).contains("UNKNOWN: inspect - API_KEY is not set"), "{}", stdout(&no_key));
}

#[tokio::test]
async fn a_stopped_app_is_critical() {
    let app = real_app().await;
    let url = app.url();
    drop(app);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let out = both(&url, Some(KEY), &[], &[]).await;
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(2), "CRITICAL outranks the UNKNOWN of /inspect: {text}");
    assert!(text.starts_with("CRITICAL - health: cannot connect to"), "{text}");
    assert!(text.contains("\nUNKNOWN: inspect - cannot connect to"), "{text}");
}

#[tokio::test]
async fn each_threshold_state_leads_with_its_reason() {
    // (container memory %, container CPU %, expected exit, expected first line up to the perfdata)
    let table: &[(f64, Option<f64>, i32, &str)] = &[
        (
            50.0,
            Some(10.0),
            0,
            "OK - health: 200 in # ms; CPU 10% of the container's 0.25 vCPU limit; memory 50% of the container's 256 MiB limit",
        ),
        (82.0, Some(10.0), 1, "WARNING - memory 82% of the container's 256 MiB limit > 70%"),
        (95.0, Some(10.0), 2, "CRITICAL - memory 95% of the container's 256 MiB limit > 90%"),
        (10.0, Some(75.0), 1, "WARNING - CPU 75% of the container's 0.25 vCPU limit > 70%"),
        (10.0, Some(91.0), 2, "CRITICAL - CPU 91% of the container's 0.25 vCPU limit > 90%"),
        (95.0, Some(75.0), 2, "CRITICAL - memory 95% of the container's 256 MiB limit > 90%"),
    ];
    for (memory, cpu, code, first) in table {
        let mut r = report();
        r.container = Some(container(*memory, *cpu));
        let (server, _) = fake_app(healthy(r)).await;
        let out = both(&server.url(), Some(KEY), &[], &[]).await;
        let text = mask_latency(&stdout(&out));
        assert_eq!(out.status.code(), Some(*code), "{first}: {text}");
        assert_eq!(text.lines().next().and_then(|l| l.split(" | ").next()), Some(*first), "{text}");
        let perf = format!(
            " | health_latency=#s;0.5;2;0 cpu_used={}%;70;90;0;100 memory_used={memory}%;70;90;0;100",
            cpu.unwrap_or(0.0)
        );
        assert!(text.lines().next().is_some_and(|l| l.ends_with(&perf)), "{perf}\n{text}");
    }
}

#[tokio::test]
async fn host_figures_are_used_outside_a_container_and_flags_set_thresholds() {
    let mut r = report();
    r.container = None;
    r.cpu.used_percent = Some(40.0);
    r.memory.used_percent = 75.0;
    let (server, _) = fake_app(healthy(r)).await;
    let settings: &[Setting] = &[
        ("--cpu-warning", "30", "CPU_WARNING", "30"),
        ("--cpu-critical", "50", "CPU_CRITICAL", "50"),
        ("--memory-warning", "80", "MEMORY_WARNING", "80"),
    ];
    let out = both(&server.url(), Some(KEY), settings, &[]).await;
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.starts_with("WARNING - CPU 40% of the host's"), "{text}");
    assert!(text.contains("\nOK: memory - memory 75% of the host's"), "{text}");
}

#[tokio::test]
async fn no_cpu_sample_yet_is_unknown() {
    let mut r = report();
    r.container = None;
    r.cpu.used_percent = None;
    let (server, _) = fake_app(healthy(r)).await;
    let out = both(&server.url(), Some(KEY), &[], &[]).await;
    assert_eq!(out.status.code(), Some(3));
    assert!(stdout(&out).contains("UNKNOWN: cpu - no CPU figure yet"), "{}", stdout(&out));
}

#[tokio::test]
async fn slow_health_warns_then_times_out() {
    let mut b = healthy(report());
    b.health_delay = Duration::from_millis(300);
    let (server, _) = fake_app(b).await;
    let url = server.url();
    let mut settings = CALM.to_vec();
    settings.push(("--latency-warning", "100ms", "LATENCY_WARNING", "0.1"));
    let out = both(&url, Some(KEY), &settings, &[]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).starts_with("WARNING - health: 200 in 3"), "{}", stdout(&out));
    assert!(stdout(&out).contains(" >= 0.1s"), "{}", stdout(&out));

    let mut settings = CALM.to_vec();
    settings.push(("--timeout", "150ms", "TIMEOUT", "0.15"));
    let out = both(&url, Some(KEY), &settings, &[]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stdout(&out).contains("CRITICAL: health - no answer from") && stdout(&out).contains("within 0.15s"),
        "{}",
        stdout(&out)
    );
}

#[tokio::test]
async fn failing_and_malformed_answers_are_distinct() {
    let (server, shared) = fake_app(healthy(report())).await;
    let url = server.url();
    let cases: &[(Inspect, u16, i32, &str)] = &[
        (Inspect::Malformed, 200, 3, "UNKNOWN: inspect - malformed /inspect answer; is http"),
        (Inspect::Status(500), 200, 3, "UNKNOWN: inspect - GET /inspect answered 500\n"),
        (Inspect::Report(Box::new(report())), 503, 2, "CRITICAL: health - GET /health answered 503 in "),
    ];
    for (inspect, health_status, code, fragment) in cases {
        {
            let mut b = shared.lock().expect("lock");
            b.inspect = inspect.clone();
            b.health_status = *health_status;
        }
        let out = both(&url, Some(KEY), CALM, &[]).await;
        assert_eq!(out.status.code(), Some(*code), "{fragment}: {}", stdout(&out));
        assert!(stdout(&out).contains(fragment), "{fragment}: {}", stdout(&out));
    }
}

#[tokio::test]
async fn inconsistent_thresholds_are_unknown_from_both() {
    let (server, _) = fake_app(healthy(report())).await;
    let cases: &[(&[Setting], &str)] = &[
        (
            &[("--cpu-warning", "0", "CPU_WARNING", "0"), ("--memory-critical", "1", "MEMORY_CRITICAL", "1")],
            "UNKNOWN - config: memory warning 70% is above its critical 1%: warning must not exceed critical\n",
        ),
        (
            &[("--cpu-warning", "95", "CPU_WARNING", "95")],
            "UNKNOWN - config: CPU warning 95% is above its critical 90%: warning must not exceed critical\n",
        ),
        (
            &[("--latency-warning", "3s", "LATENCY_WARNING", "3")],
            "UNKNOWN - config: latency warning 3s is above its critical 2s: warning must not exceed critical\n",
        ),
    ];
    for (settings, first) in cases {
        let out = both(&server.url(), Some(KEY), settings, &[]).await;
        assert_eq!(out.status.code(), Some(3), "{}", stdout(&out));
        assert!(stdout(&out).starts_with(first), "{}", stdout(&out));
        assert_eq!(stdout(&out).lines().count(), 2, "{}", stdout(&out));
    }
}

#[tokio::test]
async fn a_missing_or_bad_url_is_unknown_and_names_api_url() {
    let out = monitor(&["check"], Some(KEY)).await;
    assert_eq!(out.status.code(), Some(3));
    assert!(stdout(&out).contains("no service URL: pass --url or set API_URL"), "{}", stdout(&out));
    let sh = monitor_sh("", Some(KEY), &[]).await;
    assert_eq!(stdout(&out), stdout(&sh));
    let out = both("ftp://127.0.0.1:4000", Some(KEY), &[], &[]).await;
    assert_eq!(out.status.code(), Some(3));
    assert!(stdout(&out).contains("the URL \"ftp://127.0.0.1:4000\" must start with http://"), "{}", stdout(&out));
}

#[tokio::test]
async fn json_output_has_the_documented_shape() {
    let mut r = report();
    r.container = Some(container(82.0, Some(10.0)));
    let (server, _) = fake_app(healthy(r)).await;
    let out = monitor(&["check", "--url", &server.url(), "--json"], Some(KEY)).await;
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    let mut keys: Vec<&str> = v.as_object().expect("object").keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, ["checked_at_unix_ms", "checks", "exit_code", "state", "url"]);
    assert_eq!(v["state"], "WARNING");
    assert_eq!(v["exit_code"], 1);
    let memory = v["checks"].as_array().expect("checks").iter().find(|c| c["check"] == "memory").expect("memory check");
    assert_eq!(memory["state"], "WARNING");
    assert_eq!(memory["perfdata"][0]["label"], "memory_used");
    assert_eq!(memory["perfdata"][0]["value"], 82.0);
    assert_eq!(memory["perfdata"][0]["warning"], 70.0);
    // `--json` before the subcommand too, as the provisioner takes it.
    let before = monitor(&["--json", "check", "--url", &server.url()], Some(KEY)).await;
    assert_eq!(before.status.code(), Some(1), "{}", stdout(&before));
    let w: serde_json::Value = serde_json::from_slice(&before.stdout).expect("one JSON object, --json first");
    assert_eq!((w["state"].as_str(), w["exit_code"].as_i64()), (Some("WARNING"), Some(1)));
}

#[tokio::test]
async fn usage_errors_are_unknown_not_critical() {
    let out = monitor(&["check", "--bogus"], Some(KEY)).await;
    assert_eq!(out.status.code(), Some(3), "clap's 2 would read as CRITICAL");
    // Nagios shows stdout only: the plugin's line comes first there, clap's usage on stderr.
    assert!(stdout(&out).starts_with("UNKNOWN - usage: unexpected argument '--bogus' found\n"), "{}", stdout(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Usage: monitor check"), "{out:?}");
    let out = monitor(&["chek"], Some(KEY)).await;
    assert_eq!(out.status.code(), Some(3));
    assert!(stdout(&out).starts_with("UNKNOWN - usage: unrecognized subcommand 'chek'"), "{}", stdout(&out));
    let out = monitor(&["check", "--json", "--timeout", "soon"], Some(KEY)).await;
    assert_eq!(out.status.code(), Some(3));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("the JSON promise holds for usage errors");
    assert_eq!((v["state"].as_str(), v["exit_code"].as_i64()), (Some("UNKNOWN"), Some(3)), "{v}");
    assert!(v["checks"][0]["reason"].as_str().is_some_and(|r| r.contains("soon")), "{v}");
}

#[tokio::test]
async fn it_answers_as_a_nagios_plugin_does() {
    for args in [&["-V"][..], &["--version"], &["check", "-V"], &["watch", "--version"]] {
        let out = monitor(args, None).await;
        assert_eq!(out.status.code(), Some(0), "{args:?}: {out:?}");
        assert!(stdout(&out).starts_with("monitor"), "{args:?}: {}", stdout(&out));
    }
    for args in [&["-h"][..], &["check", "-h"]] {
        let out = monitor(args, None).await;
        assert_eq!(out.status.code(), Some(0), "{args:?}");
    }
    let help = stdout(&monitor(&["watch", "--help"], None).await);
    assert!(help.contains("Exit codes: when stopped"), "{help}");
    // -H HOST:PORT, -w/-c the health latency and -t the timeout in bare seconds, as check_http
    // takes them.
    let mut slow = healthy(report());
    slow.health_delay = Duration::from_millis(300);
    let (server, _) = fake_app(slow).await;
    let host = server.url().trim_start_matches("http://").to_owned();
    let calm: Vec<&str> = CALM.iter().flat_map(|(flag, value, _, _)| [*flag, *value]).collect();
    let mut args = vec!["check", "-H", host.as_str(), "-w", "0.1", "-c", "10", "-t", "5"];
    args.extend(&calm);
    let out = monitor(&args, Some(KEY)).await;
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).starts_with("WARNING - health: 200 in 3") && stdout(&out).contains(" >= 0.1s"),
        "{}",
        stdout(&out)
    );
    let mut args = vec!["check", "-H", host.as_str(), "-t", "0.15"];
    args.extend(&calm);
    let out = monitor(&args, Some(KEY)).await;
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(stdout(&out).contains("within 0.15s"), "{}", stdout(&out));
}

#[tokio::test]
async fn a_bad_value_elsewhere_in_the_stack_file_does_not_stop_the_check() {
    let (server, _) = fake_app(healthy(report())).await;
    let dir = std::env::temp_dir().join(format!("konnichiwa-monitor-stack-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("stack.yaml");
    let example = include_str!("../../stack.yaml");
    std::fs::write(&file, example.replace("cidr: 10.40.0.0/16", "cidr: 10.40.0.0/33")).expect("write");
    let path = file.to_string_lossy().into_owned();
    let out = monitor(&["check", "--url", &server.url(), "--stack", &path], Some(KEY)).await;
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    std::fs::write(&file, example.replace("cpu_warning_percent: 70", "cpu_warning_percent: 95")).expect("write");
    let out = monitor(&["check", "--url", &server.url(), "--stack", &path], Some(KEY)).await;
    assert_eq!(out.status.code(), Some(3), "{}", stdout(&out));
    let first = stdout(&out).lines().next().unwrap_or_default().to_owned();
    assert!(first.starts_with("UNKNOWN - config: ") && first.contains("monitor.cpu_warning_percent"), "{first}");
    std::fs::remove_dir_all(&dir).expect("clean up");
}

#[tokio::test]
async fn the_stack_comes_from_konnichiwa_stack_with_its_overlays() {
    let mut r = report();
    r.container = Some(container(10.0, Some(10.0)));
    let (server, _) = fake_app(healthy(r)).await;
    let dir = std::env::temp_dir().join(format!("konnichiwa-monitor-overlay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("stack.yaml"), include_str!("../../stack.yaml")).expect("base");
    std::fs::write(
        dir.join("stack.prod.yaml"),
        "extends: stack.yaml\nname: konnichiwa-prod\nmonitor: { cpu_warning_percent: 5 }\n",
    )
    .expect("overlay");
    let out = tokio::process::Command::new(common::BIN)
        .args(["check", "--url", &server.url()])
        .env_clear()
        .env("API_KEY", KEY)
        .env("KONNICHIWA_STACK", dir.join("stack.prod.yaml"))
        .current_dir(std::env::temp_dir())
        .output()
        .await
        .expect("monitor");
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).starts_with("WARNING - CPU 10% of the container's 0.25 vCPU limit > 5%"), "{}", stdout(&out));
    std::fs::remove_dir_all(&dir).expect("clean up");
}

#[tokio::test]
async fn an_https_certificate_is_judged_by_its_days_left_alike_by_both_with_the_private_ca_given() {
    let ca = app::testing::TestCa::new("monitor test CA");
    let ca_file = std::env::temp_dir().join(format!("konnichiwa-monitor-ca-{}.pem", std::process::id()));
    std::fs::write(&ca_file, ca.pem()).expect("write CA");
    let ca_path = ca_file.to_string_lossy().into_owned();
    let trust: &[Setting<'_>] = &[("--ca-cert", &ca_path, "CA_CERT", &ca_path)];
    for (days, code, state) in [(30, 0, "OK"), (10, 1, "WARNING"), (3, 2, "CRITICAL")] {
        let mut r = report();
        r.container = Some(container(40.0, Some(10.0)));
        let (server, _) = fake_app_tls(healthy(r), ca.server_cert(&["127.0.0.1"], days)).await;
        let out = both(&server.url(), Some(KEY), trust, &[]).await;
        let text = stdout(&out);
        assert_eq!(out.status.code(), Some(code), "{text}");
        let line = text.lines().find(|l| l.contains(": certificate - ")).unwrap_or_else(|| panic!("{text}"));
        assert!(line.starts_with(&format!("{state}: certificate - expires in {days} days (20")), "{text}");
        assert!(
            text.lines().next().is_some_and(|l| l.contains(&format!("certificate_days={days};21:;7:;0"))),
            "{text}"
        );
        assert!(text.contains("OK: memory - memory 40%"), "/inspect answered over TLS: {text}");
        assert!(!text.contains(KEY), "the key appears in no output");
    }

    // Without the CA, both say the certificate cannot be verified: CRITICAL.
    let (server, _) = fake_app_tls(healthy(report()), ca.server_cert(&["127.0.0.1"], 30)).await;
    let out = both(&server.url(), Some(KEY), &[], &[]).await;
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    let expected = format!(
        "CRITICAL: certificate - cannot verify the certificate of {}: not signed by a trusted CA, expired, or issued \
         for another name (for a private CA, pass --ca-cert FILE)",
        server.addr
    );
    assert!(text.contains(&expected), "{text}");

    // Thresholds from flags (and monitor.sh's variables), and refused when inverted.
    let (server, _) = fake_app_tls(healthy(report()), ca.server_cert(&["127.0.0.1"], 10)).await;
    let lower: &[Setting<'_>] = &[
        ("--ca-cert", &ca_path, "CA_CERT", &ca_path),
        ("--certificate-warning-days", "5", "CERTIFICATE_WARNING_DAYS", "5"),
        ("--certificate-critical-days", "2", "CERTIFICATE_CRITICAL_DAYS", "2"),
    ];
    let out = both(&server.url(), Some(KEY), lower, &[]).await;
    assert!(stdout(&out).contains("OK: certificate - expires in 10 days ("), "{}", stdout(&out));
    let inverted: &[Setting<'_>] = &[
        ("--certificate-warning-days", "2", "CERTIFICATE_WARNING_DAYS", "2"),
        ("--certificate-critical-days", "5", "CERTIFICATE_CRITICAL_DAYS", "5"),
    ];
    let out = both(&server.url(), Some(KEY), inverted, &[]).await;
    assert_eq!(out.status.code(), Some(3));
    assert!(stdout(&out).contains("certificate warning at 2 days is below its critical at 5 days"), "{}", stdout(&out));
    let _ = std::fs::remove_file(&ca_file);
}

/// `monitor check` (or monitor.sh, `script`) in an empty network namespace (`unshare -n`):
/// nothing either does can leave this machine, whatever a regression makes it try.
async fn offline(script: bool, url: &str, extra: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = tokio::process::Command::new("unshare");
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("API_KEY", KEY)
        .envs(env.iter().copied())
        .current_dir(std::env::temp_dir())
        .arg("-n");
    if script {
        c.args(["bash", concat!(env!("CARGO_MANIFEST_DIR"), "/monitor.sh")]).env("API_URL", url);
    } else {
        c.args([common::BIN, "check", "--url", url]).args(extra);
    }
    c.output()
        .await
        .unwrap_or_else(|e| panic!("cannot run `unshare -n` ({e}): util-linux's unshare and root are needed"))
}

#[tokio::test]
async fn the_key_is_refused_over_plain_http_to_another_machine_before_any_request() {
    // TEST-NET-3: never routed; and the namespace has no network at all.
    let far = "http://203.0.113.7:8080";
    let bin = offline(false, far, &[], &[]).await;
    let sh = offline(true, far, &[], &[]).await;
    assert_eq!(stdout(&bin), stdout(&sh), "monitor and monitor.sh differ: {}", String::from_utf8_lossy(&sh.stderr));
    assert_eq!((bin.status.code(), sh.status.code()), (Some(3), Some(3)), "{}", stdout(&bin));
    let first = stdout(&bin).lines().next().unwrap_or_default().to_owned();
    assert!(
        first.starts_with("UNKNOWN - config: refusing to send the API key to http://203.0.113.7:8080 over plain HTTP")
            && first.contains("--send-key-over-http"),
        "{first}"
    );
    // Told to send it anyway, both go on to check (and, with no network here, cannot connect).
    let bin = offline(false, far, &["--send-key-over-http"], &[]).await;
    let sh = offline(true, far, &[], &[("SEND_KEY_OVER_HTTP", "1")]).await;
    for out in [&bin, &sh] {
        assert_eq!(out.status.code(), Some(2), "{}", stdout(out));
        assert!(stdout(out).contains("cannot connect to http://203.0.113.7:8080/health"), "{}", stdout(out));
    }
    // https, or plain http to this machine, is never refused.
    let bin = offline(false, "https://203.0.113.7:8443", &[], &[]).await;
    assert!(!stdout(&bin).contains("refusing"), "{}", stdout(&bin));
}

#[test]
fn a_closed_stdout_ends_the_check_quietly() {
    // `monitor check | head -0`: the reader is gone before the plugin line is written.
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let out = std::process::Command::new(common::BIN)
        .args(["check", "--url", "http://127.0.0.1:9", "--timeout", "1s"])
        .env_clear()
        .current_dir(std::env::temp_dir())
        .stdout(writer)
        .output()
        .expect("run monitor");
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(141), "{said}");
    assert!(!said.contains("panicked"), "{said}");
}
