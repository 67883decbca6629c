//! The redactor: every secret value, and the forms a tool is likely to print
//! it in, is replaced by `***` before any text leaves capstan. The event bus,
//! the error renderer and every command that prints (`list`, `ci`, the REPL)
//! go through it.
//!
//! The forms of a value: the value as given, the value without surrounding
//! whitespace (a file read into a variable keeps its trailing newline), each
//! of its lines (a tool prints a PEM key line by line), and of each of these:
//! base64 (standard, unpadded, URL-safe, wrapped at 76 columns), hex (lower
//! and upper case), URL and form encoding (`+` for a space), the escapes a
//! JSON encoder writes (`\n`, `\"`, `\u00e9`), and the text between the
//! single quotes of a shell word (`it'\''s`).
//!
//! A form shorter than [`MIN_MASKED_LEN`] characters is not masked: it would
//! mask innocent text everywhere (a secret line `}` would remove every brace
//! from the output). [`Redactor::add_named`] says so once per secret.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt::Write as _;
use std::sync::{Arc, RwLock};

use aho_corasick::{AhoCorasick, MatchKind};
use base64::Engine as _;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC};

pub const MASK: &str = "***";

/// Shortest form masked on its own, in characters. Four keeps a PIN masked
/// while a stray `}` or `ok` line of a longer secret does not blank out every
/// brace or word of the output.
pub const MIN_MASKED_LEN: usize = 4;

/// RFC 3986 unreserved characters stay as they are (Python's `quote(s, safe='')`).
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');
/// JavaScript's `encodeURIComponent`.
const URI_COMPONENT: &AsciiSet = &UNRESERVED.remove(b'!').remove(b'\'').remove(b'(').remove(b')').remove(b'*');
/// Path-style encoding that keeps `/` (Python's `quote(s)`).
const PATH: &AsciiSet = &UNRESERVED.remove(b'/');
/// What `application/x-www-form-urlencoded` keeps besides letters and digits
/// (WHATWG, `URLSearchParams`): a space becomes `+`.
const FORM: &AsciiSet = &NON_ALPHANUMERIC.remove(b'*').remove(b'-').remove(b'.').remove(b'_');

/// The URL encodings a tool is likely to print a secret in.
const URL_SETS: [&AsciiSet; 4] = [NON_ALPHANUMERIC, UNRESERVED, URI_COMPONENT, PATH];
/// Form encodings: WHATWG's, and Python's `quote_plus` (which keeps `~`).
const FORM_SETS: [&AsciiSet; 2] = [FORM, UNRESERVED];

/// How a registered form relates to its secret's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormKind {
    /// The value as given.
    Given,
    /// The value without surrounding whitespace.
    Trimmed,
    /// A line or an encoding of the value.
    Derived,
}

/// Which secret a form belongs to.
#[derive(Debug, Clone)]
struct Owner {
    name: Option<Arc<str>>,
    kind: FormKind,
}

/// A text cut at the secrets in it ([`Redactor::split`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Text(String),
    /// A form of the secret `name` (`None`: a value registered without a name).
    Secret {
        name: Option<Arc<str>>,
        kind: FormKind,
    },
}

#[derive(Default)]
struct Patterns {
    values: Vec<String>,
    /// The secret each of `values` belongs to.
    owners: Vec<Owner>,
    matcher: Option<AhoCorasick>,
    /// Secrets already warned about, by name.
    warned: HashSet<String>,
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

    /// Register a secret value; its other forms are registered with it.
    pub fn add(&self, secret: &str) {
        self.register(None, secret);
    }

    /// Register the value of the secret `name` without a warning: the
    /// resumed values and the early scan know a secret's name too.
    pub fn add_quietly(&self, name: &str, secret: &str) {
        self.register(Some(name), secret);
    }

    fn register(&self, name: Option<&str>, secret: &str) {
        if secret.is_empty() {
            return;
        }
        let forms = forms(secret);
        let mut p = self.inner.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        let before = p.values.len();
        let name: Option<Arc<str>> = name.map(Into::into);
        for (form, kind) in forms {
            if let Some(i) = p.values.iter().position(|v| *v == form) {
                // A form first seen without a name learns it.
                if p.owners[i].name.is_none() {
                    p.owners[i] = Owner { name: name.clone(), kind };
                }
            } else {
                p.values.push(form);
                p.owners.push(Owner { name: name.clone(), kind });
            }
        }
        if p.values.len() != before {
            // Longest match first, so a secret that contains another is masked whole.
            p.matcher = AhoCorasick::builder().match_kind(MatchKind::LeftmostLongest).build(&p.values).ok();
        }
    }

    /// Register the value of the secret `name`, as [`Redactor::add`] does.
    /// The first time a secret (or a line of it) is too short to mask, says
    /// so, and what is masked instead: a warning for the run's log.
    pub fn add_named(&self, name: &str, secret: &str) -> Option<String> {
        self.register(Some(name), secret);
        let warning = short_warning(name, secret)?;
        let mut p = self.inner.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        p.warned.insert(name.to_string()).then_some(warning)
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

    /// `text` cut at every secret form in it; `None` when it holds none.
    pub fn split(&self, text: &str) -> Option<Vec<Piece>> {
        let p = self.inner.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let matcher = p.matcher.as_ref()?;
        let mut pieces = Vec::new();
        let mut last = 0;
        for m in matcher.find_iter(text) {
            if m.start() > last {
                pieces.push(Piece::Text(text[last..m.start()].to_string()));
            }
            let owner = &p.owners[m.pattern().as_usize()];
            pieces.push(Piece::Secret { name: owner.name.clone(), kind: owner.kind });
            last = m.end();
        }
        if pieces.is_empty() {
            return None;
        }
        if last < text.len() {
            pieces.push(Piece::Text(text[last..].to_string()));
        }
        Some(pieces)
    }

    /// `text` with each secret in it replaced by `${NAME}` (`***` when the
    /// secret has no name): what identifies a step whose name holds a
    /// secret, the same whatever value the secret has.
    pub fn name_template<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let Some(pieces) = self.split(text) else { return Cow::Borrowed(text) };
        let mut out = String::with_capacity(text.len());
        for piece in pieces {
            match piece {
                Piece::Text(t) => out.push_str(&t),
                Piece::Secret { name: Some(n), .. } => {
                    let _ = write!(out, "${{{n}}}");
                }
                Piece::Secret { name: None, .. } => out.push_str(MASK),
            }
        }
        Cow::Owned(out)
    }
}

/// Every form of `secret` worth masking, each at least [`MIN_MASKED_LEN`]
/// long, with how it relates to the value.
fn forms(secret: &str) -> Vec<(String, FormKind)> {
    let mut bases = vec![(secret, FormKind::Given)];
    let trimmed = secret.trim();
    if trimmed != secret && !trimmed.is_empty() {
        bases.push((trimmed, FormKind::Trimmed));
    }
    let mut forms: Vec<(String, FormKind)> = Vec::new();
    for (base, kind) in bases {
        forms.push((base.to_string(), kind));
        forms.extend(encodings(base).into_iter().map(|f| (f, FormKind::Derived)));
    }
    // A multi-line secret (a PEM key) is printed line by line, maybe indented.
    if secret.contains('\n') {
        for line in secret.lines() {
            let line = line.strip_suffix('\r').unwrap_or(line);
            for l in [line, line.trim()] {
                forms.push((l.to_string(), FormKind::Derived));
                forms.extend(encodings(l).into_iter().map(|f| (f, FormKind::Derived)));
            }
        }
    }
    let mut kept: Vec<(String, FormKind)> = Vec::new();
    for (form, kind) in forms {
        if form.chars().count() >= MIN_MASKED_LEN && !kept.iter().any(|(k, _)| *k == form) {
            kept.push((form, kind));
        }
    }
    kept
}

/// The encodings of one value a tool may print.
fn encodings(value: &str) -> Vec<String> {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
    let mut out = Vec::new();
    let b64 = STANDARD.encode(value);
    // `base64` wraps at 76 columns: each wrapped line is a form of its own.
    if b64.len() > 76 {
        out.extend(b64.as_bytes().chunks(76).map(|c| String::from_utf8_lossy(c).into_owned()).filter(|c| c.len() >= 8));
    }
    out.push(b64.trim_end_matches('=').to_string());
    out.push(b64);
    out.push(URL_SAFE.encode(value));
    out.push(URL_SAFE_NO_PAD.encode(value));
    let hex = value.bytes().fold(String::with_capacity(value.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    });
    out.push(hex.to_ascii_uppercase());
    out.push(hex);
    out.extend(URL_SETS.iter().map(|set| percent_encoding::utf8_percent_encode(value, set).to_string()));
    if value.contains(' ') {
        out.extend(
            FORM_SETS
                .iter()
                .map(|set| percent_encoding::utf8_percent_encode(value, set).to_string().replace("%20", "+")),
        );
    }
    out.extend(json_escapes(value));
    if value.contains('\'') {
        // Between the quotes of a shell word: `'it'\''s'`.
        out.push(value.replace('\'', r"'\''"));
    }
    out.retain(|form| form != value);
    out
}

/// How JSON encoders escape `value` inside a string: `serde_json` and
/// `JSON.stringify` (control characters, quotes, backslashes), Python's
/// `ensure_ascii` (`\u00e9`, lower case) and others' upper case, Go's HTML
/// escapes (`\u003c`), PHP's `\/`.
fn json_escapes(value: &str) -> Vec<String> {
    let plain = JsonEscape { ascii: false, upper: false, html: false, slash: false };
    let variants = [
        plain,
        JsonEscape { ascii: true, ..plain },
        JsonEscape { ascii: true, upper: true, ..plain },
        JsonEscape { html: true, ..plain },
        JsonEscape { ascii: true, slash: true, ..plain },
    ];
    let mut out: Vec<String> = Vec::new();
    for v in variants {
        let escaped = v.escape(value);
        if escaped != value && !out.contains(&escaped) {
            out.push(escaped);
        }
    }
    out
}

#[derive(Clone, Copy)]
#[allow(clippy::struct_excessive_bools)] // one flag per encoder habit
struct JsonEscape {
    /// Everything outside ASCII as `\uXXXX` (UTF-16 units).
    ascii: bool,
    /// Upper-case hex digits in `\u` escapes.
    upper: bool,
    /// `<`, `>`, `&` as `\u003c`...
    html: bool,
    /// `/` as `\/`.
    slash: bool,
}

impl JsonEscape {
    fn escape(self, value: &str) -> String {
        let mut out = String::with_capacity(value.len() + 8);
        let unit = |out: &mut String, u: u16| {
            let _ = if self.upper { write!(out, "\\u{u:04X}") } else { write!(out, "\\u{u:04x}") };
        };
        for c in value.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                '/' if self.slash => out.push_str("\\/"),
                '<' | '>' | '&' if self.html => unit(&mut out, c as u16),
                c if (c as u32) < 0x20 => unit(&mut out, c as u16),
                c if self.ascii && !c.is_ascii() => {
                    let mut buf = [0u16; 2];
                    for u in c.encode_utf16(&mut buf) {
                        unit(&mut out, *u);
                    }
                }
                c => out.push(c),
            }
        }
        out
    }
}

/// What to tell the user when part of `secret` is too short to mask.
fn short_warning(name: &str, secret: &str) -> Option<String> {
    let whole = secret.trim();
    if whole.chars().count() < MIN_MASKED_LEN {
        if whole.is_empty() {
            return None;
        }
        return Some(format!(
            "secret `{name}` is shorter than {MIN_MASKED_LEN} characters, too short to mask safely: \
             its value is not masked in the output; use a longer secret"
        ));
    }
    if !secret.contains('\n') {
        return None;
    }
    let short = secret.lines().map(str::trim).filter(|l| !l.is_empty() && l.chars().count() < MIN_MASKED_LEN).count();
    (short > 0).then(|| {
        format!(
            "secret `{name}` has {short} line(s) shorter than {MIN_MASKED_LEN} characters, too short to mask \
             safely: such a line is masked only as part of the whole value or of a longer line, not on its own"
        )
    })
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
        r.add("abcd");
        r.add("abcdefgh");
        assert_eq!(r.redact("xabcdefghx abcd"), "x***x ***");
    }

    #[test]
    fn trailing_newline_and_short_lines() {
        let r = Redactor::new();
        assert_eq!(r.add_named("PW", "pw12345\n"), None);
        assert_eq!(r.redact("got pw12345 here"), "got *** here");
        let r = Redactor::new();
        r.add("ab12\ncd34");
        assert_eq!(r.redact("ab12"), "***");
        assert_eq!(r.redact("  cd34"), "  ***");
        assert_eq!(r.redact("ab12\ncd34!"), "***!");
    }

    #[test]
    fn too_short_is_said_once() {
        let r = Redactor::new();
        let warning = r.add_named("KEY", "{\n  \"key\": \"a-long-value\"\n}").unwrap_or_default();
        assert!(warning.contains("`KEY` has 2 line(s) shorter than 4"), "{warning}");
        assert_eq!(r.add_named("KEY", "{\n  \"key\": \"a-long-value\"\n}"), None, "warned once");
        assert_eq!(r.redact("{ }"), "{ }", "a short line is not masked on its own");
        assert_eq!(r.redact(r#""key": "a-long-value""#), "***");
        let r = Redactor::new();
        assert!(r.add_named("PIN", "42").is_some_and(|w| w.contains("not masked")));
        assert_eq!(r.redact("42"), "42");
    }

    #[test]
    fn hex_form_json_and_shell_forms() {
        let r = Redactor::new();
        r.add("pä ss'w<rd>/x");
        let hex = "70c3a420737327773c72643e2f78";
        assert_eq!(r.redact(hex), "***");
        assert_eq!(r.redact(&hex.to_ascii_uppercase()), "***");
        assert_eq!(r.redact("p%C3%A4+ss%27w%3Crd%3E%2Fx"), "***");
        assert_eq!(r.redact(r"p\u00e4 ss'w<rd>/x"), "***");
        assert_eq!(r.redact(r"p\u00E4 ss'w<rd>/x"), "***");
        assert_eq!(r.redact(r"p\u00e4 ss'w<rd>\/x"), "***");
        assert_eq!(r.redact(r"pä ss'w\u003crd\u003e/x"), "***");
        assert_eq!(r.redact(r"echo 'pä ss'\''w<rd>/x'"), "echo '***'");
    }

    #[test]
    fn split_names_the_secret_and_the_form() {
        let r = Redactor::new();
        r.add_quietly("TOKEN", "tok-12345\n");
        r.add("unnamed-value");
        let pieces = r.split("a tok-12345 b unnamed-value").unwrap();
        assert_eq!(pieces[0], Piece::Text("a ".into()));
        assert_eq!(pieces[1], Piece::Secret { name: Some("TOKEN".into()), kind: FormKind::Trimmed });
        assert_eq!(pieces[3], Piece::Secret { name: None, kind: FormKind::Given });
        assert_eq!(r.name_template("x-tok-12345-y"), "x-${TOKEN}-y");
        assert_eq!(r.name_template("x-unnamed-value"), "x-***");
        assert!(r.split("clean").is_none());
        // The early scan registers without a name; `secret()` names it later.
        r.add_named("LATER", "unnamed-value");
        assert_eq!(r.name_template("unnamed-value"), "${LATER}");
    }

    #[test]
    fn astral_characters_escape_as_surrogate_pairs() {
        let r = Redactor::new();
        r.add("key-🔑-value");
        assert_eq!(r.redact(r"key-\ud83d\udd11-value"), "***");
    }
}
