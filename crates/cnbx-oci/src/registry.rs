//! A registry client: fetch images (with platform selection from an index), pull their blobs
//! into a local [`BlobStore`] with every digest verified, and push images and indexes with
//! the exact manifest bytes that were hashed. cnbx speaks the distribution API itself, over
//! one `reqwest` client, so that every request and every read is bounded
//! ([`transport`](self::transport), [`token`](self::token)).
//!
//! * Transport: plain HTTP for loopback registries (`localhost`, `127.0.0.0/8`, `[::1]`) and
//!   for every `--insecure-registry HOST[:PORT]`; HTTPS otherwise. The same rule holds for
//!   every URL a registry names (redirects, token services, upload locations): plain HTTP to
//!   any other host is refused before a byte is sent. Docker Hub (`index.docker.io` in
//!   [`ImageRef`]) is spoken to at `registry-1.docker.io`.
//! * Auth: anonymous, basic, and bearer tokens from the token service the registry's
//!   challenge names, with credentials from Docker's `config.json` ([`crate::auth`]).
//!   Credentials go to the registry itself (never to another origin an upload location or
//!   a redirect names) and to its token service.
//! * Blobs are fetched from the image's registry only: the `urls` of a (foreign) layer's
//!   descriptor are never fetched. They stream through files or registry-to-registry, never
//!   whole into memory (configs, which are small JSON documents, excepted). Pushing skips
//!   blobs the registry has (HEAD), mounts blobs from another repository of the same
//!   registry, and otherwise uploads with one monolithic streaming PUT.
//! * Everything is bounded and verified: a manifest, index or config `Content-Length` over
//!   [`cnbx_fs::limits::MAX_DOCUMENT`] is refused before the body is read, and no more than that is
//!   ever read; token-service answers are read up to [`token::MAX_TOKEN_ANSWER`], error
//!   bodies up to [`transport::MAX_ERROR_BODY`]. Every manifest is checked against the
//!   digest it was asked by and the `Docker-Content-Digest` header, every blob against its
//!   descriptor's digest, and a blob is never stored with more bytes than its descriptor
//!   gives. A blob pushed from a local store, or copied from another registry, is hashed
//!   while it streams, and the upload fails, before the registry has all of it, when the
//!   content is not what its descriptor says.
//! * Transient failures (5xx, 408, 429, timeouts, dropped connections) are retried with
//!   exponential backoff, 4 attempts in all; every operation is content-addressed, so
//!   retrying is safe, and a push that failed uploads, when run again, only the blobs the
//!   registry does not have yet.
//! * Waiting is bounded ([`Timeouts`]): connecting by the connect timeout, and every
//!   request by the stall timeout: a request without an answer, a body chunk that does not
//!   come, or a transfer that moves no byte, for that long fails (and is retried). A
//!   transfer that keeps moving is never cut off, however long it takes. Both can be set
//!   with environment variables.
//!
//! Errors name the image and the registry, never credentials; text the registry sent (error
//! bodies, token-service answers, digests from headers) is quoted as an
//! [`excerpt`].

mod repo;
mod token;
mod transport;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use cnbx_fs::excerpt;
use cnbx_refs::ImageRef;
use futures_util::{StreamExt, TryStreamExt};
use reqwest::Url;

use crate::auth::{self, AuthError, Credential};
use crate::blobstore::{BlobError, BlobStore, BlobVerifier};
use crate::config::ImageConfig;
use crate::digest::Digest;
use crate::image::{BlobSource, ImageError, ImageToWrite, SourceImage, build_index, select_platform};
use crate::progress::{Reporter, Task, TaskKind};
use crate::spec::{Descriptor, Index, JsonError, Manifest, Platform, Raw, media_type};

use self::repo::{Access, BlobTask, Repo};

/// The API host of Docker Hub.
const DOCKER_HUB_API_HOST: &str = "registry-1.docker.io";

/// How many blobs are transferred at once.
const CONCURRENT_TRANSFERS: usize = 3;

/// Options for [`RegistryClient::new`].
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// Registries (`HOST[:PORT]`) spoken to over plain HTTP, besides loopback ones. An entry
    /// without a port matches every port of that host.
    pub insecure_registries: Vec<String>,
    /// Directory holding Docker's `config.json`; `None` means `$DOCKER_CONFIG`, else
    /// `~/.docker`.
    pub docker_config_dir: Option<PathBuf>,
}

/// Environment variable overriding [`Timeouts::connect`] (seconds, or a number with `ms`,
/// `s` or `m`).
pub const CONNECT_TIMEOUT_ENV: &str = "CNBX_REGISTRY_CONNECT_TIMEOUT";

/// Environment variable overriding [`Timeouts::stall`] (seconds, or a number with `ms`, `s`
/// or `m`).
pub const STALL_TIMEOUT_ENV: &str = "CNBX_REGISTRY_STALL_TIMEOUT";

/// How long cnbx waits on a registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Establishing a connection (TCP and TLS). Default 30 s.
    pub connect: Duration,
    /// A request without an answer, or a transfer without progress (no byte sent or
    /// received). Default 60 s.
    pub stall: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self { connect: Duration::from_secs(30), stall: Duration::from_secs(60) }
    }
}

impl Timeouts {
    /// The defaults, overridden by [`CONNECT_TIMEOUT_ENV`] and [`STALL_TIMEOUT_ENV`] when
    /// they hold a duration (an unreadable or zero value is ignored).
    pub fn from_env() -> Self {
        let default = Self::default();
        let env = |name: &str| std::env::var(name).ok().and_then(|v| parse_duration(&v));
        Self {
            connect: env(CONNECT_TIMEOUT_ENV).unwrap_or(default.connect),
            stall: env(STALL_TIMEOUT_ENV).unwrap_or(default.stall),
        }
    }
}

/// Parses `30` (seconds), `30s`, `500ms` or `2m`; `None` for anything else, or zero.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let digits = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let n: u64 = number.parse().ok()?;
    let d = match unit.trim() {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "m" => Duration::from_secs(n.checked_mul(60)?),
        _ => return None,
    };
    (!d.is_zero()).then_some(d)
}

/// What [`RegistryClient::push`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushOutcome {
    /// Digest of the manifest or index the tag points at.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// Its media type.
    pub media_type: String,
    /// Blobs uploaded.
    pub uploaded: usize,
    /// Blobs mounted from another repository of the same registry.
    pub mounted: usize,
    /// Blobs the registry already had.
    pub skipped: usize,
}

/// What cnbx was doing with a registry when an error happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Reading an image: its manifest, config or layers.
    Pull,
    /// Pushing an image or an index.
    Push,
    /// Checking whether an image can be read.
    Read,
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pull => "pulling",
            Self::Push => "pushing",
            Self::Read => "reading",
        })
    }
}

/// An error talking to a registry: which image, on which registry, during which
/// [`Operation`], and why ([`RegistryErrorKind`]). The message names the image and the
/// registry and says what to do; the error it comes from, if any, is its
/// [`source`](std::error::Error::source). Messages never contain credentials, and text the
/// registry sent is quoted only as an [`excerpt`].
#[derive(Debug)]
pub struct RegistryError {
    image: String,
    registry: String,
    operation: Operation,
    kind: Box<RegistryErrorKind>,
}

/// Why a registry operation failed. Strings are leaf messages: excerpts of what the
/// registry said, or digests.
#[derive(Debug)]
pub enum RegistryErrorKind {
    /// 401/403, or the token service refused.
    Auth(AuthNote),
    /// Docker's config or a credential helper failed.
    Credentials(AuthError),
    /// The HTTP clients for the registry could not be set up.
    Setup(Box<dyn std::error::Error + Send + Sync>),
    /// The registry could not be reached.
    Connect {
        /// What to try.
        hint: ConnectHint,
        /// The connection error.
        source: reqwest::Error,
    },
    /// A request failed on the way: a timeout, a dropped connection (retried before being
    /// reported).
    Request(reqwest::Error),
    /// A transfer failed on the way (retried before being reported).
    Transfer(std::io::Error),
    /// No answer and no progress for the stall timeout (retried before being reported).
    Stalled {
        /// The stall timeout.
        after: Duration,
    },
    /// The registry answered with an error status (5xx, 408, 429: retried before being
    /// reported).
    Server {
        /// HTTP status.
        code: u16,
        /// The body or error envelope, as an excerpt.
        message: String,
    },
    /// The manifest, repository or blob does not exist.
    NotFound(Missing),
    /// Downloaded content does not hash to its digest.
    DigestMismatch {
        /// The digest the content should have (an excerpt when the registry sent it).
        digest: String,
        /// What it hashed to.
        actual: String,
    },
    /// A manifest, index or config is larger than cnbx reads.
    TooLarge {
        /// Which document.
        what: Document,
        /// The limit in bytes.
        limit: u64,
    },
    /// A blob is not as large as its descriptor says.
    BlobSize {
        /// The blob.
        digest: Digest,
        /// How many bytes were sent or announced, and how many expected.
        problem: SizeProblem,
    },
    /// A manifest, index or config is not valid JSON of the expected shape.
    InvalidDocument {
        /// Which document.
        what: Document,
        /// The parse error.
        source: JsonError,
    },
    /// The image model is inconsistent, or has no manifest for the platform.
    Image(ImageError),
    /// Reading or writing the local blob store failed.
    Store {
        /// The blob.
        digest: Digest,
        /// What failed.
        source: BlobError,
    },
    /// The registry sent cnbx to a URL in clear text on a host that is neither loopback nor
    /// named with `--insecure-registry`; nothing was sent there.
    PlainHttp {
        /// The URL (an excerpt).
        url: String,
        /// Its `HOST[:PORT]`, as `--insecure-registry` takes it.
        host: String,
        /// How the registry named it.
        via: Via,
    },
    /// Anything else the registry or the client reported, as an excerpt.
    Protocol(String),
    /// [`RegistryClient::blob_stream`] was given an image that is not read from a registry.
    NotFromRegistry,
    /// [`RegistryClient::push`] was given no image.
    NothingToPush,
}

/// How a registry named a URL cnbx did not request ([`RegistryErrorKind::PlainHttp`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// A redirect.
    Redirect,
    /// The `realm` of its bearer challenge: its token service.
    TokenService,
    /// The `Location` of an upload it started.
    UploadLocation,
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Redirect => "a redirect",
            Self::TokenService => "its token service",
            Self::UploadLocation => "an upload location",
        })
    }
}

/// A note on the credentials an authentication error was met with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthNote {
    /// None were used, or nothing more is known.
    None,
    /// The token service refused, saying this (an excerpt).
    TokenService(String),
    /// `config.json` holds an identity token for the registry, which cnbx cannot use.
    IdentityToken,
    /// The credentials found were rejected.
    Rejected,
}

/// What to try when a registry cannot be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectHint {
    /// Nothing in particular.
    None,
    /// The host name could not be resolved.
    Dns,
    /// cnbx used HTTPS: the registry may serve plain HTTP.
    InsecureRegistry,
}

/// What exactly a registry does not have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Missing {
    /// The image (its manifest or repository).
    Image,
    /// What the registry's error says is missing (an excerpt).
    Reported(String),
    /// The manifest an index lists for a platform.
    IndexedManifest {
        /// The manifest.
        digest: Digest,
        /// The platform the index lists it for.
        platform: String,
    },
    /// A blob of the image.
    Blob(Digest),
    /// A blob of the image whose descriptor names URLs elsewhere (a foreign layer), which
    /// cnbx never fetches.
    ForeignBlob(Digest),
}

/// An image document cnbx reads from a registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Document {
    /// An image manifest.
    Manifest,
    /// An image index.
    Index,
    /// An image config.
    Config,
    /// A token service's answer.
    TokenAnswer,
}

/// How a blob's size disagrees with its descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeProblem {
    /// The registry announced (`Content-Length`) more bytes than the descriptor gives.
    Announced {
        /// Announced.
        announced: u64,
        /// The descriptor's size.
        expected: u64,
    },
    /// The registry sent more bytes than the descriptor gives.
    TooLong {
        /// The descriptor's size.
        expected: u64,
    },
    /// The registry sent fewer bytes than the descriptor gives.
    TooShort {
        /// Sent.
        sent: u64,
        /// The descriptor's size.
        expected: u64,
    },
}

impl fmt::Display for AuthNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => Ok(()),
            Self::TokenService(said) => write!(f, " (the token service said: {said})"),
            Self::IdentityToken => f.write_str(
                " (config.json holds an identity token for this registry, which cnbx cannot use yet; log in with a \
                 password or access token)",
            ),
            Self::Rejected => f.write_str(" (the credentials found for it were rejected)"),
        }
    }
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Image => Ok(()),
            Self::Reported(said) => write!(f, " ({said})"),
            Self::IndexedManifest { digest, platform } => {
                write!(f, ": its index lists manifest {digest} for {platform}, which is missing")
            }
            Self::Blob(digest) => write!(f, ": blob {digest} is missing"),
            Self::ForeignBlob(digest) => write!(
                f,
                ": blob {digest} is missing (its descriptor names URLs to fetch it from elsewhere, a foreign layer; cnbx \
                 fetches blobs only from the image's registry)"
            ),
        }
    }
}

impl fmt::Display for Document {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Manifest => "manifest",
            Self::Index => "index",
            Self::Config => "config",
            Self::TokenAnswer => "token service's answer",
        })
    }
}

impl fmt::Display for SizeProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Announced { announced, expected } => {
                write!(f, "the registry announced {announced} bytes, but its descriptor says {expected}")
            }
            Self::TooLong { expected } => {
                write!(f, "the registry sent more than the {expected} bytes its descriptor gives")
            }
            Self::TooShort { sent, expected } => {
                write!(f, "the registry sent {sent} bytes, but its descriptor says {expected}")
            }
        }
    }
}

impl fmt::Display for RegistryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use RegistryErrorKind as K;
        let (image, registry) = (&self.image, &self.registry);
        match &*self.kind {
            K::Auth(note) => write!(
                f,
                "cannot access {image}: authentication required for {registry}: log in with `docker login {registry}` \
                 (cnbx reads DOCKER_CONFIG or ~/.docker/config.json){note}"
            ),
            K::Credentials(_) => write!(f, "cannot get credentials for {image}"),
            K::Setup(_) => write!(f, "setting up a client for {image} on {registry} failed"),
            K::Connect { hint, .. } => {
                write!(f, "cannot connect to {registry} for {image}")?;
                match hint {
                    ConnectHint::None => Ok(()),
                    ConnectHint::Dns => write!(
                        f,
                        " (the host name of {registry} could not be resolved: check the registry name, and the network \
                         and DNS)"
                    ),
                    ConnectHint::InsecureRegistry => write!(
                        f,
                        " (cnbx used HTTPS: if {registry} serves plain HTTP, pass --insecure-registry {registry})"
                    ),
                }
            }
            K::Request(_) | K::Transfer(_) => write!(f, "network error talking to {registry} for {image}"),
            K::Stalled { after } => write!(
                f,
                "network error talking to {registry} for {image}: no answer and no progress for {} ms (the registry \
                 or the network stalled; {STALL_TIMEOUT_ENV} sets how long cnbx waits)",
                after.as_millis()
            ),
            K::Server { code, message } => write!(f, "{registry} answered HTTP {code} for {image}: {message}"),
            K::NotFound(missing) => write!(f, "{image} was not found on {registry}{missing}"),
            K::DigestMismatch { digest, actual } => write!(
                f,
                "blob {digest} of {image} failed digest verification: its content hashes to {actual}; the registry \
                 (or something between it and cnbx) served corrupt data"
            ),
            K::TooLarge { what: Document::TokenAnswer, limit } => write!(
                f,
                "{image}: the answer of the token service of {registry} is larger than {limit} bytes, the most cnbx \
                 reads of one"
            ),
            K::TooLarge { what, limit } => write!(
                f,
                "{image}: the {what} from {registry} is larger than {limit} bytes, the most cnbx reads for an image \
                 {what} (registries refuse larger ones)"
            ),
            K::BlobSize { digest, problem } => write!(
                f,
                "blob {digest} of {image} from {registry}: {problem}; the registry (or something between it and cnbx) \
                 served other content"
            ),
            K::InvalidDocument { what, .. } => write!(f, "{image}: the {what} from {registry} is invalid"),
            K::Image(e) => e.fmt(f),
            K::Store { digest, .. } => write!(f, "{image}: blob {digest} in the local store"),
            K::PlainHttp { url, host, via } => write!(
                f,
                "{registry} sent cnbx to {url} ({via}, for {image}) over plain HTTP; cnbx speaks plain HTTP only to \
                 loopback hosts and to hosts named with --insecure-registry: if you trust {host}, pass \
                 --insecure-registry {host}"
            ),
            K::Protocol(detail) => write!(f, "{} {image} on {registry} failed: {detail}", self.operation),
            K::NotFromRegistry => {
                write!(f, "{image} is not read from a registry, so its layers cannot be streamed from one")
            }
            K::NothingToPush => write!(f, "nothing to push to {image}"),
        }
    }
}

impl std::error::Error for RegistryError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        use RegistryErrorKind as K;
        match &*self.kind {
            K::Credentials(e) => Some(e),
            K::Setup(e) => Some(e.as_ref()),
            K::Connect { source, .. } | K::Request(source) => Some(source),
            K::Transfer(e) => Some(e),
            K::InvalidDocument { source, .. } => Some(source),
            // Shown as the image error itself, whose message names the image.
            K::Image(e) => e.source(),
            K::Store { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl RegistryError {
    /// `registry` as users write it ([`display_registry`]).
    fn new(
        image: impl Into<String>,
        registry: impl Into<String>,
        operation: Operation,
        kind: RegistryErrorKind,
    ) -> Self {
        Self { image: image.into(), registry: registry.into(), operation, kind: Box::new(kind) }
    }

    /// The image, as the user wrote it.
    pub fn image(&self) -> &str {
        &self.image
    }

    /// The registry, as users write it in `docker login` (`docker.io` for Docker Hub).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// What cnbx was doing.
    pub fn operation(&self) -> Operation {
        self.operation
    }

    /// Why it failed.
    pub fn kind(&self) -> &RegistryErrorKind {
        &self.kind
    }

    /// Whether retrying the same request may succeed.
    pub fn is_transient(&self) -> bool {
        match &*self.kind {
            RegistryErrorKind::Request(_) | RegistryErrorKind::Transfer(_) | RegistryErrorKind::Stalled { .. } => true,
            RegistryErrorKind::Server { code, .. } => *code >= 500 || *code == 408 || *code == 429,
            _ => false,
        }
    }
}

/// A registry client. Cheap to clone; clones share connections and tokens.
#[derive(Clone)]
pub struct RegistryClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient").field("options", &self.inner.options).finish_non_exhaustive()
    }
}

struct Inner {
    options: RegistryOptions,
    timeouts: Timeouts,
    config_dir: Option<PathBuf>,
    plain_http: transport::PlainHttp,
    /// The one HTTP client, or why it could not be made.
    http: Result<reqwest::Client, String>,
    conns: Mutex<HashMap<String, Conn>>,
    /// What each registry's `/v2/` asks for.
    challenges: Mutex<HashMap<String, token::Challenge>>,
    /// Bearer tokens by registry and scopes.
    tokens: Mutex<HashMap<(String, String), token::Token>>,
}

/// One registry: how to reach it, and the credentials cnbx found for it.
#[derive(Clone)]
struct Conn {
    http: reqwest::Client,
    /// The registry as image references name it (`index.docker.io` for Docker Hub).
    registry: String,
    /// `http(s)://HOST[:PORT]/` of its API.
    base: Url,
    /// A user name and password, if Docker's config has them.
    basic: Option<(String, String)>,
    plain_http: bool,
    identity_token: bool,
    /// [`Timeouts::stall`].
    stall: Duration,
}

/// What an error message needs to know.
#[derive(Clone)]
struct Ctx {
    image: String,
    registry: String,
    plain_http: bool,
    identity_token: bool,
    has_credentials: bool,
    operation: Operation,
}

impl Ctx {
    fn error(&self, kind: RegistryErrorKind) -> RegistryError {
        RegistryError::new(&self.image, &self.registry, self.operation, kind)
    }
}

/// How one blob reached the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Uploaded,
    Mounted,
    Skipped,
}

/// One blob to push.
enum PushBlob<'a> {
    Layer { descriptor: &'a Descriptor, source: &'a BlobSource },
    Config { raw: &'a Raw<serde_json::Value>, mount_from: Option<&'a ImageRef> },
}

impl PushBlob<'_> {
    fn digest(&self) -> &Digest {
        match self {
            Self::Layer { descriptor, .. } => &descriptor.digest,
            Self::Config { raw, .. } => &raw.digest,
        }
    }
}

impl RegistryClient {
    /// A client with the [`Timeouts`] of the environment ([`Timeouts::from_env`]); nothing is
    /// contacted until the first request.
    pub fn new(options: RegistryOptions) -> Self {
        Self::with_timeouts(options, Timeouts::from_env())
    }

    /// A client with these timeouts.
    pub fn with_timeouts(options: RegistryOptions, timeouts: Timeouts) -> Self {
        let config_dir = auth::docker_config_dir(options.docker_config_dir.as_deref());
        let plain_http = transport::PlainHttp::new(&options.insecure_registries);
        let http = transport::http_client(plain_http.clone(), timeouts).map_err(|e| cnbx_fs::error_chain(&e));
        Self {
            inner: Arc::new(Inner {
                options,
                timeouts,
                config_dir,
                plain_http,
                http,
                conns: Mutex::new(HashMap::new()),
                challenges: Mutex::new(HashMap::new()),
                tokens: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The options this client was made with.
    pub fn options(&self) -> &RegistryOptions {
        &self.inner.options
    }

    /// Whether `reference`'s registry is spoken to over plain HTTP.
    pub fn is_plain_http(&self, reference: &ImageRef) -> bool {
        self.inner.plain_http.registry(reference.registry())
    }

    /// The connection for `reference`'s registry, made (and its credentials read) on first use.
    async fn conn(&self, reference: &ImageRef) -> Result<Conn, RegistryError> {
        let registry = reference.registry().to_owned();
        if let Some(conn) = lock(&self.inner.conns).get(&registry) {
            return Ok(conn.clone());
        }
        let http = self.inner.http.clone().map_err(|e| setup_error(reference, RegistryErrorKind::Setup(e.into())))?;
        let dir = self.inner.config_dir.clone();
        let reg = registry.clone();
        let credential = tokio::task::spawn_blocking(move || auth::lookup(dir.as_deref(), &reg))
            .await
            .unwrap_or(Ok(Credential::Anonymous))
            .map_err(|e| setup_error(reference, RegistryErrorKind::Credentials(e)))?;
        let (basic, identity_token) = match credential {
            Credential::Anonymous => (None, false),
            Credential::Basic { username, password } => (Some((username, password)), false),
            Credential::IdentityToken => (None, true),
        };
        let plain_http = self.is_plain_http(reference);
        let scheme = if plain_http { "http" } else { "https" };
        let base = Url::parse(&format!("{scheme}://{}/", api_host(reference))).map_err(|e| {
            setup_error(reference, RegistryErrorKind::Protocol(format!("invalid registry address: {e}")))
        })?;
        let conn = Conn {
            http,
            registry: registry.clone(),
            base,
            basic,
            plain_http,
            identity_token,
            stall: self.inner.timeouts.stall,
        };
        Ok(lock(&self.inner.conns).entry(registry).or_insert(conn).clone())
    }

    /// `reference`'s repository, for `access`, with errors naming `display` (the image as the
    /// user named it) and `operation`.
    async fn repo(
        &self,
        reference: &ImageRef,
        display: &str,
        access: Access<'_>,
        operation: Operation,
    ) -> Result<Repo<'_>, RegistryError> {
        let conn = self.conn(reference).await?;
        let ctx = Ctx {
            image: display.to_owned(),
            registry: display_registry(&conn.registry),
            plain_http: conn.plain_http,
            identity_token: conn.identity_token,
            has_credentials: conn.basic.is_some(),
            operation,
        };
        Ok(Repo::new(self, conn, reference.repository(), access, ctx))
    }

    /// Reads the image `reference` (for `platform` when it is an index). `None` when the
    /// registry says the manifest or repository does not exist.
    pub async fn fetch_image(
        &self,
        reference: &ImageRef,
        platform: Option<&Platform>,
    ) -> Result<Option<SourceImage>, RegistryError> {
        let repo = self.repo(reference, reference.original(), Access::Pull, Operation::Pull).await?;
        let ctx = &repo.ctx;
        repo.authorize().await?;
        let Some(bytes) = repo.get_manifest(&manifest_reference(reference)).await? else { return Ok(None) };
        let display = reference.original().to_owned();
        let invalid = |what: Document| {
            move |e: serde_json::Error| {
                ctx.error(RegistryErrorKind::InvalidDocument { what, source: JsonError::from(e) })
            }
        };
        let image_error = |e: ImageError| ctx.error(RegistryErrorKind::Image(e));
        let (manifest_bytes, index_platform) = if is_index_document(&bytes) {
            let index: Raw<Index> = Raw::parse(bytes).map_err(invalid(Document::Index))?;
            let chosen = select_platform(&display, &index.value, platform).map_err(image_error)?.clone();
            let Some(bytes) = repo.get_manifest(chosen.digest.as_str()).await? else {
                return Err(ctx.error(RegistryErrorKind::NotFound(Missing::IndexedManifest {
                    digest: chosen.digest.clone(),
                    platform: excerpt(&platform_of(&chosen)),
                })));
            };
            (bytes, chosen.platform.clone())
        } else {
            (bytes, None)
        };
        let manifest: Raw<Manifest> = Raw::parse(manifest_bytes).map_err(invalid(Document::Manifest))?;
        let config_desc = manifest.value.config.clone();
        let config_bytes = repo.small_blob(&config_desc).await?;
        let config_raw: Raw<serde_json::Value> = Raw::parse(config_bytes).map_err(invalid(Document::Config))?;
        let config = ImageConfig::from_slice(&config_raw.bytes)
            .map_err(|source| image_error(ImageError::Config { image: display.clone(), source }))?;
        if let (Some(want), None) = (platform, &index_platform)
            && !want.matches(&config.platform())
        {
            return Err(image_error(ImageError::NoMatchingPlatform {
                image: display,
                platform: want.to_string(),
                available: excerpt(&config.platform().to_string()),
            }));
        }
        Ok(Some(SourceImage {
            display_name: display,
            manifest,
            config,
            config_raw,
            index_platform,
            source: BlobSource::Registry(reference.clone()),
        }))
    }

    /// The manifest or index document `reference` names, as the registry serves it (checked
    /// against the reference's digest when it has one); `None` when the registry does not have
    /// it.
    pub async fn fetch_document(&self, reference: &ImageRef) -> Result<Option<Vec<u8>>, RegistryError> {
        let repo = self.repo(reference, reference.original(), Access::Pull, Operation::Pull).await?;
        repo.authorize().await?;
        repo.get_manifest(&manifest_reference(reference)).await
    }

    /// Streams blob `desc` of the registry image `image` without storing it: the chunks as
    /// they arrive, each passed on only once it keeps the blob within its descriptor's size
    /// and digest, so that a stream which ends without an error was the blob (the last chunk
    /// completes the digest check; a short blob ends with an error). Waiting for the answer,
    /// and for each chunk, is bounded by the stall timeout. Not retried once the first chunk
    /// is out: the caller has consumed it.
    pub async fn blob_stream(
        &self,
        image: &SourceImage,
        desc: &Descriptor,
    ) -> Result<futures_util::stream::BoxStream<'static, Result<bytes::Bytes, RegistryError>>, RegistryError> {
        let BlobSource::Registry(reference) = &image.source else {
            return Err(RegistryError::new(
                &image.display_name,
                "",
                Operation::Pull,
                RegistryErrorKind::NotFromRegistry,
            ));
        };
        let repo = self.repo(reference, &image.display_name, Access::Pull, Operation::Pull).await?;
        repo.authorize().await?;
        let response = retry(|| repo.get_blob(desc)).await?;
        let from = format!("{} on {}", image.display_name, repo.ctx.registry);
        let verifier = BlobVerifier::new(desc.digest.clone(), desc.size, from);
        let stall = repo.stall();
        let state = (response, verifier, desc.clone(), repo.ctx, false);
        Ok(futures_util::stream::unfold(state, move |(mut response, mut verifier, desc, ctx, done)| async move {
            if done {
                return None;
            }
            let item = match transport::next_chunk(&mut response, stall, &ctx).await {
                Ok(Some(chunk)) => match verifier.update(&chunk) {
                    Ok(()) => Ok(chunk),
                    Err(e) => Err(verify_error(e, &desc, &ctx)),
                },
                Ok(None) => match verifier.finish() {
                    Ok(()) => return None,
                    Err(e) => Err(verify_error(e, &desc, &ctx)),
                },
                Err(e) => Err(e),
            };
            let done = item.is_err();
            Some((item, (response, verifier, desc, ctx, done)))
        })
        .boxed())
    }

    /// Downloads the blobs of `image` that `into` lacks, verifying each digest, and returns
    /// the same image reading its blobs from `into`.
    pub async fn pull_layers(
        &self,
        image: &SourceImage,
        into: &BlobStore,
        reporter: &dyn Reporter,
    ) -> Result<SourceImage, RegistryError> {
        let registry = match &image.source {
            BlobSource::Registry(reference) => display_registry(reference.registry()),
            BlobSource::Store(_) => String::new(),
        };
        let error = |kind| RegistryError::new(&image.display_name, &registry, Operation::Pull, kind);
        let store_err =
            |digest: &Digest, source: BlobError| error(RegistryErrorKind::Store { digest: digest.clone(), source });
        // The config is already in memory, checked against its digest.
        let config_digest = &image.manifest.value.config.digest;
        if image.config_raw.digest != *config_digest {
            return Err(error(RegistryErrorKind::DigestMismatch {
                digest: config_digest.to_string(),
                actual: image.config_raw.digest.to_string(),
            }));
        }
        into.put_bytes(&image.config_raw.bytes).map_err(|e| store_err(config_digest, e))?;
        let layers = &image.manifest.value.layers;
        match &image.source {
            BlobSource::Store(store) => {
                for layer in layers {
                    if store.root() != into.root() {
                        into.import_blob(store, layer).map_err(|e| store_err(&layer.digest, e))?;
                    }
                }
            }
            BlobSource::Registry(reference) => {
                let repo = self.repo(reference, &image.display_name, Access::Pull, Operation::Pull).await?;
                repo.authorize().await?;
                // A blob already there is checked first: a corrupt one is evicted and
                // downloaded again.
                let mut seen = HashSet::new();
                let mut missing: Vec<&Descriptor> = Vec::new();
                for layer in layers {
                    if seen.insert(&layer.digest)
                        && !into.has_valid(&layer.digest, Some(layer.size)).map_err(|e| store_err(&layer.digest, e))?
                    {
                        missing.push(layer);
                    }
                }
                let repo = &repo;
                futures_util::stream::iter(missing)
                    .map(|layer| repo.download_blob(layer, into, reporter))
                    .buffer_unordered(CONCURRENT_TRANSFERS)
                    .try_collect::<Vec<()>>()
                    .await?;
            }
        }
        Ok(SourceImage { source: BlobSource::Store(into.clone()), ..image.clone() })
    }

    /// Pushes one image tagged `target`, or, with several, each manifest by digest and then
    /// an OCI index tagged `target`. Returns the digest of what the tag points at.
    pub async fn push(
        &self,
        target: &ImageRef,
        images: &[ImageToWrite],
        reporter: &dyn Reporter,
    ) -> Result<PushOutcome, RegistryError> {
        if images.is_empty() {
            return Err(RegistryError::new(
                target.original(),
                display_registry(target.registry()),
                Operation::Push,
                RegistryErrorKind::NothingToPush,
            ));
        }
        let repo = self.repo(target, target.original(), Access::Push, Operation::Push).await?;
        repo.authorize().await?;

        // Every distinct blob once, layers first, then configs.
        let mut seen = HashSet::new();
        let mut blobs = Vec::new();
        for image in images {
            for layer in &image.layers {
                if seen.insert(layer.descriptor.digest.clone()) {
                    blobs.push(PushBlob::Layer { descriptor: &layer.descriptor, source: &layer.source });
                }
            }
        }
        for image in images {
            if seen.insert(image.config.digest.clone()) {
                let mount_from = image.layers.iter().find_map(|l| match &l.source {
                    BlobSource::Registry(r) if r.registry() == target.registry() => Some(r),
                    _ => None,
                });
                blobs.push(PushBlob::Config { raw: &image.config, mount_from });
            }
        }
        let outcomes: Vec<Outcome> = futures_util::stream::iter(blobs.iter())
            .map(|blob| self.push_blob(&repo, target, blob, reporter))
            .buffer_unordered(CONCURRENT_TRANSFERS)
            .try_collect()
            .await?;
        let count = |o: Outcome| outcomes.iter().filter(|x| **x == o).count();

        let (digest, size, media_type) = if let [image] = images {
            let manifest = image.manifest();
            repo.put_manifest(&manifest_reference(target), &manifest.bytes, &image.manifest_media_type).await?;
            (manifest.digest, manifest.bytes.len() as u64, image.manifest_media_type.clone())
        } else {
            let mut entries = Vec::with_capacity(images.len());
            for image in images {
                let manifest = image.manifest();
                repo.put_manifest(manifest.digest.as_str(), &manifest.bytes, &image.manifest_media_type).await?;
                entries.push((manifest, image.platform.clone()));
            }
            let index = build_index(&entries);
            repo.put_manifest(&manifest_reference(target), &index.bytes, media_type::OCI_INDEX).await?;
            (index.digest, index.bytes.len() as u64, media_type::OCI_INDEX.to_owned())
        };
        Ok(PushOutcome {
            digest,
            size,
            media_type,
            uploaded: count(Outcome::Uploaded),
            mounted: count(Outcome::Mounted),
            skipped: count(Outcome::Skipped),
        })
    }

    async fn push_blob(
        &self,
        repo: &Repo<'_>,
        target: &ImageRef,
        blob: &PushBlob<'_>,
        reporter: &dyn Reporter,
    ) -> Result<Outcome, RegistryError> {
        let digest = blob.digest();
        if repo.blob_exists(digest).await? {
            return Ok(Outcome::Skipped);
        }
        let same_registry_source = match blob {
            PushBlob::Layer { source: BlobSource::Registry(src), .. } if src.registry() == target.registry() => {
                Some(src)
            }
            PushBlob::Config { mount_from, .. } => *mount_from,
            _ => None,
        };
        if let Some(src) = same_registry_source
            && src.repository() != target.repository()
            && self.try_mount(target, src, digest).await
        {
            return Ok(Outcome::Mounted);
        }
        match blob {
            PushBlob::Config { raw, .. } => {
                let task = Task {
                    id: format!("push:{digest}"),
                    label: format!("config {}", digest.short()),
                    kind: TaskKind::Push,
                    total: Some(raw.bytes.len() as u64),
                };
                reporter.start(&task);
                let descriptor = raw.descriptor(media_type::OCI_CONFIG);
                let job = BlobTask { descriptor: &descriptor, reporter, id: &task.id };
                let res = repo.upload_bytes(&raw.bytes, &job).await;
                reporter.finish(&task.id);
                res?;
            }
            PushBlob::Layer { descriptor, source } => {
                let task = Task {
                    id: format!("push:{digest}"),
                    label: format!("layer {}", digest.short()),
                    kind: TaskKind::Push,
                    total: Some(descriptor.size),
                };
                reporter.start(&task);
                let job = BlobTask { descriptor, reporter, id: &task.id };
                let res = match source {
                    BlobSource::Store(store) => repo.upload_file(store, &job).await,
                    BlobSource::Registry(src) => self.copy_from_registry(repo, src, &job).await,
                };
                reporter.finish(&task.id);
                res?;
            }
        }
        Ok(Outcome::Uploaded)
    }

    /// Cross-repository mount, with a token for both repositories; `false` when the registry
    /// did not mount (the caller then uploads).
    async fn try_mount(&self, target: &ImageRef, src: &ImageRef, digest: &Digest) -> bool {
        let Ok(repo) = self.repo(target, target.original(), Access::PushFrom(src.repository()), Operation::Push).await
        else {
            return false;
        };
        repo.mount(digest, src.repository()).await
    }

    /// Streams a blob from another registry (or repository) to the target `to`, verified as
    /// it streams.
    async fn copy_from_registry(&self, to: &Repo<'_>, src: &ImageRef, job: &BlobTask<'_>) -> Result<(), RegistryError> {
        let from = self.repo(src, src.original(), Access::Pull, Operation::Pull).await?;
        from.authorize().await?;
        to.copy_from(&from, job).await
    }

    /// Which of `digests` the repository of `target` already has, in order: a HEAD request
    /// each, with pull access only. What a push would skip, for planning one without making it.
    pub async fn blobs_present(&self, target: &ImageRef, digests: &[Digest]) -> Result<Vec<bool>, RegistryError> {
        let repo = self.repo(target, target.original(), Access::Pull, Operation::Read).await?;
        repo.authorize().await?;
        let repo = &repo;
        futures_util::stream::iter(digests)
            .map(|digest| repo.blob_exists(digest))
            .buffered(CONCURRENT_TRANSFERS)
            .try_collect()
            .await
    }

    /// Whether the manifest of `reference` can be read with the configured credentials.
    pub async fn can_read(&self, reference: &ImageRef) -> bool {
        let Ok(repo) = self.repo(reference, reference.original(), Access::Pull, Operation::Read).await else {
            return false;
        };
        if repo.authorize().await.is_err() {
            return false;
        }
        matches!(repo.get_manifest(&manifest_reference(reference)).await, Ok(Some(_)))
    }
}

/// The (transient) error of a request or transfer that stalled.
fn stalled(stall: Duration, ctx: &Ctx) -> RegistryError {
    ctx.error(RegistryErrorKind::Stalled { after: stall })
}

/// Retries transient failures with exponential backoff (4 attempts in all).
async fn retry<T, F, Fut>(op: F) -> Result<T, RegistryError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, RegistryError>>,
{
    op.retry(
        ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(200))
            .with_max_delay(Duration::from_secs(5))
            .with_max_times(3)
            .with_jitter(),
    )
    .when(RegistryError::is_transient)
    .await
}

/// An authentication error, with a note on the credentials that were used, if any.
fn auth_error(ctx: &Ctx, note: AuthNote) -> RegistryError {
    let note = match note {
        AuthNote::None if ctx.identity_token => AuthNote::IdentityToken,
        AuthNote::None if ctx.has_credentials => AuthNote::Rejected,
        note => note,
    };
    ctx.error(RegistryErrorKind::Auth(note))
}

/// The error of a request that got no answer: refused redirects, connection failures (with
/// a hint), and the rest (timeouts, dropped connections, failed transfers: transient).
fn request_error(re: reqwest::Error, ctx: &Ctx) -> RegistryError {
    use RegistryErrorKind as K;
    if let Some(refused) = find_source::<transport::PlainHttpRefused>(&re) {
        return ctx.error(K::PlainHttp {
            url: excerpt(refused.0.as_str()),
            host: transport::host_port(&refused.0),
            via: Via::Redirect,
        });
    }
    if re.is_redirect() {
        // Too many redirects: not transient.
        return ctx.error(K::Protocol(excerpt(&cnbx_fs::error_chain(&re))));
    }
    if re.is_connect() && !re.is_timeout() {
        let hint = if is_dns_failure(&re) {
            ConnectHint::Dns
        } else if ctx.plain_http {
            ConnectHint::None
        } else {
            ConnectHint::InsecureRegistry
        };
        return ctx.error(K::Connect { hint, source: re });
    }
    ctx.error(K::Request(re))
}

/// The first error of type `E` in `e`'s chain of sources.
fn find_source<'a, E: std::error::Error + 'static>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a E> {
    let mut current = Some(e);
    while let Some(err) = current {
        if let Some(found) = err.downcast_ref::<E>() {
            return Some(found);
        }
        current = err.source();
    }
    None
}

/// A streamed blob that is not what its descriptor says.
fn verify_error(e: BlobError, desc: &Descriptor, ctx: &Ctx) -> RegistryError {
    match e {
        BlobError::Mismatch { expected, actual, .. } => {
            ctx.error(RegistryErrorKind::DigestMismatch { digest: expected.to_string(), actual: actual.to_string() })
        }
        BlobError::TooLarge { limit, .. } => blob_size_error(desc, SizeProblem::TooLong { expected: limit }, ctx),
        BlobError::TooShort { expected, actual, .. } => {
            blob_size_error(desc, SizeProblem::TooShort { sent: actual, expected }, ctx)
        }
        // A verifier reports nothing else.
        other => ctx.error(RegistryErrorKind::Protocol(other.to_string())),
    }
}

/// Whether a connection failed because the host name could not be resolved.
fn is_dns_failure(e: &dyn std::error::Error) -> bool {
    let mut current = Some(e);
    while let Some(err) = current {
        let text = err.to_string();
        if text.starts_with("dns error") || text.contains("failed to lookup address") {
            return true;
        }
        current = err.source();
    }
    false
}

/// A missing blob names the blob (and says why its foreign URLs were not tried).
fn blob_missing(mut e: RegistryError, desc: &Descriptor) -> RegistryError {
    if let RegistryErrorKind::NotFound(missing) = &mut *e.kind {
        let foreign = desc.urls.as_ref().is_some_and(|urls| !urls.is_empty());
        *missing = if foreign { Missing::ForeignBlob(desc.digest.clone()) } else { Missing::Blob(desc.digest.clone()) };
    }
    e
}

/// A blob that is not as large as its descriptor says.
fn blob_size_error(desc: &Descriptor, problem: SizeProblem, ctx: &Ctx) -> RegistryError {
    ctx.error(RegistryErrorKind::BlobSize { digest: desc.digest.clone(), problem })
}

/// Fails when `have` bytes of a blob and `chunk` more are more than its descriptor gives.
fn check_room(have: u64, chunk: usize, desc: &Descriptor, ctx: &Ctx) -> Result<(), RegistryError> {
    if have + chunk as u64 > desc.size {
        return Err(blob_size_error(desc, SizeProblem::TooLong { expected: desc.size }, ctx));
    }
    Ok(())
}

/// The error of a client that could not be set up for `reference`.
fn setup_error(reference: &ImageRef, kind: RegistryErrorKind) -> RegistryError {
    RegistryError::new(reference.original(), display_registry(reference.registry()), Operation::Pull, kind)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The registry as users write it in `docker login`.
fn display_registry(registry: &str) -> String {
    if registry == "index.docker.io" { "docker.io".to_owned() } else { registry.to_owned() }
}

/// The host cnbx talks to for `reference`'s registry.
fn api_host(reference: &ImageRef) -> String {
    if reference.is_docker_hub() { DOCKER_HUB_API_HOST.to_owned() } else { reference.registry().to_owned() }
}

/// The tag or digest of `reference` to ask for (the digest wins over the tag).
fn manifest_reference(reference: &ImageRef) -> String {
    match (reference.tag(), reference.digest()) {
        (_, Some(d)) => d.to_owned(),
        (Some(t), None) => t.to_owned(),
        (None, None) => "latest".to_owned(),
    }
}

fn platform_of(desc: &Descriptor) -> String {
    desc.platform.as_ref().map_or_else(|| "an unspecified platform".to_owned(), ToString::to_string)
}

/// Whether a manifest document is an index (by its `mediaType`, else by having `manifests`).
fn is_index_document(bytes: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
        manifests: Option<serde_json::Value>,
    }
    match serde_json::from_slice::<Probe>(bytes) {
        Ok(Probe { media_type: Some(mt), .. }) => media_type::is_index(&mt),
        Ok(Probe { media_type: None, manifests }) => manifests.is_some(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> ImageRef {
        ImageRef::parse(s).unwrap()
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration(" 2s "), Some(Duration::from_secs(2)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        for bad in ["0", "0ms", "", "s", "1h", "-1", "1.5s", "99999999999999999999"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
        assert_eq!(Timeouts::default(), Timeouts { connect: Duration::from_secs(30), stall: Duration::from_secs(60) });
    }

    #[test]
    fn docker_hub_maps_to_its_api_host() {
        let hub = r("ubuntu:22.04");
        assert_eq!(api_host(&hub), "registry-1.docker.io");
        assert_eq!(hub.repository(), "library/ubuntu");
        assert_eq!(manifest_reference(&hub), "22.04");
        assert_eq!(manifest_reference(&r("ghcr.io/a/b")), "latest");
        let pinned = format!("ghcr.io/a/b:1@sha256:{}", "a".repeat(64));
        assert_eq!(manifest_reference(&r(&pinned)), format!("sha256:{}", "a".repeat(64)));
    }

    #[test]
    fn plain_http_for_loopback_and_insecure_registries() {
        let c = RegistryClient::new(RegistryOptions {
            insecure_registries: vec!["reg.internal:5000".into(), "other.internal".into()],
            docker_config_dir: None,
        });
        assert!(c.is_plain_http(&r("localhost:5000/a")));
        assert!(c.is_plain_http(&r("127.0.0.2:1234/a")));
        assert!(c.is_plain_http(&r("[::1]:5000/a")));
        assert!(c.is_plain_http(&r("reg.internal:5000/a")));
        assert!(!c.is_plain_http(&r("reg.internal:5001/a")));
        assert!(c.is_plain_http(&r("other.internal:9/a")));
        assert!(!c.is_plain_http(&r("ghcr.io/a")));
        assert!(!c.is_plain_http(&r("ubuntu")));
    }

    #[test]
    fn errors_state_image_and_registry_once_and_keep_their_source() {
        let json = serde_json::from_slice::<Manifest>(b"{").unwrap_err();
        let kind = RegistryErrorKind::InvalidDocument { what: Document::Manifest, source: json.into() };
        let e = RegistryError::new("cnbx.test/app:v1", "cnbx.test", Operation::Pull, kind);
        assert_eq!(
            cnbx_fs::error_chain(&e),
            "cnbx.test/app:v1: the manifest from cnbx.test is invalid: EOF while parsing an object at line 1 column 1"
        );
        let e = RegistryError::new("cnbx.test/app:v1", "cnbx.test", Operation::Push, RegistryErrorKind::NothingToPush);
        assert_eq!(cnbx_fs::error_chain(&e), "nothing to push to cnbx.test/app:v1");
        assert!(!e.is_transient());
        let stalled = RegistryErrorKind::Stalled { after: Duration::from_millis(1500) };
        let e = RegistryError::new("cnbx.test/app:v1", "cnbx.test", Operation::Pull, stalled);
        assert!(e.is_transient());
        assert!(e.to_string().starts_with("network error talking to cnbx.test for cnbx.test/app:v1: no answer"), "{e}");
    }

    #[test]
    fn index_documents_are_recognised() {
        assert!(is_index_document(br#"{"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#));
        assert!(is_index_document(br#"{"schemaVersion":2,"manifests":[]}"#));
        assert!(!is_index_document(br#"{"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]}"#));
    }
}
