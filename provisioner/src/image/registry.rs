//! A small client of the OCI distribution API over reqwest: blobs first (skipping those the
//! registry has: HEAD), then the manifest under the tag — so a failed upload never leaves a tag
//! pointing at a half-pushed image. Plain HTTP only for loopback registries.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, LOCATION};

use super::{Image, ImageError, PushReport, oci};

/// `HOST[:PORT]/NAME` split in two.
pub fn parse_repository(s: &str) -> Result<(String, String), ImageError> {
    let s = s.trim().trim_start_matches("https://").trim_start_matches("http://");
    let (host, name) = s.split_once('/').ok_or_else(|| ImageError::Registry {
        registry: s.to_owned(),
        message: "write the repository as HOST[:PORT]/NAME, e.g. 123456789012.dkr.ecr.ap-northeast-1.amazonaws.com/konnichiwa".into(),
    })?;
    if name.is_empty() || name.contains(':') || name.contains('@') || name.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(ImageError::Registry {
            registry: host.to_owned(),
            message: format!("{name:?} is not a repository name (lowercase, no tag or digest)"),
        });
    }
    Ok((host.to_owned(), name.to_owned()))
}

fn is_loopback_host(host: &str) -> bool {
    crate::aws::is_loopback_url(&format!("http://{host}"))
}

/// A repository on a registry.
#[derive(Debug, Clone)]
pub struct Registry {
    pub host: String,
    pub name: String,
    base: String,
    auth: Option<HeaderValue>,
    client: reqwest::Client,
}

impl Registry {
    /// `basic_auth`: `user:password`, as ECR's GetAuthorizationToken gives it (base64-decoded).
    pub fn new(repository: &str, basic_auth: Option<&str>) -> Result<Self, ImageError> {
        let (host, name) = parse_repository(repository)?;
        let scheme = if is_loopback_host(&host) { "http" } else { "https" };
        let auth = basic_auth
            .map(|c| {
                use base64::Engine;
                let mut v =
                    HeaderValue::from_str(&format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(c)))
                        .map_err(|_| ImageError::Registry {
                            registry: host.clone(),
                            message: "the credentials cannot be sent as a header".into(),
                        })?;
                v.set_sensitive(true);
                Ok(v)
            })
            .transpose()?;
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(600))
            .build()
            .map_err(|e| ImageError::Registry { registry: host.clone(), message: e.to_string() })?;
        Ok(Self { base: format!("{scheme}://{host}"), host, name, auth, client })
    }

    fn err(&self, message: impl Into<String>) -> ImageError {
        ImageError::Registry { registry: self.host.clone(), message: message.into() }
    }

    fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        let r = self.client.request(method, url);
        match &self.auth {
            Some(a) => r.header(AUTHORIZATION, a.clone()),
            None => r,
        }
    }

    async fn send(&self, what: &str, req: reqwest::RequestBuilder) -> Result<reqwest::Response, ImageError> {
        let resp = req.send().await.map_err(|e| {
            if e.is_connect() {
                self.err(format!(
                    "cannot connect while trying to {what} (is the registry running, and the address right?)"
                ))
            } else if e.is_timeout() {
                self.err(format!("timed out while trying to {what}"))
            } else {
                self.err(format!("{what}: {e}"))
            }
        })?;
        match resp.status() {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(self.err(format!(
                "{} while trying to {what}: the registry refused {}; for ECR, check the AWS credentials",
                resp.status(),
                if self.auth.is_some() { "the credentials" } else { "an anonymous push" }
            ))),
            _ => Ok(resp),
        }
    }

    /// True when the registry already has the blob.
    async fn has_blob(&self, digest: &str) -> Result<bool, ImageError> {
        let url = format!("{}/v2/{}/blobs/{digest}", self.base, self.name);
        let resp = self.send(&format!("check blob {digest}"), self.request(reqwest::Method::HEAD, &url)).await?;
        match resp.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            s => Err(self.err(format!("checking blob {digest} answered {s}"))),
        }
    }

    async fn upload_blob(&self, digest: &str, bytes: &[u8]) -> Result<(), ImageError> {
        let start = format!("{}/v2/{}/blobs/uploads/", self.base, self.name);
        // An empty POST still says `Content-Length: 0`: registries behind proxies (ECR among
        // them) refuse a POST without a length (411).
        let post =
            self.request(reqwest::Method::POST, &start).header(reqwest::header::CONTENT_LENGTH, "0").body(Vec::new());
        let resp = self.send(&format!("start the upload of {digest}"), post).await?;
        if resp.status() != StatusCode::ACCEPTED {
            return Err(
                self.err(format!("starting the upload of {digest} answered {}; nothing was tagged", resp.status()))
            );
        }
        let location = resp
            .headers()
            .get(LOCATION)
            .and_then(|l| l.to_str().ok())
            .ok_or_else(|| self.err("the upload answer has no Location"))?;
        let mut url =
            if location.starts_with("http") { location.to_owned() } else { format!("{}{location}", self.base) };
        // The Location may already carry a query string (docker-registry's _state).
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str("digest=");
        url.push_str(digest);
        let put = self
            .request(reqwest::Method::PUT, &url)
            .header(CONTENT_TYPE, "application/octet-stream")
            .body(bytes.to_vec());
        let resp = self.send(&format!("upload {digest}"), put).await?;
        if resp.status() != StatusCode::CREATED {
            return Err(self.err(format!("uploading {digest} answered {}; nothing was tagged", resp.status())));
        }
        Ok(())
    }

    /// The digest the tag points to now, if any.
    async fn tagged(&self, tag: &str) -> Result<Option<String>, ImageError> {
        self.manifest_digest(tag, &[oci::MANIFEST_MEDIA_TYPE]).await
    }

    /// The digest of the manifest `reference` (a tag or a digest) names, if the registry has it,
    /// in any of the manifest or index media types a runtime pulls.
    pub async fn exists(&self, reference: &str) -> Result<Option<String>, ImageError> {
        const PULLABLE: &[&str] = &[
            oci::MANIFEST_MEDIA_TYPE,
            "application/vnd.oci.image.index.v1+json",
            "application/vnd.docker.distribution.manifest.v2+json",
            "application/vnd.docker.distribution.manifest.list.v2+json",
        ];
        self.manifest_digest(reference, PULLABLE).await
    }

    async fn manifest_digest(&self, reference: &str, accept: &[&str]) -> Result<Option<String>, ImageError> {
        let url = format!("{}/v2/{}/manifests/{reference}", self.base, self.name);
        let req = self.request(reqwest::Method::HEAD, &url).header(reqwest::header::ACCEPT, accept.join(", "));
        let resp = self.send(&format!("look up {reference}"), req).await?;
        if !resp.status().is_success() {
            return Ok(None);
        }
        Ok(resp.headers().get("docker-content-digest").and_then(|d| d.to_str().ok()).map(str::to_owned))
    }

    /// Pushes the image under `tag`; returns the digest reference and what was uploaded.
    pub async fn push(&self, image: &Image, tag: &str) -> Result<PushReport, ImageError> {
        let mut report = PushReport {
            reference: format!("{}/{}@{}", self.host, self.name, image.manifest_digest),
            tag: tag.to_owned(),
            digest: image.manifest_digest.clone(),
            ..PushReport::default()
        };
        for (digest, bytes) in [(&image.layer_digest, &image.layer), (&image.config_digest, &image.config)] {
            if self.has_blob(digest).await? {
                report.blobs_skipped += 1;
                continue;
            }
            self.upload_blob(digest, bytes).await.map_err(|e| match e {
                ImageError::Registry { registry, message } if !message.contains("nothing was tagged") => {
                    ImageError::Registry { registry, message: format!("{message}; nothing was tagged") }
                }
                other => other,
            })?;
            report.blobs_uploaded += 1;
            report.bytes_uploaded += bytes.len() as u64;
        }
        // An immutable tag (ECR) cannot be written twice: when it already names this image, done.
        if self.tagged(tag).await?.as_deref() == Some(image.manifest_digest.as_str()) {
            return Ok(report);
        }
        let url = format!("{}/v2/{}/manifests/{tag}", self.base, self.name);
        let put = self
            .request(reqwest::Method::PUT, &url)
            .header(CONTENT_TYPE, oci::MANIFEST_MEDIA_TYPE)
            .body(image.manifest.clone());
        let resp = self.send(&format!("put the manifest under {tag}"), put).await?;
        if resp.status() != StatusCode::CREATED {
            let body = resp.text().await.unwrap_or_default();
            return Err(self.err(format!("putting the manifest under {tag} failed: {}", body.trim())));
        }
        if let Some(d) = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|d| d.to_str().ok())
            .filter(|d| *d != image.manifest_digest)
        {
            return Err(self.err(format!("stored the manifest as {d}, expected {}", image.manifest_digest)));
        }
        report.manifest_uploaded = true;
        report.bytes_uploaded += image.manifest.len() as u64;
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repositories() {
        assert_eq!(
            parse_repository("127.0.0.1:5005/konnichiwa").ok(),
            Some(("127.0.0.1:5005".into(), "konnichiwa".into()))
        );
        assert!(parse_repository("konnichiwa").is_err());
        assert!(parse_repository("host/Name").is_err());
        assert!(parse_repository("host/name:tag").is_err());
        assert!(
            is_loopback_host("127.0.0.1:5005")
                && is_loopback_host("localhost:5000")
                && !is_loopback_host("123.dkr.ecr.ap-northeast-1.amazonaws.com")
        );
    }
}
