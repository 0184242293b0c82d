//! Test support, the one API every suite uses: a programmable HTTP server on 127.0.0.1 that records
//! every request (`Server`), the `eventually` poll helper and the loud skips of `tools` (these three
//! from the `testkit` crate the collector's suite shares), raw TCP listeners for misbehaving peers (`RawPeer`), command builders
//! that run the real binary in a clean environment (`Env`: no proxies, no CI variables, no opt-outs,
//! HOME in a temp dir), `stdout` / `stderr` for what a run printed, in `net` the real-network
//! fixtures (CA, HTTPS front, proxy, black hole, the builds to test), and in `target` the binary
//! under test (`BEACON_TARGET`: another target's release binary, under qemu-user if need be).

pub mod net;
pub mod target;
pub mod tmux;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use assert_cmd::Command;
use serde_json::Value;
pub use testkit::{Reply, Server, eventually, tools};

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

    /// The binary under test ([`target::beacon`]) in a clean environment, no arguments.
    pub fn bare(&self) -> Command {
        self.bin(target::beacon())
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

/// The `dist/` of `scripts/release.sh` (CI points `BEACON_DIST` at it) after checking that the
/// minisign signature of its file `signed` verifies with its `minisign.pub`; `None` when there is
/// none or minisign is missing (reported through `tools`).
pub fn release_dist(signed: &str) -> Option<PathBuf> {
    let Some(dist) = std::env::var_os("BEACON_DIST") else {
        tools::cannot_run("BEACON_DIST does not name the dist/ of scripts/release.sh");
        return None;
    };
    if !tools::have("minisign", &["-v"], "minisign") {
        return None;
    }
    let dist = PathBuf::from(dist);
    let verified = std::process::Command::new("minisign")
        .args(["-V", "-p"])
        .arg(dist.join("minisign.pub"))
        .arg("-m")
        .arg(dist.join(signed))
        .output()
        .expect("run minisign");
    assert!(verified.status.success(), "{signed}: {verified:?}");
    Some(dist)
}
