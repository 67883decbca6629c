//! `capstan new`: every template checks clean and runs end to end under
//! `--dry-run`, from outside its folder, with no daemon.

use std::path::Path;
use std::process::Command;

use crate::support::{capstan_bin, named, Run};

const TEMPLATES: &[&str] = &["basic", "canary", "terraform", "container"];

fn capstan(cwd: &Path, args: &[&str]) -> Run {
    let out = Command::new(capstan_bin())
        .args(args)
        .current_dir(cwd)
        .env_remove("GITHUB_ACTIONS")
        .env("NO_COLOR", "1")
        // terraform stays offline: no version check.
        .env("CHECKPOINT_DISABLE", "1")
        .output()
        .expect("run capstan");
    Run::from(out)
}

fn files_of(template: &str) -> Vec<&'static str> {
    let mut files = vec!["deploy.rhai", "quality_gates.yaml", "docs/ROLLBACK.md", ".gitignore"];
    match template {
        "container" => files.push("Dockerfile"),
        "terraform" => files.extend([
            "infrastructure/modules/app/main.tf",
            "infrastructure/modules/app/variables.tf",
            "infrastructure/environments/staging/main.tf",
            "infrastructure/environments/staging/backend.tf",
            "infrastructure/environments/production/backend.tf",
            "infrastructure/environments/production/terraform.tfvars",
        ]),
        _ => {}
    }
    files
}

#[test]
fn every_template_checks_and_runs_dry() {
    let work = tempfile::tempdir().unwrap();
    for template in TEMPLATES {
        let dir = format!("shop-{template}");
        capstan(work.path(), &["new", &dir, "--template", template]).code(0);
        for f in files_of(template) {
            assert!(work.path().join(&dir).join(f).is_file(), "{template}: {f} missing");
        }
        let playbook = format!("{dir}/deploy.rhai");
        capstan(work.path(), &["check", &playbook]).code(0);

        let r = capstan(work.path(), &["run", &playbook, "--dry-run", "--log-format", "json"]);
        r.code(0);
        let events = r.events();
        let phases: Vec<(&str, &str)> = named(&events, "phase_finished")
            .iter()
            .map(|e| (e["phase"].as_str().unwrap_or("?"), e["status"].as_str().unwrap_or("?")))
            .collect();
        let expected: Vec<(&str, &str)> =
            ["init", "plan", "do", "compliance", "archive"].iter().map(|p| (*p, "dry_run")).collect();
        assert_eq!(phases, expected, "{template}: {}", r.stdout);
        let gates = named(&events, "gate");
        let passed = |name: &str| gates.iter().any(|g| g["name"] == name && g["passed"] == true);
        assert!(passed("rollback runbook present: rollback_documented 1 == 1"), "{template}: {gates:?}");
        assert!(passed("compliance gates"), "{template}: {gates:?}");
    }
}

#[test]
fn the_compliance_phase_needs_the_rollback_runbook() {
    let work = tempfile::tempdir().unwrap();
    capstan(work.path(), &["new", "api"]).code(0);
    std::fs::remove_file(work.path().join("api/docs/ROLLBACK.md")).unwrap();
    let r =
        capstan(work.path(), &["run", "api/deploy.rhai", "--dry-run", "--log-format", "json", "--phase", "compliance"]);
    r.code(1);
    let gates = r.events();
    let failed: Vec<_> = named(&gates, "gate").into_iter().filter(|g| g["passed"] == false).collect();
    assert!(failed.iter().any(|g| g["name"] == "compliance gates"), "{failed:?}");
}

#[test]
fn the_playbook_reads_its_quality_gates() {
    let work = tempfile::tempdir().unwrap();
    capstan(work.path(), &["new", "edge", "--template", "canary"]).code(0);
    let gates = work.path().join("edge/quality_gates.yaml");
    let text = std::fs::read_to_string(&gates).unwrap().replace("threshold: 200 ", "threshold: 175 ");
    std::fs::write(&gates, text).unwrap();
    let r = capstan(work.path(), &["run", "edge/deploy.rhai", "--dry-run", "--log-format", "json", "--phase", "do"]);
    r.code(0);
    let decisions: Vec<_> =
        named(&r.events(), "event").into_iter().filter(|e| e["type"] == "canary_decision").cloned().collect();
    assert_eq!(decisions.len(), 4, "one decision per rung of the ladder");
    let p99 = decisions[0]["data"]["checks"].as_array().unwrap().iter().find(|c| c["metric"] == "p99_ms").cloned();
    assert_eq!(p99.map(|c| c["threshold"].clone()), Some(serde_json::json!(175.0)));
}

#[test]
fn the_service_name_is_the_folders_unless_given() {
    let work = tempfile::tempdir().unwrap();
    capstan(work.path(), &["new", "checkout", "--template", "container"]).code(0);
    let playbook = std::fs::read_to_string(work.path().join("checkout/deploy.rhai")).unwrap();
    assert!(playbook.contains(r#"param("service", "checkout")"#), "{playbook}");
    assert!(!playbook.contains("{{"), "a placeholder is left: {playbook}");
    let runbook = std::fs::read_to_string(work.path().join("checkout/docs/ROLLBACK.md")).unwrap();
    assert!(runbook.contains("docker rm -f checkout"), "{runbook}");

    capstan(work.path(), &["new", "svc", "--name", "payments"]).code(0);
    let r = capstan(work.path(), &["list", "svc/deploy.rhai", "--json"]);
    r.code(0);
    assert!(r.stdout.contains("payments"), "{}", r.stdout);

    let r = capstan(work.path(), &["new", "x", "--name", "pay ments"]);
    r.code(2);
    assert!(
        r.stderr.contains("`pay ments` is not a usable service name") && r.stderr.contains("--name"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_folder_that_is_not_empty_is_refused() {
    let work = tempfile::tempdir().unwrap();
    std::fs::create_dir(work.path().join("busy")).unwrap();
    std::fs::write(work.path().join("busy/notes.txt"), "mine").unwrap();
    let r = capstan(work.path(), &["new", "busy"]);
    r.code(2);
    assert!(r.stderr.contains("busy exists and is not empty"), "{}", r.stderr);
    assert!(r.stderr.contains("hint:") && r.stderr.contains("--force"), "{}", r.stderr);
    assert!(!work.path().join("busy/deploy.rhai").exists(), "nothing is written");

    // An empty folder is fine, and --force writes next to existing files.
    std::fs::create_dir(work.path().join("empty")).unwrap();
    capstan(work.path(), &["new", "empty"]).code(0);
    capstan(work.path(), &["new", "busy", "--force"]).code(0);
    assert_eq!(std::fs::read_to_string(work.path().join("busy/notes.txt")).unwrap(), "mine");
    assert!(work.path().join("busy/deploy.rhai").exists());
}

#[test]
fn new_says_what_it_wrote_and_what_to_run_next() {
    let work = tempfile::tempdir().unwrap();
    let r = capstan(work.path(), &["new", "web"]);
    r.code(0);
    assert!(r.stdout.is_empty(), "the summary is for people: stderr only: {}", r.stdout);
    for needle in ["web/deploy.rhai", "web/quality_gates.yaml", "web/docs/ROLLBACK.md", "capstan check web/deploy.rhai"]
    {
        assert!(r.stderr.contains(needle), "{needle} missing: {}", r.stderr);
    }
    assert!(r.stderr.contains("capstan run web/deploy.rhai --dry-run"), "{}", r.stderr);
}

/// The terraform template's layout is a valid configuration in every environment.
#[test]
fn the_terraform_scaffold_validates() {
    if Command::new("terraform").arg("version").output().is_err() {
        eprintln!("terraform is not installed: skipped");
        return;
    }
    let work = tempfile::tempdir().unwrap();
    capstan(work.path(), &["new", "infra", "--template", "terraform"]).code(0);
    let rc = work.path().join("terraformrc");
    std::fs::write(&rc, "disable_checkpoint = true\n").unwrap();
    for env in ["staging", "production"] {
        let dir = work.path().join("infra/infrastructure/environments").join(env);
        let tf = |args: &[&str]| {
            let out = Command::new("terraform")
                .args(args)
                .current_dir(&dir)
                .env("TF_CLI_CONFIG_FILE", &rc)
                .env("CHECKPOINT_DISABLE", "1")
                .env("TF_IN_AUTOMATION", "1")
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "terraform {args:?} in {env}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        };
        tf(&["init", "-backend=false", "-input=false", "-no-color"]);
        tf(&["validate", "-no-color"]);
    }
    let fmt = Command::new("terraform")
        .args(["fmt", "-check", "-recursive"])
        .current_dir(work.path().join("infra/infrastructure"))
        .output()
        .unwrap();
    assert!(fmt.status.success(), "not formatted: {}", String::from_utf8_lossy(&fmt.stdout));
}

/// The basic template does real work too: built, deployed, checked and
/// judged by its quality gates against a live service; a failing gate rolls
/// the deploy back to the previous version.
#[test]
fn the_basic_template_deploys_for_real_and_rolls_back_on_a_failed_gate() {
    let work = tempfile::tempdir().unwrap();
    capstan(work.path(), &["new", "shop", "--template", "basic"]).code(0);
    let gates = work.path().join("shop/quality_gates.yaml");
    let text = std::fs::read_to_string(&gates).unwrap();
    std::fs::write(
        &gates,
        text.replace("probe_duration: 30s", "probe_duration: 1s").replace("within: 2m", "within: 5s"),
    )
    .unwrap();
    // The deploy script records what it was asked to deploy.
    let script = work.path().join("shop/deploy.sh");
    std::fs::write(&script, "#!/bin/sh\necho \"$1 $2\" >> deployed.txt\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();

    let healthy = crate::support::http::LatencyServer::start(1, 2, 0);
    let args = |url: &str| {
        vec![
            "run".to_string(),
            "shop/deploy.rhai".into(),
            "--log-format".into(),
            "json".into(),
            "--param".into(),
            "version=1.1.0".into(),
            "--param".into(),
            "previous_version=1.0.0".into(),
            "--param".into(),
            "build_command=true".into(),
            "--param".into(),
            "deploy_command=./deploy.sh".into(),
            "--param".into(),
            format!("health_url={url}"),
        ]
    };
    let run = |url: &str| {
        let a = args(url);
        capstan(work.path(), &a.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let ok = run(&healthy.url);
    ok.code(0);
    let phases: Vec<String> =
        named(&ok.events(), "phase_finished").iter().map(|e| format!("{}={}", e["phase"], e["status"])).collect();
    assert!(phases.iter().all(|p| p.ends_with("=\"ok\"")), "{phases:?}");
    assert_eq!(std::fs::read_to_string(work.path().join("shop/deployed.txt")).unwrap(), "shop 1.1.0\n");
    assert!(work.path().join("shop/reports/report.json").is_file(), "the archive phase wrote the report");

    // A third of the requests fail: the service answers its health check,
    // the error-rate gate fails, and the deploy is undone.
    let failing = crate::support::http::LatencyServer::start(1, 2, 3);
    let bad = run(&failing.url);
    bad.code(1);
    let gate = named(&bad.events(), "gate").into_iter().find(|g| g["name"] == "release readiness").cloned();
    assert_eq!(gate.map(|g| g["passed"].clone()), Some(serde_json::Value::Bool(false)), "{}", bad.all());
    assert_eq!(
        std::fs::read_to_string(work.path().join("shop/deployed.txt")).unwrap(),
        "shop 1.1.0\nshop 1.1.0\nshop 1.0.0\n",
        "deployed, then rolled back to the previous version"
    );
}
