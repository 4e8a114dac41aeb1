//! The SNS topic the SLO alarms notify (`service.deployment.alarm_topic: true`): `<stack>-alarms`,
//! tagged at creation. Who is subscribed to it (email, chat, a pager) is the operator's choice,
//! made outside the stack, and left untouched. Turned off, a topic of ours is deleted. Its ARN is
//! built from the partition, region, account and name, so it is known before the topic exists.

use aws_sdk_sns::types::Tag;

use crate::error::{AwsContext, Error, absent, gone};
use crate::reconcile::Noun;
use crate::reconcile::kind::{Kind, Making, Node, Reconciles};
use crate::reconcile::permission::{Permission, PolicyContext, Scope};
use crate::reconcile::step::Observed;
use crate::reconcile::{Change, Ctx, FieldDiff, Plan, Step, tags};
/// The nouns of this kind's plan rows.
pub const SNS_TOPIC: Noun = Noun::new("sns-topic");

/// What the topic calls, on `<stack>-alarms` only.
pub const PERMISSIONS: &[Permission] = &[
    Permission::new(&["sns:GetTopicAttributes", "sns:ListTagsForResource"], Scope::Own(topic_arns)),
    Permission::new(&["sns:TagResource"], Scope::Retag(topic_arns)),
    // CreateTopic takes the topic's policy among its attributes, which no condition can see (one
    // could let outsiders subscribe or publish fake pages): making and deleting it is an
    // administrator's.
    Permission::new(&["sns:CreateTopic", "sns:DeleteTopic"], Scope::Own(topic_arns)).administrators_only(),
];

fn topic_arns(c: &PolicyContext) -> Vec<String> {
    vec![c.arn("sns", &name(&c.stack.name))]
}

/// The alarms' topic, when `alarm_topic` asks for one.
fn derived_names(stack: &stack::Stack) -> Vec<(Noun, String)> {
    if stack.service.deployment.alarm_topic { vec![(SNS_TOPIC, name(&stack.name))] } else { Vec::new() }
}

/// This kind in the one list of kinds (`resources::KINDS`).
/// This kind in the one list of kinds (`resources::KINDS`).
pub const KIND: Kind = Kind {
    name: "sns-topic",
    nouns: &[SNS_TOPIC],
    permissions: PERMISSIONS,
    arn_types: &["sns:{stack}-alarms"],
    deleted_after: &["alarms", "error-budget"],
    derived_names,
    name_limits: &[],
    terraform_types: &["aws_sns_topic"],
    teardown: |ctx, plan, down| Box::pin(teardown(ctx, plan, down)),
    leftovers: |ctx| Box::pin(leftovers(ctx)),
    node: Some(Node::opt_in::<Topic>(|stack| stack.service.deployment.alarm_topic)),
};

/// The ARN of the alarms' topic, when stack.yaml asks for one (None while it does not).
#[derive(Debug, Clone, Default)]
pub struct AlarmTopic(pub Option<String>);

/// The alarms' topic, when stack.yaml asks for one (`service.deployment.alarm_topic`).
pub struct Topic;

impl Reconciles for Topic {
    type Needs = ();
    type Seen = ();
    type Gives = AlarmTopic;

    fn see(_: &Ctx) -> Making<'_, ()> {
        Box::pin(async { Ok(()) })
    }

    fn reconcile<'a>(ctx: &'a Ctx, plan: &'a mut Plan, (): (), (): ()) -> Making<'a, AlarmTopic> {
        Box::pin(async move { Ok(AlarmTopic(Some(reconcile(ctx, plan).await?))) })
    }
}

pub fn name(stack: &str) -> String {
    format!("{stack}-alarms")
}

/// `arn:PARTITION:sns:REGION:ACCOUNT:NAME`.
pub fn arn(identity: &crate::aws::Identity, region: &str, name: &str) -> String {
    format!("arn:{}:sns:{region}:{}:{name}", identity.partition, identity.account)
}

#[derive(Debug, Clone, PartialEq)]
pub struct ObservedTopic {
    pub arn: String,
    pub tags: Vec<(String, String)>,
}

impl Observed for ObservedTopic {
    fn id(&self) -> &str {
        &self.arn
    }
}

fn diff(stack: &stack::Stack, observed: Option<&ObservedTopic>) -> Change {
    let want = stack.resource_tags();
    match observed {
        None => Change::create(vec![FieldDiff::new("name", None, Some(name(&stack.name)))]),
        Some(t) => Change::update(tags::diff(&want, &t.tags)),
    }
}

async fn observe(ctx: &Ctx, arn: &str) -> Result<Option<ObservedTopic>, Error> {
    let sns = &ctx.clients.sns;
    let found = sns.get_topic_attributes().topic_arn(arn).send().await.ctx("read topic", arn);
    if absent(found)?.is_none() {
        return Ok(None);
    }
    let listed = sns.list_tags_for_resource().resource_arn(arn).send().await.ctx("list tags of topic", arn)?;
    let tags = listed.tags().iter().map(|t| (t.key().to_owned(), t.value().to_owned())).collect();
    let found = vec![ObservedTopic { arn: arn.to_owned(), tags }];
    tags::pick_owned("topic", &name(&ctx.stack.name), &ctx.owner(), found, |t| t.arn.clone(), |t| t.tags.clone())
}

fn sns_tags(stack: &stack::Stack) -> Result<Vec<Tag>, Error> {
    stack
        .resource_tags()
        .into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build().map_err(|e| Error::Refused(format!("an SNS tag: {e}"))))
        .collect()
}

async fn apply(ctx: &Ctx, arn: &str, change: &Change, observed: Option<&ObservedTopic>) -> Result<(), Error> {
    let sns = &ctx.clients.sns;
    let name = name(&ctx.stack.name);
    if observed.is_none() {
        // CreateTopic of a name that exists with the same tags returns it: safe to repeat.
        sns.create_topic().name(&name).set_tags(Some(sns_tags(&ctx.stack)?)).send().await.ctx("create topic", &name)?;
    } else if change.has_tags() {
        sns.tag_resource()
            .resource_arn(arn)
            .set_tags(Some(sns_tags(&ctx.stack)?))
            .send()
            .await
            .ctx("tag topic", &name)?;
    }
    ctx.progress(format!("topic {name} ready"));
    Ok(())
}

/// The topic stack.yaml asks for (its ARN, for the alarms' actions). Turned off, the engine
/// deletes a topic of ours left from when it was on (`Node::opt_in`).
pub async fn reconcile(ctx: &Ctx, plan: &mut Plan) -> Result<String, Error> {
    let name = name(&ctx.stack.name);
    let arn = arn(&ctx.clients.identity().await?, &ctx.stack.region, &name);
    Step::new(ctx, SNS_TOPIC, &name)
        .converge(
            plan,
            async || observe(ctx, &arn).await,
            |o| diff(&ctx.stack, o),
            async |c: &Change, o: Option<&ObservedTopic>| apply(ctx, &arn, c, o).await,
        )
        .await?;
    Ok(arn)
}

/// Deletes the topic (and with it its subscriptions) when it is ours.
pub async fn teardown(ctx: &Ctx, plan: &mut Plan, _: &crate::reconcile::kind::Down) -> Result<(), Error> {
    let name = name(&ctx.stack.name);
    let arn = arn(&ctx.clients.identity().await?, &ctx.stack.region, &name);
    let Some(t) = observe(ctx, &arn).await? else { return Ok(()) };
    if ctx.applying() {
        let r = ctx.clients.sns.delete_topic().topic_arn(&arn).send().await.ctx("delete topic", &name);
        gone(r)?;
        ctx.progress(format!("deleted topic {name}"));
    }
    plan.push(SNS_TOPIC, &name, Some(t.arn), Change::delete());
    Ok(())
}

pub async fn leftovers(ctx: &Ctx) -> Result<Vec<String>, Error> {
    let arn = arn(&ctx.clients.identity().await?, &ctx.stack.region, &name(&ctx.stack.name));
    Ok(observe(ctx, &arn).await?.map(|t| format!("SNS topic {}", t.arn)).into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_arn_is_known_before_the_topic_exists_and_drift_is_in_the_tags() {
        let id = crate::aws::Identity { account: "123456789012".into(), arn: String::new(), partition: "aws".into() };
        assert_eq!(arn(&id, "ap-northeast-1", "s-alarms"), "arn:aws:sns:ap-northeast-1:123456789012:s-alarms");
        let s = crate::resources::test_stack();
        assert_eq!(diff(&s, None).fields[0].new.as_deref(), Some("konnichiwa-alarms"));
        let ours = ObservedTopic { arn: "a".into(), tags: s.resource_tags() };
        assert!(diff(&s, Some(&ours)).is_no_op());
        let bare = ObservedTopic { tags: vec![(stack::OWNERSHIP_TAG.into(), "konnichiwa".into())], ..ours };
        assert!(diff(&s, Some(&bare)).has_tags());
        // The sweep claims the topic by the name this kind gives it.
        assert_eq!(KIND.arn_types, [format!("sns:{}", name("{stack}")).as_str()]);
    }
}
