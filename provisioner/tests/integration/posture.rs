//! The security posture of what `up` creates, read back from moto: the careful defaults a
//! scanner asks for (read-only root filesystem, non-blocking logs, confused-deputy conditions,
//! header validation, deletion protection, access logs to a private bucket, a secret policy),
//! their repair after drift, `down` getting past deletion protection and a bucket full of logs,
//! and a secret policy that cannot lock out whoever runs `up`.

use crate::common::census;
use crate::common::{Account, mutations, text};
use provisioner::resources::iam::decode_policy;
use serde_json::Value;

const KEY: &str = "posture-test-key-0123456789abcdef";

fn bucket_of(account: &Account) -> String {
    format!("konnichiwa-alb-logs-{}-ap-northeast-1", account.id)
}

async fn lb_attributes(c: &provisioner::aws::Clients) -> std::collections::BTreeMap<String, String> {
    let lbs = c.elb.describe_load_balancers().names("konnichiwa-alb").send().await.expect("load balancer");
    let arn = lbs.load_balancers()[0].load_balancer_arn().expect("arn").to_owned();
    let attrs = c.elb.describe_load_balancer_attributes().load_balancer_arn(arn).send().await.expect("attributes");
    attrs
        .attributes()
        .iter()
        .map(|a| (a.key().unwrap_or_default().to_owned(), a.value().unwrap_or_default().to_owned()))
        .collect()
}

#[tokio::test]
async fn a_fresh_stack_has_the_careful_defaults_and_down_gets_past_them() {
    let account = Account::new();
    account.json_with(&["up", "--yes"], &[("API_KEY", KEY)], 0);
    let c = account.clients().await;
    let bucket = bucket_of(&account);

    // Task definition: nothing writes to the image's filesystem; logging never blocks the app.
    let td = c.ecs.describe_task_definition().task_definition("konnichiwa").send().await.expect("task definition");
    let container = &td.task_definition().expect("td").container_definitions()[0];
    assert_eq!(container.readonly_root_filesystem(), Some(true));
    let log = container.log_configuration().expect("log configuration").options().expect("options");
    assert_eq!(log.get("mode").map(String::as_str), Some("non-blocking"));
    assert_eq!(log.get("max-buffer-size").map(String::as_str), Some("25m"));

    // The ECS roles trust ECS only for this account's requests.
    for role in ["konnichiwa-execution", "konnichiwa-task"] {
        let r = c.iam.get_role().role_name(role).send().await.expect("role");
        let trust = decode_policy(r.role().and_then(|r| r.assume_role_policy_document()).expect("trust"));
        let condition = &trust["Statement"][0]["Condition"];
        assert_eq!(condition["StringEquals"]["aws:SourceAccount"], account.id.as_str(), "{role}: {trust}");
        assert!(condition["ArnLike"]["aws:SourceArn"].as_str().is_some_and(|a| a.contains(":ecs:")), "{role}: {trust}");
    }

    // Load balancer: invalid headers dropped, protected from deletion, logging to our bucket.
    let attrs = lb_attributes(&c).await;
    for (key, want) in [
        ("routing.http.drop_invalid_header_fields.enabled", "true"),
        ("deletion_protection.enabled", "true"),
        ("access_logs.s3.enabled", "true"),
        ("access_logs.s3.bucket", bucket.as_str()),
        ("access_logs.s3.prefix", "konnichiwa"),
    ] {
        assert_eq!(attrs.get(key).map(String::as_str), Some(want), "{key}");
    }

    // The bucket: private, encrypted, expiring, writable by log delivery only, TLS only.
    let pab = c.s3.get_public_access_block().bucket(&bucket).send().await.expect("public access block");
    let pab = pab.public_access_block_configuration().expect("configuration");
    assert_eq!(
        (pab.block_public_acls(), pab.ignore_public_acls(), pab.block_public_policy(), pab.restrict_public_buckets()),
        (Some(true), Some(true), Some(true), Some(true))
    );
    let enc = c.s3.get_bucket_encryption().bucket(&bucket).send().await.expect("encryption");
    let rule = &enc.server_side_encryption_configuration().expect("configuration").rules()[0];
    assert_eq!(rule.apply_server_side_encryption_by_default().expect("default").sse_algorithm().as_str(), "AES256");
    let life = c.s3.get_bucket_lifecycle_configuration().bucket(&bucket).send().await.expect("lifecycle");
    assert_eq!(life.rules()[0].expiration().and_then(|e| e.days()), Some(90));
    let own = c.s3.get_bucket_ownership_controls().bucket(&bucket).send().await.expect("ownership");
    assert_eq!(
        own.ownership_controls().expect("controls").rules()[0].object_ownership().as_str(),
        "BucketOwnerEnforced"
    );
    let policy: Value = serde_json::from_str(
        c.s3.get_bucket_policy().bucket(&bucket).send().await.expect("policy").policy().expect("p"),
    )
    .expect("json");
    let text_of_policy = policy.to_string();
    assert!(text_of_policy.contains("logdelivery.elasticloadbalancing.amazonaws.com"), "{policy}");
    assert!(text_of_policy.contains(&format!("{bucket}/konnichiwa/AWSLogs/{}/*", account.id)), "{policy}");
    assert!(text_of_policy.contains("aws:SecureTransport"), "{policy}");

    // The secret: nobody outside the account, whatever IAM policies elsewhere say.
    let sp = c.secrets.get_resource_policy().secret_id("konnichiwa/api-key").send().await.expect("secret policy");
    let sp: Value = serde_json::from_str(sp.resource_policy().expect("policy")).expect("json");
    assert_eq!(sp["Statement"][0]["Condition"]["StringNotEquals"]["aws:PrincipalAccount"], account.id.as_str());

    // Drift: someone opens the bucket and drops its policy; the next `up` puts back exactly that.
    c.s3.delete_public_access_block().bucket(&bucket).send().await.expect("open the bucket");
    c.s3.delete_bucket_policy().bucket(&bucket).send().await.expect("drop the policy");
    let repaired = account.json_with(&["up", "--yes"], &[("API_KEY", KEY)], 0);
    assert_eq!(mutations(&repaired), ["S3:PutPublicAccessBlock", "S3:PutBucketPolicy"]);
    let again = account.json_with(&["up", "--yes"], &[("API_KEY", KEY)], 0);
    assert!(mutations(&again).is_empty(), "{:?}", mutations(&again));

    // Logs the load balancer wrote; then `down` switches protection off before deleting, and
    // empties the bucket before deleting it. (moto reads the TLS-only Deny as unconditional, as
    // it evaluates no condition of a bucket policy: over its plain HTTP no object call would
    // pass, so the policy goes first. AWS is reached over TLS.)
    c.s3.delete_bucket_policy().bucket(&bucket).send().await.expect("drop the policy");
    for n in 0..3 {
        let key =
            format!("konnichiwa/AWSLogs/{}/elasticloadbalancing/ap-northeast-1/2026/11/28/log-{n}.gz", account.id);
        c.s3.put_object()
            .bucket(&bucket)
            .key(key)
            .body(b"h2 2026-11-28T08:00:00Z".to_vec().into())
            .send()
            .await
            .expect("put");
    }
    let down = account.json(&["down", "--yes", "--purge"], 0);
    let m = mutations(&down);
    let at = |op: &str| m.iter().position(|o| o.ends_with(&format!(":{op}"))).unwrap_or_else(|| panic!("{op}: {m:?}"));
    assert!(at("ModifyLoadBalancerAttributes") < at("DeleteLoadBalancer"), "protection off first: {m:?}");
    assert!(at("DeleteObjects") < at("DeleteBucket"), "emptied first: {m:?}");
    let left = census::leftovers(&census::take(&c, "konnichiwa").await);
    assert!(left.is_empty(), "left after down: {left:?}");
}

#[tokio::test]
async fn a_secret_reader_list_that_leaves_out_the_caller_is_refused_before_any_change() {
    let account = Account::new();
    let me = format!("arn:aws:iam::{}:user/moto", account.id);
    account.edit_stack(|t| {
        t.replace(
            "secret: { recovery_window_days: 7 }",
            "secret: { recovery_window_days: 7, only_principals: [arn:aws:iam::123456789012:role/Ops] }",
        )
    });
    let out = account.run_with(&["up", "--yes", "--json"], &[("API_KEY", KEY)]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains(&format!("leaves out {me}")) && said.contains("only_principals"), "{said}");
    assert!(!said.contains(KEY), "the key never appears");
    let c = account.clients().await;
    let made = census::leftovers(&census::take(&c, "konnichiwa").await);
    assert!(made.is_empty(), "nothing was made: {made:?}");

    account.edit_stack(|t| t.replace("role/Ops]", &format!("role/Ops, {me}]")));
    account.json_with(&["up", "--yes"], &[("API_KEY", KEY)], 0);
    let sp = c.secrets.get_resource_policy().secret_id("konnichiwa/api-key").send().await.expect("secret policy");
    let sp: Value = serde_json::from_str(sp.resource_policy().expect("policy")).expect("json");
    let readers = &sp["Statement"][1]["Condition"]["StringNotEquals"]["aws:PrincipalArn"];
    let readers: Vec<&str> = readers.as_array().expect("readers").iter().filter_map(Value::as_str).collect();
    assert_eq!(
        readers,
        [
            format!("arn:aws:iam::{}:role/konnichiwa-execution", account.id).as_str(),
            &format!("arn:aws:iam::{}:role/konnichiwa-deploy", account.id),
            "arn:aws:iam::123456789012:role/Ops",
            &me,
        ]
    );
    assert_eq!(sp["Statement"][1]["Action"], "secretsmanager:GetSecretValue", "managing it stays with IAM");
    account.json(&["down", "--yes", "--purge"], 0);
}
