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
//!
//! Training, ONNX export, quantization and evaluation are the next pieces of the
//! host-tool work.

pub mod corpus;
pub mod ctc;
pub mod model;
