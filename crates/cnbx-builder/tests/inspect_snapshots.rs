//! `builder inspect` end to end, from label maps to every output format.
//!
//! The labels are literal JSON in the shapes pack writes (key order, omitted fields,
//! `null`s); every one of them is also re-encoded by `labels::encode` and must come back
//! byte for byte. Three builders:
//!
//! * `full`: a current pack builder — description with HTML characters, a duplicated and
//!   unsorted buildpack list, module fields from `buildpack.toml` (description, keywords,
//!   licenses, clear-env), nested composite buildpacks with two order groups, an optional
//!   buildpack, a cyclic reference, a version-less reference that cannot be resolved, a stack
//!   with mixins, two run images with mirrors (plus user-configured mirrors), extensions and
//!   an extension order;
//! * `old`: a builder made by pack 0.20.0 — package buildpacks without names, only the legacy
//!   lifecycle `api` field, no `images`, no `extensions` key, `null` mixins;
//! * `minimal`: nothing but an empty metadata label — every warning and `(none)`.
//!
//! Snapshots live in `tests/snapshots/`; they were reviewed against pack's fixtures
//! (structure, glyphs, spacing, field names).

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::collections::BTreeMap;

use cnbx_builder::inspect::{
    self, BuilderInfo, Depth, InspectError, InspectReport, OutputFormat, RenderError, RenderOptions, Rendered, Section,
};
use cnbx_builder::labels::{self, BuilderMetadata, ModuleLayers};
use cnbx_model::{OrderEntry, RunImage, System};

const FULL_METADATA: &str = concat!(
    r#"{"description":"Acme \u003cfull\u003e builder \u0026 friends","buildpacks":["#,
    r#"{"id":"acme/node","name":"Acme Node","version":"2.1.0","homepage":"https://acme.example/node"},"#,
    r#"{"id":"acme/meta","name":"Acme Meta","version":"1.0.0"},"#,
    r#"{"id":"acme/inner","name":"Acme Inner","version":"0.3.0"},"#,
    r#"{"id":"acme/go","name":"Acme Go","version":"1.22.0","description":"Builds Go apps","homepage":"https://acme.example/go","keywords":["go","golang"],"licenses":[{"Type":"Apache-2.0","URI":"https://www.apache.org/licenses/LICENSE-2.0"}],"clear-env":true},"#,
    r#"{"id":"acme/node","name":"Acme Node","version":"2.0.9"},"#,
    r#"{"id":"acme/node","name":"Acme Node","version":"2.1.0","homepage":"https://acme.example/node"},"#,
    r#"{"id":"acme/procfile","name":"Procfile","version":"5"}],"#,
    r#""extensions":[{"id":"acme/ext-apt","name":"Apt Extension","version":"0.1.0"},{"id":"acme/ext-tz","version":"0.0.1"}],"#,
    r#""stack":{"runImage":{"image":"registry.acme.example/run:jammy","mirrors":["mirror.acme.example/run:jammy"]}},"#,
    r#""lifecycle":{"version":"0.21.0","api":{"buildpack":"0.6","platform":"0.7"},"apis":{"buildpack":{"deprecated":["0.6"],"supported":["0.7","0.8","0.9","0.10","0.11","0.12"]},"platform":{"deprecated":[],"supported":["0.7","0.8","0.9","0.10","0.11","0.12","0.13","0.14","0.15"]}}},"#,
    r#""createdBy":{"name":"Pack CLI","version":"0.38.2"},"#,
    r#""images":[{"image":"registry.acme.example/run:jammy","mirrors":["mirror.acme.example/run:jammy"]},{"image":"registry.acme.example/run-tiny:jammy","mirrors":null}]}"#
);

const FULL_LAYERS: &str = concat!(
    r#"{"acme/go":{"1.22.0":{"api":"0.10","targets":[{"os":"linux","arch":"amd64"},{"os":"linux","arch":"arm64","variant":"v8","distros":[{"name":"ubuntu","version":"22.04"}]}],"layerDiffID":"sha256:1010101010101010101010101010101010101010101010101010101010101010","homepage":"https://acme.example/go","name":"Acme Go"}},"#,
    r#""acme/inner":{"0.3.0":{"api":"0.10","order":[{"group":[{"id":"acme/meta","version":"1.0.0"},{"id":"acme/node","version":"2.0.9"}]}],"layerDiffID":"sha256:2020202020202020202020202020202020202020202020202020202020202020","name":"Acme Inner"}},"#,
    r#""acme/meta":{"1.0.0":{"api":"0.10","order":[{"group":[{"id":"acme/go","version":"1.22.0"},{"id":"acme/inner","version":"0.3.0","optional":true}]},{"group":[{"id":"acme/node","version":"2.1.0"}]}],"layerDiffID":"sha256:3030303030303030303030303030303030303030303030303030303030303030","name":"Acme Meta"}},"#,
    r#""acme/node":{"2.0.9":{"api":"0.9","stacks":[{"id":"io.buildpacks.stacks.jammy","mixins":["curl"]}],"layerDiffID":"sha256:4040404040404040404040404040404040404040404040404040404040404040","name":"Acme Node"},"#,
    r#""2.1.0":{"api":"0.10","stacks":[{"id":"*"}],"layerDiffID":"sha256:5050505050505050505050505050505050505050505050505050505050505050","homepage":"https://acme.example/node","name":"Acme Node"}},"#,
    r#""acme/procfile":{"5":{"api":"0.8","layerDiffID":"sha256:6060606060606060606060606060606060606060606060606060606060606060","name":"Procfile"}}}"#
);

const FULL_ORDER: &str = concat!(
    r#"[{"group":[{"id":"acme/meta","version":"1.0.0"},{"id":"acme/procfile","version":"5","optional":true}]},"#,
    r#"{"group":[{"id":"acme/node"},{"id":"acme/procfile","version":"5","optional":true}]}]"#
);

const FULL_EXTENSION_LAYERS: &str = concat!(
    r#"{"acme/ext-apt":{"0.1.0":{"api":"0.10","layerDiffID":"sha256:7070707070707070707070707070707070707070707070707070707070707070","name":"Apt Extension"}},"#,
    r#""acme/ext-tz":{"0.0.1":{"api":"0.10","layerDiffID":"sha256:8080808080808080808080808080808080808080808080808080808080808080"}}}"#
);

const FULL_ORDER_EXTENSIONS: &str =
    r#"[{"group":[{"id":"acme/ext-apt","version":"0.1.0"}]},{"group":[{"id":"acme/ext-tz","version":"0.0.1"}]}]"#;

const FULL_SYSTEM: &str = r#"{"pre":{"buildpacks":[{"id":"acme/procfile","version":"5","optional":true}]},"post":{}}"#;

const FULL_MIXINS: &str = r#"["build:git","curl","run:tzdata","ca-certificates"]"#;

const OLD_METADATA: &str = concat!(
    r#"{"description":"","buildpacks":[{"id":"old/meta","version":"0.1.0"},{"id":"read/env","name":"Read Env","version":"7"},{"id":"old/bp","version":"1.0.0"}],"#,
    r#""stack":{"runImage":{"image":"old/run","mirrors":["old-mirror.example/run"]}},"#,
    r#""lifecycle":{"version":"0.9.3","api":{"buildpack":"0.2","platform":"0.3"}},"#,
    r#""createdBy":{"name":"Pack CLI","version":"0.20.0"}}"#
);

const OLD_LAYERS: &str = concat!(
    r#"{"old/bp":{"1.0.0":{"api":"0.2","stacks":[{"id":"io.buildpacks.stacks.bionic"}],"layerDiffID":"sha256:a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1"}},"#,
    r#""old/meta":{"0.1.0":{"api":"0.2","order":[{"group":[{"id":"old/bp","version":"1.0.0"},{"id":"read/env","version":"7","optional":true}]}],"layerDiffID":"sha256:b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2"}},"#,
    r#""read/env":{"7":{"api":"0.2","stacks":[{"id":"io.buildpacks.stacks.bionic"}],"layerDiffID":"sha256:c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3","name":"Read Env"}}}"#
);

const OLD_ORDER: &str = r#"[{"group":[{"id":"old/meta","version":"0.1.0"}]}]"#;

const MINIMAL_METADATA: &str = concat!(
    r#"{"description":"","buildpacks":null,"extensions":null,"stack":{"runImage":{"image":"","mirrors":null}},"#,
    r#""lifecycle":{"version":null,"api":{"buildpack":null,"platform":null},"apis":{"buildpack":{"deprecated":null,"supported":null},"platform":{"deprecated":null,"supported":null}}},"#,
    r#""createdBy":{"name":"","version":""},"images":null}"#
);

fn label_map(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
    entries.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

fn full_labels() -> BTreeMap<String, String> {
    label_map(&[
        (labels::BUILDER_METADATA, FULL_METADATA),
        (labels::BUILDPACK_LAYERS, FULL_LAYERS),
        (labels::EXTENSION_LAYERS, FULL_EXTENSION_LAYERS),
        (labels::BUILDPACK_ORDER, FULL_ORDER),
        (labels::ORDER_EXTENSIONS, FULL_ORDER_EXTENSIONS),
        (labels::SYSTEM, FULL_SYSTEM),
        (labels::STACK_MIXINS, FULL_MIXINS),
        (labels::STACK_ID, "io.buildpacks.stacks.jammy"),
        ("org.opencontainers.image.source", "https://acme.example/builder"),
    ])
}

fn old_labels() -> BTreeMap<String, String> {
    label_map(&[
        (labels::BUILDER_METADATA, OLD_METADATA),
        (labels::BUILDPACK_LAYERS, OLD_LAYERS),
        (labels::BUILDPACK_ORDER, OLD_ORDER),
        (labels::STACK_MIXINS, "null"),
        (labels::STACK_ID, "io.buildpacks.stacks.bionic"),
    ])
}

fn minimal_labels() -> BTreeMap<String, String> {
    label_map(&[
        (labels::BUILDER_METADATA, MINIMAL_METADATA),
        (labels::BUILDPACK_LAYERS, "{}"),
        (labels::EXTENSION_LAYERS, "{}"),
        (labels::BUILDPACK_ORDER, "null"),
        (labels::ORDER_EXTENSIONS, "null"),
        (labels::STACK_MIXINS, "null"),
    ])
}

fn info(labels: &BTreeMap<String, String>) -> Box<BuilderInfo> {
    Box::new(BuilderInfo::from_labels(labels).unwrap())
}

fn report(name: &str, remote: Section, local: Section) -> InspectReport {
    InspectReport { builder_name: name.to_owned(), trusted: false, default: false, remote, local }
}

fn full_report() -> InspectReport {
    let mut r = report(
        "registry.acme.example/builder:jammy",
        Section::Present(info(&full_labels())),
        Section::Present(info(&full_labels())),
    );
    r.trusted = true;
    r
}

fn old_report() -> InspectReport {
    report("old.example/builder:bionic", Section::Present(info(&old_labels())), Section::Absent)
}

fn minimal_report() -> InspectReport {
    report("minimal", Section::Present(info(&minimal_labels())), Section::Present(info(&minimal_labels())))
}

fn options(verbose: bool, depth: i64) -> RenderOptions {
    RenderOptions {
        verbose,
        depth: Depth::from_flag(depth),
        user_run_images: vec![
            RunImage::new("registry.acme.example/run:jammy", ["localhost:5000/acme/run:jammy", "user.example/run"]),
            RunImage::new("unrelated/run", ["unrelated.example/run"]),
        ],
    }
}

fn human(report: &InspectReport, options: &RenderOptions) -> String {
    match inspect::render(report, OutputFormat::HumanReadable, options).unwrap() {
        Rendered::Human(out) => {
            let stderr = out.pack_stderr();
            if stderr.is_empty() { out.pack_stdout() } else { format!("{}--- stderr ---\n{stderr}", out.pack_stdout()) }
        }
        Rendered::Document(_) => unreachable!("human-readable renders a HumanOutput"),
    }
}

fn document(report: &InspectReport, format: OutputFormat, options: &RenderOptions) -> String {
    match inspect::render(report, format, options).unwrap() {
        Rendered::Document(doc) => doc,
        Rendered::Human(_) => unreachable!("structured formats render a document"),
    }
}

#[test]
fn pack_shaped_labels_round_trip_byte_for_byte() {
    fn same<T: serde::de::DeserializeOwned + serde::Serialize>(label: &str, json: &str) {
        let value: T = labels::decode(label, json).unwrap();
        assert_eq!(labels::encode(label, &value).unwrap(), json, "{label}");
    }
    same::<BuilderMetadata>(labels::BUILDER_METADATA, FULL_METADATA);
    same::<BuilderMetadata>(labels::BUILDER_METADATA, MINIMAL_METADATA);
    same::<ModuleLayers>(labels::BUILDPACK_LAYERS, FULL_LAYERS);
    same::<ModuleLayers>(labels::BUILDPACK_LAYERS, OLD_LAYERS);
    same::<ModuleLayers>(labels::EXTENSION_LAYERS, FULL_EXTENSION_LAYERS);
    same::<Option<Vec<OrderEntry>>>(labels::BUILDPACK_ORDER, FULL_ORDER);
    same::<Option<Vec<OrderEntry>>>(labels::BUILDPACK_ORDER, OLD_ORDER);
    same::<Option<Vec<OrderEntry>>>(labels::ORDER_EXTENSIONS, FULL_ORDER_EXTENSIONS);
    same::<Option<Vec<OrderEntry>>>(labels::BUILDPACK_ORDER, "null");
    same::<System>(labels::SYSTEM, FULL_SYSTEM);
    same::<Option<Vec<String>>>(labels::STACK_MIXINS, FULL_MIXINS);
    same::<Option<Vec<String>>>(labels::STACK_MIXINS, "null");
}

#[test]
fn derived_model() {
    let full = BuilderInfo::from_labels(&full_labels()).unwrap();
    let ids: Vec<String> = full.buildpacks.iter().map(|b| b.full_name()).collect();
    assert_eq!(
        ids,
        [
            "acme/go@1.22.0",
            "acme/inner@0.3.0",
            "acme/meta@1.0.0",
            "acme/node@2.0.9",
            "acme/node@2.1.0",
            "acme/procfile@5"
        ]
    );
    assert_eq!(full.mixins, ["curl", "run:tzdata", "ca-certificates", "build:git"]);
    let run_images: Vec<&str> = full.run_images.iter().map(|r| r.image.as_str()).collect();
    assert_eq!(run_images, ["registry.acme.example/run:jammy", "registry.acme.example/run-tiny:jammy"]);

    let old = BuilderInfo::from_labels(&old_labels()).unwrap();
    assert_eq!(old.run_images, vec![RunImage::new("old/run", ["old-mirror.example/run"])]);
    assert_eq!(old.extensions, None);
    assert_eq!(old.lifecycle.apis.buildpack.supported().iter().map(ToString::to_string).collect::<Vec<_>>(), ["0.2"]);
    assert_eq!(old.lifecycle.apis.platform.deprecated, None);

    let minimal = BuilderInfo::from_labels(&minimal_labels()).unwrap();
    assert!(minimal.buildpacks.is_empty() && minimal.run_images.is_empty() && minimal.order.is_empty());
    assert_eq!(
        BuilderInfo::from_labels(&label_map(&[(labels::BUILDER_METADATA, "{}")])).unwrap(),
        *info(&minimal_labels())
    );
}

#[test]
fn human_full_verbose_unlimited_depth() {
    insta::assert_snapshot!("human_full_verbose", human(&full_report(), &options(true, -1)));
}

#[test]
fn human_full_depths() {
    insta::assert_snapshot!("human_full_depth_0", human(&full_report(), &options(false, 0)));
    insta::assert_snapshot!("human_full_depth_1", human(&full_report(), &options(false, 1)));
    // Any negative depth is unlimited (pack treats -2 like 0).
    assert_eq!(human(&full_report(), &options(false, -2)), human(&full_report(), &options(false, -1)));
}

#[test]
fn human_one_side() {
    let mut remote_only = full_report();
    remote_only.local = Section::Absent;
    remote_only.default = true;
    insta::assert_snapshot!("human_full_remote_only", human(&remote_only, &options(false, -1)));
    let mut local_error = full_report();
    local_error.remote = Section::Error("fetching builder image: connection refused".into());
    insta::assert_snapshot!("human_full_remote_error", human(&local_error, &options(false, -1)));
    insta::assert_snapshot!("human_old_local_absent", human(&old_report(), &options(true, -1)));
    let local_only = report("old.example/builder:bionic", Section::Absent, Section::Present(info(&old_labels())));
    insta::assert_snapshot!("human_old_remote_absent", human(&local_only, &options(false, -1)));
}

#[test]
fn human_minimal() {
    insta::assert_snapshot!("human_minimal", human(&minimal_report(), &options(true, -1)));
}

#[test]
fn structured_full() {
    let opts = options(true, -1);
    insta::assert_snapshot!("json_full_verbose", document(&full_report(), OutputFormat::Json, &opts));
    insta::assert_snapshot!("yaml_full_verbose", document(&full_report(), OutputFormat::Yaml, &opts));
    insta::assert_snapshot!("toml_full_verbose", document(&full_report(), OutputFormat::Toml, &opts));
}

#[test]
fn structured_one_side_and_depth() {
    let mut local_only = full_report();
    local_only.remote = Section::Absent;
    let opts = options(false, 0);
    insta::assert_snapshot!("json_full_local_only_depth_0", document(&local_only, OutputFormat::Json, &opts));
    insta::assert_snapshot!("yaml_full_local_only_depth_0", document(&local_only, OutputFormat::Yaml, &opts));
    insta::assert_snapshot!("toml_full_local_only_depth_0", document(&local_only, OutputFormat::Toml, &opts));
}

#[test]
fn structured_old_and_minimal() {
    let opts = options(true, -1);
    insta::assert_snapshot!("json_old_remote_only", document(&old_report(), OutputFormat::Json, &opts));
    insta::assert_snapshot!("yaml_old_remote_only", document(&old_report(), OutputFormat::Yaml, &opts));
    insta::assert_snapshot!("toml_old_remote_only", document(&old_report(), OutputFormat::Toml, &opts));
    // --verbose without a stack crashes pack; cnbx leaves `stack` out.
    insta::assert_snapshot!("json_minimal", document(&minimal_report(), OutputFormat::Json, &opts));
    insta::assert_snapshot!("yaml_minimal", document(&minimal_report(), OutputFormat::Yaml, &opts));
    insta::assert_snapshot!("toml_minimal", document(&minimal_report(), OutputFormat::Toml, &opts));
}

#[test]
fn multi_extension_groups_are_shown_in_full() {
    let mut labels = full_labels();
    // The extension tree ends the section when there are no system buildpacks.
    labels.remove(labels::SYSTEM);
    labels.insert(
        labels::ORDER_EXTENSIONS.to_owned(),
        r#"[{"group":[{"id":"acme/ext-apt","version":"0.1.0"},{"id":"acme/ext-tz","version":"0.0.1"}]}]"#.to_owned(),
    );
    let r = report("b", Section::Present(info(&labels)), Section::Absent);
    let out = human(&r, &options(false, -1));
    let start = out.find("Detection Order (Extensions):").unwrap();
    let tail = &out[start..out.find("\nLOCAL:").unwrap()];
    assert_eq!(
        tail,
        "Detection Order (Extensions):\n └ Group #1:\n    ├ acme/ext-apt@0.1.0\n    └ acme/ext-tz@0.0.1\n"
    );
    insta::assert_snapshot!("json_multi_extension_group", document(&r, OutputFormat::Json, &options(false, -1)));
}

#[test]
fn errors_are_packs() {
    let missing = BuilderInfo::from_labels(&BTreeMap::new()).unwrap_err();
    assert!(matches!(missing, InspectError::Metadata(_)));
    assert_eq!(
        cnbx_fs::error_chain(&missing),
        "reading image metadata: builder missing label io.buildpacks.builder.metadata -- try recreating builder"
    );
    let empty = label_map(&[(labels::BUILDER_METADATA, "")]);
    assert!(matches!(BuilderInfo::from_labels(&empty), Err(InspectError::Metadata(_))));

    let cases = [
        (
            labels::BUILDER_METADATA,
            "reading image metadata: parsing label content for io.buildpacks.builder.metadata: ",
        ),
        (labels::STACK_MIXINS, "reading image mixins: parsing label content for io.buildpacks.stack.mixins: "),
        (
            labels::ORDER_EXTENSIONS,
            "reading image order extensions: parsing label content for io.buildpacks.buildpack.order-extensions: ",
        ),
        (labels::BUILDPACK_ORDER, "reading image order: parsing label content for io.buildpacks.buildpack.order: "),
        (
            labels::BUILDPACK_LAYERS,
            "reading image buildpack layers: parsing label content for io.buildpacks.buildpack.layers: ",
        ),
    ];
    for (label, prefix) in cases {
        let mut labels = minimal_labels();
        labels.insert(label.to_owned(), "{not json".to_owned());
        let err = BuilderInfo::from_labels(&labels).unwrap_err();
        let chain = cnbx_fs::error_chain(&err);
        assert!(chain.starts_with(prefix), "{chain}");
    }
    // A label pack never reads does not matter.
    let mut labels = minimal_labels();
    labels.insert(labels::EXTENSION_LAYERS.to_owned(), "{not json".to_owned());
    assert!(BuilderInfo::from_labels(&labels).is_ok());

    let lookup: Result<Option<BuilderInfo>, InspectError> = BuilderInfo::from_labels(&BTreeMap::new()).map(Some);
    let section = Section::from_lookup(lookup);
    assert_eq!(
        section,
        Section::Error(
            "reading image metadata: builder missing label io.buildpacks.builder.metadata -- try recreating builder"
                .into()
        )
    );

    let opts = options(false, -1);
    let absent = report("nope", Section::Absent, Section::Absent);
    for format in [OutputFormat::HumanReadable, OutputFormat::Json, OutputFormat::Yaml, OutputFormat::Toml] {
        let err = inspect::render(&absent, format, &opts).unwrap_err();
        assert_eq!(err.to_string(), "unable to find builder 'nope' locally or remotely");
    }
    // Human-readable hides errors when nothing was found (as pack does).
    let both_failed = report("x", Section::Error("boom".into()), Section::Error("bang".into()));
    let err = inspect::render(&both_failed, OutputFormat::HumanReadable, &opts).unwrap_err();
    assert!(matches!(err, RenderError::NotFound { .. }));
    // Structured formats report the local error first.
    let err = inspect::render(&both_failed, OutputFormat::Json, &opts).unwrap_err();
    assert_eq!(err.to_string(), "preparing output for 'x': bang");
    let remote_failed = report("x", Section::Error("boom".into()), Section::Present(info(&minimal_labels())));
    let err = inspect::render(&remote_failed, OutputFormat::Toml, &opts).unwrap_err();
    assert_eq!(err.to_string(), "preparing output for 'x': boom");

    assert_eq!("human-readable".parse::<OutputFormat>(), Ok(OutputFormat::HumanReadable));
    assert_eq!("yaml".parse::<OutputFormat>(), Ok(OutputFormat::Yaml));
    assert_eq!("xml".parse::<OutputFormat>().unwrap_err().to_string(), "output format 'xml' is not supported");
}

/// cnbx's additions: the system buildpacks (pre and post) and, for an image index, its
/// platforms, in every format, after everything pack shows.
#[test]
fn system_buildpacks_and_index_platforms_in_every_format() {
    let mut labels = old_labels();
    labels.insert(
        labels::SYSTEM.to_owned(),
        r#"{"pre":{"buildpacks":[{"id":"read/env","version":"7"},{"id":"old/bp","optional":true}]},"post":{"buildpacks":[{"id":"old/meta","version":"0.1.0","optional":true}]}}"#
            .to_owned(),
    );
    let mut with_platforms = *info(&labels);
    with_platforms.platforms = vec![
        inspect::IndexEntry {
            platform: "linux/amd64".into(),
            manifest: format!("sha256:{}", "a".repeat(64)),
            shown: true,
        },
        inspect::IndexEntry {
            platform: "linux/arm64/v8".into(),
            manifest: format!("sha256:{}", "b".repeat(64)),
            shown: false,
        },
    ];
    let r = report(
        "old.example/builder:bionic",
        Section::Present(Box::new(with_platforms)),
        Section::Present(info(&labels)),
    );
    let opts = options(false, -1);
    insta::assert_snapshot!("human_system_and_platforms", human(&r, &opts));
    insta::assert_snapshot!("json_system_and_platforms", document(&r, OutputFormat::Json, &opts));
    insta::assert_snapshot!("yaml_system_and_platforms", document(&r, OutputFormat::Yaml, &opts));
    insta::assert_snapshot!("toml_system_and_platforms", document(&r, OutputFormat::Toml, &opts));

    // Without either, the output is what it was (pack's): the additions are only appended.
    let plain = report("old.example/builder:bionic", Section::Absent, Section::Present(info(&old_labels())));
    let added = report("old.example/builder:bionic", Section::Absent, Section::Present(info(&labels)));
    let (plain, added) = (human(&plain, &opts), human(&added, &opts));
    assert!(added.starts_with(plain.trim_end()), "{added}");
    assert!(!plain.contains("System Buildpacks") && !plain.contains("Platforms"));

    // A malformed system label is an error, like the labels pack reads.
    labels.insert(labels::SYSTEM.to_owned(), "{not json".to_owned());
    let err = BuilderInfo::from_labels(&labels).unwrap_err();
    assert!(
        cnbx_fs::error_chain(&err)
            .starts_with("reading image system buildpacks: parsing label content for io.buildpacks.buildpack.system: "),
        "{err}"
    );
}
