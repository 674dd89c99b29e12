//! `builder create` and `builder inspect`.

#[allow(dead_code)]
pub(crate) mod btoml;
pub mod gojson;
pub mod home;
pub mod images;
pub mod inspect;
pub mod labels;
pub mod layers;
