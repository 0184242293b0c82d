//! The examples of README.md, collector/README.md and every page of docs/ and collector/docs/ run
//! as pasted.
//!
//! A code block is marked by an HTML comment on the line before its fence, which GitHub does not
//! show: `<!-- runnable: NAME -->` for a block this file runs (shell, or the Dockerfile whose `ENV`
//! and `CMD` the entrypoint test applies), `<!-- output: NAME -->` for what a run prints (of the
//! runnable block NAME, or of the command its caption names). Every marked block has a test here,
//! and every test's block must be marked.
//!
//! A block runs unchanged in a sandbox, with three kinds of places moved and nothing else:
//! - remote hosts (`https://downloads.acme.example`, and `api.segment.io`, install-beacon's default
//!   endpoint, through `INSTALL_BEACON_ENDPOINT`) become loopback receivers the test inspects, and
//!   `https://collector.acme.example` a real `beacon-collector serve`; a block that reaches a host
//!   its test does not stub fails;
//! - fixed local ports (`127.0.0.1:8787`) become free ports, so tests run in parallel;
//! - absolute directories (`/tmp/`, `/opt/`, `/var/lib/`) move into the sandbox.
//!
//! The sandbox is the working directory: `install-beacon` next to the block (as an installer
//! downloads it), `install-beacon` and `beacon-collector` on `PATH` and in `target/release/` (as
//! after `cargo build --release`), `scripts/` of this repository, a fresh `HOME` and `TMPDIR`, no
//! terminal. Whatever a block leaves running in the background is stopped when it ends.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::support::tmux::{Tmux, sh_quote};
use crate::support::{Reply, Server, tools};
use serde_json::Value;

/// Every marked block, by name, with the test that runs it.
const TESTED: &[&str] = &[
    "install-sh-terminal",
    "install-sh-terminal-failure",
    "install-sh-plain-failure",
    "installer-usage",
    "install-sh-hooks",
    "direct-commands",
    "dockerfile",
    "docker-entrypoint",
    "posthog-dry-run",
    "release-snippet",
    "quick-start",
    "end-to-end",
    "collector-end-to-end",
];

/// Where marked blocks live: the two front pages, every page of `docs/` and of `collector/docs/`.
fn documents() -> Vec<String> {
    ["README.md".to_owned(), "collector/README.md".to_owned()]
        .into_iter()
        .chain(pages("docs"))
        .chain(pages("collector/docs"))
        .collect()
}

/// The Markdown pages of `dir` (relative to the repository), sorted.
fn pages(dir: &str) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut pages: Vec<String> = fs::read_dir(root.join(dir))
        .unwrap_or_else(|e| panic!("{dir}/: {e}"))
        .map(|entry| {
            entry
                .expect("directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.ends_with(".md"))
        .map(|name| format!("{dir}/{name}"))
        .collect();
    pages.sort();
    pages
}

/// A marked code block.
#[derive(Debug, Clone)]
struct Block {
    /// `runnable` or `output`.
    kind: String,
    name: String,
    /// The fence's info string (`sh`, `dockerfile`, or empty).
    lang: String,
    text: String,
    /// `README.md:123`, for messages.
    at: String,
}

/// Every marked block of the documents. A marker not followed by a fence is an error.
fn marked_blocks() -> Vec<Block> {
    let mut blocks = Vec::new();
    for readme in documents() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(&readme);
        let content = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let lines: Vec<&str> = content.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let Some(marker) = line.trim().strip_prefix("<!-- ").and_then(|m| m.strip_suffix(" -->")) else {
                continue;
            };
            let Some((kind, name)) = marker.split_once(": ") else {
                continue;
            };
            if kind != "runnable" && kind != "output" {
                continue;
            }
            let at = format!("{readme}:{}", i + 1);
            let lang = lines
                .get(i + 1)
                .and_then(|fence| fence.strip_prefix("```"))
                .unwrap_or_else(|| panic!("{at}: the marker must be followed by a ``` fence"));
            let body: Vec<&str> = lines[i + 2..].iter().take_while(|l| **l != "```").copied().collect();
            blocks.push(Block {
                kind: kind.to_owned(),
                name: name.trim().to_owned(),
                lang: lang.trim().to_owned(),
                text: body.join("\n") + "\n",
                at,
            });
        }
    }
    blocks
}

fn block(kind: &str, name: &str) -> Block {
    let found: Vec<Block> = marked_blocks()
        .into_iter()
        .filter(|b| b.kind == kind && b.name == name)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "exactly one block marked <!-- {kind}: {name} --> expected"
    );
    found.into_iter().next().unwrap()
}

fn runnable(name: &str) -> Block {
    block("runnable", name)
}

#[test]
fn every_marked_block_is_run_by_a_test() {
    let blocks = marked_blocks();
    let marked: BTreeSet<&str> = blocks.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(
        marked,
        TESTED.iter().copied().collect(),
        "marked blocks vs. tests in tests/it/readme.rs"
    );
    for b in &blocks {
        let shell = matches!(b.lang.as_str(), "sh" | "bash");
        assert!(
            b.kind == "output" || shell || b.lang == "dockerfile",
            "{}: a runnable block must be sh, bash or dockerfile, not {:?}",
            b.at,
            b.lang
        );
    }
}

/// The Markdown files under `dir`, outside build output and hidden directories.
fn markdown_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("directory entry").path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if path.is_dir() && !name.starts_with('.') && name != "target" {
            markdown_files(&path, found);
        } else if name.ends_with(".md") {
            found.push(path);
        }
    }
}

#[test]
fn every_document_with_marked_blocks_is_read() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let read = documents();
    let mut files = Vec::new();
    markdown_files(root, &mut files);
    for file in files {
        let text = fs::read_to_string(&file).unwrap_or_default();
        let name = file.strip_prefix(root).unwrap().display().to_string();
        if text.contains("<!-- runnable: ") || text.contains("<!-- output: ") {
            assert!(
                read.contains(&name),
                "{name} has marked blocks that no test reads: keep them in README.md, docs/*.md or collector/docs/*.md"
            );
        }
    }
    assert!(
        read.iter().any(|d| d.starts_with("docs/")) && read.iter().any(|d| d.starts_with("collector/docs/")),
        "docs/*.md and collector/docs/*.md are read: {read:?}"
    );
}

/// GitHub's anchor of a heading line: lower case, punctuation dropped, spaces as `-`.
fn anchor(heading: &str) -> String {
    heading
        .trim_start_matches('#')
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' '))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of a Markdown file's headings, outside code blocks.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut in_code = false;
    let mut found = BTreeSet::new();
    for line in text.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
        } else if !in_code && line.starts_with('#') {
            found.insert(anchor(line));
        }
    }
    found
}

/// Links between the documents (`[text](docs/x.md#part)`) lead to a file that exists and, with
/// `#part`, to one of its headings: moving a section breaks this test, not the reader's click.
#[test]
fn every_link_between_documents_resolves() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut broken = Vec::new();
    for doc in documents().iter().map(String::as_str).chain(["ARCHITECTURE.md"]) {
        let text = fs::read_to_string(root.join(doc)).unwrap();
        for (i, _) in text.match_indices("](") {
            let target: String = text[i + 2..]
                .chars()
                .take_while(|c| *c != ')' && !c.is_whitespace())
                .collect();
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (path, part) = target.split_once('#').unwrap_or((&target, ""));
            let file = if path.is_empty() {
                root.join(doc)
            } else {
                root.join(doc).parent().unwrap().join(path)
            };
            if !file.exists() {
                broken.push(format!("{doc}: {target} (no such file)"));
            } else if !part.is_empty() && !anchors(&fs::read_to_string(&file).unwrap_or_default()).contains(part) {
                broken.push(format!("{doc}: {target} (no such heading)"));
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

/// What a block printed and how it ended.
struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Ran {
    fn assert_code(&self, code: i32) -> &Ran {
        assert_eq!(
            self.code,
            Some(code),
            "stdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }
}

/// Where blocks run; see the file's documentation.
struct Sandbox {
    dir: tempfile::TempDir,
    /// Each stubbed host and the loopback URL standing in for it.
    hosts: Vec<(String, String)>,
    servers: Vec<(String, Server)>,
    collectors: Vec<(String, Collector)>,
    env: Vec<(String, String)>,
    ports: Vec<(String, String)>,
    beacon_installed: bool,
}

impl Sandbox {
    fn new() -> Sandbox {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path();
        for sub in ["bin", "home", "root/tmp", "target"] {
            fs::create_dir_all(root.join(sub)).unwrap();
        }
        let beacon = Path::new(env!("CARGO_BIN_EXE_install-beacon"));
        std::os::unix::fs::symlink(beacon, root.join("install-beacon")).unwrap();
        std::os::unix::fs::symlink(beacon, root.join("bin/install-beacon")).unwrap();
        std::os::unix::fs::symlink(root.join("bin"), root.join("target/release")).unwrap();
        std::os::unix::fs::symlink(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts"),
            root.join("scripts"),
        )
        .unwrap();
        Sandbox {
            dir,
            hosts: Vec::new(),
            servers: Vec::new(),
            collectors: Vec::new(),
            env: Vec::new(),
            ports: Vec::new(),
            beacon_installed: true,
        }
    }

    /// Stubs a remote host with `server`.
    fn host(mut self, host: &str, server: Server) -> Sandbox {
        if host == "api.segment.io" {
            // install-beacon's built-in endpoint: blocks that rely on it do not name it.
            self.env.push(("INSTALL_BEACON_ENDPOINT".into(), server.url.clone()));
        }
        self.hosts.push((host.to_owned(), server.url.clone()));
        self.servers.push((host.to_owned(), server));
        self
    }

    /// The receiver standing in for `host`.
    fn server(&self, host: &str) -> &Server {
        &self.servers.iter().find(|(h, _)| h == host).expect("stubbed host").1
    }

    /// Stubs a remote host with a real `beacon-collector serve`, its database in the sandbox.
    fn collector(mut self, host: &str) -> Option<Sandbox> {
        let db = self.dir.path().join(format!("{host}.sqlite"));
        let collector = Collector::start(&collector_binary()?, &db);
        self.hosts.push((host.to_owned(), collector.url.clone()));
        self.collectors.push((host.to_owned(), collector));
        Some(self)
    }

    /// The events the collector standing in for `host` stored, oldest first, as `export` writes them.
    fn stored(&self, host: &str) -> Vec<Value> {
        self.collectors
            .iter()
            .find(|(h, _)| h == host)
            .expect("host stubbed by a collector")
            .1
            .export()
    }

    fn env(mut self, name: &str, value: &str) -> Sandbox {
        let value = self.relocate(value);
        self.env.push((name.to_owned(), value));
        self
    }

    /// `beacon-collector` on `PATH` and in `target/release/`, as after `cargo build --release --workspace`.
    fn with_collector(self) -> Option<Sandbox> {
        std::os::unix::fs::symlink(collector_binary()?, self.dir.path().join("bin/beacon-collector")).unwrap();
        Some(self)
    }

    /// A machine where install-beacon is not installed.
    fn without_beacon(mut self) -> Sandbox {
        fs::remove_file(self.dir.path().join("bin/install-beacon")).unwrap();
        fs::remove_file(self.dir.path().join("install-beacon")).unwrap();
        self.beacon_installed = false;
        self
    }

    /// Puts a file into the working directory.
    fn file(&self, name: &str, content: &[u8]) -> &Sandbox {
        fs::write(self.dir.path().join(name), content).unwrap();
        self
    }

    /// Where an absolute path of a block lands in the sandbox.
    fn path(&self, absolute: &str) -> PathBuf {
        PathBuf::from(self.relocate(absolute))
    }

    /// The text with hosts, ports and directories moved (see the file's documentation).
    fn relocate(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for (host, url) in &self.hosts {
            for scheme in ["https://", "http://"] {
                text = text.replace(&format!("{scheme}{host}"), url);
            }
        }
        for (fixed, free) in &self.ports {
            text = text.replace(fixed, free);
        }
        let root = self.dir.path().join("root");
        for dir in ["/tmp/", "/opt/", "/var/lib/"] {
            text = replace_path_prefix(&text, dir, &format!("{}{dir}", root.display()));
        }
        text
    }

    /// Runs a shell block with `args` as `$1...`, with a 60 s guard against hangs.
    fn run(&mut self, block: &Block, args: &[&str]) -> Ran {
        assert!(
            matches!(block.lang.as_str(), "sh" | "bash"),
            "{}: not a shell block",
            block.at
        );
        for fixed in local_ports(&block.text) {
            if !self.ports.iter().any(|(f, _)| *f == fixed) {
                self.ports.push((fixed, free_port()));
            }
        }
        let script = self.relocate(&block.text);
        if let Some(host) = remote_hosts(&script).into_iter().next() {
            panic!("{}: the block reaches {host}, which this test does not stub", block.at);
        }
        let shell = if block.text.starts_with("#!/usr/bin/env bash") {
            "bash"
        } else {
            "sh"
        };
        let root = self.dir.path();
        let (out, err) = (root.join("stdout"), root.join("stderr"));
        let path = std::env::var("PATH").unwrap_or_default();
        let path = if self.beacon_installed {
            format!("{}:{path}", root.join("bin").display())
        } else {
            path
        };
        let mut child = Command::new(shell)
            .arg("-c")
            .arg(&script)
            .arg(shell)
            .args(args)
            .current_dir(root)
            .env_clear()
            .env("PATH", path)
            .env("HOME", root.join("home"))
            .env("TMPDIR", root.join("root/tmp"))
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(fs::File::create(&out).unwrap())
            .stderr(fs::File::create(&err).unwrap())
            .process_group(0)
            .spawn()
            .expect("run the block");
        let give_up = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if Instant::now() > give_up {
                break None;
            }
            thread::sleep(Duration::from_millis(20));
        };
        // The block's process group: what it started in the background (a collector), or all of it.
        let pid = i32::try_from(child.id()).expect("pid");
        unsafe { libc::kill(-pid, libc::SIGTERM) };
        let _ = child.wait();
        let ran = Ran {
            code: status.and_then(|s| s.code()),
            stdout: fs::read_to_string(&out).unwrap(),
            stderr: fs::read_to_string(&err).unwrap(),
        };
        assert!(
            status.is_some(),
            "{}: still running after 60 s\n{}",
            block.at,
            ran.stderr
        );
        ran
    }
}

/// The `beacon-collector` built next to install-beacon, or why not (a loud skip).
fn collector_binary() -> Option<PathBuf> {
    let built = Path::new(env!("CARGO_BIN_EXE_install-beacon")).with_file_name("beacon-collector");
    if built.exists() {
        Some(built)
    } else {
        tools::cannot_run("beacon-collector is not built: run `cargo test --workspace`");
        None
    }
}

/// A running `beacon-collector serve` on a free loopback port, stopped when dropped.
struct Collector {
    child: Child,
    /// Kept open: the collector's stdout.
    _stdout: std::io::BufReader<std::process::ChildStdout>,
    binary: PathBuf,
    db: PathBuf,
    url: String,
}

impl Collector {
    fn start(binary: &Path, db: &Path) -> Collector {
        let mut child = Command::new(binary)
            .args(["serve", "--listen", "127.0.0.1:0", "--db"])
            .arg(db)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start beacon-collector");
        let mut first = String::new();
        let mut stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
        std::io::BufRead::read_line(&mut stdout, &mut first).expect("read stdout");
        let url = first
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("beacon-collector serve said {first:?}"))
            .to_owned();
        Collector {
            child,
            _stdout: stdout,
            binary: binary.to_owned(),
            db: db.to_owned(),
            url,
        }
    }

    /// Every stored event, oldest first (`beacon-collector export --format jsonl`).
    fn export(&self) -> Vec<Value> {
        let out = Command::new(&self.binary)
            .args(["export", "--format", "jsonl", "--db"])
            .arg(&self.db)
            .output()
            .expect("beacon-collector export");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).expect("an exported line is JSON"))
            .collect()
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Replaces `prefix` where it starts a path (after a space, quote, `=` or line start).
fn replace_path_prefix(text: &str, prefix: &str, with: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(prefix) {
        let starts_path = out
            .chars()
            .chain(rest[..i].chars())
            .last()
            .is_none_or(|c| c.is_whitespace() || matches!(c, '"' | '\'' | '=' | ':' | '-'));
        out.push_str(&rest[..i]);
        out.push_str(if starts_path { with } else { prefix });
        rest = &rest[i + prefix.len()..];
    }
    out.push_str(rest);
    out
}

/// The `127.0.0.1:PORT` addresses a block listens on (`--listen 127.0.0.1:PORT`).
fn local_ports(text: &str) -> BTreeSet<String> {
    text.match_indices("--listen 127.0.0.1:")
        .map(|(i, m)| {
            let digits: String = text[i + m.len()..].chars().take_while(char::is_ascii_digit).collect();
            format!("127.0.0.1:{digits}")
        })
        .collect()
}

/// Hosts of `http(s)://` URLs that are not loopback, outside `# comments`.
fn remote_hosts(text: &str) -> BTreeSet<String> {
    let mut hosts = BTreeSet::new();
    let code: String = text
        .lines()
        .map(|l| l.split(" # ").next().unwrap_or_default().to_owned() + "\n")
        .collect();
    for scheme in ["https://", "http://"] {
        for (i, _) in code.match_indices(scheme) {
            let host: String = code[i + scheme.len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'))
                .collect();
            if !host.is_empty() && host != "127.0.0.1" && host != "localhost" {
                hosts.insert(host);
            }
        }
    }
    hosts
}

fn free_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("127.0.0.1:{}", listener.local_addr().unwrap().port())
}

/// A release archive holding `bin/acme`, gzip-compressed or not.
fn archive(gzip: bool) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("pkg/bin")).unwrap();
    fs::write(dir.path().join("pkg/bin/acme"), "#!/bin/sh\necho acme\n").unwrap();
    let out = dir.path().join("acme.tar");
    let made = Command::new("tar")
        .arg(if gzip { "-czf" } else { "-cf" })
        .arg(&out)
        .arg("-C")
        .arg(dir.path().join("pkg"))
        .arg(".")
        .status()
        .unwrap();
    assert!(made.success());
    fs::read(out).unwrap()
}

fn names(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["event"].as_str().unwrap_or_default()).collect()
}

fn curl() -> bool {
    tools::have("curl", &["--version"], "curl")
}

/// README "Calling it directly": success, a failed download (curl's exit code 22 is what is reported
/// and what the installer exits with), and an archive that does not unpack.
#[test]
fn installer_usage_reports_each_outcome_with_the_real_exit_code() {
    if !curl() {
        return;
    }
    let block = runnable("installer-usage");
    for (download, step, code) in [
        (Reply::Bytes(200, archive(true)), None, 0),
        (Reply::Status(404), Some("download"), 22),
        (Reply::Body(200, "not an archive".into()), Some("unpack"), 2),
    ] {
        let mut sandbox = Sandbox::new()
            .host("api.segment.io", Server::start())
            .host("downloads.acme.example", Server::with_plan(vec![download]));
        sandbox.run(&block, &[]).assert_code(code);
        let segment = sandbox.server("api.segment.io");
        let events = segment.events();
        let auth = segment.requests()[0]
            .header("authorization")
            .unwrap_or_default()
            .to_owned();
        assert_eq!(
            auth, "Basic d2tfeW91cl9zZWdtZW50X3dyaXRlX2tleTo=",
            "the key of the block"
        );
        assert_eq!(
            sandbox.server("downloads.acme.example").requests()[0].url,
            "/acme.tar.gz"
        );
        match step {
            None => {
                assert_eq!(names(&events), ["Installation Started", "Installation Success"]);
                assert!(sandbox.path("/opt/acme/bin/acme").exists());
            }
            Some(step) => {
                assert_eq!(names(&events), ["Installation Started", "Installation Error"]);
                assert_eq!(events[1]["properties"]["step"], step);
                assert_eq!(events[1]["properties"]["exit_code"], code);
            }
        }
        assert_eq!(events[0]["properties"]["product_version"], "2.4.0");
    }
}

/// docs/installers.md "install.sh": the hooks report started and success with step durations, a
/// failed download once with its exit code, and without install-beacon the same script installs
/// anyway; the collector stores what arrives.
#[test]
fn install_sh_hooks_report_steps_and_work_without_install_beacon() {
    if !curl() {
        return;
    }
    let block = runnable("install-sh-hooks");
    let downloads = |reply: Reply| Server::with_plan(vec![reply]);

    let Some(sandbox) = Sandbox::new().collector("collector.acme.example") else {
        return;
    };
    let mut sandbox = sandbox.host("downloads.acme.example", downloads(Reply::Bytes(200, archive(true))));
    sandbox.run(&block, &[]).assert_code(0);
    let events = sandbox.stored("collector.acme.example");
    assert_eq!(names(&events), ["Installation Started", "Installation Success"]);
    let durations = events[1]["properties"]["step_durations_ms"]
        .as_object()
        .expect("step_durations_ms");
    assert_eq!(durations.keys().collect::<Vec<_>>(), ["download", "unpack"]);
    let id = fs::read_to_string(sandbox.path("/opt/acme/etc/acme/installation_id")).unwrap();
    assert_eq!(
        events[0]["installation_id"],
        id.trim(),
        "the ID the product reads is the one sent"
    );
    assert_eq!(
        fs::read_to_string(sandbox.path("/opt/acme/etc/acme/acme.conf")).unwrap(),
        "listen = 127.0.0.1:8080\n"
    );

    let Some(sandbox) = Sandbox::new().collector("collector.acme.example") else {
        return;
    };
    let mut sandbox = sandbox.host("downloads.acme.example", downloads(Reply::Status(404)));
    sandbox.run(&block, &[]).assert_code(22);
    let events = sandbox.stored("collector.acme.example");
    assert_eq!(names(&events), ["Installation Started", "Installation Error"]);
    assert_eq!(events[1]["properties"]["step"], "download");
    assert_eq!(events[1]["properties"]["exit_code"], 22);

    let Some(sandbox) = Sandbox::new().collector("collector.acme.example") else {
        return;
    };
    let mut sandbox = sandbox
        .host("downloads.acme.example", downloads(Reply::Bytes(200, archive(true))))
        .without_beacon();
    let ran = sandbox.run(&block, &[]);
    ran.assert_code(0);
    assert!(sandbox.path("/opt/acme/bin/acme").exists(), "{}", ran.stderr);
    assert!(sandbox.path("/opt/acme/etc/acme/acme.conf").exists());
    assert!(sandbox.stored("collector.acme.example").is_empty());
}

/// docs/installers.md "Without the hooks": every call of the block returns and the events arrive in order.
#[test]
fn direct_commands_run_under_set_e_and_report() {
    let block = runnable("direct-commands");
    let mut sandbox = Sandbox::new().host("api.segment.io", Server::start());
    sandbox.file("acme.tar", &archive(false));
    let ran = sandbox.run(&block, &[]);
    ran.assert_code(0);
    assert!(sandbox.path("/opt/acme/bin/acme").exists());
    let events = sandbox.server("api.segment.io").events();
    assert_eq!(
        names(&events),
        ["Installation Started", "Installation Error", "Installation Success"]
    );
    assert_eq!(events[1]["properties"]["step"], "configure");
    assert_eq!(events[1]["properties"]["exit_code"], 3);
    assert!(
        ran.stderr.contains("no terminal"),
        "support --prompt says why it did not ask: {}",
        ran.stderr
    );
}

/// README "Docker": two containers from the image (fresh HOME each, the state dir on the volume)
/// report the installation once to the collector, and the command runs.
#[test]
fn docker_entrypoint_reports_once_per_volume() {
    let dockerfile = runnable("dockerfile");
    let entrypoint = runnable("docker-entrypoint");
    let instruction = |name: &str| -> String {
        let joined = dockerfile.text.replace("\\\n", " ");
        let line = joined
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{}: no {name}", dockerfile.at));
        line.trim().to_owned()
    };
    let cmd: Vec<String> = serde_json::from_str(&instruction("CMD")).expect("CMD in exec form");
    let Some(mut sandbox) = Sandbox::new().collector("collector.acme.example") else {
        return;
    };
    for pair in instruction("ENV").split_whitespace() {
        let (name, value) = pair.split_once('=').expect("ENV NAME=VALUE");
        sandbox = sandbox.env(name, value);
    }
    // The image's command.
    let acme = sandbox.dir.path().join("bin/acme");
    fs::write(&acme, "#!/bin/sh\necho \"acme $*\"\n").unwrap();
    fs::set_permissions(&acme, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();

    for start in 0..2 {
        fs::remove_dir_all(sandbox.dir.path().join("home")).unwrap();
        fs::create_dir(sandbox.dir.path().join("home")).unwrap();
        let args: Vec<&str> = cmd.iter().map(String::as_str).collect();
        let ran = sandbox.run(&entrypoint, &args);
        ran.assert_code(0);
        assert_eq!(ran.stdout, "acme serve\n", "start {start}");
    }
    let events = sandbox.stored("collector.acme.example");
    assert_eq!(names(&events), ["Installation Success", "Instance Active"]);
    assert_eq!(events[0]["installation_id"], events[1]["installation_id"]);
    assert_eq!(events[0]["properties"]["product"], "acme");
    assert!(sandbox.path("/var/lib/acme/installation_id").exists());
}

/// Keys whose values depend on the machine and the moment.
const VARIES: &[&str] = &[
    "distinct_id",
    "uuid",
    "timestamp",
    "sent_at",
    "$os",
    "$os_version",
    "os",
    "os_version",
    "arch",
    "container",
    "cpu_count",
    "memory_mb",
    "ci",
];

/// Takes the expected value for every key of [`VARIES`], so the rest compares exactly.
fn adopt_varying(actual: &mut Value, expected: &Value) {
    match (actual, expected) {
        (Value::Object(a), Value::Object(e)) => {
            for (k, v) in a.iter_mut() {
                match e.get(k) {
                    Some(ev) if VARIES.contains(&k.as_str()) => *v = ev.clone(),
                    Some(ev) => adopt_varying(v, ev),
                    None => {}
                }
            }
        }
        (Value::Array(a), Value::Array(e)) => a.iter_mut().zip(e).for_each(|(a, e)| adopt_varying(a, e)),
        _ => {}
    }
}

/// docs/formats.md "PostHog": the printed request is the one shown, header for header and field for field.
#[test]
fn posthog_dry_run_prints_what_the_readme_shows() {
    let mut sandbox = Sandbox::new().host("eu.i.posthog.com", Server::start());
    let ran = sandbox.run(&runnable("posthog-dry-run"), &[]);
    ran.assert_code(0);
    assert!(
        sandbox.server("eu.i.posthog.com").requests().is_empty(),
        "a dry run sends nothing"
    );
    let expected = block("output", "posthog-dry-run").text;
    let (want_head, want_body) = expected.split_once("\n\n").expect("headers, blank line, body");
    let printed = ran
        .stdout
        .replace(&sandbox.server("eu.i.posthog.com").url, "https://eu.i.posthog.com");
    let (head, body) = printed.split_once("\n\n").expect("headers, blank line, body");
    assert_eq!(head, want_head);
    let want: Value = serde_json::from_str(want_body).expect("README body is JSON");
    let mut got: Value = serde_json::from_str(body).expect("printed body is JSON");
    adopt_varying(&mut got, &want);
    assert_eq!(got, want);
}

/// The text with every SHA-256 (64 hex digits) as `<sha256>`.
fn hide_digests(text: &str) -> String {
    text.split_inclusive(char::is_whitespace)
        .map(|word| {
            let digest = word.trim_end();
            if digest.len() == 64 && digest.chars().all(|c| c.is_ascii_hexdigit()) {
                word.replacen(digest, "<sha256>", 1)
            } else {
                word.to_owned()
            }
        })
        .collect()
}

/// The value of `NAME=` in a block's lines.
fn assignment<'a>(text: &'a str, name: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name}= in\n{text}"))
}

/// README "Add it to your install.sh": `scripts/release-snippet.sh` (the end of `scripts/release.sh`)
/// prints what the README shows for a release of its files; pasted before the quick start, on a
/// machine without install-beacon, it fetches this machine's asset, verifies and runs it, and the
/// installation reaches a real collector.
#[test]
fn the_release_snippet_and_the_quick_start_install_and_report_to_the_collector() {
    if !curl() {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let release_sh = fs::read_to_string(root.join("scripts/release.sh")).unwrap();
    assert!(
        release_sh.contains("scripts/release-snippet.sh \"$DIST\" \"$VERSION\""),
        "scripts/release.sh ends by printing the snippet"
    );
    let shown = block("output", "release-snippet");
    let (base_url, version) = (
        assignment(&shown.text, "BEACON_BASE_URL"),
        assignment(&shown.text, "BEACON_VERSION"),
    );
    // The host: the release's files where the block says, this machine's asset holding the binary
    // under test, and the product's own archive.
    let host = tempfile::tempdir().unwrap();
    let dist = host.path().join(
        base_url
            .strip_prefix("https://downloads.acme.example/")
            .expect("the release on downloads.acme.example"),
    );
    fs::create_dir_all(&dist).unwrap();
    let assets: Vec<&str> = shown
        .text
        .lines()
        .filter_map(|l| l.split_once("  ").map(|(_, name)| name))
        .collect();
    let ours = assets
        .iter()
        .find(|a| a.contains(std::env::consts::ARCH) && a.contains("linux"))
        .expect("an asset for this machine");
    let stage = tempfile::tempdir().unwrap();
    fs::copy(
        env!("CARGO_BIN_EXE_install-beacon"),
        stage.path().join("install-beacon"),
    )
    .unwrap();
    // Stripped as a release's is: a debug build's debug info would take it past the 16 MiB cap.
    let stripped = Command::new("strip").arg(stage.path().join("install-beacon")).status();
    assert!(stripped.is_ok_and(|s| s.success()), "strip (binutils) failed");
    for asset in &assets {
        let file = dist.join(asset);
        if asset == ours {
            let tar = Command::new("tar")
                .arg("-czf")
                .arg(&file)
                .arg("-C")
                .arg(stage.path())
                .arg("install-beacon")
                .status();
            assert!(tar.unwrap().success());
        } else {
            fs::write(&file, asset).unwrap();
        }
    }
    let sums = Command::new("sh")
        .args(["-c", "sha256sum -- install-beacon-* >SHA256SUMS"])
        .current_dir(&dist)
        .status();
    assert!(sums.unwrap().success());
    fs::write(host.path().join("acme-1.2.3.tar.gz"), archive(true)).unwrap();

    let out = Command::new("sh")
        .arg(root.join("scripts/release-snippet.sh"))
        .arg(&dist)
        .arg(version)
        .env("BEACON_BASE_URL", base_url)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed = String::from_utf8(out.stdout).unwrap();
    assert_eq!(hide_digests(&printed), hide_digests(&shown.text));

    let quick_start = runnable("quick-start");
    let installer = Block {
        text: format!("{printed}{}", quick_start.text),
        ..quick_start
    };
    let Some(sandbox) = Sandbox::new().collector("collector.acme.example") else {
        return;
    };
    let mut sandbox = sandbox
        .host("downloads.acme.example", Server::serving(host.path()))
        .without_beacon();
    sandbox.file(
        "fetch-beacon.sh",
        &fs::read(root.join("scripts/fetch-beacon.sh")).unwrap(),
    );
    let ran = sandbox.run(&installer, &[]);
    ran.assert_code(0);
    assert!(sandbox.path("/opt/acme/bin/acme").exists(), "{}", ran.stderr);
    assert_eq!(
        sandbox.server("downloads.acme.example").downloads(),
        [
            format!("/{}/{ours}", dist.strip_prefix(host.path()).unwrap().display()),
            "/acme-1.2.3.tar.gz".to_owned()
        ]
    );
    let events = sandbox.stored("collector.acme.example");
    assert_eq!(
        names(&events),
        ["Installation Started", "Installation Success"],
        "{}",
        ran.stderr
    );
    assert_eq!(events[1]["properties"]["product_version"], "1.2.3");
    let durations = events[1]["properties"]["step_durations_ms"]
        .as_object()
        .expect("step_durations_ms");
    assert_eq!(durations.keys().collect::<Vec<_>>(), ["download", "unpack"]);
}

/// The `installations` row of `product` in a `beacon-collector report`: started, succeeded, failed, abandoned.
fn installations(report: &str, product: &str) -> Vec<String> {
    let section = report
        .split(&format!("== {product} ==\n"))
        .nth(1)
        .unwrap_or_else(|| panic!("no {product} in the report:\n{report}"));
    let row = section
        .lines()
        .find(|l| l.trim_start().starts_with("installations"))
        .expect("installations row");
    row.split_whitespace().skip(1).take(4).map(str::to_owned).collect()
}

/// README "See it end to end": the demo installer three times against a collector, one failing.
#[test]
fn end_to_end_with_the_collector_reports_the_three_installs() {
    if !curl() {
        return;
    }
    let Some(mut sandbox) = Sandbox::new().with_collector() else {
        return;
    };
    let ran = sandbox.run(&runnable("end-to-end"), &[]);
    ran.assert_code(0);
    assert_eq!(
        installations(&ran.stdout, "demo"),
        ["3", "2", "1", "0"],
        "{}",
        ran.stdout
    );
    assert_eq!(
        ran.stderr
            .matches("A newer version of demo is available: 1.5.0 (you have 1.4.0)")
            .count(),
        3,
        "{}",
        ran.stderr
    );
    assert!(sandbox.path("/tmp/demo-1/bin/demo").exists());
}

/// collector/README.md "See it end to end": a Segment batch by curl, then the report.
#[test]
fn collector_end_to_end_stores_the_batch_and_reports_it() {
    if !curl() {
        return;
    }
    let Some(mut sandbox) = Sandbox::new().with_collector() else {
        return;
    };
    let ran = sandbox.run(&runnable("collector-end-to-end"), &[]);
    ran.assert_code(0);
    assert!(
        ran.stdout
            .contains("\n{\"latest_version\":\"1.4.2\",\"notices\":[],\"success\":true}\n"),
        "the collector's answer: {}",
        ran.stdout
    );
    assert_eq!(
        installations(&ran.stdout, "acme"),
        ["1", "1", "0", "0"],
        "{}",
        ran.stdout
    );
}

/// A transcript as compared: durations as `0.0s`, random temp names as `XXXXXX`, the sandbox's
/// root gone (so its `/tmp` reads `/tmp` again), trailing blanks and blank lines dropped.
fn normalized(text: &str, root: &Path) -> Vec<String> {
    let text = text.replace(&root.join("root").display().to_string(), "");
    text.lines()
        .map(|line| {
            let mut line = line.trim_end().to_owned();
            if let Some(i) = line.find("demo-install.") {
                let start = i + "demo-install.".len();
                line.replace_range(start..(start + 6).min(line.len()), "XXXXXX");
            }
            for (open, close) in [(" (", "s)"), (" after ", "s")] {
                if let Some(i) = line.rfind(open)
                    && line.ends_with(close)
                    && line[i + open.len()..line.len() - close.len()]
                        .chars()
                        .all(|c| c.is_ascii_digit() || c == '.')
                {
                    line.replace_range(i + open.len()..line.len() - close.len(), "0.0");
                }
            }
            line
        })
        .filter(|line| !line.is_empty())
        .collect()
}

/// docs/installers.md "What the person running the installer sees": `scripts/install.sh` in a terminal, with
/// endpoint and key exported, answering the prompts as the captions say.
fn install_sh_in_a_terminal(args: &str, answers: &[(&str, &str)]) -> Option<(Vec<String>, Sandbox)> {
    let sandbox = Sandbox::new().host("api.segment.io", Server::start());
    let root = sandbox.dir.path();
    let line = format!(
        "cd {root} && env -i HOME={home} PATH={path} TERM=xterm TMPDIR={tmp} INSTALL_BEACON_BIN={bin} \
         INSTALL_BEACON_ENDPOINT={url} INSTALL_BEACON_KEY=demo sh scripts/install.sh {args}; \
         echo \"[exit status $?]\"; sleep 600",
        root = sh_quote(&root.display().to_string()),
        home = sh_quote(&root.join("home").display().to_string()),
        path = sh_quote(&std::env::var("PATH").unwrap_or_default()),
        tmp = sh_quote(&root.join("root/tmp").display().to_string()),
        bin = sh_quote(env!("CARGO_BIN_EXE_install-beacon")),
        url = sandbox.server("api.segment.io").url,
        args = sandbox.relocate(args),
    );
    let tmux = Tmux::start(root, &line)?;
    for (prompt, answer) in answers {
        tmux.wait_for(prompt);
        tmux.type_line(answer);
    }
    let screen = tmux.wait_for("[exit status");
    Some((normalized(&screen, root), sandbox))
}

fn expected(name: &str) -> Vec<String> {
    normalized(&block("output", name).text, Path::new("/nonexistent"))
}

#[test]
fn install_sh_in_a_terminal_shows_what_the_readme_shows() {
    let Some((screen, sandbox)) = install_sh_in_a_terminal("--prefix /tmp/tx/demo-good", &[("[Y/n]", "")]) else {
        return;
    };
    assert_eq!(screen, expected("install-sh-terminal"));
    let events = sandbox.server("api.segment.io").events();
    assert_eq!(names(&events), ["Installation Started", "Installation Success"]);
}

#[test]
fn install_sh_failing_in_a_terminal_shows_what_the_readme_shows() {
    let answers = [
        ("[Y/n]", "y"),
        ("[y/N]", "y"),
        ("leave empty to skip", "ada@example"),
        ("Try again", "ada@example.com"),
    ];
    let Some((screen, sandbox)) = install_sh_in_a_terminal("--prefix /tmp/tx/demo-fail --fail-at unpack", &answers)
    else {
        return;
    };
    assert_eq!(screen, expected("install-sh-terminal-failure"));
    let events = sandbox.server("api.segment.io").events();
    assert_eq!(
        names(&events),
        ["Installation Started", "Installation Error", "Installation Support"]
    );
    assert_eq!(events[2]["properties"]["email"], "ada@example.com");
}

#[test]
fn install_sh_failing_without_a_terminal_prints_the_plain_lines_of_the_readme() {
    let mut sandbox = Sandbox::new().host("api.segment.io", Server::start());
    let script = Block {
        kind: "runnable".into(),
        name: "install-sh-plain-failure".into(),
        lang: "sh".into(),
        text: "sh scripts/install.sh --prefix /tmp/tx/demo-fail --fail-at unpack\n".into(),
        at: "docs/installers.md, What the person running the installer sees".into(),
    };
    sandbox = sandbox.env("INSTALL_BEACON_KEY", "demo");
    let ran = sandbox.run(&script, &[]);
    ran.assert_code(3);
    let stderr = normalized(&ran.stderr, sandbox.dir.path());
    let want = expected("install-sh-plain-failure");
    assert!(
        stderr.windows(want.len()).any(|w| w == want.as_slice()),
        "{want:#?}\nnot in\n{stderr:#?}"
    );
}

/// The loud-skip rule of `support::tools`: a missing tool fails under CI, prints a line elsewhere.
#[test]
fn a_missing_tool_fails_on_ci_and_is_named_elsewhere() {
    let line = tools::skip_line(false, "frobnicate is not installed");
    assert!(
        line.starts_with("SKIPPED ") && line.ends_with("frobnicate is not installed"),
        "{line}"
    );
    let on_ci = std::panic::catch_unwind(|| tools::skip_line(true, "frobnicate is not installed"));
    assert!(on_ci.is_err(), "under CI=true a missing tool must fail the test");
}
