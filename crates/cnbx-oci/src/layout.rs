//! OCI image layout directories (`oci:<dir>:<tag>`): `oci-layout`, `index.json`,
//! `blobs/sha256/`.
//!
//! A tag is the `org.opencontainers.image.ref.name` annotation of an `index.json` entry, as
//! skopeo and umoci write it. An entry is either one image manifest or an image index
//! (several platforms).
//!
//! **Reading** treats the layout as someone else's: `oci-layout`, `index.json` and every
//! blob are opened without following symbolic links (a link, FIFO or device is refused),
//! `oci-layout` is read up to [`limits::MAX_DESCRIPTOR`] bytes, `index.json`, manifests,
//! indexes and configs up to [`limits::MAX_DOCUMENT`], and every document is checked
//! against its digest before it is parsed.
//!
//! **Writing** ([`OciLayout::write`]) first makes every blob present (layers copied from
//! the blob store they were built or pulled into, hashed on the way and committed only when
//! they match their descriptor, never hard-linked, so that the output never shares a file
//! with cnbx's store; then the config, the manifests and the index), and only then updates
//! `index.json`. The update is a read-modify-write under an exclusive `flock` on
//! `<dir>/.cnbx.lock`, held for that update only, and the new `index.json` is written with
//! [`cnbx_fs::write_atomic`] (a temporary file renamed over the old one). Files get the
//! mode the umask gives (0644 under 022), like skopeo's and umoci's. So:
//!
//! * a failed or interrupted write leaves the layout as it was: the blobs this write added
//!   are removed again (under the index lock, and only those no `index.json` entry uses by
//!   then), and a layout this write created is removed whole, unless another process has
//!   started writing into it meanwhile; the temporary files are removed by their writers;
//! * concurrent writers (threads or processes) of different tags all end up in
//!   `index.json`: before the index is written, under its lock, every blob the new entry
//!   needs is checked to be there (and copied again if another writer's failed write
//!   removed it);
//! * readers never need a lock, since the rename is atomic;
//! * only the entry with the same tag is replaced; other entries and any fields cnbx does
//!   not know (in `index.json` and in its entries) are kept;
//! * a blob already present is [checked](BlobStore::check) before it is reused; one that
//!   does not match its digest is replaced.
//!
//! **Temporary files** live in two places only: `<dir>/` (`index.json`, `oci-layout`) and
//! `<dir>/blobs/` (blobs), named `.cnbx-tmp-*`. Every process writing into the layout holds
//! its **use lock** (`<dir>/.cnbx-use.lock`) shared while it does; the first one to take it
//! while nobody else holds it removes the temporary files a killed process left in those two
//! places ([`cnbx_fs::FileLock::enter`]). Processes that remove blobs (the local store's
//! `prune`) take it exclusively.
//!
//! Removing a tag ([`OciLayout::remove`]) does not delete blobs: other tags may share them,
//! and a reader may be using them.
//!
//! **Nothing is read or written through a symbolic link inside a layout.** The layout
//! directory itself is opened by its path (links leading to it are followed: whoever named
//! it did so), once; everything in it (`oci-layout`, `index.json`, the lock files,
//! `blobs/`, `blobs/sha256/`, each blob, the temporary files) is opened, created, renamed
//! and removed relative to that directory's descriptor, one name at a time, never
//! following a link ([`cnbx_fs::OpenDir`]). A link anywhere in it (`blobs` pointing at
//! another directory, `index.json` or a lock file pointing at another file, a link where a
//! blob is to be written) is an error naming it, before anything is written there; so an
//! existing `oci:` output whose `blobs/` links elsewhere does not get the builder's blobs
//! written elsewhere. The same holds for the local store, which is a layout too.

use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};

use cnbx_fs::{AtomicFile, FileLock, FsError, OpenDir, RemovedTemporary, limits};
use serde_json::{Map, Value, json};

use crate::blobstore::{BlobCheck, BlobError, BlobStore};
use crate::config::ImageConfig;
use crate::digest::Digest;
use crate::image::{BlobSource, ImageError, ImageToWrite, LayerBlob, SourceImage, build_index, select_platform};
use crate::spec::{ANNOTATION_REF_NAME, Descriptor, Index, JsonError, Manifest, Platform, Raw, media_type};

/// The `oci-layout` file's content.
pub const OCI_LAYOUT_CONTENT: &str = r#"{"imageLayoutVersion":"1.0.0"}"#;

/// Name of the lock file serialising `index.json` updates.
pub const LOCK_FILE: &str = ".cnbx.lock";

/// Name of the use lock: held shared by every process writing into the layout, exclusively
/// by one removing things from it (see the module docs).
pub const USE_LOCK_FILE: &str = ".cnbx-use.lock";

/// Errors from reading or writing an OCI layout. Each names the layout directory, and the
/// tag when there is one.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    /// The directory has no `oci-layout` file.
    #[error("{} is not an OCI image layout (it has no oci-layout file)", path.display())]
    NotALayout {
        /// The directory.
        path: PathBuf,
    },
    /// `oci-layout` names a version we do not read.
    #[error("OCI layout {}: unsupported imageLayoutVersion \"{}\"", path.display(), cnbx_fs::excerpt(version))]
    UnsupportedVersion {
        /// The directory.
        path: PathBuf,
        /// What the file says.
        version: String,
    },
    /// A filesystem operation failed.
    #[error("OCI layout {}: {what}", path.display())]
    Io {
        /// The directory.
        path: PathBuf,
        /// What was being done.
        what: String,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// `index.json` or `oci-layout` cannot be read: not a regular file, or too large.
    #[error("OCI layout {}", path.display())]
    File {
        /// The directory.
        path: PathBuf,
        /// What is wrong (the message names the file, and the limit when it is too large).
        #[source]
        source: FsError,
    },
    /// `index.json` (or `oci-layout`) is not valid JSON of the right shape.
    #[error("OCI layout {}: {file} is invalid", path.display())]
    InvalidFile {
        /// The directory.
        path: PathBuf,
        /// `index.json` or `oci-layout`.
        file: &'static str,
        /// The parse error.
        #[source]
        source: JsonError,
    },
    /// No entry has this tag.
    #[error("OCI layout {}: no image tagged {tag:?} (tags: {available})", path.display())]
    TagNotFound {
        /// The directory.
        path: PathBuf,
        /// The tag asked for.
        tag: String,
        /// The tags present, comma-separated (`none` when empty).
        available: String,
    },
    /// A blob is missing, unreadable or does not match its digest.
    #[error("OCI layout {}: image {tag:?}: blob {digest}", path.display())]
    Blob {
        /// The directory.
        path: PathBuf,
        /// The tag.
        tag: String,
        /// The blob.
        digest: Digest,
        /// What failed.
        #[source]
        source: Box<BlobError>,
    },
    /// A manifest or index blob is not a valid document.
    #[error("OCI layout {}: image {tag:?}: {what} {digest} is invalid", path.display())]
    InvalidDocument {
        /// The directory.
        path: PathBuf,
        /// The tag.
        tag: String,
        /// `manifest`, `index` or `config`.
        what: &'static str,
        /// The blob.
        digest: Digest,
        /// The parse error.
        #[source]
        source: JsonError,
    },
    /// A descriptor has a media type that is neither a manifest nor an index.
    #[error("OCI layout {}: image {tag:?}: unsupported media type \"{}\"", path.display(), cnbx_fs::excerpt(media_type))]
    UnsupportedMediaType {
        /// The directory.
        path: PathBuf,
        /// The tag.
        tag: String,
        /// The media type.
        media_type: String,
    },
    /// The image is malformed, or has no manifest for the platform asked for.
    #[error("OCI layout {}: image {tag:?}", path.display())]
    Image {
        /// The directory.
        path: PathBuf,
        /// The tag.
        tag: String,
        /// What is wrong.
        #[source]
        source: ImageError,
    },
    /// A layer to write is only on a registry.
    #[error(
        "OCI layout {}: cannot write image {tag:?}: layer {digest} is only on registry {reference}; pull it into a local store first",
        path.display()
    )]
    RemoteBlob {
        /// The directory.
        path: PathBuf,
        /// The tag.
        tag: String,
        /// The layer blob.
        digest: Digest,
        /// Where it is.
        reference: String,
    },
    /// [`OciLayout::write`] was given no image.
    #[error("OCI layout {}: no image to write for tag {tag:?}", path.display())]
    NothingToWrite {
        /// The directory.
        path: PathBuf,
        /// The tag.
        tag: String,
    },
}

/// An OCI image layout directory.
#[derive(Debug, Clone)]
pub struct OciLayout {
    root: PathBuf,
    /// The layout directory, opened once: everything in it is reached through it.
    dir: OpenDir,
    blobs: BlobStore,
    /// What [`OciLayout::create`] made, when the layout is new: removed again if the first
    /// write fails.
    fresh: Option<Fresh>,
}

/// What [`OciLayout::create`] made of a new layout.
#[derive(Debug, Clone, Default)]
struct Fresh {
    /// The topmost directory it created (the layout directory or an ancestor), if any.
    dir: Option<PathBuf>,
    /// The files and directories it created in a directory that existed.
    entries: Vec<PathBuf>,
}

/// What an `index.json` entry needs ([`OciLayout::entries`]).
#[derive(Debug, Clone)]
pub struct EntryBlobs {
    /// The entry's ref-name annotation (its tag), if any.
    pub tag: Option<String>,
    /// The manifest or index it points at.
    pub digest: Digest,
    /// Every blob it needs that could be read: its manifests (and index), configs and
    /// layers.
    pub blobs: BTreeSet<Digest>,
    /// Why it cannot be used (a document missing, corrupt or invalid, a blob missing or of
    /// the wrong size); empty when it can.
    pub problems: Vec<String>,
}

impl OciLayout {
    /// Opens an existing layout (it must have an `oci-layout` file of version 1.x).
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, LayoutError> {
        let root = dir.into();
        let handle = match OpenDir::open(&root) {
            Ok(h) => h,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(LayoutError::NotALayout { path: root }),
            Err(source) => return Err(LayoutError::Io { path: root, what: "opening the directory".into(), source }),
        };
        Self::open_at(root, handle)
    }

    /// Opens the layout in the open directory `handle` (opened by `root`).
    fn open_at(root: PathBuf, handle: OpenDir) -> Result<Self, LayoutError> {
        let bytes = match handle.read_file("oci-layout", limits::MAX_DESCRIPTOR, "an oci-layout file") {
            Ok(b) => b,
            Err(e) if e.is_not_found() => return Err(LayoutError::NotALayout { path: root }),
            Err(source) => return Err(LayoutError::File { path: root, source }),
        };
        let v: Value = serde_json::from_slice(&bytes).map_err(|e| LayoutError::InvalidFile {
            path: root.clone(),
            file: "oci-layout",
            source: e.into(),
        })?;
        let version = v.get("imageLayoutVersion").and_then(Value::as_str).unwrap_or_default();
        if !version.starts_with("1.") {
            return Err(LayoutError::UnsupportedVersion { path: root, version: version.to_owned() });
        }
        let blobs = BlobStore::open_in(&handle).map_err(|source| LayoutError::Io {
            path: root.clone(),
            what: "opening blobs/sha256".into(),
            source,
        })?;
        Ok(Self { root, dir: handle, blobs, fresh: None })
    }

    /// Opens the layout in `dir`, creating the directory, `oci-layout`, an empty
    /// `index.json` and `blobs/sha256/` if missing. A layout created here is removed again
    /// when the first [`OciLayout::write`] into it fails (or when creating it fails).
    pub fn create(dir: impl Into<PathBuf>) -> Result<Self, LayoutError> {
        let root = dir.into();
        let exists = |p: &Path| std::fs::symlink_metadata(p).is_ok();
        if exists(&root.join("oci-layout")) {
            return Self::open(root);
        }
        let top = root.ancestors().filter(|a| !a.as_os_str().is_empty()).take_while(|a| !exists(a)).last();
        let mut fresh = Fresh { dir: top.map(Path::to_path_buf), entries: Vec::new() };
        if fresh.dir.is_none() {
            for name in ["oci-layout", "index.json", "blobs", LOCK_FILE, USE_LOCK_FILE] {
                if !exists(&root.join(name)) {
                    fresh.entries.push(root.join(name));
                }
            }
        }
        let io_err = |what: &str, source| LayoutError::Io { path: root.clone(), what: what.to_owned(), source };
        let handle = OpenDir::create(&root).map_err(|e| io_err("creating the directory", e))?;
        let made = (|| {
            // In the use lock: another process creating the same layout may be sweeping.
            let (_session, _) = enter_in(&root, &handle, None, &[])?;
            let absent = |name: &str| handle.stat(name).map(|e| e.is_none()).map_err(|e| io_err("looking it up", e));
            if absent("oci-layout")? {
                let mut file = AtomicFile::new_in_dir(&handle).map_err(|e| io_err("writing oci-layout", e))?;
                io::Write::write_all(&mut file, OCI_LAYOUT_CONTENT.as_bytes())
                    .and_then(|()| file.commit_in(&handle, "oci-layout"))
                    .map_err(|e| io_err("writing oci-layout", e))?;
            }
            let mut layout = Self::open_at(root.clone(), handle.clone())?;
            layout.fresh = Some(fresh.clone());
            if absent("index.json")? {
                layout.update_index(|_| Ok(()))?;
            }
            Ok(layout)
        })();
        if made.is_err() {
            discard_fresh(&root, &handle, &fresh);
        }
        made
    }

    /// Keeps the layout even if a write into it fails (for a directory that must stay, such
    /// as the local store).
    pub fn keep_if_write_fails(&mut self) {
        self.fresh = None;
    }

    /// The layout directory.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// The layout's blobs.
    pub fn blobs(&self) -> &BlobStore {
        &self.blobs
    }

    /// Takes the layout's use lock, shared (see the module docs), removing the temporary
    /// files a killed process left in `<dir>`, `<dir>/blobs` and `extra` if no other process
    /// holds it. Hold the lock while writing into the layout (or into `extra`).
    pub fn enter(&self, extra: &[PathBuf]) -> Result<(FileLock, Vec<RemovedTemporary>), LayoutError> {
        enter_in(&self.root, &self.dir, Some(self.blobs.blobs_dir()), extra)
    }

    /// Takes the layout's use lock exclusively, waiting for every process writing into it
    /// to finish (and keeping new ones out until it is dropped): before removing blobs.
    /// `None` when `wait` is false and another process holds it.
    pub fn lock_exclusively(&self, wait: bool) -> Result<Option<FileLock>, LayoutError> {
        let lock = if wait {
            FileLock::exclusive_in(&self.dir, USE_LOCK_FILE).map(Some)
        } else {
            FileLock::try_exclusive_in(&self.dir, USE_LOCK_FILE)
        };
        lock.map_err(self.io_err(format!("taking the use lock {}", self.dir.child_path(USE_LOCK_FILE).display())))
    }

    fn io_err(&self, what: impl Into<String>) -> impl FnOnce(io::Error) -> LayoutError + '_ {
        let what = what.into();
        move |source| LayoutError::Io { path: self.root.clone(), what, source }
    }

    /// `index.json` as JSON (an empty index when the file does not exist yet).
    fn read_index_value(&self) -> Result<Map<String, Value>, LayoutError> {
        read_index_value(&self.root, &self.dir)
    }

    /// The entries of `index.json`.
    pub fn index(&self) -> Result<Index, LayoutError> {
        let v = Value::Object(self.read_index_value()?);
        serde_json::from_value(v).map_err(|e| LayoutError::InvalidFile {
            path: self.root.clone(),
            file: "index.json",
            source: e.into(),
        })
    }

    /// The tags in `index.json`, in its order.
    pub fn list(&self) -> Result<Vec<String>, LayoutError> {
        Ok(self.index()?.manifests.iter().filter_map(|d| d.ref_name().map(str::to_owned)).collect())
    }

    /// The `index.json` entry tagged `tag`, if any.
    pub fn resolve(&self, tag: &str) -> Result<Option<Descriptor>, LayoutError> {
        Ok(self.index()?.manifests.into_iter().find(|d| d.ref_name() == Some(tag)))
    }

    /// Reads the image tagged `tag`. For an index, the manifest for `platform` is picked
    /// with [`select_platform`] (without a platform: `linux/<host arch>`, or the only one).
    pub fn read_image(&self, tag: &str, platform: Option<&Platform>) -> Result<SourceImage, LayoutError> {
        let Some(desc) = self.resolve(tag)? else {
            let tags = self.list()?;
            let available = if tags.is_empty() { "none".to_owned() } else { crate::image::list_for_message(tags) };
            return Err(LayoutError::TagNotFound { path: self.root.clone(), tag: tag.to_owned(), available });
        };
        let display = format!("oci:{}:{tag}", self.root.display());
        self.read_descriptor(&desc, tag, &display, platform)
    }

    /// Reads the image (or index, resolved to one platform) that `desc` points at.
    /// `tag` and `display_name` are used in errors and as [`SourceImage::display_name`].
    pub fn read_descriptor(
        &self,
        desc: &Descriptor,
        tag: &str,
        display_name: &str,
        platform: Option<&Platform>,
    ) -> Result<SourceImage, LayoutError> {
        let (manifest_desc, index_platform) = if media_type::is_index(&desc.media_type) {
            let index: Raw<Index> = self.read_document(&desc.digest, tag, "index")?;
            let chosen = select_platform(display_name, &index.value, platform)
                .map_err(|source| LayoutError::Image { path: self.root.clone(), tag: tag.to_owned(), source })?;
            (chosen.clone(), chosen.platform.clone())
        } else if media_type::is_manifest(&desc.media_type) {
            (desc.clone(), None)
        } else {
            return Err(LayoutError::UnsupportedMediaType {
                path: self.root.clone(),
                tag: tag.to_owned(),
                media_type: desc.media_type.clone(),
            });
        };
        let manifest: Raw<Manifest> = self.read_document(&manifest_desc.digest, tag, "manifest")?;
        let config_raw: Raw<Value> = self.read_document(&manifest.value.config.digest, tag, "config")?;
        let config = ImageConfig::from_slice(&config_raw.bytes).map_err(|source| LayoutError::Image {
            path: self.root.clone(),
            tag: tag.to_owned(),
            source: ImageError::Config { image: display_name.to_owned(), source },
        })?;
        if let (Some(want), None) = (platform, &index_platform)
            && !want.matches(&config.platform())
        {
            return Err(LayoutError::Image {
                path: self.root.clone(),
                tag: tag.to_owned(),
                source: ImageError::NoMatchingPlatform {
                    image: display_name.to_owned(),
                    platform: want.to_string(),
                    available: cnbx_fs::excerpt(&config.platform().to_string()),
                },
            });
        }
        Ok(SourceImage {
            display_name: display_name.to_owned(),
            manifest,
            config,
            config_raw,
            index_platform,
            source: BlobSource::Store(self.blobs.clone()),
        })
    }

    /// Reads (at most [`limits::MAX_DOCUMENT`] bytes) and parses a JSON blob, checking its
    /// digest first.
    fn read_document<T: serde::de::DeserializeOwned>(
        &self,
        digest: &Digest,
        tag: &str,
        what: &'static str,
    ) -> Result<Raw<T>, LayoutError> {
        let kind = match what {
            "index" => "an image index",
            "config" => "an image config",
            _ => "an image manifest",
        };
        let bytes = self.blobs.read_document(digest, kind).map_err(|source| LayoutError::Blob {
            path: self.root.clone(),
            tag: tag.to_owned(),
            digest: digest.clone(),
            source: Box::new(source),
        })?;
        Raw::parse(bytes).map_err(|e| LayoutError::InvalidDocument {
            path: self.root.clone(),
            tag: tag.to_owned(),
            what,
            digest: digest.clone(),
            source: e.into(),
        })
    }

    /// Writes `images` under `tag`: one image becomes a manifest entry, several become an
    /// OCI index (one manifest per platform) and the entry points at the index. Every
    /// layer must be in a local blob store. Returns the `index.json` entry written. On an
    /// error the layout is left as it was (see the module docs).
    pub fn write(&self, tag: &str, images: &[ImageToWrite]) -> Result<Descriptor, LayoutError> {
        if images.is_empty() {
            return Err(LayoutError::NothingToWrite { path: self.root.clone(), tag: tag.to_owned() });
        }
        let (session, _) = self.enter(&[])?;
        self.blobs.set_output();
        let mut placed = Vec::new();
        let written = self.write_blobs_and_tag(tag, images, &mut placed);
        if written.is_err() {
            self.discard_placed(&placed);
            drop(session);
            self.discard_fresh();
        }
        written
    }

    fn blob_err(&self, tag: &str, digest: &Digest) -> impl FnOnce(BlobError) -> LayoutError + use<> {
        let (path, tag, digest) = (self.root.clone(), tag.to_owned(), digest.clone());
        move |source| LayoutError::Blob { path, tag, digest, source: Box::new(source) }
    }

    /// Makes `layer` present in the layout (copied, or checked when it is already in this
    /// layout's blobs); returns whether this call put it there.
    fn place_layer(&self, tag: &str, layer: &LayerBlob) -> Result<bool, LayoutError> {
        let digest = &layer.descriptor.digest;
        let store = match &layer.source {
            BlobSource::Store(store) => store,
            BlobSource::Registry(reference) => {
                return Err(LayoutError::RemoteBlob {
                    path: self.root.clone(),
                    tag: tag.to_owned(),
                    digest: digest.clone(),
                    reference: reference.to_string(),
                });
            }
        };
        if store.root() != self.blobs.root() {
            return self.blobs.import_blob(store, &layer.descriptor).map_err(self.blob_err(tag, digest));
        }
        let path = self.blobs.path(digest);
        match self.blobs.check(digest, Some(layer.descriptor.size)).map_err(self.blob_err(tag, digest))? {
            BlobCheck::Valid => Ok(false),
            BlobCheck::Missing => {
                let source = io::Error::new(io::ErrorKind::NotFound, "not in the layout's blobs");
                Err(self.blob_err(tag, digest)(BlobError::Open(FsError::Io { path, source })))
            }
            BlobCheck::Evicted(why) => Err(self.blob_err(tag, digest)(BlobError::Corrupt { path, why })),
        }
    }

    fn write_blobs_and_tag(
        &self,
        tag: &str,
        images: &[ImageToWrite],
        placed: &mut Vec<Digest>,
    ) -> Result<Descriptor, LayoutError> {
        let mut manifests = Vec::with_capacity(images.len());
        let mut documents = Vec::new();
        self.place_layers(tag, images, placed)?;
        for image in images {
            documents.push(image.config.bytes.clone());
            let manifest = image.manifest();
            documents.push(manifest.bytes.clone());
            manifests.push((manifest, image.platform.clone()));
        }
        let entry = if let [(manifest, _)] = manifests.as_slice() {
            manifest.descriptor(&image_media_type(manifest))
        } else {
            let index = build_index(&manifests);
            documents.push(index.bytes.clone());
            index.descriptor(media_type::OCI_INDEX)
        };
        for bytes in &documents {
            self.put_document(bytes, tag, placed)?;
        }
        // Under the index lock: every blob is still there (another writer's failed write may
        // have removed one this write found present), then the entry.
        self.set_tag(tag, &entry, |layout| {
            for image in images {
                for layer in &image.layers {
                    if !layout.blobs.contains(&layer.descriptor.digest) && layout.place_layer(tag, layer)? {
                        placed.push(layer.descriptor.digest.clone());
                    }
                }
            }
            for bytes in &documents {
                layout.put_document(bytes, tag, placed)?;
            }
            Ok(())
        })
    }

    /// [`OciLayout::place_layer`] for every layer of `images` (each blob once), in parallel
    /// (see [`copy_in_parallel`]). Every blob placed is added to `placed`, also when another
    /// one fails.
    fn place_layers(&self, tag: &str, images: &[ImageToWrite], placed: &mut Vec<Digest>) -> Result<(), LayoutError> {
        let mut seen = BTreeSet::new();
        let layers: Vec<&LayerBlob> =
            images.iter().flat_map(|i| &i.layers).filter(|l| seen.insert(&l.descriptor.digest)).collect();
        let results = copy_in_parallel(&layers, |l| l.descriptor.size, |l| self.place_layer(tag, l));
        let mut first_error = None;
        for (layer, result) in layers.iter().zip(results) {
            match result {
                Ok(true) => placed.push(layer.descriptor.digest.clone()),
                Ok(false) => {}
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    fn put_document(&self, bytes: &[u8], tag: &str, placed: &mut Vec<Digest>) -> Result<(), LayoutError> {
        let digest = Digest::of(bytes);
        let (_, new) = self.blobs.put(bytes).map_err(self.blob_err(tag, &digest))?;
        if new {
            placed.push(digest);
        }
        Ok(())
    }

    /// After a failed write: removes the blobs it added, under the index lock, except those
    /// an `index.json` entry needs by now (another writer found them present and used them).
    fn discard_placed(&self, placed: &[Digest]) {
        if placed.is_empty() {
            return;
        }
        let Ok(_lock) = FileLock::exclusive_in(&self.dir, LOCK_FILE) else { return };
        let Ok(entries) = self.entries() else { return };
        let used: BTreeSet<&Digest> = entries.iter().flat_map(|e| &e.blobs).collect();
        for digest in placed.iter().filter(|d| !used.contains(d)) {
            let _ = self.blobs.remove(digest);
        }
    }

    /// After a failed first write into a layout [`OciLayout::create`] made: removes what it
    /// made, unless another process is using the layout or has written an entry into it.
    fn discard_fresh(&self) {
        if let Some(fresh) = &self.fresh {
            discard_fresh(&self.root, &self.dir, fresh);
        }
    }

    /// Points `tag` at `desc` (a manifest or index whose blobs are already in the layout),
    /// replacing what `tag` pointed at. Returns the entry written.
    pub fn tag(&self, tag: &str, desc: &Descriptor) -> Result<Descriptor, LayoutError> {
        self.set_tag(tag, desc, |_| Ok(()))
    }

    /// [`OciLayout::tag`], running `first` under the index lock before the entry is written.
    fn set_tag(
        &self,
        tag: &str,
        desc: &Descriptor,
        first: impl FnOnce(&Self) -> Result<(), LayoutError>,
    ) -> Result<Descriptor, LayoutError> {
        let mut entry = desc.clone();
        entry.annotations = Some([(ANNOTATION_REF_NAME.to_owned(), tag.to_owned())].into_iter().collect());
        let value = serde_json::to_value(&entry)
            .map_err(|e| self.io_err("encoding the index.json entry")(io::Error::other(e)))?;
        self.update_index(|manifests| {
            first(self)?;
            manifests.retain(|m| ref_name_of(m) != Some(tag));
            manifests.push(value);
            Ok(())
        })?;
        Ok(entry)
    }

    /// Removes the entry tagged `tag` from `index.json`. Returns whether there was one.
    /// Blobs are kept.
    pub fn remove(&self, tag: &str) -> Result<bool, LayoutError> {
        let mut removed = false;
        self.update_index(|manifests| {
            let before = manifests.len();
            manifests.retain(|m| ref_name_of(m) != Some(tag));
            removed = manifests.len() != before;
            Ok(())
        })?;
        Ok(removed)
    }

    /// Read-modify-write of `index.json`'s `manifests` under the layout lock (and in the
    /// layout's use lock), written atomically.
    fn update_index(&self, change: impl FnOnce(&mut Vec<Value>) -> Result<(), LayoutError>) -> Result<(), LayoutError> {
        let (_session, _) = self.enter(&[])?;
        let lock_path = self.dir.child_path(LOCK_FILE);
        let _lock = FileLock::exclusive_in(&self.dir, LOCK_FILE)
            .map_err(self.io_err(format!("locking {}", lock_path.display())))?;
        let mut index = self.read_index_value()?;
        let mut manifests = match index.remove("manifests") {
            Some(Value::Array(a)) => a,
            _ => Vec::new(),
        };
        change(&mut manifests)?;
        index.insert("manifests".into(), Value::Array(manifests));
        index.entry("schemaVersion").or_insert(json!(2));
        let bytes = serde_json::to_vec(&Value::Object(index))
            .map_err(|e| self.io_err("encoding index.json")(io::Error::other(e)))?;
        let mut file = AtomicFile::new_in_dir(&self.dir).map_err(self.io_err("writing index.json"))?;
        io::Write::write_all(&mut file, &bytes)
            .and_then(|()| file.commit_in(&self.dir, "index.json"))
            .map_err(self.io_err("writing index.json"))
    }

    /// Every `index.json` entry with the blobs it needs, read (and the documents checked
    /// against their digests) as far as they can be; what cannot be read is named in
    /// [`EntryBlobs::problems`]. Layers are checked to be present with their size, not
    /// hashed.
    pub fn entries(&self) -> Result<Vec<EntryBlobs>, LayoutError> {
        let mut out = Vec::new();
        for desc in self.index()?.manifests {
            let mut entry = EntryBlobs {
                tag: desc.ref_name().map(str::to_owned),
                digest: desc.digest.clone(),
                blobs: BTreeSet::new(),
                problems: Vec::new(),
            };
            self.collect(&desc, &mut entry, 0);
            out.push(entry);
        }
        Ok(out)
    }

    fn collect(&self, desc: &Descriptor, entry: &mut EntryBlobs, depth: usize) {
        let digest = &desc.digest;
        entry.blobs.insert(digest.clone());
        let read = |kind: &'static str| -> Result<Vec<u8>, String> {
            self.blobs.read_document(digest, kind).map_err(|e| format!("{kind} {digest}: {}", cnbx_fs::error_chain(&e)))
        };
        let invalid = |what: &str, e: serde_json::Error| format!("{what} {digest} is invalid: {}", JsonError::from(e));
        if media_type::is_index(&desc.media_type) {
            let index = read("an image index")
                .and_then(|b| serde_json::from_slice::<Index>(&b).map_err(|e| invalid("image index", e)));
            match index {
                Err(problem) => entry.problems.push(problem),
                Ok(_) if depth > 2 => entry.problems.push(format!("image index {digest} nests indexes too deeply")),
                Ok(index) => {
                    for m in &index.manifests {
                        self.collect(m, entry, depth + 1);
                    }
                }
            }
        } else if media_type::is_manifest(&desc.media_type) {
            let manifest = read("an image manifest")
                .and_then(|b| serde_json::from_slice::<Manifest>(&b).map_err(|e| invalid("image manifest", e)));
            let manifest = match manifest {
                Ok(m) => m,
                Err(problem) => return entry.problems.push(problem),
            };
            let blobs =
                std::iter::once(("config", &manifest.config)).chain(manifest.layers.iter().map(|l| ("layer", l)));
            for (what, blob) in blobs {
                entry.blobs.insert(blob.digest.clone());
                match self.blobs.size(&blob.digest) {
                    None => entry.problems.push(format!("{what} {} is missing", blob.digest)),
                    Some(size) if size != blob.size => entry.problems.push(format!(
                        "{what} {} has {size} bytes, but its descriptor says {}",
                        blob.digest, blob.size
                    )),
                    Some(_) => {}
                }
            }
        } else {
            entry
                .problems
                .push(format!("{digest} has an unsupported media type \"{}\"", cnbx_fs::excerpt(&desc.media_type)));
        }
    }
}

/// Takes the use lock of the layout `dir` (opened by `root`), shared, removing the temporary
/// files a killed process left in `<dir>`, `<dir>/blobs` (`blobs`, when it is open already)
/// and `extra` if no other process holds it (see [`OciLayout::enter`]).
fn enter_in(
    root: &Path,
    dir: &OpenDir,
    blobs: Option<&OpenDir>,
    extra: &[PathBuf],
) -> Result<(FileLock, Vec<RemovedTemporary>), LayoutError> {
    let sweep = || {
        let mut removed = cnbx_fs::remove_temporaries_in(dir)?;
        match blobs.cloned().map_or_else(|| dir.open_dir("blobs"), Ok) {
            Ok(blobs) => removed.extend(cnbx_fs::remove_temporaries_in(&blobs)?),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        for place in extra {
            removed.extend(cnbx_fs::remove_temporaries(place)?);
        }
        Ok(removed)
    };
    FileLock::enter_in(dir, USE_LOCK_FILE, sweep).map_err(|source| LayoutError::Io {
        path: root.to_path_buf(),
        what: format!("taking the use lock {}", dir.child_path(USE_LOCK_FILE).display()),
        source,
    })
}

/// After a failed first write into a layout [`OciLayout::create`] made (`fresh`, in `dir`,
/// opened by `root`): removes what it made, unless another process is using the layout or
/// has written an entry into it.
fn discard_fresh(root: &Path, dir: &OpenDir, fresh: &Fresh) {
    let Ok(Some(_lock)) = FileLock::try_exclusive_in(dir, USE_LOCK_FILE) else { return };
    let used = read_index_value(root, dir)
        .is_ok_and(|i| i.get("manifests").and_then(Value::as_array).is_some_and(|m| !m.is_empty()));
    if used {
        return;
    }
    if let Some(top) = &fresh.dir {
        let _ = std::fs::remove_dir_all(top);
        return;
    }
    let _ = cnbx_fs::remove_temporaries_in(dir);
    for entry in fresh.entries.iter().rev() {
        let _ = cnbx_fs::remove_path(entry);
    }
}

/// `index.json` of the layout `dir` (opened by `root`) as JSON (an empty index when the file
/// does not exist yet).
fn read_index_value(root: &Path, dir: &OpenDir) -> Result<Map<String, Value>, LayoutError> {
    let bytes = match dir.read_file("index.json", limits::MAX_DOCUMENT, "an image index (index.json)") {
        Ok(b) => b,
        Err(e) if e.is_not_found() => {
            let mut m = Map::new();
            m.insert("schemaVersion".into(), json!(2));
            m.insert("mediaType".into(), json!(media_type::OCI_INDEX));
            m.insert("manifests".into(), json!([]));
            return Ok(m);
        }
        Err(source) => return Err(LayoutError::File { path: root.to_path_buf(), source }),
    };
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(LayoutError::InvalidFile {
            path: root.to_path_buf(),
            file: "index.json",
            source: <serde_json::Error as serde::de::Error>::custom("not a JSON object").into(),
        }),
        Err(e) => Err(LayoutError::InvalidFile { path: root.to_path_buf(), file: "index.json", source: e.into() }),
    }
}

/// The media type of a written manifest (its own `mediaType`, OCI when absent).
fn image_media_type(manifest: &Raw<Manifest>) -> String {
    manifest.value.media_type.clone().unwrap_or_else(|| media_type::OCI_MANIFEST.to_owned())
}

/// The ref-name annotation of a raw `index.json` entry.
fn ref_name_of(entry: &Value) -> Option<&str> {
    entry.get("annotations")?.get(ANNOTATION_REF_NAME)?.as_str()
}

/// At most this many blob copies run at once (see [`copy_in_parallel`]).
const COPY_THREADS: usize = 8;

/// `copy` for every item, on up to [`COPY_THREADS`] threads, the largest items (by `size`)
/// first; results in the order of `items`. A copy hashes what it reads (CPU) and syncs what
/// it wrote before renaming it into place (waiting for the disk): with more copies than
/// cores, the cores work while some copies wait, which a pool of one thread per core cannot
/// do.
fn copy_in_parallel<T: Sync, R: Send>(items: &[T], size: impl Fn(&T) -> u64, copy: impl Fn(&T) -> R + Sync) -> Vec<R> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(size(&items[i])));
    let next = AtomicUsize::new(0);
    let threads = items.len().min(COPY_THREADS);
    let work = || {
        let mut done = Vec::new();
        while let Some(&i) = order.get(next.fetch_add(1, Ordering::Relaxed)) {
            done.push((i, copy(&items[i])));
        }
        done
    };
    let mut results: Vec<(usize, R)> = if threads <= 1 {
        work()
    } else {
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads).map(|_| scope.spawn(work)).collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
                .collect()
        })
    };
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_run_on_several_threads_largest_first_and_come_back_in_order() {
        use std::sync::Mutex;
        let sizes: Vec<u64> = vec![3, 50, 7, 50, 1, 20, 9, 4, 8, 6, 30, 2];
        let started = Mutex::new(Vec::new());
        let threads = Mutex::new(std::collections::HashSet::new());
        let results = copy_in_parallel(
            &sizes,
            |s| *s,
            |s| {
                started.lock().unwrap().push(*s);
                threads.lock().unwrap().insert(std::thread::current().id());
                std::thread::sleep(std::time::Duration::from_millis(5));
                if *s == 7 { Err(*s) } else { Ok(*s * 2) }
            },
        );
        let want: Vec<Result<u64, u64>> = sizes.iter().map(|s| if *s == 7 { Err(7) } else { Ok(s * 2) }).collect();
        assert_eq!(results, want, "every item, in the order given, also after a failure");
        let started = started.into_inner().unwrap();
        assert_eq!(started[..2], [50, 50], "the largest first: {started:?}");
        assert!(threads.into_inner().unwrap().len() > 1, "on several threads");
        assert!(copy_in_parallel(&Vec::<u64>::new(), |s| *s, |s| *s).is_empty());
    }

    #[test]
    fn create_writes_marker_and_empty_index() {
        let dir = tempfile::tempdir().unwrap();
        let l = OciLayout::create(dir.path().join("x")).unwrap();
        assert_eq!(std::fs::read_to_string(l.path().join("oci-layout")).unwrap(), OCI_LAYOUT_CONTENT);
        let index: Value = serde_json::from_slice(&std::fs::read(l.path().join("index.json")).unwrap()).unwrap();
        assert_eq!(index, json!({"schemaVersion": 2, "mediaType": media_type::OCI_INDEX, "manifests": []}));
        assert!(l.path().join("blobs/sha256").is_dir());
        assert!(l.list().unwrap().is_empty());
        // Opening again keeps it.
        OciLayout::create(l.path()).unwrap();
    }

    #[test]
    fn open_requires_marker() {
        let dir = tempfile::tempdir().unwrap();
        let err = OciLayout::open(dir.path()).unwrap_err().to_string();
        assert!(err.ends_with("is not an OCI image layout (it has no oci-layout file)"), "{err}");
    }

    #[test]
    fn unknown_fields_are_kept_and_missing_tag_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let l = OciLayout::create(dir.path()).unwrap();
        std::fs::write(
            l.path().join("index.json"),
            r#"{"schemaVersion":2,"x-extra":{"k":1},"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":0,"annotations":{"org.opencontainers.image.ref.name":"old","other":"v"},"x-entry":true}]}"#,
        )
        .unwrap();
        assert!(!l.remove("nope").unwrap());
        let v: Value = serde_json::from_slice(&std::fs::read(l.path().join("index.json")).unwrap()).unwrap();
        assert_eq!(v["x-extra"], json!({"k": 1}));
        assert_eq!(v["manifests"][0]["x-entry"], json!(true));
        let err = l.read_image("latest", None).unwrap_err().to_string();
        assert!(err.contains("no image tagged \"latest\" (tags: old)"), "{err}");
        assert!(l.remove("old").unwrap());
        assert_eq!(l.list().unwrap(), Vec::<String>::new());
    }
}
