//! The first stage of `builder create`: everything decided and checked before anything is
//! written.
//!
//! [`Plan::resolve`] checks the request (builder.toml's rules, template placeholders, run
//! image names, the destination and `--tag`s, the targets) and opens the layer service.
//! [`Plan::target`] then resolves one target: the build image and its checks, the lifecycle
//! (its layer is built on a blocking thread while the rest goes on), the run images and
//! mirrors, the buildpacks and extensions (their layers built in parallel), the base images
//! against the platform spec ([`super::base`]), the modules against the lifecycle and the
//! build image, and the orders. The result, a [`TargetPlan`], holds every part of the target's
//! builder image for [`crate::assemble::builder_image`].
//!
//! A dry run ([`Mode::DryRun`]) plans the same way with a [planning](LayerService::planning)
//! layer service, which builds nothing, and keeps the findings of each target's validation
//! for its report instead of printing them.
//!
//! A create checks a cached layer before it reuses it. When the destination reads every
//! layer it is given through a check of its digest anyway (an `oci:` layout, a
//! docker-archive, a registry: see [`Destination::checks_what_it_reads`]), that read is the
//! check, and the cache only makes sure the blob is there with its size
//! ([`ReuseCheck::OnUse`]): a warm create reads each reused layer once instead of twice. If
//! the write then finds a blob corrupt, [`super::create`] checks the layers, evicts what is
//! wrong and plans again with [`Mode::CreateHashingCache`].

use cnbx_model::{ApiVersion, LifecycleSource, ModuleKind, OrderEntry, Target};
use cnbx_oci::progress::ReporterExt;
use cnbx_oci::spec::Platform;
use cnbx_oci::{LayerCache, ReuseCheck};
use cnbx_refs::ImageRef;
use cnbx_validate::{Options, Role};

use super::base::{
    BaseImages, fetch_required, fetch_run_images, legacy_stacks_required, platform_api_for, validate_base_images,
};
use super::write::Destination;
use super::{CreateError, CreateRequest};
use crate::assemble::{BuildBase, LayerService, Lifecycle, Module, Orders};
use crate::images::Images;
use crate::labels;
use crate::lifecycle::locate_lifecycle;
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

/// What `builder create` does, decided before any target is resolved.
pub(crate) struct Plan<'a> {
    pub(crate) images: &'a Images,
    pub(crate) request: &'a CreateRequest,
    pub(crate) destination: Destination,
    pub(crate) tags: Vec<ImageRef>,
    /// `--target`s, else `[[targets]]`; empty means the build image's platform.
    pub(crate) targets: &'a [Target],
    pub(crate) layers: LayerService,
    /// How the layer cache checks a blob before a hit (see the module docs).
    pub(crate) reuse_check: ReuseCheck,
    lifecycle: LifecycleSource,
    dry_run: bool,
    /// A dry run's last validation of the base images: the target's platform and the
    /// findings (a create reports them as it goes, and keeps none).
    validation: std::sync::Mutex<Option<(Platform, Vec<cnbx_validate::Finding>)>>,
}

/// Every part of one target's builder image, checked.
pub(crate) struct TargetPlan {
    pub(crate) platform: Platform,
    pub(crate) base: BuildBase,
    pub(crate) lifecycle: Lifecycle,
    pub(crate) buildpacks: Vec<Module>,
    pub(crate) extensions: Vec<Module>,
    pub(crate) orders: Orders,
}

impl<'a> Plan<'a> {
    /// Checks the request and decides the destination, tags and targets; a dry run builds no
    /// layer (see the module docs).
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
        let destination = Destination::parse(request)?;
        let tags = destination.extra_tags(request)?;

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
        let validation = std::sync::Mutex::default();
        Ok(Self { images, request, destination, tags, targets, layers, reuse_check, lifecycle, dry_run, validation })
    }

    /// The error for base images that `findings` (errors of pack's checks, made before the
    /// other rules run) refuse for `platform`; a dry run reports them as the validation's.
    fn refused(&self, platform: &Platform, findings: Vec<cnbx_validate::Finding>) -> CreateError {
        if self.dry_run {
            *self.validation.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
                Some((platform.clone(), findings.clone()));
        }
        CreateError::Validation(findings)
    }

    /// The platform and findings of the last validation of the base images, taken.
    pub(crate) fn take_validation(&self) -> Option<(Platform, Vec<cnbx_validate::Finding>)> {
        self.validation.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take()
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

    /// Resolves and checks the target `platform` (`None`: the build image's).
    pub(crate) async fn target(&self, target: Option<&Platform>) -> Result<TargetPlan, CreateError> {
        let (images, request) = (self.images, self.request);
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
        let mut build_facts = facts_of(&build, &file.build.image);
        if let Some(finding) = cnbx_validate::check_build_os(&build_facts) {
            return Err(self.refused(&platform, vec![finding]));
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
        build_facts.labels.clone_from(&base_labels);
        let stack_label = base_labels.get(labels::STACK_ID).cloned().unwrap_or_default();
        if let Some(finding) = cnbx_validate::check_stack_id(Role::Build, &build_facts, &file.stack.id) {
            return Err(self.refused(&platform, vec![finding]));
        }

        // Lifecycle (its Platform API decides which spec rules apply). Its layer, the biggest
        // single layer of a typical builder, is built on a blocking thread while the base
        // images are checked and the modules are located and built.
        let ctx =
            FetchContext { images, layers: &self.layers, base_dir: &config.base_dir, platform: &platform, reporter };
        let pending = locate_lifecycle(&ctx, &self.lifecycle, build.config.architecture())
            .await
            .map_err(CreateError::Lifecycle)?;
        let lifecycle_layer = pending.layer;
        let lifecycle_metadata = pending.metadata;
        let runs = match fetch_run_images(images, request, &platform, &build_facts).await {
            Err(CreateError::Validation(findings)) => return Err(self.refused(&platform, findings)),
            other => other?,
        };

        if !file.extensions.is_empty() || file.order_extensions.as_ref().is_some_and(|o| !o.is_empty()) {
            let latest = lifecycle_metadata.apis.platform.supported().iter().max().copied();
            if latest.is_some_and(|v| v < ApiVersion::new(0, 13)) {
                return Err(CreateError::Invalid(format!(
                    "builder config contains image extensions, but the lifecycle Platform API version ({}) is older \
                     than 0.13; support for image extensions with Platform API < 0.13 is not available in cnbx",
                    latest.map(|v| v.to_string()).unwrap_or_default()
                )));
            }
        }

        // Buildpacks and extensions (located and built before the base images are validated: a
        // buildpack that needs a stack makes the legacy stack rules errors). Unless a validation
        // of the same base images passed before, their layers are read meanwhile: reading them
        // is work for one core (a decompression), building the module layers keeps both busy,
        // and one after the other the second core would wait.
        let base_images = BaseImages { build: &build, build_facts: &build_facts, runs: &runs };
        let mut options = Options {
            stack_id: Some(file.stack.id.clone()).filter(|s| !s.is_empty()),
            legacy_stacks_required: false,
            platform_api: platform_api_for(&lifecycle_metadata),
        };
        let read_early = !request.skip_layer_checks && !base_images.validated_before(images, &options);
        let to_read = base_images.to_read();
        let read_layers = async { if read_early { Some(FileSystems::read(images, &to_read).await) } else { None } };
        let fetch = async {
            let mut fetched = Vec::new();
            for (kind, entries) in
                [(ModuleKind::Buildpack, &file.buildpacks), (ModuleKind::Extension, &file.extensions)]
            {
                let modules = fetch_modules(&ctx, kind, entries)
                    .await
                    .map_err(|source| CreateError::AddModules { kind, source })?;
                fetched.push(modules);
            }
            Ok::<_, CreateError>(fetched)
        };
        let (read_before, fetched) = tokio::join!(read_layers, fetch);
        let mut fetched = fetched?;
        let (extensions, buildpacks) = (fetched.pop().unwrap_or_default(), fetched.pop().unwrap_or_default());

        // Base images against the platform spec, before the modules are checked against them.
        options.legacy_stacks_required = legacy_stacks_required(&buildpacks);
        let validation =
            validate_base_images(images, &base_images, &options, request.skip_layer_checks, read_before).await?;
        if self.dry_run {
            *self.validation.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
                Some((platform.clone(), validation.findings.clone()));
        }
        let (uid, gid) = validation.passed(reporter, !self.dry_run)?;
        let metadata = labels::builder_metadata(&base_labels, false).map_err(CreateError::BaseLabels)?;
        let mixins = labels::decode_or_default(&base_labels, labels::STACK_MIXINS).map_err(CreateError::BaseLabels)?;
        let base = BuildBase { image: build, labels: base_labels, metadata, mixins, uid, gid };

        let facts = BuildImageFacts {
            stack_id: stack_label,
            mixins: base.mixins.clone().unwrap_or_default(),
            os,
            arch: base.image.config.architecture().to_owned(),
            distro_name: base.labels.get("io.buildpacks.base.distro.name").cloned().unwrap_or_default(),
            distro_version: base.labels.get("io.buildpacks.base.distro.version").cloned().unwrap_or_default(),
        };
        let existing = base.metadata.buildpacks.clone().unwrap_or_default();
        let invalid = |kind| move |source| CreateError::ValidateModules { kind, source };
        validate_modules_with(&buildpacks, &[], &existing, &lifecycle_metadata, &facts, reporter)
            .map_err(invalid(ModuleKind::Buildpack))?;
        validate_modules_with(&[], &extensions, &[], &lifecycle_metadata, &facts, reporter)
            .map_err(invalid(ModuleKind::Extension))?;
        let layer = lifecycle_layer
            .await
            .map_err(|_| CreateError::LifecycleLayerStopped)?
            .map_err(|e| CreateError::LifecycleLayer(Box::new(e)))?;
        let lifecycle = Lifecycle { metadata: lifecycle_metadata, layer };
        let orders = orders(request, &base, &buildpacks, &extensions)?;
        Ok(TargetPlan { platform, base, lifecycle, buildpacks, extensions, orders })
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_placeholders_are_found() {
        assert_eq!(template_placeholder("${STACK_ID}"), Some("${STACK_ID}"));
        assert_eq!(template_placeholder("gcr.io/x/{{.Tag}}:1"), Some("{{.Tag}}"));
        assert_eq!(template_placeholder("v{LIFECYCLE_VERSION}"), Some("{LIFECYCLE_VERSION}"));
        assert_eq!(template_placeholder("cnbx.test/run:jammy"), None);
        assert_eq!(template_placeholder("{lower} ${unterminated"), None);
    }
}
