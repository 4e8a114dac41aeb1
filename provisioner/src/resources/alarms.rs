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
use crate::reconcile::permission::{Permission, PolicyContext, Scope};
use crate::reconcile::step::Observed;
use crate::reconcile::{Change, Ctx, FieldDiff, Id, Plan, Step, compare, tags};

/// What the alarms call: reads anywhere, writes on the stack's three alarms by exact ARN.
pub const PERMISSIONS: &[Permission] = &[
    Permission::new(&["cloudwatch:DescribeAlarms"], Scope::Any).when(enabled),
    Permission::new(
        &["cloudwatch:PutMetricAlarm", "cloudwatch:DeleteAlarms", "cloudwatch:ListTagsForResource"],
        Scope::Own(alarm_arns),
    )
    .when(enabled),
    Permission::new(&["cloudwatch:TagResource"], Scope::Retag(alarm_arns)).when(enabled),
];

pub fn enabled(stack: &stack::Stack) -> bool {
    stack.service.deployment.slo_alarms
}

fn alarm_arns(c: &PolicyContext) -> Vec<String> {
    names(c.stack).iter().map(|n| c.arn("cloudwatch", &format!("alarm:{n}"))).collect()
}

/// The names the stack's alarms have, whether or not stack.yaml turns them on (what `down` and
/// the sweep look for).
pub fn all_names(stack_name: &str) -> [String; 3] {
    ["p95-latency", "5xx-share", "no-healthy-target"].map(|s| format!("{stack_name}-{s}"))
}

/// The alarms' names (empty when turned off).
pub fn names(stack: &stack::Stack) -> Vec<String> {
    if enabled(stack) { all_names(&stack.name).to_vec() } else { Vec::new() }
}

const NAMESPACE: &str = "AWS/ApplicationELB";
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

fn dims_text(dims: &[(String, String)]) -> String {
    dims.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")
}

fn metric_text(name: &str, stat: &str, dims: &[(String, String)]) -> String {
    format!("{name} {stat} {} {PERIOD}s", dims_text(dims))
}

/// The 5xx share in percent: the targets' and the load balancer's 5xx over the requests.
const SHARE: &str = "100 * (FILL(errors, 0) + FILL(elb_errors, 0)) / requests";

/// The three alarms for these dimensions.
pub fn desired(stack: &stack::Stack, dims: &[(String, String)]) -> Vec<AlarmSpec> {
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
            measure: metric_text("HealthyHostCount", "Minimum", dims),
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
    if a.metrics().is_empty() {
        let stat = a.extended_statistic().map(str::to_owned).or_else(|| a.statistic().map(|s| s.as_str().to_owned()));
        return format!(
            "{} {} {} {}s",
            a.metric_name().unwrap_or_default(),
            stat.unwrap_or_default(),
            dims_text(&dims(a.dimensions())),
            a.period().unwrap_or_default()
        );
    }
    let expression = a.metrics().iter().find_map(|m| m.expression()).unwrap_or_default().to_owned();
    let mut parts = vec![expression];
    for m in a.metrics() {
        if let Some(s) = m.metric_stat() {
            let metric = s.metric();
            parts.push(format!(
                "{}={} {} {} {}s",
                m.id().unwrap_or_default(),
                metric.and_then(|x| x.metric_name()).unwrap_or_default(),
                s.stat().unwrap_or_default(),
                dims_text(&dims(metric.map(|x| x.dimensions()).unwrap_or_default())),
                s.period().unwrap_or_default()
            ));
        }
    }
    parts.join("; ")
}

async fn observe(ctx: &Ctx, name: &str) -> Result<Option<ObservedAlarm>, Error> {
    let cw = &ctx.clients.cloudwatch;
    let out = cw.describe_alarms().alarm_names(name).send().await.ctx("describe alarm", name)?;
    let Some(a) = out.metric_alarms().iter().find(|a| a.alarm_name() == Some(name)) else { return Ok(None) };
    let arn = a.alarm_arn().unwrap_or_default().to_owned();
    let listed = cw.list_tags_for_resource().resource_arn(&arn).send().await.ctx("list the tags of", name);
    let tag_pairs: Vec<(String, String)> = absent(listed, &["ResourceNotFoundException", "ResourceNotFound"])?
        .map(|t| {
            t.tags()
                .iter()
                .map(|t| (t.key().unwrap_or_default().to_owned(), t.value().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default();
    tags::pick_owned(
        "alarm",
        name,
        &ctx.stack.name,
        vec![(arn.clone(), tag_pairs.clone())],
        |t| t.0.clone(),
        |t| t.1.clone(),
    )?;
    Ok(Some(ObservedAlarm {
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
    }))
}

fn cw_dims(dims: &[(String, String)]) -> Vec<Dimension> {
    dims.iter().map(|(k, v)| Dimension::builder().name(k).value(v).build()).collect()
}

fn query(id: &str, metric: &str, stat: &str, dims: &[(String, String)]) -> MetricDataQuery {
    let m = Metric::builder().namespace(NAMESPACE).metric_name(metric).set_dimensions(Some(cw_dims(dims))).build();
    MetricDataQuery::builder()
        .id(id)
        .metric_stat(MetricStat::builder().metric(m).period(PERIOD).stat(stat).build())
        .return_data(false)
        .build()
}

async fn put(ctx: &Ctx, want: &AlarmSpec, dims: &[(String, String)], tagging: bool) -> Result<(), Error> {
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
    } else {
        let (metric, stat) = if want.name.ends_with("-p95-latency") {
            ("TargetResponseTime", None)
        } else {
            ("HealthyHostCount", Some(Statistic::Minimum))
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
pub async fn reconcile(
    ctx: &Ctx,
    plan: &mut Plan,
    load_balancer: &Id,
    target_group: &Id,
) -> Result<AlarmOutputs, Error> {
    let dims = dimensions(load_balancer, target_group);
    let mut outputs = AlarmOutputs { alarm_names: names(&ctx.stack), states: Vec::new() };
    for want in desired(&ctx.stack, &dims) {
        let step = Step::new(ctx, "alarm", want.name.as_str());
        let done = step
            .converge(
                plan,
                async || observe(ctx, &want.name).await,
                |o| diff(&ctx.stack, &want, o),
                async |c: &Change, o: Option<&ObservedAlarm>| {
                    if !(load_balancer.is_known() && target_group.is_known()) {
                        return Err(Error::NotYetKnown(format!("the load balancer alarm {} watches", want.name)));
                    }
                    put(ctx, &want, &dims, o.is_some() && c.has_tags()).await?;
                    ctx.progress(format!("alarm {} set", want.name));
                    Ok(())
                },
            )
            .await?;
        outputs.states.push((want.name.clone(), done.observed.map(|o| o.state)));
    }
    Ok(outputs)
}

/// Deletes the stack's alarms (after the service that names them).
pub async fn teardown(ctx: &Ctx, plan: &mut Plan) -> Result<(), Error> {
    for name in &all_names(&ctx.stack.name) {
        let Some(o) = observe(ctx, name).await? else { continue };
        if ctx.applying() {
            ctx.clients.cloudwatch.delete_alarms().alarm_names(name).send().await.ctx("delete alarm", name)?;
            ctx.progress(format!("deleted alarm {name}"));
        }
        plan.push("alarm", name.as_str(), Some(o.arn), Change::delete());
    }
    Ok(())
}

pub async fn leftovers(ctx: &Ctx) -> Result<Vec<String>, Error> {
    let mut left = Vec::new();
    for name in all_names(&ctx.stack.name) {
        if let Some(o) = observe(ctx, &name).await? {
            left.push(format!("alarm {}", o.arn));
        }
    }
    Ok(left)
}

/// The stack's alarms that are in ALARM now (what rolled a deployment back).
pub async fn firing(ctx: &Ctx) -> Result<Vec<String>, Error> {
    let names = names(&ctx.stack);
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
        let a = desired(&s, &dims);
        assert_eq!(a.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(), names(&s));
        assert!((a[0].threshold - 0.3).abs() < 1e-9, "p95 < 300ms");
        assert!((a[1].threshold - 1.0).abs() < 1e-9, "errors < 1%");
        assert_eq!((a[2].comparison.as_str(), a[2].threshold), ("LessThanThreshold", 1.0));
        let mut off = s.clone();
        off.service.deployment.slo_alarms = false;
        assert!(desired(&off, &dims).is_empty() && names(&off).is_empty());
    }

    #[test]
    fn an_edited_threshold_is_drift() {
        let s = crate::resources::test_stack();
        let dims = dimensions(&Id::Known("x:loadbalancer/app/a/1".into()), &Id::Known("x:targetgroup/t/2".into()));
        let want = desired(&s, &dims).remove(0);
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
