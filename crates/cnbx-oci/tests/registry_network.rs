//! What cnbx asks of the network, against a real registry (`docker-registry` on a loopback
//! port) behind the fault proxy (`cnbx_testkit::faults`), and peers that record what reaches
//! them:
//!
//! * every read is bounded in time (the stall timeout) and in size, whatever the registry
//!   sends: stalls before the answer and mid-body, endless bodies on every kind of request
//!   (manifests, configs, layers, token services, uploads, error statuses);
//! * nothing goes to a host the image or the registry names on its own: a layer's foreign
//!   `urls` are never fetched, plain-HTTP redirects to a host that is neither loopback nor
//!   named with `--insecure-registry` are refused (HTTPS redirects elsewhere are followed),
//!   and credentials never follow a redirect to another host.
//!
//! "Another host" is this machine's non-loopback address (`faults::non_loopback_ipv4`), which
//! cnbx must treat as any remote host; tests that need one say so and skip without it.

#![allow(clippy::unwrap_used, clippy::print_stderr)]

use std::future::Future;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use cnbx_oci::config::ImageConfig;
use cnbx_oci::image::{ImageToWrite, SourceImage};
use cnbx_oci::layer::{LayerRecipe, build_layer};
use cnbx_oci::progress::NullReporter;
use cnbx_oci::registry::{RegistryClient, RegistryError, RegistryOptions, Timeouts};
use cnbx_oci::spec::{Descriptor, Platform, media_type};
use cnbx_oci::{BlobStore, Digest, TarEntry};
use cnbx_refs::ImageRef;
use cnbx_testkit::Registry;
use cnbx_testkit::faults::{Fault, FaultProxy, Peer, Reply, Rule, non_loopback_ipv4};
use futures_util::StreamExt;

/// How long a test waits for an operation that must end by itself (a bounded one ends in a
/// few seconds with the timeouts below).
const DEADLINE: Duration = Duration::from_secs(90);

/// How much of an endless body cnbx may cause to be sent, per request: what it reads (64 KiB
/// for an error body, the descriptor's size for a blob, 4 MiB for a document) plus what the
/// sockets' buffers take in meanwhile (several MiB on loopback).
const ENDLESS_BOUND: u64 = 24 << 20;

fn r(s: &str) -> ImageRef {
    ImageRef::parse(s).unwrap()
}

/// A client with short timeouts, no credentials, and these `--insecure-registry` hosts.
fn client(insecure: &[String]) -> RegistryClient {
    let dir = std::env::temp_dir().join("cnbx-registry-network-tests-no-docker-config");
    RegistryClient::with_timeouts(
        RegistryOptions { insecure_registries: insecure.to_vec(), docker_config_dir: Some(dir) },
        Timeouts { connect: Duration::from_secs(3), stall: Duration::from_secs(1) },
    )
}

/// A docker config directory holding `user:password` for `host`.
fn docker_config(host: &str, user: &str, password: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let auth = base64(format!("{user}:{password}").as_bytes());
    std::fs::write(dir.path().join("config.json"), format!(r#"{{"auths":{{"{host}":{{"auth":"{auth}"}}}}}}"#)).unwrap();
    dir
}

fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            out.push(if i <= chunk.len() { ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char } else { '=' });
        }
    }
    out
}

/// An image with one layer of 256 KiB that does not compress, so that no few bytes of it
/// are the whole blob.
fn image(store: &BlobStore, name: &str) -> ImageToWrite {
    let platform = Platform::parse("linux/amd64").unwrap();
    let mut config = ImageConfig::new(&platform);
    let mut recipe = LayerRecipe::new(name.to_owned());
    let mut data = Vec::with_capacity(256 << 10);
    let mut x: u64 = 0x2545_f491_4f6c_dd1d ^ name.len() as u64;
    while data.len() < 256 << 10 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data.extend_from_slice(&x.to_le_bytes());
    }
    recipe.push_bytes(TarEntry::file("/noise.bin", 0), data);
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

/// A registry holding [`image`] as `net/app:1`, and that image.
struct Fixture {
    registry: Registry,
    image: ImageToWrite,
    _store: (tempfile::TempDir, BlobStore),
}

impl Fixture {
    async fn start() -> Self {
        Self::with_registry(Registry::start().unwrap(), None).await
    }

    async fn with_registry(registry: Registry, docker_config: Option<&std::path::Path>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let image = image(&store, "network");
        let client = match docker_config {
            Some(config) => RegistryClient::new(RegistryOptions {
                insecure_registries: vec![],
                docker_config_dir: Some(config.to_path_buf()),
            }),
            None => client(&[]),
        };
        let target = r(&format!("{}/net/app:1", registry.host()));
        client.push(&target, std::slice::from_ref(&image), &NullReporter).await.unwrap();
        Self { registry, image, _store: (dir, store) }
    }

    fn layer(&self) -> &Descriptor {
        &self.image.layers[0].descriptor
    }

    fn config_digest(&self) -> &Digest {
        &self.image.config.digest
    }
}

/// `op`, which must end by itself within [`DEADLINE`].
async fn must_end<T>(what: &str, op: impl Future<Output = T>) -> (T, Duration) {
    let start = Instant::now();
    match tokio::time::timeout(DEADLINE, op).await {
        Ok(out) => (out, start.elapsed()),
        Err(_) => panic!("{what}: still waiting after {DEADLINE:?}"),
    }
}

/// Every byte of blob `desc` of `image` through [`RegistryClient::blob_stream`].
async fn stream_all(client: &RegistryClient, image: &SourceImage, desc: &Descriptor) -> Result<Vec<u8>, RegistryError> {
    let mut stream = client.blob_stream(image, desc).await?;
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        bytes.extend_from_slice(&chunk?);
    }
    Ok(bytes)
}

fn chain(e: &RegistryError) -> String {
    cnbx_fs::error_chain(e)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_base_layer_stream_that_stalls_fails_within_the_stall_timeout() {
    let f = Fixture::start().await;
    let layer = f.layer().clone();
    // Headers and 100 bytes, then nothing; and no answer at all.
    for fault in [Fault::StallAnswerAfter(100), Fault::StallAfter(0)] {
        let proxy = FaultProxy::start(f.registry.port()).unwrap();
        let reference = r(&format!("{}/net/app:1", proxy.host()));
        let client = client(&[]);
        let image = client.fetch_image(&reference, None).await.unwrap().unwrap();
        proxy.add(Rule::new("GET", &format!("/blobs/{}", layer.digest), fault.clone()));
        let (res, took) = must_end("a stalled layer stream", stream_all(&client, &image, &layer)).await;
        let err = chain(&res.unwrap_err());
        eprintln!("{fault:?}: {err} ({took:?})");
        assert!(err.contains(&proxy.host()) && err.contains("net/app:1"), "{err}");
        assert!(err.contains("CNBX_REGISTRY_STALL_TIMEOUT"), "{err}");
        assert!(proxy.injected() >= 1);
    }
}

/// One kind of request answered with an endless body, and what to do to make it.
struct Endless {
    what: &'static str,
    rules: Vec<Rule>,
    op: Op,
}

impl Endless {
    /// Whether the operation may succeed despite the endless answer (a `/v2/` ping that
    /// fails is only a registry that asks for no credentials).
    fn may_succeed(&self) -> bool {
        self.what == "ping"
    }
}

#[derive(Clone, Copy)]
enum Op {
    Fetch,
    Pull,
    Stream,
    Push,
}

#[tokio::test(flavor = "multi_thread")]
async fn endless_bodies_are_cut_off_on_every_kind_of_request() {
    let f = Fixture::start().await;
    let layer = format!("/blobs/{}", f.layer().digest);
    let config = format!("/blobs/{}", f.config_digest());
    let get = |path: &str, status: u16| Rule::new("GET", path, Fault::Reply(Reply::endless(status)));
    let cases = vec![
        Endless { what: "manifest", rules: vec![get("/manifests/", 200)], op: Op::Fetch },
        Endless { what: "manifest 404", rules: vec![get("/manifests/", 404)], op: Op::Fetch },
        Endless { what: "manifest 500", rules: vec![get("/manifests/", 500)], op: Op::Fetch },
        Endless { what: "config", rules: vec![get(&config, 200)], op: Op::Fetch },
        Endless { what: "config 404", rules: vec![get(&config, 404)], op: Op::Fetch },
        Endless { what: "config 500", rules: vec![get(&config, 500)], op: Op::Fetch },
        Endless { what: "layer", rules: vec![get(&layer, 200)], op: Op::Pull },
        Endless { what: "layer 404", rules: vec![get(&layer, 404)], op: Op::Pull },
        Endless { what: "layer 502", rules: vec![get(&layer, 502)], op: Op::Pull },
        Endless { what: "layer stream 403", rules: vec![get(&layer, 403)], op: Op::Stream },
        Endless { what: "layer stream 500", rules: vec![get(&layer, 500)], op: Op::Stream },
        Endless {
            what: "upload start 400",
            rules: vec![Rule::new("POST", "/blobs/uploads/", Fault::Reply(Reply::endless(400)))],
            op: Op::Push,
        },
        Endless {
            what: "upload 500",
            rules: vec![Rule::new("PUT", "/blobs/uploads/", Fault::Reply(Reply::endless(500)))],
            op: Op::Push,
        },
        Endless {
            what: "upload answered 201",
            rules: vec![Rule::new("PUT", "/blobs/uploads/", Fault::Reply(Reply::endless(201)))],
            op: Op::Push,
        },
        Endless {
            what: "manifest push 400",
            rules: vec![Rule::new("PUT", "/manifests/", Fault::Reply(Reply::endless(400)))],
            op: Op::Push,
        },
        Endless { what: "ping", rules: vec![get("/v2/", 500).exact()], op: Op::Fetch },
    ];
    let mut failures = Vec::new();
    for case in cases {
        let may_succeed = case.may_succeed();
        let proxy = FaultProxy::start(f.registry.port()).unwrap();
        let client = client(&[]);
        let source = r(&format!("{}/net/app:1", proxy.host()));
        // Layers and streams need the image first (read before the rule is added).
        let fetched = match case.op {
            Op::Pull | Op::Stream => Some(client.fetch_image(&source, None).await.unwrap().unwrap()),
            _ => None,
        };
        for rule in case.rules {
            proxy.add(rule);
        }
        let work = tempfile::tempdir().unwrap();
        let into = BlobStore::open(work.path()).unwrap();
        let target = r(&format!("{}/net/pushed:1", proxy.host()));
        let (res, took) = must_end(case.what, async {
            match case.op {
                // A manifest the registry says is missing is no image (`None`), not an error.
                Op::Fetch => client.fetch_image(&source, None).await.map(|found| found.map(|_| ())),
                Op::Pull => client.pull_layers(fetched.as_ref().unwrap(), &into, &NullReporter).await.map(|_| Some(())),
                Op::Stream => stream_all(&client, fetched.as_ref().unwrap(), f.layer()).await.map(|_| Some(())),
                Op::Push => client.push(&target, std::slice::from_ref(&f.image), &NullReporter).await.map(|_| Some(())),
            }
        })
        .await;
        // Per request: a transient status (5xx) is asked again, 4 times in all.
        let sent = proxy.endless_sent() / proxy.injected().max(1) as u64;
        let outcome = match &res {
            Ok(Some(())) => "succeeded".to_owned(),
            Ok(None) => "not found".to_owned(),
            Err(e) => chain(e),
        };
        eprintln!("{}: {outcome} ({took:?}, {} KiB sent per request)", case.what, sent >> 10);
        let problem = if proxy.injected() == 0 {
            Some("the rule never applied".to_owned())
        } else if sent >= ENDLESS_BOUND {
            Some(format!("cnbx let the registry send {sent} bytes per request"))
        } else if res.as_ref().is_ok_and(Option::is_some) && !may_succeed {
            Some("it succeeded".to_owned())
        } else if res.is_err() && !outcome.contains(&proxy.host()) {
            Some(format!("the message does not name the registry: {outcome}"))
        } else if outcome.len() > 2048 {
            Some(format!("the message quotes too much: {outcome}"))
        } else {
            None
        };
        if let Some(problem) = problem {
            failures.push(format!("{}: {problem}", case.what));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// A registry whose `/v2/` asks for a bearer token from `realm`; what the token service
/// answers is up to the rules.
#[tokio::test(flavor = "multi_thread")]
async fn endless_token_service_answers_are_cut_off() {
    let f = Fixture::start().await;
    for status in [200, 401, 500] {
        let proxy = FaultProxy::start(f.registry.port()).unwrap();
        let realm = format!("http://{}/token", proxy.host());
        let challenge = format!(r#"Bearer realm="{realm}",service="cnbx-test""#);
        proxy.add(
            Rule::new("GET", "/v2/", Fault::Reply(Reply::new(401).header("WWW-Authenticate", &challenge))).exact(),
        );
        proxy.add(Rule::new("GET", "/token", Fault::Reply(Reply::endless(status))));
        let source = r(&format!("{}/net/app:1", proxy.host()));
        let (res, took) = must_end("an endless token answer", client(&[]).fetch_image(&source, None)).await;
        let sent = proxy.endless_sent() / proxy.injected().max(1) as u64;
        let err = chain(&res.unwrap_err());
        eprintln!("token {status}: {err} ({took:?}, {} KiB sent per request)", sent >> 10);
        assert!(sent < ENDLESS_BOUND, "token {status}: cnbx let the token service send {sent} bytes");
        assert!(err.contains(&proxy.host()), "{err}");
    }
}

/// An image like `f`'s whose layer the registry does not have, its descriptor naming `url`.
fn with_foreign_layer(image: &SourceImage, url: &str) -> (SourceImage, Descriptor) {
    let mut image = image.clone();
    let mut layer = image.manifest.value.layers[0].clone();
    layer.digest = Digest::of(b"a layer only the foreign URL serves");
    layer.size = 35;
    layer.urls = Some(vec![url.to_owned()]);
    image.manifest.value.layers[0] = layer.clone();
    (image, layer)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_layers_foreign_urls_are_never_fetched() {
    let f = Fixture::start().await;
    let peer =
        Peer::start(IpAddr::from([127, 0, 0, 1]), Reply::new(200).body("a layer only the foreign URL serves")).unwrap();
    let client = client(&[]);
    let fetched = client.fetch_image(&r(&format!("{}/net/app:1", f.registry.host())), None).await.unwrap().unwrap();
    let (image, layer) = with_foreign_layer(&fetched, &format!("http://{}/layer.tar.gz", peer.host()));
    let work = tempfile::tempdir().unwrap();
    let into = BlobStore::open(work.path()).unwrap();

    let err = chain(&client.pull_layers(&image, &into, &NullReporter).await.unwrap_err());
    eprintln!("{err}");
    assert!(err.contains(&format!("blob {} is missing", layer.digest)), "{err}");
    let err = chain(&stream_all(&client, &image, &layer).await.unwrap_err());
    assert!(err.contains(&format!("blob {} is missing", layer.digest)), "{err}");
    assert!(err.contains("foreign"), "the message says why the URL was not used: {err}");
    assert_eq!(peer.connections(), 0, "cnbx fetched a URL the image names: {:?}", peer.requests());
    assert!(!into.contains(&layer.digest));
}

/// This machine's non-loopback address, or a message saying why the test cannot run.
fn other_host() -> Option<IpAddr> {
    let ip = non_loopback_ipv4();
    if ip.is_none() {
        eprintln!("skipping: this machine has no non-loopback IPv4 address to stand for another host");
    }
    ip
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_http_redirects_to_another_host_are_refused_unless_it_is_named_insecure() {
    let f = Fixture::start().await;
    let blob = f._store.1.read(&f.layer().digest).unwrap();
    let layer = format!("/blobs/{}", f.layer().digest);
    // An address that is never reached: a refusal made before connecting names the URL; a
    // connection attempt would end in a connect error instead.
    for location in ["http://198.51.100.7:9/blob", "http://cnbx-test.invalid/blob"] {
        let proxy = FaultProxy::start(f.registry.port()).unwrap();
        let client = client(&[]);
        let image = client.fetch_image(&r(&format!("{}/net/app:1", proxy.host())), None).await.unwrap().unwrap();
        proxy.add(Rule::new("GET", &layer, Fault::Reply(Reply::redirect(307, location))));
        let work = tempfile::tempdir().unwrap();
        let into = BlobStore::open(work.path()).unwrap();
        let err = chain(&client.pull_layers(&image, &into, &NullReporter).await.unwrap_err());
        eprintln!("{err}");
        assert!(err.contains("redirect") && err.contains(location), "{err}");
        assert!(err.contains("--insecure-registry"), "{err}");
    }

    let Some(ip) = other_host() else { return };
    let peer = Peer::start(ip, Reply::new(200).body(blob.clone())).unwrap();
    let location = format!("http://{}/blob", peer.host());
    for (what, path) in [("blob", layer.as_str()), ("manifest", "/manifests/1")] {
        let proxy = FaultProxy::start(f.registry.port()).unwrap();
        let client = client(&[]);
        let image = client.fetch_image(&r(&format!("{}/net/app:1", proxy.host())), None).await.unwrap().unwrap();
        proxy.add(Rule::new("GET", path, Fault::Reply(Reply::redirect(302, &location))));
        let work = tempfile::tempdir().unwrap();
        let into = BlobStore::open(work.path()).unwrap();
        let err = match what {
            "blob" => client.pull_layers(&image, &into, &NullReporter).await.map(|_| ()),
            _ => client.fetch_image(&image_ref(&proxy), None).await.map(|_| ()),
        };
        let err = chain(&err.unwrap_err());
        eprintln!("{what}: {err}");
        assert!(err.contains(&location) && err.contains(&format!("--insecure-registry {}", peer.host())), "{err}");
        assert_eq!(peer.connections(), 0, "{what}: cnbx followed a plain-HTTP redirect to another host");
    }

    // Named with --insecure-registry, the redirect is followed (and the peer's bytes used).
    let proxy = FaultProxy::start(f.registry.port()).unwrap();
    let client = client(&[peer.host()]);
    let image = client.fetch_image(&image_ref(&proxy), None).await.unwrap().unwrap();
    proxy.add(Rule::new("GET", &layer, Fault::Reply(Reply::redirect(307, &location))));
    let work = tempfile::tempdir().unwrap();
    let into = BlobStore::open(work.path()).unwrap();
    client.pull_layers(&image, &into, &NullReporter).await.unwrap();
    assert!(into.contains(&f.layer().digest));
    assert_eq!(peer.requests().len(), 1);
}

fn image_ref(proxy: &FaultProxy) -> ImageRef {
    r(&format!("{}/net/app:1", proxy.host()))
}

#[tokio::test(flavor = "multi_thread")]
async fn https_redirects_to_another_host_are_followed() {
    let Some(ip) = other_host() else { return };
    let f = Fixture::start().await;
    // The peer speaks plain HTTP, so the TLS handshake fails: what matters is that cnbx went.
    let peer = Peer::start(ip, Reply::new(200)).unwrap();
    let location = format!("https://{}/blob", peer.host());
    let proxy = FaultProxy::start(f.registry.port()).unwrap();
    let client = client(&[]);
    let image = client.fetch_image(&image_ref(&proxy), None).await.unwrap().unwrap();
    proxy.add(Rule::new("GET", &format!("/blobs/{}", f.layer().digest), Fault::Reply(Reply::redirect(307, &location))));
    let work = tempfile::tempdir().unwrap();
    let into = BlobStore::open(work.path()).unwrap();
    let err = chain(&client.pull_layers(&image, &into, &NullReporter).await.unwrap_err());
    eprintln!("{err}");
    assert!(!err.contains("--insecure-registry"), "an HTTPS redirect was refused: {err}");
    assert!(peer.connections() >= 1, "cnbx did not follow an HTTPS redirect");
}

#[tokio::test(flavor = "multi_thread")]
async fn credentials_never_follow_a_redirect_to_another_host() {
    let registry = Registry::start_with_basic_auth("redirected", "s3cret-Pa55").unwrap();
    let config = docker_config(&registry.host(), "redirected", "s3cret-Pa55");
    let f = Fixture::with_registry(registry, Some(config.path())).await;
    let blob = f._store.1.read(&f.layer().digest).unwrap();
    // Loopback peers, so plain HTTP is allowed: another port, and another loopback name.
    let peer = Peer::start(IpAddr::from([127, 0, 0, 1]), Reply::new(200).body(blob)).unwrap();
    let port = peer.host().rsplit_once(':').unwrap().1.to_owned();
    for location in [format!("http://{}/blob", peer.host()), format!("http://localhost:{port}/blob")] {
        let proxy = FaultProxy::start(f.registry.port()).unwrap();
        // The credentials are stored for the proxy's address too.
        let config = docker_config(&proxy.host(), "redirected", "s3cret-Pa55");
        let client = RegistryClient::with_timeouts(
            RegistryOptions { insecure_registries: vec![], docker_config_dir: Some(config.path().to_path_buf()) },
            Timeouts { connect: Duration::from_secs(3), stall: Duration::from_secs(5) },
        );
        let image = client.fetch_image(&image_ref(&proxy), None).await.unwrap().unwrap();
        proxy.add(Rule::new(
            "GET",
            &format!("/blobs/{}", f.layer().digest),
            Fault::Reply(Reply::redirect(307, &location)),
        ));
        let work = tempfile::tempdir().unwrap();
        let into = BlobStore::open(work.path()).unwrap();
        client.pull_layers(&image, &into, &NullReporter).await.unwrap();
        assert!(into.contains(&f.layer().digest));
    }
    let requests = peer.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    for head in &requests {
        assert!(!head.to_ascii_lowercase().contains("authorization:"), "credentials followed a redirect:\n{head}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn upload_locations_elsewhere_get_no_credentials_and_no_clear_text() {
    let registry = Registry::start_with_basic_auth("uploader", "up-Pa55word").unwrap();
    let config = docker_config(&registry.host(), "uploader", "up-Pa55word");
    let f = Fixture::with_registry(registry, Some(config.path())).await;
    let push = |proxy: &FaultProxy, insecure: &[String]| {
        let config = docker_config(&proxy.host(), "uploader", "up-Pa55word");
        let client = RegistryClient::with_timeouts(
            RegistryOptions { insecure_registries: insecure.to_vec(), docker_config_dir: Some(config.path().into()) },
            Timeouts { connect: Duration::from_secs(3), stall: Duration::from_secs(5) },
        );
        let target = r(&format!("{}/net/pushed:1", proxy.host()));
        let image = f.image.clone();
        async move {
            let pushed = client.push(&target, std::slice::from_ref(&image), &NullReporter).await;
            drop(config);
            pushed
        }
    };

    // Another loopback origin (plain HTTP allowed): the upload goes there, without the
    // registry's credentials (the registry then lacks the blobs, so the push fails).
    let peer = Peer::start(IpAddr::from([127, 0, 0, 1]), Reply::new(201)).unwrap();
    let proxy = FaultProxy::start(f.registry.port()).unwrap();
    let location = format!("http://localhost:{}/upload?session=1", peer.host().rsplit_once(':').unwrap().1);
    proxy.add(Rule::new("POST", "/blobs/uploads/", Fault::Reply(Reply::new(202).header("Location", &location))));
    let (res, _) = must_end("an upload elsewhere", push(&proxy, &[])).await;
    eprintln!("{}", chain(&res.unwrap_err()));
    let requests = peer.requests();
    assert!(!requests.is_empty(), "the upload did not go to the location");
    for head in &requests {
        assert!(head.starts_with("PUT /upload?session=1&digest=sha256%3A"), "{head}");
        assert!(!head.to_ascii_lowercase().contains("authorization:"), "credentials went to another origin:\n{head}");
    }

    // Another host in clear text: refused before connecting.
    let Some(ip) = other_host() else { return };
    let elsewhere = Peer::start(ip, Reply::new(201)).unwrap();
    let proxy = FaultProxy::start(f.registry.port()).unwrap();
    let location = format!("http://{}/upload", elsewhere.host());
    proxy.add(Rule::new("POST", "/blobs/uploads/", Fault::Reply(Reply::new(202).header("Location", &location))));
    let (res, _) = must_end("an upload in clear text", push(&proxy, &[])).await;
    let err = chain(&res.unwrap_err());
    eprintln!("{err}");
    assert!(err.contains(&location) && err.contains("an upload location"), "{err}");
    assert!(err.contains(&format!("--insecure-registry {}", elsewhere.host())), "{err}");
    assert_eq!(elsewhere.connections(), 0);
}
