//! `capstan repl` driven through a pseudo-terminal, as an operator types:
//! line editing, multi-line input, completion, Ctrl-C, a loaded playbook.

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::pty::{openpty, Winsize};

use crate::support::{capstan_bin, processes_with, wait_until, Playbook};

/// A `capstan repl` on its own terminal: `setsid --ctty` makes the pty its
/// controlling terminal, so Ctrl-C is turned into SIGINT by the terminal as
/// it is for a person.
struct Terminal {
    child: Child,
    input: File,
    screen: Arc<Mutex<Vec<u8>>>,
    /// How much of the screen the last `expect` consumed.
    seen: usize,
}

impl Terminal {
    fn start(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        let size = Winsize { ws_row: 40, ws_col: 200, ws_xpixel: 0, ws_ypixel: 0 };
        let pty = openpty(Some(&size), None).expect("openpty");
        let mut cmd = Command::new("setsid");
        cmd.arg("--ctty")
            .arg(capstan_bin())
            .arg("repl")
            .args(args)
            .current_dir(dir)
            .env("TERM", "xterm-256color")
            .env("XDG_STATE_HOME", dir.join("state"))
            .env_remove("NO_COLOR")
            .stdin(Stdio::from(pty.slave.try_clone().expect("dup")))
            .stdout(Stdio::from(pty.slave.try_clone().expect("dup")))
            .stderr(Stdio::from(pty.slave));
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn capstan repl");
        let master = File::from(pty.master);
        let mut reader = master.try_clone().expect("dup master");
        let screen = Arc::new(Mutex::new(Vec::new()));
        let sink = screen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // EIO once the last holder of the terminal has exited.
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        let mut t = Self { child, input: master, screen, seen: 0 };
        t.expect("capstan> ", Duration::from_secs(20));
        t
    }

    fn send(&mut self, keys: &str) {
        self.input.write_all(keys.as_bytes()).expect("write to the terminal");
        self.input.flush().unwrap();
    }

    /// The screen so far, escape sequences removed, `\r` dropped.
    fn text(&self) -> String {
        strip_ansi(&String::from_utf8_lossy(&self.screen.lock().unwrap()))
    }

    /// Wait until `needle` appears after what earlier calls consumed; returns
    /// the text up to and including it.
    fn expect(&mut self, needle: &str, timeout: Duration) -> String {
        self.expect_any(&[needle], timeout)
    }

    fn expect_any(&mut self, needles: &[&str], timeout: Duration) -> String {
        let end = Instant::now() + timeout;
        loop {
            let text = self.text();
            let rest = text.get(self.seen..).unwrap_or("");
            if let Some((i, n)) = needles.iter().filter_map(|n| rest.find(n).map(|i| (i, n.len()))).min() {
                let got = rest[..i + n].to_string();
                self.seen += i + n;
                return got;
            }
            assert!(
                Instant::now() < end,
                "did not see {needles:?} within {timeout:?}; the screen after the last match:\n{rest}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Type a line and wait for the next prompt; returns what was printed.
    fn line(&mut self, keys: &str) -> String {
        self.send(keys);
        self.send("\r");
        self.expect_any(&["capstan> ", "capstan (dry-run)> "], Duration::from_secs(20))
    }

    fn quit(mut self) -> i32 {
        self.send("\x04");
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            if Instant::now() > end {
                let _ = self.child.kill();
                panic!("capstan repl did not quit on Ctrl-D:\n{}", self.text());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => match chars.next() {
                Some('[') => {
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
                Some(']') => {
                    for c in chars.by_ref() {
                        if c == '\x07' {
                            break;
                        }
                    }
                }
                _ => {}
            },
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

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
let service = param("service", "web");
phase("plan", || {
    step("write plan", || run(["sh", "-c", `echo planned ${service} > plan.txt`]));
});
phase("do", || { step("ship", || run(["sh", "-c", "echo shipped > do.txt"])); });
"#;

#[test]
fn an_operator_session_through_a_terminal() {
    let pb = Playbook::new(PLAYBOOK);
    let mut t = Terminal::start(pb.dir.path(), &["deploy.rhai", "--param", "service=checkout"], &[]);

    let out = t.line("1 + 2");
    assert_eq!(printed(&out), ["3"], "1 + 2 prints 3; the screen: {out:?}");

    // An open block continues on the next line; the result comes when it closes.
    t.send("if service == \"checkout\" {\r");
    t.expect("\n", Duration::from_secs(5));
    t.send("  40 + 2\r");
    t.send("}\r");
    let out = t.expect("\n42\n", Duration::from_secs(20));
    assert!(!out.contains("error"), "the multi-line `if` completes with 42: {out}");
    t.expect("capstan> ", Duration::from_secs(5));

    // Tab completes a namespaced primitive.
    t.send(":doc health::ch\t");
    t.expect("health::check", Duration::from_secs(5));
    let out = t.line("");
    assert!(out.contains("health::check(target) -> Map"), "the completed name was looked up: {out}");

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
    let mut t = Terminal::start(pb.dir.path(), &[], &[]);
    t.send("sh(\"sleep 37.25\")\r");
    assert!(wait_until(Duration::from_secs(10), || !processes_with("sleep 37.25").is_empty()), "sleep started");
    let pressed = Instant::now();
    t.send("\x03");
    let out = t.expect("capstan> ", Duration::from_secs(5));
    let took = pressed.elapsed();
    assert!(took < Duration::from_secs(1), "back at the prompt in {took:?}");
    assert!(out.contains("interrupted"), "{out}");
    assert!(processes_with("sleep 37.25").is_empty(), "no sleep is left: {:?}", processes_with("sleep 37.25"));

    // The session goes on, and a second Ctrl-C works as well as the first.
    assert_eq!(printed(&t.line("6 * 7")), ["42"]);
    t.send("sh(\"sleep 37.5\")\r");
    assert!(wait_until(Duration::from_secs(10), || !processes_with("sleep 37.5").is_empty()));
    t.send("\x03");
    t.expect("capstan> ", Duration::from_secs(5));
    assert!(processes_with("sleep 37.5").is_empty());

    // Ctrl-C at the prompt clears the line and does not quit.
    t.send("this line is abandoned\x03");
    t.expect("capstan> ", Duration::from_secs(5));
    assert_eq!(printed(&t.line("1")), ["1"]);
    assert_eq!(t.quit(), 0);
}

#[test]
fn secrets_are_masked_in_results_and_history() {
    let pb = Playbook::new("let token = secret(\"API_TOKEN\");");
    let secret = "s3cr3t-value-91827";
    let mut t = Terminal::start(pb.dir.path(), &["deploy.rhai"], &[("API_TOKEN", secret)]);
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
    let t = Terminal::start(pb.dir.path(), &["deploy.rhai", "--lock", "prod"], &[]);
    let blocked = pb.command("run").args(["--lock", "prod"]).output().unwrap();
    assert_eq!(blocked.status.code(), Some(3), "{}", String::from_utf8_lossy(&blocked.stderr));
    assert_eq!(t.quit(), 0);
    let free = pb.command("run").args(["--lock", "prod"]).output().unwrap();
    assert_eq!(free.status.code(), Some(0), "released when the session ends");
}

#[test]
fn piped_input_runs_without_a_terminal() {
    let pb = Playbook::new("");
    let mut child = Command::new(capstan_bin())
        .args(["repl"])
        .current_dir(pb.dir.path())
        .env("XDG_STATE_HOME", pb.path("state"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"let a = [1, 2];\na.len() + 1\n\"done\"\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "3\n\"done\"\n");
}
