//! Reading one side of a diff: what a name points at (an image index or a manifest) and, for
//! each platform, its manifest and config. Layers are never read: manifests and configs say
//! everything a diff shows.
//!
//! A registry name is looked up as the other read-only commands look it up (the local store
//! first unless `--pull-policy always`, the registry unless `--pull-policy never`), but an
//! image in the local store is not checked layer by layer (its layers are not used), and an
//! image on a registry is read by digest once its index or manifest was fetched, so the
//! platforms compared all come from the same index even if the tag moves meanwhile.

use std::path::Path;

use cnbx_oci::image::SourceImage;
use cnbx_oci::layout::LayoutError;
use cnbx_oci::spec::{Descriptor, Index, Platform, media_type};
use cnbx_oci::store::LocalStore;
use cnbx_oci::{Digest, OciLayout};
use cnbx_refs::{ImageLocation, ImageRef};

use super::{BuilderImage, DiffError, MAX_PLATFORMS, PlatformImage};
use crate::check::parse_index;
use crate::images::{ImageFetchError, Images, PullPolicy};

/// What a name points at, and each platform's image (with the index entry's platform).
type Read = (Digest, Vec<(Option<Platform>, SourceImage)>);

/// Where a side was found.
enum Found<'a> {
    /// An OCI layout (an `oci:` directory, or the local store) and the tag in it.
    Layout { layout: &'a OciLayout, tag: String, desc: Descriptor },
    /// A registry: the reference and the document its name points at.
    Registry { reference: ImageRef, document: Vec<u8> },
    /// One image read whole: from the container engine, or a docker-archive.
    Image(Box<SourceImage>),
}

/// What an image read whole is named by: in the engine, its ID (the config's digest), which
/// `docker images` shows; in a docker-archive, the manifest cnbx made of it.
fn single_digest(image: &SourceImage) -> Digest {
    if image.display_name.starts_with("docker-archive:") {
        image.manifest.digest.clone()
    } else {
        image.config_raw.digest.clone()
    }
}

/// Reads the builder `spelling` names (`NAME` or `oci:<DIR>[:<TAG>]`, relative paths against
/// `base_dir`) for every platform it has: see the module docs.
pub async fn read(images: &Images, spelling: &str, base_dir: &Path) -> Result<BuilderImage, DiffError> {
    let fetch_err = |e: ImageFetchError| DiffError::Read { image: spelling.to_owned(), source: Box::new(e) };
    let location = ImageLocation::parse(spelling, base_dir).map_err(|e| fetch_err(e.into()))?;
    let owned_layout;
    let found = match location {
        ImageLocation::OciLayout { dir, tag } => {
            owned_layout = OciLayout::open(&dir).map_err(|e| fetch_err(e.into()))?;
            let desc = owned_layout
                .resolve(&tag)
                .map_err(|e| fetch_err(e.into()))?
                .ok_or_else(|| DiffError::NotFound { image: spelling.to_owned(), hint: " in the layout" })?;
            Found::Layout { layout: &owned_layout, tag, desc }
        }
        location @ (ImageLocation::DockerArchive { .. } | ImageLocation::DockerDaemon(_)) => {
            let image =
                images.get_at(&location, spelling, None).await.map_err(fetch_err)?.ok_or_else(|| {
                    DiffError::NotFound { image: spelling.to_owned(), hint: " in the container engine" }
                })?;
            Found::Image(Box::new(image))
        }
        ImageLocation::Name(reference) => find_named(images, spelling, reference).await?,
    };
    let (digest, platforms) = match found {
        Found::Image(image) => (single_digest(&image), vec![(None, *image)]),
        Found::Layout { layout, tag, desc } => read_layout(layout, &tag, spelling, &desc)?,
        Found::Registry { reference, document } => read_registry(images, spelling, &reference, document).await?,
    };
    let platforms = platforms.into_iter().map(|image| PlatformImage::new(spelling, image)).collect::<Result<_, _>>()?;
    Ok(BuilderImage { name: spelling.to_owned(), digest, platforms })
}

/// The local store's entry for `reference`, or the document the registry serves for it,
/// as the pull policy allows.
async fn find_named<'a>(images: &'a Images, spelling: &str, reference: ImageRef) -> Result<Found<'a>, DiffError> {
    let fetch_err = |e: ImageFetchError| DiffError::Read { image: spelling.to_owned(), source: Box::new(e) };
    if images.policy() != PullPolicy::Always {
        if let Some(image) = images.engine_image(spelling, &reference).await.map_err(fetch_err)? {
            return Ok(Found::Image(Box::new(image)));
        }
        let layout = images.store().layout();
        let key = LocalStore::key(&reference);
        if let Some(desc) = layout.resolve(&key).map_err(|e| fetch_err(e.into()))? {
            return Ok(Found::Layout { layout, tag: key, desc });
        }
        if images.policy() == PullPolicy::Never {
            return Err(DiffError::NotFound {
                image: spelling.to_owned(),
                hint: " in the local store, and --pull-policy never forbids looking in its registry",
            });
        }
    }
    // Through the configured registry mirror, as every fetch of a name.
    let reference = images.registry_reference(&reference).map_err(fetch_err)?;
    let document = images.registry().fetch_document(&reference).await.map_err(|e| fetch_err(e.into()))?;
    let hint = match images.policy() {
        PullPolicy::Always => " in its registry",
        _ => " in the local store or its registry",
    };
    let document = document.ok_or_else(|| DiffError::NotFound { image: spelling.to_owned(), hint })?;
    Ok(Found::Registry { reference, document })
}

/// The manifests an index lists for a platform (attestations and nested indexes left out).
fn platform_entries(index: &Index) -> Vec<&Descriptor> {
    index
        .manifests
        .iter()
        .filter(|d| media_type::is_manifest(&d.media_type))
        .filter(|d| d.platform.as_ref().is_none_or(|p| p.os != "unknown"))
        .collect()
}

fn too_many(spelling: &str, count: usize) -> DiffError {
    DiffError::TooManyPlatforms { image: spelling.to_owned(), count }
}

/// Every platform's image of the entry `desc` (tagged `tag`) of `layout`.
fn read_layout(layout: &OciLayout, tag: &str, spelling: &str, desc: &Descriptor) -> Result<Read, DiffError> {
    let fetch_err = |e: ImageFetchError| DiffError::Read { image: spelling.to_owned(), source: Box::new(e) };
    if !media_type::is_index(&desc.media_type) {
        let image = layout.read_descriptor(desc, tag, spelling, None).map_err(|e| fetch_err(e.into()))?;
        return Ok((desc.digest.clone(), vec![(desc.platform.clone(), image)]));
    }
    let index = crate::check::index_at(layout, tag, desc).map_err(fetch_err)?.ok_or_else(|| {
        fetch_err(
            LayoutError::UnsupportedMediaType {
                path: layout.path().to_path_buf(),
                tag: tag.to_owned(),
                media_type: desc.media_type.clone(),
            }
            .into(),
        )
    })?;
    let entries = platform_entries(&index);
    if entries.len() > MAX_PLATFORMS {
        return Err(too_many(spelling, entries.len()));
    }
    let mut images = Vec::new();
    for entry in entries {
        let image = layout.read_descriptor(entry, tag, spelling, None).map_err(|e| fetch_err(e.into()))?;
        images.push((entry.platform.clone(), image));
    }
    Ok((desc.digest.clone(), images))
}

/// Every platform's image of the registry document `document` that `reference` named, each
/// read by digest.
async fn read_registry(
    images: &Images,
    spelling: &str,
    reference: &ImageRef,
    document: Vec<u8>,
) -> Result<Read, DiffError> {
    let fetch_err = |e: ImageFetchError| DiffError::Read { image: spelling.to_owned(), source: Box::new(e) };
    let digest = Digest::of(&document);
    let wanted: Vec<(Option<Platform>, Digest)> = match parse_index(&document) {
        Some(index) => {
            let entries = platform_entries(&index);
            if entries.len() > MAX_PLATFORMS {
                return Err(too_many(spelling, entries.len()));
            }
            entries.into_iter().map(|d| (d.platform.clone(), d.digest.clone())).collect()
        }
        None => vec![(None, digest.clone())],
    };
    let mut out = Vec::new();
    for (platform, manifest) in wanted {
        let pinned = reference.with_digest(manifest.as_str());
        let image = images.registry().fetch_image(&pinned, None).await.map_err(|e| fetch_err(e.into()))?;
        let image = image.ok_or_else(|| DiffError::NotFound {
            image: format!("{spelling} ({manifest})"),
            hint: " in its registry, though its index lists it",
        })?;
        out.push((platform, image));
    }
    Ok((digest, out))
}

impl PlatformImage {
    /// One platform's image: its platform (the index entry's, else the config's), manifest,
    /// layers with their diffIDs, and the builder read from its labels.
    fn new(spelling: &str, (platform, image): (Option<Platform>, SourceImage)) -> Result<Self, DiffError> {
        let platform = platform.unwrap_or_else(|| image.platform());
        let layers = image.layers().map_err(|source| DiffError::Image {
            image: spelling.to_owned(),
            platform: platform.to_string(),
            source,
        })?;
        let labels = image.config.labels();
        let not_builder = |source| DiffError::NotABuilder {
            image: spelling.to_owned(),
            platform: platform.to_string(),
            source: Box::new(source),
        };
        let info = crate::inspect::BuilderInfo::from_labels(&labels).map_err(not_builder)?;
        let extension_layers =
            crate::labels::decode_or_default(&labels, crate::labels::EXTENSION_LAYERS).map_err(|source| {
                DiffError::Label {
                    image: spelling.to_owned(),
                    platform: platform.to_string(),
                    source: Box::new(source),
                }
            })?;
        Ok(Self {
            platform: platform.to_string(),
            manifest: image.manifest.digest.clone(),
            manifest_raw: image.manifest.clone(),
            config: image.config.clone(),
            layers,
            info,
            extension_layers,
            labels,
        })
    }
}
