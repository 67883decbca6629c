//! Dockerfile rules: pinned base images, a non-root user, a health check,
//! no secrets in ENV/ARG, multi-stage builds for compiled apps, dependency
//! manifests copied before the source, no package-manager caches left behind.
//! Rule ids map to hadolint (DL...) and checkov (`CKV_DOCKER_`...) where
//! those cover the same ground; the tests compare them.
//!
//! The pipeline: `parse` reads instructions as `BuildKit` does, `stages`
//! groups them by FROM, `shell` finds the commands a RUN executes, and each
//! rule module reports at the first line of the instruction concerned.

mod build;
mod caches;
mod images;
mod parse;
mod runtime;
mod shell;
mod stages;

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

fn finding(rule: &'static str, file: &str, line: usize, message: String) -> Finding {
    let severity = RULES.iter().find(|r| r.id == rule).map_or(Severity::Medium, |r| r.severity);
    Finding { rule, severity, file: file.to_string(), line, message }
}

pub fn scan_text(text: &str, file: &str) -> Vec<Finding> {
    let instructions = parse::parse(text);
    let stages = stages::stages(&instructions);
    let mut out = Vec::new();
    images::check(&stages, file, &mut out);
    runtime::root_user(&stages, file, &mut out);
    runtime::healthcheck(&stages, file, &mut out);
    build::secrets_in_env(&instructions, file, &mut out);
    caches::check(&stages, file, &mut out);
    build::single_stage_build(&stages, file, &mut out);
    build::deps_after_source(&stages, file, &mut out);
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

    #[test]
    fn base_images_need_a_tag_in_every_stage() {
        let text = "ARG NGINX=nginx:1.27\nFROM golang AS build\nFROM build AS test\nFROM ${NGINX}\nFROM ${UNSET}\nFROM scratch\nFROM localhost:5000/app\nFROM debian:latest\nFROM debian@sha256:abc\n";
        let found: Vec<(usize, &str)> = scan_text(text, "Dockerfile")
            .into_iter()
            .filter(|f| f.rule.ends_with("-base"))
            .map(|f| (f.line, f.rule))
            .collect();
        assert_eq!(
            found,
            [(2, "dockerfile/untagged-base"), (7, "dockerfile/untagged-base"), (8, "dockerfile/latest-base")]
        );
    }

    #[test]
    fn secrets_in_env_and_arg() {
        assert_eq!(
            rules("FROM a:1\nENV API_TOKEN=3f9a7c21 OTHER=1\nUSER u\nHEALTHCHECK CMD true\n"),
            ["dockerfile/secret-in-env"]
        );
        assert!(
            rules("FROM a:1\nARG API_TOKEN\nENV DB_PASSWORD=$DB_PASSWORD\nUSER u\nHEALTHCHECK CMD true\n").is_empty()
        );
    }
}
