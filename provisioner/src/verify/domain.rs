//! The service's own domain (`load_balancer.https.domain`): a public Route 53 hosted zone holds
//! it; the internet's resolvers are sent to that zone's name servers (a zone recreated without
//! updating the registrar is the usual miss: the certificate never validates); and the domain's
//! CAA records, if any, let Amazon issue its certificate.

use super::Check;
use super::resolver::{Found, Resolver};
use crate::dns::{self, Zone};
use crate::error::Error;
use crate::reconcile::Ctx;

/// The CA names with which a CAA `issue` record lets ACM issue a certificate.
const AMAZON_CAS: &[&str] = &["amazon.com", "amazontrust.com", "awstrust.com", "amazonaws.com"];

pub async fn checks(ctx: &Ctx) -> Vec<Check> {
    let Some(https) = ctx.stack.load_balancer.https.as_ref() else { return Vec::new() };
    let Some(domain) = https.domain.as_deref() else { return Vec::new() };
    let zone = match dns::find_zone(ctx, https, domain).await {
        Ok(zone) => zone,
        Err(e @ Error::Refused(_)) => {
            let fix = "create the zone or name it in load_balancer.https.hosted_zone (README \"Your own domain\")";
            return vec![Check::failed("hosted zone", format!("{e:#}"), fix)];
        }
        Err(e) => return vec![Check::not_checked("hosted zone", &e)],
    };
    let mut servers: Vec<String> = dns::name_servers(ctx, &zone).await.iter().map(|s| dns::normalize(s)).collect();
    servers.sort();
    let found = Check::passed("hosted zone", format!("{} ({}) is public and holds {domain}", zone.name, zone.id));
    let resolver = match Resolver::system() {
        Ok(r) => r,
        Err(e) => {
            let e = Error::Refused(format!("no DNS resolver to ask: {e}"));
            return vec![found, Check::not_checked("delegation", &e), Check::not_checked("caa", &e)];
        }
    };
    let (delegated, caa) = tokio::join!(delegation(&resolver, &zone, &servers), caa(&resolver, domain));
    vec![found, delegated, caa]
}

/// The name servers a resolver answers for the zone are the Route 53 zone's.
async fn delegation(resolver: &Resolver, zone: &Zone, route53: &[String]) -> Check {
    const NAME: &str = "delegation";
    let fix = format!(
        "at your registrar (or in the parent zone), set the name servers of {} to the Route 53 zone's: {}",
        zone.name,
        route53.join(", ")
    );
    match resolver.name_servers(&zone.name).await {
        Ok((Found::Records(ns), _)) if !ns.is_empty() && ns == route53 => {
            Check::passed(NAME, format!("resolvers are sent to the zone's {} name servers", ns.len()))
        }
        // Resolvers keep an earlier set for up to its TTL (the parent's NS records, set by the
        // registrar, usually for up to two days): after a zone is made again this is what they
        // answer for a while, though the registrar points at the new zone. A warning, not a stop.
        Ok((Found::Records(ns), ttl)) if !ns.is_empty() => Check::warning(
            NAME,
            format!(
                "resolvers are sent to {} for {}, not to this zone's name servers; a resolver keeps an earlier set \
                 for up to its TTL ({}; at the parent zone often up to two days), so after a recent change this \
                 clears by itself",
                ns.join(", "),
                zone.name,
                ttl.map_or_else(|| "not given".to_owned(), |t| format!("{t} s left in this resolver's cache"))
            ),
            format!(
                "{fix}, unless you did so recently: then wait for the TTL (the certificate validates once they match)"
            ),
        ),
        Ok(_) => {
            Check::failed(NAME, format!("{} is not delegated: resolvers know no name servers for it", zone.name), fix)
        }
        Err(e) => Check::not_checked(NAME, &Error::Refused(e)),
    }
}

/// The closest CAA records to the domain (RFC 8659 climbs to the parents), if any, allow Amazon.
async fn caa(resolver: &Resolver, domain: &str) -> Check {
    const NAME: &str = "caa";
    let labels: Vec<&str> = domain.trim_end_matches('.').split('.').collect();
    // Up to, not including, the top-level domain.
    for start in 0..labels.len().saturating_sub(1) {
        let name = labels[start..].join(".");
        let records = match resolver.caa(&name).await {
            Ok(Found::Records(r)) => r,
            Ok(Found::NoSuchName) => continue,
            Err(e) => return Check::not_checked(NAME, &Error::Refused(e)),
        };
        let issuers: Vec<&str> = records
            .iter()
            .filter_map(|r| r.strip_prefix("issue "))
            .map(|v| v.split(';').next().unwrap_or_default().trim())
            .collect();
        if records.is_empty() {
            continue;
        }
        if issuers.is_empty() || issuers.iter().any(|i| AMAZON_CAS.contains(i)) {
            return Check::passed(NAME, format!("the CAA records of {name} let Amazon issue ({})", records.join("; ")));
        }
        return Check::failed(
            NAME,
            format!(
                "the CAA records of {name} ({}) do not let Amazon issue: ACM cannot issue the certificate",
                records.join("; ")
            ),
            format!("add a CAA record at {name}: 0 issue \"amazon.com\""),
        );
    }
    Check::passed(NAME, format!("no CAA records for {domain} or its parents: any CA may issue"))
}
