//! Who may read the report, which secrets are accepted from where, and that nothing is
//! acknowledged that was not stored.

use std::os::unix::fs::PermissionsExt;

use serde_json::json;

use crate::common::{self, Collector, basic};

fn event(id: &str) -> Vec<u8> {
    json!({"event": "Installation Started", "installation_id": id, "properties": {"product": "acme"}})
        .to_string()
        .into_bytes()
}

/// Asserts the read routes refuse `headers` with 401 and a Basic challenge.
fn refused(c: &Collector, headers: &[(&str, &str)]) {
    for path in ["/", "/report.json"] {
        let reply = c.request(path, headers, None);
        assert_eq!(reply.status, 401, "{path} {headers:?}: {}", reply.text);
        assert_eq!(
            reply.header("www-authenticate"),
            Some("Basic realm=\"beacon-collector\", charset=\"UTF-8\"")
        );
        assert!(!reply.text.contains("acme"), "{}", reply.text);
    }
}

/// Asserts the read routes answer `headers` with the report.
fn allowed(c: &Collector, headers: &[(&str, &str)]) {
    let reply = c.request("/report.json", headers, None);
    assert_eq!(reply.status, 200, "{headers:?}: {}", reply.text);
    assert!(reply.text.contains("\"product\":\"acme\""), "{}", reply.text);
    let page = c.request("/", headers, None);
    assert_eq!(page.status, 200);
    assert!(page.text.contains("<h2>acme</h2>"));
}

#[test]
fn read_routes_need_the_admin_token_from_any_source() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "# admin\nt0ken-from-file\n").unwrap();
    let file_arg = token_file.to_str().unwrap();
    let collectors = [
        ("t0ken-flag", Collector::start(&["--admin-token", "t0ken-flag"])),
        (
            "t0ken-env",
            Collector::start_with("127.0.0.1:0", &[], &[("BEACON_COLLECTOR_ADMIN_TOKEN", "t0ken-env")]),
        ),
        // The file wins over the variable.
        (
            "t0ken-from-file",
            Collector::start_with(
                "127.0.0.1:0",
                &["--admin-token-file", file_arg],
                &[("BEACON_COLLECTOR_ADMIN_TOKEN", "t0ken-env")],
            ),
        ),
    ];
    for (token, c) in &collectors {
        // Ingest and /healthz stay open.
        assert_eq!(c.post("/events", &[], &event("i-1")).0, 200);
        assert_eq!(c.get("/healthz"), (200, "ok\n".into()));

        refused(c, &[]);
        refused(c, &[("Authorization", "Bearer wrong")]);
        refused(c, &[("Authorization", &basic("t0ken"))]);
        let bearer = format!("Bearer {token}");
        allowed(c, &[("Authorization", &bearer)]);
        // A browser logs in with any user name and the token as the password.
        let login = common::basic_login("admin", token);
        allowed(c, &[("Authorization", &login)]);
        assert_eq!(c.stderr(), "", "nothing to warn about with a token");
    }
}

#[test]
fn without_a_token_the_report_answers_on_loopback_only_and_serve_says_so() {
    let local = Collector::start(&[]);
    assert_eq!(local.post("/events", &[], &event("i-1")).0, 200);
    allowed(&local, &[]);
    assert_eq!(
        local.stderr(),
        "note: no admin token; the report page and /report.json answer anyone who can reach this \
         loopback address\n"
    );

    let public = Collector::start_with("0.0.0.0:0", &[], &[]);
    assert_eq!(public.post("/events", &[], &event("i-1")).0, 200);
    for path in ["/", "/report.json"] {
        let reply = public.request(path, &[], None);
        assert_eq!(reply.status, 403, "{}", reply.text);
        assert!(!reply.text.contains("acme"));
    }
    assert_eq!(
        public.stderr(),
        "warning: no admin token; the report page and /report.json are refused (403) because \
         --listen is not a loopback address\n\
         hint: set BEACON_COLLECTOR_ADMIN_TOKEN or pass --admin-token-file\n"
    );
}

#[test]
fn write_keys_come_from_flags_a_file_or_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    std::fs::write(&keys, "# one key a line\nfile-key-1\n\n  file-key-2  \n").unwrap();
    let c = Collector::start_with(
        "127.0.0.1:0",
        &["--key", "flag-key", "--key-file", keys.to_str().unwrap()],
        &[("BEACON_COLLECTOR_KEY", "env-key")],
    );
    for key in ["flag-key", "file-key-1", "file-key-2"] {
        let auth = basic(key);
        assert_eq!(
            c.post("/events", &[("Authorization", &auth)], &event(key)).0,
            200,
            "{key}"
        );
    }
    let other = basic("# one key a line");
    assert_eq!(c.post("/events", &[("Authorization", &other)], &event("x")).0, 401);
    // A flag replaces the environment variable, as for every option.
    let env = basic("env-key");
    assert_eq!(c.post("/events", &[("Authorization", &env)], &event("x")).0, 401);

    let from_env = Collector::start_with("127.0.0.1:0", &[], &[("BEACON_COLLECTOR_KEY", "env-key")]);
    assert_eq!(from_env.post("/events", &[("Authorization", &env)], &event("e")).0, 200);
    assert_eq!(from_env.post("/events", &[], &event("e")).0, 401);

    let missing = dir.path().join("missing");
    let out = common::run([
        "serve",
        "--db",
        dir.path().join("db").to_str().unwrap(),
        "--key-file",
        missing.to_str().unwrap(),
    ]);
    assert_eq!(out.code, Some(2));
    assert_eq!(
        out.stderr,
        format!(
            "error: cannot read --key-file {}: No such file or directory (os error 2)\n\
             hint: name a readable file, one secret per line\n",
            missing.display()
        )
    );
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "# nothing\n\n").unwrap();
    let out = common::run([
        "serve",
        "--db",
        dir.path().join("db").to_str().unwrap(),
        "--admin-token-file",
        empty.to_str().unwrap(),
    ]);
    assert_eq!(out.code, Some(2));
    assert_eq!(
        out.stderr,
        format!(
            "error: --admin-token-file {} holds no secret\n\
             hint: put the secret on a line of its own (lines starting with # are skipped)\n",
            empty.display()
        )
    );
}

#[test]
fn a_deleted_or_replaced_database_is_never_acknowledged() {
    for replace in [false, true] {
        let c = Collector::start(&[]);
        assert_eq!(c.post("/events", &[], &event("before")).0, 200);
        std::fs::remove_file(&c.db).unwrap();
        if replace {
            std::fs::write(&c.db, b"").unwrap();
        }
        let (status, answer) = c.post("/events", &[], &event("after"));
        assert_eq!(status, 503, "{answer}");
        assert_eq!(answer["success"], false);
        let (status, health) = c.get("/healthz");
        assert_eq!(status, 503, "{health}");
        assert_eq!(
            health,
            "unavailable: the database file (or its -wal) was deleted or replaced while open\n"
        );
        let (status, report) = c.get("/report.json");
        assert_eq!(status, 503, "{report}");
        let dir = c.db.parent().unwrap().to_str().unwrap();
        for body in [answer.to_string(), health, report] {
            assert!(!body.contains(dir), "a path reached the client: {body}");
        }
        // The operator is told where.
        assert!(c.stderr().contains(c.db.to_str().unwrap()), "{}", c.stderr());
    }
}

#[test]
fn the_database_and_its_wal_and_shm_are_private() {
    let c = Collector::start(&[]);
    assert_eq!(c.post("/events", &[], &event("i")).0, 200);
    for suffix in ["", "-wal", "-shm"] {
        let path = format!("{}{suffix}", c.db.display());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{path} is {mode:o}");
    }
}

#[test]
fn report_output_cannot_drive_the_terminal_or_a_spreadsheet() {
    let c = Collector::start(&[]);
    let hostile = json!([
        {"event": "Installation Started", "installation_id": "a",
         "properties": {"product": "evil\u{1b}]0;pwned\u{7}\u{1b}[2J", "os": "=HYPERLINK(\"http://x\")",
                        "os_version": "+1", "product_version": "-2+3"}},
        {"event": "Installation Error", "installation_id": "a",
         "properties": {"product": "evil\u{1b}]0;pwned\u{7}\u{1b}[2J", "step": "@SUM(A1)", "exit_code": -1}}
    ]);
    assert_eq!(c.post_json("/events", &[], &hostile).0, 200);

    let table = common::run_report(&c.db, &[]).ok();
    assert!(!table.contains('\u{1b}') && !table.contains('\u{7}'), "{table:?}");
    assert!(table.contains("== evil\\u{1b}]0;pwned\\u{7}\\u{1b}[2J =="), "{table}");

    let csv = common::run_report(&c.db, &["--format", "csv"]).ok();
    assert!(!csv.contains('\u{1b}'), "{csv:?}");
    for line in [
        r#"os,evil\u{1b}]0;pwned\u{7}\u{1b}[2J,"'=HYPERLINK(""http://x"")",'+1,1,0,1,0,0,0,,,"#.to_string(),
        "version,evil\\u{1b}]0;pwned\\u{7}\\u{1b}[2J,'-2+3,,1,0,1,0,0,0,,,".to_string(),
        // The exit code is a number of ours, not stored text: left as is.
        "failing_step,evil\\u{1b}]0;pwned\\u{7}\\u{1b}[2J,'@SUM(A1),-1,,,,,,,,,1".to_string(),
    ] {
        assert!(csv.contains(&line), "no line {line}\nin\n{csv}");
    }
}
