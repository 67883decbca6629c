//! What a running child reports to whoever started it, and what it asks of
//! them: the process layer knows nothing of steps, frames or events.

use std::time::Instant;

use super::tree::Tree;
use crate::cancel::Interrupt;
use crate::events::Stream;
use crate::secrets::Redactor;

/// One output line of a child: which pipe, the masked text, whether the
/// command asked to be quiet.
pub type OutputSink<'a> = Box<dyn Fn(Stream, String, bool) + 'a>;

pub trait Observer {
    /// Whether a child started now belongs to no step (`detach: true`).
    fn detached(&self) -> bool;
    /// A child tagged `tag` is about to start: whatever must outlive
    /// capstan to kill it (the reaper) is told before it exists.
    fn starting(&self, _tag: &str) {}
    /// A child's process group exists; it must be killed if the run stops.
    fn started(&self, group: &Tree);
    /// The group's leader was waited for.
    fn finished(&self, group: &Tree);
    /// Why the wait must stop now, if it must.
    fn interrupted(&self) -> Option<Interrupt>;
    /// The earliest instant at which [`Observer::interrupted`] could say yes.
    fn next_deadline(&self) -> Option<Instant>;
    /// The masks applied to every line before it leaves the process layer.
    fn redactor(&self) -> &Redactor;
    /// Where the lines of a child started now go, fixed on the caller's thread.
    fn output(&self) -> OutputSink<'_>;
    /// Everything emitted so far has reached its consumers.
    fn flush(&self);
}
