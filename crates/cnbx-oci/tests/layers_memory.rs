//! Memory stays flat whatever the layer size: a 512 MiB file is streamed, never buffered.
//! (Alone in its test binary so that the process's peak RSS measures this build only.)

#![allow(clippy::unwrap_used)]

use cnbx_oci::BlobStore;
use cnbx_oci::layer::FileIdentity;
use cnbx_oci::layer::{LayerEntry, LayerRecipe, build_layer};
use cnbx_oci::progress::NullReporter;
use cnbx_oci::tarball::TarEntry;

/// Peak resident set size of this process, in KiB.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn large_file_is_streamed() {
    const SIZE: u64 = 512 << 20;
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big");
    // Sparse: reads as zeros without using disk space.
    std::fs::File::create(&big).unwrap().set_len(SIZE).unwrap();
    let store = BlobStore::open(dir.path().join("store")).unwrap();
    let before = peak_rss_kib();
    let mut recipe = LayerRecipe::new("big");
    recipe.push(LayerEntry::file(TarEntry::file("/big", 0), &big, FileIdentity::of_path(&big).unwrap()));
    let info = build_layer(&recipe, &store, &NullReporter).unwrap();
    let grown = peak_rss_kib().saturating_sub(before);
    assert_eq!(info.uncompressed_size, 512 + SIZE + 1024);
    assert!(info.descriptor.size < SIZE / 500, "zeros compress well: {}", info.descriptor.size);
    assert!(grown < 32 * 1024, "peak RSS grew by {grown} KiB while building a {SIZE}-byte layer");
}
