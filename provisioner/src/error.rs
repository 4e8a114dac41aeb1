//! The provisioner's errors: each names the step that failed and the resource, and where the user
//! can act, the fix. AWS errors keep their code and message, which decide what is retried (see
//! `wait`), what means "it is there already" (adoption after a lost answer) and what means "it
//! is gone" (`absent`, `gone`).

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::meaning::Answer;
pub use crate::meaning::Meaning;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Stack(#[from] stack::StackError),

    #[error("{action} {resource}: {message}")]
    Aws {
        action: &'static str,
        resource: String,
        /// What answered: the SDK's error type of the operation
        /// (`aws_sdk_ecs::operation::delete_service::DeleteServiceError`), which names the service
        /// and the operation (see `answered_by`); empty for an error of our own making.
        answered_by: &'static str,
        code: Option<String>,
        message: String,
        /// The SDK's error, when the SDK raised it: its chain says what a message cannot
        /// (a refused connection, a TLS failure, a body it could not read).
        #[source]
        source: Option<std::sync::Arc<dyn std::error::Error + Send + Sync>>,
    },

    #[error("{}", foreign_message(kind, name, id, stack, owner.as_deref()))]
    Foreign { kind: &'static str, name: String, id: String, stack: String, owner: Option<String> },

    #[error("{0}")]
    Refused(String),

    #[error("gave up waiting for {waiting_for} after {elapsed:?} ({limit})")]
    Deadline { waiting_for: String, elapsed: std::time::Duration, limit: String },

    #[error("{0}")]
    Usage(String),

    /// Another run holds the stack's lease.
    #[error("{0}")]
    Locked(String),

    /// A value that exists only after apply reached an AWS call: a bug of ours, never sent.
    #[error("internal error: {0} is not known yet, but a change needed it; nothing was sent for it")]
    NotYetKnown(String),

    /// The rollout failed, was rolled back or timed out (exit 3); diagnostics were printed.
    #[error("{0}")]
    DeployFailed(String),
}

/// The key of stack.yaml that names a kind's resource: what to change to step aside.
fn key_naming(kind: &str) -> &'static str {
    match kind {
        "repository" => "registry.repository",
        "secret" => "secret.name",
        "dns-record" | "dns-alias" => "load_balancer.https.domain",
        _ => "name",
    }
}

fn foreign_message(kind: &str, name: &str, id: &str, stack: &str, owner: Option<&str>) -> String {
    let key = key_naming(kind);
    match owner {
        Some(other) => format!(
            "the {kind} {name} ({id}) belongs to the stack {other} (tag konnichiwa:stack={other}), not to {stack}: it \
             was left untouched and this run stopped there. Two stacks cannot share a name: give this one another \
             `{key}` in its stack file{}",
            if key == "name" { String::new() } else { " (or leave it out: it then follows `name`)".to_owned() }
        ),
        None => format!(
            "a {kind} named {name} ({id}) exists without the tag konnichiwa:stack={stack}: it is not this stack's, \
             so it was left untouched and this run stopped there. Give the stack another `{key}` in its stack file, \
             or delete or rename that {kind} if it is an orphan"
        ),
    }
}

impl Error {
    /// The AWS error code, when the error came from AWS.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Aws { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    /// AWS's message (with its code), when the error came from AWS.
    pub fn aws_message(&self) -> Option<&str> {
        match self {
            Self::Aws { message, .. } => Some(message),
            _ => None,
        }
    }

    /// The answer AWS gave, as `meaning` reads it, when the error came from AWS.
    fn answer(&self) -> Option<Answer<'_>> {
        match self {
            Self::Aws { answered_by: by, code, message, .. } => {
                let (service, operation) = answered_by(by);
                Some(Answer { service, operation, code: code.as_deref().unwrap_or_default(), message })
            }
            _ => None,
        }
    }

    /// True when AWS's answer means `meaning` (`meaning`'s table says which answers do).
    pub fn means(&self, meaning: Meaning) -> bool {
        self.answer().is_some_and(|a| a.means(meaning))
    }

    /// True when a create failed because what it creates is there already: a retry of a call
    /// whose answer was lost, or a run killed after the call. The caller re-observes and adopts
    /// what carries our tag (and still refuses what does not).
    pub fn is_already_there(&self) -> bool {
        self.means(Meaning::AlreadyThere)
    }

    /// True when AWS refused the caller the action (whatever the service's code: its message says so).
    pub fn is_denied(&self) -> bool {
        self.means(Meaning::Denied)
    }

    /// True when AWS said that something made moments ago is not usable yet.
    pub fn is_not_usable_yet(&self) -> bool {
        self.means(Meaning::NotUsableYet)
    }

    /// True when AWS said that something it made a moment ago does not exist (not yet visible
    /// to the service asked).
    pub fn is_not_visible_yet(&self) -> bool {
        self.means(Meaning::NotVisibleYet)
    }

    /// True when a delete failed because it was done already: the retry of a delete whose first
    /// answer was lost, or a second run after a killed one.
    pub fn is_already_done(&self) -> bool {
        self.means(Meaning::AlreadyDone)
    }
}

/// What a quota error says besides AWS's own message (which names the quota).
pub const QUOTA_HINT: &str = "That is a quota of this AWS account, not a rate limit, so it was not retried: free some \
     of what it counts, or ask for more in Service Quotas (AWS console → Service Quotas → the service named above → \
     the quota → Request increase)";

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
                _ => match &err {
                    SdkError::ServiceError(e) => {
                        let bytes = e.raw().body().bytes().unwrap_or_default();
                        let status = e.raw().status().as_u16();
                        if is_web_page(bytes) {
                            // A web server's page, no AWS answer: what an emulator answers for an
                            // operation it does not implement.
                            format!(
                                "HTTP {status} with a web page instead of an AWS answer (an emulator's answer for \
                                 an operation it does not implement, or a proxy's error page)"
                            )
                        } else {
                            format!("HTTP {status} with no error code: {}", body_text(bytes))
                        }
                    }
                    SdkError::TimeoutError(_) => "no answer in time".to_owned(),
                    _ => without_dumps(&aws_smithy_types::error::display::DisplayErrorContext(&err).to_string()),
                },
            };
            let by = std::any::type_name::<E>();
            let (service, operation) = answered_by(by);
            let answer = Answer { service, operation, code: code.as_deref().unwrap_or_default(), message: "" };
            let message = if answer.means(Meaning::Quota) { format!("{message}. {QUOTA_HINT}") } else { message };
            let source = Some(std::sync::Arc::new(err) as _);
            Error::Aws { action, resource: resource.into(), answered_by: by, code, message, source }
        })
    }
}

/// The service and operation an SDK error type's path names
/// (`aws_sdk_ecs::operation::delete_service::DeleteServiceError` is `("ecs", "DeleteService")`):
/// every operation of the SDK has an error type of its own, in its service's crate.
fn answered_by(path: &'static str) -> (&'static str, &'static str) {
    let service = path.split("::").next().and_then(|c| c.strip_prefix("aws_sdk_")).unwrap_or_default();
    let operation = match path.rsplit_once("::") {
        Some((_, error_type)) => error_type.strip_suffix("Error").unwrap_or_default(),
        None => "",
    };
    (service, operation)
}

/// True for an HTML page (a web server's own error page), which no AWS API answers.
fn is_web_page(bytes: &[u8]) -> bool {
    let start = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).trim_start().to_ascii_lowercase();
    start.starts_with("<!doctype html") || start.starts_with("<html")
}

/// What an error answer's body says, as one short line of text (XML tags and JSON punctuation
/// dropped), for answers the SDK could not read a code from.
fn body_text(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::new();
    let mut in_tag = false;
    for c in text.chars() {
        match c {
            '<' => {
                in_tag = true;
                out.push(' ');
            }
            '>' => in_tag = false,
            '{' | '}' | '"' if !in_tag => out.push(' '),
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    let words: Vec<&str> = out.split_whitespace().collect();
    let line = words.join(" ");
    if line.is_empty() { "(empty body)".to_owned() } else { line.chars().take(240).collect() }
}

/// An SDK error chain on one line, without the `Debug` dumps of raw responses it can carry.
pub fn without_dumps(text: &str) -> String {
    let first = text.lines().next().unwrap_or_default();
    let dumps = [" raw: ", " Response {", "(ServiceError", " (DispatchFailure", " (TimeoutError", " (ResponseError"];
    let cut = dumps.iter().filter_map(|m| first.find(m)).min().unwrap_or(first.len());
    first[..cut].trim_end_matches([' ', ':', ',']).chars().take(400).collect()
}

/// What caused `e`, outermost first, each as one line: the SDK's chain below an AWS error,
/// without what the message already says or the SDK's generic wrappers ("service error").
pub fn causes(e: &Error) -> Vec<String> {
    let said = e.to_string();
    let mut out: Vec<String> = Vec::new();
    let mut next = std::error::Error::source(e);
    while let Some(cause) = next {
        let line = without_dumps(&cause.to_string());
        let generic = ["service error", "unhandled error", "dispatch failure", "response error", "io error"];
        if !line.is_empty() && !generic.contains(&line.as_str()) && !said.contains(&line) && !out.contains(&line) {
            out.push(line);
        }
        next = cause.source();
    }
    out
}

/// A lookup whose answer means the thing does not exist (`Meaning::Absent`): `None`.
pub fn absent<T>(r: Result<T, Error>) -> Result<Option<T>, Error> {
    match r {
        Ok(v) => Ok(Some(v)),
        // A refusal is never taken for "not there", whatever else its code means.
        Err(e) if e.means(Meaning::Absent) && !e.means(Meaning::Denied) => Ok(None),
        Err(e) => Err(e),
    }
}

/// A delete whose answer means the thing does not exist, or was deleted already
/// (`Meaning::Absent`, `Meaning::AlreadyDone`): done.
pub fn gone<T>(r: Result<T, Error>) -> Result<(), Error> {
    match r {
        Err(e) if e.is_already_done() && !e.means(Meaning::Denied) => Ok(()),
        r => absent(r).map(|_| ()),
    }
}

/// A removal whose answer means it was done already (`Meaning::AlreadyDone`: a rule revoked
/// before): done. What it acts on missing (`Meaning::Absent`) stays an error: in `up` that is
/// something made a moment ago and not visible yet, or deleted behind the run's back.
pub fn done<T>(r: Result<T, Error>) -> Result<(), Error> {
    match r {
        Ok(_) => Ok(()),
        Err(e) if e.is_already_done() && !e.means(Meaning::Denied) => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An answer of `service` as `ctx` would make it.
    fn aws(answered_by: &'static str, code: &str, message: &str) -> Error {
        Error::Aws {
            action: "create",
            resource: "r".into(),
            answered_by,
            code: Some(code.into()),
            message: message.into(),
            source: None,
        }
    }

    #[test]
    fn an_errors_service_and_operation_are_read_from_its_sdk_type() {
        type Delete = aws_sdk_ecs::operation::delete_service::DeleteServiceError;
        type Listener = aws_sdk_elasticloadbalancingv2::operation::delete_listener::DeleteListenerError;
        type Caller = aws_sdk_sts::operation::get_caller_identity::GetCallerIdentityError;
        let read = |path| answered_by(path);
        assert_eq!(read(std::any::type_name::<Delete>()), ("ecs", "DeleteService"));
        assert_eq!(read(std::any::type_name::<Listener>()), ("elasticloadbalancingv2", "DeleteListener"));
        assert_eq!(read(std::any::type_name::<Caller>()), ("sts", "GetCallerIdentity"));
        assert_eq!(read("aws_sdk_iam"), ("iam", ""));
        assert_eq!(read(""), ("", ""));
    }

    #[test]
    fn not_found_means_absent_or_gone_and_only_for_the_service_that_says_it() {
        let missing: Result<u8, Error> = Err(aws("aws_sdk_iam", "NoSuchEntity", "no role"));
        assert!(matches!(absent(missing), Ok(None)));
        assert!(matches!(absent(Ok::<u8, Error>(1)), Ok(Some(1))));
        assert!(absent(Err::<u8, Error>(aws("aws_sdk_iam", "AccessDenied", "no"))).is_err());
        assert!(gone(Err::<(), Error>(aws("aws_sdk_ec2", "InvalidVpcID.NotFound", "x"))).is_ok());
        // The same code from another service is not this service's "not found".
        assert!(absent(Err::<u8, Error>(aws("aws_sdk_ecs", "NoSuchEntity", "no role"))).is_err());
        assert!(!Error::Refused("not found".into()).means(Meaning::Absent));
    }

    #[test]
    fn a_delete_answered_already_done_is_done_and_nothing_else_is() {
        let marked = "You tried to perform the operation on a secret that's currently marked deleted.";
        assert!(gone(Err::<(), Error>(aws("aws_sdk_secretsmanager", "InvalidRequestException", marked))).is_ok());
        let inactive = "Service was not ACTIVE.";
        assert!(gone(Err::<(), Error>(aws("aws_sdk_ecs", "ServiceNotActiveException", inactive))).is_ok());
        // The same general code for another reason is an error.
        let other = "You can't delete the secret because it is a replica.";
        assert!(gone(Err::<(), Error>(aws("aws_sdk_secretsmanager", "InvalidRequestException", other))).is_err());
        assert!(!Error::Refused("currently marked deleted".into()).is_already_done());
    }

    #[test]
    fn a_revoke_in_up_is_done_for_a_missing_rule_not_for_a_missing_group() {
        let revoke = "aws_sdk_ec2::operation::revoke_security_group_egress::RevokeSecurityGroupEgressError";
        let no_rule =
            aws(revoke, "InvalidPermission.NotFound", "The specified rule does not exist in this security group.");
        let no_group = aws(revoke, "InvalidGroup.NotFound", "The security group 'sg-1' does not exist");
        assert!(done(Err::<(), Error>(no_rule)).is_ok());
        // A group made a moment ago that EC2 does not list yet: waited for, never done (the new
        // group would keep its default egress to anywhere).
        assert!(done(Err::<(), Error>(no_group)).is_err());
        let no_group = aws(revoke, "InvalidGroup.NotFound", "The security group 'sg-1' does not exist");
        assert!(no_group.means(Meaning::NotVisibleYet), "Wait::Consistency retries it");
        // In a teardown both are gone.
        assert!(gone(Err::<(), Error>(no_group)).is_ok());
    }

    #[test]
    fn a_refusal_is_never_taken_for_not_there() {
        let deregister = "aws_sdk_ecs::operation::deregister_task_definition::DeregisterTaskDefinitionError";
        let refused = aws(
            deregister,
            "ClientException",
            "User: arn:aws:sts::1:assumed-role/d/x is not authorized to perform: ecs:DeregisterTaskDefinition",
        );
        assert!(gone(Err::<(), Error>(refused)).is_err());
        assert!(gone(Err::<(), Error>(aws(deregister, "ClientException", "The revision does not exist."))).is_ok());
    }

    #[test]
    fn a_web_servers_error_page_is_named_as_such_not_dumped() {
        let page =
            b"<!doctype html>\n<html lang=en><title>500 Internal Server Error</title><h1>Internal Server Error</h1>\
            <p>The server encountered an internal error and was unable to complete your request.</p>";
        assert!(is_web_page(page));
        assert!(!is_web_page(b"<ErrorResponse><Error><Code>InternalFailure</Code></Error></ErrorResponse>"));
        assert!(!is_web_page(br#"{"__type":"InternalFailure"}"#));
    }

    #[test]
    fn the_sdks_cause_chain_survives_below_an_aws_error() {
        use aws_smithy_runtime_api::client::result::ConnectorError;
        type Sts = aws_sdk_sts::operation::get_caller_identity::GetCallerIdentityError;
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused (os error 111)");
        let r: Result<(), SdkError<Sts, HttpResponse>> =
            Err(SdkError::dispatch_failure(ConnectorError::io(Box::new(refused))));
        let e = r.ctx("read the caller identity of", "the credentials").expect_err("an error");
        assert!(std::error::Error::source(&e).is_some(), "the SDK's error is kept as the source");
        // The chain is said once, in the message or below it, and without the SDK's Debug dump.
        let said = format!("{e} {}", causes(&e).join(" "));
        assert_eq!(said.matches("connection refused (os error 111)").count(), 1, "{said}");
        assert!(!said.contains("DispatchFailure {"), "{said}");
        assert!(causes(&aws("aws_sdk_sts", "Throttling", "Rate exceeded")).is_empty(), "a made-up error has no chain");
    }

    #[test]
    fn a_quota_is_named_as_such_and_a_rate_limit_is_not() {
        type Put = aws_sdk_ssm::operation::put_parameter::PutParameterError;
        let quota = aws_smithy_types::error::ErrorMetadata::builder().code("LimitExceededException").build();
        let r: Result<(), SdkError<Put, HttpResponse>> = Err(SdkError::service_error(
            Put::generic(quota),
            HttpResponse::new(400u16.try_into().expect("status"), aws_smithy_types::body::SdkBody::empty()),
        ));
        let e = r.ctx("put", "p").expect_err("an error");
        assert!(e.to_string().contains(QUOTA_HINT), "{e}");
        assert!(e.means(Meaning::Quota) && !e.means(Meaning::Throttled));
    }
}
