//! End-to-end tests of `cnbx builder create`: the real binary, the bundled offline images,
//! and outputs checked with independent tools (skopeo, umoci) and a real registry.

#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::{
    Env, assert_ok, example_config, images, printed_digest, push_base_images, registry_config, stderr, stdout,
    workspace_root,
};
use serde_json::Value;

fn create(env: &Env, args: &[&str]) -> std::process::Output {
    env.cmd().args(["builder", "create"]).args(args).output().unwrap()
}

/// The real tools these tests use; a missing one fails the test with the command that installs
/// it (`make test` installs them), so that a green run always means they were exercised.
fn require_tools() {
    for (tool, package) in [("skopeo", "skopeo"), ("umoci", "umoci"), ("docker-registry", "docker-registry")] {
        cnbx_testkit::require_tool(tool, package).unwrap();
    }
}

fn labels(config: &Value) -> &serde_json::Map<String, Value> {
    config["config"]["Labels"].as_object().unwrap()
}

fn label_json(config: &Value, key: &str) -> Value {
    serde_json::from_str(labels(config)[key].as_str().unwrap()).unwrap()
}

const EXPECTED_ORDER_TOML: &str = r#"[[order]]

  [[order.group]]
    id = "samples/hello-universe"
    version = "0.0.1"

[[order]]

  [[order.group]]
    id = "samples/hello-world"
    version = "0.0.1"

[[order-extensions]]

  [[order-extensions.group]]
    id = "samples/hello-ext"
    version = "0.0.1"
"#;

#[test]
fn example_builder_has_packs_layout_files_owners_and_labels() {
    require_tools();
    let env = Env::with_test_images();
    let config = example_config(&env, "");
    let out = create(
        &env,
        &["oci:out:latest", "--config", config.to_str().unwrap(), "--pull-policy", "never", "--target", "linux/amd64"],
    );
    assert_ok(&env, &out);
    assert!(
        stdout(&out).starts_with(&format!(
            "Successfully created builder image 'oci:out:latest' into the OCI layout {} (sha256:",
            env.work.path().join("out").display()
        )),
        "{}",
        stdout(&out)
    );

    let layout = env.work.path().join("out");
    let oci = format!("oci:{}:latest", layout.display());
    let raw = cnbx_testkit::skopeo_raw(&oci, &[]).unwrap();
    assert_eq!(raw["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    let config = cnbx_testkit::skopeo_config(&oci, &[]).unwrap();
    assert_eq!(config["architecture"], "amd64");
    assert_eq!(config["created"], "1980-01-01T00:00:01Z");
    assert_eq!(config["config"]["WorkingDir"], "/layers");
    let diff_ids = config["rootfs"]["diff_ids"].as_array().unwrap();
    assert_eq!(config["history"].as_array().unwrap().len(), diff_ids.len());
    assert_eq!(raw["layers"].as_array().unwrap().len(), diff_ids.len());

    let metadata = label_json(&config, "io.buildpacks.builder.metadata");
    assert_eq!(metadata["createdBy"]["name"], "cnbx");
    assert_eq!(metadata["description"], "cnbx sample builder, made from the offline test images");
    assert_eq!(metadata["lifecycle"]["version"], "0.21.0");
    assert_eq!(metadata["images"][0]["image"], "cnbx.test/run:jammy");
    assert_eq!(metadata["images"][0]["mirrors"][0], "mirror.cnbx.test/run:jammy");
    let ids: Vec<&str> = metadata["buildpacks"].as_array().unwrap().iter().map(|b| b["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["samples/hello-world", "samples/hello-moon", "samples/hello-universe"]);
    let layers = label_json(&config, "io.buildpacks.buildpack.layers");
    let world = &layers["samples/hello-world"]["0.0.1"];
    assert_eq!(world["api"], "0.10");
    assert!(diff_ids.contains(&world["layerDiffID"]), "{world}");
    assert_eq!(layers["samples/hello-universe"]["0.0.1"]["order"][0]["group"][1]["optional"], true);
    let ext_layers = label_json(&config, "io.buildpacks.extension.layers");
    assert!(diff_ids.contains(&ext_layers["samples/hello-ext"]["0.0.1"]["layerDiffID"]));
    assert_eq!(
        labels(&config)["io.buildpacks.buildpack.order"],
        r#"[{"group":[{"id":"samples/hello-universe"}]},{"group":[{"id":"samples/hello-world","version":"0.0.1"}]}]"#
    );
    assert_eq!(
        labels(&config)["io.buildpacks.buildpack.order-extensions"],
        r#"[{"group":[{"id":"samples/hello-ext"}]}]"#
    );
    // Inherited from the build image.
    assert_eq!(labels(&config)["io.buildpacks.stack.id"], "io.buildpacks.stacks.jammy");

    // The file system, as umoci unpacks it.
    let bundle = env.work.path().join("bundle");
    let rootfs = cnbx_testkit::umoci_unpack(&layout, "latest", &bundle).unwrap();
    let read = |p: &str| std::fs::read_to_string(rootfs.join(p)).unwrap();
    assert_eq!(read("cnb/order.toml"), EXPECTED_ORDER_TOML);
    assert_eq!(
        read("cnb/run.toml"),
        "[[images]]\n  image = \"cnbx.test/run:jammy\"\n  mirrors = [\"mirror.cnbx.test/run:jammy\"]\n"
    );
    assert_eq!(
        read("cnb/stack.toml"),
        "[run-image]\n  image = \"cnbx.test/run:jammy\"\n  mirrors = [\"mirror.cnbx.test/run:jammy\"]\n"
    );
    assert_eq!(read("cnb/build-config/env/BP_GREETING"), "hello");
    assert_eq!(read("cnb/build-config/env/PATH.prepend"), "/cnb/extra/bin");
    assert_eq!(read("cnb/build-config/env/PATH.delim"), ":");
    assert!(!rootfs.join("cnb/system.toml").exists());
    assert_eq!(std::fs::read_link(rootfs.join("lifecycle")).unwrap(), Path::new("/cnb/lifecycle"));
    for bin in ["detector", "analyzer", "restorer", "builder", "exporter", "launcher", "creator"] {
        let mode = std::fs::metadata(rootfs.join("cnb/lifecycle").join(bin)).unwrap().permissions().mode();
        assert_eq!(mode & 0o111, 0o111, "{bin} is not executable");
    }
    assert!(!rootfs.join("cnb/lifecycle/lifecycle.toml").exists());
    let bp = rootfs.join("cnb/buildpacks/samples_hello-world/0.0.1");
    assert_eq!(std::fs::metadata(bp.join("bin/build")).unwrap().permissions().mode() & 0o7777, 0o755);
    assert_eq!(std::fs::metadata(bp.join("buildpack.toml")).unwrap().permissions().mode() & 0o7777, 0o644);
    assert!(rootfs.join("cnb/buildpacks/samples_hello-moon/0.0.3/buildpack.toml").exists());
    assert!(rootfs.join("cnb/buildpacks/samples_hello-universe/0.0.1/buildpack.toml").exists());
    assert!(rootfs.join("cnb/extensions/samples_hello-ext/0.0.1/extension.toml").exists());
    assert!(rootfs.join("platform/env").is_dir());
    assert!(rootfs.join("workspace").is_dir());

    // Owners, from the layer tars themselves (umoci unpacks rootless here).
    let listings: Vec<String> = raw["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let digest = l["digest"].as_str().unwrap().trim_start_matches("sha256:");
            cnbx_testkit::tar_listing(&layout.join("blobs/sha256").join(digest)).unwrap()
        })
        .collect();
    let dirs = listings.iter().find(|l| l.contains(" /workspace")).expect("a default-directories layer");
    let owner = |path: &str| {
        let line =
            dirs.lines().find(|l| l.ends_with(&format!(" {path}"))).unwrap_or_else(|| panic!("{path} in {dirs}"));
        line.split_whitespace().nth(1).unwrap().to_owned()
    };
    assert_eq!(owner("/layers"), "1000/1000");
    assert_eq!(owner("/workspace"), "1000/1000");
    assert_eq!(owner("/cnb"), "0/0");
    assert!(dirs.lines().all(|l| l.contains("1980-01-01")), "{dirs}");
}

#[test]
fn several_targets_make_an_index_and_the_digest_is_reproducible() {
    require_tools();
    // Two homes, two working directories, same inputs: same digest, also on a warm rerun.
    let a = Env::with_test_images();
    let b = Env::with_test_images();
    let config_a = example_config(&a, "");
    let config_b = example_config(&b, "");
    let run = |env: &Env, config: &Path| {
        let out = create(env, &["oci:out:v1", "--config", config.to_str().unwrap(), "--pull-policy", "never"]);
        assert_ok(env, &out);
        printed_digest(&out)
    };
    let first = run(&a, &config_a);
    let second = run(&b, &config_b);
    let warm = run(&a, &config_a);
    assert_eq!(first, second);
    assert_eq!(first, warm);

    let oci = format!("oci:{}:v1", a.work.path().join("out").display());
    let index = cnbx_testkit::skopeo_raw(&oci, &[]).unwrap();
    assert_eq!(index["mediaType"], "application/vnd.oci.image.index.v1+json");
    let platforms: Vec<String> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            format!("{}/{}", m["platform"]["os"].as_str().unwrap(), m["platform"]["architecture"].as_str().unwrap())
        })
        .collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"]);
    let arm = cnbx_testkit::skopeo_config(&oci, &["--override-arch", "arm64"]).unwrap();
    assert_eq!(arm["architecture"], "arm64");
    assert!(stdout_has_digest(&first));
}

fn stdout_has_digest(d: &str) -> bool {
    d.len() == 71 && d.starts_with("sha256:")
}

#[test]
fn local_store_builder_is_inspected_and_docker_archive_is_loadable() {
    require_tools();
    let env = Env::with_test_images();
    let config = example_config(&env, "");
    let cfg = config.to_str().unwrap();
    let out =
        create(&env, &["cnbx.test/e2e:latest", "--config", cfg, "--pull-policy", "never", "--target", "linux/arm64"]);
    assert_ok(&env, &out);
    let inspect = env.cmd().args(["builder", "inspect", "cnbx.test/e2e:latest", "--output", "json"]).output().unwrap();
    assert_ok(&env, &inspect);
    let doc: Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(doc["builder_name"], "cnbx.test/e2e:latest");
    let local = &doc["local_info"];
    assert_eq!(local["created_by"]["name"], "cnbx");
    assert_eq!(local["lifecycle"]["version"], "0.21.0");
    assert_eq!(local["run_images"][0]["name"], "cnbx.test/run:jammy");
    assert_eq!(local["detection_order"][0]["buildpacks"][0]["id"], "samples/hello-universe");

    let human = env.cmd().args(["builder", "inspect", "cnbx.test/e2e:latest"]).output().unwrap();
    assert_ok(&env, &human);
    let text = stdout(&human);
    assert!(text.contains("Created By:\n  Name: cnbx"), "{text}");
    assert!(text.contains("samples/hello-world"), "{text}");

    let archive = env.work.path().join("builder.tar");
    let spelled = format!("docker-archive:{}:cnbx.test/e2e:latest", archive.display());
    let out = create(&env, &[&spelled, "--config", cfg, "--pull-policy", "never", "--target", "linux/amd64"]);
    assert_ok(&env, &out);
    let inspected = cnbx_testkit::skopeo(&["inspect", &format!("docker-archive:{}", archive.display())]).unwrap();
    let inspected: Value = serde_json::from_str(&inspected).unwrap();
    assert_eq!(inspected["Architecture"], "amd64");
    assert_eq!(inspected["Labels"]["io.buildpacks.stack.id"], "io.buildpacks.stacks.jammy");
}

/// A registry holding the offline base images, a fresh env, and the sample builder.toml
/// pointing at them.
fn registry_setup() -> (cnbx_testkit::Registry, Env, PathBuf) {
    require_tools();
    let registry = cnbx_testkit::Registry::start().unwrap();
    push_base_images(&registry);
    let env = Env::new();
    let config = registry_config(&env, &registry.host());
    (registry, env, config)
}

#[test]
fn publish_pushes_an_index_skopeo_reads_and_a_second_publish_uploads_nothing() {
    let (registry, env, config) = registry_setup();
    let host = registry.host();
    let target = format!("{host}/team/builder:1");
    let out = create(&env, &[&target, "--config", config.to_str().unwrap(), "--publish"]);
    assert_ok(&env, &out);
    let digest = printed_digest(&out);
    let raw = cnbx_testkit::skopeo_raw(&registry.docker_ref("team/builder:1"), &registry_flags(&registry)).unwrap();
    assert_eq!(raw["manifests"].as_array().unwrap().len(), 2);
    let inspected = cnbx_testkit::skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--format",
        "{{.Digest}}",
        &registry.docker_ref("team/builder:1"),
    ])
    .unwrap();
    let _ = inspected;
    let config_json = cnbx_testkit::skopeo_config(
        &registry.docker_ref("team/builder:1"),
        &["--tls-verify=false", "--override-arch", "arm64"],
    )
    .unwrap();
    assert_eq!(config_json["architecture"], "arm64");
    assert_eq!(label_json(&config_json, "io.buildpacks.builder.metadata")["createdBy"]["name"], "cnbx");

    // Unchanged inputs: same digest, nothing uploaded.
    let blobs = registry.blob_count();
    let again = create(&env, &[&target, "--config", config.to_str().unwrap(), "--publish"]);
    assert_ok(&env, &again);
    assert_eq!(printed_digest(&again), digest);
    assert_eq!(registry.blob_count(), blobs);
    assert!(String::from_utf8_lossy(&again.stderr).contains("Pushed 0 blob(s)"), "{}", env.format(&again));

    // --append-image-name-suffix also pushes each platform's image under a suffixed tag.
    let suffixed =
        create(&env, &[&target, "--config", config.to_str().unwrap(), "--publish", "--append-image-name-suffix"]);
    assert_ok(&env, &suffixed);
    for (tag, arch) in [("1-linux-amd64", "amd64"), ("1-linux-arm64", "arm64")] {
        let config =
            cnbx_testkit::skopeo_config(&registry.docker_ref(&format!("team/builder:{tag}")), &["--tls-verify=false"])
                .unwrap();
        assert_eq!(config["architecture"], arch);
    }

    // The builder is readable remotely by inspect and by the run-image resolver.
    let inspect = env.cmd().args(["builder", "inspect", &target, "--output", "json"]).output().unwrap();
    assert_ok(&env, &inspect);
    let doc: Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(doc["remote_info"]["created_by"]["name"], "cnbx");
    assert!(doc["local_info"].is_null());
    let chosen = env
        .cmd()
        .args(["builder", "run-image", &target, "--app-image", "mirror.cnbx.test/team/app", "--output", "json"])
        .output()
        .unwrap();
    assert_ok(&env, &chosen);
    let resolution: Value = serde_json::from_slice(&chosen.stdout).unwrap();
    assert_eq!(resolution["image"], "mirror.cnbx.test/run:jammy");
    assert_eq!(resolution["reason"], "same-registry");
}

fn registry_flags(registry: &cnbx_testkit::Registry) -> Vec<&'static str> {
    let _ = registry;
    vec!["--tls-verify=false"]
}

#[test]
fn a_root_build_image_is_refused_before_anything_is_written() {
    require_tools();
    let env = Env::with_test_images();
    // A build image whose user is root: copy the offline build image and change its config with umoci.
    let bad = images::layout(&env, "build", "bad", "amd64", &["--config.user", "0:0"]);
    let repo = workspace_root();
    let text = std::fs::read_to_string(repo.join("builder.toml.example"))
        .unwrap()
        .replace("\"testdata/", &format!("\"{}/testdata/", repo.display()))
        .replace("\"cnbx.test/build:jammy\"", &format!("\"oci:{}:base\"", bad.display()));
    let config = env.write("builder.toml", &text);
    let out = create(
        &env,
        &["oci:out:latest", "--config", config.to_str().unwrap(), "--pull-policy", "never", "--target", "linux/amd64"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", env.format(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("platform spec"), "{stderr}");
    assert!(stderr.contains("build image"), "{stderr}");
    assert!(stderr.contains("fix:"), "{stderr}");
    assert!(!env.work.path().join("out").exists(), "nothing may be written");
}

#[test]
fn config_errors_name_the_file_and_exit_1() {
    let env = Env::with_test_images();
    let missing = env.run(&["builder", "create", "x:1", "--config", "nope.toml"]);
    assert!(missing.starts_with("exit: 1\n"), "{missing}");
    assert!(missing.contains("nope.toml"), "{missing}");

    env.write("unknown.toml", "[[buildpacks]]\nurl = \"x\"\n[build]\nimage = \"b\"\n[[run.images]]\nimage = \"r\"\n");
    let unknown = env.run(&["builder", "create", "x:1", "--config", "unknown.toml"]);
    assert!(unknown.starts_with("exit: 1\n"), "{unknown}");
    assert!(unknown.contains("buildpacks.url"), "{unknown}");

    env.write("nobuild.toml", "[[run.images]]\nimage = \"r\"\n");
    let nobuild = env.run(&["builder", "create", "x:1", "--config", "nobuild.toml"]);
    assert!(nobuild.contains("build.image is required"), "{nobuild}");

    let noconfig = env.run(&["builder", "create", "x:1"]);
    assert!(noconfig.contains("Please provide a builder config path, using --config."), "{noconfig}");

    let missing_image = env.write(
        "missing.toml",
        "[build]\nimage = \"cnbx.test/nothing:here\"\n[[run.images]]\nimage = \"cnbx.test/run:jammy\"\n",
    );
    let out =
        env.run(&["builder", "create", "x:1", "--config", missing_image.to_str().unwrap(), "--pull-policy", "never"]);
    assert!(out.starts_with("exit: 1\n"), "{out}");
    assert!(out.contains("build image 'cnbx.test/nothing:here' was not found"), "{out}");
    assert!(!env.home.path().join("store").join("x").exists());
}

#[test]
fn registry_base_images_are_recorded_per_platform_so_the_next_run_is_offline() {
    let (registry, env, config) = registry_setup();
    let host = registry.host();
    let cfg = config.to_str().unwrap();
    // Both targets pull from the registry (if-not-present) and are recorded in the store.
    let first = create(&env, &["oci:out:latest", "--config", cfg]);
    assert_ok(&env, &first);
    // Now offline: the store has both platforms, with the registry's manifest digests.
    drop(registry);
    let second = create(&env, &["oci:out:latest", "--config", cfg, "--pull-policy", "never"]);
    assert_ok(&env, &second);
    assert_eq!(printed_digest(&first), printed_digest(&second));
    let store = env.home.path().join("store");
    let stored = cnbx_testkit::skopeo_raw(&format!("oci:{}:{host}/build:jammy", store.display()), &[]).unwrap();
    let platforms: Vec<&str> = stored["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["platform"]["architecture"].as_str().unwrap())
        .collect();
    assert_eq!(platforms, ["amd64", "arm64"]);
    let original = cnbx_testkit::skopeo_raw(
        &format!("oci:{}:cnbx.test/build:jammy", workspace_root().join("testdata/cnbx-home/store").display()),
        &[],
    )
    .unwrap();
    let digests = |index: &Value| {
        let mut d: Vec<String> =
            index["manifests"].as_array().unwrap().iter().map(|m| m["digest"].as_str().unwrap().to_owned()).collect();
        d.sort();
        d
    };
    assert_eq!(digests(&stored), digests(&original), "the store keeps the registry's manifest bytes");
}

#[test]
fn flatten_groups_share_one_layer_and_labels_are_added() {
    require_tools();
    let env = Env::with_test_images();
    let config = example_config(&env, "");
    let cfg = config.to_str().unwrap();
    let base = ["--config", cfg, "--pull-policy", "never", "--target", "linux/amd64"];
    let plain = create(&env, &[&["oci:plain:latest"], &base[..]].concat());
    assert_ok(&env, &plain);
    let flat_args = [
        &["oci:flat:latest", "--flatten", "samples/hello-world@0.0.1,samples/hello-moon@0.0.3"],
        &base[..],
        &["--label", "org.example.team=platform", "--label", "io.buildpacks.buildpack.order=ignored"],
    ]
    .concat();
    let flat = create(&env, &flat_args);
    assert_ok(&env, &flat);
    let read = |name: &str| {
        let oci = format!("oci:{}:latest", env.work.path().join(name).display());
        (cnbx_testkit::skopeo_raw(&oci, &[]).unwrap(), cnbx_testkit::skopeo_config(&oci, &[]).unwrap())
    };
    let (plain_raw, _) = read("plain");
    let (flat_raw, flat_config) = read("flat");
    assert_eq!(flat_raw["layers"].as_array().unwrap().len() + 1, plain_raw["layers"].as_array().unwrap().len());
    let layers = label_json(&flat_config, "io.buildpacks.buildpack.layers");
    assert_eq!(
        layers["samples/hello-world"]["0.0.1"]["layerDiffID"],
        layers["samples/hello-moon"]["0.0.3"]["layerDiffID"]
    );
    assert_ne!(
        layers["samples/hello-world"]["0.0.1"]["layerDiffID"],
        layers["samples/hello-universe"]["0.0.1"]["layerDiffID"]
    );
    assert_eq!(labels(&flat_config)["org.example.team"], "platform");
    // cnbx's own labels win over --label, as pack's do.
    assert_eq!(
        label_json(&flat_config, "io.buildpacks.buildpack.order")[0]["group"][0]["id"],
        "samples/hello-universe"
    );
}

/// The sample builder's digest, fixed. It changes only when the image cnbx writes changes
/// (layer encoding, compression, labels, config, the cnbx version in `createdBy`): update it
/// deliberately, and say why in the commit.
const GOLDEN_SAMPLE_DIGEST: &str = "sha256:ef63def43377fec4b71c127c8f02e16aa5247c007f3b1de33438b65fb386a059";

#[test]
fn golden_digest_of_the_sample_builder() {
    let env = Env::with_test_images();
    let out = env
        .cmd()
        .current_dir(workspace_root())
        .args(["builder", "create", "cnbx.test/golden:1", "--config", "builder.toml.example", "--pull-policy", "never"])
        .output()
        .unwrap();
    assert_ok(&env, &out);
    assert_eq!(printed_digest(&out), GOLDEN_SAMPLE_DIGEST, "{}", env.format(&out));
    // Every image it names is in the offline store, the run-image mirror included.
    assert!(!String::from_utf8_lossy(&out.stderr).contains("Warning"), "{}", env.format(&out));
}

#[test]
fn tags_save_the_same_builder_under_more_names() {
    let env = Env::with_test_images();
    let config = example_config(&env, "");
    let cfg = config.to_str().unwrap();
    let args = ["cnbx.test/tagged:1", "--config", cfg, "--pull-policy", "never", "--tag", "cnbx.test/tagged:latest"];
    let out = create(&env, &[&args[..], &["--tag", "other.example/builder:2"]].concat());
    assert_ok(&env, &out);
    let digest = printed_digest(&out);
    for name in ["cnbx.test/tagged:1", "cnbx.test/tagged:latest", "other.example/builder:2"] {
        let inspect = env.cmd().args(["builder", "inspect", name, "--output", "json"]).output().unwrap();
        assert_ok(&env, &inspect);
        let doc: Value = serde_json::from_slice(&inspect.stdout).unwrap();
        assert_eq!(doc["local_info"]["created_by"]["name"], "cnbx", "{name}");
    }
    let index: Value =
        serde_json::from_str(&std::fs::read_to_string(env.home.path().join("store/index.json")).unwrap()).unwrap();
    let tagged: Vec<&Value> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| {
            m["annotations"]["org.opencontainers.image.ref.name"].as_str().unwrap().contains("builder:2")
                || m["annotations"]["org.opencontainers.image.ref.name"].as_str().unwrap().contains("tagged")
        })
        .collect();
    assert_eq!(tagged.len(), 3);
    assert!(tagged.iter().all(|m| m["digest"] == digest.as_str()));
    let bad = create(&env, &["oci:out", "--config", cfg, "--pull-policy", "never", "--tag", "x:1"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--tag names more images"));
}

/// The config digest of the image `tag` of the OCI layout `dir`.
fn layout_config_digest(dir: &Path, tag: &str) -> String {
    let index: Value = serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let entry = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap();
    let manifest = dir.join("blobs/sha256").join(entry["digest"].as_str().unwrap().trim_start_matches("sha256:"));
    let manifest: Value = serde_json::from_slice(&std::fs::read(manifest).unwrap()).unwrap();
    manifest["config"]["digest"].as_str().unwrap().to_owned()
}

#[test]
fn a_docker_archive_as_skopeo_writes_it_is_a_build_image() {
    require_tools();
    let env = Env::with_test_images();
    let archive = env.work.path().join("build.tar");
    images::build_image_archive(&archive, "cnbx.test/build:jammy");
    let reference = example_config(&env, "");
    let args = |config: &Path, dest: &'static str| {
        let mut a = vec![dest.to_owned(), "--config".into(), config.display().to_string()];
        a.extend(["--pull-policy", "never", "--target", "linux/amd64"].map(str::to_owned));
        a
    };
    let run = |a: Vec<String>| create(&env, &a.iter().map(String::as_str).collect::<Vec<_>>());
    assert_ok(&env, &run(args(&reference, "oci:want")));
    let text = std::fs::read_to_string(&reference).unwrap();
    for (i, spelled) in
        [format!("docker-archive:{}", archive.display()), "docker-archive:build.tar:cnbx.test/build:jammy".to_owned()]
            .iter()
            .enumerate()
    {
        let config =
            env.write(&format!("a{i}.toml"), &text.replace("\"cnbx.test/build:jammy\"", &format!("\"{spelled}\"")));
        // Relative to the builder.toml's directory, as every path of builder.toml.
        let out = run(args(&config, if i == 0 { "oci:got0" } else { "oci:got1" }));
        assert_ok(&env, &out);
        let got = layout_config_digest(&env.work.path().join(format!("got{i}")), "latest");
        assert_eq!(got, layout_config_digest(&env.work.path().join("want"), "latest"), "{spelled}");
    }
    // A name the archive does not hold is an error naming the archive and the name.
    let config = env.write(
        "bad.toml",
        &text.replace("\"cnbx.test/build:jammy\"", "\"docker-archive:build.tar:cnbx.test/other:1\""),
    );
    let out = run(args(&config, "oci:bad"));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains(&format!("reading docker-archive:{}:cnbx.test/other:1", archive.display())), "{err}");
}
