//! A proxy in front of moto that behaves like a busy AWS account, for the convergence tests:
//! - throttles a share of all calls (with each protocol's own throttling answer);
//! - forwards a share of mutating calls and then loses the answer (a 500 after the change
//!   happened, so the SDK retries a call that was carried out);
//! - answers chosen operations with scripted replies: AWS's real error codes and messages (an
//!   IAM role not yet usable, a resource not yet visible), or bodies for operations moto lacks;
//! - stops answering after the Nth mutating call was carried out and tells the test, which
//!   then kills the client (SIGKILL at that point);
//! - optionally reports the primary ECS deployment COMPLETED (moto never does);
//! - optionally carries out chosen calls twice and answers the second time (a delete is then
//!   answered as AWS answers the delete of what is gone: "not found", "already deleted");
//! - optionally answers every call only after a fixed delay, as a distant region does (the
//!   latency benchmark), and counts how many calls were in flight at once.
//!
//! Faults are decided by a hash of (seed, operation, how many times it was seen): the same seed
//! faults the same calls whatever the interleaving. Every request is recorded for assertions.
//! It listens on 127.0.0.1 only and stops when dropped.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use serde_json::Value;

/// Shares of calls to fault, and the seed that picks them.
#[derive(Debug, Clone, Copy, Default)]
pub struct Faults {
    pub seed: u64,
    /// Share of all calls answered with throttling before reaching moto.
    pub throttle: f64,
    /// Share of mutating calls forwarded to moto whose answer is then lost (500).
    pub lose_answer: f64,
}

/// A scripted reply to the next `times` calls of `operation`.
#[derive(Debug, Clone)]
pub struct Script {
    pub operation: String,
    /// Calls of the operation to let through before the script applies.
    pub after: usize,
    pub times: usize,
    pub reply: Reply,
    /// Applies only to calls whose request body contains this (None: to every call).
    pub only_if: Option<String>,
    /// Applies only once a call of this operation has arrived (None: from the start).
    pub once_called: Option<String>,
}

#[derive(Debug, Clone)]
pub enum Reply {
    /// AWS's error, in the operation's protocol.
    Error { status: u16, code: String, message: String },
    /// A successful body (JSON for JSON protocols, XML for query protocols).
    Body(String),
    /// Forward to moto, then lose the answer.
    LoseAnswer,
    /// A successful body computed from the request's body (a model of an API moto lacks).
    Computed(Responder),
}

/// Picks operations by name.
type Picks = dyn Fn(&str) -> bool + Send + Sync;

/// Computes a reply's body from the request's body.
#[derive(Clone)]
pub struct Responder(pub Arc<dyn Fn(&str) -> String + Send + Sync>);

impl std::fmt::Debug for Responder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Responder")
    }
}

impl Script {
    pub fn error(operation: &str, times: usize, code: &str, message: &str) -> Self {
        Self {
            operation: operation.into(),
            after: 0,
            times,
            reply: Reply::Error { status: 400, code: code.into(), message: message.into() },
            only_if: None,
            once_called: None,
        }
    }

    pub fn body(operation: &str, times: usize, body: &str) -> Self {
        Self {
            operation: operation.into(),
            after: 0,
            times,
            reply: Reply::Body(body.into()),
            only_if: None,
            once_called: None,
        }
    }

    /// The next `times` calls answered with `respond(request body)`.
    pub fn computed(operation: &str, times: usize, respond: impl Fn(&str) -> String + Send + Sync + 'static) -> Self {
        let reply = Reply::Computed(Responder(Arc::new(respond)));
        Self { operation: operation.into(), after: 0, times, reply, only_if: None, once_called: None }
    }

    pub fn lose_answer(operation: &str, times: usize) -> Self {
        Self {
            operation: operation.into(),
            after: 0,
            times,
            reply: Reply::LoseAnswer,
            only_if: None,
            once_called: None,
        }
    }

    /// Applies only to calls whose body contains `needle` (one caller's calls, when several
    /// kinds call the operation at once).
    pub fn only_if(mut self, needle: &str) -> Self {
        self.only_if = Some(needle.into());
        self
    }

    /// Applies only once `operation` has been called (what AWS answers right after a create).
    pub fn once_called(mut self, operation: &str) -> Self {
        self.once_called = Some(operation.into());
        self
    }

    /// Lets the first `n` calls through before applying.
    pub fn after(mut self, n: usize) -> Self {
        self.after = n;
        self
    }
}

/// What happened to each operation.
#[derive(Debug, Clone, Default)]
pub struct OpStats {
    pub seen: usize,
    pub forwarded: usize,
    pub throttled: usize,
    pub lost: usize,
    pub scripted: usize,
}

#[derive(Default)]
struct State {
    faults: Faults,
    /// Sign every request again with these credentials (access key, secret) for moto.
    resign: Option<(String, String)>,
    scripts: Vec<Script>,
    complete_rollouts: bool,
    unplaceable: bool,
    /// Operation -> (calls allowed in any one second, the times of the calls let through in
    /// the last second): beyond it, AWS's throttling answer, as for a service's hard rate limit.
    /// Operation -> (calls a second, each service's recent calls of it).
    rate_limits: BTreeMap<String, (usize, BTreeMap<String, std::collections::VecDeque<std::time::Instant>>)>,
    /// AWS's documented token buckets (`aws_rates`), when on: each bucket's tokens and when it
    /// was last filled (a bucket not yet drawn from is full).
    documented: Option<BTreeMap<String, (f64, std::time::Instant)>>,
    /// The share of each documented bucket (capacity and refill) left to this client: 1 on a
    /// quiet account, less where other callers draw on the same buckets.
    documented_share: f64,
    /// Stop answering after this many mutating calls were carried out, and say so.
    kill_after: Option<(usize, tokio::sync::mpsc::UnboundedSender<usize>)>,
    /// Stop answering after this operation was carried out, and say so.
    kill_after_op: Option<(String, tokio::sync::mpsc::UnboundedSender<usize>)>,
    /// Hold the answer to the Nth mutating call until the test lets it go, and say so.
    hold_after: Option<(usize, tokio::sync::mpsc::UnboundedSender<usize>, Arc<tokio::sync::Notify>)>,
    mutations: usize,
    /// Operations carried out twice, answered with the second answer.
    again: Option<Arc<Picks>>,
    /// (operation, status, body) of each second answer.
    second_answers: Vec<(String, u16, String)>,
    /// Added before every answer: a region's round trip.
    latency: Duration,
    /// Calls in flight now, and the most there were at once.
    in_flight: usize,
    peak_in_flight: usize,
    ops: BTreeMap<String, OpStats>,
    /// (operation, request body) in arrival order.
    requests: Vec<(String, String)>,
    /// (when, operation) of each call's arrival, for the latency benchmark's trace.
    arrivals: Vec<(std::time::Instant, String)>,
}

/// The running proxy. Point `AWS_ENDPOINT_URL` at `url`.
pub struct Proxy {
    pub url: String,
    state: Arc<Mutex<State>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// How a service's answers are shaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Ec2,
    Query,
    Json,
    RestXml,
}

/// (service signing name, operation) of a request.
fn identify(method: &Method, path: &str, headers: &HeaderMap, body: &[u8]) -> (String, String) {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default();
    // Credential=KEY/DATE/REGION/SERVICE/aws4_request
    let service = auth.split("Credential=").nth(1).and_then(|c| c.split('/').nth(3)).unwrap_or_default().to_owned();
    if service == "s3" {
        return (service, s3_operation(method, path));
    }
    if service == "route53" {
        return (service, route53_operation(method, path));
    }
    if let Some(target) = headers.get("x-amz-target").and_then(|v| v.to_str().ok()) {
        return (service, target.rsplit('.').next().unwrap_or(target).to_owned());
    }
    let form = String::from_utf8_lossy(body);
    let action = form.split('&').find_map(|kv| kv.strip_prefix("Action=")).unwrap_or_default().to_owned();
    (service, action)
}

/// S3's REST operations the provisioner calls, from method, path-style path and subresource.
fn s3_operation(method: &Method, path: &str) -> String {
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let segments = path.trim_matches('/').split('/').filter(|s| !s.is_empty()).count();
    let sub = query.split('&').map(|kv| kv.split('=').next().unwrap_or_default()).find(|k| {
        ["tagging", "publicAccessBlock", "encryption", "ownershipControls", "lifecycle", "policy", "versions", "delete"]
            .contains(k)
    });
    let op = match (method.as_str(), segments, sub) {
        ("GET", 0, _) => "ListBuckets",
        ("PUT", 1, None) => "CreateBucket",
        ("DELETE", 1, None) => "DeleteBucket",
        ("HEAD", 1, None) => "HeadBucket",
        ("GET", 1, None) => "ListObjectsV2",
        ("GET", 1, Some("versions")) => "ListObjectVersions",
        ("POST", 1, Some("delete")) => "DeleteObjects",
        ("GET", 1, Some("tagging")) => "GetBucketTagging",
        ("PUT", 1, Some("tagging")) => "PutBucketTagging",
        ("GET", 1, Some("publicAccessBlock")) => "GetPublicAccessBlock",
        ("PUT", 1, Some("publicAccessBlock")) => "PutPublicAccessBlock",
        ("GET", 1, Some("encryption")) => "GetBucketEncryption",
        ("PUT", 1, Some("encryption")) => "PutBucketEncryption",
        ("GET", 1, Some("ownershipControls")) => "GetBucketOwnershipControls",
        ("PUT", 1, Some("ownershipControls")) => "PutBucketOwnershipControls",
        ("GET", 1, Some("lifecycle")) => "GetBucketLifecycleConfiguration",
        ("PUT", 1, Some("lifecycle")) => "PutBucketLifecycleConfiguration",
        ("GET", 1, Some("policy")) => "GetBucketPolicy",
        ("PUT", 1, Some("policy")) => "PutBucketPolicy",
        ("PUT", _, None) => "PutObject",
        ("GET", _, None) => "GetObject",
        ("DELETE", _, None) => "DeleteObject",
        _ => "",
    };
    op.to_owned()
}

/// Route 53's REST operations the provisioner calls, from method and path.
fn route53_operation(method: &Method, path: &str) -> String {
    let path = path.split_once('?').map_or(path, |(p, _)| p).trim_end_matches('/');
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let op = match (method.as_str(), segments.as_slice()) {
        ("GET", [_, "hostedzonesbyname"]) => "ListHostedZonesByName",
        ("POST", [_, "hostedzone"]) => "CreateHostedZone",
        ("GET", [_, "hostedzone", _]) => "GetHostedZone",
        ("GET", [_, "hostedzone", _, "rrset"]) => "ListResourceRecordSets",
        ("POST", [_, "hostedzone", _, "rrset"]) => "ChangeResourceRecordSets",
        ("GET", [_, "change", _]) => "GetChange",
        _ => "",
    };
    op.to_owned()
}

fn protocol(service: &str) -> Protocol {
    match service {
        "ec2" => Protocol::Ec2,
        // Route 53 is REST-XML, but wraps its errors as the query protocols do.
        "iam" | "autoscaling" | "elasticloadbalancing" | "sts" | "monitoring" | "route53" | "sns" => Protocol::Query,
        "s3" => Protocol::RestXml,
        _ => Protocol::Json,
    }
}

fn error_response(p: Protocol, status: u16, code: &str, message: &str) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut headers = HeaderMap::new();
    let body = match p {
        Protocol::Ec2 => {
            headers.insert("content-type", "text/xml".parse().expect("header"));
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Errors><Error><Code>{code}</Code><Message>{}</Message></Error></Errors><RequestID>fault-proxy</RequestID></Response>",
                xml_escape(message)
            )
        }
        Protocol::Query => {
            headers.insert("content-type", "text/xml".parse().expect("header"));
            format!(
                "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{}</Message></Error><RequestId>fault-proxy</RequestId></ErrorResponse>",
                xml_escape(message)
            )
        }
        Protocol::Json => {
            headers.insert("content-type", "application/x-amz-json-1.1".parse().expect("header"));
            headers.insert("x-amzn-errortype", code.parse().expect("header"));
            serde_json::json!({ "__type": code, "message": message }).to_string()
        }
        Protocol::RestXml => {
            headers.insert("content-type", "application/xml".parse().expect("header"));
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>{}</Message><RequestId>fault-proxy</RequestId></Error>",
                xml_escape(message)
            )
        }
    };
    (StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST), headers, body.into_bytes())
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn throttling(p: Protocol) -> (StatusCode, HeaderMap, Vec<u8>) {
    match p {
        Protocol::Ec2 => error_response(p, 503, "RequestLimitExceeded", "Request limit exceeded."),
        Protocol::Query => error_response(p, 400, "Throttling", "Rate exceeded"),
        Protocol::Json => error_response(p, 400, "ThrottlingException", "Rate exceeded"),
        Protocol::RestXml => error_response(p, 503, "SlowDown", "Please reduce your request rate."),
    }
}

/// True when a call of `service`'s `op` now would be over its rate limit; otherwise it is counted
/// against it. Each service has its own limit for an operation of that name, as AWS's token
/// buckets are per service and API.
fn over_rate_limit(
    limits: &mut BTreeMap<String, (usize, BTreeMap<String, std::collections::VecDeque<std::time::Instant>>)>,
    service: &str,
    op: &str,
) -> bool {
    let Some((per_second, services)) = limits.get_mut(op) else { return false };
    let recent = services.entry(service.to_owned()).or_default();
    let now = std::time::Instant::now();
    while recent.front().is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1)) {
        recent.pop_front();
    }
    if recent.len() >= *per_second {
        return true;
    }
    recent.push_back(now);
    false
}

/// Whether a call finds one of its documented buckets empty (then it draws nothing); else it
/// draws a token from each.
fn over_documented_rate(
    buckets: &mut BTreeMap<String, (f64, std::time::Instant)>,
    share: f64,
    service: &str,
    op: &str,
    body: &str,
) -> bool {
    if op.is_empty() {
        return false;
    }
    let unfiltered = !body.contains("Filter.") && !body.contains("MaxResults") && !body.contains("NextToken");
    let now = std::time::Instant::now();
    let wanted: Vec<(String, f64, f64)> = super::aws_rates::buckets(service, op, unfiltered)
        .into_iter()
        .map(|(name, capacity, refill)| (name, (capacity * share).max(1.0), refill * share))
        .collect();
    let mut tokens: Vec<f64> = Vec::new();
    for (name, capacity, refill) in &wanted {
        let (left, at) = buckets.get(name).copied().unwrap_or((*capacity, now));
        tokens.push((left + refill * now.duration_since(at).as_secs_f64()).min(*capacity));
    }
    if tokens.iter().any(|t| *t < 1.0) {
        for ((name, ..), t) in wanted.iter().zip(&tokens) {
            buckets.insert(name.clone(), (*t, now));
        }
        return true;
    }
    for ((name, ..), t) in wanted.iter().zip(&tokens) {
        buckets.insert(name.clone(), (t - 1.0, now));
    }
    false
}

fn lost_answer(p: Protocol) -> (StatusCode, HeaderMap, Vec<u8>) {
    match p {
        Protocol::Json => {
            error_response(p, 500, "InternalFailure", "We encountered an internal error. Please try again.")
        }
        _ => error_response(p, 500, "InternalError", "We encountered an internal error. Please try again."),
    }
}

/// A number in [0, 1) from (seed, operation, occurrence): FNV-1a then a splitmix64 finish.
pub fn draw(seed: u64, what: &str, op: &str, n: usize) -> f64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed;
    for b in what.bytes().chain(op.bytes()).chain(n.to_le_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h = h.wrapping_add(0x9e37_79b9_7f4a_7c15);
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^= h >> 31;
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// What the proxy decides before forwarding.
enum Decision {
    Answer((StatusCode, HeaderMap, Vec<u8>)),
    Forward { lose: bool },
}

impl Proxy {
    /// Starts a proxy to `moto` with the given faults and no scripts.
    pub async fn start(moto: &str, faults: Faults) -> Self {
        let state = Arc::new(Mutex::new(State { faults, ..State::default() }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let client = reqwest::Client::new();
        let moto = moto.to_owned();
        let shared = Arc::clone(&state);
        let app = axum::Router::new().fallback(move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let (client, moto, state) = (client.clone(), moto.clone(), Arc::clone(&shared));
            async move { handle(&client, &moto, &state, method, uri, headers, body).await }
        });
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, state, server }
    }

    /// Answers every call `latency` later than moto does (a round trip to a distant region).
    pub fn set_latency(&self, latency: Duration) {
        self.state.lock().expect("lock").latency = latency;
    }

    /// The most calls that were in flight at once, since the last reset; resets it.
    pub fn take_peak_in_flight(&self) -> usize {
        let mut s = self.state.lock().expect("lock");
        let now = s.in_flight;
        std::mem::replace(&mut s.peak_in_flight, now)
    }

    /// (when, operation) of every call since the last reset, in arrival order.
    pub fn arrivals(&self) -> Vec<(std::time::Instant, String)> {
        self.state.lock().expect("lock").arrivals.clone()
    }

    /// Forgets the calls seen so far (requests and per-operation counts).
    pub fn reset_counts(&self) {
        let mut s = self.state.lock().expect("lock");
        s.requests.clear();
        s.arrivals.clear();
        s.ops.clear();
    }

    pub fn script(&self, script: Script) {
        self.state.lock().expect("lock").scripts.push(script);
    }

    /// Drops the scripts not used up yet.
    pub fn clear_scripts(&self) {
        self.state.lock().expect("lock").scripts.clear();
    }

    pub fn set_faults(&self, faults: Faults) {
        self.state.lock().expect("lock").faults = faults;
    }

    /// Signs every request again for the endpoint behind the proxy, with `access_key`/`secret`:
    /// what moto needs when it checks signatures (the client signed for the proxy's address),
    /// with form bodies' spaces written as `+`, the form moto rebuilds the body in when it checks
    /// (the Rust SDK writes `%20`, which AWS accepts equally).
    pub fn resign_for_moto(&self, access_key: &str, secret: &str) {
        self.state.lock().expect("lock").resign = Some((access_key.to_owned(), secret.to_owned()));
    }

    /// Reports the primary ECS deployment COMPLETED with all its tasks running.
    /// From now on DescribeServices answers, as ECS does when no instance can take a task, with
    /// nothing pending and the newest event `(service …) was unable to place a task because no container instance met
    /// all of its requirements…`, made at the moment of the answer.
    pub fn say_unplaceable(&self) {
        self.state.lock().expect("lock").unplaceable = true;
    }

    pub fn complete_rollouts(&self) {
        self.state.lock().expect("lock").complete_rollouts = true;
    }

    /// After the `n`th mutating call is carried out (1-based), its answer never comes and
    /// `killed` receives `n`: the test then kills the client.
    pub fn stop_after_mutation(&self, n: usize) -> tokio::sync::mpsc::UnboundedReceiver<usize> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let mut s = self.state.lock().expect("lock");
        s.kill_after = Some((n, tx));
        s.mutations = 0;
        rx
    }

    /// After the first call of `operation` is carried out, its answer never comes and `killed`
    /// receives the number of mutations so far: the test then kills the client.
    pub fn stop_after_operation(&self, operation: &str) -> tokio::sync::mpsc::UnboundedReceiver<usize> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        self.state.lock().expect("lock").kill_after_op = Some((operation.to_owned(), tx));
        rx
    }

    /// After the `n`th mutating call is carried out, its answer waits until the returned Notify
    /// is notified; `held` receives `n` meanwhile (the test changes the world under the client).
    pub fn hold_after_mutation(
        &self,
        n: usize,
    ) -> (tokio::sync::mpsc::UnboundedReceiver<usize>, Arc<tokio::sync::Notify>) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let release = Arc::new(tokio::sync::Notify::new());
        let mut s = self.state.lock().expect("lock");
        s.hold_after = Some((n, tx, Arc::clone(&release)));
        s.mutations = 0;
        (rx, release)
    }

    /// From now on, every call of an operation `which` picks is carried out, then sent again, and
    /// answered with what AWS answered the second time.
    pub fn answer_again(&self, which: impl Fn(&str) -> bool + Send + Sync + 'static) {
        self.state.lock().expect("lock").again = Some(Arc::new(which));
    }

    /// (operation, HTTP status, body) of every second answer so far.
    pub fn second_answers(&self) -> Vec<(String, u16, String)> {
        self.state.lock().expect("lock").second_answers.clone()
    }

    /// Per-operation counts so far.
    pub fn stats(&self) -> BTreeMap<String, OpStats> {
        self.state.lock().expect("lock").ops.clone()
    }

    /// Bodies of the requests made to `operation`, in order.
    pub fn requests(&self, operation: &str) -> Vec<String> {
        self.state
            .lock()
            .expect("lock")
            .requests
            .iter()
            .filter(|(o, _)| o == operation)
            .map(|(_, b)| b.clone())
            .collect()
    }

    /// The operation of every request so far, in arrival order.
    pub fn operations(&self) -> Vec<String> {
        self.state.lock().expect("lock").requests.iter().map(|(o, _)| o.clone()).collect()
    }

    /// Lets at most `per_second` calls of `operation` through in any one second (of each service
    /// that has an operation of that name) and answers the rest with the service's throttling error
    /// (counted as throttled).
    pub fn limit_rate(&self, operation: &str, per_second: usize) {
        self.state.lock().expect("lock").rate_limits.insert(operation.into(), (per_second, Default::default()));
    }

    /// Empties every rate limit's window: the next second starts with its whole allowance (and
    /// every documented bucket is full again).
    pub fn refill_rate_limits(&self) {
        let mut s = self.state.lock().expect("lock");
        for (_, services) in s.rate_limits.values_mut() {
            services.clear();
        }
        if let Some(buckets) = &mut s.documented {
            buckets.clear();
        }
    }

    /// Throttles calls as AWS's documented token buckets would (`aws_rates`), each starting full,
    /// with `share` of each bucket's capacity and refill left to this client.
    pub fn documented_rates(&self, share: f64) {
        let mut s = self.state.lock().expect("lock");
        s.documented = Some(BTreeMap::new());
        s.documented_share = share;
    }

    /// Mutating calls forwarded so far (by `provisioner::aws::is_mutating`).
    pub fn mutating_calls(&self) -> usize {
        self.stats().iter().filter(|(op, _)| provisioner::aws::is_mutating(op)).map(|(_, s)| s.forwarded).sum()
    }

    /// Clears counts and recorded requests (scripts and faults stay).
    pub fn reset_stats(&self) {
        let mut s = self.state.lock().expect("lock");
        s.ops.clear();
        s.requests.clear();
    }

    /// Totals: (calls seen, throttled, lost answers, scripted).
    pub fn totals(&self) -> (usize, usize, usize, usize) {
        self.stats()
            .values()
            .fold((0, 0, 0, 0), |(a, b, c, d), s| (a + s.seen, b + s.throttled, c + s.lost, d + s.scripted))
    }
}

async fn handle(
    client: &reqwest::Client,
    moto: &str,
    state: &Arc<Mutex<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, HeaderMap, Vec<u8>) {
    let latency = {
        let mut s = state.lock().expect("lock");
        s.in_flight += 1;
        s.peak_in_flight = s.peak_in_flight.max(s.in_flight);
        s.latency
    };
    let answer = decide_and_forward(client, moto, state, method, uri, headers, body).await;
    tokio::time::sleep(latency).await;
    state.lock().expect("lock").in_flight -= 1;
    answer
}

async fn decide_and_forward(
    client: &reqwest::Client,
    moto: &str,
    state: &Arc<Mutex<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, HeaderMap, Vec<u8>) {
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    let (service, op) = identify(&method, &path, &headers, &body);
    let p = protocol(&service);
    let mutating = !op.is_empty() && provisioner::aws::is_mutating(&op);
    let decision = {
        let mut s = state.lock().expect("lock");
        s.requests.push((op.clone(), String::from_utf8_lossy(&body).into_owned()));
        s.arrivals.push((std::time::Instant::now(), op.clone()));
        let n = {
            let st = s.ops.entry(op.clone()).or_default();
            st.seen += 1;
            st.seen
        };
        let faults = s.faults;
        let text = String::from_utf8_lossy(&body);
        let called: Vec<String> = s.ops.iter().filter(|(_, st)| st.seen > 0).map(|(o, _)| o.clone()).collect();
        let scripted = s.scripts.iter_mut().position(|sc| {
            if sc.operation != op || sc.times == 0 || sc.only_if.as_ref().is_some_and(|n| !text.contains(n.as_str())) {
                return false;
            }
            if sc.once_called.as_ref().is_some_and(|o| !called.contains(o)) {
                return false;
            }
            if sc.after > 0 {
                sc.after -= 1;
                return false;
            }
            true
        });
        if let Some(i) = scripted {
            s.scripts[i].times -= 1;
            s.ops.entry(op.clone()).or_default().scripted += 1;
            match s.scripts[i].reply.clone() {
                Reply::Error { status, code, message } => Decision::Answer(error_response(p, status, &code, &message)),
                reply @ (Reply::Body(_) | Reply::Computed(_)) => {
                    let b = match reply {
                        Reply::Computed(Responder(respond)) => respond(&text),
                        Reply::Body(b) => b,
                        _ => unreachable!("matched above"),
                    };
                    let mut h = HeaderMap::new();
                    let ct = if p == Protocol::Json { "application/x-amz-json-1.1" } else { "text/xml" };
                    h.insert("content-type", ct.parse().expect("header"));
                    Decision::Answer((StatusCode::OK, h, b.into_bytes()))
                }
                Reply::LoseAnswer => Decision::Forward { lose: true },
            }
        } else if over_rate_limit(&mut s.rate_limits, &service, &op)
            || {
                let share = s.documented_share;
                s.documented.as_mut().is_some_and(|b| over_documented_rate(b, share, &service, &op, &text))
            }
            || (!op.is_empty() && draw(faults.seed, "throttle", &op, n) < faults.throttle)
        {
            s.ops.entry(op.clone()).or_default().throttled += 1;
            Decision::Answer(throttling(p))
        } else {
            Decision::Forward { lose: mutating && draw(faults.seed, "lose", &op, n) < faults.lose_answer }
        }
    };
    let lose = match decision {
        Decision::Answer(a) => return a,
        Decision::Forward { lose } => lose,
    };

    let resign = state.lock().expect("lock").resign.clone();
    let (headers, body) = match resign {
        Some((key, secret)) => resign_request(&method, moto, &path, headers, body, &key, &secret),
        None => (headers, body),
    };
    let url = format!("{moto}{path}");
    let again = state.lock().expect("lock").again.as_ref().is_some_and(|again| again(&op));
    let resp = match forward(client, &method, &url, &headers, body.clone()).await {
        Ok(r) => r,
        Err(e) => return error_response(p, 502, "ProxyError", &e.to_string()),
    };
    let resp = if again && resp.status().is_success() {
        match forward(client, &method, &url, &headers, body).await {
            Ok(r) => r,
            Err(e) => return error_response(p, 502, "ProxyError", &e.to_string()),
        }
    } else {
        resp
    };
    let status = resp.status();
    let mut out_headers = HeaderMap::new();
    for (k, v) in resp.headers() {
        if k != "content-length" && k != "transfer-encoding" && k != "connection" {
            out_headers.insert(k.clone(), v.clone());
        }
    }
    let mut bytes = resp.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
    if again {
        let said = (op.clone(), status.as_u16(), String::from_utf8_lossy(&bytes).into_owned());
        state.lock().expect("lock").second_answers.push(said);
    }

    let kill = {
        let mut s = state.lock().expect("lock");
        s.ops.entry(op.clone()).or_default().forwarded += 1;
        if lose {
            s.ops.entry(op.clone()).or_default().lost += 1;
        }
        let mut kill = None;
        let mut held = None;
        if mutating && status.is_success() {
            s.mutations += 1;
            if let Some((n, tx, release)) = &s.hold_after
                && s.mutations == *n
            {
                let _ = tx.send(*n);
                held = Some(Arc::clone(release));
            }
            if let Some((n, tx)) = &s.kill_after
                && s.mutations == *n
            {
                let _ = tx.send(*n);
                kill = Some(*n);
            }
            if let Some((o, tx)) = s.kill_after_op.take() {
                if o == op {
                    let _ = tx.send(s.mutations);
                    kill = Some(s.mutations);
                } else {
                    s.kill_after_op = Some((o, tx));
                }
            }
        }
        if s.complete_rollouts && op == "DescribeServices" {
            bytes = complete(bytes);
        }
        if s.unplaceable && op == "DescribeServices" {
            bytes = unplaceable(bytes);
        }
        (kill, held)
    };
    let (kill, held) = kill;
    if let Some(release) = held {
        release.notified().await;
    }
    if kill.is_some() {
        // The change happened; its answer never comes. The client is killed meanwhile.
        tokio::time::sleep(Duration::from_secs(120)).await;
        return lost_answer(p);
    }
    if lose {
        return lost_answer(p);
    }
    (StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::OK), out_headers, bytes)
}

/// Sends the request to moto.
async fn forward(
    client: &reqwest::Client,
    method: &Method,
    url: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> reqwest::Result<reqwest::Response> {
    let mut req = client.request(method.clone(), url);
    for (k, v) in headers {
        if k != "host" && k != "content-length" {
            req = req.header(k, v);
        }
    }
    req.body(body).send().await
}

/// The request signed again (SigV4, same service and region) for `moto`'s host.
fn resign_request(
    method: &Method,
    moto: &str,
    path: &str,
    mut headers: HeaderMap,
    body: Bytes,
    access_key: &str,
    secret: &str,
) -> (HeaderMap, Bytes) {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let scope: Vec<&str> = auth.split("Credential=").nth(1).unwrap_or_default().split('/').collect();
    let (region, service) = (scope.get(2).copied().unwrap_or("us-east-1"), scope.get(3).copied().unwrap_or("sts"));
    let form =
        headers.get("content-type").and_then(|v| v.to_str().ok()).is_some_and(|c| c.contains("x-www-form-urlencoded"));
    let body = if form { Bytes::from(String::from_utf8_lossy(&body).replace("%20", "+")) } else { body };
    let host = moto.trim_start_matches("http://").to_owned();
    let signed: Vec<(String, String)> = ["content-type", "x-amz-target", "x-amz-security-token"]
        .iter()
        .filter_map(|h| headers.get(*h).and_then(|v| v.to_str().ok()).map(|v| ((*h).to_owned(), v.to_owned())))
        .chain([("host".to_owned(), host)])
        .collect();
    let identity = aws_credential_types::Credentials::new(access_key, secret, None, None, "fault-proxy").into();
    let mut settings = SigningSettings::default();
    if service == "s3" {
        // S3 signs the path as sent and the payload's hash in a header of its own.
        use aws_sigv4::http_request::{PayloadChecksumKind, PercentEncodingMode, UriPathNormalizationMode};
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    }
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(std::time::SystemTime::now())
        .settings(settings)
        .build()
        .expect("signing params")
        .into();
    let signable = SignableRequest::new(
        method.as_str(),
        path.to_owned(),
        signed.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(&body),
    )
    .expect("signable");
    let (instructions, _) = sign(signable, &params).expect("sign").into_parts();
    let (new_headers, _) = instructions.into_parts();
    for name in ["authorization", "x-amz-date", "x-amz-content-sha256"] {
        headers.remove(name);
    }
    for h in new_headers {
        if let (Ok(name), Ok(value)) =
            (axum::http::HeaderName::from_bytes(h.name().as_bytes()), axum::http::HeaderValue::from_str(h.value()))
        {
            headers.insert(name, value);
        }
    }
    (headers, body)
}

/// DescribeServices with the primary deployment COMPLETED and its tasks running.
/// DescribeServices with ECS's unable-to-place event as the newest of each service's events.
fn unplaceable(bytes: Vec<u8>) -> Vec<u8> {
    let Ok(mut v) = serde_json::from_slice::<Value>(&bytes) else { return bytes };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
    for s in v["services"].as_array_mut().into_iter().flatten() {
        let name = s["serviceName"].as_str().unwrap_or_default().to_owned();
        let event = serde_json::json!({
            "id": format!("unplaceable-{now}"),
            "createdAt": now,
            "message": format!("(service {name}) was unable to place a task because no container instance met all of its requirements. The closest matching container-instance 0123 has insufficient memory available."),
        });
        // What cannot be placed is not pending (moto counts every missing task as pending).
        for d in s["deployments"].as_array_mut().into_iter().flatten() {
            d["pendingCount"] = 0.into();
        }
        let mut events = s["events"].as_array().cloned().unwrap_or_default();
        events.insert(0, event);
        s["events"] = Value::Array(events);
    }
    serde_json::to_vec(&v).unwrap_or(bytes)
}

fn complete(bytes: Vec<u8>) -> Vec<u8> {
    let Ok(mut v) = serde_json::from_slice::<Value>(&bytes) else { return bytes };
    for s in v["services"].as_array_mut().into_iter().flatten() {
        for d in s["deployments"].as_array_mut().into_iter().flatten() {
            if d["status"] == "PRIMARY" {
                d["rolloutState"] = "COMPLETED".into();
                d["runningCount"] = d["desiredCount"].clone();
            }
        }
    }
    serde_json::to_vec(&v).unwrap_or(bytes)
}

#[test]
fn documented_buckets_throttle_when_empty_and_shared_ones_across_actions() {
    let mut buckets = BTreeMap::new();
    let mut calls = |service: &str, op: &str, n: usize| {
        (0..n).filter(|_| over_documented_rate(&mut buckets, 1.0, service, op, "Action=X&Filter.1.Name=y")).count()
    };
    // CloudWatch: 3 alarm writes a second.
    assert_eq!(calls("monitoring", "PutMetricAlarm", 5), 2);
    // ELB: the account's 40 tokens are shared by every action; the mutating category holds 20.
    assert_eq!(calls("elasticloadbalancing", "DescribeTargetGroups", 30), 0);
    assert_eq!(calls("elasticloadbalancing", "DescribeListeners", 15), 5, "the account bucket");
    // ECS: one category's actions share a bucket; another category is untouched.
    assert_eq!(calls("ecs", "CreateCluster", 20), 0);
    assert_eq!(calls("ecs", "PutClusterCapacityProviders", 1), 1, "cluster-modify is empty");
    assert_eq!(calls("ecs", "DescribeServices", 50), 0);
    // EC2: each action its own bucket.
    assert_eq!(calls("ec2", "DescribeVpcs", 100), 0);
    assert_eq!(calls("ec2", "DescribeSubnets", 100), 0);
}
