//! stack.yaml's `loadtest.scenario` and a scenario file: a good scenario reads back as written,
//! every bad field is refused at its line and column with the fix, and a scenario beside
//! `endpoints` is refused.

use std::path::Path;

use stack::{Stack, scenario_from_yaml};

const EXAMPLE: &str = include_str!("../../stack.yaml");

const GOOD: &str = r#"
- name: create order
  method: post
  path: /orders
  headers:
    Authorization: Bearer ${API_KEY}
    Content-Type: application/json
  body: '{"item": 1}'
  weight: 2
  think_time: 1s..3s
  check:
    status: [201, 2xx]
    body_contains: '"id"'
- path: /health
  check: { status: 200 }
"#;

fn problems(text: &str) -> Vec<String> {
    match scenario_from_yaml(text, Path::new("scenario.yaml")) {
        Ok(_) => Vec::new(),
        Err(e) => e.problems().iter().map(|p| format!("{}: {p}", p.path)).collect(),
    }
}

#[test]
fn a_scenario_file_reads_back_as_written() {
    let requests = scenario_from_yaml(GOOD, Path::new("scenario.yaml")).expect("valid");
    assert_eq!(requests.len(), 2);
    let order = &requests[0];
    assert_eq!((order.name(), order.method.as_str(), order.weight), ("create order".to_owned(), "post", 2));
    assert_eq!(order.headers["Authorization"], "Bearer ${API_KEY}");
    assert_eq!(order.think_time.as_deref(), Some("1s..3s"));
    let status: Vec<(u16, u16)> =
        order.check.status.as_ref().expect("status").patterns().iter().map(|p| p.range().expect("pattern")).collect();
    assert_eq!(status, [(201, 201), (200, 299)]);
    assert_eq!(order.check.body_contains.as_deref(), Some("\"id\""));
    let health = &requests[1];
    assert_eq!((health.name(), health.weight, health.body.as_ref()), ("GET /health".to_owned(), 1, None));
    // The worker's form: JSON, which reads back the same.
    let json = serde_json::to_string(&requests).expect("json");
    let back: Vec<stack::Request> = serde_json::from_str(&json).expect("reads back");
    assert_eq!(back, requests);
}

#[test]
fn every_bad_field_is_refused_at_its_place_with_the_fix() {
    let table: &[(&str, &str, &str)] = &[
        ("- { method: FETCH, path: / }", "[0].method", "use one of GET, HEAD, POST"),
        ("- { path: orders }", "[0].path", "must start with /"),
        ("- { path: /a b }", "[0].path", "write a space as %20"),
        ("- { path: /, weight: 0 }", "[0].weight", "never sends"),
        ("- { path: /, think_time: 3s..1s }", "[0].think_time", "from low to high"),
        ("- { path: /, think_time: soon }", "[0].think_time", "not a duration"),
        ("- { path: /, headers: { Host: x } }", "[0].headers.Host", "the load generator's to write"),
        ("- { path: /, headers: { 'Bad Name': x } }", "[0].headers.Bad Name", "not a header name"),
        ("- { path: /, headers: { X-Token: '${TOKEN}' } }", "[0].headers.X-Token", "only ${API_KEY} is replaced"),
        ("- { path: /, body: 'key=${API_KEY}' }", "[0].body", "replaced in headers only"),
        ("- { path: /, check: { status: 700 } }", "[0].check.status", "a code from 100 to 599"),
        ("- { path: /, check: { status: 6xx } }", "[0].check.status", "or a class (e.g. 2xx)"),
        ("- { path: /, check: { status: [] } }", "[0].check.status", "passes no answer"),
        ("- { path: /, check: { body_contains: '' } }", "[0].check.body_contains", "in every body"),
        ("- { method: HEAD, path: /, check: { body_contains: x } }", "[0].check.body_contains", "has no body"),
        ("- { path: / }\n- { path: / }", "[1]", "\"GET /\" is also request [0]'s name"),
        ("- { name: a, path: / }\n- { name: a, path: /x }", "[1].name", "give each a name of its own"),
        ("- { name: ' ', path: / }", "[0].name", "drop it to use METHOD path"),
        ("- { path: /, checks: {} }", "[0].checks", "did you mean `check`?"),
    ];
    for (text, path, fragment) in table {
        let found = problems(text);
        assert!(
            found.iter().any(|p| p.starts_with(&format!("{path}: ")) && p.contains(fragment)),
            "{text}: expected {path} with {fragment:?}, got {found:?}"
        );
    }
    assert_eq!(problems("- { path: /, weight: 0 }\n- { path: x }").len(), 2, "all problems at once");
    let placed = problems("- path: /\n- path: /\n  weight: 0\n");
    assert!(placed.iter().any(|p| p.contains("3:11")), "line and column of the value: {placed:?}");
    for empty in ["", "# nothing\n", "[]"] {
        let e = scenario_from_yaml(empty, Path::new("scenario.yaml")).expect_err("empty").to_string();
        assert!(e.starts_with("scenario.yaml:") && e.contains("path: /"), "{e}");
    }
}

#[test]
fn stack_yaml_takes_a_scenario_but_not_beside_endpoints() {
    let with_scenario =
        format!("{EXAMPLE}\nloadtest:\n  scenario:\n    - path: /\n    - {{ method: POST, path: /x, weight: 0 }}\n");
    let e = Stack::from_yaml(&with_scenario, Path::new("stack.yaml")).expect_err("weight 0").to_string();
    assert!(e.contains("loadtest.scenario[1].weight: a weight of 0 never sends"), "{e}");
    let both = format!("{EXAMPLE}\nloadtest:\n  endpoints: [ {{ path: / }} ]\n  scenario:\n    - path: /\n");
    let e = Stack::from_yaml(&both, Path::new("stack.yaml")).expect_err("both").to_string();
    assert!(e.contains("loadtest.scenario: give either endpoints (weighted GET paths) or scenario"), "{e}");
    let good = format!("{EXAMPLE}\nloadtest:\n  scenario:\n    - {{ method: POST, path: /x, body: hi }}\n");
    let s = Stack::from_yaml(&good, Path::new("stack.yaml")).expect("valid");
    assert_eq!(s.loadtest.expect("loadtest").scenario[0].body.as_deref(), Some("hi"));
}

#[test]
fn the_readmes_scenario_example_is_valid() {
    let readme = include_str!("../../README.md");
    let section = readme.split("### Load that looks like users").nth(1).expect("README has the scenario section");
    let block = section.split("```yaml\n").nth(1).and_then(|b| b.split("```").next()).expect("a yaml block");
    let s = Stack::from_yaml(&format!("{EXAMPLE}\n{block}"), Path::new("stack.yaml")).expect("the example is valid");
    let scenario = s.loadtest.expect("loadtest").scenario;
    let names: Vec<String> = scenario.iter().map(stack::Request::name).collect();
    assert_eq!(names, ["GET /", "create order"]);
}
