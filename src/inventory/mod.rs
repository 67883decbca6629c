//! Ansible inventories: the INI and YAML formats read into [`Host`]s, and
//! host patterns ([`limit`]) that pick some of them. Nothing here knows
//! about scripts or the command line; `api::inventory` and `session` use it.

mod error;
mod graph;
mod host;
mod ini;
mod limit;
mod literal;
mod load;
mod range;
mod vars_files;
mod yaml;

pub use error::{InventoryError, Located};
pub use host::Host;
pub use limit::{limit, select, LimitError};
pub use load::load;
