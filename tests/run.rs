//! Running phases and steps: order, retries, undo, exit codes, selection.

use crate::support::{named, Playbook};

#[test]
fn phases_run_in_declaration_order_and_steps_return_values() {
    let p = Playbook::new(
        r#"
        let log = [];
        phase("b", || { log.push("b"); });
        phase("a", || {
            let v = step("compute", || 40 + 2);
            log.push(`a${v}`);
            info(log);
        });
        "#,
    );
    let r = p.run_json();
    r.code(0);
    let events = r.events();
    let logs = named(&events, "log");
    assert_eq!(logs[0]["message"], r#"["b", "a42"]"#);
    let phases: Vec<_> =
        named(&events, "phase_started").iter().map(|e| e["phase"].as_str().unwrap().to_string()).collect();
    assert_eq!(phases, ["b", "a"]);
    let finished = named(&events, "step_finished");
    assert_eq!(finished[0]["value"], 42);
}

#[test]
fn retries_until_success_record_attempts() {
    let p = Playbook::new(
        r#"
        let n = 0;
        phase("do", || {
            step("flaky", #{ retries: 2, retry_delay: "10ms" }, || {
                n += 1;
                if n < 3 { fail(`attempt ${n}`); }
                "ok"
            });
        });
        "#,
    );
    let r = p.run_json();
    r.code(0);
    let events = r.events();
    let done = named(&events, "step_finished");
    assert_eq!(done.len(), 1);
    assert_eq!(done[0]["status"], "ok");
    assert_eq!(done[0]["attempts"], 3);
    let warnings: Vec<_> = named(&events, "log").into_iter().filter(|e| e["level"] == "warn").collect();
    assert_eq!(warnings.len(), 2, "one warning per failed attempt");
}

#[test]
fn retry_delay_doubles() {
    let p = Playbook::new(
        r#"
        phase("do", || {
            step("never", #{ retries: 2, retry_delay: "100ms" }, || fail("no"));
        });
        "#,
    );
    let r = p.run_json();
    r.code(1);
    let events = r.events();
    let warnings: Vec<String> = named(&events, "log")
        .iter()
        .filter(|e| e["level"] == "warn")
        .map(|e| e["message"].as_str().unwrap().to_string())
        .collect();
    assert!(warnings[0].ends_with("retrying in 100ms"), "{warnings:?}");
    assert!(warnings[1].ends_with("retrying in 200ms"), "{warnings:?}");
    let done = named(&events, "step_finished");
    assert!(done[0]["duration_ms"].as_u64().unwrap() >= 300);
}

const SAGA: &str = r#"
let out = param("out");
phase("do", || {
    step("one", #{ undo: || sh(`echo undo-one >> ${out}`) }, || sh(`echo one >> ${out}`));
    step("two", #{ undo: || sh(`echo undo-two >> ${out}`) }, || sh(`echo two >> ${out}`));
    step("skipped-undo", #{ when: false, undo: || sh(`echo never >> ${out}`) }, || 1);
    step("three", #{ retries: 1, retry_delay: "10ms" }, || run(["false"]));
    step("four", || sh(`echo four >> ${out}`));
});
on_failure(|err| sh(`echo "failure: ${err.step}" >> ${out}`));
"#;

#[test]
fn failure_runs_undo_newest_first_then_on_failure() {
    let p = Playbook::new(SAGA);
    let out = p.path("out.txt");
    let p = p.args(["--param", &format!("out={}", out.display())]);
    let r = p.run_json();
    r.code(1);
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(text, "one\ntwo\nundo-two\nundo-one\nfailure: three\n");
    let events = r.events();
    let undone: Vec<_> =
        named(&events, "undo_finished").iter().map(|e| e["step"].as_str().unwrap().to_string()).collect();
    assert_eq!(undone, ["two", "one"]);
    let finished = named(&events, "run_finished");
    assert_eq!(finished[0]["status"], "failed");
    assert_eq!(finished[0]["exit_code"], 1);
    let three = named(&events, "step_finished").into_iter().find(|e| e["step"] == "three").unwrap().clone();
    assert_eq!(three["attempts"], 2);
    assert!(three["error"].as_str().unwrap().contains("`false` failed with exit status 1"), "{three}");
}

#[test]
fn failing_undo_exits_4_and_still_runs_older_undos() {
    let p = Playbook::new(
        r#"
        let out = param("out");
        phase("do", || {
            step("one", #{ undo: || sh(`echo undo-one >> ${out}`) }, || 1);
            step("two", #{ undo: || run(["false"]) }, || 2);
            step("three", || fail("boom"));
        });
        "#,
    );
    let out = p.path("out.txt");
    let p = p.args(["--param", &format!("out={}", out.display())]);
    let r = p.run();
    r.code(4);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "undo-one\n");
    assert!(r.stderr.contains("an undo failed too"), "{}", r.stderr);
}

#[test]
fn missing_param_exits_2_and_nothing_runs() {
    let p = Playbook::new(
        r#"
        let version = param("version");
        phase("do", || { step("touch", || run(["touch", "ran"])); });
        "#,
    );
    let r = p.run();
    r.code(2);
    assert!(r.stderr.contains("missing required param `version`"), "{}", r.stderr);
    assert!(r.stderr.contains("--param version=VALUE"), "{}", r.stderr);
    assert!(!p.path("ran").exists());
    assert!(!p.path(".capstan").exists(), "no journal for a run that never started");
}

#[test]
fn params_are_typed_from_defaults_and_files() {
    let p = Playbook::new(
        r#"
        let n = param("replicas", 1);
        let flag = param("canary", false);
        let tags = param("tags");
        phase("do", || { info(`${type_of(n)} ${n + 1} ${flag} ${tags.len()} ${tags[1]}`); });
        "#,
    )
    .file("params.yaml", "tags: [a, b, c]\nreplicas: 7\n");
    let r = p.args(["--params-file", "params.yaml", "--param", "canary=true", "--param", "replicas=4"]).run_json();
    r.code(0);
    let events = r.events();
    assert_eq!(named(&events, "log")[0]["message"], "i64 5 true 3 b");
}

#[test]
fn bad_param_value_is_a_usage_error() {
    let p = Playbook::new(r#"let n = param("replicas", 1); phase("do", || {});"#).args(["--param", "replicas=many"]);
    let r = p.run();
    r.code(2);
    assert!(r.stderr.contains("param `replicas` expects an integer"), "{}", r.stderr);
}

#[test]
fn params_file_values_are_checked_against_the_default_type() {
    let src = r#"let n = param("replicas", 2); let on = param("canary", false);
phase("do", || fs::write("sum.txt", `${n + 1} ${on}`));"#;
    for (file, given) in [
        ("replicas: \"3\"\n", "got the string \"3\""),
        ("replicas: 3.5\n", "got the number 3.5"),
        ("canary: \"yes\"\n", "got the string \"yes\""),
    ] {
        let p = Playbook::new(src).file("params.yaml", file).args(["--params-file", "params.yaml"]);
        let r = p.run();
        r.code(2);
        assert!(r.stderr.contains("in params.yaml expects"), "{file}: {}", r.stderr);
        assert!(r.stderr.contains(given), "{file}: {}", r.stderr);
        assert!(!p.path("sum.txt").exists(), "nothing ran");
    }
    let p = Playbook::new(src)
        .file("params.json", r#"{"replicas": 3, "canary": true}"#)
        .args(["--params-file", "params.json"]);
    p.run().code(0);
    assert_eq!(std::fs::read_to_string(p.path("sum.txt")).unwrap(), "4 true");
}

#[test]
fn phase_selection_with_phase_from_and_to() {
    let src = r#"
        for name in ["init", "plan", "do", "archive"] { phase(name, || info(`ran`)); }
    "#;
    let phases = |args: &[&str]| {
        let r = Playbook::new(src).args(args.iter().copied()).run_json();
        r.code(0);
        r.events()
            .iter()
            .filter(|e| e["event"] == "phase_started")
            .map(|e| e["phase"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(phases(&[]), ["init", "plan", "do", "archive"]);
    assert_eq!(phases(&["--phase", "plan", "--phase", "archive"]), ["plan", "archive"]);
    assert_eq!(phases(&["--from", "plan", "--to", "do"]), ["plan", "do"]);
    let r = Playbook::new(src).args(["--phase", "deploy"]).run();
    r.code(2);
    assert!(r.stderr.contains("no such phase; its phases are: init, plan, do, archive"), "{}", r.stderr);
}

#[test]
fn duplicate_phase_is_an_error() {
    let r = Playbook::new("phase(\"a\", || {});\nphase(\"a\", || {});\n").run();
    r.code(2);
    assert!(r.stderr.contains("phase `a` is declared twice (first at line 1)"), "{}", r.stderr);
    assert!(r.stderr.contains("deploy.rhai:2:1"), "{}", r.stderr);
}

#[test]
fn allow_failure_and_when_false() {
    let p = Playbook::new(
        r#"
        phase("do", || {
            let v = step("may fail", #{ allow_failure: true }, || fail("tolerated"));
            step("skip me", #{ when: false }, || fail("never runs"));
            step("after", || type_of(v));
        });
        "#,
    );
    let r = p.run_json();
    r.code(0);
    let events = r.events();
    let done = named(&events, "step_finished");
    assert_eq!(done[0]["status"], "failed");
    assert_eq!(done[0]["allow_failure"], true);
    assert_eq!(done[1]["status"], "skipped");
    assert_eq!(done[2]["value"], "()");
}

#[test]
fn nested_steps_have_paths() {
    let r = Playbook::new(r#"phase("do", || { step("outer", || { step("inner", || 1); step("inner2", || 2) }); });"#)
        .run_json();
    r.code(0);
    let events = r.events();
    let paths: Vec<_> =
        named(&events, "step_finished").iter().map(|e| e["step"].as_str().unwrap().to_string()).collect();
    assert_eq!(paths, ["outer/inner", "outer/inner2", "outer"]);
}

#[test]
fn parallel_returns_results_in_order_and_fails_fast() {
    let ok = Playbook::new(
        r#"phase("do", || {
            let r = parallel([|| { sleep("200ms"); 1 }, || 2, || step("s", || 3)]);
            info(r);
        });"#,
    )
    .run_json();
    ok.code(0);
    assert_eq!(named(&ok.events(), "log")[0]["message"], "[1, 2, 3]");

    let started = std::time::Instant::now();
    let bad = Playbook::new(
        r#"phase("do", || {
            parallel([|| run(["sleep", "20"]), || { sleep("100ms"); fail("branch broke") }]);
        });"#,
    )
    .run();
    bad.code(1);
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "the sleeping branch was stopped");
    assert!(bad.stderr.contains("branch broke"), "{}", bad.stderr);
}

#[test]
fn run_timeout_stops_the_run_and_undoes() {
    let p = Playbook::new(
        r#"
        let out = param("out");
        phase("do", || {
            step("one", #{ undo: || sh(`echo undone >> ${out}`) }, || 1);
            step("slow", || run(["sleep", "30"]));
        });
        "#,
    );
    let out = p.path("out.txt");
    let started = std::time::Instant::now();
    let p = p.args(["--timeout", "1s", "--param", &format!("out={}", out.display())]);
    let r = p.run();
    r.code(1);
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert!(r.stderr.contains("--timeout expired"), "{}", r.stderr);
    assert_eq!(std::fs::read_to_string(out).unwrap(), "undone\n");
}

#[test]
fn step_outside_phase_is_explained() {
    let r = Playbook::new("step(\"x\", || 1);").run();
    r.code(2);
    assert!(r.stderr.contains("called outside a phase"), "{}", r.stderr);
}

#[test]
fn unknown_step_option_names_the_options() {
    // Literal options are refused before anything runs (exit 2)...
    let p = Playbook::new(
        "phase(\"a\", || step(\"first\", || run([\"touch\", \"ran\"])));\n\
         phase(\"do\", || { step(\"x\", #{ retry: 1 }, || 1); });",
    );
    let r = p.run();
    r.code(2);
    assert!(r.stderr.contains("deploy.rhai:2:31") && r.stderr.contains("unknown step option `retry`"), "{}", r.stderr);
    assert!(r.stderr.contains("the options are: retries, retry_delay"), "{}", r.stderr);
    assert!(!p.path("ran").exists(), "nothing ran");
    // ...and computed ones when their step runs.
    let r = Playbook::new("let o = #{ retry: 1 };\nphase(\"do\", || { step(\"x\", o, || 1); });").run();
    r.code(1);
    assert!(r.stderr.contains("unknown step option `retry`; the options are: retries, retry_delay"), "{}", r.stderr);
}

#[test]
fn builtins_env_now_require_tools_print_and_sleep() {
    let p = Playbook::new(
        r#"
        phase("do", || {
            info(`${env("CAPSTAN_TEST_VAR")} ${env("CAPSTAN_TEST_UNSET")} ${env("CAPSTAN_TEST_UNSET", "fallback")}`);
            info(now());
            print("printed");
            require_tools(["sh", "true"]);
            step("slow", #{ timeout: "300ms" }, || sleep("30s"));
        });
        "#,
    )
    .env("CAPSTAN_TEST_VAR", "set");
    let started = std::time::Instant::now();
    let r = p.run_json();
    r.code(1);
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "the step timeout cut the sleep short");
    let events = r.events();
    let logs: Vec<String> = named(&events, "log").iter().map(|e| e["message"].as_str().unwrap().to_string()).collect();
    assert_eq!(logs[0], "set  fallback");
    assert!(humantime::parse_rfc3339(&logs[1]).is_ok(), "{}", logs[1]);
    assert_eq!(logs[2], "printed");
    let slow = named(&events, "step_finished")[0].clone();
    assert!(slow["error"].as_str().unwrap().contains("timed out after 300ms"), "{slow}");

    let r = Playbook::new(r#"phase("init", || require_tools(["sh", "no-such-tool-abc", "no-such-tool-xyz"]));"#).run();
    r.code(1);
    assert!(r.stderr.contains("missing tools: no-such-tool-abc, no-such-tool-xyz"), "{}", r.stderr);
}

#[test]
fn numeric_sleep_is_interrupted_by_step_timeouts() {
    let started = std::time::Instant::now();
    let r = Playbook::new(r#"phase("do", || step("nap", #{ timeout: "1s" }, || sleep(4)));"#).run();
    r.code(1);
    assert!(started.elapsed() < std::time::Duration::from_secs(3), "sleep(4) was cut at 1 s");
    assert!(r.stderr.contains("timed out after 1s"), "{}", r.stderr);
}

#[test]
fn run_timeout_also_covers_the_top_level() {
    let started = std::time::Instant::now();
    // A top level that waits rather than spins: under its operation budget,
    // so --timeout is what stops it (a spinning one is a script error, exit 2).
    let r = Playbook::new("sleep(\"30s\");\n").arg("--timeout").arg("1s").run();
    r.code(1);
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert!(r.stderr.contains("--timeout expired"), "{}", r.stderr);
}

#[test]
fn huge_numbers_are_not_a_panic() {
    let r = Playbook::new(
        r#"phase("do", || {
            step("many retries", #{ retries: 4294967295, timeout: "500000000000years" }, || 1);
            run(["true"], #{ timeout: "500000000000years" });
        });"#,
    )
    .args(["--timeout", "500000000000years"])
    .run();
    r.code(0);
    assert!(!r.stderr.contains("panicked"));
}
