//! `builder create --dry-run`: everything `builder create` does but writing, and a report of
//! what it would do.
//!
//! The plan is the one [`super::create`] makes ([`Plan::resolve`] in [`Mode::DryRun`]), with two
//! differences that keep every output as it was:
//!
//! * the [`Images`] are [read-only](Images::read_only): images on registries are read there
//!   (their layers streamed to validate them), nothing is pulled into or recorded in the local
//!   store (whose blobs refuse writes), nothing is remembered in the caches, and the layers that
//!   must be read to decide (buildpackages, a lifecycle image) are downloaded into scratch
//!   space under `CNBX_HOME/tmp`, removed at the end. `http(s)` buildpacks and lifecycles are
//!   downloaded into the download cache, as a create would;
//! * the [planning](crate::assemble::LayerService::planning) layer service builds nothing: it
//!   asks the layer cache whether it has each recipe's layer (a hit gives its diffID and blob)
//!   and gives a stand-in for the others, whose diffID is unknown.
//!
//! Each target's image is then assembled from documents only, and the report says, per layer,
//! what it holds, where it comes from (the build image, the layer cache, a buildpackage, or a
//! build) and what writing it would take at the destination (nothing when the destination
//! has the blob, a cross-repository mount, an upload, a write). When every layer is known, the
//! digest the destination's name would point at is computed and compared with what each name
//! holds now: the same digest everywhere means there is nothing to do.

use cnbx_oci::Digest;
use cnbx_oci::image::{ImageToWrite, build_index};
use cnbx_oci::layout::LayoutError;
use cnbx_oci::registry::RegistryError;
use cnbx_oci::spec::Platform;
use cnbx_validate::Finding;

use super::destination::{Destination, DestinationKind};
use super::plan::{Mode, Plan, Planned, TargetPlan};
use super::{CreateError, CreateRequest, assemble};
use crate::assemble::Module;
use crate::images::{ImageFetchError, Images};

/// Where a layer would come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerSource {
    /// A layer of the build image.
    Base,
    /// A layer the layer cache holds (built by an earlier create).
    Cache,
    /// A buildpackage layer reused as it is.
    Package,
    /// A layer to build (the layer cache does not have it): its diffID is unknown.
    Build,
}

impl LayerSource {
    /// How reports name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Base => "base",
            Self::Cache => "cache",
            Self::Package => "package",
            Self::Build => "build",
        }
    }
}

/// What writing a layer to the destination would take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerAction {
    /// Nothing: the destination has the blob.
    Exists,
    /// A cross-repository mount from the registry repository it comes from.
    Mount,
    /// An upload to the registry.
    Upload,
    /// A write into the local store, the layout or the archive.
    Write,
    /// Sent in the load into the container engine (which does not hold it).
    Load,
}

impl LayerAction {
    /// How reports name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Exists => "exists",
            Self::Mount => "mount",
            Self::Upload => "upload",
            Self::Write => "write",
            Self::Load => "load",
        }
    }
}

/// One layer of a target's builder image, as the dry run found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerPlan {
    /// What it holds (`build image layer 1/3`, `lifecycle 0.21.0`, `buildpack <id>@<version>`,
    /// `/cnb/order.toml`, …).
    pub holds: String,
    /// Where it would come from.
    pub source: LayerSource,
    /// What writing it would take.
    pub action: LayerAction,
    /// Its diffID, blob digest and size, when known (not for a layer to build).
    pub known: Option<KnownLayer>,
}

/// The identity of a layer that exists already.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownLayer {
    /// sha256 of the uncompressed tar.
    pub diff_id: Digest,
    /// The blob's digest.
    pub digest: Digest,
    /// The blob's size.
    pub size: u64,
}

/// One target of the dry run.
#[derive(Debug, Clone)]
pub struct TargetDryRun {
    /// Its platform.
    pub platform: Platform,
    /// What the validation of its base images found (errors, warnings, infos).
    pub findings: Vec<Finding>,
    /// Its layers, in order (none when the validation failed).
    pub layers: Vec<LayerPlan>,
    /// Its manifest's digest, when every layer is known.
    pub manifest: Option<Digest>,
}

/// A name the builder would be written under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamePlan {
    /// The name, as given (the destination, a `--tag`, a per-target name).
    pub name: String,
    /// What it would point at, when every layer is known.
    pub wants: Option<Digest>,
    /// What it points at now (`None`: nothing, or a docker-archive, which is always written).
    /// In the container engine, `wants` and `holds` are image IDs.
    pub holds: Option<Digest>,
}

impl NamePlan {
    /// Whether the name holds exactly what it would be given.
    pub fn up_to_date(&self) -> bool {
        self.wants.is_some() && self.wants == self.holds
    }
}

/// What `builder create` would do.
#[derive(Debug)]
pub struct DryRun {
    /// The destination as given.
    pub destination: String,
    /// Its kind.
    pub kind: DestinationKind,
    /// Where that is (`into the cnbx store (DIR)`, `into the Docker daemon at …`).
    pub into: String,
    /// The targets planned (up to the one whose validation failed, if one did).
    pub targets: Vec<TargetDryRun>,
    /// The digest the destination's name would point at, when every layer is known.
    pub digest: Option<Digest>,
    /// Every name the builder would be written under, with what it holds now.
    pub names: Vec<NamePlan>,
    /// The error the create would stop with (the base images break the platform spec).
    pub failure: Option<CreateError>,
}

impl DryRun {
    /// Whether there is nothing to do: the create would succeed and every name already holds
    /// exactly the image it would write.
    pub fn up_to_date(&self) -> bool {
        self.failure.is_none() && !self.names.is_empty() && self.names.iter().all(NamePlan::up_to_date)
    }
}

/// Why a dry run could not look at the destination.
#[derive(Debug, thiserror::Error)]
pub enum DryRunError {
    /// The local store or the layout could not be read.
    #[error("reading what '{name}' holds now")]
    Layout {
        /// The name.
        name: String,
        /// Why.
        #[source]
        source: Box<LayoutError>,
    },
    /// The registry could not be asked.
    #[error("asking the registry about '{name}'")]
    Registry {
        /// The name.
        name: String,
        /// Why.
        #[source]
        source: Box<RegistryError>,
    },
    /// The container engine could not be asked.
    #[error(transparent)]
    Engine {
        /// Why.
        source: Box<ImageFetchError>,
    },
    /// A dry run was asked of images that may be written.
    #[error("a dry run needs read-only images (Images::read_only)")]
    NotReadOnly,
}

impl From<DryRunError> for CreateError {
    fn from(e: DryRunError) -> Self {
        Self::DryRun(Box::new(e))
    }
}

/// Plans the builder of `request` and reports what creating it would do, writing nothing (see
/// the module docs). `images` must be [read-only](Images::read_only). A create that would
/// fail for its base images' findings is a report with [`DryRun::failure`]; any other
/// failure is the error the create would fail with.
pub async fn dry_run(images: &Images, request: &CreateRequest) -> Result<DryRun, CreateError> {
    if !images.is_read_only() {
        return Err(DryRunError::NotReadOnly.into());
    }
    let plan = Plan::resolve(images, request, Mode::DryRun)?;
    let mut report = DryRun {
        destination: plan.shown_destination.clone(),
        kind: plan.destination.kind(),
        into: plan.destination.place(images),
        targets: Vec::new(),
        digest: None,
        names: Vec::new(),
        failure: None,
    };
    let mut built = Vec::new();
    for platform in plan.platforms() {
        let target = match plan.target(platform.as_ref()).await? {
            Planned::Ready(target) => target,
            Planned::Refused { platform, failure } => {
                let findings = match failure.as_ref() {
                    CreateError::Validation(findings) => findings.clone(),
                    _ => Vec::new(),
                };
                report.targets.push(TargetDryRun { platform, findings, layers: Vec::new(), manifest: None });
                report.failure = Some(*failure);
                return Ok(report);
            }
        };
        let image = assemble(&plan, &target)?;
        let layers = describe_layers(&plan, &target, &image);
        let known = layers.iter().all(|l| l.known.is_some());
        // The engine names an image by its ID, the digest of its config.
        let manifest = known.then(|| match plan.destination.kind() {
            DestinationKind::Engine => image.config.digest.clone(),
            _ => image.manifest().digest,
        });
        let findings = target.findings.clone();
        report.targets.push(TargetDryRun { platform: target.platform.clone(), findings, layers, manifest });
        built.push(image);
    }
    report.digest = digest_of(&report.targets, &built);
    actions(images, &plan, &built, &mut report.targets).await?;
    report.names = names(images, &plan, &report).await?;
    // Said last: a `docker-daemon:` destination is connected to by now.
    report.into = plan.destination.place(images);
    Ok(report)
}

/// The digest the destination's name would point at: the manifest of one target, the index of
/// several; `None` unless every layer is known.
fn digest_of(targets: &[TargetDryRun], built: &[ImageToWrite]) -> Option<Digest> {
    let manifests: Option<Vec<Digest>> = targets.iter().map(|t| t.manifest.clone()).collect();
    match manifests?.as_slice() {
        [one] => Some(one.clone()),
        _ => Some(build_index(&built.iter().map(|i| (i.manifest(), i.platform.clone())).collect::<Vec<_>>()).digest),
    }
}

/// Each layer of `image`, the builder image of `target`: what it holds and where it comes
/// from (its action is decided by [`actions`]).
fn describe_layers(plan: &Plan<'_>, target: &TargetPlan, image: &ImageToWrite) -> Vec<LayerPlan> {
    let base = target.base.image.manifest.value.layers.len();
    let modules: Vec<&Module> = target.buildpacks.iter().chain(&target.extensions).collect();
    image
        .layers
        .iter()
        .enumerate()
        .map(|(i, layer)| {
            let known = KnownLayer {
                diff_id: layer.diff_id.clone(),
                digest: layer.descriptor.digest.clone(),
                size: layer.descriptor.size,
            };
            if i < base {
                let holds = format!("build image layer {}/{base}", i + 1);
                return LayerPlan { holds, source: LayerSource::Base, action: LayerAction::Write, known: Some(known) };
            }
            match plan.layers.planned(&layer.descriptor.digest) {
                Some(p) => {
                    let holds = match &target.lifecycle.metadata.version {
                        Some(version) if p.name == "lifecycle" => format!("lifecycle {version}"),
                        _ => p.name,
                    };
                    let (source, known) =
                        if p.cached { (LayerSource::Cache, Some(known)) } else { (LayerSource::Build, None) };
                    LayerPlan { holds, source, action: LayerAction::Write, known }
                }
                None => {
                    let module = modules.iter().find(|m| m.layer.descriptor.digest == layer.descriptor.digest);
                    let holds = module.map_or_else(
                        || "buildpackage layer".to_owned(),
                        |m| format!("{} {} (from {})", m.dirs.kind.noun(), m.info.full_name(), m.source),
                    );
                    LayerPlan { holds, source: LayerSource::Package, action: LayerAction::Write, known: Some(known) }
                }
            }
        })
        .collect()
}

/// Decides what writing each layer of `targets` to `destination` would take.
async fn actions(
    images: &Images,
    plan: &Plan<'_>,
    built: &[ImageToWrite],
    targets: &mut [TargetDryRun],
) -> Result<(), CreateError> {
    let destination = &plan.destination;
    for (target, image) in targets.iter_mut().zip(built) {
        let known: Vec<Option<&KnownLayer>> = target.layers.iter().map(|l| l.known.as_ref()).collect();
        let present = destination.present(images, &known, &plan.engine_base).await?;
        for ((layer, present), blob) in target.layers.iter_mut().zip(present).zip(&image.layers) {
            layer.action = destination.action(present, &blob.source, layer.known.is_some());
        }
    }
    Ok(())
}

/// Every name the builder would be written under (the destination, per-target names with
/// `--append-image-name-suffix`, the `--tag`s), with what it would point at and what it
/// points at now.
async fn names(images: &Images, plan: &Plan<'_>, report: &DryRun) -> Result<Vec<NamePlan>, CreateError> {
    let request = plan.request;
    let mut per_target = Vec::new();
    if request.append_image_name_suffix && plan.targets.len() > 1 {
        for (target, t) in plan.targets.iter().zip(&report.targets) {
            if let Some(named) = plan.destination.per_target(target)? {
                per_target.push((named, t.manifest.clone()));
            }
        }
    }
    let mut wanted: Vec<(&Destination, String, Option<Digest>)> =
        vec![(&plan.destination, plan.shown_destination.clone(), report.digest.clone())];
    for (named, wants) in &per_target {
        wanted.push((named, named.name(), wants.clone()));
    }
    for (tag, shown) in plan.tags.iter().zip(&request.tags) {
        wanted.push((tag, shown.clone(), report.digest.clone()));
    }
    let mut out = Vec::with_capacity(wanted.len());
    for (destination, name, wants) in wanted {
        let holds = destination.holds(images).await?;
        out.push(NamePlan { name, wants, holds });
    }
    Ok(out)
}
