//! stack.yaml, the one description of a deployment: its types, loading with file:line:column
//! errors, validation that reports every problem at once, and a JSON Schema for editors. The
//! provisioner, the loadtest and the monitor all read the file through this crate.

pub mod catalog;
pub mod cli;
pub mod document;
pub mod limits;
pub mod net;
pub mod parse;
pub mod schedule;
pub mod schema;
pub mod units;
pub mod validate;

use std::fmt;
use std::path::{Path, PathBuf};

pub use document::{Document, Position};
pub use schema::*;
pub use units::{HumanDuration, Percent, parse_duration, parse_duration_range};
pub use validate::{Problem, subnet_blocks};

/// The file every tool reads unless told otherwise.
pub const DEFAULT_FILE: &str = "stack.yaml";

/// A problem with its place: the file (when not the one given, e.g. a base it extends), line
/// and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocatedProblem {
    pub path: String,
    pub position: Option<Position>,
    pub message: String,
    /// The file that set the value, when it is not the stack file given.
    pub file: Option<PathBuf>,
}

/// Why a stack file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error("cannot read {file}: {source} (pass another file with --stack)")]
    Read {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The text is not a stack (bad YAML, an unknown field, a value of the wrong type).
    #[error("{}", render_one(file, problem))]
    Syntax { file: PathBuf, problem: LocatedProblem },
    #[error("{}", render_invalid(file, problems))]
    Invalid { file: PathBuf, problems: Vec<LocatedProblem> },
}

/// `FILE:LINE:COLUMN: PATH: MESSAGE`, the form compilers use.
fn render_one(file: &Path, p: &LocatedProblem) -> String {
    let at = p.position.map(|pos| format!(":{pos}")).unwrap_or_default();
    let path = if p.path.is_empty() { String::new() } else { format!(" {}:", p.path) };
    format!("{}{at}:{path} {}", p.file.as_deref().unwrap_or(file).display(), p.message)
}

fn render_invalid(file: &Path, problems: &[LocatedProblem]) -> String {
    let mut out =
        format!("{} has {} problem{}:", file.display(), problems.len(), if problems.len() == 1 { "" } else { "s" });
    for p in problems {
        out.push_str(&format!("\n  {}", render_one(file, p)));
    }
    out
}

impl StackError {
    /// The problems, located; a syntax error counts as one.
    pub fn problems(&self) -> Vec<LocatedProblem> {
        match self {
            Self::Read { .. } => Vec::new(),
            Self::Syntax { problem, .. } => vec![problem.clone()],
            Self::Invalid { problems, .. } => problems.clone(),
        }
    }

    /// The error on one line (problems joined by "; "), for tools that report in one line.
    pub fn one_line(&self) -> String {
        match self {
            Self::Read { .. } | Self::Syntax { .. } => self.to_string(),
            Self::Invalid { file, problems } => {
                problems.iter().map(|p| render_one(file, p)).collect::<Vec<_>>().join("; ")
            }
        }
    }
}

impl Stack {
    /// Reads a stack file and the files it extends, merges them, parses and validates the result.
    pub fn load(file: impl AsRef<Path>) -> Result<Self, StackError> {
        Self::from_document(&Document::load(file.as_ref())?)
    }

    /// Parses and validates a merged document.
    pub fn from_document(doc: &Document) -> Result<Self, StackError> {
        let mut stack: Stack = parse::typed(doc)?;
        stack.derive_names();
        let mut problems = validate::validate(&stack);
        problems.extend(inherited_names(doc, &stack));
        located(problems, doc).map(|()| stack)
    }

    /// Parses and validates stack YAML without overlays (its `extends`, if any, is not followed);
    /// `file` names it in errors.
    pub fn from_yaml(text: &str, file: &Path) -> Result<Self, StackError> {
        Self::from_document(&Document::from_text(text, file)?)
    }

    /// The tags every resource of this stack carries: the stack's own plus the ownership tag.
    pub fn resource_tags(&self) -> Vec<(String, String)> {
        let mut tags: Vec<(String, String)> = self.tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        tags.push((OWNERSHIP_TAG.to_owned(), self.name.clone()));
        tags
    }
}

/// Names taken over (`adopted:`), and the secret's and repository's names when a file sets them,
/// belong to the stack of the file that names them: an overlay that renames the stack
/// (`stack.staging.yaml`) must not inherit them, or it would reach the other stack's resources,
/// and its deploy role with it.
fn inherited_names(doc: &Document, stack: &Stack) -> Vec<Problem> {
    let named_in = doc.origin("name").map(|o| o.file.clone());
    let set: Vec<String> = stack
        .adopted
        .entries()
        .into_iter()
        .filter(|(_, v)| v.is_some())
        .map(|(key, _)| format!("adopted.{key}"))
        .chain(["secret.name".to_owned(), "registry.repository".to_owned()])
        .collect();
    set.into_iter()
        .filter_map(|path| {
            // Only where a file wrote it (`origin` of an unwritten path is its section's or none).
            let origin = doc.origin(&path).filter(|o| doc.origins_has(&path) && o.value.is_some())?;
            let set_in = origin.file.clone();
            // `chain` lists the file itself first, then what it extends: a lower place is an overlay.
            let place = |f: &std::path::PathBuf| doc.chain.iter().position(|c| c == f);
            let renamed_in = named_in.clone().filter(|n| place(n) < place(&set_in))?;
            let fix = if path.starts_with("adopted.") { "`adopted: null`" } else { "this stack's own name for it" };
            Some(Problem {
                message: format!(
                    "set for the stack {} names, but {} names this stack {}: an overlay that renames a stack must \
                     not reach the other's resources; write {fix} in {}",
                    set_in.display(),
                    renamed_in.display(),
                    stack.name,
                    renamed_in.display()
                ),
                path,
            })
        })
        .collect()
}

/// Ok when there are no problems; otherwise every problem with the place that set its value.
fn located(problems: Vec<Problem>, doc: &Document) -> Result<(), StackError> {
    if problems.is_empty() {
        return Ok(());
    }
    let mut located: Vec<LocatedProblem> =
        problems.into_iter().map(|p| doc.locate(&p.path, p.message, false)).collect();
    located.sort_by(|a, b| (&a.file, a.position).cmp(&(&b.file, b.position)));
    Err(StackError::Invalid { file: doc.file.clone(), problems: located })
}

/// The sections the loadtest and the monitor read (`slo`, `monitor`, `loadtest`). Only these are
/// parsed and checked: a problem elsewhere in the file is the provisioner's to report, not a
/// reason for a load test or a health check to fail.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct ToolSections {
    #[serde(default)]
    pub slo: Slo,
    #[serde(default)]
    pub monitor: Monitor,
    #[serde(default)]
    pub loadtest: Option<Loadtest>,
}

impl ToolSections {
    /// Reads `file` and parses and validates only the tools' sections.
    pub fn load(file: impl AsRef<Path>) -> Result<Self, StackError> {
        let doc = Document::load(file.as_ref())?;
        let sections: Self = parse::typed(&doc)?;
        located(validate::tool_sections(&sections.slo, &sections.monitor, sections.loadtest.as_ref()), &doc)
            .map(|()| sections)
    }
}

/// A scenario file (`loadtest --scenario FILE`): the list `loadtest.scenario` takes, parsed and
/// checked, every problem at its line and column; `file` names it in errors.
pub fn scenario_from_yaml(text: &str, file: &Path) -> Result<Vec<Request>, StackError> {
    let empty = |message: &str| StackError::Syntax {
        file: file.to_owned(),
        problem: LocatedProblem { path: String::new(), position: None, message: message.to_owned(), file: None },
    };
    if text.lines().all(|l| l.trim().is_empty() || l.trim_start().starts_with('#')) {
        return Err(empty(
            "the scenario is empty: list its requests, e.g. `- path: /` (README: Load that looks like users)",
        ));
    }
    let doc = Document::from_text(text, file)?;
    let requests: Vec<Request> = parse::typed(&doc)?;
    if requests.is_empty() {
        return Err(empty("the scenario lists no request: give at least one, e.g. `- path: /`"));
    }
    located(validate::scenario(&requests, ""), &doc).map(|()| requests)
}

/// The tag that marks a resource as this stack's: `konnichiwa:stack = <name>`.
pub const OWNERSHIP_TAG: &str = "konnichiwa:stack";

/// The JSON Schema of stack.yaml, for editors (`provisioner schema`).
pub fn json_schema() -> serde_json::Value {
    let schema = schemars::schema_for!(Stack);
    serde_json::to_value(schema).unwrap_or_default()
}

impl fmt::Display for LocatedProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some(p) => write!(f, "{p}: {}: {}", self.path, self.message),
            None => write!(f, "{}: {}", self.path, self.message),
        }
    }
}
