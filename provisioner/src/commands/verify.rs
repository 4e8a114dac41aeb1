//! `verify`: the pre-flight checks, each with what it found and the fix; and the same checks
//! before `up` changes anything.

use serde::Serialize;

use super::answer::{self, Spent};
use super::context;
use crate::cli::Cli;
use crate::error::Error;
use crate::exit;
use crate::reconcile::{Ctx, Mode};
use crate::verify::{self, Check, Outcome};

/// `verify --json`.
#[derive(Serialize)]
struct Verified<'a> {
    region: &'a str,
    passed: bool,
    checks: &'a [Check],
    #[serde(flatten)]
    spent: Spent,
}

pub async fn run(cli: &Cli) -> Result<u8, Error> {
    let ctx = context(cli, Mode::Plan, std::time::Duration::from_secs(120)).await?;
    let checks = verify::run(&ctx).await;
    let passed = verify::passed(&checks);
    if cli.json {
        let spent = Spent::calls(ctx.clients.calls.counts());
        answer::print(
            "verify",
            Some(&ctx.stack.name),
            Verified { region: &ctx.stack.region, passed, checks: &checks, spent },
        );
    } else {
        println!("Pre-flight checks of stack {} in {}:\n", ctx.stack.name, ctx.clients.target());
        print!("{}", verify::render(&checks));
        println!("\n{}", summary(&checks));
    }
    Ok(if passed { exit::OK } else { exit::ERROR })
}

/// `3 passed, 1 failed, 2 not checked`.
fn summary(checks: &[Check]) -> String {
    let count = |o: Outcome| checks.iter().filter(|c| c.outcome == o).count();
    let parts = [
        (count(Outcome::Passed), "passed"),
        (count(Outcome::Warning), "warnings"),
        (count(Outcome::Failed), "failed"),
        (count(Outcome::NotChecked), "not checked"),
    ];
    parts.iter().filter(|(n, _)| *n > 0).map(|(n, what)| format!("{n} {what}")).collect::<Vec<_>>().join(", ")
}

/// Before `up` plans: refuses when a check failed (nothing changed yet), says the rest in one line.
pub async fn before_up(ctx: &Ctx) -> Result<(), Error> {
    let checks = verify::run(ctx).await;
    if !verify::passed(&checks) {
        return Err(verify::refusal(&checks));
    }
    for c in checks.iter().filter(|c| c.outcome == Outcome::Warning) {
        eprintln!("warning: {}: {} (fix: {})", c.check, c.detail, c.fix.as_deref().unwrap_or("-"));
    }
    eprintln!("Pre-flight checks: {} (`provisioner verify` shows each)", summary(&checks));
    Ok(())
}
