//! Dockerfile rules: pinned base images, a non-root user, a health check,
//! no secrets in ENV/ARG, multi-stage builds for compiled apps, dependency
//! manifests copied before the source, no package-manager caches left behind.
//! Rule ids map to hadolint (DL...) and checkov (`CKV_DOCKER_`...) where
//! those cover the same ground; the tests compare them.

use std::path::Path;

use super::finding::{Finding, Rule, Severity};

pub const RULES: &[Rule] = &[
    Rule {
        id: "dockerfile/untagged-base",
        severity: Severity::Medium,
        summary: "base image without a tag or digest (hadolint DL3006)",
    },
    Rule {
        id: "dockerfile/latest-base",
        severity: Severity::Medium,
        summary: "base image tagged latest (hadolint DL3007, checkov CKV_DOCKER_7)",
    },
    Rule {
        id: "dockerfile/root-user",
        severity: Severity::High,
        summary: "the container runs as root (checkov CKV_DOCKER_3, CKV_DOCKER_8, hadolint DL3002)",
    },
    Rule { id: "dockerfile/no-healthcheck", severity: Severity::Low, summary: "no HEALTHCHECK (checkov CKV_DOCKER_2)" },
    Rule { id: "dockerfile/secret-in-env", severity: Severity::High, summary: "a secret in ENV or ARG" },
    Rule {
        id: "dockerfile/single-stage-build",
        severity: Severity::Medium,
        summary: "a compiled app built in the runtime image",
    },
    Rule {
        id: "dockerfile/deps-after-source",
        severity: Severity::Low,
        summary: "dependencies installed after the whole source is copied",
    },
    Rule {
        id: "dockerfile/apt-lists-kept",
        severity: Severity::Low,
        summary: "apt lists left in the image (hadolint DL3009)",
    },
    Rule {
        id: "dockerfile/pip-cache-kept",
        severity: Severity::Low,
        summary: "pip cache left in the image (hadolint DL3042)",
    },
    Rule {
        id: "dockerfile/apk-cache-kept",
        severity: Severity::Low,
        summary: "apk cache left in the image (hadolint DL3019)",
    },
];

struct Instruction {
    line: usize,
    keyword: String,
    args: String,
}

/// Instructions with continuation lines joined and comments dropped.
#[allow(clippy::single_match_else)] // joining or starting an instruction reads best as a match
fn parse(text: &str) -> Vec<Instruction> {
    let mut out = Vec::new();
    let mut current: Option<Instruction> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.starts_with('#') && current.is_none() {
            continue;
        }
        if line.is_empty() && current.is_none() {
            continue;
        }
        let (body, continues) = match line.strip_suffix('\\') {
            Some(b) => (b.trim_end(), true),
            None => (line, false),
        };
        match &mut current {
            Some(ins) => {
                if !line.starts_with('#') {
                    ins.args.push(' ');
                    ins.args.push_str(body);
                }
            }
            None => {
                let (keyword, args) = body.split_once(char::is_whitespace).unwrap_or((body, ""));
                current = Some(Instruction {
                    line: i + 1,
                    keyword: keyword.to_ascii_uppercase(),
                    args: args.trim().to_string(),
                });
            }
        }
        if !continues {
            if let Some(ins) = current.take() {
                out.push(ins);
            }
        }
    }
    out.extend(current);
    out
}

fn finding(rule: &'static str, file: &str, line: usize, message: String) -> Finding {
    let severity = RULES.iter().find(|r| r.id == rule).map_or(Severity::Medium, |r| r.severity);
    Finding { rule, severity, file: file.to_string(), line, message }
}

const COMPILE: &[&str] = &[
    "go build",
    "cargo build",
    "mvn ",
    "gradle",
    "npm run build",
    "yarn build",
    "dotnet publish",
    "make",
    "gcc ",
    "g++ ",
    "javac ",
];
const DEPENDENCY_INSTALL: &[&str] = &[
    "npm ci",
    "npm install",
    "yarn install",
    "pip install -r",
    "pip3 install -r",
    "poetry install",
    "bundle install",
    "go mod download",
    "composer install",
];
const SECRET_NAMES: &[&str] =
    &["password", "passwd", "secret", "token", "api_key", "apikey", "access_key", "private_key", "credentials"];

pub fn scan_text(text: &str, file: &str) -> Vec<Finding> {
    let instructions = parse(text);
    let mut out = Vec::new();
    let mut stages: Vec<String> = Vec::new();
    let mut stage_starts = Vec::new();
    for (idx, ins) in instructions.iter().enumerate() {
        if ins.keyword != "FROM" {
            continue;
        }
        stage_starts.push(idx);
        let words: Vec<&str> = ins.args.split_whitespace().filter(|w| !w.starts_with("--")).collect();
        let image = words.first().copied().unwrap_or("");
        if let Some(alias) = words.iter().position(|w| w.eq_ignore_ascii_case("as")).and_then(|i| words.get(i + 1)) {
            stages.push((*alias).to_ascii_lowercase());
        }
        let earlier_stage = stages.iter().any(|s| s.eq_ignore_ascii_case(image));
        if image == "scratch" || earlier_stage || image.contains('$') {
            continue;
        }
        let name_part = image.rsplit('/').next().unwrap_or(image);
        if image.contains('@') {
            continue;
        }
        match name_part.split_once(':') {
            None => out.push(finding(
                "dockerfile/untagged-base",
                file,
                ins.line,
                format!("`FROM {image}` has no tag: pin a version (or a digest)"),
            )),
            Some((_, "latest")) => out.push(finding(
                "dockerfile/latest-base",
                file,
                ins.line,
                format!("`FROM {image}` uses latest: pin a version (or a digest)"),
            )),
            Some(_) => {}
        }
    }
    // The final stage is what runs.
    let final_start = stage_starts.last().copied().unwrap_or(0);
    let final_stage = &instructions[final_start.min(instructions.len())..];
    let last_user = final_stage.iter().rev().find(|i| i.keyword == "USER");
    match last_user {
        None => out.push(finding(
            "dockerfile/root-user",
            file,
            instructions.get(final_start).map_or(1, |i| i.line),
            "no USER: the container runs as root; add a non-root USER".into(),
        )),
        Some(u) if matches!(u.args.split(':').next().unwrap_or("").trim(), "root" | "0") => {
            out.push(finding(
                "dockerfile/root-user",
                file,
                u.line,
                format!("`USER {}`: the container runs as root", u.args),
            ));
        }
        Some(_) => {}
    }
    if !instructions.iter().any(|i| i.keyword == "HEALTHCHECK") && !instructions.is_empty() {
        out.push(finding(
            "dockerfile/no-healthcheck",
            file,
            instructions.last().map_or(1, |i| i.line),
            "no HEALTHCHECK: orchestrators cannot tell a hung container".into(),
        ));
    }
    for ins in &instructions {
        if ins.keyword == "ENV" || ins.keyword == "ARG" {
            let pairs: Vec<(String, String)> = if ins.args.contains('=') {
                ins.args
                    .split_whitespace()
                    .filter_map(|kv| kv.split_once('='))
                    .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
                    .collect()
            } else {
                let mut it = ins.args.splitn(2, char::is_whitespace);
                let k = it.next().unwrap_or("").to_string();
                let v = it.next().unwrap_or("").trim().trim_matches('"').to_string();
                vec![(k, v)]
            };
            for (k, v) in pairs {
                let lower = k.to_ascii_lowercase();
                if SECRET_NAMES.iter().any(|s| lower.contains(s)) && !v.is_empty() && !v.starts_with('$') {
                    out.push(finding("dockerfile/secret-in-env", file, ins.line, format!("`{} {k}` sets a secret in the image: pass it at run time or use a build secret (--mount=type=secret)", ins.keyword)));
                }
            }
        }
        if ins.keyword == "RUN" {
            let cmd = ins.args.as_str();
            if cmd.contains("apt-get install") && !cmd.contains("/var/lib/apt/lists") {
                out.push(finding(
                    "dockerfile/apt-lists-kept",
                    file,
                    ins.line,
                    "apt-get install without `rm -rf /var/lib/apt/lists/*` in the same RUN".into(),
                ));
            }
            if (cmd.contains("pip install") || cmd.contains("pip3 install")) && !cmd.contains("--no-cache-dir") {
                out.push(finding(
                    "dockerfile/pip-cache-kept",
                    file,
                    ins.line,
                    "pip install without --no-cache-dir".into(),
                ));
            }
            if cmd.contains("apk add") && !cmd.contains("--no-cache") {
                out.push(finding("dockerfile/apk-cache-kept", file, ins.line, "apk add without --no-cache".into()));
            }
        }
    }
    if stage_starts.len() == 1 {
        if let Some(ins) =
            instructions.iter().find(|i| i.keyword == "RUN" && COMPILE.iter().any(|c| i.args.contains(c)))
        {
            out.push(finding("dockerfile/single-stage-build", file, ins.line, "the app is compiled in the image that ships it: build in a first stage and copy the result into a small runtime stage".into()));
        }
    }
    // COPY of the whole context before the dependency install busts the cache on every change.
    for (k, start) in stage_starts.iter().enumerate() {
        let end = stage_starts.get(k + 1).copied().unwrap_or(instructions.len());
        let stage = &instructions[*start..end];
        let copy_all = stage.iter().position(|i| {
            let words: Vec<&str> = i.args.split_whitespace().filter(|w| !w.starts_with("--")).collect();
            (i.keyword == "COPY" || i.keyword == "ADD")
                && words.len() >= 2
                && words[..words.len() - 1].iter().any(|w| *w == "." || *w == "./")
        });
        let install =
            stage.iter().position(|i| i.keyword == "RUN" && DEPENDENCY_INSTALL.iter().any(|d| i.args.contains(d)));
        if let (Some(c), Some(r)) = (copy_all, install) {
            if c < r {
                out.push(finding("dockerfile/deps-after-source", file, stage[r].line, "dependencies are installed after `COPY . .`: copy the manifests (package.json, requirements.txt, go.mod...) and install first, then copy the source".into()));
            }
        }
    }
    out.sort_by_key(|f| f.line);
    out
}

pub fn scan(path: &Path) -> std::io::Result<Vec<Finding>> {
    let text = std::fs::read_to_string(path)?;
    Ok(scan_text(&text, &path.to_string_lossy()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &str) -> Vec<&'static str> {
        scan_text(text, "Dockerfile").into_iter().map(|f| f.rule).collect()
    }

    #[test]
    fn clean_multi_stage_has_no_findings() {
        let clean = "FROM golang:1.22 AS build\nWORKDIR /src\nCOPY go.mod go.sum ./\nRUN go mod download\nCOPY . .\nRUN go build -o /app\n\nFROM gcr.io/distroless/static:nonroot\nCOPY --from=build /app /app\nUSER nonroot\nHEALTHCHECK CMD [\"/app\", \"health\"]\nENTRYPOINT [\"/app\"]\n";
        assert!(rules(clean).is_empty(), "{:?}", rules(clean));
    }

    #[test]
    fn continuation_lines_are_one_instruction() {
        let text = "FROM debian:12\nRUN apt-get update && \\\n    apt-get install -y curl && \\\n    rm -rf /var/lib/apt/lists/*\nUSER app\nHEALTHCHECK CMD true\n";
        assert!(rules(text).is_empty(), "{:?}", rules(text));
    }
}
