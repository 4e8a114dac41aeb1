//! The application load balancer itself: its attributes (idle timeout, access logs, deletion
//! protection), subnets and security group; observed by name and our tag, created internet-facing.

use std::collections::BTreeMap;

use aws_sdk_elasticloadbalancingv2::types::{
    IpAddressType, LoadBalancerAttribute, LoadBalancerSchemeEnum, LoadBalancerTypeEnum,
};

use crate::error::{AwsContext, Error, absent};
use crate::reconcile::known::all_known;
use crate::reconcile::step::Observed;
use crate::reconcile::{Change, Ctx, FieldDiff, Id, compare, tags};
use crate::wait::Wait;

use super::{elb_tags, tags_of};

#[derive(Debug, Clone, PartialEq)]
pub struct ObservedLb {
    pub arn: String,
    pub dns_name: String,
    pub canonical_zone: String,
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    /// The load balancer's attributes as AWS reports them (key -> value).
    pub attributes: BTreeMap<String, String>,
    pub tags: Vec<(String, String)>,
}

impl Observed for ObservedLb {
    fn id(&self) -> &str {
        &self.arn
    }
}

/// The attributes stack.yaml sets, with AWS's default for each (what an absent one means):
/// (attribute key, wanted value, default).
pub fn desired_attributes(stack: &stack::Stack, log_bucket: Option<&str>) -> Vec<(&'static str, String, &'static str)> {
    let lb = &stack.load_balancer;
    let mut attrs = vec![
        ("idle_timeout.timeout_seconds", lb.idle_timeout.get().as_secs().to_string(), "60"),
        // Requests with header names that are not valid HTTP are dropped, not passed to the app.
        ("routing.http.drop_invalid_header_fields.enabled", "true".to_owned(), "false"),
        ("deletion_protection.enabled", lb.deletion_protection.to_string(), "false"),
        ("access_logs.s3.enabled", (lb.access_logs.is_some() && log_bucket.is_some()).to_string(), "false"),
    ];
    if let (Some(_), Some(bucket)) = (&lb.access_logs, log_bucket) {
        attrs.push(("access_logs.s3.bucket", bucket.to_owned(), ""));
        attrs.push(("access_logs.s3.prefix", stack.name.clone(), ""));
    }
    attrs
}

pub fn diff_lb(
    stack: &stack::Stack,
    name: &str,
    subnets: &[Id],
    sg: &Id,
    log_bucket: Option<&str>,
    observed: Option<&ObservedLb>,
) -> Change {
    let mut want_subnets: Vec<String> = subnets.iter().map(ToString::to_string).collect();
    want_subnets.sort();
    let attributes = desired_attributes(stack, log_bucket);
    let Some(o) = observed else {
        let mut fields = vec![
            FieldDiff::new("scheme", None, Some("internet-facing".into())),
            FieldDiff::new("subnets", None, Some(want_subnets.join(","))),
            FieldDiff::new("security_groups", None, Some(sg.to_string())),
        ];
        fields.extend(attributes.into_iter().map(|(k, v, _)| FieldDiff::new(k, None, Some(v))));
        return Change::create(fields);
    };
    let mut have_subnets = o.subnets.clone();
    have_subnets.sort();
    let mut fields: Vec<FieldDiff> = [
        compare("subnets", &have_subnets.join(","), &want_subnets.join(",")),
        compare("security_groups", &o.security_groups.join(","), &sg.to_string()),
    ]
    .into_iter()
    .flatten()
    .collect();
    for (key, want, default) in attributes {
        let have = o.attributes.get(key).cloned().unwrap_or_else(|| default.to_owned());
        fields.extend(compare(key, &have, &want));
    }
    fields.extend(tags::diff(&tags::desired(stack, name), &o.tags));
    Change::update(fields)
}

/// The load balancer `name`, whoever owns it.
async fn describe(ctx: &Ctx, name: &str) -> Result<Option<aws_sdk_elasticloadbalancingv2::types::LoadBalancer>, Error> {
    let described =
        ctx.clients.elb.describe_load_balancers().names(name).send().await.ctx("describe load balancer", name);
    let Some(out) = absent(described)? else { return Ok(None) };
    Ok(out.load_balancers.and_then(|l| l.into_iter().next()))
}

/// Refuses a load balancer of ours by name whose tags say it is not ours.
fn check_owned(ctx: &Ctx, name: &str, arn: &str, tags: &[(String, String)]) -> Result<(), Error> {
    let found = vec![(arn.to_owned(), tags.to_vec())];
    tags::pick_owned("load balancer", name, &ctx.owner(), found, |l| l.0.clone(), |l| l.1.clone()).map(|_| ())
}

/// The DNS name of our load balancer `name`, if it exists (two calls; nothing compared).
pub(super) async fn locate(ctx: &Ctx, name: &str) -> Result<Option<String>, Error> {
    let Some(lb) = describe(ctx, name).await? else { return Ok(None) };
    let arn = lb.load_balancer_arn().unwrap_or_default();
    check_owned(ctx, name, arn, &tags_of(ctx, arn).await?)?;
    Ok(Some(lb.dns_name().unwrap_or_default().to_owned()))
}

pub(super) async fn observe_lb(ctx: &Ctx, name: &str) -> Result<Option<ObservedLb>, Error> {
    let elb = &ctx.clients.elb;
    let Some(lb) = describe(ctx, name).await? else { return Ok(None) };
    let arn = lb.load_balancer_arn().unwrap_or_default().to_owned();
    let (tags, attrs) =
        tokio::join!(tags_of(ctx, &arn), elb.describe_load_balancer_attributes().load_balancer_arn(&arn).send());
    let tags = tags?;
    check_owned(ctx, name, &arn, &tags)?;
    let attrs = attrs.ctx("describe attributes of", name)?;
    Ok(Some(ObservedLb {
        dns_name: lb.dns_name().unwrap_or_default().to_owned(),
        canonical_zone: lb.canonical_hosted_zone_id().unwrap_or_default().to_owned(),
        subnets: lb.availability_zones().iter().filter_map(|z| z.subnet_id().map(str::to_owned)).collect(),
        security_groups: lb.security_groups().to_vec(),
        attributes: attrs
            .attributes()
            .iter()
            .filter_map(|a| Some((a.key()?.to_owned(), a.value()?.to_owned())))
            .collect(),
        arn,
        tags,
    }))
}

pub(super) async fn apply_load_balancer(
    ctx: &Ctx,
    name: &str,
    subnets: &[Id],
    sg: &Id,
    log_bucket: Option<&str>,
    change: &Change,
    observed: Option<&ObservedLb>,
) -> Result<Option<String>, Error> {
    let (elb, stack) = (&ctx.clients.elb, &ctx.stack);
    let subnet_ids = all_known(subnets)?;
    let (arn, created) = match observed {
        None => {
            let out = ctx
                .wait(Wait::Consistency, "the subnets and security group to be visible", || async {
                    elb.create_load_balancer()
                        .name(name)
                        .r#type(LoadBalancerTypeEnum::Application)
                        .scheme(LoadBalancerSchemeEnum::InternetFacing)
                        .ip_address_type(IpAddressType::Ipv4)
                        .set_subnets(Some(subnet_ids.clone()))
                        .security_groups(sg.get()?)
                        .set_tags(Some(elb_tags(stack, name)))
                        .send()
                        .await
                        .ctx("create load balancer", name)
                })
                .await?;
            let arn = out.load_balancers().first().and_then(|l| l.load_balancer_arn()).unwrap_or_default().to_owned();
            (arn, true)
        }
        Some(lb) => {
            if change.has("subnets") {
                elb.set_subnets()
                    .load_balancer_arn(&lb.arn)
                    .set_subnets(Some(subnet_ids.clone()))
                    .send()
                    .await
                    .ctx("set subnets of", name)?;
            }
            if change.has("security_groups") {
                elb.set_security_groups()
                    .load_balancer_arn(&lb.arn)
                    .security_groups(sg.get()?)
                    .send()
                    .await
                    .ctx("set security groups of", name)?;
            }
            if change.has_tags() {
                elb.add_tags()
                    .resource_arns(&lb.arn)
                    .set_tags(Some(elb_tags(stack, name)))
                    .send()
                    .await
                    .ctx("tag", name)?;
            }
            (lb.arn.clone(), false)
        }
    };
    let attributes: Vec<LoadBalancerAttribute> = desired_attributes(stack, log_bucket)
        .into_iter()
        .filter(|(key, _, _)| created || change.has(key))
        .map(|(key, value, _)| LoadBalancerAttribute::builder().key(key).value(value).build())
        .collect();
    if !attributes.is_empty() {
        set_attributes(ctx, name, &arn, &attributes).await?;
    }
    ctx.progress(format!("load balancer {name} ready"));
    Ok(created.then_some(arn))
}

/// Writes the load balancer's attributes once it is visible and (for access logs) the log
/// bucket's policy has reached ELB.
pub(super) async fn set_attributes(
    ctx: &Ctx,
    name: &str,
    arn: &str,
    attributes: &[LoadBalancerAttribute],
) -> Result<(), Error> {
    let what = format!("the log bucket's policy to reach load balancer {name}");
    ctx.wait(Wait::Propagation, &what, || async {
        ctx.wait(Wait::Consistency, &format!("load balancer {name} to be visible"), || async {
            ctx.clients
                .elb
                .modify_load_balancer_attributes()
                .load_balancer_arn(arn)
                .set_attributes(Some(attributes.to_vec()))
                .send()
                .await
                .ctx("set the attributes of", name)
        })
        .await
    })
    .await?;
    Ok(())
}
