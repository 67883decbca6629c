//! The redactor: every secret value, and the encodings a tool is likely to
//! print it in (base64, URL encoding), is replaced by `***` before any text
//! leaves capstan. The event bus and the error renderer both go through it.

use std::borrow::Cow;
use std::sync::RwLock;

use aho_corasick::{AhoCorasick, MatchKind};
use base64::Engine as _;

pub const MASK: &str = "***";

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC};

/// RFC 3986 unreserved characters stay as they are (Python's `quote(s, safe='')`).
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');
/// JavaScript's `encodeURIComponent`.
const URI_COMPONENT: &AsciiSet = &UNRESERVED.remove(b'!').remove(b'\'').remove(b'(').remove(b')').remove(b'*');
/// Path-style encoding that keeps `/` (Python's `quote(s)`).
const PATH: &AsciiSet = &UNRESERVED.remove(b'/');

/// The URL encodings a tool is likely to print a secret in.
const URL_SETS: [&AsciiSet; 4] = [NON_ALPHANUMERIC, UNRESERVED, URI_COMPONENT, PATH];

#[derive(Default)]
struct Patterns {
    values: Vec<String>,
    matcher: Option<AhoCorasick>,
}

/// Knows every secret of the run and masks them in text.
#[derive(Default)]
pub struct Redactor {
    inner: RwLock<Patterns>,
}

impl Redactor {
    pub fn new() -> Self {
        Self::default()
    }

    /// Register a secret value; its encoded forms are registered with it.
    pub fn add(&self, secret: &str) {
        if secret.is_empty() {
            return;
        }
        let mut forms = vec![secret.to_string()];
        let b64 = base64::engine::general_purpose::STANDARD.encode(secret);
        let b64_url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
        let b64_trimmed = b64.trim_end_matches('=').to_string();
        // `base64` wraps at 76 columns: each wrapped line is a form of its own.
        if b64.len() > 76 {
            forms.extend(
                b64.as_bytes().chunks(76).map(|c| String::from_utf8_lossy(c).into_owned()).filter(|c| c.len() >= 8),
            );
        }
        forms.extend([b64, b64_trimmed, b64_url]);
        // A multi-line secret (a PEM key) is printed line by line.
        if secret.contains('\n') {
            forms.extend(secret.lines().map(str::trim).filter(|l| l.len() >= 8).map(str::to_string));
        }
        // The form a JSON document carries it in.
        if let Ok(json) = serde_json::to_string(secret) {
            let inner = &json[1..json.len() - 1];
            if inner != secret {
                forms.push(inner.to_string());
            }
        }
        forms.extend(URL_SETS.iter().map(|set| percent_encoding::utf8_percent_encode(secret, set).to_string()));
        let mut p = self.inner.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        for form in forms {
            if !p.values.contains(&form) {
                p.values.push(form);
            }
        }
        // Longest match first, so a secret that contains another is masked whole.
        p.matcher = AhoCorasick::builder().match_kind(MatchKind::LeftmostLongest).build(&p.values).ok();
    }

    /// Every registered form of every secret, in registration order: what
    /// `--log-format github` hands to `::add-mask::`.
    pub fn secrets(&self) -> Vec<String> {
        self.inner.read().map(|p| p.values.clone()).unwrap_or_default()
    }

    pub fn is_empty(&self) -> bool {
        self.inner.read().map_or(true, |p| p.values.is_empty())
    }

    /// Masked text, borrowing when nothing needed masking.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        match self.redact_owned(text) {
            Some(s) => Cow::Owned(s),
            None => Cow::Borrowed(text),
        }
    }

    /// Where to cut a long run of `bytes` near `at` so that no secret is
    /// split in two (each half would pass the masker): `at`, or the start of
    /// a secret that spans it.
    pub fn safe_cut(&self, bytes: &[u8], at: usize) -> usize {
        let p = self.inner.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(matcher) = p.matcher.as_ref() else { return at };
        let longest = p.values.iter().map(String::len).max().unwrap_or(0);
        let from = at.saturating_sub(longest);
        let to = at.saturating_add(longest).min(bytes.len());
        matcher
            .find_iter(&bytes[from..to])
            .map(|m| (from + m.start(), from + m.end()))
            .filter(|&(start, end)| start < at && end > at)
            .map(|(start, _)| start)
            .min()
            .unwrap_or(at)
    }

    /// `Some(masked)` when `text` contained a secret, `None` when it is clean.
    pub fn redact_owned(&self, text: &str) -> Option<String> {
        let p = self.inner.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let matcher = p.matcher.as_ref()?;
        if !matcher.is_match(text) {
            return None;
        }
        Some(matcher.replace_all(text, &vec![MASK; p.values.len()]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_never_splits_a_secret() {
        let r = Redactor::new();
        r.add("hunter2-secret");
        let text = b"aaaaaaaaaahunter2-secretbbbbbbbbbb";
        assert_eq!(r.safe_cut(text, 15), 10, "a cut inside the secret moves to its start");
        assert_eq!(r.safe_cut(text, 10), 10);
        assert_eq!(r.safe_cut(text, 30), 30);
        assert_eq!(Redactor::new().safe_cut(text, 15), 15);
    }

    #[test]
    fn masks_value_and_encodings() {
        let r = Redactor::new();
        r.add("hunter2-secret");
        assert_eq!(r.redact("pw=hunter2-secret;"), "pw=***;");
        let b64 = base64::engine::general_purpose::STANDARD.encode("hunter2-secret");
        assert_eq!(r.redact(&format!("auth {b64}")), "auth ***");
        assert_eq!(r.redact("nothing here"), "nothing here");
    }

    #[test]
    fn multi_line_and_json_forms() {
        let r = Redactor::new();
        r.add("-----BEGIN KEY-----\nMIIEowIBAAKCAQEAuTXUlK1b\n-----END KEY-----");
        assert_eq!(r.redact("MIIEowIBAAKCAQEAuTXUlK1b"), "***");
        assert_eq!(r.redact(r#"{"k":"-----BEGIN KEY-----\nMIIE"}"#).matches("***").count(), 1);
    }

    #[test]
    fn longest_secret_wins() {
        let r = Redactor::new();
        r.add("abc");
        r.add("abcdef");
        assert_eq!(r.redact("xabcdefx abc"), "x***x ***");
    }
}
