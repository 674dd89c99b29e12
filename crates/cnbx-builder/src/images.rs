//! Where the images a builder is made from come from: the local store, an OCI layout, or a
//! registry, following the pull policy.
//!
//! pack reads base images from the Docker daemon (pulling per `--pull-policy`) or, with
//! `--publish`, from the registry. cnbx's daemon is the local store; an image fetched from a
//! registry is recorded in the store (manifest, config and, when its content is needed, its
//! layers). With `--publish` plain names always come from the registry, and layers are only
//! downloaded when their content is needed (flattening); the validator streams base image
//! layers without storing them. A reference pinned by digest must resolve to exactly that
//! content, in the store as on the registry. `oci:<DIR>[:<TAG>]` always reads the layout
//! directory.
//!
//! The pull policies, for plain names without `--publish`:
//!
//! * `always` (pack's default): the registry is asked for the name's manifest (or index) once
//!   per command, and the manifest it lists for the platform is used. When the store already
//!   holds exactly that manifest under the name, the store's copy is used and nothing more is
//!   fetched, so a create whose base images did not change stays a warm create; otherwise the
//!   manifest is fetched by its digest, then its config and the layers the store lacks. As in
//!   pack, a name the registry does not have (404) is looked up in the store; a registry that
//!   cannot be reached is an error (naming `if-not-present` when the store has a copy). A
//!   name pinned by digest is taken from the store when it is there (its content cannot have
//!   changed).
//! * `if-not-present`: the store first, the registry when the store does not have it.
//! * `never`: the store (and layouts) only.
//!
//! **Registry mirrors** (`[registry-mirrors]` of the configuration, [`Images::with_registry_mirrors`])
//! apply to every registry access made for a name: the request goes to the mirror (see
//! [`cnbx_refs::registry_mirrors`]), once per name with the message pack prints ("Using mirror
//! ... for ..."). The store keeps the image under the name as written, and messages and the
//! builder name it that way.
//!
//! An image read from the local store is used only if every layer blob it has there is
//! intact ([`cnbx_oci::BlobStore::check`]: hashed, once per command). A corrupt blob is
//! evicted with a warning, and the image is then fetched again from its registry, as if it
//! had never been stored (or reported as missing under `--pull-policy never`).
//!
//! [`Images`] holds the local store's use lock (shared) for as long as it lives, so that
//! `cnbx store prune` never removes what a running command uses, and the first command to
//! run after a killed one removes the temporary files it left (see [`crate::home`]).
//!
//! A command that must leave the local store as it is (`builder create --dry-run`,
//! `base-image check`) uses [`Images::read_only`]: images fetched from registries are read
//! there (their layers streamed when they are checked) and neither pulled nor recorded, the
//! store's blobs refuse every write, nothing is remembered in the caches, and layers whose
//! content must be read (buildpackages) are downloaded into scratch space under
//! `CNBX_HOME/tmp` that is removed when the command ends.

use std::path::Path;
use std::sync::Arc;

use cnbx_oci::docker_archive_read::{ArchiveReadError, ArchiveSink, read_docker_archive};
use cnbx_oci::engine::{Engine, EngineEndpoint, EngineError, EngineOptions, ReadPlaces};
use cnbx_oci::image::{ImageError, SourceImage};
use cnbx_oci::layout::LayoutError;
use cnbx_oci::progress::{Reporter, ReporterExt};
use cnbx_oci::registry::{RegistryClient, RegistryError, RegistryErrorKind};
use cnbx_oci::spec::{Platform, media_type};
use cnbx_oci::store::LocalStore;
use cnbx_oci::{BlobSource, BlobStore, Digest, Index, LayerCache, OciLayout};
use cnbx_refs::registry_mirrors::{MirrorError, RegistryMirrors};
use cnbx_refs::{ImageLocation, ImageRef};

use crate::home::{CnbxHome, Memo};

/// When to fetch images from registries (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PullPolicy {
    /// Ask the registry for the current image every time (pack's default); what the local
    /// store already has is not fetched again.
    #[default]
    Always,
    /// Use the local store when it has the image, else fetch.
    IfNotPresent,
    /// Only the local store and OCI layouts.
    Never,
}

impl PullPolicy {
    /// pack's name of the policy.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Always => "always",
            Self::IfNotPresent => "if-not-present",
            Self::Never => "never",
        }
    }
}

impl std::fmt::Display for PullPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A pull policy name that is not one of pack's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid pull policy '{}': use always, if-not-present or never", cnbx_fs::excerpt(.0))]
pub struct InvalidPullPolicy(pub String);

impl std::str::FromStr for PullPolicy {
    type Err = InvalidPullPolicy;

    /// pack's names; the empty string is pack's default, `always`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "always" | "" => Ok(Self::Always),
            "if-not-present" => Ok(Self::IfNotPresent),
            "never" => Ok(Self::Never),
            other => Err(InvalidPullPolicy(other.to_owned())),
        }
    }
}

/// Errors while locating or fetching an image.
#[derive(Debug, thiserror::Error)]
pub enum ImageFetchError {
    /// The spelling is not a valid image location.
    #[error(transparent)]
    Reference(#[from] cnbx_refs::RefError),
    /// The container engine cannot be reached or used, or refused a request (the message
    /// names the engine and its address, and says what to do).
    #[error(transparent)]
    Engine(Box<EngineError>),
    /// A docker-archive cannot be read.
    #[error(transparent)]
    Archive(Box<ArchiveReadError>),
    /// The engine has the image, for another platform.
    #[error("'{image}' in {engine} is for {found}, not {wanted}")]
    EnginePlatform {
        /// The image as the user wrote it.
        image: String,
        /// The engine.
        engine: String,
        /// Its platform.
        found: String,
        /// The platform asked for.
        wanted: String,
    },
    /// Reading the local store or a layout failed.
    #[error(transparent)]
    Layout(Box<cnbx_oci::layout::LayoutError>),
    /// Talking to the registry failed (the error names the image and the registry).
    #[error(transparent)]
    Registry(Box<RegistryError>),
    /// The image model is inconsistent.
    #[error(transparent)]
    Image(#[from] cnbx_oci::image::ImageError),
    /// A reference pinned by digest found a local-store entry with other content.
    #[error(
        "'{image}' is pinned to {pinned}, but the local store's entry for it is {found}; remove that entry (or \
         fetch with --pull-policy always) so that the pinned content is used"
    )]
    PinMismatch {
        /// The image as the user wrote it.
        image: String,
        /// The digest of the reference.
        pinned: String,
        /// What the store holds instead.
        found: String,
    },
    /// The scratch space of a read-only command cannot be made.
    #[error("creating scratch space in {}", .dir.display())]
    Scratch {
        /// Where.
        dir: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A registry mirror makes an invalid name of the image.
    #[error(transparent)]
    Mirror(Box<MirrorError>),
    /// `--pull-policy always` cannot ask the registry, and a local copy exists.
    #[error(
        "cannot check '{image}' on its registry, as --pull-policy always (pack's default) requires; {local} has a \
         copy, which --pull-policy if-not-present uses"
    )]
    Unreachable {
        /// The image as the user wrote it.
        image: String,
        /// Where the copy is (`the cnbx store (DIR)`, or the engine too).
        local: String,
        /// Why the registry could not be asked.
        #[source]
        source: Box<RegistryError>,
    },
    /// A layer of an image in the local store cannot be read.
    #[error("reading '{image}' from the local store")]
    Blob {
        /// The image as the user wrote it.
        image: String,
        /// What failed.
        #[source]
        source: Box<cnbx_oci::blobstore::BlobError>,
    },
}

impl From<EngineError> for ImageFetchError {
    fn from(e: EngineError) -> Self {
        Self::Engine(Box::new(e))
    }
}

impl From<RegistryError> for ImageFetchError {
    fn from(e: RegistryError) -> Self {
        Self::Registry(Box::new(e))
    }
}

impl ImageFetchError {
    /// When the image exists but has no manifest for the platform asked for: that platform
    /// and the platforms it has.
    pub fn missing_platform(&self) -> Option<(&str, &str)> {
        let image_error = match self {
            Self::Image(e) => e,
            Self::Registry(e) => match e.kind() {
                RegistryErrorKind::Image(e) => e,
                _ => return None,
            },
            Self::Layout(e) => match e.as_ref() {
                LayoutError::Image { source, .. } => source,
                _ => return None,
            },
            _ => return None,
        };
        match image_error {
            ImageError::NoMatchingPlatform { platform, available, .. } => Some((platform, available)),
            _ => None,
        }
    }
}

impl From<cnbx_oci::layout::LayoutError> for ImageFetchError {
    fn from(e: cnbx_oci::layout::LayoutError) -> Self {
        Self::Layout(Box::new(e))
    }
}

/// Fetches images for one command.
pub struct Images {
    home: CnbxHome,
    store: LocalStore,
    /// The store's use lock, shared, held while this lives.
    _session: cnbx_fs::FileLock,
    policy: PullPolicy,
    publish: bool,
    reporter: Arc<dyn Reporter>,
    registry: RegistryClient,
    /// Images fetched from registries, to record in the local store once the command that
    /// fetched them has succeeded ([`Images::record_fetched`]).
    fetched: std::sync::Mutex<Vec<Fetched>>,
    /// Whether this command writes nothing into the local store ([`Images::read_only`]).
    read_only: bool,
    /// A read-only command's scratch directories (the first one holds the blobs it had to
    /// download), removed when it ends.
    scratch: std::sync::Mutex<Vec<tempfile::TempDir>>,
    /// `[registry-mirrors]`.
    mirrors: RegistryMirrors,
    /// The names a mirror was announced for.
    mirrored: std::sync::Mutex<std::collections::HashSet<String>>,
    /// What the registry served for each name asked under `--pull-policy always`, once per
    /// command (so that every platform of a create reads the same index).
    documents: std::sync::Mutex<std::collections::HashMap<String, Option<Vec<u8>>>>,
    /// The container engine, once connected (see [`Images::engine`]).
    engine: tokio::sync::OnceCell<Engine>,
    /// Whether bare names (without `--publish`) are the engine's ([`Images::with_engine`]).
    bare_names_in_engine: bool,
    /// The layer chains (diffIDs, base first) of the images read from the engine: a load
    /// into it may leave them out.
    engine_chains: std::sync::Mutex<Vec<Vec<Digest>>>,
    /// Whether this read-only command made `CNBX_HOME/tmp` for its scratch directories: it
    /// removes it again when it ends (if nothing else is in it by then).
    made_tmp: std::sync::atomic::AtomicBool,
}

/// An image fetched from a registry, not yet recorded in the local store.
struct Fetched {
    reference: ImageRef,
    manifest: cnbx_oci::Raw<cnbx_oci::Manifest>,
    config: cnbx_oci::Raw<serde_json::Value>,
    platform: Platform,
    /// The index a digest-pinned reference names, as the registry served it (verified
    /// against the pin).
    pinned_index: Option<Vec<u8>>,
}

/// A read-only command leaves `CNBX_HOME` as it was: its scratch directories go, and so does
/// `tmp` when it made it and nothing else is in it (another command's scratch directory keeps
/// it; one that is about to make its own makes `tmp` again).
impl Drop for Images {
    fn drop(&mut self) {
        drop(std::mem::take(self.scratch.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner)));
        if *self.made_tmp.get_mut() {
            let _ = std::fs::remove_dir(self.home.tmp_dir());
        }
    }
}

impl std::fmt::Debug for Images {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Images")
            .field("home", &self.home)
            .field("policy", &self.policy)
            .field("publish", &self.publish)
            .finish()
    }
}

impl Images {
    /// Opens the local store under `home` and takes its use lock (removing the temporary
    /// files a killed command left, when no other command is running); `registry` is used
    /// for every registry access.
    pub fn new(
        home: CnbxHome,
        policy: PullPolicy,
        publish: bool,
        reporter: Arc<dyn Reporter>,
        registry: RegistryClient,
    ) -> Result<Self, ImageFetchError> {
        let store = LocalStore::open(home.store_dir())?;
        let (session, removed) = store.layout().enter(&home.temporary_places())?;
        if !removed.is_empty() {
            let bytes: u64 = removed.iter().map(|r| r.bytes).sum();
            reporter.debug(&format!(
                "Removed {} temporary file(s) ({bytes} bytes) left in {} by an interrupted cnbx",
                removed.len(),
                home.root().display()
            ));
        }
        store.blobs().set_reporter(Arc::clone(&reporter));
        Ok(Self {
            home,
            store,
            _session: session,
            policy,
            publish,
            reporter,
            registry,
            fetched: std::sync::Mutex::new(Vec::new()),
            read_only: false,
            scratch: std::sync::Mutex::new(Vec::new()),
            mirrors: RegistryMirrors::default(),
            mirrored: std::sync::Mutex::new(Default::default()),
            documents: std::sync::Mutex::new(Default::default()),
            engine: tokio::sync::OnceCell::new(),
            bare_names_in_engine: false,
            engine_chains: std::sync::Mutex::new(Vec::new()),
            made_tmp: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Uses `engine` for `docker-daemon:` images and, with `bare_names`, for bare names
    /// without `--publish` (see the module docs).
    #[must_use]
    pub fn with_engine(mut self, engine: Engine, bare_names: bool) -> Self {
        self.engine = tokio::sync::OnceCell::new_with(Some(engine));
        self.bare_names_in_engine = bare_names;
        self
    }

    /// Whether bare names without `--publish` mean the engine's images.
    pub fn bare_names_in_engine(&self) -> bool {
        self.bare_names_in_engine && !self.publish
    }

    /// The engine, if connected.
    pub fn connected_engine(&self) -> Option<&Engine> {
        self.engine.get()
    }

    /// The engine: the one given to [`Images::with_engine`], else the one `DOCKER_HOST` or the
    /// Docker context names, connected on first use.
    pub async fn engine(&self) -> Result<&Engine, ImageFetchError> {
        self.engine
            .get_or_try_init(|| async {
                let endpoint = EngineEndpoint::from_env()?;
                Engine::connect(endpoint, EngineOptions::from_env()).await.map_err(ImageFetchError::from)
            })
            .await
    }

    /// Where bare names are read from without `--publish`, for messages: `the Docker daemon at
    /// unix:///var/run/docker.sock (then the cnbx store)` or `the cnbx store (DIR)`.
    pub fn local_images(&self) -> String {
        let store = format!("the cnbx store ({})", self.home.store_dir().display());
        match self.connected_engine() {
            Some(engine) if self.bare_names_in_engine() => format!("{} or {store}", engine.describe()),
            _ => store,
        }
    }

    /// The layer chains of the images read from the engine by this command.
    pub fn engine_chains_read(&self) -> Vec<Vec<Digest>> {
        lock(&self.engine_chains).clone()
    }

    /// What to say after "… was not found" for an image at `location`.
    pub fn not_found_hint(&self, location: &ImageLocation) -> String {
        match location {
            ImageLocation::DockerDaemon(_) => match self.connected_engine() {
                Some(engine) => format!(" in {}; check the name with 'docker images'", engine.describe()),
                None => " in the container engine; check the name with 'docker images'".to_owned(),
            },
            ImageLocation::Name(_) if self.publish => " in its registry; check the name, or push it first".to_owned(),
            ImageLocation::Name(_) if self.policy == PullPolicy::Never => format!(
                " in {} and --pull-policy never forbids pulling it; use --pull-policy if-not-present, or an \
                 oci:<DIR> image",
                self.local_images()
            ),
            _ => format!(" in {} or its registry; check the name", self.local_images()),
        }
    }

    /// Sends every registry access for a name through `mirrors` (see the module docs).
    #[must_use]
    pub fn with_registry_mirrors(mut self, mirrors: RegistryMirrors) -> Self {
        self.mirrors = mirrors;
        self
    }

    /// Where the registry image `reference` is fetched from: through its registry mirror when
    /// one applies (announced once per name, with pack's message), else `reference` itself.
    pub fn registry_reference(&self, reference: &ImageRef) -> Result<ImageRef, ImageFetchError> {
        match self.mirrors.rewrite(reference) {
            Ok(None) => Ok(reference.clone()),
            Ok(Some(mirrored)) => {
                let first = lock(&self.mirrored).insert(reference.original().to_owned());
                if first {
                    self.reporter.info(&format!("Using mirror '{}' for {}", mirrored.original(), reference.original()));
                }
                Ok(mirrored)
            }
            Err(e) => Err(ImageFetchError::Mirror(Box::new(e))),
        }
    }

    /// The manifest or index the registry serves for `reference` (through its mirror), asked
    /// once per command; `None` when the registry does not have it.
    pub async fn registry_document(&self, reference: &ImageRef) -> Result<Option<Vec<u8>>, ImageFetchError> {
        let remote = self.registry_reference(reference)?;
        let key = remote.to_string();
        if let Some(document) = lock(&self.documents).get(&key) {
            return Ok(document.clone());
        }
        let document = self.registry.fetch_document(&remote).await?;
        lock(&self.documents).insert(key, document.clone());
        Ok(document)
    }

    /// Makes this command leave the local store as it is (see the module docs): for dry runs
    /// and checks.
    #[must_use]
    pub fn read_only(mut self) -> Self {
        self.read_only = true;
        self.store.blobs().set_read_only();
        self
    }

    /// Whether [`Images::read_only`] was called.
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// Remembers `value` in `CNBX_HOME/cache/` ([`CnbxHome::remember`]), unless this
    /// command is read-only.
    pub fn remember<T: Memo>(&self, key: &str, value: &T) {
        if !self.read_only {
            self.home.remember(key, value);
        }
    }

    /// Keeps `dir`, scratch space of a read-only command that what it planned still reads
    /// from, until the command ends.
    pub fn keep_scratch(&self, dir: tempfile::TempDir) {
        self.scratch.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(dir);
    }

    /// A new scratch directory (`.cnbx-tmp-*`) under `CNBX_HOME/tmp`, removed when dropped.
    /// `tmp` is made when missing (and made again when a read-only command that made it
    /// removes it meanwhile, see [`Images`]'s `Drop`).
    pub fn scratch_dir(&self) -> std::io::Result<tempfile::TempDir> {
        let dir = self.home.tmp_dir();
        let mut attempts = 0;
        loop {
            if self.read_only && !dir.exists() {
                self.made_tmp.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            fs_err::create_dir_all(&dir)?;
            match tempfile::Builder::new().prefix(cnbx_fs::TMP_PREFIX).tempdir_in(&dir) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && attempts < 3 => attempts += 1,
                other => return other,
            }
        }
    }

    /// The blob store in a read-only command's scratch space (made on first use).
    fn scratch_blobs(&self) -> Result<BlobStore, ImageFetchError> {
        let mut scratch = self.scratch.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if scratch.is_empty() {
            let dir =
                self.scratch_dir().map_err(|source| ImageFetchError::Scratch { dir: self.home.tmp_dir(), source })?;
            scratch.insert(0, dir);
        }
        let root = scratch[0].path().join("blobs-store");
        BlobStore::open(&root).map_err(|source| ImageFetchError::Scratch { dir: root, source })
    }

    /// The registry client.
    pub fn registry(&self) -> &RegistryClient {
        &self.registry
    }

    /// Whether plain names are read from registries only (`--publish`).
    pub fn publish(&self) -> bool {
        self.publish
    }

    /// The pull policy.
    pub fn policy(&self) -> PullPolicy {
        self.policy
    }

    /// `CNBX_HOME`.
    pub fn home(&self) -> &CnbxHome {
        &self.home
    }

    /// The local store.
    pub fn store(&self) -> &LocalStore {
        &self.store
    }

    /// The shared blob store (where built layers go).
    pub fn blobs(&self) -> &BlobStore {
        self.store.blobs()
    }

    /// The reporter for progress and messages.
    pub fn reporter(&self) -> &dyn Reporter {
        self.reporter.as_ref()
    }

    /// The reporter, shared (for work handed to other threads).
    pub fn shared_reporter(&self) -> Arc<dyn Reporter> {
        Arc::clone(&self.reporter)
    }

    /// Reads the image the user spelled `spelling` (an [`ImageLocation`]: `NAME`,
    /// `docker://NAME`, `oci:<DIR>[:<TAG>]`, `docker-archive:<FILE>[:<NAME>]`,
    /// `docker-daemon:NAME[:TAG]`; relative paths against `base_dir`) for `platform`.
    /// `Ok(None)` means it exists nowhere we may look.
    pub async fn get(
        &self,
        spelling: &str,
        base_dir: &Path,
        platform: Option<&Platform>,
    ) -> Result<Option<SourceImage>, ImageFetchError> {
        let location = ImageLocation::parse(spelling, base_dir)?;
        self.get_at(&location, spelling, platform).await
    }

    /// [`Images::get`] of a location already parsed; `spelling` is how the user wrote it.
    pub async fn get_at(
        &self,
        location: &ImageLocation,
        spelling: &str,
        platform: Option<&Platform>,
    ) -> Result<Option<SourceImage>, ImageFetchError> {
        match location {
            ImageLocation::OciLayout { dir, tag } => {
                let layout = OciLayout::open(dir)?;
                let mut image = layout.read_image(tag, platform)?;
                // A manifest tagged in index.json may carry a platform of its own; the
                // validator compares it with the config's, as it does for an index entry.
                if image.index_platform.is_none() {
                    image.index_platform = layout.resolve(tag)?.and_then(|d| d.platform);
                }
                Ok(Some(image))
            }
            ImageLocation::DockerArchive { file, reference } => {
                self.read_archive(file, reference.as_ref(), spelling, platform).await.map(Some)
            }
            ImageLocation::DockerDaemon(d) => {
                let engine = self.engine().await?;
                self.read_engine_image(engine, d.api_name(), spelling, platform, true).await
            }
            ImageLocation::Name(reference) => self.get_named(spelling, reference, platform).await,
        }
    }

    /// Where an image read from the engine or an archive goes: the store and the layer cache,
    /// or for a read-only command its scratch store and no cache.
    fn read_places(&self) -> Result<(BlobStore, Option<LayerCache>), ImageFetchError> {
        if self.read_only {
            return Ok((self.scratch_blobs()?, None));
        }
        let dir = self.home.layer_cache_dir();
        let cache = LayerCache::open(&dir).map_err(|source| ImageFetchError::Scratch { dir: dir.clone(), source })?;
        Ok((self.blobs().clone(), Some(cache)))
    }

    /// The image `name` (as the engine's API takes it) of `engine`, for `platform`; `None`
    /// when the engine does not have it. One for another platform is the error when
    /// `strict` (the user named the engine's image, or the policy allows nothing else), else
    /// counts as absent.
    async fn read_engine_image(
        &self,
        engine: &Engine,
        name: &str,
        spelling: &str,
        platform: Option<&Platform>,
        strict: bool,
    ) -> Result<Option<SourceImage>, ImageFetchError> {
        let Some(found) = engine.inspect(name).await? else { return Ok(None) };
        if let Some(wanted) = platform
            && !wanted.matches(&found.platform())
        {
            if !strict {
                return Ok(None);
            }
            return Err(ImageFetchError::EnginePlatform {
                image: spelling.to_owned(),
                engine: engine.describe(),
                found: found.platform().to_string(),
                wanted: wanted.to_string(),
            });
        }
        // The warm path reads the store and the cache only (a read-only command too).
        let cache = LayerCache::at(self.home.layer_cache_dir());
        let read = match Engine::cached(name, &found, self.blobs(), &cache) {
            Some(read) => read,
            None => {
                let (store, cache) = self.read_places()?;
                let places =
                    ReadPlaces { store: &store, cache: None, export_store: &store, export_cache: cache.as_ref() };
                self.reporter.debug(&format!("Reading '{spelling}' from {} (exported)", engine.describe()));
                engine.read_inspected(name, found, places, Arc::clone(&self.reporter)).await?
            }
        };
        lock(&self.engine_chains).push(read.engine_image.diff_ids.clone());
        let mut image = read.image;
        image.display_name = spelling.to_owned();
        Ok(Some(image))
    }

    /// The image of the docker-archive `file` (the one tagged `reference`, or the only one),
    /// for `platform`.
    async fn read_archive(
        &self,
        file: &Path,
        reference: Option<&ImageRef>,
        spelling: &str,
        platform: Option<&Platform>,
    ) -> Result<SourceImage, ImageFetchError> {
        let (store, cache) = self.read_places()?;
        let (file, reference, reporter) = (file.to_path_buf(), reference.cloned(), Arc::clone(&self.reporter));
        let read = tokio::task::spawn_blocking(move || {
            let sink = ArchiveSink { store: &store, cache: cache.as_ref(), reporter: reporter.as_ref() };
            read_docker_archive(&file, reference.as_ref(), sink)
        })
        .await
        .map_err(|e| ImageFetchError::Scratch { dir: self.home.tmp_dir(), source: std::io::Error::other(e) })?
        .map_err(|e| ImageFetchError::Archive(Box::new(e)))?;
        let mut image = read.image;
        if let Some(wanted) = platform
            && !wanted.matches(&image.platform())
        {
            return Err(ImageError::NoMatchingPlatform {
                image: spelling.to_owned(),
                platform: wanted.to_string(),
                available: image.platform().to_string(),
            }
            .into());
        }
        image.display_name = spelling.to_owned();
        Ok(image)
    }

    /// A bare name's image in the engine, when bare names are the engine's.
    async fn in_engine(
        &self,
        spelling: &str,
        reference: &ImageRef,
        platform: Option<&Platform>,
    ) -> Result<Option<SourceImage>, ImageFetchError> {
        if !self.bare_names_in_engine() {
            return Ok(None);
        }
        let Some(engine) = self.connected_engine() else { return Ok(None) };
        let strict = self.policy == PullPolicy::Never;
        self.read_engine_image(engine, &reference.familiar(), spelling, platform, strict).await
    }

    /// The image a bare name means in the engine (when bare names are its), for every
    /// platform: `None` when the engine does not have it or bare names are the cnbx store's.
    pub async fn engine_image(
        &self,
        spelling: &str,
        reference: &ImageRef,
    ) -> Result<Option<SourceImage>, ImageFetchError> {
        self.in_engine(spelling, reference, None).await
    }

    /// Whether the engine (when bare names are its) has an image named `reference`.
    pub async fn has_in_engine(&self, reference: &ImageRef) -> bool {
        match self.connected_engine() {
            Some(engine) if self.bare_names_in_engine() => {
                engine.inspect(&reference.familiar()).await.ok().flatten().is_some()
            }
            _ => false,
        }
    }

    /// The engine's image, else the cnbx store's (see the module docs).
    async fn local(
        &self,
        spelling: &str,
        reference: &ImageRef,
        platform: Option<&Platform>,
    ) -> Result<Option<SourceImage>, ImageFetchError> {
        match self.in_engine(spelling, reference, platform).await? {
            Some(image) => Ok(Some(image)),
            None => self.stored(spelling, reference, platform, None),
        }
    }

    async fn get_named(
        &self,
        spelling: &str,
        reference: &ImageRef,
        platform: Option<&Platform>,
    ) -> Result<Option<SourceImage>, ImageFetchError> {
        if self.publish {
            return self.fetch_remote(reference, platform).await;
        }
        match self.policy {
            PullPolicy::Never => self.local(spelling, reference, platform).await,
            PullPolicy::IfNotPresent => match self.local(spelling, reference, platform).await? {
                Some(image) => Ok(Some(image)),
                None => self.fetch_remote(reference, platform).await,
            },
            PullPolicy::Always => self.get_current(spelling, reference, platform).await,
        }
    }

    /// The image stored under `reference` for `platform`, if the store has it with every layer
    /// intact (corrupt ones are evicted, with a warning) and, when `want` is given, with that
    /// manifest digest. An entry without the platform is "not stored" unless the policy is
    /// `never`, where it is the error.
    fn stored(
        &self,
        spelling: &str,
        reference: &ImageRef,
        platform: Option<&Platform>,
        want: Option<&Digest>,
    ) -> Result<Option<SourceImage>, ImageFetchError> {
        match self.store.get(reference, platform) {
            Ok(Some(image)) => {
                if want.is_some_and(|d| *d != image.manifest.digest) || !self.stored_layers_intact(spelling, &image)? {
                    return Ok(None);
                }
                self.check_pin(spelling, reference, &image)?;
                Ok(Some(image))
            }
            Ok(None) => Ok(None),
            Err(LayoutError::Image { source: ImageError::NoMatchingPlatform { .. }, .. })
                if self.policy != PullPolicy::Never =>
            {
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// `--pull-policy always`: the image the registry serves now, from the store when it holds
    /// exactly that manifest (see the module docs).
    async fn get_current(
        &self,
        spelling: &str,
        reference: &ImageRef,
        platform: Option<&Platform>,
    ) -> Result<Option<SourceImage>, ImageFetchError> {
        if reference.digest().is_some() {
            // Pinned: the local copy is the registry's content.
            return match self.local(spelling, reference, platform).await? {
                Some(image) => Ok(Some(image)),
                None => self.fetch_remote(reference, platform).await,
            };
        }
        let document = match self.registry_document(reference).await {
            Ok(Some(document)) => document,
            // As pack does when the registry does not have the name: the local image.
            Ok(None) => return self.local(spelling, reference, platform).await,
            Err(ImageFetchError::Registry(e))
                if matches!(e.kind(), RegistryErrorKind::Connect { .. }) && self.has_local(reference).await =>
            {
                return Err(ImageFetchError::Unreachable {
                    image: spelling.to_owned(),
                    local: self.local_images(),
                    source: e,
                });
            }
            Err(e) => return Err(e),
        };
        let Some((digest, index_platform)) = listed_manifest(&document, spelling, platform) else {
            // No manifest for the platform, or not a document we read: the fetch says why.
            return self.fetch_remote(reference, platform).await;
        };
        if let Some(image) = self.stored(spelling, reference, platform, Some(&digest))? {
            return Ok(Some(image));
        }
        // The manifest the index listed, by its digest: every platform of this command reads
        // the same index, even if the tag moves meanwhile.
        let pinned = self.registry_reference(reference)?.with_digest(digest.as_str());
        let check_platform = if index_platform.is_some() { None } else { platform };
        let Some(mut image) = self.registry.fetch_image(&pinned, check_platform).await? else {
            return Ok(None);
        };
        image.display_name = reference.original().to_owned();
        if index_platform.is_some() {
            image.index_platform = index_platform;
        }
        self.keep_fetched(reference, image).await.map(Some)
    }

    /// Whether the engine (when bare names are its) or the cnbx store has something under
    /// `reference`.
    async fn has_local(&self, reference: &ImageRef) -> bool {
        self.store.layout().resolve(&LocalStore::key(reference)).ok().flatten().is_some()
            || self.has_in_engine(reference).await
    }

    /// Whether every layer of an image read from the local store is there and intact
    /// (corrupt ones are evicted, with a warning).
    fn stored_layers_intact(&self, spelling: &str, image: &SourceImage) -> Result<bool, ImageFetchError> {
        let mut intact = true;
        for layer in &image.manifest.value.layers {
            let valid = self
                .blobs()
                .has_valid(&layer.digest, Some(layer.size))
                .map_err(|e| ImageFetchError::Blob { image: spelling.to_owned(), source: Box::new(e) })?;
            intact &= valid;
        }
        Ok(intact)
    }

    async fn fetch_remote(
        &self,
        reference: &ImageRef,
        platform: Option<&Platform>,
    ) -> Result<Option<SourceImage>, ImageFetchError> {
        let remote = self.registry_reference(reference)?;
        let Some(mut image) = self.registry.fetch_image(&remote, platform).await? else {
            return Ok(None);
        };
        image.display_name = reference.original().to_owned();
        self.keep_fetched(reference, image).await.map(Some)
    }

    /// An image just read from a registry: as it is with `--publish` and for read-only
    /// commands; otherwise with its layers pulled into the blob store, to be recorded under
    /// `reference` once the command succeeds.
    async fn keep_fetched(&self, reference: &ImageRef, image: SourceImage) -> Result<SourceImage, ImageFetchError> {
        if self.publish || self.read_only {
            return Ok(image);
        }
        // Pull its layers into the blob store (each verified against its digest), and record
        // it in the store's index once the command succeeds (see `record_fetched`).
        let pulled = self.registry.pull_layers(&image, self.blobs(), self.reporter()).await?;
        // A reference pinned to an index: keep the index itself too, so that the next run can
        // check the stored manifest against the pin (see `check_pin`).
        let pinned_index = match reference.digest() {
            Some(pin) if image.manifest.digest.as_str() != pin => {
                self.registry.fetch_document(&self.registry_reference(reference)?).await?
            }
            _ => None,
        };
        let platform = image.index_platform.clone().unwrap_or_else(|| image.platform());
        let mut fetched = lock(&self.fetched);
        fetched.push(Fetched {
            reference: reference.clone(),
            manifest: image.manifest.clone(),
            config: image.config_raw.clone(),
            platform,
            pinned_index,
        });
        Ok(pulled)
    }

    /// Records the images this command fetched from registries in the local store, with the
    /// registry's manifest bytes, next to the platforms recorded before, so that the next run
    /// is offline. Called once the command has succeeded: a failed command (a buildpackage
    /// that was refused, say) leaves the store's index as it was.
    pub fn record_fetched(&self) -> Result<(), ImageFetchError> {
        let fetched = std::mem::take(&mut *self.fetched.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        for f in fetched {
            if let Some(index) = &f.pinned_index {
                self.blobs().put_bytes(index).map_err(|source| LayoutError::Blob {
                    path: self.home.store_dir(),
                    tag: LocalStore::key(&f.reference),
                    digest: cnbx_oci::Digest::of(index),
                    source: Box::new(source),
                })?;
            }
            self.store.record_fetched(&f.reference, &f.manifest, &f.config, &f.platform)?;
        }
        Ok(())
    }

    /// A reference pinned by digest must resolve to exactly that content: the stored manifest
    /// has the pinned digest, or the pinned digest is an index (kept in the blob store, so
    /// verified by its digest) that lists the stored manifest. Anything else is an entry
    /// recorded under the name with other content, which is refused rather than used.
    fn check_pin(&self, spelling: &str, reference: &ImageRef, image: &SourceImage) -> Result<(), ImageFetchError> {
        let Some(pin) = reference.digest() else { return Ok(()) };
        let manifest = &image.manifest.digest;
        if manifest.as_str() == pin {
            return Ok(());
        }
        let listed = pin
            .parse::<cnbx_oci::Digest>()
            .ok()
            .and_then(|d| self.blobs().read(&d).ok())
            .and_then(|bytes| cnbx_oci::Raw::<cnbx_oci::Index>::parse(bytes).ok())
            .is_some_and(|index| index.value.manifests.iter().any(|m| m.digest == *manifest));
        if listed {
            return Ok(());
        }
        Err(ImageFetchError::PinMismatch {
            image: spelling.to_owned(),
            pinned: pin.to_owned(),
            found: format!("manifest {manifest}"),
        })
    }

    /// `image` with every layer blob present in the local blob store (downloaded if it lives
    /// on a registry), so that its content can be read or copied.
    /// A read-only command reads them from the local store when it has every one of them
    /// (as a create would, after pulling), else downloads them into its scratch space.
    pub async fn with_local_layers(&self, image: &SourceImage) -> Result<SourceImage, ImageFetchError> {
        match &image.source {
            BlobSource::Store(_) => Ok(image.clone()),
            BlobSource::Registry(_) if self.read_only => {
                let all_stored = image
                    .manifest
                    .value
                    .layers
                    .iter()
                    .all(|l| self.blobs().has_valid(&l.digest, Some(l.size)).unwrap_or(false));
                if all_stored {
                    return Ok(SourceImage { source: BlobSource::Store(self.blobs().clone()), ..image.clone() });
                }
                let scratch = self.scratch_blobs()?;
                Ok(self.registry.pull_layers(image, &scratch, self.reporter()).await?)
            }
            BlobSource::Registry(_) => Ok(self.registry.pull_layers(image, self.blobs(), self.reporter()).await?),
        }
    }
}

/// The manifest `document` (what the registry serves for a name) means for `platform`: its own
/// digest, or the digest and platform of the entry an index lists for it. `None` when the
/// index has no entry for it or the document cannot be read as one.
fn listed_manifest(document: &[u8], image: &str, platform: Option<&Platform>) -> Option<(Digest, Option<Platform>)> {
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
        manifests: Option<serde_json::Value>,
    }
    let probe: Probe = serde_json::from_slice(document).ok()?;
    let is_index = match &probe.media_type {
        Some(mt) => media_type::is_index(mt),
        None => probe.manifests.is_some(),
    };
    if !is_index {
        return Some((Digest::of(document), None));
    }
    let index: Index = serde_json::from_slice(document).ok()?;
    let chosen = cnbx_oci::image::select_platform(image, &index, platform).ok()?;
    Some((chosen.digest.clone(), chosen.platform.clone()))
}

fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
