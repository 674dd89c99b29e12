//! `--config` from standard input (`-`) and from a pipe the shell opened (process substitution,
//! `--config <(envsubst < builder.toml)`), through the real binary: read within the same bound
//! as a file, relative paths in them resolved against the current directory, and every other
//! descriptor or link still refused (docs/security.md).

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Output;

use common::{Env, workspace_root};

/// builder.toml.example as it is: its paths are relative (`testdata/…`), so they resolve only
/// against the repository root, where these commands run.
fn example() -> String {
    std::fs::read_to_string(workspace_root().join("builder.toml.example")).unwrap()
}

/// `cnbx builder create oci:<work>/<out>:latest --config <config> …`, from the repository root.
fn create_args(env: &Env, out: &str, config: &str) -> Vec<String> {
    let destination = format!("oci:{}:latest", env.work.path().join(out).display());
    ["builder", "create", &destination, "--config", config, "--pull-policy", "never", "--target", "linux/amd64"]
        .map(str::to_owned)
        .to_vec()
}

/// Runs `script` with bash, `$0` being the cnbx binary and `$1` `arg`, with `env`'s home and
/// the repository root as the current directory.
fn bash(env: &Env, script: &str, arg: &str) -> Output {
    std::process::Command::new("bash")
        .args(["-c", script, env!("CARGO_BIN_EXE_cnbx"), arg])
        .envs(env.vars())
        .current_dir(workspace_root())
        .output()
        .unwrap()
}

fn digest_in(text: &str) -> &str {
    let start = text.find("(sha256:").unwrap_or_else(|| panic!("no digest in {text}")) + 1;
    &text[start..start + 71]
}

#[test]
fn standard_input_and_process_substitution_are_read_with_paths_relative_to_the_current_directory() {
    let env = Env::with_test_images();
    let from_stdin = env
        .cmd()
        .current_dir(workspace_root())
        .args(create_args(&env, "stdin", "-"))
        .write_stdin(example())
        .output()
        .unwrap();
    let text = env.format(&from_stdin);
    assert!(from_stdin.status.success(), "{text}");
    assert!(env.work.path().join("stdin/index.json").is_file(), "{text}");

    let example_path = workspace_root().join("builder.toml.example");
    let destination = format!("oci:{}:latest", env.work.path().join("piped").display());
    let script = format!(
        "exec \"$0\" builder create '{destination}' --config <(cat \"$1\") --pull-policy never --target linux/amd64"
    );
    let piped = bash(&env, &script, example_path.to_str().unwrap());
    let piped_text = env.format(&piped);
    assert!(piped.status.success(), "{piped_text}");
    assert_eq!(digest_in(&piped_text), digest_in(&text), "the same builder.toml gives the same builder");
}

#[test]
fn errors_name_standard_input_and_the_bound_applies() {
    let env = Env::new();
    let out = env.cmd().args(["builder", "create", "x:1", "--config", "-"]).write_stdin("[build\n").output().unwrap();
    let text = env.format(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("ERROR: invalid builder toml: parse contents of '<stdin>'"), "{text}");
    assert!(text.contains("--> <stdin>:1:"), "{text}");

    let huge = vec![b'#'; 11 * 1024 * 1024];
    let out = env.cmd().args(["builder", "create", "x:1", "--config", "-"]).write_stdin(huge).output().unwrap();
    let text = env.format(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(
            "ERROR: invalid builder toml: '<stdin>' is larger than the 10485760 bytes cnbx reads for a builder.toml"
        ),
        "{text}"
    );

    // A pipe that never ends is cut at the bound too.
    let out = bash(&env, "exec \"$0\" builder create x:1 --config <(yes '# more')", "");
    let text = env.format(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("is larger than the 10485760 bytes cnbx reads for a builder.toml"), "{text}");
}

#[test]
fn a_descriptor_or_link_that_is_not_a_pipe_is_refused_unread() {
    let env = Env::new();
    let secret = env.write("secret.toml", "description = \"hunter2\"\nbroken =\n");
    let secret = secret.to_str().unwrap();
    // A descriptor of a file: the file must be named itself, as a link to it must not be read.
    let out = bash(&env, "exec \"$0\" builder create x:1 --config /dev/fd/3 3<\"$1\"", secret);
    let text = env.format(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("ERROR: invalid builder toml: '/dev/fd/3' is a symbolic link; pass the file it points to"),
        "{text}"
    );
    assert!(!text.contains("hunter2"), "{text}");
    // A descriptor of a device.
    let out = bash(&env, "exec \"$0\" builder create x:1 --config /dev/fd/3 3</dev/zero", "");
    let text = env.format(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("'/dev/fd/3' is a symbolic link to a character device, not a regular file"), "{text}");
    // A link elsewhere to a pipe is a link: only the command line can name a descriptor.
    std::os::unix::fs::symlink("/dev/stdin", env.work.path().join("builder.toml")).unwrap();
    let out =
        env.cmd().args(["builder", "create", "x:1", "--config", "builder.toml"]).write_stdin("x").output().unwrap();
    let text = env.format(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("'builder.toml' is a symbolic link; pass the file it points to"), "{text}");
}
