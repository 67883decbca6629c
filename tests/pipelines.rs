//! `capstan ci`: generated pipelines checked by the platforms' own linters and
//! schemas (actionlint; GitLab's and `CircleCI`'s schemas through
//! check-jsonschema), golden files for Jenkins and `CircleCI`, and the
//! semantics: job order, gates, secret references, and the jobs' commands run
//! in order as one run.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_yaml_ng::Value;

use crate::support::{capstan_bin, repo_root, Playbook, Run};

const FIXTURE: &str = "tests/fixtures/ci/deploy.rhai";

/// Two phases, no params, no secrets, no approvals.
const SIMPLE: &str = r#"
phase("build", || { step("compile", || run(["echo", "compiled"])); });
phase("test", || { step("unit", || run(["echo", "tested"])); });
"#;

fn fixture() -> String {
    std::fs::read_to_string(repo_root().join(FIXTURE)).expect("read the ci fixture")
}

fn ci(p: &Playbook, platform: &str) -> Run {
    let run = Run::from(p.command("ci").args(["--platform", platform]).output().expect("run capstan ci"));
    run.code(0);
    run
}

/// Run a validator; a missing one fails the test with what to install.
fn tool(program: &str, args: &[&str]) -> Run {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program} ({e}): scripts/install-test-deps installs it from PyPI"));
    Run::from(out)
}

fn yaml(text: &str) -> Value {
    serde_yaml_ng::from_str(text).unwrap_or_else(|e| panic!("not YAML ({e}):\n{text}"))
}

fn keys(v: &Value) -> Vec<String> {
    v.as_mapping().expect("a mapping").keys().map(|k| k.as_str().expect("a string key").to_string()).collect()
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Sequence(items) => items.iter().map(text).collect::<Vec<_>>().join("\n"),
        other => serde_yaml_ng::to_string(other).unwrap_or_default(),
    }
}

/// The playbooks the validators check, each without and with a state store
/// (`--state`: no journal travels, only the phases' artifacts).
fn sources() -> Vec<(String, &'static [&'static str])> {
    const STATES: [&[&str]; 3] = [
        &[],
        &["--state", "secret"],
        &["--state", "s3://deploys/capstan?endpoint=https://s3.example.com&region=eu-west-1"],
    ];
    let mut out = Vec::new();
    for source in [fixture(), SIMPLE.to_string()] {
        for state in STATES {
            out.push((source.clone(), state));
        }
    }
    out
}

#[test]
fn github_workflows_pass_actionlint() {
    for (source, state) in sources() {
        let p = Playbook::new(&source);
        ci(&p, "github");
        let run =
            Run::from(p.command("ci").args(["--platform", "github", "-o", "deploy.yml"]).args(state).output().unwrap());
        run.code(0);
        let lint = tool("actionlint", &["-no-color", p.path("deploy.yml").to_str().unwrap()]);
        assert_eq!(lint.code, 0, "actionlint rejects the workflow:\n{}\n{}", lint.all(), run.stdout);
    }
}

#[test]
fn gitlab_pipelines_match_gitlabs_schema() {
    for (source, state) in sources() {
        let p = Playbook::new(&source);
        let ci = p.command("ci").args(["--platform", "gitlab", "-o", ".gitlab-ci.yml"]).args(state).output();
        Run::from(ci.unwrap()).code(0);
        let file = p.path(".gitlab-ci.yml");
        let check = tool("check-jsonschema", &["--builtin-schema", "vendor.gitlab-ci", file.to_str().unwrap()]);
        assert_eq!(check.code, 0, "GitLab's schema rejects the pipeline:\n{}", check.all());
    }
}

/// With and without secrets (a workflow job with no context and no
/// `requires` has nothing to say but its name).
#[test]
fn circleci_configs_match_circlecis_schema() {
    for (source, state) in sources() {
        let p = Playbook::new(&source);
        let ci = p.command("ci").args(["--platform", "circleci", "-o", "config.yml"]).args(state).output();
        Run::from(ci.unwrap()).code(0);
        let file = p.path("config.yml");
        let check = tool("check-jsonschema", &["--builtin-schema", "vendor.circle-ci", file.to_str().unwrap()]);
        assert_eq!(check.code, 0, "CircleCI's schema rejects the config:\n{}", check.all());
    }
}

/// The validators above must be able to say no, or their passes mean nothing.
#[test]
fn the_validators_reject_broken_pipelines() {
    let dir = tempfile::tempdir().unwrap();
    let workflow = dir.path().join("broken.yml");
    std::fs::write(
        &workflow,
        "on: workflow_dispatch\njobs:\n  a:\n    needs: missing\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo\n",
    )
    .unwrap();
    assert_ne!(tool("actionlint", &["-no-color", workflow.to_str().unwrap()]).code, 0);
    let gitlab = dir.path().join(".gitlab-ci.yml");
    std::fs::write(&gitlab, "a:\n  when: sometimes\n  script:\n    - echo\n").unwrap();
    assert_ne!(tool("check-jsonschema", &["--builtin-schema", "vendor.gitlab-ci", gitlab.to_str().unwrap()]).code, 0);
    // A workflow job written `- build:` with nothing after it is null, which
    // `CircleCI` rejects: it takes a name or a map.
    let circleci = dir.path().join("config.yml");
    std::fs::write(
        &circleci,
        "version: 2.1\njobs:\n  build:\n    docker:\n      - image: rust:1\n    steps:\n      - checkout\n\
         workflows:\n  w:\n    jobs:\n      - build:\n",
    )
    .unwrap();
    let check = tool("check-jsonschema", &["--builtin-schema", "vendor.circle-ci", circleci.to_str().unwrap()]);
    assert_ne!(check.code, 0, "{}", check.all());
    std::fs::write(&circleci, std::fs::read_to_string(&circleci).unwrap().replace("- build:", "- build")).unwrap();
    let check = tool("check-jsonschema", &["--builtin-schema", "vendor.circle-ci", circleci.to_str().unwrap()]);
    assert_eq!(check.code, 0, "the same config with `- build` is valid:\n{}", check.all());
}

#[test]
fn github_jobs_follow_the_phases_and_only_the_approval_phase_is_gated() {
    let p = Playbook::new(&fixture());
    let out = ci(&p, "github").stdout.clone();
    let doc = yaml(&out);
    let jobs = &doc["jobs"];
    assert_eq!(keys(jobs), ["build", "plan", "deploy", "verify"]);
    assert_eq!(jobs["plan"]["needs"].as_str(), Some("build"));
    assert_eq!(jobs["deploy"]["needs"].as_str(), Some("plan"));
    assert_eq!(jobs["verify"]["needs"].as_str(), Some("deploy"));
    assert!(jobs["build"]["needs"].is_null());
    // The approval is inside a script function called from a step of `deploy`;
    // `verify` only mentions approve( in a comment.
    for (job, gated) in [("build", false), ("plan", false), ("deploy", true), ("verify", false)] {
        assert_eq!(jobs[job]["environment"].as_str().is_some(), gated, "{job}: environment\n{out}");
        let script = jobs[job]["steps"]
            .as_sequence()
            .unwrap()
            .iter()
            .filter_map(|s| s["run"].as_str())
            .find(|r| r.contains("capstan run"))
            .unwrap_or_else(|| panic!("{job} runs capstan"))
            .to_string();
        let runs_to = if job == "build" { format!("--phase {job} ") } else { format!("--resume last --to {job} ") };
        assert!(script.contains(&runs_to), "{script}");
        // Later jobs replay the gated phase, so its approval is passed on.
        let approved = matches!(job, "deploy" | "verify");
        assert_eq!(script.contains("--approve production"), approved, "{script}");
        assert!(!script.contains("--yes"), "{script}");
        assert_eq!(script.contains("--resume last"), job != "build", "{script}");
        assert_eq!(script.contains("--param \"version=${CAPSTAN_PARAM_VERSION}\""), job == "build", "{script}");
        assert!(script.contains(&format!("--junit reports/junit-{job}.xml")), "{script}");
        assert!(script.contains("--log-format github"), "{script}");
    }
    let inputs = &doc["on"]["workflow_dispatch"]["inputs"];
    assert_eq!(inputs["version"]["required"].as_bool(), Some(true));
    assert_eq!(inputs["replicas"]["required"].as_bool(), Some(false));
    assert_eq!(inputs["replicas"]["default"].as_str(), Some("2"));
}

#[test]
fn gitlab_jobs_follow_the_phases_and_the_approval_phase_is_manual() {
    let p = Playbook::new(&fixture());
    let doc = yaml(&ci(&p, "gitlab").stdout);
    let stages: Vec<&str> = doc["stages"].as_sequence().unwrap().iter().filter_map(Value::as_str).collect();
    assert_eq!(stages, ["build", "plan", "deploy", "verify"]);
    for (i, job) in stages.iter().enumerate() {
        assert_eq!(doc[job]["stage"].as_str(), Some(*job));
        assert_eq!(doc[job]["when"].as_str() == Some("manual"), *job == "deploy", "{job}");
        assert_eq!(doc[job]["environment"]["name"].as_str().is_some(), *job == "deploy", "{job}");
        assert_eq!(
            doc[job]["artifacts"]["reports"]["junit"].as_str(),
            Some(format!("reports/junit-{job}.xml").as_str())
        );
        if i > 0 {
            assert_eq!(doc[job]["needs"][0].as_str(), Some(stages[i - 1]));
        }
    }
    assert_eq!(doc["deploy"]["allow_failure"].as_bool(), Some(false), "a manual gate must block the stages after it");
}

#[test]
fn circleci_config_parses_and_its_workflow_follows_the_phases() {
    let p = Playbook::new(&fixture());
    let doc = yaml(&ci(&p, "circleci").stdout);
    assert_eq!(keys(&doc["jobs"]), ["build", "plan", "deploy", "verify"]);
    let workflow = doc["workflows"]["deploy"]["jobs"].as_sequence().expect("the workflow's jobs");
    let order: Vec<String> = workflow.iter().map(|j| keys(j)[0].clone()).collect();
    assert_eq!(order, ["build", "plan", "approve-deploy", "deploy", "verify"]);
    let entry = |name: &str| &workflow[order.iter().position(|n| n == name).unwrap()][name];
    assert_eq!(entry("approve-deploy")["type"].as_str(), Some("approval"));
    assert_eq!(entry("approve-deploy")["requires"][0].as_str(), Some("plan"));
    assert_eq!(entry("deploy")["requires"][0].as_str(), Some("approve-deploy"));
    assert_eq!(entry("verify")["requires"][0].as_str(), Some("deploy"));
    assert!(entry("build")["requires"].is_null());
    assert_eq!(doc["parameters"]["version"]["type"].as_str(), Some("string"));
}

#[test]
fn jenkins_stages_follow_the_phases_and_the_approval_stage_waits_for_input() {
    let p = Playbook::new(&fixture());
    let out = ci(&p, "jenkins").stdout.clone();
    let stages: Vec<(usize, &str)> = ["build", "plan", "deploy", "verify"]
        .iter()
        .map(|s| (out.find(&format!("stage('{s}') {{")).unwrap_or_else(|| panic!("stage {s}:\n{out}")), *s))
        .collect();
    assert!(stages.windows(2).all(|w| w[0].0 < w[1].0), "stages out of phase order:\n{out}");
    assert_eq!(out.matches("input {").count(), 1, "{out}");
    let deploy = &out[stages[2].0..stages[3].0];
    assert!(deploy.contains("input {") && deploy.contains("--approve production"), "{deploy}");
    assert_eq!(out.matches("unstash 'capstan-workspace'").count(), 3);
}

#[test]
fn secrets_are_references_to_the_platform_store_never_values() {
    let p = Playbook::new(&fixture()).env("REGISTRY_TOKEN", "tok-4f9a1c77e2").env("SLACK_WEBHOOK", "hook-8d2e5b31aa");
    let expected: [(&str, &[&str]); 4] = [
        ("github", &["REGISTRY_TOKEN: ${{ secrets.REGISTRY_TOKEN }}", "SLACK_WEBHOOK: ${{ secrets.SLACK_WEBHOOK }}"]),
        ("gitlab", &["#   REGISTRY_TOKEN, SLACK_WEBHOOK"]),
        (
            "jenkins",
            &[
                "string(credentialsId: 'REGISTRY_TOKEN', variable: 'REGISTRY_TOKEN')",
                "string(credentialsId: 'SLACK_WEBHOOK', variable: 'SLACK_WEBHOOK')",
            ],
        ),
        ("circleci", &["context: [capstan-deploy]", "#   REGISTRY_TOKEN, SLACK_WEBHOOK"]),
    ];
    for (platform, refs) in expected {
        let out = ci(&p, platform).stdout.clone();
        for r in refs {
            assert!(out.contains(r), "{platform}: missing {r}\n{out}");
        }
        assert!(!out.contains("tok-4f9a1c77e2") && !out.contains("hook-8d2e5b31aa"), "{platform} leaks a value\n{out}");
    }
    // Without secrets, no secret plumbing at all.
    let simple = Playbook::new(SIMPLE);
    assert!(!ci(&simple, "github").stdout.contains("secrets."));
    assert!(!ci(&simple, "jenkins").stdout.contains("withCredentials"));
    assert!(!ci(&simple, "circleci").stdout.contains("context:"));
}

#[test]
fn output_flag_writes_the_file_and_nothing_to_stdout() {
    let p = Playbook::new(&fixture());
    let stdout = ci(&p, "gitlab").stdout.clone();
    let run = Run::from(p.command("ci").args(["--platform", "gitlab", "-o", "pipeline.yml"]).output().unwrap());
    run.code(0);
    assert_eq!(run.stdout, "");
    assert_eq!(std::fs::read_to_string(p.path("pipeline.yml")).unwrap(), stdout);
}

#[test]
fn output_is_deterministic() {
    let p = Playbook::new(&fixture());
    for platform in ["github", "gitlab", "jenkins", "circleci"] {
        assert_eq!(ci(&p, platform).stdout, ci(&p, platform).stdout, "{platform}");
    }
}

#[test]
fn bad_input_exits_2_with_the_diagnostics_of_list() {
    for source in [Some("phase(\"a\", || {\n    step(\"x\", || 1)\n"), None] {
        let p = Playbook::new(source.unwrap_or(""));
        if source.is_none() {
            std::fs::remove_file(p.path("deploy.rhai")).unwrap();
        }
        let list = Run::from(p.command("list").output().unwrap());
        let ci = Run::from(p.command("ci").args(["--platform", "github"]).output().unwrap());
        ci.code(2);
        assert_eq!(ci.stderr, list.stderr);
        assert!(ci.stderr.contains("deploy.rhai"), "{}", ci.stderr);
        assert_eq!(ci.stdout, "");
    }
    let empty = Playbook::new("let x = 1;");
    let run = Run::from(empty.command("ci").args(["--platform", "gitlab"]).output().unwrap());
    run.code(2);
    assert!(run.stderr.contains("declares no phases"), "{}", run.stderr);
}

/// The GitLab jobs' scripts, run one after the other in the playbook's folder
/// with capstan on PATH, make one run of every phase: the journal carries it
/// from job to job and the gated job gives its approval.
#[test]
fn the_jobs_commands_run_in_order_make_one_complete_run() {
    let p = Playbook::new(&fixture());
    let doc = yaml(&ci(&p, "gitlab").stdout);
    let bin_dir = Path::new(capstan_bin()).parent().unwrap().to_path_buf();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let stages: Vec<String> = doc["stages"].as_sequence().unwrap().iter().map(text).collect();
    let project = p.dir.path();
    for job in &stages {
        let script = format!("set -e\n{}", text(&doc[job.as_str()]["script"]));
        let out = Command::new("sh")
            .arg("-c")
            .arg(&script)
            .current_dir(project)
            .env("PATH", &path)
            .env("NO_COLOR", "1")
            .env_remove("GITHUB_ACTIONS")
            .env("CAPSTAN_PARAM_VERSION", "1.4.2")
            .env("CAPSTAN_PARAM_REPLICAS", "3")
            .env("REGISTRY_TOKEN", "registry-token-value")
            .env("SLACK_WEBHOOK", "slack-webhook-value")
            .output()
            .unwrap();
        Run::from(out).code(0);
        assert!(project.join(format!("reports/junit-{job}.xml")).exists(), "{job} wrote no JUnit report");
    }
    let runs: Vec<PathBuf> =
        std::fs::read_dir(project.join(".capstan-ci/.capstan/runs")).unwrap().flatten().map(|e| e.path()).collect();
    assert_eq!(runs.len(), 1, "the jobs resume one run: {runs:?}");
    let journal = std::fs::read_to_string(runs[0].join("journal.jsonl")).unwrap();
    let events: Vec<serde_json::Value> = journal.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    // Each job replays the earlier phases from the journal: every step ran
    // once, in phase order, and was skipped (its value recorded) afterwards.
    let ran: Vec<String> = events
        .iter()
        .filter(|e| e["event"] == "step_finished" && e["status"] == "ok" && e.get("resumed").is_none())
        .map(|e| format!("{}/{}", e["phase"].as_str().unwrap_or_default(), e["step"].as_str().unwrap_or_default()))
        .collect();
    assert_eq!(
        ran,
        ["build/image", "build/push", "plan/diff", "deploy/gate", "deploy/rollout", "verify/smoke"],
        "{journal}"
    );
    let last = events.iter().rev().find(|e| e["event"] == "run_finished").unwrap();
    assert_eq!(last["status"], "ok");
    assert!(
        journal.contains("approval `production` given by ") && journal.contains(" via --approve production: "),
        "{journal}"
    );
    assert!(journal.contains("\"version\":\"1.4.2\""), "the run keeps the params of the first job");
    // A value computed in the build job reaches the verify job.
    let smoke: String = std::fs::read_dir(runs[0].join("steps"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with("-smoke.log"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect();
    assert!(smoke.contains("smoke registry.example/app:1.4.2"), "the smoke step's log: {smoke:?}");
    // Each job's JUnit file reports its own phase's steps as run and the
    // replayed ones as skipped, so no step counts twice.
    let verify = std::fs::read_to_string(project.join("reports/junit-verify.xml")).unwrap();
    assert!(verify.contains("name=\"smoke\""), "{verify}");
    assert!(!verify.contains("<failure"), "{verify}");
    assert_eq!(verify.matches("<skipped").count(), 5, "the five earlier steps are skipped: {verify}");
}

/// Jenkins has no linter that runs here and `CircleCI`'s schema checks only
/// the shape: their output is pinned. `CAPSTAN_BLESS=1` rewrites the golden
/// files.
#[test]
fn jenkins_and_circleci_match_the_golden_files() {
    let version = env!("CARGO_PKG_VERSION");
    let mut failures = Vec::new();
    for (platform, golden) in
        [("jenkins", "tests/golden/ci/jenkins/Jenkinsfile"), ("circleci", "tests/golden/ci/circleci/config.yml")]
    {
        let out = Command::new(capstan_bin())
            .current_dir(repo_root())
            .args(["ci", FIXTURE, "--platform", platform])
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        let run = Run::from(out);
        run.code(0);
        // The version is the only thing a release changes.
        let actual = run.stdout.replace(version, "{{version}}");
        let path = repo_root().join(golden);
        if std::env::var_os("CAPSTAN_BLESS").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &actual).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_default();
        if expected != actual {
            failures.push(format!(
                "--- {golden}\n+++ capstan ci {FIXTURE} --platform {platform}\n{}",
                diff(&expected, &actual)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{}\nIf the change is intended, rewrite the golden files:\n  CAPSTAN_BLESS=1 cargo test --test integration pipelines::",
        failures.join("\n")
    );
}

/// A line diff with three lines of context around each change.
fn diff(expected: &str, actual: &str) -> String {
    let a: Vec<&str> = expected.lines().collect();
    let b: Vec<&str> = actual.lines().collect();
    // Longest common subsequence table, from the end.
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] { lcs[i + 1][j + 1] + 1 } else { lcs[i + 1][j].max(lcs[i][j + 1]) };
        }
    }
    let mut ops: Vec<(char, &str)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            ops.push((' ', a[i]));
            i += 1;
            j += 1;
        } else if j < b.len() && (i == a.len() || lcs[i][j + 1] > lcs[i + 1][j]) {
            ops.push(('+', b[j]));
            j += 1;
        } else {
            ops.push(('-', a[i]));
            i += 1;
        }
    }
    let near = |k: usize| ops.iter().enumerate().any(|(n, (op, _))| *op != ' ' && n.abs_diff(k) <= 3);
    let mut out = String::new();
    let mut skipped = false;
    for (k, (op, line)) in ops.iter().enumerate() {
        if near(k) {
            if skipped {
                out.push_str("@@\n");
                skipped = false;
            }
            out.push(*op);
            out.push_str(line);
            out.push('\n');
        } else {
            skipped = true;
        }
    }
    out
}

/// A playbook with everything a fresh runner needs: a saved plan as an
/// artifact, a tool the default image lacks, a lock, an environment param.
const FRESH: &str = r#"
let env = param("env", "staging");
require_tools(["terraform", "git"]);
phase("plan", #{ artifacts: ["infra/capstan.tfplan", "dist/"] }, || {
    lock("deploy");
    step("init", || terraform::init("infra"));
    step("plan", || terraform::plan("infra"));
});
phase("apply", || { step("apply", || terraform::apply("infra", #{ plan_file: "capstan.tfplan" })); });
"#;

/// Every kind of pipeline `capstan ci` writes for such a playbook, with the
/// default install and image and with chosen ones, passes the platform's
/// linter or schema.
#[test]
fn fresh_runner_pipelines_pass_the_validators() {
    let p = Playbook::new(FRESH);
    let variants: [&[&str]; 3] = [
        &[],
        &["--install", "curl -fsSL https://example.com/capstan.tgz | tar -xz -C /usr/local/bin"],
        &["--install", ""],
    ];
    for (n, extra) in variants.iter().enumerate() {
        let checks: [(&str, String, &[&str]); 3] = [
            ("github", format!("gh{n}.yml"), &["actionlint", "-no-color"]),
            ("gitlab", format!("gl{n}.yml"), &["check-jsonschema", "--builtin-schema", "vendor.gitlab-ci"]),
            ("circleci", format!("cc{n}.yml"), &["check-jsonschema", "--builtin-schema", "vendor.circle-ci"]),
        ];
        for (platform, file, validator) in &checks {
            let mut args = vec!["--platform", platform, "-o", file.as_str()];
            args.extend(extra.iter());
            if *platform != "github" && n == 2 {
                args.extend(["--image", "registry.example/deploy-tools:1"]);
            }
            let run = Run::from(p.command("ci").args(&args).output().unwrap());
            run.code(0);
            let path = p.path(file);
            let mut validator_args = validator[1..].to_vec();
            validator_args.push(path.to_str().unwrap());
            let check = tool(validator[0], &validator_args);
            let text = std::fs::read_to_string(&path).unwrap();
            assert_eq!(check.code, 0, "{platform} {extra:?}: rejected:\n{}\n{text}", check.all());
        }
    }
}

#[test]
fn artifacts_locks_concurrency_and_tools_reach_every_platform() {
    let p = Playbook::new(FRESH);
    let github = ci(&p, "github").stdout.clone();
    let doc = yaml(&github);
    assert_eq!(doc["concurrency"]["group"].as_str(), Some("capstan-deploy-${{ inputs.env }}"));
    assert_eq!(doc["concurrency"]["cancel-in-progress"].as_bool(), Some(false));
    let upload = |job: &str| {
        doc["jobs"][job]["steps"]
            .as_sequence()
            .unwrap()
            .iter()
            .find(|s| {
                s["uses"].as_str().is_some_and(|u| u.starts_with("actions/upload-artifact"))
                    && s["with"]["name"].as_str().is_some_and(|n| n.starts_with("capstan-workspace"))
            })
            .map(|s| text(&s["with"]["path"]))
            .unwrap()
    };
    assert_eq!(upload("plan").lines().collect::<Vec<_>>(), [".capstan-ci/", "infra/capstan.tfplan", "dist/"]);
    // A job hands on what the jobs before it handed it.
    assert_eq!(upload("apply").lines().collect::<Vec<_>>(), [".capstan-ci/", "infra/capstan.tfplan", "dist/"]);
    assert!(github.contains("--lock deploy"), "{github}");
    assert!(
        github.contains("# The playbook requires tools (require_tools) that the runner ubuntu-latest does not have;")
    );
    assert!(github.contains("#   terraform\n"), "git is on the runner: {github}");
    assert!(github.contains("run: cargo install capstan-cli --version "), "{github}");

    let gitlab = yaml(&ci(&p, "gitlab").stdout);
    for job in ["plan", "apply"] {
        assert_eq!(gitlab[job]["resource_group"].as_str(), Some("capstan-deploy-$CAPSTAN_PARAM_ENV"));
        let paths: Vec<String> = gitlab[job]["artifacts"]["paths"].as_sequence().unwrap().iter().map(text).collect();
        assert_eq!(paths, [".capstan-ci/", "infra/capstan.tfplan", "dist/"]);
    }
    let circleci = ci(&p, "circleci").stdout.clone();
    let doc = yaml(&circleci);
    let plan = &doc["workflows"]["deploy"]["jobs"][0]["plan"];
    assert_eq!(
        plan["serial-group"].as_str(),
        Some("<< pipeline.project.slug >>/capstan-deploy-<< pipeline.parameters.env >>")
    );
    assert!(circleci.contains("- infra/capstan.tfplan\n"), "{circleci}");
    let jenkins = ci(&p, "jenkins").stdout.clone();
    assert!(jenkins.contains("disableConcurrentBuilds()"), "{jenkins}");
    assert!(
        jenkins.contains("includes: '.capstan-ci/**, infra/capstan.tfplan, infra/capstan.tfplan/**, dist/**'"),
        "{jenkins}"
    );

    // A chosen image is the user's word: no note; an option the platform
    // cannot use is refused.
    let chosen = Run::from(
        p.command("ci").args(["--platform", "gitlab", "--image", "hashicorp/terraform:1.11"]).output().unwrap(),
    );
    chosen.code(0);
    assert!(chosen.stdout.contains("  image: hashicorp/terraform:1.11\n") && !chosen.stdout.contains("require_tools"));
    let refused = Run::from(p.command("ci").args(["--platform", "github", "--image", "x"]).output().unwrap());
    refused.code(2);
    assert!(refused.stderr.contains("--image is for GitLab and CircleCI"), "{}", refused.stderr);
    let escaping = Playbook::new(r#"phase("a", #{ artifacts: ["../outside"] }, || {});"#);
    let run = Run::from(escaping.command("ci").args(["--platform", "gitlab"]).output().unwrap());
    run.code(2);
    assert!(
        run.stderr.contains("declares the artifact `../outside`, which is not inside the checkout"),
        "{}",
        run.stderr
    );
}

/// `--state`: the jobs name the run after the pipeline and resume it by
/// that name; no journal folder travels; the store's credentials are named
/// as secrets, never written; a URL with a password or a one-machine
/// `file://` folder is refused.
#[test]
fn with_a_state_store_the_jobs_resume_the_pipelines_run_by_name() {
    let p = Playbook::new(SIMPLE);
    let expected = [
        ("github", "\"gh-$GITHUB_RUN_ID\""),
        ("gitlab", "\"gl-$CI_PIPELINE_ID\""),
        ("jenkins", "\"$BUILD_TAG\""),
        ("circleci", "\"circleci-$CIRCLE_WORKFLOW_ID\""),
    ];
    for (platform, name) in expected {
        let run = Run::from(p.command("ci").args(["--platform", platform, "--state", "secret"]).output().unwrap());
        run.code(0);
        let text = &run.stdout;
        assert!(text.contains(&format!("--run-name {name}")), "{platform}:\n{text}");
        assert!(text.contains(&format!("--resume {name} --to")), "{platform}:\n{text}");
        assert!(!text.contains(".capstan-ci") && !text.contains("--resume last"), "{platform}:\n{text}");
        assert!(text.contains("CAPSTAN_STATE"), "{platform}: the URL is a secret of the platform:\n{text}");
    }
    let url = "postgres://ci@db.internal:5432/capstan";
    let run = Run::from(p.command("ci").args(["--platform", "gitlab", "--state", url]).output().unwrap());
    run.code(0);
    assert!(run.stdout.contains(&format!("--state {url}")), "{}", run.stdout);
    let s3 = "s3://deploys/capstan?region=eu-west-1";
    let run = Run::from(p.command("ci").args(["--platform", "github", "--state", s3]).output().unwrap());
    run.code(0);
    assert!(run.stdout.contains("AWS_SECRET_ACCESS_KEY: ${{ secrets.AWS_SECRET_ACCESS_KEY }}"), "{}", run.stdout);

    let refused = [
        ("postgres://ci:hunter2@db.internal/capstan", "holds a password"),
        ("file:///var/lib/capstan", "one machine's folder"),
        ("ftp://x", "file://, postgres:// or s3://"),
    ];
    for (url, why) in refused {
        let run = Run::from(p.command("ci").args(["--platform", "github", "--state", url]).output().unwrap());
        run.code(2);
        assert!(run.stderr.contains(why), "{url}: {}", run.stderr);
        assert!(!run.all().contains("hunter2"), "{}", run.all());
    }
}
