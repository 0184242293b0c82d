//! The whole command-line surface, parsed once into plain settings.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

use crate::event::{Checkpoint, EventNames};
use crate::window::{Day, Since};

/// Receives install-beacon events (Segment, PostHog or plain JSON) into SQLite and reports on them.
#[derive(Debug, Parser)]
#[command(name = "beacon-collector", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Accept events over HTTP and serve the report page.
    Serve(Box<ServeArgs>),
    /// Print the installation report from a database.
    Report(ReportArgs),
    /// Delete every event of one installation (what `install-beacon id` prints), e.g. on request.
    Forget(ForgetArgs),
    /// Write every stored event, one per line, as JSON Lines or CSV.
    Export(ExportArgs),
    /// Compute the report's aggregates again from the installations and the raw events.
    Rebuild(RebuildArgs),
    /// Fill a database with synthetic events (for benchmarks and screenshots).
    #[command(hide = true)]
    Seed(SeedArgs),
}

/// Options of `forget`.
#[derive(Debug, clap::Args)]
pub struct ForgetArgs {
    /// SQLite database file written by `serve`, or `postgres://user@host/db`.
    #[arg(long)]
    pub db: PathBuf,
    /// The installation ID to forget.
    #[arg(long, value_name = "ID", value_parser = clap::builder::NonEmptyStringValueParser::new())]
    pub id: String,
}

/// Options of `rebuild`.
#[derive(Debug, clap::Args)]
pub struct RebuildArgs {
    /// SQLite database file written by `serve`, or `postgres://user@host/db`.
    #[arg(long)]
    pub db: PathBuf,
}

/// Options of `export`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// SQLite database file written by `serve`, or `postgres://user@host/db`.
    #[arg(long)]
    pub db: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = crate::store::export::Format::Jsonl)]
    pub format: crate::store::export::Format,
    /// Write to this file (created readable by its owner only) instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// A `--retain` length: at least a day, so that a typo cannot delete today's events.
pub fn retention(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text).map_err(|e| format!("invalid duration {text:?}: {e}"))?;
    if d < Duration::from_secs(86_400) {
        return Err(format!("{text} is shorter than a day; keep at least 1d"));
    }
    Ok(d)
}

/// Options of `serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port (the bound address is printed first).
    #[arg(long, default_value = "127.0.0.1:8787")]
    pub listen: SocketAddr,
    /// SQLite database file (created 0600 if missing), or `postgres://user@host/db` (shared by replicas).
    #[arg(long)]
    pub db: PathBuf,
    /// Accepted write/API key; repeat for several. Without any key (here, in the environment or
    /// in --key-file), every key is accepted.
    #[arg(
        long = "key",
        value_name = "KEY",
        env = "BEACON_COLLECTOR_KEY",
        hide_env_values = true
    )]
    pub keys: Vec<String>,
    /// File of accepted write/API keys, one per line (blank lines and lines starting with # are
    /// skipped), so that keys need not appear in `ps`.
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
    /// Token the report page and /report.json require: `Authorization: Bearer TOKEN`, or TOKEN as
    /// the password of HTTP Basic auth. Without one, they answer only on a loopback --listen.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "BEACON_COLLECTOR_ADMIN_TOKEN",
        hide_env_values = true
    )]
    pub admin_token: Option<String>,
    /// File whose first line (after lines starting with #) is the admin token; wins over
    /// --admin-token and BEACON_COLLECTOR_ADMIN_TOKEN.
    #[arg(long, value_name = "FILE")]
    pub admin_token_file: Option<PathBuf>,
    /// An event name a branded install-beacon build sends instead of a standard one, as
    /// CHECKPOINT=NAME (CHECKPOINT: started, success, error, support or active); repeat for several.
    /// Such events are stored and counted under the standard name.
    #[arg(long = "event-name", value_name = "CHECKPOINT=NAME", value_parser = EventNames::parse_one)]
    pub event_names: Vec<(Checkpoint, String)>,
    /// Notices per product and version (TOML, see the README); reloaded on SIGHUP or when it changes.
    #[arg(long = "notices", value_name = "FILE")]
    pub notices_file: Option<PathBuf>,
    /// Latest released version, echoed in every accepted response as `latest_version` (for
    /// products the notices file does not name).
    #[arg(long, value_name = "VERSION")]
    pub latest_version: Option<String>,
    /// Notice echoed in every accepted response under `notices` (for products the notices file does
    /// not name); repeat for several.
    #[arg(long = "notice", value_name = "TEXT")]
    pub notices: Vec<String>,
    /// Also forward every stored event to this backend, as BACKEND=URL (posthog=https://eu.i.posthog.com,
    /// segment=https://api.segment.io, otlp=http://otel-collector:4318); repeat for several.
    #[arg(long = "forward", value_name = "BACKEND=URL")]
    pub forward: Vec<crate::relay::Destination>,
    /// Key for each --forward, in the same order: PostHog project API key, Segment write key, or for
    /// otlp a bearer token (empty for none).
    #[arg(
        long = "forward-key",
        value_name = "KEY",
        env = "BEACON_COLLECTOR_FORWARD_KEY",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub forward_keys: Vec<String>,
    /// POST each new support request to this URL as JSON with a Slack-compatible `text` (a Slack
    /// or Mattermost incoming webhook, or any endpoint); durable and retried like --forward.
    /// Repeat for several.
    #[arg(long = "notify-support", value_name = "URL")]
    pub notify_support: Vec<String>,
    /// Serve the public statistics page /public (and /public.json) without a credential.
    #[arg(long)]
    pub public: bool,
    /// On the public page, groups of fewer installations than this are merged into "other".
    #[arg(long, value_name = "K", default_value_t = 10, value_parser = clap::value_parser!(u64).range(2..))]
    pub public_k: u64,
    /// Delete raw events older than this (e.g. 400d) at start and then hourly, keeping the daily
    /// counts the report needs; old installations keep their outcome without their ID.
    #[arg(long, value_name = "DURATION", value_parser = retention)]
    pub retain: Option<Duration>,
    /// How long a write waits for a locked database before answering 503.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration, hide = true)]
    pub busy_timeout: Duration,
    /// How long a client may take to send its request headers before the connection is closed.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration, hide = true)]
    pub header_timeout: Duration,
}

/// Options of `report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// SQLite database file written by `serve`, or `postgres://user@host/db`.
    #[arg(long)]
    pub db: PathBuf,
    /// Only installations first seen (and events sent) within this long (e.g. 30d, 12h); default: all.
    #[arg(long, value_name = "DURATION", value_parser = Since::parse, conflicts_with_all = ["from", "to"])]
    pub since: Option<Since>,
    /// ... or from this day on (YYYY-MM-DD, UTC).
    #[arg(long, value_name = "DATE", value_parser = Day::parse)]
    pub from: Option<Day>,
    /// ... up to and including this day (YYYY-MM-DD, UTC).
    #[arg(long, value_name = "DATE", value_parser = Day::parse)]
    pub to: Option<Day>,
    /// Count installations that ran in CI in the funnels and success rates (always shown apart).
    #[arg(long)]
    pub include_ci: bool,
    /// Count installations an AI agent ran in the funnels and success rates (always shown apart).
    #[arg(long)]
    pub include_agents: bool,
    /// An installation without an outcome is "running" for this long after it started, then "abandoned".
    #[arg(long, default_value = "30m", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub running_window: Duration,
    /// Only report this product.
    #[arg(long)]
    pub product: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Include the email addresses of support requests.
    #[arg(long)]
    pub show_emails: bool,
}

/// Output formats of `report`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned text for a terminal.
    Table,
    /// One JSON document.
    Json,
    /// Comma-separated rows, one section per `section` column value.
    Csv,
}

/// Options of the hidden `seed`.
#[derive(Debug, clap::Args)]
pub struct SeedArgs {
    /// SQLite database file (created if missing), or `postgres://user@host/db`.
    #[arg(long)]
    pub db: PathBuf,
    /// Number of events to generate.
    #[arg(long, default_value_t = 10_000)]
    pub events: u64,
    /// Spread the events over this many days before now.
    #[arg(long, default_value_t = 30)]
    pub days: u32,
    /// Seed of the generator (same seed, same data).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}
