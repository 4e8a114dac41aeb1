//! What the pre-flight checks call beyond what the kinds may already: a module of its own, so
//! that the list of every permission (`engine::walk`) reads it without reaching up into the
//! checks, which read that list.

use crate::reconcile::permission::{Permission, Scope};

/// What the checks read beyond what the kinds may already (the deploy role runs `up`, and the
/// checks with it): quotas and what uses them, offerings, images, the service-linked roles, and
/// the simulation of the deploy role's own policies.
pub const PERMISSIONS: &[Permission] = &[
    Permission::new(
        &[
            "servicequotas:GetServiceQuota",
            "servicequotas:GetAWSDefaultServiceQuota",
            "ec2:DescribeInstances",
            "ec2:DescribeInstanceTypeOfferings",
            "ec2:DescribeImages",
            "ec2:DescribeVpcs",
            "ec2:DescribeSecurityGroups",
            "elasticloadbalancing:DescribeLoadBalancers",
        ],
        Scope::Any,
    ),
    Permission::new(&["iam:GetRole"], Scope::Own(|c| vec![c.iam_arn("role/aws-service-role/*")])),
    Permission::new(
        &["iam:SimulatePrincipalPolicy"],
        Scope::Own(|c| {
            vec![c.iam_arn(&format!("role/{}", crate::resources::iam::deploy_role::role_name(&c.stack.name)))]
        }),
    ),
];
