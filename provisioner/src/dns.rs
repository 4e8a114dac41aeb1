//! Route 53 for the service's domain: the public hosted zone that holds it, reading and writing
//! the records the stack owns there (its certificate's validation CNAME, the alias from the domain
//! to the load balancer), and waiting until a change has reached every Route 53 name server.
//!
//! Records carry no tags. A record is the stack's when it is exactly what the stack writes: the
//! validation CNAME ACM gave the stack's certificate, or an alias to the stack's load balancer
//! (matched by the load balancer's name, so an alias left by a replaced load balancer is still
//! ours). Any other record at those names is someone else's: it is never changed or deleted, and
//! the run stops saying so. Other names in the zone are never written.

use aws_sdk_route53::types::{
    AliasTarget, Change as RecordChange, ChangeAction, ChangeBatch, ChangeStatus, ResourceRecord, ResourceRecordSet,
    RrType,
};

use crate::error::{AwsContext, Error};
use crate::reconcile::Ctx;
use crate::reconcile::permission::{Permission, PolicyContext, Scope};
use crate::wait::{Wait, not_yet};

/// What the stack calls in Route 53: zone lookups anywhere (they take no resource), reads in its
/// zone, and changes in its zone only to its own two records: the domain's alias (`A`) and the
/// `CNAME` ACM validates the certificate with, by its exact name — not `_anything.<domain>`,
/// which at a zone apex would reach `_acme-challenge` or `_dmarc`.
pub const PERMISSIONS: &[Permission] = &[
    Permission::new(&["route53:ListHostedZonesByName", "route53:GetChange"], Scope::Any).when(has_domain),
    Permission::new(&["route53:GetHostedZone", "route53:ListResourceRecordSets"], Scope::Own(zone_arns))
        .when(has_domain),
    Permission::new(
        &["route53:ChangeResourceRecordSets"],
        Scope::ZoneRecords {
            zone: zone_arns,
            names: |c| domain(c.stack).map(normalize).into_iter().collect(),
            types: &["A"],
        },
    )
    .when(has_domain),
    Permission::new(
        &["route53:ChangeResourceRecordSets"],
        Scope::ZoneRecords {
            zone: zone_arns,
            names: |c| c.validation_record.iter().map(|n| normalize(n)).collect(),
            types: &["CNAME"],
        },
    )
    .when(has_domain),
];

fn has_domain(stack: &stack::Stack) -> bool {
    domain(stack).is_some()
}

fn zone_arns(c: &PolicyContext) -> Vec<String> {
    c.hosted_zone_id.iter().map(|id| format!("arn:{}:route53:::hostedzone/{id}", c.partition)).collect()
}

/// The service's own domain, when stack.yaml sets one.
pub fn domain(stack: &stack::Stack) -> Option<&str> {
    stack.load_balancer.https.as_ref().and_then(|h| h.domain.as_deref())
}

/// A public hosted zone: its id (without `/hostedzone/`) and name (without the trailing dot).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    pub id: String,
    pub name: String,
}

/// The names a zone for `domain` can have, longest first (`api.example.com`, `example.com`).
pub fn zone_candidates(domain: &str) -> Vec<&str> {
    let mut out = vec![domain];
    let mut rest = domain;
    while let Some((_, parent)) = rest.split_once('.') {
        if parent.contains('.') {
            out.push(parent);
        }
        rest = parent;
    }
    out
}

/// The public hosted zone that holds `domain`: the one stack.yaml names, else the longest public
/// zone whose name is a suffix of the domain.
pub async fn find_zone(ctx: &Ctx, https: &stack::Https, domain: &str) -> Result<Zone, Error> {
    let candidates = match https.zone_name() {
        Some(z) => vec![z],
        None => zone_candidates(domain),
    };
    for name in &candidates {
        let out = ctx
            .clients
            .route53
            .list_hosted_zones_by_name()
            .dns_name(*name)
            .max_items(100)
            .send()
            .await
            .ctx("look up the hosted zone", *name)?;
        // AWS lists zones from that name on, in order; only exact, public ones count.
        let zones: Vec<Zone> = out
            .hosted_zones()
            .iter()
            .filter(|z| normalize(z.name()) == *name && !z.config().is_some_and(|c| c.private_zone()))
            .map(|z| Zone { id: z.id().trim_start_matches("/hostedzone/").to_owned(), name: (*name).to_owned() })
            .collect();
        match zones.as_slice() {
            [] => {}
            [zone] => return Ok(zone.clone()),
            several => {
                let ids: Vec<&str> = several.iter().map(|z| z.id.as_str()).collect();
                return Err(Error::Refused(format!(
                    "{} public hosted zones are named {name} ({}): the internet asks only the one your registrar \
                     delegates to, and the provisioner cannot tell which that is. Delete the others (or compare \
                     `dig +short NS {name}` with each zone's name servers)",
                    several.len(),
                    ids.join(", ")
                )));
            }
        }
    }
    Err(Error::Refused(format!(
        "no Route 53 public hosted zone holds {domain} (looked for {}). Create one for the domain you registered \
         (`aws route53 create-hosted-zone --name {} --caller-reference $(date +%s)`) and give its four name servers \
         to your registrar, or name the zone in load_balancer.https.hosted_zone; README \"Your own domain\"",
        candidates.join(", "),
        candidates.last().copied().unwrap_or(domain),
    )))
}

/// A zone's name servers (what the registrar must list), for error messages.
pub async fn name_servers(ctx: &Ctx, zone: &Zone) -> Vec<String> {
    match ctx.clients.route53.get_hosted_zone().id(&zone.id).send().await {
        Ok(out) => out.delegation_set().map(|d| d.name_servers().to_vec()).unwrap_or_default(),
        Err(_) => Vec::new(),
    }
}

/// A name as Route 53's conditions compare it: lowercase, without the trailing dot.
pub fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// What a record set holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordValue {
    /// Plain values with a TTL (a CNAME's target).
    Values { ttl: i64, values: Vec<String> },
    /// An alias to an AWS resource: its hosted zone and DNS name (normalized).
    Alias { zone: String, dns_name: String, evaluate_health: bool },
}

impl std::fmt::Display for RecordValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Values { ttl, values } => write!(f, "{} (ttl {ttl})", values.join(" ")),
            Self::Alias { dns_name, .. } => write!(f, "alias to {dns_name}"),
        }
    }
}

/// One record set: its name (normalized), type (`A`, `CNAME`) and value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub name: String,
    pub kind: String,
    pub value: RecordValue,
}

impl crate::reconcile::step::Observed for Record {
    fn id(&self) -> &str {
        &self.name
    }
}

/// The record set of `kind` at `name` in `zone`, if there is one.
pub async fn observe(ctx: &Ctx, zone: &Zone, name: &str, kind: &str) -> Result<Option<Record>, Error> {
    let out = ctx
        .clients
        .route53
        .list_resource_record_sets()
        .hosted_zone_id(&zone.id)
        .start_record_name(name)
        .start_record_type(RrType::from(kind))
        .max_items(1)
        .send()
        .await
        .ctx("read the records of", format!("{name} in zone {}", zone.name))?;
    let Some(set) = out.resource_record_sets().first() else { return Ok(None) };
    // The listing starts at (name, type) and runs on: the first set may be a later one.
    if normalize(set.name()) != normalize(name) || set.r#type().as_str() != kind {
        return Ok(None);
    }
    let value = match set.alias_target() {
        Some(a) => RecordValue::Alias {
            zone: a.hosted_zone_id().to_owned(),
            dns_name: normalize(a.dns_name()),
            evaluate_health: a.evaluate_target_health(),
        },
        None => RecordValue::Values {
            ttl: set.ttl().unwrap_or_default(),
            values: set.resource_records().iter().map(|r| r.value().to_owned()).collect(),
        },
    };
    Ok(Some(Record { name: normalize(set.name()), kind: kind.to_owned(), value }))
}

fn built<T>(r: Result<T, aws_sdk_route53::error::BuildError>) -> Result<T, Error> {
    r.map_err(|e| Error::Refused(format!("a Route 53 change: {e}")))
}

fn record_set(record: &Record) -> Result<ResourceRecordSet, Error> {
    let b = ResourceRecordSet::builder().name(&record.name).r#type(RrType::from(record.kind.as_str()));
    let b = match &record.value {
        RecordValue::Values { ttl, values } => {
            let records: Result<Vec<ResourceRecord>, Error> =
                values.iter().map(|v| built(ResourceRecord::builder().value(v).build())).collect();
            b.ttl(*ttl).set_resource_records(Some(records?))
        }
        RecordValue::Alias { zone, dns_name, evaluate_health } => b.alias_target(built(
            AliasTarget::builder()
                .hosted_zone_id(zone)
                .dns_name(dns_name)
                .evaluate_target_health(*evaluate_health)
                .build(),
        )?),
    };
    built(b.build())
}

/// Writes (`Upsert`) or deletes one record set and waits until every Route 53 name server has
/// it. A delete of a record that is already gone is done.
pub async fn change(ctx: &Ctx, zone: &Zone, action: ChangeAction, record: &Record) -> Result<(), Error> {
    let what = format!("{} {} in zone {}", record.name, record.kind, zone.name);
    let batch = built(
        ChangeBatch::builder()
            .comment(format!("konnichiwa stack {}", ctx.stack.name))
            .changes(built(
                RecordChange::builder().action(action.clone()).resource_record_set(record_set(record)?).build(),
            )?)
            .build(),
    )?;
    let sent = ctx
        .clients
        .route53
        .change_resource_record_sets()
        .hosted_zone_id(&zone.id)
        .change_batch(batch)
        .send()
        .await
        .ctx(if action == ChangeAction::Delete { "delete the record" } else { "write the record" }, &what);
    let out = match sent {
        Ok(out) => out,
        // Route 53 refuses to delete what is not there (a retried delete whose answer was lost).
        Err(e) if action == ChangeAction::Delete && e.is_already_done() => return Ok(()),
        Err(e) => return Err(e),
    };
    let Some(info) = out.change_info() else { return Ok(()) };
    if info.status() == &ChangeStatus::Insync {
        return Ok(());
    }
    let id = info.id().to_owned();
    ctx.wait(Wait::Settling(&["Route53.Pending"]), &format!("{what} to reach every Route 53 name server"), || async {
        let out = ctx.clients.route53.get_change().id(&id).send().await.ctx("follow the change of", &what)?;
        match out.change_info().map(|i| i.status()) {
            Some(ChangeStatus::Insync) | None => Ok(()),
            Some(_) => Err(not_yet("Route53.Pending", &what, "the change is PENDING")),
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_are_looked_for_from_the_longest_name() {
        assert_eq!(zone_candidates("api.eu.example.com"), ["api.eu.example.com", "eu.example.com", "example.com"]);
        assert_eq!(zone_candidates("example.com"), ["example.com"]);
    }

    #[test]
    fn names_compare_without_case_or_trailing_dot() {
        assert_eq!(normalize("Api.Example.com."), "api.example.com");
    }
}
