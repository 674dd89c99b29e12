//! The user's configuration: pack's `config.toml`, which cnbx reads and edits in place.
//!
//! ```toml
//! default-builder-image = "paketobuildpacks/builder-jammy-base"
//! pull-policy = "if-not-present"
//!
//! [[run-images]]
//!   image = "paketo/run:base"
//!   mirrors = ["gcr.io/me/run:base", "localhost:5000/run:base"]
//!
//! [[trusted-builders]]
//!   name = "registry.example.com/team/builder"
//!
//! [registry-mirrors]
//!   "index.docker.io" = "mirror.example.com"
//! ```
//!
//! # Choices and differences from pack
//!
//! * **Location.** pack's file: `$PACK_HOME/config.toml`, or `$HOME/.pack/config.toml` when
//!   `PACK_HOME` is unset or empty ([`pack_home`], [`config_path`]); a relative `PACK_HOME`
//!   is used as given, as pack does. `CNBX_HOME` ([`cnbx_home`]) holds the local store and
//!   the caches only. A `CNBX_HOME/config.toml` left by an earlier cnbx is taken over once
//!   ([`take_over_legacy`]).
//! * **Keys.** cnbx uses `run-images` ([`UserConfig::run_images`]), `registry-mirrors`
//!   ([`UserConfig::registry_mirrors`]), `pull-policy`, `trusted-builders` and
//!   `default-builder-image`, with pack's meaning. Every other key (`experimental`,
//!   `registries`, `lifecycle-image`, ...) is pack's alone: kept as written, never
//!   interpreted.
//! * **Loading.** A missing file is an empty config. Invalid TOML, and a key cnbx uses with
//!   the wrong shape (`run-images = "x"`, `mirrors = "x"`, an entry without `image`,
//!   `pull-policy = 1`, a `registry-mirrors` value that is not a string, a
//!   `[[trusted-builders]]` entry without `name`), are errors naming the file, line and column
//!   and telling the user to fix or delete the file; they quote the file only as excerpts
//!   (pack refuses such a file too). The file is the user's own, so a symbolic link is
//!   followed, but what is read must be a regular file (a FIFO or a device is refused without
//!   blocking), text (not quoted otherwise), and at most
//!   [`cnbx_fs::limits::MAX_CONFIG_FILE`] bytes.
//! * **The file is edited, not re-encoded.** pack re-encodes its own struct and drops every
//!   key it does not know, and every comment; we change only what an operation changes
//!   (`toml_edit`): other keys and tables, unknown keys inside entries, comments, key order
//!   and formatting stay as they are. A `mirrors` array whose content changes is written on
//!   one line (its trailing comment is kept); a removed entry goes with the comments above
//!   it; a new entry is appended after the last one of its kind, laid out as pack writes it
//!   (keys indented by two spaces, or as the entries before it are); a new scalar key goes
//!   after the top-level keys, a new table at the end. Entries written inline
//!   (`run-images = [{ image = "…" }]`) stay inline. A `run-images` key that is absent stays
//!   absent until an entry is added (pack writes none either).
//! * **Saving is atomic** ([`cnbx_fs::AtomicFile`]): a temporary file in the same directory
//!   is written, flushed to disk and renamed over `config.toml` (then the directory is
//!   synced). The directory is created with mode 0750 as pack does. An existing file keeps
//!   its permissions (a new one gets the usual mode under the umask, 0644 under 022), and a
//!   `config.toml` that is a symbolic link has its target replaced, so the link survives.
//!   pack writes the file in place (truncating it first), so a cnbx command that reads it
//!   while pack writes it may find it incomplete and refuse it; run it again.
//! * **Updates are serialised**: [`UserConfig::update`] holds an exclusive lock on
//!   [`LOCK_FILE_NAME`] next to `config.toml` from the read to the write, so two cnbx
//!   commands editing at once both keep their change (pack, which takes no lock, loses one).
//! * **Run-image mirror operations** have pack's semantics ([`UserConfig::add_mirrors`],
//!   [`UserConfig::remove_mirrors`], [`UserConfig::list`], [`UserConfig::mirrors_for`]),
//!   matching entries by exact string equality of the image. Two deliberate differences:
//!   - Removing an entry keeps the order of the others (pack moves the last entry into the
//!     freed slot).
//!   - With several entries for the same image (only possible by editing the file), every
//!     operation uses the **last** one, the one pack's build uses. pack's `add` updates the
//!     first one, so a mirror added there has no effect on builds.
//!
//!   After the last entry is removed the file contains `run-images = []`, like pack's.
//! * Messages belong to the CLI; the operations return what happened ([`AddOutcome`],
//!   [`RemoveOutcome`]). Nothing is written until [`UserConfig::save`].

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use cnbx_fs::{AtomicFile, FileLock, FsError};
use serde::Deserialize;
use toml_edit::{ArrayOfTables, Decor, DocumentMut, InlineTable, Item, Key, Table, Value};

use cnbx_model::RunImage;

use crate::registry_mirrors::RegistryMirrors;

/// The config file's name (in `PACK_HOME`; and, before cnbx used pack's file, in
/// `CNBX_HOME`).
pub const CONFIG_FILE_NAME: &str = "config.toml";

/// The lock file [`UserConfig::update`] holds, in the config file's directory.
pub const LOCK_FILE_NAME: &str = ".config.toml.lock";

/// What [`take_over_legacy`] renames `CNBX_HOME/config.toml` to, once taken over.
pub const LEGACY_KEPT_AS: &str = "config.toml.taken-over";

/// The environment variable naming pack's home directory.
pub const PACK_HOME_ENV: &str = "PACK_HOME";

const RUN_IMAGES_KEY: &str = "run-images";
const REGISTRY_MIRRORS_KEY: &str = "registry-mirrors";
const PULL_POLICY_KEY: &str = "pull-policy";
const DEFAULT_BUILDER_KEY: &str = "default-builder-image";
const TRUSTED_BUILDERS_KEY: &str = "trusted-builders";

/// How pack indents the keys of a table it writes.
const PACK_INDENT: &str = "  ";

/// Why the user config could not be located, read or written.
#[derive(Debug, thiserror::Error)]
pub enum UserConfigError {
    /// Neither `CNBX_HOME` nor `HOME` is set.
    #[error("cannot locate the cnbx home directory: set CNBX_HOME or HOME")]
    NoHome,
    /// Neither `PACK_HOME` nor `HOME` is set.
    #[error("cannot locate pack's home directory, where the configuration is: set PACK_HOME or HOME")]
    NoPackHome,
    /// The file exists but could not be read.
    #[error("failed to read config file {}", path.display())]
    Read {
        /// The config file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The file is a FIFO, a device, a directory... (after following symbolic links).
    #[error(
        "config file {} is {what}, not a regular file; replace it with a regular file or delete it",
        path.display()
    )]
    NotRegular {
        /// The config file.
        path: PathBuf,
        /// What it is (`a FIFO`, `a directory`, ...).
        what: &'static str,
    },
    /// The file is larger than cnbx reads.
    #[error(
        "config file {} is larger than the {limit} bytes cnbx reads for a config file; fix or delete the file",
        path.display()
    )]
    TooLarge {
        /// The config file.
        path: PathBuf,
        /// The limit in bytes.
        limit: u64,
    },
    /// The file is not text (nothing of it is quoted).
    #[error("invalid config file {}; fix or delete the file", path.display())]
    NotText {
        /// The config file.
        path: PathBuf,
        /// Where the first byte that is not text is.
        #[source]
        source: cnbx_fs::NotText,
    },
    /// The file is not valid TOML, or `run-images` has the wrong shape.
    #[error(
        "invalid config file {}{}: {message}; fix or delete the file",
        path.display(),
        location(*line, *column)
    )]
    Parse {
        /// The config file.
        path: PathBuf,
        /// 1-based line of the problem, when known.
        line: Option<usize>,
        /// 1-based column (in characters) of the problem, when known.
        column: Option<usize>,
        /// What is wrong (quoting the file only as excerpts).
        message: String,
    },
    /// The lock file could not be created or locked.
    #[error("failed to lock {}", path.display())]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The file (or its directory, or the temporary file) could not be written.
    #[error("failed to write {}", path.display())]
    Write {
        /// The path that could not be written.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

fn location(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(" at line {l}, column {c}"),
        (Some(l), None) => format!(" at line {l}"),
        _ => String::new(),
    }
}

/// pack's home directory, which holds the configuration: `$PACK_HOME` if set and non-empty,
/// else `$HOME/.pack`.
pub fn pack_home() -> Result<PathBuf, UserConfigError> {
    pack_home_from(std::env::var_os(PACK_HOME_ENV), std::env::var_os("HOME"))
}

/// [`pack_home`] with the two variables given explicitly.
pub fn pack_home_from(pack_home: Option<OsString>, home: Option<OsString>) -> Result<PathBuf, UserConfigError> {
    match (pack_home, home) {
        (Some(dir), _) if !dir.is_empty() => Ok(PathBuf::from(dir)),
        (_, Some(home)) if !home.is_empty() => Ok(PathBuf::from(home).join(".pack")),
        _ => Err(UserConfigError::NoPackHome),
    }
}

/// The configuration file: pack's `config.toml` in [`pack_home`].
pub fn config_path() -> Result<PathBuf, UserConfigError> {
    Ok(pack_home()?.join(CONFIG_FILE_NAME))
}

/// The cnbx home directory: `$CNBX_HOME` if set and non-empty, else `$HOME/.cnbx`.
pub fn cnbx_home() -> Result<PathBuf, UserConfigError> {
    cnbx_home_from(std::env::var_os("CNBX_HOME"), std::env::var_os("HOME"))
}

/// [`cnbx_home`] with the two variables given explicitly (for tests and callers that have
/// their own environment).
pub fn cnbx_home_from(cnbx_home: Option<OsString>, home: Option<OsString>) -> Result<PathBuf, UserConfigError> {
    match (cnbx_home, home) {
        (Some(dir), _) if !dir.is_empty() => Ok(PathBuf::from(dir)),
        (_, Some(home)) if !home.is_empty() => Ok(PathBuf::from(home).join(".cnbx")),
        _ => Err(UserConfigError::NoHome),
    }
}

/// What [`UserConfig::add_mirrors`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddOutcome {
    /// Whether a new `[[run-images]]` entry was appended for the image.
    pub created_entry: bool,
    /// The given mirrors that were not configured before (in the order given, once each).
    pub new_mirrors: Vec<String>,
    /// The image's mirrors after the change (sorted by byte order, de-duplicated).
    pub mirrors: Vec<String>,
}

impl AddOutcome {
    /// Whether the config changed (and should be saved).
    pub fn changed(&self) -> bool {
        self.created_entry || !self.new_mirrors.is_empty()
    }
}

/// What [`UserConfig::remove_mirrors`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoveOutcome {
    /// No entry has that image (nothing changed).
    NotFound,
    /// No mirrors were given: the entry was deleted.
    RemovedAll {
        /// The mirrors the entry had.
        mirrors: Vec<String>,
    },
    /// Some mirrors were given.
    RemovedSome {
        /// The given mirrors that were configured and are now gone (in the entry's order).
        removed: Vec<String>,
        /// The given mirrors that were not configured for the image.
        not_configured: Vec<String>,
        /// The mirrors left.
        remaining: Vec<String>,
        /// Whether the entry was deleted because no mirrors were left.
        entry_deleted: bool,
    },
}

impl RemoveOutcome {
    /// Whether the config changed (and should be saved).
    pub fn changed(&self) -> bool {
        match self {
            Self::NotFound => false,
            Self::RemovedAll { .. } => true,
            Self::RemovedSome { removed, entry_deleted, .. } => !removed.is_empty() || *entry_deleted,
        }
    }
}

/// The typed view of the keys cnbx uses, to validate their shape with line and column.
/// Other keys are not looked at.
#[derive(Deserialize)]
struct ConfigView {
    #[serde(rename = "run-images", default)]
    run_images: Vec<RunImageEntry>,
    #[serde(rename = "registry-mirrors", default)]
    #[allow(dead_code)] // read from the document, in file order; here only checked
    registry_mirrors: BTreeMap<String, String>,
    #[serde(rename = "pull-policy", default)]
    #[allow(dead_code)]
    pull_policy: Option<String>,
    #[serde(rename = "default-builder-image", default)]
    #[allow(dead_code)]
    default_builder: Option<String>,
    #[serde(rename = "trusted-builders", default)]
    #[allow(dead_code)]
    trusted_builders: Vec<TrustedBuilderEntry>,
}

/// A `[[trusted-builders]]` entry: `name` is required.
#[derive(Deserialize)]
struct TrustedBuilderEntry {
    #[allow(dead_code)]
    name: String,
}

/// A `[[run-images]]` entry as the file must write it: `image` is required.
#[derive(Deserialize)]
struct RunImageEntry {
    image: String,
    #[serde(default)]
    mirrors: Vec<String>,
}

/// The user config: the document it was read from (kept for saving, and where every key but
/// `run-images` is read and changed), and `run-images`.
#[derive(Debug, Clone)]
pub struct UserConfig {
    path: PathBuf,
    /// The whole document as loaded, with its comments and formatting (`run-images` is
    /// rewritten from `run_images` on save; the other keys are changed in place).
    doc: DocumentMut,
    run_images: Vec<RunImage>,
    /// The table of each `run_images` entry as the file wrote it (other keys, comments,
    /// formatting); empty for an entry added since.
    tables: Vec<Table>,
    /// The top-level key whose table header starts the file (nothing before it, so no blank
    /// line either): it needs one when something is put before it.
    first_table: Option<String>,
}

impl UserConfig {
    /// An empty config that will be saved to `path`.
    pub fn empty(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            doc: DocumentMut::new(),
            run_images: Vec::new(),
            tables: Vec::new(),
            first_table: None,
        }
    }

    /// Loads pack's `config.toml` (see [`config_path`]).
    pub fn load_default() -> Result<Self, UserConfigError> {
        Self::load(config_path()?)
    }

    /// Loads the config at `path`; a missing file is an empty config (see the module docs
    /// for what is refused).
    pub fn load(path: impl Into<PathBuf>) -> Result<Self, UserConfigError> {
        let path = path.into();
        let limit = cnbx_fs::limits::MAX_CONFIG_FILE;
        match cnbx_fs::read_bounded_following(&path, limit, "a config file") {
            Ok(bytes) => Self::from_bytes(path, &bytes),
            Err(e) if e.is_not_found() => Ok(Self::empty(path)),
            Err(FsError::NotRegular { what, .. }) => Err(UserConfigError::NotRegular { path, what }),
            Err(FsError::TooLarge { limit, .. }) => Err(UserConfigError::TooLarge { path, limit }),
            Err(FsError::Io { source, .. }) => Err(UserConfigError::Read { path, source }),
            Err(e @ FsError::Changed { .. }) => Err(UserConfigError::Read { path, source: io::Error::other(e) }),
        }
    }

    /// Loads the config at `path` under an exclusive lock on [`LOCK_FILE_NAME`] in its
    /// directory (created with mode 0750 if needed), lets `change` modify it, and saves it
    /// when `change` returns `true` with its result, before the lock is released: concurrent
    /// updates are applied one after the other, none is lost. Nothing is saved when `change`
    /// fails.
    pub fn update<T, E>(
        path: impl Into<PathBuf>,
        change: impl FnOnce(&mut UserConfig) -> Result<(T, bool), E>,
    ) -> Result<T, E>
    where
        E: From<UserConfigError>,
    {
        let path = path.into();
        let _lock = lock_config(&path)?;
        let mut config = Self::load(&path)?;
        let (value, changed) = change(&mut config)?;
        if changed {
            config.save()?;
        }
        Ok(value)
    }

    /// Parses the bytes of the config file at `path`: they must be text (see
    /// [`cnbx_fs::text_of`]), then see [`UserConfig::from_toml`].
    pub fn from_bytes(path: impl Into<PathBuf>, bytes: &[u8]) -> Result<Self, UserConfigError> {
        let path = path.into();
        match cnbx_fs::text_of(bytes) {
            Ok(text) => Self::from_toml(path, text),
            Err(source) => Err(UserConfigError::NotText { path, source }),
        }
    }

    /// Parses `text` as the contents of the config file at `path`; it must be text (see
    /// [`cnbx_fs::check_text`]).
    pub fn from_toml(path: impl Into<PathBuf>, text: &str) -> Result<Self, UserConfigError> {
        let path = path.into();
        if let Err(source) = cnbx_fs::check_text(text) {
            return Err(UserConfigError::NotText { path, source });
        }
        let parse_error = |span: Option<std::ops::Range<usize>>, message: &str| {
            let (line, column) = match span {
                Some(span) => {
                    let (l, c) = line_column(text, span.start);
                    (Some(l), Some(c))
                }
                None => (None, None),
            };
            let message = cnbx_fs::excerpt_quoted(message.trim_end());
            UserConfigError::Parse { path: path.clone(), line, column, message }
        };
        let view: ConfigView = toml::from_str(text).map_err(|e| parse_error(e.span(), e.message()))?;
        let doc: DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| parse_error(e.span(), e.message()))?;
        let mut tables: Vec<Table> = match doc.get(RUN_IMAGES_KEY) {
            Some(Item::ArrayOfTables(entries)) => entries.iter().cloned().collect(),
            Some(Item::Value(Value::Array(entries))) => entries
                .iter()
                .map(|entry| entry.as_inline_table().map(|t| t.clone().into_table()).unwrap_or_default())
                .collect(),
            _ => Vec::new(),
        };
        // The typed view and the document describe the same array; keep them in step.
        tables.resize_with(view.run_images.len(), Table::new);
        let run_images = view.run_images.into_iter().map(|e| RunImage::new(e.image, e.mirrors)).collect();
        let first_table = if text.starts_with('[') { first_table_key(&doc) } else { None };
        Ok(Self { path, doc, run_images, tables, first_table })
    }

    /// The file this config is loaded from and saved to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// All `[[run-images]]` entries, in file order.
    pub fn run_images(&self) -> &[RunImage] {
        &self.run_images
    }

    /// The entries to list: all of them, or those whose image string-equals `filter`.
    pub fn list(&self, filter: Option<&str>) -> Vec<&RunImage> {
        self.run_images.iter().filter(|e| filter.is_none_or(|f| e.image == f)).collect()
    }

    /// The user's mirrors for `image` (exact string match; the last matching entry, as in
    /// pack's build); empty when there is none.
    pub fn mirrors_for(&self, image: &str) -> &[String] {
        self.last_index(image).map_or(&[], |i| self.run_images[i].mirror_list())
    }

    /// Adds `mirrors` for `image`: the image's list becomes the given mirrors ∪ the existing
    /// ones, de-duplicated and sorted by byte order; a new entry is appended if the image has
    /// none. Empty strings are ignored; adding no mirrors changes nothing.
    pub fn add_mirrors(&mut self, image: &str, mirrors: &[String]) -> AddOutcome {
        let given: Vec<&String> = mirrors.iter().filter(|m| !m.is_empty()).collect();
        let index = self.last_index(image);
        let existing: &[String] = index.map_or(&[], |i| self.run_images[i].mirror_list());

        let mut new_mirrors: Vec<String> = Vec::new();
        for m in &given {
            if !existing.contains(m) && !new_mirrors.contains(m) {
                new_mirrors.push((*m).clone());
            }
        }
        if given.is_empty() {
            return AddOutcome { created_entry: false, new_mirrors, mirrors: existing.to_vec() };
        }
        let merged: Vec<String> =
            existing.iter().chain(given.iter().copied()).cloned().collect::<BTreeSet<String>>().into_iter().collect();

        let created_entry = match index {
            Some(i) => {
                self.run_images[i].mirrors = Some(merged.clone());
                false
            }
            None => {
                self.run_images.push(RunImage::new(image, merged.clone()));
                self.tables.push(Table::new());
                true
            }
        };
        AddOutcome { created_entry, new_mirrors, mirrors: merged }
    }

    /// Sets the mirrors of `image` to `mirrors`, as given (pack's `set-run-image-mirrors`,
    /// which replaces the list and neither sorts nor de-duplicates it; an empty list is
    /// written as `mirrors = []`); a new entry is appended if the image has none. Returns
    /// whether the config changed.
    pub fn set_mirrors(&mut self, image: &str, mirrors: &[String]) -> bool {
        match self.last_index(image) {
            Some(i) if self.run_images[i].mirrors.as_deref() == Some(mirrors) => false,
            Some(i) => {
                self.run_images[i].mirrors = Some(mirrors.to_vec());
                true
            }
            None => {
                self.run_images.push(RunImage::new(image, mirrors.to_vec()));
                self.tables.push(Table::new());
                true
            }
        }
    }

    /// Removes mirrors for `image`: all of them (the entry is deleted) when `mirrors` is
    /// `None` or empty, else the given ones; an entry left without mirrors is deleted. The
    /// other entries keep their order.
    pub fn remove_mirrors(&mut self, image: &str, mirrors: Option<&[String]>) -> RemoveOutcome {
        let Some(index) = self.last_index(image) else {
            return RemoveOutcome::NotFound;
        };
        let given = match mirrors {
            Some(given) if !given.is_empty() => given,
            _ => {
                let entry = self.remove_entry(index);
                return RemoveOutcome::RemovedAll { mirrors: entry.mirrors.unwrap_or_default() };
            }
        };
        let existing = self.run_images[index].mirror_list();
        let (removed, remaining): (Vec<String>, Vec<String>) =
            existing.iter().cloned().partition(|m| given.contains(m));
        let mut not_configured: Vec<String> = Vec::new();
        for m in given {
            if !existing.contains(m) && !not_configured.contains(m) {
                not_configured.push(m.clone());
            }
        }
        let entry_deleted = remaining.is_empty();
        if entry_deleted {
            self.remove_entry(index);
        } else {
            self.run_images[index].mirrors = Some(remaining.clone());
        }
        RemoveOutcome::RemovedSome { removed, not_configured, remaining, entry_deleted }
    }

    /// The config as it will be saved: the document as loaded, with `run-images` as the
    /// entries are now (see the module docs).
    pub fn to_toml(&self) -> String {
        let like = self.tables.iter().find_map(|t| t.key("image")).cloned();
        let tables =
            self.run_images.iter().zip(&self.tables).map(|(entry, table)| entry_table(entry, table, like.as_ref()));
        let inline = matches!(self.doc.get(RUN_IMAGES_KEY), Some(Item::Value(_)));
        let run_images = if self.run_images.is_empty() {
            // As pack writes it once the last entry is gone.
            Item::Value(Value::Array(toml_edit::Array::new()))
        } else if inline {
            Item::Value(Value::Array(tables.map(|t| Value::InlineTable(t.into_inline_table())).collect()))
        } else {
            Item::ArrayOfTables(tables.collect::<ArrayOfTables>())
        };
        let mut doc = self.doc.clone();
        let mut inserted = false;
        match doc.get_mut(RUN_IMAGES_KEY) {
            // In place: the key keeps its position.
            Some(item) => {
                let header_became_value = item.is_array_of_tables() != run_images.is_array_of_tables();
                let mut run_images = run_images;
                if let (Item::Value(old), Item::Value(new)) = (&*item, &mut run_images) {
                    *new.decor_mut() = old.decor().clone();
                }
                *item = run_images;
                if header_became_value && let Some(mut key) = doc.key_mut(RUN_IMAGES_KEY) {
                    // How the key was written inside `[[…]]` is not how it is written before
                    // `=`, and the other way round.
                    key.leaf_decor_mut().clear();
                }
            }
            // pack writes no `run-images` until there is an entry.
            None if self.run_images.is_empty() => {}
            None => {
                inserted = true;
                // Before the tables pack writes after it (tables without a place of their own
                // in the file are written in this order).
                let mut later: Vec<(Key, Item)> = Vec::new();
                for k in [TRUSTED_BUILDERS_KEY, "registries", REGISTRY_MIRRORS_KEY] {
                    if doc.get(k).is_some_and(|i| i.is_table() || i.is_array_of_tables())
                        && let Some(entry) = doc.remove_entry(k)
                    {
                        later.push(entry);
                    }
                }
                doc.insert(RUN_IMAGES_KEY, run_images);
                for (key, item) in later {
                    doc.insert_formatted(&key, item);
                }
            }
        }
        if let Some(key) = &self.first_table {
            // Something now comes before the table that started the file: a top-level value, or
            // the run images put in front of it.
            let values_before = doc.iter().any(|(_, item)| item.is_value());
            let moved_behind = inserted && key != RUN_IMAGES_KEY;
            if (values_before || moved_behind)
                && let Some(table) = first_table_of(doc.get_mut(key))
                && table.decor().prefix().and_then(|p| p.as_str()) == Some("")
            {
                table.decor_mut().set_prefix("\n");
            }
        }
        doc.to_string()
    }

    /// Writes the config atomically (see the module docs).
    pub fn save(&self) -> Result<(), UserConfigError> {
        write_atomically(&self.path, self.to_toml().as_bytes())
    }

    fn last_index(&self, image: &str) -> Option<usize> {
        self.run_images.iter().rposition(|e| e.image == image)
    }

    fn remove_entry(&mut self, index: usize) -> RunImage {
        self.tables.remove(index);
        self.run_images.remove(index)
    }
}

/// The keys other than `run-images`, read from and changed in the document.
impl UserConfig {
    /// `registry-mirrors`, in file order.
    pub fn registry_mirror_list(&self) -> Vec<(String, String)> {
        let Some(table) = self.doc.get(REGISTRY_MIRRORS_KEY).and_then(Item::as_table_like) else {
            return Vec::new();
        };
        table.iter().filter_map(|(k, v)| Some((k.to_owned(), v.as_str()?.to_owned()))).collect()
    }

    /// `registry-mirrors`, for rewriting fetches.
    pub fn registry_mirrors(&self) -> RegistryMirrors {
        RegistryMirrors::new(self.registry_mirror_list())
    }

    /// Sets the mirror of `registry` (or `*`); returns the mirror it had. A new
    /// `[registry-mirrors]` table is appended at the end of the file.
    pub fn set_registry_mirror(&mut self, registry: &str, mirror: &str) -> Option<String> {
        if self.doc.get(REGISTRY_MIRRORS_KEY).and_then(Item::as_table_like).is_none() {
            let mut table = Table::new();
            table.set_implicit(false);
            self.doc.insert(REGISTRY_MIRRORS_KEY, Item::Table(table));
        }
        let item = self.doc.get_mut(REGISTRY_MIRRORS_KEY)?;
        match item {
            Item::Table(table) => {
                if let Some(old) = table.get_mut(registry).and_then(Item::as_value_mut) {
                    let previous = old.as_str().map(str::to_owned);
                    replace_value(old, Value::from(mirror));
                    return previous;
                }
                let like = table.iter().next().and_then(|(k, _)| table.key(k)).cloned();
                let key = new_key(registry, like.as_ref(), table.is_dotted());
                table.insert_formatted(&key, Item::Value(Value::from(mirror)));
                None
            }
            Item::Value(Value::InlineTable(table)) => {
                if let Some(old) = table.get_mut(registry) {
                    let previous = old.as_str().map(str::to_owned);
                    replace_value(old, Value::from(mirror));
                    return previous;
                }
                table.insert(registry, Value::from(mirror));
                None
            }
            _ => None,
        }
    }

    /// Removes the mirror of `registry`; returns it, or `None` when it had none.
    pub fn remove_registry_mirror(&mut self, registry: &str) -> Option<String> {
        let table = self.doc.get_mut(REGISTRY_MIRRORS_KEY).and_then(Item::as_table_like_mut)?;
        let removed = table.remove(registry)?;
        removed.as_str().map(str::to_owned)
    }

    /// `pull-policy`, as written (`None` when unset or empty).
    pub fn pull_policy(&self) -> Option<&str> {
        self.root_string(PULL_POLICY_KEY)
    }

    /// Sets `pull-policy` (`None` removes the key, as pack's `--unset` does).
    pub fn set_pull_policy(&mut self, policy: Option<&str>) {
        self.set_root_string(PULL_POLICY_KEY, policy);
    }

    /// `default-builder-image` (`None` when unset or empty).
    pub fn default_builder(&self) -> Option<&str> {
        self.root_string(DEFAULT_BUILDER_KEY)
    }

    /// Sets `default-builder-image` (`None` removes the key).
    pub fn set_default_builder(&mut self, builder: Option<&str>) {
        self.set_root_string(DEFAULT_BUILDER_KEY, builder);
    }

    /// The names of the `[[trusted-builders]]` entries, in file order.
    pub fn trusted_builders(&self) -> Vec<String> {
        let name = |t: &dyn toml_edit::TableLike| t.get("name").and_then(Item::as_str).map(str::to_owned);
        match self.doc.get(TRUSTED_BUILDERS_KEY) {
            Some(Item::ArrayOfTables(entries)) => entries.iter().filter_map(|t| name(t)).collect(),
            Some(Item::Value(Value::Array(entries))) => {
                entries.iter().filter_map(Value::as_inline_table).filter_map(|t| name(t)).collect()
            }
            _ => Vec::new(),
        }
    }

    /// Appends a `[[trusted-builders]]` entry for `name` (after the last one).
    pub fn add_trusted_builder(&mut self, name: &str) {
        match self.doc.get_mut(TRUSTED_BUILDERS_KEY) {
            Some(Item::ArrayOfTables(entries)) => {
                let like = entries.iter().last().and_then(|t| t.key("name")).cloned();
                let mut table = Table::new();
                let key = new_key("name", like.as_ref(), false);
                table.insert_formatted(&key, Item::Value(Value::from(name)));
                entries.push(table);
            }
            Some(Item::Value(Value::Array(entries))) => {
                let mut table = InlineTable::new();
                table.insert("name", Value::from(name));
                entries.push(Value::InlineTable(table));
            }
            _ => {
                let mut table = Table::new();
                table.insert_formatted(&new_key("name", None, false), Item::Value(Value::from(name)));
                let mut entries = ArrayOfTables::new();
                entries.push(table);
                self.doc.insert(TRUSTED_BUILDERS_KEY, Item::ArrayOfTables(entries));
            }
        }
    }

    /// Removes every `[[trusted-builders]]` entry named exactly `name`; returns how many.
    pub fn remove_trusted_builder(&mut self, name: &str) -> usize {
        let named = |t: &dyn toml_edit::TableLike| t.get("name").and_then(Item::as_str) == Some(name);
        match self.doc.get_mut(TRUSTED_BUILDERS_KEY) {
            Some(Item::ArrayOfTables(entries)) => {
                let before = entries.len();
                entries.retain(|t| !named(t));
                before - entries.len()
            }
            Some(Item::Value(Value::Array(entries))) => {
                let before = entries.len();
                entries.retain(|v| !v.as_inline_table().is_some_and(|t| named(t)));
                before - entries.len()
            }
            _ => 0,
        }
    }

    fn root_string(&self, key: &str) -> Option<&str> {
        self.doc.get(key).and_then(Item::as_str).filter(|s| !s.is_empty())
    }

    /// Sets the top-level string `key` in place (a new key goes after the other top-level
    /// keys, before the first table), or removes it.
    fn set_root_string(&mut self, key: &str, value: Option<&str>) {
        match value {
            None => {
                self.doc.remove(key);
            }
            Some(value) => match self.doc.get_mut(key) {
                Some(Item::Value(old)) => replace_value(old, Value::from(value)),
                _ => {
                    self.doc.insert(key, Item::Value(Value::from(value)));
                }
            },
        }
    }
}

/// The top-level key whose table comes first in `doc` (by position in the file).
fn first_table_key(doc: &DocumentMut) -> Option<String> {
    doc.iter()
        .filter_map(|(key, item)| {
            let table: &Table = match item {
                Item::Table(t) if !t.is_dotted() && !t.is_implicit() => t,
                Item::ArrayOfTables(a) => a.get(0)?,
                _ => return None,
            };
            Some((table.position()?, key.to_owned()))
        })
        .min()
        .map(|(_, key)| key)
}

/// The table of a top-level item: itself, or the first entry of an array of tables.
fn first_table_of(item: Option<&mut Item>) -> Option<&mut Table> {
    match item? {
        Item::Table(t) => Some(t),
        Item::ArrayOfTables(a) => a.get_mut(0),
        _ => None,
    }
}

/// Replaces `old` with `new`, keeping `old`'s decor (the spaces around it, its comment).
fn replace_value(old: &mut Value, mut new: Value) {
    *new.decor_mut() = old.decor().clone();
    *old = new;
}

/// A key for a new line of a table: indented like `like` (another key of the table, or of
/// the entry before), else as pack writes the keys of a table (two spaces); a dotted
/// table's keys are not indented.
fn new_key(name: &str, like: Option<&Key>, dotted: bool) -> Key {
    let indent = match like.and_then(|k| k.leaf_decor().prefix()).and_then(|p| p.as_str()) {
        // Only the indentation: a comment above the other key stays with it.
        Some(prefix) => prefix.rsplit('\n').next().unwrap_or("").to_owned(),
        None if dotted => String::new(),
        None => PACK_INDENT.to_owned(),
    };
    Key::new(name).with_leaf_decor(Decor::new(indent, " "))
}

/// `table` (an entry as the file wrote it, or a new one) with `entry`'s image and mirrors.
/// A value that has not changed is left as it is written; one that has keeps its place and
/// its comment.
/// A new entry's keys are indented like `like` (the `image` key of an entry of the file).
fn entry_table(entry: &RunImage, table: &Table, like: Option<&Key>) -> Table {
    let mut table = table.clone();
    if table.is_empty() {
        // A new entry, laid out as pack writes one (or as the file's entries are).
        table.insert_formatted(&new_key("image", like, false), Item::Value(Value::from(entry.image.as_str())));
        if let Some(mirrors) = &entry.mirrors {
            let mirrors = Value::Array(mirrors.iter().map(String::as_str).collect());
            table.insert_formatted(&new_key("mirrors", like, false), Item::Value(mirrors));
        }
        return table;
    }
    if table.get("image").and_then(Item::as_str) != Some(entry.image.as_str()) {
        set_value(&mut table, "image", Value::from(entry.image.as_str()));
    }
    let mirrors = entry.mirror_list();
    let written: Option<Vec<&str>> =
        table.get("mirrors").and_then(Item::as_array).and_then(|a| a.iter().map(Value::as_str).collect());
    let unchanged = match &written {
        Some(written) => written.iter().copied().eq(mirrors.iter().map(String::as_str)),
        // No `mirrors` key and none to write: nothing to add.
        None => mirrors.is_empty() && !table.contains_key("mirrors"),
    };
    if !unchanged {
        set_value(&mut table, "mirrors", Value::Array(mirrors.iter().map(String::as_str).collect()));
    }
    table
}

/// Sets `key` in `table` to `value`, keeping the key's place and formatting and the old
/// value's comment when there is one.
fn set_value(table: &mut Table, key: &str, mut value: Value) {
    match table.get_mut(key) {
        Some(Item::Value(old)) => {
            *value.decor_mut() = old.decor().clone();
            *old = value;
        }
        Some(item) => *item = Item::Value(value),
        None => {
            table.insert(key, Item::Value(value));
        }
    }
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// Takes the exclusive lock [`UserConfig::update`] holds for the config file at `path`,
/// creating its directory (mode 0750) if needed.
fn lock_config(path: &Path) -> Result<FileLock, UserConfigError> {
    let dir = parent_dir(path);
    create_dir(&dir).map_err(|source| UserConfigError::Write { path: dir.clone(), source })?;
    let lock_path = dir.join(LOCK_FILE_NAME);
    FileLock::exclusive(&lock_path).map_err(|source| UserConfigError::Lock { path: lock_path, source })
}

/// What [`take_over_legacy`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TakeOver {
    /// The file taken over (`CNBX_HOME/config.toml`).
    pub legacy: PathBuf,
    /// What it was renamed to ([`LEGACY_KEPT_AS`], next to it).
    pub kept_as: PathBuf,
    /// The configuration it went into (pack's `config.toml`).
    pub config: PathBuf,
    /// Per run image, the mirrors the configuration did not have and now has.
    pub added: Vec<(String, Vec<String>)>,
}

/// Takes over `legacy`, the `CNBX_HOME/config.toml` of a cnbx that did not use pack's file
/// yet, into the configuration at `config`, once: its run-image mirrors are added to
/// `config`'s (as `run-image-mirrors add` adds them: merged into the entry for the same
/// image, sorted; a mirror already there is not added again), then `legacy` is renamed
/// [`LEGACY_KEPT_AS`] and never read again. The rest of `legacy` was never used by cnbx and is
/// not taken over. `Ok(None)` when there is nothing to take over: no `legacy`, or `legacy` is
/// `config` itself (the same file, through a link or the same directory).
///
/// Runs under [`UserConfig::update`]'s lock, and renames `legacy` only after `config` is
/// saved: two commands taking it over at once add the mirrors once, and a failure leaves
/// `legacy` in place, to be taken over next time.
pub fn take_over_legacy(legacy: &Path, config: &Path) -> Result<Option<TakeOver>, UserConfigError> {
    let exists = |p: &Path| std::fs::symlink_metadata(p).is_ok();
    if !exists(legacy) || same_file(legacy, config) {
        return Ok(None);
    }
    let _lock = lock_config(config)?;
    if !exists(legacy) {
        return Ok(None);
    }
    let old = UserConfig::load(legacy)?;
    let mut new = UserConfig::load(config)?;
    let mut added = Vec::new();
    let mut changed = false;
    for entry in old.run_images() {
        let outcome = new.add_mirrors(&entry.image, entry.mirror_list());
        changed |= outcome.changed();
        if !outcome.new_mirrors.is_empty() {
            added.push((entry.image.clone(), outcome.new_mirrors));
        }
    }
    if changed {
        new.save()?;
    }
    let kept_as = parent_dir(legacy).join(LEGACY_KEPT_AS);
    std::fs::rename(legacy, &kept_as).map_err(|source| UserConfigError::Write { path: legacy.to_owned(), source })?;
    Ok(Some(TakeOver { legacy: legacy.to_owned(), kept_as, config: config.to_owned(), added }))
}

/// Whether `a` and `b` name the same file (both exist and resolve to one file).
fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// The directory of `path` (`.` for a bare file name).
fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// Writes `bytes` to `path` atomically ([`AtomicFile`]), keeping the permissions of an
/// existing file and the symbolic link `path` may be. Creates the directory (mode 0750) if
/// needed.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), UserConfigError> {
    let write_err = |path: &Path| {
        let path = path.to_owned();
        move |source: io::Error| UserConfigError::Write { path, source }
    };

    // Replace a symbolic link's target rather than the link.
    let target = match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => std::fs::canonicalize(path).map_err(write_err(path))?,
        _ => path.to_owned(),
    };
    let dir = parent_dir(&target);
    create_dir(&dir).map_err(write_err(&dir))?;

    let mut file = AtomicFile::for_destination(&target).map_err(write_err(&dir))?;
    let tmp_path = file.temporary_path().to_owned();
    if let Ok(meta) = std::fs::metadata(&target) {
        file.as_file().set_permissions(meta.permissions()).map_err(write_err(&tmp_path))?;
    }
    file.write_all(bytes).map_err(write_err(&tmp_path))?;
    // On failure the temporary file is deleted when the error drops it.
    file.commit(&target).map_err(write_err(&target))
}

#[cfg(unix)]
fn create_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o750).create(dir)
}

#[cfg(not(unix))]
fn create_dir(dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| (*x).to_owned()).collect()
    }

    fn read(path: &Path) -> String {
        std::fs::read_to_string(path).expect("config written")
    }

    fn dir_entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn home_resolution() {
        assert_eq!(cnbx_home_from(Some("/c".into()), Some("/h".into())).expect("set"), PathBuf::from("/c"));
        assert_eq!(cnbx_home_from(Some("".into()), Some("/h".into())).expect("home"), PathBuf::from("/h/.cnbx"));
        assert_eq!(cnbx_home_from(None, Some("/h".into())).expect("home"), PathBuf::from("/h/.cnbx"));
        assert!(matches!(cnbx_home_from(None, None), Err(UserConfigError::NoHome)));
        assert!(matches!(cnbx_home_from(Some("".into()), Some("".into())), Err(UserConfigError::NoHome)));
    }

    #[test]
    fn missing_file_is_empty() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nope/config.toml");
        let cfg = UserConfig::load(&path).expect("empty");
        assert_eq!(cfg.path(), path);
        assert!(cfg.run_images().is_empty());
        assert!(cfg.list(None).is_empty());
        assert!(cfg.mirrors_for("x").is_empty());
        assert!(!path.exists());
    }

    #[test]
    fn round_trip_add_list_remove() {
        let dir = tempfile::tempdir().expect("tempdir");
        let home = dir.path().join("home");
        let path = home.join(CONFIG_FILE_NAME);
        let mut cfg = UserConfig::load(&path).expect("empty");

        // add: sorted, de-duplicated, given ∪ existing.
        let out = cfg.add_mirrors("test/image", &s(&["example.com/z", "example.com/a", "example.com/z"]));
        assert_eq!(
            out,
            AddOutcome {
                created_entry: true,
                new_mirrors: s(&["example.com/z", "example.com/a"]),
                mirrors: s(&["example.com/a", "example.com/z"]),
            }
        );
        let out = cfg.add_mirrors("test/image", &s(&["example.com/m", "example.com/a"]));
        assert_eq!(
            out,
            AddOutcome {
                created_entry: false,
                new_mirrors: s(&["example.com/m"]),
                mirrors: s(&["example.com/a", "example.com/m", "example.com/z"]),
            }
        );
        assert!(out.changed());
        let out = cfg.add_mirrors("other/run", &s(&["gcr.io/o/run"]));
        assert!(out.created_entry);
        // Adding nothing changes nothing.
        let out = cfg.add_mirrors("third/run", &[]);
        assert!(!out.changed());
        assert!(cfg.list(Some("third/run")).is_empty());
        cfg.save().expect("saved");

        assert_eq!(
            read(&path),
            "[[run-images]]\n\
             \x20 image = \"test/image\"\n\
             \x20 mirrors = [\"example.com/a\", \"example.com/m\", \"example.com/z\"]\n\
             \n\
             [[run-images]]\n\
             \x20 image = \"other/run\"\n\
             \x20 mirrors = [\"gcr.io/o/run\"]\n"
        );

        // list, reloaded from disk.
        let mut cfg = UserConfig::load(&path).expect("reload");
        let all: Vec<&str> = cfg.list(None).iter().map(|e| e.image.as_str()).collect();
        assert_eq!(all, ["test/image", "other/run"]);
        assert_eq!(cfg.list(Some("other/run")), vec![&RunImage::new("other/run", ["gcr.io/o/run"])]);
        assert!(cfg.list(Some("docker.io/other/run")).is_empty());
        assert_eq!(cfg.mirrors_for("test/image"), s(&["example.com/a", "example.com/m", "example.com/z"]));

        // remove some.
        let out = cfg.remove_mirrors("test/image", Some(&s(&["example.com/m", "nope/x"])));
        assert_eq!(
            out,
            RemoveOutcome::RemovedSome {
                removed: s(&["example.com/m"]),
                not_configured: s(&["nope/x"]),
                remaining: s(&["example.com/a", "example.com/z"]),
                entry_deleted: false,
            }
        );
        assert!(out.changed());
        cfg.save().expect("saved");
        assert_eq!(
            read(&path),
            "[[run-images]]\n\
             \x20 image = \"test/image\"\n\
             \x20 mirrors = [\"example.com/a\", \"example.com/z\"]\n\
             \n\
             [[run-images]]\n\
             \x20 image = \"other/run\"\n\
             \x20 mirrors = [\"gcr.io/o/run\"]\n"
        );

        // not found.
        assert_eq!(cfg.remove_mirrors("missing/run", None), RemoveOutcome::NotFound);
        assert!(!RemoveOutcome::NotFound.changed());

        // remove all of the first entry: the other stays in place.
        let out = cfg.remove_mirrors("test/image", None);
        assert_eq!(out, RemoveOutcome::RemovedAll { mirrors: s(&["example.com/a", "example.com/z"]) });
        // removing every remaining mirror deletes the entry too.
        let out = cfg.remove_mirrors("other/run", Some(&s(&["gcr.io/o/run"])));
        assert_eq!(
            out,
            RemoveOutcome::RemovedSome {
                removed: s(&["gcr.io/o/run"]),
                not_configured: vec![],
                remaining: vec![],
                entry_deleted: true,
            }
        );
        cfg.save().expect("saved");
        assert_eq!(read(&path), "run-images = []\n");
        assert!(UserConfig::load(&path).expect("reload").run_images().is_empty());
        assert_eq!(dir_entries(&home), [CONFIG_FILE_NAME]);

        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&home).expect("dir").permissions().mode();
            assert_eq!(mode & 0o777, 0o750);
        }
    }

    #[test]
    fn remove_keeps_order_of_other_entries() {
        let mut cfg = UserConfig::empty("/unused/config.toml");
        for image in ["a", "b", "c", "d"] {
            cfg.add_mirrors(image, &s(&["m"]));
        }
        cfg.remove_mirrors("b", Some(&[]));
        let left: Vec<&str> = cfg.run_images().iter().map(|e| e.image.as_str()).collect();
        assert_eq!(left, ["a", "c", "d"]);
    }

    #[test]
    fn duplicate_entries_use_the_last_one() {
        let text = "[[run-images]]\nimage = \"x\"\nmirrors = [\"first\"]\n\n\
                    [[run-images]]\nimage = \"x\"\nmirrors = [\"second\"]\n";
        let mut cfg = UserConfig::from_toml("/unused", text).expect("valid");
        assert_eq!(cfg.mirrors_for("x"), s(&["second"]));
        assert_eq!(cfg.list(Some("x")).len(), 2);
        cfg.add_mirrors("x", &s(&["added"]));
        assert_eq!(cfg.mirrors_for("x"), s(&["added", "second"]));
        assert_eq!(cfg.run_images()[0].mirror_list(), s(&["first"]));
        cfg.remove_mirrors("x", None);
        assert_eq!(cfg.mirrors_for("x"), s(&["first"]));
    }

    #[test]
    fn unknown_keys_are_preserved() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(CONFIG_FILE_NAME);
        let original = "# a comment that stays\n\
                        pull-policy = \"if-not-present\"\n\
                        experimental = true\n\
                        \n\
                        [[run-images]]\n\
                        \x20 image = \"test/image\"\n\
                        \x20 mirrors = [\"example.com/some/run1\", \"example.com/some/run2\"]\n\
                        \x20 note = \"kept\"\n\
                        \n\
                        [[trusted-builders]]\n\
                        \x20 name = \"x/y\"\n\
                        \n\
                        [registry-mirrors]\n\
                        \"index.docker.io\" = \"mirror.example.com\"\n";
        std::fs::write(&path, original).expect("write");
        let mut cfg = UserConfig::load(&path).expect("valid");
        cfg.add_mirrors("test/image", &s(&["example.com/some/run0"]));
        cfg.save().expect("saved");
        assert_eq!(
            read(&path),
            original.replace(
                "mirrors = [\"example.com/some/run1\"",
                "mirrors = [\"example.com/some/run0\", \"example.com/some/run1\""
            )
        );

        cfg.remove_mirrors("test/image", None);
        cfg.save().expect("saved");
        assert_eq!(
            read(&path),
            "# a comment that stays\n\
             pull-policy = \"if-not-present\"\n\
             experimental = true\n\
             run-images = []\n\
             \n\
             [[trusted-builders]]\n\
             \x20 name = \"x/y\"\n\
             \n\
             [registry-mirrors]\n\
             \"index.docker.io\" = \"mirror.example.com\"\n"
        );
        let reloaded = UserConfig::load(&path).expect("valid");
        assert!(reloaded.run_images().is_empty());
        reloaded.save().expect("saved");
        assert!(read(&path).contains("\nrun-images = []\n"), "{}", read(&path));
    }

    /// What `cnbx config run-image-mirrors add` and `remove` change is the entry's mirrors:
    /// the user's comments, key order, indentation and other entries stay as written, and
    /// removing what was added gives back the file byte for byte.
    #[test]
    fn comments_and_order_survive_add_and_remove() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(CONFIG_FILE_NAME);
        let original = "# cnbx and pack settings, kept by hand\n\
                        experimental = true # for the new flags\n\
                        \n\
                        # our run image\n\
                        [[run-images]]\n\
                        \x20 # mirrors close to CI\n\
                        \x20 mirrors = [\"gcr.io/me/run\"] # keep sorted\n\
                        \x20 image = \"paketo/run:base\"\n\
                        \n\
                        # untouched\n\
                        [[run-images]]\n\
                        image = \"other/run\"\n\
                        mirrors = [\n\
                        \x20 \"b.example.com/run\",\n\
                        \x20 \"a.example.com/run\",\n\
                        ]\n\
                        \n\
                        [registry-mirrors] # last\n\
                        \"index.docker.io\" = \"mirror.example.com\"\n";
        std::fs::write(&path, original).expect("write");

        let added = UserConfig::update(&path, |cfg| {
            let out = cfg.add_mirrors("paketo/run:base", &s(&["localhost:5000/run"]));
            Ok::<_, UserConfigError>((out.clone(), out.changed()))
        })
        .expect("added");
        assert!(added.changed());
        let with_mirror = original.replace(
            "mirrors = [\"gcr.io/me/run\"] # keep sorted",
            "mirrors = [\"gcr.io/me/run\", \"localhost:5000/run\"] # keep sorted",
        );
        assert_eq!(read(&path), with_mirror);

        let removed = UserConfig::update(&path, |cfg| {
            let out = cfg.remove_mirrors("paketo/run:base", Some(&s(&["localhost:5000/run"])));
            Ok::<_, UserConfigError>((out.clone(), out.changed()))
        })
        .expect("removed");
        assert!(removed.changed());
        assert_eq!(read(&path), original);

        // The file is still one that a TOML reader of pack's `[[run-images]]` reads as
        // before.
        let view: ConfigView = toml::from_str(&read(&path)).expect("TOML");
        let entries: Vec<(&str, &[String])> =
            view.run_images.iter().map(|e| (e.image.as_str(), e.mirrors.as_slice())).collect();
        assert_eq!(
            entries,
            [
                ("paketo/run:base", &s(&["gcr.io/me/run"])[..]),
                ("other/run", &s(&["b.example.com/run", "a.example.com/run"])[..]),
            ]
        );
    }

    #[test]
    fn inline_entries_stay_inline() {
        let text = "run-images = [{ image = \"a\", mirrors = [\"m1\"] }] # inline\nx = 1\n";
        let mut cfg = UserConfig::from_toml("/unused/config.toml", text).expect("valid");
        cfg.add_mirrors("a", &s(&["m2"]));
        cfg.add_mirrors("b", &s(&["n"]));
        let saved = cfg.to_toml();
        let again = UserConfig::from_toml("/unused/config.toml", &saved).expect("valid");
        assert_eq!(again.run_images(), cfg.run_images());
        assert!(saved.starts_with("run-images = [{ image = \"a\", mirrors = [\"m1\", \"m2\"] }"), "{saved}");
        assert!(!saved.contains("[[run-images]]"), "{saved}");
        assert!(saved.ends_with("] # inline\nx = 1\n"), "{saved}");
    }

    #[test]
    fn corrupt_files_give_line_and_column() {
        let cases = [
            ("pull-policy = \"always\"\n[[run-images]]\nimage = \"a\"\nmirrors = [\"x\"\n", 4, "unclosed array"),
            ("run-images = \"x\"\n", 1, "invalid type: string \"x\", expected a sequence"),
            ("\n[[run-images]]\nimage = \"a\"\nmirrors = \"x\"\n", 4, "invalid type: string \"x\""),
            ("[[run-images]]\nimage = \"a\"\nmirrors = [1]\n", 3, "expected a string"),
            ("[[run-images]]\nmirrors = []\n", 1, "missing field `image`"),
            ("a = 1\na = 2\n", 2, "duplicate key"),
            ("= broken", 1, ""),
        ];
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(CONFIG_FILE_NAME);
        for (text, want_line, want_message) in cases {
            std::fs::write(&path, text).expect("write");
            let err = UserConfig::load(&path).expect_err(text);
            let UserConfigError::Parse { line, column, message, .. } = &err else {
                panic!("{text:?}: not a parse error: {err}");
            };
            assert_eq!(*line, Some(want_line), "{text:?}: {err}");
            assert!(column.is_some(), "{text:?}");
            assert!(message.contains(want_message), "{text:?}: {message}");
            let shown = err.to_string();
            assert!(shown.starts_with(&format!("invalid config file {}", path.display())), "{shown}");
            assert!(shown.ends_with("; fix or delete the file"), "{shown}");
        }
        // The exact message for one case.
        std::fs::write(&path, "\n[[run-images]]\nimage = \"a\"\nmirrors = \"x\"\n").expect("write");
        let err = UserConfig::load(&path).expect_err("invalid");
        assert_eq!(
            err.to_string(),
            format!(
                "invalid config file {} at line 4, column 11: invalid type: string \"x\", \
                 expected a sequence; fix or delete the file",
                path.display()
            )
        );
    }

    #[test]
    fn a_directory_is_not_a_config_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        // A directory where the file should be.
        let err = UserConfig::load(dir.path()).expect_err("a directory");
        assert_eq!(
            err.to_string(),
            format!(
                "config file {} is a directory, not a regular file; replace it with a regular file or delete it",
                dir.path().display()
            )
        );
    }

    #[cfg(unix)]
    #[test]
    fn links_are_followed_but_only_to_regular_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(CONFIG_FILE_NAME);
        std::os::unix::fs::symlink("/dev/zero", &path).expect("symlink");
        let err = UserConfig::load(&path).expect_err("a device");
        assert!(matches!(err, UserConfigError::NotRegular { what: "a character device", .. }), "{err}");

        std::fs::remove_file(&path).expect("rm");
        assert!(std::process::Command::new("mkfifo").arg(&path).status().expect("mkfifo").success());
        let (tx, rx) = std::sync::mpsc::channel();
        let fifo = path.clone();
        std::thread::spawn(move || {
            let _ = tx.send(UserConfig::load(&fifo).map(drop).map_err(|e| e.to_string()));
        });
        let Ok(result) = rx.recv_timeout(std::time::Duration::from_secs(10)) else {
            // Let the blocked open go before failing.
            let _ = std::fs::OpenOptions::new().write(true).open(&path);
            panic!("load blocked on a FIFO");
        };
        assert!(result.expect_err("a FIFO").contains("is a FIFO, not a regular file"));

        std::fs::remove_file(&path).expect("rm");
        let big = "#".repeat(usize::try_from(cnbx_fs::limits::MAX_CONFIG_FILE).expect("fits") + 1);
        std::fs::write(&path, big).expect("write");
        let err = UserConfig::load(&path).expect_err("too large");
        assert_eq!(
            err.to_string(),
            format!(
                "config file {} is larger than the 10485760 bytes cnbx reads for a config file; fix or delete the file",
                path.display()
            )
        );
    }

    #[test]
    fn messages_quote_only_excerpts_of_text() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(CONFIG_FILE_NAME);
        std::fs::write(&path, "[[run-images]]\nimage = \"a\"\nsecret = \"hunter2\"\n\0\n").expect("write");
        let err = UserConfig::load(&path).expect_err("not text");
        let chain = format!("{err}: {}", std::error::Error::source(&err).expect("source"));
        assert_eq!(
            chain,
            format!(
                "invalid config file {}; fix or delete the file: it is not a text file: the control character \
                 U+0000 at line 4, column 1",
                path.display()
            )
        );

        let long = "x".repeat(1_000_000);
        std::fs::write(&path, format!("[[run-images]]\nimage = \"a\"\nmirrors = \"{long}\"\n")).expect("write");
        let err = UserConfig::load(&path).expect_err("wrong type");
        assert!(err.to_string().len() < 400, "{} bytes", err.to_string().len());
        assert!(err.to_string().contains(&format!("invalid type: string \"{}…\"", "x".repeat(80))), "{err}");
    }

    #[test]
    fn concurrent_updates_keep_every_change() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("home").join(CONFIG_FILE_NAME);
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let path = path.clone();
                std::thread::spawn(move || {
                    UserConfig::update(&path, |cfg| {
                        let out = cfg.add_mirrors("img", &[format!("m{i}")]);
                        // Widen the window between the read and the write.
                        std::thread::sleep(std::time::Duration::from_millis(20));
                        Ok::<_, UserConfigError>(((), out.changed()))
                    })
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread").expect("update");
        }
        let cfg = UserConfig::load(&path).expect("valid");
        assert_eq!(cfg.mirrors_for("img").len(), 8, "{:?}", cfg.mirrors_for("img"));
        assert_eq!(dir_entries(&dir.path().join("home")), [LOCK_FILE_NAME, CONFIG_FILE_NAME]);
    }

    #[test]
    fn a_failed_update_writes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(CONFIG_FILE_NAME);
        std::fs::write(&path, "x = 1\n").expect("write");
        let result: Result<(), UserConfigError> = UserConfig::update(&path, |cfg| {
            cfg.add_mirrors("img", &s(&["m"]));
            Err(UserConfigError::NoHome)
        });
        assert!(result.is_err());
        assert_eq!(read(&path), "x = 1\n");
    }

    #[test]
    fn save_is_atomic_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(CONFIG_FILE_NAME);
        std::fs::write(&path, "x = 1\n").expect("write");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        }
        let mut cfg = UserConfig::load(&path).expect("valid");
        for i in 0..5 {
            cfg.add_mirrors("img", &[format!("m{i}")]);
            cfg.save().expect("saved");
        }
        assert_eq!(dir_entries(dir.path()), [CONFIG_FILE_NAME]);
        assert_eq!(
            read(&path),
            "x = 1\n\n[[run-images]]\n  image = \"img\"\n  mirrors = [\"m0\", \"m1\", \"m2\", \"m3\", \"m4\"]\n"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("file").permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "permissions kept");
        }
    }

    #[test]
    fn failed_save_leaves_the_old_file_and_no_temp_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        // The target is a non-empty directory, so the rename must fail.
        let path = dir.path().join(CONFIG_FILE_NAME);
        std::fs::create_dir(&path).expect("mkdir");
        std::fs::write(path.join("keep"), "").expect("write");
        let mut cfg = UserConfig::empty(&path);
        cfg.add_mirrors("img", &s(&["m"]));
        let err = cfg.save().expect_err("rename onto a directory");
        assert!(matches!(err, UserConfigError::Write { .. }), "{err}");
        assert_eq!(dir_entries(dir.path()), [CONFIG_FILE_NAME]);
        assert_eq!(dir_entries(&path), ["keep"]);
    }

    #[cfg(unix)]
    #[test]
    fn save_through_a_symlink_keeps_the_link() {
        let dir = tempfile::tempdir().expect("tempdir");
        let real = dir.path().join("dotfiles/cnbx.toml");
        std::fs::create_dir_all(real.parent().expect("parent")).expect("mkdir");
        std::fs::write(&real, "").expect("write");
        let link = dir.path().join("home/config.toml");
        std::fs::create_dir_all(link.parent().expect("parent")).expect("mkdir");
        std::os::unix::fs::symlink(&real, &link).expect("symlink");

        let mut cfg = UserConfig::load(&link).expect("valid");
        cfg.add_mirrors("img", &s(&["m"]));
        cfg.save().expect("saved");
        assert!(std::fs::symlink_metadata(&link).expect("link").file_type().is_symlink());
        assert_eq!(read(&real), "[[run-images]]\n  image = \"img\"\n  mirrors = [\"m\"]\n");
    }

    /// A configuration as pack writes it (see testdata/README.md), with every key pack knows.
    const PACK_WRITTEN: &str = include_str!("../../../testdata/pack-home/config.toml");

    /// Applies `edit` to [`PACK_WRITTEN`] through a file and returns what was saved.
    fn edited(edit: impl FnOnce(&mut UserConfig)) -> String {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(CONFIG_FILE_NAME);
        std::fs::write(&path, PACK_WRITTEN).expect("write");
        UserConfig::update(&path, |cfg| {
            edit(cfg);
            Ok::<_, UserConfigError>(((), true))
        })
        .expect("saved");
        read(&path)
    }

    #[test]
    fn a_pack_file_is_read_with_every_key() {
        let cfg = UserConfig::from_toml("/p/config.toml", PACK_WRITTEN).expect("valid");
        assert_eq!(cfg.pull_policy(), Some("if-not-present"));
        assert_eq!(cfg.default_builder(), Some("cnbs/sample-builder:jammy"));
        assert_eq!(cfg.trusted_builders(), s(&["registry.example.com/team/builder"]));
        assert_eq!(
            cfg.registry_mirror_list(),
            [
                ("*".to_owned(), "airgap.example.com".to_owned()),
                ("index.docker.io".into(), "mirror.example.com".into())
            ]
        );
        assert_eq!(
            cfg.mirrors_for("paketobuildpacks/run-jammy-base"),
            s(&["registry.example.com/paketo/run-jammy-base"])
        );
        // Saving without a change gives back the file.
        assert_eq!(cfg.to_toml(), PACK_WRITTEN);
    }

    /// Every edit changes its key and nothing else, byte for byte.
    #[test]
    fn every_edit_of_a_pack_file_changes_only_its_key() {
        type Edit = Box<dyn FnOnce(&mut UserConfig)>;
        let cases: Vec<(&str, Edit, String)> = vec![
            (
                "add a run-image mirror",
                Box::new(|c| {
                    c.add_mirrors("cnbs/sample-stack-run:jammy", &s(&["aaa.example.com/run"]));
                }),
                PACK_WRITTEN.replace("mirrors = [\"gcr.io/cnbs", "mirrors = [\"aaa.example.com/run\", \"gcr.io/cnbs"),
            ),
            (
                "add a run image",
                Box::new(|c| {
                    c.add_mirrors("new/run", &s(&["m.example.com/new/run"]));
                }),
                PACK_WRITTEN.replace(
                    "paketo/run-jammy-base\"]\n",
                    "paketo/run-jammy-base\"]\n\n[[run-images]]\n  image = \"new/run\"\n  mirrors = [\"m.example.com/new/run\"]\n",
                ),
            ),
            (
                "remove a run image",
                Box::new(|c| {
                    c.remove_mirrors("cnbs/sample-stack-run:jammy", None);
                }),
                PACK_WRITTEN.replace(
                    "[[run-images]]\n  image = \"cnbs/sample-stack-run:jammy\"\n  mirrors = [\"gcr.io/cnbs/sample-stack-run:jammy\", \"index.docker.io/cnbs/sample-stack-run:jammy\"]\n\n",
                    "",
                ),
            ),
            (
                "set a registry mirror",
                Box::new(|c| {
                    c.set_registry_mirror("gcr.io", "gcr-mirror.example.com:5000");
                }),
                format!("{PACK_WRITTEN}  \"gcr.io\" = \"gcr-mirror.example.com:5000\"\n"),
            ),
            (
                "change a registry mirror",
                Box::new(|c| {
                    c.set_registry_mirror("index.docker.io", "other.example.com");
                }),
                PACK_WRITTEN.replace("= \"mirror.example.com\"", "= \"other.example.com\""),
            ),
            (
                "remove a registry mirror",
                Box::new(|c| {
                    c.remove_registry_mirror("*");
                }),
                PACK_WRITTEN.replace("  \"*\" = \"airgap.example.com\"\n", ""),
            ),
            (
                "set the pull policy",
                Box::new(|c| c.set_pull_policy(Some("always"))),
                PACK_WRITTEN.replace("pull-policy = \"if-not-present\"", "pull-policy = \"always\""),
            ),
            (
                "unset the pull policy",
                Box::new(|c| c.set_pull_policy(None)),
                PACK_WRITTEN.replace("pull-policy = \"if-not-present\"\n", ""),
            ),
            (
                "trust a builder",
                Box::new(|c| c.add_trusted_builder("x/y:1")),
                PACK_WRITTEN.replace(
                    "team/builder\"\n",
                    "team/builder\"\n\n[[trusted-builders]]\n  name = \"x/y:1\"\n",
                ),
            ),
            (
                "untrust a builder",
                Box::new(|c| {
                    c.remove_trusted_builder("registry.example.com/team/builder");
                }),
                PACK_WRITTEN.replace("[[trusted-builders]]\n  name = \"registry.example.com/team/builder\"\n\n", ""),
            ),
            (
                "set the default builder",
                Box::new(|c| c.set_default_builder(Some("my/builder:2"))),
                PACK_WRITTEN.replace("\"cnbs/sample-builder:jammy\"", "\"my/builder:2\""),
            ),
            (
                "unset the default builder",
                Box::new(|c| c.set_default_builder(None)),
                PACK_WRITTEN.replace("default-builder-image = \"cnbs/sample-builder:jammy\"\n", ""),
            ),
        ];
        for (what, edit, want) in cases {
            assert_eq!(edited(edit), want, "{what}");
        }
    }

    /// A file without `run-images` gets them where pack writes them: before the tables that
    /// follow them in pack's order.
    #[test]
    fn the_first_run_image_goes_before_the_later_tables() {
        let entries = "[[run-images]]\n  image = \"cnbs/sample-stack-run:jammy\"\n  mirrors = [\"gcr.io/cnbs/sample-stack-run:jammy\", \
                       \"index.docker.io/cnbs/sample-stack-run:jammy\"]\n\n";
        let without = PACK_WRITTEN.replace(entries, "").replace(
            "[[run-images]]\n  image = \"paketobuildpacks/run-jammy-base\"\n  mirrors = [\"registry.example.com/paketo/run-jammy-base\"]\n\n",
            "",
        );
        assert!(!without.contains("run-images"), "{without}");
        let mut cfg = UserConfig::from_toml("/p/config.toml", &without).expect("valid");
        assert_eq!(cfg.to_toml(), without);
        cfg.add_mirrors(
            "cnbs/sample-stack-run:jammy",
            &s(&["gcr.io/cnbs/sample-stack-run:jammy", "index.docker.io/cnbs/sample-stack-run:jammy"]),
        );
        assert_eq!(cfg.to_toml(), without.replace("[[trusted-builders]]", &format!("{entries}[[trusted-builders]]")));
    }

    /// A table that started the file gets its blank line when something is put before it.
    #[test]
    fn what_goes_before_the_first_table_is_set_apart() {
        let text = "[registry-mirrors]\n  \"*\" = \"m.example.com\"\n";
        let mut cfg = UserConfig::from_toml("/p/config.toml", text).expect("valid");
        cfg.set_pull_policy(Some("never"));
        assert_eq!(cfg.to_toml(), format!("pull-policy = \"never\"\n\n{text}"));
        let mut cfg = UserConfig::from_toml("/p/config.toml", text).expect("valid");
        cfg.add_mirrors("a/run", &s(&["m.example.com/a/run"]));
        assert_eq!(
            cfg.to_toml(),
            format!("[[run-images]]\n  image = \"a/run\"\n  mirrors = [\"m.example.com/a/run\"]\n\n{text}")
        );
        // A table written right after a value stays so.
        let text = "x = 1\n[registry-mirrors]\n  \"*\" = \"m.example.com\"\n";
        let mut cfg = UserConfig::from_toml("/p/config.toml", text).expect("valid");
        cfg.set_pull_policy(Some("never"));
        assert_eq!(cfg.to_toml(), "x = 1\npull-policy = \"never\"\n[registry-mirrors]\n  \"*\" = \"m.example.com\"\n");
    }

    /// What cnbx writes into an empty file is what pack writes for the same settings.
    #[test]
    fn new_keys_are_written_as_pack_writes_them() {
        let mut cfg = UserConfig::empty("/p/config.toml");
        cfg.set_default_builder(Some("cnbs/sample-builder:jammy"));
        cfg.set_pull_policy(Some("never"));
        cfg.add_mirrors("a/run", &s(&["m.example.com/a/run"]));
        cfg.add_trusted_builder("a/builder");
        cfg.add_trusted_builder("b/builder:1");
        cfg.set_registry_mirror("*", "airgap.example.com");
        cfg.set_registry_mirror("index.docker.io", "mirror.example.com");
        assert_eq!(
            cfg.to_toml(),
            "default-builder-image = \"cnbs/sample-builder:jammy\"\n\
             pull-policy = \"never\"\n\
             \n\
             [[run-images]]\n\
             \x20 image = \"a/run\"\n\
             \x20 mirrors = [\"m.example.com/a/run\"]\n\
             \n\
             [[trusted-builders]]\n\
             \x20 name = \"a/builder\"\n\
             \n\
             [[trusted-builders]]\n\
             \x20 name = \"b/builder:1\"\n\
             \n\
             [registry-mirrors]\n\
             \x20 \"*\" = \"airgap.example.com\"\n\
             \x20 \"index.docker.io\" = \"mirror.example.com\"\n"
        );
        // Nothing but a pull policy: no `run-images` (pack writes none for a nil list).
        let mut cfg = UserConfig::empty("/p/config.toml");
        cfg.set_pull_policy(Some("always"));
        assert_eq!(cfg.to_toml(), "pull-policy = \"always\"\n");
    }

    #[test]
    fn inline_and_dotted_forms_are_edited_in_their_form() {
        let text = "trusted-builders = [{ name = \"a/b\" }]\nregistry-mirrors = { \"gcr.io\" = \"g.example.com\" }\n";
        let mut cfg = UserConfig::from_toml("/p/config.toml", text).expect("valid");
        assert_eq!(cfg.trusted_builders(), s(&["a/b"]));
        cfg.add_trusted_builder("c/d");
        cfg.set_registry_mirror("*", "m.example.com");
        let saved = cfg.to_toml();
        let again = UserConfig::from_toml("/p/config.toml", &saved).expect("valid");
        assert_eq!(again.trusted_builders(), s(&["a/b", "c/d"]));
        assert_eq!(again.registry_mirrors().lookup(&"x/y".parse().expect("ref")), Some(("*", "m.example.com")));
        assert!(!saved.contains('['.to_string().repeat(2).as_str()), "{saved}");
        assert_eq!(cfg.remove_trusted_builder("a/b"), 1);
        assert_eq!(cfg.trusted_builders(), s(&["c/d"]));

        let mut cfg = UserConfig::from_toml("/p/config.toml", "registry-mirrors.\"gcr.io\" = \"g.example.com\"\n")
            .expect("valid");
        cfg.set_registry_mirror("quay.io", "q.example.com");
        assert_eq!(
            cfg.to_toml(),
            "registry-mirrors.\"gcr.io\" = \"g.example.com\"\nregistry-mirrors.\"quay.io\" = \"q.example.com\"\n"
        );
        assert_eq!(cfg.remove_registry_mirror("gcr.io").as_deref(), Some("g.example.com"));
        assert_eq!(cfg.remove_registry_mirror("gcr.io"), None);
    }

    #[test]
    fn the_keys_cnbx_uses_must_have_their_shape() {
        for (text, line, message) in [
            ("pull-policy = 1\n", 1, "invalid type: integer `1`, expected a string"),
            ("default-builder-image = [\"a\"]\n", 1, "expected a string"),
            ("[registry-mirrors]\n\"*\" = 1\n", 2, "expected a string"),
            ("[[trusted-builders]]\nname = \"a\"\n[[trusted-builders]]\nnome = \"b\"\n", 3, "missing field `name`"),
        ] {
            let err = UserConfig::from_toml("/p/config.toml", text).expect_err(text);
            let UserConfigError::Parse { line: got, message: m, .. } = &err else { panic!("{err}") };
            assert_eq!(*got, Some(line), "{text}: {err}");
            assert!(m.contains(message), "{text}: {m}");
        }
        // Keys cnbx does not use are pack's business.
        UserConfig::from_toml("/p/config.toml", "experimental = \"yes\"\nregistries = 3\n").expect("not checked");
    }

    #[test]
    fn pack_home_resolution() {
        assert_eq!(pack_home_from(Some("/p".into()), Some("/h".into())).expect("set"), PathBuf::from("/p"));
        assert_eq!(pack_home_from(Some("".into()), Some("/h".into())).expect("home"), PathBuf::from("/h/.pack"));
        assert_eq!(pack_home_from(None, Some("/h".into())).expect("home"), PathBuf::from("/h/.pack"));
        assert!(matches!(pack_home_from(None, None), Err(UserConfigError::NoPackHome)));
    }

    #[test]
    fn a_legacy_config_is_taken_over_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let legacy = dir.path().join("cnbx/config.toml");
        let config = dir.path().join("pack/config.toml");
        std::fs::create_dir_all(legacy.parent().expect("parent")).expect("mkdir");
        std::fs::create_dir_all(config.parent().expect("parent")).expect("mkdir");
        std::fs::write(
            &legacy,
            "[[run-images]]\nimage = \"a/run\"\nmirrors = [\"m1.example.com/a/run\", \"m0.example.com/a/run\"]\n\n\
             [[run-images]]\nimage = \"b/run\"\nmirrors = [\"x.example.com/b/run\"]\n",
        )
        .expect("write");
        let pack =
            "pull-policy = \"always\"\n\n[[run-images]]\n  image = \"a/run\"\n  mirrors = [\"m1.example.com/a/run\"]\n";
        std::fs::write(&config, pack).expect("write");

        let done = take_over_legacy(&legacy, &config).expect("taken over").expect("something to take over");
        assert_eq!(done.legacy, legacy);
        assert_eq!(done.kept_as, dir.path().join("cnbx").join(LEGACY_KEPT_AS));
        assert_eq!(
            done.added,
            [("a/run".to_owned(), s(&["m0.example.com/a/run"])), ("b/run".to_owned(), s(&["x.example.com/b/run"]))]
        );
        assert_eq!(
            read(&config),
            "pull-policy = \"always\"\n\n[[run-images]]\n  image = \"a/run\"\n  mirrors = [\"m0.example.com/a/run\", \
             \"m1.example.com/a/run\"]\n\n[[run-images]]\n  image = \"b/run\"\n  mirrors = [\"x.example.com/b/run\"]\n"
        );
        assert!(!legacy.exists());
        assert!(done.kept_as.exists());
        // Never again.
        let after = read(&config);
        assert_eq!(take_over_legacy(&legacy, &config).expect("nothing"), None);
        assert_eq!(read(&config), after);
    }

    #[test]
    fn a_legacy_config_that_is_the_config_is_left_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join(CONFIG_FILE_NAME);
        std::fs::write(&config, "[[run-images]]\nimage = \"a\"\nmirrors = [\"b\"]\n").expect("write");
        assert_eq!(take_over_legacy(&config, &config).expect("same"), None);
        #[cfg(unix)]
        {
            let link = dir.path().join("cnbx/config.toml");
            std::fs::create_dir_all(link.parent().expect("parent")).expect("mkdir");
            std::os::unix::fs::symlink(&config, &link).expect("symlink");
            assert_eq!(take_over_legacy(&link, &config).expect("same"), None);
            assert!(link.exists());
        }
        // An invalid legacy file is reported and stays.
        let legacy = dir.path().join("old/config.toml");
        std::fs::create_dir_all(legacy.parent().expect("parent")).expect("mkdir");
        std::fs::write(&legacy, "run-images = 3\n").expect("write");
        assert!(take_over_legacy(&legacy, &config).is_err());
        assert!(legacy.exists());
    }

    #[test]
    fn line_columns() {
        assert_eq!(line_column("abc", 0), (1, 1));
        assert_eq!(line_column("abc\nde", 4), (2, 1));
        assert_eq!(line_column("abc\nde", 6), (2, 3));
        assert_eq!(line_column("é = x", 2), (1, 2));
        assert_eq!(line_column("é = x", 1), (1, 1));
        assert_eq!(line_column("abc", 99), (1, 4));
    }
}
