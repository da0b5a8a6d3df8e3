//! The device registry: which boxes may send, with which key, for which branch.
//!
//! ```toml
//! [[device]]
//! id = "busan-03"
//! key = "5f0c…"          # 32 to 128 hex digits (16 to 64 bytes)
//! branch = "부산 3지점"
//! ```
//!
//! The file holds secrets: `sangdam-hub add-device` creates it readable by its owner only,
//! and [`Registry::load`] and [`add_device`] refuse one that group or others may read or
//! write (mode & 0o077), naming the file, its mode and the fix.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// One registered box.
#[derive(Clone, PartialEq, Eq)]
pub struct Device {
    pub id: String,
    pub key: Vec<u8>,
    pub branch: String,
}

impl fmt::Debug for Device {
    // Never print the key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Device")
            .field("id", &self.id)
            .field("key", &format_args!("<{} bytes>", self.key.len()))
            .field("branch", &self.branch)
            .finish()
    }
}

/// Device id → key and branch.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    devices: BTreeMap<String, Device>,
}

/// Why a registry cannot be used. Each message names the file (when there is one), the
/// entry and what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    #[error("cannot read the device registry {path}: {source} (create it with `sangdam-hub add-device ID --branch NAME --registry {path}`)")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{where_} is not valid TOML for a device registry: {message}\nexpected entries like:\n[[device]]\nid = \"busan-03\"\nkey = \"<64 hex digits from `openssl rand -hex 32`>\"\nbranch = \"부산 3지점\"")]
    Syntax { where_: String, message: String },
    #[error("{where_}, device entry #{index} ({id}): {problem}")]
    Entry {
        where_: String,
        /// 1-based position of the `[[device]]` entry in the file.
        index: usize,
        id: String,
        problem: String,
    },
    #[error("the device registry {path} has mode {mode:04o}: group or others may read the devices' keys. Make it readable by the hub's user alone: `chmod 600 {path}` and `chown sangdam-hub {path}` (or load it with systemd's LoadCredential=, board/sangdam-hub.service)")]
    Exposed { path: PathBuf, mode: u32 },
    #[error("cannot write the device registry {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileForm {
    #[serde(default)]
    device: Vec<EntryForm>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryForm {
    id: String,
    key: String,
    branch: String,
}

impl Registry {
    pub fn new() -> Registry {
        Registry::default()
    }

    /// Parses a registry held in memory (error messages say "the registry").
    pub fn from_toml_str(s: &str) -> Result<Registry, RegistryError> {
        Self::parse(s, "the registry")
    }

    /// Reads and checks a registry file; one that group or others may read is refused.
    pub fn load(path: &Path) -> Result<Registry, RegistryError> {
        check_private(path)?;
        let text = std::fs::read_to_string(path).map_err(|source| RegistryError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, &format!("registry {}", path.display()))
    }

    fn parse(text: &str, where_: &str) -> Result<Registry, RegistryError> {
        // Position and message only: toml's own text quotes the source line, and every
        // line of a registry may hold a key.
        let form: FileForm = toml::from_str(text).map_err(|e: toml::de::Error| {
            let line = e
                .span()
                .and_then(|s| text.get(..s.start))
                .map(|before| before.matches('\n').count() + 1);
            RegistryError::Syntax {
                where_: where_.to_owned(),
                message: match line {
                    Some(n) => format!("line {n}: {}", e.message().trim_end()),
                    None => e.message().trim_end().to_owned(),
                },
            }
        })?;
        let mut registry = Registry::new();
        for (i, entry) in form.device.into_iter().enumerate() {
            let fail = |problem: String| RegistryError::Entry {
                where_: where_.to_owned(),
                index: i + 1,
                id: format!("id {:?}", entry.id),
                problem,
            };
            check_id(&entry.id).map_err(fail)?;
            let key =
                sangdam_wire::parse_key(&entry.key).map_err(|e| fail(format!("bad key: {e}")))?;
            check_branch(&entry.branch).map_err(fail)?;
            if registry.devices.contains_key(&entry.id) {
                return Err(fail(
                    "the id is registered twice: delete one of the entries (each box needs its own id and key)"
                        .into(),
                ));
            }
            registry.insert(&entry.id, key, entry.branch.trim());
        }
        Ok(registry)
    }

    /// Adds or replaces a device.
    pub fn insert(&mut self, id: &str, key: Vec<u8>, branch: &str) {
        self.devices.insert(
            id.to_owned(),
            Device {
                id: id.to_owned(),
                key,
                branch: branch.to_owned(),
            },
        );
    }

    pub fn get(&self, id: &str) -> Option<&Device> {
        self.devices.get(id)
    }

    pub fn len(&self) -> usize {
        self.devices.len()
    }

    pub fn is_empty(&self) -> bool {
        self.devices.is_empty()
    }

    /// Devices in id order.
    pub fn devices(&self) -> impl Iterator<Item = &Device> {
        self.devices.values()
    }
}

/// Refuses a registry file that group or others have any permission on. One inside
/// `$CREDENTIALS_DIRECTORY` (systemd's `LoadCredential=`) is trusted as it is: systemd
/// makes it readable by the hub alone, with an ACL that shows as mode 0440.
fn check_private(path: &Path) -> Result<(), RegistryError> {
    match exposed_mode(path) {
        Ok(None) => Ok(()),
        Ok(Some(mode)) => Err(RegistryError::Exposed {
            path: path.to_owned(),
            mode,
        }),
        Err(source) => Err(RegistryError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

/// The file's mode when group or others have any permission on it (None: private, or
/// inside `$CREDENTIALS_DIRECTORY`, or not on Unix).
pub(crate) fn exposed_mode(path: &Path) -> std::io::Result<Option<u32>> {
    let credentials = std::env::var_os("CREDENTIALS_DIRECTORY");
    if credentials.is_some_and(|d| !d.is_empty() && path.starts_with(d)) {
        return Ok(None);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)?.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Ok(Some(mode));
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(None)
}

fn check_id(id: &str) -> Result<(), String> {
    if sangdam_wire::valid_device_id(id) {
        Ok(())
    } else {
        Err(format!(
            "the id must be 1 to {} ASCII letters, digits, '-', '_' or '.' (the box's sync.device_id), e.g. \"busan-03\"",
            sangdam_wire::MAX_DEVICE_ID
        ))
    }
}

fn check_branch(branch: &str) -> Result<(), String> {
    let b = branch.trim();
    if b.is_empty() {
        return Err(
            "the branch is empty: write the branch's name, e.g. branch = \"부산 3지점\"".into(),
        );
    }
    if b.chars().count() > 100 || b.chars().any(char::is_control) {
        return Err("the branch must be one line of at most 100 characters".into());
    }
    Ok(())
}

/// Generates a key, appends a device to the registry file (created with mode 0600 if
/// missing) and returns the key. Refuses an id or a file that is already wrong, so that
/// the hub never meets a registry this command broke.
pub fn add_device(path: &Path, id: &str, branch: &str) -> Result<Vec<u8>, RegistryError> {
    let where_ = format!("registry {}", path.display());
    let entry_error = |problem: String| RegistryError::Entry {
        where_: where_.clone(),
        index: 0,
        id: format!("new id {id:?}"),
        problem,
    };
    check_id(id).map_err(entry_error)?;
    check_branch(branch).map_err(entry_error)?;
    let existing = match std::fs::read_to_string(path) {
        Ok(text) => {
            check_private(path)?;
            let registry = Registry::parse(&text, &where_)?;
            if registry.get(id).is_some() {
                return Err(entry_error(
                    "this id is already registered: pick another id, or edit the file to replace its key".into(),
                ));
            }
            text
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(source) => {
            return Err(RegistryError::Read {
                path: path.to_owned(),
                source,
            })
        }
    };
    let key = random_key().map_err(|source| RegistryError::Write {
        path: path.to_owned(),
        source,
    })?;
    let mut text = String::new();
    if !existing.is_empty() && !existing.ends_with('\n') {
        text.push('\n');
    }
    if !existing.is_empty() {
        text.push('\n');
    }
    text.push_str(&format!(
        "[[device]]\nid = {}\nkey = \"{}\"\nbranch = {}\n",
        toml::Value::String(id.to_owned()),
        sangdam_wire::hex(&key),
        toml::Value::String(branch.trim().to_owned()),
    ));
    let write = || -> std::io::Result<()> {
        let mut options = std::fs::OpenOptions::new();
        options.append(true).create(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(path)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()
    };
    write().map_err(|source| RegistryError::Write {
        path: path.to_owned(),
        source,
    })?;
    Ok(key)
}

/// 32 random bytes from the kernel.
pub fn random_key() -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut key = vec![0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut key)?;
    Ok(key)
}
