//! What every tool walks over the one list of resource kinds (`resources::KINDS`, each kind's
//! `Kind` declared once in its own module): the permissions they need, the nouns of their plan
//! rows, the names they derive, the teardown (`down`: every kind as soon as what uses it is gone),
//! what the deploy role keeps, and the sweep for leftovers. The tests hold every plan row, the
//! census and the tag sweep to the list, so a kind that is not registered fails a test that
//! names it.
//!
//! The sweep also asks the Resource Groups Tagging API for everything carrying the stack's
//! ownership tag: a resource of a type no kind claims is reported as a leftover too.

use crate::error::{AwsContext, Error};
use crate::reconcile::kind::{Down, Kind};
use crate::reconcile::permission::{Permission, Scope};
use crate::reconcile::{Ctx, Noun, Plan};
use crate::resources::KINDS;

/// What the tag sweep itself needs.
const SWEEP: &[Permission] = &[Permission::new(&["tag:GetResources"], Scope::Any)];

/// Who declares which permissions: every kind (by its name; the alias's are Route 53's, which
/// the certificate uses too), the lease, the pre-flight checks, the sweep, and what the deploy
/// role is denied (`denied`): what the CI deploy role is made of, by source.
pub fn permission_sources() -> Vec<(&'static str, &'static [Permission])> {
    KINDS
        .iter()
        .map(|k| (k.name, k.permissions))
        .chain([
            ("lease", crate::lease::PERMISSIONS),
            ("verify", crate::verify::permissions::PERMISSIONS),
            ("sweep", SWEEP),
            ("denied", crate::resources::iam::deploy_role::DENIED),
        ])
        .collect()
}

/// Every permission of `permission_sources`, in that order.
pub fn permissions() -> Vec<&'static Permission> {
    permission_sources().into_iter().flat_map(|(_, p)| p).collect()
}

/// Every noun a plan row can carry.
pub fn nouns() -> impl Iterator<Item = Noun> {
    KINDS.iter().flat_map(|k| k.nouns.iter().copied())
}

/// Every name the stack's kinds derive, in `KINDS`' dependency order (the reverse of teardown):
/// `(noun, name)`.
pub fn derived_names(stack: &stack::Stack) -> Vec<(Noun, String)> {
    KINDS.iter().rev().flat_map(|k| (k.derived_names)(stack)).collect()
}

/// Checks (in debug builds, so in every test) that each row of a plan names a registered kind's
/// noun: a kind left out of `KINDS` fails the first test that plans it, naming the noun.
pub fn assert_registered(plan: &Plan) {
    for row in &plan.resources {
        debug_assert!(
            nouns().chain(crate::resources::iam::deploy_role::NOUNS.iter().copied()).any(|n| n == row.kind),
            "plan noun {:?} belongs to no kind in KINDS (provisioner/src/resources/mod.rs): register its kind there",
            row.kind
        );
    }
}

/// Whether the CI deploy role leaves this kind in place on `down`: what it cannot make again,
/// because making it takes a permission only an administrator has (`administrators_only`).
pub fn kept_by_deploy_role(kind: &Kind) -> bool {
    kind.permissions.iter().any(|p| !p.deploy_role)
}

/// What the CI deploy role's `down` keeps for the next deploy (`kept_by_deploy_role`), one line
/// each; nothing when the caller is not the deploy role.
pub async fn kept(ctx: &Ctx) -> Result<Vec<String>, Error> {
    if !crate::resources::iam::run_by_deploy_role(ctx).await? {
        return Ok(Vec::new());
    }
    let mut kept = Vec::new();
    for kind in KINDS.iter().filter(|k| kept_by_deploy_role(k)) {
        kept.extend((kind.leftovers)(ctx).await?.into_iter().map(|item| {
            format!(
                "{item} (only an administrator may make it again, so the deploy role keeps it for the next deploy; an \
                 administrator's `down` deletes it)"
            )
        }));
    }
    Ok(kept)
}

/// Deletes every kind, each as soon as the kinds it waits for (`deleted_after`) are gone (Plan
/// mode lists what would go, every kind at once). The plan lists kinds in `KINDS` order whatever
/// finished first; the first error ends the teardown once what is already running has finished.
/// Run by the CI deploy role, the kinds it could not make again are left (`kept`).
pub async fn teardown(ctx: &Ctx, purge: bool) -> Result<Plan, Error> {
    let down = Down { purge };
    let mut plans: Vec<Option<Plan>> = vec![None; KINDS.len()];
    if crate::resources::iam::run_by_deploy_role(ctx).await? {
        for (i, kind) in KINDS.iter().enumerate() {
            if kept_by_deploy_role(kind) {
                plans[i] = Some(Plan::default());
            }
        }
    }
    let mut started: Vec<bool> = plans.iter().map(Option::is_some).collect();
    let mut running = tokio::task::JoinSet::new();
    let mut failed = None;
    loop {
        for (i, kind) in KINDS.iter().enumerate() {
            // A plan deletes nothing: every kind is listed at once.
            let ready = !ctx.applying() || kind.deleted_after.iter().all(|name| plans[position(name)].is_some());
            if failed.is_none() && !started[i] && ready {
                started[i] = true;
                let (ctx, down) = (ctx.clone(), down.clone());
                running.spawn(async move {
                    let mut plan = Plan::default();
                    let result = (kind.teardown)(&ctx, &mut plan, &down).await;
                    (i, plan, result)
                });
            }
        }
        let Some(finished) = running.join_next().await else { break };
        let (i, plan, result) = finished.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
        match result {
            Ok(()) => plans[i] = Some(plan),
            Err(e) => {
                failed.get_or_insert(e);
            }
        }
    }
    if let Some(e) = failed {
        return Err(e);
    }
    let mut plan = Plan::default();
    plans.into_iter().flatten().for_each(|p| plan.extend(p));
    assert_registered(&plan);
    Ok(plan)
}

/// Where the kind named `name` stands in `KINDS` (the names are checked by a test).
fn position(name: &str) -> usize {
    KINDS.iter().position(|k| k.name == name).unwrap_or_else(|| panic!("deleted_after names no kind {name:?}"))
}

/// Anything of the stack still there after a teardown: each kind's own leftovers, then whatever
/// else carries the stack's tag in a type no kind claims.
pub async fn sweep(ctx: &Ctx) -> Result<Vec<String>, Error> {
    // Every kind's own look at once (but for what the deploy role keeps); reported in `KINDS` order.
    let by_deploy_role = crate::resources::iam::run_by_deploy_role(ctx).await?;
    let mut looking = tokio::task::JoinSet::new();
    for (i, kind) in KINDS.iter().enumerate().filter(|(_, k)| !(by_deploy_role && kept_by_deploy_role(k))) {
        let ctx = ctx.clone();
        looking.spawn(async move { (i, (kind.leftovers)(&ctx).await) });
    }
    let mut found: Vec<(usize, Vec<String>)> = Vec::new();
    while let Some(finished) = looking.join_next().await {
        let (i, left) = finished.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
        found.push((i, left?));
    }
    found.sort_by_key(|(i, _)| *i);
    let mut left: Vec<String> = found.into_iter().flat_map(|(_, l)| l).collect();
    let stack = &ctx.stack.name;
    left.extend(tagged(ctx).await?.into_iter().filter(|arn| !claimed(arn, stack)).map(|arn| format!("{arn} (tagged)")));
    Ok(left)
}

/// Every ARN the Resource Groups Tagging API lists with the stack's ownership tag, every page.
async fn tagged(ctx: &Ctx) -> Result<Vec<String>, Error> {
    let filter = aws_sdk_resourcegroupstagging::types::TagFilter::builder()
        .key(stack::OWNERSHIP_TAG)
        .values(&ctx.stack.name)
        .build();
    let mut arns = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = ctx
            .clients
            .tagging
            .get_resources()
            .tag_filters(filter.clone())
            .set_pagination_token(token.take())
            .send()
            .await
            .ctx("list resources tagged with the stack", &ctx.stack.name)?;
        arns.extend(page.resource_tag_mapping_list().iter().filter_map(|m| m.resource_arn().map(str::to_owned)));
        match page.pagination_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_owned()),
            _ => return Ok(arns),
        }
    }
}

/// `service:type` of an ARN (`arn:aws:ec2:REGION:ACCOUNT:vpc/vpc-1` → `ec2:vpc`; an S3
/// bucket's `arn:aws:s3:::name` → `s3:`).
fn arn_type(arn: &str) -> Option<String> {
    let mut parts = arn.splitn(6, ':');
    let (_, _, service, _, _, resource) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let kind = if service == "s3" { "" } else { resource.split(['/', ':']).next().unwrap_or_default() };
    Some(format!("{service}:{kind}"))
}

/// Whether a registered kind owns resources of this ARN's type (and so reports them itself).
fn claimed(arn: &str, stack: &str) -> bool {
    arn_type(arn)
        .is_some_and(|t| KINDS.iter().flat_map(|k| k.arn_types).any(|claim| claim.replace("{stack}", stack) == t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deploy_role_keeps_what_it_could_not_make_again() {
        let kept: Vec<&str> = KINDS.iter().filter(|k| kept_by_deploy_role(k)).map(|k| k.name).collect();
        assert_eq!(kept, ["error-budget", "sns-topic", "log-bucket", "secret"]);
    }

    #[test]
    fn names_and_nouns_are_unique() {
        let mut names: Vec<&str> = KINDS.iter().map(|k| k.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), KINDS.len(), "two kinds share a name");
        let all: Vec<Noun> = nouns().collect();
        let mut unique = all.clone();
        unique.sort_unstable();
        unique.dedup();
        // A task definition is torn down by the service (its revisions) and the load test (the
        // workers'): the one noun two kinds share.
        assert_eq!(all.len() - unique.len(), 1, "{all:?}");
    }

    #[test]
    fn what_a_kind_waits_for_in_teardown_exists_and_comes_before_it_in_kinds() {
        // KINDS stays a valid one-at-a-time teardown order, and no wait can be circular.
        for (i, k) in KINDS.iter().enumerate() {
            for name in k.deleted_after {
                let j = KINDS.iter().position(|other| other.name == *name);
                assert!(j.is_some(), "{}.deleted_after names no kind: {name:?}", k.name);
                assert!(j < Some(i), "{} waits for {name}, which comes after it in KINDS", k.name);
            }
        }
    }

    #[test]
    fn no_permission_is_declared_twice() {
        // The deploy role's policy has a size limit; a kind's permissions reach it once.
        let all = permissions();
        for (i, p) in all.iter().enumerate() {
            assert!(!all[..i].iter().any(|q| std::ptr::eq(*q, *p)), "{:?} is declared twice", p.actions);
        }
    }

    #[test]
    fn every_kind_declares_what_it_owns() {
        for k in KINDS {
            assert!(!k.nouns.is_empty(), "{} has no plan nouns", k.name);
            assert!(!k.arn_types.is_empty() || k.name == "dns-alias", "{} claims no ARN type", k.name);
        }
    }

    /// AWS's limit on the name of a resource of this plan noun, as its kind declares it.
    fn name_limit(noun: Noun) -> Option<&'static stack::limits::Limit> {
        KINDS.iter().flat_map(|k| k.name_limits).find(|(n, _)| *n == noun).map(|(_, limit)| *limit)
    }

    #[test]
    fn every_kind_declared_in_a_module_is_in_kinds() {
        // A kind left out of KINDS is neither made, torn down, swept nor given permissions.
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/src/resources");
        let mut declared = Vec::new();
        let mut dirs = vec![std::path::PathBuf::from(root)];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).expect("resources").map(|e| e.expect("entry").path()) {
                if entry.is_dir() {
                    dirs.push(entry);
                    continue;
                }
                let text = std::fs::read_to_string(&entry).expect("module");
                let Some(at) = text.find("pub const KIND: Kind = Kind {") else { continue };
                let name = text[at..].lines().nth(1).and_then(|l| l.split('"').nth(1)).expect("name first");
                declared.push((name.to_owned(), entry.display().to_string()));
            }
        }
        for (name, file) in &declared {
            assert!(
                KINDS.iter().any(|k| k.name == *name),
                "{file} declares the kind {name:?}, which is not in KINDS: add its KIND to provisioner/src/resources/mod.rs"
            );
        }
        assert_eq!(declared.len(), KINDS.len(), "{declared:?}");
    }

    #[test]
    fn every_terraform_type_is_the_providers_spelling() {
        for k in KINDS {
            for t in k.terraform_types {
                assert!(
                    t.starts_with("aws_")
                        && t.chars().all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit()),
                    "{}: {t}",
                    k.name
                );
            }
            assert!(k.node.is_none() || !k.terraform_types.is_empty(), "{} adopts no Terraform type", k.name);
        }
    }

    #[test]
    fn every_name_the_longest_stack_derives_fits_awss_limit_on_it() {
        let example = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../stack.yaml")).expect("stack");
        let longest = example.replacen("name: konnichiwa", "name: abcdefghij-klmnopqrs", 1);
        let mut s =
            stack::Stack::from_yaml(&longest, std::path::Path::new("stack.yaml")).expect("the longest name is valid");
        // With every name a setting adds (the load balancer role of a strategy that shifts traffic).
        s.service.deployment.strategy = stack::Strategy::Canary;
        let mut checked = 0;
        for (noun, name) in derived_names(&s) {
            let Some(limit) = name_limit(noun) else { continue };
            let name = name.replace("<account>", "123456789012");
            assert!(name.chars().count() <= limit.max, "{noun} {name}: {}", limit.describe());
            checked += 1;
        }
        assert!(checked >= 10, "{checked} names checked");
        for (noun, _) in KINDS.iter().flat_map(|k| k.name_limits) {
            assert!(KINDS.iter().any(|k| k.nouns.contains(noun)), "a name limit for {noun}, which no kind makes");
        }
    }

    #[test]
    fn arn_types_are_read_as_the_sweep_needs() {
        assert_eq!(arn_type("arn:aws:ec2:ap-northeast-1:1:vpc/vpc-1").as_deref(), Some("ec2:vpc"));
        assert_eq!(arn_type("arn:aws:s3:::b-alb-logs-1").as_deref(), Some("s3:"));
        assert_eq!(arn_type("arn:aws:logs:r:1:log-group:/ecs/s").as_deref(), Some("logs:log-group"));
        assert_eq!(
            arn_type("arn:aws:elasticloadbalancing:r:1:loadbalancer/app/s-alb/1").as_deref(),
            Some("elasticloadbalancing:loadbalancer")
        );
        assert_eq!(
            arn_type("arn:aws:autoscaling:r:1:autoScalingGroup:u:autoScalingGroupName/s").as_deref(),
            Some("autoscaling:autoScalingGroup")
        );
        assert!(claimed("arn:aws:ecs:r:1:cluster/s", "s"));
        assert!(!claimed("arn:aws:sns:r:1:pager", "s"), "a kind nobody registered is a leftover");
        // The stack's own topic by its name, and no other topic.
        assert!(claimed("arn:aws:sns:r:1:s-alarms", "s"));
        assert!(!claimed("arn:aws:sns:r:1:t-alarms", "s"), "another stack's topic is not this one's");
        assert_eq!(arn_type("not an arn"), None);
    }
}
