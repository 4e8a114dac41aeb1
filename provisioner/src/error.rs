//! The provisioner's errors: each names the step that failed and the resource, and where the user
//! can act, the fix. AWS errors keep their code and message, which decide what is retried (see
//! `wait`), what means "it is there already" (adoption after a lost answer) and what means "it
//! is gone" (`absent`, `gone`).

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Stack(#[from] stack::StackError),

    #[error("{action} {resource}: {message}")]
    Aws {
        action: &'static str,
        resource: String,
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

    /// True when a create failed because what it creates is there already: a retry of a call
    /// whose answer was lost, or a run killed after the call. The caller re-observes and adopts
    /// what carries our tag (and still refuses what does not).
    pub fn is_already_there(&self) -> bool {
        self.code().is_some_and(|c| ALREADY_THERE_CODES.contains(&c)) || self.says(Means::AlreadyThere)
    }

    /// True when AWS said, in words of `WORDS` that mean `means`, what its code alone does not.
    fn says(&self, means: Means) -> bool {
        let Some(message) = self.aws_message() else { return false };
        let code = self.code().unwrap_or_default();
        WORDS.iter().any(|w| w.means == means && (w.code.is_empty() || w.code == code) && message.contains(w.words))
    }

    /// True when AWS refused the caller the action (whatever the service's code: its message says so).
    pub fn is_denied(&self) -> bool {
        self.says(Means::Denied)
    }

    /// True when AWS said that something made moments ago is not usable yet.
    pub fn is_not_usable_yet(&self) -> bool {
        self.says(Means::NotUsableYet)
    }

    /// True when AWS said, under a code as general as `ValidationError`, that something it made
    /// a moment ago does not exist (not yet visible to the service asked).
    pub fn is_not_visible_yet(&self) -> bool {
        self.says(Means::NotVisibleYet)
    }
}

impl Error {
    /// True when a delete failed because it was done already, in the words of a service whose
    /// code alone does not say so: the retry of a delete whose first answer was lost, or a second
    /// run after a killed one. (Codes that do say so — `NoSuchEntity`, `*.NotFound`… — are given
    /// by each delete to `gone`.)
    pub fn is_already_done(&self) -> bool {
        self.says(Means::AlreadyDone)
    }
}

/// What an answer whose code is too general says in its message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Means {
    /// A create of what exists (see `is_already_there`).
    AlreadyThere,
    /// A delete of what is deleted or scheduled for deletion (see `is_already_done`).
    AlreadyDone,
    /// The caller may not do this (never retried).
    Denied,
    /// What an IAM or service change made moments ago is not usable yet (`Wait::Propagation`).
    NotUsableYet,
    /// What another service made moments ago is not visible yet (`Wait::Consistency`).
    NotVisibleYet,
}

/// One answer of a service, told apart by words of its message because its code is shared
/// with other answers.
struct Words {
    /// Whose answer it is: the table's reader needs it, the match does not.
    #[allow(dead_code)]
    service: &'static str,
    /// Empty: any code.
    code: &'static str,
    words: &'static str,
    means: Means,
}

const fn said(service: &'static str, code: &'static str, words: &'static str, means: Means) -> Words {
    Words { service, code, words, means }
}

/// Every place the provisioner reads AWS's message rather than its code: here, once, each with
/// the service that answers so. Codes that say it alone are given to `absent`/`gone` and to
/// `ALREADY_THERE_CODES`.
const WORDS: &[Words] = &[
    // ECS CreateService retried after a lost answer; CreateCapacityProvider of one that exists.
    said("ECS", "InvalidParameterException", "was not idempotent", Means::AlreadyThere),
    said("ECS", "InvalidParameterException", "already exists", Means::AlreadyThere),
    said("ECS", "ClientException", "already exists", Means::AlreadyThere),
    said("ECS", "ClientException", "was not idempotent", Means::AlreadyThere),
    // Secrets Manager CreateSecret of a name in use.
    said("Secrets Manager", "InvalidRequestException", "already exists", Means::AlreadyThere),
    // IAM AddRoleToInstanceProfile when the profile holds the role (its one slot is taken).
    said("IAM", "LimitExceeded", "InstanceSessionsPerInstanceProfile", Means::AlreadyThere),
    // IAM CreateServiceLinkedRole of a role that exists ("… has been taken in this account").
    said("IAM", "InvalidInput", "has been taken", Means::AlreadyThere),
    // Secrets Manager DeleteSecret of a secret scheduled for deletion ("You tried to perform the
    // operation on a secret that's currently marked deleted.") or being removed after a purge.
    said("Secrets Manager", "InvalidRequestException", "currently marked deleted", Means::AlreadyDone),
    said("Secrets Manager", "InvalidRequestException", "because it was deleted", Means::AlreadyDone),
    // ECS DeleteService / UpdateService of a service already deleted (DRAINING or INACTIVE).
    said("ECS", "ServiceNotActiveException", "", Means::AlreadyDone),
    said("ECS", "ServiceNotFoundException", "", Means::AlreadyDone),
    // ECS DeleteCapacityProvider of one that is gone ("The specified capacity provider does not exist").
    said("ECS", "ClientException", "does not exist", Means::AlreadyDone),
    // Auto Scaling DeleteAutoScalingGroup of a group that is gone ("AutoScalingGroup name not found").
    said("Auto Scaling", "ValidationError", "not found", Means::AlreadyDone),
    // Route 53 ChangeResourceRecordSets DELETE of a record that is gone ("… but it was not found").
    said("Route 53", "InvalidChangeBatch", "not found", Means::AlreadyDone),
    // A refusal of the caller under a service's own code ("… is not authorized to perform …").
    said("any", "", "not authorized to perform", Means::Denied),
    // Auto Scaling / EC2: an instance profile created moments ago.
    said("Auto Scaling", "", "Invalid IamInstanceProfile", Means::NotUsableYet),
    said("EC2", "", "Invalid IAM Instance Profile", Means::NotUsableYet),
    // ECS CreateCluster / CreateCapacityProvider (service-linked role), Application Auto Scaling.
    said("ECS", "", "Unable to assume", Means::NotUsableYet),
    // ECS CreateService: the listener that ties the target group to the load balancer is new.
    said("ECS", "", "does not have an associated load balancer", Means::NotUsableYet),
    said("ECS", "", "verify that the ECS service role being passed has the proper permissions", Means::NotUsableYet),
    // ECS RegisterTaskDefinition: an execution or task role created moments ago.
    said("ECS", "", "Role is not valid", Means::NotUsableYet),
    // Application Auto Scaling: a service or scalable target created moments ago.
    said("Application Auto Scaling", "", "ECS service doesn't exist", Means::NotUsableYet),
    said("Application Auto Scaling", "", "No scalable target registered", Means::NotUsableYet),
    // ELB ModifyLoadBalancerAttributes: a bucket policy put moments ago is not yet seen by the
    // log delivery's test write.
    said("Elastic Load Balancing", "", "Access Denied for bucket", Means::NotUsableYet),
    // Secrets Manager: a secret deleted without recovery moments ago is removed asynchronously.
    said("Secrets Manager", "", "scheduled for deletion", Means::NotUsableYet),
    // ECS PutClusterCapacityProviders while the cluster is still provisioning ("Cluster was not
    // ACTIVE"; the Terraform AWS provider retries it).
    said("ECS", "ClientException", "was not ACTIVE", Means::NotUsableYet),
    // IAM CreateRole naming a boundary created a moment before ("Scope ARN: … does not exist or is
    // not attachable."), AddRoleToInstanceProfile of a role or profile created a moment before
    // ("The role with name … cannot be found.", "Instance Profile … cannot be found.").
    said("IAM", "NoSuchEntity", "does not exist or is not attachable", Means::NotUsableYet),
    said("IAM", "NoSuchEntity", "cannot be found", Means::NotUsableYet),
    // ELB CreateTargetGroup in a VPC made a moment before ("The VPC ID 'vpc-1' is not found").
    said("Elastic Load Balancing", "ValidationError", "is not found", Means::NotVisibleYet),
    // Auto Scaling CreateAutoScalingGroup in subnets made a moment before ("The subnet ID
    // 'subnet-1' does not exist").
    said("Auto Scaling", "ValidationError", "does not exist", Means::NotVisibleYet),
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
            let message = match code.as_deref() {
                Some(c) if crate::aws::QUOTA_CODES.contains(&c) => format!("{message}. {QUOTA_HINT}"),
                _ => message,
            };
            Error::Aws { action, resource: resource.into(), code, message, source: Some(std::sync::Arc::new(err)) }
        })
    }
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
        Error::Aws {
            action: "create",
            resource: "r".into(),
            code: Some(code.into()),
            message: message.into(),
            source: None,
        }
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
        for (code, message) in [
            ("ValidationError", "AutoScalingGroup name not found - AutoScalingGroup 's-instances' not found"),
            ("ClientException", "The specified capacity provider does not exist. Specify a valid name or ARN."),
            (
                "InvalidChangeBatch",
                "[Tried to delete resource record set [name='a.example.com.', type='A'] but it was not found]",
            ),
        ] {
            assert!(aws(code, message).is_already_done(), "{code}: {message}");
        }
        // The same words under another code are not read as done.
        assert!(!aws("ValidationError", "The launch template was not found").is_already_there());
        assert!(!aws("InvalidParameterException", "The specified capacity provider does not exist.").is_already_done());
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
        assert!(causes(&aws("Throttling", "Rate exceeded")).is_empty(), "a made-up error has no chain");
    }

    #[test]
    fn a_refusal_is_read_from_the_message_whatever_the_code() {
        let denied = "User: arn:aws:sts::1:assumed-role/x/ci is not authorized to perform: ecs:CreateCluster";
        assert!(aws("AccessDeniedException", denied).is_denied());
        assert!(aws("ClientException", denied).is_denied());
        assert!(!aws("ClientException", "The specified capacity provider does not exist.").is_denied());
        let taken =
            "Service role name AWSServiceRoleForECS has been taken in this account, please try a different suffix.";
        assert!(aws("InvalidInput", taken).is_already_there());
    }
}
