//! Exit codes, as SPEC §2 fixes them.

pub const OK: i32 = 0;
pub const FAILED: i32 = 1;
pub const USAGE: i32 = 2;
pub const BLOCKED: i32 = 3;
pub const UNDO_FAILED: i32 = 4;
pub const INTERRUPTED: i32 = 130;
