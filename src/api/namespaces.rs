//! Every script namespace registered into one engine.

use std::path::Path;
use std::sync::Arc;

use rhai::Engine;

use super::registration::Api;
use super::{
    analysis, builtins, compliance, data, docker, fleet, git, guard, health, helm, inventory, kubectl, metrics, notify,
    process, report, ssh, terraform, traffic,
};
use crate::services::Services;
use crate::state::RunState;

/// Adds a namespace's functions to the namespace it is given.
type Functions = fn(&mut Api<'_, Arc<Services>>);

/// The namespaces whose functions work with the run's services: one list,
/// so every namespace is opened and added to the engine the same way.
const WITH_SERVICES: &[(&str, Functions)] = &[
    ("notify", notify::register),
    ("git", git::register),
    ("health", health::register),
    ("terraform", terraform::register),
    ("metrics", metrics::register),
    ("slo", metrics::register_slo),
    ("traffic", traffic::register),
    ("ssh", ssh::register),
    ("docker", docker::register),
    ("helm", helm::register),
    ("kubectl", kubectl::register),
    ("analysis", analysis::register),
    ("compliance", compliance::register),
];

/// Registers everything; returns the native modules that bundled imports
/// name (`capstan/fleet`), for the module resolver. `root` is the
/// playbook's folder, where the files a playbook names are read from.
pub fn register(
    engine: &mut Engine,
    state: &Arc<RunState>,
    root: &Path,
) -> Vec<(&'static str, rhai::Shared<rhai::Module>)> {
    builtins::register(engine, state);
    process::register(engine, &state.services);
    guard::register(engine, state);
    report::register(engine, state);
    data::register(engine, state);
    inventory::register(engine, state, root);
    let fleet = fleet::register(engine, state);
    for (name, functions) in WITH_SERVICES {
        Api::add_namespace(engine, name, state.services.clone(), functions);
    }
    vec![("capstan/fleet", fleet)]
}
