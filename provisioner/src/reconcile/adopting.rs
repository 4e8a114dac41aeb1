//! What a plan of `adopt` takes as the stack's although it does not carry the stack's tag yet:
//! the resources a Terraform state names, by id or ARN. Lookups ask `Owner` (the stack's tag, or
//! one of these ids without another stack's tag), and the network's kinds, which find their
//! resources by our `Name` tag, find the state's VPC, subnets, gateway and route table by id.
//! Empty in every other run: nothing untagged is ever taken as ours outside `adopt`'s plan.

use std::collections::BTreeSet;

use stack::OWNERSHIP_TAG;

/// The resources being taken over.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Adopting {
    /// Every id and ARN the state gives its resources.
    pub ids: BTreeSet<String>,
    /// The network's resources, which our kinds find by their `Name` tag.
    pub vpc: Option<String>,
    pub subnets: Vec<String>,
    pub internet_gateway: Option<String>,
    pub route_table: Option<String>,
}

impl Adopting {
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// Whose resources a run takes as its own.
#[derive(Debug, Clone, Copy)]
pub struct Owner<'a> {
    pub stack: &'a str,
    pub adopting: &'a Adopting,
}

impl Owner<'_> {
    /// Ours: it carries the stack's tag, or it is being adopted and carries no stack's tag.
    pub fn owns(&self, id: &str, tags: &[(String, String)]) -> bool {
        super::tags::owned_by(tags, self.stack)
            || (self.adopting.ids.contains(id) && !tags.iter().any(|(k, _)| k == OWNERSHIP_TAG))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_adopted_id_without_another_stacks_tag_counts_as_ours() {
        let adopting = Adopting { ids: ["vpc-1".to_owned()].into(), ..Adopting::default() };
        let owner = Owner { stack: "s", adopting: &adopting };
        let tag = |v: &str| vec![(OWNERSHIP_TAG.to_owned(), v.to_owned())];
        assert!(owner.owns("vpc-1", &[]));
        assert!(owner.owns("vpc-2", &tag("s")));
        assert!(!owner.owns("vpc-2", &[]), "untagged and not in the state");
        assert!(!owner.owns("vpc-1", &tag("other")), "another stack's, even if the state names it");
        let nobody = Owner { stack: "s", adopting: &Adopting::default() };
        assert!(!nobody.owns("vpc-1", &[]), "outside adopt's plan nothing untagged is ours");
    }
}
