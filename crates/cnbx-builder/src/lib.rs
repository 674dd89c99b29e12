//! `builder create` and `builder inspect`.
//!
//! * [`labels`]: the labels pack writes on a builder, as typed values written byte for byte
//!   like pack ([`gojson`] is Go's `encoding/json`) and read as leniently as pack reads them.
//! * [`inspect`]: what `builder inspect` derives from those labels and its four output
//!   formats.

mod base_layers;
#[allow(dead_code)]
pub(crate) mod btoml;
pub mod create;
pub mod gojson;
pub mod home;
pub mod images;
pub mod inspect;
pub mod labels;
pub mod layers;
pub mod lifecycle;
pub mod modules;
