//! Registering the script API. [`Api`] adds one namespace's functions (or
//! the global ones) with their parameter names and `///` docs, so
//! `capstan doc`, the editor definitions and the REPL read one source; it
//! captures the namespace's handle once and, for a function that takes
//! options, registers both the plain and the trailing `#{...}` arity.

use rhai::{Engine, FnNamespace, FuncRegistration, Map, Module, NativeCallContext, RhaiNativeFunc, Variant};
use serde::de::DeserializeOwned;

use super::options;
use crate::failure::RhaiResultOf;

/// The text of the `///` lines it is given: `docs! { /// Runs it. }`. The
/// doc comments in the source are the script's reference.
macro_rules! docs {
    ($(#[doc = $line:literal])*) => {
        concat!($($line, "\n"),*)
    };
}
pub(crate) use docs;

/// Doc text (plain, or the `docs!` form with a space after each `///`) as
/// the `///` comment lines rhai's metadata keeps.
fn comments(doc: &str) -> Vec<String> {
    let from_comments = doc.lines().all(|l| l.is_empty() || l.starts_with(' '));
    let text: Vec<&str> =
        doc.lines().map(|l| if from_comments { l.strip_prefix(' ').unwrap_or(l) } else { l }).collect();
    let text = text.join("\n");
    text.trim().lines().map(|l| format!("/// {l}").trim_end().to_string()).collect()
}

/// The functions of one namespace (or the global ones), each given the
/// handle `S` the namespace works with.
pub struct Api<'e, S> {
    engine: &'e mut Engine,
    /// `None` for global functions (`run`, `step`).
    namespace: Option<(&'static str, Module)>,
    handle: S,
}

/// The parameter list with the trailing options map before the return type.
fn with_options(params: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = params.iter().map(ToString::to_string).collect();
    let at = out.len().saturating_sub(1);
    out.insert(at, "options: Map".into());
    out
}

macro_rules! arities {
    ($($plain:ident, $opts:ident, $only:ident, $ctx:ident: ($($arg:ident: $ty:ident),*);)*) => {$(
        /// A function of this arity, given the handle.
        pub fn $plain<$($ty,)* R>(
            &mut self,
            name: &str,
            params: &[&str],
            doc: &str,
            f: impl Fn(&S, $($ty),*) -> RhaiResultOf<R> + Send + Sync + 'static,
        ) -> &mut Self
        where
            $($ty: Variant + Clone,)*
            R: Variant + Clone,
        {
            let handle = self.handle.clone();
            self.register(name, params, doc, move |$($arg: $ty),*| f(&handle, $($arg),*))
        }

        /// A function of this arity taking options `O`, registered both
        /// without them (`O::default()`) and with a trailing `#{...}` map.
        pub fn $opts<$($ty,)* O, R>(
            &mut self,
            name: &str,
            params: &[&str],
            doc: &str,
            f: impl Fn(&S, $($ty,)* O) -> RhaiResultOf<R> + Send + Sync + 'static,
        ) -> &mut Self
        where
            $($ty: Variant + Clone,)*
            O: DeserializeOwned + Default + 'static,
            R: Variant + Clone,
        {
            let f = std::sync::Arc::new(f);
            let plain = f.clone();
            self.$plain(name, params, doc, move |handle: &S, $($arg: $ty),*| plain(handle, $($arg,)* O::default()));
            self.$only(name, params, doc, move |handle: &S, $($arg: $ty,)* options: O| f(handle, $($arg,)* options))
        }

        /// A function of this arity whose trailing options map is required
        /// (`kubectl::apply(path, #{})`), read as `O`.
        pub fn $only<$($ty,)* O, R>(
            &mut self,
            name: &str,
            params: &[&str],
            doc: &str,
            f: impl Fn(&S, $($ty,)* O) -> RhaiResultOf<R> + Send + Sync + 'static,
        ) -> &mut Self
        where
            $($ty: Variant + Clone,)*
            O: DeserializeOwned + 'static,
            R: Variant + Clone,
        {
            let (what, handle) = (self.qualified(name), self.handle.clone());
            let params = with_options(params);
            let params: Vec<&str> = params.iter().map(String::as_str).collect();
            self.register(name, &params, doc, move |$($arg: $ty,)* options: Map| {
                f(&handle, $($arg,)* options::read(&options, &what)?)
            })
        }

        /// A function of this arity that also gets the call's
        /// [`NativeCallContext`]: for what calls back into the script or
        /// keeps its context for later (`step`, `phase`, `parallel`).
        pub fn $ctx<$($ty,)* R>(
            &mut self,
            name: &str,
            params: &[&str],
            doc: &str,
            f: impl Fn(&S, &NativeCallContext, $($ty),*) -> RhaiResultOf<R> + Send + Sync + 'static,
        ) -> &mut Self
        where
            $($ty: Variant + Clone,)*
            R: Variant + Clone,
        {
            let handle = self.handle.clone();
            self.register(name, params, doc, move |ctx: NativeCallContext, $($arg: $ty),*| f(&handle, &ctx, $($arg),*))
        }
    )*};
}

impl<'e, S: Clone + Send + Sync + 'static> Api<'e, S> {
    /// Adds the namespace `name` (functions called as `name::f(..)`) with
    /// the functions `functions` registers, each given `handle`.
    /// Returns the module, for an `import` to name too.
    pub fn add_namespace(
        engine: &'e mut Engine,
        name: &'static str,
        handle: S,
        functions: impl FnOnce(&mut Self),
    ) -> rhai::Shared<Module> {
        let mut api = Self { engine, namespace: Some((name, Module::new())), handle };
        functions(&mut api);
        let (name, module) = api.namespace.unwrap_or((name, Module::new()));
        let module: rhai::Shared<Module> = module.into();
        api.engine.register_static_module(name, module.clone());
        module
    }

    /// Functions called without a namespace.
    pub fn global(engine: &'e mut Engine, handle: S) -> Self {
        Self { engine, namespace: None, handle }
    }

    /// The function as a script calls it, for messages: `git::sha`.
    fn qualified(&self, name: &str) -> String {
        match &self.namespace {
            Some((ns, _)) => format!("{ns}::{name}"),
            None => name.to_string(),
        }
    }

    /// Any native function, as is: a global one, or one of the namespace
    /// (`report::write`).
    pub fn register<A: 'static, const N: usize, const X: bool, R, const F: bool, FUNC>(
        &mut self,
        name: &str,
        params: &[&str],
        doc: &str,
        f: FUNC,
    ) -> &mut Self
    where
        R: Variant + Clone,
        FUNC: RhaiNativeFunc<A, N, X, R, F> + Send + Sync + 'static,
    {
        // `capstan doc` and the editor definitions read these comments.
        let registration = FuncRegistration::new(name).with_params_info(params).with_comments(comments(doc));
        match &mut self.namespace {
            Some((_, module)) => {
                registration.with_namespace(FnNamespace::Internal).set_into_module_raw(
                    module,
                    FUNC::param_types(),
                    at_call_site(f.into_rhai_function(true, false)),
                );
            }
            None => {
                registration.register_into_engine(self.engine, f);
            }
        }
        self
    }

    arities! {
        func0, opts0, opts_only0, ctx0: ();
        func1, opts1, opts_only1, ctx1: (a: A);
        func2, opts2, opts_only2, ctx2: (a: A, b: B);
        func3, opts3, opts_only3, ctx3: (a: A, b: B, c: C);
    }
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
