//! Tar layers with odd headers, for differential tests of cnbx's tar reader against Go's
//! `archive/tar` (through umoci).
//!
//! [`odd_layer`] writes a few intended entries (files, directories, links) with encodings
//! drawn at random from everything on which tar readers are known to disagree: names in PAX
//! records, GNU long names, prefix fields or the name field with decoys in the other places;
//! duplicated PAX records, two extension headers, GNU long names with a NUL inside, empty
//! records, `GNU.sparse.*` records, PAX global headers; sizes in octal with spaces, without a
//! NUL, in base-256 or in PAX records that disagree with the header; links and directories
//! whose size field is not 0, with a hidden header where their content would be; V7, GNU,
//! STAR and odd-version ustar magic; signed checksums; every way an archive can end, and
//! bytes after its end. A decoy or hidden entry has a name from `decoys` (say `etc/passwd`)
//! and content starting with [`EVIL`].
//!
//! [`Model`] applies a list of entries (what a reader reported) as umoci would unpack them,
//! and [`read_tree`] reads back what umoci unpacked, so that a test can compare the two.
//!
//! Everything is written by hand here, without cnbx's code. Randomness comes from [`Rng`], a
//! seeded generator, so that a failing case is reproduced from its seed.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Content of every decoy and hidden entry starts with this.
pub const EVIL: &[u8] = b"EVIL";

/// A small seeded generator (xorshift64*).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number below `n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// True `percent` times in a hundred.
    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    /// One of `items`, each weighted by its first element.
    pub fn weighted<T: Clone>(&mut self, items: &[(usize, T)]) -> T {
        let total: usize = items.iter().map(|(w, _)| w).sum();
        let mut at = self.below(total);
        for (w, item) in items {
            if at < *w {
                return item.clone();
            }
            at -= w;
        }
        items[items.len() - 1].1.clone()
    }
}

/// The magic of a header block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Magic {
    /// `ustar\0` `00`.
    Ustar,
    /// `ustar\0` with another version.
    UstarVersion([u8; 2]),
    /// `ustar ` ` \0`.
    Gnu,
    /// `ustar ` ` \0` with a name prefix where GNU keeps its times (what Go's writer wrote
    /// before Go 1.8; Go's reader still takes it for a prefix when the times do not parse).
    GnuPrefix,
    /// No magic.
    V7,
    /// `ustar\0` `00` with the STAR trailer `tar\0` at byte 508.
    Star,
}

/// How numbers are written in a header block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Numbers {
    /// Zero-padded octal, NUL-terminated.
    Octal,
    /// Octal with leading spaces, then a space and a NUL.
    Spaced,
    /// Octal filling the whole field, no NUL.
    NoNul,
    /// Base-256 (the high bit set, big-endian).
    Base256,
}

/// One header block, every field as given.
#[derive(Debug, Clone)]
pub struct Block {
    /// The name field (cut to 100 bytes).
    pub name: Vec<u8>,
    /// Bytes after a NUL in the name field, if any.
    pub name_garbage: Vec<u8>,
    /// The prefix field (ustar and STAR layouts only).
    pub prefix: Vec<u8>,
    /// The typeflag.
    pub typeflag: u8,
    /// Mode.
    pub mode: u64,
    /// The size field.
    pub size: u64,
    /// The link name field (cut to 100 bytes).
    pub link: Vec<u8>,
    /// The magic.
    pub magic: Magic,
    /// How mode, uid, gid and mtime are written.
    pub numbers: Numbers,
    /// How the size is written.
    pub size_numbers: Numbers,
    /// A checksum of the signed bytes (Sun tar's) instead of the unsigned ones.
    pub signed_checksum: bool,
}

impl Block {
    /// A ustar block with plain octal numbers.
    pub fn new(name: &[u8], typeflag: u8, size: u64) -> Self {
        Self {
            name: name.to_vec(),
            name_garbage: Vec::new(),
            prefix: Vec::new(),
            typeflag,
            mode: if typeflag == b'5' { 0o755 } else { 0o644 },
            size,
            link: Vec::new(),
            magic: Magic::Ustar,
            numbers: Numbers::Octal,
            size_numbers: Numbers::Octal,
            signed_checksum: false,
        }
    }

    /// The 512 bytes.
    pub fn encode(&self) -> [u8; 512] {
        let mut h = [0u8; 512];
        let put = |h: &mut [u8; 512], at: usize, width: usize, bytes: &[u8]| {
            let n = bytes.len().min(width);
            h[at..at + n].copy_from_slice(&bytes[..n]);
        };
        put(&mut h, 0, 100, &self.name);
        if !self.name_garbage.is_empty() && self.name.len() < 99 {
            put(&mut h, self.name.len() + 1, 99 - self.name.len(), &self.name_garbage);
        }
        number(&mut h[100..108], self.mode, self.numbers);
        number(&mut h[108..116], 0, self.numbers);
        number(&mut h[116..124], 0, self.numbers);
        number(&mut h[124..136], self.size, self.size_numbers);
        number(&mut h[136..148], 315_532_801, self.numbers);
        h[156] = self.typeflag;
        put(&mut h, 157, 100, &self.link);
        match &self.magic {
            Magic::Ustar | Magic::Star => h[257..265].copy_from_slice(b"ustar\x0000"),
            Magic::UstarVersion(v) => {
                h[257..263].copy_from_slice(b"ustar\0");
                h[263..265].copy_from_slice(v);
            }
            Magic::Gnu | Magic::GnuPrefix => h[257..265].copy_from_slice(b"ustar  \0"),
            Magic::V7 => {}
        }
        if self.magic != Magic::V7 {
            number(&mut h[329..337], 0, self.numbers);
            number(&mut h[337..345], 0, self.numbers);
        }
        match self.magic {
            Magic::Ustar | Magic::UstarVersion(_) | Magic::GnuPrefix => put(&mut h, 345, 155, &self.prefix),
            Magic::Star => {
                put(&mut h, 345, 131, &self.prefix);
                number(&mut h[476..488], 0, Numbers::Octal);
                number(&mut h[488..500], 0, Numbers::Octal);
                h[508..512].copy_from_slice(b"tar\0");
            }
            Magic::Gnu | Magic::V7 => {}
        }
        h[148..156].fill(b' ');
        let unsigned: i64 = h.iter().map(|&b| i64::from(b)).sum();
        let signed: i64 = h.iter().map(|&b| i64::from(b as i8)).sum();
        // A negative signed sum cannot be written in octal.
        let sum = if self.signed_checksum && signed >= 0 { signed } else { unsigned };
        let s = format!("{sum:06o}\0 ");
        h[148..156].copy_from_slice(s.as_bytes());
        h
    }
}

fn number(field: &mut [u8], value: u64, how: Numbers) {
    let w = field.len();
    match how {
        Numbers::Octal => {
            let s = format!("{value:0width$o}", width = w - 1);
            field[..w - 1].copy_from_slice(&s.as_bytes()[s.len() - (w - 1)..]);
            field[w - 1] = 0;
        }
        Numbers::Spaced => {
            let s = format!("{value:>width$o} ", width = w - 2);
            field[..w - 1].copy_from_slice(&s.as_bytes()[s.len() - (w - 1)..]);
            field[w - 1] = 0;
        }
        Numbers::NoNul => {
            let s = format!("{value:0w$o}");
            field.copy_from_slice(&s.as_bytes()[s.len() - w..]);
        }
        Numbers::Base256 => {
            let mut v = value;
            for b in field.iter_mut().rev() {
                *b = (v & 0xff) as u8;
                v >>= 8;
            }
            field[0] = 0x80;
        }
    }
}

/// `data`, then zeros up to a multiple of 512 bytes.
pub fn padded(data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    out.resize(data.len().div_ceil(512) * 512, 0);
    out
}

/// One PAX record, `"<len> key=value\n"`.
pub fn pax_record(key: &[u8], value: &[u8]) -> Vec<u8> {
    let body_len = key.len() + value.len() + 3;
    let mut len = body_len + 1;
    while len.to_string().len() + body_len != len {
        len += 1;
    }
    let mut r = len.to_string().into_bytes();
    r.push(b' ');
    r.extend_from_slice(key);
    r.push(b'=');
    r.extend_from_slice(value);
    r.push(b'\n');
    r
}

/// An extension header of `typeflag` (`x`, `g`, `L`, `K`) holding `data`, padded.
pub fn extension(typeflag: u8, name: &[u8], data: &[u8]) -> Vec<u8> {
    let mut out = Block::new(name, typeflag, data.len() as u64).encode().to_vec();
    out.extend_from_slice(&padded(data));
    out
}

/// A PAX header (`x`) holding `records` in this order (duplicates kept).
pub fn pax_header(records: &[(&[u8], &[u8])]) -> Vec<u8> {
    let data: Vec<u8> = records.iter().flat_map(|(k, v)| pax_record(k, v)).collect();
    extension(b'x', b"PaxHeaders.0/entry", &data)
}

/// An entry as a reader may report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// A regular file and its content.
    File(Vec<u8>),
    /// A directory.
    Dir,
    /// A symbolic link and its target.
    Symlink(String),
    /// A hard link to an earlier entry.
    Hardlink(String),
}

/// A tree as umoci unpacks a list of entries: names cleaned, missing parents made.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Model {
    /// Path (relative, clean) to what is there; hard links are resolved to files with the
    /// target's content, and remembered in `links`.
    pub nodes: BTreeMap<String, Seen>,
    /// Hard links: path to the path of the file they share.
    pub links: BTreeMap<String, String>,
}

/// `name` cleaned as Go's `path.Clean`, relative (no leading `/`); `None` for the root or a
/// name that climbs out.
pub fn clean(name: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for c in name.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

impl Model {
    /// Applies one entry. `Err` when the model cannot say what umoci would do (a parent that
    /// is not a directory, a hard link to nothing, a name that climbs out).
    pub fn apply(&mut self, name: &str, seen: &Seen) -> Result<(), String> {
        if name.split('/').any(|c| c == "..") {
            return Err(format!("'{name}' climbs out"));
        }
        let Some(path) = clean(name) else { return Ok(()) };
        let mut parent = String::new();
        for c in path.split('/').collect::<Vec<_>>().split_last().map(|(_, p)| p.to_vec()).unwrap_or_default() {
            if !parent.is_empty() {
                parent.push('/');
            }
            parent.push_str(c);
            match self.nodes.get(&parent) {
                None => {
                    self.nodes.insert(parent.clone(), Seen::Dir);
                }
                Some(Seen::Dir) => {}
                Some(other) => return Err(format!("'{path}' has the parent '{parent}', which is {other:?}")),
            }
        }
        if let Some(existing) = self.nodes.get(&path)
            && !(existing == &Seen::Dir && seen == &Seen::Dir)
        {
            let under = format!("{path}/");
            self.nodes.retain(|p, _| p != &path && !p.starts_with(&under));
            self.links.retain(|p, t| p != &path && t != &path && !p.starts_with(&under));
        }
        let node = match seen {
            Seen::Hardlink(target) => {
                let t = clean(target).ok_or_else(|| format!("hard link '{path}' to '{target}'"))?;
                match self.nodes.get(&t) {
                    Some(Seen::File(c)) => {
                        let shared = self.links.get(&t).cloned().unwrap_or(t);
                        self.links.insert(path.clone(), shared);
                        Seen::File(c.clone())
                    }
                    other => return Err(format!("hard link '{path}' to '{target}', which is {other:?}")),
                }
            }
            other => other.clone(),
        };
        self.nodes.insert(path, node);
        Ok(())
    }
}

/// What is under `root` (as [`Model::nodes`]), with the hard links found by inode.
pub fn read_tree(root: &Path) -> std::io::Result<Model> {
    let mut model = Model::default();
    let mut inodes: BTreeMap<(u64, u64), String> = BTreeMap::new();
    fn walk(
        root: &Path,
        dir: &Path,
        model: &mut Model,
        inodes: &mut BTreeMap<(u64, u64), String>,
    ) -> std::io::Result<()> {
        let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
        entries.sort_by_key(std::fs::DirEntry::file_name);
        for e in entries {
            let path = e.path();
            let rel = path.strip_prefix(root).unwrap_or(&path).to_string_lossy().into_owned();
            let meta = std::fs::symlink_metadata(&path)?;
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&path)?.to_string_lossy().into_owned();
                model.nodes.insert(rel, Seen::Symlink(target));
            } else if meta.is_dir() {
                model.nodes.insert(rel, Seen::Dir);
                walk(root, &path, model, inodes)?;
            } else {
                if meta.nlink() > 1 {
                    match inodes.get(&(meta.dev(), meta.ino())) {
                        Some(first) => {
                            model.links.insert(rel.clone(), first.clone());
                        }
                        None => {
                            inodes.insert((meta.dev(), meta.ino()), rel.clone());
                        }
                    }
                }
                model.nodes.insert(rel, Seen::File(std::fs::read(&path)?));
            }
        }
        Ok(())
    }
    walk(root, root, &mut model, &mut inodes)?;
    Ok(model)
}

/// Compares what a reader reported (`expected`, through [`Model::apply`]) with what umoci
/// unpacked (`actual`, from [`read_tree`]). Hard links are compared by the group of paths
/// that share a file, whichever path came first.
pub fn differences(expected: &Model, actual: &Model) -> Vec<String> {
    let mut out = Vec::new();
    for (p, e) in &expected.nodes {
        match actual.nodes.get(p) {
            None => out.push(format!("missing '{p}' ({})", short(e))),
            Some(a) if a != e => out.push(format!("'{p}': expected {}, unpacked {}", short(e), short(a))),
            Some(_) => {}
        }
    }
    for (p, a) in &actual.nodes {
        if !expected.nodes.contains_key(p) {
            out.push(format!("unexpected '{p}' ({})", short(a)));
        }
    }
    let groups = |m: &Model| {
        let mut g: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (p, t) in &m.links {
            g.entry(t.clone()).or_default().push(p.clone());
        }
        let mut sets: Vec<Vec<String>> = g
            .into_iter()
            .map(|(t, mut ps)| {
                ps.push(t);
                ps.sort();
                ps
            })
            .collect();
        sets.sort();
        sets
    };
    if groups(expected) != groups(actual) {
        out.push(format!("hard links: expected {:?}, unpacked {:?}", groups(expected), groups(actual)));
    }
    out
}

fn short(s: &Seen) -> String {
    match s {
        Seen::File(c) => {
            format!("file of {} bytes starting {:?}", c.len(), String::from_utf8_lossy(&c[..c.len().min(12)]))
        }
        other => format!("{other:?}"),
    }
}

/// A generated layer: its bytes and how its entries were written (for failure messages).
#[derive(Debug, Clone)]
pub struct OddLayer {
    /// The uncompressed tar.
    pub bytes: Vec<u8>,
    /// One line per entry: its intended name and the encodings drawn.
    pub notes: Vec<String>,
}

/// The kinds of intended entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    File,
    Dir,
    Symlink,
    Hardlink,
}

/// Writes a header (and its extension headers) for an entry named `name` of `typeflag`,
/// with the name and link encoded as drawn; returns the bytes and notes.
struct Writer<'a> {
    rng: &'a mut Rng,
    decoys: &'a [&'a str],
    out: Vec<u8>,
    notes: Vec<String>,
    evil: usize,
    /// How often (percent) an encoding readers disagree on is drawn.
    hostile: usize,
}

impl Writer<'_> {
    fn decoy(&mut self) -> String {
        let d = self.decoys[self.rng.below(self.decoys.len())];
        d.to_owned()
    }

    fn evil_content(&mut self) -> Vec<u8> {
        self.evil += 1;
        let mut c = EVIL.to_vec();
        c.extend_from_slice(format!("{}", self.evil).as_bytes());
        c
    }

    /// A hidden regular file named after a decoy, as header and content bytes.
    fn hidden_entry(&mut self) -> Vec<u8> {
        let name = self.decoy();
        let content = self.evil_content();
        let mut out = Block::new(name.as_bytes(), b'0', content.len() as u64).encode().to_vec();
        out.extend_from_slice(&padded(&content));
        out
    }

    fn format(&mut self) -> (Magic, Numbers, Numbers, bool) {
        let magic = self.rng.weighted(&[
            (8, Magic::Ustar),
            (4, Magic::Gnu),
            (1, Magic::GnuPrefix),
            (2, Magic::V7),
            (1, Magic::UstarVersion(*b"\0\0")),
            (1, Magic::UstarVersion(*b"  ")),
            (1, Magic::Star),
        ]);
        let nums = [(8, Numbers::Octal), (1, Numbers::Spaced), (1, Numbers::NoNul), (2, Numbers::Base256)];
        let numbers = self.rng.weighted(&nums);
        let size_numbers = self.rng.weighted(&nums);
        (magic, numbers, size_numbers, self.rng.chance(10))
    }

    /// Writes one entry.
    fn entry(&mut self, name: &str, kind: Kind, link: &str, content: &[u8]) {
        let mut note = format!("{name} {kind:?}");
        let (magic, numbers, size_numbers, signed) = self.format();
        let _ = write!(note, " {magic:?}/{numbers:?}/size {size_numbers:?}{}", if signed { "/signed" } else { "" });
        let mut typeflag = match kind {
            Kind::File => b'0',
            Kind::Dir => b'5',
            Kind::Symlink => b'2',
            Kind::Hardlink => b'1',
        };
        let mut name = name.to_owned();
        if kind == Kind::File && self.rng.chance(15) {
            typeflag = 0;
            note.push_str(" typeflag NUL");
        }
        if kind == Kind::Dir && self.rng.chance(25) {
            name.push('/');
            if self.rng.chance(50) {
                typeflag = 0;
                note.push_str(" typeflag NUL with a trailing slash");
            } else {
                note.push_str(" trailing slash");
            }
        }
        if self.rng.chance(10) {
            name = format!("./{name}");
        } else if self.rng.chance(10) {
            name = format!("/{name}");
        }
        let mut records: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let mut pre: Vec<u8> = Vec::new();
        let mut block = Block::new(b"", typeflag, 0);
        block.mode = if kind == Kind::Dir { 0o755 } else { 0o644 };
        block.magic = magic.clone();
        block.numbers = numbers;
        block.size_numbers = size_numbers;
        block.signed_checksum = signed;

        // The name.
        let uses_prefix = matches!(magic, Magic::Ustar | Magic::UstarVersion(_) | Magic::Star | Magic::GnuPrefix);
        let prefix_max = if magic == Magic::Star { 131 } else { 155 };
        let split = name[..name.len().min(prefix_max + 1)].rfind('/').filter(|&i| {
            i > 0 && name.len() - i - 1 <= 100 && name.len() - i - 1 > 0 && uses_prefix && name.len() > 100
        });
        let how = if self.rng.chance(self.hostile) {
            self.rng.weighted(&[
                (1, "pax twice"),
                (1, "long and pax"),
                (1, "pax and sparse name"),
                (1, "long with NUL"),
                (1, "empty pax path"),
                (1, "two pax headers"),
                (1, "global header before"),
                (1, "long twice"),
            ])
        } else {
            self.rng.weighted(&[(6, "field"), (4, "pax"), (3, "long"), (1, "field with garbage after NUL")])
        };
        let field_name = |w: &mut Self, name: &str| -> Vec<u8> {
            match w.rng.below(3) {
                0 => name.as_bytes()[..name.len().min(100)].to_vec(),
                1 => w.decoy().into_bytes(),
                _ => Vec::new(),
            }
        };
        let fits = name.len() <= 100 || split.is_some();
        let how = if how.starts_with("field") && !fits { "pax" } else { how };
        let _ = write!(note, " name:{how}");
        match how {
            "field" | "field with garbage after NUL" => {
                if let Some(i) = split {
                    block.prefix = name.as_bytes()[..i].to_vec();
                    block.name = name.as_bytes()[i + 1..].to_vec();
                    note.push_str(" (prefix)");
                } else {
                    block.name = name.clone().into_bytes();
                }
                if how != "field" {
                    block.name_garbage = self.decoy().into_bytes();
                }
            }
            "pax" | "pax twice" | "pax and sparse name" | "empty pax path" | "two pax headers" => {
                block.name = field_name(self, &name);
                match how {
                    "pax" => records.push((b"path".to_vec(), name.clone().into_bytes())),
                    "pax twice" => {
                        let d = self.decoy().into_bytes();
                        if self.rng.chance(50) {
                            records.push((b"path".to_vec(), d));
                            records.push((b"path".to_vec(), name.clone().into_bytes()));
                        } else {
                            records.push((b"path".to_vec(), name.clone().into_bytes()));
                            records.push((b"path".to_vec(), d));
                        }
                    }
                    "pax and sparse name" => {
                        records.push((b"path".to_vec(), name.clone().into_bytes()));
                        let d = self.decoy().into_bytes();
                        records.push((b"GNU.sparse.name".to_vec(), d));
                        if self.rng.chance(50) {
                            records.push((b"GNU.sparse.major".to_vec(), b"0".to_vec()));
                            records.push((b"GNU.sparse.minor".to_vec(), b"1".to_vec()));
                        }
                        records.push((b"GNU.sparse.map".to_vec(), b"".to_vec()));
                        records.push((b"GNU.sparse.numblocks".to_vec(), b"0".to_vec()));
                    }
                    "empty pax path" => {
                        block.name = name.as_bytes()[..name.len().min(100)].to_vec();
                        records.push((b"path".to_vec(), Vec::new()));
                    }
                    _ => {
                        let d = self.decoy().into_bytes();
                        pre.extend(pax_header(&[(b"path", &d)]));
                        records.push((b"path".to_vec(), name.clone().into_bytes()));
                    }
                }
            }
            "long" | "long and pax" | "long with NUL" | "long twice" => {
                block.name = field_name(self, &name);
                let mut value = name.clone().into_bytes();
                match how {
                    "long with NUL" => {
                        value.push(0);
                        if self.rng.chance(60) {
                            value.extend_from_slice(self.decoy().as_bytes());
                        } else {
                            value.extend_from_slice(b"\0\0");
                        }
                    }
                    "long and pax" => {
                        let d = self.decoy().into_bytes();
                        records.push((b"path".to_vec(), d));
                        value.push(0);
                    }
                    "long twice" => {
                        let mut d = self.decoy().into_bytes();
                        d.push(0);
                        pre.extend(extension(b'L', b"././@LongLink", &d));
                        value.push(0);
                    }
                    _ => value.push(0),
                }
                pre.extend(extension(b'L', b"././@LongLink", &value));
            }
            _ => {
                // A global header naming a decoy, then the entry in its field.
                let d = self.decoy().into_bytes();
                pre.extend(extension(b'g', b"pax_global_header", &pax_record(b"path", &d)));
                block.name = name.as_bytes()[..name.len().min(100)].to_vec();
                if name.len() > 100 {
                    records.push((b"path".to_vec(), name.clone().into_bytes()));
                }
            }
        }

        // The link.
        if matches!(kind, Kind::Symlink | Kind::Hardlink) {
            let how = if self.rng.chance(self.hostile) {
                self.rng.weighted(&[(1, "long with NUL"), (1, "pax twice")])
            } else {
                self.rng.weighted(&[(6, "field"), (2, "pax"), (2, "long")])
            };
            let how = if how == "field" && link.len() > 100 { "pax" } else { how };
            let _ = write!(note, " link:{how}");
            match how {
                "field" => block.link = link.as_bytes().to_vec(),
                "pax" => {
                    block.link = if self.rng.chance(50) { self.decoy().into_bytes() } else { Vec::new() };
                    records.push((b"linkpath".to_vec(), link.as_bytes().to_vec()));
                }
                "pax twice" => {
                    let d = self.decoy().into_bytes();
                    records.push((b"linkpath".to_vec(), link.as_bytes().to_vec()));
                    records.push((b"linkpath".to_vec(), d));
                }
                _ => {
                    block.link = self.decoy().into_bytes();
                    let mut value = link.as_bytes().to_vec();
                    value.push(0);
                    if how == "long with NUL" {
                        value.extend_from_slice(self.decoy().as_bytes());
                    }
                    pre.extend(extension(b'K', b"././@LongLink", &value));
                }
            }
        }

        // The size, and what follows the header.
        let mut data = content.to_vec();
        let header_only = matches!(kind, Kind::Dir | Kind::Symlink | Kind::Hardlink);
        if header_only {
            if self.rng.chance(self.hostile) {
                // A size on a type that has no content: a hidden entry where it would be.
                data = self.hidden_entry();
                note.push_str(" sized, hiding an entry");
            }
            block.size = data.len() as u64;
        } else {
            let how = if self.rng.chance(self.hostile) {
                self.rng.weighted(&[(1, "pax, field wrong"), (1, "pax twice")])
            } else {
                self.rng.weighted(&[(8, "field"), (2, "pax"), (1, "pax, field 0")])
            };
            let _ = write!(note, " size:{how}");
            let real = content.len() as u64;
            match how {
                "field" => block.size = real,
                "pax" => {
                    block.size = real;
                    records.push((b"size".to_vec(), real.to_string().into_bytes()));
                }
                "pax, field 0" => {
                    block.size = 0;
                    records.push((b"size".to_vec(), real.to_string().into_bytes()));
                }
                _ => {
                    // The content region holds the content, then a hidden entry: one size
                    // covers the content only, the other the whole region.
                    let mut region = padded(content);
                    region.extend(self.hidden_entry());
                    let (small, big) = (real, region.len() as u64);
                    data = region;
                    if how == "pax, field wrong" {
                        let (field, pax) = if self.rng.chance(50) { (small, big) } else { (big, small) };
                        block.size = field;
                        records.push((b"size".to_vec(), pax.to_string().into_bytes()));
                    } else {
                        block.size = big;
                        let (a, b) = if self.rng.chance(50) { (small, big) } else { (big, small) };
                        records.push((b"size".to_vec(), a.to_string().into_bytes()));
                        records.push((b"size".to_vec(), b.to_string().into_bytes()));
                    }
                }
            }
        }

        if self.rng.chance(10) {
            // Records Go reads, or ignores, that change nothing of where the entry goes.
            let (k, v): (&[u8], &[u8]) = self.rng.weighted(&[
                (1, (b"comment".as_slice(), b"odd=value\nwith a newline".as_slice())),
                (1, (b"hdrcharset", b"BINARY")),
                (1, (b"mtime", b"1234567890.5")),
                (1, (b"uid", b"1000")),
                (1, (b"SCHILY.dev", b"12")),
            ]);
            let _ = write!(note, " +{}", String::from_utf8_lossy(k));
            records.push((k.to_vec(), v.to_vec()));
        }
        self.out.extend(pre);
        if !records.is_empty() {
            let refs: Vec<(&[u8], &[u8])> = records.iter().map(|(k, v)| (k.as_slice(), v.as_slice())).collect();
            self.out.extend(pax_header(&refs));
        }
        self.out.extend_from_slice(&block.encode());
        self.out.extend(padded(&data));
        self.notes.push(note);
    }
}

/// A layer of a few entries under `root` (a clean relative directory, or empty), encoded in
/// odd ways; decoys and hidden entries are named from `decoys`. Directories come before
/// what they hold; every name is different.
pub fn odd_layer(rng: &mut Rng, root: &str, decoys: &[&str]) -> OddLayer {
    let hostile = rng.weighted(&[(4, 0), (3, 8), (3, 25)]);
    let mut w = Writer {
        rng,
        decoys,
        out: Vec::new(),
        notes: vec![format!("hostile encodings: {hostile}%")],
        evil: 0,
        hostile,
    };
    let base = if root.is_empty() { String::new() } else { format!("{root}/") };
    let count = 1 + w.rng.below(6);
    let mut files: Vec<String> = Vec::new();
    let mut dirs: Vec<String> = Vec::new();
    for i in 0..count {
        let kind = if files.is_empty() {
            w.rng.weighted(&[(5, Kind::File), (2, Kind::Dir), (2, Kind::Symlink)])
        } else {
            w.rng.weighted(&[(5, Kind::File), (2, Kind::Dir), (2, Kind::Symlink), (1, Kind::Hardlink)])
        };
        let parent = if !dirs.is_empty() && w.rng.chance(40) {
            format!("{}/", dirs[w.rng.below(dirs.len())])
        } else {
            base.clone()
        };
        let stem = if w.rng.chance(20) { format!("{}{i}", "l".repeat(60 + w.rng.below(120))) } else { format!("e{i}") };
        let name = format!("{parent}{stem}");
        match kind {
            Kind::File => {
                let (small, large) = (1 + w.rng.below(600), 1000 + w.rng.below(2000));
                let len = w.rng.weighted(&[(3, 0), (6, small), (1, large)]);
                let mut content = format!("F{i}:").into_bytes();
                content.extend((0..len).map(|j| b'a' + ((i + j) % 26) as u8));
                w.entry(&name, kind, "", &content);
                files.push(name);
            }
            Kind::Dir => {
                w.entry(&name, kind, "", b"");
                dirs.push(name);
            }
            Kind::Symlink => {
                let target = if w.rng.chance(20) { format!("/{}", "t".repeat(120)) } else { format!("../t{i}") };
                w.entry(&name, kind, &target, b"");
            }
            Kind::Hardlink => {
                let target = files[w.rng.below(files.len())].clone();
                let shown = if w.rng.chance(30) { format!("/{target}") } else { target };
                w.entry(&name, kind, &shown, b"");
            }
        }
    }
    // The end of the archive.
    let end = if w.rng.chance(w.hostile) {
        w.rng.weighted(&[(1, "garbage after the end"), (1, "a zero block, then a header")])
    } else {
        w.rng.weighted(&[(6, "two zero blocks"), (2, "no end"), (1, "one zero block"), (2, "10240-byte record")])
    };
    match end {
        "two zero blocks" => w.out.extend_from_slice(&[0; 1024]),
        "no end" => {}
        "one zero block" => w.out.extend_from_slice(&[0; 512]),
        "10240-byte record" => {
            w.out.extend_from_slice(&[0; 1024]);
            let n = w.out.len().div_ceil(10240) * 10240;
            w.out.resize(n, 0);
        }
        "garbage after the end" => {
            w.out.extend_from_slice(&[0; 1024]);
            let hidden = w.hidden_entry();
            w.out.extend(hidden);
            w.out.extend_from_slice(&[0; 1024]);
        }
        _ => {
            w.out.extend_from_slice(&[0; 512]);
            let hidden = w.hidden_entry();
            w.out.extend(hidden);
            w.out.extend_from_slice(&[0; 1024]);
        }
    }
    w.notes.push(format!("end: {end}"));
    OddLayer { bytes: w.out, notes: w.notes }
}

/// Writes `tar` (uncompressed) as the one layer of an image in a new OCI layout at `dir`,
/// tagged `t`, for umoci.
pub fn write_layout(dir: &Path, tar: &[u8]) -> std::io::Result<()> {
    let sha = |b: &[u8]| crate::hostile::sha256(b);
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs)?;
    let put = |b: &[u8]| -> std::io::Result<String> {
        let d = sha(b);
        std::fs::write(blobs.join(&d[7..]), b)?;
        Ok(d)
    };
    let layer = put(tar)?;
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [layer]},
    }))?;
    let config_digest = put(&config)?;
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": tar.len()}],
    }))?;
    let manifest_digest = put(&manifest)?;
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_digest,
        "size": manifest.len(), "annotations": {"org.opencontainers.image.ref.name": "t"},
    }]});
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_checksums() {
        let b = Block::new(b"a", b'0', 5).encode();
        assert_eq!(&b[124..136], b"00000000005\0");
        let mut field = [0u8; 12];
        number(&mut field, 5, Numbers::Spaced);
        assert_eq!(&field, b"         5 \0");
        number(&mut field, 5, Numbers::NoNul);
        assert_eq!(&field, b"000000000005");
        number(&mut field, 5, Numbers::Base256);
        assert_eq!(field, [0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5]);
        assert_eq!(pax_record(b"path", b"a"), b"9 path=a\n");
        assert_eq!(pax_record(b"path", &[b'x'; 91]).len(), 101);
    }

    #[test]
    fn the_model_makes_parents_and_replaces() {
        let mut m = Model::default();
        m.apply("/a/b/c", &Seen::File(b"1".to_vec())).unwrap();
        assert_eq!(m.nodes.get("a"), Some(&Seen::Dir));
        m.apply("a/b/c", &Seen::File(b"2".to_vec())).unwrap();
        assert_eq!(m.nodes.get("a/b/c"), Some(&Seen::File(b"2".to_vec())));
        m.apply("./a/h", &Seen::Hardlink("a/b/c".into())).unwrap();
        assert_eq!(m.links.get("a/h").map(String::as_str), Some("a/b/c"));
        assert!(m.apply("a/b/c/d", &Seen::Dir).is_err());
    }
}
