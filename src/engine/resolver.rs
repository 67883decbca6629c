//! Imports: `capstan/...` from the embedded stdlib, anything else relative
//! to the importing file and never outside the playbook's folder.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;

use rhai::module_resolvers::ModuleResolver;
use rhai::{Engine, EvalAltResult, Module, Position, Scope, Shared};

use super::stdlib;

pub struct SandboxResolver {
    root: PathBuf,
    cache: Mutex<HashMap<String, Shared<Module>>>,
    /// Bundled imports served by native modules (`capstan/fleet`): their
    /// `.rhai` file documents them for `capstan doc` and `check`.
    natives: Vec<(&'static str, Shared<Module>)>,
}

impl SandboxResolver {
    pub fn new(root: &Path) -> Self {
        let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
        Self { root, cache: Mutex::new(HashMap::new()), natives: Vec::new() }
    }

    #[must_use]
    pub fn with_natives(mut self, natives: Vec<(&'static str, Shared<Module>)>) -> Self {
        self.natives = natives;
        self
    }

    /// The file an import names, checked against the sandbox.
    pub fn locate(&self, importer: Option<&str>, path: &str) -> Result<PathBuf, ImportError> {
        let import = path.to_string();
        if Path::new(path).is_absolute() {
            return Err(ImportError::Absolute { import });
        }
        let base = importer
            .filter(|s| !s.starts_with("capstan/"))
            .and_then(|s| Path::new(s).parent().map(Path::to_path_buf))
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| self.root.clone(), |p| p.canonicalize().unwrap_or(p));
        let mut file = base.join(path);
        if file.extension().is_none() {
            file.set_extension("rhai");
        }
        let lexical = normalize(&file);
        if !lexical.starts_with(&self.root) {
            return Err(ImportError::LeavesFolder { import, root: self.root.clone() });
        }
        let Ok(real) = file.canonicalize() else { return Err(ImportError::NotFound { file: lexical }) };
        if !real.starts_with(&self.root) {
            return Err(ImportError::SymlinkOut { import, target: real });
        }
        Ok(real)
    }
}

/// An import the sandbox refuses or cannot find.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportError {
    Absolute {
        import: String,
    },
    LeavesFolder {
        import: String,
        root: PathBuf,
    },
    NotFound {
        file: PathBuf,
    },
    /// Inside the folder by name, outside through a symlink to `target`.
    SymlinkOut {
        import: String,
        target: PathBuf,
    },
}

impl std::fmt::Display for ImportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ImportError::Absolute { import } => {
                write!(f, "import \"{import}\": absolute paths are not allowed; import relative to the playbook")
            }
            ImportError::LeavesFolder { import, root } => {
                write!(f, "import \"{import}\" leaves the playbook's folder {}; keep modules inside it", root.display())
            }
            ImportError::NotFound { file } => write!(f, "module file {} not found", file.display()),
            ImportError::SymlinkOut { import, target } => write!(
                f,
                "import \"{import}\" resolves outside the playbook's folder (symlink to {})",
                target.display()
            ),
        }
    }
}

impl std::error::Error for ImportError {}

fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

impl ModuleResolver for SandboxResolver {
    fn resolve(
        &self,
        engine: &Engine,
        source: Option<&str>,
        path: &str,
        pos: Position,
    ) -> Result<Shared<Module>, Box<EvalAltResult>> {
        let in_module = |e: Box<EvalAltResult>| Box::new(EvalAltResult::ErrorInModule(path.into(), e, pos));
        if let Some((_, module)) = self.natives.iter().find(|(name, _)| *name == path) {
            return Ok(module.clone());
        }
        let (key, text, origin) = if let Some(text) = stdlib::source(path) {
            (path.to_string(), text.to_string(), path.to_string())
        } else if path.starts_with("capstan/") {
            let known: Vec<&str> = stdlib::MODULES.iter().map(|(n, _)| *n).collect();
            return Err(in_module(
                format!("no bundled module \"{path}\"; the standard library has: {}", known.join(", ")).into(),
            ));
        } else {
            let file = self.locate(source, path).map_err(|e| in_module(e.to_string().into()))?;
            let text = std::fs::read_to_string(&file)
                .map_err(|e| in_module(format!("cannot read {}: {e}", file.display()).into()))?;
            let origin = file.to_string_lossy().into_owned();
            (origin.clone(), text, origin)
        };
        if let Some(m) = self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&key) {
            return Ok(m.clone());
        }
        let mut ast = engine.compile(&text).map_err(|e| in_module(e.into()))?;
        ast.set_source(origin.as_str());
        let mut module = Module::eval_ast_as_new(Scope::new(), &ast, engine).map_err(in_module)?;
        module.set_id(origin.as_str());
        let module: Shared<Module> = module.into();
        self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(key, module.clone());
        Ok(module)
    }
}
