//! Layers in one streaming pass: entries → tar → sha256 (diffID) → gzip → sha256 (blob
//! digest) → blob store.
//!
//! A layer is described by a [`LayerRecipe`]: an ordered list of [`LayerPart`]s, each either
//! one entry whose content is in memory or in a file on disk ([`LayerEntry`]), or all the
//! entries of an existing tar or tar.gz, passed through a mapping closure that can rename,
//! re-own or drop each one ([`ArchiveSource`]). Recipes are plain data: they can be hashed
//! into a cache key without reading any file content ([`crate::cache`]), and built on any
//! thread ([`crate::cache::build_layers`]).
//!
//! Building a recipe ([`LayerWriter`]) writes each entry with
//! [`crate::tarball::TarWriter`] into a [`HashingWriter`] (the diffID) and the chunked gzip
//! writer of [`crate::gzip`] (1 MiB chunks, each one gzip member made by libdeflate, level 5
//! unless the recipe says otherwise, chunks of one layer compressed in parallel), straight
//! into a [`BlobStore`] temporary file that hashes what it receives and is renamed to
//! `blobs/sha256/<digest>` on commit. File content is copied through fixed buffers, so
//! memory use does not grow with the layer, and no byte is read or compressed twice.
//!
//! The gzip bytes depend on the compressor: a golden test pins them. pack's compressed
//! digests (Go's `compress/gzip`) are never reproduced; its diffIDs are.
//!
//! [`walk_dir`] lists a directory the way pack's directory walk does (see its docs), as an
//! iterator of [`WalkEntry`]s with relative names that the caller maps into
//! [`LayerEntry`]s: this is where pack's module-stream rules (prefixing, modes, owners,
//! normalised times) are applied, in the builder, without walking twice.

use std::collections::HashMap;
use std::fmt;
use std::fs::Metadata;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::blobstore::{BlobError, BlobStore, BlobWriter};
use crate::confine::{Confinement, Confiner, EntryViolation};
use crate::digest::{Digest, HashingWriter};
use crate::image::{BlobSource, LayerBlob};
use crate::progress::{Reporter, Task, TaskKind};
use crate::spec::{Descriptor, media_type};
use crate::tarball::{EntryKind, TarEntry, TarError, TarTime, TarWriter};

/// gzip level used unless a recipe says otherwise (see [`crate::gzip::DEFAULT_LEVEL`]).
pub const DEFAULT_COMPRESSION_LEVEL: u32 = crate::gzip::DEFAULT_LEVEL;

/// A built layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerInfo {
    /// sha256 of the uncompressed tar.
    pub diff_id: Digest,
    /// The compressed blob: media type, digest, size.
    pub descriptor: Descriptor,
    /// Size of the uncompressed tar.
    pub uncompressed_size: u64,
}

impl LayerInfo {
    /// This layer as part of an image to write, its blob in `store`.
    pub fn to_layer_blob(&self, store: &BlobStore) -> LayerBlob {
        LayerBlob {
            descriptor: self.descriptor.clone(),
            diff_id: self.diff_id.clone(),
            source: BlobSource::Store(store.clone()),
        }
    }
}

/// Errors while building a layer. Each names the layer (the recipe's name).
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// Encoding an entry, or reading its content, failed.
    #[error("building layer {layer}")]
    Tar {
        /// Recipe name.
        layer: String,
        /// What failed.
        #[source]
        source: TarError,
    },
    /// A content file could not be opened.
    #[error("building layer {layer}: opening {}", path.display())]
    Open {
        /// Recipe name.
        layer: String,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A source archive could not be read.
    #[error("building layer {layer}: reading archive {}", path.display())]
    Archive {
        /// Recipe name.
        layer: String,
        /// The archive.
        path: PathBuf,
        /// What failed.
        #[source]
        source: TarError,
    },
    /// Compressing or writing the blob failed.
    #[error("building layer {layer}: writing the compressed blob")]
    Write {
        /// Recipe name.
        layer: String,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// Committing the blob to the store failed.
    #[error("building layer {layer}: storing the blob")]
    Store {
        /// Recipe name.
        layer: String,
        /// What failed.
        #[source]
        source: BlobError,
    },
    /// An entry may not be in this layer (see [`crate::confine`]).
    #[error("building layer {layer}")]
    Confined {
        /// Recipe name.
        layer: String,
        /// The entry and what is wrong with it.
        #[source]
        source: EntryViolation,
    },
    /// A content file is not the file that was listed when the recipe was made.
    #[error("building layer {layer}")]
    Changed {
        /// Recipe name.
        layer: String,
        /// What changed.
        #[source]
        source: cnbx_fs::FsError,
    },
    /// A source archive is larger than cnbx unpacks.
    #[error("building layer {layer}: archive {} {what}", path.display())]
    ArchiveLimit {
        /// Recipe name.
        layer: String,
        /// The archive.
        path: PathBuf,
        /// Which limit, and how to raise it.
        what: String,
    },
    /// Reading or writing the layer cache failed.
    #[error("building layer {layer}: layer cache {}", path.display())]
    Cache {
        /// Recipe name.
        layer: String,
        /// The cache file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

/// What identifies a file's content without reading it: path (kept by the caller), size,
/// modification time in nanoseconds, inode, device and mode. See [`crate::cache`] for why
/// this is enough.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct FileIdentity {
    /// Size in bytes.
    pub size: u64,
    /// Modification time in nanoseconds since the epoch.
    pub mtime_ns: i128,
    /// Inode number (0 where unknown).
    pub inode: u64,
    /// Device number (0 where unknown).
    pub dev: u64,
    /// Full `st_mode`, file type included (0 where unknown).
    pub mode: u32,
}

impl FileIdentity {
    /// The identity recorded in `meta` (from `symlink_metadata` or `metadata`).
    pub fn of(meta: &Metadata) -> Self {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            Self {
                size: meta.len(),
                mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
                inode: meta.ino(),
                dev: meta.dev(),
                mode: meta.mode(),
            }
        }
        #[cfg(not(unix))]
        {
            let mtime_ns = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos() as i128);
            Self { size: meta.len(), mtime_ns, inode: 0, dev: 0, mode: 0 }
        }
    }

    /// Stats `path` (following symlinks) and returns its identity.
    pub fn of_path(path: &Path) -> io::Result<Self> {
        Ok(Self::of(&fs_err::metadata(path)?))
    }

    /// The identity of an opened file.
    pub fn of_opened(f: &cnbx_fs::OpenedFile) -> Self {
        Self { size: f.size, mtime_ns: f.mtime_ns, inode: f.inode, dev: f.dev, mode: f.mode }
    }

    /// Opens `path` for reading if it is still the file this identity describes (a regular
    /// file with the same device, inode and size): see [`cnbx_fs::open_expected`].
    pub fn open(&self, path: &Path) -> Result<std::fs::File, cnbx_fs::FsError> {
        Ok(cnbx_fs::open_expected(path, self.dev, self.inode, self.size)?.file)
    }

    /// Like [`FileIdentity::open`], following symbolic links on the way (for archives named
    /// by the user, see [`open_archive_file`]).
    pub fn open_following(&self, path: &Path) -> Result<std::fs::File, cnbx_fs::FsError> {
        let o = open_archive_file(path).map_err(|source| cnbx_fs::FsError::Io { path: path.to_path_buf(), source })?;
        if o.dev != self.dev || o.inode != self.inode || o.size != self.size {
            return Err(cnbx_fs::FsError::Changed { path: path.to_path_buf() });
        }
        Ok(o.file)
    }
}

/// Where an entry's content comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryData {
    /// No content (directories, links, empty files).
    None,
    /// Content held in memory (generated files such as `order.toml`).
    Bytes(Vec<u8>),
    /// Content read from a file when the layer is built.
    File {
        /// The file to read.
        path: PathBuf,
        /// Its identity when the recipe was made (the cache key uses it instead of the
        /// content).
        identity: FileIdentity,
    },
}

/// One entry of a layer: the header to write and where its content is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerEntry {
    /// The header, written as given.
    pub header: TarEntry,
    /// The content; its length must equal [`TarEntry::data_len`].
    pub data: EntryData,
}

impl LayerEntry {
    /// An entry without content.
    pub fn new(header: TarEntry) -> Self {
        Self { header, data: EntryData::None }
    }

    /// An entry with in-memory content; sets the header's size to its length.
    pub fn bytes(mut header: TarEntry, data: impl Into<Vec<u8>>) -> Self {
        let data = data.into();
        header.size = data.len() as u64;
        Self { header, data: EntryData::Bytes(data) }
    }

    /// An entry whose content is the file at `path`; sets the header's size from
    /// `identity`.
    pub fn file(mut header: TarEntry, path: impl Into<PathBuf>, identity: FileIdentity) -> Self {
        header.size = identity.size;
        Self { header, data: EntryData::File { path: path.into(), identity } }
    }
}

/// The mapping applied to each entry of a source archive: return the entry to write
/// (possibly renamed or re-owned), `None` to drop it, or an error to fail the layer. The
/// content of a regular file is streamed from the archive, so a kept file must keep its
/// size.
pub type EntryMap = dyn Fn(TarEntry) -> Result<Option<TarEntry>, TarError> + Send + Sync;

/// All the entries of an existing tar or gzip-compressed tar (detected from its first
/// bytes), each passed through a mapping.
#[derive(Clone)]
pub struct ArchiveSource {
    /// The archive file.
    pub path: PathBuf,
    /// Its identity when the recipe was made.
    pub identity: FileIdentity,
    /// A description of what `map` does, unique to its behaviour, for the cache key (e.g.
    /// `"module-stream v1 /cnb/buildpacks/my_bp/0.0.1"`). Change it whenever the mapping
    /// changes, or stale layers will be served from the cache.
    pub mapping_id: String,
    map: Arc<EntryMap>,
}

impl fmt::Debug for ArchiveSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArchiveSource")
            .field("path", &self.path)
            .field("identity", &self.identity)
            .field("mapping_id", &self.mapping_id)
            .finish_non_exhaustive()
    }
}

impl ArchiveSource {
    /// The archive at `path` (stat'ed now), with `map` described by `mapping_id`.
    pub fn new(
        path: impl Into<PathBuf>,
        mapping_id: impl Into<String>,
        map: impl Fn(TarEntry) -> Result<Option<TarEntry>, TarError> + Send + Sync + 'static,
    ) -> io::Result<Self> {
        let path = path.into();
        let opened = open_archive_file(&path)?;
        let identity = FileIdentity::of_opened(&opened);
        Ok(Self { path, identity, mapping_id: mapping_id.into(), map: Arc::new(map) })
    }

    /// The archive's entries unchanged (re-encoded, which keeps their bytes when they were
    /// written by Go or by cnbx).
    pub fn verbatim(path: impl Into<PathBuf>) -> io::Result<Self> {
        Self::new(path, "verbatim", |e| Ok(Some(e)))
    }

    /// Applies the mapping to one entry.
    pub fn map(&self, entry: TarEntry) -> Result<Option<TarEntry>, TarError> {
        (self.map)(entry)
    }
}

/// Opens an archive named by whoever gave cnbx its path: symbolic links on the way are
/// followed (it was named on purpose), but it must be a regular file (a FIFO or a device
/// would never end); see [`cnbx_fs::open_regular_following`].
pub fn open_archive_file(path: &Path) -> io::Result<cnbx_fs::OpenedFile> {
    cnbx_fs::open_regular_following(path).map_err(|e| match e {
        cnbx_fs::FsError::Io { source, .. } => source,
        other => io::Error::new(io::ErrorKind::InvalidInput, other.to_string()),
    })
}

/// One piece of a layer.
// Entries are by far the common variant; boxing them would cost an allocation each.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum LayerPart {
    /// A single entry.
    Entry(LayerEntry),
    /// Every (mapped) entry of an archive.
    Archive(ArchiveSource),
}

/// Everything needed to build one layer.
#[derive(Debug, Clone)]
pub struct LayerRecipe {
    /// Name used in progress bars and error messages (e.g. `buildpack my/bp@0.0.1`). Also the
    /// progress task id, so keep it unique within a command.
    pub name: String,
    /// The entries, in archive order.
    pub parts: Vec<LayerPart>,
    /// gzip level, 1–12 on libdeflate's scale ([`DEFAULT_COMPRESSION_LEVEL`] by default).
    pub compression_level: u32,
    /// Media type of the blob (OCI gzip layer by default).
    pub media_type: String,
    /// Where its entries may go, checked for every entry as it is written (`None`: layers
    /// cnbx makes entirely itself).
    pub confinement: Option<Confinement>,
}

impl LayerRecipe {
    /// An empty recipe (which builds the 1024-byte empty tar).
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            parts: Vec::new(),
            compression_level: DEFAULT_COMPRESSION_LEVEL,
            media_type: media_type::OCI_LAYER_GZIP.to_owned(),
            confinement: None,
        }
    }

    /// Confines the layer's entries (see [`crate::confine`]).
    #[must_use]
    pub fn with_confinement(mut self, confinement: Confinement) -> Self {
        self.confinement = Some(confinement);
        self
    }

    /// Sets the gzip level.
    #[must_use]
    pub fn with_compression_level(mut self, level: u32) -> Self {
        self.compression_level = level;
        self
    }

    /// Sets the blob media type (e.g. Docker's gzip layer type).
    #[must_use]
    pub fn with_media_type(mut self, media_type: impl Into<String>) -> Self {
        self.media_type = media_type.into();
        self
    }

    /// Appends an entry.
    pub fn push(&mut self, entry: LayerEntry) {
        self.parts.push(LayerPart::Entry(entry));
    }

    /// Appends an entry with in-memory content (the header's size is set from it).
    pub fn push_bytes(&mut self, header: TarEntry, data: impl Into<Vec<u8>>) {
        self.push(LayerEntry::bytes(header, data));
    }

    /// Appends an entry without content.
    pub fn push_header(&mut self, header: TarEntry) {
        self.push(LayerEntry::new(header));
    }

    /// Appends the entries of an archive.
    pub fn push_archive(&mut self, source: ArchiveSource) {
        self.parts.push(LayerPart::Archive(source));
    }

    /// Total content bytes, when known up front (not for recipes with archives).
    pub fn input_size(&self) -> Option<u64> {
        self.parts.iter().try_fold(0u64, |acc, p| match p {
            LayerPart::Entry(e) => Some(acc + e.header.data_len()),
            LayerPart::Archive(_) => None,
        })
    }
}

impl Extend<LayerEntry> for LayerRecipe {
    fn extend<I: IntoIterator<Item = LayerEntry>>(&mut self, iter: I) {
        self.parts.extend(iter.into_iter().map(LayerPart::Entry));
    }
}

type GzipChain = HashingWriter<crate::gzip::ChunkedGzip<BlobWriter>>;

/// A layer being written; see the module docs. Usually driven by [`build_layer`].
pub struct LayerWriter {
    name: String,
    media_type: String,
    tar: TarWriter<GzipChain>,
    confiner: Option<Confiner>,
}

impl fmt::Debug for LayerWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LayerWriter").field("name", &self.name).finish_non_exhaustive()
    }
}

impl LayerWriter {
    /// Starts a layer named `name` (for errors) whose blob goes to `store`.
    pub fn new(store: &BlobStore, name: &str, compression_level: u32, media_type: &str) -> Result<Self, LayerError> {
        let blob = store.writer().map_err(|source| LayerError::Write { layer: name.to_owned(), source })?;
        let chain = HashingWriter::new(crate::gzip::ChunkedGzip::new(blob, compression_level));
        Ok(Self {
            name: name.to_owned(),
            media_type: media_type.to_owned(),
            tar: TarWriter::new(chain),
            confiner: None,
        })
    }

    /// Checks every entry appended from now on against `confinement`.
    #[must_use]
    pub fn confined(mut self, confinement: Option<Confinement>) -> Self {
        self.confiner = confinement.map(Confiner::new);
        self
    }

    fn check(&mut self, header: &TarEntry) -> Result<(), LayerError> {
        match &mut self.confiner {
            Some(c) => c.check(header).map_err(|source| LayerError::Confined { layer: self.name.clone(), source }),
            None => Ok(()),
        }
    }

    fn tar_err(&self) -> impl Fn(TarError) -> LayerError + '_ {
        |source| LayerError::Tar { layer: self.name.clone(), source }
    }

    /// Appends one entry whose content is read from `data`.
    pub fn append(&mut self, header: &TarEntry, data: impl Read) -> Result<u64, LayerError> {
        self.check(header)?;
        let r = self.tar.append(header, data);
        r.map_err(self.tar_err())
    }

    /// Appends one [`LayerEntry`], reporting content bytes to `progress`.
    pub fn append_entry(&mut self, entry: &LayerEntry, progress: &dyn Fn(u64)) -> Result<(), LayerError> {
        match &entry.data {
            EntryData::None => {
                self.append(&entry.header, io::empty())?;
            }
            EntryData::Bytes(b) => {
                self.append(&entry.header, b.as_slice())?;
                progress(b.len() as u64);
            }
            EntryData::File { path, identity } => {
                let file = identity.open(path).map_err(|source| match source {
                    cnbx_fs::FsError::Io { source, .. } => {
                        LayerError::Open { layer: self.name.clone(), path: path.clone(), source }
                    }
                    other => LayerError::Changed { layer: self.name.clone(), source: other },
                })?;
                self.append(&entry.header, ProgressReader { inner: file, progress })?;
            }
        }
        Ok(())
    }

    /// Appends every entry of `source` that its mapping keeps, reporting content bytes to
    /// `progress`.
    pub fn append_archive(&mut self, source: &ArchiveSource, progress: &dyn Fn(u64)) -> Result<(), LayerError> {
        let name = self.name.clone();
        let archive_err = |source_err: TarError| LayerError::Archive {
            layer: name.clone(),
            path: source.path.clone(),
            source: source_err,
        };
        let file = source.identity.open_following(&source.path).map_err(|source_err| match source_err {
            cnbx_fs::FsError::Io { source: e, .. } => {
                LayerError::Open { layer: name.clone(), path: source.path.clone(), source: e }
            }
            other => LayerError::Changed { layer: name.clone(), source: other },
        })?;
        let stream = crate::archive::decompressed(file).map_err(|e| archive_err(TarError::SourceHeader(e)))?;
        crate::archive::read_entries(
            stream,
            |header, entry| {
                let has_content = header.data_len() > 0;
                let Some(mapped) = source.map(header).map_err(archive_err)? else { return Ok(()) };
                let r = if has_content {
                    self.append(&mapped, ProgressReader { inner: entry, progress })
                } else {
                    self.append(&mapped, io::empty())
                };
                r.map(|_| ())
            },
            |e| match crate::archive::ArchiveLimit::find(&e) {
                Some(limit) => {
                    LayerError::ArchiveLimit { layer: name.clone(), path: source.path.clone(), what: limit.to_string() }
                }
                None => archive_err(TarError::SourceHeader(e)),
            },
        )
    }

    /// Appends one [`LayerPart`].
    pub fn append_part(&mut self, part: &LayerPart, progress: &dyn Fn(u64)) -> Result<(), LayerError> {
        match part {
            LayerPart::Entry(e) => self.append_entry(e, progress),
            LayerPart::Archive(a) => self.append_archive(a, progress),
        }
    }

    /// Ends the archive, finishes the gzip stream and commits the blob.
    pub fn finish(self) -> Result<LayerInfo, LayerError> {
        let name = self.name;
        let write_err = |source| LayerError::Write { layer: name.clone(), source };
        let chain = self.tar.finish().map_err(|source| LayerError::Tar { layer: name.clone(), source })?;
        let (gz, diff_id, uncompressed_size) = chain.finish();
        let blob = gz.finish().map_err(write_err)?;
        let (digest, size) = blob.commit(None).map_err(|source| LayerError::Store { layer: name.clone(), source })?;
        Ok(LayerInfo { diff_id, descriptor: Descriptor::new(self.media_type, digest, size), uncompressed_size })
    }
}

/// Counts bytes read and reports them.
struct ProgressReader<'a, R> {
    inner: R,
    progress: &'a dyn Fn(u64),
}

impl<R: Read> Read for ProgressReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            (self.progress)(n as u64);
        }
        Ok(n)
    }
}

/// Builds one layer into `store`, reporting a [`TaskKind::Build`] task (start, content bytes,
/// finish) named after the recipe. Does not consult any cache; see
/// [`crate::cache::LayerCache::get_or_build`].
pub fn build_layer(recipe: &LayerRecipe, store: &BlobStore, reporter: &dyn Reporter) -> Result<LayerInfo, LayerError> {
    let task =
        Task { id: recipe.name.clone(), label: recipe.name.clone(), kind: TaskKind::Build, total: recipe.input_size() };
    reporter.start(&task);
    let result = write_recipe(recipe, store, &|n| reporter.advance(&task.id, n));
    reporter.finish(&task.id);
    result
}

/// Builds `recipe` without reporting start/finish.
pub(crate) fn write_recipe(
    recipe: &LayerRecipe,
    store: &BlobStore,
    progress: &dyn Fn(u64),
) -> Result<LayerInfo, LayerError> {
    let mut w = LayerWriter::new(store, &recipe.name, recipe.compression_level, &recipe.media_type)?
        .confined(recipe.confinement.clone());
    for part in &recipe.parts {
        w.append_part(part, progress)?;
    }
    w.finish()
}

/// One entry of a directory walk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalkEntry {
    /// Path relative to the walked directory, `/`-separated, no leading `./`
    /// (`bin/build`).
    pub rel_path: String,
    /// Path on disk.
    pub abs_path: PathBuf,
    /// File, directory, symlink (with its target, verbatim) or hard link (to the relative
    /// path of the first entry seen with the same device and inode).
    pub kind: EntryKind,
    /// Permission bits, with setuid/setgid/sticky (`st_mode & 0o7777`).
    pub mode: u32,
    /// Owner uid.
    pub uid: u64,
    /// Owner gid.
    pub gid: u64,
    /// Modification time.
    pub mtime: TarTime,
    /// Content size for regular files (0 for everything else, hard links included).
    pub size: u64,
    /// Identity of the file, for cache keys and to check, when its content is read, that it
    /// is still the file listed here.
    pub identity: FileIdentity,
}

impl WalkEntry {
    /// The layer entry for this file with its on-disk metadata (name relative, owner,
    /// mode, mtime as found); callers then rename and normalise the header.
    pub fn into_layer_entry(self) -> LayerEntry {
        let mut header = TarEntry::new(self.rel_path, self.kind);
        header.mode = self.mode;
        header.uid = self.uid;
        header.gid = self.gid;
        header.mtime = self.mtime;
        header.size = self.size;
        let data = if header.kind == EntryKind::File && self.size > 0 {
            EntryData::File { path: self.abs_path, identity: self.identity }
        } else {
            EntryData::None
        };
        LayerEntry { header, data }
    }
}

/// A directory entry could not be listed.
#[derive(Debug, thiserror::Error)]
#[error("walking {}", path.display())]
pub struct WalkError {
    /// The path that failed.
    pub path: PathBuf,
    /// What failed.
    #[source]
    pub source: io::Error,
}

impl WalkError {
    fn fs(e: cnbx_fs::FsError) -> Self {
        match e {
            cnbx_fs::FsError::Io { path, source } => Self { path, source },
            cnbx_fs::FsError::Changed { path } => Self {
                path,
                source: io::Error::other(
                    "it changed while cnbx was reading it; make sure nothing modifies it during the command, then run it again",
                ),
            },
            other => Self { path: PathBuf::new(), source: io::Error::other(other) },
        }
    }
}

/// A file a walk left out: a FIFO, socket or device node, never part of a layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// Path relative to the walked directory.
    pub rel_path: String,
    /// What it is (`a FIFO`, ...).
    pub what: &'static str,
}

/// Walks `root` as pack walks a directory buildpack (docs/pack-compatibility.md, *Module layers*):
///
/// * depth first, parents before children, siblings in byte order of their names (Go's
///   `filepath.Walk`); the root itself is not listed;
/// * symlinks are listed as links with their target, never followed;
/// * a non-directory with more than one link becomes a [`EntryKind::Hardlink`] to the
///   first path seen with the same device and inode;
/// * sockets, FIFOs and device nodes are left out, and listed in [`DirWalk::skipped`] so
///   that the caller can say so. (pack skips only sockets and would write FIFOs and devices
///   as header-only entries; neither belongs in a buildpack, and a device node in a layer is
///   a hazard.)
/// * names must be UTF-8.
///
/// The walk goes through directory descriptors ([`cnbx_fs::SafeDir`]): replacing a
/// directory with a symbolic link while it runs cannot make it list anything outside
/// `root`. Only metadata is read; content is read when the layer is built, after checking
/// that each file is still the one listed ([`FileIdentity::open`]). Symbolic links leading to
/// `root` itself are followed: whoever named `root` chose it.
pub fn walk_dir(root: &Path) -> DirWalk {
    DirWalk { root: root.to_path_buf(), stack: Vec::new(), started: false, seen: HashMap::new(), skipped: Vec::new() }
}

/// One directory being listed: its descriptor, its entries and where the walk is in them.
struct Level {
    dir: cnbx_fs::SafeDir,
    rel: String,
    entries: std::vec::IntoIter<cnbx_fs::Listed>,
}

/// The iterator returned by [`walk_dir`].
pub struct DirWalk {
    root: PathBuf,
    stack: Vec<Level>,
    started: bool,
    seen: HashMap<(u64, u64), String>,
    skipped: Vec<Skipped>,
}

impl fmt::Debug for DirWalk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DirWalk").field("root", &self.root).finish_non_exhaustive()
    }
}

impl DirWalk {
    /// The special files left out so far.
    pub fn skipped(&self) -> &[Skipped] {
        &self.skipped
    }

    /// The innermost directory being listed.
    fn level(&self) -> Result<&Level, WalkError> {
        self.stack.last().ok_or_else(|| WalkError { path: self.root.clone(), source: io::Error::other("walk state") })
    }

    /// The walk entry of `listed`, the next name of the innermost directory. A directory is
    /// opened (and descended into next) before anything else is looked up about it: its
    /// metadata is that of the directory opened.
    fn entry(&mut self, listed: cnbx_fs::Listed) -> Result<Option<WalkEntry>, WalkError> {
        let level = self.level()?;
        let (info, opened) = if listed.dir {
            let (dir, info) = level.dir.open_dir_with_info(listed.name).map_err(WalkError::fs)?;
            (info, Some(dir))
        } else {
            (level.dir.stat(listed.name).map_err(WalkError::fs)?, None)
        };
        self.entry_of(info, opened)
    }

    fn entry_of(
        &mut self,
        info: cnbx_fs::DirEntryInfo,
        opened: Option<cnbx_fs::SafeDir>,
    ) -> Result<Option<WalkEntry>, WalkError> {
        let level = self.level()?;
        let abs_path = level.dir.path().join(&info.name);
        let err = |source: io::Error| WalkError { path: abs_path.clone(), source };
        let name = info
            .name
            .to_str()
            .ok_or_else(|| err(io::Error::new(io::ErrorKind::InvalidData, "file name is not UTF-8")))?;
        let rel_path = if level.rel.is_empty() { name.to_owned() } else { format!("{}/{name}", level.rel) };
        let identity = FileIdentity {
            size: info.size,
            mtime_ns: info.mtime_ns,
            inode: info.inode,
            dev: info.dev,
            mode: info.mode,
        };
        let mut kind = match info.kind {
            cnbx_fs::EntryType::Dir => EntryKind::Dir,
            cnbx_fs::EntryType::File => EntryKind::File,
            cnbx_fs::EntryType::Symlink => {
                let target = level.dir.read_link(&info.name).map_err(WalkError::fs)?;
                let target = target
                    .into_string()
                    .map_err(|_| err(io::Error::new(io::ErrorKind::InvalidData, "symlink target is not UTF-8")))?;
                EntryKind::Symlink { target }
            }
            cnbx_fs::EntryType::Other(what) => {
                self.skipped.push(Skipped { rel_path, what });
                return Ok(None);
            }
        };
        if kind == EntryKind::Dir {
            let mut dir = match opened {
                Some(dir) => dir,
                None => level.dir.open_dir(&info.name).map_err(WalkError::fs)?,
            };
            let entries = dir.names().map_err(WalkError::fs)?.into_iter();
            self.stack.push(Level { dir, rel: rel_path.clone(), entries });
        }
        let mut size = if kind == EntryKind::File { info.size } else { 0 };
        if kind != EntryKind::Dir && info.nlink > 1 {
            let key = (info.dev, info.inode);
            match self.seen.get(&key) {
                Some(first) => {
                    kind = EntryKind::Hardlink { target: first.clone() };
                    size = 0;
                }
                None => {
                    self.seen.insert(key, rel_path.clone());
                }
            }
        }
        let mtime = TarTime::new(
            i64::try_from(info.mtime_ns.div_euclid(1_000_000_000)).unwrap_or(0),
            u32::try_from(info.mtime_ns.rem_euclid(1_000_000_000)).unwrap_or(0),
        )
        .unwrap_or_default();
        Ok(Some(WalkEntry {
            rel_path,
            abs_path,
            kind,
            mode: info.mode & 0o7777,
            uid: info.uid,
            gid: info.gid,
            mtime,
            size,
            identity,
        }))
    }
}

impl Iterator for DirWalk {
    type Item = Result<WalkEntry, WalkError>;

    fn next(&mut self) -> Option<Self::Item> {
        if !self.started {
            self.started = true;
            let opened = cnbx_fs::SafeDir::open(&self.root).and_then(|mut d| Ok((d.names()?, d)));
            match opened {
                Ok((entries, dir)) => self.stack.push(Level { dir, rel: String::new(), entries: entries.into_iter() }),
                Err(e) => return Some(Err(WalkError::fs(e))),
            }
        }
        loop {
            let level = self.stack.last_mut()?;
            let Some(info) = level.entries.next() else {
                self.stack.pop();
                continue;
            };
            match self.entry(info) {
                Ok(Some(w)) => return Some(Ok(w)),
                Ok(None) => continue,
                Err(e) => {
                    self.stack.clear();
                    return Some(Err(e));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::NullReporter;

    #[test]
    fn empty_recipe_is_the_empty_tar() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let info = build_layer(&LayerRecipe::new("empty"), &store, &NullReporter).unwrap();
        assert_eq!(info.uncompressed_size, 1024);
        assert_eq!(info.diff_id, Digest::of(&[0; 1024]));
        assert_eq!(info.descriptor.media_type, media_type::OCI_LAYER_GZIP);
        assert_eq!(store.size(&info.descriptor.digest), Some(info.descriptor.size));
        let blob = store.read(&info.descriptor.digest).unwrap();
        assert_eq!(&blob[..10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255], "gzip header: mtime 0, no name, OS 255");
        let mut tar = Vec::new();
        flate2::read::MultiGzDecoder::new(&blob[..]).read_to_end(&mut tar).unwrap();
        assert_eq!(tar, vec![0; 1024]);
    }

    #[test]
    fn walk_order_is_gos() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for d in ["a", "a/b", "B"] {
            std::fs::create_dir(root.join(d)).unwrap();
        }
        for f in ["a.txt", "a/b/c", "a/z", "_"] {
            std::fs::write(root.join(f), f).unwrap();
        }
        let names: Vec<String> = walk_dir(root).map(|e| e.unwrap().rel_path).collect();
        assert_eq!(names, ["B", "_", "a", "a/b", "a/b/c", "a/z", "a.txt"]);
    }
}
