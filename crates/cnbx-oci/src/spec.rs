//! OCI image-spec and Docker v2 schema 2 documents: descriptors, manifests, indexes.
//!
//! These are our own serde types rather than `oci-spec`'s: every map is a `BTreeMap`, so
//! serialising the same value always produces the same bytes (oci-spec uses `HashMap`s, which
//! made config digests vary between runs), and field order follows the OCI spec examples.
//! Documents are hashed exactly as serialised by [`to_canonical_json`]; a document read from
//! elsewhere keeps its original bytes next to the parsed value, because re-serialising it could
//! change its digest.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;

/// Media types the tool reads or writes.
pub mod media_type {
    /// OCI image manifest.
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    /// OCI image index.
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    /// OCI image config.
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    /// OCI gzip layer.
    pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    /// OCI uncompressed layer.
    pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
    /// OCI zstd layer (read-only support: recognised, not produced).
    pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
    /// Docker schema 2 manifest.
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    /// Docker manifest list.
    pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
    /// Docker image config.
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    /// Docker gzip layer.
    pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    /// Docker foreign (non-distributable) layer.
    pub const DOCKER_LAYER_FOREIGN: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";

    /// Whether `mt` is an image manifest (OCI or Docker).
    pub fn is_manifest(mt: &str) -> bool {
        mt == OCI_MANIFEST || mt == DOCKER_MANIFEST
    }

    /// Whether `mt` is an index or manifest list (OCI or Docker).
    pub fn is_index(mt: &str) -> bool {
        mt == OCI_INDEX || mt == DOCKER_MANIFEST_LIST
    }

    /// Whether a layer of this media type is gzip-compressed.
    pub fn is_gzip_layer(mt: &str) -> bool {
        mt.ends_with("gzip")
    }

    /// Every manifest-ish media type, for `Accept` headers.
    pub const ALL_MANIFESTS: &[&str] = &[OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST];
}

/// Annotation naming a tag inside an OCI image layout's `index.json`.
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";

/// A platform as found in an index entry or requested by the user (`os/arch[/variant]`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
pub struct Platform {
    /// CPU architecture, GOARCH values (`amd64`, `arm64`, ...).
    pub architecture: String,
    /// Operating system, GOOS values (`linux`, `windows`, ...).
    pub os: String,
    /// OS version (Windows).
    #[serde(rename = "os.version", default, skip_serializing_if = "Option::is_none")]
    pub os_version: Option<String>,
    /// OS features (Windows).
    #[serde(rename = "os.features", default, skip_serializing_if = "Option::is_none")]
    pub os_features: Option<Vec<String>>,
    /// CPU variant (`v8`, `v7`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    /// A platform from its parts; an empty variant means none.
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Self {
        Self {
            architecture: architecture.to_owned(),
            os: os.to_owned(),
            os_version: None,
            os_features: None,
            variant: variant.filter(|v| !v.is_empty()).map(str::to_owned),
        }
    }

    /// Parses `os/arch[/variant]`.
    pub fn parse(s: &str) -> Option<Self> {
        let mut parts = s.split('/');
        let os = parts.next().filter(|p| !p.is_empty())?;
        let arch = parts.next().filter(|p| !p.is_empty())?;
        let variant = parts.next();
        if parts.next().is_some() {
            return None;
        }
        Some(Self::new(os, arch, variant))
    }

    /// Whether an image of platform `candidate` satisfies this requested platform.
    ///
    /// os and architecture must be equal; a requested variant must be equal too, except that
    /// `arm64` without a variant in the candidate counts as `v8` (as containerd does).
    pub fn matches(&self, candidate: &Self) -> bool {
        if self.os != candidate.os || self.architecture != candidate.architecture {
            return false;
        }
        match (&self.variant, &candidate.variant) {
            (None, _) => true,
            (Some(want), Some(have)) => want == have,
            (Some(want), None) => self.architecture == "arm64" && want == "v8",
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// A content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type of the referenced content.
    pub media_type: String,
    /// Digest of the referenced content.
    pub digest: Digest,
    /// Size in bytes of the referenced content.
    pub size: u64,
    /// Alternative download URLs (foreign layers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Platform, in index entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
}

impl Descriptor {
    /// A descriptor without urls, annotations or platform.
    pub fn new(media_type: impl Into<String>, digest: Digest, size: u64) -> Self {
        Self { media_type: media_type.into(), digest, size, urls: None, annotations: None, platform: None }
    }

    /// The `org.opencontainers.image.ref.name` annotation, if any.
    pub fn ref_name(&self) -> Option<&str> {
        self.annotations.as_ref()?.get(ANNOTATION_REF_NAME).map(String::as_str)
    }
}

/// An image manifest (OCI or Docker schema 2; both share this shape).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Always 2.
    pub schema_version: u32,
    /// `application/vnd.oci.image.manifest.v1+json` or the Docker equivalent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The image config blob.
    pub config: Descriptor,
    /// Layer blobs, base first.
    pub layers: Vec<Descriptor>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// An image index (OCI) or manifest list (Docker).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    /// Always 2.
    pub schema_version: u32,
    /// `application/vnd.oci.image.index.v1+json` or the Docker equivalent (absent in layout `index.json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// Entries.
    pub manifests: Vec<Descriptor>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

impl Index {
    /// An empty OCI index.
    pub fn new_oci() -> Self {
        Self {
            schema_version: 2,
            media_type: Some(media_type::OCI_INDEX.to_owned()),
            manifests: Vec::new(),
            annotations: None,
        }
    }
}

/// Serialises a document deterministically: compact JSON with keys in struct order
/// (and sorted within maps). This is what we hash and what we push.
pub fn to_canonical_json<T: Serialize>(value: &T) -> Vec<u8> {
    // Serialising these types cannot fail: no non-string map keys, no custom errors.
    serde_json::to_vec(value).unwrap_or_else(|e| unreachable!("serialising an OCI document failed: {e}"))
}

/// Why a JSON document could not be parsed, as cnbx shows it: serde_json's message, which
/// may quote the document, cut to an [excerpt](cnbx_fs::excerpt), with the line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError(String);

impl From<serde_json::Error> for JsonError {
    fn from(e: serde_json::Error) -> Self {
        let full = e.to_string();
        if e.line() == 0 {
            return Self(cnbx_fs::excerpt(&full));
        }
        let position = format!(" at line {} column {}", e.line(), e.column());
        let message = full.strip_suffix(&position).unwrap_or(&full);
        Self(format!("{}{position}", cnbx_fs::excerpt(message)))
    }
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for JsonError {}

/// A JSON document together with the exact bytes it was read from (or hashed as).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Raw<T> {
    /// The parsed value.
    pub value: T,
    /// The exact bytes; `digest` is their sha256.
    pub bytes: Vec<u8>,
    /// sha256 of `bytes`.
    pub digest: Digest,
}

impl<T: Serialize> Raw<T> {
    /// Serialises `value` canonically and hashes it.
    pub fn new(value: T) -> Self {
        let bytes = to_canonical_json(&value);
        let digest = Digest::of(&bytes);
        Self { value, bytes, digest }
    }
}

impl<T: serde::de::DeserializeOwned> Raw<T> {
    /// Parses `bytes`, keeping them.
    pub fn parse(bytes: Vec<u8>) -> serde_json::Result<Self> {
        let value = serde_json::from_slice(&bytes)?;
        let digest = Digest::of(&bytes);
        Ok(Self { value, bytes, digest })
    }
}

impl<T> Raw<T> {
    /// A descriptor for these bytes.
    pub fn descriptor(&self, media_type: &str) -> Descriptor {
        Descriptor::new(media_type, self.digest.clone(), self.bytes.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_parse_and_match() {
        let p = Platform::parse("linux/arm64/v8").unwrap();
        assert_eq!(p.to_string(), "linux/arm64/v8");
        assert!(p.matches(&Platform::new("linux", "arm64", None)));
        assert!(!p.matches(&Platform::new("linux", "amd64", None)));
        assert!(Platform::parse("linux").is_none());
        assert!(Platform::parse("linux/amd64/v1/x").is_none());
        assert!(Platform::parse("linux/amd64").unwrap().matches(&Platform::new("linux", "amd64", Some("v2"))));
    }

    #[test]
    fn json_errors_quote_an_excerpt_of_the_document() {
        let long = format!("{{\"schemaVersion\":\"{}\\n\\u001b[31m\"}}", "x".repeat(1000));
        let e = JsonError::from(serde_json::from_str::<Manifest>(&long).unwrap_err()).to_string();
        assert!(e.len() < 200, "{e}");
        assert!(!e.contains('\n') && !e.contains('\u{1b}'), "{e}");
        assert!(e.ends_with("… at line 1 column 1031"), "{e}");
    }

    #[test]
    fn manifest_serialises_in_spec_order() {
        let m = Manifest {
            schema_version: 2,
            media_type: Some(media_type::OCI_MANIFEST.into()),
            config: Descriptor::new(media_type::OCI_CONFIG, Digest::empty(), 0),
            layers: vec![],
            annotations: None,
        };
        let s = String::from_utf8(to_canonical_json(&m)).unwrap();
        assert!(
            s.starts_with(
                r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType""#
            ),
            "{s}"
        );
        let back: Raw<Manifest> = Raw::parse(s.into_bytes()).unwrap();
        assert_eq!(back.value, m);
        assert_eq!(Raw::new(m).digest, back.digest);
    }
}
