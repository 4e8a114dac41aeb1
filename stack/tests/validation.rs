//! The example stack.yaml loads; every kind of bad stack file is refused with a message that
//! names the fix and the line and column of the value at fault; all problems come at once.

use std::path::Path;

use stack::Stack;

const EXAMPLE: &str = include_str!("../../stack.yaml");

/// The example with one line replaced (matched by its start, after indentation).
fn with(original: &str, replacement: &str) -> String {
    let mut found = false;
    let text: Vec<String> = EXAMPLE
        .lines()
        .map(|l| {
            if !found && l.trim_start().starts_with(original) {
                found = true;
                let indent = &l[..l.len() - l.trim_start().len()];
                format!("{indent}{replacement}")
            } else {
                l.to_owned()
            }
        })
        .collect();
    assert!(found, "the example has no line starting with {original:?}");
    text.join("\n")
}

fn line_of(text: &str, needle: &str) -> u64 {
    text.lines()
        .position(|l| l.contains(needle))
        .map(|i| i as u64 + 1)
        .unwrap_or_else(|| panic!("{needle:?} not in text"))
}

fn problems(text: &str) -> Vec<stack::LocatedProblem> {
    match Stack::from_yaml(text, Path::new("stack.yaml")) {
        Ok(_) => Vec::new(),
        Err(e) => e.problems(),
    }
}

#[test]
fn the_example_is_valid_with_documented_values() {
    let s = Stack::load(Path::new(env!("CARGO_MANIFEST_DIR")).join("../stack.yaml")).expect("stack.yaml is valid");
    assert_eq!(s.name, "konnichiwa");
    assert_eq!(s.region, "ap-northeast-1");
    assert_eq!(s.load_balancer.deregistration_delay.get().as_secs(), 30);
    assert_eq!(s.slo.p95_latency.get().as_millis(), 300);
    assert_eq!(s.slo.max_error_rate.get(), 1.0);
    let subnets: Vec<String> = stack::subnet_blocks(&s).iter().map(|n| n.to_string()).collect();
    assert_eq!(subnets, ["10.40.0.0/20", "10.40.16.0/20"]);
    assert!(s.resource_tags().contains(&("konnichiwa:stack".to_owned(), "konnichiwa".to_owned())));
}

/// (line to replace, replacement, path at fault, fragment of the message)
const BAD: &[(&str, &str, &str, &str)] = &[
    ("name:", "name: Konnichiwa_App", "name", "lowercase letters"),
    ("name:", "name: ecs-demo", "name", "reserves for capacity provider"),
    ("region:", "region: tokyo-1", "region", "not an AWS region"),
    ("region:", "region: ap-northeast-1\nadopted:\n  load_balancer: legacy_alb", "adopted.load_balancer", "1–32 ASCII"),
    ("region:", "region: ap-northeast-1\nadopted:\n  instance_role: \"\"", "adopted.instance_role", "remove the line"),
    (
        "region:",
        "region: ap-northeast-1\nadopted:\n  execution_role: legacy\n  task_role: legacy",
        "adopted.task_role",
        "is adopted.execution_role already",
    ),
    ("tags:", "tags: { Name: web }", "tags.Name", "names each resource itself"),
    ("tags:", "tags: { 'konnichiwa:stack': other }", "tags.konnichiwa:stack", "the provisioner's own"),
    ("tags:", "tags: { team: 'ops<>' }", "tags.team", "AWS refuses in tags"),
    ("tags:", "tags: { 'cost#center': x }", "tags.cost#center", "AWS refuses in tags"),
    (
        "# https:",
        "https: { certificate_arn: 'arn:aws:acm:us-east-1:123456789012:certificate/0a1b' }",
        "load_balancer.https.certificate_arn",
        "an ALB takes a certificate from its own region",
    ),
    (
        "# https:",
        "https: { domain: '*.example.com' }",
        "load_balancer.https.domain",
        "name the host, e.g. \"api.example.com\"",
    ),
    (
        "# https:",
        "https: { domain: api.example.com, hosted_zone: example.org }",
        "load_balancer.https.hosted_zone",
        "api.example.com is not inside the zone example.org",
    ),
    ("# https:", "https: { domain: Api.Example.com }", "load_balancer.https.domain", "write it in lowercase"),
    ("# https:", "https: { domain: api..example.com }", "load_balancer.https.domain", "must have 1–63 characters"),
    ("# https:", "https: { port: 443 }", "load_balancer.https", "HTTPS needs a domain"),
    (
        "deployment:",
        "deployment: { alarm_actions: ['arn:aws:sns:us-east-1:123456789012:pager'] }",
        "service.deployment.alarm_actions[0]",
        "notify topics in their own region",
    ),
    (
        "deployment:",
        "deployment: { slo_alarms: false, alarm_topic: true }",
        "service.deployment.alarm_topic",
        "set slo_alarms: true too",
    ),
    (
        "# https:",
        "https: { domain: a-very-long-host-name-for-the-service.in-a-long-subdomain.example.com }",
        "load_balancer.https.domain",
        "holds at most 64",
    ),
    (
        "# https:",
        "https: { hosted_zone: example.com, certificate_arn: 'arn:aws:acm:ap-northeast-1:1:certificate/x' }",
        "load_balancer.https.hosted_zone",
        "only with https.domain",
    ),
    ("name:", "name: shop-loadtest", "name", "another stack's load-test family"),
    ("cidr:", "cidr: 10.40.0.0/33", "network.cidr", "not an IPv4 CIDR"),
    ("cidr:", "cidr: 10.40.0.0/8", "network.cidr", "/16 to /24"),
    ("cidr:", "cidr: 10.40.1.0/16", "network.cidr", "host bits"),
    ("cidr:", "cidr: 8.8.0.0/16", "network.cidr", "not a private range"),
    ("availability_zones:", "availability_zones: 1", "network.availability_zones", "2–6"),
    (
        "availability_zones:",
        "availability_zones: 2\n  subnets: [10.40.0.0/20, 10.41.0.0/20]",
        "network.subnets[1]",
        "does not fit in the VPC",
    ),
    (
        "availability_zones:",
        "availability_zones: 2\n  subnets: [10.40.0.0/20, 10.40.8.0/21]",
        "network.subnets[1]",
        "overlaps subnets[0]",
    ),
    ("min: 1", "min: 5", "capacity.min", "greater than max 4"),
    ("desired: 2", "desired: 9", "capacity.desired", "between min 1 and max 4"),
    ("instance_type:", "instance_type: small", "capacity.instance_type", "e.g. t3.small"),
    ("ami:", "ami: amazon-linux", "capacity.ami", "ecs-optimized-al2023"),
    ("registry:", "registry: { repository: Konnichiwa }", "registry.repository", "lowercase"),
    ("secret:", "secret: { name: 'api key!' }", "secret.name", "not a Secrets Manager name"),
    (
        "secret:",
        "secret: { name: k/api-key, only_principals: ['arn:aws:iam::123456789012:role/*'] }",
        "secret.only_principals[0]",
        "not the ARN of an IAM role or user",
    ),
    ("access_logs:", "access_logs: { retention_days: 0 }", "load_balancer.access_logs.retention_days", "1–3650"),
    ("container_port:", "container_port: 0", "service.container_port", "cannot be mapped"),
    ("memory: 256", "memory: 32", "service.memory", "below what the app needs"),
    ("memory: 256", "memory: 4096", "service.memory", "does not fit on a t3.small"),
    ("cpu: 256", "cpu: 4096", "service.cpu", "do not fit on a t3.small"),
    ("health_check_path:", "health_check_path: health", "service.health_check_path", "starting with /"),
    (
        "health_check_grace_period:",
        "health_check_grace_period: soon",
        "service.health_check_grace_period",
        "not a duration",
    ),
    (
        "environment:",
        "environment: { API_KEY: hunter2hunter2 }",
        "service.environment.API_KEY",
        "injected from the secret",
    ),
    (
        "autoscaling:",
        "autoscaling: { min: 4, max: 2, target_cpu_percent: 60 }",
        "service.autoscaling.min",
        "greater than max",
    ),
    (
        "autoscaling:",
        "autoscaling: { min: 2, max: 8, target_cpu_percent: lots }",
        "service.autoscaling.target_cpu_percent",
        "not a percentage",
    ),
    ("desired_count:", "desired_count: 12", "service.desired_count", "outside autoscaling"),
    ("deployment:", "deployment: { timeout: 10 }", "service.deployment.timeout", "has no unit"),
    ("deregistration_delay:", "deregistration_delay: 2h", "load_balancer.deregistration_delay", "0–3600s"),
    ("idle_timeout:", "idle_timeout: 120s", "load_balancer.idle_timeout", "shorter than the app's keep-alive"),
    ("logs:", "logs: { retention_days: 10 }", "logs.retention_days", "not a retention"),
    (
        "slo:",
        "slo: { requests_per_second: 1000, p95_latency: fast, max_error_rate: 1% }",
        "slo.p95_latency",
        "not a duration",
    ),
    (
        "slo:",
        "slo: { requests_per_second: 1000, p95_latency: 300ms, max_error_rate: 150% }",
        "slo.max_error_rate",
        "out of range",
    ),
    (
        "slo:",
        "slo: { requests_per_second: 1000, p95_latency: 300ms, max_error_rate: 1%, availability: 100% }",
        "slo.availability",
        "no budget",
    ),
    (
        "slo:",
        "slo: { requests_per_second: 1000, p95_latency: 300ms, max_error_rate: 1%, availability: 93% }",
        "slo.availability",
        "93.1–99.999%",
    ),
    (
        "slo:",
        "slo: { requests_per_second: 1000, p95_latency: 300ms, max_error_rate: 1%, availability: 99.9%, latency: 120% }",
        "slo.latency",
        "out of range",
    ),
    (
        "slo:",
        "slo: { requests_per_second: 1000, p95_latency: 300ms, max_error_rate: 1%, availability: 99.9%, latency: 90% }",
        "slo.latency",
        "fast page",
    ),
    (
        "slo:",
        "slo: { requests_per_second: 1000, p95_latency: 300ms, max_error_rate: 1%, latency: 95% }",
        "slo.latency",
        "set slo.availability too",
    ),
    ("cpu_warning_percent:", "cpu_warning_percent: 95", "monitor.cpu_warning_percent", "above critical"),
    ("latency_warning:", "latency_warning: 5s", "monitor.latency_warning", "above critical"),
];

#[test]
fn each_bad_value_is_reported_with_its_location_and_fix() {
    for (original, replacement, path, fragment) in BAD {
        let text = with(original, replacement);
        let found = problems(&text);
        let problem = found.iter().find(|p| p.path == *path).unwrap_or_else(|| {
            panic!("{replacement:?}: expected a problem at {path}, got {found:#?}");
        });
        if !fragment.is_empty() {
            assert!(problem.message.contains(fragment), "{replacement:?}: {:?} lacks {fragment:?}", problem.message);
        }
        let first_replaced = replacement.lines().last().unwrap_or(replacement);
        let expected_line = line_of(&text, first_replaced.trim());
        let pos = problem.position.unwrap_or_else(|| panic!("{replacement:?}: no position"));
        assert_eq!(pos.line, expected_line, "{replacement:?} at {path}: {problem:?}");
        assert!(pos.column > 1, "{replacement:?}: column points at the value: {pos:?}");
    }
}

/// One parse error: (replaced line, replacement, the message in full as the user sees it).
const PARSE_ERRORS: &[(&str, &str, &str)] = &[
    (
        "desired_count:",
        "desired_count: 2\n  desried_count: 3",
        "stack.yaml:LINE:3: service.desried_count: unknown field `desried_count`: did you mean `desired_count`? the fields here are image, container_port, cpu, memory, desired_count, health_check_path, health_check_grace_period, environment, autoscaling, deployment, exec",
    ),
    (
        "cpu: 256",
        "cpu: lots",
        "stack.yaml:LINE:8: service.cpu: \"lots\" is not a whole number, 0 or more; write e.g. cpu: 256",
    ),
    (
        "min: 1",
        "min: -1",
        "stack.yaml:LINE:8: capacity.min: \"-1\" is not a whole number, 0 or more; write e.g. min: 1",
    ),
    (
        "port: 80",
        "port: 70000",
        "stack.yaml:LINE:9: load_balancer.port: \"70000\" is not a whole number from 0 to 65535; write e.g. port: 80",
    ),
    (
        "ssm_access:",
        "ssm_access: maybe",
        "stack.yaml:LINE:15: capacity.ssm_access: \"maybe\" is not true or false; write e.g. ssm_access: false",
    ),
    ("cidr:", "cidr: [10.40.0.0/16]", "stack.yaml:LINE:9: network.cidr: expected text; write e.g. cidr: 10.40.0.0/16"),
];

#[test]
fn parse_errors_name_the_place_the_field_what_is_expected_and_an_example() {
    for (line, replacement, expected) in PARSE_ERRORS {
        let text = with(line, replacement);
        let err = Stack::from_yaml(&text, Path::new("stack.yaml")).expect_err(replacement);
        let last = replacement.lines().last().unwrap_or(replacement).trim();
        let expected = expected.replace("LINE", &line_of(&text, last).to_string());
        assert_eq!(err.to_string(), expected, "{replacement}");
        let problems = err.problems();
        assert_eq!(problems.len(), 1);
        assert!(!problems[0].path.is_empty(), "--json problems carry the path: {problems:?}");
        assert!(!problems[0].message.contains('\n'), "one line: {problems:?}");
    }
}

#[test]
fn a_file_with_only_a_name_lists_every_missing_section_with_its_path_and_a_yaml_example() {
    let err = Stack::from_yaml("name: x\n", Path::new("stack.yaml")).expect_err("sections missing");
    let problems = err.problems();
    let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(paths, ["network", "capacity", "service", "load_balancer"], "all at once: {problems:?}");
    let network = &problems[0].message;
    assert!(network.starts_with("`network` is required here, e.g. network: { "), "{network}");
    assert!(network.contains("cidr: 10.40.0.0/16") && !network.contains('"'), "YAML, not JSON: {network}");
    let text = err.to_string();
    assert!(text.starts_with("stack.yaml has 4 problems:\n  stack.yaml:1:1: network: `network` is required"), "{text}");
    // One section written, another missing field inside it: its path is the field's.
    let err = Stack::from_yaml("name: x\nnetwork: {}\n", Path::new("stack.yaml")).expect_err("cidr missing");
    assert_eq!(err.problems()[0].path, "network.cidr", "{err}");
}

#[test]
fn an_empty_file_and_bad_yaml_say_so_with_the_file_name() {
    for empty in ["", "\n\n", "# only a comment\n"] {
        let err = Stack::from_yaml(empty, Path::new("mine.yaml")).expect_err("empty");
        let text = err.to_string();
        assert!(text.starts_with("mine.yaml: the file is empty") && text.contains("name, network"), "{text}");
    }
    let err = Stack::from_yaml("name: [unclosed\n", Path::new("x.yaml")).expect_err("syntax").to_string();
    assert!(err.starts_with("x.yaml:") && !err.contains("<input>") && !err.contains("error:"), "{err}");
    let err = Stack::from_yaml("nam: x\n", Path::new("x.yaml")).expect_err("unknown").to_string();
    assert!(err.contains("did you mean `name`?"), "{err}");
}

#[test]
fn the_tools_read_only_their_sections() {
    let dir = std::env::temp_dir().join(format!("konnichiwa-sections-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("stack.yaml");
    // A problem in the network section is not the load test's or the monitor's.
    std::fs::write(&file, with("cidr:", "cidr: 10.40.0.0/33")).expect("write");
    assert!(Stack::load(&file).is_err());
    let sections = stack::ToolSections::load(&file).expect("the tools' sections are fine");
    assert_eq!(sections.monitor.cpu_warning_percent, 70.0);
    // A problem in theirs is.
    std::fs::write(&file, with("cpu_warning_percent:", "cpu_warning_percent: 95")).expect("write");
    let err = stack::ToolSections::load(&file).expect_err("monitor section").one_line();
    assert!(err.contains("monitor.cpu_warning_percent") && !err.contains('\n'), "{err}");
    std::fs::remove_dir_all(&dir).expect("clean up");
}

#[test]
fn all_problems_are_reported_at_once_in_file_order() {
    let text = with("region:", "region: mars-1");
    let text = text.replace("cidr: 10.40.0.0/16", "cidr: 10.40.0.0/33").replace("memory: 256", "memory: 1");
    let found = problems(&text);
    let paths: Vec<&str> = found.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(paths, ["region", "network.cidr", "service.memory"], "{found:#?}");
    let err = Stack::from_yaml(&text, Path::new("stack.yaml")).expect_err("invalid").to_string();
    assert!(err.starts_with("stack.yaml has 3 problems:"), "{err}");
    assert!(err.contains(&format!("stack.yaml:{}:", line_of(&text, "mars-1"))), "{err}");
}

#[test]
fn a_missing_file_names_the_flag() {
    let err = Stack::load("/nonexistent/stack.yaml").expect_err("missing").to_string();
    assert!(err.contains("--stack"), "{err}");
}

#[test]
fn the_json_schema_describes_the_file() {
    let schema = stack::json_schema();
    let props = &schema["properties"];
    for key in
        ["name", "region", "network", "capacity", "registry", "secret", "service", "load_balancer", "slo", "monitor"]
    {
        assert!(props.get(key).is_some(), "schema lacks {key}");
    }
    assert_eq!(schema["additionalProperties"], false, "unknown fields are rejected");
    let required = schema["required"].as_array().expect("required list");
    assert!(required.iter().any(|v| v == "name"));
}

/// The examples of README.md's stack.yaml section: each `# \`OLD\` → \`NEW\`, …` line is an edit
/// of the repository's stack.yaml, and the lines after it what loading the edited file says (a
/// line ending in `…` is a prefix of the real one).
#[test]
fn the_readmes_error_examples_are_what_the_edits_report() {
    let readme = include_str!("../../README.md");
    let section = readme.split("\n## stack.yaml\n").nth(1).expect("README has a stack.yaml section");
    let block = section.split("```\n").nth(1).expect("the section's first code block");
    // (the edits, what the README says loading the edited file reports)
    type Example<'a> = (Vec<(&'a str, &'a str)>, Vec<&'a str>);
    let mut examples: Vec<Example> = Vec::new();
    for line in block.lines() {
        match line.strip_prefix("# ") {
            Some(edits) => {
                let quoted: Vec<&str> = edits.split('`').skip(1).step_by(2).collect();
                assert!(quoted.len().is_multiple_of(2) && !quoted.is_empty(), "not `OLD` → `NEW` pairs: {line}");
                examples.push((quoted.chunks(2).map(|p| (p[0], p[1])).collect(), Vec::new()));
            }
            None => examples.last_mut().expect("an edit line first").1.push(line),
        }
    }
    assert_eq!(examples.len(), 4, "{block}");
    for (edits, said) in examples {
        let mut text = EXAMPLE.to_owned();
        for (old, new) in &edits {
            assert!(text.contains(old), "stack.yaml has no {old:?}");
            text = text.replacen(old, new, 1);
        }
        let err = Stack::from_yaml(&text, Path::new("stack.yaml")).expect_err("the edit is refused").to_string();
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), said.len(), "{edits:?}: README says\n{}\nthe stack says\n{err}", said.join("\n"));
        for (real, shown) in lines.iter().zip(&said) {
            let matches = match shown.strip_suffix('…') {
                Some(prefix) => real.starts_with(prefix),
                None => real == shown,
            };
            assert!(matches, "{edits:?}: README says\n{shown}\nthe stack says\n{real}");
        }
    }
}

#[test]
fn a_stack_that_would_cross_an_aws_limit_is_refused_naming_the_limit_and_the_fix() {
    use stack::limits;
    // The environment travels in the task definition (64 KiB in all).
    let big = "x".repeat(limits::ENVIRONMENT_BUDGET);
    let text = with("environment:", &format!("environment: {{ LOG_LEVEL: info, BLOB: {big} }}"));
    let p = problems(&text).into_iter().find(|p| p.path == "service.environment").expect("environment refused");
    assert!(p.message.contains("65536 bytes") && p.message.contains("move large values"), "{}", p.message);
    let fits = "x".repeat(limits::ENVIRONMENT_BUDGET - 100);
    let text = with("environment:", &format!("environment: {{ BLOB: {fits} }}"));
    assert!(!problems(&text).iter().any(|p| p.path == "service.environment"), "within the budget");

    // The app's statements travel in the permissions boundary (one managed policy, 6144).
    let statement =
        r#"{ Effect: Allow, Action: "s3:GetObject", Resource: "arn:aws:s3:::a-bucket-of-the-app/some/prefix/*" }"#;
    let many = vec![statement; 40].join(", ");
    let text = format!("{EXAMPLE}\niam: {{ task_role_statements: [{many}] }}\n");
    let p = problems(&text).into_iter().find(|p| p.path == "iam.task_role_statements").expect("statements refused");
    assert!(p.message.contains("6144 characters") && p.message.contains("merge statements"), "{}", p.message);
    let few = [statement; 5].join(", ");
    assert!(problems(&format!("{EXAMPLE}\niam: {{ task_role_statements: [{few}] }}\n")).is_empty());
    // A strategy that shifts traffic takes its share of the boundary: what fits a rolling stack
    // may not fit a canary one.
    let n = limits::TASK_ROLE_STATEMENTS_BUDGET / (statement.len() + 2);
    let rolling_only = vec![statement; n - 2].join(", ");
    let text = format!("{EXAMPLE}\niam: {{ task_role_statements: [{rolling_only}] }}\n");
    assert!(!problems(&text).iter().any(|p| p.path == "iam.task_role_statements"), "fits a rolling stack");
    let canary = deploying("strategy: canary");
    let p = problems(&format!("{canary}\niam: {{ task_role_statements: [{rolling_only}] }}\n"))
        .into_iter()
        .find(|p| p.path == "iam.task_role_statements")
        .expect("not with canary");
    assert!(p.message.contains("strategy: canary"), "{}", p.message);

    // Five actions a state; the stack's own topic is one of them.
    let topics: Vec<String> = (1..=5).map(|i| format!("arn:aws:sns:ap-northeast-1:123456789012:t{i}")).collect();
    let text = with(
        "deployment:",
        &format!("deployment: {{ slo_alarms: true, alarm_topic: true, alarm_actions: [{}] }}", topics.join(", ")),
    );
    let p = problems(&text).into_iter().find(|p| p.path == "service.deployment.alarm_actions").expect("refused");
    assert!(p.message.contains("6 actions") && p.message.contains("CloudWatch allows 5"), "{}", p.message);
}

#[test]
fn the_monitors_alerting_rules_are_checked() {
    let text = with(
        "monitor:",
        "monitor:\n  alerting: { failure_threshold: 0, reminder: 10s, maintenance: [\"Sun 02:00-04:00\", \"Funday 1-2\"] }",
    );
    let found = problems(&text);
    let paths: Vec<&str> = found.iter().map(|p| p.path.as_str()).collect();
    assert!(paths.contains(&"monitor.alerting.failure_threshold"), "{found:?}");
    assert!(paths.contains(&"monitor.alerting.reminder"), "{found:?}");
    assert!(paths.contains(&"monitor.alerting.maintenance[1]"), "{found:?}");
    assert!(!paths.contains(&"monitor.alerting.maintenance[0]"), "{found:?}");
}

#[test]
fn the_breakers_failure_threshold_is_one_of_ecss_and_within_its_range() {
    let text = with("deployment:", "deployment: { failure_threshold: { percent: 150 } }");
    let found = problems(&text);
    assert!(found.iter().any(|p| p.path == "service.deployment.failure_threshold.percent"), "{found:?}");
    let unknown = with("deployment:", "deployment: { failure_threshold: { tasks: 2 } }");
    assert!(Stack::from_yaml(&unknown, Path::new("stack.yaml")).is_err());
}

/// The example's deployment line with `fields` added.
fn deploying(fields: &str) -> String {
    with("deployment:", &format!("deployment: {{ circuit_breaker: rollback, timeout: 10m, {fields} }}"))
}

fn paths_of(text: &str) -> Vec<String> {
    problems(text).into_iter().map(|p| p.path).collect()
}

#[test]
fn a_strategy_takes_the_shares_and_times_ecs_takes() {
    for ok in [
        "strategy: canary, canary: { percent: 0.1%, bake: 0m }",
        "strategy: canary, canary: { percent: 100%, bake: 1440m }",
        "strategy: linear, linear: { step: 3%, step_bake: 1m }",
        "strategy: blue_green, blue_green: { bake: 5m }",
        // Defaults as ECS's: 5% for 10 minutes, 10% steps every 6, a 10-minute bake.
        "strategy: canary",
        "strategy: linear",
        "strategy: blue_green",
    ] {
        assert_eq!(paths_of(&deploying(ok)), Vec::<String>::new(), "{ok}");
    }
    let s = Stack::from_yaml(&deploying("strategy: canary"), Path::new("stack.yaml")).expect("valid");
    let d = &s.service.deployment;
    assert_eq!(
        (d.strategy, d.canary.percent.get(), d.canary.bake.get().as_secs()),
        (stack::Strategy::Canary, 5.0, 600)
    );
    assert_eq!((d.gate.share.get(), d.gate.duration.get().as_secs(), d.gate.timeout.get().as_secs()), (10.0, 60, 1800));

    for (bad, path, says) in [
        (
            "strategy: canary, canary: { percent: 0.05% }",
            "service.deployment.canary.percent",
            "multiple of 0.1% from 0.1%",
        ),
        ("strategy: canary, canary: { percent: 12.34% }", "service.deployment.canary.percent", "multiple of 0.1%"),
        ("strategy: canary, canary: { percent: 120% }", "service.deployment.canary.percent", "out of range"),
        ("strategy: canary, canary: { bake: 90s }", "service.deployment.canary.bake", "whole minutes from 0m to 1440m"),
        ("strategy: canary, canary: { bake: 25h }", "service.deployment.canary.bake", "whole minutes"),
        ("strategy: linear, linear: { step: 2.9% }", "service.deployment.linear.step", "from 3% to 100%"),
        ("strategy: linear, linear: { step_bake: 30s }", "service.deployment.linear.step_bake", "whole minutes"),
        ("strategy: blue_green, blue_green: { bake: 1441m }", "service.deployment.blue_green.bake", "whole minutes"),
        ("strategy: canary, gate: { share: 0.5% }", "service.deployment.gate.share", "too little load"),
        ("strategy: canary, gate: { duration: 1s }", "service.deployment.gate.duration", "2–1800s"),
        ("strategy: canary, gate: { duration: 10m, timeout: 12m }", "service.deployment.gate.timeout", "from 15m"),
        ("strategy: canary, gate: { timeout: 15d }", "service.deployment.gate.timeout", "to 20160m"),
    ] {
        let found = problems(&deploying(bad));
        assert!(found.iter().any(|p| p.path == path && p.message.contains(says)), "{bad}: {found:?}");
    }
    // Scaling on one target group's requests would count an idle group after the first swap.
    let per_target = deploying("strategy: blue_green").replace(
        "autoscaling: { min: 2, max: 8, target_cpu_percent: 60 }",
        "autoscaling: { min: 2, max: 8, target_cpu_percent: 60, requests_per_target: 500 }",
    );
    let found = problems(&per_target);
    assert!(
        found.iter().any(|p| p.path == "service.autoscaling.requests_per_target" && p.message.contains("idle group")),
        "{found:?}"
    );
    // The gate sends no API key: a mix of keyed requests only leaves it nothing to send.
    let keyed = format!(
        "{}\nloadtest: {{ endpoints: [ {{ path: /inspect, weight: 1, auth: true }} ] }}\n",
        deploying("strategy: canary")
    );
    let found = problems(&keyed);
    assert!(found.iter().any(|p| p.path == "loadtest.endpoints" && p.message.contains("gate sends none")), "{found:?}");
    let typo = deploying("strategy: canary_release");
    let err = Stack::from_yaml(&typo, Path::new("stack.yaml")).expect_err("unknown strategy").to_string();
    assert!(err.contains("blue_green") && err.contains("canary"), "names the strategies there are: {err}");
    // A rolling stack ignores the other strategies' settings (an overlay may switch back to it).
    assert_eq!(paths_of(&deploying("strategy: rolling, canary: { percent: 0.05% }")), Vec::<String>::new());
}

#[test]
fn a_strategy_needs_room_for_both_revisions_and_one_forwarding_listener() {
    // autoscaling max 8 tasks of 256 MiB: 16 during a bake; one t3.small holds 7.
    let text = deploying("strategy: blue_green").replace("  max: 4\n", "  max: 2\n");
    let found = problems(&text);
    let room = found.iter().find(|p| p.path == "capacity.max").unwrap_or_else(|| panic!("{found:?}"));
    assert!(room.message.contains("16 tasks") && room.message.contains("at least 3"), "{}", room.message);
    assert!(problems(&deploying("strategy: blue_green")).is_empty(), "the example's 4 instances hold 28");
    assert!(problems(&text.replace("strategy: blue_green", "strategy: rolling")).is_empty(), "rolling needs no more");

    let both = deploying("strategy: canary").replace(
        "  # https: { domain: api.example.com }",
        "  https: { certificate_arn: 'arn:aws:acm:ap-northeast-1:123456789012:certificate/abc', redirect_http: false }",
    );
    let found = problems(&both);
    assert!(
        found.iter().any(|p| p.path == "service.deployment.strategy" && p.message.contains("redirect_http: true")),
        "{found:?}"
    );
}
