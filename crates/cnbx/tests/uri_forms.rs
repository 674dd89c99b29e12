//! `builder create` with every `uri` form pack accepts: a directory, a `.tgz` by relative
//! path and by `file://`, an `http://` download, a buildpackage on a real registry
//! (`docker://`), in an OCI layout (`oci:`) and as a `.cnb` file. Buildpackage layers must be
//! reused byte for byte (same blob digest), and mounted when the builder is published to the
//! package's registry.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};

use cnbx_oci::layer::{LayerRecipe, build_layer};
use cnbx_oci::progress::NullReporter;
use cnbx_oci::spec::{Platform, media_type};
use cnbx_oci::tarball::TarEntry;
use cnbx_oci::{BlobStore, ImageConfig, ImageToWrite, OciLayout};
use common::{Env, tree, workspace_root};
use serde_json::Value;

const PKG_ID: &str = "samples/hello-mars";
const BUILD_SH: &str = "#!/bin/sh\necho hello mars\n";
const DESCRIPTOR: &str = "api = \"0.10\"\n\n[buildpack]\n  id = \"samples/hello-mars\"\n  version = \"0.0.1\"\n  name = \"Hello Mars\"\n\n[[targets]]\n  os = \"linux\"\n  arch = \"amd64\"\n";

/// A buildpackage (one buildpack, `samples/hello-mars@0.0.1`) as an OCI layout at `dir`,
/// tagged `latest`. Returns the digest of its one layer blob.
fn write_buildpackage(dir: &Path) -> String {
    let blobs_dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(blobs_dir.path()).unwrap();
    let base = "/cnb/buildpacks/samples_hello-mars";
    let mut r = LayerRecipe::new("hello-mars");
    r.push_header(TarEntry::dir(base));
    r.push_header(TarEntry::dir(format!("{base}/0.0.1")));
    r.push_header(TarEntry::dir(format!("{base}/0.0.1/bin")));
    for bin in ["build", "detect"] {
        r.push_bytes(
            TarEntry::file(format!("{base}/0.0.1/bin/{bin}"), BUILD_SH.len() as u64).with_mode(0o755),
            BUILD_SH,
        );
    }
    r.push_bytes(TarEntry::file(format!("{base}/0.0.1/buildpack.toml"), DESCRIPTOR.len() as u64), DESCRIPTOR);
    let info = build_layer(&r, &store, &NullReporter).unwrap();
    let platform = Platform::new("linux", "amd64", None);
    let mut config = ImageConfig::new(&platform);
    config.push_diff_id(&info.diff_id);
    config.set_label(
        "io.buildpacks.buildpackage.metadata",
        r#"{"id":"samples/hello-mars","version":"0.0.1","name":"Hello Mars"}"#,
    );
    config.set_label(
        "io.buildpacks.buildpack.layers",
        &format!(
            r#"{{"samples/hello-mars":{{"0.0.1":{{"api":"0.10","targets":[{{"os":"linux","arch":"amd64"}}],"layerDiffID":"{}","name":"Hello Mars"}}}}}}"#,
            info.diff_id
        ),
    );
    let image = ImageToWrite {
        manifest_media_type: media_type::OCI_MANIFEST.into(),
        config_media_type: media_type::OCI_CONFIG.into(),
        config: config.to_raw(),
        layers: vec![info.to_layer_blob(&store)],
        platform,
        annotations: None,
    };
    OciLayout::create(dir).unwrap().write("latest", &[image]).unwrap();
    info.descriptor.digest.to_string()
}

/// Serves `file` over HTTP on a loopback port for `requests` requests; returns the URL.
fn serve_once(file: PathBuf, requests: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(requests) {
            let mut stream = stream.unwrap();
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let body = std::fs::read(&file).unwrap();
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nETag: \"v1\"\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body);
        }
    });
    format!("http://127.0.0.1:{port}/hello-universe.tgz")
}

/// The real tools these tests use; a missing one fails the test with the command that installs
/// it (`make test` installs them), so that a green run always means they were exercised.
fn require_tools() {
    for (tool, package) in [("skopeo", "skopeo"), ("docker-registry", "docker-registry"), ("tar", "tar")] {
        cnbx_testkit::require_tool(tool, package).unwrap();
    }
}

fn layer_digests(raw: &Value) -> Vec<String> {
    raw["layers"].as_array().unwrap().iter().map(|l| l["digest"].as_str().unwrap().to_owned()).collect()
}

/// The buildpackage in all three package forms (an OCI layout and a `.cnb` file under `work`,
/// `pkgs/hello-mars:1` on a registry that also holds the offline base images as `build:jammy`
/// and `run:jammy`).
struct Packages {
    layout: PathBuf,
    cnb: PathBuf,
    /// The digest of its one layer blob.
    pkg_blob: String,
    registry: cnbx_testkit::Registry,
}

fn packages(work: &Path) -> Packages {
    let layout = work.join("pkg-layout");
    let pkg_blob = write_buildpackage(&layout);
    let cnb = work.join("hello-mars.cnb");
    let status =
        std::process::Command::new("tar").arg("-cf").arg(&cnb).arg("-C").arg(&layout).arg(".").status().unwrap();
    assert!(status.success());
    let registry = cnbx_testkit::Registry::start().unwrap();
    cnbx_testkit::skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        &format!("oci:{}:latest", layout.display()),
        &registry.docker_ref("pkgs/hello-mars:1"),
    ])
    .unwrap();
    common::push_base_images(&registry);
    Packages { layout, cnb, pkg_blob, registry }
}

#[test]
fn every_uri_form_and_buildpackages_reused_byte_for_byte() {
    require_tools();
    let env = Env::with_test_images();
    let work = env.work.path();
    let repo = workspace_root();
    let testdata = repo.join("testdata");

    let Packages { layout, cnb, pkg_blob, registry } = packages(work);
    let host = registry.host();

    // hello-universe (a composite) served over HTTP as a .tgz.
    let universe_tgz = work.join("hello-universe.tgz");
    let status = std::process::Command::new("tar")
        .arg("-czf")
        .arg(&universe_tgz)
        .arg("-C")
        .arg(testdata.join("buildpacks/hello-universe"))
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success());
    let url = serve_once(universe_tgz, 1);

    // hello-world as a directory next to builder.toml (relative uri), hello-moon by file://.
    common::copy_dir(&testdata.join("buildpacks/hello-world"), &work.join("bps/hello-world"));
    let toml = |package_uri: &str, build: &str, run: &str| {
        format!(
            r#"[[buildpacks]]
  uri = "bps/hello-world"
[[buildpacks]]
  uri = "file://{moon}"
[[buildpacks]]
  uri = "{url}"
[[buildpacks]]
  uri = "{package_uri}"
[[order]]
  [[order.group]]
    id = "samples/hello-universe"
[[order]]
  [[order.group]]
    id = "samples/hello-mars"
[build]
  image = "{build}"
[[run.images]]
  image = "{run}"
[lifecycle]
  uri = "{lifecycle}"
"#,
            moon = testdata.join("buildpacks/hello-moon.tgz").display(),
            lifecycle = testdata.join("lifecycle/lifecycle-v0.21.0+test.tgz").display(),
        )
    };

    // 1. docker:// package from the registry, published to the same registry.
    let cfg = env.write(
        "docker.toml",
        &toml(
            &format!("docker://{host}/pkgs/hello-mars:1"),
            &format!("{host}/build:jammy"),
            &format!("{host}/run:jammy"),
        ),
    );
    let target = format!("{host}/team/builder:1");
    let publish_to = |destination: &str| {
        env.cmd()
            .args([
                "builder",
                "create",
                destination,
                "--config",
                cfg.to_str().unwrap(),
                "--publish",
                "--target",
                "linux/amd64",
            ])
            .output()
            .unwrap()
    };
    let out = publish_to(&target);
    assert!(out.status.success(), "{}", env.format(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("mounted 0,"), "base and package layers are mounted from their repositories: {stderr}");
    let raw = cnbx_testkit::skopeo_raw(&registry.docker_ref("team/builder:1"), &["--tls-verify=false"]).unwrap();
    assert!(layer_digests(&raw).contains(&pkg_blob), "the package layer blob must be reused as is");
    let config = cnbx_testkit::skopeo_config(&registry.docker_ref("team/builder:1"), &["--tls-verify=false"]).unwrap();
    let metadata: Value =
        serde_json::from_str(config["config"]["Labels"]["io.buildpacks.builder.metadata"].as_str().unwrap()).unwrap();
    let ids: Vec<&str> = metadata["buildpacks"].as_array().unwrap().iter().map(|b| b["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["samples/hello-world", "samples/hello-moon", "samples/hello-universe", PKG_ID]);

    // The first publish downloaded the package layer once, to check it; a second publish,
    // whose check is remembered, mounts it again without downloading it, even when the local
    // copy is gone (`store prune` removes it: no stored image uses it).
    let blob_gets = |log: &str| log.lines().filter(|l| l.contains("GET") && l.contains(&pkg_blob[7..])).count();
    let before = blob_gets(&registry.access_log());
    assert!(before >= 1, "the first publish reads the package layer to check it");
    // Published to another registry, the layer is uploaded from the local copy, not
    // downloaded from the package's registry a second time.
    let other = cnbx_testkit::Registry::start().unwrap();
    let elsewhere = format!("{}/team/builder:1", other.host());
    let out = publish_to(&elsewhere);
    assert!(out.status.success(), "{}", env.format(&out));
    assert_eq!(blob_gets(&registry.access_log()), before, "uploaded from the local copy");
    let raw = cnbx_testkit::skopeo_raw(&other.docker_ref("team/builder:1"), &["--tls-verify=false"]).unwrap();
    assert!(layer_digests(&raw).contains(&pkg_blob), "the package layer blob is the same on the other registry");
    let out = env.cmd().args(["store", "prune"]).output().unwrap();
    assert!(out.status.success(), "{}", env.format(&out));
    let out = publish_to(&target);
    assert!(out.status.success(), "{}", env.format(&out));
    assert_eq!(blob_gets(&registry.access_log()), before, "a package layer checked before is not downloaded again");

    // 2. oci: layout and 3. .cnb file: same package layer blob, into OCI layouts.
    for (name, uri) in [("oci", format!("oci:{}:latest", layout.display())), ("cnb", cnb.display().to_string())] {
        let cfg = env.write(&format!("{name}.toml"), &toml(&uri, "cnbx.test/build:jammy", "cnbx.test/run:jammy"));
        let dest = format!("oci:out-{name}:latest");
        let out = env
            .cmd()
            .args([
                "builder",
                "create",
                &dest,
                "--config",
                cfg.to_str().unwrap(),
                "--pull-policy",
                "never",
                "--target",
                "linux/amd64",
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "{name}: {}", env.format(&out));
        let raw = cnbx_testkit::skopeo_raw(&format!("oci:{}:latest", work.join(format!("out-{name}")).display()), &[])
            .unwrap();
        assert!(layer_digests(&raw).contains(&pkg_blob), "{name}: the package layer blob must be reused as is");
    }
}

/// A dry run reads a buildpackage in every form (a registry image, an OCI layout, a `.cnb`
/// file) to decide, and reports its layer as reused as it is, with its blob digest; it writes
/// nothing: CNBX_HOME (the local store, the caches; its scratch space is removed), the work
/// directory and the registry's storage are byte for byte what they were.
#[test]
fn a_dry_run_reads_buildpackages_in_every_form_and_writes_nothing() {
    require_tools();
    let env = Env::with_test_images();
    let work = env.work.path();
    let Packages { layout, cnb, pkg_blob, registry } = packages(work);
    let host = registry.host();
    let testdata = workspace_root().join("testdata");
    let toml = |package: &str, build: &str, run: &str| {
        format!(
            "[[buildpacks]]\n  uri = \"{package}\"\n[[order]]\n  [[order.group]]\n    id = \"{PKG_ID}\"\n[build]\n  \
             image = \"{build}\"\n[[run.images]]\n  image = \"{run}\"\n[lifecycle]\n  uri = \"{}\"\n",
            testdata.join("lifecycle/lifecycle-v0.21.0+test.tgz").display()
        )
    };
    let out = env.run(&["store", "verify"]);
    assert!(out.starts_with("exit: 0\n"), "{out}");
    let (build, run) = (format!("{host}/build:jammy"), format!("{host}/run:jammy"));
    let cases = [
        ("docker", format!("docker://{host}/pkgs/hello-mars:1"), build.as_str(), run.as_str(), true),
        ("oci", format!("oci:{}:latest", layout.display()), "cnbx.test/build:jammy", "cnbx.test/run:jammy", false),
        ("cnb", cnb.display().to_string(), "cnbx.test/build:jammy", "cnbx.test/run:jammy", false),
    ];
    for (name, uri, build, run, publish) in cases {
        let cfg = env.write(&format!("{name}.toml"), &toml(&uri, build, run));
        let dest = if publish { format!("{host}/team/builder:1") } else { format!("oci:out-{name}:latest") };
        let mut args = vec!["builder", "create", &dest, "--config", cfg.to_str().unwrap(), "--target", "linux/amd64"];
        args.extend(if publish { ["--publish"].as_slice() } else { ["--pull-policy", "never"].as_slice() });
        args.extend(["--dry-run", "--output", "json"]);
        let (home, files, storage) = (tree(env.home.path()), tree(work), tree(&registry.storage()));
        let out = env.cmd().args(&args).output().unwrap();
        let text = env.format(&out);
        assert!(out.status.success(), "{name}: {text}");
        // Its scratch space (the downloaded or unpacked package) is gone; only the directory
        // that holds scratch space, `tmp/`, may have been made.
        let mut after = tree(env.home.path());
        assert!(after.iter().all(|(path, _)| !path.starts_with("tmp/")), "{name}: {after:?}");
        if !home.contains_key("tmp") {
            after.remove("tmp");
        }
        assert_eq!(after, home, "{name}: CNBX_HOME is as it was");
        assert_eq!(tree(work), files, "{name}: the work directory is as it was");
        assert_eq!(tree(&registry.storage()), storage, "{name}: the registry is as it was");
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(doc["status"], "would-create", "{name}: {text}");
        let layers = doc["targets"][0]["layers"].as_array().unwrap();
        let package: Vec<&Value> = layers.iter().filter(|l| l["source"] == "package").collect();
        assert_eq!(package.len(), 1, "{name}: {text}");
        assert_eq!(package[0]["digest"], pkg_blob.as_str(), "{name}: the package layer blob, reused as is");
        assert!(package[0]["holds"].as_str().unwrap().starts_with("buildpack samples/hello-mars@0.0.1 (from "));
        let action = if publish { "mount" } else { "write" };
        assert_eq!(package[0]["action"], action, "{name}: {text}");
    }
}

#[test]
fn unknown_buildpack_and_missing_order_entries_are_named() {
    let env = Env::with_test_images();
    let testdata = workspace_root().join("testdata");
    let toml = format!(
        "[[buildpacks]]\n  uri = \"{}\"\n[[order]]\n  [[order.group]]\n    id = \"samples/nope\"\n[build]\n  image = \"cnbx.test/build:jammy\"\n[[run.images]]\n  image = \"cnbx.test/run:jammy\"\n[lifecycle]\n  uri = \"{}\"\n",
        testdata.join("buildpacks/hello-world").display(),
        testdata.join("lifecycle/lifecycle-v0.21.0+test.tgz").display()
    );
    let create = |name: &str, toml: &str| {
        let cfg = env.write(name, toml);
        let args = ["builder", "create", "oci:out", "--config", cfg.to_str().unwrap(), "--pull-policy", "never"];
        env.run(&[&args[..], &["--target", "linux/amd64"]].concat())
    };
    let out = create("b.toml", &toml);
    assert!(out.starts_with("exit: 1\n"), "{out}");
    assert!(out.contains("no versions of buildpack 'samples/nope' were found on the builder"), "{out}");

    let toml = toml.replace(&testdata.join("buildpacks/hello-world").display().to_string(), "does/not/exist");
    let out = create("c.toml", &toml);
    assert!(out.starts_with("exit: 1\n"), "{out}");
    assert!(out.contains("does/not/exist"), "{out}");
    assert!(!env.work.path().join("out").exists());
}
