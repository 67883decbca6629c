//! What every command does around running a playbook, shared by the command
//! line and the REPL: read and compile it, find its folder, write data to
//! the command's output.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};

use crate::engine;
use crate::error::Error;
use crate::services::Services;

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

/// Send data to `file` (`-o FILE`) instead of stdout, for the rest of the process.
pub(crate) fn send_output_to(file: std::fs::File) {
    if let Ok(copy) = file.try_clone() {
        let _ = OUTPUT.set(Mutex::new(Box::new(copy)));
    }
    let _ = OUTPUT_FILE.set(file);
}

/// A playbook read from disk and compiled.
pub struct Loaded {
    pub path: PathBuf,
    pub ast: rhai::AST,
    /// The text it was compiled from.
    pub text: String,
}

/// Read and compile a playbook.
pub fn load(engine: &rhai::Engine, path: &Path, services: &Services) -> Result<Loaded, Error> {
    let text = read_playbook(path)?;
    compile_text(engine, path, &text, services)
}

/// A playbook's text.
pub(crate) fn read_playbook(path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path)
        .map_err(|e| Error::io("cannot read playbook", path.to_path_buf(), e).with_hint("check the path"))
}

/// Compile a playbook's text; a compile error is an [`Error::Script`] with
/// its diagnostic, masked.
pub(crate) fn compile_text(
    engine: &rhai::Engine,
    path: &Path,
    text: &str,
    services: &Services,
) -> Result<Loaded, Error> {
    let ast = engine::compile(engine, path, text)
        .map_err(|e| Error::Script { diagnostic: services.render_parse_error(&e, &path.to_string_lossy()) })?;
    Ok(Loaded { path: path.to_path_buf(), ast, text: text.to_string() })
}

/// The playbook's folder: the import sandbox and the default journal home.
pub fn playbook_root(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// One line of data to the command's output (stdout, or `-o FILE`).
pub fn print_data(text: &str) {
    let _ = writeln!(output(), "{text}");
}
