//! Registry credentials from Docker's `config.json` (`auths`, `credHelpers`, `credsStore`).
//!
//! The file is `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json` (or the directory
//! given in [`crate::registry::RegistryOptions::docker_config_dir`]). A missing file, or no
//! entry for a registry, means anonymous access. Credential helpers are run synchronously by
//! `docker_credential`; call [`lookup`] from a blocking context.
//!
//! A credential helper is run as `docker-credential-<name>`, found on `PATH`: a name
//! (`credHelpers` values, `credsStore`) may hold only letters, digits, `.`, `_` and `-`, so
//! that a config file cannot make cnbx run a program by path (`x/evil` would run
//! `docker-credential-x/evil` relative to the working directory). Any other name is an error
//! naming the file and the key. An empty `credsStore` means none, as for Docker.
//!
//! Credentials never appear in `Debug` output or in error messages.

use std::fmt;
use std::path::{Path, PathBuf};

use docker_credential::{CredentialRetrievalError, DockerCredential};

/// The key Docker uses for Docker Hub in `config.json` and with credential helpers.
pub const DOCKER_HUB_CONFIG_KEY: &str = "https://index.docker.io/v1/";

/// Credentials for one registry.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// No credentials configured.
    Anonymous,
    /// A user name and password (or token used as a password).
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: String,
    },
    /// An OAuth refresh token (`identitytoken`); cnbx cannot exchange these yet.
    IdentityToken,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Anonymous => f.write_str("Anonymous"),
            Self::Basic { username, .. } => write!(f, "Basic({username}, <redacted>)"),
            Self::IdentityToken => f.write_str("IdentityToken(<redacted>)"),
        }
    }
}

/// Reading credentials failed (a broken config file or a failing helper).
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// `config.json` exists but cannot be read or parsed.
    #[error("cannot read the Docker config {path}: {reason}")]
    Config {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A credential helper failed.
    #[error("the Docker credential helper for {registry} failed: {reason}")]
    Helper {
        /// Registry the credentials were for.
        registry: String,
        /// What the helper said (its stderr, never its stdout).
        reason: String,
    },
}

/// The directory holding `config.json`: `explicit`, else `$DOCKER_CONFIG`, else `~/.docker`.
pub fn docker_config_dir(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(dir) = explicit {
        return Some(dir.to_path_buf());
    }
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    std::env::var_os("HOME").filter(|h| !h.is_empty()).map(|home| Path::new(&home).join(".docker"))
}

/// The keys under which credentials for `registry` (a normalised host such as
/// `index.docker.io` or `localhost:5000`) may be stored, most specific first.
pub fn config_keys(registry: &str) -> Vec<String> {
    match registry {
        "index.docker.io" | "docker.io" | "registry-1.docker.io" => vec![
            DOCKER_HUB_CONFIG_KEY.to_owned(),
            "index.docker.io".to_owned(),
            "docker.io".to_owned(),
            "registry-1.docker.io".to_owned(),
        ],
        other => vec![other.to_owned(), format!("https://{other}"), format!("http://{other}")],
    }
}

/// Looks up the credentials for `registry` in `<config_dir>/config.json`. Blocking (it may run
/// a credential helper).
pub fn lookup(config_dir: Option<&Path>, registry: &str) -> Result<Credential, AuthError> {
    let Some(dir) = config_dir else { return Ok(Credential::Anonymous) };
    let path = dir.join("config.json");
    // The user's own file (it may be a link into a dotfiles directory), but bounded.
    let text = match cnbx_fs::read_bounded_following(&path, cnbx_fs::limits::MAX_CONFIG_FILE, "a Docker config file") {
        Ok(t) => t,
        Err(e) if e.is_not_found() => return Ok(Credential::Anonymous),
        Err(e) => return Err(AuthError::Config { path, reason: e.to_string() }),
    };
    let mut doc = match serde_json::from_slice::<serde_json::Value>(&text) {
        Ok(doc) => doc,
        Err(e) => return Err(AuthError::Config { path, reason: e.to_string() }),
    };
    if let Err(reason) = check_helper_names(&mut doc) {
        return Err(AuthError::Config { path, reason });
    }
    let text = serde_json::to_vec(&doc).map_err(|e| AuthError::Config { path: path.clone(), reason: e.to_string() })?;
    for key in config_keys(registry) {
        match docker_credential::get_credential_from_reader(text.as_slice(), &key) {
            Ok(DockerCredential::UsernamePassword(username, password)) => {
                return Ok(Credential::Basic { username, password });
            }
            Ok(DockerCredential::IdentityToken(_)) => return Ok(Credential::IdentityToken),
            Err(CredentialRetrievalError::NoCredentialConfigured) => {}
            Err(CredentialRetrievalError::HelperFailure { stderr, stdout, .. }) => {
                // Docker treats "credentials not found" from a helper as anonymous access.
                let said = format!("{stdout} {stderr}").to_ascii_lowercase();
                if said.contains("not found") || said.contains("no credentials") {
                    continue;
                }
                return Err(AuthError::Helper { registry: registry.to_owned(), reason: stderr.trim().to_owned() });
            }
            Err(CredentialRetrievalError::ConfigReadError | CredentialRetrievalError::ConfigNotFound) => {
                return Err(AuthError::Config { path, reason: "invalid config.json".to_owned() });
            }
            Err(other) => {
                return Err(AuthError::Helper { registry: registry.to_owned(), reason: other.to_string() });
            }
        }
    }
    Ok(Credential::Anonymous)
}

/// Whether `name` may name a credential helper (`docker-credential-<name>` on `PATH`).
fn is_helper_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Checks every credential helper `doc` names (see the module docs), and drops an empty
/// `credsStore`; the error says which key is wrong.
fn check_helper_names(doc: &mut serde_json::Value) -> Result<(), String> {
    let refuse = |key: String, name: &str| {
        Err(format!(
            "{key} names the credential helper '{}': a helper name may hold only letters, digits, '.', '_' and '-' \
             (cnbx runs docker-credential-<name> from PATH)",
            cnbx_fs::excerpt(name)
        ))
    };
    let Some(object) = doc.as_object_mut() else { return Ok(()) };
    if let Some(serde_json::Value::String(store)) = object.get("credsStore") {
        if store.is_empty() {
            object.remove("credsStore");
        } else if !is_helper_name(store) {
            return refuse("credsStore".to_owned(), store);
        }
    }
    if let Some(serde_json::Value::Object(helpers)) = object.get("credHelpers") {
        for (registry, helper) in helpers {
            if let serde_json::Value::String(name) = helper
                && !name.is_empty()
                && !is_helper_name(name)
            {
                return refuse(format!("credHelpers.\"{}\"", cnbx_fs::excerpt(registry)), name);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_config(dir: &Path, json: &str) {
        std::fs::write(dir.join("config.json"), json).unwrap();
    }

    #[test]
    fn reads_auths_by_host_and_hub_key() {
        let dir = tempfile::tempdir().unwrap();
        // "alice:pw" and "bob:hub"
        write_config(
            dir.path(),
            r#"{"auths":{"localhost:5000":{"auth":"YWxpY2U6cHc="},"https://index.docker.io/v1/":{"auth":"Ym9iOmh1Yg=="}}}"#,
        );
        assert_eq!(
            lookup(Some(dir.path()), "localhost:5000").unwrap(),
            Credential::Basic { username: "alice".into(), password: "pw".into() }
        );
        assert_eq!(
            lookup(Some(dir.path()), "index.docker.io").unwrap(),
            Credential::Basic { username: "bob".into(), password: "hub".into() }
        );
        assert_eq!(lookup(Some(dir.path()), "ghcr.io").unwrap(), Credential::Anonymous);
        let debug = format!("{:?}", lookup(Some(dir.path()), "localhost:5000").unwrap());
        assert!(!debug.contains("pw"), "{debug}");
    }

    #[test]
    fn missing_file_is_anonymous_and_broken_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(lookup(Some(dir.path()), "x.io").unwrap(), Credential::Anonymous);
        write_config(dir.path(), "{not json");
        assert!(matches!(lookup(Some(dir.path()), "x.io"), Err(AuthError::Config { .. })));
    }

    #[test]
    fn helper_names_that_are_not_plain_names_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json").display().to_string();
        for (config, key) in [
            (r#"{"credHelpers":{"x.io":"x/evil"}}"#, r#"credHelpers."x.io""#),
            (r#"{"credHelpers":{"other.io":"../../bin/sh"}}"#, r#"credHelpers."other.io""#),
            (r#"{"credsStore":"x/evil"}"#, "credsStore"),
            (r#"{"credsStore":"desk top"}"#, "credsStore"),
        ] {
            write_config(dir.path(), config);
            let err = lookup(Some(dir.path()), "x.io").unwrap_err();
            let text = err.to_string();
            assert!(matches!(err, AuthError::Config { .. }), "{text}");
            assert!(text.contains(&path) && text.contains(key), "{text}");
        }
        // Plain names are looked up on PATH (this one is not there: the helper fails); an
        // empty credsStore means none.
        write_config(dir.path(), r#"{"credsStore":"","credHelpers":{"x.io":"cnbx-test_1.0-missing"}}"#);
        assert!(matches!(lookup(Some(dir.path()), "x.io"), Err(AuthError::Helper { .. })));
        assert_eq!(lookup(Some(dir.path()), "y.io").unwrap(), Credential::Anonymous);
    }

    #[test]
    fn failing_helper_is_reported_without_stdout() {
        let dir = tempfile::tempdir().unwrap();
        write_config(dir.path(), r#"{"credHelpers":{"x.io":"cnbx-test-does-not-exist"}}"#);
        let err = lookup(Some(dir.path()), "x.io").unwrap_err();
        assert!(err.to_string().contains("x.io"), "{err}");
    }
}
