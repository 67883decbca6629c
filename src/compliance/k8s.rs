//! Kubernetes manifest rules, per container of every workload in a
//! (multi-document) YAML stream: kustomize and `helm template` output work
//! as well as hand-written files. Rule ids map to checkov's `CKV_K8S_` checks.

use std::path::Path;

use serde_json::Value;

use super::finding::{Finding, Rule, Severity};

pub const RULES: &[Rule] = &[
    Rule {
        id: "k8s/no-requests",
        severity: Severity::Medium,
        summary: "container without CPU and memory requests (checkov CKV_K8S_10, CKV_K8S_12)",
    },
    Rule {
        id: "k8s/no-limits",
        severity: Severity::Medium,
        summary: "container without CPU and memory limits (checkov CKV_K8S_11, CKV_K8S_13)",
    },
    Rule {
        id: "k8s/no-liveness-probe",
        severity: Severity::Medium,
        summary: "container without a liveness probe (checkov CKV_K8S_8)",
    },
    Rule {
        id: "k8s/no-readiness-probe",
        severity: Severity::Medium,
        summary: "container without a readiness probe (checkov CKV_K8S_9)",
    },
    Rule {
        id: "k8s/latest-image",
        severity: Severity::Medium,
        summary: "image tagged latest or untagged (checkov CKV_K8S_14)",
    },
    Rule { id: "k8s/privileged", severity: Severity::High, summary: "privileged container (checkov CKV_K8S_16)" },
    Rule {
        id: "k8s/root-container",
        severity: Severity::High,
        summary: "container may run as root (checkov CKV_K8S_23)",
    },
    Rule {
        id: "k8s/writable-root-fs",
        severity: Severity::Low,
        summary: "root filesystem not read-only (checkov CKV_K8S_22)",
    },
    Rule {
        id: "k8s/host-network",
        severity: Severity::High,
        summary: "pod shares the host's network (checkov CKV_K8S_19)",
    },
];

fn finding(rule: &'static str, file: &str, line: usize, message: String) -> Finding {
    let severity = RULES.iter().find(|r| r.id == rule).map_or(Severity::Medium, |r| r.severity);
    Finding { rule, severity, file: file.to_string(), line, message }
}

/// The pod spec of a workload, whatever its kind.
fn pod_spec(doc: &Value) -> Option<&Value> {
    match doc["kind"].as_str()? {
        "Pod" => doc.get("spec"),
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" | "ReplicationController" => {
            doc["spec"]["template"].get("spec")
        }
        "CronJob" => doc["spec"]["jobTemplate"]["spec"]["template"].get("spec"),
        _ => None,
    }
}

/// The line of `name: NAME` after `from` in the text: where a container is declared.
fn line_of(lines: &[&str], from: usize, name: &str) -> usize {
    let is_name = |l: &str| {
        let t = l.trim_start().trim_start_matches("- ").trim();
        t == format!("name: {name}") || t == format!("name: \"{name}\"") || t == format!("name: '{name}'")
    };
    // A container is a list item (`- name: web`); metadata may share its name.
    let item = lines.iter().enumerate().skip(from).find(|(_, l)| l.trim_start().starts_with("- ") && is_name(l));
    item.or_else(|| lines.iter().enumerate().skip(from).find(|(_, l)| is_name(l))).map_or(from + 1, |(i, _)| i + 1)
}

pub fn scan_text(text: &str, file: &str) -> Vec<Finding> {
    let lines: Vec<&str> = text.lines().collect();
    // Where each document starts, to place findings.
    let mut starts = vec![0];
    for (i, l) in lines.iter().enumerate() {
        if l.trim_end() == "---" {
            starts.push(i + 1);
        }
    }
    let mut out = Vec::new();
    for (index, doc) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let Ok(doc) = <Value as serde::Deserialize>::deserialize(doc) else { continue };
        let docs: Vec<Value> =
            if doc["kind"] == "List" { doc["items"].as_array().cloned().unwrap_or_default() } else { vec![doc] };
        let start = starts.get(index).copied().unwrap_or(0);
        for doc in docs {
            let Some(spec) = pod_spec(&doc) else { continue };
            let kind = doc["kind"].as_str().unwrap_or("?");
            let object = format!("{kind}/{}", doc["metadata"]["name"].as_str().unwrap_or("?"));
            if spec["hostNetwork"] == true {
                out.push(finding(
                    "k8s/host-network",
                    file,
                    start + 1,
                    format!("{object}: hostNetwork: true shares the node's network"),
                ));
            }
            let pod_non_root = spec["securityContext"]["runAsNonRoot"] == true;
            let pod_user = spec["securityContext"]["runAsUser"].as_i64();
            for c in spec["containers"].as_array().into_iter().flatten() {
                let name = c["name"].as_str().unwrap_or("?");
                let at = line_of(&lines, start, name);
                let who = format!("{object} container {name}");
                let res = &c["resources"];
                // A limit without a request makes the request equal to the limit.
                let requested = |r: &str| !res["requests"][r].is_null() || !res["limits"][r].is_null();
                if !requested("cpu") || !requested("memory") {
                    out.push(finding(
                        "k8s/no-requests",
                        file,
                        at,
                        format!("{who}: set resources.requests.cpu and .memory"),
                    ));
                }
                if res["limits"]["cpu"].is_null() || res["limits"]["memory"].is_null() {
                    out.push(finding(
                        "k8s/no-limits",
                        file,
                        at,
                        format!("{who}: set resources.limits.cpu and .memory"),
                    ));
                }
                if c["livenessProbe"].is_null() {
                    out.push(finding("k8s/no-liveness-probe", file, at, format!("{who}: add a livenessProbe")));
                }
                if c["readinessProbe"].is_null() {
                    out.push(finding("k8s/no-readiness-probe", file, at, format!("{who}: add a readinessProbe")));
                }
                let image = c["image"].as_str().unwrap_or("");
                let last = image.rsplit('/').next().unwrap_or(image);
                if !image.contains('@') && (!last.contains(':') || last.ends_with(":latest")) {
                    out.push(finding(
                        "k8s/latest-image",
                        file,
                        at,
                        format!("{who}: image `{image}` is not pinned to a version"),
                    ));
                }
                let sc = &c["securityContext"];
                if sc["privileged"] == true {
                    out.push(finding("k8s/privileged", file, at, format!("{who}: privileged: true")));
                }
                let user = sc["runAsUser"].as_i64().or(pod_user);
                let non_root = sc["runAsNonRoot"] == true || (sc["runAsNonRoot"].is_null() && pod_non_root);
                if user == Some(0) || (!non_root && user.is_none_or(|u| u == 0)) {
                    out.push(finding(
                        "k8s/root-container",
                        file,
                        at,
                        format!("{who}: set securityContext.runAsNonRoot: true (and a non-zero runAsUser)"),
                    ));
                }
                if sc["readOnlyRootFilesystem"] != true {
                    out.push(finding(
                        "k8s/writable-root-fs",
                        file,
                        at,
                        format!("{who}: set securityContext.readOnlyRootFilesystem: true"),
                    ));
                }
            }
        }
    }
    out.sort_by_key(|f| f.line);
    out
}

/// A YAML file, or every `.yaml`/`.yml` file under a folder.
pub fn scan(path: &Path) -> std::io::Result<Vec<Finding>> {
    let mut out = Vec::new();
    if path.is_dir() {
        for entry in ignore::WalkBuilder::new(path).build().flatten() {
            let p = entry.path();
            if p.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                out.extend(scan_text(&std::fs::read_to_string(p)?, &p.to_string_lossy()));
            }
        }
    } else {
        out.extend(scan_text(&std::fs::read_to_string(path)?, &path.to_string_lossy()));
    }
    Ok(out)
}
