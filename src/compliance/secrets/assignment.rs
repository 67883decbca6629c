//! Secrets by name: a value assigned to a key whose words say password,
//! secret, token or API key (`secret/password-assignment`), or to a key
//! that says key, auth or credential when the value is random enough to be
//! one (`secret/high-entropy`).
//!
//! The key is split into words (`dbPassword`, `DB_PASSWORD` → db, password)
//! so that `keyboard` or `monkey` say nothing, and a key whose last word
//! names metadata (`secretName`, `token_url`, `key_id`, `password_file`)
//! points at a secret rather than holding one. Unquoted values count only
//! outside program source, where a bare word is a variable. The word lists
//! are data, in `names.tsv`.

use std::collections::HashMap;
use std::sync::LazyLock;

use regex::Regex;

use super::placeholder;

/// Which rule a name-based finding belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Password,
    HighEntropy,
}

/// A value found under a secret-looking key: where it is in the line.
pub(super) struct Hit {
    pub kind: Kind,
    pub start: usize,
    pub end: usize,
}

/// The word lists of `names.tsv`, by list name.
static NAMES: LazyLock<HashMap<&'static str, Vec<&'static str>>> = LazyLock::new(|| {
    include_str!("names.tsv")
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('\t'))
        .map(|(name, words)| (name, words.split_whitespace().collect()))
        .collect()
});

fn list(name: &str) -> &'static [&'static str] {
    NAMES.get(name).map_or(&[], Vec::as_slice)
}

fn listed(name: &str, word: &str) -> bool {
    list(name).contains(&word)
}

/// Is this file program source (unquoted values are variables there)?
pub(super) fn is_code(file: &str) -> bool {
    let name = file.rsplit(['/', '\\']).next().unwrap_or(file);
    name.rsplit_once('.').is_some_and(|(_, ext)| listed("code", &ext.to_ascii_lowercase()))
}

/// Every secret assigned by name in `line`. `key_op` is the rule table's
/// pattern for a key and its assignment operator.
pub(super) fn scan(line: &str, key_op: &Regex, code: bool) -> Vec<Hit> {
    let mut hits = Vec::new();
    let mut at = 0;
    while let Some(caps) = key_op.captures_at(line, at) {
        let whole = caps.get(0).expect("match");
        at = whole.end().max(at + 1);
        let (Some(key), quote, Some(op)) = (caps.get(1), caps.get(2), caps.get(3)) else { continue };
        let quoted_key = quote.is_some_and(|q| !q.is_empty());
        // `get("api_token", "…")` passes a name and its value; a bare comma does not.
        if op.as_str() == "," && !quoted_key {
            continue;
        }
        let Some(kind) = kind_of(key.as_str()) else { continue };
        let Some((start, end, quoted)) = value_at(line, whole.end()) else { continue };
        at = at.max(end);
        if !quoted && (op.as_str() == "," || code) {
            continue;
        }
        let value = &line[start..end];
        if worth_reporting(kind, key.as_str(), value, quoted) {
            hits.push(Hit { kind, start, end });
        }
    }
    hits
}

/// The key's words, lower case: `dbPassword` and `DB_PASSWORD` → db, password.
fn words(key: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut prev: Option<char> = None;
    let chars: Vec<char> = key.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_ascii_alphanumeric() {
            out.push(std::mem::take(&mut word));
            prev = None;
            continue;
        }
        let next_lower = chars.get(i + 1).is_some_and(char::is_ascii_lowercase);
        let boundary = prev.is_some_and(|p| {
            (p.is_ascii_lowercase() && c.is_ascii_uppercase())
                || (p.is_ascii_uppercase() && c.is_ascii_uppercase() && next_lower)
        });
        if boundary {
            out.push(std::mem::take(&mut word));
        }
        word.push(c.to_ascii_lowercase());
        prev = Some(c);
    }
    out.push(word);
    out.retain(|w| !w.is_empty());
    out
}

fn ends_with_any(word: &str, keywords: &str) -> bool {
    !listed("false-endings", word) && list(keywords).iter().any(|k| word.ends_with(k))
}

/// What a key says about its value, if anything.
fn kind_of(key: &str) -> Option<Kind> {
    let words = words(key);
    let last = words.last()?;
    if listed("meta", last) || words.iter().any(|w| listed("deny", w)) {
        return None;
    }
    let strong_pair = words.windows(2).any(|w| listed("strong-before-key", &w[0]) && w[1] == "key");
    if strong_pair || words.iter().any(|w| ends_with_any(w, "strong")) {
        return Some(Kind::Password);
    }
    words.iter().any(|w| ends_with_any(w, "weak")).then_some(Kind::HighEntropy)
}

/// The value after an operator: a quoted string (without its quotes) or a
/// bare word that runs to the end of the line or a comment.
fn value_at(line: &str, from: usize) -> Option<(usize, usize, bool)> {
    let mut start = from;
    let rest = &line[start..];
    // A YAML binary scalar holds its value after the tag.
    if let Some(r) = rest.strip_prefix("!!binary ") {
        start += rest.len() - r.trim_start().len();
    }
    let rest = &line[start..];
    let first = rest.chars().next()?;
    if matches!(first, '"' | '\'' | '`') {
        let body = &rest[1..];
        let close = body.find(first)?;
        return Some((start + 1, start + 1 + close, true));
    }
    // A bare word ends at white space or at the quote closing the string it sits in.
    let len = rest.find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '`')).unwrap_or(rest.len());
    let after = rest[len..].trim_start_matches(['"', '\'', '`', ',', ';', ')', ']', '}']).trim_start();
    let ends = after.is_empty() || ["#", "//", ";", "\\", "&&", "|", "-"].iter().any(|p| after.starts_with(p));
    let word = rest[..len].trim_end_matches([',', ';']);
    (ends && !word.is_empty()).then_some((start, start + word.len(), false))
}

/// The value checks: long enough, not a placeholder or a reference to
/// somewhere else, not the key's own name, and, for a weak key, random.
fn worth_reporting(kind: Kind, key: &str, value: &str, quoted: bool) -> bool {
    let min = if kind == Kind::Password { 6 } else { 16 };
    if value.len() < min || placeholder::value(value) || reference(value, quoted) || names_itself(key, value) {
        return false;
    }
    if value.split_whitespace().nth(1).is_some() {
        // Prose (a message, a label); passwords with spaces are rare next to it.
        return false;
    }
    match kind {
        // `app-cert-manager-webhook-tls`: lower-case words joined by dashes
        // name a resource (a Kubernetes secret, a vault entry).
        Kind::Password => !(value.split('-').count() >= 3 && value.chars().all(|c| c.is_ascii_lowercase() || c == '-')),
        // Random values of this length nearly always hold a digit; names
        // such as `kubernetes.io/hostname` do not.
        Kind::HighEntropy => {
            let hex = value.chars().all(|c| c.is_ascii_hexdigit());
            let limit = if hex { 3.0 } else { 3.7 };
            value.contains(|c: char| c.is_ascii_digit())
                && !placeholder::sequential(value)
                && placeholder::entropy(value) >= limit
        }
    }
}

/// A value that points elsewhere: a call, an index, a dotted path
/// (`var.db_password`, `X25519.secret_length`), a URL, a file, an address,
/// a version, an unquoted expression.
fn reference(value: &str, quoted: bool) -> bool {
    let dotted = value.contains('.')
        && value.split('.').all(|p| p.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_'))
        && value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '$'));
    let file = [".pem", ".key", ".crt", ".cer", ".p12", ".pfx", ".jks", ".json", ".txt", ".keytab", ".pub", ".yaml"]
        .iter()
        .any(|e| value.to_ascii_lowercase().ends_with(e));
    let version = value.trim_start_matches(['v', '^', '~', '=', '<', '>']).split('.').filter(|p| !p.is_empty()).count()
        >= 2
        && value.trim_start_matches(['v', '^', '~', '=', '<', '>']).chars().all(|c| c.is_ascii_digit() || c == '.');
    dotted
        || file
        || version
        || value.contains("://")
        || value.contains(['(', '[', '{'])
        || (value.contains('@') && value.contains('.') && !value.contains('/'))
        || (!quoted && value.starts_with(['*', '&', '!', '|', '>', '@']))
}

/// `secretName: my-app-secret-name`-style values that repeat the key.
fn names_itself(key: &str, value: &str) -> bool {
    let norm = |s: &str| s.chars().filter(char::is_ascii_alphanumeric).collect::<String>().to_ascii_lowercase();
    let (k, v) = (norm(key), norm(value));
    v.len() >= 6 && (k.contains(&v) || v.contains(&k))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compliance::secrets::rules::table;

    fn found(line: &str, code: bool) -> Vec<(Kind, String)> {
        let re = &table().spec("secret/password-assignment").patterns[0];
        scan(line, re, code).into_iter().map(|h| (h.kind, line[h.start..h.end].to_string())).collect()
    }

    #[test]
    fn every_word_list_is_there() {
        for name in ["strong", "weak", "strong-before-key", "false-endings", "deny", "meta", "code"] {
            assert!(!list(name).is_empty(), "{name}");
        }
        assert!(is_code("src/app.py") && !is_code("config/app.yaml"));
    }

    #[test]
    fn key_words() {
        assert_eq!(words("dbPassword"), ["db", "password"]);
        assert_eq!(words("DB_PASSWORD"), ["db", "password"]);
        assert_eq!(words("APIKey"), ["api", "key"]);
        assert_eq!(kind_of("client_secret"), Some(Kind::Password));
        assert_eq!(kind_of("azurestorageaccountkey"), Some(Kind::HighEntropy));
        assert_eq!(kind_of("secretName"), None, "names the secret");
        assert_eq!(kind_of("foreign_key_id"), None);
        assert_eq!(kind_of("keyboardLayout"), None);
        assert_eq!(kind_of("monkey"), None);
        assert_eq!(kind_of("hashed_secret"), None, "a hash of a secret");
        assert_eq!(kind_of("keyVaultToStoreSecrets"), None, "a collection of secrets");
    }

    #[test]
    fn quoted_and_unquoted_values() {
        assert_eq!(found(r#"db_password = "hunter2-prod-9f3k""#, true), [(Kind::Password, "hunter2-prod-9f3k".into())]);
        assert_eq!(found("keystore_password: cassandra", false), [(Kind::Password, "cassandra".into())]);
        assert!(found("password = get_password()", true).is_empty());
        assert!(found("password = db_password_value", true).is_empty(), "a variable in source");
        assert!(found("api_key = var.nested_var.base64_enc_apikey", false).is_empty());
        assert_eq!(
            found("low_secret: !!binary MjNjcnh1IDJieXJp", false),
            [(Kind::Password, "MjNjcnh1IDJieXJp".into())]
        );
        assert_eq!(
            found(r#"utils.GetEnvOrDefault("api_token", "dafa7817-e246-48f3-91a7-e87653d587b8")"#, true),
            [(Kind::Password, "dafa7817-e246-48f3-91a7-e87653d587b8".into())]
        );
        assert!(found("password combination is long", false).is_empty());
    }

    #[test]
    fn weak_keys_need_random_values() {
        assert_eq!(found("signing_key: q8Zr2LmX9vT4wKpB7nYcD3fA1sE6hJ0u", false).len(), 1);
        assert!(found(r#"const keyStr = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789""#, true)
            .is_empty());
        assert!(found(r#"<entry key="jetbrains.mps.v8_elimination" value="executed" />"#, false).is_empty());
        assert!(found(r#"pub const SN_id_Gost28147_89_None_KeyMeshing = "id-Gost28147-89-None-KeyMeshing""#, true)
            .is_empty());
        assert!(found("sendgrid_key_hint = short", false).is_empty());
    }
}
