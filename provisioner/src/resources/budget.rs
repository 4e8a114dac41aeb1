//! The error budget's alarms (stack.yaml `slo.availability`, e.g. 99.9% of requests without a 5xx
//! over 30 days; none while it is unset): the SRE workbook's multiwindow, multi-burn-rate alerts
//! on the load balancer's 5xx share (the targets' and its own 5xx over its requests).
//!
//! | alert | long window | short window | burn rate | budget burnt in the long window |
//! | --- | --- | --- | --- | --- |
//! | `<stack>.budget.page-fast` | 1 h | 5 min | 14.4 | 2% |
//! | `<stack>.budget.page-slow` | 6 h | 30 min | 6 | 5% |
//! | `<stack>.budget.ticket` | 3 days | 6 h | 1 | 10% |
//!
//! Each window is a metric alarm (`<alert>.<window>`) on the share over a period as long as the
//! window, judged on one period: above `burn × (100% − availability)` it is in ALARM. (CloudWatch
//! lets a period under an hour look back a day at most; these look back one period each.) Each
//! alert is a composite alarm, ALARM when both its windows are: the long one says enough budget
//! burnt, the short one that it is still burning (so an alert ends soon after the burning does).
//! The composites notify the stack's topic and `alarm_actions`; their descriptions start with
//! PAGE or TICKET, for the receiver to route. The windows notify nobody.

use aws_sdk_cloudwatch::types::{ComparisonOperator, MetricDataQuery, Tag};

use crate::error::{AwsContext, Error};
use crate::reconcile::kind::{Kind, Making, Node, Reconciles};
use crate::reconcile::permission::{Permission, PolicyContext, Scope};
use crate::reconcile::step::Observed;
use crate::reconcile::{Change, Ctx, FieldDiff, Noun, Plan, Step, compare, tags};
use crate::resources::alarms::{self, AlarmSpec, ObservedAlarm};
use crate::resources::load_balancer::LoadBalancerOutputs;
use crate::resources::topic::AlarmTopic;

/// The nouns of this kind's plan rows: a window's metric alarm, an alert's composite alarm.
pub const BURN_ALARM: Noun = Noun::new("burn-alarm");
pub const BUDGET_ALERT: Noun = Noun::new("budget-alert");

/// The budget's window: the share of requests `slo.availability` promises is over 30 days.
pub const BUDGET_DAYS: f64 = 30.0;

/// One alert of the table above.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    pub name: &'static str,
    /// The windows, in minutes, and how they are named.
    pub long: (u32, &'static str),
    pub short: (u32, &'static str),
    /// How many times faster than the budget allows the errors come.
    pub burn: f64,
    /// Paged (true) or a ticket.
    pub pages: bool,
}

pub const POLICIES: [Policy; 3] = [
    Policy { name: "page-fast", long: (60, "1h"), short: (5, "5m"), burn: 14.4, pages: true },
    Policy { name: "page-slow", long: (360, "6h"), short: (30, "30m"), burn: 6.0, pages: true },
    Policy { name: "ticket", long: (4320, "3d"), short: (360, "6h"), burn: 1.0, pages: false },
];

/// What the budget alarms call. The windows by one ARN pattern, notifying only the stack's topics;
/// the reads and deletes whether or not stack.yaml turns the budget on (an `up` without it deletes
/// what is left). PutCompositeAlarm takes no narrower scope than `*` (its API reference), so only
/// an administrator's `up` makes or changes the alerts: the deploy role's `up` stops before such a
/// change, saying so (`iam::needs_administrator`), and its `down` keeps them.
pub const PERMISSIONS: &[Permission] = &[
    Permission::new(&["cloudwatch:DescribeAlarms"], Scope::Any),
    // `status` reads the budget's metrics. GetMetricData has no resource-level scope (it reads
    // every metric of the region), and the deploy role runs no `status`: not the role's.
    Permission::new(&["cloudwatch:GetMetricData"], Scope::Any).when(enabled).administrators_only(),
    Permission::new(
        &["cloudwatch:PutMetricAlarm"],
        Scope::Conditioned { resources: alarm_arns, condition: only_the_stacks_topics },
    )
    .when(enabled),
    Permission::new(
        &["cloudwatch:PutCompositeAlarm"],
        Scope::Conditioned { resources: |_| vec!["*".into()], condition: only_the_stacks_topics },
    )
    .when(enabled)
    .administrators_only(),
    Permission::new(&["cloudwatch:DeleteAlarms", "cloudwatch:ListTagsForResource"], Scope::Own(alarm_arns)),
    Permission::new(&["cloudwatch:TagResource"], Scope::Retag(alarm_arns)).when(enabled),
];

/// Alarm actions that notify only the topics stack.yaml names and the stack's own.
fn only_the_stacks_topics(c: &PolicyContext) -> serde_json::Value {
    let mut topics = c.stack.service.deployment.alarm_actions.clone();
    topics.push(c.arn("sns", &crate::resources::topic::name(&c.stack.name)));
    serde_json::json!({ "ForAllValues:StringEquals": { "cloudwatch:AlarmActions": topics } })
}

pub fn enabled(stack: &stack::Stack) -> bool {
    stack.slo.availability.is_some()
}

/// Every budget alarm of the stack's, by one pattern: `<stack>.budget.*`. A stack's name has no
/// dot (letters, digits, hyphens), so no other stack's alarm matches it, and the deploy role's
/// policy stays one ARN long where nine would not fit IAM's size limit.
fn alarm_arns(c: &PolicyContext) -> Vec<String> {
    vec![c.arn("cloudwatch", &format!("alarm:{}*", prefix(&c.stack.name)))]
}

/// What every budget alarm's name starts with.
fn prefix(stack: &str) -> String {
    format!("{stack}.budget.")
}

/// The alerts' names, and the windows' (each alert's long then short), whether or not stack.yaml
/// turns them on (what `down` looks for).
pub fn names(stack: &str) -> (Vec<String>, Vec<String>) {
    let alert = |p: &Policy| format!("{}{}", prefix(stack), p.name);
    let windows =
        POLICIES.iter().flat_map(|p| [format!("{}.{}", alert(p), p.long.1), format!("{}.{}", alert(p), p.short.1)]);
    (POLICIES.iter().map(alert).collect(), windows.collect())
}

/// The error share (percent) a window alarms above: `burn` times the budget's.
pub fn threshold(availability: f64, burn: f64) -> f64 {
    burn * (100.0 - availability)
}

/// The windows' metric alarms for these dimensions, each alert's long then short.
pub fn windows(stack: &stack::Stack, dims: &[(String, String)]) -> Vec<(AlarmSpec, i32)> {
    let Some(availability) = stack.slo.availability.as_ref().map(stack::Percent::get) else { return Vec::new() };
    let (_, names) = names(&stack.name);
    let lb_only = &dims[..1];
    POLICIES
        .iter()
        .flat_map(|p| [p.long.0, p.short.0].map(|minutes| (p, minutes)))
        .zip(names)
        .map(|((p, minutes), name)| {
            let period = i32::try_from(minutes * 60).expect("a window fits");
            let spec = AlarmSpec {
                name,
                threshold: threshold(availability, p.burn),
                comparison: "GreaterThanThreshold".into(),
                evaluation_periods: 1,
                datapoints: 1,
                treat_missing: "notBreaching".into(),
                actions: Vec::new(),
                measure: format!(
                    "{}; errors={}; elb_errors={}; requests={}",
                    alarms::SHARE,
                    alarms::metric_text_every("HTTPCode_Target_5XX_Count", "Sum", dims, period),
                    alarms::metric_text_every("HTTPCode_ELB_5XX_Count", "Sum", lb_only, period),
                    alarms::metric_text_every("RequestCount", "Sum", dims, period)
                ),
            };
            (spec, period)
        })
        .collect()
}

/// One alert's composite alarm as stack.yaml wants it (or as observed).
#[derive(Debug, Clone, PartialEq)]
pub struct AlertSpec {
    pub name: String,
    pub rule: String,
    pub description: String,
    /// SNS topics notified on ALARM (sorted).
    pub actions: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ObservedAlert {
    pub arn: String,
    pub spec: AlertSpec,
    pub state: String,
    pub tags: Vec<(String, String)>,
}

impl Observed for ObservedAlert {
    fn id(&self) -> &str {
        &self.arn
    }
}

/// The alerts, notifying the stack's topics.
pub fn alerts(stack: &stack::Stack, topic: Option<&str>) -> Vec<AlertSpec> {
    if !enabled(stack) {
        return Vec::new();
    }
    let mut actions = stack.service.deployment.alarm_actions.clone();
    actions.extend(topic.map(str::to_owned));
    actions.sort();
    let (alerts, windows) = names(&stack.name);
    POLICIES
        .iter()
        .zip(alerts)
        .zip(windows.chunks(2))
        .map(|((p, name), w)| AlertSpec {
            rule: format!("ALARM(\"{}\") AND ALARM(\"{}\")", w[0], w[1]),
            // No figure of stack.yaml's: only an administrator may change an alert.
            description: format!(
                "{}: stack {} burns its error budget {}× as fast as it lasts, over {} and still over {}",
                if p.pages { "PAGE" } else { "TICKET" },
                stack.name,
                p.burn,
                p.long.1,
                p.short.1
            ),
            name,
            actions: actions.clone(),
        })
        .collect()
}

pub fn diff_alert(stack: &stack::Stack, want: &AlertSpec, observed: Option<&ObservedAlert>) -> Change {
    let Some(o) = observed else {
        return Change::create(vec![FieldDiff::new("rule", None, Some(want.rule.clone()))]);
    };
    let h = &o.spec;
    let mut fields: Vec<FieldDiff> = [
        compare("rule", &h.rule, &want.rule),
        compare("description", &h.description, &want.description),
        compare("alarm_actions", &h.actions.join(","), &want.actions.join(",")),
    ]
    .into_iter()
    .flatten()
    .collect();
    fields.extend(tags::diff(&tags::desired(stack, &want.name), &o.tags));
    Change::update(fields)
}

/// The alerts `names` (None for one that does not exist), in that order; refuses one without our
/// tag. DescribeAlarms lists composite alarms only when asked to.
async fn observe_alerts(ctx: &Ctx, names: &[String]) -> Result<Vec<Option<ObservedAlert>>, Error> {
    use aws_sdk_cloudwatch::types::AlarmType;
    let cw = &ctx.clients.cloudwatch;
    let out = cw
        .describe_alarms()
        .set_alarm_names(Some(names.to_vec()))
        .alarm_types(AlarmType::CompositeAlarm)
        .send()
        .await
        .ctx("describe the budget alerts of", &ctx.stack.name)?;
    let mut found = Vec::new();
    for name in names {
        let Some(a) = out.composite_alarms().iter().find(|a| a.alarm_name() == Some(name.as_str())) else {
            found.push(None);
            continue;
        };
        let arn = a.alarm_arn().unwrap_or_default().to_owned();
        let tag_pairs = alarms::owned_tags(ctx, name, &arn).await?;
        let mut actions = a.alarm_actions().to_vec();
        actions.sort();
        found.push(Some(ObservedAlert {
            arn,
            spec: AlertSpec {
                name: name.clone(),
                rule: a.alarm_rule().unwrap_or_default().to_owned(),
                description: a.alarm_description().unwrap_or_default().to_owned(),
                actions,
            },
            state: a.state_value().map(|s| s.as_str().to_owned()).unwrap_or_default(),
            tags: tag_pairs,
        }));
    }
    Ok(found)
}

fn tag_list(ctx: &Ctx, name: &str) -> Vec<Tag> {
    tags::desired(&ctx.stack, name).into_iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()
}

/// Writes the tags of an existing alarm (the Put calls tag only at creation).
async fn retag(ctx: &Ctx, name: &str, arn: &str) -> Result<(), Error> {
    let cw = &ctx.clients.cloudwatch;
    cw.tag_resource().resource_arn(arn).set_tags(Some(tag_list(ctx, name))).send().await.ctx("tag alarm", name)?;
    Ok(())
}

async fn put_window(ctx: &Ctx, want: &AlarmSpec, period: i32, dims: &[(String, String)]) -> Result<(), Error> {
    let share =
        MetricDataQuery::builder().id("share").expression(alarms::SHARE).label("5xx %").return_data(true).build();
    ctx.clients
        .cloudwatch
        .put_metric_alarm()
        .alarm_name(&want.name)
        .alarm_description(format!(
            "Stack {}: the 5xx share over one window of the error budget's alerts",
            ctx.stack.name
        ))
        .threshold(want.threshold)
        .comparison_operator(ComparisonOperator::from(want.comparison.as_str()))
        .evaluation_periods(want.evaluation_periods)
        .datapoints_to_alarm(want.datapoints)
        .treat_missing_data(&want.treat_missing)
        .set_alarm_actions(Some(want.actions.clone()))
        .metrics(share)
        .metrics(alarms::query_every("errors", "HTTPCode_Target_5XX_Count", "Sum", dims, period))
        .metrics(alarms::query_every("elb_errors", "HTTPCode_ELB_5XX_Count", "Sum", &dims[..1], period))
        .metrics(alarms::query_every("requests", "RequestCount", "Sum", dims, period))
        .set_tags(Some(tag_list(ctx, &want.name)))
        .send()
        .await
        .ctx("put alarm", &want.name)?;
    Ok(())
}

async fn put_alert(ctx: &Ctx, want: &AlertSpec) -> Result<(), Error> {
    ctx.clients
        .cloudwatch
        .put_composite_alarm()
        .alarm_name(&want.name)
        .alarm_rule(&want.rule)
        .alarm_description(&want.description)
        .set_alarm_actions(Some(want.actions.clone()))
        .set_tags(Some(tag_list(ctx, &want.name)))
        .send()
        .await
        .ctx("put composite alarm", &want.name)?;
    Ok(())
}

/// What the budget alerts are now: each one's state (the graph's gift; `status` reads the budget).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct BudgetOutputs {
    /// Alert name -> OK | ALARM | INSUFFICIENT_DATA (None: not created yet).
    pub alerts: Vec<(String, Option<String>)>,
}

/// The windows, then the alerts on them (an alert's rule names alarms that must exist).
pub async fn reconcile(
    ctx: &Ctx,
    plan: &mut Plan,
    lb: &LoadBalancerOutputs,
    topic: Option<&str>,
) -> Result<BudgetOutputs, Error> {
    let dims = alarms::dimensions(&lb.load_balancer_arn, &lb.target_group_arn);
    let windows = windows(&ctx.stack, &dims);
    let names: Vec<String> = windows.iter().map(|(w, _)| w.name.clone()).collect();
    let seen = alarms::observe_all(ctx, &names).await?;
    let dims = &dims;
    let known = lb.load_balancer_arn.is_known() && lb.target_group_arn.is_known();
    let mut rows = Vec::new();
    for ((want, period), observed) in windows.iter().zip(seen) {
        let mut row = Plan::default();
        Step::new(ctx, BURN_ALARM, want.name.as_str())
            .converge_observed(
                &mut row,
                observed,
                async || Ok(alarms::observe_all(ctx, std::slice::from_ref(&want.name)).await?.pop().flatten()),
                |o: Option<&ObservedAlarm>| alarms::diff(&ctx.stack, want, o),
                async |c: &Change, o: Option<&ObservedAlarm>| {
                    if !known {
                        return Err(Error::NotYetKnown(format!("the load balancer alarm {} watches", want.name)));
                    }
                    put_window(ctx, want, *period, dims).await?;
                    if let Some(o) = o.filter(|_| c.has_tags()) {
                        retag(ctx, &want.name, &o.arn).await?;
                    }
                    Ok(())
                },
            )
            .await?;
        rows.push(row);
    }
    let wanted = alerts(&ctx.stack, topic);
    let names: Vec<String> = wanted.iter().map(|a| a.name.clone()).collect();
    let seen = if names.is_empty() { Vec::new() } else { observe_alerts(ctx, &names).await? };
    let mut outputs = BudgetOutputs::default();
    for (want, observed) in wanted.iter().zip(seen) {
        let mut row = Plan::default();
        let done = Step::new(ctx, BUDGET_ALERT, want.name.as_str())
            .converge_observed(
                &mut row,
                observed,
                async || Ok(observe_alerts(ctx, std::slice::from_ref(&want.name)).await?.pop().flatten()),
                |o: Option<&ObservedAlert>| diff_alert(&ctx.stack, want, o),
                async |c: &Change, o: Option<&ObservedAlert>| {
                    // Its tags alone are TagResource's (the deploy role's too); the rest is
                    // PutCompositeAlarm's, an administrator's (`iam::needs_administrator`).
                    let tags_only = o.is_some() && c.fields.iter().all(|f| f.field.starts_with("tags."));
                    if !tags_only {
                        put_alert(ctx, want).await?;
                    }
                    if let Some(o) = o.filter(|_| c.has_tags()) {
                        retag(ctx, &want.name, &o.arn).await?;
                    }
                    ctx.progress(format!("budget alert {} set", want.name));
                    Ok(())
                },
            )
            .await?;
        outputs.alerts.push((want.name.clone(), done.observed.map(|o| o.state)));
        rows.push(row);
    }
    rows.into_iter().for_each(|r| plan.extend(r));
    Ok(outputs)
}

/// Whether any of the budget's alarms exists: one DescribeAlarms for both types (what an `up`
/// with the budget off pays to find alarms left from when it was on).
async fn any_exists(ctx: &Ctx) -> Result<bool, Error> {
    use aws_sdk_cloudwatch::types::AlarmType;
    let (alerts, windows) = names(&ctx.stack.name);
    let out = ctx
        .clients
        .cloudwatch
        .describe_alarms()
        .set_alarm_names(Some(alerts.into_iter().chain(windows).collect()))
        .alarm_types(AlarmType::CompositeAlarm)
        .alarm_types(AlarmType::MetricAlarm)
        .send()
        .await
        .ctx("describe the budget alarms of", &ctx.stack.name)?;
    Ok(!out.composite_alarms().is_empty() || !out.metric_alarms().is_empty())
}

/// Where the budget stands: its share of requests that may fail, what failed, and how fast it burns.
#[derive(Debug, Clone, serde::Serialize, PartialEq)]
pub struct Standing {
    /// `slo.availability`, in percent.
    pub availability: f64,
    pub days: f64,
    /// The load balancer's requests and 5xx answers over those days.
    pub requests: f64,
    pub errors: f64,
    /// What is left of the budget, in percent of it (negative: overspent); None without requests.
    pub left_percent: Option<f64>,
    /// The last hour's error share over the budget's rate (1: the budget lasts exactly its
    /// days); None without requests in the last hour.
    pub burn_rate: Option<f64>,
}

impl Standing {
    /// From the counts over the budget's days and over the last hour.
    pub fn of(availability: f64, days: (f64, f64), hour: (f64, f64)) -> Self {
        let budget = 100.0 - availability;
        let share = |(requests, errors): (f64, f64)| (requests > 0.0).then(|| 100.0 * errors / requests);
        Self {
            availability,
            days: BUDGET_DAYS,
            requests: days.0,
            errors: days.1,
            left_percent: share(days).map(|s| 100.0 * (1.0 - s / budget)),
            burn_rate: share(hour).map(|s| s / budget),
        }
    }
}

/// Where the budget stands now (None while stack.yaml sets no availability or the load balancer
/// does not exist): the load balancer's requests and 5xx answers over the budget's days and over
/// the last hour, two GetMetricData calls.
pub async fn standing(ctx: &Ctx, lb: &LoadBalancerOutputs) -> Result<Option<Standing>, Error> {
    let Some(availability) = ctx.stack.slo.availability.as_ref().map(stack::Percent::get) else { return Ok(None) };
    if !(lb.load_balancer_arn.is_known() && lb.target_group_arn.is_known()) {
        return Ok(None);
    }
    let dims = alarms::dimensions(&lb.load_balancer_arn, &lb.target_group_arn);
    let now = std::time::SystemTime::now();
    let days = std::time::Duration::from_secs_f64(BUDGET_DAYS * 86_400.0);
    let (over_days, last_hour) = tokio::try_join!(
        counts(ctx, &dims, now - days, now, 86_400),
        counts(ctx, &dims, now - std::time::Duration::from_secs(3600), now, 3600),
    )?;
    Ok(Some(Standing::of(availability, over_days, last_hour)))
}

/// The requests and the 5xx answers (the targets' and the load balancer's) from `from` to `to`.
async fn counts(
    ctx: &Ctx,
    dims: &[(String, String)],
    from: std::time::SystemTime,
    to: std::time::SystemTime,
    period: i32,
) -> Result<(f64, f64), Error> {
    let q = |id: &str, metric: &str, dims: &[(String, String)]| {
        let mut q = alarms::query_every(id, metric, "Sum", dims, period);
        q.return_data = Some(true);
        q
    };
    let out = ctx
        .clients
        .cloudwatch
        .get_metric_data()
        .metric_data_queries(q("requests", "RequestCount", dims))
        .metric_data_queries(q("errors", "HTTPCode_Target_5XX_Count", dims))
        .metric_data_queries(q("elb_errors", "HTTPCode_ELB_5XX_Count", &dims[..1]))
        .start_time(from.into())
        .end_time(to.into())
        .send()
        .await
        .ctx("read the error budget's metrics of", &ctx.stack.name)?;
    let sum = |id: &str| -> f64 {
        out.metric_data_results().iter().filter(|r| r.id() == Some(id)).flat_map(|r| r.values()).sum()
    };
    Ok((sum("requests"), sum("errors") + sum("elb_errors")))
}

/// The alerts first (they name the windows), then the windows.
pub async fn teardown(ctx: &Ctx, plan: &mut Plan, _: &crate::reconcile::kind::Down) -> Result<(), Error> {
    if !any_exists(ctx).await? {
        return Ok(());
    }
    let (alerts, windows) = names(&ctx.stack.name);
    for (name, o) in alerts.iter().zip(observe_alerts(ctx, &alerts).await?) {
        let Some(o) = o else { continue };
        delete(ctx, name).await?;
        plan.push(BUDGET_ALERT, name.as_str(), Some(o.arn), Change::delete());
    }
    for (name, o) in windows.iter().zip(alarms::observe_all(ctx, &windows).await?) {
        let Some(o) = o else { continue };
        delete(ctx, name).await?;
        plan.push(BURN_ALARM, name.as_str(), Some(o.arn), Change::delete());
    }
    Ok(())
}

async fn delete(ctx: &Ctx, name: &str) -> Result<(), Error> {
    if ctx.applying() {
        ctx.clients.cloudwatch.delete_alarms().alarm_names(name).send().await.ctx("delete alarm", name)?;
        ctx.progress(format!("deleted alarm {name}"));
    }
    Ok(())
}

pub async fn leftovers(ctx: &Ctx) -> Result<Vec<String>, Error> {
    if !any_exists(ctx).await? {
        return Ok(Vec::new());
    }
    let (alerts, windows) = names(&ctx.stack.name);
    let mut left: Vec<String> =
        observe_alerts(ctx, &alerts).await?.into_iter().flatten().map(|o| format!("alarm {}", o.arn)).collect();
    left.extend(alarms::observe_all(ctx, &windows).await?.into_iter().flatten().map(|o| format!("alarm {}", o.arn)));
    Ok(left)
}

/// The alerts' and windows' names, when stack.yaml asks for them.
fn derived_names(stack: &stack::Stack) -> Vec<(Noun, String)> {
    if !enabled(stack) {
        return Vec::new();
    }
    let (alerts, windows) = names(&stack.name);
    windows.into_iter().map(|n| (BURN_ALARM, n)).chain(alerts.into_iter().map(|n| (BUDGET_ALERT, n))).collect()
}

/// This kind in the one list of kinds (`resources::KINDS`).
pub const KIND: Kind = Kind {
    name: "error-budget",
    nouns: &[BURN_ALARM, BUDGET_ALERT],
    permissions: PERMISSIONS,
    arn_types: &["cloudwatch:alarm"],
    deleted_after: &[],
    derived_names,
    name_limits: &[(BURN_ALARM, &stack::limits::ALARM_NAME), (BUDGET_ALERT, &stack::limits::ALARM_NAME)],
    terraform_types: &["aws_cloudwatch_metric_alarm", "aws_cloudwatch_composite_alarm"],
    teardown: |ctx, plan, down| Box::pin(teardown(ctx, plan, down)),
    leftovers: |ctx| Box::pin(leftovers(ctx)),
    node: Some(Node::opt_in::<Budget>(enabled)),
};

/// The budget alarms watch the load balancer's metrics and notify the stack's topic.
pub struct Budget;

impl Reconciles for Budget {
    type Needs = (LoadBalancerOutputs, AlarmTopic);
    type Seen = ();
    type Gives = BudgetOutputs;

    fn see(_: &Ctx) -> Making<'_, ()> {
        Box::pin(async { Ok(()) })
    }

    fn reconcile<'a>(ctx: &'a Ctx, plan: &'a mut Plan, (lb, topic): Self::Needs, (): ()) -> Making<'a, BudgetOutputs> {
        Box::pin(async move { reconcile(ctx, plan, &lb, topic.0.as_deref()).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The alerts' states minute by minute, as CloudWatch would set them (moto never evaluates
    /// alarms): each window's datapoint at minute t is the 5xx share of the `window` minutes up to
    /// t (none without requests: not breaching), in ALARM above its threshold; an alert is in
    /// ALARM while both its windows are. `minutes` holds (requests, 5xx) per minute.
    fn alerting(availability: f64, minutes: &[(u64, u64)]) -> Vec<[bool; 3]> {
        let (mut requests, mut errors) = (vec![0u64], vec![0u64]);
        for (r, e) in minutes {
            requests.push(requests.last().expect("sum") + r);
            errors.push(errors.last().expect("sum") + e);
        }
        let breaching = |t: usize, window: u32, burn: f64| {
            let from = (t + 1).saturating_sub(window as usize);
            let (r, e) = (requests[t + 1] - requests[from], errors[t + 1] - errors[from]);
            r > 0 && 100.0 * e as f64 / r as f64 > threshold(availability, burn)
        };
        (0..minutes.len())
            .map(|t| POLICIES.map(|p| breaching(t, p.long.0, p.burn) && breaching(t, p.short.0, p.burn)))
            .collect()
    }

    const DAY: usize = 24 * 60;

    /// `days` of healthy traffic (1,000 requests a minute), then `then`.
    fn timeline(days: usize, then: &[(u64, u64)]) -> Vec<(u64, u64)> {
        let mut t = vec![(1000, 0); days * DAY];
        t.extend_from_slice(then);
        t
    }

    fn first(states: &[[bool; 3]], alert: usize) -> Option<usize> {
        states.iter().position(|s| s[alert])
    }

    #[test]
    fn a_full_outage_pages_within_five_minutes() {
        let start = 4 * DAY;
        let states = alerting(99.9, &timeline(4, &[(1000, 1000); 60]));
        let paged = first(&states, 0).expect("page-fast fires");
        assert!((start..=start + 5).contains(&paged), "paged {} minutes in", paged - start);
    }

    #[test]
    fn a_slow_leak_files_a_ticket_within_three_days_and_never_pages() {
        // 0.2% of requests fail: twice the rate the 99.9% budget allows.
        let start = 3 * DAY;
        let states = alerting(99.9, &timeline(3, &vec![(1000, 2); 3 * DAY]));
        let ticket = first(&states, 2).expect("a ticket");
        assert!(ticket - start <= 3 * DAY, "ticket after {} minutes", ticket - start);
        assert_eq!((first(&states, 0), first(&states, 1)), (None, None), "never pages");
    }

    #[test]
    fn one_minute_at_ten_percent_errors_alerts_nobody() {
        let mut then = vec![(1000, 100)];
        then.extend(vec![(1000, 0); DAY]);
        let states = alerting(99.9, &timeline(4, &then));
        assert!(states.iter().all(|s| !s.iter().any(|a| *a)), "nobody alerted");
    }

    #[test]
    fn the_standing_counts_the_budget_left_and_the_burn() {
        // 99.9%: 1,000 of a million requests may fail; 250 did: three quarters left.
        let s = Standing::of(99.9, (1_000_000.0, 250.0), (10_000.0, 20.0));
        assert!((s.left_percent.expect("left") - 75.0).abs() < 1e-9);
        assert!((s.burn_rate.expect("burn") - 2.0).abs() < 1e-9, "0.2% against 0.1%");
        let idle = Standing::of(99.9, (0.0, 0.0), (0.0, 0.0));
        assert_eq!((idle.left_percent, idle.burn_rate), (None, None));
        assert!(Standing::of(99.9, (1000.0, 5.0), (0.0, 0.0)).left_percent.expect("over") < 0.0, "overspent");
    }

    #[test]
    fn the_windows_follow_the_workbooks_table() {
        let mut s = crate::resources::test_stack();
        assert!(
            windows(&s, &[("LoadBalancer".into(), "app/a/1".into()), ("TargetGroup".into(), "targetgroup/t/2".into())])
                .is_empty()
        );
        s.slo.availability = Some(stack::Percent::parse("99.9%"));
        let dims = [("LoadBalancer".into(), "app/a/1".into()), ("TargetGroup".into(), "targetgroup/t/2".into())];
        let w = windows(&s, &dims);
        let got: Vec<(&str, i32, f64)> = w.iter().map(|(a, p)| (a.name.as_str(), *p, a.threshold)).collect();
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
        let want = [
            ("konnichiwa.budget.page-fast.1h", 3600, 1.44),
            ("konnichiwa.budget.page-fast.5m", 300, 1.44),
            ("konnichiwa.budget.page-slow.6h", 21_600, 0.6),
            ("konnichiwa.budget.page-slow.30m", 1800, 0.6),
            ("konnichiwa.budget.ticket.3d", 259_200, 0.1),
            ("konnichiwa.budget.ticket.6h", 21_600, 0.1),
        ];
        for ((name, period, th), (wn, wp, wt)) in got.iter().zip(want) {
            assert_eq!((*name, *period), (wn, wp));
            assert!(close(*th, wt), "{name}: {th} vs {wt}");
        }
        // CloudWatch: a period under an hour looks back a day at most, any period 7 days.
        for (a, period) in &w {
            let span = period * a.evaluation_periods;
            assert!(span <= if *period < 3600 { 86_400 } else { 604_800 }, "{}", a.name);
            assert_eq!(period % 60, 0);
        }
        let a = alerts(&s, Some("arn:aws:sns:ap-northeast-1:1:konnichiwa-alarms"));
        assert_eq!(a[0].rule, r#"ALARM("konnichiwa.budget.page-fast.1h") AND ALARM("konnichiwa.budget.page-fast.5m")"#);
        assert!(a[0].description.starts_with("PAGE") && a[2].description.starts_with("TICKET"));
        assert_eq!(a[2].actions, ["arn:aws:sns:ap-northeast-1:1:konnichiwa-alarms"]);
    }
}
