//! One IAM role, in two halves that different people may change:
//! - its identity: that it exists, whom it trusts, and the permissions boundary it carries —
//!   an administrator's (`ci-role`, or `up` run with administrator credentials);
//! - its permissions: inline and attached managed policies and tags — `up` from anywhere, the CI
//!   deploy role included, which may write them only while the boundary is in place.
//!
//! Policy documents compare as JSON values: key order and whitespace never show as a diff.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_iam::types::Tag;
use serde_json::Value;

use crate::error::{AwsContext, Error, absent};
use crate::reconcile::step::Observed;
use crate::reconcile::{Change, Ctx, FieldDiff, tags};
use crate::wait::Wait;

/// What a role must be.
#[derive(Debug, Clone, PartialEq)]
pub struct RoleSpec {
    pub name: String,
    pub trust: Value,
    /// The managed policy that bounds what the role can ever do (None: unbounded, as the
    /// deploy role itself, which an administrator's policy limits instead).
    pub boundary: Option<String>,
    pub managed: BTreeSet<String>,
    /// Inline policy name -> document.
    pub inline: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ObservedRole {
    pub arn: String,
    pub trust: Value,
    pub boundary: Option<String>,
    pub managed: BTreeSet<String>,
    pub inline: BTreeMap<String, Value>,
    pub tags: Vec<(String, String)>,
}

impl Observed for ObservedRole {
    fn id(&self) -> &str {
        &self.arn
    }
}

/// Which half of a role a run reconciles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// Existence, trust, boundary and tags (`ci-role`): the policies are left as they are.
    Identity,
    /// Everything.
    All,
}

/// The fields of a role change that only an administrator may make (the deploy role may not
/// create roles, change whom they trust or touch their boundary).
pub const IDENTITY_FIELDS: &[&str] = &["trust_policy", "permissions_boundary"];

pub fn diff_role(spec: &RoleSpec, stack: &stack::Stack, observed: Option<&ObservedRole>, part: Part) -> Change {
    let Some(o) = observed else {
        let mut fields = vec![FieldDiff::new("trust_policy", None, Some(spec.trust.to_string()))];
        fields.extend(spec.boundary.iter().map(|b| FieldDiff::new("permissions_boundary", None, Some(b.clone()))));
        if part == Part::All {
            fields.extend(spec.managed.iter().map(|m| FieldDiff::new("managed_policy", None, Some(m.clone()))));
            fields.extend(
                spec.inline
                    .iter()
                    .map(|(n, d)| FieldDiff::new(format!("inline_policy.{n}"), None, Some(d.to_string()))),
            );
        }
        return Change::create(fields);
    };
    let mut fields = Vec::new();
    if o.trust != spec.trust {
        fields.push(FieldDiff::new("trust_policy", Some(o.trust.to_string()), Some(spec.trust.to_string())));
    }
    if o.boundary != spec.boundary {
        fields.push(FieldDiff::new("permissions_boundary", o.boundary.clone(), spec.boundary.clone()));
    }
    if part == Part::All {
        fields.extend(permission_fields(spec, o));
    }
    fields.extend(tags::diff(&stack.resource_tags(), &o.tags));
    Change::update(fields)
}

fn permission_fields(spec: &RoleSpec, o: &ObservedRole) -> Vec<FieldDiff> {
    let mut fields = Vec::new();
    fields.extend(spec.managed.difference(&o.managed).map(|m| FieldDiff::new("managed_policy", None, Some(m.clone()))));
    fields.extend(o.managed.difference(&spec.managed).map(|m| FieldDiff::new("managed_policy", Some(m.clone()), None)));
    for (name, doc) in &spec.inline {
        if o.inline.get(name) != Some(doc) {
            fields.push(FieldDiff::new(
                format!("inline_policy.{name}"),
                o.inline.get(name).map(Value::to_string),
                Some(doc.to_string()),
            ));
        }
    }
    for (name, doc) in o.inline.iter().filter(|(n, _)| !spec.inline.contains_key(*n)) {
        fields.push(FieldDiff::new(format!("inline_policy.{name}"), Some(doc.to_string()), None));
    }
    fields
}

/// IAM returns policy documents URL-encoded (RFC 3986); this undoes it.
pub fn decode_policy(text: &str) -> Value {
    if let Ok(v) = serde_json::from_str(text) {
        return v;
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%' && i + 2 < bytes.len())
            .then(|| std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()))
            .flatten();
        if let Some(b) = escaped {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    serde_json::from_slice(&out).unwrap_or(Value::String(text.to_owned()))
}

/// Our role by name (GetRole alone), ownership checked: what `locate` and `observe_role` share.
async fn get_owned(ctx: &Ctx, name: &str) -> Result<Option<aws_sdk_iam::types::Role>, Error> {
    let got = ctx.clients.iam.get_role().role_name(name).send().await.ctx("get role", name);
    let Some(role) = absent(got)?.and_then(|r| r.role) else { return Ok(None) };
    let tags: Vec<(String, String)> = role.tags().iter().map(|t| (t.key().to_owned(), t.value().to_owned())).collect();
    let found = vec![(role.arn().to_owned(), tags)];
    tags::pick_owned("IAM role", name, &ctx.owner(), found, |r| r.0.clone(), |r| r.1.clone())?;
    Ok(Some(role))
}

/// The ARN of our role `name`, if it exists (one call; nothing compared).
pub async fn locate(ctx: &Ctx, name: &str) -> Result<Option<String>, Error> {
    Ok(get_owned(ctx, name).await?.map(|r| r.arn().to_owned()))
}

/// A role by name, with its trust policy, boundary, attached and inline policies; refuses a
/// foreign one.
pub async fn observe_role(ctx: &Ctx, name: &str) -> Result<Option<ObservedRole>, Error> {
    let iam = &ctx.clients.iam;
    let Some(role) = get_owned(ctx, name).await? else { return Ok(None) };
    let tags: Vec<(String, String)> = role.tags().iter().map(|t| (t.key().to_owned(), t.value().to_owned())).collect();
    let (attached, listed) = tokio::join!(
        iam.list_attached_role_policies().role_name(name).send(),
        iam.list_role_policies().role_name(name).send()
    );
    let attached = attached.ctx("list policies of role", name)?;
    let managed = attached.attached_policies().iter().filter_map(|p| p.policy_arn().map(str::to_owned)).collect();
    let listed = listed.ctx("list inline policies of role", name)?;
    // Every inline policy's document at once.
    let documents = futures_util::future::try_join_all(listed.policy_names().iter().map(|policy| async move {
        let doc = iam.get_role_policy().role_name(name).policy_name(policy).send().await;
        let doc = doc.ctx("get inline policy of role", name)?;
        Ok::<_, Error>((policy.clone(), decode_policy(doc.policy_document())))
    }))
    .await?;
    let inline: BTreeMap<String, Value> = documents.into_iter().collect();
    Ok(Some(ObservedRole {
        arn: role.arn().to_owned(),
        trust: role.assume_role_policy_document().map(decode_policy).unwrap_or(Value::Null),
        boundary: role.permissions_boundary().and_then(|b| b.permissions_boundary_arn()).map(str::to_owned),
        managed,
        inline,
        tags,
    }))
}

pub fn iam_tags(stack: &stack::Stack) -> Vec<Tag> {
    stack.resource_tags().into_iter().filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok()).collect()
}

/// Makes the role what `spec` says (`part` of it); returns its ARN when it created it.
pub async fn apply_role(
    ctx: &Ctx,
    spec: &RoleSpec,
    observed: Option<&ObservedRole>,
    change: &Change,
    part: Part,
) -> Result<Option<String>, Error> {
    let arn = apply_identity(ctx, spec, observed, change).await?;
    if part == Part::All {
        apply_permissions(ctx, spec, observed).await?;
    }
    if observed.is_some() && change.has_tags() {
        let name = &spec.name;
        ctx.clients
            .iam
            .tag_role()
            .role_name(name)
            .set_tags(Some(iam_tags(&ctx.stack)))
            .send()
            .await
            .ctx("tag role", name)?;
    }
    ctx.progress(format!("role {} ready", spec.name));
    Ok(arn)
}

/// Creates the role (trust, boundary and tags in the one call), or sets its trust and boundary.
async fn apply_identity(
    ctx: &Ctx,
    spec: &RoleSpec,
    observed: Option<&ObservedRole>,
    change: &Change,
) -> Result<Option<String>, Error> {
    let iam = &ctx.clients.iam;
    let name = &spec.name;
    if observed.is_none() {
        // The boundary it names may have been created a moment ago.
        let out = ctx
            .wait(Wait::Propagation, &format!("the permissions boundary of role {name} to be attachable"), || async {
                iam.create_role()
                    .role_name(name)
                    .assume_role_policy_document(spec.trust.to_string())
                    .set_permissions_boundary(spec.boundary.clone())
                    .description(format!("Konnichiwa stack {}", ctx.stack.name))
                    .set_tags(Some(iam_tags(&ctx.stack)))
                    .send()
                    .await
                    .ctx("create role", name)
            })
            .await?;
        return Ok(out.role().map(|r| r.arn().to_owned()));
    }
    if change.has("trust_policy") {
        iam.update_assume_role_policy()
            .role_name(name)
            .policy_document(spec.trust.to_string())
            .send()
            .await
            .ctx("update trust policy of", name)?;
    }
    if change.has("permissions_boundary") {
        match &spec.boundary {
            Some(boundary) => {
                iam.put_role_permissions_boundary()
                    .role_name(name)
                    .permissions_boundary(boundary)
                    .send()
                    .await
                    .ctx("set the permissions boundary of", name)?;
            }
            None => {
                iam.delete_role_permissions_boundary()
                    .role_name(name)
                    .send()
                    .await
                    .ctx("remove the permissions boundary of", name)?;
            }
        }
    }
    Ok(None)
}

/// Attaches and detaches managed policies, puts and deletes inline ones, to match `spec`.
async fn apply_permissions(ctx: &Ctx, spec: &RoleSpec, observed: Option<&ObservedRole>) -> Result<(), Error> {
    let iam = &ctx.clients.iam;
    let name = &spec.name;
    let have_managed = observed.map(|o| o.managed.clone()).unwrap_or_default();
    for m in spec.managed.difference(&have_managed) {
        iam.attach_role_policy().role_name(name).policy_arn(m).send().await.ctx("attach policy to", name)?;
    }
    for m in have_managed.difference(&spec.managed) {
        iam.detach_role_policy().role_name(name).policy_arn(m).send().await.ctx("detach policy from", name)?;
    }
    let have_inline = observed.map(|o| o.inline.clone()).unwrap_or_default();
    for (policy, doc) in &spec.inline {
        if have_inline.get(policy) != Some(doc) {
            iam.put_role_policy()
                .role_name(name)
                .policy_name(policy)
                .policy_document(doc.to_string())
                .send()
                .await
                .ctx("put inline policy on", name)?;
        }
    }
    for policy in have_inline.keys().filter(|p| !spec.inline.contains_key(*p)) {
        iam.delete_role_policy()
            .role_name(name)
            .policy_name(policy)
            .send()
            .await
            .ctx("delete inline policy of", name)?;
    }
    Ok(())
}

/// Deletes a role: its attached and inline policies first (IAM refuses otherwise).
pub async fn delete_role(ctx: &Ctx, role: &ObservedRole, name: &str) -> Result<(), Error> {
    let iam = &ctx.clients.iam;
    for m in &role.managed {
        crate::error::gone(
            iam.detach_role_policy().role_name(name).policy_arn(m).send().await.ctx("detach policy from", name),
        )?;
    }
    for p in role.inline.keys() {
        crate::error::gone(
            iam.delete_role_policy().role_name(name).policy_name(p).send().await.ctx("delete inline policy of", name),
        )?;
    }
    crate::error::gone(iam.delete_role().role_name(name).send().await.ctx("delete role", name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec() -> RoleSpec {
        RoleSpec {
            name: "konnichiwa-task".into(),
            trust: json!({"Statement": [{"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}}]}),
            boundary: Some("arn:aws:iam::1:policy/konnichiwa-boundary".into()),
            managed: BTreeSet::new(),
            inline: BTreeMap::from([("app".to_owned(), json!({"Statement": []}))]),
        }
    }

    fn observed(s: &stack::Stack) -> ObservedRole {
        let spec = spec();
        ObservedRole {
            arn: "arn:role".into(),
            trust: spec.trust,
            boundary: spec.boundary,
            managed: BTreeSet::new(),
            inline: spec.inline,
            tags: s.resource_tags(),
        }
    }

    #[test]
    fn the_identity_half_ignores_policies_and_both_see_the_boundary() {
        let s = crate::resources::test_stack();
        let mut o = observed(&s);
        o.inline.insert("admin".into(), json!({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}));
        assert!(diff_role(&spec(), &s, Some(&o), Part::Identity).is_no_op(), "ci-role leaves policies to `up`");
        let all = diff_role(&spec(), &s, Some(&o), Part::All);
        assert_eq!(all.fields.len(), 1);
        assert_eq!((all.fields[0].field.as_str(), all.fields[0].new.as_ref()), ("inline_policy.admin", None));
        o.boundary = None;
        for part in [Part::Identity, Part::All] {
            let c = diff_role(&spec(), &s, Some(&o), part);
            assert!(c.has("permissions_boundary"), "{part:?}: {c:?}");
        }
        let create = diff_role(&spec(), &s, None, Part::Identity);
        assert!(create.has("permissions_boundary") && !create.has_prefix("inline_policy"));
    }

    #[test]
    fn url_encoded_documents_decode() {
        let encoded = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%5D%7D";
        assert_eq!(decode_policy(encoded), json!({"Version": "2012-10-17", "Statement": []}));
    }
}
