//! Imports: relative to the playbook, sandboxed, usable from deferred
//! phase closures, and closures defined inside modules.

use crate::support::{named, Playbook};

#[test]
fn imported_module_is_usable_inside_phases_and_steps() {
    let p = Playbook::new(
        r#"
        import "lib/common" as common;
        phase("do", || {
            let v = step("greet", || common::greet("ops"));
            info(v);
            common::declare_nothing();
        });
        "#,
    )
    .file(
        "lib/common.rhai",
        "import \"helpers\" as h;\nfn greet(who) { `hello ${who}${h::bang()}` }\nfn declare_nothing() { () }\n",
    )
    .file("lib/helpers.rhai", "fn bang() { \"!\" }\n");
    let r = p.run_json();
    r.code(0);
    assert_eq!(named(&r.events(), "log")[0]["message"], "hello ops!");
}

#[test]
fn module_may_declare_phases_with_its_own_closures() {
    let p = Playbook::new("import \"lib/phases\" as phases;\nphases::declare(\"x\");\n")
        .file("lib/phases.rhai", "fn declare(name) { phase(name, || info(`phase ${name} from module`)); }\n");
    let r = p.run_json();
    r.code(0);
    assert_eq!(named(&r.events(), "log")[0]["message"], "phase x from module");
}

#[test]
fn imports_may_not_leave_the_playbook_folder() {
    let outer = tempfile::tempdir().unwrap();
    std::fs::write(outer.path().join("evil.rhai"), "fn x() { 1 }").unwrap();
    let p = Playbook::new(&format!(
        "import \"../{}/evil\" as e;\nphase(\"x\", || {{}});\n",
        outer.path().file_name().unwrap().to_string_lossy()
    ));
    let r = p.run();
    r.code(2);
    assert!(r.stderr.contains("leaves the playbook's folder"), "{}", r.stderr);

    let r = Playbook::new("import \"/etc/passwd\" as e;").run();
    r.code(2);
    assert!(r.stderr.contains("absolute paths are not allowed"), "{}", r.stderr);

    let r = Playbook::new("import \"capstan/nope\" as e;").run();
    r.code(2);
    assert!(r.stderr.contains("no bundled module \"capstan/nope\""), "{}", r.stderr);
}

#[test]
fn error_inside_a_module_points_into_the_module() {
    let p = Playbook::new("import \"lib/m\" as m;\nphase(\"do\", || step(\"s\", || m::broken()));\n")
        .file("lib/m.rhai", "fn broken() {\n    let x = 1;\n    x.no_such_method()\n}\n");
    let r = p.run();
    r.code(1);
    assert!(r.stderr.contains("--> lib/m.rhai:3:7"), "{}", r.stderr);
    assert!(r.stderr.contains("in function `broken` called at deploy.rhai:2:32"), "{}", r.stderr);
}
