//! Every command's `--json` object has the top-level keys README.md's "`--json` output" table
//! gives it, no more and no fewer: the table is what scripts are written against, so it is read
//! here and compared with what each command prints against the emulator.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::common::Account;

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
        ("up", account.json(&["up", "--yes"], 0)),
        ("status", account.json(&["status"], 0)),
        ("outputs", account.json(&["outputs"], 0)),
        ("deploy", account.json(&["deploy", "--image", &image, "--no-wait"], 0)),
        ("rollback", account.json(&["rollback", "--no-wait"], 0)),
        ("down", account.json(&["down", "--yes", "--purge"], 0)),
        ("unlock", account.json(&["unlock", "--yes"], 0)),
    ];
    let mut wrong = Vec::new();
    for (command, out) in &printed {
        let Some(want) = shapes.get(*command) else {
            wrong.push(format!("{command}: not in README's table"));
            continue;
        };
        // `down`'s `error` is there only when something is left.
        let want: BTreeSet<String> = want.iter().filter(|k| !(*command == "down" && *k == "error")).cloned().collect();
        let have = keys(out);
        if have != want {
            let extra: Vec<_> = have.difference(&want).collect();
            let missing: Vec<_> = want.difference(&have).collect();
            wrong
                .push(format!("{command}: printed but undocumented {extra:?}, documented but not printed {missing:?}"));
        }
    }
    let untested: Vec<_> = shapes.keys().filter(|c| !printed.iter().any(|(p, _)| p == c)).collect();
    assert!(untested.is_empty(), "documented but not checked here: {untested:?}");
    assert!(wrong.is_empty(), "README.md's --json table and the commands disagree:\n{}", wrong.join("\n"));
}
