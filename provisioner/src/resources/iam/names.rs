//! The names of the stack's roles and the nouns of IAM's plan rows: what other kinds scope
//! their resources to (the secret's policy names its readers) and the deploy role's module uses,
//! without depending on the roles' kind.

use crate::reconcile::Noun;

/// The nouns of IAM's plan rows.
pub const BOUNDARY_KIND: Noun = Noun::new("iam-policy");
pub const ROLE_KIND: Noun = Noun::new("iam-role");
pub const PROFILE_KIND: Noun = Noun::new("instance-profile");

/// The instance, execution and task roles' names (adopted, or derived from the stack's).
pub fn roles(stack: &stack::Stack) -> (String, String, String) {
    let (adopted, name) = (&stack.adopted, &stack.name);
    (
        adopted.instance_role.clone().unwrap_or_else(|| format!("{name}-instance")),
        adopted.execution_role.clone().unwrap_or_else(|| format!("{name}-execution")),
        adopted.task_role.clone().unwrap_or_else(|| format!("{name}-task")),
    )
}

/// The instance profile that carries the instance role.
pub fn instance_profile(stack: &stack::Stack) -> String {
    stack.adopted.instance_profile.clone().unwrap_or_else(|| format!("{}-instance", stack.name))
}

/// The name of the role ECS assumes to move traffic between the target groups (a
/// `service.deployment.strategy` other than `rolling`).
pub fn load_balancer_role(stack: &stack::Stack) -> String {
    format!("{}-ecs-lb", stack.name)
}

/// Every role the IAM kind may own, whether the stack wants it now or not: what is read, torn
/// down and looked for after `down`.
pub fn all_roles(stack: &stack::Stack) -> Vec<String> {
    let (instance, execution, task) = roles(stack);
    vec![instance, execution, task, load_balancer_role(stack)]
}
