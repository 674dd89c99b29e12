//! The `builder.toml` model and parser, with `pack builder create`'s semantics.
//!
//! [`load`]/[`parse_str`] do what pack does before any image work: decode the TOML (every
//! unknown key is an error, all of them listed at once), warn on an empty `[[order]]`, merge the
//! legacy `[stack]` table with `[build]`/`[[run.images]]` (RFC-0096) and turn `[[build.env]]`
//! into the `/cnb/build-config/env/` file map. [`LoadedConfig::validate`] is pack's
//! `ValidateConfig` and [`LifecycleConfig::source`] pack's lifecycle choice. The CNB data
//! (module info and references, orders, targets, run images, the lifecycle source) are
//! [`cnbx_model`] types.
//!
//! Error `Display` texts are pack's error chains; [`ConfigError::diagnostic`] adds what pack
//! lacks: the file, line and column, the offending line and a hint. The crate never prints.
#![warn(missing_docs)]
#![cfg_attr(not(test), warn(unused_crate_dependencies))]

mod error;
mod lifecycle;
mod model;
mod parse;
mod schema;

pub use error::{ConfigError, UnknownKey};
pub use model::{BuildConfig, BuildEnv, BuilderConfig, LifecycleConfig, ModuleConfig, RunConfig, StackConfig};
pub use parse::{IMAGE_KEY_DEPRECATED, LoadedConfig, load, parse_bytes, parse_str};
