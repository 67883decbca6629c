//! Registering a native function with its parameter names and doc comment,
//! so `capstan doc` and the editor definitions come from one place.

use rhai::{Engine, FnNamespace, FuncRegistration, Module, RhaiNativeFunc, Variant};

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
