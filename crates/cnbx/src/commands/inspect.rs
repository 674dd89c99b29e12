//! `cnbx builder inspect [IMAGE]`: pack's LOCAL (the local store, or an `oci:` layout) and
//! REMOTE (the registry, through its registry mirror) sections, in pack's four output formats.
//! Without IMAGE, the configuration's default builder, as in pack.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use cnbx_builder::images::PullPolicy;
use cnbx_builder::inspect::{self, Depth, InspectReport, OutputFormat, RenderOptions, Rendered, Section};
use cnbx_refs::trusted;
use cnbx_refs::user_config::UserConfig;

use super::{BuilderLabels, builder_labels, open_images};
use crate::cli::{InspectArgs, InspectFormat};
use crate::printer::Printer;

fn section(labels: Option<BuilderLabels>, depth: Depth) -> Section {
    match labels {
        None | Some(BuilderLabels::Absent) => Section::Absent,
        Some(BuilderLabels::Error(e)) => Section::Error(e),
        Some(BuilderLabels::Present(labels, platforms)) => Section::from_labels(&labels, platforms, depth),
    }
}

pub(crate) async fn run(args: InspectArgs, printer: &Arc<Printer>) -> anyhow::Result<ExitCode> {
    let user = UserConfig::load_default()?;
    let default_builder = user.default_builder().map(str::to_owned);
    let Some(name) = args.image.clone().or_else(|| default_builder.clone()) else {
        // pack's answer (without its list of suggested builders), and its exit code.
        printer.notice("Please select a default builder with:\n\n\tcnbx config default-builder <builder-image>\n");
        return Ok(ExitCode::FAILURE);
    };
    let trusted = trusted::is_trusted(&user.trusted_builders(), &name)
        .with_context(|| format!("reading the trusted builders of {}", user.path().display()))?;
    let images = open_images(printer, PullPolicy::Never, false, &args.insecure_registries, user.registry_mirrors())?;
    let images = super::choose_local(images, args.local.local, printer, false).await?;
    let (local, remote) = builder_labels(&images, &name).await?;
    let depth = Depth::from_flag(i64::from(args.depth));
    let report = InspectReport {
        builder_name: name.clone(),
        trusted,
        default: default_builder.as_deref() == Some(name.as_str()),
        remote: section(remote, depth),
        local: section(Some(local), depth),
    };
    let format = match args.output {
        InspectFormat::HumanReadable => OutputFormat::HumanReadable,
        InspectFormat::Json => OutputFormat::Json,
        InspectFormat::Yaml => OutputFormat::Yaml,
        InspectFormat::Toml => OutputFormat::Toml,
    };
    let options = RenderOptions { verbose: printer.is_verbose(), depth, user_run_images: user.run_images().to_vec() };
    let rendered = match inspect::render(&report, format, &options) {
        Ok(r) => r,
        // pack reports a builder that exists but is not readable as "not found"; say why.
        Err(e @ inspect::RenderError::NotFound { .. }) => {
            let reasons: Vec<&str> = [&report.local, &report.remote]
                .into_iter()
                .filter_map(|s| if let Section::Error(e) = s { Some(e.as_str()) } else { None })
                .collect();
            if reasons.is_empty() {
                return Err(e.into());
            }
            anyhow::bail!("'{name}' cannot be inspected as a builder: {}", reasons.join("; "));
        }
        Err(e) => return Err(e.into()),
    };
    match rendered {
        Rendered::Human(out) => {
            printer.result(&out.pack_stdout());
            let stderr = out.pack_stderr();
            if !stderr.is_empty() {
                printer.stderr_lines(&stderr);
            }
        }
        Rendered::Document(doc) => printer.document(&doc),
    }
    Ok(ExitCode::SUCCESS)
}
