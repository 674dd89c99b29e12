//! Directories walked through descriptors.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use rustix::fd::OwnedFd;
use rustix::fs::{AtFlags, FileType, Mode, OFlags};

use crate::open::{FsError, OpenedFile, describe, open_error, opened, read_flags};

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
        let path = self.child_path(name);
        let fd = rustix::fs::openat(self.fd()?, name, read_flags(), Mode::empty()).map_err(|e| open_error(e, &path))?;
        opened(fd, &path)
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
