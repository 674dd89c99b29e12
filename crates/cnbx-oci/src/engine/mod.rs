//! The local container engine: the Docker daemon, or Podman's Docker-compatible service,
//! spoken to through the Docker Engine API as pack does.
//!
//! * [`EngineEndpoint`]: where the engine is (`DOCKER_HOST`, the current Docker context,
//!   the default socket; see [`endpoint`]).
//! * [`Engine::connect`] / [`Engine::probe`]: `GET /_ping` and `GET /version`, the API
//!   version negotiated (the lower of the engine's and [`MAX_API_VERSION`], refused below
//!   [`MIN_API_VERSION`]), and which engine it is.
//! * [`Engine::inspect`]: `GET /images/{name}/json`, the facts of an image
//!   ([`EngineImage`]); "not found" is `Ok(None)`.
//! * [`Engine::read_image`]: an image of the engine as a [`SourceImage`] whose layers are in
//!   the blob store, compressed as cnbx compresses layers and recorded in the layer cache by
//!   diffID. When the config and every layer are there already, nothing but the inspect is
//!   read from the engine; otherwise the image is exported (`GET /images/{id}/get`) and read
//!   as it streams by [`crate::docker_archive_read`].
//! * [`Engine::load`]: `POST /images/load` of a docker-archive written on the fly from an
//!   [`ImageToWrite`] (never held in memory or written to disk), leaving out the layers the
//!   engine already holds ([`HeldLayers`]), and checking the engine's answer.
//! * [`Engine::tag`]: `POST /images/{name}/tag`.
//!
//! # Bounds
//!
//! Connecting is bounded by [`EngineOptions::connect`] (5 s by default,
//! `CNBX_ENGINE_CONNECT_TIMEOUT`); every answer, and every transfer, by a stall timeout
//! ([`EngineOptions::stall`], 5 minutes by default, `CNBX_ENGINE_STALL_TIMEOUT`): a request
//! without an answer, or a transfer in which no byte moves either way, for that long fails.
//! Answers read whole are bounded ([`limits::MAX_DOCUMENT`] for JSON documents, 64 KiB for
//! error bodies, quoted as excerpts); the load's answer is read line by line, each line at
//! most 1 MiB and 64 MiB in all; an export is bounded by the archive reader's limits.
//!
//! # Trust
//!
//! The engine is trusted like the local store (it is the user's own), but what it sends is
//! checked as any image is: an export's layers must hash to the diffIDs of its config, and
//! must be the image the inspect described.

pub mod endpoint;
mod load;
mod read;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cnbx_fs::limits;
use futures_util::StreamExt;
use serde::Deserialize;

pub use endpoint::{EndpointSource, EngineAddress, EngineEndpoint, EngineEnv, TlsFiles};
pub use load::{HeldLayers, LoadOutcome};
pub use read::{EngineRead, ReadPlaces};

use crate::digest::Digest;
use crate::spec::Platform;

#[allow(unused_imports)]
use crate::image::{ImageToWrite, SourceImage};

/// The oldest Engine API version cnbx uses (Docker 1.12): every request it makes exists
/// there, and the engine skips the layers it already holds in a load.
pub const MIN_API_VERSION: ApiVersion = ApiVersion { major: 1, minor: 24 };

/// The newest Engine API version cnbx asks for: an engine that speaks a newer one answers
/// in this one.
pub const MAX_API_VERSION: ApiVersion = ApiVersion { major: 1, minor: 47 };

/// Environment variable overriding [`EngineOptions::connect`].
pub const CONNECT_TIMEOUT_ENV: &str = "CNBX_ENGINE_CONNECT_TIMEOUT";

/// Environment variable overriding [`EngineOptions::stall`].
pub const STALL_TIMEOUT_ENV: &str = "CNBX_ENGINE_STALL_TIMEOUT";

/// The most bytes of an error answer read (and it is quoted as an excerpt).
const MAX_ERROR_BODY: u64 = 64 * 1024;

/// An Engine API version (`1.41`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApiVersion {
    /// Major version (1).
    pub major: u32,
    /// Minor version.
    pub minor: u32,
}

impl ApiVersion {
    /// Parses `1.41`.
    pub fn parse(s: &str) -> Option<Self> {
        let (major, minor) = s.trim().split_once('.')?;
        Some(Self { major: major.parse().ok()?, minor: minor.parse().ok()? })
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// Which engine answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineKind {
    /// The Docker daemon (`dockerd`).
    Docker,
    /// Podman's Docker-compatible service.
    Podman,
}

/// How long cnbx waits on the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineOptions {
    /// Establishing a connection. Default 5 s.
    pub connect: Duration,
    /// A request without an answer, or a transfer without progress. Default 5 minutes (an
    /// engine may take long to store a large image before it answers a load).
    pub stall: Duration,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self { connect: Duration::from_secs(5), stall: Duration::from_secs(300) }
    }
}

impl EngineOptions {
    /// The defaults, overridden by [`CONNECT_TIMEOUT_ENV`] and [`STALL_TIMEOUT_ENV`] when they
    /// hold a duration (`30`, `30s`, `500ms`, `2m`).
    pub fn from_env() -> Self {
        let default = Self::default();
        let env = |name: &str| std::env::var(name).ok().and_then(|v| crate::registry::parse_duration(&v));
        Self {
            connect: env(CONNECT_TIMEOUT_ENV).unwrap_or(default.connect),
            stall: env(STALL_TIMEOUT_ENV).unwrap_or(default.stall),
        }
    }
}

/// Talking to the engine failed. Every message names the engine and its address, and says
/// what to do.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The endpoint's settings (`DOCKER_HOST`, a context, TLS files) cannot be used.
    #[error("the container engine at {address}: {reason}")]
    Config {
        /// The address or setting.
        address: String,
        /// Why.
        reason: String,
    },
    /// Nothing answers at the address: no socket, connection refused, no such host.
    #[error(
        "no container engine answers at {address} ({reason}); start Docker (or `podman system service`), or set \
         DOCKER_HOST to the address of a running engine"
    )]
    Unreachable {
        /// The address.
        address: String,
        /// What the system said.
        reason: String,
    },
    /// The socket exists but this user may not use it.
    #[error(
        "permission denied on the container engine's socket {address}; add your user to the group that owns it \
         (`docker` for Docker, then log in again), or set DOCKER_HOST to an engine you may use (a rootless one)"
    )]
    PermissionDenied {
        /// The address.
        address: String,
    },
    /// The engine did not answer, or a transfer stalled, for too long.
    #[error("{engine} did not answer {what} within {}s; check that the engine is healthy, or raise {STALL_TIMEOUT_ENV}", after.as_secs_f32())]
    Timeout {
        /// The engine (`the Docker daemon at unix:///var/run/docker.sock`).
        engine: String,
        /// The request.
        what: String,
        /// How long cnbx waited.
        after: Duration,
    },
    /// The engine speaks an API too old for cnbx.
    #[error(
        "{engine} speaks Engine API {found}, older than {MIN_API_VERSION}, the oldest cnbx uses; upgrade the engine"
    )]
    TooOld {
        /// The engine.
        engine: String,
        /// Its newest API version.
        found: ApiVersion,
    },
    /// The engine refuses every API version cnbx speaks.
    #[error(
        "{engine} only accepts Engine API {min} and later, newer than {MAX_API_VERSION}, the newest cnbx speaks; \
         use a newer cnbx"
    )]
    TooNew {
        /// The engine.
        engine: String,
        /// Its oldest API version.
        min: ApiVersion,
    },
    /// The engine answered a request with an error.
    #[error("{engine} refused {what}: {message}")]
    Refused {
        /// The engine.
        engine: String,
        /// The request (`the inspect of x`).
        what: String,
        /// The HTTP status.
        status: u16,
        /// The engine's message (an excerpt).
        message: String,
    },
    /// The connection broke in the middle of a request (the engine stopped or was killed).
    #[error(
        "{engine} closed the connection during {what} ({reason}); check that the engine is still running (its log \
         says why it stopped), then run the command again"
    )]
    Broken {
        /// The engine.
        engine: String,
        /// The request.
        what: String,
        /// What the connection reported.
        reason: String,
    },
    /// The engine answered with something that is not the Engine API's answer.
    #[error("{engine} answered {what} with something cnbx cannot read: {reason}")]
    Protocol {
        /// The engine.
        engine: String,
        /// The request.
        what: String,
        /// Why.
        reason: String,
    },
    /// A load was refused or failed in the engine (after it accepted the stream).
    #[error("{engine} could not load the image: {message}")]
    LoadFailed {
        /// The engine.
        engine: String,
        /// The engine's message (an excerpt).
        message: String,
    },
    /// The image changed in the engine while cnbx read it.
    #[error("{image} changed in {engine} while cnbx read it; run the command again")]
    Changed {
        /// The engine.
        engine: String,
        /// The image.
        image: String,
    },
    /// After a load, the engine does not hold the image under a tag cnbx sent.
    #[error("after the load, {tag} in {engine} is not the image cnbx sent ({reason}); run the command again")]
    NotLoaded {
        /// The engine.
        engine: String,
        /// The tag.
        tag: String,
        /// What differs.
        reason: String,
    },
    /// The image exported by the engine is not a valid image.
    #[error(transparent)]
    Archive(#[from] crate::docker_archive_read::ArchiveReadError),
    /// cnbx could not write the load stream (a layer blob missing or corrupt in its store).
    #[error("loading into {engine}")]
    Stream {
        /// The engine.
        engine: String,
        /// What failed.
        #[source]
        source: Box<crate::docker_archive::DockerArchiveError>,
    },
    /// A blob of the store could not be read or written.
    #[error(transparent)]
    Blob(#[from] crate::blobstore::BlobError),
}

impl EngineError {
    /// Whether no engine answers at all (nothing listens, or it does not answer in time):
    /// where a command may fall back to the cnbx store. Permission denied is not such a case.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, Self::Unreachable { .. } | Self::Timeout { .. })
    }
}

/// An image of the engine, as its inspect describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineImage {
    /// The engine's image ID (`sha256:<hex>`: the digest of the config for the Docker
    /// daemon's own store and for Podman).
    pub id: String,
    /// Its tags (`name:tag`, as the engine spells them).
    pub repo_tags: Vec<String>,
    /// Its registry digests (`name@sha256:...`).
    pub repo_digests: Vec<String>,
    /// `os`.
    pub os: String,
    /// `architecture`.
    pub architecture: String,
    /// `variant`, if any.
    pub variant: Option<String>,
    /// The diffIDs of its layers, base first (`RootFS.Layers`).
    pub diff_ids: Vec<Digest>,
    /// `Config.User`.
    pub user: String,
    /// `Config.Env`.
    pub env: Vec<String>,
    /// `Config.Labels`.
    pub labels: std::collections::BTreeMap<String, String>,
    /// `Config.WorkingDir`.
    pub working_dir: String,
}

impl EngineImage {
    /// The image's platform.
    pub fn platform(&self) -> Platform {
        Platform::new(&self.os, &self.architecture, self.variant.as_deref())
    }

    /// The config digest the ID is, when it is one (`sha256:<64 hex>`).
    pub fn id_digest(&self) -> Option<Digest> {
        self.id.parse().ok()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InspectDoc {
    id: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    #[serde(default)]
    repo_digests: Option<Vec<String>>,
    #[serde(default)]
    os: String,
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    variant: Option<String>,
    #[serde(default, rename = "RootFS")]
    root_fs: Option<RootFs>,
    #[serde(default)]
    config: Option<InspectConfig>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RootFs {
    #[serde(default)]
    layers: Option<Vec<String>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct InspectConfig {
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    env: Option<Vec<String>>,
    #[serde(default)]
    labels: Option<std::collections::BTreeMap<String, String>>,
    #[serde(default)]
    working_dir: Option<String>,
}

/// A connection to an engine (see the module docs). Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    endpoint: EngineEndpoint,
    http: reqwest::Client,
    /// `http://localhost` for a socket, `http(s)://host:port` for TCP.
    base: String,
    api: ApiVersion,
    kind: EngineKind,
    version: String,
    options: EngineOptions,
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("endpoint", &self.inner.endpoint.url())
            .field("kind", &self.inner.kind)
            .field("version", &self.inner.version)
            .field("api", &self.inner.api.to_string())
            .finish()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct VersionDoc {
    #[serde(default)]
    version: String,
    #[serde(default)]
    api_version: String,
    #[serde(default, rename = "MinAPIVersion")]
    min_api_version: Option<String>,
    #[serde(default)]
    components: Option<Vec<Component>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Component {
    #[serde(default)]
    name: String,
}

/// What to call the engine before it said which one it is.
fn unknown_engine(endpoint: &EngineEndpoint) -> String {
    format!("the container engine at {}", endpoint.url())
}

impl Engine {
    /// Connects to the engine at `endpoint`: asks it for its version, negotiates the API
    /// version and tells Docker from Podman (see the module docs).
    pub async fn connect(endpoint: EngineEndpoint, options: EngineOptions) -> Result<Self, EngineError> {
        let (http, base) = client(&endpoint, &options).await?;
        let probe = Probe { endpoint: &endpoint, http: &http, base: &base, options };
        let (status, headers, _) = probe.get("/_ping", "the ping", 1024).await?;
        if !(200..300).contains(&status) {
            return Err(EngineError::Protocol {
                engine: unknown_engine(&endpoint),
                what: "the ping".into(),
                reason: format!("HTTP status {status}"),
            });
        }
        let podman_header = headers.contains_key("libpod-api-version");
        let (status, _, body) = probe.get("/version", "the version request", limits::MAX_DOCUMENT).await?;
        let protocol = |reason: String| EngineError::Protocol {
            engine: unknown_engine(&endpoint),
            what: "the version request".into(),
            reason,
        };
        if status != 200 {
            return Err(protocol(format!("HTTP status {status}")));
        }
        let doc: VersionDoc =
            serde_json::from_slice(&body).map_err(|e| protocol(crate::spec::JsonError::from(e).to_string()))?;
        let podman = podman_header || doc.components.iter().flatten().any(|c| c.name.contains("Podman"));
        let kind = if podman { EngineKind::Podman } else { EngineKind::Docker };
        let engine = describe(&kind, &endpoint);
        let server = ApiVersion::parse(&doc.api_version).ok_or_else(|| {
            protocol(format!("its API version '{}' is not a version", cnbx_fs::excerpt(&doc.api_version)))
        })?;
        let min = doc.min_api_version.as_deref().and_then(ApiVersion::parse).unwrap_or(server);
        if server < MIN_API_VERSION {
            return Err(EngineError::TooOld { engine, found: server });
        }
        if min > MAX_API_VERSION {
            return Err(EngineError::TooNew { engine, min });
        }
        let api = server.min(MAX_API_VERSION);
        let inner = Inner { endpoint, http, base, api, kind, version: cnbx_fs::excerpt(&doc.version), options };
        Ok(Self { inner: Arc::new(inner) })
    }

    /// Whether an engine answers at `endpoint` within `within` (connecting, the ping and the
    /// version request together): for choosing between the engine and the cnbx store
    /// quickly. [`EngineError::is_unreachable`] tells "nobody there" from other failures.
    pub async fn probe(endpoint: EngineEndpoint, within: Duration) -> Result<Self, EngineError> {
        let options = EngineOptions { connect: within, ..EngineOptions::from_env() };
        let engine_name = unknown_engine(&endpoint);
        match tokio::time::timeout(within, Self::connect(endpoint.clone(), options)).await {
            Ok(result) => result,
            Err(_) => Err(EngineError::Timeout { engine: engine_name, what: "the ping".into(), after: within }),
        }
    }

    /// The endpoint.
    pub fn endpoint(&self) -> &EngineEndpoint {
        &self.inner.endpoint
    }

    /// Which engine it is.
    pub fn kind(&self) -> &EngineKind {
        &self.inner.kind
    }

    /// The engine's version (`20.10.24+dfsg1`, `4.3.1`).
    pub fn version(&self) -> &str {
        &self.inner.version
    }

    /// The API version used.
    pub fn api_version(&self) -> ApiVersion {
        self.inner.api
    }

    /// The timeouts used.
    pub fn options(&self) -> EngineOptions {
        self.inner.options
    }

    /// The engine for messages: `the Docker daemon at unix:///var/run/docker.sock`,
    /// `Podman at unix:///run/podman/podman.sock`.
    pub fn describe(&self) -> String {
        describe(&self.inner.kind, &self.inner.endpoint)
    }

    /// `<base>/v<api><path>`.
    fn url(&self, path: &str) -> String {
        format!("{}/v{}{path}", self.inner.base, self.inner.api)
    }

    /// The facts of image `name` (a reference as the engine spells it, or an ID), or `None`
    /// when the engine does not have it.
    pub async fn inspect(&self, name: &str) -> Result<Option<EngineImage>, EngineError> {
        let what = format!("the inspect of {}", cnbx_fs::excerpt(name));
        let path = format!("/images/{}/json", path_segment(name));
        let response = self.send(self.inner.http.get(self.url(&path)), &what).await?;
        let status = response.status().as_u16();
        if status == 404 {
            return Ok(None);
        }
        if status != 200 {
            return Err(self.refused(response, &what).await);
        }
        let body = self.read_body(response, limits::MAX_DOCUMENT, &what).await?;
        let doc: InspectDoc = serde_json::from_slice(&body)
            .map_err(|e| self.protocol(&what, crate::spec::JsonError::from(e).to_string()))?;
        let mut diff_ids = Vec::new();
        for layer in doc.root_fs.and_then(|r| r.layers).unwrap_or_default() {
            diff_ids.push(
                layer
                    .parse()
                    .map_err(|_| self.protocol(&what, format!("'{}' is not a diffID", cnbx_fs::excerpt(&layer))))?,
            );
        }
        let config = doc.config.unwrap_or_default();
        Ok(Some(EngineImage {
            id: doc.id,
            repo_tags: doc.repo_tags.unwrap_or_default(),
            repo_digests: doc.repo_digests.unwrap_or_default(),
            os: doc.os,
            architecture: doc.architecture,
            variant: doc.variant.filter(|v| !v.is_empty()),
            diff_ids,
            user: config.user.unwrap_or_default(),
            env: config.env.unwrap_or_default(),
            labels: config.labels.unwrap_or_default(),
            working_dir: config.working_dir.unwrap_or_default(),
        }))
    }

    /// Tags the image `source` (a reference or an ID) as `target` in the engine.
    pub async fn tag(&self, source: &str, target: &cnbx_refs::ImageRef) -> Result<(), EngineError> {
        let what = format!("tagging {} as {}", cnbx_fs::excerpt(source), target.original());
        let tag = target.tag().unwrap_or(cnbx_refs::reference::DEFAULT_TAG);
        let familiar = target.with_tag(tag).familiar();
        let repo = familiar.strip_suffix(&format!(":{tag}")).unwrap_or(&familiar).to_owned();
        let path = format!("/images/{}/tag", path_segment(source));
        let request = self.inner.http.post(self.url(&path)).query(&[("repo", repo.as_str()), ("tag", tag)]);
        let response = self.send(request, &what).await?;
        if !response.status().is_success() {
            return Err(self.refused(response, &what).await);
        }
        self.read_body(response, MAX_ERROR_BODY, &what).await?;
        Ok(())
    }

    /// Sends `request`, waiting at most the stall timeout for the answer's head.
    async fn send(&self, request: reqwest::RequestBuilder, what: &str) -> Result<reqwest::Response, EngineError> {
        let stall = self.inner.options.stall;
        match tokio::time::timeout(stall, request.send()).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => Err(self.transport_error(&e, what)),
            Err(_) => Err(EngineError::Timeout { engine: self.describe(), what: what.to_owned(), after: stall }),
        }
    }

    /// Reads a whole answer of at most `limit` bytes, each chunk within the stall timeout.
    async fn read_body(&self, response: reqwest::Response, limit: u64, what: &str) -> Result<Vec<u8>, EngineError> {
        read_bounded(response, limit, self.inner.options.stall).await.map_err(|e| self.body_error(e, what))
    }

    fn body_error(&self, e: BodyError, what: &str) -> EngineError {
        match e {
            BodyError::TooLarge(limit) => self.protocol(what, format!("the answer is larger than {limit} bytes")),
            BodyError::Stalled(after) => EngineError::Timeout { engine: self.describe(), what: what.to_owned(), after },
            BodyError::Transport(e) => self.transport_error(&e, what),
        }
    }

    /// The error for an answer with an error status: the engine's message, an excerpt.
    async fn refused(&self, response: reqwest::Response, what: &str) -> EngineError {
        let status = response.status().as_u16();
        let message = match read_bounded(response, MAX_ERROR_BODY, self.inner.options.stall).await {
            Ok(body) => error_message(&body),
            Err(_) => String::new(),
        };
        EngineError::Refused { engine: self.describe(), what: what.to_owned(), status, message }
    }

    fn protocol(&self, what: &str, reason: String) -> EngineError {
        EngineError::Protocol { engine: self.describe(), what: what.to_owned(), reason }
    }

    fn transport_error(&self, e: &reqwest::Error, what: &str) -> EngineError {
        transport_error(&self.inner.endpoint, &self.describe(), e, what, self.inner.options.stall)
    }
}

/// `the Docker daemon at <url>` / `Podman at <url>`.
fn describe(kind: &EngineKind, endpoint: &EngineEndpoint) -> String {
    match kind {
        EngineKind::Docker => format!("the Docker daemon at {}", endpoint.url()),
        EngineKind::Podman => format!("Podman at {}", endpoint.url()),
    }
}

/// `name` as a path segment: references and IDs only hold characters that need no escaping
/// in a path; anything else is percent-encoded.
fn path_segment(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/' | b':' | b'@') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The engine's message in an error body (`{"message": ...}` for Docker and Podman; for
/// Podman's many-line messages, the line about docker-archive, if there is one), as an
/// excerpt; the body itself, cut, when it is not JSON.
fn error_message(body: &[u8]) -> String {
    let message = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.get("message")
                .or_else(|| v.get("error"))
                .or_else(|| v.pointer("/errorDetail/message"))
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    let line = message
        .lines()
        .find_map(|l| l.trim().strip_prefix("* docker-archive: "))
        .map(str::to_owned)
        .unwrap_or_else(|| message.lines().next().unwrap_or("").to_owned());
    cnbx_fs::excerpt(line.trim())
}

/// The error for a request that got no answer.
fn transport_error(
    endpoint: &EngineEndpoint,
    engine: &str,
    e: &reqwest::Error,
    what: &str,
    stall: Duration,
) -> EngineError {
    let io = std::error::Error::source(e).and_then(find_io_error);
    if let Some(io) = io {
        match io.kind() {
            std::io::ErrorKind::PermissionDenied => return EngineError::PermissionDenied { address: endpoint.url() },
            std::io::ErrorKind::NotFound
            | std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::AddrNotAvailable
                if e.is_connect() =>
            {
                return EngineError::Unreachable { address: endpoint.url(), reason: io.to_string() };
            }
            _ => {}
        }
    }
    if e.is_timeout() {
        return EngineError::Timeout { engine: engine.to_owned(), what: what.to_owned(), after: stall };
    }
    if e.is_connect() {
        let reason = io.map_or_else(|| cnbx_fs::excerpt(&cnbx_fs::error_chain(e)), ToString::to_string);
        return EngineError::Unreachable { address: endpoint.url(), reason };
    }
    let reason = io.map_or_else(|| "the connection was closed".to_owned(), ToString::to_string);
    EngineError::Broken { engine: engine.to_owned(), what: what.to_owned(), reason }
}

/// The I/O error at the bottom of `e`'s chain.
fn find_io_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a std::io::Error> {
    let mut current = Some(e);
    let mut found = None;
    while let Some(err) = current {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            found = Some(io);
        }
        current = err.source();
    }
    found
}

/// Why an answer could not be read whole.
enum BodyError {
    TooLarge(u64),
    Stalled(Duration),
    Transport(reqwest::Error),
}

/// Reads `response`'s body, at most `limit` bytes, each chunk within `stall`.
async fn read_bounded(response: reqwest::Response, limit: u64, stall: Duration) -> Result<Vec<u8>, BodyError> {
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    loop {
        match tokio::time::timeout(stall, stream.next()).await {
            Err(_) => return Err(BodyError::Stalled(stall)),
            Ok(None) => return Ok(body),
            Ok(Some(Err(e))) => return Err(BodyError::Transport(e)),
            Ok(Some(Ok(chunk))) => {
                if body.len() as u64 + chunk.len() as u64 > limit {
                    return Err(BodyError::TooLarge(limit));
                }
                body.extend_from_slice(&chunk);
            }
        }
    }
}

/// The HTTP client for `endpoint`, and the base URL of its requests.
async fn client(endpoint: &EngineEndpoint, options: &EngineOptions) -> Result<(reqwest::Client, String), EngineError> {
    let builder = crate::http::client_builder()
        .no_proxy()
        .http1_only()
        .connect_timeout(options.connect)
        .user_agent(crate::http::USER_AGENT);
    let bad = |reason: String| EngineError::Config { address: endpoint.url(), reason };
    let (builder, base) = match &endpoint.address {
        EngineAddress::Unix(path) => (builder.unix_socket(path.clone()), "http://localhost".to_owned()),
        EngineAddress::Tcp { host, port } => {
            let host_part = if host.contains(':') { format!("[{host}]") } else { host.clone() };
            match &endpoint.tls {
                None => (builder, format!("http://{host_part}:{port}")),
                Some(tls) => {
                    let mut b = builder;
                    if let Some(ca) = &tls.ca {
                        let pem = read_pem(ca).await.map_err(&bad)?;
                        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                            bad(format!(
                                "{} is not a PEM certificate: {}",
                                ca.display(),
                                cnbx_fs::excerpt(&e.to_string())
                            ))
                        })?;
                        b = b.tls_certs_only(certs);
                    }
                    if let Some((cert, key)) = &tls.identity {
                        let mut pem = read_pem(key).await.map_err(&bad)?;
                        pem.push(b'\n');
                        pem.extend(read_pem(cert).await.map_err(&bad)?);
                        let identity = reqwest::Identity::from_pem(&pem).map_err(|e| {
                            bad(format!(
                                "{} and {} are not a PEM certificate and key: {}",
                                cert.display(),
                                key.display(),
                                cnbx_fs::excerpt(&e.to_string())
                            ))
                        })?;
                        b = b.identity(identity);
                    }
                    if !tls.verify {
                        b = b.danger_accept_invalid_certs(true);
                    }
                    (b, format!("https://{host_part}:{port}"))
                }
            }
        }
    };
    let http = builder.build().map_err(|e| bad(cnbx_fs::excerpt(&cnbx_fs::error_chain(&e))))?;
    Ok((http, base))
}

/// Reads a PEM file of the user's (following links, bounded).
async fn read_pem(path: &std::path::Path) -> Result<Vec<u8>, String> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        cnbx_fs::read_bounded_following(&path, limits::MAX_CONFIG_FILE, "a TLS certificate or key")
            .map_err(|e| cnbx_fs::error_chain(&e))
    })
    .await
    .map_err(|e| e.to_string())?
}

/// The requests made before the engine is known.
struct Probe<'a> {
    endpoint: &'a EngineEndpoint,
    http: &'a reqwest::Client,
    base: &'a str,
    options: EngineOptions,
}

impl Probe<'_> {
    async fn get(
        &self,
        path: &str,
        what: &str,
        limit: u64,
    ) -> Result<(u16, reqwest::header::HeaderMap, Vec<u8>), EngineError> {
        let engine = unknown_engine(self.endpoint);
        let stall = self.options.stall;
        let response = match tokio::time::timeout(stall, self.http.get(format!("{}{path}", self.base)).send()).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => return Err(transport_error(self.endpoint, &engine, &e, what, stall)),
            Err(_) => return Err(EngineError::Timeout { engine, what: what.to_owned(), after: stall }),
        };
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = read_bounded(response, limit, stall).await.map_err(|e| match e {
            BodyError::TooLarge(limit) => EngineError::Protocol {
                engine: engine.clone(),
                what: what.to_owned(),
                reason: format!("the answer is larger than {limit} bytes"),
            },
            BodyError::Stalled(after) => EngineError::Timeout { engine: engine.clone(), what: what.to_owned(), after },
            BodyError::Transport(e) => transport_error(self.endpoint, &engine, &e, what, stall),
        })?;
        Ok((status, headers, body))
    }
}

/// A stream of bytes from the engine as a blocking reader (for the archive reader, on a
/// blocking thread): each chunk must come within the stall timeout.
struct BlockingBody {
    rt: tokio::runtime::Handle,
    stream: futures_util::stream::BoxStream<'static, reqwest::Result<Bytes>>,
    current: Bytes,
    stall: Duration,
    /// Set when the stream failed (why), for the engine's error.
    failed: Arc<std::sync::Mutex<Option<BodyFailure>>>,
}

/// Why an export stream stopped.
#[derive(Debug)]
enum BodyFailure {
    Stalled(Duration),
    Transport(reqwest::Error),
}

impl std::io::Read for BlockingBody {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            let next = self.rt.block_on(async { tokio::time::timeout(self.stall, self.stream.next()).await });
            match next {
                Err(_) => {
                    *self.failed.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
                        Some(BodyFailure::Stalled(self.stall));
                    return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "the engine stopped sending"));
                }
                Ok(None) => return Ok(0),
                Ok(Some(Err(e))) => {
                    let shown = std::io::Error::other("the engine's connection broke");
                    *self.failed.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
                        Some(BodyFailure::Transport(e));
                    return Err(shown);
                }
                Ok(Some(Ok(chunk))) => self.current = chunk,
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current = self.current.slice(n..);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_versions_compare_numerically() {
        assert!(ApiVersion::parse("1.9").unwrap() < ApiVersion::parse("1.24").unwrap());
        assert_eq!(ApiVersion::parse("1.41").unwrap().to_string(), "1.41");
        assert!(ApiVersion::parse("x").is_none());
    }

    #[test]
    fn error_messages_are_the_engines_line_about_docker_archive() {
        let podman = br#"{"cause":"x","message":"failed to load image: payload does not match:\n * oci: no\n * docker-archive: loading tar component manifest.json: unexpected EOF\n * dir: no","response":500}"#;
        assert_eq!(error_message(podman), "loading tar component manifest.json: unexpected EOF");
        assert_eq!(error_message(br#"{"message":"No such image: x"}"#), "No such image: x");
        assert_eq!(error_message(b"plain\ntext"), "plain");
    }

    #[test]
    fn names_become_path_segments() {
        assert_eq!(path_segment("cnbx.test/b:1"), "cnbx.test/b:1");
        assert_eq!(path_segment("a b?"), "a%20b%3F");
    }
}
