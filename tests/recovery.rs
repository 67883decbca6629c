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
