//! The Cloud Native Buildpacks data cnbx reads and writes, defined once.
//!
//! | module | what |
//! |---|---|
//! | [`version`] | [`ApiVersion`] (buildpack and platform APIs) and [`Semver`] (lifecycle versions), each with the one parser of its Go original |
//! | [`ident`] | [`ModuleKind`]; [`ModuleId`] and [`ModuleVersion`], checked before they become directory names, and [`ModuleDirs`] |
//! | [`module`] | [`ModuleInfo`], [`License`], [`ModuleRef`], [`OrderEntry`], [`ModuleStack`], [`System`] |
//! | [`target`] | [`Target`], [`Distribution`] and pack's `--target` syntax |
//! | [`run_image`] | [`RunImage`]: a run image and its mirrors |
//! | [`lifecycle`] | [`LifecycleSource`], [`DEFAULT_LIFECYCLE_VERSION`], [`LifecycleDescriptor`] (`lifecycle.toml`) |
//! | [`descriptor`] | [`ModuleDescriptor`]: `buildpack.toml` / `extension.toml` |
//!
//! The types are serde types. They read builder.toml (through `cnbx-config`, which refuses
//! unknown keys with `serde_ignored`), module descriptors and `lifecycle.toml` (here, with
//! errors that never quote the file), and builder labels (through the Go-compatible JSON
//! reader of `cnbx-builder`, which matches keys case-insensitively); they write labels as
//! pack does. Files built from them (`/cnb/order.toml`, …) are written by `cnbx-builder`.
//!
//! Nothing here does I/O or prints.
#![warn(missing_docs)]
#![cfg_attr(not(test), warn(unused_crate_dependencies))]

pub mod descriptor;
pub mod ident;
pub mod lifecycle;
pub mod module;
pub mod run_image;
pub mod target;
mod toml_doc;
pub mod version;

pub use descriptor::{DescriptorError, ModuleDescriptor};
pub use ident::{IdentError, ModuleDirs, ModuleId, ModuleKind, ModuleVersion, escape_id};
pub use lifecycle::{
    ApiVersions, DEFAULT_LIFECYCLE_VERSION, LifecycleApi, LifecycleApis, LifecycleDescriptor, LifecycleDescriptorError,
    LifecycleSource,
};
pub use module::{License, ModuleInfo, ModuleRef, ModuleStack, OrderEntry, System, SystemBuildpacks, WithModuleInfo};
pub use run_image::RunImage;
pub use target::{Distribution, Target, TargetError, TargetErrorKind};
pub use toml_doc::{TomlProblem, key_at};
pub use version::{ApiVersion, Semver, SemverProblem, VersionError};
