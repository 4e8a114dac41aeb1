//! The ACM certificate for the service's domain (`load_balancer.https.domain`): requested in the
//! stack's region with DNS validation and the stack's tags, its validation CNAME written into the
//! domain's Route 53 zone (and left there: ACM renews by finding it again), and `up` waiting until
//! ACM has issued it, since a listener cannot use it before. With `https.certificate_arn`, that
//! certificate is used as it is and never changed or deleted.
//!
//! Certificates have no names: the stack's is the one for the domain that carries its tag.
//! Certificates of others for the same domain are left alone; unusable ones of ours (failed,
//! timed out, revoked, expired) are replaced and deleted once nothing uses them.

use aws_sdk_acm::types::{CertificateStatus, KeyAlgorithm, ResourceRecord as AcmRecord, Tag, ValidationMethod};
use aws_sdk_route53::types::ChangeAction;
use serde::Serialize;

use crate::dns::{self, Record, RecordValue, Zone};
use crate::error::{AwsContext, Error, absent, gone};
use crate::reconcile::Noun;
use crate::reconcile::kind::{Kind, Making, Node, Reconciles};
use crate::reconcile::permission::{Permission, Scope};
use crate::reconcile::step::{InUse, Observed};
use crate::reconcile::{Change, Ctx, FieldDiff, Id, Plan, Step, tags};
use crate::wait::{Wait, not_yet};
/// The nouns of this kind's plan rows.
pub const CERTIFICATE: Noun = Noun::new("certificate");
pub const DNS_RECORD: Noun = Noun::new("dns-record");

/// What the certificate calls: listing and reading certificates of the account in the region,
/// requesting one only for the stack's domain with DNS validation and the stack's tag, tagging
/// and deleting only certificates that carry the tag.
pub const PERMISSIONS: &[Permission] = &[
    Permission::new(&["acm:ListCertificates"], Scope::Any).when(requests_certificate),
    Permission::new(
        &["acm:DescribeCertificate", "acm:ListTagsForCertificate"],
        Scope::Own(|c| vec![c.arn("acm", "certificate/*")]),
    )
    .when(has_https),
    Permission::new(&["acm:RequestCertificate"], Scope::RequestCertificate).when(requests_certificate),
    // ACM checks this for the tags of a request as for a later tag write: never on a certificate
    // another stack owns (docs/POSTURE.md says what IAM cannot express here).
    Permission::new(&["acm:AddTagsToCertificate"], Scope::TagUnowned).when(requests_certificate),
    Permission::new(&["acm:DeleteCertificate"], Scope::Tagged).when(requests_certificate),
];

fn has_https(stack: &stack::Stack) -> bool {
    stack.load_balancer.https.is_some()
}

fn requests_certificate(stack: &stack::Stack) -> bool {
    stack.load_balancer.https.as_ref().is_some_and(stack::Https::requests_certificate)
}

/// The certificate the HTTPS listener uses, and where it stands.
#[derive(Debug, Clone, Serialize)]
pub struct CertificateOutputs {
    pub domain: Option<String>,
    pub certificate_arn: Id,
    /// True when the stack requested it (and `down` deletes it).
    pub managed: bool,
    /// ACM's status: ISSUED, PENDING_VALIDATION, …
    pub status: Option<String>,
    /// When it expires (RFC 3339); ACM renews an issued certificate before that while its
    /// validation record stays in place.
    pub not_after: Option<String>,
    pub hosted_zone_id: Option<String>,
    #[serde(skip)]
    pub zone: Option<Zone>,
}

/// One of our certificates as ACM describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct ObservedCertificate {
    pub arn: String,
    pub status: String,
    pub in_use_by: Vec<String>,
    pub not_after: Option<String>,
    /// The validation records ACM asks for (empty until ACM has made them, a few seconds after
    /// the request).
    pub validation: Vec<Record>,
    pub failure: Option<String>,
    pub tags: Vec<(String, String)>,
}

impl Observed for ObservedCertificate {
    fn id(&self) -> &str {
        &self.arn
    }
}

impl InUse for ObservedCertificate {
    fn in_use(&self) -> bool {
        !self.in_use_by.is_empty()
    }
}

impl ObservedCertificate {
    /// Failed, timed out, revoked or expired: it can never serve again.
    fn unusable(&self) -> bool {
        matches!(self.status.as_str(), "FAILED" | "VALIDATION_TIMED_OUT" | "REVOKED" | "EXPIRED")
    }
}

pub fn diff(stack: &stack::Stack, domain: &str, observed: Option<&ObservedCertificate>) -> Change {
    let Some(o) = observed else {
        return Change::create(vec![
            FieldDiff::new("domain", None, Some(domain.to_owned())),
            FieldDiff::new("validation", None, Some("DNS".into())),
        ]);
    };
    let fields = tags::diff(&tags::desired(stack, domain), &o.tags);
    Change::update(fields)
}

fn validation_record(r: &AcmRecord) -> Record {
    Record {
        name: dns::normalize(r.name()),
        kind: r.r#type().as_str().to_owned(),
        value: RecordValue::Values { ttl: 300, values: vec![r.value().to_owned()] },
    }
}

async fn describe(ctx: &Ctx, arn: &str) -> Result<Option<ObservedCertificate>, Error> {
    let acm = &ctx.clients.acm;
    let described = acm.describe_certificate().certificate_arn(arn).send().await.ctx("describe certificate", arn);
    let Some(out) = absent(described)? else { return Ok(None) };
    let Some(c) = out.certificate() else { return Ok(None) };
    let listed = acm.list_tags_for_certificate().certificate_arn(arn).send().await.ctx("list the tags of", arn);
    let tags = absent(listed)?
        .map(|t| t.tags().iter().map(|t| (t.key().to_owned(), t.value().unwrap_or_default().to_owned())).collect())
        .unwrap_or_default();
    let mut validation: Vec<Record> =
        c.domain_validation_options().iter().filter_map(|v| v.resource_record()).map(validation_record).collect();
    validation.sort_by(|a, b| a.name.cmp(&b.name));
    validation.dedup();
    Ok(Some(ObservedCertificate {
        arn: arn.to_owned(),
        status: c.status().map(|s| s.as_str().to_owned()).unwrap_or_default(),
        in_use_by: c.in_use_by().to_vec(),
        not_after: c.not_after().and_then(|t| t.fmt(aws_smithy_types::date_time::Format::DateTime).ok()),
        validation,
        failure: c.failure_reason().map(|f| f.as_str().to_owned()),
        tags,
    }))
}

/// Every certificate for `domain` in the region that carries the stack's tag.
async fn observe_all(ctx: &Ctx, domain: &str) -> Result<Vec<ObservedCertificate>, Error> {
    let statuses = [
        CertificateStatus::PendingValidation,
        CertificateStatus::Issued,
        CertificateStatus::Inactive,
        CertificateStatus::Expired,
        CertificateStatus::ValidationTimedOut,
        CertificateStatus::Revoked,
        CertificateStatus::Failed,
    ];
    let mut pages =
        ctx.clients.acm.list_certificates().set_certificate_statuses(Some(statuses.to_vec())).into_paginator().send();
    let mut arns = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.ctx("list certificates for", domain)?;
        arns.extend(
            page.certificate_summary_list()
                .iter()
                .filter(|c| c.domain_name() == Some(domain))
                .filter_map(|c| c.certificate_arn().map(str::to_owned)),
        );
    }
    let mut ours = Vec::new();
    for arn in arns {
        if let Some(c) = describe(ctx, &arn).await?.filter(|c| tags::owned_by(&c.tags, &ctx.stack.name)) {
            ours.push(c);
        }
    }
    Ok(ours)
}

/// The stack's tags, as ACM takes them.
fn acm_tags(stack: &stack::Stack, domain: &str) -> Result<Vec<Tag>, Error> {
    tags::desired(stack, domain)
        .into_iter()
        .map(|(k, v)| {
            Tag::builder().key(k).value(v).build().map_err(|e| Error::Refused(format!("certificate tag: {e}")))
        })
        .collect()
}

async fn request(ctx: &Ctx, domain: &str) -> Result<String, Error> {
    // Tagged in the request itself: a run killed right after finds it by its tag. The token makes
    // the SDK's retries of this one call (after a lost answer) one certificate; it is unique per
    // run, because ACM remembers tokens for an hour, even of certificates deleted since.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
    let digest = crate::image::digest(format!("{}/certificate/{domain}/{now}", ctx.stack.name).as_bytes());
    let token: String = digest.trim_start_matches("sha256:").chars().take(32).collect();
    let out = ctx
        .clients
        .acm
        .request_certificate()
        .domain_name(domain)
        .validation_method(ValidationMethod::Dns)
        .key_algorithm(KeyAlgorithm::Rsa2048)
        .idempotency_token(token)
        .set_tags(Some(acm_tags(&ctx.stack, domain)?))
        .send()
        .await
        .ctx("request a certificate for", domain)?;
    let arn = out.certificate_arn().unwrap_or_default().to_owned();
    ctx.progress(format!("requested a certificate for {domain} ({arn})"));
    Ok(arn)
}

async fn apply(
    ctx: &Ctx,
    domain: &str,
    change: &Change,
    observed: Option<&ObservedCertificate>,
) -> Result<Option<String>, Error> {
    match observed {
        None => request(ctx, domain).await.map(Some),
        Some(c) => {
            if change.has_tags() {
                ctx.clients
                    .acm
                    .add_tags_to_certificate()
                    .certificate_arn(&c.arn)
                    .set_tags(Some(acm_tags(&ctx.stack, domain)?))
                    .send()
                    .await
                    .ctx("tag certificate", &c.arn)?;
            }
            Ok(None)
        }
    }
}

async fn delete(ctx: &Ctx, arn: &str) -> Result<(), Error> {
    // A load balancer lets go of a certificate a little after its listener is deleted; one still
    // held after 20 minutes (the Terraform AWS provider's figure) is used by something else.
    let r = ctx
        .wait(
            Wait::DependencyWithin(std::time::Duration::from_secs(20 * 60)),
            &format!("certificate {arn} to be unused"),
            || async {
                ctx.clients.acm.delete_certificate().certificate_arn(arn).send().await.ctx("delete certificate", arn)
            },
        )
        .await;
    gone(r)
}

/// How ACM naming a certificate's validation record is waited for.
const VALIDATION_RECORD_WAIT: Wait = Wait::Settling(&["Certificate.NotFound"]);

/// The certificate's validation records, once ACM has made them (usually seconds after the
/// request, sometimes minutes: until then DescribeCertificate answers without them). Waited
/// for until the run's deadline (Terraform allows five minutes), not the two of `Consistency`.
async fn validation_records(ctx: &Ctx, arn: &str) -> Result<ObservedCertificate, Error> {
    ctx.wait(VALIDATION_RECORD_WAIT, &format!("ACM to name the validation record of {arn}"), || async {
        match describe(ctx, arn).await? {
            Some(c) if !c.validation.is_empty() || c.status == "ISSUED" => Ok(c),
            _ => Err(not_yet("Certificate.NotFound", arn, "no validation record yet")),
        }
    })
    .await
}

/// A validation record in the zone: ours when it holds what ACM asks for, or is absent.
fn diff_record(want: &Record, observed: Option<&Record>) -> Result<Change, Error> {
    match observed {
        None => Ok(Change::create(vec![FieldDiff::new("value", None, Some(want.value.to_string()))])),
        Some(have) if same_target(have, want) => Ok(Change::no_op()),
        Some(have) => Err(Error::Refused(format!(
            "the record {} {} holds {}, not the value ACM asks for ({}): it was left untouched. If it is a leftover, \
             delete it; if another certificate relies on it, that one was requested for this domain in another account",
            have.name, have.kind, have.value, want.value
        ))),
    }
}

/// Two CNAMEs name the same target (DNS names compare without case or trailing dot).
fn same_target(a: &Record, b: &Record) -> bool {
    let targets = |r: &Record| match &r.value {
        RecordValue::Values { values, .. } => values.iter().map(|v| dns::normalize(v)).collect::<Vec<_>>(),
        RecordValue::Alias { dns_name, .. } => vec![dns_name.clone()],
    };
    a.kind == b.kind && targets(a) == targets(b)
}

/// Waits until ACM has issued `arn`, saying what it waits for; a failure or the deadline ends
/// the run with what ACM is looking for and the usual cause.
async fn wait_issued(
    ctx: &Ctx,
    domain: &str,
    zone: &Zone,
    arn: &str,
    records: &[Record],
) -> Result<ObservedCertificate, Error> {
    let looking_for: Vec<String> = records
        .iter()
        .map(|r| format!("{} CNAME {}", r.name, r.value.to_string().split(' ').next().unwrap_or_default()))
        .collect();
    ctx.progress(format!(
        "certificate for {domain}: waiting for ACM to find {} and issue it (usually a few minutes)",
        looking_for.join(", ")
    ));
    let started = std::time::Instant::now();
    let waited = ctx
        .wait(
            Wait::Settling(&["Certificate.PendingValidation"]),
            &format!("the certificate for {domain} to be issued"),
            || async {
                let c = describe(ctx, arn)
                    .await?
                    .ok_or_else(|| not_yet("Certificate.PendingValidation", arn, "not listed"))?;
                match c.status.as_str() {
                    "ISSUED" => Ok(c),
                    "PENDING_VALIDATION" => Err(not_yet("Certificate.PendingValidation", arn, "PENDING_VALIDATION")),
                    other => Err(Error::Refused(failed_message(domain, arn, other, c.failure.as_deref()))),
                }
            },
        )
        .await;
    match waited {
        Ok(c) => {
            ctx.progress(format!("certificate for {domain} issued after {}s", started.elapsed().as_secs()));
            Ok(c)
        }
        Err(Error::Deadline { elapsed, .. }) => {
            let servers = dns::name_servers(ctx, zone).await;
            Err(Error::Refused(format!(
                "the certificate for {domain} ({arn}) was not issued after {}s: ACM is still looking for {} in public \
                 DNS. The record is in the Route 53 zone {} ({}); the usual cause is that this zone is not the one the \
                 internet asks: the registrar of {} must list its name servers{}. Check with `dig +short NS {}` and \
                 `dig +short CNAME {}`. Validation keeps going for 72 hours: the next `up` resumes waiting",
                elapsed.as_secs(),
                looking_for.join(", "),
                zone.name,
                zone.id,
                zone.name,
                if servers.is_empty() { String::new() } else { format!(" ({})", servers.join(", ")) },
                zone.name,
                records.first().map_or(domain, |r| r.name.as_str()),
            )))
        }
        Err(e) => Err(e),
    }
}

fn failed_message(domain: &str, arn: &str, status: &str, reason: Option<&str>) -> String {
    let why = match reason {
        Some("CAA_ERROR") => {
            "a CAA record of the domain does not allow Amazon to issue: add `0 issue \"amazon.com\"` to it (or remove the CAA record)"
                .to_owned()
        }
        Some("DOMAIN_NOT_ALLOWED" | "ADDITIONAL_VERIFICATION_REQUIRED") => {
            "ACM needs more verification for this domain: open a case with AWS Support".to_owned()
        }
        Some(other) => format!("ACM reports {other}"),
        None => "ACM gives no reason".to_owned(),
    };
    format!("the certificate for {domain} ({arn}) is {status}: {why}. The next `up` requests a new one")
}

/// The stack's certificate for `domain`: one usable certificate of ours (requested when there is
/// none; duplicates a lost answer left are deleted), and unusable ones deleted once unused.
async fn converge_certificate(
    ctx: &Ctx,
    plan: &mut Plan,
    domain: &str,
) -> Result<(Id, Option<ObservedCertificate>), Error> {
    // Unusable ones of ours never serve again: a new one is requested, they go once unused.
    let all = observe_all(ctx, domain).await?;
    let (usable, unusable): (Vec<_>, Vec<_>) = all.into_iter().partition(|c| !c.unusable());
    // The first look is the listing above; later ones (after a create) list again.
    let first_look = std::sync::Mutex::new(Some(usable));
    let step = Step::new(ctx, CERTIFICATE, domain);
    let cert = step
        .converge_one(
            plan,
            async || {
                let first = first_look.lock().map_or(None, |mut f| f.take());
                match first {
                    Some(usable) => Ok(usable),
                    None => Ok(observe_all(ctx, domain).await?.into_iter().filter(|c| !c.unusable()).collect()),
                }
            },
            |o| diff(&ctx.stack, domain, o),
            async |c: &Change, o: Option<&ObservedCertificate>| apply(ctx, domain, c, o).await,
            async |extra: &ObservedCertificate| delete(ctx, &extra.arn).await,
        )
        .await?;
    for old in unusable.iter().filter(|c| !c.in_use()) {
        if ctx.applying() {
            delete(ctx, &old.arn).await?;
            ctx.progress(format!("deleted certificate {} ({})", old.arn, old.status));
        }
        let mut change = Change::delete();
        change.reason = Some(format!("{}: it can never serve again", old.status));
        plan.push(CERTIFICATE, domain, Some(old.arn.clone()), change);
    }
    Ok((cert.id_or(|| format!("certificate for {domain}")), cert.observed))
}

/// The name of the record ACM validates the stack's domain with (`_<hash>.<domain>`; ACM gives
/// every certificate of a domain in an account the same one), for the deploy role's policy to
/// name exactly: read from the stack's certificate, requested first in Apply mode when there is
/// none (`up` adopts it; certificates cost nothing). None in a plan that would request it.
pub async fn validation_name(ctx: &Ctx, plan: &mut Plan) -> Result<Option<String>, Error> {
    let Some(domain) = dns::domain(&ctx.stack) else { return Ok(None) };
    let (arn, observed) = converge_certificate(ctx, plan, domain).await?;
    let records = match (arn.known(), observed) {
        (Some(a), Some(o)) if o.arn == a && !o.validation.is_empty() => o.validation,
        (Some(a), _) => validation_records(ctx, a).await?.validation,
        (None, _) => return Ok(None),
    };
    Ok(records.into_iter().find(|r| r.kind == "CNAME").map(|r| r.name))
}

/// Reconciles the certificate the HTTPS listener uses; None without HTTPS.
pub async fn reconcile(ctx: &Ctx, plan: &mut Plan) -> Result<Option<CertificateOutputs>, Error> {
    let stack = &ctx.stack;
    let Some(https) = &stack.load_balancer.https else { return Ok(None) };
    let zone = match &https.domain {
        Some(domain) => Some(dns::find_zone(ctx, https, domain).await?),
        None => None,
    };
    let (Some(domain), None) = (&https.domain, &https.certificate_arn) else {
        // An existing certificate: used as it is.
        let arn = https.certificate_arn.clone().unwrap_or_default();
        let observed = describe(ctx, &arn).await?;
        return Ok(Some(CertificateOutputs {
            domain: https.domain.clone(),
            certificate_arn: Id::Known(arn),
            managed: false,
            status: observed.as_ref().map(|c| c.status.clone()),
            not_after: observed.and_then(|c| c.not_after),
            hosted_zone_id: zone.as_ref().map(|z| z.id.clone()),
            zone,
        }));
    };
    let zone = zone.ok_or_else(|| Error::NotYetKnown(format!("the hosted zone of {domain}")))?;
    let (arn, observed) = converge_certificate(ctx, plan, domain).await?;

    // Its validation records, in the domain's zone.
    let current = match (arn.known(), &observed) {
        (Some(a), Some(o)) if o.arn == a && !o.validation.is_empty() => Some(o.clone()),
        (Some(a), _) => Some(validation_records(ctx, a).await?),
        (None, _) => None,
    };
    let records = current.as_ref().map(|c| c.validation.clone()).unwrap_or_default();
    if records.is_empty() {
        plan.push(
            DNS_RECORD,
            format!("validation of {domain} (CNAME in {})", zone.name),
            None,
            Change::create(vec![FieldDiff::new(
                "value",
                None,
                Some(Id::Pending(format!("the record ACM names for certificate {domain}")).to_string()),
            )]),
        );
    }
    for want in &records {
        let observed = dns::observe(ctx, &zone, &want.name, &want.kind).await?;
        let change = diff_record(want, observed.as_ref())?;
        Step::new(ctx, DNS_RECORD, format!("{} {}", want.name, want.kind))
            .converge_observed(
                plan,
                observed,
                async || dns::observe(ctx, &zone, &want.name, &want.kind).await,
                |_| change.clone(),
                async |_: &Change, _: Option<&Record>| dns::change(ctx, &zone, ChangeAction::Upsert, want).await,
            )
            .await?;
    }

    let mut status = current.as_ref().map(|c| c.status.clone());
    let mut not_after = current.as_ref().and_then(|c| c.not_after.clone());
    if ctx.applying() && status.as_deref() != Some("ISSUED") {
        let issued = wait_issued(ctx, domain, &zone, arn.get()?, &records).await?;
        status = Some(issued.status);
        not_after = issued.not_after;
    }
    Ok(Some(CertificateOutputs {
        domain: Some(domain.clone()),
        certificate_arn: arn,
        managed: true,
        status,
        not_after,
        hosted_zone_id: Some(zone.id.clone()),
        zone: Some(zone),
    }))
}

/// The certificate the stack requests for its domain (not with `certificate_arn`).
fn derived_names(stack: &stack::Stack) -> Vec<(Noun, String)> {
    let Some(h) = stack.load_balancer.https.as_ref().filter(|h| h.certificate_arn.is_none()) else { return Vec::new() };
    h.domain.iter().map(|d| (CERTIFICATE, d.clone())).collect()
}

/// This kind in the one list of kinds (`resources::KINDS`).
pub const KIND: Kind = Kind {
    name: "certificate",
    nouns: &[CERTIFICATE, DNS_RECORD],
    permissions: PERMISSIONS,
    arn_types: &["acm:certificate"],
    deleted_after: &["load-balancer"],
    derived_names,
    name_limits: &[],
    terraform_types: &["aws_acm_certificate", "aws_acm_certificate_validation", "aws_route53_record"],
    teardown: |ctx, plan, down| Box::pin(teardown(ctx, plan, down)),
    leftovers: |ctx| Box::pin(leftovers(ctx)),
    node: Some(Node::of::<Certificate>()),
};

/// The certificate needs nothing of other kinds (validated in DNS while the network is made).
pub struct Certificate;

impl Reconciles for Certificate {
    type Needs = ();
    type Seen = ();
    type Gives = Option<CertificateOutputs>;

    fn see(_: &Ctx) -> Making<'_, ()> {
        Box::pin(async { Ok(()) })
    }

    fn reconcile<'a>(ctx: &'a Ctx, plan: &'a mut Plan, (): (), (): ()) -> Making<'a, Option<CertificateOutputs>> {
        Box::pin(async move { reconcile(ctx, plan).await })
    }
}

/// Deletes our certificates for the domain (after the load balancer let go of them) and their
/// validation records, unless another certificate of the region for the domain still needs the
/// record to renew.
pub async fn teardown(ctx: &Ctx, plan: &mut Plan, _: &crate::reconcile::kind::Down) -> Result<(), Error> {
    let Some(https) = &ctx.stack.load_balancer.https else { return Ok(()) };
    let (Some(domain), None) = (&https.domain, &https.certificate_arn) else { return Ok(()) };
    let ours = observe_all(ctx, domain).await?;
    if ours.is_empty() {
        return Ok(());
    }
    // Without the zone (deleted since), there is no record of ours left to delete.
    let zone = match dns::find_zone(ctx, https, domain).await {
        Ok(z) => Some(z),
        Err(Error::Refused(_)) => None,
        Err(e) => return Err(e),
    };
    let mut records: Vec<Record> = ours.iter().flat_map(|c| c.validation.clone()).collect();
    records.sort_by(|a, b| a.name.cmp(&b.name));
    records.dedup();
    for c in &ours {
        if ctx.applying() {
            delete(ctx, &c.arn).await?;
            ctx.progress(format!("deleted certificate {} for {domain}", c.arn));
        }
        plan.push(CERTIFICATE, domain.as_str(), Some(c.arn.clone()), Change::delete());
    }
    let Some(zone) = zone else { return Ok(()) };
    let others = others_for(ctx, domain, &ours).await?;
    for want in &records {
        let Some(have) = dns::observe(ctx, &zone, &want.name, &want.kind).await? else { continue };
        if !same_target(&have, want) {
            continue;
        }
        if !others.is_empty() {
            ctx.progress(format!(
                "kept {} {}: the certificate(s) {} for {domain} validate with it too",
                want.name,
                want.kind,
                others.join(", ")
            ));
            continue;
        }
        if ctx.applying() {
            dns::change(ctx, &zone, ChangeAction::Delete, &have).await?;
            ctx.progress(format!("deleted {} {} from zone {}", want.name, want.kind, zone.name));
        }
        plan.push(DNS_RECORD, format!("{} {}", want.name, want.kind), None, Change::delete());
    }
    Ok(())
}

/// Certificates of the region for `domain` that are not ours (they share the validation record).
async fn others_for(ctx: &Ctx, domain: &str, ours: &[ObservedCertificate]) -> Result<Vec<String>, Error> {
    // ListCertificates leaves out all but RSA 1024/2048 keys unless asked: ask for every kind.
    let every_key = aws_sdk_acm::types::Filters::builder()
        .set_key_types(Some(vec![
            KeyAlgorithm::Rsa1024,
            KeyAlgorithm::Rsa2048,
            KeyAlgorithm::Rsa3072,
            KeyAlgorithm::Rsa4096,
            KeyAlgorithm::EcPrime256v1,
            KeyAlgorithm::EcSecp384r1,
            KeyAlgorithm::EcSecp521r1,
        ]))
        .build();
    let mut pages = ctx.clients.acm.list_certificates().includes(every_key).into_paginator().send();
    let mut others = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.ctx("list certificates for", domain)?;
        others.extend(
            page.certificate_summary_list()
                .iter()
                .filter(|c| c.domain_name() == Some(domain))
                .filter_map(|c| c.certificate_arn())
                .filter(|arn| !ours.iter().any(|o| o.arn == *arn))
                .map(str::to_owned),
        );
    }
    Ok(others)
}

pub async fn leftovers(ctx: &Ctx) -> Result<Vec<String>, Error> {
    let Some(domain) =
        ctx.stack.load_balancer.https.as_ref().filter(|h| h.requests_certificate()).and_then(|h| h.domain.clone())
    else {
        return Ok(Vec::new());
    };
    Ok(observe_all(ctx, &domain).await?.into_iter().map(|c| format!("certificate {} for {domain}", c.arn)).collect())
}

/// How a certificate's expiry reads in `status`: the date and the days left.
pub fn expiry_line(not_after: &str, now: std::time::SystemTime) -> String {
    let days = humantime::parse_rfc3339_weak(not_after.trim_end_matches('Z'))
        .ok()
        .and_then(|t| t.duration_since(now).ok())
        .map(|d| d.as_secs() / 86_400);
    match days {
        Some(d) => format!("expires {not_after} (in {d} days)"),
        None => format!("expired {not_after}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acm_naming_its_validation_record_late_is_waited_for_until_the_deadline() {
        // ACM can take minutes to name the record (Terraform allows five); two, the limit of an
        // eventual-consistency wait, failed real first runs.
        assert_eq!(VALIDATION_RECORD_WAIT.limit(), None);
    }

    fn cname(name: &str, value: &str) -> Record {
        Record {
            name: name.into(),
            kind: "CNAME".into(),
            value: RecordValue::Values { ttl: 300, values: vec![value.into()] },
        }
    }

    #[test]
    fn a_validation_record_with_another_value_is_not_overwritten() {
        let want = cname("_a.api.example.com", "_b.acm-validations.aws.");
        assert!(diff_record(&want, None).expect("absent").action == crate::reconcile::Action::Create);
        let same = cname("_a.api.example.com", "_B.acm-validations.aws");
        assert!(diff_record(&want, Some(&same)).expect("same").is_no_op(), "case and trailing dot do not matter");
        let other = cname("_a.api.example.com", "elsewhere.example.net.");
        let e = diff_record(&want, Some(&other)).expect_err("foreign");
        assert!(e.to_string().contains("left untouched"), "{e}");
    }

    #[test]
    fn unusable_certificates_are_replaced() {
        let c = |status: &str| ObservedCertificate {
            arn: "a".into(),
            status: status.into(),
            in_use_by: Vec::new(),
            not_after: None,
            validation: Vec::new(),
            failure: None,
            tags: Vec::new(),
        };
        assert!(c("VALIDATION_TIMED_OUT").unusable() && c("FAILED").unusable() && c("EXPIRED").unusable());
        assert!(!c("ISSUED").unusable() && !c("PENDING_VALIDATION").unusable());
    }

    #[test]
    fn expiry_is_shown_with_the_days_left() {
        let now = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000);
        let later = humantime::format_rfc3339_seconds(now + std::time::Duration::from_secs(40 * 86_400)).to_string();
        assert!(expiry_line(&later, now).ends_with("(in 40 days)"), "{}", expiry_line(&later, now));
        assert!(expiry_line("2020-01-01T00:00:00Z", now).starts_with("expired"));
    }

    #[test]
    fn failures_name_the_fix() {
        let m = failed_message("api.example.com", "arn", "FAILED", Some("CAA_ERROR"));
        assert!(m.contains("0 issue \"amazon.com\""), "{m}");
    }
}
