//! The API-key secret. The CI secret store is the source of truth: `up` writes `API_KEY` as a new
//! version only when it differs from the current value (compared here, never printed); without
//! `API_KEY` a new secret gets a random 48-character key. A secret scheduled for deletion by
//! `down` is restored, never recreated, so no key is lost. The value never appears in plans,
//! logs, errors or JSON.
//!
//! Whether the running tasks hold the current key is read from AWS (the current version's date
//! against the service's deployment, in `service`), never from "this run wrote it": a run killed
//! between the write and the roll is finished by the next. CreateSecret and PutSecretValue carry
//! the SDK's idempotency token, which its retries of a lost answer reuse.

use std::io::Read;

use aws_sdk_secretsmanager::types::Tag;
use aws_smithy_types::DateTime;
use base64::Engine;
use serde::Serialize;

use crate::error::{AwsContext, Error, absent, gone};
use crate::reconcile::permission::{Permission, Scope};
use crate::reconcile::step::Observed;
use crate::reconcile::{Change, Ctx, FieldDiff, Id, Plan, Step, tags};
use crate::retry::Wait;

/// Where `up` takes the key from.
pub const API_KEY_ENV: &str = "API_KEY";

/// What the secret calls, on the stack's secret only: its name and the six characters AWS adds.
pub const PERMISSIONS: &[Permission] = &[Permission::new(
    &[
        "secretsmanager:DescribeSecret",
        "secretsmanager:GetSecretValue",
        "secretsmanager:CreateSecret",
        "secretsmanager:PutSecretValue",
        "secretsmanager:RestoreSecret",
        "secretsmanager:DeleteSecret",
        "secretsmanager:TagResource",
        "secretsmanager:PutResourcePolicy",
        "secretsmanager:GetResourcePolicy",
    ],
    Scope::Own(|c| vec![c.arn("secretsmanager", &format!("secret:{}-??????", c.stack.secret.name))]),
)];

#[derive(Debug, Clone, Serialize)]
pub struct SecretOutputs {
    pub secret_name: String,
    pub secret_arn: Id,
    /// A new value is (or, in a plan, will be) written by this run.
    #[serde(skip)]
    pub value_changes: bool,
    /// When the current version was created (None when unknown: a new or scheduled secret).
    #[serde(skip)]
    pub current_version_created: Option<DateTime>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ObservedSecret {
    pub arn: String,
    /// When set, the secret is scheduled for deletion.
    pub deleted_date: Option<String>,
    pub tags: Vec<(String, String)>,
}

impl Observed for ObservedSecret {
    fn id(&self) -> &str {
        &self.arn
    }
}

/// What `up` knows about the wanted value, without holding it in the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueSource {
    /// API_KEY is set and equals the current value.
    SameAsCurrent,
    /// API_KEY is set and differs from the current value (or there is none yet).
    FromEnvironment,
    /// API_KEY is not set: keep what is there, or generate one for a new secret.
    Unset,
}

pub fn diff(stack: &stack::Stack, observed: Option<&ObservedSecret>, value: ValueSource) -> Change {
    let Some(o) = observed else {
        let how = if value == ValueSource::Unset {
            "generated: 48 random characters (API_KEY is not set)"
        } else {
            "from API_KEY"
        };
        return Change::create(vec![FieldDiff::new("value", None, Some(how.into()))]);
    };
    let mut fields = Vec::new();
    if let Some(date) = &o.deleted_date {
        fields.push(FieldDiff::new(
            "state",
            Some(format!("scheduled for deletion ({date})")),
            Some("active (restored with its value)".into()),
        ));
    }
    if value == ValueSource::FromEnvironment {
        fields.push(FieldDiff::new("value", Some("(current)".into()), Some("value will change (from API_KEY)".into())));
    }
    fields.extend(tags::diff(&stack.resource_tags(), &o.tags));
    Change::update(fields)
}

async fn observe(ctx: &Ctx, name: &str) -> Result<Option<ObservedSecret>, Error> {
    let described = ctx.clients.secrets.describe_secret().secret_id(name).send().await.ctx("describe secret", name);
    let Some(out) = absent(described, &["ResourceNotFoundException"])? else { return Ok(None) };
    let found = vec![ObservedSecret {
        arn: out.arn().unwrap_or_default().to_owned(),
        deleted_date: out.deleted_date().map(|d| d.to_string()),
        tags: out
            .tags()
            .iter()
            .map(|t| (t.key().unwrap_or_default().to_owned(), t.value().unwrap_or_default().to_owned()))
            .collect(),
    }];
    tags::pick_owned("secret", name, &ctx.stack.name, found, |s| s.arn.clone(), |s| s.tags.clone())
}

/// The current version: whether it equals API_KEY, and when it was created. GetSecretValue is the
/// one call that gives a version's creation date in AWS and in emulators alike; the value is
/// compared here and dropped, never kept or printed.
#[derive(Debug, Clone, Copy)]
struct Current {
    same_as_api_key: Option<bool>,
    created: Option<DateTime>,
}

async fn current(ctx: &Ctx, name: &str) -> Result<Option<Current>, Error> {
    let read = ctx
        .clients
        .secrets
        .get_secret_value()
        .secret_id(name)
        .send()
        .await
        .ctx("read the current version of secret", name);
    let Some(v) = absent(read, &["ResourceNotFoundException"])? else { return Ok(None) };
    let wanted = std::env::var(API_KEY_ENV).ok().filter(|v| !v.is_empty());
    Ok(Some(Current {
        same_as_api_key: wanted.map(|w| v.secret_string() == Some(w.as_str())),
        created: v.created_date().copied(),
    }))
}

fn value_source(current: Option<Current>) -> ValueSource {
    if std::env::var(API_KEY_ENV).ok().filter(|v| !v.is_empty()).is_none() {
        return ValueSource::Unset;
    }
    match current.and_then(|c| c.same_as_api_key) {
        Some(true) => ValueSource::SameAsCurrent,
        _ => ValueSource::FromEnvironment,
    }
}

/// 48 characters from the OS's random source (288 bits).
fn generate_key() -> Result<String, Error> {
    let mut bytes = [0u8; 36];
    std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes)).map_err(|e| {
        Error::Refused(format!("cannot read /dev/urandom to generate an API key: {e}; set API_KEY instead"))
    })?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

fn secret_tags(stack: &stack::Stack) -> Vec<Tag> {
    stack.resource_tags().into_iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()
}

/// Creates the secret; a name deleted with `--purge` moments ago is still "scheduled for
/// deletion" until AWS finishes removing it.
async fn create(ctx: &Ctx, name: &str) -> Result<String, Error> {
    let env_value = std::env::var(API_KEY_ENV).ok().filter(|v| !v.is_empty());
    let generated = env_value.is_none();
    let value = match env_value {
        Some(v) => v,
        None => generate_key()?,
    };
    let out = ctx
        .wait(Wait::Propagation, &format!("the deletion of an earlier secret {name} to finish"), || async {
            ctx.clients
                .secrets
                .create_secret()
                .name(name)
                .description(format!("API key of the Konnichiwa stack {}", ctx.stack.name))
                .secret_string(&value)
                .set_tags(Some(secret_tags(&ctx.stack)))
                .send()
                .await
                .ctx("create secret", name)
        })
        .await?;
    if generated {
        eprintln!(
            "  generated a new API key in secret {name}; read it with:\n    aws secretsmanager get-secret-value --secret-id {name} --region {} --query SecretString --output text",
            ctx.stack.region
        );
    }
    ctx.progress(format!("created secret {name}"));
    Ok(out.arn().unwrap_or_default().to_owned())
}

/// Restores a scheduled secret, writes API_KEY when it differs from the current value, retags.
async fn update(ctx: &Ctx, name: &str, change: &Change, o: &ObservedSecret) -> Result<(), Error> {
    let sm = &ctx.clients.secrets;
    if o.deleted_date.is_some() {
        sm.restore_secret().secret_id(name).send().await.ctx("restore secret", name)?;
        ctx.progress(format!("restored secret {name} (it was scheduled for deletion)"));
    }
    if let Some(v) = std::env::var(API_KEY_ENV).ok().filter(|v| !v.is_empty()) {
        // After a restore the value can be read: compare again, write only a different one.
        if value_source(current(ctx, name).await?) == ValueSource::FromEnvironment {
            sm.put_secret_value()
                .secret_id(name)
                .secret_string(v)
                .send()
                .await
                .ctx("write a new version of secret", name)?;
            ctx.progress(format!("secret {name}: new version from API_KEY (the service rolls to read it)"));
        }
    }
    if change.has_tags() {
        sm.tag_resource()
            .secret_id(name)
            .set_tags(Some(secret_tags(&ctx.stack)))
            .send()
            .await
            .ctx("tag secret", name)?;
    }
    Ok(())
}

pub async fn reconcile(ctx: &Ctx, plan: &mut Plan) -> Result<SecretOutputs, Error> {
    let name = ctx.stack.secret.name.clone();
    let observed = observe(ctx, &name).await?;
    // A scheduled secret cannot be read until it is restored: compared after restoring.
    let now = match &observed {
        Some(o) if o.deleted_date.is_none() => current(ctx, &name).await?,
        _ => None,
    };
    let source = value_source(now);
    let outcome = Step::new(ctx, "secret", &name)
        .converge(
            plan,
            async || observe(ctx, &name).await,
            |o| diff(&ctx.stack, o, if o.is_some() { source } else { value_source(None) }),
            async |c: &Change, o: Option<&ObservedSecret>| match o {
                None => create(ctx, &name).await.map(Some),
                Some(o) => update(ctx, &name, c, o).await.map(|()| None),
            },
        )
        .await?;
    Ok(SecretOutputs {
        secret_arn: Id::from_option(outcome.id(), || format!("secret {name}")),
        secret_name: name,
        value_changes: outcome.observed.is_some() && outcome.change.has("value"),
        current_version_created: now.and_then(|c| c.created),
    })
}

/// Schedules deletion with the stack's recovery window, or deletes at once with `purge`.
pub async fn teardown(ctx: &Ctx, plan: &mut Plan, purge: bool) -> Result<(), Error> {
    let name = ctx.stack.secret.name.clone();
    let Some(o) = observe(ctx, &name).await? else { return Ok(()) };
    if o.deleted_date.is_some() && !purge {
        return Ok(());
    }
    let days = ctx.stack.secret.recovery_window_days;
    if ctx.applying() {
        let req = ctx.clients.secrets.delete_secret().secret_id(&name);
        let req =
            if purge { req.force_delete_without_recovery(true) } else { req.recovery_window_in_days(i64::from(days)) };
        gone(req.send().await.ctx("delete secret", &name), &["ResourceNotFoundException"])?;
        if purge {
            // AWS removes a purged secret a little later; an `up` right after must not meet it.
            ctx.wait(Wait::Dependency(&["Secret.StillListed"]), &format!("secret {name} to be gone"), || async {
                match observe(ctx, &name).await? {
                    None => Ok(()),
                    Some(_) => Err(Error::Aws {
                        action: "wait for the deletion of",
                        resource: name.clone(),
                        code: Some("Secret.StillListed".into()),
                        message: "still listed".into(),
                    }),
                }
            })
            .await?;
            ctx.progress(format!("deleted secret {name} for good (--purge)"));
        } else {
            ctx.progress(format!("scheduled secret {name} for deletion in {days} days; the next `up` restores it"));
        }
    }
    let mut change = Change::delete();
    change.fields.push(FieldDiff::new(
        "recovery",
        None,
        Some(if purge {
            "none: deleted at once (--purge)".into()
        } else {
            format!("restorable for {days} days; `up` restores it")
        }),
    ));
    plan.push("secret", &name, Some(o.arn), change);
    Ok(())
}

/// A secret counts as left over only while it is not scheduled for deletion.
pub async fn leftovers(ctx: &Ctx) -> Result<Vec<String>, Error> {
    Ok(observe(ctx, &ctx.stack.secret.name)
        .await?
        .filter(|o| o.deleted_date.is_none())
        .map(|o| format!("secret {}", o.arn))
        .into_iter()
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::Action;

    #[test]
    fn the_plan_never_holds_a_value() {
        let s = crate::resources::test_stack();
        let o = ObservedSecret { arn: "arn:s".into(), deleted_date: None, tags: s.resource_tags() };
        assert!(diff(&s, Some(&o), ValueSource::SameAsCurrent).is_no_op());
        assert!(diff(&s, Some(&o), ValueSource::Unset).is_no_op(), "without API_KEY the value is left alone");
        let c = diff(&s, Some(&o), ValueSource::FromEnvironment);
        assert_eq!(
            c.fields,
            vec![FieldDiff::new("value", Some("(current)".into()), Some("value will change (from API_KEY)".into()))]
        );
        let scheduled = ObservedSecret { deleted_date: Some("2026-12-04".into()), ..o };
        let c = diff(&s, Some(&scheduled), ValueSource::Unset);
        assert_eq!(c.action, Action::Update);
        assert!(c.fields[0].new.as_deref().is_some_and(|n| n.contains("restored")));
        assert!(diff(&s, None, ValueSource::Unset).fields[0].new.as_deref().is_some_and(|n| n.contains("generated")));
    }

    #[test]
    fn generated_keys_are_long_and_different() {
        let (a, b) = (generate_key().expect("key"), generate_key().expect("key"));
        assert_eq!(a.len(), 48);
        assert_ne!(a, b);
    }
}
