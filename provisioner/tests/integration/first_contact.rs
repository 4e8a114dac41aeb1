//! What a newcomer meets first: usage errors that exit 1 (never the 2 that means "changes
//! pending") and keep the JSON promise, a missing-credentials error that comes before any work
//! and says how to fix it, stack-file errors with the field's path, a plan without blank values,
//! and `outputs` that refuses a stack that does not exist.

use std::process::{Command, Stdio};

use crate::common::{Account, BIN, text};
use serde_json::Value;

/// The binary with nothing of the caller's environment: no credentials, an empty HOME.
fn bare(home: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .current_dir(home)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        // Nothing may leave the machine even if a check were missing.
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .stdin(Stdio::null())
        .output()
        .expect("run provisioner")
}

fn temp_home(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("konnichiwa-first-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../stack.yaml");
    std::fs::copy(example, dir.join("stack.yaml")).expect("copy stack.yaml");
    dir
}

#[test]
fn usage_errors_exit_1_and_keep_the_json_promise() {
    let home = temp_home("usage");
    for args in [&["plna"][..], &["plan", "--bogus"], &["up", "--timeout", "5"], &[]] {
        let out = bare(&home, args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", text(&out));
        assert!(out.stdout.is_empty(), "{args:?}: nothing on stdout without --json");
    }
    let out = bare(&home, &["up", "--timeout", "5"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("\"5\" has no unit: write e.g. 5s or 5ms"), "{said}");
    assert_eq!(said.matches("write").count(), 1, "one hint, not two: {said}");

    let out = bare(&home, &["plna", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).expect("one JSON object on stdout");
    assert_eq!(v["error"], "unrecognized subcommand 'plna'");
    assert_eq!(v["command"], Value::Null);
    assert_eq!(v["problems"], Value::Array(vec![]));
    let out = bare(&home, &["--json", "plan", "--bogus"]);
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["command"], "plan");
    assert!(v["error"].as_str().is_some_and(|e| e.contains("--bogus")), "{v}");

    for ok in [&["--help"][..], &["plan", "--help"], &["--version"]] {
        let out = bare(&home, ok);
        assert_eq!(out.status.code(), Some(0), "{ok:?}");
    }
    std::fs::remove_dir_all(&home).expect("clean up");
}

#[test]
fn missing_credentials_are_reported_before_any_work_with_the_fix() {
    let home = temp_home("creds");
    // stack.yaml says `image: build`: the image must not be built before the credentials fail.
    let out = bare(&home, &["plan"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.starts_with("error: no AWS credentials"), "{said}");
    for hint in
        ["AWS_ACCESS_KEY_ID", "aws configure sso", "AWS_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE", "scripts/sandbox up"]
    {
        assert!(said.contains(hint), "{hint}: {said}");
    }
    assert!(!said.contains("Building the app image"), "checked before the build: {said}");
    assert!(!said.contains('\u{1b}'), "no colour codes on a non-terminal: {said:?}");
    assert!(!said.contains("Response {") && !said.contains("WARN"), "no SDK dumps or warnings: {said}");
    assert_eq!(said.lines().count(), 1, "{said}");

    let out = bare(&home, &["--json", "status"]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON error");
    assert!(v["error"].as_str().is_some_and(|e| e.starts_with("no AWS credentials")), "{v}");
    std::fs::remove_dir_all(&home).expect("clean up");
}

#[test]
fn stack_file_errors_carry_the_field_path() {
    let account = Account::new();
    account.edit_stack(|t| t.replace("  cpu: 256 ", "  cpu: lots "));
    let v = account.json(&["validate"], 1);
    let problem = &v["problems"][0];
    assert_eq!(problem["path"], "service.cpu", "{v}");
    assert!(problem["line"].as_u64().is_some() && problem["column"].as_u64().is_some(), "{v}");
    let message = problem["message"].as_str().expect("message");
    assert_eq!(message, "\"lots\" is not a whole number, 0 or more; write e.g. cpu: 256");
    let err = v["error"].as_str().expect("error");
    assert!(err.starts_with(&format!("{}:", account.stack_file().display())) && !err.contains("<input>"), "{err}");
}

#[test]
fn a_new_stack_plans_without_blank_values_as_render_names_it_and_has_no_outputs() {
    let account = Account::new();
    let plan = account.json(&["plan"], 0);
    let mut checked = 0;
    for r in plan["resources"].as_array().expect("resources") {
        for f in r["fields"].as_array().expect("fields") {
            let new = f["new"].as_str().unwrap_or_default();
            assert!(
                !new.trim().is_empty() && !new.contains(",,"),
                "{} {}: blank {}: {f}",
                r["kind"],
                r["name"],
                f["field"]
            );
            checked += 1;
        }
        assert_ne!(r["kind"], r["name"], "{r}");
    }
    assert!(checked > 40, "{checked} fields");
    render_names_every_row_of(&account, &plan);
    let out = account.run(&["outputs"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("stack konnichiwa does not exist"), "{}", text(&out));
}

/// `render` names everything a cold `plan` makes, each under the kind its row has (`<…>` stands
/// for what AWS decides: the account, an availability zone), and names nothing the plan does not
/// make but what `ci-role` and `provisioner loadtest` make. Its YAML is still a loadable stack
/// file, and its percentages read alike (`60%`, not `"60"`).
fn render_names_every_row_of(account: &Account, plan: &Value) {
    let rendered = account.json(&["render"], 0);
    let derived: Vec<(String, String)> = rendered["derived_names"]
        .as_array()
        .expect("derived_names")
        .iter()
        .map(|d| (d["kind"].as_str().expect("kind").to_owned(), d["name"].as_str().expect("name").to_owned()))
        .collect();
    let matches = |pattern: &str, name: &str| {
        let parts: Vec<&str> =
            pattern.split(['<', '>']).enumerate().filter(|(i, _)| i % 2 == 0).map(|(_, p)| p).collect();
        let mut rest = name;
        parts.iter().enumerate().all(|(i, part)| match rest.find(part) {
            Some(at) if i > 0 || at == 0 => {
                rest = &rest[at + part.len()..];
                true
            }
            _ => false,
        }) && (rest.is_empty() || pattern.ends_with('>'))
    };
    let rows: Vec<(String, String)> = plan["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .map(|r| (r["kind"].as_str().expect("kind").to_owned(), r["name"].as_str().expect("name").to_owned()))
        .collect();
    for (kind, name) in &rows {
        assert!(
            derived.iter().any(|(k, n)| k == kind && matches(n, name)),
            "render does not name {kind} {name}: {derived:?}"
        );
    }
    let not_planned: Vec<&(String, String)> =
        derived.iter().filter(|(k, n)| !rows.iter().any(|(rk, rn)| rk == k && matches(n, rn))).collect();
    // Made by `ci-role` (the deploy role and its policies) and by `loadtest` (the workers'
    // family and group).
    let deploy_policies = provisioner::resources::ci_role::policy_names("konnichiwa");
    let elsewhere =
        |n: &str| ["konnichiwa-deploy", "konnichiwa-loadtest"].contains(&n) || deploy_policies.iter().any(|p| p == n);
    assert!(not_planned.iter().all(|(_, n)| elsewhere(n)), "named but never made: {not_planned:?}");
    assert_eq!(
        not_planned.len(),
        3 + deploy_policies.len(),
        "the deploy role and its policies, the load test's family and group: {not_planned:?}"
    );

    let yaml = account.run(&["render"]);
    let said = String::from_utf8_lossy(&yaml.stdout).into_owned();
    assert!(said.contains("target_cpu_percent: 60%\n") && said.contains("max_error_rate: 1%\n"), "{said}");
    assert!(said.contains("#   log-group") && said.contains("/ecs/konnichiwa\n"), "{said}");
    let again = account.write_stack("rendered.yaml", &said);
    assert_eq!(account.json_for(&again, &["validate"], 0)["valid"], true, "render's YAML loads as a stack");
}

#[test]
fn a_closed_stdout_ends_quietly_and_boolean_variables_take_the_usual_spellings() {
    let home = temp_home("pipe");
    for args in [&["render"][..], &["schema"], &["--help"]] {
        // A pipe whose reader is gone, as `provisioner render | head -1` leaves it.
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let out = Command::new(BIN).args(args).current_dir(&home).stdout(writer).output().expect("run");
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(!said.contains("panicked") && !said.contains("Broken pipe"), "{args:?}: {said}");
        assert!(matches!(out.status.code(), Some(0 | 141)), "{args:?}: {:?} {said}", out.status);
        if args != ["--help"] {
            assert_eq!(out.status.code(), Some(141), "{args:?}: as a shell reports SIGPIPE");
        }
    }

    let with = |variable: &str, value: &str| {
        Command::new(BIN)
            .args(["up"])
            .current_dir(&home)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", &home)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
            .env(variable, value)
            .output()
            .expect("run")
    };
    for value in ["1", "0", "yes", "no", "true", "false", "on", "off", "TRUE"] {
        let out = with("KONNICHIWA_SKIP_VERIFY", value);
        // Parsed: the run goes on to the credentials (none here).
        assert!(
            String::from_utf8_lossy(&out.stderr).starts_with("error: no AWS credentials"),
            "{value}: {}",
            text(&out)
        );
    }
    let out = with("KONNICHIWA_SKIP_VERIFY", "maybe");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("maybe"), "{}", text(&out));
    std::fs::remove_dir_all(&home).expect("clean up");
}

#[test]
fn an_endpoint_where_nothing_listens_is_named_within_seconds() {
    let home = temp_home("closed");
    // An image by reference: nothing to build, the first thing done is an AWS call.
    let stack = std::fs::read_to_string(home.join("stack.yaml")).expect("stack");
    let by_digest = format!("image: 127.0.0.1:5000/konnichiwa@sha256:{} ", "0".repeat(64));
    std::fs::write(home.join("stack.yaml"), stack.replace("image: build ", &by_digest)).expect("stack");
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let started = std::time::Instant::now();
    let out = Command::new(BIN)
        .args(["plan"])
        .current_dir(&home)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", &home)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_ENDPOINT_URL", &endpoint)
        .output()
        .expect("run");
    let took = started.elapsed();
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains(&format!("waiting for AWS: {endpoint} refused the connection")), "{said}");
    assert!(said.contains(&format!("nothing listens at {endpoint}: the connection was refused ")), "{said}");
    assert!(said.contains("scripts/sandbox up"), "{said}");
    // Not the minutes a throttled call is retried for (25 attempts, backoff up to 20 s: 137 s before).
    assert!(took < std::time::Duration::from_secs(30), "{took:?}: {said}");
    std::fs::remove_dir_all(&home).expect("clean up");
}

#[test]
fn a_plan_run_from_another_directory_builds_from_the_stack_files_workspace() {
    // The repository's own stack file says `image: build`; the command runs elsewhere.
    let account = Account::new();
    let stack_file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../stack.yaml");
    let out = account
        .command_for(&stack_file, &crate::common::moto_url(), &["plan", "--json"], &[])
        .current_dir(std::env::temp_dir())
        .output()
        .expect("run provisioner");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let plan: Value = serde_json::from_slice(&out.stdout).expect("JSON plan");
    let task = plan["resources"].as_array().expect("resources").iter().find(|r| r["kind"] == "task-definition");
    let said = task.map(ToString::to_string).unwrap_or_default();
    assert!(said.contains("sources"), "the image is the workspace's sources, by digest: {said}");
}

#[test]
fn a_mistyped_instance_type_is_refused_offline_and_an_unlisted_one_is_a_warning() {
    let account = Account::new();
    let with_type = |t: &str| {
        account.edit_stack(|text| {
            let line = text.lines().find(|l| l.trim_start().starts_with("instance_type:")).expect("line").to_owned();
            text.replace(&line, &format!("  instance_type: {t}"))
        });
        account.run(&["validate"])
    };
    let typo = with_type("t3.smal");
    assert_eq!(typo.status.code(), Some(1), "{}", text(&typo));
    assert!(text(&typo).contains("unknown instance type \"t3.smal\": did you mean t3.small?"), "{}", text(&typo));
    // The whole catalogue: a type of a family the old table lacked is known.
    let known = with_type("r7i.large");
    assert_eq!(known.status.code(), Some(0), "{}", text(&known));
    assert!(!text(&known).contains("warning"), "{}", text(&known));
    // Well formed, perhaps newer than the catalogue: said, not refused.
    let newer = with_type("m99i.large");
    assert_eq!(newer.status.code(), Some(0), "{}", text(&newer));
    let said = String::from_utf8_lossy(&newer.stderr);
    assert!(said.contains("warning:") && said.contains("\"m99i.large\" is not among the"), "{said}");
}
