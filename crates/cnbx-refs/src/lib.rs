//! Image references, image locations (transports), run-image mirror selection and the
//! user's `CNBX_HOME/config.toml`.
//!
//! Nothing here touches the network. Registry normalisation follows go-containerregistry's
//! rules as pack and lifecycle use them (see `docs/architecture.md`), except that bare
//! `localhost[:port]` is a registry, as in Docker.

pub mod location;
pub mod mirrors;
pub mod reference;
pub mod user_config;

pub use location::ImageLocation;
pub use reference::{ImageRef, RefError};
