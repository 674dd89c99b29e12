//! The local store (`$CNBX_HOME/store`): cnbx's daemonless stand-in for Docker's image
//! store.
//!
//! It is an OCI image layout ([`OciLayout`]) whose `index.json` entries are keyed by the
//! fully qualified reference (`index.docker.io/library/foo:latest`, the `Display` of
//! [`ImageRef`]) instead of a bare tag. `builder create NAME` without `--publish` writes
//! there, `builder inspect NAME` reads from there, and its `blobs/` directory is the blob
//! cache for everything cnbx builds (layers, see [`crate::layer`]) or pulls.
//!
//! Keys are the normalised form, so `foo`, `docker.io/foo:latest` and
//! `index.docker.io/library/foo:latest` name the same entry. A reference with a digest is
//! found by its exact key first, then by manifest or index digest among the entries of the
//! same repository (including the per-platform manifests of stored indexes).

use std::path::PathBuf;

use cnbx_refs::ImageRef;

use crate::blobstore::BlobStore;
use crate::image::SourceImage;
use crate::layout::{LayoutError, OciLayout};
use crate::spec::{Descriptor, Index, Platform, Raw, media_type};

/// The local image store.
#[derive(Debug, Clone)]
pub struct LocalStore {
    layout: OciLayout,
}

impl LocalStore {
    /// Opens the store in `dir`, creating it if needed.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, LayoutError> {
        let mut layout = OciLayout::create(dir)?;
        layout.keep_if_write_fails();
        Ok(Self { layout })
    }

    /// The underlying layout.
    pub fn layout(&self) -> &OciLayout {
        &self.layout
    }

    /// The shared blob store (layers built or pulled by cnbx live here).
    pub fn blobs(&self) -> &BlobStore {
        self.layout.blobs()
    }

    /// The key an image is stored under: the fully qualified reference.
    pub fn key(reference: &ImageRef) -> String {
        reference.to_string()
    }

    /// The image stored for `reference` (for `platform`, when it is an index), or `None`
    /// when the store does not have it.
    pub fn get(&self, reference: &ImageRef, platform: Option<&Platform>) -> Result<Option<SourceImage>, LayoutError> {
        let key = Self::key(reference);
        let display = reference.to_string();
        if let Some(desc) = self.layout.resolve(&key)? {
            return self.layout.read_descriptor(&desc, &key, &display, platform).map(Some);
        }
        let Some(digest) = reference.digest() else { return Ok(None) };
        let Some(desc) = self.find_by_digest(reference, digest)? else { return Ok(None) };
        self.layout.read_descriptor(&desc, &key, &display, platform).map(Some)
    }

    /// An entry of the same repository whose manifest or index has `digest`, or a
    /// per-platform manifest of such an entry's index.
    fn find_by_digest(&self, reference: &ImageRef, digest: &str) -> Result<Option<Descriptor>, LayoutError> {
        let name = reference.name();
        let same_repo =
            |d: &Descriptor| d.ref_name().and_then(|k| ImageRef::parse(k).ok()).is_some_and(|r| r.name() == name);
        let entries: Vec<Descriptor> = self.layout.index()?.manifests.into_iter().filter(same_repo).collect();
        if let Some(d) = entries.iter().find(|d| d.digest.as_str() == digest) {
            return Ok(Some(d.clone()));
        }
        for entry in entries.iter().filter(|d| media_type::is_index(&d.media_type)) {
            let Ok(bytes) = self.blobs().read(&entry.digest) else { continue };
            let Ok(index) = Raw::<Index>::parse(bytes) else { continue };
            if let Some(m) = index.value.manifests.iter().find(|m| m.digest.as_str() == digest) {
                return Ok(Some(m.clone()));
            }
        }
        Ok(None)
    }

    /// Stores `images` under `reference` (one image → a manifest, several → an index),
    /// replacing what was stored under that reference before. Returns the entry written.
    pub fn put(&self, reference: &ImageRef, images: &[crate::image::ImageToWrite]) -> Result<Descriptor, LayoutError> {
        self.layout.write(&Self::key(reference), images)
    }

    /// Records an image fetched from a registry for `platform` under `reference`, keeping the
    /// registry's exact manifest and config bytes (so digests stay the registry's) and the
    /// platforms already recorded under that reference: the entry becomes an index of every
    /// platform fetched so far (a single manifest when there is only one). The layer blobs
    /// must already be in [`Self::blobs`].
    pub fn record_fetched(
        &self,
        reference: &ImageRef,
        manifest: &Raw<crate::spec::Manifest>,
        config: &Raw<serde_json::Value>,
        platform: &Platform,
    ) -> Result<Descriptor, LayoutError> {
        let key = Self::key(reference);
        let blob_err = |digest: &crate::digest::Digest| {
            let digest = digest.clone();
            let path = self.layout.path().to_path_buf();
            let tag = key.clone();
            move |source| LayoutError::Blob { path, tag, digest, source: Box::new(source) }
        };
        self.blobs().put_bytes(&config.bytes).map_err(blob_err(&config.digest))?;
        self.blobs().put_bytes(&manifest.bytes).map_err(blob_err(&manifest.digest))?;
        let media_type = manifest.value.media_type.clone().unwrap_or_else(|| media_type::OCI_MANIFEST.to_owned());
        let mut desc = manifest.descriptor(&media_type);
        desc.platform = Some(platform.clone());

        // What is stored so far, per platform.
        let mut entries: Vec<Descriptor> = Vec::new();
        if let Some(existing) = self.layout.resolve(&key)? {
            if media_type::is_index(&existing.media_type) {
                if let Ok(index) = self.blobs().read(&existing.digest).map(Raw::<Index>::parse) {
                    entries.extend(index.map(|i| i.value.manifests).unwrap_or_default());
                }
            } else if let Ok(image) = self.layout.read_descriptor(&existing, &key, &key, None) {
                let mut d = existing.clone();
                d.annotations = None;
                d.platform = Some(image.index_platform.unwrap_or_else(|| image.config.platform()));
                entries.push(d);
            }
        }
        entries.retain(|d| d.digest != desc.digest && d.platform.as_ref().is_none_or(|p| !p.matches(platform)));
        if entries.is_empty() {
            let mut single = desc;
            single.platform = None;
            return self.layout.tag(&key, &single);
        }
        entries.push(desc);
        entries.sort_by_key(|d| d.platform.as_ref().map(ToString::to_string).unwrap_or_default());
        let mut index = Index::new_oci();
        index.manifests = entries;
        let index = Raw::new(index);
        self.blobs().put_bytes(&index.bytes).map_err(blob_err(&index.digest))?;
        self.layout.tag(&key, &index.descriptor(media_type::OCI_INDEX))
    }

    /// Every stored reference, as stored (fully qualified).
    pub fn list(&self) -> Result<Vec<String>, LayoutError> {
        self.layout.list()
    }

    /// Forgets `reference` (its blobs stay). Returns whether it was stored.
    pub fn remove(&self, reference: &ImageRef) -> Result<bool, LayoutError> {
        self.layout.remove(&Self::key(reference))
    }
}
