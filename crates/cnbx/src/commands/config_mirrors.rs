//! `cnbx config run-image-mirrors [add|remove|list]`: pack's command, on
//! `CNBX_HOME/config.toml`, with pack's messages.
//!
//! Differences from pack, on purpose: mirror names are checked as image references before
//! anything is written; `remove` keeps the other entries in order and warns about mirrors that
//! were not configured; the "nothing set" message has no trailing space.

use std::process::ExitCode;

use anyhow::Context;
use cnbx_refs::ImageRef;
use cnbx_refs::user_config::{RemoveOutcome, UserConfig};

use crate::cli::{MirrorsAction, RunImageMirrorsArgs};
use crate::printer::Printer;

pub(crate) fn run(args: RunImageMirrorsArgs, printer: &Printer) -> anyhow::Result<ExitCode> {
    let action = args.action.unwrap_or(MirrorsAction::List { run_image: args.run_image });
    let mut config = UserConfig::load_default()?;
    match action {
        MirrorsAction::List { run_image } => list(&config, run_image.as_deref(), printer),
        MirrorsAction::Add { run_image, mirrors } => {
            if mirrors.iter().all(String::is_empty) {
                printer.result("No run image mirrors were provided.");
                return Ok(ExitCode::SUCCESS);
            }
            for m in mirrors.iter().filter(|m| !m.is_empty()) {
                ImageRef::parse(m).with_context(|| format!("mirror '{m}' for run image '{run_image}'"))?;
            }
            let outcome = config.add_mirrors(&run_image, &mirrors);
            if outcome.changed() {
                config.save()?;
            }
            for m in mirrors.iter().filter(|m| !m.is_empty()) {
                printer.result(&format!("Run Image '{run_image}' configured with mirror '{m}'"));
            }
        }
        MirrorsAction::Remove { run_image, mirrors } => {
            let given = (!mirrors.is_empty()).then_some(mirrors.as_slice());
            let outcome = config.remove_mirrors(&run_image, given);
            if outcome.changed() {
                config.save()?;
            }
            match outcome {
                RemoveOutcome::NotFound => {
                    printer.result(&format!("No run image mirrors have been set for '{run_image}'"));
                }
                RemoveOutcome::RemovedAll { .. } => {
                    printer.result(&format!("Removed all run image mirrors for '{run_image}'"));
                }
                RemoveOutcome::RemovedSome { not_configured, .. } => {
                    for m in &not_configured {
                        printer.warn(&format!("mirror '{m}' was not configured for run image '{run_image}'"));
                    }
                    printer.result(&format!("Removed mirrors {} for '{run_image}'", mirrors.join(", ")));
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn list(config: &UserConfig, filter: Option<&str>, printer: &Printer) {
    let entries = config.list(filter);
    if entries.is_empty() {
        match filter {
            Some(image) => printer.result(&format!("No run image mirrors have been set for '{image}'")),
            None => printer.result("No run image mirrors have been set"),
        }
        return;
    }
    let mut out = String::from("Run Image Mirrors:\n");
    for entry in entries {
        out.push_str(&format!("  '{}':\n", entry.image));
        for m in &entry.mirrors {
            out.push_str(&format!("    {m}\n"));
        }
    }
    printer.result(&out);
}
