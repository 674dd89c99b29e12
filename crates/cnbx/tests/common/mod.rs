//! Shared helpers for the CLI tests: run the real `cnbx` binary with a private `CNBX_HOME` and
//! a private `PACK_HOME` (so that no test reads or writes the configuration of the machine's
//! user, `~/.pack/config.toml`), and format its exit code, stdout and stderr for snapshotting
//! (uv's pattern).

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

pub mod images;
pub mod schema;

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;

/// A temporary `CNBX_HOME`, a temporary `PACK_HOME` (pack's configuration, empty unless a
/// test writes one) and a working directory.
pub struct Env {
    pub home: tempfile::TempDir,
    pub pack: tempfile::TempDir,
    pub work: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Self {
        Self {
            home: tempfile::tempdir().unwrap(),
            pack: tempfile::tempdir().unwrap(),
            work: tempfile::tempdir().unwrap(),
        }
    }

    /// A `CNBX_HOME` that starts as a copy of `testdata/cnbx-home` (the offline base images,
    /// named `cnbx.test/...`, a registry that exists nowhere). They are in the local store
    /// only, as images pulled earlier, so the configuration says `pull-policy =
    /// "if-not-present"`, as a CI job that keeps its images between runs would; pack's default,
    /// `always`, would ask their registry.
    pub fn with_test_images() -> Self {
        let env = Self::new();
        copy_dir(&workspace_root().join("testdata/cnbx-home"), env.home.path());
        env.write_pack_config("pull-policy = \"if-not-present\"\n");
        env
    }

    /// pack's configuration file of this environment.
    pub fn pack_config(&self) -> PathBuf {
        self.pack.path().join("config.toml")
    }

    /// Writes pack's configuration file.
    pub fn write_pack_config(&self, text: &str) {
        std::fs::write(self.pack_config(), text).unwrap();
    }

    /// The environment variables every cnbx of this environment runs with. Bare names are the
    /// cnbx store's (`CNBX_LOCAL=store`), whether or not the machine runs a container engine,
    /// so that what the tests see does not depend on it; the engine tests set their own.
    pub fn vars(&self) -> Vec<(&'static str, PathBuf)> {
        vec![
            ("CNBX_HOME", self.home.path().to_owned()),
            ("PACK_HOME", self.pack.path().to_owned()),
            ("DOCKER_CONFIG", self.home.path().join("docker")),
            ("CNBX_LOCAL", PathBuf::from("store")),
        ]
    }

    pub fn cmd(&self) -> Command {
        let mut cmd = Command::cargo_bin("cnbx").unwrap();
        cmd.envs(self.vars()).env_remove("NO_COLOR").current_dir(self.work.path());
        cmd
    }

    /// A `std::process::Command` running cnbx in this environment (for children run
    /// concurrently or under a shell).
    pub fn std_cmd(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("cnbx"));
        cmd.envs(self.vars()).env_remove("NO_COLOR").current_dir(self.work.path());
        cmd
    }

    /// Runs `cnbx ARGS` and returns the formatted outcome.
    pub fn run(&self, args: &[&str]) -> String {
        let out = self.cmd().args(args).output().unwrap();
        self.format(&out)
    }

    pub fn format(&self, out: &Output) -> String {
        let text = format!(
            "exit: {}\n--- stdout\n{}--- stderr\n{}",
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        self.redact(&text)
    }

    /// Replaces temp paths with stable placeholders.
    pub fn redact(&self, text: &str) -> String {
        let mut s = text.replace(&self.home.path().display().to_string(), "[HOME]");
        s = s.replace(&self.pack.path().display().to_string(), "[PACK_HOME]");
        s = s.replace(&self.work.path().display().to_string(), "[WORK]");
        s.replace(&workspace_root().display().to_string(), "[REPO]")
    }

    pub fn write(&self, rel: &str, contents: &str) -> PathBuf {
        let p = self.work.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, contents).unwrap();
        p
    }
}

/// Fails the test, showing what cnbx printed, unless it exited 0.
pub fn assert_ok(env: &Env, out: &Output) {
    assert!(out.status.success(), "{}", env.format(out));
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The digest printed in the summary line.
pub fn printed_digest(out: &Output) -> String {
    let s = stdout(out);
    let start = s.find("sha256:").unwrap_or_else(|| panic!("no digest in {s}"));
    s[start..start + 71].to_owned()
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).ancestors().nth(2).unwrap().canonicalize().unwrap()
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), dest).unwrap();
        }
    }
}

/// builder.toml.example with its relative paths made absolute, written into the work dir
/// with `extra` appended.
pub fn example_config(env: &Env, extra: &str) -> PathBuf {
    let repo = workspace_root();
    let text = std::fs::read_to_string(repo.join("builder.toml.example")).unwrap();
    let text = text.replace("\"testdata/", &format!("\"{}/testdata/", repo.display()));
    env.write("builder.toml", &format!("{text}\n{extra}"))
}

/// Every file, directory and symbolic link under `dir` (relative paths), with what it is: a
/// file's content digest, a link's target, `dir`. Empty when `dir` does not exist. Two equal
/// trees hold the same bytes under the same names.
pub fn tree(dir: &Path) -> std::collections::BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut std::collections::BTreeMap<String, String>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries {
            let path = entry.unwrap().path();
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                out.insert(rel, "dir".to_owned());
                walk(root, &path, out);
            } else if meta.file_type().is_symlink() {
                out.insert(rel, format!("link {}", std::fs::read_link(&path).unwrap().display()));
            } else {
                out.insert(rel, cnbx_oci::Digest::of(&std::fs::read(&path).unwrap()).to_string());
            }
        }
    }
    let mut out = std::collections::BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// `text` with every `sha256:<64 hex>` replaced by `sha256:[DIGEST]` (for snapshots of images
/// whose digests change from run to run, such as those `umoci config` makes).
pub fn redact_digests(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("sha256:") {
        let (before, at) = rest.split_at(i);
        out.push_str(before);
        let hex = &at[7..];
        if hex.len() >= 64 && hex.as_bytes()[..64].iter().all(u8::is_ascii_hexdigit) {
            out.push_str("sha256:[DIGEST]");
            rest = &hex[64..];
        } else {
            out.push_str("sha256:");
            rest = hex;
        }
    }
    out.push_str(rest);
    out
}

/// Pushes the offline base images to `registry` under `build:jammy` and `run:jammy`.
pub fn push_base_images(registry: &cnbx_testkit::Registry) {
    let store = workspace_root().join("testdata/cnbx-home/store");
    for (name, repo) in [("cnbx.test/build:jammy", "build:jammy"), ("cnbx.test/run:jammy", "run:jammy")] {
        cnbx_testkit::skopeo(&[
            "copy",
            "--all",
            "--dest-tls-verify=false",
            &format!("oci:{}:{name}", store.display()),
            &registry.docker_ref(repo),
        ])
        .unwrap();
    }
}

/// The sample builder.toml with its base images on the registry at `host`.
pub fn registry_config(env: &Env, host: &str) -> PathBuf {
    let repo = workspace_root();
    let text = std::fs::read_to_string(repo.join("builder.toml.example"))
        .unwrap()
        .replace("\"testdata/", &format!("\"{}/testdata/", repo.display()))
        .replace("cnbx.test/build:jammy", &format!("{host}/build:jammy"))
        .replace("\"cnbx.test/run:jammy\"", &format!("\"{host}/run:jammy\""));
    env.write("builder.toml", &text)
}
