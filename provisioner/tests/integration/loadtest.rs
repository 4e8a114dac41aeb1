//! `provisioner loadtest` on moto: the workers are Fargate tasks in the stack's public subnets
//! behind an egress-only group, each told its share and one start time; the test plays the
//! workers' part by writing their result lines into their log streams; the merged report and the
//! exit code match; every call is in the deploy role's policy; and after the results, an
//! interrupt, a timeout or a failed worker, no task runs and the revision is deregistered; and
//! `down` after a run killed outright stops its workers before the cluster.

use std::collections::BTreeSet;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use clap::Parser;
use loadtest::report::json::document;
use loadtest::settings::Settings;
use loadtest::stats::RunStats;
use provisioner::aws::Clients;
use serde_json::Value;

use crate::common::faults::{Faults, Proxy, Script};
use crate::common::policy::{Request, actions, allows, iam_action};
use crate::common::{Account, moto_url};

const FAMILY: &str = "konnichiwa-loadtest";
const CLUSTER: &str = "konnichiwa";
const GROUP: &str = "/ecs/konnichiwa";
/// A loadtest image "already pushed": these tests are about ECS, not the build (the image test
/// runs the real image under podman).
fn image() -> String {
    format!("127.0.0.1:5000/konnichiwa@sha256:{}", "7".repeat(64))
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(0))
}

/// A stack that is up. Worker tasks stay RUNNING until stopped (moto moves a task one step toward
/// STOPPED at each DescribeTasks unless told otherwise; the workers here end when the test says).
async fn stack_up() -> (Account, Clients) {
    let transition = serde_json::json!({
        "model_name": "ecs::task",
        "transition": { "progression": "manual", "times": 1_000_000 }
    });
    reqwest::Client::new()
        .post(format!("{}/moto-api/state-manager/set-transition", moto_url()))
        .json(&transition)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .expect("moto state manager");
    let account = Account::new();
    account.json(&["up", "--yes"], 0);
    let c = account.clients().await;
    (account, c)
}

/// The worker tasks once `n` of them run; waits for them.
async fn wait_for_workers(c: &Clients, n: usize) -> Vec<aws_sdk_ecs::types::Task> {
    let began = Instant::now();
    loop {
        let listed = c
            .ecs
            .list_tasks()
            .cluster(CLUSTER)
            .family(FAMILY)
            .started_by("konnichiwa-loadtest")
            .desired_status(aws_sdk_ecs::types::DesiredStatus::Running)
            .send()
            .await
            .expect("list tasks");
        if listed.task_arns().len() >= n {
            let described = c
                .ecs
                .describe_tasks()
                .cluster(CLUSTER)
                .set_tasks(Some(listed.task_arns().to_vec()))
                .send()
                .await
                .expect("describe tasks");
            return described.tasks().to_vec();
        }
        assert!(began.elapsed() < Duration::from_secs(60), "{n} workers never started");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn task_id(t: &aws_sdk_ecs::types::Task) -> String {
    t.task_arn().unwrap_or_default().rsplit('/').next().unwrap_or_default().to_owned()
}

fn command_of(t: &aws_sdk_ecs::types::Task) -> Vec<String> {
    t.overrides()
        .and_then(|o| o.container_overrides().iter().find(|c| c.name() == Some("loadtest")))
        .map(|c| c.command().to_vec())
        .unwrap_or_default()
}

/// Writes `lines` into the worker's stream (as its awslogs driver would).
async fn write(c: &Clients, task: &str, lines: &[String]) {
    let stream = format!("loadtest/loadtest/{task}");
    let _ = c.logs.create_log_stream().log_group_name(GROUP).log_stream_name(&stream).send().await;
    let t = now_ms();
    let events: Vec<InputLogEvent> = lines
        .iter()
        .enumerate()
        .map(|(i, m)| InputLogEvent::builder().timestamp(t + i as i64).message(m).build().expect("event"))
        .collect();
    c.logs
        .put_log_events()
        .log_group_name(GROUP)
        .log_stream_name(&stream)
        .set_log_events(Some(events))
        .send()
        .await
        .expect("put log events");
}

/// What a worker told `command` would report: `requests` answers at 10 ms + 1 ms × i, the plan
/// of its share, as the lines `--result-lines` prints.
fn worker_result(command: &[String], requests: u64) -> Vec<String> {
    let cli = loadtest::cli::Cli::try_parse_from(std::iter::once("loadtest").chain(command.iter().map(String::as_str)))
        .expect("the worker's command line parses");
    let settings = Settings::resolve(&cli.run, None).expect("settings");
    let model = settings.model().expect("model");
    let mut stats = RunStats::new(&["GET /".to_owned()], false);
    stats.plan(model.profile());
    for i in 0..requests {
        stats.record(0, 10_000 + i * 1000, None, (i % 2) as usize, 12);
    }
    stats.duration_seconds = model.profile().duration().as_secs_f64();
    let doc = document(
        cli.run.host.as_deref().unwrap_or_default(),
        serde_json::json!({"kind": "open"}),
        cli.run.start_at.expect("--start-at"),
        &stats,
        Vec::new(),
        None,
    );
    let mut lines = vec!["Target … for 2.0s".to_owned()];
    lines.extend(loadtest::report::lines::encode(&doc));
    lines
}

fn flag<'a>(command: &'a [String], name: &str) -> Vec<&'a str> {
    command.windows(2).filter(|w| w[0] == name).map(|w| w[1].as_str()).collect()
}

async fn nothing_left(c: &Clients) {
    let running = c
        .ecs
        .list_tasks()
        .cluster(CLUSTER)
        .family(FAMILY)
        .desired_status(aws_sdk_ecs::types::DesiredStatus::Running)
        .send()
        .await
        .expect("list");
    assert!(running.task_arns().is_empty(), "tasks left running: {:?}", running.task_arns());
    let active = registered_revisions(c).await;
    assert!(active.is_empty(), "revisions left registered: {active:?}");
}

/// The workers' revisions still registered (ACTIVE).
async fn registered_revisions(c: &Clients) -> Vec<String> {
    let listed = c
        .ecs
        .list_task_definitions()
        .family_prefix(FAMILY)
        .status(aws_sdk_ecs::types::TaskDefinitionStatus::Active)
        .send()
        .await
        .expect("list revisions");
    listed.task_definition_arns().to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_run_on_fargate_in_the_stacks_network_and_their_results_merge_exactly() {
    let (account, c) = stack_up().await;
    account.json(&["ci-role", "--github-repo", "konnichiwa/konnichiwa", "--yes"], 0);
    let proxy = Proxy::start(&moto_url(), Faults::default()).await;
    let out_file = account.dir.join("merged.json");
    let out_path = out_file.to_string_lossy().into_owned();
    let image = image();
    let args = [
        "--json",
        "loadtest",
        "--workers",
        "3",
        "--start-in",
        "2s",
        "--poll-interval",
        "200ms",
        "--image",
        &image,
        "--rate",
        "30/s",
        "--duration",
        "2s",
        "--slo",
        "p95<300ms",
        "--slo",
        "errors<1%",
        "--json",
        &out_path,
    ];
    // The stack has no HTTPS here: the default mix sends the key to a plain-http URL, which
    // `provisioner loadtest` refuses before starting any worker, unless told to.
    let refused = account.run_at(&proxy.url, &args[1..], &[]).await;
    assert_eq!(refused.status.code(), Some(1), "{}", crate::common::text(&refused));
    assert!(
        crate::common::text(&refused).contains("refusing to send the API key"),
        "{}",
        crate::common::text(&refused)
    );
    assert!(proxy.requests("RunTask").is_empty() && proxy.requests("RegisterTaskDefinition").is_empty());
    // What a run reads of the stack before refusing: each kind located, nothing planned (a plan
    // reads ~70 times, attributes and policies included).
    let read = proxy.operations();
    assert!(read.len() <= 10, "the stack's outputs in at most ten reads, not a plan: {read:?}");
    for planning in ["DescribeVpcAttribute", "GetRolePolicy", "GetResourcePolicy", "DescribeLoadBalancerAttributes"] {
        assert!(!read.iter().any(|o| o == planning), "{planning} is a plan's read: {read:?}");
    }
    let args: Vec<&str> = args.iter().copied().chain(["--send-key-over-http"]).collect();
    // 3 workers of 1 vCPU do not fit a Fargate quota of 2 vCPUs (Service Quotas' answer scripted:
    // moto has no Fargate quota): refused before any worker is registered or started.
    let quota = r#"{"Quota":{"ServiceCode":"fargate","QuotaCode":"L-3032A538","QuotaName":"Fargate On-Demand vCPU resource count","Value":2.0}}"#;
    proxy.script(Script::body("GetServiceQuota", 1, quota).only_if("L-3032A538"));
    let too_big = account.run_at(&proxy.url, &args[1..], &[]).await;
    let said = crate::common::text(&too_big);
    assert_eq!(too_big.status.code(), Some(1), "{said}");
    assert!(
        said.contains("3 workers of 1 vCPU need 3 vCPUs, more than the account's Fargate On-Demand vCPU quota of 2"),
        "{said}"
    );
    // The price comes first: 3 × (1 vCPU × 0.05056 + 2 GB × 0.00553) for Fargate's minimum minute.
    assert!(
        said.contains("The run will cost about 0.0031 USD on Fargate (3 workers × (1 vCPU + 2 GB) × 1.0 min"),
        "{said}"
    );
    assert!(proxy.requests("RunTask").is_empty() && proxy.requests("RegisterTaskDefinition").is_empty());
    let run = tokio::process::Command::from(account.command(&proxy.url, &args, &[])).output();
    let workers = async {
        let tasks = wait_for_workers(&c, 3).await;
        let commands: Vec<Vec<String>> = tasks.iter().map(command_of).collect();
        for (t, command) in tasks.iter().zip(&commands) {
            write(&c, &task_id(t), &worker_result(command, 20)).await;
        }
        (tasks, commands)
    };
    let (out, (tasks, commands)) = tokio::join!(run, workers);
    let out = out.expect("provisioner loadtest");
    let said = crate::common::text(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");

    // Each worker: a third of the rate, one start time for all, its result as lines.
    let starts: BTreeSet<&str> = commands.iter().flat_map(|c| flag(c, "--start-at")).collect();
    assert_eq!(starts.len(), 1, "one agreed start: {commands:?}");
    for command in &commands {
        assert_eq!(flag(command, "--rate"), ["10/s"], "{command:?}");
        assert!(command.contains(&"--result-lines".to_owned()), "{command:?}");
        assert!(
            command.contains(&"--send-key-over-http".to_owned()),
            "the insistence reaches the workers: {command:?}"
        );
        assert!(flag(command, "--host")[0].starts_with("http://"), "the stack's URL by default: {command:?}");
        assert!(flag(command, "--json").is_empty(), "files are written here, not in the task: {command:?}");
    }
    for t in &tasks {
        assert_eq!(t.launch_type().map(|l| l.as_str()), Some("FARGATE"));
        assert_eq!(t.group(), Some("family:konnichiwa-loadtest"));
    }
    // RunTask as sent: Fargate, the stack's public subnets, the workers' group, a public IP.
    let subnets: BTreeSet<String> = c
        .ec2
        .describe_subnets()
        .filters(aws_sdk_ec2::types::Filter::builder().name("tag:konnichiwa:stack").values("konnichiwa").build())
        .send()
        .await
        .expect("subnets")
        .subnets()
        .iter()
        .filter_map(|s| s.subnet_id().map(str::to_owned))
        .collect();
    let groups = c
        .ec2
        .describe_security_groups()
        .filters(aws_sdk_ec2::types::Filter::builder().name("group-name").values("konnichiwa-loadtest").build())
        .send()
        .await
        .expect("groups");
    let group = groups.security_groups().first().expect("the workers' group").clone();
    assert!(group.ip_permissions().is_empty(), "no ingress");
    let egress: BTreeSet<(i32, String)> = group
        .ip_permissions_egress()
        .iter()
        .map(|p| (p.from_port().unwrap_or(-1), p.ip_protocol().unwrap_or_default().to_owned()))
        .collect();
    assert_eq!(
        egress,
        BTreeSet::from([(80, "tcp".to_owned()), (443, "tcp".to_owned())]),
        "egress: HTTPS and the target's port"
    );
    let sent = proxy.requests("RunTask");
    assert_eq!(sent.len(), 3, "one RunTask per worker");
    let tokens: BTreeSet<String> = sent
        .iter()
        .map(|body| {
            let v: Value = serde_json::from_str(body).expect("RunTask body");
            assert_eq!(v["launchType"], "FARGATE");
            assert_eq!(v["count"], 1);
            let net = &v["networkConfiguration"]["awsvpcConfiguration"];
            assert_eq!(net["assignPublicIp"], "ENABLED");
            assert_eq!(net["securityGroups"][0], group.group_id().unwrap_or_default());
            let named: BTreeSet<String> = net["subnets"]
                .as_array()
                .expect("subnets")
                .iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect();
            assert_eq!(named, subnets, "the stack's public subnets");
            v["clientToken"].as_str().expect("an idempotency token").to_owned()
        })
        .collect();
    assert_eq!(tokens.len(), 3, "a token per worker");
    let registered: Value = serde_json::from_str(&proxy.requests("RegisterTaskDefinition")[0]).expect("body");
    assert_eq!(registered["requiresCompatibilities"][0], "FARGATE");
    assert_eq!(registered["networkMode"], "awsvpc");
    let container = &registered["containerDefinitions"][0];
    assert_eq!((container["image"].as_str(), container["memory"].as_i64()), (Some(image.as_str()), Some(2048)));
    assert_eq!(container["readonlyRootFilesystem"], true);
    assert_eq!(container["secrets"][0]["name"], "API_KEY", "the default mix needs the key");

    // The merged report: three workers' 20 requests each, exactly.
    let summary: Value = serde_json::from_slice(&out.stdout).expect("--json summary");
    assert_eq!(summary["result"]["total"]["requests"], 60, "{said}");
    assert_eq!(summary["exit_code"], 0);
    let written: Value = serde_json::from_str(&std::fs::read_to_string(&out_file).expect("--json file")).expect("json");
    assert_eq!(written["total"]["requests"], 60);
    assert_eq!(written["model"]["runs"], 3);
    let planned: f64 =
        written["history"].as_array().expect("history").iter().filter_map(|s| s["planned"].as_f64()).sum();
    assert!((planned - 60.0).abs() < 1e-6, "the shares' plans add up to 30/s × 2 s: {planned}");
    let p95 = written["total"]["latency_ms"]["p95"].as_f64().unwrap_or(0.0);
    assert!((28.0..=30.0).contains(&p95), "p95 of 10..29 ms answers: {p95}");
    assert!(said.contains("3 workers started on Fargate") && said.contains("3 of 3 reported"), "{said}");
    nothing_left(&c).await;

    // Every call it made is one the deploy role may make.
    let policy = crate::common::role_policy(&c, "konnichiwa-deploy").await;
    let allowed: BTreeSet<String> = actions(&policy).into_iter().collect();
    let mut called: BTreeSet<String> = summary["api_calls"]["by_operation"]
        .as_object()
        .expect("api calls")
        .keys()
        .map(|op| iam_action(op).to_ascii_lowercase())
        .collect();
    called.remove("sts:getcalleridentity");
    for needed in [
        "ecs:runtask",
        "ecs:stoptask",
        "ecs:registertaskdefinition",
        "ecs:deregistertaskdefinition",
        "logs:filterlogevents",
    ] {
        assert!(called.contains(needed), "{needed} not called: {called:?}");
    }
    let missing: Vec<&String> = called.iter().filter(|a| !allowed.contains(*a)).collect();
    assert!(missing.is_empty(), "called but not in the deploy policy: {missing:?}");
    // It may stop the workers (tagged as such when RunTask started them), never the service's
    // tasks in the same cluster, nor run another family's task definition.
    let here = ("aws:RequestedRegion", "ap-northeast-1");
    let task = format!("arn:aws:ecs:ap-northeast-1:{}:task/konnichiwa/0123", account.id);
    let stop = |tag: (&str, &str)| {
        allows(&policy, &Request { action: "ecs:StopTask", resource: &task, context: &[here, tag] })
    };
    assert!(stop(("aws:ResourceTag/konnichiwa:role", "loadtest-worker")));
    assert!(!stop(("aws:ResourceTag/konnichiwa:stack", "konnichiwa")), "a service task");
    let cluster = |name: &str| format!("arn:aws:ecs:ap-northeast-1:{}:cluster/{name}", account.id);
    let run = |family: &str, in_cluster: &str| {
        let definition = format!("arn:aws:ecs:ap-northeast-1:{}:task-definition/{family}:3", account.id);
        let context = [here, ("ecs:cluster", in_cluster)];
        allows(&policy, &Request { action: "ecs:RunTask", resource: &definition, context: &context })
    };
    assert!(run("konnichiwa-loadtest", &cluster("konnichiwa")), "the workers' family in the stack's cluster");
    assert!(!run("konnichiwa", &cluster("konnichiwa")), "RunTask of the workers' family only");
    assert!(!run("konnichiwa-loadtest", &cluster("konnichiwa-prod")), "in the stack's cluster only");
    let tagged = c
        .ecs
        .describe_tasks()
        .cluster(CLUSTER)
        .set_tasks(Some(tasks.iter().filter_map(|t| t.task_arn().map(str::to_owned)).collect()))
        .include(aws_sdk_ecs::types::TaskField::Tags)
        .send()
        .await
        .expect("describe");
    for t in tagged.tasks() {
        assert!(
            t.tags().iter().any(|tag| tag.key() == Some("konnichiwa:role") && tag.value() == Some("loadtest-worker")),
            "{:?}",
            t.tags()
        );
    }
}

/// A hundred workers, read through a proxy that holds FilterLogEvents and GetLogEvents to
/// CloudWatch Logs' documented hard limits (5 and 25 calls a second per account and region):
/// one query a poll reads every worker's stream, nothing is throttled, and the merged result is
/// exact. (One GetLogEvents per worker a poll — 50 a second at the default 2 s — could not.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_workers_are_read_within_cloudwatch_logs_read_limits() {
    const WORKERS: usize = 100;
    let (account, c) = stack_up().await;
    let proxy = Proxy::start(&moto_url(), Faults::default()).await;
    proxy.limit_rate("FilterLogEvents", 5);
    proxy.limit_rate("GetLogEvents", 25);
    let image = image();
    let workers = WORKERS.to_string();
    let args = [
        "--json",
        "loadtest",
        "--workers",
        &workers,
        "--start-in",
        "5s",
        "--poll-interval",
        "500ms",
        "--image",
        &image,
        "--rate",
        "100/s",
        "--duration",
        "1s",
        "--endpoint",
        "/",
    ];
    let run = tokio::process::Command::from(account.command(&proxy.url, &args, &[])).output();
    let play = async {
        let tasks = wait_for_workers(&c, WORKERS).await;
        for t in &tasks {
            write(&c, &task_id(t), &worker_result(&command_of(t), 5)).await;
        }
    };
    let (out, ()) = tokio::join!(run, play);
    let out = out.expect("provisioner loadtest");
    let said = crate::common::text(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    let summary: Value = serde_json::from_slice(&out.stdout).expect("--json summary");
    assert_eq!(summary["result"]["total"]["requests"], 5 * WORKERS, "every worker's result, exactly");

    let stats = proxy.stats();
    let of = |op: &str| stats.get(op).cloned().unwrap_or_default();
    let (filter, describe) = (of("FilterLogEvents"), of("DescribeTasks"));
    println!(
        "{WORKERS} workers: {} FilterLogEvents and {} DescribeTasks calls, {} GetLogEvents, {} throttled",
        filter.seen,
        describe.seen,
        of("GetLogEvents").seen,
        filter.throttled + of("GetLogEvents").throttled
    );
    assert_eq!(of("GetLogEvents").seen, 0, "no call per stream");
    assert_eq!(filter.throttled, 0, "within FilterLogEvents' limit: {filter:?}");
    assert!(filter.seen >= 1 && filter.seen <= describe.seen, "one query a poll: {filter:?} vs {describe:?}");
    nothing_left(&c).await;
}

/// Starts `provisioner loadtest` with `extra` flags; the child.
fn spawn(account: &Account, extra: &[&str]) -> tokio::process::Child {
    let image = image();
    let mut args = vec!["loadtest", "--workers", "2", "--poll-interval", "200ms", "--image", &image];
    args.extend_from_slice(extra);
    // The stack's URL is plain http here: the mix leaves out the key's paths (loadtest's flags
    // come after the provisioner's).
    args.extend_from_slice(&["--endpoint", "/"]);
    tokio::process::Command::from(account.command(&moto_url(), &args, &[]))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("provisioner loadtest")
}

async fn finish(child: tokio::process::Child) -> (Option<i32>, String) {
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("it ends")
        .expect("output");
    (out.status.code(), crate::common::text(&out))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupt_a_timeout_or_a_failed_worker_leave_nothing_running_or_registered() {
    let (account, c) = stack_up().await;

    // Ctrl-C while the workers run: exit 130, every task stopped, the revision gone.
    let child = spawn(&account, &["--start-in", "30s", "--rate", "10/s", "--duration", "10s"]);
    let tasks = wait_for_workers(&c, 2).await;
    let pid = child.id().expect("pid").to_string();
    std::process::Command::new("kill").args(["-INT", &pid]).status().expect("kill");
    let (code, said) = finish(child).await;
    assert_eq!(code, Some(130), "{said}");
    assert!(said.contains("stopped 2 worker task(s)") && said.contains("interrupted"), "{said}");
    let stopped = c
        .ecs
        .describe_tasks()
        .cluster(CLUSTER)
        .set_tasks(Some(tasks.iter().filter_map(|t| t.task_arn().map(str::to_owned)).collect()))
        .send()
        .await
        .expect("describe");
    for t in stopped.tasks() {
        assert_eq!(t.last_status(), Some("STOPPED"));
        assert_eq!(t.stopped_reason(), Some("provisioner loadtest: interrupted"));
    }
    nothing_left(&c).await;

    // Nobody reports: the timeout stops everything and says so.
    let child = spawn(&account, &["--start-in", "1s", "--timeout", "3s", "--rate", "10/s", "--duration", "1s"]);
    let (code, said) = finish(child).await;
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("did not finish within 3s (0 of 2 workers reported)"), "{said}");
    nothing_left(&c).await;

    // A worker that stops without a result fails the run with its reason and its own words.
    let child = spawn(&account, &["--start-in", "1s", "--rate", "10/s", "--duration", "1s"]);
    let fresh = wait_for_workers(&c, 2).await;
    let failing = &fresh[0];
    write(&c, &task_id(failing), &["error: started 12.0s after the agreed start time".to_owned()]).await;
    c.ecs
        .stop_task()
        .cluster(CLUSTER)
        .task(failing.task_arn().unwrap_or_default())
        .reason("Essential container in task exited")
        .send()
        .await
        .expect("stop");
    let (code, said) = finish(child).await;
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("stopped without a result: Essential container in task exited"), "{said}");
    assert!(said.contains("— it said: started 12.0s after the agreed start time"), "its own words: {said}");
    assert!(said.contains(&task_id(failing)) && said.contains("every other worker was stopped"), "{said}");
    nothing_left(&c).await;
}

/// A run killed outright (or a CI runner lost) leaves its workers billing Fargate and its
/// revision registered; `down` stops them and deregisters it before the cluster, which AWS (the
/// suite's patched moto) refuses to delete while tasks run. Without that step `down` would wait
/// on ClusterContainsTasksException until its timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_after_a_killed_run_stops_its_workers_and_leaves_nothing() {
    let (account, c) = stack_up().await;
    let mut child = spawn(&account, &["--start-in", "30s", "--rate", "10/s", "--duration", "10s"]);
    let workers = wait_for_workers(&c, 2).await;
    child.kill().await.expect("SIGKILL the run");
    let _ = child.wait().await;
    let orphans: BTreeSet<String> = workers.iter().map(task_id).collect();

    let down = account.json(&["down", "--yes", "--timeout", "2m"], 0);
    let stopped: BTreeSet<String> = down["plan"]["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .filter(|ch| ch["kind"] == "loadtest-task")
        .filter_map(|ch| ch["name"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(stopped, orphans, "down stops exactly the orphaned workers: {down:#}");
    let deregistered = down["plan"]["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .any(|ch| ch["kind"] == "task-definition" && ch["name"] == FAMILY);
    assert!(deregistered, "the workers' revision is deregistered: {down:#}");

    let revisions = registered_revisions(&c).await;
    assert!(revisions.is_empty(), "{revisions:?}");
    let clusters = c.ecs.describe_clusters().clusters(CLUSTER).send().await.expect("describe clusters");
    assert!(
        clusters.clusters().iter().all(|cl| cl.status() == Some("INACTIVE")),
        "the cluster is deleted: {:?}",
        clusters.clusters()
    );
    // A second down finds nothing of the load test to stop.
    let again = account.json(&["down", "--yes", "--purge"], 0);
    assert!(
        again["plan"]["resources"].as_array().expect("resources").iter().all(|ch| ch["kind"] != "loadtest-task"),
        "{again:#}"
    );
}

/// RunTask has no condition key for the network: whoever holds the deploy role could start a
/// task of the workers' family in another VPC. `status` names such a task, and one without the
/// stack's worker tags.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_names_a_load_generator_the_stack_did_not_start() {
    use aws_sdk_ecs::types::{
        AwsVpcConfiguration, Compatibility, ContainerDefinition, LaunchType, NetworkConfiguration, NetworkMode,
    };
    let (account, c) = stack_up().await;
    // Another VPC (DNS hostnames on, as moto's Fargate tasks need) and a group of it.
    let vpc = c.ec2.create_vpc().cidr_block("10.66.0.0/16").send().await.expect("vpc");
    let vpc = vpc.vpc().and_then(|v| v.vpc_id()).expect("vpc id").to_owned();
    let on = aws_sdk_ec2::types::AttributeBooleanValue::builder().value(true).build();
    c.ec2.modify_vpc_attribute().vpc_id(&vpc).enable_dns_hostnames(on).send().await.expect("dns");
    let subnet = c.ec2.create_subnet().vpc_id(&vpc).cidr_block("10.66.0.0/24").send().await.expect("subnet");
    let subnet = subnet.subnet().and_then(|s| s.subnet_id()).expect("subnet id").to_owned();
    let group = c.ec2.create_security_group().group_name("elsewhere").description("x").vpc_id(&vpc).send().await;
    let group = group.expect("group").group_id().expect("id").to_owned();
    c.ecs
        .register_task_definition()
        .family("konnichiwa-loadtest")
        .network_mode(NetworkMode::Awsvpc)
        .requires_compatibilities(Compatibility::Fargate)
        .cpu("256")
        .memory("512")
        .container_definitions(ContainerDefinition::builder().name("loadgen").image("x").memory(512).build())
        .send()
        .await
        .expect("a revision of the workers' family");
    let network = NetworkConfiguration::builder()
        .awsvpc_configuration(
            AwsVpcConfiguration::builder().subnets(&subnet).security_groups(&group).build().expect("awsvpc"),
        )
        .build();
    let run = c
        .ecs
        .run_task()
        .cluster(CLUSTER)
        .task_definition("konnichiwa-loadtest")
        .launch_type(LaunchType::Fargate)
        .network_configuration(network)
        .send()
        .await
        .expect("a task elsewhere");
    let arn = run.tasks()[0].task_arn().expect("arn").to_owned();
    let status = account.json(&["status"], 0);
    let notes: Vec<&str> = status["notes"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    let note = notes.iter().find(|n| n.contains(&arn)).unwrap_or_else(|| panic!("no note names {arn}: {notes:?}"));
    assert!(note.contains("did not start") && note.contains("without the stack's worker tags"), "{note}");
    assert!(note.contains(&format!("in {subnet}, not one of the stack's subnets")), "{note}");
    c.ecs.stop_task().cluster(CLUSTER).task(&arn).send().await.expect("stop");
}
