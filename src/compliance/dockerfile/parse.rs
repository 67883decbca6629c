//! Dockerfile text to instructions, read the way `BuildKit` reads it: the
//! `# escape=` parser directive, line continuations with the escape
//! character, comment and blank lines inside a continuation (they do not end
//! the instruction), heredocs (`RUN <<EOF ... EOF`, `COPY <<EOF /dest`) and
//! the leading `--flags` of RUN, COPY, ADD, FROM and HEALTHCHECK.

/// One instruction, continuation lines joined and heredoc bodies attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// The instruction's first line, 1-based: findings point here.
    pub line: usize,
    /// Upper-case keyword: `RUN`, `FROM`...
    pub keyword: String,
    /// Leading `--name=value` flags (`--mount=...`, `--platform=...`, `--from=...`).
    pub flags: Vec<String>,
    /// The rest of the instruction, continuation lines joined as `BuildKit` joins them.
    pub args: String,
    /// Heredoc bodies, in the order their `<<NAME` markers appear.
    pub heredocs: Vec<Heredoc>,
}

/// The lines between `<<NAME` and the line that is just `NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    pub name: String,
    pub body: String,
}

/// A `RUN --mount=type=...,target=...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// `bind` (the default), `cache`, `tmpfs`, `secret`, `ssh`.
    pub kind: String,
    pub target: String,
}

impl Instruction {
    /// Every `--mount` of a RUN.
    pub fn mounts(&self) -> Vec<Mount> {
        let specs = self.flags.iter().filter_map(|f| f.strip_prefix("--mount="));
        specs
            .map(|spec| {
                let mut mount = Mount { kind: "bind".into(), target: String::new() };
                for field in spec.split(',') {
                    let (key, value) = field.split_once('=').unwrap_or((field, ""));
                    let value = value.trim_matches(|c| c == '"' || c == '\'');
                    match key.trim().to_ascii_lowercase().as_str() {
                        "type" => mount.kind = value.to_ascii_lowercase(),
                        "target" | "dst" | "destination" => mount.target = value.to_string(),
                        _ => {}
                    }
                }
                mount
            })
            .collect()
    }
}

/// Keywords whose leading `--words` are flags rather than arguments.
const FLAGGED: &[&str] = &["RUN", "COPY", "ADD", "FROM", "HEALTHCHECK"];
/// Keywords `BuildKit` reads heredocs for.
const HEREDOC: &[&str] = &["RUN", "COPY", "ADD"];

/// Every instruction of a Dockerfile, in order.
pub fn parse(text: &str) -> Vec<Instruction> {
    let lines: Vec<&str> = text.lines().collect();
    let escape = escape_directive(&lines);
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let first = lines[i].trim();
        if first.is_empty() || first.starts_with('#') {
            i += 1;
            continue;
        }
        let start = i;
        let mut joined = String::new();
        while i < lines.len() {
            let raw = lines[i];
            i += 1;
            let trimmed = raw.trim_start();
            // Inside a continuation a comment or blank line is dropped and the
            // instruction goes on: `BuildKit` strips them before joining.
            if i - 1 > start && (trimmed.is_empty() || trimmed.starts_with('#')) {
                continue;
            }
            let body = raw.trim_end();
            if let Some(head) = body.strip_suffix(escape) {
                joined.push_str(head);
            } else {
                joined.push_str(body);
                break;
            }
        }
        let joined = joined.trim();
        let (word, rest) = joined.split_once(char::is_whitespace).unwrap_or((joined, ""));
        let keyword = word.to_ascii_uppercase();
        let (flags, args) =
            if FLAGGED.contains(&keyword.as_str()) { split_flags(rest, escape) } else { (Vec::new(), rest.trim()) };
        let mut heredocs = Vec::new();
        if HEREDOC.contains(&keyword.as_str()) {
            for (name, strip_tabs) in heredoc_markers(args) {
                let mut body = String::new();
                while i < lines.len() {
                    let raw = lines[i];
                    i += 1;
                    let line = if strip_tabs { raw.trim_start_matches('\t') } else { raw };
                    if line.trim_end() == name {
                        break;
                    }
                    body.push_str(line);
                    body.push('\n');
                }
                heredocs.push(Heredoc { name, body });
            }
        }
        out.push(Instruction { line: start + 1, keyword, flags, args: args.to_string(), heredocs });
    }
    out
}

/// The escape character: `\` unless a `# escape=` directive at the top says `` ` ``.
/// Directives are only read before the first comment, blank line or instruction.
fn escape_directive(lines: &[&str]) -> char {
    for line in lines {
        let Some(directive) = line.trim().strip_prefix('#') else { break };
        let Some((key, value)) = directive.split_once('=') else { break };
        let key = key.trim();
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric()) {
            break;
        }
        if key.eq_ignore_ascii_case("escape") {
            return if value.trim() == "`" { '`' } else { '\\' };
        }
    }
    '\\'
}

/// Leading `--flag` words, then the rest. A bare escape character among the
/// flags is a continuation that was written on one line; it separates nothing.
fn split_flags(rest: &str, escape: char) -> (Vec<String>, &str) {
    let mut flags = Vec::new();
    let mut rest = rest.trim_start();
    loop {
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let word = &rest[..end];
        if word.starts_with("--") {
            flags.push(word.to_string());
        } else if !(word.len() == escape.len_utf8() && word.starts_with(escape)) {
            break;
        }
        rest = rest[end..].trim_start();
    }
    (flags, rest.trim_end())
}

/// The `<<NAME`, `<<-NAME`, `<<"NAME"` markers of an instruction, with whether
/// leading tabs are stripped from the body (`<<-`).
fn heredoc_markers(args: &str) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    let mut rest = args;
    while let Some(at) = rest.find("<<") {
        let before = &rest[..at];
        let after = &rest[at + 2..];
        rest = after;
        // `<<<` is a here-string: no body follows.
        if before.ends_with('<') || after.starts_with('<') {
            rest = after.trim_start_matches('<');
            continue;
        }
        let (strip_tabs, after) = match after.strip_prefix('-') {
            Some(a) => (true, a),
            None => (false, after),
        };
        let after = after.trim_start_matches(['"', '\'']);
        let name: String =
            after.chars().take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')).collect();
        if !name.is_empty() {
            rest = &after[name.len()..];
            out.push((name, strip_tabs));
        }
    }
    out
}

/// `ENV`/`ARG`/`LABEL` pairs: `KEY=value KEY2="v 2"`, or the legacy `ENV KEY value`.
pub fn pairs(args: &str) -> Vec<(String, String)> {
    let words = super::shell::words(args);
    let first = words.first().map(String::as_str).unwrap_or_default();
    if !first.contains('=') {
        // Legacy form: the value is the rest of the line, as written.
        let mut it = args.trim().splitn(2, char::is_whitespace);
        let key = it.next().unwrap_or_default().to_string();
        let value = it.next().unwrap_or_default().trim().trim_matches('"').to_string();
        return if key.is_empty() { Vec::new() } else { vec![(key, value)] };
    }
    words
        .iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (w.clone(), String::new()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keywords(text: &str) -> Vec<(usize, String)> {
        parse(text).into_iter().map(|i| (i.line, i.keyword)).collect()
    }

    #[test]
    fn continuation_lines_join_into_one_instruction_at_its_first_line() {
        let ins = parse("FROM debian:12\n\nRUN apt-get update && \\\n    apt-get install -y curl\nUSER app\n");
        assert_eq!(ins.len(), 3);
        assert_eq!((ins[1].line, ins[1].keyword.as_str()), (3, "RUN"));
        assert_eq!(ins[1].args, "apt-get update &&     apt-get install -y curl");
        assert_eq!(ins[2].line, 5);
    }

    #[test]
    fn comment_and_blank_lines_inside_a_continuation_do_not_end_it() {
        let text = "FROM debian:12\nRUN set -ex; \\\n\tapt-get update; \\\n# a comment about gnupg\n\tapt-get install -y \\\n\n\t\tgnupg \\\n  # indented comment\n\t; \\\n\trm -rf /var/lib/apt/lists/*\nUSER app\n";
        let ins = parse(text);
        assert_eq!(keywords(text), [(1, "FROM".into()), (2, "RUN".into()), (11, "USER".into())]);
        assert!(ins[1].args.contains("apt-get update;"));
        assert!(ins[1].args.ends_with("rm -rf /var/lib/apt/lists/*"));
        assert!(!ins[1].args.contains("comment"));
    }

    #[test]
    fn comments_outside_instructions_are_skipped() {
        assert_eq!(keywords("# syntax=docker/dockerfile:1\n# hello\nFROM a:1\n  # indented\nUSER x\n").len(), 2);
    }

    #[test]
    fn the_escape_directive_changes_the_continuation_character() {
        let text = "# escape=`\nFROM mcr.microsoft.com/windows/servercore:ltsc2022\nRUN dir C:\\ `\n    && echo done\nUSER app\n";
        let ins = parse(text);
        assert_eq!(keywords(text), [(2, "FROM".into()), (3, "RUN".into()), (5, "USER".into())]);
        assert_eq!(ins[1].args, "dir C:\\     && echo done");
        // A backslash at the end of a line is then just a character.
        let ins = parse("# escape=`\nFROM x:1\nRUN copy a b \\\nUSER app\n");
        assert_eq!(ins.len(), 3);
    }

    #[test]
    fn an_escape_directive_after_a_comment_is_only_a_comment() {
        let ins = parse("# hello\n# escape=`\nFROM x:1\nRUN a `\nUSER app\n");
        assert_eq!((ins.len(), ins[1].args.as_str()), (3, "a `"));
    }

    #[test]
    fn heredoc_bodies_belong_to_their_instruction() {
        let text = "FROM debian:12\nRUN <<EOF\napt-get update\n# not a comment here\napt-get install -y git\nEOF\nCOPY <<-\"CONF\" /etc/app.conf\n\tkey=value\n\tCONF\nUSER app\n";
        let ins = parse(text);
        assert_eq!(keywords(text), [(1, "FROM".into()), (2, "RUN".into()), (7, "COPY".into()), (10, "USER".into())]);
        assert_eq!(ins[1].heredocs[0].name, "EOF");
        assert_eq!(ins[1].heredocs[0].body, "apt-get update\n# not a comment here\napt-get install -y git\n");
        assert_eq!(ins[2].heredocs[0].body, "key=value\n");
        assert_eq!(ins[2].args, "<<-\"CONF\" /etc/app.conf");
    }

    #[test]
    fn several_heredocs_follow_one_another() {
        let ins = parse("FROM a:1\nCOPY <<one <<two /dest/\n1\none\n2\ntwo\nUSER u\n");
        let names: Vec<&str> = ins[1].heredocs.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["one", "two"]);
        assert_eq!(ins[2].line, 7);
        // A here-string is not a heredoc.
        assert!(parse("FROM a:1\nRUN cat <<< hello\n")[1].heredocs.is_empty());
    }

    #[test]
    fn flags_and_cache_mounts_are_split_from_the_command() {
        let ins = parse(
            "FROM --platform=$BUILDPLATFORM golang:1.22 AS build\nRUN --mount=type=cache,target=/root/.cache/pip \\\n    --mount=type=secret,id=npm,dst=/root/.npmrc pip install x\nCOPY --from=build /a /b\n",
        );
        assert_eq!(ins[0].flags, ["--platform=$BUILDPLATFORM"]);
        assert_eq!(ins[0].args, "golang:1.22 AS build");
        let mounts = ins[1].mounts();
        assert_eq!(mounts[0], Mount { kind: "cache".into(), target: "/root/.cache/pip".into() });
        assert_eq!(mounts[1], Mount { kind: "secret".into(), target: "/root/.npmrc".into() });
        assert_eq!(ins[1].args, "pip install x");
        assert_eq!((ins[2].flags.as_slice(), ins[2].args.as_str()), (&["--from=build".to_string()][..], "/a /b"));
        // A mount without a type is a bind mount.
        assert_eq!(parse("RUN --mount=target=/x true")[0].mounts()[0].kind, "bind");
    }

    #[test]
    fn a_continuation_written_on_one_line_still_separates_flags() {
        let ins = parse("RUN --mount=type=cache,target=/var/lib/apt \\    --mount=type=cache,target=/var/cache/apt \\    apt-get update\n");
        assert_eq!(ins[0].mounts().len(), 2);
    }

    #[test]
    fn env_pairs_in_both_forms() {
        assert_eq!(pairs("A=1 B=\"two words\""), [("A".into(), "1".into()), ("B".into(), "two words".into())]);
        assert_eq!(pairs("PIP_NO_CACHE_DIR off"), [("PIP_NO_CACHE_DIR".into(), "off".into())]);
    }
}
