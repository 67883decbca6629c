//! Reading a function's trailing `#{...}` options into a typed struct, with
//! one wording for every namespace: an unknown key names the valid ones, a
//! wrong value names the option.
//!
//! An options struct derives `Deserialize` and `Default`, carries
//! `#[serde(default, deny_unknown_fields)]`, and uses [`Seconds`] for
//! durations.

use std::time::Duration;

use rhai::{Dynamic, EvalAltResult, LexError, Map, ParseErrorType};
use serde::de::{self, DeserializeOwned, Visitor};
use serde::Deserialize;

use crate::failure::{failure, FailureKind, RhaiResultOf};
use crate::playbook::parse_duration;

/// `options` as `O`; `what` is the function as a script calls it (`git::sha`).
pub fn read<O: DeserializeOwned>(options: &Map, what: &str) -> RhaiResultOf<O> {
    let names = option_names::<O>();
    if let Some(key) = options.keys().find(|k| !names.contains(&k.as_str())) {
        let list = if names.is_empty() { "none".to_string() } else { names.join(", ") };
        return Err(failure(
            FailureKind::Usage,
            format!("unknown option `{key}` for `{what}`; the options are: {list}"),
        ));
    }
    rhai::serde::from_dynamic(&Dynamic::from_map(options.clone())).map_err(|whole| {
        // The struct's fields all have defaults, so the one key that fails
        // on its own is the one to name.
        let culprit = options.iter().find_map(|(key, value)| {
            let one = Map::from([(key.clone(), value.clone())]);
            rhai::serde::from_dynamic::<O>(&Dynamic::from_map(one)).err().map(|e| (key.to_string(), e))
        });
        match culprit {
            Some((key, e)) => failure(FailureKind::Usage, format!("{what} option `{key}`: {}", explain(&e))),
            None => failure(FailureKind::Usage, format!("{what} options: {}", explain(&whole))),
        }
    })
}

/// What a deserialization error says, without rhai's framing.
fn explain(err: &EvalAltResult) -> String {
    match err {
        EvalAltResult::ErrorMismatchOutputType(wanted, found, _) => format!("expected {wanted}, not {found}"),
        EvalAltResult::ErrorParsing(ParseErrorType::BadInput(LexError::ImproperSymbol(_, message)), _) => {
            message.clone()
        }
        other => other.to_string(),
    }
}

/// The field names of an options struct, as serde's derive declares them.
pub fn option_names<O: DeserializeOwned>() -> &'static [&'static str] {
    struct Fields(Option<&'static [&'static str]>);
    #[derive(Debug)]
    struct Stop;
    impl std::fmt::Display for Stop {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("stop")
        }
    }
    impl std::error::Error for Stop {}
    impl de::Error for Stop {
        fn custom<T: std::fmt::Display>(_: T) -> Self {
            Stop
        }
    }
    impl<'de> de::Deserializer<'de> for &mut Fields {
        type Error = Stop;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
            Err(Stop)
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Stop> {
            self.0 = Some(fields);
            Err(Stop)
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
            unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
        }
    }
    let mut fields = Fields(None);
    let _ = O::deserialize(&mut fields);
    fields.0.unwrap_or(&[])
}

/// A duration option: `"30s"`, `"1h 30m"`, or a number of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Seconds(pub Duration);

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Dynamic::deserialize(deserializer)?;
        parse_duration(&value).map(Seconds).map_err(de::Error::custom)
    }
}

/// A text option that takes any value as its text (`PORT: 8080` is `"8080"`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Text(pub String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Dynamic::deserialize(deserializer).map(|v| Text(v.to_string()))
    }
}

/// A list option: an array of values as text, or one string as a list of one.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct List(pub Vec<String>);

impl<'de> Deserialize<'de> for List {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Dynamic::deserialize(deserializer)?;
        super::values::list(&value, true).map(List).ok_or_else(|| de::Error::custom("must be an array"))
    }
}

/// A text option passed on to a tool as `--flag value`, when it is set.
pub fn flag(args: &mut Vec<String>, name: &str, value: Option<&Text>) {
    if let Some(v) = value {
        args.extend([name.to_string(), v.0.clone()]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize, Default, Debug)]
    #[serde(default, deny_unknown_fields)]
    struct Example {
        dir: Option<String>,
        check: bool,
        timeout: Option<Seconds>,
    }

    fn map(pairs: &[(&str, Dynamic)]) -> Map {
        pairs.iter().map(|(k, v)| ((*k).into(), v.clone())).collect()
    }

    fn message(err: &EvalAltResult) -> String {
        crate::failure::error_message(err)
    }

    #[test]
    fn reads_the_fields() {
        let o: Example =
            read(&map(&[("dir", "app".into()), ("timeout", "1m".into()), ("check", true.into())]), "x").unwrap();
        assert_eq!(o.dir.as_deref(), Some("app"));
        assert_eq!(o.timeout, Some(Seconds(Duration::from_secs(60))));
        assert!(o.check);
    }

    #[test]
    fn an_unknown_key_lists_the_options() {
        let err = read::<Example>(&map(&[("dri", "app".into())]), "git::sha").unwrap_err();
        assert_eq!(message(&err), "unknown option `dri` for `git::sha`; the options are: dir, check, timeout");
    }

    #[test]
    fn a_bad_value_names_its_option() {
        let err = read::<Example>(&map(&[("dir", "a".into()), ("timeout", "soon".into())]), "run").unwrap_err();
        assert!(message(&err).starts_with("run option `timeout`: \"soon\" is not a duration"), "{}", message(&err));
        let err = read::<Example>(&map(&[("check", "yes".into())]), "run").unwrap_err();
        assert_eq!(message(&err), "run option `check`: expected bool, not string");
    }
}
