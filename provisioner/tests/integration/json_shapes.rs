//! Every command's `--json` object has the top-level keys README.md's "`--json` output" table
//! gives it, no more and no fewer: the table is what scripts are written against, so it is read
//! here and compared with what each command prints against the emulator. And every answer, nested
//! keys and stable values included, matches its snapshot in `snapshots/json/` (ids, times and
//! call counts masked): a change of shape is a reviewed change of a file.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::common::Account;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/terraform/konnichiwa.tfstate");

/// The README's table: command -> its top-level keys (what stands in parentheses is nested).
fn documented() -> BTreeMap<String, BTreeSet<String>> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).expect("README.md");
    let table = readme.split("### `--json` output").nth(1).expect("the --json section");
    let mut shapes = BTreeMap::new();
    for row in table.lines().skip_while(|l| !l.starts_with("| `")).take_while(|l| l.starts_with('|')) {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let (command, keys) = (cells[1].trim_matches('`'), cells[2]);
        // Drop what stands in parentheses (nested keys and remarks), then take the backticked words.
        let mut depth = 0;
        let top: String = keys
            .chars()
            .filter(|c| {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => return depth == 0,
                }
                false
            })
            .collect();
        let words = top.split('`').skip(1).step_by(2).map(str::to_owned).collect();
        shapes.insert(command.to_owned(), words);
    }
    shapes
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().expect("an object").keys().cloned().collect()
}

#[tokio::test]
async fn every_command_prints_the_keys_the_readme_documents() {
    let shapes = documented();
    let account = Account::new();
    let image = format!("127.0.0.1:5000/konnichiwa@sha256:{}", "b".repeat(64));
    let printed: Vec<(&str, Value)> = vec![
        ("validate", account.json(&["validate"], 0)),
        ("plan", account.json(&["plan"], 0)),
        ("cost", account.json(&["cost"], 0)),
        // `build`: an image every machine's verify judges alike (the default's registry is none).
        (
            "verify",
            account.json_for(
                &account.write_stack("stack.verify.yaml", "extends: stack.yaml\nservice:\n  image: build\n"),
                &["verify"],
                0,
            ),
        ),
        ("up", account.json(&["up", "--yes"], 0)),
        ("status", account.json(&["status"], 0)),
        ("outputs", {
            let all = account.json(&["outputs"], 0);
            one_output_by_name(&account, &all["outputs"]);
            all
        }),
        ("deploy", account.json(&["deploy", "--image", &image, "--no-wait"], 0)),
        ("rollback", account.json(&["rollback", "--no-wait"], 0)),
        ("scale", account.json(&["scale", "--tasks", "3", "--no-wait"], 0)),
        // The emulator never completes a deployment: `wait` gives up, exit 3 as `deploy`'s.
        ("wait", account.json(&["wait", "--timeout", "1s"], 3)),
        ("down", account.json(&["down", "--yes", "--purge"], 0)),
        ("unlock", account.json(&["unlock", "--yes"], 0)),
        ("adopt --write-stack-file", account.json(&["adopt", "--from-tfstate", FIXTURE, "--write-stack-file", "-"], 0)),
        // Taking over the fixture's state as if it were this account's (after `down`: nothing of
        // it is found, so every resource is left alone and `up` would create the stack).
        ("adopt", {
            let fixture = std::fs::read_to_string(FIXTURE).expect("fixture").replace("123456789012", &account.id);
            let state = account.dir.join("saved.tfstate");
            std::fs::write(&state, fixture).expect("write the state");
            account.json(&["adopt", "--from-tfstate", state.to_str().expect("utf-8")], 2)
        }),
    ];
    let mut wrong = Vec::new();
    for (command, out) in &printed {
        let Some(want) = shapes.get(*command) else {
            wrong.push(format!("{command}: not in README's table"));
            continue;
        };
        // `down`'s `error` is there only when something is left, `status`'s `error_budget` and
        // `latency_budget` only with `slo.availability` and `slo.latency` (budget_alerts_are_made_…
        // in operations.rs reads them).
        let optional = |k: &String| {
            (*command == "down" && k == "error")
                || (*command == "status" && (k == "error_budget" || k == "latency_budget"))
        };
        let want: BTreeSet<String> = want.iter().filter(|k| !optional(k)).cloned().collect();
        let have = keys(out);
        if have != want {
            let extra: Vec<_> = have.difference(&want).collect();
            let missing: Vec<_> = want.difference(&have).collect();
            wrong
                .push(format!("{command}: printed but undocumented {extra:?}, documented but not printed {missing:?}"));
        }
    }
    let bad = account.write_stack("stack.bad.yaml", "extends: stack.yaml\nservice:\n  desired_count: -1\n");
    let mut snapshots: Vec<(&str, Value)> = printed.clone();
    snapshots.push(("error-stack", account.json_for(&bad, &["plan"], 1)));
    snapshots.push(("error-usage", account.json(&["plan", "--no-such-flag"], 1)));
    // The account's own directory (in paths that errors name) is the same everywhere.
    let dir = account.dir.to_string_lossy().into_owned();
    let in_any_dir = |v: &Value| -> Value {
        serde_json::from_str(&v.to_string().replace(&dir, "$DIR")).expect("the same JSON with $DIR")
    };
    let stale: Vec<String> = snapshots.iter().filter_map(|(name, v)| snapshot::differs(name, &in_any_dir(v))).collect();
    assert!(stale.is_empty(), "{}", stale.join("\n\n"));
    let untested: Vec<_> = shapes.keys().filter(|c| !printed.iter().any(|(p, _)| p == c)).collect();
    assert!(untested.is_empty(), "documented but not checked here: {untested:?}");
    assert!(wrong.is_empty(), "README.md's --json table and the commands disagree:\n{}", wrong.join("\n"));
}

/// Answers compared with checked-in files after masking what differs from run to run.
mod snapshot {
    use serde_json::Value;

    const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/integration/snapshots/json");
    /// What a run spends, and how old the prices are: masked whole.
    const SPENT: [&str; 4] = ["api_calls", "lease", "elapsed_seconds", "age_days"];

    /// A string that names something AWS (or the emulator) made: an account, an id, a digest, a time.
    fn made_by_aws(s: &str) -> bool {
        let digits = s.split(|c: char| !c.is_ascii_digit()).any(|run| run.len() >= 4);
        let hex = s.split(|c: char| !c.is_ascii_hexdigit()).any(|run| run.len() >= 8);
        digits || hex || s.contains("sha256:")
    }

    pub fn masked(v: &Value) -> Value {
        match v {
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| {
                        let v = if SPENT.contains(&k.as_str()) { Value::from("<spent>") } else { masked(v) };
                        (k.clone(), v)
                    })
                    .collect(),
            ),
            Value::Array(items) => Value::Array(items.iter().map(masked).collect()),
            Value::String(s) if made_by_aws(s) => Value::from("<id>"),
            Value::Number(n) if n.is_f64() => Value::from("<seconds>"),
            other => other.clone(),
        }
    }

    /// None when `v` matches `snapshots/json/<name>.json`; else what differs and how to accept
    /// it. `UPDATE_SNAPSHOTS=1` writes the file instead.
    pub fn differs(name: &str, v: &Value) -> Option<String> {
        let path = format!("{DIR}/{}.json", name.replace(" --", "-"));
        let now = serde_json::to_string_pretty(&masked(v)).expect("json") + "\n";
        if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
            std::fs::create_dir_all(DIR).expect("snapshot dir");
            std::fs::write(&path, &now).expect("write snapshot");
            return None;
        }
        let kept = std::fs::read_to_string(&path).unwrap_or_default();
        if kept == now {
            return None;
        }
        let first = kept
            .lines()
            .zip(now.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(kept.lines().count().min(now.lines().count()));
        let context = |text: &str| text.lines().skip(first.saturating_sub(3)).take(8).collect::<Vec<_>>().join("\n");
        Some(format!(
            "{name}: the --json answer differs from {path} from line {}:\n--- kept\n{}\n--- now\n{}\n\
             (if the change is meant, run the test with UPDATE_SNAPSHOTS=1 and commit the file)",
            first + 1,
            context(&kept),
            context(&now)
        ))
    }

    #[test]
    fn masking_keeps_names_and_hides_what_aws_made() {
        let v = serde_json::json!({
            "name": "konnichiwa-public-ap-northeast-1a", "cidr": "10.0.0.0/16", "desired": 2,
            "id": "vpc-1a2b3c4d5e6f7a8b9", "arn": "arn:aws:iam::123456789012:role/x", "seconds": 1.5,
            "api_calls": { "read": 3 },
        });
        let m = masked(&v);
        assert_eq!(m["name"], "konnichiwa-public-ap-northeast-1a");
        assert_eq!(m["cidr"], "10.0.0.0/16");
        assert_eq!(m["desired"], 2);
        assert_eq!(
            (&m["id"], &m["arn"], &m["seconds"], &m["api_calls"]),
            (&Value::from("<id>"), &Value::from("<id>"), &Value::from("<seconds>"), &Value::from("<spent>"))
        );
    }
}

/// `outputs NAME [--raw]` against the stack `up` just made (here, to spare another `up`): the
/// value alone for scripts, its JSON without --raw, and a wrong name refused with the names.
fn one_output_by_name(account: &Account, all: &Value) {
    let url = all["load_balancer"]["url"].as_str().expect("the load balancer's URL");
    let raw = account.run(&["outputs", "load_balancer.url", "--raw"]);
    assert_eq!(raw.status.code(), Some(0), "{}", crate::common::text(&raw));
    assert_eq!(String::from_utf8_lossy(&raw.stdout), format!("{url}\n"));
    let service = account.run(&["outputs", "service"]);
    let parsed: Value = serde_json::from_slice(&service.stdout).expect("JSON of one output");
    assert_eq!(parsed, all["service"]);
    let wrong = account.run(&["outputs", "load_balancer.ulr"]);
    assert_eq!(wrong.status.code(), Some(1));
    let said = crate::common::text(&wrong);
    assert!(said.contains("no output named \"load_balancer.ulr\"") && said.contains("load_balancer.url"), "{said}");
    let object = account.run(&["outputs", "service", "--raw"]);
    assert_eq!(object.status.code(), Some(1));
    assert!(crate::common::text(&object).contains("an object, which --raw cannot print"));
}
