//! `io.buildpacks.builder.metadata` (pack's `builder.Metadata`).

use serde::{Deserialize, Serialize};

use cnbx_model::{LifecycleDescriptor, ModuleInfo, RunImage};

/// The builder metadata label. Keys, in order: `description` (always, may be `""`),
/// `buildpacks`, `extensions` (`null` when `None`), `stack`, `lifecycle`, `createdBy`,
/// `images` (`null` when `None`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BuilderMetadata {
    /// The builder's description.
    pub description: String,
    /// Every buildpack on the builder (in the order they were added).
    pub buildpacks: Option<Vec<ModuleInfo>>,
    /// Every image extension on the builder.
    pub extensions: Option<Vec<ModuleInfo>>,
    /// The legacy stack section (the first run image, for old readers).
    pub stack: StackMetadata,
    /// The lifecycle's version and APIs.
    pub lifecycle: LifecycleDescriptor,
    /// The tool that created the builder.
    #[serde(rename = "createdBy")]
    pub created_by: CreatorMetadata,
    /// The run images (`[[run.images]]`).
    #[serde(rename = "images")]
    pub run_images: Option<Vec<RunImage>>,
}

/// `{"runImage":{…}}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StackMetadata {
    /// The stack's run image.
    #[serde(rename = "runImage")]
    pub run_image: RunImage,
}

/// `{"name":…,"version":…}`, both always written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CreatorMetadata {
    /// The creating tool (`Pack CLI` for pack).
    pub name: String,
    /// Its version.
    pub version: String,
}
