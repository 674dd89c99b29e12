//! Module layers as pack writes them (pack-builder-behavior.md §3.3): the root-blob module
//! stream, the split of a flattened package layer, and flatten groups.

use std::path::Path;

use cnbx_oci::layer::{ArchiveSource, LayerEntry, LayerRecipe, walk_dir};
use cnbx_oci::tarball::{EntryKind, TarEntry, TarTime, clean_path};

use super::{ModuleError, ModuleKind, escape_id};

/// Version of the mappings below, part of every mapping id (bump when a mapping changes).
const STREAM_VERSION: &str = "v1";

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

/// `<kind dir>/<escaped id>` and `<kind dir>/<escaped id>/<version>`.
pub(crate) fn module_dirs(kind: ModuleKind, id: &str, version: &str) -> (String, String) {
    let parent = format!("{}/{}", kind.dir(), escape_id(id));
    let base = format!("{parent}/{version}");
    (parent, base)
}

fn recipe_name(kind: ModuleKind, id: &str, version: &str) -> String {
    format!("{} {id}@{version}", kind.noun())
}

/// The layer of a directory module.
pub(crate) fn dir_recipe(kind: ModuleKind, id: &str, version: &str, dir: &Path) -> Result<LayerRecipe, ModuleError> {
    let (parent, base) = module_dirs(kind, id, version);
    let mut r = LayerRecipe::new(recipe_name(kind, id, version));
    r.push_header(TarEntry::dir(&parent));
    r.push_header(TarEntry::dir(&base));
    for w in walk_dir(dir) {
        let w = w.map_err(|e| ModuleError::io(format!("reading {}", e.path.display()), e.source))?;
        let rel = w.rel_path.clone();
        let mut entry: LayerEntry = w.into_layer_entry();
        entry.header = normalise(entry.header, &base, &rel);
        r.push(entry);
    }
    Ok(r)
}

/// The layer of a tar / tar.gz module.
pub(crate) fn tar_recipe(kind: ModuleKind, id: &str, version: &str, file: &Path) -> Result<LayerRecipe, ModuleError> {
    let (parent, base) = module_dirs(kind, id, version);
    let mut r = LayerRecipe::new(recipe_name(kind, id, version));
    r.push_header(TarEntry::dir(&parent));
    r.push_header(TarEntry::dir(&base));
    let mapping = format!("module-stream {STREAM_VERSION} {base}");
    let b = base.clone();
    let source = ArchiveSource::new(file, mapping, move |e: TarEntry| {
        let cleaned = clean_path(&e.path);
        if cleaned == "." || cleaned == "/" {
            return Ok(None);
        }
        let rel = cleaned.trim_start_matches('/').to_owned();
        Ok(Some(normalise(e, &b, &rel)))
    })
    .map_err(|e| ModuleError::io(format!("reading {}", file.display()), e))?;
    r.push_archive(source);
    Ok(r)
}

/// Whether the entry named `name` (leading `/` optional) belongs to `id@version` of `kind`:
/// the `<escaped id>` directory itself or anything under `<escaped id>/<version>`.
fn belongs(name: &str, kind: ModuleKind, eid: &str, version: &str) -> bool {
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

/// The part of a (flattened) package layer at `blob` holding `id@version`, re-encoded.
pub(crate) fn split_recipe(kind: ModuleKind, id: &str, version: &str, blob: &Path) -> Result<LayerRecipe, ModuleError> {
    let eid = escape_id(id);
    let mut r = LayerRecipe::new(recipe_name(kind, id, version));
    let mapping = format!("module-split {STREAM_VERSION} {} {eid} {version}", kind.dir());
    let v = version.to_owned();
    let source =
        ArchiveSource::new(blob, mapping, move |e: TarEntry| Ok(belongs(&e.path, kind, &eid, &v).then_some(e)))
            .map_err(|e| ModuleError::io(format!("reading {}", blob.display()), e))?;
    r.push_archive(source);
    Ok(r)
}

/// One flatten group: the modules' layers (`(kind, id, blob path)`, in the order they were
/// added) concatenated, a module's `<escaped id>` directory entry skipped when an earlier
/// module already wrote it.
pub(crate) fn flatten_recipe(
    name: String,
    members: &[(ModuleKind, String, &Path)],
) -> Result<LayerRecipe, ModuleError> {
    let mut r = LayerRecipe::new(name);
    let mut written: Vec<String> = Vec::new();
    for (kind, id, blob) in members {
        let parent = format!("{}/{}", kind.dir().trim_start_matches('/'), escape_id(id));
        let skip = written.contains(&parent);
        if !skip {
            written.push(parent.clone());
        }
        let mapping = format!("flatten-member {STREAM_VERSION} skip={skip} {parent}");
        let source = ArchiveSource::new(*blob, mapping, move |e: TarEntry| {
            let c = clean_path(&e.path);
            Ok((!(skip && c.trim_start_matches('/') == parent)).then_some(e))
        })
        .map_err(|e| ModuleError::io(format!("reading {}", blob.display()), e))?;
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
