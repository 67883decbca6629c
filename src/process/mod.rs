//! Spawning children: one way for every primitive. Each child leads its own
//! process group and carries a tree tag (see [`tree`]) so a timeout, a
//! failed step or Ctrl-C kills the whole tree, whatever session its
//! descendants moved to;
//! stdout and stderr are streamed line by line into `output` events while
//! the child runs, and memory keeps only a bounded tail.

mod command;
mod lines;
pub mod observer;
pub mod reaper;
mod spawn;
mod ssh_mux;
pub mod tree;

pub use command::{quote, CommandSpec, Outcome, ProcessError, DEFAULT_CAPTURE};
pub use lines::{LineSplitter, Tail};
pub use spawn::{ensure_standard_fds, execute};
pub use ssh_mux::{execute_via_master, Remote};
pub use tree::Tree;
