//! The declared model: what evaluating a playbook's top level produces.
//! Nothing here runs anything; the executor runs the model.

mod inputs;
pub mod literals;
mod options;
pub mod scan;
pub mod shadows;
mod top_level;

use rhai::{FnPtr, NativeCallContextStore, Position};

pub use inputs::{Inputs, ParamDecl};
pub use options::{parse_duration, StepOptions, STEP_OPTION_KEYS};
pub use top_level::{mutations as top_level_mutations, TopLevelMutation};

/// A phase as `phase(name, closure)` declared it.
#[derive(Clone)]
pub struct PhaseDecl {
    pub name: String,
    pub body: FnPtr,
    /// The calling context, kept so the closure still sees its imports.
    pub context: NativeCallContextStore,
    pub source: Option<String>,
    pub position: Position,
}

/// A closure to call later with a stored context: undo and `on_failure`.
#[derive(Clone)]
pub struct DeferredCall {
    pub body: FnPtr,
    pub context: NativeCallContextStore,
}

/// Everything the top level declared.
#[derive(Default, Clone)]
pub struct Model {
    pub phases: Vec<PhaseDecl>,
    pub params: Vec<ParamDecl>,
    pub secrets: Vec<String>,
    pub failure_handlers: Vec<DeferredCall>,
}

impl Model {
    pub fn phase_names(&self) -> Vec<String> {
        self.phases.iter().map(|p| p.name.clone()).collect()
    }
}
