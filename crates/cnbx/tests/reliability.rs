//! Reliability of the local side, against the real binary: corrupt blobs in the store are
//! never used (evicted, rebuilt or downloaded again, with a warning), failing creates leave no
//! temporary file, a full disk leaves an `oci:` output as it was, concurrent creates into one
//! store or one layout (with a prune among them) all land intact, and `cnbx store verify` /
//! `cnbx store prune` find and remove what is bad or unused.

#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod common;
mod reliability_support;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use common::{Env, assert_ok, printed_digest, stderr, stdout};
use reliability_support::{big_builder, layout_problems, layout_tags, store_verify, temporaries, wait_bounded};
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(300);

fn create(env: &Env, args: &[&str]) -> Output {
    env.cmd().args(["builder", "create"]).args(args).timeout(TIMEOUT).output().unwrap()
}

fn tools() -> bool {
    cnbx_testkit::require_tool("skopeo", "skopeo").is_ok()
}

/// The layers the layer cache points at, largest first: (digest hex, size).
fn cached_layers(env: &Env) -> Vec<(String, u64)> {
    let mut layers: Vec<(String, u64)> = std::fs::read_dir(env.home.path().join("cache/layers"))
        .unwrap()
        .filter_map(Result::ok)
        .filter_map(|e| serde_json::from_slice::<Value>(&std::fs::read(e.path()).ok()?).ok())
        .map(|v| (v["digest"].as_str().unwrap().trim_start_matches("sha256:").to_owned(), v["size"].as_u64().unwrap()))
        .collect();
    layers.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    layers.dedup();
    layers
}

/// Flips 4 bytes in the middle of a file, keeping its size.
fn flip_bytes(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    assert!(bytes.len() > 16, "{} is too small to corrupt", path.display());
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 4] {
        *b = !*b;
    }
    std::fs::write(path, bytes).unwrap();
}

fn store_blob(env: &Env, hex: &str) -> PathBuf {
    env.home.path().join("store/blobs/sha256").join(hex)
}

#[test]
fn a_corrupt_cached_layer_is_evicted_and_rebuilt_never_written() {
    if !tools() {
        return;
    }
    let env = Env::with_test_images();
    let config = big_builder(&env, 2, &[2], "");
    let cfg = config.to_str().unwrap();
    let args = |dest: &'static str| [dest, "--config", cfg, "--pull-policy", "never"];

    let first = create(&env, &args("cnbx.test/corrupt:1"));
    assert_ok(&env, &first);
    let digest = printed_digest(&first);
    let (hex, _) = cached_layers(&env).into_iter().next().unwrap();

    // Same size, other bytes: a warm create into an oci: layout rebuilds it and says so.
    flip_bytes(&store_blob(&env, &hex));
    let warm = create(&env, &args("oci:out:latest"));
    assert_ok(&env, &warm);
    assert_eq!(printed_digest(&warm), digest);
    let warnings = stderr(&warm);
    assert!(warnings.contains(&format!("blob sha256:{hex}")) && warnings.contains("corrupt"), "{warnings}");
    assert_eq!(warnings.matches(&hex).count(), 1, "warned once: {warnings}");
    let out = env.work.path().join("out");
    assert!(layout_problems(&out).is_empty(), "{:?}", layout_problems(&out));
    let copy = env.work.path().join("copy");
    cnbx_testkit::skopeo(&[
        "copy",
        &format!("oci:{}:latest", out.display()),
        &format!("oci:{}:latest", copy.display()),
    ])
    .unwrap();

    // A docker-archive checks the layers as it writes them too: the corrupt one is found
    // there, evicted, rebuilt and written as it should be.
    flip_bytes(&store_blob(&env, &hex));
    let archive = create(&env, &args("docker-archive:out.tar"));
    assert_ok(&env, &archive);
    assert_eq!(stderr(&archive).matches(&hex).count(), 1, "warned once: {}", env.format(&archive));
    let tar = env.work.path().join("out.tar");
    cnbx_testkit::skopeo(&[
        "copy",
        &format!("docker-archive:{}", tar.display()),
        &format!("oci:{}:from-archive", copy.display()),
    ])
    .unwrap();

    // Into the store, where nothing is copied: the same.
    flip_bytes(&store_blob(&env, &hex));
    let again = create(&env, &args("cnbx.test/corrupt:1"));
    assert_ok(&env, &again);
    assert_eq!(printed_digest(&again), digest);
    assert!(stderr(&again).contains(&format!("blob sha256:{hex}")), "{}", env.format(&again));
    let verify = store_verify(&env, false);
    assert_ok(&env, &verify);
    assert!(layout_problems(&env.home.path().join("store")).is_empty());
}

#[test]
fn a_corrupt_layer_of_a_stored_base_image_is_downloaded_again() {
    if !tools() || cnbx_testkit::require_tool("docker-registry", "docker-registry").is_err() {
        return;
    }
    let registry = cnbx_testkit::Registry::start().unwrap();
    common::push_base_images(&registry);
    let env = Env::new();
    let config = common::registry_config(&env, &registry.host());
    let cfg = config.to_str().unwrap();
    let first = create(&env, &["oci:out:latest", "--config", cfg, "--target", "linux/amd64"]);
    assert_ok(&env, &first);

    // The build image's first layer, as recorded in the store.
    let index: Value =
        serde_json::from_slice(&std::fs::read(env.home.path().join("store/index.json")).unwrap()).unwrap();
    let entry = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"].as_str().unwrap().ends_with("/build:jammy"))
        .unwrap();
    let hex = |v: &Value| v["digest"].as_str().unwrap().trim_start_matches("sha256:").to_owned();
    let read = |h: &str| serde_json::from_slice::<Value>(&std::fs::read(store_blob(&env, h)).unwrap()).unwrap();
    let mut doc = read(&hex(entry));
    if doc["manifests"].is_array() {
        doc = read(&hex(&doc["manifests"][0]));
    }
    let layer = hex(&doc["layers"][0]);
    flip_bytes(&store_blob(&env, &layer));

    let second = create(&env, &["oci:out2:latest", "--config", cfg, "--target", "linux/amd64"]);
    assert_ok(&env, &second);
    assert_eq!(printed_digest(&second), printed_digest(&first));
    assert!(stderr(&second).contains(&format!("blob sha256:{layer}")), "{}", env.format(&second));
    assert!(layout_problems(&env.home.path().join("store")).is_empty());
    assert!(layout_problems(&env.work.path().join("out2")).is_empty());
}

#[test]
fn failing_creates_leave_no_temporary_files() {
    let env = Env::with_test_images();
    // A lifecycle layer big enough to still be building (in parallel) when the create fails.
    let good = big_builder(&env, 24, &[], "");
    let good_text = std::fs::read_to_string(&good).unwrap();
    let bad_descriptor = env.work.path().join("bad-bp");
    std::fs::create_dir_all(&bad_descriptor).unwrap();
    std::fs::write(bad_descriptor.join("buildpack.toml"), "api = \"0.10\"\n[buildpack]\nid = \n").unwrap();
    let cases = [
        ("an unknown URI scheme", "[[buildpacks]]\n  uri = \"nope://example.com/bp.tgz\"\n".to_owned()),
        ("a bad descriptor", format!("[[buildpacks]]\n  uri = \"{}\"\n", bad_descriptor.display())),
    ];
    for (what, extra) in &cases {
        let config = env.write("failing.toml", &format!("{extra}\n{good_text}"));
        for dest in ["cnbx.test/failing:1", "oci:failing-out:latest"] {
            for _ in 0..2 {
                let out = create(&env, &[dest, "--config", config.to_str().unwrap(), "--pull-policy", "never"]);
                assert_eq!(out.status.code(), Some(1), "{what}: {}", env.format(&out));
                let left = temporaries(env.home.path());
                assert!(left.is_empty(), "{what} into {dest}: left {left:?}");
                assert!(!env.work.path().join("failing-out").exists(), "{what}: the new layout is removed");
            }
        }
    }
    let verify = store_verify(&env, false);
    assert_ok(&env, &verify);
}

#[test]
fn verify_reports_and_repair_removes_what_is_bad() {
    let env = Env::with_test_images();
    let config = common::example_config(&env, "");
    let cfg = config.to_str().unwrap();
    let out = create(&env, &["cnbx.test/kept:1", "--config", cfg, "--pull-policy", "never"]);
    assert_ok(&env, &out);
    let clean = store_verify(&env, false);
    assert_ok(&env, &clean);
    assert!(stderr(&clean).contains("No problems found"), "{}", env.format(&clean));

    let (hex, _) = cached_layers(&env).into_iter().next().unwrap();
    flip_bytes(&store_blob(&env, &hex));
    std::fs::write(env.home.path().join("store/blobs/.cnbx-tmp-left"), b"left by a killed cnbx").unwrap();
    std::fs::write(env.home.path().join("cache/layers/0000.json"), b"{not json").unwrap();
    let found = store_verify(&env, false);
    assert_eq!(found.status.code(), Some(1), "{}", env.format(&found));
    let report = stdout(&found);
    assert!(report.contains(&format!("blob sha256:{hex} is corrupt")), "{report}");
    assert!(report.contains("image 'cnbx.test/kept:1'"), "{report}");
    assert!(report.contains(".cnbx-tmp-left is a temporary file"), "{report}");
    assert!(report.contains("0000.json: cannot be read"), "{report}");
    assert!(stderr(&found).contains("run 'cnbx store verify --repair'"), "{}", env.format(&found));
    assert!(store_blob(&env, &hex).exists(), "verify alone changes nothing");

    let repaired = store_verify(&env, true);
    assert_ok(&env, &repaired);
    assert!(stdout(&repaired).contains("(removed"), "{}", env.format(&repaired));
    assert!(!store_blob(&env, &hex).exists());
    let after = store_verify(&env, false);
    assert_ok(&env, &after);
    assert!(stderr(&after).contains("No problems found"), "{}", env.format(&after));
    assert!(layout_problems(&env.home.path().join("store")).is_empty());
    // The builder whose layer was bad is gone from the store; creating it again works.
    let again = create(&env, &["cnbx.test/kept:1", "--config", cfg, "--pull-policy", "never"]);
    assert_ok(&env, &again);
    assert_eq!(printed_digest(&again), printed_digest(&out));
}

#[test]
fn prune_removes_what_no_stored_image_uses_and_reports_it() {
    let env = Env::with_test_images();
    let config = common::example_config(&env, "");
    let cfg = config.to_str().unwrap();
    let args = |dest: &'static str| [dest, "--config", cfg, "--pull-policy", "never", "--target", "linux/amd64"];
    let kept = create(&env, &args("cnbx.test/kept:1"));
    assert_ok(&env, &kept);
    let elsewhere = create(&env, &args("oci:out:latest"));
    assert_ok(&env, &elsewhere);
    // A layer only the oci: output has (no image in the store uses it).
    let flat = "samples/hello-world@0.0.1,samples/hello-moon@0.0.3";
    let other = create(
        &env,
        &["oci:out:other", "--config", cfg, "--pull-policy", "never", "--target", "linux/amd64", "--flatten", flat],
    );
    assert_ok(&env, &other);
    let blobs = |env: &Env| std::fs::read_dir(env.home.path().join("store/blobs/sha256")).unwrap().count();
    let before = blobs(&env);
    std::fs::write(env.home.path().join("store/blobs/.cnbx-tmp-stale"), vec![7u8; 4096]).unwrap();

    let pruned = env.cmd().args(["store", "prune"]).timeout(TIMEOUT).output().unwrap();
    assert_ok(&env, &pruned);
    let report = stdout(&pruned);
    let count = |label: &str| -> usize {
        let line = report.lines().find(|l| l.starts_with(label)).unwrap_or_else(|| panic!("{label} in {report}"));
        line[label.len() + 2..].split_whitespace().next().unwrap().parse().unwrap()
    };
    assert!(count("Unused blobs removed") >= 1, "{report}");
    assert_eq!(count("Temporary files removed"), 1, "{report}");
    assert!(report.contains("Total freed: "), "{report}");
    assert_eq!(blobs(&env), before - count("Unused blobs removed"));
    assert!(temporaries(env.home.path()).is_empty());
    assert!(layout_problems(&env.home.path().join("store")).is_empty());
    let verify = store_verify(&env, false);
    assert_ok(&env, &verify);
    // What the store's images use is still there: a create from the store alone works, and
    // gives the same builder.
    let again = create(&env, &args("cnbx.test/kept:1"));
    assert_ok(&env, &again);
    assert_eq!(printed_digest(&again), printed_digest(&kept));
    let nothing = env.cmd().args(["store", "prune"]).timeout(TIMEOUT).output().unwrap();
    assert_ok(&env, &nothing);
    assert!(stdout(&nothing).contains("Unused blobs removed: 0"), "{}", env.format(&nothing));

    // --all empties the caches too; the next create builds everything again, identically.
    let all = env.cmd().args(["store", "prune", "--all"]).timeout(TIMEOUT).output().unwrap();
    assert_ok(&env, &all);
    assert!(std::fs::read_dir(env.home.path().join("cache/layers")).unwrap().next().is_none());
    let rebuilt = create(&env, &args("oci:out2:latest"));
    assert_ok(&env, &rebuilt);
    assert_eq!(printed_digest(&rebuilt), printed_digest(&elsewhere));
}

#[test]
fn concurrent_creates_into_one_store_and_one_layout_all_land_with_a_prune_among_them() {
    let env = Env::with_test_images();
    let config = common::example_config(&env, "");
    let cfg = config.to_str().unwrap().to_owned();
    let spawn = |args: Vec<String>| {
        let mut cmd = env.std_cmd();
        cmd.args(args).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
        cmd.spawn().unwrap()
    };
    let create_args = |dest: String| -> Vec<String> {
        ["builder", "create", &dest, "--config", &cfg, "--pull-policy", "never", "--target", "linux/amd64"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect()
    };
    let mut children = Vec::new();
    for i in 0..8 {
        children.push((format!("store {i}"), spawn(create_args(format!("cnbx.test/c{i}:1")))));
        children.push((format!("layout {i}"), spawn(create_args(format!("oci:shared:t{i}")))));
        if i == 3 {
            children.push(("prune".to_owned(), spawn(vec!["store".into(), "prune".into()])));
        }
    }
    let mut digests = Vec::new();
    for (what, child) in children {
        let out = wait_bounded(child, TIMEOUT);
        assert!(out.status.success(), "{what}: {}", env.format(&out));
        if what != "prune" {
            digests.push(printed_digest(&out));
        }
    }
    digests.dedup();
    assert_eq!(digests.len(), 1, "every create made the same builder: {digests:?}");
    let layout = env.work.path().join("shared");
    assert_eq!(layout_tags(&layout), (0..8).map(|i| format!("t{i}")).collect::<Vec<_>>());
    assert!(layout_problems(&layout).is_empty(), "{:?}", layout_problems(&layout));
    let store = env.home.path().join("store");
    let tags = layout_tags(&store);
    for i in 0..8 {
        assert!(tags.contains(&format!("cnbx.test/c{i}:1")), "{tags:?}");
    }
    assert!(layout_problems(&store).is_empty(), "{:?}", layout_problems(&store));
    assert!(temporaries(env.home.path()).is_empty() && temporaries(&layout).is_empty());
    let verify = store_verify(&env, false);
    assert_ok(&env, &verify);
    for i in [0, 7] {
        let oci = format!("oci:{}:t{i}", layout.display());
        if tools() {
            cnbx_testkit::skopeo(&["inspect", &oci]).unwrap();
        }
    }
}

/// A small tmpfs mounted for the test (root only), unmounted when dropped.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    fn mount(dir: PathBuf, size: &str) -> Option<Self> {
        std::fs::create_dir_all(&dir).unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .status()
            .ok()?;
        status.success().then_some(Self { dir })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.dir).status();
    }
}

fn is_root() -> bool {
    std::process::Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Every file under `dir` with its content, for comparing a directory before and after.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().filter_map(Result::ok) {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                files.push((e.path(), std::fs::read(e.path()).unwrap()));
            }
        }
    }
    files.sort();
    files
}

#[test]
fn a_full_disk_leaves_an_oci_output_as_it_was() {
    if !is_root() {
        eprintln!("skipped: mounting a small tmpfs for the full-disk case needs root (CI runs as root)");
        return;
    }
    let env = Env::with_test_images();
    let Some(disk) = Tmpfs::mount(env.work.path().join("small-disk"), "6m") else {
        eprintln!("skipped: mount -t tmpfs failed (no CAP_SYS_ADMIN here)");
        return;
    };
    let big = big_builder(&env, 8, &[8], "");
    let example = common::example_config(&env, "");
    let run = |dest: &str, config: &Path| {
        create(&env, &[dest, "--config", config.to_str().unwrap(), "--pull-policy", "never", "--target", "linux/amd64"])
    };

    // A new layout: removed whole.
    let new = disk.dir.join("new");
    let out = run(&format!("oci:{}:latest", new.display()), &big);
    assert_eq!(out.status.code(), Some(1), "{}", env.format(&out));
    assert!(stderr(&out).contains("No space left on device"), "{}", env.format(&out));
    assert!(!new.exists(), "the new layout is removed");
    assert!(std::fs::read_dir(&disk.dir).unwrap().next().is_none(), "nothing is left on the disk");

    // An existing layout: its index and blobs stay as they were.
    let existing = disk.dir.join("existing");
    let small = run(&format!("oci:{}:small", existing.display()), &example);
    assert_ok(&env, &small);
    let before = snapshot(&existing);
    let out = run(&format!("oci:{}:big", existing.display()), &big);
    assert_eq!(out.status.code(), Some(1), "{}", env.format(&out));
    assert!(stderr(&out).contains("No space left on device"), "{}", env.format(&out));
    assert_eq!(snapshot(&existing), before, "the layout is as it was");
    assert!(layout_problems(&existing).is_empty());

    // A docker-archive: nothing at all.
    let archive = disk.dir.join("builder.tar");
    let out = run(&format!("docker-archive:{}:cnbx.test/full:1", archive.display()), &big);
    assert_eq!(out.status.code(), Some(1), "{}", env.format(&out));
    assert!(stderr(&out).contains("No space left on device"), "{}", env.format(&out));
    let names: Vec<_> = std::fs::read_dir(&disk.dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, ["existing"], "no archive and no temporary file");
    assert!(temporaries(env.home.path()).is_empty());
    drop(disk);
}
