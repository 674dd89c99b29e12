//! `cargo run -p xtask -- gen-testdata`: regenerate the generated files under `testdata/`.
//! `cargo run -p xtask -- gen-docs`: regenerate the generated documents under `docs/`
//! (`docs/base-image-rules.md`, from the validator's rule table).

#![allow(clippy::print_stderr)]

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let testdata = root.join("testdata");
    match args.first().map(String::as_str) {
        Some("gen-testdata") => match xtask::generate(&testdata, &testdata) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("ERROR: {e:#}");
                ExitCode::FAILURE
            }
        },
        Some("gen-docs") => match xtask::gen_docs(&root) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("ERROR: {e:#}");
                ExitCode::FAILURE
            }
        },
        _ => {
            eprintln!("usage: cargo run -p xtask -- gen-testdata | gen-docs");
            ExitCode::FAILURE
        }
    }
}
