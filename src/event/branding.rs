//! Defaults a vendor bakes into its own build through `BEACON_BUILD_*` environment variables read at
//! compile time (see "Branded builds" in docs/shipping.md). Each value is `None`, or the built-in default, when its
//! variable is unset or empty. Flags and `INSTALL_BEACON_*` variables still override every one of
//! them at run time, and nothing here touches consent: every opt-out still wins.
//!
//! A baked product name, protocol or endpoint that could never work fails the build (the `const`
//! assertions below), so a broken branded binary is never shipped.

use beacon_wire::{Protocol, event};

/// Product name (`BEACON_BUILD_PRODUCT`), used when `--product` is not given.
pub const PRODUCT: Option<&str> = non_empty(option_env!("BEACON_BUILD_PRODUCT"));

/// Endpoint base URL (`BEACON_BUILD_ENDPOINT`), used when `--endpoint` is not given.
pub const ENDPOINT: Option<&str> = non_empty(option_env!("BEACON_BUILD_ENDPOINT"));

/// Segment write key or PostHog project key (`BEACON_BUILD_KEY`), used when `--key` is not given.
pub const KEY: Option<&str> = non_empty(option_env!("BEACON_BUILD_KEY"));

/// Wire format (`BEACON_BUILD_PROTOCOL`: segment, posthog, json or otlp), used when `--protocol` is not given.
pub const PROTOCOL: Option<Protocol> = match non_empty(option_env!("BEACON_BUILD_PROTOCOL")) {
    Some(name) => Protocol::from_name(name),
    None => None,
};

/// Name of the event `started` sends (`BEACON_BUILD_EVENT_STARTED`).
pub const EVENT_STARTED: &str = or(option_env!("BEACON_BUILD_EVENT_STARTED"), event::STARTED);
/// Name of the event `success` sends (`BEACON_BUILD_EVENT_SUCCESS`).
pub const EVENT_SUCCESS: &str = or(option_env!("BEACON_BUILD_EVENT_SUCCESS"), event::SUCCESS);
/// Name of the event `error` sends (`BEACON_BUILD_EVENT_ERROR`).
pub const EVENT_ERROR: &str = or(option_env!("BEACON_BUILD_EVENT_ERROR"), event::ERROR);
/// Name of the event `support` sends (`BEACON_BUILD_EVENT_SUPPORT`).
pub const EVENT_SUPPORT: &str = or(option_env!("BEACON_BUILD_EVENT_SUPPORT"), event::SUPPORT);
/// Each checkpoint's name in this build, with its standard name: (branded, standard).
pub const CHECKPOINT_NAMES: [(&str, &str); 4] = [
    (EVENT_STARTED, event::STARTED),
    (EVENT_SUCCESS, event::SUCCESS),
    (EVENT_ERROR, event::ERROR),
    (EVENT_SUPPORT, event::SUPPORT),
];

/// First-run notice text (`BEACON_BUILD_NOTICE`); `{product}` is replaced by the product name.
pub const NOTICE: Option<&str> = non_empty(option_env!("BEACON_BUILD_NOTICE"));

/// Privacy policy URL (`BEACON_BUILD_PRIVACY_URL`), added to the first-run notice; `--privacy-url` wins.
pub const PRIVACY_URL: Option<&str> = non_empty(option_env!("BEACON_BUILD_PRIVACY_URL"));

/// The product's own way to opt out (`BEACON_BUILD_OPT_OUT_HINT`, e.g. "run `acme telemetry off`"),
/// added to the first-run notice; `--opt-out-hint` wins.
pub const OPT_OUT_HINT: Option<&str> = non_empty(option_env!("BEACON_BUILD_OPT_OUT_HINT"));

/// What the first-run notice says when no notice was baked in.
const DEFAULT_NOTICE: &str = "{product} reports anonymous installation statistics (OS and version, CPU, memory, \
    which step failed) with a random installation ID; no names, hostnames, IP addresses or paths.";

const _: () = assert!(
    match PRODUCT {
        Some(p) => valid_product(p),
        None => true,
    },
    "BEACON_BUILD_PRODUCT: use 1-64 letters, digits, '.', '_' or '-' (not starting with '.')"
);
const _: () = assert!(
    PROTOCOL.is_some() || non_empty(option_env!("BEACON_BUILD_PROTOCOL")).is_none(),
    "BEACON_BUILD_PROTOCOL: use segment, posthog, json or otlp"
);
const _: () = assert!(
    match ENDPOINT {
        Some(url) => has_http_scheme(url),
        None => true,
    },
    "BEACON_BUILD_ENDPOINT: the URL must start with http:// or https:// and name a host"
);
/// The first-run notice for `product`: the baked or default text, then how to opt out and the
/// privacy policy. It names only what the user still has after a `curl | sh` install, whose
/// install-beacon lived in a deleted temp dir: the environment variables, and the product's own
/// opt-out (`opt_out_hint`) and privacy URL when the installer or the branded build gives them.
pub fn notice(product: &str, opt_out_hint: Option<&str>, privacy_url: Option<&str>) -> String {
    compose_notice(NOTICE, product, opt_out_hint, privacy_url)
}

fn compose_notice(text: Option<&str>, product: &str, opt_out_hint: Option<&str>, privacy_url: Option<&str>) -> String {
    let mut notice = text.unwrap_or(DEFAULT_NOTICE).trim().replace("{product}", product);
    let variable = format!("{}_DISABLE_TELEMETRY", crate::consent::env_prefix(product));
    notice.push_str(&format!(
        " Opt out with DO_NOT_TRACK=1 or {variable}=1 in the environment"
    ));
    match opt_out_hint.map(str::trim).filter(|h| !h.is_empty()) {
        Some(hint) => notice.push_str(&format!(", or {}.", hint.trim_end_matches('.'))),
        None => notice.push('.'),
    }
    if let Some(url) = privacy_url.map(str::trim).filter(|u| !u.is_empty()) {
        notice.push_str(&format!(" Privacy policy: {url}"));
    }
    notice
}

/// An unset or empty variable both mean "not baked in".
const fn non_empty(value: Option<&'static str>) -> Option<&'static str> {
    match value {
        Some(v) if !v.is_empty() => Some(v),
        _ => None,
    }
}

const fn or(value: Option<&'static str>, default: &'static str) -> &'static str {
    match non_empty(value) {
        Some(v) => v,
        None => default,
    }
}

/// Product names end up in file paths and variable names: 1-64 letters, digits, `.`, `_` or `-`,
/// not starting with `.`. A `const fn`, so a baked name is checked at build time.
pub const fn valid_product(name: &str) -> bool {
    let b = name.as_bytes();
    if b.is_empty() || b.len() > 64 || b[0] == b'.' {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if !(c.is_ascii_alphanumeric() || c == b'.' || c == b'_' || c == b'-') {
            return false;
        }
        i += 1;
    }
    true
}

/// `http://` or `https://` followed by at least one character; the full check runs at start-up.
const fn has_http_scheme(url: &str) -> bool {
    let b = url.as_bytes();
    let skip = if starts_with(b, b"https://") {
        8
    } else if starts_with(b, b"http://") {
        7
    } else {
        return false;
    };
    b.len() > skip && b[skip] != b'/'
}

const fn starts_with(s: &[u8], prefix: &[u8]) -> bool {
    if s.len() < prefix.len() {
        return false;
    }
    let mut i = 0;
    while i < prefix.len() {
        if s[i] != prefix[i] {
            return false;
        }
        i += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn products() {
        let long = "x".repeat(64);
        for good in ["acme", "acme-db_2.0", "a", &long] {
            assert!(valid_product(good), "{good:?}");
        }
        for bad in [&format!("{long}x"), "", ".x", "a/b", "a b", "ä", "../x"] {
            assert!(!valid_product(bad), "{bad:?}");
        }
    }

    #[test]
    fn endpoint_schemes() {
        assert!(has_http_scheme("https://t.example"));
        assert!(has_http_scheme("http://127.0.0.1:1"));
        for bad in ["", "http://", "https:///x", "ftp://a", "t.example"] {
            assert!(!has_http_scheme(bad), "{bad}");
        }
    }

    #[test]
    fn empty_means_unset() {
        assert_eq!(non_empty(Some("")), None);
        assert_eq!(or(Some(""), "d"), "d");
        assert_eq!(or(Some("v"), "d"), "v");
        assert_eq!(or(None, "d"), "d");
    }

    #[test]
    fn notices_name_only_what_outlives_the_installer() {
        let default = compose_notice(None, "acme-db", None, None);
        assert!(default.starts_with("acme-db reports anonymous installation statistics"));
        assert!(
            default.ends_with(" Opt out with DO_NOT_TRACK=1 or ACME_DB_DISABLE_TELEMETRY=1 in the environment."),
            "{default}"
        );
        assert!(!default.contains("install-beacon"), "gone after curl | sh: {default}");
        let branded = compose_notice(
            Some(" {product} by Zeta counts installs. "),
            "zeta",
            Some("run `zeta telemetry off`."),
            Some("https://z.example/p"),
        );
        assert_eq!(
            branded,
            "zeta by Zeta counts installs. Opt out with DO_NOT_TRACK=1 or ZETA_DISABLE_TELEMETRY=1 in the \
             environment, or run `zeta telemetry off`. Privacy policy: https://z.example/p"
        );
    }
}
