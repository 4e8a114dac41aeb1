//! `status` (what exists, per resource; the service's deployments, image and target health; the
//! outputs) and `outputs` (the outputs alone).

use serde::Serialize;

use super::answer;
use super::context;
use crate::cli::{Cli, OutputsArgs};
use crate::engine as driver;
use crate::error::{AwsContext, Error};
use crate::exit;
use crate::reconcile::{Action, Ctx, Mode};
use crate::sandbox;

/// The service's live state, as `status` prints it and its `--json` carries it (`service`).
#[derive(Debug, Serialize)]
struct ServiceState {
    desired: i32,
    running: i32,
    pending: i32,
    task_definition: Option<String>,
    image: Option<String>,
    deployments: Vec<DeploymentState>,
    targets: Vec<TargetState>,
    url: Option<String>,
    /// A canary, linear or blue/green service's newest service deployment.
    #[serde(skip_serializing_if = "Option::is_none")]
    shifting: Option<ShiftState>,
}

/// Where a canary, linear or blue/green service's newest service deployment stands.
#[derive(Debug, Serialize)]
struct ShiftState {
    strategy: String,
    service_deployment: Option<String>,
    status: Option<String>,
    stage: Option<String>,
    /// The share of production traffic the new revision is to take, in percent.
    production_percent: Option<f64>,
    /// The share of the test route's traffic it takes.
    test_percent: Option<f64>,
    /// The gate's hook when it holds the deployment: `AWAITING_ACTION until …, then ROLLBACK`.
    gate: Option<String>,
    reason: Option<String>,
}

/// One of the service's deployments, with its rollout state.
#[derive(Debug, Serialize)]
struct DeploymentState {
    id: Option<String>,
    status: Option<String>,
    rollout_state: Option<String>,
    task_definition: Option<String>,
    desired: i32,
    running: i32,
    pending: i32,
    failed_tasks: i32,
}

/// One registered target and its health.
#[derive(Debug, Serialize)]
struct TargetState {
    target: Option<String>,
    port: Option<i32>,
    state: Option<String>,
    reason: Option<String>,
}

/// One resource as `status` reports it: in-sync, missing, drifted or extra.
#[derive(Debug, Serialize)]
struct ResourceState<'a> {
    kind: &'static str,
    name: &'a str,
    id: Option<&'a str>,
    state: &'static str,
}

/// `status --json`.
#[derive(Debug, Serialize)]
struct StatusAnswer<'a> {
    region: &'a str,
    resources: Vec<ResourceState<'a>>,
    service: Option<&'a ServiceState>,
    /// What `rollback --to` can name, newest first.
    revisions: &'a [super::rollback::Revision],
    outputs: &'a driver::Outputs,
    /// Where the error budget stands (with `slo.availability`).
    #[serde(skip_serializing_if = "Option::is_none")]
    error_budget: Option<&'a crate::resources::budget::Standing>,
    /// Where the latency budget stands (with `slo.latency`).
    #[serde(skip_serializing_if = "Option::is_none")]
    latency_budget: Option<&'a crate::resources::budget::LatencyStanding>,
    notes: &'a [String],
}

/// `outputs --json`.
#[derive(Debug, Serialize)]
struct OutputsAnswer<'a> {
    outputs: &'a driver::Outputs,
}

/// The service's live state: counts, deployments with their rollout state, the image running,
/// target health; None when there is no active service.
async fn service_state(ctx: &Ctx, outputs: &driver::Outputs) -> Result<Option<ServiceState>, Error> {
    let (cluster, name) = (&outputs.cluster.cluster, &outputs.service.service);
    let described =
        ctx.clients.ecs.describe_services().cluster(cluster).services(name).send().await.ctx("describe service", name);
    let Some(out) = crate::error::absent(described)? else { return Ok(None) };
    let Some(s) = out.services().iter().find(|s| s.status() == Some("ACTIVE")) else { return Ok(None) };
    let owned = |v: Option<&str>| v.map(str::to_owned);
    let deployments = s
        .deployments()
        .iter()
        .map(|d| DeploymentState {
            id: owned(d.id()),
            status: owned(d.status()),
            rollout_state: owned(d.rollout_state().map(|r| r.as_str())),
            task_definition: owned(d.task_definition()),
            desired: d.desired_count(),
            running: d.running_count(),
            pending: d.pending_count(),
            failed_tasks: d.failed_tasks(),
        })
        .collect();
    let mut targets = Vec::new();
    if let Some(tg) = outputs.load_balancer.target_group_arn.known() {
        let health = ctx
            .clients
            .elb
            .describe_target_health()
            .target_group_arn(tg)
            .send()
            .await
            .ctx("describe target health of", tg)?;
        for d in health.target_health_descriptions() {
            targets.push(TargetState {
                target: owned(d.target().and_then(|t| t.id())),
                port: d.target().and_then(|t| t.port()),
                state: owned(d.target_health().and_then(|h| h.state()).map(|s| s.as_str())),
                reason: owned(d.target_health().and_then(|h| h.description())),
            });
        }
    }
    Ok(Some(ServiceState {
        desired: s.desired_count(),
        running: s.running_count(),
        pending: s.pending_count(),
        task_definition: owned(s.task_definition()),
        image: outputs.service.image.clone(),
        deployments,
        targets,
        url: outputs.load_balancer.url.clone(),
        shifting: shift_state(ctx).await?,
    }))
}

/// The newest service deployment of a canary, linear or blue/green service: the one in flight,
/// else the last (None for a rolling service).
async fn shift_state(ctx: &Ctx) -> Result<Option<ShiftState>, Error> {
    use crate::rollout::shifted;
    if !ctx.stack.service.deployment.strategy.shifts_traffic() {
        return Ok(None);
    }
    let newest = match shifted::in_flight(ctx).await? {
        Some(d) => Some(d),
        None => match shifted::listed(ctx).await?.first() {
            Some(arn) => shifted::describe(ctx, arn).await?,
            None => None,
        },
    };
    let owned = |v: Option<&str>| v.map(str::to_owned);
    let strategy = crate::rollout::strategy_words(&ctx.stack);
    let Some(d) = newest else {
        let none = ShiftState {
            strategy,
            service_deployment: None,
            status: None,
            stage: None,
            production_percent: None,
            test_percent: None,
            gate: None,
            reason: None,
        };
        return Ok(Some(none));
    };
    let target = d.target_service_revision();
    let gate =
        d.lifecycle_hook_details().iter().find(|h| h.status().is_some_and(|s| s.as_str() == "AWAITING_ACTION")).map(
            |h| {
                format!(
                    "AWAITING_ACTION until {}, then {}",
                    h.expires_at().map_or_else(|| "?".to_owned(), |t| t.to_string()),
                    h.timeout_action().map_or("ROLLBACK", |a| a.as_str())
                )
            },
        );
    Ok(Some(ShiftState {
        strategy,
        service_deployment: owned(d.service_deployment_arn()),
        status: owned(d.status().map(|s| s.as_str())),
        stage: owned(d.lifecycle_stage().map(|s| s.as_str())),
        production_percent: target.and_then(|t| t.requested_production_traffic_weight()),
        test_percent: target.and_then(|t| t.requested_test_traffic_weight()),
        gate,
        reason: owned(d.status_reason()),
    }))
}

/// A resource's state as `status` names it, from what the plan would do.
fn state_of(a: Action) -> &'static str {
    match a {
        Action::NoOp => "in-sync",
        Action::Create => "missing",
        Action::Update | Action::Replace => "drifted",
        Action::Delete => "extra",
    }
}

/// What `status` reads beyond the plan.
struct Live {
    service: Option<ServiceState>,
    /// What `rollback --to` can name.
    revisions: Vec<super::rollback::Revision>,
    notes: Vec<String>,
    budget: crate::resources::budget::Standings,
}

async fn live(ctx: &Ctx, plan: &crate::reconcile::Plan, outputs: &driver::Outputs) -> Result<Live, Error> {
    let service = service_state(ctx, outputs).await?;
    let revisions = super::rollback::revisions(ctx, 5).await?;
    // Load generators the stack did not start (RunTask's network cannot be bounded by IAM).
    let mut notes = plan.notes.clone();
    let subnets: Vec<String> = outputs.network.subnet_ids.iter().filter_map(|s| s.known().map(str::to_owned)).collect();
    notes.extend(crate::resources::loadtest::strays(ctx, &subnets).await?);
    // A caller that may not read the metrics still gets the rest, and a note.
    let budget = match crate::resources::budget::standing(ctx, &outputs.load_balancer).await {
        Err(e) if e.is_denied() => {
            notes.push(format!("the budgets are not shown: {e}"));
            Default::default()
        }
        r => r?,
    };
    Ok(Live { service, revisions, notes, budget })
}

/// `status`, or with `outputs` (its arguments) the outputs alone.
pub async fn run(cli: &Cli, only_outputs: Option<&OutputsArgs>) -> Result<u8, Error> {
    let ctx = context(cli, Mode::Plan, std::time::Duration::from_secs(600)).await?;
    let (plan, outputs) = driver::reconcile(&ctx, &driver::ImageSource::Unchanged).await?;
    if let Some(args) = only_outputs {
        return print_outputs(cli, args, &ctx, &plan, &outputs);
    }
    let Live { service, revisions, notes, budget } = live(&ctx, &plan, &outputs).await?;
    if cli.json {
        let resources = plan
            .resources
            .iter()
            .map(|r| ResourceState {
                kind: r.kind.as_str(),
                name: &r.name,
                id: r.id.as_deref(),
                state: state_of(r.change.action),
            })
            .collect();
        let body = StatusAnswer {
            region: &ctx.stack.region,
            resources,
            service: service.as_ref(),
            revisions: &revisions,
            outputs: &outputs,
            error_budget: budget.errors.as_ref(),
            latency_budget: budget.latency.as_ref(),
            notes: &notes,
        };
        answer::print("status", Some(&ctx.stack.name), body);
        return Ok(exit::OK);
    }
    println!("Stack {} in {}:\n", ctx.stack.name, ctx.clients.target());
    for r in &plan.resources {
        println!("  {:<9} {:<19} {:<40} {}", state_of(r.change.action), r.kind, r.name, r.id.as_deref().unwrap_or("-"));
    }
    for n in &notes {
        println!("\nNote: {n}");
    }
    print_service(&outputs, service.as_ref());
    if !revisions.is_empty() {
        println!("\nRecent revisions (newest first; `rollback --to N` puts one back):");
        let running = service.as_ref().and_then(|s| s.task_definition.as_deref()).unwrap_or_default();
        for r in &revisions {
            let mark = if r.task_definition == running { "  (running)" } else { "" };
            println!("  {:<5} {}{mark}", r.revision, r.image);
        }
    }
    print_alarms_and_certificate(&outputs);
    print_budgets(&budget);
    if let Some(url) = &outputs.load_balancer.url {
        println!("\nURL: {url}");
        if let Some(note) = sandbox::note(sandbox::Topic::Url) {
            println!("  ({note})");
        }
    }
    Ok(exit::OK)
}

/// `outputs`: what the stack's resources expose; refused when none of them exists.
fn print_outputs(
    cli: &Cli,
    args: &OutputsArgs,
    ctx: &Ctx,
    plan: &crate::reconcile::Plan,
    outputs: &driver::Outputs,
) -> Result<u8, Error> {
    let missing: Vec<&str> =
        plan.resources.iter().filter(|r| r.change.action == Action::Create).map(|r| r.kind.as_str()).collect();
    if missing.len() == plan.resources.len() {
        return Err(Error::Refused(format!(
            "stack {} does not exist in {}: nothing carries the tag konnichiwa:stack={} (check --region and \
             the account, or run `up`)",
            ctx.stack.name,
            ctx.clients.target(),
            ctx.stack.name
        )));
    }
    if !missing.is_empty() {
        eprintln!(
            "note: {} of the stack's resources are missing ({}): their outputs are null; `up` creates them",
            missing.len(),
            missing.join(", ")
        );
    }
    if let Some(name) = &args.name {
        let all = serde_json::to_value(outputs).unwrap_or_default();
        let value = one_output(&all, name)?;
        match (args.raw, value) {
            (true, serde_json::Value::String(s)) => println!("{s}"),
            (true, serde_json::Value::Number(n)) => println!("{n}"),
            (true, serde_json::Value::Bool(b)) => println!("{b}"),
            (true, other) => {
                return Err(Error::Usage(format!(
                    "output {name} is {}, which --raw cannot print: leave out --raw for its JSON",
                    match other {
                        serde_json::Value::Null => "not known yet (null)",
                        serde_json::Value::Array(_) => "a list",
                        _ => "an object",
                    }
                )));
            }
            (false, v) => println!("{}", serde_json::to_string_pretty(v).unwrap_or_default()),
        }
        return Ok(exit::OK);
    }
    if cli.json {
        answer::print("outputs", Some(&ctx.stack.name), OutputsAnswer { outputs });
    } else {
        println!("{}", serde_json::to_string_pretty(&outputs).unwrap_or_default());
    }
    Ok(exit::OK)
}

/// The output at the dotted `name` of `all`; refused, with the names there are, when none is.
fn one_output<'a>(all: &'a serde_json::Value, name: &str) -> Result<&'a serde_json::Value, Error> {
    let found = name.split('.').try_fold(all, |v, part| v.get(part));
    found
        .ok_or_else(|| Error::Usage(format!("no output named {name:?}: the outputs are {}", names(all, "").join(", "))))
}

/// Every leaf's dotted name.
fn names(v: &serde_json::Value, prefix: &str) -> Vec<String> {
    match v.as_object() {
        Some(map) => map
            .iter()
            .flat_map(|(k, child)| names(child, &if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") }))
            .collect(),
        None => vec![prefix.to_owned()],
    }
}

/// The service's counts, deployments and targets, as `status` prints them.
fn print_service(outputs: &driver::Outputs, service: Option<&ServiceState>) {
    let Some(s) = service else { return };
    let or = |v: &Option<String>, none: &'static str| v.clone().unwrap_or_else(|| none.to_owned());
    println!(
        "\nService {}: desired {}, running {}, pending {}\n  image {}",
        outputs.service.service,
        s.desired,
        s.running,
        s.pending,
        or(&s.image, "-")
    );
    if let Some(note) = sandbox::note(sandbox::Topic::Tasks) {
        println!("  ({note})");
    }
    for d in &s.deployments {
        println!(
            "  deployment {} {} {}: {}/{} running ({})",
            or(&d.id, "?"),
            or(&d.status, "?"),
            or(&d.rollout_state, "?"),
            d.running,
            d.desired,
            or(&d.task_definition, "?")
        );
    }
    for t in &s.targets {
        let port = t.port.map_or_else(|| "null".to_owned(), |p| p.to_string());
        println!("  target {}:{port} {} {}", or(&t.target, "?"), or(&t.state, "?"), or(&t.reason, ""));
    }
    if let Some(sh) = &s.shifting {
        print_shift(sh);
    }
}

/// A shifting service's newest service deployment, as `status` prints it.
fn print_shift(sh: &ShiftState) {
    let Some(arn) = &sh.service_deployment else {
        println!("  deploys through {}: no service deployment yet", sh.strategy);
        return;
    };
    let percent = |p: Option<f64>| p.map_or_else(|| "?".to_owned(), |p| format!("{p}%"));
    println!(
        "  deploys through {}: service deployment {arn} {}, stage {}\n    traffic to the new revision: production {}, test {}",
        sh.strategy,
        sh.status.as_deref().unwrap_or("?"),
        sh.stage.as_deref().unwrap_or("-"),
        percent(sh.production_percent),
        percent(sh.test_percent),
    );
    if let Some(g) = &sh.gate {
        println!("    held at the gate: {g} (`provisioner deploy` judges it, `provisioner rollback` undoes it)");
    }
    if let Some(r) = &sh.reason {
        println!("    {r}");
    }
}

/// Where the budgets stand, as `status` prints it.
fn print_budgets(b: &crate::resources::budget::Standings) {
    let spent = |left: Option<f64>, burn: Option<f64>, days: f64, what: String| {
        match left {
            Some(left) => println!("  {left:.1}% left ({what})"),
            None => println!("  no requests in {days} days: all of it left"),
        }
        match burn {
            Some(rate) => println!("  burning {rate:.2}× the rate that spends it in {days} days (the last hour)"),
            None => println!("  no requests in the last hour"),
        }
    };
    if let Some(e) = &b.errors {
        println!("\nError budget ({}% of requests without a 5xx over {} days):", e.availability, e.days);
        spent(e.left_percent, e.burn_rate, e.days, format!("{} of {} requests failed", e.errors, e.requests));
    }
    if let Some(l) = &b.latency {
        println!(
            "\nLatency budget ({}% of requests answered within {}s over {} days):",
            l.latency, l.within_seconds, l.days
        );
        spent(l.left_percent, l.burn_rate, l.days, format!("about {:.0} of {} requests slower", l.slow, l.requests));
    }
}

/// The SLO alarms' states and the certificate's, as `status` prints them.
fn print_alarms_and_certificate(outputs: &driver::Outputs) {
    if !outputs.alarms.states.is_empty() {
        println!("\nSLO alarms (a deployment that sets one off is rolled back):");
        for (name, state) in &outputs.alarms.states {
            println!("  {name:<40} {}", state.as_deref().unwrap_or("not created yet"));
        }
    }
    if let Some(c) = &outputs.certificate {
        let expiry = c
            .not_after
            .as_deref()
            .map(|t| format!(", {}", crate::resources::certificate::expiry_line(t, std::time::SystemTime::now())))
            .unwrap_or_default();
        println!(
            "\nCertificate {} for {}: {}{expiry}{}",
            c.certificate_arn,
            c.domain.as_deref().unwrap_or("the load balancer"),
            c.status.as_deref().unwrap_or("not requested yet"),
            if c.managed { "" } else { " (given in stack.yaml; renewals are yours)" }
        );
    }
}
