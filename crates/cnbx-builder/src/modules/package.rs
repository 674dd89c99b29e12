//! Buildpackages: package images (`docker://`, names, `oci:`) and `.cnb` files
//! (pack-builder-behavior.md §2.5, §2.6; cnb-spec-rules.md §3).

use std::collections::BTreeMap;
use std::path::Path;

use cnbx_oci::image::{BlobSource, LayerBlob, SourceImage};
use cnbx_oci::layout::OciLayout;
use cnbx_oci::spec::media_type;

use super::{ModuleContext, ModuleError, ModuleKind, PendingModule, stream};
use crate::labels::{self, ModuleInfo, ModuleLayers};

/// `io.buildpacks.buildpackage.metadata`.
pub const PACKAGE_METADATA: &str = "io.buildpacks.buildpackage.metadata";

/// The modules of a package image, main first, then the dependencies sorted by id and
/// version. Layers holding one module are reused as they are; a layer holding several
/// (a flattened package) is split into one re-encoded layer per module.
pub(crate) async fn modules_from_image(
    ctx: &ModuleContext<'_>,
    kind: ModuleKind,
    image: &SourceImage,
    uri: &str,
) -> Result<Vec<PendingModule>, ModuleError> {
    let config_labels = image.config.labels();
    let invalid = |msg: String| ModuleError::Invalid(format!("package '{uri}': {msg}"));
    let meta_raw = config_labels
        .get(PACKAGE_METADATA)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| invalid(format!("could not find label '{PACKAGE_METADATA}'")))?;
    let meta: ModuleInfo =
        labels::decode(PACKAGE_METADATA, meta_raw).map_err(|e| invalid(crate::inspect::error_chain(&e)))?;
    let layers_label = match kind {
        ModuleKind::Buildpack => labels::BUILDPACK_LAYERS,
        ModuleKind::Extension => labels::EXTENSION_LAYERS,
    };
    let layers_raw = config_labels
        .get(layers_label)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| invalid(format!("could not find label '{layers_label}'")))?;
    let module_layers: ModuleLayers =
        labels::decode(layers_label, layers_raw).map_err(|e| invalid(crate::inspect::error_chain(&e)))?;
    let blobs = image.layers().map_err(|e| invalid(e.to_string()))?;

    let mut per_diff: BTreeMap<&str, usize> = BTreeMap::new();
    for versions in module_layers.0.values() {
        for info in versions.values() {
            *per_diff.entry(info.layer_diff_id.as_str()).or_default() += 1;
        }
    }
    let mut local: Option<SourceImage> = None;
    let mut modules = Vec::new();
    for (id, versions) in &module_layers.0 {
        for (version, layer_info) in versions {
            let idx = blobs.iter().position(|b| b.diff_id.as_str() == layer_info.layer_diff_id).ok_or_else(|| {
                invalid(format!(
                    "{} '{id}@{version}' is in layer {} which the image does not have",
                    kind.noun(),
                    layer_info.layer_diff_id
                ))
            })?;
            let info = ModuleInfo {
                id: id.clone(),
                name: layer_info.name.clone(),
                version: version.clone(),
                homepage: layer_info.homepage.clone(),
                ..ModuleInfo::default()
            };
            let shared = per_diff.get(layer_info.layer_diff_id.as_str()).copied().unwrap_or(0) > 1;
            let build = if shared {
                if local.is_none() {
                    local = Some(
                        ctx.images
                            .with_local_layers(image)
                            .await
                            .map_err(|e| invalid(crate::inspect::error_chain(&e)))?,
                    );
                }
                let local_layers =
                    local.as_ref().map(SourceImage::layers).transpose().map_err(|e| invalid(e.to_string()))?;
                let blob = &local_layers.unwrap_or_default()[idx];
                let path = blob_path(blob).ok_or_else(|| invalid("layer blob is not local".into()))?;
                if !media_type::is_gzip_layer(&blob.descriptor.media_type)
                    && blob.descriptor.media_type != media_type::OCI_LAYER_TAR
                {
                    return Err(invalid(format!("unsupported layer media type {}", blob.descriptor.media_type)));
                }
                Err(stream::split_recipe(kind, id, version, &path)?)
            } else {
                Ok(blobs[idx].clone())
            };
            modules.push(PendingModule {
                kind,
                info,
                layer_info: layer_info.clone(),
                build,
                has_build_bin: false,
                from_package: true,
            });
        }
    }
    let main = modules
        .iter()
        .position(|m| m.info.id == meta.id && m.info.version == meta.version)
        .ok_or_else(|| invalid(format!("it has no layer for its main {} '{}'", kind.noun(), meta.full_name())))?;
    let main = modules.remove(main);
    if kind == ModuleKind::Extension {
        return Ok(vec![main]);
    }
    modules.sort_by(|a, b| {
        (a.info.id.as_bytes(), a.info.version.as_bytes()).cmp(&(b.info.id.as_bytes(), b.info.version.as_bytes()))
    });
    modules.insert(0, main);
    Ok(modules)
}

fn blob_path(blob: &LayerBlob) -> Option<std::path::PathBuf> {
    match &blob.source {
        BlobSource::Store(store) => Some(store.path(&blob.descriptor.digest)),
        BlobSource::Registry(_) => None,
    }
}

/// Reads a `.cnb` file (a tar holding an OCI layout): extracted to a temporary directory,
/// the first manifest of `index.json` read, its layer blobs imported unchanged into the
/// cnbx blob store. The returned image reads its blobs from that store.
pub(crate) fn read_cnb(ctx: &ModuleContext<'_>, file: &Path, uri: &str) -> Result<SourceImage, ModuleError> {
    let invalid = |msg: String| ModuleError::Invalid(format!("package '{uri}': {msg}"));
    let tmp_root = ctx.images.home().tmp_dir();
    fs_err::create_dir_all(&tmp_root).map_err(|e| ModuleError::io("creating the scratch directory", e))?;
    let tmp = tempfile::Builder::new()
        .prefix("cnb-")
        .tempdir_in(&tmp_root)
        .map_err(|e| ModuleError::io("creating a scratch directory", e))?;
    let mut archive = super::source::open_tar(file).map_err(|e| ModuleError::io(format!("reading '{uri}'"), e))?;
    archive.unpack(tmp.path()).map_err(|e| ModuleError::io(format!("extracting '{uri}'"), e))?;
    let layout = OciLayout::open(tmp.path()).map_err(|e| invalid(crate::inspect::error_chain(&e)))?;
    let index = layout.index().map_err(|e| invalid(crate::inspect::error_chain(&e)))?;
    let desc = index
        .manifests
        .iter()
        .find(|d| media_type::is_manifest(&d.media_type) || media_type::is_index(&d.media_type))
        .ok_or_else(|| invalid("index.json has no image manifest".into()))?;
    let platform = media_type::is_index(&desc.media_type).then_some(ctx.platform);
    let image =
        layout.read_descriptor(desc, "", uri, platform).map_err(|e| invalid(crate::inspect::error_chain(&e)))?;
    let blobs = ctx.images.blobs();
    for layer in &image.manifest.value.layers {
        blobs.import_from(layout.blobs(), &layer.digest).map_err(|e| invalid(crate::inspect::error_chain(&e)))?;
    }
    Ok(SourceImage { source: BlobSource::Store(blobs.clone()), ..image })
}

/// Whether the archive at `file` is an OCI layout (has an `oci-layout` entry).
pub(crate) fn is_oci_layout_archive(names: &[String]) -> bool {
    names.iter().any(|n| n == "oci-layout")
}
