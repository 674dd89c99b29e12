//! Test harness shared by cnbx's integration tests.
//!
//! * [`Registry`]: Debian's `docker-registry` (distribution 2.8) serving plain HTTP on a free
//!   loopback port, with its own storage directory, killed when dropped. Optionally with
//!   htpasswd basic auth.
//! * [`skopeo`], [`umoci`]: run the independent oracles and return their stdout.
//! * [`engines`]: Debian's `dockerd` and Podman's service, started by the tests with storage
//!   of their own (skipped where they cannot run, except under CI).
//!
//! The tools are required, not optional: a missing tool fails the test with the command to
//! install it, so a green run always means the real parts were exercised.

#![allow(clippy::print_stderr, clippy::unwrap_used)]
#![cfg_attr(not(test), warn(unused_crate_dependencies))]

pub mod engines;
pub mod faults;
pub mod hostile;
pub mod inputs;
pub mod oddtar;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// A running `docker-registry`.
pub struct Registry {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
    auth: Option<(String, String)>,
}

impl Registry {
    /// Starts an anonymous registry.
    pub fn start() -> Result<Self> {
        Self::start_inner(None)
    }

    /// Starts a registry that requires basic auth with `user`/`password` (needs `htpasswd`).
    pub fn start_with_basic_auth(user: &str, password: &str) -> Result<Self> {
        Self::start_inner(Some((user.to_owned(), password.to_owned())))
    }

    fn start_inner(auth: Option<(String, String)>) -> Result<Self> {
        require_tool("docker-registry", "docker-registry")?;
        let dir = tempfile::tempdir()?;
        let storage = dir.path().join("storage");
        std::fs::create_dir_all(&storage)?;
        let mut auth_yaml = String::new();
        if let Some((user, password)) = &auth {
            require_tool("htpasswd", "apache2-utils")?;
            let out = Command::new("htpasswd").args(["-Bbn", user, password]).output()?;
            if !out.status.success() {
                bail!("htpasswd failed: {}", String::from_utf8_lossy(&out.stderr));
            }
            let htpasswd = dir.path().join("htpasswd");
            std::fs::write(&htpasswd, &out.stdout)?;
            auth_yaml = format!("auth:\n  htpasswd:\n    realm: cnbx-test\n    path: {}\n", htpasswd.display());
        }
        // Several attempts: the port picked may be taken between probing and binding.
        let mut last_err = None;
        for _ in 0..5 {
            let port = free_port()?;
            let config = dir.path().join("config.yml");
            std::fs::write(
                &config,
                format!(
                    "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{auth_yaml}",
                    storage.display()
                ),
            )?;
            let log = std::fs::File::create(dir.path().join("registry.log"))?;
            let access = std::fs::File::create(dir.path().join("access.log"))?;
            let mut child = Command::new("docker-registry")
                .arg("serve")
                .arg(&config)
                .stdout(access)
                .stderr(log)
                .spawn()
                .context("starting docker-registry")?;
            match wait_ready(port, &mut child) {
                Ok(()) => return Ok(Self { child, port, dir, auth }),
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    last_err = Some(e);
                }
            }
        }
        let log = std::fs::read_to_string(dir.path().join("registry.log")).unwrap_or_default();
        Err(last_err.unwrap().context(format!("docker-registry did not start; its log:\n{log}")))
    }

    /// `127.0.0.1:<port>`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Storage directory (to count blobs, for example).
    pub fn storage(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// The registry's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// The registry's access log so far (one line per request, Apache combined format).
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default()
    }

    /// `docker://127.0.0.1:<port>/<repo>` for skopeo.
    pub fn docker_ref(&self, repo_and_tag: &str) -> String {
        format!("docker://{}/{}", self.host(), repo_and_tag)
    }

    /// Skopeo arguments for this registry (TLS off, credentials if any) for `inspect`.
    pub fn skopeo_flags(&self) -> Vec<String> {
        let mut v = vec!["--tls-verify=false".to_owned()];
        if let Some((u, p)) = &self.auth {
            v.push(format!("--creds={u}:{p}"));
        }
        v
    }

    /// Number of blobs stored in the registry (all repositories share one blob store).
    pub fn blob_count(&self) -> usize {
        let root = self.storage().join("docker/registry/v2/blobs/sha256");
        let Ok(prefixes) = std::fs::read_dir(root) else { return 0 };
        prefixes.filter_map(Result::ok).filter_map(|p| std::fs::read_dir(p.path()).ok()).map(Iterator::count).sum()
    }

    /// `GET` a path on the registry and return (status, body). Anonymous.
    pub fn get(&self, path: &str) -> Result<(u16, String)> {
        http_get(self.port, path)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

fn wait_ready(port: u16, child: &mut Child) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait()? {
            bail!("docker-registry exited early with {status}");
        }
        if let Ok((code, _)) = http_get(port, "/v2/")
            && (code == 200 || code == 401)
        {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("docker-registry on port {port} not ready after 15s")
}

fn http_get(port: u16, path: &str) -> Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n")?;
    let mut buf = String::new();
    s.read_to_string(&mut buf)?;
    let code = buf.split_whitespace().nth(1).and_then(|c| c.parse().ok()).context("malformed HTTP response")?;
    let body = buf.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    Ok((code, body))
}

/// Fails with an install hint when `tool` is not on `PATH`.
pub fn require_tool(tool: &str, package: &str) -> Result<()> {
    let found =
        std::env::var_os("PATH").map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file())).unwrap_or(false);
    if !found {
        bail!("`{tool}` is required by this test; `make test` installs it, or run `apt-get install -y {package}`");
    }
    Ok(())
}

fn run(tool: &str, package: &str, args: &[&str]) -> Result<Output> {
    require_tool(tool, package)?;
    let out = Command::new(tool).args(args).output().with_context(|| format!("running {tool}"))?;
    if !out.status.success() {
        bail!(
            "`{tool} {}` failed ({}):\n{}{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(out)
}

/// Runs `skopeo ARGS`, returning stdout; fails with stderr on a non-zero exit.
pub fn skopeo(args: &[&str]) -> Result<String> {
    Ok(String::from_utf8(run("skopeo", "skopeo", args)?.stdout)?)
}

/// Runs `umoci ARGS`, returning stdout; fails with stderr on a non-zero exit.
pub fn umoci(args: &[&str]) -> Result<String> {
    Ok(String::from_utf8(run("umoci", "umoci", args)?.stdout)?)
}

/// `skopeo inspect --raw` of `reference`, parsed.
pub fn skopeo_raw(reference: &str, extra: &[&str]) -> Result<serde_json::Value> {
    let mut args = vec!["inspect", "--raw"];
    args.extend_from_slice(extra);
    args.push(reference);
    Ok(serde_json::from_str(&skopeo(&args)?)?)
}

/// `skopeo inspect --config` of `reference`, parsed.
pub fn skopeo_config(reference: &str, extra: &[&str]) -> Result<serde_json::Value> {
    let mut args = vec!["inspect", "--config"];
    args.extend_from_slice(extra);
    args.push(reference);
    Ok(serde_json::from_str(&skopeo(&args)?)?)
}

/// Unpacks `oci:<layout>:<tag>` with umoci into `<dest>` (rootless) and returns the rootfs path.
pub fn umoci_unpack(layout: &Path, tag: &str, dest: &Path) -> Result<PathBuf> {
    let image = format!("{}:{tag}", layout.display());
    let dest_s = dest.to_string_lossy().into_owned();
    run("umoci", "umoci", &["unpack", "--rootless", "--image", &image, &dest_s])?;
    Ok(dest.join("rootfs"))
}

/// Lists a (possibly gzipped) tar's entries as `tar -tvf` would print them.
pub fn tar_listing(path: &Path) -> Result<String> {
    let out = run("tar", "tar", &["--numeric-owner", "-tvf", &path.to_string_lossy()])?;
    Ok(String::from_utf8(out.stdout)?)
}

/// The workspace root (for `testdata/`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).ancestors().nth(2).unwrap().to_path_buf()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_starts_serves_and_stops() {
        let reg = Registry::start().unwrap();
        let (code, body) = reg.get("/v2/").unwrap();
        assert_eq!(code, 200);
        assert_eq!(body.trim(), "{}");
        let port = reg.port();
        drop(reg);
        assert!(http_get(port, "/v2/").is_err(), "registry still answering after drop");
    }

    #[test]
    fn auth_registry_rejects_anonymous() {
        let reg = Registry::start_with_basic_auth("tester", "s3cret").unwrap();
        let (code, _) = reg.get("/v2/").unwrap();
        assert_eq!(code, 401);
    }
}
