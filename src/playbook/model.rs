//! The declared model evaluation fills: phases, steps' deferred calls, inputs.

use rhai::{FnPtr, NativeCallContextStore, Position};

use super::inputs::ParamDecl;
use super::options::PhaseOptions;

/// A phase as `phase(name, closure)` declared it.
#[derive(Clone)]
pub struct PhaseDecl {
    pub name: String,
    pub body: FnPtr,
    /// The calling context, kept so the closure still sees its imports.
    pub context: NativeCallContextStore,
    pub source: Option<String>,
    pub position: Position,
    pub options: PhaseOptions,
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
