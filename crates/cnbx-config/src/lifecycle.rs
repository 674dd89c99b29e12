//! `[lifecycle]`: which lifecycle to put in the builder (pack's rules: docs/pack-compatibility.md, *The lifecycle*).

use crate::error::ConfigError;
use crate::model::LifecycleConfig;

/// The lifecycle version used when `[lifecycle]` sets neither `uri` nor `version`.
pub const DEFAULT_LIFECYCLE_VERSION: &str = "0.21.0";

/// Where the lifecycle comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LifecycleSource {
    /// `[lifecycle].uri` as written: a `docker:/` image, a URL or a path (relative paths are
    /// relative to the builder.toml directory, see [`crate::LoadedConfig::resolve_path`]).
    Uri(String),
    /// A normalized semantic version (`v0.20` → `0.20.0`) to download from GitHub releases.
    Version(String),
}

impl LifecycleConfig {
    /// Applies pack's rules: both keys set is an error, `version` must be semver (it is
    /// normalized), neither means [`DEFAULT_LIFECYCLE_VERSION`].
    pub fn source(&self) -> Result<LifecycleSource, ConfigError> {
        if !self.version.is_empty() && !self.uri.is_empty() {
            return Err(ConfigError::LifecycleBothSet);
        }
        if !self.uri.is_empty() {
            return Ok(LifecycleSource::Uri(self.uri.clone()));
        }
        if self.version.is_empty() {
            return Ok(LifecycleSource::Version(DEFAULT_LIFECYCLE_VERSION.to_string()));
        }
        normalize_semver(&self.version)
            .map(LifecycleSource::Version)
            .map_err(|reason| ConfigError::LifecycleVersion { version: self.version.clone(), reason })
    }
}

/// Masterminds/semver v1 `NewVersion` + `String()`: `v?MAJOR(.MINOR)?(.PATCH)?(-PRE)?(+META)?`.
pub(crate) fn normalize_semver(input: &str) -> Result<String, String> {
    const INVALID: &str = "Invalid Semantic Version";
    let rest = input.strip_prefix('v').unwrap_or(input);
    let (rest, meta) = match rest.split_once('+') {
        Some((r, m)) => (r, Some(m)),
        None => (rest, None),
    };
    let (core, pre) = match rest.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (rest, None),
    };
    let ident_ok = |s: &str| {
        !s.is_empty() && s.split('.').all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
    };
    if pre.is_some_and(|p| !ident_ok(p)) || meta.is_some_and(|m| !ident_ok(m)) {
        return Err(INVALID.to_string());
    }
    let numbers: Vec<&str> = core.split('.').collect();
    if numbers.len() > 3 || numbers.iter().any(|n| n.is_empty() || !n.chars().all(|c| c.is_ascii_digit())) {
        return Err(INVALID.to_string());
    }
    let mut parsed = [0_i64; 3];
    for (slot, n) in parsed.iter_mut().zip(&numbers) {
        *slot = n.parse::<i64>().map_err(|_| {
            format!(
                "Error parsing version segment: strconv.ParseInt: parsing \"{}\": value out of range",
                cnbx_fs::excerpt(n)
            )
        })?;
    }
    let mut out = format!("{}.{}.{}", parsed[0], parsed[1], parsed[2]);
    if let Some(p) = pre {
        out.push('-');
        out.push_str(p);
    }
    if let Some(m) = meta {
        out.push('+');
        out.push_str(m);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(uri: &str, version: &str) -> LifecycleConfig {
        LifecycleConfig { uri: uri.into(), version: version.into() }
    }

    #[test]
    fn default_version() {
        assert_eq!(cfg("", "").source().unwrap(), LifecycleSource::Version("0.21.0".into()));
    }

    #[test]
    fn both_set_is_an_error() {
        let err = cfg("x.tgz", "0.20.0").source().unwrap_err();
        assert_eq!(err.to_string(), "'lifecycle' can only declare 'version' or 'uri', not both");
        assert!(err.diagnostic().is_some());
    }

    #[test]
    fn uri_is_kept_verbatim() {
        assert_eq!(
            cfg("docker://x/lifecycle:1", "").source().unwrap(),
            LifecycleSource::Uri("docker://x/lifecycle:1".into())
        );
        assert_eq!(cfg("lc.tgz", "").source().unwrap(), LifecycleSource::Uri("lc.tgz".into()));
    }

    #[test]
    fn version_is_normalized() {
        for (input, want) in [
            ("v0.20", "0.20.0"),
            ("0.20.1", "0.20.1"),
            ("1", "1.0.0"),
            ("v1.2.3-rc.1+build.5", "1.2.3-rc.1+build.5"),
            ("01.2.3", "1.2.3"),
        ] {
            assert_eq!(cfg("", input).source().unwrap(), LifecycleSource::Version(want.into()), "{input}");
        }
    }

    #[test]
    fn bad_semver() {
        for input in ["latest", "1.2.3.4", "1..2", "v", "1.2.3-", "1.2.3+a..b", " 1.2.3"] {
            let err = cfg("", input).source().unwrap_err();
            assert_eq!(
                err.to_string(),
                "'lifecycle.version' must be a valid semver: Invalid Semantic Version",
                "{input}"
            );
        }
        let err = cfg("", "99999999999999999999").source().unwrap_err();
        assert_eq!(
            err.to_string(),
            "'lifecycle.version' must be a valid semver: Error parsing version segment: strconv.ParseInt: parsing \"99999999999999999999\": value out of range"
        );
    }
}
