//! `fs::`, `json::`, `yaml::` and `git::`.

use crate::support::{named, Playbook};

fn logs(r: &crate::support::Run) -> Vec<String> {
    named(&r.events(), "log").iter().map(|e| e["message"].as_str().unwrap().to_string()).collect()
}

#[test]
fn files_and_formats() {
    let p = Playbook::new(
        r#"
        phase("do", || {
            fs::write("out/a.json", json::to_string(#{ name: "api", replicas: 3, tags: ["a", "b"] }));
            let back = json::parse(fs::read("out/a.json"));
            info(`${back.name} ${back.replicas + 1} ${back.tags[1]} ${fs::exists("out/a.json")} ${fs::exists("nope")}`);
            let y = yaml::parse("image:\n  tag: v2\nports: [80, 443]\n");
            info(`${y.image.tag} ${y.ports[1]}`);
            let docs = yaml::parse_all("kind: A\n---\nkind: B\n---\n");
            info(`${docs.len()} ${docs[1].kind}`);
            let s = yaml::to_string(#{ a: 1 });
            s.trim();
            info(s);
            info(fs::glob("k8s/**/*.yaml"));
            let t = fs::temp_dir();
            fs::write(`${t}/x`, "1");
            info(`${fs::exists(t)}`);
            try { json::parse("{broken"); } catch (e) { info(e.kind); }
        });
        "#,
    )
    .file("k8s/base/deploy.yaml", "")
    .file("k8s/svc.yaml", "")
    .file("k8s/readme.md", "");
    let r = p.run_json();
    r.code(0);
    let l = logs(&r);
    assert_eq!(l[0], "api 4 b true false");
    assert_eq!(l[1], "v2 443");
    assert_eq!(l[2], "2 B");
    assert_eq!(l[3], "a: 1");
    assert_eq!(l[4], r#"["k8s/base/deploy.yaml", "k8s/svc.yaml"]"#);
    assert_eq!(l[5], "true");
    assert_eq!(l[6], "fail");
}

#[test]
fn fs_write_is_skipped_in_dry_run() {
    let p = Playbook::new(r#"phase("do", || info(`${fs::write("x.txt", "hi").dry_run}`));"#).arg("--dry-run");
    let r = p.run_json();
    r.code(0);
    assert!(!p.path("x.txt").exists());
    let l = logs(&r);
    assert_eq!(l, ["would run: write 2 bytes to x.txt", "true"]);
}

#[test]
fn git_helpers_read_the_repository() {
    let p = Playbook::new(
        r#"phase("do", || {
            info(`${git::sha().len()} ${git::branch()} ${git::dirty()}`);
            info(git::changed_files("base"));
            fs::write("untracked.txt", "x");
            info(`${git::dirty()}`);
        });"#,
    );
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git").args(args).current_dir(p.dir.path()).output().unwrap();
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    git(&["init", "-q", "-b", "release"]);
    git(&["-c", "user.email=t@example.com", "-c", "user.name=t", "add", "deploy.rhai"]);
    git(&["-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "one"]);
    git(&["tag", "base"]);
    std::fs::write(p.path("app.txt"), "v2").unwrap();
    git(&["add", "app.txt"]);
    git(&["-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "two"]);
    std::fs::write(p.path(".gitignore"), ".capstan/\n.gitignore\n").unwrap();
    let r = p.run_json();
    r.code(0);
    let l = logs(&r);
    assert_eq!(l[0], "40 release false");
    assert_eq!(l[1], r#"["app.txt"]"#);
    assert_eq!(l[2], "true");
}
