//! One module per AWS resource kind, each with the same shape: observe by name + ownership tag,
//! a pure diff, and apply / teardown that are safe to repeat.

pub mod alarms;
pub mod alias;
pub mod budget;
pub mod capacity;
pub mod certificate;
pub mod ci_role;
pub mod cluster;
pub mod ecr;
pub mod iam;
pub mod load_balancer;
pub mod loadtest;
pub mod log_bucket;
pub mod logs;
pub mod network;
pub mod secret;
pub mod service;
pub mod topic;

/// Every kind, in teardown order (what depends on others goes first): the one list the engine
/// builds `up`'s graph from (`engine::graph`; its plan lists ties in the reverse of this order)
/// and walks for `down`, its sweep and the deploy role's permissions (`engine::walk`).
pub const KINDS: &[crate::reconcile::kind::Kind] = &[
    service::KIND,
    alarms::KIND,
    budget::KIND,
    topic::KIND,
    alias::KIND,
    load_balancer::KIND,
    certificate::KIND,
    log_bucket::KIND,
    capacity::KIND,
    loadtest::KIND,
    cluster::KIND,
    logs::KIND,
    ecr::KIND,
    secret::KIND,
    iam::KIND,
    network::KIND,
];

/// The repository's example stack, for unit tests of the diffs.
#[cfg(test)]
pub fn test_stack() -> stack::Stack {
    stack::Stack::load(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../stack.yaml")).expect("example stack")
}
