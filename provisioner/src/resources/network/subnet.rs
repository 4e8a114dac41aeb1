//! One public subnet per availability zone (blocks carved from the VPC, or listed in
//! stack.yaml), public IPs on launch. A subnet's block is unique in its VPC, so a create retried
//! after a lost answer is told `InvalidSubnet.Conflict` and the step adopts the subnet.

use aws_sdk_ec2::types::{AttributeBooleanValue, ResourceType};

use super::SUBNET;
use super::{Names, filter, name_of, retag};
use crate::error::{AwsContext, Error, gone};
use crate::reconcile::step::Observed;
use crate::reconcile::{Action, Change, Ctx, FieldDiff, Id, Plan, Step, compare, tags};
use crate::wait::Wait;

#[derive(Debug, Clone, PartialEq)]
pub struct ObservedSubnet {
    pub id: String,
    pub name: String,
    pub cidr: String,
    pub az: String,
    pub map_public_ip: bool,
    pub tags: Vec<(String, String)>,
}

impl Observed for ObservedSubnet {
    fn id(&self) -> &str {
        &self.id
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct DesiredSubnet {
    pub name: String,
    pub cidr: String,
    pub az: String,
}

/// Subnets for the first `availability_zones` zones (sorted), with the stack's blocks.
pub fn desired_subnets(stack: &stack::Stack, zones: &[String]) -> Result<Vec<DesiredSubnet>, Error> {
    let names = Names::of(stack);
    let wanted = usize::from(stack.network.availability_zones);
    if zones.len() < wanted {
        return Err(Error::Refused(format!(
            "{} has {} availability zones available; stack.yaml asks for {wanted}: lower network.availability_zones",
            stack.region,
            zones.len()
        )));
    }
    Ok(stack::subnet_blocks(stack)
        .into_iter()
        .zip(zones)
        .map(|(block, az)| DesiredSubnet { name: names.subnet(az), cidr: block.to_string(), az: az.clone() })
        .collect())
}

pub fn diff(desired: &DesiredSubnet, desired_tags: &[(String, String)], observed: Option<&ObservedSubnet>) -> Change {
    let Some(s) = observed else {
        return Change::create(vec![
            FieldDiff::new("cidr", None, Some(desired.cidr.clone())),
            FieldDiff::new("availability_zone", None, Some(desired.az.clone())),
            FieldDiff::new("map_public_ip_on_launch", None, Some("true".into())),
        ]);
    };
    let fixed: Vec<FieldDiff> =
        [compare("cidr", &s.cidr, &desired.cidr), compare("availability_zone", &s.az, &desired.az)]
            .into_iter()
            .flatten()
            .collect();
    if !fixed.is_empty() {
        return Change::replace("a subnet's CIDR block and zone cannot change", fixed);
    }
    let mut fields: Vec<FieldDiff> = compare("map_public_ip_on_launch", &s.map_public_ip, &true).into_iter().collect();
    fields.extend(tags::diff(desired_tags, &s.tags));
    Change::update(fields)
}

/// Every subnet of the VPC (ours or not: a foreign one with our name is refused by the caller).
async fn observe_in(ctx: &Ctx, vpc_id: &str) -> Result<Vec<ObservedSubnet>, Error> {
    let out = ctx
        .clients
        .ec2
        .describe_subnets()
        .filters(filter("vpc-id", vpc_id))
        .send()
        .await
        .ctx("describe subnets of", vpc_id)?;
    Ok(out
        .subnets()
        .iter()
        .map(|s| {
            let tags = tags::pairs(s.tags());
            let (id, az) = (s.subnet_id().unwrap_or_default(), s.availability_zone().unwrap_or_default());
            // A subnet `adopt` takes over is found under the name it is about to get.
            let adopted = ctx.adopting.subnets.iter().any(|a| a == id);
            ObservedSubnet {
                id: id.to_owned(),
                name: if adopted { Names::of(&ctx.stack).subnet(az) } else { name_of(&tags) },
                cidr: s.cidr_block().unwrap_or_default().to_owned(),
                az: az.to_owned(),
                map_public_ip: s.map_public_ip_on_launch().unwrap_or(false),
                tags,
            }
        })
        .collect())
}

/// The ids of our public subnets in `vpc_id`, in name order (one call; nothing compared).
pub(super) async fn locate_in(ctx: &Ctx, names: &Names, vpc_id: &str) -> Result<Vec<String>, Error> {
    let prefix = names.subnet("");
    let mut ours: Vec<ObservedSubnet> = observe_in(ctx, vpc_id)
        .await?
        .into_iter()
        .filter(|s| s.name.starts_with(&prefix) && ctx.owner().owns(&s.id, &s.tags))
        .collect();
    ours.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(ours.into_iter().map(|s| s.id).collect())
}

/// Of the VPC's subnets, ours named `name`; refuses a foreign one with that name.
fn pick(ctx: &Ctx, all: &[ObservedSubnet], name: &str) -> Result<Option<ObservedSubnet>, Error> {
    let found: Vec<ObservedSubnet> = all.iter().filter(|s| s.name == name).cloned().collect();
    tags::pick_owned("subnet", name, &ctx.owner(), found, |s| s.id.clone(), |s| s.tags.clone())
}

async fn observe_one(ctx: &Ctx, vpc: &Id, name: &str) -> Result<Option<ObservedSubnet>, Error> {
    let Some(vpc_id) = vpc.known() else { return Ok(None) };
    pick(ctx, &observe_in(ctx, vpc_id).await?, name)
}

/// Public IPs on launch; a subnet created a moment ago can still be "not found".
async fn set_public_ip(ctx: &Ctx, subnet_id: &str) -> Result<(), Error> {
    ctx.wait(Wait::Consistency, &format!("subnet {subnet_id} to be visible"), || async {
        ctx.clients
            .ec2
            .modify_subnet_attribute()
            .subnet_id(subnet_id)
            .map_public_ip_on_launch(AttributeBooleanValue::builder().value(true).build())
            .send()
            .await
            .ctx("turn on public IPs in", subnet_id)
    })
    .await
    .map(|_| ())
}

async fn create(ctx: &Ctx, vpc_id: &str, s: &DesiredSubnet) -> Result<String, Error> {
    let out = ctx
        .wait(Wait::Consistency, &format!("VPC {vpc_id} to be visible"), || async {
            ctx.clients
                .ec2
                .create_subnet()
                .vpc_id(vpc_id)
                .cidr_block(&s.cidr)
                .availability_zone(&s.az)
                .tag_specifications(tags::ec2_spec(ResourceType::Subnet, &ctx.stack, &s.name))
                .send()
                .await
                .ctx("create subnet", &s.name)
        })
        .await?;
    let id = out.subnet().and_then(|s| s.subnet_id()).unwrap_or_default().to_owned();
    set_public_ip(ctx, &id).await?;
    Ok(id)
}

pub async fn delete(ctx: &Ctx, id: &str) -> Result<(), Error> {
    let r = ctx
        .wait(Wait::Dependency, &format!("subnet {id} to be free of network interfaces"), || async {
            ctx.clients.ec2.delete_subnet().subnet_id(id).send().await.ctx("delete subnet", id)
        })
        .await;
    gone(r)
}

async fn apply(
    ctx: &Ctx,
    vpc: &Id,
    d: &DesiredSubnet,
    change: &Change,
    observed: Option<&ObservedSubnet>,
) -> Result<Option<String>, Error> {
    match (change.action, observed) {
        (_, None) => {
            let id = create(ctx, vpc.get()?, d).await?;
            ctx.progress(format!("created subnet {} ({id})", d.name));
            Ok(Some(id))
        }
        (Action::Replace, Some(old)) => {
            delete(ctx, &old.id).await?;
            let id = create(ctx, vpc.get()?, d).await?;
            ctx.progress(format!("replaced subnet {} ({id})", d.name));
            Ok(Some(id))
        }
        (_, Some(s)) => {
            if change.has("map_public_ip_on_launch") {
                set_public_ip(ctx, &s.id).await?;
            }
            retag(ctx, &s.id, change, &d.name).await?;
            ctx.progress(format!("updated subnet {} ({})", d.name, s.id));
            Ok(None)
        }
    }
}

/// The stack's subnets, one per zone, and the deletion of ours that stack.yaml no longer wants;
/// returns (id, zone) per wanted subnet.
pub async fn converge(
    ctx: &Ctx,
    plan: &mut Plan,
    names: &Names,
    vpc: &Id,
    zones: &[String],
) -> Result<Vec<(Id, String)>, Error> {
    let stack = &ctx.stack;
    let desired = desired_subnets(stack, zones)?;
    // One listing for all of them.
    let existing = match vpc.known() {
        Some(vpc_id) => observe_in(ctx, vpc_id).await?,
        None => Vec::new(),
    };
    // Every subnet at once; their rows in zone order.
    let existing = &existing;
    let converged = futures_util::future::try_join_all(desired.iter().map(|d| async move {
        let want_tags = tags::desired(stack, &d.name);
        let mut rows = Plan::default();
        let outcome = Step::new(ctx, SUBNET, &d.name)
            .converge_observed(
                &mut rows,
                pick(ctx, existing, &d.name)?,
                async || observe_one(ctx, vpc, &d.name).await,
                |o| diff(d, &want_tags, o),
                async |c: &Change, o: Option<&ObservedSubnet>| apply(ctx, vpc, d, c, o).await,
            )
            .await?;
        Ok::<_, Error>((rows, (outcome.id_or(|| format!("subnet {}", d.name)), d.az.clone())))
    }))
    .await?;
    let mut out = Vec::new();
    for (rows, subnet) in converged {
        plan.extend(rows);
        out.push(subnet);
    }
    // Our subnets that stack.yaml no longer wants (fewer zones).
    for s in existing.iter().filter(|s| {
        ctx.owner().owns(&s.id, &s.tags)
            && s.name.starts_with(&names.subnet(""))
            && !desired.iter().any(|d| d.name == s.name)
    }) {
        if ctx.applying() {
            delete(ctx, &s.id).await?;
            ctx.progress(format!("deleted subnet {} ({})", s.name, s.id));
        }
        plan.push(SUBNET, &s.name, Some(s.id.clone()), Change::delete());
    }
    Ok(out)
}

/// Deletes our subnets in the VPC.
pub async fn teardown_in(ctx: &Ctx, plan: &mut Plan, vpc_id: &str) -> Result<(), Error> {
    for s in observe_in(ctx, vpc_id).await?.into_iter().filter(|s| ctx.owner().owns(&s.id, &s.tags)) {
        if ctx.applying() {
            delete(ctx, &s.id).await?;
            ctx.progress(format!("deleted subnet {} ({})", s.name, s.id));
        }
        plan.push(SUBNET, &s.name, Some(s.id.clone()), Change::delete());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_are_carved_per_zone_and_diffed() {
        let s = crate::resources::test_stack();
        let zones = vec!["ap-northeast-1a".to_owned(), "ap-northeast-1c".to_owned(), "ap-northeast-1d".to_owned()];
        let d = desired_subnets(&s, &zones).expect("enough zones");
        assert_eq!(d.len(), 2);
        assert_eq!(
            d[1],
            DesiredSubnet {
                name: "konnichiwa-public-ap-northeast-1c".into(),
                cidr: "10.40.16.0/20".into(),
                az: "ap-northeast-1c".into()
            }
        );
        assert!(desired_subnets(&s, &zones[..1]).is_err());
        let want = tags::desired(&s, &d[0].name);
        let observed = ObservedSubnet {
            id: "subnet-1".into(),
            name: d[0].name.clone(),
            cidr: d[0].cidr.clone(),
            az: d[0].az.clone(),
            map_public_ip: true,
            tags: want.clone(),
        };
        assert!(diff(&d[0], &want, Some(&observed)).is_no_op());
        let private = ObservedSubnet { map_public_ip: false, ..observed.clone() };
        assert_eq!(diff(&d[0], &want, Some(&private)).action, Action::Update);
        let moved = ObservedSubnet { cidr: "10.40.32.0/20".into(), ..observed };
        let c = diff(&d[0], &want, Some(&moved));
        assert_eq!(c.action, Action::Replace);
        assert!(c.reason.as_deref().is_some_and(|r| r.contains("cannot change")));
    }
}
