//! The local store: images keyed by fully qualified reference, looked up by tag or digest.

#![allow(clippy::unwrap_used)]

mod layers_support;

use cnbx_oci::image::BlobSource;
use cnbx_oci::store::LocalStore;
use cnbx_refs::ImageRef;
use layers_support::{amd64, arm64, chain, sample_image};

fn r(s: &str) -> ImageRef {
    ImageRef::parse(s).unwrap()
}

#[test]
fn put_and_get_by_normalised_reference() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path().join("store")).unwrap();
    let (image, _) = sample_image(store.blobs(), &amd64());
    let entry = store.put(&r("foo"), std::slice::from_ref(&image)).unwrap();
    assert_eq!(entry.ref_name(), Some("index.docker.io/library/foo:latest"));
    assert_eq!(store.list().unwrap(), ["index.docker.io/library/foo:latest"]);

    for spelling in ["foo", "foo:latest", "docker.io/foo", "index.docker.io/library/foo:latest"] {
        let got = store.get(&r(spelling), None).unwrap().unwrap_or_else(|| panic!("{spelling} not found"));
        assert_eq!(got.manifest.digest, image.manifest().digest);
        assert_eq!(got.display_name, "index.docker.io/library/foo:latest");
        assert!(matches!(&got.source, BlobSource::Store(s) if s.root() == store.blobs().root()));
    }
    assert!(store.get(&r("foo:other"), None).unwrap().is_none());
    assert!(store.get(&r("example.com/foo"), None).unwrap().is_none());

    // By digest, within the same repository only.
    let digest = image.manifest().digest;
    let by_digest = store.get(&r(&format!("foo@{digest}")), None).unwrap().unwrap();
    assert_eq!(by_digest.manifest.digest, digest);
    assert_eq!(by_digest.display_name, format!("index.docker.io/library/foo@{digest}"));
    assert!(store.get(&r(&format!("bar@{digest}")), None).unwrap().is_none());

    // skopeo reads the store as the OCI layout it is.
    let info = cnbx_testkit::skopeo(&[
        "inspect",
        &format!("oci:{}:index.docker.io/library/foo:latest", store.layout().path().display()),
    ])
    .unwrap();
    assert!(info.contains(digest.as_str()), "{info}");

    assert!(store.remove(&r("docker.io/library/foo")).unwrap());
    assert!(store.get(&r("foo"), None).unwrap().is_none());
    assert!(store.list().unwrap().is_empty());
}

#[test]
fn multi_platform_entries() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).unwrap();
    let (a, _) = sample_image(store.blobs(), &amd64());
    let (b, _) = sample_image(store.blobs(), &arm64());
    let reference = r("registry.example.com:5000/team/builder:1.0");
    let entry = store.put(&reference, &[a.clone(), b.clone()]).unwrap();
    assert_eq!(entry.ref_name(), Some("registry.example.com:5000/team/builder:1.0"));

    let arm = store.get(&reference, Some(&arm64())).unwrap().unwrap();
    assert_eq!(arm.manifest.digest, b.manifest().digest);
    assert_eq!(arm.index_platform, Some(arm64()));
    assert_eq!(arm.platform(), arm64());

    // The index digest and each platform's manifest digest both resolve.
    let by_index = store.get(&reference.with_digest(entry.digest.as_str()), Some(&amd64())).unwrap().unwrap();
    assert_eq!(by_index.manifest.digest, a.manifest().digest);
    let by_manifest = store.get(&reference.with_digest(b.manifest().digest.as_str()), None).unwrap().unwrap();
    assert_eq!(by_manifest.manifest.digest, b.manifest().digest);

    let err = store.get(&reference, Some(&cnbx_oci::Platform::new("linux", "s390x", None))).unwrap_err();
    let err = chain(&err);
    assert!(
        err.contains("registry.example.com:5000/team/builder:1.0 has no manifest for platform linux/s390x"),
        "{err}"
    );
}

#[test]
fn replacing_a_reference_keeps_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).unwrap();
    let (a, _) = sample_image(store.blobs(), &amd64());
    let (b, _) = sample_image(store.blobs(), &arm64());
    store.put(&r("one"), std::slice::from_ref(&a)).unwrap();
    store.put(&r("two"), std::slice::from_ref(&a)).unwrap();
    store.put(&r("one"), std::slice::from_ref(&b)).unwrap();
    let mut refs = store.list().unwrap();
    refs.sort();
    assert_eq!(refs, ["index.docker.io/library/one:latest", "index.docker.io/library/two:latest"]);
    assert_eq!(store.get(&r("one"), None).unwrap().unwrap().manifest.digest, b.manifest().digest);
    assert_eq!(store.get(&r("two"), None).unwrap().unwrap().manifest.digest, a.manifest().digest);
    // Reopening sees the same.
    let again = LocalStore::open(dir.path()).unwrap();
    assert_eq!(again.get(&r("two"), None).unwrap().unwrap().manifest.digest, a.manifest().digest);
}
