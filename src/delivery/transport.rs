//! Sending one request: the `Transport` trait delivery works against, and `Http`, the real one:
//! one ureq agent (rustls, proxy from `HTTPS_PROXY`/`NO_PROXY`), every request bounded by the
//! call's deadline, each outcome classified as delivered, worth retrying, or rejected for good.
//! TLS roots and proxy settings plug in where `Http` builds its agent.

use std::io;
use std::thread;
use std::time::{Duration, Instant};

use ureq::Agent;
use ureq::unversioned::transport::{ConnectProxyConnector, Connector, TcpConnector};

use super::resolver::RoutedResolver;
use super::roots::Sources;
use super::tls::TlsConnector;
use crate::encode::{self, Request};

/// Most bytes of a response body read (for version notices); the rest is ignored.
const MAX_RESPONSE: u64 = 64 * 1024;
/// Most characters of a rejecting server's answer quoted in the warning.
const MAX_DETAIL: usize = 200;

/// What happened to one request.
#[derive(Debug)]
pub enum Attempt {
    /// 2xx; the response body, bounded.
    Delivered(Vec<u8>),
    /// Timeout, connection error, 408, 429 or 5xx: the events may go through later.
    Transient {
        /// One-line reason.
        reason: String,
        /// The server's `Retry-After`, when given in seconds.
        retry_after: Option<Duration>,
        /// Whether retrying within this call may help: the server answered but was busy, or the
        /// connection broke. A refused connection or failed DNS lookup goes straight to the outbox.
        retry_now: bool,
        /// The endpoint could not be reached at all: no answer before the deadline, or no route to
        /// it or to a name server. Later calls then queue without trying (`store::outage`).
        unreachable: bool,
    },
    /// Any other status: sending the same events again will not help.
    Rejected(String),
}

/// Sends requests until a deadline; delivery's only view of the network.
pub trait Transport {
    /// Posts one request within the time left.
    fn send(&self, request: &Request) -> Attempt;

    /// Time left before the deadline.
    fn remaining(&self) -> Duration;

    /// Waits before a retry.
    fn pause(&self, wait: Duration) {
        thread::sleep(wait);
    }
}

/// The HTTP client.
pub struct Http {
    agent: Agent,
    deadline: Instant,
}

impl Http {
    /// A transport whose requests all end by `deadline`, trusting the bundled roots, the system's
    /// and those of `roots`.
    pub fn new(deadline: Instant, roots: Sources) -> Http {
        let config = Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .user_agent(encode::user_agent())
            .build();
        let connector =
            ().chain(ConnectProxyConnector::default())
                .chain(TcpConnector::default())
                .chain(TlsConnector::new(roots));
        let agent = Agent::with_parts(config, connector, RoutedResolver::default());
        Http { agent, deadline }
    }
}

impl Transport for Http {
    fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    fn send(&self, request: &Request) -> Attempt {
        let remaining = self.remaining();
        if remaining.is_zero() {
            return Attempt::Transient {
                reason: "no time left before --timeout".into(),
                retry_after: None,
                retry_now: false,
                unreachable: false,
            };
        }
        let mut builder = self
            .agent
            .post(request.url.expose())
            .config()
            .timeout_global(Some(remaining))
            .build();
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        match builder.send(&request.body[..]) {
            Ok(mut response) => {
                let status = response.status().as_u16();
                let retry_after = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                let body = response
                    .body_mut()
                    .with_config()
                    .limit(MAX_RESPONSE)
                    .read_to_vec()
                    .unwrap_or_default();
                classify(status, body, retry_after)
            }
            Err(e) => Attempt::Transient {
                reason: describe(&e, remaining),
                retry_after: None,
                retry_now: broken_connection(&e),
                unreachable: unreachable(&e),
            },
        }
    }
}

fn classify(status: u16, body: Vec<u8>, retry_after: Option<Duration>) -> Attempt {
    match status {
        200..=299 => Attempt::Delivered(body),
        408 | 429 | 500..=599 => Attempt::Transient {
            reason: format!("server answered HTTP {status}"),
            retry_after,
            retry_now: true,
            unreachable: false,
        },
        _ => {
            let detail = crate::ui::plain(&String::from_utf8_lossy(&body), MAX_DETAIL);
            if detail.is_empty() {
                Attempt::Rejected(format!("server rejected the event: HTTP {status}"))
            } else {
                Attempt::Rejected(format!("server rejected the event: HTTP {status}: {detail}"))
            }
        }
    }
}

/// A connection that was made and then broke: worth one more try.
fn broken_connection(error: &ureq::Error) -> bool {
    match error {
        ureq::Error::Io(e) => matches!(
            e.kind(),
            io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::BrokenPipe
                | io::ErrorKind::UnexpectedEof
        ),
        ureq::Error::Protocol(_) => true,
        _ => false,
    }
}

/// A one-line reason for a failed request.
fn describe(error: &ureq::Error, budget: Duration) -> String {
    match error {
        ureq::Error::Timeout(_) => format!("no answer within {}", humantime::format_duration(round_ms(budget))),
        ureq::Error::HostNotFound => "DNS lookup failed: host not found".into(),
        ureq::Error::ConnectionFailed => "connection failed".into(),
        ureq::Error::Io(e) if e.kind() == io::ErrorKind::ConnectionRefused => "connection refused".into(),
        // The resolver's own no-route error carries no OS error code.
        ureq::Error::Io(e) if no_route(e) && e.raw_os_error().is_none() => format!("DNS lookup failed: {e}"),
        ureq::Error::Io(e) if no_route(e) => "no route to the host".into(),
        ureq::Error::Io(e) if e.kind() == io::ErrorKind::TimedOut => {
            format!("no answer within {}", humantime::format_duration(round_ms(budget)))
        }
        // std reports getaddrinfo failures as uncategorised I/O errors with this wording.
        ureq::Error::Io(e) if e.to_string().contains("lookup address information") => {
            let detail = e.to_string();
            let detail = detail.rsplit(": ").next().unwrap_or_default().to_owned();
            format!("DNS lookup failed: {detail}")
        }
        // rustls reports handshake and certificate failures as InvalidData I/O errors.
        ureq::Error::Io(e) if e.kind() == io::ErrorKind::InvalidData => format!("TLS error: {e}"),
        ureq::Error::Io(e) => format!("network error: {e}"),
        ureq::Error::Tls(e) => format!("TLS error: {e}"),
        ureq::Error::Rustls(e) => format!("TLS error: {e}"),
        ureq::Error::InvalidProxyUrl => "invalid proxy URL in HTTPS_PROXY/HTTP_PROXY/ALL_PROXY".into(),
        // May quote what the server sent.
        other => crate::ui::plain(&other.to_string(), MAX_DETAIL),
    }
}

/// No route to the host or to any name server: the machine is offline or firewalled.
fn no_route(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::NetworkUnreachable | io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkDown
    )
}

/// A failure that says the network does not reach the endpoint: a timeout or no route.
fn unreachable(error: &ureq::Error) -> bool {
    match error {
        ureq::Error::Timeout(_) => true,
        ureq::Error::Io(e) => e.kind() == io::ErrorKind::TimedOut || no_route(e),
        _ => false,
    }
}

fn round_ms(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis().try_into().unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        assert!(matches!(classify(200, vec![], None), Attempt::Delivered(_)));
        assert!(matches!(classify(204, vec![], None), Attempt::Delivered(_)));
        for s in [408, 429, 500, 503] {
            assert!(matches!(classify(s, vec![], None), Attempt::Transient { .. }), "{s}");
        }
        for s in [301, 400, 401, 404, 413] {
            assert!(matches!(classify(s, vec![], None), Attempt::Rejected(_)), "{s}");
        }
        let Attempt::Rejected(reason) = classify(400, b"{\"error\":\n \"bad\"}".to_vec(), None) else {
            panic!()
        };
        assert_eq!(reason, "server rejected the event: HTTP 400: {\"error\": \"bad\"}");
    }
}
