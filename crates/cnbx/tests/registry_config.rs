//! The configuration keys that change how images are fetched, against real loopback
//! registries: `registry-mirrors` (the mirror serves every fetch, the original registry is
//! never contacted) and the pull policy's default, `always` (a changed base image is used,
//! an unchanged one costs one manifest request per name and nothing else).

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use cnbx_testkit::Registry;
use common::{Env, printed_digest, stderr, stdout};

fn tools() -> bool {
    ["docker-registry", "skopeo", "umoci"].iter().all(|t| cnbx_testkit::require_tool(t, t).is_ok())
}

/// The requests a registry received since `offset` (a length of its access log), as
/// `METHOD PATH`.
fn requests_since(registry: &Registry, offset: usize) -> Vec<String> {
    registry.access_log()[offset..]
        .lines()
        .filter_map(|line| {
            let request = line.split('"').nth(1)?;
            let mut parts = request.split(' ');
            Some(format!("{} {}", parts.next()?, parts.next()?))
        })
        .collect()
}

/// The sample builder.toml with its build image, run image and the run image's mirror on the
/// registry `host` (`build:jammy`, `run:jammy`, `mirror/run:jammy`).
fn builder_toml(env: &Env, host: &str) -> PathBuf {
    let config = common::registry_config(env, host);
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("mirror.cnbx.test/run:jammy", &format!("{host}/mirror/run:jammy"));
    env.write("builder.toml", &text)
}

/// Pushes the offline base images to `registry`: `build:jammy`, `run:jammy` and the mirror.
fn push_base_images(registry: &Registry) {
    common::push_base_images(registry);
    let store = common::workspace_root().join("testdata/cnbx-home/store");
    cnbx_testkit::skopeo(&[
        "copy",
        "--all",
        "--dest-tls-verify=false",
        &format!("oci:{}:mirror.cnbx.test/run:jammy", store.display()),
        &registry.docker_ref("mirror/run:jammy"),
    ])
    .unwrap();
}

fn ok(env: &Env, out: &Output) {
    assert!(out.status.success(), "{}", env.format(out));
}

#[test]
fn registry_mirrors_serve_every_fetch_and_the_original_is_never_contacted() {
    if !tools() {
        return;
    }
    let original = Registry::start().unwrap();
    let mirror = Registry::start().unwrap();
    push_base_images(&mirror);
    let env = Env::new();
    env.write_pack_config(&format!("[registry-mirrors]\n  \"*\" = \"{}\"\n", mirror.host()));
    let config = builder_toml(&env, &original.host());
    let untouched = original.access_log().len();
    let served = mirror.access_log().len();

    // builder create: every base image comes from the mirror (pull policy always).
    let out =
        env.cmd().args(["builder", "create", "oci:out:latest", "--config", config.to_str().unwrap()]).output().unwrap();
    ok(&env, &out);
    let messages = stderr(&out);
    let (a, m) = (original.host(), mirror.host());
    for name in ["build:jammy", "run:jammy", "mirror/run:jammy"] {
        assert!(messages.contains(&format!("Using mirror '{m}/{name}' for {a}/{name}\n")), "{name}: {messages}");
    }
    // The builder names the images as written.
    let inspect = env.cmd().args(["builder", "inspect", "oci:out:latest", "-o", "json"]).output().unwrap();
    ok(&env, &inspect);
    let json: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    let run_images = json["local_info"]["run_images"].to_string();
    assert!(run_images.contains(&format!("\"{a}/run:jammy\"")), "{run_images}");
    assert!(run_images.contains(&format!("\"{a}/mirror/run:jammy\"")), "{run_images}");
    assert!(!run_images.contains(&m), "{run_images}");

    // A builder published on the mirror, inspected, checked and asked about by its name on the
    // original registry; and the base images checked.
    let out = env
        .cmd()
        .args(["builder", "create", &format!("{m}/team/builder:1"), "--config", config.to_str().unwrap(), "--publish"])
        .output()
        .unwrap();
    ok(&env, &out);
    let builder = format!("{a}/team/builder:1");
    let out = env.cmd().args(["builder", "inspect", &builder, "-o", "json"]).output().unwrap();
    ok(&env, &out);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(json["remote_info"].is_object(), "REMOTE comes from the mirror: {json}");
    let out =
        env.cmd().args(["builder", "run-image", &builder, "--app-image", &format!("{a}/team/app")]).output().unwrap();
    ok(&env, &out);
    assert_eq!(stdout(&out), format!("{a}/run:jammy\n"));
    let out = env
        .cmd()
        .args(["base-image", "check", "--build", &format!("{a}/build:jammy"), "--run", &format!("{a}/run:jammy")])
        .output()
        .unwrap();
    ok(&env, &out);

    assert_eq!(requests_since(&original, untouched), Vec::<String>::new(), "the original registry was contacted");
    let mirrored = requests_since(&mirror, served);
    for path in ["/v2/build/manifests/jammy", "/v2/run/manifests/jammy", "/v2/team/builder/manifests/1"] {
        assert!(mirrored.iter().any(|r| r.ends_with(path)), "{path} not asked from the mirror: {mirrored:?}");
    }
}

/// `oci:<work>/<name>:latest`.
fn oci(env: &Env, name: &str) -> String {
    format!("oci:{}:latest", env.work.path().join(name).display())
}

fn labels_of(layout: &str) -> serde_json::Value {
    cnbx_testkit::skopeo_config(layout, &[]).unwrap()["config"]["Labels"].clone()
}

#[test]
fn pull_policy_always_is_the_default_and_a_warm_create_fetches_only_manifests() {
    if !tools() {
        return;
    }
    let registry = Registry::start().unwrap();
    push_base_images(&registry);
    let env = Env::new();
    let config = builder_toml(&env, &registry.host());
    let create = |name: &str| {
        let out = env
            .cmd()
            .args([
                "builder",
                "create",
                &oci(&env, name),
                "--config",
                config.to_str().unwrap(),
                "--target",
                "linux/amd64",
            ])
            .output()
            .unwrap();
        ok(&env, &out);
        out
    };

    let first = create("one");
    // Nothing changed: one manifest request per name (build, run, mirror), no blob, and the
    // same builder.
    let offset = registry.access_log().len();
    let second = create("two");
    let asked = requests_since(&registry, offset);
    let mut manifests: Vec<&str> = asked.iter().filter(|r| r.contains("/manifests/")).map(String::as_str).collect();
    manifests.sort_unstable();
    assert_eq!(
        manifests,
        ["GET /v2/build/manifests/jammy", "GET /v2/mirror/run/manifests/jammy", "GET /v2/run/manifests/jammy"],
        "{asked:?}"
    );
    assert!(asked.iter().all(|r| r.ends_with("/v2/") || r.contains("/manifests/jammy")), "{asked:?}");
    assert_eq!(printed_digest(&second), printed_digest(&first));

    // The build image changes on the registry (a new label): the next create uses it.
    let changed =
        common::images::layout(&env, "build", "changed-build", "amd64", &["--config.label", "cnbx.test/changed=yes"]);
    push_layout(&changed, &registry.docker_ref("build:jammy"));
    let offset = registry.access_log().len();
    let third = create("three");
    assert_ne!(printed_digest(&third), printed_digest(&second));
    assert_eq!(labels_of(&oci(&env, "three"))["cnbx.test/changed"], "yes");
    assert!(labels_of(&oci(&env, "two")).get("cnbx.test/changed").is_none());
    let asked = requests_since(&registry, offset);
    // The new manifest by its digest and its config; its layers are those already stored.
    assert!(asked.iter().any(|r| r.starts_with("GET /v2/build/manifests/sha256:")), "{asked:?}");
    let blobs = asked.iter().filter(|r| r.contains("/blobs/")).count();
    assert_eq!(blobs, 1, "only the new config: {asked:?}");

    // pack's `if-not-present`, from the configuration: no request at all.
    env.write_pack_config("pull-policy = \"if-not-present\"\n");
    let offset = registry.access_log().len();
    let fourth = create("four");
    assert_eq!(requests_since(&registry, offset), Vec::<String>::new());
    assert_eq!(printed_digest(&fourth), printed_digest(&third));
}

fn push_layout(dir: &Path, dest: &str) {
    cnbx_testkit::skopeo(&["copy", "--dest-tls-verify=false", &format!("oci:{}:base", dir.display()), dest]).unwrap();
}

/// A registry that cannot be reached, under `always`, is an error that names the way out when
/// the store has a copy.
#[test]
fn pull_policy_always_fails_clearly_when_the_registry_is_gone() {
    if !tools() {
        return;
    }
    let registry = Registry::start().unwrap();
    push_base_images(&registry);
    let env = Env::new();
    let config = builder_toml(&env, &registry.host());
    let args = ["builder", "create", "oci:out:latest", "--config", config.to_str().unwrap(), "-t", "linux/amd64"];
    ok(&env, &env.cmd().args(args).output().unwrap());
    let host = registry.host();
    drop(registry);
    let out = env.cmd().args(args).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", env.format(&out));
    let text = stderr(&out);
    assert!(
        text.contains(&format!(
            "cannot check '{host}/build:jammy' on its registry, as --pull-policy always (pack's default) requires; the \
             cnbx store ({}) has a copy, which --pull-policy if-not-present uses",
            env.home.path().join("store").display()
        )),
        "{text}"
    );
    let out = env.cmd().args(args).args(["--pull-policy", "if-not-present"]).output().unwrap();
    ok(&env, &out);
}
