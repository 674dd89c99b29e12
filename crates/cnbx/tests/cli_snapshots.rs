//! Snapshots of what users read: `builder create` errors for bad builder.toml files, and
//! `builder inspect` of the sample builder in every output format.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Env, workspace_root};

fn create_with(env: &Env, name: &str, toml: &str) -> String {
    let path = env.write(name, toml);
    env.run(&["builder", "create", "x:1", "--config", path.file_name().unwrap().to_str().unwrap()])
}

#[test]
fn syntax_and_type_errors_point_at_the_line() {
    let env = Env::new();
    insta::assert_snapshot!(create_with(&env, "syntax.toml", "[build\nimage = \"b\"\n"));
    insta::assert_snapshot!(create_with(&env, "type.toml", "[[buildpacks]]\nuri = 3\n"));
}

#[test]
fn all_unknown_keys_are_listed_in_one_error() {
    let env = Env::new();
    let toml = "[[buildpacks]]\nurl = \"x\"\n\n[[buidlpacks]]\nid = \"x\"\n\n[[targets]]\nos = \"linux\"\n[[targets.distributions]]\nname = \"ubuntu\"\n";
    insta::assert_snapshot!(create_with(&env, "unknown.toml", toml));
}

#[test]
fn missing_values_say_which_key_to_add() {
    let env = Env::new();
    insta::assert_snapshot!(create_with(&env, "nobuild.toml", "[[run.images]]\nimage = \"r\"\n"));
    insta::assert_snapshot!(create_with(&env, "norun.toml", "[build]\nimage = \"b\"\n"));
    insta::assert_snapshot!(env.run(&["builder", "create", "x:1", "--config", "missing.toml"]));
    insta::assert_snapshot!(env.run(&["builder", "create", "x:1"]));
}

#[test]
fn build_env_rules_warn_then_fail() {
    let env = Env::new();
    let toml = "[build]\nimage = \"b\"\n[[build.env]]\nname = \"PATH\"\nvalue = \"\"\nsuffix = \"append\"\n[[run.images]]\nimage = \"r\"\n";
    insta::assert_snapshot!(create_with(&env, "env.toml", toml));
    let toml = "[build]\nimage = \"b\"\n[[build.env]]\nname = \"PATH\"\nvalue = \"x\"\nsuffix = \"later\"\n[[run.images]]\nimage = \"r\"\n";
    insta::assert_snapshot!(create_with(&env, "suffix.toml", toml));
}

#[test]
fn flag_errors_use_packs_messages() {
    let env = Env::new();
    env.write("b.toml", "[build]\nimage = \"b\"\n[[run.images]]\nimage = \"r\"\n");
    insta::assert_snapshot!(env.run(&[
        "builder",
        "create",
        "x:1",
        "--config",
        "b.toml",
        "--publish",
        "--pull-policy",
        "never"
    ]));
    insta::assert_snapshot!(env.run(&["builder", "create", "x:1", "--config", "b.toml", "--flatten", "a@1,b"]));
    insta::assert_snapshot!(env.run(&["builder", "create", "oci:out", "--config", "b.toml", "--publish"]));
}

/// `builder.toml.example` with absolute paths to the test data.
fn sample_toml() -> String {
    let repo = workspace_root();
    std::fs::read_to_string(repo.join("builder.toml.example"))
        .unwrap()
        .replace("\"testdata/", &format!("\"{}/testdata/", repo.display()))
}

/// A home whose local store holds the sample builder as `cnbx.test/sample:1`.
fn sample_builder() -> Env {
    let env = Env::with_test_images();
    env.write("builder.toml", &sample_toml());
    let out =
        env.run(&["builder", "create", "cnbx.test/sample:1", "--config", "builder.toml", "--pull-policy", "never"]);
    assert!(out.starts_with("exit: 0\n"), "{out}");
    env
}

/// Creates the sample builder in the local store and returns `builder inspect`'s stdout in
/// `format`. Its registry, `cnbx.test`, is under a reserved test domain and resolves nowhere, so
/// stderr is only the note that REMOTE was not looked up: no warning, no registry error.
fn inspect_sample(format: &str) -> String {
    let env = sample_builder();
    env.write("config.toml", "");
    let out = env.cmd().args(["builder", "inspect", "cnbx.test/sample:1", "--output", format]).output().unwrap();
    assert!(out.status.success(), "{}", env.format(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "Note: 'cnbx.test' is under the reserved test domain '.test' and does not resolve here, so REMOTE was not \
         looked up\n",
        "{format}"
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn inspect_of_the_sample_builder_in_every_format() {
    insta::assert_snapshot!("inspect_human", inspect_sample("human-readable"));
    insta::assert_snapshot!("inspect_json", inspect_sample("json"));
    insta::assert_snapshot!("inspect_yaml", inspect_sample("yaml"));
    insta::assert_snapshot!("inspect_toml", inspect_sample("toml"));
}

#[test]
fn inspect_shows_user_mirrors_first_and_depth_limits_the_tree() {
    let env = sample_builder();
    let added = env.run(&[
        "config",
        "run-image-mirrors",
        "add",
        "cnbx.test/run:jammy",
        "--mirror",
        "registry.example.com/run:jammy",
    ]);
    assert!(added.starts_with("exit: 0\n"), "{added}");
    let out = env.cmd().args(["builder", "inspect", "cnbx.test/sample:1", "--depth", "0"]).output().unwrap();
    assert!(out.status.success(), "{}", env.format(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    let run_images = text.split("Run Images:\n").nth(1).unwrap().split("\n\n").next().unwrap();
    insta::assert_snapshot!(run_images, @r"
      registry.example.com/run:jammy    (user-configured)
      cnbx.test/run:jammy
      mirror.cnbx.test/run:jammy
    ");
    assert!(!text.contains("samples/hello-moon@0.0.3"), "depth 0 must not expand the composite: {text}");
    let chosen = env
        .cmd()
        .args(["builder", "run-image", "cnbx.test/sample:1", "--app-image", "registry.example.com/team/app"])
        .output()
        .unwrap();
    assert!(chosen.status.success(), "{}", env.format(&chosen));
    assert_eq!(String::from_utf8(chosen.stdout).unwrap(), "registry.example.com/run:jammy\n");
}

#[test]
fn reference_errors_name_the_reference() {
    let env = Env::with_test_images();
    let text = sample_toml();
    env.write("builder.toml", &text);
    let run = |dest: &str, toml: &str| {
        env.write("b.toml", toml);
        env.run(&["builder", "create", dest, "--config", "b.toml", "--pull-policy", "never", "--target", "linux/amd64"])
    };
    insta::assert_snapshot!("bad_destination", run("Team/Builder:1", &text));
    insta::assert_snapshot!(
        "bad_build_image",
        run("x:1", &text.replace("cnbx.test/build:jammy", "cnbx.test/Build:jammy"))
    );
    insta::assert_snapshot!(
        "archive_as_input",
        run("x:1", &text.replace("\"cnbx.test/build:jammy\"", "\"docker-archive:/tmp/nope.tar\""))
    );
    insta::assert_snapshot!(
        "missing_oci_tag",
        run("x:1", &text.replace("\"cnbx.test/build:jammy\"", "\"oci:nowhere:build\""))
    );
    // Run images and mirrors are written into the builder for the lifecycle to pull: an OCI
    // layout (or any transport prefix) is refused before anything is read, with the line.
    insta::assert_snapshot!(
        "oci_run_image",
        run("x:1", &text.replace("\"cnbx.test/run:jammy\"", "\"oci:nowhere:run\""))
    );
    insta::assert_snapshot!(
        "oci_run_image_mirror",
        run("x:1", &text.replace("\"mirror.cnbx.test/run:jammy\"", "\"docker://mirror.cnbx.test/run:jammy\""))
    );
}

#[test]
fn inspect_names_a_missing_builder_and_a_non_builder() {
    let env = Env::with_test_images();
    let run = |name: &str, format: &str| {
        let out = env.cmd().args(["builder", "inspect", name, "--output", format]).output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or_default().to_owned())
    };
    insta::assert_snapshot!(format!("{:?}", run("cnbx.test/build:jammy", "human-readable")), @r#"(Some(1), "ERROR: 'cnbx.test/build:jammy' cannot be inspected as a builder: reading image metadata: builder missing label io.buildpacks.builder.metadata -- try recreating builder")"#);
    insta::assert_snapshot!(format!("{:?}", run("cnbx.test/build:jammy", "json")), @r#"(Some(1), "ERROR: preparing output for 'cnbx.test/build:jammy': reading image metadata: builder missing label io.buildpacks.builder.metadata -- try recreating builder")"#);
    insta::assert_snapshot!(format!("{:?}", run("cnbx.test/nothing:1", "human-readable")), @r#"(Some(1), "ERROR: unable to find builder 'cnbx.test/nothing:1' locally or remotely")"#);
}

#[test]
fn invalid_run_image_mirrors_are_errors_with_their_line() {
    let env = Env::with_test_images();
    let text = sample_toml();
    let run = |toml: &str| {
        env.write("b.toml", toml);
        env.run(&[
            "builder",
            "create",
            "oci:out",
            "--config",
            "b.toml",
            "--pull-policy",
            "never",
            "--target",
            "linux/amd64",
        ])
    };
    insta::assert_snapshot!(run(&text.replace("\"mirror.cnbx.test/run:jammy\"", "\"::bad::\"")), @r#"
    exit: 1
    --- stdout
    --- stderr
    ERROR: invalid run image config: mirror '::bad::' of run image 'cnbx.test/run:jammy' (b.toml, line 54): invalid image reference '::bad::': the tag after ':' is empty
      --> b.toml:54:14
       |
    54 |   mirrors = ["::bad::"]
       |              ^^^^^^^^^ not a registry image name
    help: write a registry image name, [REGISTRY/]REPOSITORY[:TAG][@DIGEST]
    "#);
    let legacy = text.replace(
        "[[run.images]]\n  image = \"cnbx.test/run:jammy\"\n  mirrors = [\"mirror.cnbx.test/run:jammy\"]",
        "[stack]\n  id = \"io.buildpacks.stacks.jammy\"\n  run-image = \"cnbx.test/run:jammy\"\n  run-image-mirrors = [\n    \"mirror.cnbx.test/run:jammy\",\n    \"ünicode/run\",\n  ]",
    );
    insta::assert_snapshot!(run(&legacy), @r#"
    exit: 1
    --- stdout
    --- stderr
    ERROR: invalid run image config: mirror 'ünicode/run' of run image 'cnbx.test/run:jammy' (b.toml, line 57): invalid image reference 'ünicode/run': invalid repository path component 'ünicode': a repository path component may contain lower-case letters and digits separated by '.', '_', '__' or dashes, and must start and end with a letter or digit
      --> b.toml:57:5
       |
    57 |     "ünicode/run",
       |     ^^^^^^^^^^^^^ not a registry image name
    help: write a registry image name, [REGISTRY/]REPOSITORY[:TAG][@DIGEST]
    "#);
    assert!(!env.work.path().join("out").exists(), "nothing may be written");
}

#[test]
fn an_incomplete_targets_entry_is_named_with_its_line() {
    let env = Env::with_test_images();
    let text = sample_toml();
    let cut = text.find("[[targets]]").unwrap();
    env.write("b.toml", &format!("{}[[targets]]\n  os = \"linux\"\n  arch = \"amd64\"\n\n[[targets]]\n", &text[..cut]));
    insta::assert_snapshot!(env.run(&["builder", "create", "oci:out", "--config", "b.toml", "--pull-policy", "never"]), @r#"
    exit: 1
    --- stdout
    --- stderr
    ERROR: invalid builder config: [[targets]] entry 2 (b.toml, line 64) has no `os` and no `arch`
      --> b.toml:64:1
       |
    64 | [[targets]]
       | ^^^^^^^^^^^ no `os` and no `arch`
    help: each [[targets]] entry names a platform with both keys, e.g. os = "linux" and arch = "amd64" or "arm64"
    "#);
}

#[test]
fn hostile_builder_toml_files_are_refused() {
    let env = Env::new();
    let toml = "[build]\nimage = \"b\"\n[[build.env]]\nname = \"../../../etc/passwd\"\nvalue = \"root::0:0::/:/bin/sh\"\n[[run.images]]\nimage = \"r\"\n";
    insta::assert_snapshot!(create_with(&env, "env.toml", toml), @r#"
    exit: 1
    --- stdout
    --- stderr
    Warning: builder configuration: empty 'order' definition
    ERROR: parse contents of 'env.toml': [[build.env]] entry 1 (line 4): env name '../../../etc/passwd' is not a valid environment variable name; use letters, digits and '_', not starting with a digit
     --> env.toml:4:8
      |
    4 | name = "../../../etc/passwd"
      |        ^^^^^^^^^^^^^^^^^^^^^ not an environment variable name
    help: a [[build.env]] name has only letters, digits and '_' and does not start with a digit, e.g. name = "BP_GREETING"
    "#);
    let secret = env.write("secret", "TOKEN=hunter2\n");
    std::os::unix::fs::symlink(&secret, env.work.path().join("link.toml")).unwrap();
    insta::assert_snapshot!(env.run(&["builder", "create", "x:1", "--config", "link.toml"]), @r"
    exit: 1
    --- stdout
    --- stderr
    ERROR: invalid builder toml: 'link.toml' is a symbolic link; pass the file it points to
    ");
    let out = create_with(&env, "long.toml", &format!("description = \"{}\" junk\n", "x".repeat(1_000_000)));
    assert!(out.len() < 1000, "{} bytes of output", out.len());
}

/// What `make demo` prints: `scripts/demo.sh`, the recipe `make demo` runs, with the binary under
/// test and a fresh CNBX_HOME. A newcomer reads any warning there as a failure, so none may
/// appear: every image it names is in the offline store, and the remote side of inspect is
/// skipped with a note because `cnbx.test` is a test domain that resolves nowhere.
#[test]
fn demo_prints_no_warning() {
    let env = Env::new();
    let home = env.work.path().join("demo-home");
    let out = std::process::Command::new("bash")
        .arg(workspace_root().join("scripts/demo.sh"))
        .arg(env!("CARGO_BIN_EXE_cnbx"))
        .arg(&home)
        .env_remove("CNBX_HOME")
        .env("PACK_HOME", env.pack.path())
        // As on a machine without a container engine (`make demo` must work there): the
        // builder goes into the cnbx store, and the create says so.
        .env("DOCKER_HOST", format!("unix://{}/no-engine.sock", env.work.path().display()))
        .env_remove("DOCKER_CONTEXT")
        .env_remove("CNBX_LOCAL")
        .env_remove("NO_COLOR")
        .current_dir(env.work.path())
        .output()
        .unwrap();
    let text = env.format(&out);
    assert!(out.status.success(), "{text}");
    assert!(!text.to_lowercase().contains("warning"), "{text}");
    insta::assert_snapshot!("demo", text);
}

/// Completions for every shell and the man pages come from the command definitions: each
/// names every command, and `--dir` writes one page per command.
#[test]
fn completions_and_man_pages_cover_every_command() {
    let env = Env::new();
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let out = env.cmd().args(["completion", shell]).output().unwrap();
        assert!(out.status.success(), "{}", env.format(&out));
        let script = String::from_utf8(out.stdout).unwrap();
        for word in ["builder", "create", "inspect", "run-image-mirrors", "pull-policy"] {
            assert!(script.contains(word), "{shell} completion lacks {word}");
        }
    }
    let out = env.cmd().args(["completion", "tcsh"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));

    let out = env.cmd().arg("manpage").output().unwrap();
    let page = String::from_utf8(out.stdout).unwrap();
    assert!(page.starts_with(".ie") && page.contains(".TH cnbx 1"), "{page}");
    let dir = env.work.path().join("man1");
    let out = env.cmd().args(["manpage", "--dir", dir.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "{}", env.format(&out));
    let mut pages: Vec<String> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    pages.sort();
    for page in ["cnbx.1", "cnbx-builder-create.1", "cnbx-builder-inspect.1", "cnbx-config-run-image-mirrors-add.1"] {
        assert!(pages.iter().any(|p| p == page), "{page} missing from {pages:?}");
    }
    let create = std::fs::read_to_string(dir.join("cnbx-builder-create.1")).unwrap();
    assert!(create.contains("pull\\-policy"), "{create}");
}
