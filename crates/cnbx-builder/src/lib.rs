//! `builder create` and `builder inspect`.

pub(crate) mod btoml;
