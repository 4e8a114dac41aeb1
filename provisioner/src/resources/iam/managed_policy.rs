//! A customer managed policy the stack owns (its permissions boundary, the deploy role's
//! policies): found by ARN with the ownership tag, its default version's document compared as
//! JSON, a change written as a new default version after which the older versions are deleted
//! (none can be made the default again; IAM keeps five, so a policy that has five loses its oldest
//! first), deleted with its old versions.

use serde_json::Value;

use crate::error::{AwsContext, Error, absent, gone};
use crate::reconcile::step::Observed;
use crate::reconcile::{Change, Ctx, FieldDiff, tags};
use crate::resources::iam::role::{decode_policy, iam_tags};

/// IAM keeps at most five versions of a managed policy.
const MAX_VERSIONS: usize = 5;

/// A managed policy as IAM holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct ObservedPolicy {
    pub arn: String,
    pub document: Value,
    pub default_version: String,
    pub tags: Vec<(String, String)>,
}

impl Observed for ObservedPolicy {
    fn id(&self) -> &str {
        &self.arn
    }
}

pub fn diff(want: &Value, stack: &stack::Stack, observed: Option<&ObservedPolicy>) -> Change {
    let Some(o) = observed else {
        return Change::create(vec![FieldDiff::new("document", None, Some(want.to_string()))]);
    };
    let mut fields = Vec::new();
    if &o.document != want {
        fields.push(FieldDiff::new("document", Some(o.document.to_string()), Some(want.to_string())));
    }
    fields.extend(tags::diff(&stack.resource_tags(), &o.tags));
    Change::update(fields)
}

/// The policy `name` at `arn`, if it exists; refuses one without the stack's ownership tag.
pub async fn observe(ctx: &Ctx, arn: &str, name: &str) -> Result<Option<ObservedPolicy>, Error> {
    let iam = &ctx.clients.iam;
    let got = absent(iam.get_policy().policy_arn(arn).send().await.ctx("get policy", arn))?;
    let Some(policy) = got.as_ref().and_then(|g| g.policy()) else { return Ok(None) };
    let tags: Vec<(String, String)> =
        policy.tags().iter().map(|t| (t.key().to_owned(), t.value().to_owned())).collect();
    tags::pick_owned(
        "IAM policy",
        name,
        &ctx.owner(),
        vec![(arn.to_owned(), tags.clone())],
        |p| p.0.clone(),
        |p| p.1.clone(),
    )?;
    let version = policy.default_version_id().unwrap_or("v1").to_owned();
    let got = iam.get_policy_version().policy_arn(arn).version_id(&version).send().await.ctx("read policy", arn)?;
    let document = got.policy_version().and_then(|v| v.document()).map(decode_policy).unwrap_or(Value::Null);
    Ok(Some(ObservedPolicy { arn: arn.to_owned(), document, default_version: version, tags }))
}

/// Creates the policy `name` (tagged, with `description`), or makes `want` its new default
/// version (dropping the oldest when IAM's five are used); returns its ARN when it created it.
pub async fn apply(
    ctx: &Ctx,
    name: &str,
    description: &str,
    want: &Value,
    change: &Change,
    observed: Option<&ObservedPolicy>,
) -> Result<Option<String>, Error> {
    let iam = &ctx.clients.iam;
    let Some(o) = observed else {
        let out = iam
            .create_policy()
            .policy_name(name)
            .policy_document(want.to_string())
            .description(description)
            .set_tags(Some(iam_tags(&ctx.stack)))
            .send()
            .await
            .ctx("create policy", name)?;
        return Ok(out.policy().and_then(|p| p.arn()).map(str::to_owned));
    };
    if change.has("document") {
        let old = old_versions(ctx, &o.arn).await?;
        if let (true, Some(oldest)) = (old.len() + 1 >= MAX_VERSIONS, old.first()) {
            delete_version(ctx, &o.arn, oldest).await?;
        }
        iam.create_policy_version()
            .policy_arn(&o.arn)
            .policy_document(want.to_string())
            .set_as_default(true)
            .send()
            .await
            .ctx("write a new version of policy", name)?;
        // An old version could be made the default again (SetDefaultPolicyVersion, which the
        // deploy role is denied): none is kept, so that denial is not the only guard.
        for version in old_versions(ctx, &o.arn).await? {
            delete_version(ctx, &o.arn, &version).await?;
        }
    }
    if change.has_tags() {
        iam.tag_policy()
            .policy_arn(&o.arn)
            .set_tags(Some(iam_tags(&ctx.stack)))
            .send()
            .await
            .ctx("tag policy", name)?;
    }
    Ok(None)
}

/// The versions that are not the default, oldest first.
async fn old_versions(ctx: &Ctx, arn: &str) -> Result<Vec<String>, Error> {
    let out = ctx.clients.iam.list_policy_versions().policy_arn(arn).send().await.ctx("list versions of", arn)?;
    let mut old: Vec<(aws_smithy_types::DateTime, String)> = out
        .versions()
        .iter()
        .filter(|v| !v.is_default_version())
        .filter_map(|v| Some((v.create_date().copied()?, v.version_id()?.to_owned())))
        .collect();
    old.sort_by_key(|v| v.0);
    Ok(old.into_iter().map(|(_, v)| v).collect())
}

async fn delete_version(ctx: &Ctx, arn: &str, version: &str) -> Result<(), Error> {
    let r = ctx.clients.iam.delete_policy_version().policy_arn(arn).version_id(version).send().await;
    gone(r.ctx("delete a version of", arn))
}

/// Deletes the policy: its old versions first (IAM refuses otherwise). No role may hold it.
pub async fn delete(ctx: &Ctx, arn: &str) -> Result<(), Error> {
    let old = absent(old_versions(ctx, arn).await)?.unwrap_or_default();
    for version in old {
        delete_version(ctx, arn, &version).await?;
    }
    let r = ctx.clients.iam.delete_policy().policy_arn(arn).send().await;
    gone(r.ctx("delete policy", arn))
}
