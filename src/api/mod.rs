//! The script API. One file or folder per namespace; each has `register`.
//! Functions return values, raise errors and emit events through the
//! services handle; `registration` and `options` are how they are declared.

mod analysis;
mod builtins;
mod cluster;
mod compliance;
mod data;
mod docker;
pub mod effects;
mod fleet;
mod git;
pub mod guard;
mod health;
mod helm;
mod inventory;
mod kubectl;
mod metrics;
mod namespaces;
mod notify;
mod options;
mod process;
pub mod registration;
mod report;
mod ssh;
mod terraform;
mod tool;
mod traffic;
mod values;
pub use builtins::text;
pub use effects::{effect, Effect, MUTATING};
pub use notify::{post_json, NotifyError, PostOptions};

pub use namespaces::register;
