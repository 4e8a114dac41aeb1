//! `status` (what exists, per resource, and the outputs) and `outputs` (the outputs alone).

use serde_json::json;

use super::{context, print_json};
use crate::cli::Cli;
use crate::error::Error;
use crate::exit;
use crate::reconcile::{Action, Mode, driver};

pub async fn run(cli: &Cli, outputs_only: bool) -> Result<u8, Error> {
    let ctx = context(cli, Mode::Plan, std::time::Duration::from_secs(600)).await?;
    let (plan, outputs) = driver::reconcile(&ctx, &driver::ImageSource::Unchanged).await?;
    let state = |a: Action| match a {
        Action::NoOp => "in-sync",
        Action::Create => "missing",
        Action::Update | Action::Replace => "drifted",
        Action::Delete => "extra",
    };
    if outputs_only {
        if cli.json {
            print_json(&json!({ "command": "outputs", "stack": ctx.stack.name, "outputs": outputs }));
        } else {
            println!("{}", serde_json::to_string_pretty(&outputs).unwrap_or_default());
        }
        return Ok(exit::OK);
    }
    if cli.json {
        let resources: Vec<_> = plan
            .resources
            .iter()
            .map(|r| json!({ "kind": r.kind, "name": r.name, "id": r.id, "state": state(r.change.action) }))
            .collect();
        print_json(
            &json!({ "command": "status", "stack": ctx.stack.name, "region": ctx.stack.region, "resources": resources, "outputs": outputs }),
        );
    } else {
        println!("Stack {} in {}:\n", ctx.stack.name, ctx.clients.target());
        for r in &plan.resources {
            println!(
                "  {:<9} {:<17} {:<40} {}",
                state(r.change.action),
                r.kind,
                r.name,
                r.id.as_deref().unwrap_or("-")
            );
        }
        println!("\nOutputs:\n{}", serde_json::to_string_pretty(&outputs).unwrap_or_default());
    }
    Ok(exit::OK)
}
