//! Version notices targeted by product and version: `serve --notices notices.toml`.
//!
//! ```toml
//! [products.acme]
//! latest_version = "2.5.0"
//! [[products.acme.notices]]
//! below = "2.4.1"          # only installs of a lower version; omit for all versions
//! text = "2.4.0 has a security issue: please upgrade"
//! ```
//!
//! Parsing and matching are pure; `serve` loads the file at start (refusing a bad one) and
//! reloads it on SIGHUP or when it changes, keeping the previous notices if the new file is bad.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::{Map, Value, json};

/// What the file may hold; unknown keys are refused, so a typo is an error, not a silent no-op.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    products: BTreeMap<String, ProductFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProductFile {
    latest_version: Option<String>,
    #[serde(default)]
    notices: Vec<NoticeFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NoticeFile {
    below: Option<String>,
    text: String,
}

/// The notices of one product (or of every product, from `--latest-version` and `--notice`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Product {
    /// Echoed as `latest_version`.
    pub latest_version: Option<String>,
    /// Echoed under `notices` when they apply.
    pub notices: Vec<Notice>,
}

/// One notice.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    /// Shown only to installs of a version lower than this; `None` shows it to all.
    pub below: Option<Version>,
    /// The text.
    pub text: String,
}

/// Every configured notice: per product from the file, and the command-line ones for the rest.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Notices {
    products: BTreeMap<String, Product>,
    other: Product,
    configured: bool,
}

impl Notices {
    /// Notices for every product, from `--latest-version` and `--notice`.
    pub fn global(latest_version: Option<String>, texts: Vec<String>) -> Notices {
        let configured = latest_version.is_some() || !texts.is_empty();
        Notices {
            products: BTreeMap::new(),
            other: Product {
                latest_version,
                notices: texts.into_iter().map(|text| Notice { below: None, text }).collect(),
            },
            configured,
        }
    }

    /// Adds the products of a notices file (its products win over the global notices).
    pub fn with_file(mut self, text: &str) -> Result<Notices, String> {
        let file: File = toml::from_str(text).map_err(|e| e.to_string().trim_end().to_string())?;
        for (name, p) in file.products {
            let at = |what: &str| format!("products.{name}{what}");
            if let Some(v) = &p.latest_version {
                Version::parse(v)
                    .ok_or_else(|| format!("{}: {v:?} is not a version (e.g. 2.5.0)", at(".latest_version")))?;
            }
            let mut notices = Vec::new();
            for (i, n) in p.notices.into_iter().enumerate() {
                if n.text.trim().is_empty() {
                    return Err(format!("{}: text is empty", at(&format!(".notices[{i}]"))));
                }
                let below = match n.below {
                    None => None,
                    Some(b) => Some(Version::parse(&b).ok_or_else(|| {
                        format!(
                            "{}: {b:?} is not a version (e.g. 2.4.1)",
                            at(&format!(".notices[{i}].below"))
                        )
                    })?),
                };
                notices.push(Notice { below, text: n.text });
            }
            self.products.insert(
                name,
                Product {
                    latest_version: p.latest_version,
                    notices,
                },
            );
        }
        self.configured = true;
        Ok(self)
    }

    /// Reads and validates a notices file; the error names the file and the bad entry.
    pub fn load(path: &Path, global: Notices) -> Result<Notices, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        global.with_file(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// How many products the file named.
    pub fn products(&self) -> usize {
        self.products.len()
    }

    /// The fields for an accepted response to an installation of `product` at `version`:
    /// `latest_version` when known, and `notices` (possibly empty) whenever any are configured.
    pub fn answer(&self, product: Option<&str>, version: Option<&str>) -> Map<String, Value> {
        let mut out = Map::new();
        if !self.configured {
            return out;
        }
        let p = product.and_then(|p| self.products.get(p)).unwrap_or(&self.other);
        if let Some(v) = &p.latest_version {
            out.insert("latest_version".into(), json!(v));
        }
        let version = version.and_then(Version::parse);
        let texts: Vec<&str> = p
            .notices
            .iter()
            .filter(|n| match (&n.below, &version) {
                (None, _) => true,
                (Some(below), Some(v)) => v < below,
                // The installation's version is unknown: a version-targeted notice may not apply.
                (Some(_), None) => false,
            })
            .map(|n| n.text.as_str())
            .collect();
        out.insert("notices".into(), json!(texts));
        out
    }
}

/// The notices `serve` answers with, swapped whole when the file is reloaded.
pub type Shared = std::sync::Arc<std::sync::RwLock<std::sync::Arc<Notices>>>;

/// Reloads `path` into `shared` on SIGHUP, or when its modification time or size changes
/// (checked every 2 s). A file that no longer loads is reported and the previous notices stay.
pub async fn watch(path: std::path::PathBuf, global: Notices, shared: Shared) {
    let stamp = |p: &Path| std::fs::metadata(p).ok().map(|m| (m.modified().ok(), m.len()));
    let mut seen = stamp(&path);
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(2));
    #[cfg(unix)]
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    loop {
        #[cfg(unix)]
        let forced = tokio::select! {
            Some(()) = async { match hangup.as_mut() { Some(h) => h.recv().await, None => None } } => true,
            _ = tick.tick() => false,
        };
        #[cfg(not(unix))]
        let forced = {
            tick.tick().await;
            false
        };
        let now = stamp(&path);
        if !forced && now == seen {
            continue;
        }
        seen = now;
        match Notices::load(&path, global.clone()) {
            Ok(n) => {
                eprintln!("notices: loaded {} ({} products)", path.display(), n.products());
                *shared.write().unwrap_or_else(|e| e.into_inner()) = std::sync::Arc::new(n);
            }
            Err(e) => eprintln!("warning: {e}; keeping the previous notices"),
        }
    }
}

/// A release version such as `2.4.1`, `v1.10` or `2.5.0-rc.1`: numbers compared as numbers,
/// missing parts as 0 (`2.4` equals `2.4.0`), and a pre-release below its release.
#[derive(Debug, Clone)]
pub struct Version {
    numbers: Vec<u64>,
    pre: Option<String>,
}

impl Version {
    /// Parses a version; `None` unless it starts with dot-separated numbers.
    pub fn parse(text: &str) -> Option<Version> {
        let text = text.trim();
        let text = text.strip_prefix(['v', 'V']).unwrap_or(text);
        let text = text.split('+').next().unwrap_or(text);
        let (core, pre) = match text.split_once('-') {
            Some((core, pre)) => (core, Some(pre.to_string())),
            None => (text, None),
        };
        let numbers = core.split('.').map(|n| n.parse().ok()).collect::<Option<Vec<u64>>>()?;
        Some(Version { numbers, pre })
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Version) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for Version {}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Version) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Version) -> Ordering {
        let len = self.numbers.len().max(other.numbers.len());
        let part = |v: &Version, i: usize| v.numbers.get(i).copied().unwrap_or(0);
        (0..len)
            .map(|i| part(self, i).cmp(&part(other, i)))
            .find(|o| o.is_ne())
            .unwrap_or_else(|| match (&self.pre, &other.pre) {
                (None, None) => Ordering::Equal,
                (None, Some(_)) => Ordering::Greater,
                (Some(_), None) => Ordering::Less,
                (Some(a), Some(b)) => a.cmp(b),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
[products.acme]
latest_version = "2.5.0"
[[products.acme.notices]]
below = "2.4.1"
text = "2.4.0 has a security issue: please upgrade"
[[products.acme.notices]]
text = "for everyone"

[products.beta]
"#;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn versions_compare_as_releases() {
        assert!(v("2.4.0") < v("2.4.1"));
        assert!(v("2.10") > v("2.9.9"));
        assert!(v("v2.4") == v("2.4.0"));
        assert!(v("2.4.1-rc.1") < v("2.4.1"));
        assert!(v("2.4.1+build.7") == v("2.4.1"));
        assert_eq!(Version::parse("latest"), None);
        assert_eq!(Version::parse("2.x"), None);
    }

    #[test]
    fn notices_go_to_the_right_product_and_versions() {
        let n = Notices::global(Some("9.9".into()), vec!["global".into()])
            .with_file(FILE)
            .unwrap();
        assert_eq!(
            Value::Object(n.answer(Some("acme"), Some("2.4.0"))),
            json!({"latest_version": "2.5.0", "notices": ["2.4.0 has a security issue: please upgrade", "for everyone"]})
        );
        assert_eq!(
            Value::Object(n.answer(Some("acme"), Some("2.4.1"))),
            json!({"latest_version": "2.5.0", "notices": ["for everyone"]})
        );
        assert_eq!(
            Value::Object(n.answer(Some("acme"), None)),
            json!({"latest_version": "2.5.0", "notices": ["for everyone"]})
        );
        assert_eq!(
            Value::Object(n.answer(Some("beta"), Some("1.0"))),
            json!({"notices": []})
        );
        assert_eq!(
            Value::Object(n.answer(Some("other"), Some("1.0"))),
            json!({"latest_version": "9.9", "notices": ["global"]})
        );
        assert!(Notices::default().answer(Some("acme"), None).is_empty());
    }

    #[test]
    fn bad_files_name_the_entry_and_the_fix() {
        let err = |text: &str| Notices::default().with_file(text).unwrap_err();
        assert!(
            err("[products.acme]\n[[products.acme.notices]]\nbelow = \"soon\"\ntext = \"x\"")
                .contains("products.acme.notices[0].below: \"soon\" is not a version")
        );
        assert!(err("[products.acme]\nlatest = \"2\"").contains("unknown field `latest`"));
        assert!(err("[products.acme]\n[[products.acme.notices]]\nbelow = \"1\"").contains("missing field `text`"));
        assert!(err("[products.acme]\n[[products.acme.notices]]\ntext = \" \"").contains("text is empty"));
        assert!(err("[products.acme").contains("line 1"));
    }
}
