//! The services handle every primitive receives: the event bus (which
//! masks), cancellation, the one dry-run decision, waiting ([`wait`]), HTTP
//! ([`http`]) and retrying ([`retry`]). Primitives never print; they emit
//! through this handle.

mod children;
pub mod frame;
mod handle;
pub mod http;
pub mod retry;
pub mod ssh_masters;
pub mod wait;

pub use handle::{Action, JournalHealth, Services};
