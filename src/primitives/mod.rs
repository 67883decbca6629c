//! The script API. One file per namespace; each has `register`. Primitives
//! return values, raise errors and emit events through the services handle.

mod analysis;
mod builtins;
mod compliance;
mod data;
mod docker;
mod effects;
mod git;
mod guard;
mod health;
mod kube;
mod metrics;
mod notify;
mod process;
mod report;
mod ssh;
mod terraform;
mod tool;
mod traffic;
mod values;

use std::sync::Arc;

use rhai::{Engine, FnNamespace, FuncRegistration, Module, RhaiNativeFunc, Variant};

pub use builtins::{sleep as sleep_for, text};
pub use effects::{effect, Effect, MUTATING};
pub use guard::{acquire as acquire_lock, take as take_lock, Holder, LockError, LockGuard};
pub use notify::{post_json, PostOptions};
pub(crate) use terraform::scaffold_files as terraform_scaffold_files;

use crate::state::RunState;

pub fn register(engine: &mut Engine, state: &Arc<RunState>) {
    builtins::register(engine, state);
    process::register(engine, state);
    guard::register(engine, state);
    report::register(engine, state);
    notify::register(engine, state);
    data::register(engine, state);
    git::register(engine, state);
    health::register(engine, state);
    terraform::register(engine, state);
    metrics::register(engine, state);
    metrics::register_slo(engine, state);
    traffic::register(engine, state);
    ssh::register(engine, state);
    docker::register(engine, state);
    kube::register(engine, state);
    analysis::register(engine, state);
    compliance::register(engine, state);
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

/// Like [`func`], for a function of a namespace module (`report::write`).
pub(crate) fn module_func<A: 'static, const N: usize, const X: bool, R, const F: bool, FUNC>(
    module: &mut Module,
    name: &str,
    params: &[&str],
    doc: &str,
    f: FUNC,
) where
    R: Variant + Clone,
    FUNC: RhaiNativeFunc<A, N, X, R, F> + Send + Sync + 'static,
{
    let comments: Vec<String> = doc.trim().lines().map(|l| format!("/// {l}").trim_end().to_string()).collect();
    FuncRegistration::new(name)
        .with_namespace(FnNamespace::Internal)
        .with_params_info(params)
        .with_comments(comments)
        .set_into_module_raw(module, FUNC::param_types(), at_call_site(f.into_rhai_function(true, false)));
}

/// A namespaced function whose errors point at the playbook line that
/// called it. Rhai fills in the call position for global functions but not
/// for qualified calls (`json::parse`), so their errors would carry no
/// `file:line:col` and GitHub annotations could not point at the line.
fn at_call_site(function: rhai::RhaiFunc) -> rhai::RhaiFunc {
    use rhai::{Dynamic, NativeCallContext, RhaiFunc, Shared};
    // rhai's `FnAny`, which it does not export.
    type Native = dyn Fn(Option<NativeCallContext>, &mut [&mut Dynamic]) -> Result<Dynamic, Box<rhai::EvalAltResult>>
        + Send
        + Sync;
    let wrap = |inner: Shared<Native>| -> Shared<Native> {
        Shared::new(move |ctx: Option<NativeCallContext>, args: &mut [&mut Dynamic]| {
            let at = ctx.as_ref().map(NativeCallContext::call_position);
            inner(ctx, args).map_err(|mut e| {
                if let Some(at) = at.filter(|_| e.position().is_none()) {
                    e.set_position(at);
                }
                e
            })
        })
    };
    match function {
        RhaiFunc::Pure { func, is_pure, is_volatile, .. } => {
            RhaiFunc::Pure { func: wrap(func), has_context: true, is_pure, is_volatile }
        }
        RhaiFunc::Method { func, is_pure, is_volatile, .. } => {
            RhaiFunc::Method { func: wrap(func), has_context: true, is_pure, is_volatile }
        }
        other => other,
    }
}
