//! A secret's value appears in no output: terminal, JSON lines, step logs,
//! journal, error messages.

use crate::support::Playbook;

const VALUE: &str = "s3cr3t-Pa55-value";

fn leaky() -> Playbook {
    Playbook::new(
        r#"
        let token = secret("DEPLOY_TOKEN");
        phase("do", || {
            info(`token is ${token}`);
            step("child", || run(["echo", `child says ${token}`]));
            step("split", || sh("printf 's3cr3t-'; sleep 0.1; printf 'Pa55-value\\n'"));
            step("encoded", || run(["sh", "-c", `printf '%s' '${token}' | base64`]));
            event("used", #{ token: token });
            step("error", || fail(`bad token ${token}`));
        });
        "#,
    )
    .env("DEPLOY_TOKEN", VALUE)
}

#[test]
fn secret_never_reaches_json_or_journal() {
    let p = leaky();
    let r = p.run_json();
    r.code(1);
    assert!(!r.all().contains(VALUE), "{}", r.all());
    assert!(!r.all().contains("czNjcjN0LVBhNTUtdmFsdWU"), "base64 form leaked: {}", r.all());
    assert!(r.stdout.contains("token is ***"));
    assert!(r.stdout.contains("child says ***"));
    assert!(r.stdout.contains("bad token ***"));
    let journal = p.journal_text();
    assert!(journal.contains("***"));
    assert!(!journal.contains(VALUE), "journal or step log leaked");
    assert!(!journal.contains("czNjcjN0LVBhNTUtdmFsdWU"));
}

#[test]
fn secret_never_reaches_the_terminal() {
    let p = leaky().arg("-v");
    let r = p.run();
    r.code(1);
    assert!(!r.all().contains(VALUE), "{}", r.all());
    assert!(r.stderr.contains("error: bad token ***"), "{}", r.stderr);
}

#[test]
fn missing_secret_exits_2() {
    let r = Playbook::new(r#"let t = secret("CAPSTAN_TEST_UNSET_SECRET"); phase("do", || {});"#).run();
    r.code(2);
    assert!(r.stderr.contains("secret `CAPSTAN_TEST_UNSET_SECRET` is not set"), "{}", r.stderr);
}

#[test]
fn secret_in_phase_and_step_names_is_masked() {
    let p = Playbook::new(
        r#"
        let t = secret("NAME_TOKEN");
        phase(`deploy-${t}`, || step(`push-${t}`, || run(["echo", "x"])));
        "#,
    )
    .env("NAME_TOKEN", "s3cr3tname42");
    let r = p.run_json();
    r.code(0);
    assert!(!r.all().contains("s3cr3tname42"), "{}", r.all());
    assert!(r.stdout.contains("push-***"));
    let journal = p.journal_text();
    assert!(!journal.contains("s3cr3tname42"));
    let logs: Vec<String> = std::fs::read_dir(
        std::fs::read_dir(p.path(".capstan/runs")).unwrap().next().unwrap().unwrap().path().join("steps"),
    )
    .unwrap()
    .flatten()
    .map(|e| e.file_name().to_string_lossy().to_string())
    .collect();
    assert!(logs.iter().all(|n| !n.contains("s3cr3tname42")), "{logs:?}");
}

#[test]
fn multi_line_secret_printed_by_a_child_is_masked_line_by_line() {
    let key = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\n-----END PRIVATE KEY-----";
    let p = Playbook::new(r#"let k = secret("TLS_KEY"); phase("do", || run(["sh", "-c", "printf '%s\n' \"$K\"", "x"], #{ env: #{ K: k } }));"#).env("TLS_KEY", key);
    let r = p.run_json();
    r.code(0);
    assert!(
        !r.stdout.contains("MIIEvQIBADANBgkqhkiG9w0BAQEFAASC")
            && !r.stdout.contains("BKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj"),
        "{}",
        r.stdout
    );
    assert!(!p.journal_text().contains("MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"));
}

/// A secret's value is masked from the start of the run, even in output
/// printed before the `secret()` call that reads it (here an earlier phase
/// prints the environment variable itself).
#[test]
fn a_secret_is_masked_before_the_call_that_reads_it() {
    let value = "early-bird-secret-4412";
    let pb = Playbook::new(
        r#"
phase("init", || { step("env", || sh("echo password is $DB_PASSWORD")); });
phase("do", || { let p = secret("DB_PASSWORD"); step("use", || run(["true"])); });
"#,
    )
    .env("DB_PASSWORD", value)
    .arg("-v");
    let run = pb.run();
    run.code(0);
    assert!(run.all().contains("password is ***"), "{}", run.all());
    assert!(!run.all().contains(value));
    assert!(!pb.journal_text().contains(value), "the journal and step logs are masked too");
}

/// A line too long to keep whole is cut into pieces; a cut never falls
/// inside a secret, whose halves would each pass the masker.
#[test]
fn a_secret_across_the_long_line_cut_is_masked() {
    let value = "cut-across-secret-7781";
    let pb = Playbook::new(
        r#"let t = secret("LONG_TOKEN");
phase("do", || step("long", || sh("head -c 65530 /dev/zero | tr '\\0' x; printf '%s' \"$LONG_TOKEN\"; sleep 0.3; echo")));"#,
    )
    .env("LONG_TOKEN", value)
    .arg("-v");
    let run = pb.run();
    run.code(0);
    let journal = pb.journal_text();
    // The cut at 64 KiB falls 6 bytes into the secret: neither end may show.
    for piece in [&value[..6], &value[value.len() - 8..]] {
        assert!(!run.all().contains(piece) && !journal.contains(piece), "`{piece}` of the secret leaked");
    }
    assert!(journal.contains("***"), "the secret is masked whole");
}
