//! A problem at a line of an inventory file: what every reader reports.

/// A problem at a line of an inventory, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    pub line: usize,
    pub message: String,
    pub hint: Option<String>,
}

impl Located {
    pub fn new(line: usize, message: impl Into<String>) -> Self {
        Self { line, message: message.into(), hint: None }
    }

    #[must_use]
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}
