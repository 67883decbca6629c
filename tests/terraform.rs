//! `terraform::` against the real terraform binary, with built-in resources
//! only (no provider downloads) and no checkpoint calls.

use std::process::Command;
use std::time::Duration;

use crate::support::{named, wait_until, Playbook, Run};

const APP: &str = r#"
variable "image_tag" {
  type    = string
  default = "v1"
}
variable "replicas" {
  type    = number
  default = 2
}
locals { app = "demo-${var.image_tag}" }
resource "terraform_data" "deployment" {
  input            = { tag = var.image_tag, replicas = var.replicas }
  triggers_replace = [var.image_tag]
}
resource "terraform_data" "side" { input = "static" }
output "app"           { value = local.app }
output "deployment_id" { value = terraform_data.deployment.id }
"#;

const UPSTREAM: &str = r#"
variable "version_tag" {
  type    = string
  default = "1.0.0"
}
output "image" { value = "registry.local/app:${var.version_tag}" }
"#;

const CONSUMER: &str = r#"
data "terraform_remote_state" "upstream" {
  backend = "local"
  config  = { path = "${path.module}/../upstream/terraform.tfstate" }
}
resource "terraform_data" "release" {
  input = data.terraform_remote_state.upstream.outputs.image
}
"#;

const SLOW: &str = r#"
variable "run" {
  type    = string
  default = "a"
}
resource "terraform_data" "slow" {
  triggers_replace = [var.run]
  provisioner "local-exec" { command = "sleep 4" }
}
"#;

/// A playbook dir with terraform configured to stay offline.
fn tf_playbook(src: &str) -> Playbook {
    let p = Playbook::new(src);
    let rc = p.path("terraformrc");
    std::fs::write(&rc, "disable_checkpoint = true\n").unwrap();
    p.env("TF_CLI_CONFIG_FILE", rc.to_str().unwrap()).env("CHECKPOINT_DISABLE", "1")
}

fn tf(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new("terraform")
        .args(args)
        .current_dir(dir)
        .env("TF_CLI_CONFIG_FILE", dir.join("../terraformrc"))
        .env("CHECKPOINT_DISABLE", "1")
        .output()
        .unwrap()
}

fn values(r: &Run) -> serde_json::Value {
    named(&r.events(), "event")
        .iter()
        .map(|e| (e["type"].as_str().unwrap().to_string(), e["data"].clone()))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

#[test]
fn plan_counts_match_show_json_apply_then_no_changes() {
    let p = tf_playbook(
        r#"
        let tag = param("tag", "v1");
        phase("plan", || {
            terraform::init("app");
            event("plan", terraform::plan("app", #{ vars: #{ image_tag: tag, replicas: 3 } }));
        });
        phase("apply", || {
            terraform::apply("app", #{ plan_file: "capstan.tfplan" });
            event("outputs", terraform::output("app"));
            event("again", terraform::plan("app", #{ vars: #{ image_tag: tag, replicas: 3 }, plan_file: "again.tfplan" }));
        });
        "#,
    )
    .file("app/main.tf", APP);
    let r = p.run_json();
    r.code(0);
    let v = values(&r);
    let plan = &v["plan"];
    assert_eq!(plan["changed"], true);
    assert_eq!(plan["exit_code"], 2);
    // terraform's own reading of the same saved plan
    let shown = tf(&p.path("app"), &["show", "-json", "capstan.tfplan"]);
    let show: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    let count = |verb: &str| {
        show["resource_changes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|rc| rc["change"]["actions"].as_array().unwrap().iter().any(|a| a == verb))
            .count() as u64
    };
    assert_eq!(plan["add"].as_u64().unwrap(), count("create"));
    assert_eq!(plan["change"].as_u64().unwrap(), count("update"));
    assert_eq!(plan["destroy"].as_u64().unwrap(), count("delete"));
    assert_eq!(plan["add"], 2);
    let addresses: Vec<_> =
        plan["resources"].as_array().unwrap().iter().map(|r| r["address"].as_str().unwrap().to_string()).collect();
    assert_eq!(addresses, ["terraform_data.deployment", "terraform_data.side"]);
    assert_eq!(v["outputs"]["app"], "demo-v1");
    assert_eq!(v["again"]["changed"], false);
    assert_eq!(v["again"]["add"], 0);
}

#[test]
fn changed_upstream_state_is_drift() {
    let p = tf_playbook(
        r#"
        let version = param("version");
        phase("upstream", || {
            terraform::init("upstream");
            terraform::apply("upstream", #{ vars: #{ version_tag: version } });
        });
        phase("check", || {
            terraform::init("app");
            event("drift", terraform::drift("app"));
        });
        phase("settle", || terraform::apply("app"));
        "#,
    )
    .file("upstream/main.tf", UPSTREAM)
    .file("app/main.tf", CONSUMER);
    let first =
        Run::from(p.command("run").args(["--param", "version=1.0.0", "--log-format", "json"]).output().unwrap());
    first.code(0);
    let again = Run::from(
        p.command("run")
            .args(["--param", "version=1.0.0", "--log-format", "json", "--phase", "check"])
            .output()
            .unwrap(),
    );
    again.code(0);
    assert_eq!(values(&again)["drift"]["drift"], false);
    let bumped = Run::from(
        p.command("run").args(["--param", "version=1.1.0", "--log-format", "json", "--to", "check"]).output().unwrap(),
    );
    bumped.code(0);
    let d = &values(&bumped)["drift"];
    assert_eq!(d["drift"], true);
    assert_eq!(d["changed"], true);
    assert_eq!(d["change"], 1);
}

#[test]
fn concurrent_apply_names_the_lock() {
    let src = r#"
        let run_name = param("run");
        phase("do", || { terraform::init("slow"); terraform::apply("slow", #{ vars: #{ run: run_name } }); });
    "#;
    let p = tf_playbook(src).file("slow/main.tf", SLOW);
    let first = p
        .command("run")
        .args(["--param", "run=a", "--log-format", "json"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(15), || p.path("slow/.terraform.tfstate.lock.info").exists()),
        "the first apply holds the lock"
    );
    let second = Run::from(p.command("run").args(["--param", "run=b", "--log-format", "plain"]).output().unwrap());
    second.code(1);
    assert!(second.stderr.contains("terraform state is locked by "), "{}", second.stderr);
    assert!(second.stderr.contains("OperationTypeApply"), "{}", second.stderr);
    assert!(second.stderr.contains("lock_timeout"), "the hint says how to wait: {}", second.stderr);
    let out = first.wait_with_output().unwrap();
    assert!(out.status.success());
}

#[test]
fn dry_run_plans_but_does_not_apply() {
    let p = tf_playbook(
        r#"phase("do", || {
            terraform::init("app");
            let plan = terraform::plan("app");
            let applied = terraform::apply("app", #{ plan_file: "capstan.tfplan" });
            info(`changed=${plan.changed} add=${plan.add} applied_dry=${applied.dry_run}`);
        });"#,
    )
    .file("app/main.tf", APP)
    .arg("--dry-run");
    let r = p.run_json();
    r.code(0);
    let logs: Vec<String> =
        named(&r.events(), "log").iter().map(|e| e["message"].as_str().unwrap().to_string()).collect();
    assert!(
        logs.iter()
            .any(|l| l.starts_with("would run: terraform apply -input=false -no-color -auto-approve capstan.tfplan")),
        "{logs:?}"
    );
    assert!(logs.contains(&"changed=true add=2 applied_dry=true".to_string()), "{logs:?}");
    assert!(!p.path("app/terraform.tfstate").exists(), "nothing was applied");
}

#[test]
fn validate_fmt_and_scaffold() {
    let p = tf_playbook(
        r#"phase("do", || {
            let files = terraform::scaffold("infra", #{ provider: "none", envs: ["staging", "production"], modules: ["vpc", "db"] });
            info(`${files.files.len()}`);
            terraform::init("infra/environments/staging");
            let v = terraform::validate("infra/environments/staging");
            info(`valid=${v.valid}`);
            let f = terraform::fmt("messy");
            info(`fmt ok=${f.ok} files=${f.files}`);
        });"#,
    )
    .file("messy/main.tf", "resource \"terraform_data\" \"x\" {\ninput=\"a\"\n}\n");
    let r = p.run_json();
    r.code(0);
    let logs: Vec<String> = named(&r.events(), "log")
        .iter()
        .map(|e| e["message"].as_str().unwrap().to_string())
        .filter(|l| !l.starts_with("terraform plan"))
        .collect();
    assert_eq!(logs, ["12", "valid=true", r#"fmt ok=false files=["main.tf"]"#]);
    assert!(std::fs::read_to_string(p.path("infra/environments/production/backend.tf"))
        .unwrap()
        .contains("production.tfstate"));
}
