//! The run as a Gantt chart in inline SVG, from the journal's timestamps:
//! phases and their steps as bars, retries as ticks on their step, undo as
//! bars of its own, approvals and analysis decisions as markers. The step
//! that failed the run is outlined and links to its error.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use super::svg::{text, titled, APPROVAL, BAD, BAND, GREY, INK, LIGHT, OK, WARN};
use crate::report::format::format_duration;
use crate::report::record::RunRecord;

pub fn parse(ts: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339(ts).ok()
}

/// A marker on a row: when, its colour and what it says.
struct Mark {
    at: SystemTime,
    colour: &'static str,
    title: String,
}

struct Row {
    label: String,
    depth: usize,
    bold: bool,
    span: Option<(SystemTime, SystemTime)>,
    colour: &'static str,
    title: String,
    failing: bool,
    marks: Vec<Mark>,
}

impl Row {
    fn new(label: String, depth: usize) -> Self {
        Self {
            label,
            depth,
            bold: false,
            span: None,
            colour: GREY,
            title: String::new(),
            failing: false,
            marks: Vec::new(),
        }
    }
}

fn colour(status: &str) -> &'static str {
    match status {
        "ok" => OK,
        "failed" | "interrupted" => BAD,
        "running" => WARN,
        _ => GREY,
    }
}

/// A bar from its start and duration, or to `end` while `status` is running.
fn span(started: Option<&str>, duration_ms: u64, status: &str, end: SystemTime) -> Option<(SystemTime, SystemTime)> {
    let start = parse(started?)?;
    let stop = if status == "running" { end.max(start) } else { start + Duration::from_millis(duration_ms) };
    Some((start, stop))
}

fn rows(record: &RunRecord, failing: Option<(&str, &str)>, end: SystemTime) -> Vec<Row> {
    let mut rows = Vec::new();
    for phase in &record.phases {
        let mut row = Row::new(format!("phase {}", phase.name), 0);
        row.bold = true;
        let first_step = phase.steps.iter().filter_map(|s| s.started.as_deref()).min();
        row.span = span(phase.started.as_deref().or(first_step), phase.duration_ms, &phase.status, end);
        row.colour = colour(&phase.status);
        row.title = format!("phase {}: {}, {}", phase.name, phase.status, took(phase.duration_ms));
        let gates: Vec<_> =
            record.gates.iter().filter(|g| g.phase.as_deref() == Some(&phase.name) && g.step.is_none()).collect();
        row.marks.extend(gates.iter().filter_map(|g| gate_mark(g)));
        rows.push(row);
        rows.extend(gates.iter().filter_map(|g| wait_row(g, 1)));
        for s in &phase.steps {
            let name = s.step.rsplit('/').next().unwrap_or(&s.step);
            let attempts = if s.attempts > 1 { format!(" ({} attempts)", s.attempts) } else { String::new() };
            let mut row = Row::new(format!("{name}{attempts}"), s.step.matches('/').count() + 1);
            row.span = span(s.started.as_deref(), s.duration_ms, &s.status, end);
            row.colour = colour(&s.status);
            row.failing = failing == Some((phase.name.as_str(), s.step.as_str()));
            row.title = format!("{}: {}, {}{attempts}", s.step, s.status.replace('_', " "), took(s.duration_ms));
            if let Some(e) = &s.error {
                let _ = write!(row.title, ": {e}");
            }
            for (ts, message) in &s.retries {
                row.marks.extend(parse(ts).map(|at| Mark { at, colour: WARN, title: message.clone() }));
            }
            let gates: Vec<_> = record
                .gates
                .iter()
                .filter(|g| g.phase.as_deref() == Some(&phase.name) && g.step.as_deref() == Some(&s.step))
                .collect();
            row.marks.extend(gates.iter().filter_map(|g| gate_mark(g)));
            let depth = row.depth + 1;
            rows.push(row);
            rows.extend(gates.iter().filter_map(|g| wait_row(g, depth)));
        }
    }
    if !record.undo.is_empty() {
        let mut head = Row::new("undo".into(), 0);
        head.bold = true;
        rows.push(head);
        for u in &record.undo {
            let mut row = Row::new(format!("↶ {}", u.step.as_deref().unwrap_or("")), 1);
            row.span = span(Some(&u.started), u.duration_ms, &u.status, end);
            row.colour = if u.status == "ok" { WARN } else { BAD };
            row.title = format!("undo {}: {}, {}", u.step.as_deref().unwrap_or(""), u.status, took(u.duration_ms));
            rows.push(row);
        }
    }
    let decisions: Vec<Mark> = record
        .events
        .iter()
        .filter(|e| e.kind.ends_with("_decision") || e.kind.ends_with("_rollback") || e.kind.ends_with("_switch_back"))
        .filter_map(|e| {
            let verdict = e.data["verdict"].as_str().unwrap_or("fail");
            let colour = match verdict {
                "pass" => OK,
                "inconclusive" => WARN,
                _ => BAD,
            };
            let title = e.data["title"].as_str().unwrap_or(&e.kind);
            let why = e.data["reason"].as_str().unwrap_or("");
            Some(Mark { at: parse(&e.ts)?, colour, title: format!("{title}: {} {why}", e.kind.replace('_', " ")) })
        })
        .collect();
    if !decisions.is_empty() {
        let mut row = Row::new("analysis decisions".into(), 0);
        row.bold = true;
        row.marks = decisions;
        rows.push(row);
    }
    rows
}

/// An approval or gate as a marker: approvals in their own colour.
fn gate_mark(g: &crate::report::record::GateRecord) -> Option<Mark> {
    let at = parse(&g.ts)?;
    let colour = if g.name.starts_with("approval: ") {
        APPROVAL
    } else if g.passed {
        OK
    } else {
        BAD
    };
    let given = g.provenance();
    Some(Mark { at, colour, title: format!("{} {} {given}", g.name, if g.passed { "passed" } else { "failed" }) })
}

/// An approval asked for on a terminal: a bar from the asking to the answer.
fn wait_row(g: &crate::report::record::GateRecord, depth: usize) -> Option<Row> {
    let name = g.name.strip_prefix("approval: ")?;
    let (from, to) = (parse(g.waited_since.as_deref()?)?, parse(&g.ts)?);
    let waited = to.duration_since(from).unwrap_or_default();
    let mut row = Row::new(format!("⧗ approval {name}"), depth);
    row.span = Some((from, to.max(from)));
    row.colour = APPROVAL;
    let answer = if g.passed { "given" } else { "refused" };
    row.title = format!("approval {name}: waited {}, {answer} {}", format_duration(waited), g.provenance());
    Some(row)
}

fn took(ms: u64) -> String {
    format_duration(Duration::from_millis(ms))
}

/// The axis step: the round interval that gives about eight ticks.
fn tick_step(span_ms: u64) -> u64 {
    const STEPS: [u64; 18] = [
        10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000, 600_000,
        1_800_000, 3_600_000,
    ];
    STEPS.into_iter().find(|s| span_ms / s <= 8).unwrap_or(3_600_000 * (span_ms / 3_600_000 / 8 + 1))
}

/// The timeline; `failing` is the (phase, step) that failed the run.
pub fn draw(record: &RunRecord, failing: Option<(&str, &str)>) -> String {
    const W: f64 = 960.0;
    const LABEL: f64 = 230.0;
    const ROW: f64 = 20.0;
    const TOP: f64 = 24.0;
    let start = record.started.as_deref().and_then(parse).unwrap_or(SystemTime::UNIX_EPOCH);
    // The end: the run's, or the latest moment the journal knows of.
    let latest = record
        .steps()
        .filter_map(|(_, s)| s.finished.as_deref().and_then(parse))
        .chain(record.events.iter().filter_map(|e| parse(&e.ts)))
        .chain(record.undo.iter().filter_map(|u| parse(&u.started).map(|t| t + Duration::from_millis(u.duration_ms))))
        .max();
    let end = record.finished.as_deref().and_then(parse).into_iter().chain(latest).max().unwrap_or(start).max(start);
    let rows = rows(record, failing, end);
    let span_ms = u64::try_from(end.duration_since(start).unwrap_or_default().as_millis()).unwrap_or(u64::MAX).max(1);
    let plot = W - LABEL - 16.0;
    let x = |t: SystemTime| {
        let ms = t.duration_since(start).unwrap_or_default().as_millis() as f64;
        LABEL + plot * (ms / span_ms as f64).min(1.0)
    };
    let height = TOP + ROW * rows.len() as f64 + 8.0;
    let mut s = format!(
        r#"<svg class="timeline" viewBox="0 0 {W} {height}" role="img" aria-label="timeline of the run"><title>timeline of the run</title>"#
    );
    let step = tick_step(span_ms);
    let mut t = 0;
    while t <= span_ms {
        let tx = LABEL + plot * (t as f64 / span_ms as f64);
        let _ = write!(
            s,
            r#"<line x1="{tx:.1}" x2="{tx:.1}" y1="{:.1}" y2="{:.1}" stroke="{LIGHT}"/>"#,
            TOP - 4.0,
            height - 4.0
        );
        text(&mut s, tx, TOP - 8.0, "middle", "tick", &format!("+{}", took(t)));
        t += step;
    }
    for (i, row) in rows.iter().enumerate() {
        let y = TOP + ROW * i as f64;
        if i % 2 == 1 {
            let _ = write!(s, r#"<rect x="0" y="{y:.1}" width="{W}" height="{ROW}" fill="{BAND}" opacity="0.6"/>"#);
        }
        let class = match (row.failing, row.bold) {
            (true, _) => "label fail",
            (_, true) => "label strong",
            _ => "label",
        };
        let mark = if row.failing { "✗ " } else { "" };
        let label: String = format!("{mark}{}", row.label).chars().take(34 - row.depth.min(6) * 2).collect();
        text(&mut s, 6.0 + 12.0 * row.depth as f64, y + 14.0, "start", class, &label);
        if let Some((a, b)) = row.span {
            let (x0, x1) = (x(a), x(b));
            let stroke = if row.failing { format!(r#" stroke="{INK}" stroke-width="2""#) } else { String::new() };
            let open = format!(
                r#"<rect x="{x0:.1}" y="{:.1}" width="{:.1}" height="{:.1}" rx="2" fill="{}"{stroke}>"#,
                y + 4.0,
                (x1 - x0).max(2.0),
                ROW - 8.0,
                row.colour
            );
            if row.failing {
                let _ = write!(s, "<a href=\"#failure\">");
                titled(&mut s, &open, "</rect>", &row.title);
                s.push_str("</a>");
            } else {
                titled(&mut s, &open, "</rect>", &row.title);
            }
        }
        for m in &row.marks {
            let (mx, my) = (x(m.at), y + ROW / 2.0);
            titled(
                &mut s,
                &format!(
                    r#"<path d="M{mx:.1} {:.1} L{:.1} {my:.1} L{mx:.1} {:.1} L{:.1} {my:.1} Z" fill="{}" stroke="white">"#,
                    my - 6.0,
                    mx + 6.0,
                    my + 6.0,
                    mx - 6.0,
                    m.colour
                ),
                "</path>",
                &m.title,
            );
        }
    }
    let _ = write!(
        s,
        r#"<line x1="{LABEL}" x2="{LABEL}" y1="{:.1}" y2="{:.1}" stroke="{GREY}"/>"#,
        TOP - 4.0,
        height - 4.0
    );
    s.push_str("</svg>");
    s
}

/// The colours of the timeline, for the legend under it.
pub fn legend() -> String {
    let items = [(OK, "ok"), (BAD, "failed"), (WARN, "retry / undo"), (GREY, "skipped"), (APPROVAL, "approval")];
    let mut s = String::from(r#"<svg class="legend" viewBox="0 0 620 20" role="img" aria-label="legend">"#);
    for (i, (c, what)) in items.iter().enumerate() {
        let x = 4.0 + 124.0 * i as f64;
        let _ = write!(s, r#"<rect x="{x:.1}" y="4" width="14" height="12" rx="2" fill="{c}"/>"#);
        text(&mut s, x + 20.0, 15.0, "start", "label", what);
    }
    s.push_str("</svg>");
    s
}
