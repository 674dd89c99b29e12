//! OCI layouts written by cnbx, checked with skopeo and umoci as independent oracles.

#![allow(clippy::unwrap_used)]

mod layers_support;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use cnbx_oci::image::{BlobSource, LayerBlob};
use cnbx_oci::layout::OciLayout;
use cnbx_oci::spec::{Platform, media_type};
use cnbx_oci::{BlobStore, Digest};
use cnbx_refs::ImageRef;
use cnbx_testkit::{skopeo, skopeo_raw, tar_listing, umoci_unpack};
use layers_support::{amd64, arm64, chain, sample_image};
use serde_json::Value;

fn oci(dir: &Path, tag: &str) -> String {
    format!("oci:{}:{tag}", dir.display())
}

/// `tar -tv` output with runs of spaces collapsed.
fn listing(blob: &Path) -> String {
    let out = tar_listing(blob).unwrap();
    out.lines().map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ") + "\n").collect()
}

fn inspect(dir: &Path, tag: &str) -> Value {
    serde_json::from_str(&skopeo(&["inspect", &oci(dir, tag)]).unwrap()).unwrap()
}

#[test]
fn single_image_reads_back_in_skopeo_and_umoci() {
    let work = tempfile::tempdir().unwrap();
    let store = BlobStore::open(work.path().join("store")).unwrap();
    let layout = OciLayout::create(work.path().join("layout")).unwrap();
    let (image, layers) = sample_image(&store, &amd64());
    let manifest = image.manifest();
    let entry = layout.write("v1", std::slice::from_ref(&image)).unwrap();
    assert_eq!(entry.digest, manifest.digest);
    assert_eq!(entry.media_type, media_type::OCI_MANIFEST);
    assert_eq!(entry.ref_name(), Some("v1"));

    // skopeo: digest, layers, platform, labels.
    let info = inspect(layout.path(), "v1");
    assert_eq!(info["Digest"], manifest.digest.as_str());
    let want_layers: Vec<Value> = layers.iter().map(|l| Value::from(l.descriptor.digest.as_str())).collect();
    assert_eq!(info["Layers"], Value::Array(want_layers));
    assert_eq!(info["Os"], "linux");
    assert_eq!(info["Architecture"], "amd64");
    assert_eq!(info["Labels"]["io.cnbx.test"], "yes");
    // skopeo --raw: the manifest bytes are exactly ours.
    let raw = skopeo(&["inspect", "--raw", &oci(layout.path(), "v1")]).unwrap();
    assert_eq!(raw.trim_end().as_bytes(), manifest.bytes.as_slice());
    let config = cnbx_testkit::skopeo_config(&oci(layout.path(), "v1"), &[]).unwrap();
    assert_eq!(config["rootfs"]["diff_ids"][1], layers[1].diff_id.as_str());

    // Layers were copied from the store, never hard-linked: the output shares no file with it.
    let d = &layers[0].descriptor.digest;
    assert_ne!(
        std::fs::metadata(store.path(d)).unwrap().ino(),
        std::fs::metadata(layout.blobs().path(d)).unwrap().ino()
    );
    assert_eq!(std::fs::read(store.path(d)).unwrap(), std::fs::read(layout.blobs().path(d)).unwrap());

    // umoci: contents and modes.
    let rootfs = umoci_unpack(layout.path(), "v1", &work.path().join("bundle")).unwrap();
    let hello = rootfs.join("cnb/hello");
    assert_eq!(std::fs::read_to_string(&hello).unwrap(), "#!/bin/sh\necho hello\n");
    assert_eq!(std::fs::metadata(&hello).unwrap().permissions().mode() & 0o7777, 0o755);
    assert_eq!(std::fs::read_link(rootfs.join("cnb/hi")).unwrap(), Path::new("/cnb/hello"));
    let name = rootfs.join("cnb/platform/name");
    assert_eq!(std::fs::read_to_string(&name).unwrap(), "linux/amd64");
    assert_eq!(std::fs::metadata(&name).unwrap().permissions().mode() & 0o7777, 0o644);
    assert!(rootfs.join("workspace").is_dir());

    // Owners, from the layer blobs themselves (umoci --rootless maps them to us).
    let base = listing(&layout.blobs().path(&layers[0].descriptor.digest));
    assert!(base.contains("drwxr-xr-x 1000/1000 0 1980-01-01 00:00 /workspace\n"), "{base}");
    assert!(base.contains("-rwxr-xr-x 0/0"), "{base}");
    assert!(base.contains("/cnb/hi -> /cnb/hello"), "{base}");
    let top = listing(&layout.blobs().path(&layers[1].descriptor.digest));
    assert!(top.contains("-rw-r--r-- 1000/1001 11 1980-01-01 00:00 /cnb/platform/name\n"), "{top}");

    // And cnbx reads it back.
    let back = layout.read_image("v1", None).unwrap();
    assert_eq!(back.manifest.digest, manifest.digest);
    assert_eq!(back.config_raw.digest, image.config.digest);
    assert_eq!(back.display_name, oci(layout.path(), "v1"));
    let back_layers = back.layers().unwrap();
    assert_eq!(
        back_layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>(),
        [layers[0].diff_id.clone(), layers[1].diff_id.clone()]
    );
    assert!(matches!(&back_layers[0].source, BlobSource::Store(s) if s.root() == layout.path()));
    // A single-manifest tag still checks the platform asked for.
    let err = layout.read_image("v1", Some(&arm64())).unwrap_err();
    let err = chain(&err);
    assert!(err.contains("has no manifest for platform linux/arm64/v8 (it has: linux/amd64)"), "{err}");
}

#[test]
fn multi_platform_index_reads_back_and_copies() {
    let work = tempfile::tempdir().unwrap();
    let layout = OciLayout::create(work.path().join("layout")).unwrap();
    let (a, _) = sample_image(layout.blobs(), &amd64());
    let (b, _) = sample_image(layout.blobs(), &arm64());
    let entry = layout.write("multi", &[a.clone(), b.clone()]).unwrap();
    assert_eq!(entry.media_type, media_type::OCI_INDEX);

    let raw = skopeo_raw(&oci(layout.path(), "multi"), &[]).unwrap();
    assert_eq!(raw["mediaType"], media_type::OCI_INDEX);
    let manifests = raw["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 2);
    assert_eq!(manifests[0]["digest"], a.manifest().digest.as_str());
    assert_eq!(manifests[0]["platform"]["architecture"], "amd64");
    assert_eq!(manifests[1]["platform"]["architecture"], "arm64");
    assert_eq!(manifests[1]["platform"]["variant"], "v8");
    let raw_bytes = skopeo(&["inspect", "--raw", &oci(layout.path(), "multi")]).unwrap();
    assert_eq!(Digest::of(raw_bytes.trim_end().as_bytes()), entry.digest);

    // Per-platform inspection through the index.
    let arm = serde_json::from_str::<Value>(
        &skopeo(&["--override-arch", "arm64", "--override-variant", "v8", "inspect", &oci(layout.path(), "multi")])
            .unwrap(),
    )
    .unwrap();
    // (skopeo reports the digest of what the tag points at, the index.)
    assert_eq!(arm["Digest"], entry.digest.as_str());
    assert_eq!(arm["Architecture"], "arm64");
    let b_layers: Vec<Value> = b.layers.iter().map(|l| Value::from(l.descriptor.digest.as_str())).collect();
    assert_eq!(arm["Layers"], Value::Array(b_layers));

    // skopeo copy --all keeps every manifest and the index digest.
    let copy = work.path().join("copy");
    skopeo(&["copy", "--all", &oci(layout.path(), "multi"), &oci(&copy, "copied")]).unwrap();
    let copied = skopeo(&["inspect", "--raw", &oci(&copy, "copied")]).unwrap();
    assert_eq!(copied.trim_end(), raw_bytes.trim_end());
    let copied_layout = OciLayout::open(&copy).unwrap();
    let img = copied_layout.read_image("copied", Some(&arm64())).unwrap();
    assert_eq!(img.manifest.digest, b.manifest().digest);
    assert_eq!(img.index_platform, Some(arm64()));

    let ours = layout.read_image("multi", Some(&Platform::new("linux", "amd64", None))).unwrap();
    assert_eq!(ours.manifest.digest, a.manifest().digest);
    let err = layout.read_image("multi", Some(&Platform::new("windows", "amd64", None))).unwrap_err();
    let err = chain(&err);
    assert!(err.contains("\"multi\""), "{err}");
    assert!(err.contains("(it has: linux/amd64, linux/arm64/v8)"), "{err}");
}

#[test]
fn other_tags_and_foreign_entries_are_preserved() {
    let work = tempfile::tempdir().unwrap();
    let layout = OciLayout::create(work.path().join("layout")).unwrap();
    let (a, _) = sample_image(layout.blobs(), &amd64());
    let (b, _) = sample_image(layout.blobs(), &arm64());
    let first = layout.write("first", std::slice::from_ref(&a)).unwrap();
    // An entry written by skopeo.
    skopeo(&["copy", &oci(layout.path(), "first"), &oci(layout.path(), "by-skopeo")]).unwrap();
    layout.write("second", std::slice::from_ref(&b)).unwrap();
    // Re-tagging replaces only that entry.
    layout.write("first", std::slice::from_ref(&b)).unwrap();
    let mut tags = layout.list().unwrap();
    tags.sort();
    assert_eq!(tags, ["by-skopeo", "first", "second"]);
    assert_eq!(inspect(layout.path(), "by-skopeo")["Digest"], first.digest.as_str());
    assert_eq!(inspect(layout.path(), "first")["Digest"], b.manifest().digest.as_str());
    assert!(layout.remove("second").unwrap());
    assert!(!layout.remove("second").unwrap());
    assert_eq!(inspect(layout.path(), "by-skopeo")["Digest"], first.digest.as_str());
}

#[test]
fn concurrent_writers_keep_both_tags() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("layout");
    let layout = OciLayout::create(&dir).unwrap();
    let (a, _) = sample_image(layout.blobs(), &amd64());
    let (b, _) = sample_image(layout.blobs(), &arm64());
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let writers: Vec<_> = ["left", "right"]
            .into_iter()
            .map(|tag| {
                let (a, b, dir) = (a.clone(), b.clone(), dir.clone());
                s.spawn(move || {
                    // Each writer opens the layout on its own, as separate processes would.
                    let layout = OciLayout::open(&dir).unwrap();
                    for i in 0..40 {
                        let img = if i % 2 == 0 { &a } else { &b };
                        layout.write(tag, std::slice::from_ref(img)).unwrap();
                    }
                })
            })
            .collect();
        let reader = s.spawn(|| {
            let mut reads = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let bytes = std::fs::read(dir.join("index.json")).unwrap();
                let v: Value = serde_json::from_slice(&bytes).expect("index.json must always parse");
                assert!(v["manifests"].as_array().unwrap().len() <= 2, "{v}");
                reads += 1;
            }
            reads
        });
        for w in writers {
            w.join().unwrap();
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(reader.join().unwrap() > 0);
    });
    let mut tags = layout.list().unwrap();
    tags.sort();
    assert_eq!(tags, ["left", "right"]);
    assert_eq!(inspect(&dir, "left")["Digest"], b.manifest().digest.as_str());
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.contains("tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn failed_write_leaves_index_untouched() {
    let work = tempfile::tempdir().unwrap();
    let store = BlobStore::open(work.path().join("store")).unwrap();
    let layout = OciLayout::create(work.path().join("layout")).unwrap();
    let (good, _) = sample_image(&store, &amd64());
    layout.write("good", std::slice::from_ref(&good)).unwrap();
    let before = std::fs::read(layout.path().join("index.json")).unwrap();

    // A layer missing from its store.
    let mut missing = good.clone();
    missing.layers[1].descriptor.digest = Digest::of(b"not there");
    let err = layout.write("bad", &[missing]).unwrap_err();
    let err = chain(&err);
    assert!(err.contains("image \"bad\": blob sha256:"), "{err}");
    assert!(err.contains(&layout.path().display().to_string()), "{err}");

    // A layer only on a registry.
    let mut remote = good.clone();
    remote.layers[0] = LayerBlob {
        source: BlobSource::Registry(ImageRef::parse("registry.example.com/base:1").unwrap()),
        ..remote.layers[0].clone()
    };
    let err = layout.write("bad", &[remote]).unwrap_err();
    let err = chain(&err);
    assert!(err.contains("cannot write image \"bad\": layer sha256:"), "{err}");
    assert!(
        err.ends_with("is only on registry registry.example.com/base:1; pull it into a local store first"),
        "{err}"
    );

    assert_eq!(std::fs::read(layout.path().join("index.json")).unwrap(), before);
    assert_eq!(layout.list().unwrap(), ["good"]);
}
