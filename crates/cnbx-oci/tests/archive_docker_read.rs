//! Reading docker-archives: cnbx's own (gzip layers), skopeo's (`<diffID>.tar` with links),
//! the OCI-flavoured one of Docker 25 (built here the way Docker writes it), and hostile
//! ones, which must be refused leaving nothing in the store.

#![allow(clippy::unwrap_used)]

mod layers_support;

use std::path::{Path, PathBuf};

use cnbx_oci::docker_archive::write_docker_archive;
use cnbx_oci::docker_archive_read::{ArchiveFormat, ArchiveSink, read_docker_archive};
use cnbx_oci::progress::NullReporter;
use cnbx_oci::spec::media_type;
use cnbx_oci::{BlobStore, Digest, LayerCache};
use cnbx_refs::ImageRef;
use layers_support::{amd64, chain, sample_image};

/// A tar of `(name, kind, content)` entries written with the `tar` crate (kind: `f` file,
/// `l` symlink to content, `h` hard link to content, `c` character device).
fn tar_of(entries: &[(&str, char, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, kind, content) in entries {
        // Names and link targets are written raw: the builder would refuse the hostile ones.
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        let (entry_type, data): (_, &[u8]) = match kind {
            'f' => (tar::EntryType::Regular, content),
            'l' | 'h' => {
                h.as_old_mut().linkname[..content.len()].copy_from_slice(content);
                (if *kind == 'l' { tar::EntryType::Symlink } else { tar::EntryType::Link }, &[])
            }
            'c' => (tar::EntryType::Char, &[]),
            _ => unreachable!(),
        };
        h.set_entry_type(entry_type);
        h.set_size(data.len() as u64);
        h.set_cksum();
        b.append(&h, data).unwrap();
    }
    b.into_inner().unwrap()
}

/// The plain tar of each layer of the sample image, with its diffID hex.
fn sample(work: &Path) -> (cnbx_oci::ImageToWrite, Vec<(String, Vec<u8>)>) {
    let store = BlobStore::open(work.join("src")).unwrap();
    let (image, layers) = sample_image(&store, &amd64());
    let tars = layers
        .iter()
        .map(|l| {
            let gz = store.read(&l.descriptor.digest).unwrap();
            let mut tar = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(&gz[..]), &mut tar).unwrap();
            (l.diff_id.hex().to_owned(), tar)
        })
        .collect();
    (image, tars)
}

fn read(work: &Path, file: &Path, name: Option<&str>) -> Result<cnbx_oci::docker_archive_read::ArchiveImage, String> {
    let store = BlobStore::open(work.join("read")).unwrap();
    let cache = LayerCache::open(work.join("cache")).unwrap();
    let sink = ArchiveSink { store: &store, cache: Some(&cache), reporter: &NullReporter };
    let reference = name.map(|n| ImageRef::parse(n).unwrap());
    read_docker_archive(file, reference.as_ref(), sink).map_err(|e| chain(&e))
}

/// Every file under `dir` (temporaries included).
fn files(dir: &Path) -> Vec<PathBuf> {
    walkdir(dir)
}

fn walkdir(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return out };
    for e in entries {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walkdir(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

#[test]
fn cnbx_archives_read_back_to_the_same_blobs() {
    let work = tempfile::tempdir().unwrap();
    let store = BlobStore::open(work.path().join("src")).unwrap();
    let (image, layers) = sample_image(&store, &amd64());
    let file = work.path().join("b.tar");
    write_docker_archive(&file, &[ImageRef::parse("cnbx.test/app:1").unwrap()], std::slice::from_ref(&image)).unwrap();
    let got = read(work.path(), &file, Some("cnbx.test/app:1")).unwrap();
    assert_eq!(got.format, ArchiveFormat::Classic);
    assert_eq!(got.image.config_raw.digest, image.config.digest);
    let blobs: Vec<&Digest> = got.layers.iter().map(|l| &l.descriptor.digest).collect();
    assert_eq!(blobs, layers.iter().map(|l| &l.descriptor.digest).collect::<Vec<_>>());
    assert_eq!(got.image.manifest.value.media_type.as_deref(), Some(media_type::DOCKER_MANIFEST));
    assert_eq!(got.repo_tags, ["cnbx.test/app:1"]);
    let err = read(work.path(), &file, Some("cnbx.test/other:1")).unwrap_err();
    assert!(err.ends_with("it holds no image tagged cnbx.test/other:1 (it has: cnbx.test/app:1)"), "{err}");
}

#[test]
fn skopeo_and_docker_25_layouts_are_read() {
    let work = tempfile::tempdir().unwrap();
    let (image, tars) = sample(work.path());
    let config = &image.config.bytes;
    let cfg_hex = image.config.digest.hex().to_owned();

    // skopeo / Podman: `<diffID>.tar` files, `<id>/layer.tar` links to them.
    let manifest =
        format!(r#"[{{"Config":"{cfg_hex}.json","RepoTags":["x:1"],"Layers":["v1a/layer.tar","v1b/layer.tar"]}}]"#);
    let (a, b) = (format!("{}.tar", tars[0].0), format!("{}.tar", tars[1].0));
    let (la, lb) = (format!("../{a}"), format!("../{b}"));
    let skopeo = tar_of(&[
        (&a, 'f', &tars[0].1),
        (&b, 'f', &tars[1].1),
        (&format!("{cfg_hex}.json"), 'f', config),
        ("v1a/layer.tar", 'l', la.as_bytes()),
        ("v1b/layer.tar", 'l', lb.as_bytes()),
        ("manifest.json", 'f', manifest.as_bytes()),
    ]);
    let file = work.path().join("skopeo.tar");
    std::fs::write(&file, skopeo).unwrap();
    let got = read(work.path(), &file, None).unwrap();
    assert_eq!(
        got.layers.iter().map(|l| l.diff_id.hex().to_owned()).collect::<Vec<_>>(),
        [tars[0].0.clone(), tars[1].0.clone()]
    );
    assert_eq!(got.layers_from_cache, 0);
    // Named by diffID: the second read takes both from the cache.
    assert_eq!(read(work.path(), &file, None).unwrap().layers_from_cache, 2);

    // Docker 25: an OCI layout with manifest.json naming blobs; layers stored uncompressed.
    let blob = |hex: &str| format!("blobs/sha256/{hex}");
    let oci_manifest = format!(
        r#"[{{"Config":"{}","RepoTags":["x:1"],"Layers":["{}","{}"]}}]"#,
        blob(&cfg_hex),
        blob(&tars[0].0),
        blob(&tars[1].0)
    );
    let (b0, b1, bc) = (blob(&tars[0].0), blob(&tars[1].0), blob(&cfg_hex));
    let docker25 = tar_of(&[
        (&b0, 'f', &tars[0].1),
        (&b1, 'f', &tars[1].1),
        (&bc, 'f', config),
        ("index.json", 'f', br#"{"schemaVersion":2,"manifests":[]}"#),
        ("manifest.json", 'f', oci_manifest.as_bytes()),
        ("oci-layout", 'f', br#"{"imageLayoutVersion":"1.0.0"}"#),
    ]);
    let file = work.path().join("docker25.tar");
    std::fs::write(&file, docker25).unwrap();
    let fresh = tempfile::tempdir().unwrap();
    let got = read(fresh.path(), &file, Some("x:1")).unwrap();
    assert_eq!(got.format, ArchiveFormat::Oci);
    assert_eq!(got.image.manifest.value.media_type.as_deref(), Some(media_type::OCI_MANIFEST));
    assert_eq!(got.image.config_raw.digest, image.config.digest);
}

#[test]
fn hostile_archives_are_refused_and_leave_nothing() {
    let work = tempfile::tempdir().unwrap();
    let (image, tars) = sample(work.path());
    let config = &image.config.bytes;
    let cfg = format!("{}.json", image.config.digest.hex());
    let manifest = format!(r#"[{{"Config":"{cfg}","Layers":["a/layer.tar","b/layer.tar"]}}]"#);
    let good = |a: (&str, char, &[u8])| -> Vec<u8> {
        tar_of(&[a, ("b/layer.tar", 'f', &tars[1].1), (&cfg, 'f', config), ("manifest.json", 'f', manifest.as_bytes())])
    };
    let other_blob = format!("blobs/sha256/{}", "0".repeat(64));
    let cases: Vec<(&str, Vec<u8>, String)> = vec![
        (
            "an absolute name",
            good(("/etc/a/layer.tar", 'f', &tars[0].1)),
            "entry '/etc/a/layer.tar' is an absolute path".into(),
        ),
        ("a name climbing out", good(("../a/layer.tar", 'f', &tars[0].1)), "climbs out of the archive".into()),
        (
            "a link out",
            good(("a/layer.tar", 'l', b"../../etc/passwd")),
            "'a/layer.tar' is a link that does not lead to a file of the archive".into(),
        ),
        (
            "an absolute link",
            good(("a/layer.tar", 'l', b"/etc/passwd")),
            "is a link that does not lead to a file".into(),
        ),
        (
            "a link to nothing",
            good(("a/layer.tar", 'l', b"../nothing.tar")),
            "manifest.json names layer 1 'a/layer.tar', which the archive does not hold".into(),
        ),
        ("a device", good(("a/layer.tar", 'c', b"")), "entry 'a/layer.tar' is a character device".into()),
        (
            "another layer",
            good(("a/layer.tar", 'f', &tars[1].1)),
            format!(
                "layer 1 ('a/layer.tar') is not the layer its config names: its content hashes to sha256:{}",
                tars[1].0
            ),
        ),
        ("a blob not its name", tar_of(&[(&other_blob, 'f', b"x")]), "does not hold the blob its name says".into()),
        (
            "no manifest",
            tar_of(&[(&cfg, 'f', config)]),
            "it has no manifest.json, so it is not a docker-archive".into(),
        ),
    ];
    for (what, bytes, want) in cases {
        let file = work.path().join("hostile.tar");
        std::fs::write(&file, bytes).unwrap();
        let err = read(work.path(), &file, None).unwrap_err();
        assert!(err.starts_with(&format!("reading docker-archive:{}: ", file.display())), "{what}: {err}");
        assert!(err.contains(&want), "{what}: {err}");
        let left = files(&work.path().join("read"));
        assert!(left.is_empty(), "{what}: left {left:?}");
        assert!(files(&work.path().join("cache")).is_empty(), "{what}");
    }
}
