//! Opening files once, without following symbolic links, and reading them with a bound.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use rustix::fs::{FileType, Mode, OFlags};

/// Why a file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    /// The file could not be opened or read.
    #[error("reading {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The path is not a regular file (a symbolic link, a directory, a FIFO, a device, ...).
    #[error("{} is {what}, not a regular file; cnbx reads only regular files and never follows symbolic links", path.display())]
    NotRegular {
        /// The file.
        path: PathBuf,
        /// What it is instead (`a symbolic link`, `a directory`, `a FIFO`, ...).
        what: &'static str,
    },
    /// The file is not the one that was listed before (it was replaced or changed while
    /// cnbx was working).
    #[error("{} changed while cnbx was reading it (it is no longer the file that was listed); make sure nothing modifies it during the command, then run it again", path.display())]
    Changed {
        /// The file.
        path: PathBuf,
    },
    /// The file is larger than cnbx reads for its kind.
    #[error("{} is larger than the {limit} bytes cnbx reads for {kind}", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit in bytes.
        limit: u64,
        /// What kind of file it is (`a buildpack descriptor`, `an image manifest`, ...).
        kind: &'static str,
    },
}

impl FsError {
    /// The underlying I/O error kind, when there is one (`NotFound` for a missing file).
    pub fn io_kind(&self) -> Option<io::ErrorKind> {
        match self {
            Self::Io { source, .. } => Some(source.kind()),
            _ => None,
        }
    }

    /// Whether the file does not exist.
    pub fn is_not_found(&self) -> bool {
        self.io_kind() == Some(io::ErrorKind::NotFound)
    }
}

/// A regular file opened by [`open_regular`], with the metadata of the opened descriptor.
#[derive(Debug)]
pub struct OpenedFile {
    /// The open file.
    pub file: File,
    /// Its size in bytes, from `fstat` on the descriptor.
    pub size: u64,
    /// Device number, from `fstat`.
    pub dev: u64,
    /// Inode number, from `fstat`.
    pub inode: u64,
    /// Full `st_mode` (type and permission bits), from `fstat`.
    pub mode: u32,
    /// Modification time in nanoseconds since the epoch, from `fstat`.
    pub mtime_ns: i128,
}

/// What a file type is called in messages.
pub(crate) fn describe(ft: FileType) -> &'static str {
    match ft {
        FileType::RegularFile => "a regular file",
        FileType::Directory => "a directory",
        FileType::Symlink => "a symbolic link",
        FileType::Fifo => "a FIFO",
        FileType::Socket => "a socket",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        _ => "a special file",
    }
}

/// The flags every read of an input uses: read-only, close-on-exec, no controlling terminal,
/// no blocking open (a FIFO would otherwise wait for a writer), and no symbolic link in the
/// last component.
pub(crate) fn read_flags() -> OFlags {
    OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK | OFlags::NOFOLLOW
}

/// Checks that `fd` is a regular file and describes it.
pub(crate) fn opened(fd: rustix::fd::OwnedFd, path: &Path) -> Result<OpenedFile, FsError> {
    let st = rustix::fs::fstat(&fd).map_err(|e| FsError::Io { path: path.to_path_buf(), source: e.into() })?;
    let ft = FileType::from_raw_mode(st.st_mode);
    if ft != FileType::RegularFile {
        return Err(FsError::NotRegular { path: path.to_path_buf(), what: describe(ft) });
    }
    // Regular files ignore O_NONBLOCK for reads, so the descriptor can be used as it is.
    #[allow(clippy::unnecessary_cast)] // the stat field types differ between platforms
    Ok(OpenedFile {
        file: File::from(fd),
        size: st.st_size as u64,
        dev: st.st_dev as u64,
        inode: st.st_ino as u64,
        mode: st.st_mode as u32,
        mtime_ns: i128::from(st.st_mtime as i64) * 1_000_000_000 + i128::from(st.st_mtime_nsec as i64),
    })
}

/// Maps an error of an `open` with `O_NOFOLLOW` on `path`: `ELOOP` there means the last
/// component is a symbolic link.
pub(crate) fn open_error(e: rustix::io::Errno, path: &Path) -> FsError {
    if e == rustix::io::Errno::LOOP
        && let Ok(m) = std::fs::symlink_metadata(path)
        && m.file_type().is_symlink()
    {
        return FsError::NotRegular { path: path.to_path_buf(), what: "a symbolic link" };
    }
    FsError::Io { path: path.to_path_buf(), source: e.into() }
}

/// Opens `path` for reading if it is a regular file: a symbolic link in its last component is
/// not followed, a FIFO does not block, and the type is checked on the opened descriptor.
/// (Symbolic links in the directories leading to `path` are followed: they were named by
/// whoever gave cnbx the path. Inside a directory from someone else, use [`SafeDir`].)
///
/// [`SafeDir`]: crate::SafeDir
pub fn open_regular(path: &Path) -> Result<OpenedFile, FsError> {
    let fd = rustix::fs::open(path, read_flags(), Mode::empty()).map_err(|e| open_error(e, path))?;
    opened(fd, path)
}

/// Like [`open_regular`], but follows a symbolic link in the last component: for a file the
/// user keeps as their own (their config file, which may link into a dotfiles repository).
/// The opened file must still be a regular file, and a FIFO still does not block.
pub fn open_regular_following(path: &Path) -> Result<OpenedFile, FsError> {
    let flags = read_flags() & !OFlags::NOFOLLOW;
    let fd = rustix::fs::open(path, flags, Mode::empty())
        .map_err(|e| FsError::Io { path: path.to_path_buf(), source: e.into() })?;
    opened(fd, path)
}

/// [`read_bounded`] through [`open_regular_following`].
pub fn read_bounded_following(path: &Path, limit: u64, kind: &'static str) -> Result<Vec<u8>, FsError> {
    let opened = open_regular_following(path)?;
    read_opened_bounded(opened, path, limit, kind)
}

/// Opens `path` like [`open_regular`] and checks that the opened file is the one listed
/// earlier: same device, inode and size. A file replaced after it was listed (by a
/// symbolic link, in itself or in a directory leading to it, or by another file) is
/// refused with [`FsError::Changed`], so what is read is always what was listed.
pub fn open_expected(path: &Path, dev: u64, inode: u64, size: u64) -> Result<OpenedFile, FsError> {
    // It was listed as a regular file: anything else now means it was replaced.
    let o = open_regular(path).map_err(|e| match e {
        FsError::NotRegular { path, .. } => FsError::Changed { path },
        other => other,
    })?;
    if o.dev != dev || o.inode != inode || o.size != size {
        return Err(FsError::Changed { path: path.to_path_buf() });
    }
    Ok(o)
}

/// Reads the regular file `path` (see [`open_regular`]) whole, refusing one larger than
/// `limit` bytes (`kind` names what it is in the error: `a buildpack descriptor`, ...).
/// The limit is checked on the opened file and again while reading, so a file that grows
/// meanwhile is refused too.
pub fn read_bounded(path: &Path, limit: u64, kind: &'static str) -> Result<Vec<u8>, FsError> {
    let opened = open_regular(path)?;
    read_opened_bounded(opened, path, limit, kind)
}

/// [`read_bounded`] on an already opened file.
pub(crate) fn read_opened_bounded(
    opened: OpenedFile,
    path: &Path,
    limit: u64,
    kind: &'static str,
) -> Result<Vec<u8>, FsError> {
    let too_large = || FsError::TooLarge { path: path.to_path_buf(), limit, kind };
    if opened.size > limit {
        return Err(too_large());
    }
    let mut buf = Vec::with_capacity(usize::try_from(opened.size).unwrap_or(0));
    opened
        .file
        .take(limit.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(|source| FsError::Io { path: path.to_path_buf(), source })?;
    if buf.len() as u64 > limit {
        return Err(too_large());
    }
    Ok(buf)
}

/// What a path named on the command line reads (see [`read_bounded_named`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Named {
    /// A file: every other path.
    File,
    /// `-`: standard input.
    StandardInput,
    /// `/dev/fd/N`, `/proc/self/fd/N` or `/dev/stdin`: a descriptor this process holds, as a
    /// shell's process substitution (`<(envsubst < builder.toml)`) passes it.
    Descriptor,
}

impl Named {
    /// What `path` names, from its spelling alone (nothing is looked up).
    pub fn of(path: &Path) -> Self {
        let Some(text) = path.to_str() else { return Self::File };
        if text == "-" {
            return Self::StandardInput;
        }
        let number = |n: &str| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit());
        let descriptor = text == "/dev/stdin"
            || text.strip_prefix("/dev/fd/").is_some_and(number)
            || text.strip_prefix("/proc/self/fd/").is_some_and(number);
        if descriptor { Self::Descriptor } else { Self::File }
    }
}

/// [`read_bounded`] for a path the user named on the command line, which may also be standard
/// input (`-`, read whatever it is) or a descriptor the shell opened ([`Named::Descriptor`]),
/// read only when it is a **pipe**: the path's type is looked up first (following its links,
/// without opening anything) and checked again on the opened descriptor, so no file or device
/// a descriptor path can lead to is opened or read (a link to a regular file is refused as "a
/// symbolic link", as [`read_bounded`] refuses it). The same bound applies to what is read.
pub fn read_bounded_named(path: &Path, limit: u64, kind: &'static str) -> Result<Vec<u8>, FsError> {
    match Named::of(path) {
        Named::File => read_bounded(path, limit, kind),
        Named::StandardInput => read_limited(std::io::stdin().lock(), path, limit, kind),
        Named::Descriptor => {
            let io = |e: io::Error| FsError::Io { path: path.to_path_buf(), source: e };
            let not_pipe = |ft: FileType| FsError::NotRegular { path: path.to_path_buf(), what: link_to(ft) };
            let st = rustix::fs::stat(path).map_err(|e| io(e.into()))?;
            let ft = FileType::from_raw_mode(st.st_mode);
            if ft != FileType::Fifo {
                return Err(not_pipe(ft));
            }
            let flags = read_flags() & !OFlags::NOFOLLOW;
            let fd = rustix::fs::open(path, flags, Mode::empty()).map_err(|e| io(e.into()))?;
            let ft = FileType::from_raw_mode(rustix::fs::fstat(&fd).map_err(|e| io(e.into()))?.st_mode);
            if ft != FileType::Fifo {
                return Err(not_pipe(ft));
            }
            // Opened without blocking (a FIFO waits for a writer otherwise); read blocking.
            let flags = rustix::fs::fcntl_getfl(&fd).map_err(|e| io(e.into()))?;
            rustix::fs::fcntl_setfl(&fd, flags & !OFlags::NONBLOCK).map_err(|e| io(e.into()))?;
            read_limited(File::from(fd), path, limit, kind)
        }
    }
}

/// How a descriptor path that is not a pipe is described: a link to a regular file is "a
/// symbolic link" (pass the file itself), anything else a link to what it is.
fn link_to(ft: FileType) -> &'static str {
    match ft {
        FileType::RegularFile => "a symbolic link",
        FileType::Directory => "a symbolic link to a directory",
        FileType::Socket => "a symbolic link to a socket",
        FileType::CharacterDevice => "a symbolic link to a character device",
        FileType::BlockDevice => "a symbolic link to a block device",
        _ => "a symbolic link to a special file",
    }
}

/// Reads `reader` to its end, refusing more than `limit` bytes.
fn read_limited(reader: impl Read, path: &Path, limit: u64, kind: &'static str) -> Result<Vec<u8>, FsError> {
    let mut buf = Vec::new();
    reader
        .take(limit.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(|source| FsError::Io { path: path.to_path_buf(), source })?;
    if buf.len() as u64 > limit {
        return Err(FsError::TooLarge { path: path.to_path_buf(), limit, kind });
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a");
        std::fs::write(&p, b"hello").unwrap();
        let o = open_regular(&p).unwrap();
        assert_eq!(o.size, 5);
        assert_eq!(read_bounded(&p, 5, "a test file").unwrap(), b"hello");
        let err = read_bounded(&p, 4, "a test file").unwrap_err();
        assert!(matches!(err, FsError::TooLarge { limit: 4, .. }), "{err}");
        assert!(err.to_string().ends_with("is larger than the 4 bytes cnbx reads for a test file"), "{err}");
    }

    #[test]
    fn symlinks_directories_and_fifos_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("secret");
        std::fs::write(&target, b"secret").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = read_bounded(&link, 100, "x").unwrap_err();
        assert!(matches!(err, FsError::NotRegular { what: "a symbolic link", .. }), "{err}");
        let err = open_regular(dir.path()).unwrap_err();
        assert!(matches!(err, FsError::NotRegular { what: "a directory", .. }), "{err}");
        let fifo = dir.path().join("fifo");
        rustix::fs::mknodat(rustix::fs::CWD, &fifo, FileType::Fifo, Mode::from_raw_mode(0o600), 0).unwrap();
        // Must not hang waiting for a writer.
        let err = open_regular(&fifo).unwrap_err();
        assert!(matches!(err, FsError::NotRegular { what: "a FIFO", .. }), "{err}");
        let err = open_regular(&dir.path().join("missing")).unwrap_err();
        assert!(err.is_not_found(), "{err}");
    }

    #[test]
    fn following_reads_through_links_but_only_regular_files() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("real");
        std::fs::write(&target, b"mine").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert_eq!(read_bounded_following(&link, 4, "x").unwrap(), b"mine");
        assert!(matches!(read_bounded_following(&link, 3, "x"), Err(FsError::TooLarge { limit: 3, .. })));
        let fifo = dir.path().join("fifo");
        rustix::fs::mknodat(rustix::fs::CWD, &fifo, FileType::Fifo, Mode::from_raw_mode(0o600), 0).unwrap();
        let fifo_link = dir.path().join("fifo-link");
        std::os::unix::fs::symlink(&fifo, &fifo_link).unwrap();
        // Must not hang waiting for a writer.
        let err = read_bounded_following(&fifo_link, 10, "x").unwrap_err();
        assert!(matches!(err, FsError::NotRegular { what: "a FIFO", .. }), "{err}");
        let zero_link = dir.path().join("zero");
        std::os::unix::fs::symlink("/dev/zero", &zero_link).unwrap();
        let err = read_bounded_following(&zero_link, 10, "x").unwrap_err();
        assert!(matches!(err, FsError::NotRegular { what: "a character device", .. }), "{err}");
        assert!(read_bounded_following(&dir.path().join("missing"), 10, "x").unwrap_err().is_not_found());
    }

    #[test]
    fn named_paths_are_told_apart_by_their_spelling() {
        for (path, named) in [
            ("-", Named::StandardInput),
            ("/dev/fd/63", Named::Descriptor),
            ("/proc/self/fd/12", Named::Descriptor),
            ("/dev/stdin", Named::Descriptor),
            ("builder.toml", Named::File),
            ("./-", Named::File),
            ("/dev/fd/", Named::File),
            ("/dev/fd/6x", Named::File),
            ("/dev/fd/../zero", Named::File),
            ("/proc/1/fd/3", Named::File),
        ] {
            assert_eq!(Named::of(Path::new(path)), named, "{path}");
        }
    }

    /// The path of descriptor `fd` as process substitution spells it.
    fn descriptor_path(fd: &impl std::os::fd::AsRawFd) -> std::path::PathBuf {
        std::path::PathBuf::from(format!("/dev/fd/{}", fd.as_raw_fd()))
    }

    #[test]
    fn a_descriptor_is_read_when_it_is_a_pipe_and_bounded() {
        let (reader, mut writer) = std::io::pipe().unwrap();
        let path = descriptor_path(&reader);
        let feed = std::thread::spawn(move || {
            std::io::Write::write_all(&mut writer, b"[build]\n").unwrap();
        });
        assert_eq!(read_bounded_named(&path, 100, "x").unwrap(), b"[build]\n");
        feed.join().unwrap();

        let (reader, mut writer) = std::io::pipe().unwrap();
        let path = descriptor_path(&reader);
        let feed = std::thread::spawn(move || {
            let _ = std::io::Write::write_all(&mut writer, &[b'x'; 100_000]);
        });
        let err = read_bounded_named(&path, 10, "x").unwrap_err();
        assert!(matches!(err, FsError::TooLarge { limit: 10, .. }), "{err}");
        drop(reader);
        feed.join().unwrap();
    }

    #[test]
    fn a_descriptor_of_a_file_or_a_device_is_refused_unread() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, b"TOKEN=hunter2").unwrap();
        let file = File::open(&secret).unwrap();
        let err = read_bounded_named(&descriptor_path(&file), 100, "x").unwrap_err();
        assert!(matches!(err, FsError::NotRegular { what: "a symbolic link", .. }), "{err}");
        let zero = File::open("/dev/zero").unwrap();
        let err = read_bounded_named(&descriptor_path(&zero), 100, "x").unwrap_err();
        assert!(matches!(err, FsError::NotRegular { what: "a symbolic link to a character device", .. }), "{err}");
        // A named FIFO is a file like any other: refused without blocking.
        let fifo = dir.path().join("fifo");
        rustix::fs::mknodat(rustix::fs::CWD, &fifo, FileType::Fifo, Mode::from_raw_mode(0o600), 0).unwrap();
        let err = read_bounded_named(&fifo, 10, "x").unwrap_err();
        assert!(matches!(err, FsError::NotRegular { what: "a FIFO", .. }), "{err}");
    }

    #[test]
    fn special_files_are_refused() {
        let err = read_bounded(Path::new("/dev/zero"), 10, "x").unwrap_err();
        assert!(matches!(err, FsError::NotRegular { what: "a character device", .. }), "{err}");
    }
}
