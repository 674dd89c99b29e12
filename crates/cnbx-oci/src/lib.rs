//! OCI images for cnbx.
//!
//! * [`digest`], [`spec`], [`config`]: digests, manifests/indexes, image configs, all
//!   serialised deterministically.
//! * [`tarball`], [`layer`], [`cache`]: pack-compatible tar encoding and the one-pass
//!   tar → sha256 → gzip → sha256 layer writer, with a content-addressed cache.
//! * [`blobstore`], [`layout`], [`store`], [`docker_archive`], [`docker_archive_read`],
//!   [`registry`], [`auth`], [`engine`]: where images are read from and written to.
//! * [`image`]: the transport-independent image model.
//! * [`progress`]: how library code reports progress without printing.
//! * [`http`]: the one way an HTTP client is made (TLS set up once for the process).
#![cfg_attr(not(test), warn(unused_crate_dependencies))]

pub mod archive;
pub mod auth;
pub mod blobstore;
pub mod cache;
pub mod config;
pub mod confine;
pub mod digest;
pub mod docker_archive;
pub mod docker_archive_read;
pub mod engine;
pub mod gzip;
pub mod http;
pub mod image;
pub mod layer;
pub mod layout;
pub mod progress;
pub mod registry;
pub mod spec;
pub mod store;
pub mod tarball;
pub mod tarread;

pub use blobstore::BlobStore;
pub use cache::{LayerCache, ReuseCheck, build_layers};
pub use config::ImageConfig;
pub use digest::Digest;
pub use docker_archive::write_docker_archive;
pub use image::{BlobSource, ImageToWrite, LayerBlob, SourceImage};
pub use layer::{ArchiveSource, LayerEntry, LayerInfo, LayerRecipe, build_layer, walk_dir};
pub use layout::OciLayout;
pub use registry::{PushOutcome, RegistryClient, RegistryError, RegistryOptions};
pub use spec::{Descriptor, Index, Manifest, Platform, Raw};
pub use store::LocalStore;
pub use tarball::{EntryKind, TarEntry, TarWriter};
