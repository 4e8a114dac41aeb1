//! AWS clients built from one SdkConfig (region and credentials from the standard chain,
//! `AWS_ENDPOINT_URL` for an emulator), each with a retry configuration fit for provisioning
//! (throttling, 5xx answers and broken connections are retried many times with capped,
//! jittered exponential backoff, as Terraform's AWS provider does) and an interceptor that
//! records every API call so commands can report how many reads and mutations they made.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use std::time::Duration;

use aws_smithy_runtime::client::retries::{RetryPartition, TokenBucket};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextMut,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;
use serde::Serialize;

use crate::error::{AwsContext, Error};

/// Set to a 12-digit id to give this process its own account on a shared moto server (honoured
/// only for loopback endpoints).
pub const MOTO_ACCOUNT_ENV: &str = "KONNICHIWA_MOTO_ACCOUNT_ID";

/// Attempts per call unless `AWS_MAX_ATTEMPTS` says otherwise: with backoff capped at 20 s, a
/// call gives up only after several minutes of throttling (the SDK's default is 3 attempts).
pub const DEFAULT_MAX_ATTEMPTS: u32 = 25;
const INITIAL_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(20);

/// The retry policy every client shares: standard mode (throttling, transient and 5xx errors),
/// many attempts, full-jitter exponential backoff. The retry quota (a token bucket that stops
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

fn retry_partition() -> RetryPartition {
    RetryPartition::custom("konnichiwa-provisioner").token_bucket(TokenBucket::unlimited()).build()
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
}

impl CallLog {
    fn record(&self, service: &str, operation: &str) {
        if let Ok(mut calls) = self.calls.lock() {
            calls.push((service.to_owned(), operation.to_owned()));
        }
    }

    pub fn counts(&self) -> CallCounts {
        let calls = self.calls.lock().map(|c| c.clone()).unwrap_or_default();
        let mut counts = CallCounts::default();
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
    const READS: &[&str] = &["Describe", "Get", "List", "Head", "Batch Get", "Lookup", "Search", "Validate"];
    !READS.iter().any(|p| operation.starts_with(p))
}

#[derive(Debug)]
struct RecordCalls(Arc<CallLog>);

impl Intercept for RecordCalls {
    fn name(&self) -> &'static str {
        "RecordCalls"
    }

    // Once per operation (retries of it are not counted again); the operation's metadata is in
    // the config bag by the time serialization starts.
    fn read_before_serialization(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(meta) = cfg.load::<Metadata>() {
            self.0.record(meta.service(), meta.name());
        }
        Ok(())
    }
}

/// Adds moto's per-request account header.
#[derive(Debug)]
struct MotoAccount(String);

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
        context.request_mut().headers_mut().insert("x-moto-account-id", self.0.clone());
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
    /// The lease's own client, so its calls are counted apart from the stack's (`lease` in
    /// `--json`): a no-op `up` makes no mutating call on the stack.
    pub lease_ssm: aws_sdk_ssm::Client,
    pub region: String,
    pub endpoint: Option<String>,
    pub calls: Arc<CallLog>,
    pub lease_calls: Arc<CallLog>,
    identity: Arc<tokio::sync::OnceCell<Identity>>,
    credentials: Option<aws_credential_types::provider::SharedCredentialsProvider>,
}

impl Clients {
    /// Loads the standard AWS configuration; `region` overrides the chain's region.
    pub async fn load(region: &str) -> Self {
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(region.to_owned()))
            .load()
            .await;
        Self::from_sdk_config(&sdk)
    }

    /// Clients for `sdk`; the moto account comes from `KONNICHIWA_MOTO_ACCOUNT_ID`.
    pub fn from_sdk_config(sdk: &aws_config::SdkConfig) -> Self {
        Self::with_moto_account(sdk, std::env::var(MOTO_ACCOUNT_ENV).ok())
    }

    /// Clients for `sdk` that send moto's account header (loopback endpoints only).
    pub fn with_moto_account(sdk: &aws_config::SdkConfig, account: Option<String>) -> Self {
        let calls = Arc::new(CallLog::default());
        let lease_calls = Arc::new(CallLog::default());
        let endpoint = sdk.endpoint_url().map(str::to_owned);
        let moto_account = account
            .filter(|_| endpoint.as_deref().is_some_and(is_loopback_url))
            .filter(|a| a.len() == 12 && a.chars().all(|c| c.is_ascii_digit()));
        // Every client retries as provisioning needs, records its calls and, against moto, names
        // the account.
        macro_rules! client {
            ($sdk_crate:ident) => {
                client!($sdk_crate, calls)
            };
            ($sdk_crate:ident, $log:ident) => {{
                let mut b = $sdk_crate::config::Builder::from(sdk)
                    .retry_config(retry_config())
                    .retry_partition(retry_partition())
                    .timeout_config(timeout_config())
                    .interceptor(RecordCalls(Arc::clone(&$log)));
                if let Some(account) = &moto_account {
                    b = b.interceptor(MotoAccount(account.clone()));
                }
                $sdk_crate::Client::from_conf(b.build())
            }};
        }
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
            sts: client!(aws_sdk_sts),
            // An emulator on loopback cannot take bucket names as host names.
            s3: {
                let mut b = aws_sdk_s3::config::Builder::from(sdk)
                    .retry_config(retry_config())
                    .retry_partition(retry_partition())
                    .timeout_config(timeout_config())
                    .force_path_style(endpoint.as_deref().is_some_and(is_loopback_url))
                    .interceptor(RecordCalls(Arc::clone(&calls)));
                if let Some(account) = &moto_account {
                    b = b.interceptor(MotoAccount(account.clone()));
                }
                aws_sdk_s3::Client::from_conf(b.build())
            },
            lease_ssm: client!(aws_sdk_ssm, lease_calls),
            region: sdk.region().map(|r| r.to_string()).unwrap_or_default(),
            endpoint,
            calls,
            lease_calls,
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
             (README, \"Deploy from GitHub\")",
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

#[cfg(test)]
mod tests {
    use super::*;

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
