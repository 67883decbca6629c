//! Host patterns as Ansible writes them: `web[01:20].example.com` (zero
//! padding kept), `db-[a:f]`, `node[1:10:2]`, several ranges in one name,
//! and an optional `:PORT` after the name.

/// One host pattern expanded: the names, and the port written after them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expanded {
    pub names: Vec<String>,
    pub port: Option<i64>,
}

/// The names a pattern stands for and its `:PORT`, or why it is not a
/// pattern (an empty range, begin and end of different widths, ...).
pub fn expand(pattern: &str) -> Result<Expanded, String> {
    let (name, port) = split_port(pattern)?;
    if name.is_empty() {
        return Err(format!("host `{pattern}` has no name"));
    }
    Ok(Expanded { names: expand_name(name)?, port })
}

/// `name:2222` is a name and a port; an IPv6 address (several colons) and
/// a range (`web[1:3]`) keep their colons.
fn split_port(pattern: &str) -> Result<(&str, Option<i64>), String> {
    let outside_ranges = |i: usize| pattern[..i].matches('[').count() == pattern[..i].matches(']').count();
    let colons: Vec<usize> = pattern.match_indices(':').map(|(i, _)| i).filter(|&i| outside_ranges(i)).collect();
    match colons.as_slice() {
        [i] => {
            let port = &pattern[i + 1..];
            match port.parse::<u16>() {
                Ok(p) if p > 0 && port.bytes().all(|b| b.is_ascii_digit()) => Ok((&pattern[..*i], Some(i64::from(p)))),
                _ => Err(format!("host `{pattern}`: `{port}` is not a port number (1-65535)")),
            }
        }
        _ => Ok((pattern, None)),
    }
}

/// The most hosts one pattern may stand for: a typo such as
/// `web[1:100000000]` is an error, not a machine out of memory.
pub const MOST_HOSTS: usize = 100_000;

/// Every `[...]` range replaced by each of its values, the first range
/// varying slowest.
fn expand_name(name: &str) -> Result<Vec<String>, String> {
    let mut names = vec![String::new()];
    let mut rest = name;
    while let Some(open) = rest.find('[') {
        let close =
            rest[open..].find(']').map(|i| open + i).ok_or_else(|| format!("host `{name}`: `[` is not closed"))?;
        let (head, range) = (&rest[..open], &rest[open + 1..close]);
        if head.contains(']') {
            return Err(format!("host `{name}` has a `]` without its `[`"));
        }
        let values = range_values(name, range)?;
        if names.len().saturating_mul(values.len()) > MOST_HOSTS {
            return Err(format!("host `{name}` stands for more than {MOST_HOSTS} hosts"));
        }
        names = names.iter().flat_map(|n| values.iter().map(move |v| format!("{n}{head}{v}"))).collect();
        rest = &rest[close + 1..];
    }
    if rest.contains(']') {
        return Err(format!("host `{name}` has a `]` without its `[`"));
    }
    Ok(names.into_iter().map(|n| n + rest).collect())
}

/// The values of `begin:end` or `begin:end:step`: numbers (a leading zero
/// makes them zero-padded to the width of `begin`) or letters.
fn range_values(name: &str, range: &str) -> Result<Vec<String>, String> {
    let bad = |why: &str| format!("host `{name}`: bad range [{range}]: {why}");
    let bounds: Vec<&str> = range.split(':').collect();
    let (begin, end, step) = match bounds.as_slice() {
        [b, e] => (*b, *e, "1"),
        [b, e, s] => (*b, *e, *s),
        _ => return Err(bad("a range is [begin:end] or [begin:end:step]")),
    };
    let begin = if begin.is_empty() { "0" } else { begin };
    if end.is_empty() {
        return Err(bad("the end is missing"));
    }
    let step: usize = step.parse().ok().filter(|s| *s > 0).ok_or_else(|| bad("the step must be a positive number"))?;
    if let (Some(b), Some(e)) = (single_letter(begin), single_letter(end)) {
        if b > e {
            return Err(bad("the begin comes after the end"));
        }
        return Ok((b..=e).step_by(step).map(String::from).collect());
    }
    let (Ok(b), Ok(e)) = (begin.parse::<u64>(), end.parse::<u64>()) else {
        return Err(bad("begin and end must be both numbers or both single letters"));
    };
    if b > e {
        return Err(bad("the begin comes after the end"));
    }
    if (e - b) / step as u64 >= MOST_HOSTS as u64 {
        return Err(bad(&format!("more than {MOST_HOSTS} hosts")));
    }
    let width = if begin.len() > 1 && begin.starts_with('0') {
        if begin.len() != end.len() {
            return Err(bad("a zero-padded range needs begin and end of the same width"));
        }
        begin.len()
    } else {
        0
    };
    Ok((b..=e).step_by(step).map(|n| format!("{n:0width$}")).collect())
}

fn single_letter(s: &str) -> Option<char> {
    let mut chars = s.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if c.is_ascii_alphabetic() => Some(c),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(p: &str) -> Vec<String> {
        expand(p).unwrap().names
    }

    #[test]
    fn numeric_ranges_keep_their_padding() {
        let n = names("web[01:20].example.com");
        assert_eq!(n.len(), 20);
        assert_eq!(n[0], "web01.example.com");
        assert_eq!(n[19], "web20.example.com");
        assert_eq!(names("db[8:10]"), ["db8", "db9", "db10"]);
    }

    #[test]
    fn letters_steps_and_nested_ranges() {
        assert_eq!(names("db-[a:c]"), ["db-a", "db-b", "db-c"]);
        assert_eq!(names("n[1:10:4]"), ["n1", "n5", "n9"]);
        assert_eq!(names("r[1:2]-[a:b]"), ["r1-a", "r1-b", "r2-a", "r2-b"]);
        assert_eq!(names("x[:2]"), ["x0", "x1", "x2"]);
    }

    #[test]
    fn ports_after_names_and_ranges() {
        assert_eq!(expand("web1:2222").unwrap(), Expanded { names: vec!["web1".into()], port: Some(2222) });
        let e = expand("10.0.0.[1:2]:22").unwrap();
        assert_eq!((e.names, e.port), (vec!["10.0.0.1".to_string(), "10.0.0.2".to_string()], Some(22)));
        assert_eq!(expand("fe80::1").unwrap().port, None);
    }

    #[test]
    fn bad_ranges_say_why() {
        for (p, why) in [
            ("web[20:01]", "begin comes after the end"),
            ("web[01:100]", "same width"),
            ("web[1:x]", "both numbers"),
            ("web[1:3:0]", "positive"),
            ("web[1:]", "end is missing"),
            ("web[1:2", "not closed"),
            ("web[1]", "[begin:end]"),
            ("web:http", "not a port"),
            ("web[1:100000000]", "more than 100000 hosts"),
            ("w[1:1000]-[1:1000]", "stands for more than 100000 hosts"),
            ("web]", "without its `[`"),
        ] {
            let e = expand(p).unwrap_err();
            assert!(e.contains(why), "{p}: {e}");
        }
    }
}
