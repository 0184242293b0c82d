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

/// Parses a `--telemetry` value, case-insensitively.
pub fn parse_telemetry(value: &str) -> Result<bool, String> {
    let v = value.trim().to_ascii_lowercase();
    if OFF.contains(&v.as_str()) {
        Ok(false)
    } else if ON.contains(&v.as_str()) {
        Ok(true)
    } else {
        Err(format!("use one of: {} (on) or {} (off)", ON.join(" "), OFF.join(" ")))
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
    pub telemetry: Option<(bool, Origin)>,
    /// Opt-out variables that are set, as (name, value), strongest first.
    pub env: Vec<(String, String)>,
    /// The choice saved by `enable` / `disable`.
    pub saved: Option<bool>,
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
}

impl State {
    /// The word `status` and the docs use.
    pub fn name(self) -> &'static str {
        match self {
            State::Enabled => "enabled",
            State::Undecided => "undecided",
            State::Disabled => "disabled",
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

impl Source {
    /// Whether this opt-out rules out every connection, even one the user asks for (`support`):
    /// the packager's `donottrack` name and the administrator's policy do; the statistics
    /// choices (flag, environment, saved answer, default) are about statistics only.
    pub fn forbids_any_connection(&self) -> bool {
        matches!(self, Source::ExecutableName(_) | Source::Policy(_))
    }
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
    /// True when events may be sent.
    pub fn enabled(&self) -> bool {
        self.state == State::Enabled
    }
}

/// Decides, opt-outs first so that the user's opt-out always wins: executable name, the machine's
/// policy file, `--telemetry` off, opt-out variables, a saved `disable`; then the opt-ins:
/// `--telemetry` on, a saved `enable`; and last `--default-consent`.
pub fn decide(inputs: &Inputs) -> Decision {
    let decision = |on: bool, source| Decision {
        state: if on { State::Enabled } else { State::Disabled },
        source,
    };
    let flag = inputs.telemetry.map(|(on, origin)| {
        let source = match origin {
            Origin::Flag => Source::Flag,
            Origin::Env => Source::Env("INSTALL_BEACON_TELEMETRY".into()),
        };
        (on, source)
    });
    if inputs.exe_name.to_ascii_lowercase().contains("donottrack") {
        return decision(false, Source::ExecutableName(inputs.exe_name.clone()));
    }
    if let Some(policy) = inputs.policy.as_ref().filter(|p| p.disables) {
        return decision(false, Source::Policy(policy.path.clone()));
    }
    if let Some((false, source)) = &flag {
        return decision(false, source.clone());
    }
    if let Some((name, _)) = inputs.env.iter().find(|(_, value)| env_opts_out(value)) {
        return decision(false, Source::Env(name.clone()));
    }
    if inputs.saved == Some(false) {
        return decision(false, Source::Saved);
    }
    if let Some((true, source)) = flag {
        return decision(true, source);
    }
    if inputs.saved == Some(true) {
        return decision(true, Source::Saved);
    }
    Decision {
        state: inputs.default,
        source: Source::Default,
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
            assert_eq!(parse_telemetry(v), Ok(false), "{v}");
        }
        for v in [
            "1", "t", "TRUE", "y", "yes", "enable", "enabled", "optin", "opt-in", "allow", "on",
        ] {
            assert_eq!(parse_telemetry(v), Ok(true), "{v}");
        }
        let err = parse_telemetry("maybe").unwrap_err();
        assert!(err.contains("opt-out") && err.contains("allow"), "{err}");
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
            telemetry: Some((true, Origin::Flag)),
            saved: Some(true),
            ..inputs()
        });
        assert_eq!(d.state, State::Disabled);
        assert_eq!(d.source, Source::ExecutableName("acme-DoNotTrack".into()));
    }

    #[test]
    fn every_opt_out_beats_the_flag_opt_in() {
        let on = Some((true, Origin::Flag));
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
            telemetry: Some((true, Origin::Env)),
            saved: Some(false),
            ..inputs()
        });
        assert_eq!(d.source, Source::Saved);
        assert_eq!(d.state, State::Disabled);
        let d = decide(&Inputs {
            telemetry: on,
            saved: Some(false),
            ..inputs()
        });
        assert_eq!(d.state, State::Disabled);
        // An opt-in still beats a saved `enable`, a default and nothing at all.
        let d = decide(&Inputs {
            telemetry: on,
            saved: Some(true),
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
            telemetry: Some((false, Origin::Env)),
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
                saved: Some(true),
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
            saved: Some(false),
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
        assert_eq!(policy::parse("telemetry=off\n"), (true, vec![]));
        assert_eq!(policy::parse("# admin\n\n Telemetry = ON \n"), (false, vec![]));
        assert_eq!(policy::parse(""), (true, vec![]), "an empty file still disables");
        assert_eq!(policy::parse("telemetry=on\ntelemetry=off"), (true, vec![]));
        assert_eq!(
            policy::parse("telemetry=maybe"),
            (true, vec!["telemetry=maybe".to_owned()])
        );
        assert_eq!(
            policy::parse("\u{0}\u{1}garbage"),
            (true, vec!["\u{0}\u{1}garbage".to_owned()])
        );
        assert_eq!(policy::parse("telemetry=on\nnoise"), (false, vec!["noise".to_owned()]));
    }

    #[test]
    fn policy_beats_flag_but_not_executable_name() {
        let policy = Some(Policy {
            path: "/etc/install-beacon/policy".into(),
            disables: true,
        });
        let d = decide(&Inputs {
            telemetry: Some((true, Origin::Flag)),
            saved: Some(true),
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
                saved: Some(true),
                ..inputs()
            });
            assert_eq!(d.state, State::Enabled, "a saved yes beats default {default:?}");
        }
    }

    /// Every combination of every input, against the precedence written out as a table: the first
    /// row whose input is present decides, and no opt-in row comes before an opt-out row.
    #[test]
    fn every_combination() {
        let exes = ["install-beacon", "x-donottrack"];
        let policies = [None, Some(true), Some(false)];
        let flags = [
            None,
            Some((true, Origin::Flag)),
            Some((false, Origin::Flag)),
            Some((true, Origin::Env)),
            Some((false, Origin::Env)),
        ];
        let envs: [&[(&str, &str)]; 3] = [&[], &[("DO_NOT_TRACK", "1")], &[("DO_NOT_TRACK", "0")]];
        let saveds = [None, Some(true), Some(false)];
        let defaults = [State::Enabled, State::Undecided, State::Disabled];
        let mut count = 0;
        for exe in exes {
            for policy in policies {
                for flag in flags {
                    for env in envs {
                        for saved in saveds {
                            for default in defaults {
                                count += 1;
                                let input = Inputs {
                                    exe_name: exe.into(),
                                    telemetry: flag,
                                    env: env.iter().map(|(n, v)| ((*n).into(), (*v).into())).collect(),
                                    saved,
                                    policy: policy.map(|disables| Policy {
                                        path: "P".into(),
                                        disables,
                                    }),
                                    default,
                                };
                                let off = |source| (State::Disabled, source);
                                let flag_row = flag.map(|(on, origin)| {
                                    let state = if on { State::Enabled } else { State::Disabled };
                                    let source = match origin {
                                        Origin::Flag => Source::Flag,
                                        Origin::Env => Source::Env("INSTALL_BEACON_TELEMETRY".into()),
                                    };
                                    (state, source)
                                });
                                // Every opt-out, then every opt-in, then the default.
                                let is = |state| move |row: &(State, Source)| row.0 == state;
                                let saved_row =
                                    saved.map(|on| (if on { State::Enabled } else { State::Disabled }, Source::Saved));
                                let expected = [
                                    (exe != "install-beacon").then(|| off(Source::ExecutableName(exe.into()))),
                                    (policy == Some(true)).then(|| off(Source::Policy("P".into()))),
                                    flag_row.clone().filter(is(State::Disabled)),
                                    (env.first().is_some_and(|(_, v)| *v == "1"))
                                        .then(|| off(Source::Env("DO_NOT_TRACK".into()))),
                                    saved_row.clone().filter(is(State::Disabled)),
                                    flag_row.filter(is(State::Enabled)),
                                    saved_row.filter(is(State::Enabled)),
                                    Some((default, Source::Default)),
                                ]
                                .into_iter()
                                .flatten()
                                .next()
                                .unwrap();
                                let d = decide(&input);
                                assert_eq!((d.state, d.source), expected, "{input:?}");
                            }
                        }
                    }
                }
            }
        }
        assert_eq!(count, 2 * 3 * 5 * 3 * 3 * 3);
    }
}
