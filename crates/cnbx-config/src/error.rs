//! Errors with pack's wording, plus rustc-style source snippets for humans.

use std::path::PathBuf;

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
    /// TOML syntax error or a value of the wrong type.
    #[error(
        "invalid builder toml: parse contents of '{}': decoding toml contents: toml: line {line}, column {column}: {message}",
        path.display()
    )]
    Toml {
        /// The path as given (cleaned).
        path: PathBuf,
        /// The TOML library's message.
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
        keys.iter().map(|k| format!("'{}'", k.key)).collect::<Vec<_>>().join(", "),
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
    /// A `[[build.env]]` entry with an unknown `suffix`.
    #[error("unknown action type '{suffix}'")]
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
            | ConfigError::EnvUnknownSuffix { diagnostic, .. }
            | ConfigError::EnvMissingDelim { diagnostic, .. }
            | ConfigError::Invalid { diagnostic, .. } => diagnostic.clone(),
            ConfigError::LifecycleBothSet => {
                Some("help: remove either `version` or `uri` from [lifecycle]".to_string())
            }
            ConfigError::LifecycleVersion { version, .. } => Some(format!(
                "help: [lifecycle] version = \"{version}\" is not MAJOR[.MINOR[.PATCH]][-PRERELEASE][+BUILD], e.g. \"0.21.0\""
            )),
        }
    }

    /// Warnings pack prints before the error itself (the `[[build.env]]` errors come after
    /// the configuration and env warnings). Empty for the other errors.
    pub fn warnings(&self) -> &[String] {
        match self {
            ConfigError::EnvNameEmpty { warnings, .. }
            | ConfigError::EnvUnknownSuffix { warnings, .. }
            | ConfigError::EnvMissingDelim { warnings, .. } => warnings,
            _ => &[],
        }
    }
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
        let end = floor_char_boundary(source, label.span.end.clamp(start, line_start + text.len()));
        let width = line.to_string().len();
        let pad = " ".repeat(width);
        let marker: String = source[line_start..start].chars().map(|c| if c == '\t' { '\t' } else { ' ' }).collect();
        let carets = "^".repeat(source[start..end].chars().count().max(1));
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
