//! The wire contract between install-beacon (the sender) and beacon-collector (the receiver): the
//! protocols spoken, the checkpoint event names and the property keys of every event. Both programs
//! read these from here, so a name changed on one side cannot silently miss the other.
//!
//! No dependencies and nothing but constants, a small enum and `const fn`s: the beacon pays no bytes
//! for sharing it.

#![no_std]

#[cfg(feature = "otlp-json")]
extern crate alloc;

use core::fmt;
use core::str::FromStr;

/// Wire format spoken between the beacon and a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// Segment HTTP tracking API: POST {endpoint}/v1/batch.
    Segment,
    /// PostHog capture API: POST {endpoint}/batch/.
    Posthog,
    /// One plain JSON object per event: POST {endpoint}.
    Json,
    /// OpenTelemetry logs, OTLP/HTTP JSON: POST {endpoint}/v1/logs.
    Otlp,
}

impl Protocol {
    /// Every protocol, in the order the docs list them.
    pub const ALL: [Protocol; 4] = [Protocol::Segment, Protocol::Posthog, Protocol::Json, Protocol::Otlp];

    /// The name used on command lines, in build variables and in stored rows.
    pub const fn name(self) -> &'static str {
        match self {
            Protocol::Segment => "segment",
            Protocol::Posthog => "posthog",
            Protocol::Json => "json",
            Protocol::Otlp => "otlp",
        }
    }

    /// The protocol called `name` (exact, lower case), usable in a `const`.
    pub const fn from_name(name: &str) -> Option<Protocol> {
        match name.as_bytes() {
            b"segment" => Some(Protocol::Segment),
            b"posthog" => Some(Protocol::Posthog),
            b"json" => Some(Protocol::Json),
            b"otlp" => Some(Protocol::Otlp),
            _ => None,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown protocol name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownProtocol;

impl fmt::Display for UnknownProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("use segment, posthog, json or otlp")
    }
}

impl core::error::Error for UnknownProtocol {}

impl FromStr for Protocol {
    type Err = UnknownProtocol;

    fn from_str(s: &str) -> Result<Protocol, UnknownProtocol> {
        Protocol::from_name(s).ok_or(UnknownProtocol)
    }
}

/// Event names as sent by an unbranded beacon (a branded build may rename the checkpoints).
pub mod event {
    /// An installer began.
    pub const STARTED: &str = "Installation Started";
    /// An installer finished without error.
    pub const SUCCESS: &str = "Installation Success";
    /// A step failed.
    pub const ERROR: &str = "Installation Error";
    /// The user asked for help and left an email address.
    pub const SUPPORT: &str = "Installation Support";
    /// Keep-alive of a running instance (`heartbeat`).
    pub const INSTANCE_ACTIVE: &str = "Instance Active";

    /// Every checkpoint name above.
    pub const ALL: [&str; 5] = [STARTED, SUCCESS, ERROR, SUPPORT, INSTANCE_ACTIVE];

    /// The installer could not fetch or run the beacon (sent by `fetch-beacon.sh`, not by the
    /// binary): a fact about delivery of the beacon, never a step of the installation, so it stays
    /// out of the funnel and the failing steps.
    pub const BEACON_UNAVAILABLE: &str = "Beacon Unavailable";
}

/// Keys of the properties every event carries (facts, product) and of the checkpoints' own fields.
pub mod prop {
    /// Distribution or OS id, e.g. `ubuntu`.
    pub const OS: &str = "os";
    /// OS version, e.g. `22.04`.
    pub const OS_VERSION: &str = "os_version";
    /// CPU architecture.
    pub const ARCH: &str = "arch";
    /// Logical CPUs.
    pub const CPU_COUNT: &str = "cpu_count";
    /// Total memory in MiB.
    pub const MEMORY_MB: &str = "memory_mb";
    /// `docker`, `podman`, `kubernetes` or `none`.
    pub const CONTAINER: &str = "container";
    /// Whether a CI system ran the installer.
    pub const CI: &str = "ci";
    /// `CI` and/or `INSTALL_BEACON_CONTEXT`.
    pub const CONTEXT: &str = "context";
    /// Product name.
    pub const PRODUCT: &str = "product";
    /// Product version.
    pub const PRODUCT_VERSION: &str = "product_version";
    /// Version of the beacon that sent the event.
    pub const BEACON_VERSION: &str = "beacon_version";
    /// The failed step (error, support).
    pub const STEP: &str = "step";
    /// The failed step's exit code.
    pub const EXIT_CODE: &str = "exit_code";
    /// A short free-text message (error, support).
    pub const MESSAGE: &str = "message";
    /// How long the failed step ran, in milliseconds.
    pub const DURATION_MS: &str = "duration_ms";
    /// The contact address of a support request (only in the support event).
    pub const EMAIL: &str = "email";
    /// Sum of the recorded step durations (success).
    pub const TOTAL_DURATION_MS: &str = "total_duration_ms";
    /// Step name → duration in milliseconds (success).
    pub const STEP_DURATIONS_MS: &str = "step_durations_ms";
    /// The install attempt this event belongs to: 1, 2, … per installation ID; each `started`
    /// begins the next one.
    pub const ATTEMPT: &str = "attempt";
    /// The AI agent that ran the installer (`claude-code`, `cursor`, `AI_AGENT`'s value, ...);
    /// absent when none was detected.
    pub const AGENT: &str = "agent";
    /// How the product is being installed (`curl-sh`, `docker`, `brew`, ...), when the installer says.
    pub const INSTALL_METHOD: &str = "install_method";

    /// Every key above.
    pub const ALL: [&str; 21] = [
        OS,
        OS_VERSION,
        ARCH,
        CPU_COUNT,
        MEMORY_MB,
        CONTAINER,
        CI,
        CONTEXT,
        PRODUCT,
        PRODUCT_VERSION,
        BEACON_VERSION,
        STEP,
        EXIT_CODE,
        MESSAGE,
        DURATION_MS,
        EMAIL,
        TOTAL_DURATION_MS,
        STEP_DURATIONS_MS,
        ATTEMPT,
        AGENT,
        INSTALL_METHOD,
    ];
}

/// OpenTelemetry logs (OTLP/HTTP): the names both sides translate events and properties to. One
/// `LogRecord` per event; the machine and product facts on the resource, the checkpoint's own fields
/// on the record. Properties not named here keep their key as the attribute key.
pub mod otlp {
    use super::{event, prop};

    #[cfg(feature = "otlp-json")]
    pub mod json;

    /// The path of the logs endpoint under an `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub const LOGS_PATH: &str = "/v1/logs";
    /// The resource attribute that carries the installation ID (semantic conventions: `app`).
    pub const INSTALLATION_ID: &str = "app.installation.id";
    /// `telemetry.sdk.name` of what the beacon sends.
    pub const SDK_NAME: &str = "install-beacon";

    /// Checkpoint name → `LogRecord.eventName`; other events keep their own name.
    pub const EVENT_NAMES: [(&str, &str); 5] = [
        (event::STARTED, "install.started"),
        (event::SUCCESS, "install.succeeded"),
        (event::ERROR, "install.failed"),
        (event::SUPPORT, "install.support_requested"),
        (event::INSTANCE_ACTIVE, "install.active"),
    ];

    /// Property key → resource attribute key.
    pub const RESOURCE: [(&str, &str); 11] = [
        (prop::PRODUCT, "service.name"),
        (prop::PRODUCT_VERSION, "service.version"),
        (prop::OS, "os.name"),
        (prop::OS_VERSION, "os.version"),
        (prop::ARCH, "host.arch"),
        (prop::BEACON_VERSION, "telemetry.sdk.version"),
        (prop::CPU_COUNT, "install.cpu_count"),
        (prop::MEMORY_MB, "install.memory_mb"),
        (prop::CONTAINER, "install.container"),
        (prop::CI, "install.ci"),
        (prop::CONTEXT, "install.context"),
    ];

    /// Property key → `LogRecord` attribute key.
    pub const RECORD: [(&str, &str); 8] = [
        (prop::STEP, "install.step"),
        (prop::EXIT_CODE, "process.exit.code"),
        (prop::MESSAGE, "install.message"),
        (prop::DURATION_MS, "install.duration_ms"),
        (prop::TOTAL_DURATION_MS, "install.total_duration_ms"),
        (prop::STEP_DURATIONS_MS, "install.step_durations_ms"),
        (prop::EMAIL, "user.email"),
        (prop::ATTEMPT, "install.attempt"),
    ];

    /// `std::env::consts::ARCH` → the semantic conventions' `host.arch` value; others are sent as they are.
    pub const ARCH_NAMES: [(&str, &str); 6] = [
        ("x86_64", "amd64"),
        ("aarch64", "arm64"),
        ("arm", "arm32"),
        ("powerpc", "ppc32"),
        ("powerpc64", "ppc64"),
        ("x86", "x86"),
    ];

    /// The OpenTelemetry name for `ours` in `table` (`(ours, theirs)` pairs).
    pub fn to_otel(table: &[(&'static str, &'static str)], ours: &str) -> Option<&'static str> {
        table.iter().find(|(o, _)| *o == ours).map(|(_, t)| *t)
    }

    /// Our name for the OpenTelemetry name `theirs` in `table`.
    pub fn from_otel(table: &[(&'static str, &'static str)], theirs: &str) -> Option<&'static str> {
        table.iter().find(|(_, t)| *t == theirs).map(|(o, _)| *o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn otlp_names_are_one_to_one() {
        use otlp::*;
        for table in [&EVENT_NAMES[..], &RESOURCE, &RECORD, &ARCH_NAMES] {
            for (ours, theirs) in table {
                assert_eq!(from_otel(table, theirs), Some(*ours), "{theirs}");
                assert_eq!(to_otel(table, ours), Some(*theirs), "{ours}");
            }
        }
        let keys = RESOURCE.iter().chain(&RECORD).map(|(_, t)| *t);
        assert!(
            keys.clone()
                .all(|k| k != INSTALLATION_ID && RESOURCE.iter().chain(&RECORD).filter(|(_, t)| *t == k).count() == 1)
        );
    }

    #[test]
    fn names_round_trip() {
        for p in Protocol::ALL {
            assert_eq!(p.name().parse::<Protocol>(), Ok(p));
        }
        for bad in ["", "Segment", "jsonx", "post"] {
            assert_eq!(Protocol::from_name(bad), None, "{bad}");
            assert!(bad.parse::<Protocol>().is_err());
        }
    }
}
