//! What the report's drawings share: escaping text for SVG and HTML, numbers
//! short enough for an axis, and the palette (named by meaning, so the
//! timeline and the charts agree on what red says).

use std::fmt::Write as _;

pub const OK: &str = "#15803d";
pub const BAD: &str = "#b91c1c";
pub const WARN: &str = "#b45309";
pub const GREY: &str = "#6b7280";
pub const LIGHT: &str = "#e5e7eb";
pub const BAND: &str = "#f3f4f6";
pub const INK: &str = "#111827";
pub const ACCENT: &str = "#1d4ed8";
pub const APPROVAL: &str = "#7c3aed";

/// Text as SVG and HTML both read it: the drawings are inserted unescaped.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// A number with three significant digits and no trailing zeros:
/// `0.0004`, `181`, `12.5`.
pub fn num(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return if v.is_finite() { "0".into() } else { v.to_string() };
    }
    // Truncation is intended: the magnitude's integer part.
    #[allow(clippy::cast_possible_truncation)]
    let magnitude = v.abs().log10().floor() as i32;
    let decimals = usize::try_from((2 - magnitude).clamp(0, 8)).unwrap_or(0);
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Text at a point; `anchor` is `start`, `middle` or `end`.
pub fn text(out: &mut String, x: f64, y: f64, anchor: &str, class: &str, s: &str) {
    let _ = write!(out, r#"<text x="{x:.1}" y="{y:.1}" text-anchor="{anchor}" class="{class}">{}</text>"#, esc(s));
}

/// A tooltip for the element just opened (`<circle ...>`), closing it.
pub fn titled(out: &mut String, open: &str, close: &str, title: &str) {
    let _ = write!(out, "{open}<title>{}</title>{close}", esc(title));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_short() {
        assert_eq!(num(0.0004), "0.0004");
        assert_eq!(num(0.012_345), "0.0123");
        assert_eq!(num(181.0), "181");
        assert_eq!(num(12.5), "12.5");
        assert_eq!(num(0.0), "0");
        assert_eq!(esc("<a href=\"x\">'&'"), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;");
    }
}
