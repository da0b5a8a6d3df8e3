//! One recorded call from file to stored transcript: what `sangdam analyze` does per file.
//!
//! read and resample (audio) → cut each channel into utterances (vad) → transcribe
//! (asr, on `workers` threads, `batch` utterances per run) → one atomic write (store).
//!
//! The call id is the content hash of the file, computed before any decoding, so a file
//! that is already stored costs one read and no recognition.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use sha2::{Digest, Sha256};

use crate::asr::{AsrEngine, AsrError, MIN_SAMPLES};
use crate::audio::{AudioError, CallFile, ChannelMap, Speaker};
use crate::sentiment::{CallSentiment, Scored, SentimentEngine, SentimentError};
use crate::store::{CallId, CallRecord, Inserted, Store, StoreError, UtteranceRecord};
use crate::vad::{Segmenter, Utterance, VadConfig};

/// Sample rate of everything after the resampler.
pub const RATE: u32 = 16_000;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PipelineError {
    #[error("{}: {source}", path.display())]
    Audio { path: PathBuf, source: AudioError },
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: speech recognition failed: {source}", path.display())]
    Asr { path: PathBuf, source: AsrError },
    #[error("{}: not stored: {source}", path.display())]
    Store { path: PathBuf, source: StoreError },
    #[error("{}: sentiment classification failed: {source}", path.display())]
    Sentiment {
        path: PathBuf,
        source: SentimentError,
    },
    #[error("{}: invalid voice-activity settings: {message}", path.display())]
    Vad { path: PathBuf, message: String },
}

/// What became of one file.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Analysed and durably stored.
    Stored {
        call: CallRecord,
        utterances: Vec<UtteranceRecord>,
    },
    /// The same content was stored before; nothing was recomputed.
    AlreadyStored { call: CallRecord },
}

impl Outcome {
    pub fn call(&self) -> &CallRecord {
        match self {
            Outcome::Stored { call, .. } | Outcome::AlreadyStored { call } => call,
        }
    }
}

/// Things the caller may want to show while a file is processed.
#[derive(Debug)]
pub enum Event<'a> {
    /// An utterance was transcribed (they arrive in completion order, not time order).
    Utterance {
        call: &'a CallId,
        utterance: &'a UtteranceRecord,
    },
    /// More audio (seconds of one channel's 16 kHz stream) was read.
    Audio { seconds: f64 },
}

/// Settings of the analysis, taken from the config.
#[derive(Debug, Clone)]
pub struct Settings {
    pub vad: VadConfig,
    pub channels: ChannelMap,
    /// Utterances per model run.
    pub batch: usize,
    /// Recognition threads.
    pub workers: usize,
    /// Label of the ASR model stored with each call.
    pub model_label: String,
    /// The sentiment model and its label; `None` stores calls without sentiment.
    pub sentiment: Option<(SentimentEngine, String)>,
    /// Replace personal data in transcripts ([`crate::redact`]) before anything else
    /// sees them, the store included.
    pub redact: bool,
}

/// The id of a live call: its audio's hash (or nothing, when the audio was discarded)
/// mixed with where and when it was recorded.
pub fn live_call_id(audio: &[u8], live: &crate::store::LiveCall) -> CallId {
    let mut h = Sha256::new();
    h.update(b"sangdam live call\0");
    h.update(audio);
    h.update(live.line.as_bytes());
    h.update(live.started_at.to_be_bytes());
    h.update(live.seq.to_be_bytes());
    CallId::from_digest(&h.finalize())
}

/// Content hash of a file, as a call id.
pub fn call_id_of(path: &Path) -> Result<CallId, PipelineError> {
    let read_err = |source| PipelineError::Read {
        path: path.to_owned(),
        source,
    };
    let mut f = std::fs::File::open(path).map_err(read_err)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f.read(&mut buf).map_err(read_err)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(CallId::from_digest(&h.finalize()))
}

/// Analyses one file and stores it. `now` is the unix time recorded as `analysed_at`.
pub fn analyze_file(
    path: &Path,
    engine: &AsrEngine,
    store: &Store,
    settings: &Settings,
    now: u64,
    on_event: &mut dyn FnMut(Event<'_>),
) -> Result<Outcome, PipelineError> {
    analyze_call(path, engine, store, settings, now, None, on_event)
}

/// [`analyze_file`] for a call the daemon recorded: `live` says when and how it came.
pub fn analyze_call(
    path: &Path,
    engine: &AsrEngine,
    store: &Store,
    settings: &Settings,
    now: u64,
    live: Option<crate::store::LiveCall>,
    on_event: &mut dyn FnMut(Event<'_>),
) -> Result<Outcome, PipelineError> {
    // Open the audio first: a file that is not audio should say so, not "already stored".
    let mut file = CallFile::open(path).map_err(|source| PipelineError::Audio {
        path: path.to_owned(),
        source,
    })?;
    let mut id = call_id_of(path)?;
    if let Some(l) = &live {
        // Two live calls can hold the same audio (two silent calls, a test signal): the
        // line, time and spool number keep their ids apart.
        id = live_call_id(&id.0, l);
    }
    let store_err = |source| PipelineError::Store {
        path: path.to_owned(),
        source,
    };
    if let Some(call) = store.call(&id).map_err(store_err)? {
        return Ok(Outcome::AlreadyStored { call });
    }
    let spec = file.spec().clone();
    let n_channels = spec.channels as usize;
    let mut segmenters = (0..n_channels)
        .map(|_| Segmenter::new(settings.vad.clone()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PipelineError::Vad {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
    let frame_len = segmenters[0].frame_len();
    let workers = settings.workers.max(1);
    let batch = settings.batch.max(1);

    let mut utterances: Vec<UtteranceRecord> = Vec::new();
    let mut first_error: Option<PipelineError> = None;
    let mut total_samples = 0u64;

    std::thread::scope(|scope| {
        // Bounded: if recognition is slower than reading, reading waits, so memory stays
        // bounded by (workers + queue) utterances whatever the file length.
        let (job_tx, job_rx) = mpsc::sync_channel::<(u16, Utterance)>(workers * batch * 2);
        let job_rx = std::sync::Arc::new(std::sync::Mutex::new(job_rx));
        let (res_tx, res_rx) = mpsc::channel::<Result<UtteranceRecord, AsrError>>();
        for _ in 0..workers {
            let job_rx = job_rx.clone();
            let res_tx = res_tx.clone();
            let engine = engine.clone();
            let spec_channels = spec.channels;
            let map = settings.channels;
            let redact = settings.redact;
            scope.spawn(move || loop {
                let jobs = {
                    let Ok(rx) = job_rx.lock() else { return };
                    let mut jobs = match rx.recv() {
                        Ok(j) => vec![j],
                        Err(_) => return,
                    };
                    while jobs.len() < batch {
                        match rx.try_recv() {
                            Ok(j) => jobs.push(j),
                            Err(_) => break,
                        }
                    }
                    jobs
                };
                let audio: Vec<&[f32]> = jobs.iter().map(|(_, u)| u.samples.as_slice()).collect();
                let result = engine.transcribe_batch(&audio);
                match result {
                    Ok(texts) => {
                        for ((ch, u), t) in jobs.iter().zip(texts) {
                            let rec = UtteranceRecord {
                                channel: *ch,
                                speaker: Speaker::of_channel(*ch, spec_channels, map),
                                start_s: u.start_secs(),
                                end_s: u.end_secs(),
                                text: if redact {
                                    crate::redact::redact(&t.text).text
                                } else {
                                    t.text
                                },
                                sentiment: None,
                            };
                            if res_tx.send(Ok(rec)).is_err() {
                                return;
                            }
                        }
                    }
                    Err(e) => {
                        let _ = res_tx.send(Err(e));
                    }
                }
            });
        }
        drop(res_tx);

        let mut pending = 0usize;
        let collect = |pending: &mut usize,
                       block: bool,
                       utterances: &mut Vec<UtteranceRecord>,
                       first_error: &mut Option<PipelineError>,
                       on_event: &mut dyn FnMut(Event<'_>)| {
            while *pending > 0 {
                let r = if block {
                    match res_rx.recv() {
                        Ok(r) => r,
                        Err(_) => break,
                    }
                } else {
                    match res_rx.try_recv() {
                        Ok(r) => r,
                        Err(_) => break,
                    }
                };
                *pending -= 1;
                match r {
                    Ok(rec) => {
                        on_event(Event::Utterance {
                            call: &id,
                            utterance: &rec,
                        });
                        utterances.push(rec);
                    }
                    Err(source) => {
                        first_error.get_or_insert(PipelineError::Asr {
                            path: path.to_owned(),
                            source,
                        });
                    }
                }
            }
        };

        let submit = |ch: usize, u: Utterance, pending: &mut usize| {
            if u.samples.len() >= MIN_SAMPLES && job_tx.send((ch as u16, u)).is_ok() {
                *pending += 1;
            }
        };

        let mut carry: Vec<Vec<f32>> = vec![Vec::with_capacity(frame_len * 2); n_channels];
        loop {
            let block = match file.next_block() {
                Ok(Some(b)) => b,
                Ok(None) => break,
                Err(source) => {
                    first_error = Some(PipelineError::Audio {
                        path: path.to_owned(),
                        source,
                    });
                    break;
                }
            };
            let block_len = block.first().map_or(0, Vec::len);
            total_samples += block_len as u64;
            for (ch, samples) in block.iter().enumerate() {
                let buf = &mut carry[ch];
                buf.extend_from_slice(samples);
                let mut start = 0;
                while buf.len() - start >= frame_len {
                    if let Some(u) = segmenters[ch].push(&buf[start..start + frame_len]) {
                        submit(ch, u, &mut pending);
                    }
                    start += frame_len;
                }
                buf.drain(..start);
            }
            on_event(Event::Audio {
                seconds: block_len as f64 / RATE as f64,
            });
            collect(
                &mut pending,
                false,
                &mut utterances,
                &mut first_error,
                on_event,
            );
        }
        if first_error.is_none() {
            for (ch, seg) in segmenters.iter_mut().enumerate() {
                if !carry[ch].is_empty() {
                    if let Some(u) = seg.push(&carry[ch]) {
                        submit(ch, u, &mut pending);
                    }
                }
                while let Some(u) = seg.finish() {
                    submit(ch, u, &mut pending);
                }
            }
        }
        drop(job_tx);
        collect(
            &mut pending,
            true,
            &mut utterances,
            &mut first_error,
            on_event,
        );
    });

    if let Some(e) = first_error {
        return Err(e);
    }
    utterances.sort_by(|a, b| {
        a.start_s
            .total_cmp(&b.start_s)
            .then(a.channel.cmp(&b.channel))
    });
    let duration_s = total_samples as f64 / RATE as f64;
    let sentiment = match &settings.sentiment {
        Some((engine, label)) => Some(
            classify_utterances(engine, label, duration_s, &mut utterances).map_err(|source| {
                PipelineError::Sentiment {
                    path: path.to_owned(),
                    source,
                }
            })?,
        ),
        None => None,
    };
    let call = CallRecord {
        id,
        source: path.display().to_string(),
        duration_s,
        sample_rate: spec.sample_rate,
        channels: spec.channels,
        analysed_at: now,
        utterance_count: utterances.len() as u32,
        asr_model: settings.model_label.clone(),
        sentiment,
        talk: Some(crate::vad::talk::talk_stats(&utterances, duration_s)),
        live,
    };
    match store.insert_call(&call, &utterances).map_err(store_err)? {
        Inserted::New => Ok(Outcome::Stored { call, utterances }),
        // Another process stored the same content meanwhile: report the stored one.
        Inserted::AlreadyPresent => {
            let call = store.call(&id).map_err(store_err)?.unwrap_or(call);
            Ok(Outcome::AlreadyStored { call })
        }
    }
}

/// Labels every utterance (in batches of 32) and summarises the call.
pub fn classify_utterances(
    engine: &SentimentEngine,
    model_label: &str,
    duration_s: f64,
    utterances: &mut [UtteranceRecord],
) -> Result<CallSentiment, SentimentError> {
    for chunk in utterances.chunks_mut(32) {
        let texts: Vec<&str> = chunk.iter().map(|u| u.text.as_str()).collect();
        let labels = engine.classify_batch(&texts)?;
        for (u, s) in chunk.iter_mut().zip(labels) {
            u.sentiment = Some(s);
        }
    }
    let scored: Vec<Scored> = utterances
        .iter()
        .filter_map(|u| {
            u.sentiment.map(|sentiment| Scored {
                speaker: u.speaker,
                start_s: u.start_s,
                end_s: u.end_s,
                sentiment,
            })
        })
        .collect();
    Ok(CallSentiment::summarize(model_label, duration_s, &scored))
}

/// Expands the command line's paths: files as given, folders into their `.wav` files
/// (recursively, sorted, so a run is repeatable).
pub fn expand_inputs(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut found = Vec::new();
            collect_wavs(p, &mut found);
            found.sort();
            out.extend(found);
        } else {
            out.push(p.clone());
        }
    }
    out
}

fn collect_wavs(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        out.push(dir.to_owned());
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect_wavs(&p, out);
        } else if p.extension().is_some_and(|x| x.eq_ignore_ascii_case("wav")) {
            out.push(p);
        }
    }
}
