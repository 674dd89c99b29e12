//! Buildpacks and extensions as the CNB files describe them: module info, references and
//! orders, legacy stacks, targets, system buildpacks (pack's `dist` package).
//!
//! The same types are read from builder.toml, buildpack.toml / extension.toml and builder
//! labels, and written into labels:
//!
//! * **JSON** (labels, through `cnbx_builder::gocompat::json`): every field of [`ModuleInfo`]
//!   is omitted when empty; a [`License`] writes Go's field names `Type` and `URI`.
//! * **Reading** accepts both spellings of a license's keys (`type`/`Type`, `uri`/`URI`),
//!   and `exec-env` entries written as tables (`[[buildpack.exec-env]] name = "…"`, the
//!   Buildpack API 0.12 spelling). The structs read through `deserialize_struct` with their
//!   key list, so the Go-compatible JSON reader can match keys case-insensitively (and
//!   builder.toml's known keys are read off these lists), and keys they do not know are
//!   passed to `IgnoredAny`, so `serde_ignored` reports them (builder.toml refuses them,
//!   module descriptors warn). A test checks each list against the keys the type writes.
//!
//! [`ModuleInfo::read_field`] reads one of the nine info keys; the other types that carry module
//! info next to keys of their own ([`ModuleRef`], builder.toml's `[[buildpacks]]` entries, the
//! `[buildpack]` table of a descriptor) use it, so the nine keys are read in one place.

use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

pub(crate) fn is_false(b: &bool) -> bool {
    !*b
}

/// A buildpack's or extension's identity and descriptive fields (pack's `dist.ModuleInfo`).
///
/// Every field is omitted from JSON when empty. Module info from a package image carries
/// only `id`, `name`, `version` and `homepage`; module info read from a `buildpack.toml`
/// carries whatever that file declares.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize)]
pub struct ModuleInfo {
    /// `id`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// `name`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// `version`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub version: String,
    /// `description`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// `homepage`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub homepage: String,
    /// `keywords`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub keywords: Vec<String>,
    /// `exec-env`.
    #[serde(rename = "exec-env", skip_serializing_if = "Vec::is_empty")]
    pub exec_env: Vec<String>,
    /// `licenses`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub licenses: Vec<License>,
    /// `clear-env`.
    #[serde(rename = "clear-env", skip_serializing_if = "is_false")]
    pub clear_env: bool,
}

impl ModuleInfo {
    /// The keys of module info, in pack's order.
    pub const KEYS: [&'static str; 9] =
        ["id", "name", "version", "description", "homepage", "keywords", "exec-env", "licenses", "clear-env"];

    /// [`ModuleInfo::KEYS`] followed by `own`: the [`WithModuleInfo::FIELDS`] of a type with
    /// keys of its own (`TOTAL` must be `9 + N`; anything else does not compile).
    pub const fn keys_and<const N: usize, const TOTAL: usize>(own: [&'static str; N]) -> [&'static str; TOTAL] {
        assert!(TOTAL == Self::KEYS.len() + N, "TOTAL must be 9 + N");
        let mut out = [""; TOTAL];
        let mut i = 0;
        while i < Self::KEYS.len() {
            out[i] = Self::KEYS[i];
            i += 1;
        }
        while i < TOTAL {
            out[i] = own[i - Self::KEYS.len()];
            i += 1;
        }
        out
    }

    /// A module info with only an id and a version.
    pub fn new(id: impl Into<String>, version: impl Into<String>) -> Self {
        Self { id: id.into(), version: version.into(), ..Self::default() }
    }

    /// `id@version`, or `id` when the version is empty (pack's `FullName`).
    pub fn full_name(&self) -> String {
        if self.version.is_empty() { self.id.clone() } else { format!("{}@{}", self.id, self.version) }
    }

    /// Reads the value of `key` into its field when `key` is one of [`ModuleInfo::KEYS`], for
    /// types that hold module info next to keys of their own; `false` (and nothing read) for
    /// any other key.
    pub fn read_field<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error> {
        match key {
            "id" => self.id = map.next_value()?,
            "name" => self.name = map.next_value()?,
            "version" => self.version = map.next_value()?,
            "description" => self.description = map.next_value()?,
            "homepage" => self.homepage = map.next_value()?,
            "keywords" => self.keywords = map.next_value()?,
            "exec-env" => {
                let names: Vec<ExecEnvName> = map.next_value()?;
                self.exec_env = names.into_iter().map(|n| n.0).collect();
            }
            "licenses" => self.licenses = map.next_value()?,
            "clear-env" => self.clear_env = map.next_value()?,
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// A type read from a map of module info keys and keys of its own (see the module docs).
pub trait WithModuleInfo: Default {
    /// The name in "expected …" messages (`struct <NAME>`).
    const NAME: &'static str;
    /// Every key, module info's included (the Go-compatible JSON reader matches them
    /// case-insensitively).
    const FIELDS: &'static [&'static str];

    /// The module info to fill.
    fn info_mut(&mut self) -> &mut ModuleInfo;

    /// Reads the value of `key` when it is a key of the type's own; `false` (and nothing
    /// read) for any other key.
    fn read_own<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error>;
}

/// Deserialises a [`WithModuleInfo`] type: `T::default()`, then each key into module info or
/// the type's own fields; the value of any other key goes to `IgnoredAny`.
pub fn deserialize_with_info<'de, D: Deserializer<'de>, T: WithModuleInfo>(deserializer: D) -> Result<T, D::Error> {
    deserializer.deserialize_struct(T::NAME, T::FIELDS, InfoVisitor::<T>(std::marker::PhantomData))
}

struct InfoVisitor<T>(std::marker::PhantomData<T>);

impl<'de, T: WithModuleInfo> Visitor<'de> for InfoVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "struct {}", T::NAME)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<T, A::Error> {
        let mut value = T::default();
        while let Some(key) = map.next_key::<String>()? {
            if !value.info_mut().read_field(&key, &mut map)? && !value.read_own(&key, &mut map)? {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(value)
    }
}

impl WithModuleInfo for ModuleInfo {
    const NAME: &'static str = "ModuleInfo";
    const FIELDS: &'static [&'static str] = &Self::KEYS;

    fn info_mut(&mut self) -> &mut ModuleInfo {
        self
    }

    fn read_own<'de, A: MapAccess<'de>>(&mut self, _key: &str, _map: &mut A) -> Result<bool, A::Error> {
        Ok(false)
    }
}

impl<'de> Deserialize<'de> for ModuleInfo {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_with_info(deserializer)
    }
}

/// An `exec-env` entry: a string, or a table with a `name` (its other keys are not read).
struct ExecEnvName(String);

impl<'de> Deserialize<'de> for ExecEnvName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ExecEnvName;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<ExecEnvName, E> {
                Ok(ExecEnvName(v.to_owned()))
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ExecEnvName, A::Error> {
                let mut name = None;
                while let Some(key) = map.next_key::<String>()? {
                    if key == "name" && name.is_none() {
                        name = Some(map.next_value::<String>()?);
                    } else {
                        map.next_value::<Unread>()?;
                    }
                }
                name.map(ExecEnvName).ok_or_else(|| de::Error::invalid_type(de::Unexpected::Map, &self))
            }
        }
        deserializer.deserialize_string(V)
    }
}

/// A value that is read and dropped without being reported as ignored (`IgnoredAny` is what
/// `serde_ignored` reports): for keys a type knows and does not use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Unread;

impl<'de> Deserialize<'de> for Unread {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Unread;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any value")
            }

            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Unread, E> {
                Ok(Unread)
            }

            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Unread, E> {
                Ok(Unread)
            }

            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Unread, E> {
                Ok(Unread)
            }

            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Unread, E> {
                Ok(Unread)
            }

            fn visit_str<E: de::Error>(self, _: &str) -> Result<Unread, E> {
                Ok(Unread)
            }

            fn visit_unit<E: de::Error>(self) -> Result<Unread, E> {
                Ok(Unread)
            }

            fn visit_none<E: de::Error>(self) -> Result<Unread, E> {
                Ok(Unread)
            }

            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Unread, D::Error> {
                Unread::deserialize(d)
            }

            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Unread, A::Error> {
                while seq.next_element::<Unread>()?.is_some() {}
                Ok(Unread)
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Unread, A::Error> {
                while map.next_key::<Unread>()?.is_some() {
                    map.next_value::<Unread>()?;
                }
                Ok(Unread)
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// A license of a module.
///
/// Pack's `dist.License` has no JSON tags, so `encoding/json` writes the Go field names
/// **`Type`** and **`URI`**; both are always written. TOML files write `type` and `uri`; both
/// spellings are read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize)]
pub struct License {
    /// `Type` (an SPDX identifier).
    #[serde(rename = "Type")]
    pub kind: String,
    /// `URI`.
    #[serde(rename = "URI")]
    pub uri: String,
}

impl<'de> Deserialize<'de> for License {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = License;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("struct License")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<License, A::Error> {
                let mut license = License::default();
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "Type" | "type" => license.kind = map.next_value()?,
                        "URI" | "uri" => license.uri = map.next_value()?,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(license)
            }
        }
        // The Go-compatible JSON reader matches these case-insensitively (so `type` reads as
        // `Type`, and an exact `Type` wins over it).
        deserializer.deserialize_struct("License", &["Type", "URI"], V)
    }
}

/// A reference to a module in an order group (pack's `dist.ModuleRef`): the module info
/// fields followed by `optional` (omitted when false).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ModuleRef {
    /// The referenced module; usually only `id` and `version` are set.
    pub info: ModuleInfo,
    /// Whether detection may skip it.
    pub optional: bool,
}

impl ModuleRef {
    /// A reference to `id@version` (`version` may be empty).
    pub fn new(id: impl Into<String>, version: impl Into<String>) -> Self {
        Self { info: ModuleInfo::new(id, version), optional: false }
    }

    /// The same reference, marked optional.
    pub fn optional(mut self) -> Self {
        self.optional = true;
        self
    }

    /// `id@version`, or `id` when the version is empty.
    pub fn full_name(&self) -> String {
        self.info.full_name()
    }
}

#[derive(Serialize)]
struct ModuleRefOut<'a> {
    #[serde(flatten)]
    info: &'a ModuleInfo,
    #[serde(skip_serializing_if = "is_false")]
    optional: bool,
}

impl Serialize for ModuleRef {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        ModuleRefOut { info: &self.info, optional: self.optional }.serialize(serializer)
    }
}

impl WithModuleInfo for ModuleRef {
    const NAME: &'static str = "ModuleRef";
    const FIELDS: &'static [&'static str] = &ModuleInfo::keys_and::<1, 10>(["optional"]);

    fn info_mut(&mut self) -> &mut ModuleInfo {
        &mut self.info
    }

    fn read_own<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error> {
        if key != "optional" {
            return Ok(false);
        }
        self.optional = map.next_value()?;
        Ok(true)
    }
}

impl<'de> Deserialize<'de> for ModuleRef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_with_info(deserializer)
    }
}

/// One `[[order]]` entry: `{"group":[…]}`; a missing group is Go's nil slice, written `null`
/// (builder.toml: an `[[order]]` without `group`), an empty one `[]` (`group = []`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct OrderEntry {
    /// The group's references; `None` is written `"group":null`.
    pub group: Option<Vec<ModuleRef>>,
}

impl OrderEntry {
    /// An entry with the given group.
    pub fn new(group: Vec<ModuleRef>) -> Self {
        Self { group: Some(group) }
    }

    /// The group's references (empty when absent).
    pub fn refs(&self) -> &[ModuleRef] {
        self.group.as_deref().unwrap_or_default()
    }
}

/// A legacy stack a buildpack declares (pack's `dist.Stack`): `{"id":…,"mixins":[…]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct ModuleStack {
    /// The stack id (`*` for any).
    pub id: String,
    /// Required mixins; omitted when empty.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mixins: Vec<String>,
}

/// The system buildpacks of one side (`pre` or `post`); `buildpacks` is omitted when empty,
/// so an empty side is `{}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct SystemBuildpacks {
    /// The buildpacks, as written in `[system]`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub buildpacks: Vec<ModuleRef>,
}

/// builder.toml's `[system]` and the `io.buildpacks.buildpack.system` label:
/// `{"pre":{…},"post":{…}}` (both always written).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct System {
    /// Buildpacks added before every group.
    pub pre: SystemBuildpacks,
    /// Buildpacks added after every group.
    pub post: SystemBuildpacks,
}

impl System {
    /// Whether pack would write the label at all (some side has buildpacks).
    pub fn is_empty(&self) -> bool {
        self.pre.buildpacks.is_empty() && self.post.buildpacks.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(default)]
    struct Doc {
        order: Vec<OrderEntry>,
        info: ModuleInfo,
    }

    #[test]
    fn toml_reads_every_spelling_and_reports_unknown_keys() {
        let text = "[info]\nid = \"a\"\nexec-env = [\"x\", { name = \"y\", other = 1 }]\nshiny = 1\n\
                    [[info.licenses]]\ntype = \"MIT\"\nURI = \"u\"\nextra = 2\n\
                    [[order]]\n[[order.group]]\nid = \"b\"\noptional = true\nmore = 3\n[[order]]\n";
        let mut ignored = Vec::new();
        let doc: Doc =
            serde_ignored::deserialize(toml::de::Deserializer::parse(text).unwrap(), |p| ignored.push(p.to_string()))
                .unwrap();
        assert_eq!(doc.info.exec_env, ["x", "y"]);
        assert_eq!(doc.info.licenses, [License { kind: "MIT".into(), uri: "u".into() }]);
        assert_eq!(doc.order[0].refs(), [ModuleRef::new("b", "").optional()]);
        assert_eq!(doc.order[1].group, None);
        assert_eq!(ignored, ["info.shiny", "info.licenses.0.extra", "order.0.group.?.0.more"]);
    }

    /// The key lists the readers hand to serde are the keys the types write: a field added
    /// to a type must be added to its list (and to [`ModuleInfo::read_field`]) too.
    #[test]
    fn key_lists_are_the_keys_the_types_write() {
        let info = ModuleInfo {
            id: "a".into(),
            name: "A".into(),
            version: "1".into(),
            description: "d".into(),
            homepage: "h".into(),
            keywords: vec!["k".into()],
            exec_env: vec!["production".into()],
            licenses: vec![License { kind: "MIT".into(), uri: "u".into() }],
            clear_env: true,
        };
        let reference = ModuleRef { info: info.clone(), optional: true };
        let keys = |value: serde_json::Value| -> Vec<String> {
            let mut keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
            keys.sort();
            keys
        };
        let sorted = |list: &[&str]| -> Vec<String> {
            let mut list: Vec<String> = list.iter().map(|k| (*k).to_owned()).collect();
            list.sort();
            list
        };
        assert_eq!(keys(serde_json::to_value(&info).unwrap()), sorted(&ModuleInfo::KEYS));
        assert_eq!(keys(serde_json::to_value(&reference).unwrap()), sorted(ModuleRef::FIELDS));
        let back: ModuleRef = serde_json::from_value(serde_json::to_value(&reference).unwrap()).unwrap();
        assert_eq!(back, reference, "every key is read too");
    }

    #[test]
    fn json_writes_go_keys_and_skips_empty_fields() {
        let r = ModuleRef {
            info: ModuleInfo {
                licenses: vec![License { kind: "MIT".into(), uri: String::new() }],
                ..ModuleInfo::new("a", "1")
            },
            optional: true,
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"id":"a","version":"1","licenses":[{"Type":"MIT","URI":""}],"optional":true}"#
        );
        let back: ModuleRef = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back, r);
        assert_eq!(serde_json::to_string(&ModuleInfo::default()).unwrap(), "{}");
        assert_eq!(serde_json::to_string(&OrderEntry::default()).unwrap(), r#"{"group":null}"#);
    }
}
