//! Lock files: exclusive locks for read-modify-write updates of a shared file, and shared
//! "in use" locks for directories that several processes write into.

use std::convert::Infallible;
use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use fs4::fs_std::FileExt;

use crate::atomic::{RemovedTemporary, remove_temporaries};
use crate::dir::OpenDir;

/// How often a lock is taken again when its file was removed (by a process cleaning up a
/// directory it created) while this process waited for it.
const MAX_ATTEMPTS: usize = 100;

/// An advisory lock (`flock`) on a lock file, held until it is dropped.
///
/// * [`FileLock::exclusive`]: every process that updates the same file takes the same
///   lock first, so that their updates are applied one after the other instead of
///   overwriting each other.
/// * [`FileLock::enter`]: a directory's **use lock**, held shared by every process writing
///   into the directory for as long as it does, and exclusively by a process that removes
///   things from it (stale temporary files, unreferenced blobs, the directory itself).
///
/// The lock file is created if needed and stays (empty). A lock file removed while a
/// process waited for it (the directory it guards was removed) is noticed: the lock is
/// taken again on the file now at that path.
///
/// A process that holds a lock exclusively and asks for it shared again (cleaning up a
/// store, it updates the store's index, which takes the lock shared) gets it at once: the
/// exclusive lock already covers it.
#[derive(Debug)]
pub struct FileLock {
    file: File,
    /// Whether this process holds the lock exclusively through this value.
    exclusive: bool,
    /// A shared lock inside this process's exclusive one: nothing was locked.
    nested: bool,
}

/// Where a lock file is: a path (links leading to it followed), or a name in an open
/// directory (never followed if it is a link).
#[derive(Clone, Copy)]
enum At<'a> {
    Path(&'a Path),
    In(&'a OpenDir, &'a OsStr),
}

impl At<'_> {
    fn path(self) -> PathBuf {
        match self {
            Self::Path(p) => p.to_path_buf(),
            Self::In(dir, name) => dir.child_path(name),
        }
    }

    /// Opens the lock file, creating it if needed.
    fn open(self) -> io::Result<File> {
        match self {
            Self::Path(path) => {
                std::fs::OpenOptions::new().create(true).truncate(false).read(true).write(true).open(path)
            }
            Self::In(dir, name) => {
                use rustix::fs::{Mode, OFlags};
                let flags = OFlags::RDWR | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC;
                match rustix::fs::openat(dir.fd(), name, flags, Mode::from_raw_mode(0o666)) {
                    Ok(fd) => Ok(File::from(fd)),
                    Err(rustix::io::Errno::LOOP) => Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!(
                            "the lock file {} is a symbolic link; cnbx never follows a symbolic link inside a \
                             directory it writes: remove it, then run the command again",
                            self.path().display()
                        ),
                    )),
                    Err(e) => {
                        let e = io::Error::from(e);
                        Err(io::Error::new(e.kind(), format!("opening {}: {e}", self.path().display())))
                    }
                }
            }
        }
    }

    /// Whether the open `file` is the file there now (it was not removed or replaced).
    fn holds(self, file: &File) -> bool {
        use std::os::unix::fs::MetadataExt;
        let Ok(a) = file.metadata() else { return false };
        match self {
            Self::Path(path) => std::fs::metadata(path).is_ok_and(|b| a.dev() == b.dev() && a.ino() == b.ino()),
            Self::In(dir, name) => {
                dir.stat(name).ok().flatten().is_some_and(|b| a.dev() == b.dev && a.ino() == b.inode)
            }
        }
    }
}

/// The lock files (device, inode) this process holds exclusively.
static EXCLUSIVE: Mutex<Vec<(u64, u64)>> = Mutex::new(Vec::new());

fn exclusive_here() -> std::sync::MutexGuard<'static, Vec<(u64, u64)>> {
    EXCLUSIVE.lock().unwrap_or_else(PoisonError::into_inner)
}

fn identity(file: &File) -> io::Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = file.metadata()?;
    Ok((m.dev(), m.ino()))
}

/// One way of taking the lock on an opened lock file: `Ok(nested)` once this process holds
/// it (`nested`: a shared lock inside this process's exclusive one, for which nothing was
/// locked), or `Err(busy)` when another process holds it and this way does not wait. The
/// ways that wait have an uninhabited `B` ([`Infallible`]): they cannot come back busy.
type Take<B> = fn(&File, (u64, u64)) -> io::Result<Result<bool, B>>;

/// Another process holds the lock.
struct Busy;

/// Waits for a shared lock; granted at once when this process holds the lock exclusively.
fn take_shared(file: &File, id: (u64, u64)) -> io::Result<Result<bool, Infallible>> {
    if FileExt::try_lock_shared(file)? {
        return Ok(Ok(false));
    }
    if exclusive_here().contains(&id) {
        return Ok(Ok(true));
    }
    FileExt::lock_shared(file)?;
    Ok(Ok(false))
}

/// Waits for the exclusive lock.
fn take_exclusive(file: &File, _: (u64, u64)) -> io::Result<Result<bool, Infallible>> {
    FileExt::lock_exclusive(file)?;
    Ok(Ok(false))
}

/// The exclusive lock if nobody else holds the lock at all.
fn try_take_exclusive(file: &File, _: (u64, u64)) -> io::Result<Result<bool, Busy>> {
    Ok(if FileExt::try_lock_exclusive(file)? { Ok(false) } else { Err(Busy) })
}

impl FileLock {
    /// Opens the lock file `at` (creating it) and takes the lock on it with `take`, again on
    /// the file now there when it was removed meanwhile.
    fn acquire<B>(at: At<'_>, exclusive: bool, take: Take<B>) -> io::Result<Result<Self, B>> {
        for _ in 0..MAX_ATTEMPTS {
            let file = at.open()?;
            let id = identity(&file)?;
            match take(&file, id)? {
                Err(busy) => return Ok(Err(busy)),
                Ok(true) => return Ok(Ok(Self { file, exclusive: false, nested: true })),
                Ok(false) => {}
            }
            if at.holds(&file) {
                if exclusive {
                    exclusive_here().push(id);
                }
                return Ok(Ok(Self { file, exclusive, nested: false }));
            }
        }
        Err(io::Error::other(format!("the lock file {} keeps being removed", at.path().display())))
    }

    /// Waits for the lock `at` with `take` (which cannot come back busy).
    fn granted(at: At<'_>, exclusive: bool, take: Take<Infallible>) -> io::Result<Self> {
        let Ok(lock) = Self::acquire(at, exclusive, take)?;
        Ok(lock)
    }

    fn forget_exclusive(&mut self) {
        if std::mem::take(&mut self.exclusive)
            && let Ok(id) = identity(&self.file)
        {
            let mut held = exclusive_here();
            if let Some(i) = held.iter().position(|h| *h == id) {
                held.swap_remove(i);
            }
        }
    }

    /// Creates the lock file `path` if needed (it stays, empty) and waits until this process
    /// holds the exclusive lock on it.
    pub fn exclusive(path: &Path) -> io::Result<Self> {
        Self::granted(At::Path(path), true, take_exclusive)
    }

    /// [`FileLock::exclusive`] on the lock file `name` of the open directory `dir`, which is
    /// never followed if it is a symbolic link (that is an error naming it).
    pub fn exclusive_in(dir: &OpenDir, name: impl AsRef<OsStr>) -> io::Result<Self> {
        Self::granted(At::In(dir, name.as_ref()), true, take_exclusive)
    }

    /// Takes the exclusive lock if no other process holds the lock at all; `None` otherwise.
    pub fn try_exclusive(path: &Path) -> io::Result<Option<Self>> {
        Ok(Self::acquire(At::Path(path), true, try_take_exclusive)?.ok())
    }

    /// [`FileLock::try_exclusive`] on the lock file `name` of the open directory `dir` (see
    /// [`FileLock::exclusive_in`]).
    pub fn try_exclusive_in(dir: &OpenDir, name: impl AsRef<OsStr>) -> io::Result<Option<Self>> {
        Ok(Self::acquire(At::In(dir, name.as_ref()), true, try_take_exclusive)?.ok())
    }

    /// Waits until this process holds a shared lock on `path` (shared with other holders of
    /// shared locks, excluded by an exclusive one).
    pub fn shared(path: &Path) -> io::Result<Self> {
        Self::granted(At::Path(path), false, take_shared)
    }

    /// Turns an exclusive lock into a shared one.
    pub fn downgrade(mut self) -> io::Result<Self> {
        self.forget_exclusive();
        FileExt::lock_shared(&self.file)?;
        Ok(self)
    }

    /// Takes the shared use lock `path` of a directory before writing into it. When no other
    /// process holds that lock (a try for the exclusive lock succeeds), no other process is
    /// writing there, so the temporary files (see [`crate::TMP_PREFIX`]) in `places` were
    /// left by a process that was killed: they are removed, and returned, before the lock
    /// is shared. Otherwise this waits for the shared lock (while a process holds it
    /// exclusively) and removes nothing.
    pub fn enter(path: &Path, places: &[PathBuf]) -> io::Result<(Self, Vec<RemovedTemporary>)> {
        Self::enter_at(At::Path(path), || {
            let mut removed = Vec::new();
            for place in places {
                removed.extend(remove_temporaries(place)?);
            }
            Ok(removed)
        })
    }

    /// [`FileLock::enter`] on the lock file `name` of the open directory `dir` (see
    /// [`FileLock::exclusive_in`]), where `sweep` removes the temporary files a killed
    /// process left (it runs only when no other process holds the lock).
    pub fn enter_in(
        dir: &OpenDir,
        name: impl AsRef<OsStr>,
        sweep: impl FnOnce() -> io::Result<Vec<RemovedTemporary>>,
    ) -> io::Result<(Self, Vec<RemovedTemporary>)> {
        Self::enter_at(At::In(dir, name.as_ref()), sweep)
    }

    fn enter_at(
        at: At<'_>,
        sweep: impl FnOnce() -> io::Result<Vec<RemovedTemporary>>,
    ) -> io::Result<(Self, Vec<RemovedTemporary>)> {
        if let Ok(lock) = Self::acquire(at, true, try_take_exclusive)? {
            let removed = sweep()?;
            return Ok((lock.downgrade()?, removed));
        }
        Ok((Self::granted(at, false, take_shared)?, Vec::new()))
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        self.forget_exclusive();
        if !self.nested {
            // Closing the file releases the lock too; unlocking explicitly makes it prompt.
            let _ = FileExt::unlock(&self.file);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_is_exclusive_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".lock");
        let held = FileLock::exclusive(&path).unwrap();
        let other = File::open(&path).unwrap();
        assert!(!FileExt::try_lock_exclusive(&other).unwrap(), "a second lock must wait");
        drop(held);
        assert!(FileExt::try_lock_exclusive(&other).unwrap());
        FileExt::unlock(&other).unwrap();
        // Taking it again reuses the file.
        drop(FileLock::exclusive(&path).unwrap());
        assert_eq!(std::fs::read(&path).unwrap(), b"");
    }

    #[test]
    fn shared_locks_exclude_the_exclusive_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".use");
        let a = FileLock::shared(&path).unwrap();
        let b = FileLock::shared(&path).unwrap();
        assert!(FileLock::try_exclusive(&path).unwrap().is_none());
        drop(a);
        assert!(FileLock::try_exclusive(&path).unwrap().is_none());
        drop(b);
        let x = FileLock::try_exclusive(&path).unwrap().expect("free");
        assert!(FileLock::try_exclusive(&path).unwrap().is_none());
        let shared = x.downgrade().unwrap();
        let other = FileLock::shared(&path).unwrap();
        drop((shared, other));
    }

    #[test]
    fn enter_sweeps_only_when_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".use");
        let place = dir.path().join("blobs");
        std::fs::create_dir(&place).unwrap();
        let stale = place.join(".cnbx-tmp-stale");
        std::fs::write(&stale, b"left by a killed process").unwrap();

        // Someone is writing: their temporary file is live and stays.
        let writer = FileLock::shared(&path).unwrap();
        let (second, removed) = FileLock::enter(&path, std::slice::from_ref(&place)).unwrap();
        assert!(removed.is_empty());
        assert!(stale.exists());
        drop((writer, second));

        // Alone: it was left behind, and goes.
        let (held, removed) = FileLock::enter(&path, std::slice::from_ref(&place)).unwrap();
        assert_eq!(removed.len(), 1);
        assert_eq!(removed[0].bytes, 24);
        assert!(!stale.exists());
        // Held shared afterwards.
        assert!(FileLock::try_exclusive(&path).unwrap().is_none());
        assert!(FileLock::shared(&path).is_ok());
        drop(held);
    }

    #[test]
    fn a_shared_lock_inside_this_process_exclusive_one_is_granted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".use");
        let held = FileLock::exclusive(&path).unwrap();
        let inner = FileLock::shared(&path).unwrap();
        let (entered, removed) = FileLock::enter(&path, &[]).unwrap();
        assert!(removed.is_empty());
        drop((inner, entered));
        assert!(FileLock::try_exclusive(&path).unwrap().is_none(), "still held");
        drop(held);
        let again = FileLock::try_exclusive(&path).unwrap().expect("released");
        // Once downgraded, it is an ordinary shared lock.
        let shared = again.downgrade().unwrap();
        assert!(FileLock::try_exclusive(&path).unwrap().is_none());
        drop(shared);
    }

    #[test]
    fn a_lock_file_in_an_open_directory_is_never_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let open = OpenDir::open(dir.path()).unwrap();
        let held = FileLock::exclusive_in(&open, ".lock").unwrap();
        assert!(FileLock::try_exclusive_in(&open, ".lock").unwrap().is_none());
        drop(held);
        let (entered, removed) = FileLock::enter_in(&open, ".use", || Ok(Vec::new())).unwrap();
        assert!(removed.is_empty());
        assert!(FileLock::try_exclusive(&dir.path().join(".use")).unwrap().is_none(), "the same file as by path");
        drop(entered);
        let target = dir.path().join("made-through-the-link");
        std::os::unix::fs::symlink(&target, dir.path().join(".evil")).unwrap();
        let err = FileLock::exclusive_in(&open, ".evil").unwrap_err();
        assert!(err.to_string().contains("the lock file") && err.to_string().contains("is a symbolic link"), "{err}");
        assert!(FileLock::enter_in(&open, ".evil", || Ok(Vec::new())).is_err());
        assert!(!target.exists(), "nothing was created where the link points");
    }

    #[test]
    fn a_removed_lock_file_is_taken_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".lock");
        let held = FileLock::exclusive(&path).unwrap();
        let waiter = std::thread::spawn({
            let path = path.clone();
            move || FileLock::exclusive(&path).map(|l| At::Path(&path).holds(&l.file))
        });
        std::thread::sleep(std::time::Duration::from_millis(50));
        std::fs::remove_file(&path).unwrap();
        drop(held);
        assert!(waiter.join().unwrap().unwrap(), "the lock is on the file now at the path");
    }
}
