//! Credentials in files: cloud keys, private keys, service tokens, JSON Web
//! Tokens, passwords in URLs and assignments, and high-entropy values under
//! secret-looking names. Honours `.gitignore`, skips binary files, and never
//! reports the secret itself: findings show a masked preview.
//!
//! The rules are data (`rules.tsv`, read by `rules`), and so are the words
//! that make a key name a secret (`names.tsv`) and the example keys vendors
//! publish (`examples.txt`). Placeholders, published examples and values
//! that point elsewhere are not findings (`placeholder`, `checks`,
//! `assignment`). What a user allows is in `allow`.

mod allow;
mod assignment;
mod checks;
mod placeholder;
mod rules;
mod scan;

use std::sync::LazyLock;

use super::finding::Rule;

pub use placeholder::entropy;
pub use scan::{preview, scan, scan_text};

/// Every secret rule, in the order of `rules.tsv`.
pub static RULES: &LazyLock<Vec<Rule>> = &rules::RULES;
