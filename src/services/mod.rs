//! The services handle every primitive receives: the event bus, the
//! redactor, cancellation, and the one dry-run decision. Primitives never
//! print; they emit through this handle.

mod children;
pub mod frame;
mod handle;
pub mod wait;

pub use handle::{Action, JournalHealth, Services};
