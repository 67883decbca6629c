//! `capstan ci`'s fail-fast shape: phases marked `check: true` become jobs
//! that run at once and that the first other phase's job needs; the jobs
//! cache the stack's dependencies keyed on its lock file. The pipelines pass
//! actionlint and GitLab's and `CircleCI`'s schemas, and the GitLab jobs run
//! in order make the checks' own runs and one run of the other phases.

use std::path::Path;
use std::process::Command;

use serde_yaml_ng::Value;

use crate::support::{capstan_bin, Playbook, Run};

/// Three checks, then a build whose value the deploy uses.
const CHECKED: &str = r#"
let version = param("version", "1.0");
phase("lint", #{ check: true }, || { step("clippy", || run(["echo", "linted"])); });
phase("unit", #{ check: true }, || { step("tests", || run(["echo", "tested"])); });
phase("scan", #{ check: true }, || {
    step("audit", || run(["sh", "-c", "echo scanned; test -z \"$FAIL_SCAN\""]));
});
// Set in the build job, read in the deploy job (replayed from the journal).
let image = "";
phase("build", || { image = step("image", || `registry.example/app:${version}@sha256:0123`); });
phase("deploy", || { step("rollout", || run(["echo", `rollout ${image}`])); });
"#;

fn rust_repo(source: &str) -> Playbook {
    Playbook::new(source)
        .file("Cargo.toml", "[package]\nname = \"app\"\nversion = \"0.1.0\"\n")
        .file("Cargo.lock", "version = 4\n")
}

fn ci(p: &Playbook, platform: &str, extra: &[&str]) -> Run {
    let run = Run::from(p.command("ci").args(["--platform", platform]).args(extra).output().expect("run capstan ci"));
    run.code(0);
    run
}

fn yaml(text: &str) -> Value {
    serde_yaml_ng::from_str(text).unwrap_or_else(|e| panic!("not YAML ({e}):\n{text}"))
}

fn names(v: &Value) -> Vec<String> {
    match v {
        Value::Sequence(items) => items.iter().map(|i| i.as_str().expect("a name").to_string()).collect(),
        Value::String(s) => vec![s.clone()],
        other => panic!("not a list of names: {other:?}"),
    }
}

fn validate(p: &Playbook, platform: &str, extra: &[&str]) {
    let run = ci(p, platform, extra);
    let file = p.path(&format!("pipeline-{platform}.yml"));
    std::fs::write(&file, &run.stdout).unwrap();
    let file = file.to_str().unwrap();
    let (program, args): (&str, Vec<&str>) = match platform {
        "github" => ("actionlint", vec!["-no-color", file]),
        "gitlab" => ("check-jsonschema", vec!["--builtin-schema", "vendor.gitlab-ci", file]),
        _ => ("check-jsonschema", vec!["--builtin-schema", "vendor.circle-ci", file]),
    };
    let out = Command::new(program)
        .args(&args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program} ({e}): scripts/install-test-deps installs it"));
    let check = Run::from(out);
    assert_eq!(check.code, 0, "{program} rejects the {platform} pipeline:\n{}\n{}", check.all(), run.stdout);
}

#[test]
fn checks_are_parallel_jobs_the_first_phase_needs_and_the_chain_starts_after_them() {
    let p = rust_repo(CHECKED);
    let gh = yaml(&ci(&p, "github", &[]).stdout);
    let jobs = gh["jobs"].as_mapping().unwrap();
    let ids: Vec<&str> = jobs.keys().map(|k| k.as_str().unwrap()).collect();
    assert_eq!(ids, ["lint", "unit", "scan", "build", "deploy"]);
    for check in ["lint", "unit", "scan"] {
        assert!(gh["jobs"][check].get("needs").is_none(), "check {check} waits for nothing");
        let run = serde_yaml_ng::to_string(&gh["jobs"][check]["steps"]).unwrap();
        assert!(
            run.contains(&format!("--phase {check} --journal-dir .capstan-check-{check} ")),
            "a check is a run of its own:\n{run}"
        );
        assert!(!run.contains(".capstan-ci"), "a check touches no journal of the chain:\n{run}");
    }
    assert_eq!(names(&gh["jobs"]["build"]["needs"]), ["lint", "unit", "scan"]);
    assert_eq!(names(&gh["jobs"]["deploy"]["needs"]), ["build"]);
    let deploy = serde_yaml_ng::to_string(&gh["jobs"]["deploy"]["steps"]).unwrap();
    assert!(deploy.contains("--resume last --from build --to deploy"), "{deploy}");

    let gl = yaml(&ci(&p, "gitlab", &[]).stdout);
    assert_eq!(names(&gl["stages"]), ["checks", "build", "deploy"]);
    for check in ["lint", "unit", "scan"] {
        assert_eq!(gl[check]["stage"], "checks");
        assert!(names(&gl[check]["needs"]).is_empty(), "check {check} starts at once");
        assert!(gl[check].get("resource_group").is_none(), "checks do not wait for each other");
    }
    assert_eq!(names(&gl["build"]["needs"]), ["lint", "unit", "scan"]);
    assert_eq!(names(&gl["deploy"]["needs"]), ["build"]);

    let cc = yaml(&ci(&p, "circleci", &[]).stdout);
    let workflow = serde_yaml_ng::to_string(&cc["workflows"]["deploy"]["jobs"]).unwrap();
    assert!(workflow.contains("requires:\n    - lint\n    - unit\n    - scan"), "{workflow}");

    let jenkins = ci(&p, "jenkins", &[]).stdout;
    let parallel = jenkins.find("parallel {").expect("a parallel stage");
    assert!(jenkins.contains("failFast true"), "{jenkins}");
    assert!(jenkins.find("stage('build')").unwrap() > parallel, "the build stage comes after the checks");
}

#[test]
fn dependency_caches_are_keyed_on_the_lock_file_present() {
    let p = rust_repo(CHECKED);
    let gh = ci(&p, "github", &[]).stdout;
    assert!(gh.contains("key: ${{ runner.os }}-cargo-${{ hashFiles('**/Cargo.lock') }}"), "{gh}");
    assert!(gh.contains("~/.cargo/registry"), "{gh}");
    let gl = yaml(&ci(&p, "gitlab", &[]).stdout);
    let cache = &gl["build"]["cache"];
    assert_eq!(names(&cache[1]["key"]["files"]), ["Cargo.lock"]);
    assert_eq!(cache[0]["key"], "capstan-$CAPSTAN_VERSION", "the job's cache keeps capstan's own");
    assert_eq!(gl["variables"]["CARGO_HOME"], "$CI_PROJECT_DIR/.cargo");
    let cc = ci(&p, "circleci", &[]).stdout;
    assert!(cc.contains("- 'cargo-v1-{{ checksum \"Cargo.lock\" }}'"), "{cc}");

    // Another stack, another lock file.
    let npm = Playbook::new(CHECKED)
        .file("package.json", "{\"name\": \"web\", \"scripts\": {\"test\": \"jest\"}}")
        .file("package-lock.json", "{}");
    let gh = ci(&npm, "github", &[]).stdout;
    assert!(gh.contains("${{ runner.os }}-npm-${{ hashFiles('**/package-lock.json') }}"), "{gh}");
    assert!(!gh.contains("cargo-"), "{gh}");
    let gl = yaml(&ci(&npm, "gitlab", &[]).stdout);
    assert_eq!(names(&gl["lint"]["cache"][1]["key"]["files"]), ["package-lock.json"]);

    // No lock file, no dependency cache; without checks the chain is as before.
    let bare = Playbook::new(CHECKED);
    assert!(!ci(&bare, "github", &[]).stdout.contains("dependencies"));
    let unchecked = rust_repo(&CHECKED.replace("#{ check: true }, ", ""));
    let gh = ci(&unchecked, "github", &[]).stdout;
    assert!(!gh.contains("dependencies") && !gh.contains("--from"), "{gh}");
}

#[test]
fn pipelines_with_checks_pass_the_validators() {
    let p = rust_repo(CHECKED).file("requirements.txt", "");
    for extra in [&[][..], &["--state", "secret"][..]] {
        for platform in ["github", "gitlab", "circleci"] {
            validate(&p, platform, extra);
        }
    }
    let python = Playbook::new(CHECKED).file("requirements.txt", "flask\n").file("requirements-dev.txt", "pytest\n");
    for platform in ["github", "gitlab", "circleci"] {
        validate(&python, platform, &[]);
    }
}

#[test]
fn checks_that_come_late_or_wait_for_approval_are_refused() {
    let late = Playbook::new(
        r#"
phase("build", || { step("b", || 1); });
phase("lint", #{ check: true }, || { step("l", || 1); });
"#,
    );
    let run = Run::from(late.command("ci").args(["--platform", "github"]).output().unwrap());
    run.code(2);
    assert!(run.stderr.contains("check phase `lint` comes after phase `build`"), "{}", run.stderr);
    let gated = Playbook::new(r#"phase("lint", #{ check: true }, || { approve("prod"); });"#);
    let run = Run::from(gated.command("ci").args(["--platform", "gitlab"]).output().unwrap());
    run.code(2);
    assert!(run.stderr.contains("check phase `lint` waits for an approval"), "{}", run.stderr);
    // `capstan check` knows the option; a wrong value is an error.
    rust_repo(CHECKED).check().code(0);
    let bad = Playbook::new(r#"phase("lint", #{ check: "yes" }, || {});"#);
    let run = Run::from(bad.command("run").output().unwrap());
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("phase option `check` must be true or false"), "{}", run.stderr);
}

/// Each GitLab job's script in the playbook's folder, the capstan under
/// test on PATH, with `env`; the job's exit code.
fn job(p: &Playbook, doc: &Value, name: &str, env: &[(&str, &str)]) -> Run {
    let bin_dir = Path::new(capstan_bin()).parent().unwrap().to_path_buf();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let script = format!("set -e\n{}", names(&doc[name]["script"]).join("\n"));
    let mut c = Command::new("sh");
    c.arg("-c").arg(&script).current_dir(p.dir.path()).env("PATH", &path).env("NO_COLOR", "1");
    c.env_remove("GITHUB_ACTIONS").env("CAPSTAN_PARAM_VERSION", "2.0");
    for (k, v) in env {
        c.env(k, v);
    }
    Run::from(c.output().unwrap())
}

#[test]
fn the_gitlab_jobs_run_in_order_check_then_build_once_and_deploy_that_artifact() {
    let p = Playbook::new(CHECKED);
    let doc = yaml(&ci(&p, "gitlab", &["--install", "capstan --version"]).stdout);
    // A failing check fails its job: the build job, which needs it, never starts.
    let failed = job(&p, &doc, "scan", &[("FAIL_SCAN", "1")]);
    assert_ne!(failed.code, 0, "{}", failed.all());
    for name in ["lint", "unit", "scan", "build", "deploy"] {
        job(&p, &doc, name, &[]).code(0);
        assert!(p.path(&format!("reports/junit-{name}.xml")).exists(), "{name} wrote no JUnit report");
    }
    let runs = |dir: &str| -> Vec<std::path::PathBuf> {
        std::fs::read_dir(p.path(dir).join(".capstan/runs")).unwrap().flatten().map(|e| e.path()).collect()
    };
    let chain = runs(".capstan-ci");
    assert_eq!(chain.len(), 1, "build and deploy are one run: {chain:?}");
    let journal = std::fs::read_to_string(chain[0].join("journal.jsonl")).unwrap();
    for check in ["lint", "unit", "scan"] {
        assert!(!journal.contains(&format!("\"phase\":\"{check}\"")), "the chain runs no check:\n{journal}");
        // The failed attempt and the passing one: each check run is its own.
        assert!(!runs(&format!(".capstan-check-{check}")).is_empty());
    }
    // The deploy job replayed the build's recorded value: the image built
    // once, by digest, is the one rolled out.
    let rollout = step_log(&chain[0], "rollout");
    assert!(rollout.contains("rollout registry.example/app:2.0@sha256:0123"), "{rollout:?}");
}

/// The layer cache of a build on a fresh runner: an image pulled from the
/// registry (the last one pushed) serves as the build's cache only when
/// `docker::build` names it in `cache_from`.
#[test]
fn docker_build_reuses_the_layers_of_an_image_named_in_cache_from() {
    use crate::support::daemons::{require, shared_dockerd, Registry};
    let _exclusive = crate::support::exclusive();
    let dockerd = shared_dockerd().expect("dockerd must run here; the reason is printed above");
    let registry = Registry::start();
    let image = format!("{}/capstan/cached", registry.addr);
    let p = Playbook::new(&format!(
        r#"
        phase("do", || {{
            docker::build("app", #{{ tags: ["{image}:v1"] }});
            let pushed = docker::push("{image}:v1");
            run(["docker", "rmi", "{image}:v1"]);
            docker::pull(pushed.reference);
            step("plain", || docker::build("app", #{{ tags: ["{image}:v2"] }}));
            run(["docker", "rmi", "{image}:v2"]);
            step("cached", || docker::build("app", #{{ tags: ["{image}:v3"], cache_from: [pushed.reference] }}));
        }});
        "#
    ))
    // A layer no other test builds: the shared daemon's own cache cannot serve it.
    .file("app/stamp", &format!("{image} {:?}", std::time::SystemTime::now()))
    .file(
        "app/Dockerfile",
        "FROM scratch\nCOPY stamp /stamp\nCOPY busybox /bin/busybox\nENTRYPOINT [\"/bin/busybox\"]\n",
    );
    std::fs::copy(require("busybox"), p.path("app/busybox")).unwrap();
    let mut cmd = p.command("run");
    cmd.args(["--log-format", "plain"]);
    for (k, v) in dockerd.envs() {
        cmd.env(k, v);
    }
    let r = Run::from(cmd.output().unwrap());
    r.code(0);
    let run = std::fs::read_dir(p.path(".capstan/runs")).unwrap().flatten().next().unwrap().path();
    let log = |step: &str| step_log(&run, step);
    assert!(log("plain").contains("COPY busybox"), "the build's output is in its step's log:\n{}", log("plain"));
    assert!(!log("plain").contains("Using cache"), "a pulled image is no cache unless named:\n{}", log("plain"));
    assert!(log("cached").contains("Using cache"), "{}", log("cached"));
}

/// The log of the step named `step` in the run folder `run`.
fn step_log(run: &Path, step: &str) -> String {
    std::fs::read_dir(run.join("steps"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(&format!("-{step}.log")))
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect()
}
