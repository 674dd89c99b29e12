//! The builder.toml data model (pack's `builder.Config`).

use cnbx_model::{ModuleInfo, OrderEntry, RunImage, System, Target, WithModuleInfo, module::deserialize_with_info};
use serde::Deserialize;
use serde::de::{Deserializer, MapAccess};

/// A parsed `builder.toml`, after pack's legacy `[stack]` merge (RFC-0096). The CNB data in
/// it are [`cnbx_model`] types.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(default, rename_all = "kebab-case")]
pub struct BuilderConfig {
    /// `description`: copied into the builder metadata label.
    pub description: String,
    /// `[[buildpacks]]`: the buildpacks to add, in file order.
    pub buildpacks: Vec<ModuleConfig>,
    /// `[[extensions]]`: the image extensions to add, in file order.
    pub extensions: Vec<ModuleConfig>,
    /// `[[order]]`: the detection order; `None` when the file has no `order` (pack writes its
    /// label as `null` then, and `[]` for an empty one).
    pub order: Option<Vec<OrderEntry>>,
    /// `[[order-extensions]]`: the extension detection order (`None` as for `order`).
    pub order_extensions: Option<Vec<OrderEntry>>,
    /// `[stack]` (legacy), after the merge with `[build]` and `[[run.images]]`.
    pub stack: StackConfig,
    /// `[build]`: the build image and `[[build.env]]`.
    pub build: BuildConfig,
    /// `[run]`: the run images (the first one is the default).
    pub run: RunConfig,
    /// `[lifecycle]`: `uri` or `version`.
    pub lifecycle: LifecycleConfig,
    /// `[[targets]]`: the platforms to build for.
    pub targets: Vec<Target>,
    /// `[system]`: system buildpacks run before and after the order.
    pub system: System,
}

/// One `[[buildpacks]]` or `[[extensions]]` entry.
///
/// All module-info keys are accepted (pack embeds `dist.ModuleInfo`); only `uri`, `image`, `id`
/// and `version` have an effect.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ModuleConfig {
    /// `uri`: the locator. When only the deprecated `image` key is given, this is
    /// `docker://<image>` so that the locator treats it as a package image.
    pub uri: String,
    /// `image` (deprecated): a package image reference, exactly as written.
    pub image: String,
    /// The module-info keys: `id` and `version`, if non-empty, must match the module's; the
    /// others are accepted and ignored.
    pub info: ModuleInfo,
}

impl WithModuleInfo for ModuleConfig {
    const NAME: &'static str = "ModuleConfig";
    const FIELDS: &'static [&'static str] = &ModuleInfo::keys_and::<2, 11>(["uri", "image"]);

    fn info_mut(&mut self) -> &mut ModuleInfo {
        &mut self.info
    }

    fn read_own<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error> {
        match key {
            "uri" => self.uri = map.next_value()?,
            "image" => self.image = map.next_value()?,
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// As builder.toml spells it (for the tests that write a builder.toml from a value).
#[cfg(test)]
impl serde::Serialize for ModuleConfig {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(serde::Serialize)]
        struct Entry<'a> {
            uri: &'a str,
            image: &'a str,
            #[serde(flatten)]
            info: &'a ModuleInfo,
        }
        Entry { uri: &self.uri, image: &self.image, info: &self.info }.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for ModuleConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut m: Self = deserialize_with_info(deserializer)?;
        if m.uri.is_empty() && !m.image.is_empty() {
            m.uri = format!("docker://{}", m.image);
        }
        Ok(m)
    }
}

/// The legacy `[stack]` table.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(default, rename_all = "kebab-case")]
pub struct StackConfig {
    /// `id`: when set, turns on stack-id checks against the build and run images.
    pub id: String,
    /// `build-image` (after the merge: equal to `[build].image` when that is set).
    pub build_image: String,
    /// `run-image` (after the merge: the first `[[run.images]]` image when there is one).
    pub run_image: String,
    /// `run-image-mirrors` (after the merge: the first run image's mirrors when there is one).
    pub run_image_mirrors: Vec<String>,
}

/// The `[build]` table.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(default)]
pub struct BuildConfig {
    /// `image`: the build base image (after the merge: `[stack].build-image` when unset).
    pub image: String,
    /// `[[build.env]]`.
    pub env: Vec<BuildEnv>,
}

/// A `[[build.env]]` entry (see [`crate::LoadedConfig::build_env`]).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(default, rename_all = "kebab-case")]
pub struct BuildEnv {
    /// `name` (must not be empty).
    pub name: String,
    /// `value` (empty warns).
    pub value: String,
    /// `suffix`: `""`, `default`, `override`, `append` or `prepend`.
    pub suffix: String,
    /// `delim`: written to `NAME.delim` when non-empty.
    pub delim: String,
    /// `exec-env` (accepted, unused by pack).
    pub exec_env: Vec<String>,
}

/// The `[run]` table.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(default)]
pub struct RunConfig {
    /// `[[run.images]]` (after the merge: the legacy `[stack].run-image` when absent).
    pub images: Vec<RunImage>,
}

/// The `[lifecycle]` table (see [`LifecycleConfig::source`](crate::LifecycleConfig::source)).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(default)]
pub struct LifecycleConfig {
    /// `uri` (`""` = unset).
    pub uri: String,
    /// `version` (`""` = unset).
    pub version: String,
}
