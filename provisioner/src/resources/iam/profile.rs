//! The instance profile that hands the instance role to the stack's EC2 instances. Like the
//! roles' identity it is an administrator's: the deploy role may not create profiles or put roles
//! in them.

use crate::error::{AwsContext, Error, absent, gone};
use crate::reconcile::step::Observed;
use crate::reconcile::{Change, Ctx, FieldDiff, tags};
use crate::resources::iam::role::iam_tags;
use crate::wait::Wait;

#[derive(Debug, Clone, PartialEq)]
pub struct ObservedProfile {
    pub arn: String,
    pub roles: Vec<String>,
    pub tags: Vec<(String, String)>,
}

impl Observed for ObservedProfile {
    fn id(&self) -> &str {
        &self.arn
    }
}

pub async fn observe(ctx: &Ctx, name: &str) -> Result<Option<ObservedProfile>, Error> {
    let got = ctx
        .clients
        .iam
        .get_instance_profile()
        .instance_profile_name(name)
        .send()
        .await
        .ctx("get instance profile", name);
    let Some(out) = absent(got)? else { return Ok(None) };
    let Some(p) = out.instance_profile() else { return Ok(None) };
    let tags: Vec<(String, String)> = p.tags().iter().map(|t| (t.key().to_owned(), t.value().to_owned())).collect();
    let found = vec![ObservedProfile {
        arn: p.arn().to_owned(),
        roles: p.roles().iter().map(|r| r.role_name().to_owned()).collect(),
        tags,
    }];
    tags::pick_owned("instance profile", name, &ctx.owner(), found, |p| p.arn.clone(), |p| p.tags.clone())
}

pub fn diff(role: &str, stack: &stack::Stack, observed: Option<&ObservedProfile>) -> Change {
    let Some(p) = observed else { return Change::create(vec![FieldDiff::new("role", None, Some(role.to_owned()))]) };
    let mut fields = Vec::new();
    if p.roles != [role.to_owned()] {
        fields.push(FieldDiff::new("role", Some(p.roles.join(",")), Some(role.to_owned())));
    }
    fields.extend(tags::diff(&stack.resource_tags(), &p.tags));
    Change::update(fields)
}

pub async fn apply(
    ctx: &Ctx,
    name: &str,
    role: &str,
    change: &Change,
    observed: Option<&ObservedProfile>,
) -> Result<Option<String>, Error> {
    let iam = &ctx.clients.iam;
    let mut created = None;
    if observed.is_none() {
        let out = iam
            .create_instance_profile()
            .instance_profile_name(name)
            .set_tags(Some(iam_tags(&ctx.stack)))
            .send()
            .await
            .ctx("create instance profile", name)?;
        created = out.instance_profile().map(|p| p.arn().to_owned());
    }
    let roles = observed.map(|p| p.roles.clone()).unwrap_or_default();
    for r in roles.iter().filter(|r| *r != role) {
        iam.remove_role_from_instance_profile()
            .instance_profile_name(name)
            .role_name(r)
            .send()
            .await
            .ctx("remove role from", name)?;
    }
    if !roles.iter().any(|r| r == role) {
        // A role or profile created a moment ago can be unknown to this call for a while.
        ctx.wait(Wait::Propagation, &format!("role {role} and profile {name} to be usable"), || async {
            iam.add_role_to_instance_profile()
                .instance_profile_name(name)
                .role_name(role)
                .send()
                .await
                .ctx("add role to", name)
        })
        .await?;
    }
    if observed.is_some() && change.has_tags() {
        iam.tag_instance_profile()
            .instance_profile_name(name)
            .set_tags(Some(iam_tags(&ctx.stack)))
            .send()
            .await
            .ctx("tag", name)?;
    }
    ctx.progress(format!("instance profile {name} ready"));
    Ok(created)
}

/// Takes the roles out of the profile and deletes it.
pub async fn delete(ctx: &Ctx, profile: &ObservedProfile, name: &str) -> Result<(), Error> {
    let iam = &ctx.clients.iam;
    for r in &profile.roles {
        gone(
            iam.remove_role_from_instance_profile()
                .instance_profile_name(name)
                .role_name(r)
                .send()
                .await
                .ctx("remove role from", name),
        )?;
    }
    gone(iam.delete_instance_profile().instance_profile_name(name).send().await.ctx("delete instance profile", name))
}
