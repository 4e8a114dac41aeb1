//! `adopt --from-tfstate`: a Terraform state described as a stack file by the real binary — the
//! file written once and kept after, standard input and output, the state's secret never shown,
//! bad states refused with the fix and nothing written.

use std::io::Write;
use std::process::Stdio;

use crate::common::{Account, text};

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/terraform/konnichiwa.tfstate");
const PLACEHOLDER: &str = "fixture-value-not-a-secret";

#[test]
fn a_state_becomes_a_stack_file_that_validates_and_is_never_overwritten() {
    let account = Account::new();
    let out = account.dir.join("adopted.yaml");
    let path = out.to_str().expect("utf-8");
    let first = account.run(&["adopt", "--from-tfstate", FIXTURE, "--write-stack-file", path]);
    let said = text(&first);
    assert_eq!(first.status.code(), Some(0), "{said}");
    assert!(said.contains("stack konnichiwa in ap-northeast-1, from 19 of the state's 32"), "{said}");
    assert!(said.contains("would create a second copy"), "says what adopting does not do yet: {said}");
    let written = std::fs::read_to_string(&out).expect("written");
    assert_eq!(account.json_for(&out, &["validate"], 0)["valid"], true);

    // A second run keeps the file (it may have been edited since); --force replaces it.
    std::fs::write(&out, "# edited\n").expect("edit");
    let again = account.run(&["adopt", "--from-tfstate", FIXTURE, "--write-stack-file", path]);
    assert_eq!(again.status.code(), Some(1));
    assert!(text(&again).contains("exists: it is kept"), "{}", text(&again));
    assert_eq!(std::fs::read_to_string(&out).expect("kept"), "# edited\n");
    let forced = account.run(&["adopt", "--from-tfstate", FIXTURE, "--write-stack-file", path, "--force"]);
    assert_eq!(forced.status.code(), Some(0));
    assert_eq!(std::fs::read_to_string(&out).expect("replaced"), written);

    // `terraform state pull | provisioner adopt --from-tfstate - --write-stack-file -`.
    let mut child = account
        .command(&crate::common::moto_url(), &["adopt", "--from-tfstate", "-", "--write-stack-file", "-"], &[])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child.stdin.take().expect("stdin").write_all(&std::fs::read(FIXTURE).expect("fixture")).expect("pipe");
    let piped = child.wait_with_output().expect("run");
    assert_eq!(piped.status.code(), Some(0), "{}", text(&piped));
    assert_eq!(String::from_utf8_lossy(&piped.stdout), written, "the file on standard output, the report on stderr");
    for o in [&first, &again, &forced, &piped] {
        assert!(!text(o).contains(PLACEHOLDER), "the secret's value is never shown");
    }
    assert!(!written.contains(PLACEHOLDER));
}

#[test]
fn an_unusable_state_is_refused_with_the_fix_and_nothing_written() {
    let account = Account::new();
    let out = account.dir.join("never.yaml");
    let fixture = std::fs::read_to_string(FIXTURE).expect("fixture");
    let cases = [
        ("cut.tfstate", fixture[..fixture.len() / 3].to_owned(), "ends early"),
        ("main.tf", "resource \"aws_vpc\" \"main\" {}\n".to_owned(), "is not JSON"),
        ("old.tfstate", r#"{"version": 3, "modules": []}"#.to_owned(), "format version 3"),
        ("gcp.tfstate", r#"{"version": 4, "resources": []}"#.to_owned(), "no managed aws_* resources"),
    ];
    for (name, content, said) in cases {
        let state = account.dir.join(name);
        std::fs::write(&state, content).expect("state");
        let run = account.run(&[
            "adopt",
            "--from-tfstate",
            state.to_str().expect("utf-8"),
            "--write-stack-file",
            out.to_str().expect("utf-8"),
        ]);
        assert_eq!(run.status.code(), Some(1), "{name}");
        assert!(text(&run).contains(said), "{name}: {}", text(&run));
        assert!(!out.exists(), "{name}: nothing written");
    }
}
