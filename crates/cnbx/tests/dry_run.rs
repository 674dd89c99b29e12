//! `cnbx builder create --dry-run` end to end: what it reports (layers, sources, actions,
//! findings, "nothing to do") in both output formats, the JSON document parsed against the
//! schema of docs/json-output.md, its exit status, and that it writes nothing: `CNBX_HOME`
//! (the local store, the caches), the destination layout and the registry's storage are
//! compared file by file, byte for byte, before and after.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::images::{config, layout, oci, run_image, tools};
use common::schema::Finding;
use common::{Env, example_config, push_base_images, redact_digests, registry_config, tree};
use serde::Deserialize;

/// The document of docs/json-output.md, every field required and no other allowed.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct DryRunJson {
    schema_version: u32,
    status: String,
    destination: String,
    destination_kind: String,
    into: String,
    digest: Option<String>,
    error: Option<String>,
    summary: Counts,
    names: Vec<Name>,
    targets: Vec<Target>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Counts {
    layers: usize,
    base: usize,
    cache: usize,
    package: usize,
    build: usize,
    exists: usize,
    mount: usize,
    upload: usize,
    write: usize,
    load: usize,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Name {
    name: String,
    wants: Option<String>,
    holds: Option<String>,
    up_to_date: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Target {
    platform: String,
    manifest: Option<String>,
    findings: Vec<Finding>,
    layers: Vec<Layer>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Layer {
    holds: String,
    source: String,
    action: String,
    #[serde(rename = "diffID")]
    diff_id: Option<String>,
    digest: Option<String>,
    size: Option<u64>,
}

fn is_digest(d: &str) -> bool {
    d.len() == 71 && d.starts_with("sha256:") && d[7..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// Checks the value sets and invariants the schema states.
fn check_schema(doc: &DryRunJson) {
    assert_eq!(doc.schema_version, 1);
    assert!(["would-create", "up-to-date", "would-fail"].contains(&doc.status.as_str()), "{doc:?}");
    assert!(
        ["store", "engine", "layout", "docker-archive", "registry"].contains(&doc.destination_kind.as_str()),
        "{doc:?}"
    );
    assert!(doc.into.starts_with("into ") || doc.into.starts_with("to the registry "), "{doc:?}");
    assert_eq!(doc.status == "would-fail", doc.error.is_some(), "{doc:?}");
    assert_eq!(doc.status == "up-to-date", !doc.names.is_empty() && doc.names.iter().all(|n| n.up_to_date), "{doc:?}");
    let mut counts = BTreeMap::<&str, usize>::new();
    for t in &doc.targets {
        assert_eq!(t.manifest.is_some(), !t.layers.is_empty() && t.layers.iter().all(|l| l.diff_id.is_some()), "{t:?}");
        for f in &t.findings {
            f.check();
            assert_eq!(f.platform, t.platform);
        }
        for l in &t.layers {
            assert!(["base", "cache", "package", "build"].contains(&l.source.as_str()), "{l:?}");
            assert!(["exists", "mount", "upload", "write", "load"].contains(&l.action.as_str()), "{l:?}");
            assert!(!l.holds.is_empty());
            let known = l.source != "build";
            assert_eq!(l.diff_id.is_some(), known, "{l:?}");
            assert_eq!(l.digest.is_some(), known, "{l:?}");
            assert_eq!(l.size.is_some(), known, "{l:?}");
            assert!(l.diff_id.iter().chain(&l.digest).all(|d| is_digest(d)), "{l:?}");
            *counts.entry(l.source.as_str()).or_default() += 1;
            *counts.entry(l.action.as_str()).or_default() += 1;
        }
    }
    let s = &doc.summary;
    let n = |k: &str| counts.get(k).copied().unwrap_or(0);
    assert_eq!(s.layers, doc.targets.iter().map(|t| t.layers.len()).sum::<usize>());
    assert_eq!((s.base, s.cache, s.package, s.build), (n("base"), n("cache"), n("package"), n("build")));
    assert_eq!(
        (s.exists, s.mount, s.upload, s.write, s.load),
        (n("exists"), n("mount"), n("upload"), n("write"), n("load"))
    );
    for name in &doc.names {
        assert!(name.wants.iter().chain(&name.holds).all(|d| is_digest(d)), "{name:?}");
        assert!(!name.name.is_empty());
    }
    assert!(doc.digest.iter().all(|d| is_digest(d)));
}

/// `cnbx builder create ARGS --dry-run --output json`: exit code, document, formatted outcome.
fn dry_run_json(env: &Env, args: &[&str]) -> (i32, DryRunJson, String) {
    let out =
        env.cmd().args(["builder", "create"]).args(args).args(["--dry-run", "--output", "json"]).output().unwrap();
    let doc: DryRunJson = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", env.format(&out)));
    check_schema(&doc);
    (out.status.code().unwrap_or(-1), doc, env.format(&out))
}

/// `cnbx builder create ARGS --dry-run` (human output), formatted.
fn dry_run_human(env: &Env, args: &[&str]) -> String {
    env.run(&[&["builder", "create"][..], args, &["--dry-run"]].concat())
}

/// Everything a dry run must leave as it was: `CNBX_HOME` and the work directory (where the
/// destination layouts are).
fn snapshot(env: &Env) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    (tree(env.home.path()), tree(env.work.path()))
}

/// A home whose store was used once (the use lock file exists, as after any command).
fn used_home() -> Env {
    let env = Env::with_test_images();
    let out = env.run(&["store", "verify"]);
    assert!(out.starts_with("exit: 0\n"), "{out}");
    env
}

fn printed_digest(out: &str) -> String {
    let start = out.find("(sha256:").unwrap_or_else(|| panic!("no digest in {out}")) + 1;
    out[start..start + 71].to_owned()
}

#[test]
fn a_cold_dry_run_builds_nothing_and_writes_nothing() {
    let env = used_home();
    let cfg = example_config(&env, "");
    let cfg = cfg.to_str().unwrap();
    let before = snapshot(&env);
    let (code, doc, out) = dry_run_json(&env, &["oci:out:latest", "--config", cfg, "--pull-policy", "never"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(snapshot(&env), before, "a dry run writes nothing");
    assert!(!env.work.path().join("out").exists());
    let cache = tree(&env.home.path().join("cache"));
    assert!(cache.values().all(|v| v == "dir"), "no layer cached, nothing remembered: {cache:?}");
    assert_eq!(doc.status, "would-create");
    assert_eq!((doc.destination.as_str(), doc.destination_kind.as_str()), ("oci:out:latest", "layout"));
    assert_eq!(doc.digest, None, "unknown until the layers are built");
    let platforms: Vec<&str> = doc.targets.iter().map(|t| t.platform.as_str()).collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"]);
    let amd64 = &doc.targets[0];
    let holds: Vec<&str> = amd64.layers.iter().map(|l| l.holds.as_str()).collect();
    assert!(holds.contains(&"lifecycle 0.21.0"), "{holds:?}");
    assert!(holds.contains(&"buildpack samples/hello-world@0.0.1"), "{holds:?}");
    assert!(holds.contains(&"extension samples/hello-ext@0.0.1"), "{holds:?}");
    assert!(holds.contains(&"/cnb/order.toml"), "{holds:?}");
    assert!(amd64.layers.iter().filter(|l| l.source == "base").all(|l| l.holds.starts_with("build image layer ")));
    assert!(amd64.layers.iter().filter(|l| l.source != "base").all(|l| l.source == "build"), "{amd64:?}");
    assert!(amd64.layers.iter().all(|l| l.action == "write"), "the layout does not exist yet");
    assert_eq!(doc.names.len(), 1);
    assert_eq!(doc.names[0].holds, None);
    insta::assert_snapshot!(
        "dry_run_cold_human",
        dry_run_human(&env, &["oci:out:latest", "--config", cfg, "--pull-policy", "never", "--target", "linux/amd64"])
    );
    assert_eq!(snapshot(&env), before);
}

#[test]
fn after_a_create_the_dry_run_has_nothing_to_do_and_writes_nothing() {
    let env = used_home();
    let cfg = example_config(&env, "");
    let cfg = cfg.to_str().unwrap();
    for destination in ["oci:out:latest", "cnbx.test/sample:1"] {
        let args = [destination, "--config", cfg, "--pull-policy", "never"];
        let created = env.run(&[&["builder", "create"][..], &args].concat());
        assert!(created.starts_with("exit: 0\n"), "{created}");
        let digest = printed_digest(&created);
        let before = snapshot(&env);
        let (code, doc, out) = dry_run_json(&env, &args);
        assert_eq!(code, 0, "{out}");
        assert_eq!(snapshot(&env), before, "{destination}: a dry run writes nothing");
        assert_eq!(doc.status, "up-to-date", "{out}");
        assert_eq!(doc.digest.as_deref(), Some(digest.as_str()), "the digest the create printed");
        assert_eq!(doc.names[0].holds.as_deref(), Some(digest.as_str()));
        assert!(doc.targets.iter().flat_map(|t| &t.layers).all(|l| l.action == "exists"), "{out}");
        assert!(doc.targets.iter().flat_map(|t| &t.layers).all(|l| ["base", "cache"].contains(&l.source.as_str())));
        let human = dry_run_human(&env, &args);
        assert!(
            human.contains(&format!("Result: nothing to do: '{destination}' already holds this builder ({digest})")),
            "{human}"
        );
        assert_eq!(snapshot(&env), before);
        if destination.starts_with("oci:") {
            insta::assert_snapshot!("dry_run_up_to_date_human", human);
            insta::assert_snapshot!("dry_run_up_to_date_json", out);
        }
    }

    // Another label: every layer is known, the image is not the one stored.
    let args = ["oci:out:latest", "--config", cfg, "--pull-policy", "never", "--label", "team=stacks"];
    let before = snapshot(&env);
    let (code, doc, out) = dry_run_json(&env, &args);
    assert_eq!(code, 0, "{out}");
    assert_eq!(doc.status, "would-create");
    let wants = doc.digest.clone().unwrap_or_else(|| panic!("known: {out}"));
    assert_ne!(Some(wants.clone()), doc.names[0].holds);
    assert_eq!(snapshot(&env), before);
    // ... and it is the digest the create then writes.
    let created = env.run(&[&["builder", "create"][..], &args].concat());
    assert_eq!(printed_digest(&created), wants, "{created}");
}

#[test]
fn a_dry_run_to_a_registry_mounts_uploads_or_skips_and_pushes_nothing() {
    if cnbx_testkit::require_tool("docker-registry", "docker-registry").is_err() || !tools() {
        return;
    }
    let registry = cnbx_testkit::Registry::start().unwrap();
    push_base_images(&registry);
    let env = Env::new();
    let cfg = registry_config(&env, &registry.host());
    let cfg = cfg.to_str().unwrap();
    let target = format!("{}/team/builder:1", registry.host());
    let created = env.run(&["builder", "create", &target, "--config", cfg, "--publish"]);
    assert!(created.starts_with("exit: 0\n"), "{created}");
    let digest = printed_digest(&created);
    let storage = tree(&registry.storage());
    let before = snapshot(&env);

    let (code, doc, out) = dry_run_json(&env, &[&target, "--config", cfg, "--publish"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(doc.status, "up-to-date", "{out}");
    assert_eq!(doc.digest.as_deref(), Some(digest.as_str()));
    assert!(doc.targets.iter().flat_map(|t| &t.layers).all(|l| l.action == "exists"), "{out}");

    // Another repository of the same registry: the base layers would be mounted, cnbx's
    // layers uploaded.
    let other = format!("{}/other/builder:1", registry.host());
    let (code, doc, out) =
        dry_run_json(&env, &[&other, "--config", cfg, "--publish", "--tag", &format!("{other}-again")]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(doc.status, "would-create");
    assert_eq!(doc.destination_kind, "registry");
    let layers: Vec<&Layer> = doc.targets.iter().flat_map(|t| &t.layers).collect();
    assert!(layers.iter().filter(|l| l.source == "base").all(|l| l.action == "mount"), "{out}");
    assert!(layers.iter().filter(|l| l.source == "cache").all(|l| l.action == "upload"), "{out}");
    assert_eq!(doc.names.len(), 2, "the destination and the --tag");
    assert!(doc.names.iter().all(|n| n.holds.is_none() && n.wants == doc.digest));

    assert_eq!(tree(&registry.storage()), storage, "the registry holds exactly what it held");
    assert_eq!(snapshot(&env), before, "CNBX_HOME and the work directory too");
}

#[test]
fn a_base_image_that_breaks_a_must_rule_fails_the_dry_run_with_its_findings() {
    if !tools() {
        return;
    }
    let env = Env::new();
    let build = oci(&layout(&env, "build", "root", "amd64", &["--config.user", "0:0"]));
    let run = run_image(&env, "run", "amd64", &[]);
    let cfg = config(&env, &build, &run, None, "");
    let cfg = cfg.to_str().unwrap();
    let args = ["oci:out:latest", "--config", cfg, "--pull-policy", "never", "--target", "linux/amd64"];
    assert!(env.run(&["store", "verify"]).starts_with("exit: 0\n"));
    let before = snapshot(&env);
    let (code, doc, out) = dry_run_json(&env, &args);
    assert_eq!(code, 1, "exits as the create would: {out}");
    assert_eq!(doc.status, "would-fail");
    assert!(doc.error.as_deref().unwrap().contains("do not meet the Cloud Native Buildpacks platform spec"), "{out}");
    let target = &doc.targets[0];
    assert_eq!(target.platform, "linux/amd64");
    assert!(target.layers.is_empty());
    let f = target.findings.iter().find(|f| f.rule == "BUILD-USER-NONROOT").unwrap_or_else(|| panic!("{out}"));
    assert_eq!((f.level.as_str(), f.role.as_str(), f.image.as_str()), ("error", "build", build.as_str()));
    assert!(out.contains("ERROR: the base images do not meet the Cloud Native Buildpacks platform spec"), "{out}");
    insta::assert_snapshot!("dry_run_refused_json", redact_digests(&out));
    insta::assert_snapshot!("dry_run_refused_human", redact_digests(&dry_run_human(&env, &args)));
    assert_eq!(snapshot(&env), before);
    assert!(!Path::new(&env.work.path().join("out")).exists());
}

#[test]
fn output_needs_dry_run() {
    let env = Env::new();
    let out = env.run(&["builder", "create", "x:1", "--config", "b.toml", "--output", "json"]);
    assert!(out.starts_with("exit: 1\n"), "{out}");
    assert!(out.contains("--dry-run"), "{out}");
}

/// A dry run that must read a `.cnb` buildpackage stages it under `CNBX_HOME/tmp` until it
/// ends, and then leaves `CNBX_HOME` as it was: no staging directory, and no `tmp` directory
/// it made for it either.
#[test]
fn a_dry_run_that_stages_a_buildpackage_leaves_no_tmp_directory() {
    use cnbx_testkit::hostile::{Package, package_layer_entries, tar};
    let env = used_home();
    let layer = tar(&package_layer_entries("x/y", "1.0.0", vec![]));
    let package = Package::new("x/y", "1.0.0", &layer, None);
    std::fs::write(env.work.path().join("pkg.cnb"), tar(&package.cnb_entries())).unwrap();
    let cfg = example_config(&env, "[[buildpacks]]\n  uri = \"pkg.cnb\"\n");
    let cfg = cfg.to_str().unwrap();
    assert!(!env.home.path().join("tmp").exists());
    let before = snapshot(&env);
    let args = ["oci:out:latest", "--config", cfg, "--pull-policy", "never", "--target", "linux/amd64"];
    let (code, doc, out) = dry_run_json(&env, &args);
    assert_eq!(code, 0, "{out}");
    let staged = doc.targets[0].layers.iter().find(|l| l.holds.starts_with("buildpack x/y@1.0.0"));
    assert_eq!(staged.map(|l| l.source.as_str()), Some("package"), "{out}");
    assert_eq!(snapshot(&env), before, "a dry run leaves CNBX_HOME as it was");
}
