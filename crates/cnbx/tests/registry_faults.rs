//! Registry faults, injected by a loopback proxy (`cnbx_testkit::faults`) between cnbx and a
//! real `docker-registry`: error statuses, connections dropped mid-upload, stalls, endless
//! bodies. cnbx must retry a bounded number of times, give up within a bounded time (and
//! bounded memory) with a message naming the registry, and a run after the fault is gone must
//! succeed, uploading only what is missing. Also the other network reads (`http(s)`
//! downloads) and the Docker config's credential helpers, which cnbx runs.

#![allow(clippy::unwrap_used)]

mod common;
mod reliability_support;

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use cnbx_testkit::Registry;
use cnbx_testkit::faults::{Fault, FaultProxy, Peer, Reply, Rule};
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

/// The layer digests of `repo_tag` on `registry` (of every platform of an index).
fn layer_digests(registry: &Registry, repo_tag: &str) -> Vec<String> {
    let tls = ["--tls-verify=false"];
    let raw = cnbx_testkit::skopeo_raw(&registry.docker_ref(repo_tag), &tls).unwrap();
    let repo = repo_tag.split(':').next().unwrap();
    let manifests = match raw["manifests"].as_array() {
        Some(list) => list
            .iter()
            .map(|m| {
                let by_digest = format!("{repo}@{}", m["digest"].as_str().unwrap());
                cnbx_testkit::skopeo_raw(&registry.docker_ref(&by_digest), &tls).unwrap()
            })
            .collect(),
        None => vec![raw],
    };
    manifests
        .iter()
        .flat_map(|m| m["layers"].as_array().unwrap().iter().map(|l| l["digest"].as_str().unwrap().to_owned()))
        .collect()
}

/// Adds `fault` for every layer blob of the build and run images.
fn fault_base_layers(s: &Setup, fault: &Fault) {
    for repo in ["build:jammy", "run:jammy"] {
        for digest in layer_digests(&s.registry, repo) {
            s.proxy.add(Rule::new("GET", &format!("/blobs/{digest}"), fault.clone()));
        }
    }
}

/// Runs cnbx in `env` with `args` (and `vars` set), killed after 100 s; returns what it
/// printed, how long it took, and its peak resident set size in KiB (GNU time's `%M`).
fn run_measured(env: &Env, args: &[&str], vars: &[(&str, &str)]) -> (Output, Duration, u64) {
    cnbx_testkit::require_tool("time", "time").unwrap();
    cnbx_testkit::require_tool("timeout", "coreutils").unwrap();
    let rss_file = env.work.path().join("peak-rss");
    let mut cmd = Command::new("/usr/bin/time");
    // `timeout` kills cnbx itself (GNU time reports the largest of its descendants).
    cmd.arg("-f").arg("%M").arg("-o").arg(&rss_file).args(["timeout", "-s", "KILL", "100"]);
    cmd.arg(assert_cmd::cargo::cargo_bin("cnbx")).args(args);
    cmd.envs(env.vars())
        .current_dir(env.work.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (name, value) in vars {
        cmd.env(name, value);
    }
    let start = Instant::now();
    let out = reliability_support::wait_bounded(cmd.spawn().unwrap(), Duration::from_secs(120));
    let took = start.elapsed();
    let rss = std::fs::read_to_string(&rss_file).unwrap();
    let rss = rss.lines().last().unwrap().trim().parse().unwrap();
    (out, took, rss)
}

/// A base image whose layers stall (after the answer's head and 100 bytes, or before any
/// answer) fails `base-image check` and the validation of `builder create --publish` within
/// the stall timeout, naming the registry and the variable.
#[test]
fn base_layer_streams_are_bounded_by_the_stall_timeout() {
    let Some(s) = setup() else { return };
    for fault in [Fault::StallAnswerAfter(100), Fault::StallAfter(0)] {
        s.proxy.clear();
        fault_base_layers(&s, &fault);
        let build = format!("{}/build:jammy", s.proxy.host());
        let target = s.target();
        let checks = [
            vec!["base-image", "check", "--build", &build, "--target", "linux/amd64"],
            vec!["builder", "create", &target, "--publish", "--config", s.config.to_str().unwrap()],
        ];
        for args in checks {
            let (out, took, _) = run_measured(&s.env, &args, &[("CNBX_REGISTRY_STALL_TIMEOUT", "1s")]);
            let text = s.env.format(&out);
            assert_eq!(out.status.code(), Some(1), "{fault:?} {args:?}: {text}");
            assert!(stderr(&out).contains("CNBX_REGISTRY_STALL_TIMEOUT"), "{fault:?} {args:?}: {text}");
            assert!(stderr(&out).contains(&s.proxy.host()), "{fault:?} {args:?}: {text}");
            assert!(took < Duration::from_secs(60), "{fault:?} {args:?}: gave up after {took:?}");
        }
    }
}

/// Endless bodies on a layer's error answer, an upload's error answer, and a token
/// service's answer: cnbx reads a bounded part of each, and its memory stays small.
#[test]
fn endless_answers_leave_memory_bounded() {
    let Some(s) = setup() else { return };
    let build = format!("{}/build:jammy", s.proxy.host());
    let check = ["base-image", "check", "--build", build.as_str(), "--target", "linux/amd64"];
    let target = s.target();
    let publish = ["builder", "create", target.as_str(), "--publish", "--config", s.config.to_str().unwrap()];
    let realm = format!(r#"Bearer realm="http://{}/token",service="cnbx-test""#, s.proxy.host());
    let cases: Vec<(&str, Vec<Rule>, &[&str])> = vec![
        ("layer answered 500", vec![], &check),
        (
            "upload answered 500",
            vec![Rule::new("PUT", "/blobs/uploads/", Fault::Reply(Reply::endless(500))).min_body(MIB)],
            &publish,
        ),
        (
            "token service answer",
            vec![
                Rule::new("GET", "/v2/", Fault::Reply(Reply::new(401).header("WWW-Authenticate", &realm))).exact(),
                Rule::new("GET", "/token", Fault::Reply(Reply::endless(200))),
            ],
            &check,
        ),
    ];
    for (what, rules, args) in cases {
        s.proxy.clear();
        if rules.is_empty() {
            fault_base_layers(&s, &Fault::Reply(Reply::endless(500)));
        }
        for rule in rules {
            s.proxy.add(rule);
        }
        let before = s.proxy.endless_sent();
        let (out, took, rss) = run_measured(&s.env, args, &[("CNBX_REGISTRY_STALL_TIMEOUT", "2s")]);
        let sent = s.proxy.endless_sent() - before;
        eprintln!("{what}: exit {:?} after {took:?}, peak RSS {rss} KiB, {} KiB sent", out.status.code(), sent >> 10);
        assert_eq!(out.status.code(), Some(1), "{what}: {}", s.env.format(&out));
        assert!(stderr(&out).contains(&s.proxy.host()), "{what}: {}", s.env.format(&out));
        assert!(rss < 200 * 1024, "{what}: peak RSS {rss} KiB");
        assert!(sent < 64 * MIB, "{what}: the proxy could send {sent} bytes");
    }
}

/// `http(s)` buildpack downloads from a server that never answers, or answers and stalls,
/// or cannot be reached, end within the timeouts with a message naming the URL.
#[test]
fn downloads_are_bounded_by_the_connect_and_stall_timeouts() {
    let env = Env::with_test_images();
    for reply in [Reply::silent(), Reply::stall_after(200, vec![0x1f; 100])] {
        let peer = Peer::start(IpAddr::from([127, 0, 0, 1]), reply.clone()).unwrap();
        let url = format!("http://{}/hello-moon.tgz", peer.host());
        let config = common::example_config(&env, "");
        let text = std::fs::read_to_string(&config).unwrap();
        let text =
            text.replace(&format!("{}/testdata/buildpacks/hello-moon.tgz", common::workspace_root().display()), &url);
        assert!(text.contains(&url));
        let config = env.write("download.toml", &text);
        let (out, took, _) = run_measured(
            &env,
            &["builder", "create", "oci:out", "--config", config.to_str().unwrap()],
            &[("CNBX_REGISTRY_STALL_TIMEOUT", "1s")],
        );
        let text = env.format(&out);
        assert_eq!(out.status.code(), Some(1), "{reply:?}: {text}");
        assert!(stderr(&out).contains(&url), "{reply:?}: {text}");
        assert!(stderr(&out).contains("CNBX_REGISTRY_STALL_TIMEOUT"), "{reply:?}: {text}");
        assert!(took < Duration::from_secs(60), "{reply:?}: gave up after {took:?}");
        assert!(!peer.requests().is_empty());
    }
    // A redirect to another host in clear text is refused before connecting there.
    if let Some(ip) = cnbx_testkit::faults::non_loopback_ipv4() {
        let elsewhere = Peer::start(ip, Reply::new(200).body("not a buildpack")).unwrap();
        let target = format!("http://{}/hello-moon.tgz", elsewhere.host());
        let peer = Peer::start(IpAddr::from([127, 0, 0, 1]), Reply::redirect(302, &target)).unwrap();
        let url = format!("http://{}/hello-moon.tgz", peer.host());
        let config = common::example_config(&env, "");
        let text = std::fs::read_to_string(&config).unwrap();
        let text =
            text.replace(&format!("{}/testdata/buildpacks/hello-moon.tgz", common::workspace_root().display()), &url);
        let config = env.write("redirected.toml", &text);
        let (out, _, _) =
            run_measured(&env, &["builder", "create", "oci:out", "--config", config.to_str().unwrap()], &[]);
        let text = env.format(&out);
        assert_eq!(out.status.code(), Some(1), "{text}");
        assert!(stderr(&out).contains(&format!("refusing a redirect to {target}")), "{text}");
        assert_eq!(elsewhere.connections(), 0, "{text}");
    } else {
        eprintln!("skipping the redirect: this machine has no non-loopback IPv4 address");
    }
    // An address that does not answer (a documentation range, routed but not answering):
    // the connect timeout.
    let routed = Command::new("ip").args(["route", "get", "198.51.100.7"]).output().is_ok_and(|o| o.status.success());
    if !routed {
        eprintln!("skipping the connect timeout: no route to 198.51.100.7 here");
        return;
    }
    let url = "http://198.51.100.7:9/hello-moon.tgz";
    let config = common::example_config(&env, "");
    let text = std::fs::read_to_string(&config).unwrap();
    let text = text.replace(&format!("{}/testdata/buildpacks/hello-moon.tgz", common::workspace_root().display()), url);
    let config = env.write("unreachable.toml", &text);
    let (out, took, _) = run_measured(
        &env,
        &["builder", "create", "oci:out", "--config", config.to_str().unwrap()],
        &[("CNBX_REGISTRY_CONNECT_TIMEOUT", "1s")],
    );
    let text = env.format(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(stderr(&out).contains(url), "{text}");
    assert!(took < Duration::from_secs(60), "gave up after {took:?}");
}

/// A credential helper name that is a path (`x/evil`) is refused, naming the Docker config
/// and the key; the program at that path is never run.
#[test]
fn credential_helpers_named_like_paths_are_refused_and_never_run() {
    let env = Env::new();
    let evil = env.work.path().join("docker-credential-x");
    std::fs::create_dir_all(&evil).unwrap();
    let marker = env.work.path().join("ran");
    std::fs::write(evil.join("evil"), format!("#!/bin/sh\ntouch {}\n", marker.display())).unwrap();
    std::fs::set_permissions(evil.join("evil"), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let docker = env.home.path().join("docker");
    std::fs::create_dir_all(&docker).unwrap();
    for (key, config) in [
        (r#"credHelpers"#, r#"{"credHelpers":{"127.0.0.1:9":"x/evil"}}"#),
        (r#"credsStore"#, r#"{"credsStore":"x/evil"}"#),
    ] {
        std::fs::write(docker.join("config.json"), config).unwrap();
        let out = env
            .cmd()
            .args(["base-image", "check", "--config-only", "--build", "127.0.0.1:9/base:1"])
            .timeout(Duration::from_secs(60))
            .output()
            .unwrap();
        let text = env.format(&out);
        assert_eq!(out.status.code(), Some(1), "{text}");
        assert!(stderr(&out).contains(&docker.join("config.json").display().to_string()), "{text}");
        assert!(stderr(&out).contains(key) && stderr(&out).contains("x/evil"), "{text}");
        assert!(!marker.exists(), "cnbx ran docker-credential-x/evil ({key})");
    }
}
