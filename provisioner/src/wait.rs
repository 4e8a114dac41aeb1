//! Waiting out what AWS has not finished yet. Throttling, 5xx answers and broken connections are
//! retried by every client's SDK retry configuration (`aws`); this module retries the errors
//! that only mean "not yet", each class with its own limit inside the run's deadline:
//! - `Wait::Consistency`: EC2 and ELB answer "not found" for something created a moment ago (ELB
//!   for a certificate ACM issued a moment ago or for subnets, a security group or a VPC EC2 made
//!   a moment ago, Auto Scaling for such subnets, S3 for a bucket it created a moment ago or is
//!   still creating: `OperationAborted`);
//! - `Wait::Propagation`: a role, profile, service-linked role, service or scalable target made
//!   seconds ago is not yet usable by the service that needs it (a few minutes, not the run's
//!   half hour: a genuine permission error must not wait 30 minutes);
//! - `Wait::Dependency`: a dependency still settling (ENIs, tasks, listeners in a teardown; a
//!   cluster's update in `up`), what `meaning` calls "in use" in the call's service, until the
//!   deadline;
//! - `Wait::Settling`: AWS finishing work it accepted (a certificate's DNS validation, a Route 53
//!   change reaching every name server), reported by the call site as a "not yet" code, until the
//!   deadline.
//!
//! A genuine `not authorized to perform: iam:PassRole` and every validation error are reported at
//! once.
//!
//! `until` is one of the seven ways a run retries or waits, each owned by one module:
//! - the SDK's retries of throttling, 5xx answers and broken connections (`aws`);
//! - the in-flight bound on the calls sent at once (`in_flight`);
//! - pacing: an operation AWS has throttled is spaced out (`pacing`);
//! - read replay: the plan's answers stand for the apply's same reads (`read_replay`);
//! - the lease fence: a run that lost the stack's lease sends no further change (`fence`);
//! - `Step`'s adoption loop: a create whose answer was lost adopts what it made (`reconcile::step`);
//! - `until`, here: "not yet" waited out, each class within its limit; while it waits, the wait is
//!   listed in the line that names what the run is waiting on (`progress`).

use std::future::Future;
use std::time::{Duration, Instant};

use crate::error::Error;

/// What is being waited for, which decides what is retried and for how long.
#[derive(Debug, Clone, Copy)]
pub enum Wait {
    Consistency,
    Propagation,
    /// A dependency still settling, in the call's service's words (`Meaning::InUse`:
    /// DependencyViolation while ENIs go, a cluster that still has tasks…), until the deadline.
    Dependency,
    /// A dependency that settles within this long if it settles at all (a listener letting go of
    /// a target group or a certificate, a cluster's update): held longer, something outside the
    /// stack holds it, and waiting out the run's deadline would only hide that.
    DependencyWithin(Duration),
    /// The "not yet" codes the call site reports while AWS finishes (see `not_yet`).
    Settling(&'static [&'static str]),
}

/// A "not yet" answer of our own making, for `Wait::Settling`: `code` names the state awaited.
pub fn not_yet(code: &str, what: impl Into<String>, message: impl Into<String>) -> Error {
    Error::Aws {
        action: "wait for",
        resource: what.into(),
        answered_by: "",
        code: Some(code.into()),
        message: message.into(),
        source: None,
    }
}

/// What a wait that ran into the run's deadline says of it.
const RUN_DEADLINE: &str = "the run's deadline; raise it with --timeout";

/// How long each class may wait at most (the run's deadline can cut it shorter).
pub const CONSISTENCY_LIMIT: Duration = Duration::from_secs(120);
pub const PROPAGATION_LIMIT: Duration = Duration::from_secs(240);

impl Wait {
    /// The longest this wait may last on its own (None: until the run's deadline).
    pub fn limit(self) -> Option<Duration> {
        match self {
            Self::Consistency => Some(CONSISTENCY_LIMIT),
            Self::Propagation => Some(PROPAGATION_LIMIT),
            Self::DependencyWithin(limit) => Some(limit),
            Self::Dependency | Self::Settling(_) => None,
        }
    }

    fn backoff(self) -> (Duration, Duration) {
        match self {
            Self::Consistency => (Duration::from_millis(250), Duration::from_secs(5)),
            Self::Propagation | Self::Dependency | Self::DependencyWithin(_) | Self::Settling(_) => {
                (Duration::from_secs(1), Duration::from_secs(15))
            }
        }
    }

    /// True when `e` means "not yet" for this class.
    pub fn retries(self, e: &Error) -> bool {
        let Some(code) = e.code() else { return false };
        if e.is_denied() {
            return false;
        }
        match self {
            Self::Consistency => e.is_not_visible_yet(),
            Self::Propagation => e.is_not_usable_yet(),
            Self::Dependency | Self::DependencyWithin(_) => e.means(crate::meaning::Meaning::InUse),
            Self::Settling(codes) => codes.contains(&code),
        }
    }

    fn describe(self) -> String {
        match self {
            Self::Consistency => format!("AWS's eventual consistency is given {}s", CONSISTENCY_LIMIT.as_secs()),
            Self::Propagation => format!(
                "IAM and service propagation is given {}s; if it persists, the role or permission is wrong",
                PROPAGATION_LIMIT.as_secs()
            ),
            Self::DependencyWithin(limit) => format!(
                "it settles within {}s when only the stack uses it; held longer, something outside the stack uses it: \
                 find it (the resource's page in the AWS console lists what uses it), release it, and run again",
                limit.as_secs()
            ),
            Self::Dependency | Self::Settling(_) => RUN_DEADLINE.to_owned(),
        }
    }
}

/// The delay before retry `attempt` (0-based): exponential from `first`, capped at `max`, with
/// jitter in [50%, 100%] so concurrent runs do not retry in step.
pub fn delay(first: Duration, max: Duration, attempt: u32) -> Duration {
    let base = first.saturating_mul(2u32.saturating_pow(attempt.min(16))).min(max);
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    base.mul_f64(0.5 + f64::from(nanos % 500) / 1000.0)
}

/// Runs `op` until it succeeds, fails with an error `wait` does not retry, or the class's limit
/// or the deadline passes (then the last error is returned, saying what was awaited).
pub async fn until<T, F, Fut>(deadline: Instant, wait: Wait, waiting_for: &str, mut op: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    // Measured on tokio's clock, so tests can run it with paused time.
    let left = deadline.saturating_duration_since(Instant::now());
    let budget = wait.limit().map_or(left, |l| left.min(l));
    // What ends the wait, as the error says it: the class's own limit, or the run's deadline.
    let why = if budget < left { wait.describe() } else { RUN_DEADLINE.to_owned() };
    let started = tokio::time::Instant::now();
    let stop = started + budget;
    let (first, max) = wait.backoff();
    let mut attempt = 0;
    // Listed among the waits in progress from the first "not yet" on (`progress`).
    let mut listed = None;
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) if !wait.retries(&e) => return Err(e),
            Err(e) => {
                let pause = delay(first, max, attempt);
                if tokio::time::Instant::now() + pause > stop {
                    return Err(Error::Deadline {
                        waiting_for: format!("{waiting_for} ({e})"),
                        elapsed: started.elapsed(),
                        limit: why,
                    });
                }
                tracing::info!(code = e.code().unwrap_or_default(), ?pause, "{waiting_for}: not yet, retrying");
                listed.get_or_insert_with(|| crate::progress::WAITS.start(waiting_for));
                tokio::time::sleep(pause).await;
                attempt += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn aws(code: &str, message: &str) -> Error {
        Error::Aws {
            action: "test",
            resource: "r".into(),
            answered_by: "aws_sdk_ecs",
            code: Some(code.into()),
            message: message.into(),
            source: None,
        }
    }

    fn ec2(code: &str, message: &str) -> Error {
        Error::Aws {
            action: "test",
            resource: "r".into(),
            answered_by: "aws_sdk_ec2",
            code: Some(code.into()),
            message: message.into(),
            source: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_is_listed_while_it_waits_and_not_after() {
        let far = Instant::now() + Duration::from_secs(3600);
        let label = "the test's own VPC to be visible";
        let listed = |now| crate::progress::WAITS.line(now).is_some_and(|l| l.contains(label));
        let tries = AtomicU32::new(0);
        let seen_while_waiting = until(far, Wait::Consistency, label, || async {
            match tries.fetch_add(1, Ordering::SeqCst) {
                0 => Err(aws("InvalidVpcID.NotFound", "The vpc ID 'vpc-1' does not exist")),
                _ => Ok(listed(tokio::time::Instant::now())),
            }
        })
        .await;
        assert_eq!(seen_while_waiting.ok(), Some(true), "listed while it waited");
        assert!(!listed(tokio::time::Instant::now()), "and not after");
    }

    #[tokio::test(start_paused = true)]
    async fn each_class_retries_its_own_errors_only() {
        let far = Instant::now() + Duration::from_secs(3600);
        let tries = AtomicU32::new(0);
        let r = until(far, Wait::Consistency, "the VPC", || async {
            match tries.fetch_add(1, Ordering::SeqCst) {
                0 => Err(aws("InvalidVpcID.NotFound", "The vpc ID 'vpc-1' does not exist")),
                _ => Ok(7),
            }
        })
        .await;
        assert_eq!(r.ok(), Some(7));

        for (wait, e, retried) in [
            (Wait::Consistency, aws("InvalidParameterValue", "bad"), false),
            (Wait::Propagation, aws("ClientException", "Role is not valid"), true),
            (
                Wait::Propagation,
                aws(
                    "InvalidParameterException",
                    "Unable to assume the service linked role. Please verify that the ECS service linked role exists.",
                ),
                true,
            ),
            (
                Wait::Propagation,
                aws(
                    "AccessDenied",
                    "User: arn:aws:sts::1:assumed-role/x is not authorized to perform: iam:PassRole on resource: r",
                ),
                false,
            ),
            (Wait::Dependency, ec2("DependencyViolation", "in use"), true),
            (Wait::Dependency, ec2("Throttling", "Rate exceeded"), false),
            (Wait::Dependency, aws("ClusterContainsTasksException", "The cluster cannot be deleted"), true),
            // Only the service that says it: ECS has no DependencyViolation.
            (Wait::Dependency, aws("DependencyViolation", "in use"), false),
        ] {
            assert_eq!(wait.retries(&e), retried, "{wait:?} {e}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn propagation_has_its_own_limit_far_below_the_deadline() {
        let started = tokio::time::Instant::now();
        let far = Instant::now() + Duration::from_secs(1800);
        let tries = AtomicU32::new(0);
        let r: Result<(), _> = until(far, Wait::Propagation, "role x to be usable", || async {
            tries.fetch_add(1, Ordering::SeqCst);
            Err(aws("ClientException", "Role is not valid"))
        })
        .await;
        let e = r.expect_err("gives up");
        assert!(matches!(e, Error::Deadline { .. }), "{e}");
        assert!(e.to_string().contains("role x to be usable") && e.to_string().contains("propagation"), "{e}");
        let waited = started.elapsed();
        assert!(waited <= PROPAGATION_LIMIT && waited >= PROPAGATION_LIMIT / 2, "{waited:?}");
        assert!(tries.load(Ordering::SeqCst) > 5);
    }

    #[tokio::test(start_paused = true)]
    async fn a_permission_error_is_reported_at_once() {
        let far = Instant::now() + Duration::from_secs(1800);
        let tries = AtomicU32::new(0);
        let r: Result<(), _> = until(far, Wait::Propagation, "x", || async {
            tries.fetch_add(1, Ordering::SeqCst);
            Err(aws("AccessDenied", "is not authorized to perform: iam:PassRole on resource: role/x"))
        })
        .await;
        assert_eq!(r.expect_err("fails").code(), Some("AccessDenied"));
        assert_eq!(tries.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn dependency_waits_until_the_deadline() {
        let started = tokio::time::Instant::now();
        let deadline = Instant::now() + Duration::from_secs(600);
        let r: Result<(), _> = until(deadline, Wait::Dependency, "the ENI to go", || async {
            Err(ec2("DependencyViolation", "has dependencies"))
        })
        .await;
        let e = r.expect_err("gives up");
        assert!(e.to_string().contains("the ENI to go") && e.to_string().contains("--timeout"), "{e}");
        assert!(started.elapsed() > Duration::from_secs(500), "{:?}", started.elapsed());
    }

    #[tokio::test(start_paused = true)]
    async fn a_dependency_held_past_its_limit_is_named_as_held_by_something_else() {
        let started = tokio::time::Instant::now();
        let far = Instant::now() + Duration::from_secs(1800);
        let limit = Duration::from_secs(300);
        let r: Result<(), _> = until(far, Wait::DependencyWithin(limit), "target group t to be free", || async {
            Err(aws("ResourceInUseException", "The specified resource is in use."))
        })
        .await;
        let e = r.expect_err("gives up at its limit, not the run's deadline");
        assert!(
            e.to_string().contains("target group t to be free") && e.to_string().contains("outside the stack"),
            "{e}"
        );
        let waited = started.elapsed();
        assert!(waited <= limit && waited >= limit / 2, "{waited:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_cut_short_by_the_runs_deadline_says_so_not_its_own_limit() {
        let near = Instant::now() + Duration::from_secs(60);
        let r: Result<(), _> =
            until(near, Wait::DependencyWithin(Duration::from_secs(1200)), "certificate c to be unused", || async {
                Err(aws("ResourceInUseException", "The specified resource is in use."))
            })
            .await;
        let e = r.expect_err("gives up at the deadline");
        assert!(e.to_string().contains("--timeout") && !e.to_string().contains("outside the stack"), "{e}");
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let (first, max) = (Duration::from_millis(250), Duration::from_secs(15));
        assert!(delay(first, max, 0) <= Duration::from_millis(250));
        assert!(delay(first, max, 3) >= Duration::from_secs(1));
        assert!(delay(first, max, 30) <= max);
    }
}
