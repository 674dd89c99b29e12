//! The registry client against a real registry (Debian's `docker-registry`, distribution
//! 2.8) on a loopback port, with skopeo as the independent oracle.
//!
//! Each test starts its own registry. A test is skipped (with a message on stderr) only when
//! `docker-registry` is not installed.

#![allow(clippy::unwrap_used, clippy::print_stderr)]

use std::path::{Path, PathBuf};

use cnbx_oci::config::ImageConfig;
use cnbx_oci::image::{BlobSource, ImageToWrite, SourceImage};
use cnbx_oci::layer::{LayerRecipe, build_layer};
use cnbx_oci::progress::NullReporter;
use cnbx_oci::registry::{RegistryClient, RegistryError, RegistryErrorKind, RegistryOptions};
use cnbx_oci::spec::{Platform, media_type};
use cnbx_oci::{BlobStore, Digest, TarEntry};
use cnbx_refs::ImageRef;
use cnbx_testkit::{Registry, require_tool, skopeo};

fn registry() -> Option<Registry> {
    if let Err(e) = require_tool("docker-registry", "docker-registry") {
        eprintln!("skipping: {e}");
        return None;
    }
    Some(Registry::start().unwrap())
}

fn r(s: &str) -> ImageRef {
    ImageRef::parse(s).unwrap()
}

fn client() -> RegistryClient {
    // A config dir that does not exist: no credentials from the machine running the tests.
    let dir = std::env::temp_dir().join("cnbx-registry-tests-no-docker-config");
    RegistryClient::new(RegistryOptions { insecure_registries: vec![], docker_config_dir: Some(dir) })
}

fn client_with_config(dir: &Path) -> RegistryClient {
    RegistryClient::new(RegistryOptions { insecure_registries: vec![], docker_config_dir: Some(dir.to_path_buf()) })
}

fn temp_store() -> (tempfile::TempDir, BlobStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).unwrap();
    (dir, store)
}

/// A deterministic image with two real layers: a small one and a ~1 MiB one.
fn build_image(store: &BlobStore, platform: &Platform, tag: &str) -> ImageToWrite {
    let mut config = ImageConfig::new(platform);
    let mut layers = Vec::new();
    let mut small = LayerRecipe::new(format!("small-{tag}-{platform}"));
    small.push_bytes(TarEntry::file("/hello.txt", 0), format!("hello from {tag} on {platform}\n").into_bytes());
    let mut big = LayerRecipe::new(format!("big-{tag}-{platform}"));
    let mut data = Vec::with_capacity(1 << 20);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ tag.len() as u64;
    while data.len() < (1 << 20) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data.extend_from_slice(&x.to_le_bytes());
    }
    big.push_bytes(TarEntry::file("/data.bin", 0), data);
    for recipe in [small, big] {
        let info = build_layer(&recipe, store, &NullReporter).unwrap();
        config.push_diff_id(&info.diff_id);
        layers.push(info.to_layer_blob(store));
    }
    ImageToWrite {
        manifest_media_type: media_type::OCI_MANIFEST.to_owned(),
        config_media_type: media_type::OCI_CONFIG.to_owned(),
        config: config.to_raw(),
        layers,
        platform: platform.clone(),
        annotations: None,
    }
}

fn amd64() -> Platform {
    Platform::parse("linux/amd64").unwrap()
}

fn arm64() -> Platform {
    Platform::parse("linux/arm64").unwrap()
}

/// `skopeo inspect --raw`, as bytes (skopeo adds no newline of its own to a manifest that has none).
fn skopeo_raw_bytes(reg: &Registry, repo_tag: &str) -> Vec<u8> {
    let mut args = vec!["inspect".to_owned(), "--raw".to_owned()];
    args.extend(reg.skopeo_flags());
    args.push(reg.docker_ref(repo_tag));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = skopeo(&args).unwrap();
    out.strip_suffix('\n').map_or_else(|| out.clone().into_bytes(), |s| s.as_bytes().to_vec())
}

/// The image as the registry client would write it again (layers from wherever `image` is).
fn to_write(image: &SourceImage) -> ImageToWrite {
    ImageToWrite {
        manifest_media_type: image.manifest.value.media_type.clone().unwrap(),
        config_media_type: image.manifest.value.config.media_type.clone(),
        config: image.config_raw.clone(),
        layers: image.layers().unwrap(),
        platform: image.platform(),
        annotations: image.manifest.value.annotations.clone(),
    }
}

fn blob_data_path(reg: &Registry, digest: &Digest) -> PathBuf {
    reg.storage().join("docker/registry/v2/blobs/sha256").join(&digest.hex()[..2]).join(digest.hex()).join("data")
}

#[tokio::test]
async fn push_single_image_then_skopeo_reads_the_same_bytes_and_a_second_push_uploads_nothing() {
    let Some(reg) = registry() else { return };
    let (_d, store) = temp_store();
    let image = build_image(&store, &amd64(), "single");
    let manifest = image.manifest();
    let target = r(&format!("{}/test/app:v1", reg.host()));
    let client = client();

    let outcome = client.push(&target, std::slice::from_ref(&image), &NullReporter).await.unwrap();
    assert_eq!(outcome.digest, manifest.digest);
    assert_eq!(outcome.size, manifest.bytes.len() as u64);
    assert_eq!(outcome.media_type, media_type::OCI_MANIFEST);
    assert_eq!((outcome.uploaded, outcome.mounted, outcome.skipped), (3, 0, 0), "{outcome:?}");

    let raw = skopeo_raw_bytes(&reg, "test/app:v1");
    assert_eq!(String::from_utf8_lossy(&raw), String::from_utf8_lossy(&manifest.bytes));
    assert_eq!(Digest::of(&raw), outcome.digest);
    let blobs = reg.blob_count();
    assert_eq!(blobs, 4, "2 layers + config + manifest");

    let again = client.push(&target, std::slice::from_ref(&image), &NullReporter).await.unwrap();
    assert_eq!(again.digest, outcome.digest);
    assert_eq!((again.uploaded, again.mounted, again.skipped), (0, 0, 3), "{again:?}");
    assert_eq!(reg.blob_count(), blobs);
}

#[tokio::test]
async fn fetch_image_round_trips_and_missing_tags_or_repositories_are_none() {
    let Some(reg) = registry() else { return };
    let (_d, store) = temp_store();
    let image = build_image(&store, &amd64(), "fetch");
    let target = r(&format!("{}/test/fetch:v1", reg.host()));
    let client = client();
    client.push(&target, std::slice::from_ref(&image), &NullReporter).await.unwrap();

    let got = client.fetch_image(&target, None).await.unwrap().unwrap();
    assert_eq!(got.manifest.bytes, image.manifest().bytes);
    assert_eq!(got.manifest.digest, image.manifest().digest);
    assert_eq!(got.config_raw.bytes, image.config.bytes);
    assert_eq!(got.platform(), amd64());
    assert!(got.index_platform.is_none());
    assert!(matches!(&got.source, BlobSource::Registry(s) if *s == target));
    assert_eq!(got.layers().unwrap().len(), 2);

    // By digest too.
    let by_digest = target.with_digest(image.manifest().digest.as_str());
    let got = client.fetch_image(&by_digest, None).await.unwrap().unwrap();
    assert_eq!(got.manifest.digest, image.manifest().digest);

    let missing_tag = r(&format!("{}/test/fetch:nope", reg.host()));
    assert!(client.fetch_image(&missing_tag, None).await.unwrap().is_none());
    let missing_repo = r(&format!("{}/test/never-pushed:v1", reg.host()));
    assert!(client.fetch_image(&missing_repo, None).await.unwrap().is_none());
    assert!(client.can_read(&target).await);
    assert!(!client.can_read(&missing_repo).await);

    // A wrong platform for a single manifest is an error, not a silent mismatch.
    let err = client.fetch_image(&target, Some(&arm64())).await.unwrap_err();
    assert!(err.to_string().contains("linux/arm64"), "{err}");
}

#[tokio::test]
async fn pull_layers_downloads_and_verifies_every_blob() {
    let Some(reg) = registry() else { return };
    let (_d, store) = temp_store();
    let image = build_image(&store, &amd64(), "pull");
    let target = r(&format!("{}/test/pull:v1", reg.host()));
    let client = client();
    client.push(&target, std::slice::from_ref(&image), &NullReporter).await.unwrap();
    let fetched = client.fetch_image(&target, None).await.unwrap().unwrap();

    let (_d2, local) = temp_store();
    let pulled = client.pull_layers(&fetched, &local, &NullReporter).await.unwrap();
    assert!(matches!(&pulled.source, BlobSource::Store(s) if s.root() == local.root()));
    for layer in &image.layers {
        let d = &layer.descriptor.digest;
        assert_eq!(local.read(d).unwrap(), store.read(d).unwrap(), "{d}");
    }
    assert!(local.contains(&image.config.digest));
    assert_eq!(pulled.manifest.digest, fetched.manifest.digest);

    // Tamper with the big layer in the registry's storage (same length, one byte changed).
    let big = &image.layers[1].descriptor.digest;
    let path = blob_data_path(&reg, big);
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();

    let (_d3, fresh) = temp_store();
    let err = client.pull_layers(&fetched, &fresh, &NullReporter).await.unwrap_err();
    assert!(matches!(err.kind(), RegistryErrorKind::DigestMismatch { .. }), "{err:?}");
    let msg = err.to_string();
    eprintln!("{msg}");
    assert!(msg.contains(big.as_str()), "{msg}");
    assert!(msg.contains("test/pull:v1"), "{msg}");
    assert!(!fresh.contains(big), "a corrupt blob must not land in the store");
}

/// `blobs_present` says what a push would skip, per repository, and changes nothing.
#[tokio::test]
async fn blobs_present_answers_per_repository_without_writing() {
    let Some(reg) = registry() else { return };
    let (_d, store) = temp_store();
    let image = build_image(&store, &amd64(), "present");
    let target = r(&format!("{}/test/present:v1", reg.host()));
    let client = client();
    client.push(&target, std::slice::from_ref(&image), &NullReporter).await.unwrap();
    let blobs = reg.blob_count();
    let mut digests: Vec<Digest> = image.layers.iter().map(|l| l.descriptor.digest.clone()).collect();
    digests.push(Digest::of(b"never pushed"));
    assert_eq!(client.blobs_present(&target, &digests).await.unwrap(), [true, true, false]);
    let elsewhere = r(&format!("{}/other/repo:v1", reg.host()));
    assert_eq!(client.blobs_present(&elsewhere, &digests).await.unwrap(), [false, false, false]);
    assert!(client.blobs_present(&target, &[]).await.unwrap().is_empty());
    assert_eq!(reg.blob_count(), blobs);
}

#[tokio::test]
async fn pushing_to_another_repository_of_the_same_registry_mounts() {
    let Some(reg) = registry() else { return };
    let (_d, store) = temp_store();
    let image = build_image(&store, &amd64(), "mount");
    let source = r(&format!("{}/base/run:1", reg.host()));
    let client = client();
    client.push(&source, std::slice::from_ref(&image), &NullReporter).await.unwrap();
    let blobs = reg.blob_count();

    let fetched = client.fetch_image(&source, None).await.unwrap().unwrap();
    let rewritten = to_write(&fetched);
    let target = r(&format!("{}/apps/builder:latest", reg.host()));
    let outcome = client.push(&target, &[rewritten], &NullReporter).await.unwrap();
    assert_eq!(outcome.digest, fetched.manifest.digest);
    assert_eq!((outcome.uploaded, outcome.mounted, outcome.skipped), (0, 3, 0), "{outcome:?}");
    assert_eq!(reg.blob_count(), blobs, "mounting must not store new blobs");
    assert_eq!(Digest::of(&skopeo_raw_bytes(&reg, "apps/builder:latest")), outcome.digest);
}

#[tokio::test]
async fn pushing_from_another_registry_streams_blobs_through() {
    let Some(reg_a) = registry() else { return };
    let reg_b = Registry::start().unwrap();
    let (_d, store) = temp_store();
    let image = build_image(&store, &amd64(), "cross");
    let source = r(&format!("{}/base/run:1", reg_a.host()));
    let client = client();
    client.push(&source, std::slice::from_ref(&image), &NullReporter).await.unwrap();
    let fetched = client.fetch_image(&source, None).await.unwrap().unwrap();

    let target = r(&format!("{}/copy/run:1", reg_b.host()));
    let outcome = client.push(&target, &[to_write(&fetched)], &NullReporter).await.unwrap();
    assert_eq!((outcome.uploaded, outcome.mounted, outcome.skipped), (3, 0, 0), "{outcome:?}");
    assert_eq!(Digest::of(&skopeo_raw_bytes(&reg_b, "copy/run:1")), fetched.manifest.digest);
}

#[tokio::test]
async fn multi_platform_push_creates_an_index_and_fetch_selects_the_platform() {
    let Some(reg) = registry() else { return };
    let (_d, store) = temp_store();
    let images = [build_image(&store, &amd64(), "multi"), build_image(&store, &arm64(), "multi")];
    let target = r(&format!("{}/test/multi:v1", reg.host()));
    let client = client();
    let outcome = client.push(&target, &images, &NullReporter).await.unwrap();
    assert_eq!(outcome.media_type, media_type::OCI_INDEX);

    let raw = skopeo_raw_bytes(&reg, "test/multi:v1");
    assert_eq!(Digest::of(&raw), outcome.digest);
    let index: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(index["mediaType"], media_type::OCI_INDEX);
    let platforms: Vec<(String, String)> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["platform"]["os"].as_str().unwrap().to_owned(),
                m["platform"]["architecture"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(platforms, [("linux".to_owned(), "amd64".to_owned()), ("linux".to_owned(), "arm64".to_owned())]);
    for (entry, image) in index["manifests"].as_array().unwrap().iter().zip(&images) {
        assert_eq!(entry["digest"], image.manifest().digest.as_str());
    }

    // skopeo copies the whole index into an OCI layout.
    let out = tempfile::tempdir().unwrap();
    let dest = format!("oci:{}:multi", out.path().join("layout").display());
    let src = reg.docker_ref("test/multi:v1");
    skopeo(&["copy", "--all", "--src-tls-verify=false", &src, &dest]).unwrap();
    let copied = skopeo(&["inspect", "--raw", &dest]).unwrap();
    assert_eq!(Digest::of(copied.trim_end().as_bytes()), outcome.digest);

    // Platform selection.
    let arm = client.fetch_image(&target, Some(&arm64())).await.unwrap().unwrap();
    assert_eq!(arm.index_platform, Some(arm64()));
    assert_eq!(arm.platform(), arm64());
    assert_eq!(arm.manifest.digest, images[1].manifest().digest);
    let v8 = client.fetch_image(&target, Some(&Platform::parse("linux/arm64/v8").unwrap())).await.unwrap().unwrap();
    assert_eq!(v8.manifest.digest, images[1].manifest().digest);
    let amd = client.fetch_image(&target, Some(&amd64())).await.unwrap().unwrap();
    assert_eq!(amd.manifest.digest, images[0].manifest().digest);
    let err = client.fetch_image(&target, Some(&Platform::parse("windows/amd64").unwrap())).await.unwrap_err();
    assert!(err.to_string().contains("linux/amd64, linux/arm64"), "{err}");

    // The layers of the selected platform pull and verify.
    let (_d2, local) = temp_store();
    client.pull_layers(&arm, &local, &NullReporter).await.unwrap();
    for layer in &images[1].layers {
        assert!(local.contains(&layer.descriptor.digest));
    }

    // Second push of the same index: nothing uploaded.
    let again = client.push(&target, &images, &NullReporter).await.unwrap();
    assert_eq!(again.digest, outcome.digest);
    assert_eq!(again.uploaded, 0, "{again:?}");
}

/// Minimal standard base64 for the test's config.json.
fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[tokio::test]
async fn basic_auth_uses_docker_config_and_fails_clearly_without_it() {
    if require_tool("docker-registry", "docker-registry").is_err() || require_tool("htpasswd", "apache2-utils").is_err()
    {
        eprintln!("skipping: docker-registry or htpasswd not installed");
        return;
    }
    const PASSWORD: &str = "s3cret-Pa55";
    let reg = Registry::start_with_basic_auth("builder", PASSWORD).unwrap();
    let (_d, store) = temp_store();
    let image = build_image(&store, &amd64(), "auth");
    let target = r(&format!("{}/private/app:v1", reg.host()));

    let config_dir = tempfile::tempdir().unwrap();
    std::fs::write(
        config_dir.path().join("config.json"),
        format!(
            r#"{{"auths":{{"{}":{{"auth":"{}"}}}}}}"#,
            reg.host(),
            base64(format!("builder:{PASSWORD}").as_bytes())
        ),
    )
    .unwrap();
    let authed = client_with_config(config_dir.path());
    let outcome = authed.push(&target, std::slice::from_ref(&image), &NullReporter).await.unwrap();
    assert_eq!(outcome.uploaded, 3);
    let fetched = authed.fetch_image(&target, None).await.unwrap().unwrap();
    assert_eq!(fetched.manifest.digest, outcome.digest);
    let (_d2, local) = temp_store();
    authed.pull_layers(&fetched, &local, &NullReporter).await.unwrap();
    assert!(authed.can_read(&target).await);
    assert_eq!(Digest::of(&skopeo_raw_bytes(&reg, "private/app:v1")), outcome.digest);

    let anonymous = client();
    let expected = format!(
        "authentication required for {host}: log in with `docker login {host}` (cnbx reads DOCKER_CONFIG or ~/.docker/config.json)",
        host = reg.host()
    );
    let err = anonymous.push(&target, std::slice::from_ref(&image), &NullReporter).await.unwrap_err();
    assert!(matches!(err.kind(), RegistryErrorKind::Auth { .. }), "{err:?}");
    eprintln!("{err}");
    assert!(err.to_string().contains(&expected), "{err}");
    assert!(err.to_string().contains("private/app:v1"), "{err}");
    for e in [err.to_string(), format!("{err:?}")] {
        assert!(!e.contains(PASSWORD), "{e}");
    }
    let err = anonymous.fetch_image(&target, None).await.unwrap_err();
    assert!(err.to_string().contains(&expected), "{err}");
    assert!(err.to_string().contains("private/app:v1"), "{err}");
    assert!(!anonymous.can_read(&target).await);

    // Wrong password: still an auth error, and the wrong password is not echoed either.
    let wrong_dir = tempfile::tempdir().unwrap();
    std::fs::write(
        wrong_dir.path().join("config.json"),
        format!(r#"{{"auths":{{"{}":{{"auth":"{}"}}}}}}"#, reg.host(), base64(b"builder:not-the-password")),
    )
    .unwrap();
    let err = client_with_config(wrong_dir.path()).fetch_image(&target, None).await.unwrap_err();
    assert!(matches!(err.kind(), RegistryErrorKind::Auth { .. }), "{err:?}");
    assert!(err.to_string().contains("the credentials found for it were rejected"), "{err}");
    assert!(!err.to_string().contains("not-the-password"), "{err}");
}

#[tokio::test]
async fn connection_refused_names_the_registry() {
    // A port nothing listens on (bound, then released).
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let reference = r(&format!("127.0.0.1:{port}/x/y:1"));
    let err = client().fetch_image(&reference, None).await.unwrap_err();
    eprintln!("{err}");
    assert!(matches!(err.kind(), RegistryErrorKind::Connect { .. }), "{err:?}");
    assert!(err.to_string().contains(&format!("127.0.0.1:{port}")), "{err}");
    // The connection error is the source, shown once after the message.
    let chain = cnbx_fs::error_chain(&err);
    assert!(std::error::Error::source(&err).is_some(), "{err:?}");
    assert!(chain.starts_with(&format!("{err}: ")), "{chain}");
    assert!(chain.to_lowercase().contains("connection refused"), "{chain}");
}

/// A host name that cannot be resolved is a DNS problem: the message says so, and does not
/// suggest --insecure-registry (plain HTTP would not resolve it either).
#[tokio::test]
async fn an_unresolvable_host_is_not_told_to_use_insecure_registry() {
    // `.invalid` never resolves (RFC 6761); without a resolver the lookup fails all the same.
    let err = client().fetch_image(&r("cnbx-test-host.invalid/x/y:1"), None).await.unwrap_err();
    let msg = err.to_string();
    eprintln!("{msg}");
    assert!(matches!(err.kind(), RegistryErrorKind::Connect { .. }), "{err:?}");
    assert!(!msg.contains("--insecure-registry"), "{msg}");
    assert!(msg.contains("could not be resolved: check the registry name"), "{msg}");
}

/// `blob_stream` hands out the blob's bytes as they arrive, stores nothing, and ends with an
/// error (after the good chunks) when the registry serves other bytes.
#[tokio::test]
async fn blob_stream_yields_the_verified_blob_and_refuses_a_tampered_one() {
    use futures_util::StreamExt;
    let Some(reg) = registry() else { return };
    let (_d, store) = temp_store();
    let image = build_image(&store, &amd64(), "stream");
    let target = r(&format!("{}/test/stream:v1", reg.host()));
    let client = client();
    client.push(&target, std::slice::from_ref(&image), &NullReporter).await.unwrap();
    let fetched = client.fetch_image(&target, None).await.unwrap().unwrap();
    let big = &image.layers[1].descriptor;
    let read_all = |client: RegistryClient, fetched: SourceImage, desc: cnbx_oci::Descriptor| async move {
        let mut stream = client.blob_stream(&fetched, &desc).await?;
        let mut bytes = Vec::new();
        while let Some(chunk) = stream.next().await {
            bytes.extend_from_slice(&chunk?);
        }
        Ok::<_, RegistryError>(bytes)
    };
    let bytes = read_all(client.clone(), fetched.clone(), big.clone()).await.unwrap();
    assert_eq!(bytes, store.read(&big.digest).unwrap());

    let path = blob_data_path(&reg, &big.digest);
    let mut tampered = std::fs::read(&path).unwrap();
    let last = tampered.len() - 1;
    tampered[last] ^= 0xff;
    std::fs::write(&path, &tampered).unwrap();
    let err = read_all(client, fetched, big.clone()).await.unwrap_err();
    assert!(matches!(err.kind(), RegistryErrorKind::DigestMismatch { .. }), "{err:?}");
    assert!(err.to_string().contains("test/stream:v1"), "{err}");
}

/// A loopback proxy in front of `upstream` that answers `503` to the first `failures`
/// manifest requests and forwards everything else unchanged.
async fn flaky_proxy(upstream: u16, failures: usize) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let failed = Arc::new(AtomicUsize::new(0));
    let counter = failed.clone();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                // Read the request head.
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    let Ok(n) = client.read(&mut buf).await else { return };
                    if n == 0 {
                        return;
                    }
                    head.extend_from_slice(&buf[..n]);
                }
                let line = String::from_utf8_lossy(&head).lines().next().unwrap_or_default().to_owned();
                if line.contains("/manifests/") && counter.load(Ordering::SeqCst) < failures {
                    counter.fetch_add(1, Ordering::SeqCst);
                    let body = r#"{"errors":[{"code":"UNAVAILABLE","message":"try again"}]}"#;
                    let response = format!(
                        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = client.write_all(response.as_bytes()).await;
                    return;
                }
                let Ok(mut server) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await else { return };
                // One request per connection, so that every request passes the check above.
                let first_line_end = head.windows(2).position(|w| w == b"\r\n").unwrap() + 2;
                head.splice(first_line_end..first_line_end, b"Connection: close\r\n".iter().copied());
                if server.write_all(&head).await.is_err() {
                    return;
                }
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            });
        }
    });
    (port, failed)
}

#[tokio::test]
async fn server_errors_are_retried_with_backoff_then_reported() {
    let Some(reg) = registry() else { return };
    let (_d, store) = temp_store();
    let image = build_image(&store, &amd64(), "retry");
    let client = client();
    client
        .push(&r(&format!("{}/test/retry:v1", reg.host())), std::slice::from_ref(&image), &NullReporter)
        .await
        .unwrap();

    // Two 503s, then success: the fetch goes through.
    let (port, failed) = flaky_proxy(reg.port(), 2).await;
    let via_proxy = r(&format!("127.0.0.1:{port}/test/retry:v1"));
    let got = client.fetch_image(&via_proxy, None).await.unwrap().unwrap();
    assert_eq!(got.manifest.digest, image.manifest().digest);
    assert_eq!(failed.load(std::sync::atomic::Ordering::SeqCst), 2);

    // Always 503: reported after the retries, naming the status and the registry.
    let (port, failed) = flaky_proxy(reg.port(), usize::MAX).await;
    let via_proxy = r(&format!("127.0.0.1:{port}/test/retry:v1"));
    let err = client.fetch_image(&via_proxy, None).await.unwrap_err();
    eprintln!("{err}");
    assert!(matches!(err.kind(), RegistryErrorKind::Server { code: 503, .. }), "{err:?}");
    assert!(err.to_string().contains(&format!("127.0.0.1:{port}")), "{err}");
    assert_eq!(failed.load(std::sync::atomic::Ordering::SeqCst), 4, "1 attempt + 3 retries");
}

/// Records progress events.
#[derive(Default)]
struct Recorder(std::sync::Mutex<Vec<String>>);

impl cnbx_oci::progress::Reporter for Recorder {
    fn message(&self, _level: cnbx_oci::progress::Level, _text: &str) {}
    fn start(&self, task: &cnbx_oci::progress::Task) {
        self.0.lock().unwrap().push(format!("start {} {:?}", task.id, task.total));
    }
    fn advance(&self, id: &str, bytes: u64) {
        self.0.lock().unwrap().push(format!("advance {id} {bytes}"));
    }
    fn finish(&self, id: &str) {
        self.0.lock().unwrap().push(format!("finish {id}"));
    }
}

impl Recorder {
    /// Bytes advanced per task id, for tasks that started and finished.
    fn totals(&self) -> std::collections::BTreeMap<String, u64> {
        let events = self.0.lock().unwrap();
        let mut totals = std::collections::BTreeMap::new();
        for e in events.iter() {
            let parts: Vec<&str> = e.split(' ').collect();
            match parts[0] {
                "start" => {
                    totals.insert(parts[1].to_owned(), 0);
                }
                "advance" => *totals.get_mut(parts[1]).unwrap() += parts[2].parse::<u64>().unwrap(),
                _ => assert!(totals.contains_key(parts[1])),
            }
        }
        assert_eq!(events.iter().filter(|e| e.starts_with("start")).count(), totals.len());
        assert_eq!(events.iter().filter(|e| e.starts_with("finish")).count(), totals.len());
        totals
    }
}

#[tokio::test]
async fn progress_is_reported_per_blob_for_pushes_and_pulls() {
    let Some(reg) = registry() else { return };
    let (_d, store) = temp_store();
    let image = build_image(&store, &amd64(), "progress");
    let target = r(&format!("{}/test/progress:v1", reg.host()));
    let client = client();
    let pushed = Recorder::default();
    client.push(&target, std::slice::from_ref(&image), &pushed).await.unwrap();
    let totals = pushed.totals();
    for layer in &image.layers {
        assert_eq!(totals[&format!("push:{}", layer.descriptor.digest)], layer.descriptor.size);
    }
    assert_eq!(totals[&format!("push:{}", image.config.digest)], image.config.bytes.len() as u64);

    let fetched = client.fetch_image(&target, None).await.unwrap().unwrap();
    let (_d2, local) = temp_store();
    let pulled = Recorder::default();
    client.pull_layers(&fetched, &local, &pulled).await.unwrap();
    let totals = pulled.totals();
    assert_eq!(totals.len(), 2);
    for layer in &image.layers {
        assert_eq!(totals[&format!("pull:{}", layer.descriptor.digest)], layer.descriptor.size);
    }
}

/// A name for this machine that resolves to 127.0.0.1 but is not a loopback name, so cnbx
/// uses HTTPS for it unless told otherwise.
fn non_loopback_name_for_127_0_0_1() -> Option<String> {
    use std::net::ToSocketAddrs;
    let name = std::fs::read_to_string("/etc/hostname").ok()?.trim().to_owned();
    if name.is_empty() || name == "localhost" || name.ends_with(".localhost") {
        return None;
    }
    let addrs: Vec<_> = (name.as_str(), 0).to_socket_addrs().ok()?.collect();
    addrs.iter().all(|a| a.ip() == std::net::Ipv4Addr::LOCALHOST).then_some(name)
}

#[tokio::test]
async fn https_failures_hint_at_insecure_registry_which_then_uses_plain_http() {
    let Some(reg) = registry() else { return };
    let Some(name) = non_loopback_name_for_127_0_0_1() else {
        eprintln!("skipping: this machine's host name does not resolve to 127.0.0.1 only");
        return;
    };
    let host = format!("{name}:{}", reg.port());
    let (_d, store) = temp_store();
    let image = build_image(&store, &amd64(), "insecure");
    let target = r(&format!("{host}/test/insecure:v1"));

    let err = client().push(&target, std::slice::from_ref(&image), &NullReporter).await.unwrap_err();
    let msg = err.to_string();
    eprintln!("{msg}");
    assert!(msg.contains(&format!("--insecure-registry {host}")), "{msg}");

    let config = tempfile::tempdir().unwrap();
    let insecure = RegistryClient::new(RegistryOptions {
        insecure_registries: vec![host.clone()],
        docker_config_dir: Some(config.path().to_path_buf()),
    });
    assert!(insecure.is_plain_http(&target));
    let outcome = insecure.push(&target, std::slice::from_ref(&image), &NullReporter).await.unwrap();
    let got = insecure.fetch_image(&target, None).await.unwrap().unwrap();
    assert_eq!(got.manifest.digest, outcome.digest);
}
