//! Exclusive lock files, for read-modify-write updates of a shared file.

use std::fs::File;
use std::io;
use std::path::Path;

use fs4::fs_std::FileExt;

/// An exclusive advisory lock (`flock`) on a lock file, held until it is dropped. Every
/// process that updates the same file takes the same lock first, so that their updates are
/// applied one after the other instead of overwriting each other.
#[derive(Debug)]
pub struct FileLock {
    file: File,
}

impl FileLock {
    /// Creates the lock file `path` if needed (it stays, empty) and waits until this process
    /// holds the exclusive lock on it.
    pub fn exclusive(path: &Path) -> io::Result<Self> {
        let file = std::fs::OpenOptions::new().create(true).truncate(false).read(true).write(true).open(path)?;
        FileExt::lock_exclusive(&file)?;
        Ok(Self { file })
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        // Closing the file releases the lock too; unlocking explicitly just makes it prompt.
        let _ = FileExt::unlock(&self.file);
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
}
