//! cnbx's tar reader against Go's: layers with odd headers (`cnbx_testkit::oddtar`) are read
//! by `cnbx_oci::tarread` in both of its uses and unpacked by umoci (Go's `archive/tar`).
//! Whenever cnbx's reader accepts a layer, the tree umoci unpacks must be exactly the entries
//! it reported (names, types, link targets, content, hard links); a layer umoci cannot unpack
//! must not be accepted. Decoy names (`etc/passwd`, ...) and hidden headers make any
//! disagreement visible.
//!
//! `PROPTEST_CASES=<n>` runs more cases (`make fuzz` runs this file's `fuzz_` test with
//! many); `CNBX_FUZZ_SEED=<n>` starts from another seed. A failure prints the seed and how
//! each entry was written.

#![allow(clippy::unwrap_used)]

use std::io::Read;
use std::path::Path;
use std::process::Command;

use cnbx_oci::tarball::EntryKind;
use cnbx_oci::tarread::{TarReader, Use};
use cnbx_testkit::oddtar::{self, EVIL, Model, OddLayer, Rng, Seen};

/// The cases to run: `PROPTEST_CASES`, or `default_cases`.
fn cases(default_cases: u64) -> u64 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default_cases)
}

fn first_seed() -> u64 {
    std::env::var("CNBX_FUZZ_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(0)
}

const DECOYS: &[&str] = &["etc/passwd", "cnb/lifecycle/launcher", "decoy", "zz/hidden"];

/// What cnbx's reader reports for `bytes` in `rules`: `Err` with its error if it refuses the
/// layer, else the entries as a model of the tree umoci would make (`None` if an entry is of
/// a type umoci does not unpack). A reported list the model cannot apply fails the test.
fn our_view(bytes: &[u8], rules: Use, fail: &dyn Fn(String) -> String) -> Result<Option<Model>, String> {
    let mut reader = TarReader::new(bytes, rules);
    let mut model = Model::default();
    let mut plain = true;
    while let Some(e) = reader.next_entry().map_err(|e| e.to_string())? {
        let mut content = Vec::new();
        reader.content().read_to_end(&mut content).map_err(|e| e.to_string())?;
        assert_eq!(content.len() as u64, e.data_len(), "{e:?}");
        let seen = match &e.kind {
            EntryKind::File => Seen::File(content),
            EntryKind::Dir => Seen::Dir,
            EntryKind::Symlink { target } => Seen::Symlink(target.clone()),
            EntryKind::Hardlink { target } => Seen::Hardlink(target.clone()),
            EntryKind::Other { .. } => {
                plain = false;
                continue;
            }
        };
        if plain && let Err(m) = model.apply(&e.path, &seen) {
            panic!("{}", fail(format!("{rules:?}: the model cannot unpack what the reader reported: {m}")));
        }
    }
    Ok(plain.then_some(model))
}

/// umoci's unpacking of `bytes` as the one layer of an image: the tree, or umoci's error.
fn umoci_view(bytes: &[u8], dir: &Path) -> Result<Model, String> {
    let layout = dir.join("image");
    let rootfs = dir.join("rootfs");
    let _ = std::fs::remove_dir_all(&layout);
    let _ = std::fs::remove_dir_all(&rootfs);
    oddtar::write_layout(&layout, bytes).unwrap();
    let image = format!("{}:t", layout.display());
    let out =
        Command::new("umoci").args(["raw", "unpack", "--rootless", "--image", &image]).arg(&rootfs).output().unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
    }
    Ok(oddtar::read_tree(&rootfs).unwrap())
}

/// What one case showed.
#[derive(Debug, Default)]
struct Tally {
    compared: u64,
    refused_verbatim: u64,
    refused_both: u64,
}

/// Checks one layer; panics with the seed and the layer's notes on a disagreement.
fn check(seed: u64, layer: &OddLayer, dir: &Path, tally: &mut Tally) {
    let message = |what: String| {
        format!(
            "seed {seed}: {what}\nentries:\n  {}\n(CNBX_FUZZ_SEED={seed} PROPTEST_CASES=1 reproduces it)",
            layer.notes.join("\n  ")
        )
    };
    let fail = |what: String| -> ! { panic!("{}", message(what)) };
    let verbatim = our_view(&layer.bytes, Use::Verbatim, &message);
    let reencode = our_view(&layer.bytes, Use::Reencode, &message);
    if verbatim.is_ok() && reencode.is_err() {
        fail(format!("the verbatim reader accepts what the re-encoding one refuses: {reencode:?}"));
    }
    match (&verbatim, &reencode) {
        (Err(_), Err(_)) => tally.refused_both += 1,
        (Err(_), Ok(_)) => tally.refused_verbatim += 1,
        _ => {}
    }
    let accepted: Vec<(&str, &Model)> = [("verbatim", &verbatim), ("re-encoding", &reencode)]
        .into_iter()
        .filter_map(|(name, v)| match v {
            Ok(Some(m)) => Some((name, m)),
            _ => None,
        })
        .collect();
    if accepted.is_empty() {
        return;
    }
    let unpacked = umoci_view(&layer.bytes, dir);
    for (name, ours) in accepted {
        match &unpacked {
            Err(e) => fail(format!("the {name} reader accepts a layer umoci cannot unpack: {e}")),
            Ok(theirs) => {
                let diff = oddtar::differences(ours, theirs);
                if !diff.is_empty() {
                    fail(format!("the {name} reader and umoci disagree:\n  {}", diff.join("\n  ")));
                }
            }
        }
        tally.compared += 1;
    }
    // What the verbatim reader accepts never holds a decoy's content outside what it reported
    // (the comparison above implies it; this says it in the terms of the attack).
    if let (Ok(Some(ours)), Ok(theirs)) = (&verbatim, &unpacked) {
        for (path, node) in &theirs.nodes {
            if let Seen::File(c) = node
                && c.starts_with(EVIL)
                && ours.nodes.get(path) != Some(node)
            {
                fail(format!("umoci wrote hidden content at '{path}'"));
            }
        }
    }
}

#[test]
fn fuzz_tar_reader_agrees_with_umoci() {
    cnbx_testkit::require_tool("umoci", "umoci").unwrap();
    let (first, n) = (first_seed(), cases(500));
    let workers = 3u64;
    let tallies: Vec<Tally> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                s.spawn(move || {
                    let dir = tempfile::tempdir().unwrap();
                    let mut tally = Tally::default();
                    for seed in (first + w..first + n).step_by(workers as usize) {
                        let layer = oddtar::odd_layer(&mut Rng::new(seed), "", DECOYS);
                        check(seed, &layer, dir.path(), &mut tally);
                    }
                    tally
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let compared: u64 = tallies.iter().map(|t| t.compared).sum();
    let refused_verbatim: u64 = tallies.iter().map(|t| t.refused_verbatim).sum();
    let refused_both: u64 = tallies.iter().map(|t| t.refused_both).sum();
    eprintln!(
        "{n} layers: {compared} readings compared with umoci, {refused_verbatim} refused for reuse only, {refused_both} refused"
    );
    // The generator must exercise both outcomes, or the test proves nothing.
    if n >= 100 {
        assert!(compared > n / 4, "too few layers were accepted ({compared} of {n})");
        assert!(refused_verbatim + refused_both > n / 10, "too few layers were refused");
    }
}
