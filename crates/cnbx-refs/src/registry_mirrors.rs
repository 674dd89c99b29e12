//! Registry mirrors: pack's `[registry-mirrors]` table, which sends every image fetch for a
//! registry to another host.
//!
//! ```toml
//! [registry-mirrors]
//!   "index.docker.io" = "mirror.example.com"
//!   "*" = "airgap.example.com:5000/all"
//! ```
//!
//! # Rules (pack's)
//!
//! * The key `*` matches every image; otherwise the key must equal the image's registry as
//!   normalised for references: `index.docker.io` for a name without a registry (and for
//!   `docker.io/...`), the host in lower case, the port kept. A key `docker.io` therefore
//!   never matches (pack's rule too); `cnbx config registry-mirrors add` warns about it.
//! * The image is then fetched as `<mirror>/<repository>:<tag>` (or `@<digest>`): the
//!   repository with Docker Hub's `library/` prefix where it has one, the tag `latest` when
//!   the name has neither tag nor digest, the digest alone when it has both. The mirror may
//!   carry a path (`host/prefix`), which goes before the repository.
//! * Only fetches change. The names cnbx writes (into a builder's labels and files, into the
//!   local store, into messages) stay the names as written.

use std::collections::BTreeMap;

use crate::reference::{ImageRef, RefError};

/// The key that matches every registry.
pub const ANY_REGISTRY: &str = "*";

/// The mirrors of `[registry-mirrors]`: registry (or `*`) → mirror.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryMirrors {
    mirrors: BTreeMap<String, String>,
}

/// A registry mirror that makes an invalid image reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "registry mirror '{}' (for '{}') makes '{}' an invalid image reference; fix the mirror with 'cnbx config registry-mirrors'",
    cnbx_fs::excerpt(mirror),
    cnbx_fs::excerpt(key),
    cnbx_fs::excerpt(image)
)]
pub struct MirrorError {
    /// The `[registry-mirrors]` key that matched.
    pub key: String,
    /// Its mirror.
    pub mirror: String,
    /// The image being fetched, as written.
    pub image: String,
    /// Why the rewritten name is not a reference.
    #[source]
    pub source: RefError,
}

impl RegistryMirrors {
    /// Mirrors from `(registry, mirror)` pairs (a later pair replaces an earlier one with the
    /// same key).
    pub fn new<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        Self { mirrors: pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect() }
    }

    /// Whether no mirror is configured.
    pub fn is_empty(&self) -> bool {
        self.mirrors.is_empty()
    }

    /// The `[registry-mirrors]` key and mirror that apply to `reference`, if any: `*` first,
    /// then its registry.
    pub fn lookup(&self, reference: &ImageRef) -> Option<(&str, &str)> {
        if let Some((k, v)) = self.mirrors.get_key_value(ANY_REGISTRY) {
            return Some((k, v));
        }
        self.mirrors
            .iter()
            .find(|(k, _)| k.to_ascii_lowercase() == reference.registry())
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Where `reference` is fetched from: `None` when no mirror applies, else the name on the
    /// mirror (see the module docs). Its [`ImageRef::original`] is the rewritten name.
    pub fn rewrite(&self, reference: &ImageRef) -> Result<Option<ImageRef>, MirrorError> {
        let Some((key, mirror)) = self.lookup(reference) else { return Ok(None) };
        let identifier = match (reference.digest(), reference.tag()) {
            (Some(digest), _) => format!("@{digest}"),
            (None, Some(tag)) => format!(":{tag}"),
            (None, None) => format!(":{}", crate::reference::DEFAULT_TAG),
        };
        let name = format!("{}/{}{identifier}", mirror.trim_end_matches('/'), reference.repository());
        ImageRef::parse(&name).map(Some).map_err(|source| MirrorError {
            key: key.to_owned(),
            mirror: mirror.to_owned(),
            image: reference.original().to_owned(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewrite(mirrors: &RegistryMirrors, name: &str) -> Option<String> {
        mirrors.rewrite(&ImageRef::parse(name).expect("reference")).expect("valid").map(|r| r.original().to_owned())
    }

    #[test]
    fn names_without_a_registry_are_docker_hub() {
        let m = RegistryMirrors::new([("index.docker.io", "mirror.example.com")]);
        assert_eq!(rewrite(&m, "alpine").as_deref(), Some("mirror.example.com/library/alpine:latest"));
        assert_eq!(rewrite(&m, "docker.io/paketo/run:base").as_deref(), Some("mirror.example.com/paketo/run:base"));
        assert_eq!(
            rewrite(&m, "index.docker.io/library/ubuntu:22.04").as_deref(),
            Some("mirror.example.com/library/ubuntu:22.04")
        );
        assert_eq!(rewrite(&m, "gcr.io/x/y:1"), None);
        assert_eq!(rewrite(&m, "registry-1.docker.io/x/y"), None);
    }

    #[test]
    fn the_wildcard_wins_and_keys_are_registries() {
        let m = RegistryMirrors::new([("*", "airgap.example.com:5000/all"), ("gcr.io", "g.example.com")]);
        assert_eq!(rewrite(&m, "gcr.io/x/y:1").as_deref(), Some("airgap.example.com:5000/all/x/y:1"));
        let m = RegistryMirrors::new([("gcr.io", "g.example.com"), ("localhost:5000", "127.0.0.1:6000")]);
        assert_eq!(rewrite(&m, "GCR.io/x/y:1").as_deref(), Some("g.example.com/x/y:1"));
        assert_eq!(rewrite(&m, "localhost:5000/r:t").as_deref(), Some("127.0.0.1:6000/r:t"));
        assert_eq!(rewrite(&m, "localhost:5001/r:t"), None);
        // pack compares with the normalised registry, which is never `docker.io`.
        let m = RegistryMirrors::new([("docker.io", "m.example.com")]);
        assert_eq!(rewrite(&m, "alpine"), None);
    }

    #[test]
    fn digests_are_kept_and_win_over_tags() {
        let digest = format!("sha256:{}", "a".repeat(64));
        let m = RegistryMirrors::new([("*", "m.example.com/")]);
        assert_eq!(rewrite(&m, &format!("x/y@{digest}")), Some(format!("m.example.com/x/y@{digest}")));
        assert_eq!(rewrite(&m, &format!("x/y:t@{digest}")), Some(format!("m.example.com/x/y@{digest}")));
    }

    #[test]
    fn a_mirror_that_makes_no_reference_is_an_error() {
        let m = RegistryMirrors::new([("*", "Bad Mirror")]);
        let err = m.rewrite(&ImageRef::parse("alpine").expect("ref")).expect_err("invalid");
        assert_eq!(
            err.to_string(),
            "registry mirror 'Bad Mirror' (for '*') makes 'alpine' an invalid image reference; fix the mirror with \
             'cnbx config registry-mirrors'"
        );
        assert!(RegistryMirrors::default().is_empty());
    }
}
