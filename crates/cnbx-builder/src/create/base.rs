//! The base images of a target, part of the plan: the build image and every run image and
//! mirror, fetched, and checked against the Cloud Native Buildpacks platform spec
//! ([`cnbx_validate`]), in layer mode (reading `/etc/passwd`, `/etc/group`, os-release and
//! directory headers from their layers, each manifest once) unless `--skip-layer-checks`.
//! A validation that passed is remembered in `CNBX_HOME/cache/validation`, keyed by the images'
//! manifest digests, the build image's final labels and the options, so a warm create does
//! not read the base layers again.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use cnbx_model::LifecycleDescriptor;
use cnbx_oci::Digest;
use cnbx_oci::image::SourceImage;
use cnbx_oci::progress::ReporterExt;
use cnbx_oci::spec::Platform;
use cnbx_validate::{Finding, ImageFacts, IndexPlatform, Level, Options, PlatformApi, Role, RootFs};

use super::{CreateError, CreateRequest};
use crate::assemble::Module;
use crate::images::{ImageFetchError, Images};
use crate::labels;

pub(super) async fn fetch_required(
    images: &Images,
    role: &'static str,
    spelling: &str,
    base_dir: &Path,
    platform: Option<&Platform>,
) -> Result<SourceImage, CreateError> {
    let image = images.get(spelling, base_dir, platform).await.map_err(|e| CreateError::Fetch {
        role,
        image: spelling.to_owned(),
        source: Box::new(e),
    })?;
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

pub(super) fn facts_of(image: &SourceImage, name: &str) -> ImageFacts {
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

pub(super) fn platform_api_for(lifecycle: &LifecycleDescriptor) -> PlatformApi {
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
pub(super) fn legacy_stacks_required(buildpacks: &[Module]) -> bool {
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
pub(super) struct RunImages {
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
pub(super) async fn fetch_run_images(
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
                    return Err(CreateError::FetchRunImage { image: name, source: Box::new(e) });
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
        let mut shared = crate::base_layers::SharedLayers::default();
        for (name, image) in all {
            if by_manifest.contains_key(&image.manifest.digest) {
                continue;
            }
            images.reporter().debug(&format!("Reading the layers of '{name}' ({}) to check it", image.manifest.digest));
            let fs = crate::base_layers::read(images, image, &mut shared).await.map_err(CreateError::BaseLayers)?;
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
        if let Some((first, rest)) = refs.split_first()
            && first.name == group.image
        {
            findings.extend(cnbx_validate::check_mirrors(first, rest));
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
pub(super) async fn validate_base_images(
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

pub(super) fn format_findings(findings: &[Finding]) -> String {
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
