//! What each layer of a builder holds, told from its diffID and the builder's labels alone
//! (no layer is read).
//!
//! pack and cnbx write a builder's layers in a fixed order (docs/pack-compatibility.md,
//! *Layers, in order*): the build image's layers, the default directories, the lifecycle,
//! the modules (a whiteout before a module that replaces one of the build image's), then
//! `/cnb/order.toml`, `/cnb/system.toml` (only with system buildpacks), `/cnb/stack.toml`,
//! `/cnb/run.toml`, the `[[build.env]]` files (only when there are some) and `/platform/env`.
//! Most of those layers are made from what the labels and the config say, byte for byte, so
//! their diffIDs can be computed here and looked for:
//!
//! * the default directories from the build user (`CNB_USER_ID`, `CNB_GROUP_ID` in the env):
//!   the layers before the last one with that diffID are the build image's, and the layer
//!   after it is the lifecycle;
//! * the modules and flattened groups from the layers labels (`layerDiffID`), whiteouts from
//!   every module the labels name;
//! * `/cnb/order.toml` from the order labels resolved against the modules, `/cnb/system.toml`
//!   from the system label, `/cnb/stack.toml` and `/cnb/run.toml` from the run images of the
//!   metadata label, and the empty `/platform/env`.
//!
//! The `[[build.env]]` files are the one part of a builder no label describes: their layer
//! is the one after `/cnb/run.toml` when that is not `/platform/env`. Its content is not read,
//! so a diff says that the environment changed, not how. A layer none of this identifies
//! (a builder made by another tool, or a label that does not say what was resolved) is
//! reported as `unidentified`.

use std::collections::BTreeMap;

use cnbx_model::{ModuleInfo, ModuleKind, escape_id};
use cnbx_oci::Digest;
use cnbx_oci::image::LayerBlob;
use cnbx_oci::layer::{EntryData, LayerPart, LayerRecipe};
use cnbx_oci::tarball::TarWriter;

use super::PlatformImage;
use crate::assemble::files;
use crate::labels::ModuleLayers;
use crate::modules::{resolve_order, resolve_system};

/// What one layer holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holds {
    /// Layer `n` (1-based) of the build image's `count`.
    BuildImage {
        /// Its position.
        n: usize,
        /// How many layers the build image has.
        count: usize,
    },
    /// `/workspace`, `/layers`, `/cnb`, … (pack's default directories).
    DefaultDirs,
    /// The lifecycle.
    Lifecycle,
    /// One or more modules (several: a flattened group), as `buildpack id@version`.
    Modules(Vec<String>),
    /// A whiteout hiding a module of the build image.
    Whiteout(String),
    /// One of the files written from the labels (`/cnb/order.toml`, …).
    File(&'static str),
    /// The `[[build.env]]` files.
    BuildEnv,
    /// Not identified.
    Unidentified,
}

impl Holds {
    /// How reports name it (the vocabulary of `builder create --dry-run`).
    pub fn describe(&self, lifecycle_version: &str) -> String {
        match self {
            Self::BuildImage { n, count } => format!("build image layer {n}/{count}"),
            Self::DefaultDirs => "default directories".to_owned(),
            Self::Lifecycle if lifecycle_version.is_empty() => "lifecycle".to_owned(),
            Self::Lifecycle => format!("lifecycle {lifecycle_version}"),
            Self::Modules(names) => names.join(", "),
            Self::Whiteout(path) => format!("whiteout {path}"),
            Self::File(path) => (*path).to_owned(),
            Self::BuildEnv => files::BUILD_CONFIG_DIR.to_owned() + "/env",
            Self::Unidentified => "unidentified".to_owned(),
        }
    }
}

/// What each layer of `image` holds, and where the build image's layers end (`None` when the
/// default directories were not found, so the build image's layers are not known).
pub(crate) fn attribute(image: &PlatformImage) -> (Vec<Holds>, Option<usize>) {
    let layers = &image.layers;
    let n = layers.len();
    let mut holds = vec![Holds::Unidentified; n];
    let find_last = |diff_id: &Digest| layers.iter().rposition(|l| l.diff_id == *diff_id);

    // Modules, flattened groups and their whiteouts.
    let mut modules: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut whiteouts: BTreeMap<Digest, String> = BTreeMap::new();
    for (kind, label) in
        [(ModuleKind::Buildpack, &image.info.buildpack_layers), (ModuleKind::Extension, &image.extension_layers)]
    {
        let parent = match kind {
            ModuleKind::Buildpack => "/cnb/buildpacks",
            ModuleKind::Extension => "/cnb/extensions",
        };
        for (id, versions) in &label.0 {
            for (version, info) in versions {
                modules.entry(info.layer_diff_id.as_str()).or_default().push(format!("{} {id}@{version}", kind.noun()));
                let whiteout = files::whiteout(parent, &escape_id(id), version);
                if let Some(diff_id) = memory_diff_id(&whiteout) {
                    whiteouts.insert(diff_id, format!("{parent}/{}/.wh.{version}", escape_id(id)));
                }
            }
        }
    }
    for (layer, hold) in layers.iter().zip(holds.iter_mut()) {
        if let Some(names) = modules.get(layer.diff_id.as_str()) {
            *hold = Holds::Modules(names.clone());
        } else if let Some(path) = whiteouts.get(&layer.diff_id) {
            *hold = Holds::Whiteout(path.clone());
        }
    }

    // The build image's layers, the default directories and the lifecycle.
    let uid = image.config.env_var("CNB_USER_ID").and_then(|v| v.parse::<u64>().ok());
    let gid = image.config.env_var("CNB_GROUP_ID").and_then(|v| v.parse::<u64>().ok());
    let dirs = uid
        .zip(gid)
        .and_then(|(u, g)| memory_diff_id(&files::default_dirs(u, g, files::BUILD_CONFIG_DIR)))
        .and_then(|d| find_last(&d));
    if let Some(at) = dirs {
        for (i, hold) in holds.iter_mut().enumerate().take(at) {
            *hold = Holds::BuildImage { n: i + 1, count: at };
        }
        holds[at] = Holds::DefaultDirs;
        if at + 1 < n && holds[at + 1] == Holds::Unidentified {
            holds[at + 1] = Holds::Lifecycle;
        }
    }

    // The files made from the labels, looked for after the modules.
    let start = dirs.map_or(0, |at| at + 1);
    let mut files_known = Vec::new();
    let info = &image.info;
    if let Some(first) = info.run_images.first() {
        files_known
            .push(("/cnb/stack.toml", files::single_file("/cnb/stack.toml", files::stack_toml(first).as_bytes())));
    }
    files_known
        .push(("/cnb/run.toml", files::single_file("/cnb/run.toml", files::run_toml(&info.run_images).as_bytes())));
    files_known.push(("/platform/env", files::platform_env()));
    let available = |layers: &ModuleLayers| -> Vec<ModuleInfo> {
        layers
            .0
            .iter()
            .flat_map(|(id, versions)| versions.keys().map(|v| ModuleInfo::new(id.clone(), v.clone())))
            .collect()
    };
    let buildpacks = available(&info.buildpack_layers);
    if let (Ok(order), Ok(order_ext)) = (
        resolve_order(&info.order, &buildpacks, ModuleKind::Buildpack),
        resolve_order(&info.order_extensions, &available(&image.extension_layers), ModuleKind::Extension),
    ) {
        let toml = files::order_toml(&order, &order_ext);
        files_known.push(("/cnb/order.toml", files::single_file("/cnb/order.toml", toml.as_bytes())));
    }
    if !info.system.is_empty()
        && let Ok(system) = resolve_system(&info.system, &buildpacks)
    {
        let toml = files::system_toml(&system);
        files_known.push(("/cnb/system.toml", files::single_file("/cnb/system.toml", toml.as_bytes())));
    }
    for (path, recipe) in &files_known {
        let Some(diff_id) = memory_diff_id(recipe) else { continue };
        if let Some(at) = layers.iter().skip(start).rposition(|l| l.diff_id == diff_id).map(|i| i + start)
            && holds[at] == Holds::Unidentified
        {
            holds[at] = Holds::File(path);
        }
    }
    // The build-config env files: between /cnb/run.toml and /platform/env, the last layer.
    if let Some(run) = holds.iter().rposition(|h| *h == Holds::File("/cnb/run.toml"))
        && run + 3 == n
        && holds[n - 1] == Holds::File("/platform/env")
        && holds[run + 1] == Holds::Unidentified
    {
        holds[run + 1] = Holds::BuildEnv;
    }
    (holds, dirs)
}

/// The `[[build.env]]` layer of a builder: `Some(None)` when the layout shows there is none,
/// `Some(Some(diffID))` when there is one, `None` when the layers could not be told apart.
pub(crate) fn build_env(layers: &[LayerBlob], holds: &[Holds]) -> Option<Option<Digest>> {
    if let Some(at) = holds.iter().position(|h| *h == Holds::BuildEnv) {
        return Some(Some(layers[at].diff_id.clone()));
    }
    let n = holds.len();
    let run = holds.iter().rposition(|h| *h == Holds::File("/cnb/run.toml"))?;
    (run + 2 == n && holds[n - 1] == Holds::File("/platform/env")).then_some(None)
}

/// The diffID of a layer made only of entries held in memory (no files, no archives): its
/// tar is written into memory and hashed. `None` for any other recipe.
pub(crate) fn memory_diff_id(recipe: &LayerRecipe) -> Option<Digest> {
    let mut tar = TarWriter::new(Vec::new());
    for part in &recipe.parts {
        let LayerPart::Entry(entry) = part else { return None };
        match &entry.data {
            EntryData::None => tar.append_bytes(&entry.header, &[]).ok()?,
            EntryData::Bytes(bytes) => tar.append_bytes(&entry.header, bytes).ok()?,
            EntryData::File { .. } => return None,
        }
    }
    Some(Digest::of(&tar.finish().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The in-memory diffIDs are the ones the layer writer gives (pack's vectors, tested
    /// against the writer in `assemble::files`).
    #[test]
    fn memory_diff_ids_are_the_layer_writers() {
        assert_eq!(
            memory_diff_id(&files::default_dirs(1000, 1000, files::BUILD_CONFIG_DIR)).unwrap().as_str(),
            "sha256:fc454e27c1c60562a35add6e2a13dcd2f674221ec85d4266e85594499abdaac2"
        );
        assert_eq!(
            memory_diff_id(&files::platform_env()).unwrap().as_str(),
            "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"
        );
        assert_eq!(
            memory_diff_id(&files::whiteout("/cnb/buildpacks", "read_env", "read-env-version")).unwrap().as_str(),
            "sha256:d60779963cf7b8a2092201fb1c98e58c001dd80c34d5f86b4d927cf655eab570"
        );
        let mut with_file = LayerRecipe::new("x");
        with_file.push(cnbx_oci::layer::LayerEntry::file(
            cnbx_oci::tarball::TarEntry::file("/a", 0),
            "/nonexistent",
            cnbx_oci::layer::FileIdentity::default(),
        ));
        assert_eq!(memory_diff_id(&with_file), None);
    }
}
