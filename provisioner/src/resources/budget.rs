//! The budgets' alarms: the SRE workbook's multiwindow, multi-burn-rate alerts on the error budget
//! (stack.yaml `slo.availability`, e.g. 99.9% of requests without a 5xx over 30 days: the load
//! balancer's 5xx share, the targets' and its own over its requests) and on the latency budget
//! (`slo.latency`, e.g. 95% of requests answered within `slo.p95_latency`: the share of the
//! targets' response times above it, from the percentile rank `PR(:seconds)`). None while unset.
//!
//! | alert | long window | short window | burn rate | budget burnt in the long window |
//! | --- | --- | --- | --- | --- |
//! | `<stack>.budget.page-fast` | 1 h | 5 min | 14.4 | 2% |
//! | `<stack>.budget.page-slow` | 6 h | 30 min | 6 | 5% |
//! | `<stack>.budget.ticket` | 3 days | 6 h | 1 | 10% |
//!
//! The latency budget's alerts are `<stack>.budget.latency.<alert>`, on the same windows.
//! Each window is a metric alarm (`<alert>.<window>`) on the share over a period as long as the
//! window, judged on one period: above `burn × (100% − target)` it is in ALARM, once at least
//! `MIN_BAD_REQUESTS` went wrong in it (metric math's IF: a quiet night's few slow answers are a
//! large share of nothing). (CloudWatch
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

/// What a budget is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Objective {
    /// Requests answered without a 5xx (`slo.availability`).
    Availability,
    /// Requests the targets answer within `slo.p95_latency` (`slo.latency`).
    Latency,
}

impl Objective {
    pub const ALL: [Objective; 2] = [Objective::Availability, Objective::Latency];

    /// stack.yaml's target share of good requests, in percent; None while it sets none.
    pub fn target(self, stack: &stack::Stack) -> Option<f64> {
        let share = match self {
            Objective::Availability => &stack.slo.availability,
            Objective::Latency => &stack.slo.latency,
        };
        share.as_ref().map(stack::Percent::get)
    }

    /// What its alarms' names hold after `<stack>.budget.`.
    fn infix(self) -> &'static str {
        match self {
            Objective::Availability => "",
            Objective::Latency => "latency.",
        }
    }

    /// The metrics a window's alarm reads, each billed as an alarm metric: the targets' and the
    /// load balancer's 5xx and the requests; or the requests and the response times' rank.
    pub fn metrics_per_window(self) -> u32 {
        match self {
            Objective::Availability => 3,
            Objective::Latency => 2,
        }
    }

    /// Which budget a window or alert of this stack's belongs to, by its name.
    pub fn of_alarm(stack: &str, name: &str) -> Objective {
        match name.strip_prefix(&prefix(stack)) {
            Some(rest) if rest.starts_with(Objective::Latency.infix()) => Objective::Latency,
            _ => Objective::Availability,
        }
    }

    /// The budget's name alone.
    fn budget_noun(self) -> &'static str {
        match self {
            Objective::Availability => "error budget",
            Objective::Latency => "latency budget",
        }
    }

    /// The budget's name as an alert's description says it.
    fn budget(self) -> String {
        match self {
            Objective::Availability => self.budget_noun().to_owned(),
            Objective::Latency => format!("{} (requests slower than the p95 objective)", self.budget_noun()),
        }
    }
}

/// The percentile rank that gives the share of the targets' answers within `slo.p95_latency`
/// (CloudWatch's `PR(:m)`: the percentage of values of m or less; TargetResponseTime is in
/// seconds).
pub fn within_latency(stack: &stack::Stack) -> String {
    format!("PR(:{})", stack.slo.p95_latency.get().as_secs_f64())
}

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
    Objective::ALL.iter().any(|o| o.target(stack).is_some())
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

/// The alerts' names, and the windows' (each alert's long then short), of every budget whether or
/// not stack.yaml turns it on (what `down` looks for).
pub fn names(stack: &str) -> (Vec<String>, Vec<String>) {
    let (mut alerts, mut windows) = (Vec::new(), Vec::new());
    for o in Objective::ALL {
        let (a, w) = names_of(stack, o);
        alerts.extend(a);
        windows.extend(w);
    }
    (alerts, windows)
}

/// One budget's alerts and windows.
fn names_of(stack: &str, objective: Objective) -> (Vec<String>, Vec<String>) {
    let alert = |p: &Policy| format!("{}{}{}", prefix(stack), objective.infix(), p.name);
    let windows =
        POLICIES.iter().flat_map(|p| [format!("{}.{}", alert(p), p.long.1), format!("{}.{}", alert(p), p.short.1)]);
    (POLICIES.iter().map(alert).collect(), windows.collect())
}

/// The budgets stack.yaml turns on, with their target shares.
fn budgets(stack: &stack::Stack) -> impl Iterator<Item = (Objective, f64)> + '_ {
    Objective::ALL.into_iter().filter_map(|o| o.target(stack).map(|t| (o, t)))
}

/// The alarm metrics the budgets stack.yaml sets are billed for: each of their windows' metrics.
pub fn billed_metrics(stack: &stack::Stack) -> u32 {
    let windows = u32::try_from(2 * POLICIES.len()).unwrap_or(u32::MAX);
    budgets(stack).map(|(o, _)| windows * o.metrics_per_window()).sum()
}

/// The share (percent) of bad requests a window alarms above: `burn` times the budget's.
pub fn threshold(target: f64, burn: f64) -> f64 {
    burn * (100.0 - target)
}

/// One window's metric alarm, over one period of the window's length.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    pub spec: AlarmSpec,
    pub period: i32,
    pub objective: Objective,
}

/// The windows' metric alarms for these dimensions, each budget's, each alert's long then short.
/// The error budget's alarm above its 5xx share; the latency budget's below the share of answers
/// in time (`100 − threshold`: the rank is of the good ones).
pub fn windows(stack: &stack::Stack, dims: &[(String, String)]) -> Vec<Window> {
    budgets(stack).flat_map(|(objective, target)| windows_of(stack, dims, objective, target)).collect()
}

fn windows_of(stack: &stack::Stack, dims: &[(String, String)], objective: Objective, target: f64) -> Vec<Window> {
    let (_, names) = names_of(&stack.name, objective);
    POLICIES
        .iter()
        .flat_map(|p| [p.long.0, p.short.0].map(|minutes| (p, minutes)))
        .zip(names)
        .map(|((p, minutes), name)| {
            let period = i32::try_from(minutes * 60).expect("a window fits");
            let bad = threshold(target, p.burn);
            let (threshold, comparison) = match objective {
                Objective::Availability => (bad, "GreaterThanThreshold"),
                Objective::Latency => (100.0 - bad, "LessThanThreshold"),
            };
            let math = math(stack, objective, dims);
            let spec = AlarmSpec {
                name,
                threshold,
                comparison: comparison.into(),
                evaluation_periods: 1,
                datapoints: 1,
                treat_missing: "notBreaching".into(),
                actions: Vec::new(),
                measure: math.text(period),
            };
            Window { spec, period, objective }
        })
        .collect()
}

/// A window needs this many requests gone wrong in it (5xx, or answered slower than the
/// objective) before it can alarm: at night, a quiet service's one or two slow answers are a
/// large share of a few requests, and page nobody.
pub const MIN_BAD_REQUESTS: u32 = 5;

/// A window's metric math: the expression and the metrics it reads, in the order they are put
/// and read back.
struct Math {
    expression: String,
    metrics: Vec<Read>,
}

/// One metric of a window's expression: its id there, the metric, its statistic, dimensions.
struct Read(&'static str, &'static str, String, Vec<(String, String)>);

impl Math {
    /// As `alarms::observed_measure` writes an alarm back.
    fn text(&self, period: i32) -> String {
        let metrics = self.metrics.iter().map(|Read(id, metric, stat, dims)| {
            format!("{id}={}", alarms::metric_text_every(metric, stat, dims, period))
        });
        std::iter::once(self.expression.clone()).chain(metrics).collect::<Vec<_>>().join("; ")
    }
}

/// The error budget's 5xx share, 0 while fewer than `MIN_BAD_REQUESTS` failed; the latency
/// budget's share of answers in time, 100 while fewer than that many were slow.
fn math(stack: &stack::Stack, objective: Objective, dims: &[(String, String)]) -> Math {
    let n = MIN_BAD_REQUESTS;
    match objective {
        Objective::Availability => Math {
            expression: format!(
                "IF(FILL(errors, 0) + FILL(elb_errors, 0) >= {n}, 100 * (FILL(errors, 0) + FILL(elb_errors, 0)) / requests, 0)"
            ),
            metrics: vec![
                Read("errors", "HTTPCode_Target_5XX_Count", "Sum".into(), dims.to_vec()),
                Read("elb_errors", "HTTPCode_ELB_5XX_Count", "Sum".into(), dims[..1].to_vec()),
                Read("requests", "RequestCount", "Sum".into(), dims.to_vec()),
            ],
        },
        Objective::Latency => Math {
            expression: format!(
                "IF(FILL(requests, 0) * (100 - FILL(within, 100)) / 100 >= {n}, FILL(within, 100), 100)"
            ),
            metrics: vec![
                Read("requests", "RequestCount", "Sum".into(), dims.to_vec()),
                Read("within", "TargetResponseTime", within_latency(stack), dims.to_vec()),
            ],
        },
    }
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
    let mut actions = stack.service.deployment.alarm_actions.clone();
    actions.extend(topic.map(str::to_owned));
    actions.sort();
    let mut all = Vec::new();
    for (objective, _) in budgets(stack) {
        let (alerts, windows) = names_of(&stack.name, objective);
        all.extend(POLICIES.iter().zip(alerts).zip(windows.chunks(2)).map(|((p, name), w)| AlertSpec {
            rule: format!("ALARM(\"{}\") AND ALARM(\"{}\")", w[0], w[1]),
            // No figure of stack.yaml's: only an administrator may change an alert.
            description: format!(
                "{}: stack {} burns its {} {}× as fast as it lasts, over {} and still over {}",
                if p.pages { "PAGE" } else { "TICKET" },
                stack.name,
                objective.budget(),
                p.burn,
                p.long.1,
                p.short.1
            ),
            name,
            actions: actions.clone(),
        }));
    }
    all
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

async fn put_window(ctx: &Ctx, window: &Window, dims: &[(String, String)]) -> Result<(), Error> {
    let (want, period) = (&window.spec, window.period);
    let req = ctx
        .clients
        .cloudwatch
        .put_metric_alarm()
        .alarm_name(&want.name)
        .threshold(want.threshold)
        .comparison_operator(ComparisonOperator::from(want.comparison.as_str()))
        .evaluation_periods(want.evaluation_periods)
        .datapoints_to_alarm(want.datapoints)
        .treat_missing_data(&want.treat_missing)
        .set_alarm_actions(Some(want.actions.clone()))
        .set_tags(Some(tag_list(ctx, &want.name)));
    let (label, description) = match window.objective {
        Objective::Availability => ("5xx %", "the 5xx share"),
        Objective::Latency => ("in time %", "the share of answers within the p95 objective"),
    };
    let math = math(&ctx.stack, window.objective, dims);
    let mut req = req
        .alarm_description(format!(
            "Stack {}: {description} over one window of the {}'s alerts",
            ctx.stack.name,
            window.objective.budget_noun()
        ))
        .metrics(
            MetricDataQuery::builder().id("share").expression(&math.expression).label(label).return_data(true).build(),
        );
    for Read(id, metric, stat, dims) in &math.metrics {
        req = req.metrics(alarms::query_every(id, metric, stat, dims, period));
    }
    req.send().await.ctx("put alarm", &want.name)?;
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
    let dims = alarms::measured(&ctx.stack, lb);
    let windows = windows(&ctx.stack, &dims);
    let names: Vec<String> = windows.iter().map(|w| w.spec.name.clone()).collect();
    let seen = alarms::observe_all(ctx, &names).await?;
    let dims = &dims;
    let known = lb.load_balancer_arn.is_known() && lb.target_group_arn.is_known();
    let mut rows = Vec::new();
    for (window, observed) in windows.iter().zip(seen) {
        let want = &window.spec;
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
                    put_window(ctx, window, dims).await?;
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

/// Where the error budget stands: its share of requests that may fail, what failed, and how fast
/// it burns.
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
    /// From the counts (requests, errors) over the budget's days and over the last hour.
    pub fn of(availability: f64, days: (f64, f64), hour: (f64, f64)) -> Self {
        let (left_percent, burn_rate) = spent(availability, days, hour);
        Self { availability, days: BUDGET_DAYS, requests: days.0, errors: days.1, left_percent, burn_rate }
    }
}

/// Where the latency budget stands: its share of requests that may be slow, how many were, and
/// how fast it burns.
#[derive(Debug, Clone, serde::Serialize, PartialEq)]
pub struct LatencyStanding {
    /// `slo.latency`, in percent.
    pub latency: f64,
    /// `slo.p95_latency`, in seconds: slower answers spend the budget.
    pub within_seconds: f64,
    pub days: f64,
    /// The requests the targets answered over those days, and the slow ones among them
    /// (estimated from each period's percentile rank and requests).
    pub requests: f64,
    pub slow: f64,
    /// As the error budget's.
    pub left_percent: Option<f64>,
    pub burn_rate: Option<f64>,
}

/// What is left of a budget in percent of it, and how fast the last hour burnt it, from
/// (requests, bad requests) over the budget's days and over the hour.
fn spent(target: f64, days: (f64, f64), hour: (f64, f64)) -> (Option<f64>, Option<f64>) {
    let budget = 100.0 - target;
    let share = |(requests, bad): (f64, f64)| (requests > 0.0).then(|| 100.0 * bad / requests);
    (share(days).map(|s| 100.0 * (1.0 - s / budget)), share(hour).map(|s| s / budget))
}

/// Where each budget stack.yaml sets stands.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Standings {
    pub errors: Option<Standing>,
    pub latency: Option<LatencyStanding>,
}

/// Where the budgets stand now (none while stack.yaml sets no budget or the load balancer does
/// not exist): the load balancer's requests, 5xx answers and the targets' answers in time over
/// the budget's days and over the last hour, two GetMetricData calls.
pub async fn standing(ctx: &Ctx, lb: &LoadBalancerOutputs) -> Result<Standings, Error> {
    let stack = &ctx.stack;
    if !(enabled(stack) && lb.load_balancer_arn.is_known() && lb.target_group_arn.is_known()) {
        return Ok(Standings::default());
    }
    let dims = alarms::measured(&ctx.stack, lb);
    let now = std::time::SystemTime::now();
    let days = std::time::Duration::from_secs_f64(BUDGET_DAYS * 86_400.0);
    let (d, h) = tokio::try_join!(
        counts(ctx, &dims, now - days, now, 86_400),
        counts(ctx, &dims, now - std::time::Duration::from_secs(3600), now, 3600),
    )?;
    let errors =
        Objective::Availability.target(stack).map(|a| Standing::of(a, (d.requests, d.errors), (h.requests, h.errors)));
    let latency = Objective::Latency.target(stack).map(|l| {
        let (left_percent, burn_rate) = spent(l, (d.answered, d.slow), (h.answered, h.slow));
        LatencyStanding {
            latency: l,
            within_seconds: stack.slo.p95_latency.get().as_secs_f64(),
            days: BUDGET_DAYS,
            requests: d.answered,
            slow: d.slow,
            left_percent,
            burn_rate,
        }
    });
    Ok(Standings { errors, latency })
}

/// What the load balancer counted over a range.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Counts {
    requests: f64,
    /// The targets' and the load balancer's 5xx answers.
    errors: f64,
    /// The requests of the periods that have a response time, and the slow answers among them.
    answered: f64,
    slow: f64,
}

/// The counts from `from` to `to`, in periods of `period` seconds.
async fn counts(
    ctx: &Ctx,
    dims: &[(String, String)],
    from: std::time::SystemTime,
    to: std::time::SystemTime,
    period: i32,
) -> Result<Counts, Error> {
    let q = |id: &str, metric: &str, stat: &str, dims: &[(String, String)]| {
        let mut q = alarms::query_every(id, metric, stat, dims, period);
        q.return_data = Some(true);
        q
    };
    let mut queries = vec![
        q("requests", "RequestCount", "Sum", dims),
        q("errors", "HTTPCode_Target_5XX_Count", "Sum", dims),
        q("elb_errors", "HTTPCode_ELB_5XX_Count", "Sum", &dims[..1]),
    ];
    if Objective::Latency.target(&ctx.stack).is_some() {
        queries.push(q("within", "TargetResponseTime", &within_latency(&ctx.stack), dims));
    }
    let out = ctx
        .clients
        .cloudwatch
        .get_metric_data()
        .set_metric_data_queries(Some(queries))
        .start_time(from.into())
        .end_time(to.into())
        .send()
        .await
        .ctx("read the budgets' metrics of", &ctx.stack.name)?;
    let series = |id: &str| -> Vec<(i64, f64)> {
        let results = out.metric_data_results().iter().filter(|r| r.id() == Some(id));
        results.flat_map(|r| r.timestamps().iter().map(|t| t.secs()).zip(r.values().iter().copied())).collect()
    };
    let sum = |id: &str| -> f64 { series(id).iter().map(|(_, v)| v).sum() };
    let requests = series("requests");
    let (mut answered, mut slow) = (0.0, 0.0);
    for (at, within) in series("within") {
        let n = requests.iter().filter(|(t, _)| *t == at).map(|(_, v)| v).sum::<f64>();
        answered += n;
        slow += n * (100.0 - within) / 100.0;
    }
    Ok(Counts { requests: sum("requests"), errors: sum("errors") + sum("elb_errors"), answered, slow })
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

    /// The alerts' states minute by minute, as CloudWatch would set them from the windows' specs
    /// (moto never evaluates alarms): each window's datapoint at minute t is over the `period`
    /// up to t: the 5xx share for the error budget, the share of answers in time (the percentile
    /// rank) for the latency budget, each a good value while fewer than MIN_BAD_REQUESTS went
    /// wrong (the expression's IF); none without requests (not breaching). It breaches by its
    /// comparison and threshold; an alert is in ALARM while both its windows are. `minutes` holds
    /// (requests, bad requests) per minute, bad being 5xx or slow answers as the budget counts.
    fn alerting(stack: &stack::Stack, objective: Objective, minutes: &[(u64, u64)]) -> Vec<[bool; 3]> {
        let (mut requests, mut bad) = (vec![0u64], vec![0u64]);
        for (r, b) in minutes {
            requests.push(requests.last().expect("sum") + r);
            bad.push(bad.last().expect("sum") + b);
        }
        let dims = [("LoadBalancer".into(), "app/a/1".into()), ("TargetGroup".into(), "targetgroup/t/2".into())];
        let windows: Vec<Window> = windows(stack, &dims).into_iter().filter(|w| w.objective == objective).collect();
        assert_eq!(windows.len(), 6, "{objective:?} is on");
        let breaching = |t: usize, w: &Window| {
            let from = (t + 1).saturating_sub(w.period as usize / 60);
            let (r, b) = (requests[t + 1] - requests[from], bad[t + 1] - bad[from]);
            if r == 0 {
                return false;
            }
            // The expression's guard: under MIN_BAD_REQUESTS gone wrong, a good value.
            let counts = b >= u64::from(MIN_BAD_REQUESTS);
            let value = match objective {
                Objective::Availability if counts => 100.0 * b as f64 / r as f64,
                Objective::Availability => 0.0,
                Objective::Latency if counts => 100.0 * (r - b) as f64 / r as f64,
                Objective::Latency => 100.0,
            };
            match w.spec.comparison.as_str() {
                "GreaterThanThreshold" => value > w.spec.threshold,
                "LessThanThreshold" => value < w.spec.threshold,
                other => panic!("{other}"),
            }
        };
        (0..minutes.len())
            .map(|t| std::array::from_fn(|a| breaching(t, &windows[2 * a]) && breaching(t, &windows[2 * a + 1])))
            .collect()
    }

    /// The example stack with both budgets: 99.9% without a 5xx, 99% within the p95 objective.
    fn budgeted() -> stack::Stack {
        let mut s = crate::resources::test_stack();
        s.slo.availability = Some(stack::Percent::parse("99.9%"));
        s.slo.latency = Some(stack::Percent::parse("99%"));
        s
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
        let states = alerting(&budgeted(), Objective::Availability, &timeline(4, &[(1000, 1000); 60]));
        let paged = first(&states, 0).expect("page-fast fires");
        assert!((start..=start + 5).contains(&paged), "paged {} minutes in", paged - start);
    }

    #[test]
    fn a_slow_leak_files_a_ticket_within_three_days_and_never_pages() {
        // 0.2% of requests fail: twice the rate the 99.9% budget allows.
        let start = 3 * DAY;
        let states = alerting(&budgeted(), Objective::Availability, &timeline(3, &vec![(1000, 2); 3 * DAY]));
        let ticket = first(&states, 2).expect("a ticket");
        assert!(ticket - start <= 3 * DAY, "ticket after {} minutes", ticket - start);
        assert_eq!((first(&states, 0), first(&states, 1)), (None, None), "never pages");
    }

    #[test]
    fn one_minute_at_ten_percent_errors_alerts_nobody() {
        let mut then = vec![(1000, 100)];
        then.extend(vec![(1000, 0); DAY]);
        let states = alerting(&budgeted(), Objective::Availability, &timeline(4, &then));
        assert!(states.iter().all(|s| !s.iter().any(|a| *a)), "nobody alerted");
    }

    #[test]
    fn the_latency_budget_pages_on_a_slow_service_tickets_a_slow_leak_and_ignores_a_blip() {
        let s = budgeted();
        // Every answer slower than the objective: the fast page once the hour's window holds
        // 14.4 × 1% slow answers, its 9th minute (at 99.9% it would be the first).
        let start = 4 * DAY;
        let states = alerting(&s, Objective::Latency, &timeline(4, &[(1000, 1000); 60]));
        let paged = first(&states, 0).expect("page-fast fires");
        assert_eq!(paged - start, 8, "paged in minute {}", paged - start + 1);
        // 2% slow, twice the 1% the 99% budget allows: a ticket within 3 days, never a page.
        let start = 3 * DAY;
        let states = alerting(&s, Objective::Latency, &timeline(3, &vec![(1000, 20); 3 * DAY]));
        let ticket = first(&states, 2).expect("a ticket");
        assert!(ticket - start <= 3 * DAY, "ticket after {} minutes", ticket - start);
        assert_eq!((first(&states, 0), first(&states, 1)), (None, None), "never pages");
        // One minute with half the answers slow: nobody.
        let mut then = vec![(1000, 500)];
        then.extend(vec![(1000, 0); DAY]);
        let states = alerting(&s, Objective::Latency, &timeline(4, &then));
        assert!(states.iter().all(|s| !s.iter().any(|a| *a)), "nobody alerted");
    }

    #[test]
    fn a_quiet_nights_few_bad_answers_page_nobody_and_its_outage_still_pages() {
        let s = budgeted();
        // A service with 24 requests an hour (one every 2.5 minutes, as whole minutes: 2 then 3
        // apart) for days; `bad` says which of them go wrong.
        let trickle = |hours: usize, bad: &dyn Fn(usize) -> bool| -> Vec<(u64, u64)> {
            (0..hours * 60)
                .map(|i| {
                    let request = i % 5 == 0 || i % 5 == 2;
                    (u64::from(request), u64::from(request && bad(i)))
                })
                .collect()
        };
        let start = 4 * 24 * 60;
        // Each hour, the first 4 go wrong: a sixth, far above any page's share, but 4 requests.
        let mut night = trickle(96, &|_| false);
        night.extend(trickle(6, &|i| i % 60 < 10));
        for objective in [Objective::Availability, Objective::Latency] {
            let states = alerting(&s, objective, &night);
            assert!(states[start..].iter().all(|a| !a[0] && !a[1]), "{objective:?}: nobody paged");
        }
        // The same trickle, every answer failing: a page once 5 have failed (the slow page's
        // 30-minute window holds 12 requests; the 5-minute one never holds 5).
        let mut outage = trickle(96, &|_| false);
        outage.extend(trickle(2, &|_| true));
        let states = alerting(&s, Objective::Availability, &outage);
        let paged = first(&states, 1).expect("page-slow fires") - start;
        assert!((10..=15).contains(&paged), "paged after {paged} minutes");
        assert_eq!(first(&states, 0), None, "page-fast's 5 minutes hold 2 requests at most");
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
        let dims = [("LoadBalancer".into(), "app/a/1".into()), ("TargetGroup".into(), "targetgroup/t/2".into())];
        assert!(windows(&crate::resources::test_stack(), &dims).is_empty());
        let s = budgeted();
        let w = windows(&s, &dims);
        let got: Vec<(&str, i32, f64, &str)> =
            w.iter().map(|w| (w.spec.name.as_str(), w.period, w.spec.threshold, w.spec.comparison.as_str())).collect();
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
        let (above, below) = ("GreaterThanThreshold", "LessThanThreshold");
        let want = [
            ("konnichiwa.budget.page-fast.1h", 3600, 1.44, above),
            ("konnichiwa.budget.page-fast.5m", 300, 1.44, above),
            ("konnichiwa.budget.page-slow.6h", 21_600, 0.6, above),
            ("konnichiwa.budget.page-slow.30m", 1800, 0.6, above),
            ("konnichiwa.budget.ticket.3d", 259_200, 0.1, above),
            ("konnichiwa.budget.ticket.6h", 21_600, 0.1, above),
            // The latency budget (99%): below 100 − 14.4 × 1% of answers in time, and so on.
            ("konnichiwa.budget.latency.page-fast.1h", 3600, 85.6, below),
            ("konnichiwa.budget.latency.page-fast.5m", 300, 85.6, below),
            ("konnichiwa.budget.latency.page-slow.6h", 21_600, 94.0, below),
            ("konnichiwa.budget.latency.page-slow.30m", 1800, 94.0, below),
            ("konnichiwa.budget.latency.ticket.3d", 259_200, 99.0, below),
            ("konnichiwa.budget.latency.ticket.6h", 21_600, 99.0, below),
        ];
        assert_eq!(got.len(), want.len());
        for ((name, period, th, cmp), (wn, wp, wt, wc)) in got.iter().zip(want) {
            assert_eq!((*name, *period, *cmp), (wn, wp, wc));
            assert!(close(*th, wt), "{name}: {th} vs {wt}");
        }
        let dims_text = "LoadBalancer=app/a/1 TargetGroup=targetgroup/t/2";
        assert_eq!(
            w[6].spec.measure,
            format!(
                "IF(FILL(requests, 0) * (100 - FILL(within, 100)) / 100 >= 5, FILL(within, 100), 100); \
                 requests=RequestCount Sum {dims_text} 3600s; within=TargetResponseTime PR(:0.3) {dims_text} 3600s"
            )
        );
        assert!(
            w[0].spec.measure.starts_with("IF(FILL(errors, 0) + FILL(elb_errors, 0) >= 5, "),
            "{}",
            w[0].spec.measure
        );
        // CloudWatch: a period under an hour looks back a day at most, any period 7 days.
        for w in &w {
            let span = w.period * w.spec.evaluation_periods;
            assert!(span <= if w.period < 3600 { 86_400 } else { 604_800 }, "{}", w.spec.name);
            assert_eq!(w.period % 60, 0);
        }
        let a = alerts(&s, Some("arn:aws:sns:ap-northeast-1:1:konnichiwa-alarms"));
        assert_eq!(a.len(), 6);
        assert_eq!(a[0].rule, r#"ALARM("konnichiwa.budget.page-fast.1h") AND ALARM("konnichiwa.budget.page-fast.5m")"#);
        assert_eq!(
            a[3].rule,
            r#"ALARM("konnichiwa.budget.latency.page-fast.1h") AND ALARM("konnichiwa.budget.latency.page-fast.5m")"#
        );
        assert!(a[0].description.starts_with("PAGE") && a[2].description.starts_with("TICKET"));
        assert!(a[3].description.contains("latency budget"), "{}", a[3].description);
        assert_eq!(a[2].actions, ["arn:aws:sns:ap-northeast-1:1:konnichiwa-alarms"]);
        // The names say which budget; every one matches the deploy role's one pattern.
        let (alerts, windows) = names("konnichiwa");
        for n in alerts.iter().chain(&windows) {
            assert!(n.starts_with("konnichiwa.budget."), "{n}");
        }
        assert_eq!(Objective::of_alarm("konnichiwa", &windows[7]), Objective::Latency);
        assert_eq!(Objective::of_alarm("konnichiwa", &windows[0]), Objective::Availability);
    }

    #[test]
    fn the_latency_standing_counts_slow_answers_like_errors() {
        assert_eq!(spent(99.0, (1000.0, 5.0), (100.0, 2.0)), (Some(50.0), Some(2.0)));
        assert_eq!(spent(99.0, (0.0, 0.0), (0.0, 0.0)), (None, None));
    }
}
