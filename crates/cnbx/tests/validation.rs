//! Base-image validation end to end: the offline build and run images, changed with
//! `umoci config` to break one platform-spec rule each, must stop `builder create` with an
//! error naming the image, the rule and the fix (MUST rules) or warn (SHOULD rules), and an
//! error must leave nothing written.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Env, workspace_root};

const PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Copies `cnbx.test/<role>:jammy` for `arch` into the layout `<work>/<role>` (tag `base`)
/// and applies `umoci config` with `changes`.
fn base_image(env: &Env, role: &str, arch: &str, changes: &[&str]) -> String {
    let store = workspace_root().join("testdata/cnbx-home/store");
    let dir = env.work.path().join(role);
    cnbx_testkit::skopeo(&[
        "copy",
        "--override-arch",
        arch,
        &format!("oci:{}:cnbx.test/{role}:jammy", store.display()),
        &format!("oci:{}:base", dir.display()),
    ])
    .unwrap();
    if !changes.is_empty() {
        let image = format!("{}:base", dir.display());
        let mut args = vec!["config", "--image", &image];
        args.extend_from_slice(changes);
        cnbx_testkit::umoci(&args).unwrap();
    }
    format!("oci:{}:base", dir.display())
}

/// Runs `builder create` with the sample builder.toml on the given base images.
fn create(env: &Env, build: &str, run: &str) -> (i32, String) {
    let repo = workspace_root();
    let text = std::fs::read_to_string(repo.join("builder.toml.example"))
        .unwrap()
        .replace("\"testdata/", &format!("\"{}/testdata/", repo.display()))
        .replace("\"cnbx.test/build:jammy\"", &format!("\"{build}\""))
        .replace("\"cnbx.test/run:jammy\"", &format!("\"{run}\""));
    let config = env.write("builder.toml", &text);
    let out = env
        .cmd()
        .args(["builder", "create", "oci:out:latest", "--config", config.to_str().unwrap(), "--target", "linux/amd64"])
        .output()
        .unwrap();
    (out.status.code().unwrap_or(-1), env.format(&out))
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
        rule: "has no manifest for platform linux/amd64 (it has: linux/arm64)",
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
    if cnbx_testkit::require_tool("skopeo", "skopeo").is_err() || cnbx_testkit::require_tool("umoci", "umoci").is_err()
    {
        return;
    }
    for case in CASES {
        let env = Env::new();
        let build = base_image(&env, "build", "amd64", case.build);
        let run = base_image(&env, "run", case.run_arch, case.run);
        let (code, out) = create(&env, &build, &run);
        assert!(out.contains(case.rule), "{}: {out}", case.name);
        if case.error {
            assert_eq!(code, 1, "{}: {out}", case.name);
            let is_rule_id = case.rule.chars().all(|c| c.is_ascii_uppercase() || c == '-' || c == '_');
            if is_rule_id {
                let spec = "ERROR: the base images do not meet the Cloud Native Buildpacks platform spec";
                assert!(out.contains(spec), "{}: {out}", case.name);
                assert!(out.contains("fix:"), "{}: {out}", case.name);
            }
            assert!(!env.work.path().join("out").exists(), "{}: nothing may be written", case.name);
        } else {
            assert_eq!(code, 0, "{}: {out}", case.name);
            assert!(out.contains("Warning: run image"), "{}: {out}", case.name);
            // The second run replays the cached validation: same warnings, no layer reading.
            let (code, again) = create(&env, &build, &run);
            assert_eq!(code, 0, "{}: {again}", case.name);
            assert!(
                again.contains(case.rule),
                "{}: the cached validation must repeat its warnings: {again}",
                case.name
            );
            assert!(env.home.path().join("cache/validation").read_dir().unwrap().count() >= 1);
        }
    }
}
