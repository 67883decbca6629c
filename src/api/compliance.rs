//! `compliance::`: the scanners as script functions. Scans are read-only and
//! run under `--dry-run`; `sarif` writes a report file.

use std::path::Path;
use std::sync::Arc;

use rhai::{Array, Dynamic, ImmutableString as Str, Map};
use serde::{Deserialize, Serialize};

use super::options::List;
use super::registration::{docs, Api};
use super::values::to_map;
use crate::compliance::{self, Finding, Severity};
use crate::events::EventKind;
use crate::failure::{failure, failure_with_hint, FailureKind, RhaiResultOf};
use crate::services::{frame, Services};

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

pub fn register(api: &mut Api<'_, Arc<Services>>) {
    api.func1(
        "secrets",
        &["path: &str", "Array"],
        docs! {
            /// Scan a file or folder for credentials (respecting .gitignore, skipping binaries):
            /// findings `#{ rule, severity, file, line, message }`, the secret itself masked. Lines with
            /// `capstan:allow-secret` and entries in `.capstan-secrets-allow` are skipped.
            /// ```rhai
            /// gate("no hardcoded secrets", compliance::secrets(".").len() == 0);
            /// ```
        },
        |svc, path: Str| scan(svc, "secrets", compliance::secrets::scan, "cannot scan", &path),
    );
    api.func1(
        "dockerfile",
        &["path: &str", "Array"],
        docs! {
            /// Check a Dockerfile: pinned bases, non-root USER, HEALTHCHECK, no secrets in ENV/ARG,
            /// multi-stage builds for compiled apps, dependency manifests before the source, no caches left.
            /// ```rhai
            /// let f = compliance::dockerfile("Dockerfile");
            /// ```
        },
        |svc, path: Str| scan(svc, "dockerfile", compliance::dockerfile::scan, "cannot read", &path),
    );
    api.func1(
        "k8s",
        &["path: &str", "Array"],
        docs! {
            /// Check Kubernetes manifests (a YAML file or a folder; multi-document, kustomize and
            /// helm template output): requests and limits, probes, pinned images, no privileged or
            /// root containers, read-only root filesystems, no host networking.
            /// ```rhai
            /// let f = compliance::k8s("k8s/production");
            /// ```
        },
        |svc, path: Str| scan(svc, "k8s", compliance::k8s::scan, "cannot read", &path),
    );
    api.func1(
        "k8s_text",
        &["manifests: &str", "Array"],
        docs! {
            /// Check manifests given as text, such as `helm::template` output.
            /// ```rhai
            /// let f = compliance::k8s_text(helm::template("app", "charts/app", #{}));
            /// ```
        },
        |svc, text: Str| Ok(recorded(svc, "k8s", "(text)", compliance::k8s::scan_text(&text, "(text)"))),
    );
    api.func1(
        "terraform",
        &["dir: &str", "Array"],
        docs! {
            /// Check Terraform code: a remote backend for every non-dev environment, no state files
            /// in the repository, no credentials in provider blocks, no admin port open to 0.0.0.0/0,
            /// no IAM wildcards.
            /// ```rhai
            /// let f = compliance::terraform("infra");
            /// ```
        },
        |svc, dir: Str| scan(svc, "terraform", compliance::terraform::scan, "cannot scan", &dir),
    );
    api.opts2(
        "parity",
        &["a: &str", "b: &str", "Map"],
        docs! {
            /// Compare two environments' configuration (tfvars, helm values, manifests): flattened
            /// to dotted paths, differences reported except declared size keys (`replicas`,
            /// `instance_type`, `*.resources.*`... plus `ignore: [...]`). Returns `#{ same,
            /// differences: [#{ path, a, b }], ignored: [#{ path, a, b }] }`; `same` ignores sizes.
            /// ```rhai
            /// let p = compliance::parity("env/staging.tfvars", "env/production.tfvars");
            /// gate("staging mirrors production", p.same);
            /// ```
        },
        |_, a: Str, b: Str, o: ParityOptions| parity(&a, &b, &o),
    );
    api.func2(
        "sarif",
        &["findings: Array", "file: &str", "String"],
        docs! {
            /// Write findings as SARIF 2.1.0 (GitHub code scanning reads it); returns the path.
            /// ```rhai
            /// compliance::sarif(compliance::secrets(".") + compliance::dockerfile("Dockerfile"), "reports/capstan.sarif");
            /// ```
        },
        |svc, findings: Array, file: Str| -> RhaiResultOf<String> {
            let findings = from_array(&findings)?;
            let description = format!("write {} findings as SARIF to {file}", findings.len());
            if !svc.should_act(&crate::services::Action { description: &description, read_only: false }) {
                return Ok(file.to_string());
            }
            if let Some(dir) = Path::new(file.as_str()).parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| io("cannot create", &dir.to_string_lossy(), &e))?;
            }
            let text = serde_json::to_string_pretty(&compliance::sarif::document(&findings)).unwrap_or_default();
            std::fs::write(file.as_str(), text).map_err(|e| io("cannot write", &file, &e))?;
            Ok(file.to_string())
        },
    );
}

/// A scanner's findings for a path, as script maps.
fn scan(
    svc: &Services,
    name: &str,
    scanner: fn(&Path) -> std::io::Result<Vec<Finding>>,
    what: &str,
    path: &str,
) -> RhaiResultOf<Array> {
    let findings = scanner(Path::new(path)).map_err(|e| io(what, path, &e))?;
    Ok(recorded(svc, name, path, findings))
}

/// Every scan is a `compliance_scan` event (quiet: the script decides what
/// to say), so the journal and the HTML report keep its findings.
fn recorded(svc: &Services, name: &str, path: &str, findings: Vec<Finding>) -> Array {
    let data = serde_json::json!({ "scan": name, "path": path, "findings": findings });
    svc.emit(EventKind::User { at: frame::location(), kind: "compliance_scan".into(), data, quiet: true });
    to_array(findings)
}

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct ParityOptions {
    ignore: List,
    sizes: bool,
}

impl Default for ParityOptions {
    fn default() -> Self {
        Self { ignore: List::default(), sizes: true }
    }
}

/// One difference between the two configurations.
#[derive(Serialize)]
struct Difference {
    path: String,
    a: Option<serde_json::Value>,
    b: Option<serde_json::Value>,
}

#[derive(Serialize)]
struct Parity {
    same: bool,
    differences: Vec<Difference>,
    ignored: Vec<Difference>,
}

fn parity(a: &str, b: &str, o: &ParityOptions) -> RhaiResultOf<Map> {
    let mut ignore: Vec<String> =
        if o.sizes { compliance::parity::SIZE_KEYS.iter().map(|s| (*s).to_string()).collect() } else { Vec::new() };
    ignore.extend(o.ignore.0.iter().cloned());
    let load = |p: &str| {
        compliance::parity::load(Path::new(p))
            .map_err(|m| failure_with_hint(FailureKind::Fail, m, "give two configuration files (tfvars, YAML or JSON)"))
    };
    let (left, right) = (load(a)?, load(b)?);
    let (mut differences, mut ignored) = (Vec::new(), Vec::new());
    for d in compliance::parity::compare(&left, &right, &ignore) {
        let difference = Difference { path: d.path, a: d.a, b: d.b };
        if d.ignored {
            ignored.push(difference);
        } else {
            differences.push(difference);
        }
    }
    to_map(&Parity { same: differences.is_empty(), differences, ignored })
}
