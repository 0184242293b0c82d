//! Fault injection: flaky, slow, silent and hostile servers and machines. Every case asserts on what
//! the server finally accepted: each event exactly once by message ID, in order, nothing extra.

use std::collections::HashSet;
use std::fs;
use std::path::Path;
use std::process::Command as StdCommand;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use crate::support::{Env, Peer, RawPeer, Reply, Server, eventually, net, refused_url, stderr, stdout, tools};
use serde_json::Value;

fn message_ids(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["messageId"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn outbox_lines(env: &Env) -> Vec<Value> {
    fs::read_to_string(env.state_dir("acme").join("outbox.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("outbox line is JSON"))
        .collect()
}

/// Queues `n` events against a refused port and returns their message IDs, oldest first.
fn queue_events(env: &Env, n: usize) -> Vec<String> {
    let url = refused_url();
    for i in 0..n {
        env.segment(&url)
            .args(["track", "Queued", "--prop", &format!("n={i}")])
            .assert()
            .success();
    }
    outbox_lines(env)
        .iter()
        .map(|e| e["message_id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn busy_server_is_retried_within_the_call_with_the_same_message_id() {
    let server = Server::with_plan(vec![Reply::Status(503), Reply::Status(500), Reply::Status(200)]);
    let env = Env::new();
    env.segment(&server.url)
        .args(["--timeout", "5s", "started"])
        .assert()
        .success();
    let all = message_ids(&server.events());
    assert_eq!(all.len(), 3, "two retries then success");
    assert!(
        all.iter().all(|id| *id == all[0]),
        "a retried event keeps its message ID: {all:?}"
    );
    assert_eq!(message_ids(&server.accepted()), [all[0].clone()]);
    assert!(outbox_lines(&env).is_empty());
}

#[test]
fn retry_after_is_honored_when_it_fits_and_queued_when_it_does_not() {
    let server = Server::with_plan(vec![Reply::RetryAfter(429, 1)]);
    let env = Env::new();
    env.segment(&server.url)
        .args(["--timeout", "4s", "started"])
        .assert()
        .success();
    assert_eq!(server.requests().len(), 2);
    assert_eq!(server.accepted().len(), 1);

    let server = Server::with_plan(vec![Reply::RetryAfter(503, 60)]);
    let env = Env::new();
    let out = env
        .segment(&server.url)
        .args(["--timeout", "1s", "started"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        stderr(&out).contains("HTTP 503; queued for the next call (1 in queue)"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        server.requests().len(),
        1,
        "a Retry-After past the deadline is not waited for"
    );
    let queued = outbox_lines(&env);
    assert_eq!(queued.len(), 1);
    env.segment(&server.url)
        .arg("flush")
        .assert()
        .success()
        .stdout("sent 1 event(s), 0 left in the queue\n");
    assert_eq!(
        message_ids(&server.accepted()),
        [queued[0]["message_id"].as_str().unwrap()]
    );
}

#[test]
fn queued_events_go_first_in_one_batch_and_keep_their_ids_and_timestamps() {
    let env = Env::new();
    let queued = queue_events(&env, 3);
    assert_eq!(queued.len(), 3);
    let stored = outbox_lines(&env);
    let server = Server::start();
    env.requeue_for(&server.url);
    env.segment(&server.url).arg("success").assert().success();
    let reqs = server.requests();
    assert_eq!(reqs.len(), 1, "queue and new event share one batch");
    let events = reqs[0].events();
    let ids = message_ids(&events);
    assert_eq!(&ids[..3], &queued[..]);
    assert_eq!(events[3]["event"], "Installation Success");
    for (sent, kept) in events.iter().zip(&stored) {
        assert_eq!(sent["timestamp"], kept["timestamp"]);
        assert_eq!(sent["properties"], kept["properties"]);
    }
    assert!(outbox_lines(&env).is_empty());
    let mode = |p: &Path| {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(p).map(|m| m.permissions().mode() & 0o777)
    };
    assert!(
        mode(&env.state_dir("acme").join("outbox.jsonl")).is_err(),
        "empty outbox removed"
    );
}

#[test]
fn outbox_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    queue_events(&env, 1);
    let mode = fs::metadata(env.state_dir("acme").join("outbox.jsonl"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn rejected_events_are_dropped_not_retried() {
    let env = Env::new();
    queue_events(&env, 2);
    let server = Server::with_plan(vec![Reply::Body(400, "{\"error\":\"invalid event\"}".into())]);
    env.requeue_for(&server.url);
    let out = env.segment(&server.url).arg("started").output().unwrap();
    assert!(out.status.success());
    assert!(
        stderr(&out).contains("HTTP 400: {\"error\":\"invalid event\"}; dropped 3 event(s)"),
        "{}",
        stderr(&out)
    );
    assert_eq!(server.requests().len(), 1);
    assert!(outbox_lines(&env).is_empty());
    env.segment(&server.url)
        .arg("flush")
        .assert()
        .success()
        .stdout("sent 0 event(s), 0 left in the queue\n");
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn flush_reports_and_strict_fails_while_events_are_left() {
    let env = Env::new();
    let queued = queue_events(&env, 4);
    let url = refused_url();
    env.requeue_for(&url);
    env.segment(&url)
        .arg("flush")
        .assert()
        .success()
        .stdout("sent 0 event(s), 4 left in the queue\n");
    env.segment(&url).args(["flush", "--strict"]).assert().code(1);
    let status = env.segment(&url).arg("status").output().unwrap();
    assert!(stdout(&status).contains("queued:     4 event(s)\n"));
    let server = Server::start();
    env.requeue_for(&server.url);
    env.segment(&server.url)
        .arg("flush")
        .assert()
        .success()
        .stdout("sent 4 event(s), 0 left in the queue\n");
    assert_eq!(message_ids(&server.accepted()), queued);
}

#[test]
fn a_slow_answer_past_the_deadline_is_queued_then_delivered_once_more_with_the_same_id() {
    let server = Server::with_plan(vec![Reply::Delay(Duration::from_millis(1500), 200)]);
    let env = Env::new();
    env.segment(&server.url)
        .args(["--timeout", "500ms", "started"])
        .assert()
        .success();
    let queued = outbox_lines(&env);
    assert_eq!(queued.len(), 1);
    thread::sleep(Duration::from_millis(1200));
    env.segment(&server.url).arg("flush").assert().success();
    let accepted: HashSet<String> = message_ids(&server.accepted()).into_iter().collect();
    assert_eq!(
        accepted,
        HashSet::from([queued[0]["message_id"].as_str().unwrap().to_owned()])
    );
}

#[test]
fn misbehaving_peers_never_hold_the_call_past_its_timeout() {
    for (peer, expect) in [
        (Peer::Silent, "no answer within"),
        (Peer::Reset, "queued"),
        (Peer::Trickle(Duration::from_millis(50)), "queued"),
    ] {
        let peer = RawPeer::start(peer);
        let env = Env::new();
        // assert_cmd kills the process after 30 s; the 1 s budget must end it long before.
        let out = env
            .segment(&peer.url)
            .args(["--timeout", "1s", "started"])
            .assert()
            .success();
        let stderr = stderr(out.get_output());
        assert!(stderr.contains(expect), "{stderr}");
        assert_eq!(outbox_lines(&env).len(), 1, "{stderr}");
    }
}

#[test]
fn an_endless_response_body_is_read_only_so_far() {
    let peer = RawPeer::start(Peer::Endless);
    let env = Env::new();
    env.segment(&peer.url)
        .args(["--timeout", "5s", "--strict", "started"])
        .assert()
        .success();
    assert!(
        outbox_lines(&env).is_empty(),
        "a 2xx status means delivered, whatever the body"
    );
}

#[test]
fn a_torn_outbox_line_is_skipped_and_the_rest_delivered() {
    let env = Env::new();
    let queued = queue_events(&env, 2);
    let server = Server::start();
    env.requeue_for(&server.url);
    let path = env.state_dir("acme").join("outbox.jsonl");
    let mut text = fs::read_to_string(&path).unwrap();
    let first = text.lines().next().unwrap().to_owned();
    text.push_str(&first[..first.len() / 2]);
    fs::write(&path, text).unwrap();
    let out = env.segment(&server.url).arg("flush").output().unwrap();
    assert!(
        stderr(&out).contains("skipped 1 unreadable line(s)"),
        "{}",
        stderr(&out)
    );
    assert_eq!(message_ids(&server.accepted()), queued);
    assert!(!path.exists());
}

#[test]
fn corrupt_or_empty_files_are_replaced_and_the_call_goes_on() {
    for (file, content) in [
        ("installation_id", ""),
        ("installation_id", "\u{0}\u{1}garbage"),
        ("state.json", ""),
        ("state.json", "{\"consent\":"),
        ("outbox.jsonl", "\u{0}\u{0}\n{not json}\n"),
    ] {
        let server = Server::start();
        let env = Env::new();
        fs::create_dir_all(env.state_dir("acme")).unwrap();
        fs::write(env.state_dir("acme").join(file), content).unwrap();
        let out = env.segment(&server.url).arg("started").output().unwrap();
        assert!(out.status.success(), "{file}: {}", stderr(&out));
        assert_eq!(server.accepted().len(), 1, "{file} {content:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("warning:"), "{file} {content:?}: no warning");
        let status = env.cmd().arg("status").output().unwrap();
        assert!(status.status.success());
    }
}

#[test]
fn id_file_path_that_is_a_directory_still_sends() {
    let server = Server::start();
    let env = Env::new();
    let dir = env.home.path().join("id-is-a-dir");
    fs::create_dir_all(&dir).unwrap();
    let out = env
        .segment(&server.url)
        .arg("--id-file")
        .arg(&dir)
        .arg("started")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(stderr(&out).contains("using a one-time ID"), "{}", stderr(&out));
    assert_eq!(server.accepted().len(), 1);
}

#[test]
fn unwritable_state_dir_sends_anyway() {
    let server = Server::start();
    let env = Env::new();
    let file = env.home.path().join("plain-file");
    fs::write(&file, "").unwrap();
    let out = env
        .segment(&server.url)
        .arg("--state-dir")
        .arg(file.join("state"))
        .arg("started")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(server.accepted().len(), 1);
    let stderr = stderr(&out);
    assert!(stderr.contains("one-time ID"), "{stderr}");
}

/// A read-only file system, made for real in a private mount namespace (needs root).
#[test]
fn read_only_file_system_sends_anyway_and_says_why() {
    let env = Env::new();
    let ro = env.home.path().join("ro");
    fs::create_dir_all(&ro).unwrap();
    if !net::namespace("-m", "mount") {
        return;
    }
    let server = Server::start();
    let bin = env!("CARGO_BIN_EXE_install-beacon");
    let script = format!(
        "mount -t tmpfs -o ro tmpfs '{ro}' && exec '{bin}' --product acme --endpoint {url} --key k --state-dir '{ro}/acme' started",
        ro = ro.display(),
        url = server.url
    );
    let out = StdCommand::new("unshare")
        .args(["-m", "sh", "-c", &script])
        .env_clear()
        .env("HOME", env.home.path())
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("Read-only file system"), "{}", stderr(&out));
    assert_eq!(server.accepted().len(), 1);
}

#[test]
fn home_unset_as_root_uses_var_lib() {
    if !fs::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0) {
        tools::cannot_run("needs root");
        return;
    }
    let product = format!("beacon-test-{}", std::process::id());
    let dir = Path::new("/var/lib").join(&product);
    let out = StdCommand::new(env!("CARGO_BIN_EXE_install-beacon"))
        .env_clear()
        .args(["--product", &product, "id", "--path"])
        .output()
        .unwrap();
    assert_eq!(stdout(&out).trim(), dir.join("installation_id").to_str().unwrap());
    let server = Server::start();
    let out = StdCommand::new(env!("CARGO_BIN_EXE_install-beacon"))
        .env_clear()
        .args([
            "--product",
            &product,
            "--endpoint",
            &server.url,
            "--key",
            "k",
            "started",
        ])
        .output()
        .unwrap();
    let id = fs::read_to_string(dir.join("installation_id"));
    let _ = fs::remove_dir_all(&dir);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(server.accepted()[0]["anonymousId"], id.unwrap().trim());
}

#[test]
fn proxy_pointing_nowhere_queues_and_no_proxy_bypasses_it() {
    let server = Server::start();
    let env = Env::new();
    let dead_proxy = refused_url();
    let out = env
        .segment(&server.url)
        .env("HTTPS_PROXY", &dead_proxy)
        .env("HTTP_PROXY", &dead_proxy)
        .arg("started")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(stderr(&out).contains("queued"), "{}", stderr(&out));
    assert!(server.requests().is_empty());
    env.segment(&server.url)
        .env("HTTP_PROXY", &dead_proxy)
        .env("NO_PROXY", "127.0.0.1")
        .arg("flush")
        .assert()
        .success()
        .stdout("sent 1 event(s), 0 left in the queue\n");
}

#[test]
fn tls_failure_never_falls_back_to_plain_http() {
    let server = Server::start();
    let env = Env::new();
    let https = server.url.replace("http://", "https://");
    let out = env
        .segment(&https)
        .args(["--timeout", "2s", "started"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(stderr(&out).contains("queued"), "{}", stderr(&out));
    assert!(
        server.requests().iter().all(|r| r.method != "POST"),
        "no plain-HTTP request may reach the server"
    );
}

#[test]
fn closed_stdin_and_stdout_do_not_fail_the_call() {
    let server = Server::start();
    let env = Env::new();
    let bin = env!("CARGO_BIN_EXE_install-beacon");
    let script = format!(
        "exec <&- ; '{bin}' --product acme --endpoint {url} --key k started --dry-run | head -c0; \
         '{bin}' --product acme --endpoint {url} --key k status >&- ; \
         '{bin}' --product acme --endpoint {url} --key k id >&- ; \
         exec >&- ; '{bin}' --product acme --endpoint {url} --key k started",
        url = server.url
    );
    let out = env
        .bin(Path::new("sh"))
        .args(["-c", &format!("{script}; echo rc=$? >&2")])
        .output()
        .unwrap();
    let stderr = stderr(&out);
    assert!(stderr.contains("rc=0"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(server.accepted().len(), 1);
}

#[test]
fn thirty_two_parallel_calls_yield_one_id_and_every_event_once() {
    for server_up in [false, true] {
        let env = Arc::new(Env::new());
        let server = Server::start();
        let url = if server_up { server.url.clone() } else { refused_url() };
        let barrier = Arc::new(Barrier::new(32));
        let handles: Vec<_> = (0..32)
            .map(|i| {
                let (env, barrier, url) = (env.clone(), barrier.clone(), url.clone());
                thread::spawn(move || {
                    let mut cmd = env.segment(&url);
                    cmd.args(["--quiet", "track", "Parallel", "--prop", &format!("n={i}")]);
                    barrier.wait();
                    cmd.assert().success();
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        if !server_up {
            env.requeue_for(&server.url);
        }
        env.segment(&server.url).arg("flush").assert().success();
        let accepted = server.accepted();
        let ids: HashSet<&str> = accepted.iter().map(|e| e["anonymousId"].as_str().unwrap()).collect();
        assert_eq!(ids.len(), 1, "one installation ID (server up: {server_up})");
        let file_id = fs::read_to_string(env.id_file("acme")).unwrap();
        assert!(ids.contains(file_id.trim()));
        let mut ns: Vec<i64> = accepted
            .iter()
            .map(|e| e["properties"]["n"].as_i64().unwrap())
            .collect();
        ns.sort_unstable();
        assert_eq!(
            ns,
            (0..32).collect::<Vec<_>>(),
            "every event exactly once (server up: {server_up})"
        );
        assert_eq!(message_ids(&accepted).into_iter().collect::<HashSet<_>>().len(), 32);
    }
}

/// `kill -9` at many moments of a call: the ID file and the outbox always stay readable, and a final
/// flush delivers each queued event once.
#[test]
fn kill_9_at_any_moment_leaves_readable_files() {
    let env = Env::new();
    let url = refused_url();
    let bin = env!("CARGO_BIN_EXE_install-beacon");
    for i in 0..40u64 {
        let mut child = StdCommand::new(bin)
            .env_clear()
            .env("HOME", env.home.path())
            .args([
                "--product",
                "acme",
                "--endpoint",
                &url,
                "--key",
                "wk_test_123456",
                "--quiet",
                "started",
            ])
            .spawn()
            .unwrap();
        thread::sleep(Duration::from_micros(250 * (i % 12)));
        let _ = child.kill();
        let _ = child.wait();
        if let Ok(id) = fs::read(env.id_file("acme")) {
            assert!(uuid_line(&id), "torn ID file after kill {i}: {id:?}");
        }
        let text = fs::read_to_string(env.state_dir("acme").join("outbox.jsonl")).unwrap_or_default();
        for line in text.lines() {
            assert!(
                serde_json::from_str::<Value>(line).is_ok(),
                "torn outbox line after kill {i}: {line}"
            );
        }
    }
    // One call left to finish: on a slow machine every kill may have come before anything was
    // queued, and the files the kills left must not stop a later call either.
    env.segment(&url).arg("started").assert().success();
    let queued: Vec<String> = outbox_lines(&env)
        .iter()
        .map(|e| e["message_id"].as_str().unwrap().to_owned())
        .collect();
    assert!(!queued.is_empty());
    let server = Server::start();
    env.requeue_for(&server.url);
    env.segment(&server.url).arg("flush").assert().success();
    assert_eq!(message_ids(&server.accepted()), queued);
}

fn uuid_line(bytes: &[u8]) -> bool {
    let text = String::from_utf8_lossy(bytes);
    text.ends_with('\n') && text.trim().len() == 36 && text.trim().split('-').count() == 5
}

#[test]
fn background_returns_at_once_and_a_detached_process_delivers() {
    let server = Server::with_plan(vec![Reply::Delay(Duration::from_millis(300), 200)]);
    let env = Env::new();
    env.segment(&server.url)
        .args(["--background", "started"])
        .assert()
        .success();
    eventually(
        Duration::from_secs(5),
        "the detached delivery emptied the outbox",
        || {
            let accepted = server.accepted();
            if !accepted.is_empty() && outbox_lines(&env).is_empty() {
                Ok(())
            } else {
                Err((accepted, outbox_lines(&env)))
            }
        },
    );
    let accepted = server.accepted();
    assert_eq!(accepted.len(), 1);
    assert_eq!(accepted[0]["event"], "Installation Started");
    assert!(outbox_lines(&env).is_empty());
}

/// A real TLS server with a self-signed certificate (openssl s_server): the handshake must fail,
/// the event is queued, and nothing goes out in plain text.
#[test]
fn bad_certificate_is_refused_and_queued() {
    if !tools::have("openssl", &["version"], "openssl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (key, cert) = (dir.path().join("key.pem"), dir.path().join("cert.pem"));
    let made = StdCommand::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output();
    let made = made.expect("run openssl");
    assert!(made.status.success(), "{}", stderr(&made));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = StdCommand::new("openssl")
        .args(["s_server", "-quiet", "-accept", &format!("127.0.0.1:{port}")])
        .arg("-cert")
        .arg(&cert)
        .arg("-key")
        .arg(&key)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    eventually(Duration::from_secs(5), "openssl s_server listening", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.kind())
    });
    let env = Env::new();
    let out = env
        .segment(&format!("https://127.0.0.1:{port}"))
        .args(["--timeout", "3s", "started"])
        .output()
        .unwrap();
    let _ = server.kill();
    let _ = server.wait();
    assert!(out.status.success());
    let stderr = stderr(&out);
    assert!(stderr.contains("TLS error") && stderr.contains("queued"), "{stderr}");
    assert_eq!(outbox_lines(&env).len(), 1);
}

#[test]
fn an_unusable_id_file_warns_once_and_one_id_serves_the_whole_call() {
    let server = Server::start();
    let env = Env::new();
    // A directory where the ID file should be: it can be neither read nor written.
    let id_dir = env.home.path().join("id-is-a-dir");
    fs::create_dir(&id_dir).unwrap();
    let out = env
        .segment(&server.url)
        .args(["--id-file", id_dir.to_str().unwrap(), "--once", "started"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = stderr(&out);
    assert_eq!(text.matches("cannot keep the installation ID").count(), 1, "{text}");
    let events = server.events();
    assert_eq!(events.len(), 1);
    let id = events[0]["anonymousId"].as_str().unwrap();
    let state: Value =
        serde_json::from_str(&fs::read_to_string(env.state_dir("acme").join("state.json")).unwrap()).unwrap();
    let once: Vec<&String> = state["sent_once"].as_object().unwrap().keys().collect();
    assert_eq!(
        once,
        [&format!("{id} Installation Started")],
        "--once recorded the ID that was sent"
    );
}
