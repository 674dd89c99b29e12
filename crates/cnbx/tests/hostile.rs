//! Hostile inputs against the real binary: buildpacks, archives and buildpackages that try to
//! write outside their own directory, read host files, poison the store, print secrets, hang
//! or exhaust memory. Every input is generated here (`cnbx_testkit::hostile`). Each refused
//! input must give exit 1 and a message naming what is wrong, and leave nothing behind: no
//! output, `CNBX_HOME` as it was (file for file), and no temporary file.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use cnbx_testkit::hostile::{self, Package, RawEntry, buildpack_entries, gzip, package_layer_entries, tar};
use common::{Env, workspace_root};

/// A builder.toml with one buildpack at `uri` (relative to the work dir), the offline test
/// images and the test lifecycle, plus `extra`.
fn builder_toml(env: &Env, uris: &[&str], extra: &str) -> PathBuf {
    let repo = workspace_root();
    let mut text = String::new();
    for uri in uris {
        text.push_str(&format!("[[buildpacks]]\n  uri = \"{uri}\"\n\n"));
    }
    text.push_str(&format!(
        "[build]\n  image = \"cnbx.test/build:jammy\"\n\n[[run.images]]\n  image = \"cnbx.test/run:jammy\"\n\n\
         [lifecycle]\n  uri = \"{}/testdata/lifecycle/lifecycle-v0.21.0+test.tgz\"\n\n\
         [[targets]]\n  os = \"linux\"\n  arch = \"amd64\"\n\n{extra}",
        repo.display()
    ));
    env.write("builder.toml", &text)
}

/// An environment whose store already holds everything a benign create builds (the lifecycle
/// layer, the default layers, the validation record), so that a refused create must leave it
/// exactly as it is.
fn warm_env() -> Env {
    let env = Env::with_test_images();
    let good = env.work.path().join("good");
    hostile::write_buildpack_dir(&good, "good/bp", "1.0.0").unwrap();
    builder_toml(&env, &["good"], "");
    let out = create(&env, "oci:warm");
    assert!(out.status.success(), "{}", env.format(&out));
    std::fs::remove_dir_all(env.work.path().join("warm")).unwrap();
    env
}

fn create(env: &Env, destination: &str) -> Output {
    create_with(env, destination, &[])
}

fn create_with(env: &Env, destination: &str, vars: &[(&str, &str)]) -> Output {
    env.cmd()
        .envs(vars.iter().copied())
        .args(["builder", "create", destination, "--config", "builder.toml", "--pull-policy", "never"])
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .unwrap()
}

/// Runs a create that must be refused with a message containing every one of `expected`, and
/// checks that nothing was written: no output, the local store as it was, no temporary file.
fn refused(env: &Env, expected: &[&str]) -> String {
    refused_with(env, &[], expected)
}

/// [`refused`], with environment variables set for the create.
fn refused_with(env: &Env, vars: &[(&str, &str)], expected: &[&str]) -> String {
    let store = env.home.path().join("store");
    let before = hostile::tree(&store);
    let out = create_with(env, "oci:out", vars);
    let text = env.format(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    for e in expected {
        assert!(text.contains(e), "expected {e:?} in:\n{text}");
    }
    assert!(!env.work.path().join("out").exists(), "an output was written:\n{text}");
    assert_eq!(hostile::tree(&store), before, "the store changed:\n{text}");
    assert_eq!(hostile::temp_files(env.home.path()), Vec::<String>::new());
    assert_eq!(hostile::temp_files(env.work.path()), Vec::<String>::new());
    text
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// A buildpack directory `name` whose buildpack.toml is `toml`.
fn dir_buildpack(env: &Env, name: &str, toml: &str) {
    let dir = env.work.path().join(name);
    hostile::write_buildpack_dir(&dir, "x/y", "1.0.0").unwrap();
    std::fs::write(dir.join("buildpack.toml"), toml).unwrap();
}

#[test]
fn ids_and_versions_that_are_not_directory_names_are_refused() {
    let env = warm_env();
    dir_buildpack(&env, "bp", &hostile::buildpack_toml("x/y", "../../lifecycle"));
    builder_toml(&env, &["bp"], "");
    refused(&env, &["buildpack 'x/y' has version '../../lifecycle', which cannot be a directory name"]);
    dir_buildpack(&env, "bp", &hostile::buildpack_toml("..", "1.0.0"));
    refused(&env, &["buildpack id '..' cannot be a directory name"]);
    dir_buildpack(&env, "bp", &hostile::buildpack_toml("x_y", "1.0.0"));
    refused(&env, &["buildpack id 'x_y' may contain only letters, digits, '.', '/' and '-'"]);
    dir_buildpack(&env, "bp", &hostile::buildpack_toml("sbom", "1.0.0"));
    refused(&env, &["buildpack id 'sbom' is reserved"]);
}

#[test]
fn archive_entries_that_escape_or_write_through_links_are_refused() {
    let env = warm_env();
    builder_toml(&env, &["bp.tgz"], "");
    let cases: Vec<(Vec<RawEntry>, &str)> = vec![
        (vec![RawEntry::exe("../../../lifecycle/exporter", b"evil")], "its name is not a clean path"),
        (
            vec![RawEntry::exe("/etc/passwd", b"evil")],
            "entry '/etc/passwd': it is outside the buildpack's own directory",
        ),
        (
            vec![RawEntry::symlink("link", "../../../lifecycle"), RawEntry::exe("link/launcher", b"evil")],
            "entry 'link/launcher': it would be written through the symbolic link 'link'",
        ),
        (
            vec![RawEntry::symlink("link", "/etc"), RawEntry::file("link/passwd", b"root::0:0::/:/bin/sh\n")],
            "would be written through the symbolic link",
        ),
        (vec![RawEntry::hardlink("passwd", "../../../../etc/passwd")], "it is a hard link to"),
        (vec![RawEntry::hardlink("shadow", "/etc/shadow")], "it is a hard link to"),
        (vec![RawEntry::file(".wh.other", b"")], "it is a whiteout"),
    ];
    for (extra, message) in cases {
        write(&env.work.path().join("bp.tgz"), &gzip(&tar(&buildpack_entries("x/y", "1.0.0", extra))));
        let text = refused(&env, &[message, "bp.tgz"]);
        assert!(!text.contains("evil"));
    }
}

#[test]
fn descriptors_are_never_read_through_links_nor_quoted() {
    let env = warm_env();
    let secret = env.work.path().join("secret");
    std::fs::write(&secret, "TOKEN=supersecret\n[buildpack]\nid = \"x/y\"\nversion = \"1.0.0\"\n").unwrap();
    let dir = env.work.path().join("bp");
    hostile::write_buildpack_dir(&dir, "x/y", "1.0.0").unwrap();
    std::fs::remove_file(dir.join("buildpack.toml")).unwrap();
    std::os::unix::fs::symlink(&secret, dir.join("buildpack.toml")).unwrap();
    builder_toml(&env, &["bp"], "");
    let text = refused(&env, &["buildpack.toml is a symbolic link, not a regular file"]);
    assert!(!text.contains("supersecret"), "{text}");

    std::fs::remove_file(dir.join("buildpack.toml")).unwrap();
    std::os::unix::fs::symlink("/proc/self/environ", dir.join("buildpack.toml")).unwrap();
    refused(&env, &["buildpack.toml is a symbolic link"]);

    // In an archive, a link named buildpack.toml is not followed either.
    let entries = vec![RawEntry::symlink("buildpack.toml", "/proc/self/environ"), RawEntry::exe("bin/build", b"x")];
    write(&env.work.path().join("bp.tgz"), &gzip(&tar(&entries)));
    builder_toml(&env, &["bp.tgz"], "");
    refused(&env, &["entry 'buildpack.toml' is not a regular file (cnbx does not follow links in archives)"]);

    // A syntax error in a descriptor names the line, never the content.
    std::fs::remove_file(dir.join("buildpack.toml")).unwrap();
    std::fs::write(dir.join("buildpack.toml"), format!("TOKEN=supersecret{}\n", "x".repeat(100_000))).unwrap();
    builder_toml(&env, &["bp"], "");
    let text = refused(&env, &["buildpack.toml of 'bp': line 1, column"]);
    assert!(!text.contains("supersecret") && text.len() < 2000, "{text}");
}

#[test]
fn a_fifo_named_buildpack_toml_does_not_hang() {
    let env = warm_env();
    let dir = env.work.path().join("bp");
    hostile::write_buildpack_dir(&dir, "x/y", "1.0.0").unwrap();
    std::fs::remove_file(dir.join("buildpack.toml")).unwrap();
    let status = std::process::Command::new("mkfifo").arg(dir.join("buildpack.toml")).status().unwrap();
    assert!(status.success());
    builder_toml(&env, &["bp"], "");
    refused(&env, &["buildpack.toml is a FIFO, not a regular file"]);
}

/// What the one buildpack layer of the builder in `layout` holds: `(name, typeflag, mode)`.
fn module_layer_entries(layout: &Path, needle: &str) -> Vec<(String, char, u32)> {
    let index: serde_json::Value = serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let blob = |d: &str| std::fs::read(layout.join("blobs/sha256").join(&d[7..])).unwrap();
    let manifest: serde_json::Value =
        serde_json::from_slice(&blob(index["manifests"][0]["digest"].as_str().unwrap())).unwrap();
    for layer in manifest["layers"].as_array().unwrap() {
        let bytes = blob(layer["digest"].as_str().unwrap());
        let mut tar = tar::Archive::new(flate2::read::MultiGzDecoder::new(&bytes[..]));
        let entries: Vec<(String, char, u32)> = tar
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (e.path().unwrap().display().to_string(), h.entry_type().as_byte() as char, h.mode().unwrap())
            })
            .collect();
        if entries.iter().any(|(n, _, _)| n.contains(needle)) {
            return entries;
        }
    }
    panic!("no layer holds {needle}");
}

#[test]
fn special_files_are_left_out_and_set_id_bits_cleared_with_a_warning() {
    let env = warm_env();
    let extra = vec![
        RawEntry::fifo("bin/fifo"),
        RawEntry::char_device("bin/zero"),
        RawEntry::exe("bin/suid", b"x").mode(0o4755),
        RawEntry::exe("bin/cap", b"x").pax("SCHILY.xattr.security.capability", "\u{1}"),
    ];
    write(&env.work.path().join("bp.tgz"), &gzip(&tar(&buildpack_entries("x/y", "1.0.0", extra))));
    builder_toml(&env, &["bp.tgz"], "");
    let out = create(&env, "oci:out");
    let text = env.format(&out);
    assert!(out.status.success(), "{text}");
    for w in [
        "entry 'bin/fifo': left out: it is a FIFO",
        "entry 'bin/zero': left out: it is a character device",
        "entry 'bin/suid': its setuid/setgid bits were cleared",
        "entry 'bin/cap': its extended attributes were dropped (security.capability)",
    ] {
        assert!(text.contains(w), "expected {w:?} in:\n{text}");
    }
    let entries = module_layer_entries(&env.work.path().join("out"), "x_y");
    assert!(!entries.iter().any(|(n, _, _)| n.ends_with("fifo") || n.ends_with("zero")), "{entries:?}");
    let suid = entries.iter().find(|(n, _, _)| n.ends_with("bin/suid")).unwrap();
    assert_eq!(suid.2 & 0o7777, 0o755);

    // Directories: the same, without a hang on the FIFO.
    let dir = env.work.path().join("dirbp");
    hostile::write_buildpack_dir(&dir, "x/z", "1.0.0").unwrap();
    assert!(std::process::Command::new("mkfifo").arg(dir.join("bin/fifo")).status().unwrap().success());
    std::fs::write(dir.join("bin/suid"), "x").unwrap();
    std::fs::set_permissions(dir.join("bin/suid"), std::os::unix::fs::PermissionsExt::from_mode(0o4755)).unwrap();
    builder_toml(&env, &["dirbp"], "");
    std::fs::remove_dir_all(env.work.path().join("out")).unwrap();
    let out = create(&env, "oci:out");
    let text = env.format(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("'bin/fifo' was left out: it is a FIFO"), "{text}");
    assert!(text.contains("file 'bin/suid': its setuid/setgid bits were cleared"), "{text}");
}

#[test]
fn cnb_packages_are_verified_blob_by_blob() {
    let env = warm_env();
    let layer = tar(&package_layer_entries("x/y", "1.0.0", vec![]));
    let pkg = Package::new("x/y", "1.0.0", &layer, None);
    builder_toml(&env, &["pkg.cnb"], "");
    let cnb = env.work.path().join("pkg.cnb");

    // Sanity: the untampered package is accepted.
    write(&cnb, &tar(&pkg.cnb_entries()));
    let out = create(&env, "oci:ok");
    assert!(out.status.success(), "{}", env.format(&out));
    std::fs::remove_dir_all(env.work.path().join("ok")).unwrap();
    // Its blobs are in the store now; tampered packages must use blobs the store lacks.
    let other = Package::new("x/y", "1.0.0", &[layer.clone(), vec![0; 512]].concat(), None);

    // A blob that is a link to a host file, or to /dev/zero.
    let secret = env.work.path().join("secret");
    std::fs::write(&secret, "host secret").unwrap();
    std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    for target in [secret.to_str().unwrap(), "/dev/zero"] {
        let mut entries = other.cnb_entries();
        let layer_name = format!("blobs/sha256/{}", &hostile::sha256(&other.layer)[7..]);
        for e in &mut entries {
            if e.name == layer_name {
                *e = RawEntry::symlink(&layer_name, target);
            }
        }
        write(&cnb, &tar(&entries));
        refused(&env, &["is not a regular file (links are refused)"]);
    }

    // A blob whose bytes are not its digest: say, a base image layer's digest with other bytes.
    let mut entries = other.cnb_entries();
    let victim = "sha256:0000000000000000000000000000000000000000000000000000000000000001";
    entries.push(RawEntry::file(&format!("blobs/sha256/{}", &victim[7..]), b"attacker bytes"));
    write(&cnb, &tar(&entries));
    refused(&env, &["does not have the content its name says"]);
    assert!(!env.home.path().join("store/blobs/sha256").join(&victim[7..]).exists());

    // An index.json that is not an index: the message quotes an excerpt of it, not all of it.
    let mut entries = other.cnb_entries();
    let long = "A".repeat(100_000);
    for e in &mut entries {
        if e.name == "index.json" {
            *e = RawEntry::file("index.json", format!(r#"{{"schemaVersion":2,"manifests":"{long}"}}"#).as_bytes());
        }
    }
    write(&cnb, &tar(&entries));
    let text = refused(&env, &["index.json is invalid: invalid type: string \"AAAA", "pkg.cnb"]);
    assert!(!text.contains(&"A".repeat(1000)), "{} bytes:\n{}", text.len(), &text[..text.len().min(2000)]);
}

#[test]
fn package_layers_that_write_outside_or_lie_about_their_content_are_refused() {
    let env = warm_env();
    builder_toml(&env, &["pkg.cnb"], "");
    let cnb = env.work.path().join("pkg.cnb");
    let base = |extra: Vec<RawEntry>| tar(&package_layer_entries("x/y", "1.0.0", extra));
    let cases: Vec<(Vec<u8>, Option<&str>, &str)> = vec![
        (
            base(vec![RawEntry::exe("/cnb/lifecycle/launcher", b"evil")]),
            None,
            "entry '/cnb/lifecycle/launcher': it is outside",
        ),
        (base(vec![RawEntry::file("/etc/passwd", b"evil")]), None, "entry '/etc/passwd': it is outside"),
        (
            base(vec![
                RawEntry::symlink("/cnb/buildpacks/x_y/1.0.0/l", "/etc"),
                RawEntry::file("/cnb/buildpacks/x_y/1.0.0/l/passwd", b"evil"),
            ]),
            None,
            "through the symbolic link",
        ),
        (base(vec![RawEntry::file("/cnb/buildpacks/x_y/1.0.0/../../../etc/passwd", b"evil")]), None, "climbs out"),
        (
            base(vec![]),
            Some("sha256:1111111111111111111111111111111111111111111111111111111111111111"),
            "does not hold what the image config says",
        ),
        (base(vec![RawEntry::dir("/cnb/buildpacks/x_y/2.0.0")]), None, "it is outside /cnb/buildpacks/x_y/1.0.0/"),
    ];
    for (layer, diff_id, message) in cases {
        let pkg = Package::new("x/y", "1.0.0", &layer, diff_id);
        write(&cnb, &tar(&pkg.cnb_entries()));
        refused(&env, &[message, "pkg.cnb"]);
    }
    // A package whose label names a buildpack with a version that is no directory name.
    let pkg = Package::new("x/y", "../../lifecycle", &base(vec![]), None);
    write(&cnb, &tar(&pkg.cnb_entries()));
    refused(&env, &["has version '../../lifecycle', which cannot be a directory name"]);
}

#[test]
fn archives_are_bounded() {
    let env = warm_env();
    builder_toml(&env, &["bp.tgz"], "");
    let many: Vec<RawEntry> = (0..300).map(|i| RawEntry::file(&format!("f{i}"), b"")).collect();
    write(&env.work.path().join("bp.tgz"), &gzip(&tar(&buildpack_entries("x/y", "1.0.0", many))));
    refused_with(
        &env,
        &[("CNBX_MAX_ARCHIVE_ENTRIES", "100")],
        &["it has more than 100 entries; if it is genuine, raise the limit with CNBX_MAX_ARCHIVE_ENTRIES"],
    );

    // 64 MiB of zeros in a small gzip stream, over a 16 MiB limit.
    let big = vec![RawEntry::file("big", &vec![0u8; 64 << 20])];
    write(&env.work.path().join("bp.tgz"), &gzip(&tar(&buildpack_entries("x/y", "1.0.0", big))));
    refused_with(&env, &[("CNBX_MAX_UNPACKED_SIZE", "16M")], &["it unpacks to more than 16777216 bytes"]);

    // A "long name" of 3 MiB is refused before it is held in memory.
    let long = RawEntry::file("x", b"").pax("comment", &"c".repeat(3 << 20));
    write(&env.work.path().join("bp.tgz"), &gzip(&tar(&buildpack_entries("x/y", "1.0.0", vec![long]))));
    refused(&env, &["an entry's headers (long names or PAX records) are larger than"]);
}

#[test]
fn composite_cycles_and_duplicate_ids_are_refused() {
    let env = warm_env();
    for (name, id, refs) in [("a", "cyc/a", "cyc/b"), ("b", "cyc/b", "cyc/a")] {
        let dir = env.work.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("buildpack.toml"),
            format!(
                "api = \"0.10\"\n[buildpack]\nid = \"{id}\"\nversion = \"1\"\n[[order]]\n[[order.group]]\nid = \"{refs}\"\nversion = \"1\"\n"
            ),
        )
        .unwrap();
    }
    builder_toml(&env, &["a", "b"], "");
    refused(&env, &["composite buildpack order has a cycle: cyc/a@1 -> cyc/b@1 -> cyc/a@1"]);

    let one = env.work.path().join("one");
    let two = env.work.path().join("two");
    hostile::write_buildpack_dir(&one, "dup/bp", "1.0.0").unwrap();
    hostile::write_buildpack_dir(&two, "dup/bp", "1.0.0").unwrap();
    std::fs::write(two.join("bin/build"), "#!/bin/sh\necho different\n").unwrap();
    // Each alone is fine (and leaves its layer in the store, which the refused create below
    // must then not change).
    for uri in ["one", "two"] {
        builder_toml(&env, &[uri], "");
        let out = create(&env, &format!("oci:alone-{uri}"));
        assert!(out.status.success(), "{}", env.format(&out));
    }
    builder_toml(&env, &["one", "two"], "");
    refused(&env, &["two different buildpacks are both 'dup/bp@1.0.0': one from 'one'", "one from 'two'"]);
    // The same buildpack from two places is fine.
    std::fs::write(two.join("bin/build"), hostile::SCRIPT).unwrap();
    let out = create(&env, "oci:out");
    assert!(out.status.success(), "{}", env.format(&out));
}

#[test]
fn a_file_swapped_for_a_link_during_create_is_never_read_through_it() {
    let env = warm_env();
    let secret = env.work.path().join("secret");
    std::fs::write(&secret, "HOST-SECRET-CONTENT").unwrap();
    let dir = env.work.path().join("bp");
    hostile::write_buildpack_dir(&dir, "x/y", "1.0.0").unwrap();
    let payload = dir.join("payload");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let swapper = {
        let (payload, secret, stop) = (payload.clone(), secret.clone(), std::sync::Arc::clone(&stop));
        // Staged outside the buildpack, renamed in atomically: the walk sees a file or a link.
        let staging = env.work.path().join("staging");
        std::fs::create_dir_all(&staging).unwrap();
        std::thread::spawn(move || {
            let (file, link) = (staging.join("file"), staging.join("link"));
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = std::fs::remove_file(&file);
                let _ = std::fs::write(&file, "harmless payload");
                let _ = std::fs::rename(&file, &payload);
                let _ = std::fs::remove_file(&link);
                let _ = std::os::unix::fs::symlink(&secret, &link);
                let _ = std::fs::rename(&link, &payload);
            }
        })
    };
    builder_toml(&env, &["bp"], "");
    let (mut ok, mut refused_runs) = (0, 0);
    for i in 0..25 {
        let dest = format!("out{i}");
        let out = create(&env, &format!("oci:{dest}"));
        let text = env.format(&out);
        if out.status.success() {
            ok += 1;
            // Whatever was packed, it is never the host file.
            let blobs = env.work.path().join(&dest).join("blobs/sha256");
            for b in std::fs::read_dir(&blobs).unwrap() {
                let bytes = std::fs::read(b.unwrap().path()).unwrap();
                let mut plain = Vec::new();
                let _ = std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(&bytes[..]), &mut plain);
                assert!(!String::from_utf8_lossy(&plain).contains("HOST-SECRET"), "run {i} packed the host file");
            }
        } else {
            refused_runs += 1;
            assert!(text.contains("changed while cnbx was reading it"), "{text}");
        }
        // The layer cache must not have kept a layer built from the swapped file.
        let _ = std::fs::remove_dir_all(env.home.path().join("cache/layers"));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    swapper.join().unwrap();
    assert_eq!(ok + refused_runs, 25);
}

#[test]
fn package_images_from_a_registry_are_checked_like_files() {
    let env = warm_env();
    let registry = cnbx_testkit::Registry::start().unwrap();
    let layer = tar(&package_layer_entries("x/y", "1.0.0", vec![RawEntry::exe("/cnb/lifecycle/launcher", b"evil")]));
    let layout = env.work.path().join("pkg-layout");
    Package::new("x/y", "1.0.0", &layer, None).write_layout(&layout).unwrap();
    let flags = registry.skopeo_flags();
    let dest = registry.docker_ref("hostile/pkg:1");
    let src = format!("oci:{}:latest", layout.display());
    let mut args: Vec<&str> = vec!["copy"];
    args.extend(flags.iter().map(String::as_str));
    args.extend([src.as_str(), dest.as_str()]);
    cnbx_testkit::skopeo(&args).unwrap();
    let uri = registry.docker_ref("hostile/pkg:1");
    builder_toml(&env, &[&uri], "");
    let before = hostile::tree(&env.home.path().join("store"));
    let out = env
        .cmd()
        .args(["builder", "create", "oci:out", "--config", "builder.toml", "--pull-policy", "if-not-present"])
        .output()
        .unwrap();
    let text = env.format(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("entry '/cnb/lifecycle/launcher': it is outside /cnb/buildpacks/x_y/1.0.0/"), "{text}");
    assert!(!env.work.path().join("out").exists());
    assert_eq!(hostile::temp_files(env.home.path()), Vec::<String>::new());
    // What was pulled is recorded under its verified digests only; the store index is as it was.
    let after = hostile::tree(&env.home.path().join("store"));
    let index = |t: &[(String, u64)]| t.iter().find(|(p, _)| p == "index.json").cloned();
    assert_eq!(index(&after), index(&before));
}

#[test]
fn lifecycle_archives_are_confined_too() {
    let env = warm_env();
    let lifecycle_toml = std::fs::read(workspace_root().join("testdata/lifecycle/src/lifecycle.toml")).unwrap();
    let mut entries = vec![RawEntry::file("lifecycle.toml", &lifecycle_toml), RawEntry::dir("lifecycle")];
    for bin in ["detector", "restorer", "analyzer", "builder", "exporter", "launcher", "creator"] {
        entries.push(RawEntry::exe(&format!("lifecycle/{bin}"), hostile::SCRIPT));
    }
    let good = env.work.path().join("good");
    let with = |extra: Vec<RawEntry>| {
        let mut e = entries.clone();
        e.extend(extra);
        gzip(&tar(&e))
    };
    let toml = |env: &Env| {
        let repo = workspace_root();
        let text = std::fs::read_to_string(env.work.path().join("builder.toml")).unwrap();
        let text =
            text.replace(&format!("{}/testdata/lifecycle/lifecycle-v0.21.0+test.tgz", repo.display()), "lifecycle.tgz");
        std::fs::write(env.work.path().join("builder.toml"), text).unwrap();
    };
    assert!(good.exists());
    builder_toml(&env, &["good"], "");
    toml(&env);
    write(&env.work.path().join("lifecycle.tgz"), &with(vec![RawEntry::hardlink("lifecycle/shadow", "/etc/shadow")]));
    refused(&env, &["lifecycle archive", "it is a hard link to '/etc/shadow'"]);
    write(&env.work.path().join("lifecycle.tgz"), &with(vec![RawEntry::exe("lifecycle/su", b"x").mode(0o4755)]));
    let out = create(&env, "oci:out");
    let text = env.format(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("entry 'lifecycle/su': its setuid/setgid bits were cleared"), "{text}");
    let entries = module_layer_entries(&env.work.path().join("out"), "/cnb/lifecycle/su");
    let su = entries.iter().find(|(n, _, _)| n.ends_with("/cnb/lifecycle/su")).unwrap();
    assert_eq!(su.2 & 0o7777, 0o755);
}

#[test]
fn an_archive_of_many_entries_is_read_in_bounded_memory_and_its_scan_stays_small() {
    let env = warm_env();
    builder_toml(&env, &["bp.tgz"], "");
    // 100,000 entries with 99-character names: ~50 MiB of tar, well under 1 MiB gzipped.
    let many: Vec<RawEntry> = (0..100_000).map(|i| RawEntry::file(&format!("d/{i:0>97}"), b"")).collect();
    write(&env.work.path().join("bp.tgz"), &gzip(&tar(&buildpack_entries("x/y", "1.0.0", many))));
    let cnbx = assert_cmd::cargo::cargo_bin("cnbx");
    // At most 1 GiB of address space (the reported blow-up took 3.1 GiB).
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -v 1048576 && exec '{}' builder create oci:out --config builder.toml --pull-policy never",
            cnbx.display()
        ))
        .envs(env.vars())
        .current_dir(env.work.path())
        .output()
        .unwrap();
    let text = env.format(&out);
    assert!(out.status.success(), "{text}");
    let scans: u64 = hostile::tree(&env.home.path().join("cache/scans")).iter().map(|(_, size)| size).sum();
    assert!(scans < 64 * 1024, "the archive scans take {scans} bytes");
}

/// Runs a create that must be refused because of `layer`'s package (see [`refused`]); when
/// it is not, unpacks the builder with umoci and says where the package's bytes went, so that
/// a failure shows the attack working.
fn refused_or_show_where_it_lands(env: &Env, writes: &str, expected: &[&str]) {
    let out = create(env, "oci:out");
    if out.status.success() {
        let rootfs =
            cnbx_testkit::umoci_unpack(&env.work.path().join("out"), "latest", &env.work.path().join("bundle"))
                .unwrap();
        let landed = std::fs::read(rootfs.join(writes)).unwrap_or_default();
        panic!(
            "the create succeeded; umoci unpacks the builder with {:?} at /{writes}\n{}",
            String::from_utf8_lossy(&landed),
            env.format(&out)
        );
    }
    refused(env, expected);
}

/// Each layer of `hostile::go_divergent_layers` unpacks with Go's reader (umoci) so that the
/// package's bytes land at `/etc/passwd` or `/cnb/lifecycle/launcher`; cnbx refuses it, naming
/// the package, the layer and what is ambiguous, so they never get into a builder.
#[test]
fn package_layers_that_go_reads_otherwise_are_refused() {
    let env = warm_env();
    builder_toml(&env, &["pkg.cnb"], "");
    let messages = [
        "it has two 'path' records, '/cnb/buildpacks/x_y/1.0.0/ok' and '/etc/passwd'",
        "it has two 'size' records, '1536' and '7'",
        "it has the PAX record 'GNU.sparse.",
        "its GNU long name '/cnb/buildpacks/x_y/1.0.0/lib\\u{0}/xxx' has a NUL byte inside it",
    ];
    let attacks = hostile::go_divergent_layers();
    assert_eq!(attacks.len(), messages.len());
    for (attack, message) in attacks.iter().zip(messages) {
        let pkg = Package::new("x/y", "1.0.0", &attack.layer, None);
        // What Go makes of the package's layer.
        let layout = env.work.path().join("as-go-reads-it");
        let _ = std::fs::remove_dir_all(&layout);
        let bundle = env.work.path().join("as-go-unpacks-it");
        let _ = std::fs::remove_dir_all(&bundle);
        pkg.write_layout(&layout).unwrap();
        let rootfs = cnbx_testkit::umoci_unpack(&layout, "latest", &bundle).unwrap();
        assert_eq!(std::fs::read(rootfs.join(attack.writes)).unwrap(), b"evil", "{}", attack.name);
        std::fs::remove_dir_all(&layout).unwrap();
        std::fs::remove_dir_all(&bundle).unwrap();

        write(&env.work.path().join("pkg.cnb"), &tar(&pkg.cnb_entries()));
        let layer = hostile::sha256(&attack.layer);
        // What a cnbx with the first scan remembered about this layer is not trusted.
        let stale_key =
            format!("package-layer v1\n{}\n{layer}\n/cnb/buildpacks\nx/y\n1.0.0", hostile::sha256(&pkg.layer));
        let stale = env
            .home
            .path()
            .join("cache/layer-scans")
            .join(format!("{}.json", &hostile::sha256(stale_key.as_bytes())[7..]));
        write(&stale, b"\"Verbatim\"");
        refused_or_show_where_it_lands(
            &env,
            attack.writes,
            &[message, &format!("package 'pkg.cnb': reading layer {layer}"), "(header at byte "],
        );
    }
}

/// The same layers in package images on a registry.
#[test]
fn registry_package_layers_that_go_reads_otherwise_are_refused() {
    let env = warm_env();
    let registry = cnbx_testkit::Registry::start().unwrap();
    let flags = registry.skopeo_flags();
    for (i, attack) in hostile::go_divergent_layers().iter().enumerate() {
        let layout = env.work.path().join(format!("pkg-{i}"));
        Package::new("x/y", "1.0.0", &attack.layer, None).write_layout(&layout).unwrap();
        let dest = registry.docker_ref(&format!("hostile/go-{i}:1"));
        let src = format!("oci:{}:latest", layout.display());
        let mut args: Vec<&str> = vec!["copy"];
        args.extend(flags.iter().map(String::as_str));
        args.extend([src.as_str(), dest.as_str()]);
        cnbx_testkit::skopeo(&args).unwrap();
        builder_toml(&env, &[&dest], "");
        let out = env
            .cmd()
            .args(["builder", "create", "oci:out", "--config", "builder.toml", "--pull-policy", "if-not-present"])
            .output()
            .unwrap();
        let text = env.format(&out);
        assert_eq!(out.status.code(), Some(1), "{}: {text}", attack.name);
        let layer = hostile::sha256(&attack.layer);
        assert!(text.contains(&format!("reading layer {layer}")), "{text}");
        assert!(!env.work.path().join("out").exists(), "{text}");
        assert_eq!(hostile::temp_files(env.home.path()), Vec::<String>::new());
    }
}

/// Several registry packages are downloaded and scanned at once; what is said about them
/// (warnings about mended layers, and which refused package the error names) follows
/// builder.toml's order, not the order the downloads end in, and a refused package leaves
/// nothing behind while the others are in flight.
#[test]
fn packages_fetched_together_are_reported_in_builder_toml_order() {
    let env = warm_env();
    let registry = cnbx_testkit::Registry::start().unwrap();
    let flags = registry.skopeo_flags();
    let push = |name: &str, id: &str, extra: Vec<RawEntry>, filler: usize| -> String {
        // The packages differ in size, so that their downloads and scans end in another order.
        let dir = format!("/cnb/buildpacks/{}/1.0.0", id.replace('/', "_"));
        let mut entries = extra;
        entries.push(RawEntry::file(&format!("{dir}/filler"), &vec![b'x'; filler]));
        let layer = tar(&package_layer_entries(id, "1.0.0", entries));
        let layout = env.work.path().join(name);
        Package::new(id, "1.0.0", &layer, None).write_layout(&layout).unwrap();
        let dest = registry.docker_ref(&format!("order/{name}:1"));
        let src = format!("oci:{}:latest", layout.display());
        let mut args: Vec<&str> = vec!["copy"];
        args.extend(flags.iter().map(String::as_str));
        args.extend([src.as_str(), dest.as_str()]);
        cnbx_testkit::skopeo(&args).unwrap();
        dest
    };
    let suid = |i: usize| vec![RawEntry::exe(&format!("/cnb/buildpacks/x_p{i}/1.0.0/bin/suid"), b"x").mode(0o4755)];
    // Largest first: the first listed ends last.
    let uris: Vec<String> =
        (0..6).map(|i| push(&format!("p{i}"), &format!("x/p{i}"), suid(i), (6 - i) << 20)).collect();
    let refs: Vec<&str> = uris.iter().map(String::as_str).collect();
    builder_toml(&env, &refs, "");
    let create_pulling = |dest: &str| {
        env.cmd()
            .args(["builder", "create", dest, "--config", "builder.toml", "--pull-policy", "if-not-present"])
            .timeout(std::time::Duration::from_secs(120))
            .output()
            .unwrap()
    };
    let out = create_pulling("oci:out");
    let text = env.format(&out);
    assert!(out.status.success(), "{text}");
    let at: Vec<usize> = (0..6)
        .map(|i| {
            let said = format!("buildpack 'x/p{i}@1.0.0': entry ");
            text.find(&said).unwrap_or_else(|| panic!("no warning about x/p{i} in:\n{text}"))
        })
        .collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "warnings out of builder.toml's order: {at:?}\n{text}");

    // Two refused packages, the first listed being the slowest: the error names it.
    let outside = |id: &str| vec![RawEntry::exe("/cnb/lifecycle/launcher", id.as_bytes())];
    let bad_first = push("bad-first", "x/bad1", outside("x/bad1"), 8 << 20);
    let bad_last = push("bad-last", "x/bad2", outside("x/bad2"), 0);
    let refs = [refs[0], bad_first.as_str(), refs[1], refs[2], bad_last.as_str()];
    builder_toml(&env, &refs, "");
    let out = create_pulling("oci:refused");
    let text = env.format(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("it is outside /cnb/buildpacks/x_bad1/1.0.0/"), "{text}");
    assert!(!text.contains("x_bad2"), "{text}");
    assert!(!env.work.path().join("refused").exists(), "{text}");
    assert_eq!(hostile::temp_files(env.home.path()), Vec::<String>::new());
}
