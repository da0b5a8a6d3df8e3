//! sangdam (상담): firmware for a desk-side call-centre recorder.
//!
//! The box listens to a phone line, cuts the audio into utterances, transcribes Korean
//! speech on the device with a wav2vec2 CTC model run by tract, and keeps calls and
//! transcripts in a local sled store.
//!
//! # Layout
//!
//! The core is IO-free: samples go in, events come out. Files, sound cards, the clock and
//! the store sit at the edges, behind types that have host stand-ins. The modules, in
//! the order data flows through them:
//!
//! - [`capture`]: audio sources (ALSA, cpal, a WAV replayed live, a generator) read by
//!   the real-time capture thread into a fixed-capacity ring.
//! - [`live`]: the line thread (calls found by off-hook line or voice, recorded to the
//!   spool) and the analysis thread (spool to store).
//! - [`audio`]: WAV files (streamed, any rate, any PCM width), resampling to 16 kHz,
//!   splitting stereo into agent and customer.
//! - [`vad`]: the voice-activity segmenter, `push(frame) -> Option<Utterance>`.
//! - [`asr`]: wav2vec2 feature normalisation, the tract engine, the vocabulary, CTC and
//!   beam decoding with the language model.
//! - [`hangul`]: syllable and jamo arithmetic, for the recogniser and the keyword
//!   stemmer alike.
//! - [`sentiment`]: the shared Korean tokenizer and the int8 text classifier.
//! - [`redact`]: personal numbers and addresses taken out of transcripts.
//! - [`pipeline`]: one recorded call from audio to stored transcript (what `sangdam
//!   analyze` runs for each file, and the analysis thread for each spooled call).
//! - [`record`]: what a call is: the call, utterance, live-call and day records.
//! - [`store`]: the sled trees that keep them, behind the journal, with a schema version.
//! - [`insights`]: keywords by sentiment, tree-ensemble drivers, recommendations, charts
//!   and the report page with its login.
//! - [`sync`]: day batches to the hub, store-and-forward, signed both ways.
//!
//! Around them:
//!
//! - [`daemon`]: `sangdam run`: the threads, the status snapshot, systemd's watchdog.
//! - [`app`]: the edge: builds the daemon's source, panel and sync task from the config.
//! - [`panel`]: the desk panel's LED, button and off-hook line (embedded-hal).
//! - [`config`]: the TOML file: assembles each module's settings section.
//! - [`models`]: `models/manifest.toml`, and the sha256 check of every shipped model.
//! - [`clock`]: the one clock abstraction: a `&dyn Clock` where the time is read, a
//!   value where it is only computed with.
//! - [`setting`]: the error every settings check returns (section and message).
//! - [`error`]: what every error type shares: printing one with its causes.
//! - [`secret`]: files holding keys and password hashes: resolved, refused when others
//!   may read them, never printed.
//! - [`bench`]: the benchmarks behind `sangdam bench`.

pub mod app;
pub mod asr;
pub mod audio;
pub mod bench;
pub mod capture;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod error;
pub mod hangul;
pub mod insights;
pub mod live;
pub mod models;
pub mod panel;
pub mod pipeline;
pub mod record;
pub mod redact;
pub mod secret;
pub mod sentiment;
pub mod setting;
pub mod store;
pub mod sync;
pub mod vad;
