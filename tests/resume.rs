//! `--resume`: completed steps are not run again; loops resume by occurrence;
//! `capstan runs` reads the journal back.

use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::support::{named, processes_with, wait_until, Playbook, Run};

const FOUR_STEPS: &str = r#"
phase("do", || {
    step("one", || { sh("echo x >> ran-one"); "first" });
    let v = step("count", || { sh("echo x >> counter"); #{ n: 2, tag: "v2" } });
    step("slow", || sh("echo x >> ran-slow; [ -e go ] || sleep 53.535"));
    step("four", || { sh(`echo ${v.tag} >> ran-four`); });
});
"#;

fn lines(p: &Playbook, file: &str) -> usize {
    std::fs::read_to_string(p.path(file)).map_or(0, |t| t.lines().count())
}

#[test]
fn sigkill_mid_run_then_resume_last() {
    let p = Playbook::new(FOUR_STEPS);
    let child = p.spawn(&["--log-format", "json"]);
    assert!(wait_until(Duration::from_secs(10), || !processes_with("sleep 53.535").is_empty()), "step 3 started");
    kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL).unwrap();
    let _ = child.wait_with_output();
    // SIGKILL leaves the step's child behind; this test cleans it up.
    for pid in processes_with("sleep 53.535") {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
    std::fs::write(p.path("go"), "").unwrap();

    let r = Run::from(p.command("run").args(["--resume", "last", "--log-format", "json"]).output().unwrap());
    r.code(0);
    assert_eq!(lines(&p, "ran-one"), 1, "step 1 ran once in total");
    assert_eq!(lines(&p, "counter"), 1, "step 2 ran once in total");
    assert_eq!(lines(&p, "ran-slow"), 2, "the step in flight ran again");
    assert_eq!(std::fs::read_to_string(p.path("ran-four")).unwrap(), "v2\n", "step 4 saw step 2's recorded value");
    let events = r.events();
    let resumed: Vec<_> = named(&events, "step_finished")
        .iter()
        .filter(|e| e["resumed"] == true)
        .map(|e| e["step"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(resumed, ["one", "count"]);

    let runs: Vec<_> = std::fs::read_dir(p.path(".capstan/runs")).unwrap().flatten().collect();
    assert_eq!(runs.len(), 1, "the resumed run appends to the same journal");
    let journal = std::fs::read_to_string(runs[0].path().join("journal.jsonl")).unwrap();
    let parsed: Vec<serde_json::Value> =
        journal.lines().map(|l| serde_json::from_str(l).expect("every journal line parses")).collect();
    assert_eq!(named(&parsed, "run_started").len(), 2, "both runs' events");
    assert_eq!(named(&parsed, "run_finished").len(), 1);
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(runs[0].path().join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["status"], "ok");
    assert_eq!(summary["resumes"], 1);
}

#[test]
fn loops_resume_by_occurrence_and_params_are_reused() {
    let p = Playbook::new(
        r#"
        let target = param("target");
        phase("do", || {
            for i in 0..3 {
                step("tick", || {
                    sh(`echo ${i} >> ticks`);
                    if i == 1 && !fs_exists("fixed") { fail("tick 1 breaks the first time"); }
                    i * 10
                });
            }
            info(`deployed to ${target}`);
        });
        fn fs_exists(f) { run(["test", "-e", f], #{ check: false, read_only: true }).code == 0 }
        "#,
    );
    let r = p.command("run").args(["--param", "target=prod", "--log-format", "plain"]).output().unwrap();
    Run::from(r).code(1);
    std::fs::write(p.path("fixed"), "").unwrap();
    let r = Run::from(p.command("run").args(["--resume", "last", "--log-format", "json"]).output().unwrap());
    r.code(0);
    assert_eq!(std::fs::read_to_string(p.path("ticks")).unwrap(), "0\n1\n1\n2\n");
    let logs: Vec<_> = named(&r.events(), "log").iter().map(|e| e["message"].as_str().unwrap().to_string()).collect();
    assert!(logs.iter().any(|l| l == "deployed to prod"), "params come back from the journal: {logs:?}");
}

#[test]
fn changed_playbook_is_warned_about() {
    let p = Playbook::new(r#"phase("do", || { step("a", || 1); fail("stop"); });"#);
    p.run().code(1);
    std::fs::write(p.path("deploy.rhai"), r#"phase("do", || { step("a", || 1); step("b", || 2); });"#).unwrap();
    let r = Run::from(p.command("run").args(["--resume", "last", "--log-format", "plain"]).output().unwrap());
    r.code(0);
    assert!(r.stderr.contains("changed since run"), "{}", r.stderr);
    let r = Run::from(p.command("run").args(["--resume", "20000101T000000000Z-dead"]).output().unwrap());
    r.code(2);
}

#[test]
fn runs_list_and_show() {
    let p = Playbook::new(
        r#"phase("do", || {
            step("fine", #{ undo: || info("undoing fine") }, || gate("looks good", true));
            step("broken", || fail("it broke"));
        });"#,
    );
    p.run().code(1);
    let list = Run::from(
        std::process::Command::new(crate::support::capstan_bin())
            .args(["runs", "list"])
            .current_dir(p.dir.path())
            .output()
            .unwrap(),
    );
    list.code(0);
    assert!(list.stdout.contains("failed") && list.stdout.contains("deploy.rhai"), "{}", list.stdout);
    let list_json = Run::from(
        std::process::Command::new(crate::support::capstan_bin())
            .args(["runs", "--json"])
            .current_dir(p.dir.path())
            .output()
            .unwrap(),
    );
    let rows: serde_json::Value = serde_json::from_str(&list_json.stdout).unwrap();
    assert_eq!(rows[0]["status"], "failed");

    let show = Run::from(
        std::process::Command::new(crate::support::capstan_bin())
            .args(["runs", "show", "last"])
            .current_dir(p.dir.path())
            .output()
            .unwrap(),
    );
    show.code(0);
    for expected in ["✓ fine", "✓ gate: looks good", "✗ broken", "it broke", "undo:", "↶ fine ok"] {
        assert!(show.stdout.contains(expected), "{expected} missing:\n{}", show.stdout);
    }
    let show_json = Run::from(
        std::process::Command::new(crate::support::capstan_bin())
            .args(["runs", "show", "last", "--json"])
            .current_dir(p.dir.path())
            .output()
            .unwrap(),
    );
    let doc: serde_json::Value = serde_json::from_str(&show_json.stdout).unwrap();
    assert_eq!(doc["incident"]["step"], "broken");
    assert_eq!(doc["incident"]["undone"][0]["step"], "fine");
}

#[test]
fn report_write_from_on_failure_has_an_incident_summary() {
    let p = Playbook::new(
        r#"
        phase("do", || {
            step("deploy", #{ undo: || sleep("50ms") }, || event("deployed", #{ version: "2.0" }));
            step("verify", || gate("error rate below 1%", false, "look at the dashboards"));
        });
        on_failure(|err| report::write("reports"));
        "#,
    );
    p.run().code(1);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p.path("reports/report.json")).unwrap()).unwrap();
    assert_eq!(report["status"], "failed");
    assert_eq!(report["incident"]["step"], "verify");
    assert_eq!(report["incident"]["undone"][0]["step"], "deploy");
    assert!(report["incident"]["time_to_restore_ms"].as_u64().unwrap() >= 50);
    assert_eq!(report["gates"][0]["passed"], false);
    assert_eq!(report["events"][0]["type"], "deployed");
    let md = std::fs::read_to_string(p.path("reports/report.md")).unwrap();
    assert!(md.contains("## Incident") && md.contains("**What failed:** `do/verify`"), "{md}");
    assert!(md.contains("| error rate below 1% | failed | do/verify |"), "{md}");
}

/// A step that prepares the workspace (`every_job: true`, or one that calls
/// `terraform::init`) runs again when the run is resumed, as a later CI job
/// on a fresh checkout resumes it; the others are replayed. `capstan check`
/// knows the option, and a misspelt phase option.
#[test]
fn every_job_steps_run_again_on_resume() {
    let p = Playbook::new(
        r#"
phase("build", || {
    step("prepare", #{ every_job: true }, || { sh("echo x >> prepared"); "cache" });
    step("compile", || { sh("echo x >> compiled"); "out" });
    step("wrapper", || step("inner", || sh("echo x >> inner")));
});
phase("ship", || { step("ship", || sh("echo x >> shipped")); });
"#,
    );
    p.check().code(0);
    Run::from(p.command("run").args(["--phase", "build", "--log-format", "plain"]).output().unwrap()).code(0);
    let r = Run::from(
        p.command("run").args(["--resume", "last", "--to", "ship", "--log-format", "plain"]).output().unwrap(),
    );
    r.code(0);
    assert_eq!((lines(&p, "prepared"), lines(&p, "compiled"), lines(&p, "inner")), (2, 1, 1), "{}", r.all());
    assert_eq!(lines(&p, "shipped"), 1);
    assert!(r.all().contains("steps that prepare the workspace run again (every_job): build/prepare"), "{}", r.all());
    let journal = p.journal_text();
    let prepared: Vec<serde_json::Value> = crate::support::events_in(&journal)
        .into_iter()
        .filter(|e| e["event"] == "step_finished" && e["step"] == "prepare")
        .collect();
    assert_eq!(prepared.len(), 2);
    assert!(prepared.iter().all(|e| e["every_job"] == true && e.get("resumed").is_none()), "{prepared:?}");

    let bad = Playbook::new(r#"phase("a", #{ artifact: ["x"] }, || {});"#);
    let r = bad.check();
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains("unknown phase option `artifact`") && r.stderr.contains("the options are: artifacts"),
        "{}",
        r.stderr
    );
}

/// `--run-name`: a named run is resumed by its name, the newest run of that
/// name when there are several (a pipeline run again), never another run.
#[test]
fn a_named_run_is_resumed_by_its_name() {
    let p = Playbook::new(
        r#"phase("do", || { step("one", || sh("echo x >> ran-one")); step("two", || sh("test -e go")); });"#,
    );
    let named_run = |name: &str| p.command("run").args(["--run-name", name, "--log-format", "json"]).output().unwrap();
    Run::from(named_run("pipeline 17")).code(1);
    Run::from(named_run("pipeline-170")).code(1);
    Run::from(named_run("pipeline 17")).code(1);
    assert_eq!(lines(&p, "ran-one"), 3);
    std::fs::write(p.path("go"), "").unwrap();

    let r = Run::from(p.command("run").args(["--resume", "pipeline 17", "--log-format", "json"]).output().unwrap());
    r.code(0);
    assert_eq!(lines(&p, "ran-one"), 3, "the completed step replayed");
    let id = named(&r.events(), "run_started")[0]["run_id"].as_str().unwrap().to_string();
    assert!(id.ends_with("-pipeline-17"), "{id}");
    let mut ids: Vec<String> = std::fs::read_dir(p.path(".capstan/runs"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with("-pipeline-17"))
        .collect();
    ids.sort();
    assert_eq!(ids.len(), 2);
    assert_eq!(id, ids[1], "the newest run of the name");
    let show = std::process::Command::new(crate::support::capstan_bin())
        .args(["runs", "show", "pipeline-17", "--json"])
        .current_dir(p.dir.path())
        .output();
    let show = Run::from(show.unwrap());
    show.code(0);
    assert!(show.stdout.contains(&id) && show.stdout.contains("\"ok\""), "{}", show.stdout);

    let both = Run::from(p.command("run").args(["--run-name", "x", "--resume", "last"]).output().unwrap());
    both.code(2);
}
