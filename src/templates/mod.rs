//! What `capstan new` and `terraform::scaffold` write: the service
//! templates (the files next to this one, included by `capstan new`) and
//! the Terraform layout.

pub mod terraform;
