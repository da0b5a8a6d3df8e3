//! Who may read the report page that `sangdam serve` shows: named viewers with argon2id
//! password hashes, one per line of the viewers file (`insights.viewers_file`, by default
//! `<store.data_dir>/viewers`):
//!
//! ```text
//! # comment
//! kim.manager<TAB>$argon2id$v=19$m=19456,t=2,p=1$…
//! ```
//!
//! A name and its PHC hash string, separated by one tab character. `sangdam add-viewer
//! NAME` writes entries (the file is created mode 0600, rewritten through a temporary
//! file and a rename) and `sangdam remove-viewer NAME` drops one; `sangdam serve` reads
//! the file at start and refuses one that group or others may read, like
//! `sync.key_file` ([`crate::secret::check_private`]). Passwords are never stored, printed
//! or logged.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

/// Shortest password `add-viewer` accepts, in characters (as for the hub's dashboard).
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest password `add-viewer` accepts, in characters: it must fit the login form's
/// bounded body however it is percent-encoded.
pub const MAX_PASSWORD_CHARS: usize = 128;
/// Longest viewer name.
pub const MAX_NAME_CHARS: usize = 64;

/// Why the viewers file could not be read or changed. Each names the file or the rule,
/// never a password or a hash.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ViewersError {
    /// A name or password that the rules refuse ([`check_name`], [`check_password`]).
    #[error("{0}")]
    Rule(String),
    #[error("no randomness for the password's salt: {0}")]
    Randomness(std::io::Error),
    #[error("cannot hash the password: {0}")]
    Hash(String),
    /// Group or others may read the file.
    #[error(transparent)]
    NotPrivate(#[from] crate::secret::SecretFileError),
    #[error("cannot read insights.viewers_file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("insights.viewers_file {}: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    #[error("there is no viewer {name:?} in {} (viewers: {others})", path.display())]
    Unknown {
        name: String,
        path: PathBuf,
        others: String,
    },
    #[error("cannot write the viewers file {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

type Result<T, E = ViewersError> = std::result::Result<T, E>;

/// Viewer name → argon2 PHC hash string.
#[derive(Clone, Default, PartialEq)]
pub struct Viewers {
    accounts: BTreeMap<String, String>,
}

impl std::fmt::Debug for Viewers {
    // Names only: the hashes stay out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.accounts.keys()).finish()
    }
}

/// Whether `name` can be a viewer's name: 1 to 64 ASCII letters, digits, `-`, `_`, `.`
/// or `@` (so it can never hold the file's tab or a line break).
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_CHARS
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "a viewer name is 1 to {MAX_NAME_CHARS} ASCII letters, digits, '-', '_', '.' or '@', e.g. kim.manager"
        ))
    }
}

/// The password rule of `add-viewer`: 12 to 128 characters, no control characters (a
/// pasted line break or tab is a mistake, not part of a password). Spaces count.
pub fn check_password(password: &str) -> Result<(), String> {
    let n = password.chars().count();
    if n < MIN_PASSWORD_CHARS {
        return Err(format!(
            "the password must have at least {MIN_PASSWORD_CHARS} characters (a few words make a good one)"
        ));
    }
    if n > MAX_PASSWORD_CHARS {
        return Err(format!(
            "the password may have at most {MAX_PASSWORD_CHARS} characters"
        ));
    }
    if password.chars().any(char::is_control) {
        return Err("the password must not contain control characters (tabs, line breaks)".into());
    }
    Ok(())
}

/// `N` random bytes from the kernel (salts, session tokens).
pub(crate) fn random_bytes<const N: usize>() -> std::io::Result<[u8; N]> {
    use std::io::Read;
    let mut b = [0u8; N];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut b)?;
    Ok(b)
}

/// The argon2id hash (PHC string, random salt, the crate's default cost) of `password`.
pub fn hash_password(password: &str) -> Result<String> {
    let salt: [u8; 16] = random_bytes().map_err(ViewersError::Randomness)?;
    let salt =
        SaltString::encode_b64(&salt).map_err(|e| ViewersError::Hash(format!("salt: {e}")))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ViewersError::Hash(e.to_string()))
}

/// A hash of a random password with the same parameters as the real ones, checked when a
/// login names nobody: an unknown name then costs as much as a wrong password.
fn decoy() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| {
        let secret = random_bytes::<16>()
            .map(|b| sangdam_wire::hex(&b))
            .unwrap_or_else(|_| "sangdam-decoy-password".into());
        let salt = SaltString::encode_b64(b"sangdam-decoy-salt").expect("a fixed valid salt");
        Argon2::default()
            .hash_password(secret.as_bytes(), &salt)
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

impl Viewers {
    pub fn new() -> Viewers {
        Viewers::default()
    }

    /// Adds a viewer with this password (hashed here); replaces one of the same name.
    /// Returns whether the name was there before.
    pub fn insert(&mut self, name: &str, password: &str) -> Result<bool> {
        check_name(name).map_err(ViewersError::Rule)?;
        let hash = hash_password(password)?;
        Ok(self.accounts.insert(name.to_owned(), hash).is_some())
    }

    /// Drops a viewer; whether it was there.
    pub fn remove(&mut self, name: &str) -> bool {
        self.accounts.remove(name).is_some()
    }

    pub fn len(&self) -> usize {
        self.accounts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.accounts.keys().map(String::as_str)
    }

    /// Reads the viewers file. It must exist and be private to its owner: one that group
    /// or others may read is refused with the `chmod 600` that fixes it (the hashes let
    /// anyone who copies them guess passwords offline).
    pub fn load(path: &Path) -> Result<Viewers> {
        crate::secret::check_private(
            path,
            "insights.viewers_file",
            "the viewers' password hashes",
        )?;
        let text = std::fs::read_to_string(path).map_err(|source| ViewersError::Read {
            path: path.to_owned(),
            source,
        })?;
        let viewers = Viewers::parse(&text).map_err(|message| ViewersError::Parse {
            path: path.to_owned(),
            message,
        })?;
        // Made now rather than at the first login that names nobody.
        decoy();
        Ok(viewers)
    }

    /// Parses the file's text: `NAME<TAB>HASH` lines, `#` comments and blank lines.
    pub fn parse(text: &str) -> Result<Viewers, String> {
        let mut accounts = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            let at = i + 1;
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() || line.trim_start().starts_with('#') {
                continue;
            }
            let Some((name, hash)) = line.split_once('\t') else {
                return Err(format!(
                    "line {at}: expected NAME<TAB>HASH as written by `sangdam add-viewer NAME`"
                ));
            };
            check_name(name).map_err(|e| format!("line {at}: {e}"))?;
            // The hash itself is never quoted back.
            PasswordHash::new(hash).map_err(|_| {
                format!("line {at} ({name}): the second field is not an argon2 password hash; set it again with `sangdam add-viewer {name}`")
            })?;
            if accounts.insert(name.to_owned(), hash.to_owned()).is_some() {
                return Err(format!("line {at}: the viewer {name} appears twice"));
            }
        }
        Ok(Viewers { accounts })
    }

    /// The file's text.
    fn to_text(&self) -> String {
        let mut text = String::from(
            "# sangdam report viewers: NAME<TAB>argon2id hash, written by `sangdam add-viewer`.\n",
        );
        for (n, h) in &self.accounts {
            text.push_str(&format!("{n}\t{h}\n"));
        }
        text
    }

    /// Whether `password` is `name`'s. Takes about as long for an unknown name as for a
    /// known one (a decoy hash is checked), so timing does not tell which names exist.
    pub fn verify(&self, name: &str, password: &str) -> bool {
        let (stored, known) = match self.accounts.get(name) {
            Some(h) => (h.as_str(), true),
            None => (decoy(), false),
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

/// What [`add_viewer`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    New,
    /// The name was there: its password changed.
    Replaced,
}

/// Reads the file for a change: missing is empty, present must be private.
fn load_for_change(path: &Path) -> Result<Viewers> {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Viewers::new()),
        _ => Viewers::load(path),
    }
}

/// Adds `name` with `password` to the viewers file at `path` (created mode 0600 with its
/// folder when missing), or changes the password of a viewer of that name.
pub fn add_viewer(path: &Path, name: &str, password: &str) -> Result<Added> {
    check_name(name).map_err(ViewersError::Rule)?;
    check_password(password).map_err(ViewersError::Rule)?;
    let mut viewers = load_for_change(path)?;
    let replaced = viewers.insert(name, password)?;
    write(path, &viewers.to_text())?;
    Ok(if replaced {
        Added::Replaced
    } else {
        Added::New
    })
}

/// Removes `name` from the viewers file at `path`; returns how many viewers are left. An
/// unknown name is an error (a typo must not look like success).
pub fn remove_viewer(path: &Path, name: &str) -> Result<usize> {
    let mut viewers = load_for_change(path)?;
    if !viewers.remove(name) {
        return Err(ViewersError::Unknown {
            name: name.to_owned(),
            path: path.to_owned(),
            others: if viewers.is_empty() {
                "none".to_owned()
            } else {
                viewers.names().collect::<Vec<_>>().join(", ")
            },
        });
    }
    write(path, &viewers.to_text())?;
    Ok(viewers.len())
}

/// Replaces the file at `path` with `text` through a new 0600 file and a rename, so that a
/// crash leaves the old file or the new one, and the file is never readable by others.
fn write(path: &Path, text: &str) -> Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    let write = || -> std::io::Result<()> {
        if let Some(dir) = dir {
            std::fs::create_dir_all(dir)?;
        }
        let mut tmp_name = path.file_name().unwrap_or_default().to_owned();
        tmp_name.push(".tmp");
        let tmp = path.with_file_name(tmp_name);
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
        drop(file);
        std::fs::rename(&tmp, path)?;
        if let Some(dir) = dir {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    };
    write().map_err(|source| ViewersError::Write {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_unknown_names_cost_a_real_check() {
        let mut v = Viewers::new();
        assert!(!v.insert("kim", "correct horse battery").unwrap());
        assert!(v.verify("kim", "correct horse battery"));
        assert!(!v.verify("kim", "correct horse batterY"));
        assert!(!v.verify("kim", ""));
        assert!(!v.verify("lee", "correct horse battery"));
        assert!(v.insert("bad name", "correct horse battery").is_err());
        assert!(v.insert("kim", "another long secret").unwrap());
        assert!(!v.verify("kim", "correct horse battery"));
        // The decoy is a real argon2id hash with the same cost as the stored ones.
        let d = PasswordHash::new(decoy()).unwrap();
        let real = PasswordHash::new(&v.accounts["kim"]).unwrap().to_string();
        let params = |s: &str| s.split('$').take(4).collect::<Vec<_>>().join("$");
        assert_eq!(params(&d.to_string()), params(&real));
        assert!(real.starts_with("$argon2id$"));
        let debug = format!("{v:?}");
        assert!(
            debug.contains("kim") && !debug.contains("argon2"),
            "{debug}"
        );
    }

    #[test]
    fn the_password_rule() {
        assert!(check_password("").is_err());
        assert!(check_password("elevenchars").is_err());
        assert!(check_password("twelve chars").is_ok());
        assert!(check_password("비밀번호는열두글자입니다요").is_ok());
        assert!(check_password(&"x".repeat(MAX_PASSWORD_CHARS)).is_ok());
        assert!(check_password(&"x".repeat(MAX_PASSWORD_CHARS + 1)).is_err());
        assert!(check_password("has a\ttab inside").is_err());
        assert!(check_name("kim.manager@branch-07").is_ok());
        for bad in ["", "kim manager", "kim\tx", "김", &"a".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_file_is_private_replaces_and_removes() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data").join("viewers");
        assert_eq!(
            add_viewer(&path, "kim", "correct horse battery").unwrap(),
            Added::New
        );
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        add_viewer(&path, "lee", "another long secret").unwrap();
        assert_eq!(
            add_viewer(&path, "kim", "a different password").unwrap(),
            Added::Replaced
        );
        let e = add_viewer(&path, "park", "short").unwrap_err().to_string();
        assert!(e.contains("12 characters"), "{e}");
        let text = std::fs::read_to_string(&path).unwrap();
        for secret in ["correct horse", "different password", "long secret"] {
            assert!(!text.contains(secret), "{text}");
        }
        assert_eq!(
            text.lines().filter(|l| l.contains("\t$argon2id$")).count(),
            2
        );
        let v = Viewers::load(&path).unwrap();
        assert_eq!(v.names().collect::<Vec<_>>(), ["kim", "lee"]);
        assert!(v.verify("kim", "a different password"));
        assert!(!v.verify("kim", "correct horse battery"));
        assert_eq!(remove_viewer(&path, "lee").unwrap(), 1);
        let e = remove_viewer(&path, "lee").unwrap_err().to_string();
        assert!(e.contains("no viewer \"lee\"") && e.contains("kim"), "{e}");
        assert_eq!(remove_viewer(&path, "kim").unwrap(), 0);
        assert!(Viewers::load(&path).unwrap().is_empty());
        // Others may read it: refused, naming the file, its mode and the fix; add-viewer
        // does not write into it either.
        add_viewer(&path, "kim", "correct horse battery").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        for e in [
            Viewers::load(&path).unwrap_err(),
            add_viewer(&path, "lee", "another long secret").unwrap_err(),
        ] {
            let e = format!("{e:#}");
            assert!(
                e.contains("0644") && e.contains("chmod 600") && e.contains("viewers"),
                "{e}"
            );
        }
    }

    #[test]
    fn malformed_files_name_the_line_and_never_quote_the_hash() {
        let e = Viewers::parse("kim\thunter2hunter2\n").unwrap_err();
        assert!(e.contains("line 1") && e.contains("not an argon2"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
        let e = Viewers::parse("# c\n\nkim $argon2id$v=19$\n").unwrap_err();
        assert!(e.contains("line 3") && e.contains("NAME<TAB>HASH"), "{e}");
        assert!(Viewers::parse("").unwrap().is_empty());
        assert!(Viewers::parse("# only a comment\n").unwrap().is_empty());
        let mut v = Viewers::new();
        v.insert("kim", "correct horse battery").unwrap();
        let twice = v.to_text() + &v.to_text();
        assert!(Viewers::parse(&twice).unwrap_err().contains("twice"));
        assert_eq!(Viewers::parse(&v.to_text()).unwrap(), v);
    }
}
