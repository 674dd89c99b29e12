//! Never-panic property tests ("fuzzing on stable Rust") of the code that reads other
//! people's bytes: the tar reader (`cnbx_oci::tarread`, in both of its uses), the
//! layer writer's archive source (gzip or plain tar), and the manifest, index and config
//! parsers. Each must return a value or an error for any input, never panic, and never hold
//! more than a bounded amount of it in memory.
//!
//! `PROPTEST_CASES=<n>` runs more cases (`make fuzz`); the defaults keep this file to a few
//! seconds in a debug build.

#![allow(clippy::unwrap_used)]

use std::io::{self, Read, Write};

use cnbx_oci::config::ImageConfig;
use cnbx_oci::layer::{ArchiveSource, LayerRecipe, build_layer};
use cnbx_oci::progress::NullReporter;
use cnbx_oci::spec::{Index, JsonError, Manifest, Platform, Raw};
use cnbx_oci::tarball::{TarEntry, TarTime, TarWriter};
use cnbx_oci::tarread::{TarReader, Use};
use cnbx_oci::{BlobStore, Digest};
use proptest::prelude::*;
use proptest::sample::Index as At;

/// `default_cases` cases, or `PROPTEST_CASES`.
fn cases(default_cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default_cases);
    ProptestConfig { cases, ..ProptestConfig::default() }
}

/// A tar with every kind of entry cnbx meets: directories, files, a symbolic link, a hard
/// link, a name long enough for PAX, PAX records and owners.
fn sample_tar() -> Vec<u8> {
    let mut w = TarWriter::new(Vec::new());
    w.append_bytes(&TarEntry::dir("/cnb"), b"").unwrap();
    w.append_bytes(&TarEntry::file("/cnb/run", 11).with_mode(0o755).with_owner(1000, 1000), b"#!/bin/sh\n\n").unwrap();
    w.append_bytes(&TarEntry::symlink("/cnb/link", "/cnb/run"), b"").unwrap();
    w.append_bytes(&TarEntry::hardlink("/cnb/hard", "/cnb/run"), b"").unwrap();
    let long = format!("/cnb/{}/file", "d".repeat(150));
    w.append_bytes(&TarEntry::file(long, 3), b"abc").unwrap();
    let mut pax = TarEntry::file("/cnb/pax", 2);
    pax.pax_records.insert("SCHILY.xattr.user.k".into(), "v".into());
    pax.pax_records.insert("mtime".into(), "1234.5".into());
    w.append_bytes(&pax, b"hi").unwrap();
    w.finish().unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

/// Reads every entry as cnbx reads a source archive: its header, then its content; in both
/// uses of the reader.
fn read_entries(bytes: &[u8]) -> Result<u64, String> {
    let mut total = 0;
    for rules in [Use::Reencode, Use::Verbatim] {
        let mut reader = TarReader::new(bytes, rules);
        while let Some(header) = reader.next_entry().map_err(|e| e.to_string())? {
            let read = io::copy(&mut reader.content(), &mut io::sink()).map_err(|e| e.to_string())?;
            assert_eq!(read, header.data_len(), "content length of {header:?}");
            total += read;
        }
    }
    Ok(total)
}

/// `base` with each `(position, byte)` written over it, then cut at `cut` (when `Some`).
fn mutate(mut base: Vec<u8>, edits: &[(At, u8)], cut: Option<At>) -> Vec<u8> {
    for (at, byte) in edits {
        let i = at.index(base.len());
        base[i] = *byte;
    }
    if let Some(cut) = cut {
        let keep = cut.index(base.len() + 1);
        base.truncate(keep);
    }
    base
}

/// Builds a layer from `bytes` as an archive source: an error or a layer, nothing else.
fn build_from_archive(bytes: &[u8]) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("source");
    std::fs::write(&path, bytes).unwrap();
    let store = BlobStore::open(dir.path().join("store")).unwrap();
    let mut recipe = LayerRecipe::new("fuzz");
    recipe.push_archive(ArchiveSource::verbatim(&path).unwrap());
    let built = build_layer(&recipe, &store, &NullReporter).map(|_| ()).map_err(|e| e.to_string());
    // Whatever happened, no temporary file is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("store/blobs"))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(cnbx_fs::TMP_PREFIX))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    built
}

/// Parses `bytes` with every document parser cnbx has, and uses what parsed.
fn parse_documents(bytes: &[u8]) {
    if let Err(e) = Raw::<Manifest>::parse(bytes.to_vec()) {
        let shown = JsonError::from(e).to_string();
        assert!(!shown.contains('\n'), "{shown}");
    }
    if let Ok(index) = Raw::<Index>::parse(bytes.to_vec()) {
        for d in &index.value.manifests {
            let _ = d.platform.as_ref().map(ToString::to_string);
        }
    }
    let _ = Raw::<serde_json::Value>::parse(bytes.to_vec());
    if let Ok(config) = ImageConfig::from_slice(bytes) {
        let _ = config.diff_ids();
        let _ = config.platform().to_string();
        let _ = (config.labels(), config.env(), config.user(), config.working_dir());
    }
    let text = String::from_utf8_lossy(bytes);
    let _ = text.parse::<Digest>().map_err(|e| e.to_string());
    let _ = Platform::parse(&text);
    let _ = TarTime::parse_pax(&text);
}

const MANIFEST: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":0},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":0,"annotations":{"a":"b"}}]}"#;

const CONFIG: &str = r#"{"architecture":"arm64","os":"linux","variant":"v8","config":{"User":"1000:1000","Env":["A=b"],"Labels":{"k":"v"},"WorkingDir":"/w"},"rootfs":{"type":"layers","diff_ids":["sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"]}}"#;

proptest! {
    #![proptest_config(cases(128))]

    #[test]
    fn fuzz_tar_reader_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..3072)) {
        let _ = read_entries(&bytes);
    }

    #[test]
    fn fuzz_tar_reader_on_mutated_tars(
        edits in proptest::collection::vec((any::<At>(), any::<u8>()), 1..12),
        cut in proptest::option::of(any::<At>()),
    ) {
        let _ = read_entries(&mutate(sample_tar(), &edits, cut));
    }

    #[test]
    fn fuzz_documents_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
        parse_documents(&bytes);
    }

    #[test]
    fn fuzz_documents_on_mutated_json(
        which in 0..2usize,
        edits in proptest::collection::vec((any::<At>(), any::<u8>()), 1..8),
        cut in proptest::option::of(any::<At>()),
    ) {
        let base = [MANIFEST, CONFIG][which].as_bytes().to_vec();
        parse_documents(&mutate(base, &edits, cut));
    }
}

proptest! {
    // Each case writes a file and builds a layer: fewer of them by default.
    #![proptest_config(cases(48))]

    #[test]
    fn fuzz_archive_source_on_arbitrary_gzip(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let mut input = vec![0x1f, 0x8b];
        input.extend_from_slice(&bytes);
        let _ = build_from_archive(&input);
    }

    #[test]
    fn fuzz_archive_source_on_mutated_gzip(
        edits in proptest::collection::vec((any::<At>(), any::<u8>()), 1..8),
        cut in proptest::option::of(any::<At>()),
    ) {
        let _ = build_from_archive(&mutate(gzip(&sample_tar()), &edits, cut));
    }

    #[test]
    fn fuzz_archive_source_on_mutated_tars(
        edits in proptest::collection::vec((any::<At>(), any::<u8>()), 1..8),
        cut in proptest::option::of(any::<At>()),
    ) {
        let _ = build_from_archive(&mutate(sample_tar(), &edits, cut));
    }
}

#[test]
fn the_unmutated_inputs_are_read_whole() {
    // The mutations start from inputs that cnbx reads without error.
    assert_eq!(read_entries(&sample_tar()).unwrap(), 2 * (11 + 3 + 2));
    build_from_archive(&gzip(&sample_tar())).unwrap();
    build_from_archive(&sample_tar()).unwrap();
    Raw::<Manifest>::parse(MANIFEST.as_bytes().to_vec()).unwrap();
    let config = ImageConfig::from_slice(CONFIG.as_bytes()).unwrap();
    assert_eq!(config.platform().to_string(), "linux/arm64/v8");
    let mut all = Vec::new();
    flate2::read::MultiGzDecoder::new(&gzip(b"x")[..]).read_to_end(&mut all).unwrap();
    assert_eq!(all, b"x");
}
