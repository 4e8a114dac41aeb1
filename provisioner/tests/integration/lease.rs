//! The stack's lease where real machines differ from a test's: a killed run left as a zombie, a
//! run whose lease another run takes (or whose renewals fail) while it is changing the stack,
//! clocks that disagree, and a renewal that raced `unlock`. Expiry is judged by SSM's clock, and
//! a run that lost its lease makes no further change (src/lease/).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::common;
use crate::common::faults::{Faults, Proxy, Script};
use crate::common::{Account, moto_url};

const LEASE: &str = "/konnichiwa/konnichiwa/lease";

fn now_unix() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("time").as_secs()
}

/// A holder on another machine (another host id), as its record says.
fn elsewhere(since: u64, expires: u64) -> Value {
    json!({
        "command": "up", "host": "ci-runner-8", "host_id": "0123456789abcdef", "pid": 4242, "process_start": 1,
        "ci_run": "octo/konnichiwa run 100", "user": "runner", "since_unix": since, "expires_unix": expires
    })
}

async fn put(c: &provisioner::aws::Clients, name: &str, value: &str) {
    c.ssm
        .put_parameter()
        .name(name)
        .value(value)
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .overwrite(true)
        .send()
        .await
        .expect("put parameter");
}

/// The lease's parameters now (records and heartbeats), by name.
async fn parameters(c: &provisioner::aws::Clients) -> Vec<String> {
    let out = c.ssm.get_parameters_by_path().path(LEASE).recursive(true).send().await.expect("lease");
    out.parameters().iter().filter_map(|p| p.name().map(str::to_owned)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_killed_and_left_a_zombie_does_not_block_the_next_one() {
    let account = Account::new();
    let c = account.clients().await;
    // `up`, killed with SIGKILL and never reaped (as under a PID 1 that does not reap).
    let mut first = account.command(&moto_url(), &["up", "--yes"], &[]);
    first.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
    let mut child = first.spawn().expect("spawn up");
    let pid = child.id();
    let mut held = false;
    for _ in 0..400 {
        if !parameters(&c).await.is_empty() {
            held = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(held, "the first run never took the lease");
    std::process::Command::new("kill").args(["-KILL", &pid.to_string()]).status().expect("kill");
    let mut zombie = false;
    for _ in 0..200 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')) {
            zombie = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(zombie, "the killed run should be a zombie until reaped");
    // The next run on this host takes the lease over at once and finishes the stack.
    let next = account.json_at(&moto_url(), &["up", "--yes"], &[], 0).await;
    let taken = next["lease"]["taken"].as_str().unwrap_or_default();
    assert!(taken.contains(&format!("pid {pid}")) && taken.contains("no longer runs on this host"), "{taken}");
    let _ = child.wait();
}

/// A mutating call of the stack (the lease's own aside).
fn is_stack_mutation(op: &str) -> bool {
    provisioner::aws::is_mutating(op) && !["PutParameter", "DeleteParameter"].contains(&op)
}

/// Reads `lines` into `said` until a line `stop` accepts (true) or their end (false).
async fn read_until(
    lines: &mut tokio::io::Lines<impl tokio::io::AsyncBufRead + Unpin>,
    said: &mut String,
    stop: impl Fn(&str) -> bool,
) -> bool {
    while let Ok(Some(line)) = lines.next_line().await {
        said.push_str(&line);
        said.push('\n');
        if stop(&line) {
            return true;
        }
    }
    false
}

/// `up` held after its 6th change while `meanwhile` happens; once it says it has lost its lease
/// (a warning on stderr), the held answer goes back, and the run must make no further change.
async fn a_run_that_loses_its_lease(meanwhile: impl AsyncFnOnce(&Account, &Proxy), expected: &str) {
    use tokio::io::AsyncBufReadExt;
    let account = Account::new();
    let proxy = Proxy::start(&moto_url(), Faults::default()).await;
    let (mut held, release) = proxy.hold_after_mutation(6);
    let mut up =
        tokio::process::Command::from(account.command(&proxy.url, &["up", "--yes"], &[("KONNICHIWA_LEASE_TTL", "6s")]));
    up.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let mut child = up.spawn().expect("spawn up");
    let mut stderr = tokio::io::BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut stdout = child.stdout.take().expect("stdout");
    let printed = tokio::spawn(async move {
        let mut text = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut stdout, &mut text).await.map(|_| text)
    });
    tokio::select! {
        n = held.recv() => assert_eq!(n, Some(6)),
        ended = child.wait() => {
            let mut said = String::new();
            read_until(&mut stderr, &mut said, |_| false).await;
            panic!("`up` ended ({ended:?}) before its 6th change: {said}");
        }
    }
    meanwhile(&account, &proxy).await;
    let mut said = String::new();
    let lost = |line: &str| line.contains("makes no further change");
    let noticed = tokio::time::timeout(Duration::from_secs(60), read_until(&mut stderr, &mut said, lost)).await;
    assert_eq!(noticed, Ok(true), "the run never said it lost its lease: {said}");
    // Calls sent before the run noticed may still land after it said so (they were in flight);
    // what must not happen is a change sent after: none may arrive once the warning was read.
    let noticed_at = std::time::Instant::now();
    release.notify_one();
    let rest = tokio::time::timeout(Duration::from_secs(120), async {
        read_until(&mut stderr, &mut said, |_| false).await;
        child.wait().await.expect("wait for up")
    })
    .await
    .expect("up ends once its held answer is back");
    said.push_str(&printed.await.expect("stdout task").expect("read stdout"));
    assert_eq!(rest.code(), Some(1), "{said}");
    assert!(said.contains(expected) && said.contains("not sent"), "{said}");
    let after: Vec<String> = proxy
        .arrivals()
        .into_iter()
        .filter(|(at, op)| *at > noticed_at && is_stack_mutation(op))
        .map(|(_, op)| op)
        .collect();
    assert!(after.is_empty(), "changes sent after the lease was lost: {after:?}\n{said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_lease_is_taken_over_makes_no_further_change() {
    a_run_that_loses_its_lease(
        async |account: &Account, _: &Proxy| {
            let c = account.clients().await;
            let ours = parameters(&c).await;
            let top = ours.iter().filter_map(|n| n.rsplit('/').next()?.parse::<u64>().ok()).max().expect("ours");
            let now = now_unix();
            put(&c, &format!("{LEASE}/{:010}", top + 1), &elsewhere(now, now + 120).to_string()).await;
        },
        "the lease was taken over by `up` on ci-runner-8",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_cannot_renew_its_lease_makes_no_further_change() {
    a_run_that_loses_its_lease(
        async |_: &Account, proxy: &Proxy| {
            // SSM throttles every renewal from now on.
            proxy.script(Script::error("PutParameter", 1_000, "ThrottlingException", "Rate exceeded"));
        },
        "the lease could not be renewed",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_is_judged_by_ssms_clock_not_the_holders_or_ours() {
    let account = Account::new();
    let c = account.clients().await;
    let now = now_unix();
    // A holder whose clock is an hour behind: by its own numbers it expired long ago, but SSM
    // saw it write just now. It holds.
    put(&c, &format!("{LEASE}/0000000004"), &elsewhere(now - 3_700, now - 3_600).to_string()).await;
    let refused = account.run_at(&moto_url(), &["up", "--yes"], &[]).await;
    assert_eq!(refused.status.code(), Some(1), "{}", common::text(&refused));
    assert!(common::text(&refused).contains("is being changed by `up` on ci-runner-8"), "{}", common::text(&refused));

    // A holder whose clock is an hour ahead (it says it expires in an hour) that SSM last saw
    // renew ten minutes ago: expired.
    let proxy = Proxy::start(&moto_url(), Faults::default()).await;
    let value = elsewhere(now + 3_500, now + 3_600).to_string();
    let stale = json!({ "Parameters": [{
        "Name": format!("{LEASE}/0000000004"), "Type": "String", "Value": value, "Version": 1,
        "LastModifiedDate": (now - 600) as f64, "DataType": "text",
        "ARN": format!("arn:aws:ssm:ap-northeast-1:{}:parameter{LEASE}/0000000004", account.id)
    }]});
    proxy.script(Script::body("GetParametersByPath", 1, &stale.to_string()));
    let up = account.json_at(&proxy.url, &["up", "--yes"], &[], 0).await;
    let taken = up["lease"]["taken"].as_str().unwrap_or_default();
    assert!(taken.contains("ci-runner-8") && taken.contains("by SSM's clock"), "{taken}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewal_that_raced_unlock_binds_nobody() {
    let account = Account::new();
    let c = account.clients().await;
    // What a renewal leaves when `unlock` deleted the record under it: a heartbeat alone.
    put(&c, &format!("{LEASE}/0000000005/renewed"), "2026-12-01T00:00:00Z").await;
    let up = account.json_at(&moto_url(), &["up", "--yes"], &[], 0).await;
    assert_eq!(up["lease"]["taken"], "free");
    assert!(parameters(&c).await.is_empty(), "the stray heartbeat went with the release");
}
