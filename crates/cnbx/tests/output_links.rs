//! Writes stay in the output, through the real binary: an existing `oci:` output whose
//! `blobs/` (or `blobs/sha256/`) is a symbolic link is refused naming the link, and the
//! directory it points at gets nothing; no temporary file is left anywhere.

#![allow(clippy::unwrap_used)]

mod common;

use common::Env;
use common::images::minimal_config;

#[test]
fn an_oci_output_whose_blobs_are_a_link_gets_nothing_written_through_it() {
    let env = Env::with_test_images();
    let config = minimal_config(&env, "cnbx.test/build:jammy", "cnbx.test/run:jammy");
    let create = |dest: &str| {
        env.cmd()
            .args(["builder", "create", dest, "--config", config.to_str().unwrap(), "--pull-policy", "never"])
            .output()
            .unwrap()
    };
    let out = create("oci:out:first");
    assert!(out.status.success(), "{}", env.format(&out));

    let work = env.work.path();
    for linked in ["blobs", "blobs/sha256"] {
        let elsewhere = work.join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        // The link points at an empty directory: every blob of the builder would land there.
        let moved = work.join("moved");
        std::fs::rename(work.join("out").join(linked), &moved).unwrap();
        std::os::unix::fs::symlink(&elsewhere, work.join("out").join(linked)).unwrap();

        let out = create("oci:out:second");
        let text = env.format(&out);
        assert_eq!(out.status.code(), Some(1), "{text}");
        assert!(text.contains(&format!("[WORK]/out/{linked} is a symbolic link, not a directory")), "{text}");
        assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0, "{text}");
        assert_eq!(cnbx_testkit::hostile::temp_files(work), Vec::<String>::new());
        assert_eq!(cnbx_testkit::hostile::temp_files(env.home.path()), Vec::<String>::new());

        std::fs::remove_file(work.join("out").join(linked)).unwrap();
        std::fs::rename(&moved, work.join("out").join(linked)).unwrap();
        std::fs::remove_dir(&elsewhere).unwrap();
    }
    // Put back as they were, the layout takes the second tag.
    let out = create("oci:out:second");
    assert!(out.status.success(), "{}", env.format(&out));
}
