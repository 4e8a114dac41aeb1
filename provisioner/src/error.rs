//! The provisioner's errors: each names the step that failed and the resource, and where the user
//! can act, the fix. AWS errors keep their code for retry decisions.

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Stack(#[from] stack::StackError),

    #[error("{action} {resource}: {message}")]
    Aws { action: &'static str, resource: String, code: Option<String>, message: String },

    #[error(
        "a {kind} named {name} ({id}) exists without the tag konnichiwa:stack={stack}: it is not this stack's, \
         so it was left untouched and nothing was changed. Give the stack another `name:` in stack.yaml, \
         or delete or rename that {kind} if it is an orphan"
    )]
    Foreign { kind: &'static str, name: String, id: String, stack: String },

    #[error("{count} {kind}s named {name} carry this stack's tag ({ids}); delete the extra ones so one remains")]
    Duplicate { kind: &'static str, name: String, count: usize, ids: String },

    #[error("{0}")]
    Refused(String),

    #[error("gave up waiting for {waiting_for} after {elapsed:?} (the deadline; raise it with --timeout)")]
    Deadline { waiting_for: String, elapsed: std::time::Duration },

    #[error("{0}")]
    Usage(String),

    /// The rollout failed, was rolled back or timed out (exit 3); diagnostics were printed.
    #[error("{0}")]
    DeployFailed(String),
}

impl Error {
    /// The AWS error code, when the error came from AWS.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Aws { code, .. } => code.as_deref(),
            _ => None,
        }
    }
}

/// Converts SDK results into `Error::Aws` naming the action and the resource.
pub trait AwsContext<T> {
    fn ctx(self, action: &'static str, resource: impl Into<String>) -> Result<T, Error>;
}

impl<T, E> AwsContext<T> for Result<T, SdkError<E, HttpResponse>>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    fn ctx(self, action: &'static str, resource: impl Into<String>) -> Result<T, Error> {
        self.map_err(|err| {
            let code = err.code().map(str::to_owned);
            let message = match (err.code(), err.message()) {
                (Some(c), Some(m)) => format!("{c}: {m}"),
                (Some(c), None) => c.to_owned(),
                _ => aws_smithy_types::error::display::DisplayErrorContext(&err).to_string(),
            };
            Error::Aws { action, resource: resource.into(), code, message }
        })
    }
}

/// Codes that mean "slow down": always retried.
pub const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "RequestThrottled",
    "SlowDown",
];
