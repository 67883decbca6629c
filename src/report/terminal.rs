//! `human` and `plain`: one line per finished step with a status mark and
//! duration; in `human`, a spinner per running step with its elapsed time
//! and last output line. A failed step shows its last 50 output lines.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::time::Duration;

use console::{style, StyledObject};
use std::io::IsTerminal as _;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::event_line;

use super::format::format_duration;
use crate::events::{Event, EventKind, Level, Location, Sink, Status};

const TAIL_LINES: usize = 50;
const MAX_LINE_CHARS: usize = 400;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TerminalStyle {
    Human,
    Plain,
}

#[allow(clippy::struct_excessive_bools)] // display switches
pub struct Terminal {
    style: TerminalStyle,
    verbose: bool,
    quiet: bool,
    multi: Option<MultiProgress>,
    bars: HashMap<u32, ProgressBar>,
    tails: HashMap<u32, VecDeque<String>>,
    /// Output lines of phase-level code, for a phase that fails outside a step.
    phase_tail: VecDeque<String>,
    /// A step of the current phase failed: the phase's failure is already told.
    step_failed: bool,
    /// Write to stdout (GitHub Actions reads workflow commands there).
    to_stdout: bool,
}

impl Terminal {
    pub fn new(style: TerminalStyle, verbose: bool, quiet: bool) -> Self {
        // Human output sent to a file or a pipe keeps its lines and marks
        // but draws no spinners (indicatif hides them off a terminal, and
        // every line printed through it with them) and no colours.
        let on_terminal = std::io::stderr().is_terminal();
        let colours = style == TerminalStyle::Human && on_terminal && std::env::var_os("NO_COLOR").is_none();
        console::set_colors_enabled_stderr(colours);
        let multi = (style == TerminalStyle::Human && on_terminal)
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Self {
            style,
            verbose,
            quiet,
            multi,
            bars: HashMap::new(),
            tails: HashMap::new(),
            phase_tail: VecDeque::new(),
            step_failed: false,
            to_stdout: false,
        }
    }

    /// Plain lines on stdout, for CI systems that read commands there.
    pub fn plain_stdout(verbose: bool) -> Self {
        Self { to_stdout: true, ..Self::new(TerminalStyle::Plain, verbose, false) }
    }

    pub(crate) fn line(&self, text: &str) {
        match &self.multi {
            Some(m) => {
                let _ = m.println(text);
            }
            None if self.to_stdout => {
                use std::io::Write as _;
                let _ = writeln!(std::io::stdout().lock(), "{text}");
            }
            None => crate::errln!("{text}"),
        }
    }

    fn indent(at: &Location) -> String {
        "  ".repeat(at.depth().max(1))
    }

    fn name(at: &Location) -> &str {
        at.step.as_deref().and_then(|s| s.rsplit('/').next()).unwrap_or("")
    }

    fn remember(&mut self, at: &Location, line: &str) {
        let line: String = line.chars().take(MAX_LINE_CHARS).collect();
        let tail = match at.seq.filter(|_| at.step.is_some()) {
            Some(seq) => self.tails.entry(seq).or_default(),
            None => &mut self.phase_tail,
        };
        if tail.len() == TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(line);
    }

    fn print_tail(&mut self, seq: Option<u32>, indent: &str) {
        let tail = seq.and_then(|s| self.tails.remove(&s)).unwrap_or_default();
        for l in &tail {
            self.line(&format!("{indent}  {} {l}", style("│").dim()));
        }
    }

    fn start_spinner(&mut self, at: &Location) {
        let (Some(multi), Some(seq)) = (&self.multi, at.seq) else { return };
        let bar = multi.add(ProgressBar::new_spinner());
        let template = format!("{}{{spinner:.cyan}} {{prefix}} {{elapsed:.dim}} {{wide_msg:.dim}}", Self::indent(at));
        if let Ok(s) = ProgressStyle::with_template(&template) {
            bar.set_style(s);
        }
        bar.set_prefix(Self::name(at).to_string());
        bar.enable_steady_tick(Duration::from_millis(100));
        self.bars.insert(seq, bar);
    }

    /// A running step's spinner becomes a bar once it reports progress.
    fn progress(&mut self, at: &Location, label: &str, done: u64, total: u64) {
        let Some(bar) = at.seq.and_then(|s| self.bars.get(&s)) else { return };
        if bar.length() != Some(total) {
            let template = format!(
                "{}{{spinner:.cyan}} {{prefix}} {{bar:24.cyan/dim}} {{percent:>3}}% {{elapsed:.dim}} {{wide_msg:.dim}}",
                Self::indent(at)
            );
            if let Ok(s) = ProgressStyle::with_template(&template) {
                bar.set_style(s.progress_chars("━╸─"));
            }
            bar.set_length(total.max(1));
        }
        bar.set_position(done);
        bar.set_message(label.chars().take(MAX_LINE_CHARS).collect::<String>());
    }

    fn stop_spinner(&mut self, at: &Location) {
        if let Some(bar) = at.seq.and_then(|s| self.bars.remove(&s)) {
            bar.finish_and_clear();
            if let Some(m) = &self.multi {
                m.remove(&bar);
            }
        }
    }
}

fn mark(status: Status, allowed: bool) -> StyledObject<&'static str> {
    match status {
        Status::Ok => style("✓").green(),
        Status::Failed if allowed => style("✗").yellow(),
        Status::Failed | Status::Interrupted => style("✗").red().bold(),
        Status::Skipped => style("↷").dim(),
        Status::DryRun => style("○").cyan(),
    }
}

impl Sink for Terminal {
    fn emit(&mut self, event: &Event) {
        match &event.kind {
            EventKind::RunStarted { playbook, dry_run, .. } => {
                if !self.quiet {
                    let dry = if *dry_run { " (dry run: nothing will change)" } else { "" };
                    self.line(&format!(
                        "{} {playbook} {}{dry}",
                        style("capstan").bold(),
                        style(format!("run {}", event.run_id)).dim()
                    ));
                }
            }
            EventKind::PhaseStarted { phase } => {
                self.phase_tail.clear();
                self.step_failed = false;
                if !self.quiet {
                    self.line(&format!("{} {}", style("▸").cyan(), style(phase).bold()));
                }
            }
            EventKind::StepStarted { at, .. } => {
                self.start_spinner(at);
                if self.verbose && self.style == TerminalStyle::Plain {
                    self.line(&format!("{}{} {}", Self::indent(at), style("→").dim(), Self::name(at)));
                }
            }
            EventKind::Output { at, line, quiet, .. } => {
                self.remember(at, line);
                if let Some(bar) = at.seq.and_then(|s| self.bars.get(&s)) {
                    if !quiet {
                        bar.set_message(line.chars().take(MAX_LINE_CHARS).collect::<String>());
                    }
                }
                if self.verbose && !quiet {
                    self.line(&format!("{}  {} {line}", Self::indent(at), style("│").dim()));
                }
            }
            EventKind::Log { at, level, message } => {
                let (sigil, show) = match level {
                    Level::Debug => (style("·").dim(), self.verbose),
                    Level::Info => (style("ℹ").blue(), !self.quiet),
                    Level::Warn => (style("⚠").yellow(), !self.quiet),
                    Level::Error => (style("✗").red(), true),
                };
                if show {
                    let indent = if at.phase.is_some() { Self::indent(at) } else { String::new() };
                    self.line(&format!("{indent}{sigil} {message}"));
                }
            }
            EventKind::Gate { at, name, passed, hint, .. } => {
                if !self.quiet || !passed {
                    let m = if *passed { style("✓").green() } else { style("✗").red().bold() };
                    let hint = hint.as_ref().filter(|_| !passed).map(|h| format!(" ({h})")).unwrap_or_default();
                    self.line(&format!("{}{m} gate: {name}{hint}", Self::indent(at)));
                }
            }
            EventKind::StepFinished { at, status, duration_ms, attempts, allow_failure, error, .. } => {
                self.stop_spinner(at);
                let failed = *status == Status::Failed;
                self.step_failed |= failed && !allow_failure;
                if self.quiet && !failed {
                    self.tails.remove(&at.seq.unwrap_or_default());
                    return;
                }
                let indent = Self::indent(at);
                let mut text = format!("{indent}{} {}", mark(*status, *allow_failure), Self::name(at));
                match status {
                    Status::Skipped => {
                        let _ = write!(text, " {}", style("skipped").dim());
                    }
                    Status::DryRun => {
                        let _ = write!(text, " {}", style("(dry run)").dim());
                    }
                    _ => {}
                }
                if *status != Status::Skipped {
                    let _ = write!(text, " {}", style(format_duration(Duration::from_millis(*duration_ms))).dim());
                }
                if *attempts > 1 {
                    let _ = write!(text, " {}", style(format!("({attempts} attempts)")).dim());
                }
                if let Some(e) = error {
                    let e = if *allow_failure { format!("{e} (allowed to fail)") } else { e.clone() };
                    let _ = write!(text, "  {}", if *allow_failure { style(e).yellow() } else { style(e).red() });
                }
                self.line(&text);
                if failed && !self.verbose {
                    self.print_tail(at.seq, &indent);
                } else {
                    self.tails.remove(&at.seq.unwrap_or_default());
                }
            }
            EventKind::PhaseFinished { phase, status: Status::Failed, .. } if self.step_failed => {
                self.line(&format!("{} phase {phase} failed", style("✗").red().bold()));
            }
            EventKind::PhaseFinished { phase, status: Status::Failed, error, .. } => {
                let tail: Vec<String> = self.phase_tail.drain(..).collect();
                if !self.verbose {
                    for l in &tail {
                        self.line(&format!("  {} {l}", style("│").dim()));
                    }
                }
                let e = error.clone().unwrap_or_default();
                self.line(&format!("{} phase {phase} failed: {}", style("✗").red().bold(), style(e).red()));
            }
            EventKind::PhaseFinished { .. } => {}
            EventKind::UndoStarted { at } => {
                self.start_spinner(at);
            }
            EventKind::UndoFinished { at, status, duration_ms, error, .. } => {
                self.stop_spinner(at);
                let m = if *status == Status::Ok { style("↶").yellow() } else { style("✗").red().bold() };
                let mut text = format!(
                    "{}{m} undo {} {}",
                    Self::indent(at),
                    at.step.as_deref().unwrap_or(""),
                    style(format_duration(Duration::from_millis(*duration_ms))).dim()
                );
                if let Some(e) = error {
                    let _ = write!(text, "  {}", style(e).red());
                }
                self.line(&text);
                if *status == Status::Failed && !self.verbose {
                    self.print_tail(at.seq, &Self::indent(at));
                } else {
                    self.tails.remove(&at.seq.unwrap_or_default());
                }
            }
            EventKind::User { at, kind, data, .. } if kind == "fleet_recap" => {
                // Shown even with `-q` when a host failed: it says which.
                if self.quiet && !super::recap::has_failures(data) {
                    return;
                }
                let indent = if at.phase.is_some() { Self::indent(at) } else { String::new() };
                for l in super::recap::lines(data, &indent) {
                    self.line(&l);
                }
            }
            EventKind::User { at, kind, data, quiet } => {
                // A decision record has its own log line; `-v` shows the record.
                if self.quiet || (*quiet && !self.verbose) {
                    return;
                }
                let indent = if at.phase.is_some() { Self::indent(at) } else { String::new() };
                let budget = event_line::MAX_LINE_CHARS.saturating_sub(indent.chars().count() + 2);
                self.line(&format!("{indent}{} {}", style("•").magenta(), event_line::short(kind, data, budget)));
                if self.verbose {
                    for l in event_line::full(data).lines() {
                        self.line(&format!("{indent}    {}", style(l).dim()));
                    }
                }
            }
            EventKind::Progress { at, label, done, total } => self.progress(at, label, *done, *total),
            EventKind::RunFinished { status, exit_code, duration_ms, .. } => {
                let took = format_duration(Duration::from_millis(*duration_ms));
                let text = match status {
                    Status::Ok => format!("{} run succeeded in {took}", style("✓").green().bold()),
                    Status::DryRun => format!("{} dry run finished in {took}; nothing was changed", style("○").cyan().bold()),
                    Status::Interrupted => format!("{} run interrupted after {took} (exit {exit_code})", style("✗").red().bold()),
                    _ if *exit_code == crate::exit::UNDO_FAILED => format!(
                        "{} run failed after {took} and an undo failed too (exit {exit_code}): a person must check the system",
                        style("✗").red().bold()
                    ),
                    _ => format!("{} run failed after {took} (exit {exit_code})", style("✗").red().bold()),
                };
                self.line(&text);
            }
        }
    }

    fn draws(&self) -> bool {
        self.multi.is_some()
    }

    fn suspend(&mut self, f: &mut dyn FnMut()) {
        match &self.multi {
            Some(m) => m.suspend(f),
            None => f(),
        }
    }

    fn finish(&mut self) {
        for (_, bar) in self.bars.drain() {
            bar.finish_and_clear();
        }
    }
}
