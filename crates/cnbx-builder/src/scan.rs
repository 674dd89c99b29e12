//! One pass over a module or lifecycle archive before its layer is planned: its descriptor,
//! the few names that matter, and whether its entries can go into a layer.
//!
//! The pass applies the same entry mapping and [`Confinement`] as the layer that will be
//! built from the archive, so an archive that would put a file outside its module's
//! directory (or write through a link, or hard-link outside) is refused here, with the
//! archive and the entry named, before anything is built; and what [`sanitize`] would change
//! (special files left out, setuid/setgid bits and extended attributes cleared) is reported
//! as warnings. The result is remembered in `CNBX_HOME/cache/scans` by the archive's path and
//! identity, so a warm create neither reads the archive again nor loses the warnings.
//!
//! Only what is needed is kept: the content of the wanted descriptors (at most
//! [`limits::MAX_DESCRIPTOR`] bytes each, regular-file entries only), the notable names
//! found, and the warnings; never the list of every entry, which a hostile archive can make
//! as large as it likes.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read};
use std::path::Path;

use cnbx_fs::limits;
use cnbx_oci::archive;
use cnbx_oci::confine::{Confinement, Confiner, sanitize};
use cnbx_oci::layer::{EntryMap, FileIdentity, open_archive_file};
use cnbx_oci::tarball::{EntryKind, clean_path};

use crate::home::Memo;
use crate::images::Images;

/// An entry name cleaned as pack compares it: `path.Clean`, then without a leading `/`.
pub(crate) fn clean_name(name: &str) -> String {
    let c = clean_path(name);
    c.strip_prefix('/').map(str::to_owned).unwrap_or(c)
}

/// What one pass over an archive found.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct TarScan {
    /// The notable names found (as the scan's `notable` function spelled them).
    pub(crate) notable: BTreeSet<String>,
    /// The content of the first regular-file entry of each wanted (cleaned) name.
    pub(crate) files: BTreeMap<String, Vec<u8>>,
    /// What the layer will change in the archive's entries, one message per entry.
    pub(crate) warnings: Vec<String>,
}

impl TarScan {
    /// The wanted file `name`, if the archive has it.
    pub(crate) fn take_file(&mut self, name: &str) -> Option<Vec<u8>> {
        self.files.remove(name)
    }
}

/// What to look for, and which layer the archive will become.
pub(crate) struct ScanSpec<'a> {
    /// Text identifying `notable` and `layer` for the cache key (bump when either changes).
    pub(crate) id: &'a str,
    /// Cleaned names whose content to keep.
    pub(crate) want: &'a [&'a str],
    /// For a cleaned name, the notable name to remember, if it is one.
    pub(crate) notable: &'a (dyn Fn(&str) -> Option<String> + Sync),
    /// The layer mapping and its confinement, to check the entries against.
    pub(crate) layer: Option<(&'a EntryMap, Confinement)>,
}

/// A scan failed: the archive is unreadable or malformed, too large, or cannot become a
/// layer.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// Reading failed or the archive is malformed or over a bound (the message holds the I/O
    /// error's).
    #[error("{}", describe_io(.0))]
    Io(io::Error),
    /// An entry cannot be put into the layer.
    #[error(transparent)]
    Refused(#[from] cnbx_oci::confine::EntryViolation),
    /// A wanted descriptor is a link, a directory or a special file.
    #[error("entry '{name}' is not a regular file (cnbx does not follow links in archives)")]
    NotRegular {
        /// The entry.
        name: String,
    },
    /// A wanted descriptor is too large.
    #[error("entry '{name}' is larger than the {limit} bytes cnbx reads for a descriptor")]
    TooLarge {
        /// The entry.
        name: String,
        /// The limit.
        limit: u64,
    },
}

fn describe_io(e: &io::Error) -> String {
    if archive::is_limit(e) || e.raw_os_error().is_some() {
        e.to_string()
    } else {
        format!("{e} (zip is not supported)")
    }
}

/// An archive that could not be read or cannot become a layer.
#[derive(Debug, thiserror::Error)]
#[error("reading {what}")]
pub struct ArchiveError {
    /// The archive, for messages.
    pub(crate) what: String,
    /// Why.
    #[source]
    pub(crate) source: ScanError,
}

impl ScanError {
    /// As an error about the archive `what`.
    pub(crate) fn reading(self, what: &str) -> ArchiveError {
        ArchiveError { what: what.to_owned(), source: self }
    }
}

/// The revision of [`scan`]'s logic: bump it when what a scan finds in the same archive
/// changes, so that scans remembered before are not reused. 3: archives are read as Go reads
/// them.
const SCAN_REVISION: u32 = 3;

impl Memo for TarScan {
    const DIR: &'static str = "scans";

    fn logic() -> String {
        format!("archive scan, revision {SCAN_REVISION}")
    }
}

/// [`scan`], remembered in the home's `cache/scans` (unless `images` is read-only) by the
/// archive's path, identity and the spec's id.
pub(crate) fn scan_cached(images: &Images, path: &Path, spec: &ScanSpec<'_>) -> Result<TarScan, ScanError> {
    let opened = open_archive_file(path).map_err(|e| ScanError::Io(archive::safe_io(e)))?;
    let identity = FileIdentity::of_opened(&opened);
    let key = format!("{path:?}\n{identity:?}\n{:?}\n{}", spec.want, spec.id);
    if let Some(scan) = images.home().recall(&key) {
        return Ok(scan);
    }
    let scan = scan(opened.file, spec)?;
    images.remember(&key, &scan);
    Ok(scan)
}

/// Reads an archive (tar or gzipped tar) once, within the bounds of [`archive`]: see the
/// module docs.
pub(crate) fn scan(file: impl Read + Send + 'static, spec: &ScanSpec<'_>) -> Result<TarScan, ScanError> {
    let mut out = TarScan::default();
    let mut confiner = spec.layer.as_ref().map(|(_, c)| Confiner::new(c.clone()));
    let stream = archive::decompressed(file).map_err(|e| ScanError::Io(archive::safe_io(e)))?;
    archive::read_entries(
        stream,
        |header, entry| {
            let name = clean_name(&header.path);
            if let Some(n) = (spec.notable)(&name) {
                out.notable.insert(n);
            }
            if spec.want.contains(&name.as_str()) && !out.files.contains_key(&name) {
                if header.kind == EntryKind::File {
                    if header.size > limits::MAX_DESCRIPTOR {
                        return Err(ScanError::TooLarge { name, limit: limits::MAX_DESCRIPTOR });
                    }
                    let mut buf = Vec::with_capacity(usize::try_from(header.size).unwrap_or(0));
                    entry
                        .take(limits::MAX_DESCRIPTOR)
                        .read_to_end(&mut buf)
                        .map_err(|e| ScanError::Io(archive::safe_io(e)))?;
                    out.files.insert(name.clone(), buf);
                } else {
                    return Err(ScanError::NotRegular { name });
                }
            }
            if let (Some((map, _)), Some(confiner)) = (&spec.layer, confiner.as_mut()) {
                let (sanitized, changes) = sanitize(header);
                for change in changes {
                    out.warnings.push(format!("entry '{}': {change}", cnbx_fs::excerpt(&name)));
                }
                let Some(sanitized) = sanitized else { return Ok(()) };
                if let Some(mapped) = map(sanitized).map_err(|e| ScanError::Io(io::Error::other(e)))? {
                    confiner.check(&mapped)?;
                }
            }
            Ok(())
        },
        ScanError::Io,
    )?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cnbx_oci::TarWriter;
    use cnbx_oci::tarball::TarEntry;

    fn spec_with<'a>(map: &'a EntryMap, want: &'a [&'a str]) -> ScanSpec<'a> {
        ScanSpec {
            id: "test",
            want,
            notable: &|n: &str| (n == "bin/build").then(|| n.to_owned()),
            layer: Some((map, Confinement::new("/m/1").with_parent_dir("/m").shown_as("the module's directory"))),
        }
    }

    fn tar(entries: &[TarEntry]) -> Vec<u8> {
        let mut w = TarWriter::new(Vec::new());
        for e in entries {
            w.append(e, std::io::repeat(b'x').take(e.data_len())).unwrap();
        }
        w.finish().unwrap()
    }

    fn relative(e: TarEntry) -> Result<Option<TarEntry>, cnbx_oci::tarball::TarError> {
        let mut e = e;
        e.path = format!("/m/1/{}", clean_name(&e.path));
        Ok(Some(e))
    }

    #[test]
    fn finds_descriptors_and_notable_names_and_refuses_escapes() {
        let bytes = tar(&[TarEntry::file("buildpack.toml", 3), TarEntry::file("bin/build", 1)]);
        let s = scan(std::io::Cursor::new(bytes), &spec_with(&relative, &["buildpack.toml"])).unwrap();
        assert_eq!(s.files["buildpack.toml"], b"xxx");
        assert!(s.notable.contains("bin/build"));

        let bytes = tar(&[TarEntry::symlink("link", "/etc"), TarEntry::file("link/passwd", 1)]);
        let err = scan(std::io::Cursor::new(bytes), &spec_with(&relative, &[])).unwrap_err();
        assert!(
            err.to_string().contains("entry 'link/passwd': it would be written through the symbolic link 'link'"),
            "{err}"
        );

        let mut suid = TarEntry::file("bin/x", 0);
        suid.mode = 0o4755;
        let bytes = tar(&[TarEntry::symlink("buildpack.toml", "/proc/self/environ"), suid]);
        let err = scan(std::io::Cursor::new(bytes.clone()), &spec_with(&relative, &["buildpack.toml"])).unwrap_err();
        assert!(err.to_string().contains("entry 'buildpack.toml' is not a regular file"), "{err}");
        let s = scan(std::io::Cursor::new(bytes), &spec_with(&relative, &[])).unwrap();
        assert_eq!(s.warnings, ["entry 'bin/x': its setuid/setgid bits were cleared"]);
    }
}
