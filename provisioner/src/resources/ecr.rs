//! The ECR repository: scan on push, tag mutability, a lifecycle policy that keeps the newest
//! `keep_images`, tags. `down` deletes it with its images, and the plan says how many go.

use aws_sdk_ecr::types::{ImageScanningConfiguration, ImageTagMutability, Tag};
use serde::Serialize;
use serde_json::{Value, json};

use crate::error::{AwsContext, Error, absent, gone};
use crate::reconcile::Noun;
use crate::reconcile::kind::{Kind, Making, Node, Reconciles};
use crate::reconcile::permission::{Permission, PolicyContext, Scope};
use crate::reconcile::step::Observed;
use crate::reconcile::{Change, Ctx, FieldDiff, Id, Plan, Step, compare, tags};
/// The nouns of this kind's plan rows.
pub const ECR_REPOSITORY: Noun = Noun::new("ecr-repository");

/// What the repository calls (the image push included), on the stack's repository only.
pub const PERMISSIONS: &[Permission] = &[
    Permission::new(&["ecr:GetAuthorizationToken"], Scope::Any),
    Permission::new(
        &[
            "ecr:DescribeRepositories",
            "ecr:CreateRepository",
            "ecr:DeleteRepository",
            "ecr:ListTagsForResource",
            "ecr:GetLifecyclePolicy",
            "ecr:PutLifecyclePolicy",
            "ecr:PutImageScanningConfiguration",
            "ecr:PutImageTagMutability",
            "ecr:ListImages",
            "ecr:BatchCheckLayerAvailability",
            "ecr:InitiateLayerUpload",
            "ecr:UploadLayerPart",
            "ecr:CompleteLayerUpload",
            "ecr:PutImage",
            "ecr:BatchGetImage",
        ],
        Scope::Own(repository_arn),
    ),
    Permission::new(&["ecr:TagResource"], Scope::Retag(repository_arn)),
];

fn repository_arn(c: &PolicyContext) -> Vec<String> {
    vec![c.arn("ecr", &format!("repository/{}", c.stack.registry.repository))]
}

#[derive(Debug, Clone, Serialize)]
pub struct EcrOutputs {
    pub repository: String,
    pub repository_arn: Id,
    pub repository_uri: Id,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ObservedRepository {
    pub arn: String,
    pub uri: String,
    pub scan_on_push: bool,
    pub immutable: bool,
    pub lifecycle: Option<Value>,
    pub tags: Vec<(String, String)>,
}

impl Observed for ObservedRepository {
    fn id(&self) -> &str {
        &self.arn
    }
}

/// Keep the newest `keep` images, whatever their tags.
pub fn lifecycle_policy(keep: u32) -> Value {
    json!({
        "rules": [{
            "rulePriority": 1,
            "description": format!("keep the newest {keep} images"),
            "selection": { "tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": keep },
            "action": { "type": "expire" }
        }]
    })
}

pub fn diff(stack: &stack::Stack, observed: Option<&ObservedRepository>) -> Change {
    let r = &stack.registry;
    let want_policy = lifecycle_policy(r.keep_images);
    let Some(o) = observed else {
        return Change::create(vec![
            FieldDiff::new("scan_on_push", None, Some(r.scan_on_push.to_string())),
            FieldDiff::new("immutable_tags", None, Some(r.immutable_tags.to_string())),
            FieldDiff::new("lifecycle_policy", None, Some(want_policy.to_string())),
        ]);
    };
    let mut fields: Vec<FieldDiff> = [
        compare("scan_on_push", &o.scan_on_push, &r.scan_on_push),
        compare("immutable_tags", &o.immutable, &r.immutable_tags),
    ]
    .into_iter()
    .flatten()
    .collect();
    // Parsed JSON compares equal whatever the key order or whitespace AWS returns.
    if o.lifecycle.as_ref() != Some(&want_policy) {
        fields.push(FieldDiff::new(
            "lifecycle_policy",
            o.lifecycle.as_ref().map(Value::to_string),
            Some(want_policy.to_string()),
        ));
    }
    fields.extend(tags::diff(&stack.resource_tags(), &o.tags));
    Change::update(fields)
}

/// Our repository `name` (DescribeRepositories and its tags), ownership checked.
async fn get_owned(
    ctx: &Ctx,
    name: &str,
) -> Result<Option<(aws_sdk_ecr::types::Repository, Vec<(String, String)>)>, Error> {
    let ecr = &ctx.clients.ecr;
    let described = ecr.describe_repositories().repository_names(name).send().await.ctx("describe repository", name);
    let Some(out) = absent(described)? else { return Ok(None) };
    let Some(repo) = out.repositories.and_then(|r| r.into_iter().next()) else { return Ok(None) };
    let arn = repo.repository_arn().unwrap_or_default().to_owned();
    let listed = ecr.list_tags_for_resource().resource_arn(&arn).send().await.ctx("list tags of repository", name)?;
    let tags: Vec<(String, String)> =
        listed.tags().iter().map(|t| (t.key().to_owned(), t.value().to_owned())).collect();
    let found = vec![(arn, tags.clone())];
    tags::pick_owned("repository", name, &ctx.owner(), found, |r| r.0.clone(), |r| r.1.clone())?;
    Ok(Some((repo, tags)))
}

/// The URI of the stack's repository, if it exists (two calls; nothing compared).
pub async fn locate(ctx: &Ctx) -> Result<Option<String>, Error> {
    let found = get_owned(ctx, &ctx.stack.registry.repository).await?;
    Ok(found.map(|(repo, _)| repo.repository_uri().unwrap_or_default().to_owned()))
}

async fn observe(ctx: &Ctx, name: &str) -> Result<Option<ObservedRepository>, Error> {
    let ecr = &ctx.clients.ecr;
    let Some((repo, tags)) = get_owned(ctx, name).await? else { return Ok(None) };
    let arn = repo.repository_arn().unwrap_or_default().to_owned();
    let policy = ecr.get_lifecycle_policy().repository_name(name).send().await.ctx("get lifecycle policy of", name);
    let lifecycle = absent(policy)?.and_then(|p| p.lifecycle_policy_text().and_then(|t| serde_json::from_str(t).ok()));
    Ok(Some(ObservedRepository {
        arn,
        uri: repo.repository_uri().unwrap_or_default().to_owned(),
        scan_on_push: repo.image_scanning_configuration().is_some_and(|c| c.scan_on_push()),
        immutable: repo.image_tag_mutability() == Some(&ImageTagMutability::Immutable),
        lifecycle,
        tags,
    }))
}

fn ecr_tags(stack: &stack::Stack) -> Vec<Tag> {
    stack.resource_tags().into_iter().filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok()).collect()
}

fn mutability(immutable: bool) -> ImageTagMutability {
    if immutable { ImageTagMutability::Immutable } else { ImageTagMutability::Mutable }
}

async fn apply(
    ctx: &Ctx,
    name: &str,
    change: &Change,
    observed: Option<&ObservedRepository>,
) -> Result<Option<String>, Error> {
    let ecr = &ctx.clients.ecr;
    let r = &ctx.stack.registry;
    let mut created = None;
    match observed {
        None => {
            let out = ecr
                .create_repository()
                .repository_name(name)
                .image_scanning_configuration(
                    ImageScanningConfiguration::builder().scan_on_push(r.scan_on_push).build(),
                )
                .image_tag_mutability(mutability(r.immutable_tags))
                .set_tags(Some(ecr_tags(&ctx.stack)))
                .send()
                .await
                .ctx("create repository", name)?;
            created = out.repository().and_then(|x| x.repository_arn()).map(str::to_owned);
        }
        Some(o) => {
            if change.has("scan_on_push") {
                ecr.put_image_scanning_configuration()
                    .repository_name(name)
                    .image_scanning_configuration(
                        ImageScanningConfiguration::builder().scan_on_push(r.scan_on_push).build(),
                    )
                    .send()
                    .await
                    .ctx("set scan on push of", name)?;
            }
            if change.has("immutable_tags") {
                ecr.put_image_tag_mutability()
                    .repository_name(name)
                    .image_tag_mutability(mutability(r.immutable_tags))
                    .send()
                    .await
                    .ctx("set tag mutability of", name)?;
            }
            if change.has_tags() {
                ecr.tag_resource()
                    .resource_arn(&o.arn)
                    .set_tags(Some(ecr_tags(&ctx.stack)))
                    .send()
                    .await
                    .ctx("tag repository", name)?;
            }
        }
    }
    if change.has("lifecycle_policy") {
        ecr.put_lifecycle_policy()
            .repository_name(name)
            .lifecycle_policy_text(lifecycle_policy(r.keep_images).to_string())
            .send()
            .await
            .ctx("set lifecycle policy of", name)?;
    }
    ctx.progress(format!("repository {name} ready"));
    Ok(created)
}

pub async fn reconcile(ctx: &Ctx, plan: &mut Plan) -> Result<EcrOutputs, Error> {
    let name = ctx.stack.registry.repository.clone();
    let outcome = Step::new(ctx, ECR_REPOSITORY, &name)
        .converge(
            plan,
            async || observe(ctx, &name).await,
            |o| diff(&ctx.stack, o),
            async |c: &Change, o: Option<&ObservedRepository>| apply(ctx, &name, c, o).await,
        )
        .await?;
    let uri = match &outcome.observed {
        Some(o) => Some(o.uri.clone()),
        None if outcome.applied.is_some() => observe(ctx, &name).await?.map(|o| o.uri),
        None => None,
    };
    Ok(EcrOutputs {
        repository_arn: outcome.id_or(|| format!("repository {name}")),
        repository_uri: Id::from_option(uri, || format!("repository {name}")),
        repository: name,
    })
}

/// The image repository (`registry.repository`, default the stack's name).
fn derived_names(stack: &stack::Stack) -> Vec<(Noun, String)> {
    vec![(ECR_REPOSITORY, stack.registry.repository.clone())]
}

/// This kind in the one list of kinds (`resources::KINDS`).
pub const KIND: Kind = Kind {
    name: "ecr-repository",
    nouns: &[ECR_REPOSITORY],
    permissions: PERMISSIONS,
    arn_types: &["ecr:repository"],
    deleted_after: &[],
    derived_names,
    name_limits: &[(ECR_REPOSITORY, &stack::limits::ECR_REPOSITORY_NAME)],
    terraform_types: &["aws_ecr_repository", "aws_ecr_lifecycle_policy"],
    teardown: |ctx, plan, down| Box::pin(teardown(ctx, plan, down)),
    leftovers: |ctx| Box::pin(leftovers(ctx)),
    node: Some(Node::of::<Repository>()),
};

/// The repository needs nothing of other kinds.
pub struct Repository;

impl Reconciles for Repository {
    type Needs = ();
    type Seen = ();
    type Gives = EcrOutputs;

    fn see(_: &Ctx) -> Making<'_, ()> {
        Box::pin(async { Ok(()) })
    }

    fn reconcile<'a>(ctx: &'a Ctx, plan: &'a mut Plan, (): (), (): ()) -> Making<'a, EcrOutputs> {
        Box::pin(async move { reconcile(ctx, plan).await })
    }
}

pub async fn teardown(ctx: &Ctx, plan: &mut Plan, _: &crate::reconcile::kind::Down) -> Result<(), Error> {
    let name = ctx.stack.registry.repository.clone();
    let Some(o) = observe(ctx, &name).await? else { return Ok(()) };
    let ecr = &ctx.clients.ecr;
    let mut images = 0;
    let mut pages = ecr.list_images().repository_name(&name).into_paginator().send();
    while let Some(page) = pages.next().await {
        images += page.ctx("list images of", &name)?.image_ids().len();
    }
    if ctx.applying() {
        let r = ecr.delete_repository().repository_name(&name).force(true).send().await.ctx("delete repository", &name);
        gone(r)?;
        ctx.progress(format!("deleted repository {name} and its {images} images"));
    }
    let mut change = Change::delete();
    change.fields.push(FieldDiff::new("images", Some(images.to_string()), Some("deleted with the repository".into())));
    plan.push(ECR_REPOSITORY, &name, Some(o.arn), change);
    Ok(())
}

pub async fn leftovers(ctx: &Ctx) -> Result<Vec<String>, Error> {
    Ok(observe(ctx, &ctx.stack.registry.repository)
        .await?
        .map(|o| format!("repository {}", o.arn))
        .into_iter()
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observed(s: &stack::Stack) -> ObservedRepository {
        ObservedRepository {
            arn: "arn:aws:ecr:x".into(),
            uri: "u".into(),
            scan_on_push: true,
            immutable: true,
            lifecycle: Some(lifecycle_policy(s.registry.keep_images)),
            tags: s.resource_tags(),
        }
    }

    #[test]
    fn policy_json_key_order_and_whitespace_do_not_matter() {
        let s = crate::resources::test_stack();
        let mut o = observed(&s);
        let reordered = r#"{ "rules": [ { "action": {"type":"expire"}, "selection": {"countNumber": 20, "countType": "imageCountMoreThan", "tagStatus": "any"},
            "description": "keep the newest 20 images", "rulePriority": 1 } ] }"#;
        o.lifecycle = serde_json::from_str(reordered).ok();
        assert!(diff(&s, Some(&o)).is_no_op());
        o.lifecycle = Some(lifecycle_policy(5));
        assert_eq!(diff(&s, Some(&o)).fields[0].field, "lifecycle_policy");
    }

    #[test]
    fn settings_drift() {
        let s = crate::resources::test_stack();
        let o = ObservedRepository { scan_on_push: false, immutable: false, ..observed(&s) };
        let fields: Vec<String> = diff(&s, Some(&o)).fields.into_iter().map(|f| f.field).collect();
        assert_eq!(fields, ["scan_on_push", "immutable_tags"]);
    }
}
