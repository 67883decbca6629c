//! What a run keeps of its steps' values so a later run can resume it:
//! recording a value (masked, with secrets by name), and the plan a
//! `--resume` run follows (which steps replay, with what values).

pub mod record;
pub mod resume;
pub mod secret_ref;
