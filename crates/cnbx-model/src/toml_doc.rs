//! Reading someone else's TOML file into a serde type, with errors that never quote the file:
//! a syntax error is told by line and column with (an excerpt of) the parser's message, a value
//! of the wrong type by its dotted key and what it must be.

use std::borrow::Cow;
use std::ops::Range;

use serde::de::DeserializeOwned;
use toml::de::{DeTable, DeValue};

/// Why a TOML file could not be read into its type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TomlProblem {
    /// The parser failed at a place in the file.
    #[error("line {line}, column {column}: {message}")]
    At {
        /// 1-based line.
        line: usize,
        /// 1-based column (in bytes).
        column: usize,
        /// The parser's message, as an excerpt.
        message: String,
    },
    /// The parser failed without saying where.
    #[error("{0}")]
    Message(String),
    /// A key holds a value of the wrong type.
    #[error("'{key}' must be {expected}")]
    Type {
        /// The dotted key (array indices left out).
        key: String,
        /// What the value must be (`a string`, `an array of tables`, …).
        expected: &'static str,
    },
}

/// Parses `text` and deserialises a `T` from it, passing every key `T` does not read to
/// `unknown` (as a dotted path without array indices). `expected` says what the value of a
/// dotted key must be, for type errors.
pub(crate) fn read<T: DeserializeOwned>(
    text: &str,
    mut unknown: impl FnMut(String),
    expected: impl Fn(&str) -> &'static str,
) -> Result<T, TomlProblem> {
    let doc = DeTable::parse(text).map_err(|e| located(text, &e))?;
    let root = doc.get_ref().clone();
    let deserializer = toml::de::Deserializer::from(doc);
    serde_ignored::deserialize(deserializer, |path| unknown(dotted(&path))).map_err(|e: toml::de::Error| {
        let key = e.span().and_then(|span| key_at(&root, &span, ""));
        let is_type = e.message().starts_with("invalid type") || e.message().starts_with("invalid value");
        match key {
            Some(key) if is_type => {
                let expected = expected(&key);
                TomlProblem::Type { key, expected }
            }
            _ => located(text, &e),
        }
    })
}

/// The line and column of `e` in `text`, and its message as an excerpt.
fn located(text: &str, e: &toml::de::Error) -> TomlProblem {
    let message = cnbx_fs::excerpt(e.message().trim());
    match e.span() {
        Some(span) => {
            let before = &text.as_bytes()[..span.start.min(text.len())];
            let line = before.iter().filter(|b| **b == b'\n').count() + 1;
            let column = before.iter().rev().take_while(|b| **b != b'\n').count() + 1;
            TomlProblem::At { line, column, message }
        }
        None => TomlProblem::Message(message),
    }
}

/// A `serde_ignored` path as dotted keys, array indices left out.
fn dotted(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path as P;
    let mut keys: Vec<&str> = Vec::new();
    let mut at = path;
    loop {
        match at {
            P::Root => break,
            P::Map { parent, key } => {
                keys.push(key);
                at = parent;
            }
            P::Seq { parent, .. } | P::Some { parent } | P::NewtypeStruct { parent } | P::NewtypeVariant { parent } => {
                at = parent;
            }
        }
    }
    keys.reverse();
    keys.join(".")
}

/// The dotted key (array indices left out) whose value, or one of whose array items, has
/// exactly `span`, below `parent` (`""` for the top level).
pub fn key_at(table: &DeTable<'_>, span: &Range<usize>, parent: &str) -> Option<String> {
    for (key, value) in table.iter() {
        let name: Cow<'_, str> =
            if parent.is_empty() { Cow::Borrowed(key.get_ref()) } else { format!("{parent}.{}", key.get_ref()).into() };
        if value.span() == *span {
            return Some(name.into_owned());
        }
        let found = match value.get_ref() {
            DeValue::Table(t) => key_at(t, span, &name),
            DeValue::Array(a) => a.iter().find_map(|item| {
                if item.span() == *span {
                    return Some(name.to_string());
                }
                match item.get_ref() {
                    DeValue::Table(t) => key_at(t, span, &name),
                    _ => None,
                }
            }),
            _ => None,
        };
        if found.is_some() {
            return found;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, serde::Deserialize)]
    #[serde(default)]
    struct Doc {
        #[allow(dead_code)]
        a: Vec<String>,
        #[allow(dead_code)]
        t: Inner,
    }

    #[derive(Debug, Default, serde::Deserialize)]
    #[serde(default)]
    struct Inner {
        #[allow(dead_code)]
        flag: bool,
    }

    fn read_doc(text: &str) -> Result<Vec<String>, TomlProblem> {
        let mut unknown = Vec::new();
        read::<Doc>(text, |k| unknown.push(k), |k| if k == "t.flag" { "a boolean" } else { "an array of strings" })
            .map(|_| unknown)
    }

    #[test]
    fn problems_name_the_key_or_the_place_and_never_quote_values() {
        assert_eq!(read_doc("x = 1\n[t]\ny = 2\n").unwrap(), ["x", "t.y"]);
        let e = read_doc("a = [\"ok\", 1]\n").unwrap_err();
        assert_eq!(e.to_string(), "'a' must be an array of strings");
        let e = read_doc("[t]\nflag = \"supersecret\"\n").unwrap_err();
        assert_eq!(e.to_string(), "'t.flag' must be a boolean");
        let e = read_doc("a = [\n").unwrap_err();
        assert!(matches!(e, TomlProblem::At { line: 1, .. }), "{e:?}");
    }
}
