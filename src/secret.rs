//! Files that hold secrets: the device key (`sync.key_file`, or `sync.key` inline in the
//! config file) and the report page's password hashes (`insights.viewers_file`).
//!
//! A leaf: it imports nothing of the crate, so the config, sync and the report page can
//! all use it without importing each other. Nothing here prints a secret: a key is shown
//! as `"<set>"` or `"<unset>"` ([`shown_key`]) and the errors name the file, its mode and
//! the fix, never the content.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// A file holding a secret that must not be used as it is.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretFileError {
    /// Its permissions could not be read (it is missing, or a folder on its path is not
    /// readable).
    #[error("cannot read {what} {}: {source}", path.display())]
    Unreadable {
        what: String,
        path: PathBuf,
        source: std::io::Error,
    },
    /// Users other than its owner may read it.
    #[error("{what} {p} has mode {mode:04o}: group or others may read {secret}. Make it readable by the sangdam user alone: `chmod 600 {p}` and `chown sangdam {p}` (or load it with systemd's LoadCredential=, board/INSTALL.md)", p = path.display())]
    Exposed {
        what: String,
        path: PathBuf,
        mode: u32,
        secret: String,
    },
}

/// How `sangdam config` and `Debug` show a key: whether it is there, never what it is.
pub fn shown_key(key: &str) -> &'static str {
    if key.is_empty() {
        "<unset>"
    } else {
        "<set>"
    }
}

/// `path` resolved for a service: relative paths go inside `credentials` (systemd's
/// `$CREDENTIALS_DIRECTORY`) when that is set and not empty.
pub fn credential_path(path: &Path, credentials: Option<&OsStr>) -> PathBuf {
    match credentials {
        Some(dir) if path.is_relative() && !dir.is_empty() => Path::new(dir).join(path),
        _ => path.to_owned(),
    }
}

/// Refuses `path` (the `what` setting, holding `secret`) when group or others have any
/// permission on it (mode & 0o077): a key readable by other users is a key anyone on
/// the box can sign batches with. The error names the file, its mode and the fix.
/// Files inside `$CREDENTIALS_DIRECTORY` are trusted as they are: systemd makes them
/// readable by this service alone, with an ACL that shows as mode 0440.
pub fn check_private(path: &Path, what: &str, secret: &str) -> Result<(), SecretFileError> {
    let credentials = std::env::var_os("CREDENTIALS_DIRECTORY");
    if credentials.is_some_and(|d| !d.is_empty() && path.starts_with(d)) {
        return Ok(());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path).map_err(|source| SecretFileError::Unreadable {
            what: what.to_owned(),
            path: path.to_owned(),
            source,
        })?;
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(SecretFileError::Exposed {
                what: what.to_owned(),
                path: path.to_owned(),
                mode,
                secret: secret.to_owned(),
            });
        }
    }
    #[cfg(not(unix))]
    let _ = (path, what, secret);
    Ok(())
}

/// Refuses a config file at `path` that holds `sync.key` inline when others (not the
/// owner, not the group) have any permission on it. The group may read it: the box's
/// config is installed 0640 root:sangdam so that the daemon can read it.
pub fn check_inline_key(path: &Path, key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Ok(());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(|e| format!("cannot look at the file's permissions: {e}"))?
            .permissions()
            .mode()
            & 0o7777;
        if mode & 0o007 != 0 {
            return Err(format!(
                "it holds sync.key inline but has mode {mode:04o}, so every user on the box may read the device key: `chmod 640 {p}` and `chown root:sangdam {p}`, or better move the key to sync.key_file (mode 600)",
                p = path.display()
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}
