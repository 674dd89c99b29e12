//! Trusted builders: pack's built-in list and the `[[trusted-builders]]` of its configuration.
//!
//! pack runs every lifecycle phase of a build in one container (the creator) with a trusted
//! builder; `builder inspect` reports `Trusted: Yes` for one. The rules are pack's:
//!
//! * A builder is **known trusted** when its name is one of [`KNOWN_TRUSTED_BUILDERS`],
//!   compared as written (`heroku/builder:24` is, `docker.io/heroku/builder:24` is not).
//! * A configured entry **with** a tag or digest trusts exactly that reference: the builder's
//!   registry, repository and tag (or digest) must be the entry's, after normalisation
//!   (`index.docker.io`, `library/`). A builder name without a tag does not match an entry
//!   with one.
//! * A configured entry **without** a tag or digest trusts every builder whose repository
//!   path is the entry's, on any registry (pack compares the repository path alone):
//!   `paketo/builder` trusts `paketo/builder:base` and `gcr.io/paketo/builder:1`.

use crate::reference::{ImageRef, RefError};

/// The builders pack trusts without configuration (pack's known builders marked trusted).
pub const KNOWN_TRUSTED_BUILDERS: &[&str] = &[
    "gcr.io/buildpacks/builder:google-22",
    "heroku/builder:26",
    "heroku/builder:24",
    "heroku/builder:22",
    "heroku/builder:20",
    "paketobuildpacks/builder-jammy-base",
    "paketobuildpacks/builder-jammy-full",
    "paketobuildpacks/builder-jammy-tiny",
    "paketobuildpacks/builder-jammy-buildpackless-static",
    "paketobuildpacks/ubuntu-noble-builder",
    "paketobuildpacks/builder-ubi8-base",
    "paketobuildpacks/ubi-9-builder",
    "paketobuildpacks/ubi-10-builder",
];

/// Whether `name` is one of pack's known trusted builders (exact string match).
pub fn is_known_trusted(name: &str) -> bool {
    KNOWN_TRUSTED_BUILDERS.contains(&name)
}

/// A `[[trusted-builders]]` entry that is not an image reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid trusted builder '{}' in the configuration", cnbx_fs::excerpt(entry))]
pub struct TrustedError {
    /// The entry as written.
    pub entry: String,
    /// Why it is not a reference.
    #[source]
    pub source: RefError,
}

/// Whether the configured `entries` trust the builder `name` (see the module docs).
/// `Ok(false)` when `name` is not an image reference (an `oci:` layout, say); an entry that
/// is not a reference is an error, as in pack.
pub fn is_trusted_by(entries: &[String], name: &str) -> Result<bool, TrustedError> {
    let Ok(builder) = ImageRef::parse(name) else { return Ok(false) };
    for entry in entries {
        let trusted = ImageRef::parse(entry).map_err(|source| TrustedError { entry: entry.clone(), source })?;
        let matched = if trusted.tag().is_some() || trusted.digest().is_some() {
            builder.registry() == trusted.registry()
                && builder.repository() == trusted.repository()
                && identifier(&builder) == identifier(&trusted)
        } else {
            builder.repository() == trusted.repository()
        };
        if matched {
            return Ok(true);
        }
    }
    Ok(false)
}

/// What a reference names within its repository: its digest when it has one (a tag next to
/// a digest is not part of the name), else its tag (none when it has neither).
fn identifier(r: &ImageRef) -> (Option<&str>, Option<&str>) {
    match r.digest() {
        Some(d) => (None, Some(d)),
        None => (r.tag(), None),
    }
}

/// Whether `name` is trusted: known, or by `entries`.
pub fn is_trusted(entries: &[String], name: &str) -> Result<bool, TrustedError> {
    Ok(is_known_trusted(name) || is_trusted_by(entries, name)?)
}

/// Every trusted builder for `trusted-builders list`: the known ones and `entries`, sorted
/// by byte order (duplicates kept, as pack lists them).
pub fn list(entries: &[String]) -> Vec<String> {
    let mut all: Vec<String> =
        KNOWN_TRUSTED_BUILDERS.iter().map(|s| (*s).to_owned()).chain(entries.iter().cloned()).collect();
    all.sort();
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| (*x).to_owned()).collect()
    }

    #[test]
    fn known_builders_match_as_written() {
        assert!(is_known_trusted("heroku/builder:26"));
        assert!(is_known_trusted("paketobuildpacks/ubi-10-builder"));
        assert!(!is_known_trusted("docker.io/heroku/builder:24"));
        assert!(!is_known_trusted("heroku/builder"));
        assert!(is_trusted(&[], "heroku/builder:20").expect("valid"));
    }

    #[test]
    fn entries_without_a_tag_match_the_repository_on_any_registry() {
        let entries = s(&["paketo/builder"]);
        for name in ["paketo/builder", "paketo/builder:base", "docker.io/paketo/builder:1", "gcr.io/paketo/builder:x"] {
            assert!(is_trusted_by(&entries, name).expect("valid"), "{name}");
        }
        assert!(!is_trusted_by(&entries, "paketo/builder-other:1").expect("valid"));
        assert!(!is_trusted_by(&entries, "gcr.io/other/paketo/builder").expect("valid"));
        // Docker Hub's `library/` counts.
        assert!(is_trusted_by(&s(&["mybuilder"]), "docker.io/library/mybuilder:1").expect("valid"));
    }

    #[test]
    fn entries_with_a_tag_or_digest_match_exactly_that() {
        let entries = s(&["docker.io/paketo/builder:base"]);
        assert!(is_trusted_by(&entries, "paketo/builder:base").expect("valid"));
        assert!(is_trusted_by(&entries, "index.docker.io/paketo/builder:base").expect("valid"));
        assert!(!is_trusted_by(&entries, "paketo/builder").expect("valid"));
        assert!(!is_trusted_by(&entries, "paketo/builder:full").expect("valid"));
        assert!(!is_trusted_by(&entries, "gcr.io/paketo/builder:base").expect("valid"));
        let digest = format!("sha256:{}", "b".repeat(64));
        let entries = vec![format!("paketo/builder@{digest}")];
        assert!(is_trusted_by(&entries, &format!("paketo/builder:x@{digest}")).expect("valid"));
        assert!(!is_trusted_by(&entries, "paketo/builder:x").expect("valid"));
    }

    #[test]
    fn bad_entries_are_errors_and_bad_names_are_untrusted() {
        let err = is_trusted_by(&s(&["Bad/Entry"]), "a/b").expect_err("invalid entry");
        assert!(err.to_string().starts_with("invalid trusted builder 'Bad/Entry'"), "{err}");
        assert!(!is_trusted_by(&s(&["Bad/Entry"]), "oci:/tmp/layout").expect("not a reference"));
    }

    #[test]
    fn list_is_sorted_with_the_known_builders() {
        let all = list(&s(&["a/b", "zz/top"]));
        assert_eq!(all.first().map(String::as_str), Some("a/b"));
        assert_eq!(all.last().map(String::as_str), Some("zz/top"));
        assert_eq!(all.len(), KNOWN_TRUSTED_BUILDERS.len() + 2);
    }
}
