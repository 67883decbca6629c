//! How a step is known and its value kept for `--resume`.
//!
//! A step is known by its `step_key`: a salted SHA-256 of its phase, its
//! step path and its occurrence, where every secret in the phase or the
//! path stands as `${NAME}`. The key does not change when the display name
//! is masked, nor when the secret's value changes between attempts, and it
//! tells nothing about the value (the hashed text holds only names).
//!
//! A value is recorded as JSON, masked like every output. A string that
//! holds a secret is also recorded as a reference by name
//! ([`SecretRef`]), so a resumed run gets the value the secret has then,
//! never `***`. A value over [`MAX_INLINE_VALUE`] goes to a file of the
//! run's folder. A value that cannot come back as it was (a closure, a
//! custom type, nesting deeper than [`MAX_VALUE_DEPTH`], a secret in an
//! encoded form) is recorded as not replayable, with why.

use std::fmt::Write as _;

use rhai::Dynamic;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::secret_ref::{Part, SecretRef, UnsetSecret};
use crate::events::RecordedValue;
use crate::secrets::{FormKind, Piece, Redactor};

/// Values whose JSON is bigger than this go to `values/NNN.json`.
pub const MAX_INLINE_VALUE: usize = 1 << 20;

/// Deeper values are not recorded: a reader of JSON (`serde_json` stops at
/// 128 levels, `jq` and others at similar depths) could not read the line.
pub const MAX_VALUE_DEPTH: usize = 100;

/// Put the secrets' values back into a recorded value.
pub fn substitute(
    value: &mut Value,
    refs: &[SecretRef],
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(), UnsetSecret> {
    for r in refs {
        let text = r.render(lookup)?;
        if let Some(slot) = value.pointer_mut(&r.path) {
            *slot = Value::String(text);
        }
    }
    Ok(())
}

/// The key `--resume` knows a step by.
pub fn step_key(salt: &str, redactor: &Redactor, phase: &str, path: &str, occurrence: u32) -> String {
    let mut hash = Sha256::new();
    hash.update(salt.as_bytes());
    hash.update([0]);
    hash.update(redactor.name_template(phase).as_bytes());
    hash.update([0]);
    hash.update(redactor.name_template(path).as_bytes());
    hash.update([0]);
    hash.update(occurrence.to_string().as_bytes());
    hex(&hash.finalize()[..16])
}

/// A fresh salt for a run's step keys.
pub fn new_salt() -> String {
    use std::io::Read as _;
    let mut bytes = [0u8; 16];
    let read = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if read.is_err() {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let mut hash = Sha256::new();
        hash.update(now.as_nanos().to_le_bytes());
        hash.update(std::process::id().to_le_bytes());
        bytes.copy_from_slice(&hash.finalize()[..16]);
    }
    hex(&bytes)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// A step's value as the journal keeps it; `seq` names its file when big.
pub fn record(value: &Dynamic, redactor: &Redactor, seq: Option<u32>) -> RecordedValue {
    let unrecorded = |why: String| RecordedValue {
        value_unrecorded: true,
        value_unrecorded_why: Some(why),
        ..RecordedValue::default()
    };
    if value.is_unit() {
        return RecordedValue::default();
    }
    if let Some(why) = obstacle(value, 0) {
        return unrecorded(why);
    }
    let json = match serde_json::to_value(value) {
        Ok(j) => j,
        Err(e) => return unrecorded(format!("not expressible as JSON: {e}")),
    };
    let mut refs = Vec::new();
    if let Err(why) = secret_refs(&json, &mut String::new(), redactor, &mut refs) {
        // Shown masked, but a resume could not put the secret back.
        let shown = serde_json::to_string(&json).is_ok_and(|s| s.len() <= MAX_INLINE_VALUE);
        return RecordedValue { value: shown.then_some(json), ..unrecorded(why) };
    }
    let size = match &json {
        Value::String(s) => s.len(),
        other => serde_json::to_string(other).map_or(usize::MAX, |s| s.len()),
    };
    if size <= MAX_INLINE_VALUE {
        return RecordedValue { value: Some(json), value_secrets: refs, ..RecordedValue::default() };
    }
    match seq {
        Some(seq) => RecordedValue {
            value_file: Some(format!("values/{seq:03}.json")),
            large: Some(Box::new(json)),
            value_secrets: refs,
            ..RecordedValue::default()
        },
        None => unrecorded(format!("over {} KiB", MAX_INLINE_VALUE / 1024)),
    }
}

/// Why a value would not come back as it was from JSON, if it would not.
/// Stops descending past [`MAX_VALUE_DEPTH`], so a deep value costs little.
fn obstacle(value: &Dynamic, depth: usize) -> Option<String> {
    let deeper = || Some(format!("nested deeper than {MAX_VALUE_DEPTH} levels"));
    if value.is_fnptr() {
        return Some("a closure or function pointer".into());
    }
    if (value.is_array() || value.is_map()) && depth >= MAX_VALUE_DEPTH {
        return deeper();
    }
    if value.is_array() {
        let items = value.read_lock::<rhai::Array>()?;
        return items.iter().find_map(|v| obstacle(v, depth + 1));
    }
    if value.is_map() {
        let map = value.read_lock::<rhai::Map>()?;
        return map.values().find_map(|v| obstacle(v, depth + 1));
    }
    if value.is_float() {
        return value.as_float().ok().filter(|f| !f.is_finite()).map(|f| format!("the number {f}"));
    }
    if value.is_unit() || value.is_bool() || value.is_int() || value.is_string() || value.is_char() {
        return None;
    }
    Some(format!("a value of type `{}`", value.type_name()))
}

/// Collect where secrets sit in `value`; `Err` when one sits where a
/// reference by name could not put it back.
fn secret_refs(value: &Value, path: &mut String, redactor: &Redactor, refs: &mut Vec<SecretRef>) -> Result<(), String> {
    match value {
        Value::String(s) => {
            let Some(pieces) = redactor.split(s) else { return Ok(()) };
            let mut parts = Vec::with_capacity(pieces.len());
            for piece in pieces {
                parts.push(match piece {
                    Piece::Text(t) => Part::Text(t),
                    Piece::Secret { name: None, .. } => return Err("a secret whose name capstan does not know".into()),
                    Piece::Secret { name: Some(n), kind: FormKind::Derived } => {
                        return Err(format!("secret `{n}` in an encoded form or a line of it"))
                    }
                    Piece::Secret { name: Some(n), kind } => {
                        Part::Secret { secret: n.to_string(), trimmed: kind == FormKind::Trimmed }
                    }
                });
            }
            refs.push(SecretRef { path: path.clone(), parts });
        }
        Value::Number(_) | Value::Bool(_) => {
            if redactor.redact_owned(&value.to_string()).is_some() {
                return Err("a number derived from a secret".into());
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                let _ = write!(path, "/{i}");
                secret_refs(item, path, redactor, refs)?;
                path.truncate(len);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                if redactor.redact_owned(key).is_some() {
                    return Err("a secret in a map key".into());
                }
                let len = path.len();
                path.push('/');
                path.push_str(&key.replace('~', "~0").replace('/', "~1"));
                secret_refs(item, path, redactor, refs)?;
                path.truncate(len);
            }
        }
        Value::Null => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_in_a_value_become_references_by_name() {
        let r = Redactor::new();
        r.add_quietly("TOKEN", "tok-12345");
        let value =
            rhai::serde::to_dynamic(serde_json::json!({"h": "Bearer tok-12345!", "n": [1, "tok-12345"]})).unwrap();
        let rec = record(&value, &r, Some(3));
        assert!(!rec.value_unrecorded);
        let mut refs = rec.value_secrets.clone();
        refs.sort_by(|a, b| a.path.cmp(&b.path));
        assert_eq!(refs[0].path, "/h");
        assert_eq!(
            refs[0].parts,
            [
                Part::Text("Bearer ".into()),
                Part::Secret { secret: "TOKEN".into(), trimmed: false },
                Part::Text("!".into())
            ]
        );
        assert_eq!(refs[1].path, "/n/1");
        let mut v = serde_json::json!({"h": "Bearer ***!", "n": [1, "***"]});
        substitute(&mut v, &refs, &|n| (n == "TOKEN").then(|| "new-67890".to_string())).unwrap();
        assert_eq!(v, serde_json::json!({"h": "Bearer new-67890!", "n": [1, "new-67890"]}));
        assert_eq!(substitute(&mut v, &refs, &|_| None), Err(UnsetSecret("TOKEN".to_string())));
    }

    #[test]
    fn what_cannot_be_replayed_says_why() {
        let r = Redactor::new();
        r.add_quietly("TOKEN", "tok-12345");
        let b64 = rhai::Dynamic::from(base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "tok-12345"));
        assert!(record(&b64, &r, None).value_unrecorded_why.unwrap().contains("`TOKEN` in an encoded form"));
        r.add_quietly("PIN", "73219054");
        let pin = record(&rhai::Dynamic::from(73_219_054_i64), &r, None);
        assert!(pin.value_unrecorded && pin.value.is_some(), "shown (the bus masks it), not replayable");
        assert_eq!(pin.value_unrecorded_why.as_deref(), Some("a number derived from a secret"));
        let mut deep = rhai::Dynamic::from(1_i64);
        for _ in 0..200 {
            deep = rhai::Dynamic::from_array(vec![deep]);
        }
        assert!(record(&deep, &r, None).value_unrecorded_why.unwrap().contains("deeper than 100"));
        let mut shallow = rhai::Dynamic::from(1_i64);
        for _ in 0..MAX_VALUE_DEPTH {
            shallow = rhai::Dynamic::from_array(vec![shallow]);
        }
        let rec = record(&shallow, &r, None);
        assert!(!rec.value_unrecorded);
        let line = serde_json::to_string(&serde_json::json!({ "value": rec.value })).unwrap();
        assert!(serde_json::from_str::<Value>(&line).is_ok(), "the deepest recorded value reads back");
    }

    #[test]
    fn step_keys_hold_names_not_values() {
        let r = Redactor::new();
        r.add_quietly("TOKEN", "tok-12345");
        let a = step_key("salt", &r, "do", "login-tok-12345", 1);
        let r2 = Redactor::new();
        r2.add_quietly("TOKEN", "other-value");
        assert_eq!(a, step_key("salt", &r2, "do", "login-other-value", 1), "same name, new value: same step");
        assert_ne!(a, step_key("salt", &r, "do", "login-***", 1));
        assert_ne!(a, step_key("salt", &r, "do", "login-tok-12345", 2));
        assert_ne!(a, step_key("pepper", &r, "do", "login-tok-12345", 1));
    }
}
