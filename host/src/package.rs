//! `sangdam-host package`: installs a model into a models folder (copies the files into
//! `DIR/NAME/`, hashes them, and writes or replaces the entry in `manifest.toml`), so the
//! firmware's start-up check accepts exactly these bytes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sangdam::models::{
    sha256_file, Manifest, ModelEntry, ModelError, ModelKind, MANIFEST_FILE, MANIFEST_FORMAT,
};

/// Why a model cannot be installed. Nothing is written to the manifest when the entry
/// itself is refused ([`PackageError::NoVocab`], [`PackageError::NeutralBand`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PackageError {
    #[error("cannot create {}", path.display())]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} has no file name", path.display())]
    NoFileName { path: PathBuf },
    #[error("cannot copy {} to {}", from.display(), to.display())]
    Copy {
        from: PathBuf,
        to: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("an asr-ctc model needs --vocab (its vocab.json)")]
    NoVocab,
    /// The manifest's rule for `neutral_band` ([`sangdam::models::check_neutral_band`]'s
    /// message).
    #[error("--neutral-band: {0}")]
    NeutralBand(String),
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write the manifest as TOML")]
    Toml(#[source] toml::ser::Error),
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The firmware's manifest check (loading the old manifest, or verifying the new one).
    #[error(transparent)]
    Manifest(#[from] ModelError),
}

type Result<T, E = PackageError> = std::result::Result<T, E>;

fn read_error(path: &Path) -> impl FnOnce(std::io::Error) -> PackageError + '_ {
    move |source| PackageError::Read {
        path: path.to_owned(),
        source,
    }
}

/// What to install.
pub struct Package {
    pub models_dir: PathBuf,
    pub name: String,
    pub kind: ModelKind,
    pub model: PathBuf,
    pub vocab: Option<PathBuf>,
    pub labels: Option<Vec<String>>,
    pub sample_rate: Option<u32>,
    pub quantization: Option<String>,
    pub made: String,
    pub scores: BTreeMap<String, f64>,
    /// An ngram-lm's tuned decoding settings.
    pub decoder: Option<sangdam::models::DecoderDefaults>,
    /// A sentiment model's calibrated neutral band `[lo, hi]` of p(positive)
    /// (`neutral_band` in the entry; `0 <= lo <= hi <= 1`). Refused for other kinds.
    pub neutral_band: Option<[f32; 2]>,
}

/// `--neutral-band LO,HI`: two probabilities, e.g. `0.3,0.7` (whether they make a band
/// is checked by [`package`], with the manifest's rule).
pub fn parse_neutral_band(s: &str) -> Result<[f32; 2], String> {
    let bad = || format!("--neutral-band {s:?}: write LO,HI, two probabilities such as 0.3,0.7");
    let (lo, hi) = s.split_once(',').ok_or_else(bad)?;
    let lo: f32 = lo.trim().parse().map_err(|_| bad())?;
    let hi: f32 = hi.trim().parse().map_err(|_| bad())?;
    Ok([lo, hi])
}

const HEADER: &str =
    "# Models shipped with sangdam. Every file is checked against its sha256 and size at\n\
# start-up (`sangdam models` checks them on demand). Paths are relative to this folder.\n\
# The format is documented in src/models/mod.rs; `sangdam-host package` writes entries.\n";

/// Copies the files and updates the manifest; returns the new entry.
pub fn package(p: &Package) -> Result<ModelEntry> {
    let dest = p.models_dir.join(&p.name);
    std::fs::create_dir_all(&dest).map_err(|source| PackageError::Create {
        path: dest.clone(),
        source,
    })?;
    let copy = |src: &Path| -> Result<PathBuf> {
        let file = src.file_name().ok_or_else(|| PackageError::NoFileName {
            path: src.to_owned(),
        })?;
        let to = dest.join(file);
        if std::fs::canonicalize(src).ok() != std::fs::canonicalize(&to).ok() {
            std::fs::copy(src, &to).map_err(|source| PackageError::Copy {
                from: src.to_owned(),
                to: to.clone(),
                source,
            })?;
        }
        Ok(PathBuf::from(&p.name).join(file))
    };
    let file = copy(&p.model)?;
    let vocab = p.vocab.as_deref().map(copy).transpose()?;
    if p.kind == ModelKind::AsrCtc && vocab.is_none() {
        return Err(PackageError::NoVocab);
    }
    if let Some(band) = p.neutral_band {
        // The manifest's own rule, checked before anything is written.
        sangdam::models::check_neutral_band(&p.name, p.kind, band)
            .map_err(PackageError::NeutralBand)?;
    }
    let hash = |rel: &Path| -> Result<String> {
        let path = p.models_dir.join(rel);
        sha256_file(&path).map_err(read_error(&path))
    };
    let installed = p.models_dir.join(&file);
    let entry = ModelEntry {
        name: p.name.clone(),
        kind: p.kind,
        sha256: hash(&file)?,
        bytes: std::fs::metadata(&installed)
            .map_err(read_error(&installed))?
            .len(),
        vocab_sha256: vocab.as_deref().map(hash).transpose()?,
        vocab,
        file,
        labels: p.labels.clone(),
        sample_rate: p.sample_rate,
        quantization: p.quantization.clone(),
        neutral_band: p.neutral_band,
        made: p.made.clone(),
        decoder: p.decoder.clone(),
        scores: p.scores.clone(),
    };
    let manifest_path = p.models_dir.join(MANIFEST_FILE);
    let mut manifest = if manifest_path.exists() {
        Manifest::load(&p.models_dir)?
    } else {
        Manifest {
            format: MANIFEST_FORMAT,
            models: Vec::new(),
            dir: p.models_dir.clone(),
        }
    };
    manifest.models.retain(|m| m.name != p.name);
    manifest.models.push(entry.clone());
    manifest.models.sort_by(|a, b| a.name.cmp(&b.name));
    let body = toml::to_string(&manifest).map_err(PackageError::Toml)?;
    // Keep the comment block the manifest starts with (notes a maintainer wrote there).
    let header = std::fs::read_to_string(&manifest_path)
        .ok()
        .map(|old| {
            old.lines()
                .take_while(|l| l.starts_with('#'))
                .map(|l| format!("{l}\n"))
                .collect::<String>()
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| HEADER.to_string());
    std::fs::write(&manifest_path, format!("{header}{body}")).map_err(|source| {
        PackageError::Write {
            path: manifest_path.clone(),
            source,
        }
    })?;
    // The firmware's own check must accept what was written.
    Manifest::load(&p.models_dir)?.verify()?;
    Ok(entry)
}
