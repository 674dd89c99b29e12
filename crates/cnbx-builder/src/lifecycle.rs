//! The lifecycle: where it comes from, its `lifecycle.toml`, and its layer
//! (docs/pack-compatibility.md, *The lifecycle* and *Layers, in order*).

use std::path::Path;

use cnbx_model::{LifecycleDescriptor, LifecycleDescriptorError, LifecycleSource};
use cnbx_oci::confine::{Confinement, sanitize};
use cnbx_oci::image::BlobSource;
use cnbx_oci::layer::{ArchiveSource, LayerRecipe, walk_dir};
use cnbx_oci::progress::ReporterExt;
use cnbx_oci::tarball::{EntryKind, TarEntry, TarError, TarTime, clean_path};
use cnbx_refs::ImageLocation;

use crate::assemble::Lifecycle;
use crate::images::ImageFetchError;
use crate::scan::{ArchiveError, ScanSpec, clean_name, scan_cached};
use crate::source::{DownloadError, FetchContext, Located, SourceError, download, uri_to_local};

/// The binaries a lifecycle archive must contain.
pub const REQUIRED_BINARIES: [&str; 7] =
    ["detector", "restorer", "analyzer", "builder", "exporter", "launcher", "creator"];

/// An error about the lifecycle: pack's `fetch lifecycle`, then what went wrong.
#[derive(Debug, thiserror::Error)]
#[error("fetch lifecycle")]
pub struct LifecycleError(#[source] LifecycleProblem);

impl LifecycleError {
    /// What went wrong.
    pub fn problem(&self) -> &LifecycleProblem {
        &self.0
    }
}

impl From<LifecycleProblem> for LifecycleError {
    fn from(problem: LifecycleProblem) -> Self {
        Self(problem)
    }
}

/// What went wrong with the lifecycle (its messages follow pack's `fetch lifecycle: `).
#[derive(Debug, thiserror::Error)]
pub enum LifecycleProblem {
    /// The archive is not a valid lifecycle (`invalid lifecycle: …`).
    #[error("invalid lifecycle: {0}")]
    Invalid(String),
    /// Its `lifecycle.toml` cannot be read.
    #[error("invalid lifecycle")]
    Descriptor(#[source] LifecycleDescriptorError),
    /// The lifecycle could not be obtained.
    #[error("{0}")]
    Fetch(String),
    /// The lifecycle release could not be downloaded.
    #[error(
        "downloading lifecycle from '{url}' (without network access, download it elsewhere and set \
         [lifecycle] uri = \"<path to the .tgz>\" in builder.toml)"
    )]
    Download {
        /// The release URL.
        url: String,
        /// Why.
        #[source]
        source: DownloadError,
    },
    /// The lifecycle image's layers do not match its config.
    #[error(transparent)]
    ImageLayers(cnbx_oci::image::ImageError),
    /// A lifecycle image could not be read.
    #[error("Could not parse uri from lifecycle image")]
    Image(#[source] ImageFetchError),
    /// Locating or downloading failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The archive cannot be read, or cannot become a layer.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// A file of the lifecycle could not be read.
    #[error("reading {}", .path.display())]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A lifecycle directory cannot be read.
    #[error("invalid lifecycle")]
    Directory(#[source] cnbx_fs::FsError),
    /// Building the layer failed.
    #[error("building the layer of lifecycle")]
    Layer(#[source] Box<cnbx_oci::layer::LayerError>),
    /// The thread building the layer ended without a result.
    #[error("the lifecycle layer build stopped unexpectedly")]
    LayerStopped,
}

/// The release URL of lifecycle `version` for `arch` (and a warning when `arch` has no
/// release), as pack builds it. `os` is the build image's OS.
pub fn release_url(version: &str, os: &str, arch: &str) -> (String, Option<String>) {
    let (platform, warning) = if os == "windows" {
        ("windows.x86-64".to_owned(), None)
    } else {
        match arch {
            "amd64" | "x86-64" => ("linux.x86-64".to_owned(), None),
            "arm64" | "ppc64le" | "s390x" => (format!("linux.{arch}"), None),
            other => (
                "linux.x86-64".to_owned(),
                Some(format!(
                    "failed to find a lifecycle binary for requested architecture '{other}', defaulting to 'x86-64'"
                )),
            ),
        }
    };
    (
        format!(
            "https://github.com/buildpacks/lifecycle/releases/download/v{version}/lifecycle-v{version}+{platform}.tgz"
        ),
        warning,
    )
}

/// How names of the source are turned into lifecycle-archive names.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Naming {
    /// A release archive: names as they are.
    Archive,
    /// A lifecycle image layer: `/cnb` dropped, `/cnb/` trimmed.
    Image,
}

fn archive_name(name: &str, naming: Naming) -> Option<String> {
    match naming {
        Naming::Archive => Some(clean_name(name)),
        Naming::Image => {
            let c = clean_name(name);
            if c == "cnb" {
                return None;
            }
            Some(c.strip_prefix("cnb/").map(str::to_owned).unwrap_or(c))
        }
    }
}

/// The `<name>` of a two-component cleaned path `<x>/<name>`.
fn second_component(name: &str) -> Option<&str> {
    let (a, b) = name.split_once('/')?;
    (!a.is_empty() && !b.is_empty() && !b.contains('/')).then_some(b)
}

/// The name a lifecycle binary is checked by, if `name` (an archive name as `naming` spells
/// it) is a required binary: `<x>/<binary>` or `<x>/<binary>.exe`.
fn binary_name(name: &str, naming: Naming) -> Option<String> {
    let n = archive_name(name, naming)?;
    let base = second_component(&n)?;
    let bin = base.strip_suffix(".exe").unwrap_or(base);
    REQUIRED_BINARIES.contains(&bin).then(|| bin.to_owned())
}

fn check_binaries<'a>(found: impl IntoIterator<Item = &'a str>) -> Result<(), LifecycleProblem> {
    let found: Vec<&str> = found.into_iter().collect();
    for bin in REQUIRED_BINARIES {
        if !found.contains(&bin) {
            return Err(LifecycleProblem::Invalid(format!("validating binaries: did not find '{bin}' in tar")));
        }
    }
    Ok(())
}

fn symlink_entry() -> TarEntry {
    TarEntry::symlink("/lifecycle", "/cnb/lifecycle")
}

/// Where the lifecycle layer may write: `/cnb/lifecycle/`, and the `/lifecycle` link.
fn lifecycle_confinement() -> Confinement {
    Confinement::new("/cnb/lifecycle").with_extra("/lifecycle")
}

/// The mapping of a lifecycle archive's entries (names as `naming` spells them) into the
/// lifecycle layer: only `<x>/<name>` entries, as `/cnb/lifecycle/<name>`, hard link targets
/// likewise, special files left out, set-id bits and extended attributes cleared.
fn lifecycle_map(naming: Naming) -> impl Fn(TarEntry) -> Result<Option<TarEntry>, TarError> + Send + Sync {
    move |e: TarEntry| {
        let (e, _) = sanitize(e);
        let Some(mut e) = e else { return Ok(None) };
        let Some(name) = archive_name(&e.path, naming) else { return Ok(None) };
        let Some(base) = second_component(&name) else { return Ok(None) };
        e.path = format!("/cnb/lifecycle/{base}");
        if let EntryKind::Hardlink { target } = &e.kind {
            // Rebased like the names, unless it is absolute or climbs: then it is kept, and
            // the confinement refuses it.
            let climbs = target.starts_with('/') && naming == Naming::Archive || target.split('/').any(|c| c == "..");
            let t = archive_name(target, naming).unwrap_or_default();
            let t = match second_component(&t) {
                Some(b) if !climbs => format!("/cnb/lifecycle/{b}"),
                _ => target.clone(),
            };
            e.kind = EntryKind::Hardlink { target: t };
        }
        Ok(Some(e))
    }
}

/// The lifecycle layer from an archive (tar / tar.gz) whose names follow `naming`.
fn archive_recipe(path: &Path, naming: Naming) -> Result<LayerRecipe, LifecycleProblem> {
    let mut r = LayerRecipe::new("lifecycle").with_confinement(lifecycle_confinement());
    r.push_header(TarEntry::dir("/cnb/lifecycle"));
    let mapping = match naming {
        Naming::Archive => "lifecycle v2 archive",
        Naming::Image => "lifecycle v2 image",
    };
    let source = ArchiveSource::new(path, mapping, lifecycle_map(naming))
        .map_err(|source| LifecycleProblem::Read { path: path.to_path_buf(), source })?;
    r.push_archive(source);
    r.push_header(symlink_entry());
    Ok(r)
}

/// The lifecycle layer from a directory (`<x>/<name>` entries; owners and times normalised).
fn dir_recipe(dir: &Path, reporter: &dyn cnbx_oci::progress::Reporter) -> Result<LayerRecipe, LifecycleProblem> {
    let mut r = LayerRecipe::new("lifecycle").with_confinement(lifecycle_confinement());
    r.push_header(TarEntry::dir("/cnb/lifecycle"));
    let mut walk = walk_dir(dir);
    for w in walk.by_ref() {
        let w = w.map_err(|e| LifecycleProblem::Read { path: e.path, source: e.source })?;
        let Some(base) = second_component(&w.rel_path).map(str::to_owned) else { continue };
        if w.mode & 0o6000 != 0 {
            reporter.warn(&format!(
                "lifecycle file '{}': its setuid/setgid bits were cleared",
                cnbx_fs::excerpt(&w.rel_path)
            ));
        }
        let mut entry = w.into_layer_entry();
        entry.header.path = format!("/cnb/lifecycle/{base}");
        entry.header.uid = 0;
        entry.header.gid = 0;
        entry.header.mode &= !0o6000;
        entry.header.mtime = TarTime::NORMALIZED;
        if let EntryKind::Hardlink { target } = &entry.header.kind {
            let t = clean_path(target);
            let t = second_component(&t).unwrap_or(&t).to_owned();
            entry.header.kind = EntryKind::Hardlink { target: format!("/cnb/lifecycle/{t}") };
        }
        r.push(entry);
    }
    for s in walk.skipped() {
        reporter.warn(&format!("lifecycle file '{}' was left out: it is {}", cnbx_fs::excerpt(&s.rel_path), s.what));
    }
    r.push_header(symlink_entry());
    Ok(r)
}

fn offline_hint(url: &str, err: SourceError) -> LifecycleProblem {
    match err {
        SourceError::Download { problem, .. } => LifecycleProblem::Download { url: url.to_owned(), source: problem },
        other => LifecycleProblem::Source(other),
    }
}

/// Fetches the lifecycle, validates it and builds its layer through the cache.
/// `os`/`arch` of the build image pick the release for [`LifecycleSource::Version`]
/// (`arch` may be given as `os/arch`; a bare arch means Linux).
pub async fn fetch_lifecycle(
    ctx: &FetchContext<'_>,
    location: &LifecycleSource,
    arch: &str,
) -> Result<Lifecycle, LifecycleError> {
    let pending = locate_lifecycle(ctx, location, arch).await?;
    let layer = pending.layer.await.map_err(|_| LifecycleProblem::LayerStopped)?;
    let layer = layer.map_err(|e| LifecycleProblem::Layer(Box::new(e)))?;
    Ok(Lifecycle { metadata: pending.metadata, layer })
}

/// A lifecycle located, read and checked, whose layer is being built on a blocking thread
/// (so that the caller goes on with other work meanwhile).
#[derive(Debug)]
pub struct PendingLifecycle {
    /// The lifecycle's version and APIs (compat mapping applied).
    pub metadata: LifecycleDescriptor,
    /// Its layer, being built.
    pub layer: tokio::task::JoinHandle<Result<cnbx_oci::LayerBlob, cnbx_oci::layer::LayerError>>,
}

/// Everything of [`fetch_lifecycle`] but building the layer.
pub async fn locate_lifecycle(
    ctx: &FetchContext<'_>,
    location: &LifecycleSource,
    arch: &str,
) -> Result<PendingLifecycle, LifecycleError> {
    Ok(locate(ctx, location, arch).await?)
}

async fn locate(
    ctx: &FetchContext<'_>,
    location: &LifecycleSource,
    arch: &str,
) -> Result<PendingLifecycle, LifecycleProblem> {
    let (os, arch) = arch.split_once('/').unwrap_or(("linux", arch));
    let (source, naming): (Located, Naming) = match location {
        LifecycleSource::Version(v) => {
            let (url, warning) = release_url(&v.to_string(), os, arch);
            if let Some(w) = warning {
                ctx.reporter.warn(&w);
            }
            let path = download(ctx, &url).await.map_err(|e| offline_hint(&url, e))?;
            (Located::File(path), Naming::Archive)
        }
        LifecycleSource::Uri(uri) if let Some(name) = ImageLocation::strip_docker_scheme(uri) => {
            let image =
                ctx.images.get(name, ctx.base_dir, None).await.map_err(LifecycleProblem::Image)?.ok_or_else(|| {
                    LifecycleProblem::Fetch(format!(
                        "Could not parse uri from lifecycle image: image '{name}' not found"
                    ))
                })?;
            let image = ctx.images.with_local_layers(&image).await.map_err(LifecycleProblem::Image)?;
            let layers = image.layers().map_err(LifecycleProblem::ImageLayers)?;
            let last = layers.last().ok_or_else(|| {
                LifecycleProblem::Fetch(
                    "Could not parse uri from lifecycle image: lifecycle image has no layers".into(),
                )
            })?;
            let path = match &last.source {
                BlobSource::Store(store) => store.path(&last.descriptor.digest),
                BlobSource::Registry(_) => {
                    return Err(LifecycleProblem::Fetch(
                        "Could not parse uri from lifecycle image: layer is not local".into(),
                    ));
                }
            };
            (Located::File(path), Naming::Image)
        }
        LifecycleSource::Uri(uri) => (uri_to_local(ctx, uri).await?, Naming::Archive),
    };

    let not_found = || LifecycleProblem::Invalid("could not find entry path 'lifecycle.toml': not exist".into());
    let (toml_bytes, layer) = match &source {
        Located::Dir(dir) => {
            let mut names: Vec<String> = Vec::new();
            for w in walk_dir(dir) {
                let w = w.map_err(|e| LifecycleProblem::Read { path: e.path, source: e.source })?;
                names.extend(binary_name(&w.rel_path, Naming::Archive));
            }
            let safe = cnbx_fs::SafeDir::open(dir).map_err(LifecycleProblem::Directory)?;
            let text = safe
                .read_file(std::ffi::OsStr::new("lifecycle.toml"), cnbx_fs::limits::MAX_DESCRIPTOR, "lifecycle.toml")
                .map_err(|e| if e.is_not_found() { not_found() } else { LifecycleProblem::Directory(e) })?;
            check_binaries(names.iter().map(String::as_str))?;
            (text, ctx.layers.spawn(dir_recipe(dir, ctx.reporter)?))
        }
        Located::File(path) => {
            let map = lifecycle_map(naming);
            let notable = move |n: &str| binary_name(n, naming);
            let spec = ScanSpec {
                id: match naming {
                    Naming::Archive => "lifecycle v2 archive",
                    Naming::Image => "lifecycle v2 image",
                },
                want: &["lifecycle.toml", "cnb/lifecycle.toml"],
                notable: &notable,
                layer: Some((&map, lifecycle_confinement())),
            };
            // The layer is built (its entries confined on their own) while the archive is
            // scanned: on a cold create these are two reads of the whole archive, which now run
            // at once. If the scan refuses the archive, the layer built meanwhile is only a
            // cache entry nothing uses.
            let layer = ctx.layers.spawn(archive_recipe(path, naming)?);
            let what = format!("lifecycle archive {}", path.display());
            let mut scan = scan_cached(ctx.images, path, &spec).map_err(|e| e.reading(&what))?;
            for w in &scan.warnings {
                ctx.reporter.warn(&format!("{what}: {w}"));
            }
            let name = match naming {
                Naming::Image if scan.files.contains_key("cnb/lifecycle.toml") => "cnb/lifecycle.toml",
                _ => "lifecycle.toml",
            };
            let text = scan.files.remove(name).ok_or_else(not_found)?;
            check_binaries(scan.notable.iter().map(String::as_str))?;
            (text, layer)
        }
        Located::Image(_) => unreachable!("uri_to_local returns local paths"),
    };
    let toml_text =
        String::from_utf8(toml_bytes).map_err(|_| LifecycleProblem::Invalid("lifecycle.toml is not UTF-8".into()))?;
    let metadata = LifecycleDescriptor::parse(&toml_text).map_err(LifecycleProblem::Descriptor)?;
    Ok(PendingLifecycle { metadata, layer })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let (u, w) = release_url("0.21.0", "linux", "amd64");
        assert_eq!(
            u,
            "https://github.com/buildpacks/lifecycle/releases/download/v0.21.0/lifecycle-v0.21.0+linux.x86-64.tgz"
        );
        assert!(w.is_none());
        assert!(release_url("0.21.0", "linux", "arm64").0.ends_with("+linux.arm64.tgz"));
        assert!(release_url("0.21.0", "windows", "arm64").0.ends_with("+windows.x86-64.tgz"));
        let (u, w) = release_url("0.21.0", "linux", "riscv64");
        assert!(u.ends_with("+linux.x86-64.tgz"));
        assert_eq!(
            w.unwrap(),
            "failed to find a lifecycle binary for requested architecture 'riscv64', defaulting to 'x86-64'"
        );
    }

    #[test]
    fn names() {
        assert_eq!(second_component("lifecycle/detector"), Some("detector"));
        assert_eq!(second_component("lifecycle"), None);
        assert_eq!(second_component("a/b/c"), None);
        assert_eq!(archive_name("/cnb", Naming::Image), None);
        assert_eq!(archive_name("/cnb/lifecycle/detector", Naming::Image).unwrap(), "lifecycle/detector");
        assert_eq!(archive_name("./lifecycle/detector", Naming::Archive).unwrap(), "lifecycle/detector");
    }
}
