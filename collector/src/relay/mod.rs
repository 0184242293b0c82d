//! Relay: every stored event is also forwarded to PostHog or Segment, so a vendor's own domain can
//! stand in front of them (DNS blockers and firewalls stop their public hosts).
//!
//! Accepted events are queued in the same transaction that stores them (the store's queue), a
//! worker thread per backend sends the queue in that backend's batch format (`batch`) with the original message
//! IDs, so a resent batch is deduplicated by the backend, and retries with backoff (`worker`).

pub mod batch;
pub mod worker;

use std::fmt;
use std::str::FromStr;

/// Which analytics backend events are forwarded to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// PostHog's `/batch/` capture endpoint; the project key goes in the body.
    Posthog,
    /// Segment's `/v1/batch` tracking endpoint; the write key goes in HTTP Basic auth.
    Segment,
    /// `serve --notify-support URL`: each support request as one JSON message with a
    /// Slack-compatible `text`, POSTed to the URL as it is.
    Notify,
    /// OpenTelemetry logs, OTLP/HTTP JSON at `/v1/logs` (an OpenTelemetry Collector, and through it
    /// ClickHouse, Loki, Datadog, …); a key goes as `Authorization: Bearer KEY`, an empty one not at all.
    Otlp,
}

impl Backend {
    /// Its name on the command line and in the queue table.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Posthog => "posthog",
            Backend::Segment => "segment",
            Backend::Notify => "notify-support",
            Backend::Otlp => "otlp",
        }
    }

    /// Events sent in one request at most.
    pub fn batch_events(self) -> usize {
        match self {
            Backend::Notify => 1,
            Backend::Posthog | Backend::Segment | Backend::Otlp => 250,
        }
    }
}

/// `--forward BACKEND=URL`, before its key is paired with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// The backend's wire format.
    pub backend: Backend,
    /// Base URL without a trailing slash, e.g. `https://eu.i.posthog.com`.
    pub url: String,
}

impl FromStr for Destination {
    type Err = String;

    fn from_str(s: &str) -> Result<Destination, String> {
        let (name, url) = s
            .split_once('=')
            .ok_or_else(|| format!("{s:?} is not BACKEND=URL (e.g. posthog=https://eu.i.posthog.com)"))?;
        let backend = match name.trim() {
            "posthog" => Backend::Posthog,
            "segment" => Backend::Segment,
            "otlp" => Backend::Otlp,
            other => {
                return Err(format!(
                    "unknown backend {other:?}: use posthog=URL, segment=URL or otlp=URL"
                ));
            }
        };
        let url = url.trim().trim_end_matches('/');
        let host = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"))
            .ok_or_else(|| format!("{url:?} is not an http:// or https:// URL"))?;
        if host.is_empty() {
            return Err(format!("{url:?} has no host"));
        }
        Ok(Destination {
            backend,
            url: url.to_string(),
        })
    }
}

/// `base` (a `--forward` URL, which may carry a query) with `path` added to its path, before the
/// query: `https://h/ingest?token=t` + `/batch/` is `https://h/ingest/batch/?token=t`.
pub fn endpoint(base: &str, path: &str) -> String {
    let base = base.split_once('#').map_or(base, |(url, _)| url);
    match base.split_once('?') {
        Some((url, query)) => format!("{}{path}?{query}", url.trim_end_matches('/')),
        None => format!("{}{path}", base.trim_end_matches('/')),
    }
}

/// A `--forward` URL fit to show (page, `/report.json`, `report`, the database): its user and
/// password and every query value become `***`, its fragment is dropped.
pub fn masked(url: &str) -> String {
    let url = url.split_once('#').map_or(url, |(url, _)| url);
    let (url, query) = url.split_once('?').map_or((url, None), |(url, q)| (url, Some(q)));
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let (authority, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
    let host = authority
        .rsplit_once('@')
        .map_or(authority.to_string(), |(_, host)| format!("***@{host}"));
    let mut shown = if scheme.is_empty() {
        format!("{host}{path}")
    } else {
        format!("{scheme}://{host}{path}")
    };
    if let Some(query) = query {
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((name, _)) => format!("{name}=***"),
                None => "***".to_string(),
            })
            .collect();
        shown.push('?');
        shown.push_str(&pairs.join("&"));
    }
    shown
}

/// The targets of `--notify-support URL`s (http:// or https://), each its own queue.
pub fn notify_targets(urls: Vec<String>) -> Result<Vec<Target>, String> {
    let mut targets: Vec<Target> = Vec::new();
    for url in urls {
        let url = url.trim().to_string();
        let host = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
        if host.is_none_or(str::is_empty) {
            return Err(format!("--notify-support {url:?} is not an http:// or https:// URL"));
        }
        let target = Target {
            backend: Backend::Notify,
            url,
            key: String::new(),
        };
        if targets.iter().any(|t| t.queue() == target.queue()) {
            return Err(format!("--notify-support {} is given twice", target.shown_url()));
        }
        targets.push(target);
    }
    Ok(targets)
}

/// A backend events are forwarded to, with its key.
#[derive(Clone, PartialEq, Eq)]
pub struct Target {
    /// The backend's wire format.
    pub backend: Backend,
    /// Base URL without a trailing slash.
    pub url: String,
    /// PostHog project API key or Segment write key.
    pub key: String,
}

impl Target {
    /// The name of its queue: the backend's, or for a notification URL one derived from the URL
    /// (stable across restarts, whatever the order of the flags).
    pub fn queue(&self) -> String {
        match self.backend {
            Backend::Notify => {
                let id = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, self.url.as_bytes())
                    .simple()
                    .to_string();
                format!("notify-support-{}", &id[..8])
            }
            Backend::Posthog | Backend::Segment | Backend::Otlp => self.backend.as_str().to_string(),
        }
    }

    /// Its URL fit to show: [`masked`], and for a notification only scheme and host (a webhook's
    /// path is its secret, as in Slack's `/services/T…/B…/…`).
    pub fn shown_url(&self) -> String {
        let shown = masked(&self.url);
        match self.backend {
            Backend::Notify => {
                let (scheme, rest) = shown.split_once("://").unwrap_or(("", &shown));
                let host = rest.split(['/', '?']).next().unwrap_or_default();
                format!("{scheme}://{host}/***")
            }
            Backend::Posthog | Backend::Segment | Backend::Otlp => shown,
        }
    }

    /// Which events its queue takes: support requests for a notification, else all.
    pub fn only(&self) -> Option<&'static str> {
        match self.backend {
            Backend::Notify => Some(crate::event::names::SUPPORT),
            Backend::Posthog | Backend::Segment | Backend::Otlp => None,
        }
    }
}

impl fmt::Debug for Target {
    // The key stays out of logs and panics.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Target({}={})", self.backend.as_str(), self.shown_url())
    }
}

/// Pairs each `--forward` with its `--forward-key`, in order; one backend at most once.
pub fn targets(destinations: Vec<Destination>, keys: Vec<String>) -> Result<Vec<Target>, String> {
    if destinations.len() != keys.len() {
        return Err(format!(
            "{} --forward but {} --forward-key: give one --forward-key per --forward, in the same order",
            destinations.len(),
            keys.len()
        ));
    }
    let mut targets: Vec<Target> = Vec::new();
    for (d, key) in destinations.into_iter().zip(keys) {
        if targets.iter().any(|t| t.backend == d.backend) {
            return Err(format!("--forward {} is given twice", d.backend.as_str()));
        }
        if key.trim().is_empty() && d.backend != Backend::Otlp {
            return Err(format!("--forward-key for {} is empty", d.backend.as_str()));
        }
        targets.push(Target {
            backend: d.backend,
            url: d.url,
            key,
        });
    }
    Ok(targets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_parse_and_name_the_fix() {
        assert_eq!(
            "posthog=https://eu.i.posthog.com/".parse(),
            Ok(Destination {
                backend: Backend::Posthog,
                url: "https://eu.i.posthog.com".into()
            })
        );
        assert_eq!(
            "segment=http://127.0.0.1:9/".parse::<Destination>().map(|d| d.backend),
            Ok(Backend::Segment)
        );
        assert!(
            "amplitude=https://x"
                .parse::<Destination>()
                .unwrap_err()
                .contains("unknown backend")
        );
        assert!("posthog".parse::<Destination>().unwrap_err().contains("BACKEND=URL"));
        assert!(
            "posthog=eu.i.posthog.com"
                .parse::<Destination>()
                .unwrap_err()
                .contains("https://")
        );
    }

    #[test]
    fn paths_go_before_the_query_and_credentials_are_masked() {
        assert_eq!(endpoint("https://h.example", "/batch/"), "https://h.example/batch/");
        assert_eq!(
            endpoint("https://h.example/ingest/?token=t&x=1", "/v1/batch"),
            "https://h.example/ingest/v1/batch?token=t&x=1"
        );
        assert_eq!(
            masked("https://user:pa%40ss@h.example:8443/p?token=s3cret&flag#frag"),
            "https://***@h.example:8443/p?token=***&***"
        );
        assert_eq!(masked("https://eu.i.posthog.com"), "https://eu.i.posthog.com");
        assert_eq!(masked(&masked("https://u@h/?k=v")), "https://***@h/?k=***");
    }

    #[test]
    fn keys_pair_with_destinations() {
        let d = |s: &str| s.parse::<Destination>().unwrap();
        let t = targets(
            vec![d("posthog=https://a"), d("segment=https://b")],
            vec!["phc".into(), "wk".into()],
        )
        .unwrap();
        assert_eq!((t[0].key.as_str(), t[1].key.as_str()), ("phc", "wk"));
        assert!(
            targets(vec![d("posthog=https://a")], vec![])
                .unwrap_err()
                .contains("one --forward-key")
        );
        assert!(
            targets(
                vec![d("posthog=https://a"), d("posthog=https://b")],
                vec!["a".into(), "b".into()]
            )
            .unwrap_err()
            .contains("twice")
        );
        assert_eq!(format!("{:?}", t[0]), "Target(posthog=https://a)");
    }
}
