//! What `github.com/pelletier/go-toml` v1.9.5 writes, for `builder inspect --output toml`
//! (`toml.NewEncoder(w).Order(toml.OrderPreserve).PromoteAnonymous(false)`).
//!
//! go-toml v1's quirks, reproduced:
//!
//! * fields keep struct order (positions), and a plain value that follows a sub-table in
//!   struct order is written after it — e.g. a module's `clear-env` after its
//!   `[[….licenses]]` tables — exactly where go-toml writes it;
//! * every key and header is indented by two spaces per table level; a blank line precedes
//!   every `[table]` and `[[array of tables]]` header;
//! * empty arrays of tables are written as nothing; empty string arrays as `[]`;
//! * strings are double-quoted with go-toml's escapes: `\b \t \n \f \r \" \\` and `\uXXXX`
//!   (upper-case hex) for the code points whose low 16 bits are below `0x1f` — go-toml
//!   truncates to 16 bits before comparing, so e.g. U+1000A is written `\u000A`.

use super::Node;

/// `node` (a struct) as go-toml's encoder writes it.
pub fn to_toml(node: &Node) -> String {
    let mut out = String::new();
    if let Node::Map(entries) = node {
        write_table(&mut out, entries, "", "");
    }
    out
}

fn write_table(out: &mut String, entries: &[(&'static str, Node)], indent: &str, keyspace: &str) {
    let child_indent = format!("{indent}  ");
    for (key, value) in entries {
        let combined = if keyspace.is_empty() { quote_key(key) } else { format!("{keyspace}.{}", quote_key(key)) };
        match value {
            Node::Map(table) => {
                out.push_str(&format!("\n{indent}[{combined}]\n"));
                write_table(out, table, &child_indent, &combined);
            }
            Node::List { items, tables: true, .. } => {
                for item in items {
                    out.push_str(&format!("\n{indent}[[{combined}]]\n"));
                    if let Node::Map(table) = item {
                        write_table(out, table, &child_indent, &combined);
                    }
                }
            }
            simple => out.push_str(&format!("{indent}{} = {}\n", quote_key(key), value_repr(simple))),
        }
    }
}

fn value_repr(node: &Node) -> String {
    match node {
        Node::Null => String::new(),
        Node::Bool(b) => b.to_string(),
        Node::Str(s) => format!("\"{}\"", encode_string(s)),
        Node::List { items, .. } => format!("[{}]", items.iter().map(value_repr).collect::<Vec<_>>().join(", ")),
        Node::Map(_) => String::new(),
    }
}

fn quote_key(key: &str) -> String {
    if key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        key.to_owned()
    } else {
        format!("\"{}\"", encode_string(key))
    }
}

/// go-toml v1's `encodeTomlString`.
fn encode_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => {
                // go-toml: `intRr := uint16(rr); if intRr < 0x001F`, a deliberate truncation.
                let low = (c as u32) & 0xffff;
                if low < 0x1f {
                    out.push_str(&format!("\\u{low:04X}"));
                } else {
                    out.push(c);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped_like_go_toml() {
        assert_eq!(encode_string("a\"b\\c\td\n"), "a\\\"b\\\\c\\td\\n");
        assert_eq!(encode_string("\u{1}\u{1e}\u{1f}\u{7f}é"), "\\u0001\\u001E\u{1f}\u{7f}é");
        assert_eq!(encode_string("\u{1000a}"), "\\u000A");
        assert_eq!(quote_key("exec-env"), "exec-env");
        assert_eq!(quote_key("a.b"), "\"a.b\"");
    }

    #[test]
    fn layout_follows_go_toml() {
        let license = Node::Map(vec![("type", Node::Str("MIT".into())), ("uri", Node::Str(String::new()))]);
        let doc = Node::Map(vec![
            ("name", Node::Str("x".into())),
            (
                "info",
                Node::Map(vec![
                    ("created_by", Node::Map(vec![("Name", Node::Str("n".into()))])),
                    ("empty_tables", Node::List { items: vec![], nil: true, tables: true }),
                    ("empty_strings", Node::List { items: vec![], nil: true, tables: false }),
                    (
                        "modules",
                        Node::List {
                            items: vec![Node::Map(vec![
                                ("id", Node::Str("a".into())),
                                (
                                    "keywords",
                                    Node::List { items: vec![Node::Str("k".into())], nil: false, tables: false },
                                ),
                                ("licenses", Node::List { items: vec![license], nil: false, tables: true }),
                                ("clear-env", Node::Bool(true)),
                            ])],
                            nil: false,
                            tables: true,
                        },
                    ),
                ]),
            ),
        ]);
        let expected = "name = \"x\"

[info]

  [info.created_by]
    Name = \"n\"
  empty_strings = []

  [[info.modules]]
    id = \"a\"
    keywords = [\"k\"]

    [[info.modules.licenses]]
      type = \"MIT\"
      uri = \"\"
    clear-env = true
";
        assert_eq!(to_toml(&doc), expected);
    }
}
