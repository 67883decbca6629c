//! Bad input: clear errors with `file:line:col`, a caret and a hint; never a
//! panic. The corpus in tests/corpus/ says its expected exit code on line 1.

use crate::support::{repo_root, Playbook, Run};

#[test]
fn syntax_error_points_at_the_spot() {
    let r = Playbook::new("phase(\"do\", || {\n    let x = 1 +;\n});\n").run();
    r.code(2);
    assert_eq!(
        r.stderr,
        "error: Unexpected ';'\n  --> deploy.rhai:2:16\n  |\n2 |     let x = 1 +;\n  |                ^\n   = hint: the code before this point is incomplete or has a typo\n"
    );
}

#[test]
fn reserved_var_gets_a_hint() {
    let r = Playbook::new("let tag = var(\"tag\", \"dev\");\n").run();
    r.code(2);
    assert!(r.stderr.contains("--> deploy.rhai:1:11"), "{}", r.stderr);
    assert!(
        r.stderr.contains("hint: `var` is reserved in Rhai; read parameters with `param(\"name\")`"),
        "{}",
        r.stderr
    );
}

#[test]
fn runtime_error_shows_innermost_position_and_trace() {
    let r =
        Playbook::new("fn inner() {\n    fail(\"deep\")\n}\nphase(\"do\", || {\n    step(\"s\", || inner());\n});\n")
            .run();
    r.code(1);
    assert!(r.stderr.contains("error: deep\n  --> deploy.rhai:2:5\n"), "{}", r.stderr);
    assert!(r.stderr.contains("2 |     fail(\"deep\")\n  |     ^^^^"), "{}", r.stderr);
    assert!(r.stderr.contains("= in function `inner` called at deploy.rhai:5:18"), "{}", r.stderr);
}

#[test]
fn corpus_of_broken_playbooks_never_panics() {
    let dir = repo_root().join("tests/corpus");
    let mut files: Vec<_> =
        std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.path()).filter(|p| p.is_file()).collect();
    files.sort();
    assert!(files.len() >= 25);
    for file in files {
        let text = String::from_utf8_lossy(&std::fs::read(&file).unwrap()).into_owned();
        let expected: i32 = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("// expect: "))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("{} lacks `// expect: N`", file.display()));
        let tmp = tempfile::tempdir().unwrap();
        let run = Run::from(
            std::process::Command::new(crate::support::capstan_bin())
                .args(["run", "--log-format", "plain", "--timeout", "20s", "--journal-dir"])
                .arg(tmp.path())
                .arg(&file)
                .env("NO_COLOR", "1")
                .output()
                .unwrap(),
        );
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        assert_eq!(run.code, expected, "{name}: exit code\n{}", run.stderr);
        assert!(!run.stderr.contains("panicked"), "{name} panicked: {}", run.stderr);
        assert!(run.stderr.contains("error:"), "{name}: no error line: {}", run.stderr);
        if name != "not-utf8.rhai" {
            assert!(run.stderr.contains(&format!("{name}:")), "{name}: no file:line:col: {}", run.stderr);
        }
        let check = Run::from(
            std::process::Command::new(crate::support::capstan_bin()).arg("check").arg(&file).output().unwrap(),
        );
        assert!([0, 1, 2].contains(&check.code), "{name}: check exit {}", check.code);
        assert!(!check.stderr.contains("panicked"), "{name}: check panicked");
    }
}
