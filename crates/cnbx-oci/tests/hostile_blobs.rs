//! Hostile inputs to the OCI crate: OCI layouts, blob stores, archives and registries that
//! lie. Every hostile input is made here, by the test itself.
//!
//! What must hold: nothing enters a blob store or an output under a digest its bytes do not
//! have; nothing of the host (a private file, an endless device, a FIFO) is followed into
//! an output or waited on; every document is bounded; outputs get the modes the umask
//! gives; and a failed write leaves its destination as it was, with no temporary file.

#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod layers_support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cnbx_oci::blobstore::BlobError;
use cnbx_oci::docker_archive::write_docker_archive;
use cnbx_oci::image::{BlobSource, ImageToWrite, SourceImage};
use cnbx_oci::layer::{ArchiveSource, LayerRecipe, build_layer};
use cnbx_oci::layout::OciLayout;
use cnbx_oci::progress::NullReporter;
use cnbx_oci::registry::{RegistryClient, RegistryOptions};
use cnbx_oci::spec::{Descriptor, Manifest, Raw, media_type};
use cnbx_oci::store::LocalStore;
use cnbx_oci::{BlobStore, Digest, ImageConfig, LayerCache, TarEntry};
use cnbx_refs::ImageRef;
use cnbx_testkit::Registry;
use layers_support::{amd64, arm64, chain, sample_image};

/// Every cnbx temporary file under `dir`.
fn temporary_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with(cnbx_fs::TMP_PREFIX) {
            found.push(path.clone());
        }
        if entry.file_type().unwrap().is_dir() {
            found.extend(temporary_files(&path));
        }
    }
    found
}

/// Every regular file under `dir` (symbolic links are not followed).
fn regular_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            found.extend(regular_files(&entry.path()));
        } else if kind.is_file() {
            found.push(entry.path());
        }
    }
    found
}

/// Runs `f` on another thread and fails the test when it has not returned within 20 s (a
/// read from a FIFO without writer, or from `/dev/zero`, would never return).
fn within_seconds<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(20))
        .unwrap_or_else(|_| panic!("{what} did not return within 20 s: it waited on a FIFO or read an endless file"))
}

/// An OCI layout `<work>/input` holding the sample image under tag `t`.
fn input_layout(work: &Path) -> (OciLayout, ImageToWrite) {
    let build = BlobStore::open(work.join("build")).unwrap();
    let (image, _) = sample_image(&build, &amd64());
    let layout = OciLayout::create(work.join("input")).unwrap();
    layout.write("t", std::slice::from_ref(&image)).unwrap();
    (layout, image)
}

/// Replaces the file of blob `digest` in `store` with what `make` puts at its path.
fn replace_blob(store: &BlobStore, digest: &Digest, make: impl FnOnce(&Path)) {
    let path = store.path(digest);
    std::fs::remove_file(&path).unwrap();
    make(&path);
}

/// Replaces blob `digest` of `store` with other bytes of the same length.
fn corrupt_blob(store: &BlobStore, digest: &Digest) {
    let mut bytes = std::fs::read(store.path(digest)).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    replace_blob(store, digest, |p| std::fs::write(p, &bytes).unwrap());
}

fn mkfifo(path: &Path) {
    assert!(Command::new("mkfifo").arg(path).status().unwrap().success());
}

/// A file only its owner may read, as a host secret would be.
fn private_file(work: &Path) -> PathBuf {
    let secret = work.join("secret");
    std::fs::write(&secret, b"TOP SECRET host file").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    secret
}

/// The image as read from `layout` (its layers in the layout's blobs), ready to be written.
fn from_layout(layout: &OciLayout, tag: &str, like: &ImageToWrite) -> ImageToWrite {
    let read = layout.read_image(tag, None).unwrap();
    ImageToWrite { layers: read.layers().unwrap(), ..like.clone() }
}

fn client() -> RegistryClient {
    // A config dir that does not exist: no credentials from the machine running the tests.
    let dir = std::env::temp_dir().join("cnbx-hostile-tests-no-docker-config");
    RegistryClient::new(RegistryOptions { insecure_registries: vec![], docker_config_dir: Some(dir) })
}

#[test]
fn a_layer_blob_that_links_to_a_private_file_is_refused_and_nothing_is_copied() {
    let work = tempfile::tempdir().unwrap();
    let (input, image) = input_layout(work.path());
    let secret = private_file(work.path());
    let layer = image.layers[1].descriptor.clone();
    replace_blob(input.blobs(), &layer.digest, |p| std::os::unix::fs::symlink(&secret, p).unwrap());
    let blob_path = input.blobs().path(&layer.digest).display().to_string();
    let to_write = from_layout(&input, "t", &image);

    // Imported into a store.
    let store = BlobStore::open(work.path().join("store")).unwrap();
    let err = chain(&store.import_from(input.blobs(), &layer.digest).unwrap_err());
    assert!(err.contains(&blob_path) && err.contains("is a symbolic link, not a regular file"), "{err}");
    assert!(std::fs::symlink_metadata(store.path(&layer.digest)).is_err(), "nothing under the digest");

    // Written to a docker-archive.
    let archive = work.path().join("out.tar");
    let err = chain(&write_docker_archive(&archive, &[], std::slice::from_ref(&to_write)).unwrap_err());
    assert!(err.contains(layer.digest.as_str()) && err.contains("is a symbolic link"), "{err}");
    assert!(!archive.exists());

    // Written to an OCI layout.
    let output = OciLayout::create(work.path().join("output")).unwrap();
    let err = chain(&output.write("x", std::slice::from_ref(&to_write)).unwrap_err());
    assert!(err.contains(layer.digest.as_str()) && err.contains("is a symbolic link"), "{err}");
    assert!(std::fs::symlink_metadata(output.blobs().path(&layer.digest)).is_err());
    assert!(output.list().unwrap().is_empty());

    assert_eq!(temporary_files(work.path()), Vec::<PathBuf>::new());
    for file in regular_files(work.path()).into_iter().filter(|f| *f != secret) {
        let bytes = std::fs::read(&file).unwrap();
        assert!(!bytes.windows(10).any(|w| w == b"TOP SECRET"), "the secret was copied into {}", file.display());
    }
}

#[test]
fn documents_and_blobs_that_are_dev_zero_or_fifos_are_refused_at_once() {
    for kind in ["a symbolic link", "a FIFO"] {
        let work = tempfile::tempdir().unwrap();
        let (input, image) = input_layout(work.path());
        let manifest = image.manifest().digest;
        let layer = image.layers[0].descriptor.digest.clone();
        for digest in [&manifest, &layer] {
            replace_blob(input.blobs(), digest, |p| {
                if kind == "a FIFO" { mkfifo(p) } else { std::os::unix::fs::symlink("/dev/zero", p).unwrap() }
            });
        }

        let dir = input.path().to_path_buf();
        let read = within_seconds("reading the image", move || {
            OciLayout::open(&dir).unwrap().read_image("t", None).map(|_| ()).map_err(|e| chain(&e))
        });
        let err = read.unwrap_err();
        assert!(err.contains(manifest.as_str()) && err.contains(&format!("is {kind}, not a regular file")), "{err}");

        let (src, dst) = (input.path().to_path_buf(), work.path().join("store"));
        let digest = layer.clone();
        let import = within_seconds("importing the layer", move || {
            let store = BlobStore::open(dst).unwrap();
            store.import_from(&BlobStore::open(src).unwrap(), &digest).map_err(|e| chain(&e))
        });
        let err = import.unwrap_err();
        let blob_path = input.blobs().path(&layer).display().to_string();
        assert!(err.contains(&format!("{blob_path} is {kind}, not a regular file")), "{err}");
        assert!(!BlobStore::open(work.path().join("store")).unwrap().contains(&layer));
        assert_eq!(temporary_files(work.path()), Vec::<PathBuf>::new());
    }
}

#[test]
fn a_layout_blob_with_other_bytes_than_its_digest_never_enters_the_store() {
    let work = tempfile::tempdir().unwrap();
    let (input, image) = input_layout(work.path());
    // The digest of a real layer (of another image, say), with the attacker's bytes.
    let layer = image.layers[1].descriptor.clone();
    corrupt_blob(input.blobs(), &layer.digest);

    let store = BlobStore::open(work.path().join("store")).unwrap();
    let err = chain(&store.import_from(input.blobs(), &layer.digest).unwrap_err());
    let blob_path = input.blobs().path(&layer.digest).display().to_string();
    assert!(err.contains(&format!("{blob_path} does not hold blob {}", layer.digest)), "{err}");
    assert!(std::fs::symlink_metadata(store.path(&layer.digest)).is_err(), "the store has no blob {}", layer.digest);
    assert_eq!(temporary_files(work.path()), Vec::<PathBuf>::new());

    // A later, unrelated create gets the genuine bytes under that digest.
    let genuine = BlobStore::open(work.path().join("build")).unwrap();
    store.import_from(&genuine, &layer.digest).unwrap();
    assert_eq!(std::fs::read(store.path(&layer.digest)).unwrap(), std::fs::read(genuine.path(&layer.digest)).unwrap());
}

#[test]
fn a_blob_of_another_size_than_its_descriptor_is_refused() {
    let work = tempfile::tempdir().unwrap();
    let (input, image) = input_layout(work.path());
    let layer = image.layers[1].descriptor.clone();
    let store = BlobStore::open(work.path().join("store")).unwrap();
    let smaller = Descriptor { size: layer.size - 1, ..layer.clone() };
    let err = chain(&store.import_blob(input.blobs(), &smaller).unwrap_err());
    assert!(err.contains(&format!("it has more than the {} bytes its descriptor gives", layer.size - 1)), "{err}");
    let larger = Descriptor { size: layer.size + 1, ..layer.clone() };
    let err = chain(&store.import_blob(input.blobs(), &larger).unwrap_err());
    assert!(err.contains(&format!("it has {} bytes, but its descriptor says {}", layer.size, layer.size + 1)), "{err}");
    assert!(!store.contains(&layer.digest));
    assert_eq!(temporary_files(work.path()), Vec::<PathBuf>::new());
}

#[test]
fn an_untrusted_stream_is_stored_only_when_it_is_the_blob_and_not_too_large() {
    let work = tempfile::tempdir().unwrap();
    let store = BlobStore::open(work.path()).unwrap();
    let content = b"layer bytes".to_vec();
    let digest = Digest::of(&content);
    // An endless stream stops at the limit.
    let err = store.put_verified(std::io::repeat(b'x'), &digest, 1 << 20).unwrap_err();
    assert!(matches!(err, BlobError::TooLarge { limit: 1048576, .. }), "{err}");
    let err = store.put_verified(&b"other bytes"[..], &digest, 1 << 20).unwrap_err();
    assert!(matches!(err, BlobError::Mismatch { .. }), "{err}");
    assert!(!store.contains(&digest));
    assert_eq!(temporary_files(work.path()), Vec::<PathBuf>::new());
    assert_eq!(store.put_verified(&content[..], &digest, content.len() as u64).unwrap(), content.len() as u64);
    assert_eq!(store.read(&digest).unwrap(), content);
}

#[test]
fn oversized_layout_documents_are_refused_with_the_limit() {
    let work = tempfile::tempdir().unwrap();
    let pad = "x".repeat(5 << 20);

    // index.json: valid JSON, larger than an image index may be.
    let layout = OciLayout::create(work.path().join("index")).unwrap();
    let index = format!(r#"{{"schemaVersion":2,"manifests":[],"annotations":{{"pad":"{pad}"}}}}"#);
    std::fs::write(layout.path().join("index.json"), index).unwrap();
    let err = chain(&layout.list().unwrap_err());
    assert!(err.contains("index.json is larger than the 4194304 bytes cnbx reads for an image index"), "{err}");

    // A manifest: valid, stored under its own digest, too large.
    let layout = OciLayout::create(work.path().join("manifest")).unwrap();
    let config = ImageConfig::new(&amd64()).to_raw();
    layout.blobs().put_bytes(&config.bytes).unwrap();
    let manifest = Raw::new(Manifest {
        schema_version: 2,
        media_type: Some(media_type::OCI_MANIFEST.to_owned()),
        config: config.descriptor(media_type::OCI_CONFIG),
        layers: vec![],
        annotations: Some([("pad".to_owned(), pad.clone())].into_iter().collect()),
    });
    layout.blobs().put_bytes(&manifest.bytes).unwrap();
    layout.tag("big", &manifest.descriptor(media_type::OCI_MANIFEST)).unwrap();
    let err = chain(&layout.read_image("big", None).unwrap_err());
    assert!(err.contains(manifest.digest.as_str()), "{err}");
    assert!(err.contains("is larger than the 4194304 bytes cnbx reads for an image manifest"), "{err}");

    // oci-layout: larger than a descriptor may be.
    let marker = format!(r#"{{"imageLayoutVersion":"1.0.0","pad":"{}"}}"#, "x".repeat(2 << 20));
    std::fs::write(layout.path().join("oci-layout"), marker).unwrap();
    let err = chain(&OciLayout::open(layout.path()).unwrap_err());
    assert!(err.contains("oci-layout is larger than the 1048576 bytes cnbx reads for an oci-layout file"), "{err}");
}

#[test]
fn a_corrupt_store_blob_fails_the_outputs_and_leaves_them_as_they_were() {
    let work = tempfile::tempdir().unwrap();
    let store = BlobStore::open(work.path().join("store")).unwrap();
    let (image, layers) = sample_image(&store, &amd64());
    let output = OciLayout::create(work.path().join("output")).unwrap();
    let (other, _) = sample_image(&store, &arm64());
    output.write("old", &[other]).unwrap();
    let index_before = std::fs::read(output.path().join("index.json")).unwrap();
    let blobs = || {
        let mut files = regular_files(&output.path().join("blobs"));
        files.sort();
        files
    };
    let blobs_before = blobs();
    let archive = work.path().join("out.tar");
    std::fs::write(&archive, b"the previous archive").unwrap();

    let corrupt = &layers[1].descriptor.digest;
    corrupt_blob(&store, corrupt);
    let blob_path = store.path(corrupt).display().to_string();
    let named = |err: &str| err.contains(corrupt.as_str()) && err.contains(&format!("{blob_path} does not hold blob"));

    let err = chain(&output.write("new", std::slice::from_ref(&image)).unwrap_err());
    assert!(named(&err), "{err}");
    assert_eq!(std::fs::read(output.path().join("index.json")).unwrap(), index_before);
    assert!(std::fs::symlink_metadata(output.blobs().path(corrupt)).is_err());
    // The layers placed (in parallel) before or while the corrupt one failed are gone again.
    assert_eq!(blobs(), blobs_before);

    let err = chain(&write_docker_archive(&archive, &[], std::slice::from_ref(&image)).unwrap_err());
    assert!(named(&err), "{err}");
    assert_eq!(std::fs::read(&archive).unwrap(), b"the previous archive");

    assert_eq!(temporary_files(work.path()), Vec::<PathBuf>::new());
}

/// Run by [`output_modes_follow_the_umask`] in a child process with the umask it sets
/// (the umask is per process, so it is never changed in the test process itself).
#[test]
#[ignore = "run by output_modes_follow_the_umask, in a child process"]
fn write_every_output_under_this_process_umask() {
    let Some(dir) = std::env::var_os("CNBX_TEST_OUTPUT_DIR").map(PathBuf::from) else { return };
    let home = dir.join("home");
    let store = LocalStore::open(home.join("store")).unwrap();
    let cache = LayerCache::open(home.join("cache").join("layers")).unwrap();
    let mut recipe = LayerRecipe::new("cached");
    recipe.push_bytes(TarEntry::file("/cached", 0), b"cached".to_vec());
    cache.get_or_build(&recipe, store.blobs(), &NullReporter).unwrap();
    let (image, _) = sample_image(store.blobs(), &amd64());
    store.put(&ImageRef::parse("example.com/team/builder:1").unwrap(), std::slice::from_ref(&image)).unwrap();
    OciLayout::create(dir.join("oci")).unwrap().write("v1", std::slice::from_ref(&image)).unwrap();
    write_docker_archive(&dir.join("builder.tar"), &[], std::slice::from_ref(&image)).unwrap();
}

#[test]
fn output_modes_follow_the_umask() {
    for (umask, file_mode, dir_mode) in [("022", 0o644, 0o755), ("077", 0o600, 0o700)] {
        let work = tempfile::tempdir().unwrap();
        let status = Command::new("sh")
            .arg("-c")
            .arg(format!("umask {umask} && exec \"$0\" \"$@\""))
            .arg(std::env::current_exe().unwrap())
            .args(["--exact", "write_every_output_under_this_process_umask", "--ignored", "--test-threads=1"])
            .env("CNBX_TEST_OUTPUT_DIR", work.path())
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "the child process failed under umask {umask}");
        for expected in
            ["oci/index.json", "oci/oci-layout", "builder.tar", "home/store/index.json", "home/store/oci-layout"]
        {
            assert!(work.path().join(expected).is_file(), "{expected} was not written under umask {umask}");
        }
        let mut checked = 0;
        let mut dirs = vec![work.path().to_path_buf()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let entry = entry.unwrap();
                let meta = std::fs::symlink_metadata(entry.path()).unwrap();
                let mode = meta.permissions().mode() & 0o7777;
                let path = entry.path().display().to_string();
                if meta.is_dir() {
                    assert_eq!(mode, dir_mode, "directory {path} under umask {umask}: {mode:o}");
                    dirs.push(entry.path());
                } else {
                    assert!(meta.is_file(), "{path} is not a regular file");
                    assert_eq!(mode, file_mode, "file {path} under umask {umask}: {mode:o}");
                }
                checked += 1;
            }
        }
        let cache_keys = std::fs::read_dir(work.path().join("home/cache/layers")).unwrap().count();
        assert_eq!(cache_keys, 1, "one layer cache key file");
        assert!(checked > 15, "only {checked} files and directories were written");
    }
}

#[test]
fn an_archive_with_a_huge_extended_header_is_refused_without_holding_it() {
    // A PAX header announcing 256 MiB of records, all zeros: about 256 KiB once gzipped.
    let work = tempfile::tempdir().unwrap();
    let bomb = work.path().join("bomb.tgz");
    let mut gz = flate2::write::GzEncoder::new(std::fs::File::create(&bomb).unwrap(), flate2::Compression::fast());
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(tar::EntryType::XHeader);
    header.set_path("PaxHeaders/bomb").unwrap();
    header.set_size(256 << 20);
    header.set_cksum();
    gz.write_all(header.as_bytes()).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..256 {
        gz.write_all(&zeros).unwrap();
    }
    gz.finish().unwrap();

    let store = BlobStore::open(work.path().join("store")).unwrap();
    let mut recipe = LayerRecipe::new("bomb");
    recipe.push_archive(ArchiveSource::verbatim(&bomb).unwrap());
    let before = peak_rss_kib();
    let err = chain(&build_layer(&recipe, &store, &NullReporter).unwrap_err());
    let grown = peak_rss_kib().saturating_sub(before);
    assert!(err.contains("an entry's headers (long names or PAX records) are larger than"), "{err}");
    assert!(grown < 128 * 1024, "peak RSS grew by {grown} KiB reading a 256 MiB header");
    assert_eq!(temporary_files(work.path()), Vec::<PathBuf>::new());
}

/// Run by [`source_archives_obey_the_entry_and_size_limits`] in a child process with the
/// limits set in its environment (never in the test process itself).
#[test]
#[ignore = "run by source_archives_obey_the_entry_and_size_limits, in a child process"]
fn build_a_layer_over_this_process_archive_limits() {
    let Some(expected) = std::env::var_os("CNBX_TEST_EXPECTED_ERROR") else { return };
    let work = tempfile::tempdir().unwrap();
    let archive = work.path().join("five.tar");
    let mut w = cnbx_oci::TarWriter::new(std::fs::File::create(&archive).unwrap());
    for i in 0..5 {
        w.append_bytes(&TarEntry::file(format!("/f{i}"), 1024), &[b'x'; 1024]).unwrap();
    }
    w.finish().unwrap();
    let store = BlobStore::open(work.path().join("store")).unwrap();
    let mut recipe = LayerRecipe::new("limited");
    recipe.push_archive(ArchiveSource::verbatim(&archive).unwrap());
    let err = chain(&build_layer(&recipe, &store, &NullReporter).unwrap_err());
    assert!(err.contains(expected.to_str().unwrap()), "{err}");
    assert_eq!(temporary_files(work.path()), Vec::<PathBuf>::new());
}

#[test]
fn source_archives_obey_the_entry_and_size_limits() {
    for (variable, value, expected) in [
        (
            "CNBX_MAX_ARCHIVE_ENTRIES",
            "3",
            "it has more than 3 entries; if it is genuine, raise the limit with CNBX_MAX_ARCHIVE_ENTRIES",
        ),
        (
            "CNBX_MAX_UNPACKED_SIZE",
            "2K",
            "it unpacks to more than 2048 bytes; if it is genuine, raise the limit with CNBX_MAX_UNPACKED_SIZE",
        ),
    ] {
        let status = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "build_a_layer_over_this_process_archive_limits", "--ignored", "--test-threads=1"])
            .env(variable, value)
            .env("CNBX_TEST_EXPECTED_ERROR", expected)
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "with {variable}={value}, building the layer did not fail with: {expected}");
    }
}

/// Peak resident set size of this process, in KiB.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// A registry that answers `/v2/` and then, for any manifest or blob, an endless body of
/// spaces (up to 256 MiB), announced as 1 GiB or not announced at all.
struct EndlessRegistry {
    port: u16,
    sent: Arc<AtomicU64>,
}

impl EndlessRegistry {
    fn start(announce_length: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let sent = Arc::new(AtomicU64::new(0));
        let counter = sent.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let counter = counter.clone();
                std::thread::spawn(move || serve_endless(stream, announce_length, &counter));
            }
        });
        Self { port, sent }
    }

    fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }
}

fn serve_endless(mut stream: TcpStream, announce_length: bool, sent: &AtomicU64) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).unwrap_or(0) == 0 || head.len() > 64 * 1024 {
            return;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let path = head.split_whitespace().nth(1).unwrap_or_default().to_owned();
    if path == "/v2/" {
        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}");
        return;
    }
    let content_type = if path.contains("/manifests/") { media_type::OCI_MANIFEST } else { "application/octet-stream" };
    let length = if announce_length { format!("Content-Length: {}\r\n", 1u64 << 30) } else { String::new() };
    let response = format!("HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\n{length}Connection: close\r\n\r\n");
    if stream.write_all(response.as_bytes()).is_err() {
        return;
    }
    let chunk = vec![b' '; 64 * 1024];
    while sent.load(Ordering::Relaxed) < 256 << 20 {
        if stream.write_all(&chunk).is_err() {
            return;
        }
        sent.fetch_add(chunk.len() as u64, Ordering::Relaxed);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_registry_serving_an_endless_manifest_is_cut_off_at_the_limit() {
    for announce_length in [true, false] {
        let server = EndlessRegistry::start(announce_length);
        let reference = ImageRef::parse(&format!("127.0.0.1:{}/endless/manifest:latest", server.port)).unwrap();
        let err = chain(&client().fetch_image(&reference, None).await.unwrap_err());
        assert!(err.contains("the manifest from 127.0.0.1:"), "{err}");
        assert!(err.contains("is larger than 4194304 bytes, the most cnbx reads for an image manifest"), "{err}");
        let sent = server.sent();
        assert!(sent < 64 << 20, "cnbx let the registry send {sent} bytes (Content-Length sent: {announce_length})");
    }
}

/// An image whose one layer is `layer`, its blobs on `reference`'s registry.
fn remote_image(reference: &ImageRef, layer: Descriptor) -> SourceImage {
    let mut config = ImageConfig::new(&amd64());
    config.push_diff_id(&Digest::of(b"diff"));
    let config_raw = config.to_raw();
    let manifest = Raw::new(Manifest {
        schema_version: 2,
        media_type: Some(media_type::OCI_MANIFEST.to_owned()),
        config: config_raw.descriptor(media_type::OCI_CONFIG),
        layers: vec![layer],
        annotations: None,
    });
    SourceImage {
        display_name: reference.to_string(),
        manifest,
        config,
        config_raw,
        index_platform: None,
        source: BlobSource::Registry(reference.clone()),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pulled_blob_never_has_more_bytes_than_its_descriptor() {
    // Unannounced: the bytes are counted as they come.
    let server = EndlessRegistry::start(false);
    let reference = ImageRef::parse(&format!("127.0.0.1:{}/endless/blob:latest", server.port)).unwrap();
    let layer = Descriptor::new(media_type::OCI_LAYER_GZIP, Digest::of(b"0123456789"), 10);
    let work = tempfile::tempdir().unwrap();
    let store = BlobStore::open(work.path()).unwrap();
    let image = remote_image(&reference, layer.clone());
    let err = chain(&client().pull_layers(&image, &store, &NullReporter).await.unwrap_err());
    assert!(err.contains("the registry sent more than the 10 bytes its descriptor gives"), "{err}");
    assert!(!store.contains(&layer.digest));
    assert_eq!(temporary_files(work.path()), Vec::<PathBuf>::new());

    // A real registry holding a 1000-byte blob that a manifest describes as 10 bytes: the
    // digest matches, the size does not.
    let reg = Registry::start().unwrap();
    let content: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 251) as u8).collect();
    let digest = Digest::of(&content);
    upload_blob(&reg, "hostile/size", &content, &digest);
    let reference = ImageRef::parse(&format!("{}/hostile/size:v1", reg.host())).unwrap();
    let image = remote_image(&reference, Descriptor::new(media_type::OCI_LAYER_GZIP, digest.clone(), 10));
    let err = chain(&client().pull_layers(&image, &store, &NullReporter).await.unwrap_err());
    assert!(err.contains(&format!("blob {digest} of ")), "{err}");
    assert!(err.contains("the registry announced 1000 bytes, but its descriptor says 10"), "{err}");
    assert!(!store.contains(&digest));
    assert_eq!(temporary_files(work.path()), Vec::<PathBuf>::new());
}

/// Uploads `content` as blob `digest` of `repo` (a POST, then one PUT).
fn upload_blob(reg: &Registry, repo: &str, content: &[u8], digest: &Digest) {
    let (code, head) = http(reg.port(), "POST", &format!("/v2/{repo}/blobs/uploads/"), &[]);
    assert_eq!(code, 202, "{head}");
    let location = head
        .lines()
        .find_map(|l| l.strip_prefix("Location: ").or_else(|| l.strip_prefix("location: ")))
        .unwrap()
        .trim()
        .to_owned();
    let path = location.split_once(&reg.host()).map_or(location.as_str(), |(_, p)| p);
    let (code, head) = http(reg.port(), "PUT", &format!("{path}&digest={digest}"), content);
    assert_eq!(code, 201, "{head}");
}

/// One HTTP/1.0 request; returns the status and the response head.
fn http(port: u16, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    let code = response.split_whitespace().nth(1).unwrap().parse().unwrap();
    (code, response.split("\r\n\r\n").next().unwrap_or_default().to_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn pushing_a_corrupt_store_blob_fails_before_the_registry_has_it() {
    let reg = Registry::start().unwrap();
    let work = tempfile::tempdir().unwrap();
    let store = BlobStore::open(work.path()).unwrap();
    let (image, layers) = sample_image(&store, &amd64());
    let corrupt = &layers[1].descriptor.digest;
    corrupt_blob(&store, corrupt);
    let target = ImageRef::parse(&format!("{}/hostile/push:v1", reg.host())).unwrap();
    let err = chain(&client().push(&target, std::slice::from_ref(&image), &NullReporter).await.unwrap_err());
    let blob_path = store.path(corrupt).display().to_string();
    assert!(err.contains(&format!("{blob_path} does not hold blob {corrupt}")), "{err}");
    assert_eq!(reg.get(&format!("/v2/hostile/push/blobs/{corrupt}")).unwrap().0, 404);
    assert_eq!(reg.get("/v2/hostile/push/manifests/v1").unwrap().0, 404);
}
