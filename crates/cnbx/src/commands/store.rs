//! `cnbx store verify [--repair]` and `cnbx store prune [--all]`.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::bail;
use cnbx_builder::home::{CnbxHome, Tally};

use crate::cli::{StorePruneArgs, StoreVerifyArgs};
use crate::printer::Printer;

pub(crate) fn verify(args: &StoreVerifyArgs, printer: &Arc<Printer>) -> anyhow::Result<ExitCode> {
    let home = CnbxHome::from_env()?;
    let report = home.verify(args.repair, printer.as_ref())?;
    for p in &report.problems {
        match &p.repaired {
            Some(done) => printer.result(&format!("{} ({done})", p.text)),
            None => printer.result(&p.text),
        }
    }
    printer.info(&format!(
        "Checked {} blob(s) ({}), {} image(s) and {} layer cache entr{} in {}",
        report.blobs,
        human_bytes(report.bytes),
        report.images,
        report.cache_entries,
        if report.cache_entries == 1 { "y" } else { "ies" },
        home.root().display()
    ));
    let unrepaired = report.problems.iter().filter(|p| p.repaired.is_none()).count();
    if unrepaired > 0 {
        let hint = if args.repair { "" } else { "; run 'cnbx store verify --repair' to remove what is bad" };
        bail!("the local store has {unrepaired} problem(s){hint}");
    }
    if report.problems.is_empty() {
        printer.info("No problems found");
    } else {
        printer.info(&format!("Repaired {} problem(s)", report.problems.len()));
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn prune(args: &StorePruneArgs, printer: &Arc<Printer>) -> anyhow::Result<ExitCode> {
    let home = CnbxHome::from_env()?;
    let report = home.prune(args.all, printer.as_ref())?;
    let line = |what: &str, t: Tally| format!("{what}: {} ({})", t.count, human_bytes(t.bytes));
    printer.result(&line("Unused blobs removed", report.blobs));
    printer.result(&line("Cache entries removed", report.cache_entries));
    printer.result(&line("Downloads removed", report.downloads));
    printer.result(&line("Temporary files removed", report.temporaries));
    printer.result(&format!("Total freed: {}", human_bytes(report.total().bytes)));
    Ok(ExitCode::SUCCESS)
}

/// `512 B`, `1.5 KiB`, `23.4 MiB`.
pub(crate) fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_shown_in_binary_units() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(5 * 1024 * 1024), "5.0 MiB");
    }
}
