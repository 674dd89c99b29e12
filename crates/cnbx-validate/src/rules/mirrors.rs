//! `RUNTOML-MIRROR-SAME-ID` and `RUNTOML-UNIQUE-REGISTRY` for one `[[run.images]]` entry.
//!
//! The caller does the network and reference work: it fetches each manifest (per platform for
//! an index) and gives the config digests, and it computes each reference's registry the way
//! the lifecycle and pack do (go-containerregistry's rules). Registries are compared
//! ASCII-case-insensitively.
//! (`RUNTOML-MIRRORS-NEED-IMAGE` is a builder.toml rule and belongs to the config parser.)

use crate::finding::{Report, Role};

/// A run image or mirror reference with what the caller found out about it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunImageRef {
    /// The reference as the user wrote it.
    pub name: String,
    /// Its registry, normalised by the caller (`index.docker.io`, `gcr.io`, `localhost:5000`).
    pub registry: String,
    /// The config digest (image ID) for the builder's platform; `None` when the image could not
    /// be read.
    pub config_digest: Option<String>,
}

impl RunImageRef {
    /// A reference on `registry` with the given config digest.
    pub fn new(name: impl Into<String>, registry: impl Into<String>, config_digest: Option<&str>) -> Self {
        Self { name: name.into(), registry: registry.into(), config_digest: config_digest.map(str::to_owned) }
    }
}

/// Runs both rules for `image` and its `mirrors`; findings are about the mirrors.
pub(crate) fn check(image: &RunImageRef, mirrors: &[RunImageRef]) -> Vec<Report> {
    mirrors
        .iter()
        .enumerate()
        .map(|(i, mirror)| {
            let mut r = Report::new(Role::Mirror, &mirror.name);
            same_id(image, mirror, &mut r);
            unique_registry(image, &mirrors[..i], mirror, &mut r);
            r
        })
        .collect()
}

fn same_id(image: &RunImageRef, mirror: &RunImageRef, r: &mut Report) {
    let rule = "RUNTOML-MIRROR-SAME-ID";
    match (&image.config_digest, &mirror.config_digest) {
        (_, None) => r.warn(
            rule,
            format!("not accessible, so its image ID could not be compared with run image '{}'", image.name),
            "check the mirror reference and credentials (an unreadable mirror is skipped at build time)",
        ),
        (None, Some(_)) => r.not_verified(
            rule,
            &format!("whether it has the same image ID as run image '{}'", image.name),
            "the run image is not accessible",
            "check the run image reference and credentials",
        ),
        (Some(want), Some(got)) if want != got => r.warn(
            rule,
            format!("image ID {got} differs from run image '{}' ({want})", image.name),
            "copy the run image to the mirror unchanged (e.g. skopeo copy --all), or remove the mirror",
        ),
        (Some(_), Some(_)) => {}
    }
}

fn unique_registry(image: &RunImageRef, earlier: &[RunImageRef], mirror: &RunImageRef, r: &mut Report) {
    let same = |other: &RunImageRef| other.registry.eq_ignore_ascii_case(&mirror.registry);
    let clash = if same(image) {
        Some(format!("run image '{}'", image.name))
    } else {
        earlier.iter().find(|m| same(m)).map(|m| format!("mirror '{}'", m.name))
    };
    if let Some(other) = clash {
        r.warn(
            "RUNTOML-UNIQUE-REGISTRY",
            format!("registry '{}' is also the registry of {other}", mirror.registry),
            "move this mirror to another registry, or remove it: run images are picked by registry, so it would never be chosen",
        );
    }
}
