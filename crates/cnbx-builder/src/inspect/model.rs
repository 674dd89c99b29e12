//! What `builder inspect` derives from a builder image's labels (docs/pack-compatibility.md, *builder inspect*).

use std::collections::{BTreeMap, BTreeSet};

use cnbx_model::{LifecycleDescriptor, ModuleInfo, ModuleRef, OrderEntry, RunImage, System};

use crate::labels::{self, BuilderMetadata, CreatorMetadata, LabelError, ModuleLayers};

/// Why a builder image's labels cannot be inspected. The messages are pack's.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// `io.buildpacks.builder.metadata` is missing or malformed.
    #[error("reading image metadata")]
    Metadata(#[source] LabelError),
    /// `io.buildpacks.stack.mixins` is malformed.
    #[error("reading image mixins")]
    Mixins(#[source] LabelError),
    /// `io.buildpacks.buildpack.order-extensions` is malformed.
    #[error("reading image order extensions")]
    OrderExtensions(#[source] LabelError),
    /// `io.buildpacks.buildpack.order` is malformed.
    #[error("reading image order")]
    Order(#[source] LabelError),
    /// `io.buildpacks.buildpack.layers` is malformed.
    #[error("reading image buildpack layers")]
    BuildpackLayers(#[source] LabelError),
    /// `io.buildpacks.buildpack.system` is malformed (pack does not read it; cnbx shows it).
    #[error("reading image system buildpacks")]
    System(#[source] LabelError),
}

/// How deep the detection-order tree expands composite buildpacks (`--depth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Depth {
    /// Expand every composite buildpack (pack's `-1`, the default).
    #[default]
    Unlimited,
    /// Expand composite buildpacks found at group depth `< n`; `0` shows only the top-level
    /// groups, `1` expands one level.
    Limited(u32),
}

impl Depth {
    /// The value of the `--depth` flag. **Any negative value is unlimited**, as pack's help
    /// text promises; pack itself treats values below `-1` like `0` (a pack quirk).
    pub fn from_flag(depth: i64) -> Self {
        if depth < 0 { Self::Unlimited } else { Self::Limited(u32::try_from(depth).unwrap_or(u32::MAX)) }
    }

    fn allows(self, current: u32) -> bool {
        match self {
            Self::Unlimited => true,
            Self::Limited(max) => current < max,
        }
    }
}

/// One node of a detection-order tree (pack's `DetectionOrderEntry`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DetectionEntry {
    /// The reference as written in the order (empty for a top-level group node).
    pub module: ModuleRef,
    /// Whether the reference was already visited on this path (it is not expanded).
    pub cyclic: bool,
    /// The group this node expands to (empty for a leaf).
    pub children: Vec<DetectionEntry>,
}

/// A builder as `builder inspect` shows it (pack's `client.BuilderInfo`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuilderInfo {
    /// `metadata.description`.
    pub description: String,
    /// `io.buildpacks.stack.id` (empty when absent).
    pub stack_id: String,
    /// `io.buildpacks.stack.mixins`, the non-`build:` ones first, each part in label order.
    pub mixins: Vec<String>,
    /// `metadata.images`, then `metadata.stack.runImage` when it is set and not listed.
    pub run_images: Vec<RunImage>,
    /// `metadata.buildpacks`, de-duplicated by `id@version` (first kept) and sorted by id,
    /// then version (byte order).
    pub buildpacks: Vec<ModuleInfo>,
    /// The order label (unresolved references).
    pub order: Vec<OrderEntry>,
    /// The buildpack layers label.
    pub buildpack_layers: ModuleLayers,
    /// `metadata.lifecycle` after pack's compatibility mapping ([`LifecycleDescriptor::compat`]).
    pub lifecycle: LifecycleDescriptor,
    /// `metadata.createdBy`.
    pub created_by: CreatorMetadata,
    /// `metadata.extensions` as stored; `None` when the label has `null` (or no key), which
    /// hides the extension sections of the human-readable output.
    pub extensions: Option<Vec<ModuleInfo>>,
    /// The order-extensions label.
    pub order_extensions: Vec<OrderEntry>,
    /// The system buildpacks label (builder.toml's `[system]`, as written); empty when absent.
    pub system: System,
    /// When the image is an index: its platforms, in index order (set by whoever read the
    /// image, not from the labels; empty for a single manifest).
    pub platforms: Vec<IndexEntry>,
}

/// One platform of a builder that is an image index.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexEntry {
    /// `os/arch[/variant]`.
    pub platform: String,
    /// The digest of its manifest.
    pub manifest: String,
    /// Whether the rest of the section describes this platform's image.
    pub shown: bool,
}

/// [`BuilderInfo::from_labels`].
pub fn from_labels(labels: &BTreeMap<String, String>) -> Result<BuilderInfo, InspectError> {
    BuilderInfo::from_labels(labels)
}

impl BuilderInfo {
    /// Reads a builder from its image labels, in pack's order (metadata, mixins, extension
    /// order, order, buildpack layers) so the first error reported is pack's; then the
    /// system buildpacks, which pack does not read.
    pub fn from_labels(labels: &BTreeMap<String, String>) -> Result<Self, InspectError> {
        let metadata: BuilderMetadata =
            labels::decode_required(labels, labels::BUILDER_METADATA).map_err(InspectError::Metadata)?;
        let stack_id = labels.get(labels::STACK_ID).cloned().unwrap_or_default();
        let mixins: Option<Vec<String>> =
            labels::decode_or_default(labels, labels::STACK_MIXINS).map_err(InspectError::Mixins)?;
        let order_extensions: Option<Vec<OrderEntry>> =
            labels::decode_or_default(labels, labels::ORDER_EXTENSIONS).map_err(InspectError::OrderExtensions)?;
        let order: Option<Vec<OrderEntry>> =
            labels::decode_or_default(labels, labels::BUILDPACK_ORDER).map_err(InspectError::Order)?;
        let buildpack_layers: ModuleLayers =
            labels::decode_or_default(labels, labels::BUILDPACK_LAYERS).map_err(InspectError::BuildpackLayers)?;
        let system: System = labels::decode_or_default(labels, labels::SYSTEM).map_err(InspectError::System)?;

        let (mut common, build): (Vec<String>, Vec<String>) =
            mixins.unwrap_or_default().into_iter().partition(|m| !m.starts_with("build:"));
        common.extend(build);

        let mut run_images: Vec<RunImage> = metadata.run_images.iter().flatten().cloned().collect();
        let stack_run = &metadata.stack.run_image;
        if !stack_run.image.is_empty() && !run_images.iter().any(|ri| ri.image == stack_run.image) {
            run_images.push(stack_run.clone());
        }

        let mut seen = BTreeSet::new();
        let mut buildpacks: Vec<ModuleInfo> =
            metadata.buildpacks.unwrap_or_default().into_iter().filter(|bp| seen.insert(bp.full_name())).collect();
        buildpacks.sort_by(|a, b| a.id.cmp(&b.id).then_with(|| a.version.cmp(&b.version)));

        Ok(Self {
            description: metadata.description,
            stack_id,
            mixins: common,
            run_images,
            buildpacks,
            order: order.unwrap_or_default(),
            buildpack_layers,
            lifecycle: metadata.lifecycle.compat(),
            created_by: metadata.created_by,
            extensions: metadata.extensions,
            order_extensions: order_extensions.unwrap_or_default(),
            system,
            platforms: Vec::new(),
        })
    }

    /// The buildpack detection-order tree (pack's `DetectionOrderCalculator`).
    ///
    /// Each top-level order entry is a node without a module whose children are its group.
    /// A reference is `cyclic` when its `id[@version]` was already seen earlier in the same
    /// group or on the path from the top (the set is copied for every order entry). A
    /// reference whose layer info (version-less references resolve when the id has one
    /// version) has an order, is not cyclic and lies within `depth` becomes one node per entry
    /// of that order, each carrying the reference and that entry's group; anything else is a
    /// leaf.
    pub fn detection_order(&self, depth: Depth) -> Vec<DetectionEntry> {
        order_nodes(&self.order, &ModuleRef::default(), 0, &BTreeSet::new(), &self.buildpack_layers, depth)
    }

    /// The extension detection order.
    ///
    /// Pack keeps only the *last* reference of each `[[order-extensions]]` group and shows one
    /// leaf per group (a pack quirk). cnbx does the same whenever no group has more than one
    /// extension (the common case), so its output is pack's; when some group has several
    /// extensions, pack's output would silently drop them, and cnbx instead shows every
    /// group as a group node with all of its extensions, like the buildpack detection order.
    pub fn extension_detection_order(&self) -> Vec<DetectionEntry> {
        if self.order_extensions.iter().all(|entry| entry.refs().len() <= 1) {
            return self
                .order_extensions
                .iter()
                .map(|entry| DetectionEntry {
                    module: entry.refs().last().cloned().unwrap_or_default(),
                    ..DetectionEntry::default()
                })
                .collect();
        }
        self.order_extensions
            .iter()
            .map(|entry| DetectionEntry {
                children: entry
                    .refs()
                    .iter()
                    .map(|r| DetectionEntry { module: r.clone(), ..DetectionEntry::default() })
                    .collect(),
                ..DetectionEntry::default()
            })
            .collect()
    }
}

fn order_nodes(
    order: &[OrderEntry],
    parent: &ModuleRef,
    current: u32,
    visited: &BTreeSet<String>,
    layers: &ModuleLayers,
    depth: Depth,
) -> Vec<DetectionEntry> {
    order
        .iter()
        .map(|entry| {
            let mut visited = visited.clone();
            DetectionEntry {
                module: parent.clone(),
                cyclic: false,
                children: group_nodes(entry.refs(), current, &mut visited, layers, depth),
            }
        })
        .collect()
}

fn group_nodes(
    group: &[ModuleRef],
    current: u32,
    visited: &mut BTreeSet<String>,
    layers: &ModuleLayers,
    depth: Depth,
) -> Vec<DetectionEntry> {
    let mut nodes = Vec::new();
    for module in group {
        let seen = !visited.insert(module.full_name());
        match layers.get(&module.info.id, &module.info.version) {
            Some(layer) if !layer.order.is_empty() && depth.allows(current) && !seen => {
                nodes.extend(order_nodes(&layer.order, module, current.saturating_add(1), visited, layers, depth));
            }
            _ => nodes.push(DetectionEntry { module: module.clone(), cyclic: seen, children: Vec::new() }),
        }
    }
    nodes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::ModuleLayerInfo;

    fn order(groups: Vec<Vec<ModuleRef>>) -> Vec<OrderEntry> {
        groups.into_iter().map(OrderEntry::new).collect()
    }

    fn composite(layers: &mut ModuleLayers, id: &str, version: &str, groups: Vec<Vec<ModuleRef>>) {
        layers.insert(id, version, ModuleLayerInfo { order: order(groups), ..ModuleLayerInfo::default() });
    }

    fn leaf(r: &ModuleRef) -> DetectionEntry {
        DetectionEntry { module: r.clone(), ..DetectionEntry::default() }
    }

    #[test]
    fn depth_flag() {
        assert_eq!(Depth::from_flag(-1), Depth::Unlimited);
        assert_eq!(Depth::from_flag(-7), Depth::Unlimited);
        assert_eq!(Depth::from_flag(0), Depth::Limited(0));
        assert_eq!(Depth::from_flag(3), Depth::Limited(3));
        assert_eq!(Depth::from_flag(i64::MAX), Depth::Limited(u32::MAX));
    }

    #[test]
    fn detection_order_expands_cycles_and_depth() {
        let a = ModuleRef::new("meta/a", "1");
        let b = ModuleRef::new("meta/b", "");
        let x = ModuleRef::new("x", "1");
        let mut layers = ModuleLayers::default();
        composite(&mut layers, "meta/a", "1", vec![vec![x.clone(), b.clone()], vec![x.clone()]]);
        composite(&mut layers, "meta/b", "2", vec![vec![a.clone()]]);
        let info = BuilderInfo {
            order: order(vec![vec![a.clone(), x.clone().optional()]]),
            buildpack_layers: layers,
            ..BuilderInfo::default()
        };

        let b_node = |children| DetectionEntry { module: b.clone(), cyclic: false, children };
        let a_node = |children| DetectionEntry { module: a.clone(), cyclic: false, children };
        let cyclic_a = DetectionEntry { module: a.clone(), cyclic: true, children: vec![] };
        let full = vec![DetectionEntry {
            module: ModuleRef::default(),
            cyclic: false,
            children: vec![
                a_node(vec![leaf(&x), b_node(vec![cyclic_a])]),
                a_node(vec![leaf(&x)]),
                // x was seen inside a's groups, but those sets were copies: not cyclic here.
                leaf(&x.clone().optional()),
            ],
        }];
        assert_eq!(info.detection_order(Depth::Unlimited), full);

        let one = vec![DetectionEntry {
            module: ModuleRef::default(),
            cyclic: false,
            children: vec![a_node(vec![leaf(&x), leaf(&b)]), a_node(vec![leaf(&x)]), leaf(&x.clone().optional())],
        }];
        assert_eq!(info.detection_order(Depth::Limited(1)), one);

        let zero = vec![DetectionEntry {
            module: ModuleRef::default(),
            cyclic: false,
            children: vec![leaf(&a), leaf(&x.clone().optional())],
        }];
        assert_eq!(info.detection_order(Depth::Limited(0)), zero);
    }

    #[test]
    fn siblings_and_repeats_are_cyclic() {
        let x = ModuleRef::new("x", "1");
        let info =
            BuilderInfo { order: order(vec![vec![x.clone(), x.clone()], vec![x.clone()]]), ..BuilderInfo::default() };
        let tree = info.detection_order(Depth::Unlimited);
        assert_eq!(tree[0].children[1], DetectionEntry { module: x.clone(), cyclic: true, children: vec![] });
        assert_eq!(tree[1].children[0], leaf(&x));
    }

    #[test]
    fn extension_order_keeps_pack_output_for_single_extension_groups() {
        let e1 = ModuleRef::new("ext/one", "1");
        let e2 = ModuleRef::new("ext/two", "2");
        let mut info =
            BuilderInfo { order_extensions: order(vec![vec![e1.clone()], vec![e2.clone()]]), ..Default::default() };
        assert_eq!(info.extension_detection_order(), vec![leaf(&e1), leaf(&e2)]);

        info.order_extensions = order(vec![vec![e1.clone(), e2.clone()], vec![e2.clone()]]);
        let group = |children| DetectionEntry { children, ..DetectionEntry::default() };
        assert_eq!(info.extension_detection_order(), vec![group(vec![leaf(&e1), leaf(&e2)]), group(vec![leaf(&e2)])]);

        info.order_extensions = vec![OrderEntry::default()];
        assert_eq!(info.extension_detection_order(), vec![DetectionEntry::default()]);
    }
}
