//! The stop request (its own test binary: it is process-wide state, and other tests write
//! files).

#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::time::Duration;

use cnbx_fs::{AtomicFile, stop};

fn names(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

#[test]
fn a_stop_refuses_writes_waits_for_writers_and_removes_what_is_left() {
    let dir = tempfile::tempdir().unwrap();
    let mut before = AtomicFile::new_in(dir.path()).unwrap();
    before.write_all(b"started before the stop").unwrap();
    assert!(!stop::wait_for_unfinished(Duration::from_millis(10)), "one file is being written");

    // A writer on another thread that drops its file a little later.
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let (ready_tx, ready) = std::sync::mpsc::channel::<()>();
    let worker = std::thread::spawn({
        let dir = dir.path().to_path_buf();
        move || {
            let mut f = AtomicFile::new_in(&dir).unwrap();
            f.write_all(b"x").unwrap();
            ready_tx.send(()).unwrap();
            rx.recv().unwrap();
            let err = f.write_all(b"more").unwrap_err();
            assert!(stop::is_stop(&err), "{err}");
        }
    });
    ready.recv().unwrap();
    // A writer that never gives up its file.
    let mut stuck = AtomicFile::new_in(dir.path()).unwrap();
    stuck.write_all(b"stuck").unwrap();

    stop::request_stop();
    assert!(stop::stop_requested());
    let err = before.write_all(b"more").unwrap_err();
    assert!(stop::is_stop(&err), "{err}");
    let err = AtomicFile::new_in(dir.path()).unwrap_err();
    assert!(stop::is_stop(&err), "{err}");
    let err = before.commit(&dir.path().join("out")).unwrap_err();
    assert!(stop::is_stop(&err), "{err}");
    assert!(!dir.path().join("out").exists(), "nothing is committed once stopping");

    tx.send(()).unwrap();
    worker.join().unwrap();
    std::mem::forget(stuck);
    assert!(!stop::wait_for_unfinished(Duration::from_millis(100)), "the stuck file is still registered");
    assert_eq!(names(dir.path()).len(), 1, "only the stuck file is left: {:?}", names(dir.path()));
    assert_eq!(stop::remove_unfinished(), 1);
    assert!(names(dir.path()).is_empty());
    assert!(stop::wait_for_unfinished(Duration::ZERO));
}
