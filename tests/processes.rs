//! Children: arguments without a shell, options, output capture, timeouts
//! that kill the whole tree, bounded memory.

use std::time::{Duration, Instant};

use crate::support::{named, processes_with, wait_until, Playbook};

#[test]
fn run_passes_argv_verbatim_and_returns_a_result() {
    let r = Playbook::new(
        r#"phase("do", || {
            let r = run(["printf", "%s|", "a b", "$HOME", "'q'"]);
            info(`${r.code} ${r.stdout} ${r.dry_run} ${type_of(r.duration_ms)}`);
        });"#,
    )
    .run_json();
    r.code(0);
    assert_eq!(named(&r.events(), "log")[0]["message"], "0 a b|$HOME|'q'| false i64");
}

#[test]
fn options_cwd_env_stdin_and_check() {
    let p = Playbook::new(
        r#"phase("do", || {
            let a = run(["pwd"], #{ cwd: "sub" });
            let b = sh("echo $GREETING-$HOME", #{ env: #{ GREETING: "hi" } });
            let c = run(["cat"], #{ stdin: "from stdin" });
            let d = sh("echo err >&2; exit 3", #{ check: false });
            info(`${a.stdout}|${b.stdout}|${c.stdout}|${d.code}|${d.stderr}`);
        });"#,
    )
    .file("sub/keep", "");
    let r = p.run_json();
    r.code(0);
    let home = std::env::var("HOME").unwrap();
    let msg = named(&r.events(), "log")[0]["message"].as_str().unwrap().to_string();
    let sub = p.path("sub").canonicalize().unwrap();
    assert_eq!(msg, format!("{}\n|hi-{home}\n|from stdin|3|err\n", sub.display()));
}

#[test]
fn output_lines_are_events_with_stream_and_step() {
    let r =
        Playbook::new(r#"phase("do", || step("talk", || sh("echo out1; echo err1 >&2; printf tail")));"#).run_json();
    r.code(0);
    let events = r.events();
    let out: Vec<(String, String, String)> = named(&events, "output")
        .iter()
        .map(|e| {
            (
                e["stream"].as_str().unwrap().into(),
                e["line"].as_str().unwrap().into(),
                e["step"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(out.contains(&("stdout".into(), "out1".into(), "talk".into())), "{out:?}");
    assert!(out.contains(&("stderr".into(), "err1".into(), "talk".into())), "{out:?}");
    assert!(out.contains(&("stdout".into(), "tail".into(), "talk".into())), "a last line without newline: {out:?}");
}

#[test]
fn failing_command_error_names_command_and_status() {
    let r = Playbook::new(r#"phase("do", || step("s", || sh("echo 'disk full' >&2; exit 7")));"#).run();
    r.code(1);
    assert!(r.stderr.contains("failed with exit status 7: disk full"), "{}", r.stderr);
    assert!(r.stderr.contains("│ disk full"), "the failed step's output is shown: {}", r.stderr);
}

#[test]
fn missing_program_is_a_clear_error() {
    let r = Playbook::new(r#"phase("do", || run(["no-such-program-xyz"]));"#).run();
    r.code(1);
    assert!(r.stderr.contains("cannot start `no-such-program-xyz`: program not found on PATH"), "{}", r.stderr);
}

#[test]
fn step_timeout_kills_the_whole_tree() {
    let _exclusive = crate::support::exclusive();
    let marker = "37.4242";
    let p = Playbook::new(&format!(
        r#"phase("do", || step("hang", #{{ timeout: "1s" }}, || sh("sleep {marker} & sleep {marker}")));"#
    ));
    let started = Instant::now();
    let r = p.run_json();
    let took = started.elapsed();
    r.code(1);
    assert!(took < Duration::from_secs(3), "failed within 3 s, took {took:?}");
    let done = named(&r.events(), "step_finished")[0].clone();
    assert_eq!(done["status"], "failed");
    assert!(done["error"].as_str().unwrap().contains("timed out after 1s"), "{done}");
    assert!(
        wait_until(Duration::from_secs(2), || processes_with(&format!("sleep {marker}")).is_empty()),
        "a sleep survived"
    );
}

#[test]
fn command_timeout_option_is_catchable() {
    let r = Playbook::new(
        r#"phase("do", || {
            let r = run(["sleep", "10"], #{ timeout: "200ms", check: false });
            info(`code ${r.code}`);
            try { run(["sleep", "10"], #{ timeout: "200ms" }); } catch (e) { info(e.kind); }
        });"#,
    )
    .run_json();
    r.code(0);
    let logs: Vec<_> = named(&r.events(), "log").iter().map(|e| e["message"].as_str().unwrap().to_string()).collect();
    assert_eq!(logs, ["code -9", "timeout"]);
}

#[test]
fn a_background_grandchild_does_not_hold_the_step() {
    let started = Instant::now();
    let r = Playbook::new(r#"phase("do", || step("bg", || sh("sleep 5.31 >/dev/null 2>&1 & echo started")));"#).run();
    r.code(0);
    assert!(started.elapsed() < Duration::from_secs(4), "did not wait for the background sleep");
    for pid in processes_with("sleep 5.31") {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
    }
}

#[test]
fn failed_step_kills_its_background_children() {
    let r =
        Playbook::new(r#"phase("do", || step("bg", || { sh("sleep 6.17 >/dev/null 2>&1 &"); fail("then broke") }));"#)
            .run();
    r.code(1);
    assert!(
        wait_until(Duration::from_secs(2), || processes_with("sleep 6.17").is_empty()),
        "the failed step's background child survived"
    );
}

#[test]
fn quiet_output_stays_in_the_step_log_only() {
    let p = Playbook::new(r#"phase("do", || step("q", || { run(["echo", "hush-hush"], #{ quiet: true }); () }));"#);
    let r = p.run_json();
    r.code(0);
    assert!(!r.stdout.contains("hush-hush"));
    assert!(p.journal_text().contains("hush-hush\n"), "quiet lines are kept in the step log");
}

#[test]
fn gigabyte_of_output_keeps_memory_bounded() {
    let _exclusive = crate::support::exclusive();
    // 1 GiB in lines of 4 KiB; capstan's peak RSS must stay under 64 MiB.
    let p = Playbook::new(
        r#"phase("do", || step("flood", || {
            let r = sh("head -c 1073741824 /dev/zero | tr '\\0' 'x' | fold -w 4096");
            info(`kept ${r.stdout.len()} bytes`);
        }));"#,
    );
    let out = std::process::Command::new("/usr/bin/time")
        .arg("-f")
        .arg("maxrss_kib=%M")
        .arg(crate::support::capstan_bin())
        .args(["run", "deploy.rhai", "--log-format", "plain"])
        .current_dir(p.dir.path())
        .output()
        .expect("/usr/bin/time (apt package `time`) runs capstan");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let rss: u64 = stderr
        .lines()
        .find_map(|l| l.strip_prefix("maxrss_kib="))
        .and_then(|v| v.trim().parse().ok())
        .expect("rss line");
    assert!(rss <= 64 * 1024, "peak RSS {rss} KiB exceeds 64 MiB");
    let kept: u64 =
        stderr.split("kept ").nth(1).and_then(|s| s.split(' ').next()).and_then(|n| n.parse().ok()).unwrap();
    assert!(kept <= 4 << 20, "the result keeps a bounded tail, kept {kept}");
    assert!(kept > 0);
    // The step log has every byte.
    let log = walk_logs(&p.path(".capstan"));
    assert_eq!(log, (1u64 << 30) + (1u64 << 30) / 4096, "step log holds the full output");
}

fn walk_logs(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            total += walk_logs(&p);
        } else if p.extension().is_some_and(|x| x == "log") {
            total += p.metadata().unwrap().len();
        }
    }
    total
}
