//! The two formats read the same way, and bad inventories point at their line.

use serde_json::json;

use super::{parse, Format, Host, Located};

fn ini(text: &str) -> Vec<Host> {
    parse(text, Format::Ini).unwrap()
}

fn yaml(text: &str) -> Vec<Host> {
    parse(text, Format::Yaml).unwrap()
}

fn find<'a>(hosts: &'a [Host], name: &str) -> &'a Host {
    hosts.iter().find(|h| h.name == name).unwrap()
}

const INI: &str = r#"
# before any section: ungrouped
bastion ansible_host=10.0.0.1 ansible_user=ops

[web]
web[01:03].example.com ansible_port=2222
web02.example.com role="'primary'" weight=5 note="two words"  # a comment

[db]
db-[a:b] ansible_ssh_private_key_file=/keys/db

; the children of prod
[prod:children]
web
db

[prod:vars]
tier=prod
level=2

[web:vars]
tier=web
flags=['a', 'b']

[all:vars]
tier=all
region=eu
level=1
"#;

const YAML: &str = r"
all:
  hosts:
    bastion:
      ansible_host: 10.0.0.1
      ansible_user: ops
  vars:
    tier: all
    region: eu
    level: 1
  children:
    prod:
      vars:
        tier: prod
        level: 2
      children:
        web:
          hosts:
            web[01:03].example.com:
              ansible_port: 2222
            web02.example.com:
              role: primary
              weight: 5
              note: two words
          vars:
            tier: web
            flags: [a, b]
        db:
          hosts:
            db-[a:b]:
              ansible_ssh_private_key_file: /keys/db
";

#[test]
fn ini_and_yaml_of_one_inventory_give_the_same_hosts() {
    let (from_ini, from_yaml) = (ini(INI), yaml(YAML));
    let names: Vec<&str> = from_yaml.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["bastion", "web01.example.com", "web02.example.com", "web03.example.com", "db-a", "db-b"]);
    assert_eq!(from_ini.iter().map(|h| h.name.as_str()).collect::<Vec<_>>(), names);
    for (a, b) in from_ini.iter().zip(&from_yaml) {
        assert_eq!(a, b, "{}", a.name);
    }
}

#[test]
fn connection_vars_groups_and_precedence() {
    let hosts = ini(INI);
    let bastion = find(&hosts, "bastion");
    assert_eq!((bastion.address.as_str(), bastion.user.as_deref(), bastion.port), ("10.0.0.1", Some("ops"), None));
    assert_eq!(bastion.groups, ["ungrouped"]);
    // `all` vars only; the connection vars are fields, not vars.
    assert_eq!(json!(bastion.vars), json!({"level": 1, "region": "eu", "tier": "all"}));

    let web = find(&hosts, "web02.example.com");
    assert_eq!((web.address.as_str(), web.port, web.user.as_deref()), ("web02.example.com", Some(2222), None));
    assert_eq!(web.groups, ["prod", "web"]);
    // web (child) over prod (parent) over all; host vars over all of them.
    assert_eq!(
        json!(web.vars),
        json!({"flags": ["a", "b"], "level": 2, "note": "two words", "region": "eu", "role": "primary", "tier": "web", "weight": 5})
    );
    let db = find(&hosts, "db-b");
    assert_eq!(db.identity.as_deref(), Some("/keys/db"));
    assert_eq!(db.vars["tier"], json!("prod"));
}

#[test]
fn host_vars_win_and_a_host_in_several_groups_merges() {
    let hosts = ini("[a]\nh x=1 only_a=True\n[b]\nh x=2 port_b=0x10\n[a:vars]\ny=a\n[b:vars]\ny=b\nz='from b'\n");
    assert_eq!(hosts.len(), 1);
    assert_eq!(hosts[0].groups, ["a", "b"]);
    // Two groups at one depth: the later name wins, as in Ansible.
    assert_eq!(json!(hosts[0].vars), json!({"x": 2, "only_a": true, "port_b": 16, "y": "b", "z": "from b"}));
}

#[test]
fn group_priority_orders_groups_of_one_depth() {
    let hosts = ini("[a]\nh\n[b]\nh\n[a:vars]\ny=a\nansible_group_priority=10\n[b:vars]\ny=b\n");
    assert_eq!(hosts[0].vars["y"], json!("a"));
    assert!(!hosts[0].vars.contains_key("ansible_group_priority"));
}

#[test]
fn ini_values_are_python_literals_and_vars_sections_keep_spaces() {
    let hosts = ini("[g]\nh a=8080 b=true c=\"'8080'\" d=010 e=None\n[g:vars]\nmsg = hello world\nn = 3 # three\n");
    assert_eq!(
        json!(hosts[0].vars),
        json!({"a": 8080, "b": "true", "c": "8080", "d": "010", "e": null, "msg": "hello world", "n": 3})
    );
}

#[test]
fn yaml_null_hosts_string_sections_ports_and_top_level_groups() {
    let hosts = yaml("web:\n  hosts:\n    w1:\n    w2:2200:\nall:\n  hosts: solo\n");
    let names: Vec<(&str, Option<i64>, &[String])> =
        hosts.iter().map(|h| (h.name.as_str(), h.port, h.groups.as_slice())).collect();
    assert_eq!(names[0], ("w1", None, &["web".to_string()][..]));
    assert_eq!(names[1], ("w2", Some(2200), &["web".to_string()][..]));
    assert_eq!(names[2], ("solo", None, &["ungrouped".to_string()][..]));
}

#[test]
fn yaml_1_1_booleans_are_booleans_unless_quoted() {
    let hosts = yaml("all:\n  vars:\n    a: yes\n    b: 'yes'\n    c: Off  # comment\n  hosts:\n    h:\n      d: on\n      e: \"no\"\n");
    assert_eq!(json!(hosts[0].vars), json!({"a": true, "b": "yes", "c": false, "d": true, "e": "no"}));
}

#[test]
fn deeper_child_groups_win_over_parents_in_yaml() {
    let hosts = yaml("all:\n  vars: {v: 0}\n  children:\n    a:\n      vars: {v: 1}\n      children:\n        b:\n          vars: {v: 2}\n          hosts: {h: {}}\n        c:\n          hosts: {h: {v: 9}, k: }\n");
    assert_eq!(find(&hosts, "h").vars["v"], json!(9));
    assert_eq!(find(&hosts, "h").groups, ["a", "b", "c"]);
    assert_eq!(find(&hosts, "k").vars["v"], json!(1));
}

/// Reading `text` fails at `line` with a message that starts with `start`, and a hint.
#[track_caller]
fn expect_error(format: Format, text: &str, line: usize, start: &str) {
    let e: Located = parse(text, format).unwrap_err();
    assert_eq!(e.line, line, "{text}: {}", e.message);
    assert!(e.message.starts_with(start), "{text}: {}", e.message);
    assert!(e.hint.is_some(), "{text}");
}

#[test]
fn bad_inventories_name_their_line() {
    for (text, line, message) in [
        ("[web]\nw1\nweb[20:01]\n", 3, "host `web[20:01]`: bad range [20:01]: the begin comes after the end"),
        ("[web]\nw1 port\n", 2, "expected key=value after host `w1`, got `port`"),
        ("[web]\n\n[web:vrs]\n", 3, "section `[web:vrs]` has unknown type `vrs`"),
        ("[web name]\n", 1, "invalid section `[web name]`"),
        ("[web\n", 1, "section `[web` is not closed with `]`"),
        ("[prod:children]\nweb\n", 2, "[prod:children] names group `web`, which no section declares"),
        ("[db:vars]\nx=1\n", 1, "[db:vars] is for group `db`, which no section declares"),
        ("[g:vars]\nnovalue\n", 2, "expected key=value in [g:vars], got `novalue`"),
        ("[a:children]\nb\n[b:children]\na\n", 4, "groups are their own children: a -> b -> a"),
        (
            "[x]\n[a:children]\nx\nb\n[b:children]\nc\n[c:children]\nb\n",
            8,
            "groups are their own children: b -> c -> b",
        ),
        ("h x=\"open\n", 1, "cannot read host line `h x=\"open`: no closing quotation"),
        ("[g]\nh ansible_port=http\n", 2, "host `h`: ansible_port is \"http\", not a port number (1-65535)"),
    ] {
        expect_error(Format::Ini, text, line, message);
    }
    let chain: Vec<String> = (0..300).map(|i| format!("[g{i}:children]\ng{}\n", i + 1)).collect();
    let chain = chain.concat();
    // The line that names the 257th group down.
    expect_error(Format::Ini, &format!("{chain}[g300]\nh\n"), 512, "groups are nested more than 256 deep");
    // A group's vars before its section are fine.
    assert_eq!(ini("[db:vars]\nx=1\n[db]\nd1\n")[0].vars["x"], json!(1));
}

#[test]
fn bad_yaml_inventories_name_their_line() {
    for (text, line, start) in [
        ("all:\n  hosts:\n    - web1\n", 2, "`hosts` of group `all` must be a map, not a list"),
        ("all:\n  hosts:\n    w1:\n  childs:\n    x:\n", 4, "unexpected key `childs` in group `all`"),
        ("all:\n  hosts:\n    w[1:x]:\n", 3, "host `w[1:x]`: bad range"),
        ("all:\n  hosts:\n    w1: 5\n", 3, "host `w1` must have a map of vars"),
        ("all:\n  hosts:\n   w1:\n  - x\n", 4, "not valid YAML"),
        ("", 1, "the YAML inventory is empty"),
        ("- a\n", 1, "a YAML inventory is a map of groups"),
        ("plugin: aws_ec2\n", 1, "this is an inventory plugin's configuration"),
    ] {
        expect_error(Format::Yaml, text, line, start);
    }
}

#[test]
fn a_hundred_thousand_hosts_load_in_linear_time() {
    let started = std::time::Instant::now();
    let hosts = ini("[web]\nweb[000001:100000].example.com\n[web:vars]\nrole=web\n");
    assert_eq!(hosts.len(), 100_000);
    assert_eq!(hosts[99_999].name, "web100000.example.com");
    // Quadratic group membership took over a minute here.
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "{:?}", started.elapsed());
}
