//! Helpers of the reliability tests (faults, kills, full disks, concurrency): large inputs,
//! an independent check of a store (blobs hashed with `sha256sum`, every `index.json` entry
//! resolved), and the temporary files left anywhere under a directory.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::Env;

pub const MIB: u64 = 1 << 20;

/// A builder.toml in the work dir with the offline test images, a lifecycle directory whose
/// layer holds `lifecycle_mib` MiB of system files, one buildpack per entry of `bp_mib`
/// (holding that many MiB), and `extra` appended. One target: linux/amd64.
pub fn big_builder(env: &Env, lifecycle_mib: u64, bp_mib: &[u64], extra: &str) -> PathBuf {
    let work = env.work.path();
    let lifecycle = work.join("lifecycle");
    if !lifecycle.exists() {
        cnbx_testkit::inputs::lifecycle(&lifecycle, lifecycle_mib * MIB).unwrap();
    }
    let mut text = String::new();
    let mut skip = 0;
    for (i, mib) in bp_mib.iter().enumerate() {
        let dir = work.join(format!("bp-{i}"));
        if !dir.exists() {
            cnbx_testkit::inputs::buildpack(&dir, &format!("big/bp-{i}"), "1.0.0", mib * MIB, skip).unwrap();
        }
        skip += mib * MIB;
        text.push_str(&format!("[[buildpacks]]\n  uri = \"{}\"\n\n", dir.display()));
        text.push_str(&format!("[[order]]\n  [[order.group]]\n    id = \"big/bp-{i}\"\n    version = \"1.0.0\"\n\n"));
    }
    text.push_str(&format!(
        "[build]\n  image = \"cnbx.test/build:jammy\"\n\n[[run.images]]\n  image = \"cnbx.test/run:jammy\"\n\n\
         [lifecycle]\n  uri = \"{}\"\n\n[[targets]]\n  os = \"linux\"\n  arch = \"amd64\"\n\n{extra}",
        lifecycle.display()
    ));
    env.write("big.toml", &text)
}

/// Temporary files and directories anywhere under `dir`: cnbx's (`.cnbx-tmp-*`) and those
/// of the `tempfile` crate's default names (`.tmp*`).
pub fn temporaries(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return found };
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(".cnbx-tmp-") || name.starts_with(".tmp") {
            found.push(path);
        } else if entry.file_type().is_ok_and(|t| t.is_dir()) {
            found.extend(temporaries(&path));
        }
    }
    found
}

/// Checks an OCI layout independently of cnbx: every file in `blobs/sha256` hashes (with
/// `sha256sum`) to its name, and every `index.json` entry resolves: its manifests, indexes,
/// configs and layers are there with their sizes. Returns the problems.
pub fn layout_problems(layout: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let blobs = layout.join("blobs/sha256");
    let mut names: Vec<PathBuf> =
        std::fs::read_dir(&blobs).map(|e| e.filter_map(Result::ok).map(|e| e.path()).collect()).unwrap_or_default();
    names.sort();
    for chunk in names.chunks(64) {
        let out = Command::new("sha256sum").args(chunk).output().unwrap();
        assert!(out.status.success(), "sha256sum: {}", String::from_utf8_lossy(&out.stderr));
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let (hash, file) = line.split_once("  ").unwrap();
            if !file.ends_with(hash) {
                problems.push(format!("{file} hashes to {hash}"));
            }
        }
    }
    let index: Value = match std::fs::read(layout.join("index.json")) {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap(),
        Err(e) => return vec![format!("index.json: {e}")],
    };
    for entry in index["manifests"].as_array().unwrap() {
        resolve(&blobs, entry, &mut problems);
    }
    problems
}

fn resolve(blobs: &Path, desc: &Value, problems: &mut Vec<String>) {
    let digest = desc["digest"].as_str().unwrap().trim_start_matches("sha256:");
    let path = blobs.join(digest);
    match std::fs::metadata(&path) {
        Ok(m) if Some(m.len()) == desc["size"].as_u64() => {}
        Ok(m) => return problems.push(format!("{digest} has {} bytes, not {}", m.len(), desc["size"])),
        Err(_) => return problems.push(format!("{digest} is missing")),
    }
    let media_type = desc["mediaType"].as_str().unwrap_or_default();
    if media_type.contains("index") || media_type.contains("manifest.list") {
        let doc: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        for m in doc["manifests"].as_array().unwrap() {
            resolve(blobs, m, problems);
        }
    } else if media_type.contains("manifest") {
        let doc: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        resolve(blobs, &doc["config"], problems);
        for l in doc["layers"].as_array().unwrap() {
            resolve(blobs, l, problems);
        }
    }
}

/// The tags (`ref.name` annotations) of a layout's `index.json`.
pub fn layout_tags(layout: &Path) -> Vec<String> {
    let index: Value = serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let mut tags: Vec<String> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["annotations"]["org.opencontainers.image.ref.name"].as_str().map(str::to_owned))
        .collect();
    tags.sort();
    tags
}

/// Waits for `child`, killing it after `timeout` (the test then fails).
pub fn wait_bounded(mut child: Child, timeout: Duration) -> Output {
    let deadline = Instant::now() + timeout;
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "cnbx did not finish within {timeout:?}:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends `signal` (`INT`, `TERM`, `KILL`) to process `pid` with kill(1).
pub fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill").arg(format!("-{signal}")).arg(pid.to_string()).status().unwrap();
    assert!(status.success(), "kill -{signal} {pid}");
}

/// `cnbx store verify` in `env`: its exit code and output.
pub fn store_verify(env: &Env, repair: bool) -> Output {
    let mut cmd = env.cmd();
    cmd.args(["store", "verify"]);
    if repair {
        cmd.arg("--repair");
    }
    cmd.timeout(Duration::from_secs(120)).output().unwrap()
}
