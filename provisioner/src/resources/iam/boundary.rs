//! The stack's permissions boundary: a managed policy, `<stack>-boundary`, that every role of the
//! stack carries and that caps what the role can do whatever policies are put on it. It grants
//! only what the stack's roles need on the stack's own resources — the ECS agent on the stack's
//! cluster, pulls from its repository, writes to its log group, the read of its API key, ECS
//! Exec's channels and Session Manager when stack.yaml turns them on, and the task role's own
//! statements from stack.yaml. The CI deploy role may change the roles' policies only while this
//! boundary is on them and may never change the boundary itself: a commit that writes
//! `{"Action": "*"}` into the task role gains nothing beyond it. An administrator writes it
//! (`ci-role`, or `up` with administrator credentials), so a change to what it allows is reviewed
//! where the administrator runs it.

use serde_json::{Value, json};

use crate::error::{AwsContext, Error, absent, gone};
use crate::reconcile::permission::{PolicyContext, boundary_name};
use crate::reconcile::step::Observed;
use crate::reconcile::{Change, Ctx, FieldDiff, tags};
use crate::resources::iam::role::{decode_policy, iam_tags};
use crate::resources::{cluster, logs};

/// IAM keeps at most five versions of a managed policy.
const MAX_VERSIONS: usize = 5;

/// The boundary's document for this stack.
pub fn document(c: &PolicyContext) -> Value {
    let stack = c.stack;
    let region = json!({ "StringEquals": { "aws:RequestedRegion": stack.region } });
    let cluster_name = cluster::name(stack);
    let log_group = c.arn("logs", &format!("log-group:{}", logs::name(stack)));
    let mut statements = vec![
        json!({ "Sid": "EcsAgentOnTheCluster", "Effect": "Allow",
                "Action": ["ecs:RegisterContainerInstance", "ecs:DeregisterContainerInstance",
                           "ecs:SubmitContainerStateChange", "ecs:SubmitTaskStateChange",
                           "ecs:SubmitAttachmentStateChanges"],
                "Resource": cluster::cluster_arn(c) }),
        json!({ "Sid": "EcsAgentOnItsInstances", "Effect": "Allow",
                "Action": ["ecs:Poll", "ecs:StartTelemetrySession", "ecs:UpdateContainerInstancesState"],
                "Resource": c.arn("ecs", &format!("container-instance/{cluster_name}/*")) }),
        json!({ "Sid": "EcsAgentTagsAndListings", "Effect": "Allow",
                "Action": ["ecs:ListTagsForResource", "ecs:TagResource"],
                "Resource": [c.arn("ecs", &format!("container-instance/{cluster_name}/*")),
                             c.arn("ecs", &format!("task/{cluster_name}/*"))] }),
        // These take no resource.
        json!({ "Sid": "NoResourceLevel", "Effect": "Allow",
                "Action": ["ecs:DiscoverPollEndpoint", "ec2:DescribeTags", "ecr:GetAuthorizationToken"],
                "Resource": "*", "Condition": region }),
        json!({ "Sid": "PullOurImages", "Effect": "Allow",
                "Action": ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                "Resource": c.arn("ecr", &format!("repository/{}", stack.registry.repository)) }),
        json!({ "Sid": "WriteOurLogs", "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": [log_group.clone(), format!("{log_group}:*")] }),
        json!({ "Sid": "ReadOurApiKey", "Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
                "Resource": c.arn("secretsmanager", &format!("secret:{}-??????", stack.secret.name)) }),
    ];
    if stack.service.exec || stack.capacity.ssm_access {
        statements.push(json!({ "Sid": "SessionChannels", "Effect": "Allow",
            "Action": ["ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel",
                       "ssmmessages:OpenControlChannel", "ssmmessages:OpenDataChannel"],
            "Resource": "*", "Condition": region }));
    }
    if stack.capacity.ssm_access {
        // AmazonSSMManagedInstanceCore's actions (they take no resource, or the instance's own).
        statements.push(json!({ "Sid": "SsmManagedInstance", "Effect": "Allow",
            "Action": ["ssm:DescribeAssociation", "ssm:GetDeployablePatchSnapshotForInstance", "ssm:GetDocument",
                       "ssm:DescribeDocument", "ssm:GetManifest", "ssm:GetParameter", "ssm:GetParameters",
                       "ssm:ListAssociations", "ssm:ListInstanceAssociations", "ssm:PutInventory",
                       "ssm:PutComplianceItems", "ssm:PutConfigurePackageResult", "ssm:UpdateAssociationStatus",
                       "ssm:UpdateInstanceAssociationStatus", "ssm:UpdateInstanceInformation",
                       "ec2messages:AcknowledgeMessage", "ec2messages:DeleteMessage", "ec2messages:FailMessage",
                       "ec2messages:GetEndpoint", "ec2messages:GetMessages", "ec2messages:SendReply"],
            "Resource": "*", "Condition": region }));
    }
    // The app's own statements, as stack.yaml gives them: the administrator who writes the
    // boundary approves them; the deploy role cannot widen them.
    statements.extend(stack.iam.task_role_statements.iter().cloned());
    json!({ "Version": "2012-10-17", "Statement": statements })
}

/// The boundary as IAM holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct ObservedBoundary {
    pub arn: String,
    pub document: Value,
    pub default_version: String,
    pub tags: Vec<(String, String)>,
}

impl Observed for ObservedBoundary {
    fn id(&self) -> &str {
        &self.arn
    }
}

pub fn diff(want: &Value, stack: &stack::Stack, observed: Option<&ObservedBoundary>) -> Change {
    let Some(o) = observed else {
        return Change::create(vec![FieldDiff::new("document", None, Some(want.to_string()))]);
    };
    let mut fields = Vec::new();
    if &o.document != want {
        fields.push(FieldDiff::new("document", Some(o.document.to_string()), Some(want.to_string())));
    }
    fields.extend(tags::diff(&stack.resource_tags(), &o.tags));
    Change::update(fields)
}

pub async fn observe(ctx: &Ctx, arn: &str) -> Result<Option<ObservedBoundary>, Error> {
    let iam = &ctx.clients.iam;
    let got = absent(iam.get_policy().policy_arn(arn).send().await.ctx("get policy", arn), &["NoSuchEntity"])?;
    let Some(policy) = got.as_ref().and_then(|g| g.policy()) else { return Ok(None) };
    let tags: Vec<(String, String)> =
        policy.tags().iter().map(|t| (t.key().to_owned(), t.value().to_owned())).collect();
    let name = boundary_name(&ctx.stack.name);
    tags::pick_owned(
        "IAM policy",
        &name,
        &ctx.stack.name,
        vec![(arn.to_owned(), tags.clone())],
        |p| p.0.clone(),
        |p| p.1.clone(),
    )?;
    let version = policy.default_version_id().unwrap_or("v1").to_owned();
    let got = iam.get_policy_version().policy_arn(arn).version_id(&version).send().await.ctx("read policy", arn)?;
    let document = got.policy_version().and_then(|v| v.document()).map(decode_policy).unwrap_or(Value::Null);
    Ok(Some(ObservedBoundary { arn: arn.to_owned(), document, default_version: version, tags }))
}

/// Creates the boundary, or makes a new default version of its document (dropping the oldest
/// when IAM's five are used); returns its ARN when it created it.
pub async fn apply(
    ctx: &Ctx,
    want: &Value,
    change: &Change,
    observed: Option<&ObservedBoundary>,
) -> Result<Option<String>, Error> {
    let iam = &ctx.clients.iam;
    let name = boundary_name(&ctx.stack.name);
    let Some(o) = observed else {
        let out = iam
            .create_policy()
            .policy_name(&name)
            .policy_document(want.to_string())
            .description(format!("The most any role of the Konnichiwa stack {} may do", ctx.stack.name))
            .set_tags(Some(iam_tags(&ctx.stack)))
            .send()
            .await
            .ctx("create policy", &name)?;
        ctx.progress(format!("permissions boundary {name} ready"));
        return Ok(out.policy().and_then(|p| p.arn()).map(str::to_owned));
    };
    if change.has("document") {
        let old = old_versions(ctx, &o.arn).await?;
        if let (true, Some(oldest)) = (old.len() + 1 >= MAX_VERSIONS, old.first()) {
            delete_version(ctx, &o.arn, oldest).await?;
        }
        iam.create_policy_version()
            .policy_arn(&o.arn)
            .policy_document(want.to_string())
            .set_as_default(true)
            .send()
            .await
            .ctx("write a new version of policy", &name)?;
    }
    if change.has_tags() {
        iam.tag_policy()
            .policy_arn(&o.arn)
            .set_tags(Some(iam_tags(&ctx.stack)))
            .send()
            .await
            .ctx("tag policy", &name)?;
    }
    ctx.progress(format!("permissions boundary {name} ready"));
    Ok(None)
}

/// The versions that are not the default, oldest first.
async fn old_versions(ctx: &Ctx, arn: &str) -> Result<Vec<String>, Error> {
    let out = ctx.clients.iam.list_policy_versions().policy_arn(arn).send().await.ctx("list versions of", arn)?;
    let mut old: Vec<(aws_smithy_types::DateTime, String)> = out
        .versions()
        .iter()
        .filter(|v| !v.is_default_version())
        .filter_map(|v| Some((v.create_date().copied()?, v.version_id()?.to_owned())))
        .collect();
    old.sort_by_key(|v| v.0);
    Ok(old.into_iter().map(|(_, v)| v).collect())
}

async fn delete_version(ctx: &Ctx, arn: &str, version: &str) -> Result<(), Error> {
    let r = ctx.clients.iam.delete_policy_version().policy_arn(arn).version_id(version).send().await;
    gone(r.ctx("delete a version of", arn), &["NoSuchEntity"])
}

/// Deletes the boundary: its old versions first (IAM refuses otherwise). The roles that carried
/// it must be gone.
pub async fn delete(ctx: &Ctx, arn: &str) -> Result<(), Error> {
    for version in old_versions(ctx, arn).await? {
        delete_version(ctx, arn, &version).await?;
    }
    let r = ctx.clients.iam.delete_policy().policy_arn(arn).send().await;
    gone(r.ctx("delete policy", arn), &["NoSuchEntity"])
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::reconcile::permission::test_context as ctx;

    #[test]
    fn the_boundary_reaches_the_stacks_resources_only() {
        let mut s = crate::resources::test_stack();
        let doc = document(&ctx(&s));
        let text = doc.to_string();
        assert!(text.contains("cluster/konnichiwa\""), "{text}");
        assert!(text.contains("secret:konnichiwa/api-key-??????"), "{text}");
        assert!(!text.contains("iam:") && !text.contains("ssm:") && !text.contains("ssmmessages:"), "{text}");
        for st in doc["Statement"].as_array().into_iter().flatten() {
            let star = st["Resource"] == "*";
            assert!(!star || st["Sid"] == "NoResourceLevel", "only actions without resources get *: {st}");
        }
        s.service.exec = true;
        assert!(document(&ctx(&s)).to_string().contains("ssmmessages:OpenDataChannel"));
        s.iam.task_role_statements =
            vec![json!({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"})];
        assert!(document(&ctx(&s)).to_string().contains("s3:GetObject"), "the app's statements, as approved");
    }
}
