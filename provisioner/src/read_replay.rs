//! The plan's answers to reads, replayed to the apply that follows it. `up` plans, then applies by
//! running the engine again, which reads every kind again: under the stack's lease and before the
//! apply's first change to a service, AWS would answer those reads as it answered the plan's a
//! moment before. So each answer the plan got is kept and given, once, to the same request of the
//! apply: a read asked again (a wait that polls) goes to AWS; nothing is replayed more than
//! `FRESH` after the plan began (a slow confirmation), and nothing of a service once it has
//! answered a mutating call of the apply: from then on its reads go to AWS (a read sent while the
//! change is in flight may be given the plan's answer, as AWS itself might answer it either way).
//! Only answers no retry would change are kept: successes and errors that are not throttling or
//! transient. Read replay is one of the seven ways a run retries or waits (the list: `wait`).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::http::{Headers, StatusCode};
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::byte_stream::ByteStream;

/// How long after the plan began its answers may stand for AWS's.
pub const FRESH: Duration = Duration::from_secs(30);

/// Whether an answer is one no retry would change (`aws::is_final_answer`): only those are kept.
pub type IsFinal = fn(&HttpResponse) -> bool;

/// A run's kept answers (one per run, in the HTTP layer every client sends through).
#[derive(Debug)]
pub struct Replay {
    state: Mutex<State>,
    is_final: IsFinal,
}

#[derive(Debug, Default)]
struct State {
    phase: Phase,
    since: Option<Instant>,
    answers: HashMap<Key, VecDeque<Kept>>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Phase {
    #[default]
    Off,
    Keeping,
    Replaying,
}

/// A request as AWS would tell it apart: service, operation (JSON-protocol services name it in a
/// header, not in the URI or the body: `DescribeSecret` and `GetResourcePolicy` of one secret
/// have the same body), method, URI and body (not the signature or its date).
type Key = (String, String, String, String, Vec<u8>);

#[derive(Debug, Clone)]
struct Kept {
    status: StatusCode,
    headers: Headers,
    body: Vec<u8>,
    at: Instant,
}

fn key_of(service: &str, operation: &str, request: &HttpRequest) -> Option<Key> {
    let body = request.body().bytes()?;
    let (method, uri) = (request.method().to_owned(), request.uri().to_owned());
    Some((service.to_owned(), operation.to_owned(), method, uri, body.to_vec()))
}

impl Replay {
    /// Nothing kept yet; of what is asked while keeping, the answers `is_final` accepts are kept.
    pub fn new(is_final: IsFinal) -> Self {
        Self { state: Mutex::default(), is_final }
    }

    /// From now on (a plan), the answers to reads are kept.
    pub fn keep(&self) {
        self.set(Phase::Keeping, Some(Instant::now()));
    }

    /// From now on (the apply), reads are answered from what was kept, while it is fresh.
    pub fn replay(&self) {
        let Ok(mut s) = self.state.lock() else { return };
        if s.phase == Phase::Keeping && s.since.is_some_and(|t| t.elapsed() < FRESH) {
            s.phase = Phase::Replaying;
        } else {
            *s = State::default();
        }
    }

    /// Nothing kept, nothing replayed.
    pub fn stop(&self) {
        self.set(Phase::Off, None);
    }

    fn set(&self, phase: Phase, since: Option<Instant>) {
        if let Ok(mut s) = self.state.lock() {
            *s = State { phase, since, answers: HashMap::new() };
        }
    }

    /// `service` has answered a mutating call: what was kept of it is no longer what AWS would
    /// answer.
    pub fn mutation(&self, service: &str) {
        if let Ok(mut s) = self.state.lock() {
            s.answers.retain(|key, _| key.0 != service);
        }
    }

    /// The kept answer to this read (`operation` of `service`), if there is one (given once).
    pub fn answer(&self, service: &str, operation: &str, request: &HttpRequest) -> Option<HttpResponse> {
        let mut s = self.state.lock().ok()?;
        if s.phase != Phase::Replaying || s.since.is_none_or(|t| t.elapsed() >= FRESH) {
            return None;
        }
        let kept = s.answers.get_mut(&key_of(service, operation, request)?)?.pop_front()?;
        let mut response = HttpResponse::new(kept.status, SdkBody::from(kept.body));
        *response.headers_mut() = kept.headers;
        // As a cache says its answer is old (RFC 9111): the SDK then does not take the answer's
        // Date for AWS's clock now, which would skew the signatures that follow.
        response.headers_mut().insert("age", kept.at.elapsed().as_secs().to_string());
        response.add_extension(Replayed);
        Some(response)
    }

    /// Whether the answer to this read (`operation` of `service`) is to be kept: its key, if so.
    pub fn wants(&self, service: &str, operation: &str, request: &HttpRequest) -> Option<Key> {
        let s = self.state.lock().ok()?;
        if s.phase == Phase::Keeping { key_of(service, operation, request) } else { None }
    }

    /// Keeps `response` (read whole) under `key` when no retry would change it; the same answer,
    /// whole, for the caller.
    pub async fn keep_answer(&self, key: Key, mut response: HttpResponse) -> Result<HttpResponse, ConnectorError> {
        let body = ByteStream::new(response.take_body()).collect().await;
        let body = body.map_err(|e| ConnectorError::io(e.into()))?.to_vec();
        *response.body_mut() = SdkBody::from(body.clone());
        if (self.is_final)(&response)
            && let Ok(mut s) = self.state.lock()
            && s.phase == Phase::Keeping
        {
            let kept =
                Kept { status: response.status(), headers: response.headers().clone(), body, at: Instant::now() };
            s.answers.entry(key).or_default().push_back(kept);
        }
        Ok(response)
    }
}

/// Keeps the answers to reads from now on (`Replay::keep`); keeping and replaying end when this
/// is dropped, however the run that made it ends.
#[derive(Debug)]
pub struct Keeping(Arc<Replay>);

impl Keeping {
    pub fn start(replay: &Arc<Replay>) -> Self {
        replay.keep();
        Self(Arc::clone(replay))
    }
}

impl Drop for Keeping {
    fn drop(&mut self) {
        self.0.stop();
    }
}

/// What a replayed answer carries, so that it is not counted as a call to AWS.
#[derive(Debug, Clone, Copy)]
pub struct Replayed;

#[cfg(test)]
mod tests {
    use super::*;

    fn read(body: &str) -> HttpRequest {
        let mut r = HttpRequest::new(SdkBody::from(body.to_owned()));
        r.set_uri("https://ec2.ap-northeast-1.amazonaws.com/").expect("uri");
        r
    }

    fn answer(status: u16, body: &str) -> HttpResponse {
        HttpResponse::new(status.try_into().expect("status"), SdkBody::from(body.to_owned()))
    }

    /// Sends `request` as the HTTP layer does while keeping: the answer kept when it should be.
    async fn asked(replay: &Replay, service: &str, request: &str, status: u16, body: &str) {
        asked_op(replay, service, "Op", request, status, body).await;
    }

    async fn asked_op(replay: &Replay, service: &str, operation: &str, request: &str, status: u16, body: &str) {
        if let Some(key) = replay.wants(service, operation, &read(request)) {
            replay.keep_answer(key, answer(status, body)).await.expect("read whole");
        }
    }

    fn replayed(replay: &Replay, service: &str, request: &str) -> Option<String> {
        replayed_op(replay, service, "Op", request)
    }

    fn replayed_op(replay: &Replay, service: &str, operation: &str, request: &str) -> Option<String> {
        let a = replay.answer(service, operation, &read(request))?;
        assert!(a.extension::<Replayed>().is_some());
        assert!(a.headers().get("age").is_some(), "an old answer says so: its Date is not AWS's clock now");
        Some(format!("{} {}", a.status().as_u16(), std::str::from_utf8(a.body().bytes()?).ok()?))
    }

    #[tokio::test]
    async fn the_plans_answer_is_given_once_to_the_same_read_and_only_then() {
        let replay = Replay::new(crate::aws::is_final_answer);
        replay.keep();
        asked(&replay, "EC2", "Action=DescribeVpcs", 200, "<vpcs/>").await;
        asked(&replay, "IAM", "Action=GetRole&RoleName=a", 404, "<Code>NoSuchEntity</Code>").await;
        assert_eq!(replayed(&replay, "EC2", "Action=DescribeVpcs"), None, "nothing is replayed while keeping");
        replay.replay();
        assert_eq!(replayed(&replay, "EC2", "Action=DescribeVpcs").as_deref(), Some("200 <vpcs/>"));
        assert_eq!(replayed(&replay, "EC2", "Action=DescribeVpcs"), None, "asked again: AWS answers");
        assert_eq!(replayed(&replay, "EC2", "Action=DescribeVpcs&VpcId=vpc-1"), None, "another request");
        assert_eq!(
            replayed(&replay, "IAM", "Action=GetRole&RoleName=a").as_deref(),
            Some("404 <Code>NoSuchEntity</Code>")
        );
    }

    #[tokio::test]
    async fn operations_with_the_same_request_body_are_kept_apart_whatever_order_the_apply_asks_in() {
        // Secrets Manager's DescribeSecret and GetResourcePolicy of one secret: one URI, one body,
        // the operation only in X-Amz-Target.
        let replay = Replay::new(crate::aws::is_final_answer);
        replay.keep();
        let body = r#"{"SecretId":"konnichiwa/api-key"}"#;
        asked_op(&replay, "Secrets Manager", "Secrets Manager:DescribeSecret", body, 200, "described").await;
        asked_op(&replay, "Secrets Manager", "Secrets Manager:GetResourcePolicy", body, 200, "policy").await;
        replay.replay();
        let policy = replayed_op(&replay, "Secrets Manager", "Secrets Manager:GetResourcePolicy", body);
        assert_eq!(policy.as_deref(), Some("200 policy"), "asked first in the apply, answered its own");
        let described = replayed_op(&replay, "Secrets Manager", "Secrets Manager:DescribeSecret", body);
        assert_eq!(described.as_deref(), Some("200 described"));
    }

    #[tokio::test]
    async fn a_change_to_a_service_ends_its_replay_and_no_other() {
        let replay = Replay::new(crate::aws::is_final_answer);
        replay.keep();
        asked(&replay, "EC2", "Action=DescribeVpcs", 200, "<vpcs/>").await;
        asked(&replay, "ECS", "{}", 200, "{}").await;
        replay.replay();
        replay.mutation("EC2");
        assert_eq!(replayed(&replay, "EC2", "Action=DescribeVpcs"), None);
        assert_eq!(replayed(&replay, "ECS", "{}").as_deref(), Some("200 {}"));
    }

    #[tokio::test]
    async fn throttling_and_transient_answers_are_not_kept() {
        let replay = Replay::new(crate::aws::is_final_answer);
        replay.keep();
        asked(&replay, "IAM", "Action=GetRole", 400, "<Error><Code>Throttling</Code></Error>").await;
        asked(&replay, "IAM", "Action=ListRoles", 400, "<Error><Code>RequestTimeout</Code></Error>").await;
        asked(&replay, "IAM", "Action=GetUser", 500, "<Error><Code>InternalFailure</Code></Error>").await;
        replay.replay();
        for request in ["Action=GetRole", "Action=ListRoles", "Action=GetUser"] {
            assert_eq!(replayed(&replay, "IAM", request), None, "{request}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_is_replayed_once_the_plan_is_older_than_fresh() {
        let replay = Replay::new(crate::aws::is_final_answer);
        replay.keep();
        asked(&replay, "EC2", "Action=DescribeVpcs", 200, "<vpcs/>").await;
        asked(&replay, "EC2", "Action=DescribeSubnets", 200, "<subnets/>").await;
        // A confirmation answered late: nothing stands for AWS's answer.
        tokio::time::advance(FRESH).await;
        replay.replay();
        assert_eq!(replayed(&replay, "EC2", "Action=DescribeVpcs"), None);
        // Replaying began in time, but the plan grew old meanwhile.
        replay.keep();
        asked(&replay, "EC2", "Action=DescribeVpcs", 200, "<vpcs/>").await;
        replay.replay();
        tokio::time::advance(FRESH).await;
        assert_eq!(replayed(&replay, "EC2", "Action=DescribeVpcs"), None);
    }
}
