//! Reading a `.tf` file as HCL (hcl-edit, the parser of the hcl-rs project,
//! which keeps byte spans): its top-level blocks, the line of any node, and
//! plain values for the literal parts of expressions, which is what the rules
//! compare. Expressions that need evaluation (variables, references, most
//! function calls) become [`UNKNOWN`], so a rule never mistakes them for a
//! literal.

use std::ops::Range;

use hcl_edit::expr::{Expression, ObjectKey, TraversalOperator, UnaryOperator};
use hcl_edit::structure::{Block, Body};
use hcl_edit::template::{Element, Template};
use hcl_edit::Span;
use serde_json::Value;

/// What an expression that cannot be known without evaluation reads as.
pub(super) const UNKNOWN: &str = "${…}";

/// A parsed file: its top-level bodies, each with the byte offset of the text
/// it was parsed from, and where each line starts.
pub(super) struct File {
    pieces: Vec<(Body, usize)>,
    line_starts: Vec<usize>,
}

/// Where a node's spans are measured from, to turn them into file lines.
#[derive(Clone, Copy)]
pub(super) struct At<'f> {
    line_starts: &'f [usize],
    offset: usize,
}

impl At<'_> {
    /// The 1-based file line a node starts on (the piece's first line if the
    /// node has no span).
    pub(super) fn line(&self, node: &impl Span) -> usize {
        let start = node.span().map_or(0, |r: Range<usize>| r.start);
        self.line_starts.partition_point(|&s| s <= self.offset + start)
    }
}

impl File {
    /// Parse the whole text; if it does not parse (Terraform would refuse it
    /// too, but checkov and a reviewer still read it), parse each top-level
    /// block on its own and keep the ones that parse, so one broken block
    /// does not hide the others.
    pub(super) fn parse(text: &str) -> File {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        let pieces = match hcl_edit::parser::parse_body(text) {
            Ok(body) => vec![(body, 0)],
            Err(_) => top_level_pieces(text)
                .into_iter()
                .filter_map(|r| hcl_edit::parser::parse_body(&text[r.clone()]).ok().map(|b| (b, r.start)))
                .collect(),
        };
        File { pieces, line_starts }
    }

    /// Every top-level block with what its spans are measured from.
    pub(super) fn blocks(&self) -> impl Iterator<Item = (At<'_>, &Block)> {
        self.pieces.iter().flat_map(move |(body, offset)| {
            let at = At { line_starts: &self.line_starts, offset: *offset };
            body.blocks().map(move |b| (at, b))
        })
    }
}

/// The block's labels as text (`resource "aws_iam_policy" "x"` gives both names).
pub(super) fn labels(block: &Block) -> Vec<&str> {
    block.labels.iter().map(hcl_edit::structure::BlockLabel::as_str).collect()
}

/// `resource "KIND" "NAME"`: the kind and the name, for a resource block.
pub(super) fn resource(block: &Block) -> Option<(&str, &str)> {
    match (block.ident.as_str(), labels(block).as_slice()) {
        ("resource", [kind, name]) => Some((kind, name)),
        _ => None,
    }
}

/// Every attribute of a body as a JSON object (nested blocks are left out).
pub(super) fn attributes(body: &Body) -> serde_json::Map<String, Value> {
    body.attributes().map(|a| (a.key.as_str().to_string(), value(&a.value))).collect()
}

/// The literal value of an expression; what needs evaluation is [`UNKNOWN`].
pub(super) fn value(expr: &Expression) -> Value {
    match expr {
        Expression::Null(_) => Value::Null,
        Expression::Bool(b) => Value::Bool(*b.value()),
        Expression::Number(n) => number(n.value().as_i64(), n.value().as_f64(), false),
        Expression::String(s) => Value::String(s.value().clone()),
        Expression::Array(a) => Value::Array(a.iter().map(value).collect()),
        Expression::Object(o) => Value::Object(
            o.iter().filter_map(|(k, v)| Some((key(k)?, value(v.expr())))).collect::<serde_json::Map<_, _>>(),
        ),
        Expression::StringTemplate(t) => render(t).map_or_else(unknown, Value::String),
        Expression::HeredocTemplate(h) => render(&h.template).map_or_else(unknown, Value::String),
        Expression::Parenthesis(p) => value(p.inner()),
        Expression::UnaryOp(op) if *op.operator.value() == UnaryOperator::Neg => match &op.expr {
            Expression::Number(n) => number(n.value().as_i64(), n.value().as_f64(), true),
            _ => unknown(),
        },
        // Converting functions keep the literal they are given.
        Expression::FuncCall(f)
            if f.name.namespace.is_empty()
                && ["jsonencode", "tolist", "toset"].contains(&f.name.name.as_str())
                && f.args.len() == 1 =>
        {
            f.args.get(0).map_or_else(unknown, value)
        }
        _ => unknown(),
    }
}

/// `jsonencode(...)`'s argument, if the expression is that call.
pub(super) fn jsonencode_arg(expr: &Expression) -> Option<&Expression> {
    match expr {
        Expression::FuncCall(f) if f.name.namespace.is_empty() && f.name.name.as_str() == "jsonencode" => f.args.get(0),
        _ => None,
    }
}

/// The value under `name` in an object expression, left as an expression
/// (so its parts keep their spans).
pub(super) fn object_get<'e>(expr: &'e Expression, name: &str) -> Option<&'e Expression> {
    let Expression::Object(o) = expr else { return None };
    o.iter().find(|(k, _)| key(k).as_deref() == Some(name)).map(|(_, v)| v.expr())
}

/// `var.NAME.KEY...` as `[NAME, KEY, ...]`: a reference to a variable, which
/// can be read from its default.
pub(super) fn variable_path(expr: &Expression) -> Option<Vec<&str>> {
    let Expression::Traversal(t) = expr else { return None };
    let Expression::Variable(root) = &t.expr else { return None };
    if root.as_str() != "var" {
        return None;
    }
    t.operators
        .iter()
        .map(|op| match op.value() {
            TraversalOperator::GetAttr(name) => Some(name.as_str()),
            _ => None,
        })
        .collect()
}

fn unknown() -> Value {
    Value::String(UNKNOWN.to_string())
}

fn number(int: Option<i64>, float: Option<f64>, negate: bool) -> Value {
    match (int, float) {
        (Some(i), _) => Value::from(if negate { -i } else { i }),
        (None, Some(f)) => Value::from(if negate { -f } else { f }),
        (None, None) => unknown(),
    }
}

fn key(k: &ObjectKey) -> Option<String> {
    match k {
        ObjectKey::Ident(i) => Some(i.as_str().to_string()),
        ObjectKey::Expression(Expression::String(s)) => Some(s.value().clone()),
        ObjectKey::Expression(_) => None,
    }
}

/// A template's text with every interpolation read as [`UNKNOWN`]; `None`
/// when it has a directive (`%{ if }`), whose text depends on evaluation.
fn render(template: &Template) -> Option<String> {
    let mut out = String::new();
    for element in template {
        match element {
            Element::Literal(l) => out.push_str(l.value()),
            Element::Interpolation(_) => out.push_str(UNKNOWN),
            Element::Directive(_) => return None,
        }
    }
    Some(out)
}

/// Byte ranges of the top-level structures of a file that did not parse as
/// a whole: each ends at a newline where no bracket, string, comment or
/// heredoc is open.
fn top_level_pieces(text: &str) -> Vec<Range<usize>> {
    let bytes = text.as_bytes();
    let mut pieces = Vec::new();
    let (mut start, mut depth, mut i) = (0, 0_i32, 0);
    let mut content = false;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                content = true;
                // An unterminated string ends at its line, whose newline still counts.
                if bytes.get(i) == Some(&b'"') {
                    i += 1;
                }
                continue;
            }
            b'#' => i = skip_line(bytes, i),
            b'/' if bytes.get(i + 1) == Some(&b'/') => i = skip_line(bytes, i),
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i = text[i + 2..].find("*/").map_or(bytes.len(), |e| i + 2 + e + 1);
            }
            b'<' if bytes.get(i + 1) == Some(&b'<') => {
                i = skip_heredoc(text, i);
                content = true;
                continue;
            }
            b'{' | b'[' | b'(' => {
                depth += 1;
                content = true;
            }
            b'}' | b']' | b')' => depth -= 1,
            b'\n' if depth <= 0 => {
                if content {
                    pieces.push(start..i + 1);
                }
                start = i + 1;
                depth = 0;
                content = false;
                i += 1;
                continue;
            }
            c if !c.is_ascii_whitespace() => content = true,
            _ => {}
        }
        i += 1;
    }
    if content {
        pieces.push(start..bytes.len());
    }
    pieces
}

/// The index of the newline ending the line `i` is on (a comment's end).
fn skip_line(bytes: &[u8], i: usize) -> usize {
    bytes[i..].iter().position(|&b| b == b'\n').map_or(bytes.len(), |p| i + p - 1)
}

/// Past a heredoc starting at `i` (`<<ID` or `<<-ID`): the start of the line
/// holding its closing `ID`, or just past `<<` if this is no heredoc.
fn skip_heredoc(text: &str, i: usize) -> usize {
    let rest = &text[i + 2..];
    let rest = rest.strip_prefix('-').unwrap_or(rest);
    let id: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
    let after_id = &rest[id.len()..];
    if id.is_empty() || !after_id.starts_with('\n') && !after_id.starts_with("\r\n") {
        return i + 2;
    }
    let body_start = text.len() - after_id.len();
    let mut pos = body_start + after_id.find('\n').map_or(0, |p| p + 1);
    for line in text[pos..].split_inclusive('\n') {
        if line.trim() == id {
            return pos + line.trim_end().len();
        }
        pos += line.len();
    }
    text.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first_block(text: &str) -> (usize, String) {
        let file = File::parse(text);
        let (at, block) = file.blocks().next().expect("a block");
        (at.line(block), labels(block).join("."))
    }

    #[test]
    fn a_block_is_on_the_line_of_its_header() {
        let text = "# comment\n\n  resource \"aws_security_group\" \"web\" {\n  name = \"x\"\n}\n";
        assert_eq!(first_block(text), (3, "aws_security_group.web".into()));
    }

    #[test]
    fn a_file_that_does_not_parse_keeps_the_blocks_that_do() {
        let text = "data \"x\" \"bad\" {\n  a = 1\n  a = 2\n}\n\ndata \"x\" \"good\" {\n  policy = <<EOF\n{ \"a\": \"}\" }\nEOF\n}\n";
        let file = File::parse(text);
        let found: Vec<(usize, String)> = file.blocks().map(|(at, b)| (at.line(b), labels(b).join("."))).collect();
        assert_eq!(found, vec![(6, "x.good".to_string())]);
    }

    #[test]
    fn nothing_parses_from_garbage_and_nothing_panics() {
        for text in ["resource {", "}}}", "<<", "a = <<EOF\nno end", "\"unterminated", "/* open"] {
            assert_eq!(File::parse(text).blocks().count(), 0, "{text}");
        }
    }

    #[test]
    fn values_keep_literals_and_mark_what_needs_evaluation() {
        let file = File::parse(
            "x {\n  n = -1\n  s = \"a\"\n  r = var.cidr\n  t = \"${var.a}/0\"\n  j = jsonencode({ \"A\": [\"*\"], B = 2 })\n}\n",
        );
        let (_, block) = file.blocks().next().unwrap();
        let a = attributes(&block.body);
        assert_eq!(a["n"], -1);
        assert_eq!(a["s"], "a");
        assert_eq!(a["r"], UNKNOWN);
        assert_eq!(a["t"], format!("{UNKNOWN}/0"));
        assert_eq!(a["j"], serde_json::json!({"A": ["*"], "B": 2}));
    }
}
