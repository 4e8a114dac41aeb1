//! The launch template: ECS-optimized AMI, IMDSv2 with hop limit 1, encrypted gp3 root volume,
//! user data that joins the cluster. A change writes a new version and makes it the default, so
//! the default always says what the instances should run (a run killed between the two calls
//! leaves a `default_version` difference that the next run finishes). Creates carry an
//! idempotency token derived from the settings.
//!
//! The AMI of an `ecs-optimized-…` family is pinned: the template keeps the AMI its latest
//! version has (each version records, as its description, the SSM parameter that chose it), so
//! AWS's monthly AMI release does not roll the fleet in whatever deploy comes next. The plan says
//! when another AMI is recommended; `follow` (`up --update-ami`, or the stack's
//! `follow_recommended_ami`) moves to it.

use aws_sdk_ec2::types::{
    LaunchTemplateBlockDeviceMappingRequest, LaunchTemplateEbsBlockDeviceRequest, LaunchTemplateHttpTokensState,
    LaunchTemplateIamInstanceProfileSpecificationRequest, LaunchTemplateInstanceMetadataOptionsRequest,
    LaunchTemplateTagSpecificationRequest, RequestLaunchTemplateData, ResourceType, VolumeType,
};
use base64::Engine;

use super::LAUNCH_TEMPLATE;
use super::{Names, ROOT_DEVICE};
use crate::error::{AwsContext, Error, absent, gone};
use crate::reconcile::step::{Made, Observed};
use crate::reconcile::{Change, Ctx, FieldDiff, Id, Plan, Step, compare, tags};
use crate::wait::Wait;

/// The launch template's data as stack.yaml wants it.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateSpec {
    pub image_id: String,
    pub instance_type: String,
    pub instance_profile: String,
    pub security_group: Id,
    pub user_data: String,
    pub root_volume_gib: i32,
}

/// Which AMI the instances run.
#[derive(Debug, Clone, PartialEq)]
pub enum AmiChoice {
    /// The id stack.yaml names.
    Named(String),
    /// A family's recommended AMI: the SSM `parameter` and what it says now. Kept at the AMI the
    /// template has unless `follow`.
    Recommended { parameter: String, recommended: String, follow: bool },
}

impl AmiChoice {
    /// What a version records as its description: what chose its AMI.
    fn source(&self) -> String {
        match self {
            Self::Named(_) => "AMI: named in stack.yaml".into(),
            Self::Recommended { parameter, .. } => format!("AMI: recommended by {parameter}"),
        }
    }

    /// The AMI the template should have, given what it has; and a note when AWS recommends
    /// another than the one kept.
    pub fn wanted(&self, observed: Option<&ObservedTemplate>) -> (String, Option<String>) {
        let (parameter, recommended, follow) = match self {
            Self::Named(id) => return (id.clone(), None),
            Self::Recommended { parameter, recommended, follow } => (parameter, recommended, *follow),
        };
        // Pinned: the AMI the template has, when the same parameter chose it (not when the stack
        // moved to another family or architecture). Versions written before sources were
        // recorded have none; their AMI is kept too.
        let kept = observed.filter(|o| {
            !follow
                && !o.spec.image_id.is_empty()
                && o.ami_source.as_deref().is_none_or(|s| s == self.source() || !s.starts_with("AMI: "))
        });
        match kept {
            Some(o) if o.spec.image_id != *recommended => {
                let note = format!(
                    "AWS now recommends {recommended} ({parameter}); the instances keep {} — `up --update-ami` moves \
                     them (an instance refresh), or set capacity.follow_recommended_ami: true",
                    o.spec.image_id
                );
                (o.spec.image_id.clone(), Some(note))
            }
            Some(o) => (o.spec.image_id.clone(), None),
            None => (recommended.clone(), None),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ObservedTemplate {
    pub id: String,
    /// The latest version, whose data `spec` is.
    pub version: i64,
    /// What chose the latest version's AMI (its description), when recorded.
    pub ami_source: Option<String>,
    pub default_version: i64,
    pub spec: TemplateSpec,
    pub imds_v2_required: bool,
    pub hop_limit: Option<i32>,
    pub encrypted: bool,
    pub tags: Vec<(String, String)>,
}

impl Observed for ObservedTemplate {
    fn id(&self) -> &str {
        &self.id
    }
}

/// The template the group launches from: its id, the version that has the wanted data, and
/// the AMI it has.
#[derive(Debug, Clone)]
pub struct TemplateRef {
    pub id: Id,
    pub version: Option<i64>,
    pub image_id: String,
}

/// What an apply made: a new template, or a new version of the observed one.
struct Written {
    created: Option<String>,
    version: Option<i64>,
}

impl Made for Written {
    fn created_id(&self) -> Option<String> {
        self.created.clone()
    }
}

pub fn user_data(cluster: &str) -> String {
    format!("#!/bin/bash\necho ECS_CLUSTER={cluster} >> /etc/ecs/ecs.config\n")
}

pub fn diff_template(want: &TemplateSpec, stack: &stack::Stack, observed: Option<&ObservedTemplate>) -> Change {
    let Some(o) = observed else {
        return Change::create(vec![
            FieldDiff::new("ami", None, Some(want.image_id.clone())),
            FieldDiff::new("instance_type", None, Some(want.instance_type.clone())),
            FieldDiff::new("instance_profile", None, Some(want.instance_profile.clone())),
            FieldDiff::new("security_group", None, Some(want.security_group.to_string())),
            FieldDiff::new("imds", None, Some("v2 required, hop limit 1".into())),
            FieldDiff::new("root_volume", None, Some(format!("{} GiB gp3, encrypted", want.root_volume_gib))),
        ]);
    };
    let s = &o.spec;
    let mut fields: Vec<FieldDiff> = [
        compare("ami", &s.image_id, &want.image_id),
        compare("instance_type", &s.instance_type, &want.instance_type),
        compare("instance_profile", &s.instance_profile, &want.instance_profile),
        compare("security_group", &s.security_group, &want.security_group),
        (s.user_data != want.user_data).then(|| {
            FieldDiff::new(
                "user_data",
                Some(s.user_data.trim().replace('\n', "; ")),
                Some(want.user_data.trim().replace('\n', "; ")),
            )
        }),
        compare("root_volume_gib", &s.root_volume_gib, &want.root_volume_gib),
        compare("imds_v2_required", &o.imds_v2_required, &true),
        compare("imds_hop_limit", &o.hop_limit.unwrap_or(0), &1),
        compare("root_volume_encrypted", &o.encrypted, &true),
    ]
    .into_iter()
    .flatten()
    .collect();
    // A version with the wanted data exists but is not the default yet (a run stopped between).
    if fields.is_empty() && o.default_version != o.version {
        fields.push(FieldDiff::new(
            "default_version",
            Some(o.default_version.to_string()),
            Some(o.version.to_string()),
        ));
    }
    fields.extend(tags::diff(&tags::desired(stack, &super::names(stack).launch_template), &o.tags));
    Change::update(fields)
}

pub(super) async fn observe(ctx: &Ctx, name: &str) -> Result<Option<ObservedTemplate>, Error> {
    let ec2 = &ctx.clients.ec2;
    let described =
        ec2.describe_launch_templates().launch_template_names(name).send().await.ctx("describe launch template", name);
    let Some(out) = absent(described)? else {
        return Ok(None);
    };
    type Found = (String, i64, i64, Vec<(String, String)>);
    let found: Vec<Found> = out
        .launch_templates()
        .iter()
        .map(|t| {
            (
                t.launch_template_id().unwrap_or_default().to_owned(),
                t.latest_version_number().unwrap_or(1),
                t.default_version_number().unwrap_or(1),
                tags::pairs(t.tags()),
            )
        })
        .collect();
    let Some((id, latest, default_version, tags)) =
        tags::pick_owned("launch template", name, &ctx.owner(), found, |t| t.0.clone(), |t| t.3.clone())?
    else {
        return Ok(None);
    };
    let versions = ec2
        .describe_launch_template_versions()
        .launch_template_id(&id)
        .versions(latest.to_string())
        .send()
        .await
        .ctx("describe the latest version of launch template", name)?;
    let latest_version = versions.launch_template_versions().first();
    let data = latest_version.and_then(|v| v.launch_template_data());
    let ebs = data
        .and_then(|d| d.block_device_mappings().iter().find(|b| b.device_name() == Some(ROOT_DEVICE)))
        .and_then(|b| b.ebs());
    let user_data = data
        .and_then(|d| d.user_data())
        .and_then(|u| base64::engine::general_purpose::STANDARD.decode(u).ok())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let meta = data.and_then(|d| d.metadata_options());
    Ok(Some(ObservedTemplate {
        id,
        version: latest,
        ami_source: latest_version.and_then(|v| v.version_description()).map(str::to_owned),
        default_version,
        spec: TemplateSpec {
            image_id: data.and_then(|d| d.image_id()).unwrap_or_default().to_owned(),
            instance_type: data.and_then(|d| d.instance_type()).map(|t| t.as_str().to_owned()).unwrap_or_default(),
            instance_profile: data
                .and_then(|d| d.iam_instance_profile())
                .and_then(|p| p.name())
                .unwrap_or_default()
                .to_owned(),
            security_group: Id::Known(data.and_then(|d| d.security_group_ids().first()).cloned().unwrap_or_default()),
            user_data,
            root_volume_gib: ebs.and_then(|e| e.volume_size()).unwrap_or(0),
        },
        imds_v2_required: meta.and_then(|m| m.http_tokens()).map(|t| t.as_str() == "required").unwrap_or(false),
        hop_limit: meta.and_then(|m| m.http_put_response_hop_limit()),
        encrypted: ebs.and_then(|e| e.encrypted()).unwrap_or(false),
        tags,
    }))
}

fn template_data(ctx: &Ctx, spec: &TemplateSpec) -> Result<RequestLaunchTemplateData, Error> {
    let instance_tags = tags::ec2_tags(&tags::desired(&ctx.stack, &format!("{}-instance", ctx.stack.name)));
    Ok(RequestLaunchTemplateData::builder()
        .image_id(&spec.image_id)
        .instance_type(spec.instance_type.as_str().into())
        .iam_instance_profile(
            LaunchTemplateIamInstanceProfileSpecificationRequest::builder().name(&spec.instance_profile).build(),
        )
        .security_group_ids(spec.security_group.get()?)
        .user_data(base64::engine::general_purpose::STANDARD.encode(&spec.user_data))
        // IMDSv2 with one hop: containers in bridge mode cannot reach the instance role's credentials.
        .metadata_options(
            LaunchTemplateInstanceMetadataOptionsRequest::builder()
                .http_tokens(LaunchTemplateHttpTokensState::Required)
                .http_put_response_hop_limit(1)
                .http_endpoint("enabled".into())
                .build(),
        )
        .block_device_mappings(
            LaunchTemplateBlockDeviceMappingRequest::builder()
                .device_name(ROOT_DEVICE)
                .ebs(
                    LaunchTemplateEbsBlockDeviceRequest::builder()
                        .volume_size(spec.root_volume_gib)
                        .volume_type(VolumeType::Gp3)
                        .encrypted(true)
                        .delete_on_termination(true)
                        .build(),
                )
                .build(),
        )
        .tag_specifications(
            LaunchTemplateTagSpecificationRequest::builder()
                .resource_type(ResourceType::Instance)
                .set_tags(Some(instance_tags.clone()))
                .build(),
        )
        .tag_specifications(
            LaunchTemplateTagSpecificationRequest::builder()
                .resource_type(ResourceType::Volume)
                .set_tags(Some(instance_tags))
                .build(),
        )
        .build())
}

/// True when the template's data differs (not only its tags or default version): a new version.
fn changes_data(change: &Change) -> bool {
    change.fields.iter().any(|f| !f.field.starts_with("tags.") && f.field != "default_version")
}

async fn set_default(ctx: &Ctx, id: &str, version: i64) -> Result<(), Error> {
    ctx.wait(Wait::Consistency, &format!("launch template {id} version {version} to be visible"), || async {
        ctx.clients
            .ec2
            .modify_launch_template()
            .launch_template_id(id)
            .default_version(version.to_string())
            .send()
            .await
            .ctx("make the new version the default of launch template", id)
    })
    .await
    .map(|_| ())
}

async fn apply(
    ctx: &Ctx,
    name: &str,
    (spec, source): (&TemplateSpec, &str),
    change: &Change,
    observed: Option<&ObservedTemplate>,
) -> Result<Written, Error> {
    let ec2 = &ctx.clients.ec2;
    let data = template_data(ctx, spec)?;
    let settings = format!("{spec:?}");
    let Some(t) = observed else {
        let out = ec2
            .create_launch_template()
            .launch_template_name(name)
            .version_description(source)
            .launch_template_data(data)
            .client_token(tags::idempotency_token(&[&ctx.stack.name, "launch-template", name, &settings]))
            .tag_specifications(tags::ec2_spec(ResourceType::LaunchTemplate, &ctx.stack, name))
            .send()
            .await
            .ctx("create launch template", name)?;
        ctx.progress(format!("created launch template {name} with AMI {}", spec.image_id));
        return Ok(Written {
            created: out.launch_template().and_then(|t| t.launch_template_id()).map(str::to_owned),
            version: Some(1),
        });
    };
    let mut version = None;
    if changes_data(change) {
        let out = ec2
            .create_launch_template_version()
            .launch_template_id(&t.id)
            .version_description(source)
            .launch_template_data(data)
            .client_token(tags::idempotency_token(&[&ctx.stack.name, "launch-template-version", &t.id, &settings]))
            .send()
            .await
            .ctx("create a launch template version of", name)?;
        let v = out.launch_template_version().and_then(|v| v.version_number()).unwrap_or(t.version + 1);
        set_default(ctx, &t.id, v).await?;
        ctx.progress(format!("launch template {name}: version {v} (AMI {}) is the default", spec.image_id));
        version = Some(v);
    } else if change.has("default_version") {
        set_default(ctx, &t.id, t.version).await?;
        version = Some(t.version);
    }
    if change.has_tags() {
        ec2.create_tags()
            .resources(&t.id)
            .set_tags(Some(tags::ec2_tags(&tags::desired(&ctx.stack, name))))
            .send()
            .await
            .ctx("tag launch template", name)?;
    }
    Ok(Written { created: None, version })
}

/// The template with `spec`'s data and the AMI `ami` picks; its id and the version with the
/// wanted data (unknown in a plan that changes it).
pub async fn converge(
    ctx: &Ctx,
    plan: &mut Plan,
    n: &Names,
    spec: &TemplateSpec,
    ami: &AmiChoice,
    observed: Option<ObservedTemplate>,
) -> Result<TemplateRef, Error> {
    let name = &n.launch_template;
    let source = ami.source();
    let with_ami = |o: Option<&ObservedTemplate>| TemplateSpec { image_id: ami.wanted(o).0, ..spec.clone() };
    let outcome = Step::new(ctx, LAUNCH_TEMPLATE, name)
        .converge_observed(
            plan,
            observed,
            async || observe(ctx, name).await,
            |o| diff_template(&with_ami(o), &ctx.stack, o),
            async |c: &Change, o: Option<&ObservedTemplate>| apply(ctx, name, (&with_ami(o), &source), c, o).await,
        )
        .await?;
    let (image_id, note) = ami.wanted(outcome.observed.as_ref());
    if let Some(note) = note {
        plan.note(note);
    }
    let version = match (&outcome.applied, &outcome.observed) {
        (Some(w), _) if w.version.is_some() => w.version,
        // The latest version has the wanted data (unchanged, or only tags or the default differ).
        (_, Some(o)) if !changes_data(&outcome.change) || ctx.applying() => Some(o.version),
        // A plan that writes a new version: its number is known once written.
        _ => None,
    };
    Ok(TemplateRef { id: outcome.id_or(|| format!("launch template {name}")), version, image_id })
}

pub async fn teardown(ctx: &Ctx, plan: &mut Plan, n: &Names) -> Result<(), Error> {
    let Some(t) = observe(ctx, &n.launch_template).await? else { return Ok(()) };
    if ctx.applying() {
        let r = ctx
            .clients
            .ec2
            .delete_launch_template()
            .launch_template_id(&t.id)
            .send()
            .await
            .ctx("delete launch template", &n.launch_template);
        // EC2 answers a missing template under the code for what was asked: its id or its name.
        gone(r)?;
        ctx.progress(format!("deleted launch template {}", n.launch_template));
    }
    plan.push(LAUNCH_TEMPLATE, &n.launch_template, Some(t.id), Change::delete());
    Ok(())
}

pub async fn leftover(ctx: &Ctx, n: &Names) -> Result<Option<String>, Error> {
    Ok(observe(ctx, &n.launch_template).await?.map(|t| format!("launch template {}", t.id)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> TemplateSpec {
        TemplateSpec {
            image_id: "ami-old".into(),
            instance_type: "t3.small".into(),
            instance_profile: "konnichiwa-instance".into(),
            security_group: Id::Known("sg-1".into()),
            user_data: user_data("konnichiwa"),
            root_volume_gib: 30,
        }
    }

    fn observed(s: &stack::Stack) -> ObservedTemplate {
        ObservedTemplate {
            id: "lt-1".into(),
            version: 1,
            ami_source: Some(format!("AMI: recommended by {PARAMETER}")),
            default_version: 1,
            spec: spec(),
            imds_v2_required: true,
            hop_limit: Some(1),
            encrypted: true,
            tags: tags::desired(s, "konnichiwa-instances"),
        }
    }

    #[test]
    fn a_newer_recommended_ami_is_drift() {
        let s = crate::resources::test_stack();
        assert!(diff_template(&spec(), &s, Some(&observed(&s))).is_no_op());
        let newer = TemplateSpec { image_id: "ami-new".into(), ..spec() };
        assert_eq!(
            diff_template(&newer, &s, Some(&observed(&s))).fields,
            vec![FieldDiff::new("ami", Some("ami-old".into()), Some("ami-new".into()))]
        );
        let weak = ObservedTemplate { imds_v2_required: false, hop_limit: Some(2), ..observed(&s) };
        let fields: Vec<String> = diff_template(&spec(), &s, Some(&weak)).fields.into_iter().map(|f| f.field).collect();
        assert_eq!(fields, ["imds_v2_required", "imds_hop_limit"]);
    }

    const PARAMETER: &str = "/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id";

    fn recommended(ami: &str, follow: bool) -> AmiChoice {
        AmiChoice::Recommended { parameter: PARAMETER.into(), recommended: ami.into(), follow }
    }

    #[test]
    fn the_ami_running_is_kept_until_asked_and_the_plan_says_a_newer_one_is_out() {
        let s = crate::resources::test_stack();
        let o = observed(&s);
        let (ami, note) = recommended("ami-new", false).wanted(Some(&o));
        assert_eq!(ami, "ami-old", "pinned");
        let note = note.expect("a note");
        assert!(note.contains("ami-new") && note.contains("ami-old") && note.contains("up --update-ami"), "{note}");
        assert_eq!(recommended("ami-old", false).wanted(Some(&o)), ("ami-old".into(), None), "nothing newer");
        assert_eq!(recommended("ami-new", true).wanted(Some(&o)), ("ami-new".into(), None), "asked to follow");
        assert_eq!(recommended("ami-new", false).wanted(None), ("ami-new".into(), None), "a new template");
        // Another family or architecture chose it: the stack changed, so the AMI does.
        let al2 = ObservedTemplate {
            ami_source: Some(
                "AMI: recommended by /aws/service/ecs/optimized-ami/amazon-linux-2/recommended/image_id".into(),
            ),
            ..o.clone()
        };
        assert_eq!(recommended("ami-new", false).wanted(Some(&al2)).0, "ami-new");
        let named = ObservedTemplate { ami_source: Some("AMI: named in stack.yaml".into()), ..o.clone() };
        assert_eq!(recommended("ami-new", false).wanted(Some(&named)).0, "ami-new");
        // Written before sources were recorded: kept.
        let unrecorded = ObservedTemplate { ami_source: None, ..o };
        assert_eq!(recommended("ami-new", false).wanted(Some(&unrecorded)).0, "ami-old");
        assert_eq!(AmiChoice::Named("ami-x".into()).wanted(Some(&observed(&s))), ("ami-x".into(), None));
    }

    #[test]
    fn a_new_version_that_is_not_the_default_yet_is_finished() {
        let s = crate::resources::test_stack();
        let stopped = ObservedTemplate { version: 2, default_version: 1, ..observed(&s) };
        assert_eq!(
            diff_template(&spec(), &s, Some(&stopped)).fields,
            vec![FieldDiff::new("default_version", Some("1".into()), Some("2".into()))]
        );
    }
}
