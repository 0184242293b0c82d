//! `support`: reports `Installation Support` with the address the user gave (`--email`, or asked
//! on the terminal with `--prompt`), the user's message and the step that failed last.

use email_address::{EmailAddress, Options};

use crate::cli::SupportArgs;
use crate::event::Checkpoint;
use crate::exit::{Error, ExitStatus};
use crate::session::Session;
use crate::tty::{Answer, Tty, yes_no};

use super::send::{send, send_request_only};

/// Typos forgiven before the prompt gives up.
const EMAIL_TRIES: usize = 3;

/// Sends the event, asking for the address first with `--prompt`.
///
/// Asking for help is its own, explicit act: a "no" to statistics does not withdraw the offer.
/// With statistics off, only what the user gave is sent (see [`send_request_only`]); only the
/// opt-outs that rule out every connection (a `donottrack` name, the machine policy) stop it.
pub fn support(session: &Session, args: SupportArgs) -> Result<ExitStatus, Error> {
    let SupportArgs {
        email,
        prompt: ask,
        message,
        step,
    } = args;
    let source = &session.decision.source;
    if session.decision.forbids_any_connection() {
        if !ask {
            validate_email(email.as_deref().unwrap_or_default())?;
        }
        session.ui.info(&format!(
            "support request not sent: the {source} rules out every connection"
        ));
        return Ok(ExitStatus::Success);
    }
    let step = step.or_else(|| session.saved.last_failed_step.clone());
    if ask {
        return prompt(session, Support { message, step });
    }
    let email = validate_email(email.as_deref().unwrap_or_default())?;
    report(session, email, Support { message, step })
}

/// What the support event carries besides the address.
struct Support {
    message: Option<String>,
    step: Option<String>,
}

fn report(session: &Session, email: String, support: Support) -> Result<ExitStatus, Error> {
    let Support { message, step } = support;
    let checkpoint = Checkpoint::Support { email, message, step };
    if session.decision.allows(checkpoint.is_error_report()) {
        send(session, &checkpoint, session.settings.throttle)
    } else {
        send_request_only(session, &checkpoint)
    }
}

/// Checks an email address typed by the user: a plain address with a domain and a TLD.
pub fn validate_email(input: &str) -> Result<String, Error> {
    let input = input.trim();
    let options = Options::default()
        .with_required_tld()
        .without_display_text()
        .without_domain_literal();
    EmailAddress::parse_with_options(input, options)
        .map(|e| e.as_str().to_owned())
        .map_err(|e| {
            let reason = e.to_string().trim_end_matches('.').to_lowercase();
            Error::usage(format!(
                "invalid --email '{input}': {reason}; give an address like name@example.com"
            ))
        })
}

/// `support --prompt`: asks whether the user wants help, then for an email address (again on a
/// typo, at most three times; an empty answer skips), and sends `Installation Support`.
fn prompt(session: &Session, support: Support) -> Result<ExitStatus, Error> {
    let Some(mut tty) = super::open_tty(session, "not asking for a support contact") else {
        return Ok(ExitStatus::Success);
    };
    let product = &session.settings.product;
    let failed = match &support.step {
        Some(step) => format!("The {product} installation failed at step '{step}'.\n"),
        None => format!("The {product} installation did not finish.\n"),
    };
    tty.say(&format!("\n{failed}"));
    let question = format!("Would you like the {product} team to help you by email? [y/N] ");
    match tty.ask(&question) {
        Answer::Line(a) if yes_no(&a) == Some(true) => {}
        _ => return Ok(ExitStatus::Success),
    }
    if !session.decision.allows(true) {
        tty.say("Only your address, the failed step and the installation ID are sent, nothing about this machine.\n");
    }
    ask_email(&mut tty, product).map_or(Ok(ExitStatus::Success), |email| report(session, email, support))
}

fn ask_email(tty: &mut Tty, product: &str) -> Option<String> {
    let mut question = "Your email address (leave empty to skip): ".to_owned();
    for _ in 0..EMAIL_TRIES {
        let Answer::Line(answer) = tty.ask(&question) else {
            return None;
        };
        if answer.is_empty() {
            return None;
        }
        match validate_email(&answer) {
            Ok(email) => {
                tty.say(&format!("Thank you. The {product} team will write to {email}.\n"));
                return Some(email);
            }
            Err(_) => {
                question = format!("'{answer}' does not look like an email address. Try again (empty to skip): ");
            }
        }
    }
    tty.say("No valid address given; skipping.\n");
    None
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
