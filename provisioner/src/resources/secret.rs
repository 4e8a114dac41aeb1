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

use serde_json::{Value, json};

use crate::aws::Identity;
use crate::error::{AwsContext, Error, absent, gone};
use crate::reconcile::Noun;
use crate::reconcile::kind::{Kind, Making, Node, Reconciles};
use crate::reconcile::permission::{Permission, PolicyContext, Scope};
use crate::reconcile::step::Observed;
use crate::reconcile::{Change, Ctx, FieldDiff, Id, Plan, Step, tags};
use crate::wait::Wait;
/// The nouns of this kind's plan rows.
pub const SECRET: Noun = Noun::new("secret");

/// Where `up` takes the key from.
pub const API_KEY_ENV: &str = "API_KEY";

/// What the secret calls, on the stack's secret only: its name and the six characters AWS adds.
/// Created only with AWS's own key (a key of another account could make the value readable
/// from there) and with a resource policy Secrets Manager has checked is not public.
pub const PERMISSIONS: &[Permission] = &[
    Permission::new(
        &[
            "secretsmanager:DescribeSecret",
            "secretsmanager:GetSecretValue",
            "secretsmanager:PutSecretValue",
            "secretsmanager:GetResourcePolicy",
        ],
        Scope::Own(secret_arn),
    ),
    // Its resource policy is an administrator's (no condition can see that it leaves out every
    // principal but the stack's), and so is making, deleting and restoring it.
    Permission::new(&["secretsmanager:RestoreSecret", "secretsmanager:DeleteSecret"], Scope::Own(secret_arn))
        .administrators_only(),
    Permission::new(
        &["secretsmanager:CreateSecret"],
        Scope::Conditioned {
            resources: secret_arn,
            condition: |c| {
                json!({
                    "Null": { "secretsmanager:KmsKeyArn": "true", "secretsmanager:KmsKeyId": "true" },
                    "StringEquals": { format!("aws:RequestTag/{}", stack::OWNERSHIP_TAG): c.stack.name },
                })
            },
        },
    )
    .administrators_only(),
    Permission::new(
        &["secretsmanager:PutResourcePolicy"],
        Scope::Conditioned {
            resources: secret_arn,
            condition: |_| json!({ "Bool": { "secretsmanager:BlockPublicPolicy": "true" } }),
        },
    )
    .administrators_only(),
    Permission::new(&["secretsmanager:TagResource"], Scope::Retag(secret_arn)),
];

fn secret_arn(c: &PolicyContext) -> Vec<String> {
    vec![c.arn("secretsmanager", &format!("secret:{}-??????", c.stack.secret.name))]
}

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
    /// The resource policy (None: none, or not readable while scheduled for deletion).
    pub policy: Option<Value>,
}

/// True when `listed` names `principal`; a listed role with a path (SSO roles have one) names
/// the role of the same name, as assumed-role ARNs carry no path.
fn names_principal(listed: &str, principal: &str) -> bool {
    let role_name = |arn: &str| {
        arn.split_once(":role/")
            .map(|(acct, path)| (acct.to_owned(), path.rsplit('/').next().unwrap_or_default().to_owned()))
    };
    listed == principal || (role_name(listed).is_some() && role_name(listed) == role_name(principal))
}

/// The secret's resource policy. Always: principals of other accounts can do nothing with it.
/// With `secret.only_principals`: its value can be read only by the task execution role (which
/// injects it), the CI deploy role and the listed principals. Managing the secret (its policy
/// included) stays with IAM, so a wrong list can be fixed by any administrator: nobody is
/// locked out.
pub fn resource_policy(stack: &stack::Stack, identity: &Identity) -> Value {
    let mut statements = vec![json!({
        "Sid": "ThisAccountOnly",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "secretsmanager:*",
        "Resource": "*",
        "Condition": { "StringNotEquals": { "aws:PrincipalAccount": identity.account } },
    })];
    if !stack.secret.only_principals.is_empty() {
        let (_, execution, _) = crate::resources::iam::names::roles(stack);
        let deploy = crate::resources::iam::deploy_role::role_name(&stack.name);
        let mut readers = vec![identity.role_arn(&execution), identity.role_arn(&deploy)];
        readers.extend(stack.secret.only_principals.iter().cloned());
        statements.push(json!({
            "Sid": "OnlyTheseRead",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "secretsmanager:GetSecretValue",
            "Resource": "*",
            "Condition": { "StringNotEquals": { "aws:PrincipalArn": readers } },
        }));
    }
    json!({ "Version": "2012-10-17", "Statement": statements })
}

/// `up` reads the value (to compare it with API_KEY): refuses a list that would deny the caller.
pub fn check_caller_reads(stack: &stack::Stack, identity: &Identity) -> Result<(), Error> {
    let listed = &stack.secret.only_principals;
    let me = identity.principal_arn();
    let deploy = identity.role_arn(&crate::resources::iam::deploy_role::role_name(&stack.name));
    if listed.is_empty() || me == deploy || listed.iter().any(|l| names_principal(l, &me)) {
        return Ok(());
    }
    Err(Error::Refused(format!(
        "secret.only_principals leaves out {me}, who runs this: `up` reads the secret to compare it with API_KEY and would be denied; add {me} to secret.only_principals"
    )))
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

pub fn diff(stack: &stack::Stack, policy: &Value, observed: Option<&ObservedSecret>, value: ValueSource) -> Change {
    let Some(o) = observed else {
        let how = if value == ValueSource::Unset {
            "generated: 48 random characters (API_KEY is not set)"
        } else {
            "from API_KEY"
        };
        return Change::create(vec![
            FieldDiff::new("value", None, Some(how.into())),
            FieldDiff::new("resource_policy", None, Some(policy.to_string())),
        ]);
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
    if o.policy.as_ref() != Some(policy) {
        let have = o.policy.as_ref().map_or_else(|| "none".to_owned(), Value::to_string);
        fields.push(FieldDiff::new("resource_policy", Some(have), Some(policy.to_string())));
    }
    fields.extend(tags::diff(&stack.resource_tags(), &o.tags));
    Change::update(fields)
}

/// Our secret `name` (DescribeSecret alone), ownership checked; its policy not read.
pub(crate) async fn get_owned(ctx: &Ctx, name: &str) -> Result<Option<ObservedSecret>, Error> {
    let described = ctx.clients.secrets.describe_secret().secret_id(name).send().await.ctx("describe secret", name);
    let Some(out) = absent(described)? else { return Ok(None) };
    let found = vec![ObservedSecret {
        arn: out.arn().unwrap_or_default().to_owned(),
        deleted_date: out.deleted_date().map(|d| d.to_string()),
        tags: out
            .tags()
            .iter()
            .map(|t| (t.key().unwrap_or_default().to_owned(), t.value().unwrap_or_default().to_owned()))
            .collect(),
        policy: None,
    }];
    tags::pick_owned("secret", name, &ctx.owner(), found, |s| s.arn.clone(), |s| s.tags.clone())
}

/// The ARN of the stack's API-key secret, if it exists and is not scheduled for deletion (one
/// call; nothing compared).
pub async fn locate(ctx: &Ctx) -> Result<Option<String>, Error> {
    let found = get_owned(ctx, &ctx.stack.secret.name).await?;
    Ok(found.filter(|s| s.deleted_date.is_none()).map(|s| s.arn))
}

async fn observe(ctx: &Ctx, name: &str) -> Result<Option<ObservedSecret>, Error> {
    let Some(mut secret) = get_owned(ctx, name).await? else { return Ok(None) };
    // A secret scheduled for deletion answers nothing but Describe and Restore.
    if secret.deleted_date.is_none() {
        let read = ctx.clients.secrets.get_resource_policy().secret_id(name).send().await;
        let out = read.ctx("read the resource policy of secret", name)?;
        secret.policy = out.resource_policy().and_then(|p| serde_json::from_str(p).ok());
    }
    Ok(Some(secret))
}

async fn put_policy(ctx: &Ctx, name: &str, policy: &Value) -> Result<(), Error> {
    ctx.clients
        .secrets
        .put_resource_policy()
        .secret_id(name)
        .resource_policy(policy.to_string())
        .block_public_policy(true)
        .send()
        .await
        .ctx("set the resource policy of secret", name)?;
    Ok(())
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
    let Some(v) = absent(read)? else { return Ok(None) };
    let wanted = api_key_from_env()?;
    Ok(Some(Current {
        same_as_api_key: wanted.map(|w| v.secret_string() == Some(w.as_str())),
        created: v.created_date().copied(),
    }))
}

/// The shortest key the service starts with (`app::config::MIN_API_KEY_LEN`, which a test keeps
/// equal).
const MIN_API_KEY_LEN: usize = 16;

/// API_KEY from the environment (empty: unset); refused, without its value, when Secrets Manager
/// could not hold it or the service would not start with it.
fn api_key_from_env() -> Result<Option<String>, Error> {
    let Some(key) = std::env::var(API_KEY_ENV).ok().filter(|v| !v.is_empty()) else { return Ok(None) };
    checked_api_key(key).map(Some)
}

/// `key` if the service would start with it and Secrets Manager can hold it.
fn checked_api_key(key: String) -> Result<String, Error> {
    // The service would refuse to start with it (and the tasks would fail one after another).
    if key.chars().any(char::is_control) {
        return Err(Error::Refused(format!(
            "{API_KEY_ENV} holds a control character (a line break?): a bearer header cannot carry it; set the key \
             without it"
        )));
    }
    if key.trim() != key {
        return Err(Error::Refused(format!(
            "{API_KEY_ENV} begins or ends with white space (a copy-paste?): a bearer header cannot carry it; \
             set the key without it"
        )));
    }
    let length = key.chars().count();
    if length < MIN_API_KEY_LEN {
        return Err(Error::Refused(format!(
            "{API_KEY_ENV} is {length} characters: the service refuses keys under {MIN_API_KEY_LEN} \
             (e.g. `openssl rand -hex 24`)"
        )));
    }
    let limit = stack::limits::SECRET_VALUE;
    if key.len() > limit.max {
        return Err(Error::Refused(format!(
            "{API_KEY_ENV} is {} bytes, and a secret's value is limited ({}): use a shorter key (48 random \
             characters are plenty)",
            key.len(),
            limit.describe()
        )));
    }
    Ok(key)
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
async fn create(ctx: &Ctx, name: &str, policy: &Value) -> Result<String, Error> {
    let env_value = api_key_from_env()?;
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
    put_policy(ctx, name, policy).await?;
    ctx.progress(format!("created secret {name}"));
    Ok(out.arn().unwrap_or_default().to_owned())
}

/// Restores a scheduled secret, writes API_KEY when it differs from the current value, retags.
async fn update(ctx: &Ctx, name: &str, policy: &Value, change: &Change, o: &ObservedSecret) -> Result<(), Error> {
    let sm = &ctx.clients.secrets;
    if o.deleted_date.is_some() {
        sm.restore_secret().secret_id(name).send().await.ctx("restore secret", name)?;
        ctx.progress(format!("restored secret {name} (it was scheduled for deletion)"));
    }
    if let Some(v) = api_key_from_env()? {
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
    if change.has("resource_policy") {
        put_policy(ctx, name, policy).await?;
    }
    Ok(())
}

pub async fn reconcile(ctx: &Ctx, plan: &mut Plan) -> Result<SecretOutputs, Error> {
    let name = ctx.stack.secret.name.clone();
    // A key Secrets Manager would refuse stops the plan, before anything is made.
    api_key_from_env()?;
    let identity = ctx.clients.identity().await?;
    let policy = resource_policy(&ctx.stack, &identity);
    let observed = observe(ctx, &name).await?;
    // A scheduled secret cannot be read until it is restored: compared after restoring.
    let now = match &observed {
        Some(o) if o.deleted_date.is_none() => current(ctx, &name).await?,
        _ => None,
    };
    let source = value_source(now);
    let outcome = Step::new(ctx, SECRET, &name)
        .converge_observed(
            plan,
            observed,
            async || observe(ctx, &name).await,
            |o| diff(&ctx.stack, &policy, o, if o.is_some() { source } else { value_source(None) }),
            async |c: &Change, o: Option<&ObservedSecret>| match o {
                None => create(ctx, &name, &policy).await.map(Some),
                Some(o) => update(ctx, &name, &policy, c, o).await.map(|()| None),
            },
        )
        .await?;
    Ok(SecretOutputs {
        secret_arn: outcome.id_or(|| format!("secret {name}")),
        secret_name: name,
        value_changes: outcome.observed.is_some() && outcome.change.has("value"),
        current_version_created: now.and_then(|c| c.created),
    })
}

/// The API-key secret (`secret.name`, default `<stack>/api-key`).
fn derived_names(stack: &stack::Stack) -> Vec<(Noun, String)> {
    vec![(SECRET, stack.secret.name.clone())]
}

/// This kind in the one list of kinds (`resources::KINDS`).
pub const KIND: Kind = Kind {
    name: "secret",
    nouns: &[SECRET],
    permissions: PERMISSIONS,
    arn_types: &["secretsmanager:secret"],
    deleted_after: &[],
    derived_names,
    name_limits: &[(SECRET, &stack::limits::SECRET_NAME)],
    terraform_types: &["aws_secretsmanager_secret", "aws_secretsmanager_secret_version"],
    teardown: |ctx, plan, down| Box::pin(teardown(ctx, plan, down)),
    leftovers: |ctx| Box::pin(leftovers(ctx)),
    node: Some(Node::of::<Secret>()),
};

/// The secret needs nothing of other kinds.
pub struct Secret;

impl Reconciles for Secret {
    type Needs = ();
    type Seen = ();
    type Gives = SecretOutputs;

    fn see(_: &Ctx) -> Making<'_, ()> {
        Box::pin(async { Ok(()) })
    }

    fn reconcile<'a>(ctx: &'a Ctx, plan: &'a mut Plan, (): (), (): ()) -> Making<'a, SecretOutputs> {
        Box::pin(async move { reconcile(ctx, plan).await })
    }
}

/// Schedules deletion with the stack's recovery window, or deletes at once with `purge`.
pub async fn teardown(ctx: &Ctx, plan: &mut Plan, down: &crate::reconcile::kind::Down) -> Result<(), Error> {
    let purge = down.purge;
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
        gone(req.send().await.ctx("delete secret", &name))?;
        if purge {
            // AWS removes a purged secret a little later; an `up` right after must not meet it.
            ctx.wait(Wait::Settling(&["Secret.StillListed"]), &format!("secret {name} to be gone"), || async {
                match observe(ctx, &name).await? {
                    None => Ok(()),
                    Some(_) => Err(crate::wait::not_yet("Secret.StillListed", name.as_str(), "still listed")),
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
    plan.push(SECRET, &name, Some(o.arn), change);
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
    fn a_key_the_service_would_refuse_is_refused_before_any_change_without_its_value() {
        assert_eq!(MIN_API_KEY_LEN, app::config::MIN_API_KEY_LEN);
        assert!(checked_api_key("k".repeat(MIN_API_KEY_LEN)).is_ok());
        let short = checked_api_key("shortkey".into()).expect_err("short").to_string();
        assert!(short.contains("8 characters") && short.contains("under 16") && !short.contains("shortkey"), "{short}");
        let padded = checked_api_key(format!(" {} ", "k".repeat(20))).expect_err("padded").to_string();
        assert!(padded.contains("white space") && !padded.contains("kkkk"), "{padded}");
        let broken =
            checked_api_key(format!("{}\n{}", "k".repeat(10), "k".repeat(10))).expect_err("line break").to_string();
        assert!(broken.contains("control character") && !broken.contains("kkkk"), "{broken}");
        let huge = checked_api_key("k".repeat(70_000)).expect_err("too long").to_string();
        assert!(huge.contains("70000 bytes"), "{huge}");
    }

    #[test]
    fn the_plan_never_holds_a_value() {
        let s = crate::resources::test_stack();
        let p = resource_policy(&s, &identity("arn:aws:iam::123456789012:user/me"));
        let o = ObservedSecret {
            arn: "arn:s".into(),
            deleted_date: None,
            tags: s.resource_tags(),
            policy: Some(p.clone()),
        };
        assert!(diff(&s, &p, Some(&o), ValueSource::SameAsCurrent).is_no_op());
        assert!(diff(&s, &p, Some(&o), ValueSource::Unset).is_no_op(), "without API_KEY the value is left alone");
        let c = diff(&s, &p, Some(&o), ValueSource::FromEnvironment);
        assert_eq!(
            c.fields,
            vec![FieldDiff::new("value", Some("(current)".into()), Some("value will change (from API_KEY)".into()))]
        );
        let scheduled = ObservedSecret { deleted_date: Some("2026-12-04".into()), policy: None, ..o };
        let c = diff(&s, &p, Some(&scheduled), ValueSource::Unset);
        assert_eq!(c.action, Action::Update);
        assert!(c.fields[0].new.as_deref().is_some_and(|n| n.contains("restored")));
        assert!(c.has("resource_policy"), "a restored secret gets its policy back");
        let created = diff(&s, &p, None, ValueSource::Unset);
        assert!(created.fields[0].new.as_deref().is_some_and(|n| n.contains("generated")));
    }

    fn identity(arn: &str) -> Identity {
        Identity { account: "123456789012".into(), arn: arn.into(), partition: "aws".into() }
    }

    #[test]
    fn the_policy_keeps_other_accounts_out_and_with_a_list_only_those_read() {
        let mut s = crate::resources::test_stack();
        let me = identity("arn:aws:sts::123456789012:assumed-role/Admin/alice");
        let p = resource_policy(&s, &me);
        let statements = p["Statement"].as_array().unwrap();
        assert_eq!(statements.len(), 1);
        assert_eq!(statements[0]["Condition"]["StringNotEquals"]["aws:PrincipalAccount"], "123456789012");
        assert!(check_caller_reads(&s, &me).is_ok(), "no list: nobody in the account is refused");

        s.secret.only_principals = vec!["arn:aws:iam::123456789012:role/Ops".into()];
        let err = check_caller_reads(&s, &me).unwrap_err().to_string();
        assert!(err.contains("arn:aws:iam::123456789012:role/Admin") && err.contains("only_principals"), "{err}");
        s.secret.only_principals.push("arn:aws:iam::123456789012:role/aws-reserved/sso.amazonaws.com/Admin".into());
        assert!(check_caller_reads(&s, &me).is_ok(), "a listed SSO role with a path names the assumed role");
        let p = resource_policy(&s, &me);
        let readers = &p["Statement"][1]["Condition"]["StringNotEquals"]["aws:PrincipalArn"];
        assert_eq!(p["Statement"][1]["Action"], "secretsmanager:GetSecretValue", "management stays with IAM");
        assert_eq!(readers[0], "arn:aws:iam::123456789012:role/konnichiwa-execution");
        assert_eq!(readers[1], "arn:aws:iam::123456789012:role/konnichiwa-deploy");
        assert_eq!(readers.as_array().unwrap().len(), 4);
        let ci = identity("arn:aws:sts::123456789012:assumed-role/konnichiwa-deploy/GitHubActions");
        assert!(check_caller_reads(&s, &ci).is_ok(), "the deploy role always reads");
    }

    #[test]
    fn generated_keys_are_long_and_different() {
        let (a, b) = (generate_key().expect("key"), generate_key().expect("key"));
        assert_eq!(a.len(), 48);
        assert_ne!(a, b);
    }
}
