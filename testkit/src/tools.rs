//! Outside tools some tests need (tmux, zsh, chromium, openssl, unshare, curl). A test never passes
//! silently without its tool: under `CI=true` a missing tool fails the test; elsewhere the test
//! skips with one line on the real stderr, which `cargo test` shows even without `--nocapture`.
//!
//! Both integration suites use it through `testkit::tools`.

use std::io::Write;
use std::process::{Command, Stdio};

/// Whether `tool` runs (`tool PROBE...` exits 0). When it does not, reports it as [`cannot_run`]
/// does, naming the Debian `package` that provides it, and the caller returns early.
pub fn have(tool: &str, probe: &[&str], package: &str) -> bool {
    let runs = Command::new(tool)
        .args(probe)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !runs {
        cannot_run(&format!("{tool} is not installed (apt-get install {package})"));
    }
    runs
}

/// Reports that the current test cannot run here, saying `why`: panics under `CI=true`, else
/// writes one `SKIPPED` line to stderr.
pub fn cannot_run(why: &str) {
    let on_ci = std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1");
    let line = skip_line(on_ci, why);
    // Not eprintln!: libtest captures the print macros, not writes to the stderr handle.
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// The line a skipped test prints; panics instead on CI.
pub fn skip_line(on_ci: bool, why: &str) -> String {
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("a test");
    assert!(!on_ci, "{test}: {why}; CI=true requires it (.ci/run installs it)");
    format!("SKIPPED {test}: {why}")
}
