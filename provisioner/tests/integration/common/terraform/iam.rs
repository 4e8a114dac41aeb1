//! The state's IAM, read from IAM: the execution, instance and task roles, the instance profile,
//! the execution role's inline policy, the instance role's managed policy attachment, and the two
//! `aws_iam_policy_document` data sources their trust policies were written from.

use aws_smithy_types::DateTime;
use aws_smithy_types::date_time::Format;
use provisioner::resources::iam::decode_policy;
use serde_json::{Map, Value, json};

use super::state::{Built, Reading, sorted, tag_map};

pub async fn read(r: &Reading) -> Vec<Built> {
    let mut built = Vec::new();
    for name in ["execution", "instance", "task"] {
        built.push(role(r, name).await);
    }
    for (data, role) in [("ec2_trust", "instance"), ("ecs_tasks_trust", "task")] {
        let got = r.c.iam.get_role().role_name(format!("{}-{role}", r.stack)).send().await.expect("get_role");
        let trust = got.role().and_then(|x| x.assume_role_policy_document()).expect("its trust policy");
        built.push(policy_document(data, &decode_policy(trust)));
    }
    built.push(instance_profile(r).await);
    built.push(execution_policy(r).await);
    built.push(instance_attachment(r).await);
    built
}

/// A time as the provider writes it (RFC 3339, whole seconds).
fn rfc3339(t: &DateTime) -> String {
    DateTime::from_secs(t.secs()).fmt(Format::DateTime).expect("a time")
}

async fn role(r: &Reading, name: &'static str) -> Built {
    let role_name = format!("{}-{name}", r.stack);
    let got = r.c.iam.get_role().role_name(&role_name).send().await.expect("get_role");
    let role = got.role().expect("the role");
    let tags = r.c.iam.list_role_tags().role_name(&role_name).send().await.expect("list_role_tags");
    let trust = decode_policy(role.assume_role_policy_document().expect("its trust policy"));
    let boundary = role.permissions_boundary().and_then(|b| b.permissions_boundary_arn()).unwrap_or_default();
    Built::new(
        "aws_iam_role",
        name,
        json!({
            "arn": role.arn(),
            "assume_role_policy": sorted(trust).to_string(),
            "create_date": rfc3339(role.create_date()),
            "description": role.description().unwrap_or_default(),
            "id": role.role_name(),
            "max_session_duration": role.max_session_duration(),
            "name": role.role_name(),
            "name_prefix": "",
            "path": role.path(),
            "permissions_boundary": boundary,
            "tags_all": tag_map(tags.tags().iter().map(|t| (t.key(), t.value()))),
            "unique_id": role.role_id(),
        }),
    )
}

/// `data.aws_iam_policy_document.NAME` that renders `doc`: its JSON as the provider prints it
/// (Version first; in each statement Sid, Effect, Action, Resource, Principal, Condition), the
/// id it derives from that (CRC-32), and the statement blocks.
fn policy_document(name: &'static str, doc: &Value) -> Built {
    let statements = doc["Statement"].as_array().cloned().unwrap_or_default();
    let mut printed = Map::new();
    printed.insert("Version".into(), doc["Version"].clone());
    let ordered: Vec<Value> = statements
        .iter()
        .map(|s| {
            let mut o = Map::new();
            for key in [
                "Sid",
                "Effect",
                "Action",
                "NotAction",
                "Resource",
                "NotResource",
                "Principal",
                "NotPrincipal",
                "Condition",
            ] {
                if let Some(v) = s.get(key) {
                    o.insert(key.into(), v.clone());
                }
            }
            Value::Object(o)
        })
        .collect();
    printed.insert("Statement".into(), Value::Array(ordered));
    let json = serde_json::to_string_pretty(&Value::Object(printed.clone())).expect("JSON");
    let mut crc = flate2::Crc::new();
    crc.update(json.as_bytes());
    Built::new(
        "aws_iam_policy_document",
        name,
        json!({
            "id": crc.sum().to_string(),
            "json": json,
            "minified_json": Value::Object(printed).to_string(),
            "statement": statements.iter().map(statement_block).collect::<Vec<_>>(),
            "version": doc["Version"],
        }),
    )
}

/// A list of strings from a policy's string-or-list value.
fn strings(v: Option<&Value>) -> Vec<Value> {
    match v {
        Some(Value::Array(items)) => items.clone(),
        Some(Value::String(s)) => vec![Value::from(s.as_str())],
        _ => Vec::new(),
    }
}

/// One `statement` block of an `aws_iam_policy_document`.
fn statement_block(s: &Value) -> Value {
    let principals = |key: &str| -> Vec<Value> {
        s.get(key)
            .and_then(Value::as_object)
            .map(|p| p.iter().map(|(kind, ids)| json!({ "identifiers": strings(Some(ids)), "type": kind })).collect())
            .unwrap_or_default()
    };
    let conditions: Vec<Value> = s
        .get("Condition")
        .and_then(Value::as_object)
        .map(|c| {
            c.iter()
                .flat_map(|(test, vars)| {
                    vars.as_object().into_iter().flatten().map(move |(variable, values)| {
                        json!({ "test": test, "values": strings(Some(values)), "variable": variable })
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    json!({
        "actions": strings(s.get("Action")),
        "condition": conditions,
        "effect": s.get("Effect").cloned().unwrap_or_else(|| "Allow".into()),
        "not_actions": strings(s.get("NotAction")),
        "not_principals": principals("NotPrincipal"),
        "not_resources": strings(s.get("NotResource")),
        "principals": principals("Principal"),
        "resources": strings(s.get("Resource")),
        "sid": s.get("Sid").cloned().unwrap_or_else(|| "".into()),
    })
}

async fn instance_profile(r: &Reading) -> Built {
    let name = format!("{}-instance", r.stack);
    let got = r.c.iam.get_instance_profile().instance_profile_name(&name).send().await.expect("instance profile");
    let p = got.instance_profile().expect("the instance profile");
    Built::new(
        "aws_iam_instance_profile",
        "instance",
        json!({
            "arn": p.arn(),
            "create_date": rfc3339(p.create_date()),
            "id": p.instance_profile_name(),
            "name": p.instance_profile_name(),
            "name_prefix": "",
            "path": p.path(),
            "role": p.roles().first().map(|x| x.role_name()),
            "tags_all": tag_map(p.tags().iter().map(|t| (t.key(), t.value()))),
            "unique_id": p.instance_profile_id(),
        }),
    )
}

/// The execution role's inline policy (the only one it has).
async fn execution_policy(r: &Reading) -> Built {
    let role = format!("{}-execution", r.stack);
    let names = r.c.iam.list_role_policies().role_name(&role).send().await.expect("list_role_policies");
    let name = names.policy_names().first().expect("the execution role's inline policy");
    let got = r.c.iam.get_role_policy().role_name(&role).policy_name(name).send().await.expect("get_role_policy");
    Built::new(
        "aws_iam_role_policy",
        "execution",
        json!({
            "id": format!("{role}:{name}"),
            "name": name,
            "name_prefix": "",
            "policy": decode_policy(got.policy_document()).to_string(),
            "role": role,
        }),
    )
}

/// The instance role's attachment of the ECS container instance policy. Its id is the
/// provider's own (a prefixed unique id: the role, a time, a counter), here from the role's
/// creation time.
async fn instance_attachment(r: &Reading) -> Built {
    let role = format!("{}-instance", r.stack);
    let attached = r.c.iam.list_attached_role_policies().role_name(&role).send().await.expect("attached policies");
    let arn = attached
        .attached_policies()
        .iter()
        .filter_map(|p| p.policy_arn())
        .find(|a| a.ends_with("/AmazonEC2ContainerServiceforEC2Role"))
        .expect("the instance role's AmazonEC2ContainerServiceforEC2Role");
    let got = r.c.iam.get_role().role_name(&role).send().await.expect("get_role");
    let created = got.role().map(|x| x.create_date().secs()).unwrap_or_default();
    let stamp = DateTime::from_secs(created).fmt(Format::DateTime).expect("a time").replace(['-', ':', 'T', 'Z'], "");
    Built::new(
        "aws_iam_role_policy_attachment",
        "instance_ecs",
        json!({
            "id": format!("{role}-{stamp}000000000001"),
            "policy_arn": arn,
            "role": role,
        }),
    )
}
