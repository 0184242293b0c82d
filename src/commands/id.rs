//! `id`: prints the installation ID (creating it if missing), its file, or a new one with `--reset`.

use crate::cli::{IdArgs, IdFormat};
use crate::consent;
use crate::exit::{Error, ExitStatus};
use crate::session::Session;
use crate::store::identity;
use crate::ui;

use super::no_state_dir;

/// Prints what was asked for.
pub fn id(session: &Session, args: &IdArgs) -> Result<ExitStatus, Error> {
    let s = session.settings;
    let prefix = match args.format {
        IdFormat::Plain => String::new(),
        IdFormat::Env => format!("{}_INSTALLATION_ID=", consent::env_prefix(&s.product)),
    };
    let path = s.id_file.as_ref().ok_or_else(|| {
        no_state_dir(
            s,
            "cannot keep the installation ID",
            "no place to keep the installation ID: set --state-dir DIR or --id-file PATH",
        )
    })?;
    if args.path {
        ui::stdout(&format!("{}\n", path.display()));
        return Ok(ExitStatus::Success);
    }
    let _lock = s.state_dir.as_ref().and_then(|d| d.lock().ok());
    let id = if args.reset {
        identity::reset(path)
    } else {
        identity::load_or_create(path).map(|(id, _)| id)
    }
    .map_err(|e| Error::io(format!("cannot write the installation ID to {}", path.display()), e))?;
    ui::stdout(&format!("{prefix}{id}\n"));
    Ok(ExitStatus::Success)
}
