//! The names of the CI deploy role and its policies, what it is denied outright, and how its
//! permissions are grouped into policies: what the stack's kinds (which scope their resources
//! to it), the pre-flight checks and `ci-role` (which makes it, `resources::ci_role`) all know.

use serde_json::json;

use crate::reconcile::Noun;
use crate::reconcile::permission::{Permission, Scope};

pub fn role_name(stack: &str) -> String {
    format!("{stack}-deploy")
}

/// The plan nouns of what `ci-role` makes (it is no kind of the stack's: `down` keeps it).
pub const NOUNS: &[Noun] = &[Noun::new("oidc-provider"), super::names::ROLE_KIND, super::names::BOUNDARY_KIND];

/// What the deploy role must never do, denied outright so that no other policy attached to it by
/// mistake can allow it: make or change roles' identity (create, delete, trust, boundary), write
/// managed policies (the boundary among them), make users or keys, change identity providers,
/// assume other roles, start an instance refresh, or touch its own policies.
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
            // Its DesiredConfiguration can move a group to `$Latest`, which then launches any
            // version made later, unchecked (capacity::PERMISSIONS).
            "autoscaling:StartInstanceRefresh",
            // Resource policies, whose content no condition can see: one could hand the log
            // bucket to another account, let every principal read the API key, or let outsiders
            // publish to the alarms' topic. An administrator's `up` writes them.
            "s3:PutBucketPolicy",
            "s3:DeleteBucketPolicy",
            "s3:PutBucketPublicAccessBlock",
            "secretsmanager:PutResourcePolicy",
            "secretsmanager:DeleteResourcePolicy",
            "sns:CreateTopic",
            "sns:SetTopicAttributes",
            "sns:AddPermission",
        ],
        Scope::Any,
    ),
    // AWS's own guard for groups: never one left on `$Latest` or `$Default`.
    Permission::deny(
        &["autoscaling:CreateAutoScalingGroup", "autoscaling:UpdateAutoScalingGroup"],
        Scope::Conditioned {
            resources: |_| vec!["*".into()],
            condition: |_| json!({ "Bool": { "autoscaling:LaunchTemplateVersionSpecified": "false" } }),
        },
    ),
    // Instances on a capacity reservation: someone else's (an open reservation is used without
    // naming it; the group's requests may name none, capacity::group_condition).
    // Any account's: a reservation may be shared from another.
    Permission::deny(
        &["ec2:RunInstances"],
        Scope::Own(|c| vec![format!("arn:{}:ec2:*:*:capacity-reservation/*", c.partition)]),
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
/// The deploy role's permissions, in managed policies the stack owns (`<stack>-deploy-<group>`):
/// IAM allows a role 10,240 characters of inline policy in all and a managed policy 6,144, so
/// one policy cannot hold them. Each group holds the statements of some kinds; `account-wide`
/// holds every kind's reads on `*` (actions that take no resource, bounded by the region alone)
/// and the denials; a permission may name another group than its kind's (`Permission::in_group`).
/// `the_deploy_policies_fit_iams_limits_with_room_to_grow` holds each group
/// under `FILL_GOAL` of the limit for the largest stack.
pub const GROUPS: &[(&str, &[&str])] = &[
    ("network", &["network"]),
    ("capacity", &["capacity"]),
    ("cluster", &["ecs-cluster", "loadtest"]),
    ("service", &["ecs-service"]),
    ("edge", &["load-balancer", "certificate", "dns-alias", "log-bucket"]),
    ("identity", &["iam", "secret", "ecr-repository"]),
    ("operations", &["log-group", "alarms", "error-budget", "sns-topic", "lease", "verify", "sweep"]),
    (ACCOUNT_WIDE, &["denied"]),
];

/// The group of every read on `*`, and of the denials.
pub const ACCOUNT_WIDE: &str = "account-wide";
pub fn policy_name(stack: &str, group: &str) -> String {
    format!("{stack}-deploy-{group}")
}

/// Every deploy policy name the stack can have.
pub fn policy_names(stack: &str) -> Vec<String> {
    GROUPS.iter().map(|(group, _)| policy_name(stack, group)).collect()
}
