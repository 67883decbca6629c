//! `check`, `list` and `run --dry-run` on a playbook's text and a params
//! file's text, in this process, printing nothing: each returns the exit
//! code and what the command would have printed. The fuzz suite drives
//! these thousands of times; the binary's commands share their code.
//!
//! They evaluate script code on the calling thread, which needs the script
//! stack ([`crate::engine::limits::SCRIPT_STACK`]) as the binary's threads
//! have it.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::events::EventKind;
use crate::executor::{self, Selection};
use crate::exit;
use crate::launch::{compile_text, playbook_root};
use crate::playbook::{Inputs, ParamsError};
use crate::report::{self, Journal, JsonLines, Recorder};
use crate::secrets::Redactor;
use crate::services::Services;
use crate::state::{Mode, RunState, Settings, TopLevelBudget};
use crate::{diagnostics, engine};

/// Bounds for one evaluation. [`Limits::default`] is what the binary uses
/// for `list`; a harness may lower them.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Operations and time the top level may spend (a script error beyond).
    pub top_level: TopLevelBudget,
    /// The whole evaluation's deadline, as `--timeout` gives a run: the top
    /// level, steps, undo and `on_failure` handlers.
    pub run_time: Duration,
    /// How long undo and `on_failure` handlers may take once the run failed
    /// or `run_time` passed, as `--undo-timeout` gives it (`None`: its default).
    pub undo_time: Option<Duration>,
}

impl Default for Limits {
    fn default() -> Self {
        Self { top_level: TopLevelBudget::default(), run_time: Duration::from_secs(10), undo_time: None }
    }
}

/// How a command ended: its exit code and what it would have printed
/// (data and diagnostics, in that order).
#[derive(Debug, Clone)]
pub struct Finished {
    pub code: i32,
    pub output: String,
}

impl Finished {
    /// What the binary prints for `result` after `output`, and its code.
    fn after(mut output: String, result: Result<(), Error>) -> Self {
        match result {
            Ok(()) => Self { code: exit::OK, output },
            Err(e) => {
                output.push_str(&e.render(false));
                Self { code: e.code(), output }
            }
        }
    }
}

/// The playbook's text, as `read_to_string` would give it; the source is
/// also registered so diagnostics show its lines as they do for a file.
fn playbook_text(path: &Path, source: &[u8]) -> Result<String, Finished> {
    match std::str::from_utf8(source) {
        Ok(text) => {
            diagnostics::set_virtual_source(&path.to_string_lossy(), text);
            Ok(text.to_string())
        }
        Err(e) => Err(Finished::after(
            String::new(),
            Err(Error::io(
                "cannot read playbook",
                path.to_path_buf(),
                std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            )),
        )),
    }
}

/// `capstan check PATH` on `source`.
pub fn check(path: &Path, source: &[u8], limits: &Limits) -> Finished {
    let text = match playbook_text(path, source) {
        Ok(t) => t,
        Err(f) => return f,
    };
    let checked = super::check::check_text(path, &text, limits.top_level);
    let mut output = super::check::findings_json(&checked.findings);
    output.push('\n');
    output.push_str(&super::check::render_findings(&checked.findings));
    if let Some(e) = &checked.error {
        output.push_str(&e.render(false));
    }
    Finished { code: checked.code, output }
}

/// `capstan list [--json] PATH` on `source`.
pub fn list(path: &Path, source: &[u8], json: bool, limits: &Limits) -> Finished {
    let text = match playbook_text(path, source) {
        Ok(t) => t,
        Err(f) => return f,
    };
    let shown = super::list::Shown { as_json: json, inventory: None };
    match super::list::listing(path, &text, &shown, limits.top_level, limits.run_time) {
        Ok(lines) => Finished { code: exit::OK, output: lines.join("\n") },
        Err(e) => Finished::after(String::new(), Err(e)),
    }
}

/// A params file: its name (`.json` is JSON, anything else YAML) and bytes.
#[derive(Debug, Clone, Copy)]
pub struct ParamsFile<'a> {
    pub path: &'a Path,
    pub text: &'a [u8],
}

/// `capstan run --dry-run PATH [--params-file FILE] --journal-dir
/// JOURNAL_ROOT --log-format json --timeout RUN_TIME` on `source`: the
/// output is the JSON lines and the final diagnostic.
pub fn dry_run(
    path: &Path,
    source: &[u8],
    params: Option<ParamsFile<'_>>,
    journal_root: &Path,
    limits: &Limits,
) -> Finished {
    let inputs = match params {
        None => Inputs::default(),
        Some(file) => {
            let parsed = std::str::from_utf8(file.text)
                .map_err(|e| ParamsError::Read { file: file.path.to_path_buf(), source: Box::new(e) })
                .and_then(|text| Inputs::parse_params_file(file.path, text));
            match parsed {
                Ok(i) => i,
                Err(e) => return Finished::after(String::new(), Err(Error::invalid(e))),
            }
        }
    };
    let text = match playbook_text(path, source) {
        Ok(t) => t,
        Err(f) => return f,
    };
    let run_id: Arc<str> = report::format::new_run_id().into();
    let services = Arc::new(Services::new(run_id.clone(), Arc::new(Redactor::new()), true));
    let lines = Buffer::default();
    let (recorder, record) = Recorder::new();
    services.bus.add_sink(Box::new(recorder));
    services.bus.add_sink(Box::new(JsonLines::to(Box::new(lines.clone()))));
    let finish = |result: Result<(), Error>| {
        services.bus.finish();
        Finished::after(lines.text(), result)
    };

    let mut state = RunState::new(services.clone(), inputs, Mode::Run);
    state.settings = Settings {
        lock_dir: journal_root.join(".capstan").join("locks"),
        undo_timeout: limits.undo_time,
        ..Settings::default()
    };
    state.record = record.clone();
    state.top_level = limits.top_level;
    state.step_key_salt = crate::replay::record::new_salt();
    let state = Arc::new(state);
    let engine = engine::build(&state, &playbook_root(path));
    let display = path.to_string_lossy().into_owned();
    let loaded = match compile_text(&engine, path, &text, &services) {
        Ok(l) => l,
        Err(e) => return finish(Err(e)),
    };
    crate::playbook::scan::mask_secrets_early(&loaded.ast, &services.redactor);
    if let Some(refusal) = super::check::refusal(&engine, &loaded.ast, path) {
        return finish(Err(Error::Script { diagnostic: services.mask(&refusal).into_owned() }));
    }
    let selection = Selection::default();
    if let Some(names) = crate::playbook::scan::phase_names(&loaded.ast) {
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        if let Err(m) = executor::select_names(&names, &selection) {
            return finish(Err(Error::invalid(m)));
        }
    }

    services.cancel.set_run_deadline(Instant::now().checked_add(limits.run_time));
    if let Err(e) = executor::declare(&state, &engine, &loaded.ast) {
        let diagnostic = services.render_error(&e, &display);
        return finish(Err(if executor::classify::is_interrupt(&e) {
            Error::Failed { code: exit::FAILED, diagnostic: Some(diagnostic) }
        } else {
            Error::Script { diagnostic }
        }));
    }
    let model = state.model().clone();
    let phases = match executor::select(&model.phases, &selection) {
        Ok(p) => p,
        Err(m) => return finish(Err(Error::invalid(m))),
    };
    if let Ok(journal) = Journal::create(journal_root, &run_id, record.clone(), services.journal_health.clone()) {
        services.bus.add_sink(Box::new(journal));
    }
    services.emit(EventKind::RunStarted {
        playbook: display.clone(),
        dry_run: true,
        version: env!("CARGO_PKG_VERSION"),
        phases: phases.iter().map(|p| p.name.clone()).collect(),
        playbook_sha256: format!("{:x}", Sha256::digest(text.as_bytes())),
        params: state.inputs.to_json(),
        resumed: false,
        step_key_salt: state.step_key_salt.clone(),
        trace_id: None,
    });
    services.release_held();
    let outcome = executor::run(&state, &engine, &phases, None);
    state.locks.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
    let diagnostic = match &outcome.error {
        Some(error) if outcome.status != crate::events::Status::Interrupted => {
            Some(services.render_error(error, &display))
        }
        _ => None,
    };
    if outcome.exit_code == exit::OK && diagnostic.is_none() {
        finish(Ok(()))
    } else {
        finish(Err(Error::Failed { code: outcome.exit_code, diagnostic }))
    }
}

/// Where the JSON lines go: memory.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Buffer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)).into_owned()
    }
}

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
