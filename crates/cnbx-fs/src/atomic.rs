//! The one atomic, durable write helper.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

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
    tmp: Option<NamedTempFile>,
    /// The id of the temporary file in [`crate::stop`]'s registry.
    id: u64,
    /// Bytes written so far.
    written: u64,
    /// See [`AtomicFile::write_back_every`]: the step, and the bytes already handed to the
    /// kernel's write-back.
    write_back: Option<(u64, u64)>,
}

impl AtomicFile {
    fn create(dir: &Path, private: bool) -> io::Result<Self> {
        #[cfg(unix)]
        let mode = {
            use std::os::unix::fs::PermissionsExt;
            std::fs::Permissions::from_mode(if private { 0o600 } else { 0o666 })
        };
        let mut builder = tempfile::Builder::new();
        builder.prefix(TMP_PREFIX);
        #[cfg(unix)]
        builder.permissions(mode);
        let (tmp, id) = crate::stop::register(|| {
            let tmp = builder.tempfile_in(dir).map_err(|e| {
                io::Error::new(e.kind(), format!("creating a temporary file in {}: {e}", dir.display()))
            })?;
            let path = tmp.path().to_path_buf();
            Ok((tmp, path))
        })?;
        Ok(Self { tmp: Some(tmp), id, written: 0, write_back: None })
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
            let _ = rustix::fs::fadvise(self.tmp().as_file(), done, len, rustix::fs::Advice::DontNeed);
            self.write_back = Some((step, self.written));
        }
    }

    /// Starts a file in `dir`, which must be on the same file system as the destination
    /// given to [`AtomicFile::commit`] (usually its directory).
    pub fn new_in(dir: &Path) -> io::Result<Self> {
        Self::create(dir, false)
    }

    /// Like [`AtomicFile::new_in`], but readable by its owner only (for files that hold
    /// credentials).
    pub fn new_private_in(dir: &Path) -> io::Result<Self> {
        Self::create(dir, true)
    }

    /// Starts a file that will replace `dest`, in `dest`'s directory.
    pub fn for_destination(dest: &Path) -> io::Result<Self> {
        Self::new_in(parent_of(dest))
    }

    fn tmp(&self) -> &NamedTempFile {
        self.tmp.as_ref().unwrap_or_else(|| unreachable!("an AtomicFile is used only until it is committed"))
    }

    fn tmp_mut(&mut self) -> &mut NamedTempFile {
        self.tmp.as_mut().unwrap_or_else(|| unreachable!("an AtomicFile is used only until it is committed"))
    }

    /// The temporary file (to read back what was written, or to set its length).
    pub fn as_file(&self) -> &File {
        self.tmp().as_file()
    }

    /// The temporary file's path.
    pub fn temporary_path(&self) -> &Path {
        self.tmp().path()
    }

    /// Renames the file over `dest`, durably.
    pub fn commit(self, dest: &Path) -> io::Result<()> {
        self.finish(dest)
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
        self.finish(dest)?;
        Ok(true)
    }

    fn finish(mut self, dest: &Path) -> io::Result<()> {
        crate::stop::check()?;
        let tmp = self.tmp_mut();
        tmp.flush()?;
        tmp.as_file().sync_all()?;
        if let Some(tmp) = self.tmp.take() {
            tmp.persist(dest).map_err(|e| {
                io::Error::new(e.error.kind(), format!("renaming a temporary file to {}: {}", dest.display(), e.error))
            })?;
        }
        crate::stop::unregister(self.id);
        sync_dir(parent_of(dest))
    }
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
        let n = self.tmp_mut().write(buf)?;
        self.wrote(n);
        Ok(n)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        crate::stop::check()?;
        self.tmp_mut().write_all(buf)?;
        self.wrote(buf.len());
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.tmp_mut().flush()
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
