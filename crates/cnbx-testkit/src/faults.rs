//! Fault injection between cnbx and a real registry (or a real container engine behind its
//! Unix socket: [`FaultProxy::start_unix`]): a loopback HTTP/1.1 proxy that forwards every
//! request upstream, except those a [`Rule`] picks, which it answers with an
//! error status or a [`Reply`] of its own (a redirect, an endless body), cuts off part-way
//! through their body, or lets stall (before the answer, or after its head and a few bytes).
//! And [`Peer`]: a server that records every connection and request that reaches it, to show
//! that cnbx sent nothing to a host it must not talk to.
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

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result};

/// What happens to a request a [`Rule`] picks.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// The request is forwarded, and the registry's answer passed on up to the end of its
    /// head and this many bytes of its body; then nothing more, until the proxy is dropped:
    /// a registry that answers and then stalls mid-body.
    StallAnswerAfter(u64),
    /// The proxy answers with this reply after reading the request's body; the registry
    /// never sees the request.
    Reply(Reply),
}

/// An answer the proxy (or a [`Peer`]) makes itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: ReplyBody,
}

/// The body of a [`Reply`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyBody {
    /// These bytes (with their `Content-Length`).
    Bytes(Vec<u8>),
    /// Spaces, without end (no `Content-Length`; the connection is closed when the client
    /// stops reading or the proxy is dropped), up to 256 MiB so that a client that reads
    /// it all still ends. Counted by [`FaultProxy::endless_sent`].
    Endless,
    /// These bytes, announced as 1 MiB more, and then nothing until the server is dropped.
    StallAfter(Vec<u8>),
    /// Nothing at all, not even a head, until the server is dropped.
    Silent,
}

impl Reply {
    /// A reply with `status` and an empty body.
    pub fn new(status: u16) -> Self {
        Self { status, headers: Vec::new(), body: ReplyBody::Bytes(Vec::new()) }
    }

    /// A reply with `status` whose body never ends.
    pub fn endless(status: u16) -> Self {
        Self { status, headers: Vec::new(), body: ReplyBody::Endless }
    }

    /// A reply that never comes: the request is read, and then nothing is sent.
    pub fn silent() -> Self {
        Self { status: 0, headers: Vec::new(), body: ReplyBody::Silent }
    }

    /// A reply with `status` whose head and `bytes` are sent, and then nothing more.
    pub fn stall_after(status: u16, bytes: impl Into<Vec<u8>>) -> Self {
        Self { status, headers: Vec::new(), body: ReplyBody::StallAfter(bytes.into()) }
    }

    /// A redirect (`status`, such as 302 or 307) to `location`.
    pub fn redirect(status: u16, location: &str) -> Self {
        Self::new(status).header("Location", location)
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.body = ReplyBody::Bytes(bytes.into());
        self
    }

    /// Writes the reply to `to`; endless bodies stop when `stop` is set or the client is gone.
    fn write(&self, to: &mut TcpStream, stop: &AtomicBool, sent: &AtomicU64) -> std::io::Result<()> {
        let wait_for_stop = || {
            while !stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(20));
            }
        };
        if self.body == ReplyBody::Silent {
            wait_for_stop();
            return Ok(());
        }
        let mut head = format!("HTTP/1.1 {} Injected\r\n", self.status);
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        match &self.body {
            ReplyBody::Bytes(bytes) => {
                head.push_str(&format!("Content-Length: {}\r\nConnection: close\r\n\r\n", bytes.len()));
                to.write_all(head.as_bytes())?;
                to.write_all(bytes)?;
            }
            ReplyBody::Endless => {
                head.push_str("Connection: close\r\n\r\n");
                to.write_all(head.as_bytes())?;
                let chunk = vec![b' '; 64 * 1024];
                let mut written = 0u64;
                while !stop.load(Ordering::SeqCst) && written < ENDLESS_CAP {
                    to.write_all(&chunk)?;
                    written += chunk.len() as u64;
                    sent.fetch_add(chunk.len() as u64, Ordering::SeqCst);
                }
            }
            ReplyBody::StallAfter(bytes) => {
                let announced = bytes.len() + (1 << 20);
                head.push_str(&format!("Content-Length: {announced}\r\n\r\n"));
                to.write_all(head.as_bytes())?;
                to.write_all(bytes)?;
                to.flush()?;
                wait_for_stop();
            }
            ReplyBody::Silent => {}
        }
        to.flush()
    }
}

/// The most an endless body sends (so that a test of a client that reads it whole ends).
const ENDLESS_CAP: u64 = 256 << 20;

/// Which requests get a [`Fault`], and how many times.
#[derive(Debug, Clone)]
pub struct Rule {
    method: String,
    path_contains: String,
    exact: bool,
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
            exact: false,
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

    /// Only requests whose path (without its query) is the rule's path, not merely contains
    /// it (`/v2/` alone, for example).
    pub fn exact(mut self) -> Self {
        self.exact = true;
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
            && if self.exact {
                head.path.split('?').next() == Some(self.path_contains.as_str())
            } else {
                head.path.contains(&self.path_contains)
            }
            && head.content_length.unwrap_or(0) >= self.min_body
    }
}

struct State {
    rules: Mutex<Vec<Rule>>,
    injected: AtomicUsize,
    stop: AtomicBool,
    /// Bytes of endless bodies written so far.
    endless_sent: AtomicU64,
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

impl Read for Conn {
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
            endless_sent: AtomicU64::new(0),
        });
        let accept_state = Arc::clone(&state);
        let accept = std::thread::spawn(move || {
            while !accept_state.stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let (state, upstream) = (Arc::clone(&accept_state), upstream.clone());
                        std::thread::spawn(move || {
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

    /// How many bytes of endless bodies ([`ReplyBody::Endless`]) the proxy could write so
    /// far: what the client read, plus what the sockets' buffers hold.
    pub fn endless_sent(&self) -> u64 {
        self.state.endless_sent.load(Ordering::SeqCst)
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

/// How much of the registry's answers the proxy passes on.
enum Gate {
    /// Everything.
    Open,
    /// Nothing (a stalled request: the answer is held back).
    Shut,
    /// The answer's head (`head_done` once its empty line was passed; `tail` holds the last
    /// bytes passed, to find it across reads), then `left` bytes of its body, then nothing.
    Head { head_done: bool, tail: Vec<u8>, left: u64 },
}

impl Gate {
    /// How many of `bytes` (the next bytes of the answer) may pass.
    fn admit(&mut self, bytes: &[u8]) -> usize {
        match self {
            Self::Open => bytes.len(),
            Self::Shut => 0,
            Self::Head { head_done, tail, left } => {
                let mut passed = 0;
                if !*head_done {
                    let before = tail.len();
                    tail.extend_from_slice(bytes);
                    match tail.windows(4).position(|w| w == b"\r\n\r\n") {
                        Some(at) => {
                            *head_done = true;
                            passed = at + 4 - before;
                        }
                        None => {
                            let keep = tail.len().saturating_sub(3);
                            tail.drain(..keep);
                            return bytes.len();
                        }
                    }
                }
                let body = usize::try_from(*left).unwrap_or(usize::MAX).min(bytes.len() - passed);
                *left -= body as u64;
                passed + body
            }
        }
    }
}

/// One client connection: requests forwarded (or faulted) one after the other, responses
/// passed through by a second thread.
fn serve(client: TcpStream, upstream: &Upstream, state: &State) -> Result<()> {
    let mut upstream = Conn::connect(upstream)?;
    let mut to_client = client.try_clone()?;
    let mut from_upstream = upstream.try_clone()?;
    // What of the registry's answers is passed on (a stalled request's answer is not).
    let gate = Arc::new(Mutex::new(Gate::Open));
    let responses = std::thread::spawn({
        let gate = Arc::clone(&gate);
        move || {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match std::io::Read::read(&mut from_upstream, &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let pass = gate.lock().unwrap().admit(&buf[..n]);
                        if to_client.write_all(&buf[..pass]).is_err() {
                            break;
                        }
                    }
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
    let wait_for_stop = || {
        while !state.stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    while let Some(head) = read_head(&mut reader)? {
        let fault = {
            let mut rules = state.rules.lock().unwrap();
            rules.iter_mut().find(|r| r.matches(&head)).map(|r| {
                r.times -= 1;
                r.fault.clone()
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
            Some(Fault::Reply(reply)) => {
                copy_body(&head, &mut reader, None, u64::MAX)?;
                let mut c = client.try_clone()?;
                let _ = reply.write(&mut c, &state.stop, &state.endless_sent);
                break;
            }
            Some(Fault::DropAfter(bytes)) => {
                upstream.write_all(&head.raw)?;
                copy_body(&head, &mut reader, Some(&mut upstream), bytes)?;
                break;
            }
            Some(Fault::StallAfter(bytes)) => {
                *gate.lock().unwrap() = Gate::Shut;
                upstream.write_all(&head.raw)?;
                copy_body(&head, &mut reader, Some(&mut upstream), bytes)?;
                wait_for_stop();
                break;
            }
            Some(Fault::StallAnswerAfter(bytes)) => {
                *gate.lock().unwrap() = Gate::Head { head_done: false, tail: Vec::new(), left: bytes };
                upstream.write_all(&head.raw)?;
                copy_body(&head, &mut reader, Some(&mut upstream), u64::MAX)?;
                wait_for_stop();
                break;
            }
        }
    }
    close(&client, &upstream);
    let _ = responses.join();
    Ok(())
}

/// A server on `address` (any port) that records every connection and request head that
/// reaches it, and answers each request with its [`Reply`]: the host cnbx must not talk to
/// (a redirect's target, a layer's foreign URL, a token service in clear text), or the
/// host it may. Stops when dropped.
pub struct Peer {
    addr: SocketAddr,
    state: Arc<PeerState>,
    accept: Option<JoinHandle<()>>,
}

struct PeerState {
    reply: Mutex<Reply>,
    connections: AtomicUsize,
    requests: Mutex<Vec<String>>,
    stop: AtomicBool,
    sent: AtomicU64,
}

impl Peer {
    /// Starts a peer on `ip` (a free port) answering every request with `reply`.
    pub fn start(ip: IpAddr, reply: Reply) -> Result<Self> {
        let listener = TcpListener::bind((ip, 0)).with_context(|| format!("binding a peer on {ip}"))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let state = Arc::new(PeerState {
            reply: Mutex::new(reply),
            connections: AtomicUsize::new(0),
            requests: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
            sent: AtomicU64::new(0),
        });
        let accept_state = Arc::clone(&state);
        let accept = std::thread::spawn(move || {
            while !accept_state.stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        accept_state.connections.fetch_add(1, Ordering::SeqCst);
                        let state = Arc::clone(&accept_state);
                        std::thread::spawn(move || peer_serve(stream, &state));
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    Err(_) => break,
                }
            }
        });
        Ok(Self { addr, state, accept: Some(accept) })
    }

    /// `IP:PORT` (IPv6 in brackets).
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// How many connections reached the peer (TLS handshakes included).
    pub fn connections(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }

    /// The heads of the HTTP requests it received, in order.
    pub fn requests(&self) -> Vec<String> {
        self.state.requests.lock().unwrap().clone()
    }

    /// Answers with `reply` from now on.
    pub fn set_reply(&self, reply: Reply) {
        *self.state.reply.lock().unwrap() = reply;
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

fn peer_serve(stream: TcpStream, state: &PeerState) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let Ok(read_half) = stream.try_clone() else { return };
    let mut reader = BufReader::new(read_half);
    let mut stream = stream;
    // One request per connection (the reply closes it).
    let Ok(Some(head)) = read_head(&mut reader) else { return };
    state.requests.lock().unwrap().push(String::from_utf8_lossy(&head.raw).into_owned());
    if copy_body(&head, &mut reader, None, u64::MAX).is_err() {
        return;
    }
    let reply = state.reply.lock().unwrap().clone();
    let _ = reply.write(&mut stream, &state.stop, &state.sent);
    let _ = stream.shutdown(Shutdown::Both);
    // Whatever the client still sends is drained, so that closing does not reset.
    let _ = reader.read_to_end(&mut Vec::new());
}

/// An IPv4 address of this machine that is not a loopback address (from `ip -4 addr`), to
/// stand for "another host" without leaving the machine: cnbx must treat it as any remote
/// host. `None` when the machine has none.
pub fn non_loopback_ipv4() -> Option<IpAddr> {
    let out = std::process::Command::new("ip").args(["-4", "-o", "addr", "show", "scope", "global"]).output().ok()?;
    String::from_utf8_lossy(&out.stdout).lines().find_map(|line| {
        let cidr = line.split_whitespace().skip_while(|w| *w != "inet").nth(1)?;
        let ip: IpAddr = cidr.split('/').next()?.parse().ok()?;
        (!ip.is_loopback() && TcpListener::bind((ip, 0)).is_ok()).then_some(ip)
    })
}
