//! Coming from Terraform: reading a Terraform state (`tfstate`) and describing what it says runs
//! as a stack file (`stack_file`), and what of it a stack takes over (`taken`). `provisioner adopt` runs them.

pub mod stack_file;
pub mod taken;
pub mod tfstate;
