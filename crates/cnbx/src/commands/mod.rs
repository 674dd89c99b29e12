//! One module per command. Each returns `anyhow::Result<ExitCode>`; errors are printed by
//! `main`.

mod config_mirrors;
mod create;
mod inspect;
mod run_image;
mod store;

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use cnbx_builder::home::CnbxHome;
use cnbx_builder::images::{Images, PullPolicy};
use cnbx_oci::progress::ReporterExt;
use cnbx_oci::registry::{RegistryClient, RegistryError, RegistryOptions};
use cnbx_refs::{ImageLocation, ImageRef};

use crate::cli::{self, BuilderCommand, Command, ConfigCommand, StoreCommand};
use crate::printer::Printer;

pub(crate) async fn run(command: Command, printer: &Arc<Printer>) -> anyhow::Result<ExitCode> {
    match command {
        Command::Builder(BuilderCommand::Create(args)) => create::run(args, printer).await,
        Command::Builder(BuilderCommand::Inspect(args)) => inspect::run(args, printer).await,
        Command::Builder(BuilderCommand::RunImage(args)) => run_image::run(args, printer).await,
        Command::Config(ConfigCommand::RunImageMirrors(args)) => config_mirrors::run(args, printer),
        Command::Store(StoreCommand::Verify(args)) => store::verify(&args, printer),
        Command::Store(StoreCommand::Prune(args)) => store::prune(&args, printer),
    }
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

/// The image resolver for one command: `CNBX_HOME`'s store and the registry client.
fn open_images(
    printer: &Arc<Printer>,
    policy: PullPolicy,
    publish: bool,
    insecure_registries: &[String],
) -> anyhow::Result<Images> {
    let home = CnbxHome::from_env()?;
    let registry = RegistryClient::new(RegistryOptions {
        insecure_registries: insecure_registries.to_vec(),
        ..RegistryOptions::default()
    });
    let reporter: Arc<dyn cnbx_oci::progress::Reporter> = printer.clone();
    Images::new(home.clone(), policy, publish, reporter, registry)
        .with_context(|| format!("opening the local image store in {}", home.store_dir().display()))
}

/// Where a builder's labels were read from.
pub(crate) enum BuilderLabels {
    /// Not found there.
    Absent,
    /// Reading failed.
    Error(String),
    /// Found.
    Present(BTreeMap<String, String>),
}

/// A builder's labels from the local side (the local store, or the `oci:` layout) and the
/// remote side (the registry; `None` for `oci:` layouts, which are local only).
async fn builder_labels(images: &Images, name: &str) -> anyhow::Result<(BuilderLabels, Option<BuilderLabels>)> {
    let cwd = std::env::current_dir().context("reading the current directory")?;
    let location = ImageLocation::parse(name, &cwd).with_context(|| format!("invalid image name '{name}'"))?;
    match location {
        ImageLocation::OciLayout { .. } => {
            let local = match images.get(name, &cwd, None).await {
                Ok(Some(image)) => BuilderLabels::Present(image.config.labels()),
                Ok(None) => BuilderLabels::Absent,
                Err(e) => BuilderLabels::Error(cnbx_builder::inspect::error_chain(&e)),
            };
            Ok((local, None))
        }
        ImageLocation::DockerArchive { .. } => {
            anyhow::bail!(
                "'{name}' is a docker-archive, which cnbx can only write; inspect a registry name or oci:<DIR>"
            )
        }
        ImageLocation::Name(reference) => {
            let local = match images.store().get(&reference, None) {
                Ok(Some(image)) => BuilderLabels::Present(image.config.labels()),
                Ok(None) => BuilderLabels::Absent,
                Err(e) => BuilderLabels::Error(cnbx_builder::inspect::error_chain(&e)),
            };
            let remote = remote_labels(images, &reference).await;
            Ok((local, Some(remote)))
        }
    }
}

/// The remote side. A registry that cannot be reached at all (no DNS entry, connection
/// refused) counts as "not present" with a warning, so that an offline `inspect` of a local
/// builder still works in every output format (pack fails the structured formats then).
async fn remote_labels(images: &Images, reference: &ImageRef) -> BuilderLabels {
    match images.registry().fetch_image(reference, None).await {
        Ok(Some(image)) => BuilderLabels::Present(image.config.labels()),
        Ok(None) => BuilderLabels::Absent,
        Err(e @ RegistryError::Connect { .. }) => {
            images.reporter().warn(&format!(
                "cannot reach registry '{}' (run with -v for details); REMOTE is shown as not present",
                reference.registry()
            ));
            images.reporter().debug(&e.to_string());
            BuilderLabels::Absent
        }
        Err(e) => BuilderLabels::Error(cnbx_builder::inspect::error_chain(&e)),
    }
}
