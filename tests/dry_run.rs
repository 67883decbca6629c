//! `--dry-run`: mutating commands are logged, read-only ones run.

use crate::support::{named, Playbook};

#[test]
fn dry_run_does_not_act_unless_read_only() {
    let p = Playbook::new(
        r#"phase("do", || {
            let r = step("touch", || run(["touch", "created"]));
            info(`dry_run=${r.dry_run} code=${r.code} flag=${dry_run()}`);
            step("read", || run(["touch", "read-only"], #{ read_only: true }));
        });"#,
    )
    .arg("--dry-run");
    let r = p.run_json();
    r.code(0);
    assert!(!p.path("created").exists());
    assert!(p.path("read-only").exists());
    let events = r.events();
    let logs: Vec<_> = named(&events, "log").iter().map(|e| e["message"].as_str().unwrap().to_string()).collect();
    assert_eq!(logs[0], "would run: touch created");
    assert_eq!(logs[1], "dry_run=true code=0 flag=true");
    assert_eq!(named(&events, "step_finished")[0]["status"], "dry_run");
    assert_eq!(named(&events, "run_finished")[0]["status"], "dry_run");
    assert_eq!(named(&events, "run_started")[0]["dry_run"], true);
}

#[test]
fn without_dry_run_the_command_acts() {
    let p = Playbook::new(r#"phase("do", || run(["touch", "created"]));"#);
    p.run().code(0);
    assert!(p.path("created").exists());
}
