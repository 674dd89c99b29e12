//! `cnbx config run-image-mirrors`: pack's messages, the file format (pack's configuration,
//! `$PACK_HOME/config.toml`), and errors.

#![allow(clippy::unwrap_used)]

mod common;

use common::Env;

#[test]
fn add_list_remove_round_trip() {
    let env = Env::new();
    insta::assert_snapshot!(env.run(&["config", "run-image-mirrors"]), @r"
    exit: 0
    --- stdout
    No run image mirrors have been set
    --- stderr
    ");
    insta::assert_snapshot!(env.run(&["config", "run-image-mirrors", "add", "cnbx.test/run:jammy", "-m", "mirror.example.com/run:jammy,gcr.io/x/run", "--mirror", "ghcr.io/y/run"]), @r"
    exit: 0
    --- stdout
    Run Image 'cnbx.test/run:jammy' configured with mirror 'mirror.example.com/run:jammy'
    Run Image 'cnbx.test/run:jammy' configured with mirror 'gcr.io/x/run'
    Run Image 'cnbx.test/run:jammy' configured with mirror 'ghcr.io/y/run'
    --- stderr
    ");
    env.run(&["config", "run-image-mirrors", "add", "other/run", "-m", "localhost:5000/other/run"]);
    insta::assert_snapshot!(env.run(&["config", "run-image-mirrors", "list"]), @r"
    exit: 0
    --- stdout
    Run Image Mirrors:
      'cnbx.test/run:jammy':
        gcr.io/x/run
        ghcr.io/y/run
        mirror.example.com/run:jammy
      'other/run':
        localhost:5000/other/run
    --- stderr
    ");
    insta::assert_snapshot!(std::fs::read_to_string(env.pack_config()).unwrap(), @r#"
    [[run-images]]
      image = "cnbx.test/run:jammy"
      mirrors = ["gcr.io/x/run", "ghcr.io/y/run", "mirror.example.com/run:jammy"]

    [[run-images]]
      image = "other/run"
      mirrors = ["localhost:5000/other/run"]
    "#);
    insta::assert_snapshot!(env.run(&["config", "run-image-mirrors", "remove", "cnbx.test/run:jammy", "-m", "gcr.io/x/run", "-m", "not.configured/x"]), @r"
    exit: 0
    --- stdout
    Removed mirrors gcr.io/x/run, not.configured/x for 'cnbx.test/run:jammy'
    --- stderr
    Warning: mirror 'not.configured/x' was not configured for run image 'cnbx.test/run:jammy'
    ");
    insta::assert_snapshot!(env.run(&["config", "run-image-mirrors", "list", "other/run"]), @r"
    exit: 0
    --- stdout
    Run Image Mirrors:
      'other/run':
        localhost:5000/other/run
    --- stderr
    ");
    env.run(&["config", "run-image-mirrors", "remove", "cnbx.test/run:jammy"]);
    insta::assert_snapshot!(env.run(&["config", "run-image-mirrors", "remove", "other/run"]), @r"
    exit: 0
    --- stdout
    Removed all run image mirrors for 'other/run'
    --- stderr
    ");
    assert_eq!(std::fs::read_to_string(env.pack_config()).unwrap(), "run-images = []\n");
    insta::assert_snapshot!(env.run(&["config", "run-image-mirrors", "remove", "other/run"]), @r"
    exit: 0
    --- stdout
    No run image mirrors have been set for 'other/run'
    --- stderr
    ");
}

#[test]
fn bad_input_is_rejected_and_nothing_written() {
    let env = Env::new();
    insta::assert_snapshot!(env.run(&["config", "run-image-mirrors", "add", "x/run", "-m", "Upper/Case"]), @r"
    exit: 1
    --- stdout
    --- stderr
    ERROR: mirror 'Upper/Case' for run image 'x/run': invalid image reference 'Upper/Case': repository name must be lowercase
    ");
    assert!(!env.pack_config().exists());
    insta::assert_snapshot!(env.run(&["config", "run-image-mirrors", "add", "x/run"]), @r"
    exit: 0
    --- stdout
    No run image mirrors were provided.
    --- stderr
    ");
}

#[test]
fn corrupt_config_gives_a_clear_error() {
    let env = Env::new();
    std::fs::write(env.pack_config(), "[[run-images]]\nimage = \"a\"\nmirrors = \"not-a-list\"\n").unwrap();
    insta::assert_snapshot!(env.run(&["config", "run-image-mirrors", "list"]), @r#"
    exit: 1
    --- stdout
    --- stderr
    ERROR: invalid config file [PACK_HOME]/config.toml at line 3, column 11: invalid type: string "not-a-list", expected a sequence; fix or delete the file
    "#);
    let before = std::fs::read(env.pack_config()).unwrap();
    env.run(&["config", "run-image-mirrors", "add", "a", "-m", "b/c"]);
    assert_eq!(std::fs::read(env.pack_config()).unwrap(), before, "a corrupt config must not be overwritten");
}

#[test]
fn invalid_run_images_are_rejected_and_nothing_written() {
    let env = Env::new();
    let config = env.pack_config();
    let before = "[[run-images]]\nimage = \"x/run\"\nmirrors = [\"a.io/x/run\"]\n";
    std::fs::write(&config, before).unwrap();
    let rejected: String = [
        &["add", "::bad::", "-m", "a.io/x"][..],
        &["add", "app@sha256:abc", "-m", "a.io/x"],
        &["add", "rün/image", "-m", "a.io/x"],
        &["remove", "::bad::"],
        &["remove", "x/run", "-m", "Not/Configured"],
    ]
    .iter()
    .map(|args| env.run(&[&["config", "run-image-mirrors"][..], args].concat()))
    .collect();
    insta::assert_snapshot!(rejected, @r"
    exit: 1
    --- stdout
    --- stderr
    ERROR: run image '::bad::': invalid image reference '::bad::': the tag after ':' is empty
    exit: 1
    --- stdout
    --- stderr
    ERROR: run image 'app@sha256:abc': invalid image reference 'app@sha256:abc': invalid digest 'sha256:abc': a sha256 digest has exactly 64 hex digits
    exit: 1
    --- stdout
    --- stderr
    ERROR: run image 'rün/image': invalid image reference 'rün/image': invalid repository path component 'rün': a repository path component may contain lower-case letters and digits separated by '.', '_', '__' or dashes, and must start and end with a letter or digit
    exit: 1
    --- stdout
    --- stderr
    ERROR: run image '::bad::': invalid image reference '::bad::': the tag after ':' is empty
    exit: 1
    --- stdout
    --- stderr
    ERROR: mirror 'Not/Configured' for run image 'x/run': invalid image reference 'Not/Configured': repository name must be lowercase
    ");
    assert_eq!(std::fs::read_to_string(&config).unwrap(), before);

    // An entry that is not a reference (written by hand, or by an older cnbx) can be removed.
    std::fs::write(&config, "[[run-images]]\nimage = \"::bad::\"\nmirrors = [\"Bad/Mirror\", \"a.io/x\"]\n").unwrap();
    insta::assert_snapshot!(env.run(&["config", "run-image-mirrors", "remove", "::bad::", "-m", "Bad/Mirror"]), @r"
    exit: 0
    --- stdout
    Removed mirrors Bad/Mirror for '::bad::'
    --- stderr
    ");
    insta::assert_snapshot!(env.run(&["config", "run-image-mirrors", "remove", "::bad::"]), @r"
    exit: 0
    --- stdout
    Removed all run image mirrors for '::bad::'
    --- stderr
    ");
}

#[test]
fn concurrent_adds_keep_every_mirror() {
    let env = Env::new();
    let children: Vec<_> = (0..8)
        .map(|i| {
            let mut cmd = env.std_cmd();
            cmd.args([
                "config",
                "run-image-mirrors",
                "add",
                "cnbx.test/run:jammy",
                "-m",
                &format!("m{i}.example.com/run"),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
            cmd.spawn().unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let list = env.run(&["config", "run-image-mirrors", "list"]);
    let mirrors: Vec<&str> = list.lines().filter(|l| l.starts_with("    m")).map(str::trim).collect();
    assert_eq!(mirrors, (0..8).map(|i| format!("m{i}.example.com/run")).collect::<Vec<_>>(), "{list}");
}
