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

use crate::error::{AwsContext, Error, absent};
use crate::reconcile::permission::{Permission, PolicyContext, Scope, statements};
use crate::reconcile::step::Observed;
use crate::reconcile::{Change, Ctx, FieldDiff, Id, Plan, Step};
use crate::resources::iam::{self, ObservedRole, Part, RoleSpec, apply_role, diff_role, observe_role};

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
    /// The stack's permissions boundary, which bounds every role the deploy role may change.
    pub boundary_arn: Option<String>,
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

/// The plan nouns of what `ci-role` makes (it is no kind of the stack's: `down` keeps it).
pub const NOUNS: &[&str] = &["oidc-provider", iam::ROLE_KIND];

/// What the deploy role must never do, denied outright so that no other policy attached to it by
/// mistake can allow it: make or change roles' identity (create, delete, trust, boundary), write
/// managed policies (the boundary among them), make users or keys, change identity providers,
/// assume other roles, or touch its own policies.
pub const DENIED: &[Permission] = &[
    Permission::deny(
        &[
            "iam:CreateRole",
            "iam:DeleteRole",
            "iam:UpdateAssumeRolePolicy",
            "iam:PutRolePermissionsBoundary",
            "iam:DeleteRolePermissionsBoundary",
            "iam:CreatePolicy",
            "iam:CreatePolicyVersion",
            "iam:DeletePolicy",
            "iam:DeletePolicyVersion",
            "iam:SetDefaultPolicyVersion",
            "iam:CreateInstanceProfile",
            "iam:DeleteInstanceProfile",
            "iam:AddRoleToInstanceProfile",
            "iam:RemoveRoleFromInstanceProfile",
            "iam:CreateUser",
            "iam:CreateAccessKey",
            "iam:CreateLoginProfile",
            "iam:UpdateLoginProfile",
            "iam:AttachUserPolicy",
            "iam:PutUserPolicy",
            "iam:AttachGroupPolicy",
            "iam:PutGroupPolicy",
            "iam:AddUserToGroup",
            "iam:CreateOpenIDConnectProvider",
            "iam:UpdateOpenIDConnectProviderThumbprint",
            "iam:AddClientIDToOpenIDConnectProvider",
            "iam:CreateSAMLProvider",
            "iam:UpdateSAMLProvider",
            "sts:AssumeRole",
        ],
        Scope::Any,
    ),
    Permission::deny(
        &[
            "iam:PutRolePolicy",
            "iam:DeleteRolePolicy",
            "iam:AttachRolePolicy",
            "iam:DetachRolePolicy",
            "iam:TagRole",
            "iam:UntagRole",
            "iam:UpdateRole",
            "iam:UpdateRoleDescription",
        ],
        Scope::Own(|c| vec![c.iam_arn(&format!("role/{}", role_name(&c.stack.name)))]),
    ),
];

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

/// The deploy policy: one statement per declaration (`Sid` numbered in order, `Deny…` for the
/// denials).
pub fn policy(ctx: &PolicyContext, permissions: &[&Permission]) -> Value {
    let statements: Vec<Value> = permissions
        .iter()
        .enumerate()
        .flat_map(|(i, p)| {
            let prefix = if p.effect == crate::reconcile::permission::Effect::Deny { "Deny" } else { "Deploy" };
            statements(ctx, &format!("{prefix}{i:02}"), p)
        })
        .collect();
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
        boundary: None,
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
    let provider = Step::new(ctx, NOUNS[0], "token.actions.githubusercontent.com")
        .converge(
            plan,
            async || observe_provider(ctx).await,
            diff_provider,
            async |_: &Change, o: Option<&ObservedProvider>| apply_provider(ctx, o).await,
        )
        .await?;
    let provider_arn = provider.id_or(|| "the GitHub OIDC provider".into());
    let identity = ctx.clients.identity().await?;
    // What the deploy role may not make: the boundary, the stack's roles (whom they trust, the
    // boundary they carry) and the instance profile. Their policies are left to `up`.
    let stack_iam =
        iam::reconcile(ctx, plan, &administrators_scope(ctx, &identity), Part::Identity, iam::see(ctx).await?).await?;
    // Route 53 changes are granted in the domain's zone only: it must exist before the role.
    let zone = match (&ctx.stack.load_balancer.https, crate::dns::domain(&ctx.stack)) {
        (Some(https), Some(domain)) => Some(crate::dns::find_zone(ctx, https, domain).await?),
        _ => None,
    };
    // ... and, besides the alias, only the record ACM validates the domain with, by its name.
    let validation_record = match &zone {
        Some(_) if ctx.stack.load_balancer.https.as_ref().is_some_and(stack::Https::requests_certificate) => {
            crate::resources::certificate::validation_name(ctx, plan).await?
        }
        _ => None,
    };
    let policy_ctx = PolicyContext {
        partition: identity.partition.clone(),
        account: identity.account.clone(),
        stack: &ctx.stack,
        hosted_zone_id: zone.map(|z| z.id),
        validation_record,
    };
    let want = spec(&policy_ctx, permissions, &provider_arn, repo, trust);
    let role = Step::new(ctx, iam::ROLE_KIND, &want.name)
        .converge(
            plan,
            async || observe_role(ctx, &want.name).await,
            |o| diff_role(&want, &ctx.stack, o, Part::All),
            async |c: &Change, o: Option<&ObservedRole>| {
                provider_arn.get()?;
                apply_role(ctx, &want, o, c, Part::All).await
            },
        )
        .await?;
    Ok(CiRoleOutputs {
        oidc_provider_arn: provider_arn.known().map(str::to_owned),
        role_arn: role.id(),
        subject: trust.subject(repo),
        boundary_arn: stack_iam.boundary_arn.known().map(str::to_owned).or_else(|| Some(policy_ctx.boundary_arn())),
    })
}

/// The IAM scope `ci-role` reconciles the stack's roles in: their identity only, so the ARNs of
/// the repository and the secret (which `up` creates, and whose policies `up` writes) are not
/// needed.
fn administrators_scope(ctx: &Ctx, identity: &crate::aws::Identity) -> iam::Scope {
    let not_needed = |what: &str| Id::Pending(format!("{what} (written by `up`, not by ci-role)"));
    iam::Scope {
        repository_arn: not_needed("the repository's ARN"),
        log_group_arn: crate::resources::logs::arn(
            identity,
            &ctx.stack.region,
            &crate::resources::logs::name(&ctx.stack),
        ),
        secret_arn: not_needed("the secret's ARN"),
        account: identity.account.clone(),
        partition: identity.partition.clone(),
    }
}

/// Deletes the deploy role (its policies first); the provider, which other stacks share, stays.
pub async fn teardown(ctx: &Ctx, plan: &mut Plan) -> Result<(), Error> {
    let name = role_name(&ctx.stack.name);
    let Some(o) = observe_role(ctx, &name).await? else { return Ok(()) };
    if ctx.applying() {
        iam::role::delete_role(ctx, &o, &name).await?;
        ctx.progress(format!("deleted the deploy role {name}"));
    }
    plan.push(iam::ROLE_KIND, &name, Some(o.arn), Change::delete());
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
