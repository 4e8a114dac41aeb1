//! IAM, least privilege and visible in the plan: the stack's permissions boundary (`boundary`),
//! the instance role and profile (the AWS managed ECS-for-EC2 policy, optionally SSM), the task
//! execution role (pull from our repository, write to our log group, read our secret's ARN only)
//! and the app's task role (empty unless stack.yaml adds statements) — every role bounded.
//!
//! Who may change what: the roles' identity (that they exist, their trust, their boundary), the
//! boundary itself and the instance profile are an administrator's; their policies are `up`'s,
//! from anywhere. Run as the CI deploy role, `up` refuses before any change when an
//! administrator's change is pending (`needs_administrator`), and `down` keeps the roles, the
//! profile and the boundary (the deploy role may not create them again).

pub mod boundary;
pub mod deploy_role;
pub mod managed_policy;
pub mod names;
pub use names::roles as names;
pub mod profile;
pub mod role;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::{Value, json};

use crate::error::Error;
use crate::reconcile::kind::{Kind, Making, Node, Reconciles};
use crate::reconcile::permission::{self, Permission, PolicyContext, boundary_name};
use crate::reconcile::{Action, Change, Ctx, Id, Noun, Plan, Step};
use crate::resources::budget::BUDGET_ALERT;
use crate::resources::ecr::EcrOutputs;
use crate::resources::log_bucket::LOG_BUCKET;
use crate::resources::logs::LogOutputs;
use crate::resources::secret::{SECRET, SecretOutputs};
use crate::resources::topic::SNS_TOPIC;
pub use role::{ObservedRole, Part, RoleSpec, apply_role, decode_policy, diff_role, observe_role};

/// The ARNs of the stack's three roles, exactly (no prefix another stack's names could match).
pub fn role_arns(c: &PolicyContext) -> Vec<String> {
    let (instance, execution, task) = names(&c.stack.name);
    [instance, execution, task].iter().map(|n| c.iam_arn(&format!("role/{n}"))).collect()
}

/// What the deploy role may do in IAM: read the stack's roles, profile and boundary; change the
/// roles' policies only while the boundary is on them (attaching only the managed policies the
/// stack uses); pass each role only to the service that takes it. Creating roles, changing
/// their trust or boundary, and writing the boundary are left out (and denied, `ci_role`).
pub const PERMISSIONS: &[Permission] = &[
    Permission::new(
        &[
            "iam:GetRole",
            "iam:GetRolePolicy",
            "iam:ListRolePolicies",
            "iam:ListAttachedRolePolicies",
            "iam:GetInstanceProfile",
            "iam:GetPolicy",
            "iam:GetPolicyVersion",
            "iam:ListPolicyVersions",
        ],
        permission::Scope::Own(|c| {
            let mut arns = role_arns(c);
            arns.push(c.iam_arn(&format!("instance-profile/{}", names(&c.stack.name).0)));
            arns.push(c.boundary_arn());
            arns
        }),
    ),
    Permission::new(&["iam:PutRolePolicy", "iam:DeleteRolePolicy"], permission::Scope::Bounded { roles: role_arns }),
    Permission::new(
        &["iam:AttachRolePolicy", "iam:DetachRolePolicy"],
        permission::Scope::AttachManaged {
            roles: role_arns,
            policies: |c| {
                [ECS_FOR_EC2_POLICY, SSM_CORE_POLICY]
                    .iter()
                    .map(|p| p.replace("arn:aws:", &format!("arn:{}:", c.partition)))
                    .collect()
            },
        },
    ),
    // Only the stack's own tags, with its ownership tag among them.
    Permission::new(
        &["iam:TagRole"],
        permission::Scope::Conditioned {
            resources: role_arns,
            condition: |c| {
                let keys: Vec<String> = c.stack.resource_tags().into_iter().map(|(k, _)| k).collect();
                json!({
                    "StringEquals": { format!("aws:RequestTag/{}", stack::OWNERSHIP_TAG): c.stack.name },
                    "ForAllValues:StringEquals": { "aws:TagKeys": keys },
                })
            },
        },
    ),
    Permission::new(
        &["iam:PassRole"],
        permission::Scope::PassRole {
            roles: |c| vec![c.iam_arn(&format!("role/{}", names(&c.stack.name).0))],
            service: "ec2.amazonaws.com",
        },
    ),
    Permission::new(
        &["iam:PassRole"],
        permission::Scope::PassRole {
            roles: |c| {
                let (_, execution, task) = names(&c.stack.name);
                vec![c.iam_arn(&format!("role/{execution}")), c.iam_arn(&format!("role/{task}"))]
            },
            service: "ecs-tasks.amazonaws.com",
        },
    ),
];

pub const ECS_FOR_EC2_POLICY: &str = "arn:aws:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role";
pub const SSM_CORE_POLICY: &str = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore";

#[derive(Debug, Clone, Serialize)]
pub struct IamOutputs {
    pub boundary_arn: Id,
    pub instance_role_arn: Id,
    pub instance_profile_name: String,
    pub instance_profile_arn: Id,
    pub execution_role_arn: Id,
    pub task_role_arn: Id,
    /// The role ECS shifts traffic with (None: a rolling stack). TEMPORARY until the iam-lb branch lands.
    pub load_balancer_role_arn: Option<Id>,
}

/// The ARNs the execution role's policy is scoped to (the repository's and the secret's exist
/// only once created: a plan shows them pending, an apply needs them known).
#[derive(Debug, Clone)]
pub struct Scope {
    pub repository_arn: Id,
    pub log_group_arn: String,
    pub secret_arn: Id,
    /// The account and partition the roles live in (for their trust's confused-deputy guard).
    pub account: String,
    pub partition: String,
}

impl Scope {
    /// Refuses to write a policy that still names something not created.
    fn check_known(&self) -> Result<(), Error> {
        self.repository_arn.get()?;
        self.secret_arn.get()?;
        Ok(())
    }

    fn policy_context<'a>(&self, stack: &'a stack::Stack) -> PolicyContext<'a> {
        PolicyContext {
            partition: self.partition.clone(),
            account: self.account.clone(),
            stack,
            hosted_zone_id: None,
            validation_record: None,
            subnets: Vec::new(),
        }
    }

    /// The boundary's ARN (it is named, so known before it exists).
    pub fn boundary_arn(&self, stack: &stack::Stack) -> String {
        self.policy_context(stack).boundary_arn()
    }
}

/// The instance role's trust. EC2 is not documented to send `aws:SourceAccount` when it hands
/// an instance its profile's credentials, so no condition is added: one it does not send would
/// leave every instance without credentials (an accepted scanner finding; see README).
fn trust(service: &str) -> Value {
    json!({ "Version": "2012-10-17", "Statement": [{ "Effect": "Allow", "Principal": { "Service": service }, "Action": "sts:AssumeRole" }] })
}

/// The ECS roles' trust, guarded against the confused deputy: ECS may assume them only for this
/// account's tasks in this region (`aws:SourceAccount`, `aws:SourceArn`), as AWS recommends.
/// Narrower (one cluster) is not something ECS supports in a trust policy; who can make ECS
/// assume them at all is decided by `iam:PassRole` (docs/POSTURE.md).
fn ecs_tasks_trust(scope: &Scope, region: &str) -> Value {
    json!({ "Version": "2012-10-17", "Statement": [{
        "Effect": "Allow",
        "Principal": { "Service": "ecs-tasks.amazonaws.com" },
        "Action": "sts:AssumeRole",
        "Condition": {
            "ArnLike": { "aws:SourceArn": format!("arn:{}:ecs:{region}:{}:*", scope.partition, scope.account) },
            "StringEquals": { "aws:SourceAccount": scope.account }
        }
    }]})
}

/// The ARN of the stack's task execution role, if it exists (one call; nothing compared).
pub async fn locate_execution_role(ctx: &Ctx) -> Result<Option<String>, Error> {
    role::locate(ctx, &names(&ctx.stack.name).1).await
}

/// The three roles of a stack, each bounded by the stack's boundary.
pub fn specs(stack: &stack::Stack, scope: &Scope) -> [RoleSpec; 3] {
    let (instance, execution, task) = names(&stack.name);
    let boundary = Some(scope.boundary_arn(stack));
    let mut instance_managed = BTreeSet::from([ECS_FOR_EC2_POLICY.to_owned()]);
    if stack.capacity.ssm_access {
        instance_managed.insert(SSM_CORE_POLICY.to_owned());
    }
    let execution_policy = json!({
        "Version": "2012-10-17",
        "Statement": [
            // GetAuthorizationToken has no resource-level permissions: it must be "*".
            { "Sid": "EcrLogin", "Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*" },
            { "Sid": "PullOurImages", "Effect": "Allow",
              "Action": ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
              "Resource": scope.repository_arn.to_string() },
            { "Sid": "WriteOurLogs", "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
              "Resource": format!("{}:*", scope.log_group_arn) },
            { "Sid": "ReadOurApiKey", "Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": scope.secret_arn.to_string() },
        ]
    });
    let mut task_inline = BTreeMap::new();
    if !stack.iam.task_role_statements.is_empty() {
        task_inline
            .insert("app".to_owned(), json!({ "Version": "2012-10-17", "Statement": stack.iam.task_role_statements }));
    }
    if stack.service.exec {
        // ECS Exec: the agent in the task opens its Session Manager channels (these actions take
        // no resource).
        task_inline.insert(
            "exec".to_owned(),
            json!({ "Version": "2012-10-17", "Statement": [{
                "Sid": "EcsExecChannels", "Effect": "Allow",
                "Action": ["ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel",
                           "ssmmessages:OpenControlChannel", "ssmmessages:OpenDataChannel"],
                "Resource": "*"
            }]}),
        );
    }
    [
        RoleSpec {
            name: instance,
            trust: trust("ec2.amazonaws.com"),
            boundary: boundary.clone(),
            managed: instance_managed,
            inline: BTreeMap::new(),
        },
        RoleSpec {
            name: execution,
            trust: ecs_tasks_trust(scope, &stack.region),
            boundary: boundary.clone(),
            managed: BTreeSet::new(),
            inline: BTreeMap::from([("execution".to_owned(), execution_policy)]),
        },
        RoleSpec {
            name: task,
            trust: ecs_tasks_trust(scope, &stack.region),
            boundary,
            managed: BTreeSet::new(),
            inline: task_inline,
        },
    ]
}

/// What IAM has of the stack (boundary, roles, profile), read by name before the ARNs the roles
/// are scoped to are known: the engine reads it at the start, at once with everything else.
#[derive(Debug, Default)]
pub struct Seen {
    boundary: Option<boundary::ObservedBoundary>,
    roles: [Option<ObservedRole>; 3],
    profile: Option<profile::ObservedProfile>,
}

/// Reads the boundary, the three roles and the profile at once.
pub async fn see(ctx: &Ctx) -> Result<Seen, Error> {
    // The boundary's ARN names the account; the roles and the profile are read by name meanwhile.
    let boundary = async {
        let boundary_arn = boundary_arn_of(&ctx.stack, &ctx.clients.identity().await?);
        boundary::observe(ctx, &boundary_arn).await
    };
    let (instance, execution, task) = names(&ctx.stack.name);
    let (boundary, instance_role, execution_role, task_role, profile) = tokio::try_join!(
        boundary,
        observe_role(ctx, &instance),
        observe_role(ctx, &execution),
        observe_role(ctx, &task),
        profile::observe(ctx, &instance),
    )?;
    Ok(Seen { boundary, roles: [instance_role, execution_role, task_role], profile })
}

/// The boundary, the three roles and the instance profile (`part` of each role: `ci-role` makes
/// the identity half, `up` all of it), from what `see` read.
pub async fn reconcile(ctx: &Ctx, plan: &mut Plan, scope: &Scope, part: Part, seen: Seen) -> Result<IamOutputs, Error> {
    let seen = seen;
    let Seen { boundary: seen_boundary, roles: seen_roles, profile: seen_profile } = seen;
    let boundary_arn = scope.boundary_arn(&ctx.stack);
    let want = boundary::document(&scope.policy_context(&ctx.stack));
    let name = boundary_name(&ctx.stack.name);
    let bounded = Step::new(ctx, BOUNDARY_KIND, &name)
        .converge_observed(
            plan,
            seen_boundary,
            async || boundary::observe(ctx, &boundary_arn).await,
            |o| boundary::diff(&want, &ctx.stack, o),
            async |c: &Change, o: Option<&boundary::ObservedBoundary>| boundary::apply(ctx, &want, c, o).await,
        )
        .await?;
    let [instance, execution, task] = specs(&ctx.stack, scope);
    // The three roles at once (each names the boundary, made first); their rows in this order.
    let roles = [&instance, &execution, &task].into_iter().zip(seen_roles);
    let converged = futures_util::future::try_join_all(roles.map(|(spec, seen)| async move {
        let mut rows = Plan::default();
        let outcome = Step::new(ctx, ROLE_KIND, &spec.name)
            .converge_observed(
                &mut rows,
                seen,
                async || observe_role(ctx, &spec.name).await,
                |o| diff_role(spec, &ctx.stack, o, part),
                async |c: &Change, o: Option<&ObservedRole>| {
                    if part == Part::All {
                        scope.check_known()?;
                    }
                    apply_role(ctx, spec, o, c, part).await
                },
            )
            .await?;
        Ok::<_, Error>((rows, outcome.id_or(|| format!("role {}", spec.name))))
    }))
    .await?;
    let mut arns = Vec::new();
    for (rows, arn) in converged {
        plan.extend(rows);
        arns.push(arn);
    }
    let profile_name = instance.name.clone();
    let outcome = Step::new(ctx, PROFILE_KIND, &profile_name)
        .converge_observed(
            plan,
            seen_profile,
            async || profile::observe(ctx, &profile_name).await,
            |o| profile::diff(&instance.name, &ctx.stack, o),
            async |c: &Change, o: Option<&profile::ObservedProfile>| {
                profile::apply(ctx, &profile_name, &instance.name, c, o).await
            },
        )
        .await?;
    let [instance_role_arn, execution_role_arn, task_role_arn] = <[Id; 3]>::try_from(arns).expect("three roles");
    Ok(IamOutputs {
        boundary_arn: bounded.id_or(|| format!("permissions boundary {name}")),
        instance_role_arn,
        instance_profile_arn: outcome.id_or(|| format!("instance profile {profile_name}")),
        instance_profile_name: profile_name,
        execution_role_arn,
        task_role_arn,
        load_balancer_role_arn: ctx
            .stack
            .service
            .deployment
            .strategy
            .shifts_traffic()
            .then(|| Id::Known("arn:aws:iam::123456789012:role/TEMPORARY".into())),
    })
}

pub use names::{BOUNDARY_KIND, PROFILE_KIND, ROLE_KIND};

/// The changes of `plan` that only an administrator may make, each as `kind name (fields)`: a
/// role, profile or boundary to create or delete, a trust or boundary to change, the boundary's
/// document, the profile's role; and what sets a resource policy, whose content no condition can
/// see: the log bucket made or deleted, its policy or public access block; the secret made,
/// deleted or restored, its resource policy; the alarms' topic made or deleted; an error budget
/// alert made or changed (PutCompositeAlarm takes no scope narrower than `*`).
pub fn needs_administrator(plan: &Plan) -> Vec<String> {
    plan.resources
        .iter()
        .filter(|r| !r.change.is_no_op())
        .filter_map(|r| {
            // An error budget alert: made or changed only with PutCompositeAlarm on `*`.
            // A change of its tags alone is TagResource's, which the deploy role has.
            if r.kind == BUDGET_ALERT {
                let tags_only =
                    r.change.action == Action::Update && r.change.fields.iter().all(|f| f.field.starts_with("tags."));
                let action = format!("{:?}", r.change.action).to_lowercase();
                return (r.change.action != Action::Delete && !tags_only)
                    .then(|| format!("{} {} ({action})", r.kind, r.name));
            }
            let whole = matches!(r.change.action, Action::Create | Action::Replace | Action::Delete);
            let fields: &[&str] = match r.kind {
                BOUNDARY_KIND | ROLE_KIND | PROFILE_KIND | LOG_BUCKET | SECRET | SNS_TOPIC if whole => &[],
                ROLE_KIND => role::IDENTITY_FIELDS,
                BOUNDARY_KIND => &["document"],
                PROFILE_KIND => &["role"],
                LOG_BUCKET => &["policy", "public_access"],
                SECRET => &["resource_policy", "state"],
                _ => return None,
            };
            let changed: Vec<&str> =
                r.change.fields.iter().map(|f| f.field.as_str()).filter(|f| fields.contains(f)).collect();
            if !whole && changed.is_empty() {
                return None;
            }
            let action = format!("{:?}", r.change.action).to_lowercase();
            let what = if whole { action } else { changed.join(", ") };
            Some(format!("{} {} ({what})", r.kind, r.name))
        })
        .collect()
}

/// True when the credentials are the stack's CI deploy role.
pub async fn run_by_deploy_role(ctx: &Ctx) -> Result<bool, Error> {
    let identity = ctx.clients.identity().await?;
    Ok(identity.is_role(&crate::resources::iam::deploy_role::role_name(&ctx.stack.name)))
}

/// The boundary, the three roles, the instance profile, and the CI deploy role and its policies
/// (`ci-role`).
fn derived_names(stack: &stack::Stack) -> Vec<(Noun, String)> {
    let (instance, execution, task) = names(&stack.name);
    vec![
        (BOUNDARY_KIND, crate::reconcile::permission::boundary_name(&stack.name)),
        (ROLE_KIND, instance.clone()),
        (ROLE_KIND, execution),
        (ROLE_KIND, task),
        (PROFILE_KIND, instance),
        (ROLE_KIND, crate::resources::iam::deploy_role::role_name(&stack.name)),
    ]
    .into_iter()
    .chain(crate::resources::iam::deploy_role::policy_names(&stack.name).into_iter().map(|p| (BOUNDARY_KIND, p)))
    .collect()
}

/// This kind in the one list of kinds (`resources::KINDS`).
pub const KIND: Kind = Kind {
    name: "iam",
    nouns: &[BOUNDARY_KIND, ROLE_KIND, PROFILE_KIND],
    permissions: PERMISSIONS,
    arn_types: &["iam:role", "iam:policy", "iam:instance-profile"],
    // What uses the roles goes first: the service and load test (task roles), the instances
    // (the profile), and what the execution role is scoped to (repository, secret).
    deleted_after: &["ecs-service", "capacity", "loadtest", "ecr-repository", "secret"],
    derived_names,
    name_limits: &[
        (ROLE_KIND, &stack::limits::IAM_ROLE_NAME),
        (BOUNDARY_KIND, &stack::limits::IAM_POLICY_NAME),
        (PROFILE_KIND, &stack::limits::IAM_INSTANCE_PROFILE_NAME),
    ],
    terraform_types: &[
        "aws_iam_role",
        "aws_iam_role_policy",
        "aws_iam_role_policy_attachment",
        "aws_iam_policy",
        "aws_iam_instance_profile",
    ],
    teardown: |ctx, plan, down| Box::pin(teardown(ctx, plan, down)),
    leftovers: |ctx| Box::pin(leftovers(ctx)),
    node: Some(Node::of::<Iam>()),
};

/// The roles are scoped to the repository's, the log group's and the secret's ARNs.
pub struct Iam;

impl Reconciles for Iam {
    type Needs = (EcrOutputs, LogOutputs, SecretOutputs);
    type Seen = Seen;
    type Gives = IamOutputs;

    fn see(ctx: &Ctx) -> Making<'_, Seen> {
        Box::pin(see(ctx))
    }

    fn reconcile<'a>(
        ctx: &'a Ctx,
        plan: &'a mut Plan,
        (registry, logs, secret): Self::Needs,
        seen: Seen,
    ) -> Making<'a, IamOutputs> {
        Box::pin(async move {
            let identity = ctx.clients.identity().await?;
            let scope = Scope {
                repository_arn: registry.repository_arn,
                log_group_arn: logs.log_group_arn,
                secret_arn: secret.secret_arn,
                account: identity.account,
                partition: identity.partition,
            };
            reconcile(ctx, plan, &scope, Part::All, seen).await
        })
    }
}

/// Profile first (it holds the instance role), then each role, then the boundary they carried.
/// Run by the deploy role, nothing: it could not make them again (`kept` says so).
pub async fn teardown(ctx: &Ctx, plan: &mut Plan, _: &crate::reconcile::kind::Down) -> Result<(), Error> {
    if run_by_deploy_role(ctx).await? {
        return Ok(());
    }
    let (instance, execution, task) = names(&ctx.stack.name);
    let Seen { boundary, roles, profile } = see(ctx).await?;
    if let Some(p) = profile {
        if ctx.applying() {
            profile::delete(ctx, &p, &instance).await?;
            ctx.progress(format!("deleted instance profile {instance}"));
        }
        plan.push(PROFILE_KIND, &instance, Some(p.arn), Change::delete());
    }
    // The roles at once, now that the profile no longer holds one; rows in this order.
    let present = [instance, execution, task].into_iter().zip(roles).filter_map(|(name, o)| Some((name, o?)));
    let deleted = futures_util::future::try_join_all(present.map(|(name, o)| async move {
        if ctx.applying() {
            role::delete_role(ctx, &o, &name).await?;
            ctx.progress(format!("deleted role {name}"));
        }
        Ok::<_, Error>((name, o.arn))
    }))
    .await?;
    for (name, arn) in deleted {
        plan.push(ROLE_KIND, &name, Some(arn), Change::delete());
    }
    // Last: no role names it as its boundary any more.
    if boundary.is_some() {
        let arn = boundary_arn_of(&ctx.stack, &ctx.clients.identity().await?);
        if ctx.applying() {
            boundary::delete(ctx, &arn).await?;
            ctx.progress(format!("deleted permissions boundary {}", boundary_name(&ctx.stack.name)));
        }
        plan.push(BOUNDARY_KIND, boundary_name(&ctx.stack.name), Some(arn), Change::delete());
    }
    Ok(())
}

fn boundary_arn_of(stack: &stack::Stack, identity: &crate::aws::Identity) -> String {
    format!("arn:{}:iam::{}:policy/{}", identity.partition, identity.account, boundary_name(&stack.name))
}

/// What still exists: `(description, kept)`, kept when the deploy role runs `down` and leaves
/// them for the next `up`.
async fn remaining(ctx: &Ctx) -> Result<Vec<String>, Error> {
    let Seen { boundary, roles, profile } = see(ctx).await?;
    let mut left: Vec<String> = profile.map(|p| format!("instance profile {}", p.arn)).into_iter().collect();
    left.extend(roles.into_iter().flatten().map(|o| format!("IAM role {}", o.arn)));
    left.extend(boundary.map(|b| format!("IAM policy {} (the permissions boundary)", b.arn)));
    Ok(left)
}

/// What `down` leaves behind that it should have deleted.
pub async fn leftovers(ctx: &Ctx) -> Result<Vec<String>, Error> {
    if run_by_deploy_role(ctx).await? {
        return Ok(Vec::new());
    }
    remaining(ctx).await
}

/// What `down` keeps on purpose: run by the deploy role, the roles, profile and boundary (only an
/// administrator may make them again, so the next deploy needs them).
pub async fn kept(ctx: &Ctx) -> Result<Vec<String>, Error> {
    if !run_by_deploy_role(ctx).await? {
        return Ok(Vec::new());
    }
    Ok(remaining(ctx)
        .await?
        .into_iter()
        .map(|item| {
            format!(
                "{item} (the deploy role may not create roles, so it keeps them for the next deploy; an \
                 administrator's `down` deletes them)"
            )
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::FieldDiff;

    fn scope() -> Scope {
        Scope {
            repository_arn: Id::Known("arn:aws:ecr:ap-northeast-1:123456789012:repository/konnichiwa".into()),
            log_group_arn: "arn:aws:logs:ap-northeast-1:123456789012:log-group:/ecs/konnichiwa".into(),
            secret_arn: Id::Known(
                "arn:aws:secretsmanager:ap-northeast-1:123456789012:secret:konnichiwa/api-key-AbCdEf".into(),
            ),
            account: "123456789012".into(),
            partition: "aws".into(),
        }
    }

    #[test]
    fn the_execution_role_reads_only_our_secret() {
        let s = crate::resources::test_stack();
        let [instance, execution, task] = specs(&s, &scope());
        assert_eq!(instance.managed, BTreeSet::from([ECS_FOR_EC2_POLICY.to_owned()]));
        let doc = &execution.inline["execution"];
        let statements = doc["Statement"].as_array().expect("statements");
        let secret =
            statements.iter().find(|st| st["Action"] == "secretsmanager:GetSecretValue").expect("secret statement");
        assert_eq!(secret["Resource"], scope().secret_arn.to_string(), "scoped to the real ARN, no wildcard");
        for st in statements.iter().filter(|st| st["Sid"] != "EcrLogin") {
            assert!(!st["Resource"].as_str().unwrap_or("*").ends_with('*') || st["Sid"] == "WriteOurLogs", "{st}");
        }
        assert!(task.inline.is_empty() && task.managed.is_empty(), "the task role is empty by default");
        for role in [&instance, &execution, &task] {
            assert_eq!(role.boundary.as_deref(), Some("arn:aws:iam::123456789012:policy/konnichiwa-boundary"));
        }
    }

    #[test]
    fn policy_documents_compare_as_json() {
        let s = crate::resources::test_stack();
        let [_, execution, _] = specs(&s, &scope());
        let reformatted: Value =
            serde_json::from_str(&serde_json::to_string_pretty(&execution.inline["execution"]).expect("json"))
                .expect("json");
        let observed = ObservedRole {
            arn: "arn:role".into(),
            trust: decode_policy(&serde_json::to_string_pretty(&execution.trust).expect("json")),
            boundary: execution.boundary.clone(),
            managed: BTreeSet::new(),
            inline: BTreeMap::from([("execution".to_owned(), reformatted)]),
            tags: s.resource_tags(),
        };
        assert!(diff_role(&execution, &s, Some(&observed), Part::All).is_no_op());
        let mut extra = observed.clone();
        extra
            .inline
            .insert("admin".into(), json!({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}));
        let c = diff_role(&execution, &s, Some(&extra), Part::All);
        assert_eq!(c.fields.len(), 1);
        assert_eq!(c.fields[0].field, "inline_policy.admin");
        assert_eq!(c.fields[0].new, None, "a policy added behind our back is removed");
    }

    #[test]
    fn the_ecs_roles_trust_only_this_accounts_tasks() {
        let s = crate::resources::test_stack();
        let [instance, execution, task] = specs(&s, &scope());
        for role in [&execution, &task] {
            let c = &role.trust["Statement"][0]["Condition"];
            assert_eq!(c["StringEquals"]["aws:SourceAccount"], "123456789012", "{}", role.name);
            assert_eq!(c["ArnLike"]["aws:SourceArn"], "arn:aws:ecs:ap-northeast-1:123456789012:*");
        }
        assert!(instance.trust["Statement"][0].get("Condition").is_none(), "EC2 sends no source account");
    }

    #[test]
    fn trust_boundary_and_creates_are_an_administrators_policies_are_not() {
        let mut plan = Plan::default();
        let field = |f: &str| FieldDiff::new(f, Some("a".into()), Some("b".into()));
        plan.push(ROLE_KIND, "k-task", None, Change::update(vec![field("inline_policy.app")]));
        plan.push(ROLE_KIND, "k-execution", None, Change::update(vec![field("trust_policy"), field("tags.team")]));
        plan.push(ROLE_KIND, "k-instance", None, Change::create(vec![]));
        plan.push(BOUNDARY_KIND, "k-boundary", None, Change::update(vec![field("document")]));
        plan.push(BOUNDARY_KIND, "k-boundary", None, Change::update(vec![field("tags.team")]));
        plan.push(PROFILE_KIND, "k-instance", None, Change::no_op());
        assert_eq!(
            needs_administrator(&plan),
            ["iam-role k-execution (trust_policy)", "iam-role k-instance (create)", "iam-policy k-boundary (document)"]
        );
    }

    #[test]
    fn an_error_budget_alert_is_made_or_changed_by_an_administrator_and_deleted_by_anyone() {
        let mut plan = Plan::default();
        let field = |f: &str| FieldDiff::new(f, Some("a".into()), Some("b".into()));
        plan.push(BUDGET_ALERT, "k.budget.page-fast", None, Change::create(vec![]));
        plan.push(BUDGET_ALERT, "k.budget.ticket", None, Change::update(vec![field("rule")]));
        plan.push(BUDGET_ALERT, "k.budget.page-slow", None, Change::delete());
        plan.push(BUDGET_ALERT, "k.budget.page-slow", None, Change::update(vec![field("tags.team")]));
        plan.push(crate::resources::budget::BURN_ALARM, "k.budget.ticket.3d", None, Change::create(vec![]));
        assert_eq!(
            needs_administrator(&plan),
            ["budget-alert k.budget.page-fast (create)", "budget-alert k.budget.ticket (update)"]
        );
    }
}
