//! `--log-format github`: plain lines plus GitHub Actions workflow commands
//! (`::group::` per phase, `::error file=,line=::` for failures,
//! `::add-mask::` for secrets) and a Markdown summary appended to
//! `$GITHUB_STEP_SUMMARY`.

use std::fmt::Write as _;

/// `println!` that does not panic when stdout is closed.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::format::format_duration;
use super::record::{lock, RunRecord};
use super::terminal::Terminal;
use crate::events::{Event, EventKind, Sink, Status};
use crate::secrets::Redactor;

pub struct Github {
    lines: Terminal,
    redactor: Arc<Redactor>,
    masked: usize,
    record: Arc<Mutex<RunRecord>>,
    summary: Option<PathBuf>,
    error_told: bool,
    /// A failed step whose error lies inside a bundled module (a canary
    /// rung the stdlib declared): its annotation waits for the phase's
    /// error, which names the playbook line that called the module.
    pending: Option<(String, String, Option<String>)>,
}

impl Github {
    pub fn new(verbose: bool, redactor: Arc<Redactor>, record: Arc<Mutex<RunRecord>>) -> Self {
        let summary = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|s| !s.is_empty()).map(PathBuf::from);
        Self {
            lines: Terminal::plain_stdout(verbose),
            redactor,
            masked: 0,
            record,
            summary,
            error_told: false,
            pending: None,
        }
    }

    /// Hand every new secret form to GitHub before anything else is printed.
    fn add_masks(&mut self) {
        let secrets = self.redactor.secrets();
        for s in secrets.iter().skip(self.masked) {
            outln!("::add-mask::{}", escape_data(s));
        }
        self.masked = secrets.len();
    }

    fn error(&mut self, title: &str, message: &str, at: Option<&str>) {
        let mut props = String::new();
        if let Some((file, line, col)) = at.and_then(split_location) {
            let _ = write!(props, " file={},line={line},col={col},", escape_property(&file));
        } else {
            props.push(' ');
        }
        let _ = write!(props, "title={}", escape_property(title));
        outln!("::error{props}::{}", escape_data(message));
        self.error_told = true;
    }

    fn write_summary(&self) {
        let Some(path) = &self.summary else { return };
        let markdown = summary_markdown(&lock(&self.record));
        if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
            let _ = f.write_all(markdown.as_bytes());
        }
    }
}

impl Sink for Github {
    fn emit(&mut self, event: &Event) {
        self.add_masks();
        match &event.kind {
            EventKind::PhaseStarted { phase } => {
                outln!("::group::phase {}", escape_data(phase));
                self.lines.emit(event);
            }
            EventKind::PhaseFinished { error_at, .. } => {
                self.lines.emit(event);
                if let Some((title, message, inner)) = self.pending.take() {
                    let user = error_at.as_deref().filter(|at| !crate::diagnostics::in_stdlib(at));
                    self.error(&title, &message, user.or(inner.as_deref()));
                }
                outln!("::endgroup::");
            }
            EventKind::StepFinished { at, status: Status::Failed, allow_failure: false, error, error_at, .. } => {
                self.lines.emit(event);
                let title = format!("step {} failed", at.step.as_deref().unwrap_or(""));
                let message = error.clone().unwrap_or_else(|| "failed".into());
                if error_at.as_deref().is_some_and(crate::diagnostics::in_stdlib) {
                    // An earlier one stays where it was.
                    if self.pending.is_none() {
                        self.pending = Some((title, message, error_at.clone()));
                    }
                } else {
                    self.error(&title, &message, error_at.as_deref());
                }
            }
            EventKind::RunFinished { status, error, error_at, .. } => {
                if let Some((title, message, inner)) = self.pending.take() {
                    let user = error_at.as_deref().filter(|at| !crate::diagnostics::in_stdlib(at));
                    self.error(&title, &message, user.or(inner.as_deref()));
                }
                if *status != Status::Ok && *status != Status::DryRun && !self.error_told {
                    let message = error.clone().unwrap_or_else(|| "the run failed".into());
                    self.error("capstan run failed", &message, error_at.as_deref());
                }
                self.lines.emit(event);
            }
            _ => self.lines.emit(event),
        }
    }

    fn finish(&mut self) {
        self.lines.finish();
        self.write_summary();
    }
}

/// `deploy.rhai:12:5` into its parts; the file may itself contain ':'.
fn split_location(at: &str) -> Option<(String, u32, u32)> {
    let mut parts = at.rsplitn(3, ':');
    let col = parts.next()?.parse().ok()?;
    let line = parts.next()?.parse().ok()?;
    Some((parts.next()?.to_string(), line, col))
}

fn escape_data(s: &str) -> String {
    s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// The step summary: outcome, a table of steps, what failed and what was undone.
pub fn summary_markdown(record: &RunRecord) -> String {
    let mut md = String::new();
    let icon = match record.status.as_str() {
        "ok" => "✅",
        "dry_run" => "🔍",
        _ => "❌",
    };
    let took = record.duration_ms.map(|ms| format_duration(std::time::Duration::from_millis(ms))).unwrap_or_default();
    let exit = record.exit_code.map(|c| format!(", exit {c}")).unwrap_or_default();
    let status = record.status.replace('_', " ");
    let _ = writeln!(md, "### {icon} capstan `{}`: {status}{exit} in {took}\n", record.playbook);
    let _ = writeln!(md, "| phase | step | status | duration | attempts |");
    let _ = writeln!(md, "| --- | --- | --- | --- | --- |");
    for (phase, step) in record.steps() {
        let mark = match step.status.as_str() {
            "ok" => "✅ ok",
            "failed" if step.allow_failure => "⚠️ failed (allowed)",
            "failed" => "❌ failed",
            "skipped" => "⏭️ skipped",
            "dry_run" => "🔍 dry run",
            other => other,
        };
        let _ = writeln!(
            md,
            "| {} | {} | {mark} | {} | {} |",
            cell(&phase.name),
            cell(&step.step),
            if step.status == "skipped" {
                "–".to_string()
            } else {
                format_duration(std::time::Duration::from_millis(step.duration_ms))
            },
            step.attempts
        );
    }
    if let Some((phase, step)) = record.failed_step() {
        let _ =
            writeln!(md, "\n**Failed:** `{}/{}`: {}", phase.name, step.step, cell(step.error.as_deref().unwrap_or("")));
    }
    if !record.undo.is_empty() {
        let undone: Vec<String> =
            record.undo.iter().map(|u| format!("`{}` ({})", u.step.as_deref().unwrap_or(""), u.status)).collect();
        let _ = writeln!(md, "\n**Undone:** {}", undone.join(", "));
    }
    md.push('\n');
    md
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_split_from_the_right() {
        assert_eq!(split_location("deploy.rhai:12:5"), Some(("deploy.rhai".into(), 12, 5)));
        assert_eq!(split_location("c:/x.rhai:1:2"), Some(("c:/x.rhai".into(), 1, 2)));
        assert_eq!(split_location("nowhere"), None);
    }

    #[test]
    fn workflow_data_is_escaped() {
        assert_eq!(escape_data("50%\nnext"), "50%25%0Anext");
        assert_eq!(escape_property("a:b,c"), "a%3Ab%2Cc");
    }
}
