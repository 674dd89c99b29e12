use std::sync::Mutex;

use cnbx_oci::progress::{Level, NullReporter, Reporter, Task};

use super::*;
use cnbx_model::{
    ApiVersion, Distribution, LifecycleDescriptor, ModuleRef, ModuleStack, OrderEntry, System, SystemBuildpacks, Target,
};
use cnbx_oci::image::LayerBlob;

#[derive(Default)]
struct Collect(Mutex<Vec<String>>);

impl Reporter for Collect {
    fn message(&self, level: Level, text: &str) {
        if level == Level::Warn {
            self.0.lock().unwrap().push(text.to_owned());
        }
    }
    fn start(&self, _: &Task) {}
    fn advance(&self, _: &str, _: u64) {}
    fn finish(&self, _: &str) {}
}

fn lifecycle() -> LifecycleDescriptor {
    LifecycleDescriptor::parse(
        "[apis.buildpack]\ndeprecated = [\"0.6\"]\nsupported = [\"0.7\", \"0.8\", \"0.9\", \"0.10\", \"0.11\", \"0.12\"]\n\
         [lifecycle]\nversion = \"0.21.0\"\n",
    )
    .unwrap()
}

fn facts() -> BuildImageFacts {
    BuildImageFacts {
        stack_id: "io.x".into(),
        mixins: vec!["a".into(), "build:b".into()],
        os: "linux".into(),
        arch: "arm64".into(),
        distro_name: String::new(),
        distro_version: String::new(),
    }
}

fn fake_blob(c: char) -> LayerBlob {
    let digest: cnbx_oci::Digest = format!("sha256:{}", c.to_string().repeat(64)).parse().unwrap();
    LayerBlob {
        descriptor: cnbx_oci::Descriptor::new("x", digest.clone(), 1),
        diff_id: digest,
        source: cnbx_oci::BlobSource::Registry(cnbx_refs::ImageRef::parse("x/y").unwrap()),
    }
}

fn module(id: &str, version: &str, f: impl FnOnce(&mut ModuleLayerInfo)) -> Module {
    let mut layer_info = ModuleLayerInfo { api: Some(ApiVersion::new(0, 10)), ..ModuleLayerInfo::default() };
    f(&mut layer_info);
    Module {
        dirs: ModuleDirs::new(ModuleKind::Buildpack, id, version).unwrap(),
        info: ModuleInfo::new(id, version),
        layer_info,
        layer: fake_blob('a'),
        has_build_bin: true,
        from_package: false,
        source: format!("test:{id}"),
    }
}

fn validate(bps: &[Module]) -> Result<(), String> {
    validate_modules(bps, &[], &lifecycle(), &facts(), &NullReporter).map_err(|e| e.to_string())
}

#[test]
fn api_incompatibility() {
    let m = module("a/b", "1", |l| l.api = Some(ApiVersion::new(0, 5)));
    assert_eq!(
        validate(&[m]).unwrap_err(),
        "buildpack 'a/b@1' (Buildpack API 0.5) is incompatible with lifecycle '0.21.0' \
         (Buildpack API(s) 0.7, 0.8, 0.9, 0.10, 0.11, 0.12)"
    );
    let mut ext = module("e", "1", |l| l.api = Some(ApiVersion::new(0, 2)));
    ext.dirs.kind = ModuleKind::Extension;
    let err = validate_modules(&[], &[ext], &lifecycle(), &facts(), &NullReporter).unwrap_err();
    assert!(err.to_string().starts_with("extension 'e@1' (Buildpack API 0.2)"), "{err}");
}

#[test]
fn deprecated_api_warns() {
    let m = module("a/b", "1", |l| {
        l.api = Some(ApiVersion::new(0, 6));
        l.stacks = vec![ModuleStack { id: "*".into(), mixins: vec![] }];
    });
    let r = Collect::default();
    validate_modules(&[m], &[], &lifecycle(), &facts(), &r).unwrap();
    assert_eq!(*r.0.lock().unwrap(), vec!["Buildpack 'a/b@1' is using deprecated Buildpacks API version '0.6'"]);
}

#[test]
fn composite_refs_must_exist() {
    let dep = module("dep", "1", |l| l.targets = vec![Target { os: "linux".into(), ..Target::default() }]);
    let comp = |r: ModuleRef| module("comp", "1", |l| l.order = vec![OrderEntry::new(vec![r])]);
    assert!(validate(&[comp(ModuleRef::new("dep", "1")), dep.clone()]).is_ok());
    assert_eq!(
        validate(&[comp(ModuleRef::new("dep", "2")), dep.clone()]).unwrap_err(),
        "buildpack 'dep@2' not found on the builder"
    );
    assert_eq!(
        validate(&[comp(ModuleRef::new("dep", "")), dep]).unwrap_err(),
        "buildpack 'dep' not found on the builder"
    );
}

#[test]
fn composite_cycles_and_depth_are_refused() {
    let comp = |id: &str, refs: &[&str]| {
        let group = refs.iter().map(|r| ModuleRef::new(*r, "1")).collect();
        module(id, "1", |l| l.order = vec![OrderEntry::new(group)])
    };
    assert_eq!(
        validate(&[comp("self", &["self"])]).unwrap_err(),
        "composite buildpack order has a cycle: self@1 -> self@1 (a buildpack cannot contain itself)"
    );
    assert_eq!(
        validate(&[comp("a", &["b"]), comp("b", &["c"]), comp("c", &["a"])]).unwrap_err(),
        "composite buildpack order has a cycle: a@1 -> b@1 -> c@1 -> a@1 (a buildpack cannot contain itself)"
    );
    // A diamond is not a cycle.
    let leaf = module("leaf", "1", |l| l.targets = vec![Target { os: "linux".into(), ..Target::default() }]);
    assert!(validate(&[comp("top", &["l", "r"]), comp("l", &["leaf"]), comp("r", &["leaf"]), leaf.clone()]).is_ok());
    // A chain deeper than the bound.
    let mut chain: Vec<Module> =
        (0..=MAX_ORDER_DEPTH).map(|i| comp(&format!("c{i}"), &[&format!("c{}", i + 1)])).collect();
    chain.push(module(&format!("c{}", MAX_ORDER_DEPTH + 1), "1", |l| l.targets = leaf.layer_info.targets.clone()));
    let e = validate(&chain).unwrap_err();
    assert!(e.starts_with(&format!("composite buildpacks nest more than {MAX_ORDER_DEPTH} levels deep")), "{e}");
}

#[test]
fn stacks_and_mixins() {
    let with = |id: &str, mixins: &[&str]| {
        module("a", "1", |l| {
            l.stacks = vec![ModuleStack { id: id.into(), mixins: mixins.iter().map(|s| s.to_string()).collect() }]
        })
    };
    assert!(validate(&[with("io.x", &["a", "build:b", "run:zzz"])]).is_ok());
    assert!(validate(&[with("*", &[])]).is_ok());
    assert_eq!(validate(&[with("io.other", &[])]).unwrap_err(), "buildpack 'a@1' does not support stack 'io.x'");
    assert_eq!(
        validate(&[with("io.x", &["z", "b", "a"])]).unwrap_err(),
        "buildpack 'a@1' requires missing mixin(s): b, z"
    );
}

#[test]
fn targets() {
    let with = |targets: Vec<Target>| module("a/b", "1", |l| l.targets = targets);
    let t = |os: &str, arch: &str| Target { os: os.into(), arch: arch.into(), ..Target::default() };
    assert!(validate(&[with(vec![t("linux", "")])]).is_ok());
    assert!(validate(&[with(vec![t("linux", "amd64"), t("linux", "arm64")])]).is_ok());
    assert_eq!(
        validate(&[with(vec![t("linux", "amd64")])]).unwrap_err(),
        "unable to satisfy target os/arch constraints; build image: \
         {\"os\":\"linux\",\"arch\":\"arm64\",\"distribution\":{}}, buildpack 'a/b@1': [{\"os\":\"linux\",\"arch\":\"amd64\"}]"
    );
    // Distros only count when the image declares its distro.
    let ubuntu = Target {
        distros: vec![Distribution { name: "ubuntu".into(), version: "22.04".into() }],
        ..t("linux", "arm64")
    };
    assert!(validate(&[with(vec![ubuntu.clone()])]).is_ok());
    let mut f = facts();
    f.distro_name = "debian".into();
    f.distro_version = "12".into();
    let err = validate_modules(&[with(vec![ubuntu])], &[], &lifecycle(), &f, &NullReporter).unwrap_err();
    assert!(err.to_string().contains(r#""distribution":{"name":"debian","version":"12"}"#), "{err}");
    // No targets: fine without bin/build, or on linux/amd64.
    let mut none = with(vec![]);
    assert!(validate(std::slice::from_ref(&none)).is_err());
    none.has_build_bin = false;
    assert!(validate(&[none]).is_ok());
    f = facts();
    f.arch = "amd64".into();
    assert!(validate_modules(&[with(vec![])], &[], &lifecycle(), &f, &NullReporter).is_ok());
}

fn available() -> Vec<ModuleInfo> {
    vec![ModuleInfo::new("a", "1"), ModuleInfo::new("b", "1"), ModuleInfo::new("b", "2"), ModuleInfo::new("b", "2")]
}

#[test]
fn order_resolution() {
    let order = |r: ModuleRef| vec![OrderEntry::new(vec![r])];
    let resolved =
        resolve_order(&order(ModuleRef::new("a", "").optional()), &available(), ModuleKind::Buildpack).unwrap();
    assert_eq!(resolved, order(ModuleRef::new("a", "1").optional()));
    assert_eq!(resolve_order(&order(ModuleRef::new("b", "2")), &available(), ModuleKind::Buildpack).unwrap().len(), 1);
    let err = |r, kind| resolve_order(&order(r), &available(), kind).unwrap_err().to_string();
    assert_eq!(
        err(ModuleRef::new("c", ""), ModuleKind::Buildpack),
        "no versions of buildpack 'c' were found on the builder"
    );
    assert_eq!(
        err(ModuleRef::new("b", ""), ModuleKind::Buildpack),
        "unable to resolve version: multiple versions of 'b' - must specify an explicit version"
    );
    assert_eq!(
        err(ModuleRef::new("a", "9"), ModuleKind::Buildpack),
        "buildpack 'a' with version '9' was not found on the builder"
    );
    assert_eq!(
        err(ModuleRef::new("c", "1"), ModuleKind::Extension),
        "no versions of extension 'c' were found on the builder"
    );
    // A group-less entry stays group-less.
    assert_eq!(
        resolve_order(&[OrderEntry::default()], &[], ModuleKind::Buildpack).unwrap(),
        vec![OrderEntry::default()]
    );
}

#[test]
fn system_resolution() {
    let system = System {
        pre: SystemBuildpacks { buildpacks: vec![ModuleRef::new("a", "")] },
        post: SystemBuildpacks { buildpacks: vec![ModuleRef::new("b", "1").optional()] },
    };
    let r = resolve_system(&system, &available()).unwrap();
    assert_eq!(r.pre.buildpacks, vec![ModuleRef::new("a", "1")]);
    assert_eq!(r.post.buildpacks, vec![ModuleRef::new("b", "1").optional()]);
    let bad = System { pre: SystemBuildpacks { buildpacks: vec![ModuleRef::new("z", "")] }, ..System::default() };
    assert_eq!(
        resolve_system(&bad, &available()).unwrap_err().to_string(),
        "no versions of buildpack 'z' were found on the builder"
    );
}
