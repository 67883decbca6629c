//! Hostile input must not kill capstan between a change and its undo: deep
//! values, closed terminal streams, undo that never ends, a top level that
//! never ends, errors deep inside namespaced primitives.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{named, processes_with, wait_until, Playbook, Run};

/// A step that builds a deep value after one whose undo leaves a mark.
fn deep(body: &str) -> Playbook {
    Playbook::new(&format!(
        r#"phase("do", || {{
  step("prep", #{{ undo: || fs::write("undone.txt", "yes") }}, || 1);
  step("deep", || {{ {body} }});
  step("after", || fail("stop here"));
}});"#
    ))
}

fn assert_undone_and_complete(p: &Playbook, run: &Run) {
    assert_ne!(run.code, 134, "aborted: {}", run.stderr);
    assert!(p.path("undone.txt").exists(), "undo did not run: {}", run.all());
    let journal = p.journal_text();
    assert!(journal.contains("\"run_finished\""), "journal incomplete: {journal}");
}

#[test]
fn a_deep_closure_chain_does_not_overflow_the_stack() {
    let p = deep("let f = || 1; for i in 0..300000 { let g = f; f = || g.call(); } 1");
    let run = p.run();
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.stderr.contains("stop here"), "{}", run.stderr);
    assert_undone_and_complete(&p, &run);
}

#[test]
fn deep_arrays_and_maps_do_not_overflow_the_stack() {
    // The issue's repro at a depth whose quadratic size checks stay quick.
    let p = deep(
        "let a = [1]; for i in 0..3000 { a = [a]; } let m = #{}; for i in 0..3000 { m = #{ x: m }; } \
         print(a.len()); [a, m]",
    );
    let run = p.run();
    assert_eq!(run.code, 1, "{}", run.all());
    assert_undone_and_complete(&p, &run);
}

/// The issue's exact repro with no step timeout: capstan used to abort
/// (SIGABRT, exit 134, no undo) after about 5 s; the 20,000-deep array is
/// now built (about 15 s, the copies are quadratic), the run goes on to the
/// next step, its failure runs the undo and the journal is complete.
#[test]
fn a_20000_deep_array_without_a_timeout_is_built_and_the_run_goes_on() {
    let p = Playbook::new(
        r#"phase("do", || {
  step("prep", #{ undo: || fs::write("undone.txt", "yes") }, || 1);
  step("deep", || { let a = [1]; for i in 0..20000 { a = [a]; } 1 });
  step("after", || fail("boom"));
});"#,
    );
    let run = p.run();
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.stderr.contains("boom"), "the step after the deep one ran: {}", run.stderr);
    assert_undone_and_complete(&p, &run);
}

/// The issue's exact repro: 20,000 levels cost quadratic time to build
/// (each `[a]` copies `a`), so what bounds it is the step's timeout, with
/// the step's position, the undo and a complete journal.
#[test]
fn a_20000_deep_array_is_bounded_by_the_step_timeout_with_a_position() {
    let p = Playbook::new(
        r#"phase("do", || {
  step("prep", #{ undo: || fs::write("undone.txt", "yes") }, || 1);
  step("deep", #{ timeout: "2s" }, || { let a = [1]; for i in 0..20000 { a = [a]; } 1 });
});"#,
    );
    let start = Instant::now();
    let run = p.run();
    assert!(start.elapsed() < Duration::from_secs(20), "took {:?}", start.elapsed());
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.stderr.contains("step `deep` timed out after 2s"), "{}", run.stderr);
    assert!(run.stderr.contains("deploy.rhai:3:3"), "{}", run.stderr);
    assert_undone_and_complete(&p, &run);
}

#[test]
fn a_full_or_closed_stderr_does_not_stop_the_run_or_its_undo() {
    let p = Playbook::new(
        r#"phase("do", || {
  step("noisy", #{ undo: || fs::write("undone.txt", "yes") }, || {
    for i in 0..200 { print(`line ${i}`); }
    run(["sh", "-c", "for i in $(seq 1 200); do echo out$i; echo err$i >&2; done"])
  });
  step("fail", || fail("boom"));
});"#,
    );
    for format in ["plain", "human", "github", "json"] {
        let _ = std::fs::remove_file(p.path("undone.txt"));
        let full = std::fs::OpenOptions::new().write(true).open("/dev/full").expect("/dev/full");
        let out = p
            .command("run")
            .args(["--log-format", format])
            .stdout(Stdio::null())
            .stderr(full)
            .output()
            .expect("run capstan");
        assert_eq!(out.status.code(), Some(1), "--log-format {format}");
        assert!(p.path("undone.txt").exists(), "undo did not run with --log-format {format}");
    }
    // `2>&1 | head -1`: both streams a pipe that closes after one line.
    let _ = std::fs::remove_file(p.path("undone.txt"));
    let script = format!(
        "cd '{}' && '{}' run deploy.rhai --log-format plain 2>&1 | head -1 >/dev/null; echo \"${{PIPESTATUS[0]}}\"",
        p.dir.path().display(),
        crate::support::capstan_bin()
    );
    let out = Command::new("bash").args(["-c", &script]).output().expect("bash");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1", "{}", String::from_utf8_lossy(&out.stderr));
    assert!(p.path("undone.txt").exists(), "undo did not run behind a closed pipe");
    assert!(p.journal_text().contains("\"undo_finished\""));
}

#[test]
fn the_run_timeout_bounds_undo_and_names_the_undo_cut_short() {
    let p = Playbook::new(
        r#"phase("do", || {
  step("spin", #{ undo: || { loop {} } }, || 1);
  step("sleeper", #{ undo: || sh("sleep 30.4242") }, || 1);
  step("hang", || sh("sleep 30"));
});
on_failure(|e| fs::write("kind.txt", e.kind));"#,
    );
    let start = Instant::now();
    let run = Run::from(p.command("run").args(["--timeout", "1s", "--undo-timeout", "1s"]).output().unwrap());
    assert!(start.elapsed() < Duration::from_secs(10), "took {:?}", start.elapsed());
    assert_eq!(run.code, 4, "{}", run.all());
    assert!(run.stderr.contains("undo of `sleeper` was cut short"), "{}", run.stderr);
    assert!(run.stderr.contains("undo of `spin` and older steps skipped"), "{}", run.stderr);
    assert!(processes_with("sleep 30.4242").is_empty(), "the cut undo's child survived");
}

#[test]
fn on_failure_hears_why_the_run_stopped() {
    let p = Playbook::new(
        r#"phase("do", || step("hang", || sh("sleep 30")));
on_failure(|e| fs::write("kind.txt", `${e.kind}`));"#,
    );
    let run = Run::from(p.command("run").args(["--timeout", "1s", "--log-format", "plain"]).output().unwrap());
    assert_eq!(run.code, 1, "{}", run.all());
    assert_eq!(std::fs::read_to_string(p.path("kind.txt")).unwrap(), "timeout");

    let child = p.spawn(&["--log-format", "json"]);
    assert!(wait_until(Duration::from_secs(10), || named(&events_of(&p), "step_started").len() >= 2));
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGINT).unwrap();
    let run = crate::support::wait_with_timeout(child, Duration::from_secs(10));
    assert_eq!(run.code, 130, "{}", run.all());
    assert_eq!(std::fs::read_to_string(p.path("kind.txt")).unwrap(), "interrupted");
}

fn events_of(p: &Playbook) -> Vec<serde_json::Value> {
    p.journal_text().lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

#[test]
fn a_top_level_that_never_ends_is_a_script_error_for_list_check_and_run() {
    let p = Playbook::new("let x = 1;\nloop { x += 1; }\nphase(\"do\", || {});\n");
    for sub in ["list", "check", "run"] {
        let start = Instant::now();
        let out = p.command(sub).output().unwrap();
        let run = Run::from(out);
        assert!(start.elapsed() < Duration::from_secs(20), "{sub} took {:?}", start.elapsed());
        assert_eq!(run.code, 2, "{sub}: {}", run.all());
        assert!(run.stderr.contains("deploy.rhai:2:"), "{sub}: {}", run.stderr);
        assert!(run.stderr.contains("the top level only declares"), "{sub}: {}", run.stderr);
    }
}

#[test]
fn errors_inside_namespaced_primitives_point_at_the_playbook_line() {
    let p = Playbook::new(
        r#"phase("do", || {
  step("parse", || {
    let x = 1;
    json::parse("{bad")
  });
});"#,
    );
    let run = p.run_json();
    assert_eq!(run.code, 1, "{}", run.all());
    let events = run.events();
    let finished = named(&events, "step_finished");
    assert_eq!(finished[0]["error_at"], "deploy.rhai:4:11", "{finished:?}");
    assert!(run.stderr.contains("--> deploy.rhai:4:11"), "{}", run.stderr);
    assert!(run.stderr.contains("json::parse(\"{bad\")"), "{}", run.stderr);
}

#[test]
fn nothing_runs_before_the_phase_selection_and_the_lock_are_checked() {
    let p = Playbook::new(
        // A read-only command is allowed at the top level: it leaves a mark
        // when the top level runs.
        r#"run(["touch", "top-level-ran.txt"], #{ read_only: true });
phase("do", || step("hold", || sh("sleep 62.626")));"#,
    );
    let run = Run::from(p.command("run").args(["--phase", "nope", "--log-format", "plain"]).output().unwrap());
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(run.stderr.contains("--phase nope"), "{}", run.stderr);
    assert!(!p.path("top-level-ran.txt").exists(), "the top level ran before --phase was checked");

    let holder = p.spawn(&["--lock", "prod", "--log-format", "json"]);
    assert!(wait_until(Duration::from_secs(10), || !processes_with("sleep 62.626").is_empty()));
    std::fs::remove_file(p.path("top-level-ran.txt")).unwrap();
    let second = Run::from(p.command("run").args(["--lock", "prod", "--log-format", "plain"]).output().unwrap());
    assert_eq!(second.code, 3, "{}", second.all());
    assert!(!p.path("top-level-ran.txt").exists(), "the top level ran before the lock was taken");
    let pid = nix::unistd::Pid::from_raw(holder.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    assert_eq!(crate::support::wait_with_timeout(holder, Duration::from_secs(10)).code, 130);
}
