//! The path every reporting command takes: throttle, consent, event, dry run, first-run notice,
//! outbox, background hand-off, delivery, and the messages about what happened.

use std::collections::HashSet;
use std::time::Instant;

use crate::delivery::audit::{AuditLog, Destination, Entry, Outcome};
use crate::delivery::background;
use crate::delivery::outbox::Outbox;
use crate::delivery::transport::Http;
use crate::delivery::{Delivery, Report, notices};
use crate::event::branding;
use crate::event::facts::Facts;
use crate::event::{self, Checkpoint, Event, Product};
use crate::exit::{Error, ExitStatus};
use crate::session::Session;
use crate::store::outage::Outage;
use crate::store::throttle::{self, Throttle, Verdict};
use crate::store::{files, identity};
use crate::ui;
use crate::wire::Target;
use uuid::Uuid;

/// Builds the checkpoint's event and delivers it, honoring consent, `throttle`, dry run, debug and
/// background. Delivery problems are warnings; only `--strict` turns them into exit 1.
pub fn send(session: &Session, checkpoint: &Checkpoint, throttle: Throttle) -> Result<ExitStatus, Error> {
    let deadline = session.arm_deadline();
    let name = checkpoint.name();
    if throttled(session, throttle, name) || !enabled_or_say_why(session) {
        return Ok(ExitStatus::Success);
    }
    let s = session.settings;
    let Some(target) = target_or_say_why(session)? else {
        return Ok(ExitStatus::Success);
    };
    let product = Product {
        name: &s.product,
        version: s.product_version.as_deref(),
    };
    let event = Event::new(
        checkpoint,
        session.installation_id(),
        &Facts::collect(&s.facts_env),
        &product,
    );

    if s.dry_run {
        print_requests(&target, &event);
        return Ok(ExitStatus::Success);
    }
    show_notice_once(session);
    let outbox = outbox(session, &target);
    let mut events = vec![event];
    // Within an outage window the endpoint is not tried: the event is queued as with --background.
    let outage = session
        .saved
        .outage
        .as_ref()
        .filter(|o| o.holds(&target.shown_url(), throttle::now_secs()));
    if let Some(outbox) = outbox.as_ref().filter(|_| s.background || outage.is_some()) {
        match hand_off(session, &target, outbox, &events) {
            HandOff::Parent => {
                mark_sent(session, throttle, name);
                let Some(outage) = outage.filter(|_| !s.background) else {
                    return Ok(ExitStatus::Success);
                };
                session.ui.warn(&format!(
                    "queued '{name}': {} {}; a background delivery retries",
                    outage.url,
                    outage.summary(throttle::now_secs())
                ));
                return Ok(if s.strict {
                    ExitStatus::Failure
                } else {
                    ExitStatus::Success
                });
            }
            HandOff::Queued => events.clear(),
            HandOff::NotQueued => {}
        }
    }
    let report = deliver(session, &target, outbox.as_ref(), deadline, events);
    mark_sent(session, throttle, name);
    Ok(if report.failed && s.strict {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    })
}

/// Sends a request the user made while statistics are off (`support`): the checkpoint's own
/// fields, the product, and the installation ID already on the machine (else a one-time ID); no
/// machine facts. Nothing is written: no ID file, queue or audit log, as when telemetry is off.
pub fn send_request_only(session: &Session, checkpoint: &Checkpoint) -> Result<ExitStatus, Error> {
    let Some(target) = target_or_say_why(session)? else {
        return Ok(ExitStatus::Success);
    };
    let s = session.settings;
    let saved_id = s.id_file.as_ref().and_then(|path| files::read(path).ok());
    let id = saved_id.and_then(|c| identity::parse(&c)).unwrap_or_else(Uuid::new_v4);
    let product = Product {
        name: &s.product,
        version: s.product_version.as_deref(),
    };
    let event = Event::request(checkpoint, id, &product);
    if s.dry_run {
        print_requests(&target, &event);
        return Ok(ExitStatus::Success);
    }
    let report = deliver(session, &target, None, session.arm_deadline(), vec![event]);
    Ok(if report.failed && s.strict {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    })
}

/// `--dry-run`: prints the requests that would carry `event`.
fn print_requests(target: &Target, event: &Event) {
    for request in target.encode(std::slice::from_ref(event), &event::now_rfc3339()) {
        ui::stdout(&target.render(&request));
    }
}

/// How the `--background` hand-off went, for the caller that goes on.
enum HandOff {
    /// Queued and forked: return to the installer.
    Parent,
    /// Queued, but no process to deliver it: the event goes out with the queue now.
    Queued,
    /// Not queued: send it now.
    NotQueued,
}

/// `--background`: queues the event and forks a detached process that delivers the queue; the
/// child never returns.
fn hand_off(session: &Session, target: &Target, outbox: &Outbox, events: &[Event]) -> HandOff {
    if let Err(e) = outbox.update(&HashSet::new(), events) {
        session.ui.warn(&format!(
            "cannot queue in {} ({e}); sending now",
            outbox.path().display()
        ));
        return HandOff::NotQueued;
    }
    if let Some(log) = audit_log(session) {
        let (now, to) = (event::now_rfc3339(), Destination::of(target));
        let entries: Vec<Entry> = events
            .iter()
            .map(|e| Entry::new(e, Outcome::Queued, Some("background delivery"), &to, &now))
            .collect();
        if let Err(e) = log.append(&entries) {
            let path = log.path().display();
            session.ui.warn(&format!("cannot record what was sent in {path}: {e}"));
        }
    }
    let delivered = background::run_detached(session.settings, || {
        // Nobody reads this process's stderr: keep version notices for a call that shows them.
        let quiet = session.silenced();
        let deadline = quiet.arm_deadline();
        // Events queued by other calls while this one was sending go out too, while time is left.
        loop {
            let report = deliver(&quiet, target, Some(outbox), deadline, Vec::new());
            if report.sent == 0 || report.queued == 0 || Instant::now() >= deadline {
                break;
            }
        }
    });
    match delivered {
        Ok(()) => HandOff::Parent,
        Err(e) => {
            session
                .ui
                .warn(&format!("cannot start background delivery ({e}); sending now"));
            HandOff::Queued
        }
    }
}

/// Delivers `events` after whatever is queued, then shows the problems and any notice the backend
/// sent back.
pub fn deliver(
    session: &Session,
    target: &Target,
    outbox: Option<&Outbox>,
    deadline: Instant,
    events: Vec<Event>,
) -> Report {
    let s = session.settings;
    let transport = Http::new(deadline, s.roots.clone());
    let show = |text: &str| ui::stderr(text);
    // The log lives beside the outbox: a call that keeps no queue keeps no record either.
    let audit = outbox.and(audit_log(session));
    let delivery = Delivery {
        target,
        transport: &transport,
        outbox,
        debug: s.debug.then_some(&show as &dyn Fn(&str)),
        audit: audit.as_ref(),
    };
    let report = delivery.run(events);
    for problem in &report.problems {
        session.ui.warn(&problem.to_string());
    }
    if outbox.is_some() {
        record_outage(session, target, &report);
    }
    notices::show(
        &report.responses,
        &s.product,
        s.product_version.as_deref(),
        outbox.and(s.state_dir.as_ref()),
        session.ui,
    );
    report
}

/// The target, or `None` after a warning when the endpoint or key is missing. That is a gap in the
/// installer's configuration (a key from a secret that is not set, say), not in the user's input,
/// and an installer under `set -e` must not die of it: nothing is sent and the call exits 0. With
/// `--strict` it is the usage error it would otherwise be (exit 2).
pub fn target_or_say_why(session: &Session) -> Result<Option<Target>, Error> {
    match session.settings.target() {
        Ok(target) => Ok(Some(target)),
        Err(error) if session.settings.strict => Err(error),
        Err(Error::Usage { message, hint }) => {
            session.ui.warn(&format!("{message}; nothing was sent"));
            if let Some(hint) = hint {
                session.ui.say(&format!("hint: {hint}"));
            }
            Ok(None)
        }
        Err(error) => Err(error),
    }
}

/// The audit log, when there is a state directory.
pub fn audit_log(session: &Session) -> Option<AuditLog> {
    session.settings.state_dir.as_ref().map(|d| AuditLog::new(d.path()))
}

/// Saves an outage when the endpoint could not be reached, and ends the one this call started
/// with once something got through (`store::outage`).
fn record_outage(session: &Session, target: &Target, report: &Report) {
    let Some(state) = &session.settings.state_dir else {
        return;
    };
    if let Some(reason) = &report.unreachable {
        // Masked as `status` shows it: state.json keeps no credentials from the URL.
        let (url, now) = (target.shown_url(), throttle::now_secs());
        let _ = state.update(|saved| {
            saved.outage = Some(Outage::after_failure(saved.outage.as_ref(), &url, reason, now));
        });
    } else if report.sent > 0 && session.saved.outage.is_some() {
        let _ = state.update(|saved| saved.outage = None);
    }
}

/// The outbox as `target` sees it, when there is a state directory.
pub fn outbox(session: &Session, target: &Target) -> Option<Outbox> {
    let state = session.settings.state_dir.clone()?;
    Some(Outbox::new(state, target.destination()))
}

/// True when telemetry is on; otherwise says so on a dry run or in debug mode.
pub fn enabled_or_say_why(session: &Session) -> bool {
    let enabled = session.decision.enabled();
    let s = session.settings;
    if !enabled && (s.dry_run || s.debug) {
        ui::stderr(&format!(
            "install-beacon: telemetry is disabled ({}): nothing is sent\n",
            session.decision.source
        ));
    }
    enabled
}

/// Prints what is collected and how to opt out, the first time a product's beacon sends.
fn show_notice_once(session: &Session) {
    let s = session.settings;
    let Some(state) = &s.state_dir else { return };
    if s.quiet || session.decision.source != crate::consent::Source::Default || session.saved.notice_shown_at.is_some()
    {
        return;
    }
    let notice = branding::notice(&s.product, s.opt_out_hint.as_deref(), s.privacy_url.as_deref());
    session.ui.info(&notice);
    let _ = state.update(|saved| saved.notice_shown_at = Some(event::now_rfc3339()));
}

/// True when `--once` / `--min-interval` hold this event back. Only consulted when the event
/// would really be sent (consent given); without a state directory nothing can be remembered, so
/// the event goes out with a warning.
fn throttled(session: &Session, rules: Throttle, event: &str) -> bool {
    if !(rules.once || rules.min_interval.is_some()) || !session.decision.enabled() {
        return false;
    }
    let s = session.settings;
    if s.state_dir.is_none() {
        // A refused state directory was already warned about.
        if s.state_dir_refused.is_none() {
            session
                .ui
                .warn("no state directory to remember sent events (set --state-dir or HOME); sending anyway");
        }
        return false;
    }
    let id = session.installation_id().hyphenated().to_string();
    let verdict = throttle::check(&session.saved, rules, event, &id, throttle::now_secs());
    if verdict != Verdict::Due && (s.debug || s.dry_run) {
        // The interval is named, not the flag: it comes from --min-interval or heartbeat --every.
        let why = match (verdict, rules.min_interval) {
            (Verdict::AlreadySent, _) => "already sent for this installation (--once)".to_owned(),
            (_, Some(interval)) => format!("sent less than {} ago", humantime::format_duration(interval)),
            (_, None) => "sent too recently".to_owned(),
        };
        ui::stderr(&format!("install-beacon: '{event}' {why}: nothing is sent\n"));
    }
    verdict != Verdict::Due
}

/// Records that `event` was handed to delivery, for later `throttled` calls.
fn mark_sent(session: &Session, rules: Throttle, event: &str) {
    let s = session.settings;
    if !(rules.once || rules.min_interval.is_some()) || s.dry_run {
        return;
    }
    let Some(state) = &s.state_dir else { return };
    let id = session.installation_id().hyphenated().to_string();
    if let Err(e) = state.update(|saved| throttle::mark(saved, rules, event, &id, throttle::now_secs())) {
        session.ui.warn(&format!(
            "cannot record that '{event}' was sent in {}: {e}",
            state.path().display()
        ));
    }
}
