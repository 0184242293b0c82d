//! Runs the real `beacon-collector` binary on 127.0.0.1 and talks to it over HTTP.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use base64::Engine;
use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_beacon-collector");

/// Variables of the collector's own that tests set explicitly, never inherited.
/// The collector's own variables, and the proxy variables the relay's HTTP client honours.
const OWN_ENV: [&str; 9] = [
    "BEACON_COLLECTOR_KEY",
    "BEACON_COLLECTOR_ADMIN_TOKEN",
    "BEACON_COLLECTOR_FORWARD_KEY",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
];

/// A running collector; killed when dropped.
pub struct Collector {
    child: Child,
    pub base: String,
    pub db: PathBuf,
    dir: tempfile::TempDir,
    agent: ureq::Agent,
}

/// An HTTP answer: status, headers and body text.
pub struct Reply {
    pub status: u16,
    pub headers: ureq::http::HeaderMap,
    pub text: String,
}

impl Reply {
    /// A header's value, if present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl Collector {
    /// Starts `serve --listen 127.0.0.1:0` with extra arguments and waits for its address.
    pub fn start(extra: &[&str]) -> Collector {
        Collector::start_with("127.0.0.1:0", extra, &[])
    }

    /// Starts `serve --listen LISTEN` with extra arguments and environment variables.
    pub fn start_with(listen: &str, extra: &[&str], env: &[(&str, &str)]) -> Collector {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("events.sqlite");
        Collector::spawn(dir, db, listen, extra, env)
    }

    /// Starts `serve` as the last arguments of `wrapper` (e.g. `prlimit --nofile=256:4096`).
    pub fn start_under(wrapper: &[&str], extra: &[&str]) -> Collector {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("events.sqlite");
        Collector::launch(wrapper, dir, db, "127.0.0.1:0", extra, &[])
    }

    /// Starts `serve` on an existing database (kept where it is).
    pub fn start_with_db(db: &Path, extra: &[&str]) -> Collector {
        let dir = tempfile::tempdir().expect("temp dir");
        Collector::spawn(dir, db.to_path_buf(), "127.0.0.1:0", extra, &[])
    }

    fn spawn(dir: tempfile::TempDir, db: PathBuf, listen: &str, extra: &[&str], env: &[(&str, &str)]) -> Collector {
        Collector::launch(&[], dir, db, listen, extra, env)
    }

    fn launch(
        wrapper: &[&str],
        dir: tempfile::TempDir,
        db: PathBuf,
        listen: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Collector {
        let stderr = std::fs::File::create(dir.path().join("stderr")).expect("stderr file");
        let mut command = match wrapper.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(BIN);
                command
            }
            None => Command::new(BIN),
        };
        for name in OWN_ENV {
            command.env_remove(name);
        }
        let mut child = command
            .args(["serve", "--listen", listen, "--db"])
            .arg(&db)
            .args(extra)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start beacon-collector");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("read first line");
        let base = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            // A wildcard address is reached over loopback.
            .replace("0.0.0.0", "127.0.0.1");
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .proxy(None)
            .build()
            .into();
        Collector {
            child,
            base,
            db,
            dir,
            agent,
        }
    }

    /// The collector's process ID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the collector has written to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr")).expect("stderr file")
    }

    /// Sends one request; `body` makes it a POST of JSON, else a GET.
    pub fn request(&self, path: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> Reply {
        let url = format!("{}{path}", self.base);
        let sent = match body {
            Some(body) => {
                let mut req = self.agent.post(url).content_type("application/json");
                for (k, v) in headers {
                    req = req.header(*k, *v);
                }
                req.send(body)
            }
            None => {
                let mut req = self.agent.get(url);
                for (k, v) in headers {
                    req = req.header(*k, *v);
                }
                req.call()
            }
        };
        let mut resp = sent.expect("HTTP request");
        Reply {
            status: resp.status().as_u16(),
            headers: resp.headers().clone(),
            text: resp.body_mut().read_to_string().expect("body"),
        }
    }

    /// Sends the process a signal, e.g. `HUP`.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args(["-s", name, &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -s {name}");
    }

    /// POSTs `body` with headers; returns status and parsed JSON answer.
    pub fn post(&self, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, Value) {
        let reply = self.request(path, headers, Some(body));
        let json = serde_json::from_str(&reply.text).unwrap_or(Value::String(reply.text));
        (reply.status, json)
    }

    /// POSTs a JSON value.
    pub fn post_json(&self, path: &str, headers: &[(&str, &str)], body: &Value) -> (u16, Value) {
        self.post(path, headers, body.to_string().as_bytes())
    }

    /// GETs a path; returns status and text.
    pub fn get(&self, path: &str) -> (u16, String) {
        let reply = self.request(path, &[], None);
        (reply.status, reply.text)
    }

    /// `host:port` for raw TCP.
    pub fn addr(&self) -> String {
        self.base.trim_start_matches("http://").to_string()
    }

    /// Runs `report --format json` on this collector's database.
    pub fn report(&self, extra: &[&str]) -> Value {
        report(&self.db, extra)
    }

    /// Rows stored in the events table.
    pub fn stored(&self) -> i64 {
        let conn = rusqlite::Connection::open(&self.db).expect("open db");
        conn.query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))
            .expect("count")
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a finished command (`beacon-collector`, or another program) printed, and its exit code.
#[derive(Debug)]
pub struct Run {
    /// Exit code (`None` if killed by a signal).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Standard output of a run that must have succeeded.
    pub fn ok(self) -> String {
        assert_eq!(self.code, Some(0), "failed: {}", self.stderr);
        self.stdout
    }
}

impl From<std::process::Output> for Run {
    fn from(out: std::process::Output) -> Run {
        Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// Runs `beacon-collector ARGS` to completion.
pub fn run<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut command = Command::new(BIN);
    for name in OWN_ENV {
        command.env_remove(name);
    }
    command.args(args).output().expect("run beacon-collector").into()
}

/// Every event stored in `db`, as `export` writes them (JSON Lines), oldest first.
pub fn exported(db: &Path) -> Vec<Value> {
    run(["export".as_ref(), "--db".as_ref(), db.as_os_str()])
        .ok()
        .lines()
        .map(|l| serde_json::from_str(l).expect("export writes JSON lines"))
        .collect()
}

/// Runs `report --db DB ARGS`.
pub fn run_report(db: &Path, extra: &[&str]) -> Run {
    let mut args = vec![OsStr::new("report"), OsStr::new("--db"), db.as_os_str()];
    args.extend(extra.iter().map(OsStr::new));
    run(args)
}

/// Runs `report --format json` on a database.
pub fn report(db: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["--format", "json"];
    args.extend(extra);
    serde_json::from_str(&run_report(db, &args).ok()).expect("report JSON")
}

/// The report section of one product.
pub fn product<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["products"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["product"] == name))
        .unwrap_or_else(|| panic!("no product {name} in {report:#}"))
}

/// `Authorization: Basic base64(key:)`, as Segment clients send it.
pub fn basic(key: &str) -> String {
    basic_login(key, "")
}

/// `Authorization: Basic base64(user:password)`, as a browser sends it.
pub fn basic_login(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// Gzips bytes, as posthog-python and analytics-python do with `gzip=True`.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).expect("gzip");
    enc.finish().expect("gzip")
}

/// Properties install-beacon puts on every event.
pub fn facts(product: &str, version: &str, os: &str, os_version: &str) -> Value {
    serde_json::json!({
        "os": os, "os_version": os_version, "arch": "x86_64", "cpu_count": 4, "memory_mb": 8192,
        "container": "none", "ci": false, "product": product, "product_version": version,
        "beacon_version": "0.1.0"
    })
}

/// `facts` plus extra properties.
pub fn with(mut base: Value, extra: Value) -> Value {
    if let (Some(b), Value::Object(e)) = (base.as_object_mut(), extra) {
        b.extend(e);
    }
    base
}
