//! Operating the running service: `logs` (several streams in order, `--since`, `--task`,
//! `--follow` picking up a new task's stream and later lines once each, Ctrl-C), `rollback`, the
//! SLO alarms that roll a deployment back, and a saved plan applied exactly or refused.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use provisioner::aws::Clients;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::common::faults::{Faults, Proxy, Script};
use crate::common::{Account, moto_url, text};

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(0))
}

async fn group(c: &Clients, name: &str) {
    c.logs.create_log_group().log_group_name(name).send().await.expect("log group");
}

/// Writes `lines` (ms, text) into `stream` of `group`, creating the stream when new.
async fn write(c: &Clients, group: &str, stream: &str, lines: &[(i64, &str)]) {
    let _ = c.logs.create_log_stream().log_group_name(group).log_stream_name(stream).send().await;
    let events: Vec<InputLogEvent> = lines
        .iter()
        .map(|(ms, m)| InputLogEvent::builder().timestamp(*ms).message(*m).build().expect("event"))
        .collect();
    c.logs
        .put_log_events()
        .log_group_name(group)
        .log_stream_name(stream)
        .set_log_events(Some(events))
        .send()
        .await
        .expect("put log events");
}

fn app_line(message: &str) -> String {
    format!(r#"{{"timestamp":"2026-11-28T00:00:00Z","level":"INFO","message":"{message}","target":"app"}}"#)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_come_in_order_with_their_task_and_follow_picks_up_new_tasks_once() {
    let account = Account::new();
    let c = account.clients().await;
    group(&c, "/ecs/konnichiwa").await;
    group(&c, "/ecs/konnichiwa-other").await;
    let t = now_ms() - 60_000;
    let (one, two) = ("app/app/aaaa1111bbbb2222", "app/app/cccc3333dddd4444");
    write(&c, "/ecs/konnichiwa", one, &[(t - 3_600_000, "too old"), (t, &app_line("first")), (t + 2000, "third")])
        .await;
    write(&c, "/ecs/konnichiwa", two, &[(t + 1000, &app_line("second"))]).await;
    write(&c, "/ecs/konnichiwa-other", one, &[(t + 500, "another stack's line")]).await;

    let out = account.run(&["logs", "--since", "30m"]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{said}");
    assert!(lines[0].ends_with(" aaaa1111 INFO  first"), "{said}");
    assert!(lines[1].ends_with(" cccc3333 INFO  second"), "{said}");
    assert!(lines[2].ends_with(" aaaa1111 third"), "{said}");
    assert!(!said.contains("too old") && !said.contains("another stack"), "{said}");

    let only = account.run(&["logs", "--since", "30m", "--task", "cccc", "--json"]);
    let objects: Vec<Value> = String::from_utf8_lossy(&only.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(objects.len(), 1, "{}", text(&only));
    assert_eq!(
        (objects[0]["task"].as_str(), objects[0]["message"].as_str()),
        (Some("cccc3333dddd4444"), Some("second"))
    );

    // Nothing to print says so, on stderr: no line in the window (exit 0), a task id that never
    // logged here (exit 1).
    let quiet = account.run(&["logs", "--since", "5s", "--json"]);
    assert_eq!(quiet.status.code(), Some(0), "{}", text(&quiet));
    assert!(quiet.stdout.is_empty(), "stdout stays JSON lines: {}", text(&quiet));
    assert!(String::from_utf8_lossy(&quiet.stderr).contains("no log lines since "), "{}", text(&quiet));
    let known = account.run(&["logs", "--since", "5s", "--task", "cccc"]);
    assert_eq!(known.status.code(), Some(0), "a task that logged, only not lately: {}", text(&known));
    let stranger = account.run(&["logs", "--since", "30m", "--task", "zzzz9999"]);
    assert_eq!(stranger.status.code(), Some(1), "{}", text(&stranger));
    assert!(text(&stranger).contains("no task zzzz9999 in this stack"), "{}", text(&stranger));

    // Follow: the three lines, then a new task's stream and a later line of the first, once each.
    let mut follow = tokio::process::Command::from(account.command(
        &moto_url(),
        &["logs", "--follow", "--since", "30m", "--json"],
        &[],
    ));
    let mut child = follow.stdout(std::process::Stdio::piped()).spawn().expect("logs --follow");
    let mut reader = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut seen: Vec<String> = Vec::new();
    let mut read_until = async |want: &str, seen: &mut Vec<String>| {
        tokio::time::timeout(Duration::from_secs(20), async {
            while let Some(l) = reader.next_line().await.expect("read") {
                let v: Value = serde_json::from_str(&l).expect("json line");
                let m = v["message"].as_str().unwrap_or_default().to_owned();
                seen.push(m.clone());
                if m == want {
                    return;
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{want:?} never came; seen {seen:?}"));
    };
    read_until("third", &mut seen).await;
    let later = now_ms();
    write(&c, "/ecs/konnichiwa", "app/app/eeee5555ffff6666", &[(later, &app_line("a new task"))]).await;
    write(&c, "/ecs/konnichiwa", one, &[(later + 1, "fourth")]).await;
    read_until("fourth", &mut seen).await;
    // One more poll's worth of lines, then a sentinel: nothing may have come twice.
    write(&c, "/ecs/konnichiwa", two, &[(now_ms(), "sentinel")]).await;
    read_until("sentinel", &mut seen).await;
    assert_eq!(seen, ["first", "second", "third", "a new task", "fourth", "sentinel"]);

    let pid = child.id().expect("pid").to_string();
    std::process::Command::new("kill").args(["-INT", &pid]).status().expect("kill");
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait()).await.expect("stops").expect("status");
    assert_eq!(status.code(), Some(0), "Ctrl-C ends a follow cleanly");
}

#[tokio::test]
async fn logs_of_a_stack_that_does_not_exist_say_so() {
    let account = Account::new();
    let out = account.run(&["logs"]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("the log group /ecs/konnichiwa does not exist: stack konnichiwa has not been created"),
        "{said}"
    );
}

fn digest_image(fill: char) -> String {
    format!("127.0.0.1:5000/konnichiwa@sha256:{}", fill.to_string().repeat(64))
}

async fn running(c: &Clients) -> String {
    let svc = c.ecs.describe_services().cluster("konnichiwa").services("konnichiwa").send().await.expect("service");
    svc.services()[0].task_definition().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn rollback_puts_back_the_previous_revision_or_the_one_named_and_follows_it_like_deploy() {
    let account = Account::new();
    let c = account.clients().await;
    let first = account.json(&["up", "--yes"], 0);
    let a = first["outputs"]["service"]["task_definition_arn"].as_str().expect("first revision").to_owned();
    let b = account.json(&["deploy", "--image", &digest_image('b'), "--no-wait"], 0)["task_definition_arn"]
        .as_str()
        .expect("b")
        .to_owned();
    let c_arn = account.json(&["deploy", "--image", &digest_image('c'), "--no-wait"], 0)["task_definition_arn"]
        .as_str()
        .expect("c")
        .to_owned();
    assert_eq!(running(&c).await, c_arn);

    // No --to: the revision before the running one.
    let back = account.json(&["rollback", "--no-wait"], 0);
    assert_eq!(
        (back["from"]["task_definition"].as_str(), back["to"]["task_definition"].as_str()),
        (Some(c_arn.as_str()), Some(b.as_str()))
    );
    assert_eq!(back["to"]["image"], digest_image('b'));
    assert_eq!(crate::common::mutations(&back), ["ECS:UpdateService"], "nothing registered");
    assert_eq!(running(&c).await, b);

    // --to a revision, and --to an image no revision runs (a new revision of the running one).
    let (_, first_revision) = a.rsplit_once(':').expect("revision");
    let out = account.run(&["rollback", "--to", first_revision, "--no-wait"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains(&format!("Rolling back from {b} ({}) to {a} (", digest_image('b'))), "{said}");
    assert_eq!(running(&c).await, a);
    let d = account.json(&["rollback", "--to", &digest_image('d'), "--no-wait"], 0);
    assert_eq!(d["registered"], true);
    assert_eq!(running(&c).await, d["to"]["task_definition"].as_str().expect("d").to_owned());

    let out = account.run(&["rollback", "--to", "99"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("konnichiwa:99 is not an active revision of konnichiwa"), "{}", text(&out));

    // status lists the revisions to choose from, the running one marked.
    let status = text(&account.run(&["status"]));
    assert!(status.contains("Recent revisions (newest first"), "{status}");
    assert!(status.contains(&format!("{}  (running)", digest_image('d'))), "{status}");

    // Followed like a deploy: moto never completes a rollout, so it times out: exit 3.
    let out = account.run(&["rollback", "--timeout", "2s", "--json"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["rollout"]["result"], "timed-out");
}

const ALARMS: [&str; 3] = ["konnichiwa-p95-latency", "konnichiwa-5xx-share", "konnichiwa-no-healthy-target"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slo_alarms_are_made_from_the_slo_repaired_wired_into_the_service_and_removed_by_down() {
    let account = Account::new();
    let c = account.clients().await;
    let proxy = Proxy::start(&moto_url(), Faults::default()).await;
    let up = account.json_at(&proxy.url, &["up", "--yes"], &[], 0).await;
    assert_eq!(up["outputs"]["alarms"]["alarm_names"], serde_json::json!(ALARMS));

    let out = c.cloudwatch.describe_alarms().set_alarm_names(Some(ALARMS.map(String::from).to_vec())).send().await;
    let alarms = out.expect("alarms");
    let by_name = |n: &str| alarms.metric_alarms().iter().find(|a| a.alarm_name() == Some(n)).expect("alarm").clone();
    let p95 = by_name("konnichiwa-p95-latency");
    assert_eq!((p95.extended_statistic(), p95.threshold()), (Some("p95"), Some(0.3)), "p95 < 300ms from slo:");
    assert_eq!(p95.metric_name(), Some("TargetResponseTime"));
    let dims: Vec<&str> = p95.dimensions().iter().filter_map(|d| d.name()).collect();
    assert_eq!(dims, ["LoadBalancer", "TargetGroup"]);
    let share = by_name("konnichiwa-5xx-share");
    assert_eq!(share.threshold(), Some(1.0), "errors < 1% from slo:");
    assert_eq!(share.metrics().len(), 4, "the share and its three metrics");
    assert_eq!(by_name("konnichiwa-no-healthy-target").threshold(), Some(1.0));

    // The service's deployment configuration names the SLO's two, with rollback (moto keeps none
    // of it); no-healthy-target pages but never fails a deployment (a new stack has no target
    // for minutes: src/resources/alarms.rs replays CloudWatch's evaluation of that).
    let create: Value = serde_json::from_str(&proxy.requests("CreateService").concat()).expect("CreateService body");
    let alarms = &create["deploymentConfiguration"]["alarms"];
    assert_eq!(alarms["alarmNames"], serde_json::json!(["konnichiwa-p95-latency", "konnichiwa-5xx-share"]), "{create}");
    assert_eq!((&alarms["enable"], &alarms["rollback"]), (&Value::Bool(true), &Value::Bool(true)), "{create}");
    assert_eq!(
        up["outputs"]["alarms"]["rollback_alarms"],
        serde_json::json!(["konnichiwa-p95-latency", "konnichiwa-5xx-share"])
    );

    // A second up changes nothing; a threshold edited behind our back is drift that up repairs.
    let again = account.json(&["up", "--yes"], 0);
    assert_eq!(crate::common::mutations(&again), Vec::<String>::new());
    let p95_alarm = |threshold: f64| {
        c.cloudwatch
            .put_metric_alarm()
            .alarm_name("konnichiwa-p95-latency")
            .namespace("AWS/ApplicationELB")
            .metric_name("TargetResponseTime")
            .extended_statistic("p95")
            .set_dimensions(Some(p95.dimensions().to_vec()))
            .period(60)
            .evaluation_periods(3)
            .datapoints_to_alarm(3)
            .treat_missing_data("notBreaching")
            .threshold(threshold)
            .comparison_operator(aws_sdk_cloudwatch::types::ComparisonOperator::GreaterThanThreshold)
    };
    p95_alarm(5.0).send().await.expect("edit threshold");
    let plan = text(&account.run(&["plan"]));
    assert!(plan.contains("threshold: 5 -> 0.3"), "{plan}");
    let status = text(&account.run(&["status"]));
    assert!(status.contains("SLO alarms") && status.contains("konnichiwa-p95-latency"), "{status}");
    let repaired = account.json(&["up", "--yes"], 0);
    assert_eq!(crate::common::mutations(&repaired), ["CloudWatch:PutMetricAlarm"]);
    // Silencing it without a visible change — a unit the metric is not published in (stuck in
    // INSUFFICIENT_DATA), percentiles frozen while samples are few — is drift too.
    p95_alarm(0.3)
        .unit(aws_sdk_cloudwatch::types::StandardUnit::Milliseconds)
        .evaluate_low_sample_count_percentile("ignore")
        .send()
        .await
        .expect("silence");
    let plan = text(&account.run(&["plan"]));
    assert!(plan.contains("unit=Milliseconds low_samples=ignore"), "{plan}");
    let repaired = account.json(&["up", "--yes"], 0);
    assert_eq!(crate::common::mutations(&repaired), ["CloudWatch:PutMetricAlarm"]);
    assert_eq!(crate::common::mutations(&account.json(&["up", "--yes"], 0)), Vec::<String>::new(), "repaired");

    // A topic to page: every alarm notifies it.
    let topic = format!("arn:aws:sns:ap-northeast-1:{}:pager", account.id);
    account.edit_stack(|t| t.replace("slo_alarms: true }", &format!("slo_alarms: true, alarm_actions: [{topic}] }}")));
    let paged = account.json(&["up", "--yes"], 0);
    assert_eq!(crate::common::mutations(&paged).len(), 3, "{:#}", paged["plan"]);
    let now = c.cloudwatch.describe_alarms().alarm_name_prefix("konnichiwa-").send().await.expect("alarms");
    assert!(now.metric_alarms().iter().all(|a| a.alarm_actions() == [topic.clone()]), "{now:?}");

    // The stack's own topic: made, tagged, notified beside the named one; off again, deleted.
    account.edit_stack(|t| t.replace("alarm_actions: [", "alarm_topic: true, alarm_actions: ["));
    let with_topic = account.json(&["up", "--yes"], 0);
    let ours = format!("arn:aws:sns:ap-northeast-1:{}:konnichiwa-alarms", account.id);
    let made = crate::common::mutations(&with_topic);
    assert_eq!(made.iter().filter(|m| *m == "SNS:CreateTopic").count(), 1, "{made:?}");
    let tags = c.sns.list_tags_for_resource().resource_arn(&ours).send().await.expect("topic tags");
    assert!(tags.tags().iter().any(|t| t.key() == stack::OWNERSHIP_TAG && t.value() == "konnichiwa"), "{tags:?}");
    let now = c.cloudwatch.describe_alarms().alarm_name_prefix("konnichiwa-").send().await.expect("alarms");
    let mut both = vec![ours.clone(), topic.clone()];
    both.sort();
    assert!(now.metric_alarms().iter().all(|a| a.alarm_actions() == both.as_slice()), "{now:?}");
    assert!(crate::common::mutations(&account.json(&["up", "--yes"], 0)).is_empty(), "a second up changes nothing");
    account.edit_stack(|t| t.replace("alarm_topic: true, ", ""));
    let off = account.json(&["up", "--yes"], 0);
    assert!(crate::common::mutations(&off).contains(&"SNS:DeleteTopic".to_owned()), "{off:#}");
    assert!(c.sns.get_topic_attributes().topic_arn(&ours).send().await.is_err(), "turned off, the topic is gone");

    // Made again, `down` deletes it with the rest.
    account.edit_stack(|t| t.replace("alarm_actions: [", "alarm_topic: true, alarm_actions: ["));
    account.json(&["up", "--yes"], 0);
    account.json(&["down", "--yes", "--purge"], 0);
    let left = c.cloudwatch.describe_alarms().alarm_name_prefix("konnichiwa-").send().await.expect("alarms");
    assert!(left.metric_alarms().is_empty(), "down removed them");
    assert!(c.sns.get_topic_attributes().topic_arn(&ours).send().await.is_err(), "and the topic");
}

#[tokio::test]
async fn budget_alerts_are_made_from_the_availability_and_latency_slos_repaired_and_removed() {
    use aws_sdk_cloudwatch::types::AlarmType;
    let account = Account::new();
    let c = account.clients().await;
    let budgets = "max_error_rate: 1%, availability: 99.9%, latency: 99% }";
    account.edit_stack(|t| {
        t.replace("max_error_rate: 1% }", budgets)
            .replace("slo_alarms: true }", "slo_alarms: true, alarm_topic: true }")
    });
    let up = account.json(&["up", "--yes"], 0);
    let made = crate::common::mutations(&up);
    assert_eq!(made.iter().filter(|m| *m == "CloudWatch:PutCompositeAlarm").count(), 6, "{made:?}");
    let census = crate::common::census::take(&c, "konnichiwa").await;
    assert_eq!((census["burn-alarm"], census["budget-alert"]), (12, 6), "{census:?}");

    let (alerts, windows) = provisioner::resources::budget::names("konnichiwa");
    let both = c
        .cloudwatch
        .describe_alarms()
        .set_alarm_names(Some(alerts.iter().chain(&windows).cloned().collect()))
        .alarm_types(AlarmType::MetricAlarm)
        .alarm_types(AlarmType::CompositeAlarm)
        .send()
        .await
        .expect("budget alarms");
    let fast = both.composite_alarms().iter().find(|a| a.alarm_name() == Some("konnichiwa.budget.page-fast"));
    let fast = fast.expect("page-fast");
    assert_eq!(
        fast.alarm_rule(),
        Some(r#"ALARM("konnichiwa.budget.page-fast.1h") AND ALARM("konnichiwa.budget.page-fast.5m")"#)
    );
    let ours = format!("arn:aws:sns:ap-northeast-1:{}:konnichiwa-alarms", account.id);
    assert_eq!(fast.alarm_actions(), [ours]);
    let hour = both.metric_alarms().iter().find(|a| a.alarm_name() == Some("konnichiwa.budget.page-fast.1h"));
    let hour = hour.expect("the 1h window");
    assert!((hour.threshold().expect("threshold") - 1.44).abs() < 1e-9, "14.4 × the 0.1% budget");
    let periods: Vec<i32> = hour.metrics().iter().filter_map(|m| m.metric_stat()).filter_map(|s| s.period()).collect();
    assert_eq!(periods, [3600, 3600, 3600], "one period of the window's length");
    assert!(hour.alarm_actions().is_empty(), "a window notifies nobody; its alert does");
    // The latency budget's: the share of answers within 300 ms, by the percentile rank.
    let slow = both.metric_alarms().iter().find(|a| a.alarm_name() == Some("konnichiwa.budget.latency.page-fast.1h"));
    let slow = slow.expect("the latency budget's 1h window");
    let stats: Vec<(&str, i32)> = slow
        .metrics()
        .iter()
        .filter_map(|m| m.metric_stat())
        .map(|s| (s.stat().unwrap_or_default(), s.period().unwrap_or_default()))
        .collect();
    assert_eq!(stats, [("Sum", 3600), ("PR(:0.3)", 3600)], "the requests, and the share within 300 ms");
    assert_eq!(slow.comparison_operator().map(|o| o.as_str()), Some("LessThanThreshold"));
    assert!((slow.threshold().expect("threshold") - 85.6).abs() < 1e-9, "100 − 14.4 × the 1% budget");

    // `status` reads where the budget stands from the load balancer's metrics: 2 of 1,000
    // requests failed, twice the 0.1% the budget allows, so it is overspent and burns at 2×.
    let arn = |key: &str| up["outputs"]["load_balancer"][key].as_str().expect("arn").to_owned();
    let (lb, tg) = (arn("load_balancer_arn"), arn("target_group_arn"));
    let dim =
        |name: &str, value: String| aws_sdk_cloudwatch::types::Dimension::builder().name(name).value(value).build();
    let lb_dim = dim("LoadBalancer", lb.split_once(":loadbalancer/").expect("lb").1.to_owned());
    let tg_dim = dim("TargetGroup", format!("targetgroup/{}", tg.split_once(":targetgroup/").expect("tg").1));
    let at = aws_smithy_types::DateTime::from(std::time::SystemTime::now() - std::time::Duration::from_secs(600));
    // The targets answered 3 of 100 sampled requests slower than 300 ms: 3% slow, 3× the 1%.
    let times = (0..100).map(|i| ("TargetResponseTime", if i < 3 { 0.5 } else { 0.05 }));
    for (metric, value) in [("RequestCount", 1000.0), ("HTTPCode_Target_5XX_Count", 2.0)].into_iter().chain(times) {
        let datum = aws_sdk_cloudwatch::types::MetricDatum::builder()
            .metric_name(metric)
            .dimensions(lb_dim.clone())
            .dimensions(tg_dim.clone())
            .value(value)
            .timestamp(at)
            .build();
        c.cloudwatch.put_metric_data().namespace("AWS/ApplicationELB").metric_data(datum).send().await.expect("datum");
    }
    let status = account.json(&["status"], 0);
    let budget = &status["error_budget"];
    assert_eq!((budget["requests"].as_f64(), budget["errors"].as_f64()), (Some(1000.0), Some(2.0)), "{budget:#}");
    assert!((budget["burn_rate"].as_f64().expect("burn") - 2.0).abs() < 1e-6, "{budget:#}");
    assert!(budget["left_percent"].as_f64().expect("left") < 0.0, "overspent: {budget:#}");
    let latency = &status["latency_budget"];
    assert_eq!((latency["requests"].as_f64(), latency["within_seconds"].as_f64()), (Some(1000.0), Some(0.3)));
    assert!((latency["slow"].as_f64().expect("slow") - 30.0).abs() < 1e-6, "{latency:#}");
    assert!((latency["burn_rate"].as_f64().expect("burn") - 3.0).abs() < 1e-6, "{latency:#}");
    assert!((latency["left_percent"].as_f64().expect("left") + 200.0).abs() < 1e-6, "{latency:#}");

    // A second up changes nothing; an alert's rule edited behind our back is drift up repairs.
    assert_eq!(crate::common::mutations(&account.json(&["up", "--yes"], 0)), Vec::<String>::new());
    c.cloudwatch
        .put_composite_alarm()
        .alarm_name("konnichiwa.budget.ticket")
        .alarm_rule(r#"ALARM("konnichiwa.budget.ticket.3d")"#)
        .send()
        .await
        .expect("edit the rule");
    let plan = text(&account.run(&["plan"]));
    assert!(plan.contains("budget-alert konnichiwa.budget.ticket") && plan.contains("rule:"), "{plan}");
    let repaired = account.json(&["up", "--yes"], 0);
    assert_eq!(crate::common::mutations(&repaired), ["CloudWatch:PutCompositeAlarm"]);
    // Its tags alone are TagResource's (the deploy role may), not PutCompositeAlarm's.
    let ticket = both.composite_alarms().iter().find(|a| a.alarm_name() == Some("konnichiwa.budget.ticket"));
    let ticket_arn = ticket.and_then(|a| a.alarm_arn()).expect("ticket arn");
    c.cloudwatch.untag_resource().resource_arn(ticket_arn).tag_keys("project").send().await.expect("untag");
    let retagged = account.json(&["up", "--yes"], 0);
    assert_eq!(crate::common::mutations(&retagged), ["CloudWatch:TagResource"]);

    // Off: up deletes the alerts, then their windows; on again, down deletes them with the rest.
    account.edit_stack(|t| t.replace(", availability: 99.9%, latency: 99%", ""));
    let off = account.json(&["up", "--yes"], 0);
    let deleted = crate::common::mutations(&off);
    assert_eq!(deleted.iter().filter(|m| *m == "CloudWatch:DeleteAlarms").count(), 18, "{deleted:?}");
    let census = crate::common::census::take(&c, "konnichiwa").await;
    assert_eq!((census["burn-alarm"], census["budget-alert"]), (0, 0));
    account.edit_stack(|t| t.replace("max_error_rate: 1% }", budgets));
    account.json(&["up", "--yes"], 0);
    account.json(&["down", "--yes", "--purge"], 0);
    let left = crate::common::census::leftovers(&crate::common::census::take(&c, "konnichiwa").await);
    assert_eq!(left, Vec::<String>::new(), "down left nothing");
}

/// ECS rolls a deployment back when an SLO alarm fires: the follower names the alarm, exit 3.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_rolled_back_by_an_slo_alarm_says_which_and_exits_3() {
    let account = Account::new();
    let c = account.clients().await;
    let up = account.json(&["up", "--yes"], 0);
    let first = up["outputs"]["service"]["task_definition_arn"].as_str().expect("revision").to_owned();
    c.cloudwatch
        .set_alarm_state()
        .alarm_name("konnichiwa-p95-latency")
        .state_value(aws_sdk_cloudwatch::types::StateValue::Alarm)
        .state_reason("Threshold Crossed: 3 datapoints were greater than the threshold (0.3)")
        .send()
        .await
        .expect("set alarm state");
    // What DescribeServices answers after ECS rolled back: only the first revision, PRIMARY.
    let proxy = Proxy::start(&moto_url(), Faults::default()).await;
    let rolled_back = serde_json::json!({
        "services": [{
            "serviceName": "konnichiwa", "status": "ACTIVE", "taskDefinition": first,
            "deployments": [{"id": "ecs-svc/0000000000000000001", "status": "PRIMARY", "taskDefinition": first,
                             "desiredCount": 2, "runningCount": 2, "rolloutState": "COMPLETED"}],
            "events": []
        }],
        "failures": []
    });
    proxy.script(Script::body("DescribeServices", 1_000, &rolled_back.to_string()));
    let out = account.run_at(&proxy.url, &["deploy", "--image", &digest_image('e'), "--json"], &[]).await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["rollout"]["result"], "rolled-back");
    assert_eq!(v["rollout"]["reason"], "rolled back: alarm konnichiwa-p95-latency in ALARM");
}

fn with_exec(text: String) -> String {
    text.replacen("  container_port: 8080", "  container_port: 8080\n  exec: true", 1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_is_off_by_default_and_when_on_the_service_role_and_tasks_are_ready_for_it() {
    let account = Account::new();
    let off = text(&account.run(&["plan", "--json"]));
    assert!(!off.contains("ssmmessages"), "no Session Manager permission unless exec is on");
    account.edit_stack(with_exec);
    let on = text(&account.run(&["plan", "--json"]));
    assert!(on.contains("ssmmessages:CreateControlChannel"), "the plan shows the task role's new permission");

    let proxy = Proxy::start(&moto_url(), Faults::default()).await;
    account.json_at(&proxy.url, &["up", "--yes"], &[], 0).await;
    let create = proxy.requests("CreateService").concat();
    assert!(create.contains("\"enableExecuteCommand\":true"), "{create}");
    let register = proxy.requests("RegisterTaskDefinition").concat();
    for dir in ["/managed-agents", "/var/lib/amazon/ssm", "/var/log/amazon/ssm"] {
        assert!(register.contains(&format!("\"containerPath\":\"{dir}\"")), "{register}");
    }
    assert!(register.contains("\"readonlyRootFilesystem\":true"), "the root filesystem stays read-only");
    let again = account.json(&["up", "--yes"], 0);
    assert_eq!(crate::common::mutations(&again), Vec::<String>::new(), "the volumes read back as sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_hands_the_session_to_the_plugin_as_the_aws_cli_does_and_needs_the_plugin_first() {
    let account = Account::new();
    account.edit_stack(with_exec);
    let proxy = Proxy::start(&moto_url(), Faults::default()).await;

    // Without the plugin: the error at once, and no AWS call at all.
    let out = account.run_at(&proxy.url, &["exec"], &[("PATH", "/usr/bin:/bin")]).await;
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("session-manager-plugin is not on PATH") && said.contains("No session was opened"), "{said}");
    assert!(proxy.stats().is_empty(), "nothing was called: {:?}", proxy.stats());

    // A plugin that records what it is given.
    let bin = account.dir.join("bin");
    std::fs::create_dir_all(&bin).expect("bin");
    let plugin = bin.join("session-manager-plugin");
    std::fs::write(&plugin, "#!/bin/sh\nprintf '%s\\n' \"$@\" > \"$(dirname \"$0\")/args\"\n").expect("plugin");
    std::fs::set_permissions(&plugin, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    let a = &account.id;
    let task = format!("arn:aws:ecs:ap-northeast-1:{a}:task/konnichiwa/aaaa1111bbbb2222");
    let token = "AAEAAHn1c2Vzc2lvbi10b2tlbi1uZXZlci1wcmludGVk";
    proxy.script(Script::body("ListTasks", 1, &serde_json::json!({ "taskArns": [task] }).to_string()));
    let session = serde_json::json!({
        "sessionId": "ecs-execute-command-0a1b2c3d",
        "streamUrl": "wss://ssmmessages.ap-northeast-1.amazonaws.com/v1/data-channel/ecs-execute-command-0a1b2c3d",
        "tokenValue": token,
    });
    let answer = serde_json::json!({
        "clusterArn": format!("arn:aws:ecs:ap-northeast-1:{a}:cluster/konnichiwa"),
        "containerName": "app", "interactive": true, "taskArn": task, "session": session,
    });
    proxy.script(Script::body("ExecuteCommand", 1, &answer.to_string()));
    let tasks = serde_json::json!({
        "tasks": [{ "taskArn": task, "containers": [{ "name": "app", "runtimeId": "aaaa1111bbbb2222-3652357137" }] }],
        "failures": [],
    });
    proxy.script(Script::body("DescribeTasks", 1, &tasks.to_string()));
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let out =
        account.run_at(&proxy.url, &["exec", "--task", "aaaa", "--", "/app", "healthcheck"], &[("PATH", &path)]).await;
    let said = text(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(!said.contains(token), "the session token is never printed");

    let args: Vec<String> =
        std::fs::read_to_string(bin.join("args")).expect("the plugin ran").lines().map(str::to_owned).collect();
    assert_eq!(args.len(), 6, "{args:?}");
    assert_eq!(serde_json::from_str::<Value>(&args[0]).expect("session json"), session);
    assert_eq!(&args[1..4], ["ap-northeast-1", "StartSession", ""]);
    assert_eq!(
        serde_json::from_str::<Value>(&args[4]).expect("target json"),
        serde_json::json!({ "Target": "ecs:konnichiwa_aaaa1111bbbb2222_aaaa1111bbbb2222-3652357137" })
    );
    assert_eq!(args[5], proxy.url, "the ECS endpoint, as the AWS CLI passes it");
    let sent = proxy.requests("ExecuteCommand").concat();
    for part in
        ["\"command\":\"/app healthcheck\"", "\"interactive\":true", "\"container\":\"app\"", "aaaa1111bbbb2222"]
    {
        assert!(sent.contains(part), "{part} missing from {sent}");
    }
}

/// CloudWatch Logs throttling a follow (beyond the SDK's retries): it polls less often and goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_follow_slows_down_and_keeps_going() {
    let account = Account::new();
    let c = account.clients().await;
    group(&c, "/ecs/konnichiwa").await;
    write(&c, "/ecs/konnichiwa", "app/app/aaaa1111", &[(now_ms(), "before")]).await;
    let proxy = Proxy::start(&moto_url(), Faults::default()).await;
    // The first poll after the initial read is throttled (the SDK gives up at once here).
    proxy.script(Script::error("FilterLogEvents", 1, "ThrottlingException", "Rate exceeded").after(1));
    let mut follow = tokio::process::Command::from(account.command(
        &proxy.url,
        &["logs", "-f", "--since", "5m"],
        &[("AWS_MAX_ATTEMPTS", "1")],
    ));
    let mut child =
        follow.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().expect("logs -f");
    let mut out = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first = tokio::time::timeout(Duration::from_secs(10), out.next_line()).await.expect("a line").expect("read");
    assert!(first.is_some_and(|l| l.ends_with(" aaaa1111 before")));
    write(&c, "/ecs/konnichiwa", "app/app/aaaa1111", &[(now_ms(), "after")]).await;
    let next = tokio::time::timeout(Duration::from_secs(20), out.next_line()).await.expect("goes on").expect("read");
    assert!(next.is_some_and(|l| l.ends_with(" aaaa1111 after")));
    std::process::Command::new("kill").args(["-INT", &child.id().expect("pid").to_string()]).status().expect("kill");
    let done =
        tokio::time::timeout(Duration::from_secs(10), child.wait_with_output()).await.expect("stops").expect("out");
    assert_eq!(done.status.code(), Some(0));
    let said = String::from_utf8_lossy(&done.stderr);
    assert!(said.contains("note: CloudWatch Logs is throttling; polling every 4s"), "{said}");
    assert_eq!(proxy.stats()["FilterLogEvents"].scripted, 1);
}

#[test]
fn a_saved_plan_is_applied_exactly_or_refused_before_any_change() {
    let account = Account::new();
    let dir = std::env::temp_dir().join(format!("konnichiwa-saved-plan-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = |name: &str| dir.join(name).to_string_lossy().into_owned();
    let (first, second) = (file("first.json"), file("second.json"));
    let key = "saved-plan-key-0123456789abcdef";
    assert_eq!(account.run_with(&["plan", "--out", &first], &[("API_KEY", key)]).status.code(), Some(0));
    assert!(!std::fs::read_to_string(&first).expect("saved").contains(key), "no secret value in a plan");
    let applied = account.json_with(&["up", "--plan", &first], &[("API_KEY", key)], 0);
    assert_eq!(applied["applied"], true, "applied without asking: {applied}");

    // The stack file changed since the plan: refused.
    account.edit_stack(|t| t.replace("logs: { retention_days: 30 }", "logs: { retention_days: 14 }"));
    let stale = account.run(&["up", "--plan", &first]);
    assert_eq!(stale.status.code(), Some(1), "{}", text(&stale));
    assert!(text(&stale).contains("the stack file (or a file it extends) has changed since"), "{}", text(&stale));

    // AWS changed since the plan (another run applied it): refused, naming the row.
    assert_eq!(account.run(&["plan", "--out", &second]).status.code(), Some(0));
    account.json(&["up", "--yes"], 0);
    let moved = account.json(&["up", "--plan", &second], 1);
    let error = moved["error"].as_str().unwrap_or_default();
    assert!(error.contains("AWS has changed since: log-group"), "{moved}");
    assert!(moved["error"].as_str().is_some_and(|e| e.contains("Nothing was changed")), "{moved}");

    // Another account, the same stack file: refused (an empty account's plan fits every empty one).
    let other = Account::new();
    other.edit_stack(|t| t.replace("logs: { retention_days: 30 }", "logs: { retention_days: 14 }"));
    let elsewhere = other.run(&["up", "--plan", &second]);
    assert_eq!(elsewhere.status.code(), Some(1), "{}", text(&elsewhere));
    assert!(text(&elsewhere).contains(&format!("it was made in account {}", account.id)), "{}", text(&elsewhere));
    std::fs::remove_dir_all(&dir).expect("clean up");
}
