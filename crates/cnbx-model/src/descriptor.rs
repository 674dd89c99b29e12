//! `buildpack.toml` / `extension.toml` (docs/pack-compatibility.md, *Module descriptors*).
//!
//! Read with serde; keys pack does not decode are collected through `serde_ignored` for
//! pack's warning (`metadata` and a buildpack's `sbom-formats` are known and not read). Errors
//! never quote the file: a syntax error is told by line and column, a value of the wrong type
//! by its key.

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess};

use crate::ident::{IdentError, ModuleDirs, ModuleKind, escape_id};
use crate::module::{ModuleInfo, ModuleStack, OrderEntry, Unread, WithModuleInfo, deserialize_with_info};
use crate::target::{Distribution, Target};
use crate::toml_doc::{self, TomlProblem};
use crate::version::{ApiVersion, VersionError};

/// A parsed module descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleDescriptor {
    /// `api` (`0.1` when absent).
    pub api: ApiVersion,
    /// The `[buildpack]` / `[extension]` table.
    pub info: ModuleInfo,
    /// Where the module goes: its checked id and version.
    pub dirs: ModuleDirs,
    /// `[[stacks]]`.
    pub stacks: Vec<ModuleStack>,
    /// `[[targets]]` (`distros` and `distributions` together).
    pub targets: Vec<Target>,
    /// `[[order]]`.
    pub order: Vec<OrderEntry>,
}

/// Why a descriptor cannot be used. `what` names the file (e.g. `buildpack.toml of 'uri'`).
#[derive(Debug, thiserror::Error)]
pub enum DescriptorError {
    /// Not TOML, or a value of the wrong type.
    #[error("reading {what}: {problem}")]
    Toml {
        /// The file.
        what: String,
        /// What is wrong, and where.
        problem: TomlProblem,
    },
    /// `api` is not an API version.
    #[error("reading {what}: 'api'")]
    Api {
        /// The file.
        what: String,
        /// Why.
        #[source]
        source: VersionError,
    },
    /// `<kind>.id` or `<kind>.version` is missing.
    #[error("'{noun}.{key}' is required")]
    Required {
        /// `buildpack` or `extension`.
        noun: &'static str,
        /// `id` or `version`.
        key: &'static str,
    },
    /// The id or version cannot be a directory name.
    #[error("reading {what}")]
    Ident {
        /// The file.
        what: String,
        /// Why.
        #[source]
        source: IdentError,
    },
    /// A composite with targets or stacks.
    #[error("{noun} '{name}': cannot have both 'targets'/'stacks' and an 'order' defined")]
    OrderWithTargets {
        /// `buildpack` or `extension`.
        noun: &'static str,
        /// `id@version`.
        name: String,
    },
}

/// A descriptor's `[[targets]]` entry, which may list distributions under either key.
#[derive(Deserialize, Default)]
#[serde(default)]
struct DescriptorTarget {
    os: String,
    arch: String,
    variant: String,
    distros: Vec<Distribution>,
    distributions: Vec<Distribution>,
}

/// `buildpack.toml`.
#[derive(Deserialize, Default)]
#[serde(default)]
struct BuildpackFile {
    api: Option<String>,
    buildpack: BuildpackTable,
    stacks: Vec<ModuleStack>,
    targets: Vec<DescriptorTarget>,
    order: Vec<OrderEntry>,
    metadata: Unread,
}

/// `extension.toml`.
#[derive(Deserialize, Default)]
#[serde(default)]
struct ExtensionFile {
    api: Option<String>,
    extension: ModuleInfo,
    stacks: Vec<ModuleStack>,
    targets: Vec<DescriptorTarget>,
    order: Vec<OrderEntry>,
    metadata: Unread,
}

/// `[buildpack]`: module info and `sbom-formats` (known, not read).
#[derive(Default)]
struct BuildpackTable(ModuleInfo);

impl WithModuleInfo for BuildpackTable {
    const NAME: &'static str = "BuildpackTable";
    const FIELDS: &'static [&'static str] = &ModuleInfo::keys_and::<1, 10>(["sbom-formats"]);

    fn info_mut(&mut self) -> &mut ModuleInfo {
        &mut self.0
    }

    fn read_own<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error> {
        if key != "sbom-formats" {
            return Ok(false);
        }
        map.next_value::<Unread>()?;
        Ok(true)
    }
}

impl<'de> Deserialize<'de> for BuildpackTable {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_with_info(deserializer)
    }
}

/// What the value of a dotted descriptor key must be, for type errors.
fn expected(key: &str) -> &'static str {
    let leaf = key.rsplit('.').next().unwrap_or(key);
    match (key, leaf) {
        ("buildpack" | "extension", _) => "a table",
        (_, "stacks" | "targets" | "order" | "group" | "licenses" | "distros" | "distributions") => {
            "an array of tables"
        }
        (_, "keywords" | "exec-env" | "mixins") => "an array of strings",
        (_, "clear-env" | "optional") => "a boolean",
        _ => "a string",
    }
}

impl ModuleDescriptor {
    /// Parses a descriptor. `what` names the file for errors (e.g. `buildpack.toml of 'uri'`).
    /// Returns the descriptor and the warnings pack prints for it.
    pub fn parse(kind: ModuleKind, text: &str, what: &str) -> Result<(Self, Vec<String>), DescriptorError> {
        let mut unknown: Vec<String> = Vec::new();
        let note = |key: String| {
            if !unknown.contains(&key) {
                unknown.push(key);
            }
        };
        let noun = kind.noun();
        let toml_error = |problem| DescriptorError::Toml { what: what.to_owned(), problem };
        let (api, info, stacks, targets, order) = match kind {
            ModuleKind::Buildpack => {
                let f: BuildpackFile = toml_doc::read(text, note, expected).map_err(toml_error)?;
                (f.api, f.buildpack.0, f.stacks, f.targets, f.order)
            }
            ModuleKind::Extension => {
                let f: ExtensionFile = toml_doc::read(text, note, expected).map_err(toml_error)?;
                (f.api, f.extension, f.stacks, f.targets, f.order)
            }
        };
        let api = match api {
            None => ApiVersion::new(0, 1),
            Some(s) => {
                ApiVersion::parse(&s).map_err(|source| DescriptorError::Api { what: what.to_owned(), source })?
            }
        };
        let targets = targets
            .into_iter()
            .map(|t| Target {
                os: t.os,
                arch: t.arch,
                variant: t.variant,
                distros: t.distros.into_iter().chain(t.distributions).collect(),
            })
            .collect::<Vec<_>>();
        // An `[[order]]` without a group is written as an empty group.
        let order = order.into_iter().map(|o| OrderEntry::new(o.group.unwrap_or_default())).collect::<Vec<_>>();
        if info.id.is_empty() {
            return Err(DescriptorError::Required { noun, key: "id" });
        }
        if info.version.is_empty() {
            return Err(DescriptorError::Required { noun, key: "version" });
        }
        let dirs = ModuleDirs::new(kind, &info.id, &info.version)
            .map_err(|source| DescriptorError::Ident { what: what.to_owned(), source })?;
        if !order.is_empty() && (!targets.is_empty() || !stacks.is_empty()) {
            return Err(DescriptorError::OrderWithTargets { noun, name: info.full_name() });
        }
        // pack reads (and so warns about) the file top-level first, then the module table, its
        // licenses, the stacks, the targets and the order, each in file order.
        let section = |key: &str| match key.split('.').collect::<Vec<_>>().as_slice() {
            [_] => 0,
            [table, "licenses", ..] if *table == noun => 2,
            [table, ..] if *table == noun => 1,
            ["stacks", ..] => 3,
            ["targets", ..] => 4,
            _ => 5,
        };
        unknown.sort_by_key(|k| section(k));
        let mut warnings = Vec::new();
        if !unknown.is_empty() {
            warnings.push(format!(
                "Ignoring unexpected key(s) in descriptor for {noun} {}: {}",
                escape_id(&info.id),
                unknown.join(", ")
            ));
        }
        Ok((Self { api, info, dirs, stacks, targets, order }, warnings))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::module::{License, ModuleRef};

    const GOLDEN: &str = "api = \"0.10\"\n\n[buildpack]\n  id = \"my/bp\"\n  version = \"0.0.1\"\n\n[[targets]]\n  os = \"linux\"\n  arch = \"amd64\"\n";

    fn parse(kind: ModuleKind, text: &str) -> Result<(ModuleDescriptor, Vec<String>), DescriptorError> {
        ModuleDescriptor::parse(kind, text, "x")
    }

    /// The error and its sources, `: `-separated.
    fn chain(e: &DescriptorError) -> String {
        cnbx_fs::error_chain(e)
    }

    #[test]
    fn parses_a_simple_descriptor() {
        let (d, w) = parse(ModuleKind::Buildpack, GOLDEN).unwrap();
        assert!(w.is_empty());
        assert_eq!(d.api, ApiVersion::new(0, 10));
        assert_eq!(d.info, ModuleInfo::new("my/bp", "0.0.1"));
        assert_eq!(d.dirs.base(), "/cnb/buildpacks/my_bp/0.0.1");
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
[[buildpack.exec-env]]
name = "production"
[[buildpack.licenses]]
type = "MIT"
[[stacks]]
id = "io.x"
mixins = ["m"]
[[targets]]
os = "linux"
[[targets.distros]]
name = "ubuntu"
[[targets.distributions]]
name = "debian"
[metadata]
anything = 1
"#;
        let (d, w) = parse(ModuleKind::Buildpack, text).unwrap();
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(d.api, ApiVersion::new(0, 1));
        assert_eq!(d.info.name, "AB");
        assert!(d.info.clear_env);
        assert_eq!(d.info.exec_env, ["production"]);
        assert_eq!(d.info.licenses, [License { kind: "MIT".into(), uri: String::new() }]);
        assert_eq!(d.stacks, vec![ModuleStack { id: "io.x".into(), mixins: vec!["m".into()] }]);
        let names: Vec<&str> = d.targets[0].distros.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["ubuntu", "debian"]);
    }

    #[test]
    fn unknown_keys_warn() {
        let text = "foo = 1\n[buildpack]\nid = \"a/b\"\nversion = \"1\"\nbar = 2\n[[targets]]\nos = \"linux\"\nbaz = 3\n\
                    [[targets]]\nbaz = 4\n[other]\nx = 1\n";
        let (_, w) = parse(ModuleKind::Buildpack, text).unwrap();
        assert_eq!(
            w,
            vec!["Ignoring unexpected key(s) in descriptor for buildpack a_b: foo, other, buildpack.bar, targets.baz"]
        );
        let text = "[extension]\nid = \"e\"\nversion = \"1\"\nsbom-formats = []\n[buildpack]\nid = \"b\"\n";
        let (_, w) = parse(ModuleKind::Extension, text).unwrap();
        assert_eq!(
            w,
            vec!["Ignoring unexpected key(s) in descriptor for extension e: buildpack, extension.sbom-formats"]
        );
    }

    #[test]
    fn required_fields_and_order_conflict() {
        let e = |kind, t: &str| chain(&parse(kind, t).unwrap_err());
        assert_eq!(e(ModuleKind::Buildpack, "[buildpack]\nversion = \"1\""), "'buildpack.id' is required");
        assert_eq!(e(ModuleKind::Buildpack, "[buildpack]\nid = \"a\""), "'buildpack.version' is required");
        assert_eq!(e(ModuleKind::Extension, "[extension]\nversion = \"1\""), "'extension.id' is required");
        assert_eq!(e(ModuleKind::Extension, "[extension]\nid = \"a\""), "'extension.version' is required");
        let both = "[buildpack]\nid = \"a\"\nversion = \"1\"\n[[stacks]]\nid = \"*\"\n[[order]]\n[[order.group]]\nid = \"b\"\nversion = \"2\"\n";
        assert_eq!(
            e(ModuleKind::Buildpack, both),
            "buildpack 'a@1': cannot have both 'targets'/'stacks' and an 'order' defined"
        );
        assert_eq!(e(ModuleKind::Buildpack, "api = 3.5"), "reading x: 'api' must be a string");
        assert_eq!(e(ModuleKind::Buildpack, "api = \"zero\""), "reading x: 'api': invalid api version 'zero'");
        assert_eq!(e(ModuleKind::Buildpack, "buildpack = 1"), "reading x: 'buildpack' must be a table");
        assert_eq!(
            e(ModuleKind::Buildpack, "[buildpack]\nkeywords = [1]"),
            "reading x: 'buildpack.keywords' must be an array of strings"
        );
        assert_eq!(
            e(ModuleKind::Buildpack, "[[order]]\n[[order.group]]\noptional = \"supersecret\""),
            "reading x: 'order.group.optional' must be a boolean"
        );
        assert!(e(ModuleKind::Buildpack, "[buildpack\n").starts_with("reading x: line 1, column "));
    }

    #[test]
    fn errors_never_quote_the_file() {
        let secret = format!("TOKEN=supersecret{}", "x".repeat(10_000));
        let e = chain(&ModuleDescriptor::parse(ModuleKind::Buildpack, &secret, "buildpack.toml of 'x'").unwrap_err());
        assert!(e.starts_with("reading buildpack.toml of 'x': line 1, column "), "{e}");
        assert!(!e.contains("supersecret"), "{e}");
        assert!(e.len() < 300, "{e}");
        let e = chain(&parse(ModuleKind::Buildpack, "[buildpack]\nid = \"..\"\nversion = \"1\"\n").unwrap_err());
        assert_eq!(e, "reading x: buildpack id '..' cannot be a directory name");
        let e = chain(
            &parse(ModuleKind::Buildpack, "[buildpack]\nid = \"a\"\nversion = \"../../lifecycle\"\n").unwrap_err(),
        );
        assert!(e.contains("has version '../../lifecycle', which cannot be a directory name"), "{e}");
    }

    proptest::proptest! {
        /// Arbitrary text, and arbitrary edits of a valid descriptor, give a descriptor or an
        /// error, never a panic.
        #[test]
        fn fuzz_descriptor_never_panics(text in "\\PC*", cut in 0usize..200, insert in "\\PC{0,8}") {
            let _ = parse(ModuleKind::Buildpack, &text);
            let mut g = GOLDEN.to_owned();
            let at = g.char_indices().map(|(i, _)| i).nth(cut % GOLDEN.len()).unwrap_or(0);
            g.insert_str(at, &insert);
            let _ = parse(ModuleKind::Extension, &g);
            let _ = crate::lifecycle::LifecycleDescriptor::parse(&g);
        }
    }

    #[test]
    fn order_is_read() {
        let text = "[buildpack]\nid = \"a\"\nversion = \"1\"\n[[order]]\n[[order.group]]\nid = \"b\"\nversion = \"2\"\noptional = true\n[[order]]\n";
        let (d, _) = parse(ModuleKind::Buildpack, text).unwrap();
        assert_eq!(d.order, vec![OrderEntry::new(vec![ModuleRef::new("b", "2").optional()]), OrderEntry::new(vec![])]);
    }
}
