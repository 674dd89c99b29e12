#![allow(clippy::unwrap_used)]
//! The committed `testdata/` must be exactly what the generator produces: regenerate into a
//! temporary directory and compare every generated file byte for byte.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn files(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.file_name().is_some_and(|n| n != ".cnbx.lock") {
                out.insert(path.strip_prefix(root).unwrap().to_path_buf(), std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

#[test]
fn generated_testdata_matches_the_committed_files() {
    let testdata = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata");
    let out = tempfile::tempdir().unwrap();
    xtask::generate(&testdata, out.path()).unwrap();
    let generated = files(out.path());
    assert!(generated.len() > 10, "generator produced too little: {:?}", generated.keys());
    for (rel, bytes) in &generated {
        let committed = std::fs::read(testdata.join(rel)).unwrap_or_else(|e| {
            panic!("{} is not committed ({e}); run `cargo run -p xtask -- gen-testdata`", rel.display())
        });
        assert!(
            committed == *bytes,
            "testdata/{} differs from the generator's output; run `cargo run -p xtask -- gen-testdata`",
            rel.display()
        );
    }
    // No stale blobs either.
    let committed_store = files(&testdata.join("cnbx-home/store"));
    let generated_store = files(&out.path().join("cnbx-home/store"));
    assert_eq!(committed_store.keys().collect::<Vec<_>>(), generated_store.keys().collect::<Vec<_>>());
}

#[test]
fn generator_is_deterministic() {
    let testdata = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata");
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    xtask::generate(&testdata, a.path()).unwrap();
    xtask::generate(&testdata, b.path()).unwrap();
    assert_eq!(files(a.path()), files(b.path()));
}
