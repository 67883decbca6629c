//! `compliance::`: the scanners as script functions. Scans are read-only and
//! run under `--dry-run`; `sarif` writes a report file.

use std::path::Path;
use std::sync::Arc;

use rhai::{Array, Dynamic, Engine, Map, Module};

use super::registration::module_func;
use crate::compliance::{self, Finding, Severity};
use crate::failure::{failure, failure_with_hint, FailureKind, RhaiResultOf};
use crate::state::RunState;

fn to_array(findings: Vec<Finding>) -> Array {
    findings.iter().map(|f| Dynamic::from_map(f.to_map())).collect()
}

fn io(what: &str, path: &str, e: &std::io::Error) -> Box<rhai::EvalAltResult> {
    failure_with_hint(FailureKind::Fail, format!("{what} {path}: {e}"), "check the path")
}

/// Findings back from script maps (they may have been filtered or edited).
fn from_array(items: &Array) -> RhaiResultOf<Vec<Finding>> {
    items
        .iter()
        .map(|d| {
            let m = d
                .read_lock::<Map>()
                .ok_or_else(|| failure(FailureKind::Usage, "compliance::sarif: findings must be maps"))?;
            let text = |k: &str| m.get(k).map(ToString::to_string).unwrap_or_default();
            let rule = compliance::rules().into_iter().find(|r| r.id == text("rule")).map_or("custom", |r| r.id);
            let severity = match text("severity").as_str() {
                "critical" => Severity::Critical,
                "high" => Severity::High,
                "low" => Severity::Low,
                _ => Severity::Medium,
            };
            Ok(Finding {
                rule,
                severity,
                file: text("file"),
                line: m.get("line").and_then(|l| l.as_int().ok()).map_or(1, |l| usize::try_from(l).unwrap_or(1)),
                message: text("message"),
            })
        })
        .collect()
}

pub fn register(engine: &mut Engine, state: &Arc<RunState>) {
    let mut m = Module::new();
    module_func(
        &mut m,
        "secrets",
        &["path: &str", "Array"],
        "Scan a file or folder for credentials (respecting .gitignore, skipping binaries):\n\
         findings `#{ rule, severity, file, line, message }`, the secret itself masked. Lines with\n\
         `capstan:allow-secret` and entries in `.capstan-secrets-allow` are skipped.\n\
         ```rhai\ngate(\"no hardcoded secrets\", compliance::secrets(\".\").len() == 0);\n```",
        |path: &str| -> RhaiResultOf<Array> {
            compliance::secrets::scan(Path::new(path)).map(to_array).map_err(|e| io("cannot scan", path, &e))
        },
    );
    module_func(
        &mut m,
        "dockerfile",
        &["path: &str", "Array"],
        "Check a Dockerfile: pinned bases, non-root USER, HEALTHCHECK, no secrets in ENV/ARG,\n\
         multi-stage builds for compiled apps, dependency manifests before the source, no caches left.\n\
         ```rhai\nlet f = compliance::dockerfile(\"Dockerfile\");\n```",
        |path: &str| -> RhaiResultOf<Array> {
            compliance::dockerfile::scan(Path::new(path)).map(to_array).map_err(|e| io("cannot read", path, &e))
        },
    );
    module_func(
        &mut m,
        "k8s",
        &["path: &str", "Array"],
        "Check Kubernetes manifests (a YAML file or a folder; multi-document, kustomize and\n\
         helm template output): requests and limits, probes, pinned images, no privileged or\n\
         root containers, read-only root filesystems, no host networking.\n\
         ```rhai\nlet f = compliance::k8s(\"k8s/production\");\n```",
        |path: &str| -> RhaiResultOf<Array> {
            compliance::k8s::scan(Path::new(path)).map(to_array).map_err(|e| io("cannot read", path, &e))
        },
    );
    module_func(
        &mut m,
        "k8s_text",
        &["manifests: &str", "Array"],
        "Check manifests given as text, such as `helm::template` output.\n\
         ```rhai\nlet f = compliance::k8s_text(helm::template(\"app\", \"charts/app\", #{}));\n```",
        |text: &str| -> Array { to_array(compliance::k8s::scan_text(text, "(text)")) },
    );
    module_func(
        &mut m,
        "terraform",
        &["dir: &str", "Array"],
        "Check Terraform code: a remote backend for every non-dev environment, no state files\n\
         in the repository, no credentials in provider blocks, no admin port open to 0.0.0.0/0,\n\
         no IAM wildcards.\n```rhai\nlet f = compliance::terraform(\"infra\");\n```",
        |dir: &str| -> RhaiResultOf<Array> {
            compliance::terraform::scan(Path::new(dir)).map(to_array).map_err(|e| io("cannot scan", dir, &e))
        },
    );
    for with_options in [false, true] {
        let doc = "Compare two environments' configuration (tfvars, helm values, manifests): flattened\n\
             to dotted paths, differences reported except declared size keys (`replicas`,\n\
             `instance_type`, `*.resources.*`... plus `ignore: [...]`). Returns `#{ same,\n\
             differences: [#{ path, a, b }], ignored: [#{ path, a, b }] }`; `same` ignores sizes.\n\
             ```rhai\nlet p = compliance::parity(\"env/staging.tfvars\", \"env/production.tfvars\");\ngate(\"staging mirrors production\", p.same);\n```";
        if with_options {
            module_func(
                &mut m,
                "parity",
                &["a: &str", "b: &str", "options: Map", "Map"],
                doc,
                |a: &str, b: &str, o: Map| parity(a, b, &o),
            );
        } else {
            module_func(&mut m, "parity", &["a: &str", "b: &str", "Map"], doc, |a: &str, b: &str| {
                parity(a, b, &Map::new())
            });
        }
    }
    let s = state.clone();
    module_func(
        &mut m,
        "sarif",
        &["findings: Array", "file: &str", "String"],
        "Write findings as SARIF 2.1.0 (GitHub code scanning reads it); returns the path.\n\
         ```rhai\ncompliance::sarif(compliance::secrets(\".\") + compliance::dockerfile(\"Dockerfile\"), \"reports/capstan.sarif\");\n```",
        move |findings: Array, file: &str| -> RhaiResultOf<String> {
            let findings = from_array(&findings)?;
            let description = format!("write {} findings as SARIF to {file}", findings.len());
            if !s.services.should_act(&crate::services::Action { description: &description, read_only: false }) {
                return Ok(file.to_string());
            }
            if let Some(dir) = Path::new(file).parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| io("cannot create", &dir.to_string_lossy(), &e))?;
            }
            let text = serde_json::to_string_pretty(&compliance::sarif::document(&findings)).unwrap_or_default();
            std::fs::write(file, text).map_err(|e| io("cannot write", file, &e))?;
            Ok(file.to_string())
        },
    );
    engine.register_static_module("compliance", m.into());
}

fn parity(a: &str, b: &str, options: &Map) -> RhaiResultOf<Map> {
    let mut ignore: Vec<String> = compliance::parity::SIZE_KEYS.iter().map(|s| (*s).to_string()).collect();
    for (k, v) in options {
        match k.as_str() {
            "ignore" => ignore.extend(
                v.read_lock::<Array>()
                    .map(|a| a.iter().map(ToString::to_string).collect::<Vec<_>>())
                    .unwrap_or_default(),
            ),
            "sizes" => {
                if !v.as_bool().unwrap_or(true) {
                    ignore.clear();
                }
            }
            other => {
                return Err(failure(
                    FailureKind::Usage,
                    format!("unknown parity option `{other}`; the options are: ignore, sizes"),
                ))
            }
        }
    }
    let load = |p: &str| {
        compliance::parity::load(Path::new(p))
            .map_err(|m| failure_with_hint(FailureKind::Fail, m, "give two configuration files (tfvars, YAML or JSON)"))
    };
    let (left, right) = (load(a)?, load(b)?);
    let json = |v: Option<serde_json::Value>| v.map_or(Ok(Dynamic::UNIT), rhai::serde::to_dynamic);
    let mut differences = Array::new();
    let mut ignored = Array::new();
    for d in compliance::parity::compare(&left, &right, &ignore) {
        let mut m = Map::new();
        m.insert("path".into(), d.path.into());
        m.insert("a".into(), json(d.a)?);
        m.insert("b".into(), json(d.b)?);
        if d.ignored {
            ignored.push(m.into());
        } else {
            differences.push(m.into());
        }
    }
    let mut out = Map::new();
    out.insert("same".into(), differences.is_empty().into());
    out.insert("differences".into(), differences.into());
    out.insert("ignored".into(), ignored.into());
    Ok(out)
}
