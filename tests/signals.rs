//! SIGINT and SIGTERM: children die, undo runs, exit 130.

use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::support::{processes_with, wait_until, wait_with_timeout, Playbook};

fn interrupted_run_cleans_up(signal: Signal, marker: &str) {
    let p = Playbook::new(&format!(
        r#"
        let out = param("out");
        phase("do", || {{
            step("one", #{{ undo: || sh(`echo undone >> ${{out}}`) }}, || 1);
            step("hang", || sh("sleep {marker} & sleep {marker}"));
        }});
        on_failure(|e| sh(`echo "on_failure: ${{e.message}}" >> ${{out}}`));
        "#
    ));
    let out = p.path("out.txt");
    let p = p.args(["--param", &format!("out={}", out.display())]);
    let child = p.spawn(&["--log-format", "json"]);
    let needle = format!("sleep {marker}");
    assert!(wait_until(Duration::from_secs(10), || processes_with(&needle).len() >= 2), "the step's children started");
    kill(Pid::from_raw(child.id() as i32), signal).unwrap();
    let r = wait_with_timeout(child, Duration::from_secs(10));
    r.code(130);
    assert!(wait_until(Duration::from_secs(2), || processes_with(&needle).is_empty()), "children killed");
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(text, "undone\non_failure: interrupted\n");
    let events = r.events();
    let last = events.last().unwrap();
    assert_eq!(last["event"], "run_finished");
    assert_eq!(last["status"], "interrupted");
    assert_eq!(last["exit_code"], 130);
    // The journal is complete: it ends with the same run_finished.
    let journal = p.journal_text();
    assert!(journal.contains("\"event\":\"run_finished\",\"status\":\"interrupted\""), "{journal}");
}

#[test]
fn sigint_kills_children_runs_undo_exits_130() {
    interrupted_run_cleans_up(Signal::SIGINT, "41.515");
}

#[test]
fn sigterm_kills_children_runs_undo_exits_130() {
    interrupted_run_cleans_up(Signal::SIGTERM, "42.626");
}

#[test]
fn interrupt_stops_a_busy_script_loop() {
    let p = Playbook::new(r#"phase("do", || step("spin", || { let i = 0; loop { i += 1; } }));"#);
    let child = p.spawn(&["--log-format", "json"]);
    let stdout_seen = wait_until(Duration::from_secs(10), || p.journal_text().contains("step_started"));
    assert!(stdout_seen);
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    let r = wait_with_timeout(child, Duration::from_secs(10));
    r.code(130);
}

/// SIGKILL gives capstan no chance to clean up; its reaper still kills the
/// running step's process group, so nothing of the step outlives it.
#[test]
fn sigkill_of_capstan_still_kills_the_running_steps_children() {
    let pb = Playbook::new(r#"phase("do", || step("hold", || sh("sleep 71.31 & sleep 71.32")));"#);
    let mut child = pb.spawn(&[]);
    assert!(
        wait_until(Duration::from_secs(10), || processes_with("sleep 71.3").len() >= 2),
        "the step's children started"
    );
    kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL).unwrap();
    let _ = child.wait();
    assert!(
        wait_until(Duration::from_secs(5), || processes_with("sleep 71.3").is_empty()),
        "the step's children outlived capstan: {:?}",
        processes_with("sleep 71.3")
    );
}
