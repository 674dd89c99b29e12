//! The layers pack adds around the buildpacks, built so their
//! diffIDs equal pack's: the default directories, the single-file layers (`order.toml`,
//! `system.toml`, `stack.toml`, `run.toml`), the build-config env files, the empty
//! `/platform/env` layer and whiteouts.
//!
//! One deliberate difference: pack writes the build-config env files in Go map order
//! (random); we write them sorted by name, so the layer is reproducible.

use std::collections::BTreeMap;

use cnbx_oci::layer::LayerRecipe;
use cnbx_oci::tarball::{TarEntry, TarTime};

use crate::gocompat::burntsushi_toml::{Table, Value, encode};
use cnbx_model::{ModuleRef, OrderEntry, RunImage, System};

/// Where the build-config env files go (`CNB_BUILD_CONFIG_DIR` default).
pub const BUILD_CONFIG_DIR: &str = "/cnb/build-config";

/// `/workspace`, `/layers` (owned by the build user), `/cnb`, `/cnb/buildpacks`,
/// `/cnb/extensions`, `/platform`, `/platform/env`, `<build_config_dir>`,
/// `<build_config_dir>/env` (root), in pack's order. `build_config_dir` is
/// [`BUILD_CONFIG_DIR`] unless `CNB_BUILD_CONFIG_DIR` moves it (an absolute, clean path).
pub fn default_dirs(uid: u64, gid: u64, build_config_dir: &str) -> LayerRecipe {
    let mut r = LayerRecipe::new("default directories");
    r.push_header(TarEntry::dir("/workspace").with_owner(uid, gid));
    r.push_header(TarEntry::dir("/layers").with_owner(uid, gid));
    for dir in ["/cnb", "/cnb/buildpacks", "/cnb/extensions", "/platform", "/platform/env"] {
        r.push_header(TarEntry::dir(dir));
    }
    r.push_header(TarEntry::dir(build_config_dir));
    r.push_header(TarEntry::dir(format!("{build_config_dir}/env")));
    r
}

/// A layer holding one root-owned 0644 file, without parent directory entries.
pub fn single_file(path: &str, content: &[u8]) -> LayerRecipe {
    let mut r = LayerRecipe::new(path.to_owned());
    r.push_bytes(TarEntry::file(path, content.len() as u64), content.to_vec());
    r
}

/// The build-config env files (`<build_config_dir>/env/<name>`, by default
/// `/cnb/build-config/env/<name>`), sorted by name.
pub fn build_config_env(files: &BTreeMap<String, Vec<u8>>, build_config_dir: &str) -> LayerRecipe {
    let mut r = LayerRecipe::new(format!("{build_config_dir}/env"));
    for (name, content) in files {
        r.push_bytes(TarEntry::file(format!("{build_config_dir}/env/{name}"), content.len() as u64), content.clone());
    }
    r
}

/// The `/platform/env` layer pack always adds: in `builder create` an empty tar.
pub fn platform_env() -> LayerRecipe {
    LayerRecipe::new("/platform/env")
}

/// A whiteout hiding `<parent>/<escaped id>/<version>` of the base image, written the way pack
/// writes it (an empty 0644 file with mtime 0, the Unix epoch).
pub fn whiteout(parent: &str, escaped_id: &str, version: &str) -> LayerRecipe {
    let path = format!("{parent}/{escaped_id}/.wh.{version}");
    let mut r = LayerRecipe::new(format!("whiteout {path}"));
    r.push_header(TarEntry::file(path, 0).with_mtime(TarTime::from_secs(0)));
    r
}

fn run_image_table(entry: &RunImage) -> Table {
    let mut t = Table::new();
    t.str("image", &entry.image);
    if let Some(m) = &entry.mirrors {
        t.insert("mirrors", Value::StrArray(m.clone()));
    }
    t
}

fn module_ref_table(r: &ModuleRef) -> Table {
    let info = &r.info;
    let mut t = Table::new();
    t.str_nonempty("id", &info.id).str_nonempty("name", &info.name).str_nonempty("version", &info.version);
    t.str_nonempty("description", &info.description).str_nonempty("homepage", &info.homepage);
    if !info.keywords.is_empty() {
        t.insert("keywords", Value::StrArray(info.keywords.clone()));
    }
    if !info.exec_env.is_empty() {
        t.insert("exec-env", Value::StrArray(info.exec_env.clone()));
    }
    if !info.licenses.is_empty() {
        let licenses = info
            .licenses
            .iter()
            .map(|l| {
                let mut lt = Table::new();
                lt.str_nonempty("type", &l.kind).str_nonempty("uri", &l.uri);
                lt
            })
            .collect();
        t.insert("licenses", Value::Tables(licenses));
    }
    if info.clear_env {
        t.insert("clear-env", Value::Bool(true));
    }
    if r.optional {
        t.insert("optional", Value::Bool(true));
    }
    t
}

fn order_tables(order: &[OrderEntry]) -> Value {
    Value::Tables(
        order
            .iter()
            .map(|entry| {
                let mut t = Table::new();
                t.insert("group", Value::Tables(entry.refs().iter().map(module_ref_table).collect()));
                t
            })
            .collect(),
    )
}

/// `/cnb/order.toml`: the resolved buildpack and extension orders (an empty file when both
/// are empty).
pub fn order_toml(order: &[OrderEntry], order_extensions: &[OrderEntry]) -> String {
    let mut doc = Table::new();
    if !order.is_empty() {
        doc.insert("order", order_tables(order));
    }
    if !order_extensions.is_empty() {
        doc.insert("order-extensions", order_tables(order_extensions));
    }
    encode(&doc)
}

/// `/cnb/system.toml`: the resolved system buildpacks.
pub fn system_toml(system: &System) -> String {
    let side = |refs: &[ModuleRef]| {
        let mut t = Table::new();
        if !refs.is_empty() {
            t.insert("buildpacks", Value::Tables(refs.iter().map(module_ref_table).collect()));
        }
        t
    };
    let mut sys = Table::new();
    sys.insert("pre", Value::Table(side(&system.pre.buildpacks)));
    sys.insert("post", Value::Table(side(&system.post.buildpacks)));
    let mut doc = Table::new();
    doc.insert("system", Value::Table(sys));
    encode(&doc)
}

/// `/cnb/stack.toml`: `[run-image]` with the first run image. `mirrors: None` omits the key;
/// `Some(vec![])` writes `mirrors = []` (pack keeps that distinction).
pub fn stack_toml(run_image: &RunImage) -> String {
    let mut doc = Table::new();
    doc.insert("run-image", Value::Table(run_image_table(run_image)));
    encode(&doc)
}

/// `/cnb/run.toml`: one `[[images]]` per run image.
pub fn run_toml(images: &[RunImage]) -> String {
    let mut doc = Table::new();
    if !images.is_empty() {
        doc.insert("images", Value::Tables(images.iter().map(run_image_table).collect()));
    }
    encode(&doc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cnbx_oci::BlobStore;
    use cnbx_oci::layer::build_layer;
    use cnbx_oci::progress::NullReporter;

    fn diff_id(recipe: &LayerRecipe) -> (String, u64) {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let info = build_layer(recipe, &store, &NullReporter).unwrap();
        (info.diff_id.to_string(), info.uncompressed_size)
    }

    // Test vectors: the diffIDs of the layers pack writes for the same content.
    #[test]
    fn default_dirs_match_pack() {
        assert_eq!(
            diff_id(&default_dirs(1000, 1000, BUILD_CONFIG_DIR)),
            ("sha256:fc454e27c1c60562a35add6e2a13dcd2f674221ec85d4266e85594499abdaac2".into(), 5632)
        );
        assert_eq!(
            diff_id(&default_dirs(0, 0, BUILD_CONFIG_DIR)),
            ("sha256:1e225527dd29d6f13266701759b2caee8d609fe715de3786f65b0e84dfda4852".into(), 5632)
        );
    }

    #[test]
    fn platform_env_is_the_empty_tar() {
        assert_eq!(
            diff_id(&platform_env()),
            ("sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef".into(), 1024)
        );
    }

    #[test]
    fn stack_and_run_toml_layers_match_pack() {
        let run = RunImage { image: "pack-test/run".into(), mirrors: Some(vec!["pack-test/run-mirror".into()]) };
        assert_eq!(
            diff_id(&single_file("/cnb/stack.toml", stack_toml(&run).as_bytes())),
            ("sha256:2de257cbe397eef231dc74fd810b1c9cea83368f19be583faf29da2473285fa8".into(), 2048)
        );
        assert_eq!(
            diff_id(&single_file("/cnb/run.toml", run_toml(std::slice::from_ref(&run)).as_bytes())),
            ("sha256:394893e480d7df8cec4a7902faf700d2ab854c78122c275a452fd0cd58645521".into(), 2048)
        );
        let no_mirrors = RunImage { image: "a/b".into(), mirrors: None };
        assert_eq!(stack_toml(&no_mirrors), "[run-image]\n  image = \"a/b\"\n");
        let empty_mirrors = RunImage { image: "a/b".into(), mirrors: Some(vec![]) };
        assert_eq!(stack_toml(&empty_mirrors), "[run-image]\n  image = \"a/b\"\n  mirrors = []\n");
    }

    #[test]
    fn build_config_env_matches_pack_for_a_fixed_order() {
        // pack's vector was made with FOO.append written before FOO.delim, which is also
        // the sorted order.
        let files =
            BTreeMap::from([("FOO.append".to_owned(), b"bar".to_vec()), ("FOO.delim".to_owned(), b":".to_vec())]);
        assert_eq!(
            diff_id(&build_config_env(&files, BUILD_CONFIG_DIR)),
            ("sha256:7c7eee9728aaae08bac87fe48a5a67204124304a6915f51e35283ba05110d2f9".into(), 3072)
        );
    }

    #[test]
    fn order_and_system_toml_match_pack() {
        let order = vec![OrderEntry::new(vec![ModuleRef::new("read/env", "read-env-version").optional()])];
        let toml = order_toml(&order, &[]);
        assert_eq!(
            diff_id(&single_file("/cnb/order.toml", toml.as_bytes())),
            ("sha256:d5d4db0b377ffd48905dfb9423f3f980757843fa27097dd86cd0b9eefb21be4f".into(), 2048)
        );
        assert_eq!(order_toml(&[], &[]), "");
        let ext = vec![OrderEntry::new(vec![ModuleRef::new("ext/one", "1")])];
        assert!(order_toml(&order, &ext).ends_with(
            "\n[[order-extensions]]\n\n  [[order-extensions.group]]\n    id = \"ext/one\"\n    version = \"1\"\n"
        ));
        let mut system = System::default();
        system.pre.buildpacks.push(ModuleRef::new("system/pre", "system-pre-version"));
        system.post.buildpacks.push(ModuleRef::new("system/post", "system-post-version").optional());
        assert_eq!(
            system_toml(&system),
            "[system]\n  [system.pre]\n\n    [[system.pre.buildpacks]]\n      id = \"system/pre\"\n      version = \"system-pre-version\"\n  [system.post]\n\n    [[system.post.buildpacks]]\n      id = \"system/post\"\n      version = \"system-post-version\"\n      optional = true\n"
        );
    }

    #[test]
    fn whiteout_matches_pack() {
        assert_eq!(
            diff_id(&whiteout("/cnb/buildpacks", "read_env", "read-env-version")),
            ("sha256:d60779963cf7b8a2092201fb1c98e58c001dd80c34d5f86b4d927cf655eab570".into(), 1536)
        );
    }
}
