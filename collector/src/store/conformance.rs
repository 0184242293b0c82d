//! What every [`Store`] must do, checked through the trait alone: each implementation runs these
//! against a fresh store of its own (see the tests of `sqlite/mod.rs`), so a second database
//! passes the same suite.

use serde_json::{Value, json};

use super::{Forward, Scope, Settled, Status, Store};
use crate::event::{Event, Fallbacks, Protocol, names};

/// One check: it panics when the store does not behave.
pub type Check = fn(&dyn Store);

/// Every check, by name.
pub const ALL: [(&str, Check); 5] = [
    ("relay_queue", relay_queue),
    ("attempts_and_outcomes", attempts_and_outcomes),
    ("forget_and_export", forget_and_export),
    (
        "aggregates_count_what_a_scan_counts",
        crate::report::tests::aggregates_count_what_a_scan_counts,
    ),
    (
        "forget_retain_and_rebuild_keep_the_aggregates",
        forget_retain_and_rebuild_keep_the_aggregates,
    ),
];

/// An event of product `acme` sent at `ts`, with `props` added to its properties.
pub fn event(id: &str, installation: &str, name: &str, ts: &str, props: Value) -> Event {
    let mut properties = json!({"product": "acme"}).as_object().cloned().unwrap_or_default();
    if let Value::Object(p) = props {
        properties.extend(p);
    }
    Event::new(
        Protocol::Json,
        Some(id.into()),
        name.into(),
        installation.into(),
        Some(ts.into()),
        properties,
        Fallbacks::default(),
    )
}

/// Events stored once are queued once per backend, and settle as the backend answered.
fn relay_queue(store: &dyn Store) {
    let event = |id: &str| event(id, "i", "E", "2026-11-23T10:00:00Z", json!({}));
    assert_eq!(store.forwarding().unwrap(), vec![]);
    let target = [
        Forward {
            name: "posthog",
            url: "http://x",
            only: None,
        },
        Forward {
            name: "support-notify",
            url: "http://y",
            only: Some(names::SUPPORT),
        },
    ];
    assert_eq!(store.forward_to(&target).unwrap(), vec![]);
    store.insert(&[event("a"), event("b"), event("a")], 5).unwrap();
    store.insert(&[event("b"), event("c")], 6).unwrap();
    assert_eq!(
        store.queued("support-notify", 10).unwrap(),
        vec![],
        "only support requests for it"
    );
    let queued = store.queued("posthog", 10).unwrap();
    let ids: Vec<&str> = queued.iter().map(|q| q.message_id.as_str()).collect();
    assert_eq!(ids, ["a", "b", "c"]);

    store
        .settle("posthog", &queued[..1], &Settled::Failed("503".into()), 1_000)
        .unwrap();
    store
        .settle("posthog", &queued[..1], &Settled::Failed("503 again".into()), 2_000)
        .unwrap();
    let s = &store.forwarding().unwrap()[0];
    assert_eq!((s.queued, s.forwarded), (3, 0));
    assert_eq!(store.forward_to(&[]).unwrap(), vec![("posthog".to_string(), 3)]);
    store.forward_to(&target).unwrap();
    assert_eq!(s.failing_since.as_deref(), Some("1970-01-01T00:00:01Z"));
    assert_eq!(s.last_error.as_deref(), Some("503 again"));

    store
        .settle("posthog", &queued[..2], &Settled::Forwarded, 3_000)
        .unwrap();
    store
        .settle("posthog", &queued[2..], &Settled::Rejected("400".into()), 4_000)
        .unwrap();
    let s = &store.forwarding().unwrap()[0];
    assert_eq!((s.queued, s.forwarded, s.rejected), (0, 2, 1));
    assert_eq!(s.failing_since, None);
    assert!(store.queued("posthog", 10).unwrap().is_empty());
}

/// Duplicates are stored once; the latest attempt decides an installation's status.
fn attempts_and_outcomes(store: &dyn Store) {
    let events = [
        event("1", "a", names::STARTED, "2026-11-23T10:00:00Z", json!({"attempt": 1})),
        event(
            "2",
            "a",
            names::ERROR,
            "2026-11-23T10:01:00Z",
            json!({"attempt": 1, "step": "db"}),
        ),
        event("3", "a", names::STARTED, "2026-11-23T10:02:00Z", json!({"attempt": 2})),
        event("4", "a", names::SUCCESS, "2026-11-23T10:03:00Z", json!({"attempt": 2})),
        event("5", "b", names::STARTED, "2026-11-23T10:00:00Z", json!({})),
    ];
    let inserted = store.insert(&events, 1_800_000_000_000).unwrap();
    assert_eq!((inserted.stored, inserted.duplicates), (5, 0));
    let inserted = store.insert(&events[..2], 1_800_000_000_000).unwrap();
    assert_eq!((inserted.stored, inserted.duplicates), (0, 2));

    let products = ["acme".to_string()];
    let scope = Scope {
        since_ms: i64::MIN,
        until_ms: i64::MAX,
        products: &products,
    };
    let mut cells = store.outcome_cells(&scope).unwrap();
    cells.sort_by_key(|c| c.status == Status::Succeeded);
    let summary: Vec<_> = cells
        .iter()
        .map(|c| (c.status, c.installations, c.attempts, c.earlier_failed, c.had_failed))
        .collect();
    assert_eq!(
        summary,
        [(Status::Abandoned, 1, 1, 0, 0), (Status::Succeeded, 1, 2, 1, 1)]
    );
    assert_eq!(store.products(10).unwrap(), products);
    let steps = store.failing_steps(&scope, 10).unwrap();
    assert_eq!((steps[0].step.as_str(), steps[0].events), ("db", 1));
}

/// `forget` deletes an installation everywhere; `each_event` hands out the rest, oldest first.
fn forget_and_export(store: &dyn Store) {
    let events = [
        event("1", "keep", names::STARTED, "2026-11-23T10:00:00Z", json!({})),
        event("2", "gone", names::STARTED, "2026-11-23T10:01:00Z", json!({})),
        event(
            "3",
            "gone",
            names::SUPPORT,
            "2026-11-23T10:02:00Z",
            json!({"email": "a@example.com"}),
        ),
    ];
    store.insert(&events, 1_800_000_000_000).unwrap();
    let forgotten = store.forget("gone").unwrap();
    assert_eq!((forgotten.events, forgotten.installations), (2, 1));
    let mut left = Vec::new();
    let n = store
        .each_event(&mut |e| {
            left.push(e.message_id);
            Ok(())
        })
        .unwrap();
    assert_eq!((n, left), (1, vec!["1".to_string()]));
}

/// `forget` takes an installation out of the aggregates, `retain` leaves them as they were, and
/// `rebuild` computes them again to the same report.
fn forget_retain_and_rebuild_keep_the_aggregates(store: &dyn Store) {
    crate::store::seed::seed(store, 5_000, 60, 11).unwrap();
    let now_ms = crate::clock::now_ms();
    let q = crate::report::Query {
        show_emails: true,
        running_ms: 0,
        now_ms,
        ..crate::report::Query::default()
    };
    let report = || serde_json::to_value(crate::report::run(store, &q).unwrap()).unwrap();
    let before = report();
    let rebuilt = store.rebuild().unwrap();
    assert!(rebuilt.installations > 1_000, "{rebuilt:?}");
    assert_eq!(report(), before, "rebuild changes nothing");

    // An installation that failed and asked for support, forgotten: as if it never came.
    let mut id = String::new();
    store
        .each_event(&mut |e| {
            if e.event == names::SUPPORT && id.is_empty() {
                id = e.installation_id;
            }
            Ok(())
        })
        .unwrap();
    store.forget(&id).unwrap();
    let forgotten = report();
    assert_ne!(forgotten, before);
    store.rebuild().unwrap();
    assert_eq!(report(), forgotten, "forget leaves what a rebuild computes");

    // Retention deletes raw events, not what they counted: the report and a rebuild stay.
    let retained = store.retain(now_ms - 30 * crate::clock::DAY_MS).unwrap();
    assert!(retained.events > 100, "{retained:?}");
    let mut kept = report();
    let strip = |r: &mut Value| {
        // The latest support requests are read from the raw events.
        for p in r["products"].as_array_mut().into_iter().flatten() {
            p["support"]["requests"] = json!([]);
            p["support"]["emails"] = json!([]);
        }
    };
    strip(&mut kept);
    let mut expected = forgotten.clone();
    strip(&mut expected);
    assert_eq!(kept, expected, "retention keeps the counts");
    store.rebuild().unwrap();
    let mut again = report();
    strip(&mut again);
    assert_eq!(again, expected, "a rebuild after retention keeps them too");
}
