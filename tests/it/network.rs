//! Real networks, against the debug build and the shipped static binary: no network at all (a
//! fresh network namespace), a black-holed endpoint, HTTPS trusted through `SSL_CERT_FILE`,
//! `SSL_CERT_DIR` or the system bundle, an untrusted certificate, a forward proxy with credentials
//! and `NO_PROXY`, and an IPv6 endpoint. Each case asserts on what the receiver got.

use std::fs;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::net::{self, BlackHole, Ca, Proxy, TlsFront};
use crate::support::{Env, Server, eventually, refused_url, stderr as stderr_of, stdout, tools};

fn outbox(env: &Env) -> Vec<Value> {
    fs::read_to_string(env.state_dir("acme").join("outbox.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("outbox line is JSON"))
        .collect()
}

/// The outage saved in state.json (null when there is none).
fn outage(env: &Env) -> Value {
    let state = fs::read(env.state_dir("acme").join("state.json")).unwrap_or_default();
    serde_json::from_slice::<Value>(&state).map_or(Value::Null, |s| s["outage"].clone())
}

/// Waits until no detached delivery holds the state directory's delivery lock (the forks of the
/// last calls have had time to take it or give up).
fn wait_for_background_delivery(env: &Env) {
    std::thread::sleep(Duration::from_millis(200));
    let lock = env.state_dir("acme").join(".delivery.lock");
    eventually(
        Duration::from_secs(10),
        "the background delivery gave up the delivery lock",
        || {
            let free = fs::File::open(&lock).is_ok_and(|f| f.try_lock().is_ok());
            if free { Ok(()) } else { Err(lock.display().to_string()) }
        },
    );
}

/// `bin` in `env`'s clean environment, sending to `url` with the Segment protocol.
fn beacon(env: &Env, bin: &Path, url: &str) -> assert_cmd::Command {
    let mut cmd = env.bin(bin);
    cmd.args(["--product", "acme", "--endpoint", url, "--key", "wk_test_123456"]);
    cmd
}

/// Runs `bin` with `args` inside `unshare FLAGS sh -c 'SETUP && exec bin "$@"'` (root only).
fn in_namespace(env: &Env, flags: &str, setup: &str, bin: &Path, args: &[&str]) -> Output {
    let script = format!("{setup} exec \"$0\" \"$@\"");
    env.bin(Path::new("unshare"))
        .args([flags, "sh", "-c", &script])
        .arg(bin)
        .args(args)
        .output()
        .unwrap()
}

/// A delivered Segment batch carries exactly the one `Installation Started` event the call made.
fn assert_delivered_once(server: &Server, env: &Env, label: &str, stderr: &str) {
    let accepted = server.accepted();
    assert_eq!(accepted.len(), 1, "{label}: {stderr}");
    assert_eq!(accepted[0]["event"], "Installation Started", "{label}");
    let id = fs::read_to_string(env.id_file("acme")).unwrap();
    assert_eq!(accepted[0]["anonymousId"], id.trim(), "{label}");
    let request = &server.requests()[0];
    assert_eq!(request.url, "/v1/batch", "{label}");
    assert_eq!(
        request.header("authorization"),
        Some("Basic d2tfdGVzdF8xMjM0NTY6"),
        "{label}"
    );
    assert!(outbox(env).is_empty(), "{label}: nothing left queued");
}

/// No network at all (a fresh network namespace: no route anywhere), and a machine whose only name
/// server is a local one that is not running (loopback up, `nameserver 127.0.0.1`, nothing on port
/// 53): either way the call gives up at once and queues. musl's resolver used to poll the name
/// server for the whole --timeout.
#[test]
fn offline_or_without_a_name_server_the_call_returns_at_once_and_queues() {
    if !net::namespace("-n", "network") || !net::namespace("-m", "mount") || !tools::have("ip", &["-V"], "iproute2") {
        return;
    }
    let conf = tempfile::tempdir().unwrap();
    let resolv = conf.path().join("resolv.conf");
    fs::write(&resolv, "nameserver 127.0.0.1\n").unwrap();
    let dead_resolver = format!(
        "ip link set lo up && mount --bind '{}' /etc/resolv.conf &&",
        resolv.display()
    );
    for bin in net::binaries() {
        for (case, setup) in [("offline", ""), ("dead local resolver", dead_resolver.as_str())] {
            let env = Env::new();
            let args = [
                "--product",
                "acme",
                "--endpoint",
                "https://beacon-test.example.com",
                "--key",
                "k",
                "--timeout",
                "20s",
                "started",
            ];
            let start = Instant::now();
            let out = in_namespace(&env, "-nm", setup, &bin, &args);
            let took = start.elapsed();
            let stderr = stderr_of(&out);
            let label = format!("{} ({case})", bin.display());
            assert!(out.status.success(), "{label}: {stderr}");
            assert!(took < Duration::from_secs(3), "{label}: {took:?}");
            assert!(
                stderr.contains("DNS lookup failed: no reachable name server; queued for the next call (1 in queue)"),
                "{label}: {stderr}"
            );
            assert_eq!(outbox(&env).len(), 1, "{label}");
        }
    }
}

#[test]
fn https_trusted_through_ssl_cert_file_or_dir_is_delivered() {
    let ca = Ca::new("beacon test CA");
    for bin in net::binaries() {
        for var in ["SSL_CERT_FILE", "SSL_CERT_DIR"] {
            let server = Server::start();
            let front = TlsFront::start(&ca, &server);
            let env = Env::new();
            let value = if var == "SSL_CERT_FILE" {
                ca.pem.as_path()
            } else {
                ca.dir.path()
            };
            let out = beacon(&env, &bin, &front.url)
                .env(var, value)
                .args(["--strict", "started"])
                .output()
                .unwrap();
            let label = format!("{} {var}", bin.display());
            assert!(out.status.success(), "{label}: {}", stderr_of(&out));
            assert_delivered_once(&server, &env, &label, &stderr_of(&out));
        }
    }
}

#[test]
fn https_trusted_through_the_system_bundle_is_delivered() {
    if !net::namespace("-m", "mount") {
        return;
    }
    let ca = Ca::new("corporate inspection CA");
    let certs = tempfile::tempdir().unwrap();
    fs::copy(&ca.pem, certs.path().join("ca-certificates.crt")).unwrap();
    // The system path gets a bundle holding only the test CA, in a private mount namespace.
    let setup = format!("mount --bind '{}' /etc/ssl/certs &&", certs.path().display());
    for bin in net::binaries() {
        let server = Server::start();
        let front = TlsFront::start(&ca, &server);
        let env = Env::new();
        let args = [
            "--product",
            "acme",
            "--endpoint",
            &front.url,
            "--key",
            "wk_test_123456",
            "--strict",
            "started",
        ];
        let out = in_namespace(&env, "-m", &setup, &bin, &args);
        let label = bin.display().to_string();
        assert!(out.status.success(), "{label}: {}", stderr_of(&out));
        assert_delivered_once(&server, &env, &label, &stderr_of(&out));
    }
}

#[test]
fn https_with_an_untrusted_certificate_is_refused_and_queued() {
    let ca = Ca::new("unknown CA");
    for bin in net::binaries() {
        let server = Server::start();
        let front = TlsFront::start(&ca, &server);
        let env = Env::new();
        let out = beacon(&env, &bin, &front.url)
            .args(["--timeout", "5s", "started"])
            .output()
            .unwrap();
        let stderr = stderr_of(&out);
        assert!(out.status.success(), "{stderr}");
        assert!(
            stderr.contains("TLS error") && stderr.contains("UnknownIssuer") && stderr.contains("queued"),
            "{}: {stderr}",
            bin.display()
        );
        assert!(server.requests().is_empty(), "nothing may pass an untrusted handshake");
        assert_eq!(outbox(&env).len(), 1);
    }
}

#[test]
fn https_through_a_proxy_with_credentials_and_no_proxy() {
    let Some(proxy) = Proxy::start("beacon", "s3cret") else {
        return;
    };
    let ca = Ca::new("beacon test CA");
    for bin in net::binaries() {
        let server = Server::start();
        let front = TlsFront::start(&ca, &server);
        let port = front.url.rsplit(':').next().unwrap().to_owned();
        // By name, so the tunnel carries the name and the certificate is checked for it, not for
        // the proxy's address.
        let url = format!("https://localhost:{port}");

        // Wrong credentials: the proxy refuses the CONNECT, the event is queued.
        let env = Env::new();
        let out = beacon(&env, &bin, &url)
            .env("SSL_CERT_FILE", &ca.pem)
            .env("HTTPS_PROXY", proxy.url("beacon", "wrong"))
            .arg("started")
            .output()
            .unwrap();
        assert!(stderr_of(&out).contains("queued"), "{}", stderr_of(&out));
        assert!(server.requests().is_empty());

        // Right credentials: a CONNECT tunnel, TLS end to end, and the queued event goes first.
        let out = beacon(&env, &bin, &url)
            .env("SSL_CERT_FILE", &ca.pem)
            .env("HTTPS_PROXY", proxy.url("beacon", "s3cret"))
            .args(["--strict", "success"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}: {}", bin.display(), stderr_of(&out));
        let events: Vec<Value> = server.accepted();
        let names: Vec<&str> = events.iter().map(|e| e["event"].as_str().unwrap()).collect();
        assert_eq!(names, ["Installation Started", "Installation Success"]);
        let log = proxy.log();
        assert!(
            log.contains(&format!("CONNECT localhost:{port} HTTP/1.1")),
            "the proxy saw no CONNECT to the receiver: {log}"
        );

        // NO_PROXY bypasses a proxy that would refuse.
        let out = beacon(&env, &bin, &url)
            .env("SSL_CERT_FILE", &ca.pem)
            .env("HTTPS_PROXY", proxy.url("beacon", "wrong"))
            .env("NO_PROXY", "example.com,localhost")
            .args(["--strict", "started"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr_of(&out));
        assert_eq!(server.accepted().len(), 3);
    }
}

#[test]
fn https_to_an_ipv6_endpoint_is_delivered() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        tools::cannot_run("no IPv6 on loopback here");
        return;
    }
    let ca = Ca::new("beacon test CA");
    for bin in net::binaries() {
        let server = Server::at("[::1]:0", Vec::new());
        let front = TlsFront::start(&ca, &server);
        assert!(front.url.starts_with("https://[::1]:"), "{}", front.url);
        let env = Env::new();
        let out = beacon(&env, &bin, &front.url)
            .env("SSL_CERT_FILE", &ca.pem)
            .args(["--strict", "started"])
            .output()
            .unwrap();
        let label = bin.display().to_string();
        assert!(out.status.success(), "{label}: {}", stderr_of(&out));
        assert_delivered_once(&server, &env, &label, &stderr_of(&out));
    }
}

/// A name that resolves to loopback (a DNS sinkhole, as ad blockers answer) where nothing listens:
/// refused at once, queued, and no outage, so the next call tries again.
#[test]
fn a_dns_sinkhole_to_loopback_is_refused_at_once_and_retried_by_the_next_call() {
    for bin in net::binaries() {
        let env = Env::new();
        let url = refused_url().replace("127.0.0.1", "localhost");
        let out = beacon(&env, &bin, &url)
            .args(["--timeout", "20s", "started"])
            .output()
            .unwrap();
        assert!(
            stderr_of(&out).contains("connection refused; queued"),
            "{}",
            stderr_of(&out)
        );
        let out = beacon(&env, &bin, &url)
            .args(["--timeout", "20s", "success"])
            .output()
            .unwrap();
        assert!(
            stderr_of(&out).contains("could not send 'Installation Success'")
                && stderr_of(&out).contains("connection refused"),
            "{}",
            stderr_of(&out)
        );
        assert_eq!(outbox(&env).len(), 2);
    }
}

/// Credentials in the endpoint URL are not saved with an outage, and `status` still names it.
#[test]
fn an_outage_keeps_no_credentials_from_the_url() {
    let hole = BlackHole::start();
    let url = hole.url().replacen("://", "://ada:s3cret@", 1);
    let env = Env::new();
    let bin = Path::new(env!("CARGO_BIN_EXE_install-beacon"));
    beacon(&env, bin, &url)
        .args(["--timeout", "300ms", "started"])
        .assert()
        .success();
    let saved = fs::read_to_string(env.state_dir("acme").join("state.json")).unwrap();
    assert!(!saved.contains("s3cret"), "{saved}");
    assert_eq!(
        outage(&env)["url"],
        format!("{}/v1/batch", hole.url().replacen("://", "://ada:****@", 1))
    );
    let status = stdout(&beacon(&env, bin, &url).arg("status").output().unwrap());
    assert!(status.contains("\nnetwork:    unreachable for "), "{status}");
}

/// Ten calls against an endpoint that drops every SYN cost one --timeout, not ten; when the
/// endpoint comes back, every event arrives exactly once and calls go straight out again.
#[test]
fn a_black_hole_costs_one_timeout_per_install_and_no_event() {
    for bin in net::binaries() {
        let hole = BlackHole::start();
        let url = hole.url();
        let env = Env::new();
        let start = Instant::now();
        for n in 0..10 {
            let out = beacon(&env, &bin, &url)
                .args(["--timeout", "1s", "track", "Step", "--prop", &format!("n={n}")])
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", stderr_of(&out));
            let expect = if n == 0 {
                "no answer within"
            } else {
                "a background delivery retries"
            };
            assert!(stderr_of(&out).contains(expect), "call {n}: {}", stderr_of(&out));
        }
        let took = start.elapsed();
        // One timeout (1 s) and nine calls that queue at once; ten timeouts would be 10 s.
        assert!(
            took < Duration::from_secs(4),
            "{}: ten calls took {took:?}",
            bin.display()
        );
        assert_eq!(outbox(&env).len(), 10);
        assert_eq!(outage(&env)["url"], format!("{url}/v1/batch"));
        let status = stdout(&beacon(&env, &bin, &url).arg("status").output().unwrap());
        assert!(
            status.contains("\nnetwork:    unreachable for ")
                && status.contains(" s (no answer within ")
                && status.ends_with("); calls queue without trying until it answers\n"),
            "{}: {status}",
            bin.display()
        );

        // The endpoint comes back on the same port once the background attempt has given up.
        wait_for_background_delivery(&env);
        let server = hole.reopen();
        beacon(&env, &bin, &url)
            .args(["--timeout", "5s", "track", "Step", "--prop", "n=10"])
            .assert()
            .success();
        eventually(
            Duration::from_secs(5),
            "all 11 events delivered, the outage over",
            || {
                let accepted = server.accepted().len();
                if accepted >= 11 && outbox(&env).is_empty() && outage(&env).is_null() {
                    Ok(())
                } else {
                    Err((accepted, outbox(&env), outage(&env)))
                }
            },
        );
        let mut ns: Vec<i64> = server
            .accepted()
            .iter()
            .map(|e| e["properties"]["n"].as_i64().unwrap())
            .collect();
        ns.sort_unstable();
        assert_eq!(
            ns,
            (0..11).collect::<Vec<_>>(),
            "{}: every event exactly once",
            bin.display()
        );
        assert!(outbox(&env).is_empty());
        assert!(outage(&env).is_null(), "the first success ends the outage");

        // Back to normal: the next call delivers before it returns.
        beacon(&env, &bin, &url).args(["track", "After"]).assert().success();
        assert_eq!(server.accepted().len(), 12);
    }
}
