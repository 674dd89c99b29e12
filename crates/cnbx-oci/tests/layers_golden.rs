//! Golden diffIDs: test vectors of pack's encoding (docs/pack-compatibility.md, *Tar encoding*), built through the
//! same layer writer `builder create` uses, plus the PAX encoding (read back by the `tar`
//! crate and by GNU tar) and a "same tree → same bytes" property.

#![allow(clippy::unwrap_used)]

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use cnbx_oci::BlobStore;
use cnbx_oci::digest::Digest;
use cnbx_oci::layer::{LayerEntry, LayerInfo, LayerRecipe, build_layer, walk_dir};
use cnbx_oci::progress::NullReporter;
use cnbx_oci::tarball::{EntryKind, NORMALIZED_MTIME, TarEntry, TarTime, TarWriter, clean_path};
use proptest::prelude::*;

const ORDER_TOML: &str =
    "[[order]]\n\n  [[order.group]]\n    id = \"read/env\"\n    version = \"read-env-version\"\n    optional = true\n";

fn build(recipe: &LayerRecipe) -> (LayerInfo, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).unwrap();
    let info = build_layer(recipe, &store, &NullReporter).unwrap();
    let blob = store.read(&info.descriptor.digest).unwrap();
    let mut tar = Vec::new();
    flate2::read::MultiGzDecoder::new(&blob[..]).read_to_end(&mut tar).unwrap();
    assert_eq!(Digest::of(&tar), info.diff_id, "the diffID is the digest of the uncompressed blob");
    assert_eq!(tar.len() as u64, info.uncompressed_size);
    assert_eq!(Digest::of(&blob), info.descriptor.digest);
    (info, tar)
}

fn assert_vector(recipe: &LayerRecipe, size: u64, diff_id: &str) {
    let (info, _) = build(recipe);
    assert_eq!(info.uncompressed_size, size, "{}", recipe.name);
    assert_eq!(info.diff_id.as_str(), diff_id, "{}", recipe.name);
}

fn default_dirs(uid: u64, gid: u64) -> LayerRecipe {
    let mut r = LayerRecipe::new("default dirs");
    r.push_header(TarEntry::dir("/workspace").with_owner(uid, gid));
    r.push_header(TarEntry::dir("/layers").with_owner(uid, gid));
    for d in [
        "/cnb",
        "/cnb/buildpacks",
        "/cnb/extensions",
        "/platform",
        "/platform/env",
        "/cnb/build-config",
        "/cnb/build-config/env",
    ] {
        r.push_header(TarEntry::dir(d));
    }
    r
}

fn single_file(path: &str, content: &str) -> LayerRecipe {
    let mut r = LayerRecipe::new(path);
    r.push_bytes(TarEntry::file(path, 0), content);
    r
}

#[test]
fn default_dirs_cnb_user() {
    assert_vector(
        &default_dirs(1000, 1000),
        5632,
        "sha256:fc454e27c1c60562a35add6e2a13dcd2f674221ec85d4266e85594499abdaac2",
    );
}

#[test]
fn default_dirs_root() {
    assert_vector(&default_dirs(0, 0), 5632, "sha256:1e225527dd29d6f13266701759b2caee8d609fe715de3786f65b0e84dfda4852");
}

#[test]
fn empty_platform_env_layer() {
    assert_vector(
        &LayerRecipe::new("platform env"),
        1024,
        "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef",
    );
}

#[test]
fn order_toml() {
    assert_vector(
        &single_file("/cnb/order.toml", ORDER_TOML),
        2048,
        "sha256:d5d4db0b377ffd48905dfb9423f3f980757843fa27097dd86cd0b9eefb21be4f",
    );
}

#[test]
fn stack_toml() {
    assert_vector(
        &single_file(
            "/cnb/stack.toml",
            "[run-image]\n  image = \"pack-test/run\"\n  mirrors = [\"pack-test/run-mirror\"]\n",
        ),
        2048,
        "sha256:2de257cbe397eef231dc74fd810b1c9cea83368f19be583faf29da2473285fa8",
    );
}

#[test]
fn run_toml() {
    assert_vector(
        &single_file(
            "/cnb/run.toml",
            "[[images]]\n  image = \"pack-test/run\"\n  mirrors = [\"pack-test/run-mirror\"]\n",
        ),
        2048,
        "sha256:394893e480d7df8cec4a7902faf700d2ab854c78122c275a452fd0cd58645521",
    );
}

#[test]
fn build_config_env_layer() {
    let mut r = LayerRecipe::new("build config env");
    r.push_bytes(TarEntry::file("/cnb/build-config/env/FOO.append", 0), "bar");
    r.push_bytes(TarEntry::file("/cnb/build-config/env/FOO.delim", 0), ":");
    assert_vector(&r, 3072, "sha256:7c7eee9728aaae08bac87fe48a5a67204124304a6915f51e35283ba05110d2f9");
}

#[test]
fn whiteout_layer_has_mtime_zero() {
    let mut r = LayerRecipe::new("whiteout");
    r.push_header(TarEntry::file("/cnb/buildpacks/read_env/.wh.read-env-version", 0).with_mtime(0));
    assert_vector(&r, 1536, "sha256:d60779963cf7b8a2092201fb1c98e58c001dd80c34d5f86b4d927cf655eab570");
}

/// pack's module-stream rule (docs/pack-compatibility.md, *Module layers*) for a directory buildpack, applied on top of the walk:
/// two directory entries, then every walked entry renamed under the base, uid/gid 0,
/// empty names, normalised mtime, mode 0755 for directories, `bin/build`, `bin/detect`,
/// `bin/generate` and anything executable, else 0644; hard-link targets rebased.
fn module_stream(root: &Path, escaped_id: &str, version: &str) -> LayerRecipe {
    let mut r = LayerRecipe::new(format!("{escaped_id}@{version}"));
    let id_dir = format!("/cnb/buildpacks/{escaped_id}");
    let base = format!("{id_dir}/{version}");
    r.push_header(TarEntry::dir(&id_dir));
    r.push_header(TarEntry::dir(&base));
    for walked in walk_dir(root) {
        let mut entry = walked.unwrap().into_layer_entry();
        let name = clean_path(&entry.header.path);
        if name == "." || name == "/" {
            continue;
        }
        let h = &mut entry.header;
        let executable = h.mode & 0o111 != 0;
        h.mode = if h.kind == EntryKind::Dir
            || ["bin/build", "bin/detect", "bin/generate"].contains(&name.as_str())
            || executable
        {
            0o755
        } else {
            0o644
        };
        h.path = format!("{base}/{name}");
        if let EntryKind::Hardlink { target } = &h.kind {
            h.kind = EntryKind::Hardlink { target: format!("{base}/{}", clean_path(target)) };
        }
        h.uid = 0;
        h.gid = 0;
        h.uname.clear();
        h.gname.clear();
        h.mtime = TarTime::NORMALIZED;
        r.push(entry);
    }
    r
}

fn write_file(path: &Path, content: &str, mode: u32) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn directory_buildpack_module_stream() {
    let dir = tempfile::tempdir().unwrap();
    let bp = dir.path().join("my-bp");
    write_file(&bp.join("bin/build"), "#!/bin/sh\nexit 0\n", 0o644);
    write_file(&bp.join("bin/detect"), "#!/bin/sh\nexit 0\n", 0o700);
    write_file(
        &bp.join("buildpack.toml"),
        "api = \"0.10\"\n\n[buildpack]\n  id = \"my/bp\"\n  version = \"0.0.1\"\n\n[[targets]]\n  os = \"linux\"\n  arch = \"amd64\"\n",
        0o600,
    );
    let recipe = module_stream(&bp, "my_bp", "0.0.1");
    let names: Vec<_> = recipe
        .parts
        .iter()
        .map(|p| match p {
            cnbx_oci::layer::LayerPart::Entry(e) => e.header.path.clone(),
            cnbx_oci::layer::LayerPart::Archive(_) => unreachable!(),
        })
        .collect();
    assert_eq!(
        names,
        [
            "/cnb/buildpacks/my_bp",
            "/cnb/buildpacks/my_bp/0.0.1",
            "/cnb/buildpacks/my_bp/0.0.1/bin",
            "/cnb/buildpacks/my_bp/0.0.1/bin/build",
            "/cnb/buildpacks/my_bp/0.0.1/bin/detect",
            "/cnb/buildpacks/my_bp/0.0.1/buildpack.toml",
        ]
    );
    assert_vector(&recipe, 5632, "sha256:cf8a58cd1149f915f6fc747dc9c45a54f186622c2e63a3a95aa3d7ec35e6704a");
}

/// The gzip bytes depend on the compressor: this pins libdeflate at level 5 in 1 MiB chunks
/// (`cnbx_oci::gzip`). If it fails, the libdeflate version or the chunking changed.
#[test]
fn gzip_backend_is_pinned() {
    let (info, _) = build(&single_file("/cnb/order.toml", ORDER_TOML));
    assert_eq!(
        info.descriptor.digest.as_str(),
        "sha256:dce79aec1870528b2056173b64f17b816987f4c74209abbf4c4be2c2ce52f2ac",
        "compressed size {}",
        info.descriptor.size
    );
}

fn tar_of(entries: &[(TarEntry, &[u8])]) -> Vec<u8> {
    let mut w = TarWriter::new(Vec::new());
    for (e, d) in entries {
        w.append_bytes(e, d).unwrap();
    }
    w.finish().unwrap()
}

/// Reads an archive back with the `tar` crate: (name, typeflag, size, content).
fn read_back(bytes: &[u8]) -> Vec<(String, u8, u64, Vec<u8>)> {
    let mut ar = tar::Archive::new(bytes);
    ar.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let name = String::from_utf8(e.path_bytes().into_owned()).unwrap();
            let t = e.header().entry_type().as_byte();
            let size = e.size();
            let mut content = Vec::new();
            e.read_to_end(&mut content).unwrap();
            (name, t, size, content)
        })
        .collect()
}

fn gnu_tar_listing(bytes: &[u8]) -> String {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), bytes).unwrap();
    cnbx_testkit::tar_listing(f.path()).unwrap()
}

#[test]
fn unsplittable_long_name_uses_pax() {
    let long = format!("/{}", "n".repeat(199));
    let deep_last = format!("/cnb/buildpacks/x/{}", "f".repeat(150));
    let link_target = format!("/{}", "t".repeat(150));
    let bytes = tar_of(&[
        (TarEntry::file(&long, 5), b"hello"),
        (TarEntry::file(&deep_last, 0), b""),
        (TarEntry::symlink("/cnb/link", &link_target), b""),
    ]);
    // x header + records + header + data, twice-ish, plus the link's x header.
    let back = read_back(&bytes);
    assert_eq!(back.len(), 3, "PAX headers are not separate entries");
    assert_eq!(back[0], (long.clone(), b'0', 5, b"hello".to_vec()));
    assert_eq!(back[1].0, deep_last);
    let mut ar = tar::Archive::new(&bytes[..]);
    let mut entries = ar.entries().unwrap();
    let third = entries.nth(2).unwrap().unwrap();
    assert_eq!(third.link_name_bytes().unwrap().into_owned(), link_target.as_bytes());

    // The x header is named the way Go names it.
    assert_eq!(&bytes[..14], b"/PaxHeaders.0/");
    assert_eq!(bytes[156], b'x');

    let listing = gnu_tar_listing(&bytes);
    assert!(listing.contains(" 0/0 "), "{listing}");
    assert!(listing.contains(&format!("1980-01-01 00:00 {long}\n")), "{listing}");
    assert!(listing.contains(&format!("{deep_last}\n")), "{listing}");
    assert!(listing.contains(&format!("/cnb/link -> {link_target}\n")), "{listing}");
    assert!(!listing.contains("PaxHeaders"), "GNU tar must read the x headers as extensions: {listing}");
}

#[test]
fn non_ascii_name_uses_pax() {
    let name = "/cnb/buildpacks/ünïcödé/日本.txt";
    let bytes = tar_of(&[(TarEntry::file(name, 3), b"abc")]);
    let records = String::from_utf8_lossy(&bytes[512..1024]).into_owned();
    assert!(records.starts_with(&format!("{} path={name}\n", name.len() + 9)), "{records}");
    // The x header's own name is made ASCII; so is the main header's.
    assert_eq!(&bytes[..40], b"/cnb/buildpacks/ncd/PaxHeaders.0/.txt\0\0\0");
    assert_eq!(&bytes[1024..1024 + 25], b"/cnb/buildpacks/ncd/.txt\0");
    assert_eq!(read_back(&bytes), vec![(name.to_owned(), b'0', 3, b"abc".to_vec())]);
    let listing = gnu_tar_listing(&bytes);
    assert!(listing.contains(name), "{listing}");
    assert!(listing.starts_with("-rw-r--r-- 0/0"), "{listing}");
}

#[test]
fn splittable_long_name_stays_ustar() {
    let name = format!("/cnb/buildpacks/{}/{}", "p".repeat(100), "n".repeat(60));
    let bytes = tar_of(&[(TarEntry::dir(&name), b"")]);
    assert_eq!(bytes.len(), 512 + 1024, "no PAX header");
    assert_eq!(read_back(&bytes)[0].0, name);
    assert!(gnu_tar_listing(&bytes).contains(&format!("{name}\n")));
}

/// A small file tree for the determinism property.
fn tree_strategy() -> impl Strategy<Value = Vec<(String, Vec<u8>, bool)>> {
    let component = "[a-zA-Z0-9._-]{1,12}".prop_filter("not . or ..", |c| c != "." && c != "..");
    let path = proptest::collection::vec(component, 1..4).prop_map(|c| c.join("/"));
    proptest::collection::vec((path, proptest::collection::vec(any::<u8>(), 0..2000), any::<bool>()), 1..12)
}

/// Writes the tree (later entries whose path clashes with an existing file or directory
/// are skipped).
fn materialise(root: &Path, tree: &[(String, Vec<u8>, bool)]) {
    for (path, content, exec) in tree {
        let p = root.join(path);
        if p.parent().is_some_and(|d| d.is_file() || (d != root && std::fs::create_dir_all(d).is_err())) {
            continue;
        }
        if p.exists() {
            continue;
        }
        std::fs::write(&p, content).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(if *exec { 0o755 } else { 0o644 })).unwrap();
    }
}

fn layer_bytes(root: &Path) -> (Vec<u8>, Digest) {
    let recipe = module_stream(root, "prop_bp", "1.0.0");
    let (info, tar) = build(&recipe);
    (tar, info.diff_id)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn same_tree_same_bytes(tree in tree_strategy()) {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        materialise(a.path(), &tree);
        // The second copy lives elsewhere, with other inodes and mtimes.
        materialise(b.path(), &tree);
        let (tar_a, id_a) = layer_bytes(a.path());
        let (tar_b, id_b) = layer_bytes(b.path());
        prop_assert_eq!(id_a, id_b);
        prop_assert!(tar_a == tar_b);
        // Every byte reads back: names, sizes and contents.
        for (name, _, size, content) in read_back(&tar_a) {
            prop_assert!(name.starts_with("/cnb/buildpacks/prop_bp"));
            prop_assert_eq!(size as usize, content.len());
        }
    }
}

#[test]
fn normalized_mtime_is_1980() {
    assert_eq!(NORMALIZED_MTIME, 315_532_801);
    let bytes = tar_of(&[(TarEntry::file("/x", 0), b"")]);
    assert!(gnu_tar_listing(&bytes).contains("1980-01-01 00:00 /x"));
    let _ = LayerEntry::new(TarEntry::dir("/d"));
}
