//! Buildpackages: package images (`docker://`, names, `oci:`) and `.cnb` files
//! (docs/pack-compatibility.md, *Buildpackages*).

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::Path;

use cnbx_oci::confine::Confiner;
use cnbx_oci::digest::HashingReader;
use cnbx_oci::image::{BlobSource, LayerBlob, SourceImage};
use cnbx_oci::spec::{Index, media_type};
use cnbx_oci::tarball::EntryKind;
use cnbx_oci::{BlobStore, Digest, OciLayout};

use cnbx_model::{ModuleDirs, ModuleInfo, ModuleKind};

use super::{ModuleError, PendingModule};
use crate::assemble::{PendingLayer, stream};
use crate::home::Memo;
use crate::labels::{self, ModuleLayers};
use crate::scan::clean_name;
use crate::source::FetchContext;

/// `io.buildpacks.buildpackage.metadata`.
pub const PACKAGE_METADATA: &str = "io.buildpacks.buildpackage.metadata";

/// A buildpackage that cannot be used: `package '<uri>': <problem>`.
#[derive(Debug, thiserror::Error)]
#[error("package '{uri}'")]
pub struct PackageError {
    /// The package, as builder.toml locates it.
    pub uri: String,
    /// What is wrong with it.
    #[source]
    pub problem: Box<PackageProblem>,
}

/// What is wrong with a buildpackage.
#[derive(Debug, thiserror::Error)]
pub enum PackageProblem {
    /// A rule it breaks, or what it lacks.
    #[error("{0}")]
    Invalid(String),
    /// A label cannot be read.
    #[error(transparent)]
    Label(#[from] crate::labels::LabelError),
    /// Its image is inconsistent (layers and diffIDs).
    #[error(transparent)]
    Image(#[from] cnbx_oci::image::ImageError),
    /// A module it holds has an id or version that cannot be used.
    #[error(transparent)]
    Ident(#[from] cnbx_model::IdentError),
    /// A layer blob cannot be opened.
    #[error(transparent)]
    Open(#[from] cnbx_fs::FsError),
    /// Its layers could not be fetched.
    #[error(transparent)]
    Fetch(#[from] crate::images::ImageFetchError),
    /// The `index.json` of its `.cnb` is not an image index.
    #[error("index.json is invalid")]
    IndexJson(#[source] cnbx_oci::spec::JsonError),
    /// Its OCI layout (a `.cnb`) cannot be read.
    #[error(transparent)]
    Layout(#[from] cnbx_oci::layout::LayoutError),
    /// An entry of the `.cnb` cannot be read.
    #[error(transparent)]
    Entry(#[from] cnbx_oci::tarball::TarError),
    /// A blob of the `.cnb` does not hold what its name says.
    #[error("blob '{name}' does not have the content its name says")]
    Blob {
        /// The entry, as an excerpt.
        name: String,
        /// Why.
        #[source]
        source: cnbx_oci::blobstore::BlobError,
    },
    /// A checked blob could not be moved into the blob store.
    #[error("storing blob {digest}")]
    Store {
        /// The blob.
        digest: Digest,
        /// Why.
        #[source]
        source: cnbx_oci::blobstore::BlobError,
    },
}

impl From<String> for PackageProblem {
    fn from(message: String) -> Self {
        Self::Invalid(message)
    }
}

/// Makes errors about the package `uri`.
fn package_error(uri: &str) -> impl Fn(PackageProblem) -> ModuleError + '_ {
    move |problem| ModuleError::Package(PackageError { uri: uri.to_owned(), problem: Box::new(problem) })
}

/// The modules of a package image, main first, then the dependencies sorted by id and
/// version. A layer holding one module is reused as it is once a scan has shown that it holds
/// that module's files only, under that module's directory, and that its content is the
/// diffID the image says; a layer that needs mending (special files, setuid bits, stray
/// parent directories) and a layer holding several modules (a flattened package) are
/// re-encoded, one layer per module. The layers still to be scanned are scanned at the same
/// time, each on a blocking thread (see [`scan_and_remember`]). The warnings are returned,
/// for the caller to report in builder.toml's order.
pub(crate) async fn modules_from_image(
    ctx: &FetchContext<'_>,
    kind: ModuleKind,
    image: &SourceImage,
    uri: &str,
) -> Result<(Vec<PendingModule>, Vec<String>), ModuleError> {
    let config_labels = image.config.labels();
    let package = package_error(uri);
    let invalid = |msg: String| package(msg.into());
    let meta_raw = config_labels
        .get(PACKAGE_METADATA)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| invalid(format!("could not find label '{PACKAGE_METADATA}'")))?;
    let meta: ModuleInfo = labels::decode(PACKAGE_METADATA, meta_raw).map_err(|e| package(e.into()))?;
    let layers_label = match kind {
        ModuleKind::Buildpack => labels::BUILDPACK_LAYERS,
        ModuleKind::Extension => labels::EXTENSION_LAYERS,
    };
    let layers_raw = config_labels
        .get(layers_label)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| invalid(format!("could not find label '{layers_label}'")))?;
    let module_layers: ModuleLayers = labels::decode(layers_label, layers_raw).map_err(|e| package(e.into()))?;
    let blobs = image.layers().map_err(|e| package(e.into()))?;

    // Each module the label lists, with its place (checked before anything else), its layer's
    // index, whether that layer holds other modules too, and the remembered verdict on it.
    let mut per_diff: BTreeMap<&str, usize> = BTreeMap::new();
    let mut listed = Vec::new();
    for (id, versions) in &module_layers.0 {
        for (version, info) in versions {
            let dirs = ModuleDirs::new(kind, id, version).map_err(|e| package(e.into()))?;
            *per_diff.entry(info.layer_diff_id.as_str()).or_default() += 1;
            listed.push((id, version, info, dirs));
        }
    }
    let listed: Vec<Listed<'_>> = listed
        .into_iter()
        .map(|(id, version, info, dirs)| {
            let idx = blobs.iter().position(|b| b.diff_id.as_str() == info.layer_diff_id);
            let shared = per_diff.get(info.layer_diff_id.as_str()).copied().unwrap_or(0) > 1;
            let recalled = idx.filter(|_| !shared).and_then(|i| remembered_verdict(ctx, &dirs, &blobs[i]));
            Listed { id, version, info, dirs, idx, shared, recalled }
        })
        .collect();
    // Every layer's content is read (scanned or split), so the layers must be local, unless
    // every layer is one a scan of exactly that blob already found clean (remembered by its
    // digest): then nothing is downloaded again (a warm publish mounts them all).
    let all_known_clean = listed.iter().all(|l| l.recalled == Some(LayerVerdict::Verbatim));
    let local = if all_known_clean {
        image.clone()
    } else {
        ctx.images.with_local_layers(image).await.map_err(|e| package(e.into()))?
    };
    let local_layers = local.layers().map_err(|e| package(e.into()))?;
    // Each listed module's layer, decided for all of them at once: the layers whose verdict
    // is not remembered are scanned meanwhile (the scans are bounded globally).
    let decide = listed.iter().map(|l| {
        let (dirs, idx, shared, recalled) = (&l.dirs, l.idx, l.shared, l.recalled.clone());
        let (id, version, diff_id) = (l.id, l.version, &l.info.layer_diff_id);
        let (local_layers, blobs, package, invalid) = (&local_layers, &blobs, &package, &invalid);
        async move {
            let idx = idx.ok_or_else(|| {
                invalid(format!(
                    "{} '{id}@{version}' is in layer {} which the image does not have",
                    kind.noun(),
                    cnbx_fs::excerpt(diff_id)
                ))
            })?;
            if all_known_clean {
                return Ok((PendingLayer::Ready(blobs[idx].clone()), Vec::new()));
            }
            let local_blob = &local_layers[idx];
            let path = blob_path(local_blob).ok_or_else(|| invalid("layer blob is not local".into()))?;
            check_media_type(local_blob).map_err(invalid)?;
            if shared {
                return Ok((PendingLayer::Build(stream::split_recipe(dirs, &path)?), Vec::new()));
            }
            let verdict = match recalled {
                Some(verdict) => verdict,
                None => scan_and_remember(ctx, dirs, local_blob, &path).await.map_err(package)?,
            };
            Ok::<_, ModuleError>(match verdict {
                LayerVerdict::Verbatim => (PendingLayer::Ready(blobs[idx].clone()), Vec::new()),
                LayerVerdict::Mend(mended) => {
                    let said = format!("package '{uri}': {} '{id}@{version}'", kind.noun());
                    let warnings = mended.iter().map(|w| format!("{said}: {w}")).collect();
                    (PendingLayer::Build(stream::split_recipe(dirs, &path)?), warnings)
                }
            })
        }
    });
    // All of them finish, so that of two bad layers the first listed is the one reported.
    let decided = futures_util::future::join_all(decide).await;
    let mut modules = Vec::new();
    let mut warnings = Vec::new();
    for (Listed { id, version, info: layer_info, dirs, .. }, decided) in listed.into_iter().zip(decided) {
        let (layer, said) = decided?;
        warnings.extend(said);
        let info = ModuleInfo {
            id: id.clone(),
            name: layer_info.name.clone(),
            version: version.clone(),
            homepage: layer_info.homepage.clone(),
            ..ModuleInfo::default()
        };
        modules.push(PendingModule {
            dirs,
            info,
            layer_info: layer_info.clone(),
            layer,
            has_build_bin: false,
            from_package: true,
            source: uri.to_owned(),
        });
    }
    let main = modules
        .iter()
        .position(|m| m.info.id == meta.id && m.info.version == meta.version)
        .ok_or_else(|| invalid(format!("it has no layer for its main {} '{}'", kind.noun(), meta.full_name())))?;
    let main = modules.remove(main);
    if kind == ModuleKind::Extension {
        return Ok((vec![main], warnings));
    }
    modules.sort_by(|a, b| {
        (a.info.id.as_bytes(), a.info.version.as_bytes()).cmp(&(b.info.id.as_bytes(), b.info.version.as_bytes()))
    });
    modules.insert(0, main);
    Ok((modules, warnings))
}

/// A package layer must be a tar, gzipped or not.
fn check_media_type(blob: &LayerBlob) -> Result<(), String> {
    let mt = &blob.descriptor.media_type;
    if media_type::is_gzip_layer(mt) || mt == media_type::OCI_LAYER_TAR {
        Ok(())
    } else {
        Err(format!("unsupported layer media type {}", cnbx_fs::excerpt(mt)))
    }
}

/// A module a buildpackage's layers label lists, as [`modules_from_image`] found it.
struct Listed<'a> {
    id: &'a String,
    version: &'a String,
    info: &'a labels::ModuleLayerInfo,
    /// Its place in the builder (checked).
    dirs: ModuleDirs,
    /// Its layer's index in the image, if the image has it.
    idx: Option<usize>,
    /// Whether that layer holds other modules too.
    shared: bool,
    /// The remembered verdict on that layer (not looked up for a shared one).
    recalled: Option<LayerVerdict>,
}

fn blob_path(blob: &LayerBlob) -> Option<std::path::PathBuf> {
    match &blob.source {
        BlobSource::Store(store) => Some(store.path(&blob.descriptor.digest)),
        BlobSource::Registry(_) => None,
    }
}

/// What a buildpackage layer needs before it can go into a builder.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
enum LayerVerdict {
    /// Nothing: it is reused byte for byte.
    Verbatim,
    /// Re-encoding, which changes what these messages say.
    Mend(Vec<String>),
}

/// The revision of [`scan_layer`]'s logic: bump it when the verdict on the same layer changes,
/// so that verdicts remembered before are not reused. 2: layers are read as Go reads them
/// (a verdict of revision 1, which read some headers otherwise, is not recalled).
const LAYER_SCAN_REVISION: u32 = 2;

impl Memo for LayerVerdict {
    const DIR: &'static str = "layer-scans";

    fn logic() -> String {
        format!("buildpackage layer scan, revision {LAYER_SCAN_REVISION}")
    }
}

/// Where the verdict on `blob` as the layer of `dirs` is remembered: by the blob's digest and
/// diffID (its content cannot change under them) and the module's place; the logic that made
/// it is part of the key ([`LAYER_SCAN_REVISION`]).
fn verdict_key(dirs: &ModuleDirs, blob: &LayerBlob) -> String {
    let (id, version) = (&dirs.id, &dirs.version);
    format!("{}\n{}\n{}\n{id}\n{version}", blob.descriptor.digest, blob.diff_id, dirs.kind.dir())
}

/// The remembered verdict on `blob`, if a scan of it was remembered.
fn remembered_verdict(ctx: &FetchContext<'_>, dirs: &ModuleDirs, blob: &LayerBlob) -> Option<LayerVerdict> {
    ctx.images.home().recall(&verdict_key(dirs, blob))
}

/// How many layer scans run at once, over all packages: one per core (a scan inflates and
/// hashes, which keeps a core busy).
static SCANS: std::sync::LazyLock<tokio::sync::Semaphore> = std::sync::LazyLock::new(|| {
    tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get))
});

/// [`scan_layer`] on a blocking thread (other packages download meanwhile), and its verdict
/// remembered (see [`verdict_key`]).
async fn scan_and_remember(
    ctx: &FetchContext<'_>,
    dirs: &ModuleDirs,
    blob: &LayerBlob,
    path: &Path,
) -> Result<LayerVerdict, PackageProblem> {
    let stopped = || PackageProblem::Invalid(format!("the scan of layer {} stopped", blob.diff_id));
    let _permit = SCANS.acquire().await.map_err(|_| stopped())?;
    let (owned_dirs, diff_id, owned_path) = (dirs.clone(), blob.diff_id.clone(), path.to_path_buf());
    let verdict = tokio::task::spawn_blocking(move || scan_layer(&owned_dirs, &diff_id, &owned_path))
        .await
        .map_err(|_| stopped())??;
    ctx.images.remember(&verdict_key(dirs, blob), &verdict);
    Ok(verdict)
}

/// Reads a buildpackage layer once: its uncompressed content must hash to `diff_id`, and
/// every entry must belong to `id@version` (see [`stream::belongs`]), except root-owned
/// 0755 directory entries for `/cnb` and the module kind's directory, which are harmless.
/// Entries inside are checked as the layer's [`Confinement`] would check them. The entries are
/// those Go's `archive/tar` (what unpacks the builder) reads, with the rules for a layer reused
/// byte for byte ([`cnbx_oci::tarread::Use::Verbatim`]): a layer some reader could read
/// otherwise is refused, naming the layer and the entry.
fn scan_layer(dirs: &ModuleDirs, diff_id: &Digest, path: &Path) -> Result<LayerVerdict, PackageProblem> {
    let invalid = PackageProblem::Invalid;
    let (kind, eid, version) = (dirs.kind, dirs.id.escaped(), dirs.version.as_str());
    let mut confiner = Confiner::new(stream::module_confinement(dirs));
    let ancestors = ["/cnb".to_owned(), kind.dir().to_owned()];
    let mut mend: Vec<String> = Vec::new();
    let file = cnbx_fs::open_regular(path)?;
    let layer_err = |e: std::io::Error| invalid(format!("reading layer {diff_id}: {}", cnbx_oci::archive::safe_io(e)));
    let stream = cnbx_oci::archive::decompressed(file.file).map_err(layer_err)?;
    let mut hashing = HashingReader::new(stream);
    cnbx_oci::archive::read_verbatim_entries(
        &mut hashing,
        |raw, _| {
            let name = raw.path.clone();
            // Only quoted in messages: worked out when one is written (not for every entry).
            let shown = || cnbx_fs::excerpt(&name);
            if name.split('/').any(|c| c == "..") {
                return Err(invalid(format!("layer {diff_id}: entry '{}': its name climbs out with '..'", shown())));
            }
            let canonical = format!("/{}", clean_name(&name));
            if canonical == "/." || ancestors.contains(&canonical) {
                let harmless = raw.kind == EntryKind::Dir && raw.mode & 0o7777 == 0o755 && raw.uid == 0 && raw.gid == 0;
                if !harmless {
                    mend.push(format!("entry '{}' (outside its directory) was left out", shown()));
                }
                return Ok(());
            }
            if !stream::belongs(&name, kind, &eid, version) {
                let roots = format!("{}/{eid}/{version}/", kind.dir());
                return Err(invalid(format!(
                    "layer {diff_id}: entry '{}': it is outside {roots}, the only place it may write",
                    shown()
                )));
            }
            let (sanitized, changes) = cnbx_oci::confine::sanitize(raw.clone());
            mend.extend(changes.iter().map(|c| format!("entry '{}': {c}", shown())));
            let Some(canon) = stream::canonical_package_entry(raw) else { return Ok(()) };
            if sanitized.is_some() {
                confiner.check(&canon).map_err(|e| invalid(format!("layer {diff_id}: {e}")))?;
            }
            Ok(())
        },
        layer_err,
    )?;
    std::io::copy(&mut hashing, &mut std::io::sink()).map_err(layer_err)?;
    let (_, actual, _) = hashing.finish();
    if actual != *diff_id {
        return Err(invalid(format!(
            "layer {} does not hold what the image config says: its content has diffID {actual}, not {diff_id}",
            blob_digest_hint(path)
        )));
    }
    Ok(if mend.is_empty() { LayerVerdict::Verbatim } else { LayerVerdict::Mend(mend) })
}

fn blob_digest_hint(path: &Path) -> String {
    path.file_name().map(|n| format!("sha256:{}", n.to_string_lossy())).unwrap_or_default()
}

/// A `.cnb` buildpackage read into a staging blob store under `CNBX_HOME/tmp`: nothing of
/// it reaches the cnbx store until it has been checked ([`Staged::promote`]); dropped, it
/// removes every staged blob.
pub(crate) struct Staged {
    dir: tempfile::TempDir,
    /// The package image, its blobs in the staging store.
    pub(crate) image: SourceImage,
}

impl Staged {
    /// Moves the staged blobs into the cnbx blob store and returns the image reading them
    /// from there. A [read-only](crate::images::Images::read_only) command moves nothing: it
    /// reads the store's copies when the store has every blob already (as a create would
    /// after moving them), else the staged ones, kept until the command ends.
    pub(crate) fn promote(self, ctx: &FetchContext<'_>, uri: &str) -> Result<SourceImage, ModuleError> {
        let store = ctx.images.blobs();
        let mut digests = vec![self.image.manifest.digest.clone(), self.image.config_raw.digest.clone()];
        digests.extend(self.image.manifest.value.layers.iter().map(|l| l.digest.clone()));
        if ctx.images.is_read_only() {
            if digests.iter().all(|d| store.has_valid(d, None).unwrap_or(false)) {
                return Ok(SourceImage { source: BlobSource::Store(store.clone()), ..self.image });
            }
            ctx.images.keep_scratch(self.dir);
            return Ok(self.image);
        }
        let staging = BlobStore::open(self.dir.path()).map_err(|e| ModuleError::io("opening the staging area", e))?;
        for d in &digests {
            store
                .import_from(&staging, d)
                .map_err(|source| package_error(uri)(PackageProblem::Store { digest: d.clone(), source }))?;
        }
        Ok(SourceImage { source: BlobSource::Store(store.clone()), ..self.image })
    }
}

/// Reads a `.cnb` file (a tar holding an OCI layout) in one pass, without extracting it:
/// every `blobs/sha256/<hex>` entry is copied into a staging blob store while it is hashed,
/// and kept only if its content has that digest; `oci-layout` and `index.json` are read with
/// a bound. Links, devices and other special entries under `blobs/` are refused. Then the
/// first manifest of `index.json` (for the build image's platform, if it is an index) is read
/// from the staging store.
pub(crate) fn read_cnb(ctx: &FetchContext<'_>, file: &Path, uri: &str) -> Result<Staged, ModuleError> {
    let package = package_error(uri);
    let invalid = |msg: String| package(msg.into());
    let read_err = |e: std::io::Error| ModuleError::io(format!("reading '{uri}'"), cnbx_oci::archive::safe_io(e));
    let dir = ctx.images.scratch_dir().map_err(|e| ModuleError::io("creating a staging directory", e))?;
    let blobs = BlobStore::open(dir.path()).map_err(|e| ModuleError::io("creating a staging directory", e))?;
    let opened = cnbx_oci::layer::open_archive_file(file).map_err(read_err)?;
    let stream = cnbx_oci::archive::decompressed(opened.file).map_err(read_err)?;
    let mut layout_marker: Option<Vec<u8>> = None;
    let mut index: Option<Vec<u8>> = None;
    let small = |entry: &mut dyn std::io::Read, size: u64, limit: u64, name: &str| -> Result<Vec<u8>, ModuleError> {
        if size > limit {
            return Err(invalid(format!("{name} is larger than the {limit} bytes cnbx reads for it")));
        }
        let mut buf = Vec::new();
        entry.take(limit).read_to_end(&mut buf).map_err(read_err)?;
        Ok(buf)
    };
    cnbx_oci::archive::read_entries(
        stream,
        |header, entry| {
            let name = clean_name(&header.path);
            let is_file = header.kind == EntryKind::File;
            match name.as_str() {
                "oci-layout" if is_file => {
                    layout_marker = Some(small(entry, header.size, cnbx_fs::limits::MAX_DESCRIPTOR, "oci-layout")?);
                }
                "index.json" if is_file => {
                    index = Some(small(entry, header.size, cnbx_fs::limits::MAX_DOCUMENT, "index.json")?);
                }
                n if n.starts_with("blobs/") => {
                    let shown = cnbx_fs::excerpt(n);
                    if header.kind == EntryKind::Dir {
                        return Ok(());
                    }
                    if !is_file {
                        return Err(invalid(format!("blob '{shown}' is not a regular file (links are refused)")));
                    }
                    let digest = n
                        .strip_prefix("blobs/sha256/")
                        .and_then(|hex| format!("sha256:{hex}").parse::<Digest>().ok())
                        .ok_or_else(|| invalid(format!("'{shown}' is not a sha256 blob name")))?;
                    blobs
                        .put_verified(entry, &digest, header.size)
                        .map_err(|source| package(PackageProblem::Blob { name: shown, source }))?;
                }
                _ => {}
            }
            Ok(())
        },
        |e| invalid(format!("reading it: {e}")),
    )?;
    let marker = layout_marker.ok_or_else(|| invalid("it has no oci-layout file".into()))?;
    let version = serde_json::from_slice::<serde_json::Value>(&marker)
        .ok()
        .and_then(|v| v.get("imageLayoutVersion").and_then(|v| v.as_str()).map(str::to_owned))
        .unwrap_or_default();
    if !version.starts_with("1.") {
        return Err(invalid(format!("unsupported imageLayoutVersion '{}'", cnbx_fs::excerpt(&version))));
    }
    let index_bytes = index.ok_or_else(|| invalid("it has no index.json".into()))?;
    let index: Index =
        serde_json::from_slice(&index_bytes).map_err(|e| package(PackageProblem::IndexJson(e.into())))?;
    let desc = index
        .manifests
        .iter()
        .find(|d| media_type::is_manifest(&d.media_type) || media_type::is_index(&d.media_type))
        .ok_or_else(|| invalid("index.json has no image manifest".into()))?;
    let platform = media_type::is_index(&desc.media_type).then_some(ctx.platform);
    cnbx_fs::write_atomic(&dir.path().join("oci-layout"), &marker)
        .and_then(|()| cnbx_fs::write_atomic(&dir.path().join("index.json"), &index_bytes))
        .map_err(|e| ModuleError::io("writing to the staging area", e))?;
    let layout_err = |e: cnbx_oci::layout::LayoutError| package(e.into());
    let layout = OciLayout::open(dir.path()).map_err(layout_err)?;
    let image = layout.read_descriptor(desc, "", uri, platform).map_err(layout_err)?;
    for layer in &image.manifest.value.layers {
        if !blobs.contains(&layer.digest) {
            return Err(invalid(format!("it has no blob for layer {}", layer.digest)));
        }
    }
    Ok(Staged { dir, image })
}
