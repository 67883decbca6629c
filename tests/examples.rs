//! Every example playbook and every stdlib module is checked.

use crate::support::{repo_root, Playbook, Run};

fn files(dir: &str) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(repo_root().join(dir))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "rhai"))
        .collect();
    v.sort();
    v
}

#[test]
fn every_example_passes_check() {
    let examples = files("examples");
    assert!(examples.len() >= 3);
    for path in examples {
        let out = std::process::Command::new(crate::support::capstan_bin()).arg("check").arg(&path).output().unwrap();
        Run::from(out).code(0);
    }
}

#[test]
fn hello_runs_and_its_json_lines_follow_the_spec() {
    let out = std::process::Command::new(crate::support::capstan_bin())
        .args(["run", "examples/hello.rhai", "--log-format", "json", "--journal-dir"])
        .arg(tempfile::tempdir().unwrap().path())
        .current_dir(repo_root())
        .output()
        .unwrap();
    let r = Run::from(out);
    r.code(0);
    let events = r.events();
    let names: Vec<&str> = events.iter().map(|e| e["event"].as_str().unwrap()).collect();
    for expected in [
        "run_started",
        "phase_started",
        "step_started",
        "output",
        "log",
        "gate",
        "step_finished",
        "phase_finished",
        "run_finished",
    ] {
        assert!(names.contains(&expected), "{expected} missing: {names:?}");
    }
    let run_id = events[0]["run_id"].as_str().unwrap();
    for e in &events {
        assert_eq!(e["run_id"], run_id);
        let ts = e["ts"].as_str().unwrap();
        assert!(humantime::parse_rfc3339(ts).is_ok() && ts.ends_with('Z'), "ts {ts}");
        match e["event"].as_str().unwrap() {
            "step_started" | "step_finished" | "output" => {
                assert!(e["phase"].is_string() && e["step"].is_string(), "{e}");
            }
            _ => {}
        }
        if e["event"] == "step_finished" || e["event"] == "phase_finished" {
            assert!(["ok", "failed", "skipped", "dry_run"].contains(&e["status"].as_str().unwrap()));
            assert!(e["duration_ms"].is_u64());
        }
        if e["event"] == "step_finished" || e["event"] == "phase_finished" {
            assert!(e["attempts"].is_u64(), "{e}");
        }
    }
    let last = events.last().unwrap();
    assert_eq!(
        (last["event"].as_str(), last["status"].as_str(), last["exit_code"].as_i64()),
        (Some("run_finished"), Some("ok"), Some(0))
    );
}

#[test]
fn build_and_test_example_builds_and_tests_the_project() {
    let work = tempfile::tempdir().unwrap();
    let project = work.path().join("project");
    copy_dir(&repo_root().join("examples/project"), &project);
    let out = std::process::Command::new(crate::support::capstan_bin())
        .arg("run")
        .arg(repo_root().join("examples/build-and-test.rhai"))
        .args(["--log-format", "json", "--param"])
        .arg(format!("project_dir={}", project.display()))
        .arg("--journal-dir")
        .arg(work.path())
        .output()
        .unwrap();
    let r = Run::from(out);
    r.code(0);
    assert!(project.join("build/semver").exists());
    assert!(r.stdout.contains("passed"), "the unit tests ran: {}", r.stdout);
}

#[test]
fn failure_example_undoes_and_reports() {
    let work = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(crate::support::capstan_bin())
        .arg("run")
        .arg(repo_root().join("examples/failure-undo.rhai"))
        .args(["--log-format", "plain", "--param"])
        .arg(format!("workdir={}", work.path().join("w").display()))
        .arg("--journal-dir")
        .arg(work.path())
        .output()
        .unwrap();
    let r = Run::from(out);
    r.code(1);
    assert!(r.stderr.contains("undo marker two") && r.stderr.contains("undo marker one"), "{}", r.stderr);
    assert!(!work.path().join("w/one.marker").exists());
    assert!(work.path().join("w/on_failure.txt").exists());
}

#[test]
fn every_stdlib_module_compiles_and_works() {
    for path in files("stdlib") {
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        let p = Playbook::new(&format!("import \"capstan/{name}\" as m;\nphase(\"x\", || {{}});\n"));
        p.check().code(0);
        p.run().code(0);
    }
    let p = Playbook::new(
        r#"
        import "capstan/semver" as semver;
        phase("do", || {
            info(`${semver::compare("1.2.3", "1.10.0")} ${semver::compare("2.0.0", "2.0.0-rc.1")} ${semver::bump("v1.4.2", "minor")} ${semver::parse("3.2.1").major}`);
            try { semver::parse("1.x"); } catch (e) { info(e); }
        });
        "#,
    );
    let r = p.run_json();
    r.code(0);
    let logs: Vec<_> =
        crate::support::named(&r.events(), "log").iter().map(|e| e["message"].as_str().unwrap().to_string()).collect();
    assert_eq!(logs[0], "-1 1 1.5.0 3");
    assert!(logs[1].contains("not a semantic version"), "{logs:?}");
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n != "build") {
                copy_dir(&p, &to.join(e.file_name()));
            }
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}
