//! Content-addressed layer cache: `<dir>/<key>.json` → the layer already in the blob store.
//!
//! The caller passes `$CNBX_HOME/cache/layers`. A recipe's **key** is the sha256 of a
//! canonical, versioned description of it ([`LayerCache::key`]):
//!
//! * a format salt ([`CACHE_FORMAT`]), bumped whenever the tar encoding, the gzip backend or
//!   this description changes;
//! * the compression level and blob media type;
//! * every entry's full header (name, type, link target, mode, owner, names, times, size,
//!   devices, PAX records, source format);
//! * for content in memory, the bytes themselves;
//! * for content in a file, the file's **identity** — path, size, mtime in nanoseconds,
//!   inode, device, mode — and **not its bytes**; the same for source archives, plus the
//!   archive mapping's id.
//!
//! So an unchanged directory buildpack is a hit after one `stat` per file, without reading
//! any content, which is what makes a warm `builder create` fast.
//!
//! **Trade-off.** Like make, cargo and most build caches, this trusts modification times: a
//! file rewritten with the same size and its mtime (and inode) restored is not noticed, and
//! the old layer is served. Tools that do that deliberately (some archive extractors with
//! mtime preservation *and* in-place writes) are rare; a new checkout, copy, download or
//! edit changes the mtime or inode. Deleting the cache directory, or the blob, forces a
//! rebuild.
//!
//! A hit needs both the key file and the blob in the store, with the recorded size and
//! **content**: the blob is hashed before it is reused ([`BlobStore::check`], once per
//! process), unless the caller reads every layer it reuses through a check of its digest
//! anyway ([`ReuseCheck::OnUse`]: a copy into an `oci:` layout, a docker-archive, an
//! upload), so that the hash is computed once, during that copy. A blob that is missing
//! (removed by `cnbx store prune`) is simply rebuilt; one whose bytes do not match its
//! digest is evicted with a warning, its key file removed, and the layer rebuilt. The key
//! file is written with [`cnbx_fs::AtomicFile`] (temporary file, synced, renamed, directory
//! synced) *after* the blob was committed the same way, so a reader never sees a key
//! pointing at a missing or partial blob, even after a crash. Key files are read without
//! following symbolic links and up to [`limits::MAX_DESCRIPTOR`] bytes; an unreadable one is
//! a miss. Two processes building the same recipe both build it and both write the same key
//! file; the last rename wins, with identical content.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use cnbx_fs::{AtomicFile, limits};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::blobstore::{BlobCheck, BlobStore};
use crate::digest::Digest;
use crate::layer::{EntryData, FileIdentity, LayerError, LayerInfo, LayerPart, LayerRecipe, build_layer, write_recipe};
use crate::progress::{Reporter, Task, TaskKind};
use crate::spec::Descriptor;
use crate::tarball::{HeaderFormat, TarEntry, TarTime};

/// Salt of every key: the key format, the tar encoder generation and the gzip backend.
/// Change it whenever any of them would produce different layers for the same recipe.
pub const CACHE_FORMAT: &str = "cnbx-layer-cache/2 tar=go-archive-tar gzip=libdeflate-chunked-1MiB";

/// What a key file holds.
#[derive(Debug, Serialize, Deserialize)]
struct Record {
    diff_id: Digest,
    digest: Digest,
    size: u64,
    media_type: String,
    uncompressed_size: u64,
}

/// How a cached layer's blob is checked before a hit is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReuseCheck {
    /// Its content is hashed ([`BlobStore::check`]).
    #[default]
    Content,
    /// Only its presence and size ([`BlobStore::check_present`]). For a caller whose every
    /// use of the layer reads it through a check of its digest, and which
    /// [checks](BlobStore::check) the layers it was given when such a use fails.
    OnUse,
}

/// The layer cache directory.
#[derive(Debug, Clone)]
pub struct LayerCache {
    dir: PathBuf,
    reuse: ReuseCheck,
}

impl LayerCache {
    /// Opens (creating if needed) the cache in `dir`.
    pub fn open(dir: impl Into<PathBuf>) -> io::Result<Self> {
        let dir = dir.into();
        fs_err::create_dir_all(&dir)?;
        Ok(Self { dir, reuse: ReuseCheck::default() })
    }

    /// The cache in `dir`, for reading only: nothing is created (a missing directory is an
    /// empty cache). See [`LayerCache::peek`].
    pub fn at(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into(), reuse: ReuseCheck::default() }
    }

    /// The same cache, checking blobs before a hit as `reuse` says.
    pub fn with_reuse_check(self, reuse: ReuseCheck) -> Self {
        Self { reuse, ..self }
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the key file for `key` lives.
    pub fn key_path(&self, key: &Digest) -> PathBuf {
        self.dir.join(format!("{}.json", key.hex()))
    }

    /// The cache key of `recipe` (see the module docs). Reads no file content.
    pub fn key(recipe: &LayerRecipe) -> Digest {
        let mut k = KeyHasher(Sha256::new());
        k.str(CACHE_FORMAT);
        k.u64(u64::from(recipe.compression_level));
        k.str(&recipe.media_type);
        match &recipe.confinement {
            None => k.tag(b'-'),
            Some(c) => {
                k.tag(b'C');
                k.str(&c.describe());
            }
        }
        k.u64(recipe.parts.len() as u64);
        for part in &recipe.parts {
            match part {
                LayerPart::Entry(e) => {
                    k.tag(b'E');
                    k.header(&e.header);
                    match &e.data {
                        EntryData::None => k.tag(b'n'),
                        EntryData::Bytes(b) => {
                            k.tag(b'b');
                            k.bytes(b);
                        }
                        EntryData::File { path, identity } => {
                            k.tag(b'f');
                            k.path(path);
                            k.identity(identity);
                        }
                    }
                }
                LayerPart::Archive(a) => {
                    k.tag(b'A');
                    k.path(&a.path);
                    k.identity(&a.identity);
                    k.str(&a.mapping_id);
                }
            }
        }
        Digest::from_hasher(k.0)
    }

    /// The key of the layer whose uncompressed tar has `diff_id`, compressed by cnbx at
    /// `level` as a blob of `media_type`: for layers read uncompressed from elsewhere (a
    /// container engine's export, a docker-archive), whose blob is the same whoever read them
    /// first. Never equal to a recipe's key ([`LayerCache::key`]).
    pub fn diff_id_key(diff_id: &Digest, level: u32, media_type: &str) -> Digest {
        let mut k = KeyHasher(Sha256::new());
        k.str(CACHE_FORMAT);
        k.tag(b'D');
        k.str(diff_id.as_str());
        k.u64(u64::from(level));
        k.str(media_type);
        Digest::from_hasher(k.0)
    }

    /// The cached layer for `key`, if its key file is readable and its blob is in `store`
    /// with the recorded size and content (checked as the cache's [`ReuseCheck`] says: see
    /// the module docs). A key file whose blob is gone or was evicted is removed.
    pub fn lookup(&self, key: &Digest, store: &BlobStore) -> Option<LayerInfo> {
        self.find(key, store, true)
    }

    /// What [`LayerCache::lookup`] would return, without changing anything: a key file whose
    /// blob is gone stays (for a dry run, with a [read-only](BlobStore::set_read_only) store,
    /// which keeps a corrupt blob too).
    pub fn peek(&self, key: &Digest, store: &BlobStore) -> Option<LayerInfo> {
        self.find(key, store, false)
    }

    fn find(&self, key: &Digest, store: &BlobStore, forget_stale: bool) -> Option<LayerInfo> {
        let path = self.key_path(key);
        let r = read_record(&path)?;
        let found = match self.reuse {
            ReuseCheck::Content => store.check(&r.digest, Some(r.size)),
            ReuseCheck::OnUse => store.check_present(&r.digest, Some(r.size)),
        };
        match found {
            Ok(BlobCheck::Valid) => {}
            Ok(BlobCheck::Missing | BlobCheck::Evicted(_)) => {
                if forget_stale {
                    let _ = std::fs::remove_file(&path);
                }
                return None;
            }
            Err(_) => return None,
        }
        Some(LayerInfo {
            diff_id: r.diff_id,
            descriptor: Descriptor::new(r.media_type, r.digest, r.size),
            uncompressed_size: r.uncompressed_size,
        })
    }

    /// Every key file: its path, and the blob it points at (`None` when it cannot be read).
    /// For checking and pruning.
    pub fn entries(&self) -> io::Result<Vec<CacheEntry>> {
        let mut entries = Vec::new();
        for entry in fs_err::read_dir(&self.dir)? {
            let path = entry?.path();
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            if cnbx_fs::is_temporary_name(&name) || !name.ends_with(".json") {
                continue;
            }
            let blob = read_record(&path).map(|r| Descriptor::new(r.media_type, r.digest, r.size));
            entries.push(CacheEntry { path, blob });
        }
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(entries)
    }

    /// Records that `key` built `info` (atomically and durably: see the module docs).
    pub fn record(&self, key: &Digest, info: &LayerInfo) -> io::Result<()> {
        let record = Record {
            diff_id: info.diff_id.clone(),
            digest: info.descriptor.digest.clone(),
            size: info.descriptor.size,
            media_type: info.descriptor.media_type.clone(),
            uncompressed_size: info.uncompressed_size,
        };
        let json = serde_json::to_vec(&record).map_err(io::Error::other)?;
        let mut tmp = AtomicFile::new_in(&self.dir)?;
        tmp.write_all(&json)?;
        tmp.commit(&self.key_path(key))
    }

    /// The layer for `recipe`: from the cache when present (reading no content), else built
    /// into `store` and recorded. Reports a [`TaskKind::Build`] task either way. Returns the
    /// layer and whether it was a cache hit.
    pub fn get_or_build(
        &self,
        recipe: &LayerRecipe,
        store: &BlobStore,
        reporter: &dyn Reporter,
    ) -> Result<(LayerInfo, bool), LayerError> {
        self.get_or_build_keyed(recipe, &Self::key(recipe), store, reporter)
    }

    /// [`LayerCache::get_or_build`] for a caller that has [`LayerCache::key`]`(recipe)` already.
    pub fn get_or_build_keyed(
        &self,
        recipe: &LayerRecipe,
        key: &Digest,
        store: &BlobStore,
        reporter: &dyn Reporter,
    ) -> Result<(LayerInfo, bool), LayerError> {
        let total = recipe.input_size();
        let task = Task { id: recipe.name.clone(), label: recipe.name.clone(), kind: TaskKind::Build, total };
        reporter.start(&task);
        if let Some(info) = self.lookup(key, store) {
            if let Some(total) = total {
                reporter.advance(&task.id, total);
            }
            reporter.finish(&task.id);
            return Ok((info, true));
        }
        let built = write_recipe(recipe, store, &|n| reporter.advance(&task.id, n));
        reporter.finish(&task.id);
        let info = built?;
        self.record(key, &info).map_err(|source| LayerError::Cache {
            layer: recipe.name.clone(),
            path: self.key_path(key),
            source,
        })?;
        Ok((info, false))
    }
}

/// Builds several layers in parallel on rayon's thread pool, one layer per task. With a
/// cache, hits are served from it and misses recorded in it; without one, this is
/// [`build_layer`] for each recipe. Results are in the order of `recipes`.
pub fn build_layers(
    recipes: &[LayerRecipe],
    store: &BlobStore,
    cache: Option<&LayerCache>,
    reporter: &dyn Reporter,
) -> Vec<Result<LayerInfo, LayerError>> {
    recipes
        .par_iter()
        .map(|recipe| match cache {
            Some(cache) => cache.get_or_build(recipe, store, reporter).map(|(info, _hit)| info),
            None => build_layer(recipe, store, reporter),
        })
        .collect()
}

/// A key file of the layer cache (see [`LayerCache::entries`]).
#[derive(Debug, Clone)]
pub struct CacheEntry {
    /// The key file.
    pub path: PathBuf,
    /// The blob it points at, if it can be read.
    pub blob: Option<Descriptor>,
}

fn read_record(path: &Path) -> Option<Record> {
    let bytes = cnbx_fs::read_bounded(path, limits::MAX_DESCRIPTOR, "a layer cache record").ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Feeds an unambiguous encoding into sha256: every variable-length field is
/// length-prefixed, every optional field tagged.
struct KeyHasher(Sha256);

impl KeyHasher {
    fn tag(&mut self, t: u8) {
        self.0.update([t]);
    }

    fn u64(&mut self, v: u64) {
        self.0.update(v.to_le_bytes());
    }

    fn i128(&mut self, v: i128) {
        self.0.update(v.to_le_bytes());
    }

    fn bytes(&mut self, b: &[u8]) {
        self.u64(b.len() as u64);
        self.0.update(b);
    }

    fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }

    fn path(&mut self, p: &Path) {
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStrExt;
            self.bytes(p.as_os_str().as_bytes());
        }
        #[cfg(not(unix))]
        self.str(&p.to_string_lossy());
    }

    fn time(&mut self, t: Option<TarTime>) {
        match t {
            None => self.tag(0),
            Some(t) => {
                self.tag(1);
                self.i128(i128::from(t.secs()));
                self.u64(u64::from(t.nanos()));
            }
        }
    }

    fn identity(&mut self, id: &FileIdentity) {
        self.u64(id.size);
        self.i128(id.mtime_ns);
        self.u64(id.inode);
        self.u64(id.dev);
        self.u64(u64::from(id.mode));
    }

    fn header(&mut self, h: &TarEntry) {
        self.str(&h.path);
        self.tag(h.kind.typeflag());
        self.str(h.kind.link_name());
        self.u64(u64::from(h.mode));
        self.u64(h.uid);
        self.u64(h.gid);
        self.str(&h.uname);
        self.str(&h.gname);
        self.time(Some(h.mtime));
        self.time(h.atime);
        self.time(h.ctime);
        self.u64(h.size);
        self.u64(h.devmajor);
        self.u64(h.devminor);
        self.u64(h.pax_records.len() as u64);
        for (k, v) in &h.pax_records {
            self.str(k);
            self.str(v);
        }
        self.tag(match h.format {
            HeaderFormat::Unspecified => 0,
            HeaderFormat::Ustar => 1,
            HeaderFormat::Pax => 2,
            HeaderFormat::Gnu => 3,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tarball::TarEntry;

    #[test]
    fn peek_finds_what_lookup_finds_and_forgets_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path().join("store")).unwrap();
        let missing = LayerCache::at(dir.path().join("absent"));
        let mut recipe = LayerRecipe::new("a");
        recipe.push_bytes(TarEntry::file("/x", 0), b"1".to_vec());
        let key = LayerCache::key(&recipe);
        assert!(missing.peek(&key, &store).is_none());
        assert!(!dir.path().join("absent").exists(), "at() creates nothing");

        let cache = LayerCache::open(dir.path().join("cache")).unwrap();
        let (built, hit) = cache.get_or_build(&recipe, &store, &crate::progress::NullReporter).unwrap();
        assert!(!hit);
        assert_eq!(cache.peek(&key, &store).unwrap().diff_id, built.diff_id);
        // The blob is gone: peek misses and keeps the key file, lookup removes it.
        std::fs::remove_file(store.path(&built.descriptor.digest)).unwrap();
        assert!(cache.peek(&key, &store).is_none());
        assert!(cache.key_path(&key).exists());
        assert!(cache.lookup(&key, &store).is_none());
        assert!(!cache.key_path(&key).exists());
    }

    #[test]
    fn key_depends_on_content_and_level_not_name() {
        let mut a = LayerRecipe::new("a");
        a.push_bytes(TarEntry::file("/x", 0), b"1".to_vec());
        let mut b = LayerRecipe::new("b");
        b.push_bytes(TarEntry::file("/x", 0), b"1".to_vec());
        assert_eq!(LayerCache::key(&a), LayerCache::key(&b));
        let mut c = LayerRecipe::new("a");
        c.push_bytes(TarEntry::file("/x", 0), b"2".to_vec());
        assert_ne!(LayerCache::key(&a), LayerCache::key(&c));
        assert_ne!(LayerCache::key(&a), LayerCache::key(&a.clone().with_compression_level(1)));
        let mut d = LayerRecipe::new("a");
        d.push_bytes(TarEntry::file("/x", 0).with_mode(0o755), b"1".to_vec());
        assert_ne!(LayerCache::key(&a), LayerCache::key(&d));
    }
}
