//! `cnbx config pull-policy [POLICY] [--unset]`: pack's command and messages, on pack's
//! configuration. The policy is the default of `builder create` and `base-image check`.
//!
//! Differences from pack, on purpose: `--unset` without a policy set writes nothing (pack
//! rewrites the file), and edits are serialised by the configuration's lock.

use std::process::ExitCode;

use anyhow::{Context, bail};
use cnbx_builder::images::PullPolicy;
use cnbx_refs::user_config::{self, UserConfig};

use crate::cli::PullPolicyArgs;
use crate::printer::Printer;

pub(crate) fn run(args: &PullPolicyArgs, printer: &Printer) -> anyhow::Result<ExitCode> {
    let path = user_config::config_path()?;
    match (&args.policy, args.unset) {
        (Some(_), true) => bail!("pull policy and --unset cannot be specified simultaneously"),
        (None, true) => {
            let old = UserConfig::update(&path, |config| {
                let old = config.pull_policy().map(str::to_owned);
                config.set_pull_policy(None);
                anyhow::Ok((old.clone(), old.is_some()))
            })?;
            printer.result(&format!("Successfully unset pull policy '{}'", old.unwrap_or_default()));
            printer.result(&format!("Pull policy has been set to '{}'", PullPolicy::default()));
        }
        (None, false) => {
            let config = UserConfig::load_default()?;
            let policy: PullPolicy = config
                .pull_policy()
                .unwrap_or_default()
                .parse()
                .with_context(|| format!("the pull-policy of {}", config.path().display()))?;
            printer.result(&format!("The current pull policy is '{policy}'"));
        }
        (Some(new), false) => {
            let policy: PullPolicy = new.parse()?;
            let already = UserConfig::update(&path, |config| {
                let already = config.pull_policy() == Some(new.as_str());
                if !already {
                    config.set_pull_policy(Some(new));
                }
                anyhow::Ok((already, !already))
            })?;
            if already {
                printer.result(&format!("Pull policy is already set to '{new}'"));
            } else {
                printer.result(&format!("Successfully set '{policy}' as the pull policy"));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
