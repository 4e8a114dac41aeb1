//! Pre-flight checks: what would stop `up` half-way, found before any change. Each check reads
//! only, and says what it found and, when it fails, the fix. `verify` runs them all; `up` runs
//! them before it takes the lease or changes anything (`--skip-verify` leaves them out).
//!
//! A check AWS does not let the caller run (Service Quotas or IAM simulation denied, an API an
//! emulator lacks) is reported as not checked, with the reason: never as passed.

mod account;
mod artifacts;
mod capacity;
mod domain;
pub mod permissions;
mod resolver;
mod simulation;

use serde::Serialize;

pub use capacity::fargate_vcpus;

use crate::error::Error;
use crate::reconcile::Ctx;

pub use permissions::PERMISSIONS;

/// How a check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Passed,
    /// Worth knowing; `up` still goes ahead.
    Warning,
    /// `up` would fail or get stuck.
    Failed,
    /// The caller may not ask (or the API is missing): nothing is known.
    NotChecked,
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    pub check: &'static str,
    pub outcome: Outcome,
    /// What was found.
    pub detail: String,
    /// What to do about a failure or a warning.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    pub fn passed(check: &'static str, detail: impl Into<String>) -> Self {
        Self { check, outcome: Outcome::Passed, detail: detail.into(), fix: None }
    }

    pub fn failed(check: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self { check, outcome: Outcome::Failed, detail: detail.into(), fix: Some(fix.into()) }
    }

    pub fn warning(check: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self { check, outcome: Outcome::Warning, detail: detail.into(), fix: Some(fix.into()) }
    }

    /// A check the answer to `error` kept from running.
    pub fn not_checked(check: &'static str, error: &Error) -> Self {
        let why = format!("{error:#}");
        Self { check, outcome: Outcome::NotChecked, detail: crate::error::without_dumps(&why), fix: None }
    }
}

/// Runs every check at once; the results in one order whatever finished first.
pub async fn run(ctx: &Ctx) -> Vec<Check> {
    let (who, capacity, artifacts, domain) =
        tokio::join!(account::checks(ctx), capacity::checks(ctx), artifacts::checks(ctx), domain::checks(ctx),);
    [who, capacity, artifacts, domain].into_iter().flatten().collect()
}

/// True when no check failed.
pub fn passed(checks: &[Check]) -> bool {
    !checks.iter().any(|c| c.outcome == Outcome::Failed)
}

/// One line per check, and the fix under each failure and warning.
pub fn render(checks: &[Check]) -> String {
    let width = checks.iter().map(|c| c.check.len()).max().unwrap_or(0);
    let mut out = String::new();
    for c in checks {
        let mark = match c.outcome {
            Outcome::Passed => "ok     ",
            Outcome::Warning => "warning",
            Outcome::Failed => "FAILED ",
            Outcome::NotChecked => "not checked",
        };
        out += &format!("  {mark:<11} {:<width$}  {}\n", c.check, c.detail);
        if let Some(fix) = &c.fix {
            out += &format!("  {:<11} {:<width$}  fix: {fix}\n", "", "");
        }
    }
    out
}

/// `up`'s refusal when a check failed: every failure with its fix.
pub fn refusal(checks: &[Check]) -> Error {
    let failed: Vec<String> = checks
        .iter()
        .filter(|c| c.outcome == Outcome::Failed)
        .map(|c| format!("{}: {} (fix: {})", c.check, c.detail, c.fix.as_deref().unwrap_or("-")))
        .collect();
    Error::Refused(format!(
        "the pre-flight checks failed, so nothing was changed:\n  {}\n`provisioner verify` shows every check; \
         `up --skip-verify` goes ahead anyway",
        failed.join("\n  ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn up_refuses_with_every_failure_and_its_fix_and_nothing_else() {
        let checks = [
            Check::passed("ami", "ami-1 exists"),
            Check::failed("image", "x does not exist", "push it"),
            Check::not_checked("permissions", &Error::Refused("denied".into())),
            Check::failed("instance type", "t3a.small is not offered in 1c", "pick another"),
        ];
        assert!(!passed(&checks));
        let said = refusal(&checks).to_string();
        assert!(said.contains("image: x does not exist (fix: push it)"), "{said}");
        assert!(said.contains("instance type: t3a.small is not offered in 1c (fix: pick another)"), "{said}");
        assert!(!said.contains("ami") && !said.contains("permissions"), "{said}");
        assert!(passed(&checks[..1]) && passed(&checks[2..3]), "not checked is not failed");
        let text = render(&checks);
        assert!(text.contains("FAILED") && text.contains("not checked") && text.contains("fix: push it"), "{text}");
    }
}
