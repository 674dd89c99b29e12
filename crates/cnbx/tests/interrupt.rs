//! Kill tests: `cnbx builder create` on a few tens of MiB of generated input, stopped with
//! SIGINT, SIGTERM or SIGKILL at several points (while layers are built, while the output is
//! written, after fixed delays). After a SIGINT or SIGTERM cnbx must print that it was
//! interrupted, exit 130 and leave no temporary file; after any signal every `index.json`
//! entry of the store must resolve and every blob match its digest, the next create must
//! succeed (giving the same builder) and leave no temporary file behind, not even those the
//! killed one left.

#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod common;
mod reliability_support;

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{Env, printed_digest};
use reliability_support::{big_builder, layout_problems, signal, store_verify, temporaries, wait_bounded};

const TIMEOUT: Duration = Duration::from_secs(300);

/// When to send the signal.
#[derive(Debug, Clone, Copy)]
enum Point {
    /// As soon as a temporary file appears in the store's `blobs/` (a layer being built).
    BuildingLayers,
    /// As soon as the `oci:` output directory has a temporary blob (its blobs being copied).
    WritingOutput,
    /// After a fixed delay.
    After(Duration),
}

fn spawn(env: &Env, args: &[&str]) -> Child {
    let mut cmd = env.std_cmd();
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.spawn().unwrap()
}

fn has_temporary(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries.filter_map(Result::ok).any(|e| e.file_name().to_string_lossy().starts_with(".cnbx-tmp-"))
    })
}

/// Waits for `point` while `child` runs; `false` when it finished first.
fn wait_for(child: &mut Child, point: Point, env: &Env, out_dir: &Path) -> bool {
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        let reached = match point {
            Point::BuildingLayers => has_temporary(&env.home.path().join("store/blobs")),
            Point::WritingOutput => has_temporary(&out_dir.join("blobs")),
            Point::After(d) => start.elapsed() >= d,
        };
        if reached {
            return true;
        }
        assert!(start.elapsed() < TIMEOUT, "{point:?} never came");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Creates into `dest` (`oci:out:latest` or a store name), signals it at `point`, checks
/// what the signal must leave, and reruns. Returns whether the signal came before the end.
fn interrupt_once(env: &Env, config: &Path, dest: &str, sig: &str, point: Point, expected: &str) -> bool {
    let out_dir = env.work.path().join("out");
    let args = ["builder", "create", dest, "--config", config.to_str().unwrap(), "--pull-policy", "never"];
    let mut child = spawn(env, &args);
    let in_time = wait_for(&mut child, point, env, &out_dir);
    if in_time {
        signal(child.id(), sig);
    }
    let out = wait_bounded(child, TIMEOUT);
    let what = format!("SIG{sig} at {point:?} into {dest}");
    let interrupted = in_time && !out.status.success();
    eprintln!("{what}: signalled before the end: {in_time}, exit {:?}", out.status.code());
    if in_time && sig != "KILL" {
        match out.status.code() {
            Some(130) => {
                assert!(String::from_utf8_lossy(&out.stderr).contains("interrupted"), "{what}: {}", env.format(&out))
            }
            Some(0) => {} // it had finished its last write when the signal came
            _ => panic!("{what}: {}", env.format(&out)),
        }
        // Stopped cleanly: nothing left, neither in CNBX_HOME nor in the output.
        let left = [temporaries(env.home.path()), temporaries(&out_dir)].concat();
        assert!(left.is_empty(), "{what}: left {left:?}");
    }
    // Whatever the signal: the store is consistent, the output is absent or consistent.
    let problems = layout_problems(&env.home.path().join("store"));
    assert!(problems.is_empty(), "{what}: store {problems:?}");
    if out_dir.join("index.json").exists() {
        assert!(layout_problems(&out_dir).is_empty(), "{what}: output {:?}", layout_problems(&out_dir));
    }
    // The next create succeeds, gives the same builder, and removes what a kill left.
    let rerun = spawn(env, &args);
    let rerun = wait_bounded(rerun, TIMEOUT);
    assert!(rerun.status.success(), "{what}, rerun: {}", env.format(&rerun));
    assert_eq!(printed_digest(&rerun), expected, "{what}");
    let left = [temporaries(env.home.path()), temporaries(&out_dir)].concat();
    assert!(left.is_empty(), "{what}, after the rerun: left {left:?}");
    let verify = store_verify(env, false);
    assert!(verify.status.success(), "{what}: {}", env.format(&verify));
    interrupted
}

/// A fresh home with the generated inputs, and the digest of the builder they make.
fn setup() -> (Env, std::path::PathBuf, String) {
    let env = Env::with_test_images();
    let config = big_builder(&env, 16, &[12, 12], "");
    // The expected digest, from a separate home.
    let reference = Env::with_test_images();
    let args = ["builder", "create", "oci:ref:latest", "--config", config.to_str().unwrap(), "--pull-policy", "never"];
    let out = wait_bounded(spawn(&reference, &args), TIMEOUT);
    assert!(out.status.success(), "{}", reference.format(&out));
    (env, config, printed_digest(&out))
}

/// Clears the layer cache and the output, so that the next create builds every layer again.
fn go_cold(env: &Env) {
    let _ = std::fs::remove_dir_all(env.home.path().join("cache/layers"));
    let _ = std::fs::remove_dir_all(env.work.path().join("out"));
}

#[test]
fn sigint_and_sigterm_stop_cleanly_with_130() {
    let (env, config, expected) = setup();
    let mut interrupted = 0;
    let points = [
        ("INT", Point::BuildingLayers),
        ("TERM", Point::BuildingLayers),
        ("INT", Point::After(Duration::from_millis(400))),
        ("INT", Point::WritingOutput),
        ("TERM", Point::WritingOutput),
    ];
    for (sig, point) in points {
        go_cold(&env);
        interrupted += usize::from(interrupt_once(&env, &config, "oci:out:latest", sig, point, &expected));
    }
    go_cold(&env);
    interrupted +=
        usize::from(interrupt_once(&env, &config, "cnbx.test/big:1", "INT", Point::BuildingLayers, &expected));
    assert!(interrupted >= 3, "only {interrupted} runs were interrupted before they finished");
}

#[test]
fn sigkill_at_any_point_leaves_a_consistent_store_and_the_next_run_cleans_up() {
    let (env, config, expected) = setup();
    let mut interrupted = 0;
    let points = [
        Point::BuildingLayers,
        Point::After(Duration::from_millis(300)),
        Point::After(Duration::from_millis(900)),
        Point::WritingOutput,
    ];
    for point in points {
        go_cold(&env);
        interrupted += usize::from(interrupt_once(&env, &config, "oci:out:latest", "KILL", point, &expected));
    }
    go_cold(&env);
    interrupted +=
        usize::from(interrupt_once(&env, &config, "cnbx.test/big:1", "KILL", Point::BuildingLayers, &expected));
    assert!(interrupted >= 3, "only {interrupted} runs were killed before they finished");
}
