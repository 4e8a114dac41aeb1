//! The one shape of every `--json` answer, and the only way a command prints one: `command`, then
//! `stack` when the command loaded one, then the command's own fields (a typed body beside the
//! command). A failure's body is [`Failure`]; what ran against AWS ends with [`Spent`]. README.md's
//! "`--json` output" table documents each body and a test holds the two together.

use serde::Serialize;

use crate::aws::CallCounts;
use crate::lease::LeaseReport;
use crate::reconcile::{Plan, ResourceChange, Summary};

/// `{"command": …, "stack": …, <body>}`.
#[derive(Debug, Serialize)]
pub struct Answer<'a, B: Serialize> {
    /// None only when the command line named no command that exists.
    pub command: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stack: Option<&'a str>,
    #[serde(flatten)]
    pub body: B,
}

impl<B: Serialize> Answer<'_, B> {
    pub fn to_pretty(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

/// Prints `command`'s answer on stdout.
pub fn print<B: Serialize>(command: &str, stack: Option<&str>, body: B) {
    println!("{}", Answer { command: Some(command), stack, body }.to_pretty());
}

/// Why a command failed: the error, the causes beneath it (the SDK's, the service's), and, for a
/// stack that does not validate, every problem with its place in the file.
#[derive(Debug, Serialize)]
pub struct Failure {
    pub error: String,
    pub causes: Vec<String>,
    pub problems: Vec<Problem>,
}

/// One problem of a stack file.
#[derive(Debug, Serialize)]
pub struct Problem {
    pub path: String,
    pub line: Option<u64>,
    pub column: Option<u64>,
    pub message: String,
}

impl From<&stack::LocatedProblem> for Problem {
    fn from(p: &stack::LocatedProblem) -> Self {
        Self {
            path: p.path.clone(),
            line: p.position.map(|x| x.line),
            column: p.position.map(|x| x.column),
            message: p.message.clone(),
        }
    }
}

/// What a run spent: its API calls, and, for the commands that take the stack's lease, the lease
/// and the wall time.
#[derive(Debug, Serialize)]
pub struct Spent {
    pub api_calls: CallCounts,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease: Option<LeaseReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub elapsed_seconds: Option<f64>,
}

impl Spent {
    /// Calls alone (commands that change nothing, or that take no lease).
    pub fn calls(api_calls: CallCounts) -> Self {
        Self { api_calls, lease: None, elapsed_seconds: None }
    }

    /// Calls, the lease held while changing the stack, and the seconds since `started`.
    pub fn leased(api_calls: CallCounts, lease: LeaseReport, started: std::time::Instant) -> Self {
        Self { api_calls, lease: Some(lease), elapsed_seconds: Some(started.elapsed().as_secs_f64()) }
    }
}

/// A plan as `up`, `down` and `ci-role` report it: its rows and their counts.
#[derive(Debug, Serialize)]
pub struct PlanView<'a> {
    pub resources: Vec<&'a ResourceChange>,
    pub summary: Summary,
}

impl<'a> PlanView<'a> {
    pub fn all(plan: &'a Plan) -> Self {
        Self { resources: plan.resources.iter().collect(), summary: plan.summary() }
    }

    /// The rows that change something (what an apply did), with the whole plan's counts.
    pub fn changed(plan: &'a Plan) -> Self {
        Self { resources: plan.resources.iter().filter(|r| !r.change.is_no_op()).collect(), summary: plan.summary() }
    }
}
