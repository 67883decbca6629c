//! One host of an inventory, as a playbook sees it: `#{ name, address,
//! port, user, identity, groups, vars }`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The connection variables that become fields of [`Host`] rather than
/// entries of its `vars`, with the older names Ansible still reads.
pub const ADDRESS_VARS: [&str; 2] = ["ansible_host", "ansible_ssh_host"];
pub const PORT_VARS: [&str; 2] = ["ansible_port", "ansible_ssh_port"];
pub const USER_VARS: [&str; 2] = ["ansible_user", "ansible_ssh_user"];
pub const IDENTITY_VARS: [&str; 2] = ["ansible_ssh_private_key_file", "ansible_private_key_file"];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Host {
    /// The inventory hostname.
    pub name: String,
    /// `ansible_host`, or the name.
    pub address: String,
    /// `ansible_port` (or `name:PORT`); `None` leaves the port to ssh's
    /// own configuration.
    #[serde(default)]
    pub port: Option<i64>,
    /// `ansible_user`; `None` leaves it to ssh's configuration.
    #[serde(default)]
    pub user: Option<String>,
    /// `ansible_ssh_private_key_file`, `~/` expanded.
    #[serde(default)]
    pub identity: Option<String>,
    /// Every group the host is in, parents of its groups too, sorted;
    /// never `all`.
    #[serde(default)]
    pub groups: Vec<String>,
    /// The other variables: host vars over child-group vars over
    /// parent-group vars over `all` vars.
    #[serde(default)]
    pub vars: BTreeMap<String, Value>,
}

/// Words in a variable's name that make its value a secret
/// (`ansible_password`, `ansible_become_pass`, `api_token`).
const SECRET_WORDS: [&str; 5] = ["password", "passwd", "passphrase", "secret", "token"];

impl Host {
    /// The text values of variables whose names say they are secrets, with
    /// their names: the output masks them as it masks `secret(...)`.
    pub fn secret_vars(&self) -> impl Iterator<Item = (&str, &str)> {
        self.vars.iter().filter_map(|(name, value)| {
            let lower = name.to_ascii_lowercase();
            let secret = SECRET_WORDS.iter().any(|w| lower.contains(w)) || lower.ends_with("_pass");
            Some((name.as_str(), value.as_str().filter(|_| secret)?))
        })
    }
}
