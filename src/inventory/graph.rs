//! What both inventory formats describe: groups with their hosts, children
//! and vars, and hosts with their own vars. [`Parsed::hosts`] turns it into
//! [`Host`]s the way Ansible does: the implicit `all` and `ungrouped`
//! groups, a host in a group is in the group's parents too, and variables
//! merged from the shallowest group to the deepest, then the host's own.

use std::collections::{BTreeSet, HashMap};

use serde_json::{Map, Value};

use super::error::Located;
use super::host::{Host, ADDRESS_VARS, IDENTITY_VARS, PORT_VARS, USER_VARS};

#[derive(Debug, Default)]
struct Group {
    name: String,
    /// Each child with the line that names it.
    children: Vec<(String, usize)>,
    vars: Map<String, Value>,
    /// From `group_vars/` files.
    file_vars: Map<String, Value>,
}

#[derive(Debug)]
struct HostEntry {
    name: String,
    line: usize,
    vars: Map<String, Value>,
    /// The groups the inventory puts the host in, by index.
    groups: BTreeSet<usize>,
}

/// An inventory as read, before groups are resolved.
#[derive(Debug, Default)]
pub struct Parsed {
    groups: Vec<Group>,
    group_index: HashMap<String, usize>,
    hosts: Vec<HostEntry>,
    host_index: HashMap<String, usize>,
}

impl Parsed {
    /// The group `name`, made when first named.
    pub fn group(&mut self, name: &str) {
        self.group_mut(name);
    }

    pub fn has_group(&self, name: &str) -> bool {
        self.group_index.contains_key(name)
    }

    fn group_mut(&mut self, name: &str) -> &mut Group {
        let i = self.group_at(name);
        &mut self.groups[i]
    }

    fn group_at(&mut self, name: &str) -> usize {
        *self.group_index.entry(name.to_string()).or_insert_with(|| {
            self.groups.push(Group { name: name.to_string(), ..Group::default() });
            self.groups.len() - 1
        })
    }

    /// The names of the groups and of the hosts, as read so far.
    pub fn names(&self) -> (Vec<String>, Vec<String>) {
        (self.groups.iter().map(|g| g.name.clone()).collect(), self.hosts.iter().map(|h| h.name.clone()).collect())
    }

    /// Vars over the host's own (a `host_vars/` file).
    pub fn set_host_vars(&mut self, host: &str, vars: Map<String, Value>) {
        if let Some(&i) = self.host_index.get(host) {
            self.hosts[i].vars.extend(vars);
        }
    }

    /// Vars from a `group_vars/` file.
    pub fn set_group_file_vars(&mut self, group: &str, vars: Map<String, Value>) {
        self.group_mut(group).file_vars.extend(vars);
    }

    pub fn set_group_var(&mut self, group: &str, key: String, value: Value) {
        self.group_mut(group).vars.insert(key, value);
    }

    pub fn add_child(&mut self, parent: &str, child: &str, line: usize) {
        self.group_mut(child);
        let parent = self.group_mut(parent);
        if !parent.children.iter().any(|(c, _)| c == child) {
            parent.children.push((child.to_string(), line));
        }
    }

    /// The host `name` in `group`, with vars merged over any it had.
    pub fn add_host(&mut self, group: &str, name: &str, vars: Map<String, Value>, line: usize) {
        let i = *self.host_index.entry(name.to_string()).or_insert_with(|| {
            self.hosts.push(HostEntry { name: name.to_string(), line, vars: Map::new(), groups: BTreeSet::new() });
            self.hosts.len() - 1
        });
        self.hosts[i].vars.extend(vars);
        let g = self.group_at(group);
        self.hosts[i].groups.insert(g);
    }

    /// The hosts, in the order they first appear.
    pub fn hosts(mut self) -> Result<Vec<Host>, Located> {
        self.group("all");
        self.group("ungrouped");
        let parents = self.parents()?;
        let depth = depths(&self.groups, &parents);
        let (all, ungrouped) = (self.group_index["all"], self.group_index["ungrouped"]);
        let mut out = Vec::with_capacity(self.hosts.len());
        for host in &self.hosts {
            let mut groups: BTreeSet<usize> = host.groups.iter().copied().filter(|g| *g != all).collect();
            if groups.len() > 1 {
                groups.remove(&ungrouped);
            }
            if groups.is_empty() {
                groups.insert(ungrouped);
            }
            let mut with_ancestors = BTreeSet::from([all]);
            let mut pending: Vec<usize> = groups.into_iter().collect();
            while let Some(g) = pending.pop() {
                if with_ancestors.insert(g) {
                    pending.extend(&parents[g]);
                }
            }
            let mut ordered: Vec<usize> = with_ancestors.iter().copied().collect();
            let priority = |g: usize| self.groups[g].vars.get("ansible_group_priority").and_then(Value::as_i64);
            ordered.sort_by_key(|&g| (depth[g], priority(g).unwrap_or(1), self.groups[g].name.clone()));
            // As Ansible combines them: `all`'s vars, then its group_vars
            // file, then the other groups' vars, then their files.
            let mut vars = Map::new();
            let (others, files) = (&ordered[1..], ordered.iter().skip(1));
            for source in [&self.groups[all].vars, &self.groups[all].file_vars] {
                vars.extend(source.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
            for g in others {
                vars.extend(self.groups[*g].vars.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
            for g in files {
                vars.extend(self.groups[*g].file_vars.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
            vars.extend(host.vars.clone());
            vars.remove("ansible_group_priority");
            let mut names: Vec<String> =
                with_ancestors.iter().filter(|g| **g != all).map(|g| self.groups[*g].name.clone()).collect();
            names.sort();
            out.push(host_from(host, names, vars)?);
        }
        Ok(out)
    }

    /// Each group's parents: the groups that list it as a child, or `all`
    /// for a group no other group lists. A loop of children is an error.
    fn parents(&self) -> Result<Vec<Vec<usize>>, Located> {
        let all = self.group_index["all"];
        let mut parents = vec![Vec::new(); self.groups.len()];
        for (p, group) in self.groups.iter().enumerate() {
            for (child, line) in &group.children {
                let c = self.group_index[child];
                if c == all {
                    return Err(Located::new(*line, format!("group `{}` lists `all` as a child", group.name))
                        .hint("every group is already a child of `all`; remove it from the children"));
                }
                parents[c].push(p);
            }
        }
        for (g, list) in parents.iter_mut().enumerate() {
            if g != all && list.is_empty() {
                list.push(all);
            }
        }
        // A loop: walk the children depth first, a group met again on the
        // path is one; the message points at the child that closes it.
        let mut state = vec![Walk::New; self.groups.len()];
        for start in 0..self.groups.len() {
            self.find_loop(start, 1, &mut state, &mut Vec::new())?;
        }
        Ok(parents)
    }

    fn find_loop(&self, g: usize, via: usize, state: &mut [Walk], path: &mut Vec<usize>) -> Result<(), Located> {
        if state[g] == Walk::Done {
            return Ok(());
        }
        if path.len() >= MOST_NESTED {
            let group = &self.groups[g].name;
            return Err(Located::new(via, format!("groups are nested more than {MOST_NESTED} deep (under `{group}`)"))
                .hint("flatten the children: a group's parents need not be listed one inside the other"));
        }
        state[g] = Walk::OnPath;
        path.push(g);
        for (child, line) in &self.groups[g].children {
            let c = self.group_index[child];
            if state[c] == Walk::OnPath {
                let from = path.iter().position(|p| *p == c).unwrap_or(0);
                let names: Vec<&str> = path[from..].iter().map(|i| self.groups[*i].name.as_str()).collect();
                return Err(Located::new(
                    *line,
                    format!("groups are their own children: {} -> {child}", names.join(" -> ")),
                )
                .hint("remove one of these children so the groups form a tree"));
            }
            self.find_loop(c, *line, state, path)?;
        }
        path.pop();
        state[g] = Walk::Done;
        Ok(())
    }
}

/// How deep groups may be nested, `all` not counted.
const MOST_NESTED: usize = 256;

/// Where the search for loops of children is with a group.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Walk {
    New,
    OnPath,
    Done,
}

/// How far each group is from `all` by its longest line of parents: deeper
/// groups' vars win.
fn depths(groups: &[Group], parents: &[Vec<usize>]) -> Vec<usize> {
    fn depth(g: usize, parents: &[Vec<usize>], memo: &mut [Option<usize>]) -> usize {
        if let Some(d) = memo[g] {
            return d;
        }
        let d = parents[g].iter().map(|p| depth(*p, parents, memo) + 1).max().unwrap_or(0);
        memo[g] = Some(d);
        d
    }
    let mut memo = vec![None; groups.len()];
    (0..groups.len()).map(|g| depth(g, parents, &mut memo)).collect()
}

/// The connection variables taken out of `vars` into their fields.
fn host_from(entry: &HostEntry, groups: Vec<String>, mut vars: Map<String, Value>) -> Result<Host, Located> {
    let at = |message: String| {
        Located::new(entry.line, format!("host `{}`: {message}", entry.name))
            .hint("ansible_port is a number; ansible_host, ansible_user and the key file are text")
    };
    let mut take = |names: [&str; 2]| -> Option<(String, Value)> {
        let found =
            names.iter().find_map(|n| vars.get(*n).filter(|v| !v.is_null()).map(|v| ((*n).to_string(), v.clone())));
        for n in names {
            vars.remove(n);
        }
        found
    };
    let text = |(name, value): (String, Value)| -> Result<String, Located> {
        match value {
            Value::String(s) => Ok(s),
            Value::Number(n) => Ok(n.to_string()),
            other => Err(at(format!("{name} must be text, not {other}"))),
        }
    };
    let address = take(ADDRESS_VARS).map(text).transpose()?.unwrap_or_else(|| entry.name.clone());
    let port = match take(PORT_VARS) {
        None => None,
        Some((name, value)) => {
            let port = match &value {
                Value::Number(n) => n.as_i64(),
                Value::String(s) => s.trim().parse::<i64>().ok(),
                _ => None,
            };
            match port.filter(|p| (1..=65535).contains(p)) {
                Some(p) => Some(p),
                None => return Err(at(format!("{name} is {value}, not a port number (1-65535)"))),
            }
        }
    };
    let user = take(USER_VARS).map(text).transpose()?;
    let identity = take(IDENTITY_VARS).map(text).transpose()?.map(|p| home_expanded(&p));
    Ok(Host { name: entry.name.clone(), address, port, user, identity, groups, vars: vars.into_iter().collect() })
}

/// `~/key` as ssh would read it; `ssh -i` given as an argument gets no shell.
fn home_expanded(path: &str) -> String {
    match (path.strip_prefix("~/"), std::env::var("HOME")) {
        (Some(rest), Ok(home)) if !home.is_empty() => format!("{}/{rest}", home.trim_end_matches('/')),
        _ => path.to_string(),
    }
}
