//! Writes stay in the output: an OCI layout (an `oci:` output, or the local store) in which
//! something is a symbolic link (`blobs/`, `blobs/sha256/`, `index.json`, `oci-layout`, a
//! lock file, a blob's name) is refused with an error naming the link, and nothing is
//! written where the link points; no temporary file is left. A docker-archive whose target
//! is a link gets the link replaced, never written through.

#![allow(clippy::unwrap_used)]

mod layers_support;

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use cnbx_oci::docker_archive::write_docker_archive;
use cnbx_oci::image::ImageToWrite;
use cnbx_oci::layout::{LOCK_FILE, OciLayout};
use cnbx_oci::store::LocalStore;
use cnbx_oci::{BlobStore, Digest};
use cnbx_refs::ImageRef;
use layers_support::{amd64, chain, sample_image};

/// Every path under `dir` (links not followed), with a file's bytes' digest or what it is.
fn tree(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return out };
    for entry in entries {
        let path = entry.unwrap().path();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let name = path.strip_prefix(dir).unwrap().display().to_string();
        if meta.is_dir() {
            out.push((name.clone(), "dir".to_owned()));
            out.extend(tree(&path).into_iter().map(|(n, k)| (format!("{name}/{n}"), k)));
        } else if meta.file_type().is_symlink() {
            out.push((name, format!("link {}", std::fs::read_link(&path).unwrap().display())));
        } else {
            out.push((name, Digest::of(&std::fs::read(&path).unwrap()).to_string()));
        }
    }
    out.sort();
    out
}

fn temporaries(dir: &Path) -> Vec<String> {
    tree(dir).into_iter().map(|(n, _)| n).filter(|n| n.rsplit('/').next().unwrap().starts_with(".cnbx-tmp-")).collect()
}

/// The sample image, its layers in a store of its own under `work`.
fn image(work: &Path) -> ImageToWrite {
    let store = BlobStore::open(work.join("build")).unwrap();
    sample_image(&store, &amd64()).0
}

/// A layout at `<work>/out` written once (tag `old`), then changed by `plant`, which may
/// point things at `<work>/elsewhere` (a directory with one file). Writing tag `new` must
/// fail naming `named` (relative to the layout), leave `elsewhere` and the layout as they
/// were, and leave no temporary file.
fn refused(plant: impl FnOnce(&Path, &Path), named: &str) -> String {
    let work = tempfile::tempdir().unwrap();
    let image = image(work.path());
    let out = work.path().join("out");
    OciLayout::create(&out).unwrap().write("old", std::slice::from_ref(&image)).unwrap();
    let elsewhere = work.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::write(elsewhere.join("keep"), b"not cnbx's").unwrap();
    plant(&out, &elsewhere);
    let (layout_before, elsewhere_before) = (tree(&out), tree(&elsewhere));

    let err = OciLayout::create(&out).and_then(|layout| layout.write("new", std::slice::from_ref(&image)));
    let err = chain(&err.unwrap_err());
    assert!(err.contains(&out.join(named).display().to_string()), "the error names {named}: {err}");
    assert_eq!(tree(&elsewhere), elsewhere_before, "nothing written through the link: {err}");
    assert_eq!(tree(&out), layout_before, "the layout is as it was: {err}");
    assert_eq!(temporaries(work.path()), Vec::<String>::new());
    err
}

/// Moves `<out>/<name>` into `elsewhere` and puts a link to it in its place.
fn move_and_link(out: &Path, name: &str, elsewhere: &Path) -> PathBuf {
    let moved = elsewhere.join(Path::new(name).file_name().unwrap());
    std::fs::rename(out.join(name), &moved).unwrap();
    symlink(&moved, out.join(name)).unwrap();
    moved
}

#[test]
fn a_blobs_directory_that_is_a_link_gets_no_blob() {
    let err = refused(
        |out, elsewhere| {
            move_and_link(out, "blobs", elsewhere);
        },
        "blobs",
    );
    assert!(err.contains("is a symbolic link, not a directory"), "{err}");
}

#[test]
fn a_sha256_directory_that_is_a_link_gets_no_blob() {
    let err = refused(
        |out, elsewhere| {
            move_and_link(out, "blobs/sha256", elsewhere);
        },
        "blobs/sha256",
    );
    assert!(err.contains("is a symbolic link, not a directory"), "{err}");
}

#[test]
fn a_sha256_directory_linked_to_an_empty_one_gets_no_blob() {
    // The link points at a directory with nothing in it: every blob would be written there.
    refused(
        |out, elsewhere| {
            std::fs::remove_dir_all(out.join("blobs/sha256")).unwrap();
            symlink(elsewhere, out.join("blobs/sha256")).unwrap();
        },
        "blobs/sha256",
    );
}

#[test]
fn index_json_and_oci_layout_that_are_links_are_refused() {
    let err = refused(
        |out, elsewhere| {
            move_and_link(out, "index.json", elsewhere);
        },
        "index.json",
    );
    assert!(err.contains("is a symbolic link, not a regular file"), "{err}");
    refused(
        |out, elsewhere| {
            move_and_link(out, "oci-layout", elsewhere);
        },
        "oci-layout",
    );
}

#[test]
fn a_lock_file_that_is_a_link_creates_nothing_where_it_points() {
    for lock in [LOCK_FILE, cnbx_oci::layout::USE_LOCK_FILE] {
        let err = refused(
            |out, elsewhere| {
                std::fs::remove_file(out.join(lock)).unwrap();
                symlink(elsewhere.join("created-by-the-lock"), out.join(lock)).unwrap();
            },
            lock,
        );
        assert!(err.contains("is a symbolic link"), "{err}");
    }
}

#[test]
fn a_link_where_a_blob_is_to_be_written_is_refused_not_replaced() {
    let work = tempfile::tempdir().unwrap();
    let image = image(work.path());
    let config = image.config.digest.hex().to_owned();
    let err = refused(
        move |out, elsewhere| {
            // The first write put the config there: a link takes its place.
            let blob = out.join("blobs/sha256").join(&config);
            std::fs::remove_file(&blob).unwrap();
            symlink(elsewhere.join("keep"), blob).unwrap();
        },
        "blobs/sha256",
    );
    assert!(err.contains("is a symbolic link; cnbx never writes through or over one"), "{err}");
}

#[test]
fn the_local_store_refuses_a_planted_link_too() {
    let work = tempfile::tempdir().unwrap();
    let image = image(work.path());
    let store_dir = work.path().join("store");
    LocalStore::open(&store_dir).unwrap();
    let elsewhere = work.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    move_and_link(&store_dir, "blobs", &elsewhere);
    let before = tree(&elsewhere);
    let err = LocalStore::open(&store_dir)
        .and_then(|s| s.put(&ImageRef::parse("cnbx.test/x:1").unwrap(), std::slice::from_ref(&image)))
        .unwrap_err();
    let err = chain(&err);
    assert!(err.contains(&format!("{} is a symbolic link", store_dir.join("blobs").display())), "{err}");
    assert_eq!(tree(&elsewhere), before);
    // Following a link to the store directory itself is fine: the user named that path.
    let linked = work.path().join("linked-store");
    symlink(work.path().join("real-store"), &linked).unwrap();
    std::fs::create_dir(work.path().join("real-store")).unwrap();
    LocalStore::open(&linked).unwrap().put(&ImageRef::parse("cnbx.test/x:1").unwrap(), &[image]).unwrap();
    assert!(work.path().join("real-store/index.json").is_file());
}

/// The directory handles are opened once: replacing `blobs` with a link once the layout is
/// open does not redirect what is written.
#[test]
fn a_layout_open_before_its_blobs_are_swapped_for_a_link_still_writes_into_its_own() {
    let work = tempfile::tempdir().unwrap();
    let image = image(work.path());
    let out = work.path().join("out");
    let layout = OciLayout::create(&out).unwrap();
    let elsewhere = work.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::rename(out.join("blobs"), work.path().join("moved-blobs")).unwrap();
    symlink(&elsewhere, out.join("blobs")).unwrap();
    // The index update opens nothing through the link either; the blobs went where the
    // layout's own directory went.
    layout.write("new", std::slice::from_ref(&image)).unwrap();
    assert!(tree(&elsewhere).is_empty(), "{:?}", tree(&elsewhere));
    assert!(work.path().join("moved-blobs/sha256").join(image.config.digest.hex()).is_file());
}

#[test]
fn a_docker_archive_over_a_link_replaces_the_link() {
    let work = tempfile::tempdir().unwrap();
    let image = image(work.path());
    let target = work.path().join("precious");
    std::fs::write(&target, b"not cnbx's").unwrap();
    let archive = work.path().join("builder.tar");
    symlink(&target, &archive).unwrap();
    write_docker_archive(&archive, &[], std::slice::from_ref(&image)).unwrap();
    assert_eq!(std::fs::read(&target).unwrap(), b"not cnbx's", "nothing written through the link");
    assert!(std::fs::symlink_metadata(&archive).unwrap().is_file(), "the link was replaced by the archive");
    assert_eq!(temporaries(work.path()), Vec::<String>::new());
}
