//! AWS's request rates as each service documents them, as token buckets (capacity, refill a
//! second) for the fault proxy's model of throttling (`Proxy::documented_rates`). A call draws a
//! token from every bucket it counts in and is throttled when one is empty. Figures from AWS's
//! pages (their titles below); where AWS publishes none, the assumption is said.
#![allow(dead_code)]

/// A bucket: its name, capacity and refill a second.
pub type Bucket = (String, f64, f64);

/// The buckets a call of `service` (the name its requests are signed with: `ec2`, `monitoring`…)
/// and `op` draws from. `unfiltered` is a Describe with neither a filter nor pagination (EC2
/// counts seven such actions in a smaller bucket).
pub fn buckets(service: &str, op: &str, unfiltered: bool) -> Vec<Bucket> {
    let own = |cap: f64, refill: f64| vec![(format!("{service} {op}"), cap, refill)];
    let shared = |name: &str, cap: f64, refill: f64| vec![(format!("{service} {name}"), cap, refill)];
    match service {
        // "Request throttling for the Amazon EC2 API": a bucket per action, sized by its category.
        "ec2" => match op {
            "RunInstances" => own(5.0, 2.0),
            "TerminateInstances" => own(100.0, 5.0),
            "CreateTags" | "DeleteTags" => own(100.0, 10.0),
            "CreateLaunchTemplateVersion" | "ModifyLaunchTemplate" => own(100.0, 5.0),
            "AuthorizeSecurityGroupIngress" | "RevokeSecurityGroupIngress" => own(50.0, 5.0),
            "DescribeInstances"
            | "DescribeInstanceStatus"
            | "DescribeNetworkInterfaces"
            | "DescribeSecurityGroups"
            | "DescribeSnapshots"
            | "DescribeSpotInstanceRequests"
            | "DescribeVolumes"
                if unfiltered =>
            {
                own(50.0, 10.0)
            }
            op if ["Describe", "List", "Search", "Get"].iter().any(|p| op.starts_with(p)) => own(100.0, 20.0),
            _ => own(50.0, 5.0),
        },
        // "Request throttling for the Amazon ECS API": a bucket per category.
        "ecs" => match op {
            "CreateCluster"
            | "DeleteCluster"
            | "PutClusterCapacityProviders"
            | "UpdateCluster"
            | "UpdateClusterSettings" => shared("cluster-modify", 20.0, 1.0),
            "DescribeClusters" | "ListClusters" => shared("cluster-read", 50.0, 20.0),
            "RegisterTaskDefinition" | "DeregisterTaskDefinition" => shared("task-definition-modify", 20.0, 1.0),
            "DescribeTaskDefinition" | "ListTaskDefinitions" | "ListTaskDefinitionFamilies" => {
                shared("task-definition-read", 50.0, 20.0)
            }
            "CreateCapacityProvider" | "DeleteCapacityProvider" | "UpdateCapacityProvider" => {
                shared("capacity-provider-modify", 10.0, 1.0)
            }
            "DescribeCapacityProviders" => shared("capacity-provider-read", 50.0, 20.0),
            "TagResource" | "UntagResource" => shared("tag-modify", 20.0, 10.0),
            "ListTagsForResource" => shared("tag-read", 50.0, 20.0),
            "RunTask" | "StartTask" | "StopTask" => shared("cluster-resource-modify", 100.0, 40.0),
            "DescribeTasks" | "ListTasks" | "DescribeContainerInstances" | "ListContainerInstances" => {
                shared("cluster-resource-read", 100.0, 20.0)
            }
            "CreateService" | "UpdateService" | "DeleteService" => shared("service-modify", 50.0, 5.0),
            "DescribeServices" | "ListServices" => shared("service-read", 100.0, 20.0),
            _ => own(50.0, 20.0),
        },
        // "Request throttling for the Elastic Load Balancing API": an account-wide bucket (40, 10)
        // and one per category; a call draws from both.
        "elasticloadbalancing" => {
            let mut b = match op {
                "CreateLoadBalancer" | "SetSubnets" => shared("resource-intensive", 10.0, 0.2),
                "RegisterTargets" | "DeregisterTargets" => shared("registration", 20.0, 4.0),
                op if op.starts_with("Describe") => shared("non-mutating", 40.0, 10.0),
                _ => shared("mutating", 20.0, 3.0),
            };
            b.extend(shared("account", 40.0, 10.0));
            b
        }
        // "Throttling for Amazon Route 53 API requests": the account's bucket and the action's,
        // 50 and 10 a second each.
        "route53" => {
            let mut b = own(50.0, 10.0);
            b.extend(shared("account", 50.0, 10.0));
            b
        }
        // "Managing Parameter Store throughput", standard throughput: Get* 40 a second together;
        // PutParameter, DescribeParameters and DeleteParameter 3 a second each (the lease's).
        "ssm" => match op {
            "GetParameter" | "GetParameters" | "GetParametersByPath" => shared("get-parameters", 40.0, 40.0),
            "DeleteParameter" | "DeleteParameters" => shared("delete-parameters", 3.0, 3.0),
            _ => own(3.0, 3.0),
        },
        // "CloudWatch service quotas", rates a second.
        "monitoring" => match op {
            "PutMetricAlarm" | "DeleteAlarms" => own(3.0, 3.0),
            "DescribeAlarms" => own(9.0, 9.0),
            "ListTagsForResource" => own(10.0, 10.0),
            _ => own(20.0, 20.0),
        },
        // "CloudWatch Logs quotas": 5 a second for the log-group actions, 50 for CreateLogStream.
        "logs" => match op {
            "CreateLogStream" => own(50.0, 50.0),
            _ => own(5.0, 5.0),
        },
        // ACM's quotas page: RequestCertificate and tag writes 5, reads 8–10 a second.
        "acm" => match op {
            "RequestCertificate" | "AddTagsToCertificate" | "RemoveTagsFromCertificate" => own(5.0, 5.0),
            "ListCertificates" => own(8.0, 8.0),
            _ => own(10.0, 10.0),
        },
        // Secrets Manager's quotas: reads 10,000, writes and policy actions 50 a second.
        "secretsmanager" => match op {
            "GetSecretValue" | "DescribeSecret" => own(10_000.0, 10_000.0),
            _ => own(50.0, 50.0),
        },
        // STS: 600 a second per account.
        "sts" => shared("account", 600.0, 600.0),
        // AWS publishes no rate for IAM, Auto Scaling, Application Auto Scaling, the tagging API,
        // ECR's control plane or SNS: assumed 20 at once and 5 a second per action (a low figure,
        // so that the model throttles where AWS might).
        _ => own(20.0, 5.0),
    }
}
