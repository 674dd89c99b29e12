//! Shared helpers for the CLI tests: run the real `cnbx` binary with a private `CNBX_HOME`
//! and format its exit code, stdout and stderr for snapshotting (uv's pattern).

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;

/// A temporary `CNBX_HOME` plus a working directory.
pub struct Env {
    pub home: tempfile::TempDir,
    pub work: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Self {
        Self { home: tempfile::tempdir().unwrap(), work: tempfile::tempdir().unwrap() }
    }

    /// A `CNBX_HOME` that starts as a copy of `testdata/cnbx-home` (the offline base images).
    pub fn with_test_images() -> Self {
        let env = Self::new();
        copy_dir(&workspace_root().join("testdata/cnbx-home"), env.home.path());
        env
    }

    pub fn cmd(&self) -> Command {
        let mut cmd = Command::cargo_bin("cnbx").unwrap();
        cmd.env("CNBX_HOME", self.home.path())
            .env("DOCKER_CONFIG", self.home.path().join("docker"))
            .env_remove("NO_COLOR")
            .current_dir(self.work.path());
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
