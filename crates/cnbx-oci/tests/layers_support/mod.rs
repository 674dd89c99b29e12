//! Shared fixtures for the layer, layout, store and archive integration tests.

#![allow(dead_code, clippy::unwrap_used)]

use cnbx_oci::config::ImageConfig;
use cnbx_oci::layer::{LayerInfo, LayerRecipe, build_layer};
use cnbx_oci::progress::NullReporter;
use cnbx_oci::spec::{Platform, media_type};
use cnbx_oci::tarball::TarEntry;
use cnbx_oci::{BlobStore, ImageToWrite};

/// Two layers: directories owned by 1000:1000 and root, an executable, a symlink, and a
/// per-platform marker file; then a config listing their diffIDs.
pub(crate) fn sample_image(store: &BlobStore, platform: &Platform) -> (ImageToWrite, Vec<LayerInfo>) {
    let mut base = LayerRecipe::new(format!("base {platform}"));
    base.push_header(TarEntry::dir("/workspace").with_owner(1000, 1000));
    base.push_header(TarEntry::dir("/cnb"));
    base.push_bytes(TarEntry::file("/cnb/hello", 0).with_mode(0o755), "#!/bin/sh\necho hello\n");
    base.push_header(TarEntry::symlink("/cnb/hi", "/cnb/hello"));
    let mut top = LayerRecipe::new(format!("top {platform}"));
    top.push_header(TarEntry::dir("/cnb/platform"));
    top.push_bytes(TarEntry::file("/cnb/platform/name", 0).with_owner(1000, 1001), platform.to_string());
    let layers: Vec<LayerInfo> = [base, top].iter().map(|r| build_layer(r, store, &NullReporter).unwrap()).collect();

    let mut config = ImageConfig::new(platform);
    for l in &layers {
        config.push_diff_id(&l.diff_id);
    }
    config.set_created("1980-01-01T00:00:01Z");
    config.set_working_dir("/workspace");
    config.set_label("io.cnbx.test", "yes");
    let image = ImageToWrite {
        manifest_media_type: media_type::OCI_MANIFEST.into(),
        config_media_type: media_type::OCI_CONFIG.into(),
        config: config.to_raw(),
        layers: layers.iter().map(|l| l.to_layer_blob(store)).collect(),
        platform: platform.clone(),
        annotations: None,
    };
    (image, layers)
}

pub(crate) fn amd64() -> Platform {
    Platform::new("linux", "amd64", None)
}

pub(crate) fn arm64() -> Platform {
    Platform::new("linux", "arm64", Some("v8"))
}

/// An error and its sources joined with `: `, as the CLI prints them.
pub(crate) use cnbx_fs::error_chain as chain;
