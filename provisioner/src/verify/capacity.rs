//! Whether the account can hold what the stack adds: the Service Quotas it would exceed (with
//! what already uses them), the instance type offered in every zone the stack uses, the AMI.

use super::Check;
use crate::error::{AwsContext, Error};
use crate::reconcile::Ctx;
use crate::resources::capacity::{self, AmiChoice};
use crate::resources::network::{self, filter};

/// EC2's quota for On-Demand instances of the standard families (A, C, D, H, I, M, R, T, Z), in vCPUs.
const STANDARD_VCPUS: (&str, &str) = ("ec2", "L-1216C47A");
const STANDARD_FAMILIES: &str = "acdhimrtz";
const APPLICATION_LOAD_BALANCERS: (&str, &str) = ("elasticloadbalancing", "L-53DA6B97");
const VPCS: (&str, &str) = ("vpc", "L-F678F1CE");
const SECURITY_GROUPS: (&str, &str) = ("vpc", "L-E79EC296");
const FARGATE_VCPUS: (&str, &str) = ("fargate", "L-3032A538");
/// The security groups the stack makes (load balancer's, instances').
const STACK_SECURITY_GROUPS: u32 = 2;

pub async fn checks(ctx: &Ctx) -> Vec<Check> {
    let (vcpus, lbs, vpcs, groups, fargate, offered, ami) = tokio::join!(
        instance_vcpus(ctx),
        load_balancers(ctx),
        vpcs(ctx),
        security_groups(ctx),
        fargate(ctx),
        offered(ctx),
        ami(ctx),
    );
    vec![vcpus, lbs, vpcs, groups, fargate, offered, ami]
}

/// The applied value of a quota (Service Quotas). A quota never raised in this account may have
/// no applied value (`NoSuchResourceException`): then AWS's default, as the Terraform AWS
/// provider reads it.
async fn quota(ctx: &Ctx, (service, code): (&str, &str)) -> Result<f64, Error> {
    let quotas = &ctx.clients.quotas;
    let what = || format!("{service} {code}");
    // A check, not a step of `up`: an API that does not answer is not retried for minutes.
    let briefly = || {
        aws_sdk_servicequotas::config::Builder::default()
            .retry_config(aws_smithy_types::retry::RetryConfig::standard().with_max_attempts(2))
    };
    let applied = quotas.get_service_quota().service_code(service).quota_code(code).customize();
    let applied = applied.config_override(briefly()).send().await.ctx("read the Service Quota", what());
    let value = match crate::error::absent(applied)? {
        Some(out) => out.quota().and_then(|q| q.value()),
        None => {
            let default = quotas.get_aws_default_service_quota().service_code(service).quota_code(code).customize();
            let default = default.config_override(briefly()).send().await;
            default.ctx("read AWS's default Service Quota", what())?.quota().and_then(|q| q.value())
        }
    };
    value.ok_or_else(|| Error::Refused(format!("Service Quotas answered no value for {service} {code}")))
}

async fn instance_vcpus(ctx: &Ctx) -> Check {
    const NAME: &str = "quota: EC2 vCPUs";
    let cap = &ctx.stack.capacity;
    let family = cap.instance_type.split('.').next().unwrap_or_default();
    let Some(per) = stack::catalog::lookup(&cap.instance_type).map(|t| t.vcpus) else {
        let e = Error::Refused(format!("the vCPUs of {} are not known here", cap.instance_type));
        return Check::not_checked(NAME, &e);
    };
    if !family.starts_with(|c: char| STANDARD_FAMILIES.contains(c)) {
        let e = Error::Refused(format!("{family} is not a standard family; its quota is not checked"));
        return Check::not_checked(NAME, &e);
    }
    let what = format!("capacity.max {} × {} vCPUs of {}", cap.max, per, cap.instance_type);
    let judged = Judged {
        name: NAME,
        quota: STANDARD_VCPUS,
        needs: cap.max * per,
        what: &what,
        lower: "lower capacity.max or pick a smaller instance_type",
    };
    judged.against(ctx, others_vcpus(ctx)).await
}

/// vCPUs of the running standard instances that are not the stack's.
async fn others_vcpus(ctx: &Ctx) -> Result<u32, Error> {
    let ours = capacity::names(&ctx.stack).asg;
    let mut pages = ctx
        .clients
        .ec2
        .describe_instances()
        // One filter, two values: two filters on one name would both have to hold.
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("instance-state-name")
                .values("pending")
                .values("running")
                .build(),
        )
        .into_paginator()
        .send();
    let mut total = 0;
    while let Some(page) = pages.next().await {
        let page = page.ctx("list the instances of", &ctx.clients.region)?;
        for i in page.reservations().iter().flat_map(|r| r.instances()) {
            let theirs = !i
                .tags()
                .iter()
                .any(|t| t.key() == Some("aws:autoscaling:groupName") && t.value() == Some(ours.as_str()));
            if theirs && counts_as_on_demand_standard(i) {
                total += vcpus_of(i);
            }
        }
    }
    Ok(total)
}

/// Whether an instance uses the On-Demand Standard vCPU quota: On-Demand (Spot and Scheduled
/// instances have their own quotas), on shared or dedicated instances (not Dedicated Hosts), of a
/// standard family.
fn counts_as_on_demand_standard(i: &aws_sdk_ec2::types::Instance) -> bool {
    let on_demand = i.instance_lifecycle().is_none();
    let on_host = i.placement().and_then(|p| p.tenancy()) == Some(&aws_sdk_ec2::types::Tenancy::Host);
    on_demand && !on_host && i.instance_type().is_some_and(|t| is_standard_family(t.as_str()))
}

/// A standard family (A, C, D, H, I, M, R, T, Z and their variants: `m5`, `c7g`, `im4gn`), not one
/// whose letters only begin like one and that has a quota of its own (`inf`, `dl`, `trn`, `hpc`,
/// `mac`).
fn is_standard_family(instance_type: &str) -> bool {
    let letters: String = instance_type.chars().take_while(char::is_ascii_lowercase).collect();
    let own_quota = ["inf", "dl", "trn", "hpc", "mac"].iter().any(|f| letters.starts_with(f));
    letters.starts_with(|c: char| STANDARD_FAMILIES.contains(c)) && !own_quota
}

/// An instance's vCPUs as EC2 reports them (cores × threads per core); the catalog's figure when
/// EC2 gives none.
fn vcpus_of(i: &aws_sdk_ec2::types::Instance) -> u32 {
    let reported = i.cpu_options().and_then(|c| Some(c.core_count()? * c.threads_per_core()?));
    match reported.and_then(|n| u32::try_from(n).ok()) {
        Some(n) if n > 0 => n,
        _ => i.instance_type().and_then(|t| stack::catalog::lookup(t.as_str())).map_or(0, |t| t.vcpus),
    }
}

/// A quota judged against what others use (`others`) and what the stack needs.
struct Judged<'a> {
    name: &'static str,
    quota: (&'static str, &'static str),
    needs: u32,
    what: &'a str,
    lower: &'a str,
}

impl Judged<'_> {
    /// Reads the quota and what others use at once, and judges them.
    async fn against(self, ctx: &Ctx, others: impl Future<Output = Result<u32, Error>>) -> Check {
        match tokio::try_join!(quota(ctx, self.quota), others) {
            Ok((limit, others)) => self.judge(limit, others),
            Err(e) => Check::not_checked(self.name, &e),
        }
    }

    /// Compares what others use plus what the stack needs with the quota `limit`.
    fn judge(&self, limit: f64, others: u32) -> Check {
        let (name, (service, code), needs) = (self.name, self.quota, self.needs);
        let detail = format!("quota {limit}, {others} used by others, the stack needs {needs} ({})", self.what);
        if f64::from(others + needs) <= limit {
            return Check::passed(name, detail);
        }
        Check::failed(
            name,
            detail,
            format!(
                "request an increase (Service Quotas, {service} {code}: `aws service-quotas request-service-quota-increase --service-code {service} --quota-code {code} --desired-value {}`) or {}",
                others + needs,
                self.lower
            ),
        )
    }
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

async fn load_balancers(ctx: &Ctx) -> Check {
    let ours = crate::resources::load_balancer::lb_name(&ctx.stack);
    let others = async {
        let mut pages = ctx.clients.elb.describe_load_balancers().into_paginator().send();
        let mut n = 0;
        while let Some(page) = pages.next().await {
            let page = page.ctx("list the load balancers of", &ctx.clients.region)?;
            // Network and Gateway load balancers have quotas of their own.
            let application = |l: &&aws_sdk_elasticloadbalancingv2::types::LoadBalancer| {
                l.r#type() == Some(&aws_sdk_elasticloadbalancingv2::types::LoadBalancerTypeEnum::Application)
            };
            n += page
                .load_balancers()
                .iter()
                .filter(application)
                .filter(|l| l.load_balancer_name() != Some(ours.as_str()))
                .count();
        }
        Ok(count(n))
    };
    let what = "1 application load balancer";
    let judged = Judged {
        name: "quota: application load balancers",
        quota: APPLICATION_LOAD_BALANCERS,
        needs: 1,
        what,
        lower: "delete one you no longer use",
    };
    judged.against(ctx, others).await
}

async fn vpcs(ctx: &Ctx) -> Check {
    let others = async {
        let mut pages = ctx.clients.ec2.describe_vpcs().into_paginator().send();
        let mut n = 0;
        while let Some(page) = pages.next().await {
            let page = page.ctx("list the VPCs of", &ctx.clients.region)?;
            n += page.vpcs().iter().filter(|v| !owned(ctx, v.tags())).count();
        }
        Ok(count(n))
    };
    let judged =
        Judged { name: "quota: VPCs", quota: VPCS, needs: 1, what: "1 VPC", lower: "delete a VPC you no longer use" };
    judged.against(ctx, others).await
}

async fn security_groups(ctx: &Ctx) -> Check {
    let others = async {
        let mut pages = ctx.clients.ec2.describe_security_groups().into_paginator().send();
        let mut n = 0;
        while let Some(page) = pages.next().await {
            let page = page.ctx("list the security groups of", &ctx.clients.region)?;
            n += page.security_groups().iter().filter(|g| !owned(ctx, g.tags())).count();
        }
        Ok(count(n))
    };
    let judged = Judged {
        name: "quota: security groups",
        quota: SECURITY_GROUPS,
        needs: STACK_SECURITY_GROUPS,
        what: "the load balancer's and the instances'",
        lower: "delete groups you no longer use",
    };
    judged.against(ctx, others).await
}

/// True for what carries the stack's ownership tag (already counted in what the stack needs).
fn owned(ctx: &Ctx, tags: &[aws_sdk_ec2::types::Tag]) -> bool {
    tags.iter().any(|t| t.key() == Some(stack::OWNERSHIP_TAG) && t.value() == Some(ctx.stack.name.as_str()))
}

/// What a Fargate load test (`provisioner loadtest`) may use: said, not judged (its size is given
/// when it runs).
async fn fargate(ctx: &Ctx) -> Check {
    const NAME: &str = "quota: Fargate vCPUs";
    match quota(ctx, FARGATE_VCPUS).await {
        Ok(limit) => Check::passed(
            NAME,
            format!("quota {limit}: `provisioner loadtest` may run up to {limit} workers of 1 vCPU at once"),
        ),
        Err(e) => Check::not_checked(NAME, &e),
    }
}

/// The account's Fargate On-Demand vCPU quota (`provisioner loadtest` holds its workers to it).
pub async fn fargate_vcpus(ctx: &Ctx) -> Result<f64, Error> {
    quota(ctx, FARGATE_VCPUS).await
}

/// The instance type in every zone the stack's subnets take (the first `availability_zones`).
async fn offered(ctx: &Ctx) -> Check {
    const NAME: &str = "instance type";
    let t = &ctx.stack.capacity.instance_type;
    let read = async {
        let zones = network::availability_zones(ctx).await?;
        let out = ctx
            .clients
            .ec2
            .describe_instance_type_offerings()
            .location_type(aws_sdk_ec2::types::LocationType::AvailabilityZone)
            .filters(filter("instance-type", t.as_str()))
            .send()
            .await
            .ctx("list the zones that offer", t)?;
        let offered: Vec<String> =
            out.instance_type_offerings().iter().filter_map(|o| o.location().map(str::to_owned)).collect();
        Ok::<_, Error>((zones, offered))
    };
    let (zones, offered) = match read.await {
        Ok(found) => found,
        Err(e) => return Check::not_checked(NAME, &e),
    };
    let used: Vec<&String> = zones.iter().take(usize::from(ctx.stack.network.availability_zones)).collect();
    let missing: Vec<&str> = used.iter().filter(|z| !offered.contains(z)).map(|z| z.as_str()).collect();
    let used_text = used.iter().map(|z| z.as_str()).collect::<Vec<_>>().join(", ");
    if missing.is_empty() {
        return Check::passed(NAME, format!("{t} is offered in {used_text}"));
    }
    Check::failed(
        NAME,
        format!("{t} is not offered in {} (the stack's subnets take {used_text})", missing.join(", ")),
        format!(
            "pick an instance_type offered there (`aws ec2 describe-instance-type-offerings --location-type availability-zone --filters Name=location,Values={}`)",
            missing.join(",")
        ),
    )
}

async fn ami(ctx: &Ctx) -> Check {
    const NAME: &str = "ami";
    let choice = match capacity::resolve_ami(ctx).await {
        Ok(c) => c,
        Err(e) => {
            return Check::failed(
                NAME,
                format!("{e:#}"),
                "set capacity.ami to an ecs-optimized family or an AMI id of this region",
            );
        }
    };
    let (id, from) = match &choice {
        AmiChoice::Named(id) => (id.clone(), "capacity.ami".to_owned()),
        AmiChoice::Recommended { parameter, recommended, .. } => (recommended.clone(), parameter.clone()),
    };
    let found = ctx.clients.ec2.describe_images().image_ids(&id).send().await.ctx("describe image", &id);
    match found {
        Ok(out) if out.images().iter().any(|i| i.image_id() == Some(id.as_str())) => {
            Check::passed(NAME, format!("{id} (from {from}) exists"))
        }
        Ok(_) => Check::failed(
            NAME,
            format!("{id} (from {from}) does not exist in {}", ctx.clients.region),
            "name an AMI of this region in capacity.ami, or an ecs-optimized family",
        ),
        Err(e) if e.code().is_some_and(|c| c.starts_with("InvalidAMIID")) => Check::failed(
            NAME,
            format!("{id} (from {from}): {e:#}"),
            "name an AMI of this region in capacity.ami, or an ecs-optimized family",
        ),
        Err(e) => Check::not_checked(NAME, &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::Outcome;

    #[test]
    fn standard_families_are_told_from_those_with_their_own_quota() {
        for t in ["t3.small", "m5.large", "c7g.xlarge", "r6i.2xlarge", "im4gn.large", "z1d.large", "a1.medium"] {
            assert!(is_standard_family(t), "{t}");
        }
        for t in [
            "inf2.xlarge",
            "dl1.24xlarge",
            "trn1.2xlarge",
            "hpc6a.48xlarge",
            "mac2.metal",
            "p3.2xlarge",
            "g5.xlarge",
            "x2idn.large",
            "u-6tb1.metal",
        ] {
            assert!(!is_standard_family(t), "{t}");
        }
    }

    #[test]
    fn a_quota_fails_only_when_others_and_the_stack_exceed_it() {
        for (limit, others, needs, outcome) in [
            (8.0, 0, 8, Outcome::Passed),
            (8.0, 1, 8, Outcome::Failed),
            (32.0, 20, 8, Outcome::Passed),
            (5.0, 5, 1, Outcome::Failed),
        ] {
            let judged = Judged { name: "quota: x", quota: VPCS, needs, what: "what", lower: "lower it" };
            let c = judged.judge(limit, others);
            assert_eq!(c.outcome, outcome, "{limit} {others} {needs}");
            if outcome == Outcome::Failed {
                let fix = c.fix.expect("a failure names its fix");
                assert!(
                    fix.contains(&format!("--desired-value {}", others + needs)) && fix.ends_with("or lower it"),
                    "{fix}"
                );
            }
        }
    }
}
