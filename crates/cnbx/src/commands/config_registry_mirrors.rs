//! `cnbx config registry-mirrors [add|remove|list]`: pack's command and messages, on pack's
//! configuration.
//!
//! Differences from pack, on purpose: the registry and the mirror are checked before anything
//! is written (a registry host, or `*`; a mirror `HOST[:PORT][/PATH]` whose host is one, since
//! `mirror/library/alpine` would otherwise name a Docker Hub repository), a registry written
//! `docker.io` gets a warning (names are matched as `index.docker.io`, so it never applies),
//! the list is in file order (pack's is random), and edits are serialised by the
//! configuration's lock.

use std::process::ExitCode;

use anyhow::bail;
use cnbx_refs::ImageRef;
use cnbx_refs::registry_mirrors::ANY_REGISTRY;
use cnbx_refs::user_config::{self, UserConfig};

use crate::cli::{RegistryMirrorsAction, RegistryMirrorsArgs};
use crate::printer::Printer;

pub(crate) fn run(args: RegistryMirrorsArgs, printer: &Printer) -> anyhow::Result<ExitCode> {
    match args.action.unwrap_or(RegistryMirrorsAction::List) {
        RegistryMirrorsAction::List => list(&UserConfig::load_default()?, printer),
        RegistryMirrorsAction::Add { registry, mirror } => {
            let Some(mirror) = mirror.filter(|m| !m.is_empty()) else {
                printer.result("A registry mirror was not provided.");
                return Ok(ExitCode::SUCCESS);
            };
            check_registry(&registry)?;
            check_mirror(&mirror)?;
            if registry.eq_ignore_ascii_case("docker.io") {
                printer.warn(
                    "names on Docker Hub are matched as 'index.docker.io' (by pack too), so a mirror for 'docker.io' \
                     is never used; add it for 'index.docker.io'",
                );
            }
            UserConfig::update(user_config::config_path()?, |config| {
                let changed = config.set_registry_mirror(&registry, &mirror).as_deref() != Some(mirror.as_str());
                anyhow::Ok(((), changed))
            })?;
            printer.result(&format!("Registry '{registry}' configured with mirror '{mirror}'"));
        }
        RegistryMirrorsAction::Remove { registry } => {
            let removed = UserConfig::update(user_config::config_path()?, |config| {
                let removed = config.remove_registry_mirror(&registry).is_some();
                anyhow::Ok((removed, removed))
            })?;
            if removed {
                printer.result(&format!("Removed mirror for '{registry}'"));
            } else {
                printer.result(&format!("No registry mirror has been set for '{registry}'"));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn list(config: &UserConfig, printer: &Printer) {
    let mirrors = config.registry_mirror_list();
    if mirrors.is_empty() {
        printer.result("No registry mirrors have been set");
        return;
    }
    let mut out = String::from("Registry Mirrors:\n");
    for (registry, mirror) in mirrors {
        out.push_str(&format!("  {registry}: '{mirror}'\n"));
    }
    printer.result(&out);
}

/// `*`, or a registry as image names give it (`gcr.io`, `localhost:5000`, `index.docker.io`).
fn check_registry(registry: &str) -> anyhow::Result<()> {
    if registry == ANY_REGISTRY || is_registry_host(registry) {
        return Ok(());
    }
    bail!(
        "invalid registry '{}': write a registry host such as index.docker.io, gcr.io or localhost:5000, or '*' for \
         every registry",
        cnbx_fs::excerpt(registry)
    )
}

/// `HOST[:PORT][/PATH]` of a registry, so that `<mirror>/<repository>:<tag>` names an image
/// on that host.
fn check_mirror(mirror: &str) -> anyhow::Result<()> {
    let host = mirror.split('/').next().unwrap_or_default();
    let path_ok = ImageRef::parse(&format!("{}/library/x:latest", mirror.trim_end_matches('/'))).is_ok();
    if is_registry_host(host) && path_ok {
        return Ok(());
    }
    bail!(
        "invalid mirror '{}': write the registry it is on, HOST[:PORT][/PATH], such as mirror.example.com or \
         10.0.0.1:5000/dockerhub",
        cnbx_fs::excerpt(mirror)
    )
}

/// Whether `host` is read as a registry at the start of an image name (`host/x`).
fn is_registry_host(host: &str) -> bool {
    match ImageRef::parse(&format!("{host}/x")) {
        Ok(r) => {
            let written = host.to_ascii_lowercase();
            r.registry() == written || (r.is_docker_hub() && (written == "docker.io" || written == "index.docker.io"))
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registries_and_mirrors_are_hosts() {
        for ok in ["*", "index.docker.io", "docker.io", "gcr.io", "localhost:5000", "127.0.0.1:5000", "Quay.IO"] {
            assert!(check_registry(ok).is_ok(), "{ok}");
        }
        for bad in ["mirror", "gcr.io/x", "", "a b", "**"] {
            assert!(check_registry(bad).is_err(), "{bad}");
        }
        for ok in ["10.0.0.1", "mirror.example.com", "localhost:5000/dockerhub", "m.example.com/a/b/"] {
            assert!(check_mirror(ok).is_ok(), "{ok}");
        }
        for bad in ["mirror", "mirror/path", "m.example.com/UPPER", "", "http://m.example.com"] {
            assert!(check_mirror(bad).is_err(), "{bad}");
        }
    }
}
