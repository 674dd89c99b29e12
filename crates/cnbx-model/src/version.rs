//! The two version types of the CNB data, with the parsing and printing rules of the Go types
//! pack and the lifecycle use for them: [`ApiVersion`] (buildpack and platform APIs) and
//! [`Semver`] (lifecycle versions, Masterminds/semver v1). This is the one parser of each.

use std::fmt;

use cnbx_fs::excerpt;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A buildpack or platform API version (lifecycle's `api.Version`): `major.minor`.
///
/// Parsing follows `^v?(\d+)\.?(\d*)$` (ASCII digits, unsigned 64-bit): `0.7`, `v0.7`, `1`
/// (= `1.0`) and `1.` (= `1.0`) are accepted, leading zeros are dropped (`0.07` = `0.7`).
/// It always prints and serialises as `major.minor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ApiVersion {
    /// The major version.
    pub major: u64,
    /// The minor version.
    pub minor: u64,
}

/// An invalid version string (quoted as an excerpt).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    /// Not an API version.
    #[error("invalid api version '{}'", excerpt(.0))]
    Api(String),
    /// Not a semantic version (in the permissive sense of Masterminds/semver v1).
    #[error("invalid semantic version '{}'", excerpt(.input))]
    Semver {
        /// The string.
        input: String,
        /// What is wrong with it, in Masterminds/semver's words.
        problem: SemverProblem,
    },
}

/// Why a string is not a [`Semver`], worded as Masterminds/semver (which pack prints).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SemverProblem {
    /// It does not have the shape of a version.
    #[error("Invalid Semantic Version")]
    Invalid,
    /// A number does not fit a signed 64-bit integer.
    #[error("Error parsing version segment: strconv.ParseInt: parsing \"{}\": value out of range", excerpt(.0))]
    OutOfRange(String),
}

impl VersionError {
    /// For a [`Semver`] error, what is wrong in Masterminds/semver's words.
    pub fn semver_problem(&self) -> Option<&SemverProblem> {
        match self {
            Self::Semver { problem, .. } => Some(problem),
            Self::Api(_) => None,
        }
    }
}

impl ApiVersion {
    /// `major.minor`.
    pub const fn new(major: u64, minor: u64) -> Self {
        Self { major, minor }
    }

    /// Parses `s` as lifecycle does.
    pub fn parse(s: &str) -> Result<Self, VersionError> {
        let err = || VersionError::Api(s.to_owned());
        let rest = s.strip_prefix('v').unwrap_or(s);
        let major_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        if major_len == 0 {
            return Err(err());
        }
        let (major, rest) = rest.split_at(major_len);
        let rest = rest.strip_prefix('.').unwrap_or(rest);
        if !rest.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err());
        }
        let major = major.parse().map_err(|_| err())?;
        let minor = if rest.is_empty() { 0 } else { rest.parse().map_err(|_| err())? };
        Ok(Self { major, minor })
    }

    /// The earliest of `versions` (pack's `APISet.Earliest`).
    pub fn earliest<'a>(versions: impl IntoIterator<Item = &'a ApiVersion>) -> Option<ApiVersion> {
        versions.into_iter().copied().min()
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl std::str::FromStr for ApiVersion {
    type Err = VersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for ApiVersion {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ApiVersion {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A semantic version as pack keeps it (`Masterminds/semver` v1): lifecycle versions.
///
/// Parsing is permissive: `v` prefix, missing minor/patch (`0.21` = `0.21.0`), leading zeros,
/// pre-release and build metadata made of `[0-9A-Za-z-]` identifiers; numbers are signed
/// 64-bit. Two spellings are kept because pack prints both:
///
/// * [`Display`](fmt::Display) and serde (JSON, labels) give the **normalised** form
///   `major.minor.patch[-pre][+meta]` — Go's `encoding/json` uses the semver type's
///   `MarshalJSON`, and the human-readable inspect output calls `String()`;
/// * [`original`](Self::original) is the string as parsed — pack's YAML and TOML inspect
///   output go through `MarshalText`, which returns it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Semver {
    original: String,
    major: i64,
    minor: i64,
    patch: i64,
    pre: String,
    meta: String,
}

impl Semver {
    /// Parses `s` as `semver.NewVersion` (Masterminds v1) does.
    pub fn parse(s: &str) -> Result<Self, VersionError> {
        let err = |problem| VersionError::Semver { input: s.to_owned(), problem };
        let rest = s.strip_prefix('v').unwrap_or(s);
        let (core, meta) = match rest.split_once('+') {
            Some((core, meta)) => (core, Some(meta)),
            None => (rest, None),
        };
        let (numbers, pre) = match core.split_once('-') {
            Some((numbers, pre)) => (numbers, Some(pre)),
            None => (core, None),
        };
        for ids in [pre, meta].into_iter().flatten() {
            let valid_id = |id: &str| !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
            if !ids.split('.').all(valid_id) {
                return Err(err(SemverProblem::Invalid));
            }
        }
        let parts: Vec<&str> = numbers.split('.').collect();
        if parts.len() > 3 || parts.iter().any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit())) {
            return Err(err(SemverProblem::Invalid));
        }
        let mut nums = [0i64; 3];
        for (slot, part) in nums.iter_mut().zip(&parts) {
            *slot = part.parse().map_err(|_| err(SemverProblem::OutOfRange((*part).to_owned())))?;
        }
        Ok(Self {
            original: s.to_owned(),
            major: nums[0],
            minor: nums[1],
            patch: nums[2],
            pre: pre.unwrap_or_default().to_owned(),
            meta: meta.unwrap_or_default().to_owned(),
        })
    }

    /// The string this version was parsed from.
    pub fn original(&self) -> &str {
        &self.original
    }
}

impl fmt::Display for Semver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        if !self.pre.is_empty() {
            write!(f, "-{}", self.pre)?;
        }
        if !self.meta.is_empty() {
            write!(f, "+{}", self.meta)?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Semver {
    type Err = VersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for Semver {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Semver {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_versions_parse_like_lifecycle() {
        let ok = [
            ("0.7", (0, 7)),
            ("v0.10", (0, 10)),
            ("1", (1, 0)),
            ("12", (12, 0)),
            ("1.", (1, 0)),
            ("0.07", (0, 7)),
            ("007", (7, 0)),
        ];
        for (s, (major, minor)) in ok {
            assert_eq!(ApiVersion::parse(s), Ok(ApiVersion::new(major, minor)), "{s}");
        }
        for s in ["", "v", ".7", "0.7.1", "0.x", "V0.7", " 0.7", "0.7 ", "１", "99999999999999999999"] {
            assert!(ApiVersion::parse(s).is_err(), "{s}");
        }
        assert_eq!(ApiVersion::new(0, 10).to_string(), "0.10");
        assert!(ApiVersion::new(0, 10) > ApiVersion::new(0, 9));
        assert_eq!(
            ApiVersion::earliest(&[ApiVersion::new(0, 10), ApiVersion::new(0, 7), ApiVersion::new(1, 0)]),
            Some(ApiVersion::new(0, 7))
        );
        assert_eq!(ApiVersion::earliest(&[]), None);
    }

    #[test]
    fn semvers_parse_like_masterminds_v1() {
        let ok = [
            ("0.21.0", "0.21.0"),
            ("v0.21", "0.21.0"),
            ("1", "1.0.0"),
            ("01.002.3", "1.2.3"),
            ("1.2.3-rc.1", "1.2.3-rc.1"),
            ("1.2.3+build-5.x", "1.2.3+build-5.x"),
            ("v1.2.3-rc.1+build.5", "1.2.3-rc.1+build.5"),
            ("1-2", "1.0.0-2"),
            ("0.20.0-a-b+c", "0.20.0-a-b+c"),
        ];
        for (s, normalized) in ok {
            let v = Semver::parse(s).unwrap();
            assert_eq!(v.to_string(), normalized, "{s}");
            assert_eq!(v.original(), s);
        }
        for s in [
            "",
            "v",
            "x1",
            "1.2.3+c+",
            "1.2.3.4",
            "1..2",
            "1.2.",
            "1.2.3-",
            "1.2.3-a..b",
            "1.2.3+",
            "1.2.3_4",
            "V1",
            "latest",
            " 1.2.3",
            "1.2.3+a..b",
        ] {
            let e = Semver::parse(s).unwrap_err();
            assert_eq!(e.semver_problem(), Some(&SemverProblem::Invalid), "{s}");
        }
        let e = Semver::parse("99999999999999999999").unwrap_err();
        assert_eq!(
            e.semver_problem().unwrap().to_string(),
            "Error parsing version segment: strconv.ParseInt: parsing \"99999999999999999999\": value out of range"
        );
        assert!(Semver::parse("9223372036854775808").is_err());
    }

    #[test]
    fn errors_quote_an_excerpt() {
        let long = "x".repeat(10_000);
        assert!(ApiVersion::parse(&long).unwrap_err().to_string().len() < 200);
        assert!(Semver::parse(&long).unwrap_err().to_string().len() < 200);
        assert_eq!(ApiVersion::parse("zero").unwrap_err().to_string(), "invalid api version 'zero'");
        assert_eq!(Semver::parse("banana").unwrap_err().to_string(), "invalid semantic version 'banana'");
    }
}
