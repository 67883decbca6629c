//! Credentials in files: cloud keys, private keys, service tokens,
//! passwords in URLs and assignments, and high-entropy values under
//! secret-looking names. Honours `.gitignore`, skips binary files, and
//! never reports the secret itself: findings show a masked preview.
//!
//! Allowed: a line containing `capstan:allow-secret` (or detect-secrets'
//! `pragma: allowlist secret`), and paths or values listed in a
//! `.capstan-secrets-allow` file at the scan root (one per line, `#` comments).

use std::path::Path;
use std::sync::OnceLock;

use regex::Regex;

use super::finding::{Finding, Rule, Severity};

pub const RULES: &[Rule] = &[
    Rule { id: "secret/private-key", severity: Severity::Critical, summary: "a private key" },
    Rule { id: "secret/aws-access-key-id", severity: Severity::High, summary: "an AWS access key id" },
    Rule { id: "secret/aws-secret-access-key", severity: Severity::Critical, summary: "an AWS secret access key" },
    Rule { id: "secret/github-token", severity: Severity::High, summary: "a GitHub token" },
    Rule { id: "secret/gitlab-token", severity: Severity::High, summary: "a GitLab personal access token" },
    Rule { id: "secret/slack-token", severity: Severity::High, summary: "a Slack token" },
    Rule { id: "secret/slack-webhook", severity: Severity::Medium, summary: "a Slack incoming webhook URL" },
    Rule { id: "secret/stripe-key", severity: Severity::High, summary: "a Stripe live key" },
    Rule { id: "secret/google-api-key", severity: Severity::High, summary: "a Google API key" },
    Rule { id: "secret/npm-token", severity: Severity::High, summary: "an npm access token" },
    Rule { id: "secret/sendgrid-key", severity: Severity::High, summary: "a SendGrid API key" },
    Rule { id: "secret/jwt", severity: Severity::Medium, summary: "a JSON Web Token" },
    Rule { id: "secret/password-in-url", severity: Severity::High, summary: "a password in a URL" },
    Rule {
        id: "secret/password-assignment",
        severity: Severity::High,
        summary: "a password assigned in code or config",
    },
    Rule {
        id: "secret/high-entropy",
        severity: Severity::Medium,
        summary: "a high-entropy value under a secret-looking name",
    },
];

struct Pattern {
    rule: &'static str,
    severity: Severity,
    regex: Regex,
    /// The capture group holding the secret (0 = the whole match).
    group: usize,
}

fn patterns() -> &'static [Pattern] {
    static P: OnceLock<Vec<Pattern>> = OnceLock::new();
    P.get_or_init(|| {
        let p = |rule, severity, re: &str, group| Pattern { rule, severity, regex: Regex::new(re).expect("valid secret pattern"), group };
        vec![
            p("secret/private-key", Severity::Critical, r"-----BEGIN ((RSA|DSA|EC|OPENSSH|PGP|ENCRYPTED) )?PRIVATE KEY( BLOCK)?-----", 0),
            p("secret/aws-access-key-id", Severity::High, r"\b((?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA)[0-9A-Z]{16})\b", 1),
            p("secret/aws-secret-access-key", Severity::Critical, r#"(?i)aws.{0,20}?(?:secret|private)?.{0,20}?key.{0,5}?['"]?\s*[:=]\s*['"]?([A-Za-z0-9/+=]{40})\b"#, 1),
            p("secret/github-token", Severity::High, r"\b((?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{82})\b", 1),
            p("secret/gitlab-token", Severity::High, r"\b(glpat-[A-Za-z0-9_\-]{20})\b", 1),
            p("secret/slack-token", Severity::High, r"\b(xox[baprs]-[A-Za-z0-9-]{10,})", 1),
            p("secret/slack-webhook", Severity::Medium, r"(https://hooks\.slack\.com/services/T[A-Za-z0-9_]+/B[A-Za-z0-9_]+/[A-Za-z0-9_]+)", 1),
            p("secret/stripe-key", Severity::High, r"\b([rs]k_live_[0-9a-zA-Z]{24,})\b", 1),
            p("secret/google-api-key", Severity::High, r"\b(AIza[0-9A-Za-z\-_]{35})\b", 1),
            p("secret/npm-token", Severity::High, r"\b(npm_[A-Za-z0-9]{36})\b", 1),
            p("secret/sendgrid-key", Severity::High, r"\b(SG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43})\b", 1),
            p("secret/jwt", Severity::Medium, r"\b(eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,})", 1),
            p("secret/password-in-url", Severity::High, r"\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^/\s:@'\x22]+:([^/\s:@'\x22]+)@[A-Za-z0-9.\-]", 1),
            p(
                "secret/password-assignment",
                Severity::High,
                r#"(?i)\b[A-Za-z0-9_.\-]*(?:password|passwd|pwd|secret|api_?key|access_?key|auth_?token|token)[A-Za-z0-9_\-]*["']?\s*(?:[:=]|:=|=>)\s*["']([^"'\s]{6,})["']"#,
                1,
            ),
        ]
    })
}

/// Values that say "this is not a real secret".
fn placeholder(value: &str) -> bool {
    let v = value.to_ascii_lowercase();
    v.contains("${")
        || v.contains("{{")
        || v.starts_with('$')
        || v.starts_with('<')
        || v.starts_with('%')
        // A path to where the secret lives is not the secret.
        || v.starts_with('/')
        || v.starts_with("./")
        || v.starts_with("~/")
        || v.contains("example")
        || v.contains("changeme")
        || v.contains("change-me")
        || v.contains("placeholder")
        || v.contains("xxxx")
        || v.contains("****")
        || v.contains("dummy")
        || v.contains("redacted")
        || v.contains("your_")
        || v.contains("your-")
        || matches!(v.as_str(), "password" | "secret" | "token" | "none" | "null" | "true" | "false" | "undefined")
        || v.chars().all(|c| c == v.chars().next().unwrap_or('x'))
}

/// Shannon entropy in bits per character.
pub fn entropy(s: &str) -> f64 {
    let mut counts = [0usize; 256];
    for b in s.bytes() {
        counts[usize::from(b)] += 1;
    }
    let n = s.len() as f64;
    counts
        .iter()
        .filter(|c| **c > 0)
        .map(|c| {
            let p = *c as f64 / n;
            -p * p.log2()
        })
        .sum()
}

fn high_entropy() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    R.get_or_init(|| {
        Regex::new(r#"(?i)\b[A-Za-z0-9_.\-]*(?:secret|token|key|password|passwd|credential|auth|private)[A-Za-z0-9_\-]*["']?\s*(?:[:=]|:=|=>)\s*["']?([A-Za-z0-9+/=_\-]{16,})["']?"#)
            .expect("valid entropy pattern")
    })
}

/// `ab****yz`: enough to find it again, not enough to use it.
pub fn preview(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    if chars.len() <= 8 {
        return "*".repeat(chars.len().max(3));
    }
    format!(
        "{}{}{}",
        chars[..2].iter().collect::<String>(),
        "*".repeat(chars.len() - 4),
        chars[chars.len() - 2..].iter().collect::<String>()
    )
}

fn allowed_inline(line: &str) -> bool {
    line.contains("capstan:allow-secret") || line.contains("pragma: allowlist secret")
}

/// The allow-list at the scan root: paths (relative, or globs ending in `*`) and literal values.
struct AllowList {
    entries: Vec<String>,
}

impl AllowList {
    fn load(root: &Path) -> Self {
        let base =
            if root.is_dir() { root.to_path_buf() } else { root.parent().map(Path::to_path_buf).unwrap_or_default() };
        let text = std::fs::read_to_string(base.join(".capstan-secrets-allow")).unwrap_or_default();
        let entries =
            text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(str::to_string).collect();
        Self { entries }
    }

    fn path(&self, rel: &str) -> bool {
        self.entries.iter().any(|e| e == rel || e.strip_suffix('*').is_some_and(|p| rel.starts_with(p)))
    }

    fn value(&self, v: &str) -> bool {
        self.entries.iter().any(|e| e == v)
    }
}

/// Scan one text; `file` names it in findings.
pub fn scan_text(text: &str, file: &str) -> Vec<Finding> {
    scan_text_with(text, file, &AllowList { entries: Vec::new() })
}

fn scan_text_with(text: &str, file: &str, allow: &AllowList) -> Vec<Finding> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if allowed_inline(line) {
            continue;
        }
        let mut seen: Vec<(usize, usize)> = Vec::new();
        for p in patterns() {
            for caps in p.regex.captures_iter(line) {
                let Some(m) = caps.get(p.group) else { continue };
                let value = m.as_str();
                let overlaps = seen.iter().any(|(s, e)| m.start() < *e && *s < m.end());
                if overlaps || allow.value(value) {
                    continue;
                }
                if matches!(p.rule, "secret/password-assignment" | "secret/password-in-url") && placeholder(value) {
                    continue;
                }
                seen.push((m.start(), m.end()));
                let rule = RULES.iter().find(|r| r.id == p.rule).map_or(p.rule, |r| r.id);
                let summary = RULES.iter().find(|r| r.id == p.rule).map_or("a secret", |r| r.summary);
                out.push(Finding {
                    rule,
                    severity: p.severity,
                    file: file.to_string(),
                    line: i + 1,
                    message: format!("{summary}: {}", preview(value)),
                });
            }
        }
        for caps in high_entropy().captures_iter(line) {
            let Some(m) = caps.get(1) else { continue };
            let value = m.as_str();
            let overlaps = seen.iter().any(|(s, e)| m.start() < *e && *s < m.end());
            let hex = value.chars().all(|c| c.is_ascii_hexdigit());
            let limit = if hex { 3.0 } else { 3.7 };
            if overlaps || placeholder(value) || allow.value(value) || entropy(value) < limit {
                continue;
            }
            seen.push((m.start(), m.end()));
            out.push(Finding {
                rule: "secret/high-entropy",
                severity: Severity::Medium,
                file: file.to_string(),
                line: i + 1,
                message: format!("a high-entropy value under a secret-looking name: {}", preview(value)),
            });
        }
    }
    out
}

/// Scan a file or a folder (respecting `.gitignore`, skipping binaries).
pub fn scan(root: &Path) -> std::io::Result<Vec<Finding>> {
    let allow = AllowList::load(root);
    let mut findings = Vec::new();
    let walker = ignore::WalkBuilder::new(root)
        .hidden(false)
        .git_ignore(true)
        .git_exclude(true)
        .require_git(false)
        .filter_entry(|e| e.file_name() != ".git")
        .build();
    for entry in walker.flatten() {
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            continue;
        }
        let path = entry.path();
        let rel = path.strip_prefix(root).unwrap_or(path).to_string_lossy().into_owned();
        let rel = if rel.is_empty() { path.to_string_lossy().into_owned() } else { rel };
        if allow.path(&rel) || rel.ends_with(".capstan-secrets-allow") {
            continue;
        }
        let Ok(bytes) = std::fs::read(path) else { continue };
        if bytes.len() > 8 << 20 || bytes.iter().take(8192).any(|b| *b == 0) {
            continue;
        }
        let text = String::from_utf8_lossy(&bytes);
        let shown = path.to_string_lossy();
        findings.extend(scan_text_with(&text, &shown, &allow));
    }
    findings.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
    Ok(findings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_and_masks() {
        let f = scan_text("aws_access_key_id = AKIAIOSFODNN7EXAMPLQ\n", "x");
        assert_eq!(f[0].rule, "secret/aws-access-key-id");
        assert!(!f[0].message.contains("AKIAIOSFODNN7EXAMPLQ"));
        assert!(scan_text("password = \"${DB_PASSWORD}\"\n", "x").is_empty());
        assert!(
            scan_text("token = \"ghp_0123456789abcdefghijABCDEFGHIJ012345\" # capstan:allow-secret\n", "x").is_empty()
        );
    }

    #[test]
    fn entropy_measures() {
        assert!(entropy("aaaaaaaaaaaaaaaa") < 0.1);
        assert!(entropy("q8Zr2LmX9vT4wKpB7nYc") > 4.0);
    }
}
