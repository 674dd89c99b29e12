//! Buildpacks and extensions: locating them, reading their descriptors, building their
//! layers, validating them against the lifecycle and the build image, and resolving orders
//! (docs/pack-compatibility.md: *Locators*, *Module descriptors*, *Buildpackages*, *Module
//! checks*, *Order resolution*).
//!
//! * [`fetch_modules`]: every `[[buildpacks]]` / `[[extensions]]` entry → [`Module`]s with
//!   their layers (directory and tar modules built through the layer cache, in parallel;
//!   package-image layers holding one module reused byte for byte). Where a locator points
//!   is [`crate::source`]'s business, the layer recipes are [`crate::assemble::stream`]'s.
//! * [`validate_modules`], [`resolve_order`], [`resolve_system`]: the module checks and order
//!   resolution.
//!
//! Error texts are pack's where pack has one, without the step prefixes pack adds
//! (`failed to add buildpacks to builder: …`, `validating buildpacks: …` /
//! `validating extensions: …`, `processing buildpacks order: …`, `processing system
//! buildpacks: …`): the caller adds those.

mod package;
mod validate;

use cnbx_config::ModuleConfig;
use cnbx_model::{DescriptorError, IdentError, ModuleDescriptor, ModuleDirs, ModuleInfo, ModuleKind};
use cnbx_oci::layer::LayerError;
use cnbx_oci::progress::ReporterExt;
use futures_util::{StreamExt as _, TryStreamExt as _};
use rayon::prelude::*;

pub use package::{PACKAGE_METADATA, PackageError, PackageProblem};
pub use validate::{MAX_ORDER_DEPTH, resolve_order, resolve_system, validate_modules, validate_modules_with};

use crate::assemble::stream::{self, RecipeError};
use crate::assemble::{Module, PendingLayer, off_executor};
use crate::labels::ModuleLayerInfo;
use crate::scan::{self, ArchiveError, ScanSpec, TarScan};
use crate::source::{self, FetchContext, Located, SourceError};

/// What validation needs to know about the build image.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildImageFacts {
    /// `io.buildpacks.stack.id`.
    pub stack_id: String,
    /// `io.buildpacks.stack.mixins`.
    pub mixins: Vec<String>,
    /// OS.
    pub os: String,
    /// Architecture.
    pub arch: String,
    /// `io.buildpacks.base.distro.name`.
    pub distro_name: String,
    /// `io.buildpacks.base.distro.version`.
    pub distro_version: String,
}

/// Errors about modules.
#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    /// The module cannot be located or fetched.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// A module, package or config entry is invalid (pack's message where pack has one).
    #[error("{0}")]
    Invalid(String),
    /// A module descriptor cannot be used.
    #[error(transparent)]
    Descriptor(#[from] DescriptorError),
    /// A module id or version cannot be a directory name.
    #[error(transparent)]
    Ident(#[from] IdentError),
    /// A buildpackage cannot be used.
    #[error(transparent)]
    Package(#[from] package::PackageError),
    /// A module archive cannot be read, or cannot become a layer.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// A module directory or archive cannot be read.
    #[error("reading {what}")]
    Read {
        /// What was being read.
        what: String,
        /// Why.
        #[source]
        source: cnbx_fs::FsError,
    },
    /// A module's files cannot be read to make its layer.
    #[error(transparent)]
    Recipe(#[from] RecipeError),
    /// A validation or order-resolution rule failed.
    #[error("{0}")]
    Validation(String),
    /// Reading or writing a file failed.
    #[error("{what}")]
    Io {
        /// What was being done.
        what: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// An image could not be read.
    #[error("reading image '{image}'")]
    Image {
        /// The image.
        image: String,
        /// What failed.
        #[source]
        source: Box<crate::images::ImageFetchError>,
    },
    /// Building a layer failed.
    #[error("building the layer of {layer}")]
    Layer {
        /// The layer's name.
        layer: String,
        /// What failed.
        #[source]
        source: Box<LayerError>,
    },
}

impl ModuleError {
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io { what: what.into(), source }
    }
}

/// A module whose layer may still have to be built.
pub(crate) struct PendingModule {
    pub(crate) dirs: ModuleDirs,
    pub(crate) info: ModuleInfo,
    pub(crate) layer_info: ModuleLayerInfo,
    /// The layer, or the recipe that builds it.
    pub(crate) layer: PendingLayer,
    pub(crate) has_build_bin: bool,
    pub(crate) from_package: bool,
    pub(crate) source: String,
}

/// A [`PendingModule`] without its layer.
struct ModuleHead {
    dirs: ModuleDirs,
    info: ModuleInfo,
    layer_info: ModuleLayerInfo,
    has_build_bin: bool,
    from_package: bool,
    source: String,
}

/// The notable names of a module archive: `bin/build` (and its Windows forms) and
/// `oci-layout` (a `.cnb`).
fn module_notable(name: &str) -> Option<String> {
    matches!(name, "bin/build" | "bin/build.bat" | "bin/build.exe" | "oci-layout").then(|| name.to_owned())
}

/// What to look for in a module archive, and the layer it may become (its entries mapped
/// under a stand-in directory: where a name lands does not depend on the module's id).
fn module_scan_spec<'a>(kind: ModuleKind, map: &'a cnbx_oci::layer::EntryMap) -> ScanSpec<'a> {
    ScanSpec {
        id: match kind {
            ModuleKind::Buildpack => "module v1 buildpack",
            ModuleKind::Extension => "module v1 extension",
        },
        want: match kind {
            ModuleKind::Buildpack => &["buildpack.toml"],
            ModuleKind::Extension => &["extension.toml"],
        },
        notable: &module_notable,
        layer: Some((
            map,
            cnbx_oci::confine::Confinement::new(SCAN_BASE)
                .with_parent_dir(SCAN_PARENT)
                .shown_as(format!("the {}'s own directory", kind.noun())),
        )),
    }
}

/// The stand-in module directory of [`module_scan_spec`].
const SCAN_PARENT: &str = "/cnb/buildpacks/scan";
const SCAN_BASE: &str = "/cnb/buildpacks/scan/0";

/// A root blob (directory or archive) module: descriptor read, recipe made.
fn root_blob(
    kind: ModuleKind,
    located: &Located,
    scan: Option<TarScan>,
    uri: &str,
) -> Result<(PendingModule, Vec<String>), ModuleError> {
    let file = kind.descriptor_file();
    let what = format!("{file} of '{uri}'");
    let (text, has_build_bin, mut warnings) = match located {
        Located::Dir(dir) => {
            let safe =
                cnbx_fs::SafeDir::open(dir).map_err(|source| ModuleError::Read { what: what.clone(), source })?;
            let text = safe
                .read_file(std::ffi::OsStr::new(file), cnbx_fs::limits::MAX_DESCRIPTOR, "a module descriptor")
                .map_err(|e| match e {
                    e if e.is_not_found() => {
                        ModuleError::Invalid(format!("reading {what}: could not find entry path '{file}': not exist"))
                    }
                    source => ModuleError::Read { what: what.clone(), source },
                })?;
            let bin = ["bin/build", "bin/build.bat", "bin/build.exe"]
                .iter()
                .any(|b| std::fs::symlink_metadata(dir.join(b)).is_ok_and(|m| m.is_file()));
            (text, bin, Vec::new())
        }
        Located::File(_) => {
            let mut scan = scan.unwrap_or_default();
            let bin = ["bin/build", "bin/build.bat", "bin/build.exe"].iter().any(|b| scan.notable.contains(*b));
            let text = scan.take_file(file).ok_or_else(|| {
                ModuleError::Invalid(format!("reading {what}: could not find entry path '{file}': not exist"))
            })?;
            let warnings =
                scan.warnings.iter().map(|w| format!("{} archive '{uri}': {w}", kind.noun())).collect::<Vec<_>>();
            (text, bin, warnings)
        }
        Located::Image(_) => unreachable!("images are not root blobs"),
    };
    let text = String::from_utf8(text).map_err(|_| ModuleError::Invalid(format!("reading {what}: not UTF-8")))?;
    let (d, descriptor_warnings) = ModuleDescriptor::parse(kind, &text, &what)?;
    warnings.extend(descriptor_warnings);
    let recipe = match located {
        Located::Dir(dir) => {
            let (recipe, walk_warnings) = stream::dir_recipe(&d.dirs, dir)?;
            warnings.extend(walk_warnings);
            recipe
        }
        Located::File(path) => stream::tar_recipe(&d.dirs, path)?,
        Located::Image(_) => unreachable!(),
    };
    let layer_info = ModuleLayerInfo {
        api: Some(d.api),
        stacks: d.stacks,
        targets: d.targets,
        order: d.order,
        layer_diff_id: String::new(),
        homepage: d.info.homepage.clone(),
        name: d.info.name.clone(),
    };
    let pending = PendingModule {
        dirs: d.dirs,
        info: d.info,
        layer_info,
        layer: PendingLayer::Build(recipe),
        has_build_bin,
        from_package: false,
        source: uri.to_owned(),
    };
    Ok((pending, warnings))
}

async fn fetch_one(ctx: &FetchContext<'_>, kind: ModuleKind, spec: &ModuleConfig) -> Result<Fetched, ModuleError> {
    let uri = if spec.uri.is_empty() { ctx.base_dir.display().to_string() } else { spec.uri.clone() };
    ctx.reporter.debug(&format!("Looking up {} '{uri}'", kind.noun()));
    let located =
        if spec.uri.is_empty() { Located::Dir(ctx.base_dir.to_path_buf()) } else { source::locate(ctx, &uri).await? };
    let (modules, warnings) = match &located {
        Located::Image(spelling) => {
            let image = ctx
                .images
                .get(spelling, ctx.base_dir, Some(ctx.platform))
                .await
                .map_err(|source| ModuleError::Image { image: spelling.clone(), source: Box::new(source) })?
                .ok_or_else(|| {
                    ModuleError::Invalid(format!(
                        "image '{spelling}' was not found (not in the local store, and not pulled: check the name and the pull policy)"
                    ))
                })?;
            package::modules_from_image(ctx, kind, &image, &uri).await?
        }
        Located::File(path) => {
            let map = stream::archive_module_map(SCAN_BASE.to_owned());
            let scan = scan::scan_cached(ctx.images, path, &module_scan_spec(kind, &map))
                .map_err(|e| e.reading(&format!("'{uri}'")))?;
            if scan.notable.contains("oci-layout") {
                // Checked while staged; only then are its blobs put into the store (the
                // second reading recalls the verdicts of the first).
                let staged = package::read_cnb(ctx, path, &uri)?;
                package::modules_from_image(ctx, kind, &staged.image, &uri).await?;
                let image = staged.promote(ctx, &uri)?;
                package::modules_from_image(ctx, kind, &image, &uri).await?
            } else {
                let (m, warnings) = root_blob(kind, &located, Some(scan), &uri)?;
                (vec![m], warnings)
            }
        }
        // Directories are walked later, all of them in parallel.
        Located::Dir(_) => return Ok(Fetched::Dir { located, uri }),
    };
    check_spec(kind, spec, &modules)?;
    Ok(Fetched::Done(modules, warnings))
}

/// How many `[[buildpacks]]` (or `[[extensions]]`) entries are located, downloaded and
/// scanned at once: while one package's layers are scanned, the next ones download. Results
/// are taken in order, so an entry that is done waits for those before it while counting
/// against this bound: it leaves room for the downloads to stay ahead of the scans (which
/// are bounded by the cores, not by this).
const FETCHES_IN_FLIGHT: usize = 8;

/// A walked directory module and its descriptor warnings.
type Walked = Result<(PendingModule, Vec<String>), ModuleError>;

/// What [`fetch_one`] found: modules, or a directory still to be walked.
enum Fetched {
    /// The modules, and the warnings about them.
    Done(Vec<PendingModule>, Vec<String>),
    Dir {
        located: Located,
        uri: String,
    },
}

/// builder.toml's `id`/`version` of an entry must match its main module.
fn check_spec(kind: ModuleKind, spec: &ModuleConfig, modules: &[PendingModule]) -> Result<(), ModuleError> {
    let Some(main) = modules.first().map(|m| &m.info) else { return Ok(()) };
    let noun = kind.noun();
    let expected = &spec.info;
    if !expected.id.is_empty() && expected.id != main.id {
        return Err(ModuleError::Invalid(format!(
            "{noun} from URI '{}' has ID '{}' which does not match ID '{}' from builder config",
            spec.uri, main.id, expected.id
        )));
    }
    if !expected.version.is_empty() && expected.version != main.version {
        return Err(ModuleError::Invalid(format!(
            "{noun} from URI '{}' has version '{}' which does not match version '{}' from builder config",
            spec.uri, main.version, expected.version
        )));
    }
    Ok(())
}

/// Locates, downloads and lays out every module of `specs`: per entry, the main module then
/// its dependencies sorted by id and version (as pack appends them to the builder metadata).
/// Layers of directory and archive modules (and splits of flattened package layers) are
/// built in parallel through the layer cache. Descriptor warnings go to the reporter.
pub async fn fetch_modules(
    ctx: &FetchContext<'_>,
    kind: ModuleKind,
    specs: &[ModuleConfig],
) -> Result<Vec<Module>, ModuleError> {
    // Several entries at once, their results (warnings and the first error included) taken
    // in builder.toml's order.
    let fetched: Vec<Fetched> = futures_util::stream::iter(specs.iter().map(|spec| fetch_one(ctx, kind, spec)))
        .buffered(FETCHES_IN_FLIGHT)
        .try_collect()
        .await?;
    // Walk the directory modules in parallel (on a warm run, stat-ing their files is most of
    // the work).
    let walk = || -> Vec<Option<Walked>> {
        fetched
            .par_iter()
            .map(|f| match f {
                Fetched::Dir { located, uri } => Some(root_blob(kind, located, None, uri)),
                Fetched::Done(..) => None,
            })
            .collect()
    };
    let walked = off_executor(walk);
    let mut pending = Vec::new();
    for ((f, w), spec) in fetched.into_iter().zip(walked).zip(specs) {
        match (f, w) {
            (Fetched::Done(modules, warnings), _) => {
                warnings.iter().for_each(|w| ctx.reporter.warn(w));
                pending.extend(modules);
            }
            (Fetched::Dir { .. }, Some(result)) => {
                let (m, warnings) = result?;
                warnings.iter().for_each(|w| ctx.reporter.warn(w));
                let modules = vec![m];
                check_spec(kind, spec, &modules)?;
                pending.extend(modules);
            }
            (Fetched::Dir { uri, .. }, None) => {
                return Err(ModuleError::Invalid(format!("internal error: '{uri}' was not walked")));
            }
        }
    }
    // Refuse what needs no layer content before building any layer.
    if kind == ModuleKind::Buildpack {
        validate::check_order_graph(pending.iter().map(|p| (&p.info, p.layer_info.order.as_slice())))?;
    }
    // The layers, each distinct recipe built once.
    let (heads, layers): (Vec<ModuleHead>, Vec<PendingLayer>) = pending
        .into_iter()
        .map(|p| {
            let PendingModule { dirs, info, layer_info, layer, has_build_bin, from_package, source } = p;
            (ModuleHead { dirs, info, layer_info, has_build_bin, from_package, source }, layer)
        })
        .unzip();
    let blobs = ctx.layers.build_distinct(layers).map_err(|(layer, source)| ModuleError::Layer { layer, source })?;
    let mut out = Vec::with_capacity(heads.len());
    for (p, layer) in heads.into_iter().zip(blobs) {
        let mut layer_info = p.layer_info;
        layer_info.layer_diff_id = layer.diff_id.to_string();
        ctx.reporter.debug(&format!("Adding {} '{}' (diffID={})", kind.noun(), p.info.full_name(), layer.diff_id));
        out.push(Module {
            dirs: p.dirs,
            info: p.info,
            layer_info,
            layer,
            has_build_bin: p.has_build_bin,
            from_package: p.from_package,
            source: p.source,
        });
    }
    check_duplicates(&out, ctx.layers)?;
    Ok(out)
}

/// Two modules with the same `id@version` must be the same module: the same layer content
/// (diffID). pack lets the last one win, which silently drops one of two different
/// buildpacks; cnbx names both sources instead. (A dry run cannot tell for a layer it has
/// not built.)
fn check_duplicates(modules: &[Module], layers: &crate::assemble::LayerService) -> Result<(), ModuleError> {
    let mut seen: std::collections::HashMap<String, &Module> = std::collections::HashMap::new();
    for m in modules {
        let key = m.info.full_name();
        let known = |m: &Module| !layers.is_unknown(&m.layer);
        match seen.get(&key) {
            Some(first) if first.layer.diff_id != m.layer.diff_id && known(first) && known(m) => {
                return Err(ModuleError::Invalid(format!(
                    "two different {}s are both '{key}': one from '{}' (layer {}), one from '{}' (layer {}); \
                     give one of them another version, or drop one from builder.toml",
                    m.dirs.kind.noun(),
                    first.source,
                    first.layer.diff_id,
                    m.source,
                    m.layer.diff_id
                )));
            }
            Some(_) => {}
            None => {
                seen.insert(key, m);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
