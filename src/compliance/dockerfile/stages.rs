//! Build stages: each `FROM image [AS name]` and the instructions up to the
//! next FROM. A stage built `FROM` an earlier stage inherits its USER, ENV
//! and HEALTHCHECK; only the last stage is the image that runs.

use std::collections::HashMap;

use super::parse::{pairs, Instruction};

/// One build stage.
#[derive(Debug)]
pub struct Stage<'a> {
    /// The FROM; `None` for a fragment with instructions but no FROM.
    pub from: Option<&'a Instruction>,
    /// The base image with global `ARG` defaults substituted; may still hold
    /// `$` when an argument has no default.
    pub image: String,
    /// The `AS` name, lower-cased (stage names are case-insensitive).
    pub name: Option<String>,
    /// The earlier stage this one is built on (`FROM build`).
    pub parent: Option<usize>,
    /// The instructions after the FROM.
    pub body: &'a [Instruction],
}

impl Stage<'_> {
    /// Where a finding about the stage as a whole points: its FROM.
    pub fn line(&self) -> usize {
        self.from.or(self.body.first()).map_or(1, |i| i.line)
    }
}

/// The stages of a Dockerfile, in order.
pub fn stages(instructions: &[Instruction]) -> Vec<Stage<'_>> {
    let first_from = instructions.iter().position(|i| i.keyword == "FROM").unwrap_or(instructions.len());
    // ARGs before the first FROM are the only ones a FROM line can use.
    let mut globals = HashMap::new();
    for ins in instructions[..first_from].iter().filter(|i| i.keyword == "ARG") {
        globals.extend(pairs(&ins.args));
    }
    let mut out: Vec<Stage<'_>> = Vec::new();
    if first_from == instructions.len() {
        if !instructions.is_empty() {
            out.push(Stage { from: None, image: String::new(), name: None, parent: None, body: instructions });
        }
        return out;
    }
    let starts: Vec<usize> =
        instructions.iter().enumerate().filter(|(_, i)| i.keyword == "FROM").map(|(n, _)| n).collect();
    for (k, &start) in starts.iter().enumerate() {
        let end = starts.get(k + 1).copied().unwrap_or(instructions.len());
        let from = &instructions[start];
        let words: Vec<&str> = from.args.split_whitespace().collect();
        let image = substitute(words.first().copied().unwrap_or_default(), &globals);
        let name = match words.as_slice() {
            [_, as_word, name, ..] if as_word.eq_ignore_ascii_case("as") => Some(name.to_ascii_lowercase()),
            _ => None,
        };
        let parent = out.iter().rposition(|s| s.name.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(&image)));
        out.push(Stage { from: Some(from), image, name, parent, body: &instructions[start + 1..end] });
    }
    out
}

/// A stage and the stages it is built on, nearest first.
pub fn lineage<'s, 'a>(stages: &'s [Stage<'a>], index: usize) -> impl Iterator<Item = &'s Stage<'a>> {
    std::iter::successors(stages.get(index), |s| s.parent.and_then(|p| stages.get(p)))
}

/// `$NAME`, `${NAME}` and `${NAME:-default}` from the global ARG defaults;
/// an argument without a default stays as written.
fn substitute(image: &str, globals: &HashMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = image;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (expr, tail) = if let Some(braced) = after.strip_prefix('{') {
            match braced.find('}') {
                Some(close) => (&braced[..close], &braced[close + 1..]),
                None => (braced, ""),
            }
        } else {
            let len = after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(after.len());
            (&after[..len], &after[len..])
        };
        let (name, fallback) = match expr.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (expr, None),
        };
        match globals.get(name).filter(|v| !v.is_empty()).map(String::as_str).or(fallback) {
            Some(value) => out.push_str(value),
            None => out.push_str(&rest[at..rest.len() - tail.len()]),
        }
        rest = tail;
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::super::parse::parse;
    use super::*;

    #[test]
    fn stages_know_their_names_and_parents() {
        let ins = parse("ARG BASE=node:20\nFROM --platform=$BUILDPLATFORM golang:1.22 AS Build\nRUN go build\nFROM build as test\nFROM ${BASE}\nFROM $UNSET\n");
        let s = stages(&ins);
        assert_eq!(s.len(), 4);
        assert_eq!((s[0].image.as_str(), s[0].name.as_deref(), s[0].line()), ("golang:1.22", Some("build"), 2));
        assert_eq!(s[0].body.len(), 1);
        assert_eq!((s[1].parent, s[1].name.as_deref()), (Some(0), Some("test")));
        assert_eq!(s[2].image, "node:20");
        assert_eq!(s[3].image, "$UNSET");
        assert_eq!(lineage(&s, 1).count(), 2);
    }

    #[test]
    fn a_fragment_without_from_is_one_stage() {
        let ins = parse("RUN apt-get update\n");
        let s = stages(&ins);
        assert_eq!((s.len(), s[0].from.is_none(), s[0].line()), (1, true, 1));
        assert!(stages(&[]).is_empty());
    }

    #[test]
    fn argument_defaults_fill_the_image() {
        let globals = HashMap::from([("V".to_string(), "3.12".to_string())]);
        assert_eq!(substitute("python:${V}-slim", &globals), "python:3.12-slim");
        assert_eq!(substitute("python:${W:-3.11}", &globals), "python:3.11");
        assert_eq!(substitute("${W}", &globals), "${W}");
    }
}
