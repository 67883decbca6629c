//! `capstan check`, `list`, `doc`, `completions`, `--help`.

use crate::support::{capstan_bin, Playbook};

#[test]
fn check_flags_unknown_function_at_its_call() {
    let p = Playbook::new("phase(\"do\", || {\n    let x = 1;\n    shh(\"echo hi\");\n});\n");
    let r = p.check();
    r.code(1);
    assert!(r.stderr.contains("call to unknown function `shh`"), "{}", r.stderr);
    assert!(r.stderr.contains("--> deploy.rhai:3:5"), "{}", r.stderr);
    assert!(r.stderr.contains("3 |     shh(\"echo hi\");\n  |     ^^^"), "{}", r.stderr);
    assert!(r.stderr.contains("did you mean `sh`?"), "{}", r.stderr);
}

#[test]
fn check_is_clean_on_a_good_playbook_and_runs_nothing() {
    let p = Playbook::new(
        r#"
        fn helper(x) { x * 2 }
        let f = |x| x + 1;
        let v = param("version");
        phase("do", || {
            run(["touch", "ran"]);
            let y = f(helper(2));
            info(y.to_string());
        });
        "#,
    );
    let r = p.check();
    r.code(0);
    assert!(!p.path("ran").exists());
}

#[test]
fn check_flags_duplicate_phases_and_unknown_step_options() {
    let r = Playbook::new("phase(\"a\", || {});\nphase(\"a\", || { step(\"s\", #{ retry: 2 }, || 1); });\n").check();
    r.code(1);
    assert!(r.stderr.contains("phase `a` is declared twice (first at line 1)"), "{}", r.stderr);
    assert!(r.stderr.contains("unknown step option `retry`"), "{}", r.stderr);
}

#[test]
fn check_json_and_compile_errors() {
    let r = Playbook::new("phase(\"do\", || nope());").arg("--json").check();
    r.code(1);
    let findings: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(findings[0]["rule"], "unknown-function");
    assert_eq!(findings[0]["line"], 1);
    assert_eq!(findings[0]["column"], 16);

    let r = Playbook::new("phase(\"do\", || { let x = ; });").check();
    r.code(2);
}

#[test]
fn list_shows_phases_params_and_secrets() {
    let p = Playbook::new(
        r#"
        let v = param("version");
        let n = param("replicas", 3);
        let t = secret("TOKEN_FOR_LIST");
        phase("plan", || {});
        phase("do", || {});
        "#,
    );
    let r = crate::support::Run::from(p.command("list").arg("--json").output().unwrap());
    r.code(0);
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(doc["phases"], serde_json::json!(["plan", "do"]));
    assert_eq!(doc["params"][0], serde_json::json!({ "name": "version", "required": true }));
    assert_eq!(doc["params"][1], serde_json::json!({ "name": "replicas", "required": false, "default": 3 }));
    assert_eq!(doc["secrets"], serde_json::json!(["TOKEN_FOR_LIST"]));
}

fn capstan(args: &[&str]) -> crate::support::Run {
    crate::support::Run::from(std::process::Command::new(capstan_bin()).args(args).output().unwrap())
}

#[test]
fn doc_lists_functions_with_signatures() {
    let r = capstan(&["doc"]);
    r.code(0);
    for f in [
        "param(name: &str, default)",
        "step(name: &str, options: Map, body: FnPtr)",
        "run(argv: Array, options: Map) -> Map",
        "require_tools(tools: Array)",
    ] {
        assert!(r.stdout.contains(f), "{f} missing from:\n{}", r.stdout);
    }
    let one = capstan(&["doc", "gate"]);
    one.code(0);
    assert!(one.stdout.contains("Record a gate"), "{}", one.stdout);
    capstan(&["doc", "no_such_fn"]).code(2);
}

#[test]
fn doc_writes_editor_definitions() {
    let dir = tempfile::tempdir().unwrap();
    let r = capstan(&["doc", "--definitions", dir.path().to_str().unwrap()]);
    r.code(0);
    let all: String =
        std::fs::read_dir(dir.path()).unwrap().flatten().map(|e| std::fs::read_to_string(e.path()).unwrap()).collect();
    assert!(all.contains("fn step("), "{all}");
}

#[test]
fn completions_and_help() {
    let r = capstan(&["completions", "bash"]);
    r.code(0);
    assert!(r.stdout.contains("_capstan"), "bash completion function");
    let help = capstan(&["--help"]);
    help.code(0);
    assert!(help.stdout.contains("Examples:") && help.stdout.contains("capstan run deploy.rhai"), "{}", help.stdout);
    let run_help = capstan(&["run", "--help"]);
    assert!(run_help.stdout.contains("--dry-run") && run_help.stdout.contains("Exit codes"), "{}", run_help.stdout);
    let version = capstan(&["--version"]);
    version.code(0);
    assert!(version.stdout.starts_with("capstan "));
    capstan(&["bogus"]).code(2);
}

#[test]
fn check_flags_unknown_namespaced_functions_and_modules() {
    let p = Playbook::new("import \"lib/x\" as x;\nphase(\"do\", || {\n    helm::upgarde(\"a\", \"b\");\n    nosuch::thing();\n    x::anything();\n    terraform::plan(\"infra\");\n});\n")
        .file("lib/x.rhai", "fn anything() { 1 }");
    let r = p.check();
    r.code(1);
    assert!(r.stderr.contains("call to unknown function `helm::upgarde`"), "{}", r.stderr);
    assert!(r.stderr.contains("did you mean `helm::upgrade`?"), "{}", r.stderr);
    assert!(r.stderr.contains("there is no module `nosuch`"), "{}", r.stderr);
    assert!(!r.stderr.contains("x::anything") && !r.stderr.contains("terraform::plan"), "{}", r.stderr);
    assert!(r.stderr.contains("2 findings"), "{}", r.stderr);
}

#[test]
fn doc_covers_namespaced_functions_and_survives_a_closed_pipe() {
    let r = capstan(&["doc", "helm::upgrade"]);
    r.code(0);
    assert!(r.stdout.contains("helm::upgrade(release: &str, chart: &str, options: Map) -> Map"), "{}", r.stdout);
    let all = capstan(&["doc"]);
    for f in ["terraform::plan", "health::probe", "traffic::haproxy", "compliance::secrets", "notify::webhook"] {
        assert!(all.stdout.contains(f), "{f} missing");
    }
    // `capstan doc | head -1`: a closed stdout is not a panic.
    let mut child = std::process::Command::new(capstan_bin())
        .arg("doc")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
}

#[test]
fn output_option_writes_data_to_a_file() {
    let p = Playbook::new(r#"let v = param("version", "1"); phase("do", || info("hi"));"#);
    let r = crate::support::Run::from(p.command("list").args(["--json", "-o", "list.json"]).output().unwrap());
    r.code(0);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(p.path("list.json")).unwrap()).unwrap();
    assert_eq!(doc["phases"], serde_json::json!(["do"]));
    let r = crate::support::Run::from(
        p.command("run").args(["--log-format", "json", "--output", "events.jsonl"]).output().unwrap(),
    );
    r.code(0);
    assert!(r.stdout.is_empty());
    let lines = std::fs::read_to_string(p.path("events.jsonl")).unwrap();
    assert!(lines.lines().all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()));
    assert!(lines.contains("\"event\":\"run_finished\""));
}

#[test]
fn check_reports_bad_duration_literals_and_run_refuses_them() {
    let p = Playbook::new(concat!(
        "import \"capstan/canary\" as canary;\n",
        "phase(\"one\", || { step(\"first\", || run([\"touch\", \"first-ran\"])); });\n",
        "phase(\"two\", || {\n",
        "    step(\"migrate\", #{ retries: 2, timeout: \"5 minuts\" }, || 1);\n",
        "    health::wait(\"http://127.0.0.1:1/\", #{ within: \"2m\", interval: \"soon\" });\n",
        "    canary::run(#{ ladder: [5], hold: \"10 mins\", interval: \"30x\", set_weight: |w| w, analyze: || 1 });\n",
        "    let later = \"5 minuts\";\n",
        "    step(\"computed\", #{ retry_delay: later }, || 1);\n",
        "});\n",
    ));
    let r = p.check();
    r.code(1);
    assert!(r.stderr.contains("error: step option `timeout`: \"5 minuts\" is not a duration"), "{}", r.stderr);
    assert!(r.stderr.contains("--> deploy.rhai:4:45"), "{}", r.stderr);
    let caret = format!("  | {}{}\n", " ".repeat(44), "^".repeat(10));
    assert!(r.stderr.contains(&caret), "the caret spans the literal: {}", r.stderr);
    assert!(r.stderr.contains("hint: write a duration like \"30s\", \"5m\" or \"1h 30m\""), "{}", r.stderr);
    assert!(r.stderr.contains("health::wait option `interval`: \"soon\" is not a duration"), "{}", r.stderr);
    assert!(r.stderr.contains("canary::run option `interval`: \"30x\" is not a duration"), "{}", r.stderr);
    assert!(!r.stderr.contains("`within`") && !r.stderr.contains("`hold`"), "valid literals pass: {}", r.stderr);
    assert!(!r.stderr.contains("retry_delay"), "a computed value is the run's to judge: {}", r.stderr);
    assert!(r.stderr.contains("3 findings"), "{}", r.stderr);

    let r = Playbook::new("phase(\"do\", || step(\"s\", #{ timeout: \"5 minuts\" }, || 1));").arg("--json").check();
    r.code(1);
    let findings: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(findings[0]["rule"], "invalid-duration");
    assert_eq!(findings[0]["severity"], "error");
    assert_eq!((findings[0]["line"].as_u64(), findings[0]["column"].as_u64()), (Some(1), Some(38)));

    // `run` refuses before the first phase changes anything.
    let r = p.run();
    r.code(2);
    assert!(r.stderr.contains("--> deploy.rhai:4:45"), "{}", r.stderr);
    assert!(!p.path("first-ran").exists(), "nothing may run");
    assert!(!r.stdout.contains("first") && !r.stderr.contains("✓ first"), "{}\n{}", r.stdout, r.stderr);
}

#[test]
fn check_reports_a_slash_in_a_step_name_and_run_refuses_it() {
    let p = Playbook::new(
        "phase(\"do\", || {\n    step(\"first\", || run([\"touch\", \"first-ran\"]));\n    step(\"db/migrate\", || 1);\n});\n",
    );
    let r = p.check();
    r.code(1);
    assert!(r.stderr.contains("error: step name \"db/migrate\" contains `/`"), "{}", r.stderr);
    assert!(r.stderr.contains("--> deploy.rhai:3:10"), "{}", r.stderr);
    assert!(r.stderr.contains("hint: `/` separates nested steps"), "{}", r.stderr);
    let r = p.run();
    r.code(2);
    assert!(r.stderr.contains("step name \"db/migrate\" contains `/`"), "{}", r.stderr);
    assert!(!p.path("first-ran").exists(), "nothing may run");
}

#[test]
fn check_warns_when_a_script_function_hides_a_primitive() {
    let p = Playbook::new(concat!(
        "import \"lib/tools\" as tools;\n",
        "import \"capstan/canary\" as canary;\n",
        "fn info(msg) { print(msg) }\n",
        "fn deploy(a, b) { a + b }\n",
        "phase(\"do\", || tools::build());\n",
    ))
    .file("lib/tools.rhai", "fn run(argv) { argv }\nfn sh(a, b, c) { a }\nfn build() { run([\"make\"]) }\n");
    let r = p.check();
    r.code(0);
    assert!(r.stderr.contains("warning: function `info` hides the primitive `info(message)`"), "{}", r.stderr);
    assert!(r.stderr.contains("--> deploy.rhai:3:4"), "{}", r.stderr);
    assert!(r.stderr.contains("warning: function `run` hides the primitive `run(argv)`"), "{}", r.stderr);
    assert!(r.stderr.contains("--> lib/tools.rhai:1:4"), "{}", r.stderr);
    assert!(!r.stderr.contains("`sh`") && !r.stderr.contains("`deploy`"), "{}", r.stderr);
    assert!(r.stderr.contains("1 playbook checked, 2 warnings"), "{}", r.stderr);

    let r = p.arg("--json").check();
    r.code(0);
    let findings: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(findings.as_array().map(Vec::len), Some(2), "{findings}");
    assert!(findings
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["severity"] == "warning" && f["rule"] == "shadowed-primitive"));
}
