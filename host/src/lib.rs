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
//!
//! # Errors
//!
//! Each module returns its own error enum (`thiserror`, `#[non_exhaustive]`):
//! [`corpus::CorpusError`], [`corpus::synth::SynthError`], [`data::DataError`],
//! [`model::ModelError`], [`train::TrainError`], [`engine::EngineError`],
//! `torch::TorchError`, [`eval::EvalError`], [`onnx::OnnxError`],
//! [`onnx::import::ImportError`], [`onnx::quantize::QuantizeError`], [`lm::LmError`],
//! [`package::PackageError`], and the sentiment classifier's
//! [`sentiment::SentimentDataError`], [`sentiment::net::NetError`],
//! [`sentiment::train::SentimentTrainError`], [`sentiment::fuse::FuseError`],
//! [`sentiment::export::ExportError`], [`sentiment::eval::SentimentEvalError`] and
//! [`sentiment::calls::CallsError`]. The firmware's typed errors (`sangdam::…`) and IO, JSON,
//! candle, tract and libtorch errors are kept as sources, not turned into text (what the
//! firmware reports as a `String` stays the message): a message like `cannot read PATH`
//! says what failed and its [`source`](std::error::Error::source) says why, so
//! `sangdam-host`'s `error: ...` line (anyhow's `{:#}`) and [`error_chain`] print
//! `cannot read PATH: why`. Only the binary (and the unit test that holds
//! [`error_chain`] to it) uses `anyhow`.

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

/// An error and its causes on one line, `what failed: why: ...`, as `{:#}` of an
/// `anyhow::Error` prints them: the library's errors keep their causes as
/// [`source`](std::error::Error::source), out of their own message. The firmware's.
pub use sangdam::error::error_chain;

#[cfg(test)]
mod tests {
    /// A library error prints as the `anyhow` context chain it replaced: the message,
    /// then its cause, once.
    #[test]
    fn error_chain_reads_like_anyhow_context() {
        let missing = std::env::temp_dir().join("sangdam-host-no-such-dir/vocab.json");
        let e = crate::data::read_vocab(&missing).unwrap_err();
        let io = std::fs::read(&missing).unwrap_err();
        let want = format!("cannot read {}: {io}", missing.display());
        assert_eq!(super::error_chain(&e), want);
        assert_eq!(format!("{:#}", anyhow::Error::from(e)), want);
    }
}
