//! The REPL's terminal loop: line editing and history, Ctrl-C, each entry
//! evaluated in the session, the journal of what ran.

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rustyline::error::ReadlineError;
use rustyline::history::{FileHistory, History};
use rustyline::{CompletionType, Config, Editor};

use super::editor::{self, ReplHelper};
use super::session::{Reply, Session};
use super::view::{self, View};
use crate::cli::args::ReplArgs;
use crate::error::Error;
use crate::events::{EventKind, Status};
use crate::exit;
use crate::launch::playbook_root;
use crate::playbook::Inputs;
use crate::report::{self, Terminal, TerminalStyle};
use crate::services::Services;
use crate::session::{self as base, Signal};
use crate::state::Settings;

pub async fn repl(args: ReplArgs) -> Result<(), Error> {
    let root = args.playbook.as_deref().map_or_else(|| PathBuf::from("."), playbook_root);
    let store = crate::store::State::open(args.state.as_deref())?;
    let journal_root = store.journal_root(args.journal_dir.as_ref(), root.clone())?;
    let inputs = base::inputs(&args.inputs)?;
    let inventory = base::inventory(&args.inventory)?;
    let services = base::services(report::format::new_run_id().into(), args.dry_run);

    let busy = Arc::new(AtomicBool::new(false));
    let quit = Arc::new(AtomicBool::new(false));
    let blocking = services.clone();
    tokio::task::spawn_blocking(move || {
        session_loop(
            &args,
            (inputs, inventory),
            &root,
            journal_root,
            store.shared().cloned(),
            blocking,
            &Flags { busy, quit },
        )
    })
    .await
    .unwrap_or(Err(Error::Failed { code: exit::FAILED, diagnostic: None }))
}

/// Ctrl-C reaches capstan as SIGINT only while a command runs (the line
/// editor reads it as a key otherwise): cancel that command. SIGTERM cancels
/// too and ends the session; at the prompt it ends it at once.
///
/// Called after the line editor is made: the editor installs a SIGINT handler
/// of its own when it is created, and the handler installed last wins.
fn watch_signals(
    services: &Arc<Services>,
    flags: &Flags,
    record: &Arc<std::sync::Mutex<report::RunRecord>>,
) -> Option<tokio::task::JoinHandle<()>> {
    let saved_terminal = nix::sys::termios::tcgetattr(std::io::stdin()).ok();
    let (services, busy, quit) = (services.clone(), flags.busy.clone(), flags.quit.clone());
    let record = record.clone();
    let started = std::time::Instant::now();
    base::watch_signals(move |received| match received {
        Signal::Interrupt => {
            if busy.load(Ordering::SeqCst) {
                services.interrupt();
            }
        }
        Signal::Terminate => {
            quit.store(true, Ordering::SeqCst);
            if !busy.load(Ordering::SeqCst) {
                end_journal(&services, &record, started.elapsed());
                if let Some(t) = &saved_terminal {
                    let _ = nix::sys::termios::tcsetattr(std::io::stdin(), nix::sys::termios::SetArg::TCSANOW, t);
                }
                crate::errln!();
                std::process::exit(exit::INTERRUPTED);
            }
            services.interrupt();
        }
    })
}

/// SIGTERM at the prompt: close the session's run in the journal (if a
/// command opened it) as interrupted, as a run ends after a signal.
fn end_journal(services: &Services, record: &std::sync::Mutex<report::RunRecord>, took: std::time::Duration) {
    let (journaled, repl_running) = {
        let r = report::record::lock(record);
        (r.started.is_some(), r.phases.iter().any(|p| p.name == view::PHASE && p.status == "running"))
    };
    let duration_ms = took.as_millis() as u64;
    if repl_running {
        services.emit(EventKind::PhaseFinished {
            phase: view::PHASE.into(),
            status: Status::Interrupted,
            duration_ms,
            attempts: 1,
            error: None,
            error_at: None,
        });
    }
    if journaled {
        services.emit(EventKind::RunFinished {
            status: Status::Interrupted,
            exit_code: exit::INTERRUPTED,
            duration_ms,
            error: Some("the session was ended by SIGTERM".into()),
            error_at: None,
        });
        services.bus.finish();
    }
    services.bus.flush();
}

struct Flags {
    busy: Arc<AtomicBool>,
    quit: Arc<AtomicBool>,
}

fn session_loop(
    args: &ReplArgs,
    (inputs, inventory): (Inputs, Vec<crate::inventory::Host>),
    root: &Path,
    journal_root: PathBuf,
    store: Option<crate::store::Shared>,
    services: Arc<Services>,
    flags: &Flags,
) -> Result<(), Error> {
    let current = view::Current::default();
    let style = if std::io::stderr().is_terminal() { TerminalStyle::Human } else { TerminalStyle::Plain };
    let view = View::new(Box::new(Terminal::new(style, true, false)), current.clone());
    let mut settings = Settings::from_cli(args.guards.yes, &args.guards.approvals, &journal_root);
    settings.store = store;
    settings.lock_wait = args.guards.lock_wait;
    settings.lock_ttl = args.guards.lock_ttl;
    let base::Session { state, engine, record, .. } = base::Session::build(
        services.clone(),
        inputs,
        settings,
        root,
        |_| Box::new(view),
        |state| {
            state.set_inventory(inventory);
        },
    );
    let loaded = match &args.playbook {
        Some(path) => Some(base::load(&engine, &services, path)?),
        None => None,
    };
    let mut session = Session::new(state.clone(), engine, journal_root, record.clone(), current);

    let helper = ReplHelper::new(&session.engine);
    let variables = helper.variables.clone();
    let functions = helper.functions.clone();
    let config = Config::builder()
        .auto_add_history(false)
        .max_history_size(10_000)
        .and_then(|b| Ok(b.history_ignore_dups(true)?.completion_type(CompletionType::List).build()));
    let editor = config.map_err(|e| e.to_string()).and_then(|c| {
        let mut editor = Editor::<ReplHelper, FileHistory>::with_config(c).map_err(|e| e.to_string())?;
        editor.set_helper(Some(helper));
        Ok(editor)
    });
    let mut editor = match editor {
        Ok(e) => e,
        Err(m) => return Err(Error::usage(format!("cannot start the line editor: {m}"))),
    };
    let history = editor::history_path(root);
    if let Some(path) = &history {
        let _ = editor.load_history(path);
    }

    let watcher = watch_signals(&services, flags, &record);

    base::take_locks(&state, &args.guards.locks, "--lock")?;
    session.hold_session_locks();

    if let Some(loaded) = &loaded {
        let display = loaded.path.to_string_lossy().into_owned();
        let sha256 = base::sha256(&loaded.path);
        flags.busy.store(true, Ordering::SeqCst);
        let loaded_ok = session.load(&display, &loaded.ast, sha256);
        flags.busy.store(false, Ordering::SeqCst);
        if let Err(e) = loaded_ok {
            let diagnostic = services.render_error(&e, &display);
            return Err(if services.cancel.was_signalled() {
                Error::Failed { code: exit::INTERRUPTED, diagnostic: Some(diagnostic) }
            } else {
                Error::Script { diagnostic }
            });
        }
        // The playbook's imports complete too.
        *functions.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = editor::Catalog::of(&session.engine);
    } else {
        state.finish_declaring();
    }

    banner(&session);
    loop {
        *variables.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = session.variables();
        let prompt = if services.dry_run() { "capstan (dry-run)> " } else { "capstan> " };
        let line = match editor.readline(prompt) {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => {
                crate::errln!("error: cannot read the input: {e}");
                break;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        // History is an output too: secrets are masked in it.
        let _ = editor.add_history_entry(services.mask(&line).into_owned());
        if let Some(path) = &history {
            save_history(&mut editor, path);
        }
        flags.busy.store(true, Ordering::SeqCst);
        let reply = session.command(&line);
        flags.busy.store(false, Ordering::SeqCst);
        if line.contains("import") {
            // The module's functions complete from now on (`canary::` Tab).
            *functions.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = editor::Catalog::of(&session.engine);
        }
        match reply {
            Reply::Value(v) => {
                if let Some(text) = show(&v, &services) {
                    crate::launch::print_data(&text);
                }
            }
            Reply::Text(t) if t.is_empty() => {}
            Reply::Text(t) => crate::launch::print_data(&services.mask(&t)),
            Reply::Error(e) => crate::err!("{}", services.mask(&e.render(false))),
            Reply::Quit => break,
        }
        let _ = std::io::Write::flush(&mut *crate::launch::output());
        if flags.quit.load(Ordering::SeqCst) {
            break;
        }
    }
    if let Some(w) = watcher {
        w.abort();
    }
    if let Some(run) = session.finish() {
        crate::errln!("{}", console::style(format!("session journaled as run {run} (capstan runs show {run})")).dim());
    }
    if flags.quit.load(Ordering::SeqCst) {
        Err(Error::Interrupted)
    } else {
        Ok(())
    }
}

fn save_history(editor: &mut Editor<ReplHelper, FileHistory>, path: &Path) {
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if editor.history().is_empty() {
        return;
    }
    if editor.append_history(path).is_err() {
        let _ = editor.save_history(path);
    }
}

fn banner(session: &Session) {
    let dim = |s: String| console::style(s).dim().to_string();
    let mut text = format!("capstan {} repl", env!("CARGO_PKG_VERSION"));
    if let Some(p) = &session.playbook {
        let phases: Vec<String> = session.state.model().phases.iter().map(|p| p.name.clone()).collect();
        let _ = write!(text, " · {p} · phases: {}", phases.join(", "));
    }
    if session.state.services.dry_run() {
        text.push_str(" · dry-run on");
    }
    // Phase names are built by the playbook and may hold a secret.
    let text = session.state.services.mask(&text).into_owned();
    crate::errln!("{}", dim(text));
    crate::errln!("{}", dim(":help for commands, Tab completes, Ctrl-C cancels a command, Ctrl-D quits".into()));
}

/// A result as the user reads it: strings quoted, maps and arrays as
/// indented JSON, nothing for `()`. Secrets are masked.
fn show(value: &rhai::Dynamic, services: &Services) -> Option<String> {
    if value.is_unit() {
        return None;
    }
    let text = if value.is_map() || value.is_array() {
        serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
    } else if value.is_string() {
        format!("{:?}", value.to_string())
    } else {
        value.to_string()
    };
    Some(services.mask(&text).into_owned())
}
