//! Resume after an undo: a step whose undo ran is not completed, so a
//! resume runs it again (and re-arms its undo); a step whose undo failed
//! makes resume refuse, since its work is neither there nor gone.

use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::support::{named, wait_until, wait_with_timeout, Playbook, Run};

/// The issue's repro; `deploy` fails (or hangs) until the file `go` exists.
fn provision_then_deploy(deploy: &str) -> Playbook {
    Playbook::new(&format!(
        r#"phase("do", || {{
  step("provision", #{{ undo: || run(["rm", "-f", "provisioned"]) }}, || run(["touch", "provisioned"]));
  step("deploy", || if !fs::exists("go") {{ {deploy} }});
}});"#
    ))
}

fn resume(p: &Playbook) -> Run {
    Run::from(p.command("run").args(["--resume", "last", "--log-format", "plain"]).output().expect("resume"))
}

fn assert_provision_ran_again(p: &Playbook, r: &Run) {
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(p.path("provisioned").exists(), "resume skipped the undone step: {}", r.all());
    assert!(r.stderr.contains("1 step whose undo ran will run again"), "{}", r.stderr);
    let events = crate::support::events_in(&p.journal_text());
    let provisions: Vec<_> = named(&events, "step_finished").into_iter().filter(|e| e["step"] == "provision").collect();
    assert!(provisions.len() >= 2, "provision ran in every attempt: {provisions:?}");
    assert!(provisions.iter().all(|e| e.get("resumed").is_none()), "it ran, not replayed: {provisions:?}");
}

#[test]
fn an_undone_step_runs_again_on_resume() {
    let p = provision_then_deploy(r#"fail("boom")"#);
    let first = p.run();
    assert_eq!(first.code, 1, "{}", first.all());
    assert!(!p.path("provisioned").exists(), "the undo ran");
    // Resumed while deploy still fails: provision runs again, and its undo
    // is armed again, so the failure takes it back once more.
    let again = resume(&p);
    assert_eq!(again.code, 1, "{}", again.all());
    assert!(!p.path("provisioned").exists(), "the re-armed undo ran: {}", again.all());
    let undos = named(&crate::support::events_in(&p.journal_text()), "undo_finished").len();
    assert_eq!(undos, 2, "one undo per attempt");

    std::fs::write(p.path("go"), "").unwrap();
    let r = resume(&p);
    assert_provision_ran_again(&p, &r);
}

#[test]
fn an_undone_step_runs_again_after_ctrl_c() {
    let p = provision_then_deploy(r#"sh("sleep 30.501")"#);
    let child = p.spawn(&["--log-format", "plain"]);
    assert!(wait_until(Duration::from_secs(10), || !crate::support::processes_with("sleep 30.501").is_empty()));
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    let first = wait_with_timeout(child, Duration::from_secs(10));
    assert_eq!(first.code, 130, "{}", first.all());
    assert!(!p.path("provisioned").exists(), "the undo ran");
    std::fs::write(p.path("go"), "").unwrap();
    let r = resume(&p);
    assert_provision_ran_again(&p, &r);
}

#[test]
fn a_failed_undo_makes_resume_refuse_with_exit_4() {
    let p = Playbook::new(
        r#"phase("do", || {
  step("provision", #{ undo: || fail("the volume is busy") }, || run(["touch", "provisioned"]));
  step("deploy", || if !fs::exists("go") { fail("boom") });
  step("after", || run(["touch", "after-ran"]));
});"#,
    );
    let first = p.run();
    assert_eq!(first.code, 4, "{}", first.all());
    std::fs::write(p.path("go"), "").unwrap();
    let r = resume(&p);
    assert_eq!(r.code, 4, "{}", r.all());
    assert!(r.stderr.contains("the undo of step `do/provision` failed"), "{}", r.stderr);
    assert!(r.stderr.contains("the volume is busy"), "{}", r.stderr);
    assert!(r.stderr.contains("fix by hand what `do/provision` changed"), "{}", r.stderr);
    assert!(!p.path("after-ran").exists(), "nothing runs when resume refuses");
}

/// The audit trail: params (secrets masked), the playbook and its sha256 in
/// summary.json, report.json, report.md and `runs show`; phase-level gates
/// and a resumed run's whole running time in `runs show`.
#[test]
fn the_run_record_keeps_params_playbook_sha_gates_and_real_duration() {
    let src = r#"let tok = secret("AUDIT_TOKEN");
let v = param("version", "1.0");
let pw = param("password", "");
phase("do", || {
  approve("prod", "ship?");
  step("wait", || sleep("300ms"));
  step("gate", || if !fs::exists("go") { fail("not yet") });
});
phase("archive", || report::write("reports"));"#;
    let p = Playbook::new(src).env("AUDIT_TOKEN", "hunter2-audit");
    let first = Run::from(
        p.command("run")
            .args(["--yes", "--param", "version=2.0", "--param", "password=hunter2-audit"])
            .output()
            .unwrap(),
    );
    assert_eq!(first.code, 1, "{}", first.all());
    std::fs::write(p.path("go"), "").unwrap();
    let r = Run::from(p.command("run").args(["--resume", "last", "--yes"]).output().unwrap());
    assert_eq!(r.code, 0, "{}", r.all());

    let sha = {
        use sha2::Digest as _;
        format!("{:x}", sha2::Sha256::digest(src.as_bytes()))
    };
    let run_dir = std::fs::read_dir(p.path(".capstan/runs")).unwrap().flatten().next().unwrap().path();
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["playbook"], "deploy.rhai");
    assert_eq!(summary["playbook_sha256"], sha.as_str());
    assert_eq!(summary["params"]["version"], "2.0");
    assert_eq!(summary["params"]["password"], "***", "{summary}");
    assert!(summary["total_duration_ms"].as_u64().unwrap() >= 300, "{summary}");

    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p.path("reports/report.json")).unwrap()).unwrap();
    assert_eq!(report["playbook_sha256"], sha.as_str());
    assert_eq!(report["params"]["password"], "***");
    let md = std::fs::read_to_string(p.path("reports/report.md")).unwrap();
    assert!(md.contains(&format!("sha256 `{sha}`")), "{md}");
    assert!(md.contains("`version` = `\"2.0\"`"), "{md}");
    assert!(!md.contains("hunter2-audit"), "{md}");

    let shown = Run::from(
        std::process::Command::new(crate::support::capstan_bin())
            .current_dir(p.dir.path())
            .args(["runs", "show", "last"])
            .output()
            .unwrap(),
    );
    let out = &shown.stdout;
    assert!(out.contains(&format!("playbook sha256 {sha}")), "{out}");
    assert!(out.contains("params password=*** version=2.0"), "{out}");
    assert!(out.contains("gate: approval: prod  (by "), "a phase-level gate is listed: {out}");
    assert!(out.contains("over 2 attempts"), "{out}");
    assert!(!out.contains("hunter2-audit"), "{out}");
}
