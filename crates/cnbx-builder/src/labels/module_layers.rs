//! The layers labels (`io.buildpacks.buildpack.layers`, `io.buildpacks.extension.layers`):
//! which layer holds which module version, with what the module declares.

use std::collections::BTreeMap;

use cnbx_model::{ApiVersion, ModuleStack, OrderEntry, Target};
use serde::{Deserialize, Serialize};

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
