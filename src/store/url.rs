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
    /// `s3://bucket/prefix?endpoint=URL&region=R`.
    S3 { bucket: String, prefix: String, endpoint: Option<String>, region: Option<String> },
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
        "s3" => parse_s3(rest),
        other => Err(StoreError::Url(format!("unknown state store `{other}://`; use file://, postgres:// or s3://"))),
    }
}

/// `bucket/prefix?endpoint=URL&region=R` (after `s3://`).
fn parse_s3(rest: &str) -> Result<StateUrl, StoreError> {
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (bucket, prefix) = path.split_once('/').unwrap_or((path, ""));
    if bucket.is_empty() {
        return Err(StoreError::Url("s3:// needs a bucket (s3://bucket/prefix)".into()));
    }
    let (mut endpoint, mut region) = (None, None);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = percent_encoding::percent_decode_str(v).decode_utf8_lossy().into_owned();
        match k {
            "endpoint" if v.starts_with("http://") || v.starts_with("https://") => endpoint = Some(v),
            "endpoint" => return Err(StoreError::Url("endpoint= takes an http:// or https:// URL".into())),
            "region" => region = Some(v),
            other => return Err(StoreError::Url(format!("unknown s3:// option `{other}`; use endpoint= and region="))),
        }
    }
    Ok(StateUrl::S3 { bucket: bucket.to_string(), prefix: prefix.to_string(), endpoint, region })
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
        let wanted = StateUrl::S3 {
            bucket: "b".into(),
            prefix: "team/x".into(),
            endpoint: Some("http://127.0.0.1:9000".into()),
            region: Some("eu".into()),
        };
        assert!(matches!(parse("s3://b/team/x?endpoint=http://127.0.0.1:9000&region=eu"), Ok(u) if u == wanted));
        assert!(parse("s3:///x").is_err());
        assert!(parse("s3://b?endpoint=ftp://x").is_err());
    }
}
