//! Property tests: every parser that reads files or user input takes arbitrary bytes without
//! panicking, and the ones with an inverse round-trip.

use clap::{CommandFactory, FromArgMatches, Parser};
use proptest::prelude::*;

use crate::commands::support::validate_email;
use crate::delivery::{notices, outbox};
use crate::event::facts as system;
use crate::store::{identity, state};
use crate::{cli, consent, settings};

/// Every global option and subcommand option that takes a value or changes parsing.
const OPTIONS: &[&str] = &[
    "--product",
    "--product-version",
    "--endpoint",
    "--key",
    "--protocol",
    "--id-file",
    "--state-dir",
    "--telemetry",
    "--timeout",
    "--default-consent",
    "--min-interval",
    "--every",
    "--once",
    "--dry-run",
    "--strict",
    "--quiet",
    "--background",
    "--",
];

/// Environment variables the settings read.
const VARIABLES: &[&str] = &[
    "HOME",
    "DO_NOT_TRACK",
    "ACME_DISABLE_TELEMETRY",
    "INSTALL_BEACON_DEBUG",
    "INSTALL_BEACON_CONTEXT",
    "INSTALL_BEACON_POLICY_FILE",
    "INSTALL_BEACON_PROMPT_TIMEOUT",
    "KUBERNETES_SERVICE_HOST",
    "container",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn file_parsers_take_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let (entries, skipped) = outbox::parse(&bytes);
        prop_assert!(entries.len() + skipped <= bytes.len());
        let _ = identity::parse(&bytes);
        let _ = serde_json::from_slice::<state::Saved>(&bytes);
        let text = String::from_utf8_lossy(&bytes);
        let _ = system::parse_os_release(&text);
        let _ = system::parse_meminfo(&text);
        let _ = system::parse_system_version(&text);
    }

    #[test]
    fn input_parsers_take_any_text(s in "\\PC{0,64}") {
        let _ = consent::parse_telemetry(&s);
        let _ = consent::env_opts_out(&s);
        let _ = cli::parse_prop(&s);
        let _ = cli::parse_duration(&s);
        let _ = crate::encode::Endpoint::parse(&s);
        let _ = cli::parse_product(&s);
        let _ = validate_email(&s);
        let _ = notices::is_newer(&s, "1.2.3");
    }

    #[test]
    fn command_lines_never_panic(args in proptest::collection::vec("[-a-z=0-9 .:/@]{0,16}", 0..6)) {
        let _ = cli::Cli::try_parse_from(std::iter::once("install-beacon".to_owned()).chain(args));
    }

    /// Options and environment variables with arbitrary values, durations far past anything
    /// representable included, end in settings whose every duration can be added to a clock, or
    /// in an error; never a panic.
    #[test]
    fn arguments_and_environment_resolve_to_settings_or_an_error(
        args in proptest::collection::vec(
            prop_oneof![
                proptest::sample::select(OPTIONS).prop_map(str::to_owned),
                "\\PC{0,24}",
                "[0-9]{1,26}(ns|ms|s|m|h|d|w|y)?",
            ],
            0..8,
        ),
        vars in proptest::collection::vec(
            (
                proptest::sample::select(VARIABLES).prop_map(str::to_owned),
                prop_oneof!["\\PC{0,24}", "[0-9]{1,26}(ms|s|h|d|y)?"],
            ),
            0..6,
        ),
        command in proptest::sample::select(&["started", "status", "heartbeat", "flush", "id"][..]),
    ) {
        let argv = ["install-beacon", command].into_iter().map(str::to_owned).chain(args);
        if let Ok(matches) = cli::Cli::command().try_get_matches_from(argv)
            && let Ok(parsed) = cli::Cli::from_arg_matches(&matches)
        {
            let every = match &parsed.command {
                cli::Command::Heartbeat(h) => h.every,
                _ => None,
            };
            let env = settings::Environment::with_vars(&vars);
            if let Ok(s) = settings::Settings::resolve(parsed.global, &env) {
                // Every deadline computed from these stays representable.
                let durations = [Some(s.timeout), s.throttle.min_interval, every, Some(s.prompt_timeout)];
                for d in durations.into_iter().flatten() {
                    prop_assert!(d <= cli::MAX_DURATION, "{d:?}");
                    prop_assert!(std::time::Instant::now().checked_add(d).is_some());
                }
                let _ = consent::decide(&s.consent);
            }
        }
    }

    #[test]
    fn props_keep_key_and_text(key in "[a-z_]{1,12}", value in "[a-zA-Z ]{0,20}") {
        let (k, v) = cli::parse_prop(&format!("{key}={value}")).unwrap();
        prop_assert_eq!(k, key);
        if value != "true" && value != "false" {
            prop_assert_eq!(v.as_str(), Some(value.as_str()));
        }
    }

    #[test]
    fn ids_round_trip(bytes in any::<[u8; 16]>()) {
        let id = uuid::Builder::from_random_bytes(bytes).into_uuid();
        prop_assert_eq!(identity::parse(format!("{id}\n").as_bytes()), Some(id));
    }

    #[test]
    fn durations_in_ms_round_trip(ms in 0u64..10_000_000) {
        prop_assert_eq!(cli::parse_duration(&format!("{ms}ms")).unwrap().as_millis(), u128::from(ms));
    }
}
