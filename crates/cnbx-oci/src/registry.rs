//! A registry client over `oci-client`: fetch images (with platform selection from an
//! index), pull their blobs into a local [`BlobStore`] with every digest verified, and push
//! images and indexes with the exact manifest bytes that were hashed.
//!
//! * Transport: plain HTTP for loopback registries (`localhost`, `127.0.0.0/8`, `[::1]`) and
//!   for every `--insecure-registry HOST[:PORT]`; HTTPS otherwise. Docker Hub
//!   (`index.docker.io` in [`ImageRef`]) is spoken to at `registry-1.docker.io`.
//! * Auth: anonymous, basic, and bearer tokens (oci-client's token flow), with credentials
//!   from Docker's `config.json` ([`crate::auth`]). One `oci_client::Client` per registry,
//!   because oci-client keeps one set of credentials per registry for a client's lifetime.
//! * Blobs stream through files or registry-to-registry, never whole into memory (configs,
//!   which are small JSON documents, excepted). Pushing skips blobs the registry has
//!   (HEAD), mounts blobs from another repository of the same registry, and otherwise
//!   uploads with one monolithic streaming PUT.
//! * Everything is bounded and verified. Manifests and indexes are fetched by cnbx itself
//!   (oci-client reads whole bodies): a `Content-Length` over [`limits::MAX_DOCUMENT`] is
//!   refused before the body is read, and no more than that is ever read; configs have the
//!   same bound. Every manifest is checked against the digest it was asked by and the
//!   `Docker-Content-Digest` header, every blob against its descriptor's digest, and a blob
//!   is never stored with more bytes than its descriptor gives. A blob pushed from a local
//!   store is hashed while it streams, and the upload fails, before the registry has all of
//!   it, when the content is not what its descriptor says.
//! * Transient failures (5xx, 408, 429, timeouts, dropped connections) are retried with
//!   exponential backoff, 4 attempts in all; every operation is content-addressed, so
//!   retrying is safe, and a push that failed uploads, when run again, only the blobs the
//!   registry does not have yet.
//! * Waiting is bounded ([`Timeouts`]): connecting by the connect timeout, and every
//!   request by the stall timeout: a request without an answer, or a transfer that moves
//!   no byte, for that long fails (and is retried). A transfer that keeps moving is never
//!   cut off, however long it takes. Both can be set with environment variables.
//!
//! Errors name the image and the registry, never credentials; text the registry sent (error
//! bodies, token-service answers, digests from headers) is quoted as an
//! [`excerpt`].

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use cnbx_fs::{excerpt, limits};
use cnbx_refs::ImageRef;
use futures_util::{StreamExt, TryStreamExt};
use oci_client::client::{ClientConfig, ClientProtocol, LayerDescriptor};
use oci_client::errors::{DigestError, OciDistributionError, OciEnvelope, OciErrorCode};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};

use crate::auth::{self, AuthError, Credential};
use crate::blobstore::{BlobError, BlobStore, BlobVerifier};
use crate::config::ImageConfig;
use crate::digest::Digest;
use crate::image::{BlobSource, ImageError, ImageToWrite, SourceImage, build_index, select_platform};
use crate::progress::{Reporter, Task, TaskKind};
use crate::spec::{Descriptor, Index, JsonError, Manifest, Platform, Raw, media_type};

/// The API host of Docker Hub.
const DOCKER_HUB_API_HOST: &str = "registry-1.docker.io";

/// How many blobs are transferred at once.
const CONCURRENT_TRANSFERS: usize = 3;

/// How much of an error response's body is read (to quote an excerpt of it).
const MAX_ERROR_BODY: u64 = 64 * 1024;

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
    /// Anything else the registry or the client reported, as an excerpt.
    Protocol(String),
    /// [`RegistryClient::blob_stream`] was given an image that is not read from a registry.
    NotFromRegistry,
    /// [`RegistryClient::push`] was given no image.
    NothingToPush,
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
        }
    }
}

impl fmt::Display for Document {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Manifest => "manifest",
            Self::Index => "index",
            Self::Config => "config",
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
    conns: Mutex<HashMap<String, Conn>>,
    /// (registry, repository, push) authenticated so far, with the bearer token the
    /// registry granted, if it uses tokens.
    authed: Mutex<HashMap<(String, String, bool), Option<String>>>,
}

/// One registry: its client (holding its credentials and tokens) and how to reach it.
#[derive(Clone)]
struct Conn {
    client: Client,
    /// For the requests oci-client cannot make (a mount with a two-repository token).
    http: reqwest::Client,
    auth: RegistryAuth,
    plain_http: bool,
    identity_token: bool,
    registry: String,
    /// [`Timeouts::stall`].
    stall: Duration,
}

/// What an error message needs to know.
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
enum Transfer {
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
        Self {
            inner: Arc::new(Inner {
                options,
                timeouts,
                config_dir,
                conns: Mutex::new(HashMap::new()),
                authed: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The options this client was made with.
    pub fn options(&self) -> &RegistryOptions {
        &self.inner.options
    }

    /// Whether `reference`'s registry is spoken to over plain HTTP.
    pub fn is_plain_http(&self, reference: &ImageRef) -> bool {
        reference.is_loopback_registry() || self.is_insecure(reference.registry())
    }

    fn is_insecure(&self, registry: &str) -> bool {
        let host = split_host(registry);
        self.inner.options.insecure_registries.iter().any(|entry| {
            let entry = entry.trim();
            let entry = entry.strip_prefix("http://").or_else(|| entry.strip_prefix("https://")).unwrap_or(entry);
            let entry = entry.trim_end_matches('/');
            entry.eq_ignore_ascii_case(registry) || (!entry.contains(':') && entry.eq_ignore_ascii_case(host))
        })
    }

    /// The connection for `reference`'s registry, made (and its credentials read) on first use.
    async fn conn(&self, reference: &ImageRef) -> Result<Conn, RegistryError> {
        let registry = reference.registry().to_owned();
        if let Some(conn) = lock(&self.inner.conns).get(&registry) {
            return Ok(conn.clone());
        }
        let dir = self.inner.config_dir.clone();
        let reg = registry.clone();
        let credential = tokio::task::spawn_blocking(move || auth::lookup(dir.as_deref(), &reg))
            .await
            .unwrap_or(Ok(Credential::Anonymous))
            .map_err(|e| setup_error(reference, RegistryErrorKind::Credentials(e)))?;
        let (auth, identity_token) = match credential {
            Credential::Anonymous => (RegistryAuth::Anonymous, false),
            Credential::Basic { username, password } => (RegistryAuth::Basic(username, password), false),
            Credential::IdentityToken => (RegistryAuth::Anonymous, true),
        };
        let plain_http = self.is_plain_http(reference);
        let config = ClientConfig {
            protocol: if plain_http { ClientProtocol::Http } else { ClientProtocol::Https },
            use_monolithic_push: true,
            platform_resolver: None,
            connect_timeout: Some(self.inner.timeouts.connect),
            // No read timeout: it would cut off an upload that takes long but keeps moving.
            // Every request is bounded by the stall timeout instead (`retry_request`,
            // `with_progress`, `next_chunk`).
            read_timeout: None,
            user_agent: concat!("cnbx/", env!("CARGO_PKG_VERSION")),
            ..ClientConfig::default()
        };
        let client =
            Client::try_from(config).map_err(|e| setup_error(reference, RegistryErrorKind::Setup(Box::new(e))))?;
        let http = reqwest::Client::builder()
            .user_agent(concat!("cnbx/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(self.inner.timeouts.connect)
            .build()
            .map_err(|e| setup_error(reference, RegistryErrorKind::Setup(Box::new(e))))?;
        let conn = Conn {
            client,
            http,
            auth,
            plain_http,
            identity_token,
            registry: registry.clone(),
            stall: self.inner.timeouts.stall,
        };
        Ok(lock(&self.inner.conns).entry(registry).or_insert(conn).clone())
    }

    fn ctx(conn: &Conn, reference: &ImageRef, operation: Operation) -> Ctx {
        Ctx {
            image: reference.original().to_owned(),
            registry: display_registry(&conn.registry),
            plain_http: conn.plain_http,
            identity_token: conn.identity_token,
            has_credentials: !matches!(conn.auth, RegistryAuth::Anonymous),
            operation,
        }
    }

    /// Authenticates once per (registry, repository, operation), so that a failing token
    /// request is reported as such instead of as a bare 401 later.
    async fn ensure_auth(
        &self,
        conn: &Conn,
        oref: &Reference,
        op: RegistryOperation,
        ctx: &Ctx,
    ) -> Result<(), RegistryError> {
        let key = auth_key(conn, oref, op);
        if lock(&self.inner.authed).contains_key(&key) {
            return Ok(());
        }
        let token = retry_request(conn, ctx, || async {
            conn.client.auth(oref, &conn.auth, op).await.map_err(|e| classify(e, ctx))
        })
        .await?;
        lock(&self.inner.authed).insert(key, token);
        Ok(())
    }

    /// How cnbx's own requests authenticate, after [`RegistryClient::ensure_auth`].
    fn request_auth(&self, conn: &Conn, oref: &Reference, op: RegistryOperation) -> RequestAuth {
        match lock(&self.inner.authed).get(&auth_key(conn, oref, op)) {
            Some(Some(token)) => RequestAuth::Bearer(token.clone()),
            _ => match &conn.auth {
                RegistryAuth::Basic(user, password) => RequestAuth::Basic(user.clone(), password.clone()),
                _ => RequestAuth::None,
            },
        }
    }

    /// Reads the image `reference` (for `platform` when it is an index). `None` when the
    /// registry says the manifest or repository does not exist.
    pub async fn fetch_image(
        &self,
        reference: &ImageRef,
        platform: Option<&Platform>,
    ) -> Result<Option<SourceImage>, RegistryError> {
        let conn = self.conn(reference).await?;
        let ctx = Self::ctx(&conn, reference, Operation::Pull);
        let oref = oci_ref(reference);
        self.ensure_auth(&conn, &oref, RegistryOperation::Pull, &ctx).await?;
        let auth = self.request_auth(&conn, &oref, RegistryOperation::Pull);
        let Some(bytes) = get_manifest(&conn, &oref, &auth, &ctx).await? else { return Ok(None) };
        let display = reference.original().to_owned();
        let invalid = |what: Document| {
            let ctx = &ctx;
            move |e: serde_json::Error| {
                ctx.error(RegistryErrorKind::InvalidDocument { what, source: JsonError::from(e) })
            }
        };
        let image_error = |e: ImageError| ctx.error(RegistryErrorKind::Image(e));
        let (manifest_bytes, index_platform) = if is_index_document(&bytes) {
            let index: Raw<Index> = Raw::parse(bytes).map_err(invalid(Document::Index))?;
            let chosen = select_platform(&display, &index.value, platform).map_err(image_error)?.clone();
            let mref = oref.clone_with_digest(chosen.digest.to_string());
            let Some(bytes) = get_manifest(&conn, &mref, &auth, &ctx).await? else {
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
        let config_bytes = get_small_blob(&conn, &oref, &config_desc, &ctx).await?;
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
        let conn = self.conn(reference).await?;
        let ctx = Self::ctx(&conn, reference, Operation::Pull);
        let oref = oci_ref(reference);
        self.ensure_auth(&conn, &oref, RegistryOperation::Pull, &ctx).await?;
        let auth = self.request_auth(&conn, &oref, RegistryOperation::Pull);
        get_manifest(&conn, &oref, &auth, &ctx).await
    }

    /// Streams blob `desc` of the registry image `image` without storing it: the chunks as
    /// they arrive, each passed on only once it keeps the blob within its descriptor's size
    /// and digest, so that a stream which ends without an error was the blob (the last chunk
    /// completes the digest check; a short blob ends with an error). Not retried once the
    /// first chunk is out: the caller has consumed it.
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
        let conn = self.conn(reference).await?;
        let mut ctx = Self::ctx(&conn, reference, Operation::Pull);
        ctx.image.clone_from(&image.display_name);
        let oref = oci_ref(reference);
        self.ensure_auth(&conn, &oref, RegistryOperation::Pull, &ctx).await?;
        let stream = retry(|| async {
            let stream =
                conn.client.pull_blob_stream(&oref, &layer_descriptor(desc)).await.map_err(|e| classify(e, &ctx))?;
            check_announced(&stream, desc, &ctx)?;
            Ok(stream)
        })
        .await
        .map_err(|e| blob_missing(e, desc))?;
        let from = format!("{} on {}", image.display_name, ctx.registry);
        let verifier = BlobVerifier::new(desc.digest.clone(), desc.size, from);
        let state = (stream.stream, verifier, desc.clone(), ctx, false);
        Ok(futures_util::stream::unfold(state, |(mut stream, mut verifier, desc, ctx, done)| async move {
            if done {
                return None;
            }
            let item = match stream.next().await {
                Some(Ok(chunk)) => match verifier.update(&chunk) {
                    Ok(()) => Ok(chunk),
                    Err(e) => Err(verify_error(e, &desc, &ctx)),
                },
                Some(Err(e)) => Err(io_error(e, &desc, &ctx)),
                None => match verifier.finish() {
                    Ok(()) => return None,
                    Err(e) => Err(verify_error(e, &desc, &ctx)),
                },
            };
            let done = item.is_err();
            Some((item, (stream, verifier, desc, ctx, done)))
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
                let conn = self.conn(reference).await?;
                let mut ctx = Self::ctx(&conn, reference, Operation::Pull);
                ctx.image.clone_from(&image.display_name);
                let oref = oci_ref(reference);
                self.ensure_auth(&conn, &oref, RegistryOperation::Pull, &ctx).await?;
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
                futures_util::stream::iter(missing)
                    .map(|layer| download_blob(&conn, &oref, layer, into, reporter, &ctx))
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
        let conn = self.conn(target).await?;
        let ctx = Self::ctx(&conn, target, Operation::Push);
        let oref = oci_ref(target);
        self.ensure_auth(&conn, &oref, RegistryOperation::Push, &ctx).await?;

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
        let transfers: Vec<Transfer> = futures_util::stream::iter(blobs.iter())
            .map(|blob| self.push_blob(&conn, &oref, target, blob, reporter, &ctx))
            .buffer_unordered(CONCURRENT_TRANSFERS)
            .try_collect()
            .await?;
        let count = |t: Transfer| transfers.iter().filter(|x| **x == t).count();

        let (digest, size, media_type) = if let [image] = images {
            let manifest = image.manifest();
            push_manifest(&conn, &oref, &manifest.bytes, &image.manifest_media_type, &ctx).await?;
            (manifest.digest, manifest.bytes.len() as u64, image.manifest_media_type.clone())
        } else {
            let mut entries = Vec::with_capacity(images.len());
            for image in images {
                let manifest = image.manifest();
                let by_digest = oref.clone_with_digest(manifest.digest.to_string());
                push_manifest(&conn, &by_digest, &manifest.bytes, &image.manifest_media_type, &ctx).await?;
                entries.push((manifest, image.platform.clone()));
            }
            let index = build_index(&entries);
            push_manifest(&conn, &oref, &index.bytes, media_type::OCI_INDEX, &ctx).await?;
            (index.digest, index.bytes.len() as u64, media_type::OCI_INDEX.to_owned())
        };
        Ok(PushOutcome {
            digest,
            size,
            media_type,
            uploaded: count(Transfer::Uploaded),
            mounted: count(Transfer::Mounted),
            skipped: count(Transfer::Skipped),
        })
    }

    async fn push_blob(
        &self,
        conn: &Conn,
        oref: &Reference,
        target: &ImageRef,
        blob: &PushBlob<'_>,
        reporter: &dyn Reporter,
        ctx: &Ctx,
    ) -> Result<Transfer, RegistryError> {
        let digest = blob.digest();
        let exists = retry_request(conn, ctx, || async {
            conn.client.blob_exists(oref, digest.as_str()).await.map_err(|e| classify(e, ctx))
        })
        .await?;
        if exists {
            return Ok(Transfer::Skipped);
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
            && self.try_mount(conn, oref, src, digest).await
        {
            return Ok(Transfer::Mounted);
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
                let bytes = bytes::Bytes::from(raw.bytes.clone());
                let res = retry_request(conn, ctx, || async {
                    conn.client.push_blob(oref, bytes.clone(), digest.as_str()).await.map_err(|e| classify(e, ctx))
                })
                .await;
                reporter.advance(&task.id, raw.bytes.len() as u64);
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
                let res = match source {
                    BlobSource::Store(store) => {
                        upload_file(conn, oref, store, descriptor, reporter, &task.id, ctx).await
                    }
                    BlobSource::Registry(src) => {
                        self.copy_from_registry(conn, oref, src, descriptor, reporter, &task.id, ctx).await
                    }
                };
                reporter.finish(&task.id);
                res?;
            }
        }
        Ok(Transfer::Uploaded)
    }

    /// Cross-repository mount; `false` when the registry did not mount (it then answers 202
    /// and expects an upload, which the caller does).
    async fn try_mount(&self, conn: &Conn, oref: &Reference, src: &ImageRef, digest: &Digest) -> bool {
        let src_ref = oci_ref(src);
        let src_ctx = Self::ctx(conn, src, Operation::Pull);
        if self.ensure_auth(conn, &src_ref, RegistryOperation::Pull, &src_ctx).await.is_err() {
            return false;
        }
        if matches!(
            tokio::time::timeout(conn.stall, conn.client.mount_blob(oref, &src_ref, digest.as_str())).await,
            Ok(Ok(()))
        ) {
            return true;
        }
        // On token registries oci-client's push token covers the target repository only
        // (oras-project/rust-oci-client#235), so the registry refuses to read the source:
        // retry with a token for both.
        let mount = mount_with_two_repository_token(conn, oref, &src_ref, digest);
        matches!(tokio::time::timeout(conn.stall, mount).await, Ok(Some(true)))
    }

    /// Streams a blob from another registry (or repository) to the target.
    #[allow(clippy::too_many_arguments)]
    async fn copy_from_registry(
        &self,
        conn: &Conn,
        oref: &Reference,
        src: &ImageRef,
        descriptor: &Descriptor,
        reporter: &dyn Reporter,
        task_id: &str,
        ctx: &Ctx,
    ) -> Result<(), RegistryError> {
        let src_conn = self.conn(src).await?;
        let src_ctx = Self::ctx(&src_conn, src, Operation::Pull);
        let src_ref = oci_ref(src);
        self.ensure_auth(&src_conn, &src_ref, RegistryOperation::Pull, &src_ctx).await?;
        let digest = descriptor.digest.as_str();
        retry(|| async {
            let stream =
                bounded(&src_conn, &src_ctx, src_conn.client.pull_blob_stream(&src_ref, &layer_descriptor(descriptor)))
                    .await?
                    .map_err(|e| classify(e, &src_ctx))?;
            let counter = Arc::new(AtomicU64::new(0));
            let seen = counter.clone();
            let stream = stream.map(move |chunk| {
                if let Ok(bytes) = &chunk {
                    seen.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                }
                chunk.map_err(OciDistributionError::IoError)
            });
            let push = conn.client.push_blob_stream(oref, stream, digest, Some(descriptor.size));
            with_progress(push, &counter, reporter, task_id, conn, ctx).await?.map_err(|e| classify(e, ctx))?;
            Ok(())
        })
        .await
    }

    /// Which of `digests` the repository of `target` already has, in order: a HEAD request
    /// each, with pull access only. What a push would skip, for planning one without making it.
    pub async fn blobs_present(&self, target: &ImageRef, digests: &[Digest]) -> Result<Vec<bool>, RegistryError> {
        let conn = self.conn(target).await?;
        let ctx = Self::ctx(&conn, target, Operation::Read);
        let oref = oci_ref(target);
        self.ensure_auth(&conn, &oref, RegistryOperation::Pull, &ctx).await?;
        let (conn, ctx, oref) = (&conn, &ctx, &oref);
        futures_util::stream::iter(digests)
            .map(|digest| {
                retry_request(conn, ctx, move || async move {
                    conn.client.blob_exists(oref, digest.as_str()).await.map_err(|e| classify(e, ctx))
                })
            })
            .buffered(CONCURRENT_TRANSFERS)
            .try_collect()
            .await
    }

    /// Whether the manifest of `reference` can be read with the configured credentials.
    pub async fn can_read(&self, reference: &ImageRef) -> bool {
        let Ok(conn) = self.conn(reference).await else { return false };
        let ctx = Self::ctx(&conn, reference, Operation::Read);
        let oref = oci_ref(reference);
        if self.ensure_auth(&conn, &oref, RegistryOperation::Pull, &ctx).await.is_err() {
            return false;
        }
        let auth = self.request_auth(&conn, &oref, RegistryOperation::Pull);
        matches!(get_manifest(&conn, &oref, &auth, &ctx).await, Ok(Some(_)))
    }
}

/// Mounts `digest` from `src` into `target` with a bearer token whose scope covers both
/// repositories. `None` when the registry does not use bearer tokens or no token was granted.
async fn mount_with_two_repository_token(
    conn: &Conn,
    target: &Reference,
    src: &Reference,
    digest: &Digest,
) -> Option<bool> {
    let scheme = if conn.plain_http { "http" } else { "https" };
    let host = target.resolve_registry();
    let ping = conn.http.get(format!("{scheme}://{host}/v2/")).send().await.ok()?;
    let challenge = ping.headers().get(reqwest::header::WWW_AUTHENTICATE)?.to_str().ok()?.to_owned();
    let params = parse_bearer_challenge(&challenge)?;
    let realm = params.iter().find(|(k, _)| k == "realm").map(|(_, v)| v.clone())?;
    let mut query = vec![
        ("scope".to_owned(), format!("repository:{}:pull,push", target.repository())),
        ("scope".to_owned(), format!("repository:{}:pull", src.repository())),
    ];
    if let Some((_, service)) = params.iter().find(|(k, _)| k == "service") {
        query.push(("service".to_owned(), service.clone()));
    }
    let mut request = conn.http.get(&realm).query(&query);
    if let RegistryAuth::Basic(user, password) = &conn.auth {
        request = request.basic_auth(user, Some(password));
    }
    let response = request.send().await.ok()?;
    if !response.status().is_success() {
        return None;
    }
    #[derive(serde::Deserialize)]
    struct TokenResponse {
        token: Option<String>,
        access_token: Option<String>,
    }
    let body = read_body(response, limits::MAX_DESCRIPTOR).await.ok()?.complete()?;
    let body: TokenResponse = serde_json::from_slice(&body).ok()?;
    let token = body.token.or(body.access_token)?;
    let url = format!(
        "{scheme}://{host}/v2/{}/blobs/uploads/?mount={}&from={}",
        target.repository(),
        digest.as_str(),
        src.repository()
    );
    let response =
        conn.http.post(url).bearer_auth(token).header(reqwest::header::CONTENT_LENGTH, "0").send().await.ok()?;
    Some(response.status() == reqwest::StatusCode::CREATED)
}

/// The parameters of the `Bearer` challenge in a `WWW-Authenticate` header
/// (`Bearer realm="…",service="…"`), names in lower case and values unescaped; `None` when
/// the header has no such challenge or cannot be parsed.
fn parse_bearer_challenge(header: &str) -> Option<Vec<(String, String)>> {
    let challenges = http_auth::parse_challenges(header).ok()?;
    let bearer = challenges.into_iter().find(|c| c.scheme.eq_ignore_ascii_case("bearer"))?;
    Some(bearer.params.iter().map(|(name, value)| (name.to_ascii_lowercase(), value.to_unescaped())).collect())
}

/// How cnbx's own requests (those oci-client cannot make with a bound) authenticate.
enum RequestAuth {
    None,
    Basic(String, String),
    Bearer(String),
}

impl RequestAuth {
    fn apply(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            Self::None => request,
            Self::Basic(user, password) => request.basic_auth(user, Some(password)),
            Self::Bearer(token) => request.bearer_auth(token),
        }
    }
}

fn auth_key(conn: &Conn, oref: &Reference, op: RegistryOperation) -> (String, String, bool) {
    (conn.registry.clone(), oref.repository().to_owned(), matches!(op, RegistryOperation::Push))
}

/// A response body read with a bound.
struct Body {
    bytes: Vec<u8>,
    /// Whether the body ended within the bound.
    whole: bool,
}

impl Body {
    fn complete(self) -> Option<Vec<u8>> {
        self.whole.then_some(self.bytes)
    }
}

/// Reads at most `limit` bytes of `response`'s body (stopping there when there is more).
async fn read_body(mut response: reqwest::Response, limit: u64) -> Result<Body, reqwest::Error> {
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = usize::try_from(limit).unwrap_or(usize::MAX).saturating_sub(bytes.len());
        if chunk.len() > room {
            bytes.extend_from_slice(&chunk[..room]);
            return Ok(Body { bytes, whole: false });
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(Body { bytes, whole: true })
}

/// The error oci-client would make of a response with `status` and (the start of) `body`.
fn status_error(status: reqwest::StatusCode, body: &[u8], url: &str) -> OciDistributionError {
    let server = || OciDistributionError::ServerError {
        code: status.as_u16(),
        url: url.to_owned(),
        message: String::from_utf8_lossy(body).into_owned(),
    };
    if status == reqwest::StatusCode::UNAUTHORIZED {
        OciDistributionError::UnauthorizedError { url: url.to_owned() }
    } else if status.is_success() {
        OciDistributionError::SpecViolationError(format!("expected HTTP status 200, got {status}"))
    } else if status.is_client_error() {
        match serde_json::from_slice::<OciEnvelope>(body) {
            Ok(envelope) => OciDistributionError::RegistryError { envelope, url: url.to_owned() },
            Err(_) => server(),
        }
    } else {
        server()
    }
}

/// The manifest bytes at `oref`, or `None` when the registry says it does not exist. cnbx
/// makes this request itself so that it can bound it: a `Content-Length` larger than
/// [`limits::MAX_DOCUMENT`] is refused before the body is read, and reading stops past that
/// many bytes. The bytes are checked against the digest of `oref`, if it has one, and
/// against the `Docker-Content-Digest` header, if the registry sent one.
async fn get_manifest(
    conn: &Conn,
    oref: &Reference,
    auth: &RequestAuth,
    ctx: &Ctx,
) -> Result<Option<Vec<u8>>, RegistryError> {
    let limit = limits::MAX_DOCUMENT;
    let scheme = if conn.plain_http { "http" } else { "https" };
    let url = format!(
        "{scheme}://{}/v2/{}/manifests/{}",
        oref.resolve_registry(),
        oref.repository(),
        oref.digest().or(oref.tag()).unwrap_or("latest")
    );
    let too_large = || ctx.error(RegistryErrorKind::TooLarge { what: Document::Manifest, limit });
    let res = retry_request(conn, ctx, || async {
        let request = conn.http.get(&url).header(reqwest::header::ACCEPT, media_type::ALL_MANIFESTS.join(", "));
        let response = auth.apply(request).send().await.map_err(|e| request_error(e, ctx))?;
        let status = response.status();
        if status != reqwest::StatusCode::OK {
            let body = read_body(response, MAX_ERROR_BODY).await.map_err(|e| request_error(e, ctx))?;
            return Err(classify(status_error(status, &body.bytes, &url), ctx));
        }
        if response.content_length().is_some_and(|n| n > limit) {
            return Err(too_large());
        }
        let header =
            response.headers().get("docker-content-digest").and_then(|v| v.to_str().ok()).map(|v| v.trim().to_owned());
        let body = read_body(response, limit).await.map_err(|e| request_error(e, ctx))?;
        Ok((body.complete().ok_or_else(too_large)?, header))
    })
    .await;
    let (bytes, header) = match res {
        Ok(found) => found,
        Err(e) if matches!(e.kind(), RegistryErrorKind::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let actual = Digest::of(&bytes);
    // Only sha256 is checked: it is what cnbx computes, and what registries send.
    for expected in [oref.digest(), header.as_deref()].into_iter().flatten() {
        if expected.starts_with("sha256:") && expected != actual.as_str() {
            return Err(
                ctx.error(RegistryErrorKind::DigestMismatch { digest: excerpt(expected), actual: actual.to_string() })
            );
        }
    }
    Ok(Some(bytes))
}

/// A blob that is not as large as its descriptor says.
fn blob_size_error(desc: &Descriptor, problem: SizeProblem, ctx: &Ctx) -> RegistryError {
    ctx.error(RegistryErrorKind::BlobSize { digest: desc.digest.clone(), problem })
}

/// Fails when the registry announces a blob larger than its descriptor.
fn check_announced(
    stream: &oci_client::client::SizedStream,
    desc: &Descriptor,
    ctx: &Ctx,
) -> Result<(), RegistryError> {
    match stream.content_length {
        Some(n) if n > desc.size => {
            Err(blob_size_error(desc, SizeProblem::Announced { announced: n, expected: desc.size }, ctx))
        }
        _ => Ok(()),
    }
}

/// Fails when `have` bytes of a blob and `chunk` more are more than its descriptor gives.
fn check_room(have: u64, chunk: usize, desc: &Descriptor, ctx: &Ctx) -> Result<(), RegistryError> {
    if have + chunk as u64 > desc.size {
        return Err(blob_size_error(desc, SizeProblem::TooLong { expected: desc.size }, ctx));
    }
    Ok(())
}

/// A small blob (a config, at most [`limits::MAX_DOCUMENT`] bytes) into memory, verified.
async fn get_small_blob(conn: &Conn, oref: &Reference, desc: &Descriptor, ctx: &Ctx) -> Result<Vec<u8>, RegistryError> {
    let limit = limits::MAX_DOCUMENT;
    if desc.size > limit {
        return Err(ctx.error(RegistryErrorKind::TooLarge { what: Document::Config, limit }));
    }
    let bytes = retry_request(conn, ctx, || async {
        let mut stream =
            conn.client.pull_blob_stream(oref, &layer_descriptor(desc)).await.map_err(|e| classify(e, ctx))?;
        check_announced(&stream, desc, ctx)?;
        let mut out = Vec::with_capacity(usize::try_from(desc.size).unwrap_or(0));
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| io_error(e, desc, ctx))?;
            check_room(out.len() as u64, chunk.len(), desc, ctx)?;
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    })
    .await
    .map_err(|e| blob_missing(e, desc))?;
    let actual = Digest::of(&bytes);
    if actual != desc.digest {
        return Err(ctx
            .error(RegistryErrorKind::DigestMismatch { digest: desc.digest.to_string(), actual: actual.to_string() }));
    }
    Ok(bytes)
}

/// Downloads one blob into `into`, verifying its digest.
async fn download_blob(
    conn: &Conn,
    oref: &Reference,
    desc: &Descriptor,
    into: &BlobStore,
    reporter: &dyn Reporter,
    ctx: &Ctx,
) -> Result<(), RegistryError> {
    let task = Task {
        id: format!("pull:{}", desc.digest),
        label: format!("layer {}", desc.digest.short()),
        kind: TaskKind::Pull,
        total: Some(desc.size),
    };
    reporter.start(&task);
    let store_err = |source: BlobError| ctx.error(RegistryErrorKind::Store { digest: desc.digest.clone(), source });
    let write_err = |source| store_err(BlobError::Write { store: into.root().to_path_buf(), source });
    let res = retry(|| async {
        let mut stream = bounded(conn, ctx, conn.client.pull_blob_stream(oref, &layer_descriptor(desc)))
            .await?
            .map_err(|e| classify(e, ctx))?;
        check_announced(&stream, desc, ctx)?;
        let mut writer = into.writer().map_err(write_err)?;
        while let Some(chunk) = bounded(conn, ctx, stream.next()).await? {
            let chunk = chunk.map_err(|e| io_error(e, desc, ctx))?;
            // Never more than the descriptor gives, whatever the digest.
            check_room(writer.written(), chunk.len(), desc, ctx)?;
            writer.write_all(&chunk).map_err(write_err)?;
            reporter.advance(&task.id, chunk.len() as u64);
        }
        if writer.written() != desc.size {
            let problem = SizeProblem::TooShort { sent: writer.written(), expected: desc.size };
            return Err(blob_size_error(desc, problem, ctx));
        }
        match writer.commit(Some(&desc.digest)) {
            Ok(_) => Ok(()),
            Err(BlobError::Mismatch { expected, actual, .. }) => Err(ctx
                .error(RegistryErrorKind::DigestMismatch { digest: expected.to_string(), actual: actual.to_string() })),
            Err(e) => Err(store_err(e)),
        }
    })
    .await
    .map_err(|e| blob_missing(e, desc));
    reporter.finish(&task.id);
    res
}

/// Uploads a blob from a local store with one streaming PUT, hashed as it streams: a blob
/// that is not what its descriptor says fails the upload before its last bytes are sent.
async fn upload_file(
    conn: &Conn,
    oref: &Reference,
    store: &BlobStore,
    descriptor: &Descriptor,
    reporter: &dyn Reporter,
    task_id: &str,
    ctx: &Ctx,
) -> Result<(), RegistryError> {
    let store_err =
        |source: BlobError| ctx.error(RegistryErrorKind::Store { digest: descriptor.digest.clone(), source });
    retry(|| async {
        let file = store.open_blob(&descriptor.digest).map_err(store_err)?;
        let from = store.path(&descriptor.digest).display().to_string();
        let verifier = BlobVerifier::new(descriptor.digest.clone(), descriptor.size, from);
        let counter = Arc::new(AtomicU64::new(0));
        let refused = Arc::new(Mutex::new(None));
        let chunks = tokio_util::io::ReaderStream::with_capacity(tokio::fs::File::from_std(file), 256 * 1024);
        let state = Upload { chunks, verifier, done: false, refused: refused.clone(), counter: counter.clone() };
        let stream = futures_util::stream::unfold(state, Upload::next);
        let push = conn.client.push_blob_stream(oref, stream, descriptor.digest.as_str(), Some(descriptor.size));
        let pushed = with_progress(push, &counter, reporter, task_id, conn, ctx).await?;
        if let Some(e) = lock(&refused).take() {
            return Err(store_err(e));
        }
        pushed.map_err(|e| classify(e, ctx))?;
        Ok(())
    })
    .await
}

/// The body of an upload from a file: each chunk passed on only once a [`BlobVerifier`]
/// accepted it. A refusal is kept in `refused` (for the error to report) and ends the body
/// with an error.
struct Upload {
    chunks: tokio_util::io::ReaderStream<tokio::fs::File>,
    verifier: BlobVerifier,
    done: bool,
    refused: Arc<Mutex<Option<BlobError>>>,
    counter: Arc<AtomicU64>,
}

type UploadItem = Result<bytes::Bytes, OciDistributionError>;

impl Upload {
    async fn next(mut self) -> Option<(UploadItem, Self)> {
        if self.done {
            return None;
        }
        let refusal = match self.chunks.next().await {
            Some(Ok(chunk)) => match self.verifier.update(&chunk) {
                Ok(()) => {
                    self.counter.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                    return Some((Ok(chunk), self));
                }
                Err(e) => e,
            },
            Some(Err(e)) => {
                self.done = true;
                return Some((Err(OciDistributionError::IoError(e)), self));
            }
            None => match self.verifier.finish() {
                Ok(()) => return None,
                Err(e) => e,
            },
        };
        self.done = true;
        *lock(&self.refused) = Some(refusal);
        let e = std::io::Error::new(std::io::ErrorKind::InvalidData, "the blob is not what its descriptor says");
        Some((Err(OciDistributionError::IoError(e)), self))
    }
}

async fn push_manifest(
    conn: &Conn,
    oref: &Reference,
    bytes: &[u8],
    media_type: &str,
    ctx: &Ctx,
) -> Result<(), RegistryError> {
    let content_type = reqwest::header::HeaderValue::from_str(media_type)
        .map_err(|_| ctx.error(RegistryErrorKind::Protocol(format!("invalid media type '{}'", excerpt(media_type)))))?;
    let body = bytes::Bytes::copy_from_slice(bytes);
    retry_request(conn, ctx, || async {
        conn.client
            .push_manifest_raw(oref, body.clone(), content_type.clone())
            .await
            .map(|_| ())
            .map_err(|e| classify(e, ctx))
    })
    .await
}

/// Runs the transfer `fut`, reporting the growth of `counter` as progress every 100 ms, and
/// failing it as stalled when `counter` has not grown for the stall timeout (after the last
/// byte, that is the time the registry takes to answer).
async fn with_progress<F: Future>(
    fut: F,
    counter: &AtomicU64,
    reporter: &dyn Reporter,
    id: &str,
    conn: &Conn,
    ctx: &Ctx,
) -> Result<F::Output, RegistryError> {
    let mut fut = std::pin::pin!(fut);
    let mut reported = 0u64;
    let mut last_move = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            out = &mut fut => {
                let now = counter.load(Ordering::Relaxed);
                if now > reported {
                    reporter.advance(id, now - reported);
                }
                return Ok(out);
            }
            _ = tick.tick() => {
                let now = counter.load(Ordering::Relaxed);
                if now > reported {
                    reporter.advance(id, now - reported);
                    reported = now;
                    last_move = tokio::time::Instant::now();
                } else if last_move.elapsed() >= conn.stall {
                    return Err(stalled(conn, ctx));
                }
            }
        }
    }
}

/// `fut` (one request, or one chunk of a transfer), failed as stalled when it does not
/// finish within the stall timeout.
async fn bounded<F: Future>(conn: &Conn, ctx: &Ctx, fut: F) -> Result<F::Output, RegistryError> {
    tokio::time::timeout(conn.stall, fut).await.map_err(|_| stalled(conn, ctx))
}

/// The (transient) error of a request or transfer that stalled.
fn stalled(conn: &Conn, ctx: &Ctx) -> RegistryError {
    ctx.error(RegistryErrorKind::Stalled { after: conn.stall })
}

/// [`retry`] for a request that is not a transfer: each attempt is [`bounded`].
async fn retry_request<T, F, Fut>(conn: &Conn, ctx: &Ctx, mut op: F) -> Result<T, RegistryError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, RegistryError>>,
{
    retry(|| {
        let attempt = op();
        async move { bounded(conn, ctx, attempt).await? }
    })
    .await
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

/// Turns oci-client's error into ours, for the image and registry in `ctx`.
fn classify(e: OciDistributionError, ctx: &Ctx) -> RegistryError {
    use OciDistributionError as E;
    use RegistryErrorKind as K;
    let server = |code: u16, message: &str| ctx.error(K::Server { code, message: excerpt(message) });
    match e {
        E::UnauthorizedError { .. } => auth_error(ctx, AuthNote::None),
        E::AuthenticationFailure(reason) => auth_error(ctx, AuthNote::TokenService(excerpt(&reason))),
        E::RegistryError { envelope, .. } => {
            let codes: Vec<&OciErrorCode> = envelope.errors.iter().map(|e| &e.code).collect();
            if codes.iter().any(|c| matches!(c, OciErrorCode::Unauthorized | OciErrorCode::Denied)) {
                auth_error(ctx, AuthNote::None)
            } else if codes.iter().any(|c| {
                matches!(
                    c,
                    OciErrorCode::ManifestUnknown
                        | OciErrorCode::NameUnknown
                        | OciErrorCode::NotFound
                        | OciErrorCode::BlobUnknown
                )
            }) {
                ctx.error(K::NotFound(Missing::Reported(excerpt(&envelope_text(&envelope)))))
            } else if codes.iter().any(|c| matches!(c, OciErrorCode::Toomanyrequests)) {
                server(429, &envelope_text(&envelope))
            } else {
                ctx.error(K::Protocol(excerpt(&envelope_text(&envelope))))
            }
        }
        E::ServerError { code, message, .. } => match code {
            401 | 403 => auth_error(ctx, AuthNote::None),
            404 => ctx.error(K::NotFound(Missing::Image)),
            _ => server(code, &message),
        },
        E::ImageManifestNotFoundError(_) => ctx.error(K::NotFound(Missing::Image)),
        E::DigestError(DigestError::VerificationError { expected, actual }) => {
            ctx.error(K::DigestMismatch { digest: excerpt(&expected), actual })
        }
        E::RequestError(re) => request_error(re, ctx),
        E::IoError(io) => {
            if let Some(DigestError::VerificationError { expected, actual }) =
                io.get_ref().and_then(|inner| inner.downcast_ref::<DigestError>())
            {
                return ctx.error(K::DigestMismatch { digest: excerpt(expected), actual: actual.clone() });
            }
            match crate::blobstore::io_payload::<reqwest::Error>(io) {
                Ok(re) => request_error(re, ctx),
                Err(io) => ctx.error(K::Transfer(io)),
            }
        }
        // Whatever else oci-client reports may hold text the registry sent, so it is shown as
        // an excerpt. Its messages already include the text of their sources (`{0}` of a
        // `#[from]` field), so its own message is the whole of it.
        other => ctx.error(K::Protocol(excerpt(&other.to_string()))),
    }
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

fn request_error(re: reqwest::Error, ctx: &Ctx) -> RegistryError {
    use RegistryErrorKind as K;
    if let Some(status) = re.status() {
        let code = status.as_u16();
        return match code {
            401 | 403 => auth_error(ctx, AuthNote::None),
            404 => ctx.error(K::NotFound(Missing::Image)),
            // reqwest's own message: the status and the URL cnbx asked.
            _ => ctx.error(K::Server { code, message: re.to_string() }),
        };
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

/// A missing blob names the blob.
fn blob_missing(mut e: RegistryError, desc: &Descriptor) -> RegistryError {
    if let RegistryErrorKind::NotFound(missing) = &mut *e.kind {
        *missing = Missing::Blob(desc.digest.clone());
    }
    e
}

fn io_error(e: std::io::Error, desc: &Descriptor, ctx: &Ctx) -> RegistryError {
    let mut e = classify(OciDistributionError::IoError(e), ctx);
    if let RegistryErrorKind::DigestMismatch { digest, .. } = &mut *e.kind {
        *digest = desc.digest.to_string();
    }
    e
}

/// The error of a client that could not be set up for `reference`.
fn setup_error(reference: &ImageRef, kind: RegistryErrorKind) -> RegistryError {
    RegistryError::new(reference.original(), display_registry(reference.registry()), Operation::Pull, kind)
}

fn envelope_text(envelope: &oci_client::errors::OciEnvelope) -> String {
    envelope
        .errors
        .iter()
        .map(|e| if e.message.is_empty() { format!("{:?}", e.code) } else { e.message.clone() })
        .collect::<Vec<_>>()
        .join("; ")
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The registry as users write it in `docker login`.
fn display_registry(registry: &str) -> String {
    if registry == "index.docker.io" { "docker.io".to_owned() } else { registry.to_owned() }
}

/// `host` of `host[:port]` (IPv6 literals keep their brackets).
fn split_host(registry: &str) -> &str {
    if registry.starts_with('[') {
        return registry.split_once(']').map_or(registry, |(h, _)| &registry[..=h.len()]);
    }
    registry.split_once(':').map_or(registry, |(h, _)| h)
}

/// The host oci-client must talk to for `reference`'s registry.
fn api_host(reference: &ImageRef) -> String {
    if reference.is_docker_hub() { DOCKER_HUB_API_HOST.to_owned() } else { reference.registry().to_owned() }
}

/// oci-client's reference for ours (the digest wins over the tag).
fn oci_ref(reference: &ImageRef) -> Reference {
    let host = api_host(reference);
    let repo = reference.repository().to_owned();
    match (reference.tag(), reference.digest()) {
        (_, Some(d)) => Reference::with_digest(host, repo, d.to_owned()),
        (Some(t), None) => Reference::with_tag(host, repo, t.to_owned()),
        (None, None) => Reference::with_tag(host, repo, "latest".to_owned()),
    }
}

fn layer_descriptor(desc: &Descriptor) -> LayerDescriptor<'_> {
    LayerDescriptor { digest: desc.digest.as_str(), urls: &desc.urls }
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
        let o = oci_ref(&r("ubuntu:22.04"));
        assert_eq!(o.resolve_registry(), "registry-1.docker.io");
        assert_eq!(o.repository(), "library/ubuntu");
        assert_eq!(o.tag(), Some("22.04"));
        assert_eq!(oci_ref(&r("ghcr.io/a/b")).tag(), Some("latest"));
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
    fn bearer_challenges_are_parsed() {
        let p = parse_bearer_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:a/b:pull""#,
        )
        .unwrap();
        assert_eq!(
            p,
            [
                ("realm".to_owned(), "https://auth.docker.io/token".to_owned()),
                ("service".to_owned(), "registry.docker.io".to_owned()),
                ("scope".to_owned(), "repository:a/b:pull".to_owned()),
            ]
        );
        assert!(parse_bearer_challenge(r#"Basic realm="x""#).is_none());
        // Several challenges in one header, names in any case, escapes and plain tokens.
        let p = parse_bearer_challenge(r#"Basic realm="x", BEARER Realm="https://a/t\"q\"", service=reg"#).unwrap();
        assert_eq!(p, [("realm".to_owned(), "https://a/t\"q\"".to_owned()), ("service".to_owned(), "reg".to_owned())]);
        assert!(parse_bearer_challenge("Bearer realm=\"unterminated").is_none());
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
