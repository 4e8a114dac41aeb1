//! The GitHub Actions deploy identity: the OIDC identity provider for
//! token.actions.githubusercontent.com (shared by every stack of the account; its audiences must
//! include sts.amazonaws.com) and the `<stack>-deploy` role. Only the deploy workflow's job can
//! assume it: GitHub's token carries `sub = repo:OWNER/NAME:environment:ENV` for a job that runs
//! in an environment and `repo:OWNER/NAME:ref:refs/heads/BRANCH` otherwise, and the trust names
//! exactly that subject and audience. Its policy is rendered from what every kind declares it
//! calls (`Permission`), so it reaches nothing outside the stack. The role is reconciled like the
//! stack's own roles: trust, inline and managed policies (one attached behind our back is
//! detached), tags.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Value, json};

use crate::error::{AwsContext, Error, absent};
use crate::reconcile::permission::{Permission, PolicyContext, statements};
use crate::reconcile::step::Observed;
use crate::reconcile::{Change, Ctx, FieldDiff, Id, Plan, Step};
pub use crate::resources::iam::deploy_role::{
    ACCOUNT_WIDE, DENIED, GROUPS, NOUNS, policy_name, policy_names, role_name,
};
use crate::resources::iam::{self, ObservedRole, Part, RoleSpec, apply_role, diff_role, managed_policy, observe_role};

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
    /// The deploy role's policies, each with its size against IAM's limit.
    pub policies: Vec<PolicyFill>,
    /// The subnets the deploy role may put the Auto Scaling group in (empty: the stack has none
    /// yet, and the group is held to them once `ci-role` runs again after the first `up`).
    pub group_subnets: Vec<String>,
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

/// How full of IAM's limit a deploy policy may be for the largest stack: the rest is room for
/// the kinds to grow.
pub const FILL_GOAL: f64 = 0.8;

/// One of the deploy role's managed policies.
#[derive(Debug, Clone, PartialEq)]
pub struct DeployPolicy {
    pub name: String,
    pub document: Value,
}

impl DeployPolicy {
    /// Its size as IAM counts it.
    pub fn size(&self) -> usize {
        stack::limits::policy_size(&self.document)
    }
}

/// The group a source of permissions (`engine::walk::permission_sources`) belongs to.
fn group_of(source: &str) -> &'static str {
    GROUPS
        .iter()
        .find(|(_, sources)| sources.contains(&source))
        .map(|(group, _)| *group)
        .unwrap_or_else(|| panic!("the permissions of {source:?} belong to no group of ci_role::GROUPS: add it to one"))
}

/// The group a permission of `source` is held in: the one it names (`Permission::in_group`), or
/// its source's.
fn home_of(source: &str, p: &Permission) -> &'static str {
    match p.group {
        Some(named) => GROUPS.iter().map(|(g, _)| *g).find(|g| *g == named).unwrap_or_else(|| {
            panic!("a permission of {source:?} names the group {named:?}, not one of ci_role::GROUPS")
        }),
        None => group_of(source),
    }
}

/// The deploy role's policies: each declaration's statements (see `permission::statements`) in
/// its group, statements of one group that share effect, resources and condition merged into
/// one, numbered `Sid`s; a group with no statement for this stack has no policy.
pub fn policies(ctx: &PolicyContext, sources: &[(&'static str, &'static [Permission])]) -> Vec<DeployPolicy> {
    let mut grouped: Vec<(&str, Vec<Value>)> = GROUPS.iter().map(|(g, _)| (*g, Vec::new())).collect();
    for (source, permissions) in sources {
        for p in permissions.iter().filter(|p| p.deploy_role) {
            let home = home_of(source, p);
            for statement in statements(ctx, "", p) {
                // Reads on `*` (bounded by the region alone) merge into one statement across
                // every kind; what a statement on `*` bounds by more stays with its kind.
                let region_only = statement.get("Condition").and_then(|c| c.as_object()).is_none_or(|c| {
                    c.len() == 1 && c.get("StringEquals").and_then(|e| e.as_object()).is_some_and(|e| e.len() == 1)
                });
                let read = statement["Resource"] == json!(["*"]) && region_only;
                let group = if statement["Effect"] == "Deny" || read { ACCOUNT_WIDE } else { home };
                if let Some((_, list)) = grouped.iter_mut().find(|(g, _)| *g == group) {
                    list.push(statement);
                }
            }
        }
    }
    grouped
        .into_iter()
        .filter(|(_, list)| !list.is_empty())
        .map(|(group, list)| {
            let prefix: String = group.split('-').map(capitalized).collect();
            let merged: Vec<Value> = merge(list)
                .into_iter()
                .enumerate()
                .map(|(i, mut s)| {
                    s["Sid"] = json!(format!("{prefix}{}", i + 1));
                    s
                })
                .collect();
            DeployPolicy {
                name: policy_name(&ctx.stack.name, group),
                document: json!({ "Version": "2012-10-17", "Statement": merged }),
            }
        })
        .collect()
}

fn capitalized(word: &str) -> String {
    let mut chars = word.chars();
    chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
}

/// Statements that share effect, resources and condition, as one with all their actions (in the
/// order of their first statement; actions sorted).
fn merge(statements: Vec<Value>) -> Vec<Value> {
    let mut merged: Vec<Value> = Vec::new();
    for s in statements {
        let same = |m: &Value| {
            m["Effect"] == s["Effect"] && m["Resource"] == s["Resource"] && m.get("Condition") == s.get("Condition")
        };
        let actions = s["Action"].as_array().cloned().unwrap_or_default();
        match merged.iter_mut().find(|m| same(m)) {
            Some(m) => {
                let mut all: Vec<String> = m["Action"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .chain(actions.iter())
                    .filter_map(|a| a.as_str().map(str::to_owned))
                    .collect();
                all.sort();
                all.dedup();
                m["Action"] = json!(all);
            }
            None => {
                let mut s = s.clone();
                let mut all: Vec<String> = actions.iter().filter_map(|a| a.as_str().map(str::to_owned)).collect();
                all.sort();
                all.dedup();
                s["Action"] = json!(all);
                merged.push(s);
            }
        }
    }
    merged
}

/// The deploy role's policies that would cross IAM's size limit, each as "NAME: N characters":
/// none may be sent.
fn oversized(policies: &[DeployPolicy]) -> Vec<String> {
    let limit = stack::limits::IAM_MANAGED_POLICY.max;
    policies.iter().filter(|p| p.size() > limit).map(|p| format!("{}: {} characters", p.name, p.size())).collect()
}

/// The deploy role as it must be: trusted by the workflow's token, holding the deploy policies.
pub fn spec(ctx: &PolicyContext, policies: &[DeployPolicy], provider_arn: &Id, repo: &str, trust: &Trust) -> RoleSpec {
    RoleSpec {
        name: role_name(&ctx.stack.name),
        trust: trust_policy(provider_arn, repo, trust),
        boundary: None,
        managed: policies.iter().map(|p| ctx.iam_arn(&format!("policy/{}", p.name))).collect(),
        inline: BTreeMap::new(),
    }
}

/// How full one deploy policy is of IAM's limit (what `ci-role` reports).
#[derive(Debug, Clone, Serialize)]
pub struct PolicyFill {
    pub name: String,
    pub characters: usize,
    pub limit: usize,
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

/// The provider (found by URL; created, or given our audience, when needed), the deploy
/// policies and the deploy role.
pub async fn reconcile(
    ctx: &Ctx,
    plan: &mut Plan,
    sources: &[(&'static str, &'static [Permission])],
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
    // The Auto Scaling group is held to the stack's subnets once they exist (before the first
    // `up` they do not, and the review says to run ci-role again after it).
    let subnets = crate::resources::network::locate(ctx).await?.map(|(_, s)| s).unwrap_or_default();
    let policy_ctx = PolicyContext {
        partition: identity.partition.clone(),
        account: identity.account.clone(),
        stack: &ctx.stack,
        hosted_zone_id: zone.map(|z| z.id),
        validation_record,
        subnets,
    };
    let policies = policies(&policy_ctx, sources);
    within_limits(&policies)?;
    converge_policies(ctx, plan, &policy_ctx, &policies).await?;
    let want = spec(&policy_ctx, &policies, &provider_arn, repo, trust);
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
    // A group that no longer has statements: its policy, detached from the role above, goes.
    let unused: Vec<String> =
        policy_names(&ctx.stack.name).into_iter().filter(|n| !policies.iter().any(|p| &p.name == n)).collect();
    delete_policies(ctx, plan, &policy_ctx, &unused).await?;
    Ok(CiRoleOutputs {
        oidc_provider_arn: provider_arn.known().map(str::to_owned),
        role_arn: role.id(),
        subject: trust.subject(repo),
        boundary_arn: stack_iam.boundary_arn.known().map(str::to_owned).or_else(|| Some(policy_ctx.boundary_arn())),
        policies: policies
            .iter()
            .map(|p| PolicyFill {
                name: p.name.clone(),
                characters: p.size(),
                limit: stack::limits::IAM_MANAGED_POLICY.max,
            })
            .collect(),
        group_subnets: policy_ctx.subnets.clone(),
    })
}

/// Refuses, before anything is sent, deploy policies IAM would refuse: one over its size limit,
/// or more than a role may have attached.
fn within_limits(policies: &[DeployPolicy]) -> Result<(), Error> {
    let too_big = oversized(policies);
    if !too_big.is_empty() {
        return Err(Error::Refused(format!(
            "the deploy role's policies would cross IAM's limit on {} ({}): {}. Nothing was sent; move kinds \
             to another group in ci_role::GROUPS",
            stack::limits::IAM_MANAGED_POLICY.what,
            stack::limits::IAM_MANAGED_POLICY.max,
            too_big.join(", ")
        )));
    }
    let attached = stack::limits::IAM_ROLE_MANAGED_POLICIES;
    if policies.len() > attached.max {
        return Err(Error::Refused(format!(
            "the deploy role would need {} managed policies: {}. Nothing was sent",
            policies.len(),
            attached.describe()
        )));
    }
    Ok(())
}

/// The deploy policies, each created or given a new version, at once (rows in order).
async fn converge_policies(
    ctx: &Ctx,
    plan: &mut Plan,
    policy_ctx: &PolicyContext<'_>,
    policies: &[DeployPolicy],
) -> Result<(), Error> {
    let converged = futures_util::future::try_join_all(policies.iter().map(|p| async move {
        let arn = policy_ctx.iam_arn(&format!("policy/{}", p.name));
        let description = format!("What the CI deploy role of the Konnichiwa stack {} may do", ctx.stack.name);
        let mut rows = Plan::default();
        Step::new(ctx, iam::BOUNDARY_KIND, &p.name)
            .converge(
                &mut rows,
                async || managed_policy::observe(ctx, &arn, &p.name).await,
                |o| managed_policy::diff(&p.document, &ctx.stack, o),
                async |c: &Change, o: Option<&managed_policy::ObservedPolicy>| {
                    managed_policy::apply(ctx, &p.name, &description, &p.document, c, o).await
                },
            )
            .await?;
        Ok::<_, Error>(rows)
    }))
    .await?;
    converged.into_iter().for_each(|rows| plan.extend(rows));
    Ok(())
}

/// Deletes those of the policies `names` that exist (no role may hold them any more).
async fn delete_policies(
    ctx: &Ctx,
    plan: &mut Plan,
    policy_ctx: &PolicyContext<'_>,
    names: &[String],
) -> Result<(), Error> {
    for name in names {
        let arn = policy_ctx.iam_arn(&format!("policy/{name}"));
        let Some(o) = managed_policy::observe(ctx, &arn, name).await? else { continue };
        if ctx.applying() {
            managed_policy::delete(ctx, &arn).await?;
            ctx.progress(format!("deleted policy {name}"));
        }
        plan.push(iam::BOUNDARY_KIND, name, Some(o.arn), Change::delete());
    }
    Ok(())
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

/// Deletes the deploy role (its policies detached first), then its policies; the provider, which
/// other stacks share, stays.
pub async fn teardown(ctx: &Ctx, plan: &mut Plan) -> Result<(), Error> {
    let name = role_name(&ctx.stack.name);
    if let Some(o) = observe_role(ctx, &name).await? {
        if ctx.applying() {
            iam::role::delete_role(ctx, &o, &name).await?;
            ctx.progress(format!("deleted the deploy role {name}"));
        }
        plan.push(iam::ROLE_KIND, &name, Some(o.arn), Change::delete());
    }
    let identity = ctx.clients.identity().await?;
    let policy_ctx = PolicyContext {
        partition: identity.partition.clone(),
        account: identity.account.clone(),
        stack: &ctx.stack,
        hosted_zone_id: None,
        validation_record: None,
        subnets: Vec::new(),
    };
    delete_policies(ctx, plan, &policy_ctx, &policy_names(&ctx.stack.name)).await
}

/// The deploy role, if there is one: `down` keeps it (the running deploy may be using it) and
/// says how to remove it.
pub async fn kept(ctx: &Ctx) -> Result<Option<String>, Error> {
    let name = role_name(&ctx.stack.name);
    let got = ctx.clients.iam.get_role().role_name(&name).send().await.ctx("get role", &name);
    Ok(absent(got)?.map(|_| format!("IAM role {name} (the CI deploy role; `provisioner ci-role --delete` removes it)")))
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

    /// The stack with every option that adds permissions: a domain with a requested certificate
    /// in a zone, the alarms' topic, ECS Exec, Session Manager, a strategy that shifts traffic;
    /// the longest stack name.
    fn largest_stack() -> stack::Stack {
        let mut s = crate::resources::test_stack();
        s.name = "abcdefghij-klmnopqrs".into();
        s.load_balancer.https = Some(stack::Https {
            domain: Some("api.example.com".into()),
            hosted_zone: None,
            certificate_arn: None,
            port: 443,
            redirect_http: true,
        });
        s.service.deployment.alarm_topic = true;
        s.slo.availability = Some(stack::Percent::parse("99.9%"));
        s.service.exec = true;
        s.capacity.ssm_access = true;
        s.service.deployment.strategy = stack::Strategy::Canary;
        s
    }

    #[test]
    fn the_deploy_policies_fit_iams_limits_with_room_to_grow() {
        let s = largest_stack();
        let mut ctx = crate::reconcile::permission::test_context(&s);
        ctx.hosted_zone_id = Some("Z0123456789ABCDEFGHIJ".into());
        ctx.validation_record = Some("_0123456789abcdef0123456789abcdef.api.example.com".into());
        ctx.subnets = (0..6).map(|i| format!("subnet-0123456789abcdef{i}")).collect();
        let policies = policies(&ctx, &crate::engine::walk::permission_sources());
        let limit = stack::limits::IAM_MANAGED_POLICY.max;
        for p in &policies {
            let fill = p.size() as f64 / limit as f64;
            eprintln!("{}: {} characters, {:.0}% of {limit}", p.name, p.size(), 100.0 * fill);
            assert!(
                fill <= FILL_GOAL,
                "{} is {} characters, {:.0}% of IAM's {limit}: move a kind of its group to another group in \
                 ci_role::GROUPS",
                p.name,
                p.size(),
                100.0 * fill
            );
        }
        assert!(policies.len() < stack::limits::IAM_ROLE_MANAGED_POLICIES.max, "room for one more group");
        assert!(oversized(&policies).is_empty() && within_limits(&policies).is_ok());
        // Every declaration reached a policy: nothing was lost in the grouping and merging.
        let granted: Vec<String> = policies
            .iter()
            .flat_map(|p| p.document["Statement"].as_array().cloned().unwrap_or_default())
            .filter(|st| st["Effect"] == "Allow")
            .flat_map(|st| st["Action"].as_array().cloned().unwrap_or_default())
            .filter_map(|a| a.as_str().map(str::to_owned))
            .collect();
        // Every declaration for the deploy role reached a policy; none kept for administrators did.
        let (for_it, not_for_it): (Vec<_>, Vec<_>) =
            crate::engine::walk::permissions().into_iter().partition(|p| p.deploy_role);
        for action in crate::reconcile::permission::actions(for_it) {
            assert!(granted.iter().any(|g| g == action), "{action} is in no deploy policy");
        }
        for action in crate::reconcile::permission::actions(not_for_it) {
            assert!(!granted.iter().any(|g| g == action), "{action} is an administrator's, yet granted");
        }
        for p in &policies {
            assert!(p.name.len() <= stack::limits::IAM_POLICY_NAME.max, "{}", p.name);
        }
    }

    /// The largest stack with every name taken over from Terraform, each longer than ours.
    fn adopted_stack() -> stack::Stack {
        let mut s = largest_stack();
        for (key, _) in stack::Adopted::default().entries() {
            let name = match key {
                "load_balancer" => "legacy-prod-web-alb".to_owned(),
                "target_group" => "legacy-prod-web-tg".to_owned(),
                "log_group" => "/ecs/legacy-production-web".to_owned(),
                other => format!("legacy-production-{}", other.replace('_', "-")),
            };
            *s.adopted.slot(key).expect("every key has a slot") = Some(name);
        }
        s
    }

    #[test]
    fn adopted_names_are_what_the_deploy_policies_name_and_still_fit() {
        let s = adopted_stack();
        let ctx = crate::reconcile::permission::test_context(&s);
        let policies = policies(&ctx, &crate::engine::walk::permission_sources());
        let text = policies.iter().map(|p| p.document.to_string()).collect::<Vec<_>>().join("\n");
        for needle in [
            "cluster/legacy-production-cluster",
            "service/legacy-production-cluster/legacy-production-service",
            "task-definition/legacy-production-task-family",
            "loadbalancer/app/legacy-prod-web-alb",
            "listener/app/legacy-prod-web-alb/",
            "targetgroup/legacy-prod-web-tg",
            "autoScalingGroupName/legacy-production-auto-scaling-group",
            "capacity-provider/legacy-production-capacity-provider",
            "log-group:/ecs/legacy-production-web",
            "role/legacy-production-execution-role",
            "role/legacy-production-task-role",
        ] {
            assert!(text.contains(needle), "no deploy policy names {needle}");
        }
        let derived = s.name.clone();
        for gone in [format!("cluster/{derived}\""), format!("app/{derived}-alb/"), format!("role/{derived}-execution")]
        {
            assert!(!text.contains(&gone), "a deploy policy still names the derived {gone}");
        }
        assert!(oversized(&policies).is_empty() && within_limits(&policies).is_ok());
        let names: Vec<String> = crate::engine::walk::derived_names(&s).into_iter().map(|(_, n)| n).collect();
        for (key, name) in s.adopted.entries() {
            let name = name.expect("set");
            assert!(names.iter().any(|n| n == name), "adopted.{key} ({name}) is not a name the kinds use: {names:?}");
        }
    }

    #[test]
    fn statements_that_share_resources_and_condition_are_merged_and_others_kept_apart() {
        let merged = merge(vec![
            json!({"Effect": "Allow", "Action": ["b:Y"], "Resource": ["*"]}),
            json!({"Effect": "Allow", "Action": ["a:X", "b:Y"], "Resource": ["*"]}),
            json!({"Effect": "Allow", "Action": ["c:Z"], "Resource": ["*"], "Condition": {"Bool": {"k": "true"}}}),
            json!({"Effect": "Deny", "Action": ["d:W"], "Resource": ["*"]}),
        ]);
        assert_eq!(merged.len(), 3, "{merged:?}");
        assert_eq!(merged[0]["Action"], json!(["a:X", "b:Y"]));
        assert_eq!(merged[1]["Condition"]["Bool"]["k"], "true");
        assert_eq!(merged[2]["Effect"], "Deny");
    }

    #[test]
    fn a_policy_over_iams_limit_is_refused_before_it_is_sent() {
        let statement = json!({"Effect": "Allow", "Action": ["ec2:DescribeVpcs"], "Resource": "*"});
        let big = DeployPolicy {
            name: "s-deploy-network".into(),
            document: json!({"Version": "2012-10-17", "Statement": vec![statement; 120]}),
        };
        assert!(big.size() > stack::limits::IAM_MANAGED_POLICY.max);
        let e = within_limits(std::slice::from_ref(&big)).expect_err("refused");
        assert!(e.to_string().contains("s-deploy-network") && e.to_string().contains("6144"), "{e}");
    }

    #[test]
    fn an_adopted_provider_without_our_audience_gets_it() {
        let p = ObservedProvider { arn: "arn".into(), audiences: vec!["other".into()] };
        assert_eq!(diff_provider(Some(&p)).fields[0].new.as_deref(), Some(AUDIENCE));
        let ok = ObservedProvider { audiences: vec!["other".into(), AUDIENCE.into()], ..p };
        assert!(diff_provider(Some(&ok)).is_no_op());
    }
}
