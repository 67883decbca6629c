//! `capstan repl`: an interactive session with every primitive loaded.
//!
//! The session is one run: commands typed at the prompt run as steps of a
//! `repl` phase and `:run PHASE` runs the loaded playbook's phases, all in
//! one journal (`capstan runs show`). Ctrl-C cancels the running command,
//! killing its children, and keeps the session.

mod console;
mod editor;
mod session;
pub(crate) mod view;

pub use console::repl;
