//! The HTTP side of the registry client: one `reqwest` client for every registry, which hosts
//! cnbx speaks plain HTTP to, requests whose wait for an answer is bounded, answers read with
//! a bound, and error answers turned into [`RegistryError`]s.
//!
//! * Plain HTTP goes only to loopback hosts and to hosts named with `--insecure-registry`
//!   ([`PlainHttp`]), whoever names the URL: the user, a registry's redirect, a token
//!   service's realm or an upload's location. A redirect elsewhere is followed over HTTPS only
//!   (registries send blobs to storage services that way), at most [`crate::http::MAX_REDIRECTS`] times;
//!   `reqwest` drops the `Authorization` header when a redirect leaves the origin (scheme,
//!   host or port), and no `Referer` is sent.
//! * Every answer is read with a bound, and every wait with the stall timeout: the head of an
//!   answer, and each chunk of its body.

use std::fmt;
use std::time::Duration;

use cnbx_fs::excerpt;
use reqwest::{StatusCode, Url};

use super::{AuthNote, Ctx, Missing, RegistryError, RegistryErrorKind, Timeouts, auth_error, request_error, stalled};

/// How much of an error answer's body is read (to quote an excerpt of it).
pub(super) const MAX_ERROR_BODY: u64 = 64 * 1024;

/// Which hosts cnbx speaks plain HTTP to: loopback hosts (`localhost`, `127.0.0.0/8`,
/// `[::1]`) and the hosts named with `--insecure-registry` (`HOST[:PORT]`; without a port,
/// every port of that host).
#[derive(Debug, Clone, Default)]
pub(super) struct PlainHttp {
    insecure: Vec<(String, Option<u16>)>,
}

impl PlainHttp {
    /// The rule for these `--insecure-registry` entries (`HOST[:PORT]`, also accepted with
    /// an `http://` or `https://` prefix or a trailing `/`).
    pub(super) fn new(insecure_registries: &[String]) -> Self {
        let insecure = insecure_registries
            .iter()
            .filter_map(|entry| {
                let entry = entry.trim();
                let entry = entry.strip_prefix("http://").or_else(|| entry.strip_prefix("https://")).unwrap_or(entry);
                let (host, port) = split_host_port(entry.trim_end_matches('/'));
                let port = match port {
                    Some(p) => Some(p.parse().ok()?),
                    None => None,
                };
                (!host.is_empty()).then(|| (host.to_ascii_lowercase(), port))
            })
            .collect();
        Self { insecure }
    }

    /// Whether the registry `host[:port]` (as an image reference names it) is spoken to over
    /// plain HTTP.
    pub(super) fn registry(&self, registry: &str) -> bool {
        let (host, port) = split_host_port(registry);
        let port = match port {
            Some(p) => match p.parse() {
                Ok(p) => Some(p),
                Err(_) => return false,
            },
            None => None,
        };
        cnbx_refs::reference::is_loopback_host(host) || self.named(host, port)
    }

    /// Whether cnbx may request `url`: HTTPS anywhere, plain HTTP to these hosts only.
    pub(super) fn allows(&self, url: &Url) -> bool {
        match (url.scheme(), url.host_str()) {
            ("https", Some(_)) => true,
            ("http", Some(host)) => {
                cnbx_refs::reference::is_loopback_host(host) || self.named(host, url.port_or_known_default())
            }
            _ => false,
        }
    }

    fn named(&self, host: &str, port: Option<u16>) -> bool {
        self.insecure.iter().any(|(h, p)| h.eq_ignore_ascii_case(host) && (p.is_none() || *p == port))
    }
}

/// `host` and `port` of `host[:port]` (IPv6 literals keep their brackets).
fn split_host_port(s: &str) -> (&str, Option<&str>) {
    if s.starts_with('[') {
        return match s.find(']') {
            Some(end) => (&s[..=end], s[end + 1..].strip_prefix(':')),
            None => (s, None),
        };
    }
    match s.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (s, None),
    }
}

/// `HOST[:PORT]` of `url`, as `--insecure-registry` takes it.
pub(super) fn host_port(url: &Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_owned(),
        (None, _) => String::new(),
    }
}

/// A URL cnbx will not request in clear text (the error a redirect ends with).
#[derive(Debug)]
pub(super) struct PlainHttpRefused(pub(super) Url);

impl fmt::Display for PlainHttpRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "refusing to follow a redirect to {} over plain HTTP", self.0)
    }
}

impl std::error::Error for PlainHttpRefused {}

/// The one HTTP client of a [`super::RegistryClient`]: `timeouts.connect` for each
/// connection (TCP and TLS), redirects only where `plain_http` allows, no `Referer`.
pub(super) fn http_client(plain_http: PlainHttp, timeouts: Timeouts) -> reqwest::Result<reqwest::Client> {
    // No read timeout: it would cut off an upload that takes long but keeps moving. Waits are
    // bounded by the stall timeout instead (`send`, `read_body`, the transfers' progress).
    crate::http::network_client(timeouts.connect, move |url| {
        (!plain_http.allows(url)).then(|| PlainHttpRefused(url.clone()))
    })
}

/// Sends `request`, failing as stalled when no answer (head) comes within `stall`.
pub(super) async fn send(
    request: reqwest::RequestBuilder,
    stall: Duration,
    ctx: &Ctx,
) -> Result<reqwest::Response, RegistryError> {
    match tokio::time::timeout(stall, request.send()).await {
        Ok(Ok(response)) => Ok(response),
        Ok(Err(e)) => Err(request_error(e, ctx)),
        Err(_) => Err(stalled(stall, ctx)),
    }
}

/// The next chunk of `response`'s body, failing as stalled when none comes within `stall`.
pub(super) async fn next_chunk(
    response: &mut reqwest::Response,
    stall: Duration,
    ctx: &Ctx,
) -> Result<Option<bytes::Bytes>, RegistryError> {
    match tokio::time::timeout(stall, response.chunk()).await {
        Ok(Ok(chunk)) => Ok(chunk),
        Ok(Err(e)) => Err(request_error(e, ctx)),
        Err(_) => Err(stalled(stall, ctx)),
    }
}

/// A body read with a bound.
pub(super) struct Body {
    pub(super) bytes: Vec<u8>,
    /// Whether the body ended within the bound.
    pub(super) whole: bool,
}

impl Body {
    pub(super) fn complete(self) -> Option<Vec<u8>> {
        self.whole.then_some(self.bytes)
    }
}

/// Reads at most `limit` bytes of `response`'s body (stopping there when there is more),
/// each chunk within `stall`.
pub(super) async fn read_body(
    mut response: reqwest::Response,
    limit: u64,
    stall: Duration,
    ctx: &Ctx,
) -> Result<Body, RegistryError> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let mut bytes = Vec::new();
    while let Some(chunk) = next_chunk(&mut response, stall, ctx).await? {
        let room = limit.saturating_sub(bytes.len());
        if chunk.len() > room {
            bytes.extend_from_slice(&chunk[..room]);
            return Ok(Body { bytes, whole: false });
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(Body { bytes, whole: true })
}

/// The error an answer with an error status (or an unexpected one) stands for, from its
/// status and the start of its body ([`MAX_ERROR_BODY`] bytes at most; whatever came before
/// the body stalled or failed).
pub(super) async fn status_error(response: reqwest::Response, stall: Duration, ctx: &Ctx) -> RegistryError {
    let status = response.status();
    let body = read_body(response, MAX_ERROR_BODY, stall, ctx).await.map(|b| b.bytes).unwrap_or_default();
    classify_status(status, &body, ctx)
}

/// An OCI error envelope (`{"errors":[{"code":"…","message":"…"}]}`).
#[derive(serde::Deserialize)]
struct Envelope {
    errors: Vec<EnvelopeError>,
}

#[derive(serde::Deserialize)]
struct EnvelopeError {
    code: String,
    #[serde(default)]
    message: String,
}

impl Envelope {
    fn has(&self, codes: &[&str]) -> bool {
        self.errors.iter().any(|e| codes.iter().any(|c| e.code.eq_ignore_ascii_case(c)))
    }

    fn text(&self) -> String {
        self.errors
            .iter()
            .map(|e| if e.message.trim().is_empty() { e.code.as_str() } else { e.message.as_str() })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// The error for an answer with `status` and `body` (its start).
pub(super) fn classify_status(status: StatusCode, body: &[u8], ctx: &Ctx) -> RegistryError {
    use RegistryErrorKind as K;
    let code = status.as_u16();
    let envelope = serde_json::from_slice::<Envelope>(body).ok().filter(|e| !e.errors.is_empty());
    let said = match &envelope {
        Some(e) => excerpt(e.text().trim()),
        None => excerpt(String::from_utf8_lossy(body).trim()),
    };
    let server = |code| {
        ctx.error(K::Server { code, message: if said.is_empty() { "(no message)".into() } else { said.clone() } })
    };
    match (code, &envelope) {
        (401 | 403, _) => auth_error(ctx, AuthNote::None),
        (_, Some(e)) if e.has(&["UNAUTHORIZED", "DENIED"]) => auth_error(ctx, AuthNote::None),
        (_, Some(e)) if e.has(&["MANIFEST_UNKNOWN", "NAME_UNKNOWN", "BLOB_UNKNOWN", "NOT_FOUND"]) => {
            ctx.error(K::NotFound(Missing::Reported(said)))
        }
        (404, _) => ctx.error(K::NotFound(Missing::Image)),
        (_, Some(e)) if e.has(&["TOOMANYREQUESTS"]) => server(429),
        (400..=499, Some(_)) if code != 408 && code != 429 => ctx.error(K::Protocol(said)),
        _ => server(code),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn plain_http_goes_to_loopback_and_named_hosts_only() {
        let rule = PlainHttp::new(&["reg.internal:5000".into(), "http://other.internal/".into(), "10.1.2.3".into()]);
        for allowed in [
            "http://localhost/x",
            "http://127.0.0.9:1234/x",
            "http://[::1]:5000/x",
            "http://reg.internal:5000/x",
            "http://other.internal:9/x",
            "http://10.1.2.3/token",
            "https://anywhere.example/blob",
        ] {
            assert!(rule.allows(&url(allowed)), "{allowed}");
        }
        for refused in [
            "http://reg.internal:5001/x",
            "http://reg.internal/x",
            "http://169.254.169.254/latest/meta-data",
            "http://192.0.2.2:8080/blob",
            "http://example.com/x",
            "ftp://localhost/x",
            "file:///etc/passwd",
        ] {
            assert!(!rule.allows(&url(refused)), "{refused}");
        }
        assert!(rule.registry("reg.internal:5000") && rule.registry("localhost:5000") && rule.registry("[::1]"));
        assert!(!rule.registry("reg.internal:5001") && !rule.registry("ghcr.io"));
        assert_eq!(host_port(&url("http://192.0.2.2:8080/blob")), "192.0.2.2:8080");
        assert_eq!(host_port(&url("http://example.com/x")), "example.com");
    }
}
