//! `id`: prints the installation ID (creating it if missing), its file, or a new one with `--reset`.

use crate::cli::{IdArgs, IdFormat};
use crate::consent;
use crate::exit::{Error, ExitStatus};
use crate::session::Session;
use std::io;
use std::path::Path;

use crate::store::{files, identity};
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
    if s.dry_run {
        ui::stdout(&dry_run(path, args.reset, &prefix)?);
        return Ok(ExitStatus::Success);
    }
    let _lock = s.state_dir.as_ref().and_then(|d| d.lock().ok());
    let id = if args.reset {
        identity::reset(path)
    } else {
        identity::load_or_create(path).map(|(id, _)| id)
    }
    .map_err(|e| {
        let context = format!("cannot write the installation ID to {}", path.display());
        match path.is_symlink() {
            true => Error::io_with_hint(
                context,
                e,
                format!(
                    "remove the link {}, or point --id-file at a regular file",
                    path.display()
                ),
            ),
            false => Error::io(context, e),
        }
    })?;
    ui::stdout(&format!("{prefix}{id}\n"));
    Ok(ExitStatus::Success)
}

/// What `id` would print or write, without writing anything: the existing ID, or what would be
/// created.
fn dry_run(path: &Path, reset: bool, prefix: &str) -> Result<String, Error> {
    let existing = match files::read(path) {
        Ok(content) => identity::parse(&content).ok_or("which holds no valid ID, "),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Ok(format!(
                "--dry-run: would create {} with a new installation ID\n",
                path.display()
            ));
        }
        Err(e) => {
            return Err(Error::io(
                format!("cannot read the installation ID from {}", path.display()),
                e,
            ));
        }
    };
    Ok(match (existing, reset) {
        (Ok(id), false) => format!("{prefix}{id}\n"),
        (Ok(_), true) => format!(
            "--dry-run: would replace {} with a new installation ID\n",
            path.display()
        ),
        (Err(invalid), true) => format!(
            "--dry-run: would replace {}, {invalid}with a new installation ID\n",
            path.display()
        ),
        (Err(_), false) => format!(
            "--dry-run: {} holds no valid ID: it would be left untouched (id --reset replaces it)\n",
            path.display()
        ),
    })
}
