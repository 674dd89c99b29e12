//! Platform rules: `BUILD-OS-SUPPORTED` (pack), `BOTH-OS-ARCH-VALID` (with the advisory
//! manifest/index cross-check), `BOTH-VARIANT-VALID` and `PAIR-TARGET-MATCH`.
//!
//! "Valid OCI identifiers" (open point 7): an empty `os` or `architecture` is an error; a value
//! outside Go's `GOOS`/`GOARCH` lists is a warning, because OCI itself only says SHOULD. Known
//! variants are OCI's table (`arm` `v6`/`v7`/`v8`, `arm64` `v8`) plus what Go and containerd
//! accept (`arm` `v5`, `arm64` `v8.x`/`v9.x`, `amd64` `v1`–`v4`); anything else warns.
//!
//! `PAIR-TARGET-MATCH` "if specified" (open point 5): `os` and `architecture` must be equal
//! (error). `variant` and the `io.buildpacks.base.distro.*` labels must be equal when both images
//! set them (error); when only one image sets one we **warn**: lifecycle treats an unset target
//! field as a wildcard, so the build still works, but it usually means one image was labelled
//! and the other was forgotten, and run-image selection by target can then pick differently
//! than the user expects. `arm64` with variant `v8` counts as no variant (containerd normalises
//! it that way), so it never warns against a plain `arm64`.

use super::Subject;
use crate::facts::ImageFacts;
use crate::finding::{Finding, Report, Role};
use crate::rules::labels::{DISTRO_NAME, DISTRO_VERSION};

const OS_ARCH: &str = "BOTH-OS-ARCH-VALID";
const VARIANT: &str = "BOTH-VARIANT-VALID";
const TARGET_MATCH: &str = "PAIR-TARGET-MATCH";

/// Go's `GOOS` values (`go/build/syslist.go`).
const KNOWN_OS: &[&str] = &[
    "aix",
    "android",
    "darwin",
    "dragonfly",
    "freebsd",
    "hurd",
    "illumos",
    "ios",
    "js",
    "linux",
    "nacl",
    "netbsd",
    "openbsd",
    "plan9",
    "solaris",
    "wasip1",
    "windows",
    "zos",
];

/// Go's `GOARCH` values (`go/build/syslist.go`).
const KNOWN_ARCH: &[&str] = &[
    "386",
    "amd64",
    "amd64p32",
    "arm",
    "armbe",
    "arm64",
    "arm64be",
    "loong64",
    "mips",
    "mipsle",
    "mips64",
    "mips64le",
    "mips64p32",
    "mips64p32le",
    "ppc",
    "ppc64",
    "ppc64le",
    "riscv",
    "riscv64",
    "s390",
    "s390x",
    "sparc",
    "sparc64",
    "wasm",
];

/// `BUILD-OS-SUPPORTED` (pack, `builder create`): the build image OS is one pack supports. An
/// empty OS is left to `BOTH-OS-ARCH-VALID`, which says that it is not set.
pub(crate) fn build_os_supported(s: &Subject<'_>, r: &mut Report) {
    if !s.facts.os.is_empty() {
        build_os(&s.facts.os, r);
    }
}

/// pack's check of the build image OS (`BUILD-OS-SUPPORTED`, pack's sentence), an empty OS
/// included.
pub(crate) fn build_os(os: &str, r: &mut Report) {
    if matches!(os, "linux" | "windows" | "freebsd") {
        return;
    }
    let fix = if os.is_empty() {
        "rebuild the build image with a tool that sets os in its config (linux for a Linux image)"
    } else {
        "use a linux, windows or freebsd build image"
    };
    r.error(
        "BUILD-OS-SUPPORTED",
        format!("provided image OS '{os}' must be either 'freebsd', 'linux' or 'windows'"),
        fix,
    );
}

/// `BOTH-OS-ARCH-VALID`: `os` and `architecture` are set and known; the index entry agrees.
pub(crate) fn os_arch_valid(s: &Subject<'_>, r: &mut Report) {
    let f = s.facts;
    for (field, value, known, example) in
        [("os", &f.os, KNOWN_OS, "linux or windows"), ("architecture", &f.architecture, KNOWN_ARCH, "amd64 or arm64")]
    {
        if value.is_empty() {
            r.error(
                OS_ARCH,
                format!("{field} is not set in the image config"),
                format!("rebuild the image with a tool that sets {field} in its config (e.g. {example})"),
            );
        } else if !known.contains(&value.as_str()) {
            r.warn(
                OS_ARCH,
                format!("{field} '{value}' is not a known Go {} value", if field == "os" { "GOOS" } else { "GOARCH" }),
                format!("use a standard value such as {example}"),
            );
        }
    }
    if let Some(index) = &f.index_platform {
        let index_variant = index.variant.as_deref().filter(|v| !v.is_empty());
        if index.os != f.os || index.architecture != f.architecture || index_variant != f.variant() {
            r.warn(
                OS_ARCH,
                format!(
                    "the index entry's platform {} differs from the image config's {}",
                    platform(&index.os, &index.architecture, index_variant),
                    platform(&f.os, &f.architecture, f.variant())
                ),
                "make the index entry's platform match the image config (rebuild or re-push the index)",
            );
        }
    }
}

fn platform(os: &str, arch: &str, variant: Option<&str>) -> String {
    match variant {
        Some(v) => format!("{os}/{arch}/{v}"),
        None => format!("{os}/{arch}"),
    }
}

/// The variants known for `arch`, for the message; `None` if `arch` has none.
fn known_variants(arch: &str) -> Option<&'static str> {
    match arch {
        "arm" => Some("v5, v6, v7 or v8"),
        "arm64" => Some("v8, v8.1…v8.9, v9 or v9.1…v9.5"),
        "amd64" => Some("v1, v2, v3 or v4"),
        _ => None,
    }
}

fn is_known_variant(arch: &str, variant: &str) -> bool {
    match arch {
        "arm" => matches!(variant, "v5" | "v6" | "v7" | "v8"),
        "arm64" => {
            let minor_ok = |rest: &str, max: u8| {
                rest.is_empty()
                    || rest.strip_prefix('.').is_some_and(|m| {
                        m.len() == 1 && m.as_bytes()[0].is_ascii_digit() && m.as_bytes()[0] - b'0' <= max
                    })
            };
            variant.strip_prefix("v8").is_some_and(|r| minor_ok(r, 9))
                || variant.strip_prefix("v9").is_some_and(|r| minor_ok(r, 5))
        }
        "amd64" => matches!(variant, "v1" | "v2" | "v3" | "v4"),
        _ => false,
    }
}

/// `BOTH-VARIANT-VALID`: a set `variant` is a known one for the architecture.
pub(crate) fn variant_valid(s: &Subject<'_>, r: &mut Report) {
    let arch = &s.facts.architecture;
    let Some(variant) = s.facts.variant() else { return };
    if is_known_variant(arch, variant) {
        return;
    }
    let (message, fix) = match known_variants(arch) {
        Some(list) => (
            format!("variant '{variant}' is not a known variant of architecture '{arch}'"),
            format!("use {list} as the variant, or leave it unset"),
        ),
        None => (
            format!("variant '{variant}' is set, but architecture '{arch}' has no known variants"),
            "leave the variant unset".to_owned(),
        ),
    };
    r.warn(VARIANT, message, fix);
}

/// The variant used for comparing targets (`arm64/v8` is plain `arm64`).
fn normalized_variant(f: &ImageFacts) -> Option<&str> {
    f.variant().filter(|v| !(f.architecture == "arm64" && *v == "v8"))
}

/// `PAIR-TARGET-MATCH`: a run image (or mirror) has the build image's target.
pub(crate) fn target_match(build: &Subject<'_>, other: &Subject<'_>, r: &mut Report) {
    let (b, o) = (build.facts, other.facts);
    let what = role_noun(other.role);
    for (field, bv, ov) in [("os", b.os.as_str(), o.os.as_str()), ("architecture", &b.architecture, &o.architecture)] {
        if bv != ov {
            r.error(
                TARGET_MATCH,
                format!("{field} '{ov}' does not match the build image '{}', which has '{bv}'", b.name),
                format!(
                    "use a {what} for {}, the build image's platform",
                    platform(&b.os, &b.architecture, normalized_variant(b))
                ),
            );
        }
    }
    let optional = [
        ("variant", normalized_variant(b), normalized_variant(o)),
        (DISTRO_NAME, b.non_empty_label(DISTRO_NAME), o.non_empty_label(DISTRO_NAME)),
        (DISTRO_VERSION, b.non_empty_label(DISTRO_VERSION), o.non_empty_label(DISTRO_VERSION)),
    ];
    for (field, bv, ov) in optional {
        let bname = &b.name;
        match (bv, ov) {
            (Some(bv), Some(ov)) if bv != ov => r.error(
                TARGET_MATCH,
                format!("{field} '{ov}' does not match the build image '{bname}', which has '{bv}'"),
                format!("use a {what} with {field} '{bv}', like the build image"),
            ),
            (Some(bv), None) => r.warn(
                TARGET_MATCH,
                format!("{field} is not set, but the build image '{bname}' has '{bv}'"),
                format!("set {field} on both images (or on neither)"),
            ),
            (None, Some(ov)) => r.warn(
                TARGET_MATCH,
                format!("{field} '{ov}' is set, but the build image '{bname}' has none"),
                format!("set {field} on both images (or on neither)"),
            ),
            _ => {}
        }
    }
}

/// `PAIR-TARGET-MATCH` for a run image or mirror without any manifest for the build image's
/// platform (see [`crate::platform_missing`]).
pub(crate) fn missing(build: &ImageFacts, role: Role, image: &str, wanted: &str, available: &str) -> Finding {
    let mut r = Report::new(role, image);
    r.error(
        TARGET_MATCH,
        format!(
            "has no manifest for platform {wanted}, the platform of the build image '{}' (it has: {available})",
            build.name
        ),
        format!(
            "use a {} that has a {wanted} image (an image index with an entry for {wanted}), or create the \
             builder for a platform both images have (--target)",
            role_noun(role)
        ),
    );
    r.finish().remove(0) // the one finding added above
}

/// How a fix names the image of `role` that is paired with the build image.
fn role_noun(role: Role) -> &'static str {
    if role == Role::Mirror { "mirror" } else { "run image" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants() {
        assert!(is_known_variant("arm", "v7"));
        assert!(is_known_variant("arm64", "v8"));
        assert!(is_known_variant("arm64", "v8.2"));
        assert!(is_known_variant("arm64", "v9"));
        assert!(!is_known_variant("arm64", "v9.7"));
        assert!(!is_known_variant("arm64", "v8.10"));
        assert!(!is_known_variant("arm", "v9"));
        assert!(is_known_variant("amd64", "v3"));
        assert!(!is_known_variant("s390x", "v1"));
    }
}
