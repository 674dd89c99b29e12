//! The last stage of `builder create`: writing the images of every target to the destination
//! (the local store, an `oci:` layout, a docker-archive, or a registry), then under each
//! `--tag`, and with `--append-image-name-suffix` under each target's name.

use std::path::PathBuf;

use cnbx_model::Target;
use cnbx_oci::docker_archive::DockerArchiveError;
use cnbx_oci::image::ImageToWrite;
use cnbx_oci::layout::LayoutError;
use cnbx_oci::progress::ReporterExt;
use cnbx_oci::registry::{PushOutcome, RegistryError};
use cnbx_oci::{BlobSource, Digest, OciLayout};
use cnbx_refs::{ImageLocation, ImageRef};

use super::{CreateError, CreateRequest};
use crate::images::Images;

/// Where the builder goes.
#[derive(Debug, Clone)]
pub(crate) enum Destination {
    Store(ImageRef),
    Registry(ImageRef),
    Layout { dir: PathBuf, tag: String },
    Archive { file: PathBuf, reference: Option<ImageRef> },
}

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
}

impl Destination {
    /// The destination of `request`.
    pub(crate) fn parse(request: &CreateRequest) -> Result<Self, CreateError> {
        let location = ImageLocation::parse(&request.destination, &request.cwd)
            .map_err(|source| CreateError::Destination { destination: request.destination.clone(), source })?;
        Ok(match (location, request.publish) {
            (ImageLocation::Name(r), true) => Self::Registry(r),
            (ImageLocation::Name(r), false) => Self::Store(r),
            (ImageLocation::OciLayout { dir, tag }, false) => Self::Layout { dir, tag },
            (ImageLocation::DockerArchive { file, reference }, false) => Self::Archive { file, reference },
            (ImageLocation::DockerDaemon(_), false) => {
                return Err(CreateError::Usage(format!(
                    "'{}' names an image in the container engine, which builder create cannot write yet; write it \
                     to a docker-archive:<FILE> and load that with 'docker load'",
                    request.destination
                )));
            }
            (_, true) => {
                return Err(CreateError::Usage(format!(
                    "--publish pushes to a registry, but '{}' is not a registry image name; drop --publish to write it, \
                     or name an image such as registry.example.com/team/builder:tag",
                    request.destination
                )));
            }
        })
    }

    /// Whether writing to this destination, and to the extra `tags`, reads every layer taken
    /// from the local store through a check of its digest, failing on a mismatch before the
    /// write is complete: copies into an `oci:` layout or a docker-archive and uploads do.
    /// Saving into the local store (where every `--tag` of a destination other than a registry
    /// goes) reads nothing, the blobs being there already.
    pub(crate) fn checks_what_it_reads(&self, tags: &[ImageRef]) -> bool {
        match self {
            Self::Store(_) => false,
            Self::Registry(_) => true,
            Self::Layout { .. } | Self::Archive { .. } => tags.is_empty(),
        }
    }

    /// The `--tag`s of `request` as references; they go where the destination goes (the local
    /// store, or the registry with `--publish`).
    pub(crate) fn extra_tags(&self, request: &CreateRequest) -> Result<Vec<ImageRef>, CreateError> {
        if request.tags.is_empty() {
            return Ok(Vec::new());
        }
        if !matches!(self, Self::Store(_) | Self::Registry(_)) {
            return Err(CreateError::Usage(format!(
                "--tag names more images in the local store or a registry, but '{}' is not an image name",
                request.destination
            )));
        }
        request
            .tags
            .iter()
            .map(|t| ImageRef::parse(t).map_err(|source| CreateError::Destination { destination: t.clone(), source }))
            .collect()
    }
}

/// pack's per-target name: the non-empty of os, arch, variant and each distro, joined by `-`,
/// appended to the tag (`latest` is replaced); digest references stay as they are. pack writes
/// a distro as `name@version`, which no registry accepts in a tag; cnbx writes `name-version`.
pub(super) fn suffixed(reference: &ImageRef, target: &Target) -> Result<ImageRef, CreateError> {
    if reference.digest().is_some() {
        return Ok(reference.clone());
    }
    let mut parts: Vec<String> =
        [&target.os, &target.arch, &target.variant].iter().filter(|p| !p.is_empty()).map(|p| (*p).clone()).collect();
    parts.extend(target.distros.iter().map(|d| format!("{}-{}", d.name, d.version)));
    let suffix = parts.join("-");
    let tag = match reference.tag() {
        None | Some("latest") => suffix,
        Some(tag) => format!("{tag}-{suffix}"),
    };
    reference
        .try_with_tag(&tag)
        .map_err(|source| CreateError::Destination { destination: format!("{}:{tag}", reference.name()), source })
}

/// Writes `built` (one image per target) to the destination, then per target with
/// `--append-image-name-suffix`, then under every `--tag`. Returns the digest the destination's
/// name points at, and what the push transferred.
pub(crate) async fn write_all(
    images: &Images,
    request: &CreateRequest,
    destination: &Destination,
    tags: &[ImageRef],
    targets: &[Target],
    built: &[ImageToWrite],
) -> Result<(Digest, Option<PushOutcome>), CreateError> {
    let (digest, push) = write(images, destination, request, built).await?;
    if request.append_image_name_suffix {
        match (destination, targets) {
            (Destination::Registry(reference), [_, _, ..]) => {
                for (image, target) in built.iter().zip(targets) {
                    let named = Destination::Registry(suffixed(reference, target)?);
                    write(images, &named, request, std::slice::from_ref(image)).await?;
                }
            }
            (Destination::Registry(_), _) => {}
            _ => images.reporter().warn("--append-image-name-suffix will be ignored, use combined with --publish"),
        }
    }
    for tag in tags {
        let extra = match destination {
            Destination::Registry(_) => Destination::Registry(tag.clone()),
            _ => Destination::Store(tag.clone()),
        };
        write(images, &extra, request, built).await?;
    }
    Ok((digest, push))
}

/// `built`, with every layer that lives on another registry than `destination` read from the
/// local blob store instead when it is there (a buildpackage layer pulled to be checked): an
/// upload from a local file instead of a second download from the source registry. Layers on
/// the destination's own registry keep their source, so that they are mounted, not uploaded.
fn local_copies_for(images: &Images, destination: &ImageRef, built: &[ImageToWrite]) -> Vec<ImageToWrite> {
    let store = images.blobs();
    built
        .iter()
        .map(|image| {
            let mut image = image.clone();
            for layer in &mut image.layers {
                if let BlobSource::Registry(src) = &layer.source
                    && src.registry() != destination.registry()
                    && store.contains(&layer.descriptor.digest)
                {
                    layer.source = BlobSource::Store(store.clone());
                }
            }
            image
        })
        .collect()
}

async fn write(
    images: &Images,
    destination: &Destination,
    request: &CreateRequest,
    built: &[ImageToWrite],
) -> Result<(Digest, Option<PushOutcome>), WriteError> {
    match destination {
        Destination::Registry(reference) => {
            let built = local_copies_for(images, reference, built);
            let outcome = images
                .registry()
                .push(reference, &built, images.reporter())
                .await
                .map_err(|source| WriteError::Push { reference: reference.clone(), source: Box::new(source) })?;
            Ok((outcome.digest.clone(), Some(outcome)))
        }
        Destination::Store(reference) => {
            let d = images
                .store()
                .put(reference, built)
                .map_err(|source| WriteError::Store { reference: reference.clone(), source })?;
            Ok((d.digest, None))
        }
        Destination::Layout { dir, tag } => {
            let layout =
                OciLayout::create(dir).map_err(|source| WriteError::OpenLayout { dir: dir.clone(), source })?;
            layout.blobs().set_reporter(images.shared_reporter());
            let d = layout
                .write(tag, built)
                .map_err(|source| WriteError::Layout { destination: request.destination.clone(), source })?;
            Ok((d.digest, None))
        }
        Destination::Archive { file, reference } => {
            let tags: Vec<ImageRef> = reference.iter().cloned().collect();
            cnbx_oci::write_docker_archive(file, &tags, built)
                .map_err(|source| WriteError::Archive { destination: request.destination.clone(), source })?;
            let manifest = built.first().map(ImageToWrite::manifest);
            Ok((manifest.map(|m| m.digest).unwrap_or_else(Digest::empty), None))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(os: &str, arch: &str, variant: &str, distros: &[(&str, &str)]) -> Target {
        Target {
            os: os.into(),
            arch: arch.into(),
            variant: variant.into(),
            distros: distros
                .iter()
                .map(|(n, v)| cnbx_model::Distribution { name: (*n).into(), version: (*v).into() })
                .collect(),
        }
    }

    #[test]
    fn suffixed_names_follow_pack() {
        let t = target("linux", "arm64", "v8", &[("ubuntu", "22.04")]);
        let s = |r: &str| suffixed(&ImageRef::parse(r).unwrap(), &t).unwrap().to_string();
        assert_eq!(s("r.example/b:latest"), "r.example/b:linux-arm64-v8-ubuntu-22.04");
        assert_eq!(s("r.example/b"), "r.example/b:linux-arm64-v8-ubuntu-22.04");
        assert_eq!(s("r.example/b:1"), "r.example/b:1-linux-arm64-v8-ubuntu-22.04");
        let digest = format!("r.example/b@sha256:{}", "a".repeat(64));
        assert_eq!(s(&digest), digest);
        let plain = target("linux", "amd64", "", &[]);
        assert_eq!(suffixed(&ImageRef::parse("b:2").unwrap(), &plain).unwrap().tag(), Some("2-linux-amd64"));
    }
}
