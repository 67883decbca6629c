//! Terraform rules: a remote backend for every non-dev environment, no
//! state files in the repository, no credentials in provider blocks, no
//! security group open to the world on admin ports, no IAM wildcards.
//! Rule ids name the checkov checks they match where there is one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use regex::Regex;

use super::finding::{Finding, Rule, Severity};

pub const RULES: &[Rule] = &[
    Rule {
        id: "terraform/local-backend",
        severity: Severity::High,
        summary: "a non-dev environment without a remote backend",
    },
    Rule { id: "terraform/state-committed", severity: Severity::Critical, summary: "a state file in the repository" },
    Rule {
        id: "terraform/hardcoded-credentials",
        severity: Severity::Critical,
        summary: "credentials in a provider block (checkov CKV_AWS_41)",
    },
    Rule {
        id: "terraform/open-admin-port",
        severity: Severity::High,
        summary: "an admin port open to 0.0.0.0/0 (checkov CKV_AWS_24, CKV_AWS_25)",
    },
    Rule {
        id: "terraform/iam-wildcard",
        severity: Severity::High,
        summary: "an IAM policy allowing every action (checkov CKV_AWS_1, CKV_AWS_355)",
    },
];

const ADMIN_PORTS: &[(u16, &str)] = &[
    (22, "SSH"),
    (3389, "RDP"),
    (3306, "MySQL"),
    (5432, "PostgreSQL"),
    (6379, "Redis"),
    (27017, "MongoDB"),
    (9200, "Elasticsearch"),
];
const DEV_NAMES: &[&str] = &["dev", "development", "sandbox", "local", "test", "testing", "ci"];

fn finding(rule: &'static str, file: &str, line: usize, message: String) -> Finding {
    let severity = RULES.iter().find(|r| r.id == rule).map_or(Severity::Medium, |r| r.severity);
    Finding { rule, severity, file: file.to_string(), line, message }
}

/// A block: its header (`resource "aws_security_group" "web"`), first line, and body text.
struct Block {
    header: String,
    line: usize,
    body: String,
}

/// Blocks whose header matches `re`, with their bodies found by matching braces
/// (braces inside strings and comments do not count).
fn blocks(text: &str, re: &Regex) -> Vec<Block> {
    let mut out = Vec::new();
    for m in re.find_iter(text) {
        let Some(open) = text[m.end()..].find('{').map(|i| m.end() + i) else { continue };
        let mut depth = 0;
        let mut in_string = false;
        let mut end = None;
        let bytes = text.as_bytes();
        let mut i = open;
        while i < bytes.len() {
            let c = bytes[i];
            if in_string {
                if c == b'\\' {
                    i += 1;
                } else if c == b'"' {
                    in_string = false;
                }
            } else if c == b'"' {
                in_string = true;
            } else if c == b'#' || (c == b'/' && bytes.get(i + 1) == Some(&b'/')) {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            } else if c == b'{' {
                depth += 1;
            } else if c == b'}' {
                depth -= 1;
                if depth == 0 {
                    end = Some(i);
                    break;
                }
            }
            i += 1;
        }
        let Some(end) = end else { continue };
        out.push(Block {
            header: m.as_str().to_string(),
            line: text[..m.start()].lines().count().max(1) + usize::from(text[..m.start()].ends_with('\n')),
            body: text[open + 1..end].to_string(),
        });
    }
    out
}

fn re(pattern: &str) -> Regex {
    Regex::new(pattern).expect("valid terraform pattern")
}

fn line_in(block_line: usize, body: &str, needle: &str) -> usize {
    body.find(needle).map_or(block_line, |i| block_line + body[..i].matches('\n').count())
}

fn scan_file(text: &str, file: &str, out: &mut Vec<Finding>) {
    static PROVIDER: OnceLock<Regex> = OnceLock::new();
    static CRED: OnceLock<Regex> = OnceLock::new();
    static SG: OnceLock<Regex> = OnceLock::new();
    static INGRESS: OnceLock<Regex> = OnceLock::new();
    static IAM: OnceLock<Regex> = OnceLock::new();
    let provider = PROVIDER.get_or_init(|| re(r#"(?m)^\s*provider\s+"[^"]+""#));
    let cred =
        CRED.get_or_init(|| re(r#"(?m)^\s*(access_key|secret_key|token|password|client_secret)\s*=\s*"([^"$]+)""#));
    for b in blocks(text, provider) {
        for c in cred.captures_iter(&b.body) {
            let key = &c[1];
            out.push(finding(
                "terraform/hardcoded-credentials",
                file,
                line_in(b.line, &b.body, &c[0]),
                format!(
                    "{} sets `{key}` to a literal: use environment credentials, a profile or an assumed role",
                    b.header.trim()
                ),
            ));
        }
    }
    let sg = SG.get_or_init(|| re(r#"(?m)^\s*resource\s+"(aws_security_group|aws_security_group_rule|aws_vpc_security_group_ingress_rule)"\s+"[^"]+""#));
    let ingress = INGRESS.get_or_init(|| re(r"(?m)^\s*ingress\s*"));
    for b in blocks(text, sg) {
        let mut rules: Vec<(String, usize)> =
            blocks(&b.body, ingress).into_iter().map(|i| (i.body, b.line + i.line - 1)).collect();
        if b.header.contains("_rule") && (b.body.contains("\"ingress\"") || b.header.contains("ingress")) {
            rules.push((b.body.clone(), b.line));
        }
        for (body, line) in rules {
            let open = body.contains("0.0.0.0/0") || body.contains("\"::/0\"");
            let num = |key: &str| -> Option<u16> {
                let r = Regex::new(&format!(r"(?m)^\s*{key}\s*=\s*(\d+)")).ok()?;
                r.captures(&body)?.get(1)?.as_str().parse().ok()
            };
            let (from, to) = (num("from_port").unwrap_or(0), num("to_port").unwrap_or(u16::MAX));
            let all_protocols = body.contains("protocol = \"-1\"") || body.contains("protocol    = \"-1\"");
            if !open {
                continue;
            }
            for (port, name) in ADMIN_PORTS {
                if (from..=to).contains(port) || all_protocols {
                    out.push(finding(
                        "terraform/open-admin-port",
                        file,
                        line,
                        format!(
                            "{} lets 0.0.0.0/0 reach {name} (port {port}): allow only your VPN or bastion",
                            b.header.trim()
                        ),
                    ));
                    break;
                }
            }
        }
    }
    let iam = IAM.get_or_init(|| {
        re(r#"(?m)("Action"\s*:\s*(\[\s*)?"(\*|[a-z0-9-]+:\*)"|^\s*actions\s*=\s*\[[^\]]*"(\*|[a-z0-9-]+:\*)")"#)
    });
    for m in iam.find_iter(text) {
        let line = text[..m.start()].matches('\n').count() + 1;
        out.push(finding(
            "terraform/iam-wildcard",
            file,
            line,
            format!(
                "an IAM policy allows `{}`: list the actions it needs",
                m.as_str().split('"').find(|s| s.contains('*')).unwrap_or("*")
            ),
        ));
    }
}

fn is_dev(dir: &Path) -> bool {
    dir.components().any(|c| {
        let name = c.as_os_str().to_string_lossy().to_ascii_lowercase();
        DEV_NAMES.contains(&name.as_str())
    })
}

/// Scan a folder of Terraform code (or one file).
pub fn scan(root: &Path) -> std::io::Result<Vec<Finding>> {
    let mut out = Vec::new();
    let mut dirs: BTreeMap<PathBuf, Vec<(PathBuf, String)>> = BTreeMap::new();
    for entry in ignore::WalkBuilder::new(root)
        .hidden(false)
        .filter_entry(|e| e.file_name() != ".git" && e.file_name() != ".terraform")
        .build()
        .flatten()
    {
        let p = entry.path();
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            continue;
        }
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if name.ends_with(".tfstate") || name.ends_with(".tfstate.backup") {
            out.push(finding("terraform/state-committed", &p.to_string_lossy(), 1, "a Terraform state file is in the repository: it holds secrets and drifts; keep state in a remote backend and ignore *.tfstate".into()));
        }
        if p.extension().is_some_and(|e| e.eq_ignore_ascii_case("tf")) {
            let text = std::fs::read_to_string(p)?;
            scan_file(&text, &p.to_string_lossy(), &mut out);
            dirs.entry(p.parent().map(Path::to_path_buf).unwrap_or_default())
                .or_default()
                .push((p.to_path_buf(), text));
        }
    }
    static BACKEND: OnceLock<Regex> = OnceLock::new();
    let backend = BACKEND.get_or_init(|| re(r#"backend\s+"([a-z0-9_]+)""#));
    for (dir, files) in &dirs {
        // Root modules (they configure providers or terraform itself) outside modules/.
        let root_module = files.iter().any(|(_, t)| t.contains("provider \"") || t.contains("terraform {"));
        let is_module = dir.components().any(|c| c.as_os_str() == "modules");
        if !root_module || is_module || is_dev(dir.strip_prefix(root).unwrap_or(dir)) {
            continue;
        }
        let kinds: Vec<String> = files
            .iter()
            .flat_map(|(_, t)| backend.captures_iter(t).map(|c| c[1].to_string()).collect::<Vec<_>>())
            .collect();
        let first = &files[0].0;
        if kinds.is_empty() {
            out.push(finding("terraform/local-backend", &first.to_string_lossy(), 1, format!("{} has no backend: its state stays on one machine; configure a remote backend (s3, gcs, azurerm...)", dir.display())));
        } else if kinds.iter().any(|k| k == "local") {
            let (file, text) = files.iter().find(|(_, t)| t.contains("backend \"local\"")).unwrap_or(&files[0]);
            let line = text.lines().position(|l| l.contains("backend \"local\"")).map_or(1, |i| i + 1);
            out.push(finding(
                "terraform/local-backend",
                &file.to_string_lossy(),
                line,
                format!(
                    "{} uses the local backend: configure a remote backend for a shared environment",
                    dir.display()
                ),
            ));
        }
    }
    out.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
    Ok(out)
}
