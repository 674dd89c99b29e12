//! The bearer-token flow against a real registry: `docker-registry` with `auth: token`,
//! and a small token service in the test that checks basic credentials and signs JWTs
//! (RS256, `x5c` header) with a throwaway certificate made by `openssl`.
//!
//! `docker-registry` and `openssl` are required (a missing one fails the test with the command
//! that installs it).

#![allow(clippy::unwrap_used, clippy::print_stderr)]

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cnbx_oci::config::ImageConfig;
use cnbx_oci::image::ImageToWrite;
use cnbx_oci::layer::{LayerRecipe, build_layer};
use cnbx_oci::progress::NullReporter;
use cnbx_oci::registry::{RegistryClient, RegistryErrorKind, RegistryOptions};
use cnbx_oci::spec::{Platform, media_type};
use cnbx_oci::{BlobStore, TarEntry};
use cnbx_refs::ImageRef;
use cnbx_testkit::require_tool;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const USER: &str = "builder";
const PASSWORD: &str = "t0ken-Pa55";

fn b64(input: &[u8], url: bool) -> String {
    let alphabet: &[u8; 64] = if url {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    } else {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    };
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(alphabet[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else if !url {
                out.push('=');
            }
        }
    }
    out
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// A throwaway key and self-signed certificate.
struct Keys {
    key: PathBuf,
    cert_pem: PathBuf,
    cert_der: Vec<u8>,
}

fn make_keys(dir: &Path) -> Keys {
    let key = dir.join("key.pem");
    let cert_pem = dir.join("cert.pem");
    let der = dir.join("cert.der");
    let ok = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=cnbx-test-token"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert_pem)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(ok.success());
    let ok = Command::new("openssl")
        .args(["x509", "-outform", "DER", "-in"])
        .arg(&cert_pem)
        .arg("-out")
        .arg(&der)
        .status()
        .unwrap();
    assert!(ok.success());
    Keys { key, cert_pem, cert_der: std::fs::read(der).unwrap() }
}

fn sign(key: &Path, input: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    out.stdout
}

fn jwt(keys: &Keys, scope: &str) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "x5c": [b64(&keys.cert_der, false)]});
    let mut access = Vec::new();
    // `repository:NAME:ACTIONS`, several scopes separated by spaces.
    for s in scope.split(' ').filter(|s| !s.is_empty()) {
        let mut parts = s.splitn(3, ':');
        let (kind, name, actions) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap_or(""));
        let actions: Vec<&str> = actions.split(',').filter(|a| !a.is_empty()).collect();
        access.push(serde_json::json!({"type": kind, "name": name, "actions": actions}));
    }
    let claims = serde_json::json!({
        "iss": "cnbx-test-issuer", "sub": USER, "aud": "cnbx-test",
        "exp": now + 600, "nbf": now - 60, "iat": now, "jti": format!("{now}-{scope}"),
        "access": access,
    });
    let input = format!(
        "{}.{}",
        b64(&serde_json::to_vec(&header).unwrap(), true),
        b64(&serde_json::to_vec(&claims).unwrap(), true)
    );
    let sig = sign(&keys.key, input.as_bytes());
    format!("{input}.{}", b64(&sig, true))
}

/// What reached a token service.
#[derive(Default)]
struct Seen {
    connections: AtomicUsize,
    with_password: AtomicUsize,
}

/// The token service on 127.0.0.1: grants the requested scope to `USER`/`PASSWORD`, 401
/// otherwise.
async fn token_service(keys: Arc<Keys>) -> u16 {
    token_service_on(IpAddr::from([127, 0, 0, 1]), keys, Arc::default()).await
}

/// The token service on `ip`, counting what reaches it in `seen`.
async fn token_service_on(ip: IpAddr, keys: Arc<Keys>, seen: Arc<Seen>) -> u16 {
    let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let expected =
        format!("authorization: basic {}", b64(format!("{USER}:{PASSWORD}").as_bytes(), false)).to_lowercase();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            seen.connections.fetch_add(1, Ordering::SeqCst);
            let keys = keys.clone();
            let expected = expected.clone();
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    let Ok(n) = conn.read(&mut buf).await else { return };
                    if n == 0 {
                        return;
                    }
                    head.extend_from_slice(&buf[..n]);
                }
                let text = String::from_utf8_lossy(&head).into_owned();
                let authorised = text.lines().any(|l| l.trim().to_lowercase() == expected);
                if authorised {
                    seen.with_password.fetch_add(1, Ordering::SeqCst);
                }
                let target = text.split(' ').nth(1).unwrap_or_default().to_owned();
                let query = target.split_once('?').map(|(_, q)| q.to_owned()).unwrap_or_default();
                let scope = query
                    .split('&')
                    .filter_map(|kv| kv.split_once('='))
                    .filter(|(k, _)| *k == "scope")
                    .map(|(_, v)| percent_decode(v))
                    .collect::<Vec<_>>()
                    .join(" ");
                let (status, body) = if authorised {
                    let token = tokio::task::spawn_blocking(move || jwt(&keys, &scope)).await.unwrap();
                    ("200 OK", serde_json::json!({"token": token, "expires_in": 600}).to_string())
                } else {
                    ("401 Unauthorized", r#"{"details":"incorrect username or password"}"#.to_owned())
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(response.as_bytes()).await;
            });
        }
    });
    port
}

/// `docker-registry` with token auth, killed on drop.
struct TokenRegistry {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for TokenRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_registry(keys: &Keys, token_port: u16) -> TokenRegistry {
    start_registry_with_realm(keys, &format!("http://127.0.0.1:{token_port}/token")).await
}

/// `docker-registry` sending clients to the token service at `realm`.
async fn start_registry_with_realm(keys: &Keys, realm: &str) -> TokenRegistry {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = dir.path().join("config.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\nauth:\n  token:\n    realm: {realm}\n    service: cnbx-test\n    issuer: cnbx-test-issuer\n    rootcertbundle: {}\n",
            dir.path().join("storage").display(),
            keys.cert_pem.display()
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
    let child =
        Command::new("docker-registry").arg("serve").arg(&config).stdout(Stdio::null()).stderr(log).spawn().unwrap();
    let registry = TokenRegistry { child, port, _dir: dir };
    for _ in 0..150 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return registry;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("docker-registry with token auth did not start");
}

fn image(store: &BlobStore) -> ImageToWrite {
    let platform = Platform::parse("linux/amd64").unwrap();
    let mut config = ImageConfig::new(&platform);
    let mut recipe = LayerRecipe::new("token-layer");
    recipe.push_bytes(TarEntry::file("/token.txt", 0), b"bearer\n".to_vec());
    let info = build_layer(&recipe, store, &NullReporter).unwrap();
    config.push_diff_id(&info.diff_id);
    ImageToWrite {
        manifest_media_type: media_type::OCI_MANIFEST.to_owned(),
        config_media_type: media_type::OCI_CONFIG.to_owned(),
        config: config.to_raw(),
        layers: vec![info.to_layer_blob(store)],
        platform,
        annotations: None,
    }
}

#[tokio::test]
async fn bearer_tokens_from_a_token_service_with_docker_config_credentials() {
    // A missing tool fails the test with the command that installs it (`make test` installs them).
    require_tool("docker-registry", "docker-registry").unwrap();
    require_tool("openssl", "openssl").unwrap();
    let work = tempfile::tempdir().unwrap();
    let keys = Arc::new(make_keys(work.path()));
    let token_port = token_service(keys.clone()).await;
    let reg = start_registry(&keys, token_port).await;
    let host = format!("127.0.0.1:{}", reg.port);

    let docker = work.path().join("docker");
    std::fs::create_dir_all(&docker).unwrap();
    std::fs::write(
        docker.join("config.json"),
        format!(r#"{{"auths":{{"{host}":{{"auth":"{}"}}}}}}"#, b64(format!("{USER}:{PASSWORD}").as_bytes(), false)),
    )
    .unwrap();
    let client = RegistryClient::new(RegistryOptions { insecure_registries: vec![], docker_config_dir: Some(docker) });

    let store_dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(store_dir.path()).unwrap();
    let image = image(&store);
    let first = ImageRef::parse(&format!("{host}/team/base:1")).unwrap();
    let outcome = client.push(&first, std::slice::from_ref(&image), &NullReporter).await.unwrap();
    assert_eq!(outcome.uploaded, 2);
    let fetched = client.fetch_image(&first, None).await.unwrap().unwrap();
    assert_eq!(fetched.manifest.digest, outcome.digest);
    assert!(client.can_read(&first).await);

    // Into another repository of the same registry: mounted, with a token that covers both
    // repositories (oci-client's own push token covers the target only).
    let rewritten = ImageToWrite {
        manifest_media_type: media_type::OCI_MANIFEST.to_owned(),
        config_media_type: media_type::OCI_CONFIG.to_owned(),
        config: fetched.config_raw.clone(),
        layers: fetched.layers().unwrap(),
        platform: fetched.platform(),
        annotations: None,
    };
    let second = ImageRef::parse(&format!("{host}/team/app:1")).unwrap();
    let moved = client.push(&second, &[rewritten], &NullReporter).await.unwrap();
    assert_eq!(moved.digest, outcome.digest);
    assert_eq!((moved.uploaded, moved.mounted, moved.skipped), (0, 2, 0), "{moved:?}");

    // Without credentials the token service refuses: an auth error naming the registry.
    let empty = tempfile::tempdir().unwrap();
    let anonymous = RegistryClient::new(RegistryOptions {
        insecure_registries: vec![],
        docker_config_dir: Some(empty.path().to_path_buf()),
    });
    let err = anonymous.fetch_image(&first, None).await.unwrap_err();
    eprintln!("{err}");
    assert!(matches!(err.kind(), RegistryErrorKind::Auth { .. }), "{err:?}");
    assert!(err.to_string().contains(&format!("authentication required for {host}")), "{err}");
    assert!(!err.to_string().contains(PASSWORD));
    assert!(!anonymous.can_read(&first).await);
}

/// A docker config directory holding `USER`/`PASSWORD` for `host`.
fn credentials_for(host: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.json"),
        format!(r#"{{"auths":{{"{host}":{{"auth":"{}"}}}}}}"#, b64(format!("{USER}:{PASSWORD}").as_bytes(), false)),
    )
    .unwrap();
    dir
}

/// A registry whose token service is on another host (this machine's non-loopback
/// address), in clear text: cnbx sends it nothing, the password least of all, unless that
/// host is named with `--insecure-registry`; then tokens work, the two-repository token for
/// a mount included.
#[tokio::test]
async fn a_token_service_in_clear_text_on_another_host_gets_nothing_unless_named_insecure() {
    require_tool("docker-registry", "docker-registry").unwrap();
    require_tool("openssl", "openssl").unwrap();
    let Some(ip) = cnbx_testkit::faults::non_loopback_ipv4() else {
        eprintln!("skipping: this machine has no non-loopback IPv4 address to stand for another host");
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let keys = Arc::new(make_keys(work.path()));
    let seen = Arc::new(Seen::default());
    let token_port = token_service_on(ip, keys.clone(), seen.clone()).await;
    let realm_host = format!("{ip}:{token_port}");
    let realm = format!("http://{realm_host}/token");
    let reg = start_registry_with_realm(&keys, &realm).await;
    let host = format!("127.0.0.1:{}", reg.port);
    let docker = credentials_for(&host);
    let store_dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(store_dir.path()).unwrap();
    let image = image(&store);
    let first = ImageRef::parse(&format!("{host}/team/base:1")).unwrap();

    let client = |insecure: Vec<String>| {
        RegistryClient::new(RegistryOptions {
            insecure_registries: insecure,
            docker_config_dir: Some(docker.path().to_path_buf()),
        })
    };
    let refused = client(vec![]);
    let err = refused.push(&first, std::slice::from_ref(&image), &NullReporter).await.unwrap_err();
    let message = cnbx_fs::error_chain(&err);
    eprintln!("{message}");
    assert!(message.contains(&realm), "{message}");
    assert!(message.contains(&format!("--insecure-registry {realm_host}")), "{message}");
    assert!(!message.contains(PASSWORD));
    let err = refused.fetch_image(&first, None).await.unwrap_err();
    assert!(cnbx_fs::error_chain(&err).contains(&realm), "{err}");
    assert_eq!(seen.connections.load(Ordering::SeqCst), 0, "cnbx talked to a token service in clear text");

    // Named insecure: the token service is used, with the password.
    let trusted = client(vec![realm_host.clone()]);
    let outcome = trusted.push(&first, std::slice::from_ref(&image), &NullReporter).await.unwrap();
    let fetched = trusted.fetch_image(&first, None).await.unwrap().unwrap();
    let rewritten = ImageToWrite {
        manifest_media_type: media_type::OCI_MANIFEST.to_owned(),
        config_media_type: media_type::OCI_CONFIG.to_owned(),
        config: fetched.config_raw.clone(),
        layers: fetched.layers().unwrap(),
        platform: fetched.platform(),
        annotations: None,
    };
    let second = ImageRef::parse(&format!("{host}/team/app:1")).unwrap();
    let moved = trusted.push(&second, &[rewritten], &NullReporter).await.unwrap();
    assert_eq!(moved.digest, outcome.digest);
    assert_eq!((moved.uploaded, moved.mounted), (0, 2), "{moved:?}");
    assert!(seen.with_password.load(Ordering::SeqCst) > 0);
}
