#![allow(clippy::unwrap_used)]
//! The prerequisite checks `make` runs before building or testing: `scripts/require-tools.sh`
//! (system tools, installed with apt-get when allowed) and `scripts/require-rust.sh` (the
//! toolchain version). Each runs with a PATH holding only the stand-ins a test puts there, so
//! the real apt-get is never reached.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// A directory to use as the whole PATH.
struct Bin(tempfile::TempDir);

impl Bin {
    fn new() -> Self {
        Self(tempfile::tempdir().unwrap())
    }

    fn path(&self) -> &Path {
        self.0.path()
    }

    /// An executable `name` running `script` with bash.
    fn script(&self, name: &str, script: &str) -> &Self {
        let file = self.path().join(name);
        std::fs::write(&file, format!("#!/bin/bash\n{script}\n")).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).unwrap();
        self
    }

    /// Stand-ins for installed tools.
    fn tools(&self, names: &[&str]) -> &Self {
        for name in names {
            self.script(name, "exit 0");
        }
        self
    }

    /// A fake apt-get that appends `DEBIAN_FRONTEND` and its arguments to `apt.log`, and on
    /// `install` creates an executable named after each package (or fails if told to).
    fn apt_get(&self, install_fails: bool) -> &Self {
        let install = if install_fails {
            "exit 100".to_owned()
        } else {
            format!(
                "for p in \"$@\"; do [[ $p == -* || $p == install ]] && continue; \
                 printf '#!/bin/bash\\nexit 0\\n' >'{dir}'/\"$p\"; /bin/chmod 755 '{dir}'/\"$p\"; done",
                dir = self.path().display()
            )
        };
        self.script(
            "apt-get",
            &format!(
                "echo \"$DEBIAN_FRONTEND $*\" >>'{log}'\nif [[ $1 == install ]]; then {install}; fi",
                log = self.path().join("apt.log").display()
            ),
        );
        // Password-less sudo (used when the test does not run as root) and env, which runs
        // apt-get non-interactively.
        self.script("sudo", "[[ $1 == -n ]] && shift\n\"$@\"");
        std::os::unix::fs::symlink("/usr/bin/env", self.path().join("env")).unwrap();
        self
    }

    fn apt_log(&self) -> String {
        std::fs::read_to_string(self.path().join("apt.log")).unwrap_or_default()
    }
}

fn run(script: &str, path: &Path, envs: &[(&str, &str)], args: &[&str]) -> Output {
    Command::new("/bin/bash")
        .arg(repo().join("scripts").join(script))
        .args(args)
        .env_clear()
        .env("PATH", path)
        .envs(envs.iter().copied())
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

fn is_root() -> bool {
    let out = Command::new("id").arg("-u").output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim() == "0"
}

const TEST_TOOLS: &[&str] = &["docker-registry:docker-registry", "skopeo:skopeo", "umoci:umoci"];

#[test]
fn a_missing_tool_stops_at_once_with_one_message_and_the_command() {
    let bin = Bin::new();
    bin.tools(&["docker-registry", "skopeo"]).apt_get(false);
    let mut args = vec!["--for", "make test"];
    args.extend(TEST_TOOLS);
    let out = run("require-tools.sh", bin.path(), &[("CNBX_NO_INSTALL", "1")], &args);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    let sudo = if is_root() { "" } else { "sudo " };
    assert_eq!(
        stderr(&out),
        format!(
            "ERROR: make test needs tools that are not installed: umoci. Install them with:\n    {sudo}apt-get update \
             && {sudo}apt-get install -y --no-install-recommends umoci\nthen run make test again.\n"
        )
    );
    assert_eq!(bin.apt_log(), "", "CNBX_NO_INSTALL=1 must never run apt-get");
}

#[test]
fn without_apt_get_the_message_says_which_packages_to_look_for() {
    let bin = Bin::new();
    bin.tools(&["skopeo"]);
    let args =
        ["--for", "make bench", "skopeo:skopeo", "umoci:umoci", "htpasswd:apache2-utils", "/nonexistent/time:time"];
    let out = run("require-tools.sh", bin.path(), &[], &args);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let sudo = if is_root() { "" } else { "sudo " };
    assert_eq!(
        stderr(&out),
        format!(
            "ERROR: make bench needs tools that are not installed: umoci, htpasswd, /nonexistent/time. On Debian or \
             Ubuntu, install them with:\n    {sudo}apt-get update && {sudo}apt-get install -y --no-install-recommends \
             umoci apache2-utils time\nthen run make bench again (elsewhere, install the same tools with the system's \
             package manager).\n"
        )
    );
}

#[test]
fn nothing_is_printed_when_every_tool_is_there() {
    let bin = Bin::new();
    bin.tools(&["docker-registry", "skopeo", "umoci"]).apt_get(false);
    let out = run("require-tools.sh", bin.path(), &[], TEST_TOOLS);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(out.stdout.is_empty() && out.stderr.is_empty(), "{}", stderr(&out));
    assert_eq!(bin.apt_log(), "");
}

#[test]
fn missing_tools_are_installed_with_one_update_and_one_install() {
    let bin = Bin::new();
    bin.tools(&["docker-registry"]).apt_get(false);
    let out =
        run("require-tools.sh", bin.path(), &[], &["--for", "make test", TEST_TOOLS[0], TEST_TOOLS[1], TEST_TOOLS[2]]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stderr(&out), "make test: installing skopeo umoci with apt-get (missing: skopeo, umoci)\n");
    assert_eq!(
        bin.apt_log(),
        "noninteractive update -q\nnoninteractive install -y -q --no-install-recommends skopeo umoci\n"
    );
}

#[test]
fn a_failed_install_says_so_and_gives_the_command() {
    let bin = Bin::new();
    bin.apt_get(true);
    let out = run("require-tools.sh", bin.path(), &[], &["--for", "make test", "umoci:umoci"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stderr(&out);
    assert!(
        text.contains(
            "ERROR: make test needs tools that apt-get could not install (its output is above): umoci. Install them \
             with:\n"
        ),
        "{text}"
    );
    assert!(text.contains("apt-get install -y --no-install-recommends umoci\n"), "{text}");
}

/// A PATH whose `rustc` says `version`.
fn rustc(version: &str) -> Bin {
    let bin = Bin::new();
    bin.script("rustc", &format!("echo '{version}'"));
    bin
}

/// The version `make rust` checks for with the Makefile of this repository copied into `dir`
/// (`make -n`: printed, not run), or make's error.
fn make_rust_min(dir: &Path) -> Result<String, String> {
    std::fs::copy(repo().join("Makefile"), dir.join("Makefile")).unwrap();
    let out = Command::new("make")
        .args(["-n", "-s", "--no-print-directory", "rust"])
        .current_dir(dir)
        .env_remove("MAKEFLAGS")
        .env_remove("MAKELEVEL")
        .env_remove("MFLAGS")
        .output()
        .unwrap();
    if !out.status.success() {
        return Err(stderr(&out));
    }
    let printed = String::from_utf8(out.stdout).unwrap();
    assert!(printed.contains("scripts/require-rust.sh"), "{printed}");
    Ok(printed.split_whitespace().last().unwrap().to_owned())
}

/// The workspace's `rust-version` in Cargo.toml.
fn declared_rust_version() -> String {
    let cargo_toml = std::fs::read_to_string(repo().join("Cargo.toml")).unwrap();
    cargo_toml
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = \""))
        .map(|v| v.trim_end_matches('"').to_owned())
        .unwrap()
}

fn major_minor(version: &str) -> (u32, u32) {
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap());
    (parts.next().unwrap(), parts.next().unwrap())
}

#[test]
fn a_too_old_toolchain_gets_one_clear_message() {
    let bin = rustc("rustc 1.87.0 (17067e9ac 2025-05-09)");
    let out = run("require-rust.sh", bin.path(), &[], &["--for", "make demo", "1.88"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "ERROR: make demo needs Rust 1.88 or newer, and this is rustc 1.87.0 (17067e9ac 2025-05-09); update it with \
         `rustup update stable` (or install rustup from https://rustup.rs)\n"
    );

    let out = run("require-rust.sh", bin.path(), &[("RUSTC", "/nonexistent/rustc")], &["--for", "make test", "1.88"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "ERROR: make test needs Rust 1.88 or newer, and no Rust compiler ('/nonexistent/rustc') was found; install it \
         from https://rustup.rs\n"
    );
}

#[test]
fn versions_compare_as_numbers() {
    for version in ["rustc 1.88.0 (6b00bc388 2025-06-23)", "rustc 1.100.0", "rustc 2.0.0"] {
        let out = run("require-rust.sh", rustc(version).path(), &[], &["1.88"]);
        assert!(out.status.success() && out.stderr.is_empty(), "{version}: {}", stderr(&out));
    }
    let out = run("require-rust.sh", rustc("rustc 1.9.0").path(), &[], &["1.88"]);
    assert_eq!(out.status.code(), Some(1), "1.9 is older than 1.88");
}

#[test]
fn the_makefile_checks_for_the_rust_version_cargo_toml_declares() {
    let declared = declared_rust_version();
    // The code uses let chains (stable since 1.88), and proptest 1.12 declares 1.88.
    assert!(major_minor(&declared) >= (1, 88), "Cargo.toml's rust-version {declared} is below 1.88");
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(repo().join("Cargo.toml"), dir.path().join("Cargo.toml")).unwrap();
    assert_eq!(make_rust_min(dir.path()).unwrap(), declared);
}

/// The minimum is read from Cargo.toml, not written twice: another rust-version there is what
/// `make` checks for, and a Cargo.toml without one stops `make` with a message.
#[test]
fn the_makefile_minimum_follows_cargo_toml() {
    let dir = tempfile::tempdir().unwrap();
    let cargo_toml = dir.path().join("Cargo.toml");
    std::fs::write(&cargo_toml, "[workspace.package]\nedition = \"2024\"\nrust-version = \"1.123\"\n").unwrap();
    assert_eq!(make_rust_min(dir.path()).unwrap(), "1.123");
    std::fs::write(&cargo_toml, "[workspace.package]\nedition = \"2024\"\n").unwrap();
    let err = make_rust_min(dir.path()).unwrap_err();
    assert!(err.contains("cannot read the workspace rust-version from Cargo.toml"), "{err}");
}
