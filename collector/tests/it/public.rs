//! `serve --public`: `/public` and `/public.json` without a credential, aggregates only, every
//! bucket of fewer than k installations merged into "other", nothing that reaches a person.

use serde_json::{Value, json};

use crate::common::{Collector, facts, with};

/// 12 installations of acme (9 on ubuntu, 3 on alpine), 2 of a product too small to name; one
/// failure with a message, one support request with an email.
fn scenario(c: &Collector) {
    let mut events = Vec::new();
    for n in 0..14 {
        let (product, os) = match n {
            0..9 => ("acme", "ubuntu"),
            9..12 => ("acme", "alpine"),
            _ => ("tiny-internal", "debian"),
        };
        let id = format!("secret-install-{n}");
        let p = facts(product, "2.4.0", os, "1");
        events.push(json!({"event": "Installation Started", "installation_id": id, "properties": p}));
        let outcome = if n == 3 {
            json!({"event": "Installation Error", "installation_id": id,
                   "properties": with(p.clone(), json!({"step": "db", "exit_code": 5, "message": "secret-message"}))})
        } else {
            json!({"event": "Installation Success", "installation_id": id, "properties": p})
        };
        events.push(outcome);
    }
    events.push(json!({"event": "Installation Support", "installation_id": "secret-install-3",
                       "properties": with(facts("acme", "2.4.0", "ubuntu", "1"), json!({"email": "someone@example.com"}))}));
    assert_eq!(c.post_json("/events", &[], &json!(events)).0, 200);
}

fn assert_anonymous(text: &str) {
    for private in [
        "secret-install",
        "secret-message",
        "someone@example.com",
        "tiny-internal",
    ] {
        assert!(!text.contains(private), "{private} on the public page:\n{text}");
    }
}

#[test]
fn the_public_page_shows_aggregates_only_and_needs_no_token() {
    let c = Collector::start(&["--public", "--public-k", "5", "--admin-token", "admin-only"]);
    scenario(&c);
    assert_eq!(
        c.request("/", &[], None).status,
        401,
        "the admin page still needs the token"
    );
    let page = c.request("/public", &[], None);
    assert_eq!(page.status, 200);
    assert_anonymous(&page.text);
    assert!(page.text.contains("<h2>acme</h2>") && page.text.contains("Installations per week"));
    assert!(!page.text.contains("<script"), "no JS");

    let json = c.request("/public.json", &[], None);
    assert_eq!(json.status, 200);
    assert_anonymous(&json.text);
    let r: Value = serde_json::from_str(&json.text).unwrap();
    assert_eq!(r["k"], 5);
    let acme = &r["products"][0];
    assert_eq!(
        (acme["product"].as_str(), acme["installations"].as_u64()),
        (Some("acme"), Some(12))
    );
    assert_eq!(acme["success_rate"], 0.9167);
    assert_eq!(
        acme["os"],
        json!([{"name": "other", "installations": 12, "share": 1.0}]),
        "3 others alone would be under k, so ubuntu's 9 join them"
    );
    assert_eq!(acme["failure_steps"], json!([]), "1 failure is under k");
    assert_eq!(
        r["products"].as_array().unwrap().len(),
        1,
        "a product under k is not named"
    );
    assert_eq!(
        r["other_products"],
        Value::Null,
        "nor counted when the rest is under k too"
    );
}

#[test]
fn without_public_there_is_no_public_page() {
    let c = Collector::start(&[]);
    assert_eq!(c.request("/public", &[], None).status, 404);
    assert_eq!(c.request("/public.json", &[], None).status, 404);
}
