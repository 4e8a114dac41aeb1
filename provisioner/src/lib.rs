//! The provisioner as a library: the command line, the reconcile engine and the resource kinds,
//! so tests drive it in-process or as the binary the thin `main.rs` builds.

pub mod adopt;
pub mod adoption;
pub mod aws;
pub mod cli;
pub mod commands;
pub mod cost;
pub mod dns;
pub mod engine;
pub mod error;
pub mod fence;
pub mod image;
pub mod in_flight;
pub mod lease;
pub mod log_events;
pub mod meaning;
pub mod pacing;
pub mod progress;
pub mod read_replay;
pub mod reconcile;
pub mod resources;
pub mod rollout;
pub mod sandbox;
pub mod unreachable;
pub mod verify;
pub mod wait;

pub use error::Error;

/// Exit codes, documented in `--help` and the README.
pub mod exit {
    pub const OK: u8 = 0;
    pub const ERROR: u8 = 1;
    pub const CHANGES_PENDING: u8 = 2;
    /// The deployment failed, was rolled back, or did not complete in time.
    pub const DEPLOY_FAILED: u8 = 3;
    /// Stopped by Ctrl-C (`run-local`, `loadtest`), as shells report SIGINT.
    pub const INTERRUPTED: u8 = 130;
}
