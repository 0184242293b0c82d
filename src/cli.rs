//! The whole command-line surface: every subcommand, flag and environment variable.
//!
//! Values are parsed and validated here (clap reports bad ones with exit code 2); turning them into
//! the settings the rest of the program reads happens in `settings`.

use std::path::PathBuf;
use std::time::Duration;

use beacon_wire::Protocol;

use crate::encode::Endpoint;
use clap::builder::{FalseyValueParser, PossibleValue, PossibleValuesParser, TypedValueParser};
use clap::parser::ValueSource;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

use crate::consent;
use crate::event::branding;

/// Reports installer checkpoints (started, success, error, support) with anonymous OS facts to
/// Segment, PostHog, OpenTelemetry (OTLP) or a plain JSON endpoint, without ever failing or stalling
/// the installer.
#[derive(Debug, Parser)]
#[command(name = "install-beacon", version, max_term_width = 100)]
#[command(after_help = "Opt out with DO_NOT_TRACK=1, --telemetry=off, \
    <PRODUCT>_DISABLE_TELEMETRY=1, `install-beacon disable`, or an executable named *donottrack*.")]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

/// Options accepted before or after any subcommand, each also settable by environment variable.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Product name, used in events, file paths and opt-out variable names
    #[arg(long, global = true, env = "INSTALL_BEACON_PRODUCT", value_parser = parse_product)]
    pub product: Option<String>,

    /// Version of the product being installed
    #[arg(long, global = true, env = "INSTALL_BEACON_PRODUCT_VERSION", value_name = "VERSION")]
    pub product_version: Option<String>,

    /// Base URL of the analytics endpoint [default for segment: https://api.segment.io]
    #[arg(long, global = true, env = "INSTALL_BEACON_ENDPOINT", value_name = "URL", value_parser = Endpoint::parse)]
    pub endpoint: Option<Endpoint>,

    /// Segment write key or PostHog project API key
    #[arg(long, global = true, env = "INSTALL_BEACON_KEY", hide_env_values = true)]
    pub key: Option<String>,

    /// Wire format of the endpoint [default: segment]
    #[arg(long, global = true, env = "INSTALL_BEACON_PROTOCOL", value_parser = protocols())]
    pub protocol: Option<Protocol>,

    /// File holding the installation ID [default: <STATE_DIR>/installation_id]
    #[arg(long, global = true, env = "INSTALL_BEACON_ID_FILE", value_name = "PATH")]
    pub id_file: Option<PathBuf>,

    /// Directory for saved state [default: ~/.local/state/<PRODUCT>, or /var/lib/<PRODUCT> for root without HOME]
    #[arg(long, global = true, env = "INSTALL_BEACON_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// Turn telemetry on, off or to errors only (failures and support requests) for this call: on|off|errors, yes|no, true|false, 1|0, enable|disable, opt-in|opt-out, allow|forbid ...
    #[arg(long, global = true, env = "INSTALL_BEACON_TELEMETRY", value_name = "VALUE", value_parser = consent::parse_telemetry)]
    pub telemetry: Option<consent::Level>,

    /// Whether `telemetry` came from `INSTALL_BEACON_TELEMETRY` rather than the flag.
    #[arg(skip)]
    pub telemetry_from_env: bool,

    /// Upper bound for the whole call: DNS, connect, send and response (e.g. 500ms, 3s)
    #[arg(long, global = true, env = "INSTALL_BEACON_TIMEOUT", value_name = "DURATION", default_value = "3s", value_parser = parse_duration)]
    pub timeout: Duration,

    /// Exit 1 when an event cannot be delivered (default: warn and exit 0)
    #[arg(long, global = true, env = "INSTALL_BEACON_STRICT", value_parser = FalseyValueParser::new())]
    pub strict: bool,

    /// Print nothing but errors in your own input
    #[arg(long, short, global = true, env = "INSTALL_BEACON_QUIET", value_parser = FalseyValueParser::new())]
    pub quiet: bool,

    /// Queue the event and return at once; a detached process delivers it
    #[arg(long, global = true, env = "INSTALL_BEACON_BACKGROUND", value_parser = FalseyValueParser::new())]
    pub background: bool,

    /// Print the HTTP request that would be sent, and send nothing
    #[arg(long, global = true, env = "INSTALL_BEACON_DRY_RUN", value_parser = FalseyValueParser::new())]
    pub dry_run: bool,

    /// Consent when nobody chose: enabled, undecided (send nothing until asked), disabled (opt-in)
    #[arg(
        long,
        global = true,
        env = "INSTALL_BEACON_DEFAULT_CONSENT",
        value_parser = consent_states(),
        value_name = "STATE",
        default_value = "enabled"
    )]
    pub default_consent: consent::State,

    /// The product's own way to opt out, named by the first-run notice (e.g. "run `acme telemetry off`")
    #[arg(long, global = true, env = "INSTALL_BEACON_OPT_OUT_HINT", value_name = "TEXT")]
    pub opt_out_hint: Option<String>,

    /// The product's privacy policy, named by the first-run notice
    #[arg(long, global = true, env = "INSTALL_BEACON_PRIVACY_URL", value_name = "URL")]
    pub privacy_url: Option<String>,

    /// Send this event only once per installation ID (e.g. from a Docker entrypoint)
    #[arg(long, global = true)]
    pub once: bool,

    /// Send this event at most once per interval (e.g. 12h); skipped calls exit 0
    #[arg(long, global = true, value_name = "DURATION", value_parser = parse_duration)]
    pub min_interval: Option<Duration>,

    /// How the product is being installed, sent as install_method: curl-sh, docker, brew, winget, npm, ...
    #[arg(long, global = true, env = "INSTALL_BEACON_INSTALL_METHOD", value_name = "NAME", value_parser = parse_install_method)]
    pub install_method: Option<String>,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Report `Installation Started`
    Started,
    /// Report `Installation Success`
    Success,
    /// Report `Installation Error` for a failed step
    Error(ErrorArgs),
    /// Report `Installation Support`: the user asked for help and gave an email address
    Support(SupportArgs),
    /// Run one installer step: spinner, pass-through or log, `Installation Error` when it fails
    Run(RunArgs),
    /// Print shell functions for an installer: eval "$(install-beacon shell-init --product X)"
    ShellInit(ShellInitArgs),
    /// Report `Instance Active` (a keep-alive for cron or a healthcheck)
    Heartbeat(HeartbeatArgs),
    /// Show the consent state, or ask the user once with --prompt
    Consent(ConsentArgs),
    /// Report any other event
    Track(TrackArgs),
    /// Deliver the events queued by earlier calls that could not reach the endpoint
    Flush,
    /// Print the installation ID, creating it if missing
    Id(IdArgs),
    /// Save the choice to send telemetry
    Enable,
    /// Save the choice to send no telemetry
    Disable,
    /// Show whether telemetry is on, what decided it, and where things go
    Status,
    /// Show what was sent: every event delivered, queued or dropped, from the audit log
    Log(LogArgs),
    /// Print a shell completion script: install-beacon completions bash > /etc/bash_completion.d/install-beacon
    Completions(CompletionsArgs),
}

/// Options of `log`.
#[derive(Debug, Args)]
pub struct LogArgs {
    /// Print the log's JSON lines as stored instead of a table
    #[arg(long)]
    pub json: bool,
    /// Show only the last N events
    #[arg(long, value_name = "N", default_value = "20")]
    pub limit: usize,
}

/// Options of `completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete in
    #[arg(value_enum)]
    pub shell: CompletionShell,
}

/// Shells `completions` writes scripts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompletionShell {
    /// bash (with bash-completion)
    Bash,
    /// zsh
    Zsh,
    /// fish
    Fish,
}

/// Fields of `Installation Error`.
#[derive(Debug, Args)]
pub struct ErrorArgs {
    /// Name of the step that failed
    #[arg(long)]
    pub step: Option<String>,
    /// Exit code of the failed step
    #[arg(long, allow_negative_numbers = true)]
    pub exit_code: Option<i64>,
    /// Short description of the failure (trimmed to 500 characters)
    #[arg(long, value_parser = lossy_text())]
    pub message: Option<String>,
}

/// Fields of `Installation Support`.
#[derive(Debug, Args)]
pub struct SupportArgs {
    /// Email address the user typed in to be contacted at
    #[arg(long, required_unless_present = "prompt")]
    pub email: Option<String>,
    /// Ask on the terminal whether the user wants help, and for the address (skipped without one)
    #[arg(long, conflicts_with = "email")]
    pub prompt: bool,
    /// What the user needs help with (trimmed to 500 characters)
    #[arg(long, value_parser = lossy_text())]
    pub message: Option<String>,
    /// The step that failed [default: the step of the last `error` reported]
    #[arg(long)]
    pub step: Option<String>,
}

/// A custom event.
#[derive(Debug, Args)]
pub struct TrackArgs {
    /// Event name
    pub event: String,
    /// Property as key=value; numbers and true/false are sent as such (repeatable)
    #[arg(long = "prop", value_name = "KEY=VALUE", value_parser = parse_prop)]
    pub props: Vec<(String, serde_json::Value)>,
}

/// Options of `id`.
#[derive(Debug, Args)]
pub struct IdArgs {
    /// Replace the installation ID with a new random one
    #[arg(long, conflicts_with = "path")]
    pub reset: bool,
    /// Print the path of the ID file instead of the ID
    #[arg(long)]
    pub path: bool,
    /// `plain`: the ID alone; `env`: `<PRODUCT>_INSTALLATION_ID=<ID>`, for a docker.env file
    #[arg(long, value_enum, default_value = "plain", conflicts_with = "path")]
    pub format: IdFormat,
}

/// How `id` prints the ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum IdFormat {
    /// The ID alone.
    Plain,
    /// `<PRODUCT>_INSTALLATION_ID=<ID>`.
    Env,
}

/// Options of `run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Name of the step, sent as `step` when it fails and used for its recorded duration
    #[arg(long)]
    pub step: String,
    /// What the spinner and progress lines say [default: the step name]
    #[arg(long)]
    pub label: Option<String>,
    /// Append the command's stdout and stderr to this file; show its last lines on failure
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Keep a failure for the `error` the shell hooks' EXIT path sends (with the installer's
    /// message), instead of reporting it now
    #[arg(long, hide = true)]
    pub report_on_exit: bool,
    /// The command and its arguments, after `--`
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<std::ffi::OsString>,
}

/// Options of `shell-init`.
#[derive(Debug, Args)]
pub struct ShellInitArgs {
    /// When the script fails, also ask on the terminal whether the user wants help
    #[arg(long)]
    pub support_prompt: bool,
}

/// Options of `heartbeat`.
#[derive(Debug, Args)]
pub struct HeartbeatArgs {
    /// Only send when the last heartbeat is older than this (e.g. 6h)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub every: Option<Duration>,
}

/// Options of `consent`.
#[derive(Debug, Args)]
pub struct ConsentArgs {
    /// Ask once on the terminal and save the answer (skipped without a terminal or once decided)
    #[arg(long)]
    pub prompt: bool,
}

/// Parses the command line (exiting with clap's message on a mistake) and notes where values came from.
pub fn parse() -> Cli {
    let matches = Cli::command().get_matches();
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    cli.global.telemetry_from_env = matches.value_source("telemetry") == Some(ValueSource::EnvVariable);
    cli
}

/// `--protocol`'s values, from the wire contract.
fn protocols() -> impl TypedValueParser<Value = Protocol> {
    PossibleValuesParser::new(Protocol::ALL.map(|p| PossibleValue::new(p.name()).help(protocol_help(p))))
        .try_map(|name| name.parse::<Protocol>())
}

fn protocol_help(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Segment => "Segment HTTP tracking API: POST {endpoint}/v1/batch",
        Protocol::Posthog => "PostHog capture API: POST {endpoint}/batch/",
        Protocol::Json => "One plain JSON object per event: POST {endpoint}",
        Protocol::Otlp => "OpenTelemetry logs, OTLP/HTTP JSON: POST {endpoint}/v1/logs",
    }
}

/// `--default-consent`'s values.
fn consent_states() -> impl TypedValueParser<Value = consent::State> {
    use consent::State;
    let values = [
        (State::Enabled, "Send"),
        (
            State::Undecided,
            "Send nothing until the user answers `install-beacon consent --prompt` (or runs `enable`)",
        ),
        (State::Disabled, "Send nothing, create nothing"),
    ];
    PossibleValuesParser::new(values.map(|(state, help)| PossibleValue::new(state.name()).help(help)))
        .try_map(|name| name.parse::<State>())
}

/// Product names end up in file paths and variable names, so only a safe alphabet is allowed.
pub fn parse_product(s: &str) -> Result<String, String> {
    if branding::valid_product(s) {
        Ok(s.to_owned())
    } else {
        Err("use 1-64 letters, digits, '.', '_' or '-' (not starting with '.'), e.g. --product acme".into())
    }
}

/// Longest `--install-method` name.
const MAX_INSTALL_METHOD: usize = 32;

/// An install method's name: a short word of lower-case letters, digits, '-', '_' and '.'.
pub fn parse_install_method(s: &str) -> Result<String, String> {
    let valid = (1..=MAX_INSTALL_METHOD).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b));
    if valid {
        Ok(s.to_owned())
    } else {
        Err("use 1-32 lower-case letters, digits, '-', '_' or '.', e.g. curl-sh, docker, brew, winget, npm".into())
    }
}

/// Longest duration accepted: any deadline or interval up to it can be computed without overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Free text taken as it comes: bytes that are not UTF-8 (a message from a Latin-1 log, say) become
/// U+FFFD instead of failing the call, so the report still goes out.
fn lossy_text() -> impl clap::builder::TypedValueParser<Value = String> {
    use clap::builder::TypedValueParser;
    clap::builder::OsStringValueParser::new().map(|s| s.to_string_lossy().into_owned())
}

/// Durations like `500ms`, `3s`, `12h`; a bare number means seconds; at most `MAX_DURATION`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let parsed = match s.parse::<u64>() {
        Ok(secs) => Ok(Duration::from_secs(secs)),
        Err(_) => humantime::parse_duration(s).map_err(|e| e.to_string()),
    };
    match parsed {
        Ok(d) if d <= MAX_DURATION => Ok(d),
        Ok(_) => Err("too long: at most 100 years; use e.g. 500ms, 3s, 2m, 12h".into()),
        Err(e) => Err(format!("{e}; use e.g. 500ms, 3s, 2m, 12h")),
    }
}

/// `key=value`, where the value becomes a JSON integer, float or bool when it reads as one.
pub fn parse_prop(s: &str) -> Result<(String, serde_json::Value), String> {
    let (key, value) = s
        .split_once('=')
        .ok_or_else(|| format!("'{s}' has no '='; use KEY=VALUE"))?;
    if key.is_empty() {
        return Err(format!("'{s}' has an empty key; use KEY=VALUE"));
    }
    Ok((key.to_owned(), typed_value(value)))
}

fn typed_value(value: &str) -> serde_json::Value {
    if let Ok(i) = value.parse::<i64>() {
        return i.into();
    }
    if let Ok(f) = value.parse::<f64>()
        && f.is_finite()
        && value.bytes().any(|b| b.is_ascii_digit())
    {
        return f.into();
    }
    match value {
        "true" => true.into(),
        "false" => false.into(),
        _ => value.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn props_are_typed() {
        assert_eq!(parse_prop("a=1").unwrap(), ("a".into(), json!(1)));
        assert_eq!(parse_prop("a=-2.5").unwrap(), ("a".into(), json!(-2.5)));
        assert_eq!(parse_prop("a=true").unwrap(), ("a".into(), json!(true)));
        assert_eq!(parse_prop("a=x=y").unwrap(), ("a".into(), json!("x=y")));
        assert_eq!(parse_prop("a=").unwrap(), ("a".into(), json!("")));
        assert_eq!(parse_prop("a=inf").unwrap(), ("a".into(), json!("inf")));
        assert_eq!(parse_prop("a=NaN").unwrap(), ("a".into(), json!("NaN")));
        assert!(parse_prop("novalue").is_err());
        assert!(parse_prop("=v").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("3s").unwrap(), Duration::from_secs(3));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("5").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("12h").unwrap(), Duration::from_secs(12 * 3600));
        assert!(parse_duration("soon").is_err());
        assert_eq!(parse_duration("36500d").unwrap(), MAX_DURATION);
        assert!(parse_duration("36501d").unwrap_err().starts_with("too long"));
        for huge in ["18446744073709551615", "18446744073709551615ms", "600000000y"] {
            assert!(parse_duration(huge).is_err(), "{huge}");
        }
    }

    #[test]
    fn install_methods() {
        for good in ["curl-sh", "docker", "brew", "winget", "npm", "pip3.12", "apt_get"] {
            assert_eq!(parse_install_method(good).as_deref(), Ok(good));
        }
        for bad in ["", "Curl", "curl sh", "a/b", "é", &"x".repeat(33)] {
            assert!(parse_install_method(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn products() {
        assert!(parse_product("acme-db_2.0").is_ok());
        for bad in ["", "../x", "a/b", ".hidden", "a b", "ä"] {
            assert!(parse_product(bad).is_err(), "{bad}");
        }
    }
}
