//! The one way an HTTP client is made: registries, downloads and the container engine all
//! start from [`client_builder`].
//!
//! TLS is rustls with `ring` as its cryptography (reqwest is built without a provider of its
//! own, see the workspace `Cargo.toml`): the provider is installed for the process the first
//! time a client is made. Certificates are checked against the system's trust store by
//! reqwest's platform verifier, as before.

use std::sync::Once;

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
