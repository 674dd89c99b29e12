//! Base-image validation as `builder create` ([`crate::create`]) and `base-image check`
//! ([`crate::check`]) both run it: the facts the validator needs from an image, run images
//! and mirrors read for a platform, the images' file systems for layer mode (read once per
//! manifest digest), the findings for a build image and its run images (or for run images
//! alone), and the form findings are remembered in.

use std::collections::BTreeMap;
use std::path::Path;

use cnbx_oci::Digest;
use cnbx_oci::image::SourceImage;
use cnbx_oci::progress::ReporterExt;
use cnbx_oci::spec::Platform;
use cnbx_validate::{Finding, ImageFacts, IndexPlatform, Level, Options, Role, RootFs};

use crate::base_layers::BaseLayersError;
use crate::images::{ImageFetchError, Images};

/// What the validator needs to know about `image`, which the user calls `name`.
pub(crate) fn facts_of(image: &SourceImage, name: &str) -> ImageFacts {
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

/// Reads a run image or mirror for `platform`. When it has no manifest for `platform` but
/// `platform` names a variant, it is read for the os and architecture alone: a variant set on
/// one image only (or two different variants) is then the validator's finding, at the same
/// level whichever image has it.
pub(crate) async fn fetch_for_platform(
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

/// A run image with the images of it that could be read: the run image (if found) and its
/// mirrors, in order.
pub(crate) struct RunGroup {
    /// The run image, as the user wrote it.
    pub(crate) image: String,
    /// What could be read, each with its role and name.
    pub(crate) members: Vec<(Role, String, SourceImage)>,
}

/// Every run image and mirror that could be read, and the `PAIR-TARGET-MATCH` findings for
/// those that exist but have no image for the build image's platform.
#[derive(Default)]
pub(crate) struct RunImages {
    pub(crate) groups: Vec<RunGroup>,
    pub(crate) missing_platform: Vec<Finding>,
}

impl RunImages {
    /// Every image read, with its name.
    pub(crate) fn members(&self) -> impl Iterator<Item = (&str, &SourceImage)> {
        self.groups.iter().flat_map(|g| &g.members).map(|(_, name, image)| (name.as_str(), image))
    }
}

/// The base images' file systems for layer mode, read once per manifest digest.
#[derive(Default)]
pub(crate) struct FileSystems {
    by_manifest: BTreeMap<Digest, Option<RootFs>>,
}

impl FileSystems {
    /// Reads the layers of every image (`(name, image)`), each manifest once.
    pub(crate) async fn read(images: &Images, all: &[(&str, &SourceImage)]) -> Result<Self, BaseLayersError> {
        let mut by_manifest = BTreeMap::new();
        let mut shared = crate::base_layers::SharedLayers::default();
        for (name, image) in all {
            if by_manifest.contains_key(&image.manifest.digest) {
                continue;
            }
            images.reporter().debug(&format!("Reading the layers of '{name}' ({}) to check it", image.manifest.digest));
            let fs = crate::base_layers::read(images, image, &mut shared).await?;
            by_manifest.insert(image.manifest.digest.clone(), fs);
        }
        Ok(Self { by_manifest })
    }

    /// The file system of `image`, if its layers were read and could be.
    pub(crate) fn get(&self, image: &SourceImage) -> Option<&RootFs> {
        self.by_manifest.get(&image.manifest.digest).and_then(Option::as_ref)
    }

    /// The names of the images in `all` whose layers were read but could not be (zstd).
    pub(crate) fn unreadable<'a>(&self, all: &[(&'a str, &SourceImage)]) -> Vec<&'a str> {
        all.iter()
            .filter(|(_, i)| self.by_manifest.get(&i.manifest.digest).is_some_and(Option::is_none))
            .map(|(n, _)| *n)
            .collect()
    }
}

/// Validates the build image (if any) and the run images and mirrors of `runs` (`all`, as
/// `(name, image)`, in the order their layers are read), reading their layers unless
/// `skipped` says why they are not read: the [findings], the build user's uid and gid when
/// they could be decided, and a note on the rules left unchecked (layers not read, or
/// compressed in a way cnbx cannot read). `read_before`: the file systems of `all`, when the
/// caller read them already.
pub(crate) async fn validate(
    images: &Images,
    all: &[(&str, &SourceImage)],
    build: Option<(&SourceImage, &ImageFacts)>,
    runs: &RunImages,
    options: &Options,
    skipped: Option<&str>,
    read_before: Option<FileSystems>,
) -> Result<(Vec<Finding>, Option<(u32, u32)>, Option<String>), BaseLayersError> {
    let fs = match (skipped, read_before) {
        (Some(_), _) => FileSystems::default(),
        (None, Some(fs)) => fs,
        (None, None) => FileSystems::read(images, all).await?,
    };
    let (findings, user) = findings(build, runs, &fs, options);
    let note = match skipped {
        Some(why) => {
            let names: Vec<&str> = all.iter().map(|(name, _)| *name).collect();
            unchecked_rules_note(&findings, &names, why)
        }
        None => {
            let unread = fs.unreadable(all);
            unchecked_rules_note(&findings, &unread, &zstd_reason(&unread))
        }
    };
    Ok((findings, user, note))
}

/// The findings for the build image (if any), every run image and mirror, and the pairs, and
/// the build user's uid and gid when they could be decided. Without a build image, each run
/// image and mirror gets the run image rules alone (and the mirrors the `run.toml` rules).
pub(crate) fn findings(
    build: Option<(&SourceImage, &ImageFacts)>,
    runs: &RunImages,
    fs: &FileSystems,
    options: &Options,
) -> (Vec<Finding>, Option<(u32, u32)>) {
    let build_side = build.map(|(image, facts)| (facts, fs.get(image)));
    let mut findings = match build_side {
        Some((facts, rootfs)) => cnbx_validate::check_build_image(facts, rootfs, options),
        None => Vec::new(),
    };
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
            match (role, build_side) {
                (Role::Mirror, Some(build)) => {
                    findings.extend(cnbx_validate::check_mirror(build, (&facts, rootfs), options));
                }
                (_, Some(build)) => {
                    findings.extend(cnbx_validate::check_run_image(&facts, rootfs, options));
                    findings.extend(cnbx_validate::check_pair(build, (&facts, rootfs), options));
                }
                (_, None) => findings.extend(cnbx_validate::check_run_image(&facts, rootfs, options)),
            }
        }
        if let Some((first, rest)) = refs.split_first()
            && first.name == group.image
        {
            findings.extend(cnbx_validate::check_mirrors(first, rest));
        }
    }
    let user = build_side.and_then(|(facts, rootfs)| match cnbx_validate::build_user(facts, rootfs) {
        Ok(user) => Some((user.uid, user.gid)),
        Err(f) => {
            findings.push(f);
            None
        }
    });
    cnbx_validate::sort_findings(&mut findings);
    findings.dedup();
    (findings, user)
}

/// The note listing the rules left unchecked because the layers of the images named in
/// `unread` were not read (`why` says why), if any.
fn unchecked_rules_note(findings: &[Finding], unread: &[&str], why: &str) -> Option<String> {
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

/// Why the layers of the images named in `unread` could not be read.
fn zstd_reason(unread: &[&str]) -> String {
    format!(
        "the layers of {} are compressed with zstd, which cnbx cannot read yet",
        unread.iter().map(|n| format!("'{n}'")).collect::<Vec<_>>().join(", ")
    )
}

/// The directory under `CNBX_HOME/cache/` where validations are remembered.
pub(crate) const MEMO_DIR: &str = "validation";

/// The logic a remembered validation (`what`: `builder create`, `base-image check`) was
/// computed with: the validator's rule table ([`cnbx_validate::table::fingerprint`]), and
/// cnbx's version for the code around it (reading the images' facts and layers).
pub(crate) fn logic(what: &str) -> String {
    format!("{what} validation, cnbx {}\n{}", env!("CARGO_PKG_VERSION"), cnbx_validate::table::fingerprint())
}

/// A finding as remembered in `CNBX_HOME/cache/validation`.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct StoredFinding {
    rule: String,
    level: String,
    role: String,
    image: String,
    message: String,
    fix: String,
}

impl StoredFinding {
    pub(crate) fn new(f: &Finding) -> Self {
        Self {
            rule: f.rule.to_owned(),
            level: f.level.to_string(),
            role: f.role.to_string(),
            image: f.image.clone(),
            message: f.message.clone(),
            fix: f.fix.clone(),
        }
    }

    /// The finding again; `None` when the record does not name a rule of the validator's
    /// table, a level or a role (written by another version: the entry is not used).
    pub(crate) fn finding(&self) -> Option<Finding> {
        let level = [Level::Error, Level::Warning, Level::Info].into_iter().find(|l| l.to_string() == self.level)?;
        let role = [Role::Build, Role::Run, Role::Mirror].into_iter().find(|r| r.to_string() == self.role)?;
        Some(Finding {
            rule: cnbx_validate::rule_by_id(&self.rule)?.id,
            level,
            role,
            image: self.image.clone(),
            message: self.message.clone(),
            fix: self.fix.clone(),
        })
    }

    /// Every finding of `stored`, or `None` if one cannot be read back.
    pub(crate) fn all(stored: &[Self]) -> Option<Vec<Finding>> {
        stored.iter().map(Self::finding).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_findings_read_back_and_unknown_rules_do_not() {
        let f = Finding {
            rule: "BUILD-USER-NONROOT",
            level: Level::Warning,
            role: Role::Mirror,
            image: "x".into(),
            message: "m".into(),
            fix: "f".into(),
        };
        let stored = StoredFinding::new(&f);
        let json = serde_json::to_string(&stored).unwrap();
        let back: StoredFinding = serde_json::from_str(&json).unwrap();
        assert_eq!(back.finding(), Some(f));
        let unknown: StoredFinding = serde_json::from_str(&json.replace("BUILD-USER-NONROOT", "NO-SUCH-RULE")).unwrap();
        assert_eq!(unknown.finding(), None);
        assert_eq!(StoredFinding::all(&[back, unknown]), None);
    }
}
