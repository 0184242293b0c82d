//! The Windows binary (`x86_64-pc-windows-gnu`) run under Wine against loopback servers: sending,
//! dry run, opt-outs, the ID file under %LOCALAPPDATA%, the outbox and its retry, `run` exit codes,
//! `--background` as a detached process, and the consent prompt on the console (through tmux).
//!
//! The exe is `BEACON_WINDOWS_EXE` when set (CI points it at the release build of
//! `scripts/release.sh`), else a debug build in `target/windows`, made once per test run. Wine 8
//! lacks `bcryptprimitives.dll` (`ProcessPrng`, which Rust's standard library imports), so a shim
//! built with mingw from `tests/windows/bcryptprimitives.c` sits next to the exe; it is never
//! shipped. Without wine or mingw these tests fail under `CI=true` and say SKIPPED otherwise.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

use crate::support::tmux::{Tmux, sh_quote};
use crate::support::{Server, build_beacon, eventually, requeue, tools};
use serde_json::Value;

const TARGET: &str = "x86_64-pc-windows-gnu";

/// A directory with `install-beacon.exe` and the shim DLL, and the Wine prefix to run it in; `None`
/// when a tool is missing outside CI (`tools::have` says so; on CI it fails the test).
struct Wine {
    dir: PathBuf,
    prefix: PathBuf,
}

fn wine() -> Option<&'static Wine> {
    static WINE: OnceLock<Option<Wine>> = OnceLock::new();
    WINE.get_or_init(|| {
        let tools_here = tools::have("wine", &["--version"], "wine")
            && tools::have("x86_64-w64-mingw32-gcc", &["--version"], "gcc-mingw-w64-x86-64");
        if !tools_here {
            return None;
        }
        if let Some(why) = std::env::var_os("BEACON_WINDOWS_EXE")
            .is_none()
            .then(|| missing_target(&sysroot()))
            .flatten()
        {
            tools::cannot_run(&why);
            return None;
        }
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let exe = windows_exe(root);
        let dir = root.join("target/windows/run");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(&exe, dir.join("install-beacon.exe")).unwrap();
        let status = Command::new("x86_64-w64-mingw32-gcc")
            .args(["-O2", "-shared", "-s", "-o"])
            .arg(dir.join("bcryptprimitives.dll"))
            .arg(root.join("tests/windows/bcryptprimitives.c"))
            .arg("-ladvapi32")
            .status()
            .expect("run mingw gcc");
        assert!(status.success(), "building the bcryptprimitives.dll shim failed");
        let wine = Wine {
            dir,
            prefix: root.join("target/windows/wine-prefix"),
        };
        // The first run makes the prefix (seconds); parallel tests must not race to make it.
        let out = wine
            .cmd("install-beacon.exe")
            .arg("--version")
            .output()
            .expect("run wine");
        assert!(out.status.success(), "the exe does not start under wine: {out:?}");
        Some(wine)
    })
    .as_ref()
}

/// The sysroot of the toolchain that builds the exe (`rustc --print sysroot`).
fn sysroot() -> PathBuf {
    let out = Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .expect("run rustc");
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// Why the exe cannot be built with the toolchain at `sysroot`: wine and mingw alone do not make a
/// Windows build, the target's standard library is needed too.
fn missing_target(sysroot: &Path) -> Option<String> {
    let std_lib = sysroot.join("lib/rustlib").join(TARGET).join("lib");
    let present = std::fs::read_dir(&std_lib).is_ok_and(|mut d| d.next().is_some());
    (!present).then(|| {
        format!(
            "the Rust target {TARGET} is not installed (rustup target add {TARGET}), \
             or set BEACON_WINDOWS_EXE to a built install-beacon.exe"
        )
    })
}

#[test]
fn a_machine_without_the_windows_target_is_told_the_fix() {
    let sysroot = tempfile::tempdir().unwrap();
    let why = missing_target(sysroot.path()).expect("no target in an empty sysroot");
    assert_eq!(
        why,
        "the Rust target x86_64-pc-windows-gnu is not installed (rustup target add x86_64-pc-windows-gnu), \
         or set BEACON_WINDOWS_EXE to a built install-beacon.exe"
    );
    // Outside CI that is one SKIPPED line naming the fix; under CI=true the test fails with it.
    let line = tools::skip_line(false, &why);
    assert!(line.starts_with("SKIPPED windows::a_machine_without_the_windows_target_is_told_the_fix: the Rust target"));
    assert!(std::panic::catch_unwind(|| tools::skip_line(true, &why)).is_err());
    let lib = sysroot.path().join("lib/rustlib").join(TARGET).join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    std::fs::write(lib.join("libstd.rlib"), "").unwrap();
    assert_eq!(missing_target(sysroot.path()), None);
}

fn windows_exe(root: &Path) -> PathBuf {
    if let Some(exe) = std::env::var_os("BEACON_WINDOWS_EXE") {
        return PathBuf::from(exe);
    }
    let target_dir = root.join("target/windows");
    build_beacon(&target_dir, &["--target", TARGET], &[]);
    target_dir.join(TARGET).join("debug/install-beacon.exe")
}

impl Wine {
    /// `install-beacon.exe ARGS` (or another exe in the run directory) in a clean environment.
    fn cmd(&self, exe: &str) -> Command {
        let mut cmd = Command::new("wine");
        cmd.arg(self.dir.join(exe))
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", std::env::var_os("HOME").unwrap_or_default())
            .env("WINEPREFIX", &self.prefix)
            .env("WINEDEBUG", "-all")
            // No Mono/Gecko install dialogs when the prefix is made.
            .env("WINEDLLOVERRIDES", "mscoree,mshtml=");
        cmd
    }

    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = self.cmd("install-beacon.exe");
        cmd.args(args).envs(env.iter().copied());
        cmd.output().expect("run wine")
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).replace("\r\n", "\n")
}

/// A Windows path for a Unix one: Wine maps the Unix root to drive Z:.
fn win(path: &Path) -> String {
    format!("Z:{}", path.display()).replace('/', "\\")
}

/// A state directory of its own for one test, and the options that point the exe at it and at
/// `server` with the JSON protocol.
struct Case {
    dir: tempfile::TempDir,
}

impl Case {
    fn new() -> Case {
        Case {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn args(&self, url: &str, rest: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = [
            "--product",
            "acme",
            "--protocol",
            "json",
            "--endpoint",
            url,
            "--state-dir",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.push(win(&self.state()));
        args.extend(rest.iter().map(|s| s.to_string()));
        args
    }
}

fn run(wine: &Wine, args: &[String], env: &[(&str, &str)]) -> Output {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    wine.run(&args, env)
}

fn ok(out: &Output) {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
}

#[test]
fn the_windows_binary_runs_under_wine() {
    let Some(wine) = wine() else { return };
    let out = wine.run(&["--version"], &[]);
    ok(&out);
    assert_eq!(
        text(&out.stdout),
        format!("install-beacon {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn sends_to_a_loopback_receiver_with_windows_facts() {
    let Some(wine) = wine() else { return };
    let server = Server::start();
    let case = Case::new();
    ok(&run(
        wine,
        &case.args(&server.url, &["--product-version", "1.2.3", "started"]),
        &[],
    ));
    let events = server.events();
    assert_eq!(events.len(), 1, "{events:?}");
    let props = &events[0]["properties"];
    assert_eq!(events[0]["event"], "Installation Started");
    assert_eq!(props["os"], "windows");
    let version = props["os_version"].as_str().unwrap();
    assert!(
        version.split('.').count() == 3 && version.split('.').all(|p| p.parse::<u32>().is_ok()),
        "{version}"
    );
    assert_eq!(props["arch"], "x86_64");
    assert!(props["memory_mb"].as_u64().is_some_and(|m| m > 0), "{props}");
    assert!(props["cpu_count"].as_u64().is_some_and(|n| n > 0), "{props}");
    assert_eq!(props["product_version"], "1.2.3");
    let id = std::fs::read_to_string(case.state().join("installation_id")).unwrap();
    assert_eq!(events[0]["installation_id"], id.trim());
}

#[test]
fn dry_run_prints_the_request_and_writes_nothing() {
    let Some(wine) = wine() else { return };
    let server = Server::start();
    let case = Case::new();
    let out = run(
        wine,
        &case.args(&server.url, &["--key", "secret_key_1", "--dry-run", "success"]),
        &[],
    );
    ok(&out);
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with(&format!("POST {}\n", server.url)), "{stdout}");
    assert!(
        stdout.contains("Authorization: Bearer secr****"),
        "the key is masked: {stdout}"
    );
    let body: Value = serde_json::from_str(&stdout[stdout.find("\n\n").unwrap()..]).unwrap();
    assert_eq!(body["event"], "Installation Success");
    assert!(server.requests().is_empty());
    assert!(!case.state().exists(), "a dry run writes no file");
}

#[test]
fn every_opt_out_sends_nothing() {
    let Some(wine) = wine() else { return };
    let server = Server::start();
    let policy_dir = tempfile::tempdir().unwrap();
    let policy = policy_dir.path().join("policy");
    std::fs::write(&policy, "telemetry=off\n").unwrap();
    let policy = win(&policy);
    /// Flags, environment, and the source `status` names.
    type OptOut<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: [OptOut; 5] = [
        (&[], &[("DO_NOT_TRACK", "1")], "environment variable DO_NOT_TRACK"),
        (
            &[],
            &[("ACME_DISABLE_TELEMETRY", "true")],
            "environment variable ACME_DISABLE_TELEMETRY",
        ),
        (&["--telemetry", "off"], &[], "--telemetry"),
        (&[], &[("INSTALL_BEACON_POLICY_FILE", &policy)], "policy file"),
        (&[], &[], "saved choice"),
    ];
    for (flags, env, source) in cases {
        let case = Case::new();
        if source == "saved choice" {
            ok(&run(wine, &case.args(&server.url, &["disable"]), &[]));
        }
        let mut args = case.args(&server.url, flags);
        args.push("started".into());
        ok(&run(wine, &args, env));
        let status = run(wine, &case.args(&server.url, &[flags, &["status"]].concat()), env);
        ok(&status);
        let status = text(&status.stdout);
        assert!(status.contains("telemetry:  disabled"), "{source}: {status}");
        assert!(status.contains(source), "{source}: {status}");
        assert!(
            !case.state().join("installation_id").exists(),
            "{source}: no ID file when opted out"
        );
    }
    // A copy whose name says donottrack.
    std::fs::copy(
        wine.dir.join("install-beacon.exe"),
        wine.dir.join("acme-donottrack.exe"),
    )
    .unwrap();
    let case = Case::new();
    let mut cmd = wine.cmd("acme-donottrack.exe");
    cmd.args(case.args(&server.url, &["--telemetry", "on", "started"]));
    ok(&cmd.output().unwrap());
    assert!(server.requests().is_empty(), "{:?}", server.requests());
}

#[test]
fn the_id_file_lives_under_localappdata_and_stays() {
    let Some(wine) = wine() else { return };
    // The default state directory, in the Wine prefix: a product name of its own, cleaned first.
    let product = format!("beacon-id-test-{}", std::process::id());
    let args = |rest: &[&str]| -> Vec<String> {
        ["--product", product.as_str()]
            .iter()
            .chain(rest)
            .map(|s| s.to_string())
            .collect()
    };
    let out = run(wine, &args(&["id", "--path"]), &[]);
    ok(&out);
    let path = text(&out.stdout).trim().to_owned();
    let suffix = format!("\\AppData\\Local\\{product}\\installation_id");
    assert!(path.starts_with("C:\\users\\") && path.ends_with(&suffix), "{path}");
    let unix = wine.prefix.join("drive_c").join(path[3..].replace('\\', "/"));
    let _ = std::fs::remove_dir_all(unix.parent().unwrap());

    let first = run(wine, &args(&["id"]), &[]);
    ok(&first);
    let id = text(&first.stdout).trim().to_owned();
    assert_eq!(id.len(), 36, "{id}");
    assert_eq!(
        std::fs::read_to_string(&unix).unwrap().trim(),
        id,
        "the product reads the same ID from the file"
    );
    let again = run(wine, &args(&["id"]), &[]);
    assert_eq!(text(&again.stdout).trim(), id);
    let env = run(wine, &args(&["id", "--format", "env"]), &[]);
    assert_eq!(
        text(&env.stdout),
        format!("{}_INSTALLATION_ID={id}\n", product.to_uppercase().replace('-', "_"))
    );
    let _ = std::fs::remove_dir_all(unix.parent().unwrap());
}

#[test]
fn the_outbox_keeps_what_failed_and_retries() {
    let Some(wine) = wine() else { return };
    let case = Case::new();
    // Nothing listens on port 9: the event is queued, the call still exits 0.
    let refused = "http://127.0.0.1:9";
    ok(&run(wine, &case.args(refused, &["--timeout", "2s", "started"]), &[]));
    let status = text(&run(wine, &case.args(refused, &["status"]), &[]).stdout);
    assert!(status.contains("queued:     1 event(s)"), "{status}");

    // Queued events keep their destination: the receiver comes up where it was meant to be. A 503
    // is retried within the call, with the same bytes.
    let server = Server::with_plan(vec![crate::support::Reply::Status(503)]);
    requeue(&case.state().join("outbox.jsonl"), &server.url);
    let out = run(wine, &case.args(&server.url, &["flush"]), &[]);
    ok(&out);
    assert_eq!(text(&out.stdout), "sent 1 event(s), 0 left in the queue\n");
    let requests = server.requests();
    assert_eq!(requests.len(), 2, "one retry: {requests:?}");
    assert_eq!(requests[0].body, requests[1].body, "the retry sends the same bytes");
    assert_eq!(server.accepted()[0]["event"], "Installation Started");
    let status = text(&run(wine, &case.args(&server.url, &["status"]), &[]).stdout);
    assert!(status.contains("queued:     0 event(s)"), "{status}");
}

#[test]
fn run_exits_with_the_command_code_and_reports_it() {
    let Some(wine) = wine() else { return };
    let server = Server::start();
    let case = Case::new();
    for (command, code) in [
        (&["cmd", "/c", "exit 3"][..], 3),
        (&["cmd", "/c", "exit 0"][..], 0),
        (&["no-such-program.exe"][..], 127),
    ] {
        let out = run(
            wine,
            &case.args(&server.url, &[&["run", "--step", "unpack", "--"], command].concat()),
            &[],
        );
        assert_eq!(out.status.code(), Some(code), "{command:?}: {}", text(&out.stderr));
    }
    let events = server.events();
    assert_eq!(events.len(), 2, "the two failures only: {events:?}");
    for (event, code) in events.iter().zip([3, 127]) {
        assert_eq!(event["event"], "Installation Error");
        assert_eq!(event["properties"]["step"], "unpack");
        assert_eq!(event["properties"]["exit_code"], code);
    }
}

#[test]
fn background_delivery_is_a_detached_process() {
    let Some(wine) = wine() else { return };
    let server = Server::start();
    let case = Case::new();
    ok(&run(wine, &case.args(&server.url, &["--background", "success"]), &[]));
    // The caller is back; the detached `flush` delivers on its own (a generous hang guard).
    let events = eventually(Duration::from_secs(30), "the detached delivery", || {
        let events = server.events();
        if events.is_empty() { Err(events) } else { Ok(events) }
    });
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["event"], "Installation Success");
    eventually(Duration::from_secs(30), "the queue emptied", || {
        let status = text(&run(wine, &case.args(&server.url, &["status"]), &[]).stdout);
        if status.contains("queued:     0 event(s)") {
            Ok(())
        } else {
            Err(status)
        }
    });
}

#[test]
fn the_consent_prompt_asks_on_the_console() {
    let Some(wine) = wine() else { return };
    let case = Case::new();
    let args: Vec<String> = case
        .args("http://127.0.0.1:9", &["consent", "--prompt"])
        .iter()
        .map(|a| sh_quote(a))
        .collect();
    let done = case.dir.path().join("done");
    let command = format!(
        "WINEPREFIX={} WINEDEBUG=-all WINEDLLOVERRIDES='mscoree,mshtml=' wine {} {}; echo $? > {}; sleep 60",
        sh_quote(&wine.prefix.display().to_string()),
        sh_quote(&wine.dir.join("install-beacon.exe").display().to_string()),
        args.join(" "),
        sh_quote(&done.display().to_string()),
    );
    let Some(tmux) = Tmux::start(case.dir.path(), &command) else {
        return;
    };
    tmux.wait_for("Share anonymous installation statistics? [Y/n]");
    tmux.type_line("n");
    let code = eventually(Duration::from_secs(30), "the prompt's exit code", || {
        std::fs::read_to_string(&done).map_err(|e| e.kind())
    });
    assert_eq!(code.trim(), "0");
    let saved = std::fs::read_to_string(case.state().join("state.json")).unwrap();
    let saved: Value = serde_json::from_str(&saved).unwrap();
    assert_eq!(saved["consent"], false, "{saved}");
}

#[test]
fn facts_come_from_os_info_without_starting_a_program() {
    let Some(wine) = wine() else { return };
    let case = Case::new();
    // Each trace line starts with the process ID; ours is the one that loads the shim DLL (Wine may
    // start its own services from other processes at the same time).
    let traced = [("WINEDEBUG", "+pid,+process,+loaddll")];
    let started_by_us = |out: &Output| -> Vec<String> {
        let trace = text(&out.stderr);
        let pid = trace
            .lines()
            .find(|l| l.contains("Loaded") && l.contains("bcryptprimitives.dll"))
            .and_then(|l| l.split(':').next())
            .expect("the trace shows the exe loading the shim")
            .to_owned();
        trace
            .lines()
            .filter(|l| l.starts_with(&format!("{pid}:")) && l.contains("CreateProcessInternalW app"))
            .map(str::to_owned)
            .collect()
    };
    let out = run(
        wine,
        &case.args("http://127.0.0.1:9", &["--dry-run", "started"]),
        &traced,
    );
    ok(&out);
    assert!(text(&out.stdout).contains("\"os\": \"windows\""));
    assert_eq!(
        started_by_us(&out),
        Vec::<String>::new(),
        "collecting the facts started a program"
    );
    // The trace does see a program being started: the one `run` runs.
    let step = case.args(
        "http://127.0.0.1:9",
        &["--dry-run", "run", "--step", "s", "--", "cmd", "/c", "exit 0"],
    );
    let out = run(wine, &step, &traced);
    ok(&out);
    let started = started_by_us(&out);
    assert!(started.len() == 1 && started[0].contains("cmd.exe"), "{started:?}");
}

#[test]
fn parallel_calls_share_the_outbox_under_the_lock() {
    let Some(wine) = wine() else { return };
    let case = Case::new();
    let calls: Vec<_> = (0..6)
        .map(|_| {
            let mut cmd = wine.cmd("install-beacon.exe");
            cmd.args(case.args("http://127.0.0.1:9", &["--timeout", "2s", "started"]))
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null());
            cmd.spawn().expect("start wine")
        })
        .collect();
    for mut call in calls {
        assert!(call.wait().unwrap().success());
    }
    let server = Server::start();
    requeue(&case.state().join("outbox.jsonl"), &server.url);
    let out = run(wine, &case.args(&server.url, &["flush"]), &[]);
    ok(&out);
    assert_eq!(text(&out.stdout), "sent 6 event(s), 0 left in the queue\n");
    let mut ids: Vec<String> = server.events().iter().map(|e| e["message_id"].to_string()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 6, "every queued event once: {ids:?}");
}
