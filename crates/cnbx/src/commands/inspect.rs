//! `cnbx builder inspect <IMAGE>`: pack's LOCAL (the local store, or an `oci:` layout) and
//! REMOTE (the registry) sections, in pack's four output formats.

use std::process::ExitCode;
use std::sync::Arc;

use cnbx_builder::images::PullPolicy;
use cnbx_builder::inspect::{self, Depth, InspectReport, OutputFormat, RenderOptions, Rendered, Section};
use cnbx_refs::user_config::UserConfig;

use super::{BuilderLabels, builder_labels, open_images};
use crate::cli::{InspectArgs, InspectFormat};
use crate::printer::Printer;

/// Builders pack trusts without configuration (pack's known builders).
const KNOWN_TRUSTED_BUILDERS: &[&str] = &[
    "gcr.io/buildpacks/builder:google-22",
    "heroku/builder:22",
    "heroku/builder:24",
    "paketobuildpacks/builder-jammy-base",
    "paketobuildpacks/builder-jammy-full",
    "paketobuildpacks/builder-jammy-tiny",
    "paketobuildpacks/builder-jammy-buildpackless-static",
    "paketobuildpacks/builder-ubi8-base",
    "paketobuildpacks/ubuntu-noble-builder",
    "paketobuildpacks/ubuntu-noble-builder-buildpackless",
];

fn section(labels: Option<BuilderLabels>, depth: Depth) -> Section {
    match labels {
        None | Some(BuilderLabels::Absent) => Section::Absent,
        Some(BuilderLabels::Error(e)) => Section::Error(e),
        Some(BuilderLabels::Present(labels)) => Section::from_labels(&labels, depth),
    }
}

pub(crate) async fn run(args: InspectArgs, printer: &Arc<Printer>) -> anyhow::Result<ExitCode> {
    let images = open_images(printer, PullPolicy::Never, false, &args.insecure_registries)?;
    let (local, remote) = builder_labels(&images, &args.image).await?;
    let user = UserConfig::load(images.home().config_file())?;
    let depth = Depth::from_flag(i64::from(args.depth));
    let report = InspectReport {
        builder_name: args.image.clone(),
        trusted: KNOWN_TRUSTED_BUILDERS.contains(&args.image.as_str()),
        default: false,
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
            anyhow::bail!("'{}' cannot be inspected as a builder: {}", args.image, reasons.join("; "));
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
