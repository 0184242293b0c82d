//! Property tests: every parser that reads files or user input takes arbitrary bytes without
//! panicking, and the ones with an inverse round-trip.

use clap::Parser;
use proptest::prelude::*;

use crate::commands::support::validate_email;
use crate::delivery::{notices, outbox};
use crate::event::facts as system;
use crate::store::{identity, state};
use crate::{cli, consent};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn file_parsers_take_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let contents = outbox::parse(&bytes);
        prop_assert!(contents.events.len() + contents.skipped <= bytes.len());
        let _ = identity::parse(&bytes);
        let _ = serde_json::from_slice::<state::Saved>(&bytes);
        let text = String::from_utf8_lossy(&bytes);
        let _ = system::parse_os_release(&text);
        let _ = system::parse_meminfo(&text);
    }

    #[test]
    fn input_parsers_take_any_text(s in "\\PC{0,64}") {
        let _ = consent::parse_telemetry(&s);
        let _ = consent::env_opts_out(&s);
        let _ = cli::parse_prop(&s);
        let _ = cli::parse_duration(&s);
        let _ = cli::parse_endpoint(&s);
        let _ = cli::parse_product(&s);
        let _ = validate_email(&s);
        let _ = notices::is_newer(&s, "1.2.3");
    }

    #[test]
    fn command_lines_never_panic(args in proptest::collection::vec("[-a-z=0-9 .:/@]{0,16}", 0..6)) {
        let _ = cli::Cli::try_parse_from(std::iter::once("install-beacon".to_owned()).chain(args));
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
