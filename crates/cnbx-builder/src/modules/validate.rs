//! Validation of the modules added to a builder, and order / system resolution
//! (docs/pack-compatibility.md, *Module checks*, *Order resolution*).

use cnbx_oci::progress::{Reporter, ReporterExt};
use serde::Serialize;

use cnbx_model::{
    ApiVersion, LifecycleDescriptor, ModuleInfo, ModuleKind, ModuleRef, OrderEntry, System, SystemBuildpacks, Target,
};

use super::{BuildImageFacts, ModuleError};
use crate::assemble::Module;

fn api_list(apis: &[ApiVersion]) -> String {
    apis.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

/// Rule 1: the module API equals one of the lifecycle's supported or deprecated buildpack
/// APIs.
fn check_api(m: &Module, lifecycle: &LifecycleDescriptor) -> Result<(), ModuleError> {
    let bp = &lifecycle.apis.buildpack;
    let api = m.layer_info.api.unwrap_or(ApiVersion::new(0, 1));
    if bp.supported().contains(&api) || bp.deprecated().contains(&api) {
        return Ok(());
    }
    Err(ModuleError::Validation(format!(
        "{} '{}' (Buildpack API {api}) is incompatible with lifecycle '{}' (Buildpack API(s) {})",
        m.dirs.kind.noun(),
        m.info.full_name(),
        lifecycle.version_text(),
        api_list(bp.supported())
    )))
}

fn deprecated_warning(m: &Module, lifecycle: &LifecycleDescriptor, reporter: &dyn Reporter) {
    let Some(api) = m.layer_info.api else { return };
    if lifecycle.apis.buildpack.deprecated().contains(&api) {
        let noun = match m.dirs.kind {
            ModuleKind::Buildpack => "Buildpack",
            ModuleKind::Extension => "Extension",
        };
        reporter.warn(&format!("{noun} '{}' is using deprecated Buildpacks API version '{api}'", m.info.full_name()));
    }
}

/// Warns about a `name` or `homepage` holding control characters (escape sequences, line
/// breaks, ...): pack shows both in `builder inspect`, where such text would drive the
/// terminal of whoever inspects the builder. cnbx escapes them wherever it prints them; the
/// warning tells the author, naming the module and the field and showing the value
/// escaped. The same holds whether the fields come from a descriptor or from a
/// buildpackage's labels.
fn control_character_warnings(kind: ModuleKind, info: &ModuleInfo, reporter: &dyn Reporter) {
    for (field, value) in [("name", &info.name), ("homepage", &info.homepage)] {
        if value.chars().any(char::is_control) {
            reporter.warn(&format!(
                "{} '{}': its {field} has control characters, which cnbx shows escaped: '{}'",
                kind.noun(),
                info.full_name(),
                cnbx_fs::excerpt(value)
            ));
        }
    }
}

#[derive(Serialize)]
struct ImageTarget<'a> {
    os: &'a str,
    arch: &'a str,
    distribution: ImageDistro<'a>,
}

#[derive(Serialize)]
struct ImageDistro<'a> {
    #[serde(skip_serializing_if = "str::is_empty")]
    name: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    version: &'a str,
}

fn target_matches(t: &Target, facts: &BuildImageFacts) -> bool {
    if t.os != facts.os {
        return false;
    }
    if !(t.arch.is_empty() || facts.arch.is_empty() || t.arch == facts.arch) {
        return false;
    }
    if t.distros.is_empty() || facts.distro_name.is_empty() || facts.distro_version.is_empty() {
        return true;
    }
    t.distros.iter().any(|d| d.name == facts.distro_name && d.version == facts.distro_version)
}

fn check_buildpack(m: &Module, all: &[ModuleInfo], facts: &BuildImageFacts) -> Result<(), ModuleError> {
    let name = m.info.full_name();
    let fail = |msg: String| Err(ModuleError::Validation(msg));
    let li = &m.layer_info;
    if !li.order.is_empty() {
        for r in li.order.iter().flat_map(OrderEntry::refs) {
            let full = r.full_name();
            if !all.iter().any(|i| !i.version.is_empty() && i.full_name() == full) {
                return fail(format!("buildpack '{full}' not found on the builder"));
            }
        }
        return Ok(());
    }
    if !li.stacks.is_empty() {
        let Some(stack) = li.stacks.iter().find(|s| s.id == facts.stack_id || s.id == "*") else {
            return fail(format!("buildpack '{name}' does not support stack '{}'", facts.stack_id));
        };
        let mut missing: Vec<&str> = stack
            .mixins
            .iter()
            .filter(|mx| !mx.starts_with("run:"))
            .filter(|mx| !facts.mixins.contains(mx))
            .map(String::as_str)
            .collect();
        missing.sort_unstable();
        missing.dedup();
        if !missing.is_empty() {
            return fail(format!("buildpack '{name}' requires missing mixin(s): {}", missing.join(", ")));
        }
    }
    if li.targets.is_empty() {
        let implicit_ok = facts.arch == "amd64" && (facts.os == "linux" || facts.os == "windows");
        if !li.stacks.is_empty() || !m.has_build_bin || implicit_ok {
            return Ok(());
        }
    } else if li.targets.iter().any(|t| target_matches(t, facts)) {
        return Ok(());
    }
    let image = ImageTarget {
        os: &facts.os,
        arch: &facts.arch,
        distribution: ImageDistro { name: &facts.distro_name, version: &facts.distro_version },
    };
    let image = crate::gocompat::json::to_string(&image).unwrap_or_default();
    let targets = if li.targets.is_empty() {
        // pack infers linux/amd64 from bin/build.
        vec![Target { os: "linux".into(), arch: "amd64".into(), ..Target::default() }]
    } else {
        li.targets.clone()
    };
    let targets = crate::gocompat::json::to_string(&targets).unwrap_or_default();
    fail(format!("unable to satisfy target os/arch constraints; build image: {image}, buildpack '{name}': {targets}"))
}

/// The module checks for buildpacks (composite references are looked up among
/// `buildpacks`), the API check for extensions, and the deprecated-API warning
/// (docs/pack-compatibility.md, *Module checks*).
pub fn validate_modules(
    buildpacks: &[Module],
    extensions: &[Module],
    lifecycle: &LifecycleDescriptor,
    facts: &BuildImageFacts,
    reporter: &dyn Reporter,
) -> Result<(), ModuleError> {
    validate_modules_with(buildpacks, extensions, &[], lifecycle, facts, reporter)
}

/// [`validate_modules`], with `existing`: buildpacks already on the base image (from its
/// builder metadata), which composite buildpacks may also reference.
pub fn validate_modules_with(
    buildpacks: &[Module],
    extensions: &[Module],
    existing: &[ModuleInfo],
    lifecycle: &LifecycleDescriptor,
    facts: &BuildImageFacts,
    reporter: &dyn Reporter,
) -> Result<(), ModuleError> {
    let mut all: Vec<ModuleInfo> = existing.to_vec();
    all.extend(buildpacks.iter().map(|m| m.info.clone()));
    check_order_graph(buildpacks.iter().map(|m| (&m.info, m.layer_info.order.as_slice())))?;
    for m in buildpacks.iter().chain(extensions) {
        control_character_warnings(m.dirs.kind, &m.info, reporter);
    }
    for m in buildpacks {
        deprecated_warning(m, lifecycle, reporter);
        check_api(m, lifecycle)?;
        check_buildpack(m, &all, facts)?;
    }
    for m in extensions {
        deprecated_warning(m, lifecycle, reporter);
        check_api(m, lifecycle)?;
    }
    Ok(())
}

/// How deep composite buildpacks may nest (a composite whose order names a composite whose
/// order names ... ). Real builders nest two or three levels.
pub const MAX_ORDER_DEPTH: usize = 32;

/// Composite buildpacks must not refer to themselves, directly or through others (detection
/// would recurse forever), and must not nest deeper than [`MAX_ORDER_DEPTH`].
pub(crate) fn check_order_graph<'a>(
    buildpacks: impl IntoIterator<Item = (&'a ModuleInfo, &'a [OrderEntry])>,
) -> Result<(), ModuleError> {
    use std::collections::HashMap;
    let orders: HashMap<String, Vec<String>> = buildpacks
        .into_iter()
        .filter(|(_, order)| !order.is_empty())
        .map(|(info, order)| {
            (info.full_name(), order.iter().flat_map(OrderEntry::refs).map(|r| r.full_name()).collect())
        })
        .collect();
    // Depth-first, keeping the path: a name met again on the path closes a cycle.
    fn visit(
        name: &str,
        orders: &HashMap<String, Vec<String>>,
        path: &mut Vec<String>,
        done: &mut std::collections::HashSet<String>,
    ) -> Result<(), ModuleError> {
        if let Some(start) = path.iter().position(|p| p == name) {
            let mut cycle: Vec<String> = path[start..].to_vec();
            cycle.push(name.to_owned());
            return Err(ModuleError::Validation(format!(
                "composite buildpack order has a cycle: {} (a buildpack cannot contain itself)",
                cycle.iter().map(|c| cnbx_fs::excerpt(c)).collect::<Vec<_>>().join(" -> ")
            )));
        }
        if done.contains(name) {
            return Ok(());
        }
        let Some(children) = orders.get(name) else { return Ok(()) };
        if path.len() >= MAX_ORDER_DEPTH {
            return Err(ModuleError::Validation(format!(
                "composite buildpacks nest more than {MAX_ORDER_DEPTH} levels deep (at '{}')",
                cnbx_fs::excerpt(name)
            )));
        }
        path.push(name.to_owned());
        for child in children {
            visit(child, orders, path, done)?;
        }
        path.pop();
        done.insert(name.to_owned());
        Ok(())
    }
    let mut names: Vec<&String> = orders.keys().collect();
    names.sort();
    let mut done = std::collections::HashSet::new();
    for name in names {
        visit(name, &orders, &mut Vec::new(), &mut done)?;
    }
    Ok(())
}

fn resolve_ref(r: &ModuleRef, available: &[ModuleInfo], noun: &str) -> Result<ModuleRef, String> {
    let id = &r.info.id;
    let candidates: Vec<&ModuleInfo> = available.iter().filter(|m| &m.id == id).collect();
    if candidates.is_empty() {
        return Err(format!("no versions of {noun} '{id}' were found on the builder"));
    }
    let mut out = r.clone();
    if r.info.version.is_empty() {
        let mut versions: Vec<&str> = candidates.iter().map(|c| c.version.as_str()).collect();
        versions.sort_unstable();
        versions.dedup();
        if versions.len() > 1 {
            return Err(format!(
                "unable to resolve version: multiple versions of '{id}' - must specify an explicit version"
            ));
        }
        out.info.version = candidates[0].version.clone();
    } else if !candidates.iter().any(|c| c.version == r.info.version) {
        return Err(format!("{noun} '{id}' with version '{}' was not found on the builder", r.info.version));
    }
    Ok(out)
}

/// Resolves every reference of `order` against `available` (the builder's modules of
/// `kind`): a missing version is filled in when exactly one version is available.
pub fn resolve_order(
    order: &[OrderEntry],
    available: &[ModuleInfo],
    kind: ModuleKind,
) -> Result<Vec<OrderEntry>, ModuleError> {
    let noun = kind.noun();
    order
        .iter()
        .map(|entry| {
            let group = match &entry.group {
                None => None,
                Some(g) => Some(
                    g.iter()
                        .map(|r| resolve_ref(r, available, noun))
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(ModuleError::Validation)?,
                ),
            };
            Ok(OrderEntry { group })
        })
        .collect()
}

/// Resolves the system buildpacks (same rule as [`resolve_order`]).
pub fn resolve_system(system: &System, available: &[ModuleInfo]) -> Result<System, ModuleError> {
    let side = |s: &SystemBuildpacks| -> Result<SystemBuildpacks, ModuleError> {
        let buildpacks = s
            .buildpacks
            .iter()
            .map(|r| resolve_ref(r, available, "buildpack"))
            .collect::<Result<Vec<_>, _>>()
            .map_err(ModuleError::Validation)?;
        Ok(SystemBuildpacks { buildpacks })
    };
    Ok(System { pre: side(&system.pre)?, post: side(&system.post)? })
}

#[cfg(test)]
mod tests {
    use super::*;
    use cnbx_oci::progress::{Level, Task};
    use std::sync::Mutex;

    #[derive(Default)]
    struct Warnings(Mutex<Vec<String>>);

    impl Reporter for Warnings {
        fn message(&self, level: Level, text: &str) {
            assert_eq!(level, Level::Warn);
            self.0.lock().unwrap().push(text.to_owned());
        }
        fn start(&self, _: &Task) {}
        fn advance(&self, _: &str, _: u64) {}
        fn finish(&self, _: &str) {}
    }

    #[test]
    fn names_and_homepages_with_control_characters_are_named_escaped() {
        let warnings = Warnings::default();
        let mut info = ModuleInfo::new("x/y", "1.0.0");
        info.name = "Moon Buildpack (ünïcode, tabs do not count: no)".into();
        info.homepage = "https://example.com/moon".into();
        control_character_warnings(ModuleKind::Buildpack, &info, &warnings);
        assert!(warnings.0.lock().unwrap().is_empty());

        info.name = "Moon\u{1b}]0;pwned\u{7}".into();
        info.homepage = "https://example.com/\nWarning: fine\u{9b}".into();
        control_character_warnings(ModuleKind::Extension, &info, &warnings);
        assert_eq!(
            *warnings.0.lock().unwrap(),
            [
                "extension 'x/y@1.0.0': its name has control characters, which cnbx shows escaped: \
                 'Moon\\u{1b}]0;pwned\\u{7}'",
                "extension 'x/y@1.0.0': its homepage has control characters, which cnbx shows escaped: \
                 'https://example.com/\\u{a}Warning: fine\\u{9b}'",
            ]
        );
    }
}
