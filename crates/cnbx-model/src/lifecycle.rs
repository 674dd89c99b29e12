//! The lifecycle: where it comes from ([`LifecycleSource`]) and what its `lifecycle.toml`
//! says ([`LifecycleDescriptor`], also the `lifecycle` section of the builder metadata label)
//! (docs/pack-compatibility.md, *The lifecycle*).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::toml_doc::{self, TomlProblem};
use crate::version::{ApiVersion, Semver, VersionError};

/// The lifecycle version used when builder.toml names none.
pub const DEFAULT_LIFECYCLE_VERSION: &str = "0.21.0";

/// Where the lifecycle comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LifecycleSource {
    /// `[lifecycle] uri` as written: an archive, directory, `file://` or `http(s)://` URL, or a
    /// `docker://` lifecycle image (relative paths are relative to the builder.toml directory).
    Uri(String),
    /// `[lifecycle] version` (or [`DEFAULT_LIFECYCLE_VERSION`]): downloaded from the GitHub
    /// release of its normalised form (`v0.20` → `0.20.0`).
    Version(Semver),
}

/// The lifecycle's version and APIs: `lifecycle.toml` read with pack's compatibility mapping
/// ([`LifecycleDescriptor::compat`]), and the `lifecycle` section of the builder metadata label:
/// `{"version":…,"api":{…},"apis":{…}}`.
///
/// `version` is written normalised (`0.21` → `"0.21.0"`), as Go's `encoding/json` does
/// through the semver type's `MarshalJSON`, and `null` when `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LifecycleDescriptor {
    /// The lifecycle version.
    pub version: Option<Semver>,
    /// Legacy single API versions (the earliest supported ones).
    pub api: LifecycleApi,
    /// Deprecated and supported API versions.
    pub apis: LifecycleApis,
}

/// Legacy `{"buildpack":…,"platform":…}` (`null` when `None`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LifecycleApi {
    /// The buildpack API.
    pub buildpack: Option<ApiVersion>,
    /// The platform API.
    pub platform: Option<ApiVersion>,
}

/// `{"buildpack":{…},"platform":{…}}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LifecycleApis {
    /// Buildpack API versions.
    pub buildpack: ApiVersions,
    /// Platform API versions.
    pub platform: ApiVersions,
}

/// `{"deprecated":[…],"supported":[…]}` (`null` when `None`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ApiVersions {
    /// Deprecated versions.
    pub deprecated: Option<Vec<ApiVersion>>,
    /// Supported versions.
    pub supported: Option<Vec<ApiVersion>>,
}

impl ApiVersions {
    /// Deprecated versions (empty when absent).
    pub fn deprecated(&self) -> &[ApiVersion] {
        self.deprecated.as_deref().unwrap_or_default()
    }

    /// Supported versions (empty when absent).
    pub fn supported(&self) -> &[ApiVersion] {
        self.supported.as_deref().unwrap_or_default()
    }
}

/// Why a `lifecycle.toml` cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleDescriptorError {
    /// Not TOML, or a value of the wrong type.
    #[error("{}", toml_message(.0))]
    Toml(TomlProblem),
    /// A version is not a version.
    #[error("lifecycle.toml")]
    Version(#[source] VersionError),
}

fn toml_message(problem: &TomlProblem) -> String {
    match problem {
        TomlProblem::Type { .. } => format!("lifecycle.toml: {problem}"),
        _ => format!("reading lifecycle.toml: {problem}"),
    }
}

/// `lifecycle.toml` as written: versions as strings, parsed once the file has been read.
#[derive(Deserialize, Default)]
#[serde(default)]
struct LifecycleToml {
    api: ApiStrings,
    apis: ApisStrings,
    lifecycle: LifecycleInfo,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ApiStrings {
    buildpack: Option<String>,
    platform: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ApisStrings {
    buildpack: ApiListStrings,
    platform: ApiListStrings,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ApiListStrings {
    deprecated: Option<Vec<String>>,
    supported: Option<Vec<String>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct LifecycleInfo {
    version: Option<String>,
}

impl ApiListStrings {
    fn parse(self) -> Result<ApiVersions, VersionError> {
        let list = |l: Option<Vec<String>>| {
            l.map(|l| l.iter().map(|s| ApiVersion::parse(s)).collect::<Result<Vec<_>, _>>()).transpose()
        };
        Ok(ApiVersions { deprecated: list(self.deprecated)?, supported: list(self.supported)? })
    }
}

impl LifecycleDescriptor {
    /// Parses `lifecycle.toml`, with pack's compatibility mapping applied.
    pub fn parse(text: &str) -> Result<Self, LifecycleDescriptorError> {
        let expected = |key: &str| match key {
            "api" | "apis" | "lifecycle" | "apis.buildpack" | "apis.platform" => "a table",
            k if k.ends_with(".deprecated") || k.ends_with(".supported") => "an array of strings",
            _ => "a string",
        };
        let file: LifecycleToml = toml_doc::read(text, drop, expected).map_err(LifecycleDescriptorError::Toml)?;
        let parsed = || -> Result<Self, VersionError> {
            let api = |s: Option<String>| s.map(|s| ApiVersion::parse(&s)).transpose();
            Ok(Self {
                version: file.lifecycle.version.map(|v| Semver::parse(&v)).transpose()?,
                api: LifecycleApi { buildpack: api(file.api.buildpack)?, platform: api(file.api.platform)? },
                apis: LifecycleApis { buildpack: file.apis.buildpack.parse()?, platform: file.apis.platform.parse()? },
            })
        };
        Ok(parsed().map_err(LifecycleDescriptorError::Version)?.compat())
    }

    /// Pack's compatibility mapping between the legacy `api` and the `apis` fields
    /// (`CompatDescriptor`): when some `apis.*.supported` list is non-empty, the legacy
    /// `api.buildpack`/`api.platform` become the earliest of that kind's deprecated and
    /// supported versions; otherwise, when both legacy versions are set, `apis` is replaced by
    /// `supported = [legacy]` for each kind (with no deprecated list).
    pub fn compat(mut self) -> Self {
        let bp = &self.apis.buildpack;
        let pl = &self.apis.platform;
        if !bp.supported().is_empty() || !pl.supported().is_empty() {
            if !bp.supported().is_empty() {
                self.api.buildpack = ApiVersion::earliest(bp.deprecated().iter().chain(bp.supported()));
            }
            if !pl.supported().is_empty() {
                self.api.platform = ApiVersion::earliest(pl.deprecated().iter().chain(pl.supported()));
            }
        } else if let (Some(buildpack), Some(platform)) = (self.api.buildpack, self.api.platform) {
            self.apis = LifecycleApis {
                buildpack: ApiVersions { deprecated: None, supported: Some(vec![buildpack]) },
                platform: ApiVersions { deprecated: None, supported: Some(vec![platform]) },
            };
        }
        self
    }

    /// The version as written, or `""`.
    pub fn version_text(&self) -> String {
        self.version.as_ref().map(ToString::to_string).unwrap_or_default()
    }
}

impl fmt::Display for LifecycleSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Uri(uri) => f.write_str(uri),
            Self::Version(v) => write!(f, "{v}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(s: &str) -> ApiVersion {
        ApiVersion::parse(s).unwrap()
    }

    fn apis(list: &[&str]) -> Option<Vec<ApiVersion>> {
        Some(list.iter().map(|s| api(s)).collect())
    }

    #[test]
    fn lifecycle_toml_compat() {
        let m = LifecycleDescriptor::parse(
            "[api]\nbuildpack = \"0.2\"\nplatform = \"0.3\"\n[lifecycle]\nversion = \"v0.9\"\n",
        )
        .unwrap();
        assert_eq!(m.apis.buildpack.supported(), &[ApiVersion::new(0, 2)]);
        assert_eq!(m.version.unwrap().original(), "v0.9");
        let m =
            LifecycleDescriptor::parse("[apis.buildpack]\ndeprecated = [\"0.6\"]\nsupported = [\"0.7\"]\n").unwrap();
        assert_eq!(m.api.buildpack, Some(ApiVersion::new(0, 6)));
        let e = LifecycleDescriptor::parse("[lifecycle]\nversion = \"x\"").unwrap_err();
        assert_eq!(e.to_string(), "lifecycle.toml");
        assert_eq!(std::error::Error::source(&e).unwrap().to_string(), "invalid semantic version 'x'");
        let e = LifecycleDescriptor::parse("[apis.platform]\nsupported = \"0.7\"").unwrap_err();
        assert_eq!(e.to_string(), "lifecycle.toml: 'apis.platform.supported' must be an array of strings");
        let e = LifecycleDescriptor::parse("[api\n").unwrap_err();
        assert!(e.to_string().starts_with("reading lifecycle.toml: line 1, column "), "{e}");
    }

    #[test]
    fn compat_mapping() {
        let legacy = LifecycleDescriptor {
            api: LifecycleApi { buildpack: Some(api("0.2")), platform: Some(api("0.3")) },
            ..LifecycleDescriptor::default()
        };
        let mapped = legacy.clone().compat();
        assert_eq!(mapped.apis.buildpack, ApiVersions { deprecated: None, supported: apis(&["0.2"]) });
        assert_eq!(mapped.apis.platform, ApiVersions { deprecated: None, supported: apis(&["0.3"]) });
        assert_eq!(mapped.api, legacy.api);

        let half = LifecycleDescriptor {
            api: LifecycleApi { buildpack: Some(api("0.2")), platform: None },
            ..LifecycleDescriptor::default()
        };
        assert_eq!(half.clone().compat(), half);

        let modern = LifecycleDescriptor {
            apis: LifecycleApis {
                buildpack: ApiVersions { deprecated: apis(&["0.6"]), supported: apis(&["0.8", "0.7"]) },
                platform: ApiVersions { deprecated: None, supported: None },
            },
            ..LifecycleDescriptor::default()
        };
        let mapped = modern.clone().compat();
        assert_eq!(mapped.api, LifecycleApi { buildpack: Some(api("0.6")), platform: None });
        assert_eq!(mapped.apis, modern.apis);
    }
}
