//! The S3 bucket the load balancer writes its access logs to, when `load_balancer.access_logs` is
//! set: `<stack>-alb-logs-<account>-<region>`, private (public access blocked, ACLs off),
//! encrypted with S3-managed keys, reachable only over TLS, each log file expiring after
//! `retention_days`; its policy lets only Elastic Load Balancing of the stack's region write, and
//! only under `<stack>/AWSLogs/<account>/`. `down` empties and deletes it.
//!
//! AWS tags a bucket in the CreateBucket call itself; an emulator that drops those tags leaves a
//! bucket without them until the next call. So a bucket of our exact name without any tag is
//! taken over only while it is empty (nothing of anyone's can be lost); otherwise it is refused
//! like any other foreign resource.

use aws_sdk_s3::types::{
    BucketLifecycleConfiguration, BucketLocationConstraint, CreateBucketConfiguration, Delete, ExpirationStatus,
    LifecycleExpiration, LifecycleRule, LifecycleRuleFilter, ObjectIdentifier, ObjectOwnership, OwnershipControls,
    OwnershipControlsRule, PublicAccessBlockConfiguration, ServerSideEncryption, ServerSideEncryptionByDefault,
    ServerSideEncryptionConfiguration, ServerSideEncryptionRule, Tag, Tagging,
};
use serde_json::{Value, json};

use crate::aws::Identity;
use crate::error::{AwsContext, Error, absent, gone};
use crate::reconcile::Noun;
use crate::reconcile::kind::{Kind, Making, Node, Reconciles};
use crate::reconcile::permission::{Permission, PolicyContext, Scope};
use crate::reconcile::step::Observed;
use crate::reconcile::{Change, Ctx, FieldDiff, Plan, Step, compare, tags};
use crate::wait::Wait;
/// The nouns of this kind's plan rows.
pub const LOG_BUCKET: Noun = Noun::new("log-bucket");

/// What the bucket calls, on the stack's bucket (and its objects) only. Its policy (whose
/// content no condition can see: it could hand the bucket to another account) and its public
/// access block are an administrator's, and so are making and deleting it: the deploy role
/// reads them and keeps the rest as stack.yaml says.
pub const PERMISSIONS: &[Permission] = &[
    Permission::new(
        &[
            "s3:ListBucket",
            "s3:ListBucketVersions",
            "s3:GetBucketTagging",
            "s3:PutBucketTagging",
            "s3:GetBucketPublicAccessBlock",
            "s3:GetEncryptionConfiguration",
            "s3:PutEncryptionConfiguration",
            "s3:GetBucketOwnershipControls",
            "s3:PutBucketOwnershipControls",
            "s3:GetLifecycleConfiguration",
            "s3:PutLifecycleConfiguration",
            "s3:GetBucketPolicy",
        ],
        Scope::Own(|c| vec![bucket_arn(c)]),
    ),
    Permission::new(
        &["s3:CreateBucket", "s3:DeleteBucket", "s3:PutBucketPublicAccessBlock", "s3:PutBucketPolicy"],
        Scope::Own(|c| vec![bucket_arn(c)]),
    )
    .administrators_only(),
    Permission::new(
        &["s3:DeleteObject", "s3:DeleteObjectVersion"],
        Scope::Own(|c| vec![format!("{}/*", bucket_arn(c))]),
    )
    .administrators_only(),
];

fn bucket_arn(c: &PolicyContext) -> String {
    format!("arn:{}:s3:::{}", c.partition, name(c.stack, &c.account))
}

/// Bucket names are global: the account and region make ours unique (at most 57 characters, as
/// stack names have at most 20).
pub fn name(stack: &stack::Stack, account: &str) -> String {
    format!("{}-alb-logs-{account}-{}", stack.name, stack.region)
}

/// The Elastic Load Balancing account that writes access logs, in regions opened before August
/// 2022; later regions (and these too) use the log-delivery service principal.
fn elb_account(region: &str) -> Option<&'static str> {
    Some(match region {
        "us-east-1" => "127311923021",
        "us-east-2" => "033677994240",
        "us-west-1" => "027434742980",
        "us-west-2" => "797873946194",
        "af-south-1" => "098369216593",
        "ap-east-1" => "754344448648",
        "ap-southeast-3" => "589379963580",
        "ap-south-1" => "718504428378",
        "ap-northeast-3" => "383597477331",
        "ap-northeast-2" => "600734575887",
        "ap-southeast-1" => "114774131450",
        "ap-southeast-2" => "783225319266",
        "ap-northeast-1" => "582318560864",
        "ca-central-1" => "985666609251",
        "eu-central-1" => "054676820928",
        "eu-west-1" => "156460612806",
        "eu-west-2" => "652711504416",
        "eu-south-1" => "635631232127",
        "eu-west-3" => "009996457667",
        "eu-north-1" => "897822967062",
        "me-south-1" => "076674570225",
        "sa-east-1" => "507241528517",
        _ => return None,
    })
}

/// The bucket policy: log delivery may put objects under the stack's prefix for this account,
/// nothing else is granted, and every request without TLS is refused.
pub fn policy(stack: &stack::Stack, identity: &Identity, bucket: &str) -> Value {
    let partition = &identity.partition;
    let logs = format!("arn:{partition}:s3:::{bucket}/{}/AWSLogs/{}/*", stack.name, identity.account);
    let mut statements = vec![json!({
        "Sid": "LogDelivery",
        "Effect": "Allow",
        "Principal": { "Service": "logdelivery.elasticloadbalancing.amazonaws.com" },
        "Action": "s3:PutObject",
        "Resource": logs,
    })];
    if let Some(elb) = elb_account(&stack.region) {
        statements.push(json!({
            "Sid": "RegionalLoadBalancing",
            "Effect": "Allow",
            "Principal": { "AWS": format!("arn:{partition}:iam::{elb}:root") },
            "Action": "s3:PutObject",
            "Resource": logs,
        }));
    }
    statements.push(json!({
        "Sid": "TlsOnly",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [format!("arn:{partition}:s3:::{bucket}"), format!("arn:{partition}:s3:::{bucket}/*")],
        "Condition": { "Bool": { "aws:SecureTransport": "false" } },
    }));
    json!({ "Version": "2012-10-17", "Statement": statements })
}

#[derive(Debug, Clone, PartialEq)]
pub struct ObservedBucket {
    pub name: String,
    pub tags: Vec<(String, String)>,
    /// All four public-access switches on.
    pub public_access_blocked: bool,
    /// The default encryption algorithm (AES256 = S3-managed keys).
    pub encryption: Option<String>,
    pub ownership: Option<String>,
    /// Days after which the lifecycle rule expires log files.
    pub expiration_days: Option<i32>,
    pub policy: Option<Value>,
}

impl Observed for ObservedBucket {
    fn id(&self) -> &str {
        &self.name
    }
}

pub fn diff(stack: &stack::Stack, policy: &Value, observed: Option<&ObservedBucket>) -> Change {
    let days = retention_days(stack);
    let want = [
        ("public_access", "blocked".to_owned()),
        ("encryption", "AES256".to_owned()),
        ("object_ownership", "BucketOwnerEnforced".to_owned()),
        ("expiration_days", days.to_string()),
        ("policy", policy.to_string()),
    ];
    let Some(b) = observed else {
        return Change::create(want.into_iter().map(|(k, v)| FieldDiff::new(k, None, Some(v))).collect());
    };
    let have = [
        if b.public_access_blocked { "blocked" } else { "open" }.to_owned(),
        b.encryption.clone().unwrap_or_else(|| "none".into()),
        b.ownership.clone().unwrap_or_else(|| "none".into()),
        b.expiration_days.map_or_else(|| "never".into(), |d| d.to_string()),
        b.policy.as_ref().map_or_else(|| "none".into(), Value::to_string),
    ];
    let mut fields: Vec<FieldDiff> =
        want.iter().zip(have.iter()).filter_map(|((key, want), have)| compare(key, have, want)).collect();
    // A parsed policy equal to ours is no change, whatever the key order or whitespace AWS returns.
    fields.retain(|f| f.field != "policy" || b.policy.as_ref() != Some(policy));
    fields.extend(tags::diff(&stack.resource_tags(), &b.tags));
    Change::update(fields)
}

/// Days the bucket keeps each log file (also when the stack no longer asks for access logs: the
/// bucket a plan deletes is described by the default).
pub fn retention_days(stack: &stack::Stack) -> u32 {
    stack.load_balancer.access_logs.as_ref().map_or(90, |a| a.retention_days)
}

async fn observe(ctx: &Ctx, bucket: &str) -> Result<Option<ObservedBucket>, Error> {
    let s3 = &ctx.clients.s3;
    let tagging = s3.get_bucket_tagging().bucket(bucket).send().await.ctx("read the tags of bucket", bucket);
    // A bucket without tags answers NoSuchTagSet; one that is not there, NoSuchBucket.
    let tags = match absent(tagging) {
        Ok(None) => return Ok(None),
        Ok(Some(t)) => t.tag_set().iter().map(|t| (t.key().to_owned(), t.value().to_owned())).collect(),
        Err(e) if e.code() == Some("NoSuchTagSet") => Vec::new(),
        Err(e) if e.is_denied() => {
            return Err(Error::Refused(format!(
                "the bucket name {bucket} is taken and this account cannot read it (another account's bucket, or a policy that denies us): the access logs cannot go there; delete that bucket or turn off load_balancer.access_logs"
            )));
        }
        Err(e) => return Err(e),
    };
    let found = ObservedBucket {
        name: bucket.to_owned(),
        tags,
        public_access_blocked: false,
        encryption: None,
        ownership: None,
        expiration_days: None,
        policy: None,
    };
    // Untagged and empty: made by a create whose tags were lost; tagged by the apply that follows.
    let take_over = found.tags.is_empty() && is_empty(ctx, bucket).await?;
    let owned = if take_over {
        Some(found)
    } else {
        tags::pick_owned("bucket", bucket, &ctx.owner(), vec![found], |b| b.name.clone(), |b| b.tags.clone())?
    };
    let Some(mut b) = owned else { return Ok(None) };
    // Five settings, read at once.
    let (pab, enc, own, life, policy) = tokio::join!(
        s3.get_public_access_block().bucket(bucket).send(),
        s3.get_bucket_encryption().bucket(bucket).send(),
        s3.get_bucket_ownership_controls().bucket(bucket).send(),
        s3.get_bucket_lifecycle_configuration().bucket(bucket).send(),
        s3.get_bucket_policy().bucket(bucket).send(),
    );
    let pab = pab.ctx("read the public access block of", bucket);
    b.public_access_blocked = absent(pab)?.and_then(|o| o.public_access_block_configuration).is_some_and(|c| {
        [c.block_public_acls, c.ignore_public_acls, c.block_public_policy, c.restrict_public_buckets]
            .iter()
            .all(|v| *v == Some(true))
    });
    let enc = enc.ctx("read the encryption of", bucket);
    b.encryption = absent(enc)?.and_then(|o| {
        o.server_side_encryption_configuration()?
            .rules()
            .first()?
            .apply_server_side_encryption_by_default()
            .map(|d| d.sse_algorithm().as_str().to_owned())
    });
    let own = own.ctx("read the ownership of", bucket);
    b.ownership = absent(own)?
        .and_then(|o| o.ownership_controls()?.rules().first().map(|r| r.object_ownership().as_str().to_owned()));
    let life = life.ctx("read the lifecycle of", bucket);
    b.expiration_days = absent(life)?.and_then(|o| {
        o.rules().iter().find(|r| r.status() == &ExpirationStatus::Enabled).and_then(|r| r.expiration()?.days())
    });
    let policy = policy.ctx("read the policy of", bucket);
    b.policy = absent(policy)?.and_then(|o| serde_json::from_str(o.policy()?).ok());
    Ok(Some(b))
}

async fn is_empty(ctx: &Ctx, bucket: &str) -> Result<bool, Error> {
    let out = ctx.clients.s3.list_object_versions().bucket(bucket).max_keys(1).send().await;
    let out = out.ctx("list the objects of bucket", bucket)?;
    Ok(out.versions().is_empty() && out.delete_markers().is_empty())
}

fn s3_tags(stack: &stack::Stack) -> Result<Vec<Tag>, Error> {
    stack
        .resource_tags()
        .into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build().map_err(|e| Error::Refused(format!("bucket tag: {e}"))))
        .collect()
}

fn built<T>(r: Result<T, aws_sdk_s3::error::BuildError>, what: &str) -> Result<T, Error> {
    r.map_err(|e| Error::Refused(format!("cannot build the bucket's {what}: {e}")))
}

/// Runs a write to `bucket`, waiting while S3 does not yet know the bucket it just created
/// (NoSuchBucket for a minute or two; Terraform waits up to two).
async fn visible<T, F, Fut>(ctx: &Ctx, bucket: &str, op: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Error>>,
{
    ctx.wait(Wait::Consistency, &format!("S3 to know the bucket {bucket}"), op).await
}

/// Creates the bucket, owner-enforced and tagged, waiting while S3 answers OperationAborted (a
/// create of the same name still settling).
async fn create(ctx: &Ctx, bucket: &str) -> Result<(), Error> {
    let (s3, stack) = (&ctx.clients.s3, &ctx.stack);
    let mut config = CreateBucketConfiguration::builder().set_tags(Some(s3_tags(stack)?));
    // us-east-1 is the one region that takes no location constraint.
    if stack.region != "us-east-1" {
        config = config.location_constraint(BucketLocationConstraint::from(stack.region.as_str()));
    }
    let config = config.build();
    ctx.wait(Wait::Consistency, &format!("S3 to take the bucket {bucket}"), || async {
        s3.create_bucket()
            .bucket(bucket)
            .create_bucket_configuration(config.clone())
            .object_ownership(ObjectOwnership::BucketOwnerEnforced)
            .send()
            .await
            .ctx("create bucket", bucket)
    })
    .await
    .map(|_| ())
    .map_err(|e| match e.code() {
        Some("BucketAlreadyExists") => Error::Refused(format!(
            "the bucket name {bucket} belongs to another AWS account: the access logs cannot go there; turn off \
             load_balancer.access_logs or rename the stack"
        )),
        _ => e,
    })
}

fn ownership_controls() -> Result<OwnershipControls, Error> {
    let rule = built(
        OwnershipControlsRule::builder().object_ownership(ObjectOwnership::BucketOwnerEnforced).build(),
        "ownership",
    )?;
    built(OwnershipControls::builder().rules(rule).build(), "ownership")
}

fn encryption() -> Result<ServerSideEncryptionConfiguration, Error> {
    let default = built(
        ServerSideEncryptionByDefault::builder().sse_algorithm(ServerSideEncryption::Aes256).build(),
        "encryption",
    )?;
    let rule = ServerSideEncryptionRule::builder().apply_server_side_encryption_by_default(default).build();
    built(ServerSideEncryptionConfiguration::builder().rules(rule).build(), "encryption")
}

fn lifecycle(stack: &stack::Stack) -> Result<BucketLifecycleConfiguration, Error> {
    let rule = built(
        LifecycleRule::builder()
            .id("expire-access-logs")
            .filter(LifecycleRuleFilter::builder().prefix("").build())
            .status(ExpirationStatus::Enabled)
            .expiration(
                LifecycleExpiration::builder().days(i32::try_from(retention_days(stack)).unwrap_or(i32::MAX)).build(),
            )
            .build(),
        "lifecycle",
    )?;
    built(BucketLifecycleConfiguration::builder().rules(rule).build(), "lifecycle")
}

/// Creates the bucket (when `created`) and writes each setting that is new or differs; every
/// write waits while S3 does not know a bucket it just made.
async fn apply(
    ctx: &Ctx,
    bucket: &str,
    policy: &Value,
    change: &Change,
    created: bool,
) -> Result<Option<String>, Error> {
    let (s3, stack) = (&ctx.clients.s3, &ctx.stack);
    if created {
        create(ctx, bucket).await?;
    }
    let set = |field: &str| created || change.has(field);
    if created || change.has_tags() {
        let tagging = built(Tagging::builder().set_tag_set(Some(s3_tags(stack)?)).build(), "tags")?;
        visible(ctx, bucket, || async {
            s3.put_bucket_tagging().bucket(bucket).tagging(tagging.clone()).send().await.ctx("tag bucket", bucket)
        })
        .await?;
    }
    if set("public_access") {
        let block = PublicAccessBlockConfiguration::builder()
            .block_public_acls(true)
            .ignore_public_acls(true)
            .block_public_policy(true)
            .restrict_public_buckets(true)
            .build();
        visible(ctx, bucket, || async {
            let r = s3.put_public_access_block().bucket(bucket).public_access_block_configuration(block.clone());
            r.send().await.ctx("block public access to bucket", bucket)
        })
        .await?;
    }
    if set("object_ownership") && !created {
        let controls = ownership_controls()?;
        visible(ctx, bucket, || async {
            let r = s3.put_bucket_ownership_controls().bucket(bucket).ownership_controls(controls.clone());
            r.send().await.ctx("turn off the ACLs of bucket", bucket)
        })
        .await?;
    }
    if set("encryption") {
        let config = encryption()?;
        visible(ctx, bucket, || async {
            let r = s3.put_bucket_encryption().bucket(bucket).server_side_encryption_configuration(config.clone());
            r.send().await.ctx("encrypt bucket", bucket)
        })
        .await?;
    }
    if set("expiration_days") {
        let config = lifecycle(stack)?;
        visible(ctx, bucket, || async {
            let r = s3.put_bucket_lifecycle_configuration().bucket(bucket).lifecycle_configuration(config.clone());
            r.send().await.ctx("set the lifecycle of bucket", bucket)
        })
        .await?;
    }
    if set("policy") {
        visible(ctx, bucket, || async {
            let r = s3.put_bucket_policy().bucket(bucket).policy(policy.to_string());
            r.send().await.ctx("set the policy of bucket", bucket)
        })
        .await?;
    }
    ctx.progress(format!("bucket {bucket} ready for access logs"));
    Ok(created.then(|| bucket.to_owned()))
}

/// The bucket's name when access logs are on (None when off: the load balancer logs nowhere).
pub async fn reconcile(ctx: &Ctx, plan: &mut Plan) -> Result<Option<String>, Error> {
    if ctx.stack.load_balancer.access_logs.is_none() {
        return Ok(None);
    }
    let identity = ctx.clients.identity().await?;
    let bucket = name(&ctx.stack, &identity.account);
    let policy = policy(&ctx.stack, &identity, &bucket);
    Step::new(ctx, LOG_BUCKET, &bucket)
        .converge(
            plan,
            async || observe(ctx, &bucket).await,
            |o| diff(&ctx.stack, &policy, o),
            async |c: &Change, o: Option<&ObservedBucket>| apply(ctx, &bucket, &policy, c, o.is_none()).await,
        )
        .await?;
    Ok(Some(bucket))
}

/// Deletes every object version in the bucket (a page of up to 1,000 at a time).
async fn empty(ctx: &Ctx, bucket: &str) -> Result<(), Error> {
    let s3 = &ctx.clients.s3;
    loop {
        let out = s3.list_object_versions().bucket(bucket).send().await.ctx("list the objects of bucket", bucket)?;
        let versions = out.versions().iter().map(|v| (v.key(), v.version_id()));
        let markers = out.delete_markers().iter().map(|m| (m.key(), m.version_id()));
        let objects: Vec<ObjectIdentifier> = versions
            .chain(markers)
            .filter_map(|(key, version)| {
                ObjectIdentifier::builder()
                    .set_key(key.map(str::to_owned))
                    .set_version_id(version.map(str::to_owned))
                    .build()
                    .ok()
            })
            .collect();
        if objects.is_empty() {
            return Ok(());
        }
        let delete = built(Delete::builder().set_objects(Some(objects)).quiet(true).build(), "deletion list")?;
        let out = s3
            .delete_objects()
            .bucket(bucket)
            .delete(delete)
            .send()
            .await
            .ctx("delete the objects of bucket", bucket)?;
        if let Some(e) = out.errors().first() {
            return Err(Error::Aws {
                action: "delete the objects of bucket",
                resource: bucket.to_owned(),
                answered_by: std::any::type_name::<aws_sdk_s3::operation::delete_objects::DeleteObjectsError>(),
                code: e.code().map(str::to_owned),
                message: format!("{}: {}", e.key().unwrap_or_default(), e.message().unwrap_or_default()),
                source: None,
            });
        }
    }
}

/// The name of this stack's bucket in the caller's account.
async fn stack_bucket(ctx: &Ctx) -> Result<String, Error> {
    Ok(name(&ctx.stack, &ctx.clients.identity().await?.account))
}

/// The access-log bucket, named after the account (which only AWS knows).
fn derived_names(stack: &stack::Stack) -> Vec<(Noun, String)> {
    if stack.load_balancer.access_logs.is_none() {
        return Vec::new();
    }
    vec![(LOG_BUCKET, name(stack, "<account>"))]
}

/// This kind in the one list of kinds (`resources::KINDS`).
pub const KIND: Kind = Kind {
    name: "log-bucket",
    nouns: &[LOG_BUCKET],
    permissions: PERMISSIONS,
    arn_types: &["s3:"],
    deleted_after: &["load-balancer"],
    derived_names,
    name_limits: &[(LOG_BUCKET, &stack::limits::S3_BUCKET_NAME)],
    terraform_types: &[
        "aws_s3_bucket",
        "aws_s3_bucket_policy",
        "aws_s3_bucket_public_access_block",
        "aws_s3_bucket_ownership_controls",
        "aws_s3_bucket_lifecycle_configuration",
        "aws_s3_bucket_server_side_encryption_configuration",
    ],
    teardown: |ctx, plan, down| Box::pin(teardown(ctx, plan, down)),
    leftovers: |ctx| Box::pin(leftovers(ctx)),
    node: Some(Node::of::<LogBucket>()),
};

/// The access-log bucket's name, when access logs are on (None: the load balancer logs nowhere).
#[derive(Debug, Clone, Default)]
pub struct AccessLogBucket(pub Option<String>);

/// The access-log bucket needs nothing of other kinds; the load balancer logs to it.
pub struct LogBucket;

impl Reconciles for LogBucket {
    type Needs = ();
    type Seen = ();
    type Gives = AccessLogBucket;

    fn see(_: &Ctx) -> Making<'_, ()> {
        Box::pin(async { Ok(()) })
    }

    fn reconcile<'a>(ctx: &'a Ctx, plan: &'a mut Plan, (): (), (): ()) -> Making<'a, AccessLogBucket> {
        Box::pin(async move { Ok(AccessLogBucket(reconcile(ctx, plan).await?)) })
    }
}

/// Empties the bucket and deletes it. The load balancer is gone by then, but its last log file
/// can land a little later: a bucket that is not empty at deletion is emptied again.
pub async fn teardown(ctx: &Ctx, plan: &mut Plan, _: &crate::reconcile::kind::Down) -> Result<(), Error> {
    let bucket = stack_bucket(ctx).await?;
    let Some(b) = observe(ctx, &bucket).await? else { return Ok(()) };
    if ctx.applying() {
        let r = ctx
            .wait(Wait::Dependency, &format!("the last access logs in {bucket} to be deleted"), || async {
                empty(ctx, &bucket).await?;
                ctx.clients.s3.delete_bucket().bucket(&bucket).send().await.ctx("delete bucket", &bucket)
            })
            .await;
        gone(r)?;
        ctx.progress(format!("deleted bucket {bucket} and the access logs in it"));
    }
    plan.push(LOG_BUCKET, &bucket, Some(b.name), Change::delete());
    Ok(())
}

pub async fn leftovers(ctx: &Ctx) -> Result<Vec<String>, Error> {
    let bucket = stack_bucket(ctx).await?;
    Ok(observe(ctx, &bucket).await?.map(|b| format!("bucket {}", b.name)).into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> Identity {
        Identity { account: "123456789012".into(), arn: String::new(), partition: "aws".into() }
    }

    fn observed(s: &stack::Stack, policy: &Value) -> ObservedBucket {
        ObservedBucket {
            name: "b".into(),
            tags: s.resource_tags(),
            public_access_blocked: true,
            encryption: Some("AES256".into()),
            ownership: Some("BucketOwnerEnforced".into()),
            expiration_days: Some(90),
            policy: Some(policy.clone()),
        }
    }

    #[test]
    fn names_fit_the_63_characters_s3_allows() {
        let mut s = crate::resources::test_stack();
        s.name = "a-twenty-char-stack1".into();
        s.region = "ap-southeast-3".into();
        let n = name(&s, "123456789012");
        assert_eq!(n, "a-twenty-char-stack1-alb-logs-123456789012-ap-southeast-3");
        assert!(n.len() <= 63);
    }

    #[test]
    fn only_log_delivery_writes_and_only_under_the_stack_prefix() {
        let s = crate::resources::test_stack();
        let p = policy(&s, &identity(), "b");
        let statements = p["Statement"].as_array().unwrap();
        let allows: Vec<&Value> = statements.iter().filter(|s| s["Effect"] == "Allow").collect();
        assert_eq!(allows.len(), 2, "service principal and the Tokyo ELB account");
        for a in allows {
            assert_eq!(a["Action"], "s3:PutObject");
            assert_eq!(a["Resource"], "arn:aws:s3:::b/konnichiwa/AWSLogs/123456789012/*");
        }
        assert_eq!(statements[1]["Principal"]["AWS"], "arn:aws:iam::582318560864:root");
        let deny = statements.iter().find(|s| s["Effect"] == "Deny").unwrap();
        assert_eq!(deny["Condition"]["Bool"]["aws:SecureTransport"], "false");
        let mut newer = s.clone();
        newer.region = "ap-southeast-7".into();
        let p = policy(&newer, &identity(), "b");
        assert_eq!(p["Statement"].as_array().unwrap().len(), 2, "service principal and TLS only");
    }

    #[test]
    fn a_bucket_as_wanted_is_no_change_and_each_drift_is_named() {
        let mut s = crate::resources::test_stack();
        s.load_balancer.access_logs = Some(stack::AccessLogs { retention_days: 90 });
        let p = policy(&s, &identity(), "b");
        let good = observed(&s, &p);
        assert!(diff(&s, &p, Some(&good)).is_no_op());
        let drifted = ObservedBucket {
            public_access_blocked: false,
            encryption: None,
            expiration_days: None,
            policy: Some(json!({"Version": "2012-10-17", "Statement": []})),
            ..good
        };
        let fields: Vec<String> = diff(&s, &p, Some(&drifted)).fields.into_iter().map(|f| f.field).collect();
        assert_eq!(fields, ["public_access", "encryption", "expiration_days", "policy"]);
        assert_eq!(diff(&s, &p, None).action, crate::reconcile::Action::Create);
    }
}
