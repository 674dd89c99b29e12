//! `builder create`: from a parsed `builder.toml` to a builder image written to the local
//! store, an OCI layout, a docker-archive or a registry.
//!
//! The steps follow pack's: fetch the build image, the lifecycle, the run images and mirrors,
//! the buildpacks and extensions, check the base images against the platform spec
//! ([`cnbx_validate`]) and the modules against the lifecycle and the build image, resolve the
//! orders, then add pack's layers in pack's order and write pack's labels. Nothing is written to the destination before every
//! check has passed; layers built on the way go to the content-addressed blob store, where
//! the next run finds them.
//!
//! One image is made per target; with several targets they are joined by an OCI image index,
//! for every destination that can hold one (the local store, `oci:` layouts and registries).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use cnbx_config::{ConfigError, LoadedConfig};
use cnbx_model::{ApiVersion, LifecycleDescriptor, LifecycleSource, ModuleKind, OrderEntry, RunImage, Target};
use cnbx_oci::image::{ImageToWrite, LayerBlob, SourceImage};
use cnbx_oci::layer::{LayerInfo, LayerRecipe};
use cnbx_oci::progress::ReporterExt;
use cnbx_oci::registry::PushOutcome;
use cnbx_oci::spec::{Platform, media_type};
use cnbx_oci::{Digest, LayerCache, OciLayout};
use cnbx_refs::{ImageLocation, ImageRef};
use cnbx_validate::{Finding, ImageFacts, IndexPlatform, Level, Options, PlatformApi, Role, RootFs};

use crate::images::{ImageFetchError, Images};
use crate::labels::{self, BuilderMetadata, CreatorMetadata, ModuleLayers, StackMetadata};
use crate::layers;
use crate::lifecycle::{Lifecycle, LifecycleError, locate_lifecycle};
use crate::modules::{
    BuildImageFacts, Module, ModuleContext, ModuleSpec, fetch_modules, plan_module_layers, resolve_order,
    resolve_system, validate_modules_with,
};

/// The `created` time pack writes on builders (and every history entry).
pub const NORMALIZED_CREATED: &str = "1980-01-01T00:00:01Z";

/// The name written into `createdBy`.
pub const CREATOR_NAME: &str = "cnbx";

/// What to create.
#[derive(Debug, Clone)]
pub struct CreateRequest {
    /// The destination as the user spelled it (`NAME`, `oci:<DIR>[:<TAG>]`,
    /// `docker-archive:<FILE>[:<REF>]`).
    pub destination: String,
    /// The directory relative destinations are resolved against.
    pub cwd: PathBuf,
    /// The parsed builder.toml.
    pub config: LoadedConfig,
    /// Push to the registry named by `destination` (base images come from registries).
    pub publish: bool,
    /// `--label`s, applied before cnbx's own labels (which win on collision, as in pack).
    pub labels: BTreeMap<String, String>,
    /// `--target`s; when empty, `[[targets]]`; when both are empty, the build image's platform.
    pub targets: Vec<Target>,
    /// `--flatten` groups, each a list of `id@version`.
    pub flatten: Vec<Vec<String>>,
    /// `--tag`s: more names the builder is saved or pushed under (same destination kind).
    pub tags: Vec<String>,
    /// `--append-image-name-suffix`: with `--publish` and several targets, also push each
    /// platform's image under `<name>:<tag>-<suffix>` (pack's naming).
    pub append_image_name_suffix: bool,
    /// The version written into `createdBy`.
    pub creator_version: String,
    /// Check the base images from their configs only, without reading their layers: the rules
    /// that need `/etc/passwd`, `/etc/group`, os-release or the home directory are then not
    /// checked, and one warning lists them.
    pub skip_layer_checks: bool,
}

/// What was created.
#[derive(Debug, Clone)]
pub struct Created {
    /// Where it was written, for messages.
    pub destination: String,
    /// The digest of the manifest (one platform) or index (several) the name points at.
    pub digest: Digest,
    /// The platforms, in target order.
    pub platforms: Vec<Platform>,
    /// What a push transferred, with `--publish`.
    pub push: Option<PushOutcome>,
}

/// Why a builder could not be created. Messages name the image, file or module and say what
/// to change.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    /// builder.toml is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The destination spelling is invalid.
    #[error("invalid image name '{destination}'")]
    Destination {
        /// As given.
        destination: String,
        /// Why.
        #[source]
        source: cnbx_refs::RefError,
    },
    /// A usage problem (flag combinations, unsupported destinations).
    #[error("{0}")]
    Usage(String),
    /// An image could not be fetched.
    #[error("{context}")]
    Fetch {
        /// Which image and role.
        context: String,
        /// Why.
        #[source]
        source: Box<ImageFetchError>,
    },
    /// An image does not exist where we may look.
    #[error("{role} '{image}' was not found{hint}")]
    NotFound {
        /// `build image`, `run image`, …
        role: &'static str,
        /// As written in builder.toml.
        image: String,
        /// What to do.
        hint: String,
    },
    /// The base images break the platform spec.
    #[error("{}", format_findings(.0))]
    Validation(Vec<Finding>),
    /// Something about the images or modules is inconsistent (pack's messages).
    #[error("{0}")]
    Invalid(String),
    /// The lifecycle could not be fetched (the message starts with `fetch lifecycle:`).
    #[error(transparent)]
    Lifecycle(LifecycleError),
    /// Another step failed.
    #[error("{context}")]
    Step {
        /// What we were doing.
        context: String,
        /// Why it failed.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

fn step<E: std::error::Error + Send + Sync + 'static>(context: impl Into<String>) -> impl FnOnce(E) -> CreateError {
    let context = context.into();
    move |e| CreateError::Step { context, source: Box::new(e) }
}

fn format_findings(findings: &[Finding]) -> String {
    let errors: Vec<&Finding> = findings.iter().filter(|f| f.level == Level::Error).collect();
    let mut out = format!(
        "the base images do not meet the Cloud Native Buildpacks platform spec ({} error{})",
        errors.len(),
        if errors.len() == 1 { "" } else { "s" }
    );
    for f in errors {
        let _ = write!(out, "\n  - {f}");
        if !f.fix.is_empty() {
            let _ = write!(out, "\n    fix: {}", f.fix);
        }
    }
    out
}

/// Where the builder goes.
#[derive(Debug, Clone)]
enum Destination {
    Store(ImageRef),
    Registry(ImageRef),
    Layout { dir: PathBuf, tag: String },
    Archive { file: PathBuf, reference: Option<ImageRef> },
}

impl Destination {
    fn parse(request: &CreateRequest) -> Result<Self, CreateError> {
        let location = ImageLocation::parse(&request.destination, &request.cwd)
            .map_err(|source| CreateError::Destination { destination: request.destination.clone(), source })?;
        Ok(match (location, request.publish) {
            (ImageLocation::Name(r), true) => Self::Registry(r),
            (ImageLocation::Name(r), false) => Self::Store(r),
            (ImageLocation::OciLayout { dir, tag }, false) => Self::Layout { dir, tag },
            (ImageLocation::DockerArchive { file, reference }, false) => Self::Archive { file, reference },
            (_, true) => {
                return Err(CreateError::Usage(format!(
                    "--publish pushes to a registry, but '{}' is not a registry image name; drop --publish to write it, \
                     or name an image such as registry.example.com/team/builder:tag",
                    request.destination
                )));
            }
        })
    }
}

/// The `--tag`s as references; they go where the destination goes (the local store, or the
/// registry with `--publish`).
fn extra_tags(request: &CreateRequest, destination: &Destination) -> Result<Vec<ImageRef>, CreateError> {
    if request.tags.is_empty() {
        return Ok(Vec::new());
    }
    if !matches!(destination, Destination::Store(_) | Destination::Registry(_)) {
        return Err(CreateError::Usage(format!(
            "--tag names more images in the local store or a registry, but '{}' is not an image name",
            request.destination
        )));
    }
    request
        .tags
        .iter()
        .map(|t| ImageRef::parse(t).map_err(|source| CreateError::Destination { destination: t.clone(), source }))
        .collect()
}

/// pack's per-target name: the non-empty of os, arch, variant and each distro, joined by `-`,
/// appended to the tag (`latest` is replaced); digest references stay as they are. pack writes
/// a distro as `name@version`, which no registry accepts in a tag; cnbx writes `name-version`.
fn suffixed(reference: &ImageRef, target: &Target) -> Result<ImageRef, CreateError> {
    if reference.digest().is_some() {
        return Ok(reference.clone());
    }
    let mut parts: Vec<String> =
        [&target.os, &target.arch, &target.variant].iter().filter(|p| !p.is_empty()).map(|p| (*p).clone()).collect();
    parts.extend(target.distros.iter().map(|d| format!("{}-{}", d.name, d.version)));
    let suffix = parts.join("-");
    let tag = match reference.tag() {
        None | Some("latest") => suffix,
        Some(tag) => format!("{tag}-{suffix}"),
    };
    reference
        .try_with_tag(&tag)
        .map_err(|source| CreateError::Destination { destination: format!("{}:{tag}", reference.name()), source })
}

/// The first template placeholder in `text`, if any: `${NAME}` (shell, Bazel), `{{ … }}` (Go
/// templates) or `{NAME}` of upper-case letters, digits and `_` (Python's `str.format`), what
/// a builder.toml template still holds when it was not rendered.
fn template_placeholder(text: &str) -> Option<&str> {
    for (open, close) in [("${", "}"), ("{{", "}}")] {
        if let Some(start) = text.find(open) {
            if let Some(len) = text[start + open.len()..].find(close) {
                return Some(&text[start..start + open.len() + len + close.len()]);
            }
        }
    }
    let start = text.find('{')?;
    let end = start + text[start..].find('}')?;
    let name = &text[start + 1..end];
    let upper = !name.is_empty() && name.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
    upper.then(|| &text[start..=end])
}

/// The first value of builder.toml that names an image, a module, a stack or the lifecycle
/// and is a template placeholder, with what it is.
fn template_placeholder_in(config: &cnbx_config::BuilderConfig) -> Option<(String, &str)> {
    let mut values: Vec<(String, &str)> = vec![
        ("the build image".to_owned(), config.build.image.as_str()),
        ("[stack] id".to_owned(), config.stack.id.as_str()),
        ("[lifecycle] version".to_owned(), config.lifecycle.version.as_str()),
        ("[lifecycle] uri".to_owned(), config.lifecycle.uri.as_str()),
    ];
    for run in &config.run.images {
        values.push(("a run image".to_owned(), &run.image));
        values.extend(run.mirrors.iter().flatten().map(|m| ("a run image mirror".to_owned(), m.as_str())));
    }
    for (kind, modules) in [("buildpack", &config.buildpacks), ("extension", &config.extensions)] {
        for m in modules.iter() {
            for (key, value) in [("uri", &m.uri), ("id", &m.info.id), ("version", &m.info.version)] {
                values.push((format!("the {key} of a [[{kind}s]] entry"), value.as_str()));
            }
        }
    }
    values.into_iter().find_map(|(what, value)| template_placeholder(value).map(|p| (what, p)))
}

/// Why `name` cannot be written into a builder as a run image or mirror: it must be a
/// registry reference as the lifecycle and pack parse it, without a transport prefix.
fn run_image_name_problem(name: &str) -> Result<(), String> {
    const FIX: &str = "push the image to a registry and write its name, REGISTRY/REPOSITORY[:TAG]";
    if let Some(rest) = name.strip_prefix("docker://").or_else(|| name.strip_prefix("docker:/")) {
        return Err(format!(
            "run images are written into the builder as they are, and the lifecycle cannot pull a name with the \
             docker:// prefix; write '{}' without it",
            cnbx_fs::excerpt(rest)
        ));
    }
    let transport = |what: &str| {
        Err(format!(
            "{what} is not a registry image: run images and mirrors are written into the builder (/cnb/run.toml, \
             /cnb/stack.toml, the metadata label) for the lifecycle to pull from a registry; {FIX}"
        ))
    };
    if name.starts_with("oci:") {
        return transport("an oci: layout");
    }
    if name.starts_with("docker-archive:") {
        return transport("a docker-archive");
    }
    ImageRef::parse(name).map(drop).map_err(|e| e.to_string())
}

/// Creates the builder described by `request`.
pub async fn create(images: &Images, request: &CreateRequest) -> Result<Created, CreateError> {
    let config = &request.config;
    if let Some((what, placeholder)) = template_placeholder_in(&config.config) {
        return Err(CreateError::Invalid(format!(
            "{} is a template that was not filled in: {what} is '{}', a template placeholder; fill in every \
             placeholder (render the template) before creating the builder",
            config.path.display(),
            cnbx_fs::excerpt(placeholder)
        )));
    }
    config.validate()?;
    // Every run image and mirror must be a registry image name before anything is fetched:
    // they are written into /cnb/run.toml, /cnb/stack.toml and the metadata label as they
    // are, for the lifecycle and platforms to pull (an invalid mirror would otherwise only be
    // warned about and written into the builder).
    config.check_run_image_names(run_image_name_problem)?;
    for warning in &config.warnings {
        images.reporter().warn(warning);
    }
    let destination = Destination::parse(request)?;
    let tags = extra_tags(request, &destination)?;

    let targets: &[Target] = if request.targets.is_empty() { &config.config.targets } else { &request.targets };
    if targets.is_empty() {
        images
            .reporter()
            .info("Pro tip: use --target flag OR [[targets]] in builder.toml to specify the desired platform");
    }
    if targets.len() > 1 && matches!(destination, Destination::Archive { .. }) {
        return Err(CreateError::Usage(format!(
            "a docker-archive holds one image, but {} targets were given; pick one with --target",
            targets.len()
        )));
    }

    let cache = LayerCache::open(images.home().layer_cache_dir())
        .map_err(step(format!("opening the layer cache in {}", images.home().layer_cache_dir().display())))?;
    let lifecycle_source = config.config.lifecycle.source()?;

    let mut built = Vec::new();
    if targets.is_empty() {
        built.push(create_one(images, &cache, request, &lifecycle_source, None).await?);
    } else {
        for target in targets {
            let variant = Some(target.variant.as_str()).filter(|v| !v.is_empty());
            let platform = Platform::new(&target.os, &target.arch, variant);
            built.push(create_one(images, &cache, request, &lifecycle_source, Some(&platform)).await?);
        }
    }
    let platforms = built.iter().map(|i| i.platform.clone()).collect();
    let (digest, push) = write_output(images, &destination, request, &built).await?;
    if request.append_image_name_suffix {
        match (&destination, targets) {
            (Destination::Registry(reference), [_, _, ..]) => {
                for (image, target) in built.iter().zip(targets) {
                    let named = suffixed(reference, target)?;
                    write_output(images, &Destination::Registry(named), request, std::slice::from_ref(image)).await?;
                }
            }
            (Destination::Registry(_), _) => {}
            _ => images.reporter().warn("--append-image-name-suffix will be ignored, use combined with --publish"),
        }
    }
    for tag in &tags {
        let extra = match &destination {
            Destination::Registry(_) => Destination::Registry(tag.clone()),
            _ => Destination::Store(tag.clone()),
        };
        write_output(images, &extra, request, &built).await?;
    }
    if let Err(e) = images.record_fetched() {
        images.reporter().warn(&format!(
            "the builder was written, but the images fetched for it could not be recorded in the local store: {}",
            cnbx_fs::error_chain(&e)
        ));
    }
    Ok(Created { destination: request.destination.clone(), digest, platforms, push })
}

/// Everything read from the build image that the builder depends on.
struct BuildBase {
    image: SourceImage,
    labels: BTreeMap<String, String>,
    /// `io.buildpacks.builder.metadata` of the build image (usually absent: the default).
    metadata: BuilderMetadata,
    /// `io.buildpacks.stack.mixins` of the build image.
    mixins: Option<Vec<String>>,
    uid: u32,
    gid: u32,
}

async fn fetch_required(
    images: &Images,
    role: &'static str,
    spelling: &str,
    base_dir: &Path,
    platform: Option<&Platform>,
) -> Result<SourceImage, CreateError> {
    let image = images
        .get(spelling, base_dir, platform)
        .await
        .map_err(|e| CreateError::Fetch { context: format!("fetching {role} '{spelling}'"), source: Box::new(e) })?;
    image.ok_or_else(|| CreateError::NotFound { role, image: spelling.to_owned(), hint: not_found_hint(images) })
}

fn not_found_hint(images: &Images) -> String {
    if images.publish() {
        " in its registry; check the name, or push it first".to_owned()
    } else if images.policy() == crate::images::PullPolicy::Never {
        format!(
            " in the local store ({}) and --pull-policy never forbids pulling it; use --pull-policy if-not-present, \
             or an oci:<DIR> image",
            images.home().store_dir().display()
        )
    } else {
        " in the local store or its registry; check the name".to_owned()
    }
}

fn facts_of(image: &SourceImage, name: &str) -> ImageFacts {
    let config = &image.config;
    let mut facts =
        ImageFacts::new(name, config.os(), config.architecture()).with_user(config.user()).with_env(config.env());
    if let Some(v) = config.variant() {
        facts = facts.with_variant(v);
    }
    if let Some(v) = config.os_version() {
        facts = facts.with_os_version(v);
    }
    for (k, v) in config.labels() {
        facts = facts.with_label(k, v);
    }
    if let Some(p) = &image.index_platform {
        facts = facts.with_index_platform(IndexPlatform::new(&p.os, &p.architecture, p.variant.as_deref()));
    }
    facts
}

fn platform_api_for(lifecycle: &LifecycleDescriptor) -> PlatformApi {
    let latest = lifecycle.apis.platform.supported().iter().chain(lifecycle.apis.platform.deprecated()).max().copied();
    match latest {
        Some(v) => {
            let api = PlatformApi::new(u32::try_from(v.major).unwrap_or(u32::MAX), u32::try_from(v.minor).unwrap_or(0));
            api.min(PlatformApi::LATEST)
        }
        None => PlatformApi::LATEST,
    }
}

/// Whether a buildpack being added declares only `[[stacks]]` (none of them `*`, which
/// matches any stack) and no `[[targets]]`: it fails detection unless the base images carry
/// one of its stacks, so the legacy stack rules it depends on are errors.
fn legacy_stacks_required(buildpacks: &[Module]) -> bool {
    buildpacks.iter().any(|m| {
        let info = &m.layer_info;
        info.targets.is_empty() && !info.stacks.is_empty() && info.stacks.iter().all(|s| s.id != "*")
    })
}

/// A `[[run.images]]` entry with the images that could be read: the run image (if found)
/// and its mirrors, in order.
struct RunGroup {
    image: String,
    members: Vec<(Role, String, SourceImage)>,
}

/// Every run image and mirror that could be read, and the `PAIR-TARGET-MATCH` findings for
/// those that exist but have no image for the build image's platform.
struct RunImages {
    groups: Vec<RunGroup>,
    missing_platform: Vec<Finding>,
}

/// Reads a run image or mirror for `platform`. When it has no manifest for `platform` but
/// `platform` names a variant, it is read for the os and architecture alone: a variant set on
/// one image only (or two different variants) is then the validator's finding, at the same
/// level whichever image has it.
async fn fetch_run_image(
    images: &Images,
    base_dir: &Path,
    name: &str,
    platform: &Platform,
) -> Result<Option<SourceImage>, ImageFetchError> {
    match images.get(name, base_dir, Some(platform)).await {
        Err(e) if platform.variant.is_some() && e.missing_platform().is_some() => {
            let any_variant = Platform::new(&platform.os, &platform.architecture, None);
            images.get(name, base_dir, Some(&any_variant)).await.or(Err(e))
        }
        other => other,
    }
}

/// Fetches every run image and mirror (as pack does first): a missing one is a warning, one
/// without an image for the build image's platform a finding, a run image that cannot be
/// fetched an error, a mirror that cannot be fetched a warning.
async fn fetch_run_images(
    images: &Images,
    request: &CreateRequest,
    platform: &Platform,
    build: &ImageFacts,
) -> Result<RunImages, CreateError> {
    let config = &request.config;
    let stack_id = &config.config.stack.id;
    let mut runs = RunImages { groups: Vec::new(), missing_platform: Vec::new() };
    for run in &config.config.run.images {
        let mut names = vec![(Role::Run, run.image.clone())];
        names.extend(run.mirrors.iter().flatten().map(|m| (Role::Mirror, m.clone())));
        let mut members = Vec::new();
        for (role, name) in names {
            let image = match fetch_run_image(images, &config.base_dir, &name, platform).await {
                Ok(Some(image)) => image,
                Ok(None) => {
                    images.reporter().warn(&format!("run image '{name}' is not accessible"));
                    continue;
                }
                Err(e) => {
                    if let Some((wanted, available)) = e.missing_platform() {
                        let finding = cnbx_validate::platform_missing(build, role, &name, wanted, available);
                        runs.missing_platform.push(finding);
                        continue;
                    }
                    if role == Role::Mirror {
                        images.reporter().warn(&format!(
                            "run image mirror '{name}' is not accessible: {}",
                            cnbx_fs::error_chain(&e)
                        ));
                        continue;
                    }
                    return Err(CreateError::Fetch {
                        context: format!("invalid run image config: failed to fetch image '{name}'"),
                        source: Box::new(e),
                    });
                }
            };
            if !stack_id.is_empty() {
                let label = image.config.label(labels::STACK_ID).unwrap_or_default();
                if label != stack_id {
                    return Err(CreateError::Invalid(format!(
                        "invalid run image config: stack '{stack_id}' from builder config is incompatible with stack \
                         '{label}' from run image '{name}'"
                    )));
                }
            }
            members.push((role, name, image));
        }
        runs.groups.push(RunGroup { image: run.image.clone(), members });
    }
    Ok(runs)
}

/// The base images' file systems for layer mode, read once per manifest digest.
struct BaseFileSystems {
    by_manifest: BTreeMap<Digest, Option<RootFs>>,
}

impl BaseFileSystems {
    /// Reads the layers of every image (`(name, image)`; unless `skip`), each manifest once.
    async fn read(images: &Images, all: &[(&str, &SourceImage)], skip: bool) -> Result<Self, CreateError> {
        let mut by_manifest = BTreeMap::new();
        if skip {
            return Ok(Self { by_manifest });
        }
        for (name, image) in all {
            if by_manifest.contains_key(&image.manifest.digest) {
                continue;
            }
            images.reporter().debug(&format!("Reading the layers of '{name}' ({}) to check it", image.manifest.digest));
            let fs = crate::base_layers::read(images, image)
                .await
                .map_err(step("reading the base images' layers to check them (--skip-layer-checks skips this)"))?;
            by_manifest.insert(image.manifest.digest.clone(), fs);
        }
        Ok(Self { by_manifest })
    }

    fn get(&self, image: &SourceImage) -> Option<&RootFs> {
        self.by_manifest.get(&image.manifest.digest).and_then(Option::as_ref)
    }
}

/// The findings for the build image, every run image and mirror, and the pairs, and the build
/// user's uid and gid when they could be decided.
fn base_image_findings(
    build: &SourceImage,
    build_facts: &ImageFacts,
    runs: &RunImages,
    fs: &BaseFileSystems,
    options: &Options,
) -> (Vec<Finding>, Option<(u32, u32)>) {
    let build_rootfs = fs.get(build);
    let mut findings = cnbx_validate::check_build_image(build_facts, build_rootfs, options);
    findings.extend(runs.missing_platform.iter().cloned());
    for group in &runs.groups {
        let mut refs = Vec::new();
        for (role, name, image) in &group.members {
            let facts = facts_of(image, name);
            refs.push(cnbx_validate::RunImageRef {
                name: name.clone(),
                registry: cnbx_refs::mirrors::normalized_registry(name).unwrap_or_default(),
                config_digest: Some(image.config_raw.digest.to_string()),
            });
            let rootfs = fs.get(image);
            if *role == Role::Run {
                findings.extend(cnbx_validate::check_run_image(&facts, rootfs, options));
                findings.extend(cnbx_validate::check_pair((build_facts, build_rootfs), (&facts, rootfs), options));
            } else {
                findings.extend(cnbx_validate::check_mirror((build_facts, build_rootfs), (&facts, rootfs), options));
            }
        }
        if let Some((first, rest)) = refs.split_first() {
            if first.name == group.image {
                findings.extend(cnbx_validate::check_mirrors(first, rest));
            }
        }
    }
    let user = match cnbx_validate::build_user(build_facts, build_rootfs) {
        Ok(user) => Some((user.uid, user.gid)),
        Err(f) => {
            findings.push(f);
            None
        }
    };
    cnbx_validate::sort_findings(&mut findings);
    findings.dedup();
    (findings, user)
}

/// The warning listing the rules left unchecked because the layers of the images named in
/// `unread` were not read (`why` says why), if any.
fn unchecked_rules_warning(findings: &[Finding], unread: &[&str], why: &str) -> Option<String> {
    if unread.is_empty() {
        return None;
    }
    let rules: std::collections::BTreeSet<&str> = findings
        .iter()
        .filter(|f| f.level == Level::Info && f.message.starts_with("not verified:"))
        .filter(|f| unread.contains(&f.image.as_str()))
        .map(|f| f.rule)
        .collect();
    let rules = if rules.is_empty() { "none".to_owned() } else { rules.into_iter().collect::<Vec<_>>().join(", ") };
    Some(format!("{why}, so these rules were not checked: {rules}"))
}

/// The outcome of a validation that passed, as cached: the build user and the messages to
/// repeat.
#[derive(serde::Serialize, serde::Deserialize)]
struct PassedValidation {
    uid: u32,
    gid: u32,
    warnings: Vec<String>,
    debug: Vec<String>,
}

/// Validates the base images, or replays a validation that passed before for exactly the
/// same images (by manifest digest), labels and options: reading the base layers (layer mode,
/// streamed from the registry with `--publish`) is the only part of a warm create that grows
/// with the base images' size. With `skip_layers`, the images are checked from their configs
/// only and one warning lists the rules that could not be checked.
async fn validate_base_images(
    images: &Images,
    build: &SourceImage,
    build_facts: &ImageFacts,
    runs: &RunImages,
    options: &Options,
    skip_layers: bool,
) -> Result<(u32, u32), CreateError> {
    let mode = if skip_layers { "config" } else { "layers" };
    let mut key = format!("validation v2 cnbx-validate {}\n{options:?}\n", env!("CARGO_PKG_VERSION"));
    let _ = writeln!(key, "build {} {} {mode} {:?}", build_facts.name, build.manifest.digest, build_facts.labels);
    for group in &runs.groups {
        for (role, name, image) in &group.members {
            let _ = writeln!(key, "{role} {name} {} {mode}", image.manifest.digest);
        }
    }
    for f in &runs.missing_platform {
        let _ = writeln!(key, "{f}");
    }
    let cached: Option<PassedValidation> = images.home().recall("validation", &key);
    let passed = match cached {
        Some(p) => p,
        None => {
            let members = runs.groups.iter().flat_map(|g| &g.members);
            let all: Vec<(&str, &SourceImage)> = std::iter::once((build_facts.name.as_str(), build))
                .chain(members.map(|(_, name, image)| (name.as_str(), image)))
                .collect();
            let fs = BaseFileSystems::read(images, &all, skip_layers).await?;
            let (findings, user) = base_image_findings(build, build_facts, runs, &fs, options);
            let Some((uid, gid)) = user.filter(|_| findings.iter().all(|f| f.level != Level::Error)) else {
                return Err(CreateError::Validation(findings));
            };
            let text = |f: &Finding| if f.fix.is_empty() { f.to_string() } else { format!("{f}; fix: {}", f.fix) };
            let mut warnings: Vec<String> = findings.iter().filter(|f| f.level == Level::Warning).map(text).collect();
            let (unread, why) = if skip_layers {
                let names = all.iter().map(|(name, _)| *name).collect();
                (names, "--skip-layer-checks: the base images' layers were not read".to_owned())
            } else {
                let names: Vec<&str> = all.iter().filter(|(_, i)| fs.get(i).is_none()).map(|(name, _)| *name).collect();
                let why = format!(
                    "the layers of {} are compressed with zstd, which cnbx cannot read yet",
                    names.iter().map(|n| format!("'{n}'")).collect::<Vec<_>>().join(", ")
                );
                (names, why)
            };
            warnings.extend(unchecked_rules_warning(&findings, &unread, &why));
            let passed = PassedValidation {
                uid,
                gid,
                warnings,
                debug: findings.iter().filter(|f| f.level == Level::Info).map(text).collect(),
            };
            images.home().remember("validation", &key, &passed);
            passed
        }
    };
    for w in &passed.warnings {
        images.reporter().warn(w);
    }
    for d in &passed.debug {
        images.reporter().debug(d);
    }
    Ok((passed.uid, passed.gid))
}

async fn create_one(
    images: &Images,
    cache: &LayerCache,
    request: &CreateRequest,
    lifecycle_source: &LifecycleSource,
    target: Option<&Platform>,
) -> Result<ImageToWrite, CreateError> {
    let config = &request.config;
    let file = &config.config;
    let reporter = images.reporter();
    if let Some(p) = target {
        reporter.debug(&format!("Creating builder for platform {p}"));
    }

    // Build image.
    let build = fetch_required(images, "build image", &file.build.image, &config.base_dir, target).await?;
    let platform = target.cloned().unwrap_or_else(|| build.platform());
    let os = build.config.os().to_owned();
    if !matches!(os.as_str(), "linux" | "windows" | "freebsd") {
        return Err(CreateError::Invalid(format!(
            "invalid build-image '{}': provided image OS '{os}' must be either 'freebsd', 'linux' or 'windows'",
            file.build.image
        )));
    }
    if os == "windows" {
        return Err(CreateError::Usage(format!(
            "build image '{}' is a Windows image; cnbx creates Linux and FreeBSD builders only",
            file.build.image
        )));
    }
    // The --labels are applied before anything reads the build image's labels (as in pack),
    // so the validator and the stack checks see the builder's final labels.
    let mut base_labels = build.config.labels();
    for (k, v) in &request.labels {
        base_labels.insert(k.clone(), v.clone());
    }
    let mut build_facts = facts_of(&build, &file.build.image);
    build_facts.labels.clone_from(&base_labels);
    let stack_label = base_labels.get(labels::STACK_ID).cloned().unwrap_or_default();
    if !file.stack.id.is_empty() && file.stack.id != stack_label {
        return Err(CreateError::Invalid(format!(
            "invalid build-image '{}': stack '{}' from builder config is incompatible with stack '{stack_label}' from \
             build image",
            file.build.image, file.stack.id
        )));
    }

    // Lifecycle (its Platform API decides which spec rules apply).
    let module_ctx = ModuleContext { images, cache, base_dir: &config.base_dir, platform: &platform, reporter };
    let pending =
        locate_lifecycle(&module_ctx, lifecycle_source, build.config.architecture()).await.map_err(|e| match e {
            // Already says "fetch lifecycle: …".
            LifecycleError::Fetch(_) => CreateError::Lifecycle(e),
            other => step("fetch lifecycle")(other),
        })?;
    // Its layer (the biggest single layer of a typical builder) is built on the rayon pool
    // while the base images are checked and the modules are located and built there too.
    let lifecycle_layer = {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let (cache, blobs, reporter, recipe) =
            (cache.clone(), images.blobs().clone(), images.shared_reporter(), pending.recipe.clone());
        rayon::spawn(move || {
            let _ = tx.send(cache.get_or_build(&recipe, &blobs, reporter.as_ref()).map(|(info, _)| info));
        });
        rx
    };
    let lifecycle_metadata = pending.metadata;
    let runs = fetch_run_images(images, request, &platform, &build_facts).await?;

    if !file.extensions.is_empty() || file.order_extensions.as_ref().is_some_and(|o| !o.is_empty()) {
        let latest = lifecycle_metadata.apis.platform.supported().iter().max().copied();
        if latest.is_some_and(|v| v < ApiVersion::new(0, 13)) {
            return Err(CreateError::Invalid(format!(
                "builder config contains image extensions, but the lifecycle Platform API version ({}) is older than \
                 0.13; support for image extensions with Platform API < 0.13 is not available in cnbx",
                latest.map(|v| v.to_string()).unwrap_or_default()
            )));
        }
    }

    // Buildpacks and extensions (located and built before the base images are validated: a
    // buildpack that needs a stack makes the legacy stack rules errors).
    let specs = |entries: &[cnbx_config::ModuleConfig]| -> Vec<ModuleSpec> {
        entries
            .iter()
            .map(|m| ModuleSpec { uri: m.uri.clone(), id: m.info.id.clone(), version: m.info.version.clone() })
            .collect()
    };
    let buildpacks = fetch_modules(&module_ctx, ModuleKind::Buildpack, &specs(&file.buildpacks))
        .await
        .map_err(step("failed to add buildpacks to builder"))?;
    let extensions = fetch_modules(&module_ctx, ModuleKind::Extension, &specs(&file.extensions))
        .await
        .map_err(step("failed to add extensions to builder"))?;

    // Base images against the platform spec, before the modules are checked against them.
    let options = Options {
        stack_id: Some(file.stack.id.clone()).filter(|s| !s.is_empty()),
        legacy_stacks_required: legacy_stacks_required(&buildpacks),
        platform_api: platform_api_for(&lifecycle_metadata),
    };
    let (uid, gid) =
        validate_base_images(images, &build, &build_facts, &runs, &options, request.skip_layer_checks).await?;
    let label_err = |e| step::<labels::LabelError>("reading the build image's labels")(e);
    let metadata = labels::decode_or_default(&base_labels, labels::BUILDER_METADATA).map_err(label_err)?;
    let mixins = labels::decode_or_default(&base_labels, labels::STACK_MIXINS).map_err(label_err)?;
    let base = BuildBase { image: build, labels: base_labels, metadata, mixins, uid, gid };

    let facts = BuildImageFacts {
        stack_id: stack_label.clone(),
        mixins: base.mixins.clone().unwrap_or_default(),
        os: os.clone(),
        arch: base.image.config.architecture().to_owned(),
        distro_name: base.labels.get("io.buildpacks.base.distro.name").cloned().unwrap_or_default(),
        distro_version: base.labels.get("io.buildpacks.base.distro.version").cloned().unwrap_or_default(),
    };
    let existing = base.metadata.buildpacks.clone().unwrap_or_default();
    validate_modules_with(&buildpacks, &[], &existing, &lifecycle_metadata, &facts, reporter)
        .map_err(step("validating buildpacks"))?;
    validate_modules_with(&[], &extensions, &[], &lifecycle_metadata, &facts, reporter)
        .map_err(step("validating extensions"))?;
    let layer = lifecycle_layer
        .await
        .map_err(|_| CreateError::Invalid("the lifecycle layer build stopped unexpectedly".into()))?
        .map_err(step("building the lifecycle layer"))?;
    let lifecycle = Lifecycle { metadata: lifecycle_metadata, layer: layer.to_layer_blob(images.blobs()) };

    assemble(images, cache, request, &base, &lifecycle, &buildpacks, &extensions, &platform, &module_ctx)
}

/// An order of builder.toml as its label holds it: as written (pack's `null` for a list the
/// file does not have, `[]` for an empty one, for the order and for each group), with
/// `optional` dropped unless `keep_optional`.
fn label_order(order: &Option<Vec<OrderEntry>>, keep_optional: bool) -> Option<Vec<OrderEntry>> {
    let mut order = order.clone();
    for r in order.iter_mut().flatten().flat_map(|e| e.group.iter_mut().flatten()) {
        r.optional &= keep_optional;
    }
    order
}

fn encode_label<T: serde::Serialize + ?Sized>(label: &str, value: &T) -> Result<String, CreateError> {
    labels::encode(label, value).map_err(step(format!("writing label {label}")))
}

#[allow(clippy::too_many_arguments)]
fn assemble(
    images: &Images,
    cache: &LayerCache,
    request: &CreateRequest,
    base: &BuildBase,
    lifecycle: &Lifecycle,
    buildpacks: &[Module],
    extensions: &[Module],
    platform: &Platform,
    module_ctx: &ModuleContext<'_>,
) -> Result<ImageToWrite, CreateError> {
    let file = &request.config.config;
    let reporter = images.reporter();
    let label_err = |e| step::<labels::LabelError>("reading the build image's labels")(e);

    // Builder metadata, starting from the build image's (usually absent).
    let mut metadata = base.metadata.clone();
    metadata.description = file.description.clone();
    if !buildpacks.is_empty() {
        metadata.buildpacks.get_or_insert_with(Vec::new).extend(buildpacks.iter().map(|m| m.info.clone()));
    }
    if !extensions.is_empty() {
        metadata.extensions.get_or_insert_with(Vec::new).extend(extensions.iter().map(|m| m.info.clone()));
    }
    // pack keeps the distinction between a list that is absent (`null`, no key in the TOML
    // files) and one that is empty (`[]`) everywhere: after the `[stack]` merge, the first run
    // image's mirrors are `[stack].run-image-mirrors` with that distinction intact.
    let first_run = file.run.images.first();
    if !file.stack.id.is_empty() {
        let mirrors = first_run.and_then(|r| r.mirrors.clone());
        metadata.stack = StackMetadata { run_image: RunImage { image: file.stack.run_image.clone(), mirrors } };
    }
    metadata.lifecycle = lifecycle.metadata.clone();
    metadata.created_by = CreatorMetadata { name: CREATOR_NAME.to_owned(), version: request.creator_version.clone() };
    metadata.run_images = (!file.run.images.is_empty()).then(|| file.run.images.clone());

    // Orders: the raw config goes to the labels, the resolved one to order.toml.
    let order = label_order(&file.order, true);
    let order_extensions = label_order(&file.order_extensions, false);
    let available_bps = metadata.buildpacks.clone().unwrap_or_default();
    let available_exts = metadata.extensions.clone().unwrap_or_default();
    let resolved_order = resolve_order(order.as_deref().unwrap_or_default(), &available_bps, ModuleKind::Buildpack)
        .map_err(step("processing buildpacks order"))?;
    let resolved_ext_order =
        resolve_order(order_extensions.as_deref().unwrap_or_default(), &available_exts, ModuleKind::Extension)
            .map_err(step("processing extensions order"))?;
    let system = &file.system;
    let resolved_system = if system.is_empty() {
        None
    } else {
        Some(resolve_system(system, &available_bps).map_err(step("processing system buildpacks"))?)
    };

    // Layers, in pack's order.
    let build_recipe = |recipe: LayerRecipe| -> Result<LayerInfo, CreateError> {
        let name = recipe.name.clone();
        cache
            .get_or_build(&recipe, images.blobs(), reporter)
            .map(|(info, _)| info)
            .map_err(step(format!("building the {name} layer")))
    };
    let mut new_layers: Vec<LayerBlob> = Vec::new();
    new_layers.push(
        build_recipe(layers::default_dirs(u64::from(base.uid), u64::from(base.gid)))?.to_layer_blob(images.blobs()),
    );
    new_layers.push(lifecycle.layer.clone());

    let base_bp_layers: ModuleLayers =
        labels::decode_or_default(&base.labels, labels::BUILDPACK_LAYERS).map_err(label_err)?;
    let base_ext_layers: ModuleLayers =
        labels::decode_or_default(&base.labels, labels::EXTENSION_LAYERS).map_err(label_err)?;
    let (bp_layers, bp_label) =
        plan_module_layers(module_ctx, ModuleKind::Buildpack, buildpacks, &base_bp_layers, &request.flatten)
            .map_err(step("adding buildpack layers"))?;
    new_layers.extend(bp_layers);
    let (ext_layers, ext_label) =
        plan_module_layers(module_ctx, ModuleKind::Extension, extensions, &base_ext_layers, &request.flatten)
            .map_err(step("adding extension layers"))?;
    new_layers.extend(ext_layers);

    let order_toml = layers::order_toml(&resolved_order, &resolved_ext_order);
    new_layers.push(
        build_recipe(layers::single_file("/cnb/order.toml", order_toml.as_bytes()))?.to_layer_blob(images.blobs()),
    );
    if let Some(system) = &resolved_system {
        let toml = layers::system_toml(system);
        new_layers.push(
            build_recipe(layers::single_file("/cnb/system.toml", toml.as_bytes()))?.to_layer_blob(images.blobs()),
        );
    }
    let run_entries = &file.run.images;
    // stack.toml: the metadata's stack run image (from `[stack]`, or inherited from the build
    // image's metadata) when it has one, else the first run image.
    let stack_run = &metadata.stack.run_image;
    let stack_entry = if stack_run.image.is_empty() { run_entries.first().cloned() } else { Some(stack_run.clone()) };
    let stack_toml = stack_entry.as_ref().map(layers::stack_toml).unwrap_or_default();
    new_layers.push(
        build_recipe(layers::single_file("/cnb/stack.toml", stack_toml.as_bytes()))?.to_layer_blob(images.blobs()),
    );
    new_layers.push(
        build_recipe(layers::single_file("/cnb/run.toml", layers::run_toml(run_entries).as_bytes()))?
            .to_layer_blob(images.blobs()),
    );
    if !request.config.build_env.is_empty() {
        let files: BTreeMap<String, Vec<u8>> =
            request.config.build_env.iter().map(|(k, v)| (k.clone(), v.clone().into_bytes())).collect();
        new_layers.push(build_recipe(layers::build_config_env(&files))?.to_layer_blob(images.blobs()));
    }
    new_layers.push(build_recipe(layers::platform_env())?.to_layer_blob(images.blobs()));

    // Labels: the user's first, then pack's.
    let mut config = base.image.config.clone();
    for (k, v) in &request.labels {
        config.set_label(k, v);
    }
    // The build image's mixins as read: `null` when it has none (or `null`), `[]` for `[]`.
    let mixins = base.mixins.clone();
    let mut pack_labels = vec![
        (labels::BUILDER_METADATA, encode_label(labels::BUILDER_METADATA, &metadata)?),
        (labels::BUILDPACK_LAYERS, encode_label(labels::BUILDPACK_LAYERS, &bp_label)?),
        (labels::EXTENSION_LAYERS, encode_label(labels::EXTENSION_LAYERS, &ext_label)?),
        (labels::BUILDPACK_ORDER, encode_label(labels::BUILDPACK_ORDER, &order)?),
        (labels::ORDER_EXTENSIONS, encode_label(labels::ORDER_EXTENSIONS, &order_extensions)?),
        (labels::STACK_MIXINS, encode_label(labels::STACK_MIXINS, &mixins)?),
    ];
    if !system.is_empty() {
        pack_labels.push((labels::SYSTEM, encode_label(labels::SYSTEM, system)?));
    }
    for (k, v) in &pack_labels {
        config.set_label(k, v);
    }

    // The image: base layers + ours, pack's config changes.
    let docker = base.image.manifest.value.media_type.as_deref() == Some(media_type::DOCKER_MANIFEST);
    let layer_media_type = if docker { media_type::DOCKER_LAYER_GZIP } else { media_type::OCI_LAYER_GZIP };
    let mut layers_out = base.image.layers().map_err(step("reading the build image"))?;
    for mut layer in new_layers {
        if media_type::is_gzip_layer(&layer.descriptor.media_type) {
            layer.descriptor.media_type = layer_media_type.to_owned();
        }
        config.push_diff_id(&layer.diff_id);
        layers_out.push(layer);
    }
    config.set_working_dir("/layers");
    config.set_created(NORMALIZED_CREATED);
    config.remove("container");
    config.reset_history(layers_out.len(), NORMALIZED_CREATED);
    reporter.debug("Builder creation completed, starting image save");
    Ok(ImageToWrite {
        manifest_media_type: if docker { media_type::DOCKER_MANIFEST } else { media_type::OCI_MANIFEST }.to_owned(),
        config_media_type: if docker { media_type::DOCKER_CONFIG } else { media_type::OCI_CONFIG }.to_owned(),
        config: config.to_raw(),
        layers: layers_out,
        platform: platform_of(&config, platform),
        annotations: None,
    })
}

fn platform_of(config: &cnbx_oci::ImageConfig, requested: &Platform) -> Platform {
    let p = config.platform();
    if p.os.is_empty() { requested.clone() } else { p }
}

async fn write_output(
    images: &Images,
    destination: &Destination,
    request: &CreateRequest,
    built: &[ImageToWrite],
) -> Result<(Digest, Option<PushOutcome>), CreateError> {
    let reporter = images.reporter();
    match destination {
        Destination::Registry(reference) => {
            let outcome = images
                .registry()
                .push(reference, built, reporter)
                .await
                .map_err(step(format!("pushing '{reference}'")))?;
            Ok((outcome.digest.clone(), Some(outcome)))
        }
        Destination::Store(reference) => {
            let d = images
                .store()
                .put(reference, built)
                .map_err(step(format!("saving '{reference}' in the local store")))?;
            Ok((d.digest, None))
        }
        Destination::Layout { dir, tag } => {
            let layout = if dir.join("oci-layout").exists() { OciLayout::open(dir) } else { OciLayout::create(dir) }
                .map_err(step(format!("opening the OCI layout {}", dir.display())))?;
            let d = layout.write(tag, built).map_err(step(format!("writing '{}'", request.destination)))?;
            Ok((d.digest, None))
        }
        Destination::Archive { file, reference } => {
            let tags: Vec<ImageRef> = reference.iter().cloned().collect();
            cnbx_oci::write_docker_archive(file, &tags, built)
                .map_err(step(format!("writing '{}'", request.destination)))?;
            let manifest = built.first().map(ImageToWrite::manifest);
            Ok((manifest.map(|m| m.digest).unwrap_or_else(Digest::empty), None))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(os: &str, arch: &str, variant: &str, distros: &[(&str, &str)]) -> Target {
        Target {
            os: os.into(),
            arch: arch.into(),
            variant: variant.into(),
            distros: distros
                .iter()
                .map(|(n, v)| cnbx_model::Distribution { name: (*n).into(), version: (*v).into() })
                .collect(),
        }
    }

    #[test]
    fn template_placeholders_are_found() {
        assert_eq!(template_placeholder("${STACK_ID}"), Some("${STACK_ID}"));
        assert_eq!(template_placeholder("gcr.io/x/{{.Tag}}:1"), Some("{{.Tag}}"));
        assert_eq!(template_placeholder("v{LIFECYCLE_VERSION}"), Some("{LIFECYCLE_VERSION}"));
        assert_eq!(template_placeholder("cnbx.test/run:jammy"), None);
        assert_eq!(template_placeholder("{lower} ${unterminated"), None);
    }

    #[test]
    fn suffixed_names_follow_pack() {
        let t = target("linux", "arm64", "v8", &[("ubuntu", "22.04")]);
        let s = |r: &str| suffixed(&ImageRef::parse(r).unwrap(), &t).unwrap().to_string();
        assert_eq!(s("r.example/b:latest"), "r.example/b:linux-arm64-v8-ubuntu-22.04");
        assert_eq!(s("r.example/b"), "r.example/b:linux-arm64-v8-ubuntu-22.04");
        assert_eq!(s("r.example/b:1"), "r.example/b:1-linux-arm64-v8-ubuntu-22.04");
        let digest = format!("r.example/b@sha256:{}", "a".repeat(64));
        assert_eq!(s(&digest), digest);
        let plain = target("linux", "amd64", "", &[]);
        assert_eq!(suffixed(&ImageRef::parse("b:2").unwrap(), &plain).unwrap().tag(), Some("2-linux-amd64"));
    }
}
