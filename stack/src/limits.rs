//! AWS's documented limits on what a stack creates or writes, in one table. moto enforces almost
//! none of them, so each is used twice: validation refuses a stack.yaml that would cross one
//! (naming the limit and the fix), and the suite's emulator (scripts/moto_aws.py) answers a
//! request that crosses one as AWS does, checked against these numbers by its tests
//! (provisioner/tests/integration/emulator.rs). What the provisioner itself writes from them
//! (the deploy role's policies, the boundary) is measured against them before it is sent.

use serde_json::Value;

/// One documented limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// What is limited.
    pub what: &'static str,
    /// The most AWS accepts.
    pub max: usize,
    /// What is counted.
    pub unit: &'static str,
    /// Where AWS documents it.
    pub source: &'static str,
    /// Whether Service Quotas can raise it (to what, when AWS says).
    pub raisable: Option<&'static str>,
}

impl Limit {
    /// "IAM managed policy: 6144 characters (whitespace not counted; IAM User Guide, …)".
    pub fn describe(&self) -> String {
        let raise = self.raisable.map(|r| format!("; raisable {r}")).unwrap_or_default();
        format!("{}: at most {} {} ({}{raise})", self.what, self.max, self.unit, self.source)
    }
}

const IAM_QUOTAS: &str = "IAM User Guide, \"IAM and AWS STS quotas\"";

pub const IAM_ROLE_INLINE_POLICIES: Limit = Limit {
    what: "the inline policies of one IAM role, together",
    max: 10_240,
    unit: "characters, whitespace not counted",
    source: IAM_QUOTAS,
    raisable: None,
};
pub const IAM_MANAGED_POLICY: Limit = Limit {
    what: "one customer managed IAM policy",
    max: 6_144,
    unit: "characters, whitespace not counted",
    source: IAM_QUOTAS,
    raisable: None,
};
pub const IAM_ROLE_MANAGED_POLICIES: Limit = Limit {
    what: "managed policies attached to one IAM role",
    max: 10,
    unit: "policies",
    source: IAM_QUOTAS,
    raisable: Some("to 20"),
};
pub const IAM_POLICY_VERSIONS: Limit = Limit {
    what: "versions kept of one managed IAM policy",
    max: 5,
    unit: "versions",
    source: IAM_QUOTAS,
    raisable: None,
};
pub const IAM_TRUST_POLICY: Limit = Limit {
    what: "the trust policy of one IAM role",
    max: 2_048,
    unit: "characters, whitespace not counted",
    source: IAM_QUOTAS,
    raisable: Some("to 4096"),
};
pub const IAM_ROLE_NAME: Limit =
    Limit { what: "an IAM role's name", max: 64, unit: "characters", source: IAM_QUOTAS, raisable: None };
pub const IAM_POLICY_NAME: Limit =
    Limit { what: "an IAM policy's name", max: 128, unit: "characters", source: IAM_QUOTAS, raisable: None };
pub const IAM_INSTANCE_PROFILE_NAME: Limit =
    Limit { what: "an instance profile's name", max: 128, unit: "characters", source: IAM_QUOTAS, raisable: None };
pub const LOAD_BALANCER_NAME: Limit = Limit {
    what: "a load balancer's name",
    max: 32,
    unit: "characters",
    source: "Elastic Load Balancing API Reference, CreateLoadBalancer: Name",
    raisable: None,
};
pub const TARGET_GROUP_NAME: Limit = Limit {
    what: "a target group's name",
    max: 32,
    unit: "characters",
    source: "Elastic Load Balancing API Reference, CreateTargetGroup: Name",
    raisable: None,
};
pub const TAGS_PER_RESOURCE: Limit = Limit {
    what: "user tags on one resource",
    max: 50,
    unit: "tags",
    source: "Tagging AWS Resources, \"Tag naming limits and requirements\"",
    raisable: None,
};
pub const TAG_KEY: Limit = Limit {
    what: "a tag key",
    max: 128,
    unit: "Unicode characters",
    source: "Tagging AWS Resources, \"Tag naming limits and requirements\"",
    raisable: None,
};
pub const TAG_VALUE: Limit = Limit {
    what: "a tag value",
    max: 256,
    unit: "Unicode characters",
    source: "Tagging AWS Resources, \"Tag naming limits and requirements\"",
    raisable: None,
};
pub const SECURITY_GROUP_INBOUND_RULES: Limit = Limit {
    what: "inbound rules of one security group (per address family)",
    max: 60,
    unit: "rules",
    source: "Amazon VPC User Guide, \"Amazon VPC quotas\": Inbound or outbound rules per security group",
    raisable: Some("while rules × groups per interface stay ≤ 1000"),
};
pub const SECURITY_GROUP_OUTBOUND_RULES: Limit = Limit {
    what: "outbound rules of one security group (per address family)",
    max: 60,
    unit: "rules",
    source: "Amazon VPC User Guide, \"Amazon VPC quotas\": Inbound or outbound rules per security group",
    raisable: Some("with the inbound quota"),
};
pub const TASK_DEFINITION: Limit = Limit {
    what: "one ECS task definition (its JSON)",
    max: 65_536,
    unit: "bytes",
    source: "Amazon ECS Developer Guide, \"Amazon ECS service quotas\": Task definition size",
    raisable: None,
};
pub const RUN_TASK_OVERRIDES: Limit = Limit {
    what: "the overrides of one ECS RunTask (their JSON)",
    max: 8_192,
    unit: "characters",
    source: "Amazon ECS API Reference, RunTask: overrides",
    raisable: None,
};
pub const SECRET_VALUE: Limit = Limit {
    what: "a Secrets Manager secret's value",
    max: 65_536,
    unit: "bytes",
    source: "Secrets Manager User Guide, \"AWS Secrets Manager quotas\": Secret value size",
    raisable: None,
};
pub const SECRET_NAME: Limit = Limit {
    what: "a Secrets Manager secret's name",
    max: 512,
    unit: "characters",
    source: "Secrets Manager API Reference, CreateSecret: Name",
    raisable: None,
};
pub const SSM_STANDARD_PARAMETER_VALUE: Limit = Limit {
    what: "a Standard-tier SSM parameter's value",
    max: 4_096,
    unit: "characters",
    source: "Systems Manager User Guide, \"Managing parameter tiers\"",
    raisable: None,
};
pub const ALARM_NAME: Limit = Limit {
    what: "a CloudWatch alarm's name",
    max: 255,
    unit: "characters",
    source: "CloudWatch API Reference, PutMetricAlarm: AlarmName",
    raisable: None,
};
pub const ALARM_ACTIONS: Limit = Limit {
    what: "actions of one CloudWatch alarm state",
    max: 5,
    unit: "actions",
    source: "CloudWatch API Reference, PutMetricAlarm: AlarmActions",
    raisable: None,
};
pub const LOG_GROUP_NAME: Limit = Limit {
    what: "a CloudWatch Logs log group's name",
    max: 512,
    unit: "characters",
    source: "CloudWatch Logs API Reference, CreateLogGroup: logGroupName",
    raisable: None,
};
pub const ECR_REPOSITORY_NAME: Limit = Limit {
    what: "an ECR repository's name",
    max: 256,
    unit: "characters",
    source: "Amazon ECR API Reference, CreateRepository: repositoryName",
    raisable: None,
};
pub const LAUNCH_TEMPLATE_USER_DATA: Limit = Limit {
    what: "an instance's user data",
    max: 16_384,
    unit: "bytes before base64 encoding",
    source: "Amazon EC2 User Guide, \"Run commands when you launch an EC2 instance with user data input\"",
    raisable: None,
};
pub const S3_BUCKET_NAME: Limit = Limit {
    what: "an S3 bucket's name",
    max: 63,
    unit: "characters",
    source: "Amazon S3 User Guide, \"General purpose bucket naming rules\"",
    raisable: None,
};

/// Every limit of the table, for the docs and the tests that walk it.
pub const ALL: &[&Limit] = &[
    &IAM_ROLE_INLINE_POLICIES,
    &IAM_MANAGED_POLICY,
    &IAM_ROLE_MANAGED_POLICIES,
    &IAM_POLICY_VERSIONS,
    &IAM_TRUST_POLICY,
    &IAM_ROLE_NAME,
    &IAM_POLICY_NAME,
    &IAM_INSTANCE_PROFILE_NAME,
    &LOAD_BALANCER_NAME,
    &TARGET_GROUP_NAME,
    &TAGS_PER_RESOURCE,
    &TAG_KEY,
    &TAG_VALUE,
    &SECURITY_GROUP_INBOUND_RULES,
    &SECURITY_GROUP_OUTBOUND_RULES,
    &TASK_DEFINITION,
    &RUN_TASK_OVERRIDES,
    &SECRET_VALUE,
    &SECRET_NAME,
    &SSM_STANDARD_PARAMETER_VALUE,
    &ALARM_NAME,
    &ALARM_ACTIONS,
    &LOG_GROUP_NAME,
    &ECR_REPOSITORY_NAME,
    &LAUNCH_TEMPLATE_USER_DATA,
    &S3_BUCKET_NAME,
];

/// The most the permissions boundary's own statements take (the ECS agent, pulls, logs, the key,
/// ECS Exec and Session Manager when on, for the longest stack name and secret name): the rest
/// of `IAM_MANAGED_POLICY` is what `iam.task_role_statements` may use. The provisioner's tests
/// hold its boundary under this.
pub const BOUNDARY_OWN_CHARACTERS: usize = 3_584;

/// The most of a task definition that is not `service.environment` (the container, its ports,
/// health check, logging, secret and limits, with the longest names): the rest of
/// `TASK_DEFINITION` is what the environment may use. The emulator's tests register a task
/// definition with an environment of the whole remaining budget.
pub const TASK_DEFINITION_OWN_BYTES: usize = 8_192;

/// The most the permissions boundary adds for a deployment strategy that shifts traffic (what
/// ECS's load balancer role does on the stack's listeners, rules and target groups, for the
/// longest stack name): it comes out of what `iam.task_role_statements` may use. The provisioner's
/// tests hold its boundary under `BOUNDARY_OWN_CHARACTERS` plus this.
pub const BOUNDARY_TRAFFIC_SHIFT_CHARACTERS: usize = 1_152;

/// What `iam.task_role_statements` may take of the boundary, as IAM counts it (a `rolling` stack).
pub const TASK_ROLE_STATEMENTS_BUDGET: usize = IAM_MANAGED_POLICY.max - BOUNDARY_OWN_CHARACTERS;

/// What `iam.task_role_statements` may take of the boundary of a stack whose deployment strategy
/// shifts traffic (`Strategy::shifts_traffic`) or not.
pub const fn task_role_statements_budget(shifts_traffic: bool) -> usize {
    if shifts_traffic {
        TASK_ROLE_STATEMENTS_BUDGET - BOUNDARY_TRAFFIC_SHIFT_CHARACTERS
    } else {
        TASK_ROLE_STATEMENTS_BUDGET
    }
}

/// What `service.environment` may take of the task definition, in bytes as ECS receives it
/// (`{"name":…,"value":…}` each).
pub const ENVIRONMENT_BUDGET: usize = TASK_DEFINITION.max - TASK_DEFINITION_OWN_BYTES;

/// The size of `environment` as a task definition carries it: `[{"name":K,"value":V},…]`.
pub fn environment_size<'a>(environment: impl IntoIterator<Item = (&'a String, &'a String)>) -> usize {
    let pairs: Vec<Value> =
        environment.into_iter().map(|(k, v)| serde_json::json!({ "name": k, "value": v })).collect();
    Value::Array(pairs).to_string().len()
}

/// The table as Markdown (docs/LIMITS.md holds it; a test keeps the two equal).
pub fn markdown_table() -> String {
    let mut out =
        String::from("| limit | at most | counted in | where AWS documents it |\n| --- | ---: | --- | --- |\n");
    for l in ALL {
        let raise = l.raisable.map(|r| format!(" (raisable {r})")).unwrap_or_default();
        out += &format!("| {} | {}{raise} | {} | {} |\n", l.what, l.max, l.unit, l.source);
    }
    out
}

/// A policy document's size as IAM counts it against its limits: its characters, whitespace not
/// counted.
pub fn policy_size(document: &Value) -> usize {
    document.to_string().chars().filter(|c| !c.is_whitespace()).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_size_does_not_count_whitespace() {
        let doc = serde_json::json!({"Version": "2012-10-17", "Statement": [{"Sid": "A B"}]});
        // {"Statement":[{"Sid":"AB"}],"Version":"2012-10-17"}
        assert_eq!(policy_size(&doc), 51);
    }

    #[test]
    fn the_docs_hold_the_table_as_it_is() {
        let docs = include_str!("../../docs/LIMITS.md");
        assert!(
            docs.contains(&markdown_table()),
            "docs/LIMITS.md differs from stack::limits: paste this table there:\n{}",
            markdown_table()
        );
    }

    #[test]
    fn every_limit_is_in_the_table_once_and_says_where_aws_documents_it() {
        for (i, l) in ALL.iter().enumerate() {
            assert!(!ALL[..i].contains(l), "{} twice", l.what);
            assert!(l.max > 0 && !l.source.is_empty() && !l.unit.is_empty(), "{l:?}");
        }
        assert!(IAM_MANAGED_POLICY.describe().contains("at most 6144 characters"));
    }
}
