//! A run image and its mirrors: builder.toml's `[[run.images]]`, the builder metadata label's
//! `images` and `stack.runImage`, `/cnb/run.toml` and `/cnb/stack.toml`, and the user's
//! `[[run-images]]` in the configuration (pack's `$PACK_HOME/config.toml`).

use serde::{Deserialize, Serialize};

/// A run image and its mirrors. `mirrors` keeps pack's distinction between a list the file
/// does not have (`None`: `null` in labels, no key in the TOML files) and an empty one
/// (`Some(vec![])`: `[]`, `mirrors = []`). JSON: `{"image":…,"mirrors":…}`, both always
/// written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct RunImage {
    /// The run image name, as written.
    pub image: String,
    /// Its mirrors, as written.
    pub mirrors: Option<Vec<String>>,
}

impl RunImage {
    /// A run image with mirrors (an empty list when `mirrors` is empty).
    pub fn new(image: impl Into<String>, mirrors: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self { image: image.into(), mirrors: Some(mirrors.into_iter().map(Into::into).collect()) }
    }

    /// The mirrors (empty when absent).
    pub fn mirror_list(&self) -> &[String] {
        self.mirrors.as_deref().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_and_empty_mirrors_differ() {
        let absent: RunImage = toml::from_str("image = \"r\"").unwrap();
        let empty: RunImage = toml::from_str("image = \"r\"\nmirrors = []").unwrap();
        assert_eq!(absent.mirrors, None);
        assert_eq!(empty.mirrors, Some(vec![]));
        assert_eq!(serde_json::to_string(&absent).unwrap(), r#"{"image":"r","mirrors":null}"#);
        assert_eq!(serde_json::to_string(&empty).unwrap(), r#"{"image":"r","mirrors":[]}"#);
        assert!(absent.mirror_list().is_empty());
    }
}
