//! One repository of a registry and the requests cnbx makes to it: manifests, blobs (read
//! whole for configs, into the store for layers, or streamed), uploads (from the store, from
//! memory, or copied from another registry while they stream), mounts and manifest pushes.
//! Each request is authenticated as the registry asks ([`Repo::auth`]), waits for its answer
//! no longer than the stall timeout, and reads what it needs with a bound.

use std::future::Future;
use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cnbx_fs::{excerpt, limits};
use futures_util::StreamExt;
use reqwest::Url;

use super::{
    Conn, Ctx, Document, RegistryClient, RegistryError, RegistryErrorKind, SizeProblem, Via, blob_missing,
    blob_size_error, check_room, lock, request_error, retry, stalled, token, transport, verify_error,
};
use crate::blobstore::{BlobError, BlobStore, BlobVerifier};
use crate::digest::Digest;
use crate::progress::{Reporter, Task, TaskKind};
use crate::spec::{Descriptor, media_type};

/// What a repository is used for: the scopes of the token cnbx asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Access<'a> {
    Pull,
    Push,
    /// Push, mounting blobs from the repository named (of the same registry).
    PushFrom(&'a str),
}

/// One repository of one registry, with the access cnbx needs: what every request to it
/// needs (the connection, the credentials or token, what to name in errors).
pub(super) struct Repo<'a> {
    client: &'a RegistryClient,
    conn: Conn,
    name: String,
    scopes: Vec<String>,
    /// What its errors name.
    pub(super) ctx: Ctx,
}

/// One blob transfer of a push: the blob, and where its progress goes.
pub(super) struct BlobTask<'a> {
    pub(super) descriptor: &'a Descriptor,
    pub(super) reporter: &'a dyn Reporter,
    pub(super) id: &'a str,
}

/// How a request authenticates.
#[derive(Clone)]
enum RequestAuth {
    None,
    Basic(String, String),
    Bearer(String),
}

impl RequestAuth {
    /// `request` to `url` with these credentials when `url` is on the registry's own origin
    /// `base` (an upload location elsewhere gets none).
    fn apply(&self, request: reqwest::RequestBuilder, url: &Url, base: &Url) -> reqwest::RequestBuilder {
        if url.origin() != base.origin() {
            return request;
        }
        match self {
            Self::None => request,
            Self::Basic(user, password) => request.basic_auth(user, Some(password)),
            Self::Bearer(token) => request.bearer_auth(token),
        }
    }
}

impl<'a> Repo<'a> {
    /// Repository `name` of the registry `conn` reaches, for `access`, its errors told with
    /// `ctx`.
    pub(super) fn new(client: &'a RegistryClient, conn: Conn, name: &str, access: Access<'_>, ctx: Ctx) -> Self {
        let scopes = match access {
            Access::Pull => vec![format!("repository:{name}:pull")],
            Access::Push => vec![format!("repository:{name}:pull,push")],
            Access::PushFrom(src) => vec![format!("repository:{name}:pull,push"), format!("repository:{src}:pull")],
        };
        Self { client, conn, name: name.to_owned(), scopes, ctx }
    }

    /// The stall timeout.
    pub(super) fn stall(&self) -> Duration {
        self.conn.stall
    }

    /// `<base>/v2/<name>/<path>`.
    fn url(&self, path: &str) -> Result<Url, RegistryError> {
        self.conn
            .base
            .join(&format!("/v2/{}/{path}", self.name))
            .map_err(|e| self.ctx.error(RegistryErrorKind::Protocol(format!("invalid URL: {e}"))))
    }

    /// [`Repo::auth`], retried while the registry or its token service fails transiently:
    /// the first thing an operation does, so that an authentication failure is told as such.
    pub(super) async fn authorize(&self) -> Result<(), RegistryError> {
        retry(|| self.auth()).await.map(|_| ())
    }

    /// How requests to this repository authenticate now: what the registry's challenge asks
    /// for, with a bearer token for the repository's scopes (kept until it is about to
    /// expire). One attempt: the operation it is part of is retried.
    async fn auth(&self) -> Result<RequestAuth, RegistryError> {
        let inner = &self.client.inner;
        let registry = self.conn.registry.clone();
        let cached = lock(&inner.challenges).get(&registry).cloned();
        let challenge = match cached {
            Some(c) => c,
            None => {
                let c = token::ping(&self.conn, &self.ctx).await?;
                lock(&inner.challenges).insert(registry.clone(), c.clone());
                c
            }
        };
        let basic = || match &self.conn.basic {
            Some((user, password)) => RequestAuth::Basic(user.clone(), password.clone()),
            None => RequestAuth::None,
        };
        match challenge {
            token::Challenge::None => Ok(RequestAuth::None),
            token::Challenge::Basic => Ok(basic()),
            token::Challenge::Bearer { realm, service } => {
                let key = (registry, self.scopes.join(" "));
                if let Some(t) = lock(&inner.tokens).get(&key).filter(|t| t.is_fresh()) {
                    return Ok(RequestAuth::Bearer(t.value.clone()));
                }
                let fetched =
                    token::fetch(&self.conn, &inner.plain_http, &realm, service.as_deref(), &self.scopes, &self.ctx)
                        .await?;
                let value = fetched.value.clone();
                lock(&inner.tokens).insert(key, fetched);
                Ok(RequestAuth::Bearer(value))
            }
        }
    }

    /// Sends the request `make` builds for `url`, authenticated, waiting for its answer no
    /// longer than the stall timeout.
    async fn send(
        &self,
        url: &Url,
        make: impl FnOnce(&reqwest::Client, Url) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, RegistryError> {
        let auth = self.auth().await?;
        let request = auth.apply(make(&self.conn.http, url.clone()), url, &self.conn.base);
        transport::send(request, self.stall(), &self.ctx).await
    }

    /// The manifest bytes at `reference` (a tag or a digest), or `None` when the registry
    /// says it does not exist. A `Content-Length` larger than [`limits::MAX_DOCUMENT`] is
    /// refused before the body is read, and reading stops past that many bytes. The bytes
    /// are checked against `reference` when it is a digest, and against the
    /// `Docker-Content-Digest` header, if the registry sent one.
    pub(super) async fn get_manifest(&self, reference: &str) -> Result<Option<Vec<u8>>, RegistryError> {
        let limit = limits::MAX_DOCUMENT;
        let ctx = &self.ctx;
        let url = self.url(&format!("manifests/{reference}"))?;
        let too_large = || ctx.error(RegistryErrorKind::TooLarge { what: Document::Manifest, limit });
        let res = retry(|| async {
            let response = self
                .send(&url, |http, url| {
                    http.get(url).header(reqwest::header::ACCEPT, media_type::ALL_MANIFESTS.join(", "))
                })
                .await?;
            if response.status() != reqwest::StatusCode::OK {
                return Err(transport::status_error(response, self.stall(), ctx).await);
            }
            if response.content_length().is_some_and(|n| n > limit) {
                return Err(too_large());
            }
            let header = response
                .headers()
                .get("docker-content-digest")
                .and_then(|v| v.to_str().ok())
                .map(|v| v.trim().to_owned());
            let body = transport::read_body(response, limit, self.stall(), ctx).await?;
            Ok((body.complete().ok_or_else(too_large)?, header))
        })
        .await;
        let (bytes, header) = match res {
            Ok(found) => found,
            Err(e) if matches!(e.kind(), RegistryErrorKind::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let actual = Digest::of(&bytes);
        let asked = reference.starts_with("sha256:").then_some(reference);
        // Only sha256 is checked: it is what cnbx computes, and what registries send.
        for expected in [asked, header.as_deref()].into_iter().flatten() {
            if expected.starts_with("sha256:") && expected != actual.as_str() {
                return Err(ctx.error(RegistryErrorKind::DigestMismatch {
                    digest: excerpt(expected),
                    actual: actual.to_string(),
                }));
            }
        }
        Ok(Some(bytes))
    }

    /// The answer to `GET` blob `desc`, once it is a success whose announced length fits
    /// the descriptor (one attempt: callers retry). Only the registry is asked: the
    /// descriptor's `urls` are never fetched, and a blob the registry lacks is an error
    /// naming it.
    pub(super) async fn get_blob(&self, desc: &Descriptor) -> Result<reqwest::Response, RegistryError> {
        let url = self.url(&format!("blobs/{}", desc.digest))?;
        let response = self.send(&url, |http, url| http.get(url)).await?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(blob_missing(transport::status_error(response, self.stall(), &self.ctx).await, desc));
        }
        match response.content_length() {
            Some(n) if n > desc.size => {
                Err(blob_size_error(desc, SizeProblem::Announced { announced: n, expected: desc.size }, &self.ctx))
            }
            _ => Ok(response),
        }
    }

    /// A small blob (a config, at most [`limits::MAX_DOCUMENT`] bytes) into memory, verified.
    pub(super) async fn small_blob(&self, desc: &Descriptor) -> Result<Vec<u8>, RegistryError> {
        let limit = limits::MAX_DOCUMENT;
        let ctx = &self.ctx;
        if desc.size > limit {
            return Err(ctx.error(RegistryErrorKind::TooLarge { what: Document::Config, limit }));
        }
        let bytes = retry(|| async {
            let mut response = self.get_blob(desc).await?;
            let mut out = Vec::with_capacity(usize::try_from(desc.size).unwrap_or(0));
            while let Some(chunk) = transport::next_chunk(&mut response, self.stall(), ctx).await? {
                check_room(out.len() as u64, chunk.len(), desc, ctx)?;
                out.extend_from_slice(&chunk);
            }
            Ok(out)
        })
        .await?;
        let actual = Digest::of(&bytes);
        if actual != desc.digest {
            return Err(ctx.error(RegistryErrorKind::DigestMismatch {
                digest: desc.digest.to_string(),
                actual: actual.to_string(),
            }));
        }
        Ok(bytes)
    }

    /// Downloads one blob into `into`, verifying its digest.
    pub(super) async fn download_blob(
        &self,
        desc: &Descriptor,
        into: &BlobStore,
        reporter: &dyn Reporter,
    ) -> Result<(), RegistryError> {
        let ctx = &self.ctx;
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
            let mut response = self.get_blob(desc).await?;
            let mut writer = into.writer().map_err(write_err)?;
            while let Some(chunk) = transport::next_chunk(&mut response, self.stall(), ctx).await? {
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
                Err(BlobError::Mismatch { expected, actual, .. }) => {
                    Err(ctx.error(RegistryErrorKind::DigestMismatch {
                        digest: expected.to_string(),
                        actual: actual.to_string(),
                    }))
                }
                Err(e) => Err(store_err(e)),
            }
        })
        .await;
        reporter.finish(&task.id);
        res
    }

    /// Whether the repository has blob `digest` (`HEAD`).
    pub(super) async fn blob_exists(&self, digest: &Digest) -> Result<bool, RegistryError> {
        let url = self.url(&format!("blobs/{digest}"))?;
        retry(|| async {
            let response = self.send(&url, |http, url| http.head(url)).await?;
            match response.status() {
                s if s.is_success() => Ok(true),
                reqwest::StatusCode::NOT_FOUND => Ok(false),
                _ => Err(transport::status_error(response, self.stall(), &self.ctx).await),
            }
        })
        .await
    }

    /// Mounts blob `digest` from repository `from` of the same registry; `false` when the
    /// registry did not (it then answers 202 and expects an upload, which the caller makes).
    pub(super) async fn mount(&self, digest: &Digest, from: &str) -> bool {
        let Ok(mut url) = self.url("blobs/uploads/") else { return false };
        url.query_pairs_mut().append_pair("mount", digest.as_str()).append_pair("from", from);
        let sent = self.send(&url, |http, url| http.post(url).header(reqwest::header::CONTENT_LENGTH, "0")).await;
        matches!(sent, Ok(response) if response.status() == reqwest::StatusCode::CREATED)
    }

    /// Starts an upload: where to `PUT` the blob (the registry's `Location`, which must be a
    /// URL cnbx may request).
    async fn start_upload(&self) -> Result<Url, RegistryError> {
        let url = self.url("blobs/uploads/")?;
        let response = self.send(&url, |http, url| http.post(url).header(reqwest::header::CONTENT_LENGTH, "0")).await?;
        if response.status() != reqwest::StatusCode::ACCEPTED {
            return Err(transport::status_error(response, self.stall(), &self.ctx).await);
        }
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| url.join(v).ok())
            .ok_or_else(|| {
                self.ctx.error(RegistryErrorKind::Protocol("the registry started an upload without a location".into()))
            })?;
        if !self.client.inner.plain_http.allows(&location) {
            return Err(self.ctx.error(RegistryErrorKind::PlainHttp {
                url: excerpt(location.as_str()),
                host: transport::host_port(&location),
                via: Via::UploadLocation,
            }));
        }
        Ok(location)
    }

    /// Uploads blob `job.descriptor` with one monolithic `PUT` of the body `make` returns
    /// (made again for each attempt), failed as stalled when it moves no byte for the stall
    /// timeout (after the last byte, that is the time the registry takes to answer).
    async fn upload<F, Fut>(&self, job: &BlobTask<'_>, make: F) -> Result<(), RegistryError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<UploadBody, RegistryError>>,
    {
        let descriptor = job.descriptor;
        retry(|| async {
            // The content first: a source that fails opens no upload.
            let UploadBody { body, counter, refused, copy } = make().await?;
            let mut location = self.start_upload().await?;
            location.query_pairs_mut().append_pair("digest", descriptor.digest.as_str());
            let auth = self.auth().await?;
            let request = self
                .conn
                .http
                .put(location.clone())
                .header(reqwest::header::CONTENT_LENGTH, descriptor.size)
                .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                .body(body);
            let request = auth.apply(request, &location, &self.conn.base);
            // A copy's source has the stall timeout for each chunk, which names it: the
            // upload's own waits a little longer, so that a stalled source is told as such.
            let stall = if copy { self.stall() + Duration::from_millis(500) } else { self.stall() };
            let sent = with_progress(request.send(), &counter, job, stall, &self.ctx).await;
            if let Some(e) = lock(&refused).take() {
                return Err(e);
            }
            let response = sent?.map_err(|e| request_error(e, &self.ctx))?;
            if !response.status().is_success() {
                return Err(transport::status_error(response, self.stall(), &self.ctx).await);
            }
            Ok(())
        })
        .await
    }

    /// Streams blob `job.descriptor` from repository `from` (of this registry or another)
    /// to this one, verified as it streams.
    pub(super) async fn copy_from(&self, from: &Repo<'_>, job: &BlobTask<'_>) -> Result<(), RegistryError> {
        self.upload(job, || async move {
            let response = from.get_blob(job.descriptor).await?;
            let verifier = BlobVerifier::new(
                job.descriptor.digest.clone(),
                job.descriptor.size,
                format!("{} on {}", from.ctx.image, from.ctx.registry),
            );
            let refused = Arc::new(Mutex::new(None));
            let counter = Arc::new(AtomicU64::new(0));
            let chunks = source_chunks(response, from.stall(), from.ctx.clone(), refused.clone());
            let (ctx, desc) = (from.ctx.clone(), job.descriptor.clone());
            let refuse = Box::new(move |e| verify_error(e, &desc, &ctx));
            let state =
                Upload { chunks, verifier, done: false, refused: refused.clone(), counter: counter.clone(), refuse };
            let body = reqwest::Body::wrap_stream(futures_util::stream::unfold(state, Upload::next));
            Ok(UploadBody { body, counter, refused, copy: true })
        })
        .await
    }

    /// Uploads `bytes` (a config) as blob `job.descriptor`.
    pub(super) async fn upload_bytes(&self, bytes: &[u8], job: &BlobTask<'_>) -> Result<(), RegistryError> {
        let bytes = bytes::Bytes::copy_from_slice(bytes);
        self.upload(job, || {
            let bytes = bytes.clone();
            async move {
                let counter = Arc::new(AtomicU64::new(bytes.len() as u64));
                Ok(UploadBody {
                    body: reqwest::Body::from(bytes),
                    counter,
                    refused: Arc::new(Mutex::new(None)),
                    copy: false,
                })
            }
        })
        .await
    }

    /// Uploads a blob from a local store, hashed as it streams: a blob that is not what its
    /// descriptor says fails the upload before its last bytes are sent.
    pub(super) async fn upload_file(&self, store: &BlobStore, job: &BlobTask<'_>) -> Result<(), RegistryError> {
        let descriptor = job.descriptor;
        let store_err =
            |source: BlobError| self.ctx.error(RegistryErrorKind::Store { digest: descriptor.digest.clone(), source });
        self.upload(job, || async {
            let file = store.open_blob(&descriptor.digest).map_err(store_err)?;
            let from = store.path(&descriptor.digest).display().to_string();
            let verifier = BlobVerifier::new(descriptor.digest.clone(), descriptor.size, from);
            let counter = Arc::new(AtomicU64::new(0));
            let refused = Arc::new(Mutex::new(None));
            let chunks =
                tokio_util::io::ReaderStream::with_capacity(tokio::fs::File::from_std(file), 256 * 1024).boxed();
            let (ctx, digest) = (self.ctx.clone(), descriptor.digest.clone());
            let refuse = Box::new(move |source| ctx.error(RegistryErrorKind::Store { digest: digest.clone(), source }));
            let state =
                Upload { chunks, verifier, done: false, refused: refused.clone(), counter: counter.clone(), refuse };
            let body = reqwest::Body::wrap_stream(futures_util::stream::unfold(state, Upload::next));
            Ok(UploadBody { body, counter, refused, copy: false })
        })
        .await
    }

    /// Pushes a manifest or index as `reference` (a tag or a digest).
    pub(super) async fn put_manifest(
        &self,
        reference: &str,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<(), RegistryError> {
        let ctx = &self.ctx;
        let content_type = reqwest::header::HeaderValue::from_str(media_type).map_err(|_| {
            ctx.error(RegistryErrorKind::Protocol(format!("invalid media type '{}'", excerpt(media_type))))
        })?;
        let url = self.url(&format!("manifests/{reference}"))?;
        let body = bytes::Bytes::copy_from_slice(bytes);
        retry(|| async {
            let response = self
                .send(&url, |http, url| {
                    http.put(url).header(reqwest::header::CONTENT_TYPE, content_type.clone()).body(body.clone())
                })
                .await?;
            if !response.status().is_success() {
                return Err(transport::status_error(response, self.stall(), ctx).await);
            }
            Ok(())
        })
        .await
    }
}

/// The body of one upload attempt: what it sends, a count of the bytes it sent so far, where
/// the error that stopped it is kept (content that is not the blob, a failed source), and
/// whether it copies from another registry.
struct UploadBody {
    body: reqwest::Body,
    counter: Arc<AtomicU64>,
    refused: Arc<Mutex<Option<RegistryError>>>,
    copy: bool,
}

/// The chunks of `response` (a blob copied from another registry), each within `stall`; a
/// failure is kept in `refused` (naming the source) and ends the chunks with an error.
fn source_chunks(
    response: reqwest::Response,
    stall: Duration,
    ctx: Ctx,
    refused: Arc<Mutex<Option<RegistryError>>>,
) -> futures_util::stream::BoxStream<'static, std::io::Result<bytes::Bytes>> {
    futures_util::stream::unfold(Some(response), move |response| {
        let (ctx, refused) = (ctx.clone(), refused.clone());
        async move {
            let mut response = response?;
            match transport::next_chunk(&mut response, stall, &ctx).await {
                Ok(Some(chunk)) => Some((Ok(chunk), Some(response))),
                Ok(None) => None,
                Err(e) => {
                    *lock(&refused) = Some(e);
                    Some((Err(std::io::Error::other("the source of the blob failed")), None))
                }
            }
        }
    })
    .boxed()
}

/// The body of an upload: each chunk passed on only once a [`BlobVerifier`] accepted it. A
/// refusal is kept in `refused` (as the error `refuse` makes of it, to report) and ends the
/// body with an error.
struct Upload {
    chunks: futures_util::stream::BoxStream<'static, std::io::Result<bytes::Bytes>>,
    verifier: BlobVerifier,
    done: bool,
    refused: Arc<Mutex<Option<RegistryError>>>,
    counter: Arc<AtomicU64>,
    refuse: Box<dyn Fn(BlobError) -> RegistryError + Send + Sync>,
}

type UploadItem = Result<bytes::Bytes, std::io::Error>;

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
                return Some((Err(e), self));
            }
            None => match self.verifier.finish() {
                Ok(()) => return None,
                Err(e) => e,
            },
        };
        self.done = true;
        *lock(&self.refused) = Some((self.refuse)(refusal));
        let e = std::io::Error::new(std::io::ErrorKind::InvalidData, "the blob is not what its descriptor says");
        Some((Err(e), self))
    }
}

/// Runs the transfer `fut`, reporting the growth of `counter` as progress every 100 ms, and
/// failing it as stalled when `counter` has not grown for `stall` (after the last byte, that
/// is the time the registry takes to answer).
async fn with_progress<F: Future>(
    fut: F,
    counter: &AtomicU64,
    job: &BlobTask<'_>,
    stall: Duration,
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
                    job.reporter.advance(job.id, now - reported);
                }
                return Ok(out);
            }
            _ = tick.tick() => {
                let now = counter.load(Ordering::Relaxed);
                if now > reported {
                    job.reporter.advance(job.id, now - reported);
                    reported = now;
                    last_move = tokio::time::Instant::now();
                } else if last_move.elapsed() >= stall {
                    return Err(stalled(stall, ctx));
                }
            }
        }
    }
}
