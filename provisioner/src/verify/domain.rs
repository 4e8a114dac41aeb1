//! The service's own domain (`load_balancer.https.domain`): a public Route 53 hosted zone holds
//! it, so the certificate can be validated and the alias written.

use super::Check;
use crate::dns;
use crate::error::Error;
use crate::reconcile::Ctx;

pub async fn checks(ctx: &Ctx) -> Vec<Check> {
    let Some(https) = ctx.stack.load_balancer.https.as_ref() else { return Vec::new() };
    let Some(domain) = https.domain.as_deref() else { return Vec::new() };
    vec![zone(ctx, https, domain).await]
}

async fn zone(ctx: &Ctx, https: &stack::Https, domain: &str) -> Check {
    const NAME: &str = "hosted zone";
    match dns::find_zone(ctx, https, domain).await {
        Ok(zone) => {
            let servers = dns::name_servers(ctx, &zone).await;
            Check::passed(
                NAME,
                format!(
                    "{} ({}) is public and holds {domain}; its name servers: {}",
                    zone.name,
                    zone.id,
                    servers.join(", ")
                ),
            )
        }
        Err(e @ Error::Refused(_)) => Check::failed(
            NAME,
            format!("{e:#}"),
            "create the zone or name it in load_balancer.https.hosted_zone (README \"Your own domain\")",
        ),
        Err(e) => Check::not_checked(NAME, &e),
    }
}
