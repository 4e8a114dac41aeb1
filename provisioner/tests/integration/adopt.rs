//! `adopt --from-tfstate`: a Terraform state described as a stack file by the real binary — the
//! file written once and kept after, standard input and output, the state's secret never shown,
//! bad states refused with the fix and nothing written; and the state of a stack Terraform made
//! on the emulator (common::terraform) read back as the stack file it was made from.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Output, Stdio};

use crate::common::{Account, terraform, text};

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

/// An account with a stack named `legacy` that `up` made and `disown` made look Terraform's.
async fn a_stack_terraform_made() -> Account {
    let account = Account::new();
    account.edit_stack(|t| t.replacen("name: konnichiwa ", "name: legacy ", 1));
    let up = account.run(&["up", "--yes"]);
    assert_eq!(up.status.code(), Some(0), "{}", text(&up));
    terraform::disown(&account, "legacy").await;
    account
}

/// Writes `state` as `NAME.tfstate` and runs `adopt` on it into `NAME.yaml`: the run and the
/// file's path.
fn adopt(account: &Account, name: &str, state: &str) -> (Output, PathBuf) {
    let file = account.dir.join(format!("{name}.tfstate"));
    std::fs::write(&file, state).expect("write the state");
    let out = account.dir.join(format!("{name}.yaml"));
    let run = account.run(&[
        "adopt",
        "--from-tfstate",
        file.to_str().expect("utf-8"),
        "--write-stack-file",
        out.to_str().expect("utf-8"),
    ]);
    (run, out)
}

#[tokio::test]
async fn a_stack_terraform_made_reads_back_as_its_stack_file() {
    let account = a_stack_terraform_made().await;
    let state = terraform::state(&account, "legacy", &[]).await;
    assert!(state.contains(terraform::PLACEHOLDER), "the state holds the secret version's value, as Terraform's does");
    assert!(!state.contains("konnichiwa:"), "none of our tags is left for the state to show");
    assert!(state.contains("\"Name\": \"legacy-main-vpc\""), "the VPC has a Terraform-like Name");
    let (run, out) = adopt(&account, "legacy", &state);
    let said = text(&run);
    assert_eq!(run.status.code(), Some(0), "{said}");
    assert!(said.contains("stack legacy in ap-northeast-1"), "{said}");
    let validated = account.json_for(&out, &["validate"], 0);
    assert_eq!(validated["valid"], true, "{validated}");
    let written = std::fs::read_to_string(&out).expect("written");
    let adopted = stack::Stack::load(&out).unwrap_or_else(|e| panic!("{e}\n{written}"));
    let original = stack::Stack::load(account.stack_file()).expect("the stack it was made from");
    assert_eq!(adopted.name, "legacy");
    assert_eq!(adopted.network.cidr, original.network.cidr);
    assert_eq!(adopted.capacity.instance_type, original.capacity.instance_type);
    assert_eq!(adopted.service.container_port, original.service.container_port);
    assert_eq!(adopted.load_balancer.port, original.load_balancer.port);
    for shown in [&said, &written, &validated.to_string()] {
        assert!(!shown.contains(terraform::PLACEHOLDER), "the secret's value is never shown");
    }
}

/// A partial state, without the service and its scaling (Terraform's configuration may keep them
/// in another workspace): adopt still writes a stack file that validates, with the example's
/// service, says so, and leaves the task definition it no longer reaches undescribed.
#[tokio::test]
async fn a_state_without_the_service_reads_back_with_the_example_service() {
    let account = a_stack_terraform_made().await;
    let left_out = ["aws_ecs_service", "aws_appautoscaling_target", "aws_appautoscaling_policy"];
    let state = terraform::state(&account, "legacy", &left_out).await;
    for kind in left_out {
        assert!(!state.contains(&format!("\"type\": \"{kind}\"")), "{kind} left out");
    }
    let (run, out) = adopt(&account, "partial", &state);
    let said = text(&run);
    assert_eq!(run.status.code(), Some(0), "{said}");
    assert!(said.contains("note: no aws_ecs_service in the state: service is the example's"), "{said}");
    let not_described = said.lines().find(|l| l.trim_start().starts_with("not described")).unwrap_or_default();
    assert!(not_described.contains("aws_ecs_task_definition.app"), "{said}");
    let validated = account.json_for(&out, &["validate"], 0);
    assert_eq!(validated["valid"], true, "{validated}");
    let adopted = stack::Stack::load(&out).expect("the written file");
    assert_eq!((adopted.name.as_str(), adopted.network.cidr.as_str()), ("legacy", "10.40.0.0/16"));
    assert_eq!(adopted.service.image, "build", "the example's service, not the task definition's image");
    let written = std::fs::read_to_string(&out).expect("written");
    for shown in [&said, &written, &validated.to_string()] {
        assert!(!shown.contains(terraform::PLACEHOLDER), "the secret's value is never shown");
    }
}
