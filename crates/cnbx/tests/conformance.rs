//! `builder create` at the edges of pack's and the platform spec's behaviour: base-image rules
//! with `--publish`, pack's exact empty values in the files and labels it writes, digest pins,
//! and messages.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};

use common::images::{PATH_ENV, layout, oci, tools};
use common::{Env, workspace_root};
use serde_json::Value;

fn test_store() -> PathBuf {
    workspace_root().join("testdata/cnbx-home/store")
}

/// The sample builder.toml with its relative paths made absolute and `replacements` applied.
fn sample(env: &Env, name: &str, replacements: &[(&str, &str)]) -> PathBuf {
    let repo = workspace_root();
    let mut text = std::fs::read_to_string(repo.join("builder.toml.example"))
        .unwrap()
        .replace("\"testdata/", &format!("\"{}/testdata/", repo.display()));
    for (from, to) in replacements {
        assert!(text.contains(from), "{from}");
        text = text.replace(from, to);
    }
    env.write(name, &text)
}

fn run(env: &Env, args: &[&str]) -> (i32, String) {
    let out = env.cmd().args(args).output().unwrap();
    (out.status.code().unwrap_or(-1), env.format(&out))
}

/// `cnbx.test/<role>:jammy` for amd64, changed with `umoci config`, pushed to `registry` as
/// `<repo>`.
fn push_changed(env: &Env, registry: &cnbx_testkit::Registry, role: &str, repo: &str, changes: &[&str]) {
    let dir = layout(env, role, &format!("layout-{}", repo.replace([':', '/'], "-")), "amd64", changes);
    cnbx_testkit::skopeo(&["copy", "--dest-tls-verify=false", &oci(&dir), &registry.docker_ref(repo)]).unwrap();
}

/// With `--publish` the base images' layers are read from the registry (streamed), so the
/// rules that need them are checked as they are without `--publish`; once per manifest
/// digest, and not again when the same images are validated again. `--skip-layer-checks`
/// opts out with one warning listing the rules left unchecked.
#[test]
fn publish_checks_the_rules_that_need_the_base_layers() {
    if !tools() || cnbx_testkit::require_tool("docker-registry", "docker-registry").is_err() {
        return;
    }
    let registry = cnbx_testkit::Registry::start().unwrap();
    let host = registry.host();
    let env = Env::new();
    // A build user without an /etc/passwd entry (so without a home directory).
    let no_passwd = [
        "--config.user",
        "2000:2000",
        "--clear=config.env",
        "--config.env",
        PATH_ENV,
        "--config.env",
        "CNB_USER_ID=2000",
    ];
    let mut changes = no_passwd.to_vec();
    changes.extend(["--config.env", "CNB_GROUP_ID=2000"]);
    push_changed(&env, &registry, "build", "build-nouser:jammy", &changes);
    push_changed(&env, &registry, "build", "build:jammy", &[]);
    push_changed(&env, &registry, "run", "run:jammy", &[]);
    push_changed(&env, &registry, "run", "run-mirror:jammy", &[]);
    let target = format!("{host}/team/builder:1");
    let config = |name: &str, build: &str| {
        sample(
            &env,
            name,
            &[
                ("\"cnbx.test/build:jammy\"", &format!("\"{host}/{build}\"")),
                ("\"cnbx.test/run:jammy\"", &format!("\"{host}/run:jammy\"")),
                ("\"mirror.cnbx.test/run:jammy\"", &format!("\"{host}/run-mirror:jammy\"")),
            ],
        )
    };
    let bad = config("bad.toml", "build-nouser:jammy");
    let bad = bad.to_str().unwrap();
    let publish = ["builder", "create", &target, "--publish", "--target", "linux/amd64", "--config"];

    let (code, out) = run(&env, &[&publish[..], &[bad]].concat());
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("[BUILD-USER-HOME-WRITABLE]"), "{out}");
    assert!(out.contains("the base images do not meet the Cloud Native Buildpacks platform spec"), "{out}");

    let (code, out) = run(&env, &[&publish[..], &[bad, "--skip-layer-checks"]].concat());
    assert_eq!(code, 0, "{out}");
    let skipped: Vec<&str> = out.lines().filter(|l| l.contains("--skip-layer-checks")).collect();
    assert_eq!(skipped.len(), 1, "{out}");
    assert!(skipped[0].starts_with("Warning: --skip-layer-checks: the base images' layers were not read"), "{out}");
    assert!(skipped[0].contains("BUILD-USER-HOME-WRITABLE"), "{out}");

    // A good build image: the build image and the run image are read once each (the mirror
    // has the run image's digest), and a second run replays the validation.
    let good = config("good.toml", "build:jammy");
    let good = good.to_str().unwrap();
    let (code, out) = run(&env, &[&publish[..], &[good, "--verbose"]].concat());
    assert_eq!(code, 0, "{out}");
    let reads: Vec<&str> = out.lines().filter(|l| l.contains("Reading the layers of")).collect();
    assert_eq!(reads.len(), 2, "{out}");
    assert!(reads.iter().any(|l| l.contains("build:jammy")) && reads.iter().any(|l| l.contains("/run:jammy")));
    assert!(!out.contains("[BUILD-USER-HOME-WRITABLE]"), "{out}");
    let (code, out) = run(&env, &[&publish[..], &[good, "--verbose"]].concat());
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("Reading the layers of"), "the validation cache remembers: {out}");
}

/// A file written into an OCI layout builder, read with umoci.
fn builder_file(env: &Env, layout: &Path, path: &str) -> Option<String> {
    let bundle = env.work.path().join(format!("bundle-{}", layout.file_name().unwrap().to_string_lossy()));
    let rootfs = if bundle.exists() {
        bundle.join("rootfs")
    } else {
        cnbx_testkit::umoci_unpack(layout, "latest", &bundle).unwrap()
    };
    std::fs::read_to_string(rootfs.join(path)).ok()
}

fn labels_of(layout: &Path) -> serde_json::Map<String, Value> {
    let config = cnbx_testkit::skopeo_config(&format!("oci:{}:latest", layout.display()), &[]).unwrap();
    config["config"]["Labels"].as_object().unwrap().clone()
}

fn label_json(labels: &serde_json::Map<String, Value>, key: &str) -> Value {
    serde_json::from_str(labels[key].as_str().unwrap()).unwrap()
}

/// pack writes an empty list the builder.toml (or the build image) gives as `[]`, and one it
/// does not give as `null` or not at all: run image mirrors in `/cnb/stack.toml` and the
/// metadata label, the stack mixins, the orders and their groups.
#[test]
fn empty_and_absent_lists_are_written_as_pack_writes_them() {
    if !tools() {
        return;
    }
    let env = Env::with_test_images();
    let legacy_run = "[stack]\n  id = \"io.buildpacks.stacks.jammy\"\n  run-image = \"cnbx.test/run:jammy\"\n";
    let run_images = "[[run.images]]\n  image = \"cnbx.test/run:jammy\"\n  mirrors = [\"mirror.cnbx.test/run:jammy\"]";
    let create = |name: &str, replacements: &[(&str, &str)]| {
        let config = sample(&env, &format!("{name}.toml"), replacements);
        let dest = format!("oci:{name}:latest");
        let args = ["builder", "create", &dest, "--config", config.to_str().unwrap(), "--pull-policy", "never"];
        let (code, out) = run(&env, &[&args[..], &["--target", "linux/amd64"]].concat());
        assert_eq!(code, 0, "{out}");
        env.work.path().join(name)
    };

    // `run-image-mirrors = []` with [stack].id.
    let empty = create("empty", &[(run_images, &format!("{legacy_run}  run-image-mirrors = []"))]);
    assert_eq!(
        builder_file(&env, &empty, "cnb/stack.toml").unwrap(),
        "[run-image]\n  image = \"cnbx.test/run:jammy\"\n  mirrors = []\n"
    );
    assert_eq!(
        builder_file(&env, &empty, "cnb/run.toml").unwrap(),
        "[[images]]\n  image = \"cnbx.test/run:jammy\"\n  mirrors = []\n"
    );
    let labels = labels_of(&empty);
    let metadata = label_json(&labels, "io.buildpacks.builder.metadata");
    assert_eq!(metadata["stack"]["runImage"]["mirrors"], serde_json::json!([]), "{metadata}");
    assert_eq!(metadata["images"][0]["mirrors"], serde_json::json!([]), "{metadata}");
    // The build image's mixins label is `[]`.
    assert_eq!(labels["io.buildpacks.stack.mixins"], "[]");

    // No mirrors key: no mirrors line, `null` in the label.
    let absent = create("absent", &[(run_images, legacy_run)]);
    assert_eq!(
        builder_file(&env, &absent, "cnb/stack.toml").unwrap(),
        "[run-image]\n  image = \"cnbx.test/run:jammy\"\n"
    );
    let metadata = label_json(&labels_of(&absent), "io.buildpacks.builder.metadata");
    assert_eq!(metadata["stack"]["runImage"]["mirrors"], Value::Null, "{metadata}");
    assert_eq!(metadata["images"][0]["mirrors"], Value::Null, "{metadata}");

    // `[[run.images]]` with `mirrors = []` and [stack].id: the same as the legacy spelling.
    let merged = create(
        "merged",
        &[(
            run_images,
            "[stack]\n  id = \"io.buildpacks.stacks.jammy\"\n\n[[run.images]]\n  image = \"cnbx.test/run:jammy\"\n  mirrors = []",
        )],
    );
    let metadata = label_json(&labels_of(&merged), "io.buildpacks.builder.metadata");
    assert_eq!(metadata["stack"]["runImage"], serde_json::json!({"image": "cnbx.test/run:jammy", "mirrors": []}));

    // An order given as an empty list, and an order entry without a group.
    let order = "[[order]]\n  [[order.group]]\n    id = \"samples/hello-universe\"\n\n[[order]]\n  [[order.group]]\n    id = \"samples/hello-world\"\n    version = \"0.0.1\"";
    let orders = create(
        "orders",
        &[
            (order, ""),
            ("description = ", "order = []\ndescription = "),
            (
                "[[order-extensions]]\n  [[order-extensions.group]]\n    id = \"samples/hello-ext\"",
                "[[order-extensions]]",
            ),
        ],
    );
    let labels = labels_of(&orders);
    assert_eq!(labels["io.buildpacks.buildpack.order"], "[]");
    assert_eq!(labels["io.buildpacks.buildpack.order-extensions"], r#"[{"group":null}]"#);
    assert_eq!(builder_file(&env, &orders, "cnb/order.toml").unwrap(), "[[order-extensions]]\n");
}

/// A reference pinned by digest resolves to exactly that content: a local-store entry
/// recorded under the pinned name with another manifest is refused; an entry that is the
/// pinned content, or a manifest of the pinned index fetched from a registry, is used.
#[test]
fn digest_pins_are_honoured() {
    if !tools() {
        return;
    }
    let env = Env::with_test_images();
    let store = env.home.path().join("store");
    let index_path = store.join("index.json");
    let mut index: Value = serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
    let manifests = index["manifests"].as_array().unwrap().clone();
    let entry =
        |name: &str| manifests.iter().find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == name).unwrap();
    let build_index = entry("cnbx.test/build:jammy").clone();
    let run_index = entry("cnbx.test/run:jammy")["digest"].as_str().unwrap().to_owned();
    // The build image recorded under a name pinned to the run image's index.
    let mut poisoned = build_index.clone();
    let pinned = format!("cnbx.test/build@{run_index}");
    poisoned["annotations"]["org.opencontainers.image.ref.name"] = pinned.clone().into();
    index["manifests"].as_array_mut().unwrap().push(poisoned);
    std::fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();

    let args = |config: &Path| {
        ["builder", "create", "oci:out:latest", "--config", config.to_str().unwrap(), "--pull-policy", "never"]
            .map(str::to_owned)
    };
    let config = sample(&env, "pinned.toml", &[("\"cnbx.test/build:jammy\"", &format!("\"{pinned}\""))]);
    let (code, out) = run(&env, &args(&config).iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("'{pinned}' is pinned to {run_index}, but the local store's entry for it is manifest")),
        "{out}"
    );
    assert!(!env.work.path().join("out").exists());

    // Pinned to the build image's own index: used.
    let own = format!("cnbx.test/build@{}", build_index["digest"].as_str().unwrap());
    let config = sample(&env, "own.toml", &[("\"cnbx.test/build:jammy\"", &format!("\"{own}\""))]);
    let (code, out) = run(&env, &args(&config).iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, 0, "{out}");

    // An index pinned on a registry, recorded in the store, is used offline afterwards.
    if cnbx_testkit::require_tool("docker-registry", "docker-registry").is_err() {
        return;
    }
    let registry = cnbx_testkit::Registry::start().unwrap();
    let source = format!("oci:{}:cnbx.test/build:jammy", test_store().display());
    cnbx_testkit::skopeo(&["copy", "--all", "--dest-tls-verify=false", &source, &registry.docker_ref("build:jammy")])
        .unwrap();
    let remote = format!("{}/build@{}", registry.host(), build_index["digest"].as_str().unwrap());
    let config = sample(&env, "remote.toml", &[("\"cnbx.test/build:jammy\"", &format!("\"{remote}\""))]);
    let online: Vec<String> = args(&config).iter().map(|a| a.replace("never", "if-not-present")).collect();
    let (code, out) = run(&env, &online.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, 0, "{out}");
    drop(registry);
    let (code, out) = run(&env, &args(&config).iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, 0, "the recorded manifest of the pinned index is used offline: {out}");
}

/// Messages name each step once.
#[test]
fn lifecycle_errors_are_not_prefixed_twice() {
    let env = Env::with_test_images();
    let config = sample(
        &env,
        "b.toml",
        &[("[lifecycle]\n  uri = \"", "[lifecycle]\n  uri = \"docker://cnbx.test/no-lifecycle:1\"\n  # ")],
    );
    let (code, out) = run(
        &env,
        &["builder", "create", "oci:out:latest", "--config", config.to_str().unwrap(), "--pull-policy", "never"],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("ERROR: fetch lifecycle: Could not parse uri from lifecycle image"), "{out}");
    assert!(!out.contains("fetch lifecycle: fetch lifecycle"), "{out}");
}
