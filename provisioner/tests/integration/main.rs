//! The provisioner's integration tests, in one binary: each test file used to be a binary of its
//! own, and linking the AWS SDK a dozen times cost minutes of every cold run on two cores. Each
//! module is one subject; `cargo test -p provisioner --test integration -- MODULE::` runs one.
//!
//! They run the real `provisioner` binary against the moto AWS emulator (and a local registry)
//! that scripts/test starts on loopback; nothing here reaches a real AWS account.

mod common;

mod adopt;
mod attacker;
mod aws_behaviour;
mod cli_reference;
mod convergence;
mod cost;
mod deploy_role;
mod emulator;
mod environments;
mod first_contact;
mod https;
mod image;
mod json_shapes;
mod latency;
mod lease;
mod loadtest;
mod network;
mod operations;
mod platform;
mod posture;
mod run_local;
mod sandbox;
mod service;
mod strategies;
mod teardown;
mod verify;
mod workflow;
