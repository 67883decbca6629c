//! Ansible's INI inventory: `[group]` sections of host lines (`name
//! key=value ...`, values read as Python literals), `[group:vars]` of
//! `key=value` lines and `[group:children]` of group names. Host lines
//! before the first section are `ungrouped`; `#` and `;` start comments.

use std::collections::HashMap;

use serde_json::Map;

use super::error::Located;
use super::graph::Parsed;
use super::{literal, range};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Section {
    Hosts,
    Vars,
    Children,
}

pub fn parse(text: &str) -> Result<Parsed, Located> {
    let mut parsed = Parsed::default();
    // `[all:vars]` and `[ungrouped]` need no declaration.
    parsed.group("all");
    parsed.group("ungrouped");
    let (mut group, mut section) = ("ungrouped".to_string(), Section::Hosts);
    // A `[x:vars]` or a child `x` before (or without) a `[x]`: resolved by a
    // later section, or an error naming the first line that needed it.
    let mut undeclared: HashMap<String, (usize, String)> = HashMap::new();
    for (index, raw) in text.lines().enumerate() {
        let line_no = index + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if line.starts_with('[') {
            let (name, kind) = header(line).map_err(|e| Located::new(line_no, e).hint(HEADER_HINT))?;
            section = kind;
            group = name;
            if section == Section::Vars {
                if !parsed.has_group(&group) {
                    undeclared.entry(group.clone()).or_insert((
                        line_no,
                        format!("[{group}:vars] is for group `{group}`, which no section declares"),
                    ));
                }
            } else {
                undeclared.remove(&group);
                parsed.group(&group);
            }
            continue;
        }
        match section {
            Section::Hosts => host_line(&mut parsed, &group, line, line_no)?,
            Section::Vars => {
                let Some((key, value)) = line.split_once('=') else {
                    return Err(Located::new(line_no, format!("expected key=value in [{group}:vars], got `{line}`"))
                        .hint("write one variable per line, as name=value"));
                };
                parsed.set_group_var(&group, key.trim().to_string(), literal::value(value.trim()));
            }
            Section::Children => {
                let child = line.split('#').next().unwrap_or_default().trim();
                if child.is_empty() || child.contains([':', ']', '[', ' ', '\t', '=']) {
                    return Err(Located::new(
                        line_no,
                        format!("expected a group name in [{group}:children], got `{line}`"),
                    )
                    .hint("list one group name per line; its hosts go in its own [NAME] section"));
                }
                if !parsed.has_group(child) {
                    undeclared.entry(child.to_string()).or_insert((
                        line_no,
                        format!("[{group}:children] names group `{child}`, which no section declares"),
                    ));
                }
                parsed.add_child(&group, child, line_no);
            }
        }
    }
    if let Some((line, message)) = undeclared.into_values().min_by_key(|(line, _)| *line) {
        return Err(Located::new(line, message).hint("declare the group with a [NAME] or [NAME:children] section"));
    }
    Ok(parsed)
}

const HEADER_HINT: &str = "a section is [NAME], [NAME:vars] or [NAME:children], with no spaces";

/// `[name]`, `[name:vars]` or `[name:children]`, with an optional comment.
fn header(line: &str) -> Result<(String, Section), String> {
    let close = line.find(']').ok_or_else(|| format!("section `{line}` is not closed with `]`"))?;
    let after = line[close + 1..].trim();
    if !(after.is_empty() || after.starts_with('#') || after.starts_with(';')) {
        return Err(format!("unexpected `{after}` after section `{}`", &line[..=close]));
    }
    let inner = &line[1..close];
    let (name, kind) = inner.split_once(':').unwrap_or((inner, "hosts"));
    if name.is_empty() || name.contains(|c: char| c.is_whitespace() || c == '[') {
        return Err(format!("invalid section `{}`", &line[..=close]));
    }
    let kind = match kind {
        "hosts" => Section::Hosts,
        "vars" => Section::Vars,
        "children" => Section::Children,
        other => return Err(format!("section `{}` has unknown type `{other}`", &line[..=close])),
    };
    Ok((name.to_string(), kind))
}

/// `pattern key=value ...`: the pattern's hosts in `group` with those vars.
fn host_line(parsed: &mut Parsed, group: &str, line: &str, line_no: usize) -> Result<(), Located> {
    let words = shell_words(line).map_err(|e| {
        Located::new(line_no, format!("cannot read host line `{line}`: {e}")).hint("close the quotes around the value")
    })?;
    let Some((pattern, assignments)) = words.split_first() else {
        return Ok(());
    };
    let expanded = range::expand(pattern)
        .map_err(|e| Located::new(line_no, e).hint("a range is [01:20] (padded), [1:20], [a:f] or [1:20:2]"))?;
    let mut vars = Map::new();
    if let Some(port) = expanded.port {
        vars.insert("ansible_port".into(), port.into());
    }
    for word in assignments {
        let Some((key, value)) = word.split_once('=') else {
            return Err(Located::new(line_no, format!("expected key=value after host `{pattern}`, got `{word}`"))
                .hint("quote a value that has spaces: key=\"two words\""));
        };
        vars.insert(key.to_string(), literal::value(value));
    }
    for name in &expanded.names {
        parsed.add_host(group, name, vars.clone(), line_no);
    }
    Ok(())
}

/// The line split as Python's `shlex.split(line, comments=True)` does:
/// quotes group and are removed, `\` escapes, `#` ends the line.
fn shell_words(line: &str) -> Result<Vec<String>, &'static str> {
    let (mut words, mut word, mut in_word) = (Vec::new(), String::new(), false);
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '#' => break,
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("no closing quotation"),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') if matches!(chars.peek(), Some('"' | '\\')) => word.extend(chars.next()),
                        Some(c) => word.push(c),
                        None => return Err("no closing quotation"),
                    }
                }
            }
            '\\' => {
                in_word = true;
                word.push(chars.next().ok_or("no escaped character")?);
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::shell_words;

    #[test]
    fn host_lines_split_like_shlex() {
        assert_eq!(
            shell_words(r#"web1 a=1 msg="two words" b='x y' # note"#).unwrap(),
            ["web1", "a=1", "msg=two words", "b=x y"]
        );
        assert_eq!(shell_words(r#"h q="'8080'" e=a\ b"#).unwrap(), ["h", "q='8080'", "e=a b"]);
        assert!(shell_words("h a=\"open").is_err());
    }
}
