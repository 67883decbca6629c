//! What a pattern match must pass to be reported, per the rule's check:
//! token shape (placeholder, entropy, where it ends), Slack's numeric
//! segments, a JWT's decodable header, key material under a PEM header.

use std::sync::LazyLock;

use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;

use super::placeholder;
use super::rules::{Check, Spec};

/// Where a match sits: its line, where it ends in it, and the lines after it.
pub(super) struct Site<'a> {
    pub line: &'a str,
    pub end: usize,
    pub following: &'a [&'a str],
}

/// Does this match of `spec` report `secret`?
pub(super) fn passes(spec: &Spec, secret: &str, site: &Site) -> bool {
    match spec.check {
        Check::Token => token(spec, secret, site),
        Check::Slack => token(spec, secret, site) && slack_segments(secret),
        Check::Jwt => jwt(secret),
        Check::PrivateKey => key_material(&site.line[site.end..], site.following),
        Check::Url => !placeholder::value(secret),
        Check::None | Check::Assignment => true,
    }
}

fn token(spec: &Spec, secret: &str, site: &Site) -> bool {
    // A token runs to a non-word character; `\b` would also reject a key
    // that ends in `-` and is followed by a quote or the end of the line.
    let ends = !site.line[site.end..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_');
    ends && !placeholder::token(secret) && placeholder::entropy(secret) >= spec.min_entropy
}

/// `xoxb-<team>-<user>-<secret>`: an optional one-digit version, then ids
/// of six digits or more, then a secret that is not all digits. Rejects
/// `xoxb-12345-abcd234` and `xoxp-1234-1234-1234-…` placeholders.
fn slack_segments(secret: &str) -> bool {
    let parts: Vec<&str> = secret.split('-').collect();
    let last = parts.last().copied().unwrap_or_default();
    // The long configuration tokens and app tokens have their own shape.
    if !secret.starts_with("xox") || last.len() >= 100 || secret.starts_with("xoxe.") {
        return true;
    }
    let ids = &parts[1..parts.len() - 1];
    let version = usize::from(ids.first().is_some_and(|s| s.len() == 1));
    let long = ids[version..].iter().all(|s| s.len() >= 6);
    long && ids.len() > version && last.len() >= 8 && !last.bytes().all(|b| b.is_ascii_digit())
}

static BASE64URL: LazyLock<GeneralPurpose> = LazyLock::new(|| {
    let config = GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true);
    GeneralPurpose::new(&base64::alphabet::URL_SAFE, config)
});

fn json_part(part: &str) -> Option<serde_json::Value> {
    let bytes = BASE64URL.decode(part).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// A JWT's header is base64url JSON naming its algorithm; its payload is
/// base64url JSON too (unless the header says it is encrypted). Two-part
/// tokens and an empty signature (`alg: none`) are still tokens.
pub(super) fn jwt(token: &str) -> bool {
    let mut parts = token.split('.');
    let header = parts.next().and_then(json_part);
    let Some(header) = header.as_ref().and_then(serde_json::Value::as_object) else { return false };
    header.contains_key("alg") && (header.contains_key("enc") || parts.next().and_then(json_part).is_some())
}

/// Base64 key material under a PEM header, on the same line (a key inside
/// a JSON string, with `\n` escapes) or on the lines after it, up to its
/// END line: not an empty block or prose standing in for a key.
fn key_material(rest: &str, following: &[&str]) -> bool {
    let lines = std::iter::once(rest).chain(following.iter().take(60).copied());
    for line in lines {
        for piece in line.split("\\n") {
            let piece = piece.split("-----END").next().unwrap_or_default();
            let longest = piece
                .split(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=')))
                .map(str::len)
                .max()
                .unwrap_or(0);
            if longest >= 32 && !piece.contains(':') {
                return true;
            }
        }
        if line.contains("-----END") {
            return false;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slack_ids_are_long() {
        assert!(slack_segments("xoxb-34532454-e039d02840a0b9379c"));
        assert!(slack_segments("xoxa-2-511111111-31111111111-3111111111111-e039d02840a0b9379c"));
        assert!(!slack_segments("xoxb-12345-abcd234"));
        assert!(!slack_segments("xoxp-1234-1234-1234-4ddbc191d40ee098cbaae6f3523ada2d"));
        assert!(!slack_segments("xoxp-572370529330-573807301142-572331691188"), "all digits: a cut-off token");
        assert!(!slack_segments("xoxp-1-SlackAppConfigurationAccessTokenHere"));
    }

    #[test]
    fn jwt_headers_decode() {
        let three = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
        assert!(jwt(three));
        assert!(
            jwt("eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJuYW1lIjoiSm9lIiwKInN0YXR1cyI6ImVtcGxveWVlIgp9"),
            "two parts"
        );
        assert!(jwt("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ0ZXN0LXVzZXIifQ."), "alg none, empty signature");
        assert!(!jwt("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ.eyJzdWIiOiIxMjM0NTY3ODkwIn0.x"), "header is cut short");
        assert!(!jwt("eyJhbasdGciOiJIUaddasdasfsasdasdzI1NiIasdsInR5cCI6IkpXVCasdJasd9.eyJzdWIiOiIxIn0.x"));
        assert!(!jwt("eyJzdWIiOiIxMjM0NTY3ODkwIn0.eyJzdWIiOiIxMjM0NTY3ODkwIn0"), "no alg: not a token header");
        assert!(!jwt("eyJAAAA.eyJBBB"));
    }

    #[test]
    fn private_keys_need_material() {
        let body =
            ["MIIEowIBAAKCAQEAuTXUlK1b5nFGqXpD3tQ8mZr2LmX9vT4wKpB7nYcD3fA1sE6h", "-----END RSA PRIVATE KEY-----"];
        assert!(key_material("", &body));
        assert!(key_material(
            "\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIB\\n-----END PRIVATE KEY-----\\n\",",
            &[]
        ));
        assert!(!key_material("", &["anything", "-----END PRIVATE KEY-----"]));
        assert!(!key_material("-----END OPENSSH PRIVATE KEY-----", &[]), "an empty block");
        assert!(!key_material("\");", &["if (x) {"]), "code that looks for a header");
    }
}
