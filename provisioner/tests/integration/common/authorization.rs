//! AWS's Service Authorization Reference as a table — for every action, the resource types it
//! takes (with their ARN formats) and the condition keys it understands — read from the copy
//! that parliament (an AWS policy linter, installed by scripts/test) ships as
//! `iam_definition.json`. With it a test can tell a statement that can never match on AWS: a
//! resource of a type the action does not take (`acm:RequestCertificate` on `certificate/*`), or
//! a condition key the action never sends (the key is then missing, and a positive operator on a
//! missing key is false). moto checks neither.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;

use crate::common::policy::{glob, list};

/// One resource type an action takes.
#[derive(Debug, Clone)]
pub struct ResourceType {
    pub name: String,
    /// The ARN format as a glob (`${…}` placeholders become `*`).
    pub arn: String,
    pub keys: Vec<String>,
}

/// What the reference says of one action.
#[derive(Debug, Clone, Default)]
pub struct ActionInfo {
    pub resource_types: Vec<ResourceType>,
    /// Condition keys that hold for the request whatever the resource.
    pub request_keys: Vec<String>,
}

/// Keys every request carries (the global condition context keys the stack's policies use).
const GLOBAL_KEYS: &[&str] = &[
    "aws:RequestedRegion",
    "aws:PrincipalArn",
    "aws:PrincipalAccount",
    "aws:SourceArn",
    "aws:SourceAccount",
    "aws:SecureTransport",
    "aws:CalledVia",
    "aws:ViaAWSService",
];

pub struct Reference {
    actions: BTreeMap<String, ActionInfo>,
    /// Each service key's type (`String`, `ARN`, `ArrayOfString`, …), by the key as the
    /// reference writes it (lower case, `${TagKey}` placeholders kept).
    key_types: BTreeMap<String, String>,
}

/// Actions AWS added after parliament's copy was made, as AWS's Service Authorization Reference
/// ("Actions, resources, and condition keys for Amazon Elastic Container Service") lists them:
/// ContinueServiceDeployment and StopServiceDeployment act on a service deployment
/// (`service-deployment*`, keys ecs:cluster, ecs:service, aws:ResourceTag/${TagKey}), as
/// DescribeServiceDeployments does in the copy. Added only where the copy lacks them.
fn newer_than_the_copy(actions: &mut BTreeMap<String, ActionInfo>) {
    let Some(describe) = actions.get("ecs:describeservicedeployments").cloned() else { return };
    let deployment: Vec<ResourceType> =
        describe.resource_types.into_iter().filter(|r| r.name == "service-deployment").collect();
    for action in ["ecs:continueservicedeployment", "ecs:stopservicedeployment"] {
        actions
            .entry(action.to_owned())
            .or_insert_with(|| ActionInfo { resource_types: deployment.clone(), request_keys: Vec::new() });
    }
}

/// Where scripts/test put parliament's copy of the reference.
fn path() -> PathBuf {
    if let Ok(p) = std::env::var("KONNICHIWA_IAM_DEFINITION") {
        return PathBuf::from(p);
    }
    let tools = std::env::var("KONNICHIWA_TOOLS").unwrap_or_else(|_| "/var/tmp/konnichiwa-tools".into());
    let lib = PathBuf::from(tools).join("lib");
    std::fs::read_dir(&lib)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("site-packages/parliament/iam_definition.json"))
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            panic!(
                "AWS's service authorization reference (parliament's iam_definition.json) is not installed: run the \
                 suite with scripts/test, which installs parliament, or `pip install parliament` and set \
                 KONNICHIWA_IAM_DEFINITION to its iam_definition.json"
            )
        })
}

impl Reference {
    pub fn load() -> Self {
        let path = path();
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let services: Value = serde_json::from_str(&text).expect("iam_definition.json");
        let mut actions = BTreeMap::new();
        let mut key_types = BTreeMap::new();
        for service in services.as_array().expect("a list of services") {
            let prefix = service["prefix"].as_str().unwrap_or_default();
            for c in service["conditions"].as_array().into_iter().flatten() {
                let (key, kind) = (c["condition"].as_str().unwrap_or_default(), c["type"].as_str().unwrap_or_default());
                key_types.insert(key.to_ascii_lowercase(), kind.to_owned());
            }
            let formats: BTreeMap<&str, (&str, Vec<String>)> = service["resources"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| {
                    let keys = list(&r["condition_keys"]).into_iter().map(str::to_owned).collect();
                    (r["resource"].as_str().unwrap_or_default(), (r["arn"].as_str().unwrap_or_default(), keys))
                })
                .collect();
            for privilege in service["privileges"].as_array().into_iter().flatten() {
                let name = format!("{prefix}:{}", privilege["privilege"].as_str().unwrap_or_default());
                let mut info = ActionInfo::default();
                for rt in privilege["resource_types"].as_array().into_iter().flatten() {
                    let keys: Vec<String> = list(&rt["condition_keys"]).into_iter().map(str::to_owned).collect();
                    let kind = rt["resource_type"].as_str().unwrap_or_default().trim_end_matches('*');
                    if kind.is_empty() {
                        info.request_keys.extend(keys);
                        continue;
                    }
                    let (format, type_keys) = formats.get(kind).cloned().unwrap_or_default();
                    info.resource_types.push(ResourceType {
                        name: kind.to_owned(),
                        arn: placeholders_to_globs(format),
                        keys: keys.into_iter().chain(type_keys).collect(),
                    });
                }
                actions.insert(name.to_ascii_lowercase(), info);
            }
        }
        newer_than_the_copy(&mut actions);
        Self { actions, key_types }
    }

    /// The type the reference gives `key`, if it gives one.
    pub fn key_type(&self, key: &str) -> Option<&str> {
        self.key_types.iter().find(|(k, _)| key_matches(k, key)).map(|(_, t)| t.as_str())
    }

    pub fn action(&self, action: &str) -> Option<&ActionInfo> {
        self.actions.get(&action.to_ascii_lowercase())
    }

    /// Why `statement` can never do what it says, on AWS, for any of its actions: each problem
    /// names the action and the resource or condition key at fault. Empty when none.
    pub fn problems(&self, statement: &Value) -> Vec<String> {
        let sid = statement["Sid"].as_str().unwrap_or("(no Sid)");
        let resources = list(&statement["Resource"]);
        let keys = condition_keys(statement);
        let mut problems = self.operator_problems(sid, statement);
        for action in list(&statement["Action"]) {
            let Some(info) = self.action(action) else {
                problems.push(format!("{sid}: {action} is not an action AWS knows"));
                continue;
            };
            let fits: Vec<&ResourceType> =
                info.resource_types.iter().filter(|t| resources.iter().any(|r| *r == "*" || fits(&t.arn, r))).collect();
            let star = resources.contains(&"*");
            if info.resource_types.is_empty() && !star {
                problems
                    .push(format!("{sid}: {action} takes no resource, so only \"*\" matches it, not {resources:?}"));
            } else if !info.resource_types.is_empty() && fits.is_empty() {
                let types: Vec<&str> = info.resource_types.iter().map(|t| t.name.as_str()).collect();
                problems.push(format!("{sid}: {action} takes {types:?}, none of which is {resources:?}"));
            }
            for key in &keys {
                let known = GLOBAL_KEYS.iter().any(|g| g.eq_ignore_ascii_case(key))
                    || info.request_keys.iter().any(|k| key_matches(k, key))
                    || fits.iter().any(|t| t.keys.iter().any(|k| key_matches(k, key)));
                if !known {
                    problems.push(format!("{sid}: {action} never carries the condition key {key}"));
                }
            }
        }
        problems
    }
}

impl Reference {
    /// A key of several values (`ArrayOf…`) needs `ForAllValues:` or `ForAnyValue:` (or `Null`):
    /// a plain operator on it matches if any one value does, so a request naming the stack's
    /// resource and another passes. A set operator on a key of one value is a mistake too.
    fn operator_problems(&self, sid: &str, statement: &Value) -> Vec<String> {
        let mut problems = Vec::new();
        for (op, keys) in statement["Condition"].as_object().into_iter().flatten() {
            let set = op.starts_with("ForAllValues:") || op.starts_with("ForAnyValue:");
            for key in keys.as_object().into_iter().flat_map(|k| k.keys()) {
                let Some(kind) = self.key_type(key) else { continue };
                let multi = kind.starts_with("ArrayOf");
                if multi && !set && op != "Null" {
                    problems.push(format!(
                        "{sid}: {key} has several values ({kind}): {op} on it holds if any one does; use \
                         ForAllValues:{op}"
                    ));
                } else if !multi && set {
                    problems.push(format!("{sid}: {key} has one value ({kind}): {op} is meant for keys of several"));
                }
            }
        }
        problems
    }
}

/// `${Partition}`-style placeholders as `*`.
fn placeholders_to_globs(format: &str) -> String {
    let mut out = String::new();
    let mut rest = format;
    while let Some(at) = rest.find("${") {
        out.push_str(&rest[..at]);
        out.push('*');
        rest = rest[at..].find('}').map_or("", |end| &rest[at + end + 1..]);
    }
    out.push_str(rest);
    out
}

/// Whether a statement's resource (itself possibly a pattern) can name a resource of the type
/// whose ARN format is `format`: some ARN matches both patterns, component by component (a
/// partition, service, region or account never holds a `:`; the resource part may).
fn fits(format: &str, resource: &str) -> bool {
    let chars = |s: &str| s.chars().collect::<Vec<_>>();
    if resource == "*" {
        return true;
    }
    let (f, r): (Vec<&str>, Vec<&str>) = (format.splitn(6, ':').collect(), resource.splitn(6, ':').collect());
    if f.len() != 6 || r.len() != 6 {
        return overlap(&chars(format), &chars(resource));
    }
    f.iter().zip(&r).enumerate().all(|(i, (f, r))| {
        // A component of the resource that is only `*` matches whatever the format holds there.
        (i < 5 && *r == "*") || overlap(&chars(f), &chars(r))
    })
}

/// True when some string matches both glob patterns (`*` any run, `?` one character).
fn overlap(a: &[char], b: &[char]) -> bool {
    let mut memo = vec![vec![None; b.len() + 1]; a.len() + 1];
    fn go(a: &[char], b: &[char], i: usize, j: usize, memo: &mut Vec<Vec<Option<bool>>>) -> bool {
        if let Some(known) = memo[i][j] {
            return known;
        }
        let result = match (a.get(i), b.get(j)) {
            (None, None) => true,
            (Some('*'), _) => go(a, b, i + 1, j, memo) || (j < b.len() && go(a, b, i, j + 1, memo)),
            (_, Some('*')) => go(a, b, i, j + 1, memo) || (i < a.len() && go(a, b, i + 1, j, memo)),
            (Some(x), Some(y)) => (*x == '?' || *y == '?' || x == y) && go(a, b, i + 1, j + 1, memo),
            _ => false,
        };
        memo[i][j] = Some(result);
        result
    }
    go(a, b, 0, 0, &mut memo)
}

/// A reference key (`aws:RequestTag/${TagKey}`) matches a policy's key (`aws:RequestTag/x`).
fn key_matches(reference: &str, key: &str) -> bool {
    glob(&placeholders_to_globs(&reference.to_ascii_lowercase()), &key.to_ascii_lowercase())
}

fn condition_keys(statement: &Value) -> Vec<String> {
    statement["Condition"]
        .as_object()
        .into_iter()
        .flat_map(|ops| ops.values())
        .flat_map(|keys| keys.as_object().into_iter().flat_map(|k| k.keys().cloned()))
        .collect()
}

#[test]
fn patterns_overlap_when_one_string_matches_both() {
    assert!(fits(
        "arn:*:elasticloadbalancing:*:*:listener/app/*/*/*",
        "arn:aws:elasticloadbalancing:r:1:listener/app/k-alb/*"
    ));
    assert!(fits("arn:*:logs:*:*:log-group:*:log-stream:*", "arn:aws:logs:r:1:log-group:/ecs/k:*"));
    assert!(!fits("arn:*:logs:*:*:log-group:*:log-stream:*", "arn:aws:logs:r:1:log-group:/ecs/k"));
    assert!(fits("arn:*:acm:*:*:certificate/*", "*"));
    assert!(!fits("arn:*:acm:*:*:certificate/*", "arn:aws:acm:r:1:key/*"), "another resource type");
    assert!(fits("arn:*:ecs:*:*:task-definition/*:*", "arn:aws:ecs:r:1:task-definition/k:*"));
    assert!(!fits("arn:*:ecs:*:*:task-definition/*:*", "arn:aws:ecs:r:1:task-definition/k"));
}

#[test]
fn placeholders_become_globs() {
    assert_eq!(
        placeholders_to_globs("arn:${Partition}:ecs:${Region}:${Account}:task-definition/${Family}:${Revision}"),
        "arn:*:ecs:*:*:task-definition/*:*"
    );
    assert!(key_matches("aws:RequestTag/${TagKey}", "aws:RequestTag/konnichiwa:stack"));
    assert!(!key_matches("aws:RequestTag/${TagKey}", "aws:ResourceTag/konnichiwa:stack"));
}
