//! A pseudo-terminal for the tests that need one: capstan runs as a person
//! would run it, with the terminal as its controlling terminal (so Ctrl-C is
//! SIGINT) and stderr a tty (so the human output draws its spinners and bars).

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::pty::{openpty, Winsize};

use super::capstan_bin;

/// A `capstan repl` on its own terminal: `setsid --ctty` makes the pty its
/// controlling terminal, so Ctrl-C is turned into SIGINT by the terminal as
/// it is for a person.
pub struct Terminal {
    child: Child,
    input: File,
    screen: Arc<Mutex<Vec<u8>>>,
    /// Set once the reader has seen the terminal close: all output is in `screen`.
    drained: Arc<AtomicBool>,
    /// How much of the screen the last `expect` consumed.
    seen: usize,
    columns: u16,
}

impl Terminal {
    /// `capstan repl ARGS...`, waited for until its first prompt.
    pub fn repl(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut argv = vec!["repl"];
        argv.extend_from_slice(args);
        let mut t = Self::spawn(dir, &argv, env);
        t.prompt();
        t
    }

    /// `capstan ARGV...` on its own terminal.
    pub fn spawn(dir: &Path, argv: &[&str], env: &[(&str, &str)]) -> Self {
        Self::spawn_sized(dir, argv, env, 200)
    }

    /// `spawn` on a terminal `columns` wide; a wide one keeps long lines whole.
    pub fn spawn_sized(dir: &Path, argv: &[&str], env: &[(&str, &str)], columns: u16) -> Self {
        let size = Winsize { ws_row: 40, ws_col: columns, ws_xpixel: 0, ws_ypixel: 0 };
        let pty = openpty(Some(&size), None).expect("openpty");
        let mut cmd = Command::new("setsid");
        cmd.arg("--ctty")
            .arg(capstan_bin())
            .args(argv)
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
        let child = cmd.spawn().expect("spawn capstan");
        let master = File::from(pty.master);
        let mut reader = master.try_clone().expect("dup master");
        let screen = Arc::new(Mutex::new(Vec::new()));
        let sink = screen.clone();
        let drained = Arc::new(AtomicBool::new(false));
        let done = drained.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // EIO once the last holder of the terminal has exited.
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
            done.store(true, Ordering::SeqCst);
        });
        Self { child, input: master, screen, drained, seen: 0, columns }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Wait for capstan to exit; its exit code. What it wrote just before
    /// exiting may still be in the terminal: wait (a little) until the
    /// reader has it all, so `screen` shows the whole run.
    pub fn wait(&mut self, timeout: Duration) -> i32 {
        let end = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let drain_end = Instant::now() + Duration::from_secs(3);
                while !self.drained.load(Ordering::SeqCst) && Instant::now() < drain_end {
                    std::thread::sleep(Duration::from_millis(10));
                }
                return status.code().unwrap_or(-1);
            }
            assert!(Instant::now() < end, "capstan did not exit within {timeout:?}:\n{}", self.text());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn send(&mut self, keys: &str) {
        self.input.write_all(keys.as_bytes()).expect("write to the terminal");
        self.input.flush().unwrap();
    }

    /// The screen so far, escape sequences removed, `\r` dropped.
    pub fn text(&self) -> String {
        strip_ansi(&String::from_utf8_lossy(&self.screen.lock().unwrap()))
    }

    /// What the terminal shows once the output has settled: cursor moves and
    /// erasures applied (so spinners and bars that were cleared are gone),
    /// colours dropped, trailing blanks trimmed. Unlike `text`, which keeps
    /// every frame ever drawn, this is what a person reads after the run.
    pub fn screen(&self) -> String {
        render_screen(&String::from_utf8_lossy(&self.screen.lock().unwrap()), usize::from(self.columns))
    }

    /// Wait until `needle` appears after what earlier calls consumed; returns
    /// the text up to and including it.
    pub fn expect(&mut self, needle: &str, timeout: Duration) -> String {
        self.expect_any(&[needle], timeout)
    }

    pub fn expect_any(&mut self, needles: &[&str], timeout: Duration) -> String {
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

    /// Wait for a fresh prompt (at the start of a line: the line editor
    /// redraws the prompt on the same line while one types); returns the
    /// screen up to it.
    pub fn prompt(&mut self) -> String {
        self.expect_any(&["\ncapstan> ", "\ncapstan (dry-run)> "], Duration::from_secs(20))
    }

    /// Type a line and wait for the next prompt; returns what was printed.
    pub fn line(&mut self, keys: &str) -> String {
        self.send(keys);
        self.send("\r");
        self.prompt()
    }

    pub fn quit(mut self) -> i32 {
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

/// A scrollback of lines and a cursor, enough of a terminal for what
/// indicatif and console send: printable text with auto-wrap at `width`,
/// `\r`, `\n`, and the CSI sequences for cursor moves (A B C D G) and
/// erasure (K J); other sequences (colours, cursor visibility) are dropped.
fn render_screen(s: &str, width: usize) -> String {
    let mut lines: Vec<Vec<char>> = vec![Vec::new()];
    let (mut row, mut col) = (0usize, 0usize);
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => match chars.next() {
                Some('[') => {
                    let mut params = String::new();
                    let mut command = ' ';
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            command = c;
                            break;
                        }
                        params.push(c);
                    }
                    let n: usize = params.parse().unwrap_or(0);
                    match command {
                        'A' => row = row.saturating_sub(n.max(1)),
                        'B' => row += n.max(1),
                        'C' => col += n.max(1),
                        'D' => col = col.saturating_sub(n.max(1)),
                        'G' => col = n.saturating_sub(1),
                        'K' => {
                            let line = line_at(&mut lines, row);
                            match n {
                                0 => line.truncate(col),
                                1 => line.iter_mut().take(col + 1).for_each(|c| *c = ' '),
                                _ => line.clear(),
                            }
                        }
                        'J' if n == 0 => {
                            line_at(&mut lines, row).truncate(col);
                            lines.truncate(row + 1);
                        }
                        'J' => {
                            lines = vec![Vec::new()];
                            (row, col) = (0, 0);
                        }
                        _ => {}
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
            '\r' => col = 0,
            '\n' => row += 1,
            c if c.is_control() => {}
            c => {
                if col >= width {
                    row += 1;
                    col = 0;
                }
                let line = line_at(&mut lines, row);
                if line.len() < col {
                    line.resize(col, ' ');
                }
                if col < line.len() {
                    line[col] = c;
                } else {
                    line.push(c);
                }
                col += 1;
            }
        }
    }
    let mut text: Vec<String> = lines.iter().map(|l| l.iter().collect::<String>().trim_end().to_string()).collect();
    while text.last().is_some_and(String::is_empty) {
        text.pop();
    }
    text.iter().flat_map(|l| [l.as_str(), "\n"]).collect()
}

fn line_at(lines: &mut Vec<Vec<char>>, row: usize) -> &mut Vec<char> {
    if lines.len() <= row {
        lines.resize(row + 1, Vec::new());
    }
    &mut lines[row]
}
