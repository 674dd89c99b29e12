//! Deterministic generators for `testdata/` (see `testdata/README.md`) and the generated
//! documents under `docs/` ([`gen_docs`]).
//!
//! Everything here is produced by cnbx's own layer writer and OCI layout code, with fixed
//! timestamps, owners and modes, so that running the generator twice — or on another
//! machine, from a fresh clone with a different umask — gives byte-identical files. A test
//! (`tests/testdata_is_current.rs`) regenerates into a temporary directory and compares.
#![cfg_attr(not(test), warn(unused_crate_dependencies))]

use std::fs;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use cnbx_oci::config::ImageConfig;
use cnbx_oci::layer::{LayerRecipe, build_layer, walk_dir};
use cnbx_oci::progress::NullReporter;
use cnbx_oci::spec::{Platform, media_type};
use cnbx_oci::store::LocalStore;
use cnbx_oci::tarball::{EntryKind, TarEntry, TarWriter};
use cnbx_oci::{BlobStore, ImageToWrite};
use cnbx_refs::ImageRef;
use flate2::{Compression, GzBuilder};

/// The fixed `created` time pack uses.
pub const CREATED: &str = "1980-01-01T00:00:01Z";

/// Regenerates every generated file of `testdata/` under `out` (which mirrors `testdata/`),
/// reading hand-written sources from `src` (the real `testdata/`).
pub fn generate(src: &Path, out: &Path) -> Result<()> {
    fs::create_dir_all(out.join("buildpacks"))?;
    fs::create_dir_all(out.join("lifecycle"))?;
    write_tgz_of_dir(&src.join("buildpacks/hello-moon"), "", &out.join("buildpacks/hello-moon.tgz"))?;
    write_lifecycle_tgz(&src.join("lifecycle/src"), &out.join("lifecycle/lifecycle-v0.21.0+test.tgz"))?;
    write_base_images(&out.join("cnbx-home/store"))?;
    Ok(())
}

/// Regenerates the generated documents under `docs/` of the repository at `root`:
/// `docs/base-image-rules.md`, from the validator's rule table.
pub fn gen_docs(root: &Path) -> Result<()> {
    let path = root.join("docs/base-image-rules.md");
    cnbx_fs::write_atomic(&path, cnbx_validate::table::markdown().as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

/// pack's mode rule for files it did not create: 0755 for directories and anything with an
/// execute bit, else 0644. Git only records 644/755, and a checkout applies the umask, so
/// the on-disk mode cannot be copied as is.
fn normal_mode(kind: &EntryKind, mode: u32) -> u32 {
    if *kind == EntryKind::Dir || mode & 0o111 != 0 { 0o755 } else { 0o644 }
}

fn gzip_tar(out: &Path, fill: impl FnOnce(&mut TarWriter<Vec<u8>>) -> Result<()>) -> Result<()> {
    let mut tar = TarWriter::new(Vec::new());
    fill(&mut tar)?;
    let tar = tar.finish()?;
    let mut gz = GzBuilder::new().mtime(0).write(Vec::new(), Compression::default());
    gz.write_all(&tar)?;
    let bytes = gz.finish()?;
    fs::write(out, bytes).with_context(|| format!("writing {}", out.display()))
}

/// A `.tgz` of a directory with relative names under `prefix`, normalised owners, modes and times.
fn write_tgz_of_dir(dir: &Path, prefix: &str, out: &Path) -> Result<()> {
    gzip_tar(out, |tar| {
        for entry in walk_dir(dir) {
            let entry = entry?;
            let data = if entry.kind == EntryKind::File { fs::read(&entry.abs_path)? } else { Vec::new() };
            let mut header = TarEntry::new(format!("{prefix}{}", entry.rel_path), entry.kind.clone())
                .with_mode(normal_mode(&entry.kind, entry.mode));
            header.size = data.len() as u64;
            tar.append_bytes(&header, &data)?;
        }
        Ok(())
    })
}

/// A lifecycle release archive: `lifecycle.toml` at the root and the phase binaries under
/// `lifecycle/`, as the upstream `lifecycle-v<V>+linux.<arch>.tgz` files are laid out.
fn write_lifecycle_tgz(dir: &Path, out: &Path) -> Result<()> {
    gzip_tar(out, |tar| {
        let descriptor = fs::read(dir.join("lifecycle.toml"))?;
        tar.append_bytes(&TarEntry::file("lifecycle.toml", descriptor.len() as u64), &descriptor)?;
        tar.append_bytes(&TarEntry::dir("lifecycle"), &[])?;
        for entry in walk_dir(dir) {
            let entry = entry?;
            if entry.kind != EntryKind::File || entry.rel_path == "lifecycle.toml" {
                continue;
            }
            let data = fs::read(&entry.abs_path)?;
            let header = TarEntry::file(format!("lifecycle/{}", entry.rel_path), data.len() as u64).with_mode(0o755);
            tar.append_bytes(&header, &data)?;
        }
        Ok(())
    })
}

/// Which base image to make.
#[derive(Clone, Copy)]
enum Role {
    Build,
    Run,
}

const PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const OS_RELEASE: &str = "PRETTY_NAME=\"cnbx test base (Ubuntu 22.04 stand-in)\"\nNAME=\"Ubuntu\"\nVERSION_ID=\"22.04\"\nVERSION=\"22.04 (Jammy Jellyfish)\"\nID=ubuntu\nID_LIKE=debian\n";

fn rootfs_recipe(role: Role, arch: &str) -> LayerRecipe {
    let uid = match role {
        Role::Build => 1000,
        Role::Run => 1001,
    };
    let mut r = LayerRecipe::new(format!("{}-{arch}-rootfs", role_name(role)));
    let file = |path: &str, content: &str| (TarEntry::file(path, content.len() as u64), content.as_bytes().to_vec());
    r.push_header(TarEntry::dir("/etc"));
    let passwd = format!("root:x:0:0:root:/root:/bin/sh\ncnb:x:{uid}:1000:CNB user:/home/cnb:/bin/sh\n");
    let (h, d) = file("/etc/passwd", &passwd);
    r.push_bytes(h, d);
    let (h, d) = file("/etc/group", "root:x:0:\ncnb:x:1000:\n");
    r.push_bytes(h, d);
    let (h, d) = file("/etc/cnbx-test-arch", &format!("{arch}\n"));
    r.push_bytes(h, d);
    r.push_header(TarEntry::symlink("/etc/os-release", "../usr/lib/os-release"));
    r.push_header(TarEntry::dir("/home"));
    r.push_header(TarEntry::dir("/home/cnb").with_owner(uid, 1000));
    r.push_header(TarEntry::dir("/root").with_mode(0o700));
    r.push_header(TarEntry::dir("/tmp").with_mode(0o1777));
    r.push_header(TarEntry::dir("/usr"));
    r.push_header(TarEntry::dir("/usr/lib"));
    let (h, d) = file("/usr/lib/os-release", OS_RELEASE);
    r.push_bytes(h, d);
    r
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Build => "build",
        Role::Run => "run",
    }
}

fn image_config(role: Role, arch: &str) -> ImageConfig {
    let mut c = ImageConfig::new(&Platform::new("linux", arch, None));
    let (user, env) = match role {
        Role::Build => (
            "1000:1000",
            vec![PATH_ENV, "CNB_USER_ID=1000", "CNB_GROUP_ID=1000", "CNB_STACK_ID=io.buildpacks.stacks.jammy"],
        ),
        Role::Run => ("1001:1000", vec![PATH_ENV, "CNB_USER_ID=1001", "CNB_GROUP_ID=1000"]),
    };
    let mut doc = serde_json::Value::Object(c.as_json().clone());
    doc["config"]["User"] = serde_json::json!(user);
    doc["config"]["Env"] = serde_json::json!(env);
    c = ImageConfig::from_slice(&serde_json::to_vec(&doc).unwrap_or_default()).unwrap_or(c);
    let name = role_name(role);
    let labels: Vec<(&str, String)> = vec![
        ("io.buildpacks.base.description", format!("cnbx offline test {name} image")),
        ("io.buildpacks.base.distro.name", "ubuntu".into()),
        ("io.buildpacks.base.distro.version", "22.04".into()),
        ("io.buildpacks.base.homepage", "https://example.com/cnbx/testdata".into()),
        ("io.buildpacks.base.maintainer", "cnbx maintainers".into()),
        ("io.buildpacks.base.metadata", "{}".into()),
        ("io.buildpacks.base.released", CREATED.into()),
        ("io.buildpacks.stack.id", "io.buildpacks.stacks.jammy".into()),
        ("io.buildpacks.stack.mixins", "[]".into()),
    ];
    for (k, v) in labels {
        c.set_label(k, &v);
    }
    if let Role::Run = role {
        c.set_label("io.buildpacks.base.id", "io.cnbx.test.run.jammy");
        c.set_label("io.buildpacks.rebasable", "true");
    }
    c.set_created(CREATED);
    c
}

/// The names the build image is stored under.
const BUILD_NAMES: &[&str] = &["cnbx.test/build:jammy"];

/// The names the run image is stored under: the run image and, as the same image, the mirror
/// `builder.toml.example` lists, as a registry mirror holds a copy of the run image. With both in
/// the store, `make demo` checks the mirror (same image ID as the run image) offline instead of
/// warning that it cannot be read.
const RUN_NAMES: &[&str] = &["cnbx.test/run:jammy", "mirror.cnbx.test/run:jammy"];

fn write_base_images(store_dir: &Path) -> Result<()> {
    if store_dir.exists() {
        fs::remove_dir_all(store_dir)?;
    }
    let store = LocalStore::open(store_dir)?;
    let blobs: &BlobStore = store.blobs();
    for (role, names) in [(Role::Build, BUILD_NAMES), (Role::Run, RUN_NAMES)] {
        let mut images = Vec::new();
        for arch in ["amd64", "arm64"] {
            let layer = build_layer(&rootfs_recipe(role, arch), blobs, &NullReporter)?;
            let mut config = image_config(role, arch);
            config.push_diff_id(&layer.diff_id);
            config.reset_history(1, CREATED);
            images.push(ImageToWrite {
                manifest_media_type: media_type::OCI_MANIFEST.into(),
                config_media_type: media_type::OCI_CONFIG.into(),
                config: config.to_raw(),
                layers: vec![layer.to_layer_blob(blobs)],
                platform: Platform::new("linux", arch, None),
                annotations: None,
            });
        }
        for name in names {
            store.put(&ImageRef::parse(name)?, &images)?;
        }
    }
    for lock in [cnbx_oci::layout::LOCK_FILE, cnbx_oci::layout::USE_LOCK_FILE] {
        let _ = fs::remove_file(store_dir.join(lock));
    }
    Ok(())
}
