//! The `cnbx` command-line tool.

fn main() {}
