//! JSON the way Go's `encoding/json` writes and reads it, for pack-compatible labels and
//! `builder inspect --output json`.
//!
//! # Encoding ([`to_string`], [`to_string_indent`])
//!
//! serde_json with a formatter that reproduces Go's output byte for byte for the data we
//! write (strings, booleans, arrays, objects):
//!
//! * keys come in the order the `Serialize` impl emits them (declare struct fields in Go's
//!   struct order); maps must be `BTreeMap<String, _>` so keys are sorted by bytes, as Go
//!   sorts map keys;
//! * `<`, `>`, `&` are written `\u003c`, `\u003e`, `\u0026` and U+2028/U+2029 `\u2028`,
//!   `\u2029` (Go's HTML-safe escaping, on by default in `json.Marshal`); `"` and `\` are
//!   escaped, `\b \f \n \r \t` use their short forms (Go ≥ 1.22) and other control characters
//!   `\u00XX` with lower-case hex; DEL and every other character are written as is;
//! * Go's `nil` slice is `null` and an empty one `[]`: model the difference with
//!   `Option<Vec<_>>`; `omitempty` is `skip_serializing_if`;
//! * [`to_string_indent`] is `json.MarshalIndent(v, "", "  ")` (equivalently `json.Indent` on
//!   the compact form): `"key": value`, two spaces per level, `[]` and `{}` kept compact.
//!
//! Numbers are written by serde_json's defaults; pack's labels and inspect output have none.
//!
//! # Decoding ([`from_str`])
//!
//! `json.Unmarshal` is lenient, and builders written by other tools rely on it:
//!
//! * object keys match struct fields **case-insensitively** (Unicode simple folding) when no
//!   field has the exact name — so `{"type": …}` fills a field Go calls `Type`;
//! * `null` leaves a field at its zero value (a missing field does too, so every struct read
//!   through here should carry `#[serde(default)]`), a `null` array is empty, and a `null`
//!   string or boolean inside an array is `""` / `false`;
//! * unknown keys are ignored.
//!
//! One deliberate difference: when an object holds the same key twice, or two keys that fold
//! to the same field (`"Type"` and `"type"`), Go lets the *last* one in the document win;
//! serde_json's map does not keep document order (its `preserve_order` feature must stay
//! off, see `docs/architecture.md`), so here the last duplicate of an identical key wins and,
//! among different spellings, the exact field name wins, else the first in byte order. Pack
//! never writes such labels.

use std::io;

use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserializer, Serialize, forward_to_deserialize_any};
use serde_json::ser::{CompactFormatter, Formatter, PrettyFormatter};
use serde_json::{Map, Value};

/// Serialises `value` as compact JSON exactly as Go's `json.Marshal` would.
pub fn to_string<T: Serialize + ?Sized>(value: &T) -> Result<String, serde_json::Error> {
    write_with(value, GoFormatter(CompactFormatter))
}

/// Serialises `value` as Go's `json.MarshalIndent(value, "", "  ")` would.
pub fn to_string_indent<T: Serialize + ?Sized>(value: &T) -> Result<String, serde_json::Error> {
    write_with(value, GoFormatter(PrettyFormatter::with_indent(b"  ")))
}

/// `s` as a Go JSON string literal, quotes included.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => match html_escape(c) {
                Some(escaped) => out.push_str(escaped),
                None => out.push(c),
            },
        }
    }
    out.push('"');
    out
}

/// Parses `s` with `encoding/json`'s leniency (see the module docs).
pub fn from_str<T: DeserializeOwned>(s: &str) -> Result<T, serde_json::Error> {
    let value: Value = serde_json::from_str(s)?;
    T::deserialize(GoDe(value))
}

fn write_with<T: Serialize + ?Sized, F: Formatter>(value: &T, formatter: F) -> Result<String, serde_json::Error> {
    let mut out = Vec::with_capacity(128);
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    value.serialize(&mut serializer)?;
    String::from_utf8(out).map_err(|e| <serde_json::Error as serde::ser::Error>::custom(e.to_string()))
}

/// The escapes Go's `json.Marshal` adds on top of JSON's mandatory ones.
fn html_escape(c: char) -> Option<&'static str> {
    match c {
        '<' => Some("\\u003c"),
        '>' => Some("\\u003e"),
        '&' => Some("\\u0026"),
        '\u{2028}' => Some("\\u2028"),
        '\u{2029}' => Some("\\u2029"),
        _ => None,
    }
}

/// A serde_json formatter that adds Go's HTML-safe escapes and otherwise delegates the layout
/// (compact or indented) to the wrapped formatter. serde_json already escapes `"`, `\` and
/// control characters the way Go does.
struct GoFormatter<F>(F);

impl<F: Formatter> Formatter for GoFormatter<F> {
    fn write_string_fragment<W: ?Sized + io::Write>(&mut self, writer: &mut W, fragment: &str) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if let Some(escaped) = html_escape(c) {
                writer.write_all(&fragment.as_bytes()[start..i])?;
                writer.write_all(escaped.as_bytes())?;
                start = i + c.len_utf8();
            }
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }

    fn begin_array<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.begin_array(writer)
    }

    fn end_array<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.end_array(writer)
    }

    fn begin_array_value<W: ?Sized + io::Write>(&mut self, writer: &mut W, first: bool) -> io::Result<()> {
        self.0.begin_array_value(writer, first)
    }

    fn end_array_value<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.end_array_value(writer)
    }

    fn begin_object<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.begin_object(writer)
    }

    fn end_object<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.end_object(writer)
    }

    fn begin_object_key<W: ?Sized + io::Write>(&mut self, writer: &mut W, first: bool) -> io::Result<()> {
        self.0.begin_object_key(writer, first)
    }

    fn end_object_key<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.end_object_key(writer)
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.begin_object_value(writer)
    }

    fn end_object_value<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.end_object_value(writer)
    }
}

/// A `serde_json::Value` read with `encoding/json`'s rules.
struct GoDe(Value);

type Error = serde_json::Error;

/// Whether two keys are equal under Unicode simple case folding (Go's `bytes.EqualFold`,
/// which `encoding/json` uses to match keys to fields).
fn fold_eq(a: &str, b: &str) -> bool {
    a.chars().flat_map(char::to_lowercase).eq(b.chars().flat_map(char::to_lowercase))
}

/// Renames the keys of `map` to the struct field they match (exact name first, else a
/// case-insensitive match) and drops `null` values, which Go ignores.
fn fold_fields(map: Map<String, Value>, fields: &'static [&'static str]) -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value, bool)> = Vec::with_capacity(map.len());
    for (key, value) in map {
        if value.is_null() {
            continue;
        }
        let (name, exact) = if fields.contains(&key.as_str()) {
            (key, true)
        } else if let Some(field) = fields.iter().find(|f| fold_eq(f, &key)) {
            ((*field).to_owned(), false)
        } else {
            (key, true)
        };
        match out.iter_mut().find(|(n, _, _)| *n == name) {
            // An exact spelling beats a folded one; among folded ones the first (in byte
            // order) is kept.
            Some(slot) if exact && !slot.2 => *slot = (name, value, exact),
            Some(_) => {}
            None => out.push((name, value, exact)),
        }
    }
    out.into_iter().map(|(n, v, _)| (n, v)).collect()
}

/// What a non-object value is, for "invalid type" errors.
fn unexpected(value: &Value) -> de::Unexpected<'_> {
    match value {
        Value::Null => de::Unexpected::Unit,
        Value::Bool(b) => de::Unexpected::Bool(*b),
        Value::Number(_) => de::Unexpected::Other("number"),
        Value::String(s) => de::Unexpected::Str(s),
        Value::Array(_) => de::Unexpected::Seq,
        Value::Object(_) => de::Unexpected::Map,
    }
}

struct GoSeq(std::vec::IntoIter<Value>);

impl<'de> SeqAccess<'de> for GoSeq {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, Error> {
        self.0.next().map(|v| seed.deserialize(GoDe(v))).transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

struct GoMap {
    entries: std::vec::IntoIter<(String, Value)>,
    value: Option<Value>,
}

impl GoMap {
    fn new(entries: Vec<(String, Value)>) -> Self {
        Self { entries: entries.into_iter(), value: None }
    }
}

impl<'de> MapAccess<'de> for GoMap {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Error> {
        match self.entries.next() {
            Some((key, value)) => {
                self.value = Some(value);
                let key: de::value::StringDeserializer<Error> = key.into_deserializer();
                seed.deserialize(key).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let value = self.value.take().unwrap_or(Value::Null);
        seed.deserialize(GoDe(value))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

impl<'de> Deserializer<'de> for GoDe {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Array(items) => visitor.visit_seq(GoSeq(items.into_iter())),
            Value::Object(map) => visitor.visit_map(GoMap::new(map.into_iter().collect())),
            other => other.deserialize_any(visitor),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Null => visitor.visit_bool(false),
            other => other.deserialize_bool(visitor),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_string(visitor)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Null => visitor.visit_str(""),
            other => other.deserialize_string(visitor),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            other => visitor.visit_some(GoDe(other)),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Null => visitor.visit_seq(GoSeq(Vec::new().into_iter())),
            other => GoDe(other).deserialize_any(visitor),
        }
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Null => visitor.visit_map(GoMap::new(Vec::new())),
            other => GoDe(other).deserialize_any(visitor),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.0 {
            Value::Null => visitor.visit_map(GoMap::new(Vec::new())),
            Value::Object(map) => visitor.visit_map(GoMap::new(fold_fields(map, fields))),
            other => Err(de::Error::invalid_type(unexpected(&other), &visitor)),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }

    forward_to_deserialize_any! {
        i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char bytes byte_buf unit unit_struct
        tuple tuple_struct enum identifier
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Deserialize;

    use super::*;

    #[derive(Serialize)]
    struct Sample {
        text: String,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        omitted: Vec<String>,
        nil: Option<Vec<String>>,
        empty: Option<Vec<String>>,
        map: BTreeMap<String, bool>,
    }

    #[test]
    fn compact_output_matches_go() {
        let sample = Sample {
            text: "a<b>&c\u{2028}\u{2029}\"\\\u{8}\u{c}\n\r\t\u{1}\u{1f}\u{7f}é".into(),
            omitted: vec![],
            nil: None,
            empty: Some(vec![]),
            map: BTreeMap::from([("b".into(), true), ("B".into(), false), ("a&".into(), true)]),
        };
        // Go: json.Marshal of the same struct (fields text, nil, empty, map; omitted has omitempty).
        let expected = concat!(
            r#"{"text":"a\u003cb\u003e\u0026c\u2028\u2029\"\\\b\f\n\r\t\u0001\u001f"#,
            "\u{7f}é",
            r#"","nil":null,"empty":[],"map":{"B":false,"a\u0026":true,"b":true}}"#
        );
        assert_eq!(to_string(&sample).unwrap(), expected);
    }

    #[test]
    fn indented_output_matches_go_marshal_indent() {
        let sample = Sample {
            text: "x".into(),
            omitted: vec![],
            nil: None,
            empty: Some(vec![]),
            map: BTreeMap::from([("k".into(), true)]),
        };
        let expected =
            "{\n  \"text\": \"x\",\n  \"nil\": null,\n  \"empty\": [],\n  \"map\": {\n    \"k\": true\n  }\n}";
        assert_eq!(to_string_indent(&sample).unwrap(), expected);
        assert_eq!(to_string_indent(&BTreeMap::<String, bool>::new()).unwrap(), "{}");
        assert_eq!(to_string_indent(&vec![vec!["a"]]).unwrap(), "[\n  [\n    \"a\"\n  ]\n]");
    }

    #[test]
    fn quote_matches_serializer() {
        for s in ["", "plain", "<&>", "tab\there", "\u{0}\u{1b}", "\u{2028}x\u{2029}", "snowman ☃", "\u{7f}"] {
            assert_eq!(quote(s), to_string(s).unwrap(), "{s:?}");
        }
    }

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(default)]
    struct Inner {
        #[serde(rename = "Type")]
        kind: String,
        #[serde(rename = "URI")]
        uri: String,
    }

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(default)]
    struct Outer {
        name: String,
        flag: bool,
        list: Vec<String>,
        opt: Option<Vec<String>>,
        inner: Inner,
        inners: Vec<Inner>,
        map: BTreeMap<String, Inner>,
    }

    #[test]
    fn decoding_folds_keys_and_ignores_nulls() {
        let parsed: Outer = from_str(
            r#"{"NAME":"n","Flag":true,"list":null,"opt":null,"unknown":{"x":1},
                "inner":{"type":"MIT","uri":"u"},"inners":[null,{"tYpE":"a"}],
                "map":{"k":{"Uri":"v"},"z":null}}"#,
        )
        .unwrap();
        assert_eq!(
            parsed,
            Outer {
                name: "n".into(),
                flag: true,
                list: vec![],
                opt: None,
                inner: Inner { kind: "MIT".into(), uri: "u".into() },
                inners: vec![Inner::default(), Inner { kind: "a".into(), uri: String::new() }],
                map: BTreeMap::from([
                    ("k".into(), Inner { kind: String::new(), uri: "v".into() }),
                    ("z".into(), Inner::default())
                ]),
            }
        );
        let parsed: Outer = from_str(r#"{"name":null,"list":["a",null],"opt":[]}"#).unwrap();
        assert_eq!(parsed.list, vec!["a".to_owned(), String::new()]);
        assert_eq!(parsed.opt, Some(vec![]));
    }

    #[test]
    fn exact_key_beats_folded_key() {
        let parsed: Inner = from_str(r#"{"type":"folded","Type":"exact"}"#).unwrap();
        assert_eq!(parsed.kind, "exact");
        let parsed: Inner = from_str(r#"{"TYPE":"first","type":"second"}"#).unwrap();
        assert_eq!(parsed.kind, "first");
    }

    #[test]
    fn decoding_reports_type_errors_and_bad_json() {
        assert!(from_str::<Outer>(r#"{"name":5}"#).is_err());
        assert!(from_str::<Outer>(r#"{"flag":"yes"}"#).is_err());
        assert!(from_str::<Outer>(r#"{"list":{}}"#).is_err());
        assert!(from_str::<Outer>("[]").is_err());
        assert!(from_str::<Outer>("{").is_err());
        assert!(from_str::<Outer>("{} x").is_err());
    }
}
