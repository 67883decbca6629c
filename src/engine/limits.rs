//! Limits that keep a script from exhausting the runner.

pub const CALL_LEVELS: usize = 64;
pub const EXPR_DEPTH: usize = 128;
pub const FN_EXPR_DEPTH: usize = 64;
pub const STRING_SIZE: usize = 16 << 20;
pub const ARRAY_SIZE: usize = 1_000_000;
pub const MAP_SIZE: usize = 100_000;
pub const MODULES: usize = 256;
/// Stack of every thread that evaluates script code. Dropping a deeply
/// nested value (an array of arrays, a chain of closures) recurses once
/// per level inside Rhai, so a small stack turns hostile input into an
/// abort. This is address space: pages are committed only when used.
pub const SCRIPT_STACK: usize = 4 << 30;
/// The top level declares phases, params and secrets: it must end. A
/// `loop {}` there would hang `list`, `check` and `run` alike.
pub const TOP_LEVEL_OPERATIONS: u64 = 1_000_000;
/// A wall-clock bound beside the operation count: Rhai's size checks of
/// a large value take time between operations.
pub const TOP_LEVEL_TIME: std::time::Duration = std::time::Duration::from_secs(30);
