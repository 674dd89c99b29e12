//! Which module layers a builder gets, in which order, and the merged layers label
//! (docs/pack-compatibility.md, *Layers, in order* and *Module layers*):
//!
//! * a module whose `id@version` is in the base image's layers label with the same diffID is
//!   skipped; with another diffID, a whiteout layer precedes its layer;
//! * among the new modules, the last of several with the same `id@version` wins;
//! * `--flatten` groups (lists of `id@version`) become one concatenated layer each, added
//!   first (visited in `id@version` order), every member recorded with the shared diffID;
//! * the other modules' layers follow, sorted by `id@version`.

use std::collections::BTreeMap;

use cnbx_model::{ModuleKind, escape_id};
use cnbx_oci::image::{BlobSource, LayerBlob};
use cnbx_oci::layer::LayerRecipe;

use super::stream::RecipeError;
use super::{LayerService, Module, files, stream};
use crate::labels::ModuleLayers;

/// Why the module layers of a kind cannot be added.
#[derive(Debug, thiserror::Error)]
pub enum ModuleLayersError {
    /// A layer could not be built.
    #[error("building the layer of {layer}")]
    Layer {
        /// The layer's name.
        layer: String,
        /// Why.
        #[source]
        source: Box<cnbx_oci::layer::LayerError>,
    },
    /// A module to flatten has its layer on a registry only.
    #[error("cannot flatten {noun} '{name}': its layer is still on the registry ({registry}); pull it first")]
    NotLocal {
        /// `buildpack` or `extension`.
        noun: &'static str,
        /// `id@version`.
        name: String,
        /// Where the layer is.
        registry: String,
    },
    /// A layer's recipe could not be made.
    #[error(transparent)]
    Recipe(#[from] RecipeError),
}

fn build(layers: &LayerService, recipe: &LayerRecipe) -> Result<LayerBlob, ModuleLayersError> {
    layers.build(recipe).map_err(|e| ModuleLayersError::Layer { layer: recipe.name.clone(), source: Box::new(e) })
}

/// The module layers of `kind` to append, and the merged layers label (see the module docs).
pub fn plan(
    layers: &LayerService,
    kind: ModuleKind,
    modules: &[Module],
    base_layers: &ModuleLayers,
    flatten: &[Vec<String>],
) -> Result<(Vec<LayerBlob>, ModuleLayers), ModuleLayersError> {
    // Dedupe among new modules: last wins; keep first-seen position for flatten order.
    let mut chosen: BTreeMap<String, &Module> = BTreeMap::new();
    let mut added_order: Vec<String> = Vec::new();
    for m in modules {
        let key = m.info.full_name();
        if let Some(base) = base_layers.0.get(&m.info.id).and_then(|v| v.get(&m.info.version))
            && base.layer_diff_id == m.layer.diff_id.as_str()
        {
            chosen.remove(&key);
            continue;
        }
        if !added_order.contains(&key) {
            added_order.push(key.clone());
        }
        chosen.insert(key, m);
    }
    let needs_whiteout = |m: &Module| {
        base_layers
            .0
            .get(&m.info.id)
            .and_then(|v| v.get(&m.info.version))
            .is_some_and(|b| b.layer_diff_id != m.layer.diff_id.as_str())
    };
    let whiteout = |m: &Module| -> Result<LayerBlob, ModuleLayersError> {
        // pack writes the whiteout under /cnb/buildpacks for extensions too.
        build(layers, &files::whiteout("/cnb/buildpacks", &escape_id(&m.info.id), &m.info.version))
    };

    let group_of = |key: &str| flatten.iter().position(|g| g.iter().any(|k| k == key));
    let mut out: Vec<LayerBlob> = Vec::new();
    let mut merged = base_layers.clone();

    // Flatten groups first.
    let build_group = |g: usize| -> Result<LayerBlob, ModuleLayersError> {
        let members: Vec<&Module> =
            added_order.iter().filter(|k| group_of(k) == Some(g)).filter_map(|k| chosen.get(k).copied()).collect();
        let name = format!(
            "flattened {}s {}",
            kind.noun(),
            members.iter().map(|m| m.info.full_name()).collect::<Vec<_>>().join(",")
        );
        // A dry run cannot flatten a layer that is not built yet.
        let parts: Vec<&LayerBlob> = members.iter().map(|m| &m.layer).collect();
        if let Some(unknown) = layers.unknown_from(&name, &parts) {
            return Ok(unknown);
        }
        let mut paths = Vec::new();
        for member in &members {
            let path = match &member.layer.source {
                BlobSource::Store(store) => store.path(&member.layer.descriptor.digest),
                BlobSource::Registry(r) => {
                    return Err(ModuleLayersError::NotLocal {
                        noun: kind.noun(),
                        name: member.info.full_name(),
                        registry: r.to_string(),
                    });
                }
            };
            paths.push(path);
        }
        let borrowed: Vec<stream::FlattenMember<'_>> = members
            .iter()
            .zip(&paths)
            .map(|(m, p)| stream::FlattenMember { dirs: &m.dirs, blob: p.as_path() })
            .collect();
        build(layers, &stream::flatten_recipe(name, &borrowed)?)
    };
    let mut group_layers: BTreeMap<usize, LayerBlob> = BTreeMap::new();
    let mut emitted_diffs: Vec<String> = Vec::new();
    for (key, m) in &chosen {
        let Some(g) = group_of(key) else { continue };
        if let std::collections::btree_map::Entry::Vacant(slot) = group_layers.entry(g) {
            slot.insert(build_group(g)?);
        }
        let blob = &group_layers[&g];
        if needs_whiteout(m) {
            out.push(whiteout(m)?);
        }
        if !emitted_diffs.contains(&blob.diff_id.to_string()) {
            emitted_diffs.push(blob.diff_id.to_string());
            out.push(blob.clone());
        }
        let mut info = m.layer_info.clone();
        info.layer_diff_id = blob.diff_id.to_string();
        merged.insert(m.info.id.clone(), m.info.version.clone(), info);
    }

    // Then one layer per module, sorted by id@version.
    for (key, m) in &chosen {
        if group_of(key).is_some() {
            continue;
        }
        if needs_whiteout(m) {
            out.push(whiteout(m)?);
        }
        out.push(m.layer.clone());
        let mut info = m.layer_info.clone();
        info.layer_diff_id = m.layer.diff_id.to_string();
        merged.insert(m.info.id.clone(), m.info.version.clone(), info);
    }
    Ok((out, merged))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use cnbx_model::{ModuleDirs, ModuleInfo};
    use cnbx_oci::LayerCache;
    use cnbx_oci::progress::NullReporter;
    use cnbx_oci::tarball::TarEntry;

    use super::*;
    use crate::home::CnbxHome;
    use crate::images::{Images, PullPolicy};
    use crate::labels::ModuleLayerInfo;

    struct Env {
        _dir: tempfile::TempDir,
        images: Images,
        layers: LayerService,
    }

    impl Env {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let home = CnbxHome::new(dir.path());
            let cache = LayerCache::open(home.layer_cache_dir()).unwrap();
            let registry = cnbx_oci::RegistryClient::new(cnbx_oci::RegistryOptions::default());
            let images = Images::new(home, PullPolicy::Never, false, Arc::new(NullReporter), registry).unwrap();
            let layers = LayerService::new(cache, images.blobs().clone(), Arc::new(NullReporter));
            Self { _dir: dir, images, layers }
        }

        /// A module with a real (tiny) layer in the store.
        fn module(&self, id: &str, version: &str, content: &str) -> Module {
            let dirs = ModuleDirs::new(ModuleKind::Buildpack, id, version).unwrap();
            let (parent, base) = (dirs.parent(), dirs.base());
            let mut r = LayerRecipe::new(format!("{id}@{version}"));
            r.push_header(TarEntry::dir(parent));
            r.push_header(TarEntry::dir(&base));
            r.push_bytes(TarEntry::file(format!("{base}/buildpack.toml"), 0), content.as_bytes().to_vec());
            let layer = self.layers.build(&r).unwrap();
            Module {
                dirs,
                info: ModuleInfo::new(id, version),
                layer_info: ModuleLayerInfo { layer_diff_id: layer.diff_id.to_string(), ..ModuleLayerInfo::default() },
                layer,
                has_build_bin: false,
                from_package: false,
                source: format!("test:{id}"),
            }
        }
    }

    fn diff_ids(layers: &[LayerBlob]) -> Vec<String> {
        layers.iter().map(|l| l.diff_id.to_string()).collect()
    }

    #[test]
    fn plan_sorts_skips_and_whiteouts() {
        let env = Env::new();
        let z = env.module("z/z", "1", "z");
        let a = env.module("a/a", "1", "a");
        let same = env.module("same", "1", "same");
        let changed = env.module("changed", "1", "new");
        let mut base = ModuleLayers::default();
        base.insert(
            "same",
            "1",
            ModuleLayerInfo { layer_diff_id: same.layer.diff_id.to_string(), ..Default::default() },
        );
        base.insert("changed", "1", ModuleLayerInfo { layer_diff_id: "sha256:old".into(), ..Default::default() });
        base.insert("other", "9", ModuleLayerInfo { layer_diff_id: "sha256:other".into(), ..Default::default() });
        let a2 = env.module("a/a", "1", "a second time");
        let modules = [z.clone(), a, same, changed.clone(), a2.clone()];
        let (layers, merged) = plan(&env.layers, ModuleKind::Buildpack, &modules, &base, &[]).unwrap();
        let whiteout = diff_id_of(&env.layers, &files::whiteout("/cnb/buildpacks", "changed", "1"));
        assert_eq!(
            diff_ids(&layers),
            vec![
                a2.layer.diff_id.to_string(),
                whiteout,
                changed.layer.diff_id.to_string(),
                z.layer.diff_id.to_string()
            ]
        );
        assert_eq!(merged.get("a/a", "1").unwrap().layer_diff_id, a2.layer.diff_id.to_string());
        assert_eq!(merged.get("changed", "1").unwrap().layer_diff_id, changed.layer.diff_id.to_string());
        assert_eq!(merged.get("other", "9").unwrap().layer_diff_id, "sha256:other");
        assert_eq!(merged.0.len(), 5);
    }

    fn diff_id_of(layers: &LayerService, r: &LayerRecipe) -> String {
        layers.build(r).unwrap().diff_id.to_string()
    }

    #[test]
    fn plan_flattens_groups_first() {
        let env = Env::new();
        let a = env.module("x/a", "1", "a");
        let b = env.module("x/b", "1", "b");
        let b2 = env.module("x/b", "2", "b2");
        let c = env.module("c", "1", "c");
        let modules = [c.clone(), b2.clone(), a.clone(), b.clone()];
        let groups = vec![vec!["x/b@2".to_owned(), "x/b@1".to_owned()]];
        let (layers, merged) =
            plan(&env.layers, ModuleKind::Buildpack, &modules, &ModuleLayers::default(), &groups).unwrap();
        assert_eq!(layers.len(), 3);
        let flat = layers[0].diff_id.to_string();
        assert_eq!(diff_ids(&layers[1..]), vec![c.layer.diff_id.to_string(), a.layer.diff_id.to_string()]);
        assert_eq!(merged.get("x/b", "1").unwrap().layer_diff_id, flat);
        assert_eq!(merged.get("x/b", "2").unwrap().layer_diff_id, flat);
        // The group's tar: b2 then b (added order), x_b dir written once.
        let blob = env.images.blobs().read(&layers[0].descriptor.digest).unwrap();
        let mut tar = tar::Archive::new(flate2::read::MultiGzDecoder::new(&blob[..]));
        let names: Vec<String> =
            tar.entries().unwrap().map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned()).collect();
        assert_eq!(
            names,
            [
                "/cnb/buildpacks/x_b",
                "/cnb/buildpacks/x_b/2",
                "/cnb/buildpacks/x_b/2/buildpack.toml",
                "/cnb/buildpacks/x_b/1",
                "/cnb/buildpacks/x_b/1/buildpack.toml"
            ]
        );
    }
}
