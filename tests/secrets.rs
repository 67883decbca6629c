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

/// Everything a run leaves: stdout, stderr, the journal and the step logs.
fn everything(p: &Playbook, r: &crate::support::Run) -> String {
    format!("{}\n{}", r.all(), p.journal_text())
}

#[test]
fn multi_line_and_trailing_newline_secrets_are_masked_line_by_line() {
    for (value, parts) in [("ab12\ncd34", &["ab12", "cd34"][..]), ("pw12345\n", &["pw12345"][..])] {
        let p = Playbook::new(
            r#"
            let t = secret("TOK");
            phase("do", || {
                step("printf", || run(["printf", "%s\n", t]));
                step("sh", || sh("printf '%s\n' \"$TOK\"; printf '  %s\n' \"$TOK\" >&2"));
                info(t);
            });
            "#,
        )
        .env("TOK", value);
        let r = p.run_json();
        r.code(0);
        let all = everything(&p, &r);
        for part in parts {
            assert!(!all.contains(part), "{part:?} of {value:?} leaked: {all}");
        }
        assert!(r.stdout.contains(r#""line":"***""#), "{}", r.stdout);
    }
}

#[test]
fn a_secret_with_lines_too_short_to_mask_is_warned_about_once() {
    let p = Playbook::new(
        r#"
        let t = secret("TOK");
        let again = secret("TOK");
        phase("do", || step("print", || run(["printf", "%s\n", t])));
        "#,
    )
    .env("TOK", "{\nlong-enough-line\n}");
    let r = p.run_json();
    r.code(0);
    let warnings: Vec<String> = crate::support::named(&r.events(), "log")
        .into_iter()
        .filter(|e| e["level"] == "warn")
        .map(|e| e["message"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        warnings,
        ["secret `TOK` has 2 line(s) shorter than 4 characters, too short to mask safely: such a line is masked \
          only as part of the whole value or of a longer line, not on its own"],
        "{}",
        r.stdout
    );
    assert!(!r.all().contains("long-enough-line"), "{}", r.stdout);
}

#[test]
fn dry_run_masks_each_argument_before_quoting() {
    let p = Playbook::new(
        r#"
        let pw = secret("PW");
        phase("do", || {
            step("login", || run(["login", "--password", pw, `--token=${pw}`]));
            step("sh", || sh(`login '${pw}'`));
        });
        "#,
    )
    .env("PW", "it's-a-s3cret")
    .arg("--dry-run");
    let r = p.run();
    r.code(0);
    assert!(!r.all().contains("s-a-s3cret"), "{}", r.all());
    assert!(r.all().contains("would run: login --password '***' '--token=***'"), "{}", r.all());
}

#[test]
fn a_secret_turned_into_a_number_is_masked() {
    let p = Playbook::new(
        r#"
        let pin = secret("PIN");
        phase("do", || {
            step("int", || parse_int(pin));
            step("float", || parse_float(pin));
            step("map", || { let m = #{}; m[pin] = true; m });
            event("pin", #{ n: parse_int(pin), list: [parse_int(pin) + 0] });
        });
        on_failure(|e| ());
        "#,
    )
    .env("PIN", "73219054");
    let r = p.run_json();
    r.code(0);
    let all = everything(&p, &r);
    assert!(!all.contains("73219054"), "{all}");
    let values: Vec<serde_json::Value> =
        crate::support::named(&r.events(), "step_finished").iter().map(|e| e["value"].clone()).collect();
    assert_eq!(values, [serde_json::json!("***"), serde_json::json!("***.0"), serde_json::json!({ "***": true })]);
}

#[test]
fn list_and_ci_never_print_a_secret_used_as_default_or_phase_name() {
    const VALUE: &str = "s3cr3t-default-77";
    let source = r#"
        let t = secret("LIST_TOKEN");
        param("token", t);
        phase(`deploy-${t}`, || {});
    "#;
    let p = Playbook::new(source).env("LIST_TOKEN", VALUE);
    for json in [false, true] {
        let mut c = p.command("list");
        if json {
            c.arg("--json");
        }
        let r = crate::support::Run::from(c.output().unwrap());
        r.code(0);
        assert!(!r.all().contains(VALUE), "{}", r.all());
        assert!(r.stdout.contains("deploy-***"), "{}", r.stdout);
    }
    // A job would have to name the phase, secret and all.
    let r = crate::support::Run::from(p.command("ci").args(["--platform", "github"]).output().unwrap());
    r.code(2);
    assert!(!r.all().contains(VALUE), "{}", r.all());
    assert!(r.stderr.contains("the name of phase 1 holds the value of a secret"), "{}", r.stderr);

    let p = Playbook::new(r#"param("token", secret("CI_TOKEN")); phase("do", || {});"#).env("CI_TOKEN", VALUE);
    for platform in ["github", "gitlab", "jenkins", "circleci"] {
        let r = crate::support::Run::from(p.command("ci").args(["--platform", platform]).output().unwrap());
        r.code(0);
        assert!(!r.all().contains(VALUE), "{platform}: {}", r.stdout);
        // The run computes the default itself from the job's secret store.
        assert!(
            r.stdout.contains(r#"${CAPSTAN_PARAM_TOKEN:+--param "token=${CAPSTAN_PARAM_TOKEN}"}"#),
            "{platform}: {}",
            r.stdout
        );
    }
}

#[test]
fn the_repl_banner_masks_a_secret_in_a_phase_name() {
    use std::io::Write as _;
    let p = Playbook::new(r#"let t = secret("REPL_TOKEN"); phase(`deploy-${t}`, || {});"#);
    let mut child = std::process::Command::new(crate::support::capstan_bin())
        .args(["repl", "deploy.rhai"])
        .current_dir(p.dir.path())
        .env("XDG_STATE_HOME", p.path("state"))
        .env("REPL_TOKEN", "s3cr3t-banner-55")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"t\n").unwrap();
    let r = crate::support::Run::from(child.wait_with_output().unwrap());
    r.code(0);
    assert!(!r.all().contains("s3cr3t-banner-55"), "{}", r.all());
    assert!(r.stderr.contains("phases: deploy-***"), "{}", r.stderr);
}
