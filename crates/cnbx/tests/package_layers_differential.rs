//! Buildpackage layers with odd headers, end to end: a `.cnb` whose layer holds `x/y@1.0.0`
//! written with the encodings of `cnbx_testkit::oddtar` (decoys named `/etc/passwd`,
//! `/cnb/lifecycle/launcher`, hidden headers, ...) goes through `cnbx builder create`, and the
//! builder is unpacked with umoci (Go's `archive/tar`). Either the create is refused, naming
//! the package, or the builder reuses the layer byte for byte and umoci unpacks under
//! `/cnb/buildpacks/x_y` exactly the entries cnbx's reader reported, and nothing of the
//! package anywhere else.
//!
//! `PROPTEST_CASES=<n>` runs n/100 cases (at least the default); `CNBX_FUZZ_SEED=<n>` starts
//! from another seed.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Read;
use std::path::Path;

use cnbx_oci::tarball::EntryKind;
use cnbx_oci::tarread::{TarReader, Use};
use cnbx_testkit::hostile::{self, Package, package_layer_entries, tar};
use cnbx_testkit::oddtar::{self, EVIL, Model, Rng, Seen};
use common::{Env, workspace_root};

const ROOT: &str = "cnb/buildpacks/x_y";
const DECOYS: &[&str] = &["etc/passwd", "cnb/lifecycle/launcher", "cnb/buildpacks/x_y/2.0.0/bin/build", "workspace/x"];

fn cases() -> u64 {
    let asked: u64 = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
    (asked / 100).max(12)
}

fn first_seed() -> u64 {
    std::env::var("CNBX_FUZZ_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// What cnbx's reader (as it reads a layer to reuse it) reports, under `ROOT`, as a model.
fn reported(layer: &[u8]) -> Result<Model, String> {
    let mut reader = TarReader::new(layer, Use::Verbatim);
    let mut model = Model::default();
    while let Some(e) = reader.next_entry().map_err(|e| e.to_string())? {
        let mut content = Vec::new();
        reader.content().read_to_end(&mut content).unwrap();
        let Some(path) = oddtar::clean(&e.path) else { continue };
        let Some(rel) = path.strip_prefix(&format!("{ROOT}/")) else { continue };
        let seen = match e.kind {
            EntryKind::File => Seen::File(content),
            EntryKind::Dir => Seen::Dir,
            EntryKind::Symlink { target } => Seen::Symlink(target),
            EntryKind::Hardlink { target } => {
                let t = oddtar::clean(&target).unwrap_or_default();
                Seen::Hardlink(t.strip_prefix(&format!("{ROOT}/")).unwrap_or(&t).to_owned())
            }
            EntryKind::Other { .. } => return Err("a special entry".into()),
        };
        model.apply(rel, &seen)?;
    }
    Ok(model)
}

/// Files under `root` (a builder's rootfs) whose content is a decoy's, outside `ROOT`.
fn evil_outside(root: &Path) -> Vec<String> {
    let tree = oddtar::read_tree(root).unwrap();
    tree.nodes
        .iter()
        .filter(|(p, n)| !p.starts_with(&format!("{ROOT}/")) && matches!(n, Seen::File(c) if c.starts_with(EVIL)))
        .map(|(p, _)| p.clone())
        .collect()
}

/// The layer digests of the image tagged `latest` in the OCI layout `dir`.
fn layer_digests(dir: &Path) -> Vec<String> {
    let read = |p: &Path| serde_json::from_slice::<serde_json::Value>(&std::fs::read(p).unwrap()).unwrap();
    let index = read(&dir.join("index.json"));
    let manifest = index["manifests"][0]["digest"].as_str().unwrap();
    let manifest = read(&dir.join("blobs/sha256").join(&manifest[7..]));
    manifest["layers"].as_array().unwrap().iter().map(|l| l["digest"].as_str().unwrap().to_owned()).collect()
}

#[test]
fn fuzz_package_layers_unpack_as_scanned() {
    let env = Env::with_test_images();
    std::fs::write(
        env.work.path().join("builder.toml"),
        format!(
            "[[buildpacks]]\n  uri = \"pkg.cnb\"\n\n[build]\n  image = \"cnbx.test/build:jammy\"\n\n\
             [[run.images]]\n  image = \"cnbx.test/run:jammy\"\n\n[lifecycle]\n  uri = \"{}/testdata/lifecycle/lifecycle-v0.21.0+test.tgz\"\n\n\
             [[targets]]\n  os = \"linux\"\n  arch = \"amd64\"\n",
            workspace_root().display()
        ),
    )
    .unwrap();
    let (first, n) = (first_seed(), cases());
    let (mut created, mut refused) = (0, 0);
    for seed in first..first + n {
        let odd = oddtar::odd_layer(&mut Rng::new(seed), &format!("{ROOT}/1.0.0"), DECOYS);
        let mut layer = hostile::tar_entries(&package_layer_entries("x/y", "1.0.0", vec![]));
        layer.extend_from_slice(&odd.bytes);
        let fail = |what: String| -> ! {
            panic!(
                "seed {seed}: {what}\nentries:\n  {}\n(CNBX_FUZZ_SEED={seed} PROPTEST_CASES=100 reproduces it)",
                odd.notes.join("\n  ")
            )
        };
        let pkg = Package::new("x/y", "1.0.0", &layer, None);
        std::fs::write(env.work.path().join("pkg.cnb"), tar(&pkg.cnb_entries())).unwrap();
        let out_dir = env.work.path().join("out");
        let _ = std::fs::remove_dir_all(&out_dir);
        let out = env
            .cmd()
            .args(["builder", "create", "oci:out", "--config", "builder.toml", "--pull-policy", "never"])
            .timeout(std::time::Duration::from_secs(60))
            .output()
            .unwrap();
        let text = env.format(&out);
        if !out.status.success() {
            refused += 1;
            if out.status.code() != Some(1) || !text.contains("package 'pkg.cnb'") || out_dir.exists() {
                fail(format!("a refusal must exit 1, name the package and write nothing:\n{text}"));
            }
            continue;
        }
        created += 1;
        let ours =
            reported(&layer).unwrap_or_else(|e| fail(format!("the create reused a layer cnbx's reader refuses: {e}")));
        if !layer_digests(&out_dir).contains(&hostile::sha256(&pkg.layer)) {
            fail("the package layer was not reused byte for byte".into());
        }
        let bundle = env.work.path().join("bundle");
        let _ = std::fs::remove_dir_all(&bundle);
        let rootfs = cnbx_testkit::umoci_unpack(&out_dir, "latest", &bundle).unwrap();
        let evil = evil_outside(&rootfs);
        if !evil.is_empty() {
            fail(format!("umoci unpacked the package's bytes outside its directory: {evil:?}"));
        }
        let theirs = oddtar::read_tree(&rootfs.join(ROOT)).unwrap();
        let diff = oddtar::differences(&ours, &theirs);
        if !diff.is_empty() {
            fail(format!("umoci unpacked other entries than cnbx reported:\n  {}", diff.join("\n  ")));
        }
    }
    eprintln!("{n} packages: {created} builders created and compared with umoci, {refused} refused");
    assert!(created > 0 && refused > 0, "the cases must include both outcomes ({created} created, {refused} refused)");
}
