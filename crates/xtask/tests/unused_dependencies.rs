#![allow(clippy::unwrap_used)]
//! `make lint` must catch a normal dependency that only the tests use (it belongs in
//! `[dev-dependencies]`). cargo-machete searches every source file of a package, tests
//! included, so it cannot; rustc's `unused_crate_dependencies` lint can, when it checks the
//! library (or the binary of a package without one) built without its tests: that build gets
//! the normal dependencies only. Every crate root therefore carries
//! `#![cfg_attr(not(test), warn(unused_crate_dependencies))]`, and clippy's `-D warnings` in
//! `make lint` turns the warning into a failure.

use std::path::{Path, PathBuf};
use std::process::Command;

const ATTRIBUTE: &str = "#![cfg_attr(not(test), warn(unused_crate_dependencies))]";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// The crate root each workspace member is checked through: its library, else its binary.
fn crate_roots() -> Vec<PathBuf> {
    let mut roots = Vec::new();
    for member in std::fs::read_dir(repo().join("crates")).unwrap() {
        let dir = member.unwrap().path();
        if !dir.join("Cargo.toml").is_file() {
            continue;
        }
        let lib = dir.join("src/lib.rs");
        roots.push(if lib.is_file() { lib } else { dir.join("src/main.rs") });
    }
    roots.sort();
    roots
}

#[test]
fn every_crate_root_warns_about_dependencies_it_does_not_use() {
    let roots = crate_roots();
    assert!(roots.len() >= 10, "{roots:?}");
    for root in roots {
        let text = std::fs::read_to_string(&root).unwrap_or_else(|e| panic!("{}: {e}", root.display()));
        assert!(text.lines().any(|l| l.trim() == ATTRIBUTE), "{} lacks {ATTRIBUTE}", root.display());
    }
}

/// A package `app` whose library has the attribute and depends on `helper`, which only its
/// integration test uses; `helper` is listed under `section`.
fn package(dir: &Path, section: &str) {
    let write = |rel: &str, text: &str| {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write("helper/Cargo.toml", "[package]\nname = \"helper\"\nversion = \"0.1.0\"\nedition = \"2024\"\n");
    write("helper/src/lib.rs", "pub fn answer() -> u32 {\n    42\n}\n");
    write(
        "app/Cargo.toml",
        &format!(
            "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[workspace]\n\n\
             [{section}]\nhelper = {{ path = \"../helper\" }}\n"
        ),
    );
    write("app/src/lib.rs", &format!("{ATTRIBUTE}\n\npub fn one() -> u32 {{\n    1\n}}\n"));
    write("app/tests/uses_helper.rs", "#[test]\nfn it() {\n    assert_eq!(helper::answer() + app::one(), 43);\n}\n");
}

/// `cargo check --all-targets` of `app`, as `make lint` checks the workspace: its stderr.
fn check(dir: &Path) -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = Command::new(cargo)
        .args(["check", "--all-targets", "--offline", "--quiet"])
        .current_dir(dir.join("app"))
        .env("CARGO_TARGET_DIR", dir.join("target"))
        .env_remove("RUSTFLAGS")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    stderr
}

#[test]
fn a_normal_dependency_only_the_tests_use_is_reported_and_a_dev_dependency_is_not() {
    let warning = "extern crate `helper` is unused in crate `app`";
    let dir = tempfile::tempdir().unwrap();
    package(dir.path(), "dependencies");
    let stderr = check(dir.path());
    assert!(stderr.contains(warning), "{stderr}");

    let dir = tempfile::tempdir().unwrap();
    package(dir.path(), "dev-dependencies");
    let stderr = check(dir.path());
    assert!(!stderr.contains("unused"), "{stderr}");
}
