//! `capstan doc`: the script API from the registered functions' metadata.

use std::fmt::Write as _;

use serde::Deserialize;

use super::args::DocArgs;
use crate::error::Error;
use crate::session::inspection;

#[derive(Deserialize)]
struct Metadata {
    #[serde(default)]
    functions: Vec<Function>,
    /// Namespaces (`helm::`, `terraform::`...) and their functions.
    #[serde(default)]
    modules: std::collections::BTreeMap<String, Metadata>,
}

impl Metadata {
    /// Every function, namespaced ones named `ns::name`.
    fn flatten(self, prefix: &str, out: &mut Vec<Function>) {
        for mut f in self.functions {
            if !prefix.is_empty() {
                f.name = format!("{prefix}::{}", f.name);
            }
            out.push(f);
        }
        for (name, m) in self.modules {
            let p = if prefix.is_empty() { name } else { format!("{prefix}::{name}") };
            m.flatten(&p, out);
        }
    }
}

#[derive(Deserialize, serde::Serialize, Clone)]
#[serde(rename_all = "camelCase")]
struct Function {
    name: String,
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    params: Vec<Param>,
    #[serde(default)]
    return_type: Option<String>,
    #[serde(default)]
    doc_comments: Vec<String>,
    /// What a call does to the world (`read-only`, `mutating`...): what
    /// `--dry-run` skips and the top level refuses. Absent for the bundled
    /// modules' functions, whose effect is that of the closures they call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    effect: Option<String>,
}

#[derive(Deserialize, serde::Serialize, Clone)]
struct Param {
    #[serde(default)]
    name: Option<String>,
    #[serde(default, rename = "type")]
    typ: Option<String>,
}

impl Function {
    fn signature(&self) -> String {
        let params: Vec<String> = self
            .params
            .iter()
            .map(|p| match (&p.name, &p.typ) {
                (Some(n), Some(t)) if t != "?" => format!("{n}: {t}"),
                (Some(n), _) => n.clone(),
                (None, Some(t)) => t.clone(),
                (None, None) => "_".into(),
            })
            .collect();
        let ret = self
            .return_type
            .as_deref()
            .filter(|r| !r.is_empty() && *r != "()")
            .map(|r| format!(" -> {r}"))
            .unwrap_or_default();
        format!("{}({}){ret}", self.name, params.join(", "))
    }

    fn doc_lines(&self) -> Vec<String> {
        self.doc_comments
            .iter()
            .flat_map(|c| {
                c.lines()
                    .map(|l| {
                        l.trim_start_matches("///").strip_prefix(' ').unwrap_or(l.trim_start_matches("///")).to_string()
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

/// The namespace of a flattened name: `fs` for `fs::read`, empty for `step`.
fn namespace_of(name: &str) -> &str {
    name.rsplit_once("::").map_or("", |(ns, _)| ns)
}

/// The reference as Markdown: top-level functions first, then one section per
/// namespace; overloads share one entry with every signature.
fn markdown(functions: &[Function]) -> String {
    let mut groups: std::collections::BTreeMap<&str, Vec<&Function>> = std::collections::BTreeMap::new();
    for f in functions {
        groups.entry(namespace_of(&f.name)).or_default().push(f);
    }
    let mut out = String::from(
        "# capstan script API\n\nEvery function a playbook can call, with its signature and documentation.\n\
         `capstan doc NAME` shows one in the terminal; `capstan doc --definitions DIR` writes\n\
         editor definition files.\n\n",
    );
    let title = |ns: &str| if ns.is_empty() { "Top-level functions".to_string() } else { format!("{ns}::") };
    let anchor = |ns: &str| if ns.is_empty() { "top-level-functions".to_string() } else { ns.to_string() };
    for ns in groups.keys() {
        let _ = writeln!(out, "- [{}](#{})", title(ns), anchor(ns));
    }
    // The BTreeMap puts the empty namespace (top-level functions) first.
    for (ns, list) in &groups {
        let _ = write!(out, "\n## {}\n", title(ns));
        if let Some(import) = bundled_import(ns) {
            let _ = write!(out, "\nA bundled module: `{import}`\n");
        }
        let mut i = 0;
        while i < list.len() {
            let name = &list[i].name;
            let overloads: Vec<&&Function> = list[i..].iter().take_while(|f| &f.name == name).collect();
            i += overloads.len();
            let _ = write!(out, "\n### `{name}`\n\n```rhai\n");
            for f in &overloads {
                let _ = writeln!(out, "{}", f.signature());
            }
            out.push_str("```\n");
            let mut shown: Vec<Vec<String>> = Vec::new();
            for f in &overloads {
                let lines = f.doc_lines();
                if lines.is_empty() || shown.contains(&lines) {
                    continue;
                }
                out.push('\n');
                for l in &lines {
                    let _ = writeln!(out, "{l}");
                }
                shown.push(lines);
            }
        }
    }
    out
}

/// The engine the reference is read from: every primitive, and the bundled
/// modules (`capstan/canary`...) as the namespaces they are usually imported
/// as, so their documented functions are in the reference and the editor
/// definitions too.
fn reference_engine() -> rhai::Engine {
    let (_state, mut engine) = inspection(std::path::Path::new("."), crate::state::TopLevelBudget::default());
    for (path, source) in crate::engine::stdlib::MODULES {
        let alias = path.rsplit('/').next().unwrap_or(path);
        // The module's exported functions, without the closures it defines.
        match engine.compile(*source) {
            Ok(ast) => {
                let mut module = rhai::Module::new();
                let exported =
                    ast.iter_fn_def().filter(|f| f.access != rhai::FnAccess::Private && !f.name.starts_with("anon$"));
                for f in exported {
                    module.set_script_fn(f.clone());
                }
                engine.register_static_module(alias, module.into());
            }
            Err(e) => tracing::warn!("bundled module {path} left out of the reference: {e}"),
        }
    }
    engine
}

/// `import "capstan/NAME" as NAME;` for a bundled module's namespace.
fn bundled_import(ns: &str) -> Option<String> {
    let path = format!("capstan/{ns}");
    crate::engine::stdlib::source(&path).map(|_| format!("import \"{path}\" as {ns};"))
}

pub fn doc(args: &DocArgs) -> Result<(), Error> {
    let engine = reference_engine();
    if let Some(dir) = &args.definitions {
        if let Err(e) = std::fs::create_dir_all(dir)
            .and_then(|()| engine.definitions().with_headers(true).include_standard_packages(false).write_to_dir(dir))
        {
            return Err(Error::io("cannot write definitions to", dir.clone(), e));
        }
        crate::errln!("wrote editor definitions to {}", dir.display());
        return Ok(());
    }
    let json = engine
        .gen_fn_metadata_to_json(false)
        .map_err(|e| Error::usage(format!("cannot read the API metadata: {e}")))?;
    let meta: Metadata =
        serde_json::from_str(&json).map_err(|e| Error::usage(format!("cannot read the API metadata: {e}")))?;
    let mut all = Vec::new();
    meta.flatten("", &mut all);
    let mut functions: Vec<Function> = all.into_iter().filter(|f| !f.doc_comments.is_empty()).collect();
    // By name, then signature: rhai lists overloads in hash order, which
    // changes from run to run.
    functions.sort_by_cached_key(|f| (f.name.clone(), f.signature()));
    for f in &mut functions {
        if bundled_import(namespace_of(&f.name)).is_none() {
            f.effect = Some(crate::api::effects::effect(&f.name).describe());
        }
    }
    if let Some(name) = &args.name {
        // A namespace's name shows its functions too: `doc inventory`.
        functions.retain(|f| &f.name == name || namespace_of(&f.name) == name);
        if functions.is_empty() {
            return Err(Error::usage_with_hint(
                format!("no function named `{name}`"),
                "`capstan doc` lists every function",
            ));
        }
    }
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&functions).unwrap_or_default());
        return Ok(());
    }
    if args.markdown {
        outln!("{}", markdown(&functions));
        return Ok(());
    }
    for f in &functions {
        outln!("{}", console::style(f.signature()).bold());
        let lines = f.doc_lines();
        if args.name.is_some() {
            for l in &lines {
                outln!("    {l}");
            }
            outln!();
        } else if let Some(first) = lines.first() {
            outln!("    {first}");
        }
    }
    Ok(())
}

/// One function's signatures and documentation, as `capstan doc NAME`
/// prints it (the REPL's `:doc NAME`); `None` if no function has that name.
pub fn function_doc(name: &str) -> Option<String> {
    let engine = reference_engine();
    let meta: Metadata = serde_json::from_str(&engine.gen_fn_metadata_to_json(false).ok()?).ok()?;
    let mut all = Vec::new();
    meta.flatten("", &mut all);
    let mut text = String::new();
    for f in all.iter().filter(|f| f.name == name) {
        text.push_str(&f.signature());
        text.push('\n');
        for l in f.doc_lines() {
            text.push_str("    ");
            text.push_str(&l);
            text.push('\n');
        }
    }
    (!text.is_empty()).then(|| text.trim_end().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The list of mutating primitives names only functions that exist, so
    /// a renamed primitive cannot drop out of it unnoticed.
    #[test]
    fn every_mutating_primitive_is_registered() {
        let meta: Metadata = serde_json::from_str(&reference_engine().gen_fn_metadata_to_json(false).unwrap()).unwrap();
        let mut all = Vec::new();
        meta.flatten("", &mut all);
        for (name, _) in crate::api::effects::MUTATING {
            assert!(all.iter().any(|f| f.name == *name), "{name} is listed as mutating but not registered");
        }
    }
}
