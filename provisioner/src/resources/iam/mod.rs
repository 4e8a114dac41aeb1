//! IAM, least privilege and visible in the plan: the instance role and profile (the AWS managed
//! ECS-for-EC2 policy, optionally SSM), the task execution role (pull from our repository, write
//! to our log group, read our secret's ARN only), and the app's task role (empty unless
//! stack.yaml adds statements).

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_iam::types::Tag;
use serde::Serialize;
use serde_json::{Value, json};

use crate::error::{AwsContext, Error, absent, gone};
use crate::reconcile::permission::{self, Permission, PolicyContext};
use crate::reconcile::step::Observed;
use crate::reconcile::{Change, Ctx, FieldDiff, Id, Plan, Step, tags};

/// The ARNs of the stack's three roles, exactly (no prefix another stack's names could match).
pub fn role_arns(c: &PolicyContext) -> Vec<String> {
    let (instance, execution, task) = names(&c.stack.name);
    [instance, execution, task].iter().map(|n| c.iam_arn(&format!("role/{n}"))).collect()
}

/// What IAM calls: only on the stack's own roles and instance profile, attaching only the
/// managed policies the stack uses, passing each role only to the service that takes it.
pub const PERMISSIONS: &[Permission] = &[
    Permission::new(
        &[
            "iam:GetRole",
            "iam:CreateRole",
            "iam:DeleteRole",
            "iam:TagRole",
            "iam:UpdateAssumeRolePolicy",
            "iam:PutRolePolicy",
            "iam:DeleteRolePolicy",
            "iam:GetRolePolicy",
            "iam:ListRolePolicies",
            "iam:ListAttachedRolePolicies",
            "iam:GetInstanceProfile",
            "iam:CreateInstanceProfile",
            "iam:DeleteInstanceProfile",
            "iam:TagInstanceProfile",
            "iam:AddRoleToInstanceProfile",
            "iam:RemoveRoleFromInstanceProfile",
        ],
        permission::Scope::Own(|c| {
            let mut arns = role_arns(c);
            arns.push(c.iam_arn(&format!("instance-profile/{}", names(&c.stack.name).0)));
            arns
        }),
    ),
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

#[derive(Debug, Clone, Default, Serialize)]
pub struct IamOutputs {
    pub instance_role_arn: Option<String>,
    pub instance_profile_name: String,
    pub instance_profile_arn: Option<String>,
    pub execution_role_arn: Option<String>,
    pub task_role_arn: Option<String>,
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
}

/// What a role must be.
#[derive(Debug, Clone, PartialEq)]
pub struct RoleSpec {
    pub name: String,
    pub trust: Value,
    pub managed: BTreeSet<String>,
    /// Inline policy name -> document.
    pub inline: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ObservedRole {
    pub arn: String,
    pub trust: Value,
    pub managed: BTreeSet<String>,
    pub inline: BTreeMap<String, Value>,
    pub tags: Vec<(String, String)>,
}

impl Observed for ObservedRole {
    fn id(&self) -> &str {
        &self.arn
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

pub fn names(stack: &str) -> (String, String, String) {
    (format!("{stack}-instance"), format!("{stack}-execution"), format!("{stack}-task"))
}

/// The three roles of a stack.
pub fn specs(stack: &stack::Stack, scope: &Scope) -> [RoleSpec; 3] {
    let (instance, execution, task) = names(&stack.name);
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
            managed: instance_managed,
            inline: BTreeMap::new(),
        },
        RoleSpec {
            name: execution,
            trust: ecs_tasks_trust(scope, &stack.region),
            managed: BTreeSet::new(),
            inline: BTreeMap::from([("execution".to_owned(), execution_policy)]),
        },
        RoleSpec {
            name: task,
            trust: ecs_tasks_trust(scope, &stack.region),
            managed: BTreeSet::new(),
            inline: task_inline,
        },
    ]
}

/// Policy documents compare as JSON values: key order and whitespace never show as a diff.
pub fn diff_role(spec: &RoleSpec, stack: &stack::Stack, observed: Option<&ObservedRole>) -> Change {
    let Some(o) = observed else {
        let mut fields = vec![FieldDiff::new("trust_policy", None, Some(spec.trust.to_string()))];
        fields.extend(spec.managed.iter().map(|m| FieldDiff::new("managed_policy", None, Some(m.clone()))));
        fields.extend(
            spec.inline.iter().map(|(n, d)| FieldDiff::new(format!("inline_policy.{n}"), None, Some(d.to_string()))),
        );
        return Change::create(fields);
    };
    let mut fields = Vec::new();
    if o.trust != spec.trust {
        fields.push(FieldDiff::new("trust_policy", Some(o.trust.to_string()), Some(spec.trust.to_string())));
    }
    fields.extend(spec.managed.difference(&o.managed).map(|m| FieldDiff::new("managed_policy", None, Some(m.clone()))));
    fields.extend(o.managed.difference(&spec.managed).map(|m| FieldDiff::new("managed_policy", Some(m.clone()), None)));
    for (name, doc) in &spec.inline {
        if o.inline.get(name) != Some(doc) {
            fields.push(FieldDiff::new(
                format!("inline_policy.{name}"),
                o.inline.get(name).map(Value::to_string),
                Some(doc.to_string()),
            ));
        }
    }
    for (name, doc) in o.inline.iter().filter(|(n, _)| !spec.inline.contains_key(*n)) {
        fields.push(FieldDiff::new(format!("inline_policy.{name}"), Some(doc.to_string()), None));
    }
    fields.extend(tags::diff(&stack.resource_tags(), &o.tags));
    Change::update(fields)
}

/// IAM returns policy documents URL-encoded (RFC 3986); this undoes it.
pub fn decode_policy(text: &str) -> Value {
    if let Ok(v) = serde_json::from_str(text) {
        return v;
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%' && i + 2 < bytes.len())
            .then(|| std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()))
            .flatten();
        if let Some(b) = escaped {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    serde_json::from_slice(&out).unwrap_or(Value::String(text.to_owned()))
}

/// A role by name, with its trust policy, attached and inline policies; refuses a foreign one.
pub async fn observe_role(ctx: &Ctx, name: &str) -> Result<Option<ObservedRole>, Error> {
    let iam = &ctx.clients.iam;
    let Some(role) = absent(iam.get_role().role_name(name).send().await.ctx("get role", name), &["NoSuchEntity"])?
    else {
        return Ok(None);
    };
    let Some(role) = role.role() else { return Ok(None) };
    let tags: Vec<(String, String)> = role.tags().iter().map(|t| (t.key().to_owned(), t.value().to_owned())).collect();
    tags::pick_owned(
        "IAM role",
        name,
        &ctx.stack.name,
        vec![(role.arn().to_owned(), tags.clone())],
        |r| r.0.clone(),
        |r| r.1.clone(),
    )?;
    let attached = iam.list_attached_role_policies().role_name(name).send().await.ctx("list policies of role", name)?;
    let managed = attached.attached_policies().iter().filter_map(|p| p.policy_arn().map(str::to_owned)).collect();
    let mut inline = BTreeMap::new();
    let listed = iam.list_role_policies().role_name(name).send().await.ctx("list inline policies of role", name)?;
    for policy in listed.policy_names() {
        let doc = iam
            .get_role_policy()
            .role_name(name)
            .policy_name(policy)
            .send()
            .await
            .ctx("get inline policy of role", name)?;
        inline.insert(policy.clone(), decode_policy(doc.policy_document()));
    }
    Ok(Some(ObservedRole {
        arn: role.arn().to_owned(),
        trust: role.assume_role_policy_document().map(decode_policy).unwrap_or(Value::Null),
        managed,
        inline,
        tags,
    }))
}

fn iam_tags(stack: &stack::Stack) -> Vec<Tag> {
    stack.resource_tags().into_iter().filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok()).collect()
}

pub async fn apply_role(
    ctx: &Ctx,
    spec: &RoleSpec,
    observed: Option<&ObservedRole>,
    change: &Change,
) -> Result<Option<String>, Error> {
    let iam = &ctx.clients.iam;
    let name = &spec.name;
    let mut arn = None;
    if observed.is_none() {
        let out = iam
            .create_role()
            .role_name(name)
            .assume_role_policy_document(spec.trust.to_string())
            .description(format!("Konnichiwa stack {}", ctx.stack.name))
            .set_tags(Some(iam_tags(&ctx.stack)))
            .send()
            .await
            .ctx("create role", name)?;
        arn = out.role().map(|r| r.arn().to_owned());
    } else if change.has("trust_policy") {
        iam.update_assume_role_policy()
            .role_name(name)
            .policy_document(spec.trust.to_string())
            .send()
            .await
            .ctx("update trust policy of", name)?;
    }
    let have_managed = observed.map(|o| o.managed.clone()).unwrap_or_default();
    for m in spec.managed.difference(&have_managed) {
        iam.attach_role_policy().role_name(name).policy_arn(m).send().await.ctx("attach policy to", name)?;
    }
    for m in have_managed.difference(&spec.managed) {
        iam.detach_role_policy().role_name(name).policy_arn(m).send().await.ctx("detach policy from", name)?;
    }
    let have_inline = observed.map(|o| o.inline.clone()).unwrap_or_default();
    for (policy, doc) in &spec.inline {
        if have_inline.get(policy) != Some(doc) {
            iam.put_role_policy()
                .role_name(name)
                .policy_name(policy)
                .policy_document(doc.to_string())
                .send()
                .await
                .ctx("put inline policy on", name)?;
        }
    }
    for policy in have_inline.keys().filter(|p| !spec.inline.contains_key(*p)) {
        iam.delete_role_policy()
            .role_name(name)
            .policy_name(policy)
            .send()
            .await
            .ctx("delete inline policy of", name)?;
    }
    if observed.is_some() && change.has_tags() {
        iam.tag_role().role_name(name).set_tags(Some(iam_tags(&ctx.stack))).send().await.ctx("tag role", name)?;
    }
    ctx.progress(format!("role {name} ready"));
    Ok(arn)
}

#[derive(Debug, Clone, PartialEq)]
struct ObservedProfile {
    arn: String,
    roles: Vec<String>,
    tags: Vec<(String, String)>,
}

impl Observed for ObservedProfile {
    fn id(&self) -> &str {
        &self.arn
    }
}

async fn observe_profile(ctx: &Ctx, name: &str) -> Result<Option<ObservedProfile>, Error> {
    let got = ctx
        .clients
        .iam
        .get_instance_profile()
        .instance_profile_name(name)
        .send()
        .await
        .ctx("get instance profile", name);
    let Some(out) = absent(got, &["NoSuchEntity"])? else { return Ok(None) };
    let Some(p) = out.instance_profile() else { return Ok(None) };
    let tags: Vec<(String, String)> = p.tags().iter().map(|t| (t.key().to_owned(), t.value().to_owned())).collect();
    let found = vec![ObservedProfile {
        arn: p.arn().to_owned(),
        roles: p.roles().iter().map(|r| r.role_name().to_owned()).collect(),
        tags,
    }];
    tags::pick_owned("instance profile", name, &ctx.stack.name, found, |p| p.arn.clone(), |p| p.tags.clone())
}

fn diff_profile(role: &str, stack: &stack::Stack, observed: Option<&ObservedProfile>) -> Change {
    let Some(p) = observed else { return Change::create(vec![FieldDiff::new("role", None, Some(role.to_owned()))]) };
    let mut fields = Vec::new();
    if p.roles != [role.to_owned()] {
        fields.push(FieldDiff::new("role", Some(p.roles.join(",")), Some(role.to_owned())));
    }
    fields.extend(tags::diff(&stack.resource_tags(), &p.tags));
    Change::update(fields)
}

async fn apply_profile(
    ctx: &Ctx,
    name: &str,
    role: &str,
    change: &Change,
    observed: Option<&ObservedProfile>,
) -> Result<Option<String>, Error> {
    let iam = &ctx.clients.iam;
    let mut created = None;
    if observed.is_none() {
        let out = iam
            .create_instance_profile()
            .instance_profile_name(name)
            .set_tags(Some(iam_tags(&ctx.stack)))
            .send()
            .await
            .ctx("create instance profile", name)?;
        created = out.instance_profile().map(|p| p.arn().to_owned());
    }
    let roles = observed.map(|p| p.roles.clone()).unwrap_or_default();
    for r in roles.iter().filter(|r| *r != role) {
        iam.remove_role_from_instance_profile()
            .instance_profile_name(name)
            .role_name(r)
            .send()
            .await
            .ctx("remove role from", name)?;
    }
    if !roles.iter().any(|r| r == role) {
        iam.add_role_to_instance_profile()
            .instance_profile_name(name)
            .role_name(role)
            .send()
            .await
            .ctx("add role to", name)?;
    }
    if observed.is_some() && change.has_tags() {
        iam.tag_instance_profile()
            .instance_profile_name(name)
            .set_tags(Some(iam_tags(&ctx.stack)))
            .send()
            .await
            .ctx("tag", name)?;
    }
    ctx.progress(format!("instance profile {name} ready"));
    Ok(created)
}

pub async fn reconcile(ctx: &Ctx, plan: &mut Plan, scope: &Scope) -> Result<IamOutputs, Error> {
    let [instance, execution, task] = specs(&ctx.stack, scope);
    let mut arns = Vec::new();
    for spec in [&instance, &execution, &task] {
        let outcome = Step::new(ctx, "iam-role", &spec.name)
            .converge(
                plan,
                async || observe_role(ctx, &spec.name).await,
                |o| diff_role(spec, &ctx.stack, o),
                async |c: &Change, o: Option<&ObservedRole>| {
                    scope.check_known()?;
                    apply_role(ctx, spec, o, c).await
                },
            )
            .await?;
        arns.push(outcome.id());
    }
    let profile_name = instance.name.clone();
    let outcome = Step::new(ctx, "instance-profile", &profile_name)
        .converge(
            plan,
            async || observe_profile(ctx, &profile_name).await,
            |o| diff_profile(&instance.name, &ctx.stack, o),
            async |c: &Change, o: Option<&ObservedProfile>| {
                apply_profile(ctx, &profile_name, &instance.name, c, o).await
            },
        )
        .await?;
    let mut arns = arns.into_iter();
    Ok(IamOutputs {
        instance_role_arn: arns.next().flatten(),
        instance_profile_name: profile_name,
        instance_profile_arn: outcome.id(),
        execution_role_arn: arns.next().flatten(),
        task_role_arn: arns.next().flatten(),
    })
}

/// Profile first (it holds the instance role), then each role's policies, then the roles.
pub async fn teardown(ctx: &Ctx, plan: &mut Plan) -> Result<(), Error> {
    let iam = &ctx.clients.iam;
    let (instance, execution, task) = names(&ctx.stack.name);
    if let Some(p) = observe_profile(ctx, &instance).await? {
        if ctx.applying() {
            for r in &p.roles {
                gone(
                    iam.remove_role_from_instance_profile()
                        .instance_profile_name(&instance)
                        .role_name(r)
                        .send()
                        .await
                        .ctx("remove role from", &instance),
                    &["NoSuchEntity"],
                )?;
            }
            gone(
                iam.delete_instance_profile()
                    .instance_profile_name(&instance)
                    .send()
                    .await
                    .ctx("delete instance profile", &instance),
                &["NoSuchEntity"],
            )?;
            ctx.progress(format!("deleted instance profile {instance}"));
        }
        plan.push("instance-profile", &instance, Some(p.arn), Change::delete());
    }
    for name in [instance, execution, task] {
        let Some(o) = observe_role(ctx, &name).await? else { continue };
        if ctx.applying() {
            for m in &o.managed {
                gone(
                    iam.detach_role_policy()
                        .role_name(&name)
                        .policy_arn(m)
                        .send()
                        .await
                        .ctx("detach policy from", &name),
                    &["NoSuchEntity"],
                )?;
            }
            for p in o.inline.keys() {
                gone(
                    iam.delete_role_policy()
                        .role_name(&name)
                        .policy_name(p)
                        .send()
                        .await
                        .ctx("delete inline policy of", &name),
                    &["NoSuchEntity"],
                )?;
            }
            gone(iam.delete_role().role_name(&name).send().await.ctx("delete role", &name), &["NoSuchEntity"])?;
            ctx.progress(format!("deleted role {name}"));
        }
        plan.push("iam-role", &name, Some(o.arn), Change::delete());
    }
    Ok(())
}

pub async fn leftovers(ctx: &Ctx) -> Result<Vec<String>, Error> {
    let (instance, execution, task) = names(&ctx.stack.name);
    let mut left = Vec::new();
    if let Some(p) = observe_profile(ctx, &instance).await? {
        left.push(format!("instance profile {}", p.arn));
    }
    for name in [instance, execution, task] {
        if let Some(o) = observe_role(ctx, &name).await? {
            left.push(format!("IAM role {}", o.arn));
        }
    }
    Ok(left)
}

#[cfg(test)]
mod tests {
    use super::*;

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
            managed: BTreeSet::new(),
            inline: BTreeMap::from([("execution".to_owned(), reformatted)]),
            tags: s.resource_tags(),
        };
        assert!(diff_role(&execution, &s, Some(&observed)).is_no_op());
        let mut extra = observed.clone();
        extra
            .inline
            .insert("admin".into(), json!({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}));
        let c = diff_role(&execution, &s, Some(&extra));
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
    fn url_encoded_documents_decode() {
        let encoded = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%5D%7D";
        assert_eq!(decode_policy(encoded), json!({"Version": "2012-10-17", "Statement": []}));
    }
}
