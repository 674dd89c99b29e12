//! `cnbx completion` and `cnbx manpage`: documents generated from the command-line
//! definitions themselves (clap_complete, clap_mangen), so that they never drift from `--help`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use clap::CommandFactory;

use crate::cli::{Cli, CompletionArgs, ManpageArgs};
use crate::printer::Printer;

/// Prints the completion script for one shell.
pub(crate) fn completion(args: &CompletionArgs, printer: &Printer) -> anyhow::Result<ExitCode> {
    let mut cmd = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "cnbx", &mut script);
    printer.document(&String::from_utf8(script).context("the completion script is not UTF-8")?);
    Ok(ExitCode::SUCCESS)
}

/// Prints cnbx(1), or writes every page into a directory.
pub(crate) fn manpage(args: &ManpageArgs, printer: &Printer) -> anyhow::Result<ExitCode> {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    match &args.dir {
        None => printer.document(&render(&clap_mangen::Man::new(cmd))?),
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            let written = write_pages(&cmd, dir)?;
            printer.info(&format!("Wrote {written} man pages to {}", dir.display()));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn render(man: &clap_mangen::Man) -> anyhow::Result<String> {
    let mut page = Vec::new();
    man.render(&mut page).context("rendering a man page")?;
    String::from_utf8(page).context("the man page is not UTF-8")
}

/// One page per command that is not hidden, named `<name>.1` as clap_mangen names them
/// (`cnbx-builder-create.1`), each written atomically. Returns how many were written.
fn write_pages(cmd: &clap::Command, dir: &Path) -> anyhow::Result<usize> {
    let mut written = 0;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        written += write_pages(sub, dir)?;
    }
    let man = clap_mangen::Man::new(cmd.clone());
    let path = dir.join(man.get_filename());
    cnbx_fs::write_atomic(&path, render(&man)?.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
    Ok(written + 1)
}
