//! The `cnbx` command-line tool: parses arguments, runs one command, prints the outcome.
//!
//! Exit codes follow pack: 0 on success (and for `--help`/`--version`), 1 on any error,
//! including usage errors (clap's default would be 2), and 130 when interrupted. `builder
//! diff` follows `diff` instead: 0 same, 1 different, 2 on any error (usage errors too).
//!
//! **Stopping cleanly.** SIGINT and SIGTERM do not kill cnbx: the first one asks every
//! writer to stop ([`cnbx_fs::stop`]), the running command is cancelled (dropping it runs
//! the destructors that remove its temporary files and roll back a half-written output),
//! work still running on other threads is waited for (it stops at its next write), and cnbx
//! prints `interrupted` on stderr and exits 130. A second signal exits at once, after
//! removing the temporary files still open. A command that fails stops its background work
//! the same way before the error is printed, so that a failure leaves no temporary file
//! either.

#![allow(clippy::print_stdout, clippy::print_stderr)]
#![cfg_attr(not(test), warn(unused_crate_dependencies))]

mod cli;
mod commands;
mod errors;
mod printer;

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use crate::cli::Cli;
use crate::printer::{Printer, Verbosity};

/// The exit code of a command stopped by SIGINT or SIGTERM (128 + SIGINT, as shells report).
const INTERRUPTED: u8 = 130;

/// How long background work (a layer built on another thread) gets to notice a stop and
/// remove its temporary files before they are removed for it.
const STOP_GRACE: Duration = Duration::from_secs(10);

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
            let code = match e.kind() {
                clap::error::ErrorKind::DisplayHelp
                | clap::error::ErrorKind::DisplayVersion
                | clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => 0,
                _ if commands::names_diff(&args) => commands::DIFF_ERROR,
                _ => 1,
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let error_code = commands::error_exit_code(&cli.command);
    let verbosity = if cli.global.quiet {
        Verbosity::Quiet
    } else if cli.global.verbose {
        Verbosity::Verbose
    } else {
        Verbosity::Normal
    };
    let printer = std::sync::Arc::new(Printer::new(
        verbosity,
        cli.global.no_color,
        cli.global.force_color,
        cli.global.timestamps,
    ));

    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            printer.error(&format!("starting the async runtime: {e}"));
            return ExitCode::FAILURE;
        }
    };
    let signalled = match listen_for_signals(&runtime) {
        Ok(rx) => rx,
        Err(e) => {
            printer.error(&format!("installing the signal handlers: {e}"));
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async {
        tokio::select! {
            biased;
            _ = signalled => None,
            result = commands::run(cli.command, &printer) => Some(result),
        }
    });
    // A signal, even one that came as the command ended, wins: the user asked to stop.
    let interrupted = cnbx_fs::stop::stop_requested();
    let code = match outcome {
        Some(Ok(code)) if !interrupted => code,
        Some(Err(err)) if !interrupted => {
            stop_background_work();
            errors::report(&err, &printer);
            ExitCode::from(error_code)
        }
        _ => {
            stop_background_work();
            printer.clear_progress();
            printer.error("interrupted");
            ExitCode::from(INTERRUPTED)
        }
    };
    // Do not wait for stray background work (e.g. an abandoned HTTP request) on exit.
    runtime.shutdown_background();
    code
}

/// Installs the SIGINT and SIGTERM handlers (before any work starts, so that no signal
/// finds the default action, which would kill cnbx mid-write). The receiver completes on
/// the first signal, once every writer was asked to stop.
fn listen_for_signals(runtime: &tokio::runtime::Runtime) -> std::io::Result<tokio::sync::oneshot::Receiver<()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let _entered = runtime.enter();
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    runtime.spawn(async move {
        tokio::select! {
            _ = sigint.recv() => {}
            _ = sigterm.recv() => {}
        }
        cnbx_fs::stop::request_stop();
        let _ = tx.send(());
        tokio::select! {
            _ = sigint.recv() => {}
            _ = sigterm.recv() => {}
        }
        // A second signal: the user does not want to wait.
        cnbx_fs::stop::remove_unfinished();
        eprintln!("ERROR: interrupted");
        #[allow(clippy::exit)] // the only way out while the main thread is busy
        std::process::exit(i32::from(INTERRUPTED));
    });
    Ok(rx)
}

/// Asks every writer still running (on other threads) to stop, waits for them to remove
/// their temporary files, and removes those still left after [`STOP_GRACE`].
fn stop_background_work() {
    cnbx_fs::stop::request_stop();
    if !cnbx_fs::stop::wait_for_unfinished(STOP_GRACE) {
        cnbx_fs::stop::remove_unfinished();
    }
}
