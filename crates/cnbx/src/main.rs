//! The `cnbx` command-line tool: parses arguments, runs one command, prints the outcome.
//!
//! Exit codes follow pack: 0 on success (and for `--help`/`--version`), 1 on any error,
//! including usage errors (clap's default would be 2).

#![allow(clippy::print_stdout, clippy::print_stderr)]

mod cli;
mod commands;
mod errors;
mod printer;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::Cli;
use crate::printer::{Printer, Verbosity};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = match e.kind() {
                clap::error::ErrorKind::DisplayHelp
                | clap::error::ErrorKind::DisplayVersion
                | clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => 0,
                _ => 1,
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let verbosity = if cli.global.quiet {
        Verbosity::Quiet
    } else if cli.global.verbose {
        Verbosity::Verbose
    } else {
        Verbosity::Normal
    };
    let printer = std::sync::Arc::new(Printer::new(verbosity, cli.global.no_color));

    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            printer.error(&format!("starting the async runtime: {e}"));
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(commands::run(cli.command, &printer));
    // Do not wait for stray background work (e.g. an abandoned HTTP request) on exit.
    runtime.shutdown_background();
    match result {
        Ok(code) => code,
        Err(err) => {
            errors::report(&err, &printer);
            ExitCode::FAILURE
        }
    }
}
