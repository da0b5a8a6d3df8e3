//! Which decoder the box runs, from the config and the installed models: the beam
//! search with the language model and hotwords by default, greedy decoding on request
//! or when the language model cannot be used (with a warning that names the file).

use std::sync::Arc;

use super::beam::{hotword_tokens, BeamDecoder};
use super::ctc::{CtcDecoder, GreedyDecoder};
use super::lm::NgramLm;
use super::vocab::Vocab;
use super::AsrConfig;
use crate::insights::Product;
use crate::models::{Manifest, ModelKind};

/// The chosen decoder, how to name it in records and logs, and what went wrong on the
/// way (each a warning for the log; decoding goes on).
pub struct DecoderChoice {
    pub decoder: Arc<dyn CtcDecoder>,
    pub label: String,
    pub warnings: Vec<String>,
    /// What is worth a line in the log but needs no action.
    pub notes: Vec<String>,
}

impl std::fmt::Debug for DecoderChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecoderChoice")
            .field("label", &self.label)
            .field("warnings", &self.warnings)
            .finish()
    }
}

/// The hotwords of the config: `asr.hotwords`, then (with `asr.catalogue_hotwords`)
/// every product name and alias of the catalogue.
pub fn hotwords_of(asr: &AsrConfig, products: &[Product]) -> Vec<String> {
    let mut out: Vec<String> = asr.hotwords.clone();
    if asr.catalogue_hotwords {
        for p in products {
            out.push(p.name.clone());
            out.extend(p.aliases.iter().cloned());
        }
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|w| !w.trim().is_empty() && seen.insert(w.split_whitespace().collect::<String>()));
    out
}

/// Builds the decoder `asr` asks for. `lm_name` is `models.lm` ("" for none).
pub fn choose_decoder(
    asr: &AsrConfig,
    lm_name: &str,
    manifest: &Manifest,
    products: &[Product],
    vocab: &Vocab,
) -> DecoderChoice {
    let mut warnings = Vec::new();
    if asr.decoder == "greedy" {
        return DecoderChoice {
            decoder: Arc::new(GreedyDecoder),
            label: "greedy".into(),
            warnings,
            notes: Vec::new(),
        };
    }
    let mut d = BeamDecoder {
        beam: asr.beam.max(1),
        prune: asr.beam_prune,
        ..Default::default()
    };
    let mut label = format!("beam {}", d.beam);
    if !lm_name.is_empty() {
        let loaded = manifest
            .verified(ModelKind::NgramLm, lm_name)
            .map_err(|e| e.to_string())
            .and_then(|m| {
                NgramLm::load(&m.file)
                    .map(|lm| (lm, m))
                    .map_err(|e| e.to_string())
            });
        match loaded {
            Ok((lm, m)) => {
                let tuned = m.entry.decoder.clone();
                d.alpha = asr
                    .lm_alpha
                    .or(tuned.as_ref().map(|t| t.alpha))
                    .unwrap_or(d.alpha);
                d.beta = asr
                    .lm_beta
                    .or(tuned.as_ref().map(|t| t.beta))
                    .unwrap_or(d.beta);
                if let Some(h) = tuned.as_ref().and_then(|t| t.hotword_bonus) {
                    d.hotword_bonus = h;
                }
                label.push_str(&format!(" + {} (α {} β {})", m.label(), d.alpha, d.beta));
                d.lm = Some(Arc::new(lm));
            }
            Err(e) => {
                warnings.push(format!(
                    "language model {lm_name:?} cannot be used, decoding greedily without it: {e}"
                ));
                return DecoderChoice {
                    decoder: Arc::new(GreedyDecoder),
                    label: "greedy (language model unusable)".into(),
                    warnings,
                    notes: Vec::new(),
                };
            }
        }
    }
    if let Some(h) = asr.hotword_bonus {
        d.hotword_bonus = h;
    }
    d.hotwords = hotwords_of(asr, products);
    let (usable, skipped) = hotword_tokens(&d.hotwords, vocab);
    // The user's own list gets a warning; catalogue names (shown on the page as they
    // are, often with an alias in Hangul) only a note.
    let mine: Vec<String> = asr
        .hotwords
        .iter()
        .map(|w| w.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    let (own, catalogue): (Vec<&String>, Vec<&String>) =
        skipped.iter().partition(|w| mine.contains(w));
    let list = |v: &[&String]| v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
    if !own.is_empty() {
        warnings.push(format!(
            "asr.hotwords the speech model cannot spell are left out: {} (its vocabulary has no Latin letters or digits; write them in Hangul, e.g. 오지 for 5G)",
            list(&own)
        ));
    }
    let mut notes = Vec::new();
    if !catalogue.is_empty() {
        notes.push(format!(
            "catalogue names with letters or digits are not hotwords (their Hangul aliases are): {}",
            list(&catalogue)
        ));
    }
    if !usable.is_empty() {
        label.push_str(&format!(
            " + {} hotwords ({})",
            d.hotwords.len() - skipped.len(),
            d.hotword_bonus
        ));
    }
    DecoderChoice {
        decoder: Arc::new(d),
        label,
        warnings,
        notes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asr::beam::tests::jamo_vocab;
    use crate::models::sha256_file;

    /// A models folder with one ngram-lm entry over `bytes`, its sha256 and size as
    /// written (`honest`) or as the manifest had them before the file changed.
    fn models_with_lm(dir: &std::path::Path, bytes: &[u8], listed: Option<&[u8]>) -> Manifest {
        std::fs::create_dir_all(dir.join("lm-ko")).unwrap();
        let file = dir.join("lm-ko/lm.bin");
        std::fs::write(&file, listed.unwrap_or(bytes)).unwrap();
        let sha = sha256_file(&file).unwrap();
        let len = std::fs::metadata(&file).unwrap().len();
        std::fs::write(&file, bytes).unwrap();
        std::fs::write(
            dir.join("manifest.toml"),
            format!("format = 1\n[[model]]\nname = \"lm-ko\"\nkind = \"ngram-lm\"\nfile = \"lm-ko/lm.bin\"\nsha256 = \"{sha}\"\nbytes = {len}\n[model.decoder]\nalpha = 0.7\nbeta = 1.25\n"),
        )
        .unwrap();
        Manifest::load(dir).unwrap()
    }

    #[test]
    fn a_good_lm_brings_its_tuned_weights_and_config_overrides_them() {
        let dir = std::env::temp_dir().join(format!("sangdam-dec-ok-{}", std::process::id()));
        let lm = NgramLm::from_arpa(crate::asr::lm::tests::ARPA).unwrap();
        let m = models_with_lm(&dir, &lm.to_binary(), None);
        let c = choose_decoder(&AsrConfig::default(), "lm-ko", &m, &[], &jamo_vocab());
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        assert!(
            c.label.contains("lm-ko@") && c.label.contains("α 0.7 β 1.25"),
            "{}",
            c.label
        );
        let cfg = AsrConfig {
            lm_alpha: Some(0.3),
            ..Default::default()
        };
        let c = choose_decoder(&cfg, "lm-ko", &m, &[], &jamo_vocab());
        assert!(c.label.contains("α 0.3 β 1.25"), "{}", c.label);
        let greedy = AsrConfig {
            decoder: "greedy".into(),
            ..Default::default()
        };
        assert_eq!(
            choose_decoder(&greedy, "lm-ko", &m, &[], &jamo_vocab()).label,
            "greedy"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_cut_or_missing_lm_means_greedy_decoding_and_a_warning_naming_it() {
        let dir = std::env::temp_dir().join(format!("sangdam-dec-bad-{}", std::process::id()));
        let bin = NgramLm::from_arpa(crate::asr::lm::tests::ARPA)
            .unwrap()
            .to_binary();
        // Cut after the manifest was written: the size check names the file.
        let m = models_with_lm(&dir, &bin[..bin.len() / 2], Some(&bin));
        let c = choose_decoder(&AsrConfig::default(), "lm-ko", &m, &[], &jamo_vocab());
        assert_eq!(c.label, "greedy (language model unusable)");
        assert!(c.warnings[0].contains("lm-ko/lm.bin"), "{:?}", c.warnings);
        // Listed with its own (wrong) hash, as a user's hand-written entry would be:
        // the parser names the file and the fix.
        let m = models_with_lm(&dir, &bin[..bin.len() / 2], None);
        let c = choose_decoder(&AsrConfig::default(), "lm-ko", &m, &[], &jamo_vocab());
        assert!(
            c.warnings[0].contains("lm.bin") && c.warnings[0].contains("sangdam-host lm build"),
            "{:?}",
            c.warnings
        );
        // Not installed at all.
        let c = choose_decoder(&AsrConfig::default(), "lm-xx", &m, &[], &jamo_vocab());
        assert!(c.warnings[0].contains("lm-xx"), "{:?}", c.warnings);
        // No LM asked for: the beam runs without one, and no warning.
        let c = choose_decoder(&AsrConfig::default(), "", &m, &[], &jamo_vocab());
        assert_eq!(c.label, "beam 8");
        assert!(c.warnings.is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn catalogue_names_become_hotwords_and_unspellable_ones_are_reported() {
        let products = vec![Product {
            id: "p".into(),
            name: "함".into(),
            aliases: vec!["5G".into(), "함 함".into()],
            category: "x".into(),
        }];
        let cfg = AsrConfig {
            hotwords: vec!["함".into(), "LTE".into()],
            ..Default::default()
        };
        assert_eq!(
            hotwords_of(&cfg, &products),
            vec!["함", "LTE", "5G", "함 함"]
        );
        let dir = std::env::temp_dir().join(format!("sangdam-dec-hot-{}", std::process::id()));
        let bin = NgramLm::from_arpa(crate::asr::lm::tests::ARPA)
            .unwrap()
            .to_binary();
        let m = models_with_lm(&dir, &bin, None);
        let c = choose_decoder(&cfg, "", &m, &products, &jamo_vocab());
        assert!(c.label.ends_with("+ 2 hotwords (1.5)"), "{}", c.label);
        // The user's own unspellable word is a warning, the catalogue's a note.
        assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
        assert!(
            c.warnings[0].contains("left out: LTE ("),
            "{:?}",
            c.warnings
        );
        assert!(c.notes[0].contains("5G"), "{:?}", c.notes);
        let off = AsrConfig {
            catalogue_hotwords: false,
            ..Default::default()
        };
        assert!(hotwords_of(&off, &products).is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
