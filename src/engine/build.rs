//! Building the sandboxed engine (limits, the module resolver, the
//! primitives, the top-level budget) and compiling a playbook.

use std::path::Path;
use std::sync::Arc;

use rhai::packages::{Package, StandardPackage};
use rhai::{Engine, AST};

use super::limits;
use super::resolver::SandboxResolver;
use crate::api;
use crate::api::registration::{docs, Api};
use crate::events::Level;
use crate::services::frame;
use crate::state::RunState;

thread_local! {
    /// This thread's script was told to stop and has not stopped yet.
    static STOPPING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// A configured engine with the primitives registered against `state`.
/// `root` is the playbook's folder: imports may not leave it.
pub fn build(state: &Arc<RunState>, root: &Path) -> Engine {
    let mut engine = bare();
    // Playbooks are compiled as written: the optimizer folds a map of
    // constants into one value and loses where each entry stands, which
    // `check` and `run` read (step options, durations, top-level calls)
    // before anything runs. One compile serves both; folding constants
    // gains a deploy script nothing measurable.
    engine.set_optimization_level(rhai::OptimizationLevel::None);
    let services = state.services.clone();
    engine.on_print({
        let services = services.clone();
        move |s| services.log(Level::Info, s)
    });
    engine.on_debug({
        let services = services.clone();
        move |s, _, _| services.log(Level::Debug, s)
    });
    let declaring = state.clone();
    engine.on_progress(move |ops| {
        // Checked every 256 operations, and at every operation once a stop
        // was asked for: Rhai drops a stop raised inside some calls (the
        // `to_string` of a `${...}` in a string), and a loop whose length
        // divides 256 would otherwise land there every time and never stop.
        if ops & 0xff != 0 && !STOPPING.get() {
            return None;
        }
        let stop = if declaring.is_declaring() && declaring.top_level_spent(ops) {
            Some(crate::cancel::Interrupt::TopLevelBudget)
        } else {
            frame::check(&services.cancel)
        };
        STOPPING.set(stop.is_some());
        stop.map(|i| crate::cancel::Stop::new(i).into())
    });
    let natives = api::register(&mut engine, state, root);
    engine.set_module_resolver(SandboxResolver::new(root).with_natives(natives));
    let folder = root.to_string_lossy().into_owned();
    Api::global(&mut engine, folder).func0(
        "playbook_dir",
        &["String"],
        docs! {
            /// The folder of the playbook being run, as given on the command line (`.` when run
            /// from it). Relative paths in primitives are resolved against the folder capstan was
            /// started from; join this to reach files that live next to the playbook.
            /// ```rhai
            /// let gates = yaml::parse(fs::read(`${playbook_dir()}/quality_gates.yaml`));
            /// ```
        },
        |folder| Ok(folder.clone()),
    );
    engine
}

/// The language with capstan's limits and nothing registered: what
/// `check` compiles with before the primitives are known.
pub fn bare() -> Engine {
    let mut engine = Engine::new_raw();
    engine.register_global_module(StandardPackage::new().as_shared_module());
    engine
        .set_max_call_levels(limits::CALL_LEVELS)
        .set_max_expr_depths(limits::EXPR_DEPTH, limits::FN_EXPR_DEPTH)
        .set_max_string_size(limits::STRING_SIZE)
        .set_max_array_size(limits::ARRAY_SIZE)
        .set_max_map_size(limits::MAP_SIZE)
        .set_max_modules(limits::MODULES)
        .set_strict_variables(true)
        .set_fail_on_invalid_map_property(true);
    engine.disable_symbol("eval");
    engine
}

/// Compile a playbook file; the AST's source is the path as given.
pub fn compile(engine: &Engine, path: &Path, text: &str) -> Result<AST, rhai::ParseError> {
    let mut ast = engine.compile(text)?;
    ast.set_source(path.to_string_lossy().as_ref());
    Ok(ast)
}

/// Compile a script as written, the optimizer off, for reading its
/// literals: the optimizer folds a map of constants into one value and
/// loses where each of its entries stands in the source.
pub fn compile_as_written(path: &Path, text: &str) -> Result<AST, rhai::ParseError> {
    let mut engine = bare();
    engine.set_optimization_level(rhai::OptimizationLevel::None).set_strict_variables(false);
    compile(&engine, path, text)
}
