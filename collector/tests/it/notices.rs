//! `serve --notices FILE`: notices per product and version in accepted responses, the file
//! validated at start and reloaded when it changes or on SIGHUP, a bad reload keeping the old one.

use std::time::Duration;

use serde_json::{Value, json};
use testkit::eventually;

use crate::common::{self, Collector};

const FILE: &str = r#"
[products.acme]
latest_version = "2.5.0"
[[products.acme.notices]]
below = "2.4.1"
text = "2.4.0 has a security issue: please upgrade"
[[products.acme.notices]]
text = "acme 3 is coming"
"#;

/// What the collector answers an installation of `product` at `version` (plain JSON endpoint).
fn answer(c: &Collector, product: &str, version: &str) -> Value {
    let event = json!({"event": "Installation Started", "installation_id": "i",
                       "properties": {"product": product, "product_version": version}});
    let (status, answer) = c.post_json("/events", &[], &event);
    assert_eq!(status, 200);
    answer
}

/// Polls until `product` at `version` gets `expected` (generous bound; fails after it).
fn wait_for(c: &Collector, product: &str, version: &str, expected: &Value) {
    eventually(Duration::from_secs(15), &format!("the answer {expected}"), || {
        let got = answer(c, product, version);
        if &got == expected { Ok(()) } else { Err(got) }
    });
}

#[test]
fn notices_reach_only_the_product_and_versions_they_target() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("notices.toml");
    std::fs::write(&file, FILE).unwrap();
    let path = file.to_str().unwrap();
    let c = Collector::start(&["--notices", path, "--latest-version", "9.0", "--notice", "for the rest"]);
    assert_eq!(
        answer(&c, "acme", "2.4.0"),
        json!({"success": true, "latest_version": "2.5.0",
               "notices": ["2.4.0 has a security issue: please upgrade", "acme 3 is coming"]})
    );
    assert_eq!(
        answer(&c, "acme", "2.4.1"),
        json!({"success": true, "latest_version": "2.5.0", "notices": ["acme 3 is coming"]})
    );
    assert_eq!(
        answer(&c, "other", "1.0"),
        json!({"success": true, "latest_version": "9.0", "notices": ["for the rest"]}),
        "products the file does not name get the command-line notices"
    );

    // Edited in place: picked up without a restart.
    std::fs::write(&file, FILE.replace("2.5.0", "2.6.0")).unwrap();
    wait_for(
        &c,
        "acme",
        "2.4.1",
        &json!({"success": true, "latest_version": "2.6.0", "notices": ["acme 3 is coming"]}),
    );

    // A broken file is refused and the notices in force stay.
    std::fs::write(&file, "[products.acme]\nlatest = \"oops\"\n").unwrap();
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(answer(&c, "acme", "2.4.1")["latest_version"], "2.6.0");

    // SIGHUP reloads even when the file looks unchanged (same size, same modification time).
    std::fs::write(&file, FILE.replace("2.5.0", "2.6.1")).unwrap();
    wait_for(
        &c,
        "acme",
        "2.4.1",
        &json!({"success": true, "latest_version": "2.6.1", "notices": ["acme 3 is coming"]}),
    );
    let modified = std::fs::metadata(&file).unwrap().modified().unwrap();
    // Written aside and renamed over it, so the watcher never sees a new time.
    let aside = dir.path().join("notices.new");
    std::fs::write(&aside, FILE.replace("2.5.0", "2.7.0")).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&aside)
        .unwrap()
        .set_modified(modified)
        .unwrap();
    std::fs::rename(&aside, &file).unwrap();
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        answer(&c, "acme", "2.4.1")["latest_version"],
        "2.6.1",
        "no change seen yet"
    );
    c.signal("HUP");
    wait_for(
        &c,
        "acme",
        "2.4.1",
        &json!({"success": true, "latest_version": "2.7.0", "notices": ["acme 3 is coming"]}),
    );
}

#[test]
fn a_bad_notices_file_stops_serve_with_the_entry_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("notices.toml");
    std::fs::write(
        &file,
        "[products.acme]\n[[products.acme.notices]]\nbelow = \"soon\"\ntext = \"x\"\n",
    )
    .unwrap();
    let db = dir.path().join("db.sqlite");
    let run = common::run([
        "serve".as_ref(),
        "--db".as_ref(),
        db.as_os_str(),
        "--notices".as_ref(),
        file.as_os_str(),
    ]);
    assert_eq!(run.code, Some(2));
    assert!(
        run.stderr
            .contains("products.acme.notices[0].below: \"soon\" is not a version (e.g. 2.4.1)"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("hint:"), "{}", run.stderr);
    let missing = dir.path().join("missing.toml");
    let run = common::run([
        "serve".as_ref(),
        "--db".as_ref(),
        db.as_os_str(),
        "--notices".as_ref(),
        missing.as_os_str(),
    ]);
    assert_eq!(run.code, Some(2));
    assert!(run.stderr.contains("cannot read"), "{}", run.stderr);
}
