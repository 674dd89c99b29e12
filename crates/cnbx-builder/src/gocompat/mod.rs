//! Encoders and a decoder that reproduce Go libraries byte for byte. cnbx writes what pack
//! writes: the bytes of a builder's files decide its layers' diffIDs, its labels are read by
//! pack, the lifecycle and platforms, and `builder inspect` prints what `pack builder
//! inspect` prints. Each Go library has quirks that a Rust library for the same format does
//! not share, so each is reproduced here, once:
//!
//! | module | Go original | used for | why not a Rust crate |
//! |---|---|---|---|
//! | [`json`] | `encoding/json` | every label, `builder inspect --output json` | serde_json escapes differently (Go escapes `<`, `>`, `&`, U+2028/U+2029) and reads strictly (Go matches keys case-insensitively, reads `null` as the zero value) |
//! | [`burntsushi_toml`] | `BurntSushi/toml` v1 | `/cnb/order.toml`, `/cnb/system.toml`, `/cnb/stack.toml`, `/cnb/run.toml` | their bytes are part of layers whose diffIDs must be pack's: indentation, blank lines and key order differ in every TOML crate |
//! | [`go_toml`] | `pelletier/go-toml` v1 | `builder inspect --output toml` | go-toml's placement of plain keys after sub-tables, its indentation and its `\uXXXX` escapes |
//! | [`yaml`] | `gopkg.in/yaml.v3` | `builder inspect --output yaml` | yaml.v3's indentation, quoting (YAML 1.1 booleans, base-60 numbers) and empty collections differ from serde_norway's |
//! | [`tabwriter`] | `text/tabwriter` | `builder inspect` (human-readable) | the `tabwriter` crate (a port of Go's) gives the same bytes for ASCII tables, but measures a cell by its display width where Go counts runes (a CJK or combining character in a module's name shifts the columns), and passes `\f` through where Go ends the line |
//!
//! [`Node`] is the value the YAML and go-toml encoders write: a Go value as those encoders
//! see it (nil pointers, nil and empty slices, structs with fields in order).

pub mod burntsushi_toml;
pub mod go_toml;
pub mod json;
pub mod tabwriter;
pub mod yaml;

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

/// A Go value as the YAML and TOML encoders see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A nil pointer.
    Null,
    /// A boolean.
    Bool(bool),
    /// A string.
    Str(String),
    /// A slice. `nil` marks Go's nil slice (JSON `null`); `tables` marks a slice of structs
    /// (TOML arrays of tables, which go-toml omits when empty).
    List { items: Vec<Node>, nil: bool, tables: bool },
    /// A struct, fields in order.
    Map(Vec<(&'static str, Node)>),
}

impl Serialize for Node {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Null | Self::List { nil: true, .. } => serializer.serialize_none(),
            Self::Bool(b) => serializer.serialize_bool(*b),
            Self::Str(s) => serializer.serialize_str(s),
            Self::List { items, .. } => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Self::Map(entries) => {
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (key, value) in entries {
                    map.serialize_entry(key, value)?;
                }
                map.end()
            }
        }
    }
}
