//! Label rules of the targets era (Platform API 0.12+): `*-LABEL-BASE-*`, `RUN-LABEL-REBASABLE`,
//! `RUN-LABEL-TARGET-ID` and `BOTH-DISTRO-LABELS`.
//!
//! * The five descriptive `io.buildpacks.base.*` labels have no specified format (open point
//!   18), so only presence and non-blank values are checked. When only the legacy
//!   `io.buildpacks.stack.*` label of the same name is set, the fix says to copy it.
//! * `io.buildpacks.rebasable` (open point 18): exactly `true` passes. `false` warns and says
//!   that app images become non-rebasable. Other spellings Go's `ParseBool` reads as true
//!   (`1`, `t`, `TRUE`, …) warn because the spec says `true` and other tools may compare the
//!   string; the false spellings other than `false` (`0`, `f`, `FALSE`, …) warn as ambiguous,
//!   since the extender reads them as false while the rebaser refuses only the exact `false`;
//!   anything else warns as unrecognised.
//! * `io.buildpacks.base.id`: missing is a warning (SHOULD); characters other than ASCII letters,
//!   digits, `.`, `/` and `-` are an error (MUST, format). Global uniqueness cannot be checked.
//! * Distro labels on Linux (and other non-Windows OSes): presence (warning), and in layer mode
//!   equality with `ID`/`VERSION_ID` of `/etc/os-release` (falling back to
//!   `/usr/lib/os-release`, quotes stripped, symlinks followed); a difference is a warning
//!   because lifecycle falls back to os-release when the labels are missing. In config-only mode
//!   a set label is reported "not verified". On Windows: the name must be empty and the version
//!   must equal config `os.version`.

use super::{PerRole, Subject, is_valid_id, targets_era};
use crate::etc::os_release_value;
use crate::facts::Options;
use crate::finding::Report;
use crate::rootfs::{FileState, OS_RELEASE, USR_LIB_OS_RELEASE};

/// `io.buildpacks.base.distro.name`.
pub(crate) const DISTRO_NAME: &str = "io.buildpacks.base.distro.name";
/// `io.buildpacks.base.distro.version`.
pub(crate) const DISTRO_VERSION: &str = "io.buildpacks.base.distro.version";
const REBASABLE: &str = "io.buildpacks.rebasable";
const TARGET_ID: &str = "io.buildpacks.base.id";
const DISTRO_RULE: &str = "BOTH-DISTRO-LABELS";

/// One descriptive label: its rule ids, its key, the legacy key and an example value.
struct BaseLabel {
    rule: PerRole,
    key: &'static str,
    legacy: &'static str,
    example: &'static str,
}

const BASE_LABELS: [BaseLabel; 5] = [
    BaseLabel {
        rule: PerRole { build: "BUILD-LABEL-BASE-MAINTAINER", run: "RUN-LABEL-BASE-MAINTAINER" },
        key: "io.buildpacks.base.maintainer",
        legacy: "io.buildpacks.stack.maintainer",
        example: "<name of the maintainer>",
    },
    BaseLabel {
        rule: PerRole { build: "BUILD-LABEL-BASE-HOMEPAGE", run: "RUN-LABEL-BASE-HOMEPAGE" },
        key: "io.buildpacks.base.homepage",
        legacy: "io.buildpacks.stack.homepage",
        example: "<URL of the image's home page>",
    },
    BaseLabel {
        rule: PerRole { build: "BUILD-LABEL-BASE-RELEASED", run: "RUN-LABEL-BASE-RELEASED" },
        key: "io.buildpacks.base.released",
        legacy: "io.buildpacks.stack.released",
        example: "<release date, e.g. 2025-01-31>",
    },
    BaseLabel {
        rule: PerRole { build: "BUILD-LABEL-BASE-DESCRIPTION", run: "RUN-LABEL-BASE-DESCRIPTION" },
        key: "io.buildpacks.base.description",
        legacy: "io.buildpacks.stack.description",
        example: "<one-line description>",
    },
    BaseLabel {
        rule: PerRole { build: "BUILD-LABEL-BASE-METADATA", run: "RUN-LABEL-BASE-METADATA" },
        key: "io.buildpacks.base.metadata",
        legacy: "io.buildpacks.stack.metadata",
        example: "<free-form metadata, e.g. JSON>",
    },
];

/// `BUILD-LABEL-BASE-*` / `RUN-LABEL-BASE-*`: the descriptive labels are set.
pub(crate) fn base_labels(s: &Subject<'_>, r: &mut Report, opts: &Options) {
    if !targets_era(opts) {
        return;
    }
    for label in &BASE_LABELS {
        let rule = label.rule.id(s.role);
        let key = label.key;
        if s.facts.non_empty_label(key).is_some() {
            continue;
        }
        let message = if s.facts.label(key).is_some() {
            format!("label '{key}' is empty")
        } else {
            format!("label '{key}' is not set")
        };
        match s.facts.non_empty_label(label.legacy) {
            Some(_) => r.warn(
                rule,
                format!("{message} (only the legacy '{}' is)", label.legacy),
                format!("copy the value of {} to LABEL {key} in the {}", label.legacy, s.role),
            ),
            None => r.warn(rule, message, format!("add LABEL {key}={} to the {}", label.example, s.role)),
        }
    }
}

/// `RUN-LABEL-REBASABLE`: `io.buildpacks.rebasable` is `true`.
pub(crate) fn rebasable(s: &Subject<'_>, r: &mut Report, opts: &Options) {
    if !targets_era(opts) {
        return;
    }
    let rule = "RUN-LABEL-REBASABLE";
    let set_true = format!("set LABEL {REBASABLE}=true if updates of this run image keep its ABI");
    let (message, fix) = match s.facts.label(REBASABLE) {
        Some("true") => return,
        None => (format!("label '{REBASABLE}' is not set"), set_true),
        Some("false") => (
            format!(
                "label '{REBASABLE}' is 'false': app images built on this run image cannot be rebased without forcing it"
            ),
            set_true,
        ),
        Some(v @ ("1" | "t" | "T" | "TRUE" | "True")) => (
            format!("label '{REBASABLE}' is '{v}': lifecycle reads it as true, but the spec asks for 'true'"),
            format!("set LABEL {REBASABLE}=true exactly"),
        ),
        Some(v @ ("0" | "f" | "F" | "FALSE" | "False")) => (
            format!(
                "label '{REBASABLE}' is '{v}': the extender reads it as false, but the rebaser refuses only 'false', so it is ambiguous"
            ),
            format!("set LABEL {REBASABLE} to 'true' or 'false'"),
        ),
        Some(v) => (
            format!("label '{REBASABLE}' has the unrecognised value '{v}'"),
            format!("set LABEL {REBASABLE} to 'true' or 'false'"),
        ),
    };
    r.warn(rule, message, fix);
}

/// `RUN-LABEL-TARGET-ID`: `io.buildpacks.base.id` is set and well-formed.
pub(crate) fn target_id(s: &Subject<'_>, r: &mut Report, opts: &Options) {
    if !targets_era(opts) {
        return;
    }
    let rule = "RUN-LABEL-TARGET-ID";
    match s.facts.non_empty_label(TARGET_ID) {
        None => r.warn(
            rule,
            format!("label '{TARGET_ID}' is not set"),
            format!("add LABEL {TARGET_ID}=<target id in reverse-DNS form, e.g. io.buildpacks.images.noble-run>"),
        ),
        Some(id) if !is_valid_id(id) => r.error(
            rule,
            format!("label '{TARGET_ID}' value '{id}' has characters other than letters, digits, '.', '/' and '-'"),
            format!("set LABEL {TARGET_ID} to an id made of letters, digits, '.', '/' and '-' (reverse-DNS form is recommended)"),
        ),
        Some(_) => {}
    }
}

/// What layer mode found in os-release.
enum OsRelease {
    ConfigOnly,
    Read { path: String, content: Vec<u8> },
    Unreadable(String),
    Missing,
}

fn os_release(s: &Subject<'_>) -> OsRelease {
    let Some(fs) = s.rootfs else { return OsRelease::ConfigOnly };
    for path in [OS_RELEASE, USR_LIB_OS_RELEASE] {
        match fs.file(path) {
            FileState::Present { path, content } => {
                return OsRelease::Read { path: path.to_owned(), content: content.to_vec() };
            }
            FileState::Missing => continue,
            FileState::SymlinkLoop => return OsRelease::Unreadable(format!("{path} is a symlink loop")),
            FileState::NotRetained { reason } => {
                return OsRelease::Unreadable(format!("{path} could not be read in layer mode: {reason}"));
            }
        }
    }
    OsRelease::Missing
}

/// `BOTH-DISTRO-LABELS`: the distro labels are set and agree with os-release (or, on Windows,
/// with `os.version`).
pub(crate) fn distro_labels(s: &Subject<'_>, r: &mut Report, opts: &Options) {
    if !targets_era(opts) {
        return;
    }
    if s.is_windows() {
        return windows_distro_labels(s, r);
    }
    let release = os_release(s);
    for (label, field) in [(DISTRO_NAME, "ID"), (DISTRO_VERSION, "VERSION_ID")] {
        let expected = match &release {
            OsRelease::Read { content, .. } => os_release_value(content, field).filter(|v| !v.is_empty()),
            _ => None,
        };
        let Some(value) = s.facts.non_empty_label(label) else {
            let (suffix, fix) = match (&release, &expected) {
                (OsRelease::Read { path, .. }, Some(v)) => {
                    (String::new(), format!("add LABEL {label}={v} ({field} in {path})"))
                }
                (OsRelease::Missing, _) => (
                    ", and the image has no os-release file for lifecycle to infer it from".to_owned(),
                    format!("add LABEL {label}=<{field} of the distro>"),
                ),
                _ => (String::new(), format!("add LABEL {label}=<{field} from /etc/os-release>")),
            };
            r.warn(DISTRO_RULE, format!("label '{label}' is not set{suffix}"), format!("{fix} to the {}", s.role));
            continue;
        };
        let what = format!("whether label '{label}' ('{value}') matches {field} in os-release");
        match (&release, expected) {
            (OsRelease::Read { path, .. }, Some(v)) if v != value => r.warn(
                DISTRO_RULE,
                format!("label '{label}' is '{value}', but {path} has {field}={v}"),
                format!("set LABEL {label}={v} in the {}", s.role),
            ),
            (OsRelease::Read { .. }, Some(_)) => {}
            (OsRelease::Read { path, .. }, None) => r.not_verified(
                DISTRO_RULE,
                &what,
                &format!("{path} has no {field}"),
                format!("add {field} to {path}, or ignore this if the distro has none"),
            ),
            (OsRelease::ConfigOnly, _) => r.not_verified(
                DISTRO_RULE,
                &what,
                "os-release from the image layers is needed (config-only mode; layer mode would decide this)",
                "run the check in layer mode (with the image layers)",
            ),
            (OsRelease::Unreadable(why), _) => {
                r.not_verified(DISTRO_RULE, &what, why, "make /etc/os-release a regular file or a working symlink")
            }
            (OsRelease::Missing, _) => r.not_verified(
                DISTRO_RULE,
                &what,
                "the image has neither /etc/os-release nor /usr/lib/os-release",
                "add /etc/os-release to the image",
            ),
        }
    }
}

fn windows_distro_labels(s: &Subject<'_>, r: &mut Report) {
    if let Some(name) = s.facts.non_empty_label(DISTRO_NAME) {
        r.warn(
            DISTRO_RULE,
            format!("label '{DISTRO_NAME}' is '{name}', but it must be empty for Windows images"),
            format!("remove LABEL {DISTRO_NAME} from the {}", s.role),
        );
    }
    let os_version = s.facts.os_version.as_deref().filter(|v| !v.is_empty());
    match (s.facts.non_empty_label(DISTRO_VERSION), os_version) {
        (None, v) => r.warn(
            DISTRO_RULE,
            format!("label '{DISTRO_VERSION}' is not set"),
            format!("add LABEL {DISTRO_VERSION}={} to the {}", v.unwrap_or("<os.version of the image>"), s.role),
        ),
        (Some(label), None) => r.not_verified(
            DISTRO_RULE,
            &format!("whether label '{DISTRO_VERSION}' ('{label}') matches os.version"),
            "the image config has no os.version",
            "rebuild the image with a tool that sets os.version",
        ),
        (Some(label), Some(v)) if label != v => r.warn(
            DISTRO_RULE,
            format!("label '{DISTRO_VERSION}' is '{label}', but the image config's os.version is '{v}'"),
            format!("set LABEL {DISTRO_VERSION}={v} in the {}", s.role),
        ),
        (Some(_), Some(_)) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::Role;

    #[test]
    fn base_label_table_ids_follow_the_keys() {
        for l in &BASE_LABELS {
            let suffix = l.key.rsplit('.').next().unwrap_or_default().to_ascii_uppercase();
            assert!(l.rule.id(Role::Build).ends_with(&suffix));
            assert!(l.rule.id(Role::Run).ends_with(&suffix));
            assert!(l.legacy.ends_with(l.key.rsplit('.').next().unwrap_or_default()));
        }
    }
}
