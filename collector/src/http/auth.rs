//! Credentials carried by requests: the write key of ingest routes and the admin token of read
//! routes.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use base64::Engine;

use super::error;
use crate::secret;

/// What an `Authorization` header carries.
enum Credential {
    /// `Basic base64(user:password)`.
    Basic { user: String, password: String },
    /// `Bearer token`.
    Bearer(String),
}

fn credential(headers: &HeaderMap) -> Option<Credential> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, rest) = value.split_once(' ')?;
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD.decode(rest.trim()).ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (user, password) = text.split_once(':').unwrap_or((text.as_str(), ""));
        Some(Credential::Basic {
            user: user.to_string(),
            password: password.to_string(),
        })
    } else if scheme.eq_ignore_ascii_case("bearer") {
        Some(Credential::Bearer(rest.trim().to_string()))
    } else {
        None
    }
}

/// The key in `Authorization: Basic base64(key:)` or `Authorization: Bearer key`.
pub fn header_key(headers: &HeaderMap) -> Option<String> {
    match credential(headers)? {
        Credential::Basic { user, .. } => Some(user),
        Credential::Bearer(key) => Some(key),
    }
    .filter(|k| !k.is_empty())
}

/// Who may use the read routes (the report page and `/report.json`).
#[derive(Debug, Clone)]
pub enum ReadAccess {
    /// Whoever presents this token.
    Token(String),
    /// Anyone: no token is set and the collector listens on a loopback address only.
    Loopback,
    /// No one: no token is set and the collector listens beyond loopback.
    Closed,
}

impl ReadAccess {
    /// The admin token if there is one, else open on a loopback `listen` address and closed on
    /// any other.
    pub fn new(token: Option<String>, listen: std::net::SocketAddr) -> ReadAccess {
        match token {
            Some(token) => ReadAccess::Token(token),
            None if listen.ip().is_loopback() => ReadAccess::Loopback,
            None => ReadAccess::Closed,
        }
    }

    /// What `serve` says about the read routes at start, if anything.
    pub fn notice(&self) -> Option<&'static str> {
        match self {
            ReadAccess::Token(_) => None,
            ReadAccess::Loopback => Some(
                "note: no admin token; the report page and /report.json answer anyone who can reach this loopback address",
            ),
            ReadAccess::Closed => Some(
                "warning: no admin token; the report page and /report.json are refused (403) because --listen is not a loopback address\n\
                 hint: set BEACON_COLLECTOR_ADMIN_TOKEN or pass --admin-token-file",
            ),
        }
    }

    /// `None` to let the request through, else the answer: 401 (with a Basic challenge, so that
    /// a browser asks for the token) or 403.
    pub fn refusal(&self, headers: &HeaderMap) -> Option<Response> {
        let token = match self {
            ReadAccess::Loopback if loopback_host(headers) => return None,
            ReadAccess::Loopback => {
                return Some(error(
                    StatusCode::FORBIDDEN,
                    "without an admin token the report answers only to Host localhost, 127.0.0.1 or [::1]",
                    "open it as http://127.0.0.1:PORT/, or start serve with --admin-token-file or BEACON_COLLECTOR_ADMIN_TOKEN",
                ));
            }
            ReadAccess::Closed => {
                return Some(error(
                    StatusCode::FORBIDDEN,
                    "the report is not served on this address without an admin token",
                    "start serve with --admin-token-file or BEACON_COLLECTOR_ADMIN_TOKEN",
                ));
            }
            ReadAccess::Token(token) => token,
        };
        let given = match credential(headers) {
            Some(Credential::Bearer(given) | Credential::Basic { password: given, .. }) => given,
            None => String::new(),
        };
        if !given.is_empty() && secret::same(&given, token) {
            return None;
        }
        let mut refused = error(
            StatusCode::UNAUTHORIZED,
            if given.is_empty() {
                "the report needs the admin token"
            } else {
                "wrong admin token"
            },
            "send Authorization: Bearer TOKEN, or log in with the token as the password",
        );
        refused.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"beacon-collector\", charset=\"UTF-8\""),
        );
        Some(refused)
    }
}

/// Whether the `Host` header names the loopback interface (`localhost`, `127.0.0.1`, `[::1]`, with
/// or without a port). Any other name reaching a loopback listener came through a proxy or a DNS
/// rebinding page, which must not read the report that loopback-only mode leaves open.
fn loopback_host(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let (name, port) = match host.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((ip, "")) => (ip, None),
            Some((ip, port)) => match port.strip_prefix(':') {
                Some(port) => (ip, Some(port)),
                None => return false,
            },
            None => return false,
        },
        None => match host.split_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (host, None),
        },
    };
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    port_ok && (name.eq_ignore_ascii_case("localhost") || name == "127.0.0.1" || name == "::1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_and_bearer_keys() {
        let mut h = HeaderMap::new();
        let b64 = base64::engine::general_purpose::STANDARD.encode("wk:");
        h.insert(header::AUTHORIZATION, format!("Basic {b64}").parse().unwrap());
        assert_eq!(header_key(&h).as_deref(), Some("wk"));
        h.insert(header::AUTHORIZATION, "Bearer tok".parse().unwrap());
        assert_eq!(header_key(&h).as_deref(), Some("tok"));
        h.insert(header::AUTHORIZATION, "Basic !!!".parse().unwrap());
        assert_eq!(header_key(&h), None);
    }

    #[test]
    fn loopback_host_names() {
        let host = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::HOST, v.parse().unwrap());
            loopback_host(&h)
        };
        for ok in [
            "localhost",
            "LocalHost:8787",
            "127.0.0.1",
            "127.0.0.1:80",
            "[::1]",
            "[::1]:8787",
        ] {
            assert!(host(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:8787",
            "127.0.0.1.evil.example",
            "localhost.evil:1",
            "[::1]x",
            "::1",
            "127.0.0.1:x",
            "[::2]:80",
            "",
        ] {
            assert!(!host(bad), "{bad}");
        }
        assert!(!loopback_host(&HeaderMap::new()));
    }
}
