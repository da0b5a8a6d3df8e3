//! Who may read the dashboard: named accounts with argon2id password hashes.
//!
//! ```toml
//! [[viewer]]
//! name = "kim.analyst"
//! password = "$argon2id$v=19$m=19456,t=2,p=1$…"
//! ```
//!
//! `sangdam-hub add-viewer NAME` writes entries (the file is created readable by its
//! owner only); the hub reads the file at start and refuses one that group or others may
//! read, as it does the device registry. Passwords are never stored, only their hashes.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use serde::Deserialize;

/// Shortest password `add-viewer` accepts.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// Viewer name → PHC hash string.
#[derive(Clone, Default)]
pub struct Viewers {
    accounts: BTreeMap<String, String>,
}

impl std::fmt::Debug for Viewers {
    // Names only: the hashes stay out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.accounts.keys()).finish()
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ViewerError {
    #[error("cannot read the viewer accounts {path}: {source} (create one with `sangdam-hub add-viewer NAME --viewers {path}`)")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the viewer accounts {path} are not valid: {message}\nexpected entries like:\n[[viewer]]\nname = \"kim.analyst\"\npassword = \"$argon2id$…\" (written by `sangdam-hub add-viewer`)")]
    Syntax { path: PathBuf, message: String },
    #[error("the viewer accounts {path} have mode {mode:04o}: group or others may read the password hashes. Make the file readable by the hub's user alone: `chmod 600 {path}`")]
    Exposed { path: PathBuf, mode: u32 },
    #[error("cannot write the viewer accounts {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("viewer {name:?}: {problem}")]
    Account { name: String, problem: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    viewer: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: String,
    password: String,
}

fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@'));
    if ok {
        Ok(())
    } else {
        Err("a name is 1 to 64 ASCII letters, digits, '-', '_', '.' or '@'".into())
    }
}

/// The argon2id hash (PHC string, random salt) of `password`.
pub fn hash_password(password: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    let bytes = crate::registry::random_key().map_err(|e| format!("no randomness: {e}"))?;
    salt.copy_from_slice(&bytes[..16]);
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

impl Viewers {
    pub fn new() -> Viewers {
        Viewers::default()
    }

    /// Adds an account with this password (hashed here); replaces one of the same name.
    pub fn insert(&mut self, name: &str, password: &str) -> Result<(), ViewerError> {
        let account = |problem: String| ViewerError::Account {
            name: name.to_owned(),
            problem,
        };
        check_name(name).map_err(account)?;
        let hash = hash_password(password).map_err(account)?;
        self.accounts.insert(name.to_owned(), hash);
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.accounts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
    }

    /// Reads the accounts file. A missing file is an error: the caller decides whether a
    /// hub without viewers is what was meant.
    pub fn load(path: &Path) -> Result<Viewers, ViewerError> {
        let text = std::fs::read_to_string(path).map_err(|source| ViewerError::Read {
            path: path.to_owned(),
            source,
        })?;
        match crate::registry::exposed_mode(path) {
            Ok(None) => {}
            Ok(Some(mode)) => {
                return Err(ViewerError::Exposed {
                    path: path.to_owned(),
                    mode,
                })
            }
            Err(source) => {
                return Err(ViewerError::Read {
                    path: path.to_owned(),
                    source,
                })
            }
        }
        Viewers::parse(&text).map_err(|message| ViewerError::Syntax {
            path: path.to_owned(),
            message,
        })
    }

    fn parse(text: &str) -> Result<Viewers, String> {
        let file: File = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut accounts = BTreeMap::new();
        for (i, e) in file.viewer.into_iter().enumerate() {
            let at = format!("entry #{} ({:?})", i + 1, e.name);
            check_name(&e.name).map_err(|p| format!("{at}: {p}"))?;
            PasswordHash::new(&e.password).map_err(|err| {
                format!("{at}: the password is not an argon2 hash ({err}); set it with `sangdam-hub add-viewer {} --replace`", e.name)
            })?;
            if accounts.insert(e.name.clone(), e.password).is_some() {
                return Err(format!("{at}: the name appears twice"));
            }
        }
        Ok(Viewers { accounts })
    }

    /// Whether `password` is `name`'s. Takes about as long for an unknown name as for a
    /// known one, so that timing does not tell which names exist.
    pub fn verify(&self, name: &str, password: &str) -> bool {
        const DECOY: &str =
            "$argon2id$v=19$m=19456,t=2,p=1$c2FuZ2RhbWRlY295c2FsdA$1Tc4Ta4t7gEDm0bVq4zq0RWqNx9sTQ0xBd7mJIzMblQ";
        let (stored, known) = match self.accounts.get(name) {
            Some(h) => (h.as_str(), true),
            None => (DECOY, false),
        };
        let Ok(hash) = PasswordHash::new(stored) else {
            return false;
        };
        let ok = Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok();
        ok && known
    }
}

/// Adds (or with `replace`, changes) an account in the file at `path`, created with mode
/// 0600 when missing. The whole file is rewritten through a temporary file and a rename,
/// so a crash leaves the old file or the new one.
pub fn add_viewer(
    path: &Path,
    name: &str,
    password: &str,
    replace: bool,
) -> Result<(), ViewerError> {
    let account = |problem: String| ViewerError::Account {
        name: name.to_owned(),
        problem,
    };
    check_name(name).map_err(account)?;
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(account(format!(
            "the password must have at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    let mut viewers = match Viewers::load(path) {
        Ok(v) => v,
        Err(ViewerError::Read { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            Viewers::new()
        }
        Err(e) => return Err(e),
    };
    if viewers.accounts.contains_key(name) && !replace {
        return Err(account(
            "this viewer exists already: add --replace to set a new password".into(),
        ));
    }
    viewers.insert(name, password)?;
    let mut text = String::from(
        "# sangdam-hub dashboard accounts (argon2id hashes), written by `sangdam-hub add-viewer`.\n",
    );
    for (n, h) in &viewers.accounts {
        text.push_str(&format!(
            "\n[[viewer]]\nname = {}\npassword = {}\n",
            toml::Value::String(n.clone()),
            toml::Value::String(h.clone())
        ));
    }
    let tmp = path.with_extension("tmp");
    let write = || -> std::io::Result<()> {
        let _ = std::fs::remove_file(&tmp);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    };
    write().map_err(|source| ViewerError::Write {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_wrong_passwords_do_not() {
        let mut v = Viewers::new();
        v.insert("kim", "correct horse battery").unwrap();
        assert!(v.verify("kim", "correct horse battery"));
        assert!(!v.verify("kim", "correct horse batterY"));
        assert!(!v.verify("lee", "correct horse battery"));
        assert!(!v.verify("kim", ""));
        assert!(v.insert("bad name", "x").is_err());
        // The decoy is a well-formed hash, so unknown names cost a real verification.
        assert!(PasswordHash::new(
            "$argon2id$v=19$m=19456,t=2,p=1$c2FuZ2RhbWRlY295c2FsdA$1Tc4Ta4t7gEDm0bVq4zq0RWqNx9sTQ0xBd7mJIzMblQ"
        )
        .is_ok());
    }

    #[test]
    fn file_round_trip_is_private_and_refuses_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("viewers.toml");
        add_viewer(&path, "kim", "correct horse battery", false).unwrap();
        add_viewer(&path, "lee", "another long secret", false).unwrap();
        let again = add_viewer(&path, "kim", "a different password", false).unwrap_err();
        assert!(again.to_string().contains("--replace"), "{again}");
        add_viewer(&path, "kim", "a different password", true).unwrap();
        let short = add_viewer(&path, "park", "short", false).unwrap_err();
        assert!(short.to_string().contains("12 characters"), "{short}");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("a different password") && text.contains("$argon2id$"));
        let v = Viewers::load(&path).unwrap();
        assert_eq!(v.len(), 2);
        assert!(v.verify("kim", "a different password"));
        assert!(!v.verify("kim", "correct horse battery"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let e = Viewers::load(&path).unwrap_err();
            assert!(e.to_string().contains("chmod 600"), "{e}");
        }
    }

    #[test]
    fn malformed_files_name_the_problem() {
        let e = Viewers::parse("[[viewer]]\nname = \"kim\"\npassword = \"hunter2\"\n").unwrap_err();
        assert!(e.contains("not an argon2 hash"), "{e}");
        assert!(Viewers::parse("[[viewer]]\nname = \"kim\"\n").is_err());
        assert!(Viewers::parse("").unwrap().is_empty());
    }
}
