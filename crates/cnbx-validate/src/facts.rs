//! Inputs: what the caller knows about an image without its layers, and the validation options.
//!
//! Env parsing: each entry is split on the first `=`, `PATH=`
//! means "present and empty", and when a key appears twice the last entry wins (Docker's
//! behaviour). Duplicates and entries without `=` are reported by the advisory rules
//! `BOTH-ENV-DUPLICATE` and `BOTH-ENV-SYNTAX`.

use std::collections::BTreeMap;
use std::fmt;

/// What the caller knows about one image from its config (and index entry), without layers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageFacts {
    /// The image as the user wrote it; used in every message.
    pub name: String,
    /// Config `os` (`linux`, `windows`, …); empty when absent.
    pub os: String,
    /// Config `architecture` (`amd64`, `arm64`, …); empty when absent.
    pub architecture: String,
    /// Config `variant` (`v8`, …); `None` or empty when absent.
    pub variant: Option<String>,
    /// Config `os.version` (Windows build number); `None` when absent.
    pub os_version: Option<String>,
    /// `config.User`, verbatim; empty when absent.
    pub user: String,
    /// `config.Env`, verbatim `KEY=VALUE` strings in config order.
    pub env: Vec<String>,
    /// `config.Labels`.
    pub labels: BTreeMap<String, String>,
    /// The `platform` of the index entry the image was selected from, if it came from an index.
    pub index_platform: Option<IndexPlatform>,
}

impl ImageFacts {
    /// Facts for `name` with the given `os` and `architecture`; everything else empty.
    pub fn new(name: impl Into<String>, os: impl Into<String>, architecture: impl Into<String>) -> Self {
        Self { name: name.into(), os: os.into(), architecture: architecture.into(), ..Self::default() }
    }

    /// Sets `variant`.
    #[must_use]
    pub fn with_variant(mut self, variant: impl Into<String>) -> Self {
        self.variant = Some(variant.into());
        self
    }

    /// Sets `os.version`.
    #[must_use]
    pub fn with_os_version(mut self, os_version: impl Into<String>) -> Self {
        self.os_version = Some(os_version.into());
        self
    }

    /// Sets `config.User`.
    #[must_use]
    pub fn with_user(mut self, user: impl Into<String>) -> Self {
        self.user = user.into();
        self
    }

    /// Appends `KEY=VALUE` entries to `config.Env`.
    #[must_use]
    pub fn with_env<I, S>(mut self, entries: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.env.extend(entries.into_iter().map(Into::into));
        self
    }

    /// Sets one label.
    #[must_use]
    pub fn with_label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// Sets the index entry's platform.
    #[must_use]
    pub fn with_index_platform(mut self, platform: IndexPlatform) -> Self {
        self.index_platform = Some(platform);
        self
    }

    /// `variant`, if set and non-empty.
    pub(crate) fn variant(&self) -> Option<&str> {
        self.variant.as_deref().filter(|v| !v.is_empty())
    }

    /// A label's value, if set.
    pub(crate) fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key).map(String::as_str)
    }

    /// A label's value, if set to something other than blanks.
    pub(crate) fn non_empty_label(&self, key: &str) -> Option<&str> {
        self.label(key).filter(|v| !v.trim().is_empty())
    }

    /// Whether the image is a Windows image (paths, SIDs and distro rules differ).
    pub(crate) fn is_windows(&self) -> bool {
        self.os == "windows"
    }
}

/// The `platform` object of an image index entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexPlatform {
    /// `platform.os`.
    pub os: String,
    /// `platform.architecture`.
    pub architecture: String,
    /// `platform.variant`, `None` or empty when absent.
    pub variant: Option<String>,
}

impl IndexPlatform {
    /// A platform from its parts; an empty variant means none.
    pub fn new(os: impl Into<String>, architecture: impl Into<String>, variant: Option<&str>) -> Self {
        Self {
            os: os.into(),
            architecture: architecture.into(),
            variant: variant.filter(|v| !v.is_empty()).map(str::to_owned),
        }
    }
}

/// A Platform API version (`0.12` → `PlatformApi::new(0, 12)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PlatformApi {
    /// Major version.
    pub major: u32,
    /// Minor version.
    pub minor: u32,
}

impl PlatformApi {
    /// The newest Platform API this validator knows (the spec on `main`).
    pub const LATEST: PlatformApi = PlatformApi::new(0, 15);
    /// Platform API 0.7: the run image user should differ from the build image user (before: the same).
    pub(crate) const RUN_USER_DIFFERENT: PlatformApi = PlatformApi::new(0, 7);
    /// Platform API 0.12: targets and `io.buildpacks.base.*` labels replace stacks.
    pub(crate) const TARGETS: PlatformApi = PlatformApi::new(0, 12);

    /// A version from its parts.
    pub const fn new(major: u32, minor: u32) -> Self {
        Self { major, minor }
    }
}

impl Default for PlatformApi {
    fn default() -> Self {
        Self::LATEST
    }
}

impl fmt::Display for PlatformApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// What the builder being created asks of its base images.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// `[stack].id` of builder.toml, if set (an empty string counts as unset). When set, pack's
    /// `stack '<cfg>' from builder config is incompatible with …` errors apply; the levels of
    /// the other legacy stack rules do not change.
    pub stack_id: Option<String>,
    /// Some buildpack on the builder has `[[stacks]]` (other than `*`) and no `[[targets]]`, so
    /// it will fail detection without a matching stack: the legacy rules it depends on (stack id
    /// and mixins labels, their pairing) are errors.
    pub legacy_stacks_required: bool,
    /// The Platform API the builder is validated against (default: [`PlatformApi::LATEST`]).
    /// Pick the highest version supported by both cnbx and the lifecycle going into the builder.
    pub platform_api: PlatformApi,
}

impl Options {
    /// `[stack].id`, if set and non-empty.
    pub(crate) fn stack_id(&self) -> Option<&str> {
        self.stack_id.as_deref().filter(|s| !s.is_empty())
    }
}

/// `config.Env`, parsed.
#[derive(Debug, Clone, Default)]
pub(crate) struct Env {
    vars: BTreeMap<String, String>,
    /// Keys that appear more than once, in order of their second appearance, without repeats.
    pub(crate) duplicates: Vec<String>,
    /// Entries without `=` or with an empty key.
    pub(crate) malformed: Vec<String>,
}

impl Env {
    /// Parses `KEY=VALUE` entries: split on the first `=`, the last occurrence of a key wins.
    pub(crate) fn parse(entries: &[String]) -> Self {
        let mut env = Env::default();
        for entry in entries {
            match entry.split_once('=') {
                Some((key, value)) if !key.is_empty() => {
                    if env.vars.insert(key.to_owned(), value.to_owned()).is_some()
                        && !env.duplicates.iter().any(|d| d == key)
                    {
                        env.duplicates.push(key.to_owned());
                    }
                }
                _ => env.malformed.push(entry.clone()),
            }
        }
        env
    }

    /// The value of `key` (the last occurrence), if present (possibly empty).
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.vars.get(key).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(entries: &[&str]) -> Env {
        Env::parse(&entries.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn env_splits_on_first_equals_and_last_wins() {
        let e = env(&["A=1", "B=x=y", "A=2", "PATH=", "A=3", "NOEQ", "=v"]);
        assert_eq!(e.get("A"), Some("3"));
        assert_eq!(e.get("B"), Some("x=y"));
        assert_eq!(e.get("PATH"), Some(""));
        assert_eq!(e.get("C"), None);
        assert_eq!(e.duplicates, ["A"]);
        assert_eq!(e.malformed, ["NOEQ", "=v"]);
    }

    #[test]
    fn platform_api_orders_by_version() {
        assert!(PlatformApi::new(0, 9) < PlatformApi::new(0, 12));
        assert!(PlatformApi::new(1, 0) > PlatformApi::LATEST);
        assert_eq!(PlatformApi::default().to_string(), "0.15");
    }
}
