//! IAM, least privilege and visible in the plan: the stack's permissions boundary (`boundary`),
//! the instance role and profile (the AWS managed ECS-for-EC2 policy, optionally SSM), the task
//! execution role (pull from our repository, write to our log group, read our secret's ARN only),
//! the app's task role (empty unless stack.yaml adds statements) and, for a deployment strategy
//! that shifts traffic, the role ECS assumes to move it between the target groups — every role
//! bounded.
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
pub use names::{all_roles, instance_profile, load_balancer_role};
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

/// Whether the stack has the load balancer role: ECS shifts traffic between two target groups.
pub fn shifts_traffic(stack: &stack::Stack) -> bool {
    stack.service.deployment.strategy.shifts_traffic()
}

/// The names of the roles the stack has, in the plan's order.
fn wanted_roles(stack: &stack::Stack) -> Vec<String> {
    let (instance, execution, task) = names(stack);
    let mut wanted = vec![instance, execution, task];
    wanted.extend(shifts_traffic(stack).then(|| load_balancer_role(stack)));
    wanted
}

/// The ARNs of the stack's roles, exactly (no prefix another stack's names could match).
pub fn role_arns(c: &PolicyContext) -> Vec<String> {
    wanted_roles(c.stack).iter().map(|n| c.iam_arn(&format!("role/{n}"))).collect()
}

/// The managed policies the stack's roles carry: the ones the deploy role may attach.
fn managed_policies(c: &PolicyContext) -> Vec<String> {
    let mut policies = vec![ECS_FOR_EC2_POLICY, SSM_CORE_POLICY];
    if shifts_traffic(c.stack) {
        policies.push(ECS_LOAD_BALANCERS_POLICY);
    }
    policies.iter().map(|p| p.replace("arn:aws:", &format!("arn:{}:", c.partition))).collect()
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
            arns.push(c.iam_arn(&format!("instance-profile/{}", instance_profile(c.stack))));
            arns.push(c.boundary_arn());
            arns
        }),
    ),
    Permission::new(&["iam:PutRolePolicy", "iam:DeleteRolePolicy"], permission::Scope::Bounded { roles: role_arns }),
    Permission::new(
        &["iam:AttachRolePolicy", "iam:DetachRolePolicy"],
        permission::Scope::AttachManaged { roles: role_arns, policies: managed_policies },
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
            roles: |c| vec![c.iam_arn(&format!("role/{}", names(c.stack).0))],
            service: "ec2.amazonaws.com",
        },
    ),
    Permission::new(
        &["iam:PassRole"],
        permission::Scope::PassRole {
            roles: |c| {
                let (_, execution, task) = names(c.stack);
                vec![c.iam_arn(&format!("role/{execution}")), c.iam_arn(&format!("role/{task}"))]
            },
            service: "ecs-tasks.amazonaws.com",
        },
    ),
    // The service's load balancer settings name it (`advancedConfiguration.roleArn`).
    Permission::new(
        &["iam:PassRole"],
        permission::Scope::PassRole {
            roles: |c| vec![c.iam_arn(&format!("role/{}", load_balancer_role(c.stack)))],
            service: "ecs.amazonaws.com",
        },
    )
    .when(shifts_traffic),
];

pub const ECS_FOR_EC2_POLICY: &str = "arn:aws:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role";
pub const SSM_CORE_POLICY: &str = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore";
/// What ECS needs to move traffic between two target groups: read the listeners, rules and target
/// groups, modify the listener and its rules, register and deregister targets.
pub const ECS_LOAD_BALANCERS_POLICY: &str = "arn:aws:iam::aws:policy/AmazonECSInfrastructureRolePolicyForLoadBalancers";

#[derive(Debug, Clone, Serialize)]
pub struct IamOutputs {
    pub boundary_arn: Id,
    pub instance_role_arn: Id,
    pub instance_profile_name: String,
    pub instance_profile_arn: Id,
    pub execution_role_arn: Id,
    pub task_role_arn: Id,
    /// The role ECS assumes to shift traffic between the target groups (the ECS service's
    /// `loadBalancers[].advancedConfiguration.roleArn`); None for a `rolling` stack.
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

/// A role's trust of `service`, with no condition. EC2 is not documented to send
/// `aws:SourceAccount` when it hands an instance its profile's credentials, nor ECS when it
/// assumes the load balancer role (AWS's trust policy for it has none), so none is added: one
/// the service does not send would leave the role unusable (an accepted scanner finding; see
/// README).
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
    role::locate(ctx, &names(&ctx.stack).1).await
}

/// The stack's roles, each bounded by the stack's boundary.
#[derive(Debug, Clone)]
pub struct RoleSpecs {
    pub instance: RoleSpec,
    pub execution: RoleSpec,
    pub task: RoleSpec,
    /// The role ECS assumes to shift traffic between the target groups; only when the
    /// deployment strategy does (`shifts_traffic`).
    pub load_balancer: Option<RoleSpec>,
}

impl RoleSpecs {
    /// Every role the stack has, in the plan's order.
    pub fn all(&self) -> impl Iterator<Item = &RoleSpec> {
        [&self.instance, &self.execution, &self.task].into_iter().chain(self.load_balancer.as_ref())
    }
}

/// The stack's roles, each bounded by the stack's boundary.
pub fn specs(stack: &stack::Stack, scope: &Scope) -> RoleSpecs {
    let (instance, execution, task) = names(stack);
    let boundary = Some(scope.boundary_arn(stack));
    let mut instance_managed = BTreeSet::from([ECS_FOR_EC2_POLICY.to_owned()]);
    if stack.capacity.ssm_access {
        instance_managed.insert(SSM_CORE_POLICY.to_owned());
    }
    RoleSpecs {
        instance: RoleSpec {
            name: instance,
            trust: trust("ec2.amazonaws.com"),
            boundary: boundary.clone(),
            managed: instance_managed,
            inline: BTreeMap::new(),
        },
        execution: RoleSpec {
            name: execution,
            trust: ecs_tasks_trust(scope, &stack.region),
            boundary: boundary.clone(),
            managed: BTreeSet::new(),
            inline: BTreeMap::from([("execution".to_owned(), execution_policy(scope))]),
        },
        task: RoleSpec {
            name: task,
            trust: ecs_tasks_trust(scope, &stack.region),
            boundary: boundary.clone(),
            managed: BTreeSet::new(),
            inline: task_policies(stack),
        },
        load_balancer: shifts_traffic(stack).then(|| RoleSpec {
            name: load_balancer_role(stack),
            trust: trust("ecs.amazonaws.com"),
            boundary,
            managed: BTreeSet::from([ECS_LOAD_BALANCERS_POLICY.to_owned()]),
            inline: BTreeMap::new(),
        }),
    }
}

/// The execution role's one inline policy: log in to ECR, pull our images, write our logs, read
/// our API key.
fn execution_policy(scope: &Scope) -> Value {
    json!({
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
    })
}

/// The task role's inline policies: the app's statements from stack.yaml, and ECS Exec's
/// channels when it is on.
fn task_policies(stack: &stack::Stack) -> BTreeMap<String, Value> {
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
    task_inline
}

/// What IAM has of the stack (boundary, roles, profile), read by name before the ARNs the roles
/// are scoped to are known: the engine reads it at the start, at once with everything else.
#[derive(Debug, Default)]
pub struct Seen {
    boundary: Option<boundary::ObservedBoundary>,
    /// Every role of ours found among `all_roles`, by name (wanted by the stack or not).
    roles: BTreeMap<String, ObservedRole>,
    profile: Option<profile::ObservedProfile>,
}

/// Reads the boundary, every role the kind may own and the profile at once.
pub async fn see(ctx: &Ctx) -> Result<Seen, Error> {
    // The boundary's ARN names the account; the roles and the profile are read by name meanwhile.
    let boundary = async {
        let boundary_arn = boundary_arn_of(&ctx.stack, &ctx.clients.identity().await?);
        boundary::observe(ctx, &boundary_arn).await
    };
    let role_names = all_roles(&ctx.stack);
    let roles = futures_util::future::try_join_all(
        role_names
            .iter()
            .map(|name| async move { Ok::<_, Error>(observe_role(ctx, name).await?.map(|o| (name.clone(), o))) }),
    );
    let profile_name = instance_profile(&ctx.stack);
    let (boundary, roles, profile) = tokio::try_join!(boundary, roles, profile::observe(ctx, &profile_name))?;
    Ok(Seen { boundary, roles: roles.into_iter().flatten().collect(), profile })
}

/// The boundary, the stack's roles and the instance profile (`part` of each role: `ci-role` makes
/// the identity half, `up` all of it), from what `see` read. A role of ours the stack no longer
/// has (the load balancer role of a stack back on `rolling`) is deleted.
pub async fn reconcile(ctx: &Ctx, plan: &mut Plan, scope: &Scope, part: Part, seen: Seen) -> Result<IamOutputs, Error> {
    let Seen { boundary: seen_boundary, roles: mut seen_roles, profile: seen_profile } = seen;
    let boundary_arn = converge_boundary(ctx, plan, scope, seen_boundary).await?;
    let specs = specs(&ctx.stack, scope);
    let wanted: Vec<(&RoleSpec, Option<ObservedRole>)> =
        specs.all().map(|spec| (spec, seen_roles.remove(&spec.name))).collect();
    let mut arns = converge_roles(ctx, plan, scope, part, wanted).await?;
    retire_roles(ctx, plan, seen_roles).await?;
    let profile_name = instance_profile(&ctx.stack);
    let outcome = Step::new(ctx, PROFILE_KIND, &profile_name)
        .converge_observed(
            plan,
            seen_profile,
            async || profile::observe(ctx, &profile_name).await,
            |o| profile::diff(&specs.instance.name, &ctx.stack, o),
            async |c: &Change, o: Option<&profile::ObservedProfile>| {
                profile::apply(ctx, &profile_name, &specs.instance.name, c, o).await
            },
        )
        .await?;
    let mut arn_of = |spec: &RoleSpec| arns.remove(&spec.name).expect("every wanted role converged");
    Ok(IamOutputs {
        boundary_arn,
        instance_role_arn: arn_of(&specs.instance),
        instance_profile_arn: outcome.id_or(|| format!("instance profile {profile_name}")),
        instance_profile_name: profile_name,
        execution_role_arn: arn_of(&specs.execution),
        task_role_arn: arn_of(&specs.task),
        load_balancer_role_arn: specs.load_balancer.as_ref().map(arn_of),
    })
}

/// The permissions boundary, made or brought up to date first (every role names it); its ARN.
async fn converge_boundary(
    ctx: &Ctx,
    plan: &mut Plan,
    scope: &Scope,
    seen: Option<boundary::ObservedBoundary>,
) -> Result<Id, Error> {
    let boundary_arn = scope.boundary_arn(&ctx.stack);
    let want = boundary::document(&scope.policy_context(&ctx.stack));
    let name = boundary_name(&ctx.stack.name);
    let bounded = Step::new(ctx, BOUNDARY_KIND, &name)
        .converge_observed(
            plan,
            seen,
            async || boundary::observe(ctx, &boundary_arn).await,
            |o| boundary::diff(&want, &ctx.stack, o),
            async |c: &Change, o: Option<&boundary::ObservedBoundary>| boundary::apply(ctx, &want, c, o).await,
        )
        .await?;
    Ok(bounded.id_or(|| format!("permissions boundary {name}")))
}

/// The wanted roles at once (each names the boundary, made first), their rows in this order; the
/// ARN of each by name.
async fn converge_roles(
    ctx: &Ctx,
    plan: &mut Plan,
    scope: &Scope,
    part: Part,
    roles: Vec<(&RoleSpec, Option<ObservedRole>)>,
) -> Result<BTreeMap<String, Id>, Error> {
    let converged = futures_util::future::try_join_all(roles.into_iter().map(|(spec, seen)| async move {
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
        Ok::<_, Error>((rows, spec.name.clone(), outcome.id_or(|| format!("role {}", spec.name))))
    }))
    .await?;
    let mut arns = BTreeMap::new();
    for (rows, name, arn) in converged {
        plan.extend(rows);
        arns.insert(name, arn);
    }
    Ok(arns)
}

/// Deletes the roles of ours the stack no longer has. The plan shows each as a delete, which
/// only an administrator may make (`needs_administrator`): the deploy role's `up` stops before.
async fn retire_roles(ctx: &Ctx, plan: &mut Plan, unwanted: BTreeMap<String, ObservedRole>) -> Result<(), Error> {
    for (name, o) in unwanted {
        if ctx.applying() {
            role::delete_role(ctx, &o, &name).await?;
            ctx.progress(format!("deleted role {name}: the stack no longer uses it"));
        }
        let mut change = Change::delete();
        change.reason = Some("the stack no longer uses it".into());
        plan.push(ROLE_KIND, &name, Some(o.arn), change);
    }
    Ok(())
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

/// The boundary, the stack's roles, the instance profile, and the CI deploy role and its
/// policies (`ci-role`).
fn derived_names(stack: &stack::Stack) -> Vec<(Noun, String)> {
    std::iter::once((BOUNDARY_KIND, crate::reconcile::permission::boundary_name(&stack.name)))
        .chain(wanted_roles(stack).into_iter().map(|role| (ROLE_KIND, role)))
        .chain([
            (PROFILE_KIND, instance_profile(stack)),
            (ROLE_KIND, crate::resources::iam::deploy_role::role_name(&stack.name)),
        ])
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
    let instance = instance_profile(&ctx.stack);
    let Seen { boundary, mut roles, profile } = see(ctx).await?;
    if let Some(p) = profile {
        if ctx.applying() {
            profile::delete(ctx, &p, &instance).await?;
            ctx.progress(format!("deleted instance profile {instance}"));
        }
        plan.push(PROFILE_KIND, &instance, Some(p.arn), Change::delete());
    }
    // The roles at once, now that the profile no longer holds one; rows in this order.
    let present = all_roles(&ctx.stack).into_iter().filter_map(|name| roles.remove(&name).map(|o| (name, o)));
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
    let Seen { boundary, mut roles, profile } = see(ctx).await?;
    let mut left: Vec<String> = profile.map(|p| format!("instance profile {}", p.arn)).into_iter().collect();
    let in_order = all_roles(&ctx.stack).into_iter().filter_map(|name| roles.remove(&name));
    left.extend(in_order.map(|o| format!("IAM role {}", o.arn)));
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
        let RoleSpecs { instance, execution, task, load_balancer } = specs(&s, &scope());
        assert!(load_balancer.is_none(), "a rolling stack has no load balancer role");
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
        let execution = specs(&s, &scope()).execution;
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
        let RoleSpecs { instance, execution, task, .. } = specs(&s, &scope());
        for role in [&execution, &task] {
            let c = &role.trust["Statement"][0]["Condition"];
            assert_eq!(c["StringEquals"]["aws:SourceAccount"], "123456789012", "{}", role.name);
            assert_eq!(c["ArnLike"]["aws:SourceArn"], "arn:aws:ecs:ap-northeast-1:123456789012:*");
        }
        assert!(instance.trust["Statement"][0].get("Condition").is_none(), "EC2 sends no source account");
    }

    fn shifting(strategy: stack::Strategy) -> stack::Stack {
        let mut s = crate::resources::test_stack();
        s.service.deployment.strategy = strategy;
        s
    }

    #[test]
    fn only_a_strategy_that_shifts_traffic_has_the_bounded_load_balancer_role() {
        assert!(specs(&shifting(stack::Strategy::Rolling), &scope()).load_balancer.is_none());
        for strategy in [stack::Strategy::Canary, stack::Strategy::Linear, stack::Strategy::BlueGreen] {
            let all = specs(&shifting(strategy), &scope());
            let role = all.load_balancer.as_ref().expect("the load balancer role");
            assert_eq!(role.name, "konnichiwa-ecs-lb");
            assert_eq!(role.managed, BTreeSet::from([ECS_LOAD_BALANCERS_POLICY.to_owned()]));
            assert!(role.inline.is_empty());
            assert_eq!(role.boundary.as_deref(), Some("arn:aws:iam::123456789012:policy/konnichiwa-boundary"));
            let statement = &role.trust["Statement"][0];
            assert_eq!(statement["Principal"]["Service"], "ecs.amazonaws.com");
            assert_eq!(statement["Action"], "sts:AssumeRole");
            assert!(statement.get("Condition").is_none(), "AWS documents no source condition ECS sends");
            assert_eq!(all.all().map(|r| r.name.as_str()).collect::<Vec<_>>().last(), Some(&"konnichiwa-ecs-lb"));
        }
    }

    #[test]
    fn the_deploy_role_passes_the_load_balancer_role_to_ecs_only_and_attaches_only_its_policy() {
        use crate::reconcile::permission::{statements, test_context};
        let render = |s: &stack::Stack| -> Vec<Value> {
            let c = test_context(s);
            PERMISSIONS.iter().flat_map(|p| statements(&c, "", p)).collect()
        };
        let arn = "arn:aws:iam::123456789012:role/konnichiwa-ecs-lb";
        let rolling = render(&shifting(stack::Strategy::Rolling));
        assert!(!serde_json::to_string(&rolling).expect("json").contains("ecs-lb"), "{rolling:?}");
        let canary = render(&shifting(stack::Strategy::Canary));
        let passes: Vec<&Value> = canary.iter().filter(|st| st["Action"] == json!(["iam:PassRole"])).collect();
        let to_ecs = passes.iter().find(|st| st["Resource"] == json!([arn])).expect("PassRole of the role");
        assert_eq!(to_ecs["Condition"], json!({ "StringEquals": { "iam:PassedToService": "ecs.amazonaws.com" } }));
        assert!(
            passes.iter().filter(|st| st["Resource"].to_string().contains("ecs-lb")).count() == 1,
            "passed to no other service: {passes:?}"
        );
        let attach = canary.iter().find(|st| st["Action"][0] == "iam:AttachRolePolicy").expect("attach");
        assert!(attach["Resource"].as_array().expect("roles").contains(&json!(arn)));
        let policies = attach["Condition"]["ArnEquals"]["iam:PolicyARN"].as_array().expect("policies");
        assert!(policies.contains(&json!(ECS_LOAD_BALANCERS_POLICY)), "{policies:?}");
        let reads = canary.iter().find(|st| st["Action"][0] == "iam:GetRole").expect("reads");
        assert!(reads["Resource"].as_array().expect("arns").contains(&json!(arn)));
    }

    #[test]
    fn a_stack_back_on_rolling_needs_an_administrator_to_delete_the_role() {
        let mut plan = Plan::default();
        plan.push(ROLE_KIND, "k-ecs-lb", Some("arn:role".into()), Change::delete());
        assert_eq!(needs_administrator(&plan), ["iam-role k-ecs-lb (delete)"]);
        let names = |s: &stack::Stack| derived_names(s).into_iter().map(|(_, n)| n).collect::<Vec<_>>();
        assert!(!names(&shifting(stack::Strategy::Rolling)).contains(&"konnichiwa-ecs-lb".to_owned()));
        assert!(names(&shifting(stack::Strategy::Linear)).contains(&"konnichiwa-ecs-lb".to_owned()));
        assert!(
            all_roles(&shifting(stack::Strategy::Rolling)).contains(&"konnichiwa-ecs-lb".to_owned()),
            "down looks for it either way"
        );
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
