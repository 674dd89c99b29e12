//! `cnbx config default-builder [BUILDER] [--unset]`: pack's command and messages, on pack's
//! configuration. The default builder is what `builder inspect` inspects without an image.
//!
//! As pack, setting it first checks that the builder exists: in the local store (cnbx's
//! daemon), else on its registry (through its registry mirror). Differences from pack, on
//! purpose: the builder must be an image name (pack's build reads the setting too, and knows
//! no `oci:` layouts), and edits are serialised by the configuration's lock.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use cnbx_builder::images::PullPolicy;
use cnbx_builder::labels;
use cnbx_refs::ImageRef;
use cnbx_refs::user_config::{self, UserConfig};

use super::{BuilderLabels, builder_labels, open_images};
use crate::cli::DefaultBuilderArgs;
use crate::printer::Printer;

pub(crate) async fn run(args: DefaultBuilderArgs, printer: &Arc<Printer>) -> anyhow::Result<ExitCode> {
    let path = user_config::config_path()?;
    if args.unset {
        let old = UserConfig::update(&path, |config| {
            let old = config.default_builder().map(str::to_owned);
            config.set_default_builder(None);
            anyhow::Ok((old.clone(), old.is_some()))
        })?;
        match old {
            Some(old) => printer.result(&format!("Successfully unset default builder '{old}'")),
            None => printer.result("No default builder was set"),
        }
        return Ok(ExitCode::SUCCESS);
    }
    let Some(builder) = args.builder else {
        match UserConfig::load_default()?.default_builder() {
            Some(current) => printer.result(&format!("The current default builder is '{current}'")),
            None => printer.result("No default builder is set."),
        }
        return Ok(ExitCode::SUCCESS);
    };
    check_exists(&builder, &args.insecure_registries, printer)
        .await
        .with_context(|| format!("validating that builder '{builder}' exists"))?;
    UserConfig::update(&path, |config| {
        let changed = config.default_builder() != Some(builder.as_str());
        config.set_default_builder(Some(&builder));
        anyhow::Ok(((), changed))
    })?;
    printer.result(&format!("Builder '{builder}' is now the default builder"));
    Ok(ExitCode::SUCCESS)
}

/// The builder is in the local store or on its registry, with the builder metadata label.
async fn check_exists(builder: &str, insecure_registries: &[String], printer: &Arc<Printer>) -> anyhow::Result<()> {
    ImageRef::parse(builder)?;
    let user = UserConfig::load_default()?;
    let images = open_images(printer, PullPolicy::Never, false, insecure_registries, user.registry_mirrors())?;
    let (local, remote) = builder_labels(&images, builder).await?;
    let found = match (local, remote) {
        (BuilderLabels::Present(l, _), _) | (_, Some(BuilderLabels::Present(l, _))) => l,
        (BuilderLabels::Error(e), _) | (_, Some(BuilderLabels::Error(e))) => bail!("{e}"),
        _ => bail!("builder '{builder}' not found"),
    };
    if !found.contains_key(labels::BUILDER_METADATA) {
        bail!("'{builder}' is not a builder: it has no label {}", labels::BUILDER_METADATA);
    }
    Ok(())
}
