//! IAM policies that allow every action (`"*"` anywhere in the action list),
//! or every resource for actions that could be scoped to one: the
//! `aws_iam_policy_document` data source's `statement` blocks and the JSON
//! policies (`jsonencode(...)`, heredoc, string) of the IAM policy
//! resources. A `Deny` statement is never a finding. checkov `CKV_AWS_1`,
//! `CKV_AWS_49` (data source), `CKV_AWS_62`, `CKV_AWS_63`, `CKV_AWS_355`
//! (resources).

use hcl_edit::expr::Expression;
use serde_json::Value;

use super::hcl::{self, At, File};
use super::rules::finding;
use crate::compliance::finding::Finding;

/// Resources that hold a policy document, and the attribute that holds it.
const POLICY_RESOURCES: &[(&str, &str)] = &[
    ("aws_iam_policy", "policy"),
    ("aws_iam_role_policy", "policy"),
    ("aws_iam_user_policy", "policy"),
    ("aws_iam_group_policy", "policy"),
    ("aws_ssoadmin_permission_set_inline_policy", "inline_policy"),
];

/// Actions AWS does not let a policy scope to a resource: `"Resource": "*"`
/// is the only way to grant them, so it is no finding for them.
const UNSCOPED_ACTIONS: &[&str] = &[
    "s3:listallmybuckets",
    "sts:getcalleridentity",
    "ecr:getauthorizationtoken",
    "xray:puttracesegments",
    "xray:puttelemetryrecords",
    "xray:getsamplingrules",
    "xray:getsamplingtargets",
    "cloudwatch:putmetricdata",
    "cloudwatch:getmetricdata",
    "cloudwatch:getmetricstatistics",
    "cloudwatch:listmetrics",
    "iam:listroles",
    "iam:listusers",
    "iam:listpolicies",
    "iam:listgroups",
    "iam:getaccountsummary",
    "iam:listaccountaliases",
    "kms:listkeys",
    "kms:listaliases",
    "tag:getresources",
    "route53:listhostedzones",
    "acm:listcertificates",
    "sns:listtopics",
    "sqs:listqueues",
    "lambda:listfunctions",
    "dynamodb:listtables",
    "secretsmanager:listsecrets",
    "secretsmanager:getrandompassword",
];
/// Read-only families that are unscoped as a whole (when named one by one).
const UNSCOPED_PREFIXES: &[&str] = &["ec2:describe", "autoscaling:describe", "elasticloadbalancing:describe"];

pub(super) fn check(file: &File, path: &str, out: &mut Vec<Finding>) {
    for (at, block) in file.blocks() {
        let labels = hcl::labels(block);
        match (block.ident.as_str(), labels.as_slice()) {
            ("data", ["aws_iam_policy_document", name]) => {
                for statement in block.body.get_blocks("statement") {
                    let s = hcl::attributes(&statement.body);
                    // The data source's effect defaults to Allow.
                    let allows = s.get("effect").is_none_or(|e| e == "Allow");
                    if let Some(action) = strings(s.get("actions")).into_iter().find(|a| is_every_action(a)) {
                        if allows {
                            out.push(finding(
                                "terraform/iam-wildcard",
                                path,
                                at.line(statement),
                                format!("data.aws_iam_policy_document.{name} allows every action (`{action}`): list the actions it needs"),
                            ));
                        }
                    }
                }
            }
            ("resource", [kind, name]) => {
                let attribute = POLICY_RESOURCES.iter().find(|(k, _)| k == kind).map(|(_, a)| *a);
                let mut policies: Vec<&hcl_edit::structure::Attribute> =
                    attribute.and_then(|a| block.body.get_attribute(a)).into_iter().collect();
                if *kind == "aws_iam_role" {
                    policies
                        .extend(block.body.get_blocks("inline_policy").filter_map(|b| b.body.get_attribute("policy")));
                }
                for policy in policies {
                    for (statement, line) in statements(&policy.value, at, at.line(policy)) {
                        if let Some(what) = too_broad(&statement) {
                            out.push(finding(
                                "terraform/iam-wildcard",
                                path,
                                line,
                                format!("{kind}.{name} {what}: list the actions and resources it needs"),
                            ));
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

/// The statements of a policy document with the line of each: a
/// `jsonencode` object's statements each on their own line, a JSON text's
/// all on the attribute's line.
fn statements(expr: &Expression, at: At<'_>, line: usize) -> Vec<(Value, usize)> {
    if let Some(document) = hcl::jsonencode_arg(expr) {
        return match hcl::object_get(document, "Statement") {
            Some(Expression::Array(list)) => list.iter().map(|s| (hcl::value(s), at.line(s))).collect(),
            Some(single) => vec![(hcl::value(single), at.line(single))],
            None => Vec::new(),
        };
    }
    let Value::String(text) = hcl::value(expr) else { return Vec::new() };
    let Ok(document) = serde_json::from_str::<Value>(&text) else { return Vec::new() };
    match document.get("Statement") {
        Some(Value::Array(list)) => list.iter().map(|s| (s.clone(), line)).collect(),
        Some(single) => vec![(single.clone(), line)],
        None => Vec::new(),
    }
}

/// What a JSON policy statement allows that it should not, if anything.
fn too_broad(statement: &Value) -> Option<String> {
    // A statement without Effect is invalid, but it is written to allow:
    // reading it as Allow is the safe side (checkov does too).
    let allows = statement.get("Effect").is_none_or(|e| e == "Allow");
    if !allows {
        return None;
    }
    let actions = strings(statement.get("Action"));
    if let Some(action) = actions.iter().find(|a| is_every_action(a)) {
        return Some(format!("allows every action (`{action}`)"));
    }
    let every_resource = strings(statement.get("Resource")).iter().any(|r| r == "*");
    let scoped = actions.iter().find(|a| can_be_scoped(a))?;
    every_resource.then(|| format!("allows `{scoped}` on every resource (`*`)"))
}

fn is_every_action(action: &str) -> bool {
    action == "*" || action == "*:*"
}

/// Whether an action could be limited to named resources; a wildcard
/// matches some that can.
fn can_be_scoped(action: &str) -> bool {
    if action.contains(['*', '?']) {
        return true;
    }
    let action = action.to_ascii_lowercase();
    !UNSCOPED_ACTIONS.contains(&action.as_str()) && !UNSCOPED_PREFIXES.iter().any(|p| action.starts_with(p))
}

/// A string or a list of strings, as a list (anything else is empty).
fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items.iter().filter_map(|i| i.as_str().map(str::to_string)).collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compliance::terraform::lines_found as found;

    #[test]
    fn a_star_anywhere_in_the_action_list_is_found() {
        let text = r#"data "aws_iam_policy_document" "d" {
  statement {
    effect  = "Allow"
    actions = ["s3:GetObject", "*"]
    resources = ["arn:aws:s3:::b/*"]
  }
}

resource "aws_iam_policy" "p" {
  policy = <<POLICY
{
  "Statement": [{ "Action": ["s3:HeadBucket", "*"], "Effect": "Allow", "Resource": "arn:aws:s3:::b" }]
}
POLICY
}
"#;
        assert_eq!(found(check, text), vec![2, 10]);
    }

    #[test]
    fn a_deny_is_never_a_finding() {
        let text = r#"data "aws_iam_policy_document" "d" {
  statement {
    effect    = "Deny"
    actions   = ["*"]
    resources = ["*"]
  }
}
resource "aws_iam_role_policy" "p" {
  policy = jsonencode({
    Statement = [{ Effect = "Deny", Action = "*", Resource = "*" }]
  })
}
"#;
        assert!(found(check, text).is_empty());
    }

    #[test]
    fn jsonencode_statements_are_reported_on_their_own_line() {
        let text = r#"resource "aws_iam_policy" "p" {
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      { Effect = "Allow", Action = ["s3:GetObject"], Resource = "arn:aws:s3:::b/*" },
      {
        Effect   = "Allow"
        Action   = ["ec2:Describe*"]
        Resource = "*"
      },
      { Effect = "Allow", Action = "s3:ListAllMyBuckets", Resource = "*" },
    ]
  })
}
"#;
        assert_eq!(found(check, text), vec![6]);
    }

    #[test]
    fn a_role_inline_policy_and_a_missing_effect_are_read() {
        let text = r#"resource "aws_iam_role" "r" {
  name = "r"
  inline_policy {
    name   = "all"
    policy = "{\"Statement\": {\"Action\": \"*\", \"Resource\": \"*\"}}"
  }
}
"#;
        assert_eq!(found(check, text), vec![5]);
    }
}
