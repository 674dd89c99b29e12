//! `base-image check`: the platform-spec rules `builder create` applies to its base images
//! ([`cnbx_validate`]), for the people who publish base images, without a builder.toml.
//!
//! It checks a build image, run images (and the mirrors of one run image), or a build image
//! with its run images and mirrors (then the pairs too: the target, the users, the stacks), for
//! every platform of an image index or the platforms asked for. Images are read as `builder
//! create` reads them (the local store, `oci:` layouts, registries, per the pull policy)
//! through a [read-only](Images::read_only) [`Images`]: nothing is pulled into the local store,
//! and layers on a registry are streamed. In layer mode (the default) `/etc/passwd`,
//! `/etc/group`, os-release and directory headers are read from the layers, once per manifest
//! digest; the findings of each platform are remembered in `CNBX_HOME/cache/validation`, keyed
//! by the images' manifest digests, so checking the same images again reads nothing.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use cnbx_oci::image::SourceImage;
use cnbx_oci::layout::LayoutError;
use cnbx_oci::spec::{Descriptor, Index, Platform, media_type};
use cnbx_oci::store::LocalStore;
use cnbx_oci::{Digest, OciLayout};
use cnbx_refs::ImageLocation;
use cnbx_validate::{Finding, ImageFacts, Options, PlatformApi, Role};

use crate::base_layers::BaseLayersError;
use crate::home::Memo;
use crate::images::{ImageFetchError, Images, PullPolicy};
use crate::validation::{self, RunGroup, RunImages, StoredFinding, facts_of, fetch_for_platform};

/// How many platforms of one image index are checked at most (an index is someone else's
/// document; `--target` picks platforms from a larger one).
pub const MAX_PLATFORMS: usize = 32;

/// What to check.
#[derive(Debug, Clone)]
pub struct CheckRequest {
    /// The build image, as the user spelled it.
    pub build: Option<String>,
    /// Run images.
    pub runs: Vec<String>,
    /// Mirrors of the run image (there must be exactly one run image then).
    pub mirrors: Vec<String>,
    /// The platforms to check; empty: every platform of the build image (or of each run image
    /// without one).
    pub platforms: Vec<Platform>,
    /// Read the layers (layer mode); `false` checks the configs only.
    pub read_layers: bool,
    /// The Platform API the rules are checked for.
    pub platform_api: PlatformApi,
    /// The directory relative `oci:` paths are resolved against.
    pub base_dir: PathBuf,
}

/// One image that was checked, for one platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedImage {
    /// Build image, run image or mirror.
    pub role: Role,
    /// As the user spelled it.
    pub image: String,
    /// The platform it was checked for.
    pub platform: Platform,
    /// Its manifest digest.
    pub manifest: Digest,
}

/// A finding, with the platform it was found for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckFinding {
    /// The platform.
    pub platform: Platform,
    /// The finding.
    pub finding: Finding,
}

/// What a check found.
#[derive(Debug, Clone, Default)]
pub struct CheckReport {
    /// The images checked, per platform, in the order they were checked.
    pub images: Vec<CheckedImage>,
    /// Every finding, per platform, in the validator's order within a platform.
    pub findings: Vec<CheckFinding>,
    /// What was left unchecked and why (config-only mode, layers cnbx cannot read).
    pub notes: Vec<String>,
}

/// Why a check could not be made. A broken rule is not an error: it is a finding.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The request cannot be checked as asked.
    #[error("{0}")]
    Usage(String),
    /// An image could not be read.
    #[error("reading {role} '{image}'")]
    Fetch {
        /// Build image, run image or mirror.
        role: Role,
        /// As the user spelled it.
        image: String,
        /// Why.
        #[source]
        source: Box<ImageFetchError>,
    },
    /// An image does not exist where it may be looked for.
    #[error("{role} '{image}' was not found{hint}")]
    NotFound {
        /// Build image, run image or mirror.
        role: Role,
        /// As the user spelled it.
        image: String,
        /// Where it was looked for, and what to do.
        hint: &'static str,
    },
    /// An image index lists more platforms than are checked at once.
    #[error(
        "{role} '{image}' has {count} platforms; cnbx checks at most {MAX_PLATFORMS} at once: choose them with --target"
    )]
    TooManyPlatforms {
        /// Build image or run image.
        role: Role,
        /// As the user spelled it.
        image: String,
        /// How many it lists.
        count: usize,
    },
    /// The layers of an image could not be read (`--config-only` skips them).
    #[error("reading the base images' layers to check them (--config-only skips this)")]
    Layers(#[source] BaseLayersError),
}

/// A remembered check of one platform.
#[derive(serde::Serialize, serde::Deserialize)]
struct CheckedPlatform {
    findings: Vec<StoredFinding>,
    note: Option<String>,
}

impl Memo for CheckedPlatform {
    const DIR: &'static str = validation::MEMO_DIR;

    fn logic() -> String {
        validation::logic("base-image check")
    }
}

/// Checks the images of `request` (see the module docs).
pub async fn check(images: &Images, request: &CheckRequest) -> Result<CheckReport, CheckError> {
    if request.build.is_none() && request.runs.is_empty() {
        return Err(CheckError::Usage(
            "nothing to check: name a build image (--build), run images (--run), or both".into(),
        ));
    }
    if !request.mirrors.is_empty() && request.runs.len() != 1 {
        return Err(CheckError::Usage(format!(
            "--mirror names mirrors of one run image, but {} run images were given; check each run image with its \
             mirrors separately",
            request.runs.len()
        )));
    }
    let options = Options { stack_id: None, legacy_stacks_required: false, platform_api: request.platform_api };
    let mut report = CheckReport::default();
    if let Some(build) = &request.build {
        for platform in platforms(images, request, Role::Build, build).await? {
            let image = fetch(images, &request.base_dir, Role::Build, build, platform.as_ref()).await?;
            let platform = platform.unwrap_or_else(|| image_platform(&image));
            let facts = facts_of(&image, build);
            let runs = run_images(images, request, &platform, &facts).await?;
            check_platform(images, request, &options, &platform, Some((&image, &facts)), &runs, &mut report).await?;
        }
        return Ok(report);
    }
    for run in &request.runs {
        for platform in platforms(images, request, Role::Run, run).await? {
            let image = fetch(images, &request.base_dir, Role::Run, run, platform.as_ref()).await?;
            let platform = platform.unwrap_or_else(|| image_platform(&image));
            let mut members = vec![(Role::Run, run.clone(), image)];
            for mirror in &request.mirrors {
                let image = fetch(images, &request.base_dir, Role::Mirror, mirror, Some(&platform)).await?;
                members.push((Role::Mirror, mirror.clone(), image));
            }
            let runs =
                RunImages { groups: vec![RunGroup { image: run.clone(), members }], missing_platform: Vec::new() };
            check_platform(images, request, &options, &platform, None, &runs, &mut report).await?;
        }
    }
    Ok(report)
}

/// The platform an image was read for: its index entry's, else its config's.
fn image_platform(image: &SourceImage) -> Platform {
    image.index_platform.clone().unwrap_or_else(|| image.platform())
}

/// The platforms to check `name` for: those asked for, else every platform its index lists
/// (attestations left out), else `[None]` (a single manifest: its own platform).
async fn platforms(
    images: &Images,
    request: &CheckRequest,
    role: Role,
    name: &str,
) -> Result<Vec<Option<Platform>>, CheckError> {
    if !request.platforms.is_empty() {
        return Ok(request.platforms.iter().cloned().map(Some).collect());
    }
    let fetch_err = |e: ImageFetchError| CheckError::Fetch { role, image: name.to_owned(), source: Box::new(e) };
    let Some(index) = index_of(images, &request.base_dir, name).await.map_err(fetch_err)? else {
        return Ok(vec![None]);
    };
    let mut listed: Vec<Platform> = index
        .manifests
        .iter()
        .filter(|d| media_type::is_manifest(&d.media_type))
        .filter_map(|d| d.platform.clone())
        .filter(|p| p.os != "unknown")
        .collect();
    listed.sort();
    listed.dedup();
    if listed.len() > MAX_PLATFORMS {
        return Err(CheckError::TooManyPlatforms { role, image: name.to_owned(), count: listed.len() });
    }
    Ok(if listed.is_empty() { vec![None] } else { listed.into_iter().map(Some).collect() })
}

/// The image index `name` resolves to where [`Images::get`] would read it from, if it is one.
async fn index_of(images: &Images, base_dir: &Path, name: &str) -> Result<Option<Index>, ImageFetchError> {
    match ImageLocation::parse(name, base_dir)? {
        ImageLocation::OciLayout { dir, tag } => {
            let layout = OciLayout::open(&dir)?;
            let Some(desc) = layout.resolve(&tag)? else { return Ok(None) };
            index_at(&layout, &tag, &desc)
        }
        // Each holds one image, of one platform.
        ImageLocation::DockerArchive { .. } | ImageLocation::DockerDaemon(_) => Ok(None),
        ImageLocation::Name(reference) => {
            if images.bare_names_in_engine()
                && images.policy() != PullPolicy::Always
                && images.has_in_engine(&reference).await
            {
                return Ok(None);
            }
            if !images.publish() && images.policy() != PullPolicy::Always {
                let store = images.store();
                let key = LocalStore::key(&reference);
                if let Some(desc) = store.layout().resolve(&key)? {
                    return index_at(store.layout(), &key, &desc);
                }
                if images.policy() == PullPolicy::Never {
                    return Ok(None);
                }
            }
            let document = images.registry_document(&reference).await?;
            Ok(document.as_deref().and_then(parse_index))
        }
    }
}

/// The image index `desc` (what `tag` points at in `layout`) describes, if it is one.
pub fn index_at(layout: &OciLayout, tag: &str, desc: &Descriptor) -> Result<Option<Index>, ImageFetchError> {
    if !media_type::is_index(&desc.media_type) {
        return Ok(None);
    }
    let bytes = layout.blobs().read_document(&desc.digest, "an image index").map_err(|source| LayoutError::Blob {
        path: layout.path().to_path_buf(),
        tag: tag.to_owned(),
        digest: desc.digest.clone(),
        source: Box::new(source),
    })?;
    Ok(parse_index(&bytes))
}

/// `bytes` as an image index, if they are one.
pub fn parse_index(bytes: &[u8]) -> Option<Index> {
    serde_json::from_slice::<Index>(bytes).ok().filter(|i| i.media_type.as_deref().is_none_or(media_type::is_index))
}

/// Reads the image `name` (in `role`) for `platform`; a missing one is an error.
async fn fetch(
    images: &Images,
    base_dir: &Path,
    role: Role,
    name: &str,
    platform: Option<&Platform>,
) -> Result<SourceImage, CheckError> {
    let fetched = match platform {
        Some(p) => fetch_for_platform(images, base_dir, name, p).await,
        None => images.get(name, base_dir, None).await,
    };
    let fetched = fetched.map_err(|e| CheckError::Fetch { role, image: name.to_owned(), source: Box::new(e) })?;
    fetched.ok_or_else(|| CheckError::NotFound { role, image: name.to_owned(), hint: not_found_hint(images) })
}

fn not_found_hint(images: &Images) -> &'static str {
    match images.policy() {
        PullPolicy::Never => " in the local store, and --pull-policy never forbids looking in its registry",
        PullPolicy::Always => " in its registry or the local store",
        PullPolicy::IfNotPresent => " in the local store or its registry",
    }
}

/// The run images and mirrors of `request` for `platform`, next to the build image `build`:
/// one without an image for that platform is a `PAIR-TARGET-MATCH` finding.
async fn run_images(
    images: &Images,
    request: &CheckRequest,
    platform: &Platform,
    build: &ImageFacts,
) -> Result<RunImages, CheckError> {
    let mut runs = RunImages::default();
    for (i, run) in request.runs.iter().enumerate() {
        let mut group = RunGroup { image: run.clone(), members: Vec::new() };
        let mut names = vec![(Role::Run, run.as_str())];
        if i == 0 {
            names.extend(request.mirrors.iter().map(|m| (Role::Mirror, m.as_str())));
        }
        for (role, name) in names {
            match fetch(images, &request.base_dir, role, name, Some(platform)).await {
                Ok(image) => group.members.push((role, name.to_owned(), image)),
                Err(CheckError::Fetch { source, .. }) if source.missing_platform().is_some() => {
                    let (wanted, available) = source.missing_platform().unwrap_or_default();
                    runs.missing_platform.push(cnbx_validate::platform_missing(build, role, name, wanted, available));
                }
                Err(e) => return Err(e),
            }
        }
        runs.groups.push(group);
    }
    Ok(runs)
}

/// Checks the images of one platform (or replays the remembered check of exactly the same
/// images, by manifest digest) and adds what was found to `report`.
async fn check_platform(
    images: &Images,
    request: &CheckRequest,
    options: &Options,
    platform: &Platform,
    build: Option<(&SourceImage, &ImageFacts)>,
    runs: &RunImages,
    report: &mut CheckReport,
) -> Result<(), CheckError> {
    let mode = if request.read_layers { "layers" } else { "config" };
    let mut all: Vec<(Role, &str, &SourceImage)> =
        build.iter().map(|(i, f)| (Role::Build, f.name.as_str(), *i)).collect();
    all.extend(runs.groups.iter().flat_map(|g| &g.members).map(|(role, name, image)| (*role, name.as_str(), image)));
    let mut key = format!("{options:?}\n{mode}\n");
    for (role, name, image) in &all {
        let _ = writeln!(key, "{role} {name} {} {:?}", image.manifest.digest, image.index_platform);
    }
    for f in &runs.missing_platform {
        let _ = writeln!(key, "{f}");
    }
    let remembered = images
        .home()
        .recall::<CheckedPlatform>(&key)
        .and_then(|c| StoredFinding::all(&c.findings).map(|f| (f, c.note)));
    let (findings, note) = match remembered {
        Some(found) => found,
        None => {
            let named: Vec<(&str, &SourceImage)> = all.iter().map(|(_, name, image)| (*name, *image)).collect();
            let skipped = (!request.read_layers).then_some("--config-only: the layers were not read");
            let (findings, _, note) = validation::validate(images, &named, build, runs, options, skipped, None)
                .await
                .map_err(CheckError::Layers)?;
            let stored =
                CheckedPlatform { findings: findings.iter().map(StoredFinding::new).collect(), note: note.clone() };
            // Remembered directly: a check writes nothing into the local store, but its
            // results are worth keeping.
            images.home().remember(&key, &stored);
            (findings, note)
        }
    };
    report.images.extend(all.iter().map(|(role, name, image)| CheckedImage {
        role: *role,
        image: (*name).to_owned(),
        platform: platform.clone(),
        manifest: image.manifest.digest.clone(),
    }));
    report.findings.extend(findings.into_iter().map(|finding| CheckFinding { platform: platform.clone(), finding }));
    if let Some(note) = note.map(|n| format!("{platform}: {n}"))
        && !report.notes.contains(&note)
    {
        report.notes.push(note);
    }
    Ok(())
}
