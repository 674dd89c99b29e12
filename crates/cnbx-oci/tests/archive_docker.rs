//! docker-archive output, read back by skopeo.

#![allow(clippy::unwrap_used)]

mod layers_support;

use std::io::Read;

use cnbx_oci::BlobStore;
use cnbx_oci::docker_archive::write_docker_archive;
use cnbx_oci::image::{BlobSource, LayerBlob};
use cnbx_oci::layout::OciLayout;
use cnbx_refs::ImageRef;
use cnbx_testkit::{skopeo, skopeo_config};
use layers_support::{amd64, arm64, chain, sample_image};
use serde_json::Value;

/// (name, content) of every member, in archive order.
fn members(path: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let bytes = std::fs::read(path).unwrap();
    let mut ar = tar::Archive::new(&bytes[..]);
    ar.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let name = e.path().unwrap().to_string_lossy().into_owned();
            let mut content = Vec::new();
            e.read_to_end(&mut content).unwrap();
            (name, content)
        })
        .collect()
}

#[test]
fn skopeo_reads_the_archive_with_identical_diff_ids() {
    let work = tempfile::tempdir().unwrap();
    let store = BlobStore::open(work.path().join("store")).unwrap();
    let (image, layers) = sample_image(&store, &amd64());
    let file = work.path().join("out.tar");
    let tags = [ImageRef::parse("example.com/team/app:1.2").unwrap(), ImageRef::parse("app").unwrap()];
    write_docker_archive(&file, &tags, std::slice::from_ref(&image)).unwrap();

    // The members, sorted, and their JSON.
    let m = members(&file);
    let names: Vec<&str> = m.iter().map(|(n, _)| n.as_str()).collect();
    let cfg = format!("{}.json", image.config.digest.hex());
    let mut want: Vec<String> = layers
        .iter()
        .flat_map(|l| [l.descriptor.digest.hex().to_owned(), format!("{}/layer.tar", l.descriptor.digest.hex())])
        .collect();
    want.extend([cfg.clone(), "manifest.json".into(), "repositories".into()]);
    want.sort();
    assert_eq!(names, want);
    let manifest: Value = serde_json::from_slice(&m.iter().find(|(n, _)| n == "manifest.json").unwrap().1).unwrap();
    assert_eq!(manifest[0]["Config"], cfg);
    assert_eq!(manifest[0]["RepoTags"], serde_json::json!(["example.com/team/app:1.2", "app:latest"]));
    assert_eq!(manifest[0]["Layers"][0], format!("{}/layer.tar", layers[0].descriptor.digest.hex()));
    let repositories: Value = serde_json::from_slice(&m.iter().find(|(n, _)| n == "repositories").unwrap().1).unwrap();
    assert_eq!(repositories["example.com/team/app"]["1.2"], image.config.digest.hex());
    assert_eq!(repositories["app"]["latest"], image.config.digest.hex());
    // Layers are the stored gzip blobs, byte for byte.
    let l0 =
        &m.iter().find(|(n, _)| n.starts_with(layers[0].descriptor.digest.hex()) && n.ends_with(".tar")).unwrap().1;
    assert_eq!(l0, &store.read(&layers[0].descriptor.digest).unwrap());

    // skopeo's view.
    let reference = format!("docker-archive:{}", file.display());
    let info: Value = serde_json::from_str(&skopeo(&["inspect", &reference]).unwrap()).unwrap();
    assert_eq!(info["Architecture"], "amd64");
    assert_eq!(info["Os"], "linux");
    assert_eq!(info["Labels"]["io.cnbx.test"], "yes");
    let config = skopeo_config(&reference, &[]).unwrap();
    let diff_ids: Vec<&str> =
        config["rootfs"]["diff_ids"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(diff_ids, [layers[0].diff_id.as_str(), layers[1].diff_id.as_str()]);

    // skopeo copy into an OCI layout: same diffIDs, and the layer content survives.
    let copy = work.path().join("copy");
    skopeo(&["copy", &reference, &format!("oci:{}:x", copy.display())]).unwrap();
    let copied = OciLayout::open(&copy).unwrap().read_image("x", None).unwrap();
    let copied_ids: Vec<String> = copied.layers().unwrap().iter().map(|l| l.diff_id.to_string()).collect();
    assert_eq!(copied_ids, [layers[0].diff_id.to_string(), layers[1].diff_id.to_string()]);
    assert_eq!(copied.config.label("io.cnbx.test"), Some("yes"));
    let copied_layer = copied.layers().unwrap()[1].descriptor.digest.clone();
    let blob = OciLayout::open(&copy).unwrap().blobs().read(&copied_layer).unwrap();
    let mut tar = Vec::new();
    flate2::read::MultiGzDecoder::new(&blob[..]).read_to_end(&mut tar).unwrap();
    assert_eq!(cnbx_oci::Digest::of(&tar), layers[1].diff_id);

    // A specific tag inside the archive.
    let by_tag = format!("docker-archive:{}:app:latest", file.display());
    assert!(skopeo(&["inspect", &by_tag]).unwrap().contains("\"Architecture\": \"amd64\""));
}

#[test]
fn deterministic_and_atomic() {
    let work = tempfile::tempdir().unwrap();
    let store = BlobStore::open(work.path().join("store")).unwrap();
    let (image, _) = sample_image(&store, &amd64());
    let a = work.path().join("a.tar");
    let b = work.path().join("b.tar");
    write_docker_archive(&a, &[], std::slice::from_ref(&image)).unwrap();
    write_docker_archive(&b, &[], std::slice::from_ref(&image)).unwrap();
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    // Untagged: no repositories file, empty RepoTags.
    let m = members(&a);
    assert!(!m.iter().any(|(n, _)| n == "repositories"));
    let manifest: Value = serde_json::from_slice(&m.iter().find(|(n, _)| n == "manifest.json").unwrap().1).unwrap();
    assert_eq!(manifest[0]["RepoTags"], serde_json::json!([]));
    // Overwriting replaces the file whole, and leaves no temporary file.
    std::fs::write(&a, b"old").unwrap();
    write_docker_archive(&a, &[], std::slice::from_ref(&image)).unwrap();
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    let names: Vec<String> =
        std::fs::read_dir(work.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert!(names.iter().all(|n| !n.starts_with(".cnbx")), "{names:?}");
}

#[test]
fn errors_are_clear() {
    let work = tempfile::tempdir().unwrap();
    let store = BlobStore::open(work.path().join("store")).unwrap();
    let (a, _) = sample_image(&store, &amd64());
    let (b, _) = sample_image(&store, &arm64());
    let file = work.path().join("x.tar");
    let err = write_docker_archive(&file, &[], &[a.clone(), b]).unwrap_err().to_string();
    assert!(
        err.ends_with(
            "holds exactly one image, but 2 platforms were built (linux/amd64, linux/arm64/v8); pass a single --target"
        ),
        "{err}"
    );

    let mut remote = a.clone();
    remote.layers[0] = LayerBlob {
        source: BlobSource::Registry(ImageRef::parse("example.com/base:1").unwrap()),
        ..remote.layers[0].clone()
    };
    let err = write_docker_archive(&file, &[], &[remote]).unwrap_err().to_string();
    assert!(err.contains("is only on registry example.com/base:1; pull it into a local store first"), "{err}");

    let digest_only = ImageRef::parse(&format!("app@{}", a.manifest().digest)).unwrap();
    let err = write_docker_archive(&file, &[digest_only], std::slice::from_ref(&a)).unwrap_err().to_string();
    assert!(err.contains("cannot be a RepoTag (it has no tag)"), "{err}");

    let mut missing = a;
    missing.layers[1].descriptor.digest = cnbx_oci::Digest::of(b"absent");
    let err = chain(&write_docker_archive(&file, &[], &[missing]).unwrap_err());
    assert!(err.contains("reading layer sha256:"), "{err}");
    assert!(!file.exists(), "nothing written on failure");
}

#[test]
fn tag_and_digest_reference_keeps_only_the_tag() {
    let work = tempfile::tempdir().unwrap();
    let store = BlobStore::open(work.path().join("store")).unwrap();
    let (image, _) = sample_image(&store, &amd64());
    let file = work.path().join("x.tar");
    let both = ImageRef::parse(&format!("docker.io/library/app:1@{}", image.manifest().digest)).unwrap();
    write_docker_archive(&file, &[both], std::slice::from_ref(&image)).unwrap();
    let m = members(&file);
    let manifest: Value = serde_json::from_slice(&m.iter().find(|(n, _)| n == "manifest.json").unwrap().1).unwrap();
    assert_eq!(manifest[0]["RepoTags"], serde_json::json!(["app:1"]));
}
