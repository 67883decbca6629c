//! What the user has allowed: a line containing `capstan:allow-secret` (or
//! detect-secrets' `pragma: allowlist secret`), and paths or values listed
//! in a `.capstan-secrets-allow` file at the scan root (one per line, `#`
//! comments; a path may end in `*`).

use std::path::Path;

/// The name of the allow-list file at the scan root.
pub(super) const FILE: &str = ".capstan-secrets-allow";

/// Is this line marked as holding no secret?
pub(super) fn inline(line: &str) -> bool {
    line.contains("capstan:allow-secret") || line.contains("pragma: allowlist secret")
}

/// The allow-list at the scan root: paths (relative, or globs ending in `*`) and literal values.
#[derive(Default)]
pub(super) struct AllowList {
    entries: Vec<String>,
}

impl AllowList {
    pub fn load(root: &Path) -> Self {
        let base =
            if root.is_dir() { root.to_path_buf() } else { root.parent().map(Path::to_path_buf).unwrap_or_default() };
        let text = std::fs::read_to_string(base.join(FILE)).unwrap_or_default();
        let entries =
            text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(str::to_string).collect();
        Self { entries }
    }

    pub fn path(&self, rel: &str) -> bool {
        self.entries.iter().any(|e| e == rel || e.strip_suffix('*').is_some_and(|p| rel.starts_with(p)))
    }

    pub fn value(&self, v: &str) -> bool {
        self.entries.iter().any(|e| e == v)
    }
}
