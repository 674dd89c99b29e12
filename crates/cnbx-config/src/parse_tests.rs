use std::path::{Path, PathBuf};

use super::*;
use crate::model::*;
use cnbx_model::{Distribution, License, ModuleInfo, RunImage, Target};

fn parse(src: &str) -> LoadedConfig {
    parse_str(src, Path::new("builder.toml")).unwrap()
}

fn parse_err(src: &str) -> ConfigError {
    parse_str(src, Path::new("builder.toml")).unwrap_err()
}

const MINIMAL: &str = "[[order]]\n[[order.group]]\nid = \"a\"\n";

#[test]
fn every_key_is_decoded() {
    let src = r#"
description = "desc"

[[buildpacks]]
uri = "bp.tgz"
id = "bp/a"
version = "1.0.0"
name = "A"
description = "a buildpack"
homepage = "https://a"
keywords = ["k1", "k2"]
exec-env = ["production"]
clear-env = true
[[buildpacks.licenses]]
type = "MIT"
uri = "https://mit"

[[extensions]]
uri = "ext"

[[order]]
[[order.group]]
id = "bp/a"
version = "1.0.0"
optional = true
name = "A"
homepage = "https://a"

[[order-extensions]]
[[order-extensions.group]]
id = "ext/a"

[stack]
id = "stack.id"

[build]
image = "build:1"
[[build.env]]
name = "A"
value = "1"
suffix = "override"
delim = ","
exec-env = ["test"]

[[run.images]]
image = "run:1"
mirrors = ["m1", "m2"]
[[run.images]]
image = "run:2"

[lifecycle]
version = "0.20.0"

[[targets]]
os = "linux"
arch = "arm"
variant = "v7"
[[targets.distros]]
name = "ubuntu"
version = "22.04"

[system.pre]
buildpacks = [{ id = "pre/a", version = "1", optional = true }]
[[system.post.buildpacks]]
id = "post/a"
"#;
    let loaded = parse(src);
    let c = &loaded.config;
    assert_eq!(c.description, "desc");
    let bp = &c.buildpacks[0];
    assert_eq!(
        (bp.uri.as_str(), bp.image.as_str(), bp.info.id.as_str(), bp.info.version.as_str()),
        ("bp.tgz", "", "bp/a", "1.0.0")
    );
    assert_eq!(
        bp.info,
        ModuleInfo {
            id: "bp/a".into(),
            name: "A".into(),
            version: "1.0.0".into(),
            description: "a buildpack".into(),
            homepage: "https://a".into(),
            keywords: vec!["k1".into(), "k2".into()],
            exec_env: vec!["production".into()],
            licenses: vec![License { kind: "MIT".into(), uri: "https://mit".into() }],
            clear_env: true,
        }
    );
    assert_eq!(c.extensions[0].uri, "ext");
    let group = &c.order.as_ref().unwrap()[0].refs()[0];
    assert_eq!(group.info.full_name(), "bp/a@1.0.0");
    assert!(group.optional);
    assert_eq!(group.info.name, "A");
    assert_eq!(group.info.homepage, "https://a");
    assert_eq!(c.order_extensions.as_ref().unwrap()[0].refs()[0].info.id, "ext/a");
    assert!(!c.order_extensions.as_ref().unwrap()[0].refs()[0].optional);
    assert_eq!(
        c.stack,
        StackConfig {
            id: "stack.id".into(),
            build_image: "build:1".into(),
            run_image: "run:1".into(),
            run_image_mirrors: vec!["m1".into(), "m2".into()],
        }
    );
    assert_eq!(c.build.image, "build:1");
    assert_eq!(
        c.build.env,
        vec![BuildEnv {
            name: "A".into(),
            value: "1".into(),
            suffix: "override".into(),
            delim: ",".into(),
            exec_env: vec!["test".into()],
        }]
    );
    assert_eq!(
        c.run.images,
        vec![
            RunImage { image: "run:1".into(), mirrors: Some(vec!["m1".into(), "m2".into()]) },
            RunImage { image: "run:2".into(), mirrors: None },
        ]
    );
    assert_eq!(c.lifecycle, LifecycleConfig { uri: String::new(), version: "0.20.0".into() });
    assert_eq!(
        c.targets,
        vec![Target {
            os: "linux".into(),
            arch: "arm".into(),
            variant: "v7".into(),
            distros: vec![Distribution { name: "ubuntu".into(), version: "22.04".into() }],
        }]
    );
    assert_eq!(c.system.pre.buildpacks[0].info.full_name(), "pre/a@1");
    assert!(c.system.pre.buildpacks[0].optional);
    assert_eq!(c.system.post.buildpacks[0].info.full_name(), "post/a");
    assert!(!c.system.post.buildpacks[0].optional);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    assert_eq!(loaded.source, src);
    assert_eq!(loaded.path, PathBuf::from("builder.toml"));
    loaded.validate().unwrap();
}

#[test]
fn empty_file_warns_about_empty_order() {
    let loaded = parse("");
    assert_eq!(loaded.config, BuilderConfig::default());
    assert_eq!(loaded.warnings, vec!["builder configuration: empty 'order' definition"]);
    assert!(loaded.build_env.is_empty());
}

#[test]
fn sample_builder_toml() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../builder.toml.example");
    let loaded = load(&path).unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    loaded.validate().unwrap();
    let c = &loaded.config;
    assert_eq!(c.buildpacks.len(), 3);
    assert_eq!(c.buildpacks[1].info.id, "samples/hello-moon");
    assert_eq!(c.buildpacks[1].info.version, "0.0.3");
    assert_eq!(c.extensions.len(), 1);
    assert_eq!(c.order.as_ref().map(Vec::len), Some(2));
    assert_eq!(c.order_extensions.as_ref().map(Vec::len), Some(1));
    assert_eq!(c.build.image, "cnbx.test/build:jammy");
    assert_eq!(c.stack.build_image, "cnbx.test/build:jammy");
    assert_eq!(c.stack.run_image, "cnbx.test/run:jammy");
    assert_eq!(c.stack.run_image_mirrors, vec!["mirror.cnbx.test/run:jammy"]);
    assert_eq!(c.targets.iter().map(ToString::to_string).collect::<Vec<_>>(), vec!["linux/amd64", "linux/arm64"]);
    assert_eq!(
        loaded.build_env,
        BTreeMap::from([
            ("BP_GREETING".to_string(), "hello".to_string()),
            ("PATH.delim".to_string(), ":".to_string()),
            ("PATH.prepend".to_string(), "/cnb/extra/bin".to_string()),
        ])
    );
    let manifest_root = clean_path(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."));
    assert_eq!(loaded.base_dir, manifest_root);
    assert_eq!(
        loaded.resolve_path(&c.lifecycle.uri),
        manifest_root.join("testdata/lifecycle/lifecycle-v0.21.0+test.tgz")
    );
    assert_eq!(
        c.lifecycle.source().unwrap(),
        cnbx_model::LifecycleSource::Uri("testdata/lifecycle/lifecycle-v0.21.0+test.tgz".into())
    );
}

#[test]
fn peer_fixtures_parse() {
    // pack's own acceptance fixtures, read in place when present.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/peer-fixtures/pack");
    let Ok(entries) = std::fs::read_dir(&dir) else { return };
    let mut names: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    names.sort();
    for path in names {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if !(name.starts_with("builder") || name.starts_with("nested_builder") || name.starts_with("invalid_builder"))
            || !name.ends_with(".toml")
        {
            continue;
        }
        // The fixtures are Go templates: drop the directive lines, fill in the placeholders.
        let text = std::fs::read_to_string(&path).unwrap();
        let mut src = String::new();
        for line in text.lines().filter(|l| !l.trim_start().starts_with("{{")) {
            let mut line = line.to_string();
            while let (Some(a), Some(b)) = (line.find("{{"), line.find("}}")) {
                line.replace_range(a..b + 2, "placeholder");
            }
            src.push_str(&line);
            src.push('\n');
        }
        let result = parse_str(&src, &path);
        if name == "invalid_builder.toml" {
            let err = result.unwrap_err();
            assert!(err.to_string().contains("unknown configuration element 'buildpacks.url'"), "{err}");
        } else {
            let loaded = result.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(!loaded.config.buildpacks.is_empty(), "{}", path.display());
        }
    }
}

#[test]
fn missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope.toml");
    let err = load(&path).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("invalid builder toml: opening config file: open {}: no such file or directory", path.display())
    );
    assert!(matches!(err, ConfigError::Open { .. }));
    assert!(err.diagnostic().unwrap().contains("nope.toml"));
}

#[test]
fn load_reads_the_file_and_cleans_the_path() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("b.toml"), MINIMAL).unwrap();
    let given = dir.path().join("./sub/../b.toml");
    let loaded = load(&given).unwrap();
    assert_eq!(loaded.path, dir.path().join("b.toml"));
    assert_eq!(loaded.base_dir, clean_path(dir.path()));
    assert!(loaded.warnings.is_empty());
}

#[test]
fn syntax_error_has_line_and_column() {
    let err = parse_err("description = \"x\"\n[[buildpacks]]\nuri = \n");
    let ConfigError::Toml { line, column, .. } = &err else { panic!("{err:?}") };
    assert_eq!((*line, *column), (3, 7));
    let text = err.to_string();
    assert!(
        text.starts_with(
            "invalid builder toml: parse contents of 'builder.toml': decoding toml contents: toml: line 3, column 7: "
        ),
        "{text}"
    );
    let diag = err.diagnostic().unwrap();
    assert!(diag.starts_with(" --> builder.toml:3:7\n  |\n3 | uri = \n  |       ^"), "{diag}");
}

#[test]
fn duplicate_key_is_a_syntax_error() {
    let err = parse_err("description = \"a\"\ndescription = \"b\"\n");
    let ConfigError::Toml { line, .. } = &err else { panic!("{err:?}") };
    assert_eq!(*line, 2);
}

#[test]
fn type_error_has_line_and_column() {
    let src = "[[order]]\n[[order.group]]\nid = \"a\"\n\n[[buildpacks]]\n  uri = 3\n";
    let err = parse_err(src);
    let ConfigError::Toml { line, column, message, .. } = &err else { panic!("{err:?}") };
    assert_eq!((*line, *column), (6, 9));
    assert!(message.contains("invalid type: integer `3`, expected a string"), "{message}");
    assert_eq!(
        err.to_string(),
        format!(
            "invalid builder toml: parse contents of 'builder.toml': decoding toml contents: toml: line 6, column 9: {message}"
        )
    );
    assert_eq!(
        err.diagnostic().unwrap(),
        format!(
            " --> builder.toml:6:9\n  |\n6 |   uri = 3\n  |         ^ {}\nhelp: 'buildpacks.uri' must be a string",
            message.lines().next().unwrap()
        )
    );
}

#[test]
fn type_error_in_bool_and_array() {
    let err = parse_err("[[order]]\n[[order.group]]\nid = \"a\"\noptional = \"yes\"\n");
    assert!(matches!(err, ConfigError::Toml { line: 4, .. }), "{err:?}");
    assert!(err.diagnostic().unwrap().ends_with("help: 'order.group.optional' must be a boolean"), "{err:?}");
    let err = parse_err("[[run.images]]\nimage = \"r\"\nmirrors = \"m\"\n");
    assert!(matches!(err, ConfigError::Toml { line: 3, .. }), "{err:?}");
    assert!(err.diagnostic().unwrap().ends_with("help: 'run.images.mirrors' must be an array"), "{err:?}");
    let err = parse_err("[stack]\nrun-image-mirrors = [\"a\", 1]\n");
    assert!(matches!(err, ConfigError::Toml { line: 2, column: 27, .. }), "{err:?}");
    assert!(err.diagnostic().unwrap().ends_with("help: 'stack.run-image-mirrors' must be a string"), "{err:?}");
    let err = parse_err("build = \"b\"\n");
    assert!(err.diagnostic().unwrap().ends_with("help: 'build' must be a table"), "{:?}", err.diagnostic());
}

fn unknown(src: &str) -> (String, Vec<UnknownKey>, String) {
    let err = parse_err(src);
    let diag = err.diagnostic().unwrap();
    let ConfigError::UnknownKeys { keys, .. } = &err else { panic!("{err:?}") };
    (err.to_string(), keys.clone(), diag)
}

#[test]
fn unknown_buildpack_key() {
    let (text, keys, diag) = unknown("[[buildpacks]]\nurl = \"noop-buildpack.tgz\"\n");
    assert_eq!(
        text,
        "invalid builder toml: parse contents of 'builder.toml': unknown configuration element 'buildpacks.url' in 'builder.toml'"
    );
    assert_eq!(
        keys,
        vec![UnknownKey {
            key: "buildpacks.url".into(),
            line: 2,
            column: 1,
            suggestion: Some("buildpacks.uri".into())
        }]
    );
    assert_eq!(
        diag,
        " --> builder.toml:2:1\n  |\n2 | url = \"noop-buildpack.tgz\"\n  | ^^^ unknown key 'buildpacks.url'\n\
         help: 'buildpacks.url' (line 2): did you mean 'buildpacks.uri'?"
    );
}

#[test]
fn unknown_array_table_hides_its_keys() {
    let (text, keys, _) = unknown("[[buidlpack]]\nuri = \"noop-buildpack.tgz\"\n");
    assert_eq!(
        text,
        "invalid builder toml: parse contents of 'builder.toml': unknown configuration element 'buidlpack' in 'builder.toml'"
    );
    assert_eq!(keys[0].suggestion.as_deref(), Some("buildpacks"));
    assert_eq!((keys[0].line, keys[0].column), (1, 3));
}

#[test]
fn all_unknown_keys_in_file_order_with_reduction() {
    let src = r#"foo = 1
[[buildpacks]]
uri = "a"
url = "b"
[[buildpacks]]
uri = "c"
url = "d"
bar = "e"
[bar]
x = 1
[stack]
ids = "s"
"#;
    let (text, keys, diag) = unknown(src);
    assert_eq!(
        text,
        "invalid builder toml: parse contents of 'builder.toml': unknown configuration elements 'foo', 'buildpacks.url', \
         'buildpacks.bar', 'bar', 'stack.ids' in 'builder.toml'"
    );
    let lines: Vec<usize> = keys.iter().map(|k| k.line).collect();
    assert_eq!(lines, vec![1, 4, 8, 9, 12]);
    assert_eq!(keys[4].suggestion.as_deref(), Some("stack.id"));
    assert_eq!(keys[0].suggestion, None);
    assert!(
        diag.contains("help: 'foo' (line 1): remove it; the keys at the top level are 'description', 'buildpacks'")
    );
    assert!(diag.contains("\n9 | [bar]\n  |  ^^^ unknown key 'bar'\n"), "{diag}");
    // Deterministic.
    assert_eq!(diag, unknown(src).2);
}

#[test]
fn unknown_nested_array_of_tables_lists_every_key_like_pack() {
    let src = "[[targets]]\nos = \"linux\"\narch = \"amd64\"\n[[targets.distributions]]\nname = \"ubuntu\"\nversion = \"22.04\"\n";
    let (text, keys, diag) = unknown(src);
    assert_eq!(
        text,
        "invalid builder toml: parse contents of 'builder.toml': unknown configuration elements 'targets.distributions', \
         'targets.distributions.name', 'targets.distributions.version' in 'builder.toml'"
    );
    assert_eq!(keys[0].suggestion.as_deref(), Some("targets.distros"));
    assert_eq!(keys.iter().map(|k| k.line).collect::<Vec<_>>(), vec![4, 5, 6]);
    assert!(
        diag.starts_with(" --> builder.toml:4:11\n  |\n4 | [[targets.distributions]]\n  |           ^^^^^^^^^^^^^ "),
        "{diag}"
    );
    assert!(
        diag.ends_with(
            "help: 'targets.distributions' (line 4): did you mean 'targets.distros'?\n\
             help: 'targets.distributions.name' (line 5): part of the unknown 'targets.distributions'\n\
             help: 'targets.distributions.version' (line 6): part of the unknown 'targets.distributions'"
        ),
        "{diag}"
    );
}

#[test]
fn unknown_keys_in_other_tables() {
    let (text, ..) = unknown("[lifecycle]\nuri = \"a\"\nversoin = \"1\"\n");
    assert!(text.contains("'lifecycle.versoin'"), "{text}");
    let (_, keys, _) = unknown("[lifecycle]\nversoin = \"1\"\n");
    assert_eq!(keys[0].suggestion.as_deref(), Some("lifecycle.version"));
    let (text, ..) = unknown("[[order]]\n[[order.group]]\nid = \"a\"\nuri = \"x\"\n");
    assert!(text.contains("'order.group.uri'"), "{text}");
    let (text, ..) = unknown("[[run.images]]\nimage = \"r\"\nmirror = [\"m\"]\n");
    assert!(text.contains("'run.images.mirror'"), "{text}");
    let (text, ..) = unknown("[[build.env]]\nname = \"A\"\nvalue = \"1\"\nsufix = \"append\"\n");
    assert!(text.contains("'build.env.sufix'"), "{text}");
    let (text, ..) = unknown("[system.pre]\nbuildpacks = [{ id = \"a\", uri = \"x\" }]\n");
    assert!(text.contains("'system.pre.buildpacks.uri'"), "{text}");
    let (text, ..) = unknown("[[buildpacks]]\nuri = \"a\"\noptional = true\n");
    assert!(text.contains("'buildpacks.optional'"), "{text}");
    let (text, ..) = unknown("[[buildpacks]]\nuri = \"a\"\n[[buildpacks.licenses]]\ntype = \"MIT\"\nurl = \"x\"\n");
    assert!(text.contains("'buildpacks.licenses.url'"), "{text}");
    let (text, keys, _) = unknown("foo.bar.baz = 1\n");
    assert!(text.ends_with("unknown configuration element 'foo' in 'builder.toml'"), "{text}");
    assert_eq!(keys.len(), 1);
}

#[test]
fn keys_match_case_insensitively_like_burntsushi() {
    let loaded = parse(
        "[[Buildpacks]]\nURI = \"a\"\nId = \"x\"\n[[order]]\n[[order.Group]]\nID = \"x\"\nOptional = true\n\
         [Stack]\nBuild-Image = \"b\"\n[[run.Images]]\nImage = \"r\"\n",
    );
    let c = &loaded.config;
    assert_eq!((c.buildpacks[0].uri.as_str(), c.buildpacks[0].info.id.as_str()), ("a", "x"));
    assert_eq!(c.order.as_ref().unwrap()[0].refs()[0].info.id, "x");
    assert!(c.order.as_ref().unwrap()[0].refs()[0].optional);
    assert_eq!(c.build.image, "b");
    assert_eq!(c.run.images[0].image, "r");
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    // The exact spelling wins; the other one stays unknown.
    let (text, ..) = unknown("[lifecycle]\nuri = \"a\"\nURI = \"b\"\n");
    assert!(text.contains("unknown configuration element 'lifecycle.URI'"), "{text}");
}

#[test]
fn legacy_stack_fills_build_and_run() {
    let loaded = parse("[stack]\nid = \"s\"\nbuild-image = \"b\"\nrun-image = \"r\"\nrun-image-mirrors = [\"m\"]\n");
    let c = &loaded.config;
    assert_eq!(c.build.image, "b");
    assert_eq!(c.run.images, vec![RunImage { image: "r".into(), mirrors: Some(vec!["m".into()]) }]);
    assert_eq!(c.stack.id, "s");
    loaded.validate().unwrap();

    let c = parse("[stack]\nrun-image = \"r\"\n").config;
    assert_eq!(c.run.images, vec![RunImage { image: "r".into(), mirrors: None }]);
    let c = parse("[stack]\nrun-image = \"r\"\nrun-image-mirrors = []\n").config;
    assert_eq!(c.run.images, vec![RunImage { image: "r".into(), mirrors: Some(vec![]) }]);
}

#[test]
fn new_keys_override_legacy_stack() {
    let c = parse(
        "[stack]\nid = \"s\"\nbuild-image = \"old-b\"\nrun-image = \"old-r\"\nrun-image-mirrors = [\"old-m\"]\n\
         [build]\nimage = \"b\"\n[[run.images]]\nimage = \"r\"\n",
    )
    .config;
    assert_eq!(
        c.stack,
        StackConfig { id: "s".into(), build_image: "b".into(), run_image: "r".into(), run_image_mirrors: vec![] }
    );
    assert_eq!(c.build.image, "b");
    assert_eq!(c.run.images, vec![RunImage { image: "r".into(), mirrors: None }]);
}

#[test]
fn validate_errors() {
    let err = parse(MINIMAL).validate().unwrap_err();
    assert_eq!(err.to_string(), "invalid builder config: build.image is required");
    assert_eq!(
        err.diagnostic().unwrap(),
        "help: add the build base image to builder.toml:\n\n[build]\nimage = \"<build image>\""
    );

    let err = parse("[build]\nimage = \"b\"\n").validate().unwrap_err();
    assert_eq!(err.to_string(), "invalid builder config: run.images are required");
    assert!(err.diagnostic().unwrap().contains("[[run.images]]\nimage = \"<run image>\""));

    let src = "[build]\nimage = \"b\"\n[[run.images]]\nimage = \"r\"\n[[run.images]]\nmirrors = [\"m\"]\n";
    let err = parse(src).validate().unwrap_err();
    assert_eq!(err.to_string(), "invalid builder config: run.images.image is required");
    let diag = err.diagnostic().unwrap();
    assert!(
        diag.starts_with(" --> builder.toml:5:1\n  |\n5 | [[run.images]]\n  | ^^^^^^^^^^^^^^ no `image`\n"),
        "{diag}"
    );
    assert!(diag.ends_with("help: set image = \"<run image>\" in this [[run.images]] entry"), "{diag}");

    // Only reachable without the merge (a hand-built config).
    let mut loaded = parse("[build]\nimage = \"b\"\n[[run.images]]\nimage = \"r\"\n");
    loaded.config.stack.build_image = "other".into();
    assert_eq!(
        loaded.validate().unwrap_err().to_string(),
        "invalid builder config: build.image and stack.build-image do not match"
    );
    loaded.config.stack.build_image = "b".into();
    loaded.config.stack.run_image = "other".into();
    assert_eq!(
        loaded.validate().unwrap_err().to_string(),
        "invalid builder config: run.images and stack.run-image do not match"
    );
    loaded.config.run.images.clear();
    loaded.config.stack.id = "s".into();
    assert_eq!(
        loaded.validate().unwrap_err().to_string(),
        "invalid builder config: run.images and stack.run-image do not match"
    );
}

fn env_src(entries: &str) -> String {
    format!("{MINIMAL}{entries}")
}

#[test]
fn build_env_files() {
    let loaded = parse(&env_src(
        r#"[[build.env]]
name = "A"
value = "1"
[[build.env]]
name = "B"
value = "2"
suffix = "default"
[[build.env]]
name = "C"
value = "3"
suffix = "override"
[[build.env]]
name = "D"
value = "4"
suffix = "append"
delim = ":"
[[build.env]]
name = "E"
value = "5"
suffix = "prepend"
delim = ","
"#,
    ));
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let want: BTreeMap<String, String> = [
        ("A", "1"),
        ("B.default", "2"),
        ("C.override", "3"),
        ("D.append", "4"),
        ("D.delim", ":"),
        ("E.delim", ","),
        ("E.prepend", "5"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(loaded.build_env, want);
}

#[test]
fn build_env_warnings() {
    let loaded = parse(&env_src(
        r#"[[build.env]]
name = "key"
[[build.env]]
name = "key1"
value = "value1"
suffix = "append"
delim = "%"
[[build.env]]
name = "key1"
value = "value2"
suffix = "append"
delim = ","
"#,
    ));
    assert_eq!(
        loaded.warnings,
        vec![
            "empty value for key/name 'key'",
            "overriding env with name: 'key1' and suffix: 'append' from 'value1' to 'value2'",
            "overriding env with name: 'key1' and delim: ',' from '%' to ','",
        ]
    );
    assert_eq!(loaded.build_env.get("key").map(String::as_str), Some(""));
    assert_eq!(loaded.build_env.get("key1.append").map(String::as_str), Some("value2"));
    assert_eq!(loaded.build_env.get("key1.delim").map(String::as_str), Some(","));
}

#[test]
fn build_env_empty_name() {
    let err = parse_err(&env_src("[[build.env]]\nvalue = \"x\"\n"));
    assert_eq!(err.to_string(), "parse contents of 'builder.toml': env name should not be empty");
    assert!(matches!(err, ConfigError::EnvNameEmpty { .. }));
    assert_eq!(
        err.diagnostic().unwrap(),
        " --> builder.toml:4:1\n  |\n4 | [[build.env]]\n  | ^^^^^^^^^^^^^ empty env name\n\
         help: give this [[build.env]] entry a name = \"<VARIABLE>\""
    );
    let err = parse_err(&env_src("[[build.env]]\nname = \"\"\nvalue = \"x\"\n"));
    assert!(err.diagnostic().unwrap().starts_with(" --> builder.toml:5:8\n"), "{}", err.diagnostic().unwrap());
}

#[test]
fn build_env_unknown_suffix() {
    let err = parse_err(&env_src("[[build.env]]\nname = \"A\"\nsuffix = \"invalid\"\n"));
    assert_eq!(err.to_string(), "unknown action type 'invalid'");
    assert_eq!(err.warnings(), ["empty value for key/name 'A'"]);
    assert_eq!(
        err.diagnostic().unwrap(),
        " --> builder.toml:6:10\n  |\n6 | suffix = \"invalid\"\n  |          ^^^^^^^^^ unknown suffix\n\
         help: suffix must be one of \"default\", \"override\", \"append\", \"prepend\" or omitted"
    );
}

#[test]
fn build_env_missing_delim() {
    let err = parse_err(&env_src(
        "[[build.env]]\nname = \"B\"\nvalue = \"b\"\nsuffix = \"prepend\"\n\
         [[build.env]]\nname = \"A\"\nvalue = \"a\"\nsuffix = \"append\"\n",
    ));
    assert_eq!(err.to_string(), "error parsing [[build.env]] in file 'builder.toml'");
    assert_eq!(
        err.warnings(),
        [
            "env with name/key 'A' with suffix 'append' must to have a 'delim' value",
            "env with name/key 'B' with suffix 'prepend' must to have a 'delim' value",
        ]
    );
    let diag = err.diagnostic().unwrap();
    assert!(diag.contains("7 | suffix = \"prepend\"\n  |          ^^^^^^^^^ 'prepend' needs a delim"), "{diag}");
    assert!(diag.contains("11 | suffix = \"append\""), "{diag}");
    assert!(
        diag.ends_with("help: add delim = \":\" (or another separator) to each append/prepend [[build.env]] entry")
    );
}

#[test]
fn build_env_delim_from_another_entry_counts() {
    // pack checks the file map, so a delim given on another entry of the same name is enough.
    let loaded = parse(&env_src(
        "[[build.env]]\nname = \"A\"\nvalue = \":\"\nsuffix = \"default\"\ndelim = \":\"\n\
         [[build.env]]\nname = \"A\"\nvalue = \"x\"\nsuffix = \"append\"\n",
    ));
    assert_eq!(loaded.build_env.get("A.append").map(String::as_str), Some("x"));
}

#[test]
fn deprecated_image_key() {
    let loaded = parse(&format!(
        "{MINIMAL}[[buildpacks]]\nimage = \"cnbs/bp:1\"\n[[buildpacks]]\nuri = \"docker://x\"\nimage = \"y\"\n\
         [[extensions]]\nimage = \"cnbs/ext:1\"\nuri = \"\"\n"
    ));
    let c = &loaded.config;
    assert_eq!(c.buildpacks[0].uri, "docker://cnbs/bp:1");
    assert_eq!(c.buildpacks[0].image, "cnbs/bp:1");
    assert_eq!(c.buildpacks[1].uri, "docker://x");
    assert_eq!(c.extensions[0].uri, "docker://cnbs/ext:1");
    assert_eq!(loaded.warnings, vec![IMAGE_KEY_DEPRECATED, IMAGE_KEY_DEPRECATED]);
    assert_eq!(IMAGE_KEY_DEPRECATED, "The 'image' key is deprecated. Use 'uri=\"docker://...\"' instead.");
}

#[test]
fn relative_path_resolution() {
    let loaded = parse_str(MINIMAL, Path::new("/work/cfg/./builder.toml")).unwrap();
    assert_eq!(loaded.path, PathBuf::from("/work/cfg/builder.toml"));
    assert_eq!(loaded.base_dir, PathBuf::from("/work/cfg"));
    assert_eq!(loaded.resolve_path("bp"), PathBuf::from("/work/cfg/bp"));
    assert_eq!(loaded.resolve_path("./a/../b/c.tgz"), PathBuf::from("/work/cfg/b/c.tgz"));
    assert_eq!(loaded.resolve_path("../x"), PathBuf::from("/work/x"));
    assert_eq!(loaded.resolve_path("/abs/y"), PathBuf::from("/abs/y"));
    assert_eq!(loaded.resolve_path(""), PathBuf::from("/work/cfg"));

    let loaded = parse_str(MINIMAL, Path::new("sub/builder.toml")).unwrap();
    let cwd = std::env::current_dir().unwrap();
    assert_eq!(loaded.base_dir, clean_path(&cwd.join("sub")));
    assert_eq!(loaded.path, PathBuf::from("sub/builder.toml"));
    let loaded = parse_str(MINIMAL, Path::new("builder.toml")).unwrap();
    assert_eq!(loaded.base_dir, clean_path(&cwd));
}

#[test]
fn clean_path_like_go() {
    for (input, want) in [
        ("", "."),
        (".", "."),
        ("a/./b", "a/b"),
        ("a/../b", "b"),
        ("../a", "../a"),
        ("a/../../b", "../b"),
        ("/../a", "/a"),
        ("a//b/", "a/b"),
    ] {
        assert_eq!(clean_path(Path::new(input)), PathBuf::from(want), "{input}");
    }
}

#[test]
fn suggestions() {
    assert_eq!(suggest("buidlpacks", known_keys("")), Some("buildpacks"));
    assert_eq!(suggest("Description", known_keys("")), Some("description"));
    assert_eq!(suggest("run_image", known_keys("stack")), Some("run-image"));
    assert_eq!(suggest("distributions", known_keys("targets")), Some("distros"));
    assert_eq!(suggest("zzz", known_keys("")), None);
    assert_eq!(osa_distance("ab", "ba"), 1);
    assert_eq!(osa_distance("kitten", "sitting"), 3);
}

// ---------------------------------------------------------------------------------------------
// Hostile input

#[test]
fn build_env_names_must_be_variable_names() {
    for name in ["../../../etc/passwd", "a/b", "A=B", "..", ".", "1A", "A B", "É", "A.append", "A-B", "/etc/x"] {
        let err = parse_err(&env_src(&format!("[[build.env]]\nname = \"{name}\"\nvalue = \"x\"\n")));
        assert_eq!(
            err.to_string(),
            format!(
                "parse contents of 'builder.toml': [[build.env]] entry 1 (line 5): env name '{name}' is not a valid \
                 environment variable name; use letters, digits and '_', not starting with a digit"
            ),
            "{name}"
        );
    }
    let err = parse_err(&env_src(
        "[[build.env]]\nname = \"A\"\n[[build.env]]\nname = \"../../../etc/passwd\"\nvalue = \"root::0:0::/:/bin/sh\"\n",
    ));
    assert!(err.to_string().contains("entry 2 (line 7): env name '../../../etc/passwd'"), "{err}");
    assert_eq!(err.warnings(), ["empty value for key/name 'A'"]);
    assert_eq!(
        err.diagnostic().unwrap(),
        " --> builder.toml:7:8\n  |\n7 | name = \"../../../etc/passwd\"\n  |        ^^^^^^^^^^^^^^^^^^^^^ not an \
         environment variable name\nhelp: a [[build.env]] name has only letters, digits and '_' and does not start \
         with a digit, e.g. name = \"BP_GREETING\""
    );
    for name in ["_A1", "a", "PATH", "BP_GREETING", "_"] {
        let loaded = parse(&env_src(&format!("[[build.env]]\nname = \"{name}\"\nvalue = \"x\"\n")));
        assert_eq!(loaded.build_env.get(name).map(String::as_str), Some("x"), "{name}");
    }
}

#[test]
fn build_env_values_and_delims_hold_no_nul() {
    let err = parse_err(&env_src("[[build.env]]\nname = \"A\"\nvalue = \"a\\u0000b\"\n"));
    assert_eq!(
        err.to_string(),
        "parse contents of 'builder.toml': [[build.env]] entry 1 (line 6): the value of env 'A' contains a NUL \
         character, which an environment variable cannot hold"
    );
    assert!(err.diagnostic().unwrap().starts_with(" --> builder.toml:6:9\n"), "{:?}", err.diagnostic());
    let err =
        parse_err(&env_src("[[build.env]]\nname = \"A\"\nvalue = \"a\"\nsuffix = \"append\"\ndelim = \"\\u0000\"\n"));
    assert!(err.to_string().contains("entry 1 (line 8): the delim of env 'A' contains a NUL character"), "{err}");
}

/// Every line of the error's message and diagnostic, and the warnings, are short.
fn assert_bounded(err: &ConfigError) {
    let text = format!("{err}\n{}\n{}", err.diagnostic().unwrap_or_default(), err.warnings().join("\n"));
    for line in text.lines() {
        assert!(line.chars().count() < 400, "a line of {} characters: {}", line.len(), &line[..400.min(line.len())]);
    }
    assert!(text.len() < 20_000, "{} bytes", text.len());
}

#[test]
fn a_long_line_is_quoted_as_an_excerpt_around_the_error() {
    let long = "x".repeat(1_000_000);
    let err = parse_err(&format!("description = \"{long}\" junk \"{long}\"\n"));
    assert_bounded(&err);
    let ConfigError::Toml { line, column, .. } = &err else { panic!("{err:?}") };
    assert_eq!((*line, *column), (1, 1_000_018));
    let diag = err.diagnostic().unwrap();
    let lines: Vec<&str> = diag.lines().collect();
    let shown = lines[2].strip_prefix("1 | ").unwrap();
    let marker = lines[3].strip_prefix("  | ").unwrap();
    let caret = marker.find('^').unwrap();
    assert!(shown.starts_with('…') && shown.ends_with('…'), "{diag}");
    assert_eq!(&shown[shown.char_indices().nth(caret).unwrap().0..][..4], "junk", "{diag}");

    // A value of the wrong type is quoted by the TOML library: only an excerpt of it.
    let err = parse_err(&format!("{MINIMAL}optional = \"{long}\"\n"));
    assert_bounded(&err);
    assert!(err.to_string().contains(&format!("invalid type: string \"{}…\"", "x".repeat(80))), "{err}");
}

#[test]
fn names_and_values_are_quoted_as_excerpts() {
    let long = "k".repeat(100_000);
    let err = parse_err(&format!("{long} = 1\n"));
    assert_bounded(&err);
    assert!(err.to_string().contains(&format!("'{}…'", "k".repeat(80))), "{err}");

    let mut many = String::new();
    for i in 0..1000 {
        many.push_str(&format!("unknown{i} = 1\n"));
    }
    let err = parse_err(&many);
    assert_bounded(&err);
    assert!(err.to_string().ends_with("'unknown19', and 980 more in 'builder.toml'"), "{err}");
    assert!(err.diagnostic().unwrap().ends_with("help: and 980 more unknown keys"));
    let ConfigError::UnknownKeys { keys, .. } = &err else { panic!("{err:?}") };
    assert_eq!(keys.len(), 1000);

    let err = parse_err(&env_src(&format!(
        "[[build.env]]\nname = \"A\"\nvalue = \"{long}\"\n[[build.env]]\nname = \"A\"\nvalue = \"{long}\"\nsuffix = \"{long}\"\n"
    )));
    assert_bounded(&err);
    assert_eq!(err.to_string(), format!("unknown action type '{}…'", "k".repeat(80)));

    let loaded = parse(&env_src(&format!(
        "[[build.env]]\nname = \"A\"\nvalue = \"{long}\"\n[[build.env]]\nname = \"A\"\nvalue = \"{long}\"\n"
    )));
    assert!(loaded.warnings.iter().all(|w| w.len() < 400), "{:?}", loaded.warnings.iter().map(String::len));

    let err = LifecycleConfig { uri: String::new(), version: "9".repeat(100_000) }.source().unwrap_err();
    assert_bounded(&err);
}

#[test]
fn a_file_that_is_not_text_is_never_quoted() {
    // What a link to /proc/self/environ would read.
    let environ = "HOME=/root\0SECRET_TOKEN=hunter2\0PATH=/bin\0";
    let err = parse_err(environ);
    assert_eq!(
        err.to_string(),
        "invalid builder toml: parse contents of 'builder.toml': it is not a text file: the control character U+0000 \
         at line 1, column 11; a builder.toml is UTF-8 text without control characters other than tab"
    );
    assert_eq!(err.diagnostic(), None);
    let err = parse_bytes(b"SECRET_TOKEN = \"hunter2\xff\"\n", Path::new("builder.toml")).unwrap_err();
    assert!(err.to_string().contains("a byte sequence that is not UTF-8 at line 1, column 24"), "{err}");
    let err = parse_err("description = \"hunter2\"\n\x1b[2J = 1\n");
    assert!(!format!("{err} {:?}", err.diagnostic()).contains("hunter2"), "{err}");
    assert!(err.to_string().contains("U+001B at line 2, column 1"), "{err}");
}

/// Only `-` itself is standard input: `./-` is a file named `-` (here: one that is missing).
#[test]
fn only_a_bare_dash_reads_standard_input() {
    let err = load(Path::new("./-")).unwrap_err();
    assert!(matches!(&err, ConfigError::Open { path, .. } if path == Path::new("-")), "{err:?}");
}

#[test]
fn load_refuses_a_symlink_and_never_quotes_its_target() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "SECRET_TOKEN=hunter2\n").unwrap();
    let link = dir.path().join("builder.toml");
    std::os::unix::fs::symlink(&secret, &link).unwrap();
    let err = load(&link).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("invalid builder toml: '{}' is a symbolic link; pass the file it points to", link.display())
    );
    assert!(!format!("{err:?}").contains("hunter2"));
}

#[test]
fn load_refuses_fifos_devices_and_large_files() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo.toml");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let (tx, rx) = std::sync::mpsc::channel();
    let path = fifo.clone();
    std::thread::spawn(move || {
        let _ = tx.send(load(&path).map(drop).map_err(|e| e.to_string()));
    });
    let Ok(result) = rx.recv_timeout(std::time::Duration::from_secs(10)) else {
        // Let the blocked open go before failing.
        let _ = std::fs::OpenOptions::new().write(true).open(&fifo);
        panic!("load blocked on a FIFO");
    };
    assert_eq!(
        result.unwrap_err(),
        format!("invalid builder toml: '{}' is a FIFO, not a regular file", fifo.display())
    );

    let err = load(Path::new("/dev/zero")).unwrap_err();
    assert_eq!(err.to_string(), "invalid builder toml: '/dev/zero' is a character device, not a regular file");
    let err = load(dir.path()).unwrap_err();
    assert!(err.to_string().ends_with("is a directory, not a regular file"), "{err}");

    let big = dir.path().join("big.toml");
    let mut text = "#".repeat(usize::try_from(cnbx_fs::limits::MAX_CONFIG_FILE).unwrap());
    text.push('\n');
    std::fs::write(&big, text).unwrap();
    let err = load(&big).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "invalid builder toml: '{}' is larger than the 10485760 bytes cnbx reads for a builder.toml",
            big.display()
        )
    );
}

#[test]
fn an_incomplete_targets_entry_names_the_entry_and_the_missing_key() {
    let base = "[build]\nimage = \"b\"\n[[run.images]]\nimage = \"r\"\n";
    let err =
        parse(&format!("{base}[[targets]]\nos = \"linux\"\narch = \"amd64\"\n\n[[targets]]\n")).validate().unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid builder config: [[targets]] entry 2 (builder.toml, line 9) has no `os` and no `arch`"
    );
    assert_eq!(
        err.diagnostic().unwrap(),
        " --> builder.toml:9:1\n  |\n9 | [[targets]]\n  | ^^^^^^^^^^^ no `os` and no `arch`\n\
         help: each [[targets]] entry names a platform with both keys, e.g. os = \"linux\" and arch = \"amd64\" or \"arm64\""
    );
    let err = parse(&format!("{base}[[targets]]\nos = \"linux\"\n")).validate().unwrap_err();
    assert_eq!(err.to_string(), "invalid builder config: [[targets]] entry 1 (builder.toml, line 5) has no `arch`");
    let err = parse(&format!("{base}[[targets]]\narch = \"arm64\"\n")).validate().unwrap_err();
    assert_eq!(err.to_string(), "invalid builder config: [[targets]] entry 1 (builder.toml, line 5) has no `os`");
    parse(&format!("{base}[[targets]]\nos = \"linux\"\narch = \"arm64\"\n")).validate().unwrap();
}

fn no_double_colons(name: &str) -> Result<(), String> {
    if name.contains("::") { Err(format!("invalid image reference '{name}': bad")) } else { Ok(()) }
}

#[test]
fn orders_tell_an_empty_list_from_a_missing_one() {
    let loaded = parse("Order = []\n[[order-extensions]]\n[[order-extensions]]\ngroup = []\n[build]\nimage = \"b\"\n");
    let c = &loaded.config;
    assert_eq!(c.order, Some(vec![]));
    let groups: Vec<_> = c.order_extensions.iter().flatten().map(|o| o.group.clone()).collect();
    assert_eq!(groups, [None, Some(vec![])]);
    assert_eq!(parse("[build]\nimage = \"b\"\n").config.order, None);
}

#[test]
fn run_image_names_are_checked_with_their_line() {
    let src = "[build]\nimage = \"b\"\n[[run.images]]\nimage = \"r\"\nmirrors = [\"m1\", \"::bad::\"]\n";
    let loaded = parse(src);
    let err = loaded.check_run_image_names(no_double_colons).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid run image config: mirror '::bad::' of run image 'r' (builder.toml, line 5): invalid image \
         reference '::bad::': bad"
    );
    assert_eq!(
        err.diagnostic().unwrap(),
        " --> builder.toml:5:18\n  |\n5 | mirrors = [\"m1\", \"::bad::\"]\n  |                  ^^^^^^^^^ not a registry \
         image name\nhelp: write a registry image name, [REGISTRY/]REPOSITORY[:TAG][@DIGEST]"
    );
    let err = parse("[build]\nimage = \"b\"\n[[Run.Images]]\nImage = \"a::b\"\n")
        .check_run_image_names(no_double_colons)
        .unwrap_err();
    assert!(
        err.to_string().starts_with("invalid run image config: run image 'a::b' (builder.toml, line 4): "),
        "{err}"
    );

    // The legacy [stack] keys.
    let src = "[stack]\nid = \"s\"\nbuild-image = \"b\"\nrun-image = \"r\"\nrun-image-mirrors = [\n  \"::bad::\",\n]\n";
    let err = parse(src).check_run_image_names(no_double_colons).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("invalid run image config: mirror '::bad::' of run image 'r' (builder.toml, line 6)"),
        "{err}"
    );
    let err = parse("[stack]\nrun-image = \"x::y\"\n").check_run_image_names(no_double_colons).unwrap_err();
    assert!(err.to_string().contains("run image 'x::y' (builder.toml, line 2)"), "{err}");
    // With [[run.images]], the legacy mirrors are not used, so not checked.
    parse("[stack]\nrun-image-mirrors = [\"::x\"]\n[[run.images]]\nimage = \"r\"\n")
        .check_run_image_names(no_double_colons)
        .unwrap();
    parse(src.replace("::bad::", "m").as_str()).check_run_image_names(no_double_colons).unwrap();
}
