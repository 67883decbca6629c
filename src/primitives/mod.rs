//! The script API. One file per namespace; each has `register`. Primitives
//! return values, raise errors and emit events through the services handle.

mod builtins;
mod errors;
mod process;

use std::sync::Arc;

use rhai::{Engine, FuncRegistration, RhaiNativeFunc, Variant};

pub use builtins::{sleep as sleep_for, text};
pub use errors::{error_hint, error_kind, error_message, failure, failure_with_hint, innermost, terminated, Failure};

use crate::state::RunState;

pub type RhaiResultOf<T> = Result<T, Box<rhai::EvalAltResult>>;

pub fn register(engine: &mut Engine, state: &Arc<RunState>) {
    builtins::register(engine, state);
    process::register(engine, state);
}

/// Registers a documented function: `capstan doc` and the editor
/// definitions read these comments.
pub(crate) fn func<A: 'static, const N: usize, const X: bool, R, const F: bool, FUNC>(
    engine: &mut Engine,
    name: &str,
    params: &[&str],
    doc: &str,
    f: FUNC,
) where
    R: Variant + Clone,
    FUNC: RhaiNativeFunc<A, N, X, R, F> + Send + Sync + 'static,
{
    let comments: Vec<String> = doc.trim().lines().map(|l| format!("/// {l}").trim_end().to_string()).collect();
    FuncRegistration::new(name).with_params_info(params).with_comments(comments).register_into_engine(engine, f);
}
