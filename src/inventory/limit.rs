//! Ansible's host patterns, as `--limit` takes them: `web`, `web:db` or
//! `web,db` (either), `web:&prod` (both), `web:!web03` and `!db` (but not),
//! globs `web0*` and regular expressions `~web0[1-3]`, over group names and
//! host names. Every part must match something: a misspelt exclusion would
//! otherwise leave in the host it meant to leave out.

use std::collections::BTreeSet;
use std::fmt;

use super::host::Host;

/// A pattern that cannot be used, or a part of it that matches no host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitError {
    pub pattern: String,
    pub message: String,
    pub hint: String,
}

impl fmt::Display for LimitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "host pattern `{}`: {}", self.pattern, self.message)
    }
}

impl std::error::Error for LimitError {}

/// The hosts `pattern` selects, in inventory order.
pub fn limit(hosts: &[Host], pattern: &str) -> Result<Vec<Host>, LimitError> {
    let views: Vec<(&str, &[String])> = hosts.iter().map(|h| (h.name.as_str(), h.groups.as_slice())).collect();
    Ok(select(&views, pattern)?.into_iter().map(|i| hosts[i].clone()).collect())
}

/// The indexes of the hosts, given as `(name, groups)`, that `pattern`
/// selects, in order.
pub fn select(hosts: &[(&str, &[String])], pattern: &str) -> Result<Vec<usize>, LimitError> {
    let error = |message: String, hint: &str| LimitError { pattern: pattern.to_string(), message, hint: hint.into() };
    let terms = split(pattern);
    if terms.is_empty() {
        return Err(error("the pattern is empty".into(), "name a group or a host, e.g. --limit web"));
    }
    let groups: BTreeSet<&str> =
        hosts.iter().flat_map(|(_, groups)| groups.iter().map(String::as_str)).chain(["all"]).collect();
    // Unions first, then intersections, then exclusions, as Ansible orders them.
    let mut ordered: Vec<&str> = terms.iter().filter(|t| !t.starts_with(['!', '&'])).copied().collect();
    if ordered.is_empty() {
        ordered.push("all");
    }
    ordered.extend(terms.iter().filter(|t| t.starts_with('&')));
    ordered.extend(terms.iter().filter(|t| t.starts_with('!')));
    let mut chosen: BTreeSet<usize> = BTreeSet::new();
    for term in ordered {
        let (op, body) = match term.as_bytes()[0] {
            b'!' | b'&' => (term.as_bytes()[0], &term[1..]),
            _ => (b'+', term),
        };
        let matched = matching(hosts, &groups, body).map_err(|e| error(e, "a regular expression follows `~`"))?;
        if matched.is_empty() {
            return Err(error(
                format!("`{body}` matches no group or host of the inventory"),
                "check the spelling; `capstan list -i FILE` shows the inventory's hosts and groups",
            ));
        }
        match op {
            b'!' => chosen.retain(|i| !matched.contains(i)),
            b'&' => chosen.retain(|i| matched.contains(i)),
            _ => chosen.extend(matched),
        }
    }
    if chosen.is_empty() {
        return Err(error("no hosts matched".into(), "the pattern leaves out every host; check the `!` and `&` parts"));
    }
    Ok(chosen.into_iter().collect())
}

/// `a,b` splits on commas; otherwise on colons outside `[...]`.
fn split(pattern: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    if pattern.contains(',') {
        parts.extend(pattern.split(','));
    } else {
        let (mut depth, mut start) = (0i32, 0);
        for (i, c) in pattern.char_indices() {
            match c {
                '[' => depth += 1,
                ']' => depth -= 1,
                ':' if depth <= 0 => {
                    parts.push(&pattern[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        parts.push(&pattern[start..]);
    }
    parts.into_iter().map(str::trim).filter(|p| !p.is_empty()).collect()
}

/// The hosts (by index) one term names: the hosts of the groups it
/// matches; host names too when no group matches or the term is a glob or
/// an expression (as Ansible does).
fn matching(hosts: &[(&str, &[String])], groups: &BTreeSet<&str>, term: &str) -> Result<BTreeSet<usize>, String> {
    let special = term.starts_with('~') || term.contains(['.', '?', '*', '[']);
    let test: Box<dyn Fn(&str) -> bool> = if let Some(expr) = term.strip_prefix('~') {
        let re = regex::Regex::new(&format!("^(?:{expr})")).map_err(|e| format!("`{term}`: {e}"))?;
        Box::new(move |s| re.is_match(s))
    } else if term.contains(['*', '?', '[']) {
        let glob = glob::Pattern::new(term).map_err(|e| format!("`{term}` is not a valid glob: {e}"))?;
        Box::new(move |s| glob.matches(s))
    } else {
        let exact = term.to_string();
        Box::new(move |s| s == exact)
    };
    let matched_groups: Vec<&str> = groups.iter().copied().filter(|g| test(g)).collect();
    let mut out: BTreeSet<usize> = hosts
        .iter()
        .enumerate()
        .filter(|(_, (_, host_groups))| {
            matched_groups.iter().any(|g| *g == "all" || host_groups.iter().any(|hg| hg == g))
        })
        .map(|(i, _)| i)
        .collect();
    if matched_groups.is_empty() || special {
        out.extend(hosts.iter().enumerate().filter(|(_, (name, _))| test(name)).map(|(i, _)| i));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(name: &str, groups: &[&str]) -> Host {
        Host {
            name: name.into(),
            address: name.into(),
            port: None,
            user: None,
            identity: None,
            groups: groups.iter().map(ToString::to_string).collect(),
            vars: std::collections::BTreeMap::new(),
        }
    }

    fn fleet() -> Vec<Host> {
        vec![
            host("web01", &["web", "prod"]),
            host("web02", &["web"]),
            host("web03", &["web", "prod"]),
            host("db01", &["db", "prod"]),
            host("db02", &["db"]),
        ]
    }

    fn names(pattern: &str) -> Vec<String> {
        limit(&fleet(), pattern).unwrap().into_iter().map(|h| h.name).collect()
    }

    #[test]
    fn unions_intersections_exclusions_and_globs() {
        assert_eq!(names("web"), ["web01", "web02", "web03"]);
        assert_eq!(names("db:web01"), ["web01", "db01", "db02"]);
        assert_eq!(names("db,web01"), ["web01", "db01", "db02"]);
        assert_eq!(names("web:&prod"), ["web01", "web03"]);
        assert_eq!(names("web:!web03"), ["web01", "web02"]);
        assert_eq!(names("!db"), ["web01", "web02", "web03"]);
        assert_eq!(names("all:!prod"), ["web02", "db02"]);
        assert_eq!(names("*02"), ["web02", "db02"]);
        assert_eq!(names("w*"), ["web01", "web02", "web03"]);
        assert_eq!(names("~(web|db)0[13]"), ["web01", "web03", "db01"]);
        assert_eq!(names("db0[12]:!db01"), ["db02"]);
    }

    #[test]
    fn what_matches_nothing_is_an_error() {
        let e = limit(&fleet(), "web:!wbe03").unwrap_err();
        assert_eq!(e.message, "`wbe03` matches no group or host of the inventory");
        assert_eq!(limit(&fleet(), "web:&db").unwrap_err().message, "no hosts matched");
        assert!(limit(&fleet(), "~(").unwrap_err().message.starts_with("`~(`"));
        assert_eq!(limit(&fleet(), " , ").unwrap_err().message, "the pattern is empty");
    }
}
