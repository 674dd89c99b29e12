//! One module per command. Each returns `anyhow::Result<ExitCode>`; errors are printed by
//! `main`.

mod config_mirrors;

use std::process::ExitCode;

use crate::cli::{BuilderCommand, Command, ConfigCommand};
use crate::printer::Printer;

pub(crate) async fn run(command: Command, printer: &Printer) -> anyhow::Result<ExitCode> {
    match command {
        Command::Builder(BuilderCommand::Create(args)) => {
            let _ = (args, printer);
            anyhow::bail!("builder create is not implemented yet")
        }
        Command::Builder(BuilderCommand::Inspect(args)) => {
            let _ = args;
            anyhow::bail!("builder inspect is not implemented yet")
        }
        Command::Builder(BuilderCommand::RunImage(args)) => {
            let _ = args;
            anyhow::bail!("builder run-image is not implemented yet")
        }
        Command::Config(ConfigCommand::RunImageMirrors(args)) => config_mirrors::run(args, printer),
    }
}
