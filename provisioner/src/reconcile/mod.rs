//! The reconcile engine's vocabulary: what a resource kind reports (a `ResourceChange` per
//! resource: create / update fields / replace / delete / no-op), the plan they add up to, the
//! context every kind runs in (clients, stack, mode, deadline), ids that are not known yet
//! (`known`), and the one step every sub-resource goes through (`step`). The kinds import this
//! module; it imports none of them (the driver that knows every kind is `crate::engine`).

pub mod adopting;
pub mod kind;
pub mod known;
pub mod permission;
pub mod render;
pub mod step;
pub mod tags;

use std::future::Future;
use std::time::Instant;

use serde::Serialize;

use crate::aws::Clients;
use crate::error::Error;
use crate::wait::Wait;

pub use known::Id;
pub use step::Step;

/// What a run may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Observe and diff only: no mutating call.
    Plan,
    /// Observe, diff and apply.
    Apply,
}

/// What happens to one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Create,
    Update,
    Replace,
    Delete,
    #[serde(rename = "no-op")]
    NoOp,
}

/// One field that differs: `old` is what AWS has (None: absent), `new` what stack.yaml wants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldDiff {
    pub field: String,
    pub old: Option<String>,
    pub new: Option<String>,
}

impl FieldDiff {
    pub fn new(field: impl Into<String>, old: Option<String>, new: Option<String>) -> Self {
        Self { field: field.into(), old, new }
    }
}

/// A field diff when `old` and `new` differ.
pub fn compare<T: PartialEq + std::fmt::Display>(field: &str, old: &T, new: &T) -> Option<FieldDiff> {
    (old != new).then(|| FieldDiff::new(field, Some(old.to_string()), Some(new.to_string())))
}

/// The change to one resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub action: Action,
    /// For updates: what differs. For creates: the main settings.
    pub fields: Vec<FieldDiff>,
    /// For replacements: why AWS forces one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Change {
    pub fn no_op() -> Self {
        Self { action: Action::NoOp, fields: Vec::new(), reason: None }
    }

    pub fn create(fields: Vec<FieldDiff>) -> Self {
        Self { action: Action::Create, fields, reason: None }
    }

    pub fn delete() -> Self {
        Self { action: Action::Delete, fields: Vec::new(), reason: None }
    }

    pub fn replace(reason: impl Into<String>, fields: Vec<FieldDiff>) -> Self {
        Self { action: Action::Replace, fields, reason: Some(reason.into()) }
    }

    /// Update when any field differs, else no-op.
    pub fn update(fields: Vec<FieldDiff>) -> Self {
        if fields.is_empty() { Self::no_op() } else { Self { action: Action::Update, fields, reason: None } }
    }

    pub fn is_no_op(&self) -> bool {
        self.action == Action::NoOp
    }

    /// True when `field` differs (Terraform's `d.HasChange`).
    pub fn has(&self, field: &str) -> bool {
        self.fields.iter().any(|f| f.field == field)
    }

    /// True when a field starting with `prefix` differs (`route `, `listener `).
    pub fn has_prefix(&self, prefix: &str) -> bool {
        self.fields.iter().any(|f| f.field.starts_with(prefix))
    }

    /// True when a tag differs.
    pub fn has_tags(&self) -> bool {
        self.has_prefix("tags.")
    }

    /// True when fields other than tags differ.
    pub fn has_more_than_tags(&self) -> bool {
        self.fields.iter().any(|f| !f.field.starts_with("tags."))
    }
}

/// The noun of a plan row: what kind of resource it is, as the plan, the census and the sweep
/// call it. Each is a constant of the kind that makes it, listed in its `Kind::nouns`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Noun(&'static str);

impl Noun {
    pub const fn new(noun: &'static str) -> Self {
        Self(noun)
    }

    pub const fn as_str(self) -> &'static str {
        self.0
    }
}

impl std::fmt::Display for Noun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.0)
    }
}

impl PartialEq<&str> for Noun {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<str> for Noun {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

/// A change with the resource it applies to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResourceChange {
    pub kind: Noun,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(flatten)]
    pub change: Change,
}

/// Counts by action.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub create: usize,
    pub update: usize,
    pub replace: usize,
    pub delete: usize,
    pub unchanged: usize,
}

/// Everything a run found and would do (or did), in dependency order, and what it found worth
/// saying that is not a change (a newer AMI it did not move to).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Plan {
    pub resources: Vec<ResourceChange>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl Plan {
    pub fn push(&mut self, kind: Noun, name: impl Into<String>, id: Option<String>, change: Change) {
        self.resources.push(ResourceChange { kind, name: name.into(), id, change });
    }

    pub fn has_changes(&self) -> bool {
        self.resources.iter().any(|r| !r.change.is_no_op())
    }

    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for r in &self.resources {
            match r.change.action {
                Action::Create => s.create += 1,
                Action::Update => s.update += 1,
                Action::Replace => s.replace += 1,
                Action::Delete => s.delete += 1,
                Action::NoOp => s.unchanged += 1,
            }
        }
        s
    }

    pub fn extend(&mut self, other: Plan) {
        self.resources.extend(other.resources);
        self.notes.extend(other.notes);
    }

    /// Something the reader should know that is not a change.
    pub fn note(&mut self, text: impl Into<String>) {
        self.notes.push(text.into());
    }
}

/// What every resource kind runs with.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub clients: Clients,
    pub stack: stack::Stack,
    pub mode: Mode,
    pub deadline: Instant,
    /// What `adopt`'s plan takes as ours untagged (empty in every other run).
    pub adopting: std::sync::Arc<adopting::Adopting>,
}

impl Ctx {
    /// Whose resources this run takes as its own.
    pub fn owner(&self) -> adopting::Owner<'_> {
        adopting::Owner { stack: &self.stack.name, adopting: &self.adopting }
    }

    pub fn applying(&self) -> bool {
        self.mode == Mode::Apply
    }

    /// Progress of an apply, on stderr (stdout carries the result).
    pub fn progress(&self, message: impl std::fmt::Display) {
        if self.applying() {
            eprintln!("  {message}");
        }
    }

    /// Runs `op`, waiting out what `wait` names (see `wait::until`) within the run's deadline.
    pub async fn wait<T, F, Fut>(&self, wait: Wait, waiting_for: &str, op: F) -> Result<T, Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        crate::wait::until(self.deadline, wait, waiting_for, op).await
    }
}
