//! Ways a client without any secret could starve or skew the collector: slow bodies, spoofed
//! timestamps, rebinding the loopback report, filling the disk.

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use serde_json::json;

use crate::common::Collector;

/// Opens `n` connections that send their headers and one byte of a 100-byte body, then stall.
fn stalled_bodies(c: &Collector, n: usize) -> Vec<TcpStream> {
    let head = format!(
        "POST /events HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{",
        c.addr()
    );
    (0..n)
        .map(|_| {
            let mut s = TcpStream::connect(c.addr()).expect("connect");
            s.write_all(head.as_bytes()).expect("send headers");
            s
        })
        .collect()
}

#[test]
fn connections_that_stall_in_their_body_do_not_keep_real_events_out() {
    let c = Collector::start(&[]);
    let stalled = stalled_bodies(&c, 80);
    // Give the collector time to read all 80 heads and start on their bodies.
    std::thread::sleep(Duration::from_millis(500));

    let real = json!({"event": "Installation Started", "installation_id": "real", "properties": {"product": "acme"}});
    let (status, answer) = c.post_json("/events", &[], &real);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(c.stored(), 1, "the real event is stored");
    drop(stalled);
}

/// The soft and hard limits on open files of a running process.
fn open_files_limit(pid: u32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("/proc limits");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("Max open files");
    let mut values = line["Max open files".len()..].split_whitespace();
    let soft = values.next().expect("soft limit").to_string();
    (soft, values.next().expect("hard limit").to_string())
}

#[test]
fn the_open_files_soft_limit_is_raised_so_idle_connections_do_not_keep_events_out() {
    if !crate::tools::have("prlimit", &["--version"], "util-linux") {
        return;
    }
    let c = Collector::start_under(&["prlimit", "--nofile=256:4096"], &[]);
    assert_eq!(open_files_limit(c.pid()), ("4096".into(), "4096".into()));
    // More idle connections than the soft limit the collector was started with.
    let idle: Vec<TcpStream> = (0..300)
        .map(|_| TcpStream::connect(c.addr()).expect("connect"))
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let real = json!({"event": "Installation Started", "installation_id": "real", "properties": {"product": "acme"}});
    let (status, answer) = c.post_json("/events", &[], &real);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(c.stored(), 1);
    let stderr = c.stderr();
    assert!(
        !stderr.contains("accepting") && !stderr.contains("open files"),
        "{stderr}"
    );
    drop(idle);
}

#[test]
fn without_a_token_the_report_refuses_host_names_other_than_loopback() {
    let c = Collector::start(&[]);
    let real = json!({"event": "Installation Started", "installation_id": "i-1", "properties": {"product": "acme"}});
    assert_eq!(c.post_json("/events", &[], &real).0, 200);
    let port = c.addr().rsplit_once(':').unwrap().1.to_string();
    // What a page on a rebound name sends: its own name as Host.
    for host in [
        "rebind.example",
        &format!("rebind.example:{port}"),
        "127.0.0.1.nip.io",
        "[::2]",
    ] {
        for path in ["/", "/report.json"] {
            let reply = c.request(path, &[("Host", host)], None);
            assert_eq!(reply.status, 403, "{host} {path}: {}", reply.text);
            assert!(!reply.text.contains("acme"), "{}", reply.text);
        }
    }
    for host in [
        "localhost",
        &format!("localhost:{port}"),
        "127.0.0.1",
        &format!("127.0.0.1:{port}"),
        "[::1]",
        &format!("[::1]:{port}"),
    ] {
        let reply = c.request("/report.json", &[("Host", host)], None);
        assert_eq!(reply.status, 200, "{host}: {}", reply.text);
        assert!(reply.text.contains("\"product\":\"acme\""), "{}", reply.text);
    }
    // Ingest and the health check answer whatever the name.
    assert_eq!(c.request("/healthz", &[("Host", "rebind.example")], None).status, 200);
}

#[test]
fn json_reports_escape_del_and_c1_controls() {
    let c = Collector::start(&["--public", "--public-k", "2"]);
    let product = "ac\u{9b}31mme";
    for id in ["i-1", "i-2"] {
        let error = json!({"event": "Installation Error", "installation_id": id,
            "properties": {"product": product, "os": "linux\u{7f}", "step": "fetch\u{85}", "message": "no\u{9d}route", "exit_code": 7}});
        assert_eq!(c.post_json("/events", &[], &error).0, 200);
    }
    let raw = |c: char| ('\u{7f}'..='\u{9f}').contains(&c);
    let cli = crate::common::run_report(&c.db, &["--format", "json"]).ok();
    let (_, served) = c.get("/report.json");
    let (_, public) = c.get("/public.json");
    for (name, text) in [
        ("report --format json", &cli),
        ("/report.json", &served),
        ("/public.json", &public),
    ] {
        assert!(!text.contains(raw), "{name} has a raw control: {text:?}");
        assert!(text.contains(r"ac\u009b31mme"), "{name}: {text}");
        let parsed: serde_json::Value = serde_json::from_str(text).expect(name);
        assert!(parsed.to_string().contains(product), "{name} still means the same text");
    }
    for escaped in [r"linux\u007f", r"fetch\u0085", r"no\u009droute"] {
        assert!(cli.contains(escaped), "{escaped}: {cli}");
        assert!(served.contains(escaped), "{escaped}: {served}");
    }
}

/// Today's date (UTC), as the report writes it.
fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let out = std::process::Command::new("date")
        .args(["-u", "-d", &format!("@{secs}"), "+%F"])
        .output()
        .expect("date");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn events_dated_far_ahead_or_before_the_retention_count_when_received() {
    let c = Collector::start(&["--public", "--public-k", "2", "--retain", "30d"]);
    let event = |id: &str, name: &str, at: &str| json!({"event": name, "installation_id": id, "timestamp": at, "properties": {"product": "acme"}});
    let batch = json!([
        event("future-1", "Installation Started", "2031-01-06T10:00:00Z"),
        event("future-1", "Installation Success", "2031-01-06T10:05:00Z"),
        event("future-2", "Installation Started", "2030-06-01T00:00:00+02:00"),
        event("past-1", "Installation Started", "2020-01-01T00:00:00Z"),
    ]);
    assert_eq!(c.post_json("/events", &[], &batch).0, 200);

    let today = today();
    let report = c.report(&["--since", "30d"]);
    let acme = crate::common::product(&report, "acme");
    assert_eq!(acme["installations"]["started"], 3, "{acme:#}");
    let days: Vec<&str> = acme["daily"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["date"].as_str().unwrap())
        .collect();
    assert_eq!(days, [today.as_str()], "{acme:#}");
    assert_eq!(acme["daily"][0]["started"], 3);
    assert_eq!(acme["daily"][0]["succeeded"], 1);

    let (status, public) = c.get("/public.json");
    assert_eq!(status, 200);
    let public: serde_json::Value = serde_json::from_str(&public).unwrap();
    let weeks: Vec<&str> = public["products"][0]["weeks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["week_of"].as_str().unwrap())
        .collect();
    assert_eq!(weeks.len(), 1, "{public:#}");
    assert!(weeks[0] <= today.as_str() && !weeks[0].starts_with("203"), "{weeks:?}");

    // The sent time is kept apart from the time counted.
    let export = crate::common::run(["export", "--db", c.db.to_str().unwrap()]).ok();
    let first: serde_json::Value = serde_json::from_str(export.lines().next().unwrap()).unwrap();
    assert_eq!(first["sent_timestamp"], "2031-01-06T10:00:00Z");
    assert!(first["timestamp"].as_str().unwrap().starts_with(&today), "{first}");
}

/// `date -u -d WHEN` as ISO 8601.
fn utc(when: &str) -> String {
    let out = std::process::Command::new("date")
        .args(["-u", "-d", when, "+%FT%TZ"])
        .output()
        .expect("date");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn the_public_page_hides_no_small_group_that_subtraction_recovers() {
    let k = 3;
    let c = Collector::start(&["--public", "--public-k", "3"]);
    let (earlier, now) = (utc("21 days ago"), utc("now"));
    let mut events = Vec::new();
    for n in 0..5 {
        events.push(
            json!({"event": "Installation Started", "installation_id": format!("a{n}"), "timestamp": earlier,
            "properties": {"product": "acme", "os": "ubuntu", "product_version": "1.0"}}),
        );
    }
    // One installation this week, on its own OS: a group of one.
    events.push(
        json!({"event": "Installation Started", "installation_id": "lonely", "timestamp": now,
        "properties": {"product": "acme", "os": "alpine", "product_version": "1.0"}}),
    );
    assert_eq!(c.post_json("/events", &[], &json!(events)).0, 200);

    let (status, text) = c.get("/public.json");
    assert_eq!(status, 200);
    let public: serde_json::Value = serde_json::from_str(&text).unwrap();
    let acme = &public["products"][0];
    assert_eq!(acme["installations"], 6);
    let weeks = acme["weeks"].as_array().unwrap();
    let shown: u64 = weeks.iter().filter_map(|w| w["installations"].as_u64()).sum();
    let hidden = 6 - shown;
    assert!(
        hidden == 0 || hidden >= k,
        "total minus the shown weeks is {hidden}: {acme:#}"
    );
    assert!(weeks.iter().all(|w| w["installations"].is_null()), "{acme:#}");
    for list in ["os", "versions"] {
        let rows = acme[list].as_array().unwrap();
        let sum: u64 = rows.iter().map(|r| r["installations"].as_u64().unwrap()).sum();
        assert_eq!(sum, 6, "{list} sums to the total: {acme:#}");
        for r in rows {
            assert!(r["installations"].as_u64().unwrap() >= k, "{list}: {r}");
        }
    }
    assert_eq!(acme["os"], json!([{"name": "other", "installations": 6, "share": 1.0}]));
}

/// A tmpfs of `size` mounted on a temporary directory, unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// `None` (after saying why) where mounting is not allowed.
    fn mount(size: &str) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().expect("temp dir");
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !mounted {
            crate::tools::cannot_run("mounting a small tmpfs needs root (mount -t tmpfs)");
            return None;
        }
        Some(SmallDisk { dir })
    }

    fn resize(&self, size: &str) {
        let status = std::process::Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(self.dir.path())
            .status()
            .expect("mount");
        assert!(status.success(), "remount");
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

#[test]
fn a_full_disk_answers_503_with_retry_after_and_loses_no_acknowledged_event() {
    let Some(disk) = SmallDisk::mount("600k") else { return };
    let c = Collector::start_with_db(&disk.dir.path().join("events.sqlite"), &[]);
    let body = |b: usize| {
        let events: Vec<_> = (0..20)
            .map(|n| {
                json!({"event": "Installation Started", "installation_id": format!("i{b}-{n}"),
                "properties": {"product": "acme", "message": "x".repeat(200)}})
            })
            .collect();
        serde_json::to_vec(&events).unwrap()
    };
    let mut acknowledged = 0;
    let mut refused = None;
    for b in 0..500 {
        let reply = c.request("/events", &[], Some(&body(b)));
        match reply.status {
            200 => acknowledged += 20,
            503 => {
                refused = Some((b, reply));
                break;
            }
            other => panic!("batch {b}: {other} {}", reply.text),
        }
    }
    let (b, reply) = refused.expect("the disk fills up");
    assert!(acknowledged > 0);
    assert_eq!(reply.header("retry-after"), Some("60"), "{}", reply.text);
    assert_eq!(c.get("/healthz").0, 503);
    assert!(c.stderr().contains("is full"), "{}", c.stderr());

    disk.resize("8m");
    assert_eq!(
        c.request("/events", &[], Some(&body(b))).status,
        200,
        "stored once there is room"
    );
    acknowledged += 20;
    assert_eq!(c.get("/healthz"), (200, "ok\n".into()));
    assert_eq!(c.stored(), acknowledged, "every acknowledged event is kept");
}

#[test]
fn a_deleted_wal_file_is_detected_like_a_deleted_database() {
    let c = Collector::start(&[]);
    let event =
        |id: &str| json!({"event": "Installation Started", "installation_id": id, "properties": {"product": "acme"}});
    assert_eq!(c.post_json("/events", &[], &event("i-1")).0, 200);
    let wal = c.db.with_extension("sqlite-wal");
    std::fs::remove_file(&wal).expect("the -wal file exists while serve runs");

    assert_eq!(c.get("/healthz").0, 503);
    let (status, answer) = c.post_json("/events", &[], &event("i-2"));
    assert_eq!(status, 503, "nothing is acknowledged into a deleted log: {answer}");
    assert!(c.stderr().contains("-wal"), "{}", c.stderr());
}
