//! The names of the stack's roles and the nouns of IAM's plan rows: what other kinds scope
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

/// The name of the role ECS assumes to move traffic between the target groups (a
/// `service.deployment.strategy` other than `rolling`).
pub fn load_balancer_role(stack: &str) -> String {
    format!("{stack}-ecs-lb")
}

/// Every role the IAM kind may own, whether the stack wants it now or not: what is read, torn
/// down and looked for after `down`.
pub fn all_roles(stack: &str) -> Vec<String> {
    let (instance, execution, task) = roles(stack);
    vec![instance, execution, task, load_balancer_role(stack)]
}
