//! The top level of a playbook declares; it does not deploy. A call that
//! changes the world there (`run`, `sh`, `docker::`, `helm::upgrade`...) is
//! refused by `check` and by `run` before anything runs.

use crate::support::Playbook;

const MUTATES_AT_TOP: &str = r#"info("the top level ran");
let version = fs::read("VERSION");
if version != "" {
    sh("touch made-at-top-level");
}
phase("do", || sh("touch made-in-phase"));
"#;

#[test]
fn run_refuses_a_top_level_mutation_before_anything_runs() {
    let p = Playbook::new(MUTATES_AT_TOP).file("VERSION", "1.2.3");
    let r = p.run();
    r.code(2);
    assert!(!p.path("made-at-top-level").exists());
    assert!(!p.path("made-in-phase").exists());
    assert!(!r.all().contains("the top level ran"), "{}", r.all());
    assert!(r.stderr.contains("error: `sh` changes the world at the top level of the playbook"), "{}", r.stderr);
    assert!(r.stderr.contains("deploy.rhai:4:5"), "{}", r.stderr);
    assert!(r.stderr.contains("= hint: move it into a phase"), "{}", r.stderr);
}

#[test]
fn check_reports_top_level_mutations_in_the_playbook_and_its_modules() {
    let p = Playbook::new(
        r#"import "lib/setup" as setup;
fn prepare() { docker::build(".", #{}) }
prepare();
for host in ["a", "b"] { run(["deploy", host]); }
run(["git", "rev-parse", "HEAD"], #{ read_only: true });
phase("do", || helm::upgrade("web", "charts/web", #{}));
"#,
    )
    .file("lib/setup.rhai", "kubectl::apply(\"k8s\", #{});\nfn later() { sh(\"ok in a function\") }\n");
    let r = p.check();
    r.code(1);
    for (site, name) in
        [("lib/setup.rhai:1:1", "kubectl::apply"), ("deploy.rhai:2:16", "docker::build"), ("deploy.rhai:4:26", "run")]
    {
        assert!(
            r.stderr.contains(&format!("`{name}` changes the world at the top level of the playbook")),
            "{name}: {}",
            r.stderr
        );
        assert!(r.stderr.contains(site), "{site}: {}", r.stderr);
    }
    assert_eq!(r.stderr.matches("changes the world at the top level").count(), 3, "{}", r.stderr);
}

#[test]
fn read_only_calls_and_phases_stay_allowed() {
    let p = Playbook::new(
        r#"let notes = fs::read("VERSION");
let home = env("HOME");
let head = run(["echo", "abc"], #{ read_only: true });
fn deploy() { sh("touch deployed") }
phase("do", || { deploy(); run(["touch", "ran"]); });
"#,
    )
    .file("VERSION", "1.2.3");
    p.check().code(0);
    p.run().code(0);
    assert!(p.path("deployed").exists());
    assert!(p.path("ran").exists());
}
