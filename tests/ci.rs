//! CI outputs: `JUnit` read by a real consumer, GitHub workflow commands.

use crate::support::{Playbook, Run};

const MIXED: &str = r#"
phase("build", || {
    step("compile", || run(["echo", "compiled"]));
    step("lint", || 1);
});
phase("test", || {
    step("unit", || 2);
    step("integration", #{ when: false }, || 3);
    step("e2e", || sh("echo 'checkout page returned 500' >&2; exit 1"));
});
"#;

#[test]
fn junit_is_read_by_junitparser_with_the_right_counts() {
    let p = Playbook::new(MIXED);
    let junit = p.path("out/junit.xml");
    let r = Run::from(p.command("run").arg("--junit").arg(&junit).args(["--log-format", "plain"]).output().unwrap());
    r.code(1);
    let script = r"
import sys
from junitparser import JUnitXml, Failure, Skipped
xml = JUnitXml.fromfile(sys.argv[1])
passed = failed = skipped = 0
messages = []
for suite in xml:
    for case in suite:
        if not case.result:
            passed += 1
        for res in case.result:
            if isinstance(res, Failure):
                failed += 1
                messages.append(res.message)
            elif isinstance(res, Skipped):
                skipped += 1
print(passed, failed, skipped)
print(messages[0])
";
    let out = std::process::Command::new("python3").arg("-c").arg(script).arg(&junit).output().expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "junitparser failed: {}", String::from_utf8_lossy(&out.stderr));
    let mut lines = stdout.lines();
    assert_eq!(lines.next(), Some("3 1 1"));
    assert!(lines.next().unwrap().contains("failed with exit status 1: checkout page returned 500"), "{stdout}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("<testsuite name=\"build\"") && xml.contains("<testsuite name=\"test\""), "{xml}");
}

#[test]
fn github_format_groups_errors_masks_and_summary() {
    let p = Playbook::new(&format!("let t = secret(\"GH_TOKEN_TEST\");\n{MIXED}"));
    let summary = p.path("summary.md");
    let r = Run::from(
        p.command("run")
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_STEP_SUMMARY", &summary)
            .env("GH_TOKEN_TEST", "ghp_abcdef123456")
            .output()
            .unwrap(),
    );
    r.code(1);
    let out = &r.stdout;
    assert!(out.lines().next().unwrap().starts_with("::add-mask::ghp_abcdef123456"), "masks come first: {out}");
    assert!(out.contains("::group::phase build") && out.contains("::endgroup::"), "{out}");
    assert!(out.contains("::error file=deploy.rhai,line=10,col=20,title=step e2e failed::"), "{out}");
    assert!(out.contains("  ✓ compile"), "{out}");
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(md.contains("| phase | step | status | duration | attempts |"), "{md}");
    assert!(md.contains("| test | e2e | ❌ failed |"), "{md}");
    assert!(md.contains("**Failed:** `test/e2e`"), "{md}");
}

/// A run that stops in the top level (a missing secret) still leaves CI a
/// report (`--junit`); a failed step's `<failure>` has the message and the output.
#[test]
fn junit_is_written_for_a_missing_secret_and_carries_failure_output() {
    let p = Playbook::new(r#"let t = secret("CAPSTAN_TEST_ABSENT_TOKEN"); phase("do", || step("x", || 1));"#);
    let r = Run::from(
        p.command("run").args(["--junit", "junit.xml"]).env_remove("CAPSTAN_TEST_ABSENT_TOKEN").output().unwrap(),
    );
    r.code(2);
    let xml = std::fs::read_to_string(p.path("junit.xml")).expect("a JUnit file for a run stopped at the top level");
    assert!(xml.contains(r#"<testcase name="secret CAPSTAN_TEST_ABSENT_TOKEN""#), "{xml}");
    assert!(xml.contains(r#"failures="1""#) && xml.contains("is not set"), "{xml}");

    let p = Playbook::new(r#"phase("do", || step("fails", || sh("echo from-stdout; echo from-stderr >&2; exit 3")));"#);
    let r = Run::from(p.command("run").args(["--junit", "junit.xml"]).output().unwrap());
    r.code(1);
    let xml = std::fs::read_to_string(p.path("junit.xml")).unwrap();
    let failure = &xml[xml.find("<failure").expect("a failure")..xml.find("</failure>").expect("with a body")];
    assert!(failure.contains("exit status 3"), "{failure}");
    assert!(failure.contains("from-stdout") && failure.contains("from-stderr"), "{failure}");
}
