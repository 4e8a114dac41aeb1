//! The internet gateway, attached to the stack's VPC. CreateInternetGateway takes neither a token
//! nor a unique name: a lost answer leaves a second gateway of ours, and the step keeps the one
//! attached to our VPC and deletes the other. An attach retried after a lost answer is told
//! `Resource.AlreadyAssociated`, which the step reads as done.

use aws_sdk_ec2::types::ResourceType;

use super::INTERNET_GATEWAY;
use super::{Names, by_name_or_adopted, retag};
use crate::error::{AwsContext, Error, gone};
use crate::reconcile::step::{InUse, Observed};
use crate::reconcile::{Change, Ctx, FieldDiff, Id, Plan, Step, tags};
use crate::wait::Wait;

#[derive(Debug, Clone, PartialEq)]
pub struct ObservedIgw {
    pub id: String,
    pub attached_to: Vec<String>,
    /// Attached to the stack's VPC.
    pub attached_to_ours: bool,
    pub tags: Vec<(String, String)>,
}

impl Observed for ObservedIgw {
    fn id(&self) -> &str {
        &self.id
    }
}

impl InUse for ObservedIgw {
    fn in_use(&self) -> bool {
        self.attached_to_ours
    }
}

pub fn diff(vpc: &Id, desired_tags: &[(String, String)], observed: Option<&ObservedIgw>) -> Change {
    let want = vpc.to_string();
    let Some(igw) = observed else {
        return Change::create(vec![FieldDiff::new("attached_to", None, Some(want))]);
    };
    let mut fields = Vec::new();
    if igw.attached_to.as_slice() != [want.clone()] {
        let have = igw.attached_to.join(",");
        fields.push(FieldDiff::new("attached_to", (!have.is_empty()).then_some(have), Some(want)));
    }
    fields.extend(tags::diff(desired_tags, &igw.tags));
    Change::update(fields)
}

async fn observe_all(ctx: &Ctx, names: &Names, vpc: &Id) -> Result<Vec<ObservedIgw>, Error> {
    let out = ctx
        .clients
        .ec2
        .describe_internet_gateways()
        .filters(by_name_or_adopted(&names.igw, "internet-gateway-id", ctx.adopting.internet_gateway.as_ref()))
        .send()
        .await
        .ctx("describe internet gateway", &names.igw)?;
    let found: Vec<ObservedIgw> = out
        .internet_gateways()
        .iter()
        .map(|g| {
            let attached_to: Vec<String> =
                g.attachments().iter().filter_map(|a| a.vpc_id().map(str::to_owned)).collect();
            ObservedIgw {
                id: g.internet_gateway_id().unwrap_or_default().to_owned(),
                attached_to_ours: vpc.known().is_some_and(|v| attached_to.iter().any(|a| a == v)),
                attached_to,
                tags: tags::pairs(g.tags()),
            }
        })
        .collect();
    tags::owned("internet gateway", &names.igw, &ctx.owner(), found, |g| g.id.clone(), |g| g.tags.clone())
}

/// Attaches; a gateway or VPC created a moment ago can still be "not found".
async fn attach(ctx: &Ctx, igw: &str, vpc_id: &str) -> Result<(), Error> {
    ctx.wait(Wait::Consistency, &format!("internet gateway {igw} to be visible"), || async {
        ctx.clients
            .ec2
            .attach_internet_gateway()
            .internet_gateway_id(igw)
            .vpc_id(vpc_id)
            .send()
            .await
            .ctx("attach internet gateway", igw)
    })
    .await
    .map(|_| ())
}

async fn detach(ctx: &Ctx, igw: &str, vpc_id: &str) -> Result<(), Error> {
    let r = ctx
        .wait(
            Wait::Dependency,
            &format!("internet gateway {igw} to detach (public addresses still mapped)"),
            || async {
                ctx.clients
                    .ec2
                    .detach_internet_gateway()
                    .internet_gateway_id(igw)
                    .vpc_id(vpc_id)
                    .send()
                    .await
                    .ctx("detach internet gateway", igw)
            },
        )
        .await;
    gone(r)
}

/// Detaches from every VPC, then deletes.
pub async fn delete(ctx: &Ctx, g: &ObservedIgw) -> Result<(), Error> {
    for vpc in &g.attached_to {
        detach(ctx, &g.id, vpc).await?;
    }
    let r = ctx
        .clients
        .ec2
        .delete_internet_gateway()
        .internet_gateway_id(&g.id)
        .send()
        .await
        .ctx("delete internet gateway", &g.id);
    gone(r)
}

async fn apply(
    ctx: &Ctx,
    names: &Names,
    vpc: &Id,
    change: &Change,
    observed: Option<&ObservedIgw>,
) -> Result<Option<String>, Error> {
    let vpc_id = vpc.get()?;
    let (id, created) = match observed {
        Some(g) => (g.id.clone(), false),
        None => {
            let out = ctx
                .clients
                .ec2
                .create_internet_gateway()
                .tag_specifications(tags::ec2_spec(ResourceType::InternetGateway, &ctx.stack, &names.igw))
                .send()
                .await
                .ctx("create internet gateway", &names.igw)?;
            (out.internet_gateway().and_then(|g| g.internet_gateway_id()).unwrap_or_default().to_owned(), true)
        }
    };
    let attached = observed.map(|g| g.attached_to.clone()).unwrap_or_default();
    for other in attached.iter().filter(|v| *v != vpc_id) {
        detach(ctx, &id, other).await?;
    }
    if !attached.iter().any(|v| v == vpc_id) {
        attach(ctx, &id, vpc_id).await?;
    }
    if !created {
        retag(ctx, &id, change, &names.igw).await?;
    }
    ctx.progress(format!("internet gateway {} ({id}) attached to {vpc_id}", names.igw));
    Ok(created.then_some(id))
}

/// The stack's gateway, attached to its VPC; its id (pending in Plan mode before it exists).
pub async fn converge(ctx: &Ctx, plan: &mut Plan, names: &Names, vpc: &Id) -> Result<Id, Error> {
    let want_tags = tags::desired(&ctx.stack, &names.igw);
    let outcome = Step::new(ctx, INTERNET_GATEWAY, &names.igw)
        .converge_one(
            plan,
            async || observe_all(ctx, names, vpc).await,
            |o| diff(vpc, &want_tags, o),
            async |c: &Change, o: Option<&ObservedIgw>| apply(ctx, names, vpc, c, o).await,
            async |extra: &ObservedIgw| delete(ctx, extra).await,
        )
        .await?;
    Ok(outcome.id_or(|| format!("internet gateway {}", names.igw)))
}

/// Deletes every gateway carrying the stack's tag.
pub async fn teardown(ctx: &Ctx, plan: &mut Plan, names: &Names) -> Result<(), Error> {
    let out = ctx
        .clients
        .ec2
        .describe_internet_gateways()
        .filters(super::owned_filter(&ctx.stack))
        .send()
        .await
        .ctx("describe internet gateways of", &ctx.stack.name)?;
    for g in out.internet_gateways() {
        let observed = ObservedIgw {
            id: g.internet_gateway_id().unwrap_or_default().to_owned(),
            attached_to: g.attachments().iter().filter_map(|a| a.vpc_id().map(str::to_owned)).collect(),
            attached_to_ours: false,
            tags: tags::pairs(g.tags()),
        };
        if ctx.applying() {
            delete(ctx, &observed).await?;
            ctx.progress(format!("deleted internet gateway {}", observed.id));
        }
        plan.push(INTERNET_GATEWAY, &names.igw, Some(observed.id), Change::delete());
    }
    Ok(())
}
