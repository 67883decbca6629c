//! The Rhai engine capstan runs playbooks on: built from `Engine::new_raw`
//! with explicit limits, strict variables, no `eval`, a sandboxed module
//! resolver, cancellation through `on_progress`, and every primitive.

mod build;
pub mod limits;
pub mod resolver;
pub mod stdlib;
pub use resolver::SandboxResolver;

pub use build::{bare, build, compile, compile_as_written};
