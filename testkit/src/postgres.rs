//! A throwaway PostgreSQL server for tests: Debian's `initdb` in a temp dir owned by an
//! unprivileged user (PostgreSQL refuses to run as root; tests often do), listening on a free
//! port of 127.0.0.1 and on a unix socket in that dir, stopped and removed on drop.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// The user the server runs as when the tests run as root.
const UNPRIVILEGED: &str = "nobody";

/// A running PostgreSQL server (superuser `postgres`, trust authentication, `fsync` off).
pub struct Postgres {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    as_root: bool,
}

/// The newest `/usr/lib/postgresql/N/bin` holding `initdb`.
fn binaries() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

fn checked(what: &str, out: std::io::Result<Output>) -> Output {
    let out = out.unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

impl Postgres {
    /// Starts a server, or reports PostgreSQL missing as [`crate::tools::cannot_run`] does (a
    /// failure under `CI=true`) and returns `None`.
    pub fn start() -> Option<Postgres> {
        let Some(bin) = binaries() else {
            crate::tools::cannot_run("PostgreSQL is not installed (apt-get install postgresql)");
            return None;
        };
        static STARTED: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "beacon-pg-{}-{}",
            std::process::id(),
            STARTED.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("creating the server's temp dir");
        let uid = checked("id -u", Command::new("id").arg("-u").output());
        let as_root = String::from_utf8_lossy(&uid.stdout).trim() == "0";
        if as_root {
            checked(
                "chown",
                Command::new("chown").arg(format!("{UNPRIVILEGED}:")).arg(&dir).output(),
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let server = Postgres {
            dir,
            bin,
            port,
            as_root,
        };
        checked(
            "initdb",
            server
                .tool("initdb")
                .args([
                    "-U",
                    "postgres",
                    "-A",
                    "trust",
                    "-E",
                    "UTF8",
                    "--locale=C",
                    "--no-sync",
                    "-D",
                ])
                .arg(server.data())
                .output(),
        );
        checked(
            "pg_ctl start",
            server
                .tool("pg_ctl")
                .arg("-D")
                .arg(server.data())
                .arg("-o")
                .arg(format!(
                    "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
                    server.port,
                    server.dir.display()
                ))
                .arg("-l")
                .arg(server.dir.join("log"))
                .args(["-w", "start"])
                .stdout(Stdio::null())
                .output(),
        );
        Some(server)
    }

    /// A PostgreSQL program, run as the unprivileged user when the tests run as root.
    fn tool(&self, name: &str) -> Command {
        let program = self.bin.join(name);
        if self.as_root {
            let mut c = Command::new("runuser");
            c.args(["-u", UNPRIVILEGED, "--"]).arg(program);
            c
        } else {
            Command::new(program)
        }
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// The directory holding the server's unix socket.
    pub fn socket_dir(&self) -> &Path {
        &self.dir
    }

    /// Creates database `name` and returns its `postgres://` URL (over TCP on 127.0.0.1).
    pub fn database(&self, name: &str) -> String {
        checked(
            "createdb",
            Command::new(self.bin.join("createdb"))
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "postgres", name])
                .output(),
        );
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self
            .tool("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
