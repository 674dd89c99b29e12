//! The document behind `--output json|yaml|toml` (pack's `writer/structured_format.go`), as
//! a [`Node`] tree that each format's Go-compatible encoder ([`crate::gocompat`]) writes.

use cnbx_model::{ApiVersion, ApiVersions, ModuleInfo, ModuleRef};
use cnbx_refs::mirrors::{RunImageRow, inspect_run_images};

use super::model::{BuilderInfo, DetectionEntry, InspectError};
use super::{InspectReport, RenderError, RenderOptions, Section};
use crate::gocompat::{self, Node};

/// Which Go serializer the document is for; they disagree on a few details.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavor {
    /// `encoding/json`.
    Json,
    /// `gopkg.in/yaml.v3`.
    Yaml,
    /// `github.com/pelletier/go-toml` v1.
    Toml,
}

impl Node {
    fn strings<'a>(items: impl IntoIterator<Item = &'a String>) -> Self {
        Self::List { items: items.into_iter().map(|s| Self::Str(s.clone())).collect(), nil: false, tables: false }
    }

    fn apis(list: Option<&[ApiVersion]>) -> Self {
        Self::List {
            items: list.unwrap_or_default().iter().map(|v| Self::Str(v.to_string())).collect(),
            nil: list.is_none(),
            tables: false,
        }
    }

    /// A slice of structs; an empty one is Go's nil slice when `nil_when_empty`.
    fn tables(items: Vec<Node>, nil_when_empty: bool) -> Self {
        let nil = nil_when_empty && items.is_empty();
        Self::List { items, nil, tables: true }
    }
}

/// Builds the document, or pack's error: a local error first, then a remote one, then
/// "not found" when neither side is present.
pub(crate) fn document(report: &InspectReport, options: &RenderOptions, flavor: Flavor) -> Result<Node, RenderError> {
    for section in [&report.local, &report.remote] {
        if let Section::Error(message) = section {
            return Err(RenderError::Preparing { name: report.builder_name.clone(), message: message.clone() });
        }
    }
    if !report.remote.is_present() && !report.local.is_present() {
        return Err(RenderError::NotFound { name: report.builder_name.clone() });
    }
    let side = |section: &Section| match section {
        Section::Present(info) => info_node(info, options, flavor).map(Some).map_err(|e| RenderError::Preparing {
            name: report.builder_name.clone(),
            message: cnbx_fs::error_chain(&e),
        }),
        Section::Absent | Section::Error(_) => Ok(None),
    };
    let (local, remote) = (side(&report.local)?, side(&report.remote)?);
    let shared = vec![
        ("builder_name", Node::Str(report.builder_name.clone())),
        ("trusted", Node::Bool(report.trusted)),
        ("default", Node::Bool(report.default)),
    ];
    let mut doc = match flavor {
        Flavor::Yaml => vec![("sharedbuilderinfo", Node::Map(shared))],
        Flavor::Json | Flavor::Toml => shared,
    };
    for (key, side) in [("remote_info", remote), ("local_info", local)] {
        match (side, flavor) {
            (Some(node), _) => doc.push((key, node)),
            (None, Flavor::Toml) => {}
            (None, Flavor::Json | Flavor::Yaml) => doc.push((key, Node::Null)),
        }
    }
    Ok(Node::Map(doc))
}

/// One side's document; an error when its detection order is out of bounds.
fn info_node(info: &BuilderInfo, options: &RenderOptions, flavor: Flavor) -> Result<Node, InspectError> {
    let mut m = Vec::new();
    if !info.description.is_empty() {
        m.push(("description", Node::Str(info.description.clone())));
    }
    let (name_key, version_key) = if flavor == Flavor::Toml { ("Name", "Version") } else { ("name", "version") };
    m.push((
        "created_by",
        Node::Map(vec![
            (name_key, Node::Str(info.created_by.name.clone())),
            (version_key, Node::Str(info.created_by.version.clone())),
        ]),
    ));
    if !info.stack_id.is_empty() {
        let mut stack = vec![("id", Node::Str(info.stack_id.clone()))];
        if options.verbose && !info.mixins.is_empty() {
            stack.push(("mixins", Node::strings(&info.mixins)));
        }
        m.push(("stack", Node::Map(stack)));
    }
    m.push(("lifecycle", lifecycle_node(info, flavor)));
    let run_images = run_image_rows(info, options)
        .into_iter()
        .map(|row| {
            let mut fields = vec![("name", Node::Str(row.name))];
            if row.user_configured {
                fields.push(("user_configured", Node::Bool(true)));
            }
            Node::Map(fields)
        })
        .collect();
    m.push(("run_images", Node::tables(run_images, false)));
    m.push(("buildpacks", Node::tables(info.buildpacks.iter().map(|b| module_node(b, flavor)).collect(), true)));
    let order = info.detection_order(options.depth)?.iter().map(|e| detection_node(e, flavor)).collect();
    m.push(("detection_order", Node::tables(order, true)));
    if let Some(extensions) = info.extensions.as_ref().filter(|e| !e.is_empty()) {
        m.push(("extensions", Node::tables(extensions.iter().map(|e| module_node(e, flavor)).collect(), false)));
    }
    let order_extensions: Vec<Node> =
        info.extension_detection_order().iter().map(|e| detection_node(e, flavor)).collect();
    if !order_extensions.is_empty() {
        m.push(("order_extensions", Node::tables(order_extensions, false)));
    }
    // cnbx's additions, last and only when there is something to show (pack's document
    // otherwise).
    if !info.system.is_empty() {
        let side = |refs: &[ModuleRef]| {
            let nodes = refs
                .iter()
                .map(|r| {
                    let mut fields = module_fields(&r.info, flavor);
                    if r.optional {
                        fields.push(("optional", Node::Bool(true)));
                    }
                    Node::Map(fields)
                })
                .collect();
            Node::tables(nodes, false)
        };
        m.push((
            "system_buildpacks",
            Node::Map(vec![("pre", side(&info.system.pre.buildpacks)), ("post", side(&info.system.post.buildpacks))]),
        ));
    }
    if !info.platforms.is_empty() {
        let platforms = info
            .platforms
            .iter()
            .map(|p| {
                let mut fields =
                    vec![("platform", Node::Str(p.platform.clone())), ("manifest", Node::Str(p.manifest.clone()))];
                if p.shown {
                    fields.push(("shown", Node::Bool(true)));
                }
                Node::Map(fields)
            })
            .collect();
        m.push(("platforms", Node::tables(platforms, false)));
    }
    Ok(Node::Map(m))
}

fn lifecycle_node(info: &BuilderInfo, flavor: Flavor) -> Node {
    let lifecycle = &info.lifecycle;
    let mut m = Vec::new();
    match (&lifecycle.version, flavor) {
        // encoding/json uses the semver type's MarshalJSON (normalised); yaml.v3 and go-toml
        // use pack's MarshalText (the original string); go-toml drops nil pointers.
        (Some(version), Flavor::Json) => m.push(("version", Node::Str(version.to_string()))),
        (Some(version), Flavor::Yaml | Flavor::Toml) => m.push(("version", Node::Str(version.original().to_owned()))),
        (None, Flavor::Json | Flavor::Yaml) => m.push(("version", Node::Null)),
        (None, Flavor::Toml) => {}
    }
    let apis = |v: &ApiVersions| {
        Node::Map(vec![
            ("deprecated", Node::apis(v.deprecated.as_deref())),
            ("supported", Node::apis(v.supported.as_deref())),
        ])
    };
    m.push(("buildpack_apis", apis(&lifecycle.apis.buildpack)));
    m.push(("platform_apis", apis(&lifecycle.apis.platform)));
    Node::Map(m)
}

/// The "Run Images" rows of the structured formats: like the human output (the refs crate's
/// [`inspect_run_images`]), except that pack's structured writer also lists a run image
/// whose name is empty.
fn run_image_rows(info: &BuilderInfo, options: &RenderOptions) -> Vec<RunImageRow> {
    let mut rows: Vec<RunImageRow> = inspect_run_images(&info.run_images, &options.user_run_images)
        .into_iter()
        .filter(|row| row.user_configured)
        .collect();
    for run_image in &info.run_images {
        rows.push(RunImageRow { name: run_image.image.clone(), user_configured: false });
        rows.extend(run_image.mirror_list().iter().map(|m| RunImageRow { name: m.clone(), user_configured: false }));
    }
    rows
}

fn module_fields(info: &ModuleInfo, flavor: Flavor) -> Vec<(&'static str, Node)> {
    let mut m = Vec::new();
    for (key, value) in [
        ("id", &info.id),
        ("name", &info.name),
        ("version", &info.version),
        ("description", &info.description),
        ("homepage", &info.homepage),
    ] {
        if !value.is_empty() {
            m.push((key, Node::Str(value.clone())));
        }
    }
    if !info.keywords.is_empty() {
        m.push(("keywords", Node::strings(&info.keywords)));
    }
    if !info.exec_env.is_empty() {
        m.push(("exec-env", Node::strings(&info.exec_env)));
    }
    if !info.licenses.is_empty() {
        // pack's License has no json tags (Go field names) but toml tags; yaml.v3 lower-cases.
        let (type_key, uri_key) = if flavor == Flavor::Json { ("Type", "URI") } else { ("type", "uri") };
        let licenses = info
            .licenses
            .iter()
            .map(|l| Node::Map(vec![(type_key, Node::Str(l.kind.clone())), (uri_key, Node::Str(l.uri.clone()))]))
            .collect();
        m.push(("licenses", Node::tables(licenses, false)));
    }
    if info.clear_env {
        m.push(("clear-env", Node::Bool(true)));
    }
    m
}

fn module_node(info: &ModuleInfo, flavor: Flavor) -> Node {
    Node::Map(module_fields(info, flavor))
}

fn detection_node(entry: &DetectionEntry, flavor: Flavor) -> Node {
    let mut m = module_fields(&entry.module.info, flavor);
    if entry.module.optional {
        m.push(("optional", Node::Bool(true)));
    }
    if entry.cyclic {
        m.push(("cyclic", Node::Bool(true)));
    }
    if !entry.children.is_empty() {
        m.push(("buildpacks", Node::tables(entry.children.iter().map(|c| detection_node(c, flavor)).collect(), false)));
    }
    Node::Map(m)
}

/// `--output json`: Go's `json.Marshal` of the document, re-indented with two spaces
/// (`json.Indent`), with the trailing newline pack's logger adds.
pub fn json(report: &InspectReport, options: &RenderOptions) -> Result<String, RenderError> {
    let doc = document(report, options, Flavor::Json)?;
    let mut out = gocompat::json::to_string_indent(&doc).map_err(RenderError::Marshal)?;
    out.push('\n');
    Ok(out)
}

/// `--output yaml`: what `gopkg.in/yaml.v3` writes for the document (with its trailing
/// newline).
pub fn yaml(report: &InspectReport, options: &RenderOptions) -> Result<String, RenderError> {
    Ok(gocompat::yaml::to_yaml(&document(report, options, Flavor::Yaml)?))
}

/// `--output toml`: what `github.com/pelletier/go-toml` v1 writes for the document.
pub fn toml(report: &InspectReport, options: &RenderOptions) -> Result<String, RenderError> {
    Ok(gocompat::go_toml::to_toml(&document(report, options, Flavor::Toml)?))
}
