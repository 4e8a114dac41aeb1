//! Who is asking: the credentials' account and region, whether the caller may make every call
//! the stack needs (IAM's policy simulator), and the service-linked roles the stack relies on.

use super::Check;
use super::simulation::{self, Verdict};
use crate::error::{AwsContext, absent};
use crate::reconcile::Ctx;
use crate::reconcile::permission::{Permission, PolicyContext, actions};

/// The roles AWS makes for ECS, Auto Scaling, Elastic Load Balancing and ECS service auto scaling
/// the first time a caller who may `iam:CreateServiceLinkedRole` uses them.
const SERVICE_LINKED_ROLES: &[&str] = &[
    "AWSServiceRoleForECS",
    "AWSServiceRoleForAutoScaling",
    "AWSServiceRoleForElasticLoadBalancing",
    "AWSServiceRoleForApplicationAutoScaling_ECSService",
];

pub async fn checks(ctx: &Ctx) -> Vec<Check> {
    let identity = match ctx.clients.identity().await {
        Ok(id) => id,
        Err(e) => {
            let fix = "give the provisioner working credentials (README, \"Credentials\")";
            return vec![Check::failed("credentials", format!("{e:#}"), fix)];
        }
    };
    let who = Check::passed(
        "credentials",
        format!("account {}, {} in {}", identity.account, identity.arn, ctx.clients.region),
    );
    let principal = identity.principal_arn();
    let (permissions, roles) = tokio::join!(permissions(ctx, &identity, &principal), service_linked_roles(ctx));
    vec![who, permissions, roles]
}

/// Simulates every call the stack's kinds need for the caller, on the resources it touches and
/// with the context it carries (`simulation`).
async fn permissions(ctx: &Ctx, identity: &crate::aws::Identity, principal: &str) -> Check {
    const NAME: &str = "permissions";
    if principal.ends_with(":root") {
        return Check::warning(NAME, "the account's root user may do anything", "use a role or an IAM user, not root");
    }
    // The deploy role is not asked what only an administrator does (`administrators_only`).
    let deploy_role = identity.is_role(&crate::resources::iam::deploy_role::role_name(&ctx.stack.name));
    let needed: Vec<&Permission> = crate::engine::walk::permissions()
        .into_iter()
        .filter(|p| p.applies.is_none_or(|f| f(&ctx.stack)))
        .filter(|p| p.deploy_role || !deploy_role)
        .collect();
    let policy_ctx = PolicyContext {
        partition: identity.partition.clone(),
        account: identity.account.clone(),
        stack: &ctx.stack,
        // The domain's zone, when there is one to find (its record changes are scoped to it).
        hosted_zone_id: zone_id(ctx).await,
        validation_record: None,
        subnets: crate::resources::network::locate(ctx).await.ok().flatten().map(|(_, s)| s).unwrap_or_default(),
    };
    let cases = simulation::cases(&policy_ctx, principal, &needed);
    let verdicts = match simulation::simulate(ctx, principal, &cases).await {
        Ok(v) => v,
        Err(e) => return Check::not_checked(NAME, &e),
    };
    judge(principal, &ctx.stack.name, actions(needed).len(), &verdicts)
}

/// The Route 53 zone of the stack's domain, if it has one and it can be found.
async fn zone_id(ctx: &Ctx) -> Option<String> {
    let (https, domain) = (ctx.stack.load_balancer.https.as_ref()?, crate::dns::domain(&ctx.stack)?);
    crate::dns::find_zone(ctx, https, domain).await.ok().map(|z| z.id)
}

/// The check from the simulator's verdicts: failed when a call is refused, a warning when some
/// could not be judged; the actions grouped by why (the first few named, and how many more).
fn judge(principal: &str, stack: &str, needed: usize, verdicts: &[Verdict]) -> Check {
    const NAME: &str = "permissions";
    let mut denied: Vec<(String, Vec<String>)> = Vec::new();
    let mut unjudged: Vec<(String, Vec<String>)> = Vec::new();
    let note = |groups: &mut Vec<(String, Vec<String>)>, why: String, action: &str| {
        let at = groups.iter().position(|(w, _)| *w == why).unwrap_or_else(|| {
            groups.push((why, Vec::new()));
            groups.len() - 1
        });
        if !groups[at].1.iter().any(|a| a == action) {
            groups[at].1.push(action.to_owned());
        }
    };
    for v in verdicts {
        match v {
            Verdict::Allowed => {}
            Verdict::Denied { action, why, .. } => note(&mut denied, why.clone(), action),
            Verdict::Unjudged { action, missing } => {
                note(&mut unjudged, format!("its conditions want {}", missing.join(", ")), action);
            }
        }
    }
    if !denied.is_empty() {
        let scp = denied.iter().any(|(why, _)| why.contains("service control policy"));
        let fix = if scp {
            "an SCP is your organization's: ask its administrator to allow these calls in this region, or deploy to a \
             region it allows"
        } else if principal.ends_with(&format!(":role/{}", crate::resources::iam::deploy_role::role_name(stack))) {
            "the deploy role's policies are rendered from the stack file by `ci-role`, and this one asks for more (an \
             AMI, an instance type, a larger capacity.max, a tag key, an alarm topic or an option it did not name): run \
             `provisioner ci-role` again with administrator credentials, before the change reaches CI"
        } else {
            "grant them (the deploy role `provisioner ci-role` makes has all of them), or run as a principal that has them"
        };
        return Check::failed(NAME, format!("{principal} may not call {}", grouped(&denied)), fix);
    }
    if !unjudged.is_empty() {
        return Check::warning(
            NAME,
            format!("{principal} may make the calls the simulator could judge; not judged: {}", grouped(&unjudged)),
            "the caller's own policies have conditions on keys the simulation does not carry: AWS judges each call \
             when it is made",
        );
    }
    Check::passed(NAME, format!("{principal} may make all {needed} calls the stack needs"))
}

/// `a:X, b:Y (why); c:Z (another why)`, at most `SHOWN` actions named per reason.
fn grouped(groups: &[(String, Vec<String>)]) -> String {
    const SHOWN: usize = 8;
    groups
        .iter()
        .map(|(why, actions)| {
            let more = actions.len().saturating_sub(SHOWN);
            let named = actions.iter().take(SHOWN).cloned().collect::<Vec<_>>().join(", ");
            if more > 0 { format!("{named} and {more} more ({why})") } else { format!("{named} ({why})") }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

async fn service_linked_roles(ctx: &Ctx) -> Check {
    const NAME: &str = "service-linked roles";
    let read = |role: &'static str| async move {
        let found = ctx.clients.iam.get_role().role_name(role).send().await.ctx("read role", role);
        (role, absent(found))
    };
    let mut missing = Vec::new();
    for (role, found) in futures_util::future::join_all(SERVICE_LINKED_ROLES.iter().map(|r| read(r))).await {
        match found {
            Ok(Some(_)) => {}
            Ok(None) => missing.push(role),
            Err(e) => return Check::not_checked(NAME, &e),
        }
    }
    if missing.is_empty() {
        return Check::passed(NAME, "all 4 present");
    }
    Check::passed(
        NAME,
        format!(
            "{} of {} absent ({}): AWS makes each on first use for a caller who may iam:CreateServiceLinkedRole (see permissions)",
            missing.len(),
            SERVICE_LINKED_ROLES.len(),
            missing.join(", ")
        ),
    )
}
