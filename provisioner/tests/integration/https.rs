//! HTTPS on the service's own domain (`load_balancer.https.domain`) on moto: the certificate is
//! requested, validated in a hosted zone that also holds records of others, the listeners use
//! it, the domain points at the load balancer; a second `up` changes nothing, a deleted alias is
//! drift that `up` restores, and `down` removes only what the stack wrote.

use aws_sdk_route53::types::{Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType};
use provisioner::aws::Clients;

use crate::common::faults::{Faults, Proxy, Script};
use crate::common::{Account, moto_url, mutations, text};

const DOMAIN_LINE: &str = "  https: { domain: api.example.com }";

/// stack.yaml's commented HTTPS example replaced by `https: { domain: api.example.com }`.
pub fn with_domain(text: String) -> String {
    let line = text.lines().find(|l| l.trim_start().starts_with("# https:")).expect("https example line").to_owned();
    text.replacen(&line, DOMAIN_LINE, 1)
}

/// Creates the public hosted zone `name`; its id.
pub async fn zone(c: &Clients, name: &str) -> String {
    let out = c
        .route53
        .create_hosted_zone()
        .name(name)
        .caller_reference(format!("test-{name}"))
        .send()
        .await
        .expect("create zone");
    out.hosted_zone().expect("zone").id().trim_start_matches("/hostedzone/").to_owned()
}

async fn put(c: &Clients, zone: &str, action: ChangeAction, name: &str, kind: RrType, value: &str) {
    let set = ResourceRecordSet::builder()
        .name(name)
        .r#type(kind)
        .ttl(300)
        .resource_records(ResourceRecord::builder().value(value).build().expect("record"))
        .build()
        .expect("set");
    let change = Change::builder().action(action).resource_record_set(set).build().expect("change");
    c.route53
        .change_resource_record_sets()
        .hosted_zone_id(zone)
        .change_batch(ChangeBatch::builder().changes(change).build().expect("batch"))
        .send()
        .await
        .expect("change records");
}

/// (name, type) of every record in the zone.
async fn records(c: &Clients, zone: &str) -> Vec<(String, String)> {
    let out = c.route53.list_resource_record_sets().hosted_zone_id(zone).send().await.expect("records");
    let mut v: Vec<(String, String)> = out
        .resource_record_sets()
        .iter()
        .map(|r| (r.name().trim_end_matches('.').to_owned(), r.r#type().as_str().to_owned()))
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn a_domain_gets_a_certificate_listeners_and_an_alias_and_down_removes_only_ours() {
    let account = Account::new();
    let c = account.clients().await;
    let zone_id = zone(&c, "example.com").await;
    // Records of others, at other names and at the domain itself (another type).
    put(&c, &zone_id, ChangeAction::Create, "www.example.com", RrType::A, "192.0.2.10").await;
    put(&c, &zone_id, ChangeAction::Create, "api.example.com", RrType::Txt, "\"v=spf1 -all\"").await;
    let before = records(&c, &zone_id).await;
    account.edit_stack(with_domain);

    let up = account.json(&["up", "--yes"], 0);
    let out = &up["outputs"];
    assert_eq!(out["load_balancer"]["url"], "https://api.example.com");
    let cert = &out["certificate"];
    assert_eq!(cert["status"], "ISSUED");
    assert_eq!(cert["managed"], true);
    assert_eq!(cert["hosted_zone_id"], zone_id.as_str());
    let arn = cert["certificate_arn"].as_str().expect("certificate arn").to_owned();

    // The certificate: the domain, DNS validation, the stack's tag.
    let described = c.acm.describe_certificate().certificate_arn(&arn).send().await.expect("certificate");
    let detail = described.certificate().expect("detail");
    assert_eq!(detail.domain_name(), Some("api.example.com"));
    let tags = c.acm.list_tags_for_certificate().certificate_arn(&arn).send().await.expect("tags");
    assert!(tags.tags().iter().any(|t| t.key() == "konnichiwa:stack" && t.value() == Some("konnichiwa")));
    let validation = detail.domain_validation_options()[0].resource_record().expect("validation record");
    let validation_name = validation.name().trim_end_matches('.').to_owned();

    // Listeners: HTTPS with the certificate and a TLS 1.3 policy; HTTP redirects.
    let lb_arn = out["load_balancer"]["load_balancer_arn"].as_str().expect("lb");
    let listeners = c.elb.describe_listeners().load_balancer_arn(lb_arn).send().await.expect("listeners");
    let https = listeners.listeners().iter().find(|l| l.port() == Some(443)).expect("https listener");
    assert_eq!(https.certificates()[0].certificate_arn(), Some(arn.as_str()));
    assert!(https.ssl_policy().is_some_and(|p| p.starts_with("ELBSecurityPolicy-TLS13")), "{:?}", https.ssl_policy());
    let http = listeners.listeners().iter().find(|l| l.port() == Some(80)).expect("http listener");
    let redirect = http.default_actions()[0].redirect_config().expect("redirect");
    assert_eq!((redirect.protocol(), redirect.port()), (Some("HTTPS"), Some("443")));

    // Records: the validation CNAME and the alias to the load balancer, beside the others'.
    let after = records(&c, &zone_id).await;
    let mut expected = before.clone();
    expected.push(("api.example.com".into(), "A".into()));
    expected.push((validation_name.clone(), "CNAME".into()));
    expected.sort();
    assert_eq!(after, expected);
    let alias = c
        .route53
        .list_resource_record_sets()
        .hosted_zone_id(&zone_id)
        .start_record_name("api.example.com")
        .start_record_type(RrType::A)
        .max_items(1)
        .send()
        .await
        .expect("alias");
    let target = alias.resource_record_sets()[0].alias_target().expect("an alias");
    let lb_dns = out["load_balancer"]["dns_name"].as_str().expect("dns name");
    assert_eq!(target.dns_name().trim_end_matches('.'), format!("dualstack.{lb_dns}"));

    // A second `up` makes no mutating call.
    let again = account.json(&["up", "--yes"], 0);
    assert_eq!(mutations(&again), Vec::<String>::new(), "second up: {:#}", again["plan"]);

    // The alias deleted behind our back: drift in plan, restored by up.
    let set = alias.resource_record_sets()[0].clone();
    c.route53
        .change_resource_record_sets()
        .hosted_zone_id(&zone_id)
        .change_batch(
            ChangeBatch::builder()
                .changes(Change::builder().action(ChangeAction::Delete).resource_record_set(set).build().expect("c"))
                .build()
                .expect("batch"),
        )
        .send()
        .await
        .expect("delete alias");
    let plan = account.json(&["plan"], 0);
    assert_eq!(plan["changes_pending"], true);
    let drift: Vec<(&str, &str)> = plan["resources"]
        .as_array()
        .expect("rows")
        .iter()
        .filter(|r| r["action"] != "no-op")
        .map(|r| (r["kind"].as_str().unwrap_or_default(), r["action"].as_str().unwrap_or_default()))
        .collect();
    assert_eq!(drift, [("dns-alias", "create")], "{:#}", plan["resources"]);
    let repaired = account.json(&["up", "--yes"], 0);
    assert_eq!(mutations(&repaired), ["Route 53:ChangeResourceRecordSets"]);
    assert_eq!(records(&c, &zone_id).await, expected);

    // status: the certificate's state and expiry.
    let status = text(&account.run(&["status"]));
    assert!(status.contains(&format!("Certificate {arn} for api.example.com: ISSUED, expires ")), "{status}");
    assert!(status.contains("URL: https://api.example.com"), "{status}");

    // down: our records and certificate go; the others' stay.
    account.json(&["down", "--yes", "--purge"], 0);
    assert_eq!(records(&c, &zone_id).await, before);
    let left = c.acm.list_certificates().send().await.expect("certificates");
    assert!(left.certificate_summary_list().is_empty(), "{:?}", left.certificate_summary_list());
}

#[tokio::test]
async fn an_a_record_of_someone_else_at_the_domain_is_never_overwritten() {
    let account = Account::new();
    let c = account.clients().await;
    let zone_id = zone(&c, "example.com").await;
    put(&c, &zone_id, ChangeAction::Create, "api.example.com", RrType::A, "192.0.2.1").await;
    account.edit_stack(with_domain);
    let out = account.run(&["up", "--yes"]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("api.example.com already has an A record (192.0.2.1 (ttl 300))"), "{said}");
    assert!(said.contains("choose another load_balancer.https.domain"), "{said}");
    let a = records(&c, &zone_id).await;
    assert!(a.contains(&("api.example.com".into(), "A".into())));
    account.json(&["down", "--yes", "--purge"], 0);
    let kept = c
        .route53
        .list_resource_record_sets()
        .hosted_zone_id(&zone_id)
        .start_record_name("api.example.com")
        .start_record_type(RrType::A)
        .send()
        .await
        .expect("records");
    let values: Vec<&str> = kept.resource_record_sets()[0].resource_records().iter().map(|r| r.value()).collect();
    assert_eq!(values, ["192.0.2.1"], "down left the other A record alone");
}

#[tokio::test]
async fn a_domain_without_a_hosted_zone_is_refused_before_any_change_with_how_to_make_one() {
    let account = Account::new();
    account.edit_stack(with_domain);
    let out = account.run(&["plan"]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("no Route 53 public hosted zone holds api.example.com"), "{said}");
    assert!(said.contains("aws route53 create-hosted-zone --name example.com"), "{said}");
}

/// ACM as it behaves right after a request: DescribeCertificate names no validation record for a
/// few seconds, then the certificate stays PENDING_VALIDATION until ACM has found the record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_not_ready_yet_is_waited_for_and_a_lost_request_answer_makes_one_certificate() {
    let account = Account::new();
    let c = account.clients().await;
    zone(&c, "example.com").await;
    account.edit_stack(with_domain);
    let proxy = Proxy::start(&moto_url(), Faults::default()).await;
    proxy.script(Script::lose_answer("RequestCertificate", 1));
    let no_record = r#"{"Certificate":{"DomainName":"api.example.com","Status":"PENDING_VALIDATION",
        "DomainValidationOptions":[{"DomainName":"api.example.com","ValidationStatus":"PENDING_VALIDATION"}]}}"#;
    proxy.script(Script::body("DescribeCertificate", 2, no_record));
    // What moto names as the validation record, while ACM has not found it yet.
    let pending = r#"{"Certificate":{"DomainName":"api.example.com","Status":"PENDING_VALIDATION",
        "DomainValidationOptions":[{"DomainName":"api.example.com","ValidationStatus":"PENDING_VALIDATION",
        "ResourceRecord":{"Name":"_d930b28be6c5927595552b219965053e.api.example.com.","Type":"CNAME",
        "Value":"_c9edd76ee4a0e2a74388032f3861cc50.ykybfrwcxw.acm-validations.aws."}}]}}"#;
    proxy.script(Script::body("DescribeCertificate", 2, pending));

    let out = account.run_at(&proxy.url, &["up", "--yes"], &[]).await;
    let said = text(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(
        said.contains(
            "certificate for api.example.com: waiting for ACM to find \
             _d930b28be6c5927595552b219965053e.api.example.com CNAME"
        ),
        "{said}"
    );
    assert!(said.contains("certificate for api.example.com issued after"), "{said}");
    let stats = proxy.stats();
    assert_eq!(stats["RequestCertificate"].seen, 2, "the SDK retried the request whose answer was lost");
    assert!(stats["DescribeCertificate"].seen >= 5, "{:?}", stats["DescribeCertificate"]);
    let certs = c.acm.list_certificates().send().await.expect("certificates");
    assert_eq!(certs.certificate_summary_list().len(), 1, "one certificate despite the retried request");
    account.json(&["down", "--yes", "--purge"], 0);
}

/// Elastic Load Balancing sees a certificate ACM has just issued a little later than ACM says
/// ISSUED: CreateListener (and ModifyListener, when the listener changes) answer
/// CertificateNotFound meanwhile. Waited for, as Terraform does for both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_elb_does_not_see_yet_is_waited_for_on_create_and_on_modify() {
    let account = Account::new();
    let c = account.clients().await;
    zone(&c, "example.com").await;
    account.edit_stack(with_domain);
    let proxy = Proxy::start(&moto_url(), Faults::default()).await;
    let not_yet = |op: &str| {
        Script::error(
            op,
            2,
            "CertificateNotFound",
            "Certificate 'arn:aws:acm:ap-northeast-1:123456789012:certificate/0a1b2c3d' not found",
        )
    };
    proxy.script(not_yet("CreateListener"));
    let out = account.run_at(&proxy.url, &["up", "--yes"], &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(proxy.stats()["CreateListener"].scripted, 2);
    // ModifyListener waits the same way (AWS answers so when a listener's certificate changes;
    // here the HTTPS port moves, so the HTTP listener's redirect is modified).
    account.edit_stack(|t| {
        t.replace("https: { domain: api.example.com }", "https: { domain: api.example.com, port: 8443 }")
    });
    proxy.script(not_yet("ModifyListener"));
    let out = account.run_at(&proxy.url, &["up", "--yes"], &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(proxy.stats()["ModifyListener"].scripted, 2);
    assert!(proxy.stats()["ModifyListener"].forwarded >= 1);
    account.json(&["down", "--yes", "--purge"], 0);
}

/// ACM that never finds the record (a zone the registrar does not delegate to): `up` stops at its
/// deadline naming the record, the zone's name servers and how to compare them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_never_validated_ends_the_run_with_the_record_and_the_delegation_to_check() {
    let account = Account::new();
    let c = account.clients().await;
    let zone_id = zone(&c, "example.com").await;
    account.edit_stack(with_domain);
    let proxy = Proxy::start(&moto_url(), Faults::default()).await;
    let pending = r#"{"Certificate":{"DomainName":"api.example.com","Status":"PENDING_VALIDATION",
        "DomainValidationOptions":[{"DomainName":"api.example.com","ValidationStatus":"PENDING_VALIDATION",
        "ResourceRecord":{"Name":"_d930b28be6c5927595552b219965053e.api.example.com.","Type":"CNAME",
        "Value":"_c9edd76ee4a0e2a74388032f3861cc50.ykybfrwcxw.acm-validations.aws."}}]}}"#;
    proxy.script(Script::body("DescribeCertificate", 1_000, pending));
    let out = account.run_at(&proxy.url, &["up", "--yes", "--timeout", "8s"], &[]).await;
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    let servers = c.route53.get_hosted_zone().id(&zone_id).send().await.expect("zone");
    let first_server = servers.delegation_set().expect("delegation set").name_servers()[0].clone();
    for expected in [
        "the certificate for api.example.com (arn:aws:acm:ap-northeast-1:",
        "was not issued after",
        "_d930b28be6c5927595552b219965053e.api.example.com CNAME _c9edd76ee4a0e2a74388032f3861cc50",
        &format!("The record is in the Route 53 zone example.com ({zone_id})"),
        "the registrar of example.com must list its name servers",
        first_server.as_str(),
        "`dig +short NS example.com`",
        "the next `up` resumes waiting",
    ] {
        assert!(said.contains(expected), "{expected:?} missing from:\n{said}");
    }
    account.json(&["down", "--yes", "--purge"], 0);
}

/// A busy account: 15% of all calls throttled (Route 53 and ACM included) and 10% of mutating
/// answers lost after the change was made. The run ends as a clean one does: one certificate,
/// exactly our two records beside the others', a no-op second `up`, a clean `down`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_and_lost_answers_leave_one_certificate_and_exactly_our_records() {
    let account = Account::new();
    let c = account.clients().await;
    let zone_id = zone(&c, "example.com").await;
    put(&c, &zone_id, ChangeAction::Create, "www.example.com", RrType::A, "192.0.2.10").await;
    let before = records(&c, &zone_id).await;
    account.edit_stack(with_domain);
    let proxy = Proxy::start(&moto_url(), Faults { seed: 20, throttle: 0.15, lose_answer: 0.10 }).await;
    let up = account.run_at(&proxy.url, &["up", "--yes"], &[]).await;
    assert_eq!(up.status.code(), Some(0), "{}", text(&up));
    let stats = proxy.stats();
    let faulted = |op: &str| stats.get(op).map_or(0, |s| s.throttled + s.lost);
    assert!(
        faulted("ListHostedZonesByName") + faulted("ListResourceRecordSets") + faulted("ChangeResourceRecordSets") > 0,
        "the seed faults some Route 53 calls: {stats:?}"
    );
    assert!(faulted("DescribeCertificate") + faulted("RequestCertificate") + faulted("ListCertificates") > 0);

    let certs = c.acm.list_certificates().send().await.expect("certificates");
    assert_eq!(certs.certificate_summary_list().len(), 1);
    let mut names: Vec<String> = records(&c, &zone_id).await.into_iter().map(|(n, t)| format!("{n} {t}")).collect();
    names.retain(|n| !before.iter().any(|(b, t)| format!("{b} {t}") == *n));
    names.sort();
    assert_eq!(names, ["_d930b28be6c5927595552b219965053e.api.example.com CNAME", "api.example.com A"]);

    proxy.set_faults(Faults::default());
    let again = account.json_at(&proxy.url, &["up", "--yes"], &[], 0).await;
    assert_eq!(mutations(&again), Vec::<String>::new());
    account.json(&["down", "--yes", "--purge"], 0);
    assert_eq!(records(&c, &zone_id).await, before);
}
