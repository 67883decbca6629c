//! The terminal view (plain) and user events.

use crate::support::{named, Playbook};

#[test]
fn plain_output_has_marks_durations_and_no_escape_codes() {
    let r = Playbook::new(
        r#"phase("build", || {
            step("compile", || run(["echo", "compiling"]));
            step("skip", #{ when: false }, || 1);
        });"#,
    )
    .run();
    r.code(0);
    assert!(r.stderr.contains("▸ build"), "{}", r.stderr);
    let line = r.stderr.lines().find(|l| l.contains("compile")).unwrap();
    assert!(line.starts_with("  ✓ compile ") && line.ends_with("ms"), "{line}");
    assert!(r.stderr.contains("↷ skip skipped"));
    assert!(!r.stderr.contains('\u{1b}'), "no colour codes in plain output");
    assert!(!r.stderr.contains("compiling"), "child output is shown only with -v or on failure");
    assert!(r.stderr.contains("✓ run succeeded in"));
}

#[test]
fn failed_step_shows_its_last_50_lines() {
    let r = Playbook::new(
        r#"phase("do", || step("noisy", || sh("for i in $(seq 1 80); do echo line-$i; done; exit 1")));"#,
    )
    .run();
    r.code(1);
    assert!(r.stderr.contains("│ line-80"));
    assert!(r.stderr.contains("│ line-31\n"));
    assert!(!r.stderr.contains("│ line-30\n"), "only the last 50 lines");
}

#[test]
fn verbose_shows_child_output_and_quiet_hides_success() {
    let src = r#"phase("do", || step("talk", || run(["echo", "chatter"])));"#;
    let v = Playbook::new(src).arg("-v").run();
    assert!(v.stderr.contains("│ chatter"), "{}", v.stderr);
    let q = Playbook::new(src).arg("-q").run();
    q.code(0);
    assert!(!q.stderr.contains("talk"), "{}", q.stderr);
    assert!(q.stderr.contains("run succeeded"));
}

#[test]
fn user_events_carry_type_and_data() {
    let r = Playbook::new(r#"phase("do", || event("deployed", #{ version: "1.2.3", replicas: 3 }));"#).run_json();
    r.code(0);
    let events = r.events();
    let e = named(&events, "event")[0];
    assert_eq!(e["type"], "deployed");
    assert_eq!(e["data"], serde_json::json!({ "version": "1.2.3", "replicas": 3 }));
    assert_eq!(e["phase"], "do");
}

#[test]
fn json_mode_prints_only_json_on_stdout() {
    let r = Playbook::new(r#"phase("do", || { print("printed"); step("s", || run(["echo", "x"])); warn("w"); });"#)
        .run_json();
    r.code(0);
    assert!(r.events().len() > 5);
}
