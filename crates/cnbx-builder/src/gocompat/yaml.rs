//! A small emitter that writes what `gopkg.in/yaml.v3` (v3.0.1, `yaml.NewEncoder(w).Encode(v)`,
//! default settings) writes, for `builder inspect --output yaml`.
//!
//! serde_norway's output differs from yaml.v3's in indentation (yaml.v3 indents by 4 and
//! re-aligns nested block collections to multiples of 4, except right after a `- `), in
//! quoting (yaml.v3 double-quotes strings that would resolve to another type, including
//! YAML 1.1 booleans and base-60 numbers, and single-quotes those that cannot be plain) and
//! in empty collections (`[]`/`{}`), so the relevant parts of yaml.v3's encoder and emitter are
//! ported here: the scalar resolver, `yaml_emitter_analyze_scalar`, style selection, the
//! plain/single-quoted/double-quoted/literal writers, and the indentation rules for block
//! mappings and sequences. Lines are never folded (yaml.v3's default width is unlimited).

use super::Node;

/// `node` as yaml.v3's `Encoder.Encode` writes it (with its trailing newline).
pub fn to_yaml(node: &Node) -> String {
    let mut emitter = Emitter::default();
    emitter.node(node, Parent::Root);
    // Document end: yaml.v3 writes an indent, i.e. ends the last line.
    emitter.indent = -1;
    emitter.write_indent();
    emitter.out
}

const BEST_INDENT: i64 = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Parent {
    Root,
    MapValue,
    SeqItem,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    Plain,
    SingleQuoted,
    DoubleQuoted,
    Literal,
}

struct Emitter {
    out: String,
    column: i64,
    indent: i64,
    indents: Vec<i64>,
    whitespace: bool,
    indention: bool,
}

impl Default for Emitter {
    fn default() -> Self {
        Self { out: String::new(), column: 0, indent: -1, indents: Vec::new(), whitespace: true, indention: true }
    }
}

impl Emitter {
    fn put(&mut self, c: char) {
        self.out.push(c);
        self.column += 1;
    }

    fn put_break(&mut self) {
        self.out.push('\n');
        self.column = 0;
        self.indention = true;
    }

    fn write_break(&mut self, c: char) {
        if c == '\n' {
            self.put_break();
        } else {
            self.out.push(c);
            self.column = 0;
            self.indention = true;
        }
    }

    fn write_indent(&mut self) {
        let indent = self.indent.max(0);
        if !self.indention || self.column > indent || (self.column == indent && !self.whitespace) {
            self.put_break();
        }
        while self.column < indent {
            self.put(' ');
        }
        self.whitespace = true;
    }

    fn write_indicator(&mut self, indicator: &str, need_whitespace: bool, is_whitespace: bool, is_indention: bool) {
        if need_whitespace && !self.whitespace {
            self.put(' ');
        }
        for c in indicator.chars() {
            self.put(c);
        }
        self.whitespace = is_whitespace;
        self.indention = self.indention && is_indention;
    }

    /// `yaml_emitter_increase_indent`; `in_sequence_item` is "the state on top of the stack
    /// is a block sequence item".
    fn increase_indent(&mut self, flow: bool, in_sequence_item: bool) {
        self.indents.push(self.indent);
        if self.indent < 0 {
            self.indent = if flow { BEST_INDENT } else { 0 };
        } else if in_sequence_item {
            self.indent += 2;
        } else {
            self.indent = BEST_INDENT * ((self.indent + BEST_INDENT) / BEST_INDENT);
        }
    }

    fn pop_indent(&mut self) {
        self.indent = self.indents.pop().unwrap_or(-1);
    }

    fn node(&mut self, node: &Node, parent: Parent) {
        match node {
            Node::Null => self.scalar("null", Style::Plain, parent),
            Node::Bool(b) => self.scalar(if *b { "true" } else { "false" }, Style::Plain, parent),
            Node::Str(s) => self.scalar(s, string_style(s), parent),
            Node::List { items, .. } if items.is_empty() => self.empty_flow("[", "]"),
            Node::List { items, .. } => {
                self.increase_indent(false, parent == Parent::SeqItem);
                for item in items {
                    self.write_indent();
                    self.write_indicator("-", true, false, true);
                    self.node(item, Parent::SeqItem);
                }
                self.pop_indent();
            }
            Node::Map(entries) if entries.is_empty() => self.empty_flow("{", "}"),
            Node::Map(entries) => {
                self.increase_indent(false, parent == Parent::SeqItem);
                for (key, value) in entries {
                    self.write_indent();
                    // Keys are fixed field names, always plain simple keys.
                    self.write_plain(key);
                    self.write_indicator(":", false, false, false);
                    self.node(value, Parent::MapValue);
                }
                self.pop_indent();
            }
        }
    }

    fn empty_flow(&mut self, open: &str, close: &str) {
        self.write_indicator(open, true, true, false);
        if self.column == 0 {
            self.write_indent();
        }
        self.write_indicator(close, false, false, false);
    }

    fn scalar(&mut self, value: &str, requested: Style, parent: Parent) {
        let style = select_style(value, requested);
        self.increase_indent(true, parent == Parent::SeqItem);
        match style {
            Style::Plain => self.write_plain(value),
            Style::SingleQuoted => self.write_single_quoted(value),
            Style::DoubleQuoted => self.write_double_quoted(value),
            Style::Literal => self.write_literal(value),
        }
        self.pop_indent();
    }

    fn write_plain(&mut self, value: &str) {
        if !value.is_empty() && !self.whitespace {
            self.put(' ');
        }
        for c in value.chars() {
            self.put(c);
        }
        if !value.is_empty() {
            self.whitespace = false;
        }
        self.indention = false;
    }

    fn write_single_quoted(&mut self, value: &str) {
        self.write_indicator("'", true, false, false);
        let mut breaks = false;
        for c in value.chars() {
            if c == ' ' {
                self.put(c);
            } else if is_break(c) {
                if !breaks && c == '\n' {
                    self.put_break();
                }
                self.write_break(c);
                breaks = true;
            } else {
                if breaks {
                    self.write_indent();
                }
                if c == '\'' {
                    self.put('\'');
                }
                self.put(c);
                self.indention = false;
                breaks = false;
            }
        }
        self.write_indicator("'", false, false, false);
        self.whitespace = false;
        self.indention = false;
    }

    fn write_double_quoted(&mut self, value: &str) {
        self.write_indicator("\"", true, false, false);
        let bom = value.starts_with('\u{feff}');
        for c in value.chars() {
            if !is_printable(c) || bom || is_break(c) || c == '"' || c == '\\' {
                self.put('\\');
                let short = match c {
                    '\0' => Some('0'),
                    '\u{7}' => Some('a'),
                    '\u{8}' => Some('b'),
                    '\t' => Some('t'),
                    '\n' => Some('n'),
                    '\u{b}' => Some('v'),
                    '\u{c}' => Some('f'),
                    '\r' => Some('r'),
                    '\u{1b}' => Some('e'),
                    '"' => Some('"'),
                    '\\' => Some('\\'),
                    '\u{85}' => Some('N'),
                    '\u{a0}' => Some('_'),
                    '\u{2028}' => Some('L'),
                    '\u{2029}' => Some('P'),
                    _ => None,
                };
                match short {
                    Some(s) => self.put(s),
                    None => {
                        let v = c as u32;
                        let escaped = if v <= 0xff {
                            format!("x{v:02X}")
                        } else if v <= 0xffff {
                            format!("u{v:04X}")
                        } else {
                            format!("U{v:08X}")
                        };
                        for e in escaped.chars() {
                            self.put(e);
                        }
                    }
                }
            } else {
                self.put(c);
            }
        }
        self.write_indicator("\"", false, false, false);
        self.whitespace = false;
        self.indention = false;
    }

    fn write_literal(&mut self, value: &str) {
        self.write_indicator("|", true, false, false);
        if value.starts_with(' ') || value.chars().next().is_some_and(is_break) {
            self.write_indicator(&BEST_INDENT.to_string(), false, false, false);
        }
        let chars: Vec<char> = value.chars().collect();
        let chomp = match chars.as_slice() {
            [] => Some("-"),
            [.., last] if !is_break(*last) => Some("-"),
            [_] => Some("+"),
            [.., before, _] if is_break(*before) => Some("+"),
            _ => None,
        };
        if let Some(chomp) = chomp {
            self.write_indicator(chomp, false, false, false);
        }
        self.whitespace = true;
        let mut breaks = true;
        for c in chars {
            if is_break(c) {
                self.write_break(c);
                breaks = true;
            } else {
                if breaks {
                    self.write_indent();
                }
                self.put(c);
                self.indention = false;
                breaks = false;
            }
        }
    }
}

fn is_break(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

/// yaml.v3's `is_printable` (decided on the UTF-8 bytes there; the same ranges here).
fn is_printable(c: char) -> bool {
    matches!(c, '\n' | '\u{20}'..='\u{7e}' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}') && c != '\u{feff}'
}

/// yaml.v3's `stringv`: the style the encoder asks for.
fn string_style(s: &str) -> Style {
    if s.contains('\n') {
        Style::Literal
    } else if resolves_to_string(s) && !is_base60_float(s) && !is_old_bool(s) {
        Style::Plain
    } else {
        Style::DoubleQuoted
    }
}

#[derive(Debug, Default)]
struct Analysis {
    block_plain_allowed: bool,
    single_quoted_allowed: bool,
    block_allowed: bool,
}

/// `yaml_emitter_analyze_scalar` (the parts that matter outside flow collections).
fn analyze(value: &str) -> Analysis {
    if value.is_empty() {
        return Analysis { block_plain_allowed: true, single_quoted_allowed: true, block_allowed: false };
    }
    let chars: Vec<char> = value.chars().collect();
    let mut block_indicators = value.starts_with("---") || value.starts_with("...");
    let (mut line_breaks, mut special, mut tabs) = (false, false, false);
    let (mut leading_space, mut leading_break, mut trailing_space, mut trailing_break) = (false, false, false, false);
    let (mut break_space, mut space_break) = (false, false);
    let (mut previous_space, mut previous_break) = (false, false);
    let mut preceded_by_whitespace = true;
    for (i, &c) in chars.iter().enumerate() {
        let last = i + 1 == chars.len();
        let followed_by_whitespace = chars.get(i + 1).is_none_or(|&n| n == ' ' || n == '\t');
        if i == 0 {
            match c {
                '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"' | '%' | '@' | '`' => {
                    block_indicators = true;
                }
                '?' | ':' | '-' if followed_by_whitespace => block_indicators = true,
                _ => {}
            }
        } else {
            match c {
                ':' if followed_by_whitespace => block_indicators = true,
                '#' if preceded_by_whitespace => block_indicators = true,
                _ => {}
            }
        }
        if c == '\t' {
            tabs = true;
        } else if !is_printable(c) {
            special = true;
        }
        if c == ' ' {
            leading_space |= i == 0;
            trailing_space |= last;
            break_space |= previous_break;
            previous_space = true;
            previous_break = false;
        } else if is_break(c) {
            line_breaks = true;
            leading_break |= i == 0;
            trailing_break |= last;
            space_break |= previous_space;
            previous_space = false;
            previous_break = true;
        } else {
            previous_space = false;
            previous_break = false;
        }
        preceded_by_whitespace = matches!(c, ' ' | '\t' | '\0') || is_break(c);
    }
    let mut a = Analysis { block_plain_allowed: true, single_quoted_allowed: true, block_allowed: true };
    if leading_space || leading_break || trailing_space || trailing_break {
        a.block_plain_allowed = false;
    }
    if trailing_space {
        a.block_allowed = false;
    }
    if break_space || space_break || tabs || special {
        a.block_plain_allowed = false;
        a.single_quoted_allowed = false;
    }
    if space_break || special {
        a.block_allowed = false;
    }
    if line_breaks || block_indicators {
        a.block_plain_allowed = false;
    }
    a
}

/// `yaml_emitter_select_scalar_style` for a block-context value (never a key).
fn select_style(value: &str, requested: Style) -> Style {
    let a = analyze(value);
    let mut style = requested;
    if style == Style::Plain && !a.block_plain_allowed {
        style = Style::SingleQuoted;
    }
    if style == Style::SingleQuoted && !a.single_quoted_allowed {
        style = Style::DoubleQuoted;
    }
    if style == Style::Literal && !a.block_allowed {
        style = Style::DoubleQuoted;
    }
    style
}

/// yaml.v3's `isOldBool`: YAML 1.1 booleans, quoted for old parsers.
fn is_old_bool(s: &str) -> bool {
    matches!(
        s,
        "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" | "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF"
    )
}

/// yaml.v3's `isBase60Float`: `^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$`.
fn is_base60_float(s: &str) -> bool {
    let b = s.as_bytes();
    let Some(&c) = b.first() else { return false };
    if !(c == b'+' || c == b'-' || c.is_ascii_digit()) || !s.contains(':') {
        return false;
    }
    let mut i = usize::from(c == b'+' || c == b'-');
    if !b.get(i).is_some_and(u8::is_ascii_digit) {
        return false;
    }
    while b.get(i).is_some_and(|c| c.is_ascii_digit() || *c == b'_') {
        i += 1;
    }
    let mut groups = 0;
    while b.get(i) == Some(&b':') {
        i += 1;
        // [0-5]?[0-9]: one digit, or two with the first in 0-5.
        match (b.get(i), b.get(i + 1)) {
            (Some(d1), Some(d2)) if (b'0'..=b'5').contains(d1) && d2.is_ascii_digit() => i += 2,
            (Some(d), _) if d.is_ascii_digit() => i += 1,
            _ => return false,
        }
        groups += 1;
    }
    if groups == 0 {
        return false;
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        while b.get(i).is_some_and(|c| c.is_ascii_digit() || *c == b'_') {
            i += 1;
        }
    }
    i == b.len()
}

/// yaml.v3's `resolve("", s)` returns `!!str` for `s`.
fn resolves_to_string(s: &str) -> bool {
    const SPECIAL: [&str; 24] = [
        "true", "True", "TRUE", "false", "False", "FALSE", "", "~", "null", "Null", "NULL", ".nan", ".NaN", ".NAN",
        ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF", "<<",
    ];
    let hint = match s.as_bytes().first() {
        None => 'N',
        Some(b'+' | b'-') => 'S',
        Some(b'0'..=b'9') => 'D',
        Some(b'y' | b'Y' | b'n' | b'N' | b't' | b'T' | b'f' | b'F' | b'o' | b'O' | b'~') => 'M',
        Some(b'.') => '.',
        Some(_) => return true,
    };
    if SPECIAL.contains(&s) {
        return false;
    }
    match hint {
        '.' => go_parse_float(s).is_none(),
        'D' | 'S' => {
            if is_timestamp(s) {
                return false;
            }
            let plain = s.replace('_', "");
            if go_parse_int(&plain, 0).is_some() || go_parse_uint(&plain, 0).is_some() {
                return false;
            }
            if is_yaml_style_float(&plain) && go_parse_float(&plain).is_some() {
                return false;
            }
            if let Some(digits) = plain.strip_prefix("0b") {
                return go_parse_int(digits, 2).is_none() && go_parse_uint(digits, 2).is_none();
            }
            if let Some(digits) = plain.strip_prefix("-0b") {
                return go_parse_int(&format!("-{digits}"), 2).is_none();
            }
            if let Some(digits) = plain.strip_prefix("0o") {
                return go_parse_int(digits, 8).is_none() && go_parse_uint(digits, 8).is_none();
            }
            if let Some(digits) = plain.strip_prefix("-0o") {
                return go_parse_int(&format!("-{digits}"), 8).is_none();
            }
            true
        }
        _ => true,
    }
}

/// Go's `strconv.ParseUint(s, base, 64)` for strings without underscores; `base` 0 means
/// "from the prefix" (`0x`, `0o`, `0b`, or a leading `0` for octal).
fn go_parse_uint(s: &str, base: u32) -> Option<u64> {
    let (base, digits) = if base == 0 {
        let b = s.as_bytes();
        if b.first() == Some(&b'0') && b.len() > 1 {
            match b.get(1).map(u8::to_ascii_lowercase) {
                Some(b'x') if b.len() >= 3 => (16, &s[2..]),
                Some(b'o') if b.len() >= 3 => (8, &s[2..]),
                Some(b'b') if b.len() >= 3 => (2, &s[2..]),
                _ => (8, &s[1..]),
            }
        } else {
            (10, s)
        }
    } else {
        (base, s)
    };
    if s.is_empty() || (digits.is_empty() && !(base == 8 && s == "0")) {
        return None;
    }
    let mut n: u64 = 0;
    for c in digits.chars() {
        let d = c.to_digit(36).filter(|d| *d < base)?;
        n = n.checked_mul(u64::from(base))?.checked_add(u64::from(d))?;
    }
    Some(n)
}

/// Go's `strconv.ParseInt(s, base, 64)` (sign, then [`go_parse_uint`], then the range check).
fn go_parse_int(s: &str, base: u32) -> Option<i64> {
    let (negative, rest) = match s.as_bytes().first() {
        Some(b'+') => (false, &s[1..]),
        Some(b'-') => (true, &s[1..]),
        _ => (false, s),
    };
    let n = go_parse_uint(rest, base)?;
    if negative { if n > 1 << 63 { None } else { Some(0i64.wrapping_sub_unsigned(n)) } } else { i64::try_from(n).ok() }
}

/// `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`.
fn is_yaml_style_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = usize::from(matches!(b.first(), Some(b'+' | b'-')));
    let digits = |i: &mut usize| {
        let start = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i - start
    };
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            digits(&mut i);
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// Go's `strconv.ParseFloat(s, 64)` succeeds: decimal floats (finite), `inf`/`infinity`/`nan`
/// in any case with an optional sign, and hexadecimal floats with a `p` exponent.
fn go_parse_float(s: &str) -> Option<f64> {
    let unsigned = s.strip_prefix(['+', '-']).unwrap_or(s);
    let lower = unsigned.to_ascii_lowercase();
    if lower == "inf" || lower == "infinity" {
        return Some(f64::INFINITY);
    }
    if lower == "nan" && unsigned.len() == s.len() {
        return Some(f64::NAN);
    }
    if let Some(hex) = lower.strip_prefix("0x") {
        return is_hex_float(hex).then_some(0.0);
    }
    let b = unsigned.as_bytes();
    let mut i = 0;
    let mut mantissa_digits = 0;
    while b.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
        mantissa_digits += 1;
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
            mantissa_digits += 1;
        }
    }
    if mantissa_digits == 0 {
        return None;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return None;
        }
    }
    if i != b.len() {
        return None;
    }
    s.parse::<f64>().ok().filter(|f| f.is_finite())
}

/// A hexadecimal float body (after `0x`): hex digits with an optional point, then a
/// mandatory `p` exponent.
fn is_hex_float(s: &str) -> bool {
    let Some((mantissa, exponent)) = s.split_once('p') else { return false };
    let digits = mantissa.replacen('.', "", 1);
    let exponent = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_hexdigit())
        && !exponent.is_empty()
        && exponent.bytes().all(|b| b.is_ascii_digit())
}

/// yaml.v3's `parseTimestamp`: `2006-1-2`, `2006-1-2 15:4:5.999999999`, or
/// `2006-1-2T15:4:5.999999999Z07:00` (also with `t`), as Go's `time.Parse` reads them.
fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 5 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return false;
    }
    let Ok(year) = s[..4].parse::<u32>() else { return false };
    let mut rest = &s[5..];
    let Some(month) = take_num(&mut rest).filter(|m| (1..=12).contains(m)) else { return false };
    let Some(rest_after_dash) = rest.strip_prefix('-') else { return false };
    rest = rest_after_dash;
    let Some(day) = take_num(&mut rest) else { return false };
    if day < 1 || day > days_in_month(month, year) {
        return false;
    }
    if rest.is_empty() {
        return true;
    }
    let (with_zone, time) = if let Some(t) = rest.strip_prefix(['T', 't']) {
        (true, t)
    } else if rest.starts_with(' ') {
        (false, rest.trim_start_matches(' '))
    } else {
        return false;
    };
    rest = time;
    let Some(hour) = take_num(&mut rest).filter(|h| *h < 24) else { return false };
    let _ = hour;
    for _ in 0..2 {
        let Some(after) = rest.strip_prefix(':') else { return false };
        rest = after;
        if take_num(&mut rest).filter(|v| *v < 60).is_none() {
            return false;
        }
    }
    if let Some(frac) = rest.strip_prefix(['.', ',']) {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 {
            rest = &frac[digits..];
        }
    }
    if !with_zone {
        return rest.is_empty();
    }
    if rest == "Z" {
        return true;
    }
    let zb = rest.as_bytes();
    zb.len() == 6
        && matches!(zb[0], b'+' | b'-')
        && zb[1].is_ascii_digit()
        && zb[2].is_ascii_digit()
        && zb[3] == b':'
        && zb[4].is_ascii_digit()
        && zb[5].is_ascii_digit()
        && rest[1..3].parse::<u32>().is_ok_and(|h| h <= 24)
        && rest[4..6].parse::<u32>().is_ok_and(|m| m <= 60)
}

/// Go's `getnum(s, false)`: one or two digits.
fn take_num(rest: &mut &str) -> Option<u32> {
    let b = rest.as_bytes();
    let n = match (b.first(), b.get(1)) {
        (Some(d1), Some(d2)) if d1.is_ascii_digit() && d2.is_ascii_digit() => 2,
        (Some(d1), _) if d1.is_ascii_digit() => 1,
        _ => return None,
    };
    let value = rest[..n].parse().ok();
    *rest = &rest[n..];
    value
}

fn days_in_month(month: u32, year: u32) -> u32 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn str_node(s: &str) -> String {
        to_yaml(&Node::Map(vec![("k", Node::Str(s.to_owned()))]))
    }

    #[test]
    fn scalars_are_quoted_like_yaml_v3() {
        let cases = [
            ("0.21.0", "k: 0.21.0\n"),
            ("0.7", "k: \"0.7\"\n"),
            ("1", "k: \"1\"\n"),
            ("", "k: \"\"\n"),
            ("true", "k: \"true\"\n"),
            ("yes", "k: \"yes\"\n"),
            ("Off", "k: \"Off\"\n"),
            ("null", "k: \"null\"\n"),
            ("~", "k: \"~\"\n"),
            (".5", "k: \".5\"\n"),
            (".inf", "k: \".inf\"\n"),
            ("1e5", "k: \"1e5\"\n"),
            ("1e400", "k: 1e400\n"),
            ("0x1F", "k: \"0x1F\"\n"),
            ("0777", "k: \"0777\"\n"),
            ("09", "k: \"09\"\n"),
            ("1_000", "k: \"1_000\"\n"),
            ("0b101", "k: \"0b101\"\n"),
            ("0o17", "k: \"0o17\"\n"),
            ("+1", "k: \"+1\"\n"),
            ("-", "k: '-'\n"),
            ("- x", "k: '- x'\n"),
            ("-x", "k: -x\n"),
            ("1:20", "k: \"1:20\"\n"),
            ("2024-01-15", "k: \"2024-01-15\"\n"),
            ("2024-02-30", "k: 2024-02-30\n"),
            ("2024-1-5T10:20:30Z", "k: \"2024-1-5T10:20:30Z\"\n"),
            ("2024-1-5 10:20:30.5", "k: \"2024-1-5 10:20:30.5\"\n"),
            ("build:mixinTwo", "k: build:mixinTwo\n"),
            ("a: b", "k: 'a: b'\n"),
            ("a #b", "k: 'a #b'\n"),
            ("a#b", "k: a#b\n"),
            ("#x", "k: '#x'\n"),
            ("@x", "k: '@x'\n"),
            ("it's", "k: it's\n"),
            ("'q'", "k: '''q'''\n"),
            (" lead", "k: ' lead'\n"),
            ("trail ", "k: 'trail '\n"),
            ("tab\there", "k: \"tab\\there\"\n"),
            ("http://geocities.com/cool-bp", "k: http://geocities.com/cool-bp\n"),
            ("some-registry.com/pack-test/run1", "k: some-registry.com/pack-test/run1\n"),
            ("127.0.0.1:5000/run", "k: 127.0.0.1:5000/run\n"),
            ("é ☃", "k: é ☃\n"),
            ("smile 😀", "k: \"smile \\U0001F600\"\n"),
            ("bell\u{7}", "k: \"bell\\a\"\n"),
            ("del\u{7f}", "k: \"del\\x7F\"\n"),
            ("---", "k: '---'\n"),
            ("a\u{2028}b", "k: 'a\u{2028}    b'\n"),
        ];
        for (input, expected) in cases {
            assert_eq!(str_node(input), expected, "{input:?}");
        }
    }

    #[test]
    fn multi_line_strings_are_literal_blocks() {
        assert_eq!(str_node("a\nb"), "k: |-\n    a\n    b\n");
        assert_eq!(str_node("a\n\nb\n"), "k: |\n    a\n\n    b\n");
        assert_eq!(str_node("a\n\n"), "k: |+\n    a\n\n");
        assert_eq!(str_node("\n"), "k: |4+\n");
        assert_eq!(str_node(" a\nb"), "k: |4-\n     a\n    b\n");
        assert_eq!(str_node("a \nb"), "k: \"a \\nb\"\n");
        assert_eq!(str_node("a\n\tb"), "k: |-\n    a\n    \tb\n");
        let in_seq = to_yaml(&Node::Map(vec![(
            "l",
            Node::List { items: vec![Node::Str("x\ny".into())], nil: false, tables: false },
        )]));
        assert_eq!(in_seq, "l:\n    - |-\n      x\n      y\n");
    }

    #[test]
    fn collections_indent_like_yaml_v3() {
        let leaf = |id: &str| Node::Map(vec![("id", Node::Str(id.into()))]);
        let list = |items: Vec<Node>| Node::List { items, nil: false, tables: true };
        let doc = Node::Map(vec![
            ("top", Node::Map(vec![("a", Node::Bool(false)), ("n", Node::Null)])),
            (
                "seq",
                list(vec![Node::Map(vec![(
                    "buildpacks",
                    list(vec![Node::Map(vec![("id", Node::Str("x".into())), ("buildpacks", list(vec![leaf("y")]))])]),
                )])]),
            ),
            ("empty", Node::List { items: vec![], nil: true, tables: false }),
            ("emptymap", Node::Map(vec![])),
            ("strings", Node::List { items: vec![Node::Str("0.7".into())], nil: false, tables: false }),
            ("nested", list(vec![list(vec![Node::Str("z".into())]), list(vec![])])),
        ]);
        let expected = "\
top:
    a: false
    n: null
seq:
    - buildpacks:
        - id: x
          buildpacks:
            - id: \"y\"
empty: []
emptymap: {}
strings:
    - \"0.7\"
nested:
    - - z
    - []
";
        assert_eq!(to_yaml(&doc), expected);
    }

    #[test]
    fn go_number_parsing() {
        assert_eq!(go_parse_uint("0", 0), Some(0));
        assert_eq!(go_parse_uint("0x", 0), None);
        assert_eq!(go_parse_uint("0x10", 0), Some(16));
        assert_eq!(go_parse_uint("010", 0), Some(8));
        assert_eq!(go_parse_uint("08", 0), None);
        assert_eq!(go_parse_uint("18446744073709551615", 0), Some(u64::MAX));
        assert_eq!(go_parse_uint("18446744073709551616", 0), None);
        assert_eq!(go_parse_int("-9223372036854775808", 0), Some(i64::MIN));
        assert_eq!(go_parse_int("9223372036854775808", 0), None);
        assert!(go_parse_float("1.5e3").is_some());
        assert!(go_parse_float("-Infinity").is_some());
        assert!(go_parse_float("0x1p-2").is_some());
        assert!(go_parse_float("1e400").is_none());
        assert!(go_parse_float(".").is_none());
        assert!(is_base60_float("190:20:30.15"));
        assert!(!is_base60_float("1:60"));
        assert!(is_yaml_style_float("-1.e5"));
        assert!(!is_yaml_style_float("1.2.3"));
        assert!(is_timestamp("2001-12-14t21:59:43.10+05:00"));
        assert!(!is_timestamp("2001-13-14"));
        assert!(!is_timestamp("2001-12-14x"));
    }
}
