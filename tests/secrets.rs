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
