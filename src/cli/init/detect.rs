//! What `capstan init` finds in a repository: the stack (from its manifest
//! and lock files), the stack's own lint, test and build commands, what the
//! repository deploys with (a Dockerfile, Terraform, a Helm chart,
//! Kubernetes manifests), and the service's health path and port.

use std::path::{Path, PathBuf};

use serde::Serialize;

/// What `init` looks for, said when it finds none of it.
pub const LOOKED_FOR: &str = "Cargo.toml, package.json, pyproject.toml, requirements*.txt, setup.py, go.mod, pom.xml, \
     build.gradle(.kts), a Dockerfile, *.tf, Chart.yaml or Kubernetes manifests";

/// Folders never searched: dependencies, build output, VCS data.
const SKIPPED_DIRS: &[&str] =
    &[".git", "node_modules", "target", ".venv", "venv", "__pycache__", ".terraform", "dist", "build", "vendor"];

/// True when the file name ends with `.EXT` (any case).
fn has_extension(name: &str, ext: &str) -> bool {
    Path::new(name).extension().is_some_and(|e| e.eq_ignore_ascii_case(ext))
}

/// One command of the pipeline: a step name and its argv.
#[derive(Debug, Clone, Serialize)]
pub struct Command {
    pub name: String,
    pub argv: Vec<String>,
}

fn cmd(name: &str, argv: &[&str]) -> Command {
    Command { name: name.to_string(), argv: argv.iter().map(ToString::to_string).collect() }
}

/// The language and build tool, with what the Dockerfile needs to know.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "language", rename_all = "lowercase")]
pub enum Stack {
    Rust { package: String, locked: bool },
    Node { manager: String, lock: Option<String>, version: String, scripts: Vec<String>, main: String },
    Python { version: String, requirements: Vec<String>, pyproject: bool, entry: Vec<String> },
    Go { version: String, sum: bool },
    Java { tool: String, wrapper: bool },
}

/// The stack's commands, in the order a fail-fast pipeline runs them.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Commands {
    /// Prepare the workspace (install dependencies); runs in every CI job.
    pub setup: Vec<Command>,
    pub lint: Vec<Command>,
    pub test: Vec<Command>,
    pub build: Vec<Command>,
    /// Programs the commands need on PATH.
    pub tools: Vec<String>,
}

/// What the repository deploys with, as paths relative to its root.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Deploy {
    pub dockerfile: bool,
    pub terraform: Vec<String>,
    pub charts: Vec<String>,
    /// Manifest files holding a workload, with the workload (`deployment/NAME`).
    pub manifests: Vec<(String, String)>,
    /// The repository deploys to Kubernetes without manifests of its own
    /// (a `k8s/` folder, a kustomization, `kubectl` in its CI or scripts).
    pub kubernetes: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Project {
    pub name: String,
    pub stack: Option<Stack>,
    /// One sentence: the stack and the files that showed it.
    pub summary: String,
    pub commands: Commands,
    pub deploy: Deploy,
    pub health_path: Option<String>,
    /// A readiness route (`/readyz`, `/ready`) when the sources name one.
    pub ready_path: Option<String>,
    pub port: u16,
}

fn read(root: &Path, rel: &str) -> Option<String> {
    std::fs::read_to_string(root.join(rel)).ok()
}

fn exists(root: &Path, rel: &str) -> bool {
    root.join(rel).exists()
}

/// `key = "value"` inside `[section]` of a TOML file: enough for the few
/// keys `init` reads, without a TOML parser.
fn toml_value(text: &str, section: &str, key: &str) -> Option<String> {
    let mut current = String::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            current = line.trim_matches(|c| c == '[' || c == ']').trim().to_string();
            continue;
        }
        if current != section {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            if k.trim() == key {
                return Some(v.trim().trim_matches(|c| c == '"' || c == '\'').to_string());
            }
        }
    }
    None
}

fn toml_has_section(text: &str, section: &str) -> bool {
    text.lines().map(str::trim).any(|l| l == format!("[{section}]") || l.starts_with(&format!("[{section}.")))
}

/// The keys of one TOML section (`[project.optional-dependencies]`'s extras).
fn toml_keys(text: &str, section: &str) -> Vec<String> {
    let mut inside = false;
    let mut keys = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            inside = line == format!("[{section}]");
        } else if inside {
            if let Some((k, _)) = line.split_once('=') {
                let k = k.trim();
                if !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_')) {
                    keys.push(k.to_string());
                }
            }
        }
    }
    keys
}

fn rust(root: &Path, evidence: &mut Vec<String>) -> Option<(Stack, Commands)> {
    let manifest = read(root, "Cargo.toml")?;
    let locked = exists(root, "Cargo.lock");
    evidence.push(if locked { "Cargo.toml, Cargo.lock" } else { "Cargo.toml" }.to_string());
    let package = toml_value(&manifest, "package", "name").unwrap_or_else(|| "app".to_string());
    let lock: &[&str] = if locked { &["--locked"] } else { &[] };
    let with_lock = |name: &str, base: &[&str]| {
        let mut argv: Vec<&str> = base.to_vec();
        argv.extend(lock);
        cmd(name, &argv)
    };
    let commands = Commands {
        setup: vec![],
        lint: vec![
            cmd("cargo fmt", &["cargo", "fmt", "--all", "--check"]),
            with_lock("cargo clippy", &["cargo", "clippy", "--all-targets"]),
        ],
        test: vec![with_lock("cargo test", &["cargo", "test"])],
        build: vec![with_lock("cargo build", &["cargo", "build", "--release"])],
        tools: vec!["cargo".into()],
    };
    Some((Stack::Rust { package, locked }, commands))
}

fn node(root: &Path, evidence: &mut Vec<String>) -> Option<(Stack, Commands)> {
    let text = read(root, "package.json")?;
    let json: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    let declared = json["packageManager"].as_str().unwrap_or("").split('@').next().unwrap_or("").to_string();
    let (manager, lock) = [("pnpm", "pnpm-lock.yaml"), ("yarn", "yarn.lock"), ("npm", "package-lock.json")]
        .iter()
        .find(|(_, lock)| exists(root, lock))
        .map_or_else(
            || (if declared.is_empty() { "npm".to_string() } else { declared.clone() }, None),
            |(m, l)| ((*m).to_string(), Some((*l).to_string())),
        );
    evidence.push(match &lock {
        Some(l) => format!("package.json, {l}"),
        None => "package.json, no lock file".to_string(),
    });
    let engines = json["engines"]["node"].as_str().unwrap_or("");
    let nvmrc = read(root, ".nvmrc").unwrap_or_default();
    let version = [engines, nvmrc.trim()]
        .iter()
        .find_map(|s| {
            let digits: String =
                s.chars().skip_while(|c| !c.is_ascii_digit()).take_while(char::is_ascii_digit).collect();
            (!digits.is_empty()).then_some(digits)
        })
        .unwrap_or_else(|| "20".to_string());
    let scripts: Vec<String> = json["scripts"].as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default();
    let has = |s: &str| scripts.iter().any(|k| k == s);
    let m = manager.as_str();
    let install: Vec<&str> = match (m, lock.is_some()) {
        ("npm", true) => vec!["npm", "ci"],
        ("npm", false) => vec!["npm", "install"],
        ("pnpm", true) => vec!["pnpm", "install", "--frozen-lockfile"],
        ("yarn", true) => vec!["yarn", "install", "--frozen-lockfile"],
        (other, _) => vec![other, "install"],
    };
    let script = |s: &str| cmd(&format!("{m} run {s}"), &[m, "run", s]);
    let mut commands =
        Commands { setup: vec![cmd(&install.join(" "), &install)], tools: vec![m.to_string()], ..Commands::default() };
    if has("lint") {
        commands.lint.push(script("lint"));
    }
    if has("test") {
        commands.test.push(cmd(&format!("{m} test"), &[m, "test"]));
    }
    if has("build") {
        commands.build.push(script("build"));
    }
    let main = json["main"].as_str().unwrap_or("index.js").to_string();
    Some((Stack::Node { manager, lock, version, scripts, main }, commands))
}

fn python(root: &Path, evidence: &mut Vec<String>) -> Option<(Stack, Commands)> {
    let pyproject = read(root, "pyproject.toml");
    let mut requirements: Vec<String> =
        list_dir(root).into_iter().filter(|n| n.starts_with("requirements") && has_extension(n, "txt")).collect();
    requirements.sort();
    let setup_py = exists(root, "setup.py");
    if pyproject.is_none() && requirements.is_empty() && !setup_py {
        return None;
    }
    let mut files: Vec<String> = pyproject.iter().map(|_| "pyproject.toml".to_string()).collect();
    files.extend(requirements.iter().cloned());
    if setup_py {
        files.push("setup.py".into());
    }
    evidence.push(files.join(", "));
    let py = pyproject.clone().unwrap_or_default();
    let cfg = [read(root, "setup.cfg"), read(root, "tox.ini")].into_iter().flatten().collect::<String>();
    let pip = |name: &str, args: &[&str]| {
        let mut argv = vec![".venv/bin/python", "-m", "pip", "install", "--disable-pip-version-check"];
        argv.extend(args);
        cmd(name, &argv)
    };
    let mut setup = vec![cmd("venv", &["python3", "-m", "venv", ".venv"])];
    for r in &requirements {
        setup.push(pip(&format!("pip install -r {r}"), &["-r", r]));
    }
    if pyproject.is_some() || setup_py {
        let extras: Vec<String> = toml_keys(&py, "project.optional-dependencies")
            .into_iter()
            .filter(|e| matches!(e.as_str(), "dev" | "test" | "tests" | "lint"))
            .collect();
        let target = if extras.is_empty() { ".".to_string() } else { format!(".[{}]", extras.join(",")) };
        setup.push(pip(&format!("pip install -e {target}"), &["-e", &target]));
    }
    let mut lint = Vec::new();
    let all_text = format!("{py}\n{}", requirements.iter().filter_map(|r| read(root, r)).collect::<String>());
    if toml_has_section(&py, "tool.ruff") || exists(root, "ruff.toml") || exists(root, ".ruff.toml") {
        if !all_text.contains("ruff") {
            setup.push(pip("pip install ruff", &["ruff"]));
        }
        lint.push(cmd("ruff", &[".venv/bin/python", "-m", "ruff", "check", "."]));
    } else if exists(root, ".flake8") || cfg.contains("[flake8]") {
        if !all_text.contains("flake8") {
            setup.push(pip("pip install flake8", &["flake8"]));
        }
        lint.push(cmd("flake8", &[".venv/bin/python", "-m", "flake8"]));
    }
    let mut test = Vec::new();
    let pytest = toml_has_section(&py, "tool.pytest")
        || all_text.contains("pytest")
        || exists(root, "pytest.ini")
        || exists(root, "tests")
        || exists(root, "conftest.py");
    if pytest {
        if !all_text.contains("pytest") {
            setup.push(pip("pip install pytest", &["pytest"]));
        }
        test.push(cmd("pytest", &[".venv/bin/python", "-m", "pytest"]));
    }
    let build = vec![cmd("compileall", &[".venv/bin/python", "-m", "compileall", "-q", "."])];
    let commands = Commands { setup, lint, test, build, tools: vec!["python3".into()] };
    // The image's Python: the lowest `requires-python` allows, else 3.12.
    let version = toml_value(&py, "project", "requires-python")
        .map(|r| {
            r.chars()
                .skip_while(|c| !c.is_ascii_digit())
                .take_while(|c| c.is_ascii_digit() || *c == '.')
                .collect::<String>()
        })
        .filter(|v| v.split('.').count() >= 2)
        .map_or_else(|| "3.12".to_string(), |v| v.split('.').take(2).collect::<Vec<_>>().join("."));
    let entry = python_entry(root, &py);
    Some((Stack::Python { version, requirements, pyproject: pyproject.is_some(), entry }, commands))
}

/// How the container starts a Python service: a package's `__main__`, a
/// top-level script, or the first `[project.scripts]` entry point.
fn python_entry(root: &Path, pyproject: &str) -> Vec<String> {
    let mut packages: Vec<(String, PathBuf)> = Vec::new();
    for base in ["src", "."] {
        for name in list_dir(&root.join(base)) {
            let dir = root.join(base).join(&name);
            if dir.join("__main__.py").is_file() && name != "tests" {
                packages.push((name, dir));
            }
        }
    }
    if let Some((name, _)) = packages.first() {
        return vec!["python3".into(), "-m".into(), name.clone()];
    }
    for script in ["app.py", "main.py", "server.py", "wsgi.py"] {
        if exists(root, script) {
            return vec!["python3".into(), script.into()];
        }
    }
    if let Some(first) = toml_keys(pyproject, "project.scripts").first() {
        if let Some(target) = toml_value(pyproject, "project.scripts", first) {
            if let Some((module, function)) = target.split_once(':') {
                return vec!["python3".into(), "-c".into(), format!("from {module} import {function}; {function}()")];
            }
        }
    }
    vec!["python3".into(), "-m".into(), "app".into()]
}

fn go(root: &Path, evidence: &mut Vec<String>) -> Option<(Stack, Commands)> {
    let module = read(root, "go.mod")?;
    evidence.push(if exists(root, "go.sum") { "go.mod, go.sum" } else { "go.mod" }.to_string());
    let version = module
        .lines()
        .find_map(|l| l.strip_prefix("go "))
        .map_or_else(|| "1.22".to_string(), |v| v.trim().split('.').take(2).collect::<Vec<_>>().join("."));
    let commands = Commands {
        setup: vec![cmd("go mod download", &["go", "mod", "download"])],
        lint: vec![cmd("go vet", &["go", "vet", "./..."])],
        test: vec![cmd("go test", &["go", "test", "./..."])],
        build: vec![cmd("go build", &["go", "build", "-o", "bin/app", "."])],
        tools: vec!["go".into()],
    };
    Some((Stack::Go { version, sum: exists(root, "go.sum") }, commands))
}

fn java(root: &Path, evidence: &mut Vec<String>) -> Option<(Stack, Commands)> {
    let (tool, wrapper, file) = if exists(root, "pom.xml") {
        ("maven", exists(root, "mvnw"), "pom.xml")
    } else if exists(root, "build.gradle.kts") {
        ("gradle", exists(root, "gradlew"), "build.gradle.kts")
    } else if exists(root, "build.gradle") {
        ("gradle", exists(root, "gradlew"), "build.gradle")
    } else {
        return None;
    };
    evidence.push(if wrapper { format!("{file} with its wrapper") } else { file.to_string() });
    let program = match (tool, wrapper) {
        ("maven", true) => "./mvnw",
        ("maven", false) => "mvn",
        (_, true) => "./gradlew",
        _ => "gradle",
    };
    let (test, build) = if tool == "maven" {
        (cmd("mvn verify", &[program, "-B", "verify"]), cmd("mvn package", &[program, "-B", "-DskipTests", "package"]))
    } else {
        (cmd("gradle build", &[program, "build"]), cmd("gradle assemble", &[program, "assemble"]))
    };
    let tools = if wrapper { vec!["java".into()] } else { vec![program.to_string()] };
    let commands = Commands { setup: vec![], lint: vec![], test: vec![test], build: vec![build], tools };
    Some((Stack::Java { tool: tool.to_string(), wrapper }, commands))
}

fn list_dir(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    names.sort();
    names
}

/// Every file under `root` (relative paths), skipping dependency and build folders.
fn walk(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for name in list_dir(&root.join(&rel)) {
            let path = rel.join(&name);
            let full = root.join(&path);
            if full.is_dir() {
                if !SKIPPED_DIRS.contains(&name.as_str()) && out.len() < 20_000 {
                    stack.push(path);
                }
            } else {
                out.push(path.to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out
}

fn parent(rel: &str) -> String {
    Path::new(rel).parent().map(|p| p.to_string_lossy().into_owned()).filter(|p| !p.is_empty()).unwrap_or(".".into())
}

fn deploy_targets(root: &Path, files: &[String]) -> Deploy {
    let mut deploy = Deploy { dockerfile: exists(root, "Dockerfile"), ..Deploy::default() };
    for f in files {
        let dir = parent(f);
        if has_extension(f, "tf") && !deploy.terraform.contains(&dir) {
            deploy.terraform.push(dir);
        } else if f.ends_with("Chart.yaml") {
            deploy.charts.push(dir);
        }
    }
    for f in files {
        let yaml = has_extension(f, "yaml") || has_extension(f, "yml");
        let in_chart = deploy.charts.iter().any(|c| f.starts_with(&format!("{c}/")) || c == ".");
        if !yaml || in_chart || f.starts_with(".github/") || f.contains("docker-compose") {
            continue;
        }
        let text = read(root, f).unwrap_or_default();
        if !text.contains("apiVersion:") {
            continue;
        }
        if let Some(workload) = workload(&text) {
            deploy.manifests.push((f.clone(), workload));
        } else if text.contains("kind: Kustomization") {
            deploy.kubernetes = true;
        }
    }
    let mentions_kubectl = files.iter().any(|f| {
        let ci =
            f.starts_with(".github/") || f.starts_with(".gitlab-ci") || f.starts_with("scripts/") || f == "Makefile";
        ci && read(root, f).is_some_and(|t| t.contains("kubectl ") || t.contains("helm upgrade"))
    });
    let k8s_folder = ["k8s", "kubernetes", "deploy/k8s"].iter().any(|d| root.join(d).is_dir());
    deploy.kubernetes |= mentions_kubectl || k8s_folder;
    deploy
}

/// The first workload a manifest declares, as `kind/name` for kubectl.
fn workload(text: &str) -> Option<String> {
    for doc in text.split("\n---") {
        let kind = doc.lines().find_map(|l| l.strip_prefix("kind:")).map(str::trim)?;
        if !matches!(kind, "Deployment" | "StatefulSet" | "DaemonSet") {
            continue;
        }
        let mut in_metadata = false;
        for line in doc.lines() {
            if line.starts_with("metadata:") {
                in_metadata = true;
            } else if in_metadata && !line.starts_with(' ') && !line.is_empty() {
                in_metadata = false;
            } else if in_metadata {
                if let Some(name) = line.trim().strip_prefix("name:") {
                    if line.starts_with("  ") && !line.starts_with("   ") {
                        return Some(format!("{}/{}", kind.to_lowercase(), name.trim().trim_matches('"')));
                    }
                }
            }
        }
    }
    None
}

/// The first of `routes` named, quoted, in the sources.
fn route(root: &Path, files: &[String], routes: &[&str]) -> Option<String> {
    let sources: Vec<&String> = files
        .iter()
        .filter(|f| [".rs", ".js", ".ts", ".mjs", ".py", ".go", ".java", ".kt"].iter().any(|e| f.ends_with(e)))
        .take(2000)
        .collect();
    for path in routes {
        let quoted = [format!("\"{path}\""), format!("'{path}'"), format!("`{path}`")];
        if sources.iter().any(|f| read(root, f).is_some_and(|t| quoted.iter().any(|q| t.contains(q.as_str())))) {
            return Some((*path).to_string());
        }
    }
    None
}

/// The name the manifest gives the project: Cargo's package, npm's name
/// (without its scope), pyproject's project, the go module's last segment.
pub fn manifest_name(root: &Path) -> Option<String> {
    let cargo = read(root, "Cargo.toml").and_then(|t| toml_value(&t, "package", "name"));
    let npm = || {
        let json: serde_json::Value = serde_json::from_str(&read(root, "package.json")?).ok()?;
        json["name"].as_str().map(|n| n.rsplit('/').next().unwrap_or(n).to_string())
    };
    let python = || read(root, "pyproject.toml").and_then(|t| toml_value(&t, "project", "name"));
    let go = || {
        let text = read(root, "go.mod")?;
        let module = text.lines().find_map(|l| l.strip_prefix("module "))?;
        module.trim().rsplit('/').next().map(ToString::to_string)
    };
    let chart = || {
        let chart = ["Chart.yaml", "chart/Chart.yaml"].iter().find_map(|c| read(root, c))?;
        chart.lines().find_map(|l| l.strip_prefix("name:")).map(|n| n.trim().trim_matches('"').to_string())
    };
    cargo.or_else(npm).or_else(python).or_else(go).or_else(chart)
}

fn stack_and_commands(root: &Path, evidence: &mut Vec<String>) -> Option<(Stack, Commands)> {
    rust(root, evidence)
        .or_else(|| node(root, evidence))
        .or_else(|| python(root, evidence))
        .or_else(|| go(root, evidence))
        .or_else(|| java(root, evidence))
}

/// The stack of the repository at `root`, from its manifest and lock files
/// alone (no walk of the tree): what `capstan ci` keys its caches on.
pub fn stack(root: &Path) -> Option<Stack> {
    stack_and_commands(root, &mut Vec::new()).map(|(s, _)| s)
}

/// Analyse the repository at `root`. `Err` lists nothing: the caller says
/// what was looked for.
pub fn detect(root: &Path, name: String) -> Option<Project> {
    let mut evidence = Vec::new();
    let found = stack_and_commands(root, &mut evidence);
    let files = walk(root);
    let deploy = deploy_targets(root, &files);
    let deploys = deploy.dockerfile || !deploy.terraform.is_empty() || !deploy.charts.is_empty();
    if found.is_none() && !deploys && deploy.manifests.is_empty() {
        return None;
    }
    let (stack, commands) = found.map_or((None, Commands::default()), |(s, c)| (Some(s), c));
    let port = match &stack {
        Some(Stack::Node { .. }) => 3000,
        Some(Stack::Python { .. }) => 8000,
        _ => 8080,
    };
    let label = match &stack {
        Some(Stack::Rust { .. }) => "Rust project with cargo".to_string(),
        Some(Stack::Node { manager, version, .. }) => format!("Node {version} project with {manager}"),
        Some(Stack::Python { version, .. }) => format!("Python {version} project with pip"),
        Some(Stack::Go { version, .. }) => format!("Go {version} project"),
        Some(Stack::Java { tool, .. }) => format!("Java project with {tool}"),
        None if !deploy.terraform.is_empty() => {
            format!("Terraform in {}, no application build", deploy.terraform.join(", "))
        }
        None if !deploy.charts.is_empty() => format!("Helm chart {}, no application build", deploy.charts.join(", ")),
        None if !deploy.manifests.is_empty() => {
            let files: Vec<&str> = deploy.manifests.iter().map(|(f, _)| f.as_str()).collect();
            format!("Kubernetes manifests {}, no application build", files.join(", "))
        }
        None => "A Dockerfile, no application build".to_string(),
    };
    let summary = match evidence.first() {
        Some(e) => format!("{label} ({e})"),
        None => label,
    };
    let ready_path = route(root, &files, &["/readyz", "/ready"]);
    let health_path = route(root, &files, &["/healthz", "/health", "/livez"]).or_else(|| ready_path.clone());
    Some(Project { name, stack, summary, commands, deploy, health_path, ready_path, port })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_reading_is_enough_for_the_manifests() {
        let text = "[package]\nname = \"shop\"\n[project.optional-dependencies]\ntest = [\"pytest\"]\ndev=[]\n";
        assert_eq!(toml_value(text, "package", "name").as_deref(), Some("shop"));
        assert_eq!(toml_keys(text, "project.optional-dependencies"), ["test", "dev"]);
        assert!(toml_has_section("[tool.ruff.lint]\n", "tool.ruff"));
        assert!(!toml_has_section("[tool.ruffx]\n", "tool.ruff"));
    }
}
