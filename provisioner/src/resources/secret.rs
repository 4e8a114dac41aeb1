//! The API-key secret. The CI secret store is the source of truth: `up` writes `API_KEY` as a new
//! version only when it differs from the current value (compared here, never printed); without
//! `API_KEY` a new secret gets a random 48-character key. A secret scheduled for deletion by
//! `down` is restored, never recreated, so no key is lost. The value never appears in plans,
//! logs, errors or JSON.

use std::io::Read;

use aws_sdk_secretsmanager::types::Tag;
use base64::Engine;
use serde::Serialize;

use crate::error::{AwsContext, Error};
use crate::reconcile::{Action, Change, Ctx, FieldDiff, Plan, tags};

/// Where `up` takes the key from.
pub const API_KEY_ENV: &str = "API_KEY";

#[derive(Debug, Clone, Default, Serialize)]
pub struct SecretOutputs {
    pub secret_name: String,
    pub secret_arn: Option<String>,
    /// The value changes in this run: running tasks keep the old one until they restart.
    #[serde(skip)]
    pub value_changes: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ObservedSecret {
    pub arn: String,
    /// When set, the secret is scheduled for deletion.
    pub deleted_date: Option<String>,
    pub tags: Vec<(String, String)>,
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
    let out = match ctx.clients.secrets.describe_secret().secret_id(name).send().await.ctx("describe secret", name) {
        Ok(o) => o,
        Err(e) if e.code() == Some("ResourceNotFoundException") => return Ok(None),
        Err(e) => return Err(e),
    };
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

/// Compares API_KEY with the current value, if both exist; never returns either.
async fn value_source(ctx: &Ctx, name: &str, observed: Option<&ObservedSecret>) -> Result<ValueSource, Error> {
    let Some(wanted) = std::env::var(API_KEY_ENV).ok().filter(|v| !v.is_empty()) else { return Ok(ValueSource::Unset) };
    let Some(o) = observed else { return Ok(ValueSource::FromEnvironment) };
    if o.deleted_date.is_some() {
        // A scheduled secret cannot be read until it is restored: compare after restoring.
        return Ok(ValueSource::FromEnvironment);
    }
    let current = match ctx
        .clients
        .secrets
        .get_secret_value()
        .secret_id(name)
        .send()
        .await
        .ctx("read the current version of secret", name)
    {
        Ok(v) => v.secret_string().map(str::to_owned),
        Err(e) if e.code() == Some("ResourceNotFoundException") => None,
        Err(e) => return Err(e),
    };
    Ok(if current.as_deref() == Some(wanted.as_str()) {
        ValueSource::SameAsCurrent
    } else {
        ValueSource::FromEnvironment
    })
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

pub async fn reconcile(ctx: &Ctx, plan: &mut Plan) -> Result<SecretOutputs, Error> {
    let name = ctx.stack.secret.name.clone();
    let observed = observe(ctx, &name).await?;
    let source = value_source(ctx, &name, observed.as_ref()).await?;
    let change = diff(&ctx.stack, observed.as_ref(), source);
    let mut arn = observed.as_ref().map(|o| o.arn.clone());
    if ctx.applying() && !change.is_no_op() {
        let sm = &ctx.clients.secrets;
        let env_value = std::env::var(API_KEY_ENV).ok().filter(|v| !v.is_empty());
        if change.action == Action::Create {
            let generated = env_value.is_none();
            let value = match env_value {
                Some(v) => v,
                None => generate_key()?,
            };
            let out = sm
                .create_secret()
                .name(&name)
                .description(format!("API key of the Konnichiwa stack {}", ctx.stack.name))
                .secret_string(value)
                .set_tags(Some(secret_tags(&ctx.stack)))
                .send()
                .await
                .ctx("create secret", &name)?;
            arn = out.arn().map(str::to_owned);
            if generated {
                eprintln!(
                    "  generated a new API key in secret {name}; read it with:\n    aws secretsmanager get-secret-value --secret-id {name} --region {} --query SecretString --output text",
                    ctx.stack.region
                );
            }
            ctx.progress(format!("created secret {name}"));
        } else {
            if observed.as_ref().is_some_and(|o| o.deleted_date.is_some()) {
                sm.restore_secret().secret_id(&name).send().await.ctx("restore secret", &name)?;
                ctx.progress(format!("restored secret {name} (it was scheduled for deletion)"));
            }
            // After a restore the comparison can be made; write only a different value.
            if let Some(v) = env_value {
                let restored_source = value_source(
                    ctx,
                    &name,
                    observed.as_ref().map(|o| ObservedSecret { deleted_date: None, ..o.clone() }).as_ref(),
                )
                .await?;
                if restored_source == ValueSource::FromEnvironment {
                    sm.put_secret_value()
                        .secret_id(&name)
                        .secret_string(v)
                        .send()
                        .await
                        .ctx("write a new version of secret", &name)?;
                    ctx.progress(format!(
                        "secret {name}: new version from API_KEY (running tasks pick it up on their next deployment)"
                    ));
                }
            }
            if change.fields.iter().any(|f| f.field.starts_with("tags.")) {
                sm.tag_resource()
                    .secret_id(&name)
                    .set_tags(Some(secret_tags(&ctx.stack)))
                    .send()
                    .await
                    .ctx("tag secret", &name)?;
            }
        }
    }
    let value_changes = observed.is_some() && change.fields.iter().any(|f| f.field == "value");
    plan.push("secret", &name, arn.clone(), change);
    Ok(SecretOutputs { secret_name: name, secret_arn: arn, value_changes })
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
        match req.send().await.ctx("delete secret", &name) {
            Err(e) if e.code() != Some("ResourceNotFoundException") => return Err(e),
            _ => ctx.progress(if purge {
                format!("deleted secret {name} for good (--purge)")
            } else {
                format!("scheduled secret {name} for deletion in {days} days; the next `up` restores it")
            }),
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
