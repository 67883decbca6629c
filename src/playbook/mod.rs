//! The declared model: what evaluating a playbook's top level produces,
//! and what `check` finds in a playbook ([`lint`]). Nothing here runs
//! anything; the executor runs the model.

mod inputs;
pub mod lint;
pub mod literals;
mod model;
mod options;
pub mod scan;
pub mod shadows;
mod top_level;
pub use inputs::{is_environment_param, Inputs, ParamDecl, ParamsError};
pub use options::{
    parse_duration, DurationError, PhaseOptions, StepOptionError, StepOptions, PHASE_OPTION_KEYS, STEP_OPTION_KEYS,
};
pub use top_level::{mutations as top_level_mutations, TopLevelMutation};

pub use model::{DeferredCall, Model, PhaseDecl};
