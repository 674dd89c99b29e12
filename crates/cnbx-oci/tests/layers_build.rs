//! Building layers: parallel builds and progress, re-encoding existing archives (ours, GNU
//! tar's GNU and PAX formats), and the directory walk's rules.

#![allow(clippy::unwrap_used)]

mod layers_support;

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;

use cnbx_oci::BlobStore;
use cnbx_oci::cache::build_layers;
use cnbx_oci::layer::{ArchiveSource, LayerError, LayerRecipe, build_layer, walk_dir};
use cnbx_oci::progress::{Level, NullReporter, Reporter, Task, TaskKind};
use cnbx_oci::tarball::{EntryKind, HeaderFormat, TarEntry, TarError, TarTime, TarWriter, clean_path};
use layers_support::chain;

/// Records progress events.
#[derive(Default)]
struct Recorder {
    started: Mutex<Vec<Task>>,
    advanced: Mutex<HashMap<String, u64>>,
    finished: Mutex<Vec<String>>,
}

impl Reporter for Recorder {
    fn message(&self, _level: Level, _text: &str) {}
    fn start(&self, task: &Task) {
        self.started.lock().unwrap().push(task.clone());
    }
    fn advance(&self, id: &str, bytes: u64) {
        *self.advanced.lock().unwrap().entry(id.to_owned()).or_default() += bytes;
    }
    fn finish(&self, id: &str) {
        self.finished.lock().unwrap().push(id.to_owned());
    }
}

fn ungzip(store: &BlobStore, digest: &cnbx_oci::Digest) -> Vec<u8> {
    let blob = store.read(digest).unwrap();
    let mut tar = Vec::new();
    flate2::read::MultiGzDecoder::new(&blob[..]).read_to_end(&mut tar).unwrap();
    tar
}

fn listing(tar: &[u8]) -> String {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), tar).unwrap();
    let out = cnbx_testkit::tar_listing(f.path()).unwrap();
    out.lines().map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ") + "\n").collect()
}

fn gnu_tar(dir: &Path, args: &[&str]) {
    cnbx_testkit::require_tool("tar", "tar").unwrap();
    let out = Command::new("tar").current_dir(dir).args(args).output().unwrap();
    assert!(out.status.success(), "tar {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn parallel_builds_report_progress_in_input_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).unwrap();
    let recipes: Vec<LayerRecipe> = (0..8u8)
        .map(|i| {
            let mut r = LayerRecipe::new(format!("layer-{i}"));
            r.push_header(TarEntry::dir("/d"));
            r.push_bytes(TarEntry::file("/d/f", 0), vec![i; 300_000 + usize::from(i)]);
            r
        })
        .collect();
    let rec = Recorder::default();
    let results = build_layers(&recipes, &store, None, &rec);
    for (i, r) in results.iter().enumerate() {
        let info = r.as_ref().unwrap();
        let tar = ungzip(&store, &info.descriptor.digest);
        assert_eq!(tar[512 + 512 + 10], i as u8, "result {i} is layer {i}");
    }
    let started = rec.started.lock().unwrap();
    assert_eq!(started.len(), 8);
    assert!(started.iter().all(|t| t.kind == TaskKind::Build));
    let t3 = started.iter().find(|t| t.id == "layer-3").unwrap();
    assert_eq!(t3.total, Some(300_003));
    assert_eq!(rec.advanced.lock().unwrap()["layer-3"], 300_003);
    assert_eq!(rec.finished.lock().unwrap().len(), 8);
}

#[test]
fn reencoding_our_own_archive_is_the_identity() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path().join("store")).unwrap();
    let mut w = TarWriter::new(Vec::new());
    w.append_bytes(&TarEntry::dir("/cnb").with_owner(1, 2), b"").unwrap();
    w.append_bytes(&TarEntry::file(format!("/cnb/{}", "long/".repeat(40) + "x"), 3), b"abc").unwrap();
    w.append_bytes(&TarEntry::file("/cnb/ünï", 1).with_mtime(TarTime::new(5, 5).unwrap()), b"z").unwrap();
    w.append_bytes(&TarEntry::symlink("/l", "/cnb"), b"").unwrap();
    let original = w.finish().unwrap();
    let path = dir.path().join("src.tar");
    std::fs::write(&path, &original).unwrap();
    let gz = dir.path().join("src.tgz");
    {
        let mut e = flate2::write::GzEncoder::new(std::fs::File::create(&gz).unwrap(), flate2::Compression::fast());
        std::io::Write::write_all(&mut e, &original).unwrap();
        e.finish().unwrap();
    }
    for src in [&path, &gz] {
        let mut r = LayerRecipe::new("copy");
        r.push_archive(ArchiveSource::verbatim(src).unwrap());
        let info = build_layer(&r, &store, &NullReporter).unwrap();
        assert_eq!(info.diff_id, cnbx_oci::Digest::of(&original), "{}", src.display());
    }
}

/// pack's lifecycle rule, as the builder will write it on top of an `ArchiveSource`.
fn lifecycle_like(src: &Path) -> LayerRecipe {
    let mut r = LayerRecipe::new("lifecycle");
    r.push_header(TarEntry::dir("/cnb/lifecycle"));
    r.push_archive(
        ArchiveSource::new(src, "test lifecycle v1", |mut e| {
            let name = clean_path(&e.path);
            let parts: Vec<&str> = name.split('/').collect();
            if parts.len() != 2 || parts[1] == "lifecycle.toml" {
                return Ok(None);
            }
            e.path = format!("/cnb/lifecycle/{}", parts[1]);
            Ok(Some(e))
        })
        .unwrap(),
    );
    r.push_header(TarEntry::symlink("/lifecycle", "/cnb/lifecycle"));
    r
}

#[test]
fn gnu_format_sources_are_rewritten_as_go_would() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path().join("store")).unwrap();
    let src = dir.path().join("src");
    let long = "l".repeat(110);
    std::fs::create_dir_all(src.join("lifecycle")).unwrap();
    std::fs::write(src.join("lifecycle/lifecycle.toml"), "x").unwrap();
    std::fs::write(src.join("lifecycle/launcher"), "launcher").unwrap();
    std::fs::write(src.join(format!("lifecycle/{long}")), "long").unwrap();
    gnu_tar(&src, &["--format=gnu", "--owner=0", "--group=0", "-czf", "../lc.tgz", "lifecycle"]);

    let info = build_layer(&lifecycle_like(&dir.path().join("lc.tgz")), &store, &NullReporter).unwrap();
    let tar = ungzip(&store, &info.descriptor.digest);
    // The lifecycle dir, two kept files, the symlink; lifecycle.toml and the top dir dropped.
    let mut ar = tar::Archive::new(&tar[..]);
    let names: Vec<(String, bool)> = ar
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (String::from_utf8(e.path_bytes().into_owned()).unwrap(), e.header().as_gnu().is_some())
        })
        .collect();
    let long_path = format!("/cnb/lifecycle/{long}");
    let mut kept: Vec<&str> = names.iter().map(|(n, _)| n.as_str()).collect();
    kept[1..3].sort_unstable();
    assert_eq!(kept, ["/cnb/lifecycle", "/cnb/lifecycle/launcher", long_path.as_str(), "/lifecycle"]);
    // Entries from the GNU archive keep GNU headers (so Go would write a ././@LongLink);
    // entries created here are USTAR.
    assert!(!names[0].1 && !names[3].1);
    assert!(names[1].1 && names[2].1);
    assert!(tar.windows(13).any(|w| w == b"././@LongLink"));
    let l = listing(&tar);
    assert!(l.contains(&format!("{long_path}\n")), "{l}");
}

#[test]
fn pax_sources_keep_their_records() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path().join("store")).unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("bp/bin")).unwrap();
    std::fs::write(src.join("bp/bin/build"), "#!/bin/sh\n").unwrap();
    gnu_tar(&src, &["--format=pax", "-cf", "../bp.tar", "bp"]);

    // Read the source as the builder does.
    let bytes = std::fs::read(dir.path().join("bp.tar")).unwrap();
    let first =
        cnbx_oci::tarread::TarReader::new(&bytes[..], cnbx_oci::tarread::Use::Reencode).next_entry().unwrap().unwrap();
    assert_eq!(first.format, HeaderFormat::Pax);
    assert!(first.pax_records.contains_key("atime"), "{:?}", first.pax_records);
    assert!(first.atime.is_some());

    let mut r = LayerRecipe::new("bp");
    r.push_archive(
        ArchiveSource::new(dir.path().join("bp.tar"), "normalise v1", |mut e| {
            e.path = format!("/cnb/buildpacks/bp/1/{}", clean_path(&e.path));
            e.uid = 0;
            e.gid = 0;
            e.uname.clear();
            e.gname.clear();
            e.mtime = TarTime::NORMALIZED;
            Ok(Some(e))
        })
        .unwrap(),
    );
    let info = build_layer(&r, &store, &NullReporter).unwrap();
    let tar = ungzip(&store, &info.descriptor.digest);
    let text = String::from_utf8_lossy(&tar);
    // atime/ctime of a PAX source survive (as in pack); the stale mtime record does not.
    assert!(text.contains(" atime="), "atime record kept");
    assert!(text.contains("PaxHeaders.0/"));
    assert!(!text.contains(" mtime="), "the source's mtime record no longer matches and is dropped");
    let l = listing(&tar);
    assert!(l.contains("0/0 0 1980-01-01 00:00 /cnb/buildpacks/bp/1/bp/bin\n"), "{l}");
}

#[test]
fn mapping_errors_and_size_changes_fail_the_layer() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path().join("store")).unwrap();
    let mut w = TarWriter::new(Vec::new());
    w.append_bytes(&TarEntry::file("a", 2), b"hi").unwrap();
    std::fs::write(dir.path().join("a.tar"), w.finish().unwrap()).unwrap();

    let mut r = LayerRecipe::new("bad map");
    r.push_archive(
        ArchiveSource::new(dir.path().join("a.tar"), "err", |e| {
            Err(TarError::Unsupported { path: e.path, reason: "not allowed here".into() })
        })
        .unwrap(),
    );
    let err = build_layer(&r, &store, &NullReporter).unwrap_err();
    assert!(matches!(err, LayerError::Archive { .. }));
    let msg = chain(&err);
    assert!(msg.starts_with("building layer bad map: reading archive "), "{msg}");
    assert!(msg.ends_with("tar entry `a` of the source archive cannot be re-encoded: not allowed here"), "{msg}");

    let mut r = LayerRecipe::new("resized");
    r.push_archive(
        ArchiveSource::new(dir.path().join("a.tar"), "resize", |mut e| {
            e.size = 3;
            Ok(Some(e))
        })
        .unwrap(),
    );
    let msg = chain(&build_layer(&r, &store, &NullReporter).unwrap_err());
    assert!(msg.contains("the header says 3 bytes of content but only 2 were supplied"), "{msg}");

    // A file that changed size since the walk.
    std::fs::write(dir.path().join("f"), "1234").unwrap();
    let mut r = LayerRecipe::new("changed");
    r.extend(walk_dir(dir.path()).map(Result::unwrap).filter(|w| w.rel_path == "f").map(|w| w.into_layer_entry()));
    std::fs::write(dir.path().join("f"), "12345").unwrap();
    let msg = chain(&build_layer(&r, &store, &NullReporter).unwrap_err());
    assert!(msg.contains("changed while cnbx was reading it"), "{msg}");
    // A file replaced by a symbolic link since the walk is not read through the link.
    std::fs::write(dir.path().join("secret"), "host secret").unwrap();
    std::fs::write(dir.path().join("g"), "12345").unwrap();
    let mut r = LayerRecipe::new("swapped");
    r.extend(walk_dir(dir.path()).map(Result::unwrap).filter(|w| w.rel_path == "g").map(|w| w.into_layer_entry()));
    std::fs::remove_file(dir.path().join("g")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("secret"), dir.path().join("g")).unwrap();
    let msg = chain(&build_layer(&r, &store, &NullReporter).unwrap_err());
    assert!(msg.contains("changed while cnbx was reading it"), "{msg}");
    // Nothing half-written is left in the store.
    let blobs: Vec<_> = std::fs::read_dir(store.root().join("blobs/sha256")).unwrap().collect();
    assert!(blobs.is_empty());
    let tmps: Vec<_> = std::fs::read_dir(store.root().join("blobs"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name() != "sha256")
        .collect();
    assert!(tmps.is_empty(), "{tmps:?}");
}

#[test]
fn walk_rules() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("bp");
    std::fs::create_dir_all(root.join("real/sub")).unwrap();
    std::fs::write(root.join("real/sub/file"), "content").unwrap();
    std::os::unix::fs::symlink("real", root.join("link-to-dir")).unwrap();
    std::os::unix::fs::symlink("/does/not/exist", root.join("dangling")).unwrap();
    std::fs::write(root.join("a-first"), "shared").unwrap();
    std::fs::hard_link(root.join("a-first"), root.join("z-second")).unwrap();
    let status = Command::new("mkfifo").arg(root.join("fifo")).status().unwrap();
    assert!(status.success());
    let _socket = std::os::unix::net::UnixListener::bind(root.join("sock")).unwrap();

    let walked: Vec<_> = walk_dir(&root).map(Result::unwrap).collect();
    let summary: Vec<(String, EntryKind, u64)> =
        walked.iter().map(|w| (w.rel_path.clone(), w.kind.clone(), w.size)).collect();
    assert_eq!(
        summary,
        [
            ("a-first".into(), EntryKind::File, 6),
            ("dangling".into(), EntryKind::Symlink { target: "/does/not/exist".into() }, 0),
            ("link-to-dir".into(), EntryKind::Symlink { target: "real".into() }, 0),
            ("real".into(), EntryKind::Dir, 0),
            ("real/sub".into(), EntryKind::Dir, 0),
            ("real/sub/file".into(), EntryKind::File, 7),
            ("z-second".into(), EntryKind::Hardlink { target: "a-first".into() }, 0),
        ]
    );
    // The hard link carries no content; the first path does.
    let entries: Vec<_> = walked.into_iter().map(|w| w.into_layer_entry()).collect();
    assert_eq!(entries[6].data, cnbx_oci::layer::EntryData::None);
    assert!(matches!(entries[0].data, cnbx_oci::layer::EntryData::File { .. }));
    let store = BlobStore::open(dir.path().join("store")).unwrap();
    let mut r = LayerRecipe::new("walked");
    r.extend(entries);
    let info = build_layer(&r, &store, &NullReporter).unwrap();
    let l = listing(&ungzip(&store, &info.descriptor.digest));
    assert!(l.contains("z-second link to a-first\n"), "{l}");
    assert!(l.contains("link-to-dir -> real\n"), "{l}");
}

#[test]
fn non_utf8_names_are_reported() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(std::ffi::OsStr::from_bytes(b"bad\xff")), "x").unwrap();
    let err = walk_dir(dir.path()).next().unwrap().unwrap_err();
    let msg = chain(&err);
    assert!(msg.starts_with("walking "), "{msg}");
    assert!(msg.ends_with(": file name is not UTF-8"), "{msg}");
}

#[test]
fn sparse_files_of_gnu_tar_are_expanded_as_go_expands_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path().join("store")).unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    // Data, a hole, data, a hole at the end.
    let mut content = vec![0u8; 3 * 65536];
    content[..5].copy_from_slice(b"start");
    content[100_000..100_004].copy_from_slice(b"mid!");
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = std::fs::File::create(src.join("sparse")).unwrap();
        f.write_all(b"start").unwrap();
        f.seek(SeekFrom::Start(100_000)).unwrap();
        f.write_all(b"mid!").unwrap();
        f.set_len(content.len() as u64).unwrap();
    }
    for format in ["--format=gnu", "--format=pax"] {
        let name = format!("sparse{}.tar", &format[9..]);
        gnu_tar(&src, &["-S", format, "-cf", &format!("../{name}"), "sparse"]);
        let bytes = std::fs::read(dir.path().join(&name)).unwrap();
        let mut reader = cnbx_oci::tarread::TarReader::new(&bytes[..], cnbx_oci::tarread::Use::Reencode);
        let first = reader.next_entry();
        if format == "--format=gnu" {
            // An old GNU sparse file ('S'): expanded.
            let first = first.unwrap().unwrap();
            assert_eq!((first.path.as_str(), first.size), ("sparse", content.len() as u64));
            let mut read = Vec::new();
            reader.content().read_to_end(&mut read).unwrap();
            assert!(read == content, "the expanded content differs");
            let mut r = LayerRecipe::new("sparse");
            r.push_archive(ArchiveSource::new(dir.path().join(&name), "as is", |e| Ok(Some(e))).unwrap());
            let info = build_layer(&r, &store, &NullReporter).unwrap();
            let tar = ungzip(&store, &info.descriptor.digest);
            assert!(tar.windows(4).any(|w| w == b"mid!"));
            let mut verbatim = cnbx_oci::tarread::TarReader::new(&bytes[..], cnbx_oci::tarread::Use::Verbatim);
            let err = verbatim.next_entry().unwrap_err().to_string();
            assert!(err.contains("it is a GNU sparse file"), "{err}");
        } else {
            // GNU sparse files in PAX form rename entries: refused, naming the record.
            let err = first.unwrap_err().to_string();
            assert!(err.contains("GNU.sparse."), "{err}");
        }
    }
}
