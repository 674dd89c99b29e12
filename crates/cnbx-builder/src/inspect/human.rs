//! The human-readable `builder inspect` output (docs/pack-compatibility.md, *builder inspect*),
//! as pack's `writer/human_readable.go` writes it.

use cnbx_refs::mirrors::inspect_run_images;

use super::model::{BuilderInfo, DetectionEntry, InspectError};
use super::{InspectReport, RenderError, RenderOptions, Section};
use crate::gocompat::tabwriter;
use cnbx_model::{ApiVersion, ModuleInfo};

/// One piece of the human-readable output, in the order pack writes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chunk {
    /// Text for stdout, newlines included.
    Text(String),
    /// A warning (pack prints `Warning: <text>` on stdout).
    Warning(String),
    /// A section that could not be inspected (pack prints `ERROR: <text>` on stderr).
    Error(String),
}

/// The human-readable output: text, warnings and section errors in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HumanOutput {
    /// Every piece, in order.
    pub chunks: Vec<Chunk>,
}

impl HumanOutput {
    /// What pack prints on stdout (no colour): the text with each warning as a
    /// `Warning: <text>` line where it occurs; section errors are left out (they go to
    /// stderr).
    pub fn pack_stdout(&self) -> String {
        let mut out = String::new();
        for chunk in &self.chunks {
            match chunk {
                Chunk::Text(text) => out.push_str(text),
                Chunk::Warning(text) => {
                    out.push_str("Warning: ");
                    out.push_str(text);
                    out.push('\n');
                }
                Chunk::Error(_) => {}
            }
        }
        out
    }

    /// What pack prints on stderr: an `ERROR: <text>` line per section that failed.
    pub fn pack_stderr(&self) -> String {
        self.chunks
            .iter()
            .filter_map(|c| match c {
                Chunk::Error(text) => Some(format!("ERROR: {text}\n")),
                _ => None,
            })
            .collect()
    }

    /// The warnings, in order.
    pub fn warnings(&self) -> impl Iterator<Item = &str> {
        self.chunks.iter().filter_map(|c| match c {
            Chunk::Warning(text) => Some(text.as_str()),
            _ => None,
        })
    }

    fn text(&mut self, text: impl Into<String>) {
        self.chunks.push(Chunk::Text(text.into()));
    }
}

const NONE: &str = "(none)";

/// A value from the builder's labels (or the name the user gave) as one cell of the output:
/// a line feed or tab in it is shown escaped (`\u{a}`, `\u{9}`), so that it can neither
/// start a line of its own nor move the columns. The printer escapes every other control
/// character of the whole output; these two it keeps, since the layout is made of them.
fn field(value: &str) -> std::borrow::Cow<'_, str> {
    cnbx_fs::escape_controls(value, false)
}

/// Renders the human-readable output; fails like pack when neither side is present.
pub fn render(report: &InspectReport, options: &RenderOptions) -> Result<HumanOutput, RenderError> {
    if !report.remote.is_present() && !report.local.is_present() {
        return Err(RenderError::NotFound { name: report.builder_name.clone() });
    }
    let mut out = HumanOutput::default();
    let kind = if report.default { "default builder" } else { "builder" };
    out.text(format!("Inspecting {kind}: '{}'\n", field(&report.builder_name)));
    for (title, section) in [("REMOTE", &report.remote), ("LOCAL", &report.local)] {
        out.text(format!("\n{title}:\n"));
        match section {
            Section::Absent => out.text("(not present)\n"),
            Section::Error(message) => out.chunks.push(Chunk::Error(message.clone())),
            Section::Present(info) => match section_body(info, report, options) {
                Ok((body, warnings)) => {
                    out.text(body);
                    out.chunks.extend(warnings.into_iter().map(Chunk::Warning));
                }
                Err(e) => out.chunks.push(Chunk::Error(cnbx_fs::error_chain(&e))),
            },
        }
    }
    Ok(out)
}

/// The body of one section (pack's output template) and its warnings; an error when its
/// detection order is out of bounds.
fn section_body(
    info: &BuilderInfo,
    report: &InspectReport,
    options: &RenderOptions,
) -> Result<(String, Vec<String>), InspectError> {
    let name = &*field(&report.builder_name);
    let mut warnings = Vec::new();
    let run_images = run_images(info, options, name, &mut warnings);
    let detection_order = info.detection_order(options.depth)?;
    let order = tree("Detection Order:\n", &detection_order);
    if detection_order.is_empty() {
        warnings.push(format!("{name} has no buildpacks"));
        warnings.push("Users must build with explicitly specified buildpacks".to_owned());
    }
    let buildpacks = modules("Buildpacks:\n", &info.buildpacks);
    if info.buildpacks.is_empty() {
        warnings.push(format!("{name} has no buildpacks"));
        warnings.push("Users must supply buildpacks from the host machine".to_owned());
    }
    let lifecycle = lifecycle(info, name, &mut warnings);

    let mut out = String::from("\n");
    if !info.description.is_empty() {
        out.push_str(&format!("Description: {}\n\n", field(&info.description)));
    }
    if !info.created_by.name.is_empty() {
        out.push_str(&format!(
            "Created By:\n  Name: {}\n  Version: {}\n\n",
            field(&info.created_by.name),
            field(&info.created_by.version)
        ));
    }
    out.push_str(&format!("Trusted: {}\n\n", if report.trusted { "Yes" } else { "No" }));
    if !info.stack_id.is_empty() {
        out.push_str(&format!("Stack:\n  ID: {}", field(&info.stack_id)));
    }
    if options.verbose && !info.mixins.is_empty() {
        out.push_str("\n  Mixins:");
        for mixin in &info.mixins {
            out.push_str(&format!("\n    {}", field(mixin)));
        }
    }
    out.push('\n');
    for part in [lifecycle, run_images, buildpacks] {
        out.push_str(&part);
        out.push('\n');
    }
    out.push_str(&order);
    if let Some(extensions) = &info.extensions {
        out.push('\n');
        out.push_str(&modules("Extensions:\n", extensions));
        out.push('\n');
        out.push_str(&tree("Detection Order (Extensions):\n", &info.extension_detection_order()));
    }
    // cnbx's additions come last, and only when there is something to show, so that the
    // output for a builder without them stays pack's.
    if !info.system.is_empty() {
        out.push('\n');
        out.push_str(&system(info));
    }
    if !info.platforms.is_empty() {
        out.push('\n');
        out.push_str(&platforms(info));
    }
    Ok((out, warnings))
}

/// The system buildpacks (`[system]`), as written in the builder's label.
fn system(info: &BuilderInfo) -> String {
    let mut out = String::from("System Buildpacks:\n");
    for (title, refs) in [("Pre", &info.system.pre.buildpacks), ("Post", &info.system.post.buildpacks)] {
        out.push_str(&format!("  {title}:\n"));
        if refs.is_empty() {
            out.push_str(&format!("    {NONE}\n"));
            continue;
        }
        let mut rows = String::new();
        for r in refs {
            let optional = if r.optional { "(optional)" } else { "" };
            rows.push_str(&format!("    {}\t{optional}\n", field(&r.full_name())));
        }
        out.push_str(&tabwriter::strip_trailing_spaces(&tabwriter::format(&rows, 4)));
    }
    out
}

/// The platforms of a builder that is an image index, marking the one the section shows.
fn platforms(info: &BuilderInfo) -> String {
    let mut rows = String::new();
    for entry in &info.platforms {
        let shown = if entry.shown { "(shown above)" } else { "" };
        rows.push_str(&format!("  {}\t{}\t{shown}\n", field(&entry.platform), field(&entry.manifest)));
    }
    format!("Platforms:\n{}", tabwriter::strip_trailing_spaces(&tabwriter::format(&rows, 4)))
}

fn run_images(info: &BuilderInfo, options: &RenderOptions, name: &str, warnings: &mut Vec<String>) -> String {
    if info.run_images.is_empty() {
        warnings.push(format!("{name} does not specify a run image"));
        warnings.push("Users must build with an explicitly specified run image".to_owned());
    }
    let mut text = String::new();
    for row in inspect_run_images(&info.run_images, &options.user_run_images) {
        if row.user_configured {
            text.push_str(&format!("  {}\t(user-configured)\n", field(&row.name)));
        } else {
            text.push_str(&format!("  {}\n", field(&row.name)));
        }
    }
    let rows = tabwriter::format(&text, 4);
    if rows.is_empty() { format!("Run Images:\n  {NONE}\n") } else { format!("Run Images:\n{rows}") }
}

fn modules(title: &str, modules: &[ModuleInfo]) -> String {
    if modules.is_empty() {
        return format!("{title}  {NONE}\n");
    }
    let or_dash = |s: &str| if s.is_empty() { "-".to_owned() } else { field(s).into_owned() };
    let mut text = String::from("  ID\tNAME\tVERSION\tHOMEPAGE\n");
    for m in modules {
        text.push_str(&format!(
            "  {}\t{}\t{}\t{}\n",
            field(&m.id),
            or_dash(&m.name),
            field(&m.version),
            or_dash(&m.homepage)
        ));
    }
    format!("{title}{}", tabwriter::strip_trailing_spaces(&tabwriter::format(&text, 8)))
}

fn lifecycle(info: &BuilderInfo, name: &str, warnings: &mut Vec<String>) -> String {
    let apis = |list: &[ApiVersion]| {
        if list.is_empty() {
            NONE.to_owned()
        } else {
            list.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
        }
    };
    let lifecycle = &info.lifecycle;
    let version = lifecycle.version.as_ref().map_or_else(|| NONE.to_owned(), ToString::to_string);
    if lifecycle.version.is_none() {
        warnings.push(format!("{name} does not specify a Lifecycle version"));
    }
    if lifecycle.apis.buildpack.supported().is_empty() {
        warnings.push(format!("{name} does not specify supported Lifecycle Buildpack APIs"));
    }
    if lifecycle.apis.platform.supported().is_empty() {
        warnings.push(format!("{name} does not specify supported Lifecycle Platform APIs"));
    }
    format!(
        "\nLifecycle:\n  Version: {version}\n  Buildpack APIs:\n    Deprecated: {}\n    Supported: {}\n  Platform APIs:\n    Deprecated: {}\n    Supported: {}\n",
        apis(lifecycle.apis.buildpack.deprecated()),
        apis(lifecycle.apis.buildpack.supported()),
        apis(lifecycle.apis.platform.deprecated()),
        apis(lifecycle.apis.platform.supported()),
    )
}

const BRANCH: &str = " ├ ";
const LAST_BRANCH: &str = " └ ";
const TRUNK: &str = " │ ";
const BLANK: &str = "   ";

/// A detection-order tree (pack's `detectionOrderOutput`), aligned with padding 4 and
/// stripped of trailing spaces.
fn tree(title: &str, entries: &[DetectionEntry]) -> String {
    if entries.is_empty() {
        return format!("{title}  {NONE}\n");
    }
    let mut text = String::new();
    write_group(&mut text, entries, "");
    format!("{title}{}", tabwriter::strip_trailing_spaces(&tabwriter::format(&text, 4)))
}

fn write_group(out: &mut String, entries: &[DetectionEntry], prefix: &str) {
    let mut group = 0;
    for (i, entry) in entries.iter().enumerate() {
        let last = i + 1 == entries.len();
        out.push_str(prefix);
        out.push_str(if last { LAST_BRANCH } else { BRANCH });
        let entry_prefix = format!("{prefix}{}", if last { BLANK } else { TRUNK });
        if entry.children.is_empty() {
            write_module(out, entry);
            continue;
        }
        let mut group_prefix = entry_prefix.clone();
        if !entry.module.info.id.is_empty() {
            write_module(out, entry);
            out.push_str(&entry_prefix);
            out.push_str(LAST_BRANCH);
            group_prefix.push_str(BLANK);
        }
        group += 1;
        out.push_str(&format!("Group #{group}:\n"));
        write_group(out, &entry.children, &group_prefix);
    }
}

fn write_module(out: &mut String, entry: &DetectionEntry) {
    out.push_str(&field(&entry.module.full_name()));
    out.push('\t');
    if entry.module.optional {
        out.push_str("(optional)");
    }
    if entry.cyclic {
        out.push_str("[cyclic]");
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use cnbx_model::ModuleRef;

    fn leaf(id: &str, version: &str, optional: bool, cyclic: bool) -> DetectionEntry {
        let mut module = ModuleRef::new(id, version);
        module.optional = optional;
        DetectionEntry { module, cyclic, children: vec![] }
    }

    fn node(id: &str, version: &str, children: Vec<DetectionEntry>) -> DetectionEntry {
        DetectionEntry { module: ModuleRef::new(id, version), cyclic: false, children }
    }

    /// A synthetic example with every section filled in.
    #[test]
    fn tree_matches_reference_example() {
        let entries = vec![
            node(
                "",
                "",
                vec![
                    node("meta/a", "1.0", vec![leaf("x/one", "1", false, false), leaf("x/two", "2", true, false)]),
                    node("meta/a", "1.0", vec![leaf("x/three", "3", false, false)]),
                    leaf("plain/bp", "0.0.1", true, false),
                ],
            ),
            node("", "", vec![leaf("solo", "9", false, false), leaf("meta/a", "1.0", false, true)]),
        ];
        let expected = "Detection Order:
 ├ Group #1:
 │  ├ meta/a@1.0
 │  │  └ Group #1:
 │  │     ├ x/one@1
 │  │     └ x/two@2    (optional)
 │  ├ meta/a@1.0
 │  │  └ Group #2:
 │  │     └ x/three@3
 │  └ plain/bp@0.0.1     (optional)
 └ Group #2:
    ├ solo@9
    └ meta/a@1.0    [cyclic]
";
        assert_eq!(tree("Detection Order:\n", &entries), expected);
    }

    #[test]
    fn system_and_platform_rows_escape_control_characters() {
        let mut info = BuilderInfo::default();
        info.system.post.buildpacks.push(ModuleRef::new("evil\u{1b}[2J", "1\n2"));
        info.platforms.push(super::super::IndexEntry {
            platform: "linux/\ramd64".into(),
            manifest: "sha256:x".into(),
            shown: true,
        });
        let text = format!("{}{}", system(&info), platforms(&info));
        assert!(!text.chars().any(|c| c.is_control() && c != '\n'), "{text:?}");
        assert!(text.contains("evil\\u{1b}[2J@1\\u{a}2"), "{text}");
        assert!(text.contains("linux/\\u{d}amd64"), "{text}");
    }

    #[test]
    fn markers_and_empty_tree() {
        assert_eq!(tree("T:\n", &[]), "T:\n  (none)\n");
        let entries = vec![leaf("a", "", true, true), leaf("", "", false, false)];
        assert_eq!(tree("T:\n", &entries), "T:\n ├ a    (optional)[cyclic]\n └\n");
    }
}
