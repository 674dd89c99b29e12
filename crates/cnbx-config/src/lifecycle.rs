//! `[lifecycle]`: which lifecycle to put in the builder (pack's rules: docs/pack-compatibility.md, *The lifecycle*).

use cnbx_model::{DEFAULT_LIFECYCLE_VERSION, LifecycleSource, Semver};

use crate::error::ConfigError;
use crate::model::LifecycleConfig;

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
        let version = if self.version.is_empty() { DEFAULT_LIFECYCLE_VERSION } else { &self.version };
        Semver::parse(version).map(LifecycleSource::Version).map_err(|e| ConfigError::LifecycleVersion {
            version: self.version.clone(),
            reason: e.semver_problem().map(ToString::to_string).unwrap_or_else(|| e.to_string()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(uri: &str, version: &str) -> LifecycleConfig {
        LifecycleConfig { uri: uri.into(), version: version.into() }
    }

    #[test]
    fn default_version() {
        assert_eq!(version(&cfg("", "")), "0.21.0");
    }

    fn version(c: &LifecycleConfig) -> String {
        match c.source().unwrap() {
            LifecycleSource::Version(v) => v.to_string(),
            other => panic!("{other:?}"),
        }
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
            assert_eq!(version(&cfg("", input)), want, "{input}");
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
