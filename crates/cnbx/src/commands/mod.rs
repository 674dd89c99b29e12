//! One module per command. Each returns `anyhow::Result<ExitCode>`; errors are printed by
//! `main`.

mod base_image;
mod config_default_builder;
mod config_mirrors;
mod config_pull_policy;
mod config_registry_mirrors;
mod config_trusted_builders;
mod create;
mod diff;
mod docs;
mod dry_run;
mod inspect;
mod report;
mod run_image;
mod store;

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use cnbx_builder::check::{index_at, parse_index};
use cnbx_builder::home::CnbxHome;
use cnbx_builder::images::{Images, PullPolicy};
use cnbx_builder::inspect::IndexEntry;
use cnbx_oci::engine::{Engine, EngineEndpoint, EngineOptions};
use cnbx_oci::progress::ReporterExt;
use cnbx_oci::registry::{RegistryClient, RegistryErrorKind, RegistryOptions};
use cnbx_oci::spec::{Index, media_type};
use cnbx_oci::store::LocalStore;
use cnbx_oci::{Digest, OciLayout};
use cnbx_refs::registry_mirrors::RegistryMirrors;
use cnbx_refs::user_config::{self, UserConfig};
use cnbx_refs::{ImageLocation, ImageRef};

use crate::cli::{self, BaseImageCommand, BuilderCommand, Command, ConfigCommand, StoreCommand};
use crate::printer::Printer;

pub(crate) async fn run(command: Command, printer: &Arc<Printer>) -> anyhow::Result<ExitCode> {
    if !matches!(command, Command::Completion(_) | Command::Manpage(_) | Command::Store(_)) {
        take_over_legacy_config(printer);
    }
    match command {
        Command::Builder(BuilderCommand::Create(args)) => create::run(args, printer).await,
        Command::Builder(BuilderCommand::Inspect(args)) | Command::InspectBuilder(args) => {
            inspect::run(args, printer).await
        }
        Command::Builder(BuilderCommand::RunImage(args)) => run_image::run(args, printer).await,
        Command::Builder(BuilderCommand::Diff(args)) => diff::run(args, printer).await,
        Command::BaseImage(BaseImageCommand::Check(args)) => base_image::check_command(args, printer).await,
        Command::Config(ConfigCommand::RunImageMirrors(args)) => config_mirrors::run(args, printer),
        Command::Config(ConfigCommand::RegistryMirrors(args)) => config_registry_mirrors::run(args, printer),
        Command::Config(ConfigCommand::PullPolicy(args)) => config_pull_policy::run(&args, printer),
        Command::Config(ConfigCommand::TrustedBuilders(args)) => config_trusted_builders::run(args, printer),
        Command::Config(ConfigCommand::DefaultBuilder(args)) => config_default_builder::run(args, printer).await,
        Command::Completion(args) => docs::completion(&args, printer),
        Command::Manpage(args) => docs::manpage(&args, printer),
        Command::Store(StoreCommand::Verify(args)) => store::verify(&args, printer),
        Command::Store(StoreCommand::Prune(args)) => store::prune(&args, printer),
        Command::CreateBuilder(args) => {
            printer.warn("Command 'cnbx create-builder' has been deprecated, please use 'cnbx builder create' instead");
            create::run(args, printer).await
        }
        Command::SetRunImageMirrors(args) => {
            printer.warn(
                "Command 'cnbx set-run-image-mirrors' has been deprecated, please use 'cnbx config run-image-mirrors' \
                 instead",
            );
            config_mirrors::set(args, printer)
        }
    }
}

/// Takes over, once, the `CNBX_HOME/config.toml` of a cnbx that did not use pack's
/// configuration yet (see `user_config::take_over_legacy`), and says so. A failure is a
/// warning: the command goes on with pack's configuration.
fn take_over_legacy_config(printer: &Printer) {
    let (Ok(home), Ok(config)) = (CnbxHome::from_env(), user_config::config_path()) else { return };
    let legacy = home.legacy_config_file();
    match user_config::take_over_legacy(&legacy, &config) {
        Ok(None) => {}
        Ok(Some(done)) => {
            let what = if done.added.is_empty() {
                "whose run-image mirrors it already had".to_owned()
            } else {
                let count: usize = done.added.iter().map(|(_, m)| m.len()).sum();
                format!("with the {count} run-image mirror(s) of {} it did not have", done.legacy.display())
            };
            printer.info(&format!(
                "Note: cnbx now uses pack's configuration {} ({what}); {} was renamed {} and is no longer read",
                done.config.display(),
                done.legacy.display(),
                done.kept_as.display()
            ));
        }
        Err(e) => printer.warn(&format!(
            "{} is no longer read (cnbx uses pack's configuration {} now) and could not be taken over: {}; add its \
             run-image mirrors with 'cnbx config run-image-mirrors add', then remove it",
            legacy.display(),
            config.display(),
            cnbx_fs::error_chain(&e)
        )),
    }
}

/// The pull policy: the flag, else the configuration's `pull-policy`, else pack's default,
/// `always`.
fn resolve_pull_policy(flag: Option<cli::PullPolicy>, config: &UserConfig) -> anyhow::Result<PullPolicy> {
    if let Some(p) = flag {
        return Ok(pull_policy(p));
    }
    match config.pull_policy() {
        None => Ok(PullPolicy::Always),
        Some(policy) => policy.parse().with_context(|| {
            format!("the pull-policy of {} (set it with 'cnbx config pull-policy')", config.path().display())
        }),
    }
}

/// The exit code of `command` when it fails: 2 for `builder diff`, whose 1 means "the builders
/// differ" (as `diff`'s does), 1 for every other command.
pub(crate) fn error_exit_code(command: &Command) -> u8 {
    match command {
        Command::Builder(BuilderCommand::Diff(_)) => DIFF_ERROR,
        _ => 1,
    }
}

/// The exit code of `builder diff` on an error.
pub(crate) const DIFF_ERROR: u8 = 2;

/// Whether the command line names `builder diff` (also when it does not parse): the first two
/// words that are not flags (only global flags, which take no value, may come before them).
pub(crate) fn names_diff(args: &[std::ffi::OsString]) -> bool {
    let mut words = args.iter().skip(1).filter_map(|a| a.to_str()).filter(|a| !a.starts_with('-'));
    matches!(words.next(), Some("builder" | "builders")) && words.next() == Some("diff")
}

/// The `--target` values, parsed; their warnings are printed.
fn parse_targets(values: &[String], printer: &Printer) -> anyhow::Result<Vec<cnbx_model::Target>> {
    let mut targets = Vec::with_capacity(values.len());
    for t in values {
        let (target, warnings) = cnbx_model::Target::parse(t).with_context(|| format!("invalid --target '{t}'"))?;
        for w in warnings {
            printer.warn(&w);
        }
        targets.push(target);
    }
    Ok(targets)
}

fn pull_policy(p: cli::PullPolicy) -> PullPolicy {
    match p {
        cli::PullPolicy::Always => PullPolicy::Always,
        cli::PullPolicy::IfNotPresent => PullPolicy::IfNotPresent,
        cli::PullPolicy::Never => PullPolicy::Never,
    }
}

/// An error whose message is followed by a diagnostic (a source snippet and help).
fn with_diagnostic(message: String, diagnostic: Option<String>) -> anyhow::Error {
    match diagnostic {
        Some(d) if !d.is_empty() => anyhow::anyhow!("{message}\n{}", d.trim_end()),
        _ => anyhow::anyhow!(message),
    }
}

/// The image resolver for one command: `CNBX_HOME`'s store and the registry client, fetching
/// through `mirrors`.
fn open_images(
    printer: &Arc<Printer>,
    policy: PullPolicy,
    publish: bool,
    insecure_registries: &[String],
    mirrors: RegistryMirrors,
) -> anyhow::Result<Images> {
    let home = CnbxHome::from_env()?;
    let registry = RegistryClient::new(RegistryOptions {
        insecure_registries: insecure_registries.to_vec(),
        ..RegistryOptions::default()
    });
    let reporter: Arc<dyn cnbx_oci::progress::Reporter> = printer.clone();
    let images = Images::new(home.clone(), policy, publish, reporter, registry)
        .with_context(|| format!("opening the local image store in {}", home.store_dir().display()))?;
    Ok(images.with_registry_mirrors(mirrors))
}

/// How long `--local auto` waits for the container engine to answer.
const ENGINE_PROBE: std::time::Duration = std::time::Duration::from_secs(3);

/// Decides where bare image names are without `--publish` (`--local`): with `auto`, the
/// container engine when one answers at the address `DOCKER_HOST` or the Docker context
/// gives (within [`ENGINE_PROBE`]), else the cnbx store; `engine` and `store` force one.
/// Without an engine, `announce` says so (for `builder create`, where it decides where the
/// builder goes); other commands say it with -v.
async fn choose_local(images: Images, local: cli::Local, printer: &Printer, announce: bool) -> anyhow::Result<Images> {
    if local == cli::Local::Store || images.publish() {
        return Ok(images);
    }
    let endpoint =
        EngineEndpoint::from_env().context("finding the container engine (--local store does without it)")?;
    if local == cli::Local::Engine {
        let engine = Engine::connect(endpoint, EngineOptions::from_env()).await.context("--local engine")?;
        printer.debug(&format!("Bare image names are in {}", engine.describe()));
        return Ok(images.with_engine(engine, true));
    }
    let address = endpoint.url();
    match Engine::probe(endpoint, ENGINE_PROBE).await {
        Ok(engine) => {
            printer
                .debug(&format!("Bare image names are in {} (--local store uses the cnbx store)", engine.describe()));
            Ok(images.with_engine(engine, true))
        }
        Err(e) if e.is_unreachable() => {
            let note = format!(
                "Note: no container engine answers at {address}, so bare image names are in the cnbx store ({}); \
                 --local store says so without asking",
                images.home().store_dir().display()
            );
            if announce {
                printer.info(&note)
            } else {
                printer.debug(&note)
            }
            printer.debug(&cnbx_fs::error_chain(&e));
            Ok(images)
        }
        Err(e) => Err(anyhow::Error::new(e)
            .context("asking the container engine, where bare image names are (--local store uses the cnbx store)")),
    }
}

/// Where a builder's labels were read from.
pub(crate) enum BuilderLabels {
    /// Not found there.
    Absent,
    /// Reading failed.
    Error(String),
    /// Found: the labels of the image read and, when the name is an image index, its
    /// platforms (the one read marked as shown).
    Present(BTreeMap<String, String>, Vec<IndexEntry>),
}

/// The platforms of `index` (attestations left out), the manifest `shown` marked.
fn index_entries(index: Option<Index>, shown: &Digest) -> Vec<IndexEntry> {
    let Some(index) = index else { return Vec::new() };
    index
        .manifests
        .iter()
        .filter(|d| media_type::is_manifest(&d.media_type))
        .filter(|d| d.platform.as_ref().is_none_or(|p| p.os != "unknown"))
        .map(|d| IndexEntry {
            platform: d.platform.as_ref().map_or_else(|| "unspecified".to_owned(), ToString::to_string),
            manifest: d.digest.to_string(),
            shown: d.digest == *shown,
        })
        .collect()
}

/// The platforms of the image `tag` names in `layout`, if it is an index (a listing that
/// cannot be read is left out: the labels are what inspect is about).
fn layout_entries(layout: &OciLayout, tag: &str, shown: &Digest) -> Vec<IndexEntry> {
    let index = layout.resolve(tag).ok().flatten().and_then(|desc| index_at(layout, tag, &desc).ok().flatten());
    index_entries(index, shown)
}

/// A builder's labels from the local side (the local store, or the `oci:` layout) and the
/// remote side (the registry; `None` for `oci:` layouts, which are local only).
async fn builder_labels(images: &Images, name: &str) -> anyhow::Result<(BuilderLabels, Option<BuilderLabels>)> {
    let cwd = std::env::current_dir().context("reading the current directory")?;
    let location = ImageLocation::parse(name, &cwd).with_context(|| format!("invalid image name '{name}'"))?;
    match location {
        ImageLocation::OciLayout { dir, tag } => {
            let local = match images.get(name, &cwd, None).await {
                Ok(Some(image)) => {
                    let platforms = match OciLayout::open(&dir) {
                        Ok(layout) => layout_entries(&layout, &tag, &image.manifest.digest),
                        Err(_) => Vec::new(),
                    };
                    BuilderLabels::Present(image.config.labels(), platforms)
                }
                Ok(None) => BuilderLabels::Absent,
                Err(e) => BuilderLabels::Error(cnbx_fs::error_chain(&e)),
            };
            Ok((local, None))
        }
        ImageLocation::DockerArchive { .. } => {
            let local = match images.get_at(&location, name, None).await {
                Ok(Some(image)) => BuilderLabels::Present(image.config.labels(), Vec::new()),
                Ok(None) => BuilderLabels::Absent,
                Err(e) => BuilderLabels::Error(cnbx_fs::error_chain(&e)),
            };
            Ok((local, None))
        }
        ImageLocation::DockerDaemon(d) => {
            let engine = images.engine().await?;
            Ok((engine_labels(engine, d.api_name()).await, None))
        }
        ImageLocation::Name(reference) => {
            let local = match images.connected_engine() {
                // The engine's image, as pack's LOCAL.
                Some(engine) if images.bare_names_in_engine() => engine_labels(engine, &reference.familiar()).await,
                _ => match images.store().get(&reference, None) {
                    Ok(Some(image)) => {
                        let key = LocalStore::key(&reference);
                        let platforms = layout_entries(images.store().layout(), &key, &image.manifest.digest);
                        BuilderLabels::Present(image.config.labels(), platforms)
                    }
                    Ok(None) => BuilderLabels::Absent,
                    Err(e) => BuilderLabels::Error(cnbx_fs::error_chain(&e)),
                },
            };
            let remote = remote_labels(images, &reference).await;
            Ok((local, Some(remote)))
        }
    }
}

/// The labels of the engine's image `name` (its inspect: the engine keeps one platform per
/// name).
async fn engine_labels(engine: &Engine, name: &str) -> BuilderLabels {
    match engine.inspect(name).await {
        Ok(Some(image)) => BuilderLabels::Present(image.labels, Vec::new()),
        Ok(None) => BuilderLabels::Absent,
        Err(e) => BuilderLabels::Error(cnbx_fs::error_chain(&e)),
    }
}

/// The remote side. A registry that cannot be reached at all (no DNS entry, connection
/// refused) counts as "not present" with a warning, so that an offline `inspect` of a local
/// builder still works in every output format (pack fails the structured formats then).
///
/// A registry under a special-use test domain that does not resolve here is not looked up at
/// all: REMOTE is "not present" with a note, not a warning, since that is the expected outcome
/// for a made-up name such as the sample builder's `cnbx.test/...` (see [`test_domain`]).
async fn remote_labels(images: &Images, reference: &ImageRef) -> BuilderLabels {
    // Through its registry mirror, if one applies: that is the registry asked.
    let remote = match images.registry_reference(reference) {
        Ok(remote) => remote,
        Err(e) => return BuilderLabels::Error(cnbx_fs::error_chain(&e)),
    };
    let registry = remote.registry();
    if let Some(tld) = test_domain(registry)
        && !resolves(registry_host(registry)).await
    {
        images.reporter().info(&format!(
            "Note: '{registry}' is under the reserved test domain '.{tld}' and does not resolve here, so REMOTE \
                 was not looked up"
        ));
        return BuilderLabels::Absent;
    }
    match images.registry().fetch_image(&remote, None).await {
        Ok(Some(image)) => {
            // An image read from an index: one more request lists the index's platforms.
            let platforms = match image.index_platform {
                Some(_) => match images.registry().fetch_document(&remote).await {
                    Ok(document) => index_entries(document.as_deref().and_then(parse_index), &image.manifest.digest),
                    Err(e) => {
                        images.reporter().debug(&format!("listing the platforms: {}", cnbx_fs::error_chain(&e)));
                        Vec::new()
                    }
                },
                None => Vec::new(),
            };
            BuilderLabels::Present(image.config.labels(), platforms)
        }
        Ok(None) => BuilderLabels::Absent,
        Err(e) if matches!(e.kind(), RegistryErrorKind::Connect { .. }) => {
            images.reporter().warn(&format!(
                "cannot reach registry '{registry}' (run with -v for details); REMOTE is shown as not present"
            ));
            images.reporter().debug(&cnbx_fs::error_chain(&e));
            BuilderLabels::Absent
        }
        Err(e) => BuilderLabels::Error(cnbx_fs::error_chain(&e)),
    }
}

/// Top-level domains reserved for testing and documentation (RFC 2606, RFC 6761): never
/// delegated on the internet, so a registry under one exists only where a hosts file or a local
/// DNS server defines it.
const TEST_DOMAINS: &[&str] = &["test", "example", "invalid"];

/// How long [`resolves`] waits for the system resolver.
const RESOLVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// The registry's host name without its port (`cnbx.test:5000` → `cnbx.test`). IPv6 literals
/// (`[::1]:5000`) keep their brackets; they are never under a test domain.
fn registry_host(registry: &str) -> &str {
    match registry.rsplit_once(':') {
        Some((host, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => registry,
    }
}

/// The reserved test top-level domain (without the dot) `registry`'s host is under, if any.
/// `localhost` is not one: it names this machine, where a registry often runs.
fn test_domain(registry: &str) -> Option<&'static str> {
    let host = registry_host(registry).trim_end_matches('.').to_ascii_lowercase();
    let tld = host.rsplit_once('.')?.1;
    TEST_DOMAINS.iter().copied().find(|t| *t == tld)
}

/// Whether the system resolver knows `host` (hosts file, local DNS), within [`RESOLVE_TIMEOUT`].
/// RFC 6761 asks software to treat test names like any other, so a test registry defined on
/// this machine is still looked up; only a name that resolves nowhere is skipped.
async fn resolves(host: &str) -> bool {
    let lookup = tokio::net::lookup_host((host, 443));
    match tokio::time::timeout(RESOLVE_TIMEOUT, lookup).await {
        Ok(Ok(mut addrs)) => addrs.next().is_some(),
        Ok(Err(_)) | Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_domains_are_recognised_with_or_without_a_port() {
        for (registry, tld) in [
            ("cnbx.test", Some("test")),
            ("mirror.cnbx.test:5000", Some("test")),
            ("Registry.Example.", Some("example")),
            ("registry.invalid", Some("invalid")),
            ("localhost:5000", None),
            ("registry.localhost", None),
            ("example.com", None),
            ("testing.io", None),
            ("mytest", None),
            ("index.docker.io", None),
            ("127.0.0.1:5000", None),
            ("[::1]:5000", None),
        ] {
            assert_eq!(test_domain(registry), tld, "{registry}");
        }
    }

    #[test]
    fn registry_host_drops_only_a_port() {
        assert_eq!(registry_host("cnbx.test:5000"), "cnbx.test");
        assert_eq!(registry_host("cnbx.test"), "cnbx.test");
        assert_eq!(registry_host("[::1]:5000"), "[::1]");
        assert_eq!(registry_host("[::1]"), "[::1]");
        assert_eq!(registry_host("host:"), "host:");
    }

    #[tokio::test]
    async fn names_under_invalid_do_not_resolve_and_localhost_does() {
        assert!(!resolves("cnbx.invalid").await);
        assert!(resolves("localhost").await);
    }
}
