//! Parsers for the few text files layer mode reads: passwd(5), group(5) and os-release(5).
//!
//! They are lenient like glibc's `files` backend: blank lines, comments, NIS `+`/`-` lines and
//! lines with too few fields or a non-numeric id are skipped, and the first matching line wins.

/// One `/etc/passwd` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PasswdEntry {
    pub(crate) name: String,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) home: String,
}

/// One `/etc/group` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GroupEntry {
    pub(crate) name: String,
    pub(crate) gid: u32,
}

fn records(content: &[u8]) -> impl Iterator<Item = Vec<String>> + '_ {
    content.split(|b| *b == b'\n').filter_map(|line| {
        let line = String::from_utf8_lossy(line);
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.starts_with('#') || line.starts_with('+') || line.starts_with('-') {
            return None;
        }
        Some(line.split(':').map(str::to_owned).collect())
    })
}

/// Parses passwd(5): `name:password:uid:gid:gecos:home:shell`.
pub(crate) fn parse_passwd(content: &[u8]) -> Vec<PasswdEntry> {
    records(content)
        .filter_map(|f| {
            if f.len() < 7 {
                return None;
            }
            Some(PasswdEntry {
                name: f[0].clone(),
                uid: f[2].parse().ok()?,
                gid: f[3].parse().ok()?,
                home: f[5].clone(),
            })
        })
        .collect()
}

/// Parses group(5): `name:password:gid:members`.
pub(crate) fn parse_group(content: &[u8]) -> Vec<GroupEntry> {
    records(content)
        .filter_map(|f| {
            if f.len() < 3 {
                return None;
            }
            Some(GroupEntry { name: f[0].clone(), gid: f[2].parse().ok()? })
        })
        .collect()
}

/// The value of `key` in os-release(5) syntax: shell-style `KEY=value` assignments, values
/// optionally in single or double quotes (double quotes allow `\"`, `\\`, `` \` `` and `\$`
/// escapes). The last assignment wins.
pub(crate) fn os_release_value(content: &[u8], key: &str) -> Option<String> {
    let text = String::from_utf8_lossy(content);
    text.lines()
        .filter_map(|line| {
            let (k, v) = line.trim().split_once('=')?;
            (k.trim() == key).then(|| unquote(v.trim()))
        })
        .next_back()
}

fn unquote(value: &str) -> String {
    if value.len() >= 2 && value.starts_with('\'') && value.ends_with('\'') {
        return value[1..value.len() - 1].to_owned();
    }
    if value.len() >= 2 && value.starts_with('"') && value.ends_with('"') {
        let mut out = String::new();
        let mut chars = value[1..value.len() - 1].chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                match chars.next() {
                    Some(e @ ('"' | '\\' | '`' | '$')) => out.push(e),
                    Some(other) => {
                        out.push('\\');
                        out.push(other);
                    }
                    None => out.push('\\'),
                }
            } else {
                out.push(c);
            }
        }
        return out;
    }
    value.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_skips_junk_and_keeps_order() {
        let p = parse_passwd(
            b"# comment\nroot:x:0:0:root:/root:/bin/sh\n\n+nis\nbad:x:notanumber:0::/:/bin/sh\nshort:x:1\n\
              cnb:x:1000:1000::/home/cnb:/bin/bash\r\ncnb:x:2000:2000::/other:/bin/sh\n",
        );
        assert_eq!(p.len(), 3);
        assert_eq!(p[1], PasswdEntry { name: "cnb".into(), uid: 1000, gid: 1000, home: "/home/cnb".into() });
    }

    #[test]
    fn group_lines() {
        let g = parse_group(b"root:x:0:\nstaff:x:50:cnb,other\nbroken\n");
        assert_eq!(g, [GroupEntry { name: "root".into(), gid: 0 }, GroupEntry { name: "staff".into(), gid: 50 }]);
    }

    #[test]
    fn os_release_quotes() {
        let c = b"NAME=\"Ubuntu\"\nID=ubuntu\nVERSION_ID=\"22.04\"\nPRETTY='It\\'s'\nX=\"a\\\"b\"\n";
        assert_eq!(os_release_value(c, "ID").as_deref(), Some("ubuntu"));
        assert_eq!(os_release_value(c, "VERSION_ID").as_deref(), Some("22.04"));
        assert_eq!(os_release_value(c, "X").as_deref(), Some("a\"b"));
        assert_eq!(os_release_value(c, "MISSING"), None);
    }
}
