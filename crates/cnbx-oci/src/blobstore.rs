//! A content-addressed blob store: `<root>/blobs/sha256/<hex>`, the blob half of an OCI
//! image layout.
//!
//! Blobs are written to a temporary file in `<root>/blobs/` (same filesystem) while being
//! hashed, then renamed into place. A reader therefore never sees a partial blob, two
//! processes writing the same blob both succeed (the rename is atomic and the content is
//! identical), and an interrupted write leaves at most a temporary file that the next
//! `tempfile` clean-up or a later write ignores.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

use crate::digest::{Digest, HashingWriter};

/// Errors from the blob store.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// Filesystem error (the message names the path).
    #[error(transparent)]
    Io(#[from] io::Error),
    /// Content did not hash to what its descriptor said.
    #[error("blob digest mismatch: expected {expected}, got {actual}")]
    Mismatch {
        /// Digest the content should have had.
        expected: Digest,
        /// Digest it had.
        actual: Digest,
    },
}

/// A directory of content-addressed blobs.
#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
}

impl BlobStore {
    /// Opens (creating if needed) the blob store under `root`.
    pub fn open(root: impl Into<PathBuf>) -> io::Result<Self> {
        let root = root.into();
        fs_err::create_dir_all(root.join("blobs").join("sha256"))?;
        Ok(Self { root })
    }

    /// The directory holding `blobs/`.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where blob `digest` lives (whether or not it exists).
    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs").join(digest.algorithm()).join(digest.hex())
    }

    /// Whether the blob is present.
    pub fn contains(&self, digest: &Digest) -> bool {
        self.path(digest).is_file()
    }

    /// Size of a present blob.
    pub fn size(&self, digest: &Digest) -> Option<u64> {
        std::fs::metadata(self.path(digest)).ok().filter(std::fs::Metadata::is_file).map(|m| m.len())
    }

    /// Opens a present blob for reading.
    pub fn open_blob(&self, digest: &Digest) -> io::Result<fs_err::File> {
        fs_err::File::open(self.path(digest))
    }

    /// Reads a whole (small) blob.
    pub fn read(&self, digest: &Digest) -> io::Result<Vec<u8>> {
        fs_err::read(self.path(digest))
    }

    /// Starts writing a new blob whose digest is computed as it is written.
    pub fn writer(&self) -> io::Result<BlobWriter> {
        let dir = self.root.join("blobs");
        let tmp = tempfile::Builder::new()
            .prefix(".tmp-")
            .tempfile_in(&dir)
            .map_err(|e| io::Error::new(e.kind(), format!("creating a temporary file in {}: {e}", dir.display())))?;
        Ok(BlobWriter { store: self.clone(), inner: HashingWriter::new(tmp) })
    }

    /// Stores `bytes` and returns their digest.
    pub fn put_bytes(&self, bytes: &[u8]) -> Result<Digest, BlobError> {
        let digest = Digest::of(bytes);
        if !self.contains(&digest) {
            let mut w = self.writer()?;
            w.write_all(bytes)?;
            w.commit(Some(&digest))?;
        }
        Ok(digest)
    }

    /// Makes blob `digest` of `other` present here: a hard link when both stores are on one
    /// filesystem, else a copy (hashed on the way, then renamed into place).
    pub fn import_from(&self, other: &Self, digest: &Digest) -> Result<(), BlobError> {
        if self.contains(digest) {
            return Ok(());
        }
        let src = other.path(digest);
        let dst = self.path(digest);
        match std::fs::hard_link(&src, &dst) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
            Err(_) => {}
        }
        let mut reader = other.open_blob(digest)?;
        let mut w = self.writer()?;
        io::copy(&mut reader, &mut w)?;
        w.commit(Some(digest))?;
        Ok(())
    }
}

/// A blob being written; see [`BlobStore::writer`].
pub struct BlobWriter {
    store: BlobStore,
    inner: HashingWriter<NamedTempFile>,
}

impl BlobWriter {
    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.inner.written()
    }

    /// Finishes the blob: checks it against `expected` if given, then renames it into place.
    /// Returns its digest and size. Dropping a writer without committing discards it.
    pub fn commit(self, expected: Option<&Digest>) -> Result<(Digest, u64), BlobError> {
        let (mut tmp, digest, size) = self.inner.finish();
        if let Some(expected) = expected {
            if *expected != digest {
                return Err(BlobError::Mismatch { expected: expected.clone(), actual: digest });
            }
        }
        tmp.flush()?;
        let dst = self.store.path(&digest);
        if !dst.is_file() {
            tmp.persist(&dst).map_err(|e| {
                io::Error::new(e.error.kind(), format!("renaming blob into {}: {}", dst.display(), e.error))
            })?;
        }
        Ok((digest, size))
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

#[cfg(test)]
mod tests {
    use super::*;

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
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("blobs")).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "only blobs/sha256 should remain");
    }

    #[test]
    fn import_between_stores() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let sa = BlobStore::open(a.path()).unwrap();
        let sb = BlobStore::open(b.path()).unwrap();
        let d = sa.put_bytes(b"layer").unwrap();
        sb.import_from(&sa, &d).unwrap();
        assert_eq!(sb.read(&d).unwrap(), b"layer");
    }
}
