//! Consumers of the event stream: the terminal (human and plain), JSON
//! lines on stdout, and the journal on disk; and the reports made from it.

mod event_line;
pub mod files;
pub mod format;
mod github;
pub mod html;
mod journal;
mod json;
pub mod junit;
pub mod otlp;
pub mod record;
mod terminal;

pub use github::Github;
pub use journal::{runs_dir, Journal};
pub use json::JsonLines;
pub use record::{Recorder, RunRecord};
pub use terminal::{Terminal, TerminalStyle};
