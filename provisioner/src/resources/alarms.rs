//! The SLO alarms that guard deploys (`service.deployment.slo_alarms`, on by default): CloudWatch
//! alarms on the load balancer's metrics for this service's target group, from stack.yaml's
//! `slo:` section —
//! - `<stack>-p95-latency`: p95 TargetResponseTime above `slo.p95_latency`;
//! - `<stack>-5xx-share`: 5xx answers (the targets' and the load balancer's own) above
//!   `slo.max_error_rate` of the requests (metric math);
//! - `<stack>-no-healthy-target`: fewer than one healthy target.
//!
//! Each is judged over one-minute periods, three in a row for the SLOs (a short spike does not
//! roll a deploy back) and two for no healthy target; minutes without traffic count as fine. The
//! service's deployment configuration names them with rollback on, so ECS itself rolls back a
//! deployment that breaks the SLO even while its tasks pass their health checks.

use aws_sdk_cloudwatch::types::{ComparisonOperator, Dimension, Metric, MetricDataQuery, MetricStat, Statistic, Tag};
use serde::Serialize;

use crate::error::{AwsContext, Error, absent};
use crate::reconcile::Noun;
use crate::reconcile::kind::{Kind, Making, Node, Reconciles};
use crate::reconcile::permission::{Permission, PolicyContext, Scope};
use crate::reconcile::step::Observed;
use crate::reconcile::{Change, Ctx, FieldDiff, Id, Plan, Step, compare, tags};
use crate::resources::load_balancer::LoadBalancerOutputs;
use crate::resources::topic::AlarmTopic;
/// The nouns of this kind's plan rows.
pub const ALARM: Noun = Noun::new("alarm");

/// What the alarms call: reads anywhere, writes on the stack's three alarms by exact ARN.
pub const PERMISSIONS: &[Permission] = &[
    Permission::new(&["cloudwatch:DescribeAlarms"], Scope::Any).when(enabled),
    // An alarm's actions only notify the topics stack.yaml names and the stack's own topic: not
    // any scaling policy or a foreign topic.
    Permission::new(
        &["cloudwatch:PutMetricAlarm"],
        Scope::Conditioned {
            resources: alarm_arns,
            condition: |c| {
                let mut topics = c.stack.service.deployment.alarm_actions.clone();
                topics.push(c.arn("sns", &crate::resources::topic::name(&c.stack.name)));
                serde_json::json!({ "ForAllValues:StringEquals": { "cloudwatch:AlarmActions": topics } })
            },
        },
    )
    .when(enabled),
    Permission::new(&["cloudwatch:DeleteAlarms", "cloudwatch:ListTagsForResource"], Scope::Own(alarm_arns))
        .when(enabled),
    Permission::new(&["cloudwatch:TagResource"], Scope::Retag(alarm_arns)).when(enabled),
];

pub fn enabled(stack: &stack::Stack) -> bool {
    stack.service.deployment.slo_alarms
}

fn alarm_arns(c: &PolicyContext) -> Vec<String> {
    names(c.stack).iter().map(|n| c.arn("cloudwatch", &format!("alarm:{n}"))).collect()
}

/// The stack's alarms: the suffix of each name, and whether ECS rolls a deployment back on it.
/// Only an alarm that missing data can never put in ALARM may roll one back: a new stack's target
/// group has no healthy target (and no datapoint) for minutes after its first deploy starts, and
/// a rollback there has nothing to roll back to. `no-healthy-target` treats missing data as
/// breaching, so it pages (`alarm_actions`) but never fails a rollout.
const ALARMS: [(&str, bool); 3] = [("p95-latency", true), ("5xx-share", true), ("no-healthy-target", false)];

/// The names the stack's alarms have, whether or not stack.yaml turns them on (what `down` and
/// the sweep look for).
pub fn all_names(stack_name: &str) -> [String; 3] {
    ALARMS.map(|(suffix, _)| format!("{stack_name}-{suffix}"))
}

/// The alarms' names (empty when turned off).
pub fn names(stack: &stack::Stack) -> Vec<String> {
    if enabled(stack) { all_names(&stack.name).to_vec() } else { Vec::new() }
}

/// The alarms a deployment rolls back on (`deploymentConfiguration.alarms`): the SLO's.
pub fn rollback_names(stack: &stack::Stack) -> Vec<String> {
    if !enabled(stack) {
        return Vec::new();
    }
    ALARMS.iter().filter(|(_, rolls_back)| *rolls_back).map(|(suffix, _)| format!("{}-{suffix}", stack.name)).collect()
}

pub(crate) const NAMESPACE: &str = "AWS/ApplicationELB";
const PERIOD: i32 = 60;

/// One alarm as stack.yaml wants it (or as observed), in the terms that are compared.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmSpec {
    pub name: String,
    pub threshold: f64,
    pub comparison: String,
    pub evaluation_periods: i32,
    pub datapoints: i32,
    pub treat_missing: String,
    /// SNS topics notified on ALARM (sorted).
    pub actions: Vec<String>,
    /// What is measured, as text: `TargetResponseTime p95 LoadBalancer=… TargetGroup=… 60s`, or
    /// the expression and its metrics.
    pub measure: String,
}

/// An observed alarm: its spec, ARN, state and tags.
#[derive(Debug, Clone, PartialEq)]
pub struct ObservedAlarm {
    pub arn: String,
    pub spec: AlarmSpec,
    pub state: String,
    pub tags: Vec<(String, String)>,
}

impl Observed for ObservedAlarm {
    fn id(&self) -> &str {
        &self.arn
    }
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct AlarmOutputs {
    pub alarm_names: Vec<String>,
    /// The ones ECS rolls a deployment back on.
    pub rollback_alarms: Vec<String>,
    /// Alarm name -> OK | ALARM | INSUFFICIENT_DATA (None: not created yet).
    pub states: Vec<(String, Option<String>)>,
}

/// The load balancer's and target group's metric dimensions (`app/NAME/ID`, `targetgroup/NAME/ID`).
pub fn dimensions(load_balancer: &Id, target_group: &Id) -> Vec<(String, String)> {
    let tail = |id: &Id, marker: &str| match id.known() {
        Some(arn) => arn.split_once(marker).map_or(arn.to_owned(), |(_, t)| t.to_owned()),
        None => id.to_string(),
    };
    vec![
        ("LoadBalancer".into(), tail(load_balancer, ":loadbalancer/")),
        ("TargetGroup".into(), format!("targetgroup/{}", tail(target_group, ":targetgroup/"))),
    ]
}

/// What the SLO alarms measure: the load balancer and its target group; with a canary, linear or
/// blue/green strategy the load balancer alone, whose metrics cover both target groups (they swap
/// roles at every deployment: an alarm on one would watch the idle one half the time).
pub fn measured(stack: &stack::Stack, lb: &LoadBalancerOutputs) -> Vec<(String, String)> {
    let mut dims = dimensions(&lb.load_balancer_arn, &lb.target_group_arn);
    if stack.service.deployment.strategy.shifts_traffic() {
        dims.truncate(1);
    }
    dims
}

/// The target groups whose healthy targets count (HealthyHostCount has no load-balancer-wide
/// figure): the one, or both of a shifting strategy.
pub fn healthy_groups(lb: &LoadBalancerOutputs) -> Vec<Vec<(String, String)>> {
    let mut groups = vec![dimensions(&lb.load_balancer_arn, &lb.target_group_arn)];
    if let Some(shift) = &lb.shift {
        groups.push(dimensions(&lb.load_balancer_arn, &shift.alternate_target_group_arn));
    }
    groups
}

/// Healthy targets of two target groups, whichever serves.
const HEALTHY_SUM: &str = "FILL(blue, 0) + FILL(green, 0)";

/// How the healthy-target alarm measures `groups`: one metric, or the sum of two.
fn healthy_measure(groups: &[Vec<(String, String)>]) -> String {
    match groups {
        [blue, green] => format!(
            "{HEALTHY_SUM}; blue={}; green={}",
            metric_text("HealthyHostCount", "Minimum", blue),
            metric_text("HealthyHostCount", "Minimum", green)
        ),
        _ => metric_text("HealthyHostCount", "Minimum", groups.first().map_or(&[][..], Vec::as_slice)),
    }
}

fn dims_text(dims: &[(String, String)]) -> String {
    dims.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")
}

fn metric_text(name: &str, stat: &str, dims: &[(String, String)]) -> String {
    metric_text_every(name, stat, dims, PERIOD)
}

/// A metric as `observed_measure` writes it, over `period` seconds.
pub(crate) fn metric_text_every(name: &str, stat: &str, dims: &[(String, String)], period: i32) -> String {
    format!("{name} {stat} {} {period}s", dims_text(dims))
}

/// The 5xx share in percent: the targets' and the load balancer's 5xx over the requests.
pub(crate) const SHARE: &str = "100 * (FILL(errors, 0) + FILL(elb_errors, 0)) / requests";

/// The three alarms for these dimensions (`measured`) and target groups (`healthy_groups`).
pub fn desired(stack: &stack::Stack, dims: &[(String, String)], groups: &[Vec<(String, String)>]) -> Vec<AlarmSpec> {
    if !enabled(stack) {
        return Vec::new();
    }
    let slo = &stack.slo;
    let lb_only = &dims[..1];
    let n = names(stack);
    let mut actions = stack.service.deployment.alarm_actions.clone();
    actions.sort();
    vec![
        AlarmSpec {
            name: n[0].clone(),
            threshold: slo.p95_latency.get().as_secs_f64(),
            comparison: "GreaterThanThreshold".into(),
            evaluation_periods: 3,
            datapoints: 3,
            treat_missing: "notBreaching".into(),
            actions: actions.clone(),
            measure: metric_text("TargetResponseTime", "p95", dims),
        },
        AlarmSpec {
            name: n[1].clone(),
            threshold: slo.max_error_rate.get(),
            comparison: "GreaterThanThreshold".into(),
            evaluation_periods: 3,
            datapoints: 3,
            treat_missing: "notBreaching".into(),
            actions: actions.clone(),
            measure: format!(
                "{SHARE}; errors={}; elb_errors={}; requests={}",
                metric_text("HTTPCode_Target_5XX_Count", "Sum", dims),
                metric_text("HTTPCode_ELB_5XX_Count", "Sum", lb_only),
                metric_text("RequestCount", "Sum", dims)
            ),
        },
        AlarmSpec {
            name: n[2].clone(),
            threshold: 1.0,
            comparison: "LessThanThreshold".into(),
            evaluation_periods: 2,
            datapoints: 2,
            treat_missing: "breaching".into(),
            actions,
            measure: healthy_measure(groups),
        },
    ]
}

pub fn diff(stack: &stack::Stack, want: &AlarmSpec, observed: Option<&ObservedAlarm>) -> Change {
    let Some(o) = observed else {
        return Change::create(vec![
            FieldDiff::new("threshold", None, Some(want.threshold.to_string())),
            FieldDiff::new("measure", None, Some(want.measure.clone())),
        ]);
    };
    let h = &o.spec;
    let mut fields: Vec<FieldDiff> = [
        compare("threshold", &h.threshold, &want.threshold),
        compare("comparison", &h.comparison, &want.comparison),
        compare("evaluation_periods", &h.evaluation_periods, &want.evaluation_periods),
        compare("datapoints_to_alarm", &h.datapoints, &want.datapoints),
        compare("treat_missing_data", &h.treat_missing, &want.treat_missing),
        compare("alarm_actions", &h.actions.join(","), &want.actions.join(",")),
        compare("measure", &h.measure, &want.measure),
    ]
    .into_iter()
    .flatten()
    .collect();
    fields.extend(tags::diff(&tags::desired(stack, &want.name), &o.tags));
    Change::update(fields)
}

fn observed_measure(a: &aws_sdk_cloudwatch::types::MetricAlarm) -> String {
    let dims = |d: &[Dimension]| -> Vec<(String, String)> {
        d.iter().map(|d| (d.name().unwrap_or_default().to_owned(), d.value().unwrap_or_default().to_owned())).collect()
    };
    // What we never set, written out when present: a unit the metric is not published in
    // leaves the alarm in INSUFFICIENT_DATA (silenced), and `ignore` freezes a percentile alarm
    // while samples are few; either, set behind our back, is drift `up` repairs.
    let unit = |u: Option<&aws_sdk_cloudwatch::types::StandardUnit>| {
        u.map(|u| format!(" unit={}", u.as_str())).unwrap_or_default()
    };
    if a.metrics().is_empty() {
        let stat = a.extended_statistic().map(str::to_owned).or_else(|| a.statistic().map(|s| s.as_str().to_owned()));
        let frozen = a.evaluate_low_sample_count_percentile().filter(|e| *e == "ignore").map(|_| " low_samples=ignore");
        return format!(
            "{} {} {} {}s{}{}",
            a.metric_name().unwrap_or_default(),
            stat.unwrap_or_default(),
            dims_text(&dims(a.dimensions())),
            a.period().unwrap_or_default(),
            unit(a.unit()),
            frozen.unwrap_or_default()
        );
    }
    let expression = a.metrics().iter().find_map(|m| m.expression()).unwrap_or_default().to_owned();
    let mut parts = vec![expression];
    for m in a.metrics() {
        if let Some(s) = m.metric_stat() {
            let metric = s.metric();
            parts.push(format!(
                "{}={} {} {} {}s{}",
                m.id().unwrap_or_default(),
                metric.and_then(|x| x.metric_name()).unwrap_or_default(),
                s.stat().unwrap_or_default(),
                dims_text(&dims(metric.map(|x| x.dimensions()).unwrap_or_default())),
                s.period().unwrap_or_default(),
                unit(s.unit())
            ));
        }
    }
    parts.join("; ")
}

async fn observe(ctx: &Ctx, name: &str) -> Result<Option<ObservedAlarm>, Error> {
    Ok(observe_all(ctx, &[name.to_owned()]).await?.pop().flatten())
}

/// The alarms `names` (None for one that does not exist), in that order: one DescribeAlarms for
/// them all (CloudWatch's read quota is a few calls a second), then each one's tags at once.
pub(crate) async fn observe_all(ctx: &Ctx, names: &[String]) -> Result<Vec<Option<ObservedAlarm>>, Error> {
    let cw = &ctx.clients.cloudwatch;
    let mut found = Vec::new();
    // Up to 100 names a call; the answer pages at 50.
    for chunk in names.chunks(100) {
        let mut pages = cw.describe_alarms().set_alarm_names(Some(chunk.to_vec())).into_paginator().send();
        while let Some(page) = pages.next().await {
            found.extend(page.ctx("describe the alarms of", &ctx.stack.name)?.metric_alarms().iter().cloned());
        }
    }
    futures_util::future::try_join_all(names.iter().map(|name| {
        let alarm = found.iter().find(|a| a.alarm_name() == Some(name.as_str()));
        async move {
            match alarm {
                Some(a) => with_tags(ctx, name, a).await.map(Some),
                None => Ok(None),
            }
        }
    }))
    .await
}

/// An alarm's tags (metric or composite); refuses one without our tag.
pub(crate) async fn owned_tags(ctx: &Ctx, name: &str, arn: &str) -> Result<Vec<(String, String)>, Error> {
    let listed = ctx.clients.cloudwatch.list_tags_for_resource().resource_arn(arn).send().await;
    let pairs: Vec<(String, String)> = absent(listed.ctx("list the tags of", name))?
        .map(|t| {
            t.tags()
                .iter()
                .map(|t| (t.key().unwrap_or_default().to_owned(), t.value().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default();
    let owned = vec![(arn.to_owned(), pairs.clone())];
    tags::pick_owned("alarm", name, &ctx.owner(), owned, |t| t.0.clone(), |t| t.1.clone())?;
    Ok(pairs)
}

/// What the alarm `a` (`name`) is, with its tags; refuses one without our tag.
async fn with_tags(ctx: &Ctx, name: &str, a: &aws_sdk_cloudwatch::types::MetricAlarm) -> Result<ObservedAlarm, Error> {
    let arn = a.alarm_arn().unwrap_or_default().to_owned();
    let tag_pairs = owned_tags(ctx, name, &arn).await?;
    Ok(ObservedAlarm {
        arn,
        spec: AlarmSpec {
            name: name.to_owned(),
            threshold: a.threshold().unwrap_or_default(),
            comparison: a.comparison_operator().map(|c| c.as_str().to_owned()).unwrap_or_default(),
            evaluation_periods: a.evaluation_periods().unwrap_or_default(),
            datapoints: a.datapoints_to_alarm().or(a.evaluation_periods()).unwrap_or_default(),
            treat_missing: a.treat_missing_data().unwrap_or("missing").to_owned(),
            actions: {
                let mut v = a.alarm_actions().to_vec();
                v.sort();
                v
            },
            measure: observed_measure(a),
        },
        state: a.state_value().map(|s| s.as_str().to_owned()).unwrap_or_default(),
        tags: tag_pairs,
    })
}

pub(crate) fn cw_dims(dims: &[(String, String)]) -> Vec<Dimension> {
    dims.iter().map(|(k, v)| Dimension::builder().name(k).value(v).build()).collect()
}

fn query(id: &str, metric: &str, stat: &str, dims: &[(String, String)]) -> MetricDataQuery {
    query_every(id, metric, stat, dims, PERIOD)
}

/// A metric of the load balancer's, over `period` seconds, for a metric math expression.
pub(crate) fn query_every(
    id: &str,
    metric: &str,
    stat: &str,
    dims: &[(String, String)],
    period: i32,
) -> MetricDataQuery {
    let m = Metric::builder().namespace(NAMESPACE).metric_name(metric).set_dimensions(Some(cw_dims(dims))).build();
    MetricDataQuery::builder()
        .id(id)
        .metric_stat(MetricStat::builder().metric(m).period(period).stat(stat).build())
        .return_data(false)
        .build()
}

async fn put(ctx: &Ctx, want: &AlarmSpec, measured: &Measured, tagging: bool) -> Result<(), Error> {
    let (dims, groups) = (&measured.dims, &measured.groups);
    let slo = &ctx.stack.slo;
    let mut req = ctx
        .clients
        .cloudwatch
        .put_metric_alarm()
        .alarm_name(&want.name)
        .alarm_description(format!(
            "Stack {}: SLO p95 < {}, errors < {}% (rolls a deploy back)",
            ctx.stack.name,
            humantime::format_duration(slo.p95_latency.get()),
            slo.max_error_rate.get()
        ))
        .threshold(want.threshold)
        .comparison_operator(ComparisonOperator::from(want.comparison.as_str()))
        .evaluation_periods(want.evaluation_periods)
        .datapoints_to_alarm(want.datapoints)
        .treat_missing_data(&want.treat_missing)
        .set_alarm_actions(Some(want.actions.clone()));
    req = if want.name.ends_with("-5xx-share") {
        let share = MetricDataQuery::builder().id("share").expression(SHARE).label("5xx %").return_data(true).build();
        req.metrics(share)
            .metrics(query("errors", "HTTPCode_Target_5XX_Count", "Sum", dims))
            .metrics(query("elb_errors", "HTTPCode_ELB_5XX_Count", "Sum", &dims[..1]))
            .metrics(query("requests", "RequestCount", "Sum", dims))
    } else if let (true, [blue, green]) = (want.name.ends_with("-no-healthy-target"), &groups[..]) {
        let sum = MetricDataQuery::builder()
            .id("healthy")
            .expression(HEALTHY_SUM)
            .label("healthy targets")
            .return_data(true)
            .build();
        req.metrics(sum).metrics(query("blue", "HealthyHostCount", "Minimum", blue)).metrics(query(
            "green",
            "HealthyHostCount",
            "Minimum",
            green,
        ))
    } else {
        let (metric, stat, dims) = if want.name.ends_with("-p95-latency") {
            ("TargetResponseTime", None, dims.as_slice())
        } else {
            ("HealthyHostCount", Some(Statistic::Minimum), groups.first().map_or(dims.as_slice(), Vec::as_slice))
        };
        let req = req.namespace(NAMESPACE).metric_name(metric).set_dimensions(Some(cw_dims(dims))).period(PERIOD);
        match stat {
            Some(s) => req.statistic(s),
            None => req.extended_statistic("p95"),
        }
    };
    let tag_list: Vec<Tag> = tags::desired(&ctx.stack, &want.name)
        .into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect();
    req.set_tags(Some(tag_list.clone())).send().await.ctx("put alarm", &want.name)?;
    // PutMetricAlarm tags only at creation: an existing alarm's tags are written apart.
    if tagging {
        let arn = observe(ctx, &want.name).await?.map(|o| o.arn).unwrap_or_default();
        ctx.clients
            .cloudwatch
            .tag_resource()
            .resource_arn(arn)
            .set_tags(Some(tag_list))
            .send()
            .await
            .ctx("tag alarm", &want.name)?;
    }
    Ok(())
}

/// Creates or repairs the stack's alarms; their names and states.
/// The stack's alarms by name, read before the load balancer's dimensions are known (the engine
/// reads them at the start).
#[derive(Debug, Default)]
pub struct Seen(std::collections::BTreeMap<String, Option<ObservedAlarm>>);

/// Reads every alarm of the stack at once.
pub async fn see(ctx: &Ctx) -> Result<Seen, Error> {
    let names = names(&ctx.stack);
    let found = observe_all(ctx, &names).await?;
    Ok(Seen(names.into_iter().zip(found).collect()))
}

/// Every alarm at once, each from what `seen` read of it (not read there: read here).
/// What the alarms measure: the dimensions of the latency and error alarms, and the target
/// groups of the healthy-target alarm.
pub struct Measured {
    pub dims: Vec<(String, String)>,
    pub groups: Vec<Vec<(String, String)>>,
}

pub async fn reconcile(
    ctx: &Ctx,
    plan: &mut Plan,
    lb: &LoadBalancerOutputs,
    topic: Option<&str>,
    mut seen: Seen,
) -> Result<AlarmOutputs, Error> {
    let measured = Measured { dims: measured(&ctx.stack, lb), groups: healthy_groups(lb) };
    let (load_balancer, target_group) = (&lb.load_balancer_arn, &lb.target_group_arn);
    let mut outputs = AlarmOutputs {
        alarm_names: names(&ctx.stack),
        rollback_alarms: rollback_names(&ctx.stack),
        states: Vec::new(),
    };
    let wanted: Vec<AlarmSpec> = desired(&ctx.stack, &measured.dims, &measured.groups)
        .into_iter()
        .map(|mut want| {
            // The stack's own topic (`alarm_topic`) is notified beside the topics stack.yaml names.
            want.actions.extend(topic.map(str::to_owned));
            want.actions.sort();
            want
        })
        .collect();
    // Rows and states in the desired order.
    let measured = &measured;
    let read: Vec<Option<Option<ObservedAlarm>>> = wanted.iter().map(|w| seen.0.remove(&w.name)).collect();
    let converged = futures_util::future::try_join_all(wanted.iter().zip(read).map(|(want, read)| async move {
        let observed = match read {
            Some(o) => o,
            None => observe(ctx, &want.name).await?,
        };
        let mut rows = Plan::default();
        let done = Step::new(ctx, ALARM, want.name.as_str())
            .converge_observed(
                &mut rows,
                observed,
                async || observe(ctx, &want.name).await,
                |o| diff(&ctx.stack, want, o),
                async |c: &Change, o: Option<&ObservedAlarm>| {
                    if !(load_balancer.is_known() && target_group.is_known()) {
                        return Err(Error::NotYetKnown(format!("the load balancer alarm {} watches", want.name)));
                    }
                    put(ctx, want, measured, o.is_some() && c.has_tags()).await?;
                    ctx.progress(format!("alarm {} set", want.name));
                    Ok(())
                },
            )
            .await?;
        Ok::<_, Error>((rows, (want.name.clone(), done.observed.map(|o| o.state))))
    }))
    .await?;
    for (rows, state) in converged {
        plan.extend(rows);
        outputs.states.push(state);
    }
    Ok(outputs)
}

/// The SLO alarms' names, when the stack has them.
fn derived_names(stack: &stack::Stack) -> Vec<(Noun, String)> {
    names(stack).into_iter().map(|n| (ALARM, n)).collect()
}

/// This kind in the one list of kinds (`resources::KINDS`).
pub const KIND: Kind = Kind {
    name: "alarms",
    nouns: &[ALARM],
    permissions: PERMISSIONS,
    arn_types: &["cloudwatch:alarm"],
    deleted_after: &[],
    derived_names,
    name_limits: &[(ALARM, &stack::limits::ALARM_NAME)],
    terraform_types: &["aws_cloudwatch_metric_alarm"],
    teardown: |ctx, plan, down| Box::pin(teardown(ctx, plan, down)),
    leftovers: |ctx| Box::pin(leftovers(ctx)),
    node: Some(Node::of::<Alarms>()),
};

/// The alarms watch the load balancer's metrics and notify the stack's topic.
pub struct Alarms;

impl Reconciles for Alarms {
    type Needs = (LoadBalancerOutputs, AlarmTopic);
    type Seen = Seen;
    type Gives = AlarmOutputs;

    fn see(ctx: &Ctx) -> Making<'_, Seen> {
        Box::pin(see(ctx))
    }

    fn reconcile<'a>(
        ctx: &'a Ctx,
        plan: &'a mut Plan,
        (lb, topic): Self::Needs,
        seen: Seen,
    ) -> Making<'a, AlarmOutputs> {
        Box::pin(async move { reconcile(ctx, plan, &lb, topic.0.as_deref(), seen).await })
    }
}

/// Deletes the stack's alarms (after the service that names them).
pub async fn teardown(ctx: &Ctx, plan: &mut Plan, _: &crate::reconcile::kind::Down) -> Result<(), Error> {
    let names = all_names(&ctx.stack.name);
    for (name, o) in names.iter().zip(observe_all(ctx, &names).await?) {
        let Some(o) = o else { continue };
        if ctx.applying() {
            ctx.clients.cloudwatch.delete_alarms().alarm_names(name).send().await.ctx("delete alarm", name)?;
            ctx.progress(format!("deleted alarm {name}"));
        }
        plan.push(ALARM, name.as_str(), Some(o.arn), Change::delete());
    }
    Ok(())
}

pub async fn leftovers(ctx: &Ctx) -> Result<Vec<String>, Error> {
    let found = observe_all(ctx, &all_names(&ctx.stack.name)).await?;
    Ok(found.into_iter().flatten().map(|o| format!("alarm {}", o.arn)).collect())
}

/// The stack's rollback alarms that are in ALARM now (what rolled a deployment back).
pub async fn firing(ctx: &Ctx) -> Result<Vec<String>, Error> {
    let names = rollback_names(&ctx.stack);
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let out = ctx
        .clients
        .cloudwatch
        .describe_alarms()
        .set_alarm_names(Some(names))
        .state_value(aws_sdk_cloudwatch::types::StateValue::Alarm)
        .send()
        .await
        .ctx("describe the alarms of", &ctx.stack.name)?;
    // Filtered here too: an emulator may ignore StateValue.
    Ok(out
        .metric_alarms()
        .iter()
        .filter(|a| a.state_value() == Some(&aws_sdk_cloudwatch::types::StateValue::Alarm))
        .filter_map(|a| a.alarm_name().map(str::to_owned))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_come_from_the_slo_and_dimensions_from_the_arns() {
        let s = crate::resources::test_stack();
        let lb = Id::Known("arn:aws:elasticloadbalancing:ap-northeast-1:1:loadbalancer/app/konnichiwa-alb/50dc".into());
        let tg = Id::Known("arn:aws:elasticloadbalancing:ap-northeast-1:1:targetgroup/konnichiwa-tg/943f".into());
        let dims = dimensions(&lb, &tg);
        assert_eq!(dims[0].1, "app/konnichiwa-alb/50dc");
        assert_eq!(dims[1].1, "targetgroup/konnichiwa-tg/943f");
        let a = desired(&s, &dims, std::slice::from_ref(&dims));
        assert_eq!(a.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(), names(&s));
        assert!((a[0].threshold - 0.3).abs() < 1e-9, "p95 < 300ms");
        assert!((a[1].threshold - 1.0).abs() < 1e-9, "errors < 1%");
        assert_eq!((a[2].comparison.as_str(), a[2].threshold), ("LessThanThreshold", 1.0));
        let mut off = s.clone();
        off.service.deployment.slo_alarms = false;
        assert!(desired(&off, &dims, &[]).is_empty() && names(&off).is_empty());
    }

    /// CloudWatch's evaluation of one alarm, minute by minute (moto never evaluates alarms): the
    /// last `evaluation_periods` datapoints, a missing one taken as the alarm's
    /// `treat_missing_data` says (`missing`: left out, INSUFFICIENT_DATA when all are), ALARM when
    /// at least `datapoints` of them breach.
    fn evaluate(spec: &AlarmSpec, series: &[Option<f64>]) -> Vec<&'static str> {
        let breaches = |v: f64| match spec.comparison.as_str() {
            "GreaterThanThreshold" => v > spec.threshold,
            "LessThanThreshold" => v < spec.threshold,
            other => panic!("the model does not know {other}"),
        };
        let n = usize::try_from(spec.evaluation_periods).expect("periods");
        let m = usize::try_from(spec.datapoints).expect("datapoints");
        let mut state = "INSUFFICIENT_DATA";
        let mut out = Vec::new();
        for end in 1..=series.len() {
            let window = &series[end.saturating_sub(n)..end];
            let judged: Vec<Option<bool>> = window
                .iter()
                .map(|d| match (d, spec.treat_missing.as_str()) {
                    (Some(v), _) => Some(breaches(*v)),
                    (None, "breaching") => Some(true),
                    (None, "notBreaching") => Some(false),
                    (None, _) => None,
                })
                .collect();
            let present = judged.iter().flatten().count();
            let breaching = judged.iter().flatten().filter(|b| **b).count();
            state = if breaching >= m {
                "ALARM"
            } else if present == 0 && spec.treat_missing == "missing" {
                "INSUFFICIENT_DATA"
            } else if present == 0 {
                state
            } else {
                "OK"
            };
            out.push(state);
        }
        out
    }

    /// One minute of the load balancer's metrics for the service's target group (None: no
    /// datapoint that minute).
    #[derive(Clone, Copy, Default)]
    struct Minute {
        healthy: Option<f64>,
        p95: Option<f64>,
        requests: Option<f64>,
        errors: Option<f64>,
    }

    /// Each alarm's states over `timeline`, as CloudWatch would set them.
    fn replay(stack: &stack::Stack, timeline: &[Minute]) -> Vec<(String, Vec<&'static str>)> {
        let dims = dimensions(&Id::Known("x:loadbalancer/app/a/1".into()), &Id::Known("x:targetgroup/t/2".into()));
        desired(stack, &dims, std::slice::from_ref(&dims))
            .into_iter()
            .map(|spec| {
                let series: Vec<Option<f64>> = timeline
                    .iter()
                    .map(|m| match &spec.name {
                        n if n.ends_with("-p95-latency") => m.p95,
                        // The expression: no datapoint without requests; missing 5xx count as 0.
                        n if n.ends_with("-5xx-share") => m.requests.map(|r| 100.0 * m.errors.unwrap_or(0.0) / r),
                        _ => m.healthy,
                    })
                    .collect();
                (spec.name.clone(), evaluate(&spec, &series))
            })
            .collect()
    }

    /// Whether ECS completes a deployment over `timeline`: it rolls back when an alarm it watches
    /// is in ALARM at any minute of the deployment.
    fn completes(stack: &stack::Stack, timeline: &[Minute]) -> bool {
        let watched = rollback_names(stack);
        replay(stack, timeline).iter().filter(|(name, _)| watched.contains(name)).all(|(_, s)| !s.contains(&"ALARM"))
    }

    fn healthy_traffic(p95: f64, errors: f64) -> Minute {
        Minute { healthy: Some(2.0), p95: Some(p95), requests: Some(6000.0), errors: Some(errors) }
    }

    #[test]
    fn a_first_deploy_completes_a_breaking_one_rolls_back_and_no_healthy_target_still_pages() {
        let s = crate::resources::test_stack();
        // A new stack: for six minutes no instance is registered and nothing is served (no
        // datapoints at all), then the tasks pass their health checks and traffic comes.
        let first: Vec<Minute> =
            (0..12).map(|t| if t < 6 { Minute::default() } else { healthy_traffic(0.02, 0.0) }).collect();
        assert!(completes(&s, &first), "the first deploy of a new stack must complete");
        let states = replay(&s, &first);
        let no_target = &states.iter().find(|(n, _)| n.ends_with("-no-healthy-target")).expect("alarm").1;
        assert_eq!(no_target[3], "ALARM", "a stack with no healthy target pages");
        assert_eq!(no_target[11], "OK", "and stops paging once its tasks are healthy");
        assert!(!rollback_names(&s).iter().any(|n| n.ends_with("-no-healthy-target")), "but never rolls back");

        // A normal deploy: tasks replaced one by one under steady traffic.
        let normal: Vec<Minute> = (0..12)
            .map(|t| Minute { healthy: Some(if t % 3 == 1 { 1.0 } else { 2.0 }), ..healthy_traffic(0.03, 2.0) })
            .collect();
        assert!(completes(&s, &normal));
        // A breaking deploy: the new tasks answer in 1.2 s from minute 4, or one in five fails.
        let slow: Vec<Minute> = (0..12).map(|t| healthy_traffic(if t >= 4 { 1.2 } else { 0.03 }, 0.0)).collect();
        assert!(!completes(&s, &slow), "p95 above 300 ms for three minutes rolls back");
        let p95 = &replay(&s, &slow)[0].1;
        assert_eq!((p95[5], p95[6]), ("OK", "ALARM"), "three breaching minutes in a row: {p95:?}");
        let failing: Vec<Minute> = (0..12).map(|t| healthy_traffic(0.03, if t >= 4 { 1200.0 } else { 0.0 })).collect();
        assert!(!completes(&s, &failing), "20% 5xx for three minutes rolls back");
        // Quiet minutes in a live stack (no traffic at night) are fine.
        let quiet: Vec<Minute> = (0..12)
            .map(|t| {
                if t % 2 == 0 { Minute { healthy: Some(2.0), ..Minute::default() } } else { healthy_traffic(0.02, 0.0) }
            })
            .collect();
        assert!(completes(&s, &quiet));
    }

    #[test]
    fn no_alarm_a_deployment_watches_can_breach_for_lack_of_data() {
        let s = crate::resources::test_stack();
        let dims = dimensions(&Id::Known("x:loadbalancer/app/a/1".into()), &Id::Known("x:targetgroup/t/2".into()));
        let watched = rollback_names(&s);
        assert_eq!(watched.len(), 2);
        for spec in desired(&s, &dims, std::slice::from_ref(&dims)).iter().filter(|a| watched.contains(&a.name)) {
            assert_ne!(spec.treat_missing, "breaching", "{} would fail a deploy for lack of data", spec.name);
            assert!(!evaluate(spec, &[None; 10]).contains(&"ALARM"), "{}", spec.name);
        }
    }

    #[test]
    fn an_edited_threshold_is_drift() {
        let s = crate::resources::test_stack();
        let dims = dimensions(&Id::Known("x:loadbalancer/app/a/1".into()), &Id::Known("x:targetgroup/t/2".into()));
        let want = desired(&s, &dims, std::slice::from_ref(&dims)).remove(0);
        let mut have = ObservedAlarm {
            arn: "arn".into(),
            spec: want.clone(),
            state: "OK".into(),
            tags: tags::desired(&s, &want.name),
        };
        assert!(diff(&s, &want, Some(&have)).is_no_op());
        have.spec.threshold = 5.0;
        assert_eq!(
            diff(&s, &want, Some(&have)).fields,
            vec![FieldDiff::new("threshold", Some("5".into()), Some("0.3".into()))]
        );
    }
}
