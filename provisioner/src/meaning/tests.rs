//! The table read back, one test per meaning, and every delete the kinds make answered "not found".

use super::*;

fn answer<'a>(service: &'a str, operation: &'a str, code: &'a str, message: &'a str) -> Answer<'a> {
    Answer { service, operation, code, message }
}

/// Each (service, operation, code, message) means `meaning` or not, as `expected` says.
fn check(meaning: Meaning, cases: &[(&str, &str, &str, &str, bool)]) {
    for &(service, operation, code, message, expected) in cases {
        let a = answer(service, operation, code, message);
        assert_eq!(a.means(meaning), expected, "{meaning:?}? {service} {operation} {code}: {message}");
    }
}

/// Every delete (detach, deregister, revoke, stop, terminate) the kinds make, with what AWS
/// documents it answers when what it deletes is gone: each must be done (absent or already done).
const DELETES_OF_WHAT_IS_GONE: &[(&str, &str, &str, &str)] = &[
    ("ec2", "DeleteVpc", "InvalidVpcID.NotFound", "The vpc ID 'vpc-1' does not exist"),
    ("ec2", "DeleteSubnet", "InvalidSubnetID.NotFound", "The subnet ID 'subnet-1' does not exist"),
    ("ec2", "DetachInternetGateway", "Gateway.NotAttached", "resource igw-1 is not attached to network vpc-1"),
    (
        "ec2",
        "DetachInternetGateway",
        "InvalidInternetGatewayID.NotFound",
        "The internetGateway ID 'igw-1' does not exist",
    ),
    (
        "ec2",
        "DeleteInternetGateway",
        "InvalidInternetGatewayID.NotFound",
        "The internetGateway ID 'igw-1' does not exist",
    ),
    ("ec2", "DeleteRoute", "InvalidRoute.NotFound", "no route with destination-cidr-block 0.0.0.0/0 in route table"),
    (
        "ec2",
        "DisassociateRouteTable",
        "InvalidAssociationID.NotFound",
        "The association ID 'rtbassoc-1' does not exist",
    ),
    ("ec2", "DeleteRouteTable", "InvalidRouteTableID.NotFound", "The routeTable ID 'rtb-1' does not exist"),
    ("ec2", "RevokeSecurityGroupIngress", "InvalidPermission.NotFound", "The specified rule does not exist"),
    ("ec2", "RevokeSecurityGroupIngress", "InvalidGroup.NotFound", "The security group 'sg-1' does not exist"),
    ("ec2", "RevokeSecurityGroupEgress", "InvalidPermission.NotFound", "The specified rule does not exist"),
    ("ec2", "DeleteSecurityGroup", "InvalidGroup.NotFound", "The security group 'sg-1' does not exist"),
    ("ec2", "TerminateInstances", "InvalidInstanceID.NotFound", "The instance ID 'i-1' does not exist"),
    ("ec2", "DeleteLaunchTemplate", "InvalidLaunchTemplateId.NotFound", "The specified launch template does not exist"),
    ("ec2", "DeleteLaunchTemplate", "InvalidLaunchTemplateName.NotFoundException", "does not exist"),
    ("iam", "RemoveRoleFromInstanceProfile", "NoSuchEntity", "Instance Profile p cannot be found."),
    ("iam", "DeleteInstanceProfile", "NoSuchEntity", "Instance Profile p cannot be found."),
    ("iam", "DetachRolePolicy", "NoSuchEntity", "Policy arn:aws:iam::1:policy/p was not found."),
    ("iam", "DeleteRolePolicy", "NoSuchEntity", "The role policy with name p cannot be found."),
    ("iam", "DeleteRole", "NoSuchEntity", "The role with name r cannot be found."),
    ("iam", "DeletePolicyVersion", "NoSuchEntity", "Policy arn:aws:iam::1:policy/p version v2 does not exist."),
    ("iam", "DeletePolicy", "NoSuchEntity", "Policy arn:aws:iam::1:policy/p was not found."),
    ("ecs", "DeleteCluster", "ClusterNotFoundException", "Cluster not found."),
    ("ecs", "UpdateService", "ServiceNotActiveException", "Service was not ACTIVE."),
    ("ecs", "DeleteService", "ServiceNotFoundException", "Service not found."),
    ("ecs", "DeleteService", "ServiceNotActiveException", "Service was not ACTIVE."),
    ("ecs", "DeleteCapacityProvider", "ClientException", "The specified capacity provider does not exist."),
    ("ecs", "DeregisterTaskDefinition", "ClientException", "Unable to describe task definition."),
    ("ecs", "StopTask", "InvalidParameterException", "The referenced task was not found."),
    ("elasticloadbalancingv2", "DeleteListener", "ListenerNotFound", "One or more listeners not found"),
    ("elasticloadbalancingv2", "DeleteLoadBalancer", "LoadBalancerNotFound", "One or more load balancers not found"),
    ("elasticloadbalancingv2", "DeleteTargetGroup", "TargetGroupNotFound", "One or more target groups not found"),
    (
        "autoscaling",
        "DeleteAutoScalingGroup",
        "ValidationError",
        "AutoScalingGroup name not found - AutoScalingGroup 'g' not found",
    ),
    ("applicationautoscaling", "DeleteScalingPolicy", "ObjectNotFoundException", "No scaling policy found"),
    ("applicationautoscaling", "DeregisterScalableTarget", "ObjectNotFoundException", "No scalable target found"),
    ("acm", "DeleteCertificate", "ResourceNotFoundException", "Could not find certificate arn:aws:acm:x."),
    ("secretsmanager", "DeleteSecret", "ResourceNotFoundException", "Secrets Manager can't find the specified secret."),
    (
        "secretsmanager",
        "DeleteSecret",
        "InvalidRequestException",
        "You tried to perform the operation on a secret that's currently marked deleted.",
    ),
    ("cloudwatchlogs", "DeleteLogGroup", "ResourceNotFoundException", "The specified log group does not exist."),
    ("ecr", "DeleteRepository", "RepositoryNotFoundException", "The repository with name 'r' does not exist"),
    ("s3", "DeleteBucket", "NoSuchBucket", "The specified bucket does not exist"),
    ("sns", "DeleteTopic", "NotFound", "Topic does not exist"),
    ("ssm", "DeleteParameter", "ParameterNotFound", ""),
    (
        "route53",
        "ChangeResourceRecordSets",
        "InvalidChangeBatch",
        "[Tried to delete resource record set [name='a.example.com.', type='A'] but it was not found]",
    ),
];

#[test]
fn every_delete_of_what_is_gone_is_done() {
    for &(service, operation, code, message) in DELETES_OF_WHAT_IS_GONE {
        let a = answer(service, operation, code, message);
        assert!(a.means(Absent) || a.means(AlreadyDone), "{service} {operation} answered {code}: {message}");
    }
}

#[test]
fn absent_is_each_services_own_not_found_and_general_codes_only_with_their_call_or_words() {
    check(
        Absent,
        &[
            ("ec2", "DescribeLaunchTemplates", "InvalidLaunchTemplateName.NotFoundException", "", true),
            ("ec2", "DescribeLaunchTemplates", "InvalidLaunchTemplateId.NotFound", "", true),
            ("iam", "GetRole", "NoSuchEntity", "The role with name r cannot be found.", true),
            ("ecs", "DescribeTaskDefinition", "ClientException", "Unable to describe task definition.", true),
            ("ecr", "GetLifecyclePolicy", "LifecyclePolicyNotFoundException", "", true),
            ("ecr", "DescribeImages", "ImageNotFoundException", "", true),
            ("s3", "GetBucketPolicy", "NoSuchBucketPolicy", "", true),
            ("servicequotas", "GetServiceQuota", "NoSuchResourceException", "", true),
            // Another service's code is not this one's "not found".
            ("ecs", "DescribeServices", "NoSuchEntity", "", false),
            ("ec2", "DescribeVpcs", "ResourceNotFoundException", "", false),
            // ECS's general codes mean "absent" only for the call or the words that say so.
            ("ecs", "RegisterTaskDefinition", "ClientException", "Role is not valid", false),
            ("ecs", "CreateService", "InvalidParameterException", "Creation of service was not idempotent.", false),
            (
                "ecs",
                "RunTask",
                "InvalidParameterException",
                "No Container Instances were found in your cluster.",
                false,
            ),
            ("ecs", "DeleteCapacityProvider", "ClientException", "The specified capacity provider is in use.", false),
            // S3's "no tags" is not "no bucket".
            ("s3", "GetBucketTagging", "NoSuchTagSet", "The TagSet does not exist", false),
            ("iam", "GetRole", "AccessDenied", "", false),
        ],
    );
}

#[test]
fn already_done_is_read_from_the_words_of_general_codes() {
    check(
        AlreadyDone,
        &[
            ("ec2", "DetachInternetGateway", "Gateway.NotAttached", "", true),
            ("secretsmanager", "DeleteSecret", "InvalidRequestException", "because it was deleted", true),
            (
                "secretsmanager",
                "DeleteSecret",
                "InvalidRequestException",
                "You can't delete the secret because it is a replica.",
                false,
            ),
            (
                "ecs",
                "DeleteCapacityProvider",
                "InvalidParameterException",
                "The specified capacity provider does not exist.",
                false,
            ),
            ("autoscaling", "DeleteAutoScalingGroup", "ValidationError", "AutoScalingGroup name not found", true),
            // The same words under another service are not read as done.
            ("elasticloadbalancingv2", "DeleteListener", "ValidationError", "not found", false),
        ],
    );
}

#[test]
fn already_there_by_code_or_by_message() {
    check(
        AlreadyThere,
        &[
            (
                "ec2",
                "CreateSecurityGroup",
                "InvalidGroup.Duplicate",
                "The security group 'x' already exists for VPC 'vpc-1'",
                true,
            ),
            ("ec2", "AssociateRouteTable", "Resource.AlreadyAssociated", "resource igw-1 is already attached", true),
            ("iam", "CreateRole", "EntityAlreadyExists", "Role with name x already exists.", true),
            ("ecs", "CreateService", "InvalidParameterException", "Creation of service was not idempotent.", true),
            (
                "ecs",
                "CreateCapacityProvider",
                "ClientException",
                "The specified capacity provider already exists.",
                true,
            ),
            (
                "iam",
                "AddRoleToInstanceProfile",
                "LimitExceeded",
                "Cannot exceed quota for InstanceSessionsPerInstanceProfile: 1",
                true,
            ),
            ("iam", "CreateRole", "LimitExceeded", "Cannot exceed quota for RolesPerAccount: 1000", false),
            (
                "iam",
                "CreateServiceLinkedRole",
                "InvalidInput",
                "Service role name AWSServiceRoleForECS has been taken in this account",
                true,
            ),
            ("ssm", "PutParameter", "ParameterAlreadyExists", "The parameter already exists.", true),
            ("ecs", "CreateCluster", "InvalidParameterException", "Unable to assume the service linked role.", false),
            ("ec2", "CreateLaunchTemplate", "ValidationError", "The launch template was not found", false),
            ("ecs", "CreateService", "Throttling", "Rate exceeded", false),
        ],
    );
}

#[test]
fn not_usable_yet_is_what_a_service_says_of_a_role_or_profile_made_moments_ago() {
    check(
        NotUsableYet,
        &[
            ("ecs", "RegisterTaskDefinition", "ClientException", "Role is not valid", true),
            ("ecs", "CreateCluster", "InvalidParameterException", "Unable to assume the service linked role.", true),
            (
                "applicationautoscaling",
                "RegisterScalableTarget",
                "ValidationException",
                "Unable to assume IAM role",
                true,
            ),
            ("iam", "AddRoleToInstanceProfile", "NoSuchEntity", "The role with name r cannot be found.", true),
            ("ecs", "PutClusterCapacityProviders", "ClientException", "Cluster was not ACTIVE", true),
            (
                "ecs",
                "PutClusterCapacityProviders",
                "InvalidParameterException",
                "The specified capacity provider konnichiwa-capacity is not in an ACTIVE state.",
                true,
            ),
            ("autoscaling", "CreateAutoScalingGroup", "ValidationError", "Invalid IamInstanceProfile: p", true),
            (
                "autoscaling",
                "CreateAutoScalingGroup",
                "ValidationError",
                "You must use a valid fully-formed launch template. Value (p) for parameter iamInstanceProfile.name is \
             invalid. Invalid IAM Instance Profile name",
                true,
            ),
            ("iam", "GetRole", "NoSuchEntity", "no role", false),
            ("ecs", "RegisterTaskDefinition", "ClientException", "Too many containers", false),
        ],
    );
}

#[test]
fn not_visible_yet_is_a_not_found_of_what_another_call_made_moments_ago() {
    check(
        NotVisibleYet,
        &[
            ("ec2", "ModifyVpcAttribute", "InvalidVpcID.NotFound", "The vpc ID 'vpc-1' does not exist", true),
            (
                "elasticloadbalancingv2",
                "CreateLoadBalancer",
                "SubnetNotFound",
                "The subnet ID 'subnet-1' is not valid",
                true,
            ),
            ("elasticloadbalancingv2", "CreateTargetGroup", "ValidationError", "The VPC ID 'vpc-1' is not found", true),
            (
                "autoscaling",
                "CreateAutoScalingGroup",
                "ValidationError",
                "The subnet ID 'subnet-1' does not exist",
                true,
            ),
            ("s3", "PutBucketPolicy", "NoSuchBucket", "The specified bucket does not exist", true),
            ("ecs", "CreateService", "ClusterNotFoundException", "Cluster not found.", true),
            ("ec2", "CreateSubnet", "InvalidParameterValue", "bad", false),
            (
                "elasticloadbalancingv2",
                "CreateTargetGroup",
                "ValidationError",
                "Port must be between 1 and 65535",
                false,
            ),
        ],
    );
}

#[test]
fn throttled_is_the_sdks_list_less_quotas() {
    check(
        Throttled,
        &[
            ("", "", "Throttling", "Rate exceeded", true),
            ("", "", "ThrottlingException", "Rate exceeded", true),
            ("", "", "RequestLimitExceeded", "Request limit exceeded.", true),
            ("", "", "SlowDown", "Please reduce your request rate.", true),
            ("", "", "TooManyRequestsException", "", true),
            ("cloudwatchlogs", "FilterLogEvents", "RateExceeded", "", true),
            ("", "", "LimitExceededException", "You have reached the quota of certificates", false),
            ("", "", "InternalError", "", false),
        ],
    );
}

#[test]
fn quota_is_limit_exceeded_for_every_service() {
    check(
        Quota,
        &[
            ("acm", "RequestCertificate", "LimitExceededException", "", true),
            ("", "", "LimitExceededException", "", true),
            ("iam", "CreateRole", "LimitExceeded", "Cannot exceed quota for RolesPerAccount", false),
            ("", "", "Throttling", "", false),
        ],
    );
}

#[test]
fn denied_is_read_from_the_message_whatever_the_code() {
    let denied = "User: arn:aws:sts::1:assumed-role/x/ci is not authorized to perform: ecs:CreateCluster";
    check(
        Denied,
        &[
            ("ecs", "CreateCluster", "AccessDeniedException", denied, true),
            ("ecs", "CreateCluster", "ClientException", denied, true),
            ("s3", "GetBucketTagging", "AccessDenied", "Access Denied", true),
            ("elasticloadbalancingv2", "ModifyLoadBalancerAttributes", "AccessDenied", "Access Denied", false),
            (
                "ecs",
                "DeleteCapacityProvider",
                "ClientException",
                "The specified capacity provider does not exist.",
                false,
            ),
        ],
    );
}
