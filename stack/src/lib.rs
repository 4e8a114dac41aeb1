//! stack.yaml, the one description of a deployment: its types, loading with file:line:column
//! errors, validation that reports every problem at once, and a JSON Schema for editors. The
//! provisioner, the loadtest and the monitor all read the file through this crate.

pub mod catalog;
pub mod locate;
pub mod schema;
pub mod units;
pub mod validate;

use std::fmt;
use std::path::{Path, PathBuf};

pub use locate::Position;
pub use schema::*;
pub use units::{HumanDuration, Percent};
pub use validate::{Problem, subnet_blocks};

/// The file every tool reads unless told otherwise.
pub const DEFAULT_FILE: &str = "stack.yaml";

/// A problem with its place in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocatedProblem {
    pub path: String,
    pub position: Option<Position>,
    pub message: String,
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
    #[error("{file}: {message}")]
    Syntax { file: PathBuf, message: String, position: Option<Position> },
    #[error("{}", render_invalid(file, problems))]
    Invalid { file: PathBuf, problems: Vec<LocatedProblem> },
}

fn render_invalid(file: &Path, problems: &[LocatedProblem]) -> String {
    let mut out =
        format!("{} has {} problem{}:", file.display(), problems.len(), if problems.len() == 1 { "" } else { "s" });
    for p in problems {
        let at = p.position.map(|pos| format!(":{pos}")).unwrap_or_default();
        out.push_str(&format!("\n  {}{at}: {}: {}", file.display(), p.path, p.message));
    }
    out
}

impl StackError {
    /// The problems, located; a syntax error counts as one.
    pub fn problems(&self) -> Vec<LocatedProblem> {
        match self {
            Self::Read { .. } => Vec::new(),
            Self::Syntax { message, position, .. } => {
                vec![LocatedProblem { path: String::new(), position: *position, message: message.clone() }]
            }
            Self::Invalid { problems, .. } => problems.clone(),
        }
    }
}

impl Stack {
    /// Reads, parses and validates a stack file.
    pub fn load(file: impl AsRef<Path>) -> Result<Self, StackError> {
        let file = file.as_ref();
        let text =
            std::fs::read_to_string(file).map_err(|source| StackError::Read { file: file.to_owned(), source })?;
        Self::from_yaml(&text, file)
    }

    /// Parses and validates stack YAML; `file` names it in errors.
    pub fn from_yaml(text: &str, file: &Path) -> Result<Self, StackError> {
        let stack: Stack = serde_saphyr::from_str(text).map_err(|e| StackError::Syntax {
            file: file.to_owned(),
            position: e.location().map(|l| Position { line: l.line(), column: l.column() }),
            message: e.to_string(),
        })?;
        let problems = validate::validate(&stack);
        if problems.is_empty() {
            return Ok(stack);
        }
        let positions = locate::Positions::of(text);
        let mut located: Vec<LocatedProblem> = problems
            .into_iter()
            .map(|p| LocatedProblem { position: positions.find(&p.path), path: p.path, message: p.message })
            .collect();
        located.sort_by_key(|p| p.position);
        Err(StackError::Invalid { file: file.to_owned(), problems: located })
    }

    /// The tags every resource of this stack carries: the stack's own plus the ownership tag.
    pub fn resource_tags(&self) -> Vec<(String, String)> {
        let mut tags: Vec<(String, String)> = self.tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        tags.push((OWNERSHIP_TAG.to_owned(), self.name.clone()));
        tags
    }
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
