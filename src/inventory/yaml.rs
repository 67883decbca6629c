//! Ansible's YAML inventory: top-level groups (usually just `all`), each a
//! map of `hosts` (host patterns, each with its vars or nothing),
//! `children` (groups, nested the same way) and `vars`.

use serde_json::{Map, Value as Json};
use serde_yaml_ng::{Mapping, Value};

use super::error::Located;
use super::graph::Parsed;
use super::range;

/// The document, or where its YAML is broken.
fn document(text: &str) -> Result<Value, Located> {
    serde_yaml_ng::from_str(text).map_err(|e| {
        let line = e.location().map_or(1, |l| l.line());
        let message = e.to_string();
        // The parser's message ends with where it is; the line says that.
        let message = message.split(" at line ").next().unwrap_or(&message).to_string();
        Located::new(line, format!("not valid YAML: {message}"))
            .hint("fix the YAML syntax (indentation, `:` after keys)")
    })
}

/// A `group_vars/` or `host_vars/` file: a map of variables (or nothing).
pub fn vars_file(text: &str) -> Result<Map<String, Json>, Located> {
    if text.trim_start().starts_with("$ANSIBLE_VAULT") {
        return Err(Located::new(1, "the file is encrypted with ansible-vault, which capstan cannot read")
            .hint("keep secrets out of the inventory and give them to the playbook with secret(...)"));
    }
    let reader = Reader { text, parsed: Parsed::default() };
    match document(text)? {
        Value::Null => Ok(Map::new()),
        Value::Mapping(vars) => Ok(vars
            .iter()
            .map(|(key, value)| {
                let key = key_text(key);
                let value = reader.typed(&key, value, 1);
                (key, value)
            })
            .collect()),
        other => Err(Located::new(1, format!("a vars file is a map of `name: value`, not {}", kind(&other)))
            .hint("write one `name: value` per line")),
    }
}

pub fn parse(text: &str) -> Result<Parsed, Located> {
    let document = document(text)?;
    let mut reader = Reader { text, parsed: Parsed::default() };
    match document {
        Value::Null => {
            return Err(Located::new(1, "the YAML inventory is empty").hint("start it with `all:` and its `hosts:`"))
        }
        Value::Mapping(groups) => {
            if groups.contains_key("plugin") {
                return Err(Located::new(
                    reader.line_of("plugin", 1),
                    "this is an inventory plugin's configuration, not an inventory",
                )
                .hint("list the hosts under `all: hosts:` instead"));
            }
            for (name, data) in &groups {
                let name = key_text(name);
                let line = reader.line_of(&name, 1);
                reader.group(&name, data, line)?;
            }
        }
        _ => {
            return Err(Located::new(1, "a YAML inventory is a map of groups")
                .hint("start it with `all:` and put `hosts:`, `children:` and `vars:` under it"))
        }
    }
    Ok(reader.parsed)
}

struct Reader<'a> {
    text: &'a str,
    parsed: Parsed,
}

impl Reader<'_> {
    /// The first line at or after `from` whose key is `key`: where a
    /// message about it points (the YAML values keep no positions).
    fn line_of(&self, key: &str, from: usize) -> usize {
        let forms = [format!("{key}:"), format!("\"{key}\":"), format!("'{key}':"), format!("- {key}:")];
        self.text
            .lines()
            .enumerate()
            .skip(from.saturating_sub(1))
            .find(|(_, l)| forms.iter().any(|f| l.trim_start().starts_with(f.as_str())))
            .map_or(from, |(i, _)| i + 1)
    }

    /// A variable's value as Ansible's YAML 1.1 reads it: a plain `yes`,
    /// `no`, `on` or `off` is a boolean there (a quoted one stays text).
    /// Only a value written on its key's line is looked at.
    fn typed(&self, key: &str, value: &Value, from: usize) -> Json {
        if let Value::String(text) = value {
            let truth = match text.as_str() {
                "yes" | "Yes" | "YES" | "on" | "On" | "ON" => Some(true),
                "no" | "No" | "NO" | "off" | "Off" | "OFF" => Some(false),
                _ => None,
            };
            let line = self.text.lines().nth(self.line_of(key, from) - 1).unwrap_or_default();
            let written = line.split_once(':').map(|(_, v)| v.split(" #").next().unwrap_or_default().trim());
            if let (Some(truth), Some(written)) = (truth, written) {
                if written == text {
                    return Json::Bool(truth);
                }
            }
        }
        json(value)
    }

    fn group(&mut self, name: &str, data: &Value, line: usize) -> Result<(), Located> {
        self.parsed.group(name);
        let entries = match data {
            Value::Null => return Ok(()),
            Value::Mapping(m) => m,
            other => {
                return Err(Located::new(line, format!("group `{name}` must be a map, not {}", kind(other)))
                    .hint("put the group's `hosts:`, `children:` and `vars:` under it"))
            }
        };
        for (key, value) in entries {
            let key = key_text(key);
            let at = self.line_of(&key, line);
            let one;
            let section = match value {
                Value::Null => continue,
                // `hosts: web1` is `hosts: { web1: }`.
                Value::String(s) => {
                    one = Mapping::from_iter([(Value::String(s.clone()), Value::Null)]);
                    &one
                }
                Value::Mapping(m) => m,
                other => {
                    return Err(Located::new(
                        at,
                        format!("`{key}` of group `{name}` must be a map, not {}", kind(other)),
                    )
                    .hint("write each entry as `name:` on its own line (a map), not as a `- name` list"))
                }
            };
            match key.as_str() {
                "hosts" => self.hosts(name, section, at)?,
                "children" => {
                    for (child, data) in section {
                        let child = key_text(child);
                        let child_line = self.line_of(&child, at);
                        self.group(&child, data, child_line)?;
                        self.parsed.add_child(name, &child, child_line);
                    }
                }
                "vars" => {
                    for (var, value) in section {
                        let var = key_text(var);
                        let value = self.typed(&var, value, at);
                        self.parsed.set_group_var(name, var, value);
                    }
                }
                other => {
                    return Err(Located::new(at, format!("unexpected key `{other}` in group `{name}`"))
                        .hint("a group holds only `hosts`, `children` and `vars`"))
                }
            }
        }
        Ok(())
    }

    fn hosts(&mut self, group: &str, hosts: &Mapping, from: usize) -> Result<(), Located> {
        for (pattern, vars) in hosts {
            let pattern = key_text(pattern);
            let line = self.line_of(&pattern, from);
            let expanded = range::expand(&pattern)
                .map_err(|e| Located::new(line, e).hint("a range is [01:20] (padded), [1:20], [a:f] or [1:20:2]"))?;
            let mut map = Map::new();
            if let Some(port) = expanded.port {
                map.insert("ansible_port".into(), port.into());
            }
            match vars {
                Value::Null => {}
                Value::Mapping(vars) => {
                    for (key, value) in vars {
                        let key = key_text(key);
                        let value = self.typed(&key, value, line);
                        map.insert(key, value);
                    }
                }
                other => {
                    return Err(Located::new(
                        line,
                        format!("host `{pattern}` must have a map of vars (or nothing), not {}", kind(other)),
                    )
                    .hint("write the host as `name:` with its vars indented under it as `key: value`"))
                }
            }
            for name in &expanded.names {
                self.parsed.add_host(group, name, map.clone(), line);
            }
        }
        Ok(())
    }
}

/// A key as text: YAML keys may be numbers or booleans.
fn key_text(key: &Value) -> String {
    match key {
        Value::String(s) => s.clone(),
        other => serde_yaml_ng::to_string(other).map(|s| s.trim().to_string()).unwrap_or_default(),
    }
}

fn json(value: &Value) -> Json {
    serde_json::to_value(value).unwrap_or(Json::Null)
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Sequence(_) => "a list",
        Value::String(_) => "text",
        Value::Number(_) => "a number",
        Value::Bool(_) => "a boolean",
        _ => "this",
    }
}
