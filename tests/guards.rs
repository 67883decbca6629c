//! Locks and approvals: exit 3 when blocked, with the way out.

use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::support::{processes_with, wait_until, Playbook, Run};

#[test]
fn second_run_with_the_same_lock_is_blocked_until_the_holder_dies() {
    let p = Playbook::new(r#"phase("do", || step("hold", || sh("[ -e stop ] || sleep 61.616")));"#);
    let first = p.spawn(&["--lock", "prod", "--log-format", "json"]);
    assert!(wait_until(Duration::from_secs(10), || !processes_with("sleep 61.616").is_empty()));
    let first_pid = first.id();
    let run_id = std::fs::read_dir(p.path(".capstan/runs"))
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .file_name()
        .to_string_lossy()
        .to_string();

    let second = Run::from(p.command("run").args(["--lock", "prod", "--log-format", "plain"]).output().unwrap());
    second.code(3);
    assert!(
        second.stderr.contains(&format!("lock `prod` is held by run {run_id} (pid {first_pid} on ")),
        "{}",
        second.stderr
    );

    kill(Pid::from_raw(first_pid as i32), Signal::SIGKILL).unwrap();
    let _ = first.wait_with_output();
    for pid in processes_with("sleep 61.616") {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
    std::fs::write(p.path("stop"), "").unwrap();
    let third = Run::from(p.command("run").args(["--lock", "prod", "--log-format", "plain"]).output().unwrap());
    third.code(0);
    assert!(
        third.stderr.contains(&format!("took over lock `prod` from run {run_id} (pid {first_pid}")),
        "{}",
        third.stderr
    );

    // Released cleanly: the next run takes it without a warning.
    let fourth = Run::from(p.command("run").args(["--lock", "prod", "--log-format", "plain"]).output().unwrap());
    fourth.code(0);
    assert!(!fourth.stderr.contains("took over"), "{}", fourth.stderr);
}

#[test]
fn lock_in_the_script_and_release_on_interrupt() {
    let p = Playbook::new(r#"phase("do", || { lock("db"); step("hold", || sh("sleep 62.626")); });"#);
    let first = p.spawn(&["--log-format", "json"]);
    assert!(wait_until(Duration::from_secs(10), || !processes_with("sleep 62.626").is_empty()));
    let blocked = Playbook::new(r#"phase("do", || lock("db"));"#);
    let r = Run::from(
        blocked
            .command("run")
            .args(["--journal-dir", p.dir.path().to_str().unwrap(), "--log-format", "plain"])
            .output()
            .unwrap(),
    );
    r.code(3);
    assert!(r.stderr.contains("lock `db` is held by run"), "{}", r.stderr);
    kill(Pid::from_raw(first.id() as i32), Signal::SIGINT).unwrap();
    crate::support::wait_with_timeout(first, Duration::from_secs(10)).code(130);
    let after = Run::from(
        blocked
            .command("run")
            .args(["--journal-dir", p.dir.path().to_str().unwrap(), "--log-format", "plain"])
            .output()
            .unwrap(),
    );
    after.code(0);
    assert!(!after.stderr.contains("took over"), "released on SIGINT: {}", after.stderr);
}

#[test]
fn approval_without_a_terminal_blocks_with_instructions() {
    let src = r#"
        phase("do", || {
            step("ask", || approve("prod", "deploy 1.2 to production?"));
            run(["touch", "deployed"]);
        });
    "#;
    let p = Playbook::new(src);
    let r = Run::from(
        p.command("run").args(["--log-format", "plain"]).stdin(std::process::Stdio::null()).output().unwrap(),
    );
    r.code(3);
    assert!(r.stderr.contains("approval `prod` is needed: deploy 1.2 to production?"), "{}", r.stderr);
    assert!(r.stderr.contains("re-run with --approve prod"), "{}", r.stderr);
    assert!(!p.path("deployed").exists());

    let ok = Run::from(
        p.command("run")
            .args(["--approve", "prod", "--log-format", "json"])
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap(),
    );
    ok.code(0);
    assert!(p.path("deployed").exists());
    let gate = crate::support::named(&ok.events(), "gate")[0].clone();
    assert_eq!(gate["name"], "approval: prod");
    assert_eq!(gate["passed"], true);

    let p2 = Playbook::new(src);
    Run::from(p2.command("run").args(["--yes"]).stdin(std::process::Stdio::null()).output().unwrap()).code(0);
    let wrong = Playbook::new(src);
    Run::from(wrong.command("run").args(["--approve", "staging"]).stdin(std::process::Stdio::null()).output().unwrap())
        .code(3);
}

/// An approval records who gave it and how: the CI's actor where the
/// platform says it, else the local user and host; the flag, or the terminal.
#[test]
fn an_approval_records_who_gave_it_and_how() {
    let src = r#"phase("do", || step("ask", || approve("prod", "ship?")));"#;
    let ci_vars = ["GITHUB_ACTOR", "GITLAB_USER_LOGIN", "BUILD_USER", "CIRCLE_USERNAME"];
    let run = |p: &Playbook, args: &[&str], actor: Option<(&str, &str)>| {
        let mut c = p.command("run");
        c.args(args).args(["--log-format", "json"]).stdin(std::process::Stdio::null());
        for v in ci_vars {
            c.env_remove(v);
        }
        if let Some((k, v)) = actor {
            c.env(k, v);
        }
        let r = Run::from(c.output().unwrap());
        r.code(0);
        crate::support::named(&r.events(), "gate")[0].clone()
    };
    let p = Playbook::new(src);
    let gate = run(&p, &["--yes"], Some(("GITLAB_USER_LOGIN", "alice")));
    assert_eq!((gate["by"].as_str(), gate["via"].as_str()), (Some("alice (GITLAB_USER_LOGIN)"), Some("--yes")));
    let shown = Run::from(
        std::process::Command::new(crate::support::capstan_bin())
            .current_dir(p.dir.path())
            .args(["runs", "show", "last"])
            .output()
            .unwrap(),
    );
    assert!(
        shown.stdout.contains("gate: approval: prod  (by alice (GITLAB_USER_LOGIN) via --yes)"),
        "{}",
        shown.stdout
    );
    let summary = std::fs::read_to_string(
        std::fs::read_dir(p.path(".capstan/runs")).unwrap().flatten().next().unwrap().path().join("summary.json"),
    )
    .unwrap();
    assert!(summary.contains("alice (GITLAB_USER_LOGIN)"), "{summary}");

    let p = Playbook::new(src);
    let gate = run(&p, &["--approve", "prod"], None);
    let host = gethostname_of_this_machine();
    assert!(gate["by"].as_str().is_some_and(|b| b.ends_with(&format!("@{host}"))), "{gate}");
    assert_eq!(gate["via"], "--approve prod");
}

fn gethostname_of_this_machine() -> String {
    String::from_utf8(std::process::Command::new("hostname").output().unwrap().stdout).unwrap().trim().to_string()
}

/// On a terminal, `approve` asks y/N: yes goes on, anything else stops the
/// run with exit 3 before the step after it.
#[test]
fn an_approval_is_asked_on_the_terminal() {
    let pb = Playbook::new(
        r#"phase("do", || {
            approve("prod", "ship 1.2 to production?");
            step("ship", || run(["touch", "shipped"]));
        });"#,
    );
    for (answer, code, shipped) in [("y", 0, true), ("n", 3, false), ("", 3, false)] {
        let _ = std::fs::remove_file(pb.path("shipped"));
        let mut t = crate::support::pty::Terminal::spawn(pb.dir.path(), &["run", "deploy.rhai"], &[]);
        t.expect("ship 1.2 to production?", std::time::Duration::from_secs(20));
        t.expect("approve `prod`? [y/N]", std::time::Duration::from_secs(5));
        t.send(&format!("{answer}\r"));
        assert_eq!(t.wait(std::time::Duration::from_secs(20)), code, "answer {answer:?}: {}", t.text());
        assert_eq!(pb.path("shipped").exists(), shipped, "answer {answer:?}");
        let events = crate::support::events_in(&pb.journal_text());
        let gate = crate::support::named(&events, "gate").last().copied().cloned().unwrap();
        assert_eq!(gate["via"], "terminal", "{gate}");
        assert!(gate["by"].as_str().is_some_and(|b| b.contains('@')), "{gate}");
        // When the asking began is in the journal: the report draws the wait.
        let asked =
            crate::support::named(&events, "log").into_iter().any(|e| e["message"] == "waiting for approval `prod`");
        assert!(asked, "answer {answer:?}");
        if answer == "y" {
            let out = std::process::Command::new(crate::support::capstan_bin())
                .args(["runs", "show", "last", "--html", "report.html"])
                .current_dir(pb.dir.path())
                .output()
                .unwrap();
            Run::from(out).code(0);
            let html = std::fs::read_to_string(pb.path("report.html")).unwrap();
            assert!(html.contains("⧗ approval prod") && html.contains("approval prod: waited "), "{html}");
        }
    }
}
