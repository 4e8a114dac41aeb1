//! AWS clients built from one SdkConfig (region and credentials from the standard chain,
//! `AWS_ENDPOINT_URL` for an emulator), each with a retry configuration fit for provisioning
//! (throttling, 5xx answers and broken connections are retried many times with capped,
//! jittered exponential backoff, as Terraform's AWS provider does) and an interceptor that
//! records every API call so commands can report how many reads and mutations they made. The
//! SDK's retries are one of the seven ways a run retries or waits (the list: `wait`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use std::time::{Duration, SystemTime};

use aws_smithy_runtime::client::retries::{RetryPartition, TokenBucket};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextMut,
};
use aws_smithy_runtime_api::client::interceptors::{Intercept, SharedInterceptor};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;
use serde::Serialize;

use crate::error::{AwsContext, Error};
use crate::meaning::{Answer, Meaning};

/// Set to a 12-digit id to give this process its own account on a shared moto server (honoured
/// only for loopback endpoints, and only by `Clients::load`: the binary's, as the README documents).
pub const MOTO_ACCOUNT_ENV: &str = "KONNICHIWA_MOTO_ACCOUNT_ID";

/// Attempts per call unless `AWS_MAX_ATTEMPTS` says otherwise: with backoff capped at 20 s, a
/// call gives up only after several minutes of throttling (the SDK's default is 3 attempts).
pub const DEFAULT_MAX_ATTEMPTS: u32 = 25;
const INITIAL_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(20);

/// The Price List API answers in us-east-1 (and two other regions), for every region's prices.
pub const PRICE_LIST_REGION: &str = "us-east-1";

/// The retry policy every client shares: standard mode (throttling, transient and 5xx errors),
/// many attempts, full-jitter exponential backoff. (Adaptive mode, whose client-side rate
/// follows a throttling service, halved the throttled calls of a run against per-call rate limits
/// but doubled its wall time: docs/BENCHMARKS.md.) The retry quota (a token bucket that stops
/// retrying after a burst of failures) is off: a provisioning run is bounded by its attempts
/// and its deadline instead, and must not give up because a busy account throttles it.
pub fn retry_config() -> RetryConfig {
    let attempts = std::env::var("AWS_MAX_ATTEMPTS")
        .ok()
        .and_then(|v| v.trim().parse::<u32>().ok())
        .filter(|n| *n >= 1)
        .unwrap_or(DEFAULT_MAX_ATTEMPTS);
    RetryConfig::standard()
        .with_max_attempts(attempts)
        .with_initial_backoff(INITIAL_BACKOFF)
        .with_max_backoff(MAX_BACKOFF)
}

/// Forbids retrying a quota error (`Meaning::Quota`: the SDK retries `LimitExceededException` as if
/// it were a rate limit, which would spend minutes on an error no retry clears), whatever
/// classified it as throttling before.
#[derive(Debug)]
struct QuotasAreNotRates;

impl aws_smithy_runtime_api::client::retries::classifiers::ClassifyRetry for QuotasAreNotRates {
    fn classify_retry(
        &self,
        ctx: &aws_smithy_runtime_api::client::interceptors::context::InterceptorContext,
    ) -> aws_smithy_runtime_api::client::retries::classifiers::RetryAction {
        use aws_smithy_runtime_api::client::retries::classifiers::RetryAction;
        match ctx.response() {
            Some(r) if !r.status().is_success() && means(r, Meaning::Quota) => RetryAction::RetryForbidden,
            _ => RetryAction::NoActionIndicated,
        }
    }

    fn name(&self) -> &'static str {
        "QuotasAreNotRates"
    }

    fn priority(&self) -> aws_smithy_runtime_api::client::retries::classifiers::RetryClassifierPriority {
        use aws_smithy_runtime_api::client::retries::classifiers::RetryClassifierPriority;
        RetryClassifierPriority::run_after(RetryClassifierPriority::transient_error_classifier())
    }
}

/// The error code of an AWS error answer, as JSON services (`x-amzn-ErrorType`, `__type`) and
/// XML ones (`<Code>`) write it.
fn error_code(r: &aws_smithy_runtime_api::client::orchestrator::HttpResponse) -> Option<String> {
    let clean = |c: &str| c.split([':', '#']).rfind(|p| !p.is_empty()).unwrap_or_default().trim().to_owned();
    if let Some(t) = r.headers().get("x-amzn-errortype") {
        return Some(clean(t.split(':').next().unwrap_or(t)));
    }
    let body = std::str::from_utf8(r.body().bytes()?).ok()?;
    if let Some(at) = body.find("\"__type\"") {
        let rest = &body[at + 8..];
        let value = rest.split('"').nth(1)?;
        return Some(clean(value));
    }
    let start = body.find("<Code>")? + 6;
    let end = body[start..].find("</Code>")? + start;
    Some(body[start..end].trim().to_owned())
}

/// One partition per service: a service that throttles slows only the calls sent to it.
fn retry_partition(service: &'static str) -> RetryPartition {
    RetryPartition::custom(format!("konnichiwa-{service}")).token_bucket(TokenBucket::unlimited()).build()
}

/// A hung connection is abandoned and the call retried rather than waited on forever.
fn timeout_config() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(10))
        .operation_attempt_timeout(Duration::from_secs(90))
        .build()
}

/// Who the credentials are: account, caller ARN and partition (`aws`, `aws-cn`, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Identity {
    pub account: String,
    pub arn: String,
    pub partition: String,
}

impl Identity {
    /// The ARN of the role `name` in this account.
    pub fn role_arn(&self, name: &str) -> String {
        format!("arn:{}:iam::{}:role/{name}", self.partition, self.account)
    }

    /// The principal behind the credentials, as `aws:PrincipalArn` names it: an assumed role's
    /// session (`assumed-role/NAME/SESSION`) is the role `role/NAME`; a user is its IAM ARN
    /// (emulators answer with an STS one).
    pub fn principal_arn(&self) -> String {
        match self.arn.split_once(":assumed-role/") {
            Some((head, rest)) => {
                let role = rest.split('/').next().unwrap_or_default();
                format!("{}:role/{role}", head.replacen(":sts:", ":iam:", 1))
            }
            None => self.arn.replacen(":sts:", ":iam:", 1),
        }
    }

    /// True when the credentials are (a session of) the role `name` of this account.
    pub fn is_role(&self, name: &str) -> bool {
        self.principal_arn() == self.role_arn(name)
    }
}

/// Every API call made through the clients, in order.
#[derive(Debug, Default)]
pub struct CallLog {
    calls: Mutex<Vec<(String, String)>>,
    /// Closed once the run lost the stack's lease: no mutating call goes out any more.
    fence: Arc<crate::fence::Fence>,
    /// Reads answered from the plan's answers, not sent (`read_replay`).
    replayed: std::sync::atomic::AtomicUsize,
}

/// Counts of a `CallLog`, as reported in `--json` output.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct CallCounts {
    pub read: usize,
    pub mutating: usize,
    /// `service:Operation` -> count.
    pub by_operation: BTreeMap<String, usize>,
    /// Mutating calls in the order they were made.
    pub mutations: Vec<String>,
    /// Reads an apply did not send: the plan just before had asked them, and its answers stood
    /// (`read_replay`). Not in `read`.
    pub replayed: usize,
}

impl CallLog {
    fn record(&self, service: &str, operation: &str) {
        if let Ok(mut calls) = self.calls.lock() {
            calls.push((service.to_owned(), operation.to_owned()));
        }
    }

    /// Takes back the latest record of this call, counted as replayed: AWS was not asked
    /// (`read_replay`).
    fn replayed(&self, service: &str, operation: &str) {
        if let Ok(mut calls) = self.calls.lock()
            && let Some(at) = calls.iter().rposition(|(s, o)| s == service && o == operation)
        {
            calls.remove(at);
            self.replayed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// From now on, every mutating call through these clients is refused before it is sent.
    pub fn fence(&self, why: &str) {
        self.fence.close(why);
    }

    /// Why mutating calls are refused, if they are.
    pub fn fenced(&self) -> Option<String> {
        self.fence.closed()
    }

    pub fn counts(&self) -> CallCounts {
        let calls = self.calls.lock().map(|c| c.clone()).unwrap_or_default();
        let mut counts =
            CallCounts { replayed: self.replayed.load(std::sync::atomic::Ordering::Relaxed), ..Default::default() };
        for (service, op) in calls {
            let key = format!("{service}:{op}");
            *counts.by_operation.entry(key.clone()).or_default() += 1;
            if is_mutating(&op) {
                counts.mutating += 1;
                counts.mutations.push(key);
            } else {
                counts.read += 1;
            }
        }
        counts
    }
}

/// True for operations that change state; reads are Describe/Get/List (and the like).
pub fn is_mutating(operation: &str) -> bool {
    const READS: &[&str] =
        &["Describe", "Get", "List", "Head", "Batch Get", "Lookup", "Search", "Validate", "Simulate"];
    !READS.iter().any(|p| operation.starts_with(p))
}

#[derive(Debug)]
struct RecordCalls(Arc<CallLog>);

impl Intercept for RecordCalls {
    fn name(&self) -> &'static str {
        "RecordCalls"
    }

    // Once per operation (retries of it are not counted again); the operation's metadata is in
    // the config bag by the time serialization starts. A fenced log refuses mutating calls here,
    // before anything is sent.
    fn read_before_serialization(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(meta) = cfg.load::<Metadata>() {
            if let Some(refused) = self.0.fence.refuses(is_mutating(meta.name())) {
                return Err(Box::new(refused));
            }
            self.0.record(meta.service(), meta.name());
        }
        Ok(())
    }
}

/// Tells the HTTP layer (`in_flight`) which operation each attempt is (a mutating one meets the
/// log's fence (`fence`) again there once its turn has come: checked in `RecordCalls` and then queued behind
/// others, it must not go out after the lease was lost), and the pacer whether AWS throttled it;
/// an answer replayed from the plan (`read_replay`) is not counted as a call.
#[derive(Debug)]
struct Attempts {
    pacer: Arc<crate::pacing::Pacer>,
    log: Arc<CallLog>,
}

impl Intercept for Attempts {
    fn name(&self) -> &'static str {
        "Attempts"
    }

    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(meta) = cfg.load::<Metadata>() {
            let attempt = crate::in_flight::Attempt {
                service: meta.service().into(),
                operation: format!("{} {}", meta.service(), meta.name()).into(),
                mutating: is_mutating(meta.name()),
                fence: Arc::clone(&self.log.fence),
            };
            context.request_mut().add_extension(attempt);
        }
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        context: &aws_smithy_runtime_api::client::interceptors::context::AfterDeserializationInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(meta) = cfg.load::<Metadata>() else { return Ok(()) };
        let response = context.response();
        if response.extension::<crate::read_replay::Replayed>().is_some() {
            self.log.replayed(meta.service(), meta.name());
        } else {
            let operation = format!("{} {}", meta.service(), meta.name());
            self.pacer.answered(&operation, is_throttling(response));
        }
        Ok(())
    }
}

/// An answer no retry would change: a success, or an error that is neither throttling nor
/// transient (what `read_replay` may keep).
pub fn is_final_answer(r: &aws_smithy_runtime_api::client::orchestrator::HttpResponse) -> bool {
    use aws_runtime::retries::classifiers::TRANSIENT_ERRORS;
    let status = r.status();
    status.is_success()
        || (status.is_client_error()
            && !is_throttling(r)
            && !error_code(r).is_some_and(|c| TRANSIENT_ERRORS.contains(&c.as_str())))
}

/// True for an answer that says the caller sends too fast (`Meaning::Throttled`).
fn is_throttling(r: &aws_smithy_runtime_api::client::orchestrator::HttpResponse) -> bool {
    !r.status().is_success() && means(r, Meaning::Throttled)
}

/// True when the error code of `r` means `meaning` whatever the service (what an HTTP answer
/// alone can tell: throttling and quotas are the same codes for every service).
fn means(r: &aws_smithy_runtime_api::client::orchestrator::HttpResponse, meaning: Meaning) -> bool {
    error_code(r).is_some_and(|code| Answer { code: &code, ..Answer::default() }.means(meaning))
}

/// SSM's clock, as the Date of its last answer to the lease's client: what the lease's expiry
/// is judged by, so that neither the holder's nor this machine's clock decides it.
#[derive(Debug, Default)]
pub struct ServerClock {
    seen: Mutex<Option<(SystemTime, std::time::Instant)>>,
}

impl ServerClock {
    /// SSM's time now: its last Date plus the time since (this machine's clock when it sent none).
    pub fn now(&self) -> SystemTime {
        match self.seen.lock().ok().and_then(|s| *s) {
            Some((server, at)) => server + at.elapsed(),
            None => SystemTime::now(),
        }
    }
}

#[derive(Debug)]
struct ReadServerClock(Arc<ServerClock>);

impl Intercept for ReadServerClock {
    fn name(&self) -> &'static str {
        "ReadServerClock"
    }

    fn read_after_transmit(
        &self,
        context: &aws_smithy_runtime_api::client::interceptors::context::BeforeDeserializationInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let date =
            context.response().headers().get("date").and_then(|d| {
                aws_smithy_types::DateTime::from_str(d, aws_smithy_types::date_time::Format::HttpDate).ok()
            });
        if let (Some(date), Ok(mut seen)) = (date.and_then(|d| SystemTime::try_from(d).ok()), self.0.seen.lock()) {
            *seen = Some((date, std::time::Instant::now()));
        }
        Ok(())
    }
}

/// Adds moto's per-request account header (`MOTO_ACCOUNT_ENV`).
#[derive(Debug)]
struct MotoAccount(String);

impl MotoAccount {
    /// The account `MOTO_ACCOUNT_ENV` names, when it is 12 digits and the endpoint is on loopback.
    fn from_env(endpoint: Option<&str>) -> Option<Self> {
        std::env::var(MOTO_ACCOUNT_ENV)
            .ok()
            .filter(|_| endpoint.is_some_and(is_loopback_url))
            .filter(|a| a.len() == 12 && a.chars().all(|c| c.is_ascii_digit()))
            .map(Self)
    }
}

impl Intercept for MotoAccount {
    fn name(&self) -> &'static str {
        "MotoAccount"
    }

    fn modify_before_signing(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // Only to the emulator: a per-service endpoint setting may send a client elsewhere.
        if is_loopback_url(context.request().uri()) {
            context.request_mut().headers_mut().insert("x-moto-account-id", self.0.clone());
        }
        Ok(())
    }
}

/// The clients every resource kind uses.
#[derive(Debug, Clone)]
pub struct Clients {
    pub ec2: aws_sdk_ec2::Client,
    pub iam: aws_sdk_iam::Client,
    pub ecr: aws_sdk_ecr::Client,
    pub ecs: aws_sdk_ecs::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub autoscaling: aws_sdk_autoscaling::Client,
    pub elb: aws_sdk_elasticloadbalancingv2::Client,
    pub app_autoscaling: aws_sdk_applicationautoscaling::Client,
    pub ssm: aws_sdk_ssm::Client,
    pub sts: aws_sdk_sts::Client,
    pub s3: aws_sdk_s3::Client,
    pub acm: aws_sdk_acm::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub route53: aws_sdk_route53::Client,
    pub sns: aws_sdk_sns::Client,
    /// The Price List API, which answers in us-east-1 whatever the stack's region.
    pub pricing: aws_sdk_pricing::Client,
    /// Service Quotas: the account's limits and, for some, their usage.
    pub quotas: aws_sdk_servicequotas::Client,
    /// The Resource Groups Tagging API: what carries the stack's tag, whatever its kind.
    pub tagging: aws_sdk_resourcegroupstagging::Client,
    /// The lease's own client, so its calls are counted apart from the stack's (`lease` in
    /// `--json`): a no-op `up` makes no mutating call on the stack.
    pub lease_ssm: aws_sdk_ssm::Client,
    pub region: String,
    pub endpoint: Option<String>,
    pub calls: Arc<CallLog>,
    pub lease_calls: Arc<CallLog>,
    /// SSM's time, as the lease's client last saw it.
    pub lease_clock: Arc<ServerClock>,
    /// The plan's answers to reads, replayed to the apply that follows (`up`, `down`).
    pub replay: Arc<crate::read_replay::Replay>,
    identity: Arc<tokio::sync::OnceCell<Identity>>,
    credentials: Option<aws_credential_types::provider::SharedCredentialsProvider>,
}

impl Clients {
    /// Loads the standard AWS configuration; `region` overrides the chain's region. Refused,
    /// before any of it is read, in a shell meant for a sandbox it would not reach
    /// (`sandbox`).
    pub async fn load(region: &str) -> Result<Self, Error> {
        let sandbox = crate::sandbox::check()?;
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(region.to_owned()));
        if let Some(endpoint) = &sandbox {
            // The emulator's credentials, whatever else the shell or a profile holds.
            let key = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| "test".into());
            let credentials = aws_credential_types::Credentials::new(
                key("AWS_ACCESS_KEY_ID"),
                key("AWS_SECRET_ACCESS_KEY"),
                None,
                None,
                "konnichiwa-sandbox",
            );
            loader = loader.endpoint_url(endpoint).credentials_provider(credentials);
        }
        let sdk = loader.load().await;
        let moto_account = MotoAccount::from_env(sdk.endpoint_url()).map(SharedInterceptor::new);
        Ok(Self::build(&sdk, moto_account, sandbox))
    }

    /// Clients for `sdk`.
    pub fn from_sdk_config(sdk: &aws_config::SdkConfig) -> Self {
        Self::build(sdk, None, None)
    }

    /// Clients for `sdk` whose every call also goes through the caller's `interceptor`, after the
    /// provisioner's own (a header an emulator needs, a fault a test injects).
    pub fn with_interceptor(sdk: &aws_config::SdkConfig, interceptor: impl Intercept + 'static) -> Self {
        Self::build(sdk, Some(SharedInterceptor::new(interceptor)), None)
    }

    /// Clients for `sdk`, each with the `extra` interceptor when given; each client sends to
    /// `pinned` when given, whatever a per-service endpoint setting says (the sandbox's emulator).
    fn build(sdk: &aws_config::SdkConfig, extra: Option<SharedInterceptor>, pinned: Option<String>) -> Self {
        let calls = Arc::new(CallLog::default());
        let lease_calls = Arc::new(CallLog::default());
        let lease_clock = Arc::new(ServerClock::default());
        let endpoint = sdk.endpoint_url().map(str::to_owned);
        // One bound on the calls in flight for the whole run (the lease's own client keeps out of
        // it: renewing must not queue behind the engine's reads).
        let http = https_client();
        let bound = crate::in_flight::Bound::new(http.clone(), is_final_answer);
        // Every client retries as provisioning needs, records its calls and calls the caller's
        // interceptor.
        macro_rules! client {
            ($sdk_crate:ident) => {
                client!($sdk_crate, calls, bound.for_service(), |b: $sdk_crate::config::Builder| b)
            };
            ($sdk_crate:ident, $log:ident, $http:expr, $extra:expr) => {{
                let mut b = $sdk_crate::config::Builder::from(sdk)
                    .http_client($http)
                    .retry_config(retry_config())
                    .retry_partition(retry_partition(stringify!($sdk_crate)))
                    .retry_classifier(QuotasAreNotRates)
                    .timeout_config(timeout_config())
                    .interceptor(RecordCalls(Arc::clone(&$log)))
                    .interceptor(Attempts { pacer: Arc::clone(&bound.pacer), log: Arc::clone(&$log) });
                if let Some(extra) = &extra {
                    b.push_interceptor(extra.clone());
                }
                if let Some(endpoint) = &pinned {
                    b = b.endpoint_url(endpoint);
                }
                $sdk_crate::Client::from_conf(($extra)(b).build())
            }};
        }
        // An emulator on loopback cannot take bucket names as host names.
        let path_style = endpoint.as_deref().is_some_and(is_loopback_url);
        Self {
            ec2: client!(aws_sdk_ec2),
            iam: client!(aws_sdk_iam),
            ecr: client!(aws_sdk_ecr),
            ecs: client!(aws_sdk_ecs),
            secrets: client!(aws_sdk_secretsmanager),
            logs: client!(aws_sdk_cloudwatchlogs),
            autoscaling: client!(aws_sdk_autoscaling),
            elb: client!(aws_sdk_elasticloadbalancingv2),
            app_autoscaling: client!(aws_sdk_applicationautoscaling),
            ssm: client!(aws_sdk_ssm),
            acm: client!(aws_sdk_acm),
            cloudwatch: client!(aws_sdk_cloudwatch),
            route53: client!(aws_sdk_route53),
            sns: client!(aws_sdk_sns),
            // Prices are optional (the snapshot stands in): a Price List that fails answers fast.
            pricing: client!(aws_sdk_pricing, calls, bound.for_service(), |b: aws_sdk_pricing::config::Builder| b
                .region(aws_config::Region::from_static(PRICE_LIST_REGION))
                .retry_config(RetryConfig::standard().with_max_attempts(2))),
            quotas: client!(aws_sdk_servicequotas),
            tagging: client!(aws_sdk_resourcegroupstagging),
            sts: client!(aws_sdk_sts),
            s3: client!(aws_sdk_s3, calls, bound.for_service(), |b: aws_sdk_s3::config::Builder| b
                .force_path_style(path_style)),
            lease_ssm: client!(aws_sdk_ssm, lease_calls, http.clone(), |b: aws_sdk_ssm::config::Builder| b
                .interceptor(ReadServerClock(Arc::clone(&lease_clock)))),
            region: sdk.region().map(|r| r.to_string()).unwrap_or_default(),
            endpoint,
            calls,
            lease_calls,
            lease_clock,
            replay: Arc::clone(&bound.replay),
            identity: Arc::new(tokio::sync::OnceCell::new()),
            credentials: sdk.credentials_provider(),
        }
    }

    /// Resolves the credentials before any work (an image build, a plan), so that a machine
    /// without them hears it at once, with where they were looked for and how to provide them.
    pub async fn check_credentials(&self) -> Result<(), Error> {
        use aws_credential_types::provider::ProvideCredentials;
        let reason = match &self.credentials {
            None => "no credentials provider is configured".to_owned(),
            Some(p) => match p.provide_credentials().await {
                Ok(_) => return Ok(()),
                Err(e) => aws_smithy_types::error::display::DisplayErrorContext(&e).to_string(),
            },
        };
        let profile = std::env::var("AWS_PROFILE").unwrap_or_else(|_| "default".to_owned());
        Err(Error::Usage(format!(
            "no AWS credentials ({}). Looked in: the environment (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), \
             the profile {profile:?} in ~/.aws/config and ~/.aws/credentials (SSO included), a web identity token \
             (AWS_WEB_IDENTITY_TOKEN_FILE, as in CI), and the ECS or EC2 instance role. Provide one: \
             `aws configure sso` then `export AWS_PROFILE=<name>` (`aws sso login` when it expires), or export \
             AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; in GitHub Actions, assume the deploy role \
             (README, \"Deploy from GitHub\"). Without an AWS account: scripts/sandbox up, then \
             eval \"$(scripts/sandbox env)\" (the emulator on this machine)",
            crate::error::without_dumps(&reason)
                .trim_start_matches("the credential provider was not enabled: ")
                .split(". Attempted")
                .next()
                .unwrap_or_default()
        )))
    }

    /// The caller's account and partition (GetCallerIdentity, asked once per process).
    pub async fn identity(&self) -> Result<Identity, Error> {
        let id = self
            .identity
            .get_or_try_init(|| async {
                let out = self.sts.get_caller_identity().send().await.ctx("find the account of", "the credentials")?;
                let arn = out.arn().unwrap_or_default().to_owned();
                Ok::<_, Error>(Identity {
                    account: out.account().unwrap_or_default().to_owned(),
                    partition: arn.split(':').nth(1).filter(|p| !p.is_empty()).unwrap_or("aws").to_owned(),
                    arn,
                })
            })
            .await?;
        Ok(id.clone())
    }

    /// True when the clients talk to an emulator on this machine, not to AWS.
    pub fn is_emulator(&self) -> bool {
        self.endpoint.as_deref().is_some_and(is_loopback_url)
    }

    /// Where the calls go: the endpoint override, or real AWS.
    pub fn target(&self) -> String {
        match &self.endpoint {
            Some(url) => format!("{} via {url}", self.region),
            None => self.region.clone(),
        }
    }
}

/// True for http(s) URLs whose host is a loopback address or `localhost` (the one rule every
/// tool uses: `stack::net`).
pub fn is_loopback_url(url: &str) -> bool {
    stack::net::is_loopback_url(url)
}

/// The SDK's default HTTPS client (hyper 1, rustls with aws-lc, the proxy from HTTPS_PROXY and
/// NO_PROXY), made here so that `in_flight` can bound what is sent through it.
fn https_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    use aws_smithy_http_client::proxy::ProxyConfig;
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    aws_smithy_http_client::Builder::new().build_with_connector_fn(|settings, components| {
        let mut connector =
            aws_smithy_http_client::ConnectorBuilder::default().tls_provider(Provider::Rustls(CryptoMode::AwsLc));
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector.set_proxy_config(Some(ProxyConfig::from_env()));
        connector.build()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(
        status: u16,
        error_type: Option<&str>,
        body: &str,
    ) -> aws_smithy_runtime_api::client::orchestrator::HttpResponse {
        let mut r = aws_smithy_runtime_api::client::orchestrator::HttpResponse::new(
            status.try_into().expect("status"),
            aws_smithy_types::body::SdkBody::from(body.to_owned()),
        );
        if let Some(t) = error_type {
            r.headers_mut().insert("x-amzn-errortype", t.to_owned());
        }
        r
    }

    #[test]
    fn throttling_answers_are_told_from_quotas_and_from_final_answers() {
        let ec2 =
            answer(503, None, "<Response><Errors><Error><Code>RequestLimitExceeded</Code></Error></Errors></Response>");
        let ecs = answer(400, Some("ThrottlingException:http://internal.amazon.com/"), "{}");
        let s3 = answer(503, None, "<Error><Code>SlowDown</Code></Error>");
        let quota = answer(400, None, r#"{"__type":"LimitExceededException","message":"too many"}"#);
        let missing = answer(404, None, "<ErrorResponse><Error><Code>NoSuchEntity</Code></Error></ErrorResponse>");
        for (r, throttling, is_final) in [
            (&ec2, true, false),
            (&ecs, true, false),
            (&s3, true, false),
            (&quota, false, true),
            (&missing, false, true),
        ] {
            assert_eq!(is_throttling(r), throttling, "{r:?}");
            assert_eq!(is_final_answer(r), is_final, "{r:?}");
        }
        assert!(is_final_answer(&answer(200, None, "<ok/>")));
        assert!(!is_final_answer(&answer(500, None, "<Error><Code>InternalFailure</Code></Error>")));
    }

    #[test]
    fn reads_and_mutations() {
        for op in ["DescribeVpcs", "GetSecretValue", "ListTagsForResource"] {
            assert!(!is_mutating(op), "{op}");
        }
        for op in ["CreateVpc", "ModifyVpcAttribute", "AuthorizeSecurityGroupIngress", "DeleteVpc", "CreateTags"] {
            assert!(is_mutating(op), "{op}");
        }
    }
}
