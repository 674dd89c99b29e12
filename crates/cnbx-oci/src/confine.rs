//! Where the entries of a layer may go, and what they may be.
//!
//! A builder layer that adds a buildpack, an extension or the lifecycle may only hold that
//! module's own files, under its own root (`/cnb/buildpacks/<id>/<version>`, ...): a layer
//! that writes `/cnb/lifecycle/launcher` or `/etc/passwd` from a buildpack would run in
//! every app build that uses the builder. A [`Confinement`] names the roots of a layer and
//! a [`Confiner`] checks its entries one by one, in archive order:
//!
//! * every name is a clean absolute path (no `.` or `..` components, no `//`, no trailing
//!   `/`) under one of the roots, or one of the few exact paths the layer is allowed to hold
//!   besides (the `<id>` directory above a buildpack's version directory, the `/lifecycle`
//!   link);
//! * nothing is written through a symbolic link: once a path of the layer has been a
//!   symbolic link, no later entry may have it as a parent, since an unpacker would follow
//!   the link (symbolic links themselves are kept, whatever they point at, as pack keeps
//!   them);
//! * a hard link points at an earlier regular file (or hard link) of the same root;
//! * only regular files, directories, symbolic links and hard links: device nodes, FIFOs
//!   and other special types are not;
//! * no setuid or setgid bit, no extended attributes (file capabilities live there), and no
//!   whiteouts (`.wh.*`), which would delete files of other layers.
//!
//! [`sanitize`] is what cnbx does to entries of archives before that check: it drops special
//! files and clears setuid/setgid bits and extended attributes, and says what it did so the
//! caller can warn. What cannot be mended (a name outside the roots, a write through a link)
//! is refused.

use std::collections::HashSet;
use std::fmt;

use crate::tarball::{EntryKind, TarEntry, clean_path};

/// The places a layer may write.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Confinement {
    roots: Vec<String>,
    parent_dirs: Vec<String>,
    extra: Vec<String>,
    shown_as: Option<String>,
}

impl Confinement {
    /// A layer that writes only under `root` (a clean absolute path).
    pub fn new(root: impl Into<String>) -> Self {
        Self { roots: vec![root.into()], ..Self::default() }
    }

    /// Also allows everything under `root`.
    #[must_use]
    pub fn with_root(mut self, root: impl Into<String>) -> Self {
        self.roots.push(root.into());
        self
    }

    /// Also allows the directory entry `dir` itself (e.g. `/cnb/buildpacks/<id>` above a
    /// buildpack's version directory), and nothing under it but the roots.
    #[must_use]
    pub fn with_parent_dir(mut self, dir: impl Into<String>) -> Self {
        self.parent_dirs.push(dir.into());
        self
    }

    /// Also allows one entry, of any of the allowed types, at exactly `path` (for entries
    /// cnbx writes itself, such as the `/lifecycle` link).
    #[must_use]
    pub fn with_extra(mut self, path: impl Into<String>) -> Self {
        self.extra.push(path.into());
        self
    }

    /// Names entries relative to the first root in messages, and that root as `name` (e.g.
    /// `the archive's root`): for checks of an archive before its layer's real root is known.
    #[must_use]
    pub fn shown_as(mut self, name: impl Into<String>) -> Self {
        self.shown_as = Some(name.into());
        self
    }

    /// The roots.
    pub fn roots(&self) -> &[String] {
        &self.roots
    }

    /// A text that identifies this confinement (for cache keys).
    pub fn describe(&self) -> String {
        format!("roots={:?} parents={:?} extra={:?}", self.roots, self.parent_dirs, self.extra)
    }

    fn root_of(&self, path: &str) -> Option<&str> {
        self.roots.iter().map(String::as_str).find(|r| path == *r || is_under(path, r))
    }
}

/// Whether `path` is strictly below `dir`.
fn is_under(path: &str, dir: &str) -> bool {
    path.strip_prefix(dir).is_some_and(|rest| rest.starts_with('/')) || (dir == "/" && path.len() > 1)
}

/// Whether `path` is a clean absolute path other than `/`.
pub fn is_clean_absolute(path: &str) -> bool {
    path.starts_with('/') && path.len() > 1 && clean_path(path) == path
}

/// Why an entry may not be in a layer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    /// The name is not a clean absolute path.
    #[error("its name is not a clean path (it has '.', '..' or empty components)")]
    NotClean,
    /// The name is outside every root.
    #[error("it is outside {roots}, the only place this layer may write")]
    Outside {
        /// The roots, for the message.
        roots: String,
    },
    /// A root or allowed parent is not a directory.
    #[error("it must be a directory")]
    NotADirectory,
    /// A parent of the name is a symbolic link of this layer.
    #[error("it would be written through the symbolic link '{link}'")]
    ThroughSymlink {
        /// The link.
        link: String,
    },
    /// A hard link to something that is not an earlier file of the same root.
    #[error("it is a hard link to '{target}', which is not an earlier file under {root}")]
    HardLink {
        /// The link target.
        target: String,
        /// The root of the entry.
        root: String,
    },
    /// A device node, FIFO or other special file.
    #[error("it is {what}; a layer may hold only regular files, directories and links")]
    Special {
        /// What it is.
        what: &'static str,
    },
    /// The setuid or setgid bit.
    #[error("it has the setuid or setgid bit set")]
    SetId,
    /// An extended attribute.
    #[error("it carries the extended attribute '{key}'")]
    Xattr {
        /// The PAX record key.
        key: String,
    },
    /// A whiteout name.
    #[error("it is a whiteout ('.wh.' name), which would delete files of other layers")]
    Whiteout,
}

/// An entry that may not be in a layer: its name (quoted as an excerpt) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("entry '{}': {violation}", cnbx_fs::excerpt(path))]
pub struct EntryViolation {
    /// The entry name.
    pub path: String,
    /// What is wrong with it.
    pub violation: Violation,
}

/// What a special typeflag is called in messages.
pub fn special_kind(kind: &EntryKind) -> Option<&'static str> {
    match kind {
        EntryKind::File | EntryKind::Dir | EntryKind::Symlink { .. } | EntryKind::Hardlink { .. } => None,
        EntryKind::Other { typeflag, .. } => Some(match typeflag {
            b'3' => "a character device",
            b'4' => "a block device",
            b'6' => "a FIFO",
            b'7' => "a contiguous file",
            _ => "a special entry",
        }),
    }
}

/// Whether a PAX record key is an extended attribute.
fn is_xattr_key(key: &str) -> bool {
    key.starts_with("SCHILY.xattr.") || key.starts_with("LIBARCHIVE.xattr.")
}

/// Whether the last component of `path` is a whiteout name.
pub fn is_whiteout(path: &str) -> bool {
    path.rsplit('/').next().is_some_and(|base| base.starts_with(".wh."))
}

/// Checks the entries of one layer against a [`Confinement`], in order.
#[derive(Debug)]
pub struct Confiner {
    policy: Confinement,
    symlinks: HashSet<String>,
    files: HashSet<String>,
}

impl Confiner {
    /// A checker for a new layer.
    pub fn new(policy: Confinement) -> Self {
        Self { policy, symlinks: HashSet::new(), files: HashSet::new() }
    }

    /// Checks the next entry and remembers what it is.
    pub fn check(&mut self, e: &TarEntry) -> Result<(), EntryViolation> {
        self.check_inner(e).map_err(|violation| {
            let violation = match violation {
                Violation::Outside { roots } => {
                    Violation::Outside { roots: self.policy.shown_as.clone().unwrap_or(roots) }
                }
                Violation::ThroughSymlink { link } => Violation::ThroughSymlink { link: self.shown(&link) },
                Violation::HardLink { target, root } => Violation::HardLink {
                    target: self.shown(&target),
                    root: self.policy.shown_as.clone().unwrap_or(root),
                },
                other => other,
            };
            EntryViolation { path: self.shown(&e.path), violation }
        })
    }

    /// `path` as messages show it (see [`Confinement::shown_as`]).
    fn shown(&self, path: &str) -> String {
        match (&self.policy.shown_as, self.policy.roots.first()) {
            (Some(_), Some(root)) => {
                path.strip_prefix(root.as_str()).and_then(|r| r.strip_prefix('/')).unwrap_or(path).to_owned()
            }
            _ => path.to_owned(),
        }
    }

    fn check_inner(&mut self, e: &TarEntry) -> Result<(), Violation> {
        let path = e.path.as_str();
        if !is_clean_absolute(path) {
            return Err(Violation::NotClean);
        }
        if let Some(what) = special_kind(&e.kind) {
            return Err(Violation::Special { what });
        }
        if e.mode & 0o6000 != 0 {
            return Err(Violation::SetId);
        }
        if let Some(key) = e.pax_records.keys().find(|k| is_xattr_key(k)) {
            return Err(Violation::Xattr { key: key.clone() });
        }
        if is_whiteout(path) {
            return Err(Violation::Whiteout);
        }
        let is_dir = e.kind == EntryKind::Dir;
        if self.policy.extra.iter().any(|x| x == path) {
            // Allowed as it is.
        } else if self.policy.parent_dirs.iter().any(|d| d == path) || self.policy.roots.iter().any(|r| r == path) {
            if !is_dir {
                return Err(Violation::NotADirectory);
            }
        } else {
            let Some(root) = self.policy.root_of(path) else {
                return Err(Violation::Outside { roots: self.roots_text() });
            };
            self.check_parents(path, root)?;
            if let EntryKind::Hardlink { target } = &e.kind {
                self.check_hard_link(target, root)?;
            }
        }
        if matches!(e.kind, EntryKind::Symlink { .. }) {
            self.symlinks.insert(path.to_owned());
        }
        if matches!(e.kind, EntryKind::File | EntryKind::Hardlink { .. }) {
            self.files.insert(path.to_owned());
        } else {
            self.files.remove(path);
        }
        Ok(())
    }

    /// No parent of `path` below `root` (nor `root` itself) may be a link of this layer.
    fn check_parents(&self, path: &str, root: &str) -> Result<(), Violation> {
        let mut end = path.len();
        while let Some(i) = path[..end].rfind('/') {
            let parent = &path[..i];
            if parent.len() < root.len() {
                break;
            }
            if self.symlinks.contains(parent) {
                return Err(Violation::ThroughSymlink { link: parent.to_owned() });
            }
            end = i;
        }
        Ok(())
    }

    fn check_hard_link(&self, target: &str, root: &str) -> Result<(), Violation> {
        let bad = || Violation::HardLink { target: cnbx_fs::excerpt(target), root: root.to_owned() };
        if !is_clean_absolute(target) || !is_under(target, root) || !self.files.contains(target) {
            return Err(bad());
        }
        self.check_parents(target, root).map_err(|_| bad())
    }

    fn roots_text(&self) -> String {
        self.policy.roots.iter().map(|r| format!("{r}/")).collect::<Vec<_>>().join(", ")
    }
}

/// What [`sanitize`] changed in an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sanitized {
    /// The entry was left out.
    Dropped {
        /// What it was.
        what: &'static str,
    },
    /// Its setuid/setgid bits were cleared.
    ClearedSetId,
    /// Its extended attributes were dropped.
    DroppedXattrs {
        /// Their names.
        names: Vec<String>,
    },
}

impl fmt::Display for Sanitized {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dropped { what } => write!(f, "left out: it is {what}"),
            Self::ClearedSetId => f.write_str("its setuid/setgid bits were cleared"),
            Self::DroppedXattrs { names } => write!(f, "its extended attributes were dropped ({})", names.join(", ")),
        }
    }
}

/// Makes an entry of someone else's archive fit a layer where it can: special files are
/// left out (`None`), setuid/setgid bits cleared, extended attributes dropped. Returns what
/// was changed (empty when nothing was).
pub fn sanitize(mut e: TarEntry) -> (Option<TarEntry>, Vec<Sanitized>) {
    if let Some(what) = special_kind(&e.kind) {
        return (None, vec![Sanitized::Dropped { what }]);
    }
    let mut changes = Vec::new();
    if e.mode & 0o6000 != 0 {
        e.mode &= !0o6000;
        changes.push(Sanitized::ClearedSetId);
    }
    let xattrs: Vec<String> = e.pax_records.keys().filter(|k| is_xattr_key(k)).cloned().collect();
    if !xattrs.is_empty() {
        for k in &xattrs {
            e.pax_records.remove(k);
        }
        let names = xattrs
            .iter()
            .map(|k| k.trim_start_matches("SCHILY.xattr.").trim_start_matches("LIBARCHIVE.xattr.").to_owned())
            .collect();
        changes.push(Sanitized::DroppedXattrs { names });
    }
    (Some(e), changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Confinement {
        Confinement::new("/cnb/buildpacks/a/1").with_parent_dir("/cnb/buildpacks/a")
    }

    fn run(entries: &[TarEntry]) -> Result<(), EntryViolation> {
        let mut c = Confiner::new(policy());
        entries.iter().try_for_each(|e| c.check(e))
    }

    fn violation(entries: &[TarEntry]) -> Violation {
        run(entries).unwrap_err().violation
    }

    #[test]
    fn a_plain_module_passes() {
        run(&[
            TarEntry::dir("/cnb/buildpacks/a"),
            TarEntry::dir("/cnb/buildpacks/a/1"),
            TarEntry::dir("/cnb/buildpacks/a/1/bin"),
            TarEntry::file("/cnb/buildpacks/a/1/bin/build", 3),
            TarEntry::hardlink("/cnb/buildpacks/a/1/bin/detect", "/cnb/buildpacks/a/1/bin/build"),
            TarEntry::symlink("/cnb/buildpacks/a/1/etc", "/etc"),
            TarEntry::symlink("/cnb/buildpacks/a/1/up", "../../../lifecycle"),
        ])
        .unwrap();
    }

    #[test]
    fn escapes_are_refused() {
        assert_eq!(violation(&[TarEntry::file("/cnb/buildpacks/a/1/../../../lifecycle/x", 1)]), Violation::NotClean);
        assert!(matches!(violation(&[TarEntry::file("/cnb/lifecycle/launcher", 1)]), Violation::Outside { .. }));
        assert!(matches!(violation(&[TarEntry::file("/cnb/buildpacks/a/10/x", 1)]), Violation::Outside { .. }));
        assert!(matches!(violation(&[TarEntry::file("/cnb/buildpacks/a/1x", 1)]), Violation::Outside { .. }));
        assert_eq!(violation(&[TarEntry::file("/cnb/buildpacks/a", 1)]), Violation::NotADirectory);
        assert_eq!(violation(&[TarEntry::symlink("/cnb/buildpacks/a/1", "/etc")]), Violation::NotADirectory);
        assert_eq!(violation(&[TarEntry::file("cnb/buildpacks/a/1/x", 1)]), Violation::NotClean);
    }

    #[test]
    fn writes_through_links_are_refused() {
        let v = violation(&[
            TarEntry::symlink("/cnb/buildpacks/a/1/link", "../../../lifecycle"),
            TarEntry::file("/cnb/buildpacks/a/1/link/launcher", 1),
        ]);
        assert_eq!(v, Violation::ThroughSymlink { link: "/cnb/buildpacks/a/1/link".into() });
        // Redefining the link as a directory does not make it safe.
        let v = violation(&[
            TarEntry::symlink("/cnb/buildpacks/a/1/d", "/etc"),
            TarEntry::dir("/cnb/buildpacks/a/1/d"),
            TarEntry::file("/cnb/buildpacks/a/1/d/e/passwd", 1),
        ]);
        assert!(matches!(v, Violation::ThroughSymlink { .. }), "{v}");
    }

    #[test]
    fn hard_links_must_point_at_earlier_files_of_the_root() {
        let v = violation(&[TarEntry::hardlink("/cnb/buildpacks/a/1/x", "/etc/passwd")]);
        assert!(matches!(v, Violation::HardLink { .. }), "{v}");
        let v = violation(&[TarEntry::hardlink("/cnb/buildpacks/a/1/x", "/cnb/buildpacks/a/1/later")]);
        assert!(matches!(v, Violation::HardLink { .. }), "{v}");
        let v = violation(&[
            TarEntry::dir("/cnb/buildpacks/a/1/d"),
            TarEntry::hardlink("/cnb/buildpacks/a/1/x", "/cnb/buildpacks/a/1/d"),
        ]);
        assert!(matches!(v, Violation::HardLink { .. }), "{v}");
    }

    #[test]
    fn special_files_set_id_bits_xattrs_and_whiteouts_are_refused() {
        let fifo = TarEntry::new("/cnb/buildpacks/a/1/f", EntryKind::Other { typeflag: b'6', linkname: String::new() });
        assert_eq!(violation(std::slice::from_ref(&fifo)), Violation::Special { what: "a FIFO" });
        let suid = TarEntry::file("/cnb/buildpacks/a/1/s", 0).with_mode(0o4755);
        assert_eq!(violation(std::slice::from_ref(&suid)), Violation::SetId);
        let mut cap = TarEntry::file("/cnb/buildpacks/a/1/c", 0);
        cap.pax_records.insert("SCHILY.xattr.security.capability".into(), "x".into());
        assert!(matches!(violation(std::slice::from_ref(&cap)), Violation::Xattr { .. }));
        assert_eq!(violation(&[TarEntry::file("/cnb/buildpacks/a/1/.wh.x", 0)]), Violation::Whiteout);

        assert_eq!(sanitize(fifo).0, None);
        let (s, changes) = sanitize(suid);
        assert_eq!(s.unwrap().mode, 0o755);
        assert_eq!(changes, [Sanitized::ClearedSetId]);
        let (c, changes) = sanitize(cap);
        assert!(c.unwrap().pax_records.is_empty());
        assert_eq!(changes, [Sanitized::DroppedXattrs { names: vec!["security.capability".into()] }]);
        run(&[TarEntry::file("/cnb/buildpacks/a/1/ok", 0)]).unwrap();
    }

    #[test]
    fn messages_name_the_entry() {
        let err = run(&[TarEntry::file("/etc/passwd", 1)]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "entry '/etc/passwd': it is outside /cnb/buildpacks/a/1/, the only place this layer may write"
        );
    }
}
