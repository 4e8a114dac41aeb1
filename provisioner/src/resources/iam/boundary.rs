//! The stack's permissions boundary: a managed policy, `<stack>-boundary`, that every role of the
//! stack carries and that caps what the role can do whatever policies are put on it. It grants
//! only what the stack's roles need on the stack's own resources — the ECS agent on the stack's
//! cluster, pulls from its repository, writes to its log group, the read of its API key, ECS
//! Exec's channels and Session Manager when stack.yaml turns them on, ECS's traffic shifts on the
//! stack's load balancer for a deployment strategy that shifts traffic, and the task role's own
//! statements from stack.yaml. The CI deploy role may change the roles' policies only while this
//! boundary is on them and may never change the boundary itself: a commit that writes
//! `{"Action": "*"}` into the task role gains nothing beyond it. An administrator writes it
//! (`ci-role`, or `up` with administrator credentials), so a change to what it allows is reviewed
//! where the administrator runs it.

use serde_json::{Value, json};

use crate::error::Error;
use crate::reconcile::permission::{PolicyContext, boundary_name};
use crate::reconcile::{Change, Ctx};
use crate::resources::iam::managed_policy;
use crate::resources::{cluster, load_balancer, logs};

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
                "Action": no_resource_level(stack), "Resource": "*", "Condition": region }),
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
    if stack.service.deployment.strategy.shifts_traffic() {
        statements.extend(traffic_shifts(c));
    }
    // The app's own statements, as stack.yaml gives them: the administrator who writes the
    // boundary approves them; the deploy role cannot widen them.
    statements.extend(stack.iam.task_role_statements.iter().cloned());
    json!({ "Version": "2012-10-17", "Statement": statements })
}

/// The actions the roles call that take no resource (AWS's reads of listeners, rules and target
/// groups among them when ECS shifts traffic).
fn no_resource_level(stack: &stack::Stack) -> Vec<&'static str> {
    let mut actions = vec!["ecs:DiscoverPollEndpoint", "ec2:DescribeTags", "ecr:GetAuthorizationToken"];
    if stack.service.deployment.strategy.shifts_traffic() {
        actions.extend(TRAFFIC_SHIFT_READS);
    }
    actions
}

/// AmazonECSInfrastructureRolePolicyForLoadBalancers' reads (they take no resource).
const TRAFFIC_SHIFT_READS: [&str; 4] = [
    "elasticloadbalancing:DescribeListeners",
    "elasticloadbalancing:DescribeRules",
    "elasticloadbalancing:DescribeTargetGroups",
    "elasticloadbalancing:DescribeTargetHealth",
];

/// The rest of AmazonECSInfrastructureRolePolicyForLoadBalancers, which grants it on every load
/// balancer of the account: on the stack's only — its load balancer's listeners and their rules
/// by name, and the target groups that carry the stack's tag (the alternate one among them).
/// Both for the ECS role alone (`aws:PrincipalArn`): the boundary bounds every role of the stack,
/// and the deploy role writes the task and instance roles' policies, so without it those roles
/// could be given the power to re-route the load balancer.
fn traffic_shifts(c: &PolicyContext) -> Vec<Value> {
    let lb = load_balancer::lb_name(c.stack);
    let role = c.iam_arn(&format!("role/{}", super::names::load_balancer_role(c.stack)));
    let only_ecs = json!({ "ArnEquals": { "aws:PrincipalArn": role } });
    let ours = json!({
        "ArnEquals": { "aws:PrincipalArn": role },
        "StringEquals": { format!("aws:ResourceTag/{}", stack::OWNERSHIP_TAG): c.stack.name },
    });
    vec![
        // ModifyListener takes the listener, ModifyRule the rule: one statement holds both.
        json!({ "Sid": "EcsShiftsOurListeners", "Effect": "Allow",
                "Action": ["elasticloadbalancing:ModifyListener", "elasticloadbalancing:ModifyRule"],
                "Resource": [c.arn("elasticloadbalancing", &format!("listener/app/{lb}/*")),
                             c.arn("elasticloadbalancing", &format!("listener-rule/app/{lb}/*"))],
                "Condition": only_ecs }),
        json!({ "Sid": "EcsMovesOurTargets", "Effect": "Allow",
                "Action": ["elasticloadbalancing:RegisterTargets", "elasticloadbalancing:DeregisterTargets"],
                "Resource": c.arn("elasticloadbalancing", "targetgroup/*"), "Condition": ours }),
    ]
}

/// The boundary as IAM holds it.
pub type ObservedBoundary = managed_policy::ObservedPolicy;

pub fn diff(want: &Value, stack: &stack::Stack, observed: Option<&ObservedBoundary>) -> Change {
    managed_policy::diff(want, stack, observed)
}

pub async fn observe(ctx: &Ctx, arn: &str) -> Result<Option<ObservedBoundary>, Error> {
    managed_policy::observe(ctx, arn, &boundary_name(&ctx.stack.name)).await
}

/// Creates the boundary, or makes a new default version of its document; returns its ARN when
/// it created it.
pub async fn apply(
    ctx: &Ctx,
    want: &Value,
    change: &Change,
    observed: Option<&ObservedBoundary>,
) -> Result<Option<String>, Error> {
    let name = boundary_name(&ctx.stack.name);
    let description = format!("The most any role of the Konnichiwa stack {} may do", ctx.stack.name);
    let arn = managed_policy::apply(ctx, &name, &description, want, change, observed).await?;
    ctx.progress(format!("permissions boundary {name} ready"));
    Ok(arn)
}

/// Deletes the boundary. The roles that carried it must be gone.
pub async fn delete(ctx: &Ctx, arn: &str) -> Result<(), Error> {
    managed_policy::delete(ctx, arn).await
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::reconcile::permission::test_context as ctx;

    #[test]
    fn the_boundarys_own_statements_leave_the_task_role_its_budget() {
        // The longest names validation allows, and every option that adds a statement.
        let mut s = crate::resources::test_stack();
        s.name = "abcdefghij-klmnopqrs".into();
        s.secret.name = "s".repeat(stack::limits::SECRET_NAME.max);
        s.registry.repository = "r".repeat(stack::limits::ECR_REPOSITORY_NAME.max);
        s.service.exec = true;
        s.capacity.ssm_access = true;
        s.iam.task_role_statements.clear();
        let own = stack::limits::policy_size(&document(&ctx(&s)));
        assert!(
            own <= stack::limits::BOUNDARY_OWN_CHARACTERS,
            "the boundary's own statements take {own} characters: raise stack::limits::BOUNDARY_OWN_CHARACTERS"
        );
        s.service.deployment.strategy = stack::Strategy::Canary;
        let shifting = stack::limits::policy_size(&document(&ctx(&s)));
        assert!(
            shifting - own <= stack::limits::BOUNDARY_TRAFFIC_SHIFT_CHARACTERS,
            "ECS's traffic shifts take {} characters of the boundary: raise \
             stack::limits::BOUNDARY_TRAFFIC_SHIFT_CHARACTERS",
            shifting - own
        );
        eprintln!("boundary, largest stack: {own} characters; {shifting} with a strategy that shifts traffic");
    }

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

    #[test]
    fn a_strategy_that_shifts_traffic_reaches_the_stacks_load_balancer_only() {
        let mut s = crate::resources::test_stack();
        assert!(!document(&ctx(&s)).to_string().contains("elasticloadbalancing:"), "rolling: nothing of ELB");
        s.service.deployment.strategy = stack::Strategy::Canary;
        let doc = document(&ctx(&s));
        let statements = doc["Statement"].as_array().expect("statements");
        let by_sid = |sid: &str| statements.iter().find(|st| st["Sid"] == sid).unwrap_or_else(|| panic!("{sid}"));
        let elb = "arn:aws:elasticloadbalancing:ap-northeast-1:123456789012";
        assert_eq!(
            by_sid("EcsShiftsOurListeners")["Resource"],
            json!([
                format!("{elb}:listener/app/konnichiwa-alb/*"),
                format!("{elb}:listener-rule/app/konnichiwa-alb/*")
            ])
        );
        let targets = by_sid("EcsMovesOurTargets");
        assert_eq!(targets["Condition"]["StringEquals"]["aws:ResourceTag/konnichiwa:stack"], "konnichiwa");
        let reads = by_sid("NoResourceLevel")["Action"].to_string();
        // Every action of the managed policy ECS's role carries is within the boundary.
        for action in TRAFFIC_SHIFT_READS {
            assert!(reads.contains(action), "{action}: {reads}");
        }
        for action in ["ModifyListener", "ModifyRule", "RegisterTargets", "DeregisterTargets"] {
            let action = format!("elasticloadbalancing:{action}");
            assert!(statements.iter().any(|st| st["Action"].to_string().contains(&action)), "{action}");
        }
    }
}
