//! A recorded string that holds secrets, kept as text and secrets by name
//! so a resumed run gets the value each secret has then, never `***`.

use serde::{Deserialize, Serialize};

use crate::secrets::Redactor;

/// A secret a recorded value names that has no value now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsetSecret(pub String);

impl std::fmt::Display for UnsetSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "secret `{}` is not set", self.0)
    }
}

impl std::error::Error for UnsetSecret {}

/// A string of a recorded value that holds secrets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretRef {
    /// JSON pointer to the string in the value (`""`: the value itself).
    pub path: String,
    /// The string: text, and secrets by name.
    pub parts: Vec<Part>,
}

impl SecretRef {
    /// The secrets it names.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Secret { secret, .. } => Some(secret.as_str()),
            Part::Text(_) => None,
        })
    }

    /// The string with each secret's value from `lookup`; the first secret
    /// `lookup` does not know is an error.
    pub fn render(&self, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, UnsetSecret> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Secret { secret, trimmed } => {
                    let value = lookup(secret).ok_or_else(|| UnsetSecret(secret.clone()))?;
                    out.push_str(if *trimmed { value.trim() } else { &value });
                }
            }
        }
        Ok(out)
    }

    /// The text parts hold no secret by construction; mask them anyway.
    pub fn redact(&mut self, redactor: &Redactor) {
        for part in &mut self.parts {
            if let Part::Text(t) = part {
                if let Some(m) = redactor.redact_owned(t) {
                    *t = m;
                }
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Part {
    Text(String),
    Secret {
        secret: String,
        /// The value without surrounding whitespace.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        trimmed: bool,
    },
}
