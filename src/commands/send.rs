//! The path every reporting command takes: throttle, consent, event, dry run, first-run notice,
//! then the hand-over to delivery (`delivery::Dispatch`), which queues, sends and reports.

use std::time::Instant;

use crate::consent::State;
use crate::delivery::Dispatch;
use crate::encode::Target;
use crate::event::branding;
use crate::event::facts::Facts;
use crate::event::{self, Checkpoint, Event, Product};
use crate::exit::{Error, ExitStatus};
use crate::session::Session;
use crate::store::throttle::{self, Throttle, Verdict};
use crate::store::{files, identity};
use crate::ui;
use beacon_wire::prop;
use uuid::Uuid;

/// Builds the checkpoint's event and delivers it, honoring consent, `throttle`, dry run, debug and
/// background. Delivery problems are warnings; only `--strict` turns them into exit 1.
pub fn send(session: &Session, checkpoint: &Checkpoint, throttle: Throttle) -> Result<ExitStatus, Error> {
    let deadline = session.arm_deadline();
    let name = checkpoint.name();
    if throttled(session, throttle, checkpoint) || !allowed_or_say_why(session, Some(checkpoint)) {
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
    let mut event = Event::new(
        checkpoint,
        session.installation_id(),
        &Facts::collect(&s.facts_env),
        &product,
    );
    event
        .properties
        .insert(prop::ATTEMPT.into(), attempt(session, checkpoint).into());

    if s.dry_run {
        print_requests(&target, &event);
        // The request is shown, but the same call without --dry-run would not send it.
        if let Some(Error::Usage { message, hint }) = s.missing_key() {
            let hint = hint.map(|h| format!("hint: {h}\n")).unwrap_or_default();
            ui::stderr(&format!(
                "install-beacon: --dry-run: without it, nothing would be sent: {message}\n{hint}"
            ));
        }
        return Ok(ExitStatus::Success);
    }
    show_notice_once(session);
    let child_env = super::shell_init::exports(s);
    let report = dispatch(session, &target, deadline, true, &child_env).send(vec![event]);
    mark_sent(session, throttle, name);
    Ok(if report.failed && s.strict {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    })
}

/// The install attempt an event belongs to: 1, 2, … per installation ID. `started` begins the next
/// one and records it (a dry run only shows it); other events belong to the latest.
fn attempt(session: &Session, checkpoint: &Checkpoint) -> u64 {
    let id = session.installation_id().hyphenated().to_string();
    let latest = session.saved.attempts.get(&id).copied().unwrap_or(0);
    if !matches!(checkpoint, Checkpoint::Started) {
        return latest.max(1);
    }
    let next = latest + 1;
    session.remember("the install attempt", false, |saved| {
        saved.attempts.insert(id, next);
        saved.pending_failure = None;
    });
    next
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
    // No state directory: nothing is queued, logged or saved.
    let report = dispatch(session, &target, session.arm_deadline(), false, &[]).send(vec![event]);
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

/// The delivery of this call's events to `target`, within `deadline`; `keep` uses the state
/// directory (outbox, audit log, outages, `--background`).
pub fn dispatch<'a>(
    session: &'a Session,
    target: &'a Target,
    deadline: Instant,
    keep: bool,
    child_env: &'a [(&'static str, String)],
) -> Dispatch<'a> {
    let s = session.settings;
    Dispatch {
        target,
        state_dir: s.state_dir.as_ref().filter(|_| keep),
        timeout: s.timeout,
        deadline,
        roots: &s.roots,
        debug: s.debug,
        background: s.background,
        ui: session.ui,
        product: &s.product,
        product_version: s.product_version.as_deref(),
        outage: session.saved.outage.as_ref(),
        child_env,
    }
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

/// True when telemetry allows sending `checkpoint` (with `None`, delivering the queue: anything
/// but off); otherwise says so on a dry run or in debug mode.
pub fn allowed_or_say_why(session: &Session, checkpoint: Option<&Checkpoint>) -> bool {
    let decision = &session.decision;
    let allowed = decision.allows(checkpoint.is_none_or(Checkpoint::is_error_report));
    let s = session.settings;
    if !allowed && (s.dry_run || s.debug) {
        let what = match checkpoint {
            Some(checkpoint) if decision.state == State::ErrorsOnly => format!("'{}' is not sent", checkpoint.name()),
            _ => "nothing is sent".to_owned(),
        };
        ui::stderr(&format!(
            "install-beacon: telemetry is {} ({}): {what}\n",
            decision.state.name(),
            decision.source
        ));
    }
    allowed
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
fn throttled(session: &Session, rules: Throttle, checkpoint: &Checkpoint) -> bool {
    let event = checkpoint.name();
    if !(rules.once || rules.min_interval.is_some()) || !session.decision.allows(checkpoint.is_error_report()) {
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
