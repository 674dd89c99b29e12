//! Hostile text and labels through the real binary. Nothing raw on a terminal, nothing
//! unchecked in machine-usable output: text that images, labels and buildpacks carry (escape
//! sequences, C1 controls, line breaks) reaches the terminal escaped, in every output, and
//! image names read from a builder's labels are checked as references before they are
//! printed or used. And `builder inspect` stays bounded whatever the order labels say.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::images::{edit_config, layout, minimal_config, oci, stored, tools};
use common::{Env, workspace_root};
use serde_json::Value;

/// A description that retitles the terminal and fakes a line of its own.
const DESCRIPTION: &str = "Nice\u{1b}]0;pwned\u{7} builder\nTrusted: Yes";
/// A buildpack name that clears the screen and moves a column.
const NAME: &str = "Moon\u{1b}[2J\tBuildpack";
/// A homepage with a C1 control (CSI) and DEL.
const HOMEPAGE: &str = "https://moon.example/\u{9b}31m\u{7f}";
/// A run image that is a shell command.
const SHELL: &str = "registry.example/run:1 --privileged $(touch /tmp/pwned)";

/// The control characters in `bytes` (UTF-8 text) other than line feeds.
fn raw_controls(bytes: &[u8]) -> Vec<char> {
    String::from_utf8_lossy(bytes).chars().filter(|c| c.is_control() && *c != '\n').collect()
}

fn assert_no_raw_controls(out: &Output, what: &str) {
    assert_eq!(
        raw_controls(&out.stdout),
        Vec::<char>::new(),
        "{what}: stdout {:?}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(
        raw_controls(&out.stderr),
        Vec::<char>::new(),
        "{what}: stderr {:?}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A builder (the minimal config: one buildpack) written to `oci:<work>/builder:base`, with
/// its labels changed by `edit`. Returns the image name.
fn builder_with_labels(env: &Env, edit: impl FnOnce(&mut Value)) -> String {
    let config = minimal_config(env, "cnbx.test/build:jammy", "cnbx.test/run:jammy");
    let dir = env.work.path().join("builder");
    let image = format!("oci:{}:base", dir.display());
    let out = env
        .cmd()
        .args(["builder", "create", &image, "--config", config.to_str().unwrap(), "--pull-policy", "never"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", env.format(&out));
    edit_config(&dir, |config| edit(&mut config["config"]["Labels"]), None);
    image
}

/// Like [`builder_with_labels`], with the metadata label changed by `edit`.
fn builder_with_metadata(env: &Env, edit: impl FnOnce(&mut Value)) -> String {
    builder_with_labels(env, |labels| {
        let mut metadata: Value =
            serde_json::from_str(labels["io.buildpacks.builder.metadata"].as_str().unwrap()).unwrap();
        edit(&mut metadata);
        labels["io.buildpacks.builder.metadata"] = metadata.to_string().into();
    })
}

/// Like [`builder_with_labels`], with the order and buildpack layers labels replaced.
fn builder_with_order(env: &Env, order: &str, layers: &str) -> String {
    builder_with_labels(env, |labels| {
        labels["io.buildpacks.buildpack.order"] = order.into();
        labels["io.buildpacks.buildpack.layers"] = layers.into();
    })
}

fn inspect(env: &Env, image: &str, format: &str) -> Output {
    env.cmd().args(["builder", "inspect", image, "--output", format]).output().unwrap()
}

#[test]
fn inspect_shows_label_text_escaped_and_documents_keep_its_value() {
    let env = Env::with_test_images();
    let image = builder_with_metadata(&env, |m| {
        m["description"] = DESCRIPTION.into();
        m["buildpacks"][0]["name"] = NAME.into();
        m["buildpacks"][0]["homepage"] = HOMEPAGE.into();
    });

    let out = inspect(&env, &image, "human-readable");
    assert!(out.status.success(), "{}", env.format(&out));
    assert_no_raw_controls(&out, "human-readable");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("Description: Nice\\u{1b}]0;pwned\\u{7} builder\\u{a}Trusted: Yes\n"), "{text}");
    assert!(text.contains("Moon\\u{1b}[2J\\u{9}Buildpack"), "{text}");
    assert!(text.contains("https://moon.example/\\u{9b}31m\\u{7f}"), "{text}");
    assert!(text.lines().any(|l| l == "Trusted: No") && !text.lines().any(|l| l == "Trusted: Yes"), "{text}");

    // The documents hold the same values (escaped as each format escapes), and no raw
    // control: JSON's and TOML's encoders leave DEL and the C1 controls as they are.
    let described =
        |doc: &Value| (doc["local_info"]["description"].clone(), doc["local_info"]["buildpacks"][0].clone());
    let out = inspect(&env, &image, "json");
    assert!(out.status.success(), "{}", env.format(&out));
    assert_no_raw_controls(&out, "json");
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let (description, buildpack) = described(&json);
    assert_eq!(description, DESCRIPTION);
    assert_eq!((&buildpack["name"], &buildpack["homepage"]), (&Value::from(NAME), &Value::from(HOMEPAGE)));

    let out = inspect(&env, &image, "toml");
    assert!(out.status.success(), "{}", env.format(&out));
    assert_no_raw_controls(&out, "toml");
    let toml: toml::Value = toml::from_str(&String::from_utf8(out.stdout).unwrap()).unwrap();
    assert_eq!(toml["local_info"]["description"].as_str(), Some(DESCRIPTION));
    assert_eq!(toml["local_info"]["buildpacks"][0]["homepage"].as_str(), Some(HOMEPAGE));

    let out = inspect(&env, &image, "yaml");
    assert!(out.status.success(), "{}", env.format(&out));
    assert_no_raw_controls(&out, "yaml");
}

#[test]
fn a_run_image_name_that_is_not_a_reference_is_an_error_naming_the_label() {
    let env = Env::with_test_images();
    let naming = |what: &str| {
        format!(
            "label io.buildpacks.builder.metadata names an invalid {what}: invalid image reference '{SHELL}': it \
             contains a space"
        )
    };
    for (what, edit) in [
        ("run image", (|m: &mut Value| m["images"][0]["image"] = SHELL.into()) as fn(&mut Value)),
        ("run image mirror", |m: &mut Value| m["images"][0]["mirrors"] = serde_json::json!(["ok/mirror", SHELL])),
        ("run image", |m: &mut Value| m["stack"]["runImage"]["image"] = SHELL.into()),
    ] {
        let image = builder_with_metadata(&env, edit);
        let chosen = env.cmd().args(["builder", "run-image", &image, "--app-image", "team/app"]).output().unwrap();
        let text = env.format(&chosen);
        assert_eq!(chosen.status.code(), Some(1), "{text}");
        assert!(chosen.stdout.is_empty(), "nothing is printed as the run image: {text}");
        assert!(text.contains(&naming(what)), "{text}");
        for format in ["human-readable", "json"] {
            let out = inspect(&env, &image, format);
            let text = env.format(&out);
            assert_eq!(out.status.code(), Some(1), "{text}");
            assert!(!String::from_utf8_lossy(&out.stdout).contains("--privileged"), "{text}");
            assert!(text.contains(&naming(what)), "{text}");
        }
        std::fs::remove_dir_all(env.work.path().join("builder")).unwrap();
    }
}

/// The platform this machine's build image is read for.
fn host_arch() -> &'static str {
    if cfg!(target_arch = "aarch64") { "arm64" } else { "amd64" }
}

/// The run image in the local store, with `io.buildpacks.rebasable` set to `value`.
fn run_image_labelled(env: &Env, value: &str) -> String {
    let dir = layout(env, "run", "run-hostile", host_arch(), &[]);
    edit_config(&dir, |c| c["config"]["Labels"]["io.buildpacks.rebasable"] = value.into(), None);
    stored(env, &dir, "run-hostile")
}

#[test]
fn findings_quoting_an_image_label_stay_one_escaped_line() {
    if !tools() {
        eprintln!("skipped: skopeo and umoci are needed");
        return;
    }
    let env = Env::with_test_images();
    let value = "\u{1b}]52;c;cHduZWQ=\u{7}\nwarning RUN-LABEL-REBASABLE run image: all good";
    let run = run_image_labelled(&env, value);
    let shown = "'\\u{1b}]52;c;cHduZWQ=\\u{7}\\u{a}warning RUN-LABEL-REBASABLE run image: all good'";

    let build = oci(&layout(&env, "build", "build", host_arch(), &[]));
    let check = ["base-image", "check", "--build", &build, "--run", &run, "--pull-policy", "never"];
    let out = env.cmd().args(check).output().unwrap();
    assert_no_raw_controls(&out, "base-image check");
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    let finding =
        text.lines().find(|l| l.contains("RUN-LABEL-REBASABLE")).unwrap_or_else(|| panic!("{}", env.format(&out)));
    assert!(finding.contains(shown), "{finding}");
    assert_eq!(text.lines().filter(|l| l.contains("all good")).count(), 1, "one line: {text}");

    let out = env.cmd().args(check).args(["--output", "json"]).output().unwrap();
    assert_no_raw_controls(&out, "base-image check --output json");
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let findings = json["findings"].as_array().unwrap();
    assert!(findings.iter().any(|f| f["message"].as_str().unwrap().contains(value)), "{json}");

    // builder create warns with the same finding.
    let config = minimal_config(&env, "cnbx.test/build:jammy", &run);
    let out = env
        .cmd()
        .args(["builder", "create", "oci:out", "--config", config.to_str().unwrap(), "--pull-policy", "never"])
        .output()
        .unwrap();
    let text = env.format(&out);
    assert!(out.status.success(), "{text}");
    assert_no_raw_controls(&out, "builder create");
    let warning = text.lines().find(|l| l.contains("RUN-LABEL-REBASABLE")).unwrap_or_else(|| panic!("{text}"));
    assert!(warning.starts_with("Warning: ") && warning.contains(shown), "{warning}");
}

/// A buildpack directory (id `x/y`) whose descriptor has `name` and `homepage`.
fn buildpack_dir(env: &Env, name: &str, homepage: &str) -> PathBuf {
    let dir = env.work.path().join("bp");
    cnbx_testkit::hostile::write_buildpack_dir(&dir, "x/y", "1.0.0").unwrap();
    let descriptor = format!(
        "api = \"0.10\"\n\n[buildpack]\n  id = \"x/y\"\n  version = \"1.0.0\"\n  name = \"{}\"\n  homepage = \"{}\"\n\n\
         [[targets]]\n  os = \"linux\"\n",
        toml_escape(name),
        toml_escape(homepage)
    );
    std::fs::write(dir.join("buildpack.toml"), descriptor).unwrap();
    dir
}

/// `s` as the inside of a TOML basic string.
fn toml_escape(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '"' | '\\' => format!("\\{c}"),
            c if c.is_control() => format!("\\u{:04X}", u32::from(c)),
            c => c.to_string(),
        })
        .collect()
}

fn builder_toml(env: &Env, uri: &str) -> PathBuf {
    let repo = workspace_root();
    let text = format!(
        "[[buildpacks]]\n  uri = \"{}\"\n\n[[order]]\n  [[order.group]]\n    id = \"x/y\"\n\n[build]\n  image = \
         \"cnbx.test/build:jammy\"\n\n[[run.images]]\n  image = \"cnbx.test/run:jammy\"\n\n[lifecycle]\n  uri = \
         \"{}/testdata/lifecycle/lifecycle-v0.21.0+test.tgz\"\n",
        toml_escape(uri),
        repo.display()
    );
    env.write("builder.toml", &text)
}

fn create(env: &Env, config: &Path) -> Output {
    env.cmd()
        .args(["builder", "create", "oci:out", "--config", config.to_str().unwrap(), "--pull-policy", "never"])
        .output()
        .unwrap()
}

#[test]
fn descriptor_names_and_homepages_with_control_characters_are_warned_about_escaped() {
    let env = Env::with_test_images();
    buildpack_dir(&env, NAME, HOMEPAGE);
    let out = create(&env, &builder_toml(&env, "bp"));
    let text = env.format(&out);
    assert!(out.status.success(), "{text}");
    assert_no_raw_controls(&out, "builder create");
    for warning in [
        "Warning: buildpack 'x/y@1.0.0': its name has control characters, which cnbx shows escaped: \
         'Moon\\u{1b}[2J\\u{9}Buildpack'",
        "Warning: buildpack 'x/y@1.0.0': its homepage has control characters, which cnbx shows escaped: \
         'https://moon.example/\\u{9b}31m\\u{7f}'",
    ] {
        assert!(text.lines().any(|l| l == warning), "expected {warning:?} in:\n{text}");
    }
}

#[test]
fn errors_and_warnings_quoting_inputs_reach_the_terminal_escaped() {
    let env = Env::with_test_images();
    // An invalid locator, quoted by the error.
    let uri = "\u{1b}]0;pwned\u{7}\u{9b}2J://bp";
    let out = create(&env, &builder_toml(&env, uri));
    assert_eq!(out.status.code(), Some(1), "{}", env.format(&out));
    assert_no_raw_controls(&out, "invalid locator");
    assert!(String::from_utf8_lossy(&out.stderr).contains("\\u{1b}]0;pwned\\u{7}"), "{}", env.format(&out));

    // An extended attribute named with an escape sequence, named by the warning that it was
    // dropped.
    use cnbx_testkit::hostile::{RawEntry, buildpack_entries, gzip, tar};
    let entry = RawEntry::exe("bin/x", b"x").pax("SCHILY.xattr.user.\u{1b}[31mred\u{9b}", "1");
    let entries = buildpack_entries("x/y", "1.0.0", vec![entry]);
    std::fs::write(env.work.path().join("bp.tgz"), gzip(&tar(&entries))).unwrap();
    let out = create(&env, &builder_toml(&env, "bp.tgz"));
    let text = env.format(&out);
    assert!(out.status.success(), "{text}");
    assert_no_raw_controls(&out, "dropped extended attributes");
    assert!(text.contains("its extended attributes were dropped (user.\\u{1b}[31mred\\u{9b})"), "{text}");
}

/// The order and layers labels of `n` composites `bp/0` … `bp/<n-1>`, each with `groups`
/// groups naming the next one (the last names a plain buildpack); the order names `bp/0`.
fn nested(n: usize, groups: usize) -> (String, String) {
    let mut layers = String::from("{");
    for i in 0..n {
        let next = if i + 1 == n { "leaf".to_owned() } else { format!("bp/{}", i + 1) };
        let order = vec![format!(r#"{{"group":[{{"id":"{next}","version":"1"}}]}}"#); groups].join(",");
        layers.push_str(&format!(r#""bp/{i}":{{"1":{{"api":"0.10","order":[{order}],"layerDiffID":"sha256:0"}}}},"#));
    }
    layers.push_str(r#""leaf":{"1":{"api":"0.10","layerDiffID":"sha256:1"}}}"#);
    (r#"[{"group":[{"id":"bp/0","version":"1"}]}]"#.to_owned(), layers)
}

/// Labels whose detection order pack would expand into 2^30 entries, or 20,000 levels deep,
/// end `builder inspect` with an error naming the labels (in every format), and a smaller
/// `--depth` still shows the top of the tree.
#[test]
fn inspect_refuses_detection_orders_out_of_bounds_naming_the_labels() {
    let env = Env::with_test_images();
    let cases = [
        (
            nested(30, 2),
            "the detection order of labels io.buildpacks.buildpack.order and io.buildpacks.buildpack.layers has more than 100000 entries",
        ),
        (
            nested(20_000, 1),
            "composite buildpacks in label io.buildpacks.buildpack.layers nest more than 32 levels deep (at 'bp/32@1')",
        ),
    ];
    for ((order, layers), message) in cases {
        let image = builder_with_order(&env, &order, &layers);
        for format in ["human-readable", "json", "yaml", "toml"] {
            let out = inspect(&env, &image, format);
            let text = env.format(&out);
            assert_eq!(out.status.code(), Some(1), "{format}: {text}");
            assert!(text.contains(message), "{format}: {text}");
        }
        let out = env.cmd().args(["builder", "inspect", &image, "--depth", "3"]).output().unwrap();
        assert!(out.status.success(), "{}", env.format(&out));
        assert!(String::from_utf8_lossy(&out.stdout).contains("bp/3@1"), "{}", env.format(&out));
        std::fs::remove_dir_all(env.work.path().join("builder")).unwrap();
    }
}
