//! A real terminal for prompt tests: a private tmux server running one command in a 120x30 pane.
//! `Tmux::start` returns `None` when tmux is not installed (a failure under `CI=true`, see
//! [`super::tools`]).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// How long to wait for text to appear before failing (a hang guard, not a speed check).
const PATIENCE: Duration = Duration::from_secs(30);

/// A detached tmux session on its own socket, killed on drop.
pub struct Tmux {
    socket: PathBuf,
}

/// Quotes for `sh -c`.
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

impl Tmux {
    /// Runs `command` (a shell command line) in a new session; `dir` holds the socket.
    pub fn start(dir: &Path, command: &str) -> Option<Tmux> {
        if !super::tools::have("tmux", &["-V"], "tmux") {
            return None;
        }
        static SESSIONS: AtomicUsize = AtomicUsize::new(0);
        let n = SESSIONS.fetch_add(1, Ordering::SeqCst);
        let tmux = Tmux {
            socket: dir.join(format!("tmux-{n}.sock")),
        };
        let status = tmux
            .cmd()
            .args(["new-session", "-d", "-x", "120", "-y", "30", "-s", "t"])
            .arg(command)
            .status()
            .expect("tmux new-session");
        assert!(status.success(), "tmux new-session failed");
        Some(tmux)
    }

    fn cmd(&self) -> Command {
        let mut cmd = Command::new("tmux");
        cmd.arg("-S").arg(&self.socket).arg("-f").arg("/dev/null");
        cmd
    }

    /// The visible screen, as text, lines wrapped at the pane's width joined again.
    pub fn screen(&self) -> String {
        let out = self
            .cmd()
            .args(["capture-pane", "-p", "-J", "-t", "t"])
            .output()
            .expect("capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the screen contains `text`; returns the screen.
    pub fn wait_for(&self, text: &str) -> String {
        let give_up = Instant::now() + PATIENCE;
        loop {
            let screen = self.screen();
            if screen.contains(text) {
                return screen;
            }
            assert!(
                Instant::now() < give_up,
                "waited for {text:?}; the screen shows:\n{screen}"
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Types `text` and presses Enter.
    pub fn type_line(&self, text: &str) {
        let status = self
            .cmd()
            .args(["send-keys", "-t", "t", "-l", text])
            .status()
            .expect("send-keys");
        assert!(status.success());
        let status = self
            .cmd()
            .args(["send-keys", "-t", "t", "Enter"])
            .status()
            .expect("send-keys");
        assert!(status.success());
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd().arg("kill-server").status();
    }
}
