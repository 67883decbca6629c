//! INI values the way Ansible reads them: a value that is a Python literal
//! (`8080`, `1.5`, `True`, `None`, `'text'`, `[1, 2]`, `{'a': 1}`) becomes
//! that value, anything else stays the text it is (`ast.literal_eval`,
//! falling back to the string). So `true`, `yes` and `010` stay strings.

use serde_json::{Map, Number, Value};

/// The value `text` stands for in an Ansible INI inventory.
pub fn value(text: &str) -> Value {
    let mut p = Parser { s: text.as_bytes(), at: 0, text, depth: 0 };
    match p.literal() {
        Some(v) if p.rest_is_blank() => v,
        _ => Value::String(text.to_string()),
    }
}

struct Parser<'a> {
    s: &'a [u8],
    at: usize,
    text: &'a str,
    /// How many lists and maps are open: deeper than [`MOST_NESTED`] is
    /// text, not a literal (and not a stack overflow).
    depth: usize,
}

const MOST_NESTED: usize = 64;

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.at).copied()
    }

    fn blank(&mut self) {
        while self.peek().is_some_and(|c| c == b' ' || c == b'\t') {
            self.at += 1;
        }
    }

    /// Only blanks and a `# comment` are left (Python ignores both).
    fn rest_is_blank(&mut self) -> bool {
        self.blank();
        matches!(self.peek(), None | Some(b'#'))
    }

    fn eat(&mut self, c: u8) -> bool {
        self.blank();
        if self.peek() == Some(c) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn literal(&mut self) -> Option<Value> {
        self.blank();
        match self.peek()? {
            b'\'' | b'"' => {
                let mut text = self.string()?;
                // Adjacent strings are one: 'a' 'b' is 'ab'.
                while matches!(
                    {
                        self.blank();
                        self.peek()
                    },
                    Some(b'\'' | b'"')
                ) {
                    text.push_str(&self.string()?);
                }
                Some(Value::String(text))
            }
            b'[' | b'(' | b'{' if self.depth >= MOST_NESTED => None,
            b'[' => self.nested(|p| p.sequence(b']')),
            b'(' => self.nested(|p| p.sequence(b')')),
            b'{' => self.nested(Self::braces),
            b'-' | b'+' => {
                let negative = self.peek() == Some(b'-');
                self.at += 1;
                self.blank();
                match self.number()? {
                    Value::Number(n) if negative => negate(&n),
                    other => Some(other),
                }
            }
            b'0'..=b'9' | b'.' => self.number(),
            _ => self.word(),
        }
    }

    fn nested(&mut self, inner: impl FnOnce(&mut Self) -> Option<Value>) -> Option<Value> {
        self.depth += 1;
        let value = inner(self);
        self.depth -= 1;
        value
    }

    fn word(&mut self) -> Option<Value> {
        let start = self.at;
        while self.peek().is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_') {
            self.at += 1;
        }
        match &self.text[start..self.at] {
            "True" => Some(Value::Bool(true)),
            "False" => Some(Value::Bool(false)),
            "None" => Some(Value::Null),
            _ => None,
        }
    }

    fn number(&mut self) -> Option<Value> {
        let start = self.at;
        while let Some(c) = self.peek() {
            let exponent_sign = (c == b'+' || c == b'-')
                && matches!(self.s.get(self.at - 1), Some(b'e' | b'E'))
                && !self.text[start..self.at].to_ascii_lowercase().starts_with("0x");
            if !(c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || exponent_sign) {
                break;
            }
            self.at += 1;
        }
        number(&self.text[start..self.at])
    }

    fn string(&mut self) -> Option<String> {
        let quote = self.peek()?;
        self.at += 1;
        let mut out = String::new();
        let mut chars = self.text[self.at..].char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                c if c as u32 == u32::from(quote) => {
                    self.at += i + 1;
                    return Some(out);
                }
                '\\' => {
                    let (_, e) = chars.next()?;
                    match e {
                        'n' => out.push('\n'),
                        't' => out.push('\t'),
                        'r' => out.push('\r'),
                        '0' => out.push('\0'),
                        '\\' | '\'' | '"' => out.push(e),
                        other => {
                            out.push('\\');
                            out.push(other);
                        }
                    }
                }
                c => out.push(c),
            }
        }
        None
    }

    /// `[a, b]` or `(a, b)`: an array either way.
    fn sequence(&mut self, close: u8) -> Option<Value> {
        self.at += 1;
        let mut items = Vec::new();
        loop {
            if self.eat(close) {
                return Some(Value::Array(items));
            }
            items.push(self.literal()?);
            if !self.eat(b',') {
                return self.eat(close).then_some(Value::Array(items));
            }
        }
    }

    /// `{'a': 1}` is a map; `{1, 2}` a set, an array here.
    fn braces(&mut self) -> Option<Value> {
        self.at += 1;
        let (mut map, mut set) = (Map::new(), Vec::new());
        loop {
            if self.eat(b'}') {
                return Some(if set.is_empty() { Value::Object(map) } else { Value::Array(set) });
            }
            let key = self.literal()?;
            if self.eat(b':') {
                if !set.is_empty() {
                    return None;
                }
                let key = match key {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                map.insert(key, self.literal()?);
            } else if map.is_empty() {
                set.push(key);
            } else {
                return None;
            }
            if !self.eat(b',') {
                return self.eat(b'}').then_some(if set.is_empty() { Value::Object(map) } else { Value::Array(set) });
            }
        }
    }
}

fn negate(n: &Number) -> Option<Value> {
    if let Some(i) = n.as_i64() {
        return Some(Value::from(i.checked_neg()?));
    }
    Number::from_f64(-n.as_f64()?).map(Value::Number)
}

/// A Python number literal: `42`, `1_000`, `0x1f`, `0o17`, `0b101`, `1.5`,
/// `.5`, `1e3`. `010` is not one (Python 3 refuses it).
fn number(token: &str) -> Option<Value> {
    let digits_ok = |s: &str, radix: u32| {
        !s.is_empty()
            && !s.starts_with('_')
            && !s.ends_with('_')
            && !s.contains("__")
            && s.chars().all(|c| c == '_' || c.is_digit(radix))
    };
    let lower = token.to_ascii_lowercase();
    for (prefix, radix) in [("0x", 16), ("0o", 8), ("0b", 2)] {
        if let Some(rest) = lower.strip_prefix(prefix) {
            let rest = rest.strip_prefix('_').unwrap_or(rest);
            return digits_ok(rest, radix)
                .then(|| i64::from_str_radix(&rest.replace('_', ""), radix).ok().map(Value::from))
                .flatten();
        }
    }
    if digits_ok(token, 10) {
        let plain = token.replace('_', "");
        if plain.len() > 1 && plain.starts_with('0') && plain.bytes().any(|b| b != b'0') {
            return None;
        }
        return plain.parse::<i64>().ok().map(Value::from);
    }
    let (mantissa, exponent) = match lower.split_once('e') {
        Some((m, e)) => (m, Some(e)),
        None => (lower.as_str(), None),
    };
    if let Some(e) = exponent {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        if !digits_ok(e, 10) {
            return None;
        }
    }
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let parts_ok = (whole.is_empty() || digits_ok(whole, 10)) && (fraction.is_empty() || digits_ok(fraction, 10));
    if !parts_ok || (whole.is_empty() && fraction.is_empty()) || (exponent.is_none() && !mantissa.contains('.')) {
        return None;
    }
    lower.replace('_', "").parse::<f64>().ok().and_then(Number::from_f64).map(Value::Number)
}

#[cfg(test)]
mod tests {
    use super::value;
    use serde_json::json;

    #[test]
    fn python_literals_become_values() {
        for (text, expected) in [
            ("8080", json!(8080)),
            ("-3", json!(-3)),
            ("1_000", json!(1000)),
            ("0x1f", json!(31)),
            ("1.5", json!(1.5)),
            ("1e3", json!(1000.0)),
            ("True", json!(true)),
            ("False", json!(false)),
            ("None", json!(null)),
            ("'text'", json!("text")),
            ("\"a\\tb\"", json!("a\tb")),
            ("'a' 'b'", json!("ab")),
            ("[1, 'two', None]", json!([1, "two", null])),
            ("(1, 2)", json!([1, 2])),
            ("{'a': 1, 'b': [True]}", json!({"a": 1, "b": [true]})),
            ("42 # the answer", json!(42)),
        ] {
            assert_eq!(value(text), expected, "{text}");
        }
    }

    #[test]
    fn everything_else_stays_text() {
        for text in ["true", "yes", "010", "1.2.3", "hello world", "web01", "'open", "[1, 2", "1e", "0x", "_1", "1__0"]
        {
            assert_eq!(value(text), json!(text), "{text}");
        }
    }
}
