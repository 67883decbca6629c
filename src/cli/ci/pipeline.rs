//! The platform-neutral pipeline: one job per phase, in declaration order,
//! the params a run takes, the secrets it reads, the workspace files each
//! job hands on (the journal and the phases' `artifacts`), the tools and
//! locks the playbook takes. The renderers turn it into each platform's file.
//!
//! A secret's value never goes into the file. Secrets are named, and each
//! platform's renderer maps a name to its own secret store. A param whose
//! default comes from a secret has no default in the file: the job passes the
//! param only when someone gave it, so otherwise the run computes the default
//! itself, reading the secret from the job's environment, which the platform
//! fills from its store.

use std::path::{Component, Path};

use crate::error::Error;
use crate::executor;
use crate::launch::{load, playbook_root};
use crate::playbook::scan::{self, Approvals};
use crate::playbook::ParamDecl;
use crate::process::quote;
use crate::secrets::Redactor;
use crate::session::inspection;

use super::setup::{Settings, StateChoice};

/// The folder the journal lives in between jobs; the jobs carry it along.
pub const JOURNAL_DIR: &str = ".capstan-ci";

/// Prefix of the environment variables that carry params into a job.
const PARAM_ENV_PREFIX: &str = "CAPSTAN_PARAM_";

/// Job names the platforms reserve for their own keys (GitLab's top level).
const RESERVED: &[&str] = &[
    "image",
    "services",
    "stages",
    "types",
    "before_script",
    "after_script",
    "variables",
    "cache",
    "include",
    "default",
    "workflow",
    "pages",
];

pub struct Pipeline {
    /// The playbook as given on the command line, with `/` separators.
    pub playbook: String,
    /// The playbook's file name without its extension, for names.
    pub stem: String,
    pub jobs: Vec<Job>,
    /// The phases marked `check: true`: jobs that run at once, before
    /// `jobs`, each a run of its own (see `checks`).
    pub checks: Vec<Job>,
    /// With checks, the dependency caches of the checkout's stack.
    pub caches: Vec<super::shape::Cache>,
    pub params: Vec<Param>,
    pub secrets: Vec<String>,
    /// Programs the playbook requires (`require_tools` with literal names).
    pub tools: Vec<String>,
    /// Locks the playbook takes with a literal name: each job takes them
    /// for the whole of its run (`--lock`).
    pub locks: Vec<String>,
    pub settings: Settings,
    /// Knows the values of the secrets the top level read; masks the text.
    pub services: std::sync::Arc<crate::services::Services>,
}

pub struct Job {
    pub phase: String,
    /// A name every platform accepts as a job id: letters, digits, `-`, `_`.
    pub id: String,
    pub approvals: Approvals,
    /// What the phase leaves for later phases (`artifacts`), relative to the
    /// folder the pipeline runs capstan in (the checkout's root).
    pub artifacts: Vec<String>,
}

/// A param exposed as a pipeline input.
pub struct Param {
    pub name: String,
    pub required: bool,
    /// The default as `--param` text.
    pub default: Option<String>,
    /// The default holds a secret's value: the file gives none, and the run
    /// computes it when the param is not given.
    pub from_secret: bool,
    /// The input's name: letters, digits, `-`, `_`.
    pub input: String,
    /// The environment variable that carries the value into the job.
    pub env: String,
}

impl Pipeline {
    /// Compile the playbook and evaluate its top level the way `capstan list`
    /// does; bad input is the same error.
    pub fn inspect(path: &Path, settings: Settings) -> Result<Self, Error> {
        let (state, engine) = inspection(&playbook_root(path), crate::state::TopLevelBudget::default());
        let services = state.services.clone();
        let redactor = services.redactor.clone();
        let loaded = load(&engine, path, &services)?;
        scan::mask_secrets_early(&loaded.ast, &redactor);
        state
            .services
            .cancel
            .set_run_deadline(std::time::Instant::now().checked_add(std::time::Duration::from_secs(10)));
        if let Err(e) = executor::declare(&state, &engine, &loaded.ast) {
            return Err(Error::Script { diagnostic: services.render_error(&e, &path.to_string_lossy()) });
        }
        let model = state.model().clone();
        if model.phases.is_empty() {
            return Err(Error::usage_with_hint(
                format!("{} declares no phases: there is nothing to run in CI", path.display()),
                "declare phases with phase(\"name\", || { ... })",
            ));
        }
        if let Some(index) = model.phases.iter().position(|p| redactor.redact_owned(&p.name).is_some()) {
            return Err(Error::usage_with_hint(
                format!(
                    "the name of phase {} holds the value of a secret: a job cannot select that phase without \
                     writing the secret into the pipeline file",
                    index + 1
                ),
                "build the phase's name without the secret",
            ));
        }
        let mut ids: Vec<String> = Vec::new();
        // Artifacts are given from the checkout's root, where the jobs run:
        // the folder `capstan ci` is run in.
        let mut root = crate::launch::playbook_root(path);
        if let Some(relative) = std::env::current_dir().ok().and_then(|cwd| root.strip_prefix(cwd).ok()) {
            root = if relative.as_os_str().is_empty() { ".".into() } else { relative.to_path_buf() };
        }
        let all: Vec<(String, bool)> = model.phases.iter().map(|p| (p.name.clone(), p.options.check)).collect();
        super::shape::check_order(&all)?;
        let mut jobs = Vec::new();
        let mut checks = Vec::new();
        for p in &model.phases {
            let id = unique(job_id(&p.name), &ids);
            ids.push(id.clone());
            let artifacts = p
                .options
                .artifacts
                .iter()
                .map(|a| from_checkout_root(&root, a).ok_or_else(|| escaping_artifact(&p.name, a)))
                .collect::<Result<Vec<_>, _>>()?;
            let job =
                Job { phase: p.name.clone(), id, approvals: scan::approvals(&loaded.ast, p.body.fn_name()), artifacts };
            if p.options.check {
                super::shape::refuse_gated(&job.phase, &job.approvals)?;
                checks.push(job);
            } else {
                jobs.push(job);
            }
        }
        // The jobs run at the checkout's root: `capstan ci` is run there.
        let caches = if checks.is_empty() { Vec::new() } else { super::shape::caches(Path::new(".")) };
        let mut secrets = settings.state_secrets();
        secrets.extend(model.secrets.iter().filter(|s| !secrets.contains(s)).cloned().collect::<Vec<_>>());
        for name in scan::secrets(&loaded.ast) {
            if !secrets.contains(&name) {
                secrets.push(name);
            }
        }
        let playbook = path.to_string_lossy().replace('\\', "/");
        let stem = path.file_stem().map_or_else(|| "playbook".into(), |s| s.to_string_lossy().into_owned());
        let from_secrets = scan::params_defaulting_to_secrets(&loaded.ast);
        let params = model
            .params
            .iter()
            .filter_map(|decl| Param::from_decl(decl, &redactor, from_secrets.contains(&decl.name)))
            .collect();
        let tools = scan::first_args(&loaded.ast, "require_tools");
        let locks = scan::first_args(&loaded.ast, "lock");
        Ok(Self { playbook, stem, jobs, checks, caches, params, secrets, tools, locks, settings, services })
    }

    /// The `capstan run` command line of job `index`.
    ///
    /// The first job runs its phase; each later job resumes the run up to
    /// its phase (`--resume last --to P`): the earlier phases are replayed
    /// from the journal (their completed steps return their recorded values
    /// without running, and their undo handlers are armed again), so values
    /// a phase computed reach the later ones and a failure undoes the earlier
    /// jobs' work too. Approvals given at an earlier gate are passed on, since
    /// code outside steps runs again when a phase is replayed.
    ///
    /// With `--state`, the run lives in the store: the first job names it
    /// `run_name` (a shell word naming the pipeline's run on the platform)
    /// and the later jobs resume that name, which is the newest run of it
    /// when the pipeline was run again.
    pub fn command(&self, index: usize, log_format: &str, run_name: &str) -> String {
        let job = &self.jobs[index];
        let mut words = vec!["capstan".to_string(), "run".into(), quote(&self.playbook)];
        let shared = self.settings.state.is_some();
        match (index, shared) {
            (0, false) => words.extend(["--phase".into(), quote(&job.phase)]),
            (0, true) => words.extend(["--phase".into(), quote(&job.phase), "--run-name".into(), run_name.into()]),
            (_, false) => words.extend(["--resume".into(), "last".into()]),
            (_, true) => words.extend(["--resume".into(), run_name.into()]),
        }
        if index > 0 {
            // The checks ran in jobs of their own, before the chain: it
            // starts at its own first phase.
            if !self.checks.is_empty() {
                words.extend(["--from".into(), quote(&self.jobs[0].phase)]);
            }
            words.extend(["--to".into(), quote(&job.phase)]);
        }
        match &self.settings.state {
            None => words.extend(["--journal-dir".into(), JOURNAL_DIR.into()]),
            Some(StateChoice::Url(url)) => words.extend(["--state".into(), quote(url)]),
            // `CAPSTAN_STATE` from the platform's secrets is capstan's own variable.
            Some(StateChoice::Secret) => {}
        }
        words.extend(["--log-format".into(), log_format.into(), "--junit".into(), self.junit(index)]);
        for lock in &self.locks {
            words.extend(["--lock".into(), quote(lock)]);
        }
        // Later jobs resume the run, which keeps the params it started with.
        if index == 0 {
            words.extend(self.param_flags());
        }
        let mut given = Approvals::default();
        for earlier in &self.jobs[..=index] {
            given.computed |= earlier.approvals.computed;
            for name in &earlier.approvals.names {
                if !given.names.contains(name) {
                    given.names.push(name.clone());
                }
            }
        }
        given.names.sort();
        words.extend(given.flags().iter().map(|f| quote(f)));
        words.join(" ")
    }

    /// `--param` flags passing each param from its environment variable.
    pub fn param_flags(&self) -> Vec<String> {
        let mut words = Vec::new();
        for p in &self.params {
            let given = format!("\"{}=${{{}}}\"", double_quoted(&p.name), p.env);
            if p.from_secret {
                words.push(format!("${{{}:+--param {given}}}", p.env));
            } else {
                words.push("--param".into());
                words.push(given);
            }
        }
        words
    }

    /// What job `index` hands on to the jobs after it: the journal and the
    /// artifacts of its phase and of every phase before it (a platform
    /// gives a job only what the job just before it handed on).
    /// With `--state` the journal is in the store and only the artifacts travel.
    pub fn carried(&self, index: usize) -> Vec<String> {
        let mut paths = if self.settings.state.is_some() { Vec::new() } else { vec![format!("{JOURNAL_DIR}/")] };
        for job in &self.jobs[..=index] {
            for a in &job.artifacts {
                if !paths.contains(a) {
                    paths.push(a.clone());
                }
            }
        }
        paths
    }

    /// The params that pick an environment (`env`, `stage`, `region`…):
    /// two runs for different environments may go at once, two for the same
    /// one wait for each other.
    pub fn environment_params(&self) -> Vec<&Param> {
        self.params.iter().filter(|p| crate::playbook::is_environment_param(&p.name)).collect()
    }

    /// The name runs of this pipeline queue on: the playbook and the
    /// environment params, each written by `param` as the platform reads it.
    pub fn concurrency_group(&self, param: impl Fn(&Param) -> String) -> String {
        let mut group = format!("capstan-{}", identifier(&self.stem, '-').trim_start_matches('_'));
        for p in self.environment_params() {
            group.push('-');
            group.push_str(&param(p));
        }
        group
    }

    /// Shell lines that stop the first job when a required param is empty.
    pub fn param_checks(&self) -> Vec<String> {
        self.params
            .iter()
            .filter(|p| p.required)
            .map(|p| format!(": \"${{{}:?the required param {} is empty}}\"", p.env, p.input))
            .collect()
    }

    /// Where job `index` writes its `JUnit` report.
    pub fn junit(&self, index: usize) -> String {
        format!("reports/junit-{}.xml", self.jobs[index].id)
    }

    /// The command that regenerates the file, for its header.
    pub fn regenerate(&self, platform: &str, output: &str) -> String {
        let state = match &self.settings.state {
            None => String::new(),
            Some(StateChoice::Secret) => " --state secret".into(),
            Some(StateChoice::Url(url)) => format!(" --state {}", quote(url)),
        };
        format!("capstan ci {}{state} --platform {platform} -o {output}", quote(&self.playbook))
    }
}

impl Param {
    /// `from_secret`: the playbook's default is an expression that reads a
    /// secret, which a default that shows a secret's value is too.
    fn from_decl(decl: &ParamDecl, redactor: &Redactor, from_secret: bool) -> Option<Self> {
        // A list or map default cannot be given as `--param` text; the run keeps it.
        let default = match &decl.default {
            None => None,
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) => Some(v.to_string()),
            Some(_) => return None,
        };
        let from_secret = from_secret || default.as_deref().is_some_and(|d| redactor.redact_owned(d).is_some());
        let default = if from_secret { None } else { default };
        let input = identifier(&decl.name, '_');
        let env = format!("{PARAM_ENV_PREFIX}{}", identifier(&decl.name, '_').replace('-', "_").to_ascii_uppercase());
        Some(Self { name: decl.name.clone(), required: decl.required, default, from_secret, input, env })
    }

    /// One line for the input's description.
    pub fn description(&self) -> String {
        if self.required {
            format!("param {} (required)", self.name)
        } else if self.from_secret {
            format!("param {} (empty: the playbook's default, read from a secret)", self.name)
        } else {
            format!("param {}", self.name)
        }
    }
}

/// `artifact` (relative to the playbook's folder `root`) as a path from the
/// checkout's root, where the pipeline runs capstan; `None` when it leaves it.
fn from_checkout_root(root: &Path, artifact: &str) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    let joined = root.join(artifact);
    for c in joined.components() {
        match c {
            Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    if parts.is_empty() {
        return None;
    }
    let mut path = parts.join("/");
    if artifact.ends_with('/') {
        path.push('/');
    }
    Some(path)
}

fn escaping_artifact(phase: &str, artifact: &str) -> Error {
    Error::usage_with_hint(
        format!("phase `{phase}` declares the artifact `{artifact}`, which is not inside the checkout the pipeline runs in"),
        "give artifacts as paths inside the repository, relative to the playbook's folder, and run `capstan ci` from the repository's root",
    )
}

/// Letters, digits, `-` and `_`, starting with a letter or `_`.
fn identifier(name: &str, filler: char) -> String {
    let mut id: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { filler }).collect();
    if !id.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        id.insert(0, '_');
    }
    id
}

fn job_id(phase: &str) -> String {
    let id = identifier(phase, '-');
    if id.starts_with('_') || RESERVED.contains(&id.as_str()) {
        format!("phase-{}", id.trim_start_matches('_'))
    } else {
        id
    }
}

fn unique(id: String, taken: &[String]) -> String {
    if !taken.contains(&id) {
        return id;
    }
    // Among len + 1 candidates one is always free.
    (2..=taken.len() + 2).map(|n| format!("{id}-{n}")).find(|c| !taken.contains(c)).unwrap_or(id)
}

/// Text to put between double quotes in a shell.
fn double_quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '"' | '\\' | '$' | '`') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A YAML scalar: plain when that reads back as the same string, else quoted.
pub fn yaml(s: &str) -> String {
    let words = ["y", "n", "yes", "no", "on", "off", "true", "false", "null", "~"];
    let plain = s.starts_with(|c: char| c.is_ascii_alphabetic())
        && !s.ends_with(' ')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || " _./()-".contains(c))
        && !words.contains(&s.to_ascii_lowercase().as_str());
    if plain {
        s.to_string()
    } else if s.contains(['\n', '\r', '\t']) {
        serde_json::Value::String(s.to_string()).to_string()
    } else {
        format!("'{}'", s.replace('\'', "''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_scalars_read_back_as_strings() {
        for (s, scalar) in [("plan", "plan"), ("on", "'on'"), ("2", "'2'"), ("a: b", "'a: b'"), ("it's", "'it''s'")] {
            assert_eq!(yaml(s), scalar);
        }
    }

    #[test]
    fn job_ids_are_identifiers_and_unique() {
        for (phase, id) in
            [("do", "do"), ("smoke test", "smoke-test"), ("1st", "phase-1st"), ("variables", "phase-variables")]
        {
            assert_eq!(job_id(phase), id);
        }
        assert_eq!(unique("a".into(), &["a".into(), "a-2".into()]), "a-3");
    }

    #[test]
    fn artifacts_are_given_from_the_checkouts_root() {
        let root = Path::new("services/api");
        assert_eq!(
            from_checkout_root(root, "infra/capstan.tfplan").as_deref(),
            Some("services/api/infra/capstan.tfplan")
        );
        assert_eq!(from_checkout_root(root, "../shared/out/").as_deref(), Some("services/shared/out/"));
        assert_eq!(from_checkout_root(Path::new("."), "./dist/*.tar").as_deref(), Some("dist/*.tar"));
        assert_eq!(from_checkout_root(Path::new("."), "../elsewhere"), None);
        assert_eq!(from_checkout_root(Path::new("/abs"), "x"), None);
    }
}
