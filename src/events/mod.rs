//! Events: the one [`Event`] type the executor, the primitives and the
//! process runner emit, and the [`Bus`] that masks them and fans them out to
//! every output ([`Sink`]).

mod bus;
mod event;

pub use bus::{Bus, Sink};
pub use event::{timestamp, Event, EventKind, Level, Location, RecordedValue, Status, Stream};
