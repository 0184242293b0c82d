//! `shell-init`: prints a few POSIX shell functions for an installer to `eval`. They report the
//! step that failed from an EXIT trap, and carry this call's options to every later call through
//! exported `INSTALL_BEACON_*` variables. Nothing they do can fail the script: each call ends in
//! `|| true`, and a missing install-beacon runs the steps without reporting.

use std::fmt::Write as _;

use crate::cli::ShellInitArgs;
use crate::session::Session;
use crate::settings::Settings;
use crate::ui;

/// Quotes a value for any POSIX shell: single quotes, with `'` written as `'\''`.
pub fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

/// The `INSTALL_BEACON_*` variables that reproduce the resolved settings in a child call.
pub fn exports(s: &Settings) -> Vec<(&'static str, String)> {
    let mut vars = vec![("INSTALL_BEACON_PRODUCT", s.product.clone())];
    let mut add = |name, value: Option<String>| {
        if let Some(value) = value {
            vars.push((name, value));
        }
    };
    add("INSTALL_BEACON_PRODUCT_VERSION", s.product_version.clone());
    add("INSTALL_BEACON_PROTOCOL", Some(s.protocol.name().to_owned()));
    add(
        "INSTALL_BEACON_ENDPOINT",
        s.endpoint.as_ref().map(|e| e.expose().to_owned()),
    );
    add("INSTALL_BEACON_KEY", s.key.clone());
    add(
        "INSTALL_BEACON_STATE_DIR",
        s.state_dir.as_ref().map(|d| d.path().to_string_lossy().into_owned()),
    );
    add(
        "INSTALL_BEACON_ID_FILE",
        s.id_file.as_ref().map(|p| p.to_string_lossy().into_owned()),
    );
    add(
        "INSTALL_BEACON_TELEMETRY",
        s.consent.telemetry.map(|(level, _)| level.name().to_owned()),
    );
    add("INSTALL_BEACON_INSTALL_METHOD", s.facts_env.install_method.clone());
    add(
        "INSTALL_BEACON_DEFAULT_CONSENT",
        Some(s.consent.default.name().to_owned()),
    );
    add("INSTALL_BEACON_TIMEOUT", Some(format!("{}ms", s.timeout.as_millis())));
    add("INSTALL_BEACON_QUIET", s.quiet.then(|| "1".to_owned()));
    add("INSTALL_BEACON_DRY_RUN", s.dry_run.then(|| "1".to_owned()));
    add("INSTALL_BEACON_OPT_OUT_HINT", s.opt_out_hint.clone());
    add("INSTALL_BEACON_PRIVACY_URL", s.privacy_url.clone());
    vars
}

/// The shell code.
pub fn script(s: &Settings, support_prompt: bool) -> String {
    let mut out = format!(
        "# install-beacon hooks for {product}: beacon_started, beacon_step NAME, \
         beacon_run NAME [--label TEXT] [--log FILE] -- CMD..., beacon_error TEXT, beacon_success, \
         beacon_on_exit CODE.\n\
         # An EXIT trap reports one 'Installation Error' with the current step, the exit code and \
         the beacon_error text if the script fails.\n",
        product = s.product
    );
    for (name, value) in exports(s) {
        let _ = writeln!(out, "export {name}={}", quote(&value));
    }
    let _ = writeln!(out, "__beacon_bin={}", quote(&s.exe_path));
    out.push_str(FUNCTIONS);
    if support_prompt {
        out = out.replace(
            SUPPORT_HOOK,
            "    __beacon support --prompt --step \"${__beacon_step:-unknown}\"\n",
        );
    } else {
        out = out.replace(SUPPORT_HOOK, "");
    }
    out
}

/// Marks where the support prompt goes in the EXIT hook.
const SUPPORT_HOOK: &str = "    #support\n";

const FUNCTIONS: &str = r#"__beacon() { command -v "$__beacon_bin" >/dev/null 2>&1 && "$__beacon_bin" "$@" || true; }
beacon_started() { __beacon started; }
beacon_step() { __beacon_step=$1; __beacon_message=; }
beacon_error() { __beacon_message=$1; }
beacon_run() {
  beacon_step "$1"; shift
  __beacon_cmd= __beacon_log= __beacon_prev=
  for __beacon_arg in "$@"; do
    [ "$__beacon_prev" != -- ] || { __beacon_cmd=$__beacon_arg; break; }
    case $__beacon_prev/$__beacon_arg in --log/*) __beacon_log=$__beacon_arg ;; */--log=*) __beacon_log=${__beacon_arg#--log=} ;; esac
    __beacon_prev=$__beacon_arg
  done
  # A shell function runs here, in this shell, so the variables it sets survive; anything else
  # runs under `run` (spinner, log, duration).
  case $(type "$__beacon_cmd" 2>/dev/null | sed 1q) in
    *function*) ;;
    *) if command -v "$__beacon_bin" >/dev/null 2>&1; then
      "$__beacon_bin" run --report-on-exit --step "$__beacon_step" "$@"
      return
    fi ;;
  esac
  while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do shift; done
  [ "$#" -eq 0 ] || shift
  if [ -n "$__beacon_log" ]; then "$@" >>"$__beacon_log" 2>&1; else "$@"; fi
}
beacon_success() { __beacon_done=1; __beacon success; }
beacon_on_exit() {
  if [ "$1" -ne 0 ] && [ -z "${__beacon_done-}" ]; then
    __beacon_done=1
    if [ -n "${__beacon_message-}" ]; then
      __beacon error --step "${__beacon_step:-unknown}" --exit-code "$1" --message "$__beacon_message"
    else
      __beacon error --step "${__beacon_step:-unknown}" --exit-code "$1"
    fi
    #support
  fi
  if [ -n "${__beacon_fetched_dir-}" ]; then
    rm -f -- "$__beacon_fetched_dir/install-beacon" 2>/dev/null || true
    rmdir -- "$__beacon_fetched_dir" 2>/dev/null || true
    __beacon_fetched_dir=
  fi
}
# zsh skips the EXIT trap when `set -e` ends the script inside a function, unless POSIX_TRAPS.
[ -z "${ZSH_VERSION-}" ] || setopt POSIX_TRAPS
trap 'beacon_on_exit "$?"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
"#;

/// `shell-init`: prints the hooks.
pub fn shell_init(session: &Session, args: &ShellInitArgs) {
    ui::stdout(&script(session.settings, args.support_prompt));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote("plain"), "'plain'");
        assert_eq!(quote("it's $HOME `x`"), r"'it'\''s $HOME `x`'");
        assert_eq!(quote(""), "''");
    }
}
