//! `CNBX_HOME` and what lives in it (see docs/architecture.md).

use std::path::{Path, PathBuf};

/// The directories cnbx keeps under `CNBX_HOME`.
#[derive(Debug, Clone)]
pub struct CnbxHome {
    root: PathBuf,
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

    /// The user config file.
    pub fn config_file(&self) -> PathBuf {
        self.root.join(cnbx_refs::user_config::CONFIG_FILE_NAME)
    }

    /// The local store (an OCI image layout).
    pub fn store_dir(&self) -> PathBuf {
        self.root.join("store")
    }

    /// The layer cache index.
    pub fn layer_cache_dir(&self) -> PathBuf {
        self.root.join("cache").join("layers")
    }

    /// Downloaded buildpacks and lifecycles, keyed by URL.
    pub fn download_cache_dir(&self) -> PathBuf {
        self.root.join("cache").join("downloads")
    }

    /// A value remembered under `cache/<kind>/` for `key` (any text naming the inputs it was
    /// computed from), or `None` when there is none or it cannot be read.
    pub fn recall<T: serde::de::DeserializeOwned>(&self, kind: &str, key: &str) -> Option<T> {
        let bytes = std::fs::read(self.memo_file(kind, key)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Remembers `value` under `cache/<kind>/` for `key`, atomically. Best effort: a value
    /// that cannot be written is only computed again next time.
    pub fn remember<T: serde::Serialize>(&self, kind: &str, key: &str, value: &T) {
        let file = self.memo_file(kind, key);
        let write = || -> std::io::Result<()> {
            let bytes = serde_json::to_vec(value).map_err(std::io::Error::other)?;
            let dir = file.parent().unwrap_or(Path::new("."));
            fs_err::create_dir_all(dir)?;
            let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
            std::io::Write::write_all(&mut tmp, &bytes)?;
            tmp.persist(&file).map_err(|e| e.error)?;
            Ok(())
        };
        let _ = write();
    }

    fn memo_file(&self, kind: &str, key: &str) -> PathBuf {
        let name = format!("{}.json", cnbx_oci::Digest::of(key.as_bytes()).hex());
        self.root.join("cache").join(kind).join(name)
    }

    /// Scratch space for one command (extracted archives); on the same filesystem as the
    /// store so that finished blobs can be renamed into it.
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }
}
