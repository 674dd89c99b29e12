//! Stopping cleanly: the process-wide stop request, and the temporary files still being
//! written.
//!
//! Work that writes files may run on other threads than the one that decides to stop (a
//! layer built on a thread pool while the command fails, or is interrupted by SIGINT or
//! SIGTERM). So that such work leaves nothing behind, the CLI, before it exits early:
//!
//! 1. calls [`request_stop`]: from then on every [`AtomicFile`](crate::AtomicFile) refuses
//!    to be created, written or committed, with an error that [`is_stop`] recognises, so
//!    that the work stops at its next write and drops its temporary files (which removes
//!    them);
//! 2. waits, with [`wait_for_unfinished`], until no temporary file is left open;
//! 3. removes, with [`remove_unfinished`], those whose writer did not give up in time.
//!
//! This is process-wide state on purpose: signals are process-wide. Nothing but the CLI's
//! exit path calls [`request_stop`].

use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

static STOP: AtomicBool = AtomicBool::new(false);
static NEXT_ID: AtomicU64 = AtomicU64::new(1);
/// The temporary files of [`AtomicFile`](crate::AtomicFile)s not yet committed or dropped.
static UNFINISHED: Mutex<BTreeMap<u64, PathBuf>> = Mutex::new(BTreeMap::new());
static CHANGED: Condvar = Condvar::new();

/// The error of a write refused because the process is stopping.
#[derive(Debug, thiserror::Error)]
#[error("cnbx is stopping: the write was abandoned")]
pub struct Stopped;

/// Asks every writer to stop (see the module docs). There is no way back.
pub fn request_stop() {
    STOP.store(true, Ordering::SeqCst);
}

/// Whether [`request_stop`] was called.
pub fn stop_requested() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// The error a refused write returns.
pub(crate) fn stopped() -> io::Error {
    io::Error::other(Stopped)
}

/// Fails with [`Stopped`] once a stop was requested.
pub(crate) fn check() -> io::Result<()> {
    if stop_requested() { Err(stopped()) } else { Ok(()) }
}

/// Whether `e` (or an error it wraps) is the [`Stopped`] error of a refused write.
pub fn is_stop(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if err.is::<Stopped>() {
            return true;
        }
        if let Some(io) = err.downcast_ref::<io::Error>()
            && io.get_ref().is_some_and(|inner| inner.is::<Stopped>())
        {
            return true;
        }
        cur = err.source();
    }
    false
}

fn unfinished() -> MutexGuard<'static, BTreeMap<u64, PathBuf>> {
    UNFINISHED.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Creates a temporary file with `create` (which returns it and its path) and records it,
/// unless a stop was requested; returns it with the id to [`unregister`] it with. The
/// registry stays locked meanwhile, so that [`wait_for_unfinished`] never misses a file
/// created just as the stop was requested.
pub(crate) fn register<T>(create: impl FnOnce() -> io::Result<(T, PathBuf)>) -> io::Result<(T, u64)> {
    let mut files = unfinished();
    check()?;
    let (created, path) = create()?;
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    files.insert(id, path);
    Ok((created, id))
}

/// Forgets a temporary file (committed, or removed). Idempotent.
pub(crate) fn unregister(id: u64) {
    if unfinished().remove(&id).is_some() {
        CHANGED.notify_all();
    }
}

/// Waits until every temporary file being written has been committed or removed, for at
/// most `timeout`. Returns whether none is left.
pub fn wait_for_unfinished(timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let mut files = unfinished();
    while !files.is_empty() {
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        files = CHANGED.wait_timeout(files, deadline - now).unwrap_or_else(PoisonError::into_inner).0;
    }
    true
}

/// Removes the temporary files still registered (their writers did not stop in time) and
/// returns how many were removed.
pub fn remove_unfinished() -> usize {
    let files = std::mem::take(&mut *unfinished());
    files.values().filter(|p| std::fs::remove_file(p).is_ok()).count()
}
