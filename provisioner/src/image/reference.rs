//! An image reference as a task definition names it: a repository and the digest or tag that
//! pins it. The repository of an image built here exists only once `up` creates it, so it is an
//! `Id`: a plan shows it pending, and an AWS call takes only a known reference (`get`). An image
//! `up` will build has no digest in a plan: it is `Unbuilt`, with the digest of its sources.

use std::fmt;

use crate::error::Error;
use crate::reconcile::Id;

/// What pins an image within its repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pin {
    /// `@sha256:…`: one image, whatever the tags do later.
    Digest(String),
    /// `:TAG`.
    Tag(String),
    /// Neither (the registry's `latest`).
    Untagged,
    /// An image `up` builds from the sources: its digest is known once it is built.
    Unbuilt,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// `HOST/NAME`.
    pub repository: Id,
    pub pin: Pin,
    /// For an image built here, the digest of the sources it is built from
    /// (`image::sources::fingerprint`), which the task definition records.
    pub sources: Option<String>,
}

impl ImageRef {
    /// Reads `HOST/NAME@sha256:…`, `HOST/NAME:TAG` or `HOST/NAME` (a port in HOST is not a tag).
    pub fn parse(reference: &str) -> Self {
        let known = |r: &str| Id::Known(r.to_owned());
        if let Some((repository, digest)) = reference.split_once('@') {
            return Self { repository: known(repository), pin: Pin::Digest(digest.to_owned()), sources: None };
        }
        match reference.rsplit_once(':') {
            Some((repository, tag)) if !tag.contains('/') => {
                Self { repository: known(repository), pin: Pin::Tag(tag.to_owned()), sources: None }
            }
            _ => Self { repository: known(reference), pin: Pin::Untagged, sources: None },
        }
    }

    /// The image `up` builds from `sources` and pushes to `repository` (pending until created).
    pub fn unbuilt(repository: Id, sources: &str) -> Self {
        Self { repository, pin: Pin::Unbuilt, sources: Some(sources.to_owned()) }
    }

    /// This reference, recorded as built from `sources`.
    pub fn built_from(self, sources: &str) -> Self {
        Self { sources: Some(sources.to_owned()), ..self }
    }

    /// The image of a stack that has none deployed yet and was given none (what `status`
    /// shows before the first `up`): the first `up` decides it.
    pub fn first_deploy() -> Self {
        Self { repository: Id::Pending("the image the first `up` deploys".into()), pin: Pin::Untagged, sources: None }
    }

    /// The reference for an AWS call; one whose repository is pending, or that is not built
    /// yet, refuses.
    pub fn get(&self) -> Result<String, Error> {
        self.repository.get()?;
        if self.pin == Pin::Unbuilt {
            return Err(Error::NotYetKnown("the digest of the image built from the sources".into()));
        }
        Ok(self.to_string())
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.pin {
            Pin::Digest(d) => write!(f, "{}@{d}", self.repository),
            Pin::Tag(t) => write!(f, "{}:{t}", self.repository),
            Pin::Untagged => write!(f, "{}", self.repository),
            Pin::Unbuilt => write!(f, "{}@(the image `up` builds from the sources)", self.repository),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reference_reads_back_as_written_and_names_its_repository() {
        for (text, repository, pin) in [
            (
                "123456789012.dkr.ecr.ap-northeast-1.amazonaws.com/app@sha256:ab",
                "123456789012.dkr.ecr.ap-northeast-1.amazonaws.com/app",
                Pin::Digest("sha256:ab".into()),
            ),
            ("127.0.0.1:5000/app:v1", "127.0.0.1:5000/app", Pin::Tag("v1".into())),
            ("127.0.0.1:5000/app", "127.0.0.1:5000/app", Pin::Untagged),
            ("nginx", "nginx", Pin::Untagged),
        ] {
            let r = ImageRef::parse(text);
            assert_eq!((r.repository.known(), &r.pin), (Some(repository), &pin), "{text}");
            assert_eq!(r.to_string(), text);
            assert_eq!(r.get().expect("known"), text);
        }
    }

    #[test]
    fn an_image_for_a_repository_not_created_shows_pending_and_refuses_a_call() {
        let r = ImageRef::unbuilt(Id::Pending("repository konnichiwa".into()), "sha256:ab");
        assert_eq!(r.to_string(), "(repository konnichiwa, once created)@(the image `up` builds from the sources)");
        assert!(matches!(r.get(), Err(Error::NotYetKnown(_))));
        let r = ImageRef::unbuilt(Id::Known("127.0.0.1:5000/app".into()), "sha256:ab");
        assert!(matches!(r.get(), Err(Error::NotYetKnown(_))), "known repository, digest not yet");
        assert!(matches!(ImageRef::first_deploy().get(), Err(Error::NotYetKnown(_))));
    }
}
