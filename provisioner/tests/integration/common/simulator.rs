//! A model of IAM's policy simulator (SimulatePrincipalPolicy), which moto lacks, answering as AWS
//! does (the IAM API Reference, SimulatePrincipalPolicy and EvaluationResult): each action judged
//! on each resource named (`*` when none is) with only the context given; a statement whose
//! condition names a key the context lacks cannot allow, and its keys come back in
//! `MissingContextValues` beside `implicitDeny`; an organization's SCP, when the model has one,
//! is judged first and reported in `OrganizationsDecisionDetail`. With resources named, one
//! result per action carries a result per resource (`ResourceSpecificResults`). Judging uses the
//! team's evaluator (`policy`).
#![allow(dead_code)]

use serde_json::Value;

use super::policy::{Request, allows, glob, list};

/// The simulator of one principal: its policies as one document, and the SCP over its account.
#[derive(Debug, Clone)]
pub struct Simulator {
    pub policy: Value,
    pub scp: Option<Value>,
}

/// A form-encoded request's `key=value` pairs, decoded.
fn form(body: &str) -> Vec<(String, String)> {
    let decode = |s: &str| {
        let bytes = s.replace('+', " ").into_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%'
                && i + 2 < bytes.len()
                && let Ok(b) = u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"), 16)
            {
                out.push(b);
                i += 3;
                continue;
            }
            out.push(bytes[i]);
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    body.split('&').filter_map(|kv| kv.split_once('=')).map(|(k, v)| (decode(k), decode(v))).collect()
}

/// The members of a list parameter (`Name.member.N`), in order.
fn members(pairs: &[(String, String)], name: &str) -> Vec<String> {
    let prefix = format!("{name}.member.");
    let mut found: Vec<(usize, String)> =
        pairs.iter().filter_map(|(k, v)| Some((k.strip_prefix(&prefix)?.parse().ok()?, v.clone()))).collect();
    found.sort();
    found.into_iter().map(|(_, v)| v).collect()
}

/// The context entries: (key, value) once per value.
fn context(pairs: &[(String, String)]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for n in 1.. {
        let entry = format!("ContextEntries.member.{n}");
        let Some((_, key)) = pairs.iter().find(|(k, _)| *k == format!("{entry}.ContextKeyName")) else { break };
        for value in members(pairs, &format!("{entry}.ContextKeyValues")) {
            out.push((key.clone(), value));
        }
    }
    out
}

/// The condition keys a statement needs that `context` lacks (keys of positive operators that
/// are not `…IfExists`: those a missing key fails).
fn missing_keys(statement: &Value, context: &[(&str, &str)]) -> Vec<String> {
    let mut missing = Vec::new();
    for (operator, keys) in statement["Condition"].as_object().into_iter().flatten() {
        let negated =
            operator.contains("Not") || operator.ends_with("IfExists") || operator.starts_with("ForAllValues:");
        if negated || operator == "Null" {
            continue;
        }
        for key in keys.as_object().into_iter().flatten().map(|(k, _)| k) {
            if !context.iter().any(|(k, _)| k.eq_ignore_ascii_case(key)) && !missing.contains(key) {
                missing.push(key.clone());
            }
        }
    }
    missing
}

/// One (action, resource) judged: the decision and the keys that were missing.
fn judge(policy: &Value, action: &str, resource: &str, context: &[(&str, &str)]) -> (&'static str, Vec<String>) {
    let r = Request { action, resource, context };
    let statements = policy["Statement"].as_array().cloned().unwrap_or_default();
    let applies = |s: &Value| {
        list(&s["Action"]).iter().any(|a| glob(&a.to_ascii_lowercase(), &action.to_ascii_lowercase()))
            && list(&s["Resource"]).iter().any(|p| glob(p, resource))
    };
    let denied = statements.iter().any(|s| s["Effect"] == "Deny" && allows(&single(s, "Allow"), &r));
    if denied {
        return ("explicitDeny", Vec::new());
    }
    if allows(policy, &r) {
        return ("allowed", Vec::new());
    }
    let mut missing = Vec::new();
    for s in statements.iter().filter(|s| s["Effect"] == "Allow" && applies(s)) {
        for key in missing_keys(s, context) {
            if !missing.contains(&key) {
                missing.push(key);
            }
        }
    }
    ("implicitDeny", missing)
}

/// `statement` alone in a policy, with its effect replaced (to ask whether it matches).
fn single(statement: &Value, effect: &str) -> Value {
    let mut s = statement.clone();
    s["Effect"] = effect.into();
    serde_json::json!({ "Statement": [s] })
}

fn missing_xml(keys: &[String]) -> String {
    if keys.is_empty() {
        return String::new();
    }
    let members: String = keys.iter().map(|k| format!("<member>{k}</member>")).collect();
    format!("<MissingContextValues>{members}</MissingContextValues>")
}

impl Simulator {
    /// AWS's answer to the SimulatePrincipalPolicy request `body`.
    pub fn answer(&self, body: &str) -> String {
        let pairs = form(body);
        let actions = members(&pairs, "ActionNames");
        let resources = members(&pairs, "ResourceArns");
        let named = !resources.is_empty();
        let resources = if named { resources } else { vec!["*".to_owned()] };
        let owned = context(&pairs);
        let context: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let mut results = String::new();
        for action in &actions {
            let by_scp =
                self.scp.as_ref().map(|scp| resources.iter().all(|r| judge(scp, action, r, &context).0 == "allowed"));
            let judged: Vec<(&str, (&str, Vec<String>))> = resources
                .iter()
                .map(|r| {
                    let (decision, missing) = judge(&self.policy, action, r, &context);
                    let decision = if by_scp == Some(false) { "explicitDeny" } else { decision };
                    (r.as_str(), (decision, missing))
                })
                .collect();
            let overall = judged.iter().map(|(_, (d, _))| *d).find(|d| *d != "allowed").unwrap_or("allowed");
            let org = by_scp.map_or(String::new(), |allowed| {
                format!("<OrganizationsDecisionDetail><AllowedByOrganizations>{allowed}</AllowedByOrganizations></OrganizationsDecisionDetail>")
            });
            let detail = if named {
                let per: String = judged
                    .iter()
                    .map(|(r, (d, m))| {
                        format!(
                            "<member><EvalResourceName>{r}</EvalResourceName><EvalResourceDecision>{d}</EvalResourceDecision>{}</member>",
                            missing_xml(m)
                        )
                    })
                    .collect();
                format!(
                    "<EvalResourceName>*</EvalResourceName><ResourceSpecificResults>{per}</ResourceSpecificResults>"
                )
            } else {
                format!("<EvalResourceName>*</EvalResourceName>{}", missing_xml(&judged[0].1.1))
            };
            results.push_str(&format!(
                "<member><EvalActionName>{action}</EvalActionName><EvalDecision>{overall}</EvalDecision>{detail}{org}</member>"
            ));
        }
        format!(
            "<SimulatePrincipalPolicyResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><SimulatePrincipalPolicyResult>\
             <IsTruncated>false</IsTruncated><EvaluationResults>{results}</EvaluationResults></SimulatePrincipalPolicyResult>\
             <ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></SimulatePrincipalPolicyResponse>"
        )
    }
}

#[test]
fn the_model_answers_as_the_simulator_does() {
    let policy = serde_json::json!({"Statement": [
        {"Effect": "Allow", "Action": ["ec2:CreateVpc"], "Resource": "*",
         "Condition": {"StringEquals": {"aws:RequestedRegion": "ap-northeast-1", "aws:RequestTag/k": "s"}}},
        {"Effect": "Allow", "Action": ["ec2:DeleteVpc"], "Resource": "arn:aws:ec2:r:1:vpc/*"},
    ]});
    let sim = Simulator { policy, scp: None };
    // No context: implicitDeny, with both keys.
    let bare = sim.answer("Action=SimulatePrincipalPolicy&ActionNames.member.1=ec2%3ACreateVpc");
    assert!(bare.contains("<EvalDecision>implicitDeny</EvalDecision>"), "{bare}");
    assert!(bare.contains("<member>aws:RequestedRegion</member><member>aws:RequestTag/k</member>"), "{bare}");
    // The context the request carries: allowed.
    let given = "Action=SimulatePrincipalPolicy&ActionNames.member.1=ec2%3ACreateVpc\
                 &ContextEntries.member.1.ContextKeyName=aws%3ARequestedRegion&ContextEntries.member.1.ContextKeyValues.member.1=ap-northeast-1\
                 &ContextEntries.member.2.ContextKeyName=aws%3ARequestTag%2Fk&ContextEntries.member.2.ContextKeyValues.member.1=s";
    assert!(sim.answer(given).contains("<EvalDecision>allowed</EvalDecision>"));
    // A resource named: one result per resource inside.
    let named = sim.answer(
        "ActionNames.member.1=ec2%3ADeleteVpc&ResourceArns.member.1=arn%3Aaws%3Aec2%3Ar%3A1%3Avpc%2F%2A&ResourceArns.member.2=arn%3Aaws%3Aec2%3Ar%3A1%3Asubnet%2F%2A",
    );
    assert!(named.contains("<EvalResourceName>arn:aws:ec2:r:1:vpc/*</EvalResourceName><EvalResourceDecision>allowed"));
    assert!(
        named.contains(
            "<EvalResourceName>arn:aws:ec2:r:1:subnet/*</EvalResourceName><EvalResourceDecision>implicitDeny"
        )
    );
    // An SCP that refuses: explicitDeny, said in OrganizationsDecisionDetail.
    let scp = serde_json::json!({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"},
        {"Effect": "Deny", "Action": "ec2:*", "Resource": "*"}]});
    let under_scp = Simulator { scp: Some(scp), ..sim }.answer(given);
    assert!(under_scp.contains("<EvalDecision>explicitDeny</EvalDecision>"), "{under_scp}");
    assert!(under_scp.contains("<AllowedByOrganizations>false</AllowedByOrganizations>"), "{under_scp}");
}
