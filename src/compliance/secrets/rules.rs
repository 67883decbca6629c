//! The secret rules as data. `rules.tsv` holds each rule's id, severity,
//! check, keywords, summary and patterns; this module parses it once,
//! compiles every pattern once and builds one keyword automaton for the whole
//! table, so a file is searched for all keywords in a single pass and a
//! rule's patterns run only on the lines that hold one of its keywords.

use std::sync::LazyLock;

use aho_corasick::AhoCorasick;
use regex::Regex;

use crate::compliance::finding::{Rule, Severity};

/// What a pattern match must pass besides the pattern (see `rules.tsv`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Check {
    Token,
    Slack,
    Jwt,
    PrivateKey,
    Url,
    None,
    Assignment,
}

/// One rule of the table, compiled.
pub(super) struct Spec {
    pub rule: Rule,
    pub check: Check,
    /// Shannon entropy (bits a character) the secret must reach; 0 for none.
    pub min_entropy: f64,
    pub patterns: Vec<Regex>,
}

/// The compiled table and its keyword automaton.
pub(super) struct Table {
    pub specs: Vec<Spec>,
    keywords: AhoCorasick,
    /// For each keyword of the automaton, the bit of the rule it belongs to.
    owners: Vec<u64>,
}

const SOURCE: &str = include_str!("rules.tsv");

static TABLE: LazyLock<Table> = LazyLock::new(|| parse(SOURCE));

/// Every secret rule, in table order.
pub(super) static RULES: LazyLock<Vec<Rule>> = LazyLock::new(|| TABLE.specs.iter().map(|s| s.rule).collect());

pub(super) fn table() -> &'static Table {
    &TABLE
}

impl Table {
    /// The rule with this id (the table is the only place ids come from).
    pub fn spec(&self, id: &str) -> &Spec {
        self.specs.iter().find(|s| s.rule.id == id).expect("rule in rules.tsv")
    }

    /// For each line of `text` (split at `\n`), a bit set of the rules whose
    /// keywords occur in it: one pass over the text for the whole table.
    pub fn candidates(&self, text: &str, line_starts: &[usize]) -> Vec<u64> {
        let mut lines = vec![0u64; line_starts.len()];
        for m in self.keywords.find_overlapping_iter(text) {
            let line = line_starts.partition_point(|s| *s <= m.start()) - 1;
            lines[line] |= self.owners[m.pattern().as_usize()];
        }
        lines
    }
}

fn parse(source: &'static str) -> Table {
    let mut specs: Vec<Spec> = Vec::new();
    let mut words: Vec<&'static str> = Vec::new();
    let mut owners = Vec::new();
    for line in source.lines() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(pattern) = line.strip_prefix('\t') {
            let spec = specs.last_mut().expect("a pattern follows its rule line");
            spec.patterns.push(Regex::new(pattern).unwrap_or_else(|e| panic!("{}: {e}", spec.rule.id)));
            continue;
        }
        let cols: Vec<&'static str> = line.split('\t').collect();
        let [id, severity, check, entropy, keywords, summary] = cols[..] else {
            panic!("rules.tsv: six columns expected in `{line}`");
        };
        let bit = 1u64 << specs.len();
        for word in keywords.split(',').filter(|w| *w != "-") {
            words.push(word);
            owners.push(bit);
        }
        specs.push(Spec {
            rule: Rule { id, severity: severity_named(severity), summary },
            check: check_named(check),
            min_entropy: entropy.parse().unwrap_or(0.0),
            patterns: Vec::new(),
        });
    }
    assert!(specs.len() <= 64, "one bit a rule");
    let keywords = AhoCorasick::builder().ascii_case_insensitive(true).build(&words).expect("valid keyword automaton");
    Table { specs, keywords, owners }
}

fn severity_named(name: &str) -> Severity {
    match name {
        "critical" => Severity::Critical,
        "high" => Severity::High,
        "medium" => Severity::Medium,
        "low" => Severity::Low,
        other => panic!("rules.tsv: unknown severity {other}"),
    }
}

fn check_named(name: &str) -> Check {
    match name {
        "token" => Check::Token,
        "slack" => Check::Slack,
        "jwt" => Check::Jwt,
        "private-key" => Check::PrivateKey,
        "url" => Check::Url,
        "none" => Check::None,
        "assignment" => Check::Assignment,
        other => panic!("rules.tsv: unknown check {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_parses_and_every_rule_has_a_summary() {
        let t = table();
        assert!(t.specs.len() >= 17);
        assert!(t.specs.iter().all(|s| s.rule.id.starts_with("secret/") && !s.rule.summary.is_empty()));
        assert!(t.specs.iter().filter(|s| s.check != Check::Assignment).all(|s| !s.patterns.is_empty()));
        assert_eq!(RULES.len(), t.specs.len());
    }

    #[test]
    fn keywords_pick_the_lines_to_search() {
        let text = "plain\nkey = AKIAQ3EGUXS4N6RPL7TZ\n";
        let starts = [0, 6];
        let lines = table().candidates(text, &starts);
        let aws = table().specs.iter().position(|s| s.rule.id == "secret/aws-access-key-id").unwrap();
        assert_eq!(lines[0], 0);
        assert_ne!(lines[1] & (1 << aws), 0);
    }
}
