//! The source files form no import circle.
//!
//! Every file under `src/` is a node; there is an edge A → B when A's
//! non-test code names a path that resolves to module B (`crate::a::b::Item`,
//! `super::…`, `self::…`, a child module, a name a `use` bound to a module,
//! and every leaf of a `use` tree, `pub use` re-exports included). A path
//! resolves to the longest prefix that is a file. `mod x;` declarations are
//! not edges: a parent owning a child is not the parent depending on it.
//! `src/main.rs` is a separate crate and is left out.
//!
//! A circle means no file in it can be read, tested or moved without the
//! others; the layering in the README is only true while this passes.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write as _;
use std::path::Path;

use regex::Regex;

/// One reference that makes an edge, kept as the example for that edge.
#[derive(Clone, Debug)]
struct Reference {
    file: String,
    line: usize,
    text: String,
}

/// The file graph: module path (`executor::resume`, empty for lib.rs) → the
/// modules it names, each with the first reference found.
#[derive(Debug, Default)]
struct Graph {
    files: BTreeMap<String, String>,
    edges: BTreeMap<String, BTreeMap<String, Reference>>,
}

#[test]
fn source_files_form_no_import_circle() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut sources = Vec::new();
    collect(&root, &root, &mut sources);
    assert!(sources.len() > 20, "found only {} source files under {}", sources.len(), root.display());
    let graph = build(&sources);
    let report = cycles(&graph);
    assert!(report.is_empty(), "import circles between source files (each edge with one example):\n{report}");
}

/// The checker itself finds what it must: nested use groups, `pub(crate)
/// use`, `super` from a `mod.rs`, `self::`, child modules, aliases bound by
/// `use`, and ignores comments, strings, `#[cfg(test)]` items and `mod x;`.
#[test]
fn the_checker_sees_every_kind_of_reference() {
    let sources = [
        ("lib.rs", "pub mod a;\npub mod b;\npub mod c;\npub mod d;\npub mod e;\n"),
        (
            "a/mod.rs",
            "//! see crate::e::Thing\nmod inner;\npub(crate) use inner::{x::{Deep, self}};\nconst S: &str = \"crate::e::X\";\n",
        ),
        ("a/inner.rs", "pub mod x { pub struct Deep; }\nuse super::super::b::B;\n"),
        ("b.rs", "pub struct B;\npub fn f() { let _ = crate::c::g(); }\n"),
        (
            "c.rs",
            "use crate::{d as dee, e::{y, z}};\npub fn g() { dee::h(); }\n#[cfg(test)]\nmod tests { use crate::e::T; }\n#[cfg(test)]\nuse crate::e::U;\n",
        ),
        ("d.rs", "pub fn h() { self::k(); }\nfn k() {}\nuse crate::a;\nfn m() { a::inner::x(); }\n"),
        ("e.rs", "fn n() { let c = 'x'; let s = r#\"crate::a\"#; }\n"),
    ];
    let sources: Vec<(String, String)> =
        sources.iter().map(|(path, text)| ((*path).to_owned(), (*text).to_owned())).collect();
    let graph = build(&sources);
    let named = |from: &str| -> Vec<&str> { graph.edges[from].keys().map(String::as_str).collect::<Vec<_>>() };
    assert_eq!(named("a"), ["a::inner"]);
    assert_eq!(named("a::inner"), ["b"]);
    assert_eq!(named("b"), ["c"]);
    assert_eq!(named("c"), ["d", "e"]);
    assert_eq!(named("d"), ["a", "a::inner"]);
    assert!(named("e").is_empty());
    let report = cycles(&graph);
    assert!(report.contains("a, a::inner, b, c, d"), "{report}");
    assert!(report.contains("src/d.rs:4"), "{report}");
    assert!(report.contains("src/a/mod.rs:3"), "{report}");
}

/// Reads every `.rs` file under `dir` as (path relative to `src/`, text).
fn collect(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|error| panic!("read {}: {error}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect(root, &path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            let relative = path.strip_prefix(root).unwrap();
            let relative = relative
                .components()
                .map(|part| part.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            let text = std::fs::read_to_string(&path).unwrap();
            out.push((relative, text));
        }
    }
}

/// `executor/mod.rs` → `executor`, `lib.rs` → the empty path, `main.rs` → none.
fn module_of(relative: &str) -> Option<String> {
    let stem = relative.strip_suffix(".rs")?;
    if stem == "main" {
        return None;
    }
    if stem == "lib" {
        return Some(String::new());
    }
    let mut parts: Vec<&str> = stem.split('/').collect();
    if parts.last() == Some(&"mod") {
        parts.pop();
    }
    Some(parts.join("::"))
}

fn split(module: &str) -> Vec<String> {
    if module.is_empty() {
        Vec::new()
    } else {
        module.split("::").map(str::to_owned).collect()
    }
}

fn build(sources: &[(String, String)]) -> Graph {
    let mut graph = Graph::default();
    for (relative, _) in sources {
        if let Some(module) = module_of(relative) {
            graph.files.insert(module.clone(), relative.clone());
            graph.edges.insert(module, BTreeMap::new());
        }
    }
    let modules: BTreeSet<String> = graph.files.keys().cloned().collect();
    for (relative, text) in sources {
        let Some(module) = module_of(relative) else {
            continue;
        };
        let original: Vec<&str> = text.lines().collect();
        let code = without_tests(&blank_comments_and_strings(text));
        let found = references(&code, &split(&module), &modules);
        let edges = graph.edges.get_mut(&module).unwrap();
        for (offset, path) in found {
            let Some(target) = resolve(&path, &modules) else {
                continue;
            };
            if target == module {
                continue;
            }
            edges.entry(target).or_insert_with(|| {
                let line = code[..offset].matches('\n').count() + 1;
                Reference {
                    file: format!("src/{relative}"),
                    line,
                    text: original.get(line - 1).map_or(String::new(), |l| l.trim().to_owned()),
                }
            });
        }
    }
    graph
}

/// The longest prefix of `path` that is a file module.
fn resolve(path: &[String], modules: &BTreeSet<String>) -> Option<String> {
    (0..=path.len()).rev().map(|len| path[..len].join("::")).find(|candidate| modules.contains(candidate))
}

/// Replaces comments and the contents of string and char literals with
/// spaces, keeping every newline so offsets still give line numbers.
fn blank_comments_and_strings(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
        } else if let Some(hashes) = raw_string_start(&chars, i) {
            // r"…", r#"…"#, br"…": no escapes, ends at the quote and hashes.
            let opening = chars[i..].iter().position(|&ch| ch == '"').unwrap();
            for _ in 0..=opening {
                out.push(' ');
            }
            i += opening + 1;
            while i < chars.len() {
                if chars[i] == '"' && (1..=hashes).all(|k| chars.get(i + k) == Some(&'#')) {
                    for _ in 0..=hashes {
                        out.push(' ');
                    }
                    i += hashes + 1;
                    break;
                }
                out.push(blank(chars[i]));
                i += 1;
            }
        } else if c == '"' {
            out.push(' ');
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if i < chars.len() {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
            out.push(' ');
            i += 1;
        } else if c == '\'' && (next == Some('\\') || chars.get(i + 2) == Some(&'\'')) {
            // A char literal ('x', '\n', '\u{1F600}'); a lone quote is a lifetime.
            out.push(' ');
            i += 1;
            if chars.get(i) == Some(&'\\') {
                out.push(' ');
                i += 1;
            }
            while i < chars.len() && chars[i] != '\'' {
                out.push(' ');
                i += 1;
            }
            out.push(' ');
            i += 1;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// At a raw string start (`r"`, `r#"`, `br#"`), the number of hashes.
fn raw_string_start(chars: &[char], i: usize) -> Option<usize> {
    let before = i.checked_sub(1).map(|k| chars[k]);
    if before.is_some_and(|b| b.is_alphanumeric() || b == '_') {
        return None;
    }
    let mut k = i;
    if chars.get(k) == Some(&'b') {
        k += 1;
    }
    if chars.get(k) != Some(&'r') {
        return None;
    }
    k += 1;
    let mut hashes = 0;
    while chars.get(k) == Some(&'#') {
        hashes += 1;
        k += 1;
    }
    (chars.get(k) == Some(&'"')).then_some(hashes)
}

/// Blanks every item marked `#[cfg(test)]` (a `mod tests { … }`, a `use`,
/// a function), attributes after it included.
fn without_tests(code: &str) -> String {
    let mut bytes = code.as_bytes().to_vec();
    let marker = Regex::new(r"#\[cfg\(\s*test\s*\)\]").unwrap();
    for found in marker.find_iter(code) {
        let start = found.start();
        let mut i = found.end();
        let mut depth = 0usize;
        while i < bytes.len() {
            match bytes[i] {
                b'(' | b'[' => depth += 1,
                b')' | b']' => depth = depth.saturating_sub(1),
                b';' if depth == 0 => break,
                b'{' if depth == 0 => {
                    i = matching_brace(&bytes, i);
                    break;
                }
                _ => {}
            }
            i += 1;
        }
        for byte in &mut bytes[start..(i + 1).min(code.len())] {
            if *byte != b'\n' {
                *byte = b' ';
            }
        }
    }
    String::from_utf8(bytes).expect("only ASCII bytes were replaced")
}

/// The index of the `}` closing the `{` at `open` (or the end).
fn matching_brace(bytes: &[u8], open: usize) -> usize {
    let mut depth = 0usize;
    for (i, &byte) in bytes.iter().enumerate().skip(open) {
        match byte {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
    }
    bytes.len().saturating_sub(1)
}

/// Every path this file names, made absolute, with the offset it was named at.
fn references(code: &str, module: &[String], modules: &BTreeSet<String>) -> Vec<(usize, Vec<String>)> {
    // Inline `mod name { … }` blocks: `super` inside one is the file itself.
    let inline = Regex::new(r"\bmod\s+([A-Za-z_]\w*)\s*\{").unwrap();
    let blocks: Vec<(usize, usize, String)> = inline
        .captures_iter(code)
        .map(|caps| {
            let whole = caps.get(0).unwrap();
            let open = whole.end() - 1;
            (whole.start(), matching_brace(code.as_bytes(), open), caps[1].to_owned())
        })
        .collect();
    let scope_at = |offset: usize| -> Vec<String> {
        let mut scope = module.to_vec();
        for (start, end, name) in &blocks {
            if *start < offset && offset <= *end {
                scope.push(name.clone());
            }
        }
        scope
    };

    let mut found = Vec::new();
    let mut aliases: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut rest = code.as_bytes().to_vec();

    // `use` trees first: each leaf is a reference, and a leaf naming a
    // module binds that name for the code below.
    let keyword = Regex::new(r"(?:^|[^\w$])use\s").unwrap();
    let mut search_from = 0;
    while let Some(found_use) = keyword.find_at(code, search_from) {
        let start = found_use.end();
        let end = code[start..].find(';').map_or(code.len(), |k| start + k);
        search_from = end;
        let scope = scope_at(start);
        let mut leaves = Vec::new();
        let tree = code[start..end].split_whitespace().collect::<Vec<_>>().join(" ");
        use_tree(&tree, &mut Vec::new(), &mut leaves);
        for (path, binding) in leaves {
            let Some(absolute) = absolute(&path, &scope, modules, &aliases) else {
                continue;
            };
            if modules.contains(&absolute.join("::")) {
                if let Some(name) = binding {
                    aliases.insert(name, absolute.clone());
                }
            }
            found.push((start, absolute));
        }
        for byte in &mut rest[found_use.start()..end] {
            if *byte != b'\n' {
                *byte = b' ';
            }
        }
    }

    // Then every `a::b::c` path in the remaining code.
    let rest = String::from_utf8(rest).expect("only ASCII bytes were replaced");
    let path = Regex::new(r"(?:^|[^\w:])\$?([A-Za-z_]\w*(?:\s*::\s*[A-Za-z_]\w*)+)").unwrap();
    for caps in path.captures_iter(&rest) {
        let matched = caps.get(1).unwrap();
        let segments: Vec<String> = matched.as_str().split("::").map(|s| s.trim().to_owned()).collect();
        let scope = scope_at(matched.start());
        if let Some(absolute) = absolute(&segments, &scope, modules, &aliases) {
            found.push((matched.start(), absolute));
        }
    }
    found
}

/// A path as written, made absolute from `scope`; `None` for a path into
/// another crate or a local name.
fn absolute(
    path: &[String],
    scope: &[String],
    modules: &BTreeSet<String>,
    aliases: &BTreeMap<String, Vec<String>>,
) -> Option<Vec<String>> {
    let first = path.first()?;
    let (mut base, mut rest): (Vec<String>, &[String]) = match first.as_str() {
        "crate" => (Vec::new(), &path[1..]),
        "self" => (scope.to_vec(), &path[1..]),
        "super" => (scope.to_vec(), path),
        name => {
            let mut child = scope.to_vec();
            child.push(name.to_owned());
            if modules.contains(&child.join("::")) {
                (child, &path[1..])
            } else if let Some(target) = aliases.get(name) {
                (target.clone(), &path[1..])
            } else {
                return None;
            }
        }
    };
    while rest.first().is_some_and(|s| s == "super") {
        base.pop()?;
        rest = &rest[1..];
    }
    base.extend(rest.iter().filter(|s| *s != "self").cloned());
    Some(base)
}

/// Flattens a use tree (`crate::a::{b, c::{D, self}, e as f}`) into its
/// leaves, each with the name it binds (`None` for `*` and `_`).
fn use_tree(text: &str, prefix: &mut Vec<String>, out: &mut Vec<(Vec<String>, Option<String>)>) {
    let text = text.trim().trim_start_matches("::").trim();
    if text.is_empty() {
        return;
    }
    if let Some(open) = text.find('{') {
        let head = &text[..open];
        let pushed = push_segments(head, prefix);
        let close = matching_brace(text.as_bytes(), open);
        let inner = &text[open + 1..close];
        let mut depth = 0usize;
        let mut item_start = 0;
        for (i, byte) in inner.bytes().enumerate() {
            match byte {
                b'{' => depth += 1,
                b'}' => depth -= 1,
                b',' if depth == 0 => {
                    use_tree(&inner[item_start..i], prefix, out);
                    item_start = i + 1;
                }
                _ => {}
            }
        }
        use_tree(&inner[item_start..], prefix, out);
        prefix.truncate(prefix.len() - pushed);
        return;
    }
    let (path, alias) = match text.split_once(" as ") {
        Some((path, alias)) => (path.trim(), Some(alias.trim().to_owned())),
        None => (text, None),
    };
    let pushed = push_segments(path, prefix);
    let binding = match (alias, prefix.last()) {
        (Some(alias), _) if alias == "_" => None,
        (Some(alias), _) => Some(alias),
        (None, Some(last)) if last == "*" => None,
        (None, Some(last)) if last == "self" => prefix.len().checked_sub(2).map(|k| prefix[k].clone()),
        (None, last) => last.cloned(),
    };
    let leaf: Vec<String> = prefix.iter().filter(|s| *s != "*").cloned().collect();
    out.push((leaf, binding));
    prefix.truncate(prefix.len() - pushed);
}

fn push_segments(path: &str, prefix: &mut Vec<String>) -> usize {
    let segments: Vec<String> =
        path.split("::").map(|s| s.trim().trim_start_matches('$').to_owned()).filter(|s| !s.is_empty()).collect();
    let count = segments.len();
    prefix.extend(segments);
    count
}

/// Every strongly connected component of more than one file, with each of
/// its edges and one example, and a shortest circle through it.
fn cycles(graph: &Graph) -> String {
    let mut report = String::new();
    for component in strongly_connected(graph) {
        if component.len() < 2 {
            continue;
        }
        let members: BTreeSet<&String> = component.iter().collect();
        let names: Vec<&str> = component.iter().map(|m| if m.is_empty() { "(lib)" } else { m.as_str() }).collect();
        let _ = writeln!(report, "\ncircle of {} files: {}", component.len(), names.join(", "));
        let _ = writeln!(report, "  for example: {}", shortest_circle(graph, &members));
        for from in &component {
            for (to, example) in &graph.edges[from] {
                if members.contains(to) {
                    let _ = writeln!(
                        report,
                        "  {} -> {}    {}:{}: {}",
                        graph.files[from], graph.files[to], example.file, example.line, example.text
                    );
                }
            }
        }
    }
    report
}

/// Tarjan's algorithm; components sorted, each one sorted.
fn strongly_connected(graph: &Graph) -> Vec<Vec<String>> {
    struct State<'a> {
        graph: &'a Graph,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        components: Vec<Vec<String>>,
    }
    fn visit<'a>(state: &mut State<'a>, node: &'a str) {
        let next = state.index.len();
        state.index.insert(node, next);
        state.low.insert(node, next);
        state.stack.push(node);
        state.on_stack.insert(node);
        for target in state.graph.edges[node].keys() {
            let target = target.as_str();
            if !state.index.contains_key(target) {
                visit(state, target);
                let low = state.low[node].min(state.low[target]);
                state.low.insert(node, low);
            } else if state.on_stack.contains(target) {
                let low = state.low[node].min(state.index[target]);
                state.low.insert(node, low);
            }
        }
        if state.low[node] == state.index[node] {
            let mut component = Vec::new();
            loop {
                let member = state.stack.pop().unwrap();
                state.on_stack.remove(member);
                component.push(member.to_owned());
                if member == node {
                    break;
                }
            }
            component.sort();
            state.components.push(component);
        }
    }
    let mut state = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        components: Vec::new(),
    };
    for node in graph.edges.keys() {
        if !state.index.contains_key(node.as_str()) {
            visit(&mut state, node);
        }
    }
    state.components.sort();
    state.components
}

/// A shortest circle from the component's first member back to itself.
fn shortest_circle(graph: &Graph, members: &BTreeSet<&String>) -> String {
    let start = *members.iter().next().unwrap();
    let mut previous: BTreeMap<&String, &String> = BTreeMap::new();
    let mut queue = VecDeque::from([start]);
    'search: while let Some(node) = queue.pop_front() {
        for target in graph.edges[node].keys() {
            if !members.contains(target) || previous.contains_key(target) {
                continue;
            }
            previous.insert(target, node);
            if target == start {
                break 'search;
            }
            queue.push_back(target);
        }
    }
    let mut path = vec![start];
    let mut node = previous[start];
    while node != start {
        path.push(node);
        node = previous[node];
    }
    path.push(start);
    path.reverse();
    path.iter().map(|m| graph.files[*m].as_str()).collect::<Vec<_>>().join(" -> ")
}
