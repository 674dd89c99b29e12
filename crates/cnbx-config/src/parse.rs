//! Reading builder.toml: decode, unknown keys, legacy merge, `[[build.env]]` (docs/pack-compatibility.md, *builder.toml*).

use std::collections::{BTreeMap, HashSet};
use std::ops::Range;
use std::path::{Component, Path, PathBuf};

use cnbx_fs::excerpt;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::error::{ConfigError, Label, LineCounter, MAX_LISTED_KEYS, UnknownKey, line_col, render_snippet};
use cnbx_model::RunImage;

use crate::model::{BuildEnv, BuilderConfig};
use crate::schema::known_keys;

/// The warning pack prints for a `[[buildpacks]]`/`[[extensions]]` entry with `image` but no `uri`.
pub const IMAGE_KEY_DEPRECATED: &str = "The 'image' key is deprecated. Use 'uri=\"docker://...\"' instead.";

/// A builder.toml that was read, decoded and merged, with everything needed for messages.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LoadedConfig {
    /// The decoded configuration, after the legacy `[stack]` merge.
    pub config: BuilderConfig,
    /// The path as given (lexically cleaned), for messages.
    pub path: PathBuf,
    /// The absolute directory of the file (pack's `relativeBaseDir`).
    pub base_dir: PathBuf,
    /// pack's warnings in pack's order, without the `Warning: ` prefix.
    pub warnings: Vec<String>,
    /// `[[build.env]]` as files for `/cnb/build-config/env/`: file name (`NAME`, `NAME.append`,
    /// `NAME.delim`, …) → content.
    pub build_env: BTreeMap<String, String>,
    /// The file's text.
    pub source: String,
}

/// Reads and parses a builder.toml (see [`parse_bytes`]). A missing file is named in the error.
///
/// builder.toml often comes from a repository someone else controls, so it is read like
/// every other input: opened once, without following a symbolic link (a link to
/// `/etc/shadow` or `/proc/self/environ` must not be read, let alone quoted in an error),
/// refused unless it is a regular file (a FIFO or `/dev/zero` would block or never end),
/// and at most [`cnbx_fs::limits::MAX_CONFIG_FILE`] bytes.
///
/// Two spellings, which only the command line's author can write, read something else (see
/// [`cnbx_fs::read_bounded_named`]), within the same bound: `-` is standard input (named
/// `<stdin>` in messages), and `/dev/fd/N` (or `/proc/self/fd/N`, `/dev/stdin`) a pipe the
/// shell opened, as `--config <(envsubst < builder.toml)` passes it; a descriptor that is
/// not a pipe is refused. Relative paths in such a file resolve against the current
/// directory, since it has no directory of its own.
pub fn load(path: &Path) -> Result<LoadedConfig, ConfigError> {
    let named = cnbx_fs::Named::of(path);
    let cleaned = match named {
        cnbx_fs::Named::StandardInput => PathBuf::from("<stdin>"),
        _ => clean_path(path),
    };
    let (limit, kind) = (cnbx_fs::limits::MAX_CONFIG_FILE, "a builder.toml");
    let read = match named {
        // The cleaned path: `./-` is a file named `-`, not standard input.
        cnbx_fs::Named::File => cnbx_fs::read_bounded(&cleaned, limit, kind),
        cnbx_fs::Named::StandardInput | cnbx_fs::Named::Descriptor => cnbx_fs::read_bounded_named(path, limit, kind),
    };
    let bytes = read.map_err(|e| {
        let path = cleaned.clone();
        match e {
            cnbx_fs::FsError::Io { source, .. } => ConfigError::Open { path, source },
            cnbx_fs::FsError::NotRegular { what, .. } => ConfigError::NotRegular { path, what },
            cnbx_fs::FsError::TooLarge { limit, .. } => ConfigError::TooLarge { path, limit },
            cnbx_fs::FsError::Changed { .. } => {
                ConfigError::Open { path, source: std::io::Error::other("the file changed while it was read") }
            }
        }
    })?;
    let source = cnbx_fs::text_of(&bytes).map_err(|reason| ConfigError::NotText { path: cleaned.clone(), reason })?;
    let base_dir = match named {
        cnbx_fs::Named::File => absolute_dir(&cleaned),
        cnbx_fs::Named::StandardInput | cnbx_fs::Named::Descriptor => current_dir(),
    };
    parse_in(source, cleaned, base_dir)
}

/// Parses the bytes of a builder.toml as if read from `path`: they must be text (UTF-8
/// without control characters other than tab, as TOML requires), then see [`parse_str`].
/// Nothing of a file that is not text is quoted in the error.
pub fn parse_bytes(bytes: &[u8], path: &Path) -> Result<LoadedConfig, ConfigError> {
    let source = cnbx_fs::text_of(bytes).map_err(|reason| ConfigError::NotText { path: clean_path(path), reason })?;
    parse_str(source, path)
}

/// Parses builder.toml text as if read from `path`; `base_dir` is the absolute parent of `path`.
///
/// Messages quote the text only as excerpts ([`cnbx_fs::excerpt`]), and not at all when it
/// holds a control character other than tab (which TOML forbids anyway).
pub fn parse_str(source: &str, path: &Path) -> Result<LoadedConfig, ConfigError> {
    let path = clean_path(path);
    let base_dir = absolute_dir(&path);
    parse_in(source, path, base_dir)
}

/// [`parse_str`] with the directory relative paths resolve against.
fn parse_in(source: &str, path: PathBuf, base_dir: PathBuf) -> Result<LoadedConfig, ConfigError> {
    cnbx_fs::check_text(source).map_err(|reason| ConfigError::NotText { path: path.clone(), reason })?;
    let display = path.display().to_string();
    let mut doc = DeTable::parse(source).map_err(|e| toml_error(&path, source, None, &e))?;
    fold_key_case(doc.get_mut(), "");

    let mut ignored: Vec<Vec<Seg>> = Vec::new();
    let deserializer = toml::de::Deserializer::from(doc.clone());
    let mut config: BuilderConfig = serde_ignored::deserialize(deserializer, |p| ignored.push(segments(&p)))
        .map_err(|e| toml_error(&path, source, Some(doc.get_ref()), &e))?;
    if !ignored.is_empty() {
        return Err(unknown_keys_error(&path, source, doc.get_ref(), &ignored));
    }

    let mut warnings = Vec::new();
    if config.order.as_deref().unwrap_or_default().is_empty() {
        warnings.push("builder configuration: empty 'order' definition".to_string());
    }
    let stack_mirrors_present =
        lookup(doc.get_ref(), &[Seg::Key("stack".into()), Seg::Key("run-image-mirrors".into())]).is_some();
    merge_stack(&mut config, stack_mirrors_present);

    let build_env = build_env_files(&config.build.env, &display, source, doc.get_ref(), &mut warnings)
        .map_err(|e| e.into_error(&path))?;

    for (table, modules) in [("buildpacks", &config.buildpacks), ("extensions", &config.extensions)] {
        for (i, module) in modules.iter().enumerate() {
            let uri = lookup(doc.get_ref(), &[Seg::Key(table.into()), Seg::Index(i), Seg::Key("uri".into())]);
            let uri_empty = uri.and_then(|v| v.get_ref().as_str()).is_none_or(str::is_empty);
            if uri_empty && !module.image.is_empty() {
                warnings.push(IMAGE_KEY_DEPRECATED.to_string());
            }
        }
    }

    Ok(LoadedConfig { config, path, base_dir, warnings, build_env, source: source.to_string() })
}

/// RFC-0096: `[build]`/`[[run.images]]` win over the legacy `[stack]` keys, which are filled in.
fn merge_stack(config: &mut BuilderConfig, stack_mirrors_present: bool) {
    if !config.build.image.is_empty() {
        config.stack.build_image = config.build.image.clone();
    } else if !config.stack.build_image.is_empty() {
        config.build.image = config.stack.build_image.clone();
    }
    if let Some(first) = config.run.images.first() {
        config.stack.run_image = first.image.clone();
        config.stack.run_image_mirrors = first.mirrors.clone().unwrap_or_default();
    } else if !config.stack.run_image.is_empty() {
        config.run.images = vec![RunImage {
            image: config.stack.run_image.clone(),
            mirrors: stack_mirrors_present.then(|| config.stack.run_image_mirrors.clone()),
        }];
    }
}

impl LoadedConfig {
    /// pack's `ValidateConfig`. Errors read `invalid builder config: …` and their
    /// [`ConfigError::diagnostic`] says which key to add.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let c = &self.config;
        let file = self.path.display();
        if c.build.image.is_empty() && c.stack.build_image.is_empty() {
            return Err(invalid(
                "build.image is required",
                format!("help: add the build base image to {file}:\n\n[build]\nimage = \"<build image>\""),
            ));
        }
        if !c.build.image.is_empty() && !c.stack.build_image.is_empty() && c.build.image != c.stack.build_image {
            return Err(invalid(
                "build.image and stack.build-image do not match",
                format!("help: remove [stack] build-image from {file}; [build] image replaces it"),
            ));
        }
        if c.run.images.is_empty() && (c.stack.run_image.is_empty() || c.stack.id.is_empty()) {
            return Err(invalid(
                "run.images are required",
                format!("help: add a run image to {file}:\n\n[[run.images]]\nimage = \"<run image>\""),
            ));
        }
        let doc = self.document();
        let span_of = |path: &[Seg]| doc.as_ref().and_then(|doc| lookup(doc.get_ref(), path)).map(Spanned::span);
        for (i, run_image) in c.run.images.iter().enumerate() {
            if run_image.image.is_empty() {
                let help = "help: set image = \"<run image>\" in this [[run.images]] entry";
                let span = span_of(&[Seg::Key("run".into()), Seg::Key("images".into()), Seg::Index(i)]);
                return Err(ConfigError::Invalid {
                    message: "run.images.image is required".to_string(),
                    diagnostic: self.snippet(span, "no `image`", help),
                });
            }
        }
        if !c.stack.run_image.is_empty() && c.run.images.first().is_none_or(|r| r.image != c.stack.run_image) {
            return Err(invalid(
                "run.images and stack.run-image do not match",
                format!("help: remove [stack] run-image from {file}; [[run.images]] replaces it"),
            ));
        }
        for (i, target) in c.targets.iter().enumerate() {
            let missing = match (target.os.is_empty(), target.arch.is_empty()) {
                (true, true) => "no `os` and no `arch`",
                (true, false) => "no `os`",
                (false, true) => "no `arch`",
                (false, false) => continue,
            };
            let span = span_of(&[Seg::Key("targets".into()), Seg::Index(i)]);
            let line = span.as_ref().map_or(0, |s| line_col(&self.source, s.start).0);
            let place = if line == 0 { format!("{file}") } else { format!("{file}, line {line}") };
            return Err(ConfigError::Invalid {
                message: format!("[[targets]] entry {} ({place}) has {missing}", i + 1),
                diagnostic: self.snippet(
                    span,
                    missing,
                    "help: each [[targets]] entry names a platform with both keys, e.g. os = \"linux\" and arch = \"amd64\" or \"arm64\"",
                ),
            });
        }
        Ok(())
    }

    /// Checks every run image and run-image mirror (`[[run.images]]`, or the legacy
    /// `[stack]` `run-image` and `run-image-mirrors`) with `check`, which says why a name is
    /// not an image name. The first that is not is an error naming it, the file and the
    /// line, before any image is fetched; pack cannot parse such a name either. (Run images
    /// that are empty are [`LoadedConfig::validate`]'s error.)
    pub fn check_run_image_names(&self, check: impl Fn(&str) -> Result<(), String>) -> Result<(), ConfigError> {
        let doc = self.document();
        let root = doc.as_ref().map(Spanned::get_ref);
        let from_run_table =
            root.is_some_and(|r| lookup(r, &[Seg::Key("run".into()), Seg::Key("images".into())]).is_some());
        for (i, run) in self.config.run.images.iter().enumerate() {
            let (image_path, mirrors_path) = if from_run_table {
                let entry = vec![Seg::Key("run".into()), Seg::Key("images".into()), Seg::Index(i)];
                let key = |k: &str| [entry.clone(), vec![Seg::Key(k.into())]].concat();
                (key("image"), key("mirrors"))
            } else {
                (
                    vec![Seg::Key("stack".into()), Seg::Key("run-image".into())],
                    vec![Seg::Key("stack".into()), Seg::Key("run-image-mirrors".into())],
                )
            };
            let mut names = Vec::new();
            if !run.image.is_empty() {
                names.push((run.image.as_str(), format!("run image '{}'", excerpt(&run.image)), image_path));
            }
            for (j, mirror) in run.mirrors.iter().flatten().enumerate() {
                let path = [mirrors_path.clone(), vec![Seg::Index(j)]].concat();
                let subject = format!("mirror '{}' of run image '{}'", excerpt(mirror), excerpt(&run.image));
                names.push((mirror.as_str(), subject, path));
            }
            for (name, subject, path) in names {
                let Err(reason) = check(name) else { continue };
                let span = root.and_then(|r| lookup(r, &path)).map(Spanned::span);
                let line = span.as_ref().map_or(0, |s| line_col(&self.source, s.start).0);
                let help = "help: write a registry image name, [REGISTRY/]REPOSITORY[:TAG][@DIGEST]";
                return Err(ConfigError::RunImageName {
                    path: self.path.clone(),
                    line,
                    subject,
                    reason,
                    diagnostic: self.snippet(span, "not a registry image name", help),
                });
            }
        }
        Ok(())
    }

    /// The file's document with keys in their canonical case, for spans; `None` if it does
    /// not parse (only possible for a hand-built value).
    fn document(&self) -> Option<Spanned<DeTable<'_>>> {
        let mut doc = DeTable::parse(&self.source).ok()?;
        fold_key_case(doc.get_mut(), "");
        Some(doc)
    }

    /// A snippet labelling `span` (when known) followed by `help`.
    fn snippet(&self, span: Option<Range<usize>>, label: &str, help: &str) -> Option<String> {
        Some(match span {
            Some(span) => {
                let display = self.path.display().to_string();
                format!("{}\n{help}", render_snippet(&display, &self.source, &[Label { span, text: label }]))
            }
            None => help.to_string(),
        })
    }

    /// `relative` resolved against [`LoadedConfig::base_dir`] (absolute paths are kept), lexically
    /// cleaned; nothing is looked up on disk.
    pub fn resolve_path(&self, relative: &str) -> PathBuf {
        clean_path(&self.base_dir.join(relative))
    }
}

fn invalid(message: &str, help: String) -> ConfigError {
    ConfigError::Invalid { message: message.to_string(), diagnostic: Some(help) }
}

/// Go's `filepath.Clean`, lexically: drops `.`, folds `a/..`, keeps leading `..`, `""` → `.`.
pub(crate) fn clean_path(path: &Path) -> PathBuf {
    let mut out: Vec<Component<'_>> = Vec::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => match out.last() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir | Component::Prefix(_)) => {}
                _ => out.push(component),
            },
            other => out.push(other),
        }
    }
    if out.is_empty() {
        return PathBuf::from(".");
    }
    out.iter().collect()
}

fn absolute_dir(path: &Path) -> PathBuf {
    let parent = path.parent().unwrap_or(Path::new(""));
    if parent.is_absolute() {
        return clean_path(parent);
    }
    clean_path(&current_dir().join(parent))
}

/// The current directory (`.` when it cannot be read).
fn current_dir() -> PathBuf {
    std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."))
}

/// BurntSushi/toml matches struct fields case-insensitively when there is no exact match, so
/// pack accepts `URI = "x"` or `Build-Image = "x"`. Renames such keys to their canonical
/// spelling (unless the canonical key is also present).
fn fold_key_case(table: &mut DeTable<'_>, parent: &str) {
    let known = known_keys(parent);
    let needs_rename = |k: &str, table: &DeTable<'_>| -> Option<&'static str> {
        if known.iter().any(|c| c == k) {
            return None;
        }
        known.iter().find(|c| c.eq_ignore_ascii_case(k) && !table.contains_key(c.as_str())).map(String::as_str)
    };
    let renames: Vec<Option<&'static str>> = table.keys().map(|k| needs_rename(k.get_ref(), table)).collect();
    if renames.iter().any(Option::is_some) {
        let old = std::mem::take(table);
        for ((key, value), rename) in old.into_iter().zip(renames) {
            match rename {
                Some(canonical) => {
                    table.insert(Spanned::new(key.span(), canonical.into()), value);
                }
                None => {
                    table.insert(key, value);
                }
            }
        }
    }
    for (key, value) in table.iter_mut() {
        let child = if parent.is_empty() { key.get_ref().to_string() } else { format!("{parent}.{}", key.get_ref()) };
        match value.get_mut() {
            DeValue::Table(t) => fold_key_case(t, &child),
            DeValue::Array(a) => {
                for item in a.iter_mut() {
                    if let DeValue::Table(t) = item.get_mut() {
                        fold_key_case(t, &child);
                    }
                }
            }
            _ => {}
        }
    }
}

// ---------------------------------------------------------------------------------------------
// TOML errors

fn toml_error(path: &Path, source: &str, root: Option<&DeTable<'_>>, err: &toml::de::Error) -> ConfigError {
    // The parser's messages quote the file ("invalid type: string \"…\""): only excerpts.
    let message = cnbx_fs::excerpt_quoted(err.message().trim_end());
    let span = err.span();
    let (line, column) = span.as_ref().map_or((1, 1), |s| line_col(source, s.start));
    let diagnostic = span.map(|span| {
        let label = message.lines().next().unwrap_or_default().to_string();
        let mut out =
            render_snippet(&path.display().to_string(), source, &[Label { span: span.clone(), text: &label }]);
        if message.starts_with("invalid type") || message.starts_with("invalid value") {
            let key = root.and_then(|root| cnbx_model::key_at(root, &span, ""));
            let expected = message.lines().next().and_then(|l| l.rsplit_once(", expected ")).map(|(_, e)| match e {
                "a sequence" => "an array",
                "a map" => "a table",
                e if e.starts_with("struct ") => "a table",
                e => e,
            });
            match (key, expected) {
                (Some(key), Some(expected)) => {
                    out.push_str(&format!("\nhelp: '{}' must be {expected}", excerpt(&key)));
                }
                _ => out.push_str("\nhelp: check the type of this value against the builder.toml schema"),
            }
        }
        out
    });
    ConfigError::Toml { path: path.to_path_buf(), message, line, column, diagnostic }
}

// ---------------------------------------------------------------------------------------------
// Unknown keys

/// A step of a serde path: a table key or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Key(String),
    Index(usize),
}

fn segments(path: &serde_ignored::Path<'_>) -> Vec<Seg> {
    use serde_ignored::Path as P;
    match path {
        P::Root => Vec::new(),
        P::Seq { parent, index } => {
            let mut v = segments(parent);
            v.push(Seg::Index(*index));
            v
        }
        P::Map { parent, key } => {
            let mut v = segments(parent);
            v.push(Seg::Key(key.clone()));
            v
        }
        P::Some { parent } | P::NewtypeStruct { parent } | P::NewtypeVariant { parent } => segments(parent),
    }
}

/// The value at `path` in the document.
fn lookup<'a, 'i>(root: &'a DeTable<'i>, path: &[Seg]) -> Option<&'a Spanned<DeValue<'i>>> {
    let (first, rest) = path.split_first()?;
    let Seg::Key(key) = first else { return None };
    let mut current = root.get(key.as_str())?;
    for seg in rest {
        current = match (seg, current.get_ref()) {
            (Seg::Key(k), DeValue::Table(t)) => t.get(k.as_str())?,
            (Seg::Index(i), DeValue::Array(a)) => a.get(*i)?,
            _ => return None,
        };
    }
    Some(current)
}

/// The key (with its span) for `path`, whose last segment must be a key.
fn lookup_key<'a, 'i>(root: &'a DeTable<'i>, path: &[Seg]) -> Option<(Range<usize>, &'a Spanned<DeValue<'i>>)> {
    let (last, parent) = path.split_last()?;
    let Seg::Key(key) = last else { return None };
    let table = if parent.is_empty() {
        root
    } else {
        match lookup(root, parent)?.get_ref() {
            DeValue::Table(t) => t,
            _ => return None,
        }
    };
    table.get_key_value(key.as_str()).map(|(k, v)| (k.span(), v))
}

/// Adds `name` and, BurntSushi-style, every key nested in `value` (array indices dropped).
fn expand_keys(name: &str, key_span: Range<usize>, value: &DeValue<'_>, out: &mut Vec<(String, Range<usize>)>) {
    out.push((name.to_string(), key_span));
    let tables: Vec<&DeTable<'_>> = match value {
        DeValue::Table(t) => vec![t],
        DeValue::Array(a) => a
            .iter()
            .filter_map(|v| match v.get_ref() {
                DeValue::Table(t) => Some(t),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    for table in tables {
        for (k, v) in table.iter() {
            expand_keys(&format!("{name}.{}", k.get_ref()), k.span(), v.get_ref(), out);
        }
    }
}

fn unknown_keys_error(path: &Path, source: &str, root: &DeTable<'_>, ignored: &[Vec<Seg>]) -> ConfigError {
    let mut found: Vec<(String, Range<usize>)> = Vec::new();
    for segs in ignored {
        let name = segs
            .iter()
            .filter_map(|s| if let Seg::Key(k) = s { Some(k.as_str()) } else { None })
            .collect::<Vec<_>>()
            .join(".");
        match lookup_key(root, segs) {
            Some((span, value)) => expand_keys(&name, span, value.get_ref(), &mut found),
            None => found.push((name, usize::MAX..usize::MAX)),
        }
    }
    // File order (stable for keys that could not be located), first occurrence of each name.
    found.sort_by_key(|(_, span)| span.start);
    let mut listed: Vec<(String, Range<usize>)> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    for (name, span) in found {
        let parent = name.split('.').next().unwrap_or_default();
        if seen.contains(parent) || seen.contains(&name) {
            continue;
        }
        seen.insert(name.clone());
        listed.push((name, span));
    }

    let display = path.display().to_string();
    let mut lines = LineCounter::new(source);
    let mut keys = Vec::new();
    let mut snippets = Vec::new();
    let mut helps = Vec::new();
    for (n, (name, span)) in listed.iter().enumerate() {
        let (parent, leaf) = name.rsplit_once('.').unwrap_or(("", name.as_str()));
        let suggestion = suggest(leaf, known_keys(parent));
        let (line, column) = if span.start == usize::MAX { (0, 0) } else { lines.at(span.start) };
        let full_suggestion =
            suggestion.map(|s| if parent.is_empty() { s.to_string() } else { format!("{parent}.{s}") });
        keys.push(UnknownKey { key: name.clone(), line, column, suggestion: full_suggestion.clone() });
        if n >= MAX_LISTED_KEYS {
            continue;
        }
        let enclosing = name.match_indices('.').map(|(i, _)| &name[..i]).find(|n| seen.contains(*n));
        let shown = excerpt(name);
        match &full_suggestion {
            _ if enclosing.is_some() => {
                let outer = excerpt(enclosing.unwrap_or_default());
                helps.push(format!("help: '{shown}' (line {line}): part of the unknown '{outer}'"));
            }
            Some(s) => helps.push(format!("help: '{shown}' (line {line}): did you mean '{s}'?")),
            None => {
                let known = known_keys(parent).iter().map(|k| format!("'{k}'")).collect::<Vec<_>>().join(", ");
                if known.is_empty() {
                    helps.push(format!("help: '{shown}' (line {line}): remove it; pack does not read it"));
                } else {
                    let place = if parent.is_empty() {
                        "at the top level".to_string()
                    } else {
                        format!("in '{}'", excerpt(parent))
                    };
                    helps.push(format!("help: '{shown}' (line {line}): remove it; the keys {place} are {known}"));
                }
            }
        }
        if span.start != usize::MAX {
            snippets.push((span.clone(), format!("unknown key '{shown}'")));
        }
    }
    if listed.len() > MAX_LISTED_KEYS {
        helps.push(format!("help: and {} more unknown keys", listed.len() - MAX_LISTED_KEYS));
    }
    let labels: Vec<Label<'_>> = snippets.iter().map(|(span, text)| Label { span: span.clone(), text }).collect();
    let mut diagnostic = render_snippet(&display, source, &labels);
    for help in helps {
        if !diagnostic.is_empty() {
            diagnostic.push('\n');
        }
        diagnostic.push_str(&help);
    }
    ConfigError::UnknownKeys { path: path.to_path_buf(), keys, diagnostic: Some(diagnostic) }
}

/// A known key close to `unknown`: same letters in another case, a common mix-up, or a small
/// edit distance (transpositions count once).
fn suggest(unknown: &str, known: &'static [String]) -> Option<&'static str> {
    const MIX_UPS: &[(&str, &str)] = &[
        ("distributions", "distros"),
        ("distribution", "distros"),
        ("url", "uri"),
        ("variants", "variant"),
        ("buildpack", "buildpacks"),
        ("extension", "extensions"),
        ("target", "targets"),
        ("env", "env"),
    ];
    // No known key is longer than this; the edit distance of a longer name costs time and
    // memory for nothing.
    const LONGEST: usize = 32;
    if unknown.len() > LONGEST {
        return None;
    }
    let lower = unknown.to_lowercase().replace('_', "-");
    if let Some(k) = known.iter().find(|k| **k == lower) {
        return Some(k);
    }
    if let Some((_, to)) = MIX_UPS.iter().find(|(from, to)| *from == lower && known.iter().any(|k| k == to)) {
        return known.iter().find(|k| k == to).map(String::as_str);
    }
    let limit = (lower.chars().count() / 3).max(1);
    known
        .iter()
        .map(|k| (osa_distance(&lower, k), k.as_str()))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Optimal string alignment distance.
fn osa_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0_usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

// ---------------------------------------------------------------------------------------------
// [[build.env]]

enum EnvError {
    NameEmpty { warnings: Vec<String>, diagnostic: Option<String> },
    Invalid { entry: usize, line: usize, reason: String, warnings: Vec<String>, diagnostic: Option<String> },
    UnknownSuffix { suffix: String, warnings: Vec<String>, diagnostic: Option<String> },
    MissingDelim { warnings: Vec<String>, diagnostic: Option<String> },
}

impl EnvError {
    fn into_error(self, path: &Path) -> ConfigError {
        let path = path.to_path_buf();
        match self {
            EnvError::NameEmpty { warnings, diagnostic } => ConfigError::EnvNameEmpty { path, warnings, diagnostic },
            EnvError::Invalid { entry, line, reason, warnings, diagnostic } => {
                ConfigError::EnvInvalid { path, entry, line, reason, warnings, diagnostic }
            }
            EnvError::UnknownSuffix { suffix, warnings, diagnostic } => {
                ConfigError::EnvUnknownSuffix { suffix, warnings, diagnostic }
            }
            EnvError::MissingDelim { warnings, diagnostic } => {
                ConfigError::EnvMissingDelim { path, warnings, diagnostic }
            }
        }
    }
}

/// Whether `name` is an environment variable name (`[A-Za-z_][A-Za-z0-9_]*`), and so a safe
/// file name under `/cnb/build-config/env/` (no `/`, no `..`, no `=`).
fn is_env_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// pack's `ParseBuildConfigEnv` (docs/pack-compatibility.md, *`[[build.env]]` files*), plus cnbx's rules that the name is an environment
/// variable name and that value and delim hold no NUL (pack writes the name as a file name
/// under `/cnb/build-config/env/`, so `../../etc/passwd` would replace a file of the image).
/// Warnings are appended to `warnings`; errors carry them.
fn build_env_files(
    env: &[BuildEnv],
    display: &str,
    source: &str,
    root: &DeTable<'_>,
    warnings: &mut Vec<String>,
) -> Result<BTreeMap<String, String>, EnvError> {
    let entry_span = |i: usize, key: &str| -> Option<Range<usize>> {
        let base = [Seg::Key("build".into()), Seg::Key("env".into()), Seg::Index(i)];
        let mut with_key = base.to_vec();
        with_key.push(Seg::Key(key.into()));
        lookup(root, &with_key).map(Spanned::span).or_else(|| lookup(root, &base).map(Spanned::span))
    };
    let snippet = |span: Option<Range<usize>>, label: &str, help: &str| -> Option<String> {
        Some(match span {
            Some(span) => format!("{}\n{help}", render_snippet(display, source, &[Label { span, text: label }])),
            None => help.to_string(),
        })
    };

    let mut files: BTreeMap<String, String> = BTreeMap::new();
    for (i, entry) in env.iter().enumerate() {
        if entry.name.is_empty() {
            return Err(EnvError::NameEmpty {
                warnings: warnings.clone(),
                diagnostic: snippet(
                    entry_span(i, "name"),
                    "empty env name",
                    "help: give this [[build.env]] entry a name = \"<VARIABLE>\"",
                ),
            });
        }
        let line_of = |span: &Option<Range<usize>>| span.as_ref().map_or(0, |s| line_col(source, s.start).0);
        if !is_env_name(&entry.name) {
            let span = entry_span(i, "name");
            return Err(EnvError::Invalid {
                entry: i + 1,
                line: line_of(&span),
                reason: format!(
                    "env name '{}' is not a valid environment variable name; use letters, digits and '_', not \
                     starting with a digit",
                    excerpt(&entry.name)
                ),
                warnings: warnings.clone(),
                diagnostic: snippet(
                    span,
                    "not an environment variable name",
                    "help: a [[build.env]] name has only letters, digits and '_' and does not start with a digit, e.g. name = \"BP_GREETING\"",
                ),
            });
        }
        for (key, text) in [("value", &entry.value), ("delim", &entry.delim)] {
            if text.contains('\0') {
                let span = entry_span(i, key);
                return Err(EnvError::Invalid {
                    entry: i + 1,
                    line: line_of(&span),
                    reason: format!(
                        "the {key} of env '{}' contains a NUL character, which an environment variable cannot hold",
                        excerpt(&entry.name)
                    ),
                    warnings: warnings.clone(),
                    diagnostic: snippet(span, "contains NUL", &format!("help: remove the \\u0000 from this {key}")),
                });
            }
        }
        if entry.value.is_empty() {
            warnings.push(format!("empty value for key/name '{}'", excerpt(&entry.name)));
        }
        let suffix_name = match entry.suffix.as_str() {
            "" => entry.name.clone(),
            s @ ("default" | "override" | "append" | "prepend") => format!("{}.{s}", entry.name),
            other => {
                return Err(EnvError::UnknownSuffix {
                    suffix: other.to_string(),
                    warnings: warnings.clone(),
                    diagnostic: snippet(
                        entry_span(i, "suffix"),
                        "unknown suffix",
                        "help: suffix must be one of \"default\", \"override\", \"append\", \"prepend\" or omitted",
                    ),
                });
            }
        };
        let delim_name = if entry.delim.is_empty() { String::new() } else { format!("{}.delim", entry.name) };
        if let Some(old) = files.get(&suffix_name) {
            warnings.push(format!(
                "overriding env with name: '{}' and suffix: '{}' from '{}' to '{}'",
                excerpt(&entry.name),
                excerpt(&entry.suffix),
                excerpt(old),
                excerpt(&entry.value)
            ));
        }
        if !delim_name.is_empty() {
            if let Some(old) = files.get(&delim_name) {
                warnings.push(format!(
                    "overriding env with name: '{}' and delim: '{}' from '{}' to '{}'",
                    excerpt(&entry.name),
                    excerpt(&entry.delim),
                    excerpt(old),
                    excerpt(&entry.delim)
                ));
            }
            files.insert(delim_name, entry.delim.clone());
        }
        files.insert(suffix_name, entry.value.clone());
    }

    let mut missing = HashSet::new();
    for key in files.keys() {
        let Some((name, suffix)) = key.split_once('.') else { continue };
        if (suffix == "append" || suffix == "prepend") && !files.contains_key(&format!("{name}.delim")) {
            warnings.push(format!(
                "env with name/key '{}' with suffix '{suffix}' must to have a 'delim' value",
                excerpt(name)
            ));
            missing.insert((name.to_string(), suffix.to_string()));
        }
    }
    if missing.is_empty() {
        return Ok(files);
    }
    let mut labels = Vec::new();
    let needing = env.iter().enumerate().filter(|(_, e)| missing.contains(&(e.name.clone(), e.suffix.clone())));
    for (i, entry) in needing.take(MAX_LISTED_KEYS) {
        if let Some(span) = entry_span(i, "suffix") {
            labels.push((span, format!("'{}' needs a delim", entry.suffix)));
        }
    }
    let labels: Vec<Label<'_>> = labels.iter().map(|(span, text)| Label { span: span.clone(), text }).collect();
    let help = "help: add delim = \":\" (or another separator) to each append/prepend [[build.env]] entry";
    let diagnostic = if labels.is_empty() {
        help.to_string()
    } else {
        format!("{}\n{help}", render_snippet(display, source, &labels))
    };
    Err(EnvError::MissingDelim { warnings: warnings.clone(), diagnostic: Some(diagnostic) })
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
