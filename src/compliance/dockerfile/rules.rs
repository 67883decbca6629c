//! The Dockerfile rules, and a finding of one: a leaf the rule modules share.

use crate::compliance::finding::{Finding, Rule, Severity};

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

/// A finding of `rule`, with the severity the table gives it.
pub(super) fn finding(rule: &'static str, file: &str, line: usize, message: String) -> Finding {
    Finding::of(RULES, rule, file, line, message)
}
