//! Never-panic property tests ("fuzzing on stable Rust") of the parsers in cnbx-refs: image
//! references, image locations and the user's config.toml, on arbitrary input and on
//! mutations of valid input. Beyond not panicking: messages stay bounded however long the
//! input is, what parses prints back to something that parses the same, and a config that
//! loads saves to one that loads the same.
//!
//! `PROPTEST_CASES=<many> cargo test -p cnbx-refs --test fuzz` runs more cases.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use cnbx_refs::user_config::UserConfig;
use cnbx_refs::{ImageLocation, ImageRef};
use proptest::prelude::*;
use proptest::sample::Index;

const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// The longest message an error may have (two excerpts and a fixed text, plus the path).
const MAX_MESSAGE_BYTES: usize = 1024;

fn valid_references() -> Vec<String> {
    vec![
        "ubuntu".into(),
        "paketo/run:base".into(),
        "docker.io/library/ubuntu:22.04".into(),
        "localhost:5000/a/b-c__d.e:1.0_rc".into(),
        "[::1]:5000/app:tag".into(),
        format!("gcr.io/p/app:v2@{DIGEST}"),
        format!("registry.example.com:443/team/app@{DIGEST}"),
    ]
}

fn valid_locations() -> Vec<String> {
    let mut v = valid_references();
    v.extend(
        [
            "oci:/tmp/layout:v1",
            "oci:rel/dir",
            "oci:/tmp/a:b/c",
            "docker-archive:b.tar",
            "docker-archive:/tmp/b.tar:localhost:5000/app:1",
            "docker://gcr.io/x/y:1",
            "docker:/paketo/builder",
            "./relative",
            "oci-archive:/x.tar",
        ]
        .map(String::from),
    );
    v
}

/// A few characters that matter to the grammars, and any others.
fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::sample::select(vec![
            ":",
            "/",
            "@",
            ".",
            "-",
            "_",
            "__",
            "[",
            "]",
            "::",
            "sha256:",
            "oci:",
            "docker-archive:",
            "docker://",
            "localhost",
            "A",
            "é",
            "\u{1b}",
            "\0",
            " ",
            "..",
            "~",
            "\n",
            "\"",
            "=",
            "[[run-images]]\n",
        ])
        .prop_map(String::from),
        "\\PC{1,8}",
        ("[a-z0-9]{1,3}", 1..5_000usize).prop_map(|(s, n)| s.repeat(n)),
    ]
}

/// `seed` with a few pieces inserted, parts deleted, or characters replaced.
fn mutated(seeds: Vec<String>) -> impl Strategy<Value = String> {
    (
        proptest::sample::select(seeds),
        proptest::collection::vec((any::<Index>(), any::<Index>(), piece(), 0..3u8), 1..5),
    )
        .prop_map(|(seed, edits)| {
            let mut chars: Vec<char> = seed.chars().collect();
            for (at, to, piece, kind) in edits {
                let i = at.index(chars.len() + 1);
                match kind {
                    0 => {
                        chars.splice(i..i, piece.chars());
                    }
                    1 => {
                        let j = i.max(to.index(chars.len() + 1));
                        chars.drain(i..j.min(i + 8));
                    }
                    _ => {
                        let end = (i + piece.chars().count()).min(chars.len());
                        chars.splice(i..end, piece.chars());
                    }
                }
            }
            chars.into_iter().collect()
        })
}

fn check_reference(s: &str) {
    match ImageRef::parse(s) {
        Ok(r) => {
            let back = ImageRef::parse(&r.to_string()).unwrap();
            assert_eq!(back.to_string(), r.to_string(), "{s:?}");
            assert_eq!(ImageRef::parse(&r.familiar()).unwrap().name(), r.name(), "{s:?}");
        }
        Err(e) => {
            let shown = e.to_string();
            assert!(shown.len() < MAX_MESSAGE_BYTES, "{} bytes", shown.len());
            assert!(!shown.chars().any(char::is_control), "{shown:?}");
        }
    }
}

fn check_location(s: &str) {
    match ImageLocation::parse(s, Path::new("/work/base")) {
        Ok(loc) => {
            let _ = loc.to_string();
        }
        Err(e) => {
            let shown = e.to_string();
            assert!(shown.len() < MAX_MESSAGE_BYTES, "{} bytes", shown.len());
            assert!(!shown.chars().any(char::is_control), "{shown:?}");
        }
    }
}

fn check_config(bytes: &[u8]) {
    match UserConfig::from_bytes("/home/u/.cnbx/config.toml", bytes) {
        Ok(config) => {
            let text = config.to_toml();
            let again = UserConfig::from_toml("/home/u/.cnbx/config.toml", &text).unwrap();
            assert_eq!(again.run_images(), config.run_images());
            // An edit of the document as written is read back as made.
            let mut edited = config.clone();
            edited.add_mirrors("fuzz/run", &["m.example.com/run".to_owned()]);
            if let Some(first) = config.run_images().first() {
                edited.add_mirrors(&first.image, &["m.example.com/first".to_owned()]);
                edited.remove_mirrors(&first.image, Some(first.mirror_list()));
            }
            let again = UserConfig::from_toml("/home/u/.cnbx/config.toml", &edited.to_toml()).unwrap();
            assert_eq!(again.run_images(), edited.run_images());
        }
        Err(e) => {
            let shown = format!("{e}: {}", std::error::Error::source(&e).map(ToString::to_string).unwrap_or_default());
            assert!(shown.len() < MAX_MESSAGE_BYTES, "{} bytes", shown.len());
        }
    }
}

const CONFIG_SEED: &str = "pull-policy = \"if-not-present\"\n\n[[run-images]]\nimage = \"paketo/run:base\"\n\
    mirrors = [\"gcr.io/me/run:base\", \"localhost:5000/run:base\"]\nnote = \"kept\"\n\n\
    [[run-images]]\nimage = \"x\"\nmirrors = []\n\n[registry-mirrors]\n\"index.docker.io\" = \"m.example.com\"\n";

// proptest's default of 256 cases runs in well under a second in a debug build.
proptest! {
    #[test]
    fn fuzz_image_reference(s in prop_oneof!["\\PC{0,80}", mutated(valid_references())]) {
        check_reference(&s);
    }

    #[test]
    fn fuzz_image_reference_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        check_reference(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn fuzz_image_location(s in prop_oneof!["\\PC{0,80}", mutated(valid_locations())]) {
        check_location(&s);
    }

    #[test]
    fn fuzz_user_config_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
        check_config(&bytes);
    }

    #[test]
    fn fuzz_user_config_mutated(text in mutated(vec![CONFIG_SEED.to_owned()])) {
        check_config(text.as_bytes());
    }
}
