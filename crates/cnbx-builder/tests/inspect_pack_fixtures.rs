//! Compares `builder inspect` output with pack's own acceptance expectations
//! (`../shared/peer-fixtures/pack/inspect_*`), read at run time and never copied here.
//!
//! The labels are built the way pack writes them for the builders of pack's acceptance suite
//! (`nested_builder.toml` and `builder.toml` with package-image buildpacks; for
//! `inspect_0.20.0_*`, package buildpacks without names), and the templates' placeholders are
//! filled with the values those labels use, as pack's acceptance test does. Like pack's test,
//! comparisons ignore trailing whitespace (JSON is compared exactly).
//!
//! Run with `cargo test -p cnbx-builder --test inspect_pack_fixtures -- --ignored` when
//! `../shared` is present.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::collections::BTreeMap;
use std::path::PathBuf;

use cnbx_builder::inspect::{self, BuilderInfo, Depth, InspectReport, OutputFormat, RenderOptions, Rendered, Section};
use cnbx_builder::labels::{self, BuilderMetadata, CreatorMetadata, ModuleLayerInfo, ModuleLayers, StackMetadata};
use cnbx_model::{
    ApiVersion, ApiVersions, LifecycleApi, LifecycleApis, LifecycleDescriptor, ModuleInfo, ModuleRef, OrderEntry,
    RunImage, Semver,
};

const BUILDER_NAME: &str = "localhost:5000/cnbx-acceptance/builder";
const PACK_VERSION: &str = "0.38.2";
const LIFECYCLE_VERSION: &str = "0.21.0";
const RUN_IMAGE_MIRROR: &str = "localhost:5000/pack-test/run";

fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/peer-fixtures/pack").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn apis(range: std::ops::RangeInclusive<u64>) -> Vec<ApiVersion> {
    range.map(|minor| ApiVersion::new(0, minor)).collect()
}

fn buildpack_apis() -> Vec<ApiVersion> {
    apis(7..=12)
}

fn platform_apis() -> Vec<ApiVersion> {
    apis(7..=15)
}

fn module(id: &str, name: &str, version: &str, homepage: &str) -> ModuleInfo {
    ModuleInfo {
        id: id.into(),
        name: name.into(),
        version: version.into(),
        homepage: homepage.into(),
        ..ModuleInfo::default()
    }
}

fn layer(name: &str, order: Vec<OrderEntry>, digit: char) -> ModuleLayerInfo {
    ModuleLayerInfo {
        api: Some(ApiVersion::new(0, 7)),
        order,
        layer_diff_id: format!("sha256:{}", digit.to_string().repeat(64)),
        name: name.into(),
        ..ModuleLayerInfo::default()
    }
}

/// The labels of pack's acceptance builder. `nested` selects `nested_builder.toml` (the
/// nested-level-1 package) over `builder.toml` (the simple/layers package); `names` is false
/// for builders made by pack 0.20.0, whose package buildpacks carry no name.
fn pack_labels(nested: bool, names: bool) -> BTreeMap<String, String> {
    let named = |name: &'static str| if names { name } else { "" };
    let mut buildpacks = vec![
        module("read/env", "Read Env Buildpack", "read-env-version", ""),
        module("noop.buildpack", "NOOP Buildpack", "noop.buildpack.version", ""),
        module("noop.buildpack", "NOOP Buildpack", "noop.buildpack.later-version", "http://geocities.com/cool-bp"),
        module("simple/layers", named("Simple Layers Buildpack"), "simple-layers-version", ""),
    ];
    let mut layers = ModuleLayers::default();
    layers.insert("read/env", "read-env-version", layer("Read Env Buildpack", vec![], '1'));
    layers.insert("noop.buildpack", "noop.buildpack.version", layer("NOOP Buildpack", vec![], '2'));
    layers.insert("noop.buildpack", "noop.buildpack.later-version", layer("NOOP Buildpack", vec![], '3'));
    layers.insert("simple/layers", "simple-layers-version", layer(named("Simple Layers Buildpack"), vec![], '4'));
    let package_id = if nested {
        buildpacks.push(module("simple/nested-level-2", named("Nested Level Two Buildpack"), "nested-l2-version", ""));
        buildpacks.push(module("simple/nested-level-1", named("Nested Level One Buildpack"), "nested-l1-version", ""));
        let level2_order = vec![OrderEntry::new(vec![ModuleRef::new("simple/layers", "simple-layers-version")])];
        let level1_order = vec![OrderEntry::new(vec![ModuleRef::new("simple/nested-level-2", "nested-l2-version")])];
        layers.insert(
            "simple/nested-level-2",
            "nested-l2-version",
            layer(named("Nested Level Two Buildpack"), level2_order, '5'),
        );
        layers.insert(
            "simple/nested-level-1",
            "nested-l1-version",
            layer(named("Nested Level One Buildpack"), level1_order, '6'),
        );
        "simple/nested-level-1"
    } else {
        "simple/layers"
    };
    let run = RunImage { image: "pack-test/run".into(), mirrors: Some(vec![RUN_IMAGE_MIRROR.into()]) };
    let metadata = BuilderMetadata {
        description: String::new(),
        buildpacks: Some(buildpacks),
        extensions: None,
        stack: StackMetadata { run_image: run.clone() },
        lifecycle: LifecycleDescriptor {
            version: Some(Semver::parse(LIFECYCLE_VERSION).unwrap()),
            api: LifecycleApi { buildpack: Some(ApiVersion::new(0, 7)), platform: Some(ApiVersion::new(0, 7)) },
            apis: LifecycleApis {
                buildpack: ApiVersions { deprecated: Some(vec![]), supported: Some(buildpack_apis()) },
                platform: ApiVersions { deprecated: Some(vec![]), supported: Some(platform_apis()) },
            },
        },
        created_by: CreatorMetadata { name: "Pack CLI".into(), version: PACK_VERSION.into() },
        run_images: Some(vec![run]),
    };
    let order = Some(vec![OrderEntry::new(vec![
        ModuleRef::new(package_id, ""),
        ModuleRef::new("read/env", "read-env-version").optional(),
    ])]);
    let mixins = Some(vec!["mixinA", "build:mixinTwo", "netcat", "mixin3"]);
    BTreeMap::from([
        (labels::BUILDER_METADATA.to_owned(), labels::encode(labels::BUILDER_METADATA, &metadata).unwrap()),
        (labels::BUILDPACK_LAYERS.to_owned(), labels::encode(labels::BUILDPACK_LAYERS, &layers).unwrap()),
        (labels::EXTENSION_LAYERS.to_owned(), "{}".to_owned()),
        (labels::BUILDPACK_ORDER.to_owned(), labels::encode(labels::BUILDPACK_ORDER, &order).unwrap()),
        (labels::ORDER_EXTENSIONS.to_owned(), "null".to_owned()),
        (labels::STACK_MIXINS.to_owned(), labels::encode(labels::STACK_MIXINS, &mixins).unwrap()),
        (labels::STACK_ID.to_owned(), "pack.test.stack".to_owned()),
    ])
}

fn render(nested: bool, names: bool, format: OutputFormat, depth: Depth) -> String {
    let info = BuilderInfo::from_labels(&pack_labels(nested, names)).unwrap();
    let report = InspectReport {
        builder_name: BUILDER_NAME.into(),
        trusted: false,
        default: false,
        remote: Section::Present(Box::new(info.clone())),
        local: Section::Present(Box::new(info)),
    };
    let options = RenderOptions {
        verbose: true,
        depth,
        user_run_images: vec![RunImage::new("pack-test/run", ["some-registry.com/pack-test/run1"])],
    };
    match inspect::render(&report, format, &options).unwrap() {
        Rendered::Human(out) => {
            assert_eq!(out.pack_stderr(), "");
            out.pack_stdout()
        }
        Rendered::Document(doc) => doc,
    }
}

/// The placeholder values pack's acceptance test computes for each format.
fn fill(template: &str, format: OutputFormat) -> String {
    let quoted = |list: &[ApiVersion]| list.iter().map(|v| format!("\"{v}\"")).collect::<Vec<_>>();
    let api_list = |list: &[ApiVersion]| -> String {
        match format {
            OutputFormat::HumanReadable if list.is_empty() => "(none)".into(),
            OutputFormat::HumanReadable => list.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
            _ if list.is_empty() => "[]".into(),
            OutputFormat::Json => {
                let items: Vec<String> = quoted(list).into_iter().map(|q| format!("          {q}")).collect();
                format!("[\n{}\n        ]", items.join(",\n"))
            }
            OutputFormat::Yaml => {
                let items: Vec<String> = quoted(list).into_iter().map(|q| format!("                - {q}")).collect();
                format!("\n{}", items.join("\n"))
            }
            OutputFormat::Toml => format!("[{}]", quoted(list).join(", ")),
        }
    };
    let values = [
        ("builder_name", BUILDER_NAME.to_owned()),
        ("pack_version", PACK_VERSION.to_owned()),
        ("lifecycle_version", LIFECYCLE_VERSION.to_owned()),
        ("run_image_mirror", RUN_IMAGE_MIRROR.to_owned()),
        ("trusted", "No".to_owned()),
        ("deprecated_buildpack_apis", api_list(&[])),
        ("supported_buildpack_apis", api_list(&buildpack_apis())),
        ("deprecated_platform_apis", api_list(&[])),
        ("supported_platform_apis", api_list(&platform_apis())),
    ];
    let mut out = template.to_owned();
    for (key, value) in values {
        out = out.replace(&format!("{{{{.{key}}}}}"), &value).replace(&format!("{{{{ .{key} }}}}"), &value);
    }
    assert!(!out.contains("{{"), "unfilled placeholder in template");
    out
}

fn trimmed(s: &str) -> String {
    let lines: Vec<&str> = s.lines().map(str::trim_end).collect();
    lines.join("\n").trim_end().to_owned()
}

fn assert_matches(fixture_name: &str, nested: bool, names: bool, format: OutputFormat, depth: Depth) {
    let expected = fill(&fixture(fixture_name), format);
    let actual = render(nested, names, format, depth);
    if format == OutputFormat::Json {
        assert_eq!(actual.trim_end(), expected.trim_end(), "{fixture_name}");
    } else {
        assert_eq!(trimmed(&actual), trimmed(&expected), "{fixture_name}");
    }
}

#[test]
#[ignore = "compares with ../shared/peer-fixtures; run with --ignored when ../shared is present"]
fn nested_builder_human_readable() {
    assert_matches("inspect_builder_nested_output.txt", true, true, OutputFormat::HumanReadable, Depth::Unlimited);
}

#[test]
#[ignore = "compares with ../shared/peer-fixtures; run with --ignored when ../shared is present"]
fn nested_builder_depth_1() {
    assert_matches(
        "inspect_builder_nested_depth_2_output.txt",
        true,
        true,
        OutputFormat::HumanReadable,
        Depth::Limited(1),
    );
}

#[test]
#[ignore = "compares with ../shared/peer-fixtures; run with --ignored when ../shared is present"]
fn nested_builder_json() {
    assert_matches("inspect_builder_nested_output_json.txt", true, true, OutputFormat::Json, Depth::Unlimited);
}

#[test]
#[ignore = "compares with ../shared/peer-fixtures; run with --ignored when ../shared is present"]
fn nested_builder_yaml() {
    assert_matches("inspect_builder_nested_output_yaml.txt", true, true, OutputFormat::Yaml, Depth::Unlimited);
}

#[test]
#[ignore = "compares with ../shared/peer-fixtures; run with --ignored when ../shared is present"]
fn nested_builder_toml() {
    assert_matches("inspect_builder_nested_output_toml.txt", true, true, OutputFormat::Toml, Depth::Unlimited);
}

#[test]
#[ignore = "compares with ../shared/peer-fixtures; run with --ignored when ../shared is present"]
fn simple_builder_human_readable() {
    assert_matches("inspect_builder_output.txt", false, true, OutputFormat::HumanReadable, Depth::Unlimited);
}

#[test]
#[ignore = "compares with ../shared/peer-fixtures; run with --ignored when ../shared is present"]
fn pack_0_20_builders() {
    let cases = [
        ("inspect_0.20.0_builder_nested_output.txt", true, OutputFormat::HumanReadable, Depth::Unlimited),
        ("inspect_0.20.0_builder_nested_depth_2_output.txt", true, OutputFormat::HumanReadable, Depth::Limited(1)),
        ("inspect_0.20.0_builder_nested_output_json.txt", true, OutputFormat::Json, Depth::Unlimited),
        ("inspect_0.20.0_builder_nested_output_yaml.txt", true, OutputFormat::Yaml, Depth::Unlimited),
        ("inspect_0.20.0_builder_nested_output_toml.txt", true, OutputFormat::Toml, Depth::Unlimited),
        ("inspect_0.20.0_builder_output.txt", false, OutputFormat::HumanReadable, Depth::Unlimited),
    ];
    for (name, nested, format, depth) in cases {
        assert_matches(name, nested, false, format, depth);
    }
}
