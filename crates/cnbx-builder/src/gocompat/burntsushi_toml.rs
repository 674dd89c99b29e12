//! A TOML encoder that writes exactly what pack's encoder (BurntSushi/toml v1.5) writes for the
//! files pack puts into a builder: `/cnb/order.toml`, `/cnb/system.toml`, `/cnb/stack.toml`
//! and `/cnb/run.toml`. Their bytes determine the layers' diffIDs, so "equivalent TOML" is
//! not enough.
//!
//! The rules (docs/pack-compatibility.md, *File contents*): in each table, plain keys come first (in
//! insertion order), then sub-tables and arrays of tables; keys and headers are indented two
//! spaces per level below the top; a newline is written before every `[[array]]` header and
//! before top-level `[table]` headers, except at the very start of the document; strings are
//! double-quoted with BurntSushi's escapes; arrays are written inline as `["a", "b"]`.

use std::fmt::Write as _;

/// A TOML value in a document written by [`encode`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    /// A string.
    Str(String),
    /// A boolean.
    Bool(bool),
    /// An inline array of strings (`[]` when empty).
    StrArray(Vec<String>),
    /// A sub-table (`[a.b]`).
    Table(Table),
    /// An array of tables (`[[a.b]]`).
    Tables(Vec<Table>),
}

/// An ordered TOML table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Table {
    entries: Vec<(String, Value)>,
}

impl Table {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Appends `key = value`.
    pub(crate) fn insert(&mut self, key: &str, value: Value) -> &mut Self {
        self.entries.push((key.to_owned(), value));
        self
    }

    /// Appends a string value.
    pub(crate) fn str(&mut self, key: &str, value: &str) -> &mut Self {
        self.insert(key, Value::Str(value.to_owned()))
    }

    /// Appends a string value when it is not empty (Go's `omitempty`).
    pub(crate) fn str_nonempty(&mut self, key: &str, value: &str) -> &mut Self {
        if !value.is_empty() {
            self.str(key, value);
        }
        self
    }
}

/// Encodes a document.
pub(crate) fn encode(doc: &Table) -> String {
    let mut enc = Encoder { out: String::new() };
    enc.table_body(&[], doc);
    enc.out
}

struct Encoder {
    out: String,
}

impl Encoder {
    /// BurntSushi writes a newline only once something has been written.
    fn newline(&mut self) {
        if !self.out.is_empty() {
            self.out.push('\n');
        }
    }

    fn indent(depth: usize) -> String {
        "  ".repeat(depth)
    }

    fn table_body(&mut self, path: &[&str], table: &Table) {
        // Plain values first, then sub-tables and arrays of tables, each group in order.
        for (key, value) in &table.entries {
            let rendered = match value {
                Value::Str(s) => quote(s),
                Value::Bool(b) => b.to_string(),
                Value::StrArray(items) => {
                    format!("[{}]", items.iter().map(|s| quote(s)).collect::<Vec<_>>().join(", "))
                }
                Value::Table(_) | Value::Tables(_) => continue,
            };
            let _ = writeln!(self.out, "{}{} = {}", Self::indent(path.len()), bare_or_quoted(key), rendered);
        }
        for (key, value) in &table.entries {
            let mut child: Vec<&str> = path.to_vec();
            child.push(key);
            let header = child.iter().map(|k| bare_or_quoted(k)).collect::<Vec<_>>().join(".");
            match value {
                Value::Table(sub) => {
                    if child.len() == 1 {
                        self.newline();
                    }
                    let _ = write!(self.out, "{}[{}]", Self::indent(child.len() - 1), header);
                    self.newline();
                    self.table_body(&child, sub);
                }
                Value::Tables(items) => {
                    for item in items {
                        self.newline();
                        let _ = write!(self.out, "{}[[{}]]", Self::indent(child.len() - 1), header);
                        self.newline();
                        self.table_body(&child, item);
                    }
                }
                Value::Str(_) | Value::Bool(_) | Value::StrArray(_) => {}
            }
        }
    }
}

fn bare_or_quoted(key: &str) -> String {
    if !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        key.to_owned()
    } else {
        quote(key)
    }
}

/// BurntSushi's basic-string quoting.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(id: &str, version: &str, optional: bool) -> Table {
        let mut t = Table::new();
        t.str("id", id).str("version", version);
        if optional {
            t.insert("optional", Value::Bool(true));
        }
        t
    }

    #[test]
    fn order_toml_matches_pack() {
        let mut entry = Table::new();
        entry.insert("group", Value::Tables(vec![group("read/env", "read-env-version", true)]));
        let mut doc = Table::new();
        doc.insert("order", Value::Tables(vec![entry]));
        assert_eq!(
            encode(&doc),
            "[[order]]\n\n  [[order.group]]\n    id = \"read/env\"\n    version = \"read-env-version\"\n    optional = true\n"
        );
    }

    #[test]
    fn several_orders_and_extensions() {
        let mut a = Table::new();
        a.insert("group", Value::Tables(vec![group("a", "1", false), group("b", "2", true)]));
        let mut b = Table::new();
        b.insert("group", Value::Tables(vec![group("c", "3", false)]));
        let mut e = Table::new();
        e.insert("group", Value::Tables(vec![group("ext/one", "1", false)]));
        let mut doc = Table::new();
        doc.insert("order", Value::Tables(vec![a, b])).insert("order-extensions", Value::Tables(vec![e]));
        assert_eq!(
            encode(&doc),
            "[[order]]\n\n  [[order.group]]\n    id = \"a\"\n    version = \"1\"\n\n  [[order.group]]\n    id = \"b\"\n    version = \"2\"\n    optional = true\n\n[[order]]\n\n  [[order.group]]\n    id = \"c\"\n    version = \"3\"\n\n[[order-extensions]]\n\n  [[order-extensions.group]]\n    id = \"ext/one\"\n    version = \"1\"\n"
        );
    }

    #[test]
    fn system_toml_matches_pack() {
        let mut pre = Table::new();
        pre.insert("buildpacks", Value::Tables(vec![group("system/pre", "system-pre-version", false)]));
        let mut post = Table::new();
        post.insert("buildpacks", Value::Tables(vec![group("system/post", "system-post-version", true)]));
        let mut system = Table::new();
        system.insert("pre", Value::Table(pre)).insert("post", Value::Table(post));
        let mut doc = Table::new();
        doc.insert("system", Value::Table(system));
        assert_eq!(
            encode(&doc),
            "[system]\n  [system.pre]\n\n    [[system.pre.buildpacks]]\n      id = \"system/pre\"\n      version = \"system-pre-version\"\n  [system.post]\n\n    [[system.post.buildpacks]]\n      id = \"system/post\"\n      version = \"system-post-version\"\n      optional = true\n"
        );
    }

    #[test]
    fn stack_and_run_toml_match_pack() {
        let mut run_image = Table::new();
        run_image.str("image", "pack-test/run").insert("mirrors", Value::StrArray(vec!["pack-test/run-mirror".into()]));
        let mut stack = Table::new();
        stack.insert("run-image", Value::Table(run_image.clone()));
        assert_eq!(
            encode(&stack),
            "[run-image]\n  image = \"pack-test/run\"\n  mirrors = [\"pack-test/run-mirror\"]\n"
        );

        let mut other = Table::new();
        other.str("image", "other/run");
        let mut run = Table::new();
        run.insert("images", Value::Tables(vec![run_image, other]));
        assert_eq!(
            encode(&run),
            "[[images]]\n  image = \"pack-test/run\"\n  mirrors = [\"pack-test/run-mirror\"]\n\n[[images]]\n  image = \"other/run\"\n"
        );
    }

    #[test]
    fn quoting_follows_burntsushi() {
        assert_eq!(quote("a\"b\\c\td\u{1}\u{1b}é"), "\"a\\\"b\\\\c\\td\\u0001\\u001bé\"");
        assert_eq!(bare_or_quoted("exec-env"), "exec-env");
        assert_eq!(bare_or_quoted("a.b"), "\"a.b\"");
        let mut t = Table::new();
        t.insert("mirrors", Value::StrArray(vec![]));
        assert_eq!(encode(&t), "mirrors = []\n");
    }
}
