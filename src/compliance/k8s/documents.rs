//! A YAML stream as Kubernetes objects, each with the lines it spans: the
//! documents between `---` markers, and the items of a `kind: List`. Finding
//! lines are looked up in an object's own lines, so a finding always lies
//! inside the object it is about (checkov reports an object's line range).

use std::ops::RangeInclusive;

use serde_json::Value;

/// One object of the stream and the 1-based lines it spans (first to last
/// line with content, comments left out).
pub(super) struct Object {
    pub value: Value,
    pub lines: RangeInclusive<usize>,
}

/// Every object in the text; a document that is not YAML, or not a mapping,
/// is skipped.
pub(super) fn objects(text: &str) -> Vec<Object> {
    let lines: Vec<&str> = text.lines().collect();
    // Byte offset of each line's start, and the text's end.
    let mut starts: Vec<usize> = std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect();
    starts.truncate(lines.len());
    starts.push(text.len());
    let mut out = Vec::new();
    for range in documents(&lines) {
        let Some(content) = content_lines(&lines, range.clone()) else { continue };
        let Ok(value) = serde_yaml_ng::from_str::<Value>(&text[starts[range.start]..starts[range.end]]) else {
            continue;
        };
        if value["kind"] == "List" {
            let items = value["items"].as_array().cloned().unwrap_or_default();
            let spans = item_lines(&lines, content.clone(), items.len());
            for (i, item) in items.into_iter().enumerate() {
                let lines = spans.as_ref().map_or_else(|| content.clone(), |s| s[i].clone());
                out.push(Object { value: item, lines });
            }
        } else if value.is_object() {
            out.push(Object { value, lines: content });
        }
    }
    out
}

/// The 0-based line ranges of the documents: split at `---` (a document
/// start) and `...` (a document end), which YAML only allows at column 0.
fn documents(lines: &[&str]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, line) in lines.iter().enumerate() {
        let marker =
            *line == "---" || line.starts_with("--- ") || line.starts_with("---\t") || line.trim_end() == "...";
        if marker {
            out.push(start..i);
            start = i + 1;
        }
    }
    out.push(start..lines.len());
    out
}

/// The 1-based first and last lines of a range holding something other than
/// blanks and comments.
fn content_lines(lines: &[&str], range: std::ops::Range<usize>) -> Option<RangeInclusive<usize>> {
    let has_content = |i: &usize| {
        let t = lines[*i].trim();
        !t.is_empty() && !t.starts_with('#')
    };
    let first = range.clone().find(has_content)?;
    let last = range.rev().find(has_content)?;
    Some(first + 1..=last + 1)
}

/// The lines of each item of a block-style `items:` list, if they can be
/// told apart (`count` items starting at the same indentation).
fn item_lines(lines: &[&str], object: RangeInclusive<usize>, count: usize) -> Option<Vec<RangeInclusive<usize>>> {
    let within = (*object.start() - 1)..*object.end();
    let key = within.clone().find(|&i| lines[i].starts_with("items:"))?;
    let first = (key + 1..within.end).find(|&i| lines[i].trim_start().starts_with('-'))?;
    let indent = lines[first].len() - lines[first].trim_start().len();
    let starts: Vec<usize> = (first..within.end)
        .filter(|&i| {
            let l = lines[i].as_bytes();
            l.len() > indent && l[..indent].iter().all(u8::is_ascii_whitespace) && l[indent] == b'-'
        })
        .collect();
    if starts.len() != count {
        return None;
    }
    let mut out = Vec::new();
    for (n, &s) in starts.iter().enumerate() {
        let end = starts.get(n + 1).copied().unwrap_or(within.end);
        out.push(content_lines(lines, s..end)?);
    }
    Some(out)
}

/// Finds lines inside one object.
pub(super) struct Locator<'t> {
    lines: Vec<&'t str>,
}

impl<'t> Locator<'t> {
    pub(super) fn new(text: &'t str) -> Self {
        Locator { lines: text.lines().collect() }
    }

    /// The first line in `within` whose text (indentation and a list dash
    /// left out) starts with `key:`; the object's first line if none does.
    pub(super) fn key(&self, within: &RangeInclusive<usize>, key: &str) -> usize {
        self.find(within, *within.start(), |t| is_key(t, key)).unwrap_or(*within.start())
    }

    /// The line declaring container `name` in the list under `field`
    /// (`containers`, `initContainers`...): its `name:` entry, or the list's
    /// key, or the object's first line.
    pub(super) fn container(&self, within: &RangeInclusive<usize>, field: &str, name: Option<&str>) -> usize {
        let Some(list) = self.find(within, *within.start(), |t| is_key(t, field)) else {
            return *within.start();
        };
        let Some(name) = name else { return list };
        self.find(within, list + 1, |t| {
            t.strip_prefix("name:")
                .map(|v| v.split(" #").next().unwrap_or(v).trim().trim_matches(['"', '\'']))
                .is_some_and(|v| v == name)
        })
        .unwrap_or(list)
    }

    /// The first 1-based line from `from` inside `within` whose trimmed text
    /// satisfies `matches`.
    fn find(&self, within: &RangeInclusive<usize>, from: usize, matches: impl Fn(&str) -> bool) -> Option<usize> {
        (from..=*within.end()).find(|&n| {
            let t = self.lines.get(n - 1).map_or("", |l| l.trim_start());
            matches(t.strip_prefix("- ").map_or(t, str::trim_start))
        })
    }
}

/// Whether a line (indentation and list dash left out) is `key:` or `"key":`.
fn is_key(text: &str, key: &str) -> bool {
    let quoted = text.strip_prefix('"').and_then(|t| t.strip_prefix(key)).and_then(|t| t.strip_prefix('"'));
    text.strip_prefix(key).is_some_and(|rest| rest.starts_with(':'))
        || quoted.is_some_and(|rest| rest.trim_start().starts_with(':'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_and_list_items_get_their_own_lines() {
        let text = "---\n# leading comment\napiVersion: v1\nkind: Pod\nmetadata: {name: a}\n---\n\napiVersion: v1\nkind: List\nitems:\n- kind: Pod\n  metadata: {name: b}\n- kind: Pod\n  metadata: {name: c}\n...\nnot: [yaml\n";
        let found: Vec<(String, RangeInclusive<usize>)> = objects(text)
            .into_iter()
            .map(|o| (o.value["metadata"]["name"].as_str().unwrap().to_string(), o.lines))
            .collect();
        assert_eq!(found, vec![("a".into(), 3..=5), ("b".into(), 11..=12), ("c".into(), 13..=14)]);
        // A comment may start at any column: a character across the items'
        // indentation is no problem.
        let text = "kind: List\nitems:\n  - kind: Pod\n#é\n    metadata: {name: a}\n";
        assert_eq!(objects(text)[0].lines, 3..=5);
    }

    #[test]
    fn containers_are_found_by_name_under_their_own_list() {
        let text = "kind: Pod\nspec:\n  initContainers:\n  - name: app\n    image: busybox\n  containers:\n  - image: nginx\n    name: \"app\"\n";
        let at = Locator::new(text);
        assert_eq!(at.container(&(1..=8), "initContainers", Some("app")), 4);
        assert_eq!(at.container(&(1..=8), "containers", Some("app")), 8);
        assert_eq!(at.container(&(1..=8), "ephemeralContainers", Some("app")), 1);
        assert_eq!(at.key(&(1..=8), "image"), 5);
    }
}
