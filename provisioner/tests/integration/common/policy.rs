//! A small evaluator of IAM identity policies, for what moto cannot check: whether a request —
//! action, resource ARN, condition context — is allowed, by a policy alone or within a
//! permissions boundary (both must allow; an explicit deny in either wins). It knows what the
//! stack's policies use: `Allow` and `Deny`; `*`/`?` wildcards in actions and resources; the
//! operators StringEquals, StringNotEquals, StringLike, StringNotLike, ArnEquals, ArnLike,
//! ArnNotEquals, ArnNotLike, Bool, Null and the Numeric comparisons, their `…IfExists` forms (a missing key passes), and
//! `ForAllValues:`/`ForAnyValue:` for keys with several values (a key given several times in the
//! context). A missing key fails a positive operator and passes a negated one, as in AWS.
//! `authorization.rs` says whether a statement can match at all.
#![allow(dead_code)]

use serde_json::Value;

/// One request to judge.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub action: &'a str,
    pub resource: &'a str,
    pub context: &'a [(&'a str, &'a str)],
}

pub fn list(v: &Value) -> Vec<&str> {
    match v {
        Value::String(s) => vec![s.as_str()],
        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// `*` matches any run of characters, `?` exactly one; case-sensitive (IAM actions are matched
/// case-insensitively: callers lower-case both).
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// Whether one operator holds for one key, given the context's values for it.
fn operator_holds(op: &str, expected: &[&str], values: &[&str]) -> bool {
    let (set, op) = match (op.strip_prefix("ForAllValues:"), op.strip_prefix("ForAnyValue:")) {
        (Some(op), _) => (Some(true), op),
        (_, Some(op)) => (Some(false), op),
        _ => (None, op),
    };
    let (if_exists, op) = match op.strip_suffix("IfExists") {
        Some(op) => (true, op),
        None => (false, op),
    };
    if op == "Null" {
        let absent = values.is_empty();
        return expected.iter().all(|e| (*e == "true") == absent);
    }
    if values.is_empty() && (if_exists || set == Some(true)) {
        return true;
    }
    let (negated, base) = match op {
        "StringNotEquals" => (true, "StringEquals"),
        "StringNotLike" => (true, "StringLike"),
        "ArnNotEquals" => (true, "ArnEquals"),
        "ArnNotLike" => (true, "ArnLike"),
        "NumericNotEquals" => (true, "NumericEquals"),
        other => (false, other),
    };
    let number = |v: &str| v.parse::<f64>().ok();
    let compare = |actual: &str, holds: fn(f64, f64) -> bool| {
        number(actual).is_some_and(|a| expected.iter().filter_map(|e| number(e)).any(|e| holds(a, e)))
    };
    let one = |actual: &str| match base {
        "StringEquals" | "ArnEquals" => expected.contains(&actual),
        "StringLike" | "ArnLike" => expected.iter().any(|e| glob(e, actual)),
        "Bool" => expected.iter().any(|e| e.eq_ignore_ascii_case(actual)),
        "NumericEquals" => compare(actual, |a, e| a == e),
        "NumericLessThan" => compare(actual, |a, e| a < e),
        "NumericLessThanEquals" => compare(actual, |a, e| a <= e),
        "NumericGreaterThan" => compare(actual, |a, e| a > e),
        "NumericGreaterThanEquals" => compare(actual, |a, e| a >= e),
        other => panic!("the evaluator does not know the operator {other}"),
    };
    match (set, negated) {
        (Some(true), false) => values.iter().all(|v| one(v)),
        (Some(true), true) => values.iter().all(|v| !one(v)),
        (Some(false), false) => values.iter().any(|v| one(v)),
        (Some(false), true) => values.iter().any(|v| !one(v)),
        (None, false) => values.first().is_some_and(|v| one(v)),
        // A missing key passes a negated operator.
        (None, true) => values.first().is_none_or(|v| !one(v)),
    }
}

fn condition_holds(condition: &Value, context: &[(&str, &str)]) -> bool {
    let Some(ops) = condition.as_object() else { return true };
    ops.iter().all(|(op, keys)| {
        keys.as_object().is_some_and(|keys| {
            keys.iter().all(|(key, expected)| {
                let values: Vec<&str> =
                    context.iter().filter(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| *v).collect();
                operator_holds(op, &list(expected), &values)
            })
        })
    })
}

fn matches(statement: &Value, r: &Request) -> bool {
    let action = r.action.to_ascii_lowercase();
    list(&statement["Action"]).iter().any(|a| glob(&a.to_ascii_lowercase(), &action))
        && list(&statement["Resource"]).iter().any(|p| glob(p, r.resource))
        && statement.get("Condition").is_none_or(|c| condition_holds(c, r.context))
}

/// True when some statement allows the request and none denies it.
pub fn allows(policy: &Value, r: &Request) -> bool {
    let statements = policy["Statement"].as_array().cloned().unwrap_or_default();
    let denied = statements.iter().any(|s| s["Effect"] == "Deny" && matches(s, r));
    !denied && statements.iter().any(|s| s["Effect"] == "Allow" && matches(s, r))
}

/// What a role with `policies` and the permissions boundary `boundary` may do: some policy
/// allows it, none denies it, and the boundary allows it too.
pub fn allows_within(policies: &[&Value], boundary: &Value, r: &Request) -> bool {
    let denied = policies
        .iter()
        .any(|p| p["Statement"].as_array().into_iter().flatten().any(|s| s["Effect"] == "Deny" && matches(s, r)));
    !denied && policies.iter().any(|p| allows(p, r)) && allows(boundary, r)
}

/// A request that names several resources (RunInstances: the template, subnet, security group,
/// image…) is allowed only when every one of them is.
pub fn allows_each(policy: &Value, action: &str, resources: &[(&str, &[(&str, &str)])]) -> bool {
    resources.iter().all(|(resource, context)| allows(policy, &Request { action, resource, context }))
}

/// Every action the policy grants (lower-cased).
pub fn actions(policy: &Value) -> Vec<String> {
    let mut all: Vec<String> = policy["Statement"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["Effect"] == "Allow")
        .flat_map(|s| list(&s["Action"]).into_iter().map(str::to_ascii_lowercase).collect::<Vec<_>>())
        .collect();
    all.sort();
    all.dedup();
    all
}

/// The IAM action an `api_calls.by_operation` key ("EC2:CreateVpc") is authorized by.
pub fn iam_action(operation: &str) -> String {
    let (service, op) = operation.split_once(':').unwrap_or(("", operation));
    let prefix = match service {
        "EC2" => "ec2",
        "IAM" => "iam",
        "ECR" => "ecr",
        "ECS" => "ecs",
        "Secrets Manager" => "secretsmanager",
        "CloudWatch Logs" => "logs",
        "Auto Scaling" => "autoscaling",
        "Elastic Load Balancing v2" => "elasticloadbalancing",
        "SSM" => "ssm",
        "Application Auto Scaling" => "application-autoscaling",
        "STS" => "sts",
        "Route 53" => "route53",
        "ACM" => "acm",
        "CloudWatch" => "cloudwatch",
        "Resource Groups Tagging API" => "tag",
        "SNS" => "sns",
        "Service Quotas" => "servicequotas",
        "Pricing" => "pricing",
        "S3" => return s3_action(op),
        other => panic!("no IAM prefix known for the service {other:?}"),
    };
    format!("{prefix}:{op}")
}

/// The IAM action AWS authorizes an S3 operation by: the table the emulator uses too
/// (scripts/s3-iam-actions.json); an operation it does not list, by its own name.
pub fn s3_action(op: &str) -> String {
    static TABLE: std::sync::OnceLock<serde_json::Map<String, Value>> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let text = include_str!("../../../../scripts/s3-iam-actions.json");
        serde_json::from_str(text).expect("scripts/s3-iam-actions.json is a JSON object")
    });
    table.get(op).and_then(Value::as_str).map_or_else(|| format!("s3:{op}"), str::to_owned)
}
