//! The image model shared by every transport: an image read from somewhere
//! ([`SourceImage`]) and an image about to be written ([`ImageToWrite`]).
//!
//! Layer blobs are never copied into memory. Each layer says where its blob can be had
//! ([`BlobSource`]): a local blob store (the cnbx store, or an OCI layout directory), or a
//! repository on a registry (from which it is mounted, streamed registry-to-registry, or
//! pulled into a local store when its content is needed).

use crate::config::ImageConfig;
use crate::digest::Digest;
use crate::spec::{Descriptor, Index, Manifest, Platform, Raw, media_type};

use cnbx_refs::ImageRef;

/// Where a blob can be read from.
#[derive(Debug, Clone)]
pub enum BlobSource {
    /// A local content-addressed store (the cnbx store or an OCI layout directory).
    Store(crate::blobstore::BlobStore),
    /// A repository on a registry.
    Registry(ImageRef),
}

/// One layer: its blob descriptor, its uncompressed digest, and where the blob is.
#[derive(Debug, Clone)]
pub struct LayerBlob {
    /// Descriptor of the (usually gzip-compressed) blob.
    pub descriptor: Descriptor,
    /// sha256 of the uncompressed tar.
    pub diff_id: Digest,
    /// Where the blob can be read.
    pub source: BlobSource,
}

/// An image read from a transport.
#[derive(Debug, Clone)]
pub struct SourceImage {
    /// Human-readable name of where it came from (`oci:/x:tag`, `registry.io/a/b:1`).
    pub display_name: String,
    /// The manifest, with its exact bytes.
    pub manifest: Raw<Manifest>,
    /// The config, parsed.
    pub config: ImageConfig,
    /// The config's exact bytes and digest.
    pub config_raw: Raw<serde_json::Value>,
    /// Platform as stated by the index entry the manifest was selected from, if any.
    pub index_platform: Option<Platform>,
    /// Where the layer blobs (and config) are.
    pub source: BlobSource,
}

/// An image model could not be built from what was read.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// Number of layers and diffIDs differ.
    #[error("image {image} is inconsistent: {layers} layers but {diff_ids} diff_ids in its config")]
    LayerCountMismatch {
        /// Which image.
        image: String,
        /// Layers in the manifest.
        layers: usize,
        /// diff_ids in the config.
        diff_ids: usize,
    },
    /// The config is malformed (its [`ConfigError`](crate::config::ConfigError) says how).
    #[error("image {image}")]
    Config {
        /// Which image.
        image: String,
        /// What is wrong.
        #[source]
        source: crate::config::ConfigError,
    },
    /// No manifest for the requested platform.
    #[error("image {image} has no manifest for platform {platform} (it has: {available})")]
    NoMatchingPlatform {
        /// Which image.
        image: String,
        /// Requested platform.
        platform: String,
        /// Platforms present, comma-separated.
        available: String,
    },
}

impl SourceImage {
    /// The image's layers, base first, with their diffIDs.
    pub fn layers(&self) -> Result<Vec<LayerBlob>, ImageError> {
        let diff_ids =
            self.config.diff_ids().map_err(|source| ImageError::Config { image: self.display_name.clone(), source })?;
        let layers = &self.manifest.value.layers;
        if diff_ids.len() != layers.len() {
            return Err(ImageError::LayerCountMismatch {
                image: self.display_name.clone(),
                layers: layers.len(),
                diff_ids: diff_ids.len(),
            });
        }
        Ok(layers
            .iter()
            .zip(diff_ids)
            .map(|(descriptor, diff_id)| LayerBlob {
                descriptor: descriptor.clone(),
                diff_id,
                source: self.source.clone(),
            })
            .collect())
    }

    /// The platform of the image (from its config).
    pub fn platform(&self) -> Platform {
        self.config.platform()
    }
}

/// An image ready to be written by a transport.
#[derive(Debug, Clone)]
pub struct ImageToWrite {
    /// Manifest media type to write (OCI, or Docker schema 2 to keep a Docker base's type).
    pub manifest_media_type: String,
    /// Config media type matching the manifest media type.
    pub config_media_type: String,
    /// Canonical config bytes.
    pub config: Raw<serde_json::Value>,
    /// Layers, base first.
    pub layers: Vec<LayerBlob>,
    /// Platform (recorded in index entries).
    pub platform: Platform,
    /// Manifest annotations.
    pub annotations: Option<std::collections::BTreeMap<String, String>>,
}

impl ImageToWrite {
    /// The manifest for this image, serialised canonically.
    pub fn manifest(&self) -> Raw<Manifest> {
        Raw::new(Manifest {
            schema_version: 2,
            media_type: Some(self.manifest_media_type.clone()),
            config: self.config.descriptor(&self.config_media_type),
            layers: self.layers.iter().map(|l| l.descriptor.clone()).collect(),
            annotations: self.annotations.clone(),
        })
    }
}

/// Builds an OCI index over already-serialised manifests.
pub fn build_index(entries: &[(Raw<Manifest>, Platform)]) -> Raw<Index> {
    let mut index = Index::new_oci();
    for (manifest, platform) in entries {
        let mt = manifest.value.media_type.clone().unwrap_or_else(|| media_type::OCI_MANIFEST.to_owned());
        let mut d = manifest.descriptor(&mt);
        d.platform = Some(platform.clone());
        index.manifests.push(d);
    }
    Raw::new(index)
}

/// Picks the manifest for `want` from an index. Without `want`, picks `linux/<host arch>`,
/// then the only entry if there is just one. Attestation manifests (platform
/// `unknown/unknown`) are never picked.
pub fn select_platform<'a>(
    image: &str,
    index: &'a Index,
    want: Option<&Platform>,
) -> Result<&'a Descriptor, ImageError> {
    let candidates: Vec<&Descriptor> = index
        .manifests
        .iter()
        .filter(|d| media_type::is_manifest(&d.media_type))
        .filter(|d| d.platform.as_ref().is_none_or(|p| p.os != "unknown"))
        .collect();
    let host = Platform::new("linux", host_arch(), None);
    let wanted = want.unwrap_or(&host);
    if let Some(d) = candidates.iter().find(|d| d.platform.as_ref().is_some_and(|p| wanted.matches(p))) {
        return Ok(d);
    }
    if want.is_none() && candidates.len() == 1 {
        return Ok(candidates[0]);
    }
    let available = list_for_message(
        candidates.iter().map(|d| d.platform.as_ref().map_or_else(|| "unspecified".to_owned(), ToString::to_string)),
    );
    Err(ImageError::NoMatchingPlatform { image: image.to_owned(), platform: wanted.to_string(), available })
}

/// How many items of someone else's list a message names.
const MAX_LISTED: usize = 16;

/// Items read from someone else's document (platforms, tags), listed in a message: each
/// cut to an [excerpt](cnbx_fs::excerpt), comma-separated, at most [`MAX_LISTED`] of them
/// and then how many more there are.
pub(crate) fn list_for_message<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> String {
    let mut shown = Vec::new();
    let mut more = 0usize;
    for item in items {
        if shown.len() < MAX_LISTED {
            shown.push(cnbx_fs::excerpt(item.as_ref()));
        } else {
            more += 1;
        }
    }
    let mut out = shown.join(", ");
    if more > 0 {
        out.push_str(&format!(" and {more} more"));
    }
    out
}

/// GOARCH name of the machine we run on.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invalid_config_is_told_once() {
        let source = crate::config::ImageConfig::from_slice(b"[]").unwrap_err();
        let e = ImageError::Config { image: "cnbx.test/run".into(), source };
        assert_eq!(cnbx_fs::error_chain(&e), "image cnbx.test/run: invalid image config: not a JSON object");
    }

    fn entry(os: &str, arch: &str, variant: Option<&str>, n: u8) -> Descriptor {
        let mut d = Descriptor::new(media_type::OCI_MANIFEST, Digest::of(&[n]), 1);
        d.platform = Some(Platform::new(os, arch, variant));
        d
    }

    #[test]
    fn selects_requested_platform() {
        let mut index = Index::new_oci();
        index.manifests = vec![
            entry("linux", "amd64", None, 1),
            entry("linux", "arm64", Some("v8"), 2),
            entry("unknown", "unknown", None, 3),
        ];
        let arm = Platform::parse("linux/arm64").unwrap();
        assert_eq!(select_platform("x", &index, Some(&arm)).unwrap().digest, Digest::of(&[2]));
        let err = select_platform("x", &index, Some(&Platform::parse("windows/amd64").unwrap())).unwrap_err();
        assert_eq!(
            err.to_string(),
            "image x has no manifest for platform windows/amd64 (it has: linux/amd64, linux/arm64/v8)"
        );
    }

    #[test]
    fn listed_items_are_bounded_excerpts() {
        let items: Vec<String> = (0..20).map(|i| format!("{i}\n{}", "x".repeat(200))).collect();
        let listed = list_for_message(&items);
        assert!(listed.ends_with(" and 4 more"), "{listed}");
        assert!(!listed.contains('\n'));
        assert!(listed.len() < 16 * 100, "{}", listed.len());
    }
}
