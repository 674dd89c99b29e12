//! Buildpack and extension descriptions as they appear in labels: module info, module
//! references and orders, the layers label and the system label (pack's `dist` package).

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::version::ApiVersion;

pub(crate) fn is_false(b: &bool) -> bool {
    !*b
}

/// A buildpack's or extension's identity and descriptive fields (pack's `dist.ModuleInfo`).
///
/// Every field is omitted from JSON when empty. Module info from a package image carries
/// only `id`, `name`, `version` and `homepage`; module info read from a `buildpack.toml`
/// carries whatever that file declares.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
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
    /// A module info with only an id and a version.
    pub fn new(id: impl Into<String>, version: impl Into<String>) -> Self {
        Self { id: id.into(), version: version.into(), ..Self::default() }
    }

    /// `id@version`, or `id` when the version is empty (pack's `FullName`).
    pub fn full_name(&self) -> String {
        if self.version.is_empty() { self.id.clone() } else { format!("{}@{}", self.id, self.version) }
    }
}

/// A license of a module.
///
/// Pack's `dist.License` has no JSON tags, so `encoding/json` writes the Go field names
/// **`Type`** and **`URI`**; both are always written. Reading matches keys
/// case-insensitively, so `type`/`uri` are read too.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct License {
    /// `Type` (an SPDX identifier).
    #[serde(rename = "Type")]
    pub kind: String,
    /// `URI`.
    #[serde(rename = "URI")]
    pub uri: String,
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

/// The wire shape of a module reference; a plain struct (not `flatten`) so that reading goes
/// through `deserialize_struct` and gets Go's key matching.
#[derive(Deserialize, Default)]
#[serde(default)]
struct ModuleRefIn {
    id: String,
    name: String,
    version: String,
    description: String,
    homepage: String,
    keywords: Vec<String>,
    #[serde(rename = "exec-env")]
    exec_env: Vec<String>,
    licenses: Vec<License>,
    #[serde(rename = "clear-env")]
    clear_env: bool,
    optional: bool,
}

impl<'de> Deserialize<'de> for ModuleRef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let r = ModuleRefIn::deserialize(deserializer)?;
        Ok(Self {
            info: ModuleInfo {
                id: r.id,
                name: r.name,
                version: r.version,
                description: r.description,
                homepage: r.homepage,
                keywords: r.keywords,
                exec_env: r.exec_env,
                licenses: r.licenses,
                clear_env: r.clear_env,
            },
            optional: r.optional,
        })
    }
}

/// One `[[order]]` entry: `{"group":[…]}`; a missing group is Go's nil slice, written `null`.
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

/// A target a module supports (pack's `dist.Target`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct Target {
    /// `os`, always written.
    pub os: String,
    /// `arch`, always written.
    pub arch: String,
    /// `variant`, omitted when empty.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub variant: String,
    /// `distros`, omitted when empty.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub distros: Vec<Distribution>,
}

/// A distribution of a target (pack's `dist.Distribution`); both fields omitted when empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct Distribution {
    /// `name`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// `version`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub version: String,
}

/// One module version in a layers label (pack's `dist.ModuleLayerInfo`). Keys, in order:
/// `api` (always; `null` when unknown), `stacks`, `targets`, `order` (omitted when empty),
/// `layerDiffID` (always), `homepage`, `name` (omitted when empty).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct ModuleLayerInfo {
    /// The buildpack API the module implements.
    pub api: Option<ApiVersion>,
    /// Legacy stacks.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stacks: Vec<ModuleStack>,
    /// Targets.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<Target>,
    /// A composite buildpack's order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub order: Vec<OrderEntry>,
    /// The diffID of the layer holding the module (`sha256:…`).
    #[serde(rename = "layerDiffID")]
    pub layer_diff_id: String,
    /// `homepage`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub homepage: String,
    /// `name`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
}

/// The `io.buildpacks.buildpack.layers` / `io.buildpacks.extension.layers` value:
/// `{id: {version: layer info}}`, keys sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ModuleLayers(pub BTreeMap<String, BTreeMap<String, ModuleLayerInfo>>);

impl ModuleLayers {
    /// Pack's lookup: `id@version`; a reference without a version resolves when the id has
    /// exactly one version.
    pub fn get(&self, id: &str, version: &str) -> Option<&ModuleLayerInfo> {
        let versions = self.0.get(id)?;
        if version.is_empty() && versions.len() == 1 {
            return versions.values().next();
        }
        versions.get(version)
    }

    /// Adds (or replaces) `id@version`.
    pub fn insert(&mut self, id: impl Into<String>, version: impl Into<String>, info: ModuleLayerInfo) {
        self.0.entry(id.into()).or_default().insert(version.into(), info);
    }

    /// Whether no module is recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
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

/// The `io.buildpacks.buildpack.system` value: `{"pre":{…},"post":{…}}` (both always written).
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
