//! The journal on disk: events, step logs, summary.

use crate::support::Playbook;

#[test]
fn journal_holds_events_step_logs_and_summary() {
    let p = Playbook::new(
        r#"phase("do", || {
            step("hello", || run(["echo", "hi from the step"]));
            step("nope", #{ allow_failure: true }, || fail("x"));
        });"#,
    );
    p.run().code(0);
    let runs: Vec<_> = std::fs::read_dir(p.path(".capstan/runs")).unwrap().flatten().collect();
    assert_eq!(runs.len(), 1);
    let dir = runs[0].path();
    let journal = std::fs::read_to_string(dir.join("journal.jsonl")).unwrap();
    let events: Vec<serde_json::Value> = journal.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(events.first().unwrap()["event"], "run_started");
    assert_eq!(events.last().unwrap()["event"], "run_finished");
    let logs: Vec<_> = std::fs::read_dir(dir.join("steps"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    assert!(logs.iter().any(|n| n.ends_with("-hello.log")), "{logs:?}");
    let hello = logs.iter().find(|n| n.ends_with("-hello.log")).unwrap();
    assert_eq!(std::fs::read_to_string(dir.join("steps").join(hello)).unwrap(), "hi from the step\n");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["status"], "ok");
    assert_eq!(summary["phases"][0]["steps"][1]["status"], "failed");
    assert_eq!(summary["phases"][0]["steps"][1]["allow_failure"], true);
}

#[test]
fn journal_dir_option_and_sortable_run_ids() {
    let p = Playbook::new(r#"phase("do", || {});"#);
    let jd = tempfile::tempdir().unwrap();
    let jd_arg = jd.path().to_str().unwrap().to_string();
    p.command("run").args(["--journal-dir", &jd_arg]).output().unwrap();
    p.command("run").args(["--journal-dir", &jd_arg]).output().unwrap();
    let mut ids: Vec<String> = std::fs::read_dir(jd.path().join(".capstan/runs"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(ids.len(), 2);
    let created_order = ids.clone();
    ids.sort();
    assert_eq!(ids.len(), created_order.len());
    assert!(!p.path(".capstan").exists());
}

/// `capstan runs` reads the current folder; when it has no runs but a folder
/// below it does (`capstan run svc/deploy.rhai` journals in `svc/`), it says
/// where they are.
#[test]
fn runs_points_to_the_folder_that_has_them() {
    let work = tempfile::tempdir().unwrap();
    std::fs::create_dir(work.path().join("svc")).unwrap();
    std::fs::write(work.path().join("svc/deploy.rhai"), r#"phase("do", || info("hi"));"#).unwrap();
    let capstan = |args: &[&str]| {
        std::process::Command::new(crate::support::capstan_bin())
            .args(args)
            .current_dir(work.path())
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    };
    assert_eq!(capstan(&["run", "svc/deploy.rhai", "--log-format", "plain"]).status.code(), Some(0));
    let list = capstan(&["runs"]);
    assert_eq!(list.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&list.stderr).contains("capstan runs --journal-dir svc"), "{list:?}");
    let show = capstan(&["runs", "show", "last"]);
    assert_eq!(show.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&show.stderr).contains("--journal-dir svc"));
    let there = capstan(&["runs", "--journal-dir", "svc"]);
    assert!(String::from_utf8_lossy(&there.stdout).contains("deploy.rhai"), "{there:?}");
}
