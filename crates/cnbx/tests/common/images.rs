//! Base images changed one rule at a time, for the tests of everything that validates them:
//! the offline build and run images copied into OCI layouts (and the local store) and changed
//! with `umoci config` or by rewriting their config.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{Env, workspace_root};

pub const PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

pub fn tools() -> bool {
    cnbx_testkit::require_tool("skopeo", "skopeo").is_ok() && cnbx_testkit::require_tool("umoci", "umoci").is_ok()
}

/// Copies `cnbx.test/<role>:jammy` for `arch` into the layout `<work>/<name>` (tag `base`),
/// applies `umoci config` with `changes`, and returns the layout directory.
pub fn layout(env: &Env, role: &str, name: &str, arch: &str, changes: &[&str]) -> PathBuf {
    let store = workspace_root().join("testdata/cnbx-home/store");
    let dir = env.work.path().join(name);
    cnbx_testkit::skopeo(&[
        "copy",
        "--override-arch",
        arch,
        &format!("oci:{}:cnbx.test/{role}:jammy", store.display()),
        &format!("oci:{}:base", dir.display()),
    ])
    .unwrap();
    if !changes.is_empty() {
        let image = format!("{}:base", dir.display());
        let mut args = vec!["config", "--image", &image];
        args.extend_from_slice(changes);
        cnbx_testkit::umoci(&args).unwrap();
    }
    dir
}

/// Writes `cnbx.test/build:jammy` (amd64) as a docker-archive at `archive` that names it
/// `name`, as skopeo writes one.
pub fn build_image_archive(archive: &Path, name: &str) {
    let store = workspace_root().join("testdata/cnbx-home/store");
    cnbx_testkit::skopeo(&[
        "copy",
        "--quiet",
        "--override-arch",
        "amd64",
        &format!("oci:{}:cnbx.test/build:jammy", store.display()),
        &format!("docker-archive:{}:{name}", archive.display()),
    ])
    .unwrap();
}

/// `oci:<dir>:base`.
pub fn oci(dir: &Path) -> String {
    format!("oci:{}:base", dir.display())
}

/// Copies the layout image into `env`'s local store as `cnbx.test/<name>:jammy` and returns
/// that name.
pub fn stored(env: &Env, dir: &Path, name: &str) -> String {
    let reference = format!("cnbx.test/{name}:jammy");
    let store = env.home.path().join("store");
    cnbx_testkit::skopeo(&["copy", &oci(dir), &format!("oci:{}:{reference}", store.display())]).unwrap();
    reference
}

/// A run image (or mirror) in the local store: `cnbx.test/run:jammy` for `arch`, changed.
pub fn run_image(env: &Env, name: &str, arch: &str, changes: &[&str]) -> String {
    let dir = layout(env, "run", name, arch, changes);
    stored(env, &dir, name)
}

/// Rewrites the config of the layout image at `dir` (tag `base`) with `edit`, and sets the
/// platform of its `index.json` entry to `descriptor_platform` when given.
pub fn edit_config(dir: &Path, edit: impl FnOnce(&mut Value), descriptor_platform: Option<Value>) {
    let blob = |digest: &str| dir.join("blobs/sha256").join(digest.trim_start_matches("sha256:"));
    let write_blob = |bytes: &[u8]| {
        let digest = cnbx_oci::Digest::of(bytes);
        std::fs::write(blob(digest.as_str()), bytes).unwrap();
        (digest.to_string(), bytes.len())
    };
    let index_path = dir.join("index.json");
    let mut index: Value = serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
    let entry = &mut index["manifests"][0];
    let mut manifest: Value =
        serde_json::from_slice(&std::fs::read(blob(entry["digest"].as_str().unwrap())).unwrap()).unwrap();
    let mut config: Value =
        serde_json::from_slice(&std::fs::read(blob(manifest["config"]["digest"].as_str().unwrap())).unwrap()).unwrap();
    edit(&mut config);
    let (digest, size) = write_blob(&serde_json::to_vec(&config).unwrap());
    manifest["config"]["digest"] = digest.into();
    manifest["config"]["size"] = size.into();
    let (digest, size) = write_blob(&serde_json::to_vec(&manifest).unwrap());
    entry["digest"] = digest.into();
    entry["size"] = size.into();
    if let Some(p) = descriptor_platform {
        entry["platform"] = p;
    }
    std::fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
}

/// The sample builder.toml with these base images (no mirror when `mirror` is `None`).
pub fn config(env: &Env, build: &str, run: &str, mirror: Option<&str>, extra: &str) -> PathBuf {
    let repo = workspace_root();
    let mirrors = mirror.map_or_else(String::new, |m| format!("\"{m}\""));
    let text = std::fs::read_to_string(repo.join("builder.toml.example"))
        .unwrap()
        .replace("\"testdata/", &format!("\"{}/testdata/", repo.display()))
        .replace("\"cnbx.test/build:jammy\"", &format!("\"{build}\""))
        .replace("\"cnbx.test/run:jammy\"", &format!("\"{run}\""))
        .replace("\"mirror.cnbx.test/run:jammy\"", &mirrors);
    env.write("builder.toml", &format!("{text}\n{extra}"))
}

/// A builder.toml with one buildpack for any Linux architecture (hello-moon) and these base
/// images.
pub fn minimal_config(env: &Env, build: &str, run: &str) -> PathBuf {
    let repo = workspace_root().display().to_string();
    let toml = format!(
        "[[buildpacks]]\n  uri = \"{repo}/testdata/buildpacks/hello-moon.tgz\"\n\n[[order]]\n  [[order.group]]\n    \
         id = \"samples/hello-moon\"\n\n[build]\n  image = \"{build}\"\n\n[[run.images]]\n  image = \"{run}\"\n\n\
         [lifecycle]\n  uri = \"{repo}/testdata/lifecycle/lifecycle-v0.21.0+test.tgz\"\n"
    );
    env.write("minimal.toml", &toml)
}
