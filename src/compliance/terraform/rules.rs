//! The Terraform rules, and a finding of one: a leaf the rule modules share.

use crate::compliance::finding::{Finding, Rule, Severity};

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
        summary: "credentials in a provider block (checkov CKV_AWS_41, CKV_PAN_1)",
    },
    Rule {
        id: "terraform/open-admin-port",
        severity: Severity::High,
        summary: "an admin port or every port open to 0.0.0.0/0 or ::/0 (checkov CKV_AWS_24, CKV_AWS_25, CKV_AWS_277)",
    },
    Rule {
        id: "terraform/iam-wildcard",
        severity: Severity::High,
        summary: "an IAM policy allowing every action, or every resource (checkov CKV_AWS_1, CKV_AWS_49, CKV_AWS_62, CKV_AWS_63, CKV_AWS_355)",
    },
];

/// A finding of `rule`, with the severity the table gives it.
pub(super) fn finding(rule: &'static str, file: &str, line: usize, message: String) -> Finding {
    Finding::of(RULES, rule, file, line, message)
}
