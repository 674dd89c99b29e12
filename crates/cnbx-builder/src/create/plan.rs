//! The first stage of `builder create`: everything decided and checked before anything is
//! written.
//!
//! [`Plan::resolve`] finishes resolving the request before any work starts: builder.toml's
//! rules and template placeholders, the run image names, the destination and the `--tag`s
//! ([`Destination`]), the targets, the build image's location, the lifecycle's source; it
//! opens the layer service. Nothing after it reads the request's spellings again.
//!
//! [`Plan::target`] then resolves one target in named steps:
//!
//! 1. [`Plan::build_image`]: the build image, its OS, the `--label`s applied to its labels,
//!    the stack id;
//! 2. [`Plan::lifecycle`]: the lifecycle, whose layer is built on a blocking thread while the
//!    rest goes on;
//! 3. [`fetch_run_images`]: the run images and mirrors;
//! 4. [`Plan::modules`]: the buildpacks and extensions (their layers built in parallel), with
//!    the base images' layers read meanwhile;
//! 5. [`Plan::validate`]: the base images against the platform spec ([`super::base`]);
//! 6. [`Plan::check_modules`]: the modules against the lifecycle and the build image;
//! 7. [`orders`]: the orders.
//!
//! The result, a [`Planned`], is either every part of the target's builder image for
//! [`crate::assemble::builder_image`] with the validation's findings, or the validation's
//! refusal with its findings and platform: a dry run reports either, a create goes on or stops.
//!
//! A dry run ([`Mode::DryRun`]) plans the same way with a [planning](LayerService::planning)
//! layer service, which builds nothing, and does not print the findings (its report holds
//! them).
//!
//! A create checks a cached layer before it reuses it. When the destination reads every
//! layer it is given through a check of its digest anyway (see
//! [`Destination::checks_what_it_reads`]), that read is the check, and the cache only makes
//! sure the blob is there with its size ([`ReuseCheck::OnUse`]): a warm create reads each
//! reused layer once instead of twice. If the write then finds a blob corrupt,
//! [`super::create`] checks the layers, evicts what is wrong and plans again with
//! [`Mode::CreateHashingCache`].

use cnbx_model::{ApiVersion, LifecycleSource, ModuleKind, OrderEntry, Target};
use cnbx_oci::image::SourceImage;
use cnbx_oci::progress::ReporterExt;
use cnbx_oci::spec::Platform;
use cnbx_oci::{LayerCache, ReuseCheck};
use cnbx_refs::{ImageLocation, ImageRef, Transport};
use cnbx_validate::{Finding, ImageFacts, Options, Role};

use super::base::{
    BaseImages, fetch_required, fetch_run_images, legacy_stacks_required, platform_api_for, validate_base_images,
};
use super::destination::Destination;
use super::{CreateError, CreateRequest};
use crate::assemble::{BuildBase, LayerService, Lifecycle, Module, Orders};
use crate::images::Images;
use crate::labels;
use crate::lifecycle::{PendingLifecycle, locate_lifecycle};
use crate::modules::{BuildImageFacts, fetch_modules, resolve_order, resolve_system, validate_modules_with};
use crate::source::FetchContext;
use crate::validation::{FileSystems, facts_of};

/// How [`Plan::resolve`] plans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Build and write nothing (`--dry-run`).
    DryRun,
    /// Build the layers the cache does not have; a cached one is hashed before it is reused
    /// unless the destination checks what it reads (see the module docs).
    Create,
    /// Like [`Mode::Create`], hashing every cached layer before it is reused.
    CreateHashingCache,
}

/// An image named by the request, resolved: where it is, and how the user wrote it (for
/// messages).
#[derive(Debug, Clone)]
pub(crate) struct ImageSpec {
    pub(crate) location: ImageLocation,
    pub(crate) shown: String,
}

/// What `builder create` does, decided before any target is resolved.
pub(crate) struct Plan<'a> {
    pub(crate) images: &'a Images,
    pub(crate) request: &'a CreateRequest,
    /// Where the builder goes, and the destination as the user wrote it (for messages).
    pub(crate) destination: Destination,
    pub(crate) shown_destination: String,
    /// Where each `--tag` goes.
    pub(crate) tags: Vec<Destination>,
    /// `--target`s, else `[[targets]]`; empty means the build image's platform.
    pub(crate) targets: &'a [Target],
    /// The build image.
    pub(crate) build_image: ImageSpec,
    /// With the engine as the destination, how the engine names the build image (a bare name
    /// or a `docker-daemon:` image): the layers it holds of it need not be sent.
    pub(crate) engine_base: Vec<String>,
    pub(crate) layers: LayerService,
    /// How the layer cache checks a blob before a hit (see the module docs).
    pub(crate) reuse_check: ReuseCheck,
    lifecycle: LifecycleSource,
    dry_run: bool,
}

/// Every part of one target's builder image, checked.
pub(crate) struct TargetPlan {
    pub(crate) platform: Platform,
    pub(crate) base: BuildBase,
    pub(crate) lifecycle: Lifecycle,
    pub(crate) buildpacks: Vec<Module>,
    pub(crate) extensions: Vec<Module>,
    pub(crate) orders: Orders,
    /// What the validation of the base images found (warnings and infos; no error).
    pub(crate) findings: Vec<Finding>,
}

/// How planning one target ended.
pub(crate) enum Planned {
    /// Every part is there.
    Ready(Box<TargetPlan>),
    /// The base images break the platform spec: the target's platform, and the error (a
    /// [`CreateError::Validation`] with every finding) that stops the create.
    Refused { platform: Platform, failure: Box<CreateError> },
}

/// Why a step stopped the planning of a target.
enum Stop {
    /// The base images break the platform spec (pack's checks included): the target's
    /// platform and the [`CreateError::Validation`] with the findings.
    Refused { platform: Platform, failure: Box<CreateError> },
    /// Any other error.
    Failed(CreateError),
}

impl From<CreateError> for Stop {
    fn from(e: CreateError) -> Self {
        Self::Failed(e)
    }
}

/// The build image of a target, read and checked.
struct BuildImage {
    image: SourceImage,
    platform: Platform,
    os: String,
    /// Its labels with the `--label`s applied (what every later check sees).
    labels: std::collections::BTreeMap<String, String>,
    facts: ImageFacts,
    stack_label: String,
}

impl<'a> Plan<'a> {
    /// Checks the request and resolves it: the destination, tags, targets and the build
    /// image's location; a dry run builds no layer (see the module docs).
    pub(crate) fn resolve(images: &'a Images, request: &'a CreateRequest, mode: Mode) -> Result<Self, CreateError> {
        let dry_run = mode == Mode::DryRun;
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
        let shown_destination = request.destination.clone();
        let location = ImageLocation::parse(&request.destination, &request.cwd)
            .map_err(|source| CreateError::Destination { destination: request.destination.clone(), source })?;
        let destination = Destination::of(location, &shown_destination, request.publish, images)?;
        let tags = destination.tags(&request.tags, &shown_destination)?;
        let build_shown = config.config.build.image.clone();
        let build_location = ImageLocation::parse(&build_shown, &config.base_dir).map_err(|source| {
            CreateError::Fetch { role: "build image", image: build_shown.clone(), source: Box::new(source.into()) }
        })?;
        let engine_base = match (&destination, &build_location) {
            (Destination::Engine(_), ImageLocation::Name(r)) => vec![r.familiar()],
            (Destination::Engine(_), ImageLocation::DockerDaemon(d)) => vec![d.api_name().to_owned()],
            _ => Vec::new(),
        };
        let build_image = ImageSpec { location: build_location, shown: build_shown };

        let targets: &[Target] = if request.targets.is_empty() { &config.config.targets } else { &request.targets };
        if targets.is_empty() {
            images
                .reporter()
                .info("Pro tip: use --target flag OR [[targets]] in builder.toml to specify the desired platform");
        }
        destination.check_targets(targets.len())?;
        let cache_dir = images.home().layer_cache_dir();
        let reuse_check = match mode {
            Mode::Create if destination.checks_what_it_reads(&tags) => ReuseCheck::OnUse,
            _ => ReuseCheck::Content,
        };
        let layers = if dry_run {
            LayerService::planning(LayerCache::at(cache_dir), images.blobs().clone(), images.shared_reporter())
        } else {
            let cache =
                LayerCache::open(&cache_dir).map_err(|source| CreateError::LayerCache { path: cache_dir, source })?;
            let cache = cache.with_reuse_check(reuse_check);
            LayerService::new(cache, images.blobs().clone(), images.shared_reporter())
        };
        let lifecycle = config.config.lifecycle.source()?;
        Ok(Self {
            images,
            request,
            destination,
            shown_destination,
            tags,
            targets,
            build_image,
            engine_base,
            layers,
            reuse_check,
            lifecycle,
            dry_run,
        })
    }

    /// The platforms to make a builder for: `None` for the build image's own.
    pub(crate) fn platforms(&self) -> Vec<Option<Platform>> {
        if self.targets.is_empty() {
            return vec![None];
        }
        let platform = |t: &Target| {
            let variant = Some(t.variant.as_str()).filter(|v| !v.is_empty());
            Some(Platform::new(&t.os, &t.arch, variant))
        };
        self.targets.iter().map(platform).collect()
    }

    /// Resolves and checks the target `platform` (`None`: the build image's), in the steps of
    /// the module docs.
    pub(crate) async fn target(&self, target: Option<&Platform>) -> Result<Planned, CreateError> {
        match self.plan_target(target).await {
            Ok(plan) => Ok(Planned::Ready(Box::new(plan))),
            Err(Stop::Refused { platform, failure }) => Ok(Planned::Refused { platform, failure }),
            Err(Stop::Failed(e)) => Err(e),
        }
    }

    async fn plan_target(&self, target: Option<&Platform>) -> Result<TargetPlan, Stop> {
        let (images, request) = (self.images, self.request);
        let file = &request.config.config;
        let reporter = images.reporter();
        if let Some(p) = target {
            reporter.debug(&format!("Creating builder for platform {p}"));
        }
        let build = self.build_image(target).await?;
        let ctx = FetchContext {
            images,
            layers: &self.layers,
            base_dir: &request.config.base_dir,
            platform: &build.platform,
            reporter,
        };
        let pending = self.lifecycle(&ctx, &build).await?;
        let runs = match fetch_run_images(images, request, &build.platform, &build.facts).await {
            Err(failure @ CreateError::Validation(_)) => {
                return Err(Stop::Refused { platform: build.platform, failure: Box::new(failure) });
            }
            other => other?,
        };
        let base_images = BaseImages { build: &build.image, build_facts: &build.facts, runs: &runs };
        let mut options = Options {
            stack_id: Some(file.stack.id.clone()).filter(|s| !s.is_empty()),
            legacy_stacks_required: false,
            platform_api: platform_api_for(&pending.metadata),
        };
        let (buildpacks, extensions, read_before) = self.modules(&ctx, &base_images, &options).await?;
        options.legacy_stacks_required = legacy_stacks_required(&buildpacks);
        let (uid, gid, findings) = match self.validate(&base_images, &options, read_before).await? {
            Ok(passed) => passed,
            Err(failure) => return Err(Stop::Refused { platform: build.platform, failure: Box::new(failure) }),
        };
        let BuildImage { image, platform, os, labels: base_labels, stack_label, .. } = build;
        let metadata = labels::builder_metadata(&base_labels, false).map_err(CreateError::BaseLabels)?;
        let mixins = labels::decode_or_default(&base_labels, labels::STACK_MIXINS).map_err(CreateError::BaseLabels)?;
        let base = BuildBase { image, labels: base_labels, metadata, mixins, uid, gid };
        self.check_modules(&base, &os, stack_label, &pending, &buildpacks, &extensions)?;
        let layer = pending
            .layer
            .await
            .map_err(|_| CreateError::LifecycleLayerStopped)?
            .map_err(|e| CreateError::LifecycleLayer(Box::new(e)))?;
        let lifecycle = Lifecycle { metadata: pending.metadata, layer };
        let orders = orders(request, &base, &buildpacks, &extensions)?;
        Ok(TargetPlan { platform, base, lifecycle, buildpacks, extensions, orders, findings })
    }

    /// Step 1: the build image for `target`, its OS and stack checked (pack's checks, as
    /// findings), with the `--label`s applied to its labels before anything reads them (as in
    /// pack), so that the validator and the stack checks see the builder's final labels.
    async fn build_image(&self, target: Option<&Platform>) -> Result<BuildImage, Stop> {
        let file = &self.request.config.config;
        let spec = &self.build_image;
        let image = fetch_required(self.images, "build image", spec, target).await?;
        let platform = target.cloned().unwrap_or_else(|| image.platform());
        let os = image.config.os().to_owned();
        let refused = |platform: &Platform, finding| Stop::Refused {
            platform: platform.clone(),
            failure: Box::new(CreateError::Validation(vec![finding])),
        };
        let mut facts = facts_of(&image, &spec.shown);
        if let Some(finding) = cnbx_validate::check_build_os(&facts) {
            return Err(refused(&platform, finding));
        }
        if os == "windows" {
            return Err(Stop::Failed(CreateError::Usage(format!(
                "build image '{}' is a Windows image; cnbx creates Linux and FreeBSD builders only",
                spec.shown
            ))));
        }
        let mut labels = image.config.labels();
        for (k, v) in &self.request.labels {
            labels.insert(k.clone(), v.clone());
        }
        facts.labels.clone_from(&labels);
        let stack_label = labels.get(labels::STACK_ID).cloned().unwrap_or_default();
        if let Some(finding) = cnbx_validate::check_stack_id(Role::Build, &facts, &file.stack.id) {
            return Err(refused(&platform, finding));
        }
        Ok(BuildImage { image, platform, os, labels, facts, stack_label })
    }

    /// Step 2: the lifecycle (its Platform API decides which spec rules apply). Its layer, the
    /// biggest single layer of a typical builder, is built on a blocking thread while the base
    /// images are checked and the modules are located and built.
    async fn lifecycle(&self, ctx: &FetchContext<'_>, build: &BuildImage) -> Result<PendingLifecycle, CreateError> {
        let file = &self.request.config.config;
        let pending = locate_lifecycle(ctx, &self.lifecycle, build.image.config.architecture())
            .await
            .map_err(CreateError::Lifecycle)?;
        if !file.extensions.is_empty() || file.order_extensions.as_ref().is_some_and(|o| !o.is_empty()) {
            let latest = pending.metadata.apis.platform.supported().iter().max().copied();
            if latest.is_some_and(|v| v < ApiVersion::new(0, 13)) {
                return Err(CreateError::Invalid(format!(
                    "builder config contains image extensions, but the lifecycle Platform API version ({}) is older \
                     than 0.13; support for image extensions with Platform API < 0.13 is not available in cnbx",
                    latest.map(|v| v.to_string()).unwrap_or_default()
                )));
            }
        }
        Ok(pending)
    }

    /// Step 4: the buildpacks and extensions (located and built before the base images are
    /// validated: a buildpack that needs a stack makes the legacy stack rules errors). Unless a
    /// validation of the same base images passed before, their layers are read meanwhile:
    /// reading them is work for one core (a decompression), building the module layers keeps
    /// both busy, and one after the other the second core would wait.
    async fn modules(
        &self,
        ctx: &FetchContext<'_>,
        base_images: &BaseImages<'_>,
        options: &Options,
    ) -> Result<(Vec<Module>, Vec<Module>, ReadLayers), CreateError> {
        let file = &self.request.config.config;
        let read_early = !self.request.skip_layer_checks && !base_images.validated_before(self.images, options);
        let to_read = base_images.to_read();
        let read_layers =
            async { if read_early { Some(FileSystems::read(self.images, &to_read).await) } else { None } };
        let fetch = async {
            let buildpacks = fetch_modules(ctx, ModuleKind::Buildpack, &file.buildpacks)
                .await
                .map_err(|source| CreateError::AddModules { kind: ModuleKind::Buildpack, source })?;
            let extensions = fetch_modules(ctx, ModuleKind::Extension, &file.extensions)
                .await
                .map_err(|source| CreateError::AddModules { kind: ModuleKind::Extension, source })?;
            Ok::<_, CreateError>((buildpacks, extensions))
        };
        let (read_before, fetched) = both(read_layers, fetch).await;
        let (buildpacks, extensions) = fetched?;
        Ok((buildpacks, extensions, read_before))
    }

    /// Step 5: the base images against the platform spec, before the modules are checked
    /// against them. `Ok(Err(failure))`: the images break a rule (the failure holds every
    /// finding); otherwise the build user and the findings. A create reports the warnings as
    /// it goes; a dry run's report holds them.
    async fn validate(
        &self,
        base_images: &BaseImages<'_>,
        options: &Options,
        read_before: ReadLayers,
    ) -> Result<Result<(u32, u32, Vec<Finding>), CreateError>, CreateError> {
        let skip = self.request.skip_layer_checks;
        let validation = validate_base_images(self.images, base_images, options, skip, read_before).await?;
        let findings = validation.findings.clone();
        match validation.passed(self.images.reporter(), !self.dry_run) {
            Ok((uid, gid)) => Ok(Ok((uid, gid, findings))),
            Err(failure @ CreateError::Validation(_)) => Ok(Err(failure)),
            Err(e) => Err(e),
        }
    }

    /// Step 6: the modules against the lifecycle's APIs and the build image's stack, mixins,
    /// OS, architecture and distribution.
    fn check_modules(
        &self,
        base: &BuildBase,
        os: &str,
        stack_id: String,
        lifecycle: &PendingLifecycle,
        buildpacks: &[Module],
        extensions: &[Module],
    ) -> Result<(), CreateError> {
        let reporter = self.images.reporter();
        let facts = BuildImageFacts {
            stack_id,
            mixins: base.mixins.clone().unwrap_or_default(),
            os: os.to_owned(),
            arch: base.image.config.architecture().to_owned(),
            distro_name: base.labels.get("io.buildpacks.base.distro.name").cloned().unwrap_or_default(),
            distro_version: base.labels.get("io.buildpacks.base.distro.version").cloned().unwrap_or_default(),
        };
        let existing = base.metadata.buildpacks.clone().unwrap_or_default();
        let invalid = |kind| move |source| CreateError::ValidateModules { kind, source };
        validate_modules_with(buildpacks, &[], &existing, &lifecycle.metadata, &facts, reporter)
            .map_err(invalid(ModuleKind::Buildpack))?;
        validate_modules_with(&[], extensions, &[], &lifecycle.metadata, &facts, reporter)
            .map_err(invalid(ModuleKind::Extension))?;
        Ok(())
    }
}

/// The base images' layers read while the modules were fetched, if they were.
type ReadLayers = Option<Result<FileSystems, crate::base_layers::BaseLayersError>>;

/// An order of builder.toml as its label holds it: as written (pack's `null` for a list the
/// file does not have, `[]` for an empty one, for the order and for each group), with
/// `optional` dropped unless `keep_optional`.
fn label_order(order: Option<&Vec<OrderEntry>>, keep_optional: bool) -> Option<Vec<OrderEntry>> {
    let mut order = order.cloned();
    for r in order.iter_mut().flatten().flat_map(|e| e.group.iter_mut().flatten()) {
        r.optional &= keep_optional;
    }
    order
}

/// The orders as the labels hold them, and resolved against the modules of the builder (those
/// of the build image's metadata, then the new ones).
fn orders(
    request: &CreateRequest,
    base: &BuildBase,
    buildpacks: &[Module],
    extensions: &[Module],
) -> Result<Orders, CreateError> {
    let file = &request.config.config;
    let available = |on_base: &Option<Vec<_>>, new: &[Module]| {
        let mut all = on_base.clone().unwrap_or_default();
        all.extend(new.iter().map(|m| m.info.clone()));
        all
    };
    let available_bps = available(&base.metadata.buildpacks, buildpacks);
    let available_exts = available(&base.metadata.extensions, extensions);
    let order = label_order(file.order.as_ref(), true);
    let order_extensions = label_order(file.order_extensions.as_ref(), false);
    let resolve = |kind, order: &Option<Vec<OrderEntry>>, available| {
        resolve_order(order.as_deref().unwrap_or_default(), available, kind)
            .map_err(|source| CreateError::Order { kind, source })
    };
    let resolved = resolve(ModuleKind::Buildpack, &order, &available_bps)?;
    let resolved_extensions = resolve(ModuleKind::Extension, &order_extensions, &available_exts)?;
    let system = file.system.clone();
    let resolved_system = if system.is_empty() {
        None
    } else {
        Some(resolve_system(&system, &available_bps).map_err(CreateError::System)?)
    };
    Ok(Orders { order, order_extensions, system, resolved, resolved_extensions, resolved_system })
}

/// The first template placeholder in `text`, if any: `${NAME}` (shell, Bazel), `{{ … }}` (Go
/// templates) or `{NAME}` of upper-case letters, digits and `_` (Python's `str.format`), what
/// a builder.toml template still holds when it was not rendered.
fn template_placeholder(text: &str) -> Option<&str> {
    for (open, close) in [("${", "}"), ("{{", "}}")] {
        if let Some(start) = text.find(open)
            && let Some(len) = text[start + open.len()..].find(close)
        {
            return Some(&text[start..start + open.len() + len + close.len()]);
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
    match ImageLocation::spelled_transport(name) {
        None => ImageRef::parse(name).map(drop).map_err(|e| e.to_string()),
        Some(Transport::Name) => Err(format!(
            "run images are written into the builder as they are, and the lifecycle cannot pull a name with the \
             docker:// prefix; write '{}' without it",
            cnbx_fs::excerpt(ImageLocation::strip_docker_scheme(name).unwrap_or(name))
        )),
        Some(transport) => Err(format!(
            "{} is not a registry image: run images and mirrors are written into the builder (/cnb/run.toml, \
             /cnb/stack.toml, the metadata label) for the lifecycle to pull from a registry; {FIX}",
            transport.noun()
        )),
    }
}

/// Runs `side` and `main` to completion, at the same time. On a multi-threaded runtime `side`
/// gets a thread of its own: `main` builds layers on the thread it runs on (blocking it), and
/// `side`'s downloads must not wait for that. Elsewhere (a single-threaded runtime) the two
/// are polled together.
async fn both<A, B>(side: impl Future<Output = A> + Send, main: impl Future<Output = B>) -> (A, B)
where
    A: Send,
{
    let handle = tokio::runtime::Handle::current();
    if handle.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
        return tokio::join!(side, main);
    }
    tokio::task::block_in_place(|| {
        std::thread::scope(|scope| {
            let side = scope.spawn(|| handle.block_on(side));
            let main = handle.block_on(main);
            match side.join() {
                Ok(side) => (side, main),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_images_must_be_bare_registry_names() {
        assert_eq!(run_image_name_problem("registry.example.com/run:1"), Ok(()));
        let refused = |name: &str| run_image_name_problem(name).unwrap_err();
        assert!(refused("docker://x/run:1").contains("write 'x/run:1' without it"));
        assert!(refused("oci:/tmp/run").starts_with("an oci: layout is not a registry image"));
        assert!(refused("docker-archive:/tmp/run.tar").starts_with("a docker-archive is not a registry image"));
        assert!(
            refused("docker-daemon:run:1")
                .starts_with("an image in the container engine (docker-daemon:) is not a registry image")
        );
    }

    #[test]
    fn template_placeholders_are_found() {
        assert_eq!(template_placeholder("${STACK_ID}"), Some("${STACK_ID}"));
        assert_eq!(template_placeholder("gcr.io/x/{{.Tag}}:1"), Some("{{.Tag}}"));
        assert_eq!(template_placeholder("v{LIFECYCLE_VERSION}"), Some("{LIFECYCLE_VERSION}"));
        assert_eq!(template_placeholder("cnbx.test/run:jammy"), None);
        assert_eq!(template_placeholder("{lower} ${unterminated"), None);
    }
}
