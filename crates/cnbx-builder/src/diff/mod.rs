//! `builder diff`: what changed between two builders, from their labels and configs alone.
//!
//! [`read`] reads each side (a registry name, a local-store name or an `oci:` layout; an image
//! index gives one [`PlatformImage`] per platform), and [`compare`] matches the platforms by
//! `os/arch[/variant]` and compares each pair:
//!
//! * the buildpacks and extensions on the builder (from the layers labels): added, removed,
//!   another version, or the same version with other content (another `layerDiffID`);
//! * the detection orders, group by group (the groups of both sides aligned on the groups
//!   they share, so one inserted group does not make every later one "changed");
//! * the system buildpacks, the lifecycle's version and APIs, the run images and their
//!   mirrors, the stack id and mixins, the description and the creating tool;
//! * the build image, which a builder does not name (neither pack nor cnbx records the build
//!   image's name or digest): it is identified by its layers, the ones before the default
//!   directories (see [`layers`]), summed up as their OCI ChainID; its env, user and other
//!   config fields are the builder's;
//! * the `[[build.env]]` files, by the diffID of their layer (their content is in no label);
//! * every label that is not one of pack's builder labels;
//! * the layers: reused (same diffID), new and removed, with their compressed sizes, and what
//!   pulling the new builder downloads for someone who has the old one (the blobs whose
//!   digest the old builder does not have: a reused layer compressed differently counts).
//!
//! Platforms only one side has are added or removed, with all their layers new or removed.
//! No layer is read, from anywhere.

mod layers;
mod read;

use std::collections::{BTreeMap, BTreeSet};

use cnbx_model::{ModuleRef, OrderEntry, RunImage};
use cnbx_oci::Digest;
use cnbx_oci::config::ImageConfig;
use cnbx_oci::image::{ImageError, LayerBlob};
use cnbx_oci::spec::{Manifest, Raw};
use serde::Serialize;

pub use layers::Holds;
pub use read::read;

use crate::images::ImageFetchError;
use crate::inspect::{BuilderInfo, InspectError};
use crate::labels::{self, LabelError, ModuleLayers};

/// How many platforms of one image index are compared at most (an index is someone else's
/// document).
pub const MAX_PLATFORMS: usize = 32;

/// Why a builder could not be read for a diff.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    /// The image could not be read.
    #[error("reading '{image}'")]
    Read {
        /// As the user wrote it.
        image: String,
        /// Why.
        #[source]
        source: Box<ImageFetchError>,
    },
    /// The image does not exist where it may be looked for.
    #[error("'{image}' was not found{hint}")]
    NotFound {
        /// As the user wrote it.
        image: String,
        /// Where it was looked for.
        hint: &'static str,
    },
    /// An image index lists more platforms than are compared.
    #[error("'{image}' has {count} platforms; cnbx compares at most {MAX_PLATFORMS}")]
    TooManyPlatforms {
        /// As the user wrote it.
        image: String,
        /// How many it lists.
        count: usize,
    },
    /// The image (for a platform) is not a builder, or its labels cannot be read.
    #[error("'{image}' ({platform}) cannot be read as a builder")]
    NotABuilder {
        /// As the user wrote it.
        image: String,
        /// The platform.
        platform: String,
        /// What is wrong with its labels.
        #[source]
        source: Box<InspectError>,
    },
    /// The extension layers label is malformed.
    #[error("'{image}' ({platform}) cannot be read as a builder")]
    Label {
        /// As the user wrote it.
        image: String,
        /// The platform.
        platform: String,
        /// What is wrong with it.
        #[source]
        source: Box<LabelError>,
    },
    /// The manifest and the config disagree about the layers.
    #[error("reading the layers of '{image}' ({platform})")]
    Image {
        /// As the user wrote it.
        image: String,
        /// The platform.
        platform: String,
        /// What is wrong.
        #[source]
        source: ImageError,
    },
}

/// One side of a diff, as [`read`] reads it.
#[derive(Debug, Clone)]
pub struct BuilderImage {
    /// The name as the user wrote it.
    pub name: String,
    /// The digest of what the name points at (an index, or a manifest).
    pub digest: Digest,
    /// Each platform's image, in the index's order.
    pub platforms: Vec<PlatformImage>,
}

/// One platform's image of a builder.
#[derive(Debug, Clone)]
pub struct PlatformImage {
    /// `os/arch[/variant]`: the index entry's, else the config's.
    pub platform: String,
    /// The manifest's digest.
    pub manifest: Digest,
    /// The manifest.
    pub manifest_raw: Raw<Manifest>,
    /// The config.
    pub config: ImageConfig,
    /// The layers, base first, with their diffIDs.
    pub layers: Vec<LayerBlob>,
    /// The builder, from its labels.
    pub info: BuilderInfo,
    /// The extension layers label.
    pub extension_layers: ModuleLayers,
    /// Every label.
    pub labels: BTreeMap<String, String>,
}

/// The labels pack writes on a builder (or a builder inherits from its build image and a
/// diff shows elsewhere); every other label is compared as a label.
const PACK_LABELS: [&str; 8] = [
    labels::BUILDER_METADATA,
    labels::BUILDPACK_LAYERS,
    labels::EXTENSION_LAYERS,
    labels::BUILDPACK_ORDER,
    labels::ORDER_EXTENSIONS,
    labels::SYSTEM,
    labels::STACK_ID,
    labels::STACK_MIXINS,
];

/// What changed between two builders.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BuilderDiff {
    /// Whether nothing changed: every platform is in both and unchanged.
    pub equal: bool,
    /// The old builder.
    pub old: Side,
    /// The new builder.
    pub new: Side,
    /// Every platform: the new builder's in its order, then those only the old one has.
    pub platforms: Vec<PlatformDiff>,
}

/// One side, summed up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Side {
    /// The name as given.
    pub image: String,
    /// What it points at: an index or a manifest.
    pub digest: String,
    /// Its platforms.
    pub platforms: Vec<String>,
}

/// What happened to a platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum PlatformStatus {
    /// Only the new builder has it.
    Added,
    /// Only the old builder has it.
    Removed,
    /// Both have it, and something differs.
    Changed,
    /// Both have it, the same.
    Unchanged,
}

/// One platform's changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlatformDiff {
    /// `os/arch[/variant]`.
    pub platform: String,
    /// What happened to it.
    pub status: PlatformStatus,
    /// The old manifest's digest, if the old builder has the platform.
    pub old_manifest: Option<String>,
    /// The new manifest's digest, if the new builder has the platform.
    pub new_manifest: Option<String>,
    /// What changed in the builder (empty unless both sides have the platform).
    pub changes: Changes,
    /// The layers.
    pub layers: LayerDiff,
    /// The manifests differ in what no other field shows (annotations, media types, the
    /// order of the layers).
    pub other_differences: bool,
}

/// A value that changed: `None` where a side does not have it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// Before.
    pub old: Option<String>,
    /// After.
    pub new: Option<String>,
}

impl Change {
    fn of(old: Option<String>, new: Option<String>) -> Option<Self> {
        (old != new).then_some(Self { old, new })
    }
}

/// A named value that changed (a label, a variable, a config field).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ValueChange {
    /// Its name.
    pub key: String,
    /// Before (`None`: added).
    pub old: Option<String>,
    /// After (`None`: removed).
    pub new: Option<String>,
}

/// Everything that changed in one platform's builder. Empty lists and `None`s mean no change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Changes {
    /// The description.
    pub description: Option<Change>,
    /// The creating tool, `name version`.
    pub created_by: Option<Change>,
    /// The buildpacks.
    pub buildpacks: Vec<ModuleChange>,
    /// The extensions.
    pub extensions: Vec<ModuleChange>,
    /// The buildpack detection order.
    pub order: Vec<GroupChange>,
    /// The extension detection order.
    pub order_extensions: Vec<GroupChange>,
    /// The system buildpacks (`pre`, `post`).
    pub system_buildpacks: Vec<SystemChange>,
    /// The lifecycle.
    pub lifecycle: Option<LifecycleChange>,
    /// The build image.
    pub build_image: Option<BuildImageChange>,
    /// The run images and their mirrors.
    pub run_images: Vec<RunImageChange>,
    /// The stack id and mixins.
    pub stack: Option<StackChange>,
    /// The `[[build.env]]` files, by their layer's diffID.
    pub build_env: Option<Change>,
    /// The environment (`config.Env`, the build image's), by variable.
    pub env: Vec<ValueChange>,
    /// Other config fields (`config.User`, `os`, …), as compact JSON unless strings.
    pub config: Vec<ValueChange>,
    /// Labels other than pack's builder labels.
    pub labels: Vec<ValueChange>,
}

impl Changes {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// How a module changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ModuleChangeKind {
    /// Only the new builder has the id.
    Added,
    /// Only the old builder has the id.
    Removed,
    /// The id is on both, in another version.
    Version,
    /// The same `id@version`, with other content (another layer).
    Content,
}

/// A buildpack or extension that changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModuleChange {
    /// How.
    pub change: ModuleChangeKind,
    /// The module id.
    pub id: String,
    /// Its name (the new builder's, else the old one's), when one is recorded.
    pub name: Option<String>,
    /// The old version.
    pub old_version: Option<String>,
    /// The new version.
    pub new_version: Option<String>,
    /// The old layer's diffID.
    pub old_layer: Option<String>,
    /// The new layer's diffID.
    pub new_layer: Option<String>,
}

/// A reference in an order group or the system buildpacks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ref {
    /// The module id.
    pub id: String,
    /// Its version, empty when the reference has none.
    pub version: String,
    /// Whether detection may skip it.
    pub optional: bool,
}

impl Ref {
    fn of(r: &ModuleRef) -> Self {
        Self { id: r.info.id.clone(), version: r.info.version.clone(), optional: r.optional }
    }

    fn list(refs: &[ModuleRef]) -> Vec<Self> {
        refs.iter().map(Self::of).collect()
    }
}

/// How an order group changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum GroupChangeKind {
    /// A group only the new order has.
    Added,
    /// A group only the old order has.
    Removed,
    /// A group in the same place, with other references.
    Changed,
}

/// An order group that changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupChange {
    /// How.
    pub change: GroupChangeKind,
    /// Its number in the old order (1-based).
    pub old_group: Option<usize>,
    /// Its number in the new order (1-based).
    pub new_group: Option<usize>,
    /// The old references.
    pub old: Option<Vec<Ref>>,
    /// The new references.
    pub new: Option<Vec<Ref>>,
}

/// The system buildpacks of one phase that changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SystemChange {
    /// `pre` or `post`.
    pub phase: &'static str,
    /// Before.
    pub old: Vec<Ref>,
    /// After.
    pub new: Vec<Ref>,
}

/// The lifecycle's changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LifecycleChange {
    /// The version.
    pub version: Option<Change>,
    /// The API lists that changed.
    pub apis: Vec<ApiChange>,
}

/// An API list of the lifecycle that changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiChange {
    /// `buildpack` or `platform`.
    pub api: &'static str,
    /// `supported` or `deprecated`.
    pub list: &'static str,
    /// Versions only the new lifecycle lists.
    pub added: Vec<String>,
    /// Versions only the old lifecycle lists.
    pub removed: Vec<String>,
}

/// The build image's layers, summed up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BaseLayers {
    /// How many.
    pub layers: usize,
    /// Their compressed size.
    pub size: u64,
    /// Their OCI ChainID (the identity of the file system they make).
    pub chain_id: String,
}

/// The build image changed (or could be identified on one side only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildImageChange {
    /// The old builder's build image layers, when they could be identified.
    pub old: Option<BaseLayers>,
    /// The new builder's.
    pub new: Option<BaseLayers>,
    /// How many of the new build image's layers the old one has (by diffID).
    pub reused_layers: usize,
}

/// How a run image changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum RunImageChangeKind {
    /// Only the new builder names it.
    Added,
    /// Only the old builder names it.
    Removed,
    /// Both name it, with other mirrors.
    Mirrors,
    /// Both name it, in another place in the list (the first is the default).
    Moved,
}

/// A run image that changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunImageChange {
    /// How.
    pub change: RunImageChangeKind,
    /// The run image, as written.
    pub image: String,
    /// Its place in the old list (1-based).
    pub old_position: Option<usize>,
    /// Its place in the new list (1-based).
    pub new_position: Option<usize>,
    /// Mirrors only the new builder names for it.
    pub mirrors_added: Vec<String>,
    /// Mirrors only the old builder names for it.
    pub mirrors_removed: Vec<String>,
}

/// The stack's changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StackChange {
    /// The stack id.
    pub id: Option<Change>,
    /// Mixins only the new builder has.
    pub mixins_added: Vec<String>,
    /// Mixins only the old builder has.
    pub mixins_removed: Vec<String>,
}

/// What happened to a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum LayerStatus {
    /// The old builder has a layer with this diffID.
    Reused,
    /// It does not.
    New,
    /// Only the old builder has it.
    Removed,
}

/// One layer of either side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LayerChange {
    /// What happened to it.
    pub status: LayerStatus,
    /// What it holds (the vocabulary of `builder create --dry-run`).
    pub holds: String,
    /// Its diffID.
    #[serde(rename = "diffID")]
    pub diff_id: String,
    /// Its blob's digest.
    pub digest: String,
    /// Its blob's (compressed) size.
    pub size: u64,
    /// A reused layer whose blob has another digest than the old builder's (compressed
    /// differently): a pull downloads it again.
    pub recompressed: bool,
}

/// How many layers, and their compressed size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    /// How many.
    pub layers: usize,
    /// Their compressed size in bytes.
    pub size: u64,
}

impl Tally {
    fn add(&mut self, size: u64) {
        self.layers += 1;
        self.size += size;
    }
}

/// The layers of one platform.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LayerDiff {
    /// The new builder's layers the old one has.
    pub reused: Tally,
    /// The new builder's layers the old one does not have.
    pub new: Tally,
    /// The old builder's layers the new one does not have.
    pub removed: Tally,
    /// What pulling the new builder downloads for someone who has the old one: its distinct
    /// blobs whose digest the old builder does not have.
    pub download: Tally,
    /// The new builder's layers in order, then the removed ones in the old builder's order.
    pub layers: Vec<LayerChange>,
}

impl LayerDiff {
    /// Whether the layers differ (another diffID, or another blob for one).
    pub fn changed(&self) -> bool {
        self.new.layers > 0 || self.removed.layers > 0 || self.layers.iter().any(|l| l.recompressed)
    }
}

/// Compares two builders (see the module docs).
pub fn compare(old: &BuilderImage, new: &BuilderImage) -> BuilderDiff {
    let side = |b: &BuilderImage| Side {
        image: b.name.clone(),
        digest: b.digest.to_string(),
        platforms: b.platforms.iter().map(|p| p.platform.clone()).collect(),
    };
    let mut platforms = Vec::new();
    for n in &new.platforms {
        match old.platforms.iter().find(|o| o.platform == n.platform) {
            Some(o) => platforms.push(compare_platform(o, n)),
            None => platforms.push(one_sided(n, PlatformStatus::Added)),
        }
    }
    for o in &old.platforms {
        if !new.platforms.iter().any(|n| n.platform == o.platform) {
            platforms.push(one_sided(o, PlatformStatus::Removed));
        }
    }
    let equal = platforms.iter().all(|p| p.status == PlatformStatus::Unchanged);
    BuilderDiff { equal, old: side(old), new: side(new), platforms }
}

/// A platform only one side has: every layer added (or removed).
fn one_sided(image: &PlatformImage, status: PlatformStatus) -> PlatformDiff {
    let (holds, _) = layers::attribute(image);
    let version = lifecycle_version(&image.info);
    let mut diff = LayerDiff::default();
    let layer_status = if status == PlatformStatus::Added { LayerStatus::New } else { LayerStatus::Removed };
    let mut seen = BTreeSet::new();
    for (layer, hold) in image.layers.iter().zip(&holds) {
        let size = layer.descriptor.size;
        if status == PlatformStatus::Added {
            diff.new.add(size);
            if seen.insert(&layer.descriptor.digest) {
                diff.download.add(size);
            }
        } else {
            diff.removed.add(size);
        }
        diff.layers.push(layer_change(layer_status, layer, hold, &version, false));
    }
    let manifest = Some(image.manifest.to_string());
    let (old_manifest, new_manifest) =
        if status == PlatformStatus::Added { (None, manifest) } else { (manifest, None) };
    PlatformDiff {
        platform: image.platform.clone(),
        status,
        old_manifest,
        new_manifest,
        changes: Changes::default(),
        layers: diff,
        other_differences: false,
    }
}

fn lifecycle_version(info: &BuilderInfo) -> String {
    info.lifecycle.version.as_ref().map(ToString::to_string).unwrap_or_default()
}

fn layer_change(
    status: LayerStatus,
    layer: &LayerBlob,
    holds: &Holds,
    version: &str,
    recompressed: bool,
) -> LayerChange {
    LayerChange {
        status,
        holds: holds.describe(version),
        diff_id: layer.diff_id.to_string(),
        digest: layer.descriptor.digest.to_string(),
        size: layer.descriptor.size,
        recompressed,
    }
}

fn compare_platform(old: &PlatformImage, new: &PlatformImage) -> PlatformDiff {
    let (old_holds, old_base) = layers::attribute(old);
    let (new_holds, new_base) = layers::attribute(new);
    let layer_diff = compare_layers(old, &old_holds, new, &new_holds);
    let same_manifest = old.manifest == new.manifest;
    let changes =
        if same_manifest { Changes::default() } else { changes(old, &old_holds, old_base, new, &new_holds, new_base) };
    let visible = !changes.is_empty() || layer_diff.changed();
    let status = if same_manifest { PlatformStatus::Unchanged } else { PlatformStatus::Changed };
    PlatformDiff {
        platform: new.platform.clone(),
        status,
        old_manifest: Some(old.manifest.to_string()),
        new_manifest: Some(new.manifest.to_string()),
        other_differences: !same_manifest && !visible,
        changes,
        layers: layer_diff,
    }
}

fn compare_layers(old: &PlatformImage, old_holds: &[Holds], new: &PlatformImage, new_holds: &[Holds]) -> LayerDiff {
    let old_ids: BTreeSet<&Digest> = old.layers.iter().map(|l| &l.diff_id).collect();
    let old_digests: BTreeSet<&Digest> = old.layers.iter().map(|l| &l.descriptor.digest).collect();
    let new_ids: BTreeSet<&Digest> = new.layers.iter().map(|l| &l.diff_id).collect();
    let (old_version, new_version) = (lifecycle_version(&old.info), lifecycle_version(&new.info));
    let mut diff = LayerDiff::default();
    let mut downloaded = BTreeSet::new();
    for (layer, hold) in new.layers.iter().zip(new_holds) {
        let size = layer.descriptor.size;
        let in_old_blobs = old_digests.contains(&layer.descriptor.digest);
        let (status, recompressed) = if old_ids.contains(&layer.diff_id) {
            diff.reused.add(size);
            (LayerStatus::Reused, !in_old_blobs)
        } else {
            diff.new.add(size);
            (LayerStatus::New, false)
        };
        if !in_old_blobs && downloaded.insert(&layer.descriptor.digest) {
            diff.download.add(size);
        }
        diff.layers.push(layer_change(status, layer, hold, &new_version, recompressed));
    }
    for (layer, hold) in old.layers.iter().zip(old_holds) {
        if !new_ids.contains(&layer.diff_id) {
            diff.removed.add(layer.descriptor.size);
            diff.layers.push(layer_change(LayerStatus::Removed, layer, hold, &old_version, false));
        }
    }
    diff
}

fn changes(
    old: &PlatformImage,
    old_holds: &[Holds],
    old_base: Option<usize>,
    new: &PlatformImage,
    new_holds: &[Holds],
    new_base: Option<usize>,
) -> Changes {
    let (o, n) = (&old.info, &new.info);
    let nonempty = |s: &str| Some(s.to_owned()).filter(|s| !s.is_empty());
    let creator = |info: &BuilderInfo| {
        let c = &info.created_by;
        nonempty(format!("{} {}", c.name, c.version).trim())
    };
    let build_env = match (layers::build_env(&old.layers, old_holds), layers::build_env(&new.layers, new_holds)) {
        (Some(a), Some(b)) => Change::of(a.map(|d| d.to_string()), b.map(|d| d.to_string())),
        _ => None,
    };
    Changes {
        description: Change::of(nonempty(&o.description), nonempty(&n.description)),
        created_by: Change::of(creator(o), creator(n)),
        buildpacks: module_changes(&o.buildpack_layers, &n.buildpack_layers, &module_names(o, n, false)),
        extensions: module_changes(&old.extension_layers, &new.extension_layers, &module_names(o, n, true)),
        order: group_changes(&o.order, &n.order),
        order_extensions: group_changes(&o.order_extensions, &n.order_extensions),
        system_buildpacks: [("pre", &o.system.pre, &n.system.pre), ("post", &o.system.post, &n.system.post)]
            .into_iter()
            .filter(|(_, a, b)| a != b)
            .map(|(phase, a, b)| SystemChange { phase, old: Ref::list(&a.buildpacks), new: Ref::list(&b.buildpacks) })
            .collect(),
        lifecycle: lifecycle_change(o, n),
        build_image: build_image_change(old, old_base, new, new_base),
        run_images: run_image_changes(&o.run_images, &n.run_images),
        stack: stack_change(o, n),
        build_env,
        env: map_changes(&env_map(&old.config), &env_map(&new.config)),
        config: map_changes(&config_fields(&old.config), &config_fields(&new.config)),
        labels: map_changes(&other_labels(&old.labels), &other_labels(&new.labels)),
    }
}

/// Module names recorded in the metadata label, by `id@version` (either side's).
fn module_names(old: &BuilderInfo, new: &BuilderInfo, extensions: bool) -> BTreeMap<String, String> {
    let mut names = BTreeMap::new();
    for info in [old, new] {
        let list = if extensions { info.extensions.as_deref().unwrap_or_default() } else { &info.buildpacks };
        for m in list.iter().filter(|m| !m.name.is_empty()) {
            names.insert(m.full_name(), m.name.clone());
            names.insert(m.id.clone(), m.name.clone());
        }
    }
    names
}

fn module_changes(old: &ModuleLayers, new: &ModuleLayers, names: &BTreeMap<String, String>) -> Vec<ModuleChange> {
    let ids: BTreeSet<&String> = old.0.keys().chain(new.0.keys()).collect();
    let mut out = Vec::new();
    for id in ids {
        let empty = BTreeMap::new();
        let (o, n) = (old.0.get(id).unwrap_or(&empty), new.0.get(id).unwrap_or(&empty));
        let change = |kind, ov: Option<&String>, nv: Option<&String>| {
            let name = nv.or(ov).and_then(|v| names.get(&format!("{id}@{v}"))).or_else(|| names.get(id.as_str()));
            ModuleChange {
                change: kind,
                id: id.clone(),
                name: name.cloned(),
                old_version: ov.cloned(),
                new_version: nv.cloned(),
                old_layer: ov.and_then(|v| o.get(v)).map(|l| l.layer_diff_id.clone()),
                new_layer: nv.and_then(|v| n.get(v)).map(|l| l.layer_diff_id.clone()),
            }
        };
        for (version, layer) in o {
            if let Some(other) = n.get(version)
                && other.layer_diff_id != layer.layer_diff_id
            {
                out.push(change(ModuleChangeKind::Content, Some(version), Some(version)));
            }
        }
        let only_old: Vec<&String> = o.keys().filter(|v| !n.contains_key(*v)).collect();
        let only_new: Vec<&String> = n.keys().filter(|v| !o.contains_key(*v)).collect();
        match (only_old.as_slice(), only_new.as_slice()) {
            ([ov], [nv]) => out.push(change(ModuleChangeKind::Version, Some(ov), Some(nv))),
            _ => {
                out.extend(only_old.iter().map(|v| change(ModuleChangeKind::Removed, Some(v), None)));
                out.extend(only_new.iter().map(|v| change(ModuleChangeKind::Added, None, Some(v))));
            }
        }
    }
    out
}

/// Aligns two lists on a longest common subsequence: `(old index, new index)` pairs, with
/// `None` on the side that does not have the item.
fn align<T: PartialEq>(old: &[T], new: &[T]) -> Vec<(Option<usize>, Option<usize>)> {
    let (m, n) = (old.len(), new.len());
    let mut lcs = vec![vec![0usize; n + 1]; m + 1];
    for i in (0..m).rev() {
        for j in (0..n).rev() {
            lcs[i][j] = if old[i] == new[j] { lcs[i + 1][j + 1] + 1 } else { lcs[i + 1][j].max(lcs[i][j + 1]) };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while i < m || j < n {
        if i < m && j < n && old[i] == new[j] {
            out.push((Some(i), Some(j)));
            i += 1;
            j += 1;
        } else if j < n && (i == m || lcs[i][j + 1] >= lcs[i + 1][j]) {
            out.push((None, Some(j)));
            j += 1;
        } else {
            out.push((Some(i), None));
            i += 1;
        }
    }
    out
}

fn group_changes(old: &[OrderEntry], new: &[OrderEntry]) -> Vec<GroupChange> {
    let (old_groups, new_groups): (Vec<&[ModuleRef]>, Vec<&[ModuleRef]>) =
        (old.iter().map(OrderEntry::refs).collect(), new.iter().map(OrderEntry::refs).collect());
    let mut out = Vec::new();
    // Between two groups both orders share, the old groups left over and the new ones are
    // paired in order as changed groups; the rest are removed or added.
    let mut pending_old: Vec<usize> = Vec::new();
    let mut pending_new: Vec<usize> = Vec::new();
    let flush = |pending_old: &mut Vec<usize>, pending_new: &mut Vec<usize>, out: &mut Vec<GroupChange>| {
        for k in 0..pending_old.len().max(pending_new.len()) {
            let (o, n) = (pending_old.get(k).copied(), pending_new.get(k).copied());
            let change = match (o, n) {
                (Some(_), Some(_)) => GroupChangeKind::Changed,
                (Some(_), None) => GroupChangeKind::Removed,
                _ => GroupChangeKind::Added,
            };
            out.push(GroupChange {
                change,
                old_group: o.map(|i| i + 1),
                new_group: n.map(|j| j + 1),
                old: o.map(|i| Ref::list(old_groups[i])),
                new: n.map(|j| Ref::list(new_groups[j])),
            });
        }
        pending_old.clear();
        pending_new.clear();
    };
    for (o, n) in align(&old_groups, &new_groups) {
        match (o, n) {
            (Some(_), Some(_)) => flush(&mut pending_old, &mut pending_new, &mut out),
            (Some(i), None) => pending_old.push(i),
            (None, Some(j)) => pending_new.push(j),
            (None, None) => {}
        }
    }
    flush(&mut pending_old, &mut pending_new, &mut out);
    out
}

fn lifecycle_change(old: &BuilderInfo, new: &BuilderInfo) -> Option<LifecycleChange> {
    let version = Change::of(
        old.lifecycle.version.as_ref().map(ToString::to_string),
        new.lifecycle.version.as_ref().map(ToString::to_string),
    );
    let (o, n) = (&old.lifecycle.apis, &new.lifecycle.apis);
    let mut apis = Vec::new();
    for (api, list, a, b) in [
        ("buildpack", "supported", o.buildpack.supported(), n.buildpack.supported()),
        ("buildpack", "deprecated", o.buildpack.deprecated(), n.buildpack.deprecated()),
        ("platform", "supported", o.platform.supported(), n.platform.supported()),
        ("platform", "deprecated", o.platform.deprecated(), n.platform.deprecated()),
    ] {
        let (a, b): (BTreeSet<_>, BTreeSet<_>) = (a.iter().collect(), b.iter().collect());
        let added: Vec<String> = b.difference(&a).map(ToString::to_string).collect();
        let removed: Vec<String> = a.difference(&b).map(ToString::to_string).collect();
        if !added.is_empty() || !removed.is_empty() {
            apis.push(ApiChange { api, list, added, removed });
        }
    }
    (version.is_some() || !apis.is_empty()).then_some(LifecycleChange { version, apis })
}

/// The OCI ChainID of `diff_ids`: the first diffID, then `sha256(chain + " " + diffID)` for
/// each next one.
fn chain_id(diff_ids: &[&Digest]) -> Option<Digest> {
    let (first, rest) = diff_ids.split_first()?;
    Some(rest.iter().fold((*first).clone(), |chain, id| Digest::of(format!("{chain} {id}").as_bytes())))
}

fn base_layers(image: &PlatformImage, base: Option<usize>) -> Option<BaseLayers> {
    let layers = &image.layers[..base?];
    let ids: Vec<&Digest> = layers.iter().map(|l| &l.diff_id).collect();
    Some(BaseLayers {
        layers: layers.len(),
        size: layers.iter().map(|l| l.descriptor.size).sum(),
        chain_id: chain_id(&ids).map(|d| d.to_string()).unwrap_or_default(),
    })
}

fn build_image_change(
    old: &PlatformImage,
    old_base: Option<usize>,
    new: &PlatformImage,
    new_base: Option<usize>,
) -> Option<BuildImageChange> {
    let (o, n) = (base_layers(old, old_base), base_layers(new, new_base));
    if o == n {
        return None;
    }
    let old_ids: BTreeSet<&Digest> = old.layers[..old_base.unwrap_or(0)].iter().map(|l| &l.diff_id).collect();
    let reused_layers = new.layers[..new_base.unwrap_or(0)].iter().filter(|l| old_ids.contains(&l.diff_id)).count();
    Some(BuildImageChange { old: o, new: n, reused_layers })
}

fn run_image_changes(old: &[RunImage], new: &[RunImage]) -> Vec<RunImageChange> {
    let position = |list: &[RunImage], image: &str| list.iter().position(|r| r.image == image);
    let mut out = Vec::new();
    let change = |kind, image: &str| RunImageChange {
        change: kind,
        image: image.to_owned(),
        old_position: position(old, image).map(|p| p + 1),
        new_position: position(new, image).map(|p| p + 1),
        mirrors_added: Vec::new(),
        mirrors_removed: Vec::new(),
    };
    for r in old.iter().filter(|r| position(new, &r.image).is_none()) {
        out.push(change(RunImageChangeKind::Removed, &r.image));
    }
    // Among the run images both name, the order matters: the first is the default.
    let common_old: Vec<&str> = old.iter().map(|r| r.image.as_str()).filter(|i| position(new, i).is_some()).collect();
    let common_new: Vec<&str> = new.iter().map(|r| r.image.as_str()).filter(|i| position(old, i).is_some()).collect();
    for r in new {
        let Some(before) = old.iter().find(|o| o.image == r.image) else {
            let mut c = change(RunImageChangeKind::Added, &r.image);
            c.mirrors_added = r.mirror_list().to_vec();
            out.push(c);
            continue;
        };
        let (a, b): (BTreeSet<&String>, BTreeSet<&String>) =
            (before.mirror_list().iter().collect(), r.mirror_list().iter().collect());
        if a != b {
            let mut c = change(RunImageChangeKind::Mirrors, &r.image);
            c.mirrors_added = b.difference(&a).map(|s| (*s).clone()).collect();
            c.mirrors_removed = a.difference(&b).map(|s| (*s).clone()).collect();
            out.push(c);
        }
        let rank = |list: &[&str]| list.iter().position(|i| *i == r.image);
        if rank(&common_old) != rank(&common_new) {
            out.push(change(RunImageChangeKind::Moved, &r.image));
        }
    }
    out
}

fn stack_change(old: &BuilderInfo, new: &BuilderInfo) -> Option<StackChange> {
    let nonempty = |s: &str| Some(s.to_owned()).filter(|s| !s.is_empty());
    let id = Change::of(nonempty(&old.stack_id), nonempty(&new.stack_id));
    let (a, b): (BTreeSet<&String>, BTreeSet<&String>) = (old.mixins.iter().collect(), new.mixins.iter().collect());
    let mixins_added: Vec<String> = b.difference(&a).map(|s| (*s).clone()).collect();
    let mixins_removed: Vec<String> = a.difference(&b).map(|s| (*s).clone()).collect();
    (id.is_some() || !mixins_added.is_empty() || !mixins_removed.is_empty()).then_some(StackChange {
        id,
        mixins_added,
        mixins_removed,
    })
}

/// `config.Env` by variable (split on the first `=`; the last of duplicates wins; an entry
/// without `=` is kept whole with no value).
fn env_map(config: &ImageConfig) -> BTreeMap<String, String> {
    config
        .env()
        .into_iter()
        .map(|e| match e.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => (e, String::new()),
        })
        .collect()
}

/// The config fields a diff compares one by one: the top-level ones but `rootfs` (the
/// layers) and `history`, and those of `config` but `Labels` and `Env` (compared apart);
/// strings as they are, other values as compact JSON.
fn config_fields(config: &ImageConfig) -> BTreeMap<String, String> {
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut out = BTreeMap::new();
    for (key, value) in config.as_json() {
        match key.as_str() {
            "rootfs" | "history" => {}
            "config" => {
                if let Some(inner) = value.as_object() {
                    for (k, v) in inner.iter().filter(|(k, _)| !matches!(k.as_str(), "Labels" | "Env")) {
                        out.insert(format!("config.{k}"), text(v));
                    }
                }
            }
            _ => {
                out.insert(key.clone(), text(value));
            }
        }
    }
    out
}

fn other_labels(labels: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    labels.iter().filter(|(k, _)| !PACK_LABELS.contains(&k.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn map_changes(old: &BTreeMap<String, String>, new: &BTreeMap<String, String>) -> Vec<ValueChange> {
    let keys: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    keys.into_iter()
        .filter(|k| old.get(*k) != new.get(*k))
        .map(|k| ValueChange { key: k.clone(), old: old.get(k).cloned(), new: new.get(k).cloned() })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::ModuleLayerInfo;
    use cnbx_oci::image::BlobSource;
    use cnbx_oci::spec::Descriptor;

    fn digest(c: char) -> Digest {
        format!("sha256:{}", c.to_string().repeat(64)).parse().unwrap()
    }

    fn layers(entries: &[(&str, &str, char)]) -> ModuleLayers {
        let mut l = ModuleLayers::default();
        for (id, version, d) in entries {
            l.insert(*id, *version, ModuleLayerInfo { layer_diff_id: digest(*d).to_string(), ..Default::default() });
        }
        l
    }

    #[test]
    fn modules_are_paired_by_id() {
        let old = layers(&[("a", "1", '1'), ("b", "1", '2'), ("c", "1", '3'), ("d", "1", '4'), ("d", "2", '5')]);
        let new = layers(&[("a", "2", '6'), ("b", "1", '7'), ("d", "3", '8'), ("e", "1", '9')]);
        let names = BTreeMap::from([("a@2".to_owned(), "A".to_owned())]);
        let changes = module_changes(&old, &new, &names);
        let owned: Vec<(ModuleChangeKind, String, Option<String>, Option<String>)> =
            changes.iter().map(|c| (c.change, c.id.clone(), c.old_version.clone(), c.new_version.clone())).collect();
        let s = |v: &str| Some(v.to_owned());
        assert_eq!(
            owned,
            [
                (ModuleChangeKind::Version, "a".to_owned(), s("1"), s("2")),
                (ModuleChangeKind::Content, "b".to_owned(), s("1"), s("1")),
                (ModuleChangeKind::Removed, "c".to_owned(), s("1"), None),
                // Two old versions and one new: not a pair.
                (ModuleChangeKind::Removed, "d".to_owned(), s("1"), None),
                (ModuleChangeKind::Removed, "d".to_owned(), s("2"), None),
                (ModuleChangeKind::Added, "d".to_owned(), None, s("3")),
                (ModuleChangeKind::Added, "e".to_owned(), None, s("1")),
            ]
        );
        assert_eq!(changes[0].name.as_deref(), Some("A"));
        assert_eq!(changes[1].old_layer, Some(digest('2').to_string()));
        assert_eq!(changes[1].new_layer, Some(digest('7').to_string()));
        assert!(module_changes(&old, &old, &names).is_empty());
    }

    fn order(groups: &[&[&str]]) -> Vec<OrderEntry> {
        groups.iter().map(|g| OrderEntry::new(g.iter().map(|id| ModuleRef::new(*id, "")).collect())).collect()
    }

    #[test]
    fn groups_are_aligned_on_the_ones_both_orders_share() {
        let summary = |old: &[&[&str]], new: &[&[&str]]| -> Vec<(GroupChangeKind, Option<usize>, Option<usize>)> {
            group_changes(&order(old), &order(new)).iter().map(|g| (g.change, g.old_group, g.new_group)).collect()
        };
        // A group inserted in front: one added group, the others unchanged.
        assert_eq!(summary(&[&["a"], &["b"]], &[&["x"], &["a"], &["b"]]), [(GroupChangeKind::Added, None, Some(1))]);
        // A group changed in place, one removed at the end.
        assert_eq!(
            summary(&[&["a"], &["b"], &["c"]], &[&["a"], &["b", "y"]]),
            [(GroupChangeKind::Changed, Some(2), Some(2)), (GroupChangeKind::Removed, Some(3), None)]
        );
        assert!(summary(&[&["a"]], &[&["a"]]).is_empty());
        let changed = &group_changes(&order(&[&["a"]]), &order(&[&["b"]]))[0];
        assert_eq!(changed.old.as_ref().unwrap()[0].id, "a");
        assert_eq!(changed.new.as_ref().unwrap()[0].id, "b");
    }

    #[test]
    fn run_images_added_removed_mirrored_and_moved() {
        let old =
            [RunImage::new("r1", ["m1"]), RunImage::new("r2", Vec::<String>::new()), RunImage::new("gone", ["x"])];
        let new = [RunImage::new("r2", ["m2"]), RunImage::new("r1", ["m1"]), RunImage::new("r3", ["m3"])];
        let changes = run_image_changes(&old, &new);
        let owned: Vec<(RunImageChangeKind, String)> = changes.iter().map(|c| (c.change, c.image.clone())).collect();
        assert_eq!(
            owned,
            [
                (RunImageChangeKind::Removed, "gone".to_owned()),
                (RunImageChangeKind::Mirrors, "r2".to_owned()),
                (RunImageChangeKind::Moved, "r2".to_owned()),
                (RunImageChangeKind::Moved, "r1".to_owned()),
                (RunImageChangeKind::Added, "r3".to_owned()),
            ]
        );
        assert_eq!(changes[1].mirrors_added, ["m2"]);
        assert_eq!((changes[2].old_position, changes[2].new_position), (Some(2), Some(1)));
        assert_eq!(changes[4].mirrors_added, ["m3"]);
        // No mirrors and an empty list are the same.
        assert!(
            run_image_changes(
                &[RunImage { image: "r".into(), mirrors: None }],
                &[RunImage::new("r", Vec::<String>::new())]
            )
            .is_empty()
        );
    }

    #[test]
    fn chain_ids_follow_the_oci_definition() {
        let (a, b) = (digest('a'), digest('b'));
        assert_eq!(chain_id(&[]), None);
        assert_eq!(chain_id(&[&a]), Some(a.clone()));
        assert_eq!(chain_id(&[&a, &b]), Some(Digest::of(format!("{a} {b}").as_bytes())));
    }

    /// A platform image of a builder with these layers (`(diffID, digest, size)`) and labels.
    fn image(platform: &str, manifest: char, layers: &[(char, char, u64)], labels: &[(&str, &str)]) -> PlatformImage {
        let labels: BTreeMap<String, String> = labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        let blobs = layers
            .iter()
            .map(|(diff_id, blob, size)| LayerBlob {
                descriptor: Descriptor::new("application/vnd.oci.image.layer.v1.tar+gzip", digest(*blob), *size),
                diff_id: digest(*diff_id),
                source: BlobSource::Registry(cnbx_refs::ImageRef::parse("x/y").unwrap()),
            })
            .collect();
        let mut full = labels.clone();
        full.entry(labels::BUILDER_METADATA.to_owned()).or_insert_with(|| "{}".to_owned());
        let manifest_raw = Raw::new(Manifest {
            schema_version: 2,
            media_type: None,
            config: Descriptor::new("c", digest('c'), 1),
            layers: vec![],
            annotations: None,
        });
        PlatformImage {
            platform: platform.to_owned(),
            manifest: digest(manifest),
            manifest_raw,
            config: ImageConfig::new(&cnbx_oci::spec::Platform::parse(platform).unwrap()),
            layers: blobs,
            info: BuilderInfo::from_labels(&full).unwrap(),
            extension_layers: ModuleLayers::default(),
            labels: full,
        }
    }

    fn builder(name: &str, platforms: Vec<PlatformImage>) -> BuilderImage {
        BuilderImage { name: name.to_owned(), digest: digest('f'), platforms }
    }

    #[test]
    fn platforms_are_matched_and_layers_counted() {
        let old = builder(
            "old",
            vec![
                image("linux/amd64", '1', &[('a', '5', 100), ('b', '6', 10), ('c', '7', 5)], &[("x", "1")]),
                image("linux/s390x", '2', &[('a', '5', 100)], &[]),
            ],
        );
        let new = builder(
            "new",
            vec![
                // b reused but compressed differently; d new, twice (downloaded once); c removed.
                image(
                    "linux/amd64",
                    '3',
                    &[('a', '5', 100), ('b', '9', 11), ('d', '8', 7), ('d', '8', 7)],
                    &[("x", "2")],
                ),
                image("linux/arm64", '4', &[('a', '0', 90)], &[]),
            ],
        );
        let diff = compare(&old, &new);
        assert!(!diff.equal);
        let status: Vec<(&str, PlatformStatus)> =
            diff.platforms.iter().map(|p| (p.platform.as_str(), p.status)).collect();
        assert_eq!(
            status,
            [
                ("linux/amd64", PlatformStatus::Changed),
                ("linux/arm64", PlatformStatus::Added),
                ("linux/s390x", PlatformStatus::Removed)
            ]
        );
        let amd64 = &diff.platforms[0].layers;
        assert_eq!(amd64.reused, Tally { layers: 2, size: 111 });
        assert_eq!(amd64.new, Tally { layers: 2, size: 14 });
        assert_eq!(amd64.removed, Tally { layers: 1, size: 5 });
        assert_eq!(amd64.download, Tally { layers: 2, size: 18 });
        assert!(amd64.layers[1].recompressed && !amd64.layers[0].recompressed);
        assert_eq!(
            diff.platforms[0].changes.labels,
            [ValueChange { key: "x".into(), old: Some("1".into()), new: Some("2".into()) }]
        );
        assert_eq!(diff.platforms[1].layers.download, Tally { layers: 1, size: 90 });
        assert_eq!(diff.platforms[2].layers.removed, Tally { layers: 1, size: 100 });
        assert_eq!(diff.platforms[2].layers.download, Tally::default());

        // The same manifest is unchanged, whatever else; other manifests with nothing to show
        // are "other differences".
        let same = compare(&old, &old);
        assert!(same.equal && same.platforms.iter().all(|p| p.changes.is_empty() && !p.layers.changed()));
        let mut renamed = old.clone();
        renamed.platforms[0].manifest = digest('9');
        let other = compare(&old, &renamed);
        assert!(!other.equal && other.platforms[0].other_differences);
    }
}
