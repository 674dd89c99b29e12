//! Image references, image locations (transports), run-image mirror selection, registry
//! mirrors, trusted builders and the configuration (pack's `$PACK_HOME/config.toml`).
//!
//! Nothing here touches the network, and nothing prints. Registry normalisation follows
//! go-containerregistry's rules as pack and lifecycle use them (see `docs/architecture.md`),
//! except that bare `localhost[:port]` is a registry, as in Docker (see [`reference`](mod@reference)).
//!
//! * [`reference`](mod@reference): [`ImageRef`], Docker-style references with pack's normalisation
//!   (`index.docker.io`, `library/`).
//! * [`location`]: [`ImageLocation`], `NAME`, `oci:<DIR>[:<TAG>]`,
//!   `docker-archive:<FILE>[:<NAME>]`, `docker-daemon:NAME[:TAG]`.
//! * [`mirrors`]: choosing a run image among user mirrors, the run image and builder mirrors
//!   ([`mirrors::resolve`]), and the "Run Images" rows of `builder inspect`.
//! * [`registry_mirrors`]: pack's `[registry-mirrors]`, the name an image is fetched as.
//! * [`trusted`]: pack's known trusted builders and its `[[trusted-builders]]` rules.
//! * [`user_config`]: [`UserConfig`], pack's configuration file, edited in place and saved
//!   atomically; the take-over of an earlier cnbx's `CNBX_HOME/config.toml`.

#![warn(missing_docs)]
#![cfg_attr(not(test), warn(unused_crate_dependencies))]

pub mod location;
pub mod mirrors;
pub mod reference;
pub mod registry_mirrors;
pub mod trusted;
pub mod user_config;

pub use location::{DaemonImage, ImageLocation, Transport};
pub use mirrors::Resolution;
pub use reference::{ImageRef, RefError};
pub use user_config::{UserConfig, UserConfigError};
