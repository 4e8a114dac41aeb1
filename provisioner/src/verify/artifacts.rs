//! What the service starts from: its image exists where the task definition will point (ECR by
//! its API, any other registry by the distribution API), and its API-key secret is usable.

use aws_sdk_ecr::types::ImageIdentifier;

use super::Check;
use crate::error::{AwsContext, Error};
use crate::image::reference::{ImageRef, Pin};
use crate::image::registry::Registry;
use crate::reconcile::Ctx;

pub async fn checks(ctx: &Ctx) -> Vec<Check> {
    let (image, secret) = tokio::join!(image(ctx), secret(ctx));
    vec![image, secret]
}

async fn image(ctx: &Ctx) -> Check {
    const NAME: &str = "image";
    let reference = &ctx.stack.service.image;
    if reference == "build" {
        return Check::passed(NAME, "`up` builds it from app/ here and pushes it to the stack's repository");
    }
    let parsed = ImageRef::parse(reference);
    let (repository, pin) = match (parsed.repository.get(), &parsed.pin) {
        (Ok(r), Pin::Digest(d)) => (r, d.clone()),
        (Ok(r), Pin::Tag(t)) => (r, t.clone()),
        (Ok(r), _) => (r, "latest".to_owned()),
        (Err(e), _) => return Check::not_checked(NAME, &e),
    };
    // Docker Hub's short names (`nginx`, `library/nginx`) name no host: its token dance is not done.
    let Some((host, name)) = repository.split_once('/').filter(|(h, _)| h.contains(['.', ':']) || *h == "localhost")
    else {
        let e = Error::Refused(format!("{reference} is on Docker Hub, whose images are not looked up"));
        return Check::not_checked(NAME, &e);
    };
    let found = if crate::image::is_ecr(host) {
        in_ecr(ctx, host, name, &parsed.pin).await
    } else {
        in_registry(repository, &pin).await
    };
    match found {
        Ok(true) => Check::passed(NAME, format!("{reference} exists")),
        Ok(false) => Check::failed(
            NAME,
            format!("{reference} does not exist: the service's tasks could not pull it and the rollout would stall"),
            "push it first (`provisioner image push`), or set service.image to an image that exists, or to `build`",
        ),
        Err(e) => Check::not_checked(NAME, &e),
    }
}

/// ECR's own answer (no registry credentials needed): the repository of the stack's region.
async fn in_ecr(ctx: &Ctx, host: &str, name: &str, pin: &Pin) -> Result<bool, Error> {
    let (account, region) = {
        let mut parts = host.split('.');
        (
            parts.next().unwrap_or_default(),
            host.split(".dkr.ecr.").nth(1).and_then(|r| r.split('.').next()).unwrap_or_default(),
        )
    };
    if region != ctx.clients.region {
        return Err(Error::Refused(format!(
            "the image is in ECR of {region}, not {}: not checked",
            ctx.clients.region
        )));
    }
    let id = match pin {
        Pin::Digest(d) => ImageIdentifier::builder().image_digest(d).build(),
        Pin::Tag(t) => ImageIdentifier::builder().image_tag(t).build(),
        _ => ImageIdentifier::builder().image_tag("latest").build(),
    };
    let read = ctx.clients.ecr.describe_images().registry_id(account).repository_name(name).image_ids(id).send().await;
    Ok(crate::error::absent(read.ctx("look up the image in", name))?.is_some_and(|out| !out.image_details().is_empty()))
}

async fn in_registry(repository: &str, reference: &str) -> Result<bool, Error> {
    let registry = Registry::new(repository, None)?;
    Ok(registry.exists(reference).await?.is_some())
}

async fn secret(ctx: &Ctx) -> Check {
    const NAME: &str = "secret";
    let name = &ctx.stack.secret.name;
    let caller = match ctx.clients.identity().await {
        Ok(id) => id,
        Err(e) => return Check::not_checked(NAME, &e),
    };
    if let Err(e) = crate::resources::secret::check_caller_reads(&ctx.stack, &caller) {
        return Check::failed(NAME, format!("{e:#}"), "add the caller to secret.only_principals");
    }
    match crate::resources::secret::get_owned(ctx, name).await {
        Ok(None) => {
            Check::passed(NAME, format!("{name} does not exist yet: `up` makes it (API_KEY's value, or a new key)"))
        }
        Ok(Some(s)) if s.deleted_date.is_some() => {
            Check::passed(NAME, format!("{name} is scheduled for deletion: `up` restores it with its value"))
        }
        Ok(Some(_)) => {
            Check::passed(NAME, format!("{name} exists and is the stack's; the task execution role reads it"))
        }
        Err(e @ Error::Foreign { .. }) => Check::failed(
            NAME,
            format!("{e:#}"),
            "name another secret in secret.name, or delete that one if nothing uses it",
        ),
        Err(e) => Check::not_checked(NAME, &e),
    }
}
