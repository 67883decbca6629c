//! CI outputs: `JUnit` read by real consumers (junitparser, the schema
//! Jenkins xUnit validates against), GitHub workflow commands.

use std::path::{Path, PathBuf};

use crate::support::{repo_root, Playbook, Run};

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

/// The `JUnit` schema Jenkins xUnit validates reports against; where the copy
/// comes from is in tests/schemas/README.md.
fn junit_xsd() -> PathBuf {
    repo_root().join("tests/schemas/junit-10.xsd")
}

/// What `xmlschema` finds wrong with each file against `xsd`: one line per
/// error, empty when every file is valid.
fn schema_errors(xsd: &Path, files: &[PathBuf]) -> String {
    let script = r"
import sys, xmlschema
schema = xmlschema.XMLSchema(sys.argv[1])
for f in sys.argv[2:]:
    for e in schema.iter_errors(f):
        print(f'{f}: {e.path}: {e.reason}')
";
    let out =
        std::process::Command::new("python3").arg("-c").arg(script).arg(xsd).args(files).output().expect("python3");
    assert!(
        out.status.success(),
        "xmlschema failed (scripts/install-test-deps installs it from PyPI): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every kind of report capstan writes passes the XSD Jenkins xUnit checks
/// `JUnit` files with: a success, a failure with undo, skipped and dry-run
/// steps, a resumed run whose earlier steps are skipped, a run stopped at
/// the top level by a missing secret, and a compliance phase whose gate fails
/// on the scanners' findings.
#[test]
fn junit_matches_the_jenkins_xunit_schema() {
    let mut reports = Vec::new();

    let ok = Playbook::new(
        r#"
phase("build", || {
    step("compile", || run(["echo", "compiled <ok> & \"done\""]));
    step("optional", #{ when: false }, || 1);
    step("flaky", #{ allow_failure: true }, || fail("tolerated"));
});
"#,
    );
    ok.command("run").args(["--junit", "junit.xml"]).output().map(Run::from).unwrap().code(0);
    // Rewriting the report for the schema leaves its text as it was.
    let xml = std::fs::read_to_string(ok.path("junit.xml")).unwrap();
    assert!(xml.contains("<system-out>compiled &lt;ok&gt; &amp; &quot;done&quot;</system-out>"), "{xml}");
    reports.push(ok.path("junit.xml"));

    let undone = Playbook::new(
        r#"
phase("deploy", || {
    step("one", #{ undo: || sh("echo undo-one") }, || sh("echo one"));
    step("two", || sh("echo broken >&2; exit 3"));
});
phase("after", || {
    step("never", || 1);
});
"#,
    );
    let r = Run::from(undone.command("run").args(["--junit", "junit.xml", "--log-format", "plain"]).output().unwrap());
    r.code(1);
    assert!(r.all().contains("undo one"), "the undo ran: {}", r.all());
    reports.push(undone.path("junit.xml"));

    let outside = Playbook::new(r#"phase("deploy", || { step("one", || 1); throw "outside any step"; });"#);
    outside.command("run").args(["--junit", "junit.xml"]).output().map(Run::from).unwrap().code(1);
    reports.push(outside.path("junit.xml"));

    let dry = Playbook::new(
        r#"phase("deploy", || { step("apply", || sh("echo applied")); step("later", #{ when: false }, || 1); });"#,
    );
    dry.command("run").args(["--dry-run", "--junit", "junit.xml"]).output().map(Run::from).unwrap().code(0);
    reports.push(dry.path("junit.xml"));

    let phased = Playbook::new(
        r#"
phase("build", || { step("image", || 1); step("push", || 2); });
phase("test", || { step("unit", || 3); });
"#,
    );
    let run = |args: &[&str]| Run::from(phased.command("run").args(args).output().unwrap());
    run(&["--phase", "build", "--junit", "build.xml"]).code(0);
    run(&["--resume", "last", "--to", "test", "--junit", "test.xml"]).code(0);
    reports.extend([phased.path("build.xml"), phased.path("test.xml")]);

    let secret = Playbook::new(r#"let t = secret("CAPSTAN_TEST_ABSENT_TOKEN"); phase("do", || step("x", || 1));"#);
    Run::from(
        secret.command("run").args(["--junit", "junit.xml"]).env_remove("CAPSTAN_TEST_ABSENT_TOKEN").output().unwrap(),
    )
    .code(2);
    reports.push(secret.path("junit.xml"));

    // A compliance phase whose scan finds a secret and fails its gate.
    let scanned = Playbook::new(
        r#"phase("compliance", || {
            let found = step("scan", || compliance::secrets("src") + compliance::dockerfile("Dockerfile"));
            gate("no hardcoded secrets", found.len() == 0, "move them to the secret store");
        });"#,
    )
    .file("src/config.py", "db_password = \"hunter2-prod-9f3k\"\n")
    .file("Dockerfile", "FROM python:latest\nRUN pip install flask\n");
    let r = Run::from(scanned.command("run").args(["--junit", "junit.xml"]).output().unwrap());
    r.code(1);
    let xml = std::fs::read_to_string(scanned.path("junit.xml")).unwrap();
    assert!(xml.contains("no hardcoded secrets") && !xml.contains("hunter2-prod-9f3k"), "{xml}");
    reports.push(scanned.path("junit.xml"));

    let errors = schema_errors(&junit_xsd(), &reports);
    let shown: Vec<String> = reports.iter().map(|r| std::fs::read_to_string(r).unwrap()).collect();
    assert!(errors.is_empty(), "junit-10.xsd rejects capstan's JUnit:\n{errors}\n{}", shown.join("\n"));
    // The resumed run counts the steps an earlier attempt completed as skipped.
    let resumed = std::fs::read_to_string(phased.path("test.xml")).unwrap();
    assert!(resumed.contains(r#"<testsuite name="build" tests="2" skipped="2""#), "{resumed}");
}

/// The schema check above must be able to say no: the count of skipped tests
/// is `skipped` on `<testsuite>`, not `disabled`.
#[test]
fn the_junit_schema_rejects_a_disabled_count() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("junit.xml");
    let suite = r#"<testsuites><testsuite name="a" tests="1" COUNT="1" errors="0" failures="0"><testcase name="x"><skipped/></testcase></testsuite></testsuites>"#;
    std::fs::write(&file, suite.replace("COUNT", "disabled")).unwrap();
    assert!(schema_errors(&junit_xsd(), std::slice::from_ref(&file)).contains("disabled"));
    std::fs::write(&file, suite.replace("COUNT", "skipped")).unwrap();
    assert_eq!(schema_errors(&junit_xsd(), &[file]), "");
}
