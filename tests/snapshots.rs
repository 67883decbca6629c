//! Whole-output snapshots: every rendering of a few representative runs
//! (success, a retry, a failure with undo and `on_failure`, a dry run, a
//! canary that rolls back), compared in full with the files under
//! `tests/snapshots/`. Only what varies from one run to the next is
//! redacted (durations, timestamps, run ids, step keys, the playbook's hash,
//! the temp folder); any change in wording, order or fields fails a test.
//! After an intended change, review the new output and update the `.snap`
//! file (`INSTA_UPDATE=always`, or `cargo insta review`).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::support::pty::Terminal;
use crate::support::{capstan_bin, Playbook, Run};

/// A representative run: its playbook and the arguments it is run with.
struct Case {
    name: &'static str,
    source: &'static str,
    args: &'static [&'static str],
}

const SUCCESS: Case = Case {
    name: "success",
    source: r#"let service = param("service", "checkout");
let version = param("version");
phase("build", || {
    step("compile", || run(["echo", "compiling"]));
    step("test", || { info("tests pass"); 42 });
    step("docs", #{ when: false }, || 1);
});
phase("do", || {
    step("deploy", || event("deployed", #{ service: service, version: version }));
    gate("healthy", true);
});
"#,
    args: &["--param", "version=1.2.3"],
};

/// The first attempt fails, the second succeeds.
const RETRY: Case = Case {
    name: "retry",
    source: r#"phase("do", || {
    step("flaky fetch", #{ retries: 2, retry_delay: "10ms" },
        || sh("if [ -e attempted ]; then echo fetched; else touch attempted; echo 'connection reset' >&2; exit 7; fi"));
    step("use it", || info("fetched on the second attempt"));
});
"#,
    args: &[],
};

/// Undo runs newest first, then `on_failure`. The failing step writes only
/// to stderr so its lines cannot interleave differently from run to run.
const FAILURE: Case = Case {
    name: "failure",
    source: r#"on_failure(|err| warn(`paging the on-call: ${err}`));
phase("prepare", || {
    step("create network", #{ undo: || info("network deleted") }, || info("network created"));
});
phase("do", || {
    step("start app", #{ undo: || run(["echo", "app stopped"]) }, || run(["echo", "app started"]));
    step("migrate", || sh("echo 'migrating users' >&2; echo 'table users is locked' >&2; exit 3"));
    step("announce", || info("never reached"));
});
phase("after", || info("never reached either"));
"#,
    args: &[],
};

/// A read-only command runs; a push and a file write only say what they would do.
const DRY_RUN: Case = Case {
    name: "dry_run",
    source: r#"let image = param("image", "registry.example.com/checkout:1.2.3");
phase("build", || {
    step("head", || run(["echo", "abc123"], #{ read_only: true }).stdout.trim());
    step("push", || run(["docker", "push", image]));
});
phase("do", || {
    step("config", || fs::write("deployed.txt", image));
    step("report", || info(if dry_run() { "dry run: nothing changed" } else { "deployed" }));
});
"#,
    args: &["--dry-run"],
};

/// The bundled canary with scripted samples: two rungs pass, the third
/// breaches and is rolled back; weights are recorded as events.
const CANARY: Case = Case {
    name: "canary",
    source: r#"import "capstan/canary" as canary;
let samples = [
    #{ requests: 200, errors: 0, error_rate: 0.0 },
    #{ requests: 200, errors: 1, error_rate: 0.005 },
    #{ requests: 200, errors: 12, error_rate: 0.06 },
];
let taken = 0;
on_failure(|err| warn("canary failed; v1 keeps all traffic"));
phase("canary", || {
    canary::run(#{
        ladder: [5, 25, 50, 100], hold: "0s", interval: "0s",
        set_weight: |w| event("weight", #{ v2: w, v1: 100 - w }),
        analyze: || { taken += 1; samples[taken - 1] },
        thresholds: #{ error_rate: 0.01 },
        rollback: || info("v2 stopped"),
        promote: || info("v2 promoted"),
    });
});
"#,
    args: &[],
};

fn playbook(case: &Case) -> Playbook {
    Playbook::new(case.source).args(case.args.iter().copied())
}

/// Exit code, stdout and stderr in one document, so a snapshot covers all three.
fn transcript(run: &Run) -> String {
    format!("exit code: {}\n----- stdout -----\n{}----- stderr -----\n{}", run.code, run.stdout, run.stderr)
}

/// Compare `text` with `tests/snapshots/NAME.snap`, after redacting what
/// changes from run to run. `dir` is the playbook's temp folder.
fn assert_matches(name: &str, dir: &Path, text: &str) {
    let mut settings = insta::Settings::clone_current();
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    let redactions: &[(&str, &str)] = &[
        (&dir.display().to_string().replace('.', r"\."), "[DIR]"),
        // 20261207T104253160Z-8f45
        (r"\b\d{8}T\d{9}Z-[0-9a-f]{4}\b", "[RUN_ID]"),
        (r"\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z", "[TIMESTAMP]"),
        (r"\b[0-9a-f]{64}\b", "[SHA256]"),
        // Step keys and the run's salt for them.
        (r"\b[0-9a-f]{32}\b", "[KEY]"),
        // Measured times in JSON, and wall-clock milliseconds in canary records.
        (r#"("(?:\w*duration_ms|time_to_\w+_ms|breach_to_restored_ms|\w+_at_ms)":\s?)\d+"#, "${1}[MS]"),
        (r"\b((?:breach_to_restored_ms|\w+_at_ms)=)\d+", "${1}[MS]"),
        (r#"\btime="[\d.]+""#, r#"time="[SECONDS]""#),
        // `12ms`, `1.2s`, `2m03s` in lines for people.
        (r"\b(\d+ms|\d+\.\d+s|\d+m\d{2}s)\b", "[DURATION]"),
        (&format!(r#"("version":\s?)"{}""#, env!("CARGO_PKG_VERSION").replace('.', r"\.")), r#"${1}"[VERSION]""#),
    ];
    for (pattern, replacement) in redactions {
        settings.add_filter(pattern, *replacement);
    }
    settings.bind(|| insta::assert_snapshot!(name, text));
}

fn plain(case: &Case) {
    let p = playbook(case).args(["--log-format", "plain"]);
    assert_matches(&format!("{}_plain", case.name), p.dir.path(), &transcript(&p.run()));
}

fn json(case: &Case) {
    let p = playbook(case);
    assert_matches(&format!("{}_json", case.name), p.dir.path(), &transcript(&p.run_json()));
}

/// Workflow commands on stdout, then the step summary GitHub renders.
fn github(case: &Case) {
    let p = playbook(case);
    let summary = p.path("step-summary.md");
    let p = p.args(["--log-format", "github"]).env("GITHUB_STEP_SUMMARY", summary.to_str().unwrap());
    let run = p.run();
    let text = format!(
        "{}----- $GITHUB_STEP_SUMMARY -----\n{}",
        transcript(&run),
        std::fs::read_to_string(&summary).expect("the step summary")
    );
    assert_matches(&format!("{}_github", case.name), p.dir.path(), &text);
}

fn junit(case: &Case) {
    let p = playbook(case).args(["--junit", "reports/junit.xml"]);
    p.run();
    let xml = std::fs::read_to_string(p.path("reports/junit.xml")).expect("the JUnit file");
    assert_matches(&format!("{}_junit", case.name), p.dir.path(), &xml);
}

/// `capstan runs show last` (with `extra` arguments) after a plain run.
fn runs_show(case: &Case, extra: &[&str], suffix: &str) {
    let p = playbook(case);
    p.run();
    let out = Command::new(capstan_bin())
        .current_dir(p.dir.path())
        .args(["runs", "show", "last"])
        .args(extra)
        .env("NO_COLOR", "1")
        .output()
        .expect("run capstan runs show");
    assert_matches(&format!("{}_{suffix}", case.name), p.dir.path(), &transcript(&Run::from(out)));
}

/// `human` draws only on a terminal (off one it prints nothing): run on a
/// pseudo-terminal and snapshot the screen once spinners have been cleared.
fn human(case: &Case) {
    let p = playbook(case);
    let mut argv = vec!["run", "deploy.rhai"];
    argv.extend_from_slice(case.args);
    argv.extend(["--log-format", "human"]);
    // Wide enough that no line wraps: the snapshot holds whole lines.
    let mut t = Terminal::spawn_sized(p.dir.path(), &argv, &[], 1000);
    let code = t.wait(Duration::from_secs(30));
    let text = format!("exit code: {code}\n----- screen -----\n{}", t.screen());
    assert_matches(&format!("{}_human", case.name), p.dir.path(), &text);
}

/// A test per case and rendering: `snapshots::failure::junit`.
macro_rules! renderings {
    ($($module:ident => $case:ident),* $(,)?) => {$(
        mod $module {
            use super::*;

            #[test]
            fn human() {
                super::human(&$case);
            }

            #[test]
            fn plain() {
                super::plain(&$case);
            }

            #[test]
            fn json() {
                super::json(&$case);
            }

            #[test]
            fn github() {
                super::github(&$case);
            }

            #[test]
            fn junit() {
                super::junit(&$case);
            }

            #[test]
            fn runs_show() {
                super::runs_show(&$case, &[], "runs_show");
            }

            #[test]
            fn runs_show_json() {
                super::runs_show(&$case, &["--json"], "runs_show_json");
            }
        }
    )*};
}

renderings! {
    success => SUCCESS,
    retry => RETRY,
    failure => FAILURE,
    dry_run => DRY_RUN,
    canary => CANARY,
}
