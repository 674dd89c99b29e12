//! Real builder.toml, buildpack.toml and extension.toml files from public builder and
//! buildpack repositories, read where they are: `../shared/realworld/` next to the workspace
//! root (CI has it; its `SOURCES.md` names the repositories, commits and licenses). The tests
//! print a message and pass when the directory is absent.
//!
//! * Every builder file gets through every builder.toml check of `builder create` (the first
//!   error is then that its build image is not in the local store); a template that was not
//!   rendered is refused, naming its placeholder.
//! * Every Linux buildpack.toml and extension.toml, with its template placeholders filled in,
//!   is made into a directory module (with `bin/` scripts) and built into one builder with
//!   the offline test images; `builder inspect` lists each with its id, version, name and
//!   homepage, the layers label holds its API, and its descriptor is under
//!   `/cnb/buildpacks/...` or `/cnb/extensions/...` byte for byte. Modules that composite
//!   buildpacks name but the directory does not hold are added as small stand-ins.

#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use common::{Env, workspace_root};
use serde_json::Value;

fn realworld() -> Option<PathBuf> {
    let dir = workspace_root().parent().unwrap().join("shared/realworld");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipping: {} does not exist (CI provides it)", dir.display());
        None
    }
}

/// Every file under `dir`, sorted.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The template placeholders in `text`: `${NAME}`, `{{ … }}` and `{NAME}` (upper case).
fn placeholders(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find('{') {
        let dollar = start > 0 && rest.as_bytes()[start - 1] == b'$';
        let after = &rest[start..];
        let end =
            if after.starts_with("{{") { after.find("}}").map(|e| e + 2) } else { after.find('}').map(|e| e + 1) };
        let Some(end) = end else { break };
        let inner = after[..end].trim_matches(['{', '}']);
        let upper =
            !inner.is_empty() && inner.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
        if after.starts_with("{{") || dollar || upper {
            let from = if dollar { start - 1 } else { start };
            found.push(rest[from..start + end].to_owned());
        }
        rest = &rest[start + end..];
    }
    found
}

#[test]
fn every_builder_toml_parses_and_templates_name_their_placeholder() {
    let Some(dir) = realworld() else { return };
    let env = Env::new();
    let builders: Vec<PathBuf> = files(&dir)
        .into_iter()
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.contains("builder") && (name.ends_with(".toml") || name.ends_with(".toml.template"))
        })
        .collect();
    assert!(builders.len() >= 20, "{builders:?}");
    for path in &builders {
        let text = std::fs::read_to_string(path).unwrap();
        let out = env
            .cmd()
            .args(["builder", "create", "oci:out:1", "--config", path.to_str().unwrap(), "--pull-policy", "never"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{}: {stderr}", path.display());
        let error = stderr.lines().find(|l| l.starts_with("ERROR: ")).unwrap_or_default();
        let found = placeholders(&text);
        if found.is_empty() {
            assert!(
                error.starts_with("ERROR: build image '") && error.contains("' was not found in the cnbx store"),
                "{}: {stderr}",
                path.display()
            );
        } else {
            assert!(error.contains("a template placeholder"), "{}: {stderr}", path.display());
            assert!(found.iter().any(|p| error.contains(&format!("'{p}'"))), "{}: {found:?} {stderr}", path.display());
        }
    }
}

/// A module descriptor, filled in and ready to be written as a directory module.
struct Descriptor {
    source: String,
    kind: &'static str,
    text: String,
    id: String,
    version: String,
    name: String,
    homepage: String,
    api: String,
    composite: bool,
}

/// What a packaging tool would fill in: the version of Paketo's `{{.version}}` (or of a
/// descriptor without one), and Google's `${…}` values.
fn fill(text: &str, kind: &str) -> String {
    let mut text = text
        .replace("{{.version}}", "1.0.0")
        .replace("${API}", "0.10")
        .replace("${ID}", "google.example.tool")
        .replace("${VERSION}", "1.0.0")
        .replace("${NAME}", "Example Tool");
    let table: toml::Table = text.parse().unwrap();
    if table[kind].get("version").is_none() {
        let header = format!("[{kind}]\n");
        text = text.replacen(&header, &format!("{header}  version = \"1.0.0\"\n"), 1);
    }
    text
}

fn read_descriptor(path: &Path, root: &Path) -> Option<Descriptor> {
    let raw = std::fs::read_to_string(path).unwrap();
    let name = path.file_name().unwrap().to_string_lossy();
    let kind = if name.starts_with("extension.toml") { "extension" } else { "buildpack" };
    let text = fill(&raw, kind);
    let doc: toml::Table = text.parse().unwrap();
    let targets = doc.get("targets").and_then(toml::Value::as_array).cloned().unwrap_or_default();
    let oses: BTreeSet<&str> = targets.iter().filter_map(|t| t.get("os").and_then(toml::Value::as_str)).collect();
    let source = path.strip_prefix(root).unwrap().display().to_string();
    if !oses.is_empty() && !oses.contains("linux") {
        eprintln!("{source}: not a Linux {kind}, left out");
        return None;
    }
    let info = &doc[kind];
    let field = |k: &str| info.get(k).and_then(toml::Value::as_str).unwrap_or_default().to_owned();
    Some(Descriptor {
        source,
        kind,
        id: field("id"),
        version: field("version"),
        name: field("name"),
        homepage: field("homepage"),
        api: doc["api"].as_str().unwrap().to_owned(),
        composite: doc.contains_key("order"),
        text,
    })
}

/// `(id, version)` of every module the composite buildpack `text` names.
fn order_refs(text: &str) -> Vec<(String, String)> {
    let doc: toml::Table = text.parse().unwrap();
    let mut refs = Vec::new();
    for entry in doc.get("order").and_then(toml::Value::as_array).into_iter().flatten() {
        for r in entry.get("group").and_then(toml::Value::as_array).into_iter().flatten() {
            let s = |k: &str| r.get(k).and_then(toml::Value::as_str).unwrap_or_default().to_owned();
            refs.push((s("id"), s("version")));
        }
    }
    refs
}

/// Writes a directory module: the descriptor and, unless it is a composite, `bin/` scripts.
fn write_module(dir: &Path, d: &Descriptor) {
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    std::fs::write(dir.join(format!("{}.toml", d.kind)), &d.text).unwrap();
    if d.composite {
        std::fs::remove_dir(dir.join("bin")).unwrap();
        return;
    }
    let bins: &[&str] = if d.kind == "extension" { &["detect", "generate"] } else { &["detect", "build"] };
    for bin in bins {
        std::fs::write(dir.join("bin").join(bin), "#!/bin/sh\nexit 0\n").unwrap();
    }
}

#[test]
fn every_linux_buildpack_and_extension_builds_into_a_builder() {
    let Some(root) = realworld() else { return };
    let env = Env::with_test_images();
    let mut modules: Vec<Descriptor> = files(&root)
        .iter()
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with("buildpack.toml") || name.starts_with("extension.toml")
        })
        .filter_map(|p| read_descriptor(p, &root))
        .collect();
    assert!(modules.len() >= 30, "{}", modules.len());
    // Stand-ins for what composites name and the directory does not hold.
    let have: BTreeSet<(String, String)> = modules.iter().map(|m| (m.id.clone(), m.version.clone())).collect();
    let wanted: BTreeSet<(String, String)> =
        modules.iter().filter(|m| m.composite).flat_map(|m| order_refs(&m.text)).collect();
    let stand_ins: Vec<Descriptor> = wanted
        .difference(&have)
        .map(|(id, version)| Descriptor {
            source: format!("stand-in for {id}@{version}"),
            kind: "buildpack",
            text: format!(
                "api = \"0.10\"\n\n[buildpack]\n  id = \"{id}\"\n  version = \"{version}\"\n\n[[targets]]\n  os = \"linux\"\n"
            ),
            id: id.clone(),
            version: version.clone(),
            name: String::new(),
            homepage: String::new(),
            api: "0.10".to_owned(),
            composite: false,
        })
        .collect();
    let real = modules.len();
    modules.extend(stand_ins);

    let repo = workspace_root().display().to_string();
    let mut toml = String::new();
    for (i, m) in modules.iter().enumerate() {
        let dir = env.work.path().join(format!("modules/{i}"));
        write_module(&dir, m);
        toml.push_str(&format!("[[{}s]]\n  uri = \"{}\"\n\n", m.kind, dir.display()));
    }
    toml.push_str(&format!(
        "[build]\n  image = \"cnbx.test/build:jammy\"\n\n[[run.images]]\n  image = \"cnbx.test/run:jammy\"\n\n\
         [lifecycle]\n  uri = \"{repo}/testdata/lifecycle/lifecycle-v0.21.0+test.tgz\"\n"
    ));
    let config = env.write("builder.toml", &toml);
    let out = env
        .cmd()
        .args(["builder", "create", "oci:out:latest", "--config", config.to_str().unwrap(), "--pull-policy", "never"])
        .args(["--target", "linux/amd64"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", env.format(&out));

    let inspect = env.cmd().args(["builder", "inspect", "oci:out:latest", "--output", "json"]).output().unwrap();
    assert!(inspect.status.success(), "{}", env.format(&inspect));
    let doc: Value = serde_json::from_slice(&inspect.stdout).unwrap();
    let listed = |kind: &str| doc["local_info"][format!("{kind}s")].as_array().cloned().unwrap_or_default();
    let layout = env.work.path().join("out");
    let config_json = cnbx_testkit::skopeo_config(&format!("oci:{}:latest", layout.display()), &[]).unwrap();
    let rootfs = cnbx_testkit::umoci_unpack(&layout, "latest", &env.work.path().join("bundle")).unwrap();
    for m in &modules[..real] {
        let what = &m.source;
        let entry = listed(m.kind)
            .into_iter()
            .find(|b| b["id"] == m.id.as_str() && b["version"] == m.version.as_str())
            .unwrap_or_else(|| panic!("{what}: {}@{} not in builder inspect", m.id, m.version));
        assert_eq!(entry["name"].as_str().unwrap_or_default(), m.name, "{what}");
        assert_eq!(entry["homepage"].as_str().unwrap_or_default(), m.homepage, "{what}");
        let layers_label = format!("io.buildpacks.{}.layers", m.kind);
        let layers: Value =
            serde_json::from_str(config_json["config"]["Labels"][&layers_label].as_str().unwrap()).unwrap();
        assert_eq!(layers[&m.id][&m.version]["api"], m.api.as_str(), "{what}");
        let on_builder = rootfs
            .join(format!("cnb/{}s", m.kind))
            .join(m.id.replace('/', "_"))
            .join(&m.version)
            .join(format!("{}.toml", m.kind));
        assert_eq!(std::fs::read_to_string(&on_builder).unwrap(), m.text, "{what}: {}", on_builder.display());
    }
}
