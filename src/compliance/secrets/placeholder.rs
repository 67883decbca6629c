//! Values that say "this is not a real secret": templating, references,
//! documentation placeholders (`xxxx`, `example`, `your-token`), runs of one
//! character or of the alphabet, and the example credentials that vendors
//! publish (`examples.txt`), which grant nothing.

use std::sync::LazyLock;

/// Published example credentials, one a line (`#` comments).
static EXAMPLES: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    include_str!("examples.txt").lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect()
});

/// Words that stand in for a secret in documentation and templates.
const MARKERS: &[&str] = &[
    "example",
    "changeme",
    "change-me",
    "change_me",
    "placeholder",
    "xxxx",
    "****",
    "....",
    "####",
    "dummy",
    "redacted",
    "your_",
    "your-",
    "yourtoken",
    "yourkey",
    "yourpassword",
    "<your",
    "insert",
];

/// Whole values that are words, not secrets.
const WORDS: &[&str] = &[
    "password",
    "passwd",
    "pass",
    "pwd",
    "secret",
    "token",
    "key",
    "none",
    "null",
    "nil",
    "true",
    "false",
    "undefined",
    "required",
    "optional",
    "string",
    "bearer",
    "basic",
    "mypass",
    "mypassword",
    "mysecret",
    "mytoken",
    "mykey",
    "username",
    "user",
    "value",
];

/// A value written where a secret goes in code or config that is plainly not one:
/// templating, a variable, a path, a documentation placeholder.
pub fn value(value: &str) -> bool {
    let v = value.to_ascii_lowercase();
    v.contains("${")
        || v.contains("{{")
        || v.contains("#{")
        || v.starts_with('$')
        || v.starts_with('<')
        || v.starts_with('%')
        // A path to where the secret lives is not the secret.
        || v.starts_with('/')
        || v.starts_with("./")
        || v.starts_with("../")
        || v.starts_with("~/")
        || marked(&v)
        || WORDS.contains(&v.as_str())
        || one_character(&v)
        || body_repeats(value)
}

/// A token-shaped match that is a placeholder or a published example:
/// marked as one, one repeated character, mostly a run of the alphabet.
pub fn token(secret: &str) -> bool {
    let v = secret.to_ascii_lowercase();
    marked(&v) || body_repeats(secret) || sequential(secret) || EXAMPLES.contains(&secret)
}

fn marked(lower: &str) -> bool {
    MARKERS.iter().any(|m| lower.contains(m))
}

fn one_character(v: &str) -> bool {
    let mut chars = v.chars();
    chars.next().is_some_and(|first| chars.all(|c| c == first))
}

/// `AKIAZZZZZZZZZZZZZZZZ`, `glptt-aaaa...`: past a short prefix, one character.
fn body_repeats(secret: &str) -> bool {
    let body: Vec<char> = secret.chars().filter(char::is_ascii_alphanumeric).collect();
    body.len() >= 12 && body[body.len() / 2..].windows(2).all(|w| w[0] == w[1])
}

/// Most neighbouring characters are consecutive (`abcdef…`, `0123…`): an
/// alphabet or a counting placeholder, not a random value.
pub fn sequential(value: &str) -> bool {
    let bytes = value.as_bytes();
    if bytes.len() < 8 {
        return false;
    }
    let steps = bytes.windows(2).filter(|w| w[1] == w[0].wrapping_add(1)).count();
    steps * 2 >= bytes.len() - 1
}

/// Shannon entropy in bits per character.
pub fn entropy(s: &str) -> f64 {
    let mut counts = [0usize; 256];
    for b in s.bytes() {
        counts[usize::from(b)] += 1;
    }
    let n = s.len() as f64;
    counts
        .iter()
        .filter(|c| **c > 0)
        .map(|c| {
            let p = *c as f64 / n;
            -p * p.log2()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_in_assignments() {
        for v in
            ["${DB_PASSWORD}", "{{ .Values.pw }}", "$TOKEN", "<your-token>", "/run/secrets/db", "changeme", "xxxxxx"]
        {
            assert!(value(v), "{v}");
        }
        for v in ["hunter2-prod-9f3k", "cassandra", "123456789a1234"] {
            assert!(!value(v), "{v}");
        }
    }

    #[test]
    fn placeholder_tokens() {
        assert!(token("AKIAZZZZZZZZZZZZZZZZ"), "one repeated character");
        assert!(token("AKIAXXXXXXXXXXXXXXXX"));
        assert!(token("AKIAIOSFODNN7EXAMPLE"), "AWS's documented example id");
        assert!(token("ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"));
        assert!(token("AIzaSyabcdefghijklmnopqrstuvwxyz1234567"), "the alphabet");
        assert!(token("AIzaSyAnLA7NfeLquW1tJFpx_eQCxoX-oo6YyIs"), "a key the Firebase SDK publishes");
        assert!(!token("AKIAQ3EGUXS4N6RPL7TZ"));
        assert!(!token("xoxb-123456789012-Xw937qtWSXJss1lFaKe"), "a counting team id alone is not a placeholder");
    }

    #[test]
    fn entropy_measures() {
        assert!(entropy("aaaaaaaaaaaaaaaa") < 0.1);
        assert!(entropy("q8Zr2LmX9vT4wKpB7nYc") > 4.0);
    }
}
