//! `builder create`: from a parsed `builder.toml` to a builder image written to the local
//! store, an OCI layout, a docker-archive or a registry.
//!
//! Three stages, as pack's steps but with every check before anything is written:
//!
//! 1. [`plan`]: the request is checked and resolved ([`plan::Plan::resolve`]); then, per target,
//!    the build image, the lifecycle, the run images and mirrors, the buildpacks and extensions
//!    are fetched (their layers built through the layer cache into the blob store, where the
//!    next run finds them), the base images are checked against the platform spec
//!    ([`cnbx_validate`], in [`base`]) and the modules against the lifecycle and the build
//!    image, and the orders are resolved ([`plan::Plan::target`]);
//! 2. assembly: each target's image from its plan ([`crate::assemble::builder_image`]: pack's
//!    layers in pack's order, pack's labels, the config changes);
//! 3. [`write`]: one write of every target's image to the destination (an OCI image index
//!    joins several targets, for every destination that can hold one: the local store, `oci:`
//!    layouts and registries), then the `--tag`s and per-target names.
//!
//! Targets are resolved and assembled one after the other, so messages come in the same order
//! as with one target at a time.
//!
//! [`dry_run`] makes the same plan without building or writing anything, and reports what
//! the create would do.

mod base;
mod destination;
mod dry_run;
mod plan;
mod write;

use std::collections::BTreeMap;
use std::path::PathBuf;

use cnbx_config::{ConfigError, LoadedConfig};
use cnbx_model::{ModuleKind, Target};
use cnbx_oci::blobstore::BlobCheck;
use cnbx_oci::layer::LayerError;
use cnbx_oci::progress::ReporterExt;
use cnbx_oci::registry::PushOutcome;
use cnbx_oci::spec::Platform;
use cnbx_oci::{BlobSource, Digest, ImageToWrite, ReuseCheck};
use cnbx_validate::Finding;

use crate::assemble::{AssembleError, BuilderParts, builder_image};
use crate::base_layers::BaseLayersError;
use crate::images::{ImageFetchError, Images};
use crate::labels::{CreatorMetadata, LabelError};
use crate::lifecycle::LifecycleError;
use crate::modules::ModuleError;
pub use destination::DestinationKind;
pub use dry_run::{
    DryRun, DryRunError, KnownLayer, LayerAction, LayerPlan, LayerSource, NamePlan, TargetDryRun, dry_run,
};
pub use write::WriteError;

/// The name written into `createdBy`.
pub const CREATOR_NAME: &str = "cnbx";

/// What to create.
#[derive(Debug, Clone)]
pub struct CreateRequest {
    /// The destination as the user spelled it (`NAME`, `oci:<DIR>[:<TAG>]`,
    /// `docker-archive:<FILE>[:<REF>]`, `docker-daemon:NAME[:TAG]`); a bare name goes to the
    /// container engine when the [`Images`] send bare names there, else to the cnbx store.
    pub destination: String,
    /// The directory relative destinations are resolved against.
    pub cwd: PathBuf,
    /// The parsed builder.toml.
    pub config: LoadedConfig,
    /// Push to the registry named by `destination` (base images come from registries).
    pub publish: bool,
    /// `--label`s, applied before cnbx's own labels (which win on collision, as in pack).
    pub labels: BTreeMap<String, String>,
    /// `--target`s; when empty, `[[targets]]`; when both are empty, the build image's platform.
    pub targets: Vec<Target>,
    /// `--flatten` groups, each a list of `id@version`.
    pub flatten: Vec<Vec<String>>,
    /// `--tag`s: more names the builder is saved or pushed under (same destination kind).
    pub tags: Vec<String>,
    /// `--append-image-name-suffix`: with `--publish` and several targets, also push each
    /// platform's image under `<name>:<tag>-<suffix>` (pack's naming).
    pub append_image_name_suffix: bool,
    /// The version written into `createdBy`.
    pub creator_version: String,
    /// Check the base images from their configs only, without reading their layers: the rules
    /// that need `/etc/passwd`, `/etc/group`, os-release or the home directory are then not
    /// checked, and one warning lists them.
    pub skip_layer_checks: bool,
    /// Record run images and mirrors whose registry cannot be reached (see
    /// [`base::unreachable`]) without checking them, with one warning each naming the rules
    /// left unchecked; everything else is checked as always.
    pub allow_unreachable_run_images: bool,
    /// Where the build-config directory goes in the builder: `/cnb/build-config`
    /// ([`crate::assemble::files::BUILD_CONFIG_DIR`]), or the absolute, clean path pack reads
    /// from `CNB_BUILD_CONFIG_DIR`.
    pub build_config_dir: String,
}

/// What was created.
#[derive(Debug, Clone)]
pub struct Created {
    /// Where it was written, as the user wrote it.
    pub destination: String,
    /// The kind of place.
    pub kind: DestinationKind,
    /// Where that is, for messages: `into the cnbx store (DIR)`, `into the Docker daemon at
    /// unix:///var/run/docker.sock`, ….
    pub into: String,
    /// What to do next with it (the CLI's closing tip).
    pub tip: String,
    /// The digest of the manifest (one platform) or index (several) the name points at; in the
    /// container engine, the image ID.
    pub digest: Digest,
    /// The platforms, in target order.
    pub platforms: Vec<Platform>,
    /// What a push transferred, with `--publish`.
    pub push: Option<PushOutcome>,
}

/// Why a builder could not be created. Messages name the image, file or module and say what
/// to change; each variant states its context once and keeps its cause as its source.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    /// builder.toml is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The destination spelling is invalid.
    #[error("invalid image name '{destination}'")]
    Destination {
        /// As given.
        destination: String,
        /// Why.
        #[source]
        source: cnbx_refs::RefError,
    },
    /// A usage problem (flag combinations, unsupported destinations or images).
    #[error("{0}")]
    Usage(String),
    /// Something about the images or modules is inconsistent (pack's messages).
    #[error("{0}")]
    Invalid(String),
    /// The layer cache cannot be opened.
    #[error("opening the layer cache in {}", .path.display())]
    LayerCache {
        /// Its directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A base image could not be fetched.
    #[error("fetching {role} '{image}'")]
    Fetch {
        /// `build image`.
        role: &'static str,
        /// As written in builder.toml.
        image: String,
        /// Why.
        #[source]
        source: Box<ImageFetchError>,
    },
    /// A run image could not be fetched (pack's message).
    #[error("invalid run image config: failed to fetch image '{image}'")]
    FetchRunImage {
        /// As written in builder.toml.
        image: String,
        /// Why.
        #[source]
        source: Box<ImageFetchError>,
    },
    /// An image does not exist where we may look.
    #[error("{role} '{image}' was not found{hint}")]
    NotFound {
        /// `build image`, `run image`, …
        role: &'static str,
        /// As written in builder.toml.
        image: String,
        /// What to do.
        hint: String,
    },
    /// The base images' layers could not be read to check them.
    #[error("reading the base images' layers to check them (--skip-layer-checks skips this)")]
    BaseLayers(#[source] BaseLayersError),
    /// The base images break the platform spec.
    #[error("{}", base::format_findings(.0))]
    Validation(Vec<Finding>),
    /// The build image's labels cannot be read.
    #[error("reading the build image's labels")]
    BaseLabels(#[source] LabelError),
    /// The lifecycle could not be fetched or is invalid (pack's `fetch lifecycle: …`).
    #[error(transparent)]
    Lifecycle(LifecycleError),
    /// The lifecycle layer's thread ended without a result.
    #[error("the lifecycle layer build stopped unexpectedly")]
    LifecycleLayerStopped,
    /// The lifecycle layer could not be built.
    #[error("building the lifecycle layer")]
    LifecycleLayer(#[source] Box<LayerError>),
    /// The buildpacks or extensions could not be fetched.
    #[error("failed to add {}s to builder", .kind.noun())]
    AddModules {
        /// Buildpacks or extensions.
        kind: ModuleKind,
        /// Why.
        #[source]
        source: ModuleError,
    },
    /// The buildpacks or extensions do not fit the lifecycle or the build image.
    #[error("validating {}s", .kind.noun())]
    ValidateModules {
        /// Buildpacks or extensions.
        kind: ModuleKind,
        /// Why.
        #[source]
        source: ModuleError,
    },
    /// An order cannot be resolved.
    #[error("processing {}s order", .kind.noun())]
    Order {
        /// Buildpacks or extensions.
        kind: ModuleKind,
        /// Why.
        #[source]
        source: ModuleError,
    },
    /// The system buildpacks cannot be resolved.
    #[error("processing system buildpacks")]
    System(#[source] ModuleError),
    /// The image could not be assembled.
    #[error(transparent)]
    Assemble(#[from] AssembleError),
    /// The builder could not be written.
    #[error(transparent)]
    Write(Box<WriteError>),
    /// A dry run could not look at the destination.
    #[error(transparent)]
    DryRun(Box<DryRunError>),
}

impl From<WriteError> for CreateError {
    fn from(e: WriteError) -> Self {
        Self::Write(Box::new(e))
    }
}

/// Creates the builder described by `request`.
///
/// When the cache's layers were reused after a size check only ([`ReuseCheck::OnUse`]: the
/// destination checks each layer's digest as it reads it) and the write fails, every layer
/// taken from the local store is checked; if one was corrupt (it is then evicted, with a
/// warning), the create starts again, hashing the cache's layers before it reuses them, and
/// builds or downloads again what was evicted.
pub async fn create(images: &Images, request: &CreateRequest) -> Result<Created, CreateError> {
    match create_as(images, request, plan::Mode::Create).await? {
        Attempt::Done(created) => Ok(*created),
        Attempt::FoundCorruptLayers => match create_as(images, request, plan::Mode::CreateHashingCache).await? {
            Attempt::Done(created) => Ok(*created),
            Attempt::FoundCorruptLayers => unreachable!("a create hashing the cache never asks to start again"),
        },
    }
}

/// How one attempt at a create ended (see [`create`]).
enum Attempt {
    Done(Box<Created>),
    FoundCorruptLayers,
}

async fn create_as(images: &Images, request: &CreateRequest, mode: plan::Mode) -> Result<Attempt, CreateError> {
    let plan = plan::Plan::resolve(images, request, mode)?;
    let mut built = Vec::new();
    for platform in plan.platforms() {
        let target = match plan.target(platform.as_ref()).await? {
            plan::Planned::Ready(target) => target,
            plan::Planned::Refused { failure, .. } => return Err(*failure),
        };
        built.push(assemble(&plan, &target)?);
    }
    let platforms = built.iter().map(|i| i.platform.clone()).collect();
    let (digest, push) = match write::write_all(&plan, &built).await {
        Ok(written) => written,
        Err(_) if plan.reuse_check == ReuseCheck::OnUse && evicted_any(images, &built) => {
            return Ok(Attempt::FoundCorruptLayers);
        }
        Err(e) => return Err(e),
    };
    if let Err(e) = images.record_fetched() {
        images.reporter().warn(&format!(
            "the builder was written, but the images fetched for it could not be recorded in the local store: {}",
            cnbx_fs::error_chain(&e)
        ));
    }
    Ok(Attempt::Done(Box::new(Created {
        destination: plan.shown_destination.clone(),
        kind: plan.destination.kind(),
        into: plan.destination.place(images),
        tip: plan.destination.tip(&plan.shown_destination),
        digest,
        platforms,
        push,
    })))
}

/// Checks every layer of `built` that comes from the local store (hashing those this process
/// has not checked yet) and says whether one was corrupt, and so evicted.
fn evicted_any(images: &Images, built: &[ImageToWrite]) -> bool {
    let store = images.blobs();
    let layers = built.iter().flat_map(|image| &image.layers);
    let ours = layers.filter(|l| matches!(&l.source, BlobSource::Store(s) if s.root() == store.root()));
    let checks: Vec<_> = ours.map(|l| store.check(&l.descriptor.digest, Some(l.descriptor.size))).collect();
    checks.iter().any(|c| matches!(c, Ok(BlobCheck::Evicted(_))))
}

/// The builder image of one planned target.
fn assemble(plan: &plan::Plan<'_>, target: &plan::TargetPlan) -> Result<ImageToWrite, CreateError> {
    let request = plan.request;
    let created_by = CreatorMetadata { name: CREATOR_NAME.to_owned(), version: request.creator_version.clone() };
    let parts = BuilderParts {
        config: &request.config,
        base: &target.base,
        lifecycle: &target.lifecycle,
        buildpacks: &target.buildpacks,
        extensions: &target.extensions,
        orders: &target.orders,
        labels: &request.labels,
        flatten: &request.flatten,
        created_by: &created_by,
        platform: &target.platform,
        build_config_dir: &request.build_config_dir,
    };
    Ok(builder_image(&parts, &plan.layers)?)
}
