//! Credentials carried by requests.

use axum::http::{HeaderMap, header};
use base64::Engine;

/// The key in `Authorization: Basic base64(key:)` or `Authorization: Bearer key`.
pub fn header_key(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, rest) = value.split_once(' ')?;
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD.decode(rest.trim()).ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let user = text.split_once(':').map_or(text.as_str(), |(u, _)| u);
        (!user.is_empty()).then(|| user.to_string())
    } else if scheme.eq_ignore_ascii_case("bearer") {
        Some(rest.trim().to_string()).filter(|k| !k.is_empty())
    } else {
        None
    }
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
}
