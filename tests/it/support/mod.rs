//! Test support, the one API every suite uses: a programmable HTTP server on 127.0.0.1 that records
//! every request (`Server`), raw TCP listeners for misbehaving peers (`RawPeer`), command builders
//! that run the real binary in a clean environment (`Env`: no proxies, no CI variables, no opt-outs,
//! HOME in a temp dir), `stdout` / `stderr` for what a run printed, and in `net` the real-network
//! fixtures (CA, HTTPS front, proxy, black hole, the builds to test).

pub mod net;
pub mod tmux;
pub mod tools;

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use assert_cmd::Command;
use serde_json::Value;

/// One request as the server received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Status the server answered with; `None` if it never answered.
    pub status: Option<u16>,
}

impl Received {
    /// Header value by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.body_text()))
    }

    /// The body as text.
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Events carried, whatever the protocol: Segment/PostHog `batch` items or the plain object.
    pub fn events(&self) -> Vec<Value> {
        let body = self.json();
        match body.get("batch") {
            Some(Value::Array(items)) => items.clone(),
            _ => vec![body],
        }
    }
}

fn bind(addr: &str) -> tiny_http::Server {
    tiny_http::Server::http(addr).unwrap_or_else(|e| panic!("bind {addr}: {e}"))
}

/// How the server answers one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// This status with a `{}` body.
    Status(u16),
    /// This status and body.
    Body(u16, String),
    /// This status and binary body (a file to download).
    Bytes(u16, Vec<u8>),
    /// This status with `Retry-After: N`.
    RetryAfter(u16, u64),
    /// Wait, then answer with the status.
    Delay(Duration, u16),
    /// Never answer; the connection stays open until the server is dropped.
    Hang,
}

/// A recording HTTP server with a queue of planned replies (200 once the plan is used up).
pub struct Server {
    pub url: String,
    received: Arc<Mutex<Vec<Received>>>,
    downloads: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// A server that answers 200 to everything.
    pub fn start() -> Server {
        Server::with_plan(Vec::new())
    }

    /// A server that answers with `plan`, in order, then 200.
    pub fn with_plan(plan: Vec<Reply>) -> Server {
        Server::new(bind("127.0.0.1:0"), plan, None)
    }

    /// A server on `addr` (`[::1]:0`) that answers with `plan`, then 200.
    pub fn at(addr: &str, plan: Vec<Reply>) -> Server {
        Server::new(bind(addr), plan, None)
    }

    /// A server that answers 200 on a socket a test already listens on (a black hole coming back
    /// on its own port: a freed port could be taken by a parallel test before it is bound again).
    pub fn on(listener: std::net::TcpListener) -> Server {
        let http =
            tiny_http::Server::from_listener(listener, None).unwrap_or_else(|e| panic!("serve on a listener: {e}"));
        Server::new(http, Vec::new(), None)
    }

    /// A release host and a receiver in one: GET requests are answered with the files under `dir`
    /// (404 for others) and listed in `downloads`; every other request is recorded as `start` does.
    pub fn serving(dir: &Path) -> Server {
        Server::new(bind("127.0.0.1:0"), Vec::new(), Some(dir.to_owned()))
    }

    fn new(http: tiny_http::Server, plan: Vec<Reply>, files: Option<PathBuf>) -> Server {
        let url = format!("http://{}", http.server_addr().to_ip().expect("ip address"));
        let received = Arc::new(Mutex::new(Vec::new()));
        let plan = Arc::new(Mutex::new(plan.into_iter().collect::<VecDeque<_>>()));
        let downloads = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (received, plan, stop) = (received.clone(), plan.clone(), stop.clone());
            let files = files.map(|dir| (dir, downloads.clone()));
            thread::spawn(move || serve(http, received, plan, files, stop))
        };
        Server {
            url,
            received,
            downloads,
            stop,
            thread: Some(thread),
        }
    }

    /// Paths of the GET requests a `serving` server answered from its directory or with 404.
    pub fn downloads(&self) -> Vec<String> {
        self.downloads.lock().unwrap().clone()
    }

    /// Everything received so far.
    pub fn requests(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// All events received so far, across requests.
    pub fn events(&self) -> Vec<Value> {
        self.requests().iter().flat_map(Received::events).collect()
    }

    /// Events of the requests the server answered with 2xx, in order of arrival.
    pub fn accepted(&self) -> Vec<Value> {
        self.requests()
            .iter()
            .filter(|r| r.status.is_some_and(|s| (200..300).contains(&s)))
            .flat_map(Received::events)
            .collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(
    http: tiny_http::Server,
    received: Arc<Mutex<Vec<Received>>>,
    plan: Arc<Mutex<VecDeque<Reply>>>,
    files: Option<(PathBuf, Arc<Mutex<Vec<String>>>)>,
    stop: Arc<AtomicBool>,
) {
    let mut held = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        let Ok(Some(mut request)) = http.recv_timeout(Duration::from_millis(20)) else {
            continue;
        };
        if let Some((dir, downloads)) = files.as_ref().filter(|_| request.method() == &tiny_http::Method::Get) {
            let url = request.url().to_owned();
            let name = url.trim_start_matches('/');
            let file = (!name.split('/').any(|part| part == "..")).then(|| dir.join(name));
            let _ = match file.and_then(|f| std::fs::read(f).ok()) {
                Some(bytes) => request.respond(tiny_http::Response::from_data(bytes)),
                None => request.respond(tiny_http::Response::from_string("not found").with_status_code(404)),
            };
            downloads.lock().unwrap().push(url);
            continue;
        }
        let mut body = Vec::new();
        let _ = request.as_reader().read_to_end(&mut body);
        let reply = plan.lock().unwrap().pop_front().unwrap_or(Reply::Status(200));
        let status = match &reply {
            Reply::Status(s)
            | Reply::Body(s, _)
            | Reply::Bytes(s, _)
            | Reply::RetryAfter(s, _)
            | Reply::Delay(_, s) => Some(*s),
            Reply::Hang => None,
        };
        received.lock().unwrap().push(Received {
            method: request.method().to_string(),
            url: request.url().to_owned(),
            headers: request
                .headers()
                .iter()
                .map(|h| (h.field.to_string(), h.value.to_string()))
                .collect(),
            body,
            status,
        });
        let respond = |request: tiny_http::Request, status: u16, body: Vec<u8>, extra: Option<(&str, String)>| {
            let mut response = tiny_http::Response::from_data(body).with_status_code(status);
            if let Some((name, value)) = extra {
                response.add_header(tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()).unwrap());
            }
            let _ = request.respond(response);
        };
        match reply {
            Reply::Status(s) => respond(request, s, b"{}".to_vec(), None),
            Reply::Body(s, body) => respond(request, s, body.into_bytes(), None),
            Reply::Bytes(s, body) => respond(request, s, body, None),
            Reply::RetryAfter(s, secs) => respond(request, s, b"{}".to_vec(), Some(("Retry-After", secs.to_string()))),
            Reply::Delay(d, s) => {
                thread::sleep(d);
                respond(request, s, b"{}".to_vec(), None)
            }
            Reply::Hang => held.push(request),
        }
    }
}

/// What a raw TCP peer does with each connection.
#[derive(Debug, Clone, Copy)]
pub enum Peer {
    /// Accept and never send a byte.
    Silent,
    /// Read the request, then close without answering.
    Reset,
    /// Answer a valid response one byte per `Duration`, status line included.
    Trickle(Duration),
    /// Answer 200 with a body that never ends.
    Endless,
}

/// A TCP listener on 127.0.0.1 that misbehaves as told and counts connections.
pub struct RawPeer {
    pub url: String,
    pub connections: Arc<AtomicUsize>,
}

impl RawPeer {
    /// Starts the peer; its threads end with the test process.
    pub fn start(peer: Peer) -> RawPeer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let connections = Arc::new(AtomicUsize::new(0));
        let count = connections.clone();
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                count.fetch_add(1, Ordering::SeqCst);
                thread::spawn(move || misbehave(stream, peer));
            }
        });
        RawPeer { url, connections }
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

fn misbehave(mut stream: TcpStream, peer: Peer) {
    let mut buf = [0u8; 65536];
    match peer {
        Peer::Silent => thread::sleep(Duration::from_secs(120)),
        Peer::Reset => {
            let _ = stream.read(&mut buf);
        }
        Peer::Trickle(every) => {
            let _ = stream.read(&mut buf);
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n{}",
                "x".repeat(100_000)
            );
            for byte in response.bytes() {
                if stream.write_all(&[byte]).is_err() {
                    return;
                }
                thread::sleep(every);
            }
        }
        Peer::Endless => {
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
            let chunk = format!("{:x}\r\n{}\r\n", 8192, "x".repeat(8192));
            while stream.write_all(chunk.as_bytes()).is_ok() {}
        }
    }
}

/// A temp HOME plus helpers to run the binary inside it.
pub struct Env {
    pub home: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Env {
        Env {
            home: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// The state dir the binary uses by default for `product`.
    pub fn state_dir(&self, product: &str) -> PathBuf {
        self.home.path().join(".local/state").join(product)
    }

    /// The default ID file for `product`.
    pub fn id_file(&self, product: &str) -> PathBuf {
        self.state_dir(product).join("installation_id")
    }

    /// The real binary in a clean environment, with `--product acme`.
    pub fn cmd(&self) -> Command {
        let mut cmd = self.bare();
        cmd.arg("--product").arg("acme");
        cmd
    }

    /// The real binary in a clean environment, no arguments.
    pub fn bare(&self) -> Command {
        self.bin(Path::new(env!("CARGO_BIN_EXE_install-beacon")))
    }

    /// Another executable (a renamed copy) in the same clean environment.
    pub fn bin(&self, path: &Path) -> Command {
        let mut cmd = Command::new(path);
        cmd.env_clear()
            .env("HOME", self.home.path())
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .timeout(Duration::from_secs(30));
        cmd
    }

    /// `cmd()` pointed at `server_url` with the plain JSON protocol.
    pub fn json(&self, server_url: &str) -> Command {
        let mut cmd = self.cmd();
        cmd.args(["--protocol", "json", "--endpoint", server_url]);
        cmd
    }

    /// Points every event queued for `acme` at `url`. Queued events go only to the destination
    /// they were queued for, and a test's server that "was down" is a refused port while the one
    /// that comes back listens on another.
    pub fn requeue_for(&self, url: &str) {
        requeue(&self.state_dir("acme").join("outbox.jsonl"), url);
    }

    /// `cmd()` pointed at `server` with the Segment protocol and a key.
    pub fn segment(&self, server_url: &str) -> Command {
        let mut cmd = self.cmd();
        cmd.args(["--endpoint", server_url, "--key", "wk_test_123456"]);
        cmd
    }
}

/// Points every event queued in the `outbox` file at `url` (queued events keep their destination).
pub fn requeue(outbox: &Path, url: &str) {
    let text: String = std::fs::read_to_string(outbox)
        .expect("an outbox")
        .lines()
        .map(|line| {
            let mut entry: Value = serde_json::from_str(line).expect("outbox line is JSON");
            entry["destination"]["endpoint"] = url.into();
            format!("{entry}\n")
        })
        .collect();
    std::fs::write(outbox, text).unwrap();
}

/// A URL on 127.0.0.1 where nothing listens: connections are refused at once.
pub fn refused_url() -> String {
    format!("http://127.0.0.1:{}", free_port())
}

/// A port on 127.0.0.1 nothing listens on (free a moment ago).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// What a run printed to stdout, as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// What a run printed to stderr, as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The shells installer code must work in (sh, dash, bash, zsh), those that are installed; a missing
/// one is reported by [`tools::have`].
pub fn shells() -> Vec<&'static str> {
    ["sh", "dash", "bash", "zsh"]
        .into_iter()
        .filter(|shell| tools::have(shell, &["-c", "exit 0"], shell))
        .collect()
}

/// Builds `install-beacon` (debug) into its own `target_dir` with `args` and `envs` added, so a
/// suite's special build neither waits on nor invalidates the main one; fails the test if it fails.
pub fn build_beacon(target_dir: &Path, args: &[&str], envs: &[(&str, &str)]) {
    let status = std::process::Command::new(env!("CARGO"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "build",
            "--quiet",
            "--locked",
            "--offline",
            "--bin",
            "install-beacon",
            "--target-dir",
        ])
        .arg(target_dir)
        .args(args)
        .envs(envs.iter().copied())
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .status()
        .expect("run cargo build");
    assert!(
        status.success(),
        "cargo build {args:?} into {} failed",
        target_dir.display()
    );
}
