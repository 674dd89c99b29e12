//! Base-image validation end to end: the offline build and run images, changed with
//! `umoci config` (or by rewriting their config) to break one platform-spec rule each, must
//! stop `builder create` with an error naming the image, the rule and the fix (MUST rules) or
//! warn (SHOULD rules), and an error must leave nothing written.
//!
//! Build images may be OCI layouts; run images and mirrors are registry names (they are
//! written into the builder), so the changed ones are put into the local store under
//! `cnbx.test/…` names and read with `--pull-policy never`.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};

use common::images::{PATH_ENV, config, edit_config, layout, minimal_config, oci, run_image, stored, tools};
use common::{Env, workspace_root};
use serde_json::Value;

/// Runs `builder create` into `oci:out:latest` with `args` added; returns the exit code and
/// the formatted outcome.
fn create(env: &Env, config: &Path, args: &[&str]) -> (i32, String) {
    let out = env
        .cmd()
        .args(["builder", "create", "oci:out:latest", "--config", config.to_str().unwrap(), "--pull-policy", "never"])
        .args(args)
        .output()
        .unwrap();
    (out.status.code().unwrap_or(-1), env.format(&out))
}

const SPEC_ERROR: &str = "ERROR: the base images do not meet the Cloud Native Buildpacks platform spec";

/// An error naming `rule`, with a fix, and nothing written.
fn assert_refused(env: &Env, (code, out): &(i32, String), rule: &str, what: &str) {
    assert_eq!(*code, 1, "{what}: {out}");
    assert!(out.contains(SPEC_ERROR), "{what}: {out}");
    assert!(out.contains(&format!("[{rule}]")), "{what}: {out}");
    assert!(out.contains("fix:"), "{what}: {out}");
    assert!(!env.work.path().join("out").exists(), "{what}: nothing may be written");
}

/// Success, with a `Warning:` line naming `rule`.
fn assert_warned(out: &(i32, String), rule: &str, what: &str) {
    let (code, out) = out;
    assert_eq!(*code, 0, "{what}: {out}");
    assert!(out.lines().any(|l| l.starts_with("Warning: ") && l.contains(&format!("[{rule}]"))), "{what}: {out}");
}

/// A fresh environment and the unchanged amd64 build image as a layout; `None` (the test is
/// skipped) without skopeo and umoci.
fn env_with_build_image() -> Option<(Env, String)> {
    if !tools() {
        return None;
    }
    let env = Env::new();
    let build = oci(&layout(&env, "build", "build", "amd64", &[]));
    Some((env, build))
}

struct Case {
    name: &'static str,
    build: &'static [&'static str],
    run: &'static [&'static str],
    run_arch: &'static str,
    rule: &'static str,
    error: bool,
}

const CASES: &[Case] = &[
    Case {
        name: "root build user",
        build: &["--config.user", "0:0"],
        run: &[],
        run_arch: "amd64",
        rule: "BUILD-USER-NONROOT",
        error: true,
    },
    Case {
        name: "no CNB_USER_ID",
        build: &["--clear=config.env", "--config.env", PATH_ENV, "--config.env", "CNB_GROUP_ID=1000"],
        run: &[],
        run_arch: "amd64",
        rule: "BUILD-ENV-CNB_USER_ID",
        error: true,
    },
    Case {
        name: "no PATH",
        build: &["--clear=config.env", "--config.env", "CNB_USER_ID=1000", "--config.env", "CNB_GROUP_ID=1000"],
        run: &[],
        run_arch: "amd64",
        rule: "BUILD-ENV-PATH",
        error: true,
    },
    Case {
        name: "run image lacks the target's platform",
        build: &[],
        run: &[],
        run_arch: "arm64",
        rule: "PAIR-TARGET-MATCH",
        error: true,
    },
    Case {
        name: "run distro differs",
        build: &[],
        run: &["--config.label", "io.buildpacks.base.distro.version=24.04"],
        run_arch: "amd64",
        rule: "PAIR-TARGET-MATCH",
        error: true,
    },
    Case {
        name: "run user is the build user",
        build: &[],
        run: &["--config.user", "1000:1000"],
        run_arch: "amd64",
        rule: "RUN-USER-DIFFERENT",
        error: false,
    },
];

#[test]
fn each_broken_rule_is_reported_with_its_image_and_fix() {
    if !tools() {
        return;
    }
    for case in CASES {
        let env = Env::new();
        let build = oci(&layout(&env, "build", "build", "amd64", case.build));
        let run = run_image(&env, "run", case.run_arch, case.run);
        let cfg = config(&env, &build, &run, None, "");
        let outcome = create(&env, &cfg, &["--target", "linux/amd64"]);
        if case.error {
            assert_refused(&env, &outcome, case.rule, case.name);
        } else {
            assert_warned(&outcome, case.rule, case.name);
            // The second run replays the cached validation: same warnings, no layer reading.
            let again = create(&env, &cfg, &["--target", "linux/amd64"]);
            assert_warned(&again, case.rule, case.name);
            assert!(env.home.path().join("cache/validation").read_dir().unwrap().count() >= 1);
        }
    }
}

/// A run image that exists but has no image for the build image's platform is a
/// PAIR-TARGET-MATCH finding naming both platforms, not a fetch failure.
#[test]
fn a_run_image_without_the_platform_is_a_target_finding() {
    let Some((env, build)) = env_with_build_image() else { return };
    let run = run_image(&env, "run", "arm64", &[]);
    let outcome = create(&env, &config(&env, &build, &run, None, ""), &["--target", "linux/amd64"]);
    assert_refused(&env, &outcome, "PAIR-TARGET-MATCH", "platform");
    let out = &outcome.1;
    assert!(!out.contains("failed to fetch image"), "{out}");
    let build = env.redact(&build);
    assert!(
        out.contains(&format!(
            "run image '{run}': has no manifest for platform linux/amd64, the platform of the build image '{build}' \
             (it has: linux/arm64) [PAIR-TARGET-MATCH]"
        )),
        "{out}"
    );
}

/// Every run image mirror is a run image: one that can be read gets the run image rules and
/// the pairing with the build image; one that cannot be read stays a warning.
#[test]
fn readable_mirrors_get_the_run_image_rules() {
    let Some((env, build)) = env_with_build_image() else { return };
    let run = run_image(&env, "run", "amd64", &[]);
    // Another platform.
    let other = run_image(&env, "mirror-arm", "arm64", &[]);
    let outcome = create(&env, &config(&env, &build, &run, Some(&other), ""), &["--target", "linux/amd64"]);
    assert_refused(&env, &outcome, "PAIR-TARGET-MATCH", "mirror platform");
    assert!(outcome.1.contains(&format!("run image mirror '{other}': has no manifest for platform linux/amd64")));
    assert!(!outcome.1.contains("is not accessible"), "{}", outcome.1);
    // No PATH.
    let no_path = run_image(&env, "mirror-path", "amd64", &["--clear=config.env"]);
    let outcome = create(&env, &config(&env, &build, &run, Some(&no_path), ""), &["--target", "linux/amd64"]);
    assert_refused(&env, &outcome, "RUN-ENV-PATH", "mirror PATH");
    assert!(outcome.1.contains(&format!("run image mirror '{no_path}': PATH is not set")), "{}", outcome.1);
    // The build image's user (a SHOULD).
    let same_user = run_image(&env, "mirror-user", "amd64", &["--config.user", "1000:1000"]);
    let outcome = create(&env, &config(&env, &build, &run, Some(&same_user), ""), &["--target", "linux/amd64"]);
    assert_warned(&outcome, "RUN-USER-DIFFERENT", "mirror user");
    // Not in the store (nor, with --pull-policy never, anywhere): a warning.
    let outcome =
        create(&env, &config(&env, &build, &run, Some("cnbx.test/absent:1"), ""), &["--target", "linux/amd64"]);
    assert_eq!(outcome.0, 0, "{}", outcome.1);
    assert!(outcome.1.contains("Warning: run image 'cnbx.test/absent:1' is not accessible"), "{}", outcome.1);
}

/// A variant set on one image only gives the same level (a warning) whichever image has it.
#[test]
fn a_variant_on_one_side_only_is_a_warning_either_way() {
    if !tools() {
        return;
    }
    let arm = |variant: Option<&str>| {
        let variant = variant.map(str::to_owned);
        move |c: &mut Value| {
            c["architecture"] = "arm".into();
            match &variant {
                Some(v) => c["variant"] = v.as_str().into(),
                None => drop(c.as_object_mut().unwrap().remove("variant")),
            }
        }
    };
    for (build_variant, run_variant) in [(Some("v7"), None), (None, Some("v7"))] {
        let what = format!("build arm/{build_variant:?}, run arm/{run_variant:?}");
        let env = Env::new();
        let build_dir = layout(&env, "build", "build", "amd64", &[]);
        edit_config(&build_dir, arm(build_variant), None);
        let run_dir = layout(&env, "run", "run", "amd64", &[]);
        edit_config(&run_dir, arm(run_variant), None);
        let run = stored(&env, &run_dir, "run");
        let outcome = create(&env, &minimal_config(&env, &oci(&build_dir), &run), &[]);
        assert_warned(&outcome, "PAIR-TARGET-MATCH", &what);
        assert!(outcome.1.contains("variant"), "{what}: {}", outcome.1);
    }
}

/// The validator sees the builder's final labels (--label), reads CNB_USER_ID as pack does,
/// and compares an OCI layout entry's platform with the image config.
#[test]
fn validation_sees_the_final_image() {
    if !tools() {
        return;
    }
    let env = Env::new();
    let run = run_image(&env, "run", "amd64", &[]);
    // The build image lacks a base label; --label adds it to the builder.
    let unlabelled = layout(&env, "build", "build", "amd64", &["--clear=config.labels"]);
    let labels = [
        "io.buildpacks.base.description=d",
        "io.buildpacks.base.distro.name=ubuntu",
        "io.buildpacks.base.distro.version=22.04",
        "io.buildpacks.base.homepage=https://example.com",
        "io.buildpacks.base.metadata={}",
        "io.buildpacks.base.released=1980-01-01",
        "io.buildpacks.stack.id=io.buildpacks.stacks.jammy",
    ];
    let mut args = vec!["--target", "linux/amd64"];
    for l in &labels {
        args.extend(["--label", l]);
    }
    let cfg = config(&env, &oci(&unlabelled), &run, None, "");
    let without = create(&env, &cfg, &args);
    assert_warned(&without, "BUILD-LABEL-BASE-MAINTAINER", "no maintainer label");
    args.extend(["--label", "io.buildpacks.base.maintainer=team"]);
    std::fs::remove_dir_all(env.work.path().join("out")).unwrap();
    let with = create(&env, &cfg, &args);
    assert_eq!(with.0, 0, "{}", with.1);
    assert!(!with.1.contains("BUILD-LABEL-BASE-"), "--label counts for the label rules: {}", with.1);

    // CNB_USER_ID=+1000 is 1000 for pack and the lifecycle.
    let signed = layout(
        &env,
        "build",
        "signed",
        "amd64",
        &[
            "--clear=config.env",
            "--config.env",
            PATH_ENV,
            "--config.env",
            "CNB_USER_ID=+1000",
            "--config.env",
            "CNB_GROUP_ID=1000",
        ],
    );
    let outcome = create(&env, &config(&env, &oci(&signed), &run, None, ""), &["--target", "linux/amd64"]);
    assert_eq!(outcome.0, 0, "{}", outcome.1);
    assert!(!outcome.1.contains("CNB_USER_ID"), "{}", outcome.1);

    // An index.json entry whose platform is not the config's.
    let mislabelled = layout(&env, "build", "mislabelled", "amd64", &[]);
    edit_config(&mislabelled, |_| {}, Some(serde_json::json!({"os": "linux", "architecture": "arm64"})));
    let outcome = create(&env, &config(&env, &oci(&mislabelled), &run, None, ""), &["--target", "linux/amd64"]);
    assert_warned(&outcome, "BOTH-OS-ARCH-VALID", "descriptor platform");
    assert!(outcome.1.contains("the index entry's platform linux/arm64 differs from the image config's linux/amd64"));
}

/// A buildpack directory with only `[[stacks]]` (no `[[targets]]`).
fn stack_only_buildpack(env: &Env, stack: &str) -> PathBuf {
    let dir = env.work.path().join("legacy-bp");
    let toml = format!(
        "api = \"0.9\"\n\n[buildpack]\n  id = \"example/legacy\"\n  version = \"1.0.0\"\n\n[[stacks]]\n  id = \"{stack}\"\n"
    );
    env.write("legacy-bp/buildpack.toml", &toml);
    for bin in ["detect", "build"] {
        env.write(&format!("legacy-bp/bin/{bin}"), "#!/bin/sh\nexit 0\n");
    }
    dir
}

/// The legacy stack rules follow the rule table: a stack id outside the recommended
/// characters and a missing CNB_STACK_ID are warnings with a Platform API 0.12+ lifecycle,
/// even with [stack].id set (pack builds such builders); with a buildpack that declares only
/// [[stacks]], the stack id and mixin pairing are errors.
#[test]
fn legacy_stack_rules_follow_the_rule_table() {
    if !tools() {
        return;
    }
    let env = Env::new();
    let stack = "Initializ Distroless Stack";
    let label = format!("io.buildpacks.stack.id={stack}");
    let no_stack_env = ["--clear=config.env", "--config.env", PATH_ENV, "--config.env", "CNB_USER_ID=1000"];
    let mut build_changes = vec!["--config.label", &label];
    build_changes.extend(no_stack_env);
    build_changes.extend(["--config.env", "CNB_GROUP_ID=1000"]);
    let build = oci(&layout(&env, "build", "build", "amd64", &build_changes));
    let run = run_image(&env, "run", "amd64", &["--config.label", &label]);
    let repo = workspace_root();
    let toml = format!(
        "[[buildpacks]]\n  uri = \"{repo}/testdata/buildpacks/hello-world\"\n\n[[order]]\n  [[order.group]]\n    id = \
         \"samples/hello-world\"\n\n[stack]\n  id = \"{stack}\"\n  build-image = \"{build}\"\n  run-image = \
         \"{run}\"\n  run-image-mirrors = []\n\n[lifecycle]\n  uri = \
         \"{repo}/testdata/lifecycle/lifecycle-v0.21.0+test.tgz\"\n",
        repo = repo.display()
    );
    let cfg = env.write("initz.toml", &toml);
    let outcome = create(&env, &cfg, &[]);
    assert_warned(&outcome, "LEGACY-LABEL-STACK-ID", "stack id characters");
    assert_warned(&outcome, "LEGACY-BUILD-ENV-CNB_STACK_ID", "no CNB_STACK_ID");

    // Run image of another stack: a warning, unless a stack-only buildpack needs the stack.
    let other = run_image(&env, "other-stack", "amd64", &["--config.label", "io.buildpacks.stack.id=io.example.other"]);
    let sample = config(&env, &oci(&layout(&env, "build", "jammy", "amd64", &[])), &other, None, "");
    std::fs::remove_dir_all(env.work.path().join("out")).unwrap();
    assert_warned(&create(&env, &sample, &["--target", "linux/amd64"]), "LEGACY-PAIR-STACK-ID", "no legacy buildpack");
    std::fs::remove_dir_all(env.work.path().join("out")).unwrap();
    let legacy = stack_only_buildpack(&env, "io.buildpacks.stacks.jammy");
    let text = std::fs::read_to_string(&sample).unwrap().replacen(
        "[[buildpacks]]",
        &format!("[[buildpacks]]\n  uri = \"{}\"\n\n[[buildpacks]]", legacy.display()),
        1,
    );
    let with_legacy = env.write("legacy.toml", &text);
    let outcome = create(&env, &with_legacy, &["--target", "linux/amd64"]);
    assert_refused(&env, &outcome, "LEGACY-PAIR-STACK-ID", "legacy buildpack");
}

/// `minimal_config` with `[stack].id` set.
fn with_stack_id(env: &Env, build: &str, run: &str, stack: &str) -> PathBuf {
    let text = std::fs::read_to_string(minimal_config(env, build, run)).unwrap();
    env.write("stack.toml", &format!("{text}\n[stack]\n  id = \"{stack}\"\n"))
}

/// pack's first checks of the base images (the build image's OS, each image's stack id against
/// [stack].id) keep pack's sentence and name the rule and the fix, as every other base-image
/// error does; a dry run reports them as findings.
#[test]
fn packs_os_and_stack_id_checks_name_the_rule_and_the_fix() {
    let Some((env, build)) = env_with_build_image() else { return };
    let run = run_image(&env, "run", "amd64", &[]);
    for (os, fix) in [
        ("", "rebuild the build image with a tool that sets os in its config (linux for a Linux image)"),
        ("darwin", "use a linux, windows or freebsd build image"),
    ] {
        let dir = layout(&env, "build", &format!("os-{os}"), "amd64", &[]);
        edit_config(&dir, |c| c["os"] = os.into(), None);
        let cfg = minimal_config(&env, &oci(&dir), &run);
        let outcome = create(&env, &cfg, &[]);
        assert_refused(&env, &outcome, "BUILD-OS-SUPPORTED", os);
        let sentence = format!(
            "build image '{}': provided image OS '{os}' must be either 'freebsd', 'linux' or 'windows' \
             [BUILD-OS-SUPPORTED]\n    fix: {fix}",
            oci(&dir)
        );
        assert!(outcome.1.contains(&env.redact(&sentence)), "{}", outcome.1);
        let dry = create(&env, &cfg, &["--dry-run", "--output", "json"]);
        assert_eq!(dry.0, 1, "{}", dry.1);
        assert!(dry.1.contains("\"rule\": \"BUILD-OS-SUPPORTED\""), "the dry run lists the finding: {}", dry.1);
    }

    let cfg = with_stack_id(&env, &build, &run, "io.example.other");
    let outcome = create(&env, &cfg, &[]);
    assert_refused(&env, &outcome, "LEGACY-PAIR-STACK-ID", "build image stack");
    let sentence = format!(
        "build image '{build}': stack 'io.example.other' from builder config is incompatible with stack \
         'io.buildpacks.stacks.jammy' from build image [LEGACY-PAIR-STACK-ID]\n    fix: set [stack].id = \
         \"io.buildpacks.stacks.jammy\" in builder.toml, or use a build image whose io.buildpacks.stack.id is \
         'io.example.other'"
    );
    assert!(outcome.1.contains(&env.redact(&sentence)), "{}", outcome.1);

    let other = run_image(&env, "other", "amd64", &["--config.label", "io.buildpacks.stack.id=io.example.other"]);
    let cfg = with_stack_id(&env, &build, &other, "io.buildpacks.stacks.jammy");
    let outcome = create(&env, &cfg, &[]);
    assert_refused(&env, &outcome, "LEGACY-PAIR-STACK-ID", "run image stack");
    let sentence = format!(
        "run image '{other}': stack 'io.buildpacks.stacks.jammy' from builder config is incompatible with stack \
         'io.example.other' from run image '{other}' [LEGACY-PAIR-STACK-ID]\n    fix: set [stack].id = \
         \"io.example.other\" in builder.toml, or use a run image whose io.buildpacks.stack.id is \
         'io.buildpacks.stacks.jammy'"
    );
    assert!(outcome.1.contains(&env.redact(&sentence)), "{}", outcome.1);
}
