//! `io.buildpacks.builder.metadata` (pack's `builder.Metadata`).

use serde::{Deserialize, Serialize};

use super::module::ModuleInfo;
use super::version::{ApiVersion, LifecycleVersion, earliest};

/// The builder metadata label. Keys, in order: `description` (always, may be `""`),
/// `buildpacks`, `extensions` (`null` when `None`), `stack`, `lifecycle`, `createdBy`,
/// `images` (`null` when `None`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BuilderMetadata {
    /// The builder's description.
    pub description: String,
    /// Every buildpack on the builder (in the order they were added).
    pub buildpacks: Option<Vec<ModuleInfo>>,
    /// Every image extension on the builder.
    pub extensions: Option<Vec<ModuleInfo>>,
    /// The legacy stack section (the first run image, for old readers).
    pub stack: StackMetadata,
    /// The lifecycle's version and APIs.
    pub lifecycle: LifecycleMetadata,
    /// The tool that created the builder.
    #[serde(rename = "createdBy")]
    pub created_by: CreatorMetadata,
    /// The run images (`[[run.images]]`).
    #[serde(rename = "images")]
    pub run_images: Option<Vec<RunImageMetadata>>,
}

/// `{"runImage":{…}}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StackMetadata {
    /// The stack's run image.
    #[serde(rename = "runImage")]
    pub run_image: RunImageMetadata,
}

/// A run image and its mirrors: `{"image":…,"mirrors":…}` (`mirrors` `null` when `None`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunImageMetadata {
    /// The run image name.
    pub image: String,
    /// Its mirrors.
    pub mirrors: Option<Vec<String>>,
}

impl RunImageMetadata {
    /// The mirrors (empty when absent).
    pub fn mirror_list(&self) -> &[String] {
        self.mirrors.as_deref().unwrap_or_default()
    }
}

/// `{"name":…,"version":…}`, both always written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CreatorMetadata {
    /// The creating tool (`Pack CLI` for pack).
    pub name: String,
    /// Its version.
    pub version: String,
}

/// The lifecycle section: `{"version":…,"api":{…},"apis":{…}}`.
///
/// `version` is written normalised (`0.21` → `"0.21.0"`), as Go's `encoding/json` does
/// through the semver type's `MarshalJSON`, and `null` when `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LifecycleMetadata {
    /// The lifecycle version.
    pub version: Option<LifecycleVersion>,
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

impl LifecycleMetadata {
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
                self.api.buildpack = earliest(bp.deprecated().iter().chain(bp.supported()));
            }
            if !pl.supported().is_empty() {
                self.api.platform = earliest(pl.deprecated().iter().chain(pl.supported()));
            }
        } else if let (Some(buildpack), Some(platform)) = (self.api.buildpack, self.api.platform) {
            self.apis = LifecycleApis {
                buildpack: ApiVersions { deprecated: None, supported: Some(vec![buildpack]) },
                platform: ApiVersions { deprecated: None, supported: Some(vec![platform]) },
            };
        }
        self
    }
}
