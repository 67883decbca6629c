//! Ansible inventories through the real binary: `-i` in INI and YAML gives
//! the playbook the same hosts, `--limit` picks some of them, a bad
//! inventory or a limit that matches nothing stops the run before anything
//! runs (exit 2), and `list -i` shows the hosts.

use std::process::Command;

use serde_json::Value;

use crate::support::{capstan_bin, repl_piped, repo_root, Playbook, Run};

/// Writes the hosts `inventory()` gives to hosts.json, in a phase.
const DUMP: &str = r#"
phase("dump", || { fs::write("hosts.json", json::to_string(inventory())); });
"#;

fn fixture(name: &str) -> String {
    repo_root().join("tests/fixtures/inventory").join(name).to_string_lossy().into_owned()
}

/// The hosts a run with these arguments gave the playbook.
fn hosts(args: &[&str]) -> Vec<Value> {
    let pb = Playbook::new(DUMP).args(args.iter().copied());
    pb.run().code(0);
    let text = std::fs::read_to_string(pb.path("hosts.json")).expect("the phase wrote hosts.json");
    serde_json::from_str::<Value>(&text).unwrap().as_array().unwrap().clone()
}

fn names(hosts: &[Value]) -> Vec<String> {
    hosts.iter().map(|h| h["name"].as_str().unwrap().to_string()).collect()
}

fn numbered(prefix: &str, range: std::ops::RangeInclusive<u32>) -> Vec<String> {
    range.map(|i| format!("{prefix}{i:02}")).collect()
}

#[test]
fn the_ini_and_yaml_forms_of_one_inventory_give_the_same_hosts() {
    let from_ini = hosts(&["-i", &fixture("fleet.ini")]);
    let from_yaml = hosts(&["--inventory", &fixture("fleet.yml")]);
    assert_eq!(from_ini, from_yaml);
    assert_eq!(from_ini.len(), 30);
    let expected: Vec<String> = numbered("web", 1..=20).into_iter().chain(numbered("db", 1..=10)).collect();
    assert_eq!(names(&from_ini), expected);
    // 127.0.0.2 .. 127.0.0.31 on one port, web then db.
    for (i, host) in from_ini.iter().enumerate() {
        assert_eq!(host["address"], format!("127.0.0.{}", i + 2), "{host}");
        assert_eq!(host["port"], 2222, "{host}");
    }
    assert_eq!(
        from_ini[0],
        serde_json::json!({
            "name": "web01", "address": "127.0.0.2", "port": 2222, "user": null, "identity": null,
            "groups": ["web"], "vars": {"fleet": "loopback", "http_port": 8080, "role": "web"},
        })
    );
    assert_eq!(from_ini[29]["groups"], serde_json::json!(["db"]));
    assert_eq!(from_ini[29]["vars"], serde_json::json!({"fleet": "loopback", "role": "db"}));
}

#[test]
fn limit_takes_unions_intersections_exclusions_and_globs() {
    let ini = fixture("fleet.ini");
    let limited = |pattern: &str| names(&hosts(&["-i", &ini, "--limit", pattern]));
    assert_eq!(limited("db"), numbered("db", 1..=10));
    assert_eq!(limited("db:web01"), [vec!["web01".to_string()], numbered("db", 1..=10)].concat());
    assert_eq!(limited("web03,db02"), ["web03", "db02"]);
    assert_eq!(limited("web:!web0*"), numbered("web", 10..=20));
    assert_eq!(limited("web1*:&web:!web15"), [numbered("web", 10..=14), numbered("web", 16..=19)].concat());
    assert_eq!(limited("!web"), numbered("db", 1..=10));
    assert_eq!(limited("~db0[1-3]"), numbered("db", 1..=3));
    // The YAML form limits the same way.
    assert_eq!(names(&hosts(&["-i", &fixture("fleet.yml"), "--limit", "db:!db1*"])), numbered("db", 1..=9));
}

/// A playbook whose phase leaves ran.txt behind: nothing ran if it is missing.
const MARKS: &str = r#"phase("mark", || { fs::write("ran.txt", "yes"); });"#;

/// The run exits 2 saying `said` with a hint, and nothing ran.
#[track_caller]
fn refused(pb: &Playbook, said: &str) {
    let r = pb.run();
    r.code(2);
    assert!(r.stderr.contains(&format!("error: {said}")), "{said}: {}", r.stderr);
    assert!(r.stderr.contains("= hint:") && !r.stderr.contains("panicked"), "{}", r.stderr);
    assert!(!pb.path("ran.txt").exists(), "{said}: nothing runs");
}

#[test]
fn a_limit_that_matches_nothing_stops_the_run_before_anything_runs() {
    for (pattern, said) in [
        ("nope", "--limit nope: `nope` matches no group or host of the inventory"),
        ("web:!wbe03", "--limit web:!wbe03: `wbe03` matches no group or host of the inventory"),
        ("web:&db", "--limit web:&db: no hosts matched"),
    ] {
        refused(
            &Playbook::new(MARKS).args(["-i", &fixture("fleet.ini"), "--limit", pattern]),
            &format!("{said} (inventory "),
        );
    }
    // --limit without -i is a usage error from the command line.
    let r = Playbook::new(MARKS).args(["--limit", "web"]).run();
    r.code(2);
    assert!(r.stderr.contains("--inventory <FILE>"), "{}", r.stderr);
}

#[test]
fn a_bad_inventory_is_exit_2_naming_file_and_line() {
    for (file, text, said) in [
        (
            "hosts.ini",
            "[web]\nweb01\nweb[20:01]\n",
            "hosts.ini:3: host `web[20:01]`: bad range [20:01]: the begin comes after the end",
        ),
        ("hosts", "[web]\nweb01 port\n", "hosts:2: expected key=value after host `web01`, got `port`"),
        (
            "hosts.ini",
            "[prod:children]\nweb\n",
            "hosts.ini:2: [prod:children] names group `web`, which no section declares",
        ),
        ("hosts.yml", "all:\n  hosts:\n    web01:\n   bad: [\n", "hosts.yml:4: not valid YAML"),
        (
            "hosts.yaml",
            "all:\n  hosts:\n    - web01\n",
            "hosts.yaml:2: `hosts` of group `all` must be a map, not a list",
        ),
        ("hosts.toml", "[web]\n", "hosts.toml: unknown inventory format"),
    ] {
        refused(&Playbook::new(MARKS).file(file, text).args(["-i", file]), said);
    }
    let r = Playbook::new(MARKS).args(["-i", "missing.ini"]).run();
    r.code(2);
    assert!(r.stderr.contains("error: cannot read inventory missing.ini"), "{}", r.stderr);
}

#[test]
fn list_shows_the_inventory_after_limit() {
    let pb = Playbook::new(MARKS).args(["-i", &fixture("fleet.yml"), "--limit", "db0[1-2]:web20"]);
    let r = Run::from(pb.command("list").output().unwrap());
    r.code(0);
    let lines: Vec<&str> = r.stdout.lines().skip_while(|l| !l.starts_with("inventory:")).collect();
    assert_eq!(
        lines,
        [
            "inventory: 3 hosts",
            "  web20  127.0.0.21:2222  web",
            "  db01   127.0.0.22:2222  db",
            "  db02   127.0.0.23:2222  db"
        ]
    );

    let pb = Playbook::new(MARKS).args(["--json", "-i", &fixture("fleet.ini"), "--limit", "!web"]);
    let r = Run::from(pb.command("list").output().unwrap());
    r.code(0);
    let doc: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(doc["phases"], serde_json::json!(["mark"]));
    let hosts = doc["inventory"].as_array().unwrap();
    assert_eq!(names(hosts), numbered("db", 1..=10));
    assert_eq!(hosts[9]["address"], "127.0.0.31");

    // Without -i, no inventory is listed.
    let r = Run::from(Playbook::new(MARKS).arg("--json").command("list").output().unwrap());
    let doc: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert!(doc.get("inventory").is_none(), "{doc}");
}

#[test]
fn without_i_inventory_is_empty_and_load_reads_next_to_the_playbook() {
    let pb = Playbook::new(
        r#"
let staging = inventory::load("inventories/staging.ini");
let canaries = inventory::limit(staging, "web:&canary");
phase("dump", || {
    fs::write(`${playbook_dir()}/out.json`, json::to_string(#{ given: inventory(), staging: staging, canaries: canaries }));
});
"#,
    )
    .file("inventories/staging.ini", "[web]\nweb[1:3] ansible_user=deploy\n[canary]\nweb2\n");
    // Run from another folder: the inventory is found next to the playbook.
    let elsewhere = tempfile::tempdir().unwrap();
    let r = Run::from(
        Command::new(capstan_bin())
            .current_dir(elsewhere.path())
            .args(["run", "--log-format", "plain"])
            .arg(pb.path("deploy.rhai"))
            .output()
            .unwrap(),
    );
    r.code(0);
    let out: Value = serde_json::from_str(&std::fs::read_to_string(pb.path("out.json")).unwrap()).unwrap();
    assert_eq!(out["given"], serde_json::json!([]));
    assert_eq!(names(out["staging"].as_array().unwrap()), ["web1", "web2", "web3"]);
    assert_eq!(out["staging"][0]["user"], "deploy");
    assert_eq!(out["staging"][0]["port"], Value::Null);
    assert_eq!(names(out["canaries"].as_array().unwrap()), ["web2"]);
}

#[test]
fn script_errors_name_the_inventory_and_the_pattern() {
    let pb = Playbook::new(r#"let h = inventory::load("hosts.ini"); phase("p", || {});"#)
        .file("hosts.ini", "[web]\nw1\n[web:children]\nweb\n");
    let r = pb.run();
    r.code(2);
    assert!(r.stderr.contains("hosts.ini:4: groups are their own children: web -> web"), "{}", r.stderr);
    assert!(r.stderr.contains("deploy.rhai:1:"), "the playbook line that loaded it: {}", r.stderr);

    let pb = Playbook::new(r#"let h = inventory::limit(inventory(), "web"); phase("p", || {});"#).args([
        "-i",
        &fixture("fleet.ini"),
        "--limit",
        "db",
    ]);
    let r = pb.run();
    r.code(2);
    assert!(r.stderr.contains("host pattern `web`: `web` matches no group or host"), "{}", r.stderr);
}

#[test]
fn the_repl_takes_an_inventory() {
    let pb = Playbook::new("");
    let args = ["--inventory", &fixture("fleet.ini"), "--limit", "db"];
    let out = repl_piped(&pb, &args, b"inventory().len()\ninventory()[0].address\n");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "10\n\"127.0.0.22\"\n");
}

#[test]
fn secret_named_inventory_vars_are_masked_in_every_output() {
    let inventory = "[web]\nweb01 ansible_password=hunter2-the-long-one api_token=tok-9f8e7d6c5b4a\n";
    let pb = Playbook::new(r#"print(json::to_string(inventory())); phase("p", || {});"#)
        .file("hosts.ini", inventory)
        .args(["-i", "hosts.ini"]);
    let r = pb.run();
    r.code(0);
    assert!(r.all().contains("\"ansible_password\""), "{}", r.all());
    for secret in ["hunter2-the-long-one", "tok-9f8e7d6c5b4a"] {
        assert!(!r.all().contains(secret), "{}", r.all());
        assert!(!pb.journal_text().contains(secret), "the journal masks it too");
    }
    let r = Run::from(pb.command("list").arg("--json").output().unwrap());
    r.code(0);
    assert!(r.stdout.contains("\"api_token\"") && !r.stdout.contains("tok-9f8e7d6c5b4a"), "{}", r.stdout);
}

#[test]
fn group_vars_and_host_vars_files_next_to_the_inventory_win_over_it() {
    let pb = Playbook::new(DUMP)
        .file(
            "inv/hosts",
            "[web]\nweb01 tier=inline\nweb02\n[web:vars]\nrole=inline\ncolour=red\nlevel=web\n[prod:children]\nweb\n",
        )
        .file("inv/group_vars/prod.yml", "level: prod-file\n")
        .file("inv/group_vars/web.yml", "role: from-file\nenabled: yes\n")
        .file("inv/group_vars/all/10-base.yaml", "region: eu\ncolour: blue\n")
        .file("inv/group_vars/all/20-more.yml", "region: us\n")
        .file("inv/host_vars/web01", "tier: from-file\nansible_host: 127.0.0.5\n")
        .args(["-i", "inv/hosts"]);
    pb.run().code(0);
    let hosts: Value = serde_json::from_str(&std::fs::read_to_string(pb.path("hosts.json")).unwrap()).unwrap();
    assert_eq!(hosts[0]["address"], "127.0.0.5");
    // As Ansible: group_vars/web.yml over [web:vars]; [web:vars] over group_vars/all; later
    // all/ files over earlier; any group's file (prod, the parent) over the inventory's
    // group vars (web, the child).
    assert_eq!(
        hosts[0]["vars"],
        serde_json::json!({"colour": "red", "enabled": true, "level": "prod-file", "region": "us", "role": "from-file", "tier": "from-file"})
    );
    assert_eq!(hosts[1]["vars"]["tier"], Value::Null);

    let pb = Playbook::new(MARKS)
        .file("hosts.yml", "all:\n  hosts:\n    web01:\n")
        .file("host_vars/web01.yml", "$ANSIBLE_VAULT;1.1;AES256\n6162\n")
        .file("group_vars/all.yml", "ok: 1\n");
    refused(&pb.arg("-i").arg("hosts.yml"), "host_vars/web01.yml:1: the file is encrypted with ansible-vault");
    let pb = Playbook::new(MARKS)
        .file("hosts.yml", "all:\n  hosts:\n    web01:\n")
        .file("group_vars/all.yml", "a: 1\nb: [\n");
    refused(&pb.arg("-i").arg("hosts.yml"), "group_vars/all.yml:3: not valid YAML");
}

#[test]
fn doc_inventory_shows_every_inventory_function() {
    let r = Run::from(Command::new(capstan_bin()).args(["doc", "inventory"]).output().unwrap());
    r.code(0);
    let signatures: Vec<&str> = r.stdout.lines().filter(|l| !l.starts_with(' ') && !l.is_empty()).collect();
    assert_eq!(
        signatures,
        [
            "inventory() -> Array",
            "inventory::limit(hosts: Array, pattern: &str) -> Array",
            "inventory::load(path: &str) -> Array"
        ]
    );
    assert!(r.stdout.contains("ansible_ssh_private_key_file"), "{}", r.stdout);
}
