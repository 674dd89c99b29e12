//! Real container engines for the tests, started by the tests: Debian's `dockerd` (20.10) and
//! Podman's Docker-compatible service, each with its own storage (vfs) and run directories
//! under a temporary directory and its own Unix socket there, so that nothing of the
//! machine's own engines or images is touched.
//!
//! * [`docker`] and [`podman`] give an engine shared by every test of one test binary
//!   (started on first use: dockerd takes about 3 s); [`Engine::start`] a test's own.
//! * Each engine runs under a small shell wrapper that holds a pipe from the test process:
//!   when the test process ends (or the [`Engine`] is dropped), the pipe closes and the
//!   wrapper stops the engine (`SIGTERM`, then `SIGKILL` after 10 s) and removes its
//!   directory. Statics are never dropped, so this is how the shared engines are cleaned up.
//! * Engines need root. When the process is not root or a binary is missing, the helpers
//!   return `None` after printing why the test is skipped, except under CI (`CI` set and not
//!   empty or `false`) or with `CNBX_REQUIRE_ENGINES=1`, where that is an error: CI must run
//!   the engine tests, not skip them.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Where Debian's `docker.io` installs the daemon.
pub const DOCKERD: &str = "/usr/sbin/dockerd";

/// Which engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `dockerd`.
    Docker,
    /// `podman system service`.
    Podman,
}

/// A running engine (see the module docs).
pub struct Engine {
    kind: Kind,
    dir: PathBuf,
    socket: PathBuf,
    wrapper: Mutex<Option<(Child, ChildStdin)>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("kind", &self.kind).field("socket", &self.socket).finish()
    }
}

/// Whether missing engines fail the tests instead of skipping them.
pub fn engines_required() -> bool {
    let ci = std::env::var("CI").map(|v| !v.is_empty() && v != "false" && v != "0").unwrap_or(false);
    ci || std::env::var("CNBX_REQUIRE_ENGINES").is_ok_and(|v| v == "1")
}

/// Why engines cannot run here, if they cannot.
fn unavailable(kind: Kind) -> Option<String> {
    if !is_root() {
        return Some("container engines need root".into());
    }
    let (binary, package) = match kind {
        Kind::Docker => (DOCKERD, "docker.io"),
        Kind::Podman => ("/usr/bin/podman", "podman"),
    };
    if !Path::new(binary).is_file() {
        return Some(format!("{binary} is missing (`make test` installs it, or `apt-get install -y {package}`)"));
    }
    None
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

static DOCKER: OnceLock<Result<Engine, String>> = OnceLock::new();
static PODMAN: OnceLock<Result<Engine, String>> = OnceLock::new();

/// The Docker daemon shared by this test binary, or `None` (after printing why) when it
/// cannot run here and [`engines_required`] is false. Panics when it is required and cannot
/// run, or fails to start.
pub fn docker() -> Option<&'static Engine> {
    shared(&DOCKER, Kind::Docker)
}

/// Podman's service shared by this test binary; see [`docker`].
pub fn podman() -> Option<&'static Engine> {
    shared(&PODMAN, Kind::Podman)
}

/// Both engines, for tests that run the same checks against each.
pub fn all() -> Vec<&'static Engine> {
    [docker(), podman()].into_iter().flatten().collect()
}

fn shared(cell: &'static OnceLock<Result<Engine, String>>, kind: Kind) -> Option<&'static Engine> {
    let started = cell.get_or_init(|| match unavailable(kind) {
        Some(why) => Err(why),
        None => Engine::start(kind).map_err(|e| format!("{e:#}")),
    });
    match started {
        Ok(engine) => Some(engine),
        Err(why) if unavailable(kind).is_some() && !engines_required() => {
            eprintln!("skipping the {kind:?} engine test: {why} (CI and CNBX_REQUIRE_ENGINES=1 make this an error)");
            None
        }
        Err(why) => panic!("the {kind:?} engine is required here but cannot run: {why}"),
    }
}

/// The shell wrapper: runs the engine, waits for its stdin to close, then stops the engine
/// and removes the directory (`$1`).
const WRAPPER: &str = r#"
dir=$1; shift
"$@" >"$dir/engine.log" 2>&1 </dev/null &
pid=$!
echo "$pid" >"$dir/engine.pid"
read -r _ || true
kill -TERM "$pid" 2>/dev/null
i=0
while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
kill -KILL "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
# dockerd mounts its data root on itself (and may leave it mounted when killed).
awk -v d="$dir/" 'index($2, d) == 1 { print $2 }' /proc/self/mounts | sort -r | while read -r m; do
  umount -l "$m" 2>/dev/null
done
rm -rf "$dir"
"#;

impl Engine {
    /// Starts an engine of its own for one test (stopped and removed when dropped).
    pub fn start(kind: Kind) -> Result<Self> {
        Self::start_with(kind, &[])
    }

    /// Starts an engine with extra arguments (dockerd: `-H tcp://...` and TLS flags, say).
    pub fn start_with(kind: Kind, extra: &[String]) -> Result<Self> {
        if let Some(why) = unavailable(kind) {
            bail!("cannot start the {kind:?} engine: {why}");
        }
        let dir = tempfile::Builder::new().prefix("cnbx-engine-").tempdir()?.keep();
        let (socket, args) = match kind {
            Kind::Docker => {
                let socket = dir.join("docker.sock");
                let mut args: Vec<String> = vec![
                    DOCKERD.into(),
                    "--storage-driver=vfs".into(),
                    "--iptables=false".into(),
                    "--ip6tables=false".into(),
                    "--bridge=none".into(),
                    format!("--data-root={}", dir.join("data").display()),
                    format!("--exec-root={}", dir.join("exec").display()),
                    format!("--pidfile={}", dir.join("docker.pid").display()),
                    "-H".into(),
                    format!("unix://{}", socket.display()),
                ];
                args.extend(extra.iter().cloned());
                (socket, args)
            }
            Kind::Podman => {
                let socket = dir.join("podman.sock");
                for d in ["root", "run", "tmp"] {
                    std::fs::create_dir_all(dir.join(d))?;
                }
                let mut args: Vec<String> = vec![
                    "/usr/bin/podman".into(),
                    format!("--root={}", dir.join("root").display()),
                    format!("--runroot={}", dir.join("run").display()),
                    "--storage-driver=vfs".into(),
                    format!("--tmpdir={}", dir.join("tmp").display()),
                    "--cgroup-manager=cgroupfs".into(),
                    "--events-backend=file".into(),
                ];
                args.extend(extra.iter().cloned());
                args.extend([
                    "system".into(),
                    "service".into(),
                    "--time=0".into(),
                    format!("unix://{}", socket.display()),
                ]);
                (socket, args)
            }
        };
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(WRAPPER)
            .arg("cnbx-engine")
            .arg(&dir)
            .args(&args)
            // Podman writes an upload being loaded under TMPDIR: keep it in the engine's directory.
            .env("TMPDIR", dir.join("tmp"))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting the {kind:?} engine"))?;
        let stdin = child.stdin.take().context("the wrapper's stdin")?;
        std::fs::create_dir_all(dir.join("tmp"))?;
        let engine = Self { kind, dir, socket, wrapper: Mutex::new(Some((child, stdin))) };
        engine.wait_ready(Duration::from_secs(60))?;
        Ok(engine)
    }

    fn wait_ready(&self, within: Duration) -> Result<()> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok((200, _)) = self.get("/_ping") {
                return Ok(());
            }
            if let Some((child, _)) = self.wrapper.lock().unwrap().as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                bail!("the {:?} engine exited early ({status}); its log:\n{}", self.kind, self.log());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!("the {:?} engine did not answer within {within:?}; its log:\n{}", self.kind, self.log())
    }

    /// Which engine.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Its socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// `unix://<socket>`, for `DOCKER_HOST`.
    pub fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// Its directory (storage, run directories, log).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The engine's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("engine.log")).unwrap_or_default()
    }

    /// `GET path` on the socket (HTTP/1.0): the status and the body.
    pub fn get(&self, path: &str) -> Result<(u16, String)> {
        let mut s = UnixStream::connect(&self.socket)?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf)?;
        let text = String::from_utf8_lossy(&buf).into_owned();
        let code = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).context("malformed HTTP answer")?;
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
        Ok((code, body))
    }

    /// Runs the `docker` CLI against this engine (both engines speak its API); its stdout.
    pub fn docker(&self, args: &[&str]) -> Result<String> {
        crate::require_tool("docker", "docker.io")?;
        let out = Command::new("docker")
            .args(args)
            .env("DOCKER_HOST", self.host())
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_TLS_VERIFY")
            .output()
            .context("running docker")?;
        if !out.status.success() {
            bail!(
                "`docker {}` against the {:?} engine failed ({}):\n{}{}",
                args.join(" "),
                self.kind,
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8(out.stdout)?)
    }

    /// `docker image inspect NAME`, parsed (the first and only element).
    pub fn inspect(&self, name: &str) -> Result<serde_json::Value> {
        let out = self.docker(&["image", "inspect", name])?;
        let mut v: serde_json::Value = serde_json::from_str(&out)?;
        v.get_mut(0).map(serde_json::Value::take).context("docker image inspect printed no image")
    }

    /// Whether the engine has an image `name`.
    pub fn has_image(&self, name: &str) -> bool {
        self.docker(&["image", "inspect", name]).is_ok()
    }

    /// `docker load -i FILE`.
    pub fn load_file(&self, file: &Path) -> Result<String> {
        self.docker(&["load", "-i", &file.to_string_lossy()])
    }

    /// Stops the engine at once (`SIGKILL` to the engine itself, as a crash would), leaving
    /// its directory until the [`Engine`] is dropped.
    pub fn kill(&self) -> Result<()> {
        let pid = std::fs::read_to_string(self.dir.join("engine.pid"))?;
        let pid = pid.trim();
        anyhow::ensure!(!pid.is_empty(), "no pid for the {:?} engine", self.kind);
        let status = Command::new("kill").args(["-KILL", pid]).status()?;
        anyhow::ensure!(status.success(), "kill -KILL {pid} failed");
        Ok(())
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        if let Some((mut child, stdin)) = self.wrapper.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take()
        {
            drop(stdin);
            let _ = child.wait();
        }
    }
}

/// A Unix socket `fake.sock` in `dir` that answers every request with `version` as an
/// engine's `GET /version` would (for engines too old or too new to be installed), served by
/// a thread for as long as the test process runs.
pub fn fake_version_socket(dir: &Path, version: &'static str) -> PathBuf {
    use std::io::BufRead;
    let path = dir.join("fake.sock");
    let listener = std::os::unix::net::UnixListener::bind(&path).expect("binding the fake engine's socket");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let Ok(read_side) = stream.try_clone() else { return };
            let mut reader = std::io::BufReader::new(read_side);
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                line.clear();
            }
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{version}",
                version.len()
            );
        }
    });
    path
}
