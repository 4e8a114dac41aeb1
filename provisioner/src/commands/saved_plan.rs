//! Terraform's saved plan: `plan --out FILE` keeps the plan with what it was made from (the stack
//! as every tool reads it, the image's sources, the region and endpoint), and `up --plan FILE`
//! applies exactly that plan or nothing: it plans again and refuses, before any change, when the
//! stack file or what AWS holds has changed since (the rows differ), or it is another account's.
//! A plan holds no secret value: the API key's row says only whether it will change, so the value
//! `up` writes is the one in its own environment (a saved plan does not pin it).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::reconcile::{Ctx, Plan};

/// The saved file's format, checked when it is read.
const FORMAT: &str = "konnichiwa-plan/1";

#[derive(Debug, Serialize, Deserialize)]
pub struct SavedPlan {
    format: String,
    stack: String,
    /// The account the plan was made in: a plan of an empty account fits any empty account.
    account: String,
    region: String,
    /// AWS_ENDPOINT_URL, when one was set (an emulator's plan is no real account's).
    endpoint: Option<String>,
    /// The digest of the stack as rendered (its files merged, defaults filled in).
    stack_digest: String,
    /// The rows, as `plan --json` prints them.
    resources: serde_json::Value,
}

impl SavedPlan {
    pub async fn of(ctx: &Ctx, plan: &Plan) -> Result<Self, Error> {
        Ok(Self {
            format: FORMAT.to_owned(),
            stack: ctx.stack.name.clone(),
            account: ctx.clients.identity().await?.account,
            region: ctx.stack.region.clone(),
            endpoint: ctx.clients.endpoint.clone(),
            stack_digest: stack_digest(&ctx.stack)?,
            resources: rows(plan)?,
        })
    }

    pub fn write(&self, path: &Path) -> Result<(), Error> {
        let text =
            serde_json::to_string_pretty(self).map_err(|e| Error::Refused(format!("cannot save the plan: {e}")))?;
        std::fs::write(path, text + "\n")
            .map_err(|e| Error::Usage(format!("cannot write the plan to {}: {e}", path.display())))
    }

    pub fn read(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Usage(format!("cannot read the saved plan {}: {e}", path.display())))?;
        let saved: Self = serde_json::from_str(&text).map_err(|e| {
            Error::Usage(format!("{} is not a plan saved by `provisioner plan --out` ({e})", path.display()))
        })?;
        if saved.format != FORMAT {
            return Err(Error::Usage(format!(
                "{} is a plan of format {:?}; this provisioner applies {FORMAT:?}: plan again with --out",
                path.display(),
                saved.format
            )));
        }
        Ok(saved)
    }

    /// Refuses, naming what differs, unless `plan` (made now for `ctx`) is the saved one.
    pub async fn check(&self, ctx: &Ctx, plan: &Plan) -> Result<(), Error> {
        let refuse = |what: String| {
            Err(Error::Refused(format!(
                "the saved plan is not what `up` would apply now: {what}. Nothing was changed; plan again \
                 (`provisioner plan --out FILE`), review it, and apply that"
            )))
        };
        if (self.stack.as_str(), self.region.as_str()) != (ctx.stack.name.as_str(), ctx.stack.region.as_str()) {
            return refuse(format!(
                "it is stack {} in {}, this is stack {} in {}",
                self.stack, self.region, ctx.stack.name, ctx.stack.region
            ));
        }
        let account = ctx.clients.identity().await?.account;
        if self.account != account {
            return refuse(format!("it was made in account {}, this run is in account {account}", self.account));
        }
        if self.endpoint != ctx.clients.endpoint {
            let name = |e: &Option<String>| e.clone().unwrap_or_else(|| "AWS".to_owned());
            return refuse(format!(
                "it was made against {}, this run is against {}",
                name(&self.endpoint),
                name(&ctx.clients.endpoint)
            ));
        }
        if self.stack_digest != stack_digest(&ctx.stack)? {
            return refuse("the stack file (or a file it extends) has changed since".to_owned());
        }
        let now = rows(plan)?;
        if self.resources != now {
            return refuse(format!("AWS has changed since: {}", differences(&self.resources, &now).join("; ")));
        }
        Ok(())
    }
}

fn stack_digest(stack: &stack::Stack) -> Result<String, Error> {
    let text = serde_json::to_vec(stack).map_err(|e| Error::Refused(format!("cannot read the stack back: {e}")))?;
    Ok(crate::image::digest(&text))
}

fn rows(plan: &Plan) -> Result<serde_json::Value, Error> {
    serde_json::to_value(&plan.resources).map_err(|e| Error::Refused(format!("cannot save the plan: {e}")))
}

/// The rows that differ, by kind and name, at most five.
fn differences(saved: &serde_json::Value, now: &serde_json::Value) -> Vec<String> {
    let key =
        |r: &serde_json::Value| format!("{} {}", r["kind"].as_str().unwrap_or("?"), r["name"].as_str().unwrap_or("?"));
    let list = |v: &serde_json::Value| v.as_array().cloned().unwrap_or_default();
    let (saved, now) = (list(saved), list(now));
    let mut out = Vec::new();
    for r in &now {
        match saved.iter().find(|s| key(s) == key(r)) {
            None => out.push(format!("{} is new", key(r))),
            Some(s) if s != r => out.push(format!(
                "{} was {} and is now {}",
                key(r),
                s["action"].as_str().unwrap_or("?"),
                r["action"].as_str().unwrap_or("?")
            )),
            Some(_) => {}
        }
    }
    out.extend(saved.iter().filter(|s| !now.iter().any(|r| key(r) == key(s))).map(|s| format!("{} is gone", key(s))));
    let more = out.len().saturating_sub(5);
    out.truncate(5);
    if more > 0 {
        out.push(format!("and {more} more"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_differences_name_the_rows() {
        let saved = json!([
            {"kind": "vpc", "name": "k", "action": "noop"},
            {"kind": "ecs-service", "name": "k", "action": "update", "fields": [{"field": "desired_count"}]},
            {"kind": "sns-topic", "name": "k", "action": "create"}
        ]);
        let now = json!([
            {"kind": "vpc", "name": "k", "action": "noop"},
            {"kind": "ecs-service", "name": "k", "action": "update", "fields": [{"field": "task_definition"}]},
            {"kind": "log-group", "name": "/ecs/k", "action": "create"}
        ]);
        assert_eq!(
            differences(&saved, &now),
            vec!["ecs-service k was update and is now update", "log-group /ecs/k is new", "sns-topic k is gone"]
        );
    }
}
