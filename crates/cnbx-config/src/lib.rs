//! The `builder.toml` model and parser, with `pack builder create`'s semantics.
//!
//! [`load`]/[`parse_str`] do what pack does before any image work: decode the TOML (every
//! unknown key is an error, all of them listed at once), warn on an empty `[[order]]`, merge the
//! legacy `[stack]` table with `[build]`/`[[run.images]]` (RFC-0096) and turn `[[build.env]]`
//! into the `/cnb/build-config/env/` file map. [`LoadedConfig::validate`] is pack's
//! `ValidateConfig`, [`LifecycleConfig::source`] pack's lifecycle choice and [`Target::parse`]
//! pack's `--target` syntax.
//!
//! Error `Display` texts are pack's error chains; [`ConfigError::diagnostic`] adds what pack
//! lacks: the file, line and column, the offending line and a hint. The crate never prints.
#![warn(missing_docs)]

mod error;
mod lifecycle;
mod model;
mod parse;
mod target;

pub use error::{ConfigError, UnknownKey};
pub use lifecycle::{DEFAULT_LIFECYCLE_VERSION, LifecycleSource};
pub use model::{
    BuildConfig, BuildEnv, BuilderConfig, Distro, License, LifecycleConfig, ModuleConfig, ModuleInfo, ModuleRef,
    OrderGroup, RunConfig, RunImageConfig, StackConfig, SystemBuildpacks, SystemConfig, Target,
};
pub use parse::{IMAGE_KEY_DEPRECATED, LoadedConfig, load, parse_bytes, parse_str};
pub use target::{TargetError, TargetErrorKind, supports_platform};
