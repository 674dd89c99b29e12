//! `cnbx base-image check`: the platform-spec rules for base-image authors
//! ([`cnbx_builder::check`]).

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use cnbx_builder::check::{CheckReport, CheckRequest, check};
use cnbx_model::Target;
use cnbx_oci::spec::Platform;
use cnbx_validate::PlatformApi;
use serde::Serialize;

use super::report::{FindingJson, SCHEMA_VERSION, Tally, finding_line, role_name, to_json};
use crate::cli::{CheckArgs, ReportFormat};
use crate::commands::open_images;
use crate::printer::Printer;

pub(crate) async fn check_command(args: CheckArgs, printer: &Arc<Printer>) -> anyhow::Result<ExitCode> {
    let platforms = super::parse_targets(&args.targets, printer)?.iter().map(target_platform).collect();
    let platform_api = match &args.platform_api {
        Some(text) => parse_platform_api(text)?,
        None => PlatformApi::LATEST,
    };
    let user = cnbx_refs::user_config::UserConfig::load_default()?;
    let policy = super::resolve_pull_policy(args.pull_policy, &user)?;
    let images = open_images(printer, policy, false, &args.insecure_registries, user.registry_mirrors())?.read_only();
    let images = super::choose_local(images, args.local.local, printer, false).await?;
    let request = CheckRequest {
        build: args.build.clone(),
        runs: args.runs.clone(),
        mirrors: args.mirrors.clone(),
        platforms,
        read_layers: !args.config_only,
        platform_api,
        base_dir: std::env::current_dir().context("reading the current directory")?,
    };
    let report = check(&images, &request).await?;
    let tally = Tally::of(report.findings.iter().map(|f| &f.finding));
    let passed = tally.errors == 0 && !(args.strict && tally.warnings > 0);
    match args.output {
        ReportFormat::Json => printer.document(&to_json(&CheckJson::new(&report, &args, platform_api, tally, passed))?),
        ReportFormat::Human => {
            for f in &report.findings {
                printer.result(&finding_line(&f.platform, &f.finding));
            }
            for note in &report.notes {
                printer.warn(note);
            }
            printer.result(&summary(&report, &args, tally, passed));
        }
    }
    Ok(if passed { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// The platform of a `--target` (its distributions do not choose a manifest).
fn target_platform(t: &Target) -> Platform {
    Platform::new(&t.os, &t.arch, Some(t.variant.as_str()))
}

/// `MAJOR.MINOR`, at most the newest Platform API the validator knows.
fn parse_platform_api(text: &str) -> anyhow::Result<PlatformApi> {
    let parsed = text.split_once('.').and_then(|(major, minor)| Some((major.parse().ok()?, minor.parse().ok()?)));
    let Some((major, minor)) = parsed else {
        bail!("invalid --platform-api '{}': write MAJOR.MINOR, such as 0.12", cnbx_fs::excerpt(text));
    };
    let api = PlatformApi::new(major, minor);
    let latest = PlatformApi::LATEST;
    if api > latest {
        bail!("--platform-api {api} is newer than the newest cnbx knows ({latest})");
    }
    Ok(api)
}

/// The summary line: what was checked, in which mode, the findings, the outcome.
fn summary(report: &CheckReport, args: &CheckArgs, tally: Tally, passed: bool) -> String {
    let platforms = checked_platforms(report);
    let mut images: Vec<&str> = report.images.iter().map(|i| i.image.as_str()).collect();
    images.sort_unstable();
    images.dedup();
    let mode = if args.config_only { "config-only" } else { "layer mode" };
    let outcome = match (passed, tally.errors) {
        (true, _) => "passed",
        (false, 0) => "failed (--strict: warnings fail)",
        (false, _) => "failed",
    };
    let count = if images.len() == 1 { "1 image".to_owned() } else { format!("{} images", images.len()) };
    format!("Checked {count} for {} ({mode}): {tally}: {outcome}", platforms.join(", "))
}

/// The platforms checked, each once, in the order first checked (several run images may
/// each have been checked for the same platforms).
fn checked_platforms(report: &CheckReport) -> Vec<String> {
    let mut platforms: Vec<String> = report.images.iter().map(|i| i.platform.to_string()).collect();
    let mut seen = std::collections::HashSet::new();
    platforms.retain(|p| seen.insert(p.clone()));
    platforms
}

/// The JSON document of `base-image check` (docs/json-output.md).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CheckJson {
    schema_version: u32,
    passed: bool,
    strict: bool,
    mode: &'static str,
    platform_api: String,
    summary: Tally,
    images: Vec<ImageJson>,
    findings: Vec<FindingJson>,
    notes: Vec<String>,
}

#[derive(Serialize)]
struct ImageJson {
    role: &'static str,
    image: String,
    platform: String,
    manifest: String,
}

impl CheckJson {
    fn new(report: &CheckReport, args: &CheckArgs, api: PlatformApi, summary: Tally, passed: bool) -> Self {
        Self {
            schema_version: SCHEMA_VERSION,
            passed,
            strict: args.strict,
            mode: if args.config_only { "config" } else { "layers" },
            platform_api: api.to_string(),
            summary,
            images: report
                .images
                .iter()
                .map(|i| ImageJson {
                    role: role_name(i.role),
                    image: i.image.clone(),
                    platform: i.platform.to_string(),
                    manifest: i.manifest.to_string(),
                })
                .collect(),
            findings: report.findings.iter().map(|f| FindingJson::new(&f.platform, &f.finding)).collect(),
            notes: report.notes.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_api_is_major_minor_and_not_newer_than_known() {
        assert_eq!(parse_platform_api("0.12").unwrap(), PlatformApi::new(0, 12));
        assert!(parse_platform_api("0.99").unwrap_err().to_string().contains("newer than the newest cnbx knows"));
        assert!(parse_platform_api("latest").unwrap_err().to_string().contains("write MAJOR.MINOR"));
        assert!(parse_platform_api("1").is_err());
    }

    #[test]
    fn each_platform_is_named_once_in_the_order_checked() {
        let image = |name: &str, arch: &str| cnbx_builder::check::CheckedImage {
            role: cnbx_validate::Role::Run,
            image: name.to_owned(),
            platform: Platform::new("linux", arch, None),
            manifest: cnbx_oci::Digest::of(name.as_bytes()),
        };
        let report = CheckReport {
            images: vec![image("a", "arm64"), image("a", "amd64"), image("b", "arm64"), image("b", "amd64")],
            ..CheckReport::default()
        };
        assert_eq!(checked_platforms(&report), ["linux/arm64", "linux/amd64"]);
    }
}
