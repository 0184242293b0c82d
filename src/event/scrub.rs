//! Keeps credentials and email addresses out of free text before it is sent or logged: a URL's
//! password is masked (`https://user:***@host`), and an email address is found anywhere in the
//! text (`mailto:ada@example.com`, `<ada@example.com>`, `contact ada@example.com`), not only as
//! the whole value.

/// What an address becomes in a message.
const MASKED_EMAIL: &str = "***@***";

/// `text` with every URL password masked and every email address replaced by `***@***`.
pub fn scrub(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(|c: char| !c.is_whitespace()) {
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let word = mask_url_password(&rest[..end]);
        let mut from = 0;
        for (at, to) in emails(&word) {
            out.push_str(&word[from..at]);
            out.push_str(MASKED_EMAIL);
            from = to;
        }
        out.push_str(&word[from..]);
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Whether `text` holds an email address anywhere.
pub fn has_email(text: &str) -> bool {
    text.split_whitespace().any(|word| emails(word).next().is_some())
}

/// The byte range of a URL's authority (`user:password@host:port`) in `word`, if it has one.
fn authority(word: &str) -> Option<std::ops::Range<usize>> {
    let start = word.find("://")? + 3;
    let len = word[start..].find(['/', '?', '#']).unwrap_or(word.len() - start);
    Some(start..start + len)
}

/// `scheme://user:password@host…` → `scheme://user:***@host…`; anything else unchanged.
fn mask_url_password(word: &str) -> String {
    let Some(range) = authority(word) else {
        return word.to_owned();
    };
    let auth = &word[range.clone()];
    let Some(at) = auth.rfind('@') else {
        return word.to_owned();
    };
    let Some(colon) = auth[..at].find(':') else {
        return word.to_owned();
    };
    format!(
        "{}{}***{}",
        &word[..range.start],
        &auth[..=colon],
        &word[range.start + at..]
    )
}

/// Byte ranges of the email addresses in `word`: a local part of RFC 5322 atext (without `/`, `=`
/// and `?`, which end it in URLs) and dots, `@`, and a domain of at least two labels whose last is
/// two or more letters. The user name in a URL's authority is not one.
fn emails(word: &str) -> impl Iterator<Item = (usize, usize)> + '_ {
    let local = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+^_`{|}~.-".contains(c);
    let domain = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '.';
    let url_authority = authority(word).unwrap_or(0..0);
    word.match_indices('@').filter_map(move |(at, _)| {
        if url_authority.contains(&at) {
            return None;
        }
        let start = word[..at].rfind(|c| !local(c)).map_or(0, |i| i + 1);
        let end = word[at + 1..].find(|c| !domain(c)).map_or(word.len(), |i| at + 1 + i);
        let host = word[at + 1..end].trim_end_matches('.');
        let labels: Vec<&str> = host.split('.').collect();
        let tld = labels.last().copied().unwrap_or_default();
        let valid = start < at
            && labels.len() >= 2
            && labels.iter().all(|l| !l.is_empty())
            && tld.len() >= 2
            && tld.chars().all(|c| c.is_ascii_alphabetic());
        valid.then_some((start, at + 1 + host.len()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_found_anywhere() {
        for text in [
            "ada@example.com",
            "mailto:ada@example.com",
            "<ada@example.com>",
            "Ada Lovelace <ada.l+x@mail.example.co.uk>",
            "please contact ada@example.com.",
            "(ada@example.com)",
        ] {
            assert!(has_email(text), "{text}");
        }
        for text in [
            "a@b",
            "@example.com",
            "user@localhost",
            "v1.2@3.4",
            "https://ada@example.com/x",
            "no address",
        ] {
            assert!(!has_email(text), "{text}");
        }
    }

    #[test]
    fn messages_lose_addresses_and_url_passwords() {
        assert_eq!(
            scrub("  mail mailto:ada@example.com or <bob@example.org>, thanks."),
            "  mail mailto:***@*** or <***@***>, thanks."
        );
        assert_eq!(
            scrub("curl https://deploy:s3cr3t@downloads.example.com/a.tgz failed"),
            "curl https://deploy:***@downloads.example.com/a.tgz failed"
        );
        assert_eq!(
            scrub("git://user@host/repo and http://h/p?to=ada@example.com"),
            "git://user@host/repo and http://h/p?to=***@***"
        );
        assert_eq!(scrub("exit 3: disk full"), "exit 3: disk full");
        assert_eq!(scrub("é ünïcode ✓"), "é ünïcode ✓");
    }
}
