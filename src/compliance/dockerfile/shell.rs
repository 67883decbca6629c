//! Just enough of the POSIX shell grammar to find the simple commands a RUN
//! executes: words with quotes and escapes removed; commands split at `;`,
//! `&&`, `||`, `|`, `&`, newlines, subshells and command substitutions;
//! redirections, comments and leading `VAR=value` assignments dropped;
//! `sudo`, `env`, `exec` and `if`/`then`/`do`... looked through. A rule that
//! asks "does this RUN call `apt-get update`" then sees `apt-get` in
//! `if ...; then apt-get update; fi` and not in `echo "apt-get update"`.

use super::parse::Instruction;

/// One simple command: the program's file name and its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub name: String,
    pub args: Vec<String>,
}

impl Command {
    pub fn has_arg(&self, arg: &str) -> bool {
        self.args.iter().any(|a| a == arg)
    }
}

/// Words that start a command without being its program.
const KEYWORDS: &[&str] =
    &["if", "then", "else", "elif", "do", "while", "until", "!", "time", "{", "}", "exec", "nohup"];
/// `sudo` options that take a value.
const SUDO_VALUE_OPTIONS: &[&str] = &["-u", "-g", "-C", "-h", "-p", "-U", "-r", "-t", "-D"];
/// Shells a heredoc can be fed to as a script.
const SHELLS: &[&str] = &["sh", "bash", "ash", "dash", "zsh", "ksh"];

/// The shell text a RUN executes: the command line (an exec-form JSON array
/// quoted back into shell words) and the heredoc bodies that run as scripts,
/// that is when the heredoc is the whole command or is fed to a shell.
pub fn run_script(ins: &Instruction) -> String {
    let mut script = match serde_json::from_str::<Vec<String>>(&ins.args) {
        Ok(argv) => argv.iter().map(|a| format!("'{}'", a.replace('\'', r"'\''"))).collect::<Vec<_>>().join(" "),
        Err(_) => ins.args.clone(),
    };
    let program = ins.args.split_whitespace().next().unwrap_or_default();
    let runs_bodies = program.starts_with("<<") || SHELLS.contains(&basename(program));
    if runs_bodies {
        for doc in &ins.heredocs {
            let shebang = doc.body.lines().next().and_then(|l| l.strip_prefix("#!"));
            if shebang.is_none_or(|s| s.split_whitespace().any(|w| SHELLS.contains(&basename(w)))) {
                script.push('\n');
                script.push_str(&doc.body);
            }
        }
    }
    script
}

/// The simple commands of a shell script, in order.
pub fn commands(script: &str) -> Vec<Command> {
    let mut out = Vec::new();
    for c in Lexer::default().run(script).into_iter().filter_map(command) {
        // `sh -c "apt-get update && ..."` runs a script of its own.
        let inner = if SHELLS.contains(&c.name.as_str()) { inline_script(&c.args) } else { None };
        let inner = inner.map(commands);
        out.push(c);
        out.extend(inner.into_iter().flatten());
    }
    out
}

/// The script of `-c SCRIPT` (also `-ec`, `-xc`...) among a shell's arguments.
fn inline_script(args: &[String]) -> Option<&str> {
    let at = args.iter().position(|a| a.starts_with('-') && !a.starts_with("--") && a.contains('c'))?;
    args[at + 1..].iter().find(|a| !a.starts_with('-')).map(String::as_str)
}

/// The words of a text, quotes and escapes removed (for `ENV A="b c"`).
pub fn words(text: &str) -> Vec<String> {
    Lexer { keep_separators: true, ..Lexer::default() }.run(text).concat()
}

fn basename(word: &str) -> &str {
    word.rsplit('/').next().unwrap_or(word)
}

fn is_assignment(word: &str) -> bool {
    word.split_once('=').is_some_and(|(name, _)| {
        !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

/// A raw list of words to a command: wrappers, keywords and assignments dropped.
fn command(mut words: Vec<String>) -> Option<Command> {
    loop {
        let first = words.first()?;
        if first.trim().is_empty() || KEYWORDS.contains(&first.as_str()) || is_assignment(first) {
            words.remove(0);
        } else if first == "sudo" || first == "env" {
            words.remove(0);
            while let Some(w) = words.first() {
                if SUDO_VALUE_OPTIONS.contains(&w.as_str()) {
                    words.drain(..2.min(words.len()));
                } else if w.starts_with('-') || is_assignment(w) {
                    words.remove(0);
                } else {
                    break;
                }
            }
        } else {
            break;
        }
    }
    let name = basename(&words[0]).to_string();
    Some(Command { name, args: words.split_off(1) })
}

#[derive(Default)]
struct Lexer {
    commands: Vec<Vec<String>>,
    words: Vec<String>,
    word: String,
    /// A word has started, possibly empty (`""`).
    in_word: bool,
    /// The next word is a redirection target, not an argument.
    skip_word: bool,
    /// For `words`: operators do not split, and nothing is dropped.
    keep_separators: bool,
}

impl Lexer {
    fn end_word(&mut self) {
        if self.in_word {
            let word = std::mem::take(&mut self.word);
            if !std::mem::take(&mut self.skip_word) {
                self.words.push(word);
            }
            self.in_word = false;
        }
    }

    fn end_command(&mut self) {
        self.end_word();
        self.skip_word = false;
        if !self.words.is_empty() {
            self.commands.push(std::mem::take(&mut self.words));
        }
    }

    fn push(&mut self, c: char) {
        self.word.push(c);
        self.in_word = true;
    }

    fn run(mut self, text: &str) -> Vec<Vec<String>> {
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            if self.keep_separators && !matches!(c, ' ' | '\t' | '\n' | '\'' | '"' | '\\') {
                self.push(c);
                continue;
            }
            match c {
                ' ' | '\t' => self.end_word(),
                '&' if chars.peek() == Some(&'>') => self.redirect(&mut chars),
                '\n' | ';' | '|' | '&' | '(' | ')' | '`' => self.end_command(),
                '>' | '<' => {
                    // `2>&1`: the digits name a file descriptor, not an argument.
                    if self.word.chars().all(|d| d.is_ascii_digit()) {
                        self.word.clear();
                        self.in_word = false;
                    }
                    self.redirect(&mut chars);
                }
                '$' if chars.peek() == Some(&'(') => {
                    chars.next();
                    self.end_command();
                }
                '#' if !self.in_word => {
                    while chars.peek().is_some_and(|&n| n != '\n') {
                        chars.next();
                    }
                }
                '\'' => {
                    self.in_word = true;
                    for n in chars.by_ref() {
                        if n == '\'' {
                            break;
                        }
                        self.word.push(n);
                    }
                }
                '"' => {
                    self.in_word = true;
                    while let Some(n) = chars.next() {
                        match n {
                            '"' => break,
                            '\\' => match chars.next() {
                                Some('\n') | None => {}
                                Some(e @ ('"' | '\\' | '$' | '`')) => self.word.push(e),
                                Some(e) => {
                                    self.word.push('\\');
                                    self.word.push(e);
                                }
                            },
                            _ => self.word.push(n),
                        }
                    }
                }
                '\\' => match chars.next() {
                    Some('\n') | None => {}
                    Some(e) => self.push(e),
                },
                _ => self.push(c),
            }
        }
        self.end_command();
        self.commands
    }

    /// After `>`, `<`, `&>`: the rest of the operator, then drop the target word.
    fn redirect(&mut self, chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
        self.end_word();
        while chars.peek().is_some_and(|&n| matches!(n, '>' | '<' | '&' | '|' | '-')) {
            chars.next();
        }
        self.skip_word = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(script: &str) -> Vec<String> {
        commands(script).into_iter().map(|c| c.name).collect()
    }

    #[test]
    fn commands_split_at_operators_and_newlines() {
        assert_eq!(
            names("set -ex; apt-get update && apt-get install -y x || true | tee log & wait\nrm -rf /tmp/x"),
            ["set", "apt-get", "apt-get", "true", "tee", "wait", "rm"]
        );
    }

    #[test]
    fn quotes_and_escapes_are_removed_and_quoted_operators_kept() {
        let c = commands(r#"echo "a && b" 'c;d' e\ f"#);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].args, ["a && b", "c;d", "e f"]);
    }

    #[test]
    fn keywords_wrappers_and_assignments_are_looked_through() {
        assert_eq!(names("if true; then sudo -u app pip install x; fi"), ["true", "pip", "fi"]);
        assert_eq!(names("PIP_NO_CACHE_DIR=1 env -i A=b /usr/bin/pip3 install x"), ["pip3"]);
        assert_eq!(names("echo $(apt-get update) `apk add x`"), ["echo", "apt-get", "apk"]);
    }

    #[test]
    fn redirections_and_comments_are_not_arguments() {
        let c = commands("apt-get update >/dev/null 2>&1 # refresh\napk add x &> log < in");
        assert_eq!(c[0].args, ["update"]);
        assert_eq!(c[1].args, ["add", "x"]);
    }

    #[test]
    fn a_heredoc_run_feeds_its_body_to_the_shell() {
        let ins = &super::super::parse::parse("RUN <<EOF\napt-get update\napt-get install -y git\nEOF\n")[0];
        assert_eq!(names(&run_script(ins)), ["apt-get", "apt-get"]);
        let ins = &super::super::parse::parse("RUN python3 <<EOF\nimport os\nEOF\n")[0];
        assert_eq!(names(&run_script(ins)), ["python3"]);
        let ins = &super::super::parse::parse("RUN <<EOF\n#!/usr/bin/env python3\nprint('pip install x')\nEOF\n")[0];
        assert!(names(&run_script(ins)).is_empty());
    }

    #[test]
    fn a_shell_dash_c_script_is_looked_into() {
        assert_eq!(names("bash -ec 'apt-get update && apt-get install -y x'"), ["bash", "apt-get", "apt-get"]);
        let ins = &super::super::parse::parse(r#"RUN ["/bin/sh", "-c", "pip install x"]"#)[0];
        assert_eq!(names(&run_script(ins)), ["sh", "pip"]);
    }

    #[test]
    fn exec_form_is_one_command() {
        let ins = &super::super::parse::parse(r#"RUN ["pip", "install", "it's"]"#)[0];
        assert_eq!(
            commands(&run_script(ins)),
            [Command { name: "pip".into(), args: vec!["install".into(), "it's".into()] }]
        );
    }

    #[test]
    fn words_keep_assignments_whole() {
        assert_eq!(words(r#"A=1 B="two words" C=x&&y"#), ["A=1", "B=two words", "C=x&&y"]);
    }
}
