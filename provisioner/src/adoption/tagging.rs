//! The tags `adopt` reads and writes itself: those of the kinds whose plan rows do not compare
//! tags (the ECS service, its task definition's revision, its scalable target), and the ownership and stack tags
//! `adopt --yes` puts on each resource it takes over, with the call each service takes.

use std::collections::BTreeMap;

use crate::error::{AwsContext, Error, absent};
use crate::reconcile::{Ctx, FieldDiff, Noun, tags};
use crate::resources::service::{ECS_SERVICE, SERVICE_AUTOSCALING, TASK_DEFINITION};

/// The stack's tags missing on the adopted service and task definition revision (`rows`: plan
/// rows as (kind, id)), by id.
pub async fn unseen(ctx: &Ctx, rows: &[(Noun, String)]) -> Result<BTreeMap<String, Vec<FieldDiff>>, Error> {
    let want = ctx.stack.resource_tags();
    let mut missing = BTreeMap::new();
    for (noun, id) in rows {
        // An old-format service ARN (service/NAME) cannot be tagged or listed: `judge` says so.
        let have = if *noun == ECS_SERVICE && id.split('/').count() >= 3 {
            service_tags(ctx, id).await?
        } else if *noun == ECS_SERVICE {
            continue;
        } else if *noun == TASK_DEFINITION {
            task_definition_tags(ctx, id).await?
        } else if *noun == SERVICE_AUTOSCALING {
            let Some(arn) = scalable_target_arn(ctx, id).await? else { continue };
            let have = scalable_target_tags(ctx, &arn).await?;
            // Its kind finds it by its resource id, without the ownership check: made here.
            let owner = have.iter().find(|(k, _)| k == stack::OWNERSHIP_TAG).map(|(_, v)| v.clone());
            if owner.as_ref().is_some_and(|o| *o != ctx.stack.name) {
                return Err(Error::Foreign {
                    kind: "scalable target",
                    name: id.clone(),
                    id: arn,
                    stack: ctx.stack.name.clone(),
                    owner,
                });
            }
            have
        } else {
            continue;
        };
        let diff = tags::diff(&want, &have);
        if !diff.is_empty() {
            missing.insert(id.clone(), diff);
        }
    }
    Ok(missing)
}

async fn service_tags(ctx: &Ctx, arn: &str) -> Result<Vec<(String, String)>, Error> {
    let out = ctx.clients.ecs.list_tags_for_resource().resource_arn(arn).send().await.ctx("list tags of", arn)?;
    Ok(tags::ecs_pairs(out.tags()))
}

/// The ARN of the ECS service's scalable target `resource_id` (`service/CLUSTER/NAME`).
async fn scalable_target_arn(ctx: &Ctx, resource_id: &str) -> Result<Option<String>, Error> {
    let out = ctx
        .clients
        .app_autoscaling
        .describe_scalable_targets()
        .service_namespace(aws_sdk_applicationautoscaling::types::ServiceNamespace::Ecs)
        .resource_ids(resource_id)
        .send()
        .await
        .ctx("describe scalable target", resource_id)?;
    Ok(out.scalable_targets().first().and_then(|t| t.scalable_target_arn()).map(str::to_owned))
}

async fn scalable_target_tags(ctx: &Ctx, arn: &str) -> Result<Vec<(String, String)>, Error> {
    let c = &ctx.clients.app_autoscaling;
    let out = c.list_tags_for_resource().resource_arn(arn).send().await.ctx("list tags of", arn)?;
    Ok(out.tags().map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).unwrap_or_default())
}

async fn task_definition_tags(ctx: &Ctx, arn: &str) -> Result<Vec<(String, String)>, Error> {
    let out = ctx
        .clients
        .ecs
        .describe_task_definition()
        .task_definition(arn)
        .include(aws_sdk_ecs::types::TaskDefinitionField::Tags)
        .send()
        .await
        .ctx("describe task definition", arn);
    let Some(out) = absent(out)? else { return Ok(Vec::new()) };
    Ok(tags::ecs_pairs(out.tags()))
}

/// The plan kinds `tag` tags.
pub const TAGGABLE: &[&str] = &[
    "vpc",
    "subnet",
    "internet-gateway",
    "route-table",
    "security-group",
    "launch-template",
    "ecs-cluster",
    "ecs-service",
    "capacity-provider",
    "task-definition",
    "load-balancer",
    "target-group",
    "iam-role",
    "instance-profile",
    "log-group",
    "ecr-repository",
    "secret",
    "auto-scaling-group",
    "service-autoscaling",
];

/// Puts `pairs` on the resource of plan kind `noun` named `name` with id `id`, by the call its
/// service takes.
pub async fn tag(ctx: &Ctx, noun: Noun, name: &str, id: &str, pairs: &[(String, String)]) -> Result<(), Error> {
    let c = &ctx.clients;
    match noun.as_str() {
        "vpc" | "subnet" | "internet-gateway" | "route-table" | "security-group" | "launch-template" => {
            c.ec2.create_tags().resources(id).set_tags(Some(tags::ec2_tags(pairs))).send().await.ctx("tag", id)?;
        }
        "ecs-cluster" | "ecs-service" | "capacity-provider" | "task-definition" => {
            c.ecs.tag_resource().resource_arn(id).set_tags(Some(tags::ecs_tags(pairs))).send().await.ctx("tag", id)?;
        }
        "load-balancer" | "target-group" => {
            let t = pairs
                .iter()
                .map(|(k, v)| aws_sdk_elasticloadbalancingv2::types::Tag::builder().key(k).value(v).build())
                .collect();
            c.elb.add_tags().resource_arns(id).set_tags(Some(t)).send().await.ctx("tag", id)?;
        }
        "iam-role" => {
            c.iam.tag_role().role_name(name).set_tags(Some(iam_tags(pairs)?)).send().await.ctx("tag role", name)?;
        }
        "instance-profile" => {
            let call = c.iam.tag_instance_profile().instance_profile_name(name).set_tags(Some(iam_tags(pairs)?));
            call.send().await.ctx("tag instance profile", name)?;
        }
        "log-group" => {
            let arn = id.trim_end_matches(":*");
            let t = pairs.iter().cloned().collect();
            c.logs.tag_resource().resource_arn(arn).set_tags(Some(t)).send().await.ctx("tag", arn)?;
        }
        "ecr-repository" => {
            let t = pairs
                .iter()
                .map(|(k, v)| aws_sdk_ecr::types::Tag::builder().key(k).value(v).build())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| Error::Refused(format!("tag {id}: {e}")))?;
            c.ecr.tag_resource().resource_arn(id).set_tags(Some(t)).send().await.ctx("tag", id)?;
        }
        "secret" => {
            let t = pairs.iter().map(|(k, v)| aws_sdk_secretsmanager::types::Tag::builder().key(k).value(v).build());
            c.secrets.tag_resource().secret_id(id).set_tags(Some(t.collect())).send().await.ctx("tag", id)?;
        }
        "auto-scaling-group" => {
            let t = crate::resources::capacity::group::tags_of_group(name, pairs.to_vec());
            c.autoscaling.create_or_update_tags().set_tags(Some(t)).send().await.ctx("tag group", name)?;
        }
        "service-autoscaling" => {
            let arn = scalable_target_arn(ctx, id).await?.ok_or_else(|| Error::Refused(format!("{id} is gone")))?;
            let t = pairs.iter().cloned().collect();
            c.app_autoscaling.tag_resource().resource_arn(&arn).set_tags(Some(t)).send().await.ctx("tag", &arn)?;
        }
        other => {
            return Err(Error::Refused(format!("adopt does not tag a {other} ({name}): tag it by hand, then rerun")));
        }
    }
    Ok(())
}

fn iam_tags(pairs: &[(String, String)]) -> Result<Vec<aws_sdk_iam::types::Tag>, Error> {
    pairs
        .iter()
        .map(|(k, v)| aws_sdk_iam::types::Tag::builder().key(k).value(v).build())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::Refused(format!("tag: {e}")))
}

/// The pairs a plan row's tag fields set (`tags.K` → K = new).
pub fn pairs(diffs: &[FieldDiff]) -> Vec<(String, String)> {
    diffs
        .iter()
        .filter_map(|d| Some((d.field.strip_prefix("tags.")?.to_owned(), d.new.clone().unwrap_or_default())))
        .collect()
}
