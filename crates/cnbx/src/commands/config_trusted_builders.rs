//! `cnbx config trusted-builders [add|remove|list]`: pack's command and messages, on pack's
//! configuration, with pack's built-in list and matching rules (`cnbx_refs::trusted`).
//!
//! Differences from pack, on purpose: a builder that is not an image reference is refused
//! before anything is written, and edits are serialised by the configuration's lock.

use std::process::ExitCode;

use anyhow::{Context, bail};
use cnbx_refs::ImageRef;
use cnbx_refs::trusted;
use cnbx_refs::user_config::{self, UserConfig};

use crate::cli::{TrustedBuildersAction, TrustedBuildersArgs};
use crate::printer::Printer;

pub(crate) fn run(args: TrustedBuildersArgs, printer: &Printer) -> anyhow::Result<ExitCode> {
    match args.action.unwrap_or(TrustedBuildersAction::List) {
        TrustedBuildersAction::List => {
            let config = UserConfig::load_default()?;
            let mut out = String::from("Trusted Builders:\n");
            for builder in trusted::list(&config.trusted_builders()) {
                out.push_str(&format!("  {builder}\n"));
            }
            printer.result(&out);
        }
        TrustedBuildersAction::Add { builder } => {
            ImageRef::parse(&builder).with_context(|| format!("builder '{}'", cnbx_fs::excerpt(&builder)))?;
            let path = user_config::config_path()?;
            let added = UserConfig::update(&path, |config| {
                let trusted = trusted::is_trusted(&config.trusted_builders(), &builder)
                    .with_context(|| format!("reading the trusted builders of {}", config.path().display()))?;
                if !trusted {
                    config.add_trusted_builder(&builder);
                }
                anyhow::Ok((!trusted, !trusted))
            })?;
            if added {
                printer.result(&format!("Builder '{builder}' is now trusted"));
            } else {
                printer.result(&format!("Builder '{builder}' is already trusted"));
            }
        }
        TrustedBuildersAction::Remove { builder } => {
            let removed = UserConfig::update(user_config::config_path()?, |config| {
                let removed = config.remove_trusted_builder(&builder) > 0;
                anyhow::Ok((removed, removed))
            })?;
            if removed {
                printer.result(&format!("Builder '{builder}' is no longer trusted"));
            } else if trusted::is_known_trusted(&builder) {
                bail!(
                    "Builder '{builder}' is a known trusted builder. Currently cnbx (like pack) doesn't support making \
                     these builders untrusted"
                );
            } else {
                printer.result(&format!("Builder '{builder}' wasn't trusted"));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
