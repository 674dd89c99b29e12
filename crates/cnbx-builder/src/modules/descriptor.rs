//! `buildpack.toml` / `extension.toml` (docs/pack-compatibility.md, *Module descriptors*).

use toml::{Table, Value};

use super::ident::check_id_version;
use super::{ModuleError, ModuleKind, escape_id};
use crate::labels::{ApiVersion, Distribution, License, ModuleInfo, ModuleRef, ModuleStack, OrderEntry, Target};

/// A parsed module descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    /// `api` (`0.1` when absent).
    pub api: ApiVersion,
    /// The `[buildpack]` / `[extension]` table.
    pub info: ModuleInfo,
    /// `[[stacks]]`.
    pub stacks: Vec<ModuleStack>,
    /// `[[targets]]`.
    pub targets: Vec<Target>,
    /// `[[order]]`.
    pub order: Vec<OrderEntry>,
}

/// Collects keys the descriptor has but pack does not decode.
struct Keys {
    unknown: Vec<String>,
}

impl Keys {
    fn note(&mut self, prefix: &str, key: &str) {
        let k = if prefix.is_empty() { key.to_owned() } else { format!("{prefix}.{key}") };
        if !self.unknown.contains(&k) {
            self.unknown.push(k);
        }
    }
}

fn type_err(what: &str, key: &str, want: &str) -> ModuleError {
    ModuleError::Invalid(format!("reading {what}: '{key}' must be {want}"))
}

fn get_str(t: &Table, key: &str, path: &str, what: &str) -> Result<String, ModuleError> {
    match t.get(key) {
        None => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(type_err(what, &join(path, key), "a string")),
    }
}

fn get_bool(t: &Table, key: &str, path: &str, what: &str) -> Result<bool, ModuleError> {
    match t.get(key) {
        None => Ok(false),
        Some(Value::Boolean(b)) => Ok(*b),
        Some(_) => Err(type_err(what, &join(path, key), "a boolean")),
    }
}

fn get_strs(t: &Table, key: &str, path: &str, what: &str) -> Result<Vec<String>, ModuleError> {
    match t.get(key) {
        None => Ok(Vec::new()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                // `[[buildpack.exec-env]] name = "…"` (Buildpack API 0.12 spelling).
                Value::Table(t) => match t.get("name") {
                    Some(Value::String(s)) => Ok(s.clone()),
                    _ => Err(type_err(what, &join(path, key), "an array of strings")),
                },
                _ => Err(type_err(what, &join(path, key), "an array of strings")),
            })
            .collect(),
        Some(_) => Err(type_err(what, &join(path, key), "an array of strings")),
    }
}

fn get_tables<'a>(t: &'a Table, key: &str, path: &str, what: &str) -> Result<Vec<&'a Table>, ModuleError> {
    match t.get(key) {
        None => Ok(Vec::new()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| v.as_table().ok_or_else(|| type_err(what, &join(path, key), "an array of tables")))
            .collect(),
        Some(_) => Err(type_err(what, &join(path, key), "an array of tables")),
    }
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() { key.to_owned() } else { format!("{prefix}.{key}") }
}

fn check_keys(t: &Table, known: &[&str], path: &str, keys: &mut Keys) {
    for k in t.keys() {
        if !known.contains(&k.as_str()) {
            keys.note(path, k);
        }
    }
}

const INFO_KEYS: &[&str] =
    &["id", "name", "version", "description", "homepage", "keywords", "exec-env", "licenses", "clear-env"];

fn module_info(t: &Table, path: &str, what: &str, keys: &mut Keys) -> Result<ModuleInfo, ModuleError> {
    let mut licenses = Vec::new();
    for l in get_tables(t, "licenses", path, what)? {
        check_keys(l, &["type", "uri"], &join(path, "licenses"), keys);
        let lp = join(path, "licenses");
        licenses.push(License { kind: get_str(l, "type", &lp, what)?, uri: get_str(l, "uri", &lp, what)? });
    }
    Ok(ModuleInfo {
        id: get_str(t, "id", path, what)?,
        name: get_str(t, "name", path, what)?,
        version: get_str(t, "version", path, what)?,
        description: get_str(t, "description", path, what)?,
        homepage: get_str(t, "homepage", path, what)?,
        keywords: get_strs(t, "keywords", path, what)?,
        exec_env: get_strs(t, "exec-env", path, what)?,
        licenses,
        clear_env: get_bool(t, "clear-env", path, what)?,
    })
}

/// A TOML error in someone else's file, told without quoting the file: the line and column,
/// and the parser's message (an excerpt of it).
pub(crate) fn toml_error(what: &str, text: &str, e: &toml::de::Error) -> String {
    let message = cnbx_fs::excerpt(e.message().trim());
    match e.span() {
        Some(span) => {
            let before = &text.as_bytes()[..span.start.min(text.len())];
            let line = before.iter().filter(|b| **b == b'\n').count() + 1;
            let column = before.iter().rev().take_while(|b| **b != b'\n').count() + 1;
            format!("reading {what}: line {line}, column {column}: {message}")
        }
        None => format!("reading {what}: {message}"),
    }
}

/// Parses a descriptor. `what` names the file for errors (e.g. `buildpack.toml of 'uri'`).
/// Returns the descriptor and the warnings pack prints for it.
pub fn parse_descriptor(kind: ModuleKind, text: &str, what: &str) -> Result<(Descriptor, Vec<String>), ModuleError> {
    let doc: Table = text.parse().map_err(|e: toml::de::Error| ModuleError::Invalid(toml_error(what, text, &e)))?;
    let noun = kind.noun();
    let mut keys = Keys { unknown: Vec::new() };
    check_keys(&doc, &["api", noun, "stacks", "targets", "order", "metadata"], "", &mut keys);

    let api = match doc.get("api") {
        None => ApiVersion::new(0, 1),
        Some(Value::String(s)) => {
            ApiVersion::parse(s).map_err(|e| ModuleError::Invalid(format!("reading {what}: 'api': {e}")))?
        }
        Some(_) => return Err(type_err(what, "api", "a string")),
    };
    let info_table = match doc.get(noun) {
        None => Table::new(),
        Some(Value::Table(t)) => t.clone(),
        Some(_) => return Err(type_err(what, noun, "a table")),
    };
    let mut known_info: Vec<&str> = INFO_KEYS.to_vec();
    if kind == ModuleKind::Buildpack {
        known_info.push("sbom-formats");
    }
    check_keys(&info_table, &known_info, noun, &mut keys);
    let info = module_info(&info_table, noun, what, &mut keys)?;

    let mut stacks = Vec::new();
    for s in get_tables(&doc, "stacks", "", what)? {
        check_keys(s, &["id", "mixins"], "stacks", &mut keys);
        stacks.push(ModuleStack {
            id: get_str(s, "id", "stacks", what)?,
            mixins: get_strs(s, "mixins", "stacks", what)?,
        });
    }
    let mut targets = Vec::new();
    for t in get_tables(&doc, "targets", "", what)? {
        check_keys(t, &["os", "arch", "variant", "distros", "distributions"], "targets", &mut keys);
        let mut distros = Vec::new();
        for key in ["distros", "distributions"] {
            for d in get_tables(t, key, "targets", what)? {
                let dp = format!("targets.{key}");
                check_keys(d, &["name", "version"], &dp, &mut keys);
                distros.push(Distribution {
                    name: get_str(d, "name", &dp, what)?,
                    version: get_str(d, "version", &dp, what)?,
                });
            }
        }
        targets.push(Target {
            os: get_str(t, "os", "targets", what)?,
            arch: get_str(t, "arch", "targets", what)?,
            variant: get_str(t, "variant", "targets", what)?,
            distros,
        });
    }
    let mut order = Vec::new();
    for o in get_tables(&doc, "order", "", what)? {
        check_keys(o, &["group"], "order", &mut keys);
        let mut group = Vec::new();
        for r in get_tables(o, "group", "order", what)? {
            let mut known: Vec<&str> = INFO_KEYS.to_vec();
            known.push("optional");
            check_keys(r, &known, "order.group", &mut keys);
            let info = module_info(r, "order.group", what, &mut keys)?;
            group.push(ModuleRef { info, optional: get_bool(r, "optional", "order.group", what)? });
        }
        order.push(OrderEntry::new(group));
    }
    if info.id.is_empty() {
        return Err(ModuleError::Invalid(format!("'{noun}.id' is required")));
    }
    if info.version.is_empty() {
        return Err(ModuleError::Invalid(format!("'{noun}.version' is required")));
    }
    check_id_version(kind, &info.id, &info.version)
        .map_err(|e| ModuleError::Invalid(format!("reading {what}: {e}")))?;
    if !order.is_empty() && (!targets.is_empty() || !stacks.is_empty()) {
        return Err(ModuleError::Invalid(format!(
            "{noun} '{}': cannot have both 'targets'/'stacks' and an 'order' defined",
            info.full_name()
        )));
    }
    let mut warnings = Vec::new();
    if !keys.unknown.is_empty() {
        warnings.push(format!(
            "Ignoring unexpected key(s) in descriptor for {noun} {}: {}",
            escape_id(&info.id),
            keys.unknown.join(", ")
        ));
    }
    Ok((Descriptor { api, info, stacks, targets, order }, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOLDEN: &str = "api = \"0.10\"\n\n[buildpack]\n  id = \"my/bp\"\n  version = \"0.0.1\"\n\n[[targets]]\n  os = \"linux\"\n  arch = \"amd64\"\n";

    #[test]
    fn parses_a_simple_descriptor() {
        let (d, w) = parse_descriptor(ModuleKind::Buildpack, GOLDEN, "x").unwrap();
        assert!(w.is_empty());
        assert_eq!(d.api, ApiVersion::new(0, 10));
        assert_eq!(d.info, ModuleInfo::new("my/bp", "0.0.1"));
        assert_eq!(d.targets, vec![Target { os: "linux".into(), arch: "amd64".into(), ..Target::default() }]);
    }

    #[test]
    fn api_defaults_and_full_info() {
        let text = r#"
[buildpack]
id = "a/b"
version = "1.0.0"
name = "AB"
homepage = "h"
description = "d"
keywords = ["k"]
clear-env = true
sbom-formats = ["x"]
[[buildpack.licenses]]
type = "MIT"
[[stacks]]
id = "io.x"
mixins = ["m"]
[metadata]
anything = 1
"#;
        let (d, w) = parse_descriptor(ModuleKind::Buildpack, text, "x").unwrap();
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(d.api, ApiVersion::new(0, 1));
        assert_eq!(d.info.name, "AB");
        assert!(d.info.clear_env);
        assert_eq!(d.info.licenses[0].kind, "MIT");
        assert_eq!(d.stacks, vec![ModuleStack { id: "io.x".into(), mixins: vec!["m".into()] }]);
    }

    #[test]
    fn unknown_keys_warn() {
        let text =
            "foo = 1\n[buildpack]\nid = \"a/b\"\nversion = \"1\"\nbar = 2\n[[targets]]\nos = \"linux\"\nbaz = 3\n";
        let (_, w) = parse_descriptor(ModuleKind::Buildpack, text, "x").unwrap();
        assert_eq!(
            w,
            vec!["Ignoring unexpected key(s) in descriptor for buildpack a_b: foo, buildpack.bar, targets.baz"]
        );
    }

    #[test]
    fn required_fields_and_order_conflict() {
        let e = |kind, t: &str| parse_descriptor(kind, t, "x").unwrap_err().to_string();
        assert_eq!(e(ModuleKind::Buildpack, "[buildpack]\nversion = \"1\""), "'buildpack.id' is required");
        assert_eq!(e(ModuleKind::Buildpack, "[buildpack]\nid = \"a\""), "'buildpack.version' is required");
        assert_eq!(e(ModuleKind::Extension, "[extension]\nversion = \"1\""), "'extension.id' is required");
        assert_eq!(e(ModuleKind::Extension, "[extension]\nid = \"a\""), "'extension.version' is required");
        let both = "[buildpack]\nid = \"a\"\nversion = \"1\"\n[[stacks]]\nid = \"*\"\n[[order]]\n[[order.group]]\nid = \"b\"\nversion = \"2\"\n";
        assert_eq!(
            e(ModuleKind::Buildpack, both),
            "buildpack 'a@1': cannot have both 'targets'/'stacks' and an 'order' defined"
        );
        assert!(e(ModuleKind::Buildpack, "api = 3.5").contains("'api' must be a string"));
        assert!(e(ModuleKind::Buildpack, "[buildpack\n").starts_with("reading x:"));
    }

    #[test]
    fn errors_never_quote_the_file() {
        let secret = format!("TOKEN=supersecret{}", "x".repeat(10_000));
        let e = parse_descriptor(ModuleKind::Buildpack, &secret, "buildpack.toml of 'x'").unwrap_err().to_string();
        assert!(e.starts_with("reading buildpack.toml of 'x': line 1, column "), "{e}");
        assert!(!e.contains("supersecret"), "{e}");
        assert!(e.len() < 300, "{e}");
        let e = parse_descriptor(ModuleKind::Buildpack, "[buildpack]\nid = \"..\"\nversion = \"1\"\n", "x")
            .unwrap_err()
            .to_string();
        assert_eq!(e, "reading x: buildpack id '..' cannot be a directory name");
        let e =
            parse_descriptor(ModuleKind::Buildpack, "[buildpack]\nid = \"a\"\nversion = \"../../lifecycle\"\n", "x")
                .unwrap_err()
                .to_string();
        assert!(e.contains("has version '../../lifecycle', which cannot be a directory name"), "{e}");
    }

    proptest::proptest! {
        /// Arbitrary text, and arbitrary edits of a valid descriptor, give a descriptor or an
        /// error, never a panic.
        #[test]
        fn fuzz_descriptor_never_panics(text in "\\PC*", cut in 0usize..200, insert in "\\PC{0,8}") {
            let _ = parse_descriptor(ModuleKind::Buildpack, &text, "x");
            let mut g = GOLDEN.to_owned();
            let at = g.char_indices().map(|(i, _)| i).nth(cut % GOLDEN.len()).unwrap_or(0);
            g.insert_str(at, &insert);
            let _ = parse_descriptor(ModuleKind::Extension, &g, "x");
            let _ = crate::lifecycle::parse_lifecycle_toml(&g);
        }
    }

    #[test]
    fn order_is_read() {
        let text = "[buildpack]\nid = \"a\"\nversion = \"1\"\n[[order]]\n[[order.group]]\nid = \"b\"\nversion = \"2\"\noptional = true\n";
        let (d, _) = parse_descriptor(ModuleKind::Buildpack, text, "x").unwrap();
        assert_eq!(d.order, vec![OrderEntry::new(vec![ModuleRef::new("b", "2").optional()])]);
    }
}
