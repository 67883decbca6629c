//! One pass per file: the keyword automaton picks the lines and rules to
//! try, each rule's patterns run on its lines in table order, a match must
//! pass its rule's check, and the first rule to claim a stretch of a line
//! owns it (a Slack token under `token:` is one finding, not two).

use std::path::Path;

use super::allow::{self, AllowList};
use super::assignment::{self, Kind};
use super::checks::{self, Site};
use super::rules::{self, Check, Spec};
use crate::compliance::finding::Finding;

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

/// Scan one text; `file` names it in findings (its ending tells program
/// source from configuration).
pub fn scan_text(text: &str, file: &str) -> Vec<Finding> {
    scan_text_with(text, file, &AllowList::default())
}

fn finding(spec: &Spec, file: &str, line: usize, secret: &str) -> Finding {
    Finding {
        rule: spec.rule.id,
        severity: spec.rule.severity,
        file: file.to_string(),
        line,
        message: format!("{}: {}", spec.rule.summary, preview(secret)),
    }
}

fn scan_text_with(text: &str, file: &str, allow: &AllowList) -> Vec<Finding> {
    let table = rules::table();
    let mut starts = vec![0];
    starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
    let lines: Vec<&str> = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).collect();
    let code = assignment::is_code(file);
    let mut out = Vec::new();
    for (i, mask) in table.candidates(text, &starts).into_iter().enumerate() {
        let line = lines[i];
        if mask == 0 || allow::inline(line) {
            continue;
        }
        let mut claimed: Vec<(usize, usize)> = Vec::new();
        let free = |claimed: &[(usize, usize)], s: usize, e: usize| claimed.iter().all(|(cs, ce)| e <= *cs || *ce <= s);
        for (bit, spec) in table.specs.iter().enumerate() {
            if mask & (1 << bit) == 0 {
                continue;
            }
            if spec.check == Check::Assignment {
                for hit in assignment::scan(line, &spec.patterns[0], code) {
                    let value = &line[hit.start..hit.end];
                    if free(&claimed, hit.start, hit.end) && !allow.value(value) {
                        claimed.push((hit.start, hit.end));
                        let rule = if hit.kind == Kind::Password { spec } else { table.spec("secret/high-entropy") };
                        out.push(finding(rule, file, i + 1, value));
                    }
                }
                continue;
            }
            for pattern in &spec.patterns {
                for caps in pattern.captures_iter(line) {
                    let m = caps.get(1).or_else(|| caps.get(0)).expect("a match");
                    let site = Site { line, end: m.end(), following: &lines[i + 1..] };
                    if free(&claimed, m.start(), m.end())
                        && !allow.value(m.as_str())
                        && checks::passes(spec, m.as_str(), &site)
                    {
                        claimed.push((m.start(), m.end()));
                        out.push(finding(spec, file, i + 1, m.as_str()));
                    }
                }
            }
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
        if allow.path(&rel) || rel.ends_with(allow::FILE) {
            continue;
        }
        let Ok(bytes) = std::fs::read(path) else { continue };
        if bytes.len() > 8 << 20 || bytes.iter().take(8192).any(|b| *b == 0) {
            continue;
        }
        let text = String::from_utf8_lossy(&bytes);
        findings.extend(scan_text_with(&text, &path.to_string_lossy(), &allow));
    }
    findings.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
    Ok(findings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules_in(text: &str, file: &str) -> Vec<&'static str> {
        scan_text(text, file).into_iter().map(|f| f.rule).collect()
    }

    #[test]
    fn finds_and_masks() {
        let f = scan_text("aws_access_key_id = AKIAQ3EGUXS4N6RPL7TZ\n", "x");
        assert_eq!(f[0].rule, "secret/aws-access-key-id");
        assert!(!f[0].message.contains("AKIAQ3EGUXS4N6RPL7TZ"));
        assert!(scan_text("password = \"${DB_PASSWORD}\"\n", "x").is_empty());
        assert!(
            scan_text("token = \"ghp_0123456789abcdefghijABCDEFGHIJ012345\" # capstan:allow-secret\n", "x").is_empty()
        );
    }

    #[test]
    fn one_finding_per_secret() {
        let text = "\"bot_token\": \"xoxb-263594206564-FGqddMF8t08v8N7Oq4i57vs1\"\n";
        assert_eq!(rules_in(text, "a.json"), ["secret/slack-token"]);
    }

    #[test]
    fn aws_prefixes_and_examples() {
        for id in [
            "AKIAQ3EGUXS4N6RPL7TZ",
            "ASIAQ3EGUXS4N6RPL7TZ",
            "ABIAQ3EGUXS4N6RPL7TZ",
            "ACCAQ3EGUXS4N6RPL7TZ",
            "A3T0Q3EGUXS4N6RPL7TZ",
        ] {
            assert_eq!(rules_in(id, "k.txt"), ["secret/aws-access-key-id"], "{id}");
        }
        assert!(rules_in("AKIAIOSFODNN7EXAMPLE", "k.txt").is_empty(), "AWS's documented example");
        assert!(rules_in("key = AKIAXXXXXXXXXXXXXXXX", "k.txt").is_empty());
        assert!(rules_in("AIDAQ3EGUXS4N6RPL7TZ", "k.txt").is_empty(), "a user id, not a key");
        assert!(rules_in("aws_secret_access_key = \"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\"", "a.py").is_empty());
        let bedrock = format!("ABSK{}", "QmVkcm9ja0FQSUtleS1zZWNyZXQtdmFsdWUtMTIzNDU2Nzg5MGFiY2RlZmdoaWprbG1ub3BxcnN0dXZ3eHl6QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo");
        assert_eq!(rules_in(&bedrock, "k.txt"), ["secret/aws-bedrock-api-key"]);
    }

    #[test]
    fn gitlab_prefixes_and_lengths() {
        for t in [
            "glpat-hellOworld380_testin",
            "gldt-HwllOuhfw-wu0rlD_yep",
            "glsoat-PREfix_helloworld380_testin_pretty_long_token_long",
            "GR1348941PREfix_helloworld380",
            "glcbt-helloworld380_testin",
            "glimt-my-tokens_are-correctAB38",
            "glptt-Need5_T00-be-exactly-40-chars--ELse_fail",
            "glagent-Need5_T00-bee-longer-than-50_chars-or-else-failING",
            "gloas-checking_Length-Is-_exactly_64--checking_Length-Is-_exactly_64--",
            "glrt-t1_Zk3Pq8Lm2Xv9Tr4Wn7Yb1Cd6Fh0Jg5.01q8zr2lm",
        ] {
            assert_eq!(rules_in(t, "t.txt"), ["secret/gitlab-token"], "{t}");
        }
        for t in [
            "glpat-hellOWorld380 testin",
            "glsoat-PREfix_helloworld380_testin_pretty_long_token_long_",
            "glimt-my-tokens_are-correctAB38_280",
            "glptt-Need5_T00-be-exactly-40-chars--ELse_failing",
            "GR134894112312312312312312312",
            "glpat-XXXXXXXXXXX-XXXXXXXX",
        ] {
            assert!(rules_in(t, "t.txt").is_empty(), "{t}");
        }
    }

    #[test]
    fn slack_tokens_webhooks_and_placeholders() {
        for t in [
            "xoxo-523423-234243-234233-e039d02840a0b9379c",
            "xoxs-523423-234243-234233-e039d02840a0b9379c",
            "xoxa-2-511111111-31111111111-3111111111111-e039d02840a0b9379c",
            "xoxr-523423-234243-234233-e039d02840a0b9379c",
            "xoxe-4726837507825-4848681849303-4856614048758-e0b1f3d4cb371f92260edb0d9444d206",
            "xapp-1-A052FGTS2DL-5171572773297-610b6a11f4b7eb819e87b767d80e6575a3634791acb9a9ead051da879eb5b55e",
        ] {
            assert_eq!(rules_in(t, "t.txt"), ["secret/slack-token"], "{t}");
        }
        let flow =
            "https://hooks.slack.com/workflows/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";
        assert_eq!(rules_in(flow, "t.txt"), ["secret/slack-webhook"]);
        for t in [
            "xoxb-xxxxxxxxx-xxxxxxxxxx-xxxxxxxxxxxx",
            "xoxb-12345-abcd234",
            "\"token1\": \"xoxp-1234567890\"",
            "xoxe.xoxp-1-SlackAppConfigurationAccessTokenHere",
            "https://hooks.slack.com/services/Txxxxxxxx/Bxxxxxxxx/xxxxxxxxxxxxxxxxxxxxxxxx",
        ] {
            assert!(rules_in(t, "t.txt").is_empty(), "{t}");
        }
    }

    #[test]
    fn google_keys_end_where_the_key_ends() {
        assert_eq!(rules_in("AIzaSyNHxIf32IQ1a1yjl3ZJIqKZqzLAK1XhDk-", "k.txt"), ["secret/google-api-key"]);
        assert!(rules_in("AIzaTesb6Tscfcni8vIpWZqNCXFDFslJtVSvFDqabcd123", "k.txt").is_empty());
        assert!(rules_in("apiKey: \"AIzaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"", "k.txt").is_empty());
        assert!(rules_in("AIzaSyA8vmApnrHNFE0bApF4hoZ11srVL_n0nvY", "k.txt").is_empty(), "a published SDK test key");
        assert_eq!(rules_in("{\n  \"type\": \"service_account\",\n", "sa.json"), ["secret/gcp-service-account"]);
    }

    #[test]
    fn private_keys_need_a_body() {
        let key = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDAC4AWkdwKYSd8\n-----END PRIVATE KEY-----\n";
        assert_eq!(rules_in(key, "k.pem"), ["secret/private-key"]);
        assert!(rules_in("-----BEGIN PRIVATE KEY-----\nanything\n-----END PRIVATE KEY-----\n", "k.pem").is_empty());
        assert!(rules_in("-----BEGIN OPENSSH PRIVATE KEY----------END OPENSSH PRIVATE KEY-----", "k").is_empty());
    }

    #[test]
    fn other_token_formats() {
        assert_eq!(
            rules_in("//registry.npmjs.org/:_authToken=743b294a-cd03-11ec-9d64-0242ac120002", ".npmrc"),
            ["secret/npm-token"]
        );
        assert!(rules_in("//registry.npmjs.org:_authToken=743b294a-cd03-11ec-9d64-0242ac120002", ".npmrc").is_empty());
        assert_eq!(rules_in("rk_live_5TcWfjKmJgpql9hjpRnwRXbT", "k"), ["secret/stripe-key"]);
        assert!(rules_in("pk_live_j5krY8XTgIcDaHDb3YrsAfCl", "k").is_empty(), "publishable");
        assert!(rules_in("ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "k").is_empty());
        assert!(rules_in("https://username:password@yelp.com", "k").is_empty(), "placeholder credentials");
    }
}
