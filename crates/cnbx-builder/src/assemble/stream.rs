//! Module layers as pack writes them (docs/pack-compatibility.md, *Module layers*): the root-blob module
//! stream, the split of a flattened package layer, and flatten groups.

use std::io;
use std::path::{Path, PathBuf};

use cnbx_oci::confine::{Confinement, sanitize};
use cnbx_oci::layer::{ArchiveSource, LayerEntry, LayerRecipe, walk_dir};
use cnbx_oci::tarball::{EntryKind, TarEntry, TarError, TarTime, clean_path};

use cnbx_model::{ModuleDirs, ModuleKind};

use crate::scan::clean_name;

/// A module's files could not be read to make its layer's recipe.
#[derive(Debug, thiserror::Error)]
#[error("reading {}", .path.display())]
pub struct RecipeError {
    /// The file or directory.
    pub path: PathBuf,
    /// Why.
    #[source]
    pub source: io::Error,
}

fn reading(path: &Path) -> impl FnOnce(io::Error) -> RecipeError + '_ {
    move |source| RecipeError { path: path.to_path_buf(), source }
}

/// Version of the mappings below, part of every mapping id (bump when a mapping changes).
const STREAM_VERSION: &str = "v2";

/// pack's mode rule: 0755 for directories, `bin/build`, `bin/detect`, `bin/generate` and
/// anything with an execute bit; else 0644.
fn module_mode(rel: &str, kind: &EntryKind, mode: u32) -> u32 {
    if *kind == EntryKind::Dir || matches!(rel, "bin/build" | "bin/detect" | "bin/generate") || mode & 0o111 != 0 {
        0o755
    } else {
        0o644
    }
}

/// Normalises a header for a module stream: renamed under `base`, owner 0, empty names,
/// normalised mtime, pack's mode, hard link targets rebased.
fn normalise(mut e: TarEntry, base: &str, rel: &str) -> TarEntry {
    e.mode = module_mode(rel, &e.kind, e.mode);
    e.path = format!("{base}/{rel}");
    e.uid = 0;
    e.gid = 0;
    e.uname.clear();
    e.gname.clear();
    e.mtime = TarTime::NORMALIZED;
    if let EntryKind::Hardlink { target } = &e.kind {
        let t = clean_path(target);
        let t = t.trim_start_matches('/');
        e.kind = EntryKind::Hardlink { target: format!("{base}/{t}") };
    }
    e
}

/// Where the layer of a module may write: its version directory, and its `<escaped id>`
/// directory entry.
pub(crate) fn module_confinement(dirs: &ModuleDirs) -> Confinement {
    Confinement::new(dirs.base()).with_parent_dir(dirs.parent())
}

fn recipe_name(dirs: &ModuleDirs) -> String {
    format!("{} {}@{}", dirs.kind.noun(), dirs.id, dirs.version)
}

/// A recipe for the layer of the module at `dirs`, confined to its directories.
fn module_recipe(dirs: &ModuleDirs) -> LayerRecipe {
    LayerRecipe::new(recipe_name(dirs)).with_confinement(module_confinement(dirs))
}

/// The layer of a directory module, and warnings about what was left out or changed
/// (special files, setuid/setgid bits).
pub(crate) fn dir_recipe(dirs: &ModuleDirs, dir: &Path) -> Result<(LayerRecipe, Vec<String>), RecipeError> {
    let (base, noun, id, version) = (dirs.base(), dirs.kind.noun(), &dirs.id, &dirs.version);
    let mut r = module_recipe(dirs);
    r.push_header(TarEntry::dir(dirs.parent()));
    r.push_header(TarEntry::dir(&base));
    let mut warnings = Vec::new();
    let mut walk = walk_dir(dir);
    for w in walk.by_ref() {
        let w = w.map_err(|e| RecipeError { path: e.path, source: e.source })?;
        if w.mode & 0o6000 != 0 {
            warnings.push(format!(
                "{noun} '{id}@{version}': file '{}': its setuid/setgid bits were cleared",
                cnbx_fs::excerpt(&w.rel_path)
            ));
        }
        let rel = w.rel_path.clone();
        let mut entry: LayerEntry = w.into_layer_entry();
        entry.header = normalise(entry.header, &base, &rel);
        r.push(entry);
    }
    for s in walk.skipped() {
        warnings.push(format!(
            "{noun} '{id}@{version}': '{}' was left out: it is {}",
            cnbx_fs::excerpt(&s.rel_path),
            s.what
        ));
    }
    Ok((r, warnings))
}

/// The mapping of a module archive's entries into the module stream under `base`: special
/// files left out, set-id bits and extended attributes cleared, names cleaned and put under
/// `base`. An absolute name, or one that climbs out with `..`, is kept as it is so that the
/// layer's confinement refuses it.
pub(crate) fn archive_module_map(
    base: String,
) -> impl Fn(TarEntry) -> Result<Option<TarEntry>, TarError> + Send + Sync {
    move |e: TarEntry| {
        let (e, _) = sanitize(e);
        let Some(mut e) = e else { return Ok(None) };
        let cleaned = clean_path(&e.path);
        if cleaned == "." || cleaned == "/" {
            return Ok(None);
        }
        if cleaned.starts_with('/') || cleaned == ".." || cleaned.starts_with("../") {
            e.path = cleaned;
            return Ok(Some(e));
        }
        Ok(Some(normalise(e, &base, &cleaned)))
    }
}

/// The layer of a tar / tar.gz module.
pub(crate) fn tar_recipe(dirs: &ModuleDirs, file: &Path) -> Result<LayerRecipe, RecipeError> {
    let base = dirs.base();
    let mut r = module_recipe(dirs);
    r.push_header(TarEntry::dir(dirs.parent()));
    r.push_header(TarEntry::dir(&base));
    let mapping = format!("module-stream {STREAM_VERSION} {base}");
    let source = ArchiveSource::new(file, mapping, archive_module_map(base)).map_err(reading(file))?;
    r.push_archive(source);
    Ok(r)
}

/// Whether the entry named `name` (leading `/` optional) belongs to `id@version` of `kind`:
/// the `<escaped id>` directory itself or anything under `<escaped id>/<version>`.
pub(crate) fn belongs(name: &str, kind: ModuleKind, eid: &str, version: &str) -> bool {
    let c = clean_path(name);
    let c = c.trim_start_matches('/');
    let dir = kind.dir().trim_start_matches('/');
    let Some(rest) = c.strip_prefix(dir).and_then(|r| r.strip_prefix('/')) else { return false };
    let Some(rest) = rest.strip_prefix(eid) else { return false };
    if rest.is_empty() {
        return true;
    }
    let Some(rest) = rest.strip_prefix('/') else { return false };
    rest == version || rest.starts_with(&format!("{version}/"))
}

/// An entry of a buildpackage layer with its names in the form the layer writes them
/// (absolute and clean), after [`sanitize`].
pub(crate) fn canonical_package_entry(e: TarEntry) -> Option<TarEntry> {
    let (e, _) = sanitize(e);
    let mut e = e?;
    e.path = format!("/{}", clean_name(&e.path));
    if let EntryKind::Hardlink { target } = &e.kind {
        e.kind = EntryKind::Hardlink { target: format!("/{}", clean_name(target)) };
    }
    Some(e)
}

/// The part of a (flattened, or mended) package layer at `blob` holding `id@version`,
/// re-encoded with clean absolute names and sanitized entries.
pub(crate) fn split_recipe(dirs: &ModuleDirs, blob: &Path) -> Result<LayerRecipe, RecipeError> {
    let (kind, eid) = (dirs.kind, dirs.id.escaped());
    let mut r = module_recipe(dirs);
    let mapping = format!("module-split {STREAM_VERSION} {} {eid} {}", kind.dir(), dirs.version);
    let v = dirs.version.as_str().to_owned();
    let source = ArchiveSource::new(blob, mapping, move |e: TarEntry| {
        Ok(if belongs(&e.path, kind, &eid, &v) { canonical_package_entry(e) } else { None })
    })
    .map_err(reading(blob))?;
    r.push_archive(source);
    Ok(r)
}

/// One member of a flatten group.
pub(crate) struct FlattenMember<'a> {
    pub(crate) dirs: &'a ModuleDirs,
    pub(crate) blob: &'a Path,
}

/// One flatten group: the modules' layers (in the order they were added) concatenated, a
/// module's `<escaped id>` directory entry skipped when an earlier module already wrote it.
pub(crate) fn flatten_recipe(name: String, members: &[FlattenMember<'_>]) -> Result<LayerRecipe, RecipeError> {
    let mut confinement: Option<Confinement> = None;
    for m in members {
        let (parent, base) = (m.dirs.parent(), m.dirs.base());
        confinement = Some(match confinement {
            None => Confinement::new(base).with_parent_dir(parent),
            Some(c) => c.with_root(base).with_parent_dir(parent),
        });
    }
    let mut r = LayerRecipe::new(name);
    r.confinement = confinement;
    let mut written: Vec<String> = Vec::new();
    for m in members {
        let parent = m.dirs.parent().trim_start_matches('/').to_owned();
        let skip = written.contains(&parent);
        if !skip {
            written.push(parent.clone());
        }
        let mapping = format!("flatten-member {STREAM_VERSION} skip={skip} {parent} {}", m.dirs.version);
        let (kind, eid, version) = (m.dirs.kind, m.dirs.id.escaped(), m.dirs.version.as_str().to_owned());
        let source = ArchiveSource::new(m.blob, mapping, move |e: TarEntry| {
            let c = clean_path(&e.path);
            if (skip && c.trim_start_matches('/') == parent) || !belongs(&e.path, kind, &eid, &version) {
                return Ok(None);
            }
            Ok(canonical_package_entry(e))
        })
        .map_err(reading(m.blob))?;
        r.push_archive(source);
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        assert_eq!(module_mode("bin/build", &EntryKind::File, 0o600), 0o755);
        assert_eq!(module_mode("x", &EntryKind::File, 0o4700), 0o755);
        assert_eq!(module_mode("x", &EntryKind::File, 0o4600), 0o644);
        assert_eq!(module_mode("d", &EntryKind::Dir, 0o700), 0o755);
    }

    #[test]
    fn membership() {
        let k = ModuleKind::Buildpack;
        assert!(belongs("/cnb/buildpacks/a_b", k, "a_b", "1"));
        assert!(belongs("cnb/buildpacks/a_b/1", k, "a_b", "1"));
        assert!(belongs("/cnb/buildpacks/a_b/1/bin/build", k, "a_b", "1"));
        assert!(!belongs("/cnb/buildpacks/a_b/10", k, "a_b", "1"));
        assert!(!belongs("/cnb/buildpacks/a_bc", k, "a_b", "1"));
        assert!(!belongs("/cnb", k, "a_b", "1"));
    }
}
