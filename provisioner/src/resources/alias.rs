//! The Route 53 alias record from the service's domain to the load balancer (`A`; the load
//! balancer is IPv4 only, so no `AAAA`), written with the load balancer's own hosted zone and
//! `dualstack.` name as AWS recommends, and health evaluation on. An `A` record at the domain that
//! is not an alias to the stack's load balancer is someone else's: it is never overwritten.

use aws_sdk_route53::types::ChangeAction;

use crate::dns::{self, Record, RecordValue, Zone};
use crate::error::Error;
use crate::reconcile::Noun;
use crate::reconcile::kind::{Kind, Making, Node, Reconciles};
use crate::reconcile::{Change, Ctx, FieldDiff, Id, Plan, Step};
use crate::resources::certificate::CertificateOutputs;
use crate::resources::load_balancer::LoadBalancerOutputs;
use crate::resources::load_balancer::lb_name;
/// The nouns of this kind's plan rows.
pub const DNS_ALIAS: Noun = Noun::new("dns-alias");

/// The load balancer the domain points at: its DNS name and canonical hosted zone.
#[derive(Debug, Clone)]
pub struct Target {
    pub dns_name: Id,
    pub zone_id: Id,
}

/// The record the domain must have, when the load balancer exists.
pub fn desired(domain: &str, target: &Target) -> Option<Record> {
    let (Some(dns_name), Some(zone)) = (target.dns_name.known(), target.zone_id.known()) else { return None };
    Some(Record {
        name: domain.to_owned(),
        kind: "A".into(),
        value: RecordValue::Alias {
            zone: zone.to_owned(),
            dns_name: dns::normalize(&format!("dualstack.{dns_name}")),
            evaluate_health: true,
        },
    })
}

/// True when `record` is an alias to the stack's load balancer (this one or one it replaced):
/// ELB names are `<name>-<id>.<region>.elb.amazonaws.com`.
pub fn points_at_ours(stack: &stack::Stack, record: &Record) -> bool {
    let RecordValue::Alias { dns_name, .. } = &record.value else { return false };
    let host = dns_name.trim_start_matches("dualstack.");
    let lb = lb_name(stack).to_ascii_lowercase();
    host.strip_prefix(&lb).is_some_and(|rest| rest.starts_with('-')) && host.ends_with(".elb.amazonaws.com")
}

pub fn diff(
    stack: &stack::Stack,
    domain: &str,
    want: Option<&Record>,
    observed: Option<&Record>,
) -> Result<Change, Error> {
    let shown = |r: Option<&Record>| r.map(|r| r.value.to_string());
    let pending = || Id::Pending(format!("alias to load balancer {}", lb_name(stack))).to_string();
    match observed {
        None => Ok(Change::create(vec![FieldDiff::new("A", None, Some(shown(want).unwrap_or_else(pending)))])),
        Some(have) if !points_at_ours(stack, have) => Err(Error::Refused(format!(
            "{domain} already has an A record ({}) that does not point at this stack's load balancer: it was left \
             untouched and this run stopped there. Delete it if it is a leftover, or choose another \
             load_balancer.https.domain",
            have.value
        ))),
        Some(have) => Ok(match want {
            Some(w) if w != have => {
                Change::update(vec![FieldDiff::new("A", Some(have.value.to_string()), Some(w.value.to_string()))])
            }
            _ => Change::no_op(),
        }),
    }
}

/// Points the domain at the load balancer; the plan shows a missing or changed alias.
pub async fn reconcile(ctx: &Ctx, plan: &mut Plan, zone: &Zone, domain: &str, target: &Target) -> Result<(), Error> {
    let want = desired(domain, target);
    let observed = dns::observe(ctx, zone, domain, "A").await?;
    let change = diff(&ctx.stack, domain, want.as_ref(), observed.as_ref())?;
    Step::new(ctx, DNS_ALIAS, format!("{domain} A"))
        .converge_observed(
            plan,
            observed,
            async || dns::observe(ctx, zone, domain, "A").await,
            |_| change.clone(),
            async |_: &Change, _: Option<&Record>| {
                let want =
                    want.as_ref().ok_or_else(|| Error::NotYetKnown(format!("the load balancer {domain} points at")))?;
                dns::change(ctx, zone, ChangeAction::Upsert, want).await?;
                ctx.progress(format!("{domain} points at the load balancer"));
                Ok(())
            },
        )
        .await?;
    Ok(())
}

/// The domain's `A` record, with HTTPS on a domain.
fn derived_names(stack: &stack::Stack) -> Vec<(Noun, String)> {
    let domain = stack.load_balancer.https.as_ref().and_then(|h| h.domain.as_ref());
    domain.map(|d| (DNS_ALIAS, format!("{d} A"))).into_iter().collect()
}

/// This kind in the one list of kinds (`resources::KINDS`).
pub const KIND: Kind = Kind {
    name: "dns-alias",
    nouns: &[DNS_ALIAS],
    permissions: crate::dns::PERMISSIONS,
    arn_types: &[],
    deleted_after: &[],
    derived_names,
    name_limits: &[],
    terraform_types: &["aws_route53_record"],
    teardown: |ctx, plan, down| Box::pin(teardown(ctx, plan, down)),
    leftovers: |ctx| Box::pin(leftovers(ctx)),
    node: Some(Node::of::<Alias>()),
};

/// The domain's alias points at the load balancer, in the zone the certificate was validated in.
pub struct Alias;

/// What the alias gives: nothing but that it is done.
#[derive(Debug, Clone)]
pub struct Aliased;

impl Reconciles for Alias {
    type Needs = (LoadBalancerOutputs, Option<CertificateOutputs>);
    type Seen = ();
    type Gives = Aliased;

    fn see(_: &Ctx) -> Making<'_, ()> {
        Box::pin(async { Ok(()) })
    }

    fn reconcile<'a>(ctx: &'a Ctx, plan: &'a mut Plan, (lb, certificate): Self::Needs, (): ()) -> Making<'a, Aliased> {
        Box::pin(async move {
            let zone = certificate.as_ref().and_then(|c| c.zone.as_ref());
            if let (Some(domain), Some(zone)) = (crate::dns::domain(&ctx.stack), zone) {
                let target = Target { dns_name: lb.dns_name.clone(), zone_id: lb.hosted_zone_id.clone() };
                reconcile(ctx, plan, zone, domain, &target).await?;
            }
            Ok(Aliased)
        })
    }
}

/// Deletes the alias when it is ours (it points at the stack's load balancer).
pub async fn teardown(ctx: &Ctx, plan: &mut Plan, _: &crate::reconcile::kind::Down) -> Result<(), Error> {
    let Some(https) = &ctx.stack.load_balancer.https else { return Ok(()) };
    let Some(domain) = &https.domain else { return Ok(()) };
    let zone = match dns::find_zone(ctx, https, domain).await {
        Ok(z) => z,
        // No zone, no record of ours in it.
        Err(Error::Refused(_)) => return Ok(()),
        Err(e) => return Err(e),
    };
    let Some(have) = dns::observe(ctx, &zone, domain, "A").await? else { return Ok(()) };
    if !points_at_ours(&ctx.stack, &have) {
        ctx.progress(format!("left {domain} A alone: it does not point at this stack's load balancer"));
        return Ok(());
    }
    if ctx.applying() {
        dns::change(ctx, &zone, ChangeAction::Delete, &have).await?;
        ctx.progress(format!("deleted {domain} A from zone {}", zone.name));
    }
    plan.push(DNS_ALIAS, format!("{domain} A"), None, Change::delete());
    Ok(())
}

/// The alias, if it is still ours after a teardown.
pub async fn leftovers(ctx: &Ctx) -> Result<Vec<String>, Error> {
    let Some(https) = &ctx.stack.load_balancer.https else { return Ok(Vec::new()) };
    let Some(domain) = &https.domain else { return Ok(Vec::new()) };
    let Ok(zone) = dns::find_zone(ctx, https, domain).await else { return Ok(Vec::new()) };
    Ok(match dns::observe(ctx, &zone, domain, "A").await? {
        Some(r) if points_at_ours(&ctx.stack, &r) => vec![format!("record {domain} A in zone {}", zone.name)],
        _ => Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alias(to: &str) -> Record {
        Record {
            name: "api.example.com".into(),
            kind: "A".into(),
            value: RecordValue::Alias { zone: "Z1".into(), dns_name: to.into(), evaluate_health: true },
        }
    }

    #[test]
    fn only_an_alias_to_our_load_balancer_is_ours() {
        let s = crate::resources::test_stack();
        assert!(points_at_ours(&s, &alias("dualstack.konnichiwa-alb-123.ap-northeast-1.elb.amazonaws.com")));
        assert!(!points_at_ours(&s, &alias("dualstack.konnichiwa-alb2-1.ap-northeast-1.elb.amazonaws.com")));
        assert!(!points_at_ours(&s, &alias("d111.cloudfront.net")));
        let plain = Record {
            name: "api.example.com".into(),
            kind: "A".into(),
            value: RecordValue::Values { ttl: 60, values: vec!["192.0.2.1".into()] },
        };
        assert!(!points_at_ours(&s, &plain));
        let e = diff(&s, "api.example.com", None, Some(&plain)).expect_err("foreign");
        assert!(e.to_string().contains("left untouched"), "{e}");
    }

    #[test]
    fn a_replaced_load_balancer_moves_the_alias() {
        let s = crate::resources::test_stack();
        let target = Target {
            dns_name: Id::Known("konnichiwa-alb-2.ap-northeast-1.elb.amazonaws.com".into()),
            zone_id: Id::Known("Z14GRHDCWA56QT".into()),
        };
        let want = desired("api.example.com", &target).expect("known");
        let old = alias("dualstack.konnichiwa-alb-1.ap-northeast-1.elb.amazonaws.com");
        let c = diff(&s, "api.example.com", Some(&want), Some(&old)).expect("ours");
        assert_eq!(c.action, crate::reconcile::Action::Update);
        assert!(diff(&s, "api.example.com", Some(&want), Some(&want)).expect("ours").is_no_op());
    }
}
