//! Runs the declared model: phases in order, the abort path (undo stack,
//! then `on_failure`), the run's timeout, and the exit code.

pub mod classify;
pub mod fleet;
pub mod parallel;
mod phases;
pub mod step;
mod undo;

pub use phases::{
    cleanup_deadline, declare, run, run_phases, select, select_names, stop_leftovers, Outcome, Selection,
    SelectionError,
};
