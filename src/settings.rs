//! Settings resolved once at start-up from flags, environment, the defaults a branded build baked
//! in (`branding`) and built-in defaults. Nothing past this point reads flags or environment variables.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use beacon_wire::Protocol;

use crate::cli::{GlobalArgs, parse_duration};
use crate::consent::{self, Origin, policy};
use crate::delivery::roots;
use crate::detect;
use crate::encode::{Endpoint, Target};
use crate::event::branding;
use crate::event::facts::FactsEnv;
use crate::exit::Error;
use crate::store::files;
use crate::store::state::{self, StateDir};
use crate::store::throttle::Throttle;

/// Segment's API host, the default endpoint of the `segment` protocol.
pub const SEGMENT_ENDPOINT: &str = "https://api.segment.io";

/// The machine-wide policy file; it always counts (`INSTALL_BEACON_POLICY_FILE` names one more).
#[cfg(unix)]
pub const POLICY_FILE: &str = "/etc/install-beacon/policy";
/// The machine-wide policy file; it always counts (`INSTALL_BEACON_POLICY_FILE` names one more).
#[cfg(windows)]
pub const POLICY_FILE: &str = r"C:\ProgramData\install-beacon\policy";

/// How long a terminal prompt waits for an answer (`INSTALL_BEACON_PROMPT_TIMEOUT`, hidden).
pub const PROMPT_TIMEOUT: Duration = Duration::from_secs(180);

/// The process environment as read once at start-up: variables, argv[0] and the user.
#[derive(Debug, Default, Clone)]
pub struct Environment {
    vars: HashMap<OsString, OsString>,
    /// argv[0], as invoked.
    pub argv0: Option<OsString>,
    /// Whether the process runs as root.
    pub is_root: bool,
    /// Whether `is_ci` found a CI system's variables.
    pub ci: bool,
    /// Whether this is one of Devin's machines (a marker file).
    pub devin: bool,
}

impl Environment {
    /// Captures this process's environment.
    pub fn capture() -> Environment {
        Environment {
            vars: std::env::vars_os().collect(),
            argv0: std::env::args_os().next(),
            is_root: is_root(),
            ci: is_ci::uncached(),
            devin: detect::devin_machine(),
        }
    }

    /// An environment of just these variables, for tests.
    #[cfg(test)]
    pub fn with_vars(vars: &[(String, String)]) -> Environment {
        Environment {
            vars: vars.iter().map(|(k, v)| (k.into(), v.into())).collect(),
            ..Environment::default()
        }
    }

    /// A variable's value, when it is set and valid UTF-8.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars.get(std::ffi::OsStr::new(name)).and_then(|v| v.to_str())
    }

    /// A variable's value, invalid UTF-8 replaced, when it is set: an opt-out counts whatever its bytes.
    fn lossy(&self, name: &str) -> Option<String> {
        self.vars
            .get(std::ffi::OsStr::new(name))
            .map(|v| v.to_string_lossy().into_owned())
    }

    fn is_set(&self, name: &str) -> bool {
        self.vars.contains_key(std::ffi::OsStr::new(name))
    }

    fn non_empty(&self, name: &str) -> Option<&std::ffi::OsStr> {
        self.vars
            .get(std::ffi::OsStr::new(name))
            .map(OsString::as_os_str)
            .filter(|v| !v.is_empty())
    }
}

/// Everything the program needs to know, resolved.
#[derive(Debug)]
pub struct Settings {
    /// Product name.
    pub product: String,
    /// Product version.
    pub product_version: Option<String>,
    /// Wire format.
    pub protocol: Protocol,
    /// Base URL, if one is known for the protocol.
    pub endpoint: Option<Endpoint>,
    /// API key.
    pub key: Option<String>,
    /// Request headers from `OTEL_EXPORTER_OTLP_LOGS_HEADERS` or `OTEL_EXPORTER_OTLP_HEADERS` (otlp only).
    pub otlp_headers: Vec<(String, String)>,
    /// State directory, if one could be determined and is safe to use.
    pub state_dir: Option<StateDir>,
    /// The state directory that was found but not used, and why (for `status`).
    pub state_dir_refused: Option<String>,
    /// The default state directory when another one is in use: a `disable` saved there still
    /// counts (read only, and only when it passes the same safety checks).
    pub default_state_dir: Option<StateDir>,
    /// Installation ID file, if one could be determined.
    pub id_file: Option<PathBuf>,
    /// Bound for the whole call.
    pub timeout: Duration,
    /// Exit 1 on delivery failure.
    pub strict: bool,
    /// Print nothing but usage errors.
    pub quiet: bool,
    /// Print requests instead of sending them.
    pub dry_run: bool,
    /// Queue and hand delivery to a detached process.
    pub background: bool,
    /// Print requests to stderr and send them (`INSTALL_BEACON_DEBUG`).
    pub debug: bool,
    /// Consent inputs except the saved choice, which the session reads from the state directory.
    pub consent: consent::Inputs,
    /// Environment the machine facts depend on.
    pub facts_env: FactsEnv,
    /// CA sources added to the bundled and system roots (`SSL_CERT_FILE`, `SSL_CERT_DIR`).
    pub roots: roots::Sources,
    /// `--once` and `--min-interval`.
    pub throttle: Throttle,
    /// How long a terminal prompt waits for an answer.
    pub prompt_timeout: Duration,
    /// How to call this executable again from a shell (for `shell-init`): argv[0] made absolute
    /// when it is a path, without resolving symlinks, so a `*donottrack*` link stays one.
    pub exe_path: String,
    /// The product's own way to opt out, named by the first-run notice.
    pub opt_out_hint: Option<String>,
    /// The product's privacy policy, named by the first-run notice.
    pub privacy_url: Option<String>,
    /// Problems found while resolving (e.g. a garbled policy file), to print once.
    pub warnings: Vec<String>,
}

impl Settings {
    /// Resolves settings from the parsed flags and the environment snapshot.
    pub fn resolve(args: GlobalArgs, env: &Environment) -> Result<Settings, Error> {
        // Every flag is named here, so a new one cannot be forgotten.
        let GlobalArgs {
            product,
            product_version,
            endpoint,
            key,
            protocol,
            id_file,
            state_dir,
            telemetry,
            telemetry_from_env,
            timeout,
            strict,
            quiet,
            background,
            dry_run,
            default_consent,
            once,
            min_interval,
            opt_out_hint,
            privacy_url,
            install_method,
        } = args;
        let product = product
            .or_else(|| branding::PRODUCT.map(str::to_owned))
            .ok_or_else(|| {
                Error::usage_with_hint(
                    "missing --product NAME: say which product is being installed",
                    "pass --product NAME, or set INSTALL_BEACON_PRODUCT",
                )
            })?;
        let protocol = protocol.or(branding::PROTOCOL).unwrap_or(Protocol::Segment);
        let from_flag = endpoint.is_some();
        let endpoint = match (endpoint, branding::ENDPOINT) {
            (Some(endpoint), _) => Some(endpoint),
            (None, Some(baked)) => Some(Endpoint::parse(baked).map_err(|e| {
                Error::usage_with_hint(
                    format!("invalid endpoint '{baked}' built into this binary: {e}"),
                    "pass --endpoint URL, or rebuild with a valid BEACON_BUILD_ENDPOINT",
                )
            })?),
            (None, None) => (protocol == Protocol::Segment)
                .then(|| Endpoint::parse(SEGMENT_ENDPOINT).ok())
                .flatten(),
        };

        let mut warnings = Vec::new();
        let (endpoint, otlp_headers) = match protocol {
            Protocol::Otlp => otlp_target(endpoint, from_flag, env, &mut warnings),
            _ => (endpoint, Vec::new()),
        };

        // A relative HOME would put the state under whatever the current directory is.
        let home_set = env.non_empty("HOME").is_some_and(|h| Path::new(h).is_absolute());
        let mut state_dir_refused = None;
        let default_dir = state::default_dir(&product, home_set, env.is_root);
        let default_state_dir = default_dir
            .clone()
            .filter(|dir| state_dir.as_ref().is_some_and(|chosen| chosen != dir))
            .filter(|dir| files::untrusted_dir(dir).is_none())
            .map(StateDir::new);
        let state_dir = state_dir
            .or(default_dir)
            .filter(|dir| match files::untrusted_dir(dir) {
                None => true,
                Some(why) => {
                    warnings.push(format!(
                        "not using the state directory {}: {why}; nothing is saved and the installation ID is a one-time one\nhint: use a directory only you can write: --state-dir DIR, or fix its owner and mode",
                        dir.display()
                    ));
                    state_dir_refused = Some(format!("{} (not used: {why})", dir.display()));
                    false
                }
            })
            .map(StateDir::new);
        let id_file = id_file.or_else(|| state_dir.as_ref().map(StateDir::id_file));

        let telemetry = telemetry.map(|on| (on, if telemetry_from_env { Origin::Env } else { Origin::Flag }));
        let opt_outs = consent::opt_out_vars(&product)
            .into_iter()
            .filter_map(|name| env.lossy(&name).map(|value| (name, value)))
            .collect();

        // The administrator's file always counts: INSTALL_BEACON_POLICY_FILE, which an installer
        // could export, only adds another.
        let machine = policy::read(Path::new(POLICY_FILE), &mut warnings);
        let added = env
            .non_empty("INSTALL_BEACON_POLICY_FILE")
            .and_then(|path| policy::read(Path::new(path), &mut warnings));
        let policy = policy::strongest(machine, added);
        let prompt_timeout = match env.var("INSTALL_BEACON_PROMPT_TIMEOUT") {
            Some(v) => parse_duration(v)
                .map_err(|e| Error::usage(format!("invalid INSTALL_BEACON_PROMPT_TIMEOUT '{v}': {e}")))?,
            None => PROMPT_TIMEOUT,
        };

        Ok(Settings {
            product,
            product_version: product_version.filter(|v| !v.is_empty()),
            protocol,
            endpoint,
            key: key
                .filter(|k| !k.is_empty())
                .or_else(|| branding::KEY.map(str::to_owned)),
            otlp_headers,
            state_dir,
            state_dir_refused,
            default_state_dir,
            id_file,
            timeout,
            strict,
            quiet,
            dry_run,
            background,
            debug: env.var("INSTALL_BEACON_DEBUG").is_some_and(consent::env_opts_out),
            consent: consent::Inputs {
                exe_name: exe_name(env.argv0.clone()),
                telemetry,
                env: opt_outs,
                saved: None,
                policy,
                default: default_consent,
            },
            facts_env: FactsEnv {
                ci: detect::ci(env, env.ci),
                agent: detect::agent(env, env.devin),
                install_method,
                context: env.var("INSTALL_BEACON_CONTEXT").map(str::to_owned),
                kubernetes: env.is_set("KUBERNETES_SERVICE_HOST"),
                container: env.var("container").map(str::to_owned),
            },
            roots: roots::Sources {
                cert_file: env.non_empty("SSL_CERT_FILE").map(PathBuf::from),
                cert_dirs: env
                    .non_empty("SSL_CERT_DIR")
                    .map(|dirs| std::env::split_paths(dirs).collect())
                    .unwrap_or_default(),
            },
            throttle: Throttle { once, min_interval },
            prompt_timeout,
            exe_path: exe_path(env.argv0.clone()),
            opt_out_hint: opt_out_hint
                .filter(|h| !h.trim().is_empty())
                .or_else(|| branding::OPT_OUT_HINT.map(str::to_owned)),
            privacy_url: privacy_url
                .filter(|u| !u.trim().is_empty())
                .or_else(|| branding::PRIVACY_URL.map(str::to_owned)),
            warnings,
        })
    }

    /// The error of a protocol that needs a key and has none (a dry run shows the request anyway).
    pub fn missing_key(&self) -> Option<Error> {
        let what = match self.protocol {
            Protocol::Segment => "Segment write key",
            Protocol::Posthog => "PostHog project API key",
            Protocol::Json | Protocol::Otlp => return None,
        };
        self.key.is_none().then(|| {
            Error::usage_with_hint(
                format!("missing --key KEY: the {} protocol needs the {what}", self.protocol),
                "pass --key KEY, or set INSTALL_BEACON_KEY",
            )
        })
    }

    /// The target to send to, or the usage error that prevents sending.
    pub fn target(&self) -> Result<Target, Error> {
        let endpoint = self.endpoint.clone().ok_or_else(|| {
            Error::usage_with_hint(
                format!(
                    "missing --endpoint URL: the {} protocol has no default endpoint",
                    self.protocol
                ),
                "pass --endpoint URL, or set INSTALL_BEACON_ENDPOINT",
            )
        })?;
        if let Some(missing) = self.missing_key().filter(|_| !self.dry_run) {
            return Err(missing);
        }
        Ok(Target {
            protocol: self.protocol,
            endpoint,
            key: self.key.clone(),
            headers: self.otlp_headers.clone(),
        })
    }
}

/// The logs URL and headers of `--protocol otlp`: `--endpoint` (+ `/v1/logs`), else
/// `OTEL_EXPORTER_OTLP_LOGS_ENDPOINT` (as it is), else `OTEL_EXPORTER_OTLP_ENDPOINT` (+ `/v1/logs`), else
/// the built-in endpoint (+ `/v1/logs`); headers from `OTEL_EXPORTER_OTLP_LOGS_HEADERS`, else
/// `OTEL_EXPORTER_OTLP_HEADERS`. A variable that does not parse is skipped with a warning.
fn otlp_target(
    endpoint: Option<Endpoint>,
    from_flag: bool,
    env: &Environment,
    warnings: &mut Vec<String>,
) -> (Option<Endpoint>, Vec<(String, String)>) {
    let logs = |e: Endpoint| e.join(beacon_wire::otlp::LOGS_PATH);
    let mut from_env = |name: &str| {
        let value = env.var(name).filter(|v| !v.trim().is_empty())?;
        Endpoint::parse(value.trim())
            .map_err(|e| warnings.push(format!("ignoring {name}: {e}")))
            .ok()
    };
    let endpoint = match endpoint {
        Some(flag) if from_flag => Some(logs(flag)),
        baked => from_env("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT")
            .or_else(|| from_env("OTEL_EXPORTER_OTLP_ENDPOINT").map(logs))
            .or_else(|| baked.map(logs)),
    };
    let headers = ["OTEL_EXPORTER_OTLP_LOGS_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS"]
        .into_iter()
        .find_map(|name| Some((name, env.var(name).filter(|v| !v.trim().is_empty())?)))
        .map(|(name, text)| {
            let (headers, bad) = crate::encode::otlp_headers(text);
            if bad > 0 {
                warnings.push(format!(
                    "ignoring {bad} entr{} of {name}: use key=value pairs separated by commas",
                    if bad == 1 { "y" } else { "ies" }
                ));
            }
            headers
        })
        .unwrap_or_default();
    (endpoint, headers)
}

/// The executable's file name as invoked (a `donottrack` symlink or copy counts).
fn exe_name(argv0: Option<OsString>) -> String {
    argv0
        .as_deref()
        .map(Path::new)
        .and_then(Path::file_name)
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// argv[0] as a shell can run it again: a bare name stays a name (found on PATH), a path is made
/// absolute against the current directory.
fn exe_path(argv0: Option<OsString>) -> String {
    let Some(argv0) = argv0 else {
        return "install-beacon".into();
    };
    let path = Path::new(&argv0);
    if path.parent().is_none_or(|dir| dir.as_os_str().is_empty()) {
        return argv0.to_string_lossy().into_owned();
    }
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_owned())
        .to_string_lossy()
        .into_owned()
}

/// Whether the process runs as root, read from /proc without libc.
#[cfg(unix)]
fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Windows has no root fallback: the state directory is always under %LOCALAPPDATA%.
#[cfg(windows)]
fn is_root() -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exe_names() {
        assert_eq!(
            exe_name(Some("/opt/acme/bin/beacon-donottrack".into())),
            "beacon-donottrack"
        );
        assert_eq!(exe_name(Some("install-beacon".into())), "install-beacon");
        assert_eq!(exe_name(None), "");
    }
}
