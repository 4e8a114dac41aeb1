//! What an AWS answer means: the one table of the codes (and, where a code is too general, the
//! words) each service answers for "not found", "already there", "already done", "not usable or
//! not visible yet", "throttled", "quota", "denied" and "in use". It sits below `error` and
//! `aws`, which ask it, and imports neither.
//!
//! Four answers name a state rather than a meaning and are read where that state matters, by their
//! code: S3's `NoSuchTagSet` (a bucket without tags, which "absent" would confuse with no bucket),
//! S3's `BucketAlreadyExists` (a name another account holds), Auto Scaling's
//! `InstanceRefreshInProgress` and EC2's `InvalidAMIID.*` in the pre-flight checks.

/// What an AWS error answer means to the provisioner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Meaning {
    /// What was looked up, or deleted, does not exist (a lookup finds nothing; a delete is done).
    Absent,
    /// A create (attach, associate, authorize) of what exists: a retry of a call whose answer was
    /// lost, or a run killed after the call. The caller re-observes and adopts what carries our tag.
    AlreadyThere,
    /// A delete of what is deleted already or scheduled for deletion: done.
    AlreadyDone,
    /// What an IAM or service change made moments ago is not usable yet (`Wait::Propagation`).
    NotUsableYet,
    /// What was made moments ago is not visible yet to the service asked (`Wait::Consistency`).
    NotVisibleYet,
    /// The caller sends too fast: retried by the SDK, slowed by the pacer.
    Throttled,
    /// A quota of the account: never retried (see `error::QUOTA_HINT`).
    Quota,
    /// The caller may not do this: never retried.
    Denied,
    /// What a change or delete acts on is still used by something that is going or changing
    /// (ENIs leaving a subnet, tasks leaving a cluster, an update in progress): waited out where
    /// the call site says a dependency settles (`Wait::Dependency`).
    InUse,
}

/// An AWS error answer: the service that answered (as the SDK crate names it: `ec2`, `ecs`,
/// `elasticloadbalancingv2`…; empty when unknown), the operation (`DeleteVpc`; empty when unknown),
/// and what it said.
#[derive(Debug, Clone, Copy, Default)]
pub struct Answer<'a> {
    pub service: &'a str,
    pub operation: &'a str,
    pub code: &'a str,
    pub message: &'a str,
}

impl Answer<'_> {
    /// True when this answer means `meaning` (an answer can mean several things: `NoSuchEntity`
    /// is "absent" to a lookup and "not usable yet" to an attach of a role made moments ago; the
    /// caller asks the question its call makes).
    pub fn means(&self, meaning: Meaning) -> bool {
        match meaning {
            Meaning::Throttled => {
                is_sdk_throttling(self.code) && !self.means(Meaning::Quota) || self.in_table(Meaning::Throttled)
            }
            _ => self.in_table(meaning),
        }
    }

    fn in_table(&self, meaning: Meaning) -> bool {
        TABLE.iter().any(|row| row.means == meaning && row.matches(self))
    }
}

/// A code the SDK retries as throttling (its own list, shared by every service).
fn is_sdk_throttling(code: &str) -> bool {
    aws_runtime::retries::classifiers::THROTTLING_ERRORS.contains(&code)
}

/// One line of the table: who answers, to which call, with which code and words, and what it means.
struct Row {
    /// The SDK crate's name of the service; empty: the answer of several services (see its comment).
    service: &'static str,
    /// Empty: any operation.
    operation: &'static str,
    /// Empty: any code; `*.NotFound`: any code ending so.
    code: &'static str,
    /// Empty: any message; else words the message contains.
    words: &'static str,
    means: Meaning,
}

impl Row {
    fn matches(&self, a: &Answer<'_>) -> bool {
        let code = match self.code.strip_prefix('*') {
            Some(suffix) => a.code.ends_with(suffix),
            None => self.code.is_empty() || self.code == a.code,
        };
        (self.service.is_empty() || self.service == a.service)
            && (self.operation.is_empty() || self.operation == a.operation)
            && code
            && (self.words.is_empty() || a.message.contains(self.words))
    }
}

/// `service` answers `code`, whatever the call and message.
const fn code(service: &'static str, code: &'static str, means: Meaning) -> Row {
    Row { service, operation: "", code, words: "", means }
}

/// `service` answers `code` with `words` in its message (the code alone is too general).
const fn said(service: &'static str, code: &'static str, words: &'static str, means: Meaning) -> Row {
    Row { service, operation: "", code, words, means }
}

/// `service` answers `code` to `operation` (the code is general and AWS documents no words).
const fn answered(service: &'static str, operation: &'static str, code: &'static str, means: Meaning) -> Row {
    Row { service, operation, code, words: "", means }
}

use Meaning::{Absent, AlreadyDone, AlreadyThere, Denied, InUse, NotUsableYet, NotVisibleYet, Quota, Throttled};

/// Every code and every message's words the provisioner reads: here, once.
const TABLE: &[Row] = &[
    // --- Absent: a lookup or a delete of what does not exist.
    code("ec2", "InvalidVpcID.NotFound", Absent),
    code("ec2", "InvalidSubnetID.NotFound", Absent),
    code("ec2", "InvalidInternetGatewayID.NotFound", Absent),
    code("ec2", "InvalidRouteTableID.NotFound", Absent),
    code("ec2", "InvalidRoute.NotFound", Absent),
    code("ec2", "InvalidAssociationID.NotFound", Absent),
    code("ec2", "InvalidGroup.NotFound", Absent),
    code("ec2", "InvalidInstanceID.NotFound", Absent),
    // EC2's documented launch template codes: by id and by name (the name's has "Exception").
    code("ec2", "InvalidLaunchTemplateId.NotFound", Absent),
    code("ec2", "InvalidLaunchTemplateName.NotFoundException", Absent),
    code("iam", "NoSuchEntity", Absent),
    code("ecs", "ClusterNotFoundException", Absent),
    // ECS DescribeTaskDefinition of a family or revision that does not exist.
    said("ecs", "ClientException", "Unable to describe task definition", Absent),
    // ECS DeregisterTaskDefinition of one that does not exist: a ClientException whose words AWS
    // does not document.
    answered("ecs", "DeregisterTaskDefinition", "ClientException", Absent),
    // ECS StopTask of a task that is gone ("The referenced task was not found."), which AWS
    // answers under the code of every invalid parameter.
    answered("ecs", "StopTask", "InvalidParameterException", Absent),
    code("elasticloadbalancingv2", "LoadBalancerNotFound", Absent),
    code("elasticloadbalancingv2", "TargetGroupNotFound", Absent),
    code("elasticloadbalancingv2", "ListenerNotFound", Absent),
    code("acm", "ResourceNotFoundException", Absent),
    code("secretsmanager", "ResourceNotFoundException", Absent),
    code("cloudwatchlogs", "ResourceNotFoundException", Absent),
    // CloudWatch ListTagsForResource answers the first (its model), older endpoints the second.
    code("cloudwatch", "ResourceNotFoundException", Absent),
    code("cloudwatch", "ResourceNotFound", Absent),
    code("ecr", "RepositoryNotFoundException", Absent),
    code("ecr", "LifecyclePolicyNotFoundException", Absent),
    code("ecr", "ImageNotFoundException", Absent),
    code("applicationautoscaling", "ObjectNotFoundException", Absent),
    code("ssm", "ParameterNotFound", Absent),
    code("sns", "NotFound", Absent),
    code("servicequotas", "NoSuchResourceException", Absent),
    code("s3", "NoSuchBucket", Absent),
    code("s3", "NoSuchPublicAccessBlockConfiguration", Absent),
    code("s3", "ServerSideEncryptionConfigurationNotFoundError", Absent),
    code("s3", "OwnershipControlsNotFoundError", Absent),
    code("s3", "NoSuchLifecycleConfiguration", Absent),
    code("s3", "NoSuchBucketPolicy", Absent),
    // --- AlreadyDone: a delete (detach, deregister) of what is deleted or scheduled for deletion.
    // Revoking a security group rule that is not there: the rule is gone already (the group
    // itself missing is Absent, which a revoke in `up` must not take for done).
    code("ec2", "InvalidPermission.NotFound", AlreadyDone),
    // EC2 DetachInternetGateway of a gateway detached already.
    code("ec2", "Gateway.NotAttached", AlreadyDone),
    // Secrets Manager DeleteSecret of a secret scheduled for deletion ("You tried to perform the
    // operation on a secret that's currently marked deleted.") or being removed after a purge.
    said("secretsmanager", "InvalidRequestException", "currently marked deleted", AlreadyDone),
    said("secretsmanager", "InvalidRequestException", "because it was deleted", AlreadyDone),
    // ECS DeleteService / UpdateService of a service already deleted (DRAINING or INACTIVE).
    code("ecs", "ServiceNotActiveException", AlreadyDone),
    code("ecs", "ServiceNotFoundException", AlreadyDone),
    // ECS DeleteCapacityProvider of one that is gone ("The specified capacity provider does not exist").
    said("ecs", "ClientException", "does not exist", AlreadyDone),
    // Auto Scaling DeleteAutoScalingGroup of a group that is gone ("AutoScalingGroup name not found").
    said("autoscaling", "ValidationError", "not found", AlreadyDone),
    // Route 53 ChangeResourceRecordSets DELETE of a record that is gone ("… but it was not found").
    said("route53", "InvalidChangeBatch", "not found", AlreadyDone),
    // --- AlreadyThere: a create of what exists.
    code("ec2", "InvalidGroup.Duplicate", AlreadyThere),
    code("ec2", "InvalidPermission.Duplicate", AlreadyThere),
    code("ec2", "Resource.AlreadyAssociated", AlreadyThere),
    code("ec2", "RouteAlreadyExists", AlreadyThere),
    code("ec2", "InvalidSubnet.Conflict", AlreadyThere),
    code("ec2", "InvalidLaunchTemplateName.AlreadyExistsException", AlreadyThere),
    code("iam", "EntityAlreadyExists", AlreadyThere),
    code("autoscaling", "AlreadyExists", AlreadyThere),
    code("elasticloadbalancingv2", "DuplicateTargetGroupName", AlreadyThere),
    code("elasticloadbalancingv2", "DuplicateLoadBalancerName", AlreadyThere),
    code("elasticloadbalancingv2", "DuplicateListener", AlreadyThere),
    code("elasticloadbalancingv2", "DuplicateTagKeys", AlreadyThere),
    code("ecr", "RepositoryAlreadyExistsException", AlreadyThere),
    code("cloudwatchlogs", "ResourceAlreadyExistsException", AlreadyThere),
    code("secretsmanager", "ResourceExistsException", AlreadyThere),
    code("ssm", "ParameterAlreadyExists", AlreadyThere),
    // S3 outside us-east-1, which answers a repeated create with success.
    code("s3", "BucketAlreadyOwnedByYou", AlreadyThere),
    // ECS CreateService retried after a lost answer; CreateCapacityProvider of one that exists.
    said("ecs", "InvalidParameterException", "was not idempotent", AlreadyThere),
    said("ecs", "InvalidParameterException", "already exists", AlreadyThere),
    said("ecs", "ClientException", "already exists", AlreadyThere),
    said("ecs", "ClientException", "was not idempotent", AlreadyThere),
    // Secrets Manager CreateSecret of a name in use.
    said("secretsmanager", "InvalidRequestException", "already exists", AlreadyThere),
    // IAM AddRoleToInstanceProfile when the profile holds the role (its one slot is taken).
    said("iam", "LimitExceeded", "InstanceSessionsPerInstanceProfile", AlreadyThere),
    // IAM CreateServiceLinkedRole of a role that exists ("… has been taken in this account").
    said("iam", "InvalidInput", "has been taken", AlreadyThere),
    // --- NotUsableYet: made moments ago, not usable yet by the service that needs it.
    // Auto Scaling / EC2: an instance profile created moments ago (Auto Scaling's
    // CreateAutoScalingGroup says it in EC2's words, validating the launch template: "…
    // iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name").
    said("autoscaling", "", "Invalid IamInstanceProfile", NotUsableYet),
    said("autoscaling", "", "Invalid IAM Instance Profile", NotUsableYet),
    said("ec2", "", "Invalid IAM Instance Profile", NotUsableYet),
    // ECS CreateCluster / CreateCapacityProvider (service-linked role), Application Auto Scaling.
    said("ecs", "", "Unable to assume", NotUsableYet),
    said("applicationautoscaling", "", "Unable to assume", NotUsableYet),
    // ECS CreateService: the listener that ties the target group to the load balancer is new.
    said("ecs", "", "does not have an associated load balancer", NotUsableYet),
    said("ecs", "", "verify that the ECS service role being passed has the proper permissions", NotUsableYet),
    // ECS RegisterTaskDefinition: an execution or task role created moments ago.
    said("ecs", "", "Role is not valid", NotUsableYet),
    // Application Auto Scaling: a service or scalable target created moments ago.
    said("applicationautoscaling", "", "ECS service doesn't exist", NotUsableYet),
    said("applicationautoscaling", "", "No scalable target registered", NotUsableYet),
    // ELB ModifyLoadBalancerAttributes: a bucket policy put moments ago is not yet seen by the
    // log delivery's test write.
    said("elasticloadbalancingv2", "", "Access Denied for bucket", NotUsableYet),
    // Secrets Manager: a secret deleted without recovery moments ago is removed asynchronously.
    said("secretsmanager", "", "scheduled for deletion", NotUsableYet),
    // ECS PutClusterCapacityProviders while the cluster is still provisioning ("Cluster was not
    // ACTIVE"; the Terraform AWS provider retries it).
    said("ecs", "ClientException", "was not ACTIVE", NotUsableYet),
    // ECS PutClusterCapacityProviders naming a capacity provider made a moment before ("The
    // specified capacity provider … is not in an ACTIVE state"), as the Terraform AWS provider
    // retries it.
    said("ecs", "InvalidParameterException", "is not in an ACTIVE state", NotUsableYet),
    // IAM CreateRole naming a boundary created a moment before ("Scope ARN: … does not exist or is
    // not attachable."), AddRoleToInstanceProfile of a role or profile created a moment before
    // ("The role with name … cannot be found.", "Instance Profile … cannot be found.").
    said("iam", "NoSuchEntity", "does not exist or is not attachable", NotUsableYet),
    said("iam", "NoSuchEntity", "cannot be found", NotUsableYet),
    // --- NotVisibleYet: made moments ago by one service, not visible yet to another (or itself).
    // EC2's not-found codes (`InvalidSubnetID.NotFound`…), answered by EC2 and by the services
    // that check EC2's resources: any service.
    code("", "*.NotFound", NotVisibleYet),
    // A launch template version made a moment ago (its code does not end in `.NotFound`).
    code("ec2", "InvalidLaunchTemplateId.VersionNotFound", NotVisibleYet),
    // ELB: a target group, load balancer, certificate (ACM's, issued a moment ago), subnet or
    // security group made a moment before.
    code("elasticloadbalancingv2", "TargetGroupNotFound", NotVisibleYet),
    code("elasticloadbalancingv2", "LoadBalancerNotFound", NotVisibleYet),
    code("elasticloadbalancingv2", "CertificateNotFound", NotVisibleYet),
    code("elasticloadbalancingv2", "SubnetNotFound", NotVisibleYet),
    code("elasticloadbalancingv2", "InvalidSecurityGroup", NotVisibleYet),
    // ECS, Application Auto Scaling: a cluster made a moment before.
    code("", "ClusterNotFoundException", NotVisibleYet),
    // S3: a bucket it created a moment ago, or is still creating.
    code("s3", "NoSuchBucket", NotVisibleYet),
    code("s3", "OperationAborted", NotVisibleYet),
    // ELB CreateTargetGroup in a VPC made a moment before ("The VPC ID 'vpc-1' is not found").
    said("elasticloadbalancingv2", "ValidationError", "is not found", NotVisibleYet),
    // Auto Scaling CreateAutoScalingGroup in subnets made a moment before ("The subnet ID
    // 'subnet-1' does not exist").
    said("autoscaling", "ValidationError", "does not exist", NotVisibleYet),
    // --- InUse: a dependency still settling, waited out by the call sites that say so.
    // EC2: a subnet, security group, internet gateway or VPC still used by ENIs, instances or
    // rules that are going.
    code("ec2", "DependencyViolation", InUse),
    // ECS: a capacity provider or cluster still in use or updating; a cluster that still has
    // instances, tasks or services.
    code("ecs", "ResourceInUseException", InUse),
    code("ecs", "UpdateInProgressException", InUse),
    code("ecs", "ClusterContainsContainerInstancesException", InUse),
    code("ecs", "ClusterContainsTasksException", InUse),
    code("ecs", "ClusterContainsServicesException", InUse),
    // ACM: a certificate a listener still uses.
    code("acm", "ResourceInUseException", InUse),
    // ELB: a target group a listener or rule still uses.
    code("elasticloadbalancingv2", "ResourceInUse", InUse),
    // S3: a bucket that still has objects (versions) while they are being deleted.
    code("s3", "BucketNotEmpty", InUse),
    // --- Throttled, besides the SDK's own list (`is_sdk_throttling`).
    // `RateExceeded`, which `log_events` took for throttling before this table: no SDK crate we
    // use models it (CloudWatch Logs throttles with ThrottlingException, "Rate exceeded"), and no
    // service we call answers it for anything else; kept for any service, as the HTTP layer (the
    // pacer, read replay) judges an answer without knowing which service gave it.
    code("", "RateExceeded", Throttled),
    // --- Quota: for every service the provisioner calls, this code is a quota of the account (how
    // many certificates, secrets, log groups, scalable targets, repositories…; their rate limits
    // are `Throttling…`). The SDK would retry it as a rate limit for minutes.
    code("", "LimitExceededException", Quota),
    // --- Denied: a refusal of the caller under any service's own code.
    said("", "", "not authorized to perform", Denied),
    // S3 says it in its own words ("Access Denied"): another account's bucket, or a policy.
    code("s3", "AccessDenied", Denied),
];

#[cfg(test)]
mod tests;
