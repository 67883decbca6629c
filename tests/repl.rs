//! `capstan repl` driven through a pseudo-terminal, as an operator types:
//! line editing, multi-line input, completion, Ctrl-C, a loaded playbook.

use std::time::{Duration, Instant};

use crate::support::pty::Terminal;
use crate::support::{processes_with, wait_until, Playbook};

/// The lines a command printed: its echo and the next prompt cut off.
fn printed(screen: &str) -> Vec<String> {
    screen
        .lines()
        .skip(1)
        .map(|l| l.trim_end().to_string())
        .filter(|l| !l.is_empty() && !l.starts_with("capstan") && !l.ends_with('>'))
        .collect()
}

const PLAYBOOK: &str = r#"
import "capstan/semver" as semver;
let service = param("service", "web");
phase("plan", || {
    step("write plan", || run(["sh", "-c", `echo planned ${service} > plan.txt`]));
});
phase("do", || { step("ship", || run(["sh", "-c", "echo shipped > do.txt"])); });
"#;

#[test]
fn an_operator_session_through_a_terminal() {
    let pb = Playbook::new(PLAYBOOK);
    let mut t = Terminal::repl(pb.dir.path(), &["deploy.rhai", "--param", "service=checkout"], &[]);

    let out = t.line("1 + 2");
    assert_eq!(printed(&out), ["3"], "1 + 2 prints 3; the screen: {out:?}");

    // An open block continues on the next line; the result comes when it closes.
    t.send("if service == \"checkout\" {\r");
    t.expect("\n", Duration::from_secs(5));
    t.send("  40 + 2\r");
    t.send("}\r");
    let out = t.expect("\n42", Duration::from_secs(20));
    assert!(!out.contains("error"), "the multi-line `if` completes with 42: {out}");
    t.prompt();

    // Tab completes a namespaced primitive.
    t.send(":doc health::ch\t");
    t.expect("health::check", Duration::from_secs(5));
    let out = t.line("");
    assert!(out.contains("health::check(target) -> Map"), "the completed name was looked up: {out}");

    // After `name(` the signatures are hinted; the hint is not input.
    t.send("health::check(");
    t.expect("target) -> Map", Duration::from_secs(5));
    t.send("\x15");
    let out = t.line("1");
    assert_eq!(printed(&out), ["1"], "Ctrl-U cleared the line, hint and all: {out}");

    // Modules imported by the playbook, and at the prompt, complete too.
    t.send("semver::bu\t");
    t.expect("semver::bump", Duration::from_secs(5));
    let out = t.line("(\"1.2.3\", \"minor\")");
    assert_eq!(printed(&out), ["\"1.3.0\""], "{out}");
    t.line("import \"capstan/gates\" as g;");
    t.send("g::ev\t");
    t.expect("g::evaluate", Duration::from_secs(5));
    t.line("");

    // :run runs the loaded playbook's phase, with the session's params.
    let out = t.line(":phases");
    assert_eq!(printed(&out), ["plan", "do"]);
    let out = t.line(":run plan");
    assert!(out.contains("plan: done"), "{out}");
    assert_eq!(std::fs::read_to_string(pb.path("plan.txt")).unwrap(), "planned checkout\n");
    assert!(!pb.path("do.txt").exists(), "only the named phase ran");

    // Dry-run is a switch: the next command shows what it would do.
    t.line(":dry-run on");
    let out = t.line("run([\"touch\", \"dry.txt\"])");
    assert!(out.contains("would run: touch dry.txt"), "{out}");
    assert!(!pb.path("dry.txt").exists());
    t.line(":dry-run off");

    // Errors render like `run`'s, with the line and a caret, and the session goes on.
    let out = t.line("let x = ;");
    assert!(out.contains("<repl>:1:9") && out.contains('^'), "{out}");
    let out = t.line("x = 5");
    assert!(out.contains("error:") && out.contains("<repl>:1:1"), "an undefined variable is an error: {out}");

    // An approval asks on the terminal, as in a run.
    t.send("approve(\"prod\", \"go ahead?\")\r");
    t.expect("approve `prod`? [y/N]", Duration::from_secs(10));
    let out = t.line("y");
    assert!(out.contains("approval `prod` given by ") && out.contains(" on the terminal"), "{out}");
    assert!(printed(&out).last().is_some_and(|l| l.ends_with("true")), "the result: {out}");

    let out = t.line("run([\"false\"])");
    assert!(out.contains("error:") && out.contains("false"), "a failing command says so: {out}");
    assert_eq!(t.quit(), 0);

    // The session is journaled like a run: the typed commands and the phase.
    let runs = std::fs::read_dir(pb.path(".capstan/runs")).unwrap().flatten().collect::<Vec<_>>();
    assert_eq!(runs.len(), 1, "one session, one run");
    let journal = std::fs::read_to_string(runs[0].path().join("journal.jsonl")).unwrap();
    let events: Vec<serde_json::Value> = journal.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let steps: Vec<&str> =
        events.iter().filter(|e| e["event"] == "step_finished").filter_map(|e| e["step"].as_str()).collect();
    assert!(steps.contains(&"#1 1 + 2"), "{steps:?}");
    assert!(steps.contains(&"write plan"), "{steps:?}");
    assert!(steps.iter().any(|s| s.contains("touch")), "{steps:?}");
    let last = events.last().unwrap();
    assert_eq!(last["event"], "run_finished");
    assert_eq!(last["status"], "failed", "a command failed: {last}");
}

#[test]
fn ctrl_c_cancels_the_running_command_and_keeps_the_session() {
    let pb = Playbook::new("");
    let mut t = Terminal::repl(pb.dir.path(), &[], &[]);
    t.send("sh(\"sleep 37.25\")\r");
    assert!(wait_until(Duration::from_secs(10), || !processes_with("sleep 37.25").is_empty()), "sleep started");
    let pressed = Instant::now();
    t.send("\x03");
    let out = t.prompt();
    let took = pressed.elapsed();
    assert!(took < Duration::from_secs(1), "back at the prompt in {took:?}");
    assert!(out.contains("interrupted"), "{out}");
    assert!(processes_with("sleep 37.25").is_empty(), "no sleep is left: {:?}", processes_with("sleep 37.25"));

    // The session goes on, and a second Ctrl-C works as well as the first.
    assert_eq!(printed(&t.line("6 * 7")), ["42"]);
    t.send("sh(\"sleep 37.5\")\r");
    assert!(wait_until(Duration::from_secs(10), || !processes_with("sleep 37.5").is_empty()));
    t.send("\x03");
    t.prompt();
    assert!(processes_with("sleep 37.5").is_empty());

    // Ctrl-C at the prompt clears the line and does not quit.
    t.send("this line is abandoned\x03");
    t.prompt();
    assert_eq!(printed(&t.line("1")), ["1"]);
    assert_eq!(t.quit(), 0);
}

#[test]
fn secrets_are_masked_in_results_and_history() {
    let pb = Playbook::new("let token = secret(\"API_TOKEN\");");
    let secret = "s3cr3t-value-91827";
    let mut t = Terminal::repl(pb.dir.path(), &["deploy.rhai"], &[("API_TOKEN", secret)]);
    let out = t.line("token");
    let out2 = t.line(&format!("\"{secret}\".len()"));
    assert_eq!(printed(&out2), [secret.len().to_string()]);
    let out3 = t.line(":vars");
    assert_eq!(t.quit(), 0);
    for text in [&out, &out3] {
        assert!(!text.contains(secret), "the secret leaked: {text}");
        assert!(text.contains("***"), "{text}");
    }
    let history: String = std::fs::read_dir(pb.path("state/capstan/history"))
        .unwrap()
        .flatten()
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect();
    assert!(history.contains(".len()"), "the history is kept per project: {history}");
    assert!(!history.contains(secret), "the history masks secrets: {history}");
}

#[test]
fn a_lock_held_by_a_session_blocks_a_run() {
    let pb = Playbook::new("phase(\"do\", || run([\"true\"]));");
    let t = Terminal::repl(pb.dir.path(), &["deploy.rhai", "--lock", "prod"], &[]);
    let blocked = pb.command("run").args(["--lock", "prod"]).output().unwrap();
    assert_eq!(blocked.status.code(), Some(3), "{}", String::from_utf8_lossy(&blocked.stderr));
    assert_eq!(t.quit(), 0);
    let free = pb.command("run").args(["--lock", "prod"]).output().unwrap();
    assert_eq!(free.status.code(), Some(0), "released when the session ends");
}

#[test]
fn piped_input_runs_without_a_terminal() {
    let pb = Playbook::new("");
    let out = crate::support::repl_piped(&pb, &[], b"let a = [1, 2];\na.len() + 1\n\"done\"\n");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "3\n\"done\"\n");
}

#[test]
fn sigterm_at_the_prompt_ends_the_session_and_closes_its_run() {
    let pb = Playbook::new("");
    let mut t = Terminal::repl(pb.dir.path(), &[], &[]);
    assert_eq!(printed(&t.line("2 + 2")), ["4"]);
    let pid = nix::unistd::Pid::from_raw(t.pid() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    assert_eq!(t.wait(Duration::from_secs(10)), 130);
    let runs: Vec<_> = std::fs::read_dir(pb.path(".capstan/runs")).unwrap().flatten().collect();
    let journal = std::fs::read_to_string(runs[0].path().join("journal.jsonl")).unwrap();
    let last: serde_json::Value = serde_json::from_str(journal.lines().last().unwrap()).unwrap();
    assert_eq!(last["event"], "run_finished", "{journal}");
    assert_eq!(last["status"], "interrupted");
    assert_eq!(last["exit_code"], 130);
}
