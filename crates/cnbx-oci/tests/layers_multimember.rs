//! Layers larger than one gzip chunk are several gzip members (`cnbx_oci::gzip`): the tools
//! that read layers must read them whole and find the diffID the config records. Checked with
//! umoci (Go's `compress/gzip`, as containerd and Docker use it), skopeo, Python's `gzip`, and
//! GNU `gzip -t`/`zcat`.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

use cnbx_oci::gzip::CHUNK_SIZE;
use cnbx_oci::image::ImageToWrite;
use cnbx_oci::layer::{LayerRecipe, build_layer};
use cnbx_oci::progress::NullReporter;
use cnbx_oci::spec::{Platform, media_type};
use cnbx_oci::tarball::TarEntry;
use cnbx_oci::{BlobStore, ImageConfig, OciLayout};

/// Content that compresses like real files do (not all zeros, not random), `len` bytes.
fn content(seed: u64, len: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(len);
    let mut x = seed;
    while v.len() < len {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        v.extend_from_slice(format!("{:016x} line of file {seed}\n", x >> 40).as_bytes());
    }
    v.truncate(len);
    v
}

#[test]
fn a_layer_of_several_gzip_members_reads_back_whole_everywhere() {
    for (tool, package) in [("umoci", "umoci"), ("skopeo", "skopeo"), ("python3", "python3"), ("zcat", "gzip")] {
        cnbx_testkit::require_tool(tool, package).unwrap();
    }
    let work = tempfile::tempdir().unwrap();
    let store = BlobStore::open(work.path().join("store")).unwrap();
    let mut recipe = LayerRecipe::new("big");
    recipe.push_header(TarEntry::dir("/data"));
    let files: Vec<(String, Vec<u8>)> =
        (0..3).map(|i| (format!("/data/f{i}"), content(i, CHUNK_SIZE + 1000 * i as usize))).collect();
    for (name, bytes) in &files {
        recipe.push_bytes(TarEntry::file(name, 0), bytes.clone());
    }
    let info = build_layer(&recipe, &store, &NullReporter).unwrap();
    assert!(info.uncompressed_size > 3 * CHUNK_SIZE as u64);
    let blob = store.path(&info.descriptor.digest);

    // GNU gzip tests every member; zcat and Python decompress all of them to the tar whose
    // sha256 is the diffID.
    assert!(Command::new("gzip").arg("-t").arg(&blob).status().unwrap().success());
    let zcat = Command::new("zcat").arg(&blob).output().unwrap();
    assert_eq!(cnbx_oci::Digest::of(&zcat.stdout), info.diff_id);
    let py = Command::new("python3")
        .args([
            "-c",
            "import gzip,hashlib,sys; print('sha256:' + hashlib.sha256(gzip.open(sys.argv[1]).read()).hexdigest())",
        ])
        .arg(&blob)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&py.stdout).trim(), info.diff_id.as_str());

    // umoci unpacks it (checking the diffID) with every file whole; skopeo copies it.
    let platform = Platform::new("linux", "amd64", None);
    let mut config = ImageConfig::new(&platform);
    config.push_diff_id(&info.diff_id);
    let image = ImageToWrite {
        manifest_media_type: media_type::OCI_MANIFEST.into(),
        config_media_type: media_type::OCI_CONFIG.into(),
        config: config.to_raw(),
        layers: vec![info.to_layer_blob(&store)],
        platform,
        annotations: None,
    };
    let layout = OciLayout::create(work.path().join("layout")).unwrap();
    layout.write("v1", &[image]).unwrap();
    let rootfs = cnbx_testkit::umoci_unpack(layout.path(), "v1", &work.path().join("bundle")).unwrap();
    for (name, bytes) in &files {
        assert_eq!(&std::fs::read(rootfs.join(name.trim_start_matches('/'))).unwrap(), bytes, "{name}");
    }
    let copy = work.path().join("copy");
    let src = format!("oci:{}:v1", layout.path().display());
    let dst = format!("oci:{}:v1", copy.display());
    cnbx_testkit::skopeo(&["copy", &src, &dst]).unwrap();
    let copied = cnbx_testkit::skopeo_config(&dst, &[]).unwrap();
    assert_eq!(copied["rootfs"]["diff_ids"][0], info.diff_id.as_str());
    assert!(Path::new(&copy.join("blobs/sha256").join(info.descriptor.digest.hex())).is_file());
}
