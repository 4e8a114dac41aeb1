//! Convergence under a busy AWS account, against moto behind the fault proxy (common/faults.rs):
//! `up` converges with 15% of calls throttled and with 10% of mutating calls' answers lost; in
//! every case the stack's resources are exactly a clean run's (no duplicates), a second `up`
//! changes nothing, and `down` leaves nothing. Fixed seeds; the figures (extra calls the faults
//! cost) are printed for docs/BENCHMARKS.md (`cargo test -p provisioner --test integration -- convergence:: --nocapture`).

use crate::common;

use crate::common::census;
use crate::common::faults::{Faults, Proxy};
use crate::common::{Account, moto_url};
use serde_json::Value;

const KEY: &str = "convergence-test-key-0123456789ab";

fn calls(v: &Value) -> (u64, u64) {
    (v["api_calls"]["read"].as_u64().unwrap_or(0), v["api_calls"]["mutating"].as_u64().unwrap_or(0))
}

/// `up` through a proxy with `faults`, then the checks every fault profile must pass.
async fn converges_under(faults: Faults, label: &str) {
    let account = Account::new();
    let proxy = Proxy::start(&moto_url(), faults).await;
    let env = [("API_KEY", KEY)];
    let up = account.json_at(&proxy.url, &["up", "--yes"], &env, 0).await;
    let (reads, mutations) = calls(&up);
    let (seen, throttled, lost, _) = proxy.totals();
    println!(
        "{label}: up converged with {reads} reads + {mutations} mutations by the provisioner's count; \
         {seen} requests reached the proxy ({throttled} throttled, {lost} answers lost)"
    );
    let c = account.clients().await;
    assert_eq!(census::take(&c, "konnichiwa").await, census::clean(), "{label}: no duplicates, nothing missing");

    // The faults stop: a second `up` has nothing to do.
    proxy.set_faults(Faults::default());
    let again = account.json_at(&proxy.url, &["up", "--yes"], &env, 0).await;
    assert_eq!(again["api_calls"]["mutating"], 0, "{label}: {:#}", again["api_calls"]);

    // `down` under the same faults leaves nothing tagged.
    proxy.set_faults(faults);
    let down = account.json_at(&proxy.url, &["down", "--yes", "--purge"], &env, 0).await;
    assert_eq!(down["leftovers"], serde_json::json!([]), "{label}");
    let left = census::leftovers(&census::take(&c, "konnichiwa").await);
    assert!(left.is_empty(), "{label}: down left {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_converges_with_15_percent_of_calls_throttled() {
    converges_under(Faults { seed: 15, throttle: 0.15, lose_answer: 0.0 }, "15% throttled").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_converges_with_10_percent_of_answers_lost() {
    converges_under(Faults { seed: 10, throttle: 0.0, lose_answer: 0.10 }, "10% answers lost").await;
}

/// `up --yes` plans and then applies, and the apply's reads before its first change to a service
/// are the plan's: answered from the plan's answers, not sent again (`read_replay`), and counted
/// apart, so that the reported reads are the reads AWS had.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cold_up_does_not_send_again_the_reads_its_plan_just_made() {
    let account = Account::new();
    let proxy = Proxy::start(&moto_url(), Faults::default()).await;
    let up = account.json_at(&proxy.url, &["up", "--yes"], &[("API_KEY", KEY)], 0).await;
    let (reads, mutations) = calls(&up);
    let (lease_reads, lease_mutations) = calls(&up["lease"]);
    let stats = proxy.stats();
    let sent = |mutating: bool| -> u64 {
        stats
            .iter()
            .filter(|(op, _)| provisioner::aws::is_mutating(op) == mutating)
            .map(|(_, s)| s.forwarded as u64)
            .sum()
    };
    assert_eq!((sent(false), sent(true)), (reads + lease_reads, mutations + lease_mutations), "{:#}", up["api_calls"]);
    let replayed = up["api_calls"]["replayed"].as_u64().expect("replayed");
    println!("cold up: {reads} reads sent, {replayed} given the plan's answers, {mutations} mutations");
    // The plan's reads of every kind at once, most of them again at the start of the apply.
    assert!(replayed >= 15, "{replayed} of the plan's {reads} reads replayed: {:#}", up["api_calls"]);
    // A no-op `up` applies nothing: nothing replayed.
    let again = account.json_at(&proxy.url, &["up", "--yes"], &[("API_KEY", KEY)], 0).await;
    assert_eq!(again["api_calls"]["replayed"], 0);
}

#[test]
fn faults_are_repeatable_for_a_seed_and_hit_the_share_asked_for() {
    let a: Vec<f64> = (0..1000).map(|n| common::faults::draw(7, "throttle", "DescribeVpcs", n)).collect();
    let b: Vec<f64> = (0..1000).map(|n| common::faults::draw(7, "throttle", "DescribeVpcs", n)).collect();
    assert_eq!(a, b);
    let share = a.iter().filter(|x| **x < 0.15).count();
    assert!((100..200).contains(&share), "{share} of 1000 under 0.15");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_run_for_comparison() {
    let account = Account::new();
    let proxy = Proxy::start(&moto_url(), Faults::default()).await;
    let up = account.json_at(&proxy.url, &["up", "--yes"], &[("API_KEY", KEY)], 0).await;
    let (reads, mutations) = calls(&up);
    println!("clean: up made {reads} reads + {mutations} mutations; {} requests reached the proxy", proxy.totals().0);
    assert_eq!(census::take(&account.clients().await, "konnichiwa").await, census::clean());
}

/// `up` killed with SIGKILL right after its `k`th mutating call was carried out (before its
/// answer arrived), then a rerun: it converges to a clean run's resources; with `then_down`, a
/// third `up` changes nothing and `down` leaves nothing. Returns the mutations of the rerun.
async fn killed_at(k: usize, then_down: bool) -> usize {
    let account = Account::new();
    let proxy = Proxy::start(&moto_url(), Faults::default()).await;
    let env = [("API_KEY", KEY)];
    let mut killed = proxy.stop_after_mutation(k);
    let mut up = account.command(&proxy.url, &["up", "--yes"], &env);
    up.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
    let mut child = tokio::process::Command::from(up).spawn().expect("spawn up");
    tokio::select! {
        n = killed.recv() => {
            assert_eq!(n, Some(k));
            child.kill().await.expect("SIGKILL");
        }
        status = child.wait() => panic!("up ended ({status:?}) before its mutation {k}: pick kill points below the total"),
    }
    proxy.stop_after_mutation(usize::MAX);
    let rerun = account.json_at(&proxy.url, &["up", "--yes"], &env, 0).await;
    assert!(
        rerun["lease"]["taken"].as_str().is_some_and(|t| t == "free" || t.contains("no longer runs on this host")),
        "killed at {k}: the dead run's lease is taken over at once: {}",
        rerun["lease"]
    );
    let c = account.clients().await;
    assert_eq!(census::take(&c, "konnichiwa").await, census::clean(), "killed at mutation {k}: no duplicates");
    if !then_down {
        return rerun["api_calls"]["mutating"].as_u64().unwrap_or(0) as usize;
    }
    let third = account.json_at(&proxy.url, &["up", "--yes"], &env, 0).await;
    assert_eq!(third["api_calls"]["mutating"], 0, "killed at {k}: {:#}", third["api_calls"]);
    let down = account.json_at(&proxy.url, &["down", "--yes", "--purge"], &env, 0).await;
    assert_eq!(down["leftovers"], serde_json::json!([]));
    let left = census::leftovers(&census::take(&c, "konnichiwa").await);
    assert!(left.is_empty(), "killed at {k}: down left {left:?}");
    rerun["api_calls"]["mutating"].as_u64().unwrap_or(0) as usize
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_up_killed_at_any_of_twelve_points_is_finished_by_the_next() {
    // A clean `up` makes about 46 mutating calls (the lease's two among them); these points
    // cover the network, the concurrent kinds, IAM, capacity and the service. Every rerun must
    // converge to a clean census; every third is then also checked with a no-op `up` and a
    // `down` that leaves nothing (each full run costs the emulator's CPU the suite shares).
    let points = [1, 2, 4, 7, 10, 14, 18, 22, 27, 32, 37, 42];
    let mut runs = tokio::task::JoinSet::new();
    for (c, chunk) in points.chunks(4).enumerate() {
        for (i, &k) in chunk.iter().enumerate() {
            let then_down = (c * 4 + i) % 3 == 0;
            runs.spawn(async move { (k, killed_at(k, then_down).await) });
        }
        while let Some(done) = runs.join_next().await {
            let (k, rerun_mutations) = done.expect("kill point");
            println!("killed after mutation {k}: the rerun converged with {rerun_mutations} mutations");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_ups_at_once_one_refuses_naming_the_other_and_no_duplicates() {
    let account = Account::new();
    let proxy = Proxy::start(&moto_url(), Faults::default()).await;
    let env = [("API_KEY", KEY)];
    let (a, b) = tokio::join!(
        account.run_at(&proxy.url, &["up", "--yes", "--json"], &env),
        account.run_at(&proxy.url, &["up", "--yes", "--json"], &env)
    );
    let codes = [a.status.code(), b.status.code()];
    assert!(codes.contains(&Some(0)) && codes.contains(&Some(1)), "one ran, one refused: {codes:?}");
    let refused = if a.status.code() == Some(1) { &a } else { &b };
    let said = common::text(refused);
    assert!(said.contains("is being changed by `up` on") && said.contains("--lock-timeout"), "{said}");
    let c = account.clients().await;
    assert_eq!(census::take(&c, "konnichiwa").await, census::clean());

    // With --lock-timeout the second waits its turn and then finds nothing to do.
    let (a, b) = tokio::join!(
        account.json_at(&proxy.url, &["up", "--yes", "--lock-timeout", "2m"], &env, 0),
        account.json_at(&proxy.url, &["up", "--yes", "--lock-timeout", "2m"], &env, 0)
    );
    for v in [&a, &b] {
        assert_eq!(v["api_calls"]["mutating"], 0, "{:#}", v["api_calls"]);
        // Take, and release (the record and its heartbeat); the run that lost the race to create
        // the record tried once more.
        let lease_mutations = v["lease"]["api_calls"]["mutating"].as_u64().unwrap_or(0);
        assert!((3..=4).contains(&lease_mutations), "{:#}", v["lease"]);
    }

    assert_eq!(census::take(&c, "konnichiwa").await, census::clean());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_held_elsewhere_is_broken_only_by_unlock() {
    let account = Account::new();
    let c = account.clients().await;
    // A run on another machine holds the lease (not expired).
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("time").as_secs();
    let holder = serde_json::json!({
        "command": "up", "host": "ci-runner-7", "pid": 4242, "process_start": 1, "ci_run": "octo/konnichiwa run 99",
        "user": "runner", "since_unix": now - 30, "expires_unix": now + 90
    });
    c.ssm
        .put_parameter()
        .name("/konnichiwa/konnichiwa/lease/0000000003")
        .value(holder.to_string())
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .send()
        .await
        .expect("lease");
    let refused = account.run_at(&moto_url(), &["up", "--yes"], &[]).await;
    assert_eq!(refused.status.code(), Some(1));
    let said = common::text(&refused);
    assert!(
        said.contains("ci-runner-7") && said.contains("octo/konnichiwa run 99") && said.contains("provisioner unlock"),
        "{said}"
    );
    let plan = account.run_at(&moto_url(), &["plan"], &[]).await;
    assert_eq!(plan.status.code(), Some(0), "plan takes no lease: {}", common::text(&plan));

    let no = account.run_at(&moto_url(), &["unlock"], &[]).await;
    assert_eq!(no.status.code(), Some(1), "unlock off a terminal needs --yes");
    let unlocked = account.json_at(&moto_url(), &["unlock", "--yes"], &[], 0).await;
    assert_eq!(unlocked["broken"][0]["host"], "ci-runner-7");
    let up = account.json_at(&moto_url(), &["up", "--yes"], &[], 0).await;
    assert_eq!(up["lease"]["taken"], "free");
    let left = c.ssm.get_parameters_by_path().path("/konnichiwa/konnichiwa/lease").send().await.expect("lease");
    assert!(left.parameters().is_empty(), "released at the end");
}
