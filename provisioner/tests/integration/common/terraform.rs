//! A stack as Terraform would have left it, for the `adopt` tests: `disown` takes our marks off a
//! stack `up` made (the `konnichiwa:*` tags, our EC2 `Name`s), and `state` writes the Terraform
//! state (format version 4) that describes what AWS then holds, in the shape Terraform 1.x and
//! the AWS provider 5 write it (tests/fixtures/terraform/konnichiwa.tfstate).

mod compute;
mod disown;
mod iam;
mod listings;
mod load_balancer;
mod network;
mod service;
mod state;

pub use disown::disown;
pub use state::{PLACEHOLDER, state};
