//! `cnbx config run-image-mirrors [add|remove|list]`: pack's command, on pack's configuration
//! (`$PACK_HOME/config.toml`), with pack's messages; and pack's older
//! `set-run-image-mirrors`.
//!
//! Differences from pack, on purpose: the run image and the mirrors are checked as image
//! references before anything is written (nothing is fetched); `remove` accepts a name that is
//! not a reference only when it is configured as written (so that an entry written by hand can
//! still be removed); concurrent `add`s and `remove`s are serialised by a lock file next to
//! `config.toml` instead of overwriting each other; `remove` keeps the other entries in order
//! and warns about mirrors that were not configured; the "nothing set" message has no trailing
//! space.

use std::process::ExitCode;

use anyhow::Context;
use cnbx_refs::ImageRef;
use cnbx_refs::user_config::{self, RemoveOutcome, UserConfig};

use crate::cli::{MirrorsAction, RunImageMirrorsArgs, SetRunImageMirrorsArgs};
use crate::printer::Printer;

pub(crate) fn run(args: RunImageMirrorsArgs, printer: &Printer) -> anyhow::Result<ExitCode> {
    let action = args.action.unwrap_or(MirrorsAction::List { run_image: args.run_image });
    match action {
        MirrorsAction::List { run_image } => list(&UserConfig::load_default()?, run_image.as_deref(), printer),
        MirrorsAction::Add { run_image, mirrors } => {
            check_run_image(&run_image)?;
            if mirrors.iter().all(String::is_empty) {
                printer.result("No run image mirrors were provided.");
                return Ok(ExitCode::SUCCESS);
            }
            for m in mirrors.iter().filter(|m| !m.is_empty()) {
                check_mirror(m, &run_image)?;
            }
            UserConfig::update(config_path()?, |config| {
                let changed = config.add_mirrors(&run_image, &mirrors).changed();
                anyhow::Ok(((), changed))
            })?;
            for m in mirrors.iter().filter(|m| !m.is_empty()) {
                printer.result(&format!("Run Image '{run_image}' configured with mirror '{m}'"));
            }
        }
        MirrorsAction::Remove { run_image, mirrors } => {
            let outcome = UserConfig::update(config_path()?, |config| {
                // A name configured as written may be removed even if it is not a reference.
                if config.list(Some(&run_image)).is_empty() {
                    check_run_image(&run_image)?;
                }
                let configured = config.mirrors_for(&run_image);
                for m in mirrors.iter().filter(|m| !m.is_empty() && !configured.contains(m)) {
                    check_mirror(m, &run_image)?;
                }
                let given = (!mirrors.is_empty()).then_some(mirrors.as_slice());
                let outcome = config.remove_mirrors(&run_image, given);
                let changed = outcome.changed();
                anyhow::Ok((outcome, changed))
            })?;
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

fn config_path() -> anyhow::Result<std::path::PathBuf> {
    Ok(user_config::config_path()?)
}

/// `cnbx set-run-image-mirrors RUN_IMAGE [-m MIRROR...]` (pack's older command): the run
/// image's mirrors become the ones given (none: an empty list), with pack's messages.
pub(crate) fn set(args: SetRunImageMirrorsArgs, printer: &Printer) -> anyhow::Result<ExitCode> {
    let SetRunImageMirrorsArgs { run_image, mirrors } = args;
    check_run_image(&run_image)?;
    let mirrors: Vec<String> = mirrors.into_iter().filter(|m| !m.is_empty()).collect();
    for m in &mirrors {
        check_mirror(m, &run_image)?;
    }
    UserConfig::update(config_path()?, |config| {
        let changed = config.set_mirrors(&run_image, &mirrors);
        anyhow::Ok(((), changed))
    })?;
    for m in &mirrors {
        printer.result(&format!("Run Image '{run_image}' configured with mirror '{m}'"));
    }
    if mirrors.is_empty() {
        printer.result(&format!("All mirrors removed for Run Image '{run_image}'"));
    }
    Ok(ExitCode::SUCCESS)
}

fn check_run_image(run_image: &str) -> anyhow::Result<()> {
    ImageRef::parse(run_image).with_context(|| format!("run image '{}'", cnbx_fs::excerpt(run_image)))?;
    Ok(())
}

fn check_mirror(mirror: &str, run_image: &str) -> anyhow::Result<()> {
    ImageRef::parse(mirror).with_context(|| {
        format!("mirror '{}' for run image '{}'", cnbx_fs::excerpt(mirror), cnbx_fs::excerpt(run_image))
    })?;
    Ok(())
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
        for m in entry.mirror_list() {
            out.push_str(&format!("    {m}\n"));
        }
    }
    printer.result(&out);
}
