//! The one atomic, durable write helper.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::dir::{EntryType, OpenDir};

/// The name prefix of every temporary file cnbx creates. A file whose name starts with it
/// is never an output: it is either being written or was left behind by a killed process.
pub const TMP_PREFIX: &str = ".cnbx-tmp-";

/// Whether `name` is a temporary file of cnbx (see [`TMP_PREFIX`]).
pub fn is_temporary_name(name: &str) -> bool {
    name.starts_with(TMP_PREFIX)
}

/// A temporary file or directory removed by [`remove_temporaries`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemovedTemporary {
    /// Where it was.
    pub path: PathBuf,
    /// How many bytes it held (the sum of its files' sizes, for a directory).
    pub bytes: u64,
}

/// Removes every entry of `dir` whose name starts with [`TMP_PREFIX`] (files, symbolic
/// links and whole directories; links are removed, never followed) and returns what was
/// removed. A missing `dir` has none.
///
/// Only for a directory no other cnbx process is writing into (see
/// [`FileLock::enter`](crate::FileLock::enter)): their temporary files are live.
pub fn remove_temporaries(dir: &Path) -> io::Result<Vec<RemovedTemporary>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut removed = Vec::new();
    for entry in entries {
        let entry = entry?;
        if !entry.file_name().to_str().is_some_and(is_temporary_name) {
            continue;
        }
        let path = entry.path();
        let bytes = path_size(&path);
        match remove_path(&path) {
            Ok(true) => removed.push(RemovedTemporary { path, bytes }),
            // Removed meanwhile (by its writer, or another sweep).
            Ok(false) => {}
            Err(e) => return Err(io::Error::new(e.kind(), format!("removing {}: {e}", path.display()))),
        }
    }
    Ok(removed)
}

/// Like [`remove_temporaries`], for the open directory `dir`: its temporary files and links
/// are removed through its descriptor; a temporary directory is removed whole (see
/// [`remove_path`]).
pub fn remove_temporaries_in(dir: &OpenDir) -> io::Result<Vec<RemovedTemporary>> {
    let entries = dir.entries().map_err(|e| io::Error::other(e.to_string()))?;
    let mut removed = Vec::new();
    for entry in entries {
        if !entry.name.to_str().is_some_and(is_temporary_name) {
            continue;
        }
        let path = dir.child_path(&entry.name);
        let (gone, bytes) = match entry.kind {
            EntryType::Dir => {
                let bytes = path_size(&path);
                (remove_path(&path)?, bytes)
            }
            EntryType::File => (dir.remove_file(&entry.name)?, entry.size),
            EntryType::Symlink | EntryType::Other(_) => (dir.remove_file(&entry.name)?, 0),
        };
        if gone {
            removed.push(RemovedTemporary { path, bytes });
        }
    }
    Ok(removed)
}

/// The bytes of the regular files at `path`: a file's size, the sum over a directory's tree,
/// nothing for anything else (links are not followed) or when nothing is there.
pub fn path_size(path: &Path) -> u64 {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_file() => m.len(),
        Ok(m) if m.is_dir() => {
            let Ok(entries) = std::fs::read_dir(path) else { return 0 };
            entries.filter_map(Result::ok).map(|e| path_size(&e.path())).sum()
        }
        _ => 0,
    }
}

/// Removes the file, link or directory tree at `path`, never following links. Returns
/// whether this call removed it: `false` when nothing was there (or it went meanwhile).
pub fn remove_path(path: &Path) -> io::Result<bool> {
    let removed = match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) => Err(e),
    };
    match removed {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// A file being written: a temporary file, renamed over its destination only by
/// [`AtomicFile::commit`]. A reader therefore sees the old file or the new one, never a part
/// of either, and an error (or a drop) removes the temporary file.
///
/// The temporary file is created, renamed and removed through a descriptor of its
/// directory ([`OpenDir`]), with a fresh name it creates exclusively and never through a
/// symbolic link: [`AtomicFile::new_in_dir`] and [`AtomicFile::commit_in`] write into a
/// directory opened without following links (an output's `blobs/`, say), so that nothing
/// is written anywhere else even if a path leading there is replaced by a link meanwhile.
///
/// The file gets the mode a user expects under their umask (`0o666 & !umask`: 0644 under
/// the usual 022), like files that `cp`, skopeo or umoci create, unless it is made
/// [private](AtomicFile::new_private_in) (0600) because it holds secrets. Committing syncs
/// the file, renames it, and syncs the directory, so a committed file survives a crash and
/// whatever depends on it (an index entry, a cache entry) can be written next.
///
/// Every temporary file is known to [`crate::stop`] until it is committed or removed: once
/// the process is stopping, creating, writing and committing fail with
/// [`Stopped`](crate::stop::Stopped), and whatever a writer on another thread did not
/// remove in time is removed on exit.
#[derive(Debug)]
pub struct AtomicFile {
    /// `None` once committed.
    tmp: Option<Temporary>,
    /// The id of the temporary file in [`crate::stop`]'s registry.
    id: u64,
    /// Bytes written so far.
    written: u64,
    /// See [`AtomicFile::write_back_every`]: the step, and the bytes already handed to the
    /// kernel's write-back.
    write_back: Option<(u64, u64)>,
}

/// A temporary file: its directory, its name there, and the open file; removed when dropped
/// unless it was renamed into place.
#[derive(Debug)]
struct Temporary {
    dir: OpenDir,
    name: OsString,
    file: File,
    renamed: bool,
}

impl Drop for Temporary {
    fn drop(&mut self) {
        if !self.renamed {
            // Removed by name in its own directory: a link put in its place is removed, not
            // followed.
            let _ = self.dir.remove_file(&self.name);
        }
    }
}

/// A name for a new temporary file: [`TMP_PREFIX`] and 16 hex digits, from the process's
/// random hash keys, the process id and a counter (a name already taken is never reused: the
/// file is created exclusively, and another name tried).
fn temporary_name() -> OsString {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    OsString::from(format!("{TMP_PREFIX}{:016x}", hasher.finish()))
}

/// Creates a new temporary file in `dir` with `mode` (before the umask): exclusively, never
/// through a symbolic link.
fn create_temporary(dir: &OpenDir, mode: u32) -> io::Result<(OsString, File)> {
    use rustix::fs::{Mode, OFlags};
    let flags = OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mut attempts = 0;
    loop {
        let name = temporary_name();
        match rustix::fs::openat(dir.fd(), &name, flags, Mode::from_raw_mode(mode)) {
            Ok(fd) => return Ok((name, File::from(fd))),
            Err(rustix::io::Errno::EXIST) if attempts < 100 => attempts += 1,
            Err(e) => {
                let e = io::Error::from(e);
                return Err(io::Error::new(
                    e.kind(),
                    format!("creating a temporary file in {}: {e}", dir.path().display()),
                ));
            }
        }
    }
}

impl AtomicFile {
    fn create(dir: &OpenDir, private: bool) -> io::Result<Self> {
        let mode = if private { 0o600 } else { 0o666 };
        let (tmp, id) = crate::stop::register(|| {
            let (name, file) = create_temporary(dir, mode)?;
            let path = dir.child_path(&name);
            Ok((Temporary { dir: dir.clone(), name, file, renamed: false }, path))
        })?;
        Ok(Self { tmp: Some(tmp), id, written: 0, write_back: None })
    }

    fn open_dir(dir: &Path) -> io::Result<OpenDir> {
        OpenDir::open(dir)
            .map_err(|e| io::Error::new(e.kind(), format!("creating a temporary file in {}: {e}", dir.display())))
    }

    /// Has the kernel start writing the data to disk each time `step` more bytes were
    /// written, instead of leaving all of it to the sync in [`AtomicFile::commit`]: the disk
    /// works while the caller goes on, and the commit waits for little. Only for files this
    /// process does not read again (an output's blobs): Linux starts that write-back through
    /// `posix_fadvise(POSIX_FADV_DONTNEED)`, which also drops the pages already on disk from
    /// the page cache. Durability is unchanged: the commit still syncs. Elsewhere, and for a
    /// `step` of 0, nothing changes.
    pub fn write_back_every(&mut self, step: u64) {
        self.write_back = (step > 0 && cfg!(target_os = "linux")).then_some((step, 0));
    }

    fn wrote(&mut self, n: usize) {
        self.written += n as u64;
        #[cfg(target_os = "linux")]
        if let Some((step, done)) = self.write_back
            && self.written - done >= step
        {
            // Advice only: a failure changes nothing but the timing.
            let len = std::num::NonZeroU64::new(self.written - done);
            let _ = rustix::fs::fadvise(&self.tmp().file, done, len, rustix::fs::Advice::DontNeed);
            self.write_back = Some((step, self.written));
        }
    }

    /// Starts a file in `dir`, which must be on the same file system as the destination
    /// given to [`AtomicFile::commit`] (usually its directory). Symbolic links leading to
    /// `dir` are followed (whoever gave the path named it).
    pub fn new_in(dir: &Path) -> io::Result<Self> {
        Self::create(&Self::open_dir(dir)?, false)
    }

    /// Starts a file in the open directory `dir` (see [`AtomicFile::new_in`]).
    pub fn new_in_dir(dir: &OpenDir) -> io::Result<Self> {
        Self::create(dir, false)
    }

    /// Like [`AtomicFile::new_in`], but readable by its owner only (for files that hold
    /// credentials).
    pub fn new_private_in(dir: &Path) -> io::Result<Self> {
        Self::create(&Self::open_dir(dir)?, true)
    }

    /// Starts a file that will replace `dest`, in `dest`'s directory.
    pub fn for_destination(dest: &Path) -> io::Result<Self> {
        Self::new_in(parent_of(dest))
    }

    fn tmp(&self) -> &Temporary {
        self.tmp.as_ref().unwrap_or_else(|| unreachable!("an AtomicFile is used only until it is committed"))
    }

    fn tmp_mut(&mut self) -> &mut Temporary {
        self.tmp.as_mut().unwrap_or_else(|| unreachable!("an AtomicFile is used only until it is committed"))
    }

    /// The temporary file (to read back what was written, or to set its length).
    pub fn as_file(&self) -> &File {
        &self.tmp().file
    }

    /// The temporary file's path.
    pub fn temporary_path(&self) -> PathBuf {
        let tmp = self.tmp();
        tmp.dir.child_path(&tmp.name)
    }

    /// Renames the file over `dest`, durably. (A symbolic link at `dest` is replaced, not
    /// followed.)
    pub fn commit(self, dest: &Path) -> io::Result<()> {
        let parent = parent_of(dest).to_path_buf();
        self.finish(|tmp| {
            rustix::fs::renameat(tmp.dir.fd(), &tmp.name, rustix::fs::CWD, dest).map_err(|e| {
                let e = io::Error::from(e);
                io::Error::new(e.kind(), format!("renaming a temporary file to {}: {e}", dest.display()))
            })?;
            sync_dir(&parent)
        })
    }

    /// Renames the file to `name` in the open directory `dir`, durably, replacing a regular
    /// file there. Anything else there (a symbolic link, a directory, a FIFO) is refused with
    /// an error naming it, and the temporary file removed.
    pub fn commit_in(self, dir: &OpenDir, name: impl AsRef<OsStr>) -> io::Result<()> {
        let name = name.as_ref();
        if let Some(what) = not_a_file(dir, name)? {
            return Err(what);
        }
        self.finish(|tmp| {
            tmp.dir.rename(&tmp.name, dir, name)?;
            dir.sync()
        })
    }

    /// Renames the file to `name` in the open directory `dir` unless a regular file is
    /// already there (then the temporary file is removed and the existing file kept): for
    /// content-addressed files, where an existing file has the same content. Anything else
    /// there (a symbolic link, a directory, a FIFO) is refused as by [`AtomicFile::commit_in`].
    /// Returns whether this file was placed.
    pub fn commit_new_in(self, dir: &OpenDir, name: impl AsRef<OsStr>) -> io::Result<bool> {
        let name = name.as_ref();
        if dir.stat(name)?.is_some_and(|e| e.kind == EntryType::File) {
            return Ok(false);
        }
        self.commit_in(dir, name)?;
        Ok(true)
    }

    /// Renames the file to `dest` unless a regular file is already there (then the
    /// temporary file is removed and the existing file kept). For content-addressed files,
    /// where an existing file has the same content. Anything else at `dest` (a symbolic
    /// link, a FIFO, ...) is not such a file and is replaced. Returns whether this file was
    /// placed.
    pub fn commit_unless_exists(self, dest: &Path) -> io::Result<bool> {
        if std::fs::symlink_metadata(dest).is_ok_and(|m| m.file_type().is_file()) {
            return Ok(false);
        }
        self.commit(dest)?;
        Ok(true)
    }

    /// Syncs the file and hands it to `place`, which renames it into place: once it has,
    /// the temporary file is no longer there to remove.
    fn finish(mut self, place: impl FnOnce(&Temporary) -> io::Result<()>) -> io::Result<()> {
        crate::stop::check()?;
        let tmp = self.tmp_mut();
        tmp.file.flush()?;
        tmp.file.sync_all()?;
        place(self.tmp())?;
        if let Some(mut tmp) = self.tmp.take() {
            tmp.renamed = true;
        }
        crate::stop::unregister(self.id);
        Ok(())
    }
}

/// An error when `name` in `dir` is there and is not a regular file.
fn not_a_file(dir: &OpenDir, name: &OsStr) -> io::Result<Option<io::Error>> {
    Ok(match dir.stat(name)? {
        Some(e) if e.kind != EntryType::File => {
            let what = match e.kind {
                EntryType::Symlink => "a symbolic link",
                EntryType::Dir => "a directory",
                EntryType::Other(what) => what,
                EntryType::File => "a regular file",
            };
            Some(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "{} is {what}; cnbx never writes through or over one inside a directory it writes: remove it, \
                     then run the command again",
                    dir.child_path(name).display()
                ),
            ))
        }
        _ => None,
    })
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        // Remove the temporary file (if not committed) before it is forgotten, so that
        // `stop::wait_for_unfinished` returns only once it is gone.
        drop(self.tmp.take());
        crate::stop::unregister(self.id);
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        crate::stop::check()?;
        let n = self.tmp_mut().file.write(buf)?;
        self.wrote(n);
        Ok(n)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        crate::stop::check()?;
        self.tmp_mut().file.write_all(buf)?;
        self.wrote(buf.len());
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.tmp_mut().file.flush()
    }
}

fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Syncs a directory, so that a rename (or removal) in it survives a crash.
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// Writes `bytes` to `dest` atomically and durably, with the usual mode (see
/// [`AtomicFile`]).
pub fn write_atomic(dest: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut f = AtomicFile::for_destination(dest)?;
    f.write_all(bytes)?;
    f.commit(dest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_measured_and_removed_without_following_links() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        std::fs::write(&outside, b"0123456789").unwrap();
        let tree = dir.path().join("tree");
        std::fs::create_dir_all(tree.join("sub")).unwrap();
        std::fs::write(tree.join("a"), b"abc").unwrap();
        std::fs::write(tree.join("sub/b"), b"de").unwrap();
        std::os::unix::fs::symlink(&outside, tree.join("link")).unwrap();
        assert_eq!(path_size(&tree), 5, "the link's target is not counted");
        assert_eq!(path_size(&tree.join("a")), 3);
        assert_eq!(path_size(&dir.path().join("nothing")), 0);
        assert!(remove_path(&tree.join("link")).unwrap());
        assert!(outside.exists(), "a link is removed, not what it points at");
        assert!(remove_path(&tree).unwrap());
        assert!(!tree.exists());
        assert!(!remove_path(&tree).unwrap(), "nothing there: nothing removed");
    }

    #[test]
    fn a_file_written_back_as_it_goes_commits_the_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..300_000u32).flat_map(u32::to_le_bytes).collect();
        let mut f = AtomicFile::new_in(dir.path()).unwrap();
        f.write_back_every(64 * 1024);
        for part in data.chunks(10_000) {
            f.write_all(part).unwrap();
        }
        assert_eq!(f.written, data.len() as u64);
        #[cfg(target_os = "linux")]
        assert!(
            f.write_back.is_some_and(|(_, done)| done > 0 && f.written - done < 64 * 1024),
            "handed over as it went"
        );
        f.commit(&dir.path().join("out")).unwrap();
        assert_eq!(std::fs::read(dir.path().join("out")).unwrap(), data);
        assert_eq!(names(dir.path()), ["out"]);
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    }

    #[test]
    fn commit_replaces_and_drop_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("f");
        write_atomic(&dest, b"one").unwrap();
        let mut f = AtomicFile::for_destination(&dest).unwrap();
        f.write_all(b"two").unwrap();
        assert!(is_temporary_name(f.temporary_path().file_name().unwrap().to_str().unwrap()));
        drop(f);
        assert_eq!(std::fs::read(&dest).unwrap(), b"one");
        assert_eq!(names(dir.path()), ["f"]);
        write_atomic(&dest, b"two").unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"two");
        assert_eq!(names(dir.path()), ["f"]);
    }

    #[test]
    fn remove_temporaries_removes_only_ours() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("keep"), b"output").unwrap();
        std::fs::write(root.join(".cnbx-tmp-file"), b"12345").unwrap();
        std::fs::create_dir_all(root.join(".cnbx-tmp-dir/blobs")).unwrap();
        std::fs::write(root.join(".cnbx-tmp-dir/blobs/x"), b"abc").unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("precious"), b"p").unwrap();
        std::os::unix::fs::symlink(outside.path(), root.join(".cnbx-tmp-link")).unwrap();
        let mut removed = remove_temporaries(root).unwrap();
        removed.sort_by(|a, b| a.path.cmp(&b.path));
        let got: Vec<(String, u64)> =
            removed.iter().map(|r| (r.path.file_name().unwrap().to_string_lossy().into_owned(), r.bytes)).collect();
        assert_eq!(
            got,
            [(".cnbx-tmp-dir".to_owned(), 3), (".cnbx-tmp-file".to_owned(), 5), (".cnbx-tmp-link".to_owned(), 0)]
        );
        assert_eq!(names(root), ["keep"]);
        assert!(outside.path().join("precious").exists(), "a link is removed, never followed");
        assert!(remove_temporaries(&root.join("missing")).unwrap().is_empty());
    }

    #[test]
    fn commit_unless_exists_keeps_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("blob");
        let mut a = AtomicFile::new_in(dir.path()).unwrap();
        a.write_all(b"a").unwrap();
        assert!(a.commit_unless_exists(&dest).unwrap());
        let mut b = AtomicFile::new_in(dir.path()).unwrap();
        b.write_all(b"b").unwrap();
        assert!(!b.commit_unless_exists(&dest).unwrap());
        assert_eq!(std::fs::read(&dest).unwrap(), b"a");
        assert_eq!(names(dir.path()), ["blob"]);
    }

    #[cfg(unix)]
    #[test]
    fn commit_unless_exists_replaces_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("elsewhere");
        std::fs::write(&target, b"not ours").unwrap();
        let dest = dir.path().join("blob");
        std::os::unix::fs::symlink(&target, &dest).unwrap();
        let mut f = AtomicFile::new_in(dir.path()).unwrap();
        f.write_all(b"blob").unwrap();
        assert!(f.commit_unless_exists(&dest).unwrap());
        assert!(std::fs::symlink_metadata(&dest).unwrap().file_type().is_file());
        assert_eq!(std::fs::read(&dest).unwrap(), b"blob");
        assert_eq!(std::fs::read(&target).unwrap(), b"not ours");
    }

    #[test]
    fn files_committed_in_an_open_directory_never_go_through_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("out");
        std::fs::create_dir(&root).unwrap();
        let elsewhere = dir.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        let out = OpenDir::open(&root).unwrap();

        let mut f = AtomicFile::new_in_dir(&out).unwrap();
        f.write_all(b"one").unwrap();
        f.commit_in(&out, "index.json").unwrap();
        let mut f = AtomicFile::new_in_dir(&out).unwrap();
        f.write_all(b"two").unwrap();
        f.commit_in(&out, "index.json").unwrap();
        assert_eq!(std::fs::read(root.join("index.json")).unwrap(), b"two", "a regular file is replaced");

        // A link (or a directory) where the file goes is refused, and the temporary removed.
        std::os::unix::fs::symlink(elsewhere.join("target"), root.join("link")).unwrap();
        std::fs::create_dir(root.join("dir")).unwrap();
        for name in ["link", "dir"] {
            let mut f = AtomicFile::new_in_dir(&out).unwrap();
            f.write_all(b"x").unwrap();
            let err = f.commit_in(&out, name).unwrap_err();
            assert!(err.to_string().starts_with(&root.join(name).display().to_string()), "{err}");
            let mut f = AtomicFile::new_in_dir(&out).unwrap();
            f.write_all(b"x").unwrap();
            assert!(f.commit_new_in(&out, name).is_err());
        }
        assert!(std::fs::symlink_metadata(root.join("link")).unwrap().file_type().is_symlink());
        // A content-addressed file already there is kept.
        let mut f = AtomicFile::new_in_dir(&out).unwrap();
        f.write_all(b"other").unwrap();
        assert!(!f.commit_new_in(&out, "index.json").unwrap());
        assert_eq!(std::fs::read(root.join("index.json")).unwrap(), b"two");
        assert_eq!(names(&root), ["dir", "index.json", "link"]);
        assert!(names(&elsewhere).is_empty());

        // The directory was opened once: swapped for a link, it still gets the file.
        std::fs::rename(&root, dir.path().join("moved")).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &root).unwrap();
        let mut f = AtomicFile::new_in_dir(&out).unwrap();
        f.write_all(b"three").unwrap();
        f.commit_in(&out, "late").unwrap();
        assert_eq!(std::fs::read(dir.path().join("moved/late")).unwrap(), b"three");
        assert!(names(&elsewhere).is_empty());
    }

    #[test]
    fn temporaries_in_an_open_directory_are_removed_without_following_links() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("d");
        std::fs::create_dir_all(root.join(".cnbx-tmp-dir/sub")).unwrap();
        std::fs::write(root.join(".cnbx-tmp-dir/sub/f"), b"abcd").unwrap();
        std::fs::write(root.join(".cnbx-tmp-file"), b"12").unwrap();
        std::fs::write(root.join("keep"), b"k").unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("precious"), b"p").unwrap();
        std::os::unix::fs::symlink(outside.path(), root.join(".cnbx-tmp-link")).unwrap();
        let mut removed = remove_temporaries_in(&OpenDir::open(&root).unwrap()).unwrap();
        removed.sort_by(|a, b| a.path.cmp(&b.path));
        let got: Vec<(String, u64)> =
            removed.iter().map(|r| (r.path.file_name().unwrap().to_string_lossy().into_owned(), r.bytes)).collect();
        assert_eq!(
            got,
            [(".cnbx-tmp-dir".to_owned(), 4), (".cnbx-tmp-file".to_owned(), 2), (".cnbx-tmp-link".to_owned(), 0)]
        );
        assert_eq!(names(&root), ["keep"]);
        assert!(outside.path().join("precious").exists());
    }

    #[cfg(unix)]
    #[test]
    fn modes_follow_the_umask_unless_private() {
        use std::os::unix::fs::PermissionsExt;
        // The process umask is shared by every test thread: read it without changing it.
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let umask = status
            .lines()
            .find_map(|l| l.strip_prefix("Umask:"))
            .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
            .unwrap_or(0o022);
        let dir = tempfile::tempdir().unwrap();
        let public = dir.path().join("public");
        write_atomic(&public, b"x").unwrap();
        assert_eq!(std::fs::metadata(&public).unwrap().permissions().mode() & 0o777, 0o666 & !umask);
        let secret = dir.path().join("secret");
        let mut f = AtomicFile::new_private_in(dir.path()).unwrap();
        f.write_all(b"token").unwrap();
        f.commit(&secret).unwrap();
        assert_eq!(std::fs::metadata(&secret).unwrap().permissions().mode() & 0o777, 0o600 & !umask);
    }
}
