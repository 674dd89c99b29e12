//! Registry faults, injected by a loopback proxy (`cnbx_testkit::faults`) between cnbx and a
//! real `docker-registry`: error statuses, connections dropped mid-upload, stalls. cnbx must
//! retry a bounded number of times, give up within a bounded time with a message naming the
//! registry, and a run after the fault is gone must succeed, uploading only what is missing.

#![allow(clippy::unwrap_used)]

mod common;
mod reliability_support;

use std::path::PathBuf;
use std::process::Output;
use std::time::{Duration, Instant};

use cnbx_testkit::Registry;
use cnbx_testkit::faults::{Fault, FaultProxy, Rule};
use common::{Env, stderr};
use reliability_support::MIB;

const TIMEOUT: Duration = Duration::from_secs(300);

struct Setup {
    registry: Registry,
    proxy: FaultProxy,
    env: Env,
    config: PathBuf,
}

/// A registry holding the offline base images, a proxy in front of it, and a builder.toml
/// naming the base images through the proxy, with a lifecycle and a buildpack large enough
/// (over 1 MiB each, compressed) to be cut off mid-upload.
fn setup() -> Option<Setup> {
    for (tool, package) in [("docker-registry", "docker-registry"), ("skopeo", "skopeo")] {
        if cnbx_testkit::require_tool(tool, package).is_err() {
            return None;
        }
    }
    let registry = Registry::start().unwrap();
    common::push_base_images(&registry);
    let proxy = FaultProxy::start(registry.port()).unwrap();
    let env = Env::new();
    let config = reliability_support::big_builder(&env, 4, &[4], "");
    let host = proxy.host();
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("cnbx.test/build:jammy", &format!("{host}/build:jammy"))
        .replace("cnbx.test/run:jammy", &format!("{host}/run:jammy"));
    let config = env.write("registry.toml", &text);
    Some(Setup { registry, proxy, env, config })
}

impl Setup {
    fn target(&self) -> String {
        format!("{}/team/builder:1", self.proxy.host())
    }

    fn publish(&self, stall: &str) -> (Output, Duration) {
        let start = Instant::now();
        let out = self
            .env
            .cmd()
            .env("CNBX_REGISTRY_STALL_TIMEOUT", stall)
            .args(["builder", "create", &self.target(), "--config", self.config.to_str().unwrap(), "--publish"])
            .timeout(TIMEOUT)
            .output()
            .unwrap();
        (out, start.elapsed())
    }

    /// The pushed builder, read by skopeo straight from the registry (not through the proxy).
    fn pushed(&self) -> serde_json::Value {
        cnbx_testkit::skopeo_raw(&self.registry.docker_ref("team/builder:1"), &["--tls-verify=false"]).unwrap()
    }
}

/// `(uploaded, mounted, already present)` from the push summary.
fn push_counts(out: &Output) -> (usize, usize, usize) {
    let text = stderr(out);
    let line = text.lines().find(|l| l.starts_with("Pushed ")).unwrap_or_else(|| panic!("no summary in {text}"));
    let numbers: Vec<usize> =
        line.split(|c: char| !c.is_ascii_digit()).filter(|s| !s.is_empty()).map(|s| s.parse().unwrap()).collect();
    (numbers[0], numbers[1], numbers[2])
}

#[test]
fn server_errors_are_retried() {
    let Some(s) = setup() else { return };
    s.proxy.add(Rule::new("PUT", "/blobs/uploads/", Fault::Status(500)).times(2));
    s.proxy.add(Rule::new("HEAD", "/blobs/", Fault::Status(503)).times(1));
    s.proxy.add(Rule::new("GET", "/manifests/", Fault::Status(502)).times(1));
    let (out, _) = s.publish("60");
    assert!(out.status.success(), "{}", s.env.format(&out));
    assert_eq!(s.proxy.injected(), 4);
    assert_eq!(s.pushed()["mediaType"], "application/vnd.oci.image.manifest.v1+json");
}

#[test]
fn a_connection_dropped_mid_upload_fails_the_push_and_a_rerun_uploads_only_what_is_missing() {
    let Some(s) = setup() else { return };
    // Every upload of more than 1 MiB is cut off after 256 KiB, on every attempt.
    s.proxy.add(Rule::new("PUT", "/blobs/uploads/", Fault::DropAfter(256 * 1024)).min_body(MIB));
    let (failed, took) = s.publish("60");
    assert_eq!(failed.status.code(), Some(1), "{}", s.env.format(&failed));
    assert!(stderr(&failed).contains(&s.proxy.host()), "{}", s.env.format(&failed));
    assert!(took < Duration::from_secs(120), "gave up after {took:?}");
    let cut = s.proxy.injected();
    assert!(cut >= 4, "retried: {cut} cut-off uploads");
    assert!(
        cnbx_testkit::skopeo_raw(&s.registry.docker_ref("team/builder:1"), &["--tls-verify=false"]).is_err(),
        "no tag without all its blobs"
    );

    s.proxy.clear();
    let (out, _) = s.publish("60");
    assert!(out.status.success(), "{}", s.env.format(&out));
    let manifest = s.pushed();
    let layers = manifest["layers"].as_array().unwrap();
    let big = layers.iter().filter(|l| l["size"].as_u64().unwrap() >= MIB).count();
    assert!(big >= 2, "{manifest}");
    let (uploaded, mounted, present) = push_counts(&out);
    assert_eq!(uploaded, big, "only the blobs the failed push could not upload: {}", s.env.format(&out));
    assert_eq!(uploaded + mounted + present, layers.len() + 1, "every layer and the config");
    let blobs = s.registry.blob_count();
    let (again, _) = s.publish("60");
    assert!(again.status.success(), "{}", s.env.format(&again));
    assert_eq!(push_counts(&again).0, 0);
    assert_eq!(s.registry.blob_count(), blobs);
}

#[test]
fn stalls_are_bounded_by_the_stall_timeout() {
    let Some(s) = setup() else { return };
    // An upload that stops moving after 128 KiB, and a manifest request never answered.
    s.proxy.add(Rule::new("PUT", "/blobs/uploads/", Fault::StallAfter(128 * 1024)).min_body(MIB));
    let (out, took) = s.publish("1s");
    assert_eq!(out.status.code(), Some(1), "{}", s.env.format(&out));
    assert!(stderr(&out).contains("CNBX_REGISTRY_STALL_TIMEOUT"), "{}", s.env.format(&out));
    assert!(took < Duration::from_secs(60), "a 1 s stall timeout gave up after {took:?}");

    s.proxy.clear();
    s.proxy.add(Rule::new("GET", "/manifests/", Fault::StallAfter(0)));
    let (out, took) = s.publish("500ms");
    assert_eq!(out.status.code(), Some(1), "{}", s.env.format(&out));
    assert!(stderr(&out).contains("no answer"), "{}", s.env.format(&out));
    assert!(took < Duration::from_secs(60), "gave up after {took:?}");

    s.proxy.clear();
    let (out, _) = s.publish("60");
    assert!(out.status.success(), "{}", s.env.format(&out));
    assert_eq!(s.pushed()["mediaType"], "application/vnd.oci.image.manifest.v1+json");
}

#[test]
fn pulls_survive_dropped_downloads() {
    let Some(s) = setup() else { return };
    // The base image's blobs: the first two downloads are cut off.
    s.proxy.add(Rule::new("GET", "/blobs/sha256:", Fault::DropAfter(0)).times(2));
    let out = s
        .env
        .cmd()
        .args(["builder", "create", "oci:out:latest", "--config", s.config.to_str().unwrap()])
        .timeout(TIMEOUT)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", s.env.format(&out));
    assert_eq!(s.proxy.injected(), 2);
    let store = s.env.home.path().join("store");
    assert!(reliability_support::layout_problems(&store).is_empty());
    assert!(reliability_support::layout_problems(&s.env.work.path().join("out")).is_empty());
}
