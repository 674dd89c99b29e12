//! Errors with pack's wording, plus rustc-style source snippets for humans.

use std::path::PathBuf;

use cnbx_fs::{excerpt, excerpt_line};

/// How many unknown keys an error lists (with a snippet and a help line each); a count of
/// the others follows.
pub(crate) const MAX_LISTED_KEYS: usize = 20;

/// An unknown key found in builder.toml (after pack's reduction rule).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UnknownKey {
    /// The dotted key as pack prints it, without array indices (`buildpacks.url`).
    pub key: String,
    /// 1-based line of the key in the file (0 when it could not be located).
    pub line: usize,
    /// 1-based column (in characters) of the key in the file (0 when it could not be located).
    pub column: usize,
    /// A known key close to the unknown one, if any (`buildpacks` for `buidlpacks`).
    pub suggestion: Option<String>,
}

/// Every error the crate returns. `Display` is pack's error chain (no `ERROR: ` prefix);
/// [`ConfigError::diagnostic`] adds a source snippet and a hint.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("invalid builder toml: opening config file: open {}: {}", path.display(), go_io_error(source))]
    Open {
        /// The path as given (cleaned).
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// builder.toml is not a regular file (a symbolic link, a directory, a FIFO, a device).
    #[error(
        "invalid builder toml: '{}' is {what}{}",
        path.display(),
        if *what == "a symbolic link" { "; pass the file it points to" } else { ", not a regular file" }
    )]
    NotRegular {
        /// The path as given (cleaned).
        path: PathBuf,
        /// What it is (`a symbolic link`, `a FIFO`, ...).
        what: &'static str,
    },
    /// builder.toml is larger than cnbx reads.
    #[error("invalid builder toml: '{}' is larger than the {limit} bytes cnbx reads for a builder.toml", path.display())]
    TooLarge {
        /// The path as given (cleaned).
        path: PathBuf,
        /// The limit in bytes.
        limit: u64,
    },
    /// builder.toml is not text (not UTF-8, or a control character other than tab). Nothing
    /// of it is quoted.
    #[error(
        "invalid builder toml: parse contents of '{}': {reason}; a builder.toml is UTF-8 text without control characters other than tab",
        path.display()
    )]
    NotText {
        /// The path as given (cleaned).
        path: PathBuf,
        /// Where the first byte that is not text is.
        reason: cnbx_fs::NotText,
    },
    /// TOML syntax error or a value of the wrong type.
    #[error(
        "invalid builder toml: parse contents of '{}': decoding toml contents: toml: line {line}, column {column}: {message}",
        path.display()
    )]
    Toml {
        /// The path as given (cleaned).
        path: PathBuf,
        /// The TOML library's message (its quotes of the file shortened to excerpts).
        message: String,
        /// 1-based line.
        line: usize,
        /// 1-based column (characters).
        column: usize,
        /// Rendered snippet and help.
        diagnostic: Option<String>,
    },
    /// Keys that pack does not know (all of them, in file order).
    #[error(
        "invalid builder toml: parse contents of '{p}': unknown configuration {} {} in '{p}'",
        if keys.len() > 1 { "elements" } else { "element" },
        list_keys(keys),
        p = path.display()
    )]
    UnknownKeys {
        /// The path as given (cleaned).
        path: PathBuf,
        /// The reduced list of unknown keys, in file order.
        keys: Vec<UnknownKey>,
        /// Rendered snippets and help.
        diagnostic: Option<String>,
    },
    /// A `[[build.env]]` entry without a name.
    #[error("parse contents of '{}': env name should not be empty", path.display())]
    EnvNameEmpty {
        /// The path as given (cleaned).
        path: PathBuf,
        /// Warnings pack prints before this error.
        warnings: Vec<String>,
        /// Rendered snippet and help.
        diagnostic: Option<String>,
    },
    /// A `[[build.env]]` entry that cnbx refuses: a name that is not an environment variable
    /// name (`[A-Za-z_][A-Za-z0-9_]*`; it becomes a file name under `/cnb/build-config/env/`),
    /// or a value or delim with a NUL character.
    #[error("parse contents of '{}': [[build.env]] entry {entry}{}: {reason}", path.display(), at_line(*line))]
    EnvInvalid {
        /// The path as given (cleaned).
        path: PathBuf,
        /// 1-based number of the entry among the `[[build.env]]` entries.
        entry: usize,
        /// 1-based line of the offending key's value (0 when it could not be located).
        line: usize,
        /// What is wrong and what is allowed (names quoted as excerpts).
        reason: String,
        /// Warnings pack prints before this error.
        warnings: Vec<String>,
        /// Rendered snippet and help.
        diagnostic: Option<String>,
    },
    /// A `[[build.env]]` entry with an unknown `suffix`.
    #[error("unknown action type '{}'", excerpt(suffix))]
    EnvUnknownSuffix {
        /// The offending suffix.
        suffix: String,
        /// Warnings pack prints before this error.
        warnings: Vec<String>,
        /// Rendered snippet and help.
        diagnostic: Option<String>,
    },
    /// `append`/`prepend` env entries without a `delim` (one warning each in `warnings`).
    #[error("error parsing [[build.env]] in file '{}'", path.display())]
    EnvMissingDelim {
        /// The path as given (cleaned).
        path: PathBuf,
        /// Warnings pack prints before this error (including one per missing delimiter).
        warnings: Vec<String>,
        /// Rendered snippets and help.
        diagnostic: Option<String>,
    },
    /// [`crate::LoadedConfig::validate`] failed (pack's `ValidateConfig`).
    #[error("invalid builder config: {message}")]
    Invalid {
        /// pack's message, e.g. `build.image is required`.
        message: String,
        /// Rendered snippet (when there is a line to show) and help.
        diagnostic: Option<String>,
    },
    /// A run image or run-image mirror is not a valid image name (see
    /// [`crate::LoadedConfig::check_run_image_names`]).
    #[error(
        "invalid run image config: {subject} ({}{}): {reason}",
        path.display(),
        if *line == 0 { String::new() } else { format!(", line {line}") }
    )]
    RunImageName {
        /// The path as given (cleaned).
        path: PathBuf,
        /// 1-based line of the name (0 when it could not be located).
        line: usize,
        /// Which name: `run image '<name>'` or `mirror '<name>' of run image '<name>'` (quoted
        /// as excerpts).
        subject: String,
        /// Why it is not an image name.
        reason: String,
        /// Rendered snippet and help.
        diagnostic: Option<String>,
    },
    /// `[lifecycle]` has both `version` and `uri`.
    #[error("'lifecycle' can only declare 'version' or 'uri', not both")]
    LifecycleBothSet,
    /// `[lifecycle].version` is not a semantic version.
    #[error("'lifecycle.version' must be a valid semver: {reason}")]
    LifecycleVersion {
        /// The configured version.
        version: String,
        /// Why it does not parse (Masterminds/semver wording).
        reason: String,
    },
}

impl ConfigError {
    /// Extra help for humans: a `--> file:line:col` snippet of the offending line(s) and a
    /// `help:` line. `None` when there is nothing to add. Deterministic for a given input.
    pub fn diagnostic(&self) -> Option<String> {
        match self {
            ConfigError::Open { path, .. } => {
                Some(format!("help: check that '{}' exists and is readable", path.display()))
            }
            ConfigError::Toml { diagnostic, .. }
            | ConfigError::UnknownKeys { diagnostic, .. }
            | ConfigError::EnvNameEmpty { diagnostic, .. }
            | ConfigError::EnvInvalid { diagnostic, .. }
            | ConfigError::EnvUnknownSuffix { diagnostic, .. }
            | ConfigError::EnvMissingDelim { diagnostic, .. }
            | ConfigError::RunImageName { diagnostic, .. }
            | ConfigError::Invalid { diagnostic, .. } => diagnostic.clone(),
            ConfigError::NotRegular { .. } | ConfigError::TooLarge { .. } | ConfigError::NotText { .. } => None,
            ConfigError::LifecycleBothSet => {
                Some("help: remove either `version` or `uri` from [lifecycle]".to_string())
            }
            ConfigError::LifecycleVersion { version, .. } => Some(format!(
                "help: [lifecycle] version = \"{}\" is not MAJOR[.MINOR[.PATCH]][-PRERELEASE][+BUILD], e.g. \"0.21.0\"",
                excerpt(version)
            )),
        }
    }

    /// Warnings pack prints before the error itself (the `[[build.env]]` errors come after
    /// the configuration and env warnings). Empty for the other errors.
    pub fn warnings(&self) -> &[String] {
        match self {
            ConfigError::EnvNameEmpty { warnings, .. }
            | ConfigError::EnvInvalid { warnings, .. }
            | ConfigError::EnvUnknownSuffix { warnings, .. }
            | ConfigError::EnvMissingDelim { warnings, .. } => warnings,
            _ => &[],
        }
    }
}

/// The unknown keys as the error lists them: at most [`MAX_LISTED_KEYS`], each an excerpt.
fn list_keys(keys: &[UnknownKey]) -> String {
    let mut out = keys.iter().take(MAX_LISTED_KEYS).map(|k| format!("'{}'", excerpt(&k.key))).collect::<Vec<_>>();
    if keys.len() > MAX_LISTED_KEYS {
        out.push(format!("and {} more", keys.len() - MAX_LISTED_KEYS));
    }
    out.join(", ")
}

/// ` (line N)`, or nothing for line 0 (unknown).
fn at_line(line: usize) -> String {
    if line == 0 { String::new() } else { format!(" (line {line})") }
}

/// Go's wording for the common `os.Open` failures.
fn go_io_error(err: &std::io::Error) -> String {
    match err.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        std::io::ErrorKind::IsADirectory => "is a directory".to_string(),
        _ => {
            let text = err.to_string();
            match text.find(" (os error") {
                Some(i) => text[..i].to_lowercase(),
                None => text,
            }
        }
    }
}

/// A 1-based (line, column) for a byte offset; the column counts characters.
pub(crate) fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let offset = floor_char_boundary(source, offset.min(source.len()));
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// [`line_col`] of ascending offsets in one pass over the source (many keys in a large file
/// would otherwise cost a scan from the start each).
pub(crate) struct LineCounter<'a> {
    source: &'a str,
    offset: usize,
    line: usize,
    column: usize,
}

impl<'a> LineCounter<'a> {
    pub(crate) fn new(source: &'a str) -> Self {
        Self { source, offset: 0, line: 1, column: 1 }
    }

    /// The 1-based (line, column) of `offset`; fast when offsets come in ascending order.
    pub(crate) fn at(&mut self, offset: usize) -> (usize, usize) {
        let offset = floor_char_boundary(self.source, offset.min(self.source.len()));
        if offset < self.offset {
            return line_col(self.source, offset);
        }
        for c in self.source[self.offset..offset].chars() {
            if c == '\n' {
                self.line += 1;
                self.column = 1;
            } else {
                self.column += 1;
            }
        }
        self.offset = offset;
        (self.line, self.column)
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// One labelled source span to render.
pub(crate) struct Label<'a> {
    pub(crate) span: std::ops::Range<usize>,
    pub(crate) text: &'a str,
}

/// Renders rustc-style snippets:
///
/// ```text
///   --> builder.toml:12:3
///    |
/// 12 |   uri = 3
///    |   ^^^ label
/// ```
///
/// A line longer than [`cnbx_fs::MAX_EXCERPT_CHARS`] is shown as an excerpt around the
/// label's column ([`excerpt_line`]); labels must be short (quote names with [`excerpt`]).
/// The source must be text ([`cnbx_fs::check_text`]).
pub(crate) fn render_snippet(display_path: &str, source: &str, labels: &[Label<'_>]) -> String {
    let mut out = String::new();
    for (i, label) in labels.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let start = floor_char_boundary(source, label.span.start.min(source.len()));
        let (line, column) = line_col(source, start);
        let line_start = source[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = source[start..].find('\n').map_or(source.len(), |i| start + i);
        let text = source[line_start..line_end].trim_end_matches('\r');
        let end = floor_char_boundary(source, label.span.end.min(line_start + text.len()).max(start));
        let width = line.to_string().len();
        let pad = " ".repeat(width);
        let (shown, at) = excerpt_line(text, column - 1);
        let marker: String = shown.chars().take(at).map(|c| if c == '\t' { '\t' } else { ' ' }).collect();
        let room = shown.chars().count().saturating_sub(at);
        let carets = "^".repeat(source[start..end].chars().take(room).count().max(1));
        let text = shown;
        out.push_str(&format!("{pad}--> {display_path}:{line}:{column}\n"));
        out.push_str(&format!("{pad} |\n"));
        out.push_str(&format!("{line} | {text}\n"));
        if label.text.is_empty() {
            out.push_str(&format!("{pad} | {marker}{carets}"));
        } else {
            out.push_str(&format!("{pad} | {marker}{carets} {}", label.text));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_chars() {
        let src = "a = 1\nbé = \"x\"\n";
        assert_eq!(line_col(src, 0), (1, 1));
        assert_eq!(line_col(src, 6), (2, 1));
        let eq = src.find('=').unwrap();
        assert_eq!(line_col(src, eq), (1, 3));
        let second_eq = src.rfind('=').unwrap();
        assert_eq!(line_col(src, second_eq), (2, 4));
        assert_eq!(line_col(src, src.len()), (3, 1));
    }

    #[test]
    fn line_counter_agrees_with_line_col() {
        let src = "a = 1\nbé = \"x\"\n\nz";
        let mut counter = LineCounter::new(src);
        let offsets: Vec<usize> = (0..=src.len() + 2).collect();
        for &o in offsets.iter().chain([3, 0].iter()) {
            assert_eq!(counter.at(o), line_col(src, o), "{o}");
        }
    }

    #[test]
    fn snippet_layout() {
        let mut src = String::new();
        for _ in 0..11 {
            src.push_str("# filler\n");
        }
        src.push_str("  uri = 3\n");
        let start = src.find("3").unwrap();
        let out = render_snippet("builder.toml", &src, &[Label { span: start..start + 1, text: "expected a string" }]);
        assert_eq!(out, "  --> builder.toml:12:9\n   |\n12 |   uri = 3\n   |         ^ expected a string");
    }

    #[test]
    fn snippet_clamps_to_the_line_and_keeps_tabs() {
        let src = "\tfoo = [\n1]\n";
        let out = render_snippet("b.toml", src, &[Label { span: 1..src.len(), text: "" }]);
        assert_eq!(out, " --> b.toml:1:2\n  |\n1 | \tfoo = [\n  | \t^^^^^^^");
    }

    #[test]
    fn snippet_of_a_long_line_is_an_excerpt_around_the_label() {
        let src = format!("a = \"{}\" x\n", "v".repeat(100_000));
        let x = src.find(" x").unwrap() + 1;
        let out = render_snippet("b.toml", &src, &[Label { span: 4..src.len(), text: "whole" }]);
        assert!(out.len() < 400, "{out}");
        assert!(out.contains("\n1 | a = \"vvv"), "{out}");
        let out = render_snippet("b.toml", &src, &[Label { span: x..x + 1, text: "here" }]);
        assert!(out.len() < 400, "{out}");
        let lines: Vec<&str> = out.lines().collect();
        let shown = lines[2].strip_prefix("1 | ").unwrap();
        let caret = lines[3].strip_prefix("  | ").unwrap();
        assert!(shown.starts_with('…') && shown.ends_with(" x"), "{out}");
        assert_eq!(caret.trim_start().chars().count(), "^ here".chars().count(), "{out}");
        assert_eq!(shown.chars().nth(caret.chars().count() - "^ here".len()), Some('x'), "{out}");
    }

    #[test]
    fn snippet_at_a_crlf_line_end() {
        let src = "a = [\r\nb";
        let out = render_snippet("b.toml", src, &[Label { span: 6..7, text: "x" }]);
        assert_eq!(out, " --> b.toml:1:7\n  |\n1 | a = [\n  |      ^ x");
    }

    #[test]
    fn open_error_uses_go_wording() {
        let err = ConfigError::Open {
            path: PathBuf::from("x.toml"),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        assert_eq!(
            err.to_string(),
            "invalid builder toml: opening config file: open x.toml: no such file or directory"
        );
    }
}
