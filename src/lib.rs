//! capstan runs deployment playbooks written in Rhai.
//!
//! The pipeline, in the order a run goes through it:
//! [`cli`] parses the command line; [`engine`] builds the sandboxed Rhai
//! engine with the script [`api`]; evaluating the playbook's top level fills
//! the declared model ([`playbook`], held in [`state`]); the [`executor`]
//! runs the phases, steps, retries, timeouts and the undo stack; children
//! go through [`process`]; everything that happens is an [`events`] event,
//! masked by [`secrets`] and consumed by the [`report`] sinks;
//! [`diagnostics`] renders script errors; every command fails with one
//! [`error::Error`], rendered once in [`cli`]'s dispatch. [`session`] builds
//! what `run` and the REPL share (inputs, services, sinks, state, engine,
//! signals); [`launch`] is what every subcommand shares around a playbook;
//! [`replay`] is what a run keeps of its steps' values for `--resume`.
//! [`stats`] reads finished runs' journals back into delivery statistics.
//!
//! Leaves that every layer may name: [`exit`] codes, the [`failure`]
//! vocabulary, [`cancel`]lation reasons, the [`lock`] file, the [`templates`]
//! `capstan new` and `terraform::scaffold` write, the Ansible [`inventory`]
//! files `-i` and `inventory::load` read. A file never
//! imports one that imports it back (`tests/architecture.rs` checks it).

// rhai marks its `internals` APIs (NativeCallContextStore, the AST) as
// deprecated to say they are volatile; capstan pins rhai to an exact version.
#![allow(deprecated)]
// `print!` and `eprint!` panic when the stream is closed or full
// (`2>/dev/full`, `| head -1`); a deploy must go on, so text for the
// terminal goes through `errln!`/`err!` and data through `outln!`.
#![deny(clippy::print_stderr, clippy::print_stdout)]

/// `eprintln!` that drops the text when stderr is closed or full, instead
/// of panicking between a change and its undo.
#[macro_export]
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

/// `eprint!` that drops the text when stderr is closed or full.
#[macro_export]
macro_rules! err {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let mut stderr = std::io::stderr().lock();
        let _ = write!(stderr, $($arg)*);
        let _ = stderr.flush();
    }};
}

pub mod api;
pub mod cancel;
pub mod cli;
pub mod compliance;
pub mod diagnostics;
pub mod engine;
pub mod error;
pub mod events;
pub mod executor;
pub mod exit;
pub mod failure;
pub mod inventory;
pub mod launch;
pub mod lock;
pub mod playbook;
pub mod process;
pub mod repl;
pub mod replay;
pub mod report;
pub mod secrets;
pub mod services;
pub mod session;
pub mod state;
pub mod stats;
pub mod store;
pub mod templates;
