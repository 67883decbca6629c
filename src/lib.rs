//! capstan runs deployment playbooks written in Rhai.
//!
//! The pipeline, in the order a run goes through it:
//! [`cli`] parses the command line; [`engine`] builds the sandboxed Rhai
//! engine with the [`primitives`]; evaluating the playbook's top level fills
//! the declared model ([`playbook`], held in [`state`]); the [`executor`]
//! runs the phases, steps, retries, timeouts and the undo stack; children
//! go through [`process`]; everything that happens is an [`events`] event,
//! masked by [`secrets`] and consumed by the [`report`] sinks;
//! [`diagnostics`] renders errors.

// rhai marks its `internals` APIs (NativeCallContextStore, the AST) as
// deprecated to say they are volatile; capstan pins rhai to an exact version.
#![allow(deprecated)]

pub mod cli;
pub mod compliance;
pub mod diagnostics;
pub mod engine;
pub mod events;
pub mod executor;
pub mod playbook;
pub mod primitives;
pub mod process;
pub mod repl;
pub mod report;
pub mod secrets;
pub mod services;
pub mod state;
