//! The layer cache: hits without reading content, misses on every kind of change.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use cnbx_oci::BlobStore;
use cnbx_oci::cache::{LayerCache, build_layers};
use cnbx_oci::layer::{LayerRecipe, walk_dir};
use cnbx_oci::progress::NullReporter;
use cnbx_oci::tarball::{TarEntry, TarTime};
use filetime::FileTime;

struct Fixture {
    _dir: tempfile::TempDir,
    tree: std::path::PathBuf,
    store: BlobStore,
    cache: LayerCache,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(tree.join("bin")).unwrap();
    std::fs::write(tree.join("bin/build"), "#!/bin/sh\necho one\n").unwrap();
    std::fs::write(tree.join("data.txt"), "aaaa").unwrap();
    let store = BlobStore::open(dir.path().join("store")).unwrap();
    let cache = LayerCache::open(dir.path().join("cache/layers")).unwrap();
    Fixture { _dir: dir, tree, store, cache }
}

/// A recipe over the tree, walked now: entries renamed under /cnb/x, normalised.
fn recipe(tree: &Path) -> LayerRecipe {
    let mut r = LayerRecipe::new("tree");
    r.extend(walk_dir(tree).map(|w| {
        let mut e = w.unwrap().into_layer_entry();
        e.header.path = format!("/cnb/x/{}", e.header.path);
        e.header.uid = 0;
        e.header.gid = 0;
        e.header.mtime = TarTime::NORMALIZED;
        e
    }));
    r
}

#[test]
fn unchanged_tree_hits_without_reading_content() {
    let f = fixture();
    let (first, hit) = f.cache.get_or_build(&recipe(&f.tree), &f.store, &NullReporter).unwrap();
    assert!(!hit);
    let key = LayerCache::key(&recipe(&f.tree));
    assert!(f.cache.key_path(&key).is_file());

    // The recipe only holds file identities: with the file gone, a hit still succeeds
    // (building would have to open it).
    let again = recipe(&f.tree);
    std::fs::rename(f.tree.join("data.txt"), f.tree.join("moved")).unwrap();
    let (second, hit) = f.cache.get_or_build(&again, &f.store, &NullReporter).unwrap();
    assert!(hit);
    assert_eq!(second, first);
    std::fs::rename(f.tree.join("moved"), f.tree.join("data.txt")).unwrap();

    // Rewriting a file in place with the same size and restoring its mtime is not noticed
    // (the documented trade-off): the old layer is served, proving no byte was read.
    let meta = std::fs::metadata(f.tree.join("data.txt")).unwrap();
    std::fs::write(f.tree.join("data.txt"), "bbbb").unwrap();
    filetime::set_file_mtime(f.tree.join("data.txt"), FileTime::from_last_modification_time(&meta)).unwrap();
    let (third, hit) = f.cache.get_or_build(&recipe(&f.tree), &f.store, &NullReporter).unwrap();
    assert!(hit);
    assert_eq!(third.diff_id, first.diff_id);
}

#[test]
fn size_mtime_and_content_changes_miss() {
    let f = fixture();
    let (base, _) = f.cache.get_or_build(&recipe(&f.tree), &f.store, &NullReporter).unwrap();

    // Size.
    std::fs::write(f.tree.join("data.txt"), "aaaaa").unwrap();
    let (sized, hit) = f.cache.get_or_build(&recipe(&f.tree), &f.store, &NullReporter).unwrap();
    assert!(!hit);
    assert_ne!(sized.diff_id, base.diff_id);

    // mtime alone: a miss, although the rebuilt layer is the same (mtimes are normalised).
    std::fs::write(f.tree.join("data.txt"), "aaaa").unwrap();
    let (_, hit) = f.cache.get_or_build(&recipe(&f.tree), &f.store, &NullReporter).unwrap();
    assert!(!hit, "rewritten file has a new mtime");
    filetime::set_file_mtime(f.tree.join("data.txt"), FileTime::from_unix_time(1_600_000_000, 5)).unwrap();
    let (touched, hit) = f.cache.get_or_build(&recipe(&f.tree), &f.store, &NullReporter).unwrap();
    assert!(!hit);
    assert_eq!(touched.diff_id, base.diff_id);
    assert_eq!(touched.descriptor.digest, base.descriptor.digest);

    // Same size, new content, new mtime.
    std::fs::write(f.tree.join("data.txt"), "cccc").unwrap();
    let (content, hit) = f.cache.get_or_build(&recipe(&f.tree), &f.store, &NullReporter).unwrap();
    assert!(!hit);
    assert_ne!(content.diff_id, base.diff_id);

    // In-memory content is keyed by its bytes.
    let mut mem = LayerRecipe::new("mem");
    mem.push_bytes(TarEntry::file("/cnb/order.toml", 0), "a");
    let (_, hit) = f.cache.get_or_build(&mem, &f.store, &NullReporter).unwrap();
    assert!(!hit);
    let (_, hit) = f.cache.get_or_build(&mem, &f.store, &NullReporter).unwrap();
    assert!(hit);
    let mut other = LayerRecipe::new("mem");
    other.push_bytes(TarEntry::file("/cnb/order.toml", 0), "b");
    let (_, hit) = f.cache.get_or_build(&other, &f.store, &NullReporter).unwrap();
    assert!(!hit);
    // And a different level is a different layer.
    let (_, hit) = f.cache.get_or_build(&mem.clone().with_compression_level(1), &f.store, &NullReporter).unwrap();
    assert!(!hit);
}

#[test]
fn deleted_blob_or_broken_key_file_misses() {
    let f = fixture();
    let r = recipe(&f.tree);
    let (first, _) = f.cache.get_or_build(&r, &f.store, &NullReporter).unwrap();
    std::fs::remove_file(f.store.path(&first.descriptor.digest)).unwrap();
    assert!(f.cache.lookup(&LayerCache::key(&r), &f.store).is_none());
    let (rebuilt, hit) = f.cache.get_or_build(&r, &f.store, &NullReporter).unwrap();
    assert!(!hit);
    assert_eq!(rebuilt, first, "rebuilding gives the same blob");
    assert!(f.store.contains(&first.descriptor.digest));

    std::fs::write(f.cache.key_path(&LayerCache::key(&r)), b"{not json").unwrap();
    let (_, hit) = f.cache.get_or_build(&r, &f.store, &NullReporter).unwrap();
    assert!(!hit);
    let (_, hit) = f.cache.get_or_build(&r, &f.store, &NullReporter).unwrap();
    assert!(hit, "the key file was rewritten");

    // The key file records what architecture.md promises, and no temporary file is left.
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(f.cache.key_path(&LayerCache::key(&r))).unwrap()).unwrap();
    assert_eq!(record["diff_id"], first.diff_id.as_str());
    assert_eq!(record["digest"], first.descriptor.digest.as_str());
    assert_eq!(record["size"], first.descriptor.size);
    assert_eq!(record["media_type"], first.descriptor.media_type);
    let names: Vec<String> =
        std::fs::read_dir(f.cache.dir()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert_eq!(names, [format!("{}.json", LayerCache::key(&r).hex())]);
}

#[test]
fn parallel_builds_use_the_cache() {
    let f = fixture();
    let recipes: Vec<LayerRecipe> = (0..6)
        .map(|i| {
            let mut r = LayerRecipe::new(format!("layer {i}"));
            r.push_bytes(TarEntry::file(format!("/f{i}"), 0), vec![b'x'; i * 1000]);
            r
        })
        .collect();
    let cold: Vec<_> =
        build_layers(&recipes, &f.store, Some(&f.cache), &NullReporter).into_iter().map(Result::unwrap).collect();
    for (i, info) in cold.iter().enumerate() {
        assert_eq!(
            info.uncompressed_size,
            512 + (i as u64 * 1000).div_ceil(512) * 512 + 1024,
            "results keep input order"
        );
    }
    let names: Vec<_> = std::fs::read_dir(f.cache.dir()).unwrap().collect();
    assert_eq!(names.len(), 6);
    let warm: Vec<_> =
        build_layers(&recipes, &f.store, Some(&f.cache), &NullReporter).into_iter().map(Result::unwrap).collect();
    assert_eq!(warm, cold);
}
