//! How a registry wants to be authenticated (the challenge its `/v2/` answers with), and
//! bearer tokens from its token service, fetched by cnbx itself so that every read is bounded
//! and the credentials go only where they may.
//!
//! * The realm a registry names is a URL like any other: plain HTTP only to a loopback host or
//!   one named with `--insecure-registry` ([`super::transport::PlainHttp`]). A realm in clear
//!   text elsewhere is refused before anything is sent, the password least of all.
//! * The token service's answer is read up to [`MAX_TOKEN_ANSWER`] bytes, its error answers
//!   up to [`super::transport::MAX_ERROR_BODY`] (quoted as an excerpt), each chunk within
//!   the stall timeout.
//! * Tokens are kept per registry and set of scopes until shortly before they expire.

use std::time::{Duration, Instant};

use cnbx_fs::{excerpt, limits};
use reqwest::Url;
use reqwest::header::WWW_AUTHENTICATE;

use super::transport::{self, PlainHttp, host_port};
use super::{AuthNote, Conn, Ctx, Document, RegistryError, RegistryErrorKind, Via};

/// The most cnbx reads of a token service's answer (tokens are a few KiB).
pub(super) const MAX_TOKEN_ANSWER: u64 = limits::MIB;

/// How long a token is assumed to be valid when its answer does not say (what the
/// distribution spec prescribes).
const DEFAULT_LIFETIME: Duration = Duration::from_secs(60);

/// How long before it expires a token is no longer used.
const MARGIN: Duration = Duration::from_secs(10);

/// What a registry's `/v2/` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Challenge {
    /// Nothing: requests go without credentials.
    None,
    /// Basic authentication (or a challenge cnbx cannot read): the credentials, if any.
    Basic,
    /// Bearer tokens from the token service at `realm`.
    Bearer {
        /// The token service.
        realm: String,
        /// Its `service` parameter.
        service: Option<String>,
    },
}

/// A bearer token and when to stop using it.
#[derive(Debug, Clone)]
pub(super) struct Token {
    pub(super) value: String,
    pub(super) use_until: Instant,
}

impl Token {
    pub(super) fn is_fresh(&self) -> bool {
        Instant::now() < self.use_until
    }
}

/// Asks the registry's `/v2/` how it wants to be authenticated. Its body is never read.
pub(super) async fn ping(conn: &Conn, ctx: &Ctx) -> Result<Challenge, RegistryError> {
    let url = conn.base.join("/v2/").map_err(|e| ctx.error(RegistryErrorKind::Protocol(e.to_string())))?;
    let response = transport::send(conn.http.get(url), conn.stall, ctx).await?;
    let status = response.status();
    if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        return Err(transport::status_error(response, conn.stall, ctx).await);
    }
    let challenges: Vec<String> = response
        .headers()
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::to_owned)
        .collect();
    if challenges.is_empty() {
        return Ok(Challenge::None);
    }
    for header in &challenges {
        if let Some(params) = parse_bearer_challenge(header) {
            let get = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
            if let Some(realm) = get("realm") {
                return Ok(Challenge::Bearer { realm, service: get("service") });
            }
        }
    }
    Ok(Challenge::Basic)
}

/// The parameters of the `Bearer` challenge in a `WWW-Authenticate` header
/// (`Bearer realm="…",service="…"`), names in lower case and values unescaped; `None` when
/// the header has no such challenge or cannot be parsed.
pub(super) fn parse_bearer_challenge(header: &str) -> Option<Vec<(String, String)>> {
    let challenges = http_auth::parse_challenges(header).ok()?;
    let bearer = challenges.into_iter().find(|c| c.scheme.eq_ignore_ascii_case("bearer"))?;
    Some(bearer.params.iter().map(|(name, value)| (name.to_ascii_lowercase(), value.to_unescaped())).collect())
}

/// The answer of a token service.
#[derive(serde::Deserialize)]
struct Answer {
    token: Option<String>,
    access_token: Option<String>,
    expires_in: Option<u64>,
}

/// A token for `scopes` from the token service at `realm`, asked with the registry's
/// credentials when it may have them. Not retried (the caller retries).
pub(super) async fn fetch(
    conn: &Conn,
    plain_http: &PlainHttp,
    realm: &str,
    service: Option<&str>,
    scopes: &[String],
    ctx: &Ctx,
) -> Result<Token, RegistryError> {
    use RegistryErrorKind as K;
    let mut url = Url::parse(realm).map_err(|_| {
        ctx.error(K::Protocol(format!("the registry names an invalid token service '{}'", excerpt(realm))))
    })?;
    if !plain_http.allows(&url) {
        return Err(ctx.error(K::PlainHttp {
            url: excerpt(url.as_str()),
            host: host_port(&url),
            via: Via::TokenService,
        }));
    }
    {
        let mut query = url.query_pairs_mut();
        for scope in scopes {
            query.append_pair("scope", scope);
        }
        if let Some(service) = service {
            query.append_pair("service", service);
        }
    }
    let mut request = conn.http.get(url);
    if let Some((user, password)) = &conn.basic {
        request = request.basic_auth(user, Some(password));
    }
    let response = transport::send(request, conn.stall, ctx).await?;
    let status = response.status();
    if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
        let body = transport::read_body(response, transport::MAX_ERROR_BODY, conn.stall, ctx)
            .await
            .map(|b| b.bytes)
            .unwrap_or_default();
        let said = excerpt(String::from_utf8_lossy(&body).trim());
        let note = if said.is_empty() { AuthNote::None } else { AuthNote::TokenService(said) };
        return Err(super::auth_error(ctx, note));
    }
    if !status.is_success() {
        return Err(transport::status_error(response, conn.stall, ctx).await);
    }
    let too_large = || ctx.error(K::TooLarge { what: Document::TokenAnswer, limit: MAX_TOKEN_ANSWER });
    if response.content_length().is_some_and(|n| n > MAX_TOKEN_ANSWER) {
        return Err(too_large());
    }
    let body =
        transport::read_body(response, MAX_TOKEN_ANSWER, conn.stall, ctx).await?.complete().ok_or_else(too_large)?;
    let invalid = || ctx.error(K::Auth(AuthNote::TokenService("its answer holds no token".to_owned())));
    let answer: Answer = serde_json::from_slice(&body).map_err(|_| invalid())?;
    let value = answer.token.or(answer.access_token).filter(|t| !t.is_empty()).ok_or_else(invalid)?;
    let lifetime = answer.expires_in.map_or(DEFAULT_LIFETIME, Duration::from_secs).max(DEFAULT_LIFETIME);
    Ok(Token { value, use_until: Instant::now() + lifetime - MARGIN })
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
