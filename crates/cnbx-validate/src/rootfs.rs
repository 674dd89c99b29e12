//! Layer mode: the final state of the few paths the rules need, rebuilt from layer tars.
//!
//! [`RootFsBuilder::add_layer`] reads one uncompressed layer tar in one pass, in `rootfs.diff_ids`
//! order (the last writer wins). It keeps:
//!
//! * the tar header (type, mode, uid, gid, link target) of every **directory** and **symlink**,
//!   so that a home directory can be found and checked after `/etc/passwd` has been parsed;
//! * the **contents** of `/etc/passwd`, `/etc/group`, `/etc/os-release` and
//!   `/usr/lib/os-release`, and of the files they are symlinks (or hard links) to.
//!
//! Regular files are otherwise not recorded at all (not even their names), so memory stays in
//! proportion to the number of directories and symlinks of the image.
//!
//! # Semantics
//!
//! * Entry names are normalised: a leading `/` or `./`, repeated `/` and `.` components are
//!   dropped; names with `..` components are ignored (they cannot be applied safely).
//! * The last writer wins. A directory entry over an existing directory updates its header and
//!   keeps its children; any other entry over a directory replaces the whole subtree; a directory
//!   over a symlink or file replaces it.
//! * Whiteouts (OCI `image-layer.md`): `.wh.<name>` deletes `<name>` (and everything below it),
//!   `.wh..wh..opq` deletes everything below its directory. Both apply only to what lower layers
//!   wrote, never to entries of the same layer, whatever their order in the tar.
//! * A parent directory that a layer does not list is created as an *implicit* directory owned by
//!   `0:0` with mode `0755` (what container runtimes do), unless something already exists there.
//! * Lookups follow symlinks inside the image, absolute and relative, in the last component and in
//!   parent directories; `..` at `/` stays at `/`. More than 40 hops (Linux's `MAXSYMLINKS`) is a
//!   loop.
//! * Windows layers (`Files/` prefix, `Hives/`, …) are tolerated: with
//!   [`RootFsBuilder::windows`] the `Files/` prefix is stripped and other top-level entries are
//!   skipped; without it they are recorded under their literal names, which no rule looks at.
//!
//! # Which file contents are kept
//!
//! A symlink may point at a file that an earlier layer wrote, before the link existed. Keeping
//! every file "just in case" would break the memory bound, so while reading, a regular file is
//! kept when
//!
//! 1. its path is where one of the four wanted paths currently resolves to (up to 8 MiB), or
//! 2. its base name starts with `passwd`, `group` or `os-release` and it is not executable (up to
//!    64 KiB) — this covers `/etc/os-release → ../usr/lib/os-release` and `passwd → passwd.real`
//!    in any layer order.
//!
//! [`RootFsBuilder::finish`] drops everything the wanted paths do not resolve to. A wanted path
//! whose link target was not kept is reported as [`FileState::NotRetained`] (the rules turn it
//! into a "not verified" finding), never as missing.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read};

/// `/etc/passwd`.
pub const PASSWD: &str = "/etc/passwd";
/// `/etc/group`.
pub const GROUP: &str = "/etc/group";
/// `/etc/os-release` (os-release(5): read first).
pub const OS_RELEASE: &str = "/etc/os-release";
/// `/usr/lib/os-release` (os-release(5): the fallback).
pub const USR_LIB_OS_RELEASE: &str = "/usr/lib/os-release";

/// The paths whose contents layer mode keeps.
pub const RETAINED_FILES: [&str; 4] = [PASSWD, GROUP, OS_RELEASE, USR_LIB_OS_RELEASE];

/// Base-name prefixes of files kept while reading, in case a later symlink points at them.
const CANDIDATE_PREFIXES: [&str; 3] = ["passwd", "group", "os-release"];
/// Size limit for a file at a wanted path.
const MAX_WANTED_SIZE: u64 = 8 << 20;
/// Size limit for a candidate file (by base name).
const MAX_CANDIDATE_SIZE: u64 = 64 << 10;
/// Linux's `MAXSYMLINKS`.
const MAX_SYMLINK_HOPS: usize = 40;

/// A layer could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RootFsError {
    /// The stream is not a readable tar archive.
    #[error("layer {layer} (counting from 0 in rootfs order) is not a readable tar stream")]
    Tar {
        /// Index of the layer in rootfs order.
        layer: usize,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// One entry's header or contents could not be read.
    #[error("layer {layer} (counting from 0 in rootfs order): cannot read entry '{path}'")]
    Entry {
        /// Index of the layer in rootfs order.
        layer: usize,
        /// The entry's name as written in the tar.
        path: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

/// A lookup went around in circles.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("too many levels of symbolic links resolving '{path}'")]
pub struct SymlinkLoop {
    /// The path being resolved.
    pub path: String,
}

/// The header of a directory, after following symlinks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirInfo {
    /// The path after following symlinks.
    pub path: String,
    /// Owner uid.
    pub uid: u64,
    /// Owner gid.
    pub gid: u64,
    /// Permission bits (`0o7777` part of the tar mode).
    pub mode: u32,
    /// No layer lists this directory; it exists because a layer has entries below it, and the
    /// owner and mode are what runtimes create (`0:0`, `0755`).
    pub implicit: bool,
}

/// The state of one of the [`RETAINED_FILES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileState<'a> {
    /// The file exists; `path` is where it is after following symlinks.
    Present {
        /// The path after following symlinks.
        path: &'a str,
        /// The file's contents.
        content: &'a [u8],
    },
    /// No regular file is there (nothing, or a directory).
    Missing,
    /// Following symlinks loops.
    SymlinkLoop,
    /// The file may exist but its contents were not kept.
    NotRetained {
        /// Why not, e.g. "it is larger than 8388608 bytes".
        reason: &'static str,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Meta {
    uid: u64,
    gid: u64,
    mode: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum NodeKind {
    Dir { implicit: bool },
    Symlink { target: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Node {
    layer: usize,
    meta: Meta,
    kind: NodeKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Content {
    Bytes(Vec<u8>),
    NotRetained(&'static str),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct FileRec {
    layer: usize,
    content: Content,
}

/// The reconstructed view of an image's root filesystem (layer mode).
#[derive(Debug, Clone, Default)]
pub struct RootFs {
    nodes: BTreeMap<String, Node>,
    files: BTreeMap<String, FileRec>,
}

/// Builds a [`RootFs`] one layer at a time.
#[derive(Debug, Clone, Default)]
pub struct RootFsBuilder {
    fs: RootFs,
    layers: usize,
    windows: bool,
    /// Where the wanted paths resolve to now; `None` after a change that may move them.
    wanted_finals: Option<BTreeSet<String>>,
}

impl RootFs {
    /// Reads `layers` (uncompressed tar streams, in rootfs order) into a view.
    pub fn from_layers<I, R>(layers: I) -> Result<Self, RootFsError>
    where
        I: IntoIterator<Item = R>,
        R: Read,
    {
        let mut builder = RootFsBuilder::new();
        for layer in layers {
            builder.add_layer(layer)?;
        }
        Ok(builder.finish())
    }

    /// One of the [`RETAINED_FILES`], following symlinks. Any other path gives
    /// [`FileState::NotRetained`].
    pub fn file(&self, path: &str) -> FileState<'_> {
        let Ok(resolved) = self.resolve(path) else {
            return FileState::SymlinkLoop;
        };
        if !RETAINED_FILES.contains(&path) {
            return FileState::NotRetained { reason: "layer mode keeps only passwd, group and os-release" };
        }
        match self.files.get_key_value(&resolved) {
            Some((p, FileRec { content: Content::Bytes(b), .. })) => FileState::Present { path: p, content: b },
            Some((_, FileRec { content: Content::NotRetained(reason), .. })) => FileState::NotRetained { reason },
            None if is_candidate_name(&resolved) || self.nodes.contains_key(&resolved) => FileState::Missing,
            None => FileState::NotRetained {
                reason: "it links to a file that an earlier layer wrote under a name layer mode does not keep",
            },
        }
    }

    /// The directory at `path`, following symlinks: `Ok(None)` when there is no directory
    /// there (nothing, or a file).
    pub fn directory(&self, path: &str) -> Result<Option<DirInfo>, SymlinkLoop> {
        let resolved = self.resolve(path)?;
        Ok(match self.nodes.get(&resolved) {
            Some(Node { meta, kind: NodeKind::Dir { implicit }, .. }) => {
                Some(DirInfo { path: resolved, uid: meta.uid, gid: meta.gid, mode: meta.mode, implicit: *implicit })
            }
            Some(_) => None,
            None if resolved == "/" => Some(DirInfo { path: resolved, uid: 0, gid: 0, mode: 0o755, implicit: true }),
            None => None,
        })
    }

    /// The target of the symlink at `path` (not following the last component).
    pub fn symlink_target(&self, path: &str) -> Option<&str> {
        let path = normalize(path)?;
        match &self.nodes.get(&path)?.kind {
            NodeKind::Symlink { target } => Some(target),
            NodeKind::Dir { .. } => None,
        }
    }

    /// Resolves `path` through symlinks (all components, including the last).
    fn resolve(&self, path: &str) -> Result<String, SymlinkLoop> {
        let mut pending: Vec<&str> = path.split('/').rev().collect();
        let mut current: Vec<&str> = Vec::new();
        let mut hops = 0;
        while let Some(component) = pending.pop() {
            match component {
                "" | "." => continue,
                ".." => {
                    current.pop();
                    continue;
                }
                name => current.push(name),
            }
            let here = join(&current);
            if let Some(Node { kind: NodeKind::Symlink { target }, .. }) = self.nodes.get(&here) {
                hops += 1;
                if hops > MAX_SYMLINK_HOPS {
                    return Err(SymlinkLoop { path: path.to_owned() });
                }
                current.pop();
                if target.starts_with('/') {
                    current.clear();
                }
                pending.extend(target.split('/').rev());
            }
        }
        Ok(join(&current))
    }

    /// Removes `path` (if `include_self`) and everything below it that was written by a layer
    /// before `before_layer` (all layers when `None`). Returns whether anything was removed.
    fn remove_tree(&mut self, path: &str, include_self: bool, before_layer: Option<usize>) -> bool {
        let prefix = if path == "/" { "/".to_owned() } else { format!("{path}/") };
        let old = |layer: usize| before_layer.is_none_or(|b| layer < b);
        let node_keys: Vec<String> = self
            .nodes
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .chain(self.nodes.get_key_value(path).filter(|_| include_self))
            .filter(|(_, n)| old(n.layer))
            .map(|(k, _)| k.clone())
            .collect();
        let file_keys: Vec<String> = self
            .files
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .chain(self.files.get_key_value(path).filter(|_| include_self))
            .filter(|(_, f)| old(f.layer))
            .map(|(k, _)| k.clone())
            .collect();
        for k in &node_keys {
            self.nodes.remove(k);
        }
        for k in &file_keys {
            self.files.remove(k);
        }
        !node_keys.is_empty()
    }
}

impl RootFsBuilder {
    /// An empty builder for a Linux (or other Unix) image.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty builder for a Windows image: entries under `Files/` are mapped to `/`, other
    /// top-level entries (`Hives/`, `UtilityVM/`) are skipped.
    pub fn windows() -> Self {
        Self { windows: true, ..Self::default() }
    }

    /// Applies the next layer (an uncompressed tar stream) on top of the previous ones.
    pub fn add_layer<R: Read>(&mut self, layer: R) -> Result<(), RootFsError> {
        let index = self.layers;
        self.layers += 1;
        let mut archive = tar::Archive::new(layer);
        let entries = archive.entries().map_err(|source| RootFsError::Tar { layer: index, source })?;
        for entry in entries {
            let entry = entry.map_err(|source| RootFsError::Tar { layer: index, source })?;
            self.apply(index, entry)?;
        }
        Ok(())
    }

    /// The finished view; contents nobody links to are dropped.
    pub fn finish(mut self) -> RootFs {
        let finals = self.wanted_finals().clone();
        self.fs.files.retain(|path, _| finals.contains(path));
        self.fs
    }

    fn apply<R: Read>(&mut self, layer: usize, mut entry: tar::Entry<'_, R>) -> Result<(), RootFsError> {
        let raw_name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let entry_err = |source| RootFsError::Entry { layer, path: raw_name.clone(), source };
        let Some(path) = self.map_name(&raw_name) else {
            return Ok(());
        };
        let entry_type = entry.header().entry_type();
        if matches!(
            entry_type,
            tar::EntryType::XGlobalHeader
                | tar::EntryType::XHeader
                | tar::EntryType::GNULongName
                | tar::EntryType::GNULongLink
        ) {
            return Ok(());
        }
        let (parent, base) = split_parent(&path);
        if base == ".wh..wh..opq" {
            self.ensure_parents(&path, layer);
            if self.fs.remove_tree(parent, false, Some(layer)) {
                self.wanted_finals = None;
            }
            return Ok(());
        }
        if let Some(hidden) = base.strip_prefix(".wh.") {
            let target = if parent == "/" { format!("/{hidden}") } else { format!("{parent}/{hidden}") };
            self.ensure_parents(&path, layer);
            if self.fs.remove_tree(&target, true, Some(layer)) {
                self.wanted_finals = None;
            }
            return Ok(());
        }
        if path == "/" && entry_type != tar::EntryType::Directory {
            return Ok(());
        }
        self.ensure_parents(&path, layer);
        let meta = read_meta(&mut entry).map_err(entry_err)?;
        match entry_type {
            tar::EntryType::Directory => self.put_dir(path, meta, layer),
            tar::EntryType::Symlink => {
                let target = entry.link_name_bytes().map(|t| String::from_utf8_lossy(&t).into_owned());
                self.replace_with_non_dir(&path);
                let target = target.unwrap_or_default();
                self.fs.nodes.insert(path, Node { layer, meta, kind: NodeKind::Symlink { target } });
                self.wanted_finals = None;
            }
            tar::EntryType::Link => {
                let target = entry.link_name_bytes().and_then(|t| self.map_name(&String::from_utf8_lossy(&t)));
                self.replace_with_non_dir(&path);
                if self.keep_limit(&path, meta.mode).is_some() {
                    let content = match target.and_then(|t| self.fs.files.get(&t)) {
                        Some(rec) => rec.content.clone(),
                        None => Content::NotRetained("it is a hard link to a file whose contents were not kept"),
                    };
                    self.fs.files.insert(path, FileRec { layer, content });
                }
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                self.replace_with_non_dir(&path);
                if let Some(limit) = self.keep_limit(&path, meta.mode) {
                    let content = if entry.size() > limit {
                        Content::NotRetained(if limit == MAX_WANTED_SIZE {
                            "it is larger than 8 MiB"
                        } else {
                            "it is larger than 64 KiB"
                        })
                    } else {
                        let mut bytes = Vec::new();
                        (&mut entry).take(limit).read_to_end(&mut bytes).map_err(entry_err)?;
                        Content::Bytes(bytes)
                    };
                    self.fs.files.insert(path, FileRec { layer, content });
                } else if is_candidate_name(&path) {
                    self.fs.files.insert(
                        path,
                        FileRec { layer, content: Content::NotRetained("it is executable, not a text file") },
                    );
                }
            }
            // Devices, fifos and unknown types: they replace what was there and are not recorded.
            _ => self.replace_with_non_dir(&path),
        }
        Ok(())
    }

    /// The normalised absolute path for a tar entry name, or `None` to skip the entry.
    fn map_name(&self, raw: &str) -> Option<String> {
        let path = normalize(raw)?;
        if !self.windows {
            return Some(path);
        }
        match path.strip_prefix("/Files") {
            Some("") => Some("/".to_owned()),
            Some(rest) if rest.starts_with('/') => Some(rest.to_owned()),
            _ => None,
        }
    }

    /// Creates missing ancestors of `path` as implicit directories.
    fn ensure_parents(&mut self, path: &str, layer: usize) {
        let mut end = 0;
        while let Some(pos) = path[end + 1..].find('/') {
            end += pos + 1;
            let ancestor = &path[..end];
            if !self.fs.nodes.contains_key(ancestor) {
                self.fs.files.remove(ancestor);
                self.fs.nodes.insert(
                    ancestor.to_owned(),
                    Node { layer, meta: Meta { uid: 0, gid: 0, mode: 0o755 }, kind: NodeKind::Dir { implicit: true } },
                );
            }
        }
    }

    fn put_dir(&mut self, path: String, meta: Meta, layer: usize) {
        self.fs.files.remove(&path);
        let node = Node { layer, meta, kind: NodeKind::Dir { implicit: false } };
        let old = self.fs.nodes.insert(path, node);
        if old.is_some_and(|old| matches!(old.kind, NodeKind::Symlink { .. })) {
            self.wanted_finals = None;
        }
    }

    /// Clears `path` for a non-directory entry: a directory there loses its whole subtree.
    fn replace_with_non_dir(&mut self, path: &str) {
        if self.fs.remove_tree(path, true, None) {
            self.wanted_finals = None;
        }
    }

    /// How many bytes of a regular file at `path` to keep, if any.
    fn keep_limit(&mut self, path: &str, mode: u32) -> Option<u64> {
        if self.wanted_finals().contains(path) {
            Some(MAX_WANTED_SIZE)
        } else if is_candidate_name(path) && mode & 0o111 == 0 {
            Some(MAX_CANDIDATE_SIZE)
        } else {
            None
        }
    }

    /// Where the wanted paths resolve to with the current symlinks.
    fn wanted_finals(&mut self) -> &BTreeSet<String> {
        let fs = &self.fs;
        self.wanted_finals.get_or_insert_with(|| RETAINED_FILES.iter().filter_map(|p| fs.resolve(p).ok()).collect())
    }
}

/// Owner and permission bits of an entry, with PAX `uid`/`gid` overrides applied.
fn read_meta<R: Read>(entry: &mut tar::Entry<'_, R>) -> io::Result<Meta> {
    let header = entry.header();
    let mut meta = Meta { uid: header.uid()?, gid: header.gid()?, mode: header.mode()? & 0o7777 };
    if let Some(extensions) = entry.pax_extensions()? {
        for ext in extensions {
            let ext = ext?;
            let value = ext.value().ok().and_then(|v| v.parse::<u64>().ok());
            match (ext.key(), value) {
                (Ok("uid"), Some(v)) => meta.uid = v,
                (Ok("gid"), Some(v)) => meta.gid = v,
                _ => {}
            }
        }
    }
    Ok(meta)
}

/// `"/" + components`, dropping empty and `.` components; `None` if a `..` component appears.
fn normalize(name: &str) -> Option<String> {
    let mut parts = Vec::new();
    for component in name.split('/') {
        match component {
            "" | "." => {}
            ".." => return None,
            c => parts.push(c),
        }
    }
    Some(join(&parts))
}

fn join(parts: &[&str]) -> String {
    let mut out = String::with_capacity(parts.iter().map(|p| p.len() + 1).sum::<usize>().max(1));
    for p in parts {
        out.push('/');
        out.push_str(p);
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// `("/a/b", "c")` for `"/a/b/c"`, `("/", "c")` for `"/c"`.
fn split_parent(path: &str) -> (&str, &str) {
    match path.rfind('/') {
        Some(0) => ("/", &path[1..]),
        Some(i) => (&path[..i], &path[i + 1..]),
        None => ("/", path),
    }
}

fn is_candidate_name(path: &str) -> bool {
    let (_, base) = split_parent(path);
    CANDIDATE_PREFIXES.iter().any(|p| base.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_handles_prefixes_and_dots() {
        assert_eq!(normalize("./etc/passwd").as_deref(), Some("/etc/passwd"));
        assert_eq!(normalize("/etc//passwd").as_deref(), Some("/etc/passwd"));
        assert_eq!(normalize("etc/./passwd").as_deref(), Some("/etc/passwd"));
        assert_eq!(normalize("home/cnb/").as_deref(), Some("/home/cnb"));
        assert_eq!(normalize("./").as_deref(), Some("/"));
        assert_eq!(normalize("../etc/passwd"), None);
    }

    #[test]
    fn split_parent_of_top_level_and_nested() {
        assert_eq!(split_parent("/etc"), ("/", "etc"));
        assert_eq!(split_parent("/etc/passwd"), ("/etc", "passwd"));
    }

    #[test]
    fn candidate_names() {
        assert!(is_candidate_name("/etc/passwd"));
        assert!(is_candidate_name("/etc/passwd-"));
        assert!(is_candidate_name("/usr/lib/os-release"));
        assert!(!is_candidate_name("/etc/shadow"));
    }
}
