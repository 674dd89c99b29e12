//! builder.toml's keys, read off the model: the keys of each table are the field lists its
//! types hand to serde (`deserialize_struct`), so the list that decides which keys are known
//! (for the suggestions of unknown-key errors, and for accepting a key in another case as pack
//! does) cannot differ from what the types read.
//!
//! [`Walker`] is a serde `Deserializer` that produces no input: asked for a struct, it records
//! the struct's fields under the table's dotted path and feeds every field a stand-in value
//! (an empty string, zero, `false`, one element for a list, `Some` for an option), walking into
//! the field's own type. The keys are recorded in lower case: builder.toml spells every key in
//! lower case (pack's TOML names), while a license's field list holds its JSON names `Type` and
//! `URI`, which its reader accepts in either spelling.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::LazyLock;

use serde::de::value::{Error, StrDeserializer};
use serde::de::{self, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, SeqAccess, Visitor};

use crate::model::BuilderConfig;

/// The keys of each table, by dotted path without array indexes (`""`: the top level).
type Keys = BTreeMap<String, Vec<String>>;

/// No builder.toml table is nested this deep; a type that contains itself stops here.
const MAX_DEPTH: usize = 16;

static BUILDER_TOML: LazyLock<Keys> = LazyLock::new(|| keys_of::<BuilderConfig>().unwrap_or_default());

/// The keys pack accepts inside the table at the dotted `parent` path (`""` = top level,
/// `order.group` = the references of an order group); none for a path that is not a table.
pub(crate) fn known_keys(parent: &str) -> &'static [String] {
    BUILDER_TOML.get(parent).map_or(&[], Vec::as_slice)
}

/// The keys of every table `T` reads, by dotted path; an error if a type refuses the stand-in
/// values (a test makes sure that builder.toml's types accept them).
pub(crate) fn keys_of<T: for<'de> de::Deserialize<'de>>() -> Result<Keys, Error> {
    let keys = RefCell::new(Keys::new());
    T::deserialize(Walker { path: String::new(), keys: &keys, depth: 0 })?;
    Ok(keys.into_inner())
}

/// `Deserializer` methods that all give the same stand-in value.
macro_rules! stand_in {
    ($($($method:ident)+ => $visit:ident $args:tt;)+) => {
        $($(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
                visitor.$visit $args
            }
        )+)+
    };
}

/// A deserializer standing for the value at `path`.
struct Walker<'a> {
    path: String,
    keys: &'a RefCell<Keys>,
    depth: usize,
}

impl Walker<'_> {
    fn child(&self, key: &str) -> Self {
        let path = if self.path.is_empty() { key.to_owned() } else { format!("{}.{key}", self.path) };
        Walker { path, keys: self.keys, depth: self.depth + 1 }
    }
}

impl<'de> Deserializer<'de> for Walker<'_> {
    type Error = Error;

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        if self.depth > MAX_DEPTH {
            return visitor.visit_map(Fields { walker: self, fields: &[], next: 0 });
        }
        {
            let mut keys = self.keys.borrow_mut();
            let known = keys.entry(self.path.clone()).or_default();
            for field in fields {
                let key = field.to_ascii_lowercase();
                if !known.contains(&key) {
                    known.push(key);
                }
            }
        }
        visitor.visit_map(Fields { walker: self, fields, next: 0 })
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_some(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_seq(One(Some(self)))
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_seq(One(Some(self)))
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_seq(One(Some(self)))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    /// A map without a field list (a `BTreeMap`, a flattened struct) names no keys: empty.
    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_map(Fields { walker: self, fields: &[], next: 0 })
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let first = variants.first().ok_or_else(|| de::Error::custom("an enum without variants"))?;
        visitor.visit_enum(IntoDeserializer::<Error>::into_deserializer(*first))
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }

    /// A value a type reads without saying what it is (kept, or dropped unread): nothing to walk.
    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }

    stand_in! {
        deserialize_bool => visit_bool(false);
        deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 => visit_i64(0);
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 => visit_u64(0);
        deserialize_f32 deserialize_f64 => visit_f64(0.0);
        deserialize_char => visit_char(' ');
        deserialize_str deserialize_string deserialize_identifier => visit_str("");
        deserialize_bytes deserialize_byte_buf => visit_bytes(&[]);
        deserialize_unit deserialize_ignored_any => visit_unit();
    }
}

/// The one element of a list.
struct One<'a>(Option<Walker<'a>>);

impl<'de> SeqAccess<'de> for One<'_> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, Error> {
        self.0.take().map(|walker| seed.deserialize(walker)).transpose()
    }
}

/// A struct's fields, each with a stand-in value.
struct Fields<'a> {
    walker: Walker<'a>,
    fields: &'static [&'static str],
    next: usize,
}

impl<'de> MapAccess<'de> for Fields<'_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Error> {
        let Some(field) = self.fields.get(self.next) else { return Ok(None) };
        let key: StrDeserializer<'_, Error> = field.into_deserializer();
        seed.deserialize(key).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let field = self.fields.get(self.next).ok_or_else(|| de::Error::custom("a value without a key"))?;
        self.next += 1;
        seed.deserialize(self.walker.child(field))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use cnbx_model::{
        Distribution, License, ModuleInfo, ModuleRef, OrderEntry, RunImage, System, SystemBuildpacks, Target,
    };

    use super::*;
    use crate::model::{BuildConfig, BuildEnv, LifecycleConfig, ModuleConfig, RunConfig, StackConfig};

    /// Module info with every field set. Written out field by field, so that a field added to
    /// the model must be added here too, and is then part of [`full_config`].
    fn info(id: &str) -> ModuleInfo {
        ModuleInfo {
            id: id.into(),
            name: "Name".into(),
            version: "1.0.0".into(),
            description: "a module".into(),
            homepage: "https://example.com".into(),
            keywords: vec!["k".into()],
            exec_env: vec!["production".into()],
            licenses: vec![License { kind: "MIT".into(), uri: "https://mit".into() }],
            clear_env: true,
        }
    }

    fn reference(id: &str) -> ModuleRef {
        ModuleRef { info: info(id), optional: true }
    }

    fn module(uri: &str, id: &str) -> ModuleConfig {
        ModuleConfig { uri: uri.into(), image: format!("example/{id}:1"), info: info(id) }
    }

    /// A builder.toml value with every field of every table set (and the legacy `[stack]`
    /// already agreeing with `[build]` and `[[run.images]]`, so that the merge keeps it).
    fn full_config() -> BuilderConfig {
        BuilderConfig {
            description: "a builder".into(),
            buildpacks: vec![module("bp.tgz", "bp/a")],
            extensions: vec![module("ext", "ext/a")],
            order: Some(vec![OrderEntry { group: Some(vec![reference("bp/a")]) }]),
            order_extensions: Some(vec![OrderEntry { group: Some(vec![reference("ext/a")]) }]),
            stack: StackConfig {
                id: "stack.id".into(),
                build_image: "build:1".into(),
                run_image: "run:1".into(),
                run_image_mirrors: vec!["mirror.example/run:1".into()],
            },
            build: BuildConfig {
                image: "build:1".into(),
                env: vec![BuildEnv {
                    name: "A".into(),
                    value: "1".into(),
                    suffix: "append".into(),
                    delim: ":".into(),
                    exec_env: vec!["production".into()],
                }],
            },
            run: RunConfig {
                images: vec![RunImage { image: "run:1".into(), mirrors: Some(vec!["mirror.example/run:1".into()]) }],
            },
            lifecycle: LifecycleConfig { uri: "lifecycle.tgz".into(), version: "0.21.0".into() },
            targets: vec![Target {
                os: "linux".into(),
                arch: "arm64".into(),
                variant: "v8".into(),
                distros: vec![Distribution { name: "ubuntu".into(), version: "22.04".into() }],
            }],
            system: System {
                pre: SystemBuildpacks { buildpacks: vec![reference("sys/pre")] },
                post: SystemBuildpacks { buildpacks: vec![reference("sys/post")] },
            },
        }
    }

    /// How a key is spelled.
    type Spelling = fn(&str) -> String;

    /// `table` with every key (in nested tables too) spelled by `spell`.
    fn respell(table: toml::Table, spell: Spelling) -> toml::Table {
        fn value(v: toml::Value, spell: Spelling) -> toml::Value {
            match v {
                toml::Value::Table(t) => toml::Value::Table(respell(t, spell)),
                toml::Value::Array(a) => toml::Value::Array(a.into_iter().map(|v| value(v, spell)).collect()),
                other => other,
            }
        }
        table.into_iter().map(|(k, v)| (spell(&k), value(v, spell))).collect()
    }

    #[test]
    fn the_walk_reads_every_type_of_builder_toml() {
        let keys = keys_of::<BuilderConfig>().unwrap();
        assert_eq!(
            keys.get("buildpacks.licenses").map(Vec::as_slice),
            Some(&["type".to_owned(), "uri".to_owned()][..])
        );
        for (path, key) in [
            ("", "order-extensions"),
            ("buildpacks", "uri"),
            ("buildpacks", "clear-env"),
            ("order.group", "optional"),
            ("system.post.buildpacks", "exec-env"),
            ("targets.distros", "version"),
            ("build.env", "delim"),
            ("run.images", "mirrors"),
            ("stack", "run-image-mirrors"),
        ] {
            assert!(keys.get(path).is_some_and(|k| k.iter().any(|k| k == key)), "{path}.{key}: {keys:?}");
        }
        assert_eq!(known_keys("buildpacks.id"), &[] as &[String], "a key that is not a table has no keys");
    }

    /// Every key the model writes is a known key, in any case: written as builder.toml with
    /// every key in lower case, in upper case or capitalised, the file reads back as the same
    /// value, without an unknown key. A field added to a model type but missing from the field
    /// list its reader gives serde fails here (pack reads its other spellings; cnbx would call
    /// them unknown).
    #[test]
    fn every_key_the_model_writes_reads_back_in_any_case() {
        let config = full_config();
        let table: toml::Table = toml::Table::try_from(&config).unwrap();
        let spellings: [(&str, Spelling); 3] = [
            ("as written", str::to_owned),
            ("upper case", str::to_uppercase),
            ("capitalised", |k| k[..1].to_uppercase() + &k[1..]),
        ];
        for (name, spell) in spellings {
            let text = toml::to_string(&respell(table.clone(), spell)).unwrap();
            let loaded = crate::parse_str(&text, Path::new("builder.toml"))
                .unwrap_or_else(|e| panic!("{name}: {e}: {:?}\n{text}", e.diagnostic()));
            assert_eq!(loaded.config, config, "{name}:\n{text}");
        }
    }
}
