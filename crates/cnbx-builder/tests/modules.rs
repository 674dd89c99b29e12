//! Fetching modules and lifecycles end to end, against testdata and buildpackages written by
//! the tests.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use cnbx_builder::assemble::{LayerService, Module};
use cnbx_builder::home::CnbxHome;
use cnbx_builder::images::{Images, PullPolicy};
use cnbx_builder::labels::{self, ModuleLayers};
use cnbx_builder::lifecycle::{LifecycleProblem, fetch_lifecycle};
use cnbx_builder::modules::{PACKAGE_METADATA, fetch_modules};
use cnbx_builder::source::FetchContext;
use cnbx_config::ModuleConfig;
use cnbx_model::{ApiVersion, LifecycleSource, ModuleInfo, ModuleKind, ModuleRef, OrderEntry};
use cnbx_oci::cache::LayerCache;
use cnbx_oci::config::ImageConfig;
use cnbx_oci::image::{BlobSource, ImageToWrite, LayerBlob};
use cnbx_oci::progress::{Level, NullReporter, Reporter, Task};
use cnbx_oci::spec::{Platform, media_type};
use cnbx_oci::{OciLayout, RegistryClient, RegistryOptions};

const GOLDEN_DIFF_ID: &str = "sha256:cf8a58cd1149f915f6fc747dc9c45a54f186622c2e63a3a95aa3d7ec35e6704a";
const GOLDEN_TOML: &str = "api = \"0.10\"\n\n[buildpack]\n  id = \"my/bp\"\n  version = \"0.0.1\"\n\n[[targets]]\n  os = \"linux\"\n  arch = \"amd64\"\n";

#[derive(Default)]
struct Messages(Mutex<Vec<(Level, String)>>);

impl Reporter for Messages {
    fn message(&self, level: Level, text: &str) {
        self.0.lock().unwrap().push((level, text.to_owned()));
    }
    fn start(&self, _: &Task) {}
    fn advance(&self, _: &str, _: u64) {}
    fn finish(&self, _: &str) {}
}

impl Messages {
    fn warnings(&self) -> Vec<String> {
        self.0.lock().unwrap().iter().filter(|(l, _)| *l == Level::Warn).map(|(_, t)| t.clone()).collect()
    }
}

struct Env {
    tmp: tempfile::TempDir,
    images: Images,
    layers: LayerService,
    platform: Platform,
    base_dir: PathBuf,
    messages: Messages,
}

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata")
}

impl Env {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let home = CnbxHome::new(tmp.path().join("home"));
        let cache = LayerCache::open(home.layer_cache_dir()).unwrap();
        let registry = RegistryClient::new(RegistryOptions::default());
        let images = Images::new(home, PullPolicy::Never, false, Arc::new(NullReporter), registry).unwrap();
        let layers = LayerService::new(cache, images.blobs().clone(), Arc::new(NullReporter));
        Self {
            tmp,
            images,
            layers,
            platform: Platform::new("linux", "amd64", None),
            base_dir: testdata(),
            messages: Messages::default(),
        }
    }

    fn ctx(&self) -> FetchContext<'_> {
        FetchContext {
            images: &self.images,
            layers: &self.layers,
            base_dir: &self.base_dir,
            platform: &self.platform,
            reporter: &self.messages,
        }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.tmp.path().join(p)
    }

    async fn fetch(&self, kind: ModuleKind, uri: &str) -> Result<Vec<Module>, String> {
        let spec = ModuleConfig { uri: uri.to_owned(), ..ModuleConfig::default() };
        fetch_modules(&self.ctx(), kind, &[spec]).await.map_err(|e| cnbx_fs::error_chain(&e))
    }

    fn layer_tar(&self, layer: &LayerBlob) -> Vec<u8> {
        let BlobSource::Store(store) = &layer.source else { panic!("remote layer") };
        let blob = store.read(&layer.descriptor.digest).unwrap();
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&blob[..]).read_to_end(&mut out).unwrap();
        out
    }
}

fn tar_listing(tar: &[u8]) -> Vec<(String, u32)> {
    let mut a = tar::Archive::new(tar);
    a.entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.path().unwrap().to_string_lossy().into_owned(), e.header().mode().unwrap())
        })
        .collect()
}

/// The golden directory buildpack of pack's tar encoding (`my/bp@0.0.1`).
fn golden_dir(root: &Path) -> PathBuf {
    let dir = root.join("my-bp");
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    for bin in ["build", "detect"] {
        let p = dir.join("bin").join(bin);
        std::fs::write(&p, "#!/bin/sh\nexit 0\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::write(dir.join("buildpack.toml"), GOLDEN_TOML).unwrap();
    dir
}

/// A USTAR tar.gz of `dir` (relative names, like `tar czf x.tgz -C dir .` would give).
fn tgz_of(dir: &Path, out: &Path) {
    let file = std::fs::File::create(out).unwrap();
    let gz = flate2::write::GzEncoder::new(file, flate2::Compression::default());
    let mut b = tar::Builder::new(gz);
    for e in walkdir::WalkDir::new(dir).min_depth(1).sort_by_file_name() {
        let e = e.unwrap();
        let rel = e.path().strip_prefix(dir).unwrap().to_string_lossy().into_owned();
        let meta = e.metadata().unwrap();
        let mut h = tar::Header::new_ustar();
        h.set_mode(meta.permissions().mode() & 0o7777);
        h.set_mtime(1_700_000_000);
        h.set_uid(1000);
        h.set_gid(1000);
        if meta.is_dir() {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_size(0);
            b.append_data(&mut h, &rel, std::io::empty()).unwrap();
        } else {
            let data = std::fs::read(e.path()).unwrap();
            h.set_size(data.len() as u64);
            b.append_data(&mut h, &rel, &data[..]).unwrap();
        }
    }
    b.into_inner().unwrap().finish().unwrap();
}

#[tokio::test]
async fn golden_directory_buildpack() {
    let env = Env::new();
    let dir = golden_dir(env.tmp.path());
    let modules = env.fetch(ModuleKind::Buildpack, dir.to_str().unwrap()).await.unwrap();
    assert_eq!(modules.len(), 1);
    let m = &modules[0];
    assert_eq!(m.layer.diff_id.to_string(), GOLDEN_DIFF_ID);
    assert_eq!(m.layer_info.layer_diff_id, GOLDEN_DIFF_ID);
    assert_eq!(m.info, ModuleInfo::new("my/bp", "0.0.1"));
    assert_eq!(m.layer_info.api, Some(ApiVersion::new(0, 10)));
    assert!(m.has_build_bin);
    assert!(!m.from_package);
    let tar = env.layer_tar(&m.layer);
    assert_eq!(tar.len(), 5632);
    assert_eq!(
        tar_listing(&tar),
        [
            ("/cnb/buildpacks/my_bp".to_owned(), 0o755),
            ("/cnb/buildpacks/my_bp/0.0.1".to_owned(), 0o755),
            ("/cnb/buildpacks/my_bp/0.0.1/bin".to_owned(), 0o755),
            ("/cnb/buildpacks/my_bp/0.0.1/bin/build".to_owned(), 0o755),
            ("/cnb/buildpacks/my_bp/0.0.1/bin/detect".to_owned(), 0o755),
            ("/cnb/buildpacks/my_bp/0.0.1/buildpack.toml".to_owned(), 0o644),
        ]
    );

    // The same content as a tar.gz (and via file://) gives the same layer.
    let tgz = env.path("my-bp.tgz");
    tgz_of(&dir, &tgz);
    let from_tgz = env.fetch(ModuleKind::Buildpack, tgz.to_str().unwrap()).await.unwrap();
    assert_eq!(from_tgz[0].layer.diff_id.to_string(), GOLDEN_DIFF_ID);
    let uri = format!("file://{}", tgz.display());
    let from_uri = env.fetch(ModuleKind::Buildpack, &uri).await.unwrap();
    assert_eq!(from_uri[0].layer.diff_id.to_string(), GOLDEN_DIFF_ID);

    // A second fetch is a cache hit with the same blob.
    let again = env.fetch(ModuleKind::Buildpack, dir.to_str().unwrap()).await.unwrap();
    assert_eq!(again[0].layer.descriptor, m.layer.descriptor);
}

#[tokio::test(flavor = "multi_thread")]
async fn testdata_dir_tgz_and_composite() {
    let env = Env::new();
    let specs: Vec<ModuleConfig> = ["buildpacks/hello-universe", "buildpacks/hello-world", "buildpacks/hello-moon.tgz"]
        .iter()
        .map(|u| ModuleConfig { uri: (*u).to_owned(), ..ModuleConfig::default() })
        .collect();
    let modules = fetch_modules(&env.ctx(), ModuleKind::Buildpack, &specs).await.unwrap();
    let names: Vec<String> = modules.iter().map(|m| m.info.full_name()).collect();
    assert_eq!(names, ["samples/hello-universe@0.0.1", "samples/hello-world@0.0.1", "samples/hello-moon@0.0.3"]);
    let universe = &modules[0];
    assert!(!universe.has_build_bin);
    assert_eq!(universe.info.homepage, "https://example.com/cnbx/hello-universe");
    assert_eq!(universe.layer_info.name, "Hello Universe Buildpack");
    assert_eq!(
        universe.layer_info.order,
        vec![OrderEntry::new(vec![
            ModuleRef::new("samples/hello-world", "0.0.1"),
            ModuleRef::new("samples/hello-moon", "0.0.3").optional()
        ])]
    );
    assert_eq!(modules[1].layer_info.targets.len(), 2);

    // hello-moon as a directory gives the tgz's layer.
    let moon_dir = env.fetch(ModuleKind::Buildpack, "buildpacks/hello-moon").await.unwrap();
    assert_eq!(moon_dir[0].layer.diff_id, modules[2].layer.diff_id);

    // Extensions.
    let ext = env.fetch(ModuleKind::Extension, "extensions/hello-ext").await.unwrap();
    assert_eq!(ext[0].info.full_name(), "samples/hello-ext@0.0.1");
    let listing = tar_listing(&env.layer_tar(&ext[0].layer));
    assert_eq!(listing[0].0, "/cnb/extensions/samples_hello-ext");
    assert!(listing.iter().any(|(n, m)| n == "/cnb/extensions/samples_hello-ext/0.0.1/bin/generate" && *m == 0o755));
}

#[tokio::test]
async fn config_mismatch_and_locator_errors() {
    let env = Env::new();
    let spec = ModuleConfig {
        uri: "buildpacks/hello-world".into(),
        info: ModuleInfo::new("other/id", ""),
        ..ModuleConfig::default()
    };
    let err = fetch_modules(&env.ctx(), ModuleKind::Buildpack, &[spec]).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "buildpack from URI 'buildpacks/hello-world' has ID 'samples/hello-world' which does not match ID 'other/id' from builder config"
    );
    let spec = ModuleConfig {
        uri: "buildpacks/hello-world".into(),
        info: ModuleInfo::new("", "9.9.9"),
        ..ModuleConfig::default()
    };
    let err = fetch_modules(&env.ctx(), ModuleKind::Buildpack, &[spec]).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "buildpack from URI 'buildpacks/hello-world' has version '0.0.1' which does not match version '9.9.9' from builder config"
    );
    let e = env.fetch(ModuleKind::Buildpack, "urn:cnb:registry:paketo/go@1.0.0").await.unwrap_err();
    assert!(e.contains("buildpack registries are not supported by cnbx; use docker://<image>"), "{e}");
    let e = env.fetch(ModuleKind::Buildpack, "paketo-buildpacks/go").await.unwrap_err();
    assert!(e.contains("buildpack registries are not supported"), "{e}");
    let e = env.fetch(ModuleKind::Buildpack, "urn:cnb:builder:x/y").await.unwrap_err();
    assert_eq!(e, "'urn:cnb:builder:x/y' is not a valid identifier");
    let e = env.fetch(ModuleKind::Buildpack, "from=builder").await.unwrap_err();
    assert_eq!(e, "error reading from=builder: invalid locator: FromBuilderLocator");
    let e = env.fetch(ModuleKind::Buildpack, "ftp://x/y.tgz").await.unwrap_err();
    assert_eq!(e, "unsupported protocol 'ftp' in URI 'ftp://x/y.tgz'");
    // An extension directory read as a buildpack has no buildpack.toml.
    let e = env.fetch(ModuleKind::Buildpack, "extensions/hello-ext").await.unwrap_err();
    assert!(e.ends_with("could not find entry path 'buildpack.toml': not exist"), "{e}");
    // A file that is not a tar (zip is not supported).
    let zip = env.path("bp.zip");
    std::fs::write(&zip, b"PK\x03\x04 this is not a tar archive, whatever its name says, and it is long enough to fill a block of the tar reader's header, 512 bytes are needed for a header, so let us keep going for a while longer. Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat. Duis aute irure dolor in reprehenderit in voluptate velit esse cillum dolore eu fugiat nulla pariatur.").unwrap();
    let e = env.fetch(ModuleKind::Buildpack, zip.to_str().unwrap()).await.unwrap_err();
    assert!(e.contains("it is not a valid tar or gzipped tar stream (zip is not supported)"), "{e}");
    // Nothing of the file is quoted (it could be anything, a secret included).
    assert!(!e.contains("PK") && !e.contains("Lorem"), "{e}");
    // Unknown descriptor keys warn.
    let dir = env.path("warn-bp");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("buildpack.toml"), "[buildpack]\nid = \"w/x\"\nversion = \"1\"\nshiny = true\n").unwrap();
    env.fetch(ModuleKind::Buildpack, dir.to_str().unwrap()).await.unwrap();
    assert_eq!(
        env.messages.warnings(),
        ["Ignoring unexpected key(s) in descriptor for buildpack w_x: buildpack.shiny"]
    );
}

/// Writes a buildpackage image into an OCI layout at `dir` under `tag`.
fn write_package(dir: &Path, tag: &str, layers: &[LayerBlob], meta: &ModuleInfo, module_layers: &ModuleLayers) {
    let platform = Platform::new("linux", "amd64", None);
    let mut config = ImageConfig::new(&platform);
    for l in layers {
        config.push_diff_id(&l.diff_id);
    }
    config.set_label(PACKAGE_METADATA, &labels::encode(PACKAGE_METADATA, meta).unwrap());
    config.set_label(labels::BUILDPACK_LAYERS, &labels::encode(labels::BUILDPACK_LAYERS, module_layers).unwrap());
    let image = ImageToWrite {
        manifest_media_type: media_type::OCI_MANIFEST.into(),
        config_media_type: media_type::OCI_CONFIG.into(),
        config: config.to_raw(),
        layers: layers.to_vec(),
        platform,
        annotations: None,
    };
    OciLayout::create(dir).unwrap().write(tag, &[image]).unwrap();
}

/// A tar (uncompressed) of the directory `dir`, entries relative.
fn tar_dir(dir: &Path, out: &Path) {
    let mut b = tar::Builder::new(std::fs::File::create(out).unwrap());
    b.append_dir_all(".", dir).unwrap();
    b.into_inner().unwrap();
}

#[tokio::test]
async fn buildpackage_layers_are_reused_and_flattened_ones_split() {
    let env = Env::new();
    let golden = env.fetch(ModuleKind::Buildpack, golden_dir(env.tmp.path()).to_str().unwrap()).await.unwrap();
    let world = env.fetch(ModuleKind::Buildpack, "buildpacks/hello-world").await.unwrap();
    let (g, w) = (&golden[0], &world[0]);

    // A package whose main module is my/bp with hello-world as a dependency.
    let mut ml = ModuleLayers::default();
    ml.insert("my/bp", "0.0.1", g.layer_info.clone());
    ml.insert("samples/hello-world", "0.0.1", w.layer_info.clone());
    let meta = ModuleInfo::new("my/bp", "0.0.1");
    let layout = env.path("layout");
    write_package(&layout, "pkg", &[w.layer.clone(), g.layer.clone()], &meta, &ml);

    let uri = format!("oci:{}:pkg", layout.display());
    let modules = env.fetch(ModuleKind::Buildpack, &uri).await.unwrap();
    let names: Vec<String> = modules.iter().map(|m| m.info.full_name()).collect();
    assert_eq!(names, ["my/bp@0.0.1", "samples/hello-world@0.0.1"]);
    assert!(modules.iter().all(|m| m.from_package && !m.has_build_bin));
    assert_eq!(modules[0].layer.descriptor, g.layer.descriptor, "reused byte for byte");
    assert_eq!(modules[1].layer.descriptor, w.layer.descriptor);
    assert_eq!(modules[1].info.homepage, "https://example.com/cnbx/hello-world");
    assert_eq!(modules[1].info.name, "Hello World Buildpack");
    assert_eq!(modules[1].layer_info.targets, w.layer_info.targets);

    // The same package as a .cnb file: blobs imported unchanged into the cnbx store.
    let cnb = env.path("pkg.cnb");
    tar_dir(&layout, &cnb);
    let from_cnb = env.fetch(ModuleKind::Buildpack, cnb.to_str().unwrap()).await.unwrap();
    assert_eq!(from_cnb[0].layer.descriptor, g.layer.descriptor);
    let BlobSource::Store(store) = &from_cnb[0].layer.source else { panic!() };
    assert_eq!(store.root(), env.images.blobs().root());
    assert!(env.images.blobs().contains(&g.layer.descriptor.digest));

    // Config id/version are checked against the package's main module.
    let spec =
        ModuleConfig { uri: uri.clone(), info: ModuleInfo::new("samples/hello-world", ""), ..ModuleConfig::default() };
    let err = fetch_modules(&env.ctx(), ModuleKind::Buildpack, &[spec]).await.unwrap_err();
    assert!(err.to_string().contains("has ID 'my/bp' which does not match ID 'samples/hello-world'"), "{err}");

    // A flattened package: both modules in one layer → split into one layer per module,
    // each the same as the module's own layer.
    let flat_layout = env.path("flat");
    let (flat_layers, flat_label) = cnbx_builder::assemble::modules::plan(
        &env.layers,
        ModuleKind::Buildpack,
        &[g.clone(), w.clone()],
        &ModuleLayers::default(),
        &[vec!["my/bp@0.0.1".into(), "samples/hello-world@0.0.1".into()]],
    )
    .unwrap();
    assert_eq!(flat_layers.len(), 1);
    write_package(&flat_layout, "latest", &flat_layers, &meta, &flat_label);
    let split = env.fetch(ModuleKind::Buildpack, &format!("oci:{}", flat_layout.display())).await.unwrap();
    assert_eq!(split[0].layer.diff_id, g.layer.diff_id);
    assert_eq!(split[1].layer.diff_id, w.layer.diff_id);

    // Missing labels.
    let bare = env.path("bare");
    let mut cfg_less = ImageConfig::new(&Platform::new("linux", "amd64", None));
    cfg_less.push_diff_id(&g.layer.diff_id);
    let image = ImageToWrite {
        manifest_media_type: media_type::OCI_MANIFEST.into(),
        config_media_type: media_type::OCI_CONFIG.into(),
        config: cfg_less.to_raw(),
        layers: vec![g.layer.clone()],
        platform: Platform::new("linux", "amd64", None),
        annotations: None,
    };
    OciLayout::create(&bare).unwrap().write("nolabels", &[image]).unwrap();
    let e = env.fetch(ModuleKind::Buildpack, &format!("oci:{}:nolabels", bare.display())).await.unwrap_err();
    assert!(e.ends_with("could not find label 'io.buildpacks.buildpackage.metadata'"), "{e}");
}

#[tokio::test]
async fn plan_merges_with_base_labels() {
    let env = Env::new();
    let golden = env.fetch(ModuleKind::Buildpack, golden_dir(env.tmp.path()).to_str().unwrap()).await.unwrap();
    let mut base = ModuleLayers::default();
    base.insert("my/bp", "0.0.1", golden[0].layer_info.clone());
    let (layers, merged) =
        cnbx_builder::assemble::modules::plan(&env.layers, ModuleKind::Buildpack, &golden, &base, &[]).unwrap();
    assert!(layers.is_empty(), "same diffID on the base image: skipped");
    assert_eq!(merged, base);
}

fn lifecycle_archive(out: &Path, skip: &str) {
    let src = testdata().join("lifecycle/lifecycle-v0.21.0+test.tgz");
    let mut a = tar::Archive::new(flate2::read::MultiGzDecoder::new(std::fs::File::open(src).unwrap()));
    let mut b = tar::Builder::new(std::fs::File::create(out).unwrap());
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let path = e.path().unwrap().to_string_lossy().into_owned();
        if path.trim_end_matches('/') == skip {
            continue;
        }
        let mut h = e.header().clone();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        b.append_data(&mut h, &path, &data[..]).unwrap();
    }
    b.into_inner().unwrap();
}

#[tokio::test]
async fn lifecycle_from_testdata() {
    let env = Env::new();
    let loc = LifecycleSource::Uri("lifecycle/lifecycle-v0.21.0+test.tgz".into());
    let lc = fetch_lifecycle(&env.ctx(), &loc, "amd64").await.unwrap();
    let m = &lc.metadata;
    assert_eq!(m.version.as_ref().unwrap().to_string(), "0.21.0");
    let apis = |s: &[ApiVersion]| s.iter().map(ToString::to_string).collect::<Vec<_>>().join(",");
    assert_eq!(apis(m.apis.buildpack.supported()), "0.7,0.8,0.9,0.10,0.11,0.12");
    assert_eq!(apis(m.apis.platform.supported()), "0.7,0.8,0.9,0.10,0.11,0.12,0.13,0.14,0.15");
    assert_eq!(m.api.buildpack, Some(ApiVersion::new(0, 7)));
    assert_eq!(m.api.platform, Some(ApiVersion::new(0, 7)));
    let listing = tar_listing(&env.layer_tar(&lc.layer));
    let names: Vec<&str> = listing.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "/cnb/lifecycle",
            "/cnb/lifecycle/analyzer",
            "/cnb/lifecycle/builder",
            "/cnb/lifecycle/creator",
            "/cnb/lifecycle/detector",
            "/cnb/lifecycle/exporter",
            "/cnb/lifecycle/extender",
            "/cnb/lifecycle/launcher",
            "/cnb/lifecycle/rebaser",
            "/cnb/lifecycle/restorer",
            "/lifecycle"
        ]
    );
    assert!(listing[1..10].iter().all(|(_, mode)| *mode == 0o755));
    assert_eq!(listing[10].1, 0o644);

    // The same lifecycle as an uncompressed tar and via file://.
    let tar_path = env.path("lc.tar");
    lifecycle_archive(&tar_path, "");
    let uri = format!("file://{}", tar_path.display());
    let lc2 = fetch_lifecycle(&env.ctx(), &LifecycleSource::Uri(uri), "amd64").await.unwrap();
    assert_eq!(lc2.layer.diff_id, lc.layer.diff_id);
    assert_eq!(lc2.metadata, lc.metadata);
}

#[tokio::test]
async fn lifecycle_validation_errors() {
    let env = Env::new();
    let missing_bin = env.path("no-creator.tar");
    lifecycle_archive(&missing_bin, "lifecycle/creator");
    let err = fetch_lifecycle(&env.ctx(), &LifecycleSource::Uri(missing_bin.display().to_string()), "amd64")
        .await
        .unwrap_err();
    assert!(matches!(err.problem(), LifecycleProblem::Invalid(_)));
    assert_eq!(
        cnbx_fs::error_chain(&err),
        "fetch lifecycle: invalid lifecycle: validating binaries: did not find 'creator' in tar"
    );
    let missing_toml = env.path("no-toml.tar");
    lifecycle_archive(&missing_toml, "lifecycle.toml");
    let err = fetch_lifecycle(&env.ctx(), &LifecycleSource::Uri(missing_toml.display().to_string()), "amd64")
        .await
        .unwrap_err();
    assert_eq!(
        cnbx_fs::error_chain(&err),
        "fetch lifecycle: invalid lifecycle: could not find entry path 'lifecycle.toml': not exist"
    );
}

#[tokio::test]
async fn lifecycle_version_downloads_from_a_named_url() {
    // Pointing at a closed local port stands in for "offline": the error names the URL and
    // says how to work around it.
    let env = Env::new();
    let err = fetch_lifecycle(&env.ctx(), &LifecycleSource::Uri("http://127.0.0.1:9/lc.tgz".into()), "amd64")
        .await
        .unwrap_err();
    let chain = cnbx_fs::error_chain(&err);
    assert!(
        chain.starts_with(
            "fetch lifecycle: downloading 'http://127.0.0.1:9/lc.tgz': the request failed (is the network available? Download it \
             yourself and use the local file): "
        ),
        "{chain}"
    );
    // The request's error is kept as the source, down to the operating system's.
    assert!(chain.to_lowercase().contains("connection refused"), "{chain}");
}

#[tokio::test]
async fn http_download_with_etag_cache() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = std::fs::read(testdata().join("buildpacks/hello-moon.tgz")).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let requests: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = requests.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else { return };
            let mut buf = vec![0u8; 4096];
            let n = sock.read(&mut buf).await.unwrap_or(0);
            let req = String::from_utf8_lossy(&buf[..n]).into_owned();
            let cached = req.to_ascii_lowercase().contains("if-none-match: \"v1\"");
            seen.lock().unwrap().push(req);
            let head = if cached {
                "HTTP/1.1 304 Not Modified\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_owned()
            } else {
                format!(
                    "HTTP/1.1 200 OK\r\nETag: \"v1\"\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                )
            };
            let _ = sock.write_all(head.as_bytes()).await;
            if !cached {
                let _ = sock.write_all(&body).await;
            }
            let _ = sock.shutdown().await;
        }
    });
    let env = Env::new();
    let uri = format!("http://{addr}/hello-moon.tgz");
    let first = env.fetch(ModuleKind::Buildpack, &uri).await.unwrap();
    let second = env.fetch(ModuleKind::Buildpack, &uri).await.unwrap();
    assert_eq!(first[0].info.full_name(), "samples/hello-moon@0.0.3");
    assert_eq!(first[0].layer.diff_id, second[0].layer.diff_id);
    let reqs = requests.lock().unwrap();
    assert_eq!(reqs.len(), 2);
    assert!(reqs[1].to_ascii_lowercase().contains("if-none-match"));
    let infos: BTreeMap<_, _> = env.messages.0.lock().unwrap().iter().cloned().map(|(l, t)| (t, l)).collect();
    assert_eq!(infos.get(&format!("Downloading from '{uri}'")), Some(&Level::Info));
}

fn put_in_store(env: &Env, name: &str, layers: &[LayerBlob], labels_: &[(&str, String)]) {
    let platform = Platform::new("linux", "amd64", None);
    let mut config = ImageConfig::new(&platform);
    for l in layers {
        config.push_diff_id(&l.diff_id);
    }
    for (k, v) in labels_ {
        config.set_label(k, v);
    }
    let image = ImageToWrite {
        manifest_media_type: media_type::OCI_MANIFEST.into(),
        config_media_type: media_type::OCI_CONFIG.into(),
        config: config.to_raw(),
        layers: layers.to_vec(),
        platform,
        annotations: None,
    };
    let reference = cnbx_refs::ImageRef::parse(name).unwrap();
    env.images.store().put(&reference, &[image]).unwrap();
}

#[tokio::test]
async fn package_image_by_name_from_the_local_store() {
    let env = Env::new();
    let golden = env.fetch(ModuleKind::Buildpack, golden_dir(env.tmp.path()).to_str().unwrap()).await.unwrap();
    let g = &golden[0];
    let mut ml = ModuleLayers::default();
    ml.insert("my/bp", "0.0.1", g.layer_info.clone());
    let meta = ModuleInfo::new("my/bp", "0.0.1");
    put_in_store(
        &env,
        "example.com/pkgs/my-bp:1",
        std::slice::from_ref(&g.layer),
        &[
            (PACKAGE_METADATA, labels::encode(PACKAGE_METADATA, &meta).unwrap()),
            (labels::BUILDPACK_LAYERS, labels::encode(labels::BUILDPACK_LAYERS, &ml).unwrap()),
        ],
    );
    for uri in ["docker://example.com/pkgs/my-bp:1", "docker:/example.com/pkgs/my-bp:1", "example.com/pkgs/my-bp:1"] {
        let modules = env.fetch(ModuleKind::Buildpack, uri).await.unwrap();
        assert_eq!(modules.len(), 1, "{uri}");
        assert_eq!(modules[0].layer.descriptor, g.layer.descriptor, "{uri}");
    }
    // Not in the store and the pull policy forbids pulling.
    let e = env.fetch(ModuleKind::Buildpack, "docker://example.com/pkgs/missing:1").await.unwrap_err();
    assert!(e.contains("was not found"), "{e}");
}

#[tokio::test]
async fn lifecycle_from_a_lifecycle_image() {
    let env = Env::new();
    let mut r = cnbx_oci::LayerRecipe::new("lifecycle image layer");
    r.push_header(cnbx_oci::TarEntry::dir("/cnb"));
    r.push_header(cnbx_oci::TarEntry::dir("/cnb/lifecycle"));
    for bin in ["analyzer", "builder", "creator", "detector", "exporter", "launcher", "restorer"] {
        r.push_bytes(cnbx_oci::TarEntry::file(format!("/cnb/lifecycle/{bin}"), 0).with_mode(0o755), b"bin".to_vec());
    }
    let toml = std::fs::read(testdata().join("lifecycle/src/lifecycle.toml"))
        .unwrap_or_else(|_| b"[apis.buildpack]\nsupported = [\"0.7\"]\n[lifecycle]\nversion = \"0.21.0\"\n".to_vec());
    r.push_bytes(cnbx_oci::TarEntry::file("/cnb/lifecycle.toml", 0), toml);
    let layer = env.layers.build(&r).unwrap();
    put_in_store(&env, "example.com/lifecycle:0.21.0", &[layer], &[]);

    let loc = LifecycleSource::Uri("docker://example.com/lifecycle:0.21.0".into());
    let lc = fetch_lifecycle(&env.ctx(), &loc, "amd64").await.unwrap();
    assert_eq!(lc.metadata.version.as_ref().unwrap().to_string(), "0.21.0");
    let names: Vec<String> = tar_listing(&env.layer_tar(&lc.layer)).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names.first().map(String::as_str), Some("/cnb/lifecycle"));
    assert_eq!(names.last().map(String::as_str), Some("/lifecycle"));
    assert_eq!(names.len(), 9);
    assert!(names.contains(&"/cnb/lifecycle/creator".to_owned()));
}

#[tokio::test]
async fn lifecycle_from_a_directory() {
    let env = Env::new();
    let src = testdata().join("lifecycle/src");
    let dir = env.path("lc-dir");
    std::fs::create_dir_all(dir.join("lifecycle")).unwrap();
    for e in std::fs::read_dir(&src).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().into_string().unwrap();
        let to = if name == "lifecycle.toml" { dir.join(&name) } else { dir.join("lifecycle").join(&name) };
        std::fs::copy(e.path(), to).unwrap();
    }
    let lc = fetch_lifecycle(&env.ctx(), &LifecycleSource::Uri(dir.display().to_string()), "arm64").await.unwrap();
    assert_eq!(lc.metadata.apis.platform.supported().len(), 9);
    let listing = tar_listing(&env.layer_tar(&lc.layer));
    assert_eq!(listing.len(), 11);
    assert_eq!(listing[1].0, "/cnb/lifecycle/analyzer");
    // The flat source directory itself is not a lifecycle (binaries must be at <dir>/<name>).
    let err = fetch_lifecycle(&env.ctx(), &LifecycleSource::Uri(src.display().to_string()), "amd64").await.unwrap_err();
    assert_eq!(
        cnbx_fs::error_chain(&err),
        "fetch lifecycle: invalid lifecycle: validating binaries: did not find 'detector' in tar"
    );
}
