//! `cnbx base-image check` end to end: the offline base images as they are (they pass), and
//! changed one rule at a time (as in validation.rs), in both output formats; the JSON document
//! parsed against the schema of docs/json-output.md; the exit codes; and nothing written into
//! the local store.

#![allow(clippy::unwrap_used)]

mod common;

use common::images::{layout, oci, run_image, tools};
use common::schema::Finding;
use common::{Env, redact_digests, tree};
use serde::Deserialize;

/// The document of docs/json-output.md, every field required and no other allowed.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CheckJson {
    schema_version: u32,
    passed: bool,
    strict: bool,
    mode: String,
    platform_api: String,
    summary: Summary,
    images: Vec<Image>,
    findings: Vec<Finding>,
    notes: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Summary {
    errors: usize,
    warnings: usize,
    infos: usize,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Image {
    role: String,
    image: String,
    platform: String,
    manifest: String,
}

/// Runs `cnbx base-image check ARGS --output json`: the exit code, the parsed document (checked
/// against the schema's value sets) and the formatted outcome.
fn check_json(env: &Env, args: &[&str]) -> (i32, CheckJson, String) {
    let out = env.cmd().args(["base-image", "check"]).args(args).args(["--output", "json"]).output().unwrap();
    let doc: CheckJson = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", env.format(&out)));
    assert_eq!(doc.schema_version, 1);
    assert!(["layers", "config"].contains(&doc.mode.as_str()), "{doc:?}");
    doc.findings.iter().for_each(Finding::check);
    for i in &doc.images {
        assert!(["build", "run", "mirror"].contains(&i.role.as_str()), "{i:?}");
        assert!(i.manifest.starts_with("sha256:") && i.manifest.len() == 71, "{i:?}");
    }
    let count = |level: &str| doc.findings.iter().filter(|f| f.level == level).count();
    assert_eq!(
        (doc.summary.errors, doc.summary.warnings, doc.summary.infos),
        (count("error"), count("warning"), count("info"))
    );
    let code = out.status.code().unwrap_or(-1);
    assert_eq!(code == 0, doc.passed, "the exit code follows `passed`: {}", env.format(&out));
    (code, doc, env.format(&out))
}

/// The offline images as they are, with the mirror: every platform of their indexes is checked
/// (build, run, mirror, and the pairs), and they pass.
#[test]
fn the_offline_images_pass_for_every_platform_in_both_formats() {
    let env = Env::with_test_images();
    let args = [
        "--build",
        "cnbx.test/build:jammy",
        "--run",
        "cnbx.test/run:jammy",
        "--mirror",
        "mirror.cnbx.test/run:jammy",
        "--pull-policy",
        "never",
    ];
    // The store has been used (its use lock file exists, as after any command).
    assert!(env.run(&["store", "verify"]).starts_with("exit: 0\n"));
    let store = tree(&env.home.path().join("store"));
    let human = env.cmd().args(["base-image", "check"]).args(args).output().unwrap();
    insta::assert_snapshot!("check_offline_human", env.format(&human));
    let (code, doc, out) = check_json(&env, &args);
    assert_eq!(code, 0, "{out}");
    assert_eq!(doc.summary.errors, 0);
    assert_eq!(doc.mode, "layers");
    assert_eq!(doc.platform_api, "0.15");
    let mut platforms: Vec<&str> = doc.images.iter().map(|i| i.platform.as_str()).collect();
    platforms.dedup();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"]);
    assert_eq!(doc.images.len(), 6, "{doc:?}");
    let checked: Vec<(&str, &str)> = doc.images.iter().map(|i| (i.role.as_str(), i.image.as_str())).collect();
    assert_eq!(
        checked[..3],
        [("build", "cnbx.test/build:jammy"), ("run", "cnbx.test/run:jammy"), ("mirror", "mirror.cnbx.test/run:jammy")]
    );
    insta::assert_snapshot!("check_offline_json", out);
    assert_eq!(tree(&env.home.path().join("store")), store, "a check writes nothing into the local store");
    assert!(env.home.path().join("cache/validation").read_dir().unwrap().count() >= 2, "one entry per platform");

    // --target picks platforms; --config-only reads no layer and says what it left unchecked.
    let (code, doc, out) = check_json(
        &env,
        &["--run", "cnbx.test/run:jammy", "--pull-policy", "never", "--target", "linux/arm64", "--config-only"],
    );
    assert_eq!(code, 0, "{out}");
    assert_eq!(doc.mode, "config");
    assert_eq!(doc.images.len(), 1);
    assert_eq!(doc.images[0].platform, "linux/arm64");
    assert_eq!(doc.notes.len(), 1, "{doc:?}");
    assert!(
        doc.notes[0]
            .starts_with("linux/arm64: --config-only: the layers were not read, so these rules were not checked: "),
        "{doc:?}"
    );
}

/// One broken rule per case, as in validation.rs: a MUST is an error and exit 1, a SHOULD a
/// warning and exit 0 (1 with --strict), both with the image, the platform, the rule and a fix.
#[test]
fn a_broken_rule_is_a_finding_with_its_image_platform_and_fix() {
    if !tools() {
        return;
    }
    let env = Env::new();
    let root = oci(&layout(&env, "build", "root", "amd64", &["--config.user", "0:0"]));
    let (code, doc, out) = check_json(&env, &["--build", &root]);
    assert_eq!(code, 1, "{out}");
    let f = doc.findings.iter().find(|f| f.rule == "BUILD-USER-NONROOT").unwrap_or_else(|| panic!("{out}"));
    assert_eq!(
        (f.level.as_str(), f.role.as_str(), f.image.as_str(), f.platform.as_str()),
        ("error", "build", root.as_str(), "linux/amd64")
    );
    insta::assert_snapshot!("check_root_build_user_json", redact_digests(&out));
    let human = env.cmd().args(["base-image", "check", "--build", &root]).output().unwrap();
    insta::assert_snapshot!("check_root_build_user_human", redact_digests(&env.format(&human)));

    // A SHOULD: the run user is the build user.
    let build = oci(&layout(&env, "build", "build", "amd64", &[]));
    let same_user = run_image(&env, "same-user", "amd64", &["--config.user", "1000:1000"]);
    let args = ["--build", build.as_str(), "--run", same_user.as_str(), "--pull-policy", "never"];
    let (code, doc, out) = check_json(&env, &args);
    assert_eq!(code, 0, "{out}");
    assert!(
        doc.findings.iter().any(|f| f.rule == "RUN-USER-DIFFERENT" && f.level == "warning" && f.role == "run"),
        "{out}"
    );
    let human = env.cmd().args(["base-image", "check"]).args(args).output().unwrap();
    insta::assert_snapshot!("check_same_user_human", redact_digests(&env.format(&human)));
    let strict: Vec<&str> = args.iter().copied().chain(["--strict"]).collect();
    let (code, doc, out) = check_json(&env, &strict);
    assert_eq!(code, 1, "--strict fails on warnings: {out}");
    assert!(doc.strict && !doc.passed);

    // A run image without the build image's platform: PAIR-TARGET-MATCH, not a fetch error.
    let arm = run_image(&env, "arm", "arm64", &[]);
    let (code, doc, out) = check_json(&env, &["--build", &build, "--run", &arm, "--pull-policy", "never"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        doc.findings.iter().any(|f| f.rule == "PAIR-TARGET-MATCH" && f.image == arm && f.level == "error"),
        "{out}"
    );

    // A run image alone (no PATH): the run image rules.
    let no_path = run_image(&env, "no-path", "amd64", &["--clear=config.env", "--config.env", "CNB_USER_ID=1002"]);
    let (code, doc, out) = check_json(&env, &["--run", &no_path, "--pull-policy", "never"]);
    assert_eq!(code, 1, "{out}");
    assert!(doc.findings.iter().any(|f| f.rule == "RUN-ENV-PATH" && f.role == "run"), "{out}");
    assert!(!doc.images.iter().any(|i| i.role == "build"));
}

/// A check of images checked before replays the findings remembered for their manifest
/// digests instead of reading them again: an edited entry shows through.
#[test]
fn findings_are_remembered_by_manifest_digest() {
    if !tools() {
        return;
    }
    let env = Env::new();
    let root = oci(&layout(&env, "build", "root", "amd64", &["--config.user", "0:0"]));
    let (_, first, _) = check_json(&env, &["--build", &root]);
    assert!(!first.findings.is_empty());
    let cache = env.home.path().join("cache/validation");
    let entries: Vec<_> = cache.read_dir().unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(entries.len(), 1);
    let text = std::fs::read_to_string(&entries[0]).unwrap();
    let edited = text.replace(&first.findings[0].message, "as remembered");
    assert_ne!(edited, text);
    std::fs::write(&entries[0], edited).unwrap();
    let (_, again, _) = check_json(&env, &["--build", &root]);
    assert_eq!(again.findings[0].message, "as remembered");
    // Another mode is another entry, checked afresh.
    let (_, config_only, _) = check_json(&env, &["--build", &root, "--config-only"]);
    assert!(config_only.findings.iter().all(|f| f.message != "as remembered"), "{config_only:?}");
    assert_eq!(cache.read_dir().unwrap().count(), 2);
}

/// Usage errors are told, exit 1, and print no document.
#[test]
fn usage_errors_are_told() {
    let env = Env::with_test_images();
    let none = env.run(&["base-image", "check"]);
    assert!(none.starts_with("exit: 1\n"), "{none}");
    assert!(none.contains("--build <IMAGE>") && none.contains("--run <IMAGE>"), "{none}");
    let two = env.run(&["base-image", "check", "--run", "a/b:1", "--run", "c/d:1", "--mirror", "e/f:1"]);
    assert!(two.contains("ERROR: --mirror names mirrors of one run image, but 2 run images were given"), "{two}");
    let api = env.run(&["base-image", "check", "--run", "a/b:1", "--platform-api", "1"]);
    assert!(api.contains("ERROR: invalid --platform-api '1': write MAJOR.MINOR"), "{api}");
    let absent = env.run(&["base-image", "check", "--build", "cnbx.test/absent:1", "--pull-policy", "never"]);
    assert!(
        absent.contains(
            "ERROR: build image 'cnbx.test/absent:1' was not found in the local store, and --pull-policy never forbids looking in its registry"
        ),
        "{absent}"
    );
}

/// Images on a registry are read there, their layers streamed: the local store is left as it
/// was, and the second check of the same images replays the remembered findings.
#[test]
fn registry_images_are_streamed_and_nothing_is_stored() {
    if cnbx_testkit::require_tool("docker-registry", "docker-registry").is_err() || !tools() {
        return;
    }
    let registry = cnbx_testkit::Registry::start().unwrap();
    common::push_base_images(&registry);
    let env = Env::new();
    let build = format!("{}/build:jammy", registry.host());
    let run = format!("{}/run:jammy", registry.host());
    // The store exists (empty) before, as after any command.
    let _ = env.run(&["store", "verify"]);
    let store = tree(&env.home.path().join("store"));
    let (code, doc, out) = check_json(&env, &["--build", &build, "--run", &run]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(doc.images.len(), 4, "{out}");
    assert_eq!(tree(&env.home.path().join("store")), store, "nothing pulled into the local store");
    assert!(tree(&env.home.path().join("tmp")).is_empty(), "no scratch space left");
}
