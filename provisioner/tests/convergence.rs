//! Convergence under a busy AWS account, against moto behind the fault proxy (tests/common/faults):
//! `up` converges with 15% of calls throttled and with 10% of mutating calls' answers lost; in
//! every case the stack's resources are exactly a clean run's (no duplicates), a second `up`
//! changes nothing, and `down` leaves nothing. Fixed seeds; the figures (extra calls the faults
//! cost) are printed for docs/BENCHMARKS.md (`cargo test --test convergence -- --nocapture`).

mod common;

use common::census::{self, Census};
use common::faults::{Faults, Proxy};
use common::{Account, moto_url};
use serde_json::Value;

const KEY: &str = "convergence-test-key-0123456789ab";

/// What the example stack owns after a clean `up`.
pub fn clean_census() -> Census {
    Census::from([
        ("auto-scaling-group", 1),
        ("capacity-provider", 1),
        ("ecr-repository", 1),
        ("ecs-cluster", 1),
        ("ecs-service", 1),
        ("iam-role", 3),
        ("instance-profile", 1),
        ("internet-gateway", 1),
        ("launch-template", 1),
        ("listener", 1),
        ("load-balancer", 1),
        ("log-group", 1),
        ("route-table", 1),
        ("scalable-target", 1),
        ("scaling-policy", 1),
        ("secret", 1),
        ("security-group", 2),
        ("subnet", 2),
        ("target-group", 1),
        ("task-definition", 1),
        ("vpc", 1),
    ])
}

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
    assert_eq!(census::take(&c, "konnichiwa").await, clean_census(), "{label}: no duplicates, nothing missing");

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_run_for_comparison() {
    let account = Account::new();
    let proxy = Proxy::start(&moto_url(), Faults::default()).await;
    let up = account.json_at(&proxy.url, &["up", "--yes"], &[("API_KEY", KEY)], 0).await;
    let (reads, mutations) = calls(&up);
    println!("clean: up made {reads} reads + {mutations} mutations; {} requests reached the proxy", proxy.totals().0);
    assert_eq!(census::take(&account.clients().await, "konnichiwa").await, clean_census());
}
