//! The service's CloudWatch log group: retention from stack.yaml, tagged at creation. Its ARN is
//! built from the partition, region, account and name, so it is known before the group exists.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::{AwsContext, Error, gone};
use crate::reconcile::Noun;
use crate::reconcile::kind::{Kind, Making, Node, Reconciles};
use crate::reconcile::permission::{Permission, PolicyContext, Scope};
use crate::reconcile::step::Observed;
use crate::reconcile::{Change, Ctx, FieldDiff, Plan, Step, compare, tags};
/// The nouns of this kind's plan rows.
pub const LOG_GROUP: Noun = Noun::new("log-group");

/// What the log group calls, on `/ecs/<stack>` only.
pub const PERMISSIONS: &[Permission] = &[
    Permission::new(&["logs:DescribeLogGroups"], Scope::Any),
    Permission::new(
        &[
            "logs:CreateLogGroup",
            "logs:DeleteLogGroup",
            "logs:PutRetentionPolicy",
            "logs:ListTagsForResource",
            // `provisioner logs` (a deploy job may show what the new tasks print), and whether a
            // task named by --task ever logged there.
            "logs:FilterLogEvents",
            "logs:DescribeLogStreams",
        ],
        Scope::Own(group_arns),
    ),
    Permission::new(&["logs:TagResource"], Scope::Retag(group_arns)),
];

fn group_arns(c: &PolicyContext) -> Vec<String> {
    let group = c.arn("logs", &format!("log-group:{}", name(c.stack)));
    vec![group.clone(), format!("{group}:*")]
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct LogOutputs {
    pub log_group: String,
    pub log_group_arn: String,
}

/// `arn:PARTITION:logs:REGION:ACCOUNT:log-group:NAME` (the form the tagging API and IAM take).
pub fn arn(identity: &crate::aws::Identity, region: &str, name: &str) -> String {
    format!("arn:{}:logs:{region}:{}:log-group:{name}", identity.partition, identity.account)
}

pub fn name(stack: &stack::Stack) -> String {
    stack.adopted.log_group.clone().unwrap_or_else(|| format!("/ecs/{}", stack.name))
}

#[derive(Debug, Clone, PartialEq)]
pub struct ObservedLogGroup {
    pub arn: String,
    pub retention_days: Option<i32>,
    pub tags: Vec<(String, String)>,
}

impl Observed for ObservedLogGroup {
    fn id(&self) -> &str {
        &self.arn
    }
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
    // Every page until ours: other groups can share the prefix (`/ecs/NAME-staging`).
    let mut groups = logs.describe_log_groups().log_group_name_prefix(name).into_paginator().items().send();
    let g = loop {
        match groups.next().await {
            None => return Ok(None),
            Some(g) => {
                let g = g.ctx("describe log group", name)?;
                if g.log_group_name() == Some(name) {
                    break g;
                }
            }
        }
    };
    // The ARN without the trailing ":*" is what the tagging API takes.
    let arn = g.arn().unwrap_or_default().trim_end_matches(":*").to_owned();
    let listed = logs.list_tags_for_resource().resource_arn(&arn).send().await.ctx("list tags of log group", name)?;
    let tags: Vec<(String, String)> =
        listed.tags().map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).unwrap_or_default();
    let found = vec![ObservedLogGroup { arn, retention_days: g.retention_in_days(), tags }];
    tags::pick_owned("log group", name, &ctx.owner(), found, |g| g.arn.clone(), |g| g.tags.clone())
}

async fn apply(
    ctx: &Ctx,
    name: &str,
    arn: &str,
    change: &Change,
    observed: Option<&ObservedLogGroup>,
) -> Result<(), Error> {
    let logs = &ctx.clients.logs;
    let want_tags: BTreeMap<String, String> = ctx.stack.resource_tags().into_iter().collect();
    if observed.is_none() {
        logs.create_log_group()
            .log_group_name(name)
            .set_tags(Some(want_tags.into_iter().collect()))
            .send()
            .await
            .ctx("create log group", name)?;
    } else if change.has_tags() {
        logs.tag_resource()
            .resource_arn(arn)
            .set_tags(Some(want_tags.into_iter().collect()))
            .send()
            .await
            .ctx("tag log group", name)?;
    }
    if change.has("retention_days") {
        logs.put_retention_policy()
            .log_group_name(name)
            .retention_in_days(i32::try_from(ctx.stack.logs.retention_days).unwrap_or(30))
            .send()
            .await
            .ctx("set retention of log group", name)?;
    }
    ctx.progress(format!("log group {name} ready"));
    Ok(())
}

pub async fn reconcile(ctx: &Ctx, plan: &mut Plan) -> Result<LogOutputs, Error> {
    let name = name(&ctx.stack);
    let arn = arn(&ctx.clients.identity().await?, &ctx.stack.region, &name);
    Step::new(ctx, LOG_GROUP, &name)
        .converge(
            plan,
            async || observe(ctx, &name).await,
            |o| diff(&ctx.stack, o),
            async |c: &Change, o: Option<&ObservedLogGroup>| apply(ctx, &name, &arn, c, o).await,
        )
        .await?;
    Ok(LogOutputs { log_group: name, log_group_arn: arn })
}

/// The service's log group.
fn derived_names(stack: &stack::Stack) -> Vec<(Noun, String)> {
    vec![(LOG_GROUP, name(stack))]
}

/// This kind in the one list of kinds (`resources::KINDS`).
pub const KIND: Kind = Kind {
    name: "log-group",
    nouns: &[LOG_GROUP],
    permissions: PERMISSIONS,
    arn_types: &["logs:log-group"],
    deleted_after: &["ecs-service", "loadtest"],
    derived_names,
    name_limits: &[(LOG_GROUP, &stack::limits::LOG_GROUP_NAME)],
    terraform_types: &["aws_cloudwatch_log_group"],
    teardown: |ctx, plan, down| Box::pin(teardown(ctx, plan, down)),
    leftovers: |ctx| Box::pin(leftovers(ctx)),
    node: Some(Node::of::<LogGroup>()),
};

/// The log group needs nothing of other kinds.
pub struct LogGroup;

impl Reconciles for LogGroup {
    type Needs = ();
    type Seen = ();
    type Gives = LogOutputs;

    fn see(_: &Ctx) -> Making<'_, ()> {
        Box::pin(async { Ok(()) })
    }

    fn reconcile<'a>(ctx: &'a Ctx, plan: &'a mut Plan, (): (), (): ()) -> Making<'a, LogOutputs> {
        Box::pin(async move { reconcile(ctx, plan).await })
    }
}

pub async fn teardown(ctx: &Ctx, plan: &mut Plan, _: &crate::reconcile::kind::Down) -> Result<(), Error> {
    let name = name(&ctx.stack);
    let Some(g) = observe(ctx, &name).await? else { return Ok(()) };
    if ctx.applying() {
        let r = ctx.clients.logs.delete_log_group().log_group_name(&name).send().await.ctx("delete log group", &name);
        gone(r)?;
        ctx.progress(format!("deleted log group {name}"));
    }
    plan.push(LOG_GROUP, &name, Some(g.arn), Change::delete());
    Ok(())
}

pub async fn leftovers(ctx: &Ctx) -> Result<Vec<String>, Error> {
    Ok(observe(ctx, &name(&ctx.stack)).await?.map(|g| format!("log group {}", g.arn)).into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_arn_is_known_before_the_group_exists() {
        let id =
            crate::aws::Identity { account: "123456789012".into(), arn: String::new(), partition: "aws-cn".into() };
        assert_eq!(arn(&id, "cn-north-1", "/ecs/s"), "arn:aws-cn:logs:cn-north-1:123456789012:log-group:/ecs/s");
    }

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
        assert_eq!(diff(&s, None).action, crate::reconcile::Action::Create);
    }
}
