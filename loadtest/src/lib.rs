//! The load generator as a library: scenario, engine, statistics, SLO gate and reports, driven by
//! `run`, which returns the exit code, or `measure`, which returns the report.

pub mod cli;
pub mod compare;
pub mod engine;
pub mod guard;
pub mod h1;
pub mod header;
pub mod live;
pub mod report;
pub mod scenario;
pub mod settings;
pub mod slo;
pub mod stages;
pub mod stats;
pub mod tls;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cli::{Cli, Command, OutputArgs, RunArgs};
use engine::{Model, RunPlan, StopReason};
use report::json::{ReportDoc, document, stats_of};
use serde_json::json;
use settings::Settings;
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
        Some(Command::Compare {
            base,
            new,
            max_p50_regression,
            max_p95_regression,
            max_p99_regression,
            max_throughput_drop,
            max_error_increase,
            json,
            html,
        }) => {
            let limits = compare::Thresholds {
                p50: max_p50_regression.0,
                p95: max_p95_regression.0,
                p99: max_p99_regression.0,
                throughput_drop: max_throughput_drop.0,
                error_points: max_error_increase.0,
            };
            return match compare::run(&base, &new, &limits, json.as_ref(), html.as_ref()) {
                Ok(false) => exit::MET,
                Ok(true) => exit::SLO_MISSED,
                Err(e) => {
                    eprintln!("error: {e}");
                    exit::FAILED
                }
            };
        }
        None => load(cli.run).await,
    };
    match result {
        Ok(doc) => {
            if doc.interrupted {
                exit::INTERRUPTED
            } else if doc.slo_met && doc.aborted.is_none() {
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
pub fn stack_file(named: Option<&Path>) -> Result<Option<stack::ToolSections>, String> {
    match named {
        Some(p) => stack::ToolSections::load(p).map(Some).map_err(|e| e.to_string()),
        None if Path::new(stack::DEFAULT_FILE).exists() => {
            stack::ToolSections::load(stack::DEFAULT_FILE).map(Some).map_err(|e| e.to_string())
        }
        None => Ok(None),
    }
}

/// How far a worker may start after the agreed time before its share would be out of step.
const START_TOLERANCE_MS: u64 = 2_000;

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// A rate without the float noise of summing a plan (999.9999999 is the 1000/s asked for).
fn rounded(rate: f64) -> f64 {
    (rate * 1e6).round() / 1e6
}

/// The model as the report's JSON shows it.
fn model_json(model: &Model, settings: &Settings) -> serde_json::Value {
    let mut m = match model {
        Model::Closed { profile, think_time } => json!({
            "kind": "closed", "users": profile.peak(),
            "think_time": think_time.map(|(a, b)| [a.as_secs_f64(), b.as_secs_f64()]),
        }),
        Model::Open { profile, connections } => {
            json!({ "kind": "open", "rate": profile.peak(), "connections": connections })
        }
    };
    match &settings.shape {
        stages::Shape::Users { spawn_rate, .. } => m["spawn_rate"] = json!(spawn_rate),
        stages::Shape::Stages(stages) => {
            m["stages"] = json!(stages.iter().map(stages::Stage::to_arg).collect::<Vec<_>>());
        }
        stages::Shape::Rate(_) => {}
    }
    m
}

/// The key the requests send (None when they send none): refused before any lookup or
/// connection when it would leave in clear text by accident, or when a scenario or a `--header`
/// writes the key itself.
fn api_key_for(settings: &Settings, requests: &[scenario::Request], host: &str) -> Result<Option<String>, String> {
    let api_key = std::env::var("API_KEY").ok().filter(|k| !k.is_empty());
    // A shorter value could be part of an ordinary header by chance; keys are longer.
    if let Some(key) = api_key.as_deref().filter(|k| k.len() >= 8) {
        if let scenario::Mix::Scenario(requests) = &settings.mix
            && let Some(r) = requests.iter().find(|r| r.headers.values().chain(&r.body).any(|v| v.contains(key)))
        {
            return Err(format!(
                "the scenario's request {:?} holds the API key itself: write ${{API_KEY}} in its place (e.g. Authorization: Bearer ${{API_KEY}}), so that the key is in no file, task definition or log",
                r.name()
            ));
        }
        if let Some(h) = settings.headers.iter().find(|h| h.value().contains(key)) {
            return Err(format!(
                "--header {} holds the API key itself: write ${{API_KEY}} in its place (e.g. --header '{}: Bearer ${{API_KEY}}'), so that the key is in no command line, task definition or log",
                h.name(),
                h.name()
            ));
        }
    }
    let reference = |v: &str| v.contains(stack::validate::API_KEY_REFERENCE);
    if requests.iter().any(|r| r.headers.iter().any(|(_, v)| reference(v))) {
        if api_key.is_none() {
            let why = match (&settings.mix, settings.headers.iter().find(|h| reference(h.value()))) {
                (_, Some(h)) => format!("--header {} uses ${{API_KEY}}", h.name()),
                (scenario::Mix::Endpoints(_), None) => "the mix includes /inspect or /metrics".to_owned(),
                (scenario::Mix::Scenario(_), None) => "the scenario's headers use ${API_KEY}".to_owned(),
            };
            return Err(format!("{why} but API_KEY is not set: export it, put it in .env, or choose another mix"));
        }
        stack::net::check_key_transport(host, settings.send_key_over_http, "--send-key-over-http")?;
    }
    Ok(api_key)
}

/// What an open model will not do that the settings may seem to ask: show an rps objective
/// above its rate, pause for a scenario's think times.
fn open_model_notes(settings: &Settings, model: &Model) {
    if !matches!(model, Model::Open { .. }) {
        return;
    }
    if settings.mix.has_think_times() {
        eprintln!("note: the scenario's think times are for users (closed model): an arrival rate sets its own pace");
    }
    if settings.slo_stage.is_none() {
        let offered = rounded(model.profile().total_arrivals() as f64 / model.profile().duration().as_secs_f64());
        for o in &settings.objectives {
            if let Some(why) = slo::cannot_show(o, Some(offered)) {
                eprintln!("note: {why}: it will be reported as not judged");
            }
        }
    }
}

/// Measures the run `args` describe, as `loadtest` with those flags does, and returns its report:
/// the library's entry point (for `provisioner`'s deploy gate). Unlike the command it prints
/// nothing on stdout (render `report::text::render(&doc)` to show it) and no notes, and installs
/// no signal handler: the caller handles signals (see [`measure_until`]). Live progress goes to
/// stderr unless `args.quiet`; the files `args.output` names (`--json`, `--csv`, `--html`) are
/// written. `args` may come from [`cli::RunArgs::from_flags`]. The gate's verdict is
/// `doc.slo_met` (false too when the run was interrupted or aborted).
pub async fn measure(args: RunArgs) -> Result<ReportDoc, String> {
    measure_until(args, engine::Stop::default()).await
}

/// [`measure`], ended early when `stop` is requested (e.g. on the caller's SIGTERM: `stop.request
/// (StopReason::Interrupted)`): the report then covers the time run and is marked interrupted.
pub async fn measure_until(args: RunArgs, stop: engine::Stop) -> Result<ReportDoc, String> {
    let ready = Ready::prepare(&args).await?;
    let started = start_time(&args).await?;
    ready.run(&args, started, stop).await
}

/// The command's run: `measure` with its notes, the interrupt handler, and the text report (and
/// `--result-lines`) on stdout.
async fn load(args: RunArgs) -> Result<ReportDoc, String> {
    let ready = Ready::prepare(&args).await?;
    open_model_notes(&ready.settings, &ready.plan.model);
    let started = start_time(&args).await?;
    let stop = engine::Stop::default();
    interruption(stop.clone());
    let doc = ready.run(&args, started, stop).await?;
    print!("{}", report::text::render(&doc));
    if args.result_lines {
        for line in report::lines::encode(&doc) {
            println!("{line}");
        }
    }
    Ok(doc)
}

/// When the load starts (Unix ms): now, or at `--start-at`, waited for (refused when this
/// machine is too late for it).
async fn start_time(args: &RunArgs) -> Result<u64, String> {
    let now = now_ms();
    let Some(at) = args.start_at else { return Ok(now) };
    if now > at + START_TOLERANCE_MS {
        return Err(format!(
            "started {:.1}s after the agreed start time: the load would be out of step with the other machines' (give them longer to start, e.g. provisioner loadtest --start-in)",
            (now - at) as f64 / 1000.0
        ));
    }
    if at > now {
        tokio::time::sleep(Duration::from_millis(at - now)).await;
    }
    Ok(at)
}

/// A run ready to start: settings resolved, key checked, target resolved, requests prepared.
struct Ready {
    settings: Settings,
    plan: RunPlan,
}

impl Ready {
    async fn prepare(args: &RunArgs) -> Result<Ready, String> {
        let stack = stack_file(args.stack.as_deref())?;
        let settings = Settings::resolve(args, stack.as_ref())?;
        let host = settings
            .host
            .clone()
            .ok_or("--host is required (or LOADTEST_HOST): the service's URL, e.g. http://127.0.0.1:4000")?;
        // HOST[:PORT] alone is http://, as the monitor takes it.
        let host = if host.contains("://") { host } else { format!("http://{host}") };
        let requests = settings.requests()?;
        let api_key = api_key_for(&settings, &requests, &host)?;
        let ca_certs = match &args.ca_cert {
            Some(path) => tls::read_ca_file(path)?,
            None => Vec::new(),
        };
        let target = engine::resolve(&host, &ca_certs).await?;
        let model = settings.model()?;
        let plan = RunPlan { target, model, timeout: settings.timeout, requests, api_key };
        Ok(Ready { settings, plan })
    }

    /// Runs the load from `started` until the plan ends or `stop`, and reports it.
    async fn run(self, args: &RunArgs, started: u64, stop: engine::Stop) -> Result<ReportDoc, String> {
        let Ready { settings, plan } = self;
        let guard = settings.abort_window.map(|window| guard::Guard {
            objectives: settings.objectives.clone(),
            stage: settings.slo_stage.clone(),
            window: window.as_secs().max(1) as usize,
            open: matches!(plan.model, Model::Open { .. }),
        });
        let json_model = model_json(&plan.model, &settings);
        let planned = plan.model.profile().duration();
        let target = plan.target.url.clone();
        let stats = engine::run(plan, live::Progress::new(args.quiet), stop.clone(), guard).await?;
        let (interrupted, aborted) = match stop.reason() {
            Some(StopReason::Interrupted) => (Some(planned), None),
            Some(StopReason::Aborted(why)) => (None, Some(why)),
            None => (None, None),
        };
        let run = Run {
            target: &target,
            model: json_model,
            started,
            generator: Some(report::Generator::measure()),
            interrupted,
            aborted,
        };
        let judging = Judging { objectives: &settings.objectives, stage: settings.slo_stage.as_deref() };
        finish(&run, &stats, &args.output, &judging)
    }
}

/// The first SIGINT or SIGTERM stops the load and lets the run write its reports (as k6, locust
/// and oha do); a second one exits at once.
fn interruption(stop: engine::Stop) {
    tokio::spawn(async move {
        let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) else { return };
        let mut signal = async || {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        };
        signal().await;
        stop.request(StopReason::Interrupted);
        eprintln!("\ninterrupted: stopping the load and writing the report (interrupt again to quit at once)");
        signal().await;
        std::process::exit(i32::from(exit::INTERRUPTED));
    });
}

fn merge(files: &[PathBuf], output: &OutputArgs, stack_path: Option<&Path>) -> Result<ReportDoc, String> {
    let stack = stack_file(stack_path)?;
    let mut docs = Vec::with_capacity(files.len());
    let mut stats = Vec::with_capacity(files.len());
    for f in files {
        let text = std::fs::read_to_string(f).map_err(|e| format!("cannot read {}: {e}", f.display()))?;
        let doc: ReportDoc =
            serde_json::from_str(&text).map_err(|e| format!("{}: not a loadtest result ({e})", f.display()))?;
        stats.push(stats_of(&doc).map_err(|e| format!("{}: {e}", f.display()))?);
        docs.push(doc);
    }
    let (objectives, stage) = settings::judged_by(output, stack.as_ref());
    let doc = merge_runs(&docs, &stats, output, &Judging { objectives: &objectives, stage: stage.as_deref() })?;
    print!("{}", report::text::render(&doc));
    Ok(doc)
}

/// Merges results of runs made at the same time (from several machines) into one, judges it and
/// writes the files `output` asks for (the caller prints the report).
pub fn merge_docs(docs: &[ReportDoc], output: &OutputArgs, judging: &Judging) -> Result<ReportDoc, String> {
    let stats = docs
        .iter()
        .enumerate()
        .map(|(i, doc)| stats_of(doc).map_err(|e| format!("result {} of {}: {e}", i + 1, docs.len())))
        .collect::<Result<Vec<_>, _>>()?;
    merge_runs(docs, &stats, output, judging)
}

/// `merge_docs` with each document's measurements already read from it.
fn merge_runs(
    docs: &[ReportDoc],
    stats: &[RunStats],
    output: &OutputArgs,
    judging: &Judging,
) -> Result<ReportDoc, String> {
    let mut merged = RunStats::default();
    let mut targets = Vec::new();
    let mut started = u64::MAX;
    for (doc, run) in docs.iter().zip(stats) {
        merged.merge(run);
        if !targets.contains(&doc.target) {
            targets.push(doc.target.clone());
        }
        started = started.min(doc.started_at_unix_ms);
    }
    if let Some(name) = judging.stage
        && !merged.stages.iter().any(|s| s.name == name)
    {
        return Err(format!("--slo-stage {name:?} is not a stage of these runs"));
    }
    let target = targets.join(", ");
    let run = Run {
        target: &target,
        model: json!({ "kind": "merged", "runs": docs.len() }),
        started,
        generator: None,
        // One interrupted part makes the whole an interrupted run.
        interrupted: docs.iter().filter(|d| d.interrupted).find_map(|d| d.planned_seconds).map(Duration::from_secs_f64),
        aborted: docs.iter().find_map(|d| d.aborted.clone()),
    };
    finish(&run, &merged, output, judging)
}

/// What the SLOs are and what they are judged on (a stage's name, or the whole run).
#[derive(Debug, Clone, Copy)]
pub struct Judging<'a> {
    pub objectives: &'a [slo::Objective],
    pub stage: Option<&'a str>,
}

/// What a report says about the run besides its measurements.
struct Run<'a> {
    target: &'a str,
    model: serde_json::Value,
    started: u64,
    generator: Option<report::Generator>,
    /// The planned duration, when an interrupt cut the run short.
    interrupted: Option<Duration>,
    /// Why `--abort-on-fail` stopped the run.
    aborted: Option<String>,
}

fn finish(run: &Run, stats: &RunStats, output: &OutputArgs, judging: &Judging) -> Result<ReportDoc, String> {
    // An open model offers its planned arrivals: an rps objective above them cannot be shown.
    let open = stats.stages.first().is_some_and(|s| s.unit == stages::Unit::Rate);
    let verdicts = match judging.stage.and_then(|name| stats.stage(name)) {
        Some(stage) => {
            let offered = (open && stage.seconds > 0.0).then(|| rounded(stage.planned / stage.seconds));
            slo::evaluate(judging.objectives, &stage.stats, stage.rps(), offered)
        }
        None => {
            // What was due by the time the run ended (an interrupted run was not offered the rest).
            let planned = stats.planned_until(stats.duration_seconds);
            let offered = open.then(|| rounded(planned / stats.duration_seconds.max(f64::MIN_POSITIVE)));
            slo::evaluate(judging.objectives, &stats.total(), stats.rps(), offered)
        }
    };
    let mut doc = document(run.target, run.model.clone(), run.started, stats, verdicts, run.generator);
    doc.slo_stage = judging.stage.map(str::to_owned);
    doc.interrupted = run.interrupted.is_some();
    doc.planned_seconds = run.interrupted.map(|d| d.as_secs_f64());
    doc.aborted = run.aborted.clone();
    // Neither an interrupted nor an aborted run passes the gate, whatever its figures say.
    if doc.aborted.is_some() || doc.interrupted {
        doc.slo_met = false;
    }
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
