//! `--state URL`: which store holds the runs' journals and the locks, parsed
//! before anything runs, and the URL as it may be shown (password masked).

use std::path::PathBuf;

use super::error::StoreError;

/// Where the shared state lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateUrl {
    /// `file://DIR`: the journal folder of this machine, as without `--state`.
    File(PathBuf),
    /// `postgres://user:password@host:port/db`: the URL as given.
    Postgres(String),
}

/// Parse `--state` (or `CAPSTAN_STATE`); the error names what is wrong
/// but not the URL (the caller shows it masked).
pub fn parse(url: &str) -> Result<StateUrl, StoreError> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(StoreError::Url("a state URL starts with file://, postgres:// or s3://".into()));
    };
    match scheme {
        "file" if rest.is_empty() => Err(StoreError::Url("file:// needs a folder (file://DIR)".into())),
        "file" => Ok(StateUrl::File(PathBuf::from(rest))),
        "postgres" | "postgresql" => {
            let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
            if host.is_empty() || host.starts_with('/') {
                return Err(StoreError::Url("postgres:// needs a host (postgres://user@host:port/db)".into()));
            }
            Ok(StateUrl::Postgres(url.to_string()))
        }
        "s3" => Err(StoreError::Url(
            "s3:// state stores are not supported by this version; use postgres:// or file://".into(),
        )),
        other => Err(StoreError::Url(format!("unknown state store `{other}://`; use file://, postgres:// or s3://"))),
    }
}

/// The URL with its password (`user:PASSWORD@`, `password=`) replaced by
/// `***`, for messages.
pub fn masked(url: &str) -> String {
    let (head, query) = url.split_once('?').map_or((url, None), |(h, q)| (h, Some(q)));
    let mut out = match head.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((user, host)) => match user.split_once(':') {
                Some((name, _)) => format!("{scheme}://{name}:***@{host}"),
                None => head.to_string(),
            },
            None => head.to_string(),
        },
        None => head.to_string(),
    };
    if let Some(query) = query {
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") || k.to_ascii_lowercase().contains("secret") => {
                    format!("{k}=***")
                }
                _ => pair.to_string(),
            })
            .collect();
        out.push('?');
        out.push_str(&pairs.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_masked() {
        assert_eq!(masked("postgres://bob:hunter2@db:5432/x"), "postgres://bob:***@db:5432/x");
        assert_eq!(masked("postgres://bob@db/x?password=hunter2&x=1"), "postgres://bob@db/x?password=***&x=1");
        assert_eq!(masked("file:///tmp/j"), "file:///tmp/j");
    }

    #[test]
    fn urls_are_checked() {
        assert!(matches!(parse("file:///tmp/j"), Ok(StateUrl::File(d)) if d == std::path::Path::new("/tmp/j")));
        assert!(matches!(parse("postgres://u@127.0.0.1:5/db"), Ok(StateUrl::Postgres(_))));
        assert!(parse("postgres://u@/db").is_err());
        assert!(parse("redis://x").unwrap_err().to_string().contains("redis"));
        assert!(parse("/tmp/x").is_err());
    }
}
