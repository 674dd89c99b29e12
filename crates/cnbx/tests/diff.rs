//! `cnbx builder diff`: builders made by the tests with the real binary (a bumped buildpack, a
//! new lifecycle, a build image with a new layer, an added target, identical builders), in the
//! three output formats, the JSON decoded against docs/json-output.md with unknown fields
//! refused, and a diff of two builders on a real registry that downloads no layer (checked in
//! the registry's access log).

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::{Env, assert_ok, push_base_images, redact_digests, stderr, stdout, workspace_root};
use serde::Deserialize;
use serde_json::Value;

fn require_tools() {
    for (tool, package) in [("skopeo", "skopeo"), ("umoci", "umoci"), ("docker-registry", "docker-registry")] {
        cnbx_testkit::require_tool(tool, package).unwrap();
    }
}

fn diff(env: &Env, args: &[&str]) -> Output {
    env.cmd().args(["builder", "diff"]).args(args).output().unwrap()
}

fn create(env: &Env, args: &[&str]) {
    let out = env.cmd().args(["builder", "create"]).args(args).output().unwrap();
    assert_ok(env, &out);
}

/// `testdata/buildpacks/hello-world` as version `version`, in the work directory.
fn hello_world(env: &Env, version: &str) -> PathBuf {
    let src = workspace_root().join("testdata/buildpacks/hello-world");
    let dir = env.work.path().join(format!("hello-world-{version}"));
    common::copy_dir(&src, &dir);
    let toml = std::fs::read_to_string(dir.join("buildpack.toml")).unwrap();
    std::fs::write(
        dir.join("buildpack.toml"),
        toml.replace("version = \"0.0.1\"", &format!("version = \"{version}\"")),
    )
    .unwrap();
    dir
}

/// The stand-in lifecycle as a directory that says it is 0.22.0, with Platform API 0.16 and
/// buildpack API 0.7 deprecated.
fn lifecycle_0_22(env: &Env) -> PathBuf {
    let dir = env.work.path().join("lifecycle-0.22");
    cnbx_testkit::inputs::lifecycle(&dir, 0).unwrap();
    let toml = std::fs::read_to_string(dir.join("lifecycle.toml")).unwrap();
    let toml = toml
        .replace("version = \"0.21.0\"", "version = \"0.22.0\"")
        .replacen(
            "deprecated = []\n    supported = [\"0.7\", \"0.8\"",
            "deprecated = [\"0.7\"]\n    supported = [\"0.8\"",
            1,
        )
        .replace("\"0.14\", \"0.15\"]", "\"0.14\", \"0.15\", \"0.16\"]");
    assert!(toml.contains("0.22.0") && toml.contains("\"0.16\"") && toml.contains("deprecated = [\"0.7\"]"), "{toml}");
    std::fs::write(dir.join("lifecycle.toml"), toml).unwrap();
    // New binaries too (the version is in lifecycle.toml, which is not part of the layer).
    let mut analyzer = std::fs::OpenOptions::new().append(true).open(dir.join("lifecycle/analyzer")).unwrap();
    analyzer.write_all(b"# 0.22.0\n").unwrap();
    dir
}

/// The offline build image for amd64 with one more layer (`/etc/motd`), as `oci:<dir>:base`;
/// the layer's bytes are fixed, so the image is the same on every run.
fn build_image_with_a_new_layer(env: &Env) -> String {
    let dir = common::images::layout(env, "build", "build-new", "amd64", &[]);
    let mut tar = tar::Builder::new(Vec::new());
    let content = b"a new layer of the build image\n";
    let mut header = tar::Header::new_ustar();
    header.set_path("etc/motd").unwrap();
    header.set_size(content.len() as u64);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(315_532_801);
    header.set_cksum();
    tar.append(&header, &content[..]).unwrap();
    let tar = tar.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar).unwrap();
    let gz = gz.finish().unwrap();

    let blob = |digest: &str| dir.join("blobs/sha256").join(digest.trim_start_matches("sha256:"));
    let write_blob = |bytes: &[u8]| {
        let digest = cnbx_oci::Digest::of(bytes);
        std::fs::write(blob(digest.as_str()), bytes).unwrap();
        (digest.to_string(), bytes.len())
    };
    let (layer_digest, layer_size) = write_blob(&gz);
    let index_path = dir.join("index.json");
    let mut index: Value = serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
    let entry = &mut index["manifests"][0];
    let mut manifest: Value =
        serde_json::from_slice(&std::fs::read(blob(entry["digest"].as_str().unwrap())).unwrap()).unwrap();
    let mut config: Value =
        serde_json::from_slice(&std::fs::read(blob(manifest["config"]["digest"].as_str().unwrap())).unwrap()).unwrap();
    config["rootfs"]["diff_ids"].as_array_mut().unwrap().push(cnbx_oci::Digest::of(&tar).to_string().into());
    if let Some(history) = config["history"].as_array_mut() {
        history.push(serde_json::json!({"created": "1980-01-01T00:00:01Z"}));
    }
    let (config_digest, config_size) = write_blob(&serde_json::to_vec(&config).unwrap());
    manifest["config"]["digest"] = config_digest.into();
    manifest["config"]["size"] = config_size.into();
    let media_type = manifest["layers"][0]["mediaType"].clone();
    manifest["layers"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"mediaType": media_type, "digest": layer_digest, "size": layer_size}));
    let (manifest_digest, manifest_size) = write_blob(&serde_json::to_vec(&manifest).unwrap());
    entry["digest"] = manifest_digest.into();
    entry["size"] = manifest_size.into();
    std::fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
    common::images::oci(&dir)
}

/// What a builder.toml of these tests is made of.
struct Builder<'a> {
    buildpack: &'a Path,
    lifecycle: PathBuf,
    build: &'a str,
    run_mirrors: &'a str,
    greeting: &'a str,
}

impl<'a> Builder<'a> {
    /// The first release: `buildpack`, the release lifecycle, the test build image, no
    /// mirror, greeting "hello".
    fn first_release(buildpack: &'a Path) -> Self {
        Builder {
            buildpack,
            lifecycle: release_lifecycle(),
            build: "cnbx.test/build:jammy",
            run_mirrors: "",
            greeting: "hello",
        }
    }

    fn write(&self, env: &Env, file: &str) -> PathBuf {
        let toml = format!(
            "description = \"diff test builder\"\n\n[[buildpacks]]\n  uri = \"{bp}\"\n\n[[order]]\n  [[order.group]]\n    \
             id = \"samples/hello-world\"\n\n[build]\n  image = \"{build}\"\n  [[build.env]]\n    name = \"BP_GREETING\"\n    \
             value = \"{greeting}\"\n\n[[run.images]]\n  image = \"cnbx.test/run:jammy\"\n  mirrors = [{mirrors}]\n\n\
             [lifecycle]\n  uri = \"{lifecycle}\"\n",
            bp = self.buildpack.display(),
            build = self.build,
            greeting = self.greeting,
            mirrors = self.run_mirrors,
            lifecycle = self.lifecycle.display(),
        );
        env.write(file, &toml)
    }
}

fn release_lifecycle() -> PathBuf {
    workspace_root().join("testdata/lifecycle/lifecycle-v0.21.0+test.tgz")
}

/// Two releases of a builder, `oci:old` and `oci:new` in the work directory: the new one has
/// hello-world 0.0.2 (was 0.0.1), lifecycle 0.22.0 (was 0.21.0), a build image with one more
/// layer, a run-image mirror, another `[[build.env]]` value and another version label.
fn two_releases(env: &Env) {
    let v1 = workspace_root().join("testdata/buildpacks/hello-world");
    let old = Builder::first_release(&v1);
    let config = old.write(env, "old.toml");
    let config = config.to_str().unwrap();
    let common = ["--pull-policy", "never", "--target", "linux/amd64"];
    create(
        env,
        &[&["oci:old", "--config", config, "--label", "org.opencontainers.image.version=1"][..], &common].concat(),
    );

    let v2 = hello_world(env, "0.0.2");
    let build = build_image_with_a_new_layer(env);
    let new = Builder {
        buildpack: &v2,
        lifecycle: lifecycle_0_22(env),
        build: &build,
        run_mirrors: "\"mirror.cnbx.test/run:jammy\"",
        greeting: "hi",
    };
    let config = new.write(env, "new.toml");
    let config = config.to_str().unwrap();
    create(
        env,
        &[&["oci:new", "--config", config, "--label", "org.opencontainers.image.version=2"][..], &common].concat(),
    );
}

/// The document of docs/json-output.md, every field required and no other allowed.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct DiffJson {
    schema_version: u32,
    equal: bool,
    old: SideJson,
    new: SideJson,
    platforms: Vec<PlatformJson>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SideJson {
    image: String,
    digest: String,
    platforms: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PlatformJson {
    platform: String,
    status: String,
    old_manifest: Option<String>,
    new_manifest: Option<String>,
    changes: ChangesJson,
    layers: LayersJson,
    other_differences: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangeJson {
    old: Option<String>,
    new: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ValueJson {
    key: String,
    old: Option<String>,
    new: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ChangesJson {
    description: Option<ChangeJson>,
    created_by: Option<ChangeJson>,
    buildpacks: Vec<ModuleJson>,
    extensions: Vec<ModuleJson>,
    order: Vec<GroupJson>,
    order_extensions: Vec<GroupJson>,
    system_buildpacks: Vec<SystemJson>,
    lifecycle: Option<LifecycleJson>,
    build_image: Option<BuildImageJson>,
    run_images: Vec<RunImageJson>,
    stack: Option<StackJson>,
    build_env: Option<ChangeJson>,
    env: Vec<ValueJson>,
    config: Vec<ValueJson>,
    labels: Vec<ValueJson>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ModuleJson {
    change: String,
    id: String,
    name: Option<String>,
    old_version: Option<String>,
    new_version: Option<String>,
    old_layer: Option<String>,
    new_layer: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RefJson {
    id: String,
    version: String,
    optional: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct GroupJson {
    change: String,
    old_group: Option<usize>,
    new_group: Option<usize>,
    old: Option<Vec<RefJson>>,
    new: Option<Vec<RefJson>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SystemJson {
    phase: String,
    old: Vec<RefJson>,
    new: Vec<RefJson>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LifecycleJson {
    version: Option<ChangeJson>,
    apis: Vec<ApiJson>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ApiJson {
    api: String,
    list: String,
    added: Vec<String>,
    removed: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct BaseJson {
    layers: usize,
    size: u64,
    chain_id: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct BuildImageJson {
    old: Option<BaseJson>,
    new: Option<BaseJson>,
    reused_layers: usize,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RunImageJson {
    change: String,
    image: String,
    old_position: Option<usize>,
    new_position: Option<usize>,
    mirrors_added: Vec<String>,
    mirrors_removed: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct StackJson {
    id: Option<ChangeJson>,
    mixins_added: Vec<String>,
    mixins_removed: Vec<String>,
}

#[derive(Debug, Deserialize, Clone, Copy)]
#[serde(deny_unknown_fields)]
struct TallyJson {
    layers: usize,
    size: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LayersJson {
    reused: TallyJson,
    new: TallyJson,
    removed: TallyJson,
    download: TallyJson,
    layers: Vec<LayerJson>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct LayerJson {
    status: String,
    holds: String,
    #[serde(rename = "diffID")]
    diff_id: String,
    digest: String,
    size: u64,
    recompressed: bool,
}

impl DiffJson {
    /// Checks the value sets and sums the schema states.
    fn check(&self) {
        assert_eq!(self.schema_version, 1);
        for side in [&self.old, &self.new] {
            assert!(side.digest.starts_with("sha256:") && !side.image.is_empty() && !side.platforms.is_empty());
        }
        for p in &self.platforms {
            assert!(["added", "removed", "changed", "unchanged"].contains(&p.status.as_str()), "{p:?}");
            assert_eq!(p.old_manifest.is_some(), p.status != "added");
            assert_eq!(p.new_manifest.is_some(), p.status != "removed");
            let l = &p.layers;
            let sum = |status: &str| {
                let layers: Vec<&LayerJson> = l.layers.iter().filter(|x| x.status == status).collect();
                (layers.len(), layers.iter().map(|x| x.size).sum::<u64>())
            };
            assert_eq!(sum("reused"), (l.reused.layers, l.reused.size));
            assert_eq!(sum("new"), (l.new.layers, l.new.size));
            assert_eq!(sum("removed"), (l.removed.layers, l.removed.size));
            for layer in &l.layers {
                assert!(["reused", "new", "removed"].contains(&layer.status.as_str()), "{layer:?}");
                assert!(layer.diff_id.starts_with("sha256:") && layer.digest.starts_with("sha256:"));
                assert!(!layer.holds.is_empty());
                assert!(!layer.recompressed || layer.status == "reused");
            }
            p.changes.check();
        }
        assert_eq!(self.equal, self.platforms.iter().all(|p| p.status == "unchanged"));
    }
}

impl RefJson {
    fn key(&self) -> (&str, &str, bool) {
        assert!(!self.id.is_empty(), "{self:?}");
        (&self.id, &self.version, self.optional)
    }
}

fn ref_keys(refs: &[RefJson]) -> Vec<(&str, &str, bool)> {
    refs.iter().map(RefJson::key).collect()
}

impl ChangesJson {
    /// Checks that each change has the fields its kind states, and only those.
    fn check(&self) {
        for m in self.buildpacks.iter().chain(&self.extensions) {
            assert!(!m.id.is_empty() && m.name.as_ref().is_none_or(|n| !n.is_empty()), "{m:?}");
            let (old, new) = (m.old_version.is_some(), m.new_version.is_some());
            assert_eq!((old, new), (m.old_layer.is_some(), m.new_layer.is_some()), "{m:?}");
            match m.change.as_str() {
                "added" => assert!(!old && new, "{m:?}"),
                "removed" => assert!(old && !new, "{m:?}"),
                "version" => assert!(old && new && m.old_version != m.new_version, "{m:?}"),
                "content" => assert!(m.old_version == m.new_version && m.old_layer != m.new_layer, "{m:?}"),
                other => panic!("module change {other}"),
            }
        }
        for g in self.order.iter().chain(&self.order_extensions) {
            let (old, new) = (g.old.as_deref().map(ref_keys), g.new.as_deref().map(ref_keys));
            assert_eq!((g.old_group.is_some(), g.new_group.is_some()), (old.is_some(), new.is_some()), "{g:?}");
            match g.change.as_str() {
                "added" => assert!(old.is_none() && new.is_some(), "{g:?}"),
                "removed" => assert!(old.is_some() && new.is_none(), "{g:?}"),
                "changed" => assert!(old.is_some() && new.is_some() && old != new, "{g:?}"),
                other => panic!("group change {other}"),
            }
        }
        for s in &self.system_buildpacks {
            assert!(["pre", "post"].contains(&s.phase.as_str()), "{s:?}");
            assert_ne!(ref_keys(&s.old), ref_keys(&s.new));
        }
        for r in &self.run_images {
            assert!(!r.image.is_empty());
            let (old, new) = (r.old_position.is_some(), r.new_position.is_some());
            match r.change.as_str() {
                "added" => assert!(!old && new && r.mirrors_removed.is_empty(), "{r:?}"),
                "removed" => assert!(old && !new && r.mirrors_added.is_empty() && r.mirrors_removed.is_empty()),
                "mirrors" => assert!(old && new && !(r.mirrors_added.is_empty() && r.mirrors_removed.is_empty())),
                "moved" => assert!(old && new && r.old_position != r.new_position, "{r:?}"),
                other => panic!("run image change {other}"),
            }
        }
        for c in [&self.description, &self.created_by, &self.build_env].into_iter().flatten() {
            assert_ne!(c.old, c.new);
        }
        if let Some(l) = &self.lifecycle {
            assert!(l.version.as_ref().is_none_or(|v| v.old != v.new));
            for a in &l.apis {
                assert!(
                    ["buildpack", "platform"].contains(&a.api.as_str())
                        && ["supported", "deprecated"].contains(&a.list.as_str())
                );
                assert!(!(a.added.is_empty() && a.removed.is_empty()));
            }
        }
        if let Some(b) = &self.build_image {
            for side in [&b.old, &b.new].into_iter().flatten() {
                assert!(side.layers > 0 && side.size > 0 && side.chain_id.starts_with("sha256:"), "{b:?}");
            }
        }
        if let Some(s) = &self.stack {
            assert!(s.id.is_some() || !s.mixins_added.is_empty() || !s.mixins_removed.is_empty());
        }
        for v in self.env.iter().chain(&self.config).chain(&self.labels) {
            assert!(!v.key.is_empty() && v.old != v.new, "{v:?}");
        }
    }
}

fn diff_json(env: &Env, args: &[&str]) -> (i32, DiffJson) {
    let out = diff(env, &[args, &["--output", "json"]].concat());
    let doc: DiffJson = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", env.format(&out)));
    doc.check();
    (out.status.code().unwrap(), doc)
}

/// The text of a diff with the digests redacted (the builders' digests depend on the cnbx
/// version written into them); sizes and everything else are the same on every run.
fn redacted(env: &Env, out: &Output) -> String {
    redact_digests(&env.format(out))
}

#[test]
fn a_release_diff_in_the_three_formats() {
    require_tools();
    let env = Env::with_test_images();
    two_releases(&env);
    let human = diff(&env, &["oci:old", "oci:new"]);
    assert_eq!(human.status.code(), Some(1), "{}", env.format(&human));
    assert_eq!(stderr(&human), "");
    insta::assert_snapshot!("release_human", redacted(&env, &human));
    let markdown = diff(&env, &["oci:old", "oci:new", "--output", "markdown"]);
    assert_eq!(markdown.status.code(), Some(1));
    insta::assert_snapshot!("release_markdown", redacted(&env, &markdown));
    let json = diff(&env, &["oci:old", "oci:new", "--output", "json"]);
    assert_eq!(json.status.code(), Some(1));
    insta::assert_snapshot!("release_json", redacted(&env, &json));
}

#[test]
fn a_release_diff_as_json_names_every_change() {
    require_tools();
    let env = Env::with_test_images();
    two_releases(&env);
    let (code, doc) = diff_json(&env, &["oci:old", "oci:new"]);
    assert_eq!(code, 1);
    assert!(!doc.equal);
    assert_eq!((doc.old.image.as_str(), doc.new.image.as_str()), ("oci:old", "oci:new"));
    let [p] = doc.platforms.as_slice() else { panic!("{doc:?}") };
    assert_eq!((p.platform.as_str(), p.status.as_str()), ("linux/amd64", "changed"));
    let c = &p.changes;

    // The bumped buildpack, with its layers.
    let [bp] = c.buildpacks.as_slice() else { panic!("{c:?}") };
    assert_eq!((bp.change.as_str(), bp.id.as_str()), ("version", "samples/hello-world"));
    assert_eq!((bp.old_version.as_deref(), bp.new_version.as_deref()), (Some("0.0.1"), Some("0.0.2")));
    assert_eq!(bp.name.as_deref(), Some("Hello World Buildpack"));
    let new_layer = bp.new_layer.clone().unwrap();
    assert!(p.layers.layers.iter().any(|l| l.diff_id == new_layer && l.status == "new"));

    // The lifecycle.
    let lifecycle = c.lifecycle.as_ref().unwrap();
    let version = lifecycle.version.as_ref().unwrap();
    assert_eq!((version.old.as_deref(), version.new.as_deref()), (Some("0.21.0"), Some("0.22.0")));
    let api = |api: &str, list: &str| lifecycle.apis.iter().find(|a| a.api == api && a.list == list).unwrap();
    assert_eq!(api("platform", "supported").added, ["0.16"]);
    assert_eq!(api("buildpack", "supported").removed, ["0.7"]);
    assert_eq!(api("buildpack", "deprecated").added, ["0.7"]);

    // The build image: one layer more, the first reused.
    let build = c.build_image.as_ref().unwrap();
    let (old, new) = (build.old.as_ref().unwrap(), build.new.as_ref().unwrap());
    assert_eq!((old.layers, new.layers, build.reused_layers), (1, 2, 1));
    assert_ne!(old.chain_id, new.chain_id);
    assert!(new.size > old.size);
    let base = p.layers.layers.iter().find(|l| l.holds == "build image layer 2/2").unwrap();
    assert_eq!(base.status, "new");

    // Run image mirrors, [[build.env]], the version label; nothing else.
    let [run] = c.run_images.as_slice() else { panic!("{c:?}") };
    assert_eq!((run.change.as_str(), run.image.as_str()), ("mirrors", "cnbx.test/run:jammy"));
    assert_eq!(run.mirrors_added, ["mirror.cnbx.test/run:jammy"]);
    assert!(run.mirrors_removed.is_empty());
    let env_change = c.build_env.as_ref().unwrap();
    assert!(env_change.old.is_some() && env_change.new.is_some() && env_change.old != env_change.new);
    assert!(p.layers.layers.iter().any(|l| l.holds == "/cnb/build-config/env" && l.status == "new"));
    let [label] = c.labels.as_slice() else { panic!("{c:?}") };
    assert_eq!(
        (label.key.as_str(), label.old.as_deref(), label.new.as_deref()),
        ("org.opencontainers.image.version", Some("1"), Some("2"))
    );
    assert!(c.extensions.is_empty() && c.order.is_empty() && c.order_extensions.is_empty());
    assert!(c.system_buildpacks.is_empty() && c.stack.is_none() && c.env.is_empty() && c.config.is_empty());
    assert!(c.description.is_none() && c.created_by.is_none());
    assert!(!p.other_differences);

    // Every layer is attributed; the download is the new blobs.
    assert!(p.layers.layers.iter().all(|l| l.holds != "unidentified"), "{:?}", p.layers.layers);
    assert!(p.layers.layers.iter().any(|l| l.holds == "lifecycle 0.22.0" && l.status == "new"));
    assert!(p.layers.layers.iter().any(|l| l.holds == "lifecycle 0.21.0" && l.status == "removed"));
    assert!(p.layers.layers.iter().any(|l| l.holds == "default directories" && l.status == "reused"));
    assert_eq!(p.layers.download.layers, p.layers.new.layers);
    assert_eq!(p.layers.download.size, p.layers.new.size);
    let reused: Vec<&str> = p.layers.layers.iter().filter(|l| l.status == "reused").map(|l| l.holds.as_str()).collect();
    assert_eq!(reused, ["build image layer 1/2", "default directories", "/platform/env"]);
}

#[test]
fn identical_builders_exit_0_with_only_the_summary() {
    require_tools();
    let env = Env::with_test_images();
    let v1 = workspace_root().join("testdata/buildpacks/hello-world");
    let spec = Builder::first_release(&v1);
    let config = spec.write(&env, "b.toml");
    let config = config.to_str().unwrap();
    create(&env, &["oci:a", "--config", config, "--pull-policy", "never"]);
    create(&env, &["cnbx.test/same:1", "--config", config, "--pull-policy", "never"]);

    let args = ["oci:a", "cnbx.test/same:1", "--pull-policy", "never"];
    let out = diff(&env, &args);
    assert_eq!(out.status.code(), Some(0), "{}", env.format(&out));
    assert_eq!(stdout(&out), "No differences: 'oci:a' and 'cnbx.test/same:1' are the same builder (linux/amd64)\n");
    assert_eq!(stderr(&out), "");
    let markdown = diff(&env, &[&args[..], &["--output", "markdown"]].concat());
    assert_eq!(markdown.status.code(), Some(0));
    assert_eq!(stdout(&markdown), "No changes: `oci:a` and `cnbx.test/same:1` are the same builder.\n");
    let (code, doc) = diff_json(&env, &args);
    assert_eq!(code, 0);
    assert!(doc.equal);
    assert_eq!(doc.old.digest, doc.new.digest);
    let [p] = doc.platforms.as_slice() else { panic!("{doc:?}") };
    assert_eq!(p.status, "unchanged");
    assert_eq!((p.layers.new.layers, p.layers.removed.layers, p.layers.download.layers), (0, 0, 0));
}

#[test]
fn an_added_target_is_an_added_platform() {
    require_tools();
    let env = Env::with_test_images();
    let v1 = workspace_root().join("testdata/buildpacks/hello-world");
    let spec = Builder::first_release(&v1);
    let config = spec.write(&env, "b.toml");
    let config = config.to_str().unwrap();
    create(&env, &["oci:one", "--config", config, "--pull-policy", "never", "--target", "linux/amd64"]);
    create(
        &env,
        &[
            "oci:two",
            "--config",
            config,
            "--pull-policy",
            "never",
            "--target",
            "linux/amd64",
            "--target",
            "linux/arm64",
        ],
    );
    let out = diff(&env, &["oci:one", "oci:two"]);
    assert_eq!(out.status.code(), Some(1), "{}", env.format(&out));
    insta::assert_snapshot!("added_target_human", redacted(&env, &out));

    let (code, doc) = diff_json(&env, &["oci:one", "oci:two"]);
    assert_eq!(code, 1);
    assert_eq!(doc.new.platforms, ["linux/amd64", "linux/arm64"]);
    let status: Vec<(&str, &str)> = doc.platforms.iter().map(|p| (p.platform.as_str(), p.status.as_str())).collect();
    assert_eq!(status, [("linux/amd64", "unchanged"), ("linux/arm64", "added")]);
    let added = &doc.platforms[1];
    assert_eq!(added.layers.new.layers, added.layers.layers.len());
    assert_eq!(added.layers.download.size, added.layers.new.size);

    // The other way round, the platform is removed.
    let (_, back) = diff_json(&env, &["oci:two", "oci:one"]);
    let status: Vec<(&str, &str)> = back.platforms.iter().map(|p| (p.platform.as_str(), p.status.as_str())).collect();
    assert_eq!(status, [("linux/amd64", "unchanged"), ("linux/arm64", "removed")]);
    assert_eq!(back.platforms[1].layers.download.layers, 0);
}

#[test]
fn errors_exit_2() {
    let env = Env::with_test_images();
    // Missing images, an image that is not a builder, a usage error: all 2, not 1 ("differ").
    let missing = diff(&env, &["oci:nowhere", "oci:nowhere-else"]);
    assert_eq!(missing.status.code(), Some(2), "{}", env.format(&missing));
    assert!(stderr(&missing).starts_with("ERROR: reading 'oci:nowhere'"), "{}", env.format(&missing));
    assert_eq!(stdout(&missing), "");
    let not_stored = diff(&env, &["cnbx.test/nope:1", "cnbx.test/build:jammy", "--pull-policy", "never"]);
    assert_eq!(not_stored.status.code(), Some(2));
    insta::assert_snapshot!(env.format(&not_stored), @r"
    exit: 2
    --- stdout
    --- stderr
    ERROR: 'cnbx.test/nope:1' was not found in the local store, and --pull-policy never forbids looking in its registry
    ");
    let not_builder = diff(&env, &["cnbx.test/build:jammy", "cnbx.test/build:jammy", "--pull-policy", "never"]);
    assert_eq!(not_builder.status.code(), Some(2));
    assert!(
        stderr(&not_builder).contains("cannot be read as a builder: reading image metadata: builder missing label"),
        "{}",
        env.format(&not_builder)
    );
    for args in [
        &["builder", "diff", "only-one"][..],
        &["builder", "diff", "a", "b", "--output", "xml"],
        &["-q", "builders", "diff"],
    ] {
        let out = env.cmd().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", env.format(&out));
    }
    // Other commands keep exit 1 for usage errors; help is 0.
    assert_eq!(env.cmd().args(["builder", "inspect"]).output().unwrap().status.code(), Some(1));
    assert_eq!(env.cmd().args(["builder", "diff", "--help"]).output().unwrap().status.code(), Some(0));
}

/// The digests of `GET /v2/<repo>/blobs/<digest>` requests in a registry access log.
fn blob_gets(log: &str) -> Vec<String> {
    log.lines()
        .filter_map(|line| {
            let request = line.split('"').nth(1)?;
            let mut parts = request.split(' ');
            (parts.next()? == "GET").then_some(())?;
            let path = parts.next()?;
            let (_, digest) = path.split_once("/blobs/")?;
            Some(digest.to_owned())
        })
        .collect()
}

/// Two releases of a two-platform builder pushed to a registry, compared from an empty
/// CNBX_HOME: the diff reads manifests and configs only (the access log shows no layer
/// download) and writes nothing into the local store.
#[test]
fn a_diff_of_registry_builders_downloads_no_layer() {
    require_tools();
    let registry = cnbx_testkit::Registry::start().unwrap();
    push_base_images(&registry);
    let host = registry.host();
    let env = Env::new();
    let v1 = workspace_root().join("testdata/buildpacks/hello-world");
    let v2 = hello_world(&env, "0.0.2");
    let build = format!("{host}/build:jammy");
    for (buildpack, tag) in [(&v1, "1"), (&v2, "2")] {
        let spec = Builder { build: &build, ..Builder::first_release(buildpack) };
        let toml = spec.write(&env, "b.toml");
        let text = std::fs::read_to_string(&toml).unwrap().replace("cnbx.test/run:jammy", &format!("{host}/run:jammy"));
        std::fs::write(&toml, text).unwrap();
        create(
            &env,
            &[
                &format!("{host}/team/builder:{tag}"),
                "--config",
                toml.to_str().unwrap(),
                "--publish",
                "--target",
                "linux/amd64",
                "--target",
                "linux/arm64",
            ],
        );
    }
    let (old, new) = (format!("{host}/team/builder:1"), format!("{host}/team/builder:2"));
    let before = blob_gets(&registry.access_log()).len();

    let reader = Env::new();
    let (code, doc) = diff_json(&reader, &[&old, &new]);
    assert_eq!(code, 1);
    let status: Vec<(&str, &str)> = doc.platforms.iter().map(|p| (p.platform.as_str(), p.status.as_str())).collect();
    assert_eq!(status, [("linux/amd64", "changed"), ("linux/arm64", "changed")]);
    for p in &doc.platforms {
        let [bp] = p.changes.buildpacks.as_slice() else { panic!("{p:?}") };
        assert_eq!((bp.old_version.as_deref(), bp.new_version.as_deref()), (Some("0.0.1"), Some("0.0.2")));
        assert_eq!(p.layers.new.layers, 2, "the buildpack and /cnb/order.toml: {:?}", p.layers);
    }

    // Every blob read was a config: the layers of both builders were never requested.
    let mut layers = BTreeSet::new();
    let mut configs = BTreeSet::new();
    for reference in [&old, &new] {
        let index = cnbx_testkit::skopeo_raw(&format!("docker://{reference}"), &["--tls-verify=false"]).unwrap();
        for entry in index["manifests"].as_array().unwrap() {
            let digest = entry["digest"].as_str().unwrap();
            let manifest = cnbx_testkit::skopeo_raw(
                &format!("docker://{}@{digest}", reference.split(':').take(2).collect::<Vec<_>>().join(":")),
                &["--tls-verify=false"],
            )
            .unwrap();
            configs.insert(manifest["config"]["digest"].as_str().unwrap().to_owned());
            for layer in manifest["layers"].as_array().unwrap() {
                layers.insert(layer["digest"].as_str().unwrap().to_owned());
            }
        }
    }
    let read: Vec<String> = blob_gets(&registry.access_log()).split_off(before);
    assert!(!read.is_empty(), "the configs are blobs: some must have been read");
    for digest in &read {
        assert!(configs.contains(digest), "blob {digest} read, which is not a config");
        assert!(!layers.contains(digest), "layer {digest} downloaded");
    }
    // Nothing was written into the reader's local store.
    let blobs = reader.home.path().join("store/blobs/sha256");
    assert_eq!(std::fs::read_dir(&blobs).map(Iterator::count).unwrap_or(0), 0, "{}", blobs.display());

    // inspect lists the platforms of the remote index.
    let inspect = reader.cmd().args(["builder", "inspect", &new, "--output", "json"]).output().unwrap();
    assert_ok(&reader, &inspect);
    let doc: Value = serde_json::from_slice(&inspect.stdout).unwrap();
    let platforms = doc["remote_info"]["platforms"].as_array().unwrap();
    let names: Vec<&str> = platforms.iter().map(|p| p["platform"].as_str().unwrap()).collect();
    assert_eq!(names, ["linux/amd64", "linux/arm64"]);
    assert_eq!(platforms.iter().filter(|p| p["shown"] == true).count(), 1);
}

/// Values from an image are shown on one line and cannot make Markdown: a label holding a
/// newline, an escape sequence, a table separator and HTML.
#[test]
fn values_from_images_are_escaped() {
    require_tools();
    let env = Env::with_test_images();
    let v1 = workspace_root().join("testdata/buildpacks/hello-world");
    let spec = Builder::first_release(&v1);
    let config = spec.write(&env, "b.toml");
    let config = config.to_str().unwrap();
    let base = ["--config", config, "--pull-policy", "never", "--target", "linux/amd64"];
    create(&env, &[&["oci:a"][..], &base].concat());
    let label = "org.example.note=one\n\u{1b}[2J| <img src=x onerror=alert(1)> [link](http://x) `code`";
    create(&env, &[&["oci:b", "--label", label][..], &base].concat());

    let human = stdout(&diff(&env, &["oci:a", "oci:b"]));
    assert!(!human.chars().any(|c| c.is_control() && c != '\n'), "{human:?}");
    assert!(human.contains("+ org.example.note=one\\u{a}\\u{1b}[2J| <img"), "{human}");
    let markdown = stdout(&diff(&env, &["oci:a", "oci:b", "--output", "markdown"]));
    let row = markdown.lines().find(|l| l.contains("org.example.note")).unwrap();
    assert_eq!(
        row,
        "| `org.example.note` |  | one\\\\u{a}\\\\u{1b}\\[2J\\| \\<img src=x onerror=alert(1)\\> \\[link\\](http://x) \\`code\\` |"
    );
    let (_, doc) = diff_json(&env, &["oci:a", "oci:b"]);
    let value = &doc.platforms[0].changes.labels[0];
    assert_eq!(value.new.as_deref(), Some(label.split_once('=').unwrap().1));
}
