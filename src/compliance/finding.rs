//! What every scanner returns: a finding of a rule, with its severity.

use serde::Serialize;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// One thing a scanner found.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub rule: &'static str,
    pub severity: Severity,
    pub file: String,
    pub line: usize,
    pub message: String,
}

impl Finding {
    /// A finding of `rule`, with the severity `rules` gives it (medium for a
    /// rule the table does not name).
    pub fn of(rules: &[Rule], rule: &'static str, file: &str, line: usize, message: String) -> Finding {
        let severity = rules.iter().find(|r| r.id == rule).map_or(Severity::Medium, |r| r.severity);
        Finding { rule, severity, file: file.to_string(), line, message }
    }

    pub fn to_map(&self) -> rhai::Map {
        let mut m = rhai::Map::new();
        m.insert("rule".into(), self.rule.into());
        m.insert("severity".into(), self.severity.as_str().into());
        m.insert("file".into(), self.file.clone().into());
        m.insert("line".into(), (self.line as i64).into());
        m.insert("message".into(), self.message.clone().into());
        m
    }
}

/// A rule a scanner knows: for `capstan check --compliance --rules`, SARIF and docs.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub id: &'static str,
    pub severity: Severity,
    pub summary: &'static str,
}
