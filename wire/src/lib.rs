//! What a sangdam box sends to its hub, byte for byte.
//!
//! # Frame
//!
//! ```text
//! [version: u8 = 3] [postcard(Batch)]
//! ```
//!
//! The version byte comes first so that a hub can refuse a frame it does not understand
//! before decoding anything (a box updated ahead of its hub, or garbage). The postcard
//! payload is a [`Batch`]: a [`Header`] that identifies the device, its sequence number and
//! the period, and the [`Report`] for that period. Nothing else may follow the payload.
//!
//! # Versions
//!
//! | version | what changed |
//! |---------|--------------|
//! | 1 | the first layout |
//! | 2 | [`Counters`] ends with `neutral_calls` and `neutral_utterances` (the neutral sentiment class); the [`Ack`] ends with `body_sha256` and `mac`: it is signed (see Acknowledgement). Version 2 was not yet released when the signature was added, so no unsigned version-2 Ack was ever sent |
//! | 3 | the [`Batch`] is laid out as in version 2; the hub's answer is an [`Answer`]: a variant byte (0 an [`Ack`], 1 a [`Conflict`]) before the Ack or the Conflict. A box that sends version 3 understands conflict answers (see Conflict) |
//!
//! This crate writes version [`WIRE_VERSION`] and reads every version from
//! [`OLDEST_WIRE_VERSION`] on: postcard is not self-describing, so an older frame is
//! decoded with that version's own layout (module `v1`) and converted, the fields it
//! lacks set to 0 (a version-1 box knew no neutral class). Hubs must be updated before
//! boxes: a box writes the newest version only, and a hub refuses versions it does not
//! know (`400`, the box keeps the batch and retries later). The hub answers in the
//! version of the batch it acknowledges ([`Ack::encode_as`]), so boxes that are not yet
//! updated can read the answer: a version-1 box gets the unsigned version-1 [`Ack`] and
//! does not verify it (upgrade boxes to get the protection below).
//!
//! # Authentication
//!
//! The HTTP body is the frame; the header [`SIGNATURE_HEADER`] carries the lowercase hex
//! HMAC-SHA256 of the whole body under the device's key, and [`DEVICE_HEADER`] the device
//! id, so that the hub can find the key before decoding. The device id inside the signed
//! frame must equal the header's.
//!
//! # Acknowledgement
//!
//! The hub answers a stored batch with `200` and an [`Ack`] frame; a batch whose sequence
//! number it stored before with `409` and an [`Ack`] with `duplicate` set (the box may drop
//! it: it is safe at the hub). Anything else is not an acknowledgement.
//!
//! # Conflict
//!
//! A sequence number the hub stored before with *another* batch (a box whose store was
//! rebuilt, or that was re-imaged with the same key, starts again at 1) is not a
//! duplicate: the box's batch is new and must not be dropped. The hub answers a
//! version-3 batch with `409` and a signed [`Conflict`] naming the next sequence number
//! free for that device; the box checks it ([`Conflict::check`]), renumbers its outbox
//! from there and sends again. A box of an older version cannot read a Conflict and would
//! drop its batch on a duplicate Ack, so the hub answers it `409` with a plain-text body
//! that is no frame (it starts with a letter, never with a version byte): the box treats
//! it as a failed send and keeps the batch until it is updated.
//!
//! A version-2 [`Ack`] is signed by the hub with HMAC-SHA256 under the device's key, over
//! a domain-separation tag ([`ACK_MAC_TAG`]), the device id, the sequence number, the
//! SHA-256 of the body the hub received, the duplicate flag and the hub's clock. A box
//! deletes a batch only after [`Ack::check`] passes: an answer that is unsigned, signed
//! with another key, or for another sequence number or body is a failed send (anyone on
//! the path could otherwise make a box drop its batches by answering `200`). The box
//! takes the Ack's `hub_unix` as a good time only near its own clock (see the box's sync
//! module), so a wrong hub clock cannot stop it from building batches.
//!
//! Numbers in the golden-bytes tests pin this layout; changing a field means a new
//! [`WIRE_VERSION`].

pub mod day;
pub mod headers;

pub use day::{Day, TimeZone};

/// Unix seconds by this machine's clock (0 if the clock is set before 1970): the one
/// wall clock of the box and the hub.
pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// The layout version this crate writes.
pub const WIRE_VERSION: u8 = 3;
/// The first version whose boxes read a [`Conflict`] answer.
pub const CONFLICT_WIRE_VERSION: u8 = 3;
/// The oldest layout version this crate still reads (see the table above).
pub const OLDEST_WIRE_VERSION: u8 = 1;
/// Version of the report's content (what the fields mean), carried in the header.
pub const SCHEMA_VERSION: u16 = 1;
/// The largest body a hub accepts and a box builds. A day's aggregates are a few KiB;
/// transcripts, when enabled, are trimmed to fit.
pub const MAX_BODY_BYTES: usize = 512 * 1024;
/// Longest device id (bytes).
pub const MAX_DEVICE_ID: usize = 64;

/// HTTP header with the device id.
pub const DEVICE_HEADER: &str = "X-Sangdam-Device";
/// HTTP header with the hex HMAC-SHA256 of the body.
pub const SIGNATURE_HEADER: &str = "X-Sangdam-Signature";
/// The path batches are posted to.
pub const BATCH_PATH: &str = "/v1/batches";

/// One upload: who sent it and the aggregates of one period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    pub header: Header,
    pub report: Report,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// The box's id from its config (`sync.device_id`).
    pub device: String,
    /// Monotonic per device, starting at 1; never reused, also across restarts.
    pub seq: u64,
    pub period: Period,
    /// [`SCHEMA_VERSION`] of the box that built it.
    pub schema: u16,
    /// The box's clock when the batch was built (unix seconds). A Pi has no real-time
    /// clock: before NTP answers this may be 1970 or a stale date.
    pub created_unix: u64,
    /// The newest time the box trusted (unix seconds): the last time its clock was
    /// synchronised, or the newest timestamp it has seen from the hub. 0 if never.
    pub last_good_unix: u64,
}

/// A run of whole days, cut in the box's time zone (`store.time_zone`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Period {
    /// The first day (on the wire: days since 1970-01-01, as before [`Day`] existed).
    pub first_day: Day,
    /// Number of days, at least 1. Merged periods span several.
    pub days: u16,
}

impl Period {
    pub fn day(day: Day) -> Period {
        Period {
            first_day: day,
            days: 1,
        }
    }

    /// The day after the last one.
    pub fn end_day(&self) -> Day {
        self.first_day.plus(u32::from(self.days))
    }
}

/// The aggregates of one period. Never raw audio; transcripts only when the box's config
/// allows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub counters: Counters,
    /// Calls by the customer's mean positive probability, in ten bins of 0.1.
    pub sentiment_histogram: [u32; 10],
    /// Keywords over-represented in negative calls (what customers complain about).
    pub complaints: Vec<Keyword>,
    /// Keywords over-represented in positive calls (what they praise).
    pub praise: Vec<Keyword>,
    /// Keywords that drive satisfaction by the tree ensemble's importance.
    pub drivers: Vec<Driver>,
    pub recommendations: Vec<Recommendation>,
    /// Redacted transcripts, only if `sync.transcripts` is on.
    pub transcripts: Vec<Transcript>,
    /// How many single periods were merged into this one because the outbox was full.
    pub merged: u32,
    /// Batches that could not be merged and were lost, counted at the box so the hub can
    /// show it (normally 0).
    pub lost: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counters {
    pub calls: u64,
    pub utterances: u64,
    /// Audio analysed, milliseconds.
    pub audio_ms: u64,
    /// Calls by overall sentiment; calls without sentiment count in none of the three.
    pub positive_calls: u64,
    pub negative_calls: u64,
    /// Utterances by label; empty texts count in none of the three.
    pub positive_utterances: u64,
    pub negative_utterances: u64,
    /// Calls whose raw audio was discarded before recognition (the spool was full).
    pub audio_dropped: u64,
    /// Calls marked for review at the desk.
    pub marked: u64,
    /// Calls judged neutral: no utterance of the speaker who decides the call was polar
    /// (its model's p(positive) lay inside the model's neutral band). Version 2; 0 in a
    /// version-1 frame.
    pub neutral_calls: u64,
    /// Utterances labelled neutral. Version 2; 0 in a version-1 frame.
    pub neutral_utterances: u64,
}

impl Counters {
    pub fn add(&mut self, o: &Counters) {
        self.calls += o.calls;
        self.utterances += o.utterances;
        self.audio_ms += o.audio_ms;
        self.positive_calls += o.positive_calls;
        self.negative_calls += o.negative_calls;
        self.positive_utterances += o.positive_utterances;
        self.negative_utterances += o.negative_utterances;
        self.audio_dropped += o.audio_dropped;
        self.marked += o.marked;
        self.neutral_calls += o.neutral_calls;
        self.neutral_utterances += o.neutral_utterances;
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Keyword {
    pub term: String,
    /// Calls of that sentiment that contain it.
    pub calls: u32,
    /// The log-odds z-score of its over-representation.
    pub z: f32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Driver {
    pub term: String,
    /// Share of the ensemble's total gain, 0..=1.
    pub share: f32,
    /// +1 when calls with the term are more often positive, -1 when more often negative.
    pub direction: i8,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recommendation {
    /// 1 is the most urgent.
    pub priority: u8,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transcript {
    pub call: [u8; 16],
    pub started_unix: u64,
    /// (speaker: 0 mono, 1 agent, 2 customer; redacted text)
    pub lines: Vec<(u8, String)>,
}

/// The hub's answer to an accepted or duplicate batch.
///
/// From version 2 it is signed: `mac` is the HMAC-SHA256, under the device's key, of
/// [`ACK_MAC_TAG`], the device id (length byte, then its bytes), `seq` (8 bytes
/// big-endian), `body_sha256`, `duplicate` (one byte, 0 or 1) and `hub_unix` (8 bytes
/// big-endian); `body_sha256` is the SHA-256 of the HTTP body the hub received. A box
/// checks it with [`Ack::check`] before it deletes anything. A version-1 frame carries
/// neither (both read as zeros): a version-1 box cannot tell the hub from anyone else on
/// the path that answers `200`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    pub device: String,
    pub seq: u64,
    /// The sequence number was stored before; this copy was not stored again.
    pub duplicate: bool,
    /// The hub's clock (unix seconds), which the box may keep as its last good time.
    pub hub_unix: u64,
    /// SHA-256 of the batch body the hub received. Version 2; zeros in a version-1 frame.
    pub body_sha256: [u8; 32],
    /// HMAC-SHA256 of the fields above (see the type's docs). Version 2; zeros in a
    /// version-1 frame.
    pub mac: [u8; 32],
}

/// Domain separation for the Ack's MAC: no batch body starts with these bytes (a
/// batch starts with its version byte, 1 or 2), so a signature over a batch is never a
/// valid Ack signature and the other way round.
pub const ACK_MAC_TAG: &[u8] = b"sangdam-ack-v2\0";

/// Domain separation for the [`Conflict`]'s MAC, distinct from [`ACK_MAC_TAG`] and from
/// every batch body (those start with a version byte): a signed Ack is never a valid
/// Conflict, nor the other way round.
pub const CONFLICT_MAC_TAG: &[u8] = b"sangdam-conflict-v3\0";

/// The hub's answer to a batch whose (device, seq) it stored before with a different
/// batch (version 3 on; see the crate's Conflict section).
///
/// `mac` is the HMAC-SHA256, under the device's key, of [`CONFLICT_MAC_TAG`], the device
/// id (length byte, then its bytes), `seq` (8 bytes big-endian), `body_sha256` (of the
/// HTTP body the hub received) and `next_seq` (8 bytes big-endian). A box acts on it only
/// after [`Conflict::check`] passes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    pub device: String,
    /// The sequence number the box sent, which the hub holds with another batch.
    pub seq: u64,
    /// SHA-256 of the batch body the hub received (the box's, not the stored one).
    pub body_sha256: [u8; 32],
    /// The first sequence number free for this device at the hub: its highest stored
    /// sequence number + 1, so always above `seq`.
    pub next_seq: u64,
    pub mac: [u8; 32],
}

/// What the hub answers to a version-3 batch: the frame `[3] [postcard(Answer)]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub enum Answer {
    Ack(Ack),
    Conflict(Conflict),
}

/// [`Answer`] by reference, for encoding (the same variant order, so the same bytes).
#[derive(Serialize)]
enum AnswerRef<'a> {
    Ack(&'a Ack),
    Conflict(&'a Conflict),
}

/// Why a box does not accept an answer as the hub's acknowledgement of its batch. The
/// messages say what the box does (keeps the batch) and what to check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AckError {
    #[error("hub answer not signed (a wire version {0} answer to a batch of a newer version): check sync.hub_url points at the hub, and that the hub is updated; the batch is kept")]
    Unsigned(u8),
    #[error("hub answer not signed with this box's key: check sync.hub_url points at the hub (and sync.key is the hub's key for this box); the batch is kept")]
    BadSignature,
    #[error("the hub's answer acknowledges {device}#{seq}, not this box's batch {expected}: check sync.hub_url; the batch is kept")]
    OtherBatch {
        device: String,
        seq: u64,
        expected: u64,
    },
    #[error("the hub's answer acknowledges batch {0} with a different body than the one sent: the batch is kept and sent again")]
    OtherBody(u64),
    #[error("the hub's conflict answer for batch {seq} names {next_seq} as the next free sequence number, which is not above it: check sync.hub_url; the batch is kept")]
    BadNextSeq { seq: u64, next_seq: u64 },
}

/// SHA-256 of a body, as signed in an [`Ack`].
pub fn body_digest(body: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    Sha256::digest(body).into()
}

fn ack_mac(
    key: &[u8],
    device: &str,
    seq: u64,
    digest: &[u8; 32],
    duplicate: bool,
    hub_unix: u64,
) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(ACK_MAC_TAG);
    // Device ids are at most 64 bytes (checked when batches are decoded); a longer one
    // is cut in the length byte only, and still fed whole.
    mac.update(&[device.len().min(255) as u8]);
    mac.update(device.as_bytes());
    mac.update(&seq.to_be_bytes());
    mac.update(digest);
    mac.update(&[u8::from(duplicate)]);
    mac.update(&hub_unix.to_be_bytes());
    mac
}

fn conflict_mac(
    key: &[u8],
    device: &str,
    seq: u64,
    digest: &[u8; 32],
    next_seq: u64,
) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(CONFLICT_MAC_TAG);
    mac.update(&[device.len().min(255) as u8]);
    mac.update(device.as_bytes());
    mac.update(&seq.to_be_bytes());
    mac.update(digest);
    mac.update(&next_seq.to_be_bytes());
    mac
}

/// Why bytes are not a batch. Messages name the problem and who must act.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    #[error("empty body: expected a sangdam batch (version byte, then postcard)")]
    Empty,
    #[error("wire version {0} is not understood (this side reads versions {OLDEST_WIRE_VERSION} to {WIRE_VERSION}): update the hub or the box so both speak the same version (update hubs first)")]
    UnknownVersion(u8),
    #[error("body of {0} bytes is larger than the {MAX_BODY_BYTES}-byte limit")]
    TooLarge(usize),
    #[error("malformed batch: {0}")]
    Malformed(String),
    #[error("{0} bytes follow the batch: the body is not one batch")]
    Trailing(usize),
    #[error("invalid batch: {0}")]
    BadHeader(&'static str),
    #[error("cannot encode the batch: {0}")]
    Encode(String),
}

fn encode_frame<T: Serialize>(version: u8, value: &T) -> Result<Vec<u8>, WireError> {
    let mut out = vec![version];
    let body = postcard::to_stdvec(value).map_err(|e| WireError::Encode(e.to_string()))?;
    out.extend_from_slice(&body);
    if out.len() > MAX_BODY_BYTES {
        return Err(WireError::TooLarge(out.len()));
    }
    Ok(out)
}

/// The version byte of a frame this side reads, and the payload after it.
fn split_frame(bytes: &[u8]) -> Result<(u8, &[u8]), WireError> {
    let (&version, rest) = bytes.split_first().ok_or(WireError::Empty)?;
    if !(OLDEST_WIRE_VERSION..=WIRE_VERSION).contains(&version) {
        return Err(WireError::UnknownVersion(version));
    }
    if bytes.len() > MAX_BODY_BYTES {
        return Err(WireError::TooLarge(bytes.len()));
    }
    Ok((version, rest))
}

/// One postcard value that must fill `rest` exactly.
fn decode_payload<'a, T: Deserialize<'a>>(rest: &'a [u8]) -> Result<T, WireError> {
    let (value, tail) =
        postcard::take_from_bytes(rest).map_err(|e| WireError::Malformed(e.to_string()))?;
    if !tail.is_empty() {
        return Err(WireError::Trailing(tail.len()));
    }
    Ok(value)
}

impl Batch {
    /// The frame in version [`WIRE_VERSION`]: version byte and postcard. Fails only when
    /// it exceeds the size limit or the header is invalid.
    pub fn encode(&self) -> Result<Vec<u8>, WireError> {
        self.header.check()?;
        self.report.check()?;
        encode_frame(WIRE_VERSION, self)
    }

    /// Reads a frame of any version this side knows, refusing others, trailing bytes,
    /// invalid headers and numbers that are not finite. Fields an older version lacks
    /// are 0.
    pub fn decode(bytes: &[u8]) -> Result<Batch, WireError> {
        Self::decode_versioned(bytes).map(|(b, _)| b)
    }

    /// [`Batch::decode`], also returning the frame's wire version.
    pub fn decode_versioned(bytes: &[u8]) -> Result<(Batch, u8), WireError> {
        let (version, rest) = split_frame(bytes)?;
        let b: Batch = match version {
            1 => decode_payload::<v1::Batch>(rest)?.into(),
            _ => decode_payload(rest)?,
        };
        b.header.check()?;
        b.report.check()?;
        Ok((b, version))
    }
}

/// The version-1 layout, kept to read frames of boxes not yet updated (and batches a
/// hub stored before). Only what differs is spelled out again: a version-1 [`Report`]
/// has version-1 [`Counters`].
mod v1 {
    use serde::{Deserialize, Serialize};

    use super::{Driver, Header, Keyword, Recommendation, Transcript};

    /// A version-1 acknowledgement: unsigned.
    #[derive(Serialize, Deserialize)]
    pub struct Ack {
        pub device: String,
        pub seq: u64,
        pub duplicate: bool,
        pub hub_unix: u64,
    }

    #[derive(Deserialize)]
    pub struct Batch {
        header: Header,
        report: Report,
    }

    #[derive(Deserialize)]
    struct Report {
        counters: Counters,
        sentiment_histogram: [u32; 10],
        complaints: Vec<Keyword>,
        praise: Vec<Keyword>,
        drivers: Vec<Driver>,
        recommendations: Vec<Recommendation>,
        transcripts: Vec<Transcript>,
        merged: u32,
        lost: u32,
    }

    #[derive(Deserialize)]
    struct Counters {
        calls: u64,
        utterances: u64,
        audio_ms: u64,
        positive_calls: u64,
        negative_calls: u64,
        positive_utterances: u64,
        negative_utterances: u64,
        audio_dropped: u64,
        marked: u64,
    }

    impl From<Batch> for super::Batch {
        fn from(b: Batch) -> super::Batch {
            let r = b.report;
            let c = r.counters;
            super::Batch {
                header: b.header,
                report: super::Report {
                    counters: super::Counters {
                        calls: c.calls,
                        utterances: c.utterances,
                        audio_ms: c.audio_ms,
                        positive_calls: c.positive_calls,
                        negative_calls: c.negative_calls,
                        positive_utterances: c.positive_utterances,
                        negative_utterances: c.negative_utterances,
                        audio_dropped: c.audio_dropped,
                        marked: c.marked,
                        neutral_calls: 0,
                        neutral_utterances: 0,
                    },
                    sentiment_histogram: r.sentiment_histogram,
                    complaints: r.complaints,
                    praise: r.praise,
                    drivers: r.drivers,
                    recommendations: r.recommendations,
                    transcripts: r.transcripts,
                    merged: r.merged,
                    lost: r.lost,
                },
            }
        }
    }
}

impl Header {
    fn check(&self) -> Result<(), WireError> {
        if self.device.is_empty() || self.device.len() > MAX_DEVICE_ID {
            return Err(WireError::BadHeader("device id must be 1 to 64 bytes"));
        }
        if !valid_device_id(&self.device) {
            return Err(WireError::BadHeader(
                "device id may hold only ASCII letters, digits, '-', '_' and '.'",
            ));
        }
        if self.seq == 0 {
            return Err(WireError::BadHeader("sequence numbers start at 1"));
        }
        if self.period.days == 0 {
            return Err(WireError::BadHeader("a period spans at least one day"));
        }
        Ok(())
    }
}

impl Report {
    /// Scores must be finite: a NaN would poison every sum and sort at the hub (found by
    /// the `wire` fuzz target).
    fn check(&self) -> Result<(), WireError> {
        let finite = self
            .complaints
            .iter()
            .chain(&self.praise)
            .all(|k| k.z.is_finite())
            && self.drivers.iter().all(|d| d.share.is_finite());
        if finite {
            Ok(())
        } else {
            Err(WireError::BadHeader(
                "a keyword score or driver share is not a finite number",
            ))
        }
    }
}

/// Device ids are used as keys and in HTTP headers: short, printable ASCII.
pub fn valid_device_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_DEVICE_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

impl Ack {
    /// The hub's signed answer to `body` (the HTTP body it received) from `device`.
    pub fn signed(
        key: &[u8],
        device: &str,
        seq: u64,
        body: &[u8],
        duplicate: bool,
        hub_unix: u64,
    ) -> Ack {
        let body_sha256 = body_digest(body);
        let mac = ack_mac(key, device, seq, &body_sha256, duplicate, hub_unix)
            .finalize()
            .into_bytes()
            .into();
        Ack {
            device: device.to_owned(),
            seq,
            duplicate,
            hub_unix,
            body_sha256,
            mac,
        }
    }

    /// The frame in version [`WIRE_VERSION`].
    pub fn encode(&self) -> Result<Vec<u8>, WireError> {
        self.encode_as(WIRE_VERSION)
    }

    /// The frame in `version` (any this side knows), so that a hub answers a box in the
    /// version the box sent. Version 1 leaves out the digest and the MAC; version 3 puts
    /// the Ack in an [`Answer`] (one variant byte, 0, before the version-2 layout).
    pub fn encode_as(&self, version: u8) -> Result<Vec<u8>, WireError> {
        match version {
            1 => encode_frame(
                1,
                &v1::Ack {
                    device: self.device.clone(),
                    seq: self.seq,
                    duplicate: self.duplicate,
                    hub_unix: self.hub_unix,
                },
            ),
            2 => encode_frame(version, self),
            3 => encode_frame(version, &AnswerRef::Ack(self)),
            _ => Err(WireError::UnknownVersion(version)),
        }
    }

    /// Reads an `Ack` frame of any version this side knows (a version-1 frame with the
    /// digest and MAC zero). Decoding checks no signature: see [`Ack::check`].
    pub fn decode(bytes: &[u8]) -> Result<Ack, WireError> {
        Self::decode_versioned(bytes).map(|(a, _)| a)
    }

    /// [`Ack::decode`], also returning the frame's wire version.
    pub fn decode_versioned(bytes: &[u8]) -> Result<(Ack, u8), WireError> {
        let (version, rest) = split_frame(bytes)?;
        let ack = match version {
            1 => {
                let a: v1::Ack = decode_payload(rest)?;
                Ack {
                    device: a.device,
                    seq: a.seq,
                    duplicate: a.duplicate,
                    hub_unix: a.hub_unix,
                    body_sha256: [0; 32],
                    mac: [0; 32],
                }
            }
            2 => decode_payload(rest)?,
            _ => match decode_payload(rest)? {
                Answer::Ack(a) => a,
                Answer::Conflict(_) => {
                    return Err(WireError::Malformed(
                        "a conflict answer, not an acknowledgement".into(),
                    ))
                }
            },
        };
        Ok((ack, version))
    }

    /// Whether this answer, read from a frame of wire `version`, is the hub's
    /// acknowledgement of the box's batch `seq` with HTTP body `body`, signed under the
    /// box's `key`. Only then may the box delete the batch. A version-1 answer is
    /// unsigned and never passes.
    pub fn check(
        &self,
        version: u8,
        key: &[u8],
        device: &str,
        seq: u64,
        body: &[u8],
    ) -> Result<(), AckError> {
        if version < 2 {
            return Err(AckError::Unsigned(version));
        }
        let mac = ack_mac(
            key,
            &self.device,
            self.seq,
            &self.body_sha256,
            self.duplicate,
            self.hub_unix,
        );
        if mac.verify_slice(&self.mac).is_err() {
            return Err(AckError::BadSignature);
        }
        if self.device != device || self.seq != seq {
            return Err(AckError::OtherBatch {
                device: self.device.clone(),
                seq: self.seq,
                expected: seq,
            });
        }
        if self.body_sha256 != body_digest(body) {
            return Err(AckError::OtherBody(seq));
        }
        Ok(())
    }
}

impl Answer {
    /// Reads the hub's answer in any version this side knows: versions 1 and 2 hold only
    /// an [`Ack`]. Decoding checks no signature.
    pub fn decode_versioned(bytes: &[u8]) -> Result<(Answer, u8), WireError> {
        let (version, rest) = split_frame(bytes)?;
        if version < CONFLICT_WIRE_VERSION {
            return Ack::decode_versioned(bytes).map(|(a, v)| (Answer::Ack(a), v));
        }
        Ok((decode_payload(rest)?, version))
    }
}

impl Conflict {
    /// The hub's signed conflict answer to `body` (the HTTP body it received) from
    /// `device` under `seq`, naming `next_seq`.
    pub fn signed(key: &[u8], device: &str, seq: u64, body: &[u8], next_seq: u64) -> Conflict {
        let body_sha256 = body_digest(body);
        let mac = conflict_mac(key, device, seq, &body_sha256, next_seq)
            .finalize()
            .into_bytes()
            .into();
        Conflict {
            device: device.to_owned(),
            seq,
            body_sha256,
            next_seq,
            mac,
        }
    }

    /// The frame in version [`WIRE_VERSION`] (no older version has a Conflict).
    pub fn encode(&self) -> Result<Vec<u8>, WireError> {
        encode_frame(WIRE_VERSION, &AnswerRef::Conflict(self))
    }

    /// Whether this answer, read from a frame of wire `version`, is the hub's conflict
    /// answer to the box's batch `seq` with HTTP body `body`, signed under the box's
    /// `key`; if so, the next free sequence number (always above `seq`). Only then may
    /// the box renumber its batches.
    pub fn check(
        &self,
        version: u8,
        key: &[u8],
        device: &str,
        seq: u64,
        body: &[u8],
    ) -> Result<u64, AckError> {
        if version < CONFLICT_WIRE_VERSION {
            return Err(AckError::Unsigned(version));
        }
        let mac = conflict_mac(
            key,
            &self.device,
            self.seq,
            &self.body_sha256,
            self.next_seq,
        );
        if mac.verify_slice(&self.mac).is_err() {
            return Err(AckError::BadSignature);
        }
        if self.device != device || self.seq != seq {
            return Err(AckError::OtherBatch {
                device: self.device.clone(),
                seq: self.seq,
                expected: seq,
            });
        }
        if self.body_sha256 != body_digest(body) {
            return Err(AckError::OtherBody(seq));
        }
        if self.next_seq <= seq {
            return Err(AckError::BadNextSeq {
                seq,
                next_seq: self.next_seq,
            });
        }
        Ok(self.next_seq)
    }
}

type HmacSha256 = Hmac<Sha256>;

/// HMAC-SHA256 of `body` under `key`, as lowercase hex (the signature header's value).
pub fn sign(key: &[u8], body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(body);
    hex(&mac.finalize().into_bytes())
}

/// Checks a hex signature in constant time. Malformed hex is a mismatch.
pub fn verify(key: &[u8], body: &[u8], signature_hex: &str) -> bool {
    let Some(sig) = unhex(signature_hex.trim()) else {
        return false;
    };
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

/// Reads a device key as written in configs and the hub's registry: 32 to 128 hex digits
/// (16 to 64 bytes).
pub fn parse_key(s: &str) -> Result<Vec<u8>, String> {
    let s = s.trim();
    match unhex(s) {
        Some(k) if (16..=64).contains(&k.len()) => Ok(k),
        Some(k) => Err(format!(
            "the key is {} bytes; use 16 to 64 bytes written as hex (make one with: openssl rand -hex 32)",
            k.len()
        )),
        None => Err(
            "the key is not hex; write it as hex digits (make one with: openssl rand -hex 32)"
                .into(),
        ),
    }
}

#[cfg(test)]
mod tests;
