//! What `builder inspect` derives from a builder image's labels (docs/pack-compatibility.md, *builder inspect*).

use std::collections::{BTreeMap, BTreeSet, HashSet};

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
    /// Expanding the detection order would go deeper than `builder create` lets composite
    /// buildpacks nest.
    #[error(
        "composite buildpacks in label {} nest more than {} levels deep (at '{}'); builder create refuses such builders",
        labels::BUILDPACK_LAYERS,
        MAX_ORDER_DEPTH,
        cnbx_fs::excerpt(module)
    )]
    OrderTooDeep {
        /// The composite that would be expanded one level too deep (`id@version`).
        module: String,
    },
    /// The detection order has more entries than `builder inspect` shows.
    #[error(
        "the detection order of labels {} and {} has more than {} entries (composite buildpacks named in many groups); show fewer levels with --depth",
        labels::BUILDPACK_ORDER,
        labels::BUILDPACK_LAYERS,
        MAX_DETECTION_ENTRIES
    )]
    OrderTooLarge,
}

/// How deep the detection order expands composite buildpacks at most: as deep as
/// `builder create` lets them nest.
pub use crate::modules::MAX_ORDER_DEPTH;

/// The most entries (group nodes and buildpacks) a detection-order tree may have. Real
/// builders have hundreds to a few thousand; a builder whose composites are each named in
/// several groups of the one above would otherwise double the tree at every level.
pub const MAX_DETECTION_ENTRIES: usize = 100_000;

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
        let metadata: BuilderMetadata = labels::builder_metadata(labels, true).map_err(InspectError::Metadata)?;
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
    /// group or on the path from the top (pack copies the set for every order entry). A
    /// reference whose layer info (version-less references resolve when the id has one
    /// version) has an order, is not cyclic and lies within `depth` becomes one node per entry
    /// of that order, each carrying the reference and that entry's group; anything else is a
    /// leaf.
    ///
    /// The tree is made without recursion, so that no label can exhaust the stack, and is
    /// bounded: a composite that would expand deeper than [`MAX_ORDER_DEPTH`] levels is
    /// [`InspectError::OrderTooDeep`], a tree of more than [`MAX_DETECTION_ENTRIES`] entries
    /// [`InspectError::OrderTooLarge`].
    pub fn detection_order(&self, depth: Depth) -> Result<Vec<DetectionEntry>, InspectError> {
        detection_tree(&self.order, &self.buildpack_layers, depth)
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

/// A step of [`detection_tree`]'s walk: an order whose entries are being expanded, or the
/// group of one entry.
enum Frame<'a> {
    /// pack's `detectionOrderFromOrder`: one node per entry, each carrying `parent` (none for
    /// the builder's own order).
    Order {
        entries: &'a [OrderEntry],
        next: usize,
        parent: Option<&'a ModuleRef>,
        /// Composite levels above these entries' groups.
        level: u32,
        nodes: Vec<DetectionEntry>,
    },
    /// pack's `detectionOrderFromGroup`: the group of the order entry below it on the stack.
    Group {
        refs: &'a [ModuleRef],
        next: usize,
        level: u32,
        /// The names this group added to the visited set, taken out of it again when the
        /// group is done. The set pack copies for this group is what this group added with
        /// what every group below it on the stack had added when the expansion above it
        /// started (which does not change until that expansion ends): the names the groups
        /// on the stack added, each added by one of them only.
        added: Vec<String>,
        nodes: Vec<DetectionEntry>,
    },
}

/// What to do next in [`detection_tree`].
enum Step<'a> {
    /// Start the group of the next entry of the order on top.
    Group(&'a [ModuleRef], u32),
    /// The order on top is done.
    OrderDone,
    /// Look at the next reference of the group on top.
    Module(&'a ModuleRef),
    /// The group on top is done.
    GroupDone,
}

/// The detection-order tree of `order` (see [`BuilderInfo::detection_order`]), made with an
/// explicit stack (two frames per composite level) instead of recursion.
fn detection_tree<'a>(
    order: &'a [OrderEntry],
    layers: &'a ModuleLayers,
    depth: Depth,
) -> Result<Vec<DetectionEntry>, InspectError> {
    let mut count = 0usize;
    let mut visited: HashSet<String> = HashSet::new();
    let mut stack = vec![Frame::Order { entries: order, next: 0, parent: None, level: 0, nodes: Vec::new() }];
    loop {
        let step = match stack.last_mut() {
            Some(Frame::Order { entries, next, level, .. }) => match entries.get(*next) {
                Some(entry) => {
                    *next += 1;
                    Step::Group(entry.refs(), *level)
                }
                None => Step::OrderDone,
            },
            Some(Frame::Group { refs, next, .. }) => match refs.get(*next) {
                Some(module) => {
                    *next += 1;
                    Step::Module(module)
                }
                None => Step::GroupDone,
            },
            None => unreachable!("the order at the bottom of the stack returns the tree"),
        };
        match step {
            Step::Group(refs, level) => {
                stack.push(Frame::Group { refs, next: 0, level, added: Vec::new(), nodes: Vec::new() });
            }
            Step::OrderDone => {
                let Some(Frame::Order { nodes, .. }) = stack.pop() else { unreachable!("an order is on top") };
                match stack.last_mut() {
                    Some(Frame::Group { nodes: group, .. }) => group.extend(nodes),
                    _ => return Ok(nodes),
                }
            }
            Step::Module(module) => {
                let name = module.full_name();
                let seen = visited.contains(&name);
                let Some(Frame::Group { added, level, nodes, .. }) = stack.last_mut() else {
                    unreachable!("a group is on top")
                };
                let level = *level;
                match layers.get(&module.info.id, &module.info.version) {
                    Some(layer) if !layer.order.is_empty() && depth.allows(level) && !seen => {
                        if level as usize >= MAX_ORDER_DEPTH {
                            return Err(InspectError::OrderTooDeep { module: name });
                        }
                        visited.insert(name.clone());
                        added.push(name);
                        stack.push(Frame::Order {
                            entries: &layer.order,
                            next: 0,
                            parent: Some(module),
                            level: level + 1,
                            nodes: Vec::new(),
                        });
                    }
                    _ => {
                        count += 1;
                        if count > MAX_DETECTION_ENTRIES {
                            return Err(InspectError::OrderTooLarge);
                        }
                        if !seen {
                            visited.insert(name.clone());
                            added.push(name);
                        }
                        nodes.push(DetectionEntry { module: module.clone(), cyclic: seen, children: Vec::new() });
                    }
                }
            }
            Step::GroupDone => {
                let Some(Frame::Group { nodes, added, .. }) = stack.pop() else { unreachable!("a group is on top") };
                for name in &added {
                    visited.remove(name);
                }
                let Some(Frame::Order { parent, nodes: entries, .. }) = stack.last_mut() else {
                    unreachable!("a group's order is below it")
                };
                count += 1;
                if count > MAX_DETECTION_ENTRIES {
                    return Err(InspectError::OrderTooLarge);
                }
                let module = parent.cloned().unwrap_or_default();
                entries.push(DetectionEntry { module, cyclic: false, children: nodes });
            }
        }
    }
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
        assert_eq!(info.detection_order(Depth::Unlimited).unwrap(), full);

        let one = vec![DetectionEntry {
            module: ModuleRef::default(),
            cyclic: false,
            children: vec![a_node(vec![leaf(&x), leaf(&b)]), a_node(vec![leaf(&x)]), leaf(&x.clone().optional())],
        }];
        assert_eq!(info.detection_order(Depth::Limited(1)).unwrap(), one);

        let zero = vec![DetectionEntry {
            module: ModuleRef::default(),
            cyclic: false,
            children: vec![leaf(&a), leaf(&x.clone().optional())],
        }];
        assert_eq!(info.detection_order(Depth::Limited(0)).unwrap(), zero);
    }

    #[test]
    fn siblings_and_repeats_are_cyclic() {
        let x = ModuleRef::new("x", "1");
        let info =
            BuilderInfo { order: order(vec![vec![x.clone(), x.clone()], vec![x.clone()]]), ..BuilderInfo::default() };
        let tree = info.detection_order(Depth::Unlimited).unwrap();
        assert_eq!(tree[0].children[1], DetectionEntry { module: x.clone(), cyclic: true, children: vec![] });
        assert_eq!(tree[1].children[0], leaf(&x));
    }

    /// pack's `DetectionOrderCalculator` as it is written, recursively, with the visited set
    /// copied for every order entry: what [`detection_tree`] must agree with.
    fn pack_order(
        order: &[OrderEntry],
        parent: &ModuleRef,
        current: u32,
        visited: &BTreeSet<String>,
        layers: &ModuleLayers,
        depth: Depth,
    ) -> Vec<DetectionEntry> {
        let entry = |entry: &OrderEntry| {
            let mut visited = visited.clone();
            let mut children = Vec::new();
            for module in entry.refs() {
                let seen = !visited.insert(module.full_name());
                match layers.get(&module.info.id, &module.info.version) {
                    Some(layer) if !layer.order.is_empty() && depth.allows(current) && !seen => {
                        children.extend(pack_order(&layer.order, module, current + 1, &visited, layers, depth));
                    }
                    _ => children.push(DetectionEntry { module: module.clone(), cyclic: seen, children: Vec::new() }),
                }
            }
            DetectionEntry { module: parent.clone(), cyclic: false, children }
        };
        order.iter().map(entry).collect()
    }

    proptest::proptest! {
        /// Random builders (a few ids, some with several versions, references with and
        /// without versions, composites naming each other and themselves) give pack's tree
        /// at every depth.
        #[test]
        fn fuzz_detection_order_is_packs(
            modules in proptest::collection::vec(
                (0..5u8, 0..2u8, proptest::collection::vec(proptest::collection::vec((0..5u8, 0..3u8, proptest::bool::ANY), 0..4), 0..3)),
                0..8,
            ),
            top in proptest::collection::vec(proptest::collection::vec((0..5u8, 0..3u8, proptest::bool::ANY), 0..4), 0..3),
            depth in -1i64..4,
        ) {
            let reference = |(id, version, optional): (u8, u8, bool)| {
                let version = if version == 2 { String::new() } else { version.to_string() };
                let r = ModuleRef::new(format!("bp/{id}"), version);
                if optional { r.optional() } else { r }
            };
            let groups = |groups: Vec<Vec<(u8, u8, bool)>>| {
                order(groups.into_iter().map(|g| g.into_iter().map(reference).collect()).collect())
            };
            let mut layers = ModuleLayers::default();
            for (id, version, module_order) in modules {
                let info = ModuleLayerInfo { order: groups(module_order), ..ModuleLayerInfo::default() };
                layers.insert(format!("bp/{id}"), version.to_string(), info);
            }
            let info = BuilderInfo { order: groups(top), buildpack_layers: layers, ..BuilderInfo::default() };
            let depth = Depth::from_flag(depth);
            let pack = pack_order(&info.order, &ModuleRef::default(), 0, &BTreeSet::new(), &info.buildpack_layers, depth);
            proptest::prop_assert_eq!(info.detection_order(depth).unwrap(), pack);
        }
    }

    /// `n` composites, `bp/0` … `bp/<n-1>`, each with `groups` groups naming the next one
    /// (the last names a plain buildpack), as labels: the builder order names `bp/0`.
    fn nested_labels(n: usize, groups: usize) -> BTreeMap<String, String> {
        let mut layers = String::from("{");
        for i in 0..n {
            let next = if i + 1 == n { "leaf".to_owned() } else { format!("bp/{}", i + 1) };
            let group = format!(r#"{{"group":[{{"id":"{next}","version":"1"}}]}}"#);
            let order = vec![group; groups].join(",");
            layers
                .push_str(&format!(r#""bp/{i}":{{"1":{{"api":"0.10","order":[{order}],"layerDiffID":"sha256:0"}}}},"#));
        }
        layers.push_str(r#""leaf":{"1":{"api":"0.10","layerDiffID":"sha256:1"}}}"#);
        BTreeMap::from([
            (labels::BUILDER_METADATA.to_owned(), "{}".to_owned()),
            (labels::BUILDPACK_ORDER.to_owned(), r#"[{"group":[{"id":"bp/0","version":"1"}]}]"#.to_owned()),
            (labels::BUILDPACK_LAYERS.to_owned(), layers),
        ])
    }

    fn count(entries: &[DetectionEntry]) -> usize {
        entries.iter().map(|e| 1 + count(&e.children)).sum()
    }

    /// 30 nested composites with two groups each: 2^30 paths from the top, which pack
    /// expands one by one. The tree stops at its budget, and `--depth` still shows the top.
    #[test]
    fn a_tree_that_doubles_at_every_level_is_refused_at_its_budget() {
        let info = BuilderInfo::from_labels(&nested_labels(30, 2)).unwrap();
        let err = info.detection_order(Depth::Unlimited).unwrap_err();
        assert!(matches!(err, InspectError::OrderTooLarge), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!(
                "the detection order of labels io.buildpacks.buildpack.order and io.buildpacks.buildpack.layers has \
                 more than {MAX_DETECTION_ENTRIES} entries (composite buildpacks named in many groups); show fewer \
                 levels with --depth"
            )
        );
        let section = super::super::Section::from_labels(&nested_labels(30, 2), Vec::new(), Depth::Unlimited);
        assert!(matches!(&section, super::super::Section::Error(e) if e.contains("show fewer levels with --depth")));
        // Ten levels: 2^10 groups at the bottom, well within the budget.
        let shown = info.detection_order(Depth::Limited(10)).unwrap();
        assert_eq!(count(&shown), 1 + (2..=11).map(|l| 1usize << (l - 1)).sum::<usize>() + (1 << 10));
        // One entry under the budget passes, one over does not: a single group of plain
        // buildpacks (each a node) under the top group node.
        let wide = |n: usize| BuilderInfo {
            order: order(vec![(0..n).map(|i| ModuleRef::new(format!("p/{i}"), "1")).collect()]),
            ..BuilderInfo::default()
        };
        assert_eq!(
            count(&wide(MAX_DETECTION_ENTRIES - 1).detection_order(Depth::Unlimited).unwrap()),
            MAX_DETECTION_ENTRIES
        );
        assert!(matches!(
            wide(MAX_DETECTION_ENTRIES).detection_order(Depth::Unlimited),
            Err(InspectError::OrderTooLarge)
        ));
    }

    /// A chain of 20,000 composites (labels of about 2 MB): refused at the nesting `builder
    /// create` allows, without recursing 20,000 levels. 32 levels, what create allows, show.
    #[test]
    fn a_chain_deeper_than_create_allows_is_refused_naming_the_label() {
        let labels = nested_labels(20_000, 1);
        assert!(labels[labels::BUILDPACK_LAYERS].len() > 1_000_000);
        let info = BuilderInfo::from_labels(&labels).unwrap();
        let err = info.detection_order(Depth::Unlimited).unwrap_err();
        assert_eq!(
            err.to_string(),
            "composite buildpacks in label io.buildpacks.buildpack.layers nest more than 32 levels deep (at \
             'bp/32@1'); builder create refuses such builders"
        );
        // Only what is expanded counts: a shallower --depth shows the top of the chain (the
        // top group, five composites' groups, the sixth composite).
        assert_eq!(count(&info.detection_order(Depth::Limited(5)).unwrap()), 7);

        let tree = BuilderInfo::from_labels(&nested_labels(MAX_ORDER_DEPTH, 1)).unwrap();
        let mut node = &tree.detection_order(Depth::Unlimited).unwrap()[0];
        let mut levels = 0;
        while let [child] = node.children.as_slice() {
            node = child;
            levels += 1;
        }
        assert_eq!(levels, MAX_ORDER_DEPTH + 1, "every composite's group, down to the plain buildpack");
        assert_eq!(node.module, ModuleRef::new("leaf", "1"));
        let deeper = BuilderInfo::from_labels(&nested_labels(MAX_ORDER_DEPTH + 1, 1)).unwrap();
        assert!(matches!(deeper.detection_order(Depth::Unlimited), Err(InspectError::OrderTooDeep { .. })));
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
