//! One module per AWS resource kind, each with the same shape: observe by name + ownership tag,
//! a pure diff, and apply / teardown that are safe to repeat.

pub mod network;
