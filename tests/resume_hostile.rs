//! `--resume` and the journal under hostile input: steps named with a
//! secret, big and unreplayable values, secrets inside values, a journal on
//! a full disk, a torn or corrupt journal.

use serde_json::Value;

use crate::support::{named, Playbook, Run};

fn lines(p: &Playbook, file: &str) -> usize {
    std::fs::read_to_string(p.path(file)).map_or(0, |t| t.lines().count())
}

fn resume(p: &Playbook, env: &[(&str, &str)]) -> Run {
    let mut c = p.command("run");
    c.args(["--resume", "last", "--log-format", "plain"]);
    for (k, v) in env {
        c.env(k, v);
    }
    Run::from(c.output().unwrap())
}

fn run_dir(p: &Playbook) -> std::path::PathBuf {
    let runs: Vec<_> = std::fs::read_dir(p.path(".capstan/runs")).unwrap().flatten().collect();
    assert_eq!(runs.len(), 1);
    runs[0].path()
}

fn journal_events(p: &Playbook) -> Vec<Value> {
    let text = std::fs::read_to_string(run_dir(p).join("journal.jsonl")).unwrap();
    text.lines().map(|l| serde_json::from_str(l).expect("every journal line parses")).collect()
}

/// Fails until the file `go` exists: the first attempt stops there.
const READY: &str = r#"fn ready() { if !fs::exists("go") { fail("not yet") } }"#;

#[test]
fn a_step_named_with_a_secret_is_not_run_again() {
    let p = Playbook::new(&format!(
        r#"
        phase("do", || {{
            let tok = secret("DEPLOY_TOKEN");
            step(`login-${{tok}}`, || {{ sh("echo x >> ran-login"); "logged in" }});
            step("after", || ready());
        }});
        {READY}
        "#
    ))
    .env("DEPLOY_TOKEN", "tok-5ecret-4242");
    p.run().code(1);
    std::fs::write(p.path("go"), "").unwrap();
    let r = resume(&p, &[]);
    r.code(0);
    assert_eq!(lines(&p, "ran-login"), 1, "the step whose name holds the secret ran once: {}", r.stderr);
    let journal = std::fs::read_to_string(run_dir(&p).join("journal.jsonl")).unwrap();
    assert!(!journal.contains("tok-5ecret-4242"), "{journal}");
    let events = journal_events(&p);
    let started = named(&events, "step_started");
    let key = started[0]["step_key"].as_str().expect("step_started carries a step_key");
    assert_eq!(key.len(), 32);
    let resumed: Vec<_> = named(&events, "step_finished").into_iter().filter(|e| e["resumed"] == true).collect();
    assert_eq!(resumed.len(), 1);
    assert_eq!(resumed[0]["step_key"], key, "same key in both attempts");
    assert_eq!(resumed[0]["step"], "login-***");
}

#[test]
fn a_value_over_one_mebibyte_is_replayed_from_its_file() {
    let p = Playbook::new(&format!(
        r#"
        phase("do", || {{
            let v = step("big", || {{
                sh("echo x >> ran-big");
                let s = "";
                s.pad(2000000, 'y');
                #{{ blob: s, n: 7 }}
            }});
            step("use", || {{ ready(); fs::write("seen", `${{v.blob.len()}} ${{v.n}}`); }});
        }});
        {READY}
        "#
    ));
    p.run().code(1);
    let dir = run_dir(&p);
    let journal = std::fs::read_to_string(dir.join("journal.jsonl")).unwrap();
    assert!(journal.len() < 100_000, "the big value is not in a journal line ({} bytes)", journal.len());
    let finished =
        named(&journal_events(&p), "step_finished").into_iter().find(|e| e["step"] == "big").cloned().unwrap();
    let file = finished["value_file"].as_str().expect("value_file");
    assert!(file.starts_with("values/"), "{file}");
    assert!(std::fs::metadata(dir.join(file)).unwrap().len() > 2_000_000);

    std::fs::write(p.path("go"), "").unwrap();
    let r = resume(&p, &[]);
    r.code(0);
    assert_eq!(lines(&p, "ran-big"), 1, "the big step ran once: {}", r.stderr);
    assert_eq!(std::fs::read_to_string(p.path("seen")).unwrap(), "2000000 7");
}

#[test]
fn a_closure_value_is_said_to_run_again_before_anything_runs() {
    let p = Playbook::new(&format!(
        r#"
        phase("do", || {{
            step("first", || sh("echo x >> ran-first"));
            let f = step("make", || {{ sh("echo x >> ran-make"); |x| x * 6 }});
            let deep = step("deep", || {{ sh("echo x >> ran-deep"); let a = [1]; for i in 0..150 {{ a = [a]; }} a }});
            step("use", || {{ ready(); fs::write("seen", `${{f.call(7)}}`); }});
        }});
        {READY}
        "#
    ));
    p.run().code(1);
    // Every line of the journal reads back, the deep value's too.
    let events = journal_events(&p);
    let deep = named(&events, "step_finished").into_iter().find(|e| e["step"] == "deep").cloned().unwrap();
    assert_eq!(deep["value_unrecorded"], true);
    assert!(deep["value_unrecorded_why"].as_str().unwrap().contains("deeper than 100 levels"), "{deep}");

    std::fs::write(p.path("go"), "").unwrap();
    let r = resume(&p, &[]);
    r.code(0);
    assert_eq!(lines(&p, "ran-first"), 1);
    assert_eq!(lines(&p, "ran-make"), 2, "a closure cannot be replayed: the step ran again");
    assert_eq!(lines(&p, "ran-deep"), 2);
    assert_eq!(std::fs::read_to_string(p.path("seen")).unwrap(), "42");
    let said = r.stderr.find("step `do/make` completed in run").unwrap_or_else(|| panic!("{}", r.stderr));
    assert!(r.stderr[said..].contains("(a closure or function pointer) cannot be replayed: it runs again"));
    assert!(r.stderr.contains("step `do/deep` completed in run"), "{}", r.stderr);
    let first_step_line = r.stderr.find("✓ first").unwrap();
    assert!(said < first_step_line, "said before any step ran:\n{}", r.stderr);
}

const MINT: &str = r#"
phase("do", || {
    let v = step("mint", || {
        sh("echo x >> ran-mint");
        let tok = secret("API_TOKEN");
        #{ header: `Bearer ${tok}`, list: [tok, "plain"], n: 3 }
    });
    step("use", || {
        sh("echo x >> ran-use");
        ready();
        fs::write("seen", `${v.header}|${v.list[0]}|${v.list[1]}|${v.n}`);
    });
});
"#;

#[test]
fn a_secret_inside_a_value_replays_its_current_value() {
    let p = Playbook::new(&format!("{MINT}\n{READY}")).env("API_TOKEN", "old-tok-1111");
    p.run().code(1);
    let finished =
        named(&journal_events(&p), "step_finished").into_iter().find(|e| e["step"] == "mint").cloned().unwrap();
    assert_eq!(finished["value"]["header"], "Bearer ***");
    assert_eq!(finished["value_secrets"].as_array().unwrap().len(), 2, "{finished}");
    std::fs::write(p.path("go"), "").unwrap();
    let r = resume(&p, &[("API_TOKEN", "new-tok-2222")]);
    r.code(0);
    assert_eq!(lines(&p, "ran-mint"), 1, "{}", r.stderr);
    assert_eq!(std::fs::read_to_string(p.path("seen")).unwrap(), "Bearer new-tok-2222|new-tok-2222|plain|3");
    let all = p.journal_text();
    assert!(!all.contains("old-tok-1111") && !all.contains("new-tok-2222"), "the journal holds no value");
    assert!(!r.all().contains("new-tok-2222"));
}

#[test]
fn resume_exits_2_before_anything_runs_when_a_replayed_secret_is_gone() {
    let p = Playbook::new(&format!("{MINT}\n{READY}")).env("API_TOKEN", "old-tok-1111");
    p.run().code(1);
    let journal = std::fs::read(run_dir(&p).join("journal.jsonl")).unwrap();
    std::fs::write(p.path("go"), "").unwrap();
    let mut c = p.command("run");
    c.args(["--resume", "last", "--log-format", "plain"]).env_remove("API_TOKEN");
    let r = Run::from(c.output().unwrap());
    r.code(2);
    assert!(r.stderr.contains("secret `API_TOKEN`") && r.stderr.contains("step `do/mint`"), "{}", r.stderr);
    assert_eq!(lines(&p, "ran-use"), 1, "nothing ran");
    assert_eq!(std::fs::read(run_dir(&p).join("journal.jsonl")).unwrap(), journal, "the journal is untouched");
}

/// A hundred steps, each with an undo; the journal may grow to 8 KiB (16 KiB
/// where `sh` counts `ulimit -f` in KiB).
#[test]
fn a_journal_that_cannot_be_written_stops_the_run_and_undoes() {
    let p = Playbook::new(
        r#"
        phase("do", || {
            for i in 0..100 {
                step(`s${i}`, #{ undo: || sh("echo x >> undone") }, || {
                    sh(`echo ${i} >> done; echo some output to fill the journal line ${i}`);
                });
            }
        });
        "#,
    );
    // RLIMIT_FSIZE: a write past 8 KiB fails with EFBIG (SIGXFSZ ignored),
    // as it would on a full disk.
    let out = std::process::Command::new("sh")
        .current_dir(p.dir.path())
        .env("NO_COLOR", "1")
        .args(["-c", r#"ulimit -f 16 && trap '' XFSZ && exec "$0" "$@""#])
        .arg(crate::support::capstan_bin())
        .args(["run", "deploy.rhai", "--log-format", "plain"])
        .output()
        .unwrap();
    let r = Run::from(out);
    r.code(1);
    let done = lines(&p, "done");
    assert!(done > 0 && done < 100, "the run stopped early ({done} steps ran):\n{}", r.stderr);
    assert_eq!(lines(&p, "undone"), done, "every step that ran was undone:\n{}", r.stderr);
    assert!(r.stderr.contains("the journal could not be written"), "{}", r.stderr);
    let journal = std::fs::canonicalize(run_dir(&p).join("journal.jsonl")).unwrap();
    let said = format!("cannot write the journal {}: File too large", journal.display());
    assert!(r.stderr.contains(&said), "says what, where and why:\n{}", r.stderr);
    let before = format!("the run stops before step `s{done}`");
    let after = format!("the run stops after step `s{}`", done - 1);
    assert!(r.stderr.contains(&before) || r.stderr.contains(&after), "says where it stopped:\n{}", r.stderr);
}

#[test]
fn a_torn_or_corrupt_journal_is_read_and_its_bad_lines_named() {
    let p = Playbook::new(&format!(
        r#"
        phase("do", || {{
            step("a", || {{ sh("echo x >> ran-a"); 1 }});
            step("b", || {{ sh("echo x >> ran-b"); 2 }});
            step("c", || {{ ready(); sh("echo x >> ran-c"); }});
        }});
        {READY}
        "#
    ));
    p.run().code(1);
    let path = run_dir(&p).join("journal.jsonl");
    let text = std::fs::read(&path).unwrap();
    let mut lines_of: Vec<Vec<u8>> = text.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect();
    lines_of.pop();
    // Line 2 (`phase_started`) gets bytes that are not UTF-8; a torn line ends the file.
    assert!(String::from_utf8_lossy(&lines_of[1]).contains("phase_started"));
    lines_of[1] = b"{\"event\":\"log\",\"message\":\"\xff\xfe\"}".to_vec();
    let count = lines_of.len();
    let mut damaged = lines_of.join(&b'\n');
    damaged.extend_from_slice(b"\n{\"ts\":\"2030-01-01T00:00:00.000Z\",\"event\":\"step_fini");
    std::fs::write(&path, damaged).unwrap();

    std::fs::write(p.path("go"), "").unwrap();
    let r = resume(&p, &[]);
    r.code(0);
    assert_eq!((lines(&p, "ran-a"), lines(&p, "ran-b"), lines(&p, "ran-c")), (1, 1, 1), "{}", r.stderr);
    let torn = count + 1;
    assert!(
        r.stderr.contains(&format!("line 2 (not UTF-8), line {torn} (cut off: no end of line)")),
        "names the lines it ignored:\n{}",
        r.stderr
    );
}
