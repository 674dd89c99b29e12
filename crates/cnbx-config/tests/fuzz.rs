//! Never-panic property tests ("fuzzing on stable Rust") of the whole builder.toml pipeline:
//! bytes → text check → TOML → model → `[[build.env]]` → `validate` → run-image name check,
//! on arbitrary bytes, on TOML-like text and on mutations of valid files. Beyond not
//! panicking: messages stay bounded however long the input's lines are, and the build-config
//! env file names are always plain environment variable names.
//!
//! `PROPTEST_CASES=<many> cargo test -p cnbx-config --test fuzz` runs more cases.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use cnbx_config::{ConfigError, LoadedConfig, parse_bytes};
use cnbx_model::Target;
use proptest::prelude::*;
use proptest::sample::Index;

/// Small valid files that reach every part of the parser.
const SEEDS: &[&str] = &[
    include_str!("../../../builder.toml.example"),
    "[stack]\nid = \"s\"\nbuild-image = \"b\"\nrun-image = \"r\"\nrun-image-mirrors = [\"m1\", \"m2\"]\n\
     [[order]]\n[[order.group]]\nid = \"a\"\noptional = true\n",
    "[build]\nimage = \"b\"\n[[build.env]]\nname = \"A\"\nvalue = \"1\"\nsuffix = \"append\"\ndelim = \":\"\n\
     [[build.env]]\nname = \"A\"\nvalue = \"2\"\nsuffix = \"prepend\"\n[[run.images]]\nimage = \"r\"\n\
     mirrors = [\"x/y\"]\n[[targets]]\nos = \"linux\"\narch = \"arm\"\nvariant = \"v7\"\n\
     [[targets.distros]]\nname = \"ubuntu\"\nversion = \"22.04\"\n[lifecycle]\nversion = \"0.20\"\n",
    "[[buildpacks]]\nimage = \"x/bp:1\"\n[[extensions]]\nuri = \"e\"\n[system.pre]\n\
     buildpacks = [{ id = \"p\", version = \"1\" }]\n[[order-extensions]]\n[[order-extensions.group]]\nid = \"e\"\n\
     [build]\nimage = \"b\"\n[[run.images]]\nimage = \"r\"\n",
];

/// The longest message (with its diagnostic) any input may produce: a snippet and a help
/// line for each of at most 20 keys, each line an excerpt.
const MAX_MESSAGE_BYTES: usize = 24 * 1024;

fn check_error(e: &ConfigError) {
    let message = e.to_string();
    let diagnostic = e.diagnostic().unwrap_or_default();
    assert!(message.len() + diagnostic.len() < MAX_MESSAGE_BYTES, "{} + {} bytes", message.len(), diagnostic.len());
    for w in e.warnings() {
        assert!(w.len() < 1024, "a warning of {} bytes", w.len());
    }
}

fn check_loaded(loaded: &LoadedConfig) {
    for w in &loaded.warnings {
        assert!(w.len() < 1024, "a warning of {} bytes", w.len());
    }
    for file in loaded.build_env.keys() {
        let name = file.split_once('.').map_or(file.as_str(), |(n, _)| n);
        let mut bytes = name.bytes();
        assert!(
            bytes.next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
                && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_'),
            "build-config env file {file:?}"
        );
    }
    for value in loaded.build_env.values() {
        assert!(!value.contains('\0'));
    }
    if let Err(e) = loaded.validate() {
        check_error(&e);
    }
    if let Err(e) = loaded.check_run_image_names(|n| if n.contains("::") { Err("bad".into()) } else { Ok(()) }) {
        check_error(&e);
    }
    if let Err(e) = loaded.config.lifecycle.source() {
        check_error(&e);
    }
    for target in &loaded.config.targets {
        let _ = Target::parse(&target.to_string());
    }
    for module in &loaded.config.buildpacks {
        let _ = loaded.resolve_path(&module.uri);
    }
}

fn pipeline(bytes: &[u8]) {
    match parse_bytes(bytes, Path::new("dir/builder.toml")) {
        Ok(loaded) => check_loaded(&loaded),
        Err(e) => check_error(&e),
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    Insert(Index, Vec<u8>),
    /// A run of one byte string, to make long lines, keys and values.
    Repeat(Index, Vec<u8>, usize),
    Delete(Index, usize),
    Replace(Index, u8),
    /// A copy of one part of the file elsewhere (duplicate keys and tables).
    Copy(Index, usize, Index),
}

fn token() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 1..8),
        proptest::sample::select(vec![
            "[",
            "]",
            "[[",
            "]]",
            "{",
            "}",
            "=",
            "\"",
            "'",
            "\"\"\"",
            ",",
            ".",
            "\n",
            "#",
            "\\u0000",
            "\\",
            "\t",
            "name = \"../x\"",
            "mirrors = [\"::bad::\"]",
            "[[targets]]\n",
            "[[build.env]]\n",
            "suffix = \"append\"",
            "é",
            "\u{1b}",
            "\0",
            "\r\n",
        ])
        .prop_map(|s| s.as_bytes().to_vec()),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<Index>(), token()).prop_map(|(i, t)| Mutation::Insert(i, t)),
        (any::<Index>(), token(), 1..20_000usize).prop_map(|(i, t, n)| Mutation::Repeat(i, t, n)),
        (any::<Index>(), 1..64usize).prop_map(|(i, n)| Mutation::Delete(i, n)),
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Replace(i, b)),
        (any::<Index>(), 1..200usize, any::<Index>()).prop_map(|(i, n, j)| Mutation::Copy(i, n, j)),
    ]
}

fn apply(seed: &str, mutations: &[Mutation]) -> Vec<u8> {
    let mut bytes = seed.as_bytes().to_vec();
    for m in mutations {
        let at = |i: &Index, bytes: &Vec<u8>| i.index(bytes.len() + 1);
        match m {
            Mutation::Insert(i, t) => {
                let p = at(i, &bytes);
                bytes.splice(p..p, t.iter().copied());
            }
            Mutation::Repeat(i, t, n) => {
                let p = at(i, &bytes);
                let run: Vec<u8> = t.iter().copied().cycle().take(t.len() * n).collect();
                bytes.splice(p..p, run);
            }
            Mutation::Delete(i, n) => {
                let p = at(i, &bytes);
                let end = (p + n).min(bytes.len());
                bytes.drain(p..end);
            }
            Mutation::Replace(i, b) => {
                if !bytes.is_empty() {
                    let p = i.index(bytes.len());
                    bytes[p] = *b;
                }
            }
            Mutation::Copy(i, n, j) => {
                let p = at(i, &bytes);
                let part = bytes[p..(p + n).min(bytes.len())].to_vec();
                let q = at(j, &bytes);
                bytes.splice(q..q, part);
            }
        }
    }
    bytes
}

// proptest's default of 256 cases runs in well under a second in a debug build.
proptest! {
    #[test]
    fn fuzz_builder_toml_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        pipeline(&bytes);
    }

    #[test]
    fn fuzz_builder_toml_tomlish_text(text in "[\\[\\]{}=\",.a-z0-9_ \n#'\\\\-]{0,600}") {
        pipeline(text.as_bytes());
    }

    #[test]
    fn fuzz_builder_toml_mutated(
        seed in proptest::sample::select(SEEDS),
        mutations in proptest::collection::vec(mutation(), 1..6),
    ) {
        pipeline(&apply(seed, &mutations));
    }
}

#[test]
fn seeds_are_valid() {
    for seed in SEEDS {
        let loaded = parse_bytes(seed.as_bytes(), Path::new("builder.toml")).unwrap();
        loaded.validate().unwrap();
        check_loaded(&loaded);
    }
}
