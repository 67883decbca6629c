//! Webhooks against a real loopback HTTP server, and secrets masked in
//! every record a run leaves.

use crate::support::http::{dead_url, Server};
use crate::support::{named, Playbook, Run};

#[test]
fn webhook_retries_until_delivered_once() {
    let server = Server::start(vec![500, 503]);
    let p = Playbook::new(&format!(
        r#"phase("do", || {{
            let r = notify::webhook("{}", #{{ service: "api", version: "1.2.3" }}, #{{ retry_delay: "50ms" }});
            info(`ok=${{r.ok}} status=${{r.status}} attempts=${{r.attempts}}`);
        }});"#,
        server.url
    ));
    let r = p.run_json();
    r.code(0);
    assert_eq!(named(&r.events(), "log")[0]["message"], "ok=true status=200 attempts=3");
    let bodies = server.bodies();
    assert_eq!(bodies.len(), 3, "two failures, then one delivery");
    let delivered: serde_json::Value = serde_json::from_str(&bodies[2]).unwrap();
    assert_eq!(delivered, serde_json::json!({ "service": "api", "version": "1.2.3" }));
}

#[test]
fn dead_receiver_warns_and_the_run_succeeds_unless_required() {
    let url = dead_url();
    let p = Playbook::new(&format!(
        r#"phase("do", || {{
            notify::slack("{url}", "deployed", #{{ retries: 1, retry_delay: "10ms", timeout: "2s" }});
        }});"#
    ));
    let r = p.run();
    r.code(0);
    assert!(r.stderr.contains("notification not delivered"), "{}", r.stderr);

    let required = Playbook::new(&format!(
        r#"phase("do", || notify::webhook("{url}", #{{}}, #{{ retries: 0, required: true }}));"#
    ));
    let r = required.run();
    r.code(1);
    assert!(r.stderr.contains("notification failed"), "{}", r.stderr);
}

#[test]
fn slack_format_and_dry_run() {
    let server = Server::start(vec![]);
    let p = Playbook::new(&format!(r#"phase("do", || notify::slack("{}", "v2 is live"));"#, server.url));
    p.run().code(0);
    assert_eq!(server.bodies(), [r#"{"text":"v2 is live"}"#]);
    let dry = Playbook::new(&format!(r#"phase("do", || notify::slack("{}", "v3"));"#, server.url)).arg("--dry-run");
    let r = dry.run();
    r.code(0);
    assert!(r.stderr.contains(&format!("would run: POST {}", server.url)), "{}", r.stderr);
    assert_eq!(server.bodies().len(), 1, "dry-run posts nothing");
}

#[test]
fn notify_flag_posts_run_started_and_finished() {
    let server = Server::start(vec![]);
    let r = Playbook::new(r#"phase("do", || fail("broken"));"#).args(["--notify", &server.url]).run();
    r.code(1);
    let bodies: Vec<serde_json::Value> = server.bodies().iter().map(|b| serde_json::from_str(b).unwrap()).collect();
    assert_eq!(bodies.len(), 2);
    assert_eq!(bodies[0]["event"], "run_started");
    assert_eq!(bodies[1]["event"], "run_finished");
    assert_eq!(bodies[1]["status"], "failed");
    assert_eq!(bodies[1]["exit_code"], 1);
}

const SECRET: &str = "Tr0ub4dor&3-horse/battery";
// base64 of SECRET, and its URL-encoded form.
const B64: &str = "VHIwdWI0ZG9yJjMtaG9yc2UvYmF0dGVyeQ==";
const URLENC: &str = "Tr0ub4dor%263-horse%2Fbattery";

fn leaks(text: &str) -> Vec<&'static str> {
    [SECRET, B64, B64.trim_end_matches('='), URLENC].into_iter().filter(|s| text.contains(s)).collect()
}

#[test]
fn secret_is_masked_in_every_record_and_payload() {
    let server = Server::start(vec![]);
    let p = Playbook::new(&format!(
        r#"
        let pw = secret("DB_PASSWORD");
        phase("do", || {{
            step("raw", || run(["printf", "%s\n", pw]));
            step("b64", || sh("printf '%s' \"$PW\" | base64", #{{ env: #{{ PW: pw }} }}));
            step("url", || run(["python3", "-c", "import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=''))", pw]));
            step("split", || sh("printf 'Tr0ub4dor&3-'; sleep 0.1; printf 'horse/battery\n'"));
            notify::webhook("{url}", #{{ password: pw, note: `pw is ${{pw}}` }});
            event("connected", #{{ dsn: `postgres://app:${{pw}}@db/app` }});
            step("fails", || fail(`cannot log in with ${{pw}}`));
        }});
        on_failure(|e| report::write("reports"));
        "#,
        url = server.url
    ))
    .env("DB_PASSWORD", SECRET);
    let junit = p.path("junit.xml");
    let r =
        Run::from(p.command("run").arg("--junit").arg(&junit).args(["--log-format", "json", "-v"]).output().unwrap());
    r.code(1);
    assert!(leaks(&r.stdout).is_empty() && leaks(&r.stderr).is_empty(), "stdout/stderr leak {:?}", leaks(&r.all()));
    assert!(r.stdout.contains("\"line\":\"***\""), "the raw line is masked: {}", r.stdout);
    let journal = p.journal_text();
    assert!(journal.contains("***") && leaks(&journal).is_empty(), "journal leaks {:?}", leaks(&journal));
    let junit_xml = std::fs::read_to_string(&junit).unwrap();
    assert!(leaks(&junit_xml).is_empty(), "junit leaks");
    for f in ["reports/report.json", "reports/report.md"] {
        let text = std::fs::read_to_string(p.path(f)).unwrap();
        assert!(leaks(&text).is_empty(), "{f} leaks");
    }
    let bodies = server.bodies();
    assert_eq!(bodies.len(), 1);
    assert!(leaks(&bodies[0]).is_empty(), "payload leaks: {}", bodies[0]);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&bodies[0]).unwrap()["password"], "***");
    let show = Run::from(
        std::process::Command::new(crate::support::capstan_bin())
            .args(["runs", "show", "last"])
            .current_dir(p.dir.path())
            .output()
            .unwrap(),
    );
    assert!(leaks(&show.all()).is_empty());
    assert!(show.stdout.contains("cannot log in with ***"), "{}", show.stdout);
}
