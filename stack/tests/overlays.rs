//! Overlays: a stack file that `extends` another is merged over it — maps key by key, lists and
//! scalars replaced, `null` removing a key — through chains, refusing cycles and missing bases,
//! and every error points at the file, line and column that set the value.

use std::path::{Path, PathBuf};

use stack::{Stack, ToolSections};

const EXAMPLE: &str = include_str!("../../stack.yaml");

/// A directory of stack files for one test, removed at the end.
struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("konnichiwa-overlay-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        Self(dir)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("dir");
        }
        std::fs::write(&path, text).expect("write");
        path
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn load(path: &Path) -> Stack {
    Stack::load(path).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn maps_merge_lists_and_scalars_replace_null_restores_the_default() {
    let d = Dir::new("merge");
    d.write("stack.yaml", EXAMPLE);
    let prod = d.write(
        "stack.prod.yaml",
        "extends: stack.yaml\n\
         name: konnichiwa-prod\n\
         capacity: { min: 2, max: 8 }\n\
         tags: { env: prod }\n\
         service:\n  environment: { LOG_LEVEL: warn }\n  autoscaling: null\n\
         load_balancer: { access_logs: null }\n",
    );
    let base = load(&d.0.join("stack.yaml"));
    let s = load(&prod);
    assert_eq!(s.name, "konnichiwa-prod");
    // A map merges key by key: what the overlay does not name comes from the base.
    assert_eq!((s.capacity.min, s.capacity.max, s.capacity.desired), (2, 8, base.capacity.desired));
    assert_eq!(s.capacity.instance_type, base.capacity.instance_type);
    assert_eq!(s.tags.get("project").map(String::as_str), Some("konnichiwa"));
    assert_eq!(s.tags.get("env").map(String::as_str), Some("prod"));
    assert_eq!(s.service.environment.get("LOG_LEVEL").map(String::as_str), Some("warn"));
    // null removes the key: the default (none) applies.
    assert!(base.service.autoscaling.is_some() && s.service.autoscaling.is_none());
    assert!(base.load_balancer.access_logs.is_some() && s.load_balancer.access_logs.is_none());
    assert_eq!(s.service.cpu, base.service.cpu);
}

#[test]
fn lists_replace_whole() {
    let d = Dir::new("lists");
    d.write(
        "stack.yaml",
        &format!(
            "{EXAMPLE}\nloadtest:\n  endpoints:\n    - {{ path: /, weight: 6 }}\n    - {{ path: /health, weight: 2 }}\n"
        ),
    );
    let o = d.write(
        "o.yaml",
        "extends: stack.yaml\nloadtest: { endpoints: [ { path: /inspect, weight: 1, auth: true } ] }\n",
    );
    let s = load(&o);
    let paths: Vec<&str> = s.loadtest.as_ref().expect("loadtest").endpoints.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["/inspect"]);
}

#[test]
fn chains_follow_paths_relative_to_the_file_that_names_them() {
    let d = Dir::new("chain");
    d.write("base/stack.yaml", EXAMPLE);
    d.write(
        "envs/staging.yaml",
        "extends: ../base/stack.yaml\nname: konnichiwa-staging\ncapacity: { desired: 1, min: 1 }\n",
    );
    let top = d.write("envs/team/mine.yaml", "extends: ../staging.yaml\nname: konnichiwa-mine\n");
    let s = load(&top);
    assert_eq!(s.name, "konnichiwa-mine");
    assert_eq!(s.capacity.desired, 1, "from the middle of the chain");
    assert_eq!(s.region, "ap-northeast-1", "from the base");
    let doc = stack::Document::load(&top).expect("document");
    assert_eq!(doc.chain.len(), 3);
    assert!(doc.value.get("extends").is_none(), "extends is not part of the stack");
}

/// Files to write (name, text).
type Files = &'static [(&'static str, &'static str)];

/// (files to write, file to load, expected error text: DIR stands for the directory).
const ERRORS: &[(Files, &str, &str)] = &[
    (
        &[("a.yaml", "extends: b.yaml\nname: a\n"), ("b.yaml", "extends: a.yaml\nname: b\n")],
        "a.yaml",
        "DIR/b.yaml:1:1: extends: the stack files extend each other in a circle (DIR/a.yaml → DIR/b.yaml → DIR/a.yaml): one of them must not extend",
    ),
    (
        &[("a.yaml", "name: a\nextends: missing.yaml\n")],
        "a.yaml",
        "DIR/a.yaml:2:1: extends: cannot read DIR/missing.yaml, the file this one extends: No such file or directory (os error 2)",
    ),
    (
        &[("a.yaml", "extends: [b.yaml]\n")],
        "a.yaml",
        "DIR/a.yaml:1:1: extends: extends must name a file, e.g. extends: stack.yaml",
    ),
];

#[test]
fn cycles_missing_bases_and_bad_extends_are_refused_where_they_are_written() {
    for (files, top, expected) in ERRORS {
        let d = Dir::new("errors");
        for (name, text) in *files {
            d.write(name, text);
        }
        let err = Stack::load(d.0.join(top)).expect_err(expected).to_string();
        assert_eq!(err, expected.replace("DIR", &d.0.display().to_string()));
    }
}

#[test]
fn an_error_points_at_the_file_line_and_column_that_set_the_value() {
    let d = Dir::new("places");
    d.write("stack.yaml", &EXAMPLE.replace("  cpu: 256 ", "  cpu: lots "));
    let o = d.write("prod.yaml", "extends: stack.yaml\nname: konnichiwa-prod\n");
    let base_line = EXAMPLE.lines().position(|l| l.starts_with("  cpu: 256 ")).expect("cpu line") + 1;
    let err = Stack::load(&o).expect_err("bad cpu in the base").to_string();
    let base = d.0.join("stack.yaml");
    assert_eq!(
        err,
        format!(
            "{}:{base_line}:8: service.cpu: \"lots\" is not a whole number, 0 or more; write e.g. cpu: 256",
            base.display()
        )
    );

    // Set in the overlay: the overlay's place; the base's value would have been fine.
    d.write("stack.yaml", EXAMPLE);
    let o = d.write(
        "prod.yaml",
        "extends: stack.yaml\nname: konnichiwa-prod\nnetwork:\n  cidr: 10.50.0.0/33\ncapacity: { min: 9 }\n",
    );
    let err = Stack::load(&o).expect_err("bad overlay").to_string();
    let o_s = o.display().to_string();
    assert!(err.contains(&format!("{o_s}:4:9: network.cidr: \"10.50.0.0/33\" is not an IPv4 CIDR block")), "{err}");
    assert!(err.contains(&format!("{o_s}:5:18: capacity.min: min 9 is greater than max 4")), "{err}");
    // A value the overlay did not touch is reported in the base that set it.
    let problems = Stack::load(&o).expect_err("bad").problems();
    let files: Vec<(&str, Option<PathBuf>)> = problems.iter().map(|p| (p.path.as_str(), p.file.clone())).collect();
    assert_eq!(
        files,
        [("network.cidr", None), ("capacity.min", None), ("capacity.desired", Some(d.0.join("stack.yaml")))],
        "{problems:?}"
    );

    // An unknown key in an overlay points at the key.
    let o = d.write("prod.yaml", "extends: stack.yaml\nservice:\n  desried_count: 3\n");
    let err = Stack::load(&o).expect_err("typo").to_string();
    assert!(
        err.starts_with(&format!(
            "{o_s}:3:3: service.desried_count: unknown field `desried_count`: did you mean `desired_count`?"
        )),
        "{err}"
    );
}

#[test]
fn the_tools_read_the_same_merged_stack() {
    let d = Dir::new("tools");
    d.write("stack.yaml", EXAMPLE);
    let o = d.write("prod.yaml", "extends: stack.yaml\nname: konnichiwa-prod\nslo: { requests_per_second: 50 }\nmonitor: { cpu_warning_percent: 50 }\n");
    let t = ToolSections::load(&o).expect("sections");
    assert_eq!(t.slo.requests_per_second, 50.0);
    assert_eq!(t.slo.p95_latency.text(), "300ms", "the rest of the section from the base");
    assert_eq!(t.monitor.cpu_warning_percent, 50.0);
    assert_eq!(t.monitor.cpu_critical_percent, 90.0);
}

#[test]
fn an_overlay_switches_the_strategy_and_keeps_the_bases_settings() {
    let d = Dir::new("strategy");
    d.write(
        "stack.yaml",
        &EXAMPLE
            .replace("slo_alarms: true }", "slo_alarms: true, strategy: canary, canary: { percent: 10%, bake: 5m } }"),
    );
    let base = load(&d.0.join("stack.yaml"));
    assert_eq!(base.service.deployment.strategy, stack::Strategy::Canary);
    let o =
        d.write("o.yaml", "extends: stack.yaml\nservice: { deployment: { strategy: linear, gate: { share: 20% } } }\n");
    let s = load(&o);
    let dep = &s.service.deployment;
    assert_eq!(dep.strategy, stack::Strategy::Linear);
    assert_eq!(
        (dep.canary.percent.get(), dep.gate.share.get()),
        (10.0, 20.0),
        "the base's canary stays, for a switch back"
    );
    assert_eq!(dep.timeout.get(), base.service.deployment.timeout.get());
    let back = d.write("back.yaml", "extends: stack.yaml\nservice: { deployment: { strategy: null } }\n");
    assert_eq!(load(&back).service.deployment.strategy, stack::Strategy::Rolling, "null restores the default");
}

#[test]
fn an_overlay_that_renames_the_stack_does_not_inherit_names_taken_over() {
    let d = Dir::new("adopted");
    let base = EXAMPLE.to_owned() + "\nadopted:\n  cluster: legacy\n  load_balancer: legacy-alb\n";
    d.write("stack.yaml", &base);
    assert_eq!(load(&d.0.join("stack.yaml")).adopted.cluster.as_deref(), Some("legacy"));
    let staging = d.write("stack.staging.yaml", "extends: stack.yaml\nname: konnichiwa-staging\n");
    let e = stack::Stack::load(&staging).expect_err("inherits production's names").to_string();
    assert!(e.contains("adopted.cluster") && e.contains("renames a stack") && e.contains("adopted: null"), "{e}");
    let own = d.write("stack.own.yaml", "extends: stack.yaml\nname: konnichiwa-staging\nadopted: null\n");
    assert!(load(&own).adopted.is_empty(), "null drops them");
    // An overlay that keeps the name, or that takes over names of its own, is fine.
    let prod = d.write("stack.prod.yaml", "extends: stack.yaml\ncapacity: { min: 2 }\n");
    assert_eq!(load(&prod).adopted.load_balancer.as_deref(), Some("legacy-alb"));
    let more = d.write("stack.more.yaml", "extends: stack.own.yaml\nadopted: { service: web }\n");
    assert_eq!(load(&more).adopted.service.as_deref(), Some("web"));
    // The secret's and repository's names a base sets are the base stack's too.
    let named = EXAMPLE.replacen("secret: { recovery_window_days: 7 }", "secret: { name: legacy/api-key }", 1);
    d.write("stack.named.yaml", &named);
    let renamed = d.write("stack.renamed.yaml", "extends: stack.named.yaml\nname: konnichiwa-staging\n");
    let e = stack::Stack::load(&renamed).expect_err("inherits production's secret").to_string();
    assert!(e.contains("secret.name") && e.contains("renames a stack"), "{e}");
    let fixed = d.write(
        "stack.fixed.yaml",
        "extends: stack.named.yaml\nname: konnichiwa-staging\nsecret: { name: konnichiwa-staging/api-key }\n",
    );
    assert_eq!(load(&fixed).secret.name, "konnichiwa-staging/api-key");
}
