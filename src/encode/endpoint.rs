//! `Endpoint`: the URL events are posted to, parsed once from `--endpoint`. It may carry
//! credentials (`https://user:token@host`, `?token=…`): its `Display` and `Debug` mask them, so no
//! message, log line or saved state can show them by accident; only [`Endpoint::expose`] gives the
//! URL as given, for the request itself.

use std::fmt;

/// An http(s) URL with a host, without a trailing `/`.
#[derive(Clone, PartialEq, Eq)]
pub struct Endpoint {
    url: String,
    /// Start of the host (after `scheme://` and any `user:password@`).
    host: usize,
    /// End of the host and port: where the path, query or fragment starts.
    path: usize,
}

impl Endpoint {
    /// Parses an http(s) URL with a host; the trailing slash is dropped so paths can be appended.
    pub fn parse(s: &str) -> Result<Endpoint, String> {
        let uri: ureq::http::Uri = s
            .parse()
            .map_err(|_| "not a URL; use e.g. https://collector.example.com".to_owned())?;
        match uri.scheme_str() {
            Some("http" | "https") => {}
            _ => return Err("the URL must start with http:// or https://".into()),
        }
        if uri.host().is_none_or(str::is_empty) {
            return Err("the URL has no host; use e.g. https://collector.example.com".into());
        }
        Ok(Endpoint::new(s.trim_end_matches('/').to_owned()))
    }

    fn new(url: String) -> Endpoint {
        let start = url.find("://").map_or(0, |i| i + 3);
        let path = url[start..].find(['/', '?', '#']).map_or(url.len(), |i| start + i);
        let host = url[start..path].rfind('@').map_or(start, |at| start + at + 1);
        Endpoint { url, host, path }
    }

    /// The URL as given, credentials included: for the request, never for a message.
    pub fn expose(&self) -> &str {
        &self.url
    }

    /// The host and port (`api.segment.io`, `127.0.0.1:8787`).
    pub fn host(&self) -> &str {
        &self.url[self.host..self.path]
    }

    /// `user:password` (or a lone token) before the host.
    pub fn userinfo(&self) -> Option<&str> {
        let start = self.url.find("://").map_or(0, |i| i + 3);
        (self.host > start).then(|| &self.url[start..self.host - 1])
    }

    /// Everything after the first `?`.
    pub fn query(&self) -> Option<&str> {
        self.url[self.path..].split_once('?').map(|(_, query)| query)
    }

    /// The URL without `user:password@`, its query values masked: where it sends, no secret in it.
    pub fn without_credentials(&self) -> String {
        let bare = format!("{}{}", &self.url[..self.start()], &self.url[self.host..]);
        mask_query(&bare)
    }

    /// This URL with `path` appended to its path, before any query.
    pub fn join(&self, path: &str) -> Endpoint {
        let (base, query) = match self.url[self.path..].find('?') {
            Some(q) => self.url.split_at(self.path + q),
            None => (self.url.as_str(), ""),
        };
        Endpoint::new(format!("{}{path}{query}", base.trim_end_matches('/')))
    }

    fn start(&self) -> usize {
        self.url.find("://").map_or(0, |i| i + 3)
    }
}

/// The URL with a password replaced by `****`, a user name alone (often a token) masked as keys
/// are, and every query value (`?token=…`) replaced by `****`.
impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bare = self.without_credentials();
        let Some(userinfo) = self.userinfo() else {
            return f.write_str(&bare);
        };
        let shown = match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:****"),
            None => mask(userinfo),
        };
        f.write_str(&bare.replacen("://", &format!("://{shown}@"), 1))
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Endpoint({self})")
    }
}

/// Shows the first four characters of a key and hides the rest.
pub fn mask(key: &str) -> String {
    let shown: String = if key.chars().count() > 8 {
        key.chars().take(4).collect()
    } else {
        String::new()
    };
    format!("{shown}****")
}

/// `url` with the value of every query parameter, and any parameter without a name, replaced by
/// `****`: query strings often carry tokens.
fn mask_query(url: &str) -> String {
    let Some((base, query)) = url.split_once('?') else {
        return url.to_owned();
    };
    let masked: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) => format!("{name}=****"),
            None if pair.is_empty() => String::new(),
            None => "****".to_owned(),
        })
        .collect();
    format!("{base}?{}", masked.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(url: &str) -> String {
        Endpoint::parse(url).unwrap().to_string()
    }

    #[test]
    fn only_http_urls_with_a_host() {
        assert_eq!(
            Endpoint::parse("https://a.example/").unwrap().expose(),
            "https://a.example"
        );
        let e = Endpoint::parse("http://127.0.0.1:8080/x").unwrap();
        assert_eq!((e.expose(), e.host()), ("http://127.0.0.1:8080/x", "127.0.0.1:8080"));
        let e = Endpoint::parse("https://user:pw@eu.i.posthog.com/batch/?x").unwrap();
        assert_eq!(e.host(), "eu.i.posthog.com");
        for bad in ["ftp://a.example", "a.example", "http://", "not a url"] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn display_and_debug_mask_credentials_and_query_values() {
        assert_eq!(
            shown("https://ada:secret@h.example/x@y"),
            "https://ada:****@h.example/x@y"
        );
        assert_eq!(shown("https://tok_abcdefgh@h.example"), "https://tok_****@h.example");
        assert_eq!(shown("https://h.example/p?u=a@b"), "https://h.example/p?u=****");
        assert_eq!(
            shown("https://ada:pw@h.example/p?token=abc&v&key=x#y"),
            "https://ada:****@h.example/p?token=****&****&key=****"
        );
        let e = Endpoint::parse("https://ada:s3cret@h.example/?token=t0ken").unwrap();
        assert_eq!(format!("{e:?}"), "Endpoint(https://ada:****@h.example/?token=****)");
        assert_eq!(e.host(), "h.example");
        assert_eq!((e.userinfo(), e.query()), (Some("ada:s3cret"), Some("token=t0ken")));
        assert_eq!(e.without_credentials(), "https://h.example/?token=****");
    }

    #[test]
    fn paths_are_joined_before_the_query() {
        let join = |url: &str, path: &str| Endpoint::parse(url).unwrap().join(path).expose().to_owned();
        assert_eq!(
            join("https://api.segment.io", "/v1/batch"),
            "https://api.segment.io/v1/batch"
        );
        assert_eq!(join("https://h/base/", "/batch/"), "https://h/base/batch/");
        assert_eq!(
            join("https://u:p@h/?token=abc", "/v1/batch"),
            "https://u:p@h/v1/batch?token=abc"
        );
        assert_eq!(
            join("https://h/in?x=1", "/batch/").to_string(),
            "https://h/in/batch/?x=1"
        );
    }
}
