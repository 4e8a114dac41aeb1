//! The Auto Scaling group across the public subnets: instances protected from scale-in (ECS's
//! managed termination decides what to drain), desired capacity left to the capacity provider
//! after creation, and the launch template pinned to an explicit version. A new version rolls out
//! by instance refresh (protected instances replaced too, `ScaleInProtectedInstances = Refresh`;
//! AWS's default `Wait` blocks an hour and then fails), with the group moved to the new version
//! when the refresh succeeds. Whether a refresh is due is read from AWS — the group's version and
//! each instance's against the wanted one, and the refresh in progress — so a killed run is
//! finished by the next.

use aws_sdk_autoscaling::types::{
    DesiredConfiguration, LaunchTemplateSpecification, RefreshPreferences, ScaleInProtectedInstances, Tag as AsgTag,
};

use super::AUTO_SCALING_GROUP;
use super::Names;
use super::template::TemplateRef;
use crate::error::{AwsContext, Error, gone};
use crate::reconcile::known::all_known;
use crate::reconcile::step::Observed;
use crate::reconcile::{Change, Ctx, FieldDiff, Id, Plan, Step, compare, tags};
use crate::wait::Wait;

#[derive(Debug, Clone, PartialEq)]
pub struct ObservedAsg {
    pub arn: String,
    pub min: i32,
    pub max: i32,
    pub desired: i32,
    pub subnets: Vec<String>,
    pub launch_template_id: Option<String>,
    pub launch_template_version: Option<String>,
    pub protected: bool,
    /// (instance id, the launch template version it was launched from)
    pub instances: Vec<(String, Option<String>)>,
    /// How many of them are InService.
    pub in_service: usize,
    /// The target version of an instance refresh that is under way (looked up only when the
    /// group or an instance is not on the wanted version).
    pub refreshing_to: Option<String>,
    pub tags: Vec<(String, String)>,
}

impl Observed for ObservedAsg {
    fn id(&self) -> &str {
        &self.arn
    }
}

impl ObservedAsg {
    pub fn instance_ids(&self) -> Vec<String> {
        self.instances.iter().map(|(id, _)| id.clone()).collect()
    }
}

fn version_text(v: Option<i64>) -> String {
    v.map_or_else(|| Id::Pending("the launch template's new version".into()).to_string(), |v| v.to_string())
}

pub fn diff_asg(
    stack: &stack::Stack,
    subnets: &[Id],
    template: &TemplateRef,
    observed: Option<&ObservedAsg>,
) -> Change {
    let cap = &stack.capacity;
    let mut want_subnets: Vec<String> = subnets.iter().map(ToString::to_string).collect();
    want_subnets.sort();
    let want_version = version_text(template.version);
    let Some(o) = observed else {
        return Change::create(vec![
            FieldDiff::new("min/desired/max", None, Some(format!("{}/{}/{}", cap.min, cap.desired, cap.max))),
            FieldDiff::new("subnets", None, Some(want_subnets.join(","))),
            FieldDiff::new("launch_template", None, Some(format!("{} version {want_version}", template.id))),
            FieldDiff::new("protect_from_scale_in", None, Some("true".into())),
        ]);
    };
    let mut have_subnets = o.subnets.clone();
    have_subnets.sort();
    // Desired capacity is set at creation only: afterwards the capacity provider's managed
    // scaling owns it, and resetting it would fight ECS.
    let mut fields: Vec<FieldDiff> = [
        compare("min", &o.min, &i32::try_from(cap.min).unwrap_or(i32::MAX)),
        compare("max", &o.max, &i32::try_from(cap.max).unwrap_or(i32::MAX)),
        compare("subnets", &have_subnets.join(","), &want_subnets.join(",")),
        compare("protect_from_scale_in", &o.protected, &true),
    ]
    .into_iter()
    .flatten()
    .collect();
    if o.launch_template_id.as_deref() != Some(template.id.to_string().as_str()) {
        fields.push(FieldDiff::new("launch_template", o.launch_template_id.clone(), Some(template.id.to_string())));
    }
    let refreshing = o.refreshing_to.as_deref() == Some(want_version.as_str());
    if o.launch_template_version.as_deref() != Some(want_version.as_str()) && !refreshing {
        let how = if o.instances.is_empty() { "" } else { " (instance refresh)" };
        fields.push(FieldDiff::new(
            "launch_template_version",
            o.launch_template_version.clone(),
            Some(format!("{want_version}{how}")),
        ));
    } else if !refreshing {
        let stale = o.instances.iter().filter(|(_, v)| v.as_deref() != Some(want_version.as_str())).count();
        if stale > 0 {
            fields.push(FieldDiff::new(
                "instances",
                Some(format!("{stale} on an older launch template version")),
                Some(format!("replaced by an instance refresh to version {want_version}")),
            ));
        }
    }
    fields.extend(tags::diff(&asg_tag_pairs(stack), &o.tags));
    Change::update(fields)
}

fn asg_tag_pairs(stack: &stack::Stack) -> Vec<(String, String)> {
    let mut t = tags::desired(stack, &format!("{}-instance", stack.name));
    // ECS manages the group's capacity through the capacity provider.
    t.push(("AmazonECSManaged".into(), String::new()));
    t
}

fn asg_tags(stack: &stack::Stack, name: &str) -> Vec<AsgTag> {
    tags_of_group(name, asg_tag_pairs(stack))
}

/// `pairs` as the group `name`'s tags, each given to the instances it launches too.
pub fn tags_of_group(name: &str, pairs: Vec<(String, String)>) -> Vec<AsgTag> {
    pairs
        .into_iter()
        .map(|(k, v)| {
            AsgTag::builder()
                .key(k)
                .value(v)
                .propagate_at_launch(true)
                .resource_id(name)
                .resource_type("auto-scaling-group")
                .build()
        })
        .collect()
}

/// The stack's group named `name`, if it exists (ours, by tag).
pub async fn observe(ctx: &Ctx, name: &str) -> Result<Option<ObservedAsg>, Error> {
    let out = ctx
        .clients
        .autoscaling
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(name)
        .send()
        .await
        .ctx("describe Auto Scaling group", name)?;
    let found: Vec<ObservedAsg> = out
        .auto_scaling_groups()
        .iter()
        .map(|g| ObservedAsg {
            arn: g.auto_scaling_group_arn().unwrap_or_default().to_owned(),
            min: g.min_size().unwrap_or(0),
            max: g.max_size().unwrap_or(0),
            desired: g.desired_capacity().unwrap_or(0),
            subnets: g
                .vpc_zone_identifier()
                .unwrap_or_default()
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            launch_template_id: g.launch_template().and_then(|t| t.launch_template_id()).map(str::to_owned),
            launch_template_version: g.launch_template().and_then(|t| t.version()).map(str::to_owned),
            protected: g.new_instances_protected_from_scale_in().unwrap_or(false),
            instances: g
                .instances()
                .iter()
                .filter_map(|i| {
                    Some((
                        i.instance_id()?.to_owned(),
                        i.launch_template().and_then(|t| t.version()).map(str::to_owned),
                    ))
                })
                .collect(),
            in_service: g
                .instances()
                .iter()
                .filter(|i| i.lifecycle_state().map(|s| s.as_str()) == Some("InService"))
                .count(),
            refreshing_to: None,
            tags: g
                .tags()
                .iter()
                .map(|t| (t.key().unwrap_or_default().to_owned(), t.value().unwrap_or_default().to_owned()))
                .collect(),
        })
        .collect();
    tags::pick_owned("Auto Scaling group", name, &ctx.owner(), found, |g| g.arn.clone(), |g| g.tags.clone())
}

/// The group with the instance refresh under way, looked up only when the group or one of its
/// instances is not on the wanted version.
async fn observe_with_refresh(ctx: &Ctx, name: &str, want_version: Option<i64>) -> Result<Option<ObservedAsg>, Error> {
    let Some(mut g) = observe(ctx, name).await? else { return Ok(None) };
    // A version that does not exist yet has no refresh toward it.
    let Some(want) = want_version.map(|v| v.to_string()) else { return Ok(Some(g)) };
    let behind =
        g.launch_template_version.as_ref() != Some(&want) || g.instances.iter().any(|(_, v)| v.as_ref() != Some(&want));
    if behind && !g.instances.is_empty() {
        g.refreshing_to = refresh_in_progress(ctx, name).await?;
    }
    Ok(Some(g))
}

/// The target version of the instance refresh under way, if any.
async fn refresh_in_progress(ctx: &Ctx, name: &str) -> Result<Option<String>, Error> {
    let out = ctx
        .clients
        .autoscaling
        .describe_instance_refreshes()
        .auto_scaling_group_name(name)
        .max_records(5)
        .send()
        .await
        .ctx("describe the instance refreshes of", name)?;
    Ok(out
        .instance_refreshes()
        .iter()
        .find(|r| {
            r.status().is_some_and(|s| {
                matches!(s.as_str(), "Pending" | "InProgress" | "Cancelling" | "Baking" | "RollbackInProgress")
            })
        })
        .map(|r| {
            r.desired_configuration()
                .and_then(|d| d.launch_template())
                .and_then(|t| t.version())
                .unwrap_or("(unknown)")
                .to_owned()
        }))
}

fn template_spec(template: &TemplateRef) -> Result<LaunchTemplateSpecification, Error> {
    let version = template.version.ok_or_else(|| Error::NotYetKnown("the launch template's new version".into()))?;
    Ok(LaunchTemplateSpecification::builder()
        .launch_template_id(template.id.get()?)
        .version(version.to_string())
        .build())
}

/// Replaces the instances that are not on `template`'s version, each drained by ECS first; the
/// group moves to the version when the refresh succeeds. One already under way is left to run.
async fn start_refresh(ctx: &Ctx, name: &str, template: &TemplateRef) -> Result<(), Error> {
    let r = ctx
        .clients
        .autoscaling
        .start_instance_refresh()
        .auto_scaling_group_name(name)
        .desired_configuration(DesiredConfiguration::builder().launch_template(template_spec(template)?).build())
        .preferences(
            RefreshPreferences::builder()
                .min_healthy_percentage(100)
                .max_healthy_percentage(200)
                .instance_warmup(60)
                .skip_matching(true)
                .scale_in_protected_instances(ScaleInProtectedInstances::Refresh)
                .build(),
        )
        .send()
        .await
        .ctx("start an instance refresh of", name);
    match r {
        Ok(_) => {
            ctx.progress(format!("instance refresh of {name} started: instances are replaced one by one"));
            Ok(())
        }
        Err(e) if e.code() == Some("InstanceRefreshInProgress") => {
            ctx.progress(format!("an instance refresh of {name} is already in progress; it goes on"));
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Creates the group and waits until it is listed: its ARN (the capacity provider needs it).
async fn create(ctx: &Ctx, name: &str, template: &TemplateRef, subnets: &str) -> Result<String, Error> {
    let asg = &ctx.clients.autoscaling;
    let cap = &ctx.stack.capacity;
    let spec = template_spec(template)?;
    ctx.wait(Wait::Propagation, "IAM to publish the instance profile", || async {
        ctx.wait(Wait::Consistency, "the subnets to be visible to Auto Scaling", || async {
            asg.create_auto_scaling_group()
                .auto_scaling_group_name(name)
                .launch_template(spec.clone())
                .min_size(i32::try_from(cap.min).unwrap_or(0))
                .max_size(i32::try_from(cap.max).unwrap_or(1))
                .desired_capacity(i32::try_from(cap.desired).unwrap_or(0))
                .vpc_zone_identifier(subnets)
                .new_instances_protected_from_scale_in(true)
                .set_tags(Some(asg_tags(&ctx.stack, name)))
                .send()
                .await
                .ctx("create Auto Scaling group", name)
        })
        .await
    })
    .await?;
    ctx.progress(format!("created Auto Scaling group {name}"));
    // The capacity provider needs the group's ARN: wait until the new group is listed.
    let listed = ctx
        .wait(Wait::Consistency, &format!("Auto Scaling group {name} to be listed"), || async {
            observe(ctx, name)
                .await?
                .ok_or_else(|| crate::wait::not_yet("AutoScalingGroup.NotFound", name, "created, not listed yet"))
        })
        .await?;
    Ok(listed.arn)
}

async fn apply(
    ctx: &Ctx,
    name: &str,
    template: &TemplateRef,
    subnets: &[Id],
    change: &Change,
    observed: Option<&ObservedAsg>,
) -> Result<Option<String>, Error> {
    let asg = &ctx.clients.autoscaling;
    let cap = &ctx.stack.capacity;
    let subnets = all_known(subnets)?.join(",");
    let Some(o) = observed else { return create(ctx, name, template, &subnets).await.map(Some) };
    // A new version reaches running instances through a refresh; an empty group just takes it.
    let wants_refresh = !o.instances.is_empty() && (change.has("launch_template_version") || change.has("instances"));
    // The deploy role may not start a refresh (it could move the group to any version): run by
    // it, the group takes the new version for the instances it launches from now on, and the
    // running ones are left to an administrator's `up`.
    let refresh = wants_refresh && !crate::resources::iam::run_by_deploy_role(ctx).await?;
    let settings = ["min", "max", "subnets", "protect_from_scale_in", "launch_template"].iter().any(|f| change.has(f));
    if settings || (change.has("launch_template_version") && !refresh) {
        let mut req = asg
            .update_auto_scaling_group()
            .auto_scaling_group_name(name)
            .min_size(i32::try_from(cap.min).unwrap_or(0))
            .max_size(i32::try_from(cap.max).unwrap_or(1))
            .vpc_zone_identifier(&subnets)
            .new_instances_protected_from_scale_in(true);
        if !refresh {
            req = req.launch_template(template_spec(template)?);
        }
        req.send().await.ctx("update Auto Scaling group", name)?;
        ctx.progress(format!("updated Auto Scaling group {name}"));
    }
    if refresh {
        start_refresh(ctx, name, template).await?;
    } else if wants_refresh {
        ctx.progress(format!(
            "Auto Scaling group {name} launches launch template version {} from now on; its {} running \
             instances keep theirs until an administrator's `up` refreshes them (the CI deploy role may not start \
             an instance refresh)",
            template.version.map_or_else(|| "(new)".to_owned(), |v| v.to_string()),
            o.instances.len()
        ));
    }
    if change.has_tags() {
        asg.create_or_update_tags()
            .set_tags(Some(asg_tags(&ctx.stack, name)))
            .send()
            .await
            .ctx("tag Auto Scaling group", name)?;
    }
    Ok(None)
}

/// The group; its ARN (pending in Plan mode before it exists).
pub async fn converge(
    ctx: &Ctx,
    plan: &mut Plan,
    n: &Names,
    template: &TemplateRef,
    subnets: &[Id],
) -> Result<(Id, Option<u32>), Error> {
    let name = &n.asg;
    let outcome = Step::new(ctx, AUTO_SCALING_GROUP, name)
        .converge(
            plan,
            async || observe_with_refresh(ctx, name, template.version).await,
            |o| diff_asg(&ctx.stack, subnets, template, o),
            async |c: &Change, o: Option<&ObservedAsg>| apply(ctx, name, template, subnets, c, o).await,
        )
        .await?;
    // A group made just now has the stack's desired capacity.
    let made = ctx.applying().then_some(ctx.stack.capacity.desired);
    let desired = outcome.observed.as_ref().and_then(|g| u32::try_from(g.desired).ok()).or(made);
    Ok((outcome.id_or(|| format!("Auto Scaling group {name}")), desired))
}

/// Scale-in protection keeps instances alive through a ForceDelete: remove it, scale to zero,
/// delete the group, terminate whatever is left and wait for it.
async fn delete(ctx: &Ctx, name: &str, g: &ObservedAsg) -> Result<(), Error> {
    let asg = &ctx.clients.autoscaling;
    let ids = g.instance_ids();
    if !ids.is_empty() {
        asg.set_instance_protection()
            .auto_scaling_group_name(name)
            .set_instance_ids(Some(ids.clone()))
            .protected_from_scale_in(false)
            .send()
            .await
            .ctx("remove scale-in protection in", name)?;
    }
    asg.update_auto_scaling_group()
        .auto_scaling_group_name(name)
        .min_size(0)
        .max_size(0)
        .desired_capacity(0)
        .send()
        .await
        .ctx("scale to zero", name)?;
    let deleted = asg.delete_auto_scaling_group().auto_scaling_group_name(name).force_delete(true).send().await;
    gone(deleted.ctx("delete Auto Scaling group", name))?;
    if !ids.is_empty() {
        let r = ctx.clients.ec2.terminate_instances().set_instance_ids(Some(ids.clone())).send().await;
        gone(r.ctx("terminate the instances of", name))?;
        wait_terminated(ctx, &ids).await?;
    }
    ctx.progress(format!("deleted Auto Scaling group {name} and its {} instances", ids.len()));
    Ok(())
}

async fn wait_terminated(ctx: &Ctx, ids: &[String]) -> Result<(), Error> {
    ctx.wait(Wait::Settling(&["Instances.StillRunning"]), "the instances to terminate", || async {
        let out = ctx
            .clients
            .ec2
            .describe_instances()
            .set_instance_ids(Some(ids.to_vec()))
            .send()
            .await
            .ctx("describe instances", ids.join(","))?;
        let alive: Vec<String> = out
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .filter(|i| i.state().and_then(|s| s.name()).is_some_and(|s| s.as_str() != "terminated"))
            .filter_map(|i| i.instance_id().map(str::to_owned))
            .collect();
        if alive.is_empty() {
            return Ok(());
        }
        ctx.progress(format!("waiting for {} instances to terminate", alive.len()));
        Err(crate::wait::not_yet(
            "Instances.StillRunning",
            alive.join(", "),
            format!("{} instances are not terminated yet", alive.len()),
        ))
    })
    .await
}

pub async fn teardown(ctx: &Ctx, plan: &mut Plan, n: &Names) -> Result<(), Error> {
    let Some(g) = observe(ctx, &n.asg).await? else { return Ok(()) };
    if ctx.applying() {
        delete(ctx, &n.asg, &g).await?;
    }
    let mut change = Change::delete();
    change.fields.push(FieldDiff::new(
        "instances",
        Some(g.instances.len().to_string()),
        Some("0 (terminated, scale-in protection removed)".into()),
    ));
    plan.push(AUTO_SCALING_GROUP, &n.asg, Some(g.arn), change);
    Ok(())
}

pub async fn leftovers(ctx: &Ctx, n: &Names) -> Result<Vec<String>, Error> {
    let mut left = Vec::new();
    if let Some(g) = observe(ctx, &n.asg).await? {
        left.push(format!("Auto Scaling group {}", g.arn));
    }
    let running = ctx
        .clients
        .ec2
        .describe_instances()
        .filters(crate::resources::network::owned_filter(&ctx.stack))
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("instance-state-name")
                .values("pending")
                .values("running")
                .values("stopping")
                .values("stopped")
                .build(),
        )
        .send()
        .await
        .ctx("sweep instances of", &ctx.stack.name)?;
    left.extend(
        running
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .filter_map(|i| i.instance_id())
            .map(|id| format!("instance {id}")),
    );
    Ok(left)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(version: Option<i64>) -> TemplateRef {
        TemplateRef { id: Id::Known("lt-1".into()), version, image_id: "ami-1".into() }
    }

    fn observed(s: &stack::Stack) -> ObservedAsg {
        ObservedAsg {
            arn: "arn".into(),
            min: 1,
            max: 4,
            desired: 3,
            subnets: vec!["subnet-a".into(), "subnet-b".into()],
            launch_template_id: Some("lt-1".into()),
            launch_template_version: Some("1".into()),
            protected: true,
            instances: vec![("i-1".into(), Some("1".into())), ("i-2".into(), Some("1".into()))],
            in_service: 2,
            refreshing_to: None,
            tags: asg_tag_pairs(s),
        }
    }

    fn subnets() -> Vec<Id> {
        vec![Id::Known("subnet-b".into()), Id::Known("subnet-a".into())]
    }

    #[test]
    fn desired_capacity_is_left_to_managed_scaling() {
        let s = crate::resources::test_stack();
        assert!(
            diff_asg(&s, &subnets(), &template(Some(1)), Some(&observed(&s))).is_no_op(),
            "desired 3 != 2 is ECS's business"
        );
        let unprotected = ObservedAsg { protected: false, ..observed(&s) };
        assert_eq!(
            diff_asg(&s, &subnets(), &template(Some(1)), Some(&unprotected)).fields[0].field,
            "protect_from_scale_in"
        );
    }

    #[test]
    fn a_refresh_is_due_from_what_aws_says_not_from_what_this_run_did() {
        let s = crate::resources::test_stack();
        // A new version exists; the group is still on 1 (a run stopped before the refresh).
        let c = diff_asg(&s, &subnets(), &template(Some(2)), Some(&observed(&s)));
        assert_eq!(
            c.fields,
            vec![FieldDiff::new("launch_template_version", Some("1".into()), Some("2 (instance refresh)".into()))]
        );
        // A refresh to 2 is under way: nothing more to do.
        let refreshing = ObservedAsg { refreshing_to: Some("2".into()), ..observed(&s) };
        assert!(diff_asg(&s, &subnets(), &template(Some(2)), Some(&refreshing)).is_no_op());
        // The group is on 2 but an instance still runs 1 (a refresh that failed or was cancelled).
        let mixed = ObservedAsg {
            launch_template_version: Some("2".into()),
            instances: vec![("i-1".into(), Some("2".into())), ("i-2".into(), Some("1".into()))],
            ..observed(&s)
        };
        let c = diff_asg(&s, &subnets(), &template(Some(2)), Some(&mixed));
        assert_eq!(c.fields[0].field, "instances");
        assert_eq!(c.fields[0].old.as_deref(), Some("1 on an older launch template version"));
        // An empty group just takes the version.
        let empty = ObservedAsg { instances: vec![], ..observed(&s) };
        let c = diff_asg(&s, &subnets(), &template(Some(2)), Some(&empty));
        assert_eq!(c.fields[0].new.as_deref(), Some("2"));
    }
}
