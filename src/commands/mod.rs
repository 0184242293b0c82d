//! Runs one command: resolves consent and identity, builds the event, and hands it to delivery.

pub mod run;
pub mod shell_init;

use std::collections::HashSet;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::ArgMatches;
use email_address::{EmailAddress, Options};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::cli::{Cli, Command, IdArgs, IdFormat};
use crate::consent::{self, Decision, Source};
use crate::delivery::background::{self, Side};
use crate::delivery::notices;
use crate::delivery::outbox::Outbox;
use crate::delivery::transport::Transport;
use crate::delivery::{Delivery, Report};
use crate::event::branding;
use crate::event::facts::Facts;
use crate::event::{self, Event, Product};
use crate::settings::{Settings, Throttle, UsageError};
use crate::store::identity;
use crate::store::state::Saved;
use crate::ui::{self, Ui};
use crate::wire::{Target, mask};

/// Runs the parsed command line.
pub fn run(cli: Cli, matches: &ArgMatches) -> Result<ExitCode> {
    let mut settings = Settings::resolve(&cli.global, matches)?;
    let ui = Ui::new(settings.quiet);
    let mut saved = Saved::default();
    if let Some(state) = &settings.state_dir {
        let warning;
        (saved, warning) = state.load();
        if let Some(w) = warning {
            ui.warn(&w);
        }
        settings.consent.saved = saved.consent;
    }
    for warning in &settings.warnings {
        ui.warn(warning);
    }
    let decision = consent::decide(&settings.consent);
    let mut throttle = settings.throttle;
    if let Command::Heartbeat(args) = &cli.command {
        throttle.min_interval = args.every.or(throttle.min_interval);
    }
    let ctx = Ctx {
        settings: &settings,
        ui,
        decision,
        throttle,
        saved,
    };

    match cli.command {
        Command::Started => ctx.send(event::STARTED, Map::new()),
        Command::Success => ctx.send_success(),
        Command::Error(args) => {
            let mut fields = Map::new();
            if let Some(step) = args.step {
                fields.insert("step".into(), step.into());
            }
            if let Some(code) = args.exit_code {
                fields.insert("exit_code".into(), code.into());
            }
            if let Some(message) = args.message {
                fields.insert("message".into(), event::trim_message(&message).into());
            }
            ctx.send_error(fields)
        }
        Command::Support(args) if args.prompt => ctx.support_prompt(args.message.as_deref()),
        Command::Support(args) => {
            let email = validate_email(args.email.as_deref().unwrap_or_default())?;
            ctx.send_support(email, args.message.as_deref())
        }
        Command::Run(args) => run::run(&ctx, args),
        Command::ShellInit(args) => shell_init::init(&ctx, &args),
        Command::Heartbeat(_) => ctx.send(event::INSTANCE_ACTIVE, Map::new()),
        Command::Consent(args) if args.prompt => ctx.consent_prompt(),
        Command::Consent(_) => {
            ui::stdout(&format!(
                "{}: decided by {}\n",
                ctx.decision.state.name(),
                ctx.decision.source
            ));
            Ok(ExitCode::SUCCESS)
        }
        Command::Track(args) => {
            let name = args.event.trim();
            if name.is_empty() {
                return Err(UsageError(
                    "the event name is empty; use e.g. install-beacon track \"Plugin Installed\"".into(),
                )
                .into());
            }
            // The email goes only in the Support event, after the user typed it in.
            if args.props.iter().any(|(k, _)| k.eq_ignore_ascii_case("email")) {
                return Err(UsageError(
                    "--prop email=… is not sent with custom events; use `install-beacon support --email ADDRESS`"
                        .into(),
                )
                .into());
            }
            ctx.send(name, args.props.into_iter().collect())
        }
        Command::Flush => ctx.flush(),
        Command::Id(args) => ctx.id(&args),
        Command::Enable => ctx.save_choice(true),
        Command::Disable => ctx.save_choice(false),
        Command::Status => ctx.status(),
    }
}

/// Checks an email address typed by the user: a plain address with a domain and a TLD.
pub fn validate_email(input: &str) -> Result<String, UsageError> {
    let input = input.trim();
    let options = Options::default()
        .with_required_tld()
        .without_display_text()
        .without_domain_literal();
    EmailAddress::parse_with_options(input, options)
        .map(|e| e.as_str().to_owned())
        .map_err(|e| {
            let reason = e.to_string().trim_end_matches('.').to_lowercase();
            UsageError(format!(
                "invalid --email '{input}': {reason}; give an address like name@example.com"
            ))
        })
}

/// What every command works with: the settings, where messages go, the consent decision and
/// the send limits of this call.
pub(crate) struct Ctx<'a> {
    pub(crate) settings: &'a Settings,
    pub(crate) ui: Ui,
    pub(crate) decision: Decision,
    pub(crate) throttle: Throttle,
    /// `state.json` as read at start-up; changes go through `StateDir::update`, which rereads it
    /// under the lock.
    pub(crate) saved: Saved,
}

impl Ctx<'_> {
    fn product(&self) -> Product<'_> {
        Product {
            name: &self.settings.product,
            version: self.settings.product_version.as_deref(),
        }
    }

    /// Builds and delivers one event, honoring consent, throttling, dry run, debug and background.
    pub(crate) fn send(&self, name: &str, fields: Map<String, Value>) -> Result<ExitCode> {
        // --once / --min-interval / heartbeat --every (throttle.rs); marked once handed off below.
        if self.throttled(name) {
            return Ok(ExitCode::SUCCESS);
        }
        let s = self.settings;
        if !self.enabled_or_say_why() {
            return Ok(ExitCode::SUCCESS);
        }
        let target = s.target()?;
        let deadline = Instant::now() + s.timeout;
        let id = self.installation_id();
        let facts = Facts::collect(&s.facts_env);
        let event = Event::new(name, id, &facts, &self.product(), fields);

        if s.dry_run {
            for request in target.encode(std::slice::from_ref(&event), &event::now_rfc3339()) {
                ui::stdout(&target.render(&request));
            }
            return Ok(ExitCode::SUCCESS);
        }
        self.show_notice_once();
        let outbox = self.outbox();
        let mut events = vec![event];
        if s.background
            && let Some(outbox) = &outbox
        {
            match outbox
                .update(&HashSet::new(), &events)
                .map(|_| background::fork_detached())
            {
                Ok(Ok(Side::Parent)) => {
                    self.mark_sent(name);
                    return Ok(ExitCode::SUCCESS);
                }
                Ok(Ok(Side::Child)) => {
                    // Nobody reads this process's stderr: keep version notices for a call that shows them.
                    let quiet = Ctx {
                        ui: Ui::new(true),
                        decision: self.decision.clone(),
                        saved: self.saved.clone(),
                        ..*self
                    };
                    quiet.deliver(&target, Some(outbox), Instant::now() + s.timeout, Vec::new());
                    std::process::exit(0);
                }
                Ok(Err(e)) => {
                    // Already queued: it goes out with the queue below.
                    self.ui
                        .warn(&format!("cannot start background delivery ({e}); sending now"));
                    events.clear();
                }
                Err(e) => self.ui.warn(&format!(
                    "cannot queue in {} ({e}); sending now",
                    outbox.path().display()
                )),
            }
        }
        let report = self.deliver(&target, outbox.as_ref(), deadline, events);
        self.mark_sent(name);
        Ok(if report.failed && s.strict {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        })
    }

    /// Delivers `events` after whatever is queued, then shows any notice the backend sent back.
    fn deliver(&self, target: &Target, outbox: Option<&Outbox>, deadline: Instant, events: Vec<Event>) -> Report {
        let transport = Transport::new(deadline);
        let delivery = Delivery {
            target,
            transport: &transport,
            outbox,
            ui: self.ui,
            debug: self.settings.debug,
        };
        let report = delivery.run(events);
        let s = self.settings;
        notices::show(
            &report.responses,
            &s.product,
            s.product_version.as_deref(),
            s.state_dir.as_ref(),
            self.ui,
        );
        report
    }

    /// True when telemetry is on; otherwise says so on a dry run or in debug mode.
    fn enabled_or_say_why(&self) -> bool {
        let enabled = self.decision.enabled();
        if !enabled && (self.settings.dry_run || self.settings.debug) {
            ui::stderr(&format!(
                "install-beacon: telemetry is disabled ({}): nothing is sent\n",
                self.decision.source
            ));
        }
        enabled
    }

    fn outbox(&self) -> Option<Outbox> {
        self.settings.state_dir.clone().map(Outbox::new)
    }

    /// Delivers the queue on its own and reports what happened.
    fn flush(&self) -> Result<ExitCode> {
        if !self.enabled_or_say_why() {
            return Ok(ExitCode::SUCCESS);
        }
        let target = self.settings.target()?;
        let outbox = self.outbox().ok_or_else(|| {
            UsageError("no state directory to find the queue in: set --state-dir DIR (or HOME)".into())
        })?;
        let report = self.deliver(
            &target,
            Some(&outbox),
            Instant::now() + self.settings.timeout,
            Vec::new(),
        );
        if report.busy {
            self.ui.info("another install-beacon is delivering the queue right now");
        } else if !self.ui.quiet() {
            ui::stdout(&format!(
                "sent {} event(s), {} left in the queue\n",
                report.sent, report.queued
            ));
        }
        let left = report.queued > 0 && !report.busy;
        Ok(if left && self.settings.strict {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        })
    }

    /// The saved installation ID, created on first use. On a dry run nothing is written; when the
    /// file cannot be written the call goes on with a one-time ID.
    pub(crate) fn installation_id(&self) -> Uuid {
        let Some(path) = &self.settings.id_file else {
            self.ui
                .warn("no place to keep the installation ID (set --state-dir or HOME); using a one-time ID");
            return Uuid::new_v4();
        };
        // The common case, an existing valid ID, needs no lock: the file is only ever replaced whole.
        let existing = std::fs::read(path).ok().and_then(|c| identity::parse(&c));
        if let Some(id) = existing {
            return id;
        }
        if self.settings.dry_run {
            return Uuid::new_v4();
        }
        let _lock = self.settings.state_dir.as_ref().and_then(|s| s.lock().ok());
        match identity::load_or_create(path) {
            Ok((id, identity::Origin::Replaced)) => {
                self.ui.warn(&format!(
                    "{} did not hold an installation ID; wrote a new one",
                    path.display()
                ));
                id
            }
            Ok((id, _)) => id,
            Err(e) => {
                self.ui.warn(&format!(
                    "cannot keep the installation ID in {}: {e}; using a one-time ID",
                    path.display()
                ));
                Uuid::new_v4()
            }
        }
    }

    /// Prints what is collected and how to opt out, the first time a product's beacon sends.
    fn show_notice_once(&self) {
        let s = self.settings;
        let Some(state) = &s.state_dir else { return };
        if s.quiet || self.decision.source != Source::Default || self.saved.notice_shown_at.is_some() {
            return;
        }
        self.ui.info(&branding::notice(&s.product));
        let _ = state.update(|saved| saved.notice_shown_at = Some(event::now_rfc3339()));
    }

    fn id(&self, args: &IdArgs) -> Result<ExitCode> {
        let prefix = match args.format {
            IdFormat::Plain => String::new(),
            IdFormat::Env => format!("{}_INSTALLATION_ID=", consent::env_prefix(&self.settings.product)),
        };
        let path = self.settings.id_file.as_ref().ok_or_else(|| {
            UsageError("no place to keep the installation ID: set --state-dir DIR or --id-file PATH".into())
        })?;
        if args.path {
            ui::stdout(&format!("{}\n", path.display()));
            return Ok(ExitCode::SUCCESS);
        }
        let _lock = self.settings.state_dir.as_ref().and_then(|s| s.lock().ok());
        let id = if args.reset {
            identity::reset(path)
        } else {
            identity::load_or_create(path).map(|(id, _)| id)
        }
        .with_context(|| format!("cannot write the installation ID to {}", path.display()))?;
        ui::stdout(&format!("{prefix}{id}\n"));
        Ok(ExitCode::SUCCESS)
    }

    pub(crate) fn save_choice(&self, on: bool) -> Result<ExitCode> {
        let state = self
            .settings
            .state_dir
            .as_ref()
            .ok_or_else(|| UsageError("no place to save the choice: set --state-dir DIR (or HOME)".into()))?;
        state
            .update(|saved| saved.consent = Some(on))
            .with_context(|| format!("cannot save the choice in {}", state.path().display()))?;
        let word = if on { "enabled" } else { "disabled" };
        self.ui.info(&format!(
            "telemetry {word} for {} (saved in {})",
            self.settings.product,
            state.path().display()
        ));
        let overridden = consent::decide(&consent::Inputs {
            saved: Some(on),
            ..self.settings.consent.clone()
        });
        if overridden.source != Source::Saved {
            self.ui
                .warn(&format!("this choice is overridden by the {}", overridden.source));
        }
        Ok(ExitCode::SUCCESS)
    }

    fn status(&self) -> Result<ExitCode> {
        let s = self.settings;
        let state = self.decision.state.name();
        let none = || "(none)".to_owned();
        let id_file = match &s.id_file {
            Some(p) if p.exists() => p.display().to_string(),
            Some(p) => format!("{} (not created yet)", p.display()),
            None => none(),
        };
        let endpoint = s.endpoint.as_ref().map_or_else(none, |endpoint| {
            Target {
                protocol: s.protocol,
                endpoint: endpoint.clone(),
                key: None,
            }
            .url()
        });
        let queued = match self.outbox().map(|o| o.load().map(|c| c.events.len())) {
            Some(Ok(n)) => format!("{n} event(s)"),
            Some(Err(e)) => format!("unreadable: {e}"),
            None => none(),
        };
        let rows = [
            ("telemetry", state.to_owned()),
            ("decided by", self.decision.source.to_string()),
            (
                "product",
                format!("{} {}", s.product, s.product_version.as_deref().unwrap_or(""))
                    .trim_end()
                    .to_owned(),
            ),
            ("protocol", s.protocol.name().to_owned()),
            ("endpoint", endpoint),
            ("key", s.key.as_deref().map_or_else(none, mask)),
            (
                "state dir",
                s.state_dir
                    .as_ref()
                    .map_or_else(none, |d| d.path().display().to_string()),
            ),
            ("id file", id_file),
            ("queued", queued),
        ];
        let text: String = rows
            .iter()
            .map(|(k, v)| format!("{:<11} {v}\n", format!("{k}:")))
            .collect();
        ui::stdout(&text);
        Ok(ExitCode::SUCCESS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(validate_email(" ada@example.com ").unwrap(), "ada@example.com");
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@localhost",
            "Ada <ada@example.com>",
            "ada@[127.0.0.1]",
            "a b@example.com",
        ] {
            let err = validate_email(bad).unwrap_err().to_string();
            assert!(err.starts_with("invalid --email"), "{bad}: {err}");
        }
    }
}
