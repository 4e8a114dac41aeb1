//! Pre-flight: `verify` passes on a good stack and fails, naming the fix, for what would stop
//! `up` half-way — an instance type a zone does not offer (moto's own offerings), a quota too
//! small (Service Quotas' answer scripted, as moto knows only VPC quotas), an image digest the
//! registry lacks, a domain without a hosted zone — and `up` refuses each before any mutating
//! call (counted by the proxy), while it goes ahead on the good stack. The domain's delegation and
//! CAA records are asked of a resolver on loopback that answers what the test sets.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use hickory_proto::op::{Message, MessageType};
use hickory_proto::rr::rdata::{CAA, NS};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use serde_json::Value;

use crate::common::faults::{Proxy, Script};
use crate::common::{self, Account, text};
use provisioner::image::{Image, digest, oci, registry::Registry};

/// Pushes a small image to the suite's registry; returns its `HOST/NAME@sha256:…`.
async fn pushed_image(name: &str) -> String {
    let host = std::env::var("KONNICHIWA_TEST_REGISTRY").expect("KONNICHIWA_TEST_REGISTRY");
    let layer = format!("layer of {name}").into_bytes();
    let config = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#.to_vec();
    let manifest =
        serde_json::to_vec(&oci::manifest(&digest(&config), config.len(), &digest(&layer), layer.len())).expect("json");
    let image = Image {
        config_digest: digest(&config),
        config,
        layer_digest: digest(&layer),
        layer,
        manifest_digest: digest(&manifest),
        manifest,
        arch: stack::catalog::Arch::X86_64,
        revision: "verify".into(),
        tag: "verify".into(),
    };
    let registry = Registry::new(&format!("{host}/{name}"), None).expect("registry");
    registry.push(&image, "verify").await.expect("push").reference
}

fn outcome<'a>(v: &'a Value, check: &str) -> &'a Value {
    common::entry(&v["checks"], "check", check)
}

/// `verify --json` through the proxy, and `up` with the checks on: what each said.
async fn verify_and_up(account: &Account, proxy: &Proxy, expected: i32) -> (Value, String) {
    let verified = account.json_at(&proxy.url, &["verify"], &[], expected).await;
    let up = account.run_at(&proxy.url, &["up", "--yes"], &[("KONNICHIWA_SKIP_VERIFY", "false")]).await;
    let said = text(&up);
    let code = if expected == 0 { 0 } else { 1 };
    assert_eq!(up.status.code(), Some(code), "{said}");
    (verified, said)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_passes_a_good_stack_and_up_refuses_each_blocker_before_any_change() {
    let account = Account::new();
    let proxy = Proxy::start(&common::moto_url(), Default::default()).await;

    // An image digest the suite's registry does not have.
    let registry = std::env::var("KONNICHIWA_TEST_REGISTRY").expect("KONNICHIWA_TEST_REGISTRY");
    account.edit_stack(|s| s.replace("127.0.0.1:5000/", &format!("{registry}/")));
    let (v, said) = verify_and_up(&account, &proxy, 1).await;
    assert_eq!(v["passed"], false);
    let image = outcome(&v, "image");
    assert_eq!(image["outcome"], "failed", "{image}");
    assert!(image["fix"].as_str().is_some_and(|f| f.contains("provisioner image push")), "{image}");
    assert!(
        said.contains("the pre-flight checks failed, so nothing was changed") && said.contains("image: "),
        "{said}"
    );
    assert_eq!(proxy.mutating_calls(), 0, "nothing changed: {:?}", proxy.operations());

    // In ECR, asked of ECR itself: a digest the repository lacks fails, a tag it has passes.
    let c = account.clients().await;
    c.ecr.create_repository().repository_name("verify-ecr").send().await.expect("repository");
    let manifest = serde_json::json!({"schemaVersion": 2, "mediaType": oci::MANIFEST_MEDIA_TYPE,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": format!("sha256:{}", "1".repeat(64)), "size": 2},
        "layers": []});
    c.ecr
        .put_image()
        .repository_name("verify-ecr")
        .image_manifest(manifest.to_string())
        .image_tag("v1")
        .send()
        .await
        .expect("put");
    let ecr = format!("{}.dkr.ecr.ap-northeast-1.amazonaws.com/verify-ecr", account.id);
    let set_image = |reference: &str| {
        account.edit_stack(|s| {
            let old = s.lines().find(|l| l.trim_start().starts_with("image: ")).expect("image line").to_owned();
            s.replace(&old, &format!("  image: {reference}"))
        })
    };
    set_image(&format!("{ecr}@sha256:{}", "2".repeat(64)));
    let v = account.json_at(&proxy.url, &["verify"], &[], 1).await;
    assert_eq!(outcome(&v, "image")["outcome"], "failed", "{v}");
    assert!(proxy.requests("DescribeImages").iter().any(|r| r.contains("verify-ecr")), "ECR was asked");
    set_image(&format!("{ecr}:v1"));
    let v = account.json_at(&proxy.url, &["verify"], &[], 0).await;
    assert_eq!(outcome(&v, "image")["outcome"], "passed", "{v}");

    // A good stack: its image exists.
    set_image(&pushed_image("verify-good").await);
    let (good, said) = verify_and_up(&account, &proxy, 0).await;
    assert!(said.contains("Pre-flight checks: 8 passed, 4 not checked (`provisioner verify` shows each)"), "{said}");
    assert_eq!(good["passed"], true, "{good}");
    for check in ["credentials", "image", "instance type", "ami", "secret", "quota: VPCs", "quota: security groups"] {
        assert_eq!(outcome(&good, check)["outcome"], "passed", "{check}: {good}");
    }
    // moto has no IAM policy simulator and no EC2 quotas: said, not passed.
    assert_eq!(outcome(&good, "permissions")["outcome"], "not-checked", "{good}");
    assert_eq!(outcome(&good, "quota: EC2 vCPUs")["outcome"], "not-checked", "{good}");
    // From here on, each blocker is met by an `up` of the stack that now exists.
    proxy.reset_stats();

    // IAM's simulator (scripted: moto has none) denies one action the stack needs.
    let simulated = |results: &str| {
        format!(
            "<SimulatePrincipalPolicyResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><SimulatePrincipalPolicyResult>\
             <IsTruncated>false</IsTruncated><EvaluationResults>{results}</EvaluationResults></SimulatePrincipalPolicyResult>\
             <ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></SimulatePrincipalPolicyResponse>"
        )
    };
    let denied = "<member><EvalActionName>ec2:CreateVpc</EvalActionName><EvalResourceName>*</EvalResourceName>\
                  <EvalDecision>implicitDeny</EvalDecision></member>";
    proxy.script(Script::body("SimulatePrincipalPolicy", 2, &simulated(denied)).only_if("ec2%3ACreateVpc"));
    proxy.script(Script::body("SimulatePrincipalPolicy", 1000, &simulated("")));
    let (v, said) = verify_and_up(&account, &proxy, 1).await;
    let permissions = outcome(&v, "permissions");
    assert_eq!(permissions["outcome"], "failed", "{permissions}");
    let refused = "may not call ec2:CreateVpc (no policy of the caller allows it)";
    assert!(permissions["detail"].as_str().is_some_and(|d| d.ends_with(refused)), "{permissions}");
    assert!(said.contains("permissions: ") && said.contains(refused), "{said}");
    let asked = proxy.requests("SimulatePrincipalPolicy");
    assert!(
        asked.iter().all(|r| r.contains("PolicySourceArn=arn%3Aaws%3Aiam%3A%3A")),
        "the caller, as an IAM ARN: {asked:?}"
    );
    proxy.reset_stats();
    // Every other simulation allows everything: the check passes.
    let v = account.json_at(&proxy.url, &["verify"], &[], 0).await;
    assert_eq!(outcome(&v, "permissions")["outcome"], "passed", "{v}");

    // t3a is not offered in ap-northeast-1c (moto's offerings, as AWS's), the second zone.
    account.edit_stack(|s| s.replace("instance_type: t3.small ", "instance_type: t3a.small "));
    let (v, said) = verify_and_up(&account, &proxy, 1).await;
    let offered = outcome(&v, "instance type");
    assert_eq!(offered["outcome"], "failed", "{offered}");
    assert!(
        offered["detail"].as_str().is_some_and(|d| d.contains("t3a.small is not offered in ap-northeast-1c")),
        "{offered}"
    );
    assert!(said.contains("instance type: t3a.small is not offered"), "{said}");
    account.edit_stack(|s| s.replace("instance_type: t3a.small ", "instance_type: t3.small "));

    // 4 vCPUs of quota; capacity.max 4 × t3.small's 2 vCPUs need 8; a t3.medium of someone
    // else's runs beside the stack's instances (which are not counted twice).
    let ami = c.ec2.describe_images().send().await.expect("images").images()[0].image_id().expect("id").to_owned();
    c.ec2
        .run_instances()
        .image_id(&ami)
        .instance_type("t3.medium".into())
        .min_count(1)
        .max_count(1)
        .send()
        .await
        .expect("run");
    // What another quota counts: a Spot instance, and a family outside the standard ones.
    let spot = aws_sdk_ec2::types::InstanceMarketOptionsRequest::builder()
        .market_type(aws_sdk_ec2::types::MarketType::Spot)
        .build();
    for (t, market) in [("t3.large", Some(spot)), ("p3.2xlarge", None)] {
        let r = c.ec2.run_instances().image_id(&ami).instance_type(t.into()).min_count(1).max_count(1);
        r.set_instance_market_options(market).send().await.expect("run");
    }
    // A Network Load Balancer, which the Application Load Balancer quota does not count; that
    // quota never raised in this account (no applied value: AWS's default is read).
    let nlb_vpc = c.ec2.create_vpc().cidr_block("10.77.0.0/16").send().await.expect("vpc");
    let nlb_vpc = nlb_vpc.vpc().and_then(|v| v.vpc_id()).expect("vpc id").to_owned();
    let subnet = c.ec2.create_subnet().vpc_id(&nlb_vpc).cidr_block("10.77.0.0/24").send().await.expect("subnet");
    c.elb
        .create_load_balancer()
        .name("someone-elses-nlb")
        .r#type(aws_sdk_elasticloadbalancingv2::types::LoadBalancerTypeEnum::Network)
        .subnets(subnet.subnet().and_then(|s| s.subnet_id()).expect("subnet id"))
        .send()
        .await
        .expect("nlb");
    proxy.script(
        Script::error(
            "GetServiceQuota",
            2,
            "NoSuchResourceException",
            "The request failed because the specified service quota does not exist.",
        )
        .only_if("L-53DA6B97"),
    );
    let alb_default = r#"{"Quota":{"ServiceCode":"elasticloadbalancing","QuotaCode":"L-53DA6B97","QuotaName":"Application Load Balancers per Region","Value":1.0,"Unit":"None","Adjustable":true}}"#;
    proxy.script(Script::body("GetAWSDefaultServiceQuota", 2, alb_default).only_if("L-53DA6B97"));
    let quota = r#"{"Quota":{"ServiceCode":"ec2","QuotaCode":"L-1216C47A","QuotaName":"Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances","Value":4.0,"Unit":"None","Adjustable":true}}"#;
    proxy.script(Script::body("GetServiceQuota", 2, quota).only_if("L-1216C47A"));
    let (v, said) = verify_and_up(&account, &proxy, 1).await;
    let albs = outcome(&v, "quota: application load balancers");
    assert_eq!(albs["outcome"], "passed", "{albs}");
    assert!(albs["detail"].as_str().is_some_and(|d| d.starts_with("quota 1, 0 used by others")), "{albs}");
    let vcpus = outcome(&v, "quota: EC2 vCPUs");
    assert_eq!(vcpus["outcome"], "failed", "{vcpus}");
    assert!(
        vcpus["detail"].as_str().is_some_and(|d| d.contains("quota 4, 2 used by others, the stack needs 8")),
        "{vcpus}"
    );
    assert!(vcpus["fix"].as_str().is_some_and(|f| f.contains("--quota-code L-1216C47A --desired-value 10")), "{vcpus}");
    // Running or pending: one filter with two values (AWS ANDs two filters of one name; moto
    // does not, so the request itself is checked).
    let asked = proxy.requests("DescribeInstances");
    let one_filter = |r: &String| r.contains("Filter.1.Value.2=running") && !r.contains("Filter.2.");
    assert!(asked.iter().any(one_filter), "{asked:?}");
    assert!(said.contains("quota: EC2 vCPUs"), "{said}");

    // A domain whose zone does not exist.
    account.edit_stack(|s| {
        s.replace("  # https: { domain: api.example.com }", "  https: { domain: api.verify-nozone.example }")
    });
    let (v, said) = verify_and_up(&account, &proxy, 1).await;
    let zone = outcome(&v, "hosted zone");
    assert_eq!(zone["outcome"], "failed", "{zone}");
    assert!(
        zone["detail"]
            .as_str()
            .is_some_and(|d| d.contains("no Route 53 public hosted zone holds api.verify-nozone.example")),
        "{zone}"
    );
    assert!(said.contains("hosted zone: "), "{said}");

    assert_eq!(proxy.mutating_calls(), 0, "no check and no refused `up` changed anything: {:?}", proxy.operations());
    let text_out = account.run_at(&proxy.url, &["verify"], &[]).await;
    let said = text(&text_out);
    assert!(said.contains("FAILED") && said.contains("fix: create the zone"), "{said}");
}

/// (name, type) → records.
type Answers = Arc<Mutex<HashMap<(String, RecordType), Vec<RData>>>>;

/// A resolver on loopback that answers what the test sets; a name it has nothing for exists with
/// no records of that type.
struct FakeResolver {
    addr: std::net::SocketAddr,
    answers: Answers,
    /// Answers with another id than the question's (a stray or forged answer).
    wrong_id: Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeResolver {
    async fn start() -> Self {
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let addr = socket.local_addr().expect("addr");
        let answers: Answers = Arc::default();
        let known = Arc::clone(&answers);
        let wrong_id: Arc<std::sync::atomic::AtomicBool> = Arc::default();
        let stray = Arc::clone(&wrong_id);
        let task = tokio::spawn(async move {
            let mut buf = vec![0; 4096];
            while let Ok((n, from)) = socket.recv_from(&mut buf).await {
                let Ok(query) = Message::from_vec(&buf[..n]) else { continue };
                let mut reply = Message::new();
                let id = if stray.load(std::sync::atomic::Ordering::SeqCst) { query.id() ^ 1 } else { query.id() };
                reply.set_id(id).set_message_type(MessageType::Response).set_recursion_available(true);
                for q in query.queries() {
                    reply.add_query(q.clone());
                    let name = q.name().to_ascii().trim_end_matches('.').to_owned();
                    let records = known.lock().expect("lock").get(&(name, q.query_type())).cloned().unwrap_or_default();
                    for data in records {
                        reply.add_answer(Record::from_rdata(q.name().clone(), 60, data));
                    }
                }
                let _ = socket.send_to(&reply.to_vec().expect("encode"), from).await;
            }
        });
        Self { addr, answers, wrong_id, task }
    }

    fn answer(&self, name: &str, kind: RecordType, records: Vec<RData>) {
        self.answers.lock().expect("lock").insert((name.to_owned(), kind), records);
    }
}

impl Drop for FakeResolver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn name_servers(servers: &[String]) -> Vec<RData> {
    servers.iter().map(|s| RData::NS(NS(Name::from_ascii(format!("{s}.")).expect("name")))).collect()
}

fn issue(ca: &str) -> RData {
    RData::CAA(CAA::new_issue(false, Some(Name::from_ascii(ca).expect("name")), Vec::new()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_domains_delegation_and_caa_are_checked_with_a_resolver() {
    let account = Account::new();
    let c = account.clients().await;
    let zone = "verify-dns.example";
    let made = c.route53.create_hosted_zone().name(zone).caller_reference(&account.id).send().await.expect("zone");
    let route53: Vec<String> = made
        .delegation_set()
        .expect("name servers")
        .name_servers()
        .iter()
        .map(|s| s.trim_end_matches('.').to_lowercase())
        .collect();
    account.edit_stack(|s| {
        s.replace("  # https: { domain: api.example.com }", &format!("  https: {{ domain: api.{zone} }}"))
    });
    let resolver = FakeResolver::start().await;
    let env = [("KONNICHIWA_DNS_RESOLVER", resolver.addr.to_string())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let verify = |expected| account.json_with(&["verify"], &env, expected);

    // Delegated to the zone; a CAA record at the zone apex allowing another CA only.
    resolver.answer(zone, RecordType::NS, name_servers(&route53));
    resolver.answer(zone, RecordType::CAA, vec![issue("letsencrypt.org")]);
    let v = tokio::task::block_in_place(|| verify(1));
    assert_eq!(outcome(&v, "hosted zone")["outcome"], "passed", "{v}");
    assert_eq!(outcome(&v, "delegation")["outcome"], "passed", "{v}");
    let caa = outcome(&v, "caa");
    assert_eq!(caa["outcome"], "failed", "{caa}");
    assert!(
        caa["detail"]
            .as_str()
            .is_some_and(|d| d.contains(&format!("the CAA records of {zone} (issue letsencrypt.org)"))),
        "{caa}"
    );
    assert_eq!(caa["fix"], format!("add a CAA record at {zone}: 0 issue \"amazon.com\""));

    // Amazon allowed; but the registrar still sends resolvers to an old zone's servers.
    resolver.answer(zone, RecordType::CAA, vec![issue("letsencrypt.org"), issue("amazon.com")]);
    resolver.answer(zone, RecordType::NS, name_servers(&["ns-1.awsdns-00.com".into(), "ns-2.awsdns-00.net".into()]));
    // Resolvers may still hold an earlier set for its TTL (a zone made again): a warning naming
    // it, and `up` is not stopped.
    let v = tokio::task::block_in_place(|| verify(0));
    assert_eq!(outcome(&v, "caa")["outcome"], "passed", "{v}");
    let delegation = outcome(&v, "delegation");
    assert_eq!(delegation["outcome"], "warning", "{delegation}");
    assert!(
        delegation["detail"].as_str().is_some_and(|d| d.contains("(60 s left in this resolver's cache")),
        "{delegation}"
    );
    assert!(delegation["fix"].as_str().is_some_and(|f| route53.iter().all(|s| f.contains(s.as_str()))), "{delegation}");

    // Not delegated at all, and a resolver that does not answer: failed, then not checked.
    resolver.answer(zone, RecordType::NS, Vec::new());
    let v = tokio::task::block_in_place(|| verify(1));
    assert!(outcome(&v, "delegation")["detail"].as_str().is_some_and(|d| d.contains("is not delegated")), "{v}");
    resolver.wrong_id.store(true, std::sync::atomic::Ordering::SeqCst);
    let v = tokio::task::block_in_place(|| verify(0));
    let stray = outcome(&v, "delegation");
    assert_eq!(stray["outcome"], "not-checked", "{stray}");
    assert!(stray["detail"].as_str().is_some_and(|d| d.contains("answered another question")), "{stray}");
    let silent = account.json(&["verify"], 0);
    assert_eq!(outcome(&silent, "delegation")["outcome"], "not-checked", "{silent}");
    assert_eq!(outcome(&silent, "caa")["outcome"], "not-checked", "{silent}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_the_deploy_role_verify_asks_the_simulator_with_resources_and_context_and_up_goes_ahead() {
    use crate::common::simulator::Simulator;
    let account = Account::new();
    account.json(&["ci-role", "--github-repo", "octo-org/konnichiwa", "--yes"], 0);
    let c = account.clients().await;
    let policy = common::role_policy(&c, "konnichiwa-deploy").await;
    let image = pushed_image("verify-deploy-role").await;
    account.edit_stack(|s| {
        let old = s.lines().find(|l| l.trim_start().starts_with("image: ")).expect("image line").to_owned();
        s.replace(&old, &format!("  image: {image}"))
    });
    // The first `up` is an administrator's (the log bucket's and the secret's resource policies).
    account.json(&["up", "--yes"], 0);
    let session = account.session_of("konnichiwa-deploy").await;
    let env = common::env_refs(&session);
    let proxy = Proxy::start(&common::moto_url(), Default::default()).await;
    let simulate = |sim: Simulator| {
        proxy.clear_scripts();
        proxy.script(Script::computed("SimulatePrincipalPolicy", 100_000, move |body| sim.answer(body)));
    };
    let permissions = |v: &Value| outcome(v, "permissions").clone();

    // AWS's simulator, as the deploy role: every call judged with what it carries, allowed.
    simulate(Simulator { policy: policy.clone(), scp: None });
    let v = account.json_at(&proxy.url, &["verify"], &env, 0).await;
    let p = permissions(&v);
    assert_eq!(p["outcome"], "passed", "{p}");
    assert!(p["detail"].as_str().is_some_and(|d| d.contains(":role/konnichiwa-deploy may make all")), "{p}");
    let asked = proxy.requests("SimulatePrincipalPolicy");
    assert!(asked.iter().any(|r| r.contains("ResourceArns.member.1=") && r.contains("aws%3AResourceTag")), "{asked:?}");
    assert!(asked.iter().all(|r| r.contains("ContextKeyName=aws%3ARequestedRegion")), "the region always");
    // The same model, asked as verify asked before (no resources, no context): AWS's answer is
    // implicitDeny with the keys it lacked, which verify now reads as "not judged".
    let bare = Simulator { policy: policy.clone(), scp: None }
        .answer("Action=SimulatePrincipalPolicy&PolicySourceArn=x&ActionNames.member.1=ec2%3ADescribeVpcs");
    assert!(
        bare.contains("<EvalDecision>implicitDeny</EvalDecision>")
            && bare.contains("<member>aws:RequestedRegion</member>")
    );

    // The deploy workflow's `up` (the checks on) goes ahead past them.
    let up = account
        .run_at(&proxy.url, &["up", "--yes"], &[&env[..], &[("KONNICHIWA_SKIP_VERIFY", "false")]].concat())
        .await;
    let said = text(&up);
    assert_eq!(up.status.code(), Some(0), "{said}");
    assert!(said.contains("Pre-flight checks: ") && !said.contains("permissions: "), "{said}");

    // An organization's SCP that allows only us-east-1: refused, and said to be the SCP's doing.
    let regional = ["ec2:*", "ecs:*", "elasticloadbalancing:*", "autoscaling:*", "logs:*", "ecr:*", "ssm:*"];
    let scp = serde_json::json!({"Statement": [
        {"Effect": "Allow", "Action": "*", "Resource": "*"},
        {"Effect": "Deny", "Action": regional, "Resource": "*",
         "Condition": {"StringNotEquals": {"aws:RequestedRegion": "us-east-1"}}}]});
    simulate(Simulator { policy: policy.clone(), scp: Some(scp) });
    let v = account.json_at(&proxy.url, &["verify"], &env, 1).await;
    let p = permissions(&v);
    assert_eq!(p["outcome"], "failed", "{p}");
    assert!(p["detail"].as_str().is_some_and(|d| d.contains("service control policy")), "{p}");
    assert!(p["fix"].as_str().is_some_and(|f| f.contains("ask its administrator")), "{p}");

    // A caller whose own policy wants a key no deploy request carries (MFA): not judged, named,
    // and a warning only — never "denied".
    let mut mfa = policy.clone();
    for s in mfa["Statement"].as_array_mut().expect("statements") {
        if s["Effect"] == "Allow" && s["Action"].as_array().is_some_and(|a| a.iter().any(|a| a == "ec2:DescribeVpcs")) {
            s["Condition"]["Bool"] = serde_json::json!({"aws:MultiFactorAuthPresent": "true"});
        }
    }
    simulate(Simulator { policy: mfa, scp: None });
    let v = account.json_at(&proxy.url, &["verify"], &env, 0).await;
    let p = permissions(&v);
    assert_eq!(p["outcome"], "warning", "{p}");
    let detail = p["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("not judged: ") && detail.contains("(its conditions want aws:MultiFactorAuthPresent)"),
        "{p}"
    );
    assert!(!detail.contains("may not call"), "{p}");

    // A commit adds a tag key the deploy role's policy (rendered by ci-role before) does not name:
    // verify finds the lag before `up` changes anything, and says to run ci-role again.
    account.edit_stack(|t| t.replace("tags: { project: konnichiwa }", "tags: { project: konnichiwa, team: web }"));
    simulate(Simulator { policy: policy.clone(), scp: None });
    let v = account.json_at(&proxy.url, &["verify"], &env, 1).await;
    let p = permissions(&v);
    assert_eq!(p["outcome"], "failed", "{p}");
    assert!(p["detail"].as_str().is_some_and(|d| d.contains("iam:TagRole")), "{p}");
    assert!(p["fix"].as_str().is_some_and(|f| f.contains("run `provisioner ci-role` again")), "{p}");
}
