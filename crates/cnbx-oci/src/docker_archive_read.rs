//! Reading a docker-archive (what `docker save` writes) as an input image, in one pass over
//! the tar stream: a file named by `docker-archive:<FILE>[:<NAME>]`, or the stream a container
//! engine sends for `GET /images/{name}/get` ([`crate::engine`]).
//!
//! # The formats read
//!
//! * **Classic** (Docker up to 24, Podman, skopeo, cnbx itself): `manifest.json`
//!   (`[{"Config": "<file>", "RepoTags": [...], "Layers": ["<file>", ...]}]`), the config as a
//!   file of its own (`<hex>.json`), each layer as a file (`<v1 id>/layer.tar`, or
//!   `<diffID hex>.tar` with `<v1 id>/layer.tar` a symbolic link to it), plus files that are
//!   not read (`repositories`, each layer directory's `json` and `VERSION`).
//! * **OCI-flavoured** (Docker 25 and later): an OCI image layout (`oci-layout`, `index.json`,
//!   `blobs/sha256/<hex>`) that also has the classic `manifest.json`, whose `Config` and
//!   `Layers` name files under `blobs/sha256/`. `manifest.json` is read in both cases.
//!
//! Layers may be plain tars or gzip-compressed (`docker load` and skopeo accept both; cnbx's
//! own archives hold its gzip blobs). zstd layers are refused, naming the layer.
//!
//! # One pass, in any order
//!
//! The engines write `manifest.json` last, so nothing tells which file is a layer until the
//! end. Every file that could be a layer is therefore read as it comes: its content
//! (decompressed, if it is gzip) is hashed (its diffID) and compressed as cnbx compresses
//! layers ([`crate::gzip`], level [`crate::layer::DEFAULT_COMPRESSION_LEVEL`]) into a
//! temporary file of the blob store, and JSON documents (a file whose content starts with
//! `{`, at most [`limits::MAX_DOCUMENT`] bytes) are kept in memory. At the end, the image is
//! picked in `manifest.json`, its config parsed, and each layer file's diffID compared with
//! the config's `rootfs.diff_ids`: only then are the layers committed into the store (and
//! recorded in the layer cache by diffID, [`LayerCache::diff_id_key`]); the temporary files
//! of everything else are removed. A file named `blobs/sha256/<hex>` must hash to its name.
//!
//! A layer whose diffID is already in the layer cache, and whose file says so by its name
//! (`blobs/sha256/<diffID>` of a Docker 25 archive, `<diffID>.tar` of Podman's and skopeo's),
//! is not read at all: its cached blob is used if the config names that diffID. Classic
//! archives name layers by an ID from which the diffID cannot be told, so their layers are
//! read (and compressed) every time; the engine reader avoids the export altogether when
//! every layer is cached.
//!
//! # What is refused
//!
//! Hostile archives are expected (a docker-archive is someone else's file):
//!
//! * names that are absolute, climb out with `..`, or are not UTF-8;
//! * devices, FIFOs and other special entries;
//! * symbolic and hard links are kept only as aliases between the archive's own files (the
//!   form Podman and skopeo write): a link is followed only inside the archive, never on
//!   disk, at most [`MAX_LINK_HOPS`] times, and must end at a file of the archive;
//! * the bounds of [`crate::archive`] (bytes, entries, header sizes) on the archive, the
//!   same byte bound on each decompressed layer, [`MAX_DOCUMENTS_HELD`] bytes of documents
//!   held in memory, [`MAX_LAYER_FILES`] files that may be layers;
//! * a layer whose content is not the diffID its config gives, a `blobs/sha256/` file whose
//!   content is not its name, a config that is not a JSON object.
//!
//! Nothing is written into the store until the archive has been read whole and checked; the
//! layer cache records a layer only once its blob is committed.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read, Write};
use std::path::Path;

use cnbx_fs::limits;
use cnbx_refs::ImageRef;
use serde::Deserialize;

use crate::archive::ArchiveLimit;
use crate::blobstore::{BlobError, BlobStore, BlobWriter};
use crate::cache::LayerCache;
use crate::config::ImageConfig;
use crate::digest::{Digest, HashingWriter};
use crate::gzip::ChunkedGzip;
use crate::image::{BlobSource, SourceImage, list_for_message};
use crate::layer::{DEFAULT_COMPRESSION_LEVEL, LayerInfo};
use crate::progress::{Reporter, Task, TaskKind};
use crate::spec::{Descriptor, JsonError, Manifest, Raw, media_type};
use crate::tarball::{EntryKind, TarEntry};

/// The most links followed from one name.
pub const MAX_LINK_HOPS: usize = 8;

/// The most bytes of JSON documents (configs, manifests, indexes) held in memory while an
/// archive is read.
pub const MAX_DOCUMENTS_HELD: u64 = 64 * limits::MIB;

/// The most files of one archive that may be layers (each is compressed into a temporary
/// file until the archive has been read).
pub const MAX_LAYER_FILES: usize = 4096;

/// Reading a docker-archive failed. The message names the archive (`docker-archive:<FILE>`,
/// or the engine's export of an image).
#[derive(Debug, thiserror::Error)]
#[error("reading {archive}")]
pub struct ArchiveReadError {
    /// The archive, as it is named in messages.
    pub archive: String,
    /// What is wrong.
    #[source]
    pub problem: ArchiveProblem,
}

/// What is wrong with a docker-archive (see [`ArchiveReadError`]).
#[derive(Debug, thiserror::Error)]
pub enum ArchiveProblem {
    /// The file cannot be opened or read.
    #[error(transparent)]
    Io(io::Error),
    /// The tar stream is malformed, truncated, or over a bound (the message never quotes it).
    #[error(transparent)]
    Tar(io::Error),
    /// An entry's header cannot be read (never quoting it).
    #[error(transparent)]
    Entry(crate::tarball::TarError),
    /// An entry that is neither a file, a directory nor a link.
    #[error("entry '{entry}' is {what}; a docker-archive holds only files, directories and links between its files")]
    Special {
        /// The entry's name.
        entry: String,
        /// What it is.
        what: String,
    },
    /// An entry name that cannot be a file of the archive.
    #[error("entry '{entry}' {why}")]
    BadName {
        /// The name (an excerpt).
        entry: String,
        /// Why it is refused.
        why: &'static str,
    },
    /// A link that does not lead to a file of the archive.
    #[error("'{entry}' is a link that does not lead to a file of the archive")]
    BadLink {
        /// The link.
        entry: String,
    },
    /// No `manifest.json`.
    #[error("it has no manifest.json, so it is not a docker-archive{}", if *oci { " (it is an OCI image layout archive, which cnbx does not read; `skopeo copy oci-archive:... docker-archive:...` converts it)" } else { "" })]
    NoManifest {
        /// Whether it has an `index.json` (an `oci-archive`).
        oci: bool,
    },
    /// `manifest.json` cannot be parsed.
    #[error("its manifest.json is not valid: {0}")]
    Manifest(JsonError),
    /// Several images, and none was named.
    #[error("it holds {count} images ({tags}); name the one to read: docker-archive:<FILE>:<NAME>")]
    SeveralImages {
        /// How many.
        count: usize,
        /// Their tags.
        tags: String,
    },
    /// No image with the tag asked for.
    #[error("it holds no image tagged {wanted} (it has: {tags})")]
    NoSuchTag {
        /// The tag asked for.
        wanted: String,
        /// The tags it has.
        tags: String,
    },
    /// `manifest.json` names a file the archive does not hold.
    #[error("manifest.json names {what} '{path}', which the archive does not hold")]
    Missing {
        /// `the config` or `layer n`.
        what: String,
        /// The file.
        path: String,
    },
    /// The config is not an image config.
    #[error("its image config '{path}' is not valid")]
    Config {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: crate::config::ConfigError,
    },
    /// The config and `manifest.json` disagree on the number of layers.
    #[error("manifest.json lists {layers} layers, but the image config has {diff_ids} diff_ids")]
    LayerCount {
        /// Layers in `manifest.json`.
        layers: usize,
        /// diffIDs in the config.
        diff_ids: usize,
    },
    /// A layer file is not the layer the config names.
    #[error(
        "layer {index} ('{path}') is not the layer its config names: its content hashes to {actual}, the config says {expected}"
    )]
    DiffId {
        /// 1-based position.
        index: usize,
        /// The file.
        path: String,
        /// diffID from the config.
        expected: Digest,
        /// What the content hashes to.
        actual: Digest,
    },
    /// A `blobs/sha256/<hex>` file whose content is something else.
    #[error("'{path}' does not hold the blob its name says: its content hashes to {actual}")]
    BlobName {
        /// The file.
        path: String,
        /// What its content hashes to.
        actual: Digest,
    },
    /// A layer compressed in a way cnbx does not read.
    #[error(
        "layer '{path}' is compressed with zstd, which cnbx does not read; `docker save` of the image writes plain layers"
    )]
    Zstd {
        /// The file.
        path: String,
    },
    /// A layer file that is a JSON document too large to be a layer of the archive... or
    /// anything the reader could not treat as a layer.
    #[error("layer {index} ('{path}') is not a tar stream")]
    NotALayer {
        /// 1-based position.
        index: usize,
        /// The file.
        path: String,
    },
    /// Too many documents in memory.
    #[error("it holds more than {limit} bytes of JSON documents")]
    TooManyDocuments {
        /// The limit.
        limit: u64,
    },
    /// Too many files that may be layers.
    #[error("it holds more than {limit} files that may be layers")]
    TooManyLayerFiles {
        /// The limit.
        limit: usize,
    },
    /// A decompressed layer is larger than cnbx unpacks.
    #[error("layer '{path}': {limit}")]
    LayerLimit {
        /// The file.
        path: String,
        /// The bound and how to raise it.
        limit: ArchiveLimit,
    },
    /// Writing a layer or the config into the blob store failed.
    #[error("storing what it holds")]
    Store(#[source] BlobError),
    /// Writing the layer cache failed.
    #[error("recording a layer in the layer cache {}", dir.display())]
    Cache {
        /// The cache directory.
        dir: std::path::PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

/// Which family of media types the image read gets (its manifest is made by cnbx: a
/// docker-archive holds none, or one for uncompressed layers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveFormat {
    /// The classic format: Docker schema 2 media types, as `docker push` of it would use.
    Classic,
    /// Docker 25's OCI-flavoured format: OCI media types.
    Oci,
}

impl ArchiveFormat {
    /// The manifest, config and layer media types of this family.
    pub fn media_types(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Self::Classic => (media_type::DOCKER_MANIFEST, media_type::DOCKER_CONFIG, media_type::DOCKER_LAYER_GZIP),
            Self::Oci => (media_type::OCI_MANIFEST, media_type::OCI_CONFIG, media_type::OCI_LAYER_GZIP),
        }
    }
}

/// An image read from a docker-archive: its layers are in the blob store, compressed as cnbx
/// compresses layers, and so is its config.
#[derive(Debug, Clone)]
pub struct ArchiveImage {
    /// The image, its blobs in the store given to the reader. Its manifest is made by cnbx
    /// (the media types of [`ArchiveImage::format`]); its config has the archive's bytes.
    pub image: SourceImage,
    /// The image's `RepoTags` in the archive, as written there.
    pub repo_tags: Vec<String>,
    /// The layers, base first (diffID, blob, uncompressed size).
    pub layers: Vec<LayerInfo>,
    /// Which format the archive had.
    pub format: ArchiveFormat,
    /// How many layers were taken from the layer cache without being read from the archive.
    pub layers_from_cache: usize,
}

/// Where what is read goes.
#[derive(Clone, Copy)]
pub struct ArchiveSink<'a> {
    /// Where the layers (compressed) and the config are stored.
    pub store: &'a BlobStore,
    /// The layer cache consulted and filled by diffID (none: every layer is read).
    pub cache: Option<&'a LayerCache>,
    /// Progress: one task for the archive, advanced by the bytes read.
    pub reporter: &'a dyn Reporter,
}

impl std::fmt::Debug for ArchiveSink<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArchiveSink").field("store", &self.store).field("cache", &self.cache).finish_non_exhaustive()
    }
}

/// Reads the docker-archive `file` (named by the user: a symbolic link to it is followed;
/// plain or gzip-compressed), picking the image tagged `reference` (or the only image), into
/// `sink`. See the module docs.
pub fn read_docker_archive(
    file: &Path,
    reference: Option<&ImageRef>,
    sink: ArchiveSink<'_>,
) -> Result<ArchiveImage, ArchiveReadError> {
    let archive = match reference {
        Some(r) => format!("docker-archive:{}:{}", file.display(), r.original()),
        None => format!("docker-archive:{}", file.display()),
    };
    let err = |problem| ArchiveReadError { archive: archive.clone(), problem };
    let opened = crate::layer::open_archive_file(file).map_err(|e| err(ArchiveProblem::Io(e)))?;
    let size = opened.size;
    let stream = crate::archive::decompressed(opened.file).map_err(|e| err(ArchiveProblem::Io(e)))?;
    read_docker_archive_stream(stream, &archive, Some(size), reference, sink)
}

/// Reads a docker-archive from `stream` (an uncompressed tar: see
/// [`crate::archive::decompressed`]), named `archive` in messages, `size` bytes long if
/// known (for progress), picking the image tagged `reference` (or the only image).
pub fn read_docker_archive_stream(
    stream: impl Read,
    archive: &str,
    size: Option<u64>,
    reference: Option<&ImageRef>,
    sink: ArchiveSink<'_>,
) -> Result<ArchiveImage, ArchiveReadError> {
    let err = |problem| ArchiveReadError { archive: archive.to_owned(), problem };
    let task = Task { id: format!("read {archive}"), label: archive.to_owned(), kind: TaskKind::Pull, total: size };
    sink.reporter.start(&task);
    let progress = ProgressCount { reporter: sink.reporter, id: &task.id, inner: stream };
    let scanned = scan(progress, sink);
    sink.reporter.finish(&task.id);
    let files = scanned.map_err(err)?;
    files.finish(archive, reference, sink).map_err(err)
}

/// Counts the bytes read and reports them.
struct ProgressCount<'a, R> {
    reporter: &'a dyn Reporter,
    id: &'a str,
    inner: R,
}

impl<R: Read> Read for ProgressCount<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            self.reporter.advance(self.id, n as u64);
        }
        Ok(n)
    }
}

/// A file of the archive, as far as the reader kept it.
enum File {
    /// A small JSON document, in memory.
    Document(Vec<u8>),
    /// A file that may be a layer, compressed into a temporary blob.
    Layer(PendingLayer),
    /// A layer found in the cache by its name, not read.
    Cached(LayerInfo),
    /// A zstd-compressed file.
    Zstd,
    /// A file not kept (legacy metadata, or nothing that can be a layer).
    Skipped,
}

/// A layer compressed into a temporary blob, not yet committed.
struct PendingLayer {
    writer: BlobWriter,
    diff_id: Digest,
    uncompressed_size: u64,
}

/// What one pass found.
struct Files {
    files: HashMap<String, File>,
    links: HashMap<String, String>,
    oci_index: bool,
    layer_files: usize,
}

/// A file's content kind, from its first bytes.
#[derive(PartialEq, Eq)]
enum Content {
    Gzip,
    Zstd,
    Json,
    Other,
}

fn content_kind(head: &[u8]) -> Content {
    if head.starts_with(&[0x1f, 0x8b]) {
        Content::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Content::Zstd
    } else if head.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
        Content::Json
    } else {
        Content::Other
    }
}

/// The cleaned name of an entry (no `./`, no trailing `/`), or why it is refused.
fn clean_name(raw: &str) -> Result<String, &'static str> {
    if raw.starts_with('/') {
        return Err("is an absolute path");
    }
    if raw.contains('\0') {
        return Err("has a NUL byte in its name");
    }
    let mut parts = Vec::new();
    for part in raw.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err("climbs out of the archive with '..'"),
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
}

/// The name a link in directory `dir` pointing at `target` leads to, inside the archive.
fn link_target(dir: &str, target: &str) -> Option<String> {
    if target.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = if dir.is_empty() { Vec::new() } else { dir.split('/').collect() };
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

/// Names of files an archive has that the reader never needs.
fn is_legacy_metadata(name: &str) -> bool {
    name == "repositories" || name == "oci-layout" || name.ends_with("/VERSION") || name.ends_with("/json")
}

/// The hex digest a file name promises, for `blobs/sha256/<hex>` (the content's digest) and
/// for `<hex>.tar` (the diffID of the layer, as Podman and skopeo name them).
fn named_digest(name: &str) -> Option<(Digest, bool)> {
    let (hex, is_blob) = match name.strip_prefix("blobs/sha256/") {
        Some(hex) => (hex, true),
        None => (name.strip_suffix(".tar").filter(|h| !h.contains('/'))?, false),
    };
    let digest: Digest = format!("sha256:{hex}").parse().ok()?;
    Some((digest, is_blob))
}

/// Reads every entry of `stream`.
fn scan(stream: impl Read, sink: ArchiveSink<'_>) -> Result<Files, ArchiveProblem> {
    let mut found = Files { files: HashMap::new(), links: HashMap::new(), oci_index: false, layer_files: 0 };
    let mut held: u64 = 0;
    crate::archive::read_entries(
        stream,
        |header: TarEntry, entry: &mut dyn Read| {
            let name = clean_name(&header.path)
                .map_err(|why| ArchiveProblem::BadName { entry: cnbx_fs::excerpt(&header.path), why })?;
            match &header.kind {
                EntryKind::Dir => return Ok(()),
                EntryKind::Symlink { target } => {
                    let dir = name.rsplit_once('/').map_or("", |(d, _)| d);
                    let to = link_target(dir, target)
                        .ok_or_else(|| ArchiveProblem::BadLink { entry: cnbx_fs::excerpt(&name) })?;
                    found.links.insert(name, to);
                    return Ok(());
                }
                EntryKind::Hardlink { target } => {
                    let to =
                        clean_name(target).map_err(|_| ArchiveProblem::BadLink { entry: cnbx_fs::excerpt(&name) })?;
                    found.links.insert(name, to);
                    return Ok(());
                }
                EntryKind::Other { typeflag, .. } => {
                    let what = match typeflag {
                        b'3' => "a character device".to_owned(),
                        b'4' => "a block device".to_owned(),
                        b'6' => "a FIFO".to_owned(),
                        t => format!("of type '{}'", char::from(*t).escape_default()),
                    };
                    return Err(ArchiveProblem::Special { entry: cnbx_fs::excerpt(&name), what });
                }
                EntryKind::File => {}
            }
            if name == "index.json" {
                found.oci_index = true;
            }
            let file = if is_legacy_metadata(&name) {
                File::Skipped
            } else {
                read_file(entry, &name, header.size, sink, &mut held, &mut found.layer_files)?
            };
            found.files.insert(name, file);
            Ok(())
        },
        ArchiveProblem::Tar,
    )?;
    Ok(found)
}

/// Reads one file: a document into memory, anything else that may be a layer into a
/// temporary blob (or not at all, when its name gives a cached diffID).
fn read_file(
    entry: &mut dyn Read,
    name: &str,
    size: u64,
    sink: ArchiveSink<'_>,
    held: &mut u64,
    layer_files: &mut usize,
) -> Result<File, ArchiveProblem> {
    let named = named_digest(name);
    if let (Some((diff_id, _)), Some(cache)) = (&named, sink.cache)
        && let Some(info) = cached_layer(cache, sink.store, diff_id)
    {
        return Ok(File::Cached(info));
    }
    let mut head = [0u8; 512];
    let got = read_up_to(entry, &mut head)?;
    let head = &head[..got];
    let kind = content_kind(head);
    if kind == Content::Zstd {
        return Ok(File::Zstd);
    }
    if kind == Content::Json && size <= limits::MAX_DOCUMENT || name == "manifest.json" || name == "index.json" {
        if size > limits::MAX_DOCUMENT {
            return Err(ArchiveProblem::TooManyDocuments { limit: limits::MAX_DOCUMENT });
        }
        *held += size;
        if *held > MAX_DOCUMENTS_HELD {
            return Err(ArchiveProblem::TooManyDocuments { limit: MAX_DOCUMENTS_HELD });
        }
        let mut bytes = head.to_vec();
        entry.take(size.saturating_sub(got as u64)).read_to_end(&mut bytes).map_err(ArchiveProblem::Tar)?;
        check_blob_name(name, named.as_ref(), &Digest::of(&bytes))?;
        return Ok(File::Document(bytes));
    }
    *layer_files += 1;
    if *layer_files > MAX_LAYER_FILES {
        return Err(ArchiveProblem::TooManyLayerFiles { limit: MAX_LAYER_FILES });
    }
    let mut raw = crate::digest::HashingReader::new(io::Cursor::new(head.to_vec()).chain(entry));
    let pending = compress(&mut raw, kind == Content::Gzip, name, sink.store)?;
    let (_, raw_digest, _) = raw.finish();
    check_blob_name(name, named.as_ref(), &raw_digest)?;
    Ok(File::Layer(pending))
}

/// Fills `buf` as far as `r` allows.
fn read_up_to(r: &mut (impl Read + ?Sized), buf: &mut [u8]) -> Result<usize, ArchiveProblem> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ArchiveProblem::Tar(e)),
        }
    }
    Ok(got)
}

/// A `blobs/sha256/<hex>` file must hash to its name.
fn check_blob_name(name: &str, named: Option<&(Digest, bool)>, actual: &Digest) -> Result<(), ArchiveProblem> {
    match named {
        Some((expected, true)) if expected != actual => {
            Err(ArchiveProblem::BlobName { path: cnbx_fs::excerpt(name), actual: actual.clone() })
        }
        _ => Ok(()),
    }
}

/// The layer with `diff_id` in the cache, with its blob in `store`.
pub(crate) fn cached_layer(cache: &LayerCache, store: &BlobStore, diff_id: &Digest) -> Option<LayerInfo> {
    // Either family's key: the blob is the same bytes.
    [media_type::DOCKER_LAYER_GZIP, media_type::OCI_LAYER_GZIP]
        .iter()
        .find_map(|mt| cache.lookup(&LayerCache::diff_id_key(diff_id, DEFAULT_COMPRESSION_LEVEL, mt), store))
}

/// Hashes the tar read from `raw` (gunzipped first when `gzip`) and compresses it into a
/// temporary blob of `store`.
fn compress(raw: &mut impl Read, gzip: bool, name: &str, store: &BlobStore) -> Result<PendingLayer, ArchiveProblem> {
    let writer = store
        .writer()
        .map_err(|source| ArchiveProblem::Store(BlobError::Write { store: store.root().to_path_buf(), source }))?;
    let mut chain = HashingWriter::new(ChunkedGzip::new(writer, DEFAULT_COMPRESSION_LEVEL));
    let limit = limits::max_unpacked_size();
    let copied = if gzip {
        let mut tar = Bounded { inner: flate2::read::MultiGzDecoder::new(raw), left: limit, limit };
        copy(&mut tar, &mut chain)
    } else {
        copy(raw, &mut chain)
    };
    copied.map_err(|e| match ArchiveLimit::find(&e) {
        Some(ArchiveLimit::Unpacked { limit }) => {
            ArchiveProblem::LayerLimit { path: cnbx_fs::excerpt(name), limit: ArchiveLimit::Unpacked { limit: *limit } }
        }
        _ if e.get_ref().is_some_and(|i| i.is::<WriteFailed>()) => {
            ArchiveProblem::Store(BlobError::Write { store: store.root().to_path_buf(), source: e })
        }
        _ => ArchiveProblem::Tar(crate::archive::safe_io(e)),
    })?;
    let (gz, diff_id, uncompressed_size) = chain.finish();
    let writer = gz
        .finish()
        .map_err(|source| ArchiveProblem::Store(BlobError::Write { store: store.root().to_path_buf(), source }))?;
    Ok(PendingLayer { writer, diff_id, uncompressed_size })
}

/// Marks an error from the writing side of [`copy`].
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct WriteFailed(io::Error);

/// Copies `from` into `to` through a fixed buffer; errors writing are wrapped in
/// [`WriteFailed`] so that they are not taken for a malformed archive.
fn copy(from: &mut impl Read, to: &mut impl Write) -> io::Result<u64> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        to.write_all(&buf[..n]).map_err(|e| io::Error::other(WriteFailed(e)))?;
        total += n as u64;
    }
}

/// A reader failing past `limit` bytes with [`ArchiveLimit::Unpacked`].
struct Bounded<R> {
    inner: R,
    left: u64,
    limit: u64,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n as u64 > self.left {
            return Err(io::Error::new(io::ErrorKind::InvalidData, ArchiveLimit::Unpacked { limit: self.limit }));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// One image of `manifest.json`.
#[derive(Debug, Deserialize)]
struct ManifestItem {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    layers: Vec<String>,
}

impl Files {
    /// The file `name` leads to, through links inside the archive.
    fn resolve(&self, name: &str) -> Result<Option<(&str, &File)>, ArchiveProblem> {
        let mut current =
            clean_name(name).map_err(|why| ArchiveProblem::BadName { entry: cnbx_fs::excerpt(name), why })?;
        for _ in 0..=MAX_LINK_HOPS {
            if let Some((key, file)) = self.files.get_key_value(current.as_str()) {
                return Ok(Some((key.as_str(), file)));
            }
            match self.links.get(&current) {
                Some(next) => current = next.clone(),
                None => return Ok(None),
            }
        }
        Err(ArchiveProblem::BadLink { entry: cnbx_fs::excerpt(name) })
    }

    /// Picks the image, checks it, commits its layers and config, and builds the image.
    fn finish(
        mut self,
        archive: &str,
        reference: Option<&ImageRef>,
        sink: ArchiveSink<'_>,
    ) -> Result<ArchiveImage, ArchiveProblem> {
        let Some(File::Document(manifest)) = self.files.get("manifest.json") else {
            return Err(ArchiveProblem::NoManifest { oci: self.oci_index });
        };
        let items: Vec<ManifestItem> =
            serde_json::from_slice(manifest).map_err(|e| ArchiveProblem::Manifest(JsonError::from(e)))?;
        let item = pick(items, reference)?;
        let format = if item.config.starts_with("blobs/") { ArchiveFormat::Oci } else { ArchiveFormat::Classic };
        let (_, _, layer_type) = format.media_types();

        let config_bytes = match self.resolve(&item.config)? {
            Some((_, File::Document(bytes))) => bytes.clone(),
            _ => {
                return Err(ArchiveProblem::Missing {
                    what: "the config".into(),
                    path: cnbx_fs::excerpt(&item.config),
                });
            }
        };
        let config = ImageConfig::from_slice(&config_bytes)
            .map_err(|source| ArchiveProblem::Config { path: cnbx_fs::excerpt(&item.config), source })?;
        let diff_ids = config
            .diff_ids()
            .map_err(|source| ArchiveProblem::Config { path: cnbx_fs::excerpt(&item.config), source })?;
        if diff_ids.len() != item.layers.len() {
            return Err(ArchiveProblem::LayerCount { layers: item.layers.len(), diff_ids: diff_ids.len() });
        }

        // Which file each layer is, checked against its diffID.
        let mut chosen: Vec<String> = Vec::with_capacity(item.layers.len());
        for (i, (path, expected)) in item.layers.iter().zip(&diff_ids).enumerate() {
            let shown = || cnbx_fs::excerpt(path);
            let Some((key, file)) = self.resolve(path)? else {
                return Err(ArchiveProblem::Missing { what: format!("layer {}", i + 1), path: shown() });
            };
            let actual = match file {
                File::Layer(p) => p.diff_id.clone(),
                File::Cached(info) => info.diff_id.clone(),
                File::Zstd => return Err(ArchiveProblem::Zstd { path: shown() }),
                File::Document(bytes) => Digest::of(bytes),
                File::Skipped => return Err(ArchiveProblem::NotALayer { index: i + 1, path: shown() }),
            };
            if actual != *expected {
                return Err(ArchiveProblem::DiffId { index: i + 1, path: shown(), expected: expected.clone(), actual });
            }
            chosen.push(key.to_owned());
        }

        // Commit the chosen layers (each file once, however many times it is used).
        let mut committed: BTreeMap<String, LayerInfo> = BTreeMap::new();
        let mut from_cache = 0;
        for key in &chosen {
            if committed.contains_key(key) {
                continue;
            }
            let file = self.files.remove(key).unwrap_or(File::Skipped);
            let info = match file {
                File::Cached(info) => {
                    from_cache += 1;
                    info
                }
                File::Layer(p) => commit(p, layer_type, sink)?,
                File::Document(bytes) => {
                    let mut raw = io::Cursor::new(bytes);
                    commit(compress(&mut raw, false, key, sink.store)?, layer_type, sink)?
                }
                File::Zstd | File::Skipped => unreachable!("checked above"),
            };
            committed.insert(key.clone(), info);
        }
        let layers: Vec<LayerInfo> =
            chosen.iter().filter_map(|k| committed.get(k)).map(|info| retyped(info, layer_type)).collect();

        let image = assemble(archive, config_bytes, config, &layers, format, sink.store)?;
        Ok(ArchiveImage {
            image,
            repo_tags: item.repo_tags.unwrap_or_default(),
            layers,
            format,
            layers_from_cache: from_cache,
        })
    }
}

impl ArchiveImage {
    /// The same image with the media types of `format` (the blobs are the same bytes).
    pub fn in_family(mut self, format: ArchiveFormat) -> Self {
        if format == self.format {
            return self;
        }
        let (manifest_type, config_type, layer_type) = format.media_types();
        self.layers = self.layers.iter().map(|l| retyped(l, layer_type)).collect();
        let mut manifest = self.image.manifest.value.clone();
        manifest.media_type = Some(manifest_type.to_owned());
        manifest.config.media_type = config_type.to_owned();
        manifest.layers = self.layers.iter().map(|l| l.descriptor.clone()).collect();
        self.image.manifest = Raw::new(manifest);
        self.format = format;
        self
    }
}

/// The image made of `config_bytes` (stored into `store` here) and `layers` (in `store`
/// already), with a manifest of `format`'s media types.
pub(crate) fn assemble(
    display: &str,
    config_bytes: Vec<u8>,
    config: ImageConfig,
    layers: &[LayerInfo],
    format: ArchiveFormat,
    store: &BlobStore,
) -> Result<SourceImage, ArchiveProblem> {
    let (manifest_type, config_type, _) = format.media_types();
    let config_digest = store.put_bytes(&config_bytes).map_err(ArchiveProblem::Store)?;
    let manifest = Raw::new(Manifest {
        schema_version: 2,
        media_type: Some(manifest_type.to_owned()),
        config: Descriptor::new(config_type, config_digest.clone(), config_bytes.len() as u64),
        layers: layers.iter().map(|l| l.descriptor.clone()).collect(),
        annotations: None,
    });
    let config_raw =
        Raw { value: serde_json::Value::Object(config.as_json().clone()), bytes: config_bytes, digest: config_digest };
    Ok(SourceImage {
        display_name: display.to_owned(),
        manifest,
        config,
        config_raw,
        index_platform: None,
        source: BlobSource::Store(store.clone()),
    })
}

/// `info` with the layer media type of the image's family (the blob is the same bytes).
fn retyped(info: &LayerInfo, layer_type: &str) -> LayerInfo {
    let mut info = info.clone();
    info.descriptor.media_type = layer_type.to_owned();
    info
}

/// Commits a pending layer into the store and records it in the cache.
fn commit(pending: PendingLayer, layer_type: &str, sink: ArchiveSink<'_>) -> Result<LayerInfo, ArchiveProblem> {
    let (digest, size) = pending.writer.commit(None).map_err(ArchiveProblem::Store)?;
    let info = LayerInfo {
        diff_id: pending.diff_id,
        descriptor: Descriptor::new(layer_type, digest, size),
        uncompressed_size: pending.uncompressed_size,
    };
    if let Some(cache) = sink.cache {
        let key = LayerCache::diff_id_key(&info.diff_id, DEFAULT_COMPRESSION_LEVEL, layer_type);
        cache.record(&key, &info).map_err(|source| ArchiveProblem::Cache { dir: cache.dir().to_path_buf(), source })?;
    }
    Ok(info)
}

/// The image of `manifest.json` tagged `reference`, or the only one.
fn pick(items: Vec<ManifestItem>, reference: Option<&ImageRef>) -> Result<ManifestItem, ArchiveProblem> {
    let all_tags = |items: &[ManifestItem]| {
        let tags: Vec<&str> = items.iter().flat_map(|i| i.repo_tags.iter().flatten()).map(String::as_str).collect();
        if tags.is_empty() { "no tags".to_owned() } else { list_for_message(tags) }
    };
    let Some(wanted) = reference else {
        if items.len() == 1 {
            return Ok(items.into_iter().next().unwrap_or_else(|| unreachable!()));
        }
        return Err(ArchiveProblem::SeveralImages { count: items.len(), tags: all_tags(&items) });
    };
    let wanted_key = wanted.with_tag(wanted.tag().unwrap_or(cnbx_refs::reference::DEFAULT_TAG)).to_string();
    let tags = all_tags(&items);
    items
        .into_iter()
        .find(|item| {
            item.repo_tags.iter().flatten().any(|t| ImageRef::parse(t).is_ok_and(|r| r.to_string() == wanted_key))
        })
        .ok_or_else(|| ArchiveProblem::NoSuchTag { wanted: wanted.original().to_owned(), tags })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_cleaned_or_refused() {
        assert_eq!(clean_name("./a/b/").unwrap(), "a/b");
        assert_eq!(clean_name("manifest.json").unwrap(), "manifest.json");
        assert!(clean_name("/etc/passwd").is_err());
        assert!(clean_name("a/../../x").is_err());
        assert_eq!(link_target("v1", "../abc.tar").unwrap(), "abc.tar");
        assert_eq!(link_target("", "x/../y").unwrap(), "y");
        assert!(link_target("", "../x").is_none());
        assert!(link_target("a", "/etc/passwd").is_none());
    }

    #[test]
    fn file_names_that_promise_a_digest() {
        let hex = "a".repeat(64);
        assert!(named_digest(&format!("blobs/sha256/{hex}")).unwrap().1);
        assert!(!named_digest(&format!("{hex}.tar")).unwrap().1);
        assert!(named_digest(&format!("x/{hex}.tar")).is_none());
        assert!(named_digest("blobs/sha256/zz").is_none());
        assert!(named_digest(&format!("{hex}/layer.tar")).is_none());
    }
}
