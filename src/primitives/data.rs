//! `fs::`, `json::` and `yaml::`: files and data formats for playbooks.
//! Reads run in dry-run; writes are decided by the one dry-run decision.

use std::path::Path;
use std::sync::Arc;

use rhai::{Array, Dynamic, Engine, Map, Module};

use super::registration::module_func;
use crate::failure::{failure, failure_with_hint, FailureKind, RhaiResultOf};
use crate::services::Action;
use crate::state::RunState;

pub fn register(engine: &mut Engine, state: &Arc<RunState>) {
    engine.register_static_module("fs", fs_module(state).into());
    engine.register_static_module("json", json_module().into());
    engine.register_static_module("yaml", yaml_module().into());
}

fn io_error(what: &str, path: &str, e: &std::io::Error) -> Box<rhai::EvalAltResult> {
    failure_with_hint(FailureKind::Fail, format!("{what} {path}: {e}"), "check the path and its permissions")
}

fn fs_module(state: &Arc<RunState>) -> Module {
    let mut m = Module::new();
    module_func(&mut m, "exists", &["path: &str", "bool"], "True when the file or folder exists.\n```rhai\nif fs::exists(\"docs/ROLLBACK.md\") { info(\"documented\"); }\n```", |path: &str| Path::new(path).exists());
    module_func(
        &mut m,
        "read",
        &["path: &str", "String"],
        "The text of a file.\n```rhai\nlet version = fs::read(\"VERSION\");\nversion.trim();  // trims in place\n```",
        |path: &str| -> RhaiResultOf<String> {
            std::fs::read_to_string(path).map_err(|e| io_error("cannot read", path, &e))
        },
    );
    let s = state.clone();
    module_func(
        &mut m,
        "write",
        &["path: &str", "text: &str", "Map"],
        "Write text to a file, creating its folder: `#{ path, bytes, dry_run }`. Not done\n\
         under `--dry-run`.\n\
         ```rhai\nfs::write(\"out/version.txt\", version);\n```",
        move |path: &str, text: &str| -> RhaiResultOf<Map> {
            let description = format!("write {} bytes to {path}", text.len());
            let mut result = Map::new();
            result.insert("path".into(), path.into());
            result.insert("bytes".into(), (text.len() as i64).into());
            if !s.services.should_act(&Action { description: &description, read_only: false }) {
                result.insert("dry_run".into(), true.into());
                return Ok(result);
            }
            if let Some(dir) = Path::new(path).parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| io_error("cannot create", &dir.to_string_lossy(), &e))?;
            }
            std::fs::write(path, text).map_err(|e| io_error("cannot write", path, &e))?;
            result.insert("dry_run".into(), false.into());
            Ok(result)
        },
    );
    module_func(
        &mut m,
        "glob",
        &["pattern: &str", "Array"],
        "Paths matching a pattern (`*`, `**`, `?`, `[..]`), sorted.\n```rhai\nfor f in fs::glob(\"k8s/**/*.yaml\") { info(f); }\n```",
        |pattern: &str| -> RhaiResultOf<Array> {
            let paths = glob::glob(pattern).map_err(|e| failure(FailureKind::Usage, format!("bad glob pattern \"{pattern}\": {e}")))?;
            let mut out: Vec<String> = paths.flatten().map(|p| p.to_string_lossy().into_owned()).collect();
            out.sort();
            Ok(out.into_iter().map(Dynamic::from).collect())
        },
    );
    let s = state.clone();
    module_func(
        &mut m,
        "temp_dir",
        &["String"],
        "A fresh temporary folder, removed when the run ends.\n```rhai\nlet work = fs::temp_dir();\n```",
        move || -> RhaiResultOf<String> {
            let dir = tempfile::Builder::new()
                .prefix("capstan-")
                .tempdir()
                .map_err(|e| failure(FailureKind::Fail, format!("cannot create a temporary folder: {e}")))?;
            let path = dir.path().to_string_lossy().into_owned();
            s.keep_until_end(dir);
            Ok(path)
        },
    );
    m
}

fn json_module() -> Module {
    let mut m = Module::new();
    module_func(
        &mut m,
        "parse",
        &["text: &str", "?"],
        "Parse JSON into maps, arrays and values.\n```rhai\nlet out = json::parse(run([\"terraform\", \"output\", \"-json\"]).stdout);\n```",
        |text: &str| -> RhaiResultOf<Dynamic> {
            let v: serde_json::Value = serde_json::from_str(text).map_err(|e| failure(FailureKind::Fail, format!("not valid JSON: {e}")))?;
            rhai::serde::to_dynamic(v)
        },
    );
    module_func(
        &mut m,
        "to_string",
        &["value: ?", "String"],
        "A value as pretty JSON.\n```rhai\nfs::write(\"out/plan.json\", json::to_string(plan));\n```",
        |value: Dynamic| -> RhaiResultOf<String> {
            serde_json::to_string_pretty(&value)
                .map_err(|e| failure(FailureKind::Usage, format!("cannot write this value as JSON: {e}")))
        },
    );
    m
}

fn yaml_module() -> Module {
    let mut m = Module::new();
    module_func(
        &mut m,
        "parse",
        &["text: &str", "?"],
        "Parse YAML (one document) into maps, arrays and values.\n```rhai\nlet values = yaml::parse(fs::read(\"values.yaml\"));\n```",
        |text: &str| -> RhaiResultOf<Dynamic> {
            let v: serde_json::Value = serde_yaml_ng::from_str(text).map_err(|e| failure(FailureKind::Fail, format!("not valid YAML: {e}")))?;
            rhai::serde::to_dynamic(v)
        },
    );
    module_func(
        &mut m,
        "parse_all",
        &["text: &str", "Array"],
        "Parse every document of a multi-document YAML stream.\n```rhai\nlet docs = yaml::parse_all(fs::read(\"k8s/all.yaml\"));\n```",
        |text: &str| -> RhaiResultOf<Array> {
            let mut out = Array::new();
            for doc in serde_yaml_ng::Deserializer::from_str(text) {
                let v: serde_json::Value = serde::Deserialize::deserialize(doc).map_err(|e| failure(FailureKind::Fail, format!("not valid YAML: {e}")))?;
                if !v.is_null() {
                    out.push(rhai::serde::to_dynamic(v)?);
                }
            }
            Ok(out)
        },
    );
    module_func(
        &mut m,
        "to_string",
        &["value: ?", "String"],
        "A value as YAML.\n```rhai\nfs::write(\"values.generated.yaml\", yaml::to_string(#{ image: #{ tag: v } }));\n```",
        |value: Dynamic| -> RhaiResultOf<String> {
            serde_yaml_ng::to_string(&value).map_err(|e| failure(FailureKind::Usage, format!("cannot write this value as YAML: {e}")))
        },
    );
    m
}
