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

    /// Scratch space for one command (extracted archives); on the same filesystem as the
    /// store so that finished blobs can be renamed into it.
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }
}
