//! Compliance scanners on the project's own fixtures: every rule finds its
//! true positive and stays silent on its clean twin.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{capstan_bin, repo_root, Playbook, Run};

fn fixtures() -> PathBuf {
    repo_root().join("tests/fixtures/compliance")
}

fn scan(path: &Path) -> (i32, Vec<serde_json::Value>) {
    let out = Command::new(capstan_bin()).args(["check", "--json", "--compliance"]).arg(path).output().unwrap();
    let r = Run::from(out);
    let findings: Vec<serde_json::Value> =
        serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.all()));
    (r.code, findings)
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().flatten().map(|e| e.path()).collect();
    v.sort();
    v
}

/// `secrets/positive/aws-access-key-id.ini` holds a true positive of `secret/aws-access-key-id`.
fn rule_of(kind: &str, file: &Path) -> String {
    let stem = file.file_stem().unwrap().to_string_lossy();
    let prefix = if kind == "secrets" { "secret" } else { kind };
    format!("{prefix}/{stem}")
}

#[test]
fn every_rule_finds_its_true_positive_and_not_its_clean_twin() {
    let mut covered = Vec::new();
    for kind in ["secrets", "dockerfile", "k8s", "terraform"] {
        for file in files(&fixtures().join(kind).join("positive")) {
            let rule = rule_of(kind, &file);
            let (code, findings) = scan(&file);
            assert_eq!(code, 1, "{}", file.display());
            assert!(
                findings.iter().any(|f| f["rule"] == rule.as_str()),
                "{rule} not found in {}: {findings:?}",
                file.display()
            );
            covered.push(rule.clone());
            let twin = fixtures().join(kind).join("negative").join(file.file_name().unwrap());
            let (code, findings) = scan(&twin);
            assert!(findings.is_empty(), "the clean twin {} has findings: {findings:?}", twin.display());
            assert_eq!(code, 0);
        }
    }
    // Every rule capstan knows has a fixture.
    let sarif = fixtures().join("..").join("..").join("..").join("target").join("rules.sarif");
    let _ = Command::new(capstan_bin())
        .args(["check", "--compliance"])
        .arg(fixtures().join("k8s/negative"))
        .arg("--sarif")
        .arg(&sarif)
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&sarif).unwrap()).unwrap();
    for rule in doc["runs"][0]["tool"]["driver"]["rules"].as_array().unwrap() {
        let id = rule["id"].as_str().unwrap().to_string();
        assert!(covered.contains(&id), "rule {id} has no true-positive fixture");
    }
}

#[test]
fn findings_mask_the_secret_and_sarif_is_valid_2_1_0() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("app.env"), "GITHUB_TOKEN=ghp_Zk3Pq8Lm2Xv9Tr4Wn7Yb1Cd6Fh0Jg5Ks3Qe8\nok=1\n")
        .unwrap();
    std::fs::write(dir.path().join(".gitignore"), "ignored.env\n").unwrap();
    std::fs::write(dir.path().join("ignored.env"), "GITHUB_TOKEN=ghp_Zk3Pq8Lm2Xv9Tr4Wn7Yb1Cd6Fh0Jg5Ks3Qeb\n").unwrap();
    std::fs::write(dir.path().join("blob.bin"), b"\x00\x01AKIAQ3EGUXS4N6RPL7TZ\x00").unwrap();
    let sarif = dir.path().join("out.sarif");
    let r = Run::from(
        Command::new(capstan_bin())
            .args(["check", "--compliance"])
            .arg(dir.path())
            .arg("--sarif")
            .arg(&sarif)
            .output()
            .unwrap(),
    );
    r.code(1);
    assert!(!r.all().contains("ghp_Zk3Pq8Lm2Xv9Tr4Wn7Yb1Cd6Fh0Jg5Ks3Qe8"), "the secret is masked: {}", r.all());
    assert!(r.stderr.contains("app.env:1"), "{}", r.stderr);
    assert!(
        !r.stderr.contains("ignored.env") && !r.stderr.contains("blob.bin"),
        ".gitignore and binaries are skipped: {}",
        r.stderr
    );
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&sarif).unwrap()).unwrap();
    assert_eq!(doc["version"], "2.1.0");
    let result = &doc["runs"][0]["results"][0];
    assert_eq!(result["ruleId"], "secret/github-token");
    assert_eq!(result["level"], "error");
    assert_eq!(result["locations"][0]["physicalLocation"]["region"]["startLine"], 1);
}

#[test]
fn allow_comments_and_allow_list() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.sh"),
        "export T=ghp_Zk3Pq8Lm2Xv9Tr4Wn7Yb1Cd6Fh0Jg5Ks3Qe8 # capstan:allow-secret\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("b.py"), "key = \"AKIAQ3EGUXS4N6RPL7TZ\"\n").unwrap();
    std::fs::write(dir.path().join("docs.md"), "password = \"hunter2-prod-9f3k\"\n").unwrap();
    std::fs::write(dir.path().join(".capstan-secrets-allow"), "# known test values\nAKIAQ3EGUXS4N6RPL7TZ\ndocs.md\n")
        .unwrap();
    let (code, findings) = scan(dir.path());
    assert_eq!((code, findings.len()), (0, 0), "{findings:?}");
}

#[test]
fn compliance_functions_in_a_playbook() {
    let p = Playbook::new(
        r#"phase("compliance", || {
            let s = compliance::secrets("src");
            let d = compliance::dockerfile("Dockerfile");
            let k = compliance::k8s("k8s");
            event("found", #{ secrets: s.len(), rule: s[0].rule, message: s[0].message, docker: d.map(|f| f.rule), k8s: k.len() });
            compliance::sarif(s + d + k, "reports/capstan.sarif");
            gate("no hardcoded secrets", s.len() == 0, "move them to the secret store");
        });"#,
    )
    .file("src/config.py", "db_password = \"hunter2-prod-9f3k\"\n")
    .file("Dockerfile", "FROM python:3.12-slim\nRUN pip install --no-cache-dir flask==3.0.0\nUSER app\nHEALTHCHECK CMD true\n")
    .file("k8s/ok.yaml", &std::fs::read_to_string(fixtures().join("k8s/negative/privileged.yaml")).unwrap());
    let r = p.run_json();
    r.code(1);
    let events = r.events();
    let found = crate::support::named(&events, "event").into_iter().find(|e| e["type"] == "found").cloned();
    let e = found.expect("the `found` event")["data"].clone();
    assert_eq!(e["secrets"], 1);
    assert_eq!(e["rule"], "secret/password-assignment");
    assert!(!e["message"].as_str().unwrap().contains("hunter2-prod-9f3k"));
    assert_eq!(e["docker"], serde_json::json!([]));
    assert_eq!(e["k8s"], 0);
    assert!(p.path("reports/capstan.sarif").exists());
}

#[test]
fn quality_gates_score_areas_and_decide() {
    let gates = r#"
gates:
  - { name: coverage, metric: coverage, comparison: ">=", threshold: 80, severity: blocker, area: testing }
  - { name: flaky tests, metric: flaky, comparison: "==", threshold: 0, severity: minor, area: testing }
  - { name: latency, metric: p99_ms, comparison: "<", threshold: 200, severity: major, area: performance }
  - { name: secrets, metric: secrets, comparison: "==", threshold: 0, severity: blocker, area: security, phase: compliance }
"#;
    let src = |measured: &str| {
        format!(
            r#"import "capstan/gates" as gates;
            phase("compliance", || {{
                let r = gates::evaluate(gates::load("quality_gates.yaml"), {measured}, #{{ phase: "compliance" }});
                event("result", r);
            }});"#
        )
    };
    let run = |measured: &str| {
        let p = Playbook::new(&src(measured)).file("quality_gates.yaml", gates);
        let r = p.run_json();
        r.code(0);
        let events = r.events();
        let gate_events = crate::support::named(&events, "gate").len();
        (
            crate::support::named(&events, "event").iter().find(|e| e["type"] == "result").unwrap()["data"].clone(),
            gate_events,
        )
    };
    let (ready, gate_events) = run("#{ coverage: 91, flaky: 0, p99_ms: 120, secrets: 0 }");
    assert_eq!(gate_events, 4);
    assert_eq!(ready["decision"], "ready");
    assert_eq!(ready["score"], 100);
    let (work, _) = run("#{ coverage: 91, flaky: 2, p99_ms: 250, secrets: 0 }");
    assert_eq!(work["decision"], "needs work");
    assert_eq!(work["areas"]["testing"]["score"], 50);
    assert_eq!(work["areas"]["performance"]["score"], 0);
    let (blocked, _) = run("#{ coverage: 60, flaky: 0, p99_ms: 120 }");
    assert_eq!(blocked["decision"], "not ready");
    assert_eq!(blocked["failed"].as_array().unwrap().len(), 2, "coverage and the missing secrets metric");
}

#[test]
fn parity_ignores_declared_sizes() {
    let p = Playbook::new(
        r#"phase("compliance", || {
            let t = compliance::parity("env/staging.tfvars", "env/production.tfvars");
            let v = compliance::parity("values/staging.yaml", "values/production.yaml");
            event("parity", #{ tf_same: t.same, tf_diff: t.differences.map(|d| d.path), tf_ignored: t.ignored.map(|d| d.path), values_same: v.same, values_ignored: v.ignored.len() });
        });"#,
    )
    .file("env/staging.tfvars", "region = \"eu-west-1\"\ninstance_type = \"t3.small\"\nnode_count = 2\nenable_waf = false\n")
    .file("env/production.tfvars", "region = \"eu-west-1\"\ninstance_type = \"m6i.large\"\nnode_count = 6\nenable_waf = true\n")
    .file("values/staging.yaml", "image:\n  tag: 1.4.2\nreplicaCount: 1\nresources:\n  limits: {cpu: 200m}\n")
    .file("values/production.yaml", "image:\n  tag: 1.4.2\nreplicaCount: 4\nresources:\n  limits: {cpu: \"1\"}\n");
    let r = p.run_json();
    r.code(0);
    let e = crate::support::named(&r.events(), "event")[0]["data"].clone();
    assert_eq!(e["tf_same"], false);
    assert_eq!(e["tf_diff"], serde_json::json!(["enable_waf"]));
    assert_eq!(e["tf_ignored"], serde_json::json!(["instance_type", "node_count"]));
    assert_eq!(e["values_same"], true);
    assert_eq!(e["values_ignored"], 2);
}
