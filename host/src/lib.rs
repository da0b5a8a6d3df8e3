//! The companion host tool's library: everything `sangdam-host` does, testable without
//! the command line.
//!
//! # Layout
//!
//! - [`corpus`]: AI Hub-style corpora (audio and transcripts in separate trees, paired
//!   by file stem), KsponSpeech transcript normalisation, `vocab.json`, speaker splits,
//!   and the synthetic call-centre corpus.
//! - [`ctc`]: CTC loss and gradient (forward-backward in log space), checked against
//!   PyTorch.
//! - [`model`]: Wav2Vec2ForCTC in candle, loaded from a Hugging Face checkpoint.
//! - [`data`]: a split in memory (normalised audio, label ids) and length-grouped
//!   batches.
//! - [`train`]: the training loop (SpecAugment, AdamW, clipping, accumulation,
//!   checkpoints, dev CER).
//! - [`engine`]: which kernels run the training step: candle, or libtorch (`torch`,
//!   feature `torch`: the same network and update through tch-rs).
//! - [`eval`]: error rates through the firmware's engine; CER and WER are computed by
//!   the firmware's own arithmetic, re-exported here.
//! - [`onnx`]: ONNX export of a checkpoint and its int8 variants.
//! - [`lm`]: the syllable n-gram language model of the box's beam search (Kneser-Ney).
//! - [`package`]: install a model and its manifest entry into `models/`.
//! - [`rng`]: the seeded generator every random choice above draws from.

pub mod corpus;
pub mod ctc;
pub mod data;
pub mod engine;
pub mod eval;
pub mod lm;
pub mod model;
pub mod onnx;
pub mod package;
pub mod rng;
pub mod sentiment;
#[cfg(feature = "torch")]
pub mod torch;
pub mod train;
