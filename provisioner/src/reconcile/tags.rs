//! Ownership and tags: every resource carries `Name`, `konnichiwa:stack = <stack>` and the
//! stack's tags from its create call; lookups pick the resource that carries our tag, refuse one
//! that has our name but not our tag, and report tags that drifted.

use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
use stack::{OWNERSHIP_TAG, Stack};

use crate::error::Error;
use crate::reconcile::FieldDiff;
use crate::reconcile::adopting::Owner;

/// Name + ownership + the stack's tags, as key/value pairs.
pub fn desired(stack: &Stack, name: &str) -> Vec<(String, String)> {
    let mut tags = vec![("Name".to_owned(), name.to_owned())];
    tags.extend(stack.resource_tags());
    tags
}

pub fn ec2_tags(pairs: &[(String, String)]) -> Vec<Tag> {
    pairs.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()
}

/// The stack's tags as ECS takes them (clusters, capacity providers, services, task definitions
/// and tasks, in their create calls).
pub fn ecs(stack: &Stack) -> Vec<aws_sdk_ecs::types::Tag> {
    ecs_tags(&stack.resource_tags())
}

/// Key/value pairs as ECS takes them.
pub fn ecs_tags(pairs: &[(String, String)]) -> Vec<aws_sdk_ecs::types::Tag> {
    pairs.iter().map(|(k, v)| aws_sdk_ecs::types::Tag::builder().key(k).value(v).build()).collect()
}

/// ECS tags as pairs.
pub fn ecs_pairs(tags: &[aws_sdk_ecs::types::Tag]) -> Vec<(String, String)> {
    tags.iter().map(|t| (t.key().unwrap_or_default().to_owned(), t.value().unwrap_or_default().to_owned())).collect()
}

/// The TagSpecifications that tag a resource in its create call.
pub fn ec2_spec(resource: ResourceType, stack: &Stack, name: &str) -> TagSpecification {
    TagSpecification::builder().resource_type(resource).set_tags(Some(ec2_tags(&desired(stack, name)))).build()
}

/// EC2 tags as pairs.
pub fn pairs(tags: &[Tag]) -> Vec<(String, String)> {
    tags.iter().map(|t| (t.key().unwrap_or_default().to_owned(), t.value().unwrap_or_default().to_owned())).collect()
}

pub fn owned_by(tags: &[(String, String)], stack: &str) -> bool {
    tags.iter().any(|(k, v)| k == OWNERSHIP_TAG && v == stack)
}

/// Desired tags that are missing or different (tags others added are left alone).
pub fn diff(desired: &[(String, String)], actual: &[(String, String)]) -> Vec<FieldDiff> {
    desired
        .iter()
        .filter_map(|(k, v)| {
            let have = actual.iter().find(|(ak, _)| ak == k).map(|(_, av)| av.clone());
            (have.as_deref() != Some(v.as_str())).then(|| FieldDiff::new(format!("tags.{k}"), have, Some(v.clone())))
        })
        .collect()
}

/// Of the resources found under our name, those that are ours; refuses when only foreign ones
/// (our name, not our tag) are there.
pub fn owned<T>(
    kind: &'static str,
    name: &str,
    owner: &Owner,
    found: Vec<T>,
    id_of: impl Fn(&T) -> String,
    tags_of: impl Fn(&T) -> Vec<(String, String)>,
) -> Result<Vec<T>, Error> {
    let stack = owner.stack;
    let (ours, foreign): (Vec<T>, Vec<T>) = found.into_iter().partition(|r| owner.owns(&id_of(r), &tags_of(r)));
    if let (true, Some(f)) = (ours.is_empty(), foreign.first()) {
        let owner = tags_of(f).into_iter().find(|(k, _)| k == stack::OWNERSHIP_TAG).map(|(_, v)| v);
        return Err(Error::Foreign { kind, name: name.to_owned(), id: id_of(f), stack: stack.to_owned(), owner });
    }
    Ok(ours)
}

/// Of the resources found under a name AWS keeps unique, the one that is ours; refuses a foreign
/// one (our name, not our tag).
pub fn pick_owned<T>(
    kind: &'static str,
    name: &str,
    owner: &Owner,
    found: Vec<T>,
    id_of: impl Fn(&T) -> String,
    tags_of: impl Fn(&T) -> Vec<(String, String)>,
) -> Result<Option<T>, Error> {
    let mut ours = owned(kind, name, owner, found, &id_of, tags_of)?;
    if ours.len() > 1 {
        let ids: Vec<String> = ours.iter().map(&id_of).collect();
        return Err(Error::Refused(format!(
            "{} {kind}s named {name} carry this stack's tag ({}), where AWS allows one name once: delete all but one",
            ids.len(),
            ids.join(", ")
        )));
    }
    Ok(ours.pop())
}

/// An idempotency token derived from what a call means to do (stack, resource, settings): a
/// retry of the same intent — by the SDK after a lost answer, or by the next run after a killed
/// one — sends the same token, so AWS carries the call out once. 36 characters, UUID-shaped,
/// which every API's token field takes (ECS allows 36, Secrets Manager wants 32–64).
pub fn idempotency_token(parts: &[&str]) -> String {
    let digest = crate::image::digest(parts.join("\u{1f}").as_bytes());
    let hex = digest.trim_start_matches("sha256:");
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::adopting::Adopting;

    fn t(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn tag_diff_ignores_foreign_tags_and_order() {
        let want = t(&[("Name", "a"), ("konnichiwa:stack", "s"), ("project", "p")]);
        let have = t(&[("owner", "ops"), ("project", "p"), ("konnichiwa:stack", "s"), ("Name", "a")]);
        assert!(diff(&want, &have).is_empty());
        let drifted = t(&[("Name", "a"), ("project", "q")]);
        let d = diff(&want, &drifted);
        assert_eq!(d.len(), 2);
        assert_eq!(d[0], FieldDiff::new("tags.konnichiwa:stack", None, Some("s".into())));
        assert_eq!(d[1], FieldDiff::new("tags.project", Some("q".into()), Some("p".into())));
    }

    #[test]
    fn picks_ours_refuses_foreign_and_duplicates() {
        let ours = ("vpc-1".to_owned(), t(&[("konnichiwa:stack", "s")]));
        let other_stack = ("vpc-2".to_owned(), t(&[("konnichiwa:stack", "other")]));
        let untagged = ("vpc-3".to_owned(), t(&[]));
        let nothing = Adopting::default();
        let owner = Owner { stack: "s", adopting: &nothing };
        let pick = |found: Vec<(String, Vec<(String, String)>)>| {
            pick_owned("vpc", "s-vpc", &owner, found, |r| r.0.clone(), |r| r.1.clone())
        };
        assert_eq!(pick(vec![untagged.clone(), ours.clone()]).expect("ok").map(|r| r.0), Some("vpc-1".into()));
        assert!(pick(vec![]).expect("ok").is_none());
        let e = pick(vec![other_stack]).expect_err("foreign");
        assert!(e.to_string().contains("vpc-2") && e.to_string().contains("left untouched"), "{e}");
        let e = pick(vec![ours.clone(), ours.clone()]).expect_err("duplicate");
        assert!(e.to_string().contains("2 vpcs named s-vpc"), "{e}");
        let all =
            owned("vpc", "s-vpc", &owner, vec![ours.clone(), ours, untagged.clone()], |r| r.0.clone(), |r| r.1.clone());
        assert_eq!(all.expect("ok").len(), 2, "duplicates of ours are returned for repair");
        // While `adopt` plans, the state's untagged resource is ours; one of another stack is not.
        let adopting = Adopting { ids: ["vpc-3".to_owned(), "vpc-2".to_owned()].into(), ..Adopting::default() };
        let adopter = Owner { stack: "s", adopting: &adopting };
        let taken = pick_owned("vpc", "s-vpc", &adopter, vec![untagged], |r| r.0.clone(), |r| r.1.clone());
        assert_eq!(taken.expect("ok").map(|r| r.0), Some("vpc-3".into()));
        let other = ("vpc-2".to_owned(), t(&[("konnichiwa:stack", "other")]));
        assert!(pick_owned("vpc", "s-vpc", &adopter, vec![other], |r| r.0.clone(), |r| r.1.clone()).is_err());
    }

    #[test]
    fn tokens_are_stable_per_intent() {
        let a = idempotency_token(&["s", "service", "td:3"]);
        assert_eq!(a.len(), 36);
        assert_eq!(a, idempotency_token(&["s", "service", "td:3"]));
        assert_ne!(a, idempotency_token(&["s", "service", "td:4"]));
        assert_ne!(idempotency_token(&["ab", "c"]), idempotency_token(&["a", "bc"]));
    }
}
