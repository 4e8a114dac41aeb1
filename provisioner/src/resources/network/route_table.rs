//! The public route table: the default route to the internet gateway and an association with
//! each subnet. CreateRouteTable gets an idempotency token derived from the VPC; where that is
//! not honoured (an emulator) a lost answer leaves a second table of ours, and the step keeps the
//! one with associations and deletes the other.

use aws_sdk_ec2::types::{Filter, ResourceType};

use super::ROUTE_TABLE;
use super::{Names, by_name_or_adopted, filter, retag};
use crate::error::{AwsContext, Error, gone};
use crate::reconcile::step::{InUse, Observed};
use crate::reconcile::{Change, Ctx, FieldDiff, Id, Plan, Step, tags};
use crate::wait::Wait;

pub const ANYWHERE: &str = "0.0.0.0/0";

#[derive(Debug, Clone, PartialEq)]
pub struct ObservedRouteTable {
    pub id: String,
    /// Destination -> target (gateway or other id); the VPC's `local` route is left out.
    pub routes: Vec<(String, String)>,
    /// (association id, subnet id)
    pub associations: Vec<(String, String)>,
    pub tags: Vec<(String, String)>,
}

impl Observed for ObservedRouteTable {
    fn id(&self) -> &str {
        &self.id
    }
}

impl InUse for ObservedRouteTable {
    fn in_use(&self) -> bool {
        !self.associations.is_empty()
    }
}

/// Routes and associations the public route table must have.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredRouteTable {
    pub default_target: Id,
    pub subnet_ids: Vec<Id>,
}

pub fn diff(
    desired: &DesiredRouteTable,
    desired_tags: &[(String, String)],
    observed: Option<&ObservedRouteTable>,
) -> Change {
    let target = desired.default_target.to_string();
    let Some(rt) = observed else {
        let mut fields = vec![FieldDiff::new(format!("route {ANYWHERE}"), None, Some(target))];
        fields.extend(
            desired
                .subnet_ids
                .iter()
                .map(|s| FieldDiff::new(format!("association {s}"), None, Some("associated".into()))),
        );
        return Change::create(fields);
    };
    let mut fields = Vec::new();
    let default = rt.routes.iter().find(|(d, _)| d == ANYWHERE).map(|(_, t)| t.clone());
    if default.as_deref() != Some(target.as_str()) {
        fields.push(FieldDiff::new(format!("route {ANYWHERE}"), default, Some(target)));
    }
    for (dest, t) in rt.routes.iter().filter(|(d, _)| d != ANYWHERE) {
        fields.push(FieldDiff::new(format!("route {dest}"), Some(t.clone()), None));
    }
    for subnet in &desired.subnet_ids {
        if !rt.associations.iter().any(|(_, s)| *s == subnet.to_string()) {
            fields.push(FieldDiff::new(format!("association {subnet}"), None, Some("associated".into())));
        }
    }
    fields.extend(tags::diff(desired_tags, &rt.tags));
    Change::update(fields)
}

fn observed_of(rt: &aws_sdk_ec2::types::RouteTable) -> ObservedRouteTable {
    ObservedRouteTable {
        id: rt.route_table_id().unwrap_or_default().to_owned(),
        routes: rt
            .routes()
            .iter()
            .filter(|r| r.gateway_id() != Some("local"))
            .filter_map(|r| {
                let dest = r.destination_cidr_block().or(r.destination_ipv6_cidr_block())?;
                let target = r
                    .gateway_id()
                    .or(r.nat_gateway_id())
                    .or(r.network_interface_id())
                    .or(r.vpc_peering_connection_id())
                    .or(r.transit_gateway_id())
                    .or(r.instance_id())
                    .unwrap_or("unknown");
                Some((dest.to_owned(), target.to_owned()))
            })
            .collect(),
        associations: rt
            .associations()
            .iter()
            .filter_map(|a| Some((a.route_table_association_id()?.to_owned(), a.subnet_id()?.to_owned())))
            .collect(),
        tags: tags::pairs(rt.tags()),
    }
}

async fn observe_all(ctx: &Ctx, names: &Names, vpc: &Id) -> Result<Vec<ObservedRouteTable>, Error> {
    let Some(vpc_id) = vpc.known() else { return Ok(Vec::new()) };
    let out = ctx
        .clients
        .ec2
        .describe_route_tables()
        .filters(filter("vpc-id", vpc_id))
        .filters(by_name_or_adopted(&names.route_table, "route-table-id", ctx.adopting.route_table.as_ref()))
        .send()
        .await
        .ctx("describe route table", &names.route_table)?;
    let found: Vec<ObservedRouteTable> = out.route_tables().iter().map(observed_of).collect();
    tags::owned("route table", &names.route_table, &ctx.owner(), found, |r| r.id.clone(), |r| r.tags.clone())
}

/// Associates `subnet`; when it is associated with another table already (a duplicate of ours,
/// or the VPC's main table), the association is moved.
async fn associate(ctx: &Ctx, rt: &str, subnet: &str) -> Result<(), Error> {
    let ec2 = &ctx.clients.ec2;
    let r = ctx
        .wait(Wait::Consistency, &format!("route table {rt} to be visible"), || async {
            ec2.associate_route_table()
                .route_table_id(rt)
                .subnet_id(subnet)
                .send()
                .await
                .ctx("associate route table with", subnet)
        })
        .await;
    match r {
        Ok(_) => Ok(()),
        Err(e) if e.is_already_there() => {
            let tables = ec2
                .describe_route_tables()
                .filters(Filter::builder().name("association.subnet-id").values(subnet).build())
                .send()
                .await
                .ctx("find the route table of", subnet)?;
            let current = tables.route_tables().iter().find_map(|t| {
                t.associations().iter().find(|a| a.subnet_id() == Some(subnet)).map(|a| {
                    (t.route_table_id().unwrap_or_default(), a.route_table_association_id().unwrap_or_default())
                })
            });
            match current {
                Some((table, _)) if table == rt => Ok(()),
                Some((_, association)) => {
                    ec2.replace_route_table_association()
                        .association_id(association)
                        .route_table_id(rt)
                        .send()
                        .await
                        .ctx("move the route table association of", subnet)?;
                    Ok(())
                }
                None => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

async fn apply(
    ctx: &Ctx,
    names: &Names,
    vpc: &Id,
    want: &DesiredRouteTable,
    change: &Change,
    observed: Option<&ObservedRouteTable>,
) -> Result<Option<String>, Error> {
    let ec2 = &ctx.clients.ec2;
    let target = want.default_target.get()?;
    let (id, created) = match observed {
        Some(r) => (r.id.clone(), false),
        None => {
            let vpc_id = vpc.get()?;
            let token = tags::idempotency_token(&[&ctx.stack.name, "route-table", &names.route_table, vpc_id]);
            let out = ctx
                .wait(Wait::Consistency, &format!("VPC {vpc_id} to be visible"), || async {
                    ec2.create_route_table()
                        .vpc_id(vpc_id)
                        .client_token(&token)
                        .tag_specifications(tags::ec2_spec(ResourceType::RouteTable, &ctx.stack, &names.route_table))
                        .send()
                        .await
                        .ctx("create route table", &names.route_table)
                })
                .await?;
            (out.route_table().and_then(|r| r.route_table_id()).unwrap_or_default().to_owned(), true)
        }
    };
    let routes = observed.map(|r| r.routes.clone()).unwrap_or_default();
    match routes.iter().find(|(d, _)| d == ANYWHERE) {
        None => {
            ctx.wait(Wait::Consistency, &format!("route table {id} and gateway {target} to be visible"), || async {
                ec2.create_route()
                    .route_table_id(&id)
                    .destination_cidr_block(ANYWHERE)
                    .gateway_id(target)
                    .send()
                    .await
                    .ctx("add the default route to", &id)
            })
            .await?;
        }
        Some((_, t)) if t != target => {
            ec2.replace_route()
                .route_table_id(&id)
                .destination_cidr_block(ANYWHERE)
                .gateway_id(target)
                .send()
                .await
                .ctx("replace the default route of", &id)?;
        }
        Some(_) => {}
    }
    for (dest, _) in routes.iter().filter(|(d, _)| d != ANYWHERE) {
        let req = ec2.delete_route().route_table_id(&id);
        let req =
            if dest.contains(':') { req.destination_ipv6_cidr_block(dest) } else { req.destination_cidr_block(dest) };
        gone(req.send().await.ctx("delete a route not in stack.yaml from", &id))?;
    }
    let associated: Vec<String> =
        observed.map(|r| r.associations.iter().map(|(_, s)| s.clone()).collect()).unwrap_or_default();
    // Each subnet's association at once.
    let subnets: Vec<&str> = want.subnet_ids.iter().map(|s| s.get()).collect::<Result<_, _>>()?;
    let new = subnets.into_iter().filter(|subnet| !associated.iter().any(|s| s == subnet));
    futures_util::future::try_join_all(new.map(|subnet| associate(ctx, &id, subnet))).await?;
    if !created {
        retag(ctx, &id, change, &names.route_table).await?;
    }
    ctx.progress(format!("route table {} ({id}) routes to {target}", names.route_table));
    Ok(created.then_some(id))
}

/// Disassociates, then deletes.
pub async fn delete(ctx: &Ctx, rt: &ObservedRouteTable) -> Result<(), Error> {
    let ec2 = &ctx.clients.ec2;
    for (association, _) in &rt.associations {
        let r = ec2
            .disassociate_route_table()
            .association_id(association)
            .send()
            .await
            .ctx("disassociate route table", association);
        gone(r)?;
    }
    gone(ec2.delete_route_table().route_table_id(&rt.id).send().await.ctx("delete route table", &rt.id))
}

/// The stack's route table; its id (pending in Plan mode before it exists).
pub async fn converge(
    ctx: &Ctx,
    plan: &mut Plan,
    names: &Names,
    vpc: &Id,
    want: &DesiredRouteTable,
) -> Result<Id, Error> {
    let want_tags = tags::desired(&ctx.stack, &names.route_table);
    let outcome = Step::new(ctx, ROUTE_TABLE, &names.route_table)
        .converge_one(
            plan,
            async || observe_all(ctx, names, vpc).await,
            |o| diff(want, &want_tags, o),
            async |c: &Change, o: Option<&ObservedRouteTable>| apply(ctx, names, vpc, want, c, o).await,
            async |extra: &ObservedRouteTable| delete(ctx, extra).await,
        )
        .await?;
    Ok(outcome.id_or(|| format!("route table {}", names.route_table)))
}

/// Deletes our route tables in the VPC.
pub async fn teardown_in(ctx: &Ctx, plan: &mut Plan, vpc_id: &str) -> Result<(), Error> {
    let out = ctx
        .clients
        .ec2
        .describe_route_tables()
        .filters(filter("vpc-id", vpc_id))
        .filters(super::owned_filter(&ctx.stack))
        .send()
        .await
        .ctx("describe route tables of", vpc_id)?;
    for rt in out.route_tables().iter().map(observed_of) {
        let name = super::name_of(&rt.tags);
        if ctx.applying() {
            delete(ctx, &rt).await?;
            ctx.progress(format!("deleted route table {name} ({})", rt.id));
        }
        plan.push(ROUTE_TABLE, name, Some(rt.id.clone()), Change::delete());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(s: &str) -> Id {
        Id::Known(s.into())
    }

    #[test]
    fn route_table_diffs_routes_and_associations() {
        let want = DesiredRouteTable {
            default_target: known("igw-1"),
            subnet_ids: vec![known("subnet-a"), known("subnet-b")],
        };
        let good = ObservedRouteTable {
            id: "rtb-1".into(),
            routes: vec![(ANYWHERE.into(), "igw-1".into())],
            associations: vec![("a1".into(), "subnet-b".into()), ("a2".into(), "subnet-a".into())],
            tags: vec![],
        };
        assert!(diff(&want, &[], Some(&good)).is_no_op(), "association order does not matter");
        let no_route = ObservedRouteTable { routes: vec![("10.9.0.0/16".into(), "pcx-1".into())], ..good.clone() };
        let c = diff(&want, &[], Some(&no_route));
        assert_eq!(
            c.fields,
            vec![
                FieldDiff::new("route 0.0.0.0/0", None, Some("igw-1".into())),
                FieldDiff::new("route 10.9.0.0/16", Some("pcx-1".into()), None),
            ]
        );
        let one_assoc = ObservedRouteTable { associations: vec![("a1".into(), "subnet-b".into())], ..good };
        assert_eq!(diff(&want, &[], Some(&one_assoc)).fields[0].field, "association subnet-a");
    }

    #[test]
    fn a_new_table_names_what_does_not_exist_yet() {
        let want = DesiredRouteTable {
            default_target: Id::Pending("internet gateway s-igw".into()),
            subnet_ids: vec![Id::Pending("subnet s-public-a".into())],
        };
        let c = diff(&want, &[], None);
        assert_eq!(c.fields[0].new.as_deref(), Some("(internet gateway s-igw, once created)"));
        assert_eq!(c.fields[1].field, "association (subnet s-public-a, once created)");
    }
}
