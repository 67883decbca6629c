//! `--junit FILE`: one testsuite per phase, one testcase per step, written
//! from the run record when the run ends.

use std::path::Path;
use std::time::Duration;

use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};
use quick_xml::events::attributes::Attribute;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::QName;
use quick_xml::{Reader, Writer};

use super::record::{RunRecord, StepRecord};

/// `phases` are the phases this attempt ran: a resumed run (`--resume`, one
/// CI job per phase) reports those, and the steps that completed in an
/// earlier attempt as skipped, so no step is counted twice across attempts.
pub fn write(record: &RunRecord, path: &Path, phases: &[String]) -> std::io::Result<()> {
    let playbook =
        Path::new(&record.playbook).file_stem().map_or_else(|| "playbook".into(), |s| s.to_string_lossy().into_owned());
    let mut report = Report::new(format!("capstan {playbook}"));
    if let Some(ms) = record.duration_ms {
        report.set_time(Duration::from_millis(ms));
    }
    for phase in record.phases.iter().filter(|p| phases.contains(&p.name)) {
        let mut suite = TestSuite::new(phase.name.as_str());
        suite.set_time(Duration::from_millis(phase.duration_ms));
        suite.add_property(Property::new("run_id", record.run_id.as_str()));
        if let Some(trace) = &record.trace_id {
            suite.add_property(Property::new("trace_id", trace.as_str()));
        }
        let classname = format!("{playbook}.{}", phase.name);
        for step in &phase.steps {
            let mut case = TestCase::new(step.step.as_str(), status(step));
            case.set_classname(classname.as_str());
            case.set_time(Duration::from_millis(step.duration_ms));
            if !step.tail.is_empty() {
                case.set_system_out(tail(step));
            }
            suite.add_test_case(case);
        }
        // A phase that failed outside any step still shows up as a failure.
        let step_failed = phase.steps.iter().any(|s| s.status == "failed" && !s.allow_failure);
        if phase.status == "failed" && !step_failed {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
            status.set_message(phase.error.clone().unwrap_or_else(|| "phase failed".into()));
            status.set_description(phase.tail.iter().cloned().collect::<Vec<_>>().join("\n"));
            let mut case = TestCase::new(format!("(phase {})", phase.name), status);
            case.set_classname(classname.as_str());
            suite.add_test_case(case);
        }
        report.add_test_suite(suite);
    }
    save(&report, path)
}

/// The top level failed before any phase ran (a missing secret, a bad
/// param): CI still gets a report, one failed testcase saying why. A
/// missing secret names the testcase after it (`secret NAME`).
pub fn write_top_level_error(path: &Path, playbook: &str, message: &str, at: Option<&str>) -> std::io::Result<()> {
    let stem = Path::new(playbook).file_stem().map_or_else(|| "playbook".into(), |s| s.to_string_lossy().into_owned());
    let name = message
        .strip_prefix("secret `")
        .and_then(|rest| rest.split_once("` is not set"))
        .map_or_else(|| "(top level)".to_string(), |(secret, _)| format!("secret {secret}"));
    let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
    status.set_message(message);
    if let Some(at) = at {
        status.set_type(at);
    }
    let mut case = TestCase::new(name, status);
    case.set_classname(format!("{stem}.(top level)"));
    let mut suite = TestSuite::new("(top level)");
    suite.add_test_case(case);
    let mut report = Report::new(format!("capstan {stem}"));
    report.add_test_suite(suite);
    save(&report, path)
}

fn save(report: &Report, path: &Path) -> std::io::Result<()> {
    let xml = report.to_string().map_err(std::io::Error::other)?;
    let xml = skipped_not_disabled(&xml).map_err(std::io::Error::other)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, xml)
}

/// quick-junit counts a suite's skipped testcases in a `disabled` attribute,
/// which the `JUnit` schema Jenkins xUnit validates against forbids; it
/// expects `skipped`. Renames the attribute on every `<testsuite>`; the rest
/// of the document is copied event by event, unchanged.
fn skipped_not_disabled(xml: &str) -> Result<String, quick_xml::Error> {
    let mut reader = Reader::from_str(xml);
    let mut writer = Writer::new(Vec::with_capacity(xml.len()));
    loop {
        match reader.read_event()? {
            Event::Eof => break,
            Event::Start(tag) if tag.name().as_ref() == b"testsuite" => {
                writer.write_event(Event::Start(renamed(&tag)?))?;
            }
            Event::Empty(tag) if tag.name().as_ref() == b"testsuite" => {
                writer.write_event(Event::Empty(renamed(&tag)?))?;
            }
            event => writer.write_event(event)?,
        }
    }
    Ok(String::from_utf8(writer.into_inner()).expect("copied from a str"))
}

fn renamed(tag: &BytesStart) -> Result<BytesStart<'static>, quick_xml::Error> {
    let mut out = BytesStart::new("testsuite");
    for attribute in tag.attributes() {
        let attribute = attribute.map_err(quick_xml::Error::from)?;
        let key = if attribute.key.as_ref() == b"disabled" { QName(b"skipped") } else { attribute.key };
        out.push_attribute(Attribute { key, value: attribute.value });
    }
    Ok(out)
}

fn tail(step: &StepRecord) -> String {
    step.tail.iter().cloned().collect::<Vec<_>>().join("\n")
}

fn status(step: &StepRecord) -> TestCaseStatus {
    match step.status.as_str() {
        "ok" if step.resumed => {
            let mut s = TestCaseStatus::skipped();
            s.set_message("completed in an earlier attempt of this run");
            s
        }
        "ok" | "dry_run" => TestCaseStatus::success(),
        "skipped" => TestCaseStatus::skipped(),
        "failed" if step.allow_failure => {
            let mut s = TestCaseStatus::skipped();
            s.set_message(format!("failed, allowed to fail: {}", step.error.clone().unwrap_or_default()));
            s
        }
        other => {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
            let message = match other {
                "failed" => step.error.clone().unwrap_or_else(|| "failed".into()),
                _ => "did not finish (the run stopped while it ran)".into(),
            };
            s.set_message(message);
            if let Some(at) = &step.error_at {
                s.set_type(at.as_str());
            }
            s.set_description(tail(step));
            s
        }
    }
}
