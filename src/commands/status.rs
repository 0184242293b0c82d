//! `status`: whether telemetry is on, what decided it, and where things go.

use crate::delivery::outbox::Outbox;
use crate::encode::{Target, mask};
use crate::session::Session;
use crate::store::throttle;
use crate::ui;

/// Prints the table.
pub fn status(session: &Session) {
    let s = session.settings;
    let none = || "(none)".to_owned();
    let id_file = match &s.id_file {
        Some(p) if p.exists() => p.display().to_string(),
        Some(p) => format!("{} (not created yet)", p.display()),
        None => none(),
    };
    let target = s.endpoint.as_ref().map(|endpoint| Target {
        protocol: s.protocol,
        endpoint: endpoint.clone(),
        key: s.key.clone(),
        headers: s.otlp_headers.clone(),
    });
    let endpoint = target.as_ref().map_or_else(none, |t| t.url().to_string());
    let outbox = target.and_then(|t| Some(Outbox::new(s.state_dir.clone()?, t.destination())));
    let queued = match outbox.map(|o| o.load()) {
        Some(Ok(c)) if c.foreign + c.expired > 0 => format!(
            "{} event(s), {} for another destination",
            c.events.len(),
            c.foreign + c.expired
        ),
        Some(Ok(c)) => format!("{} event(s)", c.events.len()),
        Some(Err(e)) => format!("unreadable: {e}"),
        None => none(),
    };
    let now = throttle::now_secs();
    let network = (session.saved.outage.as_ref())
        .filter(|o| o.holds(&endpoint, now))
        .map(|o| format!("{}; calls queue without trying until it answers", o.summary(now)));
    let mut rows = vec![
        ("telemetry", session.decision.state.name().to_owned()),
        ("decided by", session.decision.source.to_string()),
        (
            "product",
            format!("{} {}", s.product, s.product_version.as_deref().unwrap_or(""))
                .trim_end()
                .to_owned(),
        ),
        ("protocol", s.protocol.name().to_owned()),
        ("endpoint", endpoint),
        ("key", s.key.as_deref().map_or_else(none, mask)),
        (
            "state dir",
            match (&s.state_dir, &s.state_dir_refused) {
                (Some(d), _) => d.path().display().to_string(),
                (None, Some(refused)) => refused.clone(),
                (None, None) => none(),
            },
        ),
        ("id file", id_file),
        ("queued", queued),
    ];
    if let Some(network) = network {
        rows.push(("network", network));
    }
    let text: String = rows
        .iter()
        .map(|(k, v)| format!("{:<11} {v}\n", format!("{k}:")))
        .collect();
    ui::stdout(&text);
}
