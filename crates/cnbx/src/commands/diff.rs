//! `cnbx builder diff OLD NEW`: what changed between two builders ([`cnbx_builder::diff`]),
//! for people, as Markdown for release notes, or as JSON (docs/json-output.md).
//!
//! Exit codes are `diff`'s: 0 when the builders are the same, 1 when they differ, 2 on an
//! error (`main` maps this command's errors, usage errors included, to 2).
//!
//! Everything shown comes from someone else's image: in the human and Markdown forms every
//! such value is an [excerpt](cnbx_fs::excerpt) (one line, control characters escaped, at
//! most 80 characters), and in Markdown it is escaped so that it cannot make markup.

use std::fmt::Write as _;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use cnbx_builder::diff::{
    self, BuilderDiff, Change, Changes, GroupChange, GroupChangeKind, LayerChange, LayerDiff, LayerStatus,
    ModuleChange, ModuleChangeKind, PlatformDiff, PlatformStatus, Ref, RunImageChangeKind, ValueChange,
};
use cnbx_fs::excerpt;
use serde::Serialize;

use super::report::{SCHEMA_VERSION, to_json};
use super::store::human_bytes;
use crate::cli::{DiffArgs, DiffFormat};
use crate::printer::Printer;

/// The exit code when the builders differ.
const DIFFERENT: u8 = 1;

pub(crate) async fn run(args: DiffArgs, printer: &Arc<Printer>) -> anyhow::Result<ExitCode> {
    let user = cnbx_refs::user_config::UserConfig::load_default()?;
    let policy = super::pull_policy(args.pull_policy);
    let images =
        super::open_images(printer, policy, false, &args.insecure_registries, user.registry_mirrors())?.read_only();
    let images = super::choose_local(images, args.local.local, printer, false).await?;
    let cwd = std::env::current_dir().context("reading the current directory")?;
    let old = diff::read(&images, &args.old, &cwd).await?;
    let new = diff::read(&images, &args.new, &cwd).await?;
    let report = diff::compare(&old, &new);
    match args.output {
        DiffFormat::Human => printer.result(&human(&report)),
        DiffFormat::Markdown => printer.result(&markdown(&report)),
        // A document: its control characters are written as JSON's own escapes.
        DiffFormat::Json => printer.document(&to_json(&DiffJson { schema_version: SCHEMA_VERSION, diff: &report })?),
    }
    Ok(if report.equal { ExitCode::SUCCESS } else { ExitCode::from(DIFFERENT) })
}

/// The JSON document (docs/json-output.md).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DiffJson<'a> {
    schema_version: u32,
    #[serde(flatten)]
    diff: &'a BuilderDiff,
}

/// An optional value as shown: an excerpt, or `(none)`.
fn shown(value: Option<&String>) -> String {
    value.map_or_else(|| "(none)".to_owned(), |v| excerpt(v))
}

fn refs_text(refs: &[Ref]) -> String {
    if refs.is_empty() {
        return "(none)".to_owned();
    }
    let one = |r: &Ref| {
        let mut s = if r.version.is_empty() { excerpt(&r.id) } else { excerpt(&format!("{}@{}", r.id, r.version)) };
        if r.optional {
            s.push_str(" (optional)");
        }
        s
    };
    refs.iter().map(one).collect::<Vec<_>>().join(", ")
}

/// Platforms whose builder changes are the same, in the order they first appear.
fn groups(report: &BuilderDiff) -> Vec<(Vec<&str>, &PlatformDiff)> {
    let mut out: Vec<(Vec<&str>, &PlatformDiff)> = Vec::new();
    for p in report.platforms.iter().filter(|p| p.status == PlatformStatus::Changed) {
        if p.changes.is_empty() && !p.other_differences {
            continue;
        }
        match out
            .iter_mut()
            .find(|(_, first)| first.changes == p.changes && first.other_differences == p.other_differences)
        {
            Some((names, _)) => names.push(&p.platform),
            None => out.push((vec![&p.platform], p)),
        }
    }
    out
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 { format!("{n} {word}") } else { format!("{n} {word}s") }
}

fn tally(t: &diff::Tally) -> String {
    format!("{} ({})", t.layers, human_bytes(t.size))
}

fn module_kind(change: ModuleChangeKind) -> &'static str {
    match change {
        ModuleChangeKind::Added => "added",
        ModuleChangeKind::Removed => "removed",
        ModuleChangeKind::Version => "updated",
        ModuleChangeKind::Content => "rebuilt (same version, other content)",
    }
}

/// The summary line both text forms end with.
fn summary(report: &BuilderDiff) -> String {
    let (old, new) = (&report.old.image, &report.new.image);
    if report.equal {
        return format!("'{old}' and '{new}' are the same builder ({})", list_text(&report.new.platforms));
    }
    let mut parts = Vec::new();
    for p in &report.platforms {
        let platform = excerpt(&p.platform);
        let part = match p.status {
            PlatformStatus::Added => format!("{platform} added"),
            PlatformStatus::Removed => format!("{platform} removed"),
            PlatformStatus::Unchanged => format!("{platform} unchanged"),
            PlatformStatus::Changed => format!(
                "{platform} changed (a pull downloads {} for someone who has the old builder)",
                human_bytes(p.layers.download.size)
            ),
        };
        parts.push(part);
    }
    format!("'{old}' and '{new}' differ: {}", parts.join("; "))
}

// ---------------------------------------------------------------------------------------
// Human

/// The report for people: nothing but the summary when the builders are the same.
pub(crate) fn human(report: &BuilderDiff) -> String {
    if report.equal {
        return format!("No differences: {}\n", summary(report));
    }
    let mut out = String::new();
    let _ = writeln!(out, "Comparing '{}' with '{}'", report.old.image, report.new.image);
    for (label, side) in [("old", &report.old), ("new", &report.new)] {
        let _ = writeln!(out, "  {label}: {} ({})", side.digest, list_text(&side.platforms));
    }
    let one_sided: Vec<&PlatformDiff> = report
        .platforms
        .iter()
        .filter(|p| matches!(p.status, PlatformStatus::Added | PlatformStatus::Removed))
        .collect();
    if !one_sided.is_empty() {
        out.push_str("\nPlatforms:\n");
        for p in one_sided {
            let (sign, what, t) = if p.status == PlatformStatus::Added {
                ("+", "added", &p.layers.new)
            } else {
                ("-", "removed", &p.layers.removed)
            };
            let _ = writeln!(
                out,
                "  {sign} {} ({what}: {}, {})",
                excerpt(&p.platform),
                plural(t.layers, "layer"),
                human_bytes(t.size)
            );
        }
    }
    for (names, p) in groups(report) {
        let names: Vec<String> = names.iter().map(|n| excerpt(n)).collect();
        let _ = writeln!(out, "\n{}:", names.join(", "));
        human_changes(&mut out, &p.changes);
        if p.other_differences {
            out.push_str(
                "  The manifests differ in what this comparison does not show (media types, annotations or the order \
                 of the layers)\n",
            );
        }
    }
    let compared: Vec<&PlatformDiff> =
        report.platforms.iter().filter(|p| matches!(p.status, PlatformStatus::Changed)).collect();
    if !compared.is_empty() {
        out.push_str("\nLayers:\n");
        for p in compared {
            human_layers(&mut out, p);
        }
    }
    let _ = write!(out, "\nSummary: {}\n", summary(report));
    out
}

fn human_changes(out: &mut String, c: &Changes) {
    for (title, modules) in [("Buildpacks", &c.buildpacks), ("Extensions", &c.extensions)] {
        if modules.is_empty() {
            continue;
        }
        let _ = writeln!(out, "  {title}:");
        for m in modules {
            let _ = writeln!(out, "    {}", module_line(m));
        }
    }
    for (title, groups) in [("Detection order", &c.order), ("Detection order (extensions)", &c.order_extensions)] {
        if groups.is_empty() {
            continue;
        }
        let _ = writeln!(out, "  {title}:");
        for g in groups {
            let _ = writeln!(out, "    {}", group_line(g));
        }
    }
    if !c.system_buildpacks.is_empty() {
        out.push_str("  System buildpacks:\n");
        for s in &c.system_buildpacks {
            let _ = writeln!(out, "    {}: {} -> {}", s.phase, refs_text(&s.old), refs_text(&s.new));
        }
    }
    if let Some(l) = &c.lifecycle {
        out.push_str("  Lifecycle:\n");
        if let Some(v) = &l.version {
            let _ = writeln!(out, "    version: {}", change_text(v));
        }
        for api in &l.apis {
            let _ = writeln!(out, "    {} APIs {}: {}", api.api, api.list, api_text(&api.added, &api.removed));
        }
    }
    if let Some(b) = &c.build_image {
        let side = |s: &Option<diff::BaseLayers>| match s {
            Some(s) => format!("{} ({}, ChainID {})", plural(s.layers, "layer"), human_bytes(s.size), s.chain_id),
            None => "not identified".to_owned(),
        };
        out.push_str("  Build image (identified by its layers; a builder does not record its name):\n");
        let _ = writeln!(out, "    old: {}", side(&b.old));
        let _ = writeln!(out, "    new: {}", side(&b.new));
        let _ = writeln!(out, "    {} of the new build image's layers reused", b.reused_layers);
    }
    if !c.run_images.is_empty() {
        out.push_str("  Run images:\n");
        for r in &c.run_images {
            let image = excerpt(&r.image);
            let line = match r.change {
                RunImageChangeKind::Added if r.mirrors_added.is_empty() => format!("+ {image}"),
                RunImageChangeKind::Added => format!("+ {image} (mirrors: {})", list_text(&r.mirrors_added)),
                RunImageChangeKind::Removed => format!("- {image}"),
                RunImageChangeKind::Mirrors => {
                    format!("~ {image}: mirrors {}", api_text(&r.mirrors_added, &r.mirrors_removed))
                }
                RunImageChangeKind::Moved => format!(
                    "~ {image}: moved from position {} to {}",
                    r.old_position.unwrap_or_default(),
                    r.new_position.unwrap_or_default()
                ),
            };
            let _ = writeln!(out, "    {line}");
        }
    }
    if let Some(s) = &c.stack {
        out.push_str("  Stack:\n");
        if let Some(id) = &s.id {
            let _ = writeln!(out, "    id: {}", change_text(id));
        }
        if !s.mixins_added.is_empty() || !s.mixins_removed.is_empty() {
            let _ = writeln!(out, "    mixins: {}", api_text(&s.mixins_added, &s.mixins_removed));
        }
    }
    if let Some(env) = &c.build_env {
        let what = match (&env.old, &env.new) {
            (None, Some(_)) => "added".to_owned(),
            (Some(_), None) => "removed".to_owned(),
            _ => format!("changed (layer {} -> {})", shown(env.old.as_ref()), shown(env.new.as_ref())),
        };
        let _ = writeln!(out, "  [[build.env]]: {what}; its content is in a layer, which a diff does not read");
    }
    for (title, changes) in [("Environment", &c.env), ("Config", &c.config), ("Labels", &c.labels)] {
        if changes.is_empty() {
            continue;
        }
        let _ = writeln!(out, "  {title}:");
        for v in changes {
            let _ = writeln!(out, "    {}", value_line(v));
        }
    }
    if let Some(d) = &c.description {
        let _ = writeln!(out, "  Description: {}", change_text(d));
    }
    if let Some(d) = &c.created_by {
        let _ = writeln!(out, "  Created by: {}", change_text(d));
    }
}

fn change_text(c: &Change) -> String {
    format!("{} -> {}", shown(c.old.as_ref()), shown(c.new.as_ref()))
}

fn list_text(items: &[String]) -> String {
    items.iter().map(|i| excerpt(i)).collect::<Vec<_>>().join(", ")
}

/// `+a +b -c`.
fn api_text(added: &[String], removed: &[String]) -> String {
    let plus = added.iter().map(|a| format!("+{}", excerpt(a)));
    let minus = removed.iter().map(|r| format!("-{}", excerpt(r)));
    plus.chain(minus).collect::<Vec<_>>().join(" ")
}

fn module_line(m: &ModuleChange) -> String {
    let name = m.name.as_ref().map(|n| format!(" ({})", excerpt(n))).unwrap_or_default();
    let id = excerpt(&m.id);
    let (ov, nv) = (shown(m.old_version.as_ref()), shown(m.new_version.as_ref()));
    match m.change {
        ModuleChangeKind::Added => format!("+ {id}@{nv}{name}"),
        ModuleChangeKind::Removed => format!("- {id}@{ov}{name}"),
        ModuleChangeKind::Version => format!("~ {id}{name}: {ov} -> {nv}"),
        ModuleChangeKind::Content => format!(
            "* {id}@{nv}{name}: same version, other content (layer {} -> {})",
            shown(m.old_layer.as_ref()),
            shown(m.new_layer.as_ref())
        ),
    }
}

fn group_line(g: &GroupChange) -> String {
    let refs = |r: &Option<Vec<Ref>>| refs_text(r.as_deref().unwrap_or_default());
    match g.change {
        GroupChangeKind::Added => format!("+ group {}: {}", g.new_group.unwrap_or_default(), refs(&g.new)),
        GroupChangeKind::Removed => format!("- group {} (old): {}", g.old_group.unwrap_or_default(), refs(&g.old)),
        GroupChangeKind::Changed if g.old_group == g.new_group => {
            format!("~ group {}: {} -> {}", g.new_group.unwrap_or_default(), refs(&g.old), refs(&g.new))
        }
        GroupChangeKind::Changed => format!(
            "~ group {} (old) / {} (new): {} -> {}",
            g.old_group.unwrap_or_default(),
            g.new_group.unwrap_or_default(),
            refs(&g.old),
            refs(&g.new)
        ),
    }
}

fn value_line(v: &ValueChange) -> String {
    let key = excerpt(&v.key);
    match (&v.old, &v.new) {
        (None, Some(n)) => format!("+ {key}={}", excerpt(n)),
        (Some(o), None) => format!("- {key}={}", excerpt(o)),
        (o, n) => format!("~ {key}: {} -> {}", shown(o.as_ref()), shown(n.as_ref())),
    }
}

fn human_layers(out: &mut String, p: &PlatformDiff) {
    let l = &p.layers;
    let _ = writeln!(
        out,
        "  {}: {} reused ({}), {} new ({}), {} removed ({}); a pull downloads {} ({}) for someone who has the old \
         builder",
        excerpt(&p.platform),
        l.reused.layers,
        human_bytes(l.reused.size),
        l.new.layers,
        human_bytes(l.new.size),
        l.removed.layers,
        human_bytes(l.removed.size),
        human_bytes(l.download.size),
        plural(l.download.layers, "layer"),
    );
    let rows: Vec<(&str, &LayerChange)> = l
        .layers
        .iter()
        .filter_map(|layer| match layer.status {
            LayerStatus::New => Some(("+", layer)),
            LayerStatus::Removed => Some(("-", layer)),
            LayerStatus::Reused if layer.recompressed => Some(("~", layer)),
            LayerStatus::Reused => None,
        })
        .collect();
    let width = rows.iter().map(|(_, layer)| excerpt(&layer.holds).chars().count()).max().unwrap_or(0);
    for (sign, layer) in rows {
        let holds = excerpt(&layer.holds);
        let note = if layer.recompressed { "  (same content, compressed differently)" } else { "" };
        let _ = writeln!(out, "    {sign} {holds:<width$}  {:>10}{note}", human_bytes(layer.size));
    }
}

// ---------------------------------------------------------------------------------------
// Markdown

/// Text from an image, safe in Markdown (also in a table cell): an excerpt with every
/// character that could make markup backslash-escaped.
fn md(text: &str) -> String {
    let mut out = String::new();
    for c in excerpt(text).chars() {
        if matches!(c, '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '&' | '~' | '#' | '!' | '$') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Text from an image as inline code when it is made only of characters that are safe there
/// (ids, versions, image names, digests), else as [`md`] text.
fn code(text: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "._/:@+-=".contains(c);
    if !text.is_empty() && text.chars().count() <= cnbx_fs::MAX_EXCERPT_CHARS && text.chars().all(safe) {
        format!("`{text}`")
    } else {
        md(text)
    }
}

fn md_opt(value: Option<&String>) -> String {
    value.map_or_else(String::new, |v| code(v))
}

fn md_refs(refs: &[Ref]) -> String {
    if refs.is_empty() {
        return "(none)".to_owned();
    }
    let one = |r: &Ref| {
        let name = if r.version.is_empty() { r.id.clone() } else { format!("{}@{}", r.id, r.version) };
        let optional = if r.optional { " (optional)" } else { "" };
        format!("{}{optional}", code(&name))
    };
    refs.iter().map(one).collect::<Vec<_>>().join(", ")
}

fn md_list(items: &[String]) -> String {
    items.iter().map(|i| code(i)).collect::<Vec<_>>().join(", ")
}

/// The report as Markdown, ready for release notes.
pub(crate) fn markdown(report: &BuilderDiff) -> String {
    let (old, new) = (code(&report.old.image), code(&report.new.image));
    if report.equal {
        return format!("No changes: {old} and {new} are the same builder.\n");
    }
    let mut out = String::from("## Builder changes\n\n");
    let _ = writeln!(out, "{old} → {new}\n");
    let added: Vec<String> =
        report.platforms.iter().filter(|p| p.status == PlatformStatus::Added).map(|p| code(&p.platform)).collect();
    let removed: Vec<String> =
        report.platforms.iter().filter(|p| p.status == PlatformStatus::Removed).map(|p| code(&p.platform)).collect();
    if !added.is_empty() || !removed.is_empty() {
        let mut parts = Vec::new();
        if !added.is_empty() {
            parts.push(format!("added {}", added.join(", ")));
        }
        if !removed.is_empty() {
            parts.push(format!("removed {}", removed.join(", ")));
        }
        let _ = writeln!(out, "**Platforms:** {}\n", parts.join("; "));
    }
    for (names, p) in groups(report) {
        let names: Vec<String> = names.iter().map(|n| code(n)).collect();
        let _ = writeln!(out, "### {}\n", names.join(", "));
        md_changes(&mut out, &p.changes);
        if p.other_differences {
            out.push_str(
                "The manifests differ in what this comparison does not show (media types, annotations or the order of \
                 the layers).\n\n",
            );
        }
    }
    md_layers(&mut out, report);
    out.truncate(out.trim_end().len());
    out.push('\n');
    out
}

fn md_changes(out: &mut String, c: &Changes) {
    for (title, noun, modules) in
        [("Buildpacks", "Buildpack", &c.buildpacks), ("Extensions", "Extension", &c.extensions)]
    {
        if modules.is_empty() {
            continue;
        }
        let _ = writeln!(out, "#### {title}\n\n| {noun} | Change | Old | New |\n| --- | --- | --- | --- |");
        for m in modules {
            let name = m.name.as_ref().map(|n| format!(" ({})", md(n))).unwrap_or_default();
            let _ = writeln!(
                out,
                "| {}{name} | {} | {} | {} |",
                code(&m.id),
                module_kind(m.change),
                md_opt(m.old_version.as_ref()),
                md_opt(m.new_version.as_ref())
            );
        }
        out.push('\n');
    }
    for (title, groups) in [("Detection order", &c.order), ("Detection order (extensions)", &c.order_extensions)] {
        if groups.is_empty() {
            continue;
        }
        let _ = writeln!(out, "#### {title}\n");
        for g in groups {
            let refs = |r: &Option<Vec<Ref>>| md_refs(r.as_deref().unwrap_or_default());
            let line = match g.change {
                GroupChangeKind::Added => format!("Group {} added: {}", g.new_group.unwrap_or_default(), refs(&g.new)),
                GroupChangeKind::Removed => {
                    format!("Group {} removed: {}", g.old_group.unwrap_or_default(), refs(&g.old))
                }
                GroupChangeKind::Changed => {
                    format!("Group {} changed: {} → {}", g.new_group.unwrap_or_default(), refs(&g.old), refs(&g.new))
                }
            };
            let _ = writeln!(out, "- {line}");
        }
        out.push('\n');
    }
    if !c.system_buildpacks.is_empty() {
        out.push_str("#### System buildpacks\n\n");
        for s in &c.system_buildpacks {
            let _ = writeln!(out, "- {}: {} → {}", s.phase, md_refs(&s.old), md_refs(&s.new));
        }
        out.push('\n');
    }
    if let Some(l) = &c.lifecycle {
        out.push_str("#### Lifecycle\n\n");
        if let Some(v) = &l.version {
            let _ = writeln!(out, "- Version: {}", md_change(v));
        }
        for api in &l.apis {
            let _ = writeln!(
                out,
                "- {} APIs {}: {}",
                capitalized(api.api),
                api.list,
                md_added_removed(&api.added, &api.removed)
            );
        }
        out.push('\n');
    }
    if let Some(b) = &c.build_image {
        let side = |s: &Option<diff::BaseLayers>| match s {
            Some(s) => format!("{} ({})", plural(s.layers, "layer"), human_bytes(s.size)),
            None => "not identified".to_owned(),
        };
        out.push_str("#### Build image\n\n");
        let _ = writeln!(out, "- Layers: {} → {}, {} reused\n", side(&b.old), side(&b.new), b.reused_layers);
    }
    if !c.run_images.is_empty() {
        out.push_str("#### Run images\n\n");
        for r in &c.run_images {
            let image = code(&r.image);
            let line = match r.change {
                RunImageChangeKind::Added if r.mirrors_added.is_empty() => format!("Added {image}"),
                RunImageChangeKind::Added => format!("Added {image} (mirrors: {})", md_list(&r.mirrors_added)),
                RunImageChangeKind::Removed => format!("Removed {image}"),
                RunImageChangeKind::Mirrors => {
                    format!("{image}: mirrors {}", md_added_removed(&r.mirrors_added, &r.mirrors_removed))
                }
                RunImageChangeKind::Moved => format!(
                    "{image}: moved from position {} to {}",
                    r.old_position.unwrap_or_default(),
                    r.new_position.unwrap_or_default()
                ),
            };
            let _ = writeln!(out, "- {line}");
        }
        out.push('\n');
    }
    if let Some(s) = &c.stack {
        out.push_str("#### Stack\n\n");
        if let Some(id) = &s.id {
            let _ = writeln!(out, "- Id: {}", md_change(id));
        }
        if !s.mixins_added.is_empty() || !s.mixins_removed.is_empty() {
            let _ = writeln!(out, "- Mixins: {}", md_added_removed(&s.mixins_added, &s.mixins_removed));
        }
        out.push('\n');
    }
    if let Some(env) = &c.build_env {
        let what = match (&env.old, &env.new) {
            (None, Some(_)) => "added",
            (Some(_), None) => "removed",
            _ => "changed",
        };
        let _ = writeln!(out, "#### Build environment\n\n- `[[build.env]]` {what}\n");
    }
    for (title, first, changes) in
        [("Environment", "Variable", &c.env), ("Config", "Field", &c.config), ("Labels", "Label", &c.labels)]
    {
        if changes.is_empty() {
            continue;
        }
        let _ = writeln!(out, "#### {title}\n\n| {first} | Old | New |\n| --- | --- | --- |");
        for v in changes {
            let _ = writeln!(out, "| {} | {} | {} |", code(&v.key), md_value(v.old.as_ref()), md_value(v.new.as_ref()));
        }
        out.push('\n');
    }
    let mut builder = Vec::new();
    if let Some(d) = &c.description {
        builder.push(format!("- Description: {}", md_change_text(d)));
    }
    if let Some(d) = &c.created_by {
        builder.push(format!("- Created by: {}", md_change_text(d)));
    }
    if !builder.is_empty() {
        let _ = writeln!(out, "#### Builder\n\n{}\n", builder.join("\n"));
    }
}

fn capitalized(s: &str) -> String {
    let mut chars = s.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

fn md_value(value: Option<&String>) -> String {
    value.map_or_else(String::new, |v| md(v))
}

fn md_change(c: &Change) -> String {
    let side = |v: Option<&String>| v.map_or_else(|| "(none)".to_owned(), |v| code(v));
    format!("{} → {}", side(c.old.as_ref()), side(c.new.as_ref()))
}

fn md_change_text(c: &Change) -> String {
    let side = |v: Option<&String>| v.map_or_else(|| "(none)".to_owned(), |v| md(v));
    format!("{} → {}", side(c.old.as_ref()), side(c.new.as_ref()))
}

fn md_added_removed(added: &[String], removed: &[String]) -> String {
    let mut parts = Vec::new();
    if !added.is_empty() {
        parts.push(format!("added {}", md_list(added)));
    }
    if !removed.is_empty() {
        parts.push(format!("removed {}", md_list(removed)));
    }
    parts.join("; ")
}

fn md_layers(out: &mut String, report: &BuilderDiff) {
    let rows: Vec<&PlatformDiff> = report.platforms.iter().filter(|p| p.status != PlatformStatus::Unchanged).collect();
    if rows.is_empty() {
        return;
    }
    out.push_str("### Layers\n\n");
    out.push_str("| Platform | Reused | New | Removed | Download for someone who has the old builder |\n");
    out.push_str("| --- | ---: | ---: | ---: | ---: |\n");
    for p in &rows {
        let l = &p.layers;
        let _ = writeln!(
            out,
            "| {}{} | {} | {} | {} | {} |",
            code(&p.platform),
            match p.status {
                PlatformStatus::Added => " (added)",
                PlatformStatus::Removed => " (removed)",
                _ => "",
            },
            tally(&l.reused),
            tally(&l.new),
            tally(&l.removed),
            tally(&l.download)
        );
    }
    out.push('\n');
    let changed: Vec<&&PlatformDiff> = rows.iter().filter(|p| p.status == PlatformStatus::Changed).collect();
    for p in changed {
        md_layer_list(out, &p.platform, &p.layers);
    }
}

fn md_layer_list(out: &mut String, platform: &str, l: &LayerDiff) {
    let rows: Vec<&LayerChange> =
        l.layers.iter().filter(|layer| layer.status != LayerStatus::Reused || layer.recompressed).collect();
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(out, "New and removed layers of {}:\n\n| | Layer | Size |\n| --- | --- | ---: |", code(platform));
    for layer in rows {
        let what = match layer.status {
            LayerStatus::New => "new",
            LayerStatus::Removed => "removed",
            LayerStatus::Reused => "recompressed",
        };
        let _ = writeln!(out, "| {what} | {} | {} |", md(&layer.holds), human_bytes(layer.size));
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_text_cannot_make_markup() {
        assert_eq!(md("a|b*c_[x](y)<img>`&"), "a\\|b\\*c\\_\\[x\\](y)\\<img\\>\\`\\&");
        assert_eq!(md("line\nbreak $x$"), "line\\\\u{a}break \\$x\\$");
        assert_eq!(code("samples/hello-world"), "`samples/hello-world`");
        assert_eq!(code("evil`id"), "evil\\`id");
        assert_eq!(code("a|b"), "a\\|b");
        assert_eq!(code(""), "");
    }
}
