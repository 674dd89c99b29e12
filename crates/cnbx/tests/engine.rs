//! `cnbx` with a container engine: real engines started by the tests (Debian's dockerd and
//! Podman's service, `cnbx_testkit::engines`, shared by this test binary), checked with the
//! engine's own API (`docker image inspect`, `docker run`). Builders created into an engine
//! must be the builders cnbx writes into an `oci:` layout from the same inputs (same config,
//! so the same image ID); bare names go to the engine when one answers and to the cnbx store
//! when none does; errors name the engine's address and say what to do, and never leave a
//! half-loaded tag.

#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use cnbx_testkit::engines::{self, Kind};
use cnbx_testkit::faults::{Fault, FaultProxy, Rule};
use common::{Env, assert_ok, example_config, images, stderr, stdout};

/// `cnbx ARGS` in `env`, bare names resolved as a user's would be (`--local auto`) against the
/// engine at `host` (`unix://...` or `tcp://...`).
fn cnbx_at(env: &Env, host: &str, args: &[&str]) -> Output {
    env.cmd()
        .env("DOCKER_HOST", host)
        .env_remove("DOCKER_CONTEXT")
        .env_remove("DOCKER_TLS_VERIFY")
        .env_remove("CNBX_LOCAL")
        .args(args)
        .output()
        .unwrap()
}

fn cnbx(env: &Env, engine: &engines::Engine, args: &[&str]) -> Output {
    cnbx_at(env, &engine.host(), args)
}

/// What the engine is called in messages.
fn describe(engine: &engines::Engine) -> String {
    match engine.kind() {
        Kind::Docker => format!("the Docker daemon at {}", engine.host()),
        Kind::Podman => format!("Podman at {}", engine.host()),
    }
}

fn kind(engine: &engines::Engine) -> &'static str {
    match engine.kind() {
        Kind::Docker => "docker",
        Kind::Podman => "podman",
    }
}

/// The config (parsed) and its digest of the image `tag` of the OCI layout `dir`.
fn layout_config(dir: &Path, tag: &str) -> (serde_json::Value, String) {
    let index: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let entry = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap();
    let blob = |d: &str| std::fs::read(dir.join("blobs/sha256").join(d.trim_start_matches("sha256:"))).unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(&blob(entry["digest"].as_str().unwrap())).unwrap();
    let digest = manifest["config"]["digest"].as_str().unwrap().to_owned();
    (serde_json::from_slice(&blob(&digest)).unwrap(), digest)
}

/// The example builder's arguments, for one platform (an engine keeps one per name).
fn example_args<'a>(config: &'a Path, destination: &'a str) -> Vec<&'a str> {
    vec![
        "builder",
        "create",
        destination,
        "--config",
        config.to_str().unwrap(),
        "--pull-policy",
        "never",
        "--target",
        "linux/amd64",
    ]
}

/// The LOCAL section of `builder inspect`'s output.
fn local_section(text: &str) -> String {
    text.split_once("\nLOCAL:\n").map(|(_, local)| local.to_owned()).unwrap_or_default()
}

#[test]
fn a_builder_created_into_each_engine_is_the_oci_builder_and_inspect_reads_it_there() {
    for engine in engines::all() {
        let env = Env::with_test_images();
        let config = example_config(&env, "");
        let name = format!("cnbx.test/{}-builder:1", kind(engine));
        let out = cnbx(&env, engine, &example_args(&config, &name));
        assert_ok(&env, &out);
        let shown = stdout(&out);
        assert!(
            shown.starts_with(&format!(
                "Successfully created builder image '{name}' into {} (image ID sha256:",
                describe(engine)
            )),
            "{shown}"
        );
        assert!(
            stderr(&out).contains(&format!("Tip: Run 'pack build <image-name> --builder {name}'")),
            "{}",
            stderr(&out)
        );

        // The same inputs into an OCI layout: the same config, so the same image ID, layers
        // and labels.
        let oci = env.cmd().args(example_args(&config, "oci:out:latest")).output().unwrap();
        assert_ok(&env, &oci);
        let (oci_config, oci_digest) = layout_config(&env.work.path().join("out"), "latest");
        let inspected = engine.inspect(&name).unwrap();
        assert_eq!(inspected["Id"], oci_digest, "{inspected}");
        assert_eq!(inspected["RootFS"]["Layers"], oci_config["rootfs"]["diff_ids"]);
        assert_eq!(inspected["Config"]["Labels"], oci_config["config"]["Labels"]);
        assert_eq!(inspected["Config"]["User"], oci_config["config"]["User"]);
        assert_eq!(inspected["Config"]["Env"], oci_config["config"]["Env"]);
        assert_eq!(inspected["Config"]["WorkingDir"], oci_config["config"]["WorkingDir"]);
        assert!(engine.docker(&["images", "--format", "{{.Repository}}:{{.Tag}}"]).unwrap().contains(&name));

        // inspect's LOCAL is the engine's image: what it shows for the layout's.
        let from_engine = cnbx(&env, engine, &["builder", "inspect", &name]);
        assert_ok(&env, &from_engine);
        let from_layout = env.cmd().args(["builder", "inspect", "oci:out:latest"]).output().unwrap();
        let local = local_section(&stdout(&from_engine));
        assert!(local.contains("Description: cnbx sample builder"), "{}", stdout(&from_engine));
        assert_eq!(local, local_section(&stdout(&from_layout)));
        let daemon = cnbx(&env, engine, &["builder", "inspect", &format!("docker-daemon:{name}")]);
        assert_eq!(local_section(&stdout(&daemon)), local);

        // builder diff reads the engine's image too (the same image both ways: no difference),
        // and against the layout's it differs in nothing but where the layers come from.
        let diff = cnbx(&env, engine, &["builder", "diff", &name, &format!("docker-daemon:{name}")]);
        assert_eq!(diff.status.code(), Some(0), "{}", env.format(&diff));
        let diff = cnbx(&env, engine, &["builder", "diff", "oci:out:latest", &name, "--output", "json"]);
        assert_ne!(diff.status.code(), Some(2), "{}", env.format(&diff));

        // Again: the engine holds exactly this image, so nothing is loaded.
        let again = cnbx(&env, engine, &[&example_args(&config, &name)[..], &["-v"]].concat());
        assert_ok(&env, &again);
        assert!(
            stderr(&again).contains(&format!("'{name}' in {} already holds this image", describe(engine))),
            "{}",
            stderr(&again)
        );

        // A label changed: a new config, every layer held by the engine, none sent.
        let label = ["--label", "io.cnbx.test=changed", "-v"];
        let changed = cnbx(&env, engine, &[&example_args(&config, &name)[..], &label].concat());
        assert_ok(&env, &changed);
        assert!(stderr(&changed).contains("Loaded 0 layer(s) ("), "{}", stderr(&changed));
        assert!(stderr(&changed).contains("12 left out as it holds them"), "{}", stderr(&changed));
        assert_eq!(engine.inspect(&name).unwrap()["Config"]["Labels"]["io.cnbx.test"], "changed");
        assert_ok(&env, &cnbx(&env, engine, &example_args(&config, &name)));

        // And the dry run says there is nothing to do, comparing image IDs.
        let dry = cnbx(&env, engine, &[&example_args(&config, &name)[..], &["--dry-run"]].concat());
        assert_ok(&env, &dry);
        let report = stdout(&dry);
        assert!(report.contains(&format!("(engine, into {})", describe(engine))), "{report}");
        assert!(
            report.contains(&format!("Result: nothing to do: '{name}' already holds this builder ({oci_digest})")),
            "{report}"
        );
    }
}

/// Puts the test store's build image into `engine` as `name` (through a docker-archive that
/// skopeo writes and the engine's own `docker load` reads).
fn load_build_image(env: &Env, engine: &engines::Engine, name: &str) -> PathBuf {
    let archive = env.work.path().join(format!("{}.tar", name.replace(['/', ':'], "_")));
    images::build_image_archive(&archive, name);
    engine.load_file(&archive).unwrap();
    archive
}

#[test]
fn a_build_image_only_in_the_engine_or_in_a_docker_archive_makes_the_same_builder() {
    for engine in engines::all() {
        let env = Env::with_test_images();
        let only = format!("cnbx.test/{}-only-in-engine:1", kind(engine));
        let archive = load_build_image(&env, engine, &only);
        let reference = example_config(&env, "");
        let oci = env.cmd().args(example_args(&reference, "oci:out:latest")).output().unwrap();
        assert_ok(&env, &oci);
        let (_, want) = layout_config(&env.work.path().join("out"), "latest");

        let text = std::fs::read_to_string(&reference).unwrap();
        for (i, build) in
            [only.clone(), format!("docker-daemon:{only}"), format!("docker-archive:{}", archive.display())]
                .iter()
                .enumerate()
        {
            let config =
                env.write(&format!("b{i}.toml"), &text.replace("\"cnbx.test/build:jammy\"", &format!("\"{build}\"")));
            let destination = format!("oci:from-{i}:latest");
            let out = cnbx(&env, engine, &example_args(&config, &destination));
            assert_ok(&env, &out);
            let (_, got) = layout_config(&env.work.path().join(format!("from-{i}")), "latest");
            assert_eq!(got, want, "{build}");
        }
        // Into the engine, the build image's layer is not sent: the engine holds it.
        let config = env.write("into.toml", &text.replace("\"cnbx.test/build:jammy\"", &format!("\"{only}\"")));
        let into = format!("cnbx.test/{}-on-engine-base:1", kind(engine));
        let out = cnbx(&env, engine, &[&example_args(&config, &into)[..], &["-v"]].concat());
        assert_ok(&env, &out);
        assert!(stderr(&out).contains("Loaded 11 layer(s) ("), "{}", stderr(&out));
        assert!(stderr(&out).contains(", 1 left out as it holds them"), "{}", stderr(&out));
        assert_eq!(engine.inspect(&into).unwrap()["Id"], want);
        // base-image check reads it there too.
        let check = cnbx(
            &env,
            engine,
            &["base-image", "check", "--build", &only, "--run", "cnbx.test/run:jammy", "--pull-policy", "never"],
        );
        assert_ok(&env, &check);
        let check =
            cnbx(&env, engine, &["base-image", "check", "--build", &format!("docker-daemon:{only}"), "--config-only"]);
        assert_ok(&env, &check);
        // Not in the cnbx store: without the engine, the bare name is not found.
        let config = env.write("store-only.toml", &text.replace("\"cnbx.test/build:jammy\"", &format!("\"{only}\"")));
        let out = env.cmd().args(example_args(&config, "oci:nope:latest")).output().unwrap();
        assert_eq!(out.status.code(), Some(1));
        assert!(stderr(&out).contains("was not found in the cnbx store"), "{}", stderr(&out));
    }
}

#[test]
fn pull_policies_read_the_engine_first_or_the_registry_first() {
    let Some(engine) = engines::docker() else { return };
    let registry = cnbx_testkit::Registry::start().unwrap();
    let env = Env::with_test_images();
    let name = format!("{}/base/build:1", registry.host());
    // The registry's build image is the test store's; the engine's, under the same name, has
    // one more label.
    let store = env.home.path().join("store");
    let run = format!("{}/base/run:1", registry.host());
    for (from, to) in [("cnbx.test/build:jammy", &name), ("cnbx.test/run:jammy", &run)] {
        cnbx_testkit::skopeo(&[
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
            "--override-arch",
            "amd64",
            &format!("oci:{}:{from}", store.display()),
            &format!("docker://{to}"),
        ])
        .unwrap();
    }
    load_build_image(&env, engine, "cnbx.test/plain-build:1");
    let dockerfile = env.write("Dockerfile", "FROM cnbx.test/plain-build:1\nLABEL io.cnbx.test.from=engine\n");
    engine
        .docker(&[
            "build",
            "--network",
            "none",
            "-t",
            &name,
            "-f",
            dockerfile.to_str().unwrap(),
            env.work.path().to_str().unwrap(),
        ])
        .unwrap();
    let text = std::fs::read_to_string(example_config(&env, "")).unwrap();
    // The run image on the registry too, so that `always` can check it.
    let text = text.replace("\"cnbx.test/run:jammy\"", &format!("\"{run}\""));
    let config = env.write("policy.toml", &text.replace("\"cnbx.test/build:jammy\"", &format!("\"{name}\"")));
    let from = |policy: &str| {
        let out = cnbx(
            &env,
            engine,
            &[
                "builder",
                "create",
                &format!("cnbx.test/policy-{policy}:1"),
                "--config",
                config.to_str().unwrap(),
                "--pull-policy",
                policy,
                "--target",
                "linux/amd64",
            ],
        );
        assert_ok(&env, &out);
        let labels = &engine.inspect(&format!("cnbx.test/policy-{policy}:1")).unwrap()["Config"]["Labels"];
        labels["io.cnbx.test.from"].as_str().unwrap_or("registry").to_owned()
    };
    assert_eq!(from("if-not-present"), "engine");
    assert_eq!(from("never"), "engine");
    assert_eq!(from("always"), "registry");

    // A name neither the engine nor the cnbx store has, under never: one line naming both.
    let missing = env.write("missing.toml", &text.replace("\"cnbx.test/build:jammy\"", "\"cnbx.test/nowhere:1\""));
    let out = cnbx(&env, engine, &example_args(&missing, "cnbx.test/never:1"));
    assert_eq!(out.status.code(), Some(1), "{}", env.format(&out));
    let error = stderr(&out).lines().filter(|l| l.starts_with("ERROR: ")).collect::<Vec<_>>().join("\n");
    assert_eq!(
        error,
        format!(
            "ERROR: build image 'cnbx.test/nowhere:1' was not found in {} or the cnbx store ({}) and --pull-policy never \
             forbids pulling it; use --pull-policy if-not-present, or an oci:<DIR> image",
            describe(engine),
            store.display()
        )
    );
    assert!(!engine.has_image("cnbx.test/never:1"));
}

#[test]
fn without_an_engine_bare_names_are_the_cnbx_stores_and_forcing_the_engine_fails_clearly() {
    let env = Env::with_test_images();
    let config = example_config(&env, "");
    let socket = env.work.path().join("no-engine.sock");
    let host = format!("unix://{}", socket.display());
    let out = cnbx_at(&env, &host, &example_args(&config, "cnbx.test/fallback:1"));
    assert_ok(&env, &out);
    let store = env.home.path().join("store");
    assert!(
        stdout(&out).starts_with(&format!(
            "Successfully created builder image 'cnbx.test/fallback:1' into the cnbx store ({}) (sha256:",
            store.display()
        )),
        "{}",
        stdout(&out)
    );
    assert!(
        stderr(&out).contains(&format!(
            "Note: no container engine answers at {host}, so bare image names are in the cnbx store ({})",
            store.display()
        )),
        "{}",
        stderr(&out)
    );
    let inspect = cnbx_at(&env, &host, &["builder", "inspect", "cnbx.test/fallback:1"]);
    assert_ok(&env, &inspect);
    assert!(local_section(&stdout(&inspect)).contains("Description: cnbx sample builder"));

    let forced =
        cnbx_at(&env, &host, &[&example_args(&config, "cnbx.test/forced:1")[..], &["--local", "engine"]].concat());
    assert_eq!(forced.status.code(), Some(1));
    let text = stderr(&forced);
    let errors: Vec<&str> = text.lines().filter(|l| l.starts_with("ERROR: ")).collect();
    assert_eq!(errors.len(), 1, "{text}");
    assert!(errors[0].contains(&format!("no container engine answers at {host}")), "{text}");
    assert!(errors[0].contains("start Docker (or `podman system service`), or set DOCKER_HOST"), "{text}");
}

#[test]
fn an_engine_too_old_is_one_clear_error_naming_it() {
    let env = Env::with_test_images();
    let config = example_config(&env, "");
    let socket = cnbx_testkit::engines::fake_version_socket(
        env.work.path(),
        r#"{"Version":"1.11.2","ApiVersion":"1.23","MinAPIVersion":"1.12"}"#,
    );
    let out = cnbx_at(&env, &format!("unix://{}", socket.display()), &example_args(&config, "cnbx.test/old:1"));
    assert_eq!(out.status.code(), Some(1));
    let text = stderr(&out);
    let errors: Vec<&str> = text.lines().filter(|l| l.starts_with("ERROR: ")).collect();
    assert_eq!(
        errors,
        [format!(
            "ERROR: asking the container engine, where bare image names are (--local store uses the cnbx store): the \
             Docker daemon at unix://{} speaks Engine API 1.23, older than 1.24, the oldest cnbx uses; upgrade the \
             engine",
            socket.display()
        )],
        "{text}"
    );
}

#[test]
fn permission_denied_on_the_socket_is_one_clear_error_naming_it() {
    let root = std::process::Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    if !root && !engines::engines_required() {
        eprintln!("skipping: needs root to run cnbx as another user");
        return;
    }
    // cnbx runs as `nobody`, which may not write to a socket root made (mode 0755).
    let dir = tempfile::tempdir().unwrap();
    let open = |p: &Path| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(p).unwrap();
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o777)).unwrap();
    };
    open(dir.path());
    let (home, pack) = (dir.path().join("home"), dir.path().join("pack"));
    open(&home);
    open(&pack);
    let socket = cnbx_testkit::engines::fake_version_socket(dir.path(), r#"{"Version":"20.10","ApiVersion":"1.41"}"#);
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(assert_cmd::cargo::cargo_bin("cnbx"))
        .args(["builder", "inspect", "cnbx.test/any:1"])
        .env("CNBX_HOME", &home)
        .env("PACK_HOME", &pack)
        .env("DOCKER_HOST", format!("unix://{}", socket.display()))
        .env_remove("DOCKER_CONTEXT")
        .env_remove("CNBX_LOCAL")
        .current_dir(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{text}");
    let errors: Vec<&str> = text.lines().filter(|l| l.starts_with("ERROR: ")).collect();
    assert_eq!(errors.len(), 1, "{text}");
    assert!(
        errors[0].contains(&format!(
            "permission denied on the container engine's socket unix://{}; add your user to the group that owns it",
            socket.display()
        )),
        "{text}"
    );
    assert!(errors[0].contains("--local store uses the cnbx store"), "{text}");
}

#[test]
fn an_engine_that_drops_the_load_leaves_the_tag_where_it_was() {
    for engine in engines::all() {
        let env = Env::with_test_images();
        let config = example_config(&env, "");
        let name = format!("cnbx.test/{}-dropped:1", kind(engine));
        assert_ok(&env, &cnbx(&env, engine, &example_args(&config, &name)));
        let old = engine.inspect(&name).unwrap()["Id"].clone();

        let proxy = FaultProxy::start_unix(engine.socket()).unwrap();
        proxy.add(Rule::new("POST", "/images/load", Fault::DropAfter(16 * 1024)));
        let host = format!("tcp://{}", proxy.host());
        let out = cnbx_at(&env, &host, &[&example_args(&config, &name)[..], &["--label", "io.cnbx.test=new"]].concat());
        assert_eq!(out.status.code(), Some(1), "{}", env.format(&out));
        let text = stderr(&out);
        let errors: Vec<&str> = text.lines().filter(|l| l.starts_with("ERROR: ")).collect();
        assert_eq!(errors.len(), 1, "{text}");
        let engine_name = match engine.kind() {
            Kind::Docker => "the Docker daemon",
            Kind::Podman => "Podman",
        };
        assert!(errors[0].contains(&format!("{engine_name} at {host}")), "{text}");
        assert!(
            errors[0].contains("check that the engine is still running")
                || errors[0].contains("could not load the image"),
            "{text}"
        );
        assert_eq!(proxy.injected(), 1);
        assert_eq!(engine.inspect(&name).unwrap()["Id"], old, "the tag moved");
    }
}

#[test]
fn an_interrupted_load_leaves_the_tag_where_it_was() {
    let Some(engine) = engines::docker() else { return };
    let env = Env::with_test_images();
    let config = example_config(&env, "");
    let name = "cnbx.test/interrupted:1";
    assert_ok(&env, &cnbx(&env, engine, &example_args(&config, name)));
    let old = engine.inspect(name).unwrap()["Id"].clone();
    // The image ID the interrupted create would give (the dry run computes it).
    let label = ["--label", "io.cnbx.test=interrupted"];
    let dry =
        cnbx(&env, engine, &[&example_args(&config, name)[..], &label, &["--dry-run", "--output", "json"]].concat());
    assert_ok(&env, &dry);
    let report: serde_json::Value = serde_json::from_slice(&dry.stdout).unwrap();
    let new_id = report["digest"].as_str().unwrap().to_owned();
    assert_ne!(old, new_id.as_str());

    let proxy = FaultProxy::start_unix(engine.socket()).unwrap();
    proxy.add(Rule::new("POST", "/images/load", Fault::StallAfter(8 * 1024)));
    let child = env
        .std_cmd()
        .env("DOCKER_HOST", format!("tcp://{}", proxy.host()))
        .env_remove("CNBX_LOCAL")
        .args(example_args(&config, name))
        .args(label)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while proxy.injected() == 0 {
        assert!(std::time::Instant::now() < deadline, "the load never started");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let pid = child.id().to_string();
    assert!(std::process::Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", env.format(&out));
    assert!(stderr(&out).contains("ERROR: interrupted"), "{}", stderr(&out));
    drop(proxy);
    assert_eq!(engine.inspect(name).unwrap()["Id"], old, "the tag moved");
    assert!(!engine.has_image(&new_id), "the interrupted image is there");
}

#[test]
fn concurrent_creates_into_one_engine_all_land() {
    for engine in engines::all() {
        let env = Env::with_test_images();
        let config = example_config(&env, "");
        let names: Vec<String> = (0..3).map(|i| format!("cnbx.test/{}-concurrent:{i}", kind(engine))).collect();
        let children: Vec<_> = names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                env.std_cmd()
                    .env("DOCKER_HOST", engine.host())
                    .env_remove("CNBX_LOCAL")
                    .args(example_args(&config, name))
                    .args(["--label", &format!("io.cnbx.test.n={i}")])
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().unwrap();
            assert_ok(&env, &out);
        }
        for (i, name) in names.iter().enumerate() {
            let inspected = engine.inspect(name).unwrap();
            assert_eq!(inspected["Config"]["Labels"]["io.cnbx.test.n"], i.to_string(), "{name}");
            assert_eq!(inspected["RootFS"]["Layers"].as_array().unwrap().len(), 12, "{name}");
        }
    }
}

/// An OCI layout `dir` holding, as `base`, the test store's build image with a static
/// busybox added (`/bin/busybox`, `/bin/sh`), so that containers of it can run a script.
fn busybox_build_image(env: &Env, name: &str) -> PathBuf {
    cnbx_testkit::require_tool("/bin/busybox", "busybox-static").unwrap();
    let dir = images::layout(env, "build", name, "amd64", &[]);
    let rootfs = env.work.path().join("busybox-rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", rootfs.join("bin/sh")).unwrap();
    cnbx_testkit::umoci(&["insert", "--image", &format!("{}:base", dir.display()), rootfs.to_str().unwrap(), "/"])
        .unwrap();
    dir
}

#[test]
fn the_builder_runs_in_the_engine_as_its_own_user_with_what_a_build_needs() {
    let Some(engine) = engines::docker() else { return };
    let env = Env::with_test_images();
    let layout = busybox_build_image(&env, "busybox");
    let text = std::fs::read_to_string(example_config(&env, "")).unwrap();
    let config = env
        .write("run.toml", &text.replace("\"cnbx.test/build:jammy\"", &format!("\"oci:{}:base\"", layout.display())));
    let name = "cnbx.test/runs:1";
    assert_ok(&env, &cnbx(&env, engine, &example_args(&config, name)));
    // What a build needs of the builder, checked by its own user inside a container.
    let script = r#"
set -e
b=/bin/busybox
test "$($b id -u)" = "$CNB_USER_ID"
test "$($b id -g)" = "$CNB_GROUP_ID"
test -r /cnb/order.toml && test -r /cnb/stack.toml && test -r /cnb/run.toml
n=0
for f in /cnb/buildpacks/*/*/bin/*; do test -x "$f"; n=$((n+1)); done
test "$n" -gt 0
for p in detector analyzer restorer builder exporter creator launcher; do test -x /cnb/lifecycle/$p; done
$b touch /layers/probe /workspace/probe
$b rm /layers/probe /workspace/probe
echo "build user $($b id -u): $n buildpack executables, lifecycle phases executable, /layers and /workspace writable"
"#;
    let out = engine.docker(&["run", "--rm", "--network", "none", name, "/bin/sh", "-c", script]).unwrap();
    assert!(out.starts_with("build user 1000: "), "{out}");
}

#[test]
fn docker_save_of_the_engines_builder_reads_back_as_an_input() {
    let Some(engine) = engines::docker() else { return };
    let env = Env::with_test_images();
    let config = example_config(&env, "");
    let name = "cnbx.test/saved:1";
    assert_ok(&env, &cnbx(&env, engine, &example_args(&config, name)));
    let saved = env.work.path().join("saved.tar");
    engine.docker(&["save", "-o", saved.to_str().unwrap(), name]).unwrap();
    let spelled = format!("docker-archive:{}", saved.display());
    let out = env.cmd().args(["builder", "inspect", &spelled]).output().unwrap();
    assert_ok(&env, &out);
    let from_engine = cnbx(&env, engine, &["builder", "inspect", name]);
    assert_eq!(local_section(&stdout(&out)), local_section(&stdout(&from_engine)));
}
