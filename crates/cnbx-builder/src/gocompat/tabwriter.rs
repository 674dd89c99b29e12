//! Go's `text/tabwriter` (as pack configures it: `minwidth` 0, pad character `' '`, no flags),
//! plus pack's trailing-space stripping writer.
//!
//! Semantics reproduced:
//!
//! * The text is split into lines (`\n`, or `\f`, which also forces a flush and is written
//!   as `\n`) and cells, each terminated by `\t` (or `\v`). The text after the last tab of a
//!   line is a trailing cell: it belongs to no column and is never padded.
//! * A *column block* is a run of consecutive lines that all have a terminated cell in that
//!   column; a line with fewer cells ends the block (and a line without any tab ends every
//!   block). The width of a column block is the widest cell in it, counted in **runes**, plus
//!   the padding; every terminated cell of the block is left-aligned and padded with spaces
//!   to that width. Blocks nest: a block in column `n + 1` lives inside one of column `n`.
//! * A last line without a final newline is written without one.
//!
//! Go's escape byte `0xff` and HTML filtering cannot occur in Rust strings or are not
//! enabled by pack, so they are not modelled.
//!
//! Why not the `tabwriter` crate: it is a port of Go's package and writes the same bytes for
//! ASCII text, but it measures cells by their display width (`unicode-width`), not in runes
//! as Go does, so a name with a CJK or combining character is aligned differently from pack,
//! and it writes `\f` through instead of ending the line.

/// A terminated or trailing cell: its byte range in the text and its width in runes.
#[derive(Debug, Clone, Copy)]
struct Cell {
    start: usize,
    end: usize,
    width: usize,
}

/// Formats `text` as Go's `tabwriter.NewWriter(w, 0, _, padding, ' ', 0)` followed by
/// `Flush` would.
pub fn format(text: &str, padding: usize) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    let mut lines: Vec<Vec<Cell>> = vec![Vec::new()];
    let mut cell_start = 0;
    for (i, c) in text.char_indices() {
        if !matches!(c, '\t' | '\u{b}' | '\n' | '\u{c}') {
            continue;
        }
        let cell = Cell { start: cell_start, end: i, width: text[cell_start..i].chars().count() };
        cell_start = i + 1;
        let Some(line) = lines.last_mut() else { continue };
        line.push(cell);
        let cells = line.len();
        if c == '\n' || c == '\u{c}' {
            lines.push(Vec::new());
            if c == '\u{c}' || cells == 1 {
                flush(text, &mut lines, padding, &mut out);
            }
        }
    }
    if cell_start < text.len()
        && let Some(line) = lines.last_mut()
    {
        line.push(Cell { start: cell_start, end: text.len(), width: text[cell_start..].chars().count() });
    }
    flush(text, &mut lines, padding, &mut out);
    out
}

/// Writes the buffered lines (the last one being the unterminated current line) and resets
/// the buffer to one empty line.
fn flush(text: &str, lines: &mut Vec<Vec<Cell>>, padding: usize, out: &mut String) {
    let mut widths = Vec::new();
    format_block(text, lines, 0, lines.len(), &mut widths, padding, out);
    lines.clear();
    lines.push(Vec::new());
}

/// Go's `format`: finds the column blocks of column `widths.len()` between `line0` and
/// `line1`, recursing into each with its width pushed.
fn format_block(
    text: &str,
    lines: &[Vec<Cell>],
    mut line0: usize,
    line1: usize,
    widths: &mut Vec<usize>,
    padding: usize,
    out: &mut String,
) {
    let column = widths.len();
    let mut this = line0;
    while this < line1 {
        if column + 1 >= lines[this].len() {
            this += 1;
            continue;
        }
        write_lines(text, lines, line0, this, widths, out);
        line0 = this;
        let mut width = 0;
        while this < line1 && column + 1 < lines[this].len() {
            width = width.max(lines[this][column].width + padding);
            this += 1;
        }
        widths.push(width);
        format_block(text, lines, line0, this, widths, padding, out);
        widths.pop();
        line0 = this;
    }
    write_lines(text, lines, line0, line1, widths, out);
}

/// Go's `writeLines`: every cell in a column with a known width is padded to it.
fn write_lines(text: &str, lines: &[Vec<Cell>], line0: usize, line1: usize, widths: &[usize], out: &mut String) {
    for (i, line) in lines.iter().enumerate().take(line1).skip(line0) {
        for (j, cell) in line.iter().enumerate() {
            out.push_str(&text[cell.start..cell.end]);
            if let Some(&width) = widths.get(j) {
                out.extend(std::iter::repeat_n(' ', width.saturating_sub(cell.width)));
            }
        }
        if i + 1 < lines.len() {
            out.push('\n');
        }
    }
}

/// Pack's `trailingSpaceStrippingWriter`: drops the spaces (only `' '`) that directly precede
/// a newline or the end of the text.
pub fn strip_trailing_spaces(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending = 0usize;
    for c in text.chars() {
        match c {
            ' ' => pending += 1,
            '\n' => {
                pending = 0;
                out.push('\n');
            }
            c => {
                out.extend(std::iter::repeat_n(' ', pending));
                pending = 0;
                out.push(c);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_a_table_with_padding() {
        let text = "  ID\tNAME\tVERSION\tHOMEPAGE\n  a/b\tA B\t1\t-\n  c\tLong name here\t\thttp://x\n";
        let expected = concat!(
            "  ID         NAME                  VERSION        HOMEPAGE\n",
            "  a/b        A B                   1              -\n",
            "  c          Long name here                       http://x\n",
        );
        assert_eq!(format(text, 8), expected);
    }

    #[test]
    fn widths_count_runes_not_bytes() {
        let text = " ├ é\t(optional)\n └ abcd\t[cyclic]\n";
        assert_eq!(format(text, 4), " ├ é       (optional)\n └ abcd    [cyclic]\n");
    }

    #[test]
    fn wide_and_combining_characters_count_as_runes_as_in_go() {
        // Go counts runes: "日本" is 2 wide here (4 display columns), "e\u{301}" is 2 (1 column).
        assert_eq!(format("日本\tx\nabcd\ty\n", 4), "日本      x\nabcd    y\n");
        assert_eq!(format("e\u{301}\tx\nab\ty\n", 4), "e\u{301}    x\nab    y\n");
    }

    #[test]
    fn lines_without_tabs_end_blocks() {
        let text = "aaaaaaaa\tx\nGroup\nb\ty\ncc\tz\n";
        assert_eq!(format(text, 4), "aaaaaaaa    x\nGroup\nb     y\ncc    z\n");
    }

    #[test]
    fn shorter_lines_end_inner_blocks_only() {
        // Column 0 spans all three lines; column 1 only the first two.
        let text = "a\tbbbbbb\tc\naaaa\tb\tc\naa\tlast\n";
        let expected = "a       bbbbbb    c\naaaa    b         c\naa      last\n";
        assert_eq!(format(text, 4), expected);
    }

    #[test]
    fn empty_cells_are_padded_and_trailing_cells_are_not() {
        assert_eq!(format("\tx\nabc\ty  \n", 2), "     x\nabc  y  \n");
        assert_eq!(format("a\t\n", 4), "a    \n");
    }

    #[test]
    fn last_line_without_newline_and_form_feed() {
        assert_eq!(format("a\tb\nccc\td", 1), "a   b\nccc d");
        assert_eq!(format("a\tb\u{c}cccccc\td\n", 1), "a b\ncccccc d\n");
        assert_eq!(format("", 4), "");
        assert_eq!(format("no tabs\n", 4), "no tabs\n");
    }

    #[test]
    fn vertical_tab_terminates_cells() {
        assert_eq!(format("a\u{b}b\nccc\u{b}d\n", 1), "a   b\nccc d\n");
    }

    #[test]
    fn strips_spaces_before_newlines_only() {
        assert_eq!(strip_trailing_spaces("a  \n  b \t \nc   "), "a\n  b \t\nc");
        assert_eq!(strip_trailing_spaces("x y\n"), "x y\n");
    }
}
