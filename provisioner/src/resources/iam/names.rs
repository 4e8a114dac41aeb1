//! The names of the stack's three roles: what other kinds scope their resources to (the secret's
//! policy names its readers) without depending on the roles' kind.

/// The instance, execution and task roles' names.
pub fn roles(stack: &str) -> (String, String, String) {
    (format!("{stack}-instance"), format!("{stack}-execution"), format!("{stack}-task"))
}
