//! The last stage of `builder create`: writing the images of every target to the destination
//! (the cnbx store, the container engine, an `oci:` layout, a docker-archive, or a registry;
//! see [`super::destination`]), then under each `--tag`, and with `--append-image-name-suffix`
//! under each target's name.

use std::path::PathBuf;

use cnbx_oci::Digest;
use cnbx_oci::docker_archive::DockerArchiveError;
use cnbx_oci::engine::EngineError;
use cnbx_oci::image::ImageToWrite;
use cnbx_oci::layout::LayoutError;
use cnbx_oci::progress::ReporterExt;
use cnbx_oci::registry::{PushOutcome, RegistryError};
use cnbx_refs::ImageRef;

use super::CreateError;
use super::destination::{Destination, DestinationKind};
use super::plan::Plan;
use crate::images::ImageFetchError;

/// Why the builder could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The push failed.
    #[error("pushing '{reference}'")]
    Push {
        /// Where to.
        reference: ImageRef,
        /// Why.
        #[source]
        source: Box<RegistryError>,
    },
    /// The local store could not be written.
    #[error("saving '{reference}' in the local store")]
    Store {
        /// Under which name.
        reference: ImageRef,
        /// Why.
        #[source]
        source: LayoutError,
    },
    /// The OCI layout could not be opened or created.
    #[error("opening the OCI layout {}", .dir.display())]
    OpenLayout {
        /// The layout.
        dir: PathBuf,
        /// Why.
        #[source]
        source: LayoutError,
    },
    /// The OCI layout could not be written.
    #[error("writing '{destination}'")]
    Layout {
        /// As given.
        destination: String,
        /// Why.
        #[source]
        source: LayoutError,
    },
    /// The docker-archive could not be written.
    #[error("writing '{destination}'")]
    Archive {
        /// As given.
        destination: String,
        /// Why.
        #[source]
        source: DockerArchiveError,
    },
    /// The container engine cannot be reached or used.
    #[error(transparent)]
    Engine {
        /// Why.
        source: Box<ImageFetchError>,
    },
    /// The load into the engine failed.
    #[error("writing the builder into {engine}")]
    EngineLoad {
        /// The engine.
        engine: String,
        /// Why.
        #[source]
        source: Box<EngineError>,
    },
    /// No image was made (no target).
    #[error("no image to write to '{destination}'")]
    Nothing {
        /// As given.
        destination: String,
    },
}

/// Writes `built` (one image per target) to the destination, then per target with
/// `--append-image-name-suffix`, then under every `--tag`. Returns the digest the destination's
/// name points at, and what the push transferred.
pub(crate) async fn write_all(
    plan: &Plan<'_>,
    built: &[ImageToWrite],
) -> Result<(Digest, Option<PushOutcome>), CreateError> {
    let images = plan.images;
    let shown = plan.shown_destination.as_str();
    if let Destination::Engine(reference) = &plan.destination {
        // One load for the name and every --tag: the engine tags them together, once the
        // whole image is there.
        let image = built.first().ok_or_else(|| WriteError::Nothing { destination: shown.to_owned() })?;
        let mut tags = vec![reference.clone()];
        tags.extend(plan.tags.iter().filter_map(|t| match t {
            Destination::Engine(r) => Some(r.clone()),
            _ => None,
        }));
        let id = super::destination::load_into_engine(images, image, &tags, &plan.engine_base).await?;
        return Ok((id, None));
    }
    let (digest, push) = plan.destination.write(images, shown, built).await?;
    if plan.request.append_image_name_suffix {
        if plan.destination.kind() != DestinationKind::Registry {
            images.reporter().warn("--append-image-name-suffix will be ignored, use combined with --publish");
        } else if plan.targets.len() > 1 {
            for (image, target) in built.iter().zip(plan.targets) {
                if let Some(named) = plan.destination.per_target(target)? {
                    named.write(images, &named.name(), std::slice::from_ref(image)).await?;
                }
            }
        }
    }
    for tag in &plan.tags {
        tag.write(images, &tag.name(), built).await?;
    }
    Ok((digest, push))
}
