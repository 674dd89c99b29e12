//! Directories walked through descriptors.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use crate::open::{FsError, OpenedFile, describe, opened, read_flags};

/// What a directory entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryType {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link (never followed).
    Symlink,
    /// Anything else: a FIFO, a socket, a device (named for messages).
    Other(&'static str),
}

/// One entry of a [`SafeDir`], with the metadata of the entry itself (`lstat`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntryInfo {
    /// Its name in the directory.
    pub name: OsString,
    /// Its type.
    pub kind: EntryType,
    /// Full `st_mode`.
    pub mode: u32,
    /// Owner uid.
    pub uid: u64,
    /// Owner gid.
    pub gid: u64,
    /// Size in bytes.
    pub size: u64,
    /// Number of hard links.
    pub nlink: u64,
    /// Device number.
    pub dev: u64,
    /// Inode number.
    pub inode: u64,
    /// Modification time in nanoseconds since the epoch.
    pub mtime_ns: i128,
}

/// A name listed by [`SafeDir::names`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Its name in the directory.
    pub name: OsString,
    /// Whether the listing says it is a directory (`false` also when the file system does
    /// not say what it is).
    pub dir: bool,
}

/// What `st` says of the entry `name`.
fn info(name: OsString, st: &rustix::fs::Stat) -> DirEntryInfo {
    let kind = match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile => EntryType::File,
        FileType::Directory => EntryType::Dir,
        FileType::Symlink => EntryType::Symlink,
        other => EntryType::Other(describe(other)),
    };
    #[allow(clippy::unnecessary_cast)] // the stat field types differ between platforms
    DirEntryInfo {
        name,
        kind,
        mode: st.st_mode as u32,
        uid: u64::from(st.st_uid),
        gid: u64::from(st.st_gid),
        size: st.st_size as u64,
        nlink: st.st_nlink as u64,
        dev: st.st_dev as u64,
        inode: st.st_ino as u64,
        mtime_ns: i128::from(st.st_mtime as i64) * 1_000_000_000 + i128::from(st.st_mtime_nsec as i64),
    }
}

/// An open directory. Entries are listed, and subdirectories and files opened, relative to
/// its descriptor with `O_NOFOLLOW`: once a `SafeDir` is open, renaming or replacing the
/// path it was opened by (or any of its entries) with a symbolic link cannot make it list or
/// open anything outside it.
#[derive(Debug)]
pub struct SafeDir {
    /// The directory's descriptor, read for listings and used for everything opened in it.
    dir: rustix::fs::Dir,
    path: PathBuf,
    /// Whether it was listed already (the next listing rewinds first).
    listed: bool,
}

impl SafeDir {
    /// Opens the directory `path`. Symbolic links leading to it are followed (whoever gave
    /// cnbx the path named it); everything below it is opened without following any.
    pub fn open(path: &Path) -> Result<Self, FsError> {
        let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::DIRECTORY;
        let fd = rustix::fs::open(path, flags, Mode::empty())
            .map_err(|e| FsError::Io { path: path.to_path_buf(), source: e.into() })?;
        Self::from_fd(fd, path.to_path_buf())
    }

    fn from_fd(fd: OwnedFd, path: PathBuf) -> Result<Self, FsError> {
        match rustix::fs::Dir::new(fd) {
            Ok(dir) => Ok(Self { dir, path, listed: false }),
            Err(e) => Err(FsError::Io { path, source: e.into() }),
        }
    }

    /// The directory's descriptor.
    fn fd(&self) -> Result<rustix::fd::BorrowedFd<'_>, FsError> {
        self.dir.fd().map_err(|e| FsError::Io { path: self.path.clone(), source: e.into() })
    }

    /// The path it was opened by (for messages).
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn child_path(&self, name: &OsStr) -> PathBuf {
        self.path.join(name)
    }

    /// The entries (without `.` and `..`), sorted by the bytes of their names, each with its
    /// own metadata (symbolic links are not followed).
    ///
    /// Read through the directory's own descriptor (a walk lists each directory once, so
    /// nothing is opened twice); a second listing rewinds it first.
    pub fn entries(&mut self) -> Result<Vec<DirEntryInfo>, FsError> {
        self.names()?.into_iter().map(|listed| self.stat(listed.name)).collect()
    }

    /// The names of the entries (without `.` and `..`), sorted by their bytes, each with
    /// whether the listing says it is a directory; nothing else is looked up. For a walk that
    /// opens each directory it descends into ([`SafeDir::open_dir_with_info`]: the
    /// directory's metadata comes from what was opened) and looks up everything else
    /// ([`SafeDir::stat`]).
    pub fn names(&mut self) -> Result<Vec<Listed>, FsError> {
        let path = &self.path;
        let io_err = |e: rustix::io::Errno| FsError::Io { path: path.clone(), source: e.into() };
        if self.listed {
            self.dir.rewind();
        }
        self.listed = true;
        let mut names: Vec<Listed> = Vec::new();
        for entry in self.dir.by_ref() {
            let entry = entry.map_err(io_err)?;
            let name = entry.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            let dir = entry.file_type() == FileType::Directory;
            names.push(Listed { name: OsString::from_vec(name.to_vec()), dir });
        }
        names.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
        Ok(names)
    }

    /// The metadata of the entry `name` itself (a symbolic link is not followed).
    pub fn stat(&self, name: OsString) -> Result<DirEntryInfo, FsError> {
        let st = rustix::fs::statat(self.fd()?, name.as_os_str(), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| FsError::Io { path: self.child_path(&name), source: e.into() })?;
        Ok(info(name, &st))
    }

    /// Opens the subdirectory `name` (a symbolic link is refused, not followed), with the
    /// metadata of the directory opened.
    pub fn open_dir_with_info(&self, name: OsString) -> Result<(SafeDir, DirEntryInfo), FsError> {
        let dir = self.open_dir(&name)?;
        let st = rustix::fs::fstat(dir.fd()?).map_err(|e| FsError::Io { path: dir.path.clone(), source: e.into() })?;
        Ok((dir, info(name, &st)))
    }

    /// Opens the subdirectory `name` (a symbolic link is refused, not followed).
    pub fn open_dir(&self, name: &OsStr) -> Result<SafeDir, FsError> {
        let path = self.child_path(name);
        let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::DIRECTORY | OFlags::NOFOLLOW;
        // Listed as a directory, so a link or a file here now means it was replaced.
        let fd = rustix::fs::openat(self.fd()?, name, flags, Mode::empty()).map_err(|e| match e {
            rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR => FsError::Changed { path: path.clone() },
            e => FsError::Io { path: path.clone(), source: e.into() },
        })?;
        SafeDir::from_fd(fd, path)
    }

    /// Opens the regular file `name` for reading (a symbolic link, FIFO or device is
    /// refused; see [`crate::open_regular`]).
    pub fn open_file(&self, name: &OsStr) -> Result<OpenedFile, FsError> {
        open_file_at(self.fd()?, name, &self.child_path(name))
    }

    /// Reads the regular file `name` whole, refusing one larger than `limit` bytes.
    pub fn read_file(&self, name: &OsStr, limit: u64, kind: &'static str) -> Result<Vec<u8>, FsError> {
        let path = self.child_path(name);
        crate::open::read_opened_bounded(self.open_file(name)?, &path, limit, kind)
    }

    /// The target of the symbolic link `name`, verbatim. (Listed as a link: if it is not one
    /// any more, it was replaced, [`FsError::Changed`].)
    pub fn read_link(&self, name: &OsStr) -> Result<OsString, FsError> {
        let target = rustix::fs::readlinkat(self.fd()?, name, Vec::new()).map_err(|e| match e {
            rustix::io::Errno::INVAL => FsError::Changed { path: self.child_path(name) },
            e => FsError::Io { path: self.child_path(name), source: e.into() },
        })?;
        Ok(OsString::from_vec(target.into_bytes()))
    }
}

/// Opens the regular file `name` of the directory `dir` for reading, never following a
/// symbolic link and never blocking on a FIFO (`path` names it in errors).
fn open_file_at(dir: BorrowedFd<'_>, name: &OsStr, path: &Path) -> Result<OpenedFile, FsError> {
    let fd = rustix::fs::openat(dir, name, read_flags(), Mode::empty()).map_err(|e| {
        if e == Errno::LOOP && kind_at(dir, name) == Some(FileType::Symlink) {
            return FsError::NotRegular { path: path.to_path_buf(), what: "a symbolic link" };
        }
        FsError::Io { path: path.to_path_buf(), source: e.into() }
    })?;
    opened(fd, path)
}

/// What `name` in `dir` is (a symbolic link is not followed); `None` when it cannot be
/// looked up.
fn kind_at(dir: BorrowedFd<'_>, name: &OsStr) -> Option<FileType> {
    rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW).ok().map(|st| FileType::from_raw_mode(st.st_mode))
}

/// The error for `path`, found to be `what` where cnbx needed a directory.
fn not_a_directory(path: &Path, what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotADirectory,
        format!(
            "{} is {what}, not a directory; cnbx never follows a symbolic link inside a directory it reads or writes",
            path.display()
        ),
    )
}

/// A directory held open by its descriptor, for reading and writing inside it: every name
/// cnbx looks up, opens, creates, renames or removes in it is resolved relative to that
/// descriptor, one name at a time, and a symbolic link is never followed (opening one as a
/// directory or a file is refused, naming it). Replacing the path it was opened by, or any
/// directory above it, with a link cannot redirect what is read or written through it.
///
/// Clones share the descriptor; an `OpenDir` can be used from several threads at once.
#[derive(Debug, Clone)]
pub struct OpenDir {
    fd: Arc<OwnedFd>,
    path: PathBuf,
}

impl OpenDir {
    /// Opens the directory `path`. Symbolic links leading to it are followed (whoever gave
    /// cnbx the path named it); nothing below it is. A missing directory is an error whose
    /// [`io::ErrorKind`] is `NotFound`.
    pub fn open(path: &Path) -> io::Result<Self> {
        let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::DIRECTORY;
        let fd = rustix::fs::open(path, flags, Mode::empty())
            .map_err(|e| io::Error::new(io::Error::from(e).kind(), format!("opening {}: {e}", path.display())))?;
        Ok(Self { fd: Arc::new(fd), path: path.to_path_buf() })
    }

    /// Creates the directory `path` with its missing parents (the mode the umask gives), as
    /// [`std::fs::create_dir_all`] does, and opens it (see [`OpenDir::open`]).
    pub fn create(path: &Path) -> io::Result<Self> {
        std::fs::create_dir_all(path)
            .map_err(|e| io::Error::new(e.kind(), format!("creating {}: {e}", path.display())))?;
        Self::open(path)
    }

    /// The path it was opened by (for messages).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path of its entry `name` (for messages).
    pub fn child_path(&self, name: impl AsRef<OsStr>) -> PathBuf {
        self.path.join(name.as_ref())
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Opens its subdirectory `name`. Anything else there (a symbolic link, a file) is
    /// refused with an error naming it, of kind `NotADirectory`; a missing one is `NotFound`.
    pub fn open_dir(&self, name: impl AsRef<OsStr>) -> io::Result<Self> {
        let name = name.as_ref();
        let path = self.child_path(name);
        let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::DIRECTORY | OFlags::NOFOLLOW;
        let fd = rustix::fs::openat(self.fd(), name, flags, Mode::empty()).map_err(|e| match e {
            Errno::LOOP | Errno::NOTDIR => {
                let what = kind_at(self.fd(), name).map_or("not a directory", describe);
                not_a_directory(&path, what)
            }
            e => io::Error::new(io::Error::from(e).kind(), format!("opening {}: {e}", path.display())),
        })?;
        Ok(Self { fd: Arc::new(fd), path })
    }

    /// Creates its subdirectory `name` (the mode the umask gives) unless it exists, and opens
    /// it: a symbolic link (or anything but a directory) there is refused as by
    /// [`OpenDir::open_dir`], never followed.
    pub fn create_dir(&self, name: impl AsRef<OsStr>) -> io::Result<Self> {
        let name = name.as_ref();
        match rustix::fs::mkdirat(self.fd(), name, Mode::from_raw_mode(0o777)) {
            Ok(()) | Err(Errno::EXIST) => self.open_dir(name),
            Err(e) => Err(io::Error::new(
                io::Error::from(e).kind(),
                format!("creating {}: {e}", self.child_path(name).display()),
            )),
        }
    }

    /// Opens its regular file `name` for reading (a symbolic link, FIFO or device is
    /// refused; see [`crate::open_regular`]).
    pub fn open_file(&self, name: impl AsRef<OsStr>) -> Result<OpenedFile, FsError> {
        let name = name.as_ref();
        open_file_at(self.fd(), name, &self.child_path(name))
    }

    /// Reads its regular file `name` whole, refusing one larger than `limit` bytes (see
    /// [`crate::read_bounded`]).
    pub fn read_file(&self, name: impl AsRef<OsStr>, limit: u64, kind: &'static str) -> Result<Vec<u8>, FsError> {
        let name = name.as_ref();
        crate::open::read_opened_bounded(self.open_file(name)?, &self.child_path(name), limit, kind)
    }

    /// The metadata of its entry `name` itself (a symbolic link is not followed); `None`
    /// when there is none.
    pub fn stat(&self, name: impl AsRef<OsStr>) -> io::Result<Option<DirEntryInfo>> {
        let name = name.as_ref();
        match rustix::fs::statat(self.fd(), name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(info(name.to_os_string(), &st))),
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(io::Error::new(
                io::Error::from(e).kind(),
                format!("looking up {}: {e}", self.child_path(name).display()),
            )),
        }
    }

    /// Removes its entry `name` when it is not a directory (a symbolic link is removed, not
    /// what it points at). Returns whether there was one.
    pub fn remove_file(&self, name: impl AsRef<OsStr>) -> io::Result<bool> {
        let name = name.as_ref();
        match rustix::fs::unlinkat(self.fd(), name, AtFlags::empty()) {
            Ok(()) => Ok(true),
            Err(Errno::NOENT) => Ok(false),
            Err(e) => Err(io::Error::new(
                io::Error::from(e).kind(),
                format!("removing {}: {e}", self.child_path(name).display()),
            )),
        }
    }

    /// Renames its entry `from` to `to` in the directory `into` (which must be on the same
    /// file system), replacing what `to` names there unless that is a directory; neither
    /// name is followed if it is a symbolic link.
    pub fn rename(&self, from: impl AsRef<OsStr>, into: &OpenDir, to: impl AsRef<OsStr>) -> io::Result<()> {
        rustix::fs::renameat(self.fd(), from.as_ref(), into.fd(), to.as_ref()).map_err(|e| {
            io::Error::new(
                io::Error::from(e).kind(),
                format!("renaming {} to {}: {e}", self.child_path(from).display(), into.child_path(to).display()),
            )
        })
    }

    /// Its entries (without `.` and `..`), sorted by name, each with its own metadata (a
    /// symbolic link is not followed). Read through a descriptor of its own, so listings
    /// never disturb one another.
    pub fn entries(&self) -> Result<Vec<DirEntryInfo>, FsError> {
        let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::DIRECTORY;
        let fd = rustix::fs::openat(self.fd(), c".", flags, Mode::empty())
            .map_err(|e| FsError::Io { path: self.path.clone(), source: e.into() })?;
        SafeDir::from_fd(fd, self.path.clone())?.entries()
    }

    /// Makes the directory's entries durable (after a rename or a removal in it).
    pub fn sync(&self) -> io::Result<()> {
        rustix::fs::fsync(self.fd())
            .map_err(|e| io::Error::new(io::Error::from(e).kind(), format!("syncing {}: {e}", self.path.display())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_sorted_and_never_follows_links() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("b")).unwrap();
        std::fs::write(root.join("a"), b"a").unwrap();
        std::fs::write(root.join("B"), b"B").unwrap();
        std::os::unix::fs::symlink("/etc", root.join("link")).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", root.join("flink")).unwrap();
        let mut d = SafeDir::open(root).unwrap();
        let entries = d.entries().unwrap();
        let names: Vec<_> = entries.iter().map(|e| e.name.to_str().unwrap()).collect();
        assert_eq!(names, ["B", "a", "b", "flink", "link"]);
        let kinds: Vec<_> = entries.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, [EntryType::File, EntryType::File, EntryType::Dir, EntryType::Symlink, EntryType::Symlink]);
        assert_eq!(d.read_link(OsStr::new("link")).unwrap(), "/etc");
        assert!(d.open_dir(OsStr::new("link")).is_err());
        assert!(matches!(d.open_file(OsStr::new("flink")), Err(FsError::NotRegular { what: "a symbolic link", .. })));
        assert_eq!(d.read_file(OsStr::new("a"), 10, "x").unwrap(), b"a");
        assert!(d.open_dir(OsStr::new("b")).unwrap().entries().unwrap().is_empty());
        // A second listing starts from the beginning again (it reads the same descriptor, which
        // the first listing left at its end).
        assert_eq!(d.entries().unwrap().len(), entries.len());
    }

    #[test]
    fn names_say_which_are_directories_and_a_directory_opened_has_its_own_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("d")).unwrap();
        std::fs::write(root.join("d/inner"), b"x").unwrap();
        std::fs::write(root.join("f"), b"f").unwrap();
        std::os::unix::fs::symlink("/etc", root.join("link")).unwrap();
        let mut d = SafeDir::open(root).unwrap();
        let names = d.names().unwrap();
        let listed: Vec<(&str, bool)> = names.iter().map(|l| (l.name.to_str().unwrap(), l.dir)).collect();
        assert_eq!(listed, [("d", true), ("f", false), ("link", false)], "a link to a directory is not one");
        let (mut sub, info) = d.open_dir_with_info(OsString::from("d")).unwrap();
        assert_eq!(info, d.stat(OsString::from("d")).unwrap(), "the same as looking it up");
        assert_eq!(info.kind, EntryType::Dir);
        assert_eq!(sub.names().unwrap(), [Listed { name: OsString::from("inner"), dir: false }]);
        assert!(d.open_dir_with_info(OsString::from("link")).is_err(), "a link is never followed");
        assert!(matches!(d.open_dir_with_info(OsString::from("f")), Err(FsError::Changed { .. })));
        assert_eq!(d.entries().unwrap().len(), 3, "entries() lists again from the start");
    }

    #[test]
    fn open_dirs_never_follow_a_link_below_them() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("out");
        let elsewhere = dir.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        let out = OpenDir::create(&root).unwrap();
        let blobs = out.create_dir("blobs").unwrap();
        assert_eq!(blobs.path(), root.join("blobs"));
        assert!(out.create_dir("blobs").is_ok(), "an existing directory is opened");
        std::os::unix::fs::symlink(&elsewhere, root.join("link")).unwrap();
        std::fs::write(root.join("file"), b"x").unwrap();
        for name in ["link", "file"] {
            for err in [out.open_dir(name).unwrap_err(), out.create_dir(name).unwrap_err()] {
                assert_eq!(err.kind(), io::ErrorKind::NotADirectory, "{err}");
                assert!(err.to_string().starts_with(&root.join(name).display().to_string()), "{err}");
            }
        }
        assert!(out.open_dir("link").unwrap_err().to_string().contains("is a symbolic link, not a directory"));
        assert_eq!(out.open_dir("missing").unwrap_err().kind(), io::ErrorKind::NotFound);
        std::os::unix::fs::symlink(elsewhere.join("f"), root.join("flink")).unwrap();
        assert!(matches!(out.open_file("flink"), Err(FsError::NotRegular { what: "a symbolic link", .. })));
        assert_eq!(out.read_file("file", 1, "x").unwrap(), b"x");
        assert_eq!(out.stat("link").unwrap().unwrap().kind, EntryType::Symlink);
        assert!(out.stat("missing").unwrap().is_none());
        assert!(out.remove_file("link").unwrap(), "the link is removed");
        assert!(!out.remove_file("link").unwrap());
        assert!(elsewhere.is_dir(), "not what it pointed at");
        let names: Vec<_> = out.entries().unwrap().into_iter().map(|e| e.name).collect();
        assert_eq!(names, ["blobs", "file", "flink"]);
        out.rename("file", &blobs, "moved").unwrap();
        assert!(root.join("blobs/moved").is_file());
        out.sync().unwrap();
        assert!(std::fs::read_dir(&elsewhere).unwrap().next().is_none(), "nothing was made elsewhere");
    }

    #[test]
    fn an_open_directory_stays_itself_when_its_path_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("bp");
        std::fs::create_dir(&root).unwrap();
        std::fs::write(root.join("mine"), b"mine").unwrap();
        let mut d = SafeDir::open(&root).unwrap();
        std::fs::rename(&root, dir.path().join("moved")).unwrap();
        std::os::unix::fs::symlink("/etc", &root).unwrap();
        let names: Vec<_> = d.entries().unwrap().into_iter().map(|e| e.name).collect();
        assert_eq!(names, [OsString::from("mine")]);
    }
}
