//! Where an image is read from or written to (the "transport").
//!
//! # Spellings
//!
//! - `NAME[:TAG|@DIGEST]` → [`ImageLocation::Name`] (registry with `--publish`, else the local store).
//! - `oci:<DIR>[:<TAG>]` → [`ImageLocation::OciLayout`]; the tag defaults to `latest`; a
//!   relative `DIR` is resolved against `base_dir`.
//! - `docker-archive:<FILE>[:<REF>]` → [`ImageLocation::DockerArchive`]: a tar that
//!   `docker load` accepts, or one that `docker save` wrote (read and written).
//! - `docker-daemon:NAME[:TAG|@DIGEST]` and `docker-daemon:sha256:<ID>` →
//!   [`ImageLocation::DockerDaemon`]: an image in the local container engine (the Docker
//!   daemon, or Podman's Docker-compatible service), skopeo's spelling.
//! - `docker://NAME` and `docker:/NAME` are accepted as `NAME` (pack's buildpack URI forms):
//!   [`ImageLocation::strip_docker_scheme`] is the one rule every reader of such a URI uses
//!   (one prefix, taken off once).
//!
//! # Choices
//!
//! * **`oci:` tag or path?** The text after the *last* `:` is the tag only when it contains
//!   no `/` and is a valid tag; otherwise the whole rest is the directory. So
//!   `oci:/tmp/a:b/c` is the directory `/tmp/a:b/c`, and `oci:dir:v1` is `dir` with tag `v1`.
//!   A trailing `:` (`oci:dir:`) is rejected rather than read as a directory named `dir:`:
//!   it is almost certainly a forgotten tag.
//! * **`docker-archive:` file and reference** are split at the *first* `:` after the prefix,
//!   as skopeo does, because the reference itself may contain `:` (`localhost:5000/app:1`).
//!   The file name therefore cannot contain `:`. The reference names the image in the
//!   archive's `RepoTags`, so it must not carry a digest.
//! * **Paths** are made absolute against `base_dir` and normalised lexically (`.` dropped,
//!   `..` removes the previous component, never above `/`), without touching the file system:
//!   symbolic links are not resolved and the directory need not exist. `~` is not expanded
//!   (the shell does that). If `base_dir` is itself relative, the process's current directory
//!   is prepended.
//! * **`docker-daemon:`** takes a reference as the engine names it (a name without a tag
//!   means `:latest`), or an image ID (`sha256:` and 64 hexadecimal digits, as skopeo reads
//!   it; `docker-daemon:sha256:<ID>` is never read as the repository `sha256`).
//! * **Other transports** that skopeo knows (`oci-archive:`, `dir:`,
//!   `containers-storage:`) are rejected with a message listing the supported spellings,
//!   instead of an obscure reference error.

use std::fmt;
use std::path::{Component, Path, PathBuf};

use cnbx_fs::excerpt;

use crate::reference::{DEFAULT_TAG, ImageRef, RefError, looks_like_path, validate_tag};

const OCI_PREFIX: &str = "oci:";
const DOCKER_ARCHIVE_PREFIX: &str = "docker-archive:";
const DOCKER_DAEMON_PREFIX: &str = "docker-daemon:";

/// Transports we recognise but do not support, so that they get a clear message.
const UNSUPPORTED_TRANSPORTS: &[&str] = &["oci-archive", "dir", "containers-storage", "ostree", "sif"];

const SUPPORTED: &str = "use NAME, oci:<DIR>[:<TAG>], docker-archive:<FILE>[:<NAME>] or docker-daemon:NAME[:TAG]";

/// pack's prefixes of an image name in a URI, longest first.
const DOCKER_SCHEMES: [&str; 2] = ["docker://", "docker:/"];

/// The kind of an image location, for messages and decisions that depend on the kind only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// A registry name (`NAME`, `docker://NAME`).
    Name,
    /// `oci:`.
    OciLayout,
    /// `docker-archive:`.
    DockerArchive,
    /// `docker-daemon:`.
    DockerDaemon,
}

impl Transport {
    /// What it is, for messages: `an oci: layout`, `a docker-archive`, ….
    pub fn noun(self) -> &'static str {
        match self {
            Self::Name => "a registry image",
            Self::OciLayout => "an oci: layout",
            Self::DockerArchive => "a docker-archive",
            Self::DockerDaemon => "an image in the container engine (docker-daemon:)",
        }
    }
}

/// An image in the local container engine, as `docker-daemon:` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DaemonImage {
    /// A reference (`NAME[:TAG|@DIGEST]`), looked up among the engine's tags and digests.
    Reference(ImageRef),
    /// An image ID, `sha256:<64 hex>` (the digest of the image's config for the Docker
    /// daemon and Podman).
    Id(String),
}

impl DaemonImage {
    /// The reference, for [`DaemonImage::Reference`].
    pub fn as_reference(&self) -> Option<&ImageRef> {
        match self {
            Self::Reference(r) => Some(r),
            Self::Id(_) => None,
        }
    }

    /// How the engine's API names it: the reference as written (Docker normalises it the
    /// same way cnbx does), or the ID.
    pub fn api_name(&self) -> &str {
        match self {
            Self::Reference(r) => r.original(),
            Self::Id(id) => id,
        }
    }
}

impl fmt::Display for DaemonImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.api_name())
    }
}

/// An image location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageLocation {
    /// A registry reference; also the key in the local store.
    Name(ImageRef),
    /// A tag in an OCI image layout directory.
    OciLayout {
        /// Layout directory (absolute after parsing).
        dir: PathBuf,
        /// Tag (`org.opencontainers.image.ref.name`), `latest` by default.
        tag: String,
    },
    /// A `docker load`-able tar file, or one `docker save` wrote.
    DockerArchive {
        /// Archive path (absolute after parsing).
        file: PathBuf,
        /// Name recorded in the archive's `RepoTags`, if given.
        reference: Option<ImageRef>,
    },
    /// An image in the local container engine (`docker-daemon:`).
    DockerDaemon(DaemonImage),
}

impl ImageLocation {
    /// Parses a location; relative paths are resolved against `base_dir`.
    pub fn parse(s: &str, base_dir: &Path) -> Result<Self, RefError> {
        let err = |reason: String| RefError::new(s, reason);

        if let Some(rest) = s.strip_prefix(OCI_PREFIX) {
            let (dir, tag) = split_oci(rest).map_err(err)?;
            if dir.is_empty() {
                return Err(err("the OCI layout directory after 'oci:' is empty (write oci:<DIR>[:<TAG>])".into()));
            }
            let dir = absolutize(Path::new(dir), base_dir).map_err(err)?;
            return Ok(Self::OciLayout { dir, tag: tag.to_owned() });
        }

        if let Some(rest) = s.strip_prefix(DOCKER_ARCHIVE_PREFIX) {
            let (file, reference) = match rest.split_once(':') {
                Some((file, reference)) => (file, Some(reference)),
                None => (rest, None),
            };
            if file.is_empty() {
                return Err(err("the archive file after 'docker-archive:' is empty \
                     (write docker-archive:<FILE>[:<NAME>])"
                    .into()));
            }
            let reference = match reference {
                None => None,
                Some("") => {
                    return Err(err("the image name after the archive file is empty \
                         (write docker-archive:<FILE>[:<NAME>])"
                        .into()));
                }
                Some(r) => {
                    let parsed = ImageRef::parse(r)?;
                    if parsed.digest().is_some() {
                        return Err(err(format!(
                            "the name '{}' for a docker archive must not have a digest \
                             (docker load only records NAME:TAG)",
                            excerpt(r)
                        )));
                    }
                    Some(parsed)
                }
            };
            let file = absolutize(Path::new(file), base_dir).map_err(err)?;
            return Ok(Self::DockerArchive { file, reference });
        }

        if let Some(rest) = s.strip_prefix(DOCKER_DAEMON_PREFIX) {
            if rest.is_empty() {
                return Err(err("the image after 'docker-daemon:' is empty (write docker-daemon:NAME[:TAG])".into()));
            }
            if let Some(hex) = rest.strip_prefix("sha256:") {
                if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
                    return Ok(Self::DockerDaemon(DaemonImage::Id(rest.to_owned())));
                }
                return Err(err(
                    "an image ID after 'docker-daemon:' is sha256: and 64 lower-case hexadecimal digits".into()
                ));
            }
            return ImageRef::parse(rest).map(|r| Self::DockerDaemon(DaemonImage::Reference(r)));
        }

        if let Some(name) = Self::strip_docker_scheme(s) {
            return ImageRef::parse(name).map(Self::Name);
        }

        if let Some((scheme, _)) = s.split_once(':')
            && UNSUPPORTED_TRANSPORTS.contains(&scheme)
        {
            return Err(err(format!("the '{}:' transport is not supported; {SUPPORTED}", excerpt(scheme))));
        }
        ImageRef::parse(s).map(Self::Name).map_err(|e| {
            if looks_like_path(s) {
                let s = excerpt(s);
                err(format!(
                    "it looks like a file path, not an image name; for an OCI layout \
                     directory write oci:{s}, for a docker archive docker-archive:{s}"
                ))
            } else {
                e
            }
        })
    }

    /// The name after pack's `docker://` or `docker:/` prefix, when `s` has one: the one rule
    /// for that prefix (taken off once), whoever reads the spelling.
    pub fn strip_docker_scheme(s: &str) -> Option<&str> {
        DOCKER_SCHEMES.iter().find_map(|p| s.strip_prefix(p))
    }

    /// The transport `s` is spelled with, judged from its prefix alone (`None`: no transport
    /// prefix, so a plain name or something that is not a location at all). `docker://` and
    /// `docker:/` are [`Transport::Name`].
    pub fn spelled_transport(s: &str) -> Option<Transport> {
        if s.starts_with(OCI_PREFIX) {
            Some(Transport::OciLayout)
        } else if s.starts_with(DOCKER_ARCHIVE_PREFIX) {
            Some(Transport::DockerArchive)
        } else if s.starts_with(DOCKER_DAEMON_PREFIX) {
            Some(Transport::DockerDaemon)
        } else if Self::strip_docker_scheme(s).is_some() {
            Some(Transport::Name)
        } else {
            None
        }
    }

    /// Its transport.
    pub fn transport(&self) -> Transport {
        match self {
            Self::Name(_) => Transport::Name,
            Self::OciLayout { .. } => Transport::OciLayout,
            Self::DockerArchive { .. } => Transport::DockerArchive,
            Self::DockerDaemon(_) => Transport::DockerDaemon,
        }
    }

    /// The registry reference, for [`ImageLocation::Name`].
    pub fn as_name(&self) -> Option<&ImageRef> {
        match self {
            Self::Name(r) => Some(r),
            _ => None,
        }
    }

    /// The engine's image, for [`ImageLocation::DockerDaemon`].
    pub fn as_daemon(&self) -> Option<&DaemonImage> {
        match self {
            Self::DockerDaemon(d) => Some(d),
            _ => None,
        }
    }
}

/// Displays the location for messages: a name as the user wrote it (without a `docker://`
/// prefix; use [`ImageRef`]'s `Display` for the fully qualified form),
/// `oci:<absolute dir>:<tag>` (the tag always shown) and
/// `docker-archive:<absolute file>[:<name as written>]` and `docker-daemon:<name as written>`.
impl fmt::Display for ImageLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Name(r) => f.write_str(r.original()),
            Self::OciLayout { dir, tag } => write!(f, "{OCI_PREFIX}{}:{tag}", dir.display()),
            Self::DockerArchive { file, reference } => {
                write!(f, "{DOCKER_ARCHIVE_PREFIX}{}", file.display())?;
                if let Some(r) = reference {
                    write!(f, ":{}", r.original())?;
                }
                Ok(())
            }
            Self::DockerDaemon(d) => write!(f, "{DOCKER_DAEMON_PREFIX}{d}"),
        }
    }
}

/// Splits the part after `oci:` into directory and tag (see the module docs).
fn split_oci(rest: &str) -> Result<(&str, &str), String> {
    if let Some((dir, tag)) = rest.rsplit_once(':') {
        if tag.is_empty() {
            return Err("the tag after the last ':' is empty (write oci:<DIR> or oci:<DIR>:<TAG>)".into());
        }
        if !tag.contains('/') && validate_tag(tag).is_ok() {
            return Ok((dir, tag));
        }
    }
    Ok((rest, DEFAULT_TAG))
}

/// `path` made absolute against `base_dir` and normalised lexically.
fn absolutize(path: &Path, base_dir: &Path) -> Result<PathBuf, String> {
    let joined = base_dir.join(path);
    let joined = if joined.is_absolute() {
        joined
    } else {
        std::path::absolute(&joined)
            .map_err(|e| format!("cannot make '{}' absolute: {e}", excerpt(&joined.to_string_lossy())))?
    };
    Ok(normalize(&joined))
}

/// Removes `.` components and resolves `..` against the preceding component, lexically.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Prefix(p) => out.push(p.as_os_str()),
            Component::RootDir => out.push(Component::RootDir.as_os_str()),
            Component::CurDir => {}
            Component::ParentDir => {
                // At the root, `..` stays at the root.
                out.pop();
            }
            Component::Normal(c) => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn oci(dir: &str, tag: &str) -> ImageLocation {
        ImageLocation::OciLayout { dir: PathBuf::from(dir), tag: tag.to_owned() }
    }

    fn archive(file: &str, reference: Option<&str>) -> ImageLocation {
        ImageLocation::DockerArchive {
            file: PathBuf::from(file),
            reference: reference.map(|r| ImageRef::parse(r).expect(r)),
        }
    }

    fn name(s: &str) -> ImageLocation {
        ImageLocation::Name(ImageRef::parse(s).expect(s))
    }

    fn daemon(s: &str) -> ImageLocation {
        ImageLocation::DockerDaemon(DaemonImage::Reference(ImageRef::parse(s).expect(s)))
    }

    #[test]
    fn parse_table() {
        let base = Path::new("/work/proj");
        let by_digest = format!("docker-daemon:app@sha256:{HEX}");
        let by_id = format!("docker-daemon:sha256:{HEX}");
        let cases: Vec<(&str, ImageLocation)> = vec![
            // OCI layouts: tags versus paths with colons.
            ("oci:/tmp/layout", oci("/tmp/layout", "latest")),
            ("oci:/tmp/layout:v1", oci("/tmp/layout", "v1")),
            ("oci:/tmp/layout:1.0_rc-2", oci("/tmp/layout", "1.0_rc-2")),
            ("oci:/tmp/a:b/c", oci("/tmp/a:b/c", "latest")),
            ("oci:/tmp/a:b/c:d", oci("/tmp/a:b/c", "d")),
            ("oci:/tmp/a:b+c", oci("/tmp/a:b+c", "latest")),
            ("oci:/tmp/a:.hidden", oci("/tmp/a:.hidden", "latest")),
            ("oci:out", oci("/work/proj/out", "latest")),
            ("oci:out:tag", oci("/work/proj/out", "tag")),
            ("oci:./out/../layout/.:t", oci("/work/proj/layout", "t")),
            ("oci:../../../../x", oci("/x", "latest")),
            ("oci:/a/./b//c/", oci("/a/b/c", "latest")),
            // Docker archives, with and without a name (which may contain ':').
            ("docker-archive:/tmp/b.tar", archive("/tmp/b.tar", None)),
            ("docker-archive:b.tar", archive("/work/proj/b.tar", None)),
            ("docker-archive:../b.tar:my/builder", archive("/work/b.tar", Some("my/builder"))),
            ("docker-archive:/tmp/b.tar:ubuntu:22.04", archive("/tmp/b.tar", Some("ubuntu:22.04"))),
            ("docker-archive:/tmp/b.tar:localhost:5000/app:1", archive("/tmp/b.tar", Some("localhost:5000/app:1"))),
            // Names, with pack's docker:// prefixes.
            ("ubuntu", name("ubuntu")),
            ("ubuntu:22.04", name("ubuntu:22.04")),
            ("localhost:5000/app:1", name("localhost:5000/app:1")),
            ("docker://gcr.io/x/y:1", name("gcr.io/x/y:1")),
            ("docker:/paketo/builder", name("paketo/builder")),
            // The engine's images, by name or by ID.
            ("docker-daemon:my-builder", daemon("my-builder")),
            ("docker-daemon:localhost:5000/app:1", daemon("localhost:5000/app:1")),
            (&by_digest, daemon(&format!("app@sha256:{HEX}"))),
            (&by_id, ImageLocation::DockerDaemon(DaemonImage::Id(format!("sha256:{HEX}")))),
        ];
        for (input, expected) in cases {
            let got = ImageLocation::parse(input, base).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(got, expected, "{input}");
        }
    }

    #[test]
    fn the_docker_scheme_is_taken_off_once() {
        assert_eq!(ImageLocation::strip_docker_scheme("docker://a/b:1"), Some("a/b:1"));
        assert_eq!(ImageLocation::strip_docker_scheme("docker:/a/b"), Some("a/b"));
        assert_eq!(ImageLocation::strip_docker_scheme("docker://docker://a"), Some("docker://a"));
        assert_eq!(ImageLocation::strip_docker_scheme("docker:a"), None);
        assert!(ImageLocation::parse("docker://docker://a", Path::new("/")).is_err());
        let spelled = |s| ImageLocation::spelled_transport(s);
        assert_eq!(spelled("oci:x"), Some(Transport::OciLayout));
        assert_eq!(spelled("docker-archive:x"), Some(Transport::DockerArchive));
        assert_eq!(spelled("docker-daemon:x"), Some(Transport::DockerDaemon));
        assert_eq!(spelled("docker://x"), Some(Transport::Name));
        assert_eq!(spelled("x:1"), None);
    }

    #[test]
    fn digest_names() {
        let s = format!("docker://app@sha256:{HEX}");
        let got = ImageLocation::parse(&s, Path::new("/")).expect("valid");
        assert_eq!(got.as_name().and_then(ImageRef::digest), Some(&*format!("sha256:{HEX}")));
    }

    #[test]
    fn errors() {
        let base = Path::new("/work");
        let digest = format!("sha256:{HEX}");
        let cases: Vec<(String, &str, &str)> = vec![
            ("oci:".into(), "oci:", "the OCI layout directory after 'oci:' is empty"),
            ("oci::v1".into(), "oci::v1", "the OCI layout directory after 'oci:' is empty"),
            ("oci:dir:".into(), "oci:dir:", "the tag after the last ':' is empty"),
            ("docker-archive:".into(), "docker-archive:", "the archive file after 'docker-archive:' is empty"),
            ("docker-archive::x".into(), "docker-archive::x", "the archive file"),
            ("docker-archive:a.tar:".into(), "docker-archive:a.tar:", "the image name after the archive file is empty"),
            ("docker-archive:a.tar:Bad".into(), "Bad", "repository name must be lowercase"),
            (
                format!("docker-archive:a.tar:app@{digest}"),
                "docker-archive:a.tar:app@sha256:",
                "must not have a digest",
            ),
            ("docker://".into(), "", "the reference is empty"),
            ("docker://Bad".into(), "Bad", "repository name must be lowercase"),
            (
                "oci-archive:/x.tar".into(),
                "oci-archive:/x.tar",
                "the 'oci-archive:' transport is not supported; use NAME",
            ),
            ("docker-daemon:".into(), "docker-daemon:", "the image after 'docker-daemon:' is empty"),
            ("docker-daemon:Bad".into(), "Bad", "repository name must be lowercase"),
            ("docker-daemon:sha256:abc".into(), "docker-daemon:sha256:abc", "an image ID after 'docker-daemon:'"),
            ("containers-storage:x".into(), "containers-storage:x", "not supported; use NAME"),
            (
                "./relative".into(),
                "./relative",
                "it looks like a file path, not an image name; for an OCI layout directory write oci:./relative",
            ),
            ("/abs/dir".into(), "/abs/dir", "docker-archive:/abs/dir"),
        ];
        for (input, reference, reason) in &cases {
            let e = ImageLocation::parse(input, base).expect_err(input);
            assert!(e.reference.starts_with(reference), "{input}: reference {:?}", e.reference);
            assert!(e.reason.contains(reason), "{input}: got {:?}, want {reason:?}", e.reason);
        }
    }

    #[test]
    fn long_locations_are_quoted_as_excerpts() {
        let long = "a".repeat(100_000);
        let cases = [
            format!("docker-archive:a.tar:app@sha256:{HEX}{long}"),
            format!("docker-archive:a.tar:app@sha256:{HEX}:{long}"),
            format!("docker-archive:a.tar:{long}@sha256:{HEX}"),
            format!("./{long}"),
            format!("/{long}/\u{1b}[2J"),
            format!("docker://{long}:-"),
            format!("oci:{long}:"),
        ];
        for input in &cases {
            let e = ImageLocation::parse(input, Path::new("/work")).expect_err("invalid");
            let shown = e.to_string();
            assert!(shown.len() < 800, "{} bytes: {}", shown.len(), &shown[..800]);
            assert!(!shown.contains('\u{1b}'), "{shown}");
        }
    }

    #[test]
    fn relative_base_dir_becomes_absolute() {
        let got = ImageLocation::parse("oci:x", Path::new("rel/dir")).expect("valid");
        let ImageLocation::OciLayout { dir, .. } = got else {
            panic!("not an OCI layout");
        };
        assert!(dir.is_absolute(), "{}", dir.display());
        assert!(dir.ends_with("rel/dir/x"), "{}", dir.display());
    }

    #[test]
    fn display() {
        let base = Path::new("/b");
        let cases = [
            ("oci:/abs/dir:tag", "oci:/abs/dir:tag"),
            ("oci:rel", "oci:/b/rel:latest"),
            ("docker-archive:x.tar", "docker-archive:/b/x.tar"),
            ("docker-archive:x.tar:Ubuntu.io/a:1", "docker-archive:/b/x.tar:Ubuntu.io/a:1"),
            ("ubuntu", "ubuntu"),
            ("docker://Docker.io/paketo/run", "Docker.io/paketo/run"),
            ("docker-daemon:my/builder", "docker-daemon:my/builder"),
        ];
        for (input, shown) in cases {
            let loc = ImageLocation::parse(input, base).expect(input);
            assert_eq!(loc.to_string(), shown, "{input}");
        }
    }
}
