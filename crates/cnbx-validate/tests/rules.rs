//! Every rule with an image that passes and one that breaks it, in config-only and layer mode.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use cnbx_validate::{
    BuildUser, ImageFacts, IndexPlatform, Level, Options, PlatformApi, Role, RootFs, RunImageRef, build_user,
    check_build_image, check_build_os, check_mirror, check_mirrors, check_pair, check_run_image, check_stack_id,
};
use common::{Layer, base_layer, fixes, lines, rootfs, rule};

const BASE_LABELS: [(&str, &str); 5] = [
    ("io.buildpacks.base.maintainer", "CNB team"),
    ("io.buildpacks.base.homepage", "https://example.com"),
    ("io.buildpacks.base.released", "2025-01-31"),
    ("io.buildpacks.base.description", "test image"),
    ("io.buildpacks.base.metadata", "{}"),
];

fn labelled(mut f: ImageFacts) -> ImageFacts {
    for (k, v) in BASE_LABELS {
        f = f.with_label(k, v);
    }
    f.with_label("io.buildpacks.base.distro.name", "ubuntu")
        .with_label("io.buildpacks.base.distro.version", "22.04")
        .with_label("io.buildpacks.stack.id", "io.buildpacks.stacks.jammy")
        .with_label("io.buildpacks.stack.mixins", r#"["curl","build:git"]"#)
}

/// A build image that passes every rule (in layer mode with [`base_layer`]).
fn build_image(user: &str) -> ImageFacts {
    labelled(ImageFacts::new("example/build", "linux", "amd64")).with_user(user).with_env([
        "PATH=/usr/local/bin:/usr/bin:/bin",
        "CNB_USER_ID=1000",
        "CNB_GROUP_ID=1000",
        "CNB_STACK_ID=io.buildpacks.stacks.jammy",
    ])
}

/// A run image that passes every rule (in layer mode with [`run_layer`]).
fn run_image(user: &str) -> ImageFacts {
    labelled(ImageFacts::new("example/run", "linux", "amd64"))
        .with_user(user)
        .with_env(["PATH=/usr/bin:/bin"])
        .with_label("io.buildpacks.rebasable", "true")
        .with_label("io.buildpacks.base.id", "com.example.jammy-run")
        .with_label("io.buildpacks.stack.mixins", r#"["curl","run:tzdata"]"#)
}

/// The run image's layer: `cnb` is uid 1001 there.
fn run_layer() -> Vec<u8> {
    Layer::new()
        .file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\ncnb:x:1001:1000::/home/cnb:/bin/sh\n")
        .file("etc/group", "root:x:0:\ncnb:x:1000:\n")
        .file("usr/lib/os-release", common::OS_RELEASE)
        .symlink("etc/os-release", "../usr/lib/os-release")
        .dir("home/cnb/", 1001, 1000, 0o755)
        .build()
}

fn opts() -> Options {
    Options::default()
}

fn build_check(facts: &ImageFacts, fs: Option<&RootFs>) -> Vec<cnbx_validate::Finding> {
    check_build_image(facts, fs, &opts())
}

// ---------------------------------------------------------------------------------------------
// Clean images

#[test]
fn clean_build_image_in_layer_mode_has_no_findings() {
    let fs = rootfs(&[base_layer()]);
    assert_eq!(lines(&build_check(&build_image("cnb"), Some(&fs))), Vec::<String>::new());
    assert_eq!(lines(&build_check(&build_image("1000:1000"), Some(&fs))), Vec::<String>::new());
}

#[test]
fn clean_build_image_in_config_only_mode_reports_only_what_it_cannot_verify() {
    assert_eq!(
        lines(&build_check(&build_image("1000:1000"), None)),
        [
            "info: build image 'example/build': not verified: whether label 'io.buildpacks.base.distro.name' ('ubuntu') matches ID in os-release: os-release from the image layers is needed (config-only mode; layer mode would decide this) [BOTH-DISTRO-LABELS]",
            "info: build image 'example/build': not verified: whether label 'io.buildpacks.base.distro.version' ('22.04') matches VERSION_ID in os-release: os-release from the image layers is needed (config-only mode; layer mode would decide this) [BOTH-DISTRO-LABELS]",
            "info: build image 'example/build': not verified: whether the home directory of User '1000:1000' exists and is writable: the directory's owner and mode are in the image layers (config-only mode; layer mode would decide this) [BUILD-USER-HOME-WRITABLE]",
        ]
    );
}

#[test]
fn clean_run_image_and_pair_have_no_findings() {
    let fs = rootfs(&[run_layer()]);
    let bfs = rootfs(&[base_layer()]);
    assert_eq!(lines(&check_run_image(&run_image("cnb"), Some(&fs), &opts())), Vec::<String>::new());
    let pair = check_pair((&build_image("cnb"), Some(&bfs)), (&run_image("cnb"), Some(&fs)), &opts());
    assert_eq!(lines(&pair), Vec::<String>::new());
    assert_eq!(lines(&check_run_image(&run_image("1001:1000"), None, &opts())).len(), 2, "only the distro infos");
}

// ---------------------------------------------------------------------------------------------
// BUILD-USER-NONROOT

#[test]
fn nonroot_breaks_on_empty_zero_and_root() {
    let r = |user: &str| rule(&build_check(&build_image(user), None), "BUILD-USER-NONROOT");
    assert_eq!(
        r(""),
        ["error: build image 'example/build': User is not set, so the build runs as root [BUILD-USER-NONROOT]"]
    );
    assert_eq!(r("0"), ["error: build image 'example/build': User '0' is root (uid 0) [BUILD-USER-NONROOT]"]);
    assert_eq!(
        r("root:root"),
        ["error: build image 'example/build': User 'root:root' is root (uid 0) [BUILD-USER-NONROOT]"]
    );
    assert_eq!(r("1000"), Vec::<String>::new());
    assert_eq!(
        fixes(&build_check(&build_image(""), None), "BUILD-USER-NONROOT"),
        ["set USER in the build image to a non-root user, e.g. USER 1000:1000 (created in /etc/passwd)"]
    );
}

#[test]
fn nonroot_name_is_not_verified_in_config_only_mode() {
    let f = build_check(&build_image("cnb"), None);
    assert_eq!(
        rule(&f, "BUILD-USER-NONROOT"),
        [
            "info: build image 'example/build': not verified: whether User 'cnb' is root: /etc/passwd from the image layers is needed (config-only mode; layer mode would decide this) [BUILD-USER-NONROOT]"
        ]
    );
    assert_eq!(f.iter().filter(|f| f.level == Level::Error).count(), 0);
}

#[test]
fn nonroot_name_in_layer_mode() {
    let toor = Layer::new().file("etc/passwd", "toor:x:0:0::/root:/bin/sh\n").build();
    let fs = rootfs(&[base_layer(), toor]);
    assert_eq!(
        rule(&build_check(&build_image("toor"), Some(&fs)), "BUILD-USER-NONROOT"),
        [
            "error: build image 'example/build': User 'toor' resolves to uid 0 (root) in /etc/passwd [BUILD-USER-NONROOT]"
        ]
    );
    let fs = rootfs(&[base_layer()]);
    assert_eq!(
        rule(&build_check(&build_image("nobody"), Some(&fs)), "BUILD-USER-NONROOT"),
        [
            "error: build image 'example/build': User 'nobody' cannot be resolved: /etc/passwd has no entry named 'nobody', so containers cannot start as this user [BUILD-USER-NONROOT]"
        ]
    );
    assert_eq!(rule(&build_check(&build_image("cnb"), Some(&fs)), "BUILD-USER-NONROOT"), Vec::<String>::new());
}

#[test]
fn passwd_whited_out_in_upper_layer() {
    let fs = rootfs(&[base_layer(), Layer::new().whiteout("etc", "passwd").build()]);
    assert_eq!(
        rule(&build_check(&build_image("cnb"), Some(&fs)), "BUILD-USER-NONROOT"),
        [
            "error: build image 'example/build': User 'cnb' cannot be resolved: the image has no /etc/passwd, so containers cannot start as this user [BUILD-USER-NONROOT]"
        ]
    );
}

#[test]
fn passwd_overridden_in_upper_layer_changes_the_uid() {
    let upper = Layer::new().file("etc/passwd", "cnb:x:1001:1000::/home/cnb:/bin/sh\n").build();
    let fs = rootfs(&[base_layer(), upper]);
    let f = build_check(&build_image("cnb"), Some(&fs));
    assert_eq!(
        rule(&f, "BUILD-ENV-CNB_USER_ID"),
        [
            "error: build image 'example/build': CNB_USER_ID (1000) does not match the uid of User 'cnb' (1001) [BUILD-ENV-CNB_USER_ID]"
        ]
    );
    assert_eq!(fixes(&f, "BUILD-ENV-CNB_USER_ID"), ["set ENV CNB_USER_ID=1001 in the build image, or change USER"]);
}

#[test]
fn nonroot_windows_heuristic() {
    let win = |user: &str| {
        let f = ImageFacts { os: "windows".into(), ..build_image(user) };
        rule(&build_check(&f, None), "BUILD-USER-NONROOT")
    };
    assert_eq!(
        win("ContainerAdministrator"),
        [
            "warning: build image 'example/build': User is ContainerAdministrator, the administrator account [BUILD-USER-NONROOT]"
        ]
    );
    assert_eq!(
        win(""),
        [
            "warning: build image 'example/build': User is not set, so the image's default account (often ContainerAdministrator) is used [BUILD-USER-NONROOT]"
        ]
    );
    assert_eq!(win("ContainerUser"), Vec::<String>::new());
}

// ---------------------------------------------------------------------------------------------
// BUILD-USER-HOME-WRITABLE

fn home_findings(layers: &[Vec<u8>], facts: &ImageFacts) -> Vec<String> {
    let fs = rootfs(layers);
    rule(&build_check(facts, Some(&fs)), "BUILD-USER-HOME-WRITABLE")
}

fn with_home(uid: u64, gid: u64, mode: u32) -> Vec<u8> {
    Layer::new().dir("home/cnb/", uid, gid, mode).build()
}

#[test]
fn home_owned_by_another_uid_with_0755_is_not_writable() {
    assert_eq!(
        home_findings(&[base_layer(), with_home(0, 0, 0o755)], &build_image("cnb")),
        [
            "error: build image 'example/build': home directory '/home/cnb' (from /etc/passwd) is owned by 0:0 with mode 0755, so uid 1000 (gid 1000) cannot write to it [BUILD-USER-HOME-WRITABLE]"
        ]
    );
    let fs = rootfs(&[base_layer(), with_home(0, 0, 0o755)]);
    assert_eq!(
        fixes(&build_check(&build_image("cnb"), Some(&fs)), "BUILD-USER-HOME-WRITABLE"),
        ["chown 1000:1000 /home/cnb in the build image (or make it writable for the user's group)"]
    );
}

#[test]
fn home_group_writable_with_matching_gid_or_world_writable_passes() {
    assert_eq!(home_findings(&[base_layer(), with_home(0, 1000, 0o775)], &build_image("cnb")), Vec::<String>::new());
    assert_eq!(home_findings(&[base_layer(), with_home(0, 0, 0o777)], &build_image("cnb")), Vec::<String>::new());
    assert_eq!(home_findings(&[base_layer(), with_home(1000, 0, 0o700)], &build_image("cnb")), Vec::<String>::new());
}

#[test]
fn home_group_writable_with_another_gid_fails() {
    assert_eq!(
        home_findings(&[base_layer(), with_home(0, 50, 0o775)], &build_image("cnb")),
        [
            "error: build image 'example/build': home directory '/home/cnb' (from /etc/passwd) is owned by 0:50 with mode 0775, so uid 1000 (gid 1000) cannot write to it [BUILD-USER-HOME-WRITABLE]"
        ]
    );
}

#[test]
fn home_missing() {
    let gone = Layer::new().whiteout("home", "cnb").build();
    assert_eq!(
        home_findings(&[base_layer(), gone], &build_image("cnb")),
        [
            "error: build image 'example/build': home directory '/home/cnb' (from /etc/passwd) does not exist in the image (or is not a directory) [BUILD-USER-HOME-WRITABLE]"
        ]
    );
    let fs = rootfs(&[base_layer(), Layer::new().whiteout("home", "cnb").build()]);
    assert_eq!(
        fixes(&build_check(&build_image("cnb"), Some(&fs)), "BUILD-USER-HOME-WRITABLE"),
        [
            "create /home/cnb in the build image owned by 1000:1000 (e.g. RUN mkdir -p /home/cnb && chown 1000:1000 /home/cnb)"
        ]
    );
}

#[test]
fn opaque_home_removes_the_users_home() {
    let upper = Layer::new().dir("home/", 0, 0, 0o755).opaque("home").build();
    assert_eq!(
        home_findings(&[base_layer(), upper], &build_image("cnb")),
        [
            "error: build image 'example/build': home directory '/home/cnb' (from /etc/passwd) does not exist in the image (or is not a directory) [BUILD-USER-HOME-WRITABLE]"
        ]
    );
}

#[test]
fn home_from_env_overrides_passwd() {
    let workspace = Layer::new().dir("workspace/", 1000, 1000, 0o755).dir("ro/", 0, 0, 0o755).build();
    let layers = [base_layer(), with_home(0, 0, 0o755), workspace];
    let facts = build_image("cnb").with_env(["HOME=/workspace"]);
    assert_eq!(home_findings(&layers, &facts), Vec::<String>::new());
    let facts = build_image("cnb").with_env(["HOME=/ro"]);
    assert_eq!(
        home_findings(&layers, &facts),
        [
            "error: build image 'example/build': home directory '/ro' (from HOME in Env) is owned by 0:0 with mode 0755, so uid 1000 (gid 1000) cannot write to it [BUILD-USER-HOME-WRITABLE]"
        ]
    );
}

#[test]
fn home_through_symlinked_home_directory() {
    let layer = |mode| {
        Layer::new()
            .file("etc/passwd", common::PASSWD)
            .dir("var/home/", 0, 0, 0o755)
            .dir("var/home/cnb/", 0, 1000, mode)
            .symlink("home", "/var/home")
            .build()
    };
    assert_eq!(home_findings(&[layer(0o770)], &build_image("cnb")), Vec::<String>::new());
    assert_eq!(
        home_findings(&[layer(0o750)], &build_image("cnb")),
        [
            "error: build image 'example/build': home directory '/home/cnb' (from /etc/passwd, which resolves to '/var/home/cnb') is owned by 0:1000 with mode 0750, so uid 1000 (gid 1000) cannot write to it [BUILD-USER-HOME-WRITABLE]"
        ]
    );
}

#[test]
fn home_symlink_loop() {
    let upper = Layer::new().whiteout("", "home").symlink("home", "home2").symlink("home2", "/home").build();
    assert_eq!(
        home_findings(&[base_layer(), upper], &build_image("cnb")),
        [
            "error: build image 'example/build': home directory '/home/cnb' (from /etc/passwd) cannot be resolved: too many levels of symbolic links resolving '/home/cnb' [BUILD-USER-HOME-WRITABLE]"
        ]
    );
}

#[test]
fn implicit_home_directory_gets_runtime_defaults() {
    let layer = Layer::new().file("etc/passwd", common::PASSWD).file("home/cnb/.bashrc", "").build();
    assert_eq!(
        home_findings(&[layer], &build_image("cnb")),
        [
            "error: build image 'example/build': home directory '/home/cnb' (from /etc/passwd) is owned by 0:0 with mode 0755 (no layer lists it, so it gets runtime defaults), so uid 1000 (gid 1000) cannot write to it [BUILD-USER-HOME-WRITABLE]"
        ]
    );
}

#[test]
fn numeric_uid_without_passwd_entry_has_no_home() {
    let facts = build_image("2000:2000").with_env(["CNB_USER_ID=2000", "CNB_GROUP_ID=2000"]);
    assert_eq!(
        home_findings(&[base_layer()], &facts),
        [
            "error: build image 'example/build': User '2000:2000' has no usable home directory: uid 2000 has no /etc/passwd entry, so HOME falls back to '/' [BUILD-USER-HOME-WRITABLE]"
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// BUILD-ENV-CNB_USER_ID / BUILD-ENV-CNB_GROUP_ID

fn env_image(user: &str, env: &[&str]) -> ImageFacts {
    ImageFacts { env: Vec::new(), ..build_image(user) }.with_env(["PATH=/bin"]).with_env(env.iter().copied())
}

#[test]
fn cnb_ids_missing_use_packs_message() {
    let f = build_check(&env_image("1000:1000", &[]), None);
    assert_eq!(
        rule(&f, "BUILD-ENV-CNB_USER_ID"),
        [
            "error: build image 'example/build': image 'example/build' missing required env var 'CNB_USER_ID' [BUILD-ENV-CNB_USER_ID]"
        ]
    );
    assert_eq!(fixes(&f, "BUILD-ENV-CNB_USER_ID"), ["add ENV CNB_USER_ID=1000 to the build image"]);
    assert_eq!(
        rule(&f, "BUILD-ENV-CNB_GROUP_ID"),
        [
            "error: build image 'example/build': image 'example/build' missing required env var 'CNB_GROUP_ID' [BUILD-ENV-CNB_GROUP_ID]"
        ]
    );
}

#[test]
fn cnb_ids_must_be_integers() {
    let f = build_check(&env_image("1000:1000", &["CNB_USER_ID=x", "CNB_GROUP_ID=-1"]), None);
    assert_eq!(
        rule(&f, "BUILD-ENV-CNB_USER_ID"),
        [
            "error: build image 'example/build': failed to parse 'CNB_USER_ID', value 'x' should be an integer [BUILD-ENV-CNB_USER_ID]"
        ]
    );
    assert_eq!(
        rule(&f, "BUILD-ENV-CNB_GROUP_ID"),
        [
            "error: build image 'example/build': CNB_GROUP_ID value '-1' is not a valid gid (expected a decimal number from 0 to 4294967295) [BUILD-ENV-CNB_GROUP_ID]"
        ]
    );
    let f = build_check(&env_image("1000:1000", &["CNB_USER_ID=", "CNB_GROUP_ID=1000"]), None);
    assert_eq!(
        rule(&f, "BUILD-ENV-CNB_USER_ID"),
        [
            "error: build image 'example/build': failed to parse 'CNB_USER_ID', value '' should be an integer [BUILD-ENV-CNB_USER_ID]"
        ]
    );
}

/// pack and the lifecycle read the ids with Go's `strconv.Atoi`, which takes a sign.
#[test]
fn cnb_ids_are_read_as_go_reads_them() {
    let image = env_image("1000:1000", &["CNB_USER_ID=+1000", "CNB_GROUP_ID=01000"]);
    let f = build_check(&image, None);
    assert_eq!(rule(&f, "BUILD-ENV-CNB_USER_ID"), Vec::<String>::new());
    assert_eq!(rule(&f, "BUILD-ENV-CNB_GROUP_ID"), Vec::<String>::new());
    assert_eq!(build_user(&image, None).map(|u| (u.uid, u.gid)), Ok((1000, 1000)));
    let f = build_check(&env_image("1000:1000", &["CNB_USER_ID=+4294967296", "CNB_GROUP_ID=1000"]), None);
    assert_eq!(rule(&f, "BUILD-ENV-CNB_USER_ID")[0].split(':').next(), Some("error"));
}

#[test]
fn cnb_user_id_against_numeric_user() {
    let f = build_check(&env_image("1001:1000", &["CNB_USER_ID=1000", "CNB_GROUP_ID=1000"]), None);
    assert_eq!(
        rule(&f, "BUILD-ENV-CNB_USER_ID"),
        [
            "error: build image 'example/build': CNB_USER_ID (1000) does not match the uid of User '1001:1000' (1001) [BUILD-ENV-CNB_USER_ID]"
        ]
    );
    let f = build_check(&env_image("1000:1000", &["CNB_USER_ID=1000", "CNB_GROUP_ID=1000"]), None);
    assert_eq!(rule(&f, "BUILD-ENV-CNB_USER_ID"), Vec::<String>::new());
    assert_eq!(rule(&f, "BUILD-ENV-CNB_GROUP_ID"), Vec::<String>::new());
}

#[test]
fn cnb_user_id_against_name_in_layer_mode() {
    let fs = rootfs(&[base_layer()]);
    let f = check_build_image(&env_image("cnb", &["CNB_USER_ID=1001", "CNB_GROUP_ID=1000"]), Some(&fs), &opts());
    let e = f.iter().find(|f| f.rule == "BUILD-ENV-CNB_USER_ID").unwrap();
    assert_eq!(
        e.to_string(),
        "build image 'example/build': CNB_USER_ID (1001) does not match the uid of User 'cnb' (1000) [BUILD-ENV-CNB_USER_ID]"
    );
    assert_eq!(e.fix(), "set ENV CNB_USER_ID=1000 in the build image, or change USER");
}

#[test]
fn cnb_ids_against_name_in_config_only_mode_are_not_verified() {
    let f = build_check(&build_image("cnb"), None);
    assert_eq!(
        rule(&f, "BUILD-ENV-CNB_USER_ID"),
        [
            "info: build image 'example/build': not verified: whether CNB_USER_ID (1000) is the uid of User 'cnb': /etc/passwd from the image layers is needed (config-only mode; layer mode would decide this) [BUILD-ENV-CNB_USER_ID]"
        ]
    );
    assert_eq!(
        rule(&f, "BUILD-ENV-CNB_GROUP_ID"),
        [
            "info: build image 'example/build': not verified: whether CNB_GROUP_ID (1000) is the gid of User 'cnb': /etc/passwd from the image layers is needed (config-only mode; layer mode would decide this) [BUILD-ENV-CNB_GROUP_ID]"
        ]
    );
    // A numeric uid without a group part: the primary group is in passwd.
    let f = build_check(&build_image("1000"), None);
    assert_eq!(rule(&f, "BUILD-ENV-CNB_GROUP_ID").len(), 1);
    assert!(rule(&f, "BUILD-ENV-CNB_GROUP_ID")[0].starts_with("info: "));
}

#[test]
fn cnb_group_id_against_explicit_group() {
    let f = build_check(&env_image("1000:50", &["CNB_USER_ID=1000", "CNB_GROUP_ID=1000"]), None);
    assert_eq!(
        rule(&f, "BUILD-ENV-CNB_GROUP_ID"),
        [
            "error: build image 'example/build': CNB_GROUP_ID (1000) does not match the group of User '1000:50' (50) [BUILD-ENV-CNB_GROUP_ID]"
        ]
    );
    assert_eq!(
        fixes(&f, "BUILD-ENV-CNB_GROUP_ID"),
        ["set ENV CNB_GROUP_ID=50 in the build image, or change the group in USER"]
    );
}

#[test]
fn cnb_group_id_against_group_name_and_passwd_in_layer_mode() {
    let fs = rootfs(&[base_layer()]);
    let check = |user: &str, gid: &str| {
        let env = ["CNB_USER_ID=1000".to_owned(), format!("CNB_GROUP_ID={gid}")];
        let facts = env_image(user, &env.iter().map(String::as_str).collect::<Vec<_>>());
        rule(&check_build_image(&facts, Some(&fs), &opts()), "BUILD-ENV-CNB_GROUP_ID")
    };
    assert_eq!(check("cnb:staff", "50"), Vec::<String>::new());
    assert_eq!(
        check("cnb:staff", "1000"),
        [
            "error: build image 'example/build': CNB_GROUP_ID (1000) does not match the group of User 'cnb:staff' (50) [BUILD-ENV-CNB_GROUP_ID]"
        ]
    );
    assert_eq!(
        check("cnb", "50"),
        [
            "error: build image 'example/build': CNB_GROUP_ID (50) does not match the primary gid of User 'cnb' (1000, from /etc/passwd) [BUILD-ENV-CNB_GROUP_ID]"
        ]
    );
    assert_eq!(
        check("cnb:nogroup", "1000"),
        [
            "error: build image 'example/build': the group of User 'cnb:nogroup' cannot be resolved: /etc/group has no entry named 'nogroup' [BUILD-ENV-CNB_GROUP_ID]"
        ]
    );
    assert_eq!(check("1000", "1000"), Vec::<String>::new());
}

#[test]
fn cnb_group_id_for_uid_without_passwd_entry() {
    let fs = rootfs(&[base_layer()]);
    let facts = env_image("2000", &["CNB_USER_ID=2000", "CNB_GROUP_ID=2000"]);
    let f = check_build_image(&facts, Some(&fs), &opts());
    assert_eq!(
        rule(&f, "BUILD-ENV-CNB_GROUP_ID"),
        [
            "error: build image 'example/build': CNB_GROUP_ID (2000) does not match the gid of User '2000' (0: uid 2000 has no /etc/passwd entry, so the runtime uses gid 0) [BUILD-ENV-CNB_GROUP_ID]"
        ]
    );
    assert_eq!(
        fixes(&f, "BUILD-ENV-CNB_GROUP_ID"),
        ["set USER 2000:2000 in the build image, or add an /etc/passwd entry for uid 2000 with gid 2000"]
    );
}

#[test]
fn cnb_ids_on_windows_are_only_checked_for_presence() {
    let facts = ImageFacts { os: "windows".into(), ..build_image("ContainerUser") };
    let f = build_check(&facts, None);
    assert_eq!(
        rule(&f, "BUILD-ENV-CNB_USER_ID"),
        [
            "info: build image 'example/build': not verified: whether CNB_USER_ID (1000) is the SID of User 'ContainerUser': Windows account names cannot be mapped to SIDs from the image [BUILD-ENV-CNB_USER_ID]"
        ]
    );
    let facts = ImageFacts { os: "windows".into(), ..env_image("ContainerUser", &["CNB_GROUP_ID=1"]) };
    assert_eq!(
        rule(&build_check(&facts, None), "BUILD-ENV-CNB_USER_ID"),
        [
            "error: build image 'example/build': image 'example/build' missing required env var 'CNB_USER_ID' [BUILD-ENV-CNB_USER_ID]"
        ]
    );
}

#[test]
fn build_user_for_the_builder() {
    let fs = rootfs(&[base_layer()]);
    assert_eq!(
        build_user(&build_image("cnb"), Some(&fs)),
        Ok(BuildUser { uid: 1000, gid: 1000, home: Some("/home/cnb".into()) })
    );
    assert_eq!(build_user(&build_image("cnb"), None), Ok(BuildUser { uid: 1000, gid: 1000, home: None }));
    let err = build_user(&env_image("1000", &["CNB_USER_ID=1000", "CNB_GROUP_ID=g"]), None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "build image 'example/build': failed to parse 'CNB_GROUP_ID', value 'g' should be an integer [BUILD-ENV-CNB_GROUP_ID]"
    );
    assert_eq!(err.level, Level::Error);
}

// ---------------------------------------------------------------------------------------------
// BUILD-ENV-PATH / RUN-ENV-PATH, BOTH-ENV-DUPLICATE, BOTH-ENV-SYNTAX

#[test]
fn path_rules() {
    let no_path = env_image("1000:1000", &["CNB_USER_ID=1000", "CNB_GROUP_ID=1000"]);
    let no_path = ImageFacts { env: no_path.env.into_iter().filter(|e| !e.starts_with("PATH=")).collect(), ..no_path };
    let f = build_check(&no_path, None);
    assert_eq!(
        rule(&f, "BUILD-ENV-PATH"),
        [
            "error: build image 'example/build': PATH is not set in Env (runtimes add a default PATH only when a container starts, not to the image config) [BUILD-ENV-PATH]"
        ]
    );
    assert_eq!(
        fixes(&f, "BUILD-ENV-PATH"),
        [
            "add ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin to the build image (or PATH= to make it explicitly empty)"
        ]
    );
    let empty = no_path.clone().with_env(["PATH="]);
    assert_eq!(rule(&build_check(&empty, None), "BUILD-ENV-PATH"), Vec::<String>::new());
    let relative = no_path.with_env(["PATH=/usr/bin:bin::/bin"]);
    assert_eq!(
        rule(&build_check(&relative, None), "BUILD-ENV-PATH"),
        [
            "warning: build image 'example/build': PATH has elements that are not absolute directories: 'bin', '' [BUILD-ENV-PATH]"
        ]
    );

    let run = ImageFacts { env: vec![], ..run_image("1001") };
    assert_eq!(
        rule(&check_run_image(&run, None, &opts()), "RUN-ENV-PATH"),
        [
            "error: run image 'example/run': PATH is not set in Env (runtimes add a default PATH only when a container starts, not to the image config) [RUN-ENV-PATH]"
        ]
    );
    assert_eq!(rule(&check_run_image(&run_image("1001"), None, &opts()), "RUN-ENV-PATH"), Vec::<String>::new());

    let win = ImageFacts {
        os: "windows".into(),
        env: vec![r"PATH=C:\Windows\system32;C:\Windows".into()],
        ..run_image("ContainerUser")
    };
    assert_eq!(rule(&check_run_image(&win, None, &opts()), "RUN-ENV-PATH"), Vec::<String>::new());
    let win = ImageFacts { env: vec![r"PATH=C:\Windows;tools".into()], ..win };
    assert_eq!(
        rule(&check_run_image(&win, None, &opts()), "RUN-ENV-PATH"),
        [
            "warning: run image 'example/run': PATH has elements that are not absolute directories: 'tools' [RUN-ENV-PATH]"
        ]
    );
}

#[test]
fn env_duplicates_and_syntax() {
    let facts = build_image("1000:1000").with_env(["PATH=/bin", "JAVA_HOME", "PATH=/usr/bin"]);
    let f = build_check(&facts, None);
    assert_eq!(
        rule(&f, "BOTH-ENV-DUPLICATE"),
        [
            "warning: build image 'example/build': Env sets 'PATH' more than once (the last value wins) [BOTH-ENV-DUPLICATE]"
        ]
    );
    assert_eq!(
        rule(&f, "BOTH-ENV-SYNTAX"),
        [
            "warning: build image 'example/build': Env has entries that are not KEY=VALUE and are ignored: 'JAVA_HOME' [BOTH-ENV-SYNTAX]"
        ]
    );
    let f = build_check(&build_image("1000:1000"), None);
    assert_eq!(rule(&f, "BOTH-ENV-DUPLICATE"), Vec::<String>::new());
    assert_eq!(rule(&f, "BOTH-ENV-SYNTAX"), Vec::<String>::new());
}

// ---------------------------------------------------------------------------------------------
// *-LABEL-BASE-*

#[test]
fn base_labels() {
    let mut facts = build_image("1000:1000");
    facts.labels.retain(|k, _| !k.starts_with("io.buildpacks.base."));
    facts = facts
        .with_label("io.buildpacks.stack.maintainer", "legacy team")
        .with_label("io.buildpacks.base.homepage", " ");
    let f = build_check(&facts, None);
    let base: Vec<String> = lines(&f).into_iter().filter(|l| l.contains("-LABEL-BASE-")).collect();
    assert_eq!(
        base,
        [
            "warning: build image 'example/build': label 'io.buildpacks.base.description' is not set [BUILD-LABEL-BASE-DESCRIPTION]",
            "warning: build image 'example/build': label 'io.buildpacks.base.homepage' is empty [BUILD-LABEL-BASE-HOMEPAGE]",
            "warning: build image 'example/build': label 'io.buildpacks.base.maintainer' is not set (only the legacy 'io.buildpacks.stack.maintainer' is) [BUILD-LABEL-BASE-MAINTAINER]",
            "warning: build image 'example/build': label 'io.buildpacks.base.metadata' is not set [BUILD-LABEL-BASE-METADATA]",
            "warning: build image 'example/build': label 'io.buildpacks.base.released' is not set [BUILD-LABEL-BASE-RELEASED]",
        ]
    );
    assert_eq!(
        fixes(&f, "BUILD-LABEL-BASE-MAINTAINER"),
        ["copy the value of io.buildpacks.stack.maintainer to LABEL io.buildpacks.base.maintainer in the build image"]
    );
    assert_eq!(
        fixes(&f, "BUILD-LABEL-BASE-RELEASED"),
        ["add LABEL io.buildpacks.base.released=<release date, e.g. 2025-01-31> to the build image"]
    );

    let mut run = run_image("1001");
    run.labels.remove("io.buildpacks.base.metadata");
    assert_eq!(
        rule(&check_run_image(&run, None, &opts()), "RUN-LABEL-BASE-METADATA"),
        ["warning: run image 'example/run': label 'io.buildpacks.base.metadata' is not set [RUN-LABEL-BASE-METADATA]"]
    );
    assert_eq!(rule(&check_run_image(&run, None, &opts()), "RUN-LABEL-BASE-MAINTAINER"), Vec::<String>::new());
}

// ---------------------------------------------------------------------------------------------
// BUILD-OS-SUPPORTED, BOTH-OS-ARCH-VALID, BOTH-VARIANT-VALID

#[test]
fn build_os_must_be_one_pack_supports() {
    let darwin = ImageFacts { os: "darwin".into(), ..build_image("1000:1000") };
    let f = build_check(&darwin, None);
    assert_eq!(
        rule(&f, "BUILD-OS-SUPPORTED"),
        [
            "error: build image 'example/build': provided image OS 'darwin' must be either 'freebsd', 'linux' or 'windows' [BUILD-OS-SUPPORTED]"
        ]
    );
    assert_eq!(rule(&f, "BOTH-OS-ARCH-VALID"), Vec::<String>::new());
    let freebsd = ImageFacts { os: "freebsd".into(), ..build_image("1000:1000") };
    assert_eq!(rule(&build_check(&freebsd, None), "BUILD-OS-SUPPORTED"), Vec::<String>::new());
}

/// The check `builder create` makes before anything else gives pack's sentence with the rule
/// id and a fix, for an empty OS too (which the rule table's check leaves to
/// BOTH-OS-ARCH-VALID).
#[test]
fn packs_os_check_names_the_rule_and_the_fix() {
    let line = |f: &cnbx_validate::Finding| format!("{}: {f}\nfix: {}", f.level, f.fix);
    let empty = ImageFacts { os: String::new(), ..build_image("1000:1000") };
    assert_eq!(
        check_build_os(&empty).map(|f| line(&f)).as_deref(),
        Some(
            "error: build image 'example/build': provided image OS '' must be either 'freebsd', 'linux' or 'windows' \
             [BUILD-OS-SUPPORTED]\nfix: rebuild the build image with a tool that sets os in its config (linux for a \
             Linux image)"
        )
    );
    assert_eq!(rule(&build_check(&empty, None), "BUILD-OS-SUPPORTED"), Vec::<String>::new());
    let darwin = ImageFacts { os: "darwin".into(), ..build_image("1000:1000") };
    assert_eq!(
        check_build_os(&darwin).map(|f| line(&f)).as_deref(),
        Some(
            "error: build image 'example/build': provided image OS 'darwin' must be either 'freebsd', 'linux' or \
             'windows' [BUILD-OS-SUPPORTED]\nfix: use a linux, windows or freebsd build image"
        )
    );
    for os in ["linux", "freebsd", "windows"] {
        assert_eq!(check_build_os(&ImageFacts { os: os.into(), ..build_image("1000:1000") }), None, "{os}");
    }
}

/// pack's check of each image's stack label against [stack].id, as create makes it first.
#[test]
fn packs_stack_id_check_names_the_rule_and_the_fix() {
    let build = build_image("1000:1000");
    let f = check_stack_id(Role::Build, &build, "io.buildpacks.stacks.bionic").unwrap();
    assert_eq!(
        (f.level, f.rule, f.to_string(), f.fix.as_str()),
        (
            Level::Error,
            "LEGACY-PAIR-STACK-ID",
            "build image 'example/build': stack 'io.buildpacks.stacks.bionic' from builder config is incompatible \
             with stack 'io.buildpacks.stacks.jammy' from build image [LEGACY-PAIR-STACK-ID]"
                .to_owned(),
            "set [stack].id = \"io.buildpacks.stacks.jammy\" in builder.toml, or use a build image whose \
             io.buildpacks.stack.id is 'io.buildpacks.stacks.bionic'"
        )
    );
    let mut mirror = ImageFacts { name: "mirror.example/run".into(), ..run_image("1001") };
    mirror.labels.remove("io.buildpacks.stack.id");
    let f = check_stack_id(Role::Mirror, &mirror, "io.buildpacks.stacks.jammy").unwrap();
    assert_eq!(
        f.to_string(),
        "run image mirror 'mirror.example/run': stack 'io.buildpacks.stacks.jammy' from builder config is \
         incompatible with stack '' from run image 'mirror.example/run' [LEGACY-PAIR-STACK-ID]"
    );
    assert!(f.fix.starts_with("use a run image mirror labelled io.buildpacks.stack.id=io.buildpacks.stacks.jammy"));
    assert_eq!(check_stack_id(Role::Run, &run_image("1001"), "io.buildpacks.stacks.jammy"), None);
    assert_eq!(check_stack_id(Role::Build, &build, ""), None, "no [stack].id, no check");
}

#[test]
fn os_arch_valid() {
    let empty = ImageFacts { os: String::new(), architecture: "amd64x".into(), ..run_image("1001") };
    assert_eq!(
        rule(&check_run_image(&empty, None, &opts()), "BOTH-OS-ARCH-VALID"),
        [
            "warning: run image 'example/run': architecture 'amd64x' is not a known Go GOARCH value [BOTH-OS-ARCH-VALID]",
            "error: run image 'example/run': os is not set in the image config [BOTH-OS-ARCH-VALID]",
        ]
    );
    let odd = ImageFacts { os: "linuxx".into(), architecture: String::new(), ..build_image("1000:1000") };
    assert_eq!(
        rule(&build_check(&odd, None), "BOTH-OS-ARCH-VALID"),
        [
            "error: build image 'example/build': architecture is not set in the image config [BOTH-OS-ARCH-VALID]",
            "warning: build image 'example/build': os 'linuxx' is not a known Go GOOS value [BOTH-OS-ARCH-VALID]",
        ]
    );
    assert_eq!(rule(&build_check(&build_image("1000:1000"), None), "BOTH-OS-ARCH-VALID"), Vec::<String>::new());
}

#[test]
fn index_entry_cross_check() {
    let facts = build_image("1000:1000").with_index_platform(IndexPlatform::new("linux", "arm64", Some("v8")));
    assert_eq!(
        rule(&build_check(&facts, None), "BOTH-OS-ARCH-VALID"),
        [
            "warning: build image 'example/build': the index entry's platform linux/arm64/v8 differs from the image config's linux/amd64 [BOTH-OS-ARCH-VALID]"
        ]
    );
    let facts = build_image("1000:1000").with_index_platform(IndexPlatform::new("linux", "amd64", Some("")));
    assert_eq!(rule(&build_check(&facts, None), "BOTH-OS-ARCH-VALID"), Vec::<String>::new());
}

#[test]
fn variant_valid() {
    let arm = |v: &str| {
        let f = ImageFacts { architecture: "arm".into(), ..build_image("1000:1000") }.with_variant(v);
        rule(&build_check(&f, None), "BOTH-VARIANT-VALID")
    };
    assert_eq!(arm("v7"), Vec::<String>::new());
    assert_eq!(arm(""), Vec::<String>::new());
    assert_eq!(
        arm("v9"),
        [
            "warning: build image 'example/build': variant 'v9' is not a known variant of architecture 'arm' [BOTH-VARIANT-VALID]"
        ]
    );
    let s390 = ImageFacts { architecture: "s390x".into(), ..run_image("1001") }.with_variant("z15");
    assert_eq!(
        rule(&check_run_image(&s390, None, &opts()), "BOTH-VARIANT-VALID"),
        [
            "warning: run image 'example/run': variant 'z15' is set, but architecture 's390x' has no known variants [BOTH-VARIANT-VALID]"
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// BOTH-DISTRO-LABELS

#[test]
fn distro_labels_missing_in_config_only_mode() {
    let mut facts = run_image("1001");
    facts.labels.remove("io.buildpacks.base.distro.name");
    facts.labels.remove("io.buildpacks.base.distro.version");
    let f = check_run_image(&facts, None, &opts());
    assert_eq!(
        rule(&f, "BOTH-DISTRO-LABELS"),
        [
            "warning: run image 'example/run': label 'io.buildpacks.base.distro.name' is not set [BOTH-DISTRO-LABELS]",
            "warning: run image 'example/run': label 'io.buildpacks.base.distro.version' is not set [BOTH-DISTRO-LABELS]",
        ]
    );
    assert_eq!(
        fixes(&f, "BOTH-DISTRO-LABELS")[0],
        "add LABEL io.buildpacks.base.distro.name=<ID from /etc/os-release> to the run image"
    );
    // Layer mode knows the value to suggest.
    let fs = rootfs(&[run_layer()]);
    assert_eq!(
        fixes(&check_run_image(&facts, Some(&fs), &opts()), "BOTH-DISTRO-LABELS"),
        [
            "add LABEL io.buildpacks.base.distro.name=ubuntu (ID in /usr/lib/os-release) to the run image",
            "add LABEL io.buildpacks.base.distro.version=22.04 (VERSION_ID in /usr/lib/os-release) to the run image",
        ]
    );
}

#[test]
fn distro_labels_compared_with_os_release_in_layer_mode() {
    let facts = build_image("cnb").with_label("io.buildpacks.base.distro.version", "24.04");
    let fs = rootfs(&[base_layer()]);
    let f = check_build_image(&facts, Some(&fs), &opts());
    assert_eq!(
        rule(&f, "BOTH-DISTRO-LABELS"),
        [
            "warning: build image 'example/build': label 'io.buildpacks.base.distro.version' is '24.04', but /usr/lib/os-release has VERSION_ID=22.04 [BOTH-DISTRO-LABELS]"
        ]
    );
    // /etc/os-release as a regular file in an upper layer wins over the symlink.
    let upper = Layer::new().file("etc/os-release", "ID='ubuntu'\nVERSION_ID=24.04\n").build();
    let fs = rootfs(&[base_layer(), upper]);
    assert_eq!(rule(&check_build_image(&facts, Some(&fs), &opts()), "BOTH-DISTRO-LABELS"), Vec::<String>::new());
}

#[test]
fn distro_labels_without_os_release() {
    let fs = rootfs(&[Layer::new().file("etc/passwd", common::PASSWD).dir("home/cnb/", 1000, 1000, 0o755).build()]);
    let f = check_build_image(&build_image("cnb"), Some(&fs), &opts());
    assert_eq!(
        rule(&f, "BOTH-DISTRO-LABELS"),
        [
            "info: build image 'example/build': not verified: whether label 'io.buildpacks.base.distro.name' ('ubuntu') matches ID in os-release: the image has neither /etc/os-release nor /usr/lib/os-release [BOTH-DISTRO-LABELS]",
            "info: build image 'example/build': not verified: whether label 'io.buildpacks.base.distro.version' ('22.04') matches VERSION_ID in os-release: the image has neither /etc/os-release nor /usr/lib/os-release [BOTH-DISTRO-LABELS]",
        ]
    );
    let mut facts = build_image("cnb");
    facts.labels.remove("io.buildpacks.base.distro.name");
    assert_eq!(
        rule(&check_build_image(&facts, Some(&fs), &opts()), "BOTH-DISTRO-LABELS")[0],
        "warning: build image 'example/build': label 'io.buildpacks.base.distro.name' is not set, and the image has no os-release file for lifecycle to infer it from [BOTH-DISTRO-LABELS]"
    );
}

#[test]
fn distro_labels_on_windows() {
    let mut win = ImageFacts { os: "windows".into(), ..run_image("ContainerUser") }.with_os_version("10.0.20348.2340");
    win.labels.remove("io.buildpacks.base.distro.version");
    let f = check_run_image(&win, None, &opts());
    assert_eq!(
        rule(&f, "BOTH-DISTRO-LABELS"),
        [
            "warning: run image 'example/run': label 'io.buildpacks.base.distro.name' is 'ubuntu', but it must be empty for Windows images [BOTH-DISTRO-LABELS]",
            "warning: run image 'example/run': label 'io.buildpacks.base.distro.version' is not set [BOTH-DISTRO-LABELS]",
        ]
    );
    let mut ok = win.clone().with_label("io.buildpacks.base.distro.version", "10.0.20348.2340");
    ok.labels.remove("io.buildpacks.base.distro.name");
    assert_eq!(rule(&check_run_image(&ok, None, &opts()), "BOTH-DISTRO-LABELS"), Vec::<String>::new());
    let wrong = ok.with_label("io.buildpacks.base.distro.version", "10.0.17763");
    assert_eq!(
        rule(&check_run_image(&wrong, None, &opts()), "BOTH-DISTRO-LABELS"),
        [
            "warning: run image 'example/run': label 'io.buildpacks.base.distro.version' is '10.0.17763', but the image config's os.version is '10.0.20348.2340' [BOTH-DISTRO-LABELS]"
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// RUN-USER-ROOT, RUN-USER-EXISTS, RUN-USER-DIFFERENT, LEGACY-RUN-USER-SAME

#[test]
fn run_user_root() {
    let f = check_run_image(&run_image(""), None, &opts());
    assert_eq!(
        rule(&f, "RUN-USER-ROOT"),
        [
            "warning: run image 'example/run': the default user (root) is root (uid 0): app images would run as root, and the extender fails on a root run image [RUN-USER-ROOT]"
        ]
    );
    assert_eq!(rule(&check_run_image(&run_image("1001"), None, &opts()), "RUN-USER-ROOT"), Vec::<String>::new());
    assert_eq!(
        rule(&check_run_image(&run_image("cnb"), None, &opts()), "RUN-USER-ROOT"),
        [
            "info: run image 'example/run': not verified: whether User 'cnb' is root: /etc/passwd from the image layers is needed (config-only mode; layer mode would decide this) [RUN-USER-ROOT]"
        ]
    );
    let fs = rootfs(&[run_layer()]);
    assert_eq!(
        rule(&check_run_image(&run_image("root"), Some(&fs), &opts()), "RUN-USER-ROOT"),
        [
            "warning: run image 'example/run': User 'root' is root (uid 0): app images would run as root, and the extender fails on a root run image [RUN-USER-ROOT]"
        ]
    );
}

#[test]
fn run_user_exists() {
    let fs = rootfs(&[run_layer()]);
    assert_eq!(
        rule(&check_run_image(&run_image("app"), Some(&fs), &opts()), "RUN-USER-EXISTS"),
        [
            "warning: run image 'example/run': User 'app' cannot be resolved: /etc/passwd has no entry named 'app', so app containers cannot start as this user [RUN-USER-EXISTS]"
        ]
    );
    assert_eq!(rule(&check_run_image(&run_image("cnb"), Some(&fs), &opts()), "RUN-USER-EXISTS"), Vec::<String>::new());
    assert_eq!(
        rule(&check_run_image(&run_image("app"), None, &opts()), "RUN-USER-EXISTS"),
        [
            "info: run image 'example/run': not verified: whether User 'app' exists in the run image: /etc/passwd from the image layers is needed (config-only mode; layer mode would decide this) [RUN-USER-EXISTS]"
        ]
    );
}

#[test]
fn run_user_different() {
    let pair = |build: &ImageFacts, run: &ImageFacts, o: &Options| check_pair((build, None), (run, None), o);
    let same = pair(&build_image("1000:1000"), &run_image("1000:1000"), &opts());
    assert_eq!(
        rule(&same, "RUN-USER-DIFFERENT"),
        [
            "warning: run image 'example/run': User '1000:1000' has uid 1000, the same as the build image user [RUN-USER-DIFFERENT]"
        ]
    );
    assert_eq!(
        rule(&pair(&build_image("cnb"), &run_image("1001"), &opts()), "RUN-USER-DIFFERENT"),
        Vec::<String>::new()
    );
    assert_eq!(
        rule(&pair(&build_image("1000"), &run_image("cnb"), &opts()), "RUN-USER-DIFFERENT"),
        [
            "info: run image 'example/run': not verified: whether User 'cnb' differs from the build image user: /etc/passwd from the image layers is needed (config-only mode; layer mode would decide this) [RUN-USER-DIFFERENT]"
        ]
    );
    // Layer mode resolves the run image's name.
    let bfs = rootfs(&[base_layer()]);
    let same_uid_layer = Layer::new().file("etc/passwd", "app:x:1000:1000::/home/app:/bin/sh\n").build();
    let rfs = rootfs(&[same_uid_layer]);
    let f = check_pair((&build_image("cnb"), Some(&bfs)), (&run_image("app"), Some(&rfs)), &opts());
    assert_eq!(
        rule(&f, "RUN-USER-DIFFERENT"),
        [
            "warning: run image 'example/run': User 'app' has uid 1000, the same as the build image user [RUN-USER-DIFFERENT]"
        ]
    );
}

#[test]
fn run_user_same_before_platform_api_0_7() {
    let old = Options { platform_api: PlatformApi::new(0, 6), ..opts() };
    let f = check_pair((&build_image("1000:1000"), None), (&run_image("1000:1000"), None), &old);
    assert_eq!(rule(&f, "LEGACY-RUN-USER-SAME"), Vec::<String>::new());
    assert_eq!(rule(&f, "RUN-USER-DIFFERENT"), Vec::<String>::new());
    let f = check_pair((&build_image("1000:1000"), None), (&run_image("1001:1000"), None), &old);
    assert_eq!(
        rule(&f, "LEGACY-RUN-USER-SAME"),
        [
            "error: run image 'example/run': User '1001:1000' is 1001:1000, but Platform API 0.6 requires the build image user (1000:1000) [LEGACY-RUN-USER-SAME]"
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// RUN-LABEL-REBASABLE, RUN-LABEL-TARGET-ID

#[test]
fn rebasable_label() {
    let check = |v: Option<&str>| {
        let mut f = run_image("1001");
        match v {
            Some(v) => f.labels.insert("io.buildpacks.rebasable".into(), v.into()),
            None => f.labels.remove("io.buildpacks.rebasable"),
        };
        rule(&check_run_image(&f, None, &opts()), "RUN-LABEL-REBASABLE")
    };
    assert_eq!(check(Some("true")), Vec::<String>::new());
    assert_eq!(
        check(None),
        ["warning: run image 'example/run': label 'io.buildpacks.rebasable' is not set [RUN-LABEL-REBASABLE]"]
    );
    assert_eq!(
        check(Some("false")),
        [
            "warning: run image 'example/run': label 'io.buildpacks.rebasable' is 'false': app images built on this run image cannot be rebased without forcing it [RUN-LABEL-REBASABLE]"
        ]
    );
    assert_eq!(
        check(Some("TRUE")),
        [
            "warning: run image 'example/run': label 'io.buildpacks.rebasable' is 'TRUE': lifecycle reads it as true, but the spec asks for 'true' [RUN-LABEL-REBASABLE]"
        ]
    );
    assert_eq!(
        check(Some("0")),
        [
            "warning: run image 'example/run': label 'io.buildpacks.rebasable' is '0': the extender reads it as false, but the rebaser refuses only 'false', so it is ambiguous [RUN-LABEL-REBASABLE]"
        ]
    );
    assert_eq!(
        check(Some("yes")),
        [
            "warning: run image 'example/run': label 'io.buildpacks.rebasable' has the unrecognised value 'yes' [RUN-LABEL-REBASABLE]"
        ]
    );
}

#[test]
fn target_id_label() {
    let check = |v: Option<&str>| {
        let mut f = run_image("1001");
        match v {
            Some(v) => f.labels.insert("io.buildpacks.base.id".into(), v.into()),
            None => f.labels.remove("io.buildpacks.base.id"),
        };
        rule(&check_run_image(&f, None, &opts()), "RUN-LABEL-TARGET-ID")
    };
    assert_eq!(check(Some("io.buildpacks.images/noble-run")), Vec::<String>::new());
    assert_eq!(
        check(None),
        ["warning: run image 'example/run': label 'io.buildpacks.base.id' is not set [RUN-LABEL-TARGET-ID]"]
    );
    assert_eq!(
        check(Some("my run image")),
        [
            "error: run image 'example/run': label 'io.buildpacks.base.id' value 'my run image' has characters other than letters, digits, '.', '/' and '-' [RUN-LABEL-TARGET-ID]"
        ]
    );
}

#[test]
fn targets_era_rules_are_skipped_before_platform_api_0_12() {
    let old = Options { platform_api: PlatformApi::new(0, 11), ..opts() };
    let mut f = run_image("1001");
    f.labels.retain(|k, _| !k.starts_with("io.buildpacks.base.") && k != "io.buildpacks.rebasable");
    let found = check_run_image(&f, None, &old);
    let rules: Vec<&str> = found.iter().map(|f| f.rule).collect();
    assert_eq!(rules, ["LEGACY-LABEL-STACK-DESCRIPTIVE"]);
}

// ---------------------------------------------------------------------------------------------
// PAIR-TARGET-MATCH

#[test]
fn target_match_os_and_arch() {
    let run = ImageFacts { os: "windows".into(), architecture: "arm64".into(), ..run_image("1001") };
    let f = check_pair((&build_image("1000:1000"), None), (&run, None), &opts());
    assert_eq!(
        rule(&f, "PAIR-TARGET-MATCH"),
        [
            "error: run image 'example/run': architecture 'arm64' does not match the build image 'example/build', which has 'amd64' [PAIR-TARGET-MATCH]",
            "error: run image 'example/run': os 'windows' does not match the build image 'example/build', which has 'linux' [PAIR-TARGET-MATCH]",
        ]
    );
    assert_eq!(fixes(&f, "PAIR-TARGET-MATCH")[0], "use a run image for linux/amd64, the build image's platform");
    let f = check_pair((&build_image("1000:1000"), None), (&run_image("1001"), None), &opts());
    assert_eq!(rule(&f, "PAIR-TARGET-MATCH"), Vec::<String>::new());
}

#[test]
fn target_match_variant_and_distro() {
    let arm = |f: ImageFacts| ImageFacts { architecture: "arm".into(), ..f };
    let build = arm(build_image("1000:1000")).with_variant("v7");
    let pair = |run: &ImageFacts| rule(&check_pair((&build, None), (run, None), &opts()), "PAIR-TARGET-MATCH");
    assert_eq!(pair(&arm(run_image("1001")).with_variant("v7")), Vec::<String>::new());
    assert_eq!(
        pair(&arm(run_image("1001"))),
        [
            "warning: run image 'example/run': variant is not set, but the build image 'example/build' has 'v7' [PAIR-TARGET-MATCH]"
        ]
    );
    assert_eq!(
        pair(&arm(run_image("1001")).with_variant("v6")),
        [
            "error: run image 'example/run': variant 'v6' does not match the build image 'example/build', which has 'v7' [PAIR-TARGET-MATCH]"
        ]
    );
    let mut no_distro =
        arm(run_image("1001")).with_variant("v7").with_label("io.buildpacks.base.distro.version", "24.04");
    no_distro.labels.remove("io.buildpacks.base.distro.name");
    assert_eq!(
        pair(&no_distro),
        [
            "warning: run image 'example/run': io.buildpacks.base.distro.name is not set, but the build image 'example/build' has 'ubuntu' [PAIR-TARGET-MATCH]",
            "error: run image 'example/run': io.buildpacks.base.distro.version '24.04' does not match the build image 'example/build', which has '22.04' [PAIR-TARGET-MATCH]",
        ]
    );
    // Only the run image sets a variant.
    let plain_build = build_image("1000:1000");
    let run = run_image("1001").with_variant("v3");
    assert_eq!(
        rule(&check_pair((&plain_build, None), (&run, None), &opts()), "PAIR-TARGET-MATCH"),
        [
            "warning: run image 'example/run': variant 'v3' is set, but the build image 'example/build' has none [PAIR-TARGET-MATCH]"
        ]
    );
}

#[test]
fn target_match_treats_arm64_v8_as_plain_arm64() {
    let build = ImageFacts { architecture: "arm64".into(), ..build_image("1000:1000") }.with_variant("v8");
    let run = ImageFacts { architecture: "arm64".into(), ..run_image("1001") };
    assert_eq!(rule(&check_pair((&build, None), (&run, None), &opts()), "PAIR-TARGET-MATCH"), Vec::<String>::new());
}

#[test]
fn target_match_for_mirrors() {
    let build = build_image("1000:1000");
    let mirror = ImageFacts { name: "mirror.example/run".into(), architecture: "arm64".into(), ..run_image("1001") };
    let f = check_mirror((&build, None), (&mirror, None), &opts());
    assert_eq!(
        rule(&f, "PAIR-TARGET-MATCH"),
        [
            "error: run image mirror 'mirror.example/run': architecture 'arm64' does not match the build image 'example/build', which has 'amd64' [PAIR-TARGET-MATCH]"
        ]
    );
    assert_eq!(fixes(&f, "PAIR-TARGET-MATCH"), ["use a mirror for linux/amd64, the build image's platform"]);
    let ok = ImageFacts { name: "mirror.example/run".into(), ..run_image("1001") };
    let (build_fs, mirror_fs) = (rootfs(&[base_layer()]), rootfs(&[run_layer()]));
    assert_eq!(lines(&check_mirror((&build, Some(&build_fs)), (&ok, Some(&mirror_fs)), &opts())), Vec::<String>::new());
}

/// A mirror is an alternative run image: it gets every run image rule, not only the pairing.
#[test]
fn mirrors_get_the_run_image_rules() {
    let build = build_image("1000:1000");
    let mut mirror = ImageFacts { name: "mirror.example/run".into(), ..run_image("1000:1000") };
    mirror.env.clear();
    mirror.labels.remove("io.buildpacks.rebasable");
    let f = check_mirror((&build, None), (&mirror, None), &opts());
    assert_eq!(
        lines(&f).into_iter().filter(|l| !l.starts_with("info")).collect::<Vec<_>>(),
        [
            "error: run image mirror 'mirror.example/run': PATH is not set in Env (runtimes add a default PATH only when a container starts, not to the image config) [RUN-ENV-PATH]",
            "warning: run image mirror 'mirror.example/run': label 'io.buildpacks.rebasable' is not set [RUN-LABEL-REBASABLE]",
            "warning: run image mirror 'mirror.example/run': User '1000:1000' has uid 1000, the same as the build image user [RUN-USER-DIFFERENT]",
        ]
    );
}

#[test]
fn a_missing_platform_is_a_target_finding() {
    let build = build_image("1000:1000");
    let f = cnbx_validate::platform_missing(&build, Role::Mirror, "m.example/run", "linux/amd64", "linux/arm64");
    assert_eq!(
        lines(std::slice::from_ref(&f)),
        [
            "error: run image mirror 'm.example/run': has no manifest for platform linux/amd64, the platform of the build image 'example/build' (it has: linux/arm64) [PAIR-TARGET-MATCH]"
        ]
    );
    assert!(f.fix.contains("use a mirror that has a linux/amd64 image"), "{}", f.fix);
}

// ---------------------------------------------------------------------------------------------
// RUNTOML-MIRROR-SAME-ID, RUNTOML-UNIQUE-REGISTRY

#[test]
fn mirrors_same_id() {
    let image = RunImageRef::new("gcr.io/r/run", "gcr.io", Some("sha256:aaa"));
    let mirrors = [
        RunImageRef::new("ghcr.io/r/run", "ghcr.io", Some("sha256:aaa")),
        RunImageRef::new("quay.io/r/run", "quay.io", Some("sha256:bbb")),
        RunImageRef::new("docker.io/r/run", "index.docker.io", None),
    ];
    assert_eq!(
        lines(&check_mirrors(&image, &mirrors)),
        [
            "warning: run image mirror 'docker.io/r/run': not accessible, so its image ID could not be compared with run image 'gcr.io/r/run' [RUNTOML-MIRROR-SAME-ID]",
            "warning: run image mirror 'quay.io/r/run': image ID sha256:bbb differs from run image 'gcr.io/r/run' (sha256:aaa) [RUNTOML-MIRROR-SAME-ID]",
        ]
    );
    let unreachable = RunImageRef::new("gcr.io/r/run", "gcr.io", None);
    assert_eq!(
        lines(&check_mirrors(&unreachable, &mirrors[..1])),
        [
            "info: run image mirror 'ghcr.io/r/run': not verified: whether it has the same image ID as run image 'gcr.io/r/run': the run image is not accessible [RUNTOML-MIRROR-SAME-ID]"
        ]
    );
}

#[test]
fn mirrors_unique_registry() {
    let image = RunImageRef::new("gcr.io/r/run", "gcr.io", Some("sha256:a"));
    let mirrors = [
        RunImageRef::new("GCR.io/other/run", "GCR.io", Some("sha256:a")),
        RunImageRef::new("ghcr.io/r/run", "ghcr.io", Some("sha256:a")),
        RunImageRef::new("ghcr.io/r2/run", "ghcr.io", Some("sha256:a")),
    ];
    assert_eq!(
        lines(&check_mirrors(&image, &mirrors)),
        [
            "warning: run image mirror 'GCR.io/other/run': registry 'GCR.io' is also the registry of run image 'gcr.io/r/run' [RUNTOML-UNIQUE-REGISTRY]",
            "warning: run image mirror 'ghcr.io/r2/run': registry 'ghcr.io' is also the registry of mirror 'ghcr.io/r/run' [RUNTOML-UNIQUE-REGISTRY]",
        ]
    );
    assert_eq!(lines(&check_mirrors(&image, &mirrors[1..2])), Vec::<String>::new());
}

// ---------------------------------------------------------------------------------------------
// LEGACY-*

fn legacy_required() -> Options {
    Options { legacy_stacks_required: true, ..opts() }
}

fn with_stack(stack: &str) -> Options {
    Options { stack_id: Some(stack.into()), ..opts() }
}

#[test]
fn stack_id_label_levels() {
    let mut facts = build_image("1000:1000");
    facts.labels.remove("io.buildpacks.stack.id");
    let f = check_build_image(&facts, None, &opts());
    assert_eq!(
        rule(&f, "LEGACY-LABEL-STACK-ID"),
        ["warning: build image 'example/build': label 'io.buildpacks.stack.id' is not set [LEGACY-LABEL-STACK-ID]"]
    );
    assert_eq!(
        fixes(&f, "LEGACY-LABEL-STACK-ID"),
        [
            "add LABEL io.buildpacks.stack.id=<stack id> to the build image (only buildpacks with [[stacks]] and no [[targets]] need it)"
        ]
    );
    assert_eq!(
        rule(&check_build_image(&facts, None, &legacy_required()), "LEGACY-LABEL-STACK-ID"),
        ["error: build image 'example/build': label 'io.buildpacks.stack.id' is not set [LEGACY-LABEL-STACK-ID]"]
    );
    let old = Options { platform_api: PlatformApi::new(0, 11), ..opts() };
    assert_eq!(
        rule(&check_build_image(&facts, None, &old), "LEGACY-LABEL-STACK-ID")[0].split(':').next(),
        Some("error")
    );
    let bad = build_image("1000:1000").with_label("io.buildpacks.stack.id", "my stack");
    assert_eq!(
        rule(&check_build_image(&bad, None, &opts()), "LEGACY-LABEL-STACK-ID"),
        [
            "warning: build image 'example/build': label 'io.buildpacks.stack.id' value 'my stack' has characters other than letters, digits, '.', '/' and '-' [LEGACY-LABEL-STACK-ID]"
        ]
    );
    // The characters are a SHOULD from Platform API 0.12 on, whether [stack].id names that id
    // (pack creates such builders) or a stack-only buildpack needs it (ids are compared as
    // plain strings); a MUST before.
    for o in [with_stack("my stack"), Options { legacy_stacks_required: true, ..with_stack("my stack") }] {
        assert_eq!(
            rule(&check_build_image(&bad, None, &o), "LEGACY-LABEL-STACK-ID")[0].split(':').next(),
            Some("warning")
        );
    }
    let old = Options { platform_api: PlatformApi::new(0, 11), ..with_stack("my stack") };
    assert_eq!(rule(&check_build_image(&bad, None, &old), "LEGACY-LABEL-STACK-ID")[0].split(':').next(), Some("error"));
    assert_eq!(
        rule(&check_build_image(&build_image("1000:1000"), None, &opts()), "LEGACY-LABEL-STACK-ID"),
        Vec::<String>::new()
    );
}

#[test]
fn cnb_stack_id_env() {
    let facts = env_image("1000:1000", &["CNB_USER_ID=1000", "CNB_GROUP_ID=1000"]);
    assert_eq!(
        rule(&check_build_image(&facts, None, &opts()), "LEGACY-BUILD-ENV-CNB_STACK_ID"),
        ["warning: build image 'example/build': CNB_STACK_ID is not set in Env [LEGACY-BUILD-ENV-CNB_STACK_ID]"]
    );
    // pack never reads CNB_STACK_ID: a missing one is a warning whatever the builder needs.
    let old = Options { platform_api: PlatformApi::new(0, 11), ..legacy_required() };
    for o in [legacy_required(), with_stack("io.buildpacks.stacks.jammy"), old] {
        assert_eq!(
            rule(&check_build_image(&facts, None, &o), "LEGACY-BUILD-ENV-CNB_STACK_ID")[0].split(':').next(),
            Some("warning")
        );
    }
    let wrong = facts.with_env(["CNB_STACK_ID=io.buildpacks.stacks.bionic"]);
    assert_eq!(
        rule(&check_build_image(&wrong, None, &legacy_required()), "LEGACY-BUILD-ENV-CNB_STACK_ID"),
        [
            "error: build image 'example/build': CNB_STACK_ID ('io.buildpacks.stacks.bionic') does not match the stack id 'io.buildpacks.stacks.jammy' [LEGACY-BUILD-ENV-CNB_STACK_ID]"
        ]
    );
    assert_eq!(
        rule(&check_build_image(&build_image("1000:1000"), None, &opts()), "LEGACY-BUILD-ENV-CNB_STACK_ID"),
        Vec::<String>::new()
    );
}

#[test]
fn mixins_label_must_be_a_json_array() {
    let bad = r#"{"curl": true}"#;
    let build = build_image("1000:1000").with_label("io.buildpacks.stack.mixins", bad);
    assert_eq!(
        rule(&check_build_image(&build, None, &opts()), "LEGACY-LABEL-MIXINS"),
        [
            "error: build image 'example/build': label 'io.buildpacks.stack.mixins' is not a JSON array of strings (invalid type: map, expected a sequence at line 1 column 0) [LEGACY-LABEL-MIXINS]"
        ]
    );
    let run = run_image("1001").with_label("io.buildpacks.stack.mixins", "[1]");
    assert_eq!(
        rule(&check_run_image(&run, None, &opts()), "LEGACY-LABEL-MIXINS"),
        [
            "warning: run image 'example/run': label 'io.buildpacks.stack.mixins' is not a JSON array of strings (invalid type: integer `1`, expected a string at line 1 column 2) [LEGACY-LABEL-MIXINS]"
        ]
    );
    for ok in ["[]", "null"] {
        let run = run_image("1001").with_label("io.buildpacks.stack.mixins", ok);
        assert_eq!(rule(&check_run_image(&run, None, &opts()), "LEGACY-LABEL-MIXINS"), Vec::<String>::new());
    }
    let mut none = run_image("1001");
    none.labels.remove("io.buildpacks.stack.mixins");
    assert_eq!(lines(&check_run_image(&none, None, &opts())).len(), 2, "only the distro infos");
}

#[test]
fn mixin_names_and_stages() {
    let build =
        build_image("1000:1000").with_label("io.buildpacks.stack.mixins", r#"["curl","run:tzdata","a:b:c","test:x"]"#);
    assert_eq!(
        rule(&check_build_image(&build, None, &opts()), "LEGACY-MIXIN-NAME"),
        [
            "warning: build image 'example/build': mixin 'a:b:c' is not a name with an optional 'build:' or 'run:' prefix [LEGACY-MIXIN-NAME]",
            "warning: build image 'example/build': mixin 'test:x' is not a name with an optional 'build:' or 'run:' prefix [LEGACY-MIXIN-NAME]",
            "warning: build image 'example/build': the build image carries the run-only mixin 'run:tzdata' [LEGACY-MIXIN-NAME]",
        ]
    );
    let run = run_image("1001").with_label("io.buildpacks.stack.mixins", r#"["curl","build:git"]"#);
    assert_eq!(
        rule(&check_run_image(&run, None, &legacy_required()), "LEGACY-MIXIN-NAME"),
        ["error: run image 'example/run': the run image carries the build-only mixin 'build:git' [LEGACY-MIXIN-NAME]"]
    );
    assert_eq!(rule(&check_run_image(&run_image("1001"), None, &opts()), "LEGACY-MIXIN-NAME"), Vec::<String>::new());
}

#[test]
fn config_stack_id_uses_packs_wording() {
    let o = with_stack("io.buildpacks.stacks.bionic");
    let f = check_build_image(&build_image("1000:1000"), None, &o);
    assert_eq!(
        rule(&f, "LEGACY-PAIR-STACK-ID"),
        [
            "error: build image 'example/build': stack 'io.buildpacks.stacks.bionic' from builder config is incompatible with stack 'io.buildpacks.stacks.jammy' from build image [LEGACY-PAIR-STACK-ID]"
        ]
    );
    assert_eq!(
        fixes(&f, "LEGACY-PAIR-STACK-ID"),
        [
            "set [stack].id = \"io.buildpacks.stacks.jammy\" in builder.toml, or use a build image whose io.buildpacks.stack.id is 'io.buildpacks.stacks.bionic'"
        ]
    );
    assert_eq!(
        rule(&check_run_image(&run_image("1001"), None, &o), "LEGACY-PAIR-STACK-ID"),
        [
            "error: run image 'example/run': stack 'io.buildpacks.stacks.bionic' from builder config is incompatible with stack 'io.buildpacks.stacks.jammy' from run image 'example/run' [LEGACY-PAIR-STACK-ID]"
        ]
    );
    let mut mirror = ImageFacts { name: "mirror.example/run".into(), ..run_image("1001") };
    mirror.labels.remove("io.buildpacks.stack.id");
    let build = build_image("1000:1000");
    assert_eq!(
        rule(
            &check_mirror((&build, None), (&mirror, None), &with_stack("io.buildpacks.stacks.jammy")),
            "LEGACY-PAIR-STACK-ID"
        ),
        [
            "error: run image mirror 'mirror.example/run': stack 'io.buildpacks.stacks.jammy' from builder config is incompatible with stack '' from run image 'mirror.example/run' [LEGACY-PAIR-STACK-ID]"
        ]
    );
    let same = with_stack("io.buildpacks.stacks.jammy");
    assert_eq!(rule(&check_build_image(&build, None, &same), "LEGACY-PAIR-STACK-ID"), Vec::<String>::new());
    assert_eq!(rule(&check_run_image(&run_image("1001"), None, &same), "LEGACY-PAIR-STACK-ID"), Vec::<String>::new());
}

#[test]
fn pair_stack_ids() {
    let run = run_image("1001").with_label("io.buildpacks.stack.id", "io.buildpacks.stacks.bionic");
    let build = build_image("1000:1000");
    let f = check_pair((&build, None), (&run, None), &opts());
    assert_eq!(
        rule(&f, "LEGACY-PAIR-STACK-ID"),
        [
            "warning: run image 'example/run': stack id 'io.buildpacks.stacks.bionic' does not match the build image 'example/build', which has 'io.buildpacks.stacks.jammy' [LEGACY-PAIR-STACK-ID]"
        ]
    );
    let f = check_pair((&build, None), (&run, None), &legacy_required());
    assert_eq!(rule(&f, "LEGACY-PAIR-STACK-ID")[0].split(':').next(), Some("error"));
    let f = check_pair((&build, None), (&run_image("1001"), None), &opts());
    assert_eq!(rule(&f, "LEGACY-PAIR-STACK-ID"), Vec::<String>::new());
}

#[test]
fn pair_mixins_superset_policy() {
    let build = build_image("1000:1000").with_label("io.buildpacks.stack.mixins", r#"["curl","git","build:make"]"#);
    let run = run_image("1001").with_label("io.buildpacks.stack.mixins", r#"["curl","run:tzdata"]"#);
    assert_eq!(
        rule(&check_pair((&build, None), (&run, None), &legacy_required()), "LEGACY-PAIR-MIXINS"),
        [
            "error: run image 'example/run': the run image lacks mixins of the build image 'example/build': 'git' [LEGACY-PAIR-MIXINS]"
        ]
    );
    let run = run_image("1001").with_label("io.buildpacks.stack.mixins", r#"["curl","git","jq"]"#);
    assert_eq!(
        rule(&check_pair((&build, None), (&run, None), &legacy_required()), "LEGACY-PAIR-MIXINS"),
        [
            "info: run image 'example/run': the run image has mixins the build image 'example/build' lacks: 'jq' (the spec says the same set; cnbx, like pack, accepts a superset) [LEGACY-PAIR-MIXINS]"
        ]
    );
    let run = run_image("1001").with_label("io.buildpacks.stack.mixins", r#"["git","curl","run:x"]"#);
    assert_eq!(rule(&check_pair((&build, None), (&run, None), &opts()), "LEGACY-PAIR-MIXINS"), Vec::<String>::new());
}

#[test]
fn descriptive_stack_labels_before_platform_api_0_12() {
    let old = Options { platform_api: PlatformApi::new(0, 11), ..opts() };
    let f = check_build_image(&build_image("1000:1000"), None, &old);
    assert_eq!(
        rule(&f, "LEGACY-LABEL-STACK-DESCRIPTIVE"),
        [
            "warning: build image 'example/build': labels not set: 'io.buildpacks.stack.maintainer', 'io.buildpacks.stack.homepage', 'io.buildpacks.stack.distro.name', 'io.buildpacks.stack.distro.version', 'io.buildpacks.stack.released', 'io.buildpacks.stack.description', 'io.buildpacks.stack.metadata' [LEGACY-LABEL-STACK-DESCRIPTIVE]"
        ]
    );
    let mut full = build_image("1000:1000");
    for k in ["maintainer", "homepage", "distro.name", "distro.version", "released", "description", "metadata"] {
        full = full.with_label(format!("io.buildpacks.stack.{k}"), "x");
    }
    assert_eq!(rule(&check_build_image(&full, None, &old), "LEGACY-LABEL-STACK-DESCRIPTIVE"), Vec::<String>::new());
    assert_eq!(
        rule(&check_build_image(&build_image("1000:1000"), None, &opts()), "LEGACY-LABEL-STACK-DESCRIPTIVE"),
        Vec::<String>::new()
    );
}

// ---------------------------------------------------------------------------------------------
// Every error names the image and the rule and has a fix.

#[test]
fn every_error_names_image_rule_and_fix() {
    let broken_build = ImageFacts {
        name: "bad/build:1".into(),
        os: "plan9".into(),
        architecture: String::new(),
        variant: Some("v99".into()),
        user: String::new(),
        env: vec!["CNB_USER_ID=x".into(), "CNB_GROUP_ID=-5".into(), "PATH".into()],
        labels: [("io.buildpacks.stack.mixins".to_owned(), "nope".to_owned())].into(),
        index_platform: Some(IndexPlatform::new("linux", "amd64", None)),
        ..ImageFacts::default()
    };
    let broken_run = ImageFacts {
        name: "bad/run:1".into(),
        os: "windows".into(),
        architecture: "arm64".into(),
        labels: [("io.buildpacks.base.id".to_owned(), "a b".to_owned())].into(),
        ..ImageFacts::default()
    };
    let fs = rootfs(&[base_layer(), Layer::new().whiteout("etc", "passwd").build()]);
    let named = build_image("ghost");
    let o = Options { stack_id: Some("x".into()), legacy_stacks_required: true, platform_api: PlatformApi::new(0, 6) };
    let mut all = Vec::new();
    for opts in [opts(), o] {
        all.extend(check_build_image(&broken_build, None, &opts));
        all.extend(check_build_image(&named, Some(&fs), &opts));
        all.extend(check_build_image(&build_image("1000:1000"), Some(&fs), &opts));
        all.extend(check_run_image(&broken_run, None, &opts));
        all.extend(check_pair((&broken_build, None), (&broken_run, None), &opts));
        all.extend(check_pair((&build_image("1000:1000"), None), (&run_image("1001:1000"), None), &opts));
        all.extend(check_mirror((&broken_build, None), (&broken_run, None), &opts));
        all.extend(check_build_image(&build_image("1000:1000").with_env(["CNB_STACK_ID=other"]), None, &opts));
    }
    let errors: Vec<_> = all.iter().filter(|f| f.level == Level::Error).collect();
    assert!(errors.len() > 20, "{}", errors.len());
    let rules: std::collections::BTreeSet<&str> = errors.iter().map(|f| f.rule).collect();
    for expected in [
        "BUILD-USER-NONROOT",
        "BUILD-USER-HOME-WRITABLE",
        "BUILD-ENV-CNB_USER_ID",
        "BUILD-ENV-CNB_GROUP_ID",
        "BUILD-ENV-PATH",
        "BUILD-OS-SUPPORTED",
        "RUN-ENV-PATH",
        "RUN-LABEL-TARGET-ID",
        "BOTH-OS-ARCH-VALID",
        "PAIR-TARGET-MATCH",
        "LEGACY-LABEL-MIXINS",
        "LEGACY-PAIR-STACK-ID",
        "LEGACY-RUN-USER-SAME",
        "LEGACY-BUILD-ENV-CNB_STACK_ID",
    ] {
        assert!(rules.contains(expected), "no error for {expected}: {rules:?}");
    }
    for e in errors {
        let text = e.to_string();
        assert!(text.contains(&format!("'{}'", e.image)), "{text}");
        assert!(text.contains(&format!("[{}]", e.rule)), "{text}");
        assert!(!e.fix().trim().is_empty(), "{text}");
    }
    for f in &all {
        assert!(!f.fix.trim().is_empty(), "{f}");
        assert!(!f.message.ends_with('.'), "{f}");
    }
}

#[test]
fn findings_are_sorted() {
    let f = check_build_image(&ImageFacts::new("x", "", ""), None, &opts());
    let mut sorted = f.clone();
    cnbx_validate::sort_findings(&mut sorted);
    assert_eq!(f, sorted);
    assert!(f.windows(2).all(|w| w[0].rule <= w[1].rule));
}

#[test]
fn fixes_never_suggest_root_ids() {
    let f = build_check(&env_image("", &[]), None);
    assert_eq!(fixes(&f, "BUILD-ENV-CNB_USER_ID"), ["add ENV CNB_USER_ID=<uid of the build user> to the build image"]);
    assert_eq!(
        fixes(&f, "BUILD-ENV-CNB_GROUP_ID"),
        ["add ENV CNB_GROUP_ID=<gid of the build user> to the build image"]
    );
}

#[test]
fn unresolvable_user_is_reported_once_as_an_error() {
    let fs = rootfs(&[base_layer()]);
    let f = check_build_image(&build_image("ghost"), Some(&fs), &opts());
    let user_rules: Vec<String> =
        lines(&f).into_iter().filter(|l| l.contains("-USER-") || l.contains("CNB_")).collect();
    assert_eq!(
        user_rules,
        [
            "info: build image 'example/build': not verified: whether CNB_GROUP_ID (1000) is the gid of User 'ghost': User 'ghost' cannot be resolved (/etc/passwd has no entry named 'ghost') [BUILD-ENV-CNB_GROUP_ID]",
            "info: build image 'example/build': not verified: whether CNB_USER_ID (1000) is the uid of User 'ghost': User 'ghost' cannot be resolved (/etc/passwd has no entry named 'ghost') [BUILD-ENV-CNB_USER_ID]",
            "info: build image 'example/build': not verified: whether the home directory of User 'ghost' exists and is writable: User 'ghost' cannot be resolved (/etc/passwd has no entry named 'ghost') [BUILD-USER-HOME-WRITABLE]",
            "error: build image 'example/build': User 'ghost' cannot be resolved: /etc/passwd has no entry named 'ghost', so containers cannot start as this user [BUILD-USER-NONROOT]",
        ]
    );
}
