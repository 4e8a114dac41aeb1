//! The VPC: DNS support and hostnames on, tagged at creation. CreateVpc takes neither an
//! idempotency token nor a unique name, so a lost answer leaves a second VPC of ours: the step
//! keeps the one in use (it has subnets or a gateway) and deletes the unused extra.

use aws_sdk_ec2::types::{AttributeBooleanValue, ResourceType, VpcAttributeName};

use super::VPC;
use super::{Names, by_name_or_adopted, owned_filter, retag};
use crate::error::{AwsContext, Error, gone};
use crate::reconcile::step::{InUse, Observed};
use crate::reconcile::{Action, Change, Ctx, FieldDiff, Id, Plan, Step, compare, tags};
use crate::wait::Wait;

#[derive(Debug, Clone, PartialEq)]
pub struct ObservedVpc {
    pub id: String,
    pub cidr: String,
    pub dns_support: bool,
    pub dns_hostnames: bool,
    /// Subnets and attached gateways: what makes one of two duplicates the one in use.
    pub dependents: usize,
    pub tags: Vec<(String, String)>,
}

impl Observed for ObservedVpc {
    fn id(&self) -> &str {
        &self.id
    }
}

impl InUse for ObservedVpc {
    fn in_use(&self) -> bool {
        self.dependents > 0
    }
}

pub fn diff(stack: &stack::Stack, desired_tags: &[(String, String)], observed: Option<&ObservedVpc>) -> Change {
    let Some(vpc) = observed else {
        return Change::create(vec![
            FieldDiff::new("cidr", None, Some(stack.network.cidr.clone())),
            FieldDiff::new("dns_support", None, Some("true".into())),
            FieldDiff::new("dns_hostnames", None, Some("true".into())),
        ]);
    };
    if vpc.cidr != stack.network.cidr {
        return Change::replace(
            "a VPC's CIDR block cannot change",
            vec![FieldDiff::new("cidr", Some(vpc.cidr.clone()), Some(stack.network.cidr.clone()))],
        );
    }
    let mut fields: Vec<FieldDiff> =
        [compare("dns_support", &vpc.dns_support, &true), compare("dns_hostnames", &vpc.dns_hostnames, &true)]
            .into_iter()
            .flatten()
            .collect();
    fields.extend(tags::diff(desired_tags, &vpc.tags));
    Change::update(fields)
}

/// (id, CIDR, tags) of a VPC as DescribeVpcs lists it.
type Found = (String, String, Vec<(String, String)>);

/// Our VPCs named `names.vpc`, as listed (one call); refuses when only foreign ones carry the name.
async fn find_owned(ctx: &Ctx, names: &Names) -> Result<Vec<Found>, Error> {
    let out = ctx
        .clients
        .ec2
        .describe_vpcs()
        .filters(by_name_or_adopted(&names.vpc, "vpc-id", ctx.adopting.vpc.as_ref()))
        .send()
        .await
        .ctx("describe VPC", &names.vpc)?;
    let found: Vec<Found> = out
        .vpcs()
        .iter()
        .map(|v| {
            (
                v.vpc_id().unwrap_or_default().to_owned(),
                v.cidr_block().unwrap_or_default().to_owned(),
                tags::pairs(v.tags()),
            )
        })
        .collect();
    tags::owned("VPC", &names.vpc, &ctx.owner(), found, |v| v.0.clone(), |v| v.2.clone())
}

/// The id of the stack's VPC, if there is one (one call; nothing compared). Refuses two: `up`
/// keeps one and deletes the other, and until then either could be meant.
pub(super) async fn locate(ctx: &Ctx, names: &Names) -> Result<Option<String>, Error> {
    let mut ours = find_owned(ctx, names).await?;
    if ours.len() > 1 {
        let ids: Vec<&str> = ours.iter().map(|v| v.0.as_str()).collect();
        return Err(Error::Refused(format!(
            "{} VPCs named {} carry this stack's tag ({}): run `provisioner up`, which keeps the one in use and \
             deletes the others",
            ids.len(),
            names.vpc,
            ids.join(", ")
        )));
    }
    Ok(ours.pop().map(|v| v.0))
}

/// Our VPCs named `names.vpc` (normally one; more after a lost CreateVpc answer).
async fn observe_all(ctx: &Ctx, names: &Names) -> Result<Vec<ObservedVpc>, Error> {
    let ours = find_owned(ctx, names).await?;
    let dependents = if ours.len() > 1 {
        dependents(ctx, &ours.iter().map(|v| v.0.clone()).collect::<Vec<_>>()).await?
    } else {
        Vec::new()
    };
    let mut vpcs = Vec::new();
    for (id, cidr, tags) in ours {
        let (dns_support, dns_hostnames) = dns(ctx, &id).await?;
        let count = dependents.iter().filter(|d| **d == id).count();
        vpcs.push(ObservedVpc { id, cidr, dns_support, dns_hostnames, dependents: count, tags });
    }
    Ok(vpcs)
}

/// One VPC id per subnet in, and per gateway attached to, the given VPCs.
async fn dependents(ctx: &Ctx, vpc_ids: &[String]) -> Result<Vec<String>, Error> {
    let ec2 = &ctx.clients.ec2;
    let vpc_filter =
        |name: &str| aws_sdk_ec2::types::Filter::builder().name(name).set_values(Some(vpc_ids.to_vec())).build();
    let subnets = ec2
        .describe_subnets()
        .filters(vpc_filter("vpc-id"))
        .send()
        .await
        .ctx("describe subnets of", vpc_ids.join(","))?;
    let mut out: Vec<String> = subnets.subnets().iter().filter_map(|s| s.vpc_id().map(str::to_owned)).collect();
    let igws = ec2
        .describe_internet_gateways()
        .filters(vpc_filter("attachment.vpc-id"))
        .send()
        .await
        .ctx("describe gateways of", vpc_ids.join(","))?;
    out.extend(
        igws.internet_gateways().iter().flat_map(|g| g.attachments()).filter_map(|a| a.vpc_id().map(str::to_owned)),
    );
    Ok(out)
}

async fn dns(ctx: &Ctx, id: &str) -> Result<(bool, bool), Error> {
    let ec2 = &ctx.clients.ec2;
    let (support, hostnames) = tokio::join!(
        ec2.describe_vpc_attribute().vpc_id(id).attribute(VpcAttributeName::EnableDnsSupport).send(),
        ec2.describe_vpc_attribute().vpc_id(id).attribute(VpcAttributeName::EnableDnsHostnames).send(),
    );
    let (support, hostnames) =
        (support.ctx("describe VPC attribute", id)?, hostnames.ctx("describe VPC attribute", id)?);
    Ok((
        support.enable_dns_support().and_then(|a| a.value()).unwrap_or(false),
        hostnames.enable_dns_hostnames().and_then(|a| a.value()).unwrap_or(false),
    ))
}

/// Every VPC carrying the stack's tag, whatever its name: what `down` deletes.
pub async fn owned_by_tag(ctx: &Ctx) -> Result<Vec<ObservedVpc>, Error> {
    let out = ctx
        .clients
        .ec2
        .describe_vpcs()
        .filters(owned_filter(&ctx.stack))
        .send()
        .await
        .ctx("describe VPCs of", &ctx.stack.name)?;
    Ok(out
        .vpcs()
        .iter()
        .map(|v| ObservedVpc {
            id: v.vpc_id().unwrap_or_default().to_owned(),
            cidr: v.cidr_block().unwrap_or_default().to_owned(),
            dns_support: false,
            dns_hostnames: false,
            dependents: 0,
            tags: tags::pairs(v.tags()),
        })
        .collect())
}

/// One attribute per call: AWS rejects both in one request. AWS enables DNS hostnames only where
/// DNS support is on: support first, unless it is on already (`support_on`: a new VPC has it), when
/// both go at once.
async fn set_dns(ctx: &Ctx, vpc_id: &str, support: bool, hostnames: bool, support_on: bool) -> Result<(), Error> {
    let enable =
        async |wanted: bool, hostnames: bool| if wanted { enable_dns(ctx, vpc_id, hostnames).await } else { Ok(()) };
    if support_on {
        tokio::try_join!(enable(support, false), enable(hostnames, true))?;
    } else {
        enable(support, false).await?;
        enable(hostnames, true).await?;
    }
    Ok(())
}

/// Turns DNS hostnames (else DNS support) on. A VPC created a moment ago can still be "not found".
async fn enable_dns(ctx: &Ctx, vpc_id: &str, hostnames: bool) -> Result<(), Error> {
    let on = || Some(AttributeBooleanValue::builder().value(true).build());
    let what = if hostnames { "enable DNS hostnames on" } else { "enable DNS support on" };
    ctx.wait(Wait::Consistency, &format!("VPC {vpc_id} to be visible"), || async {
        let request = ctx.clients.ec2.modify_vpc_attribute().vpc_id(vpc_id);
        let request =
            if hostnames { request.set_enable_dns_hostnames(on()) } else { request.set_enable_dns_support(on()) };
        request.send().await.ctx(what, vpc_id)
    })
    .await
    .map(|_| ())
}

async fn apply(
    ctx: &Ctx,
    names: &Names,
    change: &Change,
    observed: Option<&ObservedVpc>,
) -> Result<Option<String>, Error> {
    match (change.action, observed) {
        (Action::Replace, _) => Err(Error::Refused(format!(
            "the VPC {} must be replaced ({}), which would delete everything in it: run `provisioner down`, then `up`",
            names.vpc,
            change.reason.clone().unwrap_or_default()
        ))),
        (_, None) => {
            let created = ctx
                .clients
                .ec2
                .create_vpc()
                .cidr_block(&ctx.stack.network.cidr)
                .tag_specifications(tags::ec2_spec(ResourceType::Vpc, &ctx.stack, &names.vpc))
                .send()
                .await
                .ctx("create VPC", &names.vpc)?;
            let id = created.vpc().and_then(|v| v.vpc_id()).unwrap_or_default().to_owned();
            ctx.progress(format!("created VPC {} ({id})", names.vpc));
            set_dns(ctx, &id, true, true, true).await?;
            Ok(Some(id))
        }
        (_, Some(vpc)) => {
            set_dns(ctx, &vpc.id, change.has("dns_support"), change.has("dns_hostnames"), vpc.dns_support).await?;
            retag(ctx, &vpc.id, change, &names.vpc).await?;
            ctx.progress(format!("updated VPC {} ({})", names.vpc, vpc.id));
            Ok(None)
        }
    }
}

/// Deletes a VPC once what was in it has gone.
pub async fn delete(ctx: &Ctx, vpc: &ObservedVpc) -> Result<(), Error> {
    let r = ctx
        .wait(Wait::Dependency, &format!("VPC {} to be empty", vpc.id), || async {
            ctx.clients.ec2.delete_vpc().vpc_id(&vpc.id).send().await.ctx("delete VPC", &vpc.id)
        })
        .await;
    gone(r)
}

/// The stack's VPC: created, adopted or repaired; its id (pending in Plan mode before it exists).
pub async fn converge(ctx: &Ctx, plan: &mut Plan, names: &Names) -> Result<Id, Error> {
    let want_tags = tags::desired(&ctx.stack, &names.vpc);
    let outcome = Step::new(ctx, VPC, &names.vpc)
        .converge_one(
            plan,
            async || observe_all(ctx, names).await,
            |o| diff(&ctx.stack, &want_tags, o),
            async |c: &Change, o: Option<&ObservedVpc>| apply(ctx, names, c, o).await,
            async |extra: &ObservedVpc| delete(ctx, extra).await,
        )
        .await?;
    Ok(outcome.id_or(|| format!("VPC {}", names.vpc)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vpc(s: &stack::Stack) -> ObservedVpc {
        ObservedVpc {
            id: "vpc-1".into(),
            cidr: s.network.cidr.clone(),
            dns_support: true,
            dns_hostnames: true,
            dependents: 0,
            tags: tags::desired(s, "konnichiwa-vpc"),
        }
    }

    #[test]
    fn vpc_diffs() {
        let s = crate::resources::test_stack();
        let want = tags::desired(&s, "konnichiwa-vpc");
        assert_eq!(diff(&s, &want, None).action, Action::Create);
        assert!(diff(&s, &want, Some(&vpc(&s))).is_no_op());
        let mut drifted = vpc(&s);
        drifted.dns_hostnames = false;
        let c = diff(&s, &want, Some(&drifted));
        assert_eq!(c.fields, vec![FieldDiff::new("dns_hostnames", Some("false".into()), Some("true".into()))]);
        let mut moved = vpc(&s);
        moved.cidr = "10.99.0.0/16".into();
        assert_eq!(diff(&s, &want, Some(&moved)).action, Action::Replace);
    }
}
