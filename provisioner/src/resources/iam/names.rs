//! The names of the stack's three roles and the nouns of IAM's plan rows: what other kinds scope
//! their resources to (the secret's policy names its readers) and the deploy role's module uses,
//! without depending on the roles' kind.

use crate::reconcile::Noun;

/// The nouns of IAM's plan rows.
pub const BOUNDARY_KIND: Noun = Noun::new("iam-policy");
pub const ROLE_KIND: Noun = Noun::new("iam-role");
pub const PROFILE_KIND: Noun = Noun::new("instance-profile");

/// The instance, execution and task roles' names.
pub fn roles(stack: &str) -> (String, String, String) {
    (format!("{stack}-instance"), format!("{stack}-execution"), format!("{stack}-task"))
}
