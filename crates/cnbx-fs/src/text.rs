//! How much of someone else's text cnbx quotes.

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
        if c.is_control() {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
