//! Two environments from one description: `konnichiwa` (the base) and `konnichiwa-prod` (a
//! two-line overlay, a name that starts with the other's) live in one account without touching
//! each other; and a name taken from another stack is refused, naming that stack and the key to
//! change.

use crate::common;

use crate::common::{Account, census, mutations, text};

#[tokio::test]
async fn a_base_and_an_overlay_live_side_by_side_and_go_alone() {
    let account = Account::new();
    let prod = account.write_stack("stack.prod.yaml", "extends: stack.yaml\nname: konnichiwa-prod\n");
    let key = [("API_KEY", "environments-test-key-0123456789")];
    account.json_with(&["up", "--yes"], &key, 0);
    let out = account.command_for(&prod, &common::moto_url(), &["up", "--yes", "--json"], &key).output().expect("run");
    assert_eq!(out.status.code(), Some(0), "the overlay's stack collides with nothing: {}", text(&out));
    let c = account.clients().await;
    assert_eq!(census::take(&c, "konnichiwa").await, census::clean());
    assert_eq!(census::take(&c, "konnichiwa-prod").await, census::clean());

    // Each, again: nothing to change.
    let again = account.json_with(&["up", "--yes"], &key, 0);
    assert!(mutations(&again).is_empty(), "{:?}", mutations(&again));
    let out = account.command_for(&prod, &common::moto_url(), &["up", "--yes", "--json"], &key).output().expect("run");
    let again: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(mutations(&again).is_empty(), "{:?}", mutations(&again));

    // Down one: the other keeps every resource, in sync.
    account.json_for(&prod, &["down", "--yes", "--purge"], 0);
    let left = census::leftovers(&census::take(&c, "konnichiwa-prod").await);
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(census::take(&c, "konnichiwa").await, census::clean());
    let plan = account.json(&["plan"], 0);
    assert_eq!(plan["changes_pending"], false, "{plan:#}");
    account.json(&["down", "--yes", "--purge"], 0);
}

#[tokio::test]
async fn a_name_another_stack_owns_is_refused_naming_that_stack_and_the_key() {
    let account = Account::new();
    account.json(&["up", "--yes"], 0);
    // A copy that spells out the base's repository name instead of letting it follow `name`.
    let other = account.write_stack(
        "stack.other.yaml",
        "extends: stack.yaml\nname: konnichiwa-other\nregistry: { repository: konnichiwa }\n",
    );
    let out = account.json_for(&other, &["plan"], 1);
    let error = out["error"].as_str().expect("error");
    assert!(
        error.contains("the repository konnichiwa")
            && error.contains("belongs to the stack konnichiwa (tag konnichiwa:stack=konnichiwa)")
            && error.contains("give this one another `registry.repository`"),
        "{error}"
    );
    // The base is untouched.
    let plan = account.json(&["plan"], 0);
    assert_eq!(plan["changes_pending"], false);
    account.json(&["down", "--yes", "--purge"], 0);
}
