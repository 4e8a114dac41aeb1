//! A client-side rate for each of AWS's token buckets that has throttled a call in this run. Until a
//! service answers a call with a throttling error, calls go out as fast as the in-flight bound lets
//! them; after one, the calls that draw on the same bucket (and only those: every other bucket
//! keeps full speed) are spaced to a little under what got through in the second before, halved if
//! AWS throttles again, and raised back a tenth of that rate every second. The SDK's adaptive retry
//! mode does the like for a whole client, so one throttled operation slowed every call to its
//! service; that doubled a run's wall time (docs/BENCHMARKS.md, "Throttling").
//!
//! The buckets are AWS's, as each service documents them (`bucket`): EC2's are per action (its
//! categories only set each action's default size), ECS's per category of actions, Elastic Load
//! Balancing's per category (within an account-wide one of the same size as its Describe
//! category), Route 53's account-wide, Parameter Store's Get* shared; an operation of a service
//! that documents none is its own.
//!
//! Pacing is one of the seven ways a run retries or waits (the list: `wait`).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// The paced rate after a first throttle, as a share of the calls that got through in the second
/// before it (AWS refills a token bucket at a steady rate: what passed just before is about it).
const SHARE_OF_WHAT_PASSED: f64 = 0.8;
/// Never slower than this: a call waits at most a second behind the one before.
const MIN_PER_SECOND: f64 = 1.0;
/// A paced rate grows by this share of itself each second without a throttle…
const GROWTH_PER_SECOND: f64 = 0.1;
/// …and pacing ends once it is this many times the rate AWS last throttled at.
const RECOVERED: f64 = 8.0;
/// Throttles within this long of the last slow-down answer calls sent before it: no new slow-down.
const SETTLE: Duration = Duration::from_secs(1);
const WINDOW: Duration = Duration::from_secs(1);

/// The operations of a run that AWS has throttled, each with its own rate.
#[derive(Debug, Default)]
pub struct Pacer {
    operations: Mutex<HashMap<String, Operation>>,
}

#[derive(Debug, Default)]
struct Operation {
    /// When the answers that were not throttled came, over the last `WINDOW`.
    passed: VecDeque<Instant>,
    paced: Option<Paced>,
}

#[derive(Debug, Clone, Copy)]
struct Paced {
    /// Calls a second when AWS last throttled (`since`).
    rate: f64,
    since: Instant,
    /// The earliest the next call may go.
    next: Instant,
}

impl Paced {
    fn rate_at(&self, now: Instant) -> f64 {
        self.rate * (1.0 + GROWTH_PER_SECOND * now.saturating_duration_since(self.since).as_secs_f64())
    }
}

/// The token bucket AWS draws a call of `service`'s `operation` from (`service operation` when it
/// is the operation's own).
pub fn bucket(service: &str, operation: &str) -> String {
    let shared = match service {
        "ECS" => ecs_category(operation),
        "Elastic Load Balancing v2" => Some(elb_category(operation)),
        "Route 53" => Some("account"),
        "SSM" => match operation {
            "GetParameter" | "GetParameters" | "GetParametersByPath" => Some("get-parameters"),
            "DeleteParameter" | "DeleteParameters" => Some("delete-parameters"),
            _ => None,
        },
        _ => None,
    };
    format!("{service} {}", shared.unwrap_or(operation))
}

/// ECS's categories ("Request throttling for the Amazon ECS API": all actions of a category share
/// one bucket).
fn ecs_category(operation: &str) -> Option<&'static str> {
    Some(match operation {
        "CreateCluster"
        | "DeleteCluster"
        | "PutClusterCapacityProviders"
        | "UpdateCluster"
        | "UpdateClusterSettings" => "cluster-modify",
        "DescribeClusters" | "ListClusters" => "cluster-read",
        "RegisterTaskDefinition" | "DeregisterTaskDefinition" => "task-definition-modify",
        "DescribeTaskDefinition" | "ListTaskDefinitions" | "ListTaskDefinitionFamilies" => "task-definition-read",
        "CreateCapacityProvider" | "DeleteCapacityProvider" | "UpdateCapacityProvider" => "capacity-provider-modify",
        "DescribeCapacityProviders" => "capacity-provider-read",
        "TagResource" | "UntagResource" => "tag-modify",
        "ListTagsForResource" => "tag-read",
        "RunTask"
        | "StartTask"
        | "StopTask"
        | "ExecuteCommand"
        | "PutAttributes"
        | "DeleteAttributes"
        | "DeregisterContainerInstance"
        | "UpdateContainerAgent"
        | "UpdateContainerInstancesState" => "cluster-resource-modify",
        "DescribeTasks" | "ListTasks" | "DescribeContainerInstances" | "ListContainerInstances" | "ListAttributes" => {
            "cluster-resource-read"
        }
        "CreateService" | "UpdateService" | "DeleteService" => "service-modify",
        "DescribeServices" | "ListServices" => "service-read",
        _ => return None,
    })
}

/// Elastic Load Balancing's categories ("Request throttling for the Elastic Load Balancing API").
fn elb_category(operation: &str) -> &'static str {
    match operation {
        "CreateLoadBalancer" | "SetSubnets" => "resource-intensive",
        "RegisterTargets" | "DeregisterTargets" => "registration",
        op if op.starts_with("Describe") => "non-mutating",
        _ => "mutating",
    }
}

/// The bucket of a pacer key (`service operation`; a service's name may hold spaces, an
/// operation's does not).
fn bucket_of(operation: &str) -> String {
    match operation.rsplit_once(' ') {
        Some((service, op)) => bucket(service, op),
        None => operation.to_owned(),
    }
}

impl Pacer {
    /// When a call of `operation` may go (now, unless AWS has throttled its bucket): the call takes
    /// that turn.
    pub fn turn(&self, operation: &str) -> Instant {
        let now = Instant::now();
        let Ok(mut operations) = self.operations.lock() else { return now };
        let Some(op) = operations.get_mut(&bucket_of(operation)) else { return now };
        let Some(paced) = &mut op.paced else { return now };
        let rate = paced.rate_at(now);
        if rate >= paced.rate * RECOVERED {
            op.paced = None;
            return now;
        }
        let at = paced.next.max(now);
        paced.next = at + Duration::from_secs_f64(1.0 / rate);
        at
    }

    /// Waits for `operation`'s turn.
    pub async fn wait_turn(&self, operation: &str) {
        tokio::time::sleep_until(self.turn(operation)).await;
    }

    /// Records an answer to `operation`: throttled or not.
    pub fn answered(&self, operation: &str, throttled: bool) {
        let now = Instant::now();
        let Ok(mut operations) = self.operations.lock() else { return };
        let op = operations.entry(bucket_of(operation)).or_default();
        while op.passed.front().is_some_and(|t| now.saturating_duration_since(*t) >= WINDOW) {
            op.passed.pop_front();
        }
        if !throttled {
            op.passed.push_back(now);
            return;
        }
        let rate = match op.paced {
            None => SHARE_OF_WHAT_PASSED * op.passed.len() as f64,
            Some(p) if now.saturating_duration_since(p.since) >= SETTLE => p.rate_at(now) / 2.0,
            Some(_) => return,
        }
        .max(MIN_PER_SECOND);
        let next = op.paced.map_or(now, |p| p.next.max(now)) + Duration::from_secs_f64(1.0 / rate);
        op.paced = Some(Paced { rate, since: now, next });
    }

    /// The rate `operation` is held to now, if AWS has throttled it.
    pub fn rate(&self, operation: &str) -> Option<f64> {
        let operations = self.operations.lock().ok()?;
        operations.get(&bucket_of(operation))?.paced.map(|p| p.rate_at(Instant::now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OP: &str = "monitoring DescribeAlarms";

    #[test]
    fn calls_are_paced_by_the_bucket_aws_draws_them_from() {
        // EC2: each action its own bucket.
        assert_ne!(bucket("EC2", "DescribeVpcs"), bucket("EC2", "DescribeSubnets"));
        // ECS: a category shares one.
        assert_eq!(bucket("ECS", "DescribeServices"), bucket("ECS", "ListServices"));
        assert_eq!(bucket("ECS", "CreateCluster"), bucket("ECS", "PutClusterCapacityProviders"));
        assert_ne!(bucket("ECS", "DescribeServices"), bucket("ECS", "DescribeTasks"));
        // ELB: by category; Route 53: the account's one bucket; Parameter Store's reads shared.
        assert_eq!(
            bucket("Elastic Load Balancing v2", "DescribeTargetGroups"),
            bucket("Elastic Load Balancing v2", "DescribeListeners")
        );
        assert_ne!(
            bucket("Elastic Load Balancing v2", "CreateLoadBalancer"),
            bucket("Elastic Load Balancing v2", "CreateListener")
        );
        assert_eq!(bucket("Route 53", "ListResourceRecordSets"), bucket("Route 53", "GetChange"));
        assert_eq!(bucket("SSM", "GetParameter"), bucket("SSM", "GetParametersByPath"));
        assert_ne!(bucket("SSM", "GetParameter"), bucket("SSM", "PutParameter"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_throttle_paces_every_operation_of_its_bucket() {
        let pacer = Pacer::default();
        for _ in 0..5 {
            pacer.answered("ECS DescribeServices", false);
        }
        pacer.answered("ECS DescribeServices", true);
        assert!(pacer.rate("ECS ListServices").is_some(), "the same bucket");
        assert!(pacer.rate("ECS DescribeTasks").is_none(), "another bucket");
        assert!(pacer.rate("Elastic Load Balancing v2 DescribeListeners").is_none(), "another service");
    }

    #[tokio::test(start_paused = true)]
    async fn an_operation_goes_at_full_speed_until_it_is_throttled() {
        let pacer = Pacer::default();
        let start = Instant::now();
        for _ in 0..50 {
            pacer.wait_turn(OP).await;
            pacer.answered(OP, false);
        }
        assert_eq!(Instant::now(), start, "no call waited");
        assert_eq!(pacer.rate(OP), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_throttled_operation_is_spaced_under_what_passed_and_others_are_not() {
        let pacer = Pacer::default();
        for _ in 0..5 {
            pacer.answered(OP, false);
        }
        pacer.answered(OP, true);
        assert_eq!(pacer.rate(OP), Some(4.0), "0.8 × the 5 that passed");
        // Four calls take turns a quarter of a second apart; another operation does not wait.
        let start = Instant::now();
        let turns: Vec<f64> = (0..4).map(|_| (pacer.turn(OP) - start).as_secs_f64()).collect();
        assert_eq!(turns, [0.25, 0.5, 0.75, 1.0]);
        assert_eq!(pacer.turn("ec2 DescribeVpcs"), start);
    }

    #[tokio::test(start_paused = true)]
    async fn throttles_of_calls_already_sent_slow_it_once_and_a_later_one_halves_it() {
        let pacer = Pacer::default();
        for _ in 0..10 {
            pacer.answered(OP, false);
        }
        for _ in 0..4 {
            pacer.answered(OP, true);
        }
        assert_eq!(pacer.rate(OP), Some(8.0));
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(pacer.rate(OP).map(|r| (r * 100.0).round() / 100.0), Some(9.6), "grows 10% a second");
        pacer.answered(OP, true);
        assert_eq!(pacer.rate(OP), Some(4.8));
    }

    #[tokio::test(start_paused = true)]
    async fn a_throttle_with_nothing_passed_holds_it_to_one_a_second_and_the_pace_ends_in_time() {
        let pacer = Pacer::default();
        pacer.answered(OP, true);
        assert_eq!(pacer.rate(OP), Some(MIN_PER_SECOND));
        tokio::time::advance(Duration::from_secs(71)).await;
        let now = Instant::now();
        assert_eq!(pacer.turn(OP), now, "recovered after 70 s: 1 + 0.1 × 70 = 8 × the rate");
        assert_eq!(pacer.rate(OP), None);
    }
}
