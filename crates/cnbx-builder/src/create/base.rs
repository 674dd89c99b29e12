//! The base images of a target, part of the plan: the build image and every run image and
//! mirror, fetched, and checked against the Cloud Native Buildpacks platform spec
//! ([`cnbx_validate`]), in layer mode (reading `/etc/passwd`, `/etc/group`, os-release and
//! directory headers from their layers, each manifest once) unless `--skip-layer-checks`.
//! A validation that passed is remembered in `CNBX_HOME/cache/validation`, keyed by the images'
//! manifest digests, the build image's final labels and the options, so a warm create does
//! not read the base layers again.

use std::fmt::Write as _;

use cnbx_model::LifecycleDescriptor;
use cnbx_oci::image::SourceImage;
use cnbx_oci::progress::ReporterExt;
use cnbx_oci::registry::{ConnectHint, RegistryErrorKind};
use cnbx_oci::spec::Platform;
use cnbx_validate::{Finding, ImageFacts, Level, Options, PlatformApi, Role};

use super::plan::ImageSpec;
use super::{CreateError, CreateRequest};
use crate::assemble::Module;
use crate::base_layers::BaseLayersError;
use crate::home::Memo;
use crate::images::{ImageFetchError, Images};
use crate::validation::{self, FileSystems, RunGroup, RunImages, StoredFinding, facts_of, fetch_for_platform};

pub(super) async fn fetch_required(
    images: &Images,
    role: &'static str,
    spec: &ImageSpec,
    platform: Option<&Platform>,
) -> Result<SourceImage, CreateError> {
    let image = images.get_at(&spec.location, &spec.shown, platform).await.map_err(|e| CreateError::Fetch {
        role,
        image: spec.shown.clone(),
        source: Box::new(e),
    })?;
    image.ok_or_else(|| CreateError::NotFound {
        role,
        image: spec.shown.clone(),
        hint: images.not_found_hint(&spec.location),
    })
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

/// Why fetching an image failed because its registry cannot be reached from here, if it
/// did: no answer came from the registry at all. That is a name that does not resolve, a
/// connection refused, reset or aborted, a host or network that cannot be reached, or no
/// answer within the connect or stall timeout (each after the retries). A registry that
/// answers is reachable, whatever it answers: a TLS handshake that fails (something answered,
/// and could not be trusted), 401/403, 404, 5xx, an invalid document, an image for another
/// platform.
pub(crate) fn unreachable(e: &ImageFetchError) -> Option<&'static str> {
    let ImageFetchError::Registry(e) = e else { return None };
    match e.kind() {
        RegistryErrorKind::Connect { hint: ConnectHint::Dns, .. } => Some("its registry's name does not resolve"),
        RegistryErrorKind::Connect { source, .. } => connection_failure(source),
        RegistryErrorKind::Request(source) if source.is_timeout() => Some("its registry did not answer in time"),
        RegistryErrorKind::Request(source) => connection_failure(source),
        RegistryErrorKind::Stalled { .. } => Some("its registry did not answer in time"),
        _ => None,
    }
}

/// The connection-level failure in the sources of `e`, if any.
fn connection_failure(e: &(dyn std::error::Error + 'static)) -> Option<&'static str> {
    use std::io::ErrorKind as K;
    let mut current = Some(e);
    while let Some(err) = current {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            match io.kind() {
                K::ConnectionRefused => return Some("its registry refused the connection"),
                K::ConnectionReset | K::ConnectionAborted | K::NotConnected => {
                    return Some("its registry dropped the connection");
                }
                K::TimedOut => return Some("its registry did not answer in time"),
                K::HostUnreachable | K::NetworkUnreachable | K::AddrNotAvailable => {
                    return Some("its registry's network cannot be reached");
                }
                _ => {}
            }
        }
        current = err.source();
    }
    None
}

/// The rules of docs/base-image-rules.md that apply to a run image (or mirror), alone, paired
/// with the build image, or with its mirrors.
fn run_image_rules() -> Vec<&'static str> {
    cnbx_validate::RULES
        .iter()
        .filter(|r| {
            use cnbx_validate::table::AppliesTo as A;
            matches!(r.applies_to, A::Run | A::BuildAndRun | A::Pair | A::PairAndStackId | A::Mirrors)
        })
        .map(|r| r.id)
        .collect()
}

/// The warning for a run image or mirror that is recorded without being checked.
fn unreachable_warning(role: Role, name: &str, why: &str, stack_id: &str) -> String {
    let what = if role == Role::Mirror { "run image mirror" } else { "run image" };
    let mut checks = Vec::new();
    if !stack_id.is_empty() {
        checks.push(format!("its stack id ('{stack_id}' expected)"));
    }
    checks.extend(run_image_rules().into_iter().map(str::to_owned));
    format!(
        "{what} '{name}' cannot be reached from here ({why}); it is written into the builder as given and taken to \
         be for the build image's platform, and these checks were not made for it: {}",
        checks.join(", ")
    )
}

/// Fetches every run image and mirror (as pack does first): a missing one is a warning, one
/// without an image for the build image's platform a finding, a run image that cannot be
/// fetched an error, a mirror that cannot be fetched a warning. With
/// `--allow-unreachable-run-images`, one whose registry cannot be reached ([`unreachable`])
/// is a warning naming the rules left unchecked. With `[stack].id` set, an image labelled with
/// another stack is refused at once (pack's check: [`CreateError::Validation`] with its
/// `LEGACY-PAIR-STACK-ID` finding).
pub(super) async fn fetch_run_images(
    images: &Images,
    request: &CreateRequest,
    platform: &Platform,
    build: &ImageFacts,
) -> Result<RunImages, CreateError> {
    let config = &request.config;
    let stack_id = &config.config.stack.id;
    let mut runs = RunImages::default();
    for run in &config.config.run.images {
        let mut names = vec![(Role::Run, run.image.clone())];
        names.extend(run.mirrors.iter().flatten().map(|m| (Role::Mirror, m.clone())));
        let mut members = Vec::new();
        for (role, name) in names {
            let image = match fetch_for_platform(images, &config.base_dir, &name, platform).await {
                Ok(Some(image)) => image,
                Ok(None) => {
                    images.reporter().warn(&format!("run image '{name}' is not accessible"));
                    continue;
                }
                Err(e) => {
                    if request.allow_unreachable_run_images
                        && let Some(why) = unreachable(&e)
                    {
                        images.reporter().warn(&unreachable_warning(role, &name, why, stack_id));
                        images.reporter().debug(&cnbx_fs::error_chain(&e));
                        continue;
                    }
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
            if let Some(finding) = cnbx_validate::check_stack_id(role, &facts_of(&image, &name), stack_id) {
                return Err(CreateError::Validation(vec![finding]));
            }
            members.push((role, name, image));
        }
        runs.groups.push(RunGroup { image: run.image.clone(), members });
    }
    Ok(runs)
}

/// The outcome of a validation that passed, as cached: the build user, every finding and
/// the note about the rules left unchecked.
#[derive(serde::Serialize, serde::Deserialize)]
struct PassedValidation {
    uid: u32,
    gid: u32,
    findings: Vec<StoredFinding>,
    note: Option<String>,
}

impl Memo for PassedValidation {
    const DIR: &'static str = validation::MEMO_DIR;

    fn logic() -> String {
        validation::logic("builder create")
    }
}

/// What the validation of a target's base images found.
pub(crate) struct Validation {
    /// Every finding: errors, warnings and infos.
    pub(crate) findings: Vec<Finding>,
    /// The build user's uid and gid, when they could be decided and no finding is an error.
    pub(crate) user: Option<(u32, u32)>,
    /// The rules left unchecked and why (`--skip-layer-checks`, layers cnbx cannot read).
    pub(crate) note: Option<String>,
}

impl Validation {
    /// The build user when nothing is an error; else the error that stops the create. With
    /// `report_findings`, the warnings are reported (and the infos as debug messages); the
    /// note is reported either way.
    pub(crate) fn passed(
        self,
        reporter: &dyn cnbx_oci::progress::Reporter,
        report_findings: bool,
    ) -> Result<(u32, u32), CreateError> {
        let Some(user) = self.user else { return Err(CreateError::Validation(self.findings)) };
        if report_findings {
            let text = |f: &Finding| if f.fix.is_empty() { f.to_string() } else { format!("{f}; fix: {}", f.fix) };
            for f in &self.findings {
                match f.level {
                    Level::Warning => reporter.warn(&text(f)),
                    Level::Info => reporter.debug(&text(f)),
                    Level::Error => {}
                }
            }
        }
        if let Some(note) = &self.note {
            reporter.warn(note);
        }
        Ok(user)
    }
}

/// Validates the base images, or replays a validation that passed before for exactly the
/// same images (by manifest digest), labels and options: reading the base layers (layer mode,
/// streamed from the registry with `--publish`) is the only part of a warm create that grows
/// with the base images' size. With `skip_layers`, the images are checked from their configs
/// only and the note lists the rules that could not be checked.
pub(super) async fn validate_base_images(
    images: &Images,
    base: &BaseImages<'_>,
    options: &Options,
    skip_layers: bool,
    read_before: Option<Result<FileSystems, BaseLayersError>>,
) -> Result<Validation, CreateError> {
    let key = validation_key(base, options, skip_layers);
    let cached: Option<PassedValidation> = images.home().recall(&key);
    if let Some(p) = cached
        && let Some(findings) = StoredFinding::all(&p.findings)
    {
        return Ok(Validation { findings, user: Some((p.uid, p.gid)), note: p.note });
    }
    let all = base.to_read();
    let skipped = skip_layers.then_some("--skip-layer-checks: the base images' layers were not read");
    let read_before = read_before.transpose().map_err(CreateError::BaseLayers)?;
    let build = Some((base.build, base.build_facts));
    let (findings, user, note) = validation::validate(images, &all, build, base.runs, options, skipped, read_before)
        .await
        .map_err(CreateError::BaseLayers)?;
    let passed = user.filter(|_| findings.iter().all(|f| f.level != Level::Error));
    if let Some((uid, gid)) = passed {
        let stored = PassedValidation {
            uid,
            gid,
            findings: findings.iter().map(StoredFinding::new).collect(),
            note: note.clone(),
        };
        images.remember(&key, &stored);
    }
    Ok(Validation { findings, user: passed, note })
}

/// The base images of a target, as [`validate_base_images`] checks them.
pub(super) struct BaseImages<'a> {
    pub(super) build: &'a SourceImage,
    pub(super) build_facts: &'a ImageFacts,
    pub(super) runs: &'a RunImages,
}

impl BaseImages<'_> {
    /// The images whose layers a validation reads, as `(name, image)`, in the order read.
    pub(super) fn to_read(&self) -> Vec<(&str, &SourceImage)> {
        std::iter::once((self.build_facts.name.as_str(), self.build)).chain(self.runs.members()).collect()
    }

    /// Whether a validation of these images in layer mode passed before with `options`, for
    /// either value of [`Options::legacy_stacks_required`] (which the modules decide): if not,
    /// the plan reads the layers while the modules are fetched and built.
    pub(super) fn validated_before(&self, images: &Images, options: &Options) -> bool {
        [false, true].into_iter().any(|legacy_stacks_required| {
            let options = Options { legacy_stacks_required, ..options.clone() };
            let key = validation_key(self, &options, false);
            images.home().recall::<PassedValidation>(&key).is_some()
        })
    }
}

/// The key of a validation in `cache/validation`: the images by manifest digest, the build
/// image's final labels, the options and the mode (and, through [`Memo::logic`], the rules).
fn validation_key(base: &BaseImages<'_>, options: &Options, skip_layers: bool) -> String {
    let mode = if skip_layers { "config" } else { "layers" };
    let mut key = format!("{options:?}\n");
    let (build, facts) = (base.build, base.build_facts);
    let _ = writeln!(key, "build {} {} {mode} {:?}", facts.name, build.manifest.digest, facts.labels);
    for group in &base.runs.groups {
        for (role, name, image) in &group.members {
            let _ = writeln!(key, "{role} {name} {} {mode}", image.manifest.digest);
        }
    }
    for f in &base.runs.missing_platform {
        let _ = writeln!(key, "{f}");
    }
    key
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
