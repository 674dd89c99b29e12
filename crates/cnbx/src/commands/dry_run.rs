//! `cnbx builder create --dry-run`: the report of what the create would do
//! ([`cnbx_builder::create::dry_run`]), for people or as JSON (docs/json-output.md).

use std::fmt::Write as _;

use cnbx_builder::create::{DestinationKind, DryRun, LayerAction, LayerPlan, LayerSource, NamePlan, TargetDryRun};
use serde::Serialize;

use super::report::{FindingJson, SCHEMA_VERSION, Tally, finding_line};

/// How many layers of each source, and of each action.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct Counts {
    layers: usize,
    base: usize,
    cache: usize,
    package: usize,
    build: usize,
    exists: usize,
    mount: usize,
    upload: usize,
    write: usize,
    load: usize,
}

impl Counts {
    fn of(report: &DryRun) -> Self {
        let mut c = Self::default();
        for layer in report.targets.iter().flat_map(|t| &t.layers) {
            c.layers += 1;
            *match layer.source {
                LayerSource::Base => &mut c.base,
                LayerSource::Cache => &mut c.cache,
                LayerSource::Package => &mut c.package,
                LayerSource::Build => &mut c.build,
            } += 1;
            *match layer.action {
                LayerAction::Exists => &mut c.exists,
                LayerAction::Mount => &mut c.mount,
                LayerAction::Upload => &mut c.upload,
                LayerAction::Write => &mut c.write,
                LayerAction::Load => &mut c.load,
            } += 1;
        }
        c
    }
}

/// What the create would do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    WouldFail,
    UpToDate,
    WouldCreate,
}

impl Status {
    fn of(report: &DryRun) -> Self {
        if report.failure.is_some() {
            Self::WouldFail
        } else if report.up_to_date() {
            Self::UpToDate
        } else {
            Self::WouldCreate
        }
    }

    /// How the JSON document names it.
    fn as_str(self) -> &'static str {
        match self {
            Self::WouldFail => "would-fail",
            Self::UpToDate => "up-to-date",
            Self::WouldCreate => "would-create",
        }
    }
}

/// The report for people.
pub(crate) fn human(report: &DryRun) -> String {
    let mut out = format!(
        "Dry run of builder create '{}' ({}, {}): nothing was written\n",
        report.destination,
        report.kind.as_str(),
        report.into
    );
    for target in &report.targets {
        target_lines(&mut out, target, report.kind);
    }
    let counts = Counts::of(report);
    if report.failure.is_none() {
        let _ = writeln!(
            out,
            "Layers: {} ({} from the build image, {} from the layer cache, {} from buildpackages, {} to build); at the \
             destination: {} already there, {} to mount, {} to upload, {} to {}",
            counts.layers,
            counts.base,
            counts.cache,
            counts.package,
            counts.build,
            counts.exists,
            counts.mount,
            counts.upload,
            counts.write + counts.load,
            if counts.load > 0 { "load" } else { "write" }
        );
        for name in &report.names {
            let _ = writeln!(out, "{}", name_line(name));
        }
    }
    let verdict = match Status::of(report) {
        Status::WouldFail => "Result: builder create would fail (see the error below)".to_owned(),
        Status::UpToDate => format!(
            "Result: nothing to do: '{}' already holds this builder ({})",
            report.destination,
            report.digest.as_ref().map(ToString::to_string).unwrap_or_default()
        ),
        Status::WouldCreate => match &report.digest {
            Some(d) => format!("Result: builder create would write {d}"),
            None => "Result: builder create would build the layers above; the digest is known once they are built"
                .to_owned(),
        },
    };
    out.push_str(&verdict);
    out
}

fn target_lines(out: &mut String, target: &TargetDryRun, kind: DestinationKind) {
    if target.layers.is_empty() {
        let _ = writeln!(out, "Target {}: not planned (its base images fail the validation)", target.platform);
    } else {
        let manifest = target
            .manifest
            .as_ref()
            .map_or_else(|| "unknown until its layers are built".to_owned(), ToString::to_string);
        // The engine names an image by its ID, not by a manifest.
        let what = if kind == DestinationKind::Engine { "image ID" } else { "manifest" };
        let _ = writeln!(out, "Target {}: {what} {manifest}", target.platform);
    }
    let tally = Tally::of(&target.findings);
    let _ = writeln!(out, "  Findings: {tally}");
    for f in &target.findings {
        let _ = writeln!(out, "    {}", finding_line(&target.platform, f));
    }
    if target.layers.is_empty() {
        return;
    }
    let _ = writeln!(out, "  Layers (source, action at the destination, diffID, what it holds):");
    for (i, layer) in target.layers.iter().enumerate() {
        let _ = writeln!(out, "    {:>3}  {}", i + 1, layer_line(layer));
    }
}

fn layer_line(layer: &LayerPlan) -> String {
    let diff_id =
        layer.known.as_ref().map_or_else(|| "(diffID unknown)".to_owned(), |k| format!("sha256:{}", k.diff_id.short()));
    format!("{:<7} {:<6} {diff_id:<19} {}", layer.source.as_str(), layer.action.as_str(), layer.holds)
}

fn name_line(name: &NamePlan) -> String {
    let holds = name.holds.as_ref().map_or_else(|| "nothing".to_owned(), ToString::to_string);
    let wants =
        name.wants.as_ref().map_or_else(|| "a digest known once the layers are built".to_owned(), ToString::to_string);
    let verdict = if name.up_to_date() { "unchanged" } else { "would change" };
    format!("Name '{}': holds {holds}; would hold {wants} ({verdict})", name.name)
}

/// The JSON document of `builder create --dry-run` (docs/json-output.md).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DryRunJson {
    schema_version: u32,
    status: &'static str,
    destination: String,
    destination_kind: &'static str,
    into: String,
    digest: Option<String>,
    error: Option<String>,
    summary: Counts,
    names: Vec<NameJson>,
    targets: Vec<TargetJson>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NameJson {
    name: String,
    wants: Option<String>,
    holds: Option<String>,
    up_to_date: bool,
}

#[derive(Serialize)]
struct TargetJson {
    platform: String,
    manifest: Option<String>,
    findings: Vec<FindingJson>,
    layers: Vec<LayerJson>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LayerJson {
    holds: String,
    source: &'static str,
    action: &'static str,
    #[serde(rename = "diffID")]
    diff_id: Option<String>,
    digest: Option<String>,
    size: Option<u64>,
}

impl DryRunJson {
    pub(crate) fn new(report: &DryRun) -> Self {
        let text = |d: &Option<cnbx_oci::Digest>| d.as_ref().map(ToString::to_string);
        Self {
            schema_version: SCHEMA_VERSION,
            status: Status::of(report).as_str(),
            destination: report.destination.clone(),
            destination_kind: report.kind.as_str(),
            into: report.into.clone(),
            digest: text(&report.digest),
            error: report.failure.as_ref().map(|e| cnbx_fs::error_chain(e)),
            summary: Counts::of(report),
            names: report
                .names
                .iter()
                .map(|n| NameJson {
                    name: n.name.clone(),
                    wants: text(&n.wants),
                    holds: text(&n.holds),
                    up_to_date: n.up_to_date(),
                })
                .collect(),
            targets: report
                .targets
                .iter()
                .map(|t| TargetJson {
                    platform: t.platform.to_string(),
                    manifest: text(&t.manifest),
                    findings: t.findings.iter().map(|f| FindingJson::new(&t.platform, f)).collect(),
                    layers: t
                        .layers
                        .iter()
                        .map(|l| LayerJson {
                            holds: l.holds.clone(),
                            source: l.source.as_str(),
                            action: l.action.as_str(),
                            diff_id: l.known.as_ref().map(|k| k.diff_id.to_string()),
                            digest: l.known.as_ref().map(|k| k.digest.to_string()),
                            size: l.known.as_ref().map(|k| k.size),
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}
