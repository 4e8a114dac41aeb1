//! The provisioner's errors: each names the step that failed and the resource, and where the user
//! can act, the fix. AWS errors keep their code and message, which decide what is retried (see
//! `retry`), what means "it is there already" (adoption after a lost answer) and what means "it
//! is gone" (`absent`, `gone`).

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Stack(#[from] stack::StackError),

    #[error("{action} {resource}: {message}")]
    Aws { action: &'static str, resource: String, code: Option<String>, message: String },

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

    /// True when a create failed because what it creates is there already: a retry of a call
    /// whose answer was lost, or a run killed after the call. The caller re-observes and adopts
    /// what carries our tag (and still refuses what does not).
    pub fn is_already_there(&self) -> bool {
        let Some(code) = self.code() else { return false };
        if ALREADY_THERE_CODES.contains(&code) {
            return true;
        }
        let message = self.aws_message().unwrap_or_default();
        // ECS and IAM say it in the message of a generic code.
        (matches!(code, "ClientException" | "InvalidParameterException" | "InvalidRequestException")
            && (message.contains("already exists") || message.contains("was not idempotent")))
            || (code == "LimitExceeded" && message.contains("InstanceSessionsPerInstanceProfile"))
    }
}

impl Error {
    /// True when a delete failed because it was done already, in the words of a service whose
    /// code alone does not say so: the retry of a delete whose first answer was lost, or a second
    /// run after a killed one. (Codes that do say so — `NoSuchEntity`, `*.NotFound`… — are given
    /// by each delete to `gone`.)
    pub fn is_already_done(&self) -> bool {
        let (Some(code), Some(message)) = (self.code(), self.aws_message()) else { return false };
        ALREADY_DONE.iter().any(|(c, words)| *c == code && message.contains(words))
    }
}

/// (code, words of the message) of the answers to a delete of what is deleted or scheduled for
/// deletion already.
const ALREADY_DONE: &[(&str, &str)] = &[
    // Secrets Manager DeleteSecret of a secret scheduled for deletion ("You tried to perform the
    // operation on a secret that's currently marked deleted.") or being removed after a purge.
    ("InvalidRequestException", "currently marked deleted"),
    ("InvalidRequestException", "because it was deleted"),
    // ECS DeleteService / UpdateService of a service already deleted (DRAINING or INACTIVE).
    ("ServiceNotActiveException", ""),
    ("ServiceNotFoundException", ""),
];

/// Codes AWS answers to a create (or attach, associate, authorize) of something that exists.
const ALREADY_THERE_CODES: &[&str] = &[
    // EC2
    "InvalidGroup.Duplicate",
    "InvalidPermission.Duplicate",
    "Resource.AlreadyAssociated",
    "RouteAlreadyExists",
    "InvalidSubnet.Conflict",
    "InvalidLaunchTemplateName.AlreadyExistsException",
    // IAM
    "EntityAlreadyExists",
    // Auto Scaling
    "AlreadyExists",
    // ELBv2
    "DuplicateTargetGroupName",
    "DuplicateLoadBalancerName",
    "DuplicateListener",
    "DuplicateTagKeys",
    // ECR, CloudWatch Logs, Secrets Manager
    "RepositoryAlreadyExistsException",
    "ResourceAlreadyExistsException",
    "ResourceExistsException",
    // S3 (outside us-east-1, which answers a repeated create with success)
    "BucketAlreadyOwnedByYou",
];

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
                        let body = e.raw().body().bytes().map(body_text).unwrap_or_default();
                        format!("HTTP {} with no error code: {body}", e.raw().status().as_u16())
                    }
                    SdkError::TimeoutError(_) => "no answer in time".to_owned(),
                    _ => without_dumps(&aws_smithy_types::error::display::DisplayErrorContext(&err).to_string()),
                },
            };
            let message = match code.as_deref() {
                Some(c) if crate::aws::QUOTA_CODES.contains(&c) => format!("{message}. {QUOTA_HINT}"),
                _ => message,
            };
            Error::Aws { action, resource: resource.into(), code, message }
        })
    }
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
    let cut =
        [" raw: ", " Response {", "(ServiceError"].iter().filter_map(|m| first.find(m)).min().unwrap_or(first.len());
    first[..cut].trim_end_matches([' ', ':', ',']).chars().take(400).collect()
}

/// A lookup whose "not found" answer (any of `codes`) means the thing does not exist: `None`.
pub fn absent<T>(r: Result<T, Error>, codes: &[&str]) -> Result<Option<T>, Error> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.code().is_some_and(|c| codes.contains(&c)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// A delete whose "not found" answer (any of `codes`), or an answer that says it was done
/// already (`Error::is_already_done`), means it is done.
pub fn gone<T>(r: Result<T, Error>, codes: &[&str]) -> Result<(), Error> {
    match r {
        Err(e) if e.is_already_done() => Ok(()),
        r => absent(r, codes).map(|_| ()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aws(code: &str, message: &str) -> Error {
        Error::Aws { action: "create", resource: "r".into(), code: Some(code.into()), message: message.into() }
    }

    #[test]
    fn already_there_by_code_or_by_message() {
        for (code, message, expected) in [
            ("InvalidGroup.Duplicate", "The security group 'x' already exists for VPC 'vpc-1'", true),
            ("Resource.AlreadyAssociated", "resource igw-1 is already attached to network vpc-1", true),
            ("EntityAlreadyExists", "Role with name x already exists.", true),
            ("InvalidParameterException", "Creation of service was not idempotent.", true),
            ("ClientException", "The specified capacity provider already exists.", true),
            ("LimitExceeded", "Cannot exceed quota for InstanceSessionsPerInstanceProfile: 1", true),
            ("LimitExceeded", "Cannot exceed quota for RolesPerAccount: 1000", false),
            ("InvalidParameterException", "Unable to assume the service linked role.", false),
            ("Throttling", "Rate exceeded", false),
        ] {
            assert_eq!(aws(code, message).is_already_there(), expected, "{code}: {message}");
        }
        assert!(!Error::Refused("already exists".into()).is_already_there());
    }

    #[test]
    fn not_found_means_absent_or_gone() {
        let missing: Result<u8, Error> = Err(aws("NoSuchEntity", "no role"));
        assert!(matches!(absent(missing, &["NoSuchEntity"]), Ok(None)));
        assert!(matches!(absent(Ok::<u8, Error>(1), &["NoSuchEntity"]), Ok(Some(1))));
        let other: Result<u8, Error> = Err(aws("AccessDenied", "no"));
        assert!(absent(other, &["NoSuchEntity"]).is_err());
        assert!(gone(Err::<(), Error>(aws("InvalidVpcID.NotFound", "x")), &["InvalidVpcID.NotFound"]).is_ok());
    }

    #[test]
    fn a_delete_answered_already_done_is_done_and_nothing_else_is() {
        let marked = "You tried to perform the operation on a secret that's currently marked deleted.";
        assert!(gone(Err::<(), Error>(aws("InvalidRequestException", marked)), &["ResourceNotFoundException"]).is_ok());
        let inactive = "Service was not ACTIVE.";
        assert!(gone(Err::<(), Error>(aws("ServiceNotActiveException", inactive)), &[]).is_ok());
        // The same general code for another reason is an error.
        let other = "You can't delete the secret because it is a replica.";
        assert!(gone(Err::<(), Error>(aws("InvalidRequestException", other)), &["ResourceNotFoundException"]).is_err());
        assert!(!Error::Refused("currently marked deleted".into()).is_already_done());
    }
}
