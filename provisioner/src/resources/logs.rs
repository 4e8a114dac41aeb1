//! The service's CloudWatch log group: retention from stack.yaml, tagged at creation.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::{AwsContext, Error};
use crate::reconcile::{Action, Change, Ctx, FieldDiff, Plan, compare, tags};

#[derive(Debug, Clone, Default, Serialize)]
pub struct LogOutputs {
    pub log_group: String,
    pub log_group_arn: Option<String>,
}

pub fn name(stack: &stack::Stack) -> String {
    format!("/ecs/{}", stack.name)
}

#[derive(Debug, Clone, PartialEq)]
pub struct ObservedLogGroup {
    pub arn: String,
    pub retention_days: Option<i32>,
    pub tags: Vec<(String, String)>,
}

pub fn diff(stack: &stack::Stack, observed: Option<&ObservedLogGroup>) -> Change {
    let want = i32::try_from(stack.logs.retention_days).unwrap_or(30);
    let want_tags = stack.resource_tags();
    let Some(g) = observed else {
        return Change::create(vec![FieldDiff::new("retention_days", None, Some(want.to_string()))]);
    };
    let mut fields: Vec<FieldDiff> = compare(
        "retention_days",
        &g.retention_days.map_or("never expire".into(), |d| d.to_string()),
        &want.to_string(),
    )
    .into_iter()
    .collect();
    fields.extend(tags::diff(&want_tags, &g.tags));
    Change::update(fields)
}

async fn observe(ctx: &Ctx, name: &str) -> Result<Option<ObservedLogGroup>, Error> {
    let logs = &ctx.clients.logs;
    let out = logs.describe_log_groups().log_group_name_prefix(name).send().await.ctx("describe log group", name)?;
    let Some(g) = out.log_groups().iter().find(|g| g.log_group_name() == Some(name)) else { return Ok(None) };
    // The ARN without the trailing ":*" is what the tagging API takes.
    let arn = g.arn().unwrap_or_default().trim_end_matches(":*").to_owned();
    let listed = logs.list_tags_for_resource().resource_arn(&arn).send().await.ctx("list tags of log group", name)?;
    let tags: Vec<(String, String)> =
        listed.tags().map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).unwrap_or_default();
    let found = vec![ObservedLogGroup { arn, retention_days: g.retention_in_days(), tags }];
    tags::pick_owned("log group", name, &ctx.stack.name, found, |g| g.arn.clone(), |g| g.tags.clone())
}

pub async fn reconcile(ctx: &Ctx, plan: &mut Plan) -> Result<LogOutputs, Error> {
    let name = name(&ctx.stack);
    let observed = observe(ctx, &name).await?;
    let change = diff(&ctx.stack, observed.as_ref());
    let mut arn = observed.as_ref().map(|g| g.arn.clone());
    if ctx.applying() && !change.is_no_op() {
        let logs = &ctx.clients.logs;
        let want_tags: BTreeMap<String, String> = ctx.stack.resource_tags().into_iter().collect();
        if change.action == Action::Create {
            logs.create_log_group()
                .log_group_name(&name)
                .set_tags(Some(want_tags.clone().into_iter().collect()))
                .send()
                .await
                .ctx("create log group", &name)?;
            let created = observe(ctx, &name).await?;
            arn = created.map(|g| g.arn);
        } else if let Some(a) = arn.as_ref().filter(|_| change.fields.iter().any(|f| f.field.starts_with("tags."))) {
            logs.tag_resource()
                .resource_arn(a)
                .set_tags(Some(want_tags.into_iter().collect()))
                .send()
                .await
                .ctx("tag log group", &name)?;
        }
        if change.fields.iter().any(|f| f.field == "retention_days") {
            logs.put_retention_policy()
                .log_group_name(&name)
                .retention_in_days(i32::try_from(ctx.stack.logs.retention_days).unwrap_or(30))
                .send()
                .await
                .ctx("set retention of log group", &name)?;
        }
        ctx.progress(format!("log group {name} ready"));
    }
    plan.push("log-group", &name, arn.clone(), change);
    Ok(LogOutputs { log_group: name, log_group_arn: arn })
}

pub async fn teardown(ctx: &Ctx, plan: &mut Plan) -> Result<(), Error> {
    let name = name(&ctx.stack);
    let Some(g) = observe(ctx, &name).await? else { return Ok(()) };
    if ctx.applying() {
        match ctx.clients.logs.delete_log_group().log_group_name(&name).send().await.ctx("delete log group", &name) {
            Err(e) if e.code() != Some("ResourceNotFoundException") => return Err(e),
            _ => ctx.progress(format!("deleted log group {name}")),
        }
    }
    plan.push("log-group", &name, Some(g.arn), Change::delete());
    Ok(())
}

pub async fn leftovers(ctx: &Ctx) -> Result<Vec<String>, Error> {
    Ok(observe(ctx, &name(&ctx.stack)).await?.map(|g| format!("log group {}", g.arn)).into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_and_tags() {
        let s = crate::resources::test_stack();
        let good = ObservedLogGroup { arn: "arn:x".into(), retention_days: Some(30), tags: s.resource_tags() };
        assert!(diff(&s, Some(&good)).is_no_op());
        let forever = ObservedLogGroup { retention_days: None, ..good };
        assert_eq!(
            diff(&s, Some(&forever)).fields,
            vec![FieldDiff::new("retention_days", Some("never expire".into()), Some("30".into()))]
        );
        assert_eq!(diff(&s, None).action, Action::Create);
    }
}
