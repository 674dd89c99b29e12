//! Module kinds, and module ids and versions checked before any path is made from them.
//!
//! A buildpack's files go to `/cnb/buildpacks/<id with '/' as '_'>/<version>/`, so an id or a
//! version is a path component: `id = ".."` or `version = "../../lifecycle"` would put a
//! buildpack's files over the lifecycle. The spec allows letters, digits, `.`, `/` and `-` in
//! ids (so `_` can stand for `/` without ambiguity) and reserves `app`, `config`,
//! `generated` and `sbom`. It asks for `X.Y.Z` versions, which pack does not enforce;
//! cnbx refuses only versions that cannot be one directory name.
//!
//! [`ModuleId`] and [`ModuleVersion`] can only be made through these checks, and
//! [`ModuleDirs`] (the only way to the directories of a module) takes them, so nothing else
//! needs to check again.

use std::fmt;

use cnbx_fs::excerpt;

/// Buildpack or image extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ModuleKind {
    /// A buildpack.
    Buildpack,
    /// An image extension.
    Extension,
}

impl ModuleKind {
    /// Where modules of this kind live on a builder.
    pub fn dir(self) -> &'static str {
        match self {
            Self::Buildpack => "/cnb/buildpacks",
            Self::Extension => "/cnb/extensions",
        }
    }

    /// `buildpack` or `extension`.
    pub fn noun(self) -> &'static str {
        match self {
            Self::Buildpack => "buildpack",
            Self::Extension => "extension",
        }
    }

    /// `buildpack.toml` or `extension.toml`.
    pub fn descriptor_file(self) -> &'static str {
        match self {
            Self::Buildpack => "buildpack.toml",
            Self::Extension => "extension.toml",
        }
    }
}

/// Ids the spec reserves (they name directories of the layers directory).
pub const RESERVED_IDS: [&str; 4] = ["app", "config", "generated", "sbom"];

/// pack's directory name for a module id: every `/` replaced by `_`.
pub fn escape_id(id: &str) -> String {
    id.replace('/', "_")
}

/// Why a module id or version cannot be used. Ids and versions are quoted as excerpts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentError {
    /// The id is empty.
    #[error("{} id is empty", .kind.noun())]
    EmptyId {
        /// Buildpack or extension.
        kind: ModuleKind,
    },
    /// The id has a character the spec does not allow.
    #[error("{} id '{}' may contain only letters, digits, '.', '/' and '-'", .kind.noun(), excerpt(.id))]
    IdCharacters {
        /// Buildpack or extension.
        kind: ModuleKind,
        /// The id.
        id: String,
    },
    /// The id is reserved.
    #[error("{} id '{}' is reserved (app, config, generated and sbom are)", .kind.noun(), excerpt(.id))]
    Reserved {
        /// Buildpack or extension.
        kind: ModuleKind,
        /// The id.
        id: String,
    },
    /// The id is `.` or `..`.
    #[error("{} id '{}' cannot be a directory name", .kind.noun(), excerpt(.id))]
    IdDirectory {
        /// Buildpack or extension.
        kind: ModuleKind,
        /// The id.
        id: String,
    },
    /// The version cannot be one directory name.
    #[error(
        "{} '{}' has version '{}', which cannot be a directory name (a version such as 1.2.3 is expected)",
        .kind.noun(), excerpt(.id), excerpt(.version)
    )]
    Version {
        /// Buildpack or extension.
        kind: ModuleKind,
        /// The module's id.
        id: String,
        /// The version.
        version: String,
    },
}

/// A module id that may become a directory name (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ModuleId(String);

impl ModuleId {
    /// Checks `id`: not empty, only letters, digits, `.`, `/` and `-`, not reserved, and not
    /// `.` or `..`.
    pub fn new(kind: ModuleKind, id: &str) -> Result<Self, IdentError> {
        if id.is_empty() {
            return Err(IdentError::EmptyId { kind });
        }
        let id_owned = || id.to_owned();
        if !id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'/' | b'-')) {
            return Err(IdentError::IdCharacters { kind, id: id_owned() });
        }
        if RESERVED_IDS.contains(&id) {
            return Err(IdentError::Reserved { kind, id: id_owned() });
        }
        if id == "." || id == ".." {
            return Err(IdentError::IdDirectory { kind, id: id_owned() });
        }
        Ok(Self(id.to_owned()))
    }

    /// The id as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Its directory name: every `/` replaced by `_`.
    pub fn escaped(&self) -> String {
        escape_id(&self.0)
    }
}

/// A module version that may become a directory name (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ModuleVersion(String);

impl ModuleVersion {
    /// Checks the version of module `id`: one directory name (not empty, not `.` or `..`, no
    /// `/`, `\` or control characters).
    pub fn new(kind: ModuleKind, id: &str, version: &str) -> Result<Self, IdentError> {
        let bad = version.is_empty()
            || version == "."
            || version == ".."
            || version.chars().any(|c| c == '/' || c == '\\' || c.is_control());
        if bad {
            return Err(IdentError::Version { kind, id: id.to_owned(), version: version.to_owned() });
        }
        Ok(Self(version.to_owned()))
    }

    /// The version as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ModuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for ModuleVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A module of a kind with a checked id and version: where its files go on a builder.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ModuleDirs {
    /// Buildpack or extension.
    pub kind: ModuleKind,
    /// The id.
    pub id: ModuleId,
    /// The version.
    pub version: ModuleVersion,
}

impl ModuleDirs {
    /// Checks `id` and `version` (see [`ModuleId::new`], [`ModuleVersion::new`]).
    pub fn new(kind: ModuleKind, id: &str, version: &str) -> Result<Self, IdentError> {
        let id_checked = ModuleId::new(kind, id)?;
        let version = ModuleVersion::new(kind, id, version)?;
        Ok(Self { kind, id: id_checked, version })
    }

    /// `<kind dir>/<escaped id>`.
    pub fn parent(&self) -> String {
        format!("{}/{}", self.kind.dir(), self.id.escaped())
    }

    /// `<kind dir>/<escaped id>/<version>`.
    pub fn base(&self) -> String {
        format!("{}/{}", self.parent(), self.version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        let k = ModuleKind::Buildpack;
        for ok in ["a", "paketo-buildpacks/node-engine", "google.nodejs.runtime", "A/B-1.x", "../..", "a/../b"] {
            ModuleId::new(k, ok).unwrap();
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
            let e = ModuleId::new(k, bad).unwrap_err().to_string();
            assert!(e.contains(why), "{bad:?}: {e}");
        }
        assert_eq!(ModuleId::new(k, "a/b").unwrap().escaped(), "a_b");
    }

    #[test]
    fn versions() {
        let k = ModuleKind::Extension;
        for ok in ["1.2.3", "0.0.1-dev+abc", "{{.version}}", "1", "v1..2"] {
            ModuleVersion::new(k, "x", ok).unwrap();
        }
        for bad in ["", ".", "..", "../../lifecycle", "1/2", "1\\2", "1\n2", "1\u{0}2"] {
            let e = ModuleVersion::new(k, "x", bad).unwrap_err().to_string();
            assert!(e.starts_with("extension 'x' has version '"), "{e}");
            assert!(!e.contains('\n'));
        }
    }

    #[test]
    fn dirs() {
        let d = ModuleDirs::new(ModuleKind::Buildpack, "a/b", "1.0").unwrap();
        assert_eq!((d.parent(), d.base()), ("/cnb/buildpacks/a_b".into(), "/cnb/buildpacks/a_b/1.0".into()));
        assert!(ModuleDirs::new(ModuleKind::Buildpack, "..", "1").is_err());
        assert!(ModuleDirs::new(ModuleKind::Buildpack, "a", "../x").is_err());
    }
}
