//! Which module layers a builder gets, in which order (docs/pack-compatibility.md,
//! *Layers, in order* and *Module layers*).

use std::collections::BTreeMap;

use cnbx_oci::image::{BlobSource, LayerBlob};
use cnbx_oci::layer::LayerRecipe;

use cnbx_model::{ModuleKind, escape_id};

use super::{ModuleContext, ModuleError, stream};
use crate::labels::ModuleLayers;
use crate::layers;

fn build(ctx: &ModuleContext<'_>, recipe: &LayerRecipe) -> Result<LayerBlob, ModuleError> {
    let (info, _hit) = ctx
        .cache
        .get_or_build(recipe, ctx.images.blobs(), ctx.reporter)
        .map_err(|e| ModuleError::Layer { layer: recipe.name.clone(), source: Box::new(e) })?;
    Ok(info.to_layer_blob(ctx.images.blobs()))
}

/// Plans the module layers of one kind; see [`super::plan_module_layers`].
pub(crate) fn plan(
    ctx: &ModuleContext<'_>,
    kind: ModuleKind,
    modules: &[super::Module],
    base_layers: &ModuleLayers,
    flatten: &[Vec<String>],
) -> Result<(Vec<LayerBlob>, ModuleLayers), ModuleError> {
    // Dedupe among new modules: last wins; keep first-seen position for flatten order.
    let mut chosen: BTreeMap<String, &super::Module> = BTreeMap::new();
    let mut added_order: Vec<String> = Vec::new();
    for m in modules {
        let key = m.info.full_name();
        if let Some(base) = base_layers.0.get(&m.info.id).and_then(|v| v.get(&m.info.version)) {
            if base.layer_diff_id == m.layer.diff_id.as_str() {
                chosen.remove(&key);
                continue;
            }
        }
        if !added_order.contains(&key) {
            added_order.push(key.clone());
        }
        chosen.insert(key, m);
    }
    let needs_whiteout = |m: &super::Module| {
        base_layers
            .0
            .get(&m.info.id)
            .and_then(|v| v.get(&m.info.version))
            .is_some_and(|b| b.layer_diff_id != m.layer.diff_id.as_str())
    };
    let whiteout = |m: &super::Module| -> Result<LayerBlob, ModuleError> {
        // pack writes the whiteout under /cnb/buildpacks for extensions too.
        build(ctx, &layers::whiteout("/cnb/buildpacks", &escape_id(&m.info.id), &m.info.version))
    };

    let group_of = |key: &str| flatten.iter().position(|g| g.iter().any(|k| k == key));
    let mut out: Vec<LayerBlob> = Vec::new();
    let mut merged = base_layers.clone();

    // Flatten groups first.
    let build_group = |g: usize| -> Result<LayerBlob, ModuleError> {
        let members: Vec<&super::Module> =
            added_order.iter().filter(|k| group_of(k) == Some(g)).filter_map(|k| chosen.get(k).copied()).collect();
        let mut paths = Vec::new();
        for member in &members {
            let path = match &member.layer.source {
                BlobSource::Store(store) => store.path(&member.layer.descriptor.digest),
                BlobSource::Registry(r) => {
                    return Err(ModuleError::Invalid(format!(
                        "cannot flatten {} '{}': its layer is still on the registry ({r}); pull it first",
                        kind.noun(),
                        member.info.full_name()
                    )));
                }
            };
            paths.push(path);
        }
        let borrowed: Vec<stream::FlattenMember<'_>> = members
            .iter()
            .zip(&paths)
            .map(|(m, p)| stream::FlattenMember { dirs: &m.dirs, blob: p.as_path() })
            .collect();
        let name = format!(
            "flattened {}s {}",
            kind.noun(),
            members.iter().map(|m| m.info.full_name()).collect::<Vec<_>>().join(",")
        );
        build(ctx, &stream::flatten_recipe(name, &borrowed)?)
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
