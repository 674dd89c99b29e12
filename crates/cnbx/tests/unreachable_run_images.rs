//! `builder create --allow-unreachable-run-images`: run images and mirrors on registries this
//! machine cannot reach (a loopback port nothing listens on, a name that does not resolve, a
//! registry that never answers) are recorded as given, each with one warning naming the rules
//! left unchecked; without the flag the create fails as before; and a registry that answers is
//! checked as always (401, an image for another platform, an image it does not have).

#![allow(clippy::unwrap_used)]

mod common;

use std::net::TcpListener;
use std::process::Output;

use common::{Env, assert_ok, push_base_images, stderr};
use serde_json::Value;

fn require_tools() {
    for (tool, package) in [("skopeo", "skopeo"), ("umoci", "umoci"), ("docker-registry", "docker-registry")] {
        cnbx_testkit::require_tool(tool, package).unwrap();
    }
}

/// A loopback port nothing listens on (bound, then closed).
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A loopback port that accepts connections and never answers, for as long as the listener
/// lives.
fn silent_port() -> (TcpListener, u16) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepting = listener.try_clone().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in accepting.incoming() {
            match stream {
                Ok(s) => held.push(s),
                Err(_) => break,
            }
        }
    });
    (listener, port)
}

fn create(env: &Env, args: &[&str]) -> Output {
    env.cmd().args(["builder", "create"]).args(args).output().unwrap()
}

/// The `Warning:` lines of a command's stderr.
fn warnings(out: &Output) -> Vec<String> {
    stderr(out).lines().filter(|l| l.starts_with("Warning: ")).map(str::to_owned).collect()
}

fn labels_of(layout: &str) -> Value {
    let config = cnbx_testkit::skopeo_config(layout, &[]).unwrap();
    config["config"]["Labels"].clone()
}

fn metadata(labels: &Value) -> Value {
    serde_json::from_str(labels["io.buildpacks.builder.metadata"].as_str().unwrap()).unwrap()
}

#[test]
fn a_refused_connection_fails_without_the_flag_and_is_recorded_with_it() {
    require_tools();
    let env = Env::with_test_images();
    let port = closed_port();
    let run = format!("127.0.0.1:{port}/stacks/run:jammy");
    let mirror = format!("127.0.0.1:{port}/mirror/run:jammy");
    let config = common::images::config(&env, "cnbx.test/build:jammy", &run, Some(&mirror), "");
    let config = config.to_str().unwrap();

    // Without the flag: as before, the run image that cannot be fetched is an error, and
    // nothing is written.
    let out = create(&env, &["oci:out", "--config", config]);
    assert_eq!(out.status.code(), Some(1), "{}", env.format(&out));
    let err = stderr(&out);
    assert!(err.contains(&format!("ERROR: invalid run image config: failed to fetch image '{run}'")), "{err}");
    assert!(err.contains(&format!("cannot connect to 127.0.0.1:{port}")), "{err}");
    assert!(!env.work.path().join("out").exists());

    // With it: the builder is written for both targets; one warning per image, however many
    // targets, naming it and every run-image rule that was not checked.
    let out = create(&env, &["oci:out", "--config", config, "--allow-unreachable-run-images"]);
    assert_ok(&env, &out);
    let warnings = warnings(&out);
    assert_eq!(warnings.len(), 2, "{}", env.format(&out));
    insta::assert_snapshot!(warnings.join("\n").replace(&port.to_string(), "[PORT]"), @"
    Warning: run image '127.0.0.1:[PORT]/stacks/run:jammy' cannot be reached from here (its registry refused the connection); it is written into the builder as given and taken to be for the build image's platform, and these checks were not made for it: RUN-ENV-PATH, RUN-LABEL-BASE-MAINTAINER, RUN-LABEL-BASE-HOMEPAGE, RUN-LABEL-BASE-RELEASED, RUN-LABEL-BASE-DESCRIPTION, RUN-LABEL-BASE-METADATA, RUN-LABEL-REBASABLE, RUN-LABEL-TARGET-ID, RUN-USER-ROOT, RUN-USER-EXISTS, RUN-USER-DIFFERENT, LEGACY-RUN-USER-SAME, BOTH-OS-ARCH-VALID, BOTH-VARIANT-VALID, BOTH-DISTRO-LABELS, BOTH-ENV-DUPLICATE, BOTH-ENV-SYNTAX, PAIR-TARGET-MATCH, RUNTOML-MIRROR-SAME-ID, RUNTOML-UNIQUE-REGISTRY, LEGACY-LABEL-STACK-ID, LEGACY-LABEL-MIXINS, LEGACY-MIXIN-NAME, LEGACY-PAIR-STACK-ID, LEGACY-PAIR-MIXINS, LEGACY-LABEL-STACK-DESCRIPTIVE
    Warning: run image mirror '127.0.0.1:[PORT]/mirror/run:jammy' cannot be reached from here (its registry refused the connection); it is written into the builder as given and taken to be for the build image's platform, and these checks were not made for it: RUN-ENV-PATH, RUN-LABEL-BASE-MAINTAINER, RUN-LABEL-BASE-HOMEPAGE, RUN-LABEL-BASE-RELEASED, RUN-LABEL-BASE-DESCRIPTION, RUN-LABEL-BASE-METADATA, RUN-LABEL-REBASABLE, RUN-LABEL-TARGET-ID, RUN-USER-ROOT, RUN-USER-EXISTS, RUN-USER-DIFFERENT, LEGACY-RUN-USER-SAME, BOTH-OS-ARCH-VALID, BOTH-VARIANT-VALID, BOTH-DISTRO-LABELS, BOTH-ENV-DUPLICATE, BOTH-ENV-SYNTAX, PAIR-TARGET-MATCH, RUNTOML-MIRROR-SAME-ID, RUNTOML-UNIQUE-REGISTRY, LEGACY-LABEL-STACK-ID, LEGACY-LABEL-MIXINS, LEGACY-MIXIN-NAME, LEGACY-PAIR-STACK-ID, LEGACY-PAIR-MIXINS, LEGACY-LABEL-STACK-DESCRIPTIVE
    ");

    // The names are written exactly as given, in the labels and in /cnb/run.toml and
    // /cnb/stack.toml, for both platforms (each the build image's).
    let layout = env.work.path().join("out");
    for arch in ["amd64", "arm64"] {
        let image = format!("oci:{}:latest", layout.display());
        let config = cnbx_testkit::skopeo_config(&image, &["--override-arch", arch]).unwrap();
        assert_eq!(config["architecture"], arch);
        let meta = metadata(&config["config"]["Labels"]);
        assert_eq!(meta["images"], serde_json::json!([{"image": run, "mirrors": [mirror]}]));
    }
    // The files, as umoci unpacks them (from a copy of the linux/amd64 image: umoci unpacks
    // manifests, not indexes).
    let single = env.work.path().join("single");
    cnbx_testkit::skopeo(&[
        "copy",
        "--override-arch",
        "amd64",
        &format!("oci:{}:latest", layout.display()),
        &format!("oci:{}:latest", single.display()),
    ])
    .unwrap();
    let rootfs = cnbx_testkit::umoci_unpack(&single, "latest", &env.work.path().join("bundle")).unwrap();
    assert_eq!(
        std::fs::read_to_string(rootfs.join("cnb/run.toml")).unwrap(),
        format!("[[images]]\n  image = \"{run}\"\n  mirrors = [\"{mirror}\"]\n")
    );
    assert_eq!(
        std::fs::read_to_string(rootfs.join("cnb/stack.toml")).unwrap(),
        format!("[run-image]\n  image = \"{run}\"\n  mirrors = [\"{mirror}\"]\n")
    );
}

#[test]
fn names_that_do_not_resolve_and_registries_that_never_answer_are_unreachable() {
    require_tools();
    let env = Env::with_test_images();
    let (_listener, port) = silent_port();
    let run = "registry.cnbx.invalid/stacks/run:jammy";
    let mirror = format!("127.0.0.1:{port}/stacks/run:jammy");
    let config = common::images::config(&env, "cnbx.test/build:jammy", run, Some(&mirror), "");
    let config = config.to_str().unwrap();
    let timeouts = |cmd: &mut assert_cmd::Command| {
        cmd.env("CNBX_REGISTRY_CONNECT_TIMEOUT", "300ms").env("CNBX_REGISTRY_STALL_TIMEOUT", "300ms");
    };

    let mut cmd = env.cmd();
    timeouts(&mut cmd);
    let out =
        cmd.args(["builder", "create", "oci:out", "--config", config, "--target", "linux/amd64"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", env.format(&out));
    assert!(
        stderr(&out).contains(&format!("ERROR: invalid run image config: failed to fetch image '{run}'")),
        "{}",
        env.format(&out)
    );

    let mut cmd = env.cmd();
    timeouts(&mut cmd);
    let out = cmd
        .args(["builder", "create", "oci:out", "--config", config, "--target", "linux/amd64"])
        .arg("--allow-unreachable-run-images")
        .output()
        .unwrap();
    assert_ok(&env, &out);
    let warnings = warnings(&out);
    assert_eq!(warnings.len(), 2, "{}", env.format(&out));
    assert!(
        warnings[0].starts_with(&format!(
            "Warning: run image '{run}' cannot be reached from here (its registry's name does not resolve)"
        )),
        "{warnings:?}"
    );
    assert!(
        warnings[1].starts_with(&format!(
            "Warning: run image mirror '{mirror}' cannot be reached from here (its registry did not answer in time)"
        )),
        "{warnings:?}"
    );
    let meta = metadata(&labels_of(&format!("oci:{}:latest", env.work.path().join("out").display())));
    assert_eq!(meta["images"], serde_json::json!([{"image": run, "mirrors": [mirror]}]));
}

#[test]
fn with_publish_too() {
    require_tools();
    let registry = cnbx_testkit::Registry::start().unwrap();
    push_base_images(&registry);
    let env = Env::new();
    let port = closed_port();
    let run = format!("127.0.0.1:{port}/stacks/run:jammy");
    let build = format!("{}/build:jammy", registry.host());
    let config = common::images::config(&env, &build, &run, None, "");
    let config = config.to_str().unwrap();
    let target = format!("{}/team/builder:1", registry.host());
    let args = ["builder", "create", &target, "--config", config, "--publish", "--target", "linux/amd64"];

    let out = env.cmd().args(args).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", env.format(&out));
    assert!(
        stderr(&out).contains(&format!("ERROR: invalid run image config: failed to fetch image '{run}'")),
        "{}",
        env.format(&out)
    );
    assert!(cnbx_testkit::skopeo_raw(&registry.docker_ref("team/builder:1"), &["--tls-verify=false"]).is_err());

    let out = env.cmd().args(args).arg("--allow-unreachable-run-images").output().unwrap();
    assert_ok(&env, &out);
    assert_eq!(warnings(&out).len(), 1, "{}", env.format(&out));
    let config = cnbx_testkit::skopeo_config(&registry.docker_ref("team/builder:1"), &["--tls-verify=false"]).unwrap();
    let meta = metadata(&config["config"]["Labels"]);
    assert_eq!(meta["images"], serde_json::json!([{"image": run, "mirrors": []}]));
    assert_eq!(config["architecture"], "amd64");
}

#[test]
fn registries_that_answer_are_checked_as_always() {
    require_tools();
    let env = Env::with_test_images();
    let flag = "--allow-unreachable-run-images";

    // 401: the registry answers, so it is reachable; the credentials are what is missing.
    let locked = cnbx_testkit::Registry::start_with_basic_auth("user", "secret").unwrap();
    let run = format!("{}/stacks/run:jammy", locked.host());
    let config = common::images::config(&env, "cnbx.test/build:jammy", &run, None, "");
    let config = config.to_str().unwrap();
    let out = create(&env, &["oci:out", "--config", config, "--target", "linux/amd64", flag]);
    assert_eq!(out.status.code(), Some(1), "{}", env.format(&out));
    assert!(stderr(&out).contains("authentication required"), "{}", env.format(&out));
    assert!(warnings(&out).iter().all(|w| !w.contains("cannot be reached")), "{}", env.format(&out));

    // An image for another platform: the pair rule fails the create, as without the flag.
    let registry = cnbx_testkit::Registry::start().unwrap();
    let store = common::workspace_root().join("testdata/cnbx-home/store");
    cnbx_testkit::skopeo(&[
        "copy",
        "--override-arch",
        "arm64",
        "--dest-tls-verify=false",
        &format!("oci:{}:cnbx.test/run:jammy", store.display()),
        &registry.docker_ref("arm-only/run:jammy"),
    ])
    .unwrap();
    let run = format!("{}/arm-only/run:jammy", registry.host());
    let config = common::images::config(&env, "cnbx.test/build:jammy", &run, None, "");
    let config = config.to_str().unwrap();
    let out = create(&env, &["oci:out", "--config", config, "--target", "linux/amd64", flag]);
    assert_eq!(out.status.code(), Some(1), "{}", env.format(&out));
    assert!(stderr(&out).contains("PAIR-TARGET-MATCH"), "{}", env.format(&out));

    // An image the registry does not have: pack's warning, as without the flag.
    let missing = format!("{}/nothing/here:1", registry.host());
    let config = common::images::config(&env, "cnbx.test/build:jammy", &missing, None, "");
    let config = config.to_str().unwrap();
    let out = create(&env, &["oci:missing", "--config", config, "--target", "linux/amd64", flag]);
    assert_ok(&env, &out);
    assert_eq!(warnings(&out), [format!("Warning: run image '{missing}' is not accessible")]);
}
