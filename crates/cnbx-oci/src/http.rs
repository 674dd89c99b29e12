//! The one way an HTTP client is made: registries, downloads and the container engine all
//! start from [`client_builder`].
//!
//! TLS is rustls with `ring` as its cryptography (reqwest is built without a provider of its
//! own, see the workspace `Cargo.toml`): the provider is installed for the process the first
//! time a client is made. Certificates are checked against the system's trust store by
//! reqwest's platform verifier, as before.

use std::fmt;
use std::sync::Once;
use std::time::Duration;

use reqwest::Url;

/// The `User-Agent` of every request cnbx makes.
pub const USER_AGENT: &str = concat!("cnbx/", env!("CARGO_PKG_VERSION"));

/// How many redirects one request may follow.
pub const MAX_REDIRECTS: usize = 10;

/// A `reqwest` client builder, with the process's TLS provider installed first.
pub fn client_builder() -> reqwest::ClientBuilder {
    static PROVIDER: Once = Once::new();
    PROVIDER.call_once(|| {
        // Fails only when a provider is installed already (by an embedding program, say):
        // that one is then used.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
    reqwest::Client::builder()
}

/// A client for hosts on the network (registries, downloads): `connect` bounds each
/// connection (TCP and TLS), no `Referer` is sent, and a redirect is followed at most
/// [`MAX_REDIRECTS`] times, each only to a URL `refuse` finds nothing against (what it returns
/// ends the request as its error). No read timeout: waits are the caller's to bound.
pub fn network_client<E>(
    connect: Duration,
    refuse: impl Fn(&Url) -> Option<E> + Send + Sync + 'static,
) -> reqwest::Result<reqwest::Client>
where
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let policy = reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() > MAX_REDIRECTS {
            return attempt.error(TooManyRedirects);
        }
        match refuse(attempt.url()) {
            Some(refused) => attempt.error(refused),
            None => attempt.follow(),
        }
    });
    client_builder().user_agent(USER_AGENT).connect_timeout(connect).redirect(policy).referer(false).build()
}

/// The error of a request that was redirected more than [`MAX_REDIRECTS`] times.
#[derive(Debug)]
struct TooManyRedirects;

impl fmt::Display for TooManyRedirects {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "more than {MAX_REDIRECTS} redirects")
    }
}

impl std::error::Error for TooManyRedirects {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_can_be_made_and_made_again() {
        client_builder().build().expect("a client");
        client_builder().build().expect("a second client");
        assert!(rustls::crypto::CryptoProvider::get_default().is_some());
    }
}
