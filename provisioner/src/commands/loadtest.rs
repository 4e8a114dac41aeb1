//! `loadtest --workers N [loadtest flags…]`: the load test run from ECS, in the stack's region.
//!
//! The stack is observed (it must be up: its VPC, public subnets, cluster, execution role, log
//! group and URL are what the workers use); the loadtest image is built and pushed (or taken from
//! `--image`); the workers' security group is made or checked; a revision of the `<stack>-loadtest`
//! family is registered; N Fargate tasks are started, each told its share of the load and one
//! start time for all. Then the tasks and their log streams are polled — one DescribeTasks per
//! 100 workers and one FilterLogEvents query across all their streams a poll, slower while
//! CloudWatch Logs throttles — until every worker has written its result: the results are
//! merged exactly and judged as one run. Whatever happens —
//! the results are in, a worker failed, the timeout passed, Ctrl-C — every task still running is
//! stopped and the revision deregistered before the command returns.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use loadtest::report::json::ReportDoc;
use loadtest::settings::Settings;
use loadtest::stages::Shape;

use super::context;
use crate::cli::{Cli, LoadtestArgs};
use crate::engine;
use crate::error::Error;
use crate::exit::INTERRUPTED;
use crate::image::{Program, build};
use crate::log_events::{self, Cursor, Pace};
use crate::reconcile::{Ctx, Mode, Plan, tags};
use crate::resources::loadtest::{self as workers, Launch, TaskState, task_id};

/// How long stopped tasks are waited for before the command gives up waiting (they were told).
const STOP_WAIT: Duration = Duration::from_secs(120);

/// One worker: its task, what its stream held so far, and its result once complete.
#[derive(Debug, Default)]
struct Worker {
    index: u32,
    arn: String,
    lines: Vec<String>,
    result: Option<ReportDoc>,
    state: TaskState,
    /// Polls since the task was seen stopped without a result (its last lines may be late).
    polls_since_stop: u32,
}

impl Worker {
    fn id(&self) -> &str {
        task_id(&self.arn)
    }

    /// The worker's own error line, if it printed one (`error: …` from loadtest).
    fn error_line(&self) -> Option<&str> {
        self.lines.iter().rev().find_map(|l| l.trim().strip_prefix("error: "))
    }
}

/// How the polling ended.
enum Ending {
    Results(Vec<ReportDoc>),
    Interrupted,
    TimedOut,
    Failed(String),
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

fn usage(message: impl Into<String>) -> Error {
    Error::Usage(message.into())
}

/// loadtest's flags, checked as loadtest checks them.
fn load_flags(args: &LoadtestArgs) -> Result<loadtest::cli::RunArgs, Error> {
    let parsed =
        loadtest::cli::Cli::try_parse_from(std::iter::once("loadtest").chain(args.load.iter().map(String::as_str)))
            .map_err(|e| {
                let text = e.render().to_string();
                usage(format!(
                    "loadtest flags: {}",
                    text.lines().next().unwrap_or_default().trim_start_matches("error: ")
                ))
            })?;
    if parsed.command.is_some() {
        return Err(usage("`merge` is loadtest's own command: run `loadtest merge FILES…`"));
    }
    let run = parsed.run;
    if run.ca_cert.is_some() {
        return Err(usage(
            "--ca-cert names a file on this machine, which the workers cannot read: the workers trust the system's \
             and Mozilla's roots (the certificate ACM issues for the stack's domain is among them)",
        ));
    }
    if run.start_at.is_some() || run.result_lines {
        return Err(usage("--start-at and --result-lines are set by `provisioner loadtest` for each worker"));
    }
    Ok(run)
}

/// The port the workers' security group must let them reach.
fn target_port(url: &str) -> Result<u16, Error> {
    let uri: http::Uri = url.parse().map_err(|e| usage(format!("--host {url:?} is not a URL ({e})")))?;
    let secure = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        _ => return Err(usage(format!("--host {url:?} must start with http:// or https://"))),
    };
    Ok(uri.port_u16().unwrap_or(if secure { 443 } else { 80 }))
}

/// Refuses more workers than users (a worker with none would measure nothing).
fn check_share(shape: &Shape, workers: u32) -> Result<(), Error> {
    let fewest = match shape {
        Shape::Users { users, .. } => Some(*users),
        Shape::Stages(stages) => {
            stages.iter().filter(|s| s.unit == loadtest::stages::Unit::Users).map(|s| s.target as u32).max()
        }
        Shape::Rate(_) => None,
    };
    match fewest {
        Some(users) if users < workers => Err(usage(format!(
            "{users} users cannot be shared by {workers} workers: give at least one user per worker, or fewer --workers"
        ))),
        _ => Ok(()),
    }
}

pub async fn run(cli: &Cli, args: &LoadtestArgs) -> Result<u8, Error> {
    let run_args = load_flags(args)?;
    let memory = args.worker_memory.unwrap_or(2 * args.worker_cpu);
    workers::check_size(args.worker_cpu, memory).map_err(usage)?;
    // Observation and the image come first; the timeout covers them and the run.
    let ctx = context(cli, Mode::Plan, Duration::from_secs(30 * 60)).await?;
    let sections = stack::ToolSections {
        slo: ctx.stack.slo.clone(),
        monitor: ctx.stack.monitor.clone(),
        loadtest: ctx.stack.loadtest.clone(),
    };
    let mut settings = Settings::resolve(&run_args, Some(&sections)).map_err(usage)?;
    check_share(&settings.shape, args.workers)?;
    let load_length = settings.shape.profile(settings.duration).map_err(usage)?.duration();

    eprintln!("Reading the stack {} in {}…", ctx.stack.name, ctx.stack.region);
    let outputs = engine::read_outputs(&ctx).await?;
    let at = where_workers_run(&ctx, &outputs, &mut settings, args.worker_cpu)?;
    refuse_a_running_test(&ctx).await?;

    let workspace = build::workspace_of(&cli.stack);
    let (image, arm64) = worker_image(&ctx, args, &outputs, &workspace).await?;
    eprintln!("{}", run_cost(&ctx.stack.region, args, memory, args.start_in + load_length, arm64));
    fits_the_fargate_quota(&ctx, args).await?;

    let apply = Ctx { mode: Mode::Apply, ..ctx.clone() };
    let security_group = workers::converge_security_group(&apply, &mut Plan::default(), &at.vpc, at.port).await?;
    let spec = workers::WorkerSpec {
        image,
        cpu: args.worker_cpu,
        memory,
        arm64,
        execution_role: at.execution_role,
        log_group: outputs.log_group.clone(),
        api_key_secret: at.api_key_secret,
    };
    let task_definition = workers::register(&apply, &spec).await?;
    let timeout = args.timeout.unwrap_or(args.start_in + load_length + Duration::from_secs(300));
    let deadline = Instant::now() + timeout;

    let placement = Placement {
        task_definition: &task_definition,
        subnets: &at.subnets,
        security_group: &security_group,
        log_group: &outputs.log_group,
        load_length,
        deadline,
    };
    let mut pool: Vec<Worker> = Vec::new();
    let ending = start_and_follow(&apply, args, &settings, &placement, &mut pool).await;
    let cleanup = clean_up(&apply, &mut pool, &task_definition, &ending).await;
    let ending = ending?;
    cleanup?;
    let run = Finished { workers: args.workers, task_definition: &task_definition, timeout, pool: &pool };
    report(cli, &ctx, &settings, &run_args.output, &run, ending)
}

/// What a run needs of the stack, refused with the fix when `up` has not made it yet.
struct StackFacts {
    vpc: crate::reconcile::Id,
    subnets: Vec<String>,
    execution_role: String,
    port: u16,
    api_key_secret: Option<String>,
}

fn missing_from(stack: &str, what: &str) -> Error {
    Error::Refused(format!(
        "the stack {stack} has no {what} yet: the workers run in the stack's network and cluster; run `provisioner up` \
         first"
    ))
}

/// Refuses, before any worker starts, more worker vCPUs than the account's Fargate quota allows
/// (what else runs on Fargate is not counted); a quota that cannot be read is said, not judged.
async fn fits_the_fargate_quota(ctx: &Ctx, args: &LoadtestArgs) -> Result<(), Error> {
    let per_worker = f64::from(args.worker_cpu) / 1024.0;
    let needed = f64::from(args.workers) * per_worker;
    match crate::verify::fargate_vcpus(ctx).await {
        Ok(limit) if needed > limit => Err(usage(format!(
            "{} workers of {per_worker} vCPU need {needed} vCPUs, more than the account's Fargate On-Demand vCPU quota of {limit} \
             (Service Quotas: fargate L-3032A538): run fewer --workers or a smaller --worker-cpu, or request an increase",
            args.workers
        ))),
        Ok(_) => Ok(()),
        Err(e) => {
            eprintln!("The Fargate vCPU quota was not checked: {}", crate::error::without_dumps(&format!("{e:#}")));
            Ok(())
        }
    }
}

/// What the workers will cost, said before any starts.
fn run_cost(region: &str, args: &LoadtestArgs, memory: u32, billed: Duration, arm64: bool) -> String {
    let (book, prices) = crate::cost::PriceBook::for_region(region);
    let (usd, how) = crate::cost::fargate_run(&book, args.workers, args.worker_cpu, memory, billed.as_secs(), arm64);
    match usd {
        Some(usd) => format!("The run will cost about {usd:.4} USD on Fargate ({how}; prices: {prices})."),
        None => format!("The run's cost is not known: {prices} has no Fargate price ({how})."),
    }
}

/// Reads what the workers need from the stack's outputs; points `settings` at the stack's URL
/// (unless --host says otherwise) and gives each worker a thread per vCPU at least.
fn where_workers_run(
    ctx: &Ctx,
    outputs: &engine::Located,
    settings: &mut Settings,
    worker_cpu: u32,
) -> Result<StackFacts, Error> {
    let missing = |what: &str| missing_from(&ctx.stack.name, what);
    let vpc = crate::reconcile::Id::Known(outputs.vpc_id.clone().ok_or_else(|| missing("VPC"))?);
    let subnets = outputs.subnet_ids.clone();
    if subnets.is_empty() {
        return Err(missing("public subnets"));
    }
    let execution_role = outputs.execution_role_arn.clone().ok_or_else(|| missing("task execution role"))?;
    outputs.cluster_arn.as_ref().ok_or_else(|| missing("cluster"))?;
    let Some(host) = settings.host.clone().or(outputs.url.clone()) else {
        return Err(missing("load balancer URL (or give --host)"));
    };
    settings.host = Some(host.clone());
    let port = target_port(&host)?;
    let vcpus = u16::try_from((worker_cpu / 1024).max(1)).unwrap_or(1);
    settings.threads = settings.threads.max(vcpus);
    let api_key_secret = if settings.mix.sends_key() {
        stack::net::check_key_transport(&host, settings.send_key_over_http, "--send-key-over-http")
            .map_err(Error::Refused)?;
        Some(outputs.secret_arn.clone().ok_or_else(|| missing("API-key secret"))?)
    } else {
        None
    };
    Ok(StackFacts { vpc, subnets, execution_role, port, api_key_secret })
}

/// One load test per stack at a time; a revision a killed run left registered is deregistered.
async fn refuse_a_running_test(ctx: &Ctx) -> Result<(), Error> {
    let running = workers::running_tasks(ctx).await?;
    if !running.is_empty() {
        let ids: Vec<&str> = running.iter().map(|a| task_id(a)).collect();
        return Err(Error::Refused(format!(
            "another load test of this stack is running (tasks {}): wait for it, or stop its tasks with `aws ecs \
             stop-task --cluster {} --task ID`",
            ids.join(", "),
            crate::resources::cluster::name(&ctx.stack)
        )));
    }
    for arn in workers::active_revisions(ctx).await? {
        eprintln!("deregistering {arn}, left registered by an earlier run");
        workers::deregister(ctx, &arn).await?;
    }
    Ok(())
}

/// The workers' image: --image, or the loadtest image built from `workspace` and pushed to the
/// stack's repository (or --image-repository); whether it is arm64.
async fn worker_image(
    ctx: &Ctx,
    args: &LoadtestArgs,
    outputs: &engine::Located,
    workspace: &std::path::Path,
) -> Result<(String, bool), Error> {
    if let Some(reference) = &args.image {
        return Ok((reference.clone(), false));
    }
    let repository = args
        .image_repository
        .clone()
        .or_else(|| outputs.repository_uri.clone())
        .ok_or_else(|| missing_from(&ctx.stack.name, "image repository"))?;
    eprintln!("Building the loadtest image…");
    let image = build::build(workspace, Program::Loadtest)?;
    let tag = format!("loadtest-{}", image.tag);
    let report = crate::image::push_to(&ctx.clients, &image, &repository, &tag).await?;
    eprintln!("pushed {} ({} bytes uploaded)", report.reference, report.bytes_uploaded);
    Ok((report.reference, image.arch == stack::catalog::Arch::Arm64))
}

/// How a run went, for its report.
struct Finished<'a> {
    workers: u32,
    task_definition: &'a str,
    timeout: Duration,
    pool: &'a [Worker],
}

/// `loadtest --json`: the workers' merged result, judged.
#[derive(serde::Serialize)]
struct Judged<'a> {
    workers: u32,
    task_definition: &'a str,
    exit_code: u8,
    result: &'a ReportDoc,
    #[serde(flatten)]
    spent: super::answer::Spent,
}

/// The merged result judged against the SLOs (its exit code), or why there is none.
fn report(
    cli: &Cli,
    ctx: &Ctx,
    settings: &Settings,
    output: &loadtest::cli::OutputArgs,
    run: &Finished<'_>,
    ending: Ending,
) -> Result<u8, Error> {
    let Finished { workers, task_definition, timeout, pool } = *run;
    match ending {
        Ending::Results(docs) => {
            let judging = loadtest::Judging { objectives: &settings.objectives, stage: settings.slo_stage.as_deref() };
            let doc = loadtest::merge_docs(&docs, output, &judging).map_err(Error::Refused)?;
            let code =
                if doc.slo_met && doc.aborted.is_none() { loadtest::exit::MET } else { loadtest::exit::SLO_MISSED };
            if cli.json {
                let body = Judged {
                    workers,
                    task_definition,
                    exit_code: code,
                    result: &doc,
                    spent: super::answer::Spent::calls(ctx.clients.calls.counts()),
                };
                super::answer::print("loadtest", None, body);
            } else {
                print!("{}", loadtest::report::text::render(&doc));
            }
            Ok(code)
        }
        Ending::Interrupted => {
            eprintln!("interrupted: every worker was stopped; no result");
            Ok(INTERRUPTED)
        }
        Ending::TimedOut => {
            let reported = pool.iter().filter(|w| w.result.is_some()).count();
            Err(Error::Refused(format!(
                "the load test did not finish within {} ({reported} of {} workers reported): every worker was \
                 stopped. Raise --timeout, or look at the workers' lines with `provisioner logs --since 30m --filter \
                 loadtest`",
                humantime::format_duration(timeout),
                pool.len()
            )))
        }
        Ending::Failed(why) => Err(Error::Refused(format!("{why}: every other worker was stopped; no result"))),
    }
}

/// Where the workers run and report, and for how long, once all of it is known.
struct Placement<'a> {
    task_definition: &'a str,
    subnets: &'a [String],
    security_group: &'a str,
    log_group: &'a str,
    /// How long the load lasts once it begins.
    load_length: Duration,
    deadline: Instant,
}

/// Starts the workers and follows them until every one has reported, one failed, the deadline
/// passed or an interrupt came.
async fn start_and_follow(
    ctx: &Ctx,
    args: &LoadtestArgs,
    settings: &Settings,
    at: &Placement<'_>,
    pool: &mut Vec<Worker>,
) -> Result<Ending, Error> {
    let mut interrupt = std::pin::pin!(interrupted());
    let launched_ms = now_ms();
    let start_at = launched_ms + args.start_in.as_millis() as u64;
    let run_id = format!("{start_at}-{}", std::process::id());
    for index in 0..args.workers {
        let launch = Launch {
            task_definition: at.task_definition,
            subnets: at.subnets,
            security_group: at.security_group,
            command: settings.worker_args(index, args.workers, start_at),
            client_token: tags::idempotency_token(&[&ctx.stack.name, "loadtest", &run_id, &index.to_string()]),
        };
        let started = tokio::select! {
            r = workers::run_task(ctx, &launch) => r,
            () = &mut interrupt => return Ok(Ending::Interrupted),
        };
        match started {
            Ok(arn) => pool.push(Worker { index, arn, ..Worker::default() }),
            Err(e) => {
                return Ok(Ending::Failed(format!("worker {} of {} did not start: {e}", index + 1, args.workers)));
            }
        }
    }
    let starts = humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(start_at));
    eprintln!(
        "{} workers started on Fargate; the load begins at {starts} (in {} s) and lasts {}",
        pool.len(),
        args.start_in.as_secs(),
        humantime::format_duration(at.load_length)
    );
    // The workers' lines carry the time of the machines they run on: read from well before this
    // one's idea of the launch, so that a clock ahead of theirs cannot hide them.
    let mut reader = Reader::new(at.log_group, launched_ms.saturating_sub(CLOCK_MARGIN_MS), args.poll_interval);
    let mut last_progress = String::new();
    loop {
        tokio::select! {
            () = tokio::time::sleep(reader.pace.now) => {}
            () = &mut interrupt => return Ok(Ending::Interrupted),
            () = tokio::time::sleep_until(at.deadline.into()) => return Ok(Ending::TimedOut),
        }
        let ending = poll(ctx, &mut reader, pool).await?;
        let progress = progress_line(pool);
        if progress != last_progress {
            eprintln!("{progress}");
            last_progress = progress;
        }
        if let Some(ending) = ending {
            return Ok(ending);
        }
    }
}

/// How far before the launch the workers' lines are looked for.
const CLOCK_MARGIN_MS: u64 = 10 * 60 * 1000;
/// Polls a stopped worker's lines are still waited for (its last lines may be late).
const GRACE_POLLS: u32 = 5;

/// Reads every worker's stream at once: one FilterLogEvents query a poll over the workers'
/// stream prefix (CloudWatch Logs' read limits are low and shared), slower while it throttles.
struct Reader<'a> {
    group: &'a str,
    cursor: Cursor,
    query: log_events::Query,
    pace: Pace,
}

impl<'a> Reader<'a> {
    fn new(group: &'a str, since_ms: u64, poll: Duration) -> Self {
        Self {
            group,
            cursor: Cursor::new(i64::try_from(since_ms).unwrap_or(i64::MAX)),
            query: log_events::Query { filter: None, stream_prefix: Some(workers::stream_prefix()) },
            pace: Pace::new(poll),
        }
    }

    /// The new lines of every stream, or None while CloudWatch Logs throttles.
    async fn read(&mut self, ctx: &Ctx) -> Result<Option<Vec<log_events::Line>>, Error> {
        let read = log_events::fetch(ctx, self.group, self.cursor.poll_from(), &self.query).await;
        match self.pace.after(read)? {
            Some((lines, _)) => Ok(Some(self.cursor.take(lines))),
            None => {
                eprintln!("note: CloudWatch Logs is throttling; reading every {} s", self.pace.now.as_secs());
                Ok(None)
            }
        }
    }
}

/// One poll: the tasks' states, then their new lines; an ending once every worker reported or
/// one failed.
async fn poll(ctx: &Ctx, reader: &mut Reader<'_>, pool: &mut [Worker]) -> Result<Option<Ending>, Error> {
    let arns: Vec<String> = pool.iter().map(|w| w.arn.clone()).collect();
    let states = workers::describe(ctx, &arns).await?;
    for w in pool.iter_mut() {
        if let Some(s) = states.iter().find(|s| s.arn == w.arn) {
            w.state = s.clone();
        }
    }
    let Some(lines) = reader.read(ctx).await? else { return Ok(None) };
    for line in lines {
        if let Some(w) = pool.iter_mut().find(|w| workers::stream(w.id()) == line.stream) {
            w.lines.push(line.message);
        }
    }
    for w in pool.iter_mut().filter(|w| w.result.is_none()) {
        match loadtest::report::lines::decode(w.lines.iter().map(String::as_str)) {
            Ok(Some(doc)) => w.result = Some(doc),
            Ok(None) => {}
            Err(e) => return Ok(Some(Ending::Failed(format!("worker {} (task {}): {e}", w.index + 1, w.id())))),
        }
        if w.result.is_none() && w.state.stopped() {
            w.polls_since_stop += 1;
            if w.polls_since_stop > GRACE_POLLS {
                let own = w.error_line().map(|l| format!(" — it said: {l}")).unwrap_or_default();
                return Ok(Some(Ending::Failed(format!(
                    "worker {} (task {}) stopped without a result: {}{own}",
                    w.index + 1,
                    w.id(),
                    w.state.why_stopped()
                ))));
            }
        }
    }
    if pool.iter().all(|w| w.result.is_some()) {
        return Ok(Some(Ending::Results(pool.iter().filter_map(|w| w.result.clone()).collect())));
    }
    Ok(None)
}

/// `workers: 1 PENDING, 2 RUNNING; 0 of 3 reported`.
fn progress_line(pool: &[Worker]) -> String {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for w in pool {
        let status = if w.state.last_status.is_empty() { "PROVISIONING" } else { w.state.last_status.as_str() };
        match counts.iter_mut().find(|(s, _)| s == status) {
            Some((_, n)) => *n += 1,
            None => counts.push((status.to_owned(), 1)),
        }
    }
    let states: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {s}")).collect();
    let reported = pool.iter().filter(|w| w.result.is_some()).count();
    format!("workers: {}; {reported} of {} reported", states.join(", "), pool.len())
}

/// Stops every worker task not yet stopped, waits for them to stop, and deregisters the run's
/// revision: after any ending, so that nothing is left running or registered.
async fn clean_up(
    ctx: &Ctx,
    pool: &mut [Worker],
    task_definition: &str,
    ending: &Result<Ending, Error>,
) -> Result<(), Error> {
    let reason = match ending {
        Ok(Ending::Results(_)) => "provisioner loadtest: every worker reported",
        Ok(Ending::Interrupted) => "provisioner loadtest: interrupted",
        Ok(Ending::TimedOut) => "provisioner loadtest: timed out",
        Ok(Ending::Failed(_)) | Err(_) => "provisioner loadtest: another worker failed",
    };
    let arns: Vec<String> = pool.iter().map(|w| w.arn.clone()).collect();
    let mut states = if arns.is_empty() { Vec::new() } else { workers::describe(ctx, &arns).await? };
    let mut stopped = 0;
    for s in states.iter().filter(|s| !s.stopped()) {
        workers::stop_task(ctx, &s.arn, reason).await?;
        stopped += 1;
    }
    let waiting_since = Instant::now();
    while states.iter().any(|s| !s.stopped()) && waiting_since.elapsed() < STOP_WAIT {
        tokio::time::sleep(Duration::from_secs(2)).await;
        states = workers::describe(ctx, &arns).await?;
    }
    let still: Vec<&str> = states.iter().filter(|s| !s.stopped()).map(|s| task_id(&s.arn)).collect();
    workers::deregister(ctx, task_definition).await?;
    if stopped > 0 {
        eprintln!("stopped {stopped} worker task(s)");
    }
    eprintln!("deregistered {task_definition}");
    if !still.is_empty() {
        return Err(Error::Refused(format!(
            "tasks {} were told to stop but still run after {} s: ECS stops them; check with `aws ecs describe-tasks`",
            still.join(", "),
            STOP_WAIT.as_secs()
        )));
    }
    Ok(())
}

/// Resolves at the first SIGINT or SIGTERM.
async fn interrupted() {
    let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) else {
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(load: &[&str]) -> LoadtestArgs {
        let cli = Cli::try_parse_from(["provisioner", "loadtest", "--workers", "3"].iter().chain(load)).expect("flags");
        match cli.command {
            crate::cli::Command::Loadtest(a) => a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn loadtest_flags_follow_the_command_and_are_checked_as_loadtest_checks_them() {
        let a = args(&["--rate", "300/s", "--duration", "1m", "--json", "out.json"]);
        assert_eq!((a.workers, a.load.len()), (3, 6));
        let run = load_flags(&a).expect("valid");
        assert_eq!(run.rate, Some(300.0));
        assert_eq!(run.output.json.as_deref(), Some(std::path::Path::new("out.json")));
        let e = load_flags(&args(&["--rate", "fast"])).unwrap_err().to_string();
        assert!(e.contains("loadtest flags:") && e.contains("fast"), "{e}");
        assert!(load_flags(&args(&["--ca-cert", "ca.pem"])).unwrap_err().to_string().contains("cannot read"));
        assert!(load_flags(&args(&["--start-at", "5"])).is_err());
    }

    #[test]
    fn users_must_cover_the_workers_and_ports_come_from_the_url() {
        assert!(check_share(&Shape::Users { users: 2, spawn_rate: 1.0 }, 3).is_err());
        assert!(check_share(&Shape::Users { users: 3, spawn_rate: 1.0 }, 3).is_ok());
        assert!(check_share(&Shape::Rate(1.0), 50).is_ok());
        assert_eq!(target_port("https://api.example.com").ok(), Some(443));
        assert_eq!(target_port("http://lb.example.com").ok(), Some(80));
        assert_eq!(target_port("http://lb.example.com:8080/x").ok(), Some(8080));
        assert!(target_port("ftp://x").is_err());
    }
}
