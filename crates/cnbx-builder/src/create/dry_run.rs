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

use cnbx_oci::image::{ImageToWrite, build_index};
use cnbx_oci::layout::LayoutError;
use cnbx_oci::registry::RegistryError;
use cnbx_oci::spec::Platform;
use cnbx_oci::store::LocalStore;
use cnbx_oci::{BlobSource, Digest, OciLayout};
use cnbx_refs::ImageRef;
use cnbx_validate::Finding;

use super::plan::{Mode, Plan, TargetPlan};
use super::write::{Destination, suffixed};
use super::{CreateError, CreateRequest, assemble};
use crate::assemble::Module;
use crate::images::Images;

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
}

impl LayerAction {
    /// How reports name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Exists => "exists",
            Self::Mount => "mount",
            Self::Upload => "upload",
            Self::Write => "write",
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
    pub holds: Option<Digest>,
}

impl NamePlan {
    /// Whether the name holds exactly what it would be given.
    pub fn up_to_date(&self) -> bool {
        self.wants.is_some() && self.wants == self.holds
    }
}

/// The kind of destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DestinationKind {
    /// The local store.
    Store,
    /// An OCI layout.
    Layout,
    /// A docker-archive.
    Archive,
    /// A registry (`--publish`).
    Registry,
}

impl DestinationKind {
    /// How reports name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Store => "store",
            Self::Layout => "layout",
            Self::Archive => "docker-archive",
            Self::Registry => "registry",
        }
    }
}

/// What `builder create` would do.
#[derive(Debug)]
pub struct DryRun {
    /// The destination as given.
    pub destination: String,
    /// Its kind.
    pub kind: DestinationKind,
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
    let kind = match plan.destination {
        Destination::Store(_) => DestinationKind::Store,
        Destination::Layout { .. } => DestinationKind::Layout,
        Destination::Archive { .. } => DestinationKind::Archive,
        Destination::Registry(_) => DestinationKind::Registry,
    };
    let mut report = DryRun {
        destination: request.destination.clone(),
        kind,
        targets: Vec::new(),
        digest: None,
        names: Vec::new(),
        failure: None,
    };
    let mut built = Vec::new();
    for platform in plan.platforms() {
        let target = plan.target(platform.as_ref()).await;
        let (validated_for, findings) = plan.take_validation().unwrap_or_default();
        let target = match target {
            Ok(target) => target,
            Err(failure @ CreateError::Validation(_)) => {
                let platform = platform.unwrap_or(validated_for);
                report.targets.push(TargetDryRun { platform, findings, layers: Vec::new(), manifest: None });
                report.failure = Some(failure);
                return Ok(report);
            }
            Err(e) => return Err(e),
        };
        let image = assemble(&plan, &target)?;
        let layers = describe_layers(&plan, &target, &image);
        let known = layers.iter().all(|l| l.known.is_some());
        let manifest = known.then(|| image.manifest().digest);
        report.targets.push(TargetDryRun { platform: target.platform.clone(), findings, layers, manifest });
        built.push(image);
    }
    report.digest = digest_of(&report.targets, &built);
    actions(images, &plan.destination, &built, &mut report.targets).await?;
    report.names = names(images, &plan, &report).await?;
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
    destination: &Destination,
    built: &[ImageToWrite],
    targets: &mut [TargetDryRun],
) -> Result<(), CreateError> {
    for (target, image) in targets.iter_mut().zip(built) {
        let present: Vec<bool> = match destination {
            Destination::Store(_) => target
                .layers
                .iter()
                .map(|l| l.known.as_ref().is_some_and(|k| images.blobs().contains(&k.digest)))
                .collect(),
            Destination::Layout { dir, .. } => {
                let layout = open_layout(dir, &dir.display().to_string())?;
                let has = |k: &KnownLayer| layout.as_ref().is_some_and(|l| l.blobs().contains(&k.digest));
                target.layers.iter().map(|l| l.known.as_ref().is_some_and(has)).collect()
            }
            Destination::Archive { .. } => vec![false; target.layers.len()],
            Destination::Registry(reference) => {
                let digests: Vec<Digest> =
                    target.layers.iter().filter_map(|l| l.known.as_ref().map(|k| k.digest.clone())).collect();
                let mut answers = images
                    .registry()
                    .blobs_present(reference, &digests)
                    .await
                    .map_err(|e| registry_err(reference, e))?
                    .into_iter();
                target.layers.iter().map(|l| l.known.is_some() && answers.next().unwrap_or(false)).collect()
            }
        };
        for ((layer, present), blob) in target.layers.iter_mut().zip(present).zip(&image.layers) {
            layer.action = match destination {
                _ if present => LayerAction::Exists,
                Destination::Registry(reference) => match &blob.source {
                    BlobSource::Registry(from)
                        if layer.known.is_some()
                            && from.registry() == reference.registry()
                            && from.repository() != reference.repository() =>
                    {
                        LayerAction::Mount
                    }
                    _ => LayerAction::Upload,
                },
                _ => LayerAction::Write,
            };
        }
    }
    Ok(())
}

fn registry_err(reference: &ImageRef, e: RegistryError) -> DryRunError {
    DryRunError::Registry { name: reference.to_string(), source: Box::new(e) }
}

/// The layout at `dir` if there is one (nothing is created).
fn open_layout(dir: &std::path::Path, name: &str) -> Result<Option<OciLayout>, DryRunError> {
    if !dir.join("oci-layout").exists() {
        return Ok(None);
    }
    OciLayout::open(dir).map(Some).map_err(|e| DryRunError::Layout { name: name.to_owned(), source: Box::new(e) })
}

/// Every name the builder would be written under (the destination, per-target names with
/// `--append-image-name-suffix`, the `--tag`s), with what it would point at and what it
/// points at now.
async fn names(images: &Images, plan: &Plan<'_>, report: &DryRun) -> Result<Vec<NamePlan>, CreateError> {
    let request = plan.request;
    let mut wanted: Vec<(Destination, String, Option<Digest>)> =
        vec![(plan.destination.clone(), request.destination.clone(), report.digest.clone())];
    if let (Destination::Registry(reference), true, [_, _, ..]) =
        (&plan.destination, request.append_image_name_suffix, plan.targets)
    {
        for (target, t) in plan.targets.iter().zip(&report.targets) {
            let named = suffixed(reference, target)?;
            let text = named.to_string();
            wanted.push((Destination::Registry(named), text, t.manifest.clone()));
        }
    }
    for tag in &plan.tags {
        let extra = match plan.destination {
            Destination::Registry(_) => Destination::Registry(tag.clone()),
            _ => Destination::Store(tag.clone()),
        };
        wanted.push((extra, tag.original().to_owned(), report.digest.clone()));
    }
    let mut out = Vec::with_capacity(wanted.len());
    for (destination, name, wants) in wanted {
        let holds = holds(images, &destination, &name).await?;
        out.push(NamePlan { name, wants, holds });
    }
    Ok(out)
}

/// What `destination` holds now, by digest.
async fn holds(images: &Images, destination: &Destination, name: &str) -> Result<Option<Digest>, DryRunError> {
    let layout_err = |e| DryRunError::Layout { name: name.to_owned(), source: Box::new(e) };
    match destination {
        Destination::Store(reference) => {
            let entry = images.store().layout().resolve(&LocalStore::key(reference)).map_err(layout_err)?;
            Ok(entry.map(|d| d.digest))
        }
        Destination::Layout { dir, tag } => match open_layout(dir, name)? {
            Some(layout) => Ok(layout.resolve(tag).map_err(layout_err)?.map(|d| d.digest)),
            None => Ok(None),
        },
        Destination::Archive { .. } => Ok(None),
        Destination::Registry(reference) => {
            let document = images.registry().fetch_document(reference).await.map_err(|e| registry_err(reference, e))?;
            Ok(document.map(|bytes| Digest::of(&bytes)))
        }
    }
}
