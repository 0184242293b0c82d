//! The consent decision: a pure function of its inputs that returns the answer and the source that
//! decided it, so `status` can explain it and every source can be tested without touching the machine.

pub mod policy;

use std::fmt;
use std::str::FromStr;

pub use policy::Policy;

/// Values of `--telemetry` that turn telemetry off (FerretDB's vocabulary).
const OFF: &[&str] = &[
    "0", "f", "false", "n", "no", "off", "disable", "disabled", "optout", "opt-out", "disallow", "forbid",
];
/// Values of `--telemetry` that turn telemetry on.
const ON: &[&str] = &[
    "1", "t", "true", "y", "yes", "on", "enable", "enabled", "optin", "opt-in", "allow",
];
/// Values of `--telemetry` that send failures and support requests only (VS Code's `error` level).
const ERRORS: &[&str] = &["errors", "error", "errors-only"];

/// How much telemetry a source allows, least first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Nothing.
    Off,
    /// Only Installation Error and Installation Support.
    Errors,
    /// Every event.
    All,
}

impl Level {
    /// The `--telemetry` value that asks for this level.
    pub fn name(self) -> &'static str {
        match self {
            Level::Off => "off",
            Level::Errors => "errors",
            Level::All => "on",
        }
    }

    /// The level a state file's `consent` and `errors_only` record.
    pub fn from_saved(consent: Option<bool>, errors_only: bool) -> Option<Level> {
        consent.map(|on| match (on, errors_only) {
            (true, _) => Level::All,
            (false, true) => Level::Errors,
            (false, false) => Level::Off,
        })
    }

    /// `consent` and `errors_only` as a state file records this level.
    pub fn to_saved(self) -> (bool, bool) {
        (self == Level::All, self == Level::Errors)
    }
}

/// Parses a `--telemetry` value, case-insensitively.
pub fn parse_telemetry(value: &str) -> Result<Level, String> {
    let v = value.trim().to_ascii_lowercase();
    if OFF.contains(&v.as_str()) {
        Ok(Level::Off)
    } else if ON.contains(&v.as_str()) {
        Ok(Level::All)
    } else if ERRORS.contains(&v.as_str()) {
        Ok(Level::Errors)
    } else {
        Err(format!(
            "use one of: {} (on), {} (off) or errors (failures and support requests only)",
            ON.join(" "),
            OFF.join(" ")
        ))
    }
}

/// Whether an opt-out variable such as `DO_NOT_TRACK` is set: anything but empty, `0` or `false`.
pub fn env_opts_out(value: &str) -> bool {
    let v = value.trim();
    !(v.is_empty() || v == "0" || v.eq_ignore_ascii_case("false"))
}

/// Where a `--telemetry` value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The command line.
    Flag,
    /// `INSTALL_BEACON_TELEMETRY`.
    Env,
}

/// Everything the decision depends on, gathered once at start-up.
#[derive(Debug, Default, Clone)]
pub struct Inputs {
    /// File name of the running executable.
    pub exe_name: String,
    /// `--telemetry` or `INSTALL_BEACON_TELEMETRY`, parsed.
    pub telemetry: Option<(Level, Origin)>,
    /// Opt-out variables that are set, as (name, value), strongest first.
    pub env: Vec<(String, String)>,
    /// The choice saved by `enable` / `disable` / `consent --prompt`.
    pub saved: Option<Level>,
    /// The machine-wide policy file, when one exists.
    pub policy: Option<Policy>,
    /// What applies when nothing else decides (`--default-consent`).
    pub default: State,
}

/// Whether events may be sent.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Send.
    #[default]
    Enabled,
    /// Send nothing until the user answers `install-beacon consent --prompt` (or runs `enable`).
    Undecided,
    /// Send nothing, create nothing.
    Disabled,
    /// Send Installation Error and Installation Support only.
    ErrorsOnly,
}

impl State {
    /// The word `status` and the docs use.
    pub fn name(self) -> &'static str {
        match self {
            State::Enabled => "enabled",
            State::Undecided => "undecided",
            State::Disabled => "disabled",
            State::ErrorsOnly => "errors only",
        }
    }
}

impl FromStr for State {
    type Err = String;

    fn from_str(s: &str) -> Result<State, String> {
        [State::Enabled, State::Undecided, State::Disabled]
            .into_iter()
            .find(|state| state.name() == s)
            .ok_or_else(|| "use enabled, undecided or disabled".to_owned())
    }
}

/// What decided the consent state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The executable's name contains `donottrack`.
    ExecutableName(String),
    /// The machine-wide policy file, by path.
    Policy(String),
    /// `--telemetry`.
    Flag,
    /// An environment variable, by name.
    Env(String),
    /// The choice saved by `enable` / `disable`.
    Saved,
    /// Nothing was set.
    Default,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::ExecutableName(name) => write!(f, "executable name '{name}' contains 'donottrack'"),
            Source::Policy(path) => write!(f, "policy file {path}"),
            Source::Flag => f.write_str("--telemetry flag"),
            Source::Env(name) => write!(f, "environment variable {name}"),
            Source::Saved => f.write_str("saved choice (install-beacon enable/disable)"),
            Source::Default => f.write_str("default (--default-consent)"),
        }
    }
}

/// The answer and its reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Whether to send.
    pub state: State,
    /// What decided it.
    pub source: Source,
}

impl Decision {
    /// True when an event may be sent: every one when enabled, failures and support requests
    /// (`error_report`) at the errors-only level.
    pub fn allows(&self, error_report: bool) -> bool {
        match self.state {
            State::Enabled => true,
            State::ErrorsOnly => error_report,
            State::Undecided | State::Disabled => false,
        }
    }

    /// Whether this opt-out rules out every connection, even one the user asks for (`support`):
    /// the packager's `donottrack` name and the administrator's policy do; the statistics
    /// choices (flag, environment, saved answer, default) are about statistics only.
    pub fn forbids_any_connection(&self) -> bool {
        self.state == State::Disabled && matches!(self.source, Source::ExecutableName(_) | Source::Policy(_))
    }
}

/// Decides, opt-outs first so that the user's opt-out always wins: executable name, the machine's
/// policy file, `--telemetry` off, opt-out variables, a saved `disable`; then the errors-only
/// choices (`--telemetry errors`, saved), which beat the opt-ins: `--telemetry` on, a saved
/// `enable`; and last `--default-consent`. A policy file saying `telemetry=errors` caps whatever
/// would send at errors only, and grants nothing.
pub fn decide(inputs: &Inputs) -> Decision {
    let decision = |state, source| Decision { state, source };
    let flag = inputs.telemetry.map(|(level, origin)| {
        let source = match origin {
            Origin::Flag => Source::Flag,
            Origin::Env => Source::Env("INSTALL_BEACON_TELEMETRY".into()),
        };
        (level, source)
    });
    if inputs.exe_name.to_ascii_lowercase().contains("donottrack") {
        return decision(State::Disabled, Source::ExecutableName(inputs.exe_name.clone()));
    }
    let policy = inputs.policy.as_ref().filter(|p| p.level < Level::All);
    if let Some(policy) = policy.filter(|p| p.level == Level::Off) {
        return decision(State::Disabled, Source::Policy(policy.path.clone()));
    }
    let chosen = |wanted: Level| {
        let flag = flag
            .clone()
            .filter(|(level, _)| *level == wanted)
            .map(|(_, source)| source);
        flag.or_else(|| (inputs.saved == Some(wanted)).then_some(Source::Saved))
    };
    let opted_out = (flag
        .clone()
        .filter(|(level, _)| *level == Level::Off)
        .map(|(_, source)| source))
    .or_else(|| {
        let (name, _) = inputs.env.iter().find(|(_, value)| env_opts_out(value))?;
        Some(Source::Env(name.clone()))
    })
    .or_else(|| (inputs.saved == Some(Level::Off)).then_some(Source::Saved));
    if let Some(source) = opted_out {
        return decision(State::Disabled, source);
    }
    let chosen = match (chosen(Level::Errors), chosen(Level::All)) {
        (Some(source), _) => decision(State::ErrorsOnly, source),
        (None, Some(source)) => decision(State::Enabled, source),
        (None, None) => decision(inputs.default, Source::Default),
    };
    match policy {
        Some(policy) if matches!(chosen.state, State::Enabled | State::ErrorsOnly) => {
            decision(State::ErrorsOnly, Source::Policy(policy.path.clone()))
        }
        _ => chosen,
    }
}

/// Names of the opt-out variables for a product, strongest first: `DO_NOT_TRACK`,
/// `OTEL_SDK_DISABLED` (OpenTelemetry's switch, which DO_NOT_TRACK helpers set too), then
/// `<PRODUCT>_DISABLE_TELEMETRY`, `<PRODUCT>_TELEMETRY_DISABLE`, `<PRODUCT>_TELEMETRY_DISABLED`.
pub fn opt_out_vars(product: &str) -> Vec<String> {
    let prefix = env_prefix(product);
    vec![
        "DO_NOT_TRACK".into(),
        "OTEL_SDK_DISABLED".into(),
        format!("{prefix}_DISABLE_TELEMETRY"),
        format!("{prefix}_TELEMETRY_DISABLE"),
        format!("{prefix}_TELEMETRY_DISABLED"),
    ]
}

/// A product name as an environment variable prefix: upper-cased, anything but ASCII letters and
/// digits as `_` (`acme-db.io` → `ACME_DB_IO`).
pub fn env_prefix(product: &str) -> String {
    product
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs() -> Inputs {
        Inputs {
            exe_name: "install-beacon".into(),
            ..Inputs::default()
        }
    }

    #[test]
    fn vocabulary() {
        for v in [
            "0", "F", "false", "N", "no", "disable", "Disabled", "optout", "opt-out", "disallow", "forbid", "off",
        ] {
            assert_eq!(parse_telemetry(v), Ok(Level::Off), "{v}");
        }
        for v in [
            "1", "t", "TRUE", "y", "yes", "enable", "enabled", "optin", "opt-in", "allow", "on",
        ] {
            assert_eq!(parse_telemetry(v), Ok(Level::All), "{v}");
        }
        for v in ["errors", "Error", "ERRORS-ONLY"] {
            assert_eq!(parse_telemetry(v), Ok(Level::Errors), "{v}");
        }
        let err = parse_telemetry("maybe").unwrap_err();
        assert!(
            err.contains("opt-out") && err.contains("allow") && err.contains("errors"),
            "{err}"
        );
    }

    #[test]
    fn default_is_enabled() {
        assert_eq!(
            decide(&inputs()),
            Decision {
                state: State::Enabled,
                source: Source::Default
            }
        );
    }

    #[test]
    fn executable_name_beats_everything() {
        let d = decide(&Inputs {
            exe_name: "acme-DoNotTrack".into(),
            telemetry: Some((Level::All, Origin::Flag)),
            saved: Some(Level::All),
            ..inputs()
        });
        assert_eq!(d.state, State::Disabled);
        assert_eq!(d.source, Source::ExecutableName("acme-DoNotTrack".into()));
    }

    #[test]
    fn every_opt_out_beats_the_flag_opt_in() {
        let on = Some((Level::All, Origin::Flag));
        let d = decide(&Inputs {
            telemetry: on,
            env: vec![("DO_NOT_TRACK".into(), "1".into())],
            ..inputs()
        });
        assert_eq!(
            d,
            Decision {
                state: State::Disabled,
                source: Source::Env("DO_NOT_TRACK".into())
            }
        );
        let d = decide(&Inputs {
            telemetry: Some((Level::All, Origin::Env)),
            saved: Some(Level::Off),
            ..inputs()
        });
        assert_eq!(d.source, Source::Saved);
        assert_eq!(d.state, State::Disabled);
        let d = decide(&Inputs {
            telemetry: on,
            saved: Some(Level::Off),
            ..inputs()
        });
        assert_eq!(d.state, State::Disabled);
        // An opt-in still beats a saved `enable`, a default and nothing at all.
        let d = decide(&Inputs {
            telemetry: on,
            saved: Some(Level::All),
            default: State::Disabled,
            ..inputs()
        });
        assert_eq!(
            d,
            Decision {
                state: State::Enabled,
                source: Source::Flag
            }
        );
        let d = decide(&Inputs {
            telemetry: Some((Level::Off, Origin::Env)),
            ..inputs()
        });
        assert_eq!(d.source, Source::Env("INSTALL_BEACON_TELEMETRY".into()));
        assert_eq!(d.state, State::Disabled);
    }

    #[test]
    fn env_values() {
        for (value, disables) in [
            ("1", true),
            ("true", true),
            ("yes", true),
            ("", false),
            ("0", false),
            ("FALSE", false),
        ] {
            let d = decide(&Inputs {
                env: vec![("ACME_DISABLE_TELEMETRY".into(), value.into())],
                saved: Some(Level::All),
                ..inputs()
            });
            let expected = if disables {
                Decision {
                    state: State::Disabled,
                    source: Source::Env("ACME_DISABLE_TELEMETRY".into()),
                }
            } else {
                Decision {
                    state: State::Enabled,
                    source: Source::Saved,
                }
            };
            assert_eq!(d, expected, "value {value:?}");
        }
    }

    #[test]
    fn first_opting_out_variable_is_named() {
        let d = decide(&Inputs {
            env: vec![
                ("DO_NOT_TRACK".into(), "0".into()),
                ("ACME_TELEMETRY_DISABLED".into(), "1".into()),
            ],
            ..inputs()
        });
        assert_eq!(d.source, Source::Env("ACME_TELEMETRY_DISABLED".into()));
        let all_set: Vec<(String, String)> = opt_out_vars("acme").into_iter().map(|n| (n, "true".into())).collect();
        for first in 0..all_set.len() {
            let d = decide(&Inputs {
                env: all_set[first..].to_vec(),
                ..inputs()
            });
            assert_eq!(d.source, Source::Env(all_set[first].0.clone()), "{first}");
        }
    }

    #[test]
    fn saved_choice() {
        let d = decide(&Inputs {
            saved: Some(Level::Off),
            ..inputs()
        });
        assert_eq!(
            d,
            Decision {
                state: State::Disabled,
                source: Source::Saved
            }
        );
    }

    #[test]
    fn variable_names() {
        assert_eq!(
            opt_out_vars("acme-db.io"),
            [
                "DO_NOT_TRACK",
                "OTEL_SDK_DISABLED",
                "ACME_DB_IO_DISABLE_TELEMETRY",
                "ACME_DB_IO_TELEMETRY_DISABLE",
                "ACME_DB_IO_TELEMETRY_DISABLED"
            ]
        );
    }

    #[test]
    fn policy_file_text() {
        use Level::{All, Errors, Off};
        assert_eq!(policy::parse("telemetry=off\n"), (Off, vec![]));
        assert_eq!(policy::parse("# admin\n\n Telemetry = ON \n"), (All, vec![]));
        assert_eq!(policy::parse(""), (Off, vec![]), "an empty file still disables");
        assert_eq!(policy::parse("telemetry=on\ntelemetry=off"), (Off, vec![]));
        assert_eq!(policy::parse("telemetry=errors"), (Errors, vec![]));
        assert_eq!(
            policy::parse("telemetry=on\ntelemetry=errors\ntelemetry=on"),
            (Errors, vec![])
        );
        assert_eq!(
            policy::parse("telemetry=maybe"),
            (Off, vec!["telemetry=maybe".to_owned()])
        );
        assert_eq!(
            policy::parse("\u{0}\u{1}garbage"),
            (Off, vec!["\u{0}\u{1}garbage".to_owned()])
        );
        assert_eq!(policy::parse("telemetry=on\nnoise"), (All, vec!["noise".to_owned()]));
    }

    #[test]
    fn policy_beats_flag_but_not_executable_name() {
        let policy = Some(Policy {
            path: "/etc/install-beacon/policy".into(),
            level: Level::Off,
        });
        let d = decide(&Inputs {
            telemetry: Some((Level::All, Origin::Flag)),
            saved: Some(Level::All),
            policy: policy.clone(),
            ..inputs()
        });
        assert_eq!(d.state, State::Disabled);
        assert_eq!(d.source, Source::Policy("/etc/install-beacon/policy".into()));
        let d = decide(&Inputs {
            exe_name: "donottrack".into(),
            policy,
            ..inputs()
        });
        assert_eq!(d.source, Source::ExecutableName("donottrack".into()));
    }

    #[test]
    fn default_consent_applies_only_when_nothing_else_decides() {
        for default in [State::Enabled, State::Undecided, State::Disabled] {
            let d = decide(&Inputs { default, ..inputs() });
            assert_eq!(
                d,
                Decision {
                    state: default,
                    source: Source::Default
                }
            );
            let d = decide(&Inputs {
                default,
                saved: Some(Level::All),
                ..inputs()
            });
            assert_eq!(d.state, State::Enabled, "a saved yes beats default {default:?}");
        }
    }

    #[test]
    fn errors_only_beats_the_opt_ins_and_loses_to_the_opt_outs() {
        let errors = |origin| Some((Level::Errors, origin));
        let d = decide(&Inputs {
            telemetry: errors(Origin::Env),
            saved: Some(Level::All),
            ..inputs()
        });
        assert_eq!(
            d,
            Decision {
                state: State::ErrorsOnly,
                source: Source::Env("INSTALL_BEACON_TELEMETRY".into())
            }
        );
        assert!(d.allows(true) && !d.allows(false));
        let d = decide(&Inputs {
            telemetry: Some((Level::All, Origin::Flag)),
            saved: Some(Level::Errors),
            ..inputs()
        });
        assert_eq!((d.state, d.source), (State::ErrorsOnly, Source::Saved));
        let d = decide(&Inputs {
            telemetry: errors(Origin::Flag),
            env: vec![("DO_NOT_TRACK".into(), "1".into())],
            ..inputs()
        });
        assert_eq!(
            (d.state, d.source),
            (State::Disabled, Source::Env("DO_NOT_TRACK".into()))
        );
        // The policy caps what would be sent, and grants nothing.
        let policy = Some(Policy {
            path: "P".into(),
            level: Level::Errors,
        });
        let d = decide(&Inputs {
            policy: policy.clone(),
            telemetry: Some((Level::All, Origin::Flag)),
            ..inputs()
        });
        assert!(!d.forbids_any_connection(), "a support request still goes out");
        assert_eq!((d.state, d.source), (State::ErrorsOnly, Source::Policy("P".into())));
        let d = decide(&Inputs {
            policy,
            default: State::Undecided,
            ..inputs()
        });
        assert_eq!((d.state, d.source), (State::Undecided, Source::Default));
    }

    /// Every combination of every input, against the precedence written out as a table: the first
    /// row whose input is present decides, no errors-only row comes before an opt-out row and no
    /// opt-in row before an errors-only row; a policy of `errors` then caps whatever sends.
    #[test]
    fn every_combination() {
        use Level::{All, Errors, Off};
        let exes = ["install-beacon", "x-donottrack"];
        let policies = [None, Some(Off), Some(Errors), Some(All)];
        let mut flags = vec![None];
        for level in [All, Errors, Off] {
            flags.extend([Some((level, Origin::Flag)), Some((level, Origin::Env))]);
        }
        let envs: [&[(&str, &str)]; 3] = [&[], &[("DO_NOT_TRACK", "1")], &[("DO_NOT_TRACK", "0")]];
        let saveds = [None, Some(All), Some(Errors), Some(Off)];
        let defaults = [State::Enabled, State::Undecided, State::Disabled];
        let mut count = 0;
        for exe in exes {
            for policy in policies {
                for &flag in &flags {
                    for env in envs {
                        for saved in saveds {
                            for default in defaults {
                                count += 1;
                                let input = Inputs {
                                    exe_name: exe.into(),
                                    telemetry: flag,
                                    env: env.iter().map(|(n, v)| ((*n).into(), (*v).into())).collect(),
                                    saved,
                                    policy: policy.map(|level| Policy {
                                        path: "P".into(),
                                        level,
                                    }),
                                    default,
                                };
                                let state = |level| match level {
                                    Off => State::Disabled,
                                    Errors => State::ErrorsOnly,
                                    All => State::Enabled,
                                };
                                let off = |source| (State::Disabled, source);
                                let flag_row = flag.map(|(level, origin)| {
                                    let source = match origin {
                                        Origin::Flag => Source::Flag,
                                        Origin::Env => Source::Env("INSTALL_BEACON_TELEMETRY".into()),
                                    };
                                    (state(level), source)
                                });
                                let saved_row = saved.map(|level| (state(level), Source::Saved));
                                let is = |state| move |row: &(State, Source)| row.0 == state;
                                let chosen = [
                                    (exe != "install-beacon").then(|| off(Source::ExecutableName(exe.into()))),
                                    (policy == Some(Off)).then(|| off(Source::Policy("P".into()))),
                                    flag_row.clone().filter(is(State::Disabled)),
                                    (env.first().is_some_and(|(_, v)| *v == "1"))
                                        .then(|| off(Source::Env("DO_NOT_TRACK".into()))),
                                    saved_row.clone().filter(is(State::Disabled)),
                                    flag_row.clone().filter(is(State::ErrorsOnly)),
                                    saved_row.clone().filter(is(State::ErrorsOnly)),
                                    flag_row.filter(is(State::Enabled)),
                                    saved_row.filter(is(State::Enabled)),
                                    Some((default, Source::Default)),
                                ]
                                .into_iter()
                                .flatten()
                                .next()
                                .unwrap();
                                let sends = matches!(chosen.0, State::Enabled | State::ErrorsOnly);
                                let expected = if policy == Some(Errors) && sends {
                                    (State::ErrorsOnly, Source::Policy("P".into()))
                                } else {
                                    chosen
                                };
                                let d = decide(&input);
                                assert_eq!((d.state, d.source), expected, "{input:?}");
                            }
                        }
                    }
                }
            }
        }
        assert_eq!(count, 2 * 4 * 7 * 3 * 4 * 3);
    }
}
