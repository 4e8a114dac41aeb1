//! The GitHub Actions deploy identity: the OIDC identity provider for
//! token.actions.githubusercontent.com and a `<stack>-deploy` role that only the given repository's
//! branch can assume, with a policy that allows what `up`, `deploy` and `down` need for this stack
//! and little else (IAM limited to the stack's own roles, ECR and Secrets Manager to its own
//! repository and secret, the rest pinned to the stack's region).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::{Value, json};

use crate::error::{AwsContext, Error};
use crate::reconcile::{Change, Ctx, FieldDiff, Plan};
use crate::resources::iam::{RoleSpec, diff_role, observe_role};

pub const GITHUB_OIDC_URL: &str = "https://token.actions.githubusercontent.com";
pub const AUDIENCE: &str = "sts.amazonaws.com";
/// GitHub's published thumbprint; AWS no longer checks it for this provider but the API wants one.
const THUMBPRINT: &str = "6938fd4d98bab03faadb97b34396831e3780aea1";

#[derive(Debug, Clone, Default, Serialize)]
pub struct CiRoleOutputs {
    pub oidc_provider_arn: Option<String>,
    pub role_arn: Option<String>,
}

pub fn role_name(stack: &str) -> String {
    format!("{stack}-deploy")
}

/// The deploy role: trust pinned to `repo:OWNER/NAME:ref:refs/heads/BRANCH`.
pub fn spec(stack: &stack::Stack, provider_arn: &str, repo: &str, branch: &str) -> RoleSpec {
    let trust = json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": { "Federated": provider_arn },
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {
                "StringEquals": {
                    "token.actions.githubusercontent.com:aud": AUDIENCE,
                    "token.actions.githubusercontent.com:sub": format!("repo:{repo}:ref:refs/heads/{branch}")
                }
            }
        }]
    });
    RoleSpec {
        name: role_name(&stack.name),
        trust,
        managed: BTreeSet::new(),
        inline: BTreeMap::from([("deploy".to_owned(), policy(stack))]),
    }
}

/// What `up`, `deploy` and `down` call, scoped as tightly as the APIs allow.
pub fn policy(stack: &stack::Stack) -> Value {
    let (name, region) = (&stack.name, &stack.region);
    let in_region = json!({ "StringEquals": { "aws:RequestedRegion": region } });
    json!({
        "Version": "2012-10-17",
        "Statement": [
            { "Sid": "Infrastructure", "Effect": "Allow", "Resource": "*", "Condition": in_region,
              "Action": ["ec2:*", "elasticloadbalancing:*", "autoscaling:*", "ecs:*", "application-autoscaling:*",
                         "logs:CreateLogGroup", "logs:DeleteLogGroup", "logs:DescribeLogGroups", "logs:PutRetentionPolicy",
                         "logs:TagResource", "logs:ListTagsForResource", "ssm:GetParameter"] },
            { "Sid": "OwnRoles", "Effect": "Allow",
              "Action": ["iam:GetRole", "iam:CreateRole", "iam:DeleteRole", "iam:TagRole", "iam:UpdateAssumeRolePolicy",
                         "iam:AttachRolePolicy", "iam:DetachRolePolicy", "iam:PutRolePolicy", "iam:DeleteRolePolicy",
                         "iam:GetRolePolicy", "iam:ListRolePolicies", "iam:ListAttachedRolePolicies", "iam:PassRole",
                         "iam:GetInstanceProfile", "iam:CreateInstanceProfile", "iam:DeleteInstanceProfile", "iam:TagInstanceProfile",
                         "iam:AddRoleToInstanceProfile", "iam:RemoveRoleFromInstanceProfile"],
              "Resource": [format!("arn:aws:iam::*:role/{name}-*"), format!("arn:aws:iam::*:instance-profile/{name}-*")] },
            { "Sid": "ServiceLinkedRoles", "Effect": "Allow", "Action": "iam:CreateServiceLinkedRole", "Resource": "*",
              "Condition": { "StringLike": { "iam:AWSServiceName": ["ecs.amazonaws.com", "autoscaling.amazonaws.com", "elasticloadbalancing.amazonaws.com", "ecs.application-autoscaling.amazonaws.com"] } } },
            { "Sid": "EcrLogin", "Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*" },
            { "Sid": "OwnRepository", "Effect": "Allow", "Action": "ecr:*",
              "Resource": format!("arn:aws:ecr:{region}:*:repository/{}", stack.registry.repository) },
            { "Sid": "OwnSecret", "Effect": "Allow", "Action": "secretsmanager:*",
              "Resource": format!("arn:aws:secretsmanager:{region}:*:secret:{}-*", stack.secret.name) },
            { "Sid": "OwnLease", "Effect": "Allow", "Action": crate::lease::IAM_ACTIONS,
              "Resource": [format!("arn:aws:ssm:{region}:*:parameter{}", crate::lease::path(name)),
                           format!("arn:aws:ssm:{region}:*:parameter{}/*", crate::lease::path(name))] }
        ]
    })
}

async fn find_provider(ctx: &Ctx) -> Result<Option<(String, Vec<(String, String)>)>, Error> {
    let iam = &ctx.clients.iam;
    let list = iam.list_open_id_connect_providers().send().await.ctx("list OIDC providers", "")?;
    for p in list.open_id_connect_provider_list() {
        let Some(arn) = p.arn() else { continue };
        if arn.ends_with("/token.actions.githubusercontent.com") {
            let got = iam
                .get_open_id_connect_provider()
                .open_id_connect_provider_arn(arn)
                .send()
                .await
                .ctx("get OIDC provider", arn)?;
            let tags = got.tags().iter().map(|t| (t.key().to_owned(), t.value().to_owned())).collect();
            return Ok(Some((arn.to_owned(), tags)));
        }
    }
    Ok(None)
}

/// The provider (shared by every stack of the account: found by URL, created when missing) and
/// the stack's deploy role.
pub async fn reconcile(ctx: &Ctx, plan: &mut Plan, repo: &str, branch: &str) -> Result<CiRoleOutputs, Error> {
    let iam = &ctx.clients.iam;
    let iam_tags = || {
        ctx.stack
            .resource_tags()
            .into_iter()
            .filter_map(|(k, v)| aws_sdk_iam::types::Tag::builder().key(k).value(v).build().ok())
            .collect::<Vec<_>>()
    };
    let provider = find_provider(ctx).await?;
    let mut provider_arn = provider.as_ref().map(|p| p.0.clone());
    let change = if provider.is_some() {
        Change::no_op()
    } else {
        Change::create(vec![
            FieldDiff::new("url", None, Some(GITHUB_OIDC_URL.into())),
            FieldDiff::new("audience", None, Some(AUDIENCE.into())),
        ])
    };
    if ctx.applying() && provider.is_none() {
        let out = iam
            .create_open_id_connect_provider()
            .url(GITHUB_OIDC_URL)
            .client_id_list(AUDIENCE)
            .thumbprint_list(THUMBPRINT)
            .set_tags(Some(iam_tags()))
            .send()
            .await
            .ctx("create OIDC provider", GITHUB_OIDC_URL)?;
        provider_arn = out.open_id_connect_provider_arn().map(str::to_owned);
        ctx.progress("created the GitHub OIDC identity provider");
    }
    plan.push("oidc-provider", "token.actions.githubusercontent.com", provider_arn.clone(), change);

    let want =
        spec(&ctx.stack, provider_arn.as_deref().unwrap_or("(ARN of the OIDC provider, once created)"), repo, branch);
    let observed = observe_role(ctx, &want.name).await?;
    let change = diff_role(&want, &ctx.stack, observed.as_ref());
    let mut role_arn = observed.as_ref().map(|o| o.arn.clone());
    if ctx.applying() && !change.is_no_op() {
        if observed.is_none() {
            let out = iam
                .create_role()
                .role_name(&want.name)
                .assume_role_policy_document(want.trust.to_string())
                .description(format!("GitHub Actions deploys of {repo} ({branch}) to stack {}", ctx.stack.name))
                .set_tags(Some(iam_tags()))
                .send()
                .await
                .ctx("create role", &want.name)?;
            role_arn = out.role().map(|r| r.arn().to_owned());
        } else if change.fields.iter().any(|f| f.field == "trust_policy") {
            iam.update_assume_role_policy()
                .role_name(&want.name)
                .policy_document(want.trust.to_string())
                .send()
                .await
                .ctx("update trust policy of", &want.name)?;
        }
        for (p, doc) in &want.inline {
            iam.put_role_policy()
                .role_name(&want.name)
                .policy_name(p)
                .policy_document(doc.to_string())
                .send()
                .await
                .ctx("put policy on", &want.name)?;
        }
        for p in observed.iter().flat_map(|o| o.inline.keys()).filter(|p| !want.inline.contains_key(*p)) {
            iam.delete_role_policy()
                .role_name(&want.name)
                .policy_name(p)
                .send()
                .await
                .ctx("delete policy of", &want.name)?;
        }
        ctx.progress(format!("deploy role {} ready", want.name));
    }
    plan.push("iam-role", &want.name, role_arn.clone(), change);
    Ok(CiRoleOutputs { oidc_provider_arn: provider_arn, role_arn })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_repository_branch_can_assume_the_role() {
        let s = crate::resources::test_stack();
        let r = spec(&s, "arn:aws:iam::1:oidc-provider/token.actions.githubusercontent.com", "octo/konnichiwa", "main");
        let cond = &r.trust["Statement"][0]["Condition"]["StringEquals"];
        assert_eq!(cond["token.actions.githubusercontent.com:sub"], "repo:octo/konnichiwa:ref:refs/heads/main");
        assert_eq!(cond["token.actions.githubusercontent.com:aud"], "sts.amazonaws.com");
        let p = &r.inline["deploy"];
        let roles =
            p["Statement"].as_array().expect("statements").iter().find(|st| st["Sid"] == "OwnRoles").expect("roles");
        assert_eq!(roles["Resource"][0], "arn:aws:iam::*:role/konnichiwa-*", "IAM only on the stack's roles");
        assert!(!p.to_string().contains("\"iam:*\""));
    }
}
