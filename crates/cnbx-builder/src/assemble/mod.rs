//! The builder's layer assembler: the layers `builder create` adds to the build image, built
//! the way pack builds them so that every diffID is pack's, and the image they make with
//! pack's labels and config changes (docs/pack-compatibility.md, *Layers, in order*, *Module
//! layers*, *Labels*, *Image config*).
//!
//! * [`LayerService`]: the one way a [`LayerRecipe`] becomes a layer blob — through the layer
//!   cache into the blob store, reporting progress; alone, in parallel, or on a blocking
//!   thread while other work goes on. In a dry run ([`LayerService::planning`]) nothing is
//!   built: the cache is asked whether it has each recipe's layer, and a layer it does not
//!   have is a stand-in whose diffID is unknown ([`LayerService::planned`]).
//! * [`stream`]: the recipes of module layers (a directory, a tar, a split of a package
//!   layer, a flatten group), confined to the module's directories.
//! * [`files`]: the small layers around the modules (default directories, `/cnb/*.toml`,
//!   build-config env, `/platform/env`, whiteouts).
//! * [`modules`]: which module layers a builder gets, in which order, and the merged layers
//!   label.
//! * [`builder_image`]: the whole image of one target from its parts, in pack's order:
//!
//! ```text
//! build image layers
//!   + default directories            files::default_dirs
//!   + /cnb/lifecycle                 (built while the target was planned)
//!   + buildpack layers               modules::plan  (flatten groups, then id@version order,
//!   + extension layers               modules::plan   whiteouts before replaced modules)
//!   + /cnb/order.toml                files::order_toml
//!   + /cnb/system.toml (if any)      files::system_toml
//!   + /cnb/stack.toml, /cnb/run.toml files::stack_toml, files::run_toml
//!   + /cnb/build-config/env (if any) files::build_config_env
//!   + /platform/env                  files::platform_env
//! labels: --label, then pack's; WorkingDir, created, history, diff_ids
//! ```
//!
//! The tar encoder and the layer cache these build on are `cnbx_oci::tarball`,
//! `cnbx_oci::layer` and `cnbx_oci::cache`.

pub mod files;
pub mod modules;
pub mod stream;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use cnbx_config::LoadedConfig;
use cnbx_model::{LifecycleDescriptor, ModuleDirs, ModuleInfo, ModuleKind, OrderEntry, RunImage, System};
use cnbx_oci::image::{ImageError, ImageToWrite, LayerBlob, SourceImage};
use cnbx_oci::layer::{LayerError, LayerRecipe};
use cnbx_oci::progress::{Reporter, ReporterExt};
use cnbx_oci::spec::{Descriptor, Platform, media_type};
use cnbx_oci::{BlobSource, BlobStore, Digest, LayerCache};
use rayon::prelude::*;

use crate::labels::{self, BuilderMetadata, CreatorMetadata, LabelError, ModuleLayerInfo, ModuleLayers, StackMetadata};

/// The `created` time pack writes on builders (and every history entry).
pub const NORMALIZED_CREATED: &str = "1980-01-01T00:00:01Z";

/// Builds layers: through the layer cache into the blob store, with progress; or, in a dry
/// run, only says what it would do.
#[derive(Clone)]
pub struct LayerService {
    cache: LayerCache,
    blobs: BlobStore,
    reporter: Arc<dyn Reporter>,
    /// In a dry run: what each layer asked for would be, by the digest it was given.
    planned: Option<Arc<Mutex<HashMap<Digest, PlannedLayer>>>>,
}

/// What a dry run found out about a layer it was asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedLayer {
    /// What it holds: the recipe's name (`buildpack <id>@<version>`, `lifecycle`,
    /// `/cnb/order.toml`, `flattened buildpacks …`).
    pub name: String,
    /// Whether the layer cache has it, so that its diffID and blob are known; else it would
    /// be built, and the [`LayerBlob`] given for it is a stand-in: its digest and diffID are
    /// the recipe's cache key, which names no blob, and its size is 0.
    pub cached: bool,
}

impl std::fmt::Debug for LayerService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LayerService").field("cache", &self.cache).finish_non_exhaustive()
    }
}

impl LayerService {
    /// Layers cached in `cache`, their blobs in `blobs`, progress to `reporter`.
    pub fn new(cache: LayerCache, blobs: BlobStore, reporter: Arc<dyn Reporter>) -> Self {
        Self { cache, blobs, reporter, planned: None }
    }

    /// A dry run's service: it builds nothing and writes nothing (the cache is only
    /// [peeked](LayerCache::peek) at), and records what each layer would be
    /// ([`LayerService::planned`]).
    pub fn planning(cache: LayerCache, blobs: BlobStore, reporter: Arc<dyn Reporter>) -> Self {
        Self { cache, blobs, reporter, planned: Some(Arc::default()) }
    }

    /// The layer of `recipe`: from the cache, or built into the blob store. In a dry run, the
    /// cached layer or a stand-in (see [`PlannedLayer::cached`]).
    pub fn build(&self, recipe: &LayerRecipe) -> Result<LayerBlob, LayerError> {
        self.build_keyed(recipe, &LayerCache::key(recipe))
    }

    /// [`LayerService::build`] for a caller that has the recipe's [`LayerCache::key`] already.
    pub fn build_keyed(&self, recipe: &LayerRecipe, key: &Digest) -> Result<LayerBlob, LayerError> {
        if let Some(planned) = &self.planned {
            let (blob, cached) = match self.cache.peek(key, &self.blobs) {
                Some(info) => (info.to_layer_blob(&self.blobs), true),
                None => (self.stand_in(&recipe.media_type, key.clone()), false),
            };
            let mut planned = planned.lock().unwrap_or_else(PoisonError::into_inner);
            planned.entry(blob.descriptor.digest.clone()).or_insert(PlannedLayer { name: recipe.name.clone(), cached });
            return Ok(blob);
        }
        let (info, _hit) = self.cache.get_or_build_keyed(recipe, key, &self.blobs, self.reporter.as_ref())?;
        Ok(info.to_layer_blob(&self.blobs))
    }

    fn stand_in(&self, media_type: &str, key: Digest) -> LayerBlob {
        LayerBlob {
            descriptor: Descriptor::new(media_type, key.clone(), 0),
            diff_id: key,
            source: BlobSource::Store(self.blobs.clone()),
        }
    }

    /// In a dry run, when one of `parts` is still to be built: a stand-in for the layer named
    /// `name` made from them (its content cannot be known either). `None` otherwise.
    pub fn unknown_from(&self, name: &str, parts: &[&LayerBlob]) -> Option<LayerBlob> {
        let planned = self.planned.as_ref()?;
        if !parts.iter().any(|p| self.is_unknown(p)) {
            return None;
        }
        let mut key = format!("cnbx dry run: {name}");
        for p in parts {
            key.push('\n');
            key.push_str(p.descriptor.digest.as_str());
        }
        let blob = self.stand_in(media_type::OCI_LAYER_GZIP, Digest::of(key.as_bytes()));
        let mut planned = planned.lock().unwrap_or_else(PoisonError::into_inner);
        planned.insert(blob.descriptor.digest.clone(), PlannedLayer { name: name.to_owned(), cached: false });
        Some(blob)
    }

    /// What a dry run recorded about the layer with blob digest `digest` (a cached layer, or
    /// a stand-in); `None` for layers it was not asked for (base and buildpackage layers),
    /// and outside dry runs.
    pub fn planned(&self, digest: &Digest) -> Option<PlannedLayer> {
        let planned = self.planned.as_ref()?.lock().unwrap_or_else(PoisonError::into_inner);
        planned.get(digest).cloned()
    }

    /// Whether `blob` is a dry run's stand-in for a layer still to be built.
    pub fn is_unknown(&self, blob: &LayerBlob) -> bool {
        self.planned(&blob.descriptor.digest).is_some_and(|p| !p.cached)
    }

    /// The layers of `pending`, in its order: a ready one as it is, the others built in
    /// parallel (off the async executor when possible), each distinct recipe once (the same
    /// module may be listed twice; recipes are told apart by their [`LayerCache::key`], a hash
    /// of every entry, worked out in parallel too). On failure: the name of a layer that could
    /// not be built (the first listed of those that failed), and why.
    pub(crate) fn build_distinct(
        &self,
        pending: Vec<PendingLayer>,
    ) -> Result<Vec<LayerBlob>, (String, Box<LayerError>)> {
        /// A pending layer with its recipe's key worked out.
        enum Keyed {
            Ready(LayerBlob),
            Build(Digest, LayerRecipe),
        }
        /// Where an output layer comes from.
        enum Slot {
            Ready(Box<LayerBlob>),
            Built(usize),
        }
        let keyed: Vec<Keyed> = off_executor(|| {
            pending
                .into_par_iter()
                .map(|p| match p {
                    PendingLayer::Ready(blob) => Keyed::Ready(blob),
                    PendingLayer::Build(recipe) => Keyed::Build(LayerCache::key(&recipe), recipe),
                })
                .collect()
        });
        let mut distinct: Vec<(Digest, LayerRecipe)> = Vec::new();
        let mut spent: Vec<LayerRecipe> = Vec::new();
        let mut index: HashMap<Digest, usize> = HashMap::new();
        let mut slots = Vec::with_capacity(keyed.len());
        for k in keyed {
            slots.push(match k {
                Keyed::Ready(blob) => Slot::Ready(Box::new(blob)),
                Keyed::Build(key, recipe) => match index.get(&key) {
                    Some(&i) => {
                        spent.push(recipe);
                        Slot::Built(i)
                    }
                    None => {
                        index.insert(key.clone(), distinct.len());
                        distinct.push((key, recipe));
                        Slot::Built(distinct.len() - 1)
                    }
                },
            });
        }
        let built: Vec<Result<LayerBlob, LayerError>> =
            off_executor(|| distinct.par_iter().map(|(key, r)| self.build_keyed(r, key)).collect());
        let mut blobs = Vec::with_capacity(built.len());
        for ((_, r), b) in distinct.iter().zip(built) {
            blobs.push(b.map_err(|e| (r.name.clone(), Box::new(e)))?);
        }
        // A directory's recipe holds an entry (several allocations) per file: freeing tens of
        // thousands of them takes a core for milliseconds, which the pool does meanwhile.
        rayon::spawn(move || drop((distinct, spent)));
        Ok(slots
            .into_iter()
            .map(|s| match s {
                Slot::Ready(blob) => *blob,
                Slot::Built(i) => blobs[i].clone(),
            })
            .collect())
    }

    /// Builds the layer of `recipe` on a blocking thread, while the caller goes on: that
    /// thread also compresses it ([`cnbx_oci::gzip::compressing_on_this_thread`]), so that it
    /// moves on beside the layers built on rayon's pool meanwhile instead of waiting behind them.
    pub fn spawn(&self, recipe: LayerRecipe) -> tokio::task::JoinHandle<Result<LayerBlob, LayerError>> {
        let service = self.clone();
        tokio::task::spawn_blocking(move || cnbx_oci::gzip::compressing_on_this_thread(|| service.build(&recipe)))
    }
}

/// A module's layer before the module layers are built: one to use as it is, or the recipe of
/// one to build.
pub(crate) enum PendingLayer {
    /// A blob used as it is (a buildpackage layer reused byte for byte).
    Ready(LayerBlob),
    /// A layer still to be built (a directory, an archive, a split package layer).
    Build(LayerRecipe),
}

/// Runs CPU- or file-system-bound `work` (usually a rayon loop) without starving the async
/// executor: through `block_in_place` on a multi-thread runtime, directly otherwise.
pub(crate) fn off_executor<R>(work: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(work),
        _ => work(),
    }
}

/// A buildpack or extension ready to be added to a builder.
#[derive(Debug, Clone)]
pub struct Module {
    /// Buildpack or extension, with its checked id and version.
    pub dirs: ModuleDirs,
    /// What goes in `io.buildpacks.builder.metadata` `buildpacks`/`extensions`.
    pub info: ModuleInfo,
    /// What goes in the layers label (`layer_diff_id` set to [`Module::layer`]'s diffID).
    pub layer_info: ModuleLayerInfo,
    /// The module's layer.
    pub layer: LayerBlob,
    /// Whether it is a root blob (directory or archive) with `bin/build` (or `.bat`/`.exe`).
    pub has_build_bin: bool,
    /// Whether it came from a buildpackage (image or `.cnb`).
    pub from_package: bool,
    /// Where it came from (the `uri` of its `[[buildpacks]]`/`[[extensions]]` entry), for
    /// messages.
    pub source: String,
}

/// The lifecycle of a builder: its descriptor and its `/cnb/lifecycle` layer.
#[derive(Debug, Clone)]
pub struct Lifecycle {
    /// Version and APIs, with pack's compatibility mapping applied.
    pub metadata: LifecycleDescriptor,
    /// The `/cnb/lifecycle` layer.
    pub layer: LayerBlob,
}

/// Everything read from the build image that the builder depends on.
#[derive(Debug, Clone)]
pub struct BuildBase {
    /// The build image.
    pub image: SourceImage,
    /// Its labels, with the `--label`s applied.
    pub labels: BTreeMap<String, String>,
    /// `io.buildpacks.builder.metadata` of the build image (usually absent: the default).
    pub metadata: BuilderMetadata,
    /// `io.buildpacks.stack.mixins` of the build image.
    pub mixins: Option<Vec<String>>,
    /// The build user.
    pub uid: u32,
    /// The build user's group.
    pub gid: u32,
}

/// The orders of a builder: as builder.toml writes them (for the labels) and resolved
/// against the builder's modules (for `/cnb/order.toml` and `/cnb/system.toml`).
#[derive(Debug, Clone, Default)]
pub struct Orders {
    /// `[[order]]` as written (`null` when absent).
    pub order: Option<Vec<OrderEntry>>,
    /// `[[order-extensions]]` as written, without `optional`.
    pub order_extensions: Option<Vec<OrderEntry>>,
    /// `[system]` as written.
    pub system: System,
    /// The order with every version resolved.
    pub resolved: Vec<OrderEntry>,
    /// The extension order with every version resolved.
    pub resolved_extensions: Vec<OrderEntry>,
    /// The system buildpacks resolved, when there are any.
    pub resolved_system: Option<System>,
}

/// What a builder image is made of, for one target.
#[derive(Debug, Clone, Copy)]
pub struct BuilderParts<'a> {
    /// builder.toml.
    pub config: &'a LoadedConfig,
    /// The build image.
    pub base: &'a BuildBase,
    /// The lifecycle.
    pub lifecycle: &'a Lifecycle,
    /// The buildpacks, as fetched.
    pub buildpacks: &'a [Module],
    /// The extensions, as fetched.
    pub extensions: &'a [Module],
    /// The orders.
    pub orders: &'a Orders,
    /// `--label`s (pack's labels win on collision).
    pub labels: &'a BTreeMap<String, String>,
    /// `--flatten` groups of `id@version`.
    pub flatten: &'a [Vec<String>],
    /// What goes into `createdBy`.
    pub created_by: &'a CreatorMetadata,
    /// The platform asked for.
    pub platform: &'a Platform,
    /// Where the build-config directory goes (see [`files::default_dirs`]).
    pub build_config_dir: &'a str,
}

/// Why a builder image could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum AssembleError {
    /// The build image's labels cannot be read.
    #[error("reading the build image's labels")]
    BaseLabels(#[source] LabelError),
    /// The module layers of a kind cannot be added.
    #[error("adding {} layers", .kind.noun())]
    ModuleLayers {
        /// Buildpacks or extensions.
        kind: ModuleKind,
        /// Why.
        #[source]
        source: modules::ModuleLayersError,
    },
    /// A layer could not be built.
    #[error("building the {name} layer")]
    Layer {
        /// The layer's name.
        name: String,
        /// Why.
        #[source]
        source: Box<LayerError>,
    },
    /// A label could not be written.
    #[error("writing label {label}")]
    Label {
        /// The label.
        label: &'static str,
        /// Why.
        #[source]
        source: LabelError,
    },
    /// The build image's layers do not match its config.
    #[error("reading the build image")]
    BuildImage(#[source] ImageError),
}

/// The builder metadata label: the build image's, with this builder's description, modules,
/// stack run image, lifecycle, creator and run images.
fn builder_metadata(parts: &BuilderParts<'_>) -> BuilderMetadata {
    let file = &parts.config.config;
    let mut metadata = parts.base.metadata.clone();
    metadata.description = file.description.clone();
    if !parts.buildpacks.is_empty() {
        metadata.buildpacks.get_or_insert_with(Vec::new).extend(parts.buildpacks.iter().map(|m| m.info.clone()));
    }
    if !parts.extensions.is_empty() {
        metadata.extensions.get_or_insert_with(Vec::new).extend(parts.extensions.iter().map(|m| m.info.clone()));
    }
    // pack keeps the distinction between a list that is absent (`null`, no key in the TOML
    // files) and one that is empty (`[]`) everywhere: after the `[stack]` merge, the first run
    // image's mirrors are `[stack].run-image-mirrors` with that distinction intact.
    if !file.stack.id.is_empty() {
        let mirrors = file.run.images.first().and_then(|r| r.mirrors.clone());
        metadata.stack = StackMetadata { run_image: RunImage { image: file.stack.run_image.clone(), mirrors } };
    }
    metadata.lifecycle = parts.lifecycle.metadata.clone();
    metadata.created_by = parts.created_by.clone();
    metadata.run_images = (!file.run.images.is_empty()).then(|| file.run.images.clone());
    metadata
}

/// The image of one target: the build image's layers and config, pack's layers and labels.
pub fn builder_image(parts: &BuilderParts<'_>, layers: &LayerService) -> Result<ImageToWrite, AssembleError> {
    let (base, file, orders) = (parts.base, &parts.config.config, parts.orders);
    let metadata = builder_metadata(parts);
    let build = |recipe: LayerRecipe| -> Result<LayerBlob, AssembleError> {
        layers.build(&recipe).map_err(|e| AssembleError::Layer { name: recipe.name.clone(), source: Box::new(e) })
    };

    // Layers, in pack's order.
    let mut new_layers: Vec<LayerBlob> = Vec::new();
    new_layers.push(build(files::default_dirs(u64::from(base.uid), u64::from(base.gid), parts.build_config_dir))?);
    new_layers.push(parts.lifecycle.layer.clone());
    let on_base = |label| -> Result<ModuleLayers, AssembleError> {
        labels::decode_or_default(&base.labels, label).map_err(AssembleError::BaseLabels)
    };
    let (bp_on_base, ext_on_base) = (on_base(labels::BUILDPACK_LAYERS)?, on_base(labels::EXTENSION_LAYERS)?);
    let mut module_layers = |kind, modules, on_base| -> Result<ModuleLayers, AssembleError> {
        let (blobs, merged) = modules::plan(layers, kind, modules, on_base, parts.flatten)
            .map_err(|source| AssembleError::ModuleLayers { kind, source })?;
        new_layers.extend(blobs);
        Ok(merged)
    };
    let bp_layers = module_layers(ModuleKind::Buildpack, parts.buildpacks, &bp_on_base)?;
    let ext_layers = module_layers(ModuleKind::Extension, parts.extensions, &ext_on_base)?;
    let order_toml = files::order_toml(&orders.resolved, &orders.resolved_extensions);
    new_layers.push(build(files::single_file("/cnb/order.toml", order_toml.as_bytes()))?);
    if let Some(system) = &orders.resolved_system {
        new_layers.push(build(files::single_file("/cnb/system.toml", files::system_toml(system).as_bytes()))?);
    }
    // stack.toml: the metadata's stack run image (from `[stack]`, or inherited from the build
    // image's metadata) when it has one, else the first run image.
    let run_images = &file.run.images;
    let stack_run = &metadata.stack.run_image;
    let stack_entry = if stack_run.image.is_empty() { run_images.first() } else { Some(stack_run) };
    let stack_toml = stack_entry.map(files::stack_toml).unwrap_or_default();
    new_layers.push(build(files::single_file("/cnb/stack.toml", stack_toml.as_bytes()))?);
    new_layers.push(build(files::single_file("/cnb/run.toml", files::run_toml(run_images).as_bytes()))?);
    if !parts.config.build_env.is_empty() {
        let env: BTreeMap<String, Vec<u8>> =
            parts.config.build_env.iter().map(|(k, v)| (k.clone(), v.clone().into_bytes())).collect();
        new_layers.push(build(files::build_config_env(&env, parts.build_config_dir))?);
    }
    new_layers.push(build(files::platform_env())?);

    // Labels: the user's first, then pack's.
    let mut config = base.image.config.clone();
    for (k, v) in parts.labels {
        config.set_label(k, v);
    }
    fn encode<T: serde::Serialize + ?Sized>(label: &'static str, value: &T) -> Result<String, AssembleError> {
        labels::encode(label, value).map_err(|source| AssembleError::Label { label, source })
    }
    let mut pack_labels = vec![
        (labels::BUILDER_METADATA, encode(labels::BUILDER_METADATA, &metadata)?),
        (labels::BUILDPACK_LAYERS, encode(labels::BUILDPACK_LAYERS, &bp_layers)?),
        (labels::EXTENSION_LAYERS, encode(labels::EXTENSION_LAYERS, &ext_layers)?),
        (labels::BUILDPACK_ORDER, encode(labels::BUILDPACK_ORDER, &orders.order)?),
        (labels::ORDER_EXTENSIONS, encode(labels::ORDER_EXTENSIONS, &orders.order_extensions)?),
        // The build image's mixins as read: `null` when it has none (or `null`), `[]` for `[]`.
        (labels::STACK_MIXINS, encode(labels::STACK_MIXINS, &base.mixins)?),
    ];
    if !orders.system.is_empty() {
        pack_labels.push((labels::SYSTEM, encode(labels::SYSTEM, &orders.system)?));
    }
    for (k, v) in &pack_labels {
        config.set_label(k, v);
    }

    // The image: base layers + ours, pack's config changes.
    let docker = base.image.manifest.value.media_type.as_deref() == Some(media_type::DOCKER_MANIFEST);
    let layer_media_type = if docker { media_type::DOCKER_LAYER_GZIP } else { media_type::OCI_LAYER_GZIP };
    let mut layers_out = base.image.layers().map_err(AssembleError::BuildImage)?;
    for mut layer in new_layers {
        if media_type::is_gzip_layer(&layer.descriptor.media_type) {
            layer.descriptor.media_type = layer_media_type.to_owned();
        }
        config.push_diff_id(&layer.diff_id);
        layers_out.push(layer);
    }
    config.set_working_dir("/layers");
    config.set_created(NORMALIZED_CREATED);
    config.remove("container");
    config.reset_history(layers_out.len(), NORMALIZED_CREATED);
    layers.reporter.debug("Builder creation completed, starting image save");
    let platform = {
        let p = config.platform();
        if p.os.is_empty() { parts.platform.clone() } else { p }
    };
    Ok(ImageToWrite {
        manifest_media_type: if docker { media_type::DOCKER_MANIFEST } else { media_type::OCI_MANIFEST }.to_owned(),
        config_media_type: if docker { media_type::DOCKER_CONFIG } else { media_type::OCI_CONFIG }.to_owned(),
        config: config.to_raw(),
        layers: layers_out,
        platform,
        annotations: None,
    })
}
