//! Test helpers: layer tars built with the `tar` crate, and finding renderers.
#![allow(dead_code, unreachable_pub)]

use cnbx_validate::{Finding, RootFs};

/// A layer tar under construction. Names are written verbatim into the header (so leading `/`
/// and `./` can be tested); every header is USTAR.
pub struct Layer {
    builder: tar::Builder<Vec<u8>>,
}

impl Default for Layer {
    fn default() -> Self {
        Self::new()
    }
}

impl Layer {
    pub fn new() -> Self {
        Self { builder: tar::Builder::new(Vec::new()) }
    }

    fn append(
        mut self,
        name: &str,
        kind: tar::EntryType,
        mode: u32,
        owner: (u64, u64),
        link: &str,
        data: &[u8],
    ) -> Self {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(owner.0);
        h.set_gid(owner.1);
        h.set_size(data.len() as u64);
        h.set_mtime(0);
        let bytes = h.as_mut_bytes();
        assert!(name.len() <= 100 && link.len() <= 100, "test names fit the ustar fields");
        bytes[..100].fill(0);
        bytes[..name.len()].copy_from_slice(name.as_bytes());
        bytes[157..257].fill(0);
        bytes[157..157 + link.len()].copy_from_slice(link.as_bytes());
        h.set_cksum();
        self.builder.append(&h, data).unwrap();
        self
    }

    /// A directory owned by `uid:gid` with `mode`.
    pub fn dir(self, name: &str, uid: u64, gid: u64, mode: u32) -> Self {
        self.append(name, tar::EntryType::Directory, mode, (uid, gid), "", b"")
    }

    /// A root-owned 0644 regular file.
    pub fn file(self, name: &str, content: &str) -> Self {
        self.append(name, tar::EntryType::Regular, 0o644, (0, 0), "", content.as_bytes())
    }

    /// A regular file with a given mode.
    pub fn file_mode(self, name: &str, content: &[u8], mode: u32) -> Self {
        self.append(name, tar::EntryType::Regular, mode, (0, 0), "", content)
    }

    /// A symlink.
    pub fn symlink(self, name: &str, target: &str) -> Self {
        self.append(name, tar::EntryType::Symlink, 0o777, (0, 0), target, b"")
    }

    /// A hard link to `target` (an archive path).
    pub fn hardlink(self, name: &str, target: &str) -> Self {
        self.append(name, tar::EntryType::Link, 0o644, (0, 0), target, b"")
    }

    /// A whiteout deleting `dir/name` (given as `dir`, `name`).
    pub fn whiteout(self, dir: &str, name: &str) -> Self {
        let path = if dir.is_empty() { format!(".wh.{name}") } else { format!("{dir}/.wh.{name}") };
        self.append(&path, tar::EntryType::Regular, 0o644, (0, 0), "", b"")
    }

    /// An opaque-directory marker for `dir`.
    pub fn opaque(self, dir: &str) -> Self {
        self.append(&format!("{dir}/.wh..wh..opq"), tar::EntryType::Regular, 0o644, (0, 0), "", b"")
    }

    /// A PAX extended header (`x`) applying `key=value` records to the next entry.
    pub fn pax(self, records: &[(&str, &str)]) -> Self {
        let mut data = String::new();
        for (k, v) in records {
            let body = format!(" {k}={v}\n");
            // The length prefix counts itself.
            let mut len = body.len() + 1;
            while format!("{len}{body}").len() != len {
                len += 1;
            }
            data.push_str(&format!("{len}{body}"));
        }
        self.append("PaxHeaders/entry", tar::EntryType::XHeader, 0o644, (0, 0), "", data.as_bytes())
    }

    pub fn build(self) -> Vec<u8> {
        self.builder.into_inner().unwrap()
    }
}

pub const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\n\
                          cnb:x:1000:1000:CNB build user:/home/cnb:/bin/bash\n";
pub const GROUP: &str = "root:x:0:\ncnb:x:1000:\nstaff:x:50:cnb\n";
pub const OS_RELEASE: &str = "NAME=\"Ubuntu\"\nID=ubuntu\nVERSION_ID=\"22.04\"\nPRETTY_NAME=\"Ubuntu 22.04.4 LTS\"\n";

/// A Ubuntu-like base layer: passwd with `cnb` (1000:1000, /home/cnb), group,
/// `/etc/os-release → ../usr/lib/os-release`, `/home/cnb` owned 1000:1000 0755.
pub fn base_layer() -> Vec<u8> {
    Layer::new()
        .dir("./", 0, 0, 0o755)
        .dir("./etc/", 0, 0, 0o755)
        .file("./etc/group", GROUP)
        .symlink("./etc/os-release", "../usr/lib/os-release")
        .file("./etc/passwd", PASSWD)
        .dir("./home/", 0, 0, 0o755)
        .dir("./home/cnb/", 1000, 1000, 0o755)
        .dir("./root/", 0, 0, 0o700)
        .dir("./usr/", 0, 0, 0o755)
        .dir("./usr/lib/", 0, 0, 0o755)
        .file("./usr/lib/os-release", OS_RELEASE)
        .build()
}

/// A root filesystem from layers.
pub fn rootfs(layers: &[Vec<u8>]) -> RootFs {
    RootFs::from_layers(layers.iter().map(|l| l.as_slice())).unwrap()
}

/// `level: display` of every finding.
pub fn lines(findings: &[Finding]) -> Vec<String> {
    findings.iter().map(|f| format!("{}: {f}", f.level)).collect()
}

/// `level: display` of the findings of one rule.
pub fn rule(findings: &[Finding], rule: &str) -> Vec<String> {
    findings.iter().filter(|f| f.rule == rule).map(|f| format!("{}: {f}", f.level)).collect()
}

/// The fixes of the findings of one rule.
pub fn fixes(findings: &[Finding], rule: &str) -> Vec<String> {
    findings.iter().filter(|f| f.rule == rule).map(|f| f.fix.clone()).collect()
}
