//! Audio input: recorded calls from WAV files, resampled to the 16 kHz the models use.
//!
//! - [`wav`]: a streaming RIFF/WAVE reader (PCM 8/16/24/32-bit, float 32/64-bit, G.711
//!   μ-law and A-law, WAVE_FORMAT_EXTENSIBLE) and a PCM16/float writer.
//! - [`Resampler`]: rubato's FFT resampler with its delay removed, so that 16 kHz sample
//!   `n` is at the time of input sample `n * in_rate / 16000`.
//! - [`CallFile`]: one recording checked (mono or two channels, a plausible rate) and
//!   streamed as 16 kHz per-channel blocks. Memory does not depend on the call's length,
//!   so a two-hour call costs what a two-minute one does.
//!
//! In a two-channel recording each channel is one side of the call, mapped to a
//! [`Speaker`] by the [`ChannelMap`] from the config.
//!
//! Errors never carry the path: the caller knows it and adds it once, so messages do not
//! repeat it.

pub mod config;
mod file;
mod resample;
pub mod wav;

use serde::{Deserialize, Serialize};

pub use config::AudioConfig;
pub use file::{CallFile, MAX_CALL_CHANNELS, MAX_CALL_RATE, MIN_CALL_RATE};
pub use resample::Resampler;
pub use wav::{SampleFormat, WavReader, WavSpec, WavWriter, WriteFormat};

/// The rate everything after the audio module works at.
pub const TARGET_RATE: u32 = 16_000;

/// Why a recording cannot be read. Each message is one line that says what is wrong and
/// what the technician can do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AudioError {
    #[error("the file does not exist: check the path and the file name")]
    NotFound,
    #[error("this is a directory, not a WAV file: give the recordings inside it")]
    IsDirectory,
    #[error("cannot read the file ({0}): check that it exists and that sangdam may read it")]
    Io(std::io::Error),
    #[error("cannot write the WAV file ({0}): check free disk space and write permission")]
    Write(std::io::Error),
    #[error("the file is empty (0 bytes): the recording was never written; check the recorder or copy the file again")]
    Empty,
    /// `0` says what the first bytes look like ("it looks like MP3").
    #[error("not a WAV file ({0}): the box reads WAV recordings; convert with: sox INPUT -b 16 -e signed-integer OUTPUT.wav")]
    NotWav(&'static str),
    /// `0` says where the file ends ("in the fmt chunk").
    #[error(
        "the WAV file is truncated {0}: the copy is incomplete; copy it again from the recorder"
    )]
    Truncated(&'static str),
    #[error("the WAV header is damaged: {0}; export the recording again or repair it with sox")]
    BadHeader(String),
    /// `0` is the chunk that is missing: "fmt" or "data".
    #[error("the WAV file has no {0} chunk: it is damaged or holds no audio; export the recording again")]
    MissingChunk(&'static str),
    #[error(
        "unsupported WAV encoding: format tag {tag} ({}), {bits} bits per sample; supported are PCM 8/16/24/32-bit, float 32/64-bit, G.711 mu-law and A-law; convert with: sox in.wav -b 16 -e signed-integer out.wav",
        wav::format_tag_name(*tag)
    )]
    Unsupported { tag: u16, bits: u16 },
    #[error("{0} channels: the box records mono or two channels (agent, customer); keep two with: sox in.wav out.wav remix 1 2 (or mix to mono with: sox in.wav out.wav remix -)")]
    TooManyChannels(u16),
    #[error("sample rate {0} Hz is outside 4000..=192000 Hz: the header is probably damaged; convert with: sox in.wav -r 16000 out.wav")]
    BadRate(u32),
    #[error("resampling failed: {0}")]
    Resample(String),
    /// A caller passed buffers that do not fit the stream: a bug, not a bad file.
    #[error("internal error in the audio module: {0}; please report this")]
    Misuse(String),
}

/// Which side of the call a channel carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Speaker {
    /// A mono recording: both sides mixed on one channel.
    Mono,
    Agent,
    Customer,
}

impl Speaker {
    /// The speaker of channel `ch` in a recording of `channels` channels. A mono file (or a
    /// channel the map does not name) is `Mono`: we cannot tell who speaks.
    pub fn of_channel(ch: u16, channels: u16, map: ChannelMap) -> Speaker {
        if channels < 2 {
            Speaker::Mono
        } else if ch == map.agent {
            Speaker::Agent
        } else if ch == map.customer {
            Speaker::Customer
        } else {
            Speaker::Mono
        }
    }
}

impl std::fmt::Display for Speaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Speaker::Mono => "mono",
            Speaker::Agent => "agent",
            Speaker::Customer => "customer",
        })
    }
}

/// Which channel (0-based) of a two-channel recording is which side of the call. PBXes
/// differ, so this is a config setting; the default is the common agent-left layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelMap {
    pub agent: u16,
    pub customer: u16,
}

impl Default for ChannelMap {
    fn default() -> Self {
        ChannelMap {
            agent: 0,
            customer: 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speaker_of_channel() {
        let map = ChannelMap::default();
        assert_eq!(Speaker::of_channel(0, 1, map), Speaker::Mono);
        assert_eq!(Speaker::of_channel(0, 2, map), Speaker::Agent);
        assert_eq!(Speaker::of_channel(1, 2, map), Speaker::Customer);
        let swapped = ChannelMap {
            agent: 1,
            customer: 0,
        };
        assert_eq!(Speaker::of_channel(0, 2, swapped), Speaker::Customer);
        assert_eq!(Speaker::of_channel(1, 2, swapped), Speaker::Agent);
    }

    #[test]
    fn speaker_names_serde_and_display_agree() {
        for (s, name) in [
            (Speaker::Mono, "mono"),
            (Speaker::Agent, "agent"),
            (Speaker::Customer, "customer"),
        ] {
            assert_eq!(s.to_string(), name);
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{name}\""));
            assert_eq!(
                serde_json::from_str::<Speaker>(&format!("\"{name}\"")).unwrap(),
                s
            );
        }
        assert!(serde_json::from_str::<Speaker>("\"Agent\"").is_err());
    }

    #[test]
    fn channel_map_default_and_unknown_fields() {
        assert_eq!(
            ChannelMap::default(),
            ChannelMap {
                agent: 0,
                customer: 1
            }
        );
        let m: ChannelMap = serde_json::from_str(r#"{"agent":1,"customer":0}"#).unwrap();
        assert_eq!(m.agent, 1);
        let e =
            serde_json::from_str::<ChannelMap>(r#"{"agent":1,"customer":0,"left":2}"#).unwrap_err();
        assert!(e.to_string().contains("left"), "{e}");
    }

    #[test]
    fn messages_are_one_line_and_say_what_to_do() {
        let errs = [
            AudioError::NotFound,
            AudioError::IsDirectory,
            AudioError::Io(std::io::Error::from(std::io::ErrorKind::PermissionDenied)),
            AudioError::Empty,
            AudioError::NotWav("it looks like MP3"),
            AudioError::Truncated("in the fmt chunk"),
            AudioError::BadHeader("0 channels".into()),
            AudioError::MissingChunk("data"),
            AudioError::Unsupported { tag: 2, bits: 4 },
            AudioError::TooManyChannels(4),
            AudioError::BadRate(2000),
        ];
        for e in errs {
            let m = e.to_string();
            assert!(!m.contains('\n'), "{m}");
            assert!(m.len() > 30, "{m}");
        }
        let m = AudioError::Unsupported { tag: 2, bits: 4 }.to_string();
        assert!(m.contains("format tag 2 (MS ADPCM), 4 bits"), "{m}");
        assert!(
            m.contains("sox in.wav -b 16 -e signed-integer out.wav"),
            "{m}"
        );
    }
}
