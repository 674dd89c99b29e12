//! Layer mode: rebuilding passwd, group, os-release and directory headers from real tar layers.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use cnbx_validate::{
    DirInfo, FileState, GROUP, OS_RELEASE, PASSWD, RootFs, RootFsBuilder, SymlinkLoop, USR_LIB_OS_RELEASE,
};
use common::{Layer, base_layer, rootfs};

fn text(fs: &RootFs, path: &str) -> String {
    match fs.file(path) {
        FileState::Present { content, .. } => String::from_utf8_lossy(content).into_owned(),
        other => panic!("{path}: {other:?}"),
    }
}

fn dir(fs: &RootFs, path: &str) -> Option<DirInfo> {
    fs.directory(path).unwrap()
}

#[test]
fn base_layer_files_and_dirs() {
    let fs = rootfs(&[base_layer()]);
    assert_eq!(text(&fs, PASSWD), common::PASSWD);
    assert_eq!(text(&fs, GROUP), common::GROUP);
    assert_eq!(
        dir(&fs, "/home/cnb"),
        Some(DirInfo { path: "/home/cnb".into(), uid: 1000, gid: 1000, mode: 0o755, implicit: false })
    );
    assert_eq!(dir(&fs, "/nope"), None);
    assert_eq!(fs.symlink_target("/etc/os-release"), Some("../usr/lib/os-release"));
}

#[test]
fn os_release_follows_relative_symlink() {
    let fs = rootfs(&[base_layer()]);
    match fs.file(OS_RELEASE) {
        FileState::Present { path, content } => {
            assert_eq!(path, "/usr/lib/os-release");
            assert_eq!(content, common::OS_RELEASE.as_bytes());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(text(&fs, USR_LIB_OS_RELEASE), common::OS_RELEASE);
}

#[test]
fn os_release_symlink_in_upper_layer_to_file_in_lower_layer() {
    let lower = Layer::new().file("usr/lib/os-release", "ID=debian\n").build();
    let upper = Layer::new().symlink("etc/os-release", "../usr/lib/os-release").build();
    let fs = rootfs(&[lower, upper]);
    assert_eq!(text(&fs, OS_RELEASE), "ID=debian\n");
}

#[test]
fn symlink_listed_before_its_target_in_the_same_layer() {
    let layer =
        Layer::new().symlink("/etc/passwd", "/srv/accounts/users").file("/srv/accounts/users", "x:x:5:5::/:/bin/sh\n");
    let fs = rootfs(&[layer.build()]);
    assert_eq!(text(&fs, PASSWD), "x:x:5:5::/:/bin/sh\n");
}

#[test]
fn link_to_an_unkept_name_written_earlier_is_not_retained() {
    let lower = Layer::new().file("srv/accounts/users", "x:x:5:5::/:/bin/sh\n").build();
    let upper = Layer::new().symlink("etc/passwd", "/srv/accounts/users").build();
    let fs = rootfs(&[lower, upper]);
    assert!(matches!(fs.file(PASSWD), FileState::NotRetained { .. }), "{:?}", fs.file(PASSWD));
}

#[test]
fn link_to_a_candidate_name_written_earlier_is_kept() {
    let lower = Layer::new().file("etc/passwd.real", "x:x:5:5::/:/bin/sh\n").file("usr/bin/passwd", "ELF").build();
    let upper = Layer::new().symlink("etc/passwd", "passwd.real").build();
    let fs = rootfs(&[lower, upper]);
    assert_eq!(text(&fs, PASSWD), "x:x:5:5::/:/bin/sh\n");
}

#[test]
fn only_the_retained_files_can_be_read() {
    let fs = rootfs(&[base_layer()]);
    assert!(matches!(fs.file("/etc/hostname"), FileState::NotRetained { .. }));
}

#[test]
fn upper_layer_passwd_overrides_lower() {
    let upper = Layer::new().file("etc/passwd", "cnb:x:2000:2000::/home/other:/bin/sh\n").build();
    let fs = rootfs(&[base_layer(), upper]);
    assert_eq!(text(&fs, PASSWD), "cnb:x:2000:2000::/home/other:/bin/sh\n");
}

#[test]
fn whiteout_deletes_passwd() {
    let upper = Layer::new().whiteout("etc", "passwd").build();
    let fs = rootfs(&[base_layer(), upper]);
    assert_eq!(fs.file(PASSWD), FileState::Missing);
    assert_eq!(text(&fs, GROUP), common::GROUP);
}

#[test]
fn whiteout_does_not_delete_the_same_layers_entry() {
    let upper = Layer::new().file("etc/passwd", "new:x:1:1::/:/bin/sh\n").whiteout("etc", "passwd").build();
    let fs = rootfs(&[base_layer(), upper]);
    assert_eq!(text(&fs, PASSWD), "new:x:1:1::/:/bin/sh\n");
}

#[test]
fn whiteout_of_a_directory_deletes_its_subtree() {
    let upper = Layer::new().whiteout("", "home").build();
    let fs = rootfs(&[base_layer(), upper]);
    assert_eq!(dir(&fs, "/home"), None);
    assert_eq!(dir(&fs, "/home/cnb"), None);
}

#[test]
fn opaque_home_hides_lower_entries_but_keeps_its_own() {
    // The new entry comes before the opaque marker in the tar; it must survive.
    let upper = Layer::new().dir("home/", 0, 0, 0o755).dir("home/newuser/", 1001, 1001, 0o700).opaque("home").build();
    let fs = rootfs(&[base_layer(), upper]);
    assert_eq!(dir(&fs, "/home/cnb"), None);
    assert_eq!(dir(&fs, "/home/newuser").map(|d| d.uid), Some(1001));
    assert_eq!(dir(&fs, "/home").map(|d| d.mode), Some(0o755));
}

#[test]
fn opaque_etc_deletes_lower_passwd() {
    let upper = Layer::new().dir("etc/", 0, 0, 0o755).opaque("etc").file("etc/hostname", "x").build();
    let fs = rootfs(&[base_layer(), upper]);
    assert_eq!(fs.file(PASSWD), FileState::Missing);
}

#[test]
fn symlinked_home_directory() {
    let layer = Layer::new()
        .dir("var/", 0, 0, 0o755)
        .dir("var/home/", 0, 0, 0o755)
        .dir("var/home/cnb/", 1000, 1000, 0o700)
        .symlink("home", "var/home")
        .build();
    let fs = rootfs(&[layer]);
    assert_eq!(
        dir(&fs, "/home/cnb"),
        Some(DirInfo { path: "/var/home/cnb".into(), uid: 1000, gid: 1000, mode: 0o700, implicit: false })
    );
}

#[test]
fn absolute_symlink_and_dotdot_above_root() {
    let layer = Layer::new()
        .dir("data/", 7, 7, 0o770)
        .symlink("a", "/data")
        .symlink("b", "../../../data")
        .symlink("c", "./a/../data/")
        .build();
    let fs = rootfs(&[layer]);
    for p in ["/a", "/b", "/c", "b/"] {
        assert_eq!(dir(&fs, p).map(|d| d.path), Some("/data".to_owned()), "{p}");
    }
}

#[test]
fn symlink_loop_is_reported() {
    let layer = Layer::new().symlink("home", "/loop/a").symlink("loop/a", "../loop/b").symlink("loop/b", "a").build();
    let fs = rootfs(&[layer]);
    assert_eq!(fs.directory("/home/cnb"), Err(SymlinkLoop { path: "/home/cnb".into() }));
    let looping_passwd = Layer::new().symlink("etc/passwd", "passwd").build();
    let fs = rootfs(&[looping_passwd]);
    assert_eq!(fs.file(PASSWD), FileState::SymlinkLoop);
}

#[test]
fn entry_names_with_and_without_leading_slash_or_dot() {
    let layer =
        Layer::new().dir("/home/", 0, 0, 0o755).dir("home/a/", 1, 1, 0o700).dir("./home/b", 2, 2, 0o700).build();
    let fs = rootfs(&[layer]);
    assert_eq!(dir(&fs, "/home/a").map(|d| d.uid), Some(1));
    assert_eq!(dir(&fs, "home/b/").map(|d| d.uid), Some(2));
}

#[test]
fn implicit_parent_directories() {
    let fs = rootfs(&[Layer::new().file("opt/app/bin/run", "#!/bin/sh").build()]);
    assert_eq!(
        dir(&fs, "/opt/app"),
        Some(DirInfo { path: "/opt/app".into(), uid: 0, gid: 0, mode: 0o755, implicit: true })
    );
    assert_eq!(dir(&fs, "/").map(|d| d.implicit), Some(true));
}

#[test]
fn later_directory_header_wins_and_keeps_children() {
    let upper = Layer::new().dir("home/", 0, 0, 0o700).build();
    let fs = rootfs(&[base_layer(), upper]);
    assert_eq!(dir(&fs, "/home").map(|d| d.mode), Some(0o700));
    assert!(dir(&fs, "/home/cnb").is_some());
}

#[test]
fn file_replacing_a_directory_removes_the_subtree() {
    let upper = Layer::new().file("home", "not a dir").build();
    let fs = rootfs(&[base_layer(), upper]);
    assert_eq!(dir(&fs, "/home"), None);
    assert_eq!(dir(&fs, "/home/cnb"), None);
}

#[test]
fn directory_replacing_a_symlink() {
    let lower = Layer::new().dir("var/home/", 0, 0, 0o755).symlink("home", "var/home").build();
    let upper = Layer::new().dir("home/", 5, 5, 0o755).build();
    let fs = rootfs(&[lower, upper]);
    assert_eq!(dir(&fs, "/home").map(|d| (d.path, d.uid)), Some(("/home".to_owned(), 5)));
}

#[test]
fn hard_link_to_passwd() {
    let layer = Layer::new().file("etc/passwd-", common::PASSWD).hardlink("etc/passwd", "etc/passwd-").build();
    let fs = rootfs(&[layer]);
    assert_eq!(text(&fs, PASSWD), common::PASSWD);
}

#[test]
fn executable_candidate_is_not_kept() {
    let layer = Layer::new().file_mode("etc/group-tool", b"\x7fELF", 0o755).symlink("etc/group", "group-tool").build();
    let fs = rootfs(&[layer]);
    assert!(matches!(fs.file(GROUP), FileState::NotRetained { .. }));
}

#[test]
fn oversized_passwd_is_not_retained() {
    let big = vec![b'#'; (8 << 20) + 1];
    let fs = rootfs(&[Layer::new().file_mode("etc/passwd", &big, 0o644).build()]);
    assert_eq!(fs.file(PASSWD), FileState::NotRetained { reason: "it is larger than 8 MiB" });
}

#[test]
fn windows_layers_are_tolerated() {
    let layer = Layer::new()
        .dir("Files/", 0, 0, 0o755)
        .dir("Files/Users/", 0, 0, 0o755)
        .file("Files/Windows/System32/config.txt", "x")
        .file("Hives/Software_Delta", "hive")
        .build();
    let mut windows = RootFsBuilder::windows();
    windows.add_layer(layer.as_slice()).unwrap();
    let fs = windows.finish();
    assert!(fs.directory("/Users").unwrap().is_some());
    assert!(fs.directory("/Hives").unwrap().is_none());
    // Without the Windows mapping the same layer still reads fine.
    let fs = rootfs(&[layer]);
    assert!(fs.directory("/Files/Users").unwrap().is_some());
}

#[test]
fn builder_reads_layers_one_at_a_time() {
    let mut b = RootFsBuilder::new();
    b.add_layer(base_layer().as_slice()).unwrap();
    b.add_layer(Layer::new().whiteout("etc", "group").build().as_slice()).unwrap();
    let fs = b.finish();
    assert_eq!(fs.file(GROUP), FileState::Missing);
    assert_eq!(text(&fs, PASSWD), common::PASSWD);
}

#[test]
fn garbage_is_an_error() {
    let garbage = vec![0x41u8; 1024];
    let err = RootFs::from_layers([base_layer().as_slice(), garbage.as_slice()]).unwrap_err();
    assert_eq!(err.to_string(), "layer 1 (counting from 0 in rootfs order) is not a readable tar stream");
}

#[test]
fn empty_layer_is_fine() {
    let fs = RootFs::from_layers([&[][..]]).unwrap();
    assert_eq!(fs.file(PASSWD), FileState::Missing);
}

#[test]
fn pax_uid_and_long_names_are_honoured() {
    let long = format!("home/{}/", "d".repeat(120));
    let layer = Layer::new()
        .pax(&[("uid", "3000000000"), ("gid", "3000000001")])
        .dir("home/big/", 1, 1, 0o700)
        .pax(&[("path", long.as_str())])
        .dir("home/short/", 0, 0, 0o755)
        .build();
    let fs = rootfs(&[layer]);
    let big = dir(&fs, "/home/big").unwrap();
    assert_eq!((big.uid, big.gid), (3_000_000_000, 3_000_000_001));
    assert!(dir(&fs, &long).is_some());
    assert!(dir(&fs, "/home/short").is_none());
}
