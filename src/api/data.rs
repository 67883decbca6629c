//! `fs::`, `json::` and `yaml::`: files and data formats for playbooks.
//! Reads run in dry-run; writes are decided by the one dry-run decision.

use std::path::Path;
use std::sync::Arc;

use rhai::{Array, Dynamic, Engine, ImmutableString as Str, Map};
use serde::Serialize;

use super::registration::{docs, Api};
use super::values::to_map;
use crate::failure::{failure, failure_with_hint, FailureKind, RhaiResultOf};
use crate::services::Action;
use crate::state::RunState;

pub fn register(engine: &mut Engine, state: &Arc<RunState>) {
    Api::add_namespace(engine, "fs", state.clone(), fs);
    Api::add_namespace(engine, "json", (), json);
    Api::add_namespace(engine, "yaml", (), yaml);
}

fn io_error(what: &str, path: &str, e: &std::io::Error) -> Box<rhai::EvalAltResult> {
    failure_with_hint(FailureKind::Fail, format!("{what} {path}: {e}"), "check the path and its permissions")
}

/// What `fs::write` returns.
#[derive(Serialize)]
struct Written<'a> {
    path: &'a str,
    bytes: i64,
    dry_run: bool,
}

/// `fs::` keeps the run state: its temporary folders live until the run ends.
fn fs(api: &mut Api<'_, Arc<RunState>>) {
    api.func1(
        "exists",
        &["path: &str", "bool"],
        docs! {
            /// True when the file or folder exists.
            /// ```rhai
            /// if fs::exists("docs/ROLLBACK.md") { info("documented"); }
            /// ```
        },
        |_, path: Str| Ok(Path::new(path.as_str()).exists()),
    );
    api.func1(
        "read",
        &["path: &str", "String"],
        docs! {
            /// The text of a file.
            /// ```rhai
            /// let version = fs::read("VERSION");
            /// version.trim();  // trims in place
            /// ```
        },
        |_, path: Str| std::fs::read_to_string(path.as_str()).map_err(|e| io_error("cannot read", &path, &e)),
    );
    api.func2(
        "write",
        &["path: &str", "text: &str", "Map"],
        docs! {
            /// Write text to a file, creating its folder: `#{ path, bytes, dry_run }`. Not done
            /// under `--dry-run`.
            /// ```rhai
            /// fs::write("out/version.txt", version);
            /// ```
        },
        |state, path: Str, text: Str| -> RhaiResultOf<Map> {
            let description = format!("write {} bytes to {path}", text.len());
            let mut written = Written { path: &path, bytes: text.len() as i64, dry_run: true };
            if !state.services.should_act(&Action { description: &description, read_only: false }) {
                return to_map(&written);
            }
            if let Some(dir) = Path::new(path.as_str()).parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| io_error("cannot create", &dir.to_string_lossy(), &e))?;
            }
            std::fs::write(path.as_str(), text.as_str()).map_err(|e| io_error("cannot write", &path, &e))?;
            written.dry_run = false;
            to_map(&written)
        },
    );
    api.func1(
        "glob",
        &["pattern: &str", "Array"],
        docs! {
            /// Paths matching a pattern (`*`, `**`, `?`, `[..]`), sorted.
            /// ```rhai
            /// for f in fs::glob("k8s/**/*.yaml") { info(f); }
            /// ```
        },
        |_, pattern: Str| -> RhaiResultOf<Array> {
            let paths = glob::glob(&pattern)
                .map_err(|e| failure(FailureKind::Usage, format!("bad glob pattern \"{pattern}\": {e}")))?;
            let mut out: Vec<String> = paths.flatten().map(|p| p.to_string_lossy().into_owned()).collect();
            out.sort();
            Ok(out.into_iter().map(Dynamic::from).collect())
        },
    );
    api.func0(
        "temp_dir",
        &["String"],
        docs! {
            /// A fresh temporary folder, removed when the run ends.
            /// ```rhai
            /// let work = fs::temp_dir();
            /// ```
        },
        |state| -> RhaiResultOf<String> {
            let dir = tempfile::Builder::new()
                .prefix("capstan-")
                .tempdir()
                .map_err(|e| failure(FailureKind::Fail, format!("cannot create a temporary folder: {e}")))?;
            let path = dir.path().to_string_lossy().into_owned();
            state.keep_until_end(dir);
            Ok(path)
        },
    );
}

/// A parsed document as script values.
fn parsed(value: Result<serde_json::Value, impl std::fmt::Display>, format: &str) -> RhaiResultOf<Dynamic> {
    let value = value.map_err(|e| failure(FailureKind::Fail, format!("not valid {format}: {e}")))?;
    rhai::serde::to_dynamic(value)
}

/// A script value written out, or why it cannot be.
fn written(text: Result<String, impl std::fmt::Display>, format: &str) -> RhaiResultOf<String> {
    text.map_err(|e| failure(FailureKind::Usage, format!("cannot write this value as {format}: {e}")))
}

fn json(api: &mut Api<'_, ()>) {
    api.func1(
        "parse",
        &["text: &str", "?"],
        docs! {
            /// Parse JSON into maps, arrays and values.
            /// ```rhai
            /// let out = json::parse(run(["terraform", "output", "-json"]).stdout);
            /// ```
        },
        |(), text: Str| parsed(serde_json::from_str(&text), "JSON"),
    );
    api.func1(
        "to_string",
        &["value: ?", "String"],
        docs! {
            /// A value as pretty JSON.
            /// ```rhai
            /// fs::write("out/plan.json", json::to_string(plan));
            /// ```
        },
        |(), value: Dynamic| written(serde_json::to_string_pretty(&value), "JSON"),
    );
}

fn yaml(api: &mut Api<'_, ()>) {
    api.func1(
        "parse",
        &["text: &str", "?"],
        docs! {
            /// Parse YAML (one document) into maps, arrays and values.
            /// ```rhai
            /// let values = yaml::parse(fs::read("values.yaml"));
            /// ```
        },
        |(), text: Str| parsed(serde_yaml_ng::from_str(&text), "YAML"),
    );
    api.func1(
        "parse_all",
        &["text: &str", "Array"],
        docs! {
            /// Parse every document of a multi-document YAML stream.
            /// ```rhai
            /// let docs = yaml::parse_all(fs::read("k8s/all.yaml"));
            /// ```
        },
        |(), text: Str| -> RhaiResultOf<Array> {
            let mut out = Array::new();
            for doc in serde_yaml_ng::Deserializer::from_str(&text) {
                let value = parsed(serde::Deserialize::deserialize(doc), "YAML")?;
                if !value.is_unit() {
                    out.push(value);
                }
            }
            Ok(out)
        },
    );
    api.func1(
        "to_string",
        &["value: ?", "String"],
        docs! {
            /// A value as YAML.
            /// ```rhai
            /// fs::write("values.generated.yaml", yaml::to_string(#{ image: #{ tag: v } }));
            /// ```
        },
        |(), value: Dynamic| written(serde_yaml_ng::to_string(&value), "YAML"),
    );
}
