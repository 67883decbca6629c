//! Credentials written into provider blocks, directly or through a
//! variable whose default is the credential (`api_key = var.key` with
//! `variable "key" { default = "..." }` in the same module): either way the
//! secret is in the repository. checkov `CKV_AWS_41`, `CKV_PAN_1` and the
//! like. Findings never show the value.

use std::collections::BTreeMap;

use hcl_edit::expr::Expression;
use serde_json::Value;

use super::hcl::{self, File};
use super::rules::finding;
use crate::compliance::finding::Finding;

/// Provider arguments that hold a credential.
const CREDENTIAL_KEYS: &[&str] = &["access_key", "secret_key", "token", "password", "client_secret", "api_key"];

/// The defaults of every variable a module's files declare.
pub(super) fn variable_defaults<'f>(files: impl Iterator<Item = &'f File>) -> BTreeMap<String, Value> {
    let mut defaults = BTreeMap::new();
    for file in files {
        for (_, block) in file.blocks().filter(|(_, b)| b.ident.as_str() == "variable") {
            if let (Some(name), Some(default)) = (hcl::labels(block).first(), block.body.get_attribute("default")) {
                defaults.insert((*name).to_string(), hcl::value(&default.value));
            }
        }
    }
    defaults
}

/// Provider arguments set to a literal credential (a variable without a
/// literal default, or an empty string, is fine).
pub(super) fn check(file: &File, path: &str, defaults: &BTreeMap<String, Value>, out: &mut Vec<Finding>) {
    for (at, block) in file.blocks().filter(|(_, b)| b.ident.as_str() == "provider") {
        let provider = hcl::labels(block).first().copied().unwrap_or("?");
        for attribute in block.body.attributes().filter(|a| CREDENTIAL_KEYS.contains(&a.key.as_str())) {
            let key = attribute.key.as_str();
            let how = match &attribute.value {
                Expression::String(s) if !s.value().trim().is_empty() => "to a literal".to_string(),
                expr => match hcl::variable_path(expr) {
                    Some(path) if is_credential(resolve(defaults, &path)) => {
                        format!("to `var.{}`, whose default is a literal", path.join("."))
                    }
                    _ => continue,
                },
            };
            out.push(finding(
                "terraform/hardcoded-credentials",
                path,
                at.line(attribute),
                format!(
                    "provider \"{provider}\" sets `{key}` {how}: use environment credentials, a profile or an assumed role"
                ),
            ));
        }
    }
}

fn resolve<'v>(defaults: &'v BTreeMap<String, Value>, path: &[&str]) -> Option<&'v Value> {
    let (name, keys) = path.split_first()?;
    keys.iter().try_fold(defaults.get(*name)?, |v, k| v.get(k))
}

fn is_credential(value: Option<&Value>) -> bool {
    value.and_then(Value::as_str).is_some_and(|s| !s.trim().is_empty() && !s.contains(hcl::UNKNOWN))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(texts: &[&str]) -> Vec<usize> {
        let files: Vec<File> = texts.iter().map(|t| File::parse(t)).collect();
        let defaults = variable_defaults(files.iter());
        let mut out = Vec::new();
        check(&files[0], "main.tf", &defaults, &mut out);
        assert!(out.iter().all(|f| !f.message.contains("kF3q")), "a message shows the secret");
        out.iter().map(|f| f.line).collect()
    }

    #[test]
    fn literal_credentials_are_found_on_their_line_and_empty_strings_are_not() {
        let text = "provider \"panos\" {\n  api_key = \"\"\n}\nprovider \"aws\" {\n  region     = \"eu-west-1\"\n  secret_key = \"kF3q9ZVx8L2mPbT6yHn1RwC4sJ7dGe0UaQ5oXiY8\"\n}\n";
        assert_eq!(lines(&[text]), vec![6]);
    }

    #[test]
    fn a_variable_is_followed_to_its_default_in_another_file() {
        let provider = "provider \"panos\" {\n  api_key = var.nested.key\n  password = var.from_env\n}\n";
        let variables = "variable \"nested\" {\n  default = {\n    key = \"kF3q9ZVx8L2mPbT6yHn1RwC4sJ7dGe0UaQ5oXiY8\"\n  }\n}\nvariable \"from_env\" {}\n";
        assert_eq!(lines(&[provider, variables]), vec![2]);
    }
}
