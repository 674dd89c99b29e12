//! cnbx's configuration is pack's `$PACK_HOME/config.toml`: every `cnbx config` command
//! edits a file written by pack in place (only its key changes, byte for byte), what is set
//! there by hand is used (`builder inspect`), a `CNBX_HOME/config.toml` of an earlier cnbx is
//! taken over once, and pack's command-line spellings work unchanged.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Env, stderr, stdout};

/// pack's configuration as pack writes it, with every key pack knows.
const PACK_FILE: &str = include_str!("../../../testdata/pack-home/config.toml");

fn pack_file(env: &Env) -> String {
    std::fs::read_to_string(env.pack_config()).unwrap()
}

#[test]
fn every_config_command_changes_only_its_key_of_a_pack_file() {
    let env = Env::new();
    let cases: Vec<(Vec<&str>, String)> = vec![
        (
            vec!["config", "run-image-mirrors", "add", "cnbs/sample-stack-run:jammy", "-m", "aaa.example.com/run"],
            PACK_FILE.replace("mirrors = [\"gcr.io/cnbs", "mirrors = [\"aaa.example.com/run\", \"gcr.io/cnbs"),
        ),
        (
            vec!["config", "run-image-mirrors", "add", "new/run", "-m", "m.example.com/new/run"],
            PACK_FILE.replace(
                "paketo/run-jammy-base\"]\n",
                "paketo/run-jammy-base\"]\n\n[[run-images]]\n  image = \"new/run\"\n  mirrors = [\"m.example.com/new/run\"]\n",
            ),
        ),
        (
            vec!["config", "run-image-mirrors", "remove", "paketobuildpacks/run-jammy-base"],
            PACK_FILE.replace(
                "[[run-images]]\n  image = \"paketobuildpacks/run-jammy-base\"\n  mirrors = [\"registry.example.com/paketo/run-jammy-base\"]\n\n",
                "",
            ),
        ),
        (
            vec!["set-run-image-mirrors", "paketobuildpacks/run-jammy-base", "-m", "b.example.com/r,a.example.com/r"],
            PACK_FILE.replace(
                "[\"registry.example.com/paketo/run-jammy-base\"]",
                "[\"b.example.com/r\", \"a.example.com/r\"]",
            ),
        ),
        (
            vec!["config", "registry-mirrors", "add", "gcr.io", "-m", "gcr-mirror.example.com:5000"],
            format!("{PACK_FILE}  \"gcr.io\" = \"gcr-mirror.example.com:5000\"\n"),
        ),
        (
            vec!["config", "registry-mirror", "add", "index.docker.io", "--mirror", "other.example.com/hub"],
            PACK_FILE.replace("\"index.docker.io\" = \"mirror.example.com\"", "\"index.docker.io\" = \"other.example.com/hub\""),
        ),
        (vec!["config", "registry-mirrors", "remove", "*"], PACK_FILE.replace("  \"*\" = \"airgap.example.com\"\n", "")),
        (
            vec!["config", "pull-policy", "always"],
            PACK_FILE.replace("pull-policy = \"if-not-present\"", "pull-policy = \"always\""),
        ),
        (vec!["config", "pull-policy", "--unset"], PACK_FILE.replace("pull-policy = \"if-not-present\"\n", "")),
        (
            vec!["config", "trusted-builders", "add", "x/y:1"],
            PACK_FILE.replace("team/builder\"\n", "team/builder\"\n\n[[trusted-builders]]\n  name = \"x/y:1\"\n"),
        ),
        (
            vec!["config", "trust-builder", "remove", "registry.example.com/team/builder"],
            PACK_FILE.replace("[[trusted-builders]]\n  name = \"registry.example.com/team/builder\"\n\n", ""),
        ),
        (
            vec!["config", "default-builder", "--unset"],
            PACK_FILE.replace("default-builder-image = \"cnbs/sample-builder:jammy\"\n", ""),
        ),
    ];
    for (args, want) in cases {
        env.write_pack_config(PACK_FILE);
        let out = env.run(&args);
        assert!(out.starts_with("exit: 0\n"), "{args:?}: {out}");
        assert_eq!(pack_file(&env), want, "{args:?}: {out}");
    }

    // What only reads leaves the file as it is, and says what pack says.
    env.write_pack_config(PACK_FILE);
    let listed: String = [
        &["config", "run-image-mirrors"][..],
        &["config", "registry-mirrors"],
        &["config", "pull-policy"],
        &["config", "default-builder"],
        &["config", "trusted-builders", "add", "registry.example.com/team/builder:2"],
        &["config", "trusted-builders", "remove", "not/trusted"],
        &["config", "pull-policy", "if-not-present"],
        &["config", "registry-mirrors", "remove", "quay.io"],
        &["config", "registry-mirrors", "add", "quay.io"],
    ]
    .iter()
    .map(|args| env.run(args))
    .collect();
    assert_eq!(pack_file(&env), PACK_FILE);
    insta::assert_snapshot!(listed, @r"
    exit: 0
    --- stdout
    Run Image Mirrors:
      'cnbs/sample-stack-run:jammy':
        gcr.io/cnbs/sample-stack-run:jammy
        index.docker.io/cnbs/sample-stack-run:jammy
      'paketobuildpacks/run-jammy-base':
        registry.example.com/paketo/run-jammy-base
    --- stderr
    exit: 0
    --- stdout
    Registry Mirrors:
      *: 'airgap.example.com'
      index.docker.io: 'mirror.example.com'
    --- stderr
    exit: 0
    --- stdout
    The current pull policy is 'if-not-present'
    --- stderr
    exit: 0
    --- stdout
    The current default builder is 'cnbs/sample-builder:jammy'
    --- stderr
    exit: 0
    --- stdout
    Builder 'registry.example.com/team/builder:2' is already trusted
    --- stderr
    exit: 0
    --- stdout
    Builder 'not/trusted' wasn't trusted
    --- stderr
    exit: 0
    --- stdout
    Pull policy is already set to 'if-not-present'
    --- stderr
    exit: 0
    --- stdout
    No registry mirror has been set for 'quay.io'
    --- stderr
    exit: 0
    --- stdout
    A registry mirror was not provided.
    --- stderr
    ");
}

#[test]
fn config_commands_refuse_what_pack_would_write_but_not_use() {
    let env = Env::new();
    env.write_pack_config(PACK_FILE);
    let refused: String = [
        &["config", "pull-policy", "sometimes"][..],
        &["config", "pull-policy", "never", "--unset"],
        &["config", "registry-mirrors", "add", "gcr.io", "-m", "mirror"],
        &["config", "registry-mirrors", "add", "gcr.io/x", "-m", "m.example.com"],
        &["config", "trusted-builders", "remove", "heroku/builder:24"],
        &["config", "trusted-builders", "add", "Not/A/Reference"],
    ]
    .iter()
    .map(|args| env.run(args))
    .collect();
    assert_eq!(pack_file(&env), PACK_FILE);
    insta::assert_snapshot!(refused, @r"
    exit: 1
    --- stdout
    --- stderr
    ERROR: invalid pull policy 'sometimes': use always, if-not-present or never
    exit: 1
    --- stdout
    --- stderr
    ERROR: pull policy and --unset cannot be specified simultaneously
    exit: 1
    --- stdout
    --- stderr
    ERROR: invalid mirror 'mirror': write the registry it is on, HOST[:PORT][/PATH], such as mirror.example.com or 10.0.0.1:5000/dockerhub
    exit: 1
    --- stdout
    --- stderr
    ERROR: invalid registry 'gcr.io/x': write a registry host such as index.docker.io, gcr.io or localhost:5000, or '*' for every registry
    exit: 1
    --- stdout
    --- stderr
    ERROR: Builder 'heroku/builder:24' is a known trusted builder. Currently cnbx (like pack) doesn't support making these builders untrusted
    exit: 1
    --- stdout
    --- stderr
    ERROR: builder 'Not/A/Reference': invalid image reference 'Not/A/Reference': repository name must be lowercase
    ");

    // A policy pack would refuse is an error where it is used, naming the file.
    env.write_pack_config("pull-policy = \"sometimes\"\n");
    env.write("b.toml", "[build]\nimage = \"b\"\n[[run.images]]\nimage = \"r\"\n");
    insta::assert_snapshot!(env.run(&["builder", "create", "x:1", "--config", "b.toml"]), @r"
    exit: 1
    --- stdout
    --- stderr
    ERROR: the pull-policy of [PACK_HOME]/config.toml (set it with 'cnbx config pull-policy'): invalid pull policy 'sometimes': use always, if-not-present or never
    ");
}

/// The sample builder in the local store as `cnbx.test/sample:1`.
fn sample_builder() -> Env {
    let env = Env::with_test_images();
    common::example_config(&env, "");
    let out = env.run(&["builder", "create", "cnbx.test/sample:1", "--config", "builder.toml"]);
    assert!(out.starts_with("exit: 0\n"), "{out}");
    env
}

#[test]
fn inspect_uses_what_is_set_in_packs_file_by_hand() {
    let env = sample_builder();
    env.write_pack_config(
        "pull-policy = \"if-not-present\"\n\
         default-builder-image = \"cnbx.test/sample:1\"\n\
         \n\
         [[run-images]]\n\
         \x20 image = \"cnbx.test/run:jammy\"\n\
         \x20 mirrors = [\"registry.example.com/run:jammy\"]\n\
         \n\
         [[trusted-builders]]\n\
         \x20 name = \"cnbx.test/sample\"\n",
    );
    let out = env.cmd().args(["builder", "inspect"]).output().unwrap();
    assert!(out.status.success(), "{}", env.format(&out));
    let text = stdout(&out);
    assert!(text.starts_with("Inspecting default builder: 'cnbx.test/sample:1'\n"), "{text}");
    assert!(text.contains("\nTrusted: Yes\n"), "{text}");
    assert!(text.contains("  registry.example.com/run:jammy    (user-configured)\n"), "{text}");

    // pack's older spellings give the same report.
    for args in [&["inspect-builder", "cnbx.test/sample:1"][..], &["builder", "inspect-builder"]] {
        let again = env.cmd().args(args).output().unwrap();
        assert!(again.status.success(), "{args:?}: {}", env.format(&again));
        assert_eq!(stdout(&again), text, "{args:?}");
    }

    // The entry without a tag trusts every tag of the repository, and only that repository.
    let trusted = |name: &str| {
        let out = env.cmd().args(["builder", "inspect", name, "--output", "json"]).output().unwrap();
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        json["trusted"].as_bool().unwrap()
    };
    assert!(trusted("cnbx.test/sample:1"));
    let out = env.run(&["builder", "create", "cnbx.test/other:1", "--config", "builder.toml"]);
    assert!(out.starts_with("exit: 0\n"), "{out}");
    assert!(!trusted("cnbx.test/other:1"));

    // No default builder: pack's hint, exit 1.
    env.write_pack_config("pull-policy = \"if-not-present\"\n");
    insta::assert_snapshot!(env.run(&["builder", "inspect"]), @r"
    exit: 1
    --- stdout
    --- stderr
    Please select a default builder with:

    	cnbx config default-builder <builder-image>
    ");

    // Setting it checks that the builder exists.
    insta::assert_snapshot!(env.run(&["config", "default-builder", "cnbx.test/sample:1"]), @r"
    exit: 0
    --- stdout
    Builder 'cnbx.test/sample:1' is now the default builder
    --- stderr
    Note: 'cnbx.test' is under the reserved test domain '.test' and does not resolve here, so REMOTE was not looked up
    ");
    assert_eq!(pack_file(&env), "pull-policy = \"if-not-present\"\ndefault-builder-image = \"cnbx.test/sample:1\"\n");
    insta::assert_snapshot!(env.run(&["config", "default-builder", "cnbx.test/nothing:1"]), @r"
    exit: 1
    --- stdout
    --- stderr
    Note: 'cnbx.test' is under the reserved test domain '.test' and does not resolve here, so REMOTE was not looked up
    ERROR: validating that builder 'cnbx.test/nothing:1' exists: builder 'cnbx.test/nothing:1' not found
    ");
    insta::assert_snapshot!(env.run(&["config", "default-builder", "--unset"]), @r"
    exit: 0
    --- stdout
    Successfully unset default builder 'cnbx.test/sample:1'
    --- stderr
    ");
}

#[test]
fn a_cnbx_home_config_is_taken_over_once() {
    let env = Env::new();
    let legacy = env.home.path().join("config.toml");
    std::fs::write(
        &legacy,
        "# kept by an earlier cnbx\n[[run-images]]\nimage = \"cnbs/sample-stack-run:jammy\"\n\
         mirrors = [\"gcr.io/cnbs/sample-stack-run:jammy\", \"z.example.com/run\"]\n",
    )
    .unwrap();
    env.write_pack_config(PACK_FILE);
    insta::assert_snapshot!(env.run(&["config", "run-image-mirrors", "list", "cnbs/sample-stack-run:jammy"]), @r"
    exit: 0
    --- stdout
    Run Image Mirrors:
      'cnbs/sample-stack-run:jammy':
        gcr.io/cnbs/sample-stack-run:jammy
        index.docker.io/cnbs/sample-stack-run:jammy
        z.example.com/run
    --- stderr
    Note: cnbx now uses pack's configuration [PACK_HOME]/config.toml (with the 1 run-image mirror(s) of [HOME]/config.toml it did not have); [HOME]/config.toml was renamed [HOME]/config.toml.taken-over and is no longer read
    ");
    assert_eq!(
        pack_file(&env),
        PACK_FILE.replace(
            "\"index.docker.io/cnbs/sample-stack-run:jammy\"]",
            "\"index.docker.io/cnbs/sample-stack-run:jammy\", \"z.example.com/run\"]"
        )
    );
    assert!(!legacy.exists());
    assert!(env.home.path().join("config.toml.taken-over").exists());
    // Once only.
    let again = env.run(&["config", "run-image-mirrors", "list"]);
    assert!(again.ends_with("--- stderr\n"), "{again}");
}

/// pack's command lines, copied from pack scripts: comma lists, its global flags, its older
/// command names.
#[test]
fn pack_command_lines_work_unchanged() {
    let env = Env::with_test_images();
    common::example_config(&env, "");
    let out = env
        .cmd()
        .args([
            "--timestamps",
            "create-builder",
            "cnbx.test/t:1",
            "--config",
            "builder.toml",
            "--target",
            "linux/amd64,linux/arm64",
            "--tag",
            "cnbx.test/t:2,cnbx.test/t:3",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", env.format(&out));
    assert!(stdout(&out).contains("linux/amd64, linux/arm64)"), "{}", env.format(&out));
    let messages = stderr(&out);
    assert!(
        messages.contains(
            "Warning: Command 'cnbx create-builder' has been deprecated, please use 'cnbx builder create' instead"
        ),
        "{messages}"
    );
    for line in messages.lines() {
        let (stamp, _) = line.split_at(27);
        let shape: String = stamp.chars().map(|c| if c.is_ascii_digit() { '0' } else { c }).collect();
        assert_eq!(shape, "0000/00/00 00:00:00.000000 ", "{line}");
    }
    for tag in ["cnbx.test/t:2", "cnbx.test/t:3"] {
        let out = env.cmd().args(["builder", "inspect", tag, "-o", "json"]).output().unwrap();
        assert!(out.status.success(), "{tag}: {}", env.format(&out));
    }

    // --force-color colours messages on a pipe; without it, none.
    let plain = env.cmd().args(["create-builder", "x:1"]).output().unwrap();
    assert!(!stderr(&plain).contains('\u{1b}'), "{}", env.format(&plain));
    let forced = env.cmd().args(["--force-color", "--no-color", "create-builder", "x:1"]).output().unwrap();
    assert!(stderr(&forced).contains("\u{1b}["), "{}", env.format(&forced));
}

#[test]
fn cnb_build_config_dir_moves_the_build_config_directory() {
    if !common::images::tools() {
        return;
    }
    let env = Env::with_test_images();
    common::example_config(&env, "");
    let create = |dir: Option<&str>, out: &str| {
        let mut cmd = env.cmd();
        if let Some(dir) = dir {
            cmd.env("CNB_BUILD_CONFIG_DIR", dir);
        }
        let out = cmd
            .args(["builder", "create", &format!("oci:{out}:latest"), "--config", "builder.toml", "-t", "linux/amd64"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", env.format(&out));
    };
    create(Some("/etc/cnb//build-config/"), "moved");
    create(None, "default");
    let unpack = |name: &str| {
        cnbx_testkit::umoci_unpack(&env.work.path().join(name), "latest", &env.work.path().join(format!("{name}-root")))
            .unwrap()
    };
    let moved = unpack("moved");
    assert_eq!(std::fs::read(moved.join("etc/cnb/build-config/env/BP_GREETING")).unwrap(), b"hello");
    assert!(moved.join("etc/cnb/build-config/env").is_dir());
    assert!(!moved.join("cnb/build-config").exists());
    let default = unpack("default");
    assert_eq!(std::fs::read(default.join("cnb/build-config/env/BP_GREETING")).unwrap(), b"hello");

    let out = env
        .cmd()
        .env("CNB_BUILD_CONFIG_DIR", "relative/dir")
        .args(["builder", "create", "oci:bad", "--config", "builder.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("invalid CNB_BUILD_CONFIG_DIR 'relative/dir': it is not an absolute path"),
        "{}",
        env.format(&out)
    );
    assert!(!env.work.path().join("bad").exists());
}

/// cnbx commands editing pack's file at once, and a second writer that takes the same lock
/// (`flock` on `.config.toml.lock`, as cnbx does): every edit lands, and a reader never sees
/// a file that is not complete.
#[test]
fn concurrent_edits_by_cnbx_and_a_second_writer_all_land() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    if cnbx_testkit::require_tool("flock", "util-linux").is_err() {
        return;
    }
    let env = Env::new();
    env.write_pack_config(PACK_FILE);
    let config = env.pack_config();
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (config, stop) = (config.clone(), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut reads = 0usize;
            while !stop.load(Ordering::SeqCst) {
                let text = std::fs::read_to_string(&config).unwrap();
                toml::from_str::<toml::Table>(&text).unwrap_or_else(|e| panic!("an incomplete file: {e}\n{text}"));
                reads += 1;
            }
            reads
        })
    };
    let mirrors: Vec<String> = (0..4).map(|i| format!("m{i}.example.com/run")).collect();
    let mut edits: Vec<Vec<String>> = mirrors
        .iter()
        .map(|m| {
            ["config", "run-image-mirrors", "add", "cnbs/sample-stack-run:jammy", "-m", m].map(String::from).to_vec()
        })
        .collect();
    edits.push(["config", "registry-mirrors", "add", "quay.io", "-m", "q.example.com"].map(String::from).to_vec());
    edits.push(["config", "trusted-builders", "add", "other/builder"].map(String::from).to_vec());
    edits.push(["config", "pull-policy", "never"].map(String::from).to_vec());
    edits.push(["config", "default-builder", "--unset"].map(String::from).to_vec());
    let mut children: Vec<std::process::Child> = edits
        .iter()
        .map(|args| {
            env.std_cmd()
                .args(args)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let lock = env.pack.path().join(".config.toml.lock");
    for i in 0..4 {
        let script = format!(
            "cp config.toml w{i} && printf '\\n[second-writer-{i}]\\n  done = true\\n' >> w{i} && sleep 0.05 && mv w{i} config.toml"
        );
        children.push(
            std::process::Command::new("flock")
                .arg(&lock)
                .args(["sh", "-c", &script])
                .current_dir(env.pack.path())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap(),
        );
    }
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    stop.store(true, Ordering::SeqCst);
    assert!(reader.join().unwrap() > 0);

    let text = pack_file(&env);
    let file: toml::Table = toml::from_str(&text).unwrap();
    for i in 0..4 {
        assert_eq!(file[&format!("second-writer-{i}")]["done"].as_bool(), Some(true), "{text}");
    }
    let entry = &file["run-images"].as_array().unwrap()[0];
    let listed: Vec<&str> = entry["mirrors"].as_array().unwrap().iter().map(|m| m.as_str().unwrap()).collect();
    for m in &mirrors {
        assert!(listed.contains(&m.as_str()), "{m}: {text}");
    }
    assert_eq!(file["registry-mirrors"]["quay.io"].as_str(), Some("q.example.com"), "{text}");
    assert!(text.contains("[[trusted-builders]]\n  name = \"other/builder\"\n"), "{text}");
    assert_eq!(file["pull-policy"].as_str(), Some("never"));
    assert!(!file.contains_key("default-builder-image"), "{text}");
    // What nobody edited is still there as pack wrote it.
    assert!(
        text.contains("[[registries]]\n  name = \"corp\"\n  type = \"github\"\n  url = \"https://github.com/example/registry-index\"\n"),
        "{text}"
    );
    assert!(text.starts_with(
        "default-registry-url = \"https://example.com/registry-index\"\ndefault-registry = \"official\"\n"
    ));
}
