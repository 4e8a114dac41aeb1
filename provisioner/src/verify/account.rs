//! Who is asking: the credentials' account and region, whether the caller may make every call
//! the stack needs (IAM's policy simulator), and the service-linked roles the stack relies on.

use aws_sdk_iam::types::PolicyEvaluationDecisionType;

use super::Check;
use crate::error::{AwsContext, Error, absent};
use crate::reconcile::Ctx;
use crate::reconcile::permission::actions;

/// Actions per simulation call.
const ACTIONS_PER_CALL: usize = 50;

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
    let (permissions, roles) = tokio::join!(permissions(ctx, &principal), service_linked_roles(ctx));
    vec![who, permissions, roles]
}

/// Simulates every action the stack's kinds need for the caller, 50 actions a call, all at once (on
/// any resource: conditions that need a request's context are not evaluated).
async fn permissions(ctx: &Ctx, principal: &str) -> Check {
    const NAME: &str = "permissions";
    if principal.ends_with(":root") {
        return Check::warning(NAME, "the account's root user may do anything", "use a role or an IAM user, not root");
    }
    let wanted: Vec<&str> =
        actions(crate::kinds::permissions().into_iter().filter(|p| p.applies.is_none_or(|f| f(&ctx.stack))));
    let asked = futures_util::future::join_all(wanted.chunks(ACTIONS_PER_CALL).map(|c| simulate(ctx, principal, c)));
    let mut denied = Vec::new();
    for answer in asked.await {
        match answer {
            Ok(d) => denied.extend(d),
            Err(e) => return Check::not_checked(NAME, &e),
        }
    }
    if denied.is_empty() {
        return Check::passed(NAME, format!("{principal} may make all {} calls the stack needs", wanted.len()));
    }
    Check::failed(
        NAME,
        format!("{principal} may not call {}", denied.join(", ")),
        "grant them (the deploy role `provisioner ci-role` makes has all of them), or run as a principal that has them",
    )
}

/// The actions of `chunk` the caller is denied.
async fn simulate(ctx: &Ctx, principal: &str, chunk: &[&str]) -> Result<Vec<String>, Error> {
    let mut denied = Vec::new();
    let mut marker = None;
    loop {
        let out = ctx
            .clients
            .iam
            .simulate_principal_policy()
            .policy_source_arn(principal)
            .set_action_names(Some(chunk.iter().map(|a| (*a).to_owned()).collect()))
            .set_marker(marker)
            .customize()
            // Simulation is optional: an account or emulator that does not answer is not retried.
            .config_override(
                aws_sdk_iam::config::Builder::default()
                    .retry_config(aws_smithy_types::retry::RetryConfig::standard().with_max_attempts(1)),
            )
            .send()
            .await
            .ctx("simulate the policies of", principal)?;
        denied.extend(
            out.evaluation_results()
                .iter()
                .filter(|r| r.eval_decision() != &PolicyEvaluationDecisionType::Allowed)
                .map(|r| r.eval_action_name().to_owned()),
        );
        marker = out.marker().filter(|_| out.is_truncated()).map(str::to_owned);
        if marker.is_none() {
            return Ok(denied);
        }
    }
}

async fn service_linked_roles(ctx: &Ctx) -> Check {
    const NAME: &str = "service-linked roles";
    let read = |role: &'static str| async move {
        let found = ctx.clients.iam.get_role().role_name(role).send().await.ctx("read role", role);
        (role, absent(found, &["NoSuchEntity"]))
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
