//! The script API. One file per namespace; each has `register`. Primitives
//! return values, raise errors and emit events through the services handle.

mod analysis;
mod builtins;
mod compliance;
mod data;
mod docker;
pub mod effects;
mod git;
pub mod guard;
mod health;
mod kube;
mod metrics;
mod notify;
mod process;
pub mod registration;
mod report;
mod ssh;
mod terraform;
mod tool;
mod traffic;
mod values;

use std::sync::Arc;

use rhai::Engine;

pub use builtins::text;
pub use effects::{effect, Effect, MUTATING};

pub use notify::{post_json, PostOptions};
pub(crate) use terraform::scaffold_files as terraform_scaffold_files;

use crate::state::RunState;

pub fn register(engine: &mut Engine, state: &Arc<RunState>) {
    builtins::register(engine, state);
    process::register(engine, state);
    guard::register(engine, state);
    report::register(engine, state);
    notify::register(engine, state);
    data::register(engine, state);
    git::register(engine, state);
    health::register(engine, state);
    terraform::register(engine, state);
    metrics::register(engine, state);
    metrics::register_slo(engine, state);
    traffic::register(engine, state);
    ssh::register(engine, state);
    docker::register(engine, state);
    kube::register(engine, state);
    analysis::register(engine, state);
    compliance::register(engine, state);
}
