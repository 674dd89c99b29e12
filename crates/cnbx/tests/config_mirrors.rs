//! `cnbx config run-image-mirrors`: pack's messages, the file format, and errors.

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
    insta::assert_snapshot!(std::fs::read_to_string(env.home.path().join("config.toml")).unwrap(), @r#"
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
    assert_eq!(std::fs::read_to_string(env.home.path().join("config.toml")).unwrap(), "run-images = []\n");
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
    assert!(!env.home.path().join("config.toml").exists());
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
    std::fs::write(env.home.path().join("config.toml"), "[[run-images]]\nimage = \"a\"\nmirrors = \"not-a-list\"\n")
        .unwrap();
    insta::assert_snapshot!(env.run(&["config", "run-image-mirrors", "list"]), @r#"
    exit: 1
    --- stdout
    --- stderr
    ERROR: invalid config file [HOME]/config.toml at line 3, column 11: invalid type: string "not-a-list", expected a sequence; fix or delete the file
    "#);
    let before = std::fs::read(env.home.path().join("config.toml")).unwrap();
    env.run(&["config", "run-image-mirrors", "add", "a", "-m", "b/c"]);
    assert_eq!(
        std::fs::read(env.home.path().join("config.toml")).unwrap(),
        before,
        "a corrupt config must not be overwritten"
    );
}
