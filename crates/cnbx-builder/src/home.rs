//! `CNBX_HOME` and what lives in it (see docs/architecture.md), and the store's upkeep:
//! [`CnbxHome::verify`] and [`CnbxHome::prune`].
//!
//! **Temporary files** of a command live in known places only: the local store (`store/`,
//! `store/blobs/`), each cache directory (`cache/<kind>/`) and the scratch directory
//! (`tmp/`), named `.cnbx-tmp-*` ([`CnbxHome::temporary_places`]). Every command that uses
//! the store holds the store's use lock shared for as long as it runs
//! ([`cnbx_oci::OciLayout::enter`]); the first to take it while nobody else holds it removes
//! what a killed command left in those places. `verify --repair` and `prune` hold it
//! exclusively, so they never remove what a running command is writing or about to use.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use cnbx_fs::FileLock;
use cnbx_oci::blobstore::{BlobError, StoredFile};
use cnbx_oci::layout::LayoutError;
use cnbx_oci::progress::{Reporter, ReporterExt};
use cnbx_oci::{Digest, LayerCache, LocalStore};
use rayon::prelude::*;

/// A kind of value remembered under `CNBX_HOME/cache/` ([`CnbxHome::recall`],
/// [`CnbxHome::remember`]): the type of the value, its directory, and the logic that computes
/// it. The logic is part of every key, so a value computed by other logic (a rule added to the
/// validator's table, a scan that finds more) is not reused; each kind states it next to the
/// code it names.
pub trait Memo: serde::Serialize + serde::de::DeserializeOwned {
    /// Its directory under `cache/`.
    const DIR: &'static str;

    /// What decides the value besides the inputs its key names: a revision of the logic that
    /// computes it, kept next to that logic, or the validator's rule table.
    fn logic() -> String;
}

/// The directories cnbx keeps under `CNBX_HOME`.
#[derive(Debug, Clone)]
pub struct CnbxHome {
    root: PathBuf,
}

/// Errors of [`CnbxHome::verify`] and [`CnbxHome::prune`].
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The local store cannot be opened or read.
    #[error(transparent)]
    Layout(#[from] LayoutError),
    /// A file or directory of `CNBX_HOME` cannot be read or removed.
    #[error("{what} {}", path.display())]
    Io {
        /// What was being done (`reading`, `removing`).
        what: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// `prune` found image entries it cannot read, so it cannot tell which blobs they need.
    #[error(
        "the local store {} has {count} image(s) whose blobs cannot all be read, so cnbx cannot tell which blobs are unused; run 'cnbx store verify --repair' first",
        store.display()
    )]
    Broken {
        /// The store.
        store: PathBuf,
        /// How many entries.
        count: usize,
    },
}

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + use<> {
    let path = path.to_path_buf();
    move |source| StoreError::Io { what, path, source }
}

/// Something `verify` found wrong, and what `--repair` did about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// What is wrong.
    pub text: String,
    /// What was done (with `repair`), or `None`.
    pub repaired: Option<String>,
}

/// What [`CnbxHome::verify`] checked and found.
#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    /// Blobs hashed.
    pub blobs: usize,
    /// Their bytes.
    pub bytes: u64,
    /// Image entries (`index.json`) resolved.
    pub images: usize,
    /// Layer cache entries checked.
    pub cache_entries: usize,
    /// What is wrong.
    pub problems: Vec<Problem>,
}

/// How many things, and how many bytes, were removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Files (or directories) removed.
    pub count: usize,
    /// Bytes they held.
    pub bytes: u64,
}

impl Tally {
    fn add(&mut self, bytes: u64) {
        self.count += 1;
        self.bytes += bytes;
    }
}

/// What [`CnbxHome::prune`] removed.
#[derive(Debug, Clone, Copy, Default)]
pub struct PruneReport {
    /// Blobs no image in the store uses.
    pub blobs: Tally,
    /// Layer cache entries whose blob is gone, and (with `all`) every cache entry.
    pub cache_entries: Tally,
    /// Downloads (with `all`), and parts of downloads that cannot be used.
    pub downloads: Tally,
    /// Temporary files left by killed commands.
    pub temporaries: Tally,
}

impl PruneReport {
    /// Everything freed.
    pub fn total(&self) -> Tally {
        let all = [self.blobs, self.cache_entries, self.downloads, self.temporaries];
        Tally { count: all.iter().map(|t| t.count).sum(), bytes: all.iter().map(|t| t.bytes).sum() }
    }
}

impl CnbxHome {
    /// `CNBX_HOME` at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// `$CNBX_HOME` if set, else `~/.cnbx`.
    pub fn from_env() -> Result<Self, cnbx_refs::user_config::UserConfigError> {
        cnbx_refs::user_config::cnbx_home().map(Self::new)
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where cnbx kept its configuration before it used pack's `config.toml`: taken over
    /// once ([`cnbx_refs::user_config::take_over_legacy`]), then never read again.
    pub fn legacy_config_file(&self) -> PathBuf {
        self.root.join(cnbx_refs::user_config::CONFIG_FILE_NAME)
    }

    /// The local store (an OCI image layout).
    pub fn store_dir(&self) -> PathBuf {
        self.root.join("store")
    }

    /// The caches (`layers/`, `downloads/` and the remembered values of [`CnbxHome::recall`]).
    pub fn cache_dir(&self) -> PathBuf {
        self.root.join("cache")
    }

    /// The layer cache index.
    pub fn layer_cache_dir(&self) -> PathBuf {
        self.cache_dir().join("layers")
    }

    /// Downloaded buildpacks and lifecycles, keyed by URL.
    pub fn download_cache_dir(&self) -> PathBuf {
        self.cache_dir().join("downloads")
    }

    /// Where a command's temporary files may be, besides the store's own `store/` and
    /// `store/blobs/`: every cache directory and [`CnbxHome::tmp_dir`].
    pub fn temporary_places(&self) -> Vec<PathBuf> {
        let mut places = cache_kinds(&self.cache_dir());
        places.push(self.tmp_dir());
        places
    }

    /// The value of kind `T` remembered for `key` (any text naming the inputs it was computed
    /// from), or `None` when there is none (for this key and the logic `T` is computed with,
    /// see [`Memo`]) or it cannot be read.
    pub fn recall<T: Memo>(&self, key: &str) -> Option<T> {
        let bytes =
            cnbx_fs::read_bounded(&self.memo_file::<T>(key), cnbx_fs::limits::MAX_DESCRIPTOR, "a cache entry").ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Remembers `value` under `cache/<T::DIR>/` for `key`, atomically and durably. Best
    /// effort: a value that cannot be written is only computed again next time.
    pub fn remember<T: Memo>(&self, key: &str, value: &T) {
        let file = self.memo_file::<T>(key);
        let write = || -> std::io::Result<()> {
            let bytes = serde_json::to_vec(value).map_err(std::io::Error::other)?;
            fs_err::create_dir_all(file.parent().unwrap_or(Path::new(".")))?;
            cnbx_fs::write_atomic(&file, &bytes)
        };
        let _ = write();
    }

    /// `cache/<T::DIR>/<sha256 of the kind (its type), its logic and key>.json`.
    fn memo_file<T: Memo>(&self, key: &str) -> PathBuf {
        let named = format!("{}\n{}\n{key}", std::any::type_name::<T>(), T::logic());
        let name = format!("{}.json", cnbx_oci::Digest::of(named.as_bytes()).hex());
        self.cache_dir().join(T::DIR).join(name)
    }

    /// Scratch space for one command (extracted archives); on the same filesystem as the
    /// store so that finished blobs can be renamed into it.
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// Takes the store's use lock exclusively, saying so when it has to wait for other
    /// commands.
    fn lock_store(&self, store: &LocalStore, reporter: &dyn Reporter) -> Result<FileLock, StoreError> {
        if let Some(lock) = store.layout().lock_exclusively(false)? {
            return Ok(lock);
        }
        reporter.info(&format!("Waiting for the other cnbx commands using {} to finish", self.root.display()));
        let lock = store.layout().lock_exclusively(true)?;
        Ok(lock.unwrap_or_else(|| unreachable!("a waiting lock is always granted")))
    }

    /// Checks the local store and the caches: every blob is hashed against its name, every
    /// image entry is resolved (manifests, indexes, configs, layers), every layer cache
    /// entry must point at a blob that is there and intact, every remembered value must be
    /// readable, and temporary files left by killed commands are listed (only when no other
    /// command is running: theirs are in use). With `repair`, what is bad is removed: corrupt
    /// blobs and stray files, image entries that cannot be used any more (their builders
    /// must be created, or their images pulled, again), cache entries that point at nothing,
    /// and temporary files; other commands are waited for first.
    pub fn verify(&self, repair: bool, reporter: &dyn Reporter) -> Result<VerifyReport, StoreError> {
        let store = LocalStore::open(self.store_dir())?;
        let layout = store.layout();
        let mut report = VerifyReport::default();
        let problem = |text: String, repaired: Option<&str>| Problem { text, repaired: repaired.map(str::to_owned) };

        // Temporary files are stale only when no other command holds the store.
        let lock = if repair { Some(self.lock_store(&store, reporter)?) } else { layout.lock_exclusively(false)? };
        let alone = lock.is_some();
        let _lock = match lock {
            Some(l) if !repair => l.downgrade().map_err(io_err("locking", &self.store_dir()))?,
            Some(l) => l,
            None => layout.enter(&[])?.0,
        };

        // Blobs, hashed in parallel.
        let files = store.blobs().files().map_err(io_err("reading", &store.blobs().root().join("blobs")))?;
        let checked: Vec<(StoredFile, Option<String>)> = files
            .into_par_iter()
            .map(|f| {
                let wrong = blob_problem(&store, &f);
                (f, wrong)
            })
            .collect();
        let mut corrupt = BTreeSet::new();
        for (file, wrong) in checked {
            if file.digest.is_some() && file.regular {
                report.blobs += 1;
                report.bytes += file.size;
            }
            let Some(wrong) = wrong else { continue };
            let temporary = file.path.file_name().is_some_and(|n| cnbx_fs::is_temporary_name(&n.to_string_lossy()));
            if temporary && !alone {
                continue;
            }
            if let Some(d) = &file.digest {
                corrupt.insert(d.clone());
            }
            let repaired = repair && cnbx_fs::remove_path(&file.path).is_ok();
            report.problems.push(problem(wrong, repaired.then_some("removed")));
        }

        // Image entries.
        let entries = layout.entries()?;
        report.images = entries.len();
        for entry in entries {
            let mut problems = entry.problems.clone();
            if !repair {
                problems.extend(
                    entry.blobs.iter().filter(|d| corrupt.contains(*d)).map(|d| format!("blob {d} is corrupt")),
                );
            }
            if problems.is_empty() {
                continue;
            }
            let name = entry.tag.clone().unwrap_or_else(|| entry.digest.to_string());
            let repaired = match &entry.tag {
                Some(tag) if repair => {
                    layout.remove(tag).is_ok().then_some("removed the entry; create or pull it again")
                }
                _ => None,
            };
            report.problems.push(problem(format!("image '{name}': {}", problems.join("; ")), repaired));
        }

        // The layer cache.
        let cache = LayerCache::open(self.layer_cache_dir()).map_err(io_err("reading", &self.layer_cache_dir()))?;
        let cache_entries = cache.entries().map_err(io_err("reading", &self.layer_cache_dir()))?;
        report.cache_entries = cache_entries.len();
        for entry in cache_entries {
            let wrong = match &entry.blob {
                None => Some("cannot be read".to_owned()),
                Some(blob) if corrupt.contains(&blob.digest) => {
                    Some(format!("points at blob {}, which is corrupt", blob.digest))
                }
                Some(blob) => match store.blobs().size(&blob.digest) {
                    None => Some(format!("points at blob {}, which is missing", blob.digest)),
                    Some(size) if size != blob.size => {
                        Some(format!("points at blob {} of {} bytes, which has {size}", blob.digest, blob.size))
                    }
                    Some(_) => None,
                },
            };
            if let Some(wrong) = wrong {
                let repaired = repair && cnbx_fs::remove_path(&entry.path).is_ok();
                report.problems.push(problem(
                    format!("layer cache entry {}: {wrong}", entry.path.display()),
                    repaired.then_some("removed"),
                ));
            }
        }

        // Remembered values and the scratch directory.
        for dir in self.temporary_places() {
            if dir == self.layer_cache_dir() {
                continue;
            }
            let memo = dir.parent() == Some(self.cache_dir().as_path()) && dir != self.download_cache_dir();
            for (path, _) in list_dir(&dir)? {
                let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                let wrong = if cnbx_fs::is_temporary_name(&name) {
                    alone.then(|| format!("{} is a temporary file left by an interrupted cnbx", path.display()))
                } else if memo && !readable_json(&path) {
                    Some(format!("cache entry {} cannot be read", path.display()))
                } else {
                    None
                };
                if let Some(wrong) = wrong {
                    let repaired = repair && cnbx_fs::remove_path(&path).is_ok();
                    report.problems.push(problem(wrong, repaired.then_some("removed")));
                }
            }
        }
        Ok(report)
    }

    /// Reclaims space: removes the blobs no image in the local store uses (layers cached
    /// for builders written elsewhere included), the layer cache entries that then point at
    /// nothing, parts of downloads that cannot be used, and temporary files left by killed
    /// commands; with `all`, also every cache entry and download (they are built or
    /// downloaded again when needed). Waits for running commands first and keeps new ones
    /// out meanwhile. Refuses when an image entry cannot be read (it could not tell which
    /// blobs that image uses).
    pub fn prune(&self, all: bool, reporter: &dyn Reporter) -> Result<PruneReport, StoreError> {
        let store = LocalStore::open(self.store_dir())?;
        let _lock = self.lock_store(&store, reporter)?;
        let entries = store.layout().entries()?;
        let broken = entries.iter().filter(|e| !e.problems.is_empty()).count();
        if broken > 0 {
            return Err(StoreError::Broken { store: self.store_dir(), count: broken });
        }
        let used: BTreeSet<&Digest> = entries.iter().flat_map(|e| &e.blobs).collect();
        let mut report = PruneReport::default();

        for file in store.blobs().files().map_err(io_err("reading", &store.blobs().root().join("blobs")))? {
            let keep = file.regular && file.digest.as_ref().is_some_and(|d| used.contains(d));
            if keep {
                continue;
            }
            let temporary = file.path.file_name().is_some_and(|n| cnbx_fs::is_temporary_name(&n.to_string_lossy()));
            let size = cnbx_fs::path_size(&file.path);
            cnbx_fs::remove_path(&file.path).map_err(io_err("removing", &file.path))?;
            if temporary { report.temporaries.add(size) } else { report.blobs.add(size) }
        }

        let cache = LayerCache::open(self.layer_cache_dir()).map_err(io_err("reading", &self.layer_cache_dir()))?;
        for entry in cache.entries().map_err(io_err("reading", &self.layer_cache_dir()))? {
            let stale = entry.blob.as_ref().is_none_or(|b| store.blobs().size(&b.digest) != Some(b.size));
            if all || stale {
                let size = cnbx_fs::path_size(&entry.path);
                cnbx_fs::remove_path(&entry.path).map_err(io_err("removing", &entry.path))?;
                report.cache_entries.add(size);
            }
        }

        let downloads = self.download_cache_dir();
        let mut places = self.temporary_places();
        places.push(self.store_dir());
        for dir in places {
            let listing = list_dir(&dir)?;
            let bodies: BTreeSet<String> =
                listing.iter().filter_map(|(p, _)| p.file_name().map(|n| n.to_string_lossy().into_owned())).collect();
            for (path, size) in listing {
                let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                let tally = if cnbx_fs::is_temporary_name(&name) {
                    &mut report.temporaries
                } else if dir == self.store_dir() || dir == self.layer_cache_dir() || dir == self.tmp_dir() {
                    continue;
                } else if dir == downloads {
                    let orphan = name.strip_suffix(".etag").is_some_and(|body| !bodies.contains(body));
                    if !(all || orphan) {
                        continue;
                    }
                    &mut report.downloads
                } else if all || !readable_json(&path) {
                    &mut report.cache_entries
                } else {
                    continue;
                };
                cnbx_fs::remove_path(&path).map_err(io_err("removing", &path))?;
                tally.add(size);
            }
        }
        Ok(report)
    }
}

/// The directories under `cache/`.
fn cache_kinds(cache: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(cache) else { return Vec::new() };
    let mut dirs: Vec<PathBuf> =
        entries.filter_map(Result::ok).filter(|e| e.file_type().is_ok_and(|t| t.is_dir())).map(|e| e.path()).collect();
    dirs.sort();
    dirs
}

/// The entries of `dir` with their sizes (none when it does not exist).
fn list_dir(dir: &Path) -> Result<Vec<(PathBuf, u64)>, StoreError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err("reading", dir)(e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let path = entry.map_err(io_err("reading", dir))?.path();
        let size = cnbx_fs::path_size(&path);
        out.push((path, size));
    }
    out.sort();
    Ok(out)
}

/// What is wrong with a file in `blobs/`, if anything.
fn blob_problem(store: &LocalStore, file: &StoredFile) -> Option<String> {
    let shown = file.path.display();
    let name = file.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let Some(digest) = &file.digest else {
        return Some(if cnbx_fs::is_temporary_name(&name) {
            format!("{shown} is a temporary file left by an interrupted cnbx")
        } else {
            format!("{shown} is not a blob (its name is not a sha256 digest)")
        });
    };
    if !file.regular {
        return Some(format!("{shown} is not a regular file"));
    }
    match store.blobs().content_digest(digest) {
        Ok(actual) if actual == *digest => None,
        Ok(actual) => Some(format!("blob {digest} is corrupt: its content hashes to {actual}")),
        Err(BlobError::Open(e)) if e.is_not_found() => None,
        Err(e) => Some(format!("blob {digest} cannot be read: {}", cnbx_fs::error_chain(&e))),
    }
}

/// Whether `path` is a readable JSON document (of at most the size a cache entry may have).
fn readable_json(path: &Path) -> bool {
    cnbx_fs::read_bounded(path, cnbx_fs::limits::MAX_DESCRIPTOR, "a cache entry")
        .is_ok_and(|b| serde_json::from_slice::<serde_json::Value>(&b).is_ok())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    /// A kind whose logic revision the test changes.
    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Counted(u32);

    static REVISION: AtomicU32 = AtomicU32::new(1);

    impl Memo for Counted {
        const DIR: &'static str = "counted";

        fn logic() -> String {
            format!("counted, revision {}", REVISION.load(Ordering::SeqCst))
        }
    }

    /// Another kind in the same directory, with the same logic text.
    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Other(u32);

    impl Memo for Other {
        const DIR: &'static str = "counted";

        fn logic() -> String {
            Counted::logic()
        }
    }

    #[test]
    fn a_value_is_recalled_only_with_the_logic_that_computed_it() {
        let dir = tempfile::tempdir().unwrap();
        let home = CnbxHome::new(dir.path());
        home.remember("inputs", &Counted(7));
        assert_eq!(home.recall::<Counted>("inputs"), Some(Counted(7)));
        assert_eq!(home.recall::<Counted>("other inputs"), None);
        assert_eq!(home.recall::<Other>("inputs"), None, "another kind, even in the same directory");
        REVISION.store(2, Ordering::SeqCst);
        assert_eq!(home.recall::<Counted>("inputs"), None, "the logic changed");
        home.remember("inputs", &Counted(8));
        assert_eq!(home.recall::<Counted>("inputs"), Some(Counted(8)));
        assert_eq!(std::fs::read_dir(dir.path().join("cache/counted")).unwrap().count(), 2);
    }

    /// The validations remembered by `builder create` and `base-image check` are keyed by the
    /// validator's rule table: a rule added or changed changes their keys.
    #[test]
    fn remembered_validations_are_keyed_by_the_rule_table() {
        let table = cnbx_validate::table::fingerprint();
        for what in ["builder create", "base-image check"] {
            assert!(crate::validation::logic(what).ends_with(&table), "{what}");
        }
        assert_ne!(crate::validation::logic("builder create"), crate::validation::logic("base-image check"));
    }
}
