//! Speech recognition: wav2vec2 with a CTC head, run by tract.
//!
//! The path of one utterance is `features::normalize` (what transformers'
//! `Wav2Vec2FeatureExtractor(do_normalize=True)` does), then [`AsrEngine::logits`]
//! (the ONNX graph, optimised once at load), then a [`CtcDecoder`] that turns per-frame
//! scores into text through the [`Vocab`].
//!
//! The decoder is a trait: the greedy decoder and the prefix beam search (with a
//! syllable n-gram language model, [`lm`], and hotwords) both receive the whole
//! `[frames, vocab]` score matrix, and [`choose_decoder`] picks one from the config.

mod beam;
pub mod config;
mod ctc;
mod decoding;
mod engine;
pub mod features;
pub mod lm;
pub mod score;
mod vocab;

/// The jamo helpers moved to [`crate::hangul`]; the old path still works.
pub use crate::hangul;
pub use beam::{hotword_tokens, BeamDecoder};
pub use config::AsrConfig;
pub use ctc::{CtcDecoder, GreedyDecoder, Transcript};
pub use decoding::{choose_decoder, hotwords_of, DecoderChoice};
pub use engine::{frames_for, AsrEngine, AsrError, MIN_SAMPLES};
pub use lm::{LmError, NgramLm};
pub use vocab::{Vocab, VocabError, PAD, UNK, WORD_DELIMITER};
