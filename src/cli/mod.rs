//! The command line: one file per subcommand. Each returns its exit code;
//! errors are rendered here, at the edge.

/// `println!` to the command's output (stdout, or `-o FILE`), which does not
/// panic when stdout is closed (`capstan doc | head`).
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(crate::cli::output(), $($arg)*);
    }};
}

use std::io::Write;
use std::sync::{Mutex, MutexGuard, OnceLock};

static OUTPUT: OnceLock<Mutex<Box<dyn Write + Send>>> = OnceLock::new();

/// Where data goes: stdout unless `-o/--output FILE` was given.
pub(crate) fn output() -> MutexGuard<'static, Box<dyn Write + Send>> {
    OUTPUT
        .get_or_init(|| Mutex::new(Box::new(std::io::stdout())))
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The `-o` file for sinks that write on their own (JSON lines).
pub(crate) fn output_file() -> Option<std::fs::File> {
    OUTPUT_FILE.get().and_then(|f| f.try_clone().ok())
}

static OUTPUT_FILE: OnceLock<std::fs::File> = OnceLock::new();

mod args;
mod check;
mod ci;
mod compliance;
mod doc;
pub mod in_process;
mod list;
mod man;
mod new;
mod run;
mod runs;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::{CommandFactory, Parser};

pub use args::{Cli, Command, LogFormat, ReplArgs};
pub use doc::function_doc;

use crate::engine;
use crate::exit;
use crate::playbook::Inputs;
use crate::secrets::Redactor;
use crate::services::Services;
use crate::state::{Mode, RunState};

/// Parse the arguments and run the command; returns the exit code.
pub async fn main() -> i32 {
    if std::env::args_os().nth(1).is_some_and(|a| a == crate::process::reaper::SUBCOMMAND) {
        return crate::process::reaper::run();
    }
    crate::process::tree::become_subreaper();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { exit::USAGE } else { exit::OK };
            let _ = e.print();
            return code;
        }
    };
    init_tracing();
    if let Some(path) = &cli.output {
        match std::fs::File::create(path) {
            Ok(file) => {
                if let Ok(copy) = file.try_clone() {
                    let _ = OUTPUT.set(Mutex::new(Box::new(copy)));
                }
                let _ = OUTPUT_FILE.set(file);
            }
            Err(e) => return usage_error(&format!("cannot write {}: {e}", path.display()), Some("check the -o path")),
        }
    }
    let code = match cli.command {
        Command::Run(args) => run::run(args).await,
        Command::Check(args) => check::check(&args),
        Command::List(args) => list::list(&args),
        Command::Doc(args) => doc::doc(&args),
        Command::Runs(args) => runs::runs(&args),
        Command::Repl(args) => crate::repl::repl(args).await,
        Command::New(args) => new::new(&args),
        Command::Ci(args) => ci::ci(&args),
        Command::Man => man::man(),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "capstan", &mut *output());
            exit::OK
        }
    };
    let _ = output().flush();
    code
}

fn init_tracing() {
    // Internal diagnostics for capstan's own developers: CAPSTAN_LOG=debug.
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_env("CAPSTAN_LOG") {
        let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
    }
}

/// Print a usage-level error (exit 2): nothing ran.
pub fn usage_error(message: &str, hint: Option<&str>) -> i32 {
    crate::errln!("{} {message}", console::style("error:").red().bold());
    if let Some(h) = hint {
        crate::errln!("   = hint: {h}");
    }
    exit::USAGE
}

/// A playbook read from disk and compiled.
pub struct Loaded {
    pub path: PathBuf,
    pub ast: rhai::AST,
    /// The text it was compiled from.
    pub text: String,
}

/// Read and compile a playbook; on failure print the diagnostic and return
/// the exit code (2).
pub fn load(engine: &rhai::Engine, path: &Path, redactor: &Redactor) -> Result<Loaded, i32> {
    let text = read_playbook(path)?;
    compile_text(engine, path, &text, redactor).map_err(|diagnostic| {
        crate::err!("{diagnostic}");
        exit::USAGE
    })
}

/// A playbook's text; on failure print the error and return the exit code (2).
pub(crate) fn read_playbook(path: &Path) -> Result<String, i32> {
    std::fs::read_to_string(path)
        .map_err(|e| usage_error(&format!("cannot read playbook {}: {e}", path.display()), Some("check the path")))
}

/// Compile a playbook's text; on failure the rendered diagnostic (exit 2).
pub(crate) fn compile_text(
    engine: &rhai::Engine,
    path: &Path,
    text: &str,
    redactor: &Redactor,
) -> Result<Loaded, String> {
    let ast = engine::compile(engine, path, text)
        .map_err(|e| crate::diagnostics::render_parse(&e, &path.to_string_lossy(), redactor))?;
    Ok(Loaded { path: path.to_path_buf(), ast, text: text.to_string() })
}

/// The playbook's folder: the import sandbox and the default journal home.
pub fn playbook_root(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// State and engine for evaluating a playbook without running it
/// (`list`, `check`): dry-run, no outputs, missing inputs tolerated.
pub(crate) fn inspection(root: &Path, budget: crate::state::TopLevelBudget) -> (Arc<RunState>, rhai::Engine) {
    let services = Arc::new(Services::new("inspect".into(), Arc::new(Redactor::new()), true));
    let mut state = RunState::new(services, Inputs::default(), Mode::Inspect);
    state.top_level = budget;
    let state = Arc::new(state);
    let engine = engine::build(&state, root);
    (state, engine)
}

/// One line of data to the command's output (stdout, or `-o FILE`).
pub fn print_data(text: &str) {
    outln!("{text}");
}
