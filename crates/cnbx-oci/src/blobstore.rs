//! A content-addressed blob store: `<root>/blobs/sha256/<hex>`, the blob half of an OCI
//! image layout.
//!
//! **Nothing enters a store under a digest its bytes do not have.** Every way in hashes the
//! bytes while they are written and commits them only when the digest matches:
//!
//! * [`BlobStore::writer`] (layers being built, blobs being downloaded) and
//!   [`BlobStore::put_bytes`] (documents in memory);
//! * [`BlobStore::put_verified`]: a stream from someone else (an entry of a buildpackage),
//!   refused beyond a size limit;
//! * [`BlobStore::import_blob`] / [`BlobStore::import_from`]: a blob of another store (an OCI
//!   layout given as input, or the local store when writing an `oci:` output), copied, never
//!   hard-linked, so that the two stores never share a file.
//!
//! Blobs are written through [`cnbx_fs::AtomicFile`]: a temporary file in `<root>/blobs/`
//! (same file system) with the mode a user expects under their umask, synced, renamed into
//! place. A reader never sees a partial blob; two processes writing the same blob both
//! succeed (the content is identical); an interrupted write leaves at most a temporary file
//! named `.cnbx-tmp-*`.
//!
//! **Never through a symbolic link.** `blobs/` and `blobs/sha256/` are opened once, as
//! directories and without following a link ([`cnbx_fs::OpenDir`]; a link there is an error
//! naming it), and every blob is looked up, read, created, renamed and removed relative to
//! them. A symbolic link, FIFO, device or directory in `blobs/sha256/` is refused, never
//! followed or waited on, with an error naming the file (so the layout and the blob): read,
//! it is not the blob; at the name a new blob is to take, it is an error, never replaced or
//! written through. Whole reads are bounded ([`BlobStore::read_document`]),
//! and streaming reads can be checked as they go ([`BlobStore::open_verified`]).
//!
//! **A blob already present is checked before it is reused.** Bytes on disk can change after
//! they were verified (a disk error, a stray write, an edit by hand), so every way in that
//! finds its blob already there, and every caller about to reuse a blob ([`BlobStore::check`]:
//! the layer cache, images read from the local store), hashes the stored file first, once
//! per process and store (the result is remembered, and blobs this process wrote count as
//! checked). A file that does not hash to its name (or does not have the size its
//! descriptor gives) is **evicted**: removed, forgotten, and reported as a warning through
//! the store's reporter ([`BlobStore::set_reporter`]), so that the caller rebuilds or
//! downloads it again, or, where it cannot, fails naming it.
//!
//! **A store can be made read-only** for the rest of the process ([`BlobStore::set_read_only`]:
//! a dry run, a check): every write into it then fails with an error naming the store, and a
//! corrupt blob is reported and treated as missing, but not removed.

use std::collections::HashSet;
use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use cnbx_fs::{AtomicFile, EntryType, FsError, OpenDir, OpenedFile, limits};
use sha2::{Digest as _, Sha256};

use crate::digest::{Digest, HashingWriter};
use crate::progress::{Reporter, ReporterExt};
use crate::spec::Descriptor;

/// Size of the buffer blobs are copied through.
const COPY_BUFFER: usize = 256 * 1024;

/// How much of a blob written into an [output](BlobStore::set_output) is written before
/// the kernel is asked to start writing it to disk.
pub const WRITE_BACK_STEP: u64 = 4 << 20;

/// Errors from the blob store. Each names the file or the stream it is about.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// A blob could not be opened or read whole: it is missing, not a regular file (a
    /// symbolic link, a FIFO, a device, a directory), or too large to be read into memory.
    /// The message names the file, which names the store and the blob.
    #[error(transparent)]
    Open(#[from] FsError),
    /// Reading a blob's content failed.
    #[error("reading {from}")]
    Read {
        /// The file or stream (`/x/blobs/sha256/…`, `the stream`).
        from: String,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// Writing into the store failed.
    #[error("writing into the blob store {}", store.display())]
    Write {
        /// The store's root.
        store: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The content does not hash to the digest it was given under.
    #[error("{from} does not hold blob {expected}: its content hashes to {actual}")]
    Mismatch {
        /// Where the content came from (a file, `the content written`, `the stream`).
        from: String,
        /// Digest the content should have had.
        expected: Digest,
        /// Digest it had.
        actual: Digest,
    },
    /// A stored blob was found corrupt when it was about to be used, and was removed.
    #[error("{} was corrupt ({why}) and has been removed; run the command again to build or download it again", path.display())]
    Corrupt {
        /// The blob's file.
        path: PathBuf,
        /// What was wrong.
        why: String,
    },
    /// The content is larger than it may be.
    #[error("{from} does not hold blob {digest}: it has more than the {limit} bytes {what}")]
    TooLarge {
        /// Where the content came from.
        from: String,
        /// The blob.
        digest: Digest,
        /// The limit.
        limit: u64,
        /// What the limit is (`its descriptor gives`, `allowed for it`).
        what: &'static str,
    },
    /// The content is shorter than its descriptor says.
    #[error("{from} does not hold blob {digest}: it has {actual} bytes, but its descriptor says {expected}")]
    TooShort {
        /// Where the content came from.
        from: String,
        /// The blob.
        digest: Digest,
        /// Size from the descriptor.
        expected: u64,
        /// Bytes found.
        actual: u64,
    },
}

impl BlobError {
    /// The blob error carried by an I/O error from [`VerifiedReader`], or the I/O error
    /// itself.
    pub fn from_io(e: io::Error) -> Result<Self, io::Error> {
        io_payload(e)
    }

    /// Whether the blob is missing (as opposed to unreadable or corrupt).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Open(e) if e.is_not_found())
    }
}

/// What [`BlobStore::check`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobCheck {
    /// Present, with the size asked for, and its content hashes to its digest.
    Valid,
    /// Not present (a symbolic link or other special file is not a blob either).
    Missing,
    /// Present, but not the blob: it was removed (unless the store is
    /// [read-only](BlobStore::set_read_only)). The text says what was wrong.
    Evicted(String),
}

/// A file found in a store's `blobs/` directory by [`BlobStore::files`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFile {
    /// Its path.
    pub path: PathBuf,
    /// The blob it is named for; `None` for anything that is not named like a blob
    /// (`blobs/sha256/<64 hex>`), such as a temporary file.
    pub digest: Option<Digest>,
    /// Its size (0 for what is not a regular file).
    pub size: u64,
    /// Whether it is a regular file (a blob is never a link, a directory or a device).
    pub regular: bool,
}

/// What every clone of a store shares: the blobs checked so far, and where warnings go.
#[derive(Default)]
struct Shared {
    checked: Mutex<HashSet<Digest>>,
    reporter: OnceLock<Arc<dyn Reporter>>,
    read_only: AtomicBool,
    /// See [`BlobStore::set_output`].
    output: AtomicBool,
}

/// A directory of content-addressed blobs. Clones share what was checked (see the module
/// docs).
#[derive(Clone)]
pub struct BlobStore {
    root: PathBuf,
    /// `blobs/`, where blobs are written before they are renamed into `sha256`.
    blobs: OpenDir,
    /// `blobs/sha256/`.
    sha256: OpenDir,
    shared: Arc<Shared>,
}

impl fmt::Debug for BlobStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlobStore").field("root", &self.root).finish_non_exhaustive()
    }
}

impl BlobStore {
    /// Opens (creating if needed) the blob store under `root`. Directories are created with
    /// the mode the umask gives. Links leading to `root` are followed (whoever gave the path
    /// named it); `blobs/` and `blobs/sha256/` must be directories, not links.
    pub fn open(root: impl Into<PathBuf>) -> io::Result<Self> {
        Self::open_in(&OpenDir::create(&root.into())?)
    }

    /// Opens (creating if needed) the blob store in the open directory `root`: its `blobs/`
    /// and `blobs/sha256/` are created (the mode the umask gives) and opened without
    /// following a link; a link (or anything but a directory) there is an error naming it.
    pub fn open_in(root: &OpenDir) -> io::Result<Self> {
        let blobs = root.create_dir("blobs")?;
        let sha256 = blobs.create_dir("sha256")?;
        Ok(Self { root: root.path().to_path_buf(), blobs, sha256, shared: Arc::default() })
    }

    /// `blobs/`, as opened.
    pub(crate) fn blobs_dir(&self) -> &OpenDir {
        &self.blobs
    }

    /// Where warnings about evicted blobs go (the first reporter set wins).
    pub fn set_reporter(&self, reporter: Arc<dyn Reporter>) {
        let _ = self.shared.reporter.set(reporter);
    }

    /// Makes this store (and every clone of it) read-only for the rest of the process: every
    /// write fails with [`io::ErrorKind::PermissionDenied`] naming the store, and a corrupt blob
    /// found by [`BlobStore::check`] is reported and treated as missing but left in place.
    /// For commands that must leave the store as it is (a dry run).
    pub fn set_read_only(&self) {
        self.shared.read_only.store(true, Ordering::SeqCst);
    }

    /// Marks this store (and every clone of it) as an output that this process writes and
    /// does not read back: the data of each blob written into it goes to disk while it is
    /// written ([`AtomicFile::write_back_every`], every [`WRITE_BACK_STEP`] bytes), so that
    /// committing it waits for little.
    pub fn set_output(&self) {
        self.shared.output.store(true, Ordering::SeqCst);
    }

    /// Whether [`BlobStore::set_read_only`] was called.
    pub fn is_read_only(&self) -> bool {
        self.shared.read_only.load(Ordering::SeqCst)
    }

    /// The error every write into a read-only store fails with.
    fn refuse_write(&self) -> io::Error {
        io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("the blob store {} is read-only for this command", self.root.display()),
        )
    }

    fn checked(&self) -> std::sync::MutexGuard<'_, HashSet<Digest>> {
        self.shared.checked.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Checks a present blob before it is reused: its size (`size`, when given) and its
    /// content are hashed against `digest` (once per process; see the module docs). A file
    /// that is not the blob is evicted, with a warning. An I/O error reading it is an error;
    /// a file that is not there, or not a regular file, is [`BlobCheck::Missing`].
    pub fn check(&self, digest: &Digest, size: Option<u64>) -> Result<BlobCheck, BlobError> {
        self.check_with(digest, size, true)
    }

    fn check_with(&self, digest: &Digest, size: Option<u64>, hash: bool) -> Result<BlobCheck, BlobError> {
        let path = self.path(digest);
        let opened = match self.sha256.open_file(digest.hex()) {
            Ok(o) => o,
            Err(e) if e.is_not_found() => return Ok(BlobCheck::Missing),
            Err(FsError::NotRegular { .. }) => return Ok(BlobCheck::Missing),
            Err(e) => return Err(e.into()),
        };
        if let Some(size) = size.filter(|s| *s != opened.size) {
            return Ok(self.evict(
                digest,
                &opened,
                format!("it has {} bytes, but its descriptor says {size}", opened.size),
            ));
        }
        if !hash || self.checked().contains(digest) {
            return Ok(BlobCheck::Valid);
        }
        let actual =
            hash_file(&opened.file).map_err(|source| BlobError::Read { from: path.display().to_string(), source })?;
        if actual != *digest {
            return Ok(self.evict(digest, &opened, format!("its content hashes to {actual}")));
        }
        self.checked().insert(digest.clone());
        Ok(BlobCheck::Valid)
    }

    /// Like [`BlobStore::check`], without hashing the content: the blob is there, a regular
    /// file of the size asked for (a file of another size is evicted). Only for a caller
    /// whose every use of the blob checks its digest as it reads it (a copy into another
    /// store, a docker-archive, an upload), and which [checks](BlobStore::check) it when such
    /// a use fails: hashing it here too would read it twice.
    pub fn check_present(&self, digest: &Digest, size: Option<u64>) -> Result<BlobCheck, BlobError> {
        self.check_with(digest, size, false)
    }

    /// Whether the blob is present and [valid](BlobStore::check) (evicting it if it is not).
    pub fn has_valid(&self, digest: &Digest, size: Option<u64>) -> Result<bool, BlobError> {
        Ok(self.check(digest, size)? == BlobCheck::Valid)
    }

    /// Removes the file `opened` (blob `digest`, found wrong because of `why`) and reports
    /// it. The file is removed only if it is still the one at the blob's path: a good copy
    /// renamed there meanwhile by another process stays. A read-only store keeps the file.
    fn evict(&self, digest: &Digest, opened: &OpenedFile, why: String) -> BlobCheck {
        if self.is_read_only() {
            self.checked().remove(digest);
            if let Some(reporter) = self.shared.reporter.get() {
                reporter.warn(&format!(
                    "blob {digest} in {} is corrupt ({why}); it was left in place (this command writes nothing), and \
                     is treated as missing",
                    self.root.display()
                ));
            }
            return BlobCheck::Evicted(why);
        }
        let same = self
            .sha256
            .stat(digest.hex())
            .ok()
            .flatten()
            .is_some_and(|m| m.dev == opened.dev && m.inode == opened.inode);
        if same {
            let _ = self.sha256.remove_file(digest.hex());
        }
        self.checked().remove(digest);
        if let Some(reporter) = self.shared.reporter.get() {
            reporter.warn(&format!(
                "blob {digest} in {} was corrupt ({why}); it was removed, to be built or downloaded again",
                self.root.display()
            ));
        }
        BlobCheck::Evicted(why)
    }

    /// Removes blob `digest` (if present).
    pub fn remove(&self, digest: &Digest) -> io::Result<()> {
        if self.is_read_only() {
            return Err(self.refuse_write());
        }
        self.checked().remove(digest);
        self.sha256.remove_file(digest.hex()).map(|_| ())
    }

    /// Every file under `blobs/` (what is named like a blob, and anything else found there:
    /// temporary files, stray files), not following links. For checking and pruning.
    pub fn files(&self) -> io::Result<Vec<StoredFile>> {
        let listed = |dir: &OpenDir| dir.entries().map_err(io::Error::other);
        let stored = |dir: &OpenDir, e: &cnbx_fs::DirEntryInfo, digest| {
            let regular = e.kind == EntryType::File;
            StoredFile { path: dir.child_path(&e.name), digest, size: if regular { e.size } else { 0 }, regular }
        };
        let mut files = Vec::new();
        for entry in listed(&self.blobs)? {
            let algorithm = entry.name.to_string_lossy().into_owned();
            if entry.kind != EntryType::Dir || cnbx_fs::is_temporary_name(&algorithm) {
                files.push(stored(&self.blobs, &entry, None));
                continue;
            }
            let dir = if algorithm == "sha256" { self.sha256.clone() } else { self.blobs.open_dir(&entry.name)? };
            for blob in listed(&dir)? {
                let digest = format!("{algorithm}:{}", blob.name.to_string_lossy()).parse::<Digest>().ok();
                files.push(stored(&dir, &blob, digest));
            }
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(files)
    }

    /// Hashes a present blob (a regular file) and returns the digest of its content, without
    /// evicting anything: for reports.
    pub fn content_digest(&self, digest: &Digest) -> Result<Digest, BlobError> {
        let opened = self.open_regular(digest)?;
        hash_file(&opened.file)
            .map_err(|source| BlobError::Read { from: self.path(digest).display().to_string(), source })
    }

    /// The directory holding `blobs/`.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where blob `digest` lives (whether or not it exists).
    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs").join(digest.algorithm()).join(digest.hex())
    }

    /// Whether the blob is present (as a regular file; a symbolic link is not a blob).
    pub fn contains(&self, digest: &Digest) -> bool {
        self.size(digest).is_some()
    }

    /// Size of a present blob (a regular file; a symbolic link is not a blob).
    pub fn size(&self, digest: &Digest) -> Option<u64> {
        self.sha256.stat(digest.hex()).ok().flatten().filter(|e| e.kind == EntryType::File).map(|e| e.size)
    }

    /// Opens a present blob, refusing anything but a regular file.
    fn open_regular(&self, digest: &Digest) -> Result<OpenedFile, BlobError> {
        Ok(self.sha256.open_file(digest.hex())?)
    }

    /// Opens a present blob for reading (a symbolic link, FIFO, device or directory is
    /// refused). The content is not checked; see [`BlobStore::open_verified`].
    pub fn open_blob(&self, digest: &Digest) -> Result<File, BlobError> {
        Ok(self.open_regular(digest)?.file)
    }

    /// Opens a present blob for reading while checking it: the reader fails, before it
    /// hands out the last bytes, when the content does not hash to `digest` or its size is
    /// not `size` (the file's own size when `None`). See [`VerifiedReader`].
    pub fn open_verified(&self, digest: &Digest, size: Option<u64>) -> Result<VerifiedReader<File>, BlobError> {
        let opened = self.open_regular(digest)?;
        let path = self.path(digest);
        let size = size.unwrap_or(opened.size);
        if opened.size < size {
            return Err(too_short(&path, digest, size, opened.size));
        }
        Ok(VerifiedReader::new(opened.file, digest.clone(), size, path.display().to_string()))
    }

    /// Reads a whole blob of at most `limit` bytes into memory and checks its digest
    /// (`kind` names it in errors: `an image manifest`).
    pub fn read_bounded(&self, digest: &Digest, limit: u64, kind: &'static str) -> Result<Vec<u8>, BlobError> {
        let bytes = self.sha256.read_file(digest.hex(), limit, kind)?;
        let actual = Digest::of(&bytes);
        if actual != *digest {
            return Err(BlobError::Mismatch {
                from: self.path(digest).display().to_string(),
                expected: digest.clone(),
                actual,
            });
        }
        Ok(bytes)
    }

    /// Reads a whole document blob (a manifest, index or config: at most
    /// [`limits::MAX_DOCUMENT`] bytes) and checks its digest. `kind` names it in errors.
    pub fn read_document(&self, digest: &Digest, kind: &'static str) -> Result<Vec<u8>, BlobError> {
        self.read_bounded(digest, limits::MAX_DOCUMENT, kind)
    }

    /// Reads a whole small blob; see [`BlobStore::read_document`].
    pub fn read(&self, digest: &Digest) -> Result<Vec<u8>, BlobError> {
        self.read_document(digest, "a blob read into memory")
    }

    /// Starts writing a new blob whose digest is computed as it is written.
    pub fn writer(&self) -> io::Result<BlobWriter> {
        if self.is_read_only() {
            return Err(self.refuse_write());
        }
        let mut file = AtomicFile::new_in_dir(&self.blobs)?;
        if self.shared.output.load(Ordering::SeqCst) {
            file.write_back_every(WRITE_BACK_STEP);
        }
        Ok(BlobWriter { store: self.clone(), inner: HashingWriter::new(file) })
    }

    /// Stores `bytes` and returns their digest.
    pub fn put_bytes(&self, bytes: &[u8]) -> Result<Digest, BlobError> {
        self.put(bytes).map(|(digest, _)| digest)
    }

    /// Stores `bytes` (unless a [valid](BlobStore::check) copy is there) and returns their
    /// digest and whether this call placed the blob.
    pub fn put(&self, bytes: &[u8]) -> Result<(Digest, bool), BlobError> {
        let digest = Digest::of(bytes);
        if self.has_valid(&digest, Some(bytes.len() as u64))? {
            return Ok((digest, false));
        }
        let mut w = self.writer().map_err(|e| self.write_err(e))?;
        w.write_all(bytes).map_err(|e| self.write_err(e))?;
        let placed = w.finish(Some(&digest), "the content written".to_owned())?;
        Ok((digest, placed.placed))
    }

    /// Stores the content read from `reader`, which comes from someone else (an entry of a
    /// buildpackage, say), as blob `expected`: streamed into a temporary file of the store
    /// while hashed, refused as soon as it exceeds `max_size` bytes, and committed only
    /// when it hashes to `expected`. On any error nothing is left behind. Returns the
    /// blob's size.
    ///
    /// When the store already has a [valid](BlobStore::check) `expected`, `reader` is not
    /// read at all and the size of the stored blob is returned.
    ///
    /// ```no_run
    /// # fn f(store: &cnbx_oci::BlobStore, entry: impl std::io::Read, digest: &cnbx_oci::Digest, size: u64)
    /// # -> Result<(), cnbx_oci::blobstore::BlobError> {
    /// // An entry `blobs/sha256/<hex>` of a tar, whose header gives its size:
    /// store.put_verified(entry, digest, size)?;
    /// # Ok(()) }
    /// ```
    pub fn put_verified(&self, reader: impl Read, expected: &Digest, max_size: u64) -> Result<u64, BlobError> {
        if self.has_valid(expected, None)?
            && let Some(size) = self.size(expected)
        {
            return Ok(size);
        }
        self.ingest(reader, "the stream".to_owned(), expected, Limit { max: max_size, exact: false })
            .map(|placed| placed.size)
    }

    /// Makes blob `digest` of `other` present here: copied while hashed (no extra pass),
    /// committed only when its content has that digest. A [valid](BlobStore::check) blob
    /// already here is kept. Returns whether this call placed the blob.
    pub fn import_from(&self, other: &Self, digest: &Digest) -> Result<bool, BlobError> {
        self.import(other, digest, None)
    }

    /// Like [`BlobStore::import_from`] for the blob `desc` describes, whose size must be
    /// `desc.size` too.
    pub fn import_blob(&self, other: &Self, desc: &Descriptor) -> Result<bool, BlobError> {
        self.import(other, &desc.digest, Some(desc.size))
    }

    fn import(&self, other: &Self, digest: &Digest, size: Option<u64>) -> Result<bool, BlobError> {
        if self.has_valid(digest, size)? {
            return Ok(false);
        }
        let src = other.path(digest);
        let opened = other.open_regular(digest)?;
        let limit = match size {
            Some(size) if opened.size < size => return Err(too_short(&src, digest, size, opened.size)),
            Some(size) => Limit { max: size, exact: true },
            None => Limit { max: opened.size, exact: true },
        };
        self.ingest(opened.file, src.display().to_string(), digest, limit).map(|placed| placed.placed)
    }

    /// Copies `reader` into a new blob, at most `limit.max` bytes (exactly, when
    /// `limit.exact`), and commits it if it hashes to `expected`.
    fn ingest(
        &self,
        mut reader: impl Read,
        from: String,
        expected: &Digest,
        limit: Limit,
    ) -> Result<Placed, BlobError> {
        let mut w = self.writer().map_err(|e| self.write_err(e))?;
        let mut buf = vec![0u8; COPY_BUFFER];
        loop {
            // One byte more than allowed is asked for, to tell "exactly the limit" from "more".
            let room = limit.max.saturating_sub(w.written()).saturating_add(1);
            let want = usize::try_from(room).unwrap_or(usize::MAX).min(buf.len());
            let n = match reader.read(&mut buf[..want]) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => return Err(BlobError::Read { from, source }),
            };
            if w.written() + n as u64 > limit.max {
                let what = if limit.exact { "its descriptor gives" } else { "allowed for it" };
                return Err(BlobError::TooLarge { from, digest: expected.clone(), limit: limit.max, what });
            }
            w.write_all(&buf[..n]).map_err(|e| self.write_err(e))?;
        }
        let written = w.written();
        if limit.exact && written < limit.max {
            return Err(BlobError::TooShort { from, digest: expected.clone(), expected: limit.max, actual: written });
        }
        w.finish(Some(expected), from)
    }

    fn write_err(&self, source: io::Error) -> BlobError {
        BlobError::Write { store: self.root.clone(), source }
    }
}

/// How many bytes a blob being ingested may have.
#[derive(Clone, Copy)]
struct Limit {
    max: u64,
    /// Whether it must have exactly `max` (its descriptor's size).
    exact: bool,
}

fn too_short(path: &Path, digest: &Digest, expected: u64, actual: u64) -> BlobError {
    BlobError::TooShort { from: path.display().to_string(), digest: digest.clone(), expected, actual }
}

/// The error of type `T` an I/O error carries (an error a reader or stream wrapped in an
/// I/O error), or the I/O error itself.
pub(crate) fn io_payload<T: std::error::Error + Send + Sync + 'static>(e: io::Error) -> Result<T, io::Error> {
    if !e.get_ref().is_some_and(|inner| inner.is::<T>()) {
        return Err(e);
    }
    let kind = e.kind();
    match e.into_inner() {
        Some(inner) => inner.downcast::<T>().map(|b| *b).map_err(|other| io::Error::new(kind, other)),
        None => Err(io::Error::from(kind)),
    }
}

/// A blob committed by [`BlobWriter::finish`].
struct Placed {
    digest: Digest,
    size: u64,
    /// Whether this writer's file became the blob (no valid copy was there).
    placed: bool,
}

/// The digest of what `file` holds, read from its start.
fn hash_file(mut file: &File) -> io::Result<Digest> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; COPY_BUFFER];
    loop {
        match file.read(&mut buf) {
            Ok(0) => return Ok(Digest::from_hasher(hasher)),
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// A blob being written; see [`BlobStore::writer`].
pub struct BlobWriter {
    store: BlobStore,
    inner: HashingWriter<AtomicFile>,
}

impl fmt::Debug for BlobWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlobWriter").field("store", &self.store.root).finish_non_exhaustive()
    }
}

impl BlobWriter {
    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.inner.written()
    }

    /// Finishes the blob: checks it against `expected` if given, then renames it into place
    /// (keeping a blob already there, which has the same content). Returns its digest and
    /// size. Dropping a writer without committing, or a failed commit, leaves nothing
    /// behind.
    pub fn commit(self, expected: Option<&Digest>) -> Result<(Digest, u64), BlobError> {
        self.finish(expected, "the content written".to_owned()).map(|p| (p.digest, p.size))
    }

    /// Commits, keeping a [valid](BlobStore::check) copy already there (and replacing one
    /// that is not).
    fn finish(self, expected: Option<&Digest>, from: String) -> Result<Placed, BlobError> {
        let (file, digest, size) = self.inner.finish();
        if let Some(expected) = expected
            && *expected != digest
        {
            return Err(BlobError::Mismatch { from, expected: expected.clone(), actual: digest });
        }
        let store = &self.store;
        let placed = if store.has_valid(&digest, Some(size))? {
            false
        } else {
            file.commit_new_in(&store.sha256, digest.hex()).map_err(|e| store.write_err(e))?
        };
        store.checked().insert(digest.clone());
        Ok(Placed { digest, size, placed })
    }

    /// The underlying temporary file (to read back before committing, e.g. for size checks).
    pub fn as_file(&self) -> &File {
        self.inner.get_ref().as_file()
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Checks a blob's content as it goes by, chunk after chunk, against its digest and size.
///
/// [`BlobVerifier::update`] fails on the chunk that takes the content past its size, and on
/// the chunk that completes it when the digest does not match: a consumer that forwards
/// chunks only after `update` accepted them never forwards a complete wrong blob.
#[derive(Debug, Clone)]
pub struct BlobVerifier {
    expected: Digest,
    size: u64,
    from: String,
    hasher: Sha256,
    seen: u64,
}

impl BlobVerifier {
    /// A verifier for blob `expected` of `size` bytes, read from `from` (for errors).
    pub fn new(expected: Digest, size: u64, from: String) -> Self {
        Self { expected, size, from, hasher: Sha256::new(), seen: 0 }
    }

    /// Bytes accepted so far.
    pub fn seen(&self) -> u64 {
        self.seen
    }

    /// Accepts the next chunk, or says why the content is not the blob.
    pub fn update(&mut self, chunk: &[u8]) -> Result<(), BlobError> {
        if self.seen + chunk.len() as u64 > self.size {
            return Err(self.too_large());
        }
        self.hasher.update(chunk);
        self.seen += chunk.len() as u64;
        if self.seen == self.size {
            let actual = Digest::from_hasher(self.hasher.clone());
            if actual != self.expected {
                return Err(BlobError::Mismatch { from: self.from.clone(), expected: self.expected.clone(), actual });
            }
        }
        Ok(())
    }

    /// Checks, at the end of the content, that it was complete.
    pub fn finish(&self) -> Result<(), BlobError> {
        if self.seen < self.size { Err(self.too_short()) } else { Ok(()) }
    }

    fn too_large(&self) -> BlobError {
        BlobError::TooLarge {
            from: self.from.clone(),
            digest: self.expected.clone(),
            limit: self.size,
            what: "its descriptor gives",
        }
    }

    fn too_short(&self) -> BlobError {
        BlobError::TooShort {
            from: self.from.clone(),
            digest: self.expected.clone(),
            expected: self.size,
            actual: self.seen,
        }
    }
}

/// A reader of a blob that checks it with a [`BlobVerifier`]: it fails with an I/O error
/// carrying a [`BlobError`] (see [`BlobError::from_io`]) instead of handing out the bytes
/// that complete a blob whose digest does not match, and when the content is longer or
/// shorter than its size. So whatever a consumer wrote from it before the error is never
/// the whole of a wrong blob.
#[derive(Debug)]
pub struct VerifiedReader<R> {
    inner: R,
    verifier: BlobVerifier,
}

impl<R: Read> VerifiedReader<R> {
    /// Reads blob `expected` of `size` bytes from `inner` (`from` names it in errors).
    pub fn new(inner: R, expected: Digest, size: u64, from: String) -> Self {
        Self { inner, verifier: BlobVerifier::new(expected, size, from) }
    }
}

fn invalid(e: BlobError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

impl<R: Read> Read for VerifiedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.verifier.size - self.verifier.seen;
        if left == 0 {
            // Everything was handed out (and verified); anything more is too much.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(invalid(self.verifier.too_large())),
            };
        }
        if buf.is_empty() {
            return Ok(0);
        }
        let want = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(invalid(self.verifier.too_short()));
        }
        self.verifier.update(&buf[..n]).map_err(invalid)?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        v.sort();
        v
    }

    #[test]
    fn a_read_only_store_refuses_writes_and_keeps_a_corrupt_blob() {
        let dir = tempfile::tempdir().unwrap();
        let writer = BlobStore::open(dir.path()).unwrap();
        let good = writer.put_bytes(b"abc").unwrap();
        let bad = writer.put_bytes(b"def").unwrap();
        std::fs::write(writer.path(&bad), b"xyz").unwrap();
        // Another process's view: nothing checked yet.
        let store = BlobStore::open(dir.path()).unwrap();
        let clone = store.clone();
        store.set_read_only();
        assert!(clone.is_read_only());
        for err in [
            cnbx_fs::error_chain(&clone.put_bytes(b"new").unwrap_err()),
            clone.writer().map(|_| ()).unwrap_err().to_string(),
            clone.remove(&good).unwrap_err().to_string(),
        ] {
            assert!(err.contains("is read-only for this command"), "{err}");
        }
        assert_eq!(clone.check(&good, Some(3)).unwrap(), BlobCheck::Valid);
        assert!(matches!(clone.check(&bad, Some(3)).unwrap(), BlobCheck::Evicted(_)));
        assert_eq!(std::fs::read(store.path(&bad)).unwrap(), b"xyz", "a read-only store keeps the file");
        assert_eq!(names(&dir.path().join("blobs/sha256")).len(), 2);
    }

    #[test]
    fn put_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let d = store.put_bytes(b"abc").unwrap();
        assert!(store.contains(&d));
        assert_eq!(store.read(&d).unwrap(), b"abc");
        assert_eq!(store.size(&d), Some(3));
        // Idempotent.
        assert_eq!(store.put_bytes(b"abc").unwrap(), d);
    }

    #[test]
    fn mismatch_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let mut w = store.writer().unwrap();
        w.write_all(b"abc").unwrap();
        let err = w.commit(Some(&Digest::empty())).unwrap_err();
        assert!(matches!(err, BlobError::Mismatch { .. }));
        assert!(!store.contains(&Digest::empty()));
        assert_eq!(names(&dir.path().join("blobs")), ["sha256"]);
    }

    /// Two stores, the first holding the blob `layer`.
    fn two_stores() -> ([tempfile::TempDir; 2], BlobStore, BlobStore, Digest) {
        let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
        let sa = BlobStore::open(dirs[0].path()).unwrap();
        let sb = BlobStore::open(dirs[1].path()).unwrap();
        let d = sa.put_bytes(b"layer").unwrap();
        (dirs, sa, sb, d)
    }

    #[test]
    fn import_between_stores_copies() {
        let (_dirs, sa, sb, d) = two_stores();
        sb.import_blob(&sa, &Descriptor::new("x", d.clone(), 5)).unwrap();
        assert_eq!(sb.read(&d).unwrap(), b"layer");
        use std::os::unix::fs::MetadataExt;
        let meta = |s: &BlobStore| std::fs::metadata(s.path(&d)).unwrap();
        assert_ne!(meta(&sa).ino(), meta(&sb).ino(), "a copy, not a hard link");
    }

    #[test]
    fn import_checks_the_size_of_the_descriptor() {
        let (dirs, sa, sb, d) = two_stores();
        let err = sb.import_blob(&sa, &Descriptor::new("x", d.clone(), 4)).unwrap_err();
        assert!(err.to_string().ends_with("it has more than the 4 bytes its descriptor gives"), "{err}");
        let err = sb.import_blob(&sa, &Descriptor::new("x", d.clone(), 6)).unwrap_err();
        assert!(err.to_string().ends_with("it has 5 bytes, but its descriptor says 6"), "{err}");
        assert!(!sb.contains(&d));
        assert_eq!(names(&dirs[1].path().join("blobs")), ["sha256"]);
    }

    #[test]
    fn put_verified_streams_checks_and_bounds() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let d = Digest::of(b"content");
        let err = store.put_verified(&b"other!!"[..], &d, 100).unwrap_err();
        assert!(matches!(err, BlobError::Mismatch { .. }), "{err}");
        let err = store.put_verified(&b"content"[..], &d, 6).unwrap_err();
        assert!(err.to_string().ends_with("it has more than the 6 bytes allowed for it"), "{err}");
        assert!(!store.contains(&d));
        assert_eq!(names(&dir.path().join("blobs")), ["sha256"]);
        assert_eq!(store.put_verified(&b"content"[..], &d, 7).unwrap(), 7);
        assert_eq!(store.read(&d).unwrap(), b"content");
        // Present: the stream is not read.
        assert_eq!(store.put_verified(io::repeat(0), &d, 7).unwrap(), 7);
    }

    #[test]
    fn verified_reader_withholds_the_last_bytes_of_a_wrong_blob() {
        let good = Digest::of(b"abcdef");
        let mut out = Vec::new();
        let mut r = VerifiedReader::new(&b"abcdef"[..], good.clone(), 6, "x".into());
        io::copy(&mut r, &mut out).unwrap();
        assert_eq!(out, b"abcdef");

        let mut r = VerifiedReader::new(&b"abcdeX"[..], good.clone(), 6, "x".into());
        let mut buf = [0u8; 4];
        assert_eq!(r.read(&mut buf).unwrap(), 4);
        let err = BlobError::from_io(r.read(&mut buf).unwrap_err()).unwrap();
        assert!(matches!(err, BlobError::Mismatch { .. }), "{err}");

        let mut r = VerifiedReader::new(&b"abcdefg"[..], good.clone(), 6, "x".into());
        let err = BlobError::from_io(io::copy(&mut r, &mut io::sink()).unwrap_err()).unwrap();
        assert!(matches!(err, BlobError::TooLarge { .. }), "{err}");
        let mut r = VerifiedReader::new(&b"abcde"[..], good, 6, "x".into());
        let err = BlobError::from_io(io::copy(&mut r, &mut io::sink()).unwrap_err()).unwrap();
        assert!(matches!(err, BlobError::TooShort { .. }), "{err}");
    }
}
