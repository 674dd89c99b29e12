//! The labels pack writes on a builder image, as typed values.
//!
//! The same types serve `builder create` (writing) and `builder inspect` (reading):
//!
//! * **Writing** ([`encode`]) is byte-identical to pack's `json.Marshal`: keys in pack's
//!   struct order, map keys sorted, Go's HTML-safe escaping, Go's `nil`-slice `null`
//!   (modelled as `Option<Vec<_>>`) versus `[]`, `omitempty` fields skipped, API versions as
//!   `"major.minor"` and the lifecycle version normalised (see [`crate::gocompat::json`]).
//! * **Reading** ([`decode`], [`decode_required`], [`decode_or_default`]) is as tolerant as
//!   pack's `json.Unmarshal`: unknown keys are ignored, missing keys and `null` take the zero
//!   value, keys match case-insensitively (so a license's `Type`/`URI` also read as
//!   `type`/`uri`). Malformed JSON is `parsing label content for <label>: …`, a missing
//!   required label `builder missing label <label> -- try recreating builder`, as in pack.
//! * **Image names** in [`BUILDER_METADATA`] (the run images and their mirrors) are read with
//!   [`builder_metadata`], which checks each one as an image reference
//!   ([`cnbx_refs::ImageRef`]) before anything prints or uses it: an image's labels are
//!   someone else's text, and `registry.example/run:1 --privileged $(…)` is not a name a
//!   user should be shown to copy, nor one cnbx should write into a builder. An invalid one
//!   is [`LabelError::InvalidImage`], naming the label (pack prints whatever is there).
//!
//! The CNB data inside the labels are [`cnbx_model`] types. Label values and their Rust types:
//!
//! | label | type |
//! |---|---|
//! | [`BUILDER_METADATA`] | [`BuilderMetadata`] |
//! | [`BUILDPACK_LAYERS`], [`EXTENSION_LAYERS`] | [`ModuleLayers`] (`{}` when empty) |
//! | [`BUILDPACK_ORDER`], [`ORDER_EXTENSIONS`] | `Option<Vec<`[`OrderEntry`](cnbx_model::OrderEntry)`>>` (`null` when `None`) |
//! | [`SYSTEM`] | [`System`](cnbx_model::System) (pack writes it only when it lists buildpacks) |
//! | [`STACK_MIXINS`] | `Option<Vec<String>>` (`null` when the build image has none) |
//! | [`STACK_ID`] | a plain string, inherited from the build image |
//!
//! Differences from pack: none in the bytes written. When reading, an object holding two
//! spellings of one key keeps the exact spelling rather than the last one (see
//! [`crate::gocompat::json`]).

mod metadata;
mod module_layers;

use std::collections::BTreeMap;

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use metadata::{BuilderMetadata, CreatorMetadata, StackMetadata};
pub use module_layers::{ModuleLayerInfo, ModuleLayers};

/// `io.buildpacks.builder.metadata`: [`BuilderMetadata`].
pub const BUILDER_METADATA: &str = "io.buildpacks.builder.metadata";
/// `io.buildpacks.buildpack.layers`: [`ModuleLayers`] of the buildpacks.
pub const BUILDPACK_LAYERS: &str = "io.buildpacks.buildpack.layers";
/// `io.buildpacks.extension.layers`: [`ModuleLayers`] of the extensions.
pub const EXTENSION_LAYERS: &str = "io.buildpacks.extension.layers";
/// `io.buildpacks.buildpack.order`: the unresolved `[[order]]`.
pub const BUILDPACK_ORDER: &str = "io.buildpacks.buildpack.order";
/// `io.buildpacks.buildpack.order-extensions`: the unresolved `[[order-extensions]]`.
pub const ORDER_EXTENSIONS: &str = "io.buildpacks.buildpack.order-extensions";
/// `io.buildpacks.buildpack.system`: [`System`].
pub const SYSTEM: &str = "io.buildpacks.buildpack.system";
/// `io.buildpacks.stack.id`: the stack id (a plain string).
pub const STACK_ID: &str = "io.buildpacks.stack.id";
/// `io.buildpacks.stack.mixins`: the build image's mixins.
pub const STACK_MIXINS: &str = "io.buildpacks.stack.mixins";

/// Errors reading or writing a label.
#[derive(Debug, thiserror::Error)]
pub enum LabelError {
    /// A required label is absent or empty.
    #[error("builder missing label {0} -- try recreating builder")]
    Missing(String),
    /// A label is not valid JSON for its type.
    #[error("parsing label content for {label}")]
    Parse {
        /// The label name.
        label: String,
        /// What is wrong with it.
        #[source]
        source: serde_json::Error,
    },
    /// A label names an image by something that is not a valid image reference.
    #[error("label {label} names an invalid {what}")]
    InvalidImage {
        /// The label name.
        label: String,
        /// `run image` or `run image mirror`.
        what: &'static str,
        /// Why the name is not a reference (it quotes the name as an excerpt).
        #[source]
        source: cnbx_refs::RefError,
    },
    /// A value could not be serialised (not expected for the label types of this module).
    #[error("encoding label {label}")]
    Encode {
        /// The label name.
        label: String,
        /// What went wrong.
        #[source]
        source: serde_json::Error,
    },
}

/// Serialises a label value as pack does (compact Go JSON).
pub fn encode<T: Serialize + ?Sized>(label: &str, value: &T) -> Result<String, LabelError> {
    crate::gocompat::json::to_string(value).map_err(|source| LabelError::Encode { label: label.to_owned(), source })
}

/// Parses a label value with Go's leniency.
pub fn decode<T: DeserializeOwned>(label: &str, content: &str) -> Result<T, LabelError> {
    crate::gocompat::json::from_str(content).map_err(|source| LabelError::Parse { label: label.to_owned(), source })
}

/// Reads a label that must be present (pack's `labelJSON`): absent or empty →
/// [`LabelError::Missing`].
pub fn decode_required<T: DeserializeOwned>(labels: &BTreeMap<String, String>, label: &str) -> Result<T, LabelError> {
    match labels.get(label).filter(|c| !c.is_empty()) {
        Some(content) => decode(label, content),
        None => Err(LabelError::Missing(label.to_owned())),
    }
}

/// Reads an optional label (pack's `labelJSONDefaultEmpty`): absent or empty → `T::default()`.
pub fn decode_or_default<T: DeserializeOwned + Default>(
    labels: &BTreeMap<String, String>,
    label: &str,
) -> Result<T, LabelError> {
    match labels.get(label).filter(|c| !c.is_empty()) {
        Some(content) => decode(label, content),
        None => Ok(T::default()),
    }
}

/// Reads [`BUILDER_METADATA`] (required, like [`decode_required`], or not, like
/// [`decode_or_default`]) and checks every image name in it: each run image (`images` and
/// the legacy `stack.runImage`; an empty name is no run image) and each of their mirrors
/// must be a valid image reference, else [`LabelError::InvalidImage`].
pub fn builder_metadata(labels: &BTreeMap<String, String>, required: bool) -> Result<BuilderMetadata, LabelError> {
    let metadata: BuilderMetadata = if required {
        decode_required(labels, BUILDER_METADATA)?
    } else {
        decode_or_default(labels, BUILDER_METADATA)?
    };
    let run_images = metadata.run_images.iter().flatten().chain(std::iter::once(&metadata.stack.run_image));
    for run in run_images {
        let invalid =
            |what| move |source| LabelError::InvalidImage { label: BUILDER_METADATA.to_owned(), what, source };
        if !run.image.is_empty() {
            cnbx_refs::ImageRef::parse(&run.image).map_err(invalid("run image"))?;
        }
        for mirror in run.mirror_list() {
            cnbx_refs::ImageRef::parse(mirror).map_err(invalid("run image mirror"))?;
        }
    }
    Ok(metadata)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cnbx_model::{
        ApiVersion, ApiVersions, Distribution, License, LifecycleApi, LifecycleApis, LifecycleDescriptor, ModuleInfo,
        ModuleRef, ModuleStack, OrderEntry, RunImage, Semver, System, SystemBuildpacks, Target,
    };

    fn api(s: &str) -> ApiVersion {
        ApiVersion::parse(s).unwrap()
    }

    fn apis(list: &[&str]) -> Option<Vec<ApiVersion>> {
        Some(list.iter().map(|s| api(s)).collect())
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

    fn digest(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    const METADATA_GOLDEN: &str = concat!(
        r#"{"description":"Sample builder","buildpacks":[{"id":"samples/hello-universe","name":"Hello Universe Buildpack","version":"0.0.1","homepage":"https://example.com/hu"},{"id":"samples/hello-moon","name":"Hello Moon Buildpack","version":"0.0.3"},{"id":"samples/hello-world","name":"Hello World Buildpack","version":"0.0.2"}],"#,
        r#""extensions":null,"stack":{"runImage":{"image":"cnbs/sample-base-run:jammy","mirrors":["gcr.io/x/run:jammy"]}},"#,
        r#""lifecycle":{"version":"0.21.0","api":{"buildpack":"0.7","platform":"0.7"},"apis":{"buildpack":{"deprecated":[],"supported":["0.7","0.8","0.9","0.10","0.11","0.12"]},"platform":{"deprecated":[],"supported":["0.7","0.8","0.9","0.10","0.11","0.12","0.13","0.14","0.15"]}}},"#,
        r#""createdBy":{"name":"Pack CLI","version":"0.38.2+git-abc1234.build-5678"},"images":[{"image":"cnbs/sample-base-run:jammy","mirrors":["gcr.io/x/run:jammy"]}]}"#
    );

    fn metadata_sample() -> BuilderMetadata {
        let run =
            RunImage { image: "cnbs/sample-base-run:jammy".into(), mirrors: Some(vec!["gcr.io/x/run:jammy".into()]) };
        BuilderMetadata {
            description: "Sample builder".into(),
            buildpacks: Some(vec![
                module("samples/hello-universe", "Hello Universe Buildpack", "0.0.1", "https://example.com/hu"),
                module("samples/hello-moon", "Hello Moon Buildpack", "0.0.3", ""),
                module("samples/hello-world", "Hello World Buildpack", "0.0.2", ""),
            ]),
            extensions: None,
            stack: StackMetadata { run_image: run.clone() },
            lifecycle: LifecycleDescriptor {
                version: Some(Semver::parse("0.21.0").unwrap()),
                api: LifecycleApi { buildpack: Some(api("0.7")), platform: Some(api("0.7")) },
                apis: LifecycleApis {
                    buildpack: ApiVersions {
                        deprecated: Some(vec![]),
                        supported: apis(&["0.7", "0.8", "0.9", "0.10", "0.11", "0.12"]),
                    },
                    platform: ApiVersions {
                        deprecated: Some(vec![]),
                        supported: apis(&["0.7", "0.8", "0.9", "0.10", "0.11", "0.12", "0.13", "0.14", "0.15"]),
                    },
                },
            },
            created_by: CreatorMetadata { name: "Pack CLI".into(), version: "0.38.2+git-abc1234.build-5678".into() },
            run_images: Some(vec![run]),
        }
    }

    /// The metadata label pack writes for a sample builder.
    #[test]
    fn builder_metadata_golden() {
        let sample = metadata_sample();
        assert_eq!(encode(BUILDER_METADATA, &sample).unwrap(), METADATA_GOLDEN);
        let read: BuilderMetadata = decode(BUILDER_METADATA, METADATA_GOLDEN).unwrap();
        assert_eq!(read, sample);
    }

    fn layers_golden() -> String {
        format!(
            concat!(
                r#"{{"samples/hello-moon":{{"0.0.3":{{"api":"0.10","targets":[{{"os":"linux","arch":"amd64"}},{{"os":"linux","arch":"arm64","distros":[{{"name":"ubuntu","version":"22.04"}}]}}],"layerDiffID":"{moon}","name":"Hello Moon Buildpack"}}}},"#,
                r#""samples/hello-universe":{{"0.0.1":{{"api":"0.10","order":[{{"group":[{{"id":"samples/hello-world","version":"0.0.2"}},{{"id":"samples/hello-moon","version":"0.0.3","optional":true}}]}}],"layerDiffID":"{universe}","homepage":"https://example.com/hu","name":"Hello Universe Buildpack"}}}},"#,
                r#""samples/hello-world":{{"0.0.2":{{"api":"0.10","stacks":[{{"id":"*"}}],"layerDiffID":"{world}","name":"Hello World Buildpack"}}}}}}"#
            ),
            moon = digest('2'),
            universe = digest('1'),
            world = digest('3'),
        )
    }

    fn layers_sample() -> ModuleLayers {
        let mut layers = ModuleLayers::default();
        layers.insert(
            "samples/hello-world",
            "0.0.2",
            ModuleLayerInfo {
                api: Some(api("0.10")),
                stacks: vec![ModuleStack { id: "*".into(), mixins: vec![] }],
                layer_diff_id: digest('3'),
                name: "Hello World Buildpack".into(),
                ..ModuleLayerInfo::default()
            },
        );
        layers.insert(
            "samples/hello-moon",
            "0.0.3",
            ModuleLayerInfo {
                api: Some(api("0.10")),
                targets: vec![
                    Target { os: "linux".into(), arch: "amd64".into(), ..Target::default() },
                    Target {
                        os: "linux".into(),
                        arch: "arm64".into(),
                        variant: String::new(),
                        distros: vec![Distribution { name: "ubuntu".into(), version: "22.04".into() }],
                    },
                ],
                layer_diff_id: digest('2'),
                name: "Hello Moon Buildpack".into(),
                ..ModuleLayerInfo::default()
            },
        );
        layers.insert(
            "samples/hello-universe",
            "0.0.1",
            ModuleLayerInfo {
                api: Some(api("0.10")),
                order: vec![OrderEntry::new(vec![
                    ModuleRef::new("samples/hello-world", "0.0.2"),
                    ModuleRef::new("samples/hello-moon", "0.0.3").optional(),
                ])],
                layer_diff_id: digest('1'),
                homepage: "https://example.com/hu".into(),
                name: "Hello Universe Buildpack".into(),
                ..ModuleLayerInfo::default()
            },
        );
        layers
    }

    /// The layers label pack writes for sample buildpacks (digests made up).
    #[test]
    fn layers_golden_matches() {
        let sample = layers_sample();
        let golden = layers_golden();
        assert_eq!(encode(BUILDPACK_LAYERS, &sample).unwrap(), golden);
        let read: ModuleLayers = decode(BUILDPACK_LAYERS, &golden).unwrap();
        assert_eq!(read, sample);
        assert_eq!(encode(BUILDPACK_LAYERS, &ModuleLayers::default()).unwrap(), "{}");
    }

    /// The order label upstream's acceptance test asserts.
    #[test]
    fn order_label_golden() {
        let golden = r#"[{"group":[{"id":"read/env","version":"read-env-version","optional":true},{"id":"simple/layers","version":"simple-layers-version","optional":true}]}]"#;
        let order = Some(vec![OrderEntry::new(vec![
            ModuleRef::new("read/env", "read-env-version").optional(),
            ModuleRef::new("simple/layers", "simple-layers-version").optional(),
        ])]);
        assert_eq!(encode(BUILDPACK_ORDER, &order).unwrap(), golden);
        assert_eq!(decode::<Option<Vec<OrderEntry>>>(BUILDPACK_ORDER, golden).unwrap(), order);
        assert_eq!(encode(BUILDPACK_ORDER, &None::<Vec<OrderEntry>>).unwrap(), "null");
        assert_eq!(encode(BUILDPACK_ORDER, &[OrderEntry::default()]).unwrap(), r#"[{"group":null}]"#);
    }

    #[test]
    fn system_and_mixins_labels() {
        let system = System {
            pre: SystemBuildpacks { buildpacks: vec![ModuleRef::new("sys/pre", "1.0").optional()] },
            post: SystemBuildpacks::default(),
        };
        assert_eq!(
            encode(SYSTEM, &system).unwrap(),
            r#"{"pre":{"buildpacks":[{"id":"sys/pre","version":"1.0","optional":true}]},"post":{}}"#
        );
        assert!(!system.is_empty());
        assert!(System::default().is_empty());
        assert_eq!(encode(STACK_MIXINS, &None::<Vec<String>>).unwrap(), "null");
        assert_eq!(encode(STACK_MIXINS, &["a", "build:b"]).unwrap(), r#"["a","build:b"]"#);
    }

    #[test]
    fn module_info_writes_every_field_in_pack_order() {
        let info = ModuleInfo {
            id: "a/b".into(),
            name: "A <&> B".into(),
            version: "1".into(),
            description: "d".into(),
            homepage: "h".into(),
            keywords: vec!["k".into()],
            exec_env: vec!["production".into()],
            licenses: vec![License { kind: "MIT".into(), uri: String::new() }],
            clear_env: true,
        };
        let json = encode("x", &info).unwrap();
        assert_eq!(
            json,
            r#"{"id":"a/b","name":"A \u003c\u0026\u003e B","version":"1","description":"d","homepage":"h","keywords":["k"],"exec-env":["production"],"licenses":[{"Type":"MIT","URI":""}],"clear-env":true}"#
        );
        assert_eq!(decode::<ModuleInfo>("x", &json).unwrap(), info);
        assert_eq!(encode("x", &ModuleInfo::default()).unwrap(), "{}");
        let lower: ModuleInfo = decode("x", r#"{"licenses":[{"type":"MIT","uri":"u"}]}"#).unwrap();
        assert_eq!(lower.licenses, vec![License { kind: "MIT".into(), uri: "u".into() }]);
    }

    #[test]
    fn reading_is_tolerant() {
        // An old pack builder: legacy lifecycle API only, no images, no createdBy, extra keys.
        let old = r#"{"description":"","buildpacks":[{"id":"x","version":"1","unknown":true}],"groups":[],
            "stack":{"runImage":{"image":"run","mirrors":null}},
            "lifecycle":{"version":"0.9.1","api":{"buildpack":"0.2","platform":"0.3"}}}"#;
        let m: BuilderMetadata = decode(BUILDER_METADATA, old).unwrap();
        assert_eq!(m.buildpacks, Some(vec![ModuleInfo::new("x", "1")]));
        assert_eq!(m.run_images, None);
        assert_eq!(m.lifecycle.api.platform, Some(api("0.3")));
        assert_eq!(m.created_by, CreatorMetadata::default());
        let empty: BuilderMetadata = decode(BUILDER_METADATA, "{}").unwrap();
        assert_eq!(empty, BuilderMetadata::default());
        assert_eq!(
            encode(BUILDER_METADATA, &empty).unwrap(),
            r#"{"description":"","buildpacks":null,"extensions":null,"stack":{"runImage":{"image":"","mirrors":null}},"lifecycle":{"version":null,"api":{"buildpack":null,"platform":null},"apis":{"buildpack":{"deprecated":null,"supported":null},"platform":{"deprecated":null,"supported":null}}},"createdBy":{"name":"","version":""},"images":null}"#
        );
    }

    #[test]
    fn lifecycle_version_is_written_normalised() {
        let m: BuilderMetadata = decode(BUILDER_METADATA, r#"{"lifecycle":{"version":"v0.21"}}"#).unwrap();
        let version = m.lifecycle.version.as_ref().unwrap();
        assert_eq!(version.original(), "v0.21");
        assert!(encode(BUILDER_METADATA, &m).unwrap().contains(r#""lifecycle":{"version":"0.21.0","#));
    }

    #[test]
    fn errors_read_like_pack() {
        let labels = BTreeMap::from([(BUILDER_METADATA.to_owned(), "{".to_owned())]);
        let err = decode_required::<BuilderMetadata>(&labels, BUILDER_METADATA).unwrap_err();
        assert!(err.to_string().starts_with("parsing label content for io.buildpacks.builder.metadata"), "{err}");
        let err = decode_required::<BuilderMetadata>(&BTreeMap::new(), BUILDER_METADATA).unwrap_err();
        assert_eq!(err.to_string(), "builder missing label io.buildpacks.builder.metadata -- try recreating builder");
        let empty = BTreeMap::from([(BUILDPACK_ORDER.to_owned(), String::new())]);
        assert_eq!(decode_or_default::<Option<Vec<OrderEntry>>>(&empty, BUILDPACK_ORDER).unwrap(), None);
        let bad_api = r#"{"lifecycle":{"apis":{"buildpack":{"supported":["zero"]}}}}"#;
        assert!(decode::<BuilderMetadata>(BUILDER_METADATA, bad_api).is_err());
        let bad_version = r#"{"lifecycle":{"version":"banana"}}"#;
        assert!(decode::<BuilderMetadata>(BUILDER_METADATA, bad_version).is_err());
    }

    #[test]
    fn image_names_in_the_metadata_are_references() {
        let labels = |metadata: &str| BTreeMap::from([(BUILDER_METADATA.to_owned(), metadata.to_owned())]);
        let good = labels(METADATA_GOLDEN);
        assert_eq!(builder_metadata(&good, true).unwrap(), metadata_sample());
        assert_eq!(builder_metadata(&BTreeMap::new(), false).unwrap(), BuilderMetadata::default());
        assert!(matches!(builder_metadata(&BTreeMap::new(), true), Err(LabelError::Missing(_))));
        // An empty legacy run image is no run image.
        assert!(builder_metadata(&labels(r#"{"stack":{"runImage":{"image":""}}}"#), true).is_ok());

        let shell = "registry.example/run:1 --privileged $(touch /tmp/pwned)";
        let cases = [
            (format!(r#"{{"images":[{{"image":"{shell}"}}]}}"#), "run image"),
            (format!(r#"{{"images":[{{"image":"ok/run","mirrors":["m/run","{shell}"]}}]}}"#), "run image mirror"),
            (format!(r#"{{"stack":{{"runImage":{{"image":"{shell}"}}}}}}"#), "run image"),
            (r#"{"stack":{"runImage":{"image":"ok/run","mirrors":["Bad/Upper"]}}}"#.to_owned(), "run image mirror"),
            (r#"{"images":[{"image":"r\u001b]0;x\u0007"}]}"#.to_owned(), "run image"),
        ];
        for (metadata, what) in cases {
            let err = builder_metadata(&labels(&metadata), true).unwrap_err();
            assert!(matches!(&err, LabelError::InvalidImage { what: w, .. } if *w == what), "{metadata}: {err:?}");
            let chain = cnbx_fs::error_chain(&err);
            let start =
                format!("label io.buildpacks.builder.metadata names an invalid {what}: invalid image reference '");
            assert!(chain.starts_with(&start), "{chain}");
            assert!(!chain.chars().any(char::is_control), "{chain}");
        }
    }

    #[test]
    fn layers_lookup_follows_pack() {
        let layers = layers_sample();
        assert!(layers.get("samples/hello-world", "").is_some());
        assert!(layers.get("samples/hello-world", "0.0.2").is_some());
        assert!(layers.get("samples/hello-world", "9").is_none());
        assert!(layers.get("nope", "").is_none());
        let mut two = layers.clone();
        two.insert("samples/hello-world", "0.0.3", ModuleLayerInfo::default());
        assert!(two.get("samples/hello-world", "").is_none());
    }
}
