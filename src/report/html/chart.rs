//! Charts of analysis samples as inline SVG: per metric, every sample in
//! order, grouped by rung, against its limit (a dashed line) and the
//! baseline's value where there is one; and the quality gates, each value
//! against its threshold.

use std::fmt::Write as _;

use super::svg::{esc, num, text, titled, ACCENT, BAD, BAND, GREY, INK, LIGHT, OK};

/// One sample of one metric.
pub struct Point {
    /// The rung (`5%`) or sample it belongs to: points of a group share a band.
    pub group: String,
    pub value: Option<f64>,
    pub limit: Option<f64>,
    pub baseline: Option<f64>,
    pub ok: Option<bool>,
}

const W: f64 = 720.0;
const H: f64 = 230.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 26.0;
const BOTTOM: f64 = 40.0;

/// The value axis: 0 (or below, for negative values) to a round number
/// above the largest one drawn, in four round steps.
fn scale(points: &[Point]) -> (f64, f64, f64) {
    let all = points.iter().flat_map(|p| [p.value, p.limit, p.baseline]).flatten();
    let (lo, hi) = all.fold((0.0_f64, 0.0_f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let span = if hi <= lo { 1.0 } else { (hi - lo) * 1.05 };
    let rough = span / 4.0;
    let magnitude = 10_f64.powf(rough.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0].into_iter().map(|m| m * magnitude).find(|s| *s >= rough).unwrap_or(rough);
    let lo = (lo / step).floor() * step;
    let hi = lo + step * ((hi - lo) / step).floor().max(0.0) + step;
    (lo, hi, step)
}

/// A metric's samples as a chart; `metric` names it for the reader.
pub fn metric(metric: &str, points: &[Point]) -> String {
    let (lo, hi, step) = scale(points);
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let slot = plot_w / points.len().max(1) as f64;
    let x = |i: usize| LEFT + (i as f64 + 0.5) * slot;
    let y = |v: f64| TOP + plot_h * (1.0 - (v - lo) / (hi - lo));
    let mut out = format!(
        r#"<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-label="{}"><title>{}</title>"#,
        esc(metric),
        esc(&format!("{metric}: every sample against its limit"))
    );
    // Rung bands, alternately shaded, labelled below the axis.
    let mut start = 0;
    let mut band = 0;
    while start < points.len() {
        let end = (start..points.len()).find(|&i| points[i].group != points[start].group).unwrap_or(points.len());
        let (x0, x1) = (LEFT + start as f64 * slot, LEFT + end as f64 * slot);
        if band % 2 == 0 {
            let _ =
                write!(out, r#"<rect x="{x0:.1}" y="{TOP}" width="{:.1}" height="{plot_h}" fill="{BAND}"/>"#, x1 - x0);
        }
        text(&mut out, f64::midpoint(x0, x1), H - BOTTOM + 28.0, "middle", "label", &points[start].group);
        band += 1;
        start = end;
    }
    // Value grid.
    let mut v = lo;
    while v <= hi + step / 2.0 {
        let _ = write!(
            out,
            r#"<line x1="{LEFT}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}" stroke="{LIGHT}"/>"#,
            W - RIGHT,
            y = y(v)
        );
        text(&mut out, LEFT - 6.0, y(v) + 4.0, "end", "tick", &num(v));
        v += step;
    }
    let _ = write!(out, r#"<line x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{:.1}" stroke="{GREY}"/>"#, H - BOTTOM);
    // The limit of each sample: a dashed segment across its slot.
    for (i, p) in points.iter().enumerate() {
        if let Some(limit) = p.limit {
            let (x0, x1, ly) = (x(i) - slot / 2.0, x(i) + slot / 2.0, y(limit));
            titled(
                &mut out,
                &format!(
                    r#"<line x1="{x0:.1}" x2="{x1:.1}" y1="{ly:.1}" y2="{ly:.1}" stroke="{BAD}" stroke-width="1.5" stroke-dasharray="6 4">"#
                ),
                "</line>",
                &format!("limit {}", num(limit)),
            );
        }
    }
    line(&mut out, points.iter().enumerate().filter_map(|(i, p)| Some((x(i), y(p.baseline?)))), GREY, "4 3");
    line(&mut out, points.iter().enumerate().filter_map(|(i, p)| Some((x(i), y(p.value?)))), ACCENT, "");
    for (i, p) in points.iter().enumerate() {
        if let Some(b) = p.baseline {
            let (bx, by) = (x(i), y(b));
            titled(
                &mut out,
                &format!(
                    r#"<rect x="{:.1}" y="{:.1}" width="7" height="7" fill="{GREY}" transform="rotate(45 {bx:.1} {by:.1})">"#,
                    bx - 3.5,
                    by - 3.5
                ),
                "</rect>",
                &format!("{} sample {}: baseline {}", p.group, i + 1, num(b)),
            );
        }
        let limit = p.limit.map(|l| format!(", limit {}", num(l))).unwrap_or_default();
        if let Some(v) = p.value {
            let (fill, r, word) = if p.ok == Some(false) { (BAD, 5.5, "breach") } else { (OK, 4.0, "ok") };
            titled(
                &mut out,
                &format!(r#"<circle cx="{:.1}" cy="{:.1}" r="{r}" fill="{fill}" stroke="white">"#, x(i), y(v)),
                "</circle>",
                &format!("{} sample {}: {}{limit} {word}", p.group, i + 1, num(v)),
            );
        } else {
            let (cx, cy) = (x(i), H - BOTTOM - 8.0);
            titled(
                &mut out,
                &format!(r#"<text x="{cx:.1}" y="{cy:.1}" text-anchor="middle" class="nodata" fill="{GREY}">"#),
                "no data</text>",
                &format!("{} sample {}: no data{limit}", p.group, i + 1),
            );
        }
    }
    legend(&mut out, points.iter().any(|p| p.baseline.is_some()));
    out.push_str("</svg>");
    out
}

/// A polyline through the points, when there are two or more.
fn line(s: &mut String, pts: impl Iterator<Item = (f64, f64)>, colour: &str, dash: &str) {
    let pts: Vec<String> = pts.map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
    if pts.len() > 1 {
        let _ = write!(
            s,
            r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="1.5" stroke-dasharray="{dash}"/>"#,
            pts.join(" ")
        );
    }
}

fn legend(s: &mut String, baseline: bool) {
    let y = 14.0;
    let _ = write!(s, r#"<circle cx="{LEFT}" cy="{:.1}" r="4" fill="{OK}"/>"#, y - 4.0);
    text(s, LEFT + 8.0, y, "start", "label", "sample (ok)");
    let _ = write!(s, r#"<circle cx="{:.1}" cy="{:.1}" r="5" fill="{BAD}"/>"#, LEFT + 100.0, y - 4.0);
    text(s, LEFT + 108.0, y, "start", "label", "breach");
    let _ = write!(
        s,
        r#"<line x1="{:.1}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="{BAD}" stroke-width="1.5" stroke-dasharray="6 4"/>"#,
        LEFT + 168.0,
        LEFT + 192.0,
        y - 4.0,
        y - 4.0
    );
    text(s, LEFT + 198.0, y, "start", "label", "limit");
    if baseline {
        let _ = write!(s, r#"<rect x="{:.1}" y="{:.1}" width="7" height="7" fill="{GREY}"/>"#, LEFT + 244.0, y - 8.0);
        text(s, LEFT + 256.0, y, "start", "label", "baseline");
    }
}

/// One quality gate as judged.
pub struct Gate {
    pub label: String,
    pub value: Option<f64>,
    pub comparison: String,
    pub threshold: f64,
    pub ok: bool,
}

/// Each gate on its own row and scale (their units differ): the value as a
/// bar, the threshold as a mark.
pub fn gates(gates: &[Gate]) -> String {
    const ROW: f64 = 28.0;
    const LABEL: f64 = 250.0;
    let height = ROW * gates.len() as f64 + 8.0;
    let bar_w = W - LABEL - 90.0;
    let mut s = format!(r#"<svg class="chart" viewBox="0 0 {W} {height}" role="img" aria-label="quality gates">"#);
    for (i, g) in gates.iter().enumerate() {
        let top = 4.0 + ROW * i as f64;
        let full = g.value.unwrap_or(0.0).abs().max(g.threshold.abs()) * 1.25;
        let full = if full > 0.0 { full } else { 1.0 };
        text(&mut s, LABEL - 8.0, top + 17.0, "end", "label", &g.label);
        let _ = write!(s, r#"<rect x="{LABEL}" y="{:.1}" width="{bar_w:.1}" height="16" fill="{BAND}"/>"#, top + 4.0);
        let shown = g.value.map_or_else(|| "no data".to_string(), num);
        if let Some(v) = g.value {
            let colour = if g.ok { OK } else { BAD };
            let _ = write!(
                s,
                r#"<rect x="{LABEL}" y="{:.1}" width="{:.1}" height="16" fill="{colour}"/>"#,
                top + 4.0,
                bar_w * (v.abs() / full)
            );
        }
        let tx = LABEL + bar_w * (g.threshold.abs() / full);
        let _ = write!(
            s,
            r#"<line x1="{tx:.1}" x2="{tx:.1}" y1="{:.1}" y2="{:.1}" stroke="{INK}" stroke-width="2"/>"#,
            top,
            top + 24.0
        );
        let verdict = if g.ok { "ok" } else { "failed" };
        text(
            &mut s,
            LABEL + bar_w + 6.0,
            top + 17.0,
            "start",
            "label",
            &format!("{shown} {} {} {verdict}", g.comparison, num(g.threshold)),
        );
    }
    s.push_str("</svg>");
    s
}
