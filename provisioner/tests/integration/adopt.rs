//! `adopt --from-tfstate`: a Terraform state described as a stack file by the real binary — the
//! file written once and kept after, standard input and output, the state's secret never shown,
//! bad states refused with the fix and nothing written; and the state of a stack Terraform made
//! on the emulator (common::terraform) read back as the stack file it was made from.

use std::io::Write;
use std::path::{Path, PathBuf};
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
    assert!(said.contains("stack konnichiwa in ap-northeast-1, from 29 of the state's 32"), "{said}");
    assert!(said.contains("plans taking the resources over"), "says what comes next: {said}");
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
/// service, says so, and reads the state's only task definition (its roles, log group, secret).
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
    let read = said.lines().find(|l| l.trim_start().starts_with("read:")).unwrap_or_default();
    assert!(read.contains("aws_ecs_task_definition.app"), "the state's only revision is read: {said}");
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

/// The kinds whose resources a Terraform-made stack of this service has: after taking over, `up`
/// creates none of them.
const ADOPTED_KINDS: &[&str] = &[
    "vpc",
    "subnet",
    "internet-gateway",
    "route-table",
    "security-group",
    "iam-role",
    "instance-profile",
    "secret",
    "ecr-repository",
    "log-group",
    "ecs-cluster",
    "launch-template",
    "auto-scaling-group",
    "capacity-provider",
    "load-balancer",
    "target-group",
    "listener",
    "task-definition",
    "ecs-service",
    "service-autoscaling",
];

/// Runs the binary on `stack_file` in this account, with `env` besides.
fn run_on(account: &Account, stack_file: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    account.command_for(stack_file, &crate::common::moto_url(), args, env).output().expect("run the provisioner")
}

/// The rows of a plan that create or replace something of the kinds a state took over.
fn recreated(plan: &serde_json::Value) -> Vec<String> {
    let rows = plan["resources"].as_array().cloned().unwrap_or_default();
    rows.iter()
        .filter(|r| {
            r["action"] == "replace"
                || (r["action"] == "create" && ADOPTED_KINDS.contains(&r["kind"].as_str().unwrap_or("")))
        })
        .map(|r| format!("{} {} {}", r["action"], r["kind"], r["name"]))
        .collect()
}

/// The whole way in, on a stack Terraform made (every name `legacy-…`): its stack file written,
/// renamed `web` (so no name is what `web` derives) and without the `adopted:` block (a stack.yaml
/// of the user's own); adopt plans, refuses the deploy role, takes over; a second adopt is a
/// no-op; `up` then creates none of what was taken over and replaces nothing, and a second `up`
/// changes nothing.
#[tokio::test]
async fn a_terraform_stack_is_taken_over_and_converged_in_place() {
    let account = a_stack_terraform_made().await;
    let state = terraform::state(&account, "legacy", &[]).await;
    let (written, stack_file) = adopt(&account, "web", &state);
    assert_eq!(written.status.code(), Some(0), "{}", text(&written));
    let text_written = std::fs::read_to_string(&stack_file).expect("written");
    let block = text_written.find("\n# What runs keeps its names").expect("the adopted block");
    let own = text_written[..block].replacen("name: legacy", "name: web", 1) + "\n";
    std::fs::write(&stack_file, &own).expect("the user's own stack file");
    let state_file = account.dir.join("web.tfstate");
    let adopt_args = ["adopt", "--from-tfstate", state_file.to_str().expect("utf-8")];

    let planned = account.json_for(&stack_file, &adopt_args, 2);
    assert_eq!(planned["changes_pending"], true);
    assert_eq!(planned["names_to_record"].as_array().map(Vec::len), Some(15), "{planned:#}");
    let entries = planned["entries"].as_array().cloned().unwrap_or_default();
    let verdict = |address: &str| {
        entries.iter().find(|e| e["address"] == address).map(|e| e["verdict"].as_str().unwrap_or("").to_owned())
    };
    for e in &entries {
        let v = e["verdict"].as_str().unwrap_or("");
        assert!(["as_is", "change", "kept", "part"].contains(&v), "{} is {v}: {e}", e["address"]);
    }
    for address in ["aws_vpc.main", "aws_ecs_cluster.main", "aws_lb.main", "aws_iam_role.task"] {
        assert!(matches!(verdict(address).as_deref(), Some("as_is" | "change")), "{address}: {planned:#}");
    }
    let creates: Vec<String> = planned["up_also"]
        .as_array()
        .map(|rows| rows.iter().map(|r| format!("{} {}", r["kind"], r["name"])).collect())
        .unwrap_or_default();
    assert!(!creates.iter().any(|c| ADOPTED_KINDS.iter().any(|k| c.starts_with(&format!("\"{k}\"")))), "{creates:?}");
    let shown = run_on(&account, &stack_file, &adopt_args, &[]);
    let said = text(&shown);
    assert_eq!(shown.status.code(), Some(2), "{said}");
    for line in ["take over as it is (tags to add):", "aws_vpc.main", "vpc web-vpc: tags Name, konnichiwa:stack"] {
        assert!(said.contains(line), "{line:?} not in {said}");
    }
    assert!(said.contains("names to record in stack.yaml") && said.contains("adopt never deletes"), "{said}");
    eprintln!("{said}");
    assert_eq!(std::fs::read_to_string(&stack_file).expect("read"), own, "a plan changes nothing");

    // Names under `adopted:` that are not the stack's yet: `ci-role` refuses to grant the deploy
    // role what they point at.
    let early = account.write_stack("web-early.yaml", &text_written.replacen("name: legacy", "name: web", 1));
    let ci_role = run_on(&account, &early, &["ci-role", "--github-repo", "octo/web", "--plan"], &[]);
    assert_eq!(ci_role.status.code(), Some(1), "{}", text(&ci_role));
    assert!(text(&ci_role).contains("stack.yaml names a resource that is not this stack's"), "{}", text(&ci_role));

    let deploy = account.session_of("web-deploy").await;
    let as_deploy =
        run_on(&account, &stack_file, &[&adopt_args[..], &["--yes"]].concat(), &crate::common::env_refs(&deploy));
    assert_eq!(as_deploy.status.code(), Some(1), "{}", text(&as_deploy));
    assert!(text(&as_deploy).contains("administrator's credentials"), "{}", text(&as_deploy));

    let took = run_on(&account, &stack_file, &[&adopt_args[..], &["--yes"]].concat(), &[]);
    let said = text(&took);
    assert_eq!(took.status.code(), Some(0), "{said}");
    assert!(said.contains("recorded 15 names") && said.contains("`down` of stack web deletes"), "{said}");
    let recorded = stack::Stack::load(&stack_file).expect("stack.yaml reads back");
    assert_eq!(recorded.adopted.cluster.as_deref(), Some("legacy"));
    assert_eq!(recorded.adopted.load_balancer.as_deref(), Some("legacy-alb"));
    assert_eq!(verdict("aws_appautoscaling_target.service").as_deref(), Some("as_is"), "its tags are read apart");
    let aas = account.clients().await.app_autoscaling;
    let ecs = aws_sdk_applicationautoscaling::types::ServiceNamespace::Ecs;
    let targets = aas.describe_scalable_targets().service_namespace(ecs).resource_ids("service/legacy/legacy").send();
    let targets = targets.await.expect("the scalable target");
    let arn = targets.scalable_targets().first().and_then(|t| t.scalable_target_arn()).expect("its ARN");
    let tags = aas.list_tags_for_resource().resource_arn(arn).send().await.expect("its tags");
    let stack_tag = tags.tags().and_then(|t| t.get("konnichiwa:stack")).map(String::as_str);
    assert_eq!(stack_tag, Some("web"), "the deploy role's scaling calls need the stack's tag on it");
    let again = account.json_for(&stack_file, &adopt_args, 0);
    assert_eq!(again["changes_pending"], false, "a second adopt is a no-op: {again:#}");

    let plan = account.json_for(&stack_file, &["plan"], 0);
    assert_eq!(recreated(&plan), Vec::<String>::new(), "up recreates nothing taken over");
    let up = run_on(&account, &stack_file, &["up", "--yes"], &[]);
    assert_eq!(up.status.code(), Some(0), "{}", text(&up));
    let after = account.json_for(&stack_file, &["plan"], 0);
    assert_eq!(after["changes_pending"], false, "a second up changes nothing: {after:#}");
    for o in [&took, &up] {
        assert!(!text(o).contains(terraform::PLACEHOLDER), "the secret's value is never shown");
    }
}

/// A state of another account or region than the credentials' and stack.yaml's is refused
/// before anything is read from AWS, naming the fix.
#[test]
fn a_state_of_another_account_or_region_is_refused() {
    let account = Account::new();
    let run = account.run(&["adopt", "--from-tfstate", FIXTURE]);
    assert_eq!(run.status.code(), Some(1), "{}", text(&run));
    assert!(text(&run).contains("are in account 123456789012"), "{}", text(&run));
    account.edit_stack(|t| t.replacen("region: ap-northeast-1", "region: us-east-1", 1));
    let run = account.run(&["adopt", "--from-tfstate", FIXTURE]);
    assert!(text(&run).contains("are in ap-northeast-1, stack.yaml's region is us-east-1"), "{}", text(&run));
}

/// A partial state (no service) is refused while the cluster still runs a service the stack does
/// not own; without it, the rest is taken over and `up` creates only what is missing: the
/// service, under the stack's name.
#[tokio::test]
async fn a_partial_state_is_taken_over_and_up_creates_only_what_is_missing() {
    let account = a_stack_terraform_made().await;
    let left_out = ["aws_ecs_service", "aws_appautoscaling_target", "aws_appautoscaling_policy"];
    let state = terraform::state(&account, "legacy", &left_out).await;
    let (written, stack_file) = adopt(&account, "partial", &state);
    assert_eq!(written.status.code(), Some(0), "{}", text(&written));
    let image = format!("image: 127.0.0.1:5000/konnichiwa@sha256:{}", "0".repeat(64));
    let own = std::fs::read_to_string(&stack_file).expect("written").replacen("name: legacy", "name: web", 1);
    std::fs::write(&stack_file, own.replacen("image: build", &image, 1)).expect("the user's stack file");
    let state_file = account.dir.join("partial.tfstate");
    let adopt_args = ["adopt", "--from-tfstate", state_file.to_str().expect("utf-8"), "--yes"];
    // The cluster still runs the service the state leaves out: a stack owns its cluster.
    let shared = run_on(&account, &stack_file, &adopt_args, &[]);
    assert_eq!(shared.status.code(), Some(1), "{}", text(&shared));
    assert!(text(&shared).contains("runs 1 service(s) besides web (legacy)"), "{}", text(&shared));
    let ecs = account.clients().await.ecs;
    ecs.delete_service().cluster("legacy").service("legacy").force(true).send().await.expect("delete the service");
    // The load balancer also serves another service's target group: a stack owns its load balancer.
    let other = serve_another_group(&account, "legacy-alb").await;
    let shared = run_on(&account, &stack_file, &adopt_args, &[]);
    assert_eq!(shared.status.code(), Some(1), "{}", text(&shared));
    assert!(text(&shared).contains("serves target group(s) besides the stack's (other-tg)"), "{}", text(&shared));
    let elb = account.clients().await.elb;
    elb.delete_rule().rule_arn(&other.0).send().await.expect("delete the rule");
    elb.delete_target_group().target_group_arn(&other.1).send().await.expect("delete the group");
    let took = run_on(&account, &stack_file, &adopt_args, &[]);
    assert_eq!(took.status.code(), Some(0), "{}", text(&took));
    let plan = account.json_for(&stack_file, &["plan"], 0);
    assert_eq!(recreated(&plan), ["\"create\" \"ecs-service\" \"web\""], "only the service: {plan:#}");
}

/// A target group `other-tg` in the load balancer's VPC, served by a rule on its listener: (the
/// rule's ARN, the group's).
async fn serve_another_group(account: &Account, lb: &str) -> (String, String) {
    use aws_sdk_elasticloadbalancingv2::types::{Action, ActionTypeEnum, PathPatternConditionConfig, RuleCondition};
    let elb = account.clients().await.elb;
    let found = elb.describe_load_balancers().names(lb).send().await.expect("the load balancer");
    let balancer = found.load_balancers().first().expect("one");
    let vpc = balancer.vpc_id().expect("its VPC");
    let created = elb.create_target_group().name("other-tg").port(8080).protocol("HTTP".into()).vpc_id(vpc);
    let group = created.send().await.expect("a target group");
    let group_arn = group.target_groups().first().and_then(|g| g.target_group_arn()).expect("its ARN").to_owned();
    let listeners = elb.describe_listeners().load_balancer_arn(balancer.load_balancer_arn().expect("ARN"));
    let listeners = listeners.send().await.expect("its listeners");
    let listener = listeners.listeners().first().and_then(|l| l.listener_arn()).expect("a listener");
    let forward = Action::builder().r#type(ActionTypeEnum::Forward).target_group_arn(&group_arn).build();
    let path = PathPatternConditionConfig::builder().values("/other/*").build();
    let condition = RuleCondition::builder().field("path-pattern").path_pattern_config(path).build();
    let rule = elb.create_rule().listener_arn(listener).priority(50).conditions(condition).actions(forward);
    let rule = rule.send().await.expect("a rule");
    (rule.rules().first().and_then(|r| r.rule_arn()).expect("its ARN").to_owned(), group_arn)
}
