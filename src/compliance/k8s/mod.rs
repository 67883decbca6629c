//! Kubernetes manifest rules, per container (init, regular and ephemeral)
//! of every workload kind in a (multi-document) YAML stream: kustomize and
//! `helm template` output work as well as hand-written files. Each finding
//! is on a line of the object it is about. Rule summaries name checkov's
//! `CKV_K8S_` checks; where capstan differs from them, `scan_text` says why.

mod documents;
mod pod;

use std::path::Path;

use self::documents::{Locator, Object};
use self::pod::ContainerKind;
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
    Finding::of(RULES, rule, file, line, message)
}

/// Every finding in a YAML stream.
pub fn scan_text(text: &str, file: &str) -> Vec<Finding> {
    let at = Locator::new(text);
    let mut out = Vec::new();
    for object in documents::objects(text) {
        check_object(&object, &at, file, &mut out);
    }
    out.sort_by_key(|f| f.line);
    out
}

fn check_object(object: &Object, at: &Locator<'_>, file: &str, out: &mut Vec<Finding>) {
    let Some(spec) = pod::pod_spec(&object.value) else { return };
    let kind = object.value["kind"].as_str().unwrap_or("?");
    let name = format!("{kind}/{}", object.value["metadata"]["name"].as_str().unwrap_or("?"));
    let within = &object.lines;
    // OpenShift runs a DeploymentConfig's containers under an arbitrary
    // non-root UID unless an administrator grants more.
    let root_applies = kind != "DeploymentConfig";
    if !spec.is_object() {
        // Nothing in a pod spec that is not a mapping can show a non-root
        // user; say so rather than stay silent.
        if root_applies {
            out.push(finding(
                "k8s/root-container",
                file,
                at.key(within, "spec"),
                format!("{name}: the pod spec is not a mapping, so nothing sets runAsNonRoot"),
            ));
        }
        return;
    }
    if spec["hostNetwork"] == true {
        out.push(finding(
            "k8s/host-network",
            file,
            at.key(within, "hostNetwork"),
            format!("{name}: hostNetwork: true shares the node's network"),
        ));
    }
    let probed = !pod::runs_to_completion(&object.value);
    for (container_kind, c) in pod::containers(spec) {
        let container = c["name"].as_str();
        let line = at.container(within, container_kind.field(), container);
        let who = format!("{name} {} {}", label(container_kind), container.unwrap_or("?"));
        let mut report = |rule, advice: String| out.push(finding(rule, file, line, format!("{who}: {advice}")));
        let res = &c["resources"];
        // Ephemeral containers cannot have resources or probes. A resources
        // value that is not a mapping is invalid and proves nothing either way.
        if container_kind != ContainerKind::Ephemeral && (res.is_null() || res.is_object()) {
            // A limit without a request makes the request equal to the limit.
            let requested = |r: &str| !res["requests"][r].is_null() || !res["limits"][r].is_null();
            if !requested("cpu") || !requested("memory") {
                report("k8s/no-requests", "set resources.requests.cpu and .memory".into());
            }
            if res["limits"]["cpu"].is_null() || res["limits"]["memory"].is_null() {
                report("k8s/no-limits", "set resources.limits.cpu and .memory".into());
            }
        }
        // A pod that runs to completion is not probed, nor is an init
        // container that finishes before the others start.
        if probed && pod::serves(container_kind, c) {
            if c["livenessProbe"].is_null() {
                report("k8s/no-liveness-probe", "add a livenessProbe".into());
            }
            if c["readinessProbe"].is_null() {
                report("k8s/no-readiness-probe", "add a readinessProbe".into());
            }
        }
        let image = c["image"].as_str().unwrap_or("");
        if pod::unpinned(image) {
            report("k8s/latest-image", format!("image `{image}` is not pinned to a version"));
        }
        let sc = &c["securityContext"];
        if sc["privileged"] == true {
            report("k8s/privileged", "privileged: true".into());
        }
        if root_applies && pod::may_run_as_root(spec, c) {
            report("k8s/root-container", "set securityContext.runAsNonRoot: true (and a non-zero runAsUser)".into());
        }
        if sc["readOnlyRootFilesystem"] != true {
            report("k8s/writable-root-fs", "set securityContext.readOnlyRootFilesystem: true".into());
        }
    }
}

fn label(kind: ContainerKind) -> &'static str {
    match kind {
        ContainerKind::Regular => "container",
        ContainerKind::Init => "init container",
        ContainerKind::Ephemeral => "ephemeral container",
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// (line, rule) of every finding.
    fn found(text: &str) -> Vec<(usize, &'static str)> {
        scan_text(text, "m.yaml").into_iter().map(|f| (f.line, f.rule)).collect()
    }

    /// A container with everything set but what a test leaves out.
    const GOOD: &str = "image: app:1.0\n    resources: {requests: {cpu: 1, memory: 1Mi}, limits: {cpu: 1, memory: 1Mi}}\n    securityContext: {runAsNonRoot: true, readOnlyRootFilesystem: true}";

    #[test]
    fn init_containers_are_checked_but_not_asked_for_probes() {
        let text = format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n  initContainers:\n  - name: setup\n    {}\n  containers:\n  - name: web\n    {GOOD}\n    livenessProbe: {{exec: {{command: [true]}}}}\n    readinessProbe: {{exec: {{command: [true]}}}}\n",
            GOOD.replace("image: app:1.0", "image: busybox").replace("runAsNonRoot: true, ", "privileged: true, runAsNonRoot: true, ")
        );
        assert_eq!(found(&text), vec![(6, "k8s/latest-image"), (6, "k8s/privileged")]);
    }

    #[test]
    fn jobs_and_cronjobs_are_not_asked_for_probes_but_deployments_are() {
        let pod = format!("spec:\n  containers:\n  - name: c\n    {GOOD}\n");
        let indent = |s: &str, n: usize| {
            let pad = " ".repeat(n);
            s.lines().flat_map(|l| [pad.as_str(), l, "\n"]).collect::<String>()
        };
        let job = format!("kind: Job\nmetadata: {{name: j}}\nspec:\n  template:\n{}", indent(&pod, 4));
        let cron = format!(
            "kind: CronJob\nmetadata: {{name: c}}\nspec:\n  jobTemplate:\n    spec:\n      template:\n{}",
            indent(&pod, 8)
        );
        let deployment = format!("kind: Deployment\nmetadata: {{name: d}}\nspec:\n  template:\n{}", indent(&pod, 4));
        assert_eq!(found(&job), vec![]);
        assert_eq!(found(&cron), vec![]);
        assert_eq!(found(&cron.replace("image: app:1.0", "image: app")), vec![(9, "k8s/latest-image")]);
        assert_eq!(found(&deployment), vec![(7, "k8s/no-liveness-probe"), (7, "k8s/no-readiness-probe")]);
    }

    #[test]
    fn each_finding_is_on_a_line_of_its_own_document() {
        let text = "# first\napiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec:\n  hostNetwork: true\n  containers: []\n---\n# second, same container name\napiVersion: v1\nkind: Pod\nmetadata: {name: b}\nspec:\n  ephemeralContainers:\n  - name: debug\n    image: busybox:1.36\n    securityContext: {privileged: true, runAsNonRoot: true, readOnlyRootFilesystem: true}\n";
        // Ephemeral containers can have neither resources nor probes.
        assert_eq!(found(text), vec![(6, "k8s/host-network"), (15, "k8s/privileged")]);
    }

    #[test]
    fn a_pod_spec_that_is_not_a_mapping_may_run_as_root() {
        let text = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  - containers:\n  - name: main\n";
        assert_eq!(found(text), vec![(4, "k8s/root-container")]);
    }
}
