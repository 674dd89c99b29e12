//! Where the engine is, found as the Docker CLI (and pack) find it:
//!
//! 1. `DOCKER_HOST`, when set and not empty;
//! 2. else the Docker context named by `DOCKER_CONTEXT`, or by `currentContext` in
//!    `config.json` (in `$DOCKER_CONFIG`, else `~/.docker`): its endpoint is the `Host` of
//!    `Endpoints.docker` in `contexts/meta/<sha256 of the name>/meta.json`, and its TLS
//!    files, if any, are in `contexts/tls/<sha256 of the name>/docker/`; the context named
//!    `default` is the default below;
//! 3. else `unix:///var/run/docker.sock`.
//!
//! A host is `unix:///<path>` or `tcp://<host>[:<port>]` (`http://` and `https://` are read as
//! `tcp://`; the port defaults to 2375, or 2376 with TLS). With `DOCKER_HOST`, TLS is on when
//! `DOCKER_TLS_VERIFY` is set and not empty, with `ca.pem`, `cert.pem` and `key.pem` from
//! `DOCKER_CERT_PATH` (else the Docker config directory): the server's certificate must be
//! signed by `ca.pem`, and cnbx presents `cert.pem` when the files are there. `ssh://` and
//! `npipe://` hosts are refused with a message saying what to use instead.
//!
//! The files read (`config.json`, `meta.json`, certificates) belong to the user: symbolic
//! links to them are followed, and each is read up to [`limits::MAX_CONFIG_FILE`] bytes.

use std::fmt;
use std::path::{Path, PathBuf};

use cnbx_fs::limits;
use sha2::{Digest as _, Sha256};

use super::EngineError;

/// The engine's address when nothing says otherwise.
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// Where an engine listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineAddress {
    /// A Unix socket.
    Unix(PathBuf),
    /// A TCP address.
    Tcp {
        /// Host name or IP address (IPv6 without brackets).
        host: String,
        /// Port.
        port: u16,
    },
}

/// Where the endpoint came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndpointSource {
    /// `DOCKER_HOST`.
    DockerHost,
    /// A Docker context (its name).
    Context(String),
    /// The default socket.
    Default,
}

/// TLS settings of an endpoint (files are read when connecting).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The CA certificate the server's must be signed by (`ca.pem`), if there is one; without
    /// it, the system's roots are used.
    pub ca: Option<PathBuf>,
    /// The client certificate and key (`cert.pem`, `key.pem`), if both are there.
    pub identity: Option<(PathBuf, PathBuf)>,
    /// Whether the server's certificate is checked (a context's `SkipTLSVerify` turns it off).
    pub verify: bool,
}

/// An engine endpoint: its address, how cnbx talks to it, and where that came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineEndpoint {
    /// The address.
    pub address: EngineAddress,
    /// TLS, for TCP addresses.
    pub tls: Option<TlsFiles>,
    /// Where the endpoint came from.
    pub source: EndpointSource,
}

/// The environment an endpoint is resolved from (see the module docs): the variables as read
/// by [`EngineEnv::from_process`], or given by a test.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineEnv {
    /// `DOCKER_HOST`.
    pub docker_host: Option<String>,
    /// `DOCKER_CONTEXT`.
    pub docker_context: Option<String>,
    /// The Docker config directory (`DOCKER_CONFIG`, else `~/.docker`).
    pub docker_config: Option<PathBuf>,
    /// `DOCKER_TLS_VERIFY` is set and not empty.
    pub tls_verify: bool,
    /// `DOCKER_CERT_PATH`.
    pub cert_path: Option<PathBuf>,
}

impl EngineEnv {
    /// The process's environment.
    pub fn from_process() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Self {
            docker_host: var("DOCKER_HOST"),
            docker_context: var("DOCKER_CONTEXT"),
            docker_config: crate::auth::docker_config_dir(None),
            tls_verify: var("DOCKER_TLS_VERIFY").is_some(),
            cert_path: var("DOCKER_CERT_PATH").map(PathBuf::from),
        }
    }
}

impl EngineEndpoint {
    /// The endpoint the process's environment names (see the module docs).
    pub fn from_env() -> Result<Self, EngineError> {
        Self::resolve(&EngineEnv::from_process())
    }

    /// The endpoint `env` names (see the module docs).
    pub fn resolve(env: &EngineEnv) -> Result<Self, EngineError> {
        if let Some(host) = &env.docker_host {
            let tls = env.tls_verify.then(|| {
                let dir = env.cert_path.clone().or_else(|| env.docker_config.clone()).unwrap_or_default();
                tls_files_in(&dir, true)
            });
            return Self::parse(host, tls, EndpointSource::DockerHost);
        }
        let context = match &env.docker_context {
            Some(name) => Some(name.clone()),
            None => match &env.docker_config {
                Some(dir) => current_context(&dir.join("config.json"))?,
                None => None,
            },
        };
        match context {
            Some(name) if name != "default" => {
                let dir = env.docker_config.clone().unwrap_or_default();
                context_endpoint(&dir, &name)
            }
            _ => Self::parse(DEFAULT_HOST, None, EndpointSource::Default),
        }
    }

    /// The endpoint at the Unix socket `path`.
    pub fn unix(path: impl Into<PathBuf>) -> Self {
        Self { address: EngineAddress::Unix(path.into()), tls: None, source: EndpointSource::DockerHost }
    }

    /// Parses a host as `DOCKER_HOST` spells it.
    pub fn parse(host: &str, tls: Option<TlsFiles>, source: EndpointSource) -> Result<Self, EngineError> {
        let bad = |reason: &str| EngineError::Config { address: cnbx_fs::excerpt(host), reason: reason.to_owned() };
        if let Some(path) = host.strip_prefix("unix://") {
            if path.is_empty() || !path.starts_with('/') {
                return Err(bad("a unix:// host needs an absolute socket path (unix:///var/run/docker.sock)"));
            }
            return Ok(Self { address: EngineAddress::Unix(PathBuf::from(path)), tls: None, source });
        }
        let rest = ["tcp://", "http://", "https://"].iter().find_map(|p| host.strip_prefix(p));
        let Some(rest) = rest else {
            let scheme = host.split_once("://").map_or(host, |(s, _)| s);
            return Err(bad(&match scheme {
                "ssh" => "ssh:// engines are not supported; forward the engine's socket (ssh -L /tmp/docker.sock:/var/run/docker.sock HOST) and use DOCKER_HOST=unix:///tmp/docker.sock".to_owned(),
                "npipe" => "npipe:// (Windows named pipes) is not supported; cnbx runs on Linux and macOS".to_owned(),
                _ => "the engine's address must be unix:///<socket> or tcp://<host>[:<port>]".to_owned(),
            }));
        };
        let rest = rest.trim_end_matches('/');
        let (name, port) = split_host_port(rest).ok_or_else(|| bad("the host name after tcp:// is not valid"))?;
        let tls =
            tls.or_else(|| host.starts_with("https://").then_some(TlsFiles { ca: None, identity: None, verify: true }));
        let port = port.unwrap_or(if tls.is_some() { 2376 } else { 2375 });
        Ok(Self { address: EngineAddress::Tcp { host: name, port }, tls, source })
    }

    /// The address as `DOCKER_HOST` spells it (`unix:///var/run/docker.sock`,
    /// `tcp://127.0.0.1:2376`).
    pub fn url(&self) -> String {
        match &self.address {
            EngineAddress::Unix(path) => format!("unix://{}", path.display()),
            EngineAddress::Tcp { host, port } if host.contains(':') => format!("tcp://[{host}]:{port}"),
            EngineAddress::Tcp { host, port } => format!("tcp://{host}:{port}"),
        }
    }
}

impl fmt::Display for EngineEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url())
    }
}

/// `host[:port]`, `[v6]:port`.
fn split_host_port(s: &str) -> Option<(String, Option<u16>)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.parse().ok()?),
            None if after.is_empty() => None,
            None => return None,
        };
        return Some((host.to_owned(), port));
    }
    let (host, port) = match s.rsplit_once(':') {
        Some((h, p)) => (h, Some(p.parse().ok()?)),
        None => (s, None),
    };
    let valid = !host.is_empty() && host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    valid.then(|| (host.to_owned(), port))
}

/// `ca.pem`, `cert.pem`, `key.pem` in `dir`, those that exist.
fn tls_files_in(dir: &Path, verify: bool) -> TlsFiles {
    let ca = Some(dir.join("ca.pem")).filter(|p| p.exists());
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let identity = (cert.exists() && key.exists()).then_some((cert, key));
    TlsFiles { ca, identity, verify }
}

/// The `currentContext` of the Docker config file `path` (none when the file is missing or
/// does not name one).
fn current_context(path: &Path) -> Result<Option<String>, EngineError> {
    let Some(doc) = read_json(path)? else { return Ok(None) };
    Ok(doc.get("currentContext").and_then(serde_json::Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned))
}

/// Reads a JSON file of the user's (following links, bounded); `None` when it is missing.
fn read_json(path: &Path) -> Result<Option<serde_json::Value>, EngineError> {
    let bad = |reason: String| EngineError::Config { address: path.display().to_string(), reason };
    let bytes = match cnbx_fs::read_bounded_following(path, limits::MAX_CONFIG_FILE, "a Docker config file") {
        Ok(b) => b,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(bad(cnbx_fs::error_chain(&e))),
    };
    serde_json::from_slice(&bytes).map(Some).map_err(|e| bad(crate::spec::JsonError::from(e).to_string()))
}

/// The endpoint of the Docker context `name`.
fn context_endpoint(config_dir: &Path, name: &str) -> Result<EngineEndpoint, EngineError> {
    let id = hex::encode(Sha256::digest(name.as_bytes()));
    let meta = config_dir.join("contexts").join("meta").join(&id).join("meta.json");
    let missing = || EngineError::Config {
        address: format!("Docker context '{}'", cnbx_fs::excerpt(name)),
        reason: format!(
            "{} does not give its endpoint; run `docker context ls`, or unset DOCKER_CONTEXT / currentContext",
            meta.display()
        ),
    };
    let doc = read_json(&meta)?.ok_or_else(missing)?;
    let docker = doc.pointer("/Endpoints/docker").ok_or_else(missing)?;
    let host = docker.get("Host").and_then(serde_json::Value::as_str).filter(|h| !h.is_empty()).ok_or_else(missing)?;
    let skip_verify = docker.get("SkipTLSVerify").and_then(serde_json::Value::as_bool).unwrap_or(false);
    let tls_dir = config_dir.join("contexts").join("tls").join(&id).join("docker");
    let tls = tls_dir.is_dir().then(|| tls_files_in(&tls_dir, !skip_verify));
    let tls = tls.or_else(|| skip_verify.then_some(TlsFiles { ca: None, identity: None, verify: false }));
    EngineEndpoint::parse(host, tls, EndpointSource::Context(name.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_with(f: impl FnOnce(&mut EngineEnv)) -> EngineEnv {
        let mut e = EngineEnv::default();
        f(&mut e);
        e
    }

    #[test]
    fn hosts() {
        let p = |h: &str| EngineEndpoint::parse(h, None, EndpointSource::DockerHost);
        assert_eq!(
            p("unix:///run/podman/podman.sock").unwrap().address,
            EngineAddress::Unix("/run/podman/podman.sock".into())
        );
        assert_eq!(p("tcp://127.0.0.1:2375").unwrap().url(), "tcp://127.0.0.1:2375");
        assert_eq!(p("tcp://docker").unwrap().url(), "tcp://docker:2375");
        assert_eq!(p("tcp://[::1]:1234/").unwrap().url(), "tcp://[::1]:1234");
        let https = p("https://example.test").unwrap();
        assert_eq!(https.url(), "tcp://example.test:2376");
        assert!(https.tls.is_some());
        for (bad, why) in [
            ("ssh://me@host", "ssh:// engines are not supported"),
            ("npipe:////./pipe/docker_engine", "npipe://"),
            ("unix://relative.sock", "absolute socket path"),
            ("fd://", "must be unix:///<socket> or tcp://"),
            ("tcp://host:notaport", "not valid"),
            ("tcp://", "not valid"),
        ] {
            let e = p(bad).unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn docker_host_wins_then_context_then_default() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path();
        assert_eq!(
            EngineEndpoint::resolve(&env_with(|e| e.docker_config = Some(config.into()))).unwrap().url(),
            DEFAULT_HOST
        );
        std::fs::write(config.join("config.json"), r#"{"currentContext":"remote"}"#).unwrap();
        let err = EngineEndpoint::resolve(&env_with(|e| e.docker_config = Some(config.into()))).unwrap_err();
        assert!(err.to_string().contains("Docker context 'remote'"), "{err}");

        // The context's directory is named after the sha256 of its name.
        let id = hex::encode(Sha256::digest(b"remote"));
        let meta = config.join("contexts/meta").join(&id);
        std::fs::create_dir_all(&meta).unwrap();
        std::fs::write(
            meta.join("meta.json"),
            r#"{"Name":"remote","Metadata":{},"Endpoints":{"docker":{"Host":"tcp://10.9.8.7:2376","SkipTLSVerify":false}}}"#,
        )
        .unwrap();
        let tls = config.join("contexts/tls").join(&id).join("docker");
        std::fs::create_dir_all(&tls).unwrap();
        for f in ["ca.pem", "cert.pem", "key.pem"] {
            std::fs::write(tls.join(f), "x").unwrap();
        }
        let ep = EngineEndpoint::resolve(&env_with(|e| e.docker_config = Some(config.into()))).unwrap();
        assert_eq!(ep.url(), "tcp://10.9.8.7:2376");
        assert_eq!(ep.source, EndpointSource::Context("remote".into()));
        let files = ep.tls.unwrap();
        assert_eq!(files.ca, Some(tls.join("ca.pem")));
        assert!(files.identity.is_some() && files.verify);

        // DOCKER_CONTEXT=default and DOCKER_HOST override currentContext.
        let ep = EngineEndpoint::resolve(&env_with(|e| {
            e.docker_config = Some(config.into());
            e.docker_context = Some("default".into());
        }))
        .unwrap();
        assert_eq!(ep.source, EndpointSource::Default);
        let ep = EngineEndpoint::resolve(&env_with(|e| {
            e.docker_config = Some(config.into());
            e.docker_host = Some("unix:///tmp/x.sock".into());
        }))
        .unwrap();
        assert_eq!(ep.url(), "unix:///tmp/x.sock");
        assert_eq!(ep.source, EndpointSource::DockerHost);
    }

    #[test]
    fn tls_verify_takes_the_cert_path() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["ca.pem", "cert.pem", "key.pem"] {
            std::fs::write(dir.path().join(f), "x").unwrap();
        }
        let ep = EngineEndpoint::resolve(&env_with(|e| {
            e.docker_host = Some("tcp://127.0.0.1".into());
            e.tls_verify = true;
            e.cert_path = Some(dir.path().into());
        }))
        .unwrap();
        assert_eq!(ep.url(), "tcp://127.0.0.1:2376");
        assert_eq!(ep.tls.unwrap().ca, Some(dir.path().join("ca.pem")));
    }
}
