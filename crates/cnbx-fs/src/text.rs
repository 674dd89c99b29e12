//! How much of someone else's text cnbx quotes, and whether a file is text at all.

use std::borrow::Cow;
use std::fmt;

/// The most characters of user content a message quotes.
pub const MAX_EXCERPT_CHARS: usize = 80;

/// `s` as it may appear in a message: at most [`MAX_EXCERPT_CHARS`] characters (then `…`),
/// control characters (newlines, escapes, NUL) shown as `\u{…}` escapes so that a message
/// is always one line and cannot drive the terminal.
pub fn excerpt(s: &str) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i == MAX_EXCERPT_CHARS {
            out.push('…');
            break;
        }
        push_shown(&mut out, c, false);
    }
    out
}

/// `s` as a terminal may be given it: every control character (the C0 controls, DEL and the
/// C1 controls, which is what [`char::is_control`] means) shown as a `\u{…}` escape, the
/// same as in an [`excerpt`], so that text from someone else cannot move the cursor, clear
/// or retitle the terminal, rewrite what was printed before, or write to the clipboard.
/// With `keep_layout`, line feeds and tabs are kept (for text whose lines and columns its
/// writer laid out); without it, they are escaped too (for one-line messages). Text without
/// a control character is returned as it is.
pub fn escape_controls(s: &str, keep_layout: bool) -> Cow<'_, str> {
    let kept = |c: char| keep_layout && (c == '\n' || c == '\t');
    if !s.chars().any(|c| c.is_control() && !kept(c)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        if c.is_control() && !kept(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn push_shown(out: &mut String, c: char, keep_tab: bool) {
    if c.is_control() && !(keep_tab && c == '\t') {
        out.extend(c.escape_unicode());
    } else {
        out.push(c);
    }
}

/// A source line as a message may show it, pointing at the character `column` (0-based,
/// in characters): the whole line when it has at most [`MAX_EXCERPT_CHARS`] characters,
/// else a window of that many characters around `column`, with `…` where the line was cut.
/// Tabs are kept (so that a marker line below can copy them and stay aligned); other
/// control characters are escaped as in [`excerpt`]. Returns the shown text and the
/// character index in it at which `column` is shown (the shown length when `column` is past
/// the end of the line).
pub fn excerpt_line(line: &str, column: usize) -> (String, usize) {
    let count = line.chars().count();
    let (start, end) = if count <= MAX_EXCERPT_CHARS {
        (0, count)
    } else {
        let end = (column.saturating_sub(MAX_EXCERPT_CHARS / 2) + MAX_EXCERPT_CHARS).min(count);
        (end - MAX_EXCERPT_CHARS, end)
    };
    let mut out = String::new();
    if start > 0 {
        out.push('…');
    }
    let mut at = None;
    for (i, c) in line.chars().enumerate().skip(start).take(end - start) {
        if i == column {
            at = Some(out.chars().count());
        }
        push_shown(&mut out, c, true);
    }
    let at = at.unwrap_or_else(|| out.chars().count());
    if end < count {
        out.push('…');
    }
    (out, at)
}

/// `message` (an error message of a parser, which quotes parts of its input between `"` or
/// `` ` ``) with every quoted part shortened to an [`excerpt`], and the unquoted rest kept.
/// A quote that is not closed runs to the end of the message.
pub fn excerpt_quoted(message: &str) -> String {
    let mut out = String::new();
    let mut rest = message;
    while let Some(open) = rest.find(['"', '`']) {
        let quote = rest[open..].chars().next().unwrap_or('"');
        out.push_str(&rest[..=open]);
        let inner_start = open + 1;
        let close = closing_quote(&rest[inner_start..], quote).map(|i| inner_start + i);
        match close {
            Some(close) => {
                out.push_str(&excerpt(&rest[inner_start..close]));
                out.push(quote);
                rest = &rest[close + 1..];
            }
            None => {
                out.push_str(&excerpt(&rest[inner_start..]));
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// The byte index of the quote closing a quoted part that starts at `s` (a backslash escapes
/// the next character inside `"…"`, as Rust's `Debug` writes strings).
fn closing_quote(s: &str, quote: char) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' && quote == '"' {
            escaped = true;
        } else if c == quote {
            return Some(i);
        }
    }
    None
}

/// Why bytes are not a text file: not UTF-8, or a control character other than tab, line
/// feed and carriage return (what TOML and other text formats allow). Such a file is never
/// quoted in a message; this names only where the problem is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("it is not a text file: {problem} at line {line}, column {column}")]
pub struct NotText {
    /// 1-based line of the first offending byte.
    pub line: usize,
    /// 1-based column (in characters) of the first offending byte.
    pub column: usize,
    /// What is there.
    pub problem: NotTextProblem,
}

/// What makes bytes not text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotTextProblem {
    /// A byte sequence that is not UTF-8.
    InvalidUtf8,
    /// A control character other than tab, line feed and carriage return.
    Control(char),
}

impl fmt::Display for NotTextProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidUtf8 => f.write_str("a byte sequence that is not UTF-8"),
            Self::Control(c) => write!(f, "the control character U+{:04X}", u32::from(*c)),
        }
    }
}

fn is_refused_control(c: char) -> bool {
    (c.is_ascii_control() && !matches!(c, '\t' | '\n' | '\r')) || c == '\u{7f}'
}

/// `s` if it is text (see [`NotText`]).
pub fn check_text(s: &str) -> Result<&str, NotText> {
    match s.char_indices().find(|(_, c)| is_refused_control(*c)) {
        None => Ok(s),
        Some((offset, c)) => {
            let (line, column) = line_column(s, offset);
            Err(NotText { line, column, problem: NotTextProblem::Control(c) })
        }
    }
}

/// `bytes` as text (see [`NotText`]).
pub fn text_of(bytes: &[u8]) -> Result<&str, NotText> {
    match std::str::from_utf8(bytes) {
        Ok(s) => check_text(s),
        Err(e) => {
            let valid = std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default();
            // A control character before the bad sequence is reported first, as it comes first.
            check_text(valid)?;
            let (line, column) = line_column(valid, valid.len());
            Err(NotText { line, column, problem: NotTextProblem::InvalidUtf8 })
        }
    }
}

/// 1-based line and column (in characters) of the byte `offset` of `s` (a char boundary).
fn line_column(s: &str, offset: usize) -> (usize, usize) {
    let before = &s[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// `err` and its sources joined by `": "`: how an error chain is told in one line (a warning,
/// a section of `builder inspect`), as the CLI prints it after `ERROR:`.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_chain_joins_every_source() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer")]
        struct Outer(#[source] std::io::Error);
        let e = Outer(std::io::Error::other("inner"));
        assert_eq!(error_chain(&e), "outer: inner");
        assert_eq!(error_chain(&std::io::Error::other("alone")), "alone");
    }

    #[test]
    fn excerpts_are_short_and_one_line() {
        assert_eq!(excerpt("abc"), "abc");
        assert_eq!(excerpt("a\nb\0"), "a\\u{a}b\\u{0}");
        let long = "x".repeat(1000);
        let e = excerpt(&long);
        assert_eq!(e.chars().count(), MAX_EXCERPT_CHARS + 1);
        assert!(e.ends_with('…'));
        assert_eq!(excerpt("\u{1b}[31mred"), "\\u{1b}[31mred");
    }

    #[test]
    fn control_characters_are_escaped_for_the_terminal() {
        // C0 (escape, bell, carriage return, backspace), DEL and C1 (CSI, OSC, NEL).
        let hostile = "a\u{1b}]52;c;cHdu\u{7}b\rc\u{8}d\u{7f}e\u{9b}31mf\u{9d}g\u{85}h";
        let want = "a\\u{1b}]52;c;cHdu\\u{7}b\\u{d}c\\u{8}d\\u{7f}e\\u{9b}31mf\\u{9d}g\\u{85}h";
        assert_eq!(escape_controls(hostile, true), want);
        assert_eq!(escape_controls(hostile, false), want);
        assert_eq!(escape_controls("one\n\ttwo\n", true), "one\n\ttwo\n");
        assert_eq!(escape_controls("one\n\ttwo", false), "one\\u{a}\\u{9}two");
        // Ordinary text, however far from ASCII, is kept as it is, without a copy.
        let plain = "Détection ├ └ │ 日本語 emoji 🙂 \\u{1b} typed by hand";
        assert!(matches!(escape_controls(plain, false), Cow::Borrowed(s) if s == plain));
    }

    #[test]
    fn short_lines_are_shown_whole() {
        assert_eq!(excerpt_line("\tkey = 1", 7), ("\tkey = 1".to_string(), 7));
        assert_eq!(excerpt_line("a = 1", 5), ("a = 1".to_string(), 5));
        assert_eq!(excerpt_line("a\u{1b}b", 2), ("a\\u{1b}b".to_string(), 7));
        assert_eq!(excerpt_line("", 0), (String::new(), 0));
    }

    #[test]
    fn long_lines_are_cut_around_the_column() {
        let line = format!("{}X{}", "a".repeat(1000), "b".repeat(1000));
        let (shown, at) = excerpt_line(&line, 1000);
        assert_eq!(shown.chars().nth(at), Some('X'));
        assert!(shown.starts_with('…') && shown.ends_with('…'), "{shown}");
        assert_eq!(shown.chars().count(), MAX_EXCERPT_CHARS + 2);
        // At the start and at the end of the line, only one side is cut.
        let (shown, at) = excerpt_line(&line, 0);
        assert_eq!((at, shown.chars().count()), (0, MAX_EXCERPT_CHARS + 1));
        assert!(shown.ends_with('…'));
        let (shown, at) = excerpt_line(&line, 2001);
        assert!(shown.starts_with('…') && !shown.ends_with('…'), "{shown}");
        assert_eq!(at, shown.chars().count());
        let (shown, at) = excerpt_line(&line, 1990);
        assert_eq!(shown.chars().nth(at), Some('b'));
        assert_eq!(shown.chars().count(), MAX_EXCERPT_CHARS + 1);
    }

    #[test]
    fn quoted_parts_are_shortened() {
        let msg = "invalid type: integer `3`, expected a string";
        assert_eq!(excerpt_quoted(msg), msg);
        let long = "x".repeat(10_000);
        let msg = format!("invalid type: string \"{long}\", expected a boolean");
        let short = excerpt_quoted(&msg);
        assert_eq!(short, format!("invalid type: string \"{}…\", expected a boolean", "x".repeat(80)));
        assert_eq!(excerpt_quoted("a \"b\\\"c\" d"), "a \"b\\\"c\" d");
        assert_eq!(excerpt_quoted(&format!("unclosed `{long}")).chars().count(), 10 + MAX_EXCERPT_CHARS + 1);
    }

    #[test]
    fn text_check() {
        assert_eq!(text_of(b"a = 1\r\n\tb = \"\xc3\xa9\"\n").unwrap(), "a = 1\r\n\tb = \"é\"\n");
        let err = text_of(b"a = 1\nb\0").unwrap_err();
        assert_eq!(err, NotText { line: 2, column: 2, problem: NotTextProblem::Control('\0') });
        assert_eq!(err.to_string(), "it is not a text file: the control character U+0000 at line 2, column 2");
        let err = text_of(b"\xc3\xa9\xff").unwrap_err();
        assert_eq!(err, NotText { line: 1, column: 2, problem: NotTextProblem::InvalidUtf8 });
        assert_eq!(text_of(b"\x1b\xff").unwrap_err().problem, NotTextProblem::Control('\u{1b}'));
        assert!(check_text("del\u{7f}").is_err());
        assert!(check_text("c1 \u{85} is escaped when quoted, not refused").is_ok());
    }
}
