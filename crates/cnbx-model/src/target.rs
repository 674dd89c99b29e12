//! Targets: the platforms a builder is made for (builder.toml's `[[targets]]`, `--target`)
//! and a module supports (`[[targets]]` of a descriptor, the layers label), with pack's
//! `--target` syntax `[os][/arch][/variant]:[name@version];[name@version]`.

use std::fmt;

use cnbx_fs::excerpt;
use serde::{Deserialize, Serialize};

/// A platform (pack's `dist.Target`). JSON: `os` and `arch` always, `variant` and `distros`
/// when not empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct Target {
    /// `os`.
    pub os: String,
    /// `arch`.
    pub arch: String,
    /// `variant`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub variant: String,
    /// `[[targets.distros]]`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub distros: Vec<Distribution>,
}

/// A distribution of a target (pack's `dist.Distribution`); both fields omitted from JSON when
/// empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct Distribution {
    /// `name`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// `version`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub version: String,
}

/// A rejected target string: pack's error plus the warnings pack printed before it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}")]
pub struct TargetError {
    /// What is wrong.
    pub kind: TargetErrorKind,
    /// Warnings pack prints before failing (e.g. `unknown variant v8`), without `Warning: `.
    pub warnings: Vec<String>,
}

/// Why a target string was rejected (pack's `internal/target` wording; the string is quoted
/// as an excerpt).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TargetErrorKind {
    /// The string is empty.
    #[error("invalid target {}, atleast one of [os][/arch][/archVariant] must be specified", excerpt(.0))]
    Empty(String),
    /// os/arch/variant is not a known Go platform; holds the `/`-joined platform part.
    #[error("unknown target: '{}'", excerpt(.0))]
    UnknownPlatform(String),
    /// A distro starts with `@` (or is empty); holds the `@…` part.
    #[error("distro's versions '{}' cannot be specified without distro's name", excerpt(.0))]
    DistroWithoutName(String),
    /// A distro with more than one `@`.
    #[error("invalid distro: {}", excerpt(.0))]
    InvalidDistro(String),
}

/// Go's `GOOS` → `GOARCH` table as used by pack (`internal/target/platform.go`).
const OS_ARCHS: &[(&str, &[&str])] = &[
    ("aix", &["ppc64"]),
    ("android", &["386", "amd64", "arm", "arm64"]),
    ("darwin", &["amd64", "arm64"]),
    ("dragonfly", &["amd64"]),
    ("freebsd", &["386", "amd64", "arm"]),
    ("illumos", &["amd64"]),
    ("ios", &["arm64"]),
    ("js", &["wasm"]),
    (
        "linux",
        &[
            "386", "amd64", "arm", "arm64", "loong64", "mips", "mipsle", "mips64", "mips64le", "ppc64", "ppc64le",
            "riscv64", "s390x",
        ],
    ),
    ("netbsd", &["386", "amd64", "arm"]),
    ("openbsd", &["386", "amd64", "arm", "arm64"]),
    ("plan9", &["386", "amd64", "arm"]),
    ("solaris", &["amd64"]),
    ("wasip1", &["wasm"]),
    ("windows", &["386", "amd64", "arm", "arm64"]),
];

/// Go's arch → variant table as used by pack.
const ARCH_VARIANTS: &[(&str, &[&str])] = &[
    ("386", &["softfloat", "sse2"]),
    ("arm", &["v5", "v6", "v7"]),
    ("amd64", &["v1", "v2", "v3", "v4"]),
    ("mips", &["hardfloat", "softfloat"]),
    ("mipsle", &["hardfloat", "softfloat"]),
    ("mips64", &["hardfloat", "softfloat"]),
    ("mips64le", &["hardfloat", "softfloat"]),
    ("ppc64", &["power8", "power9"]),
    ("ppc64le", &["power8", "power9"]),
    ("wasm", &["satconv", "signext"]),
];

fn supports_os(os: &str) -> bool {
    OS_ARCHS.iter().any(|(o, _)| *o == os)
}

fn supports_arch(os: &str, arch: &str) -> bool {
    OS_ARCHS.iter().any(|(o, archs)| *o == os && archs.contains(&arch))
}

fn supports_variant(arch: &str, variant: &str) -> bool {
    variant.is_empty() || ARCH_VARIANTS.iter().any(|(a, variants)| *a == arch && variants.contains(&variant))
}

/// Whether os/arch/variant is a platform pack accepts (Go's known `GOOS`/`GOARCH` pairs).
pub fn supports_platform(os: &str, arch: &str, variant: &str) -> bool {
    supports_arch(os, arch) && supports_variant(arch, variant)
}

impl Target {
    /// Parses pack's `--target` syntax `[os][/arch][/variant]:[name@version];[name@version]`.
    ///
    /// Returns the target and pack's warnings (without the `Warning: ` prefix), e.g.
    /// `distro with name 'ubuntu' has no specific version!` or `unknown variant v9`.
    pub fn parse(s: &str) -> Result<(Target, Vec<String>), TargetError> {
        let mut warnings = Vec::new();
        match parse_target(s, &mut warnings) {
            Ok(target) => Ok((target, warnings)),
            Err(kind) => Err(TargetError { kind, warnings }),
        }
    }
}

fn parse_target(s: &str, warnings: &mut Vec<String>) -> Result<Target, TargetErrorKind> {
    let parts: Vec<&str> = s.split(':').collect();
    let mut platform: Vec<&str> = Vec::new();
    if parts.len() == 1 && parts[0].is_empty() {
        warnings.push("os/arch must be defined".to_string());
        return Err(TargetErrorKind::Empty(s.to_string()));
    }
    if parts.len() == 2 && parts[0].is_empty() {
        warnings.push(format!("adding distros {} without [os][/arch][/variant]", excerpt(parts[1])));
    } else {
        platform = parts[0].split('/').collect();
    }
    let distros = parts.get(1).copied().unwrap_or("");
    if platform.len() <= 1 && platform.first().copied().unwrap_or("").is_empty() {
        warnings.push("os/arch must be defined".to_string());
    }

    let os = platform.first().copied().unwrap_or("");
    let arch = platform.get(1).copied().unwrap_or("");
    let variant = platform.get(2).copied().unwrap_or("");
    if !supports_os(os) && supports_variant(arch, variant) {
        warnings.push(format!("unknown os {}, is this a typo", excerpt(os)));
    }
    if supports_arch(os, arch) && !supports_variant(arch, variant) {
        warnings.push(format!("unknown variant {}", excerpt(variant)));
    }
    if supports_os(os) && !supports_arch(os, arch) && supports_variant(arch, variant) {
        warnings.push(format!("unknown arch {}", excerpt(arch)));
    }
    if !supports_platform(os, arch, variant) {
        return Err(TargetErrorKind::UnknownPlatform(platform.join("/")));
    }

    let mut parsed = Vec::new();
    if !distros.is_empty() {
        for d in distros.split(';') {
            let fields: Vec<&str> = d.split('@').collect();
            if fields[0].is_empty() {
                return Err(TargetErrorKind::DistroWithoutName(format!("@{}", fields[1..].join("@"))));
            }
            match fields.len() {
                1 => {
                    warnings.push(format!("distro with name '{}' has no specific version!", excerpt(fields[0])));
                    parsed.push(Distribution { name: fields[0].to_string(), version: String::new() });
                }
                2 => parsed.push(Distribution { name: fields[0].to_string(), version: fields[1].to_string() }),
                _ => return Err(TargetErrorKind::InvalidDistro(d.to_string())),
            }
        }
    }
    let target = Target { os: os.to_string(), arch: arch.to_string(), variant: variant.to_string(), distros: parsed };
    Ok(target)
}

/// The non-empty parts of os, arch and variant joined with `/` (`linux/arm/v7`); distros are
/// not shown.
impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<&str> = [self.os.as_str(), self.arch.as_str(), self.variant.as_str()]
            .into_iter()
            .filter(|p| !p.is_empty())
            .collect();
        f.write_str(&parts.join("/"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(os: &str, arch: &str, variant: &str) -> Target {
        Target { os: os.into(), arch: arch.into(), variant: variant.into(), distros: vec![] }
    }

    #[test]
    fn parses_os_arch_variant() {
        assert_eq!(Target::parse("linux/arm/v6").unwrap(), (t("linux", "arm", "v6"), vec![]));
        assert_eq!(Target::parse("linux/amd64").unwrap(), (t("linux", "amd64", ""), vec![]));
        assert_eq!(Target::parse("windows/arm64").unwrap(), (t("windows", "arm64", ""), vec![]));
    }

    #[test]
    fn parses_distros() {
        let (target, warnings) = Target::parse("linux/amd64:ubuntu@22.04;debian@8.10;debian@10.06").unwrap();
        assert!(warnings.is_empty());
        assert_eq!(
            target.distros,
            vec![
                Distribution { name: "ubuntu".into(), version: "22.04".into() },
                Distribution { name: "debian".into(), version: "8.10".into() },
                Distribution { name: "debian".into(), version: "10.06".into() },
            ]
        );
        assert_eq!(target.to_string(), "linux/amd64");
    }

    #[test]
    fn distro_without_version_warns() {
        let (target, warnings) = Target::parse("linux/amd64:ubuntu").unwrap();
        assert_eq!(target.distros, vec![Distribution { name: "ubuntu".into(), version: String::new() }]);
        assert_eq!(warnings, vec!["distro with name 'ubuntu' has no specific version!"]);
    }

    #[test]
    fn distro_errors() {
        assert_eq!(
            Target::parse("linux/amd64:some-distro@22.04@20.08").unwrap_err().to_string(),
            "invalid distro: some-distro@22.04@20.08"
        );
        assert_eq!(
            Target::parse("linux/amd64:@22.04@20.08").unwrap_err().to_string(),
            "distro's versions '@22.04@20.08' cannot be specified without distro's name"
        );
        assert_eq!(
            Target::parse("linux/amd64:ubuntu@22.04;").unwrap_err().kind,
            TargetErrorKind::DistroWithoutName("@".into())
        );
    }

    #[test]
    fn empty_is_an_error() {
        assert_eq!(
            Target::parse("").unwrap_err().to_string(),
            "invalid target , atleast one of [os][/arch][/archVariant] must be specified"
        );
    }

    #[test]
    fn distros_without_platform_are_unknown_target() {
        // pack warns twice and then rejects the empty platform.
        assert_eq!(Target::parse(":distro@version").unwrap_err().to_string(), "unknown target: ''");
    }

    #[test]
    fn unknown_platforms() {
        assert_eq!(Target::parse("os/arm/v6").unwrap_err().to_string(), "unknown target: 'os/arm/v6'");
        assert_eq!(Target::parse("darwin/arm/v6").unwrap_err().to_string(), "unknown target: 'darwin/arm/v6'");
        assert_eq!(Target::parse("linux/arm/unknown").unwrap_err().to_string(), "unknown target: 'linux/arm/unknown'");
        // arm64 has no variants in Go's table, so pack rejects linux/arm64/v8.
        assert_eq!(
            Target::parse("linux/arm64/v8").unwrap_err().kind,
            TargetErrorKind::UnknownPlatform("linux/arm64/v8".into())
        );
        // An os alone has no arch.
        assert_eq!(Target::parse("linux").unwrap_err().to_string(), "unknown target: 'linux'");
    }

    #[test]
    fn warnings_before_errors() {
        let err = Target::parse("os/arm/v6").unwrap_err();
        assert_eq!(err.warnings, vec!["unknown os os, is this a typo"]);
        let err = Target::parse("darwin/arm/v6").unwrap_err();
        assert_eq!(err.warnings, vec!["unknown arch arm"]);
        let err = Target::parse("linux/arm/unknown").unwrap_err();
        assert_eq!(err.warnings, vec!["unknown variant unknown"]);
        let err = Target::parse(":distro@version").unwrap_err();
        assert_eq!(
            err.warnings,
            vec![
                "adding distros distro@version without [os][/arch][/variant]",
                "os/arch must be defined",
                "unknown os , is this a typo"
            ]
        );
        let err = Target::parse("").unwrap_err();
        assert_eq!(err.warnings, vec!["os/arch must be defined"]);
    }

    #[test]
    fn only_the_first_two_colon_parts_count() {
        let (target, _) = Target::parse("linux/amd64:ubuntu@22.04:ignored").unwrap();
        assert_eq!(target.distros.len(), 1);
    }

    #[test]
    fn display() {
        assert_eq!(t("linux", "arm64", "v8").to_string(), "linux/arm64/v8");
        assert_eq!(t("linux", "", "").to_string(), "linux");
        assert_eq!(t("", "", "").to_string(), "");
    }

    #[test]
    fn platform_table() {
        assert!(supports_platform("linux", "amd64", "v3"));
        assert!(supports_platform("linux", "s390x", ""));
        assert!(!supports_platform("linux", "amd64", "v9"));
        assert!(!supports_platform("freebsd", "arm64", ""));
    }
}
