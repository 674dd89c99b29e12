//! Fault injection between cnbx and a real registry (or a real container engine, behind its
//! Unix socket: [`FaultProxy::start_unix`]): a loopback HTTP/1.1 proxy that forwards every
//! request upstream, except those a [`Rule`] picks, which it answers with an error status,
//! cuts off part-way through their body, or lets stall.
//!
//! The proxy reads requests (head and body framing: `Content-Length` or chunked) and passes
//! responses through as they come. HTTP/1.1 clients send a request on a connection only
//! after the previous response, so the proxy can answer a request itself. The registry
//! builds upload URLs from the `Host` header, so a client that was given the proxy's address
//! keeps talking to the proxy.
//!
//! ```no_run
//! # fn f() -> anyhow::Result<()> {
//! use cnbx_testkit::faults::{Fault, FaultProxy, Rule};
//! let registry = cnbx_testkit::Registry::start()?;
//! let proxy = FaultProxy::start(registry.port())?;
//! // Every blob upload of more than 1 MiB is cut off after 64 KiB.
//! proxy.add(Rule::new("PUT", "/blobs/uploads/", Fault::DropAfter(64 * 1024)).min_body(1 << 20));
//! # Ok(()) }
//! ```

use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result};

/// What happens to a request a [`Rule`] picks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The proxy answers with this status (and `Connection: close`) after reading the body;
    /// the registry never sees the request.
    Status(u16),
    /// The head and this many bytes of the body are forwarded, then both connections are
    /// closed: a connection dropped mid-upload.
    DropAfter(u64),
    /// The head and this many bytes of the body are forwarded, then nothing more is read,
    /// and nothing is answered (the registry's answer is held back), until the proxy is
    /// dropped: a stalled connection.
    StallAfter(u64),
}

/// Which requests get a [`Fault`], and how many times.
#[derive(Debug, Clone)]
pub struct Rule {
    method: String,
    path_contains: String,
    min_body: u64,
    fault: Fault,
    times: usize,
}

impl Rule {
    /// Requests with `method` (`GET`, `HEAD`, `PUT`, `PATCH`, `POST`, or `*` for any) whose
    /// path contains `path_contains` get `fault`, every time (see [`Rule::times`]).
    pub fn new(method: &str, path_contains: &str, fault: Fault) -> Self {
        Self {
            method: method.to_owned(),
            path_contains: path_contains.to_owned(),
            min_body: 0,
            fault,
            times: usize::MAX,
        }
    }

    /// Only requests whose body has at least `bytes` bytes.
    pub fn min_body(mut self, bytes: u64) -> Self {
        self.min_body = bytes;
        self
    }

    /// Only the first `n` requests that match.
    pub fn times(mut self, n: usize) -> Self {
        self.times = n;
        self
    }

    fn matches(&self, head: &RequestHead) -> bool {
        self.times > 0
            && (self.method == "*" || self.method.eq_ignore_ascii_case(&head.method))
            && head.path.contains(&self.path_contains)
            && head.content_length.unwrap_or(0) >= self.min_body
    }
}

struct State {
    rules: Mutex<Vec<Rule>>,
    injected: AtomicUsize,
    stop: AtomicBool,
}

/// Where the proxy forwards to.
#[derive(Debug, Clone)]
enum Upstream {
    Tcp(u16),
    Unix(std::path::PathBuf),
}

/// A connection upstream.
enum Conn {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Conn {
    fn connect(upstream: &Upstream) -> std::io::Result<Self> {
        match upstream {
            Upstream::Tcp(port) => TcpStream::connect(("127.0.0.1", *port)).map(Self::Tcp),
            Upstream::Unix(path) => UnixStream::connect(path).map(Self::Unix),
        }
    }

    fn try_clone(&self) -> std::io::Result<Self> {
        match self {
            Self::Tcp(s) => s.try_clone().map(Self::Tcp),
            Self::Unix(s) => s.try_clone().map(Self::Unix),
        }
    }

    fn shutdown(&self, how: Shutdown) -> std::io::Result<()> {
        match self {
            Self::Tcp(s) => s.shutdown(how),
            Self::Unix(s) => s.shutdown(how),
        }
    }
}

impl std::io::Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Self::Tcp(s) => s.read(buf),
            Self::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Self::Tcp(s) => s.write(buf),
            Self::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Self::Tcp(s) => s.flush(),
            Self::Unix(s) => s.flush(),
        }
    }
}

/// The proxy; it stops (closing every connection, stalled ones included) when dropped.
pub struct FaultProxy {
    port: u16,
    state: Arc<State>,
    accept: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// Starts a proxy on a free loopback port in front of the registry on `upstream_port`.
    pub fn start(upstream_port: u16) -> Result<Self> {
        Self::start_to(Upstream::Tcp(upstream_port))
    }

    /// Starts a proxy on a free loopback port in front of the server on the Unix socket
    /// `socket` (a container engine: point `DOCKER_HOST` at `tcp://` and [`FaultProxy::host`]).
    pub fn start_unix(socket: &std::path::Path) -> Result<Self> {
        Self::start_to(Upstream::Unix(socket.to_path_buf()))
    }

    fn start_to(upstream: Upstream) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").context("binding the proxy")?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let state = Arc::new(State {
            rules: Mutex::new(Vec::new()),
            injected: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
        });
        let accept_state = Arc::clone(&state);
        let accept = std::thread::spawn(move || {
            while !accept_state.stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let (state, upstream) = (Arc::clone(&accept_state), upstream.clone());
                        std::thread::spawn(move || {
                            let _ = client.set_nonblocking(false);
                            let _ = serve(client, &upstream, &state);
                        });
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    Err(_) => break,
                }
            }
        });
        Ok(Self { port, state, accept: Some(accept) })
    }

    /// `127.0.0.1:<port>` (a loopback registry, so cnbx speaks plain HTTP to it).
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Adds a rule (the first matching rule applies).
    pub fn add(&self, rule: Rule) {
        self.state.rules.lock().unwrap().push(rule);
    }

    /// Removes every rule: from now on everything is forwarded.
    pub fn clear(&self) {
        self.state.rules.lock().unwrap().clear();
    }

    /// How many faults were injected so far.
    pub fn injected(&self) -> usize {
        self.state.injected.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

struct RequestHead {
    raw: Vec<u8>,
    method: String,
    path: String,
    content_length: Option<u64>,
    chunked: bool,
}

/// Reads a request head (up to the empty line); `None` at the end of the connection.
fn read_head(reader: &mut impl BufRead) -> Result<Option<RequestHead>> {
    let mut raw = Vec::new();
    loop {
        let before = raw.len();
        let n = reader.read_until(b'\n', &mut raw)?;
        if n == 0 {
            return Ok(None);
        }
        if raw.len() > 64 * 1024 {
            anyhow::bail!("request head too long");
        }
        if &raw[before..] == b"\r\n" || &raw[before..] == b"\n" {
            break;
        }
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    let mut lines = text.lines();
    let mut first = lines.next().unwrap_or_default().split_whitespace();
    let method = first.next().unwrap_or_default().to_owned();
    let path = first.next().unwrap_or_default().to_owned();
    let mut content_length = None;
    let mut chunked = false;
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
            if name == "content-length" {
                content_length = value.parse().ok();
            } else if name == "transfer-encoding" && value.to_ascii_lowercase().contains("chunked") {
                chunked = true;
            }
        }
    }
    Ok(Some(RequestHead { raw, method, path, content_length, chunked }))
}

/// Copies up to `limit` bytes of a request body (framed by `head`) from `from` to `to`
/// (`None`: drops them). Returns whether the whole body was copied.
fn copy_body(head: &RequestHead, from: &mut impl BufRead, mut to: Option<&mut Conn>, limit: u64) -> Result<bool> {
    let mut sent = 0u64;
    let mut send = |bytes: &[u8], to: &mut Option<&mut Conn>| -> Result<bool> {
        let room = usize::try_from(limit.saturating_sub(sent)).unwrap_or(usize::MAX).min(bytes.len());
        if let Some(to) = to.as_deref_mut() {
            to.write_all(&bytes[..room])?;
        }
        sent += room as u64;
        Ok(room == bytes.len())
    };
    if head.chunked {
        loop {
            let mut line = Vec::new();
            from.read_until(b'\n', &mut line)?;
            let size = u64::from_str_radix(String::from_utf8_lossy(&line).trim().split(';').next().unwrap_or("0"), 16)?;
            if !send(&line, &mut to)? {
                return Ok(false);
            }
            let mut data = vec![0u8; usize::try_from(size)? + 2];
            from.read_exact(&mut data)?;
            if !send(&data, &mut to)? {
                return Ok(false);
            }
            if size == 0 {
                return Ok(true);
            }
        }
    }
    let mut left = head.content_length.unwrap_or(0);
    let mut buf = vec![0u8; 64 * 1024];
    while left > 0 {
        let want = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
        let n = from.read(&mut buf[..want])?;
        if n == 0 {
            anyhow::bail!("the client closed the connection mid-body");
        }
        left -= n as u64;
        if !send(&buf[..n], &mut to)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// One client connection: requests forwarded (or faulted) one after the other, responses
/// passed through by a second thread.
fn serve(client: TcpStream, upstream: &Upstream, state: &State) -> Result<()> {
    let mut upstream = Conn::connect(upstream)?;
    let mut to_client = client.try_clone()?;
    let mut from_upstream = upstream.try_clone()?;
    // Set when a request stalls: the registry's answer to it is not passed on.
    let muted = Arc::new(AtomicBool::new(false));
    let responses = std::thread::spawn({
        let muted = Arc::clone(&muted);
        move || {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match std::io::Read::read(&mut from_upstream, &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) if !muted.load(Ordering::SeqCst) => {
                        if to_client.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    Ok(_) => {}
                }
            }
            let _ = to_client.shutdown(Shutdown::Write);
        }
    });
    let mut reader = BufReader::new(client.try_clone()?);
    let close = |client: &TcpStream, upstream: &Conn| {
        let _ = client.shutdown(Shutdown::Both);
        let _ = upstream.shutdown(Shutdown::Both);
    };
    while let Some(head) = read_head(&mut reader)? {
        let fault = {
            let mut rules = state.rules.lock().unwrap();
            rules.iter_mut().find(|r| r.matches(&head)).map(|r| {
                r.times -= 1;
                r.fault
            })
        };
        if fault.is_some() {
            state.injected.fetch_add(1, Ordering::SeqCst);
        }
        match fault {
            None => {
                upstream.write_all(&head.raw)?;
                copy_body(&head, &mut reader, Some(&mut upstream), u64::MAX)?;
            }
            Some(Fault::Status(code)) => {
                copy_body(&head, &mut reader, None, u64::MAX)?;
                let mut c = client.try_clone()?;
                write!(c, "HTTP/1.1 {code} Injected fault\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
                c.flush()?;
                break;
            }
            Some(Fault::DropAfter(bytes)) => {
                upstream.write_all(&head.raw)?;
                copy_body(&head, &mut reader, Some(&mut upstream), bytes)?;
                break;
            }
            Some(Fault::StallAfter(bytes)) => {
                muted.store(true, Ordering::SeqCst);
                upstream.write_all(&head.raw)?;
                copy_body(&head, &mut reader, Some(&mut upstream), bytes)?;
                while !state.stop.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(20));
                }
                break;
            }
        }
    }
    close(&client, &upstream);
    let _ = responses.join();
    Ok(())
}
