//! The deploy workflows: which stack each job deploys in which GitHub environment (deploy.yml),
//! when each job runs, and the deploy job's commands (deploy-stack.yml), run in order as GitHub
//! would run them — same flags, same environment variable names, read from the YAML so the YAML
//! and the commands cannot drift apart — against moto, the local registry and the real app on
//! port 0.
//!
//! Stand-ins for what GitHub provides: `${{ secrets.API_KEY }}` is a test key; the AWS credentials
//! step is replaced by the emulator's environment; ECR's registry API (which moto lacks) by
//! KONNICHIWA_IMAGE_REPOSITORY pointing at the local registry; moto never completes a rollout, so
//! a small proxy in front of it marks the primary deployment COMPLETED once ECS "ran" it; and
//! moto's load balancer routes nowhere, so the smoke test's URL is the local app's.

use crate::common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const KEY: &str = "workflow-test-key-0123456789abcdef";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().expect("root")
}

fn workflow(file: &str) -> Value {
    let text = std::fs::read_to_string(repo_root().join(".github/workflows").join(file)).expect("workflow file");
    serde_saphyr::from_str(&text).expect("workflow parses")
}

/// Replaces `${{ … }}` with the values GitHub would give; an expression this test does not know
/// fails the test (a new one in the workflow needs a stand-in here).
fn expand(text: &str, values: &BTreeMap<&str, String>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${{") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find("}}").map(|e| start + e).expect("closed expression");
        let expr = rest[start + 3..end].trim();
        let value = values.get(expr).unwrap_or_else(|| panic!("no stand-in for the expression `{expr}` in deploy.yml"));
        out.push_str(value);
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    out
}

#[test]
fn each_stack_is_deployed_in_its_own_environment_staging_first() {
    let wf = workflow("deploy.yml");
    assert!(wf["on"]["push"]["branches"] == serde_json::json!(["main"]), "pushes to main deploy");
    assert!(wf["on"].get("workflow_run").is_none() && wf["on"].get("pull_request_target").is_none());
    assert_eq!(
        wf["on"]["workflow_dispatch"]["inputs"]["target"]["options"],
        serde_json::json!(["staging", "production"])
    );
    assert_eq!(wf["permissions"], serde_json::json!({}), "nothing by default");
    assert_eq!(wf["jobs"]["ci"]["uses"], "./.github/workflows/ci.yml", "CI runs first, in the same run");
    assert_eq!(wf["jobs"]["staging"]["needs"], "ci");
    assert_eq!(
        wf["jobs"]["production"]["needs"],
        serde_json::json!(["ci", "staging", "compare"]),
        "production after staging and its comparison with the last deploy"
    );
    let mut seen = Vec::new();
    for job in ["staging", "production"] {
        let j = &wf["jobs"][job];
        assert_eq!(j["uses"], "./.github/workflows/deploy-stack.yml", "{job}");
        assert_eq!(
            j["permissions"],
            serde_json::json!({ "contents": "read", "id-token": "write" }),
            "{job}: reading the repository, and OIDC for its deploy job; nothing else"
        );
        assert_eq!(
            j["secrets"],
            serde_json::json!({ "API_KEY": "${{ secrets.API_KEY }}" }),
            "{job}: the key's name alone (its environment's own value wins), not every secret"
        );
        let file = j["with"]["stack"].as_str().expect("stack file");
        let environment = j["with"]["environment"].as_str().expect("environment");
        // The stack file says which environment deploys it; `ci-role --stack FILE` trusts that one.
        let stack = stack::Stack::load(repo_root().join(file)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(stack.ci.environment, environment, "{file}");
        seen.push((stack.name.clone(), environment.to_owned()));
        // The workflow's name reader agrees with the provisioner's reading of the overlays.
        let out = Command::new("bash")
            .arg(repo_root().join("scripts/stack-name"))
            .arg(file)
            .current_dir(repo_root())
            .output()
            .expect("stack-name");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), stack.name, "scripts/stack-name {file}");
    }
    assert_eq!(
        seen,
        [("konnichiwa-staging".to_owned(), "staging".to_owned()), ("konnichiwa".to_owned(), "production".to_owned())]
    );
    assert_eq!(wf["jobs"]["staging"]["with"]["loadtest"], true, "staging passes the SLO gate before production");

    let callee = workflow("deploy-stack.yml");
    assert_eq!(callee["permissions"], serde_json::json!({}), "nothing by default");
    // The code is compiled where there is nothing to steal.
    let build = &callee["jobs"]["build"];
    assert_eq!(build["permissions"], serde_json::json!({ "contents": "read" }), "no OIDC token in the build job");
    assert!(build.get("environment").is_none(), "no environment (so no environment secret) in the build job");
    assert!(!serde_json::to_string(build).expect("json").contains("secrets."), "no secret in the build job");
    let job = &callee["jobs"]["deploy"];
    assert_eq!(job["permissions"]["id-token"], "write", "OIDC");
    assert_eq!(job["needs"], serde_json::json!(["name", "build"]));
    assert_eq!(job["environment"], "${{ inputs.environment }}");
    assert_eq!(
        job["concurrency"]["group"], "deploy-${{ needs.name.outputs.stack }}",
        "one deploy at a time per stack name"
    );
    assert_eq!(job["concurrency"]["cancel-in-progress"], false, "never cancelled half-way");
    let deploy_text = serde_json::to_string(job).expect("json");
    assert!(
        !deploy_text.contains("cargo ") && !deploy_text.contains("rust-toolchain"),
        "no compiler where the credentials are"
    );
    assert_eq!(job["env"]["KONNICHIWA_PREBUILT_DIR"], "${{ github.workspace }}/dist/static");
    let steps = job["steps"].as_array().expect("steps");
    let ids: Vec<&str> = steps.iter().filter_map(|s| s["id"].as_str()).collect();
    assert_eq!(ids, ["up", "smoke", "loadtest"]);
    // The binaries are checked against the digest the build job reported before anything runs.
    let check = steps
        .iter()
        .position(|s| s["run"].as_str().is_some_and(|r| r.contains("sha256sum --check")))
        .expect("a digest check");
    let credentials = steps
        .iter()
        .position(|s| s["uses"].as_str().is_some_and(|u| u.starts_with("aws-actions/configure-aws-credentials")))
        .expect("credentials step");
    assert!(check < credentials, "the digests are checked before the credentials are taken");
    assert_eq!(steps[check]["env"]["SUMS"], "${{ needs.build.outputs.sums }}");
    // The load test runs from ECS in the stack's region, and its command line is one the
    // provisioner and loadtest accept (the stage it judges exists).
    let run = steps.iter().find(|s| s["id"] == "loadtest").and_then(|s| s["run"].as_str()).expect("loadtest run");
    let command = run.lines().skip_while(|l| !l.contains("$BIN/provisioner")).collect::<Vec<_>>().join("\n");
    let words: Vec<String> = command
        .replace("\\\n", " ")
        .split_whitespace()
        .filter(|w| *w != "\"${mix[@]}\"")
        .map(|w| match w.trim_matches('"') {
            "$BIN/provisioner" => "provisioner".to_owned(),
            "$STACK" => "stack.yaml".to_owned(),
            other => other.replace("$RUNNER_TEMP", "/tmp"),
        })
        .collect();
    let cli = <provisioner::cli::Cli as clap::Parser>::try_parse_from(&words).unwrap_or_else(|e| panic!("{run}: {e}"));
    let provisioner::cli::Command::Loadtest(args) = cli.command else { panic!("{run} is not `provisioner loadtest`") };
    assert!(args.workers >= 2, "{run}");
    let load = <loadtest::cli::Cli as clap::Parser>::try_parse_from(
        std::iter::once("loadtest").chain(args.load.iter().map(String::as_str)),
    )
    .unwrap_or_else(|e| panic!("{run}: {e}"));
    assert!(!load.run.send_key_over_http, "the key is never sent over plain HTTP by the workflow");
    let settings = loadtest::settings::Settings::resolve(&load.run, None).unwrap_or_else(|e| panic!("{run}: {e}"));
    assert_eq!(settings.slo_stage.as_deref(), Some("hold"), "{run}");
    assert!(settings.abort_window.is_some(), "{run}");
    assert!(
        steps[credentials]["with"]["role-to-assume"].as_str().is_some_and(|r| r.contains("vars.AWS_DEPLOY_ROLE_ARN"))
    );
}

#[test]
fn every_action_is_pinned_by_commit() {
    let dir = repo_root().join(".github/workflows");
    let mut pinned = 0;
    for entry in std::fs::read_dir(&dir).expect("workflows") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("workflow");
        for line in text.lines() {
            let Some(uses) = line.trim().trim_start_matches("- ").strip_prefix("uses: ") else { continue };
            if uses.starts_with("./") {
                continue;
            }
            let (action, rest) =
                uses.split_once('@').unwrap_or_else(|| panic!("{}: {uses} has no ref", path.display()));
            let (sha, comment) = rest.split_once(" # ").unwrap_or((rest, ""));
            assert!(
                sha.len() == 40 && sha.chars().all(|c| c.is_ascii_hexdigit()),
                "{}: {action} is pinned by {sha:?}, not by a commit",
                path.display()
            );
            assert!(!comment.is_empty(), "{}: {action}'s pin should name its release in a comment", path.display());
            pinned += 1;
        }
    }
    assert!(pinned >= 8, "{pinned} pinned actions");
    let dependabot = std::fs::read_to_string(repo_root().join(".github/dependabot.yml")).expect("dependabot.yml");
    assert!(dependabot.contains("package-ecosystem: github-actions"), "Dependabot keeps the pins current");
}

/// Evaluates a GitHub Actions `if:` expression of `==`, `!=`, `&&`, `||`, `!`, parentheses, string
/// literals, context paths, `always()` and `cancelled()` against `context` (an unknown path is
/// null, as in GitHub; `cancelled()` is true when `context` says so under that key).
fn github_if(expr: &str, context: &BTreeMap<&str, &str>) -> bool {
    #[derive(Debug, Clone, PartialEq)]
    enum Tok {
        Str(String),
        Path(String),
        Op(&'static str),
    }
    let mut toks = Vec::new();
    let chars: Vec<char> = expr.trim().trim_start_matches("${{").trim_end_matches("}}").chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '\'' {
            let end = chars[i + 1..].iter().position(|x| *x == '\'').expect("closed string") + i + 1;
            toks.push(Tok::Str(chars[i + 1..end].iter().collect()));
            i = end + 1;
        } else if let Some(op) =
            ["==", "!=", "&&", "||"].iter().find(|op| chars[i..].starts_with(&op.chars().collect::<Vec<_>>()))
        {
            toks.push(Tok::Op(op));
            i += 2;
        } else if c == '!' {
            toks.push(Tok::Op("!"));
            i += 1;
        } else if c == '(' || c == ')' {
            toks.push(Tok::Op(if c == '(' { "(" } else { ")" }));
            i += 1;
        } else {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || "._-".contains(chars[i])) {
                i += 1;
            }
            assert!(i > start, "unexpected {c:?} in {expr}");
            let word: String = chars[start..i].iter().collect();
            if word == "cancelled" && chars[i..].starts_with(&['(', ')']) {
                toks.push(Tok::Path("cancelled()".into()));
                i += 2;
            } else if word == "always" && chars[i..].starts_with(&['(', ')']) {
                toks.push(Tok::Str("true".into()));
                i += 2;
            } else {
                toks.push(Tok::Path(word));
            }
        }
    }
    // or := and ('||' and)* ; and := cmp ('&&' cmp)* ; cmp := '!' cmp | atom (('=='|'!=') atom)? ;
    // atom := '(' or ')' | value
    fn value(t: &Tok, ctx: &BTreeMap<&str, &str>) -> Option<String> {
        match t {
            Tok::Str(s) => Some(s.clone()),
            Tok::Path(p) => ctx.get(p.as_str()).map(|v| (*v).to_owned()),
            Tok::Op(o) => panic!("operator {o} where a value belongs"),
        }
    }
    fn or(t: &[Tok], i: &mut usize, ctx: &BTreeMap<&str, &str>) -> bool {
        let mut v = and(t, i, ctx);
        while t.get(*i) == Some(&Tok::Op("||")) {
            *i += 1;
            v = and(t, i, ctx) || v;
        }
        v
    }
    fn and(t: &[Tok], i: &mut usize, ctx: &BTreeMap<&str, &str>) -> bool {
        let mut v = cmp(t, i, ctx);
        while t.get(*i) == Some(&Tok::Op("&&")) {
            *i += 1;
            v = cmp(t, i, ctx) && v;
        }
        v
    }
    fn cmp(t: &[Tok], i: &mut usize, ctx: &BTreeMap<&str, &str>) -> bool {
        if t.get(*i) == Some(&Tok::Op("!")) {
            *i += 1;
            return !cmp(t, i, ctx);
        }
        if t.get(*i) == Some(&Tok::Op("(")) {
            *i += 1;
            let v = or(t, i, ctx);
            assert_eq!(t.get(*i), Some(&Tok::Op(")")));
            *i += 1;
            return v;
        }
        let left = value(&t[*i], ctx);
        *i += 1;
        match t.get(*i) {
            Some(Tok::Op(op @ ("==" | "!="))) => {
                let op = *op;
                *i += 1;
                let right = value(&t[*i], ctx);
                *i += 1;
                (left == right) == (op == "==")
            }
            _ => left.is_some_and(|v| !v.is_empty() && v != "false"),
        }
    }
    let mut i = 0;
    let v = or(&toks, &mut i, context);
    assert_eq!(i, toks.len(), "unparsed tokens in {expr}");
    v
}

#[test]
fn pushes_to_main_and_manual_runs_deploy_after_ci_and_production_only_after_staging() {
    let wf = workflow("deploy.yml");
    let staging = wf["jobs"]["staging"]["if"].as_str().expect("the staging job has an if:");
    let production = wf["jobs"]["production"]["if"].as_str().expect("the production job has an if:");
    // (event, CI's result, dispatch target) -> (staging, production when staging succeeds).
    let run = |event: &str, ci: &str, target: &str| {
        let mut ctx =
            BTreeMap::from([("github.event_name", event), ("needs.ci.result", ci), ("inputs.target", target)]);
        // A job whose `needs` failed does not run unless its `if:` says always().
        let staged = ci == "success" && github_if(staging, &ctx);
        ctx.insert("needs.staging.result", if staged { "success" } else { "skipped" });
        ctx.insert("needs.compare.result", if staged { "success" } else { "skipped" });
        (staged, github_if(production, &ctx))
    };
    assert_eq!(run("push", "success", ""), (true, true), "CI passed on main");
    assert_eq!(run("push", "failure", ""), (false, false), "CI failed");
    assert_eq!(run("workflow_dispatch", "success", "staging"), (true, true), "by hand: staging, then production");
    assert_eq!(run("workflow_dispatch", "success", "production"), (false, true), "by hand: production alone");
    assert_eq!(run("workflow_dispatch", "failure", "production"), (false, false), "by hand, but CI failed");
    // Staging failed its gate: production does not run.
    let ctx = BTreeMap::from([
        ("github.event_name", "push"),
        ("needs.ci.result", "success"),
        ("needs.staging.result", "failure"),
    ]);
    assert!(!github_if(production, &ctx));
    // Staging passed, but its load test regressed against the last deploy's (or the comparison
    // failed): production does not run, by push or by hand.
    for event in ["push", "workflow_dispatch"] {
        let ctx = BTreeMap::from([
            ("github.event_name", event),
            ("inputs.target", "staging"),
            ("needs.ci.result", "success"),
            ("needs.staging.result", "success"),
            ("needs.compare.result", "failure"),
        ]);
        assert!(!github_if(production, &ctx), "{event}");
    }
    // A comparison that did not run (staging skipped, so nothing to compare) lets production run
    // only by hand alone.
    for (event, target, deploys) in [("push", "", false), ("workflow_dispatch", "production", true)] {
        let ctx = BTreeMap::from([
            ("github.event_name", event),
            ("inputs.target", target),
            ("needs.ci.result", "success"),
            ("needs.staging.result", "skipped"),
            ("needs.compare.result", "skipped"),
        ]);
        assert_eq!(github_if(production, &ctx), deploys, "{event} {target}");
    }
    // A cancelled run deploys no production, whichever trigger started it (always() would).
    for (event, target, staging) in [
        ("push", "", "success"),
        ("workflow_dispatch", "staging", "success"),
        ("workflow_dispatch", "production", "skipped"),
    ] {
        let mut ctx = BTreeMap::from([
            ("github.event_name", event),
            ("inputs.target", target),
            ("needs.ci.result", "success"),
            ("needs.staging.result", staging),
            ("needs.compare.result", staging),
        ]);
        assert!(github_if(production, &ctx), "{event} {target}: deploys when not cancelled");
        ctx.insert("cancelled()", "true");
        assert!(!github_if(production, &ctx), "{event} {target}: cancelled");
    }
    // The comparison runs only after staging passed (the default `if:`, success()).
    assert!(wf["jobs"]["compare"].get("if").is_none() && wf["jobs"]["compare"]["needs"] == "staging");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deploy_job_commands_run_in_order_against_moto_and_a_local_registry() {
    let registry =
        std::env::var("KONNICHIWA_TEST_REGISTRY").expect("KONNICHIWA_TEST_REGISTRY: run the suite with scripts/test");
    let target_dir = common::target_dir();
    let bin = target_dir.join("debug");
    assert!(
        bin.join("monitor").exists(),
        "{}/monitor is missing: build the workspace (cargo test --workspace does)",
        bin.display()
    );
    let proxy = common::faults::Proxy::start(&common::moto_url(), common::faults::Faults::default()).await;
    proxy.complete_rollouts();
    let endpoint = proxy.url.clone();

    // The real app, for the smoke test.
    let config =
        <app::config::Cli as clap::Parser>::parse_from(["app", "--api-key", KEY, "--sample-interval", "100ms"]).server;
    let state = app::AppState::new(&app::config::ApiKey::new(KEY), &config);
    let _sampler = state.inspector.spawn_sampler();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let app_url = format!("http://{}", listener.local_addr().expect("addr"));
    let (stop_app, app_stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app::server::serve(listener, app::router(state), app::server::Settings::from(&config), async move {
        let _ = app_stopped.await;
    }));

    let account = common::Account::new();
    // inputs.stack: a copy of stack.yaml that builds the image, with monitor thresholds this busy
    // test machine cannot trip.
    let stack = account.dir.join("deploy-stack.yaml");
    let text = std::fs::read_to_string(repo_root().join("stack.yaml")).expect("stack.yaml");
    let text = text
        .replace("cpu_warning_percent: 70", "cpu_warning_percent: 100")
        .replace("cpu_critical_percent: 90", "cpu_critical_percent: 100");
    let text = text
        .replace("memory_warning_percent: 70", "memory_warning_percent: 100")
        .replace("memory_critical_percent: 90", "memory_critical_percent: 100");
    std::fs::write(&stack, text).expect("stack copy");
    let prebuilt = account.dir.join("prebuilt");
    std::fs::create_dir_all(&prebuilt).expect("prebuilt dir");
    let app = tokio::task::block_in_place(|| {
        provisioner::image::build::compile(&repo_root(), provisioner::image::Program::App).expect("static app")
    });
    std::fs::copy(app, prebuilt.join("app")).expect("copy the static app");
    let runner_temp = account.dir.join("runner-temp");
    std::fs::create_dir_all(&runner_temp).expect("temp");
    let (github_output, summary) = (account.dir.join("github-output"), account.dir.join("summary.md"));

    let wf = workflow("deploy-stack.yml");
    let job = &wf["jobs"]["deploy"];
    let mut values: BTreeMap<&str, String> = BTreeMap::new();
    values.insert("inputs.stack", stack.display().to_string());
    values.insert("github.workspace", repo_root().display().to_string());
    values.insert("secrets.API_KEY", KEY.to_owned());
    assert!(job["env"].is_object(), "the deploy job sets its environment");
    let path = |p: &std::path::Path| p.display().to_string();
    let env: Vec<(&str, String)> = vec![
        ("PATH", std::env::var("PATH").unwrap_or_default()),
        // The build step made target/release; this test uses the suite's debug binaries.
        ("BIN", path(&bin)),
        ("RUNNER_TEMP", path(&runner_temp)),
        ("GITHUB_OUTPUT", path(&github_output)),
        ("GITHUB_STEP_SUMMARY", path(&summary)),
        ("AWS_ENDPOINT_URL", endpoint.clone()),
        ("AWS_ACCESS_KEY_ID", "test".into()),
        ("AWS_SECRET_ACCESS_KEY", "test".into()),
        ("AWS_REGION", "ap-northeast-1".into()),
        ("KONNICHIWA_MOTO_ACCOUNT_ID", account.id.clone()),
        ("KONNICHIWA_IMAGE_REPOSITORY", format!("{registry}/workflow-{}", account.id)),
        // The build job's binaries; no compiler in the deploy job.
        ("KONNICHIWA_PREBUILT_DIR", path(&prebuilt)),
        ("CARGO", "/nonexistent/cargo".into()),
    ];
    let run_step = |id: &str, values: &BTreeMap<&str, String>| run_job_step(job, id, values, &env);

    // An environment without its own API_KEY: the step stops before any change, naming the fix.
    values.insert("inputs.environment", "staging".to_owned());
    let mut keyless = values.clone();
    keyless.insert("secrets.API_KEY", String::new());
    let (refused, _) = tokio::task::block_in_place(|| run_step("up", &keyless));
    let said = common::text(&refused);
    assert_eq!(refused.status.code(), Some(1), "{said}");
    assert!(said.contains("set the secret API_KEY in the GitHub environment staging"), "{said}");
    assert!(!runner_temp.join("up.json").exists(), "nothing ran: {said}");

    let (up, up_outputs) = tokio::task::block_in_place(|| run_step("up", &values));
    assert!(up.status.success(), "up step failed:\n{}", common::text(&up));
    let result: Value =
        serde_json::from_str(&std::fs::read_to_string(runner_temp.join("up.json")).expect("up.json")).expect("json");
    assert_eq!(result["applied"], true);
    assert_eq!(result["rollout"]["result"], "completed", "{:#}", result["rollout"]);
    assert!(up_outputs["url"].starts_with("http://"), "{up_outputs:?}");
    let c = account.clients().await;
    let secret = c.secrets.get_secret_value().secret_id("konnichiwa/api-key").send().await.expect("secret");
    assert_eq!(secret.secret_string(), Some(KEY), "the CI secret store's key reached Secrets Manager");
    let md = std::fs::read_to_string(&summary).expect("job summary");
    assert!(
        md.contains("## provisioner up: stack konnichiwa")
            && md.contains("| + create | vpc |")
            && md.contains("**completed**")
            && md.contains("Monthly estimate: **")
            && md.contains("(was 0.00; at full scale"),
        "{md}"
    );

    // A plain-http URL: the health check alone, the key not sent.
    values.insert("steps.up.outputs.url", app_url);
    let (smoke, _) = tokio::task::block_in_place(|| run_step("smoke", &values));
    assert!(smoke.status.success(), "smoke step failed:\n{}", common::text(&smoke));
    let said = common::text(&smoke);
    assert!(said.contains("ok") && said.contains("/inspect (which needs the API key) is not checked"), "{said}");

    // The same commit again: nothing to change, the key not rewritten.
    let (again, _) = tokio::task::block_in_place(|| run_step("up", &values));
    assert!(again.status.success(), "{}", common::text(&again));
    let result: Value =
        serde_json::from_str(&std::fs::read_to_string(runner_temp.join("up.json")).expect("up.json")).expect("json");
    assert_eq!(result["applied"], false);
    assert_eq!(result["api_calls"]["mutating"], 0);
    let _ = stop_app.send(());
}

#[test]
fn only_the_compare_job_reads_other_runs_artifacts_and_it_holds_no_aws_access() {
    let deploy = workflow("deploy.yml");
    let stack = workflow("deploy-stack.yml");
    // `actions: read` once, on the job that downloads another run's artifact; every other job,
    // including the called workflow's (which GitHub checks against their callers' grants, skipped
    // or not), is without it.
    for (file, wf) in [("deploy.yml", &deploy), ("deploy-stack.yml", &stack)] {
        for (name, job) in wf["jobs"].as_object().expect("jobs") {
            let reads_actions = job["permissions"].get("actions").is_some();
            assert_eq!(reads_actions, file == "deploy.yml" && name == "compare", "{file}: job {name}");
        }
    }
    let job = &deploy["jobs"]["compare"];
    assert_eq!(
        job["permissions"],
        serde_json::json!({ "actions": "read", "contents": "read" }),
        "other runs' artifacts, and whether their commit is an ancestor of this one; nothing more"
    );
    assert!(job.get("environment").is_none(), "no environment, so no environment secret nor the deploy role's trust");
    let text = serde_json::to_string(job).expect("json");
    assert!(!text.contains("secrets.") && !text.contains("aws-actions/"), "no secret, no AWS credentials: {text}");
    let steps = job["steps"].as_array().expect("steps");
    // The token reaches the step that asks the API and no other (not the one running loadtest).
    for step in steps {
        let has_token = step["env"].get("GH_TOKEN").is_some();
        assert_eq!(has_token, step["id"] == "baseline", "{step}");
    }
    assert!(job.get("env").and_then(|e| e.get("GH_TOKEN")).is_none());
    let baseline = steps.iter().find(|s| s["id"] == "baseline").expect("baseline step");
    assert_eq!(baseline["env"]["GH_TOKEN"], "${{ github.token }}");
    assert_eq!(
        baseline["env"]["WORKFLOW"], ".github/workflows/deploy.yml",
        "the baseline comes from runs of the file this job is in"
    );
    // The loadtest binary is the one staging's build job made, checked against its digest.
    let sums = steps.iter().position(|s| s["env"]["SUMS"] == "${{ needs.staging.outputs.tools-sums }}");
    let compare = steps.iter().position(|s| s["id"] == "compare").expect("compare step");
    assert!(sums.is_some_and(|i| i < compare), "the binaries are checked before the comparison runs them");
    assert_eq!(stack["on"]["workflow_call"]["outputs"]["tools-sums"]["value"], "${{ jobs.build.outputs.sums }}");
    assert_eq!(
        stack["on"]["workflow_call"]["outputs"]["tools-artifact"]["value"],
        "${{ jobs.build.outputs.artifact }}"
    );
    // The baseline outlives a quiet quarter.
    let keep = stack["jobs"]["deploy"]["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|s| s["name"] == "Keep the results")
        .expect("the results are kept");
    assert_eq!(keep["with"]["name"], "deploy-results-${{ inputs.environment }}");
    assert_eq!(keep["with"]["retention-days"], 90);
    // Re-running the compare job needs the build job's binaries for as long as a re-run is likely.
    let upload = stack["jobs"]["build"]["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|s| s["id"] == "upload")
        .expect("the build job uploads the tools");
    assert_eq!(upload["with"]["retention-days"], 7);
}

/// One step of `job`, run as GitHub would (`bash -e`), with `values` for its expressions and
/// `env` for what the runner provides; returns its output and what it wrote to $GITHUB_OUTPUT.
fn run_job_step(
    job: &Value,
    id: &str,
    values: &BTreeMap<&str, String>,
    env: &[(&str, String)],
) -> (std::process::Output, BTreeMap<String, String>) {
    let step = job["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("no step {id}"));
    let output_file = env.iter().find(|(k, _)| *k == "GITHUB_OUTPUT").map(|(_, v)| v.clone()).expect("GITHUB_OUTPUT");
    std::fs::write(&output_file, "").expect("GITHUB_OUTPUT");
    let mut c = Command::new("bash");
    c.arg("-e").arg("-c").arg(expand(step["run"].as_str().expect("run"), values)).current_dir(repo_root());
    c.env_clear().env("HOME", std::env::var("HOME").unwrap_or_default());
    for (k, v) in job["env"].as_object().into_iter().flatten() {
        c.env(k, expand(v.as_str().unwrap_or_default(), values));
    }
    for (k, v) in step["env"].as_object().into_iter().flatten() {
        c.env(k, expand(v.as_str().unwrap_or_default(), values));
    }
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().expect("bash");
    let outputs = std::fs::read_to_string(&output_file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    (out, outputs)
}

/// A service whose every answer takes `ms`, on port 0.
async fn answering_in(ms: u64) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let router = axum::Router::new().route(
        "/",
        axum::routing::get(move || async move {
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
            "ok"
        }),
    );
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

/// The compare job's baseline and compare steps against a stand-in `gh` that answers from files
/// (and takes no part in choosing: it returns every run whatever the query asks), with results
/// the real loadtest binary wrote against local services.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_compare_job_takes_its_baseline_only_from_an_earlier_successful_deploy_of_main_and_gates_on_it() {
    for tool in ["jq", "unzip", "python3"] {
        let found = Command::new("sh").arg("-c").arg(format!("command -v {tool}")).output().expect("sh");
        assert!(found.status.success(), "{tool} is missing: scripts/test-deps installs it (apt-get install {tool})");
    }
    // The loadtest binary of this source (the suite's own build may predate it).
    let target_dir = common::target_dir();
    let built = tokio::task::block_in_place(|| {
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "--locked", "-p", "loadtest", "--bin", "loadtest"])
            .env("CARGO_TARGET_DIR", &target_dir)
            .current_dir(repo_root())
            .output()
            .expect("cargo")
    });
    assert!(built.status.success(), "{}", common::text(&built));
    let bin = target_dir.join("debug");

    let dir = std::env::temp_dir().join(format!("konnichiwa-workflow-compare-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    // Three runs of the real binary: twice the same service, once one four times slower.
    let (steady, slower) = (answering_in(20).await, answering_in(80).await);
    let load = |url: &str, name: &str| {
        let path = dir.join(name);
        let out = Command::new(bin.join("loadtest"))
            .args(["--host", url, "--rate", "200/s", "--duration", "2s", "--endpoint", "/", "--quiet", "--json"])
            .arg(&path)
            .env_clear()
            .current_dir(&dir)
            .output()
            .expect("loadtest");
        // The default SLOs' rps>=1000 cannot be judged at 200/s: exit 3 is expected too.
        assert!(matches!(out.status.code(), Some(0 | 3)), "{}", common::text(&out));
        std::fs::read(&path).expect("loadtest.json")
    };
    let (base, again, slow) = tokio::task::block_in_place(|| {
        (load(&steady, "base.json"), load(&steady, "again.json"), load(&slower, "slow.json"))
    });

    let wf = workflow("deploy.yml");
    let job = &wf["jobs"]["compare"];
    const REPO: &str = "octo/konnichiwa";
    const TOKEN: &str = "ghs_workflow-test-token";
    const CURRENT: u64 = 300;
    // This run's commit, and the commits of earlier runs: an ancestor of it unless listed in
    // $FAKE_GH/compare-SHA.json (or failing the call, with compare-SHA.fail).
    const CURRENT_SHA: &str = "3000000000000000000000000000000000000003";
    const ANCESTOR: &str = "1000000000000000000000000000000000000001";
    let fake = dir.join("fake-gh");
    std::fs::create_dir_all(&fake).expect("fake gh dir");
    std::fs::write(
        fake.join("gh"),
        format!(
            r#"#!/usr/bin/env bash
# A stand-in for gh: `gh api PATH` answers from $FAKE_GH's files and logs the call.
set -euo pipefail
printf '%s\n' "$*" >> "$FAKE_GH/calls.log"
[ "${{GH_TOKEN:-}}" = {TOKEN} ] || {{ echo "gh: no token" >&2; exit 4; }}
[ "$1" = api ] || {{ echo "gh: only api" >&2; exit 2; }}
path=${{2%%\?*}}
case "$path" in
  repos/{REPO}/actions/workflows/deploy.yml/runs) cat "$FAKE_GH/runs.json" ;;
  repos/{REPO}/actions/runs/*/artifacts) run=${{path#repos/{REPO}/actions/runs/}}; cat "$FAKE_GH/artifacts-${{run%/artifacts}}.json" 2> /dev/null || echo '{{"total_count":0,"artifacts":[]}}' ;;
  repos/{REPO}/actions/artifacts/*/zip) id=${{path#repos/{REPO}/actions/artifacts/}}; id=${{id%/zip}}
    if [ -f "$FAKE_GH/artifact-$id.bytes" ]; then head -c "$(cat "$FAKE_GH/artifact-$id.bytes")" /dev/zero; else cat "$FAKE_GH/artifact-$id.zip"; fi ;;
  repos/{REPO}/compare/*...{CURRENT_SHA}) base=${{path#repos/{REPO}/compare/}}; base=${{base%...*}}
    [ ! -f "$FAKE_GH/compare-$base.fail" ] || {{ echo "gh: HTTP 404" >&2; exit 1; }}
    cat "$FAKE_GH/compare-$base.json" 2> /dev/null || echo '{{"status":"ahead","ahead_by":3,"behind_by":0}}' ;;
  *) echo "gh: unexpected $path" >&2; exit 1 ;;
esac
"#
        ),
    )
    .expect("fake gh");
    let chmod = Command::new("chmod").arg("+x").arg(fake.join("gh")).output().expect("chmod");
    assert!(chmod.status.success());

    // A run as the API lists it, `edit` changing what makes it ineligible.
    let run = |id: u64, minute: u32, edit: &dyn Fn(&mut Value)| {
        let mut r = serde_json::json!({
            "id": id, "name": "deploy", "path": ".github/workflows/deploy.yml", "head_branch": "main",
            "head_sha": ANCESTOR,
            "event": "push", "status": "completed", "conclusion": "success",
            "created_at": format!("2025-06-01T10:{minute:02}:00Z"),
            "repository": { "full_name": REPO }, "head_repository": { "full_name": REPO },
        });
        edit(&mut r);
        r
    };
    // The results artifact of `run`: loadtest.json holding `json`, and `extra` entries.
    let artifact = |run: u64, json: Option<&[u8]>, extra: &[(&str, &[u8])], expired: bool| {
        let id = run * 10;
        let listing = serde_json::json!({ "total_count": 1, "artifacts": [{
            "id": id, "name": "deploy-results-staging", "size_in_bytes": 4096, "expired": expired,
            "created_at": "2025-06-01T10:00:00Z", "workflow_run": { "id": run },
        }]});
        std::fs::write(fake.join(format!("artifacts-{run}.json")), listing.to_string()).expect("listing");
        let mut args = vec![fake.join(format!("artifact-{id}.zip")).display().to_string()];
        let mut entries: Vec<(&str, &[u8])> = extra.to_vec();
        if let Some(json) = json {
            entries.push(("loadtest.json", json));
        }
        for (n, (name, bytes)) in entries.iter().enumerate() {
            let file = fake.join(format!("entry-{run}-{n}"));
            std::fs::write(&file, bytes).expect("entry");
            args.push((*name).to_owned());
            args.push(file.display().to_string());
        }
        let zipped = Command::new("python3")
            .arg("-c")
            .arg("import sys, zipfile\nwith zipfile.ZipFile(sys.argv[1], 'w') as z:\n    for n, f in zip(sys.argv[2::2], sys.argv[3::2]): z.write(f, n)")
            .args(&args)
            .output()
            .expect("python3");
        assert!(zipped.status.success(), "{}", common::text(&zipped));
    };
    let runner_temp = dir.join("runner-temp");
    let summary = dir.join("summary.md");
    let calls = fake.join("calls.log");
    // A deploy run's compare job: this run's results are `new`; returns the two steps' outputs
    // (the compare step's None when its `if:` skips it), the summary and the API calls made.
    let deploy_run_with = |runs: &[Value], new: &[u8], accept: bool, bin: &Path| {
        std::fs::write(
            fake.join("runs.json"),
            serde_json::json!({ "total_count": runs.len(), "workflow_runs": runs }).to_string(),
        )
        .expect("runs");
        let _ = std::fs::remove_dir_all(&runner_temp);
        std::fs::create_dir_all(runner_temp.join("new")).expect("temp");
        std::fs::write(runner_temp.join("new/loadtest.json"), new).expect("new results");
        let _ = std::fs::remove_file(&summary);
        let _ = std::fs::remove_file(&calls);
        let mut values: BTreeMap<&str, String> = BTreeMap::new();
        values.insert("github.workspace", dir.display().to_string());
        values.insert("github.token", TOKEN.to_owned());
        values.insert("github.repository", REPO.to_owned());
        values.insert("github.run_id", CURRENT.to_string());
        values.insert("inputs.accept-regression == true || vars.LOADTEST_REGRESSION == 'warn'", accept.to_string());
        let env = vec![
            ("PATH", format!("{}:{}", fake.display(), std::env::var("PATH").unwrap_or_default())),
            ("FAKE_GH", fake.display().to_string()),
            ("RUNNER_TEMP", runner_temp.display().to_string()),
            ("GITHUB_OUTPUT", dir.join("github-output").display().to_string()),
            ("GITHUB_STEP_SUMMARY", summary.display().to_string()),
            ("GITHUB_SERVER_URL", "https://github.com".to_owned()),
            ("GITHUB_SHA", CURRENT_SHA.to_owned()),
        ];
        let (found, found_outputs) = run_job_step(job, "baseline", &values, &env);
        let compare_if =
            job["steps"].as_array().expect("steps").iter().find(|s| s["id"] == "compare").expect("compare")["if"]
                .as_str()
                .expect("the compare step has an if:")
                .to_owned();
        let ctx: BTreeMap<&str, &str> =
            found_outputs.get("found").map(|f| ("steps.baseline.outputs.found", f.as_str())).into_iter().collect();
        let compared = (found.status.success() && github_if(&compare_if, &ctx)).then(|| {
            values.insert("steps.baseline.outputs.run", found_outputs.get("run").cloned().unwrap_or_default());
            // `bin` stands in for the build job's dist/.
            let mut env = env.clone();
            env.push(("BIN", bin.display().to_string()));
            run_job_step(job, "compare", &values, &env).0
        });
        let md = std::fs::read_to_string(&summary).unwrap_or_default();
        let log = std::fs::read_to_string(&calls).unwrap_or_default();
        (found, found_outputs, compared, md, log)
    };
    let deploy_run = |runs: &[Value], new: &[u8], accept: bool| deploy_run_with(runs, new, accept, &bin);

    // Newer than the one eligible run, and listed first, runs that must never be the baseline:
    // each of them would regress against this run's results.
    let ineligible: Vec<Value> = vec![
        run(211, 59, &|r| r["path"] = ".github/workflows/ci.yml".into()), // another workflow named deploy
        run(212, 58, &|r| r["head_branch"] = "feature".into()),
        run(213, 57, &|r| r["event"] = "pull_request".into()),
        run(214, 56, &|r| r["head_repository"]["full_name"] = "mallory/konnichiwa".into()), // a fork
        run(215, 55, &|r| r["conclusion"] = "failure".into()),
        run(216, 54, &|r| {
            r["status"] = "in_progress".into();
            r["conclusion"] = Value::Null;
        }),
        run(CURRENT, 53, &|_| {}),
        run(217, 52, &|r| r["repository"]["full_name"] = "mallory/konnichiwa".into()),
        run(218, 51, &|r| r["event"] = "workflow_run".into()),
        // A tag named `main`: its runs have head_branch "main" too, and pass the API's filter.
        run(219, 50, &|r| r["path"] = ".github/workflows/deploy.yml@refs/tags/main".into()),
        run(220, 49, &|r| r["path"] = ".github/workflows/deploy.yml@refs/heads/feature".into()),
    ];
    // Runs the listing's checks pass but whose commit is not this run's past: main was
    // force-pushed (diverged), the run is of a later commit than this one (a re-run of an old
    // deploy: behind), or the compare API cannot say.
    let not_ancestors: Vec<Value> = [("diverged", 48), ("behind", 47), ("fail", 46)]
        .iter()
        .map(|(status, minute)| {
            let sha = format!("{minute:0>40}");
            if *status == "fail" {
                std::fs::write(fake.join(format!("compare-{sha}.fail")), "").expect("compare");
            } else {
                std::fs::write(fake.join(format!("compare-{sha}.json")), format!(r#"{{"status":"{status}"}}"#))
                    .expect("compare");
            }
            run(230 + u64::from(*minute), *minute, &|r| r["head_sha"] = sha.clone().into())
        })
        .collect();
    for r in ineligible.iter().chain(&not_ancestors) {
        artifact(r["id"].as_u64().expect("id"), Some(&slow), &[], false);
    }
    // The newest eligible run (a manual one) and an older one; the API lists the older first.
    artifact(100, Some(&base), &[], false);
    artifact(90, Some(&slow), &[], false);
    // Paths as GitHub may write them for a run of main.
    let older = run(90, 10, &|r| r["path"] = ".github/workflows/deploy.yml@refs/heads/main".into());
    let newest = run(100, 20, &|r| r["event"] = "workflow_dispatch".into());
    let runs: Vec<Value> =
        ineligible.iter().chain(&not_ancestors).cloned().chain([older.clone(), newest.clone()]).collect();

    // The same service again: no regression.
    let (found, outputs, compared, md, log) = tokio::task::block_in_place(|| deploy_run(&runs, &again, false));
    assert!(found.status.success(), "{}", common::text(&found));
    assert_eq!(
        outputs,
        BTreeMap::from([("found".to_owned(), "true".to_owned()), ("run".to_owned(), "100".to_owned())])
    );
    for r in ineligible.iter().chain(&not_ancestors) {
        let id = r["id"].as_u64().expect("id");
        assert!(
            !log.contains(&format!("runs/{id}/")) && !log.contains(&format!("artifacts/{id}0/")),
            "run {id} was read: {log}"
        );
    }
    for r in &not_ancestors {
        let sha = r["head_sha"].as_str().expect("sha");
        assert!(log.contains(&format!("compare/{sha}...{CURRENT_SHA}")), "{sha} was not checked: {log}");
        let id = r["id"].as_u64().expect("id");
        assert!(
            common::text(&found).contains(&format!("Run {id} is not used as the baseline")),
            "{}",
            common::text(&found)
        );
    }
    assert!(log.contains(&format!("compare/{ANCESTOR}...{CURRENT_SHA}")), "{log}");
    assert!(log.contains("actions/runs/100/artifacts") && log.contains("actions/artifacts/1000/zip"), "{log}");
    assert!(!log.contains("runs/90/"), "an older run once the newest eligible one has results: {log}");
    let compared = compared.expect("compared");
    assert_eq!(compared.status.code(), Some(0), "{}\n{md}", common::text(&compared));
    assert!(
        md.contains("No regression: production may deploy.") && md.contains("No regression beyond the limits"),
        "{md}"
    );
    assert!(md.contains("Base: [run 100](https://github.com/octo/konnichiwa/actions/runs/100)"), "{md}");
    // The report is shown between stop-commands markers, so none of its lines acts as a command.
    let said = String::from_utf8_lossy(&compared.stdout);
    let token = said.lines().find_map(|l| l.strip_prefix("::stop-commands::")).expect("stop-commands").to_owned();
    assert!(token.len() == 32 && said.contains(&format!("\n::{token}::\n")), "{said}");
    let (before, rest) = said.split_once(&format!("::stop-commands::{token}\n")).expect("start marker");
    let (report, after) = rest.split_once(&format!("\n::{token}::\n")).expect("end marker");
    assert!(report.contains("Comparing") && report.contains("No regression beyond the limits"), "{said}");
    assert!(
        !before.contains("Comparing") && !after.contains("Comparing"),
        "the whole report between the markers: {said}"
    );

    // Four times slower: the step fails, the verdict in the summary, production not deployed.
    let (_, _, compared, md, _) = tokio::task::block_in_place(|| deploy_run(&runs, &slow, false));
    let compared = compared.expect("compared");
    assert_eq!(compared.status.code(), Some(3), "{}\n{md}", common::text(&compared));
    assert!(
        md.contains("Regressed against the staging load test of run 100.")
            && md.contains("Production is not deployed")
            && md.contains("REGRESSED")
            && md.contains("<pre>"),
        "{md}"
    );
    assert!(common::text(&compared).contains("::error::Regressed"), "{}", common::text(&compared));
    // Accepted by hand (or LOADTEST_REGRESSION=warn): a warning, and production may deploy.
    let (_, _, compared, md, _) = tokio::task::block_in_place(|| deploy_run(&runs, &slow, true));
    let compared = compared.expect("compared");
    assert_eq!(compared.status.code(), Some(0), "{}", common::text(&compared));
    assert!(md.contains("Accepted") && common::text(&compared).contains("::warning::Regressed"), "{md}");

    // No baseline: only ineligible runs, or an eligible one whose results expired. The deploy
    // proceeds, saying so.
    artifact(100, Some(&base), &[], true);
    for runs in [ineligible.clone(), vec![newest.clone()]] {
        let (found, outputs, compared, md, _) = tokio::task::block_in_place(|| deploy_run(&runs, &slow, false));
        assert!(found.status.success(), "{}", common::text(&found));
        assert_eq!(outputs.get("found").map(String::as_str), Some("false"));
        assert!(compared.is_none(), "nothing to compare with");
        assert!(md.contains("No baseline") && common::text(&found).contains("::notice::No baseline"), "{md}");
    }

    // A hostile artifact: loadtest.json that is not a result (shell in it), beside an entry that
    // would land outside the extraction directory. The comparison fails cleanly; nothing of it
    // ran, nothing landed outside, nothing reached the step's outputs.
    let pwned = runner_temp.join("pwned");
    let shell = format!("$(touch {0}) `touch {0}` {{\"format\": \"konnichiwa-loadtest/1\"", pwned.display());
    artifact(100, Some(shell.as_bytes()), &[("../escaped", b"#!/bin/sh\ntouch pwned\n")], false);
    let (found, outputs, compared, md, _) = tokio::task::block_in_place(|| deploy_run(&runs, &again, false));
    assert!(found.status.success(), "{}", common::text(&found));
    assert_eq!(outputs.keys().collect::<Vec<_>>(), ["found", "run"], "{outputs:?}");
    let compared = compared.expect("compared");
    assert_eq!(compared.status.code(), Some(1), "{}\n{md}", common::text(&compared));
    assert!(md.contains("The comparison with run 100 failed (exit 1)") && md.contains("not a loadtest result"), "{md}");
    assert!(!pwned.exists() && !runner_temp.join("escaped").exists() && !dir.join("escaped").exists());
    let extracted: Vec<_> =
        std::fs::read_dir(runner_temp.join("baseline")).expect("dir").map(|e| e.expect("entry").file_name()).collect();
    assert_eq!(extracted, ["loadtest.json"], "the one expected file, nothing else");

    // An artifact without loadtest.json is not a baseline: the step stops, saying why.
    artifact(100, None, &[("up.json", b"{}")], false);
    let (found, _, compared, _, _) = tokio::task::block_in_place(|| deploy_run(&runs, &again, false));
    assert_eq!(found.status.code(), Some(1), "{}", common::text(&found));
    assert!(common::text(&found).contains("has no loadtest.json"), "{}", common::text(&found));
    assert!(compared.is_none());

    // The API's answers are checked too: an artifact listed bigger than a load test's results,
    // an id, size or commit that is not one, an artifact of another run or name.
    let listing = |run: u64, artifacts: Value| {
        std::fs::write(
            fake.join(format!("artifacts-{run}.json")),
            serde_json::json!({ "total_count": 1, "artifacts": artifacts }).to_string(),
        )
        .expect("listing");
    };
    let listed = |id: Value, size: Value, name: &str, of_run: u64| {
        serde_json::json!([{ "id": id, "name": name, "size_in_bytes": size, "expired": false,
            "created_at": "2025-06-01T10:00:00Z", "workflow_run": { "id": of_run } }])
    };
    artifact(100, Some(&base), &[], false);
    let refused = |runs: &[Value], says: &str| {
        let (found, outputs, compared, _, log) = tokio::task::block_in_place(|| deploy_run(runs, &again, false));
        assert_eq!(found.status.code(), Some(1), "{says}: {}", common::text(&found));
        assert!(common::text(&found).contains(says), "{says}: {}", common::text(&found));
        assert!(compared.is_none() && !outputs.contains_key("run"), "{says}: {outputs:?}");
        log
    };
    listing(100, listed(1000.into(), (64_u64 * 1024 * 1024 + 1).into(), "deploy-results-staging", 100));
    let log = refused(&runs, "is 67108865 bytes, more than a load test's results");
    assert!(!log.contains("artifacts/1000/zip"), "not downloaded: {log}");
    listing(100, listed("1000 ../../x".into(), 4096.into(), "deploy-results-staging", 100));
    refused(&runs, "artifact id or size that is not a number");
    listing(100, listed(1000.into(), "4096; touch pwned".into(), "deploy-results-staging", 100));
    refused(&runs, "artifact id or size that is not a number");
    refused(&[run(100, 20, &|r| r["id"] = "100x".into())], "run id that is not a number");
    refused(&[run(100, 20, &|r| r["head_sha"] = "main".into())], "a head_sha that is not a commit's");
    // Listed as 4096 bytes, downloading to more than 64 MiB: cut there and refused.
    artifact(100, Some(&base), &[], false);
    std::fs::write(fake.join("artifact-1000.bytes"), (64_u64 * 1024 * 1024 + 4096).to_string()).expect("bytes");
    refused(&runs, "downloads to more than 67108864 bytes");
    std::fs::remove_file(fake.join("artifact-1000.bytes")).expect("bytes");
    // Another run's artifact, or another artifact, in the run's listing: passed over for the
    // older run's.
    for other in [
        listed(1000.into(), 4096.into(), "deploy-results-staging", 101),
        listed(1000.into(), 4096.into(), "deploy-results-production", 100),
    ] {
        listing(100, other);
        let (found, outputs, _, _, log) = tokio::task::block_in_place(|| deploy_run(&runs, &again, false));
        assert!(found.status.success(), "{}", common::text(&found));
        assert_eq!(outputs.get("run").map(String::as_str), Some("90"), "{outputs:?}");
        assert!(!log.contains("artifacts/1000/zip") && log.contains("artifacts/900/zip"), "{log}");
    }

    // This run's own results missing or unreadable, or the comparison timing out: each said as
    // such, not as a baseline that could not be read.
    artifact(100, Some(&base), &[], false);
    for (new, says) in [
        (&b""[..], "this run's deploy-results-staging has no loadtest.json"),
        (&b"{}"[..], "this run's own loadtest.json could not be read"),
    ] {
        let (_, _, compared, md, _) = tokio::task::block_in_place(|| deploy_run(&runs, new, false));
        let compared = compared.expect("compared");
        assert_eq!(compared.status.code(), Some(1), "{}\n{md}", common::text(&compared));
        assert!(md.contains(says) && !md.contains("its loadtest.json could not be read"), "{md}");
    }
    let stuck = dir.join("stuck-bin");
    std::fs::create_dir_all(&stuck).expect("dir");
    std::fs::write(stuck.join("loadtest"), "#!/bin/sh\nexit 124\n").expect("stand-in");
    let chmod = Command::new("chmod").arg("+x").arg(stuck.join("loadtest")).output().expect("chmod");
    assert!(chmod.status.success());
    let (_, _, compared, md, _) = tokio::task::block_in_place(|| deploy_run_with(&runs, &again, false, &stuck));
    assert_eq!(compared.expect("compared").status.code(), Some(124), "{md}");
    assert!(md.contains("timed out after 5 minutes (exit 124)") && !md.contains("could not be read"), "{md}");

    // A base of 256 endpoints with long names holding `<` and `&`: the summary shows them
    // escaped, and cut well within a step summary's 1 MiB.
    let mut doc: Value = serde_json::from_slice(&base).expect("base");
    let endpoint = doc["endpoints"][0].clone();
    doc["endpoints"] = (0..256)
        .map(|i| {
            let mut e = endpoint.clone();
            e["name"] = format!("GET /<b>&{i}{}", "x".repeat(1000)).into();
            e
        })
        .collect();
    artifact(100, Some(doc.to_string().as_bytes()), &[], false);
    let (_, _, compared, md, _) = tokio::task::block_in_place(|| deploy_run(&runs, &again, false));
    let compared = compared.expect("compared");
    assert!(matches!(compared.status.code(), Some(0 | 3)), "{}", common::text(&compared));
    assert!(common::text(&compared).contains("GET /<b>&255"), "the whole report in the log");
    assert!(md.contains("GET /&lt;b&gt;&amp;0xxx") && !md.contains("<b>"), "escaped");
    assert!(md.contains("The report is cut here (200000 bytes of ") && md.len() < 250_000, "{} bytes", md.len());
    let _ = std::fs::remove_dir_all(&dir);
}
