//! Keys and tokens: compared in constant time, read from files so that they stay out of `ps`.

use std::path::Path;

use subtle::ConstantTimeEq;

/// Whether `given` equals `known`, taking the same time wherever they differ (only the length
/// is not hidden).
pub fn same(given: &str, known: &str) -> bool {
    given.as_bytes().ct_eq(known.as_bytes()).into()
}

/// The secrets in a file: one per line, surrounding whitespace trimmed; blank lines and lines
/// starting with `#` are skipped.
pub fn read_lines(path: &Path) -> std::io::Result<Vec<String>> {
    Ok(std::fs::read_to_string(path)?
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(String::from)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_only_when_every_byte_is() {
        assert!(same("s3cret", "s3cret"));
        assert!(!same("s3creT", "s3cret"));
        assert!(!same("s3cre", "s3cret"));
        assert!(!same("", "s3cret"));
    }
}
