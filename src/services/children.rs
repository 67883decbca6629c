//! The services handle as the process layer's observer: children are tracked
//! on the run and on the current step's frame, their lines become events.

use std::time::Instant;

use super::{frame, Services};
use crate::cancel::Interrupt;
use crate::events::EventKind;
use crate::process::observer::{Observer, OutputSink};
use crate::process::Tree;
use crate::secrets::Redactor;

impl Observer for Services {
    fn detached(&self) -> bool {
        frame::detached()
    }

    fn starting(&self, tag: &str) {
        self.reaper_told_of(tag);
    }

    fn started(&self, group: &Tree) {
        self.track_group(group);
        frame::record_group(group);
    }

    fn finished(&self, group: &Tree) {
        self.untrack_group(group);
    }

    fn interrupted(&self) -> Option<Interrupt> {
        frame::check(&self.cancel)
    }

    fn next_deadline(&self) -> Option<Instant> {
        frame::next_deadline(&self.cancel)
    }

    fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    fn output(&self) -> OutputSink<'_> {
        let at = frame::location();
        Box::new(move |stream, line, quiet| {
            self.bus.emit(EventKind::Output { at: at.clone(), stream, line, quiet });
        })
    }

    fn flush(&self) {
        self.bus.flush();
    }
}
