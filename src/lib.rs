//! sangdam (상담): firmware for a desk-side call-centre recorder.
//!
//! The box listens to a phone line, cuts the audio into utterances, transcribes Korean
//! speech on the device with a wav2vec2 CTC model run by tract, and keeps calls and
//! transcripts in a local sled store.
//!
//! # Layout
//!
//! The core is IO-free: samples go in, events come out. Files, sound cards, the clock and
//! the store sit at the edges, behind types that have host stand-ins.
//!
//! - [`audio`]: reading WAV files (streamed, any rate, any PCM width), resampling to 16 kHz,
//!   splitting stereo into agent and customer channels.
//! - [`vad`]: the voice-activity segmenter, `push(frame) -> Option<Utterance>`.
//! - [`asr`]: wav2vec2 feature normalisation, the tract engine, the vocabulary and the CTC
//!   decoder.
//! - [`store`]: sled trees for calls, utterances and per-day counters, with a schema version.
//! - [`models`]: `models/manifest.toml`, and the sha256 check of every shipped model.
//! - [`config`]: the TOML configuration with documented defaults.
//! - [`pipeline`]: one recorded call from file to stored transcript; what `sangdam analyze`
//!   runs for each file.
//! - [`insights`]: keywords by sentiment, tree-ensemble drivers, recommendations, charts
//!   and the report page.
//! - [`bench`]: the inference benchmark behind `sangdam bench`.

pub mod asr;
pub mod audio;
pub mod bench;
pub mod capture;
pub mod config;
pub mod daemon;
pub mod insights;
pub mod live;
pub mod models;
pub mod panel;
pub mod pipeline;
pub mod record;
pub mod redact;
pub mod sentiment;
pub mod store;
pub mod sync;
pub mod vad;
