//! Module ids and versions, checked before any path is made from them.
//!
//! A buildpack's files go to `/cnb/buildpacks/<id with '/' as '_'>/<version>/`, so an id or a
//! version is a path component: `id = ".."` or `version = "../../lifecycle"` would put a
//! buildpack's files over the lifecycle. The spec allows letters, digits, `.`, `/` and `-` in
//! ids (so `_` can stand for `/` without ambiguity) and reserves `app`, `config`,
//! `generated` and `sbom`. It asks for `X.Y.Z` versions, which pack does not enforce;
//! cnbx refuses only versions that cannot be one directory name.

use super::{ModuleError, ModuleKind};

/// Ids the spec reserves (they name directories of the layers directory).
pub const RESERVED_IDS: [&str; 4] = ["app", "config", "generated", "sbom"];

fn id_error(kind: ModuleKind, id: &str, why: &str) -> ModuleError {
    ModuleError::Invalid(format!("{} id '{}' {why}", kind.noun(), cnbx_fs::excerpt(id)))
}

/// Checks a module id: not empty, only letters, digits, `.`, `/` and `-`, not reserved, and
/// not `.` or `..`.
pub fn check_id(kind: ModuleKind, id: &str) -> Result<(), ModuleError> {
    if id.is_empty() {
        return Err(ModuleError::Invalid(format!("{} id is empty", kind.noun())));
    }
    if !id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'/' | b'-')) {
        return Err(id_error(kind, id, "may contain only letters, digits, '.', '/' and '-'"));
    }
    if RESERVED_IDS.contains(&id) {
        return Err(id_error(kind, id, "is reserved (app, config, generated and sbom are)"));
    }
    if id == "." || id == ".." {
        return Err(id_error(kind, id, "cannot be a directory name"));
    }
    Ok(())
}

/// Checks a module version: one directory name (not empty, not `.` or `..`, no `/`, `\`
/// or control characters).
pub fn check_version(kind: ModuleKind, id: &str, version: &str) -> Result<(), ModuleError> {
    let bad = version.is_empty()
        || version == "."
        || version == ".."
        || version.chars().any(|c| c == '/' || c == '\\' || c.is_control());
    if bad {
        return Err(ModuleError::Invalid(format!(
            "{} '{}' has version '{}', which cannot be a directory name (a version such as 1.2.3 is expected)",
            kind.noun(),
            cnbx_fs::excerpt(id),
            cnbx_fs::excerpt(version)
        )));
    }
    Ok(())
}

/// [`check_id`] and [`check_version`].
pub fn check_id_version(kind: ModuleKind, id: &str, version: &str) -> Result<(), ModuleError> {
    check_id(kind, id)?;
    check_version(kind, id, version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        let k = ModuleKind::Buildpack;
        for ok in ["a", "paketo-buildpacks/node-engine", "google.nodejs.runtime", "A/B-1.x", "../..", "a/../b"] {
            check_id(k, ok).unwrap();
        }
        for (bad, why) in [
            ("", "is empty"),
            ("..", "cannot be a directory name"),
            (".", "cannot be a directory name"),
            ("a_b", "only letters"),
            ("a b", "only letters"),
            ("a\0b", "only letters"),
            ("é", "only letters"),
            ("config", "reserved"),
            ("sbom", "reserved"),
        ] {
            let e = check_id(k, bad).unwrap_err().to_string();
            assert!(e.contains(why), "{bad:?}: {e}");
        }
    }

    #[test]
    fn versions() {
        let k = ModuleKind::Extension;
        for ok in ["1.2.3", "0.0.1-dev+abc", "{{.version}}", "1", "v1..2"] {
            check_version(k, "x", ok).unwrap();
        }
        for bad in ["", ".", "..", "../../lifecycle", "1/2", "1\\2", "1\n2", "1\u{0}2"] {
            let e = check_version(k, "x", bad).unwrap_err().to_string();
            assert!(e.starts_with("extension 'x' has version '"), "{e}");
            assert!(!e.contains('\n'));
        }
    }
}
