//! The image configuration blob, kept as JSON so that fields we do not model survive a
//! round trip (Docker's `container_config`, `ExposedPorts`, `Healthcheck`, ...).
//!
//! Serialisation goes through `serde_json::Value`, whose objects are `BTreeMap`s (the
//! `preserve_order` feature of serde_json must stay off in the whole workspace), so equal
//! configs always produce equal bytes.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::digest::Digest;
use crate::spec::{Platform, Raw};

/// An image config, parsed as JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageConfig {
    doc: Map<String, Value>,
}

/// The config blob is not a JSON object, or a field we rely on has the wrong type.
#[derive(Debug, thiserror::Error)]
#[error("invalid image config: {0}")]
pub struct ConfigError(pub String);

impl ImageConfig {
    /// Parses a config blob.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, ConfigError> {
        match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(doc)) => Ok(Self { doc }),
            Ok(_) => Err(ConfigError("not a JSON object".into())),
            Err(e) => Err(ConfigError(crate::spec::JsonError::from(e).to_string())),
        }
    }

    /// An empty config for `platform` with no layers.
    pub fn new(platform: &Platform) -> Self {
        let mut doc = Map::new();
        doc.insert("architecture".into(), json!(platform.architecture));
        doc.insert("os".into(), json!(platform.os));
        if let Some(v) = &platform.variant {
            doc.insert("variant".into(), json!(v));
        }
        doc.insert("config".into(), json!({}));
        doc.insert("rootfs".into(), json!({"type": "layers", "diff_ids": []}));
        Self { doc }
    }

    /// The whole document.
    pub fn as_json(&self) -> &Map<String, Value> {
        &self.doc
    }

    /// Canonical bytes and digest of this config.
    pub fn to_raw(&self) -> Raw<Value> {
        Raw::new(Value::Object(self.doc.clone()))
    }

    fn str_field(&self, key: &str) -> Option<&str> {
        self.doc.get(key).and_then(Value::as_str)
    }

    /// `os`, empty when absent.
    pub fn os(&self) -> &str {
        self.str_field("os").unwrap_or_default()
    }

    /// `architecture`, empty when absent.
    pub fn architecture(&self) -> &str {
        self.str_field("architecture").unwrap_or_default()
    }

    /// `variant`, if set and non-empty.
    pub fn variant(&self) -> Option<&str> {
        self.str_field("variant").filter(|v| !v.is_empty())
    }

    /// `os.version`, if set and non-empty.
    pub fn os_version(&self) -> Option<&str> {
        self.str_field("os.version").filter(|v| !v.is_empty())
    }

    /// The image's platform.
    pub fn platform(&self) -> Platform {
        let mut p = Platform::new(self.os(), self.architecture(), self.variant());
        p.os_version = self.os_version().map(str::to_owned);
        p
    }

    fn inner(&self) -> Option<&Map<String, Value>> {
        self.doc.get("config").and_then(Value::as_object)
    }

    fn inner_mut(&mut self) -> &mut Map<String, Value> {
        let entry = self.doc.entry("config").or_insert_with(|| json!({}));
        if !entry.is_object() {
            *entry = json!({});
        }
        match entry {
            Value::Object(m) => m,
            _ => unreachable!("just replaced with an object"),
        }
    }

    /// `config.User`, empty when absent.
    pub fn user(&self) -> &str {
        self.inner().and_then(|c| c.get("User")).and_then(Value::as_str).unwrap_or_default()
    }

    /// `config.Env` entries, verbatim.
    pub fn env(&self) -> Vec<String> {
        self.inner()
            .and_then(|c| c.get("Env"))
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
            .unwrap_or_default()
    }

    /// Value of env var `key` (split on the first `=`; the last occurrence wins).
    pub fn env_var(&self, key: &str) -> Option<String> {
        self.env().iter().rev().find_map(|e| {
            let (k, v) = e.split_once('=')?;
            (k == key).then(|| v.to_owned())
        })
    }

    /// `config.WorkingDir`, empty when absent.
    pub fn working_dir(&self) -> &str {
        self.inner().and_then(|c| c.get("WorkingDir")).and_then(Value::as_str).unwrap_or_default()
    }

    /// Sets `config.WorkingDir`.
    pub fn set_working_dir(&mut self, dir: &str) {
        self.inner_mut().insert("WorkingDir".into(), json!(dir));
    }

    /// `config.Labels`.
    pub fn labels(&self) -> BTreeMap<String, String> {
        self.inner()
            .and_then(|c| c.get("Labels"))
            .and_then(Value::as_object)
            .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned()))).collect())
            .unwrap_or_default()
    }

    /// One label.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.inner()?.get("Labels")?.as_object()?.get(key)?.as_str()
    }

    /// Sets one label.
    pub fn set_label(&mut self, key: &str, value: &str) {
        let inner = self.inner_mut();
        let labels = inner.entry("Labels").or_insert_with(|| json!({}));
        if !labels.is_object() {
            *labels = json!({});
        }
        if let Value::Object(m) = labels {
            m.insert(key.to_owned(), json!(value));
        }
    }

    /// `rootfs.diff_ids`.
    pub fn diff_ids(&self) -> Result<Vec<Digest>, ConfigError> {
        let Some(ids) = self.doc.get("rootfs").and_then(|r| r.get("diff_ids")) else {
            return Ok(Vec::new());
        };
        let Some(ids) = ids.as_array() else {
            return Err(ConfigError("rootfs.diff_ids is not an array".into()));
        };
        ids.iter()
            .map(|v| {
                v.as_str()
                    .ok_or_else(|| ConfigError("rootfs.diff_ids holds a non-string".into()))?
                    .parse::<Digest>()
                    .map_err(|e| ConfigError(e.to_string()))
            })
            .collect()
    }

    /// Appends a layer's diffID to `rootfs.diff_ids`.
    pub fn push_diff_id(&mut self, diff_id: &Digest) {
        let rootfs = self.doc.entry("rootfs").or_insert_with(|| json!({"type": "layers", "diff_ids": []}));
        if !rootfs.is_object() {
            *rootfs = json!({"type": "layers", "diff_ids": []});
        }
        if let Value::Object(r) = rootfs {
            let ids = r.entry("diff_ids").or_insert_with(|| json!([]));
            if !ids.is_array() {
                *ids = json!([]);
            }
            if let Value::Array(a) = ids {
                a.push(json!(diff_id.as_str()));
            }
        }
    }

    /// Sets `created` (RFC 3339).
    pub fn set_created(&mut self, created: &str) {
        self.doc.insert("created".into(), json!(created));
    }

    /// Removes a top-level field (e.g. Docker's `container`).
    pub fn remove(&mut self, key: &str) {
        self.doc.remove(key);
    }

    /// Replaces `history` with one `{"created": created}` entry per layer, as pack does.
    pub fn reset_history(&mut self, layer_count: usize, created: &str) {
        let entries: Vec<Value> = (0..layer_count).map(|_| json!({"created": created})).collect();
        self.doc.insert("history".into(), Value::Array(entries));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_unknown_fields_and_sorts_keys() {
        let src = br#"{"os":"linux","architecture":"amd64","container_config":{"Hostname":"x"},"config":{"User":"1000:1000","Env":["PATH=/bin","CNB_USER_ID=1000","PATH=/usr/bin"],"Labels":{"b":"2","a":"1"}},"rootfs":{"type":"layers","diff_ids":[]}}"#;
        let mut c = ImageConfig::from_slice(src).unwrap();
        assert_eq!(c.user(), "1000:1000");
        assert_eq!(c.env_var("PATH").as_deref(), Some("/usr/bin"));
        assert_eq!(c.label("a"), Some("1"));
        c.set_label("c", "3");
        c.push_diff_id(&Digest::empty());
        let raw = c.to_raw();
        let s = String::from_utf8(raw.bytes.clone()).unwrap();
        assert!(s.contains(r#""container_config":{"Hostname":"x"}"#));
        assert!(s.contains(r#""Labels":{"a":"1","b":"2","c":"3"}"#), "{s}");
        assert_eq!(raw.digest, ImageConfig::from_slice(&raw.bytes).unwrap().to_raw().digest);
        assert_eq!(c.diff_ids().unwrap(), vec![Digest::empty()]);
    }

    #[test]
    fn env_var_without_equals_is_ignored() {
        let c = ImageConfig::from_slice(br#"{"config":{"Env":["NOVALUE","A=b=c"]}}"#).unwrap();
        assert_eq!(c.env_var("NOVALUE"), None);
        assert_eq!(c.env_var("A").as_deref(), Some("b=c"));
    }
}
