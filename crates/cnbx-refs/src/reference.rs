//! Docker-style image references.
//!
//! # Rules
//!
//! - `ImageRef::parse(s)` accepts `[REGISTRY/]REPO[:TAG][@sha256:HEX]`.
//! - The first path component is a registry when it contains `.` or `:` or is `localhost`.
//! - No registry, `docker.io` and `index.docker.io` all normalise to registry `index.docker.io`.
//! - A Docker Hub repository with one component gets `library/` prepended.
//! - Upper-case letters in the repository are an error naming the reference.
//! - `original()` keeps the user's spelling for messages.
//! - `Display` prints the fully qualified form `registry/repository[:tag][@digest]`,
//!   with tag `latest` when neither tag nor digest was given.
//!
//! # Grammar and choices
//!
//! ```text
//! reference  := name [ ":" tag ] [ "@" digest ]
//! name       := [ registry "/" ] component ( "/" component )*
//! registry   := host [ ":" port ]
//! host       := label ( "." label )* | "[" ipv6 "]"
//! label      := [A-Za-z0-9] | [A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9]
//! port       := [0-9]+                      (at most 65535)
//! component  := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
//! tag        := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
//! digest     := "sha256:" [0-9a-f]{64}
//! ```
//!
//! * **Registry detection.** The first component of a name with at least two components is
//!   the registry when it contains `.` or `:` (ggcr and Docker) or is `localhost`
//!   (compared case-insensitively). Bare `localhost` is a registry, as in Docker and in
//!   go-containerregistry after PR #2316; the ggcr version pack and lifecycle pin treats
//!   `localhost/app` as the Docker Hub repository `localhost/app`. We follow Docker because
//!   that is what users mean when they push to a registry on `localhost` (port 80), and
//!   because Docker itself cannot address a Docker Hub namespace called `localhost`, so no
//!   image anyone uses is lost. The difference from pack only affects which mirror is chosen
//!   for an app image named `localhost/…`.
//!   Newer Docker also treats a first component with upper-case letters as a registry; we do
//!   not (neither does ggcr): `Foo/bar` is rejected as a non-lowercase repository, which is
//!   the clearer message for that typo.
//! * **Registry normalisation.** The host is stored lower-cased (DNS names are
//!   case-insensitive); the port is kept verbatim and is significant (`example.com:443` is
//!   not `example.com`). No registry, `docker.io` and `index.docker.io` become
//!   `index.docker.io`, pack's and ggcr's spelling. `registry-1.docker.io` (Docker Hub's API
//!   host) is **not** aliased: ggcr, Docker and pack all treat it as a distinct registry.
//! * **`library/`** is prepended to single-component repositories on Docker Hub, whether the
//!   registry was written or not (`docker.io/ubuntu` → `index.docker.io/library/ubuntu`).
//! * **Digests.** Only `sha256` is accepted (it is the only algorithm registries and the
//!   OCI layouts cnbx writes use); the hex part must be 64 lower-case hex digits.
//! * **Length.** The name may be at most 255 characters once normalised as Docker does
//!   (`ubuntu` counts as `docker.io/library/ubuntu`; other registries as written), so a
//!   name is accepted exactly when the reference it prints as is.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use cnbx_fs::excerpt;

/// The registry a reference without one lives on (pack's and ggcr's spelling of Docker Hub).
pub const DOCKER_HUB_REGISTRY: &str = "index.docker.io";

/// The tag `Display` prints when a reference has neither tag nor digest.
pub const DEFAULT_TAG: &str = "latest";

/// Longest accepted name (registry and repository, normalised as Docker does), as in Docker.
const NAME_TOTAL_LENGTH_MAX: usize = 255;

/// Docker's own spelling of Docker Hub's registry, the one its length rule counts.
const DOCKER_HUB_SHORT: &str = "docker.io";

/// Longest accepted tag.
const TAG_LENGTH_MAX: usize = 128;

const TAG_RULE: &str = "a tag may contain letters, digits, '_', '.' and '-', must not start \
                        with '.' or '-' and may be at most 128 characters long";

const COMPONENT_RULE: &str = "a repository path component may contain lower-case letters and \
                              digits separated by '.', '_', '__' or dashes, and must start and \
                              end with a letter or digit";

/// Why a string is not a valid image reference. The message quotes the reference (and the
/// reason its parts) as excerpts ([`cnbx_fs::excerpt`]): a reference may come from a file
/// someone else wrote.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid image reference '{}': {reason}", excerpt(reference))]
pub struct RefError {
    /// The reference as the user wrote it.
    pub reference: String,
    /// What is wrong with it.
    pub reason: String,
}

impl RefError {
    /// Builds an error for `reference` with `reason`.
    pub fn new(reference: impl Into<String>, reason: impl Into<String>) -> Self {
        Self { reference: reference.into(), reason: reason.into() }
    }
}

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageRef {
    original: String,
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<String>,
}

impl ImageRef {
    /// Parses a reference. See the module docs for the rules.
    pub fn parse(s: &str) -> Result<Self, RefError> {
        let err = |reason: String| RefError::new(s, reason);
        if s.is_empty() {
            return Err(err("the reference is empty".into()));
        }
        if let Some(c) = s.chars().find(|c| c.is_whitespace() || c.is_control()) {
            return Err(err(format!("it contains {}, which is not allowed anywhere in a reference", describe_char(c))));
        }

        if looks_like_path(s) {
            return Err(err("it looks like a file path, not an image name \
                 ([REGISTRY/]REPOSITORY[:TAG][@DIGEST])"
                .into()));
        }

        let parts = split_reference(s);
        let digest = match parts.digest {
            Some(d) => Some(validate_digest(d).map_err(err)?),
            None => None,
        };
        let tag = match parts.tag {
            Some(t) => Some(validate_tag(t).map_err(err)?),
            None => None,
        };
        let name = parts.name;
        if name.is_empty() {
            return Err(err("the repository name is empty".into()));
        }
        // Early, before the parts are looked at: no name this long is short enough once
        // normalised (which shortens only `index.docker.io/` to `docker.io/`).
        if name.chars().count() > NAME_TOTAL_LENGTH_MAX + DOCKER_HUB_REGISTRY.len() - DOCKER_HUB_SHORT.len() {
            return Err(err(format!("the name is longer than {NAME_TOTAL_LENGTH_MAX} characters")));
        }

        let (registry, repository) = match name.split_once('/') {
            Some((first, rest)) if is_registry_component(first) => (normalize_host(first).map_err(err)?, rest),
            _ => (DOCKER_HUB_REGISTRY.to_owned(), name),
        };
        validate_repository(repository).map_err(err)?;
        let repository = if registry == DOCKER_HUB_REGISTRY && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository.to_owned()
        };
        // Docker measures the name once normalised, Docker Hub's spelled `docker.io/`
        // (whichever of its names was written) with `library/` added: `ubuntu` counts as
        // `docker.io/library/ubuntu`. Measured so, a name and the one it prints as agree.
        let normalized_len = if registry == DOCKER_HUB_REGISTRY {
            DOCKER_HUB_SHORT.len() + 1 + repository.len()
        } else {
            registry.len() + 1 + repository.len()
        };
        if normalized_len > NAME_TOTAL_LENGTH_MAX {
            return Err(err(format!("the name is longer than {NAME_TOTAL_LENGTH_MAX} characters")));
        }

        Ok(Self { original: s.to_owned(), registry, repository, tag, digest })
    }

    /// The reference exactly as given.
    pub fn original(&self) -> &str {
        &self.original
    }

    /// Normalised registry host (`index.docker.io`, `gcr.io`, `localhost:5000`).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// Repository path (`library/ubuntu`, `paketo/builder`).
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// Tag, if one was given.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// Digest (`sha256:…`), if one was given.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// `registry/repository`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// Whether the registry is Docker Hub (`index.docker.io`, also written `docker.io` or
    /// left out). `registry-1.docker.io` is a different registry string and does not count.
    pub fn is_docker_hub(&self) -> bool {
        self.registry == DOCKER_HUB_REGISTRY
    }

    /// Docker's short ("familiar") form: `ubuntu:22.04`, `paketo/builder`, `gcr.io/x/y:1`.
    ///
    /// Drops `index.docker.io/` and, for a two-component Docker Hub repository, `library/`.
    /// The tag and digest are kept as given (no `:latest` is added), so the familiar form
    /// parses back to the same reference. Unlike Docker, a Docker Hub repository whose
    /// namespace looks like a registry (`docker.io/a.b/c`, `docker.io/localhost/app`) keeps
    /// a `docker.io/` prefix for that reason.
    pub fn familiar(&self) -> String {
        let mut out = if self.is_docker_hub() {
            match self.repository.strip_prefix("library/") {
                Some(rest) if !rest.contains('/') => rest.to_owned(),
                _ => match self.repository.split_once('/') {
                    // `docker.io/localhost/app` must keep its registry, or it would read
                    // back as the registry `localhost`.
                    Some((first, _)) if is_registry_component(first) => {
                        format!("docker.io/{}", self.repository)
                    }
                    _ => self.repository.clone(),
                },
            }
        } else {
            self.name()
        };
        if let Some(t) = &self.tag {
            out.push(':');
            out.push_str(t);
        }
        if let Some(d) = &self.digest {
            out.push('@');
            out.push_str(d);
        }
        out
    }

    /// The same repository with `tag` (digest dropped).
    ///
    /// The tag is not validated (this cannot fail); use [`ImageRef::try_with_tag`] for a
    /// tag that comes from user input. `original()` becomes the original name (as the user
    /// spelled it) followed by `:tag`.
    pub fn with_tag(&self, tag: &str) -> Self {
        Self {
            original: format!("{}:{tag}", original_name(&self.original)),
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            tag: Some(tag.to_owned()),
            digest: None,
        }
    }

    /// Like [`ImageRef::with_tag`], but rejects an invalid tag.
    pub fn try_with_tag(&self, tag: &str) -> Result<Self, RefError> {
        let next = self.with_tag(tag);
        validate_tag(tag).map_err(|reason| RefError::new(next.original.clone(), reason))?;
        Ok(next)
    }

    /// The same repository pinned to `digest` (tag dropped).
    ///
    /// The digest is not validated (this cannot fail); use [`ImageRef::try_with_digest`]
    /// for a digest that comes from user input. `original()` becomes the original name (as
    /// the user spelled it) followed by `@digest`.
    pub fn with_digest(&self, digest: &str) -> Self {
        Self {
            original: format!("{}@{digest}", original_name(&self.original)),
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            tag: None,
            digest: Some(digest.to_owned()),
        }
    }

    /// Like [`ImageRef::with_digest`], but rejects an invalid digest.
    pub fn try_with_digest(&self, digest: &str) -> Result<Self, RefError> {
        let next = self.with_digest(digest);
        validate_digest(digest).map_err(|reason| RefError::new(next.original.clone(), reason))?;
        Ok(next)
    }

    /// Whether the registry is a loopback host (`localhost`, `127.0.0.0/8`, `[::1]`), which
    /// is spoken to over plain HTTP.
    ///
    /// With or without a port. Also true for `*.localhost` (RFC 6761 reserves these names
    /// for loopback, and ggcr speaks plain HTTP to them too) and for the IPv4-mapped
    /// loopback addresses `[::ffff:127.x.y.z]`. Other private addresses (RFC 1918), which
    /// ggcr also reaches over HTTP, are not loopback: mark those insecure explicitly.
    pub fn is_loopback_registry(&self) -> bool {
        is_loopback_host(split_port(&self.registry).0)
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        match (&self.tag, &self.digest) {
            (None, None) => f.write_str(":latest"),
            (tag, digest) => {
                if let Some(t) = tag {
                    write!(f, ":{t}")?;
                }
                if let Some(d) = digest {
                    write!(f, "@{d}")?;
                }
                Ok(())
            }
        }
    }
}

impl FromStr for ImageRef {
    type Err = RefError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// The pieces of a reference string, before validation.
struct Parts<'a> {
    name: &'a str,
    tag: Option<&'a str>,
    digest: Option<&'a str>,
}

/// Splits `name[:tag][@digest]`. The digest starts at the first `@`; the tag is the text
/// after a `:` in the last path component (a `:` before the last `/` is a registry port).
fn split_reference(s: &str) -> Parts<'_> {
    let (rest, digest) = match s.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (s, None),
    };
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[last_slash..].rfind(':') {
        Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
        None => (rest, None),
    };
    Parts { name, tag, digest }
}

/// The name part of a reference string as written (tag and digest removed).
fn original_name(s: &str) -> &str {
    split_reference(s).name
}

/// Whether `s` starts like a file system path (`/`, `./`, `../`, `~`) rather than a name.
pub(crate) fn looks_like_path(s: &str) -> bool {
    s.starts_with('/') || s.starts_with('~') || s == "." || s == ".." || s.starts_with("./") || s.starts_with("../")
}

fn describe_char(c: char) -> String {
    match c {
        ' ' => "a space".into(),
        '\t' => "a tab".into(),
        '\n' | '\r' => "a line break".into(),
        _ => format!("the character {c:?}"),
    }
}

/// Whether the first of several path components names a registry.
fn is_registry_component(first: &str) -> bool {
    first.contains(['.', ':']) || first.eq_ignore_ascii_case("localhost")
}

/// Splits `host[:port]`, where host may be a bracketed IPv6 literal.
fn split_port(registry: &str) -> (&str, Option<&str>) {
    if registry.starts_with('[') {
        if let Some(end) = registry.find(']') {
            let (host, rest) = registry.split_at(end + 1);
            return match rest.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => (host, None),
            };
        }
        return (registry, None);
    }
    match registry.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (registry, None),
    }
}

/// Validates a registry host and returns its normalised spelling (see the module docs).
pub(crate) fn normalize_host(registry: &str) -> Result<String, String> {
    let invalid = |why: &str| format!("invalid registry '{}': {why}", excerpt(registry));
    if registry.starts_with('[') {
        let Some(end) = registry.find(']') else {
            return Err(invalid("an IPv6 address must end with ']'"));
        };
        let rest = &registry[end + 1..];
        if !rest.is_empty() && !rest.starts_with(':') {
            return Err(invalid("only ':PORT' may follow an IPv6 address"));
        }
        if registry[1..end].parse::<Ipv6Addr>().is_err() {
            return Err(invalid("the text in brackets is not an IPv6 address"));
        }
    } else if registry.matches(':').count() > 1 {
        return Err(invalid("an IPv6 address must be written in brackets, e.g. '[::1]:5000'"));
    }
    let (host, port) = split_port(registry);
    if let Some(port) = port {
        if port.is_empty() {
            return Err(invalid("the port after ':' is empty"));
        }
        if !port.bytes().all(|b| b.is_ascii_digit()) || port.parse::<u16>().is_err() {
            return Err(invalid(&format!("the port '{}' is not a number between 0 and 65535", excerpt(port))));
        }
    }
    if !host.starts_with('[') {
        if host.is_empty() {
            return Err(invalid("the host name is empty"));
        }
        for label in host.split('.') {
            if !is_host_label(label) {
                return Err(invalid(&format!(
                    "'{}' is not a valid host name label (letters, digits and '-', \
                     not starting or ending with '-')",
                    excerpt(label)
                )));
            }
        }
    }
    let lowered = registry.to_ascii_lowercase();
    Ok(if lowered == "docker.io" { DOCKER_HUB_REGISTRY.to_owned() } else { lowered })
}

fn is_host_label(label: &str) -> bool {
    let bytes = label.as_bytes();
    !bytes.is_empty()
        && bytes.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        && bytes.first() != Some(&b'-')
        && bytes.last() != Some(&b'-')
}

/// Whether `host` (a name, an IPv4 address, or an IPv6 address in brackets) is this machine:
/// `localhost` or a name under it, `127.0.0.0/8`, `[::1]` (or an IPv4-mapped loopback
/// address). cnbx speaks plain HTTP to these.
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    if host == "localhost" || host.ends_with(".localhost") {
        return true;
    }
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inner
            .parse::<Ipv6Addr>()
            .is_ok_and(|ip| ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()));
    }
    host.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
}

/// Validates a tag and returns it.
pub(crate) fn validate_tag(tag: &str) -> Result<String, String> {
    if tag.is_empty() {
        return Err("the tag after ':' is empty".into());
    }
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut chars = tag.chars();
    let valid = chars.next().is_some_and(is_word)
        && chars.all(|c| is_word(c) || c == '.' || c == '-')
        && tag.len() <= TAG_LENGTH_MAX;
    if valid { Ok(tag.to_owned()) } else { Err(format!("invalid tag '{}': {TAG_RULE}", excerpt(tag))) }
}

/// Validates a digest (`sha256:` + 64 lower-case hex digits) and returns it.
fn validate_digest(digest: &str) -> Result<String, String> {
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return Err(format!(
            "invalid digest '{}': a digest looks like 'sha256:' followed by 64 hex digits",
            excerpt(digest)
        ));
    };
    if algorithm != "sha256" {
        return Err(format!(
            "unsupported digest algorithm '{}' in '{}': only sha256 is supported",
            excerpt(algorithm),
            excerpt(digest)
        ));
    }
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("invalid digest '{}': a sha256 digest has exactly 64 hex digits", excerpt(digest)));
    }
    if hex.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(format!("invalid digest '{}': the hex digits must be lower-case", excerpt(digest)));
    }
    Ok(digest.to_owned())
}

/// Validates a repository path (without registry).
fn validate_repository(repository: &str) -> Result<(), String> {
    if repository.is_empty() {
        return Err("the repository name after the registry is empty".into());
    }
    if repository.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err("repository name must be lowercase".into());
    }
    for component in repository.split('/') {
        if component.is_empty() {
            return Err("the repository name has an empty path component ('//' or a \
                        leading or trailing '/')"
                .into());
        }
        if !is_path_component(component) {
            return Err(format!("invalid repository path component '{}': {COMPONENT_RULE}", excerpt(component)));
        }
    }
    Ok(())
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
fn is_path_component(component: &str) -> bool {
    let is_alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = component.as_bytes();
    let mut i = 0;
    loop {
        // One or more alphanumerics.
        let start = i;
        while i < bytes.len() && is_alnum(bytes[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == bytes.len() {
            return true;
        }
        // A separator: '.', '_', '__' or one or more '-'.
        match bytes[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if bytes.get(i) == Some(&b'_') {
                    i += 1;
                }
            }
            b'-' => {
                while bytes.get(i) == Some(&b'-') {
                    i += 1;
                }
            }
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn d() -> String {
        format!("sha256:{HEX}")
    }

    /// (input, registry, repository, tag, digest, Display)
    type ParseCase<'a> = (String, &'a str, &'a str, Option<&'a str>, Option<&'a str>, String);

    #[test]
    fn parse_table() {
        let digest = d();
        let long_tag = "a".repeat(128);
        let cases: Vec<ParseCase<'_>> = vec![
            // Docker Hub, all spellings.
            (
                "ubuntu".into(),
                "index.docker.io",
                "library/ubuntu",
                None,
                None,
                "index.docker.io/library/ubuntu:latest".into(),
            ),
            (
                "ubuntu:22.04".into(),
                "index.docker.io",
                "library/ubuntu",
                Some("22.04"),
                None,
                "index.docker.io/library/ubuntu:22.04".into(),
            ),
            (
                "paketo/builder".into(),
                "index.docker.io",
                "paketo/builder",
                None,
                None,
                "index.docker.io/paketo/builder:latest".into(),
            ),
            (
                "docker.io/ubuntu".into(),
                "index.docker.io",
                "library/ubuntu",
                None,
                None,
                "index.docker.io/library/ubuntu:latest".into(),
            ),
            (
                "docker.io/library/ubuntu".into(),
                "index.docker.io",
                "library/ubuntu",
                None,
                None,
                "index.docker.io/library/ubuntu:latest".into(),
            ),
            (
                "index.docker.io/paketo/builder:base".into(),
                "index.docker.io",
                "paketo/builder",
                Some("base"),
                None,
                "index.docker.io/paketo/builder:base".into(),
            ),
            (
                "Docker.IO/paketo/run".into(),
                "index.docker.io",
                "paketo/run",
                None,
                None,
                "index.docker.io/paketo/run:latest".into(),
            ),
            // registry-1.docker.io is its own registry, and gets no library/ prefix.
            (
                "registry-1.docker.io/ubuntu".into(),
                "registry-1.docker.io",
                "ubuntu",
                None,
                None,
                "registry-1.docker.io/ubuntu:latest".into(),
            ),
            (
                "registry-1.docker.io/library/ubuntu:1".into(),
                "registry-1.docker.io",
                "library/ubuntu",
                Some("1"),
                None,
                "registry-1.docker.io/library/ubuntu:1".into(),
            ),
            // A first component without '.' or ':' is a Docker Hub namespace.
            (
                "myhost/app".into(),
                "index.docker.io",
                "myhost/app",
                None,
                None,
                "index.docker.io/myhost/app:latest".into(),
            ),
            ("a/b/c/d".into(), "index.docker.io", "a/b/c/d", None, None, "index.docker.io/a/b/c/d:latest".into()),
            // Other registries.
            ("gcr.io/p/app".into(), "gcr.io", "p/app", None, None, "gcr.io/p/app:latest".into()),
            ("GCR.io/p/app:v1".into(), "gcr.io", "p/app", Some("v1"), None, "gcr.io/p/app:v1".into()),
            (
                "registry.example.com/example/app".into(),
                "registry.example.com",
                "example/app",
                None,
                None,
                "registry.example.com/example/app:latest".into(),
            ),
            ("example.com:443/app".into(), "example.com:443", "app", None, None, "example.com:443/app:latest".into()),
            (
                "my-registry.example.com:5000/team/app:1.0-rc_1".into(),
                "my-registry.example.com:5000",
                "team/app",
                Some("1.0-rc_1"),
                None,
                "my-registry.example.com:5000/team/app:1.0-rc_1".into(),
            ),
            // localhost and loopback addresses.
            ("localhost/app".into(), "localhost", "app", None, None, "localhost/app:latest".into()),
            ("LocalHost/app".into(), "localhost", "app", None, None, "localhost/app:latest".into()),
            ("localhost:5000/app".into(), "localhost:5000", "app", None, None, "localhost:5000/app:latest".into()),
            (
                "localhost:5000/ns/app:tag".into(),
                "localhost:5000",
                "ns/app",
                Some("tag"),
                None,
                "localhost:5000/ns/app:tag".into(),
            ),
            (
                "127.0.0.1:5000/test/tiny".into(),
                "127.0.0.1:5000",
                "test/tiny",
                None,
                None,
                "127.0.0.1:5000/test/tiny:latest".into(),
            ),
            ("[::1]:5000/app:1".into(), "[::1]:5000", "app", Some("1"), None, "[::1]:5000/app:1".into()),
            ("[::1]/app".into(), "[::1]", "app", None, None, "[::1]/app:latest".into()),
            (
                "[2001:DB8::1]:5000/app".into(),
                "[2001:db8::1]:5000",
                "app",
                None,
                None,
                "[2001:db8::1]:5000/app:latest".into(),
            ),
            // A single component is never a registry: 'localhost:5000' is Docker Hub's
            // library/localhost with tag 5000.
            (
                "localhost:5000".into(),
                "index.docker.io",
                "library/localhost",
                Some("5000"),
                None,
                "index.docker.io/library/localhost:5000".into(),
            ),
            (
                "gcr.io".into(),
                "index.docker.io",
                "library/gcr.io",
                None,
                None,
                "index.docker.io/library/gcr.io:latest".into(),
            ),
            // Digests, with and without tag.
            (
                format!("ubuntu@{digest}"),
                "index.docker.io",
                "library/ubuntu",
                None,
                Some(digest.as_str()),
                format!("index.docker.io/library/ubuntu@{digest}"),
            ),
            (
                format!("gcr.io/p/app@{digest}"),
                "gcr.io",
                "p/app",
                None,
                Some(digest.as_str()),
                format!("gcr.io/p/app@{digest}"),
            ),
            (
                format!("gcr.io/p/app:v2@{digest}"),
                "gcr.io",
                "p/app",
                Some("v2"),
                Some(digest.as_str()),
                format!("gcr.io/p/app:v2@{digest}"),
            ),
            (
                format!("localhost:5000/app@{digest}"),
                "localhost:5000",
                "app",
                None,
                Some(digest.as_str()),
                format!("localhost:5000/app@{digest}"),
            ),
            // Repository component separators.
            (
                "a0/b.c_d__e---f/g-h".into(),
                "index.docker.io",
                "a0/b.c_d__e---f/g-h",
                None,
                None,
                "index.docker.io/a0/b.c_d__e---f/g-h:latest".into(),
            ),
            ("x0".into(), "index.docker.io", "library/x0", None, None, "index.docker.io/library/x0:latest".into()),
            // Tags: underscores, a leading underscore, maximum length.
            (
                "app:_t".into(),
                "index.docker.io",
                "library/app",
                Some("_t"),
                None,
                "index.docker.io/library/app:_t".into(),
            ),
            (
                format!("app:{long_tag}"),
                "index.docker.io",
                "library/app",
                Some(long_tag.as_str()),
                None,
                format!("index.docker.io/library/app:{long_tag}"),
            ),
        ];
        for (input, registry, repository, tag, digest, display) in &cases {
            let r = ImageRef::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(r.original(), input, "{input}");
            assert_eq!(r.registry(), *registry, "{input}");
            assert_eq!(r.repository(), *repository, "{input}");
            assert_eq!(r.tag(), *tag, "{input}");
            assert_eq!(r.digest(), *digest, "{input}");
            assert_eq!(r.to_string(), *display, "{input}");
            assert_eq!(r.name(), format!("{registry}/{repository}"), "{input}");
        }
    }

    #[test]
    fn parse_errors() {
        let digest = d();
        let cases: Vec<(String, &str)> = vec![
            ("".into(), "the reference is empty"),
            ("Ubuntu".into(), "repository name must be lowercase"),
            ("Foo/bar".into(), "repository name must be lowercase"),
            ("gcr.io/Project/app".into(), "repository name must be lowercase"),
            ("app:".into(), "the tag after ':' is empty"),
            (
                "app:.x".into(),
                "invalid tag '.x': a tag may contain letters, digits, '_', '.' and '-', must not start with '.' or '-' and may be at most 128 characters long",
            ),
            ("app:-x".into(), "invalid tag '-x'"),
            ("app:a+b".into(), "invalid tag 'a+b'"),
            (format!("app:{}", "a".repeat(129)), "invalid tag"),
            ("app@".into(), "invalid digest ''"),
            ("app@sha256".into(), "invalid digest 'sha256'"),
            ("app@sha256:abc".into(), "a sha256 digest has exactly 64 hex digits"),
            (format!("app@sha512:{HEX}{HEX}"), "unsupported digest algorithm 'sha512'"),
            (format!("app@sha256:{}", HEX.to_uppercase()), "the hex digits must be lower-case"),
            (format!("app@sha256:{}g", &HEX[1..]), "a sha256 digest has exactly 64 hex digits"),
            (format!("app@{digest}@{digest}"), "64 hex digits"),
            ("@sha256:x".into(), "invalid digest"),
            (format!("@{digest}"), "the repository name is empty"),
            (":tag".into(), "the repository name is empty"),
            ("gcr.io/".into(), "the repository name after the registry is empty"),
            ("a//b".into(), "empty path component"),
            ("a/b/".into(), "empty path component"),
            ("/a".into(), "it looks like a file path, not an image name"),
            ("./a".into(), "it looks like a file path"),
            ("../a:1".into(), "it looks like a file path"),
            ("~/a".into(), "it looks like a file path"),
            (".".into(), "it looks like a file path"),
            ("a/".into(), "empty path component"),
            ("a-/b".into(), "invalid repository path component 'a-'"),
            ("a/.b".into(), "invalid repository path component '.b'"),
            ("a___b".into(), "invalid repository path component 'a___b'"),
            ("a..b".into(), "invalid repository path component 'a..b'"),
            ("foo:bar:baz".into(), "invalid repository path component 'foo:bar'"),
            ("app name".into(), "it contains a space"),
            ("app\n".into(), "a line break"),
            ("localhost:/app".into(), "invalid registry 'localhost:': the port after ':' is empty"),
            ("localhost:50x/app".into(), "the port '50x' is not a number"),
            ("localhost:70000/app".into(), "the port '70000' is not a number between 0 and 65535"),
            ("::1/app".into(), "an IPv6 address must be written in brackets"),
            ("[::1/app".into(), "an IPv6 address must end with ']'"),
            ("[::g]:5000/app".into(), "the text in brackets is not an IPv6 address"),
            ("[::1]x/app".into(), "only ':PORT' may follow an IPv6 address"),
            ("-bad.example.com/app".into(), "'-bad' is not a valid host name label"),
            ("bad..example.com/app".into(), "'' is not a valid host name label"),
            ("bad_host.com/app".into(), "'bad_host' is not a valid host name label"),
            (format!("gcr.io/{}", "a".repeat(250)), "the name is longer than 255 characters"),
            // `docker.io/library/` is counted: 238 characters are one too many.
            ("a".repeat(238), "the name is longer than 255 characters"),
            (format!("index.docker.io/me/{}", "a".repeat(243)), "the name is longer than 255 characters"),
        ];
        for (input, reason) in &cases {
            let e = ImageRef::parse(input).expect_err(input);
            assert_eq!(&e.reference, input);
            assert!(e.reason.contains(reason), "{input}: got {:?}, want {reason:?}", e.reason);
        }
    }

    #[test]
    fn error_message_names_the_reference() {
        let e = ImageRef::parse("Paketo/Builder").expect_err("upper case");
        assert_eq!(e.to_string(), "invalid image reference 'Paketo/Builder': repository name must be lowercase");
    }

    #[test]
    fn the_longest_docker_hub_name_prints_as_a_name_that_parses() {
        let longest = "a".repeat(237);
        let r = ImageRef::parse(&longest).unwrap();
        assert_eq!(ImageRef::parse(&r.to_string()).unwrap().to_string(), r.to_string());
        let written = format!("docker.io/me/{}", "b".repeat(242));
        let r = ImageRef::parse(&written).unwrap();
        assert_eq!(ImageRef::parse(&r.to_string()).unwrap().to_string(), r.to_string());
    }

    #[test]
    fn long_references_are_quoted_as_excerpts() {
        let long = "a".repeat(100_000);
        let cases = [
            format!("{long}:{long}"),
            format!("app:{long}"),
            format!("app@sha256:{long}"),
            format!("app@{long}:{HEX}"),
            format!("app@{long}"),
            format!("{}/app", "A".repeat(100_000)),
            format!("x.io:{long}/app"),
            format!("bad_{long}.io/app"),
            format!("gcr.io/a/{long}-/b"),
            format!("{long}\u{1b}"),
        ];
        for input in &cases {
            let e = ImageRef::parse(input).expect_err("invalid");
            let shown = e.to_string();
            assert!(shown.len() < 600, "{} bytes: {}", shown.len(), &shown[..600]);
            assert!(!shown.contains('\u{1b}'));
        }
        assert_eq!(
            ImageRef::parse(&format!("app:{long}")).expect_err("long tag").to_string(),
            format!("invalid image reference 'app:{}…': invalid tag '{}…': {TAG_RULE}", "a".repeat(76), "a".repeat(80))
        );
    }

    #[test]
    fn familiar_forms() {
        let digest = d();
        let cases: Vec<(String, String)> = vec![
            ("ubuntu".into(), "ubuntu".into()),
            ("ubuntu:22.04".into(), "ubuntu:22.04".into()),
            ("docker.io/library/ubuntu:22.04".into(), "ubuntu:22.04".into()),
            ("index.docker.io/library/ubuntu".into(), "ubuntu".into()),
            ("index.docker.io/paketo/builder:base".into(), "paketo/builder:base".into()),
            ("library/a/b".into(), "library/a/b".into()),
            ("registry-1.docker.io/library/ubuntu".into(), "registry-1.docker.io/library/ubuntu".into()),
            ("GCR.IO/x/y:1".into(), "gcr.io/x/y:1".into()),
            ("localhost:5000/app".into(), "localhost:5000/app".into()),
            ("docker.io/localhost/app".into(), "docker.io/localhost/app".into()),
            ("index.docker.io/a.b/c:1".into(), "docker.io/a.b/c:1".into()),
            ("docker.io/library/localhost".into(), "localhost".into()),
            (format!("ubuntu@{digest}"), format!("ubuntu@{digest}")),
            (format!("gcr.io/x/y:1@{digest}"), format!("gcr.io/x/y:1@{digest}")),
        ];
        for (input, familiar) in &cases {
            let r = ImageRef::parse(input).expect(input);
            assert_eq!(&r.familiar(), familiar, "{input}");
            let back = ImageRef::parse(familiar).expect(familiar);
            assert_eq!(without_original(&back), without_original(&r), "{input}");
        }
    }

    #[test]
    fn with_tag_and_digest() {
        let digest = d();
        let r = ImageRef::parse(&format!("Docker.io/paketo/run:base@{digest}")).expect("valid");
        let t = r.with_tag("full");
        assert_eq!(t.to_string(), "index.docker.io/paketo/run:full");
        assert_eq!(t.original(), "Docker.io/paketo/run:full");
        assert_eq!(t.digest(), None);
        let p = ImageRef::parse("localhost:5000/app:1").expect("valid").with_digest(&digest);
        assert_eq!(p.to_string(), format!("localhost:5000/app@{digest}"));
        assert_eq!(p.original(), format!("localhost:5000/app@{digest}"));
        assert_eq!(p.tag(), None);

        assert!(r.try_with_tag("ok.1").is_ok());
        let e = r.try_with_tag("-no").expect_err("invalid tag");
        assert_eq!(e.reference, "Docker.io/paketo/run:-no");
        assert!(r.try_with_digest(&digest).is_ok());
        assert!(r.try_with_digest("sha256:00").is_err());
    }

    #[test]
    fn loopback_registries() {
        let yes = [
            "localhost/a",
            "localhost:5000/a",
            "LOCALHOST:5000/a",
            "registry.localhost/a",
            "registry.localhost:5000/a",
            "127.0.0.1/a",
            "127.0.0.1:5000/a",
            "127.1.2.3:80/a",
            "[::1]/a",
            "[::1]:5000/a",
            "[0:0:0:0:0:0:0:1]:5000/a",
            "[::ffff:127.0.0.1]:5000/a",
        ];
        for s in yes {
            assert!(ImageRef::parse(s).expect(s).is_loopback_registry(), "{s}");
        }
        let no = [
            "ubuntu",
            "localhost",
            "localhost.example.com/a",
            "mylocalhost/a",
            "notlocalhost.com/a",
            "128.0.0.1:5000/a",
            "10.0.0.1:5000/a",
            "[::2]:5000/a",
            "gcr.io/a",
        ];
        for s in no {
            assert!(!ImageRef::parse(s).expect(s).is_loopback_registry(), "{s}");
        }
    }

    #[test]
    fn from_str_and_docker_hub() {
        let r: ImageRef = "docker.io/x/y".parse().expect("valid");
        assert!(r.is_docker_hub());
        assert!(!ImageRef::parse("registry-1.docker.io/x/y").expect("valid").is_docker_hub());
    }

    fn without_original(r: &ImageRef) -> ImageRef {
        ImageRef { original: String::new(), ..r.clone() }
    }

    fn component() -> impl Strategy<Value = String> {
        "[a-z0-9]{1,4}((\\.|_|__|-{1,3})[a-z0-9]{1,4}){0,2}"
    }

    fn registry() -> impl Strategy<Value = Option<String>> {
        let host = prop_oneof![
            Just("localhost".to_owned()),
            Just("LocalHost".to_owned()),
            Just("docker.io".to_owned()),
            Just("index.docker.io".to_owned()),
            Just("registry-1.docker.io".to_owned()),
            Just("[::1]".to_owned()),
            Just("[2001:db8::a]".to_owned()),
            "[a-zA-Z0-9]{1,5}(\\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,3}[a-zA-Z0-9])?){1,2}",
            "[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}",
        ];
        proptest::option::of((host, proptest::option::of(0u16..=65535)).prop_map(|(h, port)| match port {
            Some(p) => format!("{h}:{p}"),
            None => h,
        }))
    }

    /// A first component that cannot be mistaken for a registry.
    fn namespace() -> impl Strategy<Value = String> {
        "[a-z0-9]{1,4}((_|__|-{1,3})[a-z0-9]{1,4}){0,2}"
    }

    fn reference() -> impl Strategy<Value = String> {
        (
            registry(),
            namespace(),
            prop_oneof![component(), Just("localhost".to_owned())],
            proptest::collection::vec(component(), 0..3),
            proptest::option::of("[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}"),
            proptest::option::of("[0-9a-f]{64}"),
        )
            .prop_map(|(reg, first, any_first, rest, tag, hex)| {
                let mut s = String::new();
                if let Some(r) = reg {
                    s.push_str(&r);
                    s.push('/');
                    s.push_str(&any_first);
                } else {
                    s.push_str(&first);
                }
                for c in rest {
                    s.push('/');
                    s.push_str(&c);
                }
                if let Some(t) = tag {
                    s.push(':');
                    s.push_str(&t);
                }
                if let Some(h) = hex {
                    s.push_str("@sha256:");
                    s.push_str(&h);
                }
                s
            })
    }

    proptest! {
        #[test]
        fn display_round_trips(s in reference()) {
            let r = ImageRef::parse(&s).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let displayed = r.to_string();
            let back = ImageRef::parse(&displayed).map_err(|e| TestCaseError::fail(e.to_string()))?;
            // Display adds the default tag; everything else survives unchanged.
            let expected = ImageRef {
                tag: r.tag.clone().or_else(|| r.digest.is_none().then(|| DEFAULT_TAG.to_owned())),
                ..without_original(&r)
            };
            prop_assert_eq!(without_original(&back), expected);
            prop_assert_eq!(back.to_string(), displayed);
            prop_assert_eq!(back.original(), back.to_string());
        }

        #[test]
        fn familiar_round_trips(s in reference()) {
            let r = ImageRef::parse(&s).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let back = ImageRef::parse(&r.familiar()).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(without_original(&back), without_original(&r));
        }

        #[test]
        fn fuzz_parse_printable(s in "\\PC{0,40}") {
            let _ = ImageRef::parse(&s);
        }
    }
}
