//! Every script namespace registered into one engine.

use std::sync::Arc;

use rhai::Engine;

use super::{
    analysis, builtins, compliance, data, docker, git, guard, health, helm, kubectl, metrics, notify, process, report,
    ssh, terraform, traffic,
};
use crate::state::RunState;

pub fn register(engine: &mut Engine, state: &Arc<RunState>) {
    builtins::register(engine, state);
    process::register(engine, &state.services);
    guard::register(engine, state);
    report::register(engine, state);
    notify::register(engine, &state.services);
    data::register(engine, state);
    git::register(engine, &state.services);
    health::register(engine, &state.services);
    terraform::register(engine, &state.services);
    metrics::register(engine, &state.services);
    metrics::register_slo(engine, &state.services);
    traffic::register(engine, &state.services);
    ssh::register(engine, &state.services);
    docker::register(engine, &state.services);
    helm::register(engine, &state.services);
    kubectl::register(engine, &state.services);
    analysis::register(engine, &state.services);
    compliance::register(engine, &state.services);
}
