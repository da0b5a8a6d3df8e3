//! Speech recognition: wav2vec2 with a CTC head, run by tract.
//!
//! The path of one utterance is `features::normalize` (what transformers'
//! `Wav2Vec2FeatureExtractor(do_normalize=True)` does), then [`AsrEngine::logits`]
//! (the ONNX graph, optimised once at load), then a [`CtcDecoder`] that turns per-frame
//! scores into text through the [`Vocab`].
//!
//! The decoder is a trait so that a beam search with a lexicon can replace the greedy
//! decoder without touching the engine: it receives the whole `[frames, vocab]` score
//! matrix, not just the argmax.

mod beam;
mod ctc;
mod engine;
pub mod features;
pub mod hangul;
pub mod score;
mod vocab;

pub use beam::BeamDecoder;
pub use ctc::{CtcDecoder, GreedyDecoder, Transcript};
pub use engine::{frames_for, AsrEngine, AsrError, MIN_SAMPLES};
pub use vocab::{Vocab, VocabError, PAD, UNK, WORD_DELIMITER};
