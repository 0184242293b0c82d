//! Settings resolved once at start-up from flags, environment, the defaults a branded build baked
//! in (`branding`) and built-in defaults. Nothing past this point reads flags or environment variables.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::ArgMatches;
use clap::parser::ValueSource;

use crate::cli::{GlobalArgs, Protocol, parse_endpoint};
use crate::consent::{self, Origin};
use crate::event::branding;
use crate::event::facts::FactsEnv;
use crate::store::state::{self, StateDir};
use crate::wire::Target;

/// Segment's API host, the default endpoint of the `segment` protocol.
pub const SEGMENT_ENDPOINT: &str = "https://api.segment.io";

/// The machine-wide policy file (`INSTALL_BEACON_POLICY_FILE` points elsewhere, for tests).
pub const POLICY_FILE: &str = "/etc/install-beacon/policy";

/// How long a terminal prompt waits for an answer (`INSTALL_BEACON_PROMPT_TIMEOUT`, hidden).
pub const PROMPT_TIMEOUT: Duration = Duration::from_secs(180);

/// A mistake in the caller's input: reported on one line with the fix, exit code 2.
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

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
    pub endpoint: Option<String>,
    /// API key.
    pub key: Option<String>,
    /// State directory, if one could be determined.
    pub state_dir: Option<StateDir>,
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
    /// Consent inputs except the saved choice, which is read from the state directory.
    pub consent: consent::Inputs,
    /// Environment the machine facts depend on.
    pub facts_env: FactsEnv,
    /// `--once` and `--min-interval`.
    pub throttle: Throttle,
    /// How long a terminal prompt waits for an answer.
    pub prompt_timeout: Duration,
    /// How to call this executable again from a shell (for `shell-init`): argv[0] made absolute
    /// when it is a path, without resolving symlinks, so a `*donottrack*` link stays one.
    pub exe_path: String,
    /// Problems found while resolving (e.g. a garbled policy file), to print once.
    pub warnings: Vec<String>,
}

/// Limits on how often an event is sent.
#[derive(Debug, Clone, Copy, Default)]
pub struct Throttle {
    /// Send the event only once per installation ID.
    pub once: bool,
    /// Send the event at most once per interval.
    pub min_interval: Option<Duration>,
}

impl Settings {
    /// Resolves settings from parsed flags (with their sources) and the process environment.
    pub fn resolve(args: &GlobalArgs, matches: &ArgMatches) -> Result<Settings, UsageError> {
        let product = args
            .product
            .clone()
            .or_else(|| branding::PRODUCT.map(str::to_owned))
            .ok_or_else(|| {
                UsageError(
                    "missing --product NAME: say which product is being installed (or set INSTALL_BEACON_PRODUCT)"
                        .into(),
                )
            })?;
        let protocol = args.protocol.or(branding::PROTOCOL).unwrap_or(Protocol::Segment);
        let endpoint = match (&args.endpoint, branding::ENDPOINT) {
            (Some(endpoint), _) => Some(endpoint.clone()),
            (None, Some(baked)) => Some(parse_endpoint(baked).map_err(|e| {
                UsageError(format!(
                    "invalid endpoint '{baked}' built into this binary: {e}\nhint: pass --endpoint URL, or rebuild with a valid BEACON_BUILD_ENDPOINT"
                ))
            })?),
            (None, None) => (protocol == Protocol::Segment).then(|| SEGMENT_ENDPOINT.to_owned()),
        };

        let home_set = std::env::var_os("HOME").is_some_and(|h| !h.is_empty());
        let state_dir = args
            .state_dir
            .clone()
            .or_else(|| state::default_dir(&product, home_set, is_root()))
            .map(StateDir::new);
        let id_file = args
            .id_file
            .clone()
            .or_else(|| state_dir.as_ref().map(StateDir::id_file));

        let telemetry = args.telemetry.map(|on| {
            let origin = match matches.value_source("telemetry") {
                Some(ValueSource::EnvVariable) => Origin::Env,
                _ => Origin::Flag,
            };
            (on, origin)
        });
        let env = consent::opt_out_vars(&product)
            .into_iter()
            .filter_map(|name| std::env::var(&name).ok().map(|value| (name, value)))
            .collect();

        let mut warnings = Vec::new();
        let policy_path = std::env::var_os("INSTALL_BEACON_POLICY_FILE")
            .filter(|p| !p.is_empty())
            .map_or_else(|| PathBuf::from(POLICY_FILE), PathBuf::from);
        let policy = read_policy(&policy_path, &mut warnings);
        let prompt_timeout = std::env::var("INSTALL_BEACON_PROMPT_TIMEOUT")
            .ok()
            .and_then(|v| crate::cli::parse_duration(&v).ok())
            .unwrap_or(PROMPT_TIMEOUT);
        let argv0 = std::env::args_os().next();

        Ok(Settings {
            product,
            product_version: args.product_version.clone().filter(|v| !v.is_empty()),
            protocol,
            endpoint,
            key: args
                .key
                .clone()
                .filter(|k| !k.is_empty())
                .or_else(|| branding::KEY.map(str::to_owned)),
            state_dir,
            id_file,
            timeout: args.timeout,
            strict: args.strict,
            quiet: args.quiet,
            dry_run: args.dry_run,
            background: args.background,
            debug: std::env::var("INSTALL_BEACON_DEBUG").is_ok_and(|v| consent::env_opts_out(&v)),
            consent: consent::Inputs {
                exe_name: exe_name(argv0.clone()),
                telemetry,
                env,
                saved: None,
                policy,
                default: args.default_consent,
            },
            facts_env: FactsEnv::from_process(),
            throttle: Throttle {
                once: args.once,
                min_interval: args.min_interval,
            },
            prompt_timeout,
            exe_path: exe_path(argv0),
            warnings,
        })
    }

    /// The target to send to, or the usage error that prevents sending.
    pub fn target(&self) -> Result<Target, UsageError> {
        let endpoint = self.endpoint.clone().ok_or_else(|| {
            UsageError(format!(
                "missing --endpoint URL: the {} protocol has no default endpoint (or set INSTALL_BEACON_ENDPOINT)",
                self.protocol.name()
            ))
        })?;
        let needs_key = matches!(self.protocol, Protocol::Segment | Protocol::Posthog);
        if needs_key && self.key.is_none() && !self.dry_run {
            let what = if self.protocol == Protocol::Segment {
                "Segment write key"
            } else {
                "PostHog project API key"
            };
            return Err(UsageError(format!(
                "missing --key KEY: the {} protocol needs the {what} (or set INSTALL_BEACON_KEY)",
                self.protocol.name()
            )));
        }
        Ok(Target {
            protocol: self.protocol,
            endpoint,
            key: self.key.clone(),
        })
    }
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

/// Reads the policy file: absent is no policy; present disables unless it says `telemetry=on`,
/// and an unreadable one disables too (it is an administrator's opt-out).
fn read_policy(path: &Path, warnings: &mut Vec<String>) -> Option<consent::Policy> {
    let shown = path.display().to_string();
    let disables = match std::fs::read(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            warnings.push(format!(
                "cannot read the policy file {shown} ({e}); telemetry stays off"
            ));
            true
        }
        Ok(bytes) => {
            let (disables, garbage) = consent::parse_policy(&String::from_utf8_lossy(&bytes));
            if !garbage.is_empty() {
                warnings.push(format!(
                    "ignoring unreadable lines in the policy file {shown}: {}\nhint: write `telemetry=off` (or `telemetry=on`) on a line of its own",
                    garbage.join(" | ")
                ));
            }
            disables
        }
    };
    Some(consent::Policy { path: shown, disables })
}

/// argv[0] as a shell can run it again: a bare name stays a name (found on PATH), a path is made
/// absolute against the current directory.
fn exe_path(argv0: Option<OsString>) -> String {
    let Some(argv0) = argv0 else {
        return "install-beacon".into();
    };
    let path = Path::new(&argv0);
    if !argv0.to_string_lossy().contains('/') {
        return argv0.to_string_lossy().into_owned();
    }
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_owned())
        .to_string_lossy()
        .into_owned()
}

/// Whether the process runs as root, read from /proc without libc.
fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
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
