//! Coming from Terraform: reading a Terraform state (`tfstate`) and describing what it says runs
//! as a stack file (`stack_file`). `provisioner adopt` runs them.

pub mod stack_file;
pub mod tfstate;
