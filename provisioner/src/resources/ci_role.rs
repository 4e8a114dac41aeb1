//! The GitHub Actions deploy identity: the OIDC identity provider for
//! token.actions.githubusercontent.com (shared by every stack of the account; its audiences must
//! include sts.amazonaws.com) and the `<stack>-deploy` role. Only the deploy workflow's job can
//! assume it: GitHub's token carries `sub = repo:OWNER/NAME:environment:ENV` for a job that runs
//! in an environment and `repo:OWNER/NAME:ref:refs/heads/BRANCH` otherwise, and the trust names
//! exactly that subject and audience. Its policy is rendered from what every kind declares it
//! calls (`Permission`), so it reaches nothing outside the stack. The role is reconciled like the
//! stack's own roles: trust, inline and managed policies (one attached behind our back is
//! detached), tags.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::{Value, json};

use crate::error::{AwsContext, Error, absent, gone};
use crate::reconcile::permission::{Permission, PolicyContext, statements};
use crate::reconcile::step::Observed;
use crate::reconcile::{Change, Ctx, FieldDiff, Id, Plan, Step};
use crate::resources::iam::{ObservedRole, RoleSpec, apply_role, diff_role, observe_role};

pub const GITHUB_OIDC_URL: &str = "https://token.actions.githubusercontent.com";
pub const AUDIENCE: &str = "sts.amazonaws.com";
/// GitHub's published thumbprint; AWS no longer checks it for this provider but the API wants one.
const THUMBPRINT: &str = "6938fd4d98bab03faadb97b34396831e3780aea1";

#[derive(Debug, Clone, Default, Serialize)]
pub struct CiRoleOutputs {
    pub oidc_provider_arn: Option<String>,
    pub role_arn: Option<String>,
    /// The token subject the role trusts.
    pub subject: String,
}

/// Which of the workflow's tokens the role trusts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// A job that runs in this GitHub environment (`environment:` in the workflow).
    Environment(String),
    /// A job without an environment, on this branch.
    Branch(String),
}

impl Trust {
    /// The `sub` claim of the job's token, as GitHub writes it.
    pub fn subject(&self, repo: &str) -> String {
        match self {
            Self::Environment(env) => format!("repo:{repo}:environment:{env}"),
            Self::Branch(branch) => format!("repo:{repo}:ref:refs/heads/{branch}"),
        }
    }
}

pub fn role_name(stack: &str) -> String {
    format!("{stack}-deploy")
}

/// The trust policy: the GitHub provider, exactly this subject and audience.
pub fn trust_policy(provider_arn: &Id, repo: &str, trust: &Trust) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": { "Federated": provider_arn.to_string() },
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {
                "StringEquals": {
                    "token.actions.githubusercontent.com:aud": AUDIENCE,
                    "token.actions.githubusercontent.com:sub": trust.subject(repo)
                }
            }
        }]
    })
}

/// The deploy policy: one statement per declaration (`Sid` numbered in order).
pub fn policy(ctx: &PolicyContext, permissions: &[&Permission]) -> Value {
    let statements: Vec<Value> =
        permissions.iter().enumerate().flat_map(|(i, p)| statements(ctx, &format!("Deploy{i:02}"), p)).collect();
    json!({ "Version": "2012-10-17", "Statement": statements })
}

/// The deploy role as it must be.
pub fn spec(
    ctx: &PolicyContext,
    permissions: &[&Permission],
    provider_arn: &Id,
    repo: &str,
    trust: &Trust,
) -> RoleSpec {
    RoleSpec {
        name: role_name(&ctx.stack.name),
        trust: trust_policy(provider_arn, repo, trust),
        managed: BTreeSet::new(),
        inline: BTreeMap::from([("deploy".to_owned(), policy(ctx, permissions))]),
    }
}

/// The account's GitHub OIDC provider: its ARN and audiences.
#[derive(Debug, Clone, PartialEq)]
pub struct ObservedProvider {
    pub arn: String,
    pub audiences: Vec<String>,
}

impl Observed for ObservedProvider {
    fn id(&self) -> &str {
        &self.arn
    }
}

pub fn diff_provider(observed: Option<&ObservedProvider>) -> Change {
    match observed {
        None => Change::create(vec![
            FieldDiff::new("url", None, Some(GITHUB_OIDC_URL.into())),
            FieldDiff::new("audience", None, Some(AUDIENCE.into())),
        ]),
        Some(p) if !p.audiences.iter().any(|a| a == AUDIENCE) => {
            Change::update(vec![FieldDiff::new("audience", Some(p.audiences.join(",")), Some(AUDIENCE.into()))])
        }
        Some(_) => Change::no_op(),
    }
}

async fn observe_provider(ctx: &Ctx) -> Result<Option<ObservedProvider>, Error> {
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
            return Ok(Some(ObservedProvider { arn: arn.to_owned(), audiences: got.client_id_list().to_vec() }));
        }
    }
    Ok(None)
}

async fn apply_provider(ctx: &Ctx, observed: Option<&ObservedProvider>) -> Result<Option<String>, Error> {
    let iam = &ctx.clients.iam;
    match observed {
        None => {
            let tags: Vec<aws_sdk_iam::types::Tag> = ctx
                .stack
                .tags
                .iter()
                .filter_map(|(k, v)| aws_sdk_iam::types::Tag::builder().key(k).value(v).build().ok())
                .collect();
            let out = iam
                .create_open_id_connect_provider()
                .url(GITHUB_OIDC_URL)
                .client_id_list(AUDIENCE)
                .thumbprint_list(THUMBPRINT)
                .set_tags(Some(tags))
                .send()
                .await
                .ctx("create OIDC provider", GITHUB_OIDC_URL)?;
            ctx.progress("created the GitHub OIDC identity provider");
            Ok(out.open_id_connect_provider_arn().map(str::to_owned))
        }
        Some(p) => {
            iam.add_client_id_to_open_id_connect_provider()
                .open_id_connect_provider_arn(&p.arn)
                .client_id(AUDIENCE)
                .send()
                .await
                .ctx("add the audience sts.amazonaws.com to", &p.arn)?;
            ctx.progress(format!("the GitHub OIDC provider now accepts the audience {AUDIENCE}"));
            Ok(None)
        }
    }
}

/// The provider (found by URL; created, or given our audience, when needed) and the deploy role.
pub async fn reconcile(
    ctx: &Ctx,
    plan: &mut Plan,
    permissions: &[&Permission],
    repo: &str,
    trust: &Trust,
) -> Result<CiRoleOutputs, Error> {
    let provider = Step::new(ctx, "oidc-provider", "token.actions.githubusercontent.com")
        .converge(
            plan,
            async || observe_provider(ctx).await,
            diff_provider,
            async |_: &Change, o: Option<&ObservedProvider>| apply_provider(ctx, o).await,
        )
        .await?;
    let provider_arn = Id::from_option(provider.id(), || "the GitHub OIDC provider".into());
    let identity = ctx.clients.identity().await?;
    // Route 53 changes are granted in the domain's zone only: it must exist before the role.
    let hosted_zone_id = match (&ctx.stack.load_balancer.https, crate::resources::dns::domain(&ctx.stack)) {
        (Some(https), Some(domain)) => Some(crate::resources::dns::find_zone(ctx, https, domain).await?.id),
        _ => None,
    };
    let policy_ctx =
        PolicyContext { partition: identity.partition, account: identity.account, stack: &ctx.stack, hosted_zone_id };
    let want = spec(&policy_ctx, permissions, &provider_arn, repo, trust);
    let role = Step::new(ctx, "iam-role", &want.name)
        .converge(
            plan,
            async || observe_role(ctx, &want.name).await,
            |o| diff_role(&want, &ctx.stack, o),
            async |c: &Change, o: Option<&ObservedRole>| {
                provider_arn.get()?;
                apply_role(ctx, &want, o, c).await
            },
        )
        .await?;
    Ok(CiRoleOutputs {
        oidc_provider_arn: provider_arn.known().map(str::to_owned),
        role_arn: role.id(),
        subject: trust.subject(repo),
    })
}

/// Deletes the deploy role (its policies first); the provider, which other stacks share, stays.
pub async fn teardown(ctx: &Ctx, plan: &mut Plan) -> Result<(), Error> {
    let name = role_name(&ctx.stack.name);
    let Some(o) = observe_role(ctx, &name).await? else { return Ok(()) };
    if ctx.applying() {
        let iam = &ctx.clients.iam;
        for m in &o.managed {
            gone(
                iam.detach_role_policy().role_name(&name).policy_arn(m).send().await.ctx("detach policy from", &name),
                &["NoSuchEntity"],
            )?;
        }
        for p in o.inline.keys() {
            gone(
                iam.delete_role_policy().role_name(&name).policy_name(p).send().await.ctx("delete policy of", &name),
                &["NoSuchEntity"],
            )?;
        }
        gone(iam.delete_role().role_name(&name).send().await.ctx("delete role", &name), &["NoSuchEntity"])?;
        ctx.progress(format!("deleted the deploy role {name}"));
    }
    plan.push("iam-role", &name, Some(o.arn), Change::delete());
    Ok(())
}

/// The deploy role, if there is one: `down` keeps it (the running deploy may be using it) and
/// says how to remove it.
pub async fn kept(ctx: &Ctx) -> Result<Option<String>, Error> {
    let name = role_name(&ctx.stack.name);
    let got = ctx.clients.iam.get_role().role_name(&name).send().await.ctx("get role", &name);
    Ok(absent(got, &["NoSuchEntity"])?
        .map(|_| format!("IAM role {name} (the CI deploy role; `provisioner ci-role --delete` removes it)")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_subject_is_what_github_puts_in_the_token() {
        assert_eq!(Trust::Environment("production".into()).subject("octo/k"), "repo:octo/k:environment:production");
        assert_eq!(Trust::Branch("main".into()).subject("octo/k"), "repo:octo/k:ref:refs/heads/main");
        let t = trust_policy(
            &Id::Known("arn:aws:iam::1:oidc-provider/x".into()),
            "octo/k",
            &Trust::Environment("staging".into()),
        );
        let cond = &t["Statement"][0]["Condition"]["StringEquals"];
        assert_eq!(cond["token.actions.githubusercontent.com:aud"], "sts.amazonaws.com");
        assert_eq!(cond["token.actions.githubusercontent.com:sub"], "repo:octo/k:environment:staging");
    }

    #[test]
    fn an_adopted_provider_without_our_audience_gets_it() {
        let p = ObservedProvider { arn: "arn".into(), audiences: vec!["other".into()] };
        assert_eq!(diff_provider(Some(&p)).fields[0].new.as_deref(), Some(AUDIENCE));
        let ok = ObservedProvider { audiences: vec!["other".into(), AUDIENCE.into()], ..p };
        assert!(diff_provider(Some(&ok)).is_no_op());
    }
}
