//! `adopt` without a file to write: the plan of taking a Terraform-made stack over (what `up`
//! would make of each of the state's resources once it counts as the stack's), and with `--yes`
//! the names recorded in stack.yaml and the stack's tags added, under the lease. Nothing is
//! deleted; the deploy role may not run it.

use std::sync::Arc;

use serde::Serialize;

use super::adopt::StateId;
use super::answer;
use super::{context, holding_lease};
use crate::adopt::stack_file::Described;
use crate::adopt::tfstate::State;
use crate::adoption::{self, AdoptPlan, Verdict, tagging};
use crate::cli::{AdoptArgs, Cli};
use crate::engine;
use crate::error::{AwsContext, Error};
use crate::exit;
use crate::reconcile::{Action, Ctx, Mode};
use crate::resources::service::{ECS_SERVICE, SERVICE_AUTOSCALING, TASK_DEFINITION};

/// `adopt --json` (taking over).
#[derive(Debug, Serialize)]
struct TakenOver<'a> {
    region: &'a str,
    account: &'a str,
    /// The state's `terraform_version`, `serial` and `lineage`.
    state: StateId<'a>,
    /// Tags to add or names to record (before `--yes`; after it, what it did).
    changes_pending: bool,
    applied: bool,
    #[serde(flatten)]
    plan: &'a AdoptPlan,
    /// What the state holds that the stack takes differently (a shared role, a role with a path).
    notes: &'a [String],
}

pub async fn run(cli: &Cli, args: &AdoptArgs, state: &State, source: &str, d: &Described) -> Result<u8, Error> {
    let mut ctx = context(cli, Mode::Plan, std::time::Duration::from_secs(600)).await?;
    let identity = ctx.clients.identity().await?;
    adoption::check_place(state, &ctx.stack.region, &identity.account)?;
    let names = adoption::merge_names(&mut ctx.stack.adopted, &d.taken)?;
    cluster_is_the_stacks_alone(&ctx).await?;
    load_balancer_is_the_stacks_alone(&ctx).await?;
    let mut adopting = adoption::adopting(state, &d.taken);
    // Revisions registered since the state was saved (CI deploys images) are the family's too.
    if let Some(family) = d.taken.names.task_family.as_deref() {
        adopting.ids.extend(crate::resources::service::task::active_revisions(&ctx, family).await?);
    }
    ctx.adopting = Arc::new(adopting);
    let mut plan = judge(cli, &ctx, state, &d.from).await?;
    plan.names_to_record = names;
    let pending = plan.has_work();
    let applied = args.yes && pending;
    if applied {
        let deploy_role = crate::resources::iam::deploy_role::role_name(&ctx.stack.name);
        if identity.is_role(&deploy_role) {
            return Err(Error::Refused(format!(
                "adopt tags resources stack {} does not own yet, which its deploy role ({deploy_role}) may never \
                 do: run it with an administrator's credentials",
                ctx.stack.name
            )));
        }
        let stack_file = cli.stack.clone();
        holding_lease(&mut ctx, "adopt", args.lock_timeout, async |ctx: &mut Ctx| take(ctx, &stack_file, &plan).await)
            .await?;
    }
    if cli.json {
        let body = TakenOver {
            region: &ctx.stack.region,
            account: &identity.account,
            state: StateId::of(state),
            changes_pending: pending,
            applied,
            plan: &plan,
            notes: &d.notes,
        };
        answer::print("adopt", Some(&ctx.stack.name), body);
    } else {
        println!(
            "Taking over {source} (Terraform {}, serial {}) as stack {} in {}, account {}:\n",
            state.terraform_version, state.serial, ctx.stack.name, ctx.stack.region, identity.account
        );
        print!("{}", render(&plan, &ctx.stack.name, applied));
        for n in &d.notes {
            println!("  note: {n}");
        }
    }
    Ok(if pending && !applied { exit::CHANGES_PENDING } else { exit::OK })
}

/// Refuses to take over a cluster that runs services besides the stack's: `up` makes the stack's
/// capacity provider the cluster's only one, and `down` deletes the cluster.
async fn cluster_is_the_stacks_alone(ctx: &Ctx) -> Result<(), Error> {
    let Some(cluster) = ctx.stack.adopted.cluster.as_deref() else { return Ok(()) };
    let service = crate::resources::service::name(&ctx.stack);
    let listed = ctx.clients.ecs.list_services().cluster(cluster).into_paginator().items().send();
    let arns: Vec<String> = listed.try_collect().await.ctx("list the services of", cluster).or_else(|e| {
        // A cluster that is gone has no services: the plan says it is not found.
        if e.code() == Some("ClusterNotFoundException") { Ok(Vec::new()) } else { Err(e) }
    })?;
    let others: Vec<&str> =
        arns.iter().filter_map(|a| a.rsplit('/').next()).filter(|name| *name != service.as_str()).collect();
    if others.is_empty() {
        return Ok(());
    }
    Err(Error::Refused(format!(
        "cluster {cluster} runs {} service(s) besides {service} ({}): a stack owns its cluster (`up` makes the \
         stack's capacity provider its only one, `down` deletes it); move them to another cluster first",
        others.len(),
        others.join(", ")
    )))
}

/// Refuses to take over a load balancer that serves target groups besides the stack's: `up`
/// deletes the listener rules that are not the stack's, and `down` deletes the load balancer.
async fn load_balancer_is_the_stacks_alone(ctx: &Ctx) -> Result<(), Error> {
    let Some(lb) = ctx.stack.adopted.load_balancer.as_deref() else { return Ok(()) };
    let elb = &ctx.clients.elb;
    let found = elb.describe_load_balancers().names(lb).send().await.ctx("describe load balancer", lb);
    let Some(found) = crate::error::absent(found)? else { return Ok(()) };
    let Some(arn) = found.load_balancers().first().and_then(|l| l.load_balancer_arn()) else { return Ok(()) };
    let groups =
        elb.describe_target_groups().load_balancer_arn(arn).send().await.ctx("describe target groups of", lb)?;
    let ours = [
        crate::resources::load_balancer::tg_name(&ctx.stack),
        crate::resources::load_balancer::alternate_tg_name(&ctx.stack.name),
    ];
    let others: Vec<&str> = groups
        .target_groups()
        .iter()
        .filter_map(|g| g.target_group_name())
        .filter(|n| !ours.iter().any(|o| o == n))
        .collect();
    if others.is_empty() {
        return Ok(());
    }
    Err(Error::Refused(format!(
        "load balancer {lb} serves target group(s) besides the stack's ({}): a stack owns its load balancer (`up` \
         deletes the listener rules that are not the stack's, `down` deletes it); move those services to another \
         load balancer first",
        others.join(", ")
    )))
}

/// The plan `up` would make with the state's resources counted as the stack's, judged.
async fn judge(cli: &Cli, ctx: &Ctx, state: &State, attached: &[String]) -> Result<AdoptPlan, Error> {
    let image = super::image_source(cli, ctx, None)?;
    let (plan, _) = engine::reconcile(ctx, &image).await?;
    let untagged_kinds: Vec<_> = plan
        .resources
        .iter()
        .filter(|r| [ECS_SERVICE, TASK_DEFINITION, SERVICE_AUTOSCALING].contains(&r.kind))
        .filter_map(|r| Some((r.kind, r.id.clone()?)))
        .collect();
    let unseen = tagging::unseen(ctx, &untagged_kinds).await?;
    Ok(adoption::judge(state, &plan, attached, &unseen))
}

/// Refuses a stack whose `adopted:` names a resource that is not the stack's (untagged, another
/// stack's, or absent), or whose `secret.name` or `registry.repository` names another's: the
/// deploy role's policies name these resources by those names, so `ci-role` must not grant it
/// what a line of stack.yaml points at. Every kind looks its resources up as `plan` does, with
/// the ownership check, and none may be made under an adopted name. A stack with derived names
/// only is not read (its names are its own by construction).
pub(super) async fn adopted_names_are_the_stacks(cli: &Cli, ctx: &Ctx) -> Result<(), Error> {
    let s = &ctx.stack;
    let taken: Vec<(&str, &str)> = s.adopted.entries().into_iter().filter_map(|(k, v)| Some((k, v?))).collect();
    let named = s.secret.name != format!("{}/api-key", s.name) || s.registry.repository != s.name;
    if taken.is_empty() && !named {
        return Ok(());
    }
    let refused = |why: String| {
        Error::Refused(format!(
            "stack.yaml names a resource that is not this stack's: {why}; the deploy role's policies would reach it \
             by that name: take it over with `provisioner adopt --from-tfstate … --yes` first, or correct the name"
        ))
    };
    let image = super::image_source(cli, ctx, None)?;
    let (plan, _) = engine::reconcile(ctx, &image).await.map_err(|e| match e {
        Error::Foreign { .. } => refused(format!("{e}")),
        other => other,
    })?;
    let made = plan.resources.iter().filter(|r| r.change.action == Action::Create);
    if let Some((key, name)) = made.flat_map(|r| taken.iter().filter(move |(_, n)| *n == r.name)).next() {
        return Err(refused(format!("adopted.{key} names {name}, which does not exist")));
    }
    Ok(())
}

/// Records the names, then tags: a stack file that names a resource finds it and, untagged,
/// refuses it; tags without the names would leave `up` looking for other names.
async fn take(ctx: &Ctx, stack_file: &std::path::Path, plan: &AdoptPlan) -> Result<(), Error> {
    adoption::record::record(stack_file, &plan.names_to_record)?;
    for e in &plan.entries {
        let tags = tagging::pairs(e.verdict.tags());
        let (Some(kind), Some(name), Some(id)) = (e.kind, &e.name, &e.id) else { continue };
        if tags.is_empty() {
            continue;
        }
        tagging::tag(ctx, kind, name, id, &tags).await?;
        eprintln!("  tagged {kind} {name} ({})", e.address);
    }
    Ok(())
}

/// The headings of the text's groups, in order (`heading` gives each verdict's).
const HEADINGS: [&str; 7] = [
    "take over as it is (tags to add)",
    "take over; `up` then changes it in place",
    "take over; `up` can only replace it (it is recreated: downtime)",
    "take over; `up` then deletes it (stack.yaml does not want it)",
    "take over as it is, nothing to add",
    "taken over with the resource it belongs to",
    "left alone (adopt never deletes)",
];

fn heading(v: &Verdict) -> usize {
    match v {
        Verdict::AsIs { .. } => 0,
        Verdict::Change { .. } => 1,
        Verdict::Replace { .. } => 2,
        Verdict::Delete { .. } => 3,
        Verdict::Kept => 4,
        Verdict::Part { .. } => 5,
        Verdict::Left { .. } => 6,
    }
}

/// The plan as text, grouped by verdict.
fn render(plan: &AdoptPlan, stack: &str, applied: bool) -> String {
    let mut out = String::new();
    for (group, title) in HEADINGS.iter().enumerate() {
        let entries: Vec<_> = plan.entries.iter().filter(|e| heading(&e.verdict) == group).collect();
        if entries.is_empty() {
            continue;
        }
        out.push_str(&format!("  {title}:\n"));
        for e in entries {
            out.push_str(&format!("    {:<44} {}\n", e.address, detail(e)));
        }
    }
    if !plan.up_also.is_empty() {
        out.push_str("  `up` then also:\n");
        for r in &plan.up_also {
            let verb = match r.change.action {
                Action::Create => "create",
                Action::Update => "update",
                Action::Replace => "replace",
                Action::Delete => "delete",
                Action::NoOp => "keep",
            };
            out.push_str(&format!("    {verb} {} {}\n", r.kind, r.name));
        }
    }
    if !plan.names_to_record.is_empty() {
        out.push_str("  names to record in stack.yaml, under adopted: (AWS cannot rename these)\n");
        for n in &plan.names_to_record {
            out.push_str(&format!("    {}: {}   # {}\n", n.key, n.name, n.from));
        }
    }
    let tagged = plan.entries.iter().filter(|e| !e.verdict.tags().is_empty()).count();
    out.push('\n');
    out.push_str(&if applied {
        format!(
            "Took over: recorded {} names, tagged {tagged} resources. `provisioner up` now converges them; `down` of \
             stack {stack} deletes everything taken over.\n",
            plan.names_to_record.len()
        )
    } else if plan.has_work() {
        format!(
            "Nothing changed. `adopt --yes` records {} names and tags {tagged} resources (an administrator's run); \
             adopt never deletes, but after it `down` of stack {stack} deletes everything taken over.\n",
            plan.names_to_record.len()
        )
    } else {
        format!("Nothing to take over: stack {stack} owns what the state names. `provisioner plan` shows what `up` changes.\n")
    });
    out
}

/// One entry's kind, name and what changes.
fn detail(e: &adoption::Entry) -> String {
    let what = match (&e.kind, &e.name) {
        (Some(k), Some(n)) => format!("{k} {n}"),
        _ => String::new(),
    };
    let keys = |tags: &[crate::reconcile::FieldDiff]| {
        tags.iter().map(|t| t.field.trim_start_matches("tags.").to_owned()).collect::<Vec<_>>().join(", ")
    };
    let fields = |f: &[crate::reconcile::FieldDiff]| {
        f.iter()
            .map(|d| format!("{}: {} → {}", d.field, d.old.as_deref().unwrap_or("-"), d.new.as_deref().unwrap_or("-")))
            .collect::<Vec<_>>()
            .join("; ")
    };
    match &e.verdict {
        Verdict::AsIs { tags } | Verdict::Delete { tags } => format!("{what}: tags {}", keys(tags)),
        Verdict::Change { tags, fields: f } => format!("{what}: {}; tags {}", fields(f), keys(tags)),
        Verdict::Replace { reason, .. } => format!("{what}: {reason}"),
        Verdict::Kept => what,
        Verdict::Part { what } => what.clone(),
        Verdict::Left { why } => why.clone(),
    }
}
