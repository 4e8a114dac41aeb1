//! `down` when AWS's answers go missing or are throttled. A delete whose answer is lost is sent
//! again (by the SDK, or by the next run), and AWS answers the second one "already gone" or
//! "already scheduled" in each service's own words: each must count as done. Checked two ways
//! against the fault proxy in front of the suite's moto: every mutating call `down` makes has its
//! first answer lost, once with `--purge` and once without; and whole `down`s under 10% lost
//! answers and under 15% throttling, three fixed seeds each. And every kind's delete answered as
//! AWS answers the delete of what is gone: each delete is carried out, sent again, and its second
//! answer ("not found", "already deleted") is the one `down` reads. The figures are printed for
//! docs/BENCHMARKS.md (`scripts/test -p provisioner --test integration -- teardown:: --nocapture`).

use std::collections::BTreeSet;

use crate::common;
use crate::common::census;
use crate::common::faults::{Faults, Proxy, Script};
use crate::common::{Account, moto_url};

const KEY: &str = "teardown-test-key-0123456789abcdef";

/// A stack that is up (no faults: these tests are about `down`).
async fn stack_up() -> Account {
    let account = Account::new();
    account.json_at(&moto_url(), &["up", "--yes"], &[("API_KEY", KEY)], 0).await;
    account
}

/// `down` of `account`'s stack through `proxy`; its exit code and output.
async fn down_through(account: &Account, proxy: &Proxy, purge: bool) -> (Option<i32>, String) {
    let mut args = vec!["down", "--yes", "--json", "--timeout", "5m"];
    if purge {
        args.push("--purge");
    }
    let out = account.run_at(&proxy.url, &args, &[]).await;
    (out.status.code(), common::text(&out))
}

/// Nothing of the stack is left but, without `--purge`, the secret scheduled for deletion.
async fn nothing_left(account: &Account, label: &str) {
    let left = census::leftovers(&census::take(&account.clients().await, "konnichiwa").await);
    assert!(left.is_empty(), "{label}: down left {left:?}");
}

/// The mutating operations a clean `down` makes, in the order first made.
async fn operations_of_a_clean_down(purge: bool) -> Vec<String> {
    let account = stack_up().await;
    let proxy = Proxy::start(&moto_url(), Faults::default()).await;
    let (code, said) = down_through(&account, &proxy, purge).await;
    assert_eq!(code, Some(0), "{said}");
    println!("a clean down{}: {} requests reached the proxy", if purge { " --purge" } else { "" }, proxy.totals().0);
    let mut seen = BTreeSet::new();
    proxy.operations().into_iter().filter(|op| provisioner::aws::is_mutating(op) && seen.insert(op.clone())).collect()
}

/// Every mutating operation of `down` has its first answer lost; `down` still ends clean.
async fn every_first_answer_lost(purge: bool) {
    let label = if purge { "down --purge" } else { "down" };
    let operations = operations_of_a_clean_down(purge).await;
    assert!(operations.len() >= 20, "{label} made {} kinds of change: {operations:?}", operations.len());
    let account = stack_up().await;
    let proxy = Proxy::start(&moto_url(), Faults::default()).await;
    for op in &operations {
        proxy.script(Script::lose_answer(op, 1));
    }
    let (code, said) = down_through(&account, &proxy, purge).await;
    assert_eq!(code, Some(0), "{label} with every first answer lost: {said}");
    let stats = proxy.stats();
    let unexercised: Vec<&String> = operations.iter().filter(|op| stats.get(*op).is_none_or(|s| s.lost == 0)).collect();
    assert!(unexercised.is_empty(), "{label}: these were never answered and lost: {unexercised:?}");
    nothing_left(&account, label).await;
    println!("{label}: the first answer of each of {} operations lost; ended clean", operations.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_ends_clean_when_the_first_answer_of_every_delete_is_lost() {
    every_first_answer_lost(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_purge_ends_clean_when_the_first_answer_of_every_delete_is_lost() {
    every_first_answer_lost(true).await;
}

/// The calls that delete (detach, deregister, revoke, stop, terminate) something, by operation:
/// Route 53's record changes in a `down` are its deletes.
fn deletes(operation: &str) -> bool {
    const VERBS: &[&str] = &["Delete", "Deregister", "Remove", "Detach", "Disassociate", "Revoke", "Terminate", "Stop"];
    VERBS.iter().any(|v| operation.starts_with(v)) || operation == "ChangeResourceRecordSets"
}

/// Kinds whose resources no `up` makes: the load test's tasks and task definitions are made by
/// `loadtest` (its deletes' "not found" answers are `meaning`'s unit test's).
const MADE_BY_OTHER_COMMANDS: &[&str] = &["loadtest"];

/// Every kind's delete is answered "not found" (carried out, then sent again: the second answer is
/// the one `down` reads), with every opt-in kind on (HTTPS on a domain, the alarm topic); `down`
/// still ends clean. Each kind (`resources::KINDS`) is checked to have had a delete answered so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_ends_clean_when_every_kinds_delete_is_answered_not_found() {
    let account = Account::new();
    crate::https::zone(&account.clients().await, "example.com").await;
    account.edit_stack(|t| {
        crate::https::with_domain(t.replace("slo_alarms: true }", "slo_alarms: true, alarm_topic: true }"))
    });
    account.json_at(&moto_url(), &["up", "--yes"], &[("API_KEY", KEY)], 0).await;
    let proxy = Proxy::start(&moto_url(), Faults::default()).await;
    proxy.answer_again(deletes);
    let (code, said) = down_through(&account, &proxy, true).await;
    assert_eq!(code, Some(0), "down with every delete answered a second time: {said}");
    nothing_left(&account, "down with every delete answered a second time").await;

    let answers = proxy.second_answers();
    let failed: Vec<_> = answers.iter().filter(|(_, status, _)| *status >= 500).collect();
    assert!(failed.is_empty(), "a delete of what is gone must be answered as AWS does, not fail: {failed:?}");
    let not_found = answers.iter().filter(|(_, status, _)| *status >= 400).count();
    println!("{} deletes answered a second time, {not_found} of them with an error", answers.len());
    let answered: BTreeSet<&str> = answers.iter().map(|(op, ..)| op.as_str()).collect();
    for kind in provisioner::resources::KINDS.iter().filter(|k| !MADE_BY_OTHER_COMMANDS.contains(&k.name)) {
        let ops: BTreeSet<&str> = kind
            .permissions
            .iter()
            .flat_map(|p| p.actions.iter())
            .filter_map(|a| a.split_once(':').map(|(_, op)| op))
            .filter(|op| deletes(op))
            .collect();
        assert!(!ops.is_disjoint(&answered), "{}: none of its deletes {ops:?} was answered a second time", kind.name);
    }
}

/// One `down` under `faults`; `(requests, throttled, lost)` as the proxy counted them.
async fn down_under(faults: Faults, label: String) -> (usize, usize, usize) {
    let account = stack_up().await;
    let proxy = Proxy::start(&moto_url(), faults).await;
    let (code, said) = down_through(&account, &proxy, false).await;
    assert_eq!(code, Some(0), "{label}: {said}");
    nothing_left(&account, &label).await;
    let (seen, throttled, lost, _) = proxy.totals();
    println!(
        "{label}: down ended clean; {seen} requests reached the proxy ({throttled} throttled, {lost} answers lost)"
    );
    (seen, throttled, lost)
}

/// Three fixed seeds of `faults`, at once: 5 lost the answer of the secret's DeleteSecret
/// before that answer counted as done, 3 throttled the most of seeds 1–6 (docs/BENCHMARKS.md).
async fn three_seeds(faults: impl Fn(u64) -> Faults, name: &str) {
    let mut runs = tokio::task::JoinSet::new();
    for seed in [1, 3, 5] {
        runs.spawn(down_under(faults(seed), format!("{name}, seed {seed}")));
    }
    let mut faulted = Vec::new();
    while let Some(run) = runs.join_next().await {
        let (_, throttled, lost) = run.expect("its checks");
        faulted.push(throttled + lost);
    }
    assert!(faulted.iter().all(|n| *n > 0), "{name}: the faults hit every run: {faulted:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_ends_clean_for_three_seeds_with_10_percent_of_answers_lost() {
    three_seeds(|seed| Faults { seed, throttle: 0.0, lose_answer: 0.10 }, "10% answers lost").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_ends_clean_for_three_seeds_with_15_percent_of_calls_throttled() {
    three_seeds(|seed| Faults { seed, throttle: 0.15, lose_answer: 0.0 }, "15% throttled").await;
}

/// A resource of a kind no module registered (here an SSM parameter) that carries the stack's
/// tag is still found by `down`'s sweep, through the Resource Groups Tagging API, and named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_names_what_carries_the_stacks_tag_though_no_kind_claims_it() {
    let account = Account::new();
    let c = account.clients().await;
    let tag = aws_sdk_ssm::types::Tag::builder().key(stack::OWNERSHIP_TAG).value("konnichiwa").build().expect("tag");
    c.ssm
        .put_parameter()
        .name("/pager/topic")
        .value("unregistered")
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .tags(tag)
        .send()
        .await
        .expect("parameter");
    let refused = account.json_at(&moto_url(), &["down", "--yes"], &[], 1).await;
    let error = refused["error"].as_str().unwrap_or_default();
    assert!(error.contains(":parameter/pager/topic (tagged)"), "{refused:#}");
    assert_eq!(refused["leftovers"].as_array().map(Vec::len), Some(1), "{refused:#}");
    c.ssm.delete_parameter().name("/pager/topic").send().await.expect("delete");
    let clean = account.json_at(&moto_url(), &["down", "--yes"], &[], 0).await;
    assert_eq!(clean["leftovers"], serde_json::json!([]));
}

/// The Resource Groups Tagging API keeps listing a deleted SNS topic for minutes: `down` does not
/// take the stack's own topic, which it just deleted, for a leftover, and still names another
/// topic that carries the stack's tag.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_knows_its_deleted_topic_from_a_foreign_one_the_tagging_api_lists() {
    let account = Account::new();
    account.edit_stack(|t| t.replace("slo_alarms: true }", "slo_alarms: true, alarm_topic: true }"));
    account.json(&["up", "--yes"], 0);
    let proxy = crate::common::faults::Proxy::start(&moto_url(), Default::default()).await;
    let mapping = |name: &str| {
        format!(
            r#"{{"ResourceARN":"arn:aws:sns:ap-northeast-1:{}:{name}","Tags":[{{"Key":"konnichiwa:stack","Value":"konnichiwa"}}]}}"#,
            account.id
        )
    };
    let listed = format!(
        r#"{{"ResourceTagMappingList":[{},{}],"PaginationToken":""}}"#,
        mapping("konnichiwa-alarms"),
        mapping("pager")
    );
    proxy.script(crate::common::faults::Script::body("GetResources", 1, &listed).once_called("DeleteTopic"));
    let refused = account.json_at(&proxy.url, &["down", "--yes"], &[], 1).await;
    let leftovers: Vec<&str> =
        refused["leftovers"].as_array().into_iter().flatten().filter_map(|l| l.as_str()).collect();
    assert_eq!(leftovers, [format!("arn:aws:sns:ap-northeast-1:{}:pager (tagged)", account.id)], "{refused:#}");
}
