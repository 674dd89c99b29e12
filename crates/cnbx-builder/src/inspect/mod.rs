//! `builder inspect`: the model derived from a builder's labels and pack's four output
//! formats (docs/pack-compatibility.md, *builder inspect*).
//!
//! * [`BuilderInfo::from_labels`] reads one image's labels ([`model`]);
//! * an [`InspectReport`] holds the builder name, the trusted/default flags and the remote
//!   and local [`Section`]s;
//! * [`render`] (or [`human::render`], [`structured::json`], [`structured::yaml`],
//!   [`structured::toml`]) turns a report into text. Rendering is pure: nothing is printed.
//!
//! The output is pack's, byte for byte, for builders made by pack or by cnbx: the
//! human-readable layout with Go `text/tabwriter` alignment, JSON as `encoding/json` +
//! `json.Indent`, YAML as `gopkg.in/yaml.v3`, TOML as `pelletier/go-toml` v1 (the encoders are
//! in [`crate::gocompat`]), including their quirks (YAML's `sharedbuilderinfo:`,
//! TOML's `Name`/`Version` under `created_by`, the three blank lines before `Lifecycle:` when
//! there is no stack, …). The user-configured run-image mirrors come first in "Run Images",
//! in the order `cnbx_refs::mirrors::inspect_run_images` gives.
//!
//! # Deliberate differences from pack
//!
//! * **`--depth` below `-1`** expands the whole tree, as pack's help text says any negative
//!   value does; pack itself shows no nesting then (a pack quirk). See [`Depth::from_flag`].
//! * **Extension detection order** (a pack quirk): pack shows only the last extension of each
//!   `[[order-extensions]]` group. cnbx prints exactly that whenever every group has at most
//!   one extension, the common case; when a group has several, pack's output loses them and
//!   cnbx shows each group as a `Group #N:` node with all its extensions instead. See
//!   [`BuilderInfo::extension_detection_order`].
//! * **`--output json|yaml|toml --verbose` on a builder without a stack id** crashes pack (a
//!   nil dereference); cnbx leaves `stack` out, as without `--verbose`.
//! * **Colour**: output is always pack's no-colour form (names in single quotes).
//! * **Malformed labels**: the error starts like pack's (`reading image metadata: parsing
//!   label content for <label>: `) but the JSON parser's own message that follows is
//!   serde_json's, not Go's.
//! * **System buildpacks and platforms**: a section whose builder has system buildpacks (the
//!   `io.buildpacks.buildpack.system` label) or is an image index ([`BuilderInfo::platforms`])
//!   shows them after everything pack shows (`System Buildpacks:`, `Platforms:`;
//!   `system_buildpacks`, `platforms` in the structured formats). Without either the output
//!   is pack's, byte for byte. A malformed system label is an error like the labels pack
//!   reads.
//! * **Text from the labels** is someone else's: in the human-readable output a line feed or
//!   tab inside a value is shown escaped (`\u{a}`, `\u{9}`), so that no value can fake lines or
//!   columns (the printer escapes every other control character); pack prints them raw.
//! * **Run-image names** in the metadata label are checked as image references
//!   ([`crate::labels::builder_metadata`]); an invalid one makes the side an error naming the
//!   label, as a malformed label does.
//! * **Bounds**: the detection order is refused, naming the labels, past [`MAX_ORDER_DEPTH`]
//!   composite levels or [`MAX_DETECTION_ENTRIES`] entries ([`BuilderInfo::detection_order`]);
//!   pack expands every path, however many.
//! * **Warnings and section errors** are returned as separate [`human::Chunk`]s so that the
//!   caller decides where they go; [`HumanOutput::pack_stdout`] places warnings where pack
//!   prints them (stdout, after each section) and [`HumanOutput::pack_stderr`] gives pack's
//!   `ERROR:` lines.

pub mod human;
pub mod model;
pub mod structured;

use cnbx_model::RunImage;

pub use human::HumanOutput;
pub use model::{
    BuilderInfo, Depth, DetectionEntry, IndexEntry, InspectError, MAX_DETECTION_ENTRIES, MAX_ORDER_DEPTH, from_labels,
};

/// One side (remote or local) of an inspection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Section {
    /// The image does not exist there.
    Absent,
    /// The image could not be inspected; the message is the whole error chain.
    Error(String),
    /// The builder.
    Present(Box<BuilderInfo>),
}

impl Section {
    /// Whether the builder was found and read.
    pub fn is_present(&self) -> bool {
        matches!(self, Self::Present(_))
    }

    /// The section for an image's labels, as `builder inspect` shows it to `depth`: an error
    /// (the whole chain) when the labels cannot be read, name an invalid image, or give a
    /// detection order out of bounds ([`BuilderInfo::detection_order`]), so that such a side
    /// is reported like a malformed label before anything is rendered.
    pub fn from_labels(
        labels: &std::collections::BTreeMap<String, String>,
        platforms: Vec<IndexEntry>,
        depth: Depth,
    ) -> Self {
        Self::from_lookup(BuilderInfo::from_labels(labels).and_then(|info| {
            info.detection_order(depth)?;
            Ok(Some(BuilderInfo { platforms, ..info }))
        }))
    }

    /// The section for a lookup: `Ok(None)` is absent, an error keeps its whole chain
    /// (`outer: inner: …`).
    pub fn from_lookup<E: std::error::Error>(lookup: Result<Option<BuilderInfo>, E>) -> Self {
        match lookup {
            Ok(Some(info)) => Self::Present(Box::new(info)),
            Ok(None) => Self::Absent,
            Err(err) => Self::Error(cnbx_fs::error_chain(&err)),
        }
    }
}

/// Everything `builder inspect` reports about one builder name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InspectReport {
    /// The name as the user gave it (or the default builder's name).
    pub builder_name: String,
    /// Whether the builder is trusted.
    pub trusted: bool,
    /// Whether the name is the configured default builder.
    pub default: bool,
    /// The registry side.
    pub remote: Section,
    /// The local-store side.
    pub local: Section,
}

/// How to render a report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RenderOptions {
    /// `--verbose`: show mixins.
    pub verbose: bool,
    /// `--depth`.
    pub depth: Depth,
    /// The user's `[[run-images]]` (pack's configuration), for the `(user-configured)` rows.
    pub user_run_images: Vec<RunImage>,
}

/// An output format (`--output`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputFormat {
    /// `human-readable` (the default).
    #[default]
    HumanReadable,
    /// `json`.
    Json,
    /// `yaml`.
    Yaml,
    /// `toml`.
    Toml,
}

/// An `--output` value pack does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("output format '{0}' is not supported")]
pub struct UnsupportedFormat(pub String);

impl std::str::FromStr for OutputFormat {
    type Err = UnsupportedFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "human-readable" => Ok(Self::HumanReadable),
            "json" => Ok(Self::Json),
            "yaml" => Ok(Self::Yaml),
            "toml" => Ok(Self::Toml),
            other => Err(UnsupportedFormat(other.to_owned())),
        }
    }
}

/// Why a report cannot be rendered. The messages are pack's.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// Neither side is present (in the human-readable format, also when a side failed).
    #[error("unable to find builder '{name}' locally or remotely")]
    NotFound {
        /// The builder name.
        name: String,
    },
    /// A structured format was asked for and a side failed (local first).
    #[error("preparing output for '{name}': {message}")]
    Preparing {
        /// The builder name.
        name: String,
        /// The side's error chain.
        message: String,
    },
    /// The JSON encoder failed (not expected).
    #[error("untested, unexpected failure while marshaling")]
    Marshal(#[source] serde_json::Error),
}

/// A rendered report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rendered {
    /// The human-readable output.
    Human(HumanOutput),
    /// A JSON, YAML or TOML document (ending with a newline).
    Document(String),
}

/// Renders `report` in `format`.
pub fn render(report: &InspectReport, format: OutputFormat, options: &RenderOptions) -> Result<Rendered, RenderError> {
    match format {
        OutputFormat::HumanReadable => human::render(report, options).map(Rendered::Human),
        OutputFormat::Json => structured::json(report, options).map(Rendered::Document),
        OutputFormat::Yaml => structured::yaml(report, options).map(Rendered::Document),
        OutputFormat::Toml => structured::toml(report, options).map(Rendered::Document),
    }
}
