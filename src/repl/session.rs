//! One REPL session: the engine, the variables and imports that survive
//! from one command to the next, the loaded playbook, and the journal.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, PoisonError};
use std::time::Instant;

use rhai::{Caches, GlobalRuntimeState};
use rhai::{Dynamic, Engine, EvalAltResult, Scope, AST};

use super::view::{self, Current};
use crate::error::Error;
use crate::events::{EventKind, Location, Status};
use crate::executor;
use crate::exit;
use crate::report::{Journal, RunRecord};
use crate::services::frame::{self, Frame};
use crate::state::RunState;

/// The name REPL input goes by in diagnostics.
pub const SOURCE: &str = "<repl>";

/// What became of one command.
pub enum Reply {
    /// A value to print (`()` prints nothing).
    Value(Dynamic),
    /// Text for the user (meta-commands).
    Text(String),
    /// An error; the console prints it as every command's errors are
    /// printed ([`Error::render`]).
    Error(Error),
    Quit,
}

pub struct Session {
    pub state: Arc<RunState>,
    pub engine: Engine,
    global: GlobalRuntimeState,
    caches: Caches,
    scope: Scope<'static>,
    /// The playbook as given on the command line, for diagnostics and the journal.
    pub playbook: Option<String>,
    playbook_sha256: String,
    journal_root: PathBuf,
    record: Arc<std::sync::Mutex<RunRecord>>,
    journal: JournalState,
    repl_phase_open: bool,
    current: Current,
    commands: u32,
    failures: u32,
    /// Locks held for the whole session (`--lock`); later ones are a command's.
    kept_locks: usize,
    started: Instant,
}

enum JournalState {
    NotYet,
    Open,
    Unavailable,
}

impl Session {
    pub fn new(
        state: Arc<RunState>,
        engine: Engine,
        journal_root: PathBuf,
        record: Arc<std::sync::Mutex<RunRecord>>,
        current: Current,
    ) -> Self {
        let global = engine.new_global_runtime_state();
        Self {
            state,
            engine,
            global,
            caches: Caches::new(),
            scope: Scope::new(),
            playbook: None,
            playbook_sha256: String::new(),
            journal_root,
            record,
            journal: JournalState::NotYet,
            repl_phase_open: false,
            current,
            commands: 0,
            failures: 0,
            kept_locks: 0,
            started: Instant::now(),
        }
    }

    pub fn hold_session_locks(&mut self) {
        self.kept_locks = self.locks_held();
    }

    fn locks_held(&self) -> usize {
        self.state.locks.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// Evaluate a playbook's top level in the session: its variables,
    /// imports and functions stay; its phases are declared.
    pub fn load(&mut self, display: &str, ast: &AST, sha256: String) -> Result<(), Box<EvalAltResult>> {
        self.playbook = Some(display.to_string());
        self.playbook_sha256 = sha256;
        let result = self.eval_ast(ast);
        self.state.finish_declaring();
        result.map(|_| ())
    }

    fn eval_ast(&mut self, ast: &AST) -> Result<Dynamic, Box<EvalAltResult>> {
        if ast.has_functions() {
            self.global.lib.push(ast.shared_lib().clone());
        }
        self.global.source = ast.source().map(Into::into);
        self.global.num_operations = 0;
        let result =
            self.engine.eval_statements_raw(&mut self.global, &mut self.caches, &mut self.scope, ast.statements());
        // Modules imported at the prompt (or by the playbook) stay for the
        // next commands, whose compilation must know them.
        let imports: Vec<(String, Arc<rhai::Module>)> =
            self.global.iter_imports_raw().map(|(name, m)| (name.to_string(), m.clone())).collect();
        for (name, module) in imports.into_iter().rev() {
            self.engine.register_static_module(name, module);
        }
        result
    }

    /// The session's variable names, for completion and `:vars`.
    pub fn variables(&self) -> Vec<String> {
        self.scope.iter_raw().map(|(name, _, _)| name.to_string()).collect()
    }

    /// Run one line (or block) typed at the prompt.
    pub fn command(&mut self, input: &str) -> Reply {
        let trimmed = input.trim();
        if let Some(meta) = trimmed.strip_prefix(':') {
            return self.meta(meta);
        }
        self.services().cancel.reset();
        crate::diagnostics::set_virtual_source(SOURCE, input);
        let ast = match self.engine.compile_with_scope(&self.scope, input) {
            Ok(mut ast) => {
                ast.set_source(SOURCE);
                ast
            }
            Err(e) => {
                return Reply::Error(Error::Script { diagnostic: self.services().render_parse_error(&e, SOURCE) })
            }
        };
        self.open_journal();
        if !self.repl_phase_open {
            self.services().emit(EventKind::PhaseStarted { phase: view::PHASE.into() });
            self.repl_phase_open = true;
        }
        self.commands += 1;
        let first_line = trimmed.lines().next().unwrap_or_default();
        let mut name: String = format!("#{} {}", self.commands, first_line).chars().take(72).collect();
        if first_line.len() < trimmed.len() || name.chars().count() == 72 {
            name.push('…');
        }
        // The bus masks secrets in step names; the view compares masked names.
        let name: Arc<str> = self.services().mask(&name).into();
        let at = Location {
            phase: Some(view::PHASE.into()),
            step: Some(name.clone()),
            seq: Some(self.services().next_step_seq()),
        };
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = Some(name);
        self.services().emit(EventKind::StepStarted { at: at.clone(), occurrence: 1, step_key: None });
        let start = Instant::now();
        let step_frame = Frame::new(at.clone());
        let result = {
            let _guard = frame::push(step_frame.clone());
            self.eval_ast(&ast)
        };
        if result.is_err() {
            step_frame.kill_groups();
            self.failures += 1;
        }
        let status = match &result {
            Ok(_) if self.services().dry_run() => Status::DryRun,
            Ok(_) => Status::Ok,
            Err(e) if executor::classify::is_interrupt(e) => Status::Interrupted,
            Err(_) => Status::Failed,
        };
        self.services().emit(EventKind::StepFinished {
            at,
            occurrence: 1,
            status,
            duration_ms: start.elapsed().as_millis() as u64,
            attempts: 1,
            allow_failure: false,
            resumed: false,
            every_job: false,
            error: result.as_ref().err().map(|e| executor::classify::describe(e)),
            error_at: result.as_ref().err().and_then(|e| crate::diagnostics::error_location(e)),
            step_key: None,
            recorded: crate::events::RecordedValue::default(),
        });
        self.services().bus.flush();
        self.end_command();
        match result {
            Ok(v) => Reply::Value(v),
            Err(e) if status == Status::Interrupted => {
                let diagnostic = format!("interrupted: {}\n", executor::classify::describe(&e));
                Reply::Error(Error::Failed { code: exit::INTERRUPTED, diagnostic: Some(diagnostic) })
            }
            Err(e) => Reply::Error(Error::Script { diagnostic: self.services().render_error(&e, SOURCE) }),
        }
    }

    /// After each command: forget a Ctrl-C, release the locks it took, and
    /// drop its undo handlers (a later command's failure must not undo it).
    fn end_command(&mut self) {
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = None;
        self.services().cancel.reset();
        let keep = self.kept_locks;
        self.state.locks.lock().unwrap_or_else(PoisonError::into_inner).truncate(keep);
        while self.state.pop_undo().is_some() {}
    }

    fn services(&self) -> &crate::services::Services {
        &self.state.services
    }

    fn meta(&mut self, meta: &str) -> Reply {
        let mut words = meta.split_whitespace();
        let command = words.next().unwrap_or_default();
        let rest: Vec<&str> = words.collect();
        match command {
            "q" | "quit" | "exit" => Reply::Quit,
            "h" | "help" => {
                let mut text = String::from("Type Rhai statements; every primitive is loaded. Commands:\n");
                for (c, what) in super::editor::COMMANDS {
                    let _ = writeln!(text, "  {c:<18} {what}");
                }
                text.push_str("Tab completes names; an open block continues on the next line; Ctrl-C cancels the running command.");
                Reply::Text(text)
            }
            "phases" => {
                let model = self.state.model();
                if model.phases.is_empty() {
                    return Reply::Text("no phases: start with `capstan repl PLAYBOOK`".into());
                }
                Reply::Text(model.phases.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join("\n"))
            }
            "vars" => {
                let mut vars: Vec<String> = self
                    .scope
                    .iter_raw()
                    .map(|(name, constant, value)| {
                        let shown = self.services().mask(&format!("{value:?}")).into_owned();
                        let kind = if constant { "const" } else { "let" };
                        format!("{kind} {name} = {shown}")
                    })
                    .collect();
                vars.sort();
                vars.dedup();
                Reply::Text(if vars.is_empty() { "no variables yet".into() } else { vars.join("\n") })
            }
            "dry-run" | "dry_run" | "dryrun" => match rest.first().copied() {
                Some("on") => {
                    self.services().set_dry_run(true);
                    Reply::Text("dry-run on: changes are shown, not made".into())
                }
                Some("off") => {
                    self.services().set_dry_run(false);
                    Reply::Text("dry-run off: commands change the world".into())
                }
                None => Reply::Text(format!("dry-run is {}", if self.services().dry_run() { "on" } else { "off" })),
                Some(other) => Reply::Error(Error::usage(format!("`:dry-run {other}`: say `on` or `off`"))),
            },
            "doc" => match rest.first() {
                Some(name) => match crate::cli::doc::function_doc(name) {
                    Some(text) => Reply::Text(text),
                    None => Reply::Error(Error::usage_with_hint(
                        format!("no function named `{name}`"),
                        "Tab after a prefix lists the names (`health::` Tab)",
                    )),
                },
                None => Reply::Error(Error::usage("`:doc NAME`, e.g. `:doc step`")),
            },
            "run" => self.run_phases(&rest),
            "" => Reply::Text(String::new()),
            other => Reply::Error(Error::usage_with_hint(
                format!("unknown command `:{other}`"),
                "`:help` lists the commands",
            )),
        }
    }

    /// `:run PHASE...`: the playbook's phases, as `capstan run --phase` runs them.
    fn run_phases(&mut self, names: &[&str]) -> Reply {
        if names.is_empty() {
            return Reply::Error(Error::usage_with_hint("`:run PHASE...`, e.g. `:run plan`", "`:phases` lists them"));
        }
        let declared = self.state.model().phases.clone();
        let selection =
            executor::Selection { only: names.iter().map(|n| (*n).to_string()).collect(), ..Default::default() };
        let phases = match executor::select(&declared, &selection) {
            Ok(p) if !declared.is_empty() => p,
            Ok(_) => {
                return Reply::Error(Error::usage_with_hint(
                    "no playbook is loaded",
                    "start with `capstan repl PLAYBOOK`",
                ))
            }
            Err(e) => return Reply::Error(Error::usage(e.to_string().replace("--phase ", ""))),
        };
        self.services().cancel.reset();
        self.open_journal();
        let outcome = executor::run_phases(&self.state, &self.engine, &phases);
        self.end_command();
        let names = names.join(", ");
        match outcome.exit_code {
            exit::OK => {
                Reply::Text(format!("{names}: {}", if self.services().dry_run() { "dry run done" } else { "done" }))
            }
            code => {
                self.failures += 1;
                let display = self.playbook.clone().unwrap_or_default();
                let detail =
                    outcome.error.as_deref().map(|e| self.services().render_error(e, &display)).unwrap_or_default();
                let what = match code {
                    exit::INTERRUPTED => "interrupted; undo done",
                    exit::UNDO_FAILED => "failed, and an undo failed too: a person must act",
                    exit::BLOCKED => "blocked",
                    _ => "failed; undo done",
                };
                Reply::Error(Error::Failed { code, diagnostic: Some(format!("{detail}{names}: {what}\n")) })
            }
        }
    }

    /// The session is journaled like a run from its first command on (a
    /// session that only looked at things leaves no run behind).
    fn open_journal(&mut self) {
        if !matches!(self.journal, JournalState::NotYet) {
            return;
        }
        let services = self.state.services.clone();
        if let Some(shared) = &self.state.settings.store {
            let health = services.journal_health.clone();
            let sink = crate::store::journal::StoreJournal::new(
                shared.backend.clone(),
                shared.shown.clone(),
                services.run_id(),
                &self.journal_root,
                health,
            );
            services.bus.add_sink(Box::new(sink));
        }
        match Journal::create(
            &self.journal_root,
            services.run_id(),
            self.record.clone(),
            services.journal_health.clone(),
        ) {
            Ok(journal) => {
                services.bus.add_sink(Box::new(journal));
                self.journal = JournalState::Open;
            }
            Err(e) => {
                services.log(
                    crate::events::Level::Warn,
                    format!("no journal for this session: cannot write it under {}: {e}", self.journal_root.display()),
                );
                self.journal = JournalState::Unavailable;
            }
        }
        services.emit(EventKind::RunStarted {
            playbook: self.playbook.clone().unwrap_or_else(|| "(repl)".into()),
            dry_run: services.dry_run(),
            version: env!("CARGO_PKG_VERSION"),
            phases: self.state.model().phases.iter().map(|p| p.name.clone()).collect(),
            playbook_sha256: self.playbook_sha256.clone(),
            params: self.state.inputs.to_json(),
            resumed: false,
            step_key_salt: self.state.step_key_salt.clone(),
            trace_id: None,
        });
        services.release_held();
    }

    /// The session ends: close the journal's run. Returns the run id if one was journaled.
    pub fn finish(&mut self) -> Option<String> {
        let services = self.state.services.clone();
        executor::stop_leftovers(&services);
        if matches!(self.journal, JournalState::NotYet) {
            return None;
        }
        if self.repl_phase_open {
            services.emit(EventKind::PhaseFinished {
                phase: view::PHASE.into(),
                status: Status::Ok,
                duration_ms: self.started.elapsed().as_millis() as u64,
                attempts: 1,
                error: None,
                error_at: None,
            });
        }
        let failed = self.failures > 0;
        services.emit(EventKind::RunFinished {
            status: if failed { Status::Failed } else { Status::Ok },
            exit_code: if failed { exit::FAILED } else { exit::OK },
            duration_ms: self.started.elapsed().as_millis() as u64,
            error: failed.then(|| format!("{} of the session's commands failed", self.failures)),
            error_at: None,
        });
        services.bus.finish();
        matches!(self.journal, JournalState::Open).then(|| services.run_id().to_string())
    }
}
