//! The command line: one file per subcommand. Each returns
//! `Result<(), Error>`; `dispatch.rs` renders the error, at the edge, and
//! exits with its code.

/// `println!` to the command's output (stdout, or `-o FILE`), which does not
/// panic when stdout is closed (`capstan doc | head`).
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(crate::launch::output(), $($arg)*);
    }};
}

pub mod args;
mod check;
mod ci;
mod compliance;
mod dispatch;
pub mod doc;
pub mod in_process;
mod list;
mod man;
mod new;
mod run;
mod runs;
mod stats;

pub use args::{Cli, Command, LogFormat, ReplArgs};
pub use dispatch::main;
pub use doc::function_doc;
