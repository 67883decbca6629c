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

/// `--log-format human` into a file or a pipe keeps its lines (no
/// spinners, no colours) instead of printing nothing.
#[test]
fn human_output_off_a_terminal_keeps_its_lines() {
    let r = Playbook::new(
        r#"phase("build", || {
            step("compile", || run(["echo", "compiling"]));
            step("skip", #{ when: false }, || 1);
        });"#,
    )
    .arg("--log-format")
    .arg("human")
    .run();
    r.code(0);
    assert!(r.stderr.contains("▸ build"), "{}", r.stderr);
    assert!(r.stderr.lines().any(|l| l.starts_with("  ✓ compile ")), "{}", r.stderr);
    assert!(r.stderr.contains("↷ skip skipped"), "{}", r.stderr);
    assert!(r.stderr.contains("✓ run succeeded in"), "{}", r.stderr);
    assert!(!r.stderr.contains('\u{1b}'), "no cursor codes off a terminal: {:?}", r.stderr);
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

/// Long primitives turn the step's spinner into a progress bar on a terminal;
/// JSON lines and the journal record outcomes, not progress.
#[test]
fn long_primitives_draw_progress_bars_on_a_terminal_only() {
    let server = crate::support::http::LatencyServer::start(1, 2, 0);
    let source = r#"
phase("do", || {
    step("items", || { for i in 0..4 { progress(`item ${i} of 4`, i, 4); sleep("300ms"); } });
    step("probe", || health::probe("URL", #{ duration: "1500ms", concurrency: 1, rate: 50 }));
});
"#
    .replace("URL", &server.url);
    let pb = Playbook::new(&source);
    let mut t =
        crate::support::pty::Terminal::spawn(pb.dir.path(), &["run", "deploy.rhai", "--log-format", "human"], &[]);
    assert_eq!(t.wait(std::time::Duration::from_secs(30)), 0, "{}", t.text());
    let screen = t.text();
    assert!(screen.contains("item 2 of 4") && screen.contains(" 50%"), "the loop's bar: {screen}");
    assert!(screen.contains(&format!("probe {}", server.url)), "the probe's bar: {screen}");
    assert!(screen.contains('━'), "a bar is drawn: {screen}");

    let json = pb.run_json();
    json.code(0);
    assert!(!json.stdout.contains("\"progress\""), "{}", json.stdout);
    assert!(json.events().iter().all(|e| e["event"] != "progress"));
    assert!(!pb.journal_text().contains("\"progress\""));
}

/// A user event is one short line on the terminal (its name and a few
/// fields, secrets masked); JSON lines keep the whole payload, and `-v`
/// shows it indented.
#[test]
fn user_events_are_one_short_line_and_verbose_shows_the_payload() {
    let src = r#"
        let token = secret("DEPLOY_TOKEN");
        phase("do", || {
            let hosts = [];
            for i in 0..40 { hosts.push(#{ name: `web-${i}.example.internal`, ok: true }); }
            event("deployed", #{ version: "1.2.3", replicas: 3, token: token, hosts: hosts });
        });"#;
    let p = Playbook::new(src).env("DEPLOY_TOKEN", "s3cr3t-Pa55-value");
    let r = p.run();
    r.code(0);
    let lines: Vec<&str> = r.stderr.lines().filter(|l| l.contains("deployed")).collect();
    assert_eq!(lines.len(), 1, "{}", r.stderr);
    let line = lines[0];
    assert!(line.chars().count() <= 160, "{} characters: {line}", line.chars().count());
    assert!(line.trim_start().starts_with("• deployed "), "{line}");
    for field in ["version=1.2.3", "replicas=3", "token=***", "hosts=[40]"] {
        assert!(line.contains(field), "{field} in {line}");
    }
    assert!(!r.stderr.contains("web-0.example"), "the payload is not on the line: {line}");
    assert!(!r.all().contains("s3cr3t-Pa55-value"));

    let json = p.run_json();
    json.code(0);
    let events = json.events();
    let data = &named(&events, "event")[0]["data"];
    assert_eq!(data["hosts"].as_array().unwrap().len(), 40, "JSON lines keep the whole payload");
    assert_eq!(data["token"], "***");
    assert!(p.journal_text().contains("web-39.example.internal"), "so does the journal");

    let v = Playbook::new(src).env("DEPLOY_TOKEN", "s3cr3t-Pa55-value").arg("-v").run();
    v.code(0);
    let shown: Vec<&str> = v.stderr.lines().collect();
    let at = shown.iter().position(|l| l.contains("• deployed")).expect("the event's line");
    assert!(
        shown[at + 1..].iter().any(|l| l.starts_with("      ") && l.trim() == r#""name": "web-39.example.internal","#),
        "-v shows the payload indented, one field a line: {}",
        v.stderr
    );
    assert!(v.stderr.contains(r#""token": "***""#) && !v.stderr.contains("s3cr3t-Pa55-value"), "{}", v.stderr);
}
