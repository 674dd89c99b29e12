//! The engine client against real engines started by the tests (Debian's dockerd and
//! Podman's service, see `cnbx_testkit::engines`): load, inspect, export, load on top, an
//! interrupted load, errors. The engine's own CLI (`docker image inspect`, `docker save`)
//! checks what cnbx did.

#![allow(clippy::unwrap_used, clippy::print_stderr)]

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use cnbx_oci::config::ImageConfig;
use cnbx_oci::engine::{Engine, EngineEndpoint, EngineError, EngineKind, EngineOptions, HeldLayers};
use cnbx_oci::layer::{LayerInfo, LayerRecipe, build_layer};
use cnbx_oci::progress::{Level, NullReporter, Reporter, Task};
use cnbx_oci::spec::{Platform, media_type};
use cnbx_oci::tarball::TarEntry;
use cnbx_oci::{BlobStore, Digest, ImageToWrite, LayerCache};
use cnbx_refs::ImageRef;
use cnbx_testkit::engines::{self, Kind};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// Layers with some content each (`seed` makes them differ), `big` bytes of incompressible-ish
/// data in the first.
fn layers(store: &BlobStore, seed: &str, count: usize, big: usize) -> Vec<LayerInfo> {
    (0..count)
        .map(|i| {
            let mut r = LayerRecipe::new(format!("{seed} {i}"));
            r.push_header(TarEntry::dir(format!("/{seed}{i}")));
            r.push_bytes(TarEntry::file(format!("/{seed}{i}/file"), 0).with_mode(0o644), format!("{seed} layer {i}\n"));
            if i == 0 && big > 0 {
                let mut data = Vec::with_capacity(big);
                let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ seed.len() as u64;
                while data.len() < big {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    data.extend_from_slice(&x.to_le_bytes()[..3]);
                    data.extend_from_slice(b"text ");
                }
                r.push_bytes(TarEntry::file(format!("/{seed}{i}/big"), 0), data);
            }
            build_layer(&r, store, &NullReporter).unwrap()
        })
        .collect()
}

fn image(store: &BlobStore, layers: &[LayerInfo], label: &str) -> ImageToWrite {
    let platform = Platform::new("linux", cnbx_oci::image::host_arch(), None);
    let mut config = ImageConfig::new(&platform);
    for l in layers {
        config.push_diff_id(&l.diff_id);
    }
    config.set_created("1980-01-01T00:00:01Z");
    config.set_label("io.cnbx.test", label);
    ImageToWrite {
        manifest_media_type: media_type::OCI_MANIFEST.into(),
        config_media_type: media_type::OCI_CONFIG.into(),
        config: config.to_raw(),
        layers: layers.iter().map(|l| l.to_layer_blob(store)).collect(),
        platform,
        annotations: None,
    }
}

fn r(s: &str) -> ImageRef {
    ImageRef::parse(s).unwrap()
}

async fn connect(e: &engines::Engine) -> Engine {
    Engine::connect(EngineEndpoint::unix(e.socket()), EngineOptions::default()).await.unwrap()
}

/// The diffIDs of `docker save NAME`, computed from the layer files (decompressed if need be),
/// and the config's.
fn saved_diff_ids(e: &engines::Engine, name: &str, work: &std::path::Path) -> (Vec<String>, Vec<String>) {
    let file = work.join(format!("saved-{}.tar", name.replace(['/', ':'], "_")));
    e.docker(&["save", "-o", &file.to_string_lossy(), name]).unwrap();
    let dir = work.join(format!("x-{}", name.replace(['/', ':'], "_")));
    std::fs::create_dir_all(&dir).unwrap();
    tar::Archive::new(std::fs::File::open(&file).unwrap()).unpack(&dir).unwrap();
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join(manifest[0]["Config"].as_str().unwrap())).unwrap()).unwrap();
    let want: Vec<String> =
        config["rootfs"]["diff_ids"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect();
    let got = manifest[0]["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let bytes = std::fs::read(dir.join(p.as_str().unwrap())).unwrap();
            let mut tar = Vec::new();
            if bytes.starts_with(&[0x1f, 0x8b]) {
                flate2::read::MultiGzDecoder::new(&bytes[..]).read_to_end(&mut tar).unwrap();
            } else {
                tar = bytes;
            }
            Digest::of(&tar).to_string()
        })
        .collect();
    (got, want)
}

fn ids(layers: &[LayerInfo]) -> Vec<String> {
    layers.iter().map(|l| l.diff_id.to_string()).collect()
}

#[test]
fn connect_negotiates_the_api_and_names_the_engine() {
    for e in engines::all() {
        runtime().block_on(async {
            let engine = connect(e).await;
            assert_eq!(engine.api_version().to_string(), "1.41", "{engine:?}");
            let (kind, name) = match e.kind() {
                Kind::Docker => (EngineKind::Docker, "the Docker daemon at "),
                Kind::Podman => (EngineKind::Podman, "Podman at "),
            };
            assert_eq!(engine.kind(), &kind);
            assert_eq!(engine.describe(), format!("{name}unix://{}", e.socket().display()));
            assert!(engine.inspect("cnbx.test/never-loaded:1").await.unwrap().is_none());
        });
    }
}

#[test]
fn load_inspect_export_and_load_on_top_with_only_the_missing_layers() {
    for e in engines::all() {
        let work = tempfile::tempdir().unwrap();
        let store = BlobStore::open(work.path().join("store")).unwrap();
        let base_layers = layers(&store, "base", 3, 3 << 20);
        let base = image(&store, &base_layers, "base");
        let kind = format!("{:?}", e.kind()).to_lowercase();
        let base_tag = format!("cnbx.test/{kind}-base:1");
        runtime().block_on(async {
            let engine = connect(e).await;
            let out = engine.load(&base, &[r(&base_tag)], &HeldLayers::none(), Arc::new(NullReporter)).await.unwrap();
            assert_eq!((out.layers_sent, out.layers_left_out, out.resent_whole), (3, 0, false));
            assert_eq!(out.image_id, base.config.digest.to_string());

            // The engine's own view: the same diffIDs and config.
            let inspected = e.inspect(&base_tag).unwrap();
            assert_eq!(inspected["Id"], base.config.digest.to_string());
            let layers_seen: Vec<&str> =
                inspected["RootFS"]["Layers"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
            assert_eq!(layers_seen, ids(&base_layers));
            let (got, want) = saved_diff_ids(e, &base_tag, work.path());
            assert_eq!(got, want);
            assert_eq!(want, ids(&base_layers));

            // Read back into another store: the layers are exported, checked and compressed
            // as cnbx compresses them, so the blobs are the very ones built above.
            let other = BlobStore::open(work.path().join("other")).unwrap();
            let cache = LayerCache::open(work.path().join("cache")).unwrap();
            let read =
                engine.read_image(&base_tag, &other, Some(&cache), Arc::new(NullReporter)).await.unwrap().unwrap();
            assert!(read.exported);
            assert_eq!(read.image.config_raw.digest, base.config.digest);
            assert_eq!(read.image.manifest.value.media_type.as_deref(), Some(media_type::DOCKER_MANIFEST));
            let blobs: Vec<&Digest> = read.image.manifest.value.layers.iter().map(|d| &d.digest).collect();
            let built: Vec<&Digest> = base_layers.iter().map(|l| &l.descriptor.digest).collect();
            assert_eq!(blobs, built);
            for d in blobs {
                assert!(other.has_valid(d, None).unwrap());
            }
            assert_eq!(read.image.config.label("io.cnbx.test"), Some("base"));
            // Warm: nothing but the inspect is read.
            let again =
                engine.read_image(&base_tag, &other, Some(&cache), Arc::new(NullReporter)).await.unwrap().unwrap();
            assert!(!again.exported);
            assert_eq!(again.image.manifest.digest, read.image.manifest.digest);

            // A second image on top of the first: only the missing layers are sent.
            let top_layers = layers(&store, "top", 2, 0);
            let all: Vec<LayerInfo> = base_layers.iter().chain(&top_layers).cloned().collect();
            let builder = image(&store, &all, "builder");
            let builder_tag = format!("cnbx.test/{kind}-builder:1");
            let held = engine.held_layers(&[&base_tag, "cnbx.test/absent:1"]).await.unwrap();
            let out = engine.load(&builder, &[r(&builder_tag)], &held, Arc::new(NullReporter)).await.unwrap();
            assert_eq!((out.layers_sent, out.layers_left_out, out.resent_whole), (2, 3, false), "{out:?}");
            assert!(out.bytes_sent < 1 << 20, "the base's 3 MiB layer was sent: {out:?}");
            let (got, want) = saved_diff_ids(e, &builder_tag, work.path());
            assert_eq!(got, want, "the image in the engine is complete");
            assert_eq!(want, ids(&all));
            assert_eq!(e.inspect(&builder_tag).unwrap()["Id"], builder.config.digest.to_string());

            // Thought to be held but gone: the engine refuses, and everything is sent.
            let gone_layers = layers(&store, "gone", 1, 0);
            let gone = image(&store, &gone_layers, "gone");
            let claimed = HeldLayers::from_chains([ids(&gone_layers).iter().map(|d| d.parse().unwrap()).collect()]);
            let out = engine
                .load(&gone, &[r(&format!("cnbx.test/{kind}-gone:1"))], &claimed, Arc::new(NullReporter))
                .await
                .unwrap();
            assert_eq!((out.layers_sent, out.layers_left_out, out.resent_whole), (1, 0, true), "{out:?}");
        });
    }
}

#[test]
fn an_interrupted_load_leaves_the_old_tag_where_it_was() {
    for e in engines::all() {
        let work = tempfile::tempdir().unwrap();
        let store = BlobStore::open(work.path().join("store")).unwrap();
        let kind = format!("{:?}", e.kind()).to_lowercase();
        let tag = format!("cnbx.test/{kind}-interrupted:1");
        let old = image(&store, &layers(&store, "old", 1, 0), "old");
        let new_layers = layers(&store, "new", 2, 2 << 20);
        let new = image(&store, &new_layers, "new");
        runtime().block_on(async {
            let engine = connect(e).await;
            engine.load(&old, &[r(&tag)], &HeldLayers::none(), Arc::new(NullReporter)).await.unwrap();
            // The new image's big layer is corrupt in the store: the stream stops in it.
            let path = store.path(&new_layers[0].descriptor.digest);
            let mut bytes = std::fs::read(&path).unwrap();
            let last = bytes.len() - 10;
            bytes[last] ^= 0xff;
            std::fs::write(&path, bytes).unwrap();
            let err = engine.load(&new, &[r(&tag)], &HeldLayers::none(), Arc::new(NullReporter)).await.unwrap_err();
            let shown = cnbx_fs::error_chain(&err);
            assert!(matches!(err, EngineError::Stream { .. }), "{shown}");
            assert!(shown.contains(new_layers[0].descriptor.digest.as_str()), "{shown}");
            assert!(shown.starts_with(&format!("loading into {}", engine.describe())), "{shown}");
            // The tag still names the old image, and the new one is nowhere.
            assert_eq!(e.inspect(&tag).unwrap()["Id"], old.config.digest.to_string());
            assert!(!e.has_image(new.config.digest.as_str()));
        });
    }
}

/// Counts the bytes a load has sent.
struct Sent(Arc<AtomicU64>);

impl Reporter for Sent {
    fn message(&self, _: Level, _: &str) {}
    fn start(&self, _: &Task) {}
    fn advance(&self, _: &str, n: u64) {
        self.0.fetch_add(n, Ordering::SeqCst);
    }
    fn finish(&self, _: &str) {}
}

#[test]
fn an_engine_that_dies_mid_load_is_a_clear_error_and_then_unreachable() {
    for kind in [Kind::Docker, Kind::Podman] {
        let available = match kind {
            Kind::Docker => engines::docker().is_some(),
            Kind::Podman => engines::podman().is_some(),
        };
        if !available {
            continue;
        }
        let own = engines::Engine::start(kind).unwrap();
        let work = tempfile::tempdir().unwrap();
        let store = BlobStore::open(work.path().join("store")).unwrap();
        let big = image(&store, &layers(&store, "dies", 1, 48 << 20), "dies");
        runtime().block_on(async {
            let engine = connect(&own).await;
            let sent = Arc::new(AtomicU64::new(0));
            let load = {
                let (engine, big, sent) = (engine.clone(), big.clone(), Arc::clone(&sent));
                tokio::spawn(async move {
                    engine.load(&big, &[r("cnbx.test/dies:1")], &HeldLayers::none(), Arc::new(Sent(sent))).await
                })
            };
            while sent.load(Ordering::SeqCst) < 4 << 20 {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            own.kill().unwrap();
            let err = load.await.unwrap().unwrap_err();
            let shown = cnbx_fs::error_chain(&err);
            assert!(shown.contains(&engine.describe()), "{shown}");
            assert!(matches!(err, EngineError::Broken { .. } | EngineError::LoadFailed { .. }), "{shown}");
            // Nobody answers there any more.
            let err = Engine::connect(EngineEndpoint::unix(own.socket()), EngineOptions::default()).await.unwrap_err();
            assert!(err.is_unreachable(), "{err}");
            let shown = err.to_string();
            assert!(shown.contains(&format!("unix://{}", own.socket().display())), "{shown}");
            assert!(shown.contains("start Docker"), "{shown}");
        });
    }
}

#[test]
fn no_socket_is_unreachable_naming_the_address() {
    let work = tempfile::tempdir().unwrap();
    let socket = work.path().join("nothing.sock");
    let err = runtime()
        .block_on(Engine::probe(EngineEndpoint::unix(&socket), std::time::Duration::from_secs(2)))
        .unwrap_err();
    assert!(err.is_unreachable(), "{err}");
    assert_eq!(
        err.to_string(),
        format!(
            "no container engine answers at unix://{} (No such file or directory (os error 2)); start Docker (or \
             `podman system service`), or set DOCKER_HOST to the address of a running engine",
            socket.display()
        )
    );
}

#[test]
fn docker_save_tarballs_are_read_in_both_engines_formats() {
    for e in engines::all() {
        let work = tempfile::tempdir().unwrap();
        let store = BlobStore::open(work.path().join("store")).unwrap();
        let kind = format!("{:?}", e.kind()).to_lowercase();
        let tag = format!("cnbx.test/{kind}-saved:2");
        let built = layers(&store, "saved", 2, 1 << 20);
        let img = image(&store, &built, "saved");
        runtime().block_on(async {
            connect(e).await.load(&img, &[r(&tag)], &HeldLayers::none(), Arc::new(NullReporter)).await.unwrap();
        });
        let file = work.path().join("saved.tar");
        e.docker(&["save", "-o", &file.to_string_lossy(), &tag]).unwrap();
        let read_store = BlobStore::open(work.path().join("read")).unwrap();
        let cache = LayerCache::open(work.path().join("cache")).unwrap();
        let sink = cnbx_oci::docker_archive_read::ArchiveSink {
            store: &read_store,
            cache: Some(&cache),
            reporter: &NullReporter,
        };
        let read = cnbx_oci::docker_archive_read::read_docker_archive(&file, Some(&r(&tag)), sink).unwrap();
        assert_eq!(read.image.config_raw.digest, img.config.digest);
        assert_eq!(ids(&read.layers), ids(&built));
        let blobs: Vec<_> = read.layers.iter().map(|l| l.descriptor.digest.clone()).collect();
        assert_eq!(blobs, built.iter().map(|l| l.descriptor.digest.clone()).collect::<Vec<_>>());
        assert_eq!(read.repo_tags, vec![tag.clone()]);
        // Podman names its layer files by diffID: the second read takes them from the cache.
        let again = cnbx_oci::docker_archive_read::read_docker_archive(&file, None, sink).unwrap();
        let expected_from_cache = if e.kind() == Kind::Podman { 2 } else { 0 };
        assert_eq!(again.layers_from_cache, expected_from_cache);
        assert_eq!(again.image.manifest.digest, read.image.manifest.digest);
    }
}

#[test]
fn an_engine_too_old_or_too_new_for_cnbx_is_refused_naming_the_engine() {
    let work = tempfile::tempdir().unwrap();
    let old = work.path().join("old");
    std::fs::create_dir(&old).unwrap();
    let socket = cnbx_testkit::engines::fake_version_socket(
        &old,
        r#"{"Version":"1.11.2","ApiVersion":"1.23","MinAPIVersion":"1.12"}"#,
    );
    let err = runtime().block_on(Engine::connect(EngineEndpoint::unix(&socket), EngineOptions::default())).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "the Docker daemon at unix://{} speaks Engine API 1.23, older than 1.24, the oldest cnbx uses; upgrade the engine",
            socket.display()
        )
    );
    let new = work.path().join("new");
    std::fs::create_dir(&new).unwrap();
    let socket = cnbx_testkit::engines::fake_version_socket(
        &new,
        r#"{"Version":"99.0","ApiVersion":"1.60","MinAPIVersion":"1.55"}"#,
    );
    let err = runtime().block_on(Engine::connect(EngineEndpoint::unix(&socket), EngineOptions::default())).unwrap_err();
    assert!(err.to_string().contains("only accepts Engine API 1.55 and later, newer than 1.47"), "{err}");
    // An engine newer than cnbx that still accepts 1.47 is spoken to in 1.47.
    let newer = work.path().join("newer");
    std::fs::create_dir(&newer).unwrap();
    let socket = cnbx_testkit::engines::fake_version_socket(
        &newer,
        r#"{"Version":"28.2","ApiVersion":"1.50","MinAPIVersion":"1.24"}"#,
    );
    let engine = runtime().block_on(Engine::connect(EngineEndpoint::unix(&socket), EngineOptions::default())).unwrap();
    assert_eq!(engine.api_version().to_string(), "1.47");
}
