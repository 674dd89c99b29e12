//! The builder.toml data model (pack's `builder.Config`).

use serde::Deserialize;

/// A parsed `builder.toml`, after pack's legacy `[stack]` merge (RFC-0096).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct BuilderConfig {
    /// `description`: copied into the builder metadata label.
    pub description: String,
    /// `[[buildpacks]]`: the buildpacks to add, in file order.
    pub buildpacks: Vec<ModuleConfig>,
    /// `[[extensions]]`: the image extensions to add, in file order.
    pub extensions: Vec<ModuleConfig>,
    /// `[[order]]`: the detection order.
    pub order: Vec<OrderGroup>,
    /// `[[order-extensions]]`: the extension detection order.
    pub order_extensions: Vec<OrderGroup>,
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
    pub system: SystemConfig,
}

/// One `[[buildpacks]]` or `[[extensions]]` entry.
///
/// All module-info keys are accepted (pack embeds `dist.ModuleInfo`); only `uri`, `image`, `id`
/// and `version` have an effect. `id` and `version` are also mirrored into [`ModuleConfig::info`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(from = "RawModule")]
pub struct ModuleConfig {
    /// `uri`: the locator. When only the deprecated `image` key is given, this is
    /// `docker://<image>` so that the locator treats it as a package image.
    pub uri: String,
    /// `image` (deprecated): a package image reference, exactly as written.
    pub image: String,
    /// `id`: if non-empty, must match the downloaded module's id.
    pub id: String,
    /// `version`: if non-empty, must match the downloaded module's version.
    pub version: String,
    /// All module-info keys (accepted, mostly ignored), including `id` and `version`.
    pub info: ModuleInfo,
}

/// pack's `dist.ModuleInfo`: the keys every module entry accepts.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default, rename_all = "kebab-case")]
pub struct ModuleInfo {
    /// `id`.
    pub id: String,
    /// `name`.
    pub name: String,
    /// `version` (`""` = unset).
    pub version: String,
    /// `description`.
    pub description: String,
    /// `homepage`.
    pub homepage: String,
    /// `keywords`.
    pub keywords: Vec<String>,
    /// `exec-env`.
    pub exec_env: Vec<String>,
    /// `[[licenses]]`.
    pub licenses: Vec<License>,
    /// `clear-env`.
    pub clear_env: bool,
}

/// A `[[…licenses]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default)]
pub struct License {
    /// `type`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `uri`.
    pub uri: String,
}

/// One `[[order]]` (or `[[order-extensions]]`) entry.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default)]
pub struct OrderGroup {
    /// `[[order.group]]`.
    pub group: Vec<ModuleRef>,
}

/// A reference to a module in an order group or a system buildpack list.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(from = "RawModuleRef")]
pub struct ModuleRef {
    /// `id`, `version` (`""` = resolve later) and the other module-info keys (flattened in TOML).
    pub info: ModuleInfo,
    /// `optional`.
    pub optional: bool,
}

/// The legacy `[stack]` table.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
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
#[serde(default)]
pub struct BuildConfig {
    /// `image`: the build base image (after the merge: `[stack].build-image` when unset).
    pub image: String,
    /// `[[build.env]]`.
    pub env: Vec<BuildEnv>,
}

/// A `[[build.env]]` entry (see [`crate::LoadedConfig::build_env`]).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
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
#[serde(default)]
pub struct RunConfig {
    /// `[[run.images]]` (after the merge: the legacy `[stack].run-image` when absent).
    pub images: Vec<RunImageConfig>,
}

/// A `[[run.images]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default)]
pub struct RunImageConfig {
    /// `image`.
    pub image: String,
    /// `mirrors`: `None` when the key is absent, `Some(vec![])` for `mirrors = []`.
    pub mirrors: Option<Vec<String>>,
}

/// The `[lifecycle]` table (see [`LifecycleConfig::source`](crate::LifecycleConfig::source)).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default)]
pub struct LifecycleConfig {
    /// `uri` (`""` = unset).
    pub uri: String,
    /// `version` (`""` = unset).
    pub version: String,
}

/// A platform: a `[[targets]]` entry or a parsed `--target` value.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default)]
pub struct Target {
    /// `os`.
    pub os: String,
    /// `arch`.
    pub arch: String,
    /// `variant`.
    pub variant: String,
    /// `[[targets.distros]]` (the key is `distros`, not `distributions`).
    pub distros: Vec<Distro>,
}

/// A `[[targets.distros]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default)]
pub struct Distro {
    /// `name`.
    pub name: String,
    /// `version`.
    pub version: String,
}

/// The `[system]` table.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default)]
pub struct SystemConfig {
    /// `[system.pre]`.
    pub pre: SystemBuildpacks,
    /// `[system.post]`.
    pub post: SystemBuildpacks,
}

/// `[system.pre]` / `[system.post]`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default)]
pub struct SystemBuildpacks {
    /// `buildpacks`: inline array or `[[system.pre.buildpacks]]`.
    pub buildpacks: Vec<ModuleRef>,
}

/// All keys of a module entry, spelled out (no `flatten`, so that `serde_ignored` sees every key).
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "kebab-case")]
struct RawModule {
    uri: String,
    image: String,
    id: String,
    name: String,
    version: String,
    description: String,
    homepage: String,
    keywords: Vec<String>,
    exec_env: Vec<String>,
    licenses: Vec<License>,
    clear_env: bool,
}

impl RawModule {
    fn into_info(self) -> (ModuleInfo, String, String) {
        let info = ModuleInfo {
            id: self.id,
            name: self.name,
            version: self.version,
            description: self.description,
            homepage: self.homepage,
            keywords: self.keywords,
            exec_env: self.exec_env,
            licenses: self.licenses,
            clear_env: self.clear_env,
        };
        (info, self.uri, self.image)
    }
}

impl From<RawModule> for ModuleConfig {
    fn from(raw: RawModule) -> Self {
        let (info, uri, image) = raw.into_info();
        let uri = if uri.is_empty() && !image.is_empty() { format!("docker://{image}") } else { uri };
        ModuleConfig { uri, image, id: info.id.clone(), version: info.version.clone(), info }
    }
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "kebab-case")]
struct RawModuleRef {
    id: String,
    name: String,
    version: String,
    description: String,
    homepage: String,
    keywords: Vec<String>,
    exec_env: Vec<String>,
    licenses: Vec<License>,
    clear_env: bool,
    optional: bool,
}

impl From<RawModuleRef> for ModuleRef {
    fn from(raw: RawModuleRef) -> Self {
        ModuleRef {
            info: ModuleInfo {
                id: raw.id,
                name: raw.name,
                version: raw.version,
                description: raw.description,
                homepage: raw.homepage,
                keywords: raw.keywords,
                exec_env: raw.exec_env,
                licenses: raw.licenses,
                clear_env: raw.clear_env,
            },
            optional: raw.optional,
        }
    }
}

impl ModuleInfo {
    /// `id@version`, or just `id` when the version is empty (pack's `FullName`).
    pub fn full_name(&self) -> String {
        if self.version.is_empty() { self.id.clone() } else { format!("{}@{}", self.id, self.version) }
    }
}
