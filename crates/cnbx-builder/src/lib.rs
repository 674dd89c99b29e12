//! `builder create` and `builder inspect`.
//!
//! * [`create`]: `builder create` in three stages: a plan ([`create`]'s `plan`), the image
//!   of each target ([`assemble`]) and one write.
//! * [`assemble`]: the builder's layer assembler: layers built through the layer cache
//!   ([`assemble::LayerService`]), in pack's order, with pack's labels.
//! * [`modules`] and [`lifecycle`]: fetching buildpacks, extensions and the lifecycle, from
//!   wherever [`source`] says they are, read in one pass by [`scan`]'s archive scan.
//! * [`labels`]: the labels pack writes on a builder, as typed values written byte for byte
//!   like pack and read as leniently as pack reads them.
//! * [`inspect`]: what `builder inspect` derives from those labels and its four output
//!   formats.
//! * [`diff`]: `builder diff`, what changed between two builders, from their labels and
//!   configs.
//! * [`gocompat`]: the Go encoders (JSON, TOML twice, YAML, tabwriter) whose bytes pack's
//!   output is made of.
//!
//! The CNB data (module info, orders, targets, run images, the lifecycle, versions) are
//! [`cnbx_model`] types.
#![cfg_attr(not(test), warn(unused_crate_dependencies))]

pub mod assemble;
pub mod base_layers;
pub mod check;
pub mod create;
pub mod diff;
pub mod gocompat;
pub mod home;
pub mod images;
pub mod inspect;
pub mod labels;
pub mod lifecycle;
pub mod modules;
pub mod scan;
pub mod source;
pub(crate) mod validation;
