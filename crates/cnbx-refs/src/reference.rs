//! Docker-style image references.
//!
//! CONTRACT (other crates depend on these signatures; keep them):
//! - `ImageRef::parse(s)` accepts `[REGISTRY/]REPO[:TAG][@sha256:HEX]`.
//! - The first path component is a registry when it contains `.` or `:` or is `localhost`.
//! - No registry, `docker.io` and `index.docker.io` all normalise to registry `index.docker.io`.
//! - A Docker Hub repository with one component gets `library/` prepended.
//! - Upper-case letters in the repository are an error naming the reference.
//! - `original()` keeps the user's spelling for messages.
//! - `Display` prints the fully qualified form `registry/repository[:tag][@digest]`,
//!   with tag `latest` when neither tag nor digest was given.

use std::fmt;

/// Why a string is not a valid image reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid image reference '{reference}': {reason}")]
pub struct RefError {
    /// The reference as the user wrote it.
    pub reference: String,
    /// What is wrong with it.
    pub reason: String,
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
        let _ = s;
        todo!("implemented by the refs work")
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

    /// Docker's short ("familiar") form: `ubuntu:22.04`, `paketo/builder`, `gcr.io/x/y:1`.
    pub fn familiar(&self) -> String {
        todo!("implemented by the refs work")
    }

    /// The same repository with `tag` (digest dropped).
    pub fn with_tag(&self, tag: &str) -> Self {
        let _ = tag;
        todo!("implemented by the refs work")
    }

    /// The same repository pinned to `digest` (tag dropped).
    pub fn with_digest(&self, digest: &str) -> Self {
        let _ = digest;
        todo!("implemented by the refs work")
    }

    /// Whether the registry is a loopback host (`localhost`, `127.0.0.0/8`, `[::1]`), which
    /// is spoken to over plain HTTP.
    pub fn is_loopback_registry(&self) -> bool {
        todo!("implemented by the refs work")
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
