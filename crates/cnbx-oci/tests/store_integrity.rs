//! Blobs whose bytes changed on disk are never reused (evicted with a warning, then
//! rebuilt or rewritten), and a failed write leaves an OCI layout as it was.

#![allow(clippy::unwrap_used)]

mod layers_support;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, Mutex};

use cnbx_oci::blobstore::BlobCheck;
use cnbx_oci::cache::{LayerCache, ReuseCheck};
use cnbx_oci::layer::LayerRecipe;
use cnbx_oci::layout::OciLayout;
use cnbx_oci::progress::{Level, NullReporter, Reporter, Task};
use cnbx_oci::tarball::TarEntry;
use cnbx_oci::{BlobStore, Digest};
use layers_support::{amd64, arm64, chain, sample_image};

/// Keeps the warnings.
#[derive(Default)]
struct Warnings(Mutex<Vec<String>>);

impl Reporter for Warnings {
    fn message(&self, level: Level, text: &str) {
        if level == Level::Warn {
            self.0.lock().unwrap().push(text.to_owned());
        }
    }
    fn start(&self, _task: &Task) {}
    fn advance(&self, _id: &str, _bytes: u64) {}
    fn finish(&self, _id: &str) {}
}

impl Warnings {
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// Flips 4 bytes in the middle of a file, keeping its size.
fn corrupt(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 4] {
        *b = !*b;
    }
    std::fs::write(path, bytes).unwrap();
}

fn names(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect()
}

fn recipe() -> LayerRecipe {
    let mut r = LayerRecipe::new("data");
    r.push_bytes(TarEntry::file("/cnb/data", 4096), (0..4096u32).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
    r
}

#[test]
fn a_corrupt_blob_is_evicted_once_checked_and_rewritten_by_the_next_put() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = vec![42u8; 1000];
    let digest = BlobStore::open(dir.path()).unwrap().put_bytes(&bytes).unwrap();
    // Another command (a fresh store object) checks what it reuses.
    let store = BlobStore::open(dir.path()).unwrap();
    let warnings = Arc::new(Warnings::default());
    store.set_reporter(warnings.clone());
    assert_eq!(store.check(&digest, Some(1000)).unwrap(), BlobCheck::Valid);
    assert!(warnings.take().is_empty());

    let fresh = BlobStore::open(dir.path()).unwrap();
    fresh.set_reporter(warnings.clone());
    corrupt(&fresh.path(&digest));
    let BlobCheck::Evicted(why) = fresh.check(&digest, Some(1000)).unwrap() else { panic!("not evicted") };
    assert!(why.starts_with("its content hashes to sha256:"), "{why}");
    assert!(!fresh.contains(&digest), "removed");
    let warned = warnings.take();
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert!(warned[0].contains(&format!("blob {digest} in ")) && warned[0].contains("corrupt"), "{warned:?}");
    assert_eq!(fresh.check(&digest, None).unwrap(), BlobCheck::Missing);

    // A wrong size is found without hashing.
    let other = BlobStore::open(dir.path()).unwrap();
    other.set_reporter(warnings.clone());
    other.put_bytes(&bytes).unwrap();
    let BlobCheck::Evicted(why) = other.check(&digest, Some(999)).unwrap() else { panic!("not evicted") };
    assert_eq!(why, "it has 1000 bytes, but its descriptor says 999");
    warnings.take();

    // Putting the same bytes over a corrupt copy replaces it.
    let again = BlobStore::open(dir.path()).unwrap();
    again.put_bytes(&bytes).unwrap();
    corrupt(&again.path(&digest));
    let next = BlobStore::open(dir.path()).unwrap();
    assert_eq!(next.put_bytes(&bytes).unwrap(), digest);
    assert_eq!(std::fs::read(next.path(&digest)).unwrap(), bytes);
    // Importing over a corrupt copy too.
    let source_dir = tempfile::tempdir().unwrap();
    let source = BlobStore::open(source_dir.path()).unwrap();
    source.put_bytes(&bytes).unwrap();
    corrupt(&next.path(&digest));
    let importer = BlobStore::open(dir.path()).unwrap();
    assert!(importer.import_from(&source, &digest).unwrap(), "placed");
    assert_eq!(std::fs::read(importer.path(&digest)).unwrap(), bytes);
    assert_eq!(names(&dir.path().join("blobs")), BTreeSet::from(["sha256".to_owned()]));
}

#[test]
fn a_check_of_presence_reads_no_content_but_a_copy_still_refuses_a_corrupt_blob() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = vec![7u8; 1000];
    let store = BlobStore::open(dir.path()).unwrap();
    let digest = store.put_bytes(&bytes).unwrap();
    corrupt(&store.path(&digest));
    let store = BlobStore::open(dir.path()).unwrap();
    let warnings = Arc::new(Warnings::default());
    store.set_reporter(warnings.clone());
    assert_eq!(store.check_present(&digest, Some(1000)).unwrap(), BlobCheck::Valid, "the content is not read");
    assert_eq!(store.check_present(&Digest::of(b"absent"), None).unwrap(), BlobCheck::Missing);

    // Its use reads it through its digest: the copy fails and leaves nothing.
    let out = tempfile::tempdir().unwrap();
    let other = BlobStore::open(out.path()).unwrap();
    let err = other.import_from(&store, &digest).unwrap_err().to_string();
    assert!(err.contains("its content hashes to"), "{err}");
    assert!(!other.contains(&digest));
    assert!(warnings.take().is_empty());
    // A full check then evicts it.
    assert!(matches!(store.check(&digest, Some(1000)).unwrap(), BlobCheck::Evicted(_)));
    assert_eq!(warnings.take().len(), 1);

    // A wrong size is found (and evicted) without the content.
    store.put_bytes(&bytes).unwrap();
    let BlobCheck::Evicted(why) = BlobStore::open(dir.path()).unwrap().check_present(&digest, Some(999)).unwrap()
    else {
        panic!("not evicted")
    };
    assert_eq!(why, "it has 1000 bytes, but its descriptor says 999");
}

#[test]
fn a_cache_reusing_on_use_serves_a_blob_of_the_right_size_without_hashing_it() {
    let dir = tempfile::tempdir().unwrap();
    let cache = LayerCache::open(dir.path().join("cache")).unwrap();
    let store = BlobStore::open(dir.path().join("store")).unwrap();
    let (built, _) = cache.get_or_build(&recipe(), &store, &NullReporter).unwrap();
    corrupt(&store.path(&built.descriptor.digest));
    let key = LayerCache::key(&recipe());
    let on_use = cache.clone().with_reuse_check(ReuseCheck::OnUse);
    let store = BlobStore::open(dir.path().join("store")).unwrap();
    assert_eq!(on_use.lookup(&key, &store), Some(built), "served: its user checks it as it reads it");
    assert!(cache.lookup(&key, &store).is_none(), "hashed: not served");
}

#[test]
fn the_layer_cache_rebuilds_a_corrupt_layer_instead_of_serving_it() {
    let dir = tempfile::tempdir().unwrap();
    let cache = LayerCache::open(dir.path().join("cache")).unwrap();
    let store = BlobStore::open(dir.path().join("store")).unwrap();
    let (built, hit) = cache.get_or_build(&recipe(), &store, &NullReporter).unwrap();
    assert!(!hit);
    let key_file = cache.key_path(&LayerCache::key(&recipe()));
    let blob = store.path(&built.descriptor.digest);

    // The next command: a hit, after hashing.
    let store = BlobStore::open(dir.path().join("store")).unwrap();
    assert!(cache.get_or_build(&recipe(), &store, &NullReporter).unwrap().1);

    corrupt(&blob);
    let store = BlobStore::open(dir.path().join("store")).unwrap();
    let warnings = Arc::new(Warnings::default());
    store.set_reporter(warnings.clone());
    assert!(cache.lookup(&LayerCache::key(&recipe()), &store).is_none(), "a corrupt layer is not served");
    assert!(!key_file.exists(), "its cache entry is dropped");
    assert!(!blob.exists(), "the blob is evicted");
    assert_eq!(warnings.take().len(), 1);
    let (rebuilt, hit) = cache.get_or_build(&recipe(), &store, &NullReporter).unwrap();
    assert!(!hit);
    assert_eq!(rebuilt, built, "rebuilt identically");
    assert_eq!(Digest::of(&std::fs::read(&blob).unwrap()), built.descriptor.digest);
    assert!(key_file.exists());
}

#[test]
fn a_failed_first_write_removes_the_new_layout() {
    let work = tempfile::tempdir().unwrap();
    let store = BlobStore::open(work.path().join("store")).unwrap();
    let (image, layers) = sample_image(&store, &amd64());
    corrupt(&store.path(&layers[1].descriptor.digest));
    let dir = work.path().join("out/nested/layout");
    let layout = OciLayout::create(&dir).unwrap();
    let err = chain(&layout.write("v1", std::slice::from_ref(&image)).unwrap_err());
    assert!(err.contains("its content hashes to"), "{err}");
    assert!(!work.path().join("out").exists(), "every directory the write created is gone");

    // In a directory that existed (but was no layout): only what cnbx added goes.
    let existing = work.path().join("existing");
    std::fs::create_dir(&existing).unwrap();
    std::fs::write(existing.join("notes.txt"), "mine").unwrap();
    let layout = OciLayout::create(&existing).unwrap();
    layout.write("v1", std::slice::from_ref(&image)).unwrap_err();
    assert_eq!(names(&existing), BTreeSet::from(["notes.txt".to_owned()]));
}

#[test]
fn a_failed_write_leaves_an_existing_layout_as_it_was() {
    let work = tempfile::tempdir().unwrap();
    let store = BlobStore::open(work.path().join("store")).unwrap();
    let layout = OciLayout::create(work.path().join("layout")).unwrap();
    let (good, _) = sample_image(&store, &amd64());
    layout.write("good", std::slice::from_ref(&good)).unwrap();
    let before_index = std::fs::read(layout.path().join("index.json")).unwrap();
    let before_blobs = names(&layout.path().join("blobs/sha256"));

    // Another image: its first layer is new and fine, its second is corrupt in the store.
    let (fine, _) = sample_image(&store, &cnbx_oci::Platform::new("linux", "s390x", None));
    let (mut other, layers) = sample_image(&store, &arm64());
    other.layers = vec![fine.layers[1].clone(), other.layers[1].clone()];
    corrupt(&store.path(&layers[1].descriptor.digest));
    let layout = OciLayout::open(layout.path()).unwrap();
    let err = chain(&layout.write("other", std::slice::from_ref(&other)).unwrap_err());
    assert!(err.contains("image \"other\": blob "), "{err}");
    assert_eq!(std::fs::read(layout.path().join("index.json")).unwrap(), before_index);
    assert_eq!(names(&layout.path().join("blobs/sha256")), before_blobs, "the blobs it added are gone");
    assert!(!names(layout.path()).iter().any(|n| n.starts_with(".cnbx-tmp-")));
    assert!(!names(&layout.path().join("blobs")).iter().any(|n| n.starts_with(".cnbx-tmp-")));
}

#[test]
fn entries_name_what_an_image_needs_and_what_is_missing() {
    let work = tempfile::tempdir().unwrap();
    let store = BlobStore::open(work.path().join("store")).unwrap();
    let layout = OciLayout::create(work.path().join("layout")).unwrap();
    let (a, _) = sample_image(&store, &amd64());
    let (b, layers) = sample_image(&store, &arm64());
    layout.write("both", &[a.clone(), b]).unwrap();
    layout.write("one", std::slice::from_ref(&a)).unwrap();
    let entries = layout.entries().unwrap();
    assert_eq!(entries.len(), 2);
    assert!(entries.iter().all(|e| e.problems.is_empty()));
    // index + 2 manifests + 2 configs + layers.
    let both = entries.iter().find(|e| e.tag.as_deref() == Some("both")).unwrap();
    assert!(both.blobs.contains(&layers[1].descriptor.digest));
    std::fs::remove_file(layout.blobs().path(&layers[1].descriptor.digest)).unwrap();
    let entries = layout.entries().unwrap();
    let both = entries.iter().find(|e| e.tag.as_deref() == Some("both")).unwrap();
    assert_eq!(both.problems, [format!("layer {} is missing", layers[1].descriptor.digest)]);
    assert!(entries.iter().find(|e| e.tag.as_deref() == Some("one")).unwrap().problems.is_empty());
}
