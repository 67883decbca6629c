//! A step's processes: long lines, a stdin nobody reads, descendants that
//! change session, and what a finished step leaves in the background. Each
//! test uses its own `sleep` duration as a marker, so tests running side by
//! side never look at each other's processes.

use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::support::{named, processes_with, wait_until, wait_with_timeout, Playbook, Run};

/// No process with `marker` in its command line, within a short grace
/// (SIGKILL is asynchronous).
fn assert_gone(marker: &str, context: &str) {
    let gone = wait_until(Duration::from_secs(3), || processes_with(marker).is_empty());
    if !gone {
        for pid in processes_with(marker) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        panic!("`{marker}` survived: {context}");
    }
}

fn timed(p: &Playbook, args: &[&str]) -> (Run, Duration) {
    let start = Instant::now();
    let run = Run::from(p.command("run").args(args).output().expect("run capstan"));
    (run, start.elapsed())
}

fn step_log(p: &Playbook, suffix: &str) -> String {
    let runs = p.path(".capstan/runs");
    let run = std::fs::read_dir(&runs).unwrap().flatten().next().expect("a run").path();
    let log = std::fs::read_dir(run.join("steps"))
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().ends_with(suffix))
        .expect("the step log");
    std::fs::read_to_string(log.path()).unwrap()
}

#[test]
fn lines_of_64_kib_and_more_are_cut_and_the_run_goes_on() {
    // 70,000 bytes on one line, and exactly 64 KiB written before its
    // newline arrives: the buffer is exactly full when the cut is looked at.
    let p = Playbook::new(
        r#"phase("do", || {
  step("wide", #{ undo: || fs::write("undone.txt", "yes") }, || {
    run(["python3", "-c", "print('x'*70000)"]);
    run(["python3", "-c", "import sys, time; sys.stdout.write('y'*65536); sys.stdout.flush(); time.sleep(0.2); print()"]);
  });
  step("after", || fail("stop here"));
});"#,
    );
    let run = p.run();
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.stderr.contains("stop here"), "{}", run.stderr);
    assert!(p.path("undone.txt").exists(), "undo did not run: {}", run.all());
    assert!(p.journal_text().contains("\"run_finished\""));
    let log = step_log(&p, "-wide.log");
    assert_eq!(log.bytes().filter(|&b| b == b'x').count(), 70_000, "every byte of the long line is kept");
    assert_eq!(log.bytes().filter(|&b| b == b'y').count(), 65_536);
    let y_lines: Vec<&str> = log.lines().filter(|l| l.starts_with('y')).collect();
    assert_eq!(y_lines.len(), 1, "a line of exactly 64 KiB is one line");
}

/// A child that exits at once while its grandchild holds stdin open and
/// never reads it, fed more than a pipe holds.
const STDIN_HOLDER: &str = r#"let big = "z"; for i in 0..20 { big += big; }
phase("do", || {
  step("feed", #{ timeout: "1s" }, || run(["sh", "-c", "exec 3<&0; sleep 15.301 <&3 & exit 0"], #{ stdin: big }));
  step("reader", #{ timeout: "1s" }, || run(["sleep", "15.302"], #{ stdin: big }));
});"#;

#[test]
fn a_stdin_nobody_reads_honours_the_step_timeout() {
    let p = Playbook::new(STDIN_HOLDER);
    let (run, took) = timed(&p, &["--log-format", "plain"]);
    assert!(took < Duration::from_secs(8), "took {took:?}: {}", run.all());
    // `feed`'s child exited 0 at once: it succeeded, whatever its
    // grandchild does. `reader` never reads nor exits: its timeout kills it.
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.stderr.contains("timed out after 1s"), "{}", run.stderr);
    let events = crate::support::events_in(&p.journal_text());
    let finished = named(&events, "step_finished");
    assert_eq!(finished[0]["status"], "ok", "{finished:?}");
    assert_eq!(finished[1]["status"], "failed", "{finished:?}");
    assert_gone("sleep 15.30", "a step's stdin holder outlived the run");
}

#[test]
fn a_stdin_nobody_reads_honours_the_run_timeout_and_ctrl_c() {
    let p = Playbook::new(
        r#"let big = "z"; for i in 0..20 { big += big; }
phase("do", || step("reader", || run(["sleep", "15.311"], #{ stdin: big })));"#,
    );
    let (run, took) = timed(&p, &["--timeout", "1s"]);
    assert!(took < Duration::from_secs(8), "took {took:?}: {}", run.all());
    assert_eq!(run.code, 1, "{}", run.all());
    assert_gone("sleep 15.311", "--timeout left the reader");

    let p = Playbook::new(
        r#"let big = "z"; for i in 0..20 { big += big; }
phase("do", || step("reader", || run(["sleep", "15.312"], #{ stdin: big })));"#,
    );
    let child = p.spawn(&["--log-format", "plain"]);
    assert!(wait_until(Duration::from_secs(10), || !processes_with("sleep 15.312").is_empty()));
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    let run = wait_with_timeout(child, Duration::from_secs(8));
    assert_eq!(run.code, 130, "{}", run.all());
    assert_gone("sleep 15.312", "Ctrl-C left the reader");
}

#[test]
fn a_timed_out_step_leaves_no_descendant_even_in_another_session() {
    // The issue's repro, and a daemon that double-forks into a new session.
    let p = Playbook::new(
        r#"phase("do", || {
  step("wait", #{ timeout: "1s" }, || sh("setsid sleep 300.401 & (setsid sh -c 'sleep 300.402 & exit' &); sleep 301.4"));
});"#,
    );
    let (run, took) = timed(&p, &[]);
    assert!(took < Duration::from_secs(8), "took {took:?}");
    assert_eq!(run.code, 1, "{}", run.all());
    assert_gone("sleep 300.40", "a timed-out step's setsid descendant");
    assert_gone("sleep 301.4", "the timed-out command");
}

#[test]
fn a_failed_or_interrupted_step_leaves_no_descendant_in_another_session() {
    let p = Playbook::new(r#"phase("do", || step("fails", || sh("setsid sleep 300.411 & sleep 0.2; exit 3")));"#);
    let (run, _) = timed(&p, &[]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert_gone("sleep 300.411", "a failed step's setsid descendant");

    let p = Playbook::new(r#"phase("do", || step("waits", || sh("setsid sleep 300.412 & sleep 301.41")));"#);
    let child = p.spawn(&["--log-format", "plain"]);
    assert!(wait_until(Duration::from_secs(10), || !processes_with("sleep 300.412").is_empty()));
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    let run = wait_with_timeout(child, Duration::from_secs(8));
    assert_eq!(run.code, 130, "{}", run.all());
    assert_gone("sleep 300.412", "an interrupted step's setsid descendant");
    assert_gone("sleep 301.41", "the interrupted command");
}

#[test]
fn background_processes_of_finished_steps_die_with_the_run_unless_detached() {
    let p = Playbook::new(
        r#"phase("do", || {
  step("leaves", || sh("sleep 300.421 & setsid sleep 300.422 &"));
  step("keeps", #{ detach: true }, || sh("sleep 300.423 > /dev/null 2>&1 &"));
  step("sees", || {
    let n = sh("pgrep -f 'sleep 300[.]42[123]' | wc -l").stdout;
    n.trim();
    fs::write("alive.txt", n);
  });
});"#,
    );
    let detached = || processes_with("sleep 300.423");
    let kill_detached = || {
        for pid in detached() {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    };
    kill_detached();
    let run = p.run();
    let alive = detached();
    kill_detached();
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(std::fs::read_to_string(p.path("alive.txt")).unwrap(), "3", "all three ran during the run");
    assert!(run.stderr.contains("stopped 2 background processes"), "{}", run.stderr);
    assert!(run.stderr.contains("detach: true"), "the warning says how to keep them: {}", run.stderr);
    assert_gone("sleep 300.421", "a finished step's background process");
    assert_gone("sleep 300.422", "a finished step's background process in another session");
    assert_eq!(alive.len(), 1, "the detached step's server was killed");
}

#[test]
fn a_killed_capstan_takes_its_whole_tree_with_it() {
    let p = Playbook::new(
        r#"phase("do", || {
  step("leaves", || sh("setsid sleep 300.431 &"));
  step("waits", || sh("setsid sleep 300.432 & sleep 301.43"));
});"#,
    );
    let child = p.spawn(&["--log-format", "plain"]);
    assert!(wait_until(Duration::from_secs(10), || !processes_with("sleep 301.43").is_empty()));
    kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL).unwrap();
    let _ = wait_with_timeout(child, Duration::from_secs(5));
    assert_gone("sleep 300.431", "a background process after capstan was killed");
    assert_gone("sleep 300.432", "a running step's setsid descendant after capstan was killed");
    assert_gone("sleep 301.43", "a running step's command after capstan was killed");
}

#[test]
fn detach_is_a_checked_step_option() {
    let p = Playbook::new(r#"phase("do", || step("x", #{ detach: "yes" }, || 1));"#);
    let run = p.run();
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.stderr.contains("step option `detach` must be true or false"), "{}", run.stderr);
}
