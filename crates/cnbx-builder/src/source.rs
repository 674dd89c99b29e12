//! Where a module or the lifecycle comes from: what fetching needs ([`FetchContext`]),
//! locator classification (docs/pack-compatibility.md, *Locators*), and `file://` and
//! `http(s)://` URIs with a download cache.

use std::io::Write;
use std::path::{Path, PathBuf};

use cnbx_oci::progress::{Reporter, ReporterExt, Task, TaskKind};
use cnbx_oci::spec::Platform;
use cnbx_refs::{ImageLocation, Transport};
use sha2::{Digest as _, Sha256};

use crate::assemble::LayerService;
use crate::images::Images;

/// Why a module or lifecycle cannot be found or fetched.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The locator cannot be used (pack's message, or why cnbx does not support it).
    #[error("{0}")]
    Locator(String),
    /// A download failed.
    #[error("downloading '{uri}'")]
    Download {
        /// The URL.
        uri: String,
        /// What failed, and what to do.
        #[source]
        problem: DownloadError,
    },
    /// Reading or writing a file failed.
    #[error("{what}")]
    Io {
        /// What was being done.
        what: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// Why a download failed.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    /// No HTTP client could be set up.
    #[error("creating an HTTP client")]
    Client(#[source] reqwest::Error),
    /// The request failed twice.
    #[error("the request failed (is the network available? Download it yourself and use the local file)")]
    Unreachable(#[source] reqwest::Error),
    /// No answer, or no data, for the stall timeout (twice for the answer).
    #[error(
        "no answer and no data for {} ms (the server or the network stalled; {} sets how long cnbx waits)",
        after.as_millis(),
        cnbx_oci::registry::STALL_TIMEOUT_ENV
    )]
    Stalled {
        /// The stall timeout.
        after: std::time::Duration,
    },
    /// The server answered with an error status.
    #[error("the server answered {0}")]
    Status(reqwest::StatusCode),
    /// The content is larger than cnbx reads.
    #[error(
        "it is larger than {limit} bytes; if it is genuine, raise the limit with {}=<bytes>",
        cnbx_fs::limits::MAX_UNPACKED_SIZE_ENV
    )]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// The content stopped arriving.
    #[error("receiving the content")]
    Transfer(#[source] reqwest::Error),
}

impl SourceError {
    fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io { what: what.into(), source }
    }
}

/// What fetching modules and the lifecycle needs.
#[derive(Clone, Copy)]
pub struct FetchContext<'a> {
    /// Image access, blob store and `CNBX_HOME`.
    pub images: &'a Images,
    /// Where layers are built (through the layer cache).
    pub layers: &'a LayerService,
    /// The builder.toml directory (relative locators).
    pub base_dir: &'a Path,
    /// The build image's platform (package images are fetched for it).
    pub platform: &'a Platform,
    /// Messages.
    pub reporter: &'a dyn Reporter,
}

impl std::fmt::Debug for FetchContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FetchContext").field("base_dir", &self.base_dir).field("platform", &self.platform).finish()
    }
}

/// What a locator points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Located {
    /// A local directory.
    Dir(PathBuf),
    /// A local file: a tar, a gzipped tar, or a `.cnb` (tar holding an OCI layout).
    File(PathBuf),
    /// An image, spelled for [`crate::images::Images::get`] (`NAME` or `oci:<DIR>[:<TAG>]`).
    Image(String),
}

fn registry_unsupported(uri: &str) -> SourceError {
    SourceError::Locator(format!(
        "'{uri}' refers to a buildpack registry; buildpack registries are not supported by cnbx; use docker://<image> \
         (the buildpackage image) or a local path instead"
    ))
}

/// `^[a-z0-9\-\.]+\/[a-z0-9\-\.]+(?:@<version>)?$`: pack's registry shorthand.
fn is_registry_shorthand(s: &str) -> bool {
    let (name, version) = match s.split_once('@') {
        Some((n, v)) => (n, Some(v)),
        None => (s, None),
    };
    if version.is_some_and(|v| v.is_empty() || v.contains('@')) {
        return false;
    }
    let part = |p: &str| {
        !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
    };
    matches!(name.split_once('/'), Some((ns, n)) if part(ns) && part(n))
}

/// Whether `s` matches `^.+:/.*`.
fn has_scheme(s: &str) -> bool {
    s.find(":/").is_some_and(|i| i > 0)
}

/// Decodes `%XX` escapes.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Some(v) = std::str::from_utf8(&b[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The local path of a `file://` URI (unescaped; relative paths against the current
/// directory, as pack resolves them).
pub(crate) fn file_uri_path(uri: &str) -> Result<PathBuf, SourceError> {
    let rest = &uri["file://".len()..];
    let path = PathBuf::from(unescape(rest));
    if path.is_absolute() {
        return Ok(path);
    }
    let cwd = std::env::current_dir()
        .map_err(|e| SourceError::io(format!("resolving '{uri}' against the current directory"), e))?;
    Ok(cwd.join(path))
}

fn local(path: PathBuf, uri: &str) -> Result<Located, SourceError> {
    match std::fs::metadata(&path) {
        Ok(m) if m.is_dir() => Ok(Located::Dir(path)),
        Ok(_) => Ok(Located::File(path)),
        Err(e) => Err(SourceError::io(format!("reading '{uri}' ({})", path.display()), e)),
    }
}

/// Classifies `uri` (non-empty) as pack does and makes it local (downloading URLs).
pub(crate) async fn locate(ctx: &FetchContext<'_>, uri: &str) -> Result<Located, SourceError> {
    if uri == "from=builder" {
        return Err(SourceError::Locator("error reading from=builder: invalid locator: FromBuilderLocator".into()));
    }
    if uri.starts_with("urn:cnb:builder:") || uri.starts_with("from=builder:") {
        return Err(SourceError::Locator(format!("'{uri}' is not a valid identifier")));
    }
    if uri.starts_with("urn:cnb:registry:") {
        return Err(registry_unsupported(uri));
    }
    if matches!(ImageLocation::spelled_transport(uri), Some(Transport::OciLayout | Transport::DockerArchive)) {
        return Ok(Located::Image(uri.to_owned()));
    }
    if has_scheme(uri) {
        if let Some(name) = ImageLocation::strip_docker_scheme(uri)
            && cnbx_refs::ImageRef::parse(name).is_ok()
        {
            return Ok(Located::Image(name.to_owned()));
        }
        return uri_to_local(ctx, uri).await;
    }
    let candidate = ctx.base_dir.join(uri);
    if candidate.exists() {
        return local(candidate, uri);
    }
    if is_registry_shorthand(uri) {
        return Err(registry_unsupported(uri));
    }
    if cnbx_refs::ImageRef::parse(uri).is_ok() {
        return Ok(Located::Image(uri.to_owned()));
    }
    Err(SourceError::Locator(format!(
        "invalid locator: InvalidLocator ('{uri}' is not an existing path relative to {}, a URL, or an image name)",
        ctx.base_dir.display()
    )))
}

/// A `file://`, `http://` or `https://` URI, or a plain path (relative to `base_dir`), as a
/// local directory or file.
pub(crate) async fn uri_to_local(ctx: &FetchContext<'_>, uri: &str) -> Result<Located, SourceError> {
    if !has_scheme(uri) {
        return local(ctx.base_dir.join(uri), uri);
    }
    let scheme = uri.split(':').next().unwrap_or_default().to_ascii_lowercase();
    match scheme.as_str() {
        "file" => local(file_uri_path(uri)?, uri),
        "http" | "https" => Ok(Located::File(download(ctx, uri).await?)),
        _ => Err(SourceError::Locator(format!("unsupported protocol '{scheme}' in URI '{uri}'"))),
    }
}

fn download_err(uri: &str, problem: DownloadError) -> SourceError {
    SourceError::Download { uri: uri.to_owned(), problem }
}

/// The HTTP client of downloads: the registries' connect timeout
/// ([`cnbx_oci::registry::CONNECT_TIMEOUT_ENV`]), no `Referer`, and redirects that go over
/// HTTPS, or over plain HTTP only to the host `uri` names or a loopback host (a download the
/// user named in clear text stays on that host, and one named over HTTPS is never downgraded
/// to another host).
fn download_client(uri: &str, timeouts: cnbx_oci::registry::Timeouts) -> reqwest::Result<reqwest::Client> {
    let named = reqwest::Url::parse(uri).ok().and_then(|u| u.host_str().map(str::to_ascii_lowercase));
    cnbx_oci::http::network_client(timeouts.connect, move |next| {
        let allowed = match (next.scheme(), next.host_str()) {
            ("https", Some(_)) => true,
            ("http", Some(host)) => {
                cnbx_refs::reference::is_loopback_host(host) || named.as_deref() == Some(&host.to_ascii_lowercase())
            }
            _ => false,
        };
        (!allowed).then(|| {
            format!(
                "refusing a redirect to {} over plain HTTP (to a host the URL does not name)",
                cnbx_fs::excerpt(next.as_str())
            )
        })
    })
}

/// Downloads `uri` into the download cache (`<hex sha256(uri)>` + `.etag`), revalidating a
/// cached copy with `If-None-Match`. One retry on a transport error or a request without an
/// answer. Waiting is bounded as for registries ([`cnbx_oci::registry::Timeouts`]): the
/// connect timeout for connecting, the stall timeout for the answer and for each chunk of
/// the content.
pub(crate) async fn download(ctx: &FetchContext<'_>, uri: &str) -> Result<PathBuf, SourceError> {
    let dir = ctx.images.home().download_cache_dir();
    fs_err::create_dir_all(&dir).map_err(|e| SourceError::io("creating the download cache".to_owned(), e))?;
    let key = hex::encode(Sha256::digest(uri.as_bytes()));
    let path = dir.join(&key);
    let etag_path = dir.join(format!("{key}.etag"));
    let etag = if path.is_file() {
        cnbx_fs::read_bounded(&etag_path, 4096, "an ETag").ok().and_then(|b| String::from_utf8(b).ok())
    } else {
        None
    };
    ctx.reporter.info(&format!("Downloading from '{uri}'"));
    let timeouts = cnbx_oci::registry::Timeouts::from_env();
    let stall = timeouts.stall;
    let client = download_client(uri, timeouts).map_err(|e| download_err(uri, DownloadError::Client(e)))?;
    let send = || async {
        let mut req = client.get(uri);
        if let Some(tag) = &etag {
            req = req.header(reqwest::header::IF_NONE_MATCH, tag.trim());
        }
        match tokio::time::timeout(stall, req.send()).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => Err(DownloadError::Unreachable(e)),
            Err(_) => Err(DownloadError::Stalled { after: stall }),
        }
    };
    let resp = match send().await {
        Ok(r) => r,
        Err(_) => match send().await {
            Ok(r) => r,
            // Offline (or the server is gone): a copy downloaded before is better than failing.
            Err(e) if path.is_file() => {
                ctx.reporter.warn(&format!(
                    "could not revalidate '{uri}' ({}); using the copy downloaded before",
                    cnbx_fs::error_chain(&e)
                ));
                return Ok(path);
            }
            Err(e) => return Err(download_err(uri, e)),
        },
    };
    if resp.status() == reqwest::StatusCode::NOT_MODIFIED && path.is_file() {
        return Ok(path);
    }
    if !resp.status().is_success() {
        return Err(download_err(uri, DownloadError::Status(resp.status())));
    }
    let new_etag = resp.headers().get(reqwest::header::ETAG).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let limit = cnbx_fs::limits::max_unpacked_size();
    if resp.content_length().is_some_and(|n| n > limit) {
        return Err(download_err(uri, DownloadError::TooLarge { limit }));
    }
    let mut tmp = cnbx_fs::AtomicFile::new_in(&dir)
        .map_err(|e| SourceError::io("creating a file in the download cache".to_owned(), e))?;
    let mut resp = resp;
    let task = Task {
        id: format!("download {uri}"),
        label: uri.to_owned(),
        kind: TaskKind::Pull,
        total: resp.content_length(),
    };
    ctx.reporter.start(&task);
    let copied: Result<(), SourceError> = async {
        let mut received: u64 = 0;
        loop {
            let chunk = tokio::time::timeout(stall, resp.chunk())
                .await
                .map_err(|_| download_err(uri, DownloadError::Stalled { after: stall }))?;
            match chunk {
                Ok(Some(bytes)) => {
                    received += bytes.len() as u64;
                    if received > limit {
                        return Err(download_err(uri, DownloadError::TooLarge { limit }));
                    }
                    tmp.write_all(&bytes).map_err(|e| SourceError::io("writing to the download cache", e))?;
                    ctx.reporter.advance(&task.id, bytes.len() as u64);
                }
                Ok(None) => return Ok(()),
                Err(e) => return Err(download_err(uri, DownloadError::Transfer(e))),
            }
        }
    }
    .await;
    ctx.reporter.finish(&task.id);
    copied?;
    tmp.commit(&path).map_err(|e| SourceError::io("storing the download".to_owned(), e))?;
    match new_etag {
        Some(tag) => {
            let _ = cnbx_fs::write_atomic(&etag_path, tag.as_bytes());
        }
        None => {
            let _ = std::fs::remove_file(&etag_path);
        }
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_shorthand() {
        assert!(is_registry_shorthand("paketo-buildpacks/go"));
        assert!(is_registry_shorthand("paketo-buildpacks/go@1.2.3"));
        assert!(!is_registry_shorthand("gcr.io/x/bp:1"));
        assert!(!is_registry_shorthand("Paketo/go"));
        assert!(!is_registry_shorthand("go"));
    }

    #[test]
    fn schemes_and_unescaping() {
        assert!(has_scheme("file:///x"));
        assert!(has_scheme("docker://x"));
        assert!(!has_scheme("a/b"));
        assert!(!has_scheme(":/x"));
        assert_eq!(unescape("/a%20b/c%2"), "/a b/c%2");
        assert_eq!(file_uri_path("file:///tmp/a%20b").unwrap(), PathBuf::from("/tmp/a b"));
    }
}
