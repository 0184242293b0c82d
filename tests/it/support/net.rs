//! Real-network fixtures: a local CA, an HTTPS front for the recording `Server` (on 127.0.0.1 or
//! ::1), a tinyproxy forward proxy with credentials, a TCP black hole that drops SYNs, and the list of
//! builds every network test runs against (the debug build and the shipped static binary).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::{Server, free_port, tools};

/// Whether this machine can make a `kind` namespace (`unshare FLAG`, root only); when not, the
/// test reports it through `tools::cannot_run` and returns early.
pub fn namespace(flag: &str, kind: &str) -> bool {
    if !tools::have("unshare", &["--version"], "util-linux") {
        return false;
    }
    let made = Command::new("unshare").args([flag, "true"]).output();
    let ok = made.is_ok_and(|o| o.status.success());
    if !ok {
        tools::cannot_run(&format!("cannot create a {kind} namespace here (needs root)"));
    }
    ok
}

/// The builds to test: the debug build, and the static release binary that ships (required under
/// CI=true, where `.ci/run` builds it first).
pub fn binaries() -> Vec<PathBuf> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let shipped = target.join("x86_64-unknown-linux-musl/release/install-beacon");
    let mut bins = vec![PathBuf::from(env!("CARGO_BIN_EXE_install-beacon"))];
    if shipped.is_file() {
        bins.push(shipped);
    } else {
        tools::cannot_run(&format!(
            "{} is missing (scripts/build-static.sh x86_64): testing the debug build only",
            shipped.display()
        ));
    }
    bins
}

/// A certificate authority and a server certificate it signed for 127.0.0.1, ::1 and localhost.
pub struct Ca {
    pub dir: tempfile::TempDir,
    /// The CA certificate, PEM.
    pub pem: PathBuf,
    chain: Vec<CertificateDer<'static>>,
    key: Vec<u8>,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let ca_key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = params.self_signed(&ca_key).unwrap();
        let key = KeyPair::generate().unwrap();
        let names = vec!["127.0.0.1".to_owned(), "::1".to_owned(), "localhost".to_owned()];
        let leaf = CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &ca, &ca_key)
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let pem = dir.path().join("ca.pem");
        std::fs::write(&pem, ca.pem()).unwrap();
        Ca {
            dir,
            pem,
            chain: vec![leaf.der().clone()],
            key: key.serialize_der(),
        }
    }

    fn server_config(&self) -> Arc<ServerConfig> {
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.clone()));
        let config = ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), key)
            .unwrap();
        Arc::new(config)
    }
}

/// TLS in front of a recording `Server`, on the same address family: `https://127.0.0.1:P` or
/// `https://[::1]:P`. Each decrypted request is relayed to the server, which records it.
pub struct TlsFront {
    pub url: String,
}

impl TlsFront {
    pub fn start(ca: &Ca, backend: &Server) -> TlsFront {
        let backend: SocketAddr = backend.url.trim_start_matches("http://").parse().unwrap();
        let listener = TcpListener::bind(SocketAddr::new(backend.ip(), 0)).unwrap();
        let url = format!("https://{}", listener.local_addr().unwrap());
        let config = ca.server_config();
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let config = config.clone();
                thread::spawn(move || relay(stream, config, backend));
            }
        });
        TlsFront { url }
    }
}

fn relay(tcp: TcpStream, config: Arc<ServerConfig>, backend: SocketAddr) -> io::Result<()> {
    tcp.set_read_timeout(Some(Duration::from_secs(30)))?;
    let conn = rustls::ServerConnection::new(config).map_err(io::Error::other)?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let mut up = TcpStream::connect(backend)?;
    while let Some(request) = read_message(&mut tls)? {
        up.write_all(&request)?;
        let Some(response) = read_message(&mut up)? else { break };
        tls.write_all(&response)?;
        tls.flush()?;
    }
    Ok(())
}

/// One HTTP/1.1 message with a Content-Length body (what install-beacon and tiny_http send).
fn read_message(from: &mut impl Read) -> io::Result<Option<Vec<u8>>> {
    let mut message = Vec::new();
    let mut buf = [0u8; 16384];
    loop {
        if let Some(end) = message.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&message[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if message.len() >= end + 4 + length {
                return Ok(Some(message));
            }
        }
        let n = match from.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => 0,
            Err(e) => return Err(e),
        };
        if n == 0 {
            return Ok(None);
        }
        message.extend_from_slice(&buf[..n]);
    }
}

/// tinyproxy on 127.0.0.1 asking for `user:password` (Basic), started for one test.
pub struct Proxy {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Child,
}

impl Proxy {
    /// None (after `require` said why) when tinyproxy is not installed.
    pub fn start(user: &str, password: &str) -> Option<Proxy> {
        if !tools::have("tinyproxy", &["-v"], "tinyproxy") {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let conf = dir.path().join("tinyproxy.conf");
        std::fs::write(
            &conf,
            format!(
                "Port {port}\nListen 127.0.0.1\nTimeout 30\nMaxClients 20\nAllow 127.0.0.1\n\
                 BasicAuth {user} {password}\nLogLevel Info\nLogFile \"{}\"\nDisableViaHeader Yes\n",
                dir.path().join("tinyproxy.log").display()
            ),
        )
        .unwrap();
        let child = Command::new("tinyproxy")
            .arg("-d")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let proxy = Proxy { port, dir, child };
        for _ in 0..100 {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(proxy);
            }
            thread::sleep(Duration::from_millis(50));
        }
        panic!("tinyproxy did not listen on 127.0.0.1:{port}: {}", proxy.log());
    }

    /// `http://user:password@127.0.0.1:PORT`.
    pub fn url(&self, user: &str, password: &str) -> String {
        format!("http://{user}:{password}@127.0.0.1:{}", self.port)
    }

    /// tinyproxy's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("tinyproxy.log")).unwrap_or_default()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP port that silently drops every SYN, as a firewall does: a listener with a backlog of 0
/// whose one queued connection is never accepted, so the kernel discards further SYNs.
pub struct BlackHole {
    addr: SocketAddr,
    listener: TcpListener,
    _filler: TcpStream,
}

impl BlackHole {
    pub fn start() -> BlackHole {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        // SAFETY: listen on a socket this process owns; it only changes the backlog.
        assert_eq!(unsafe { libc::listen(listener.as_raw_fd(), 0) }, 0);
        let addr = listener.local_addr().unwrap();
        let filler = TcpStream::connect(addr).unwrap();
        let probe = TcpStream::connect_timeout(&addr, Duration::from_millis(300));
        assert!(probe.is_err(), "the black hole answered a SYN");
        BlackHole {
            addr,
            listener,
            _filler: filler,
        }
    }

    /// The endpoint comes back: the same socket, with a backlog, answers 200 from now on.
    pub fn reopen(self) -> Server {
        // SAFETY: as in `start`; listen again only raises the backlog of this process's socket.
        assert_eq!(unsafe { libc::listen(self.listener.as_raw_fd(), 128) }, 0);
        Server::on(self.listener)
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}
