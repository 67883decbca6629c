//! `capstan ci` pipelines run the way a fresh runner runs them: a git
//! repository made by `capstan new --template terraform`, each GitLab and
//! GitHub job in a clone of its own, handed from the earlier jobs only what
//! they declare as artifacts, with the capstan under test on PATH (the
//! pipelines are generated with `--install 'capstan --version'`, a prebuilt
//! binary's install line) and the real terraform, offline.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_yaml_ng::Value;

use crate::support::{capstan_bin, Run};

/// The id of the pipeline run the jobs are part of (GitHub's and GitLab's).
const PIPELINE_ID: &str = "4242";

/// A resource for the template's module, so the plan has a change and the
/// apply job needs the saved plan file.
const RESOURCE: &str = "resource \"terraform_data\" \"release\" {\n  input = var.environment\n}\n";

/// The repository, the clones the jobs run in, and what each job handed on.
struct Runner {
    work: tempfile::TempDir,
    origin: PathBuf,
    /// Artifacts by name (a GitLab job's name, a GitHub artifact's name):
    /// a folder holding the files as the platform stored them.
    stored: BTreeMap<String, PathBuf>,
    /// One line per job: its name and its output, for failure messages.
    log: Vec<String>,
}

impl Runner {
    /// A repository from the terraform template, with the pipelines
    /// generated in it and committed.
    fn new(saved_plan: bool) -> Self {
        Self::with_state(saved_plan, None)
    }

    /// The same, with the pipelines generated with `--state URL`.
    fn with_state(saved_plan: bool, state: Option<&str>) -> Self {
        let work = tempfile::tempdir().unwrap();
        let origin = work.path().join("origin");
        let new = Command::new(capstan_bin())
            .current_dir(work.path())
            .args(["new", "origin", "--template", "terraform", "--name", "svc"])
            .output()
            .unwrap();
        Run::from(new).code(0);
        if saved_plan {
            let module = origin.join("infrastructure/modules/app/main.tf");
            let mut text = std::fs::read_to_string(&module).unwrap();
            text.push_str(RESOURCE);
            std::fs::write(&module, text).unwrap();
        }
        std::fs::write(work.path().join("terraformrc"), "disable_checkpoint = true\n").unwrap();
        for (platform, file) in [("gitlab", ".gitlab-ci.yml"), ("github", ".github/workflows/deploy.yml")] {
            std::fs::create_dir_all(origin.join(file).parent().unwrap()).unwrap();
            let ci = Command::new(capstan_bin())
                .current_dir(&origin)
                .args(["ci", "deploy.rhai", "--platform", platform, "--install", "capstan --version", "-o", file])
                .args(state.map(|url| ["--state", url]).into_iter().flatten())
                .output()
                .unwrap();
            Run::from(ci).code(0);
        }
        git(&origin, &["init", "-q"]);
        git(&origin, &["add", "-A"]);
        git(&origin, &["-c", "user.name=ci", "-c", "user.email=ci@example.com", "commit", "-q", "-m", "service"]);
        Self { work, origin, stored: BTreeMap::new(), log: Vec::new() }
    }

    fn pipeline(&self, file: &str) -> Value {
        let text = std::fs::read_to_string(self.origin.join(file)).unwrap();
        serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{file} is not YAML ({e}):\n{text}"))
    }

    /// A fresh clone for `job`, as a runner checks the repository out.
    fn clone(&self, job: &str) -> PathBuf {
        let dir = self.work.path().join("jobs").join(job);
        std::fs::create_dir_all(dir.parent().unwrap()).unwrap();
        git(self.work.path(), &["clone", "-q", self.origin.to_str().unwrap(), dir.to_str().unwrap()]);
        dir
    }

    /// Run shell lines in `dir` the way the platforms do (bash, stop at
    /// the first failing line) with capstan and terraform set up.
    fn shell(&mut self, job: &str, dir: &Path, lines: &str, env: &[(String, String)]) -> Run {
        let bin = Path::new(capstan_bin()).parent().unwrap();
        let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
        let mut c = Command::new("bash");
        c.args(["-eo", "pipefail", "-c", lines]).current_dir(dir).env("PATH", path).env("NO_COLOR", "1");
        c.env("TF_CLI_CONFIG_FILE", self.work.path().join("terraformrc"))
            .env("TF_IN_AUTOMATION", "1")
            .env("CHECKPOINT_DISABLE", "1");
        for var in ["GITHUB_ACTIONS", "CI", "GITLAB_CI", "CAPSTAN_STATE"] {
            c.env_remove(var);
        }
        // What the platforms set in every job of one pipeline run.
        c.env("GITHUB_RUN_ID", PIPELINE_ID).env("CI_PIPELINE_ID", PIPELINE_ID);
        c.envs(env.iter().map(|(k, v)| (k, v)));
        let run = Run::from(c.output().unwrap());
        self.log.push(format!("--- {job} (exit {}):\n{}", run.code, run.all()));
        run
    }

    /// Store what `patterns` match in `dir` under `name`, with paths from
    /// `root` (a folder inside `dir`).
    fn upload(&mut self, name: &str, dir: &Path, patterns: &[String], root: &str) {
        let all = self.work.path().join("uploads").join(name);
        let _ = std::fs::remove_dir_all(&all);
        std::fs::create_dir_all(&all).unwrap();
        let script = r#"shopt -s globstar nullglob dotglob; dest=$1; shift
for pattern in "$@"; do for p in $pattern; do cp -a --parents -- "${p%/}" "$dest"; done; done"#;
        let out = Command::new("bash")
            .args(["-c", script, "upload", all.to_str().unwrap()])
            .args(patterns)
            .current_dir(dir)
            .output()
            .unwrap();
        Run::from(out).code(0);
        let stored = if root == "." { all } else { all.join(root) };
        std::fs::create_dir_all(&stored).unwrap();
        self.stored.insert(name.to_string(), stored);
    }

    /// Put artifact `name` into `dest`, as a download does.
    fn download(&self, name: &str, dest: &Path) {
        let from = self.stored.get(name).unwrap_or_else(|| panic!("no artifact {name} was uploaded"));
        std::fs::create_dir_all(dest).unwrap();
        let out = Command::new("cp").arg("-a").arg(format!("{}/.", from.display())).arg(dest).output().unwrap();
        Run::from(out).code(0);
    }

    /// Every file an artifact holds, relative to it.
    fn files(&self, name: &str) -> Vec<String> {
        let root = &self.stored[name];
        let mut out = Vec::new();
        let mut stack = vec![root.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                if e.path().is_dir() {
                    stack.push(e.path());
                } else {
                    out.push(e.path().strip_prefix(root).unwrap().to_string_lossy().into_owned());
                }
            }
        }
        out.sort();
        out
    }

    fn fail(&self, what: &str) -> ! {
        panic!("{what}\n{}", self.log.join("\n"))
    }

    /// Every GitLab job in stage order, each in a fresh clone with the
    /// artifacts of the jobs it `needs`; returns the clones by job.
    fn gitlab(&mut self) -> Vec<(String, PathBuf)> {
        let doc = self.pipeline(".gitlab-ci.yml");
        let mut env: Vec<(String, String)> = Vec::new();
        for (k, v) in doc["variables"].as_mapping().unwrap() {
            let value = v.get("value").unwrap_or(v);
            env.push((text(k), text(value)));
        }
        let before = lines(&doc["default"]["before_script"]);
        let mut clones = Vec::new();
        for stage in doc["stages"].as_sequence().unwrap().iter().map(text) {
            let job = &doc[stage.as_str()];
            let dir = self.clone(&format!("gitlab-{stage}"));
            for need in job["needs"].as_sequence().into_iter().flatten().map(text) {
                self.download(&format!("gitlab-{need}"), &dir);
            }
            let script = format!("{}\n{}", before, lines(&job["script"]));
            if self.shell(&stage, &dir, &script, &env).code != 0 {
                self.fail(&format!("GitLab job {stage} failed"));
            }
            let paths: Vec<String> = job["artifacts"]["paths"].as_sequence().into_iter().flatten().map(text).collect();
            self.upload(&format!("gitlab-{stage}"), &dir, &paths, ".");
            clones.push((stage, dir));
        }
        clones
    }

    /// Every GitHub job in order, step by step, each in a fresh clone;
    /// returns the clones by job.
    fn github(&mut self) -> Vec<(String, PathBuf)> {
        let doc = self.pipeline(".github/workflows/deploy.yml");
        let inputs = &doc["on"]["workflow_dispatch"]["inputs"];
        let mut clones = Vec::new();
        for (name, job) in doc["jobs"].as_mapping().unwrap() {
            let name = text(name);
            let dir = self.clone(&format!("github-{name}"));
            let env: Vec<(String, String)> = job["env"]
                .as_mapping()
                .into_iter()
                .flatten()
                .map(|(k, v)| (text(k), expression(&text(v), inputs)))
                .collect();
            for step in job["steps"].as_sequence().unwrap() {
                let uses = step["uses"].as_str().unwrap_or_default();
                let with = &step["with"];
                match uses.split('@').next().unwrap() {
                    "actions/checkout" => {}
                    "actions/download-artifact" => {
                        self.download(with["name"].as_str().unwrap(), &dir.join(with["path"].as_str().unwrap()));
                    }
                    "actions/upload-artifact" => {
                        let paths: Vec<String> = text(&with["path"])
                            .lines()
                            .map(str::trim)
                            .filter(|l| !l.is_empty())
                            .map(String::from)
                            .collect();
                        let mut root = PathBuf::from(artifact_root(&paths));
                        // A lone file is kept from its folder.
                        if dir.join(&root).is_file() {
                            root = root.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf);
                        }
                        let root = root.to_string_lossy().into_owned();
                        self.upload(
                            with["name"].as_str().unwrap(),
                            &dir,
                            &paths,
                            if root.is_empty() { "." } else { &root },
                        );
                    }
                    "" => {
                        assert!(step["if"].is_null(), "a run step with a condition: {step:?}");
                        let run = text(&step["run"]);
                        if self.shell(&name, &dir, &run, &env).code != 0 {
                            self.fail(&format!("GitHub job {name} failed at step {:?}", step["name"]));
                        }
                    }
                    other => panic!("a step this runner does not know: {other}"),
                }
            }
            clones.push((name, dir));
        }
        clones
    }
}

/// The pipelines of the repository pass the platforms' own checks, the
/// `CircleCI` config generated beside them too.
fn validate(origin: &Path) {
    let circleci = origin.join("config.yml");
    let ci = Command::new(capstan_bin())
        .current_dir(origin)
        .args(["ci", "deploy.rhai", "--platform", "circleci", "-o", circleci.to_str().unwrap()])
        .output()
        .unwrap();
    Run::from(ci).code(0);
    let checks: [(&str, &[&str], PathBuf); 3] = [
        ("actionlint", &["-no-color"], origin.join(".github/workflows/deploy.yml")),
        ("check-jsonschema", &["--builtin-schema", "vendor.gitlab-ci"], origin.join(".gitlab-ci.yml")),
        ("check-jsonschema", &["--builtin-schema", "vendor.circle-ci"], circleci),
    ];
    for (program, args, file) in checks {
        let out = Command::new(program)
            .args(args)
            .arg(&file)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {program} ({e}): scripts/install-test-deps installs it"));
        let run = Run::from(out);
        assert_eq!(run.code, 0, "{program} rejects {}:\n{}", file.display(), run.all());
    }
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git").args(args).current_dir(dir).output().expect("git");
    Run::from(out).code(0);
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => panic!("not a scalar: {other:?}"),
    }
}

fn lines(v: &Value) -> String {
    v.as_sequence().map(|items| items.iter().map(text).collect::<Vec<_>>().join("\n")).unwrap_or_default()
}

/// `${{ inputs.NAME }}` as a run started by hand with the defaults gives it.
fn expression(value: &str, inputs: &Value) -> String {
    if let Some(input) = value.strip_prefix("${{ inputs.").and_then(|r| r.strip_suffix(" }}")) {
        return text(&inputs[input]["default"]);
    }
    assert!(!value.contains("${{"), "an expression this runner does not know: {value}");
    value.to_string()
}

/// upload-artifact keeps paths from the folder the search paths (each
/// pattern up to its first wildcard) have in common.
fn artifact_root(patterns: &[String]) -> String {
    let searches: Vec<Vec<String>> = patterns
        .iter()
        .map(|p| {
            let (literal, glob) = match p.find(['*', '?', '[']) {
                Some(i) => (&p[..i], true),
                None => (p.as_str(), false),
            };
            let mut parts: Vec<String> = literal.split('/').filter(|s| !s.is_empty()).map(String::from).collect();
            if glob && !literal.ends_with('/') {
                parts.pop();
            }
            parts
        })
        .collect();
    let mut common = searches[0].clone();
    for s in &searches[1..] {
        let n = common.iter().zip(s).take_while(|(a, b)| a == b).count();
        common.truncate(n);
    }
    if common.is_empty() {
        ".".into()
    } else {
        common.join("/")
    }
}

fn journal(clone: &Path) -> Vec<serde_json::Value> {
    let runs = clone.join(".capstan-ci/.capstan/runs");
    let run = std::fs::read_dir(&runs).unwrap().flatten().next().expect("a run").path();
    std::fs::read_to_string(run.join("journal.jsonl"))
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Steps that ran (not replayed) in the journal, as `phase/step`.
fn ran(events: &[serde_json::Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["event"] == "step_finished" && e["status"] == "ok" && e.get("resumed").is_none())
        .map(|e| format!("{}/{}", e["phase"].as_str().unwrap(), e["step"].as_str().unwrap()))
        .collect()
}

/// The template's pipelines, job by job in fresh clones: every job passes,
/// `terraform init` runs again in each job (the clone has no .terraform/),
/// and nothing but the journal travels (the plan has no changes).
#[test]
fn the_terraform_templates_jobs_pass_on_fresh_runners() {
    for platform in ["gitlab", "github"] {
        let mut runner = Runner::new(false);
        if platform == "gitlab" {
            validate(&runner.origin);
        }
        let clones = if platform == "gitlab" { runner.gitlab() } else { runner.github() };
        let names: Vec<&str> = clones.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["init", "plan", "do", "compliance", "archive"], "{platform}");
        let events = journal(&clones[4].1);
        let inits = ran(&events).iter().filter(|s| *s == "init/terraform init").count();
        assert_eq!(inits, 5, "{platform}: terraform init runs in each of the five jobs\n{}", runner.log.join("\n"));
        let last = events.iter().rev().find(|e| e["event"] == "run_finished").unwrap();
        assert_eq!(last["status"], "ok", "{platform}");
        assert!(clones[4].1.join("reports/report.md").exists(), "{platform}: the archive job wrote its report");
    }
}

/// With a change to apply, the saved plan travels from the plan job to the
/// apply job (and only the declared paths do); the apply job applies it.
/// Without the plan file, the same apply job fails: the artifact is needed.
#[test]
fn the_saved_plan_travels_to_the_apply_job() {
    for platform in ["gitlab", "github"] {
        let mut runner = Runner::new(true);
        let clones = if platform == "gitlab" { runner.gitlab() } else { runner.github() };
        let plan_artifact = if platform == "gitlab" { "gitlab-plan" } else { "capstan-workspace-plan" };
        let files = runner.files(plan_artifact);
        assert!(files.contains(&"infrastructure/environments/staging/capstan.tfplan".to_string()), "{files:?}");
        assert!(
            files.iter().all(|f| f.starts_with(".capstan-ci/") || f.ends_with("capstan.tfplan")),
            "{platform}: only the declared paths travel: {files:?}"
        );
        let do_clone = &clones[2].1;
        let events = journal(do_clone);
        assert!(ran(&events).contains(&"do/terraform apply".to_string()), "{}", runner.log.join("\n"));
        let state = std::fs::read_to_string(do_clone.join("infrastructure/state/staging.tfstate")).unwrap();
        assert!(state.contains("module.app") || state.contains("terraform_data"), "{state}");
    }

    // The apply job again, handed the journal but not the plan file.
    let mut runner = Runner::new(true);
    runner.gitlab();
    let doc = runner.pipeline(".gitlab-ci.yml");
    let dir = runner.clone("apply-without-plan");
    runner.download("gitlab-plan", &dir);
    std::fs::remove_file(dir.join("infrastructure/environments/staging/capstan.tfplan")).unwrap();
    let env = vec![("CAPSTAN_VERSION".to_string(), env!("CARGO_PKG_VERSION").to_string())];
    let run = runner.shell("do without the plan", &dir, &lines(&doc["do"]["script"]), &env);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.all().contains("capstan.tfplan"), "{}", run.all());
}

/// With `capstan ci --state URL`, the jobs share the run through a real
/// PostgreSQL instead of carrying the journal: the first job names the run
/// after the pipeline, the later ones resume it by that name on their fresh
/// clones, and only the saved plan travels as an artifact.
#[test]
fn with_a_state_store_the_jobs_share_the_run_and_only_the_plan_travels() {
    use crate::support::postgres::shared;
    for platform in ["gitlab", "github"] {
        let url = shared().database(&format!("ci_{platform}_{}", std::process::id()));
        let mut runner = Runner::with_state(true, Some(&url));
        let file = if platform == "gitlab" { ".gitlab-ci.yml" } else { ".github/workflows/deploy.yml" };
        let text = std::fs::read_to_string(runner.origin.join(file)).unwrap();
        assert!(!text.contains(".capstan-ci"), "{platform}: no journal artifact:\n{text}");
        let clones = if platform == "gitlab" { runner.gitlab() } else { runner.github() };
        assert_eq!(clones.len(), 5, "{platform}");
        // The JUnit reports are GitHub artifacts of their own.
        for name in runner.stored.keys().filter(|n| !n.starts_with("junit-")).cloned().collect::<Vec<_>>() {
            let files = runner.files(&name);
            assert!(files.iter().all(|f| f.ends_with("capstan.tfplan")), "{platform}: {name} holds {files:?}");
        }
        let state = std::fs::read_to_string(clones[2].1.join("infrastructure/state/staging.tfstate")).unwrap();
        assert!(state.contains("terraform_data"), "{platform}: the do job applied the saved plan\n{state}");
        let tag = if platform == "gitlab" { "gl" } else { "gh" };
        let show = Command::new(capstan_bin())
            .args(["runs", "show", &format!("{tag}-{PIPELINE_ID}"), "--json", "--state", &url])
            .output()
            .unwrap();
        let show = Run::from(show);
        show.code(0);
        let doc: serde_json::Value = serde_json::from_str(&show.stdout).unwrap();
        let run = &doc["run"];
        assert!(run["run_id"].as_str().unwrap().ends_with(&format!("-{tag}-{PIPELINE_ID}")), "{run}");
        assert_eq!(run["status"], "ok", "{platform}: {}", runner.log.join("\n"));
        assert_eq!(run["resumes"], 4, "{platform}: four later jobs resumed the one run");
        let phases: Vec<&str> = run["phases"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
        assert_eq!(phases, ["init", "plan", "do", "compliance", "archive"], "{platform}");
    }
}
