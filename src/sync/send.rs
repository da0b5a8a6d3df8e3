//! Step 3 of sync: the outbox sent oldest first, each batch kept until the hub's signed
//! Ack for it; pacing under `sync.max_kbps`, backoff with jitter, the hub's clock.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sangdam_wire as wire;

use super::outbox::current_version;
use super::{RunReport, SyncError, Syncer, MAX_RENUMBERS_PER_RUN};
use crate::clock::Clock;

/// How far the hub's clock in a signed Ack may be from the box's own (seconds) to be
/// taken as a good time.
pub const HUB_CLOCK_WINDOW_S: u64 = 86_400;

/// `hub_unix` when it lies within [`HUB_CLOCK_WINDOW_S`] of the box's clock `now`, else
/// None. The box never builds a period while its clock is behind its last good time, so
/// one far-future time taken from an answer would stop it building for good; a hub time
/// outside the window is logged and ignored (the batch is still acknowledged: the
/// signature says the hub has it). A box whose clock is far off (no NTP yet) therefore
/// gets no time from the hub, and builds nothing until its clock is set (`sangdam
/// status` shows the clock).
pub fn plausible_hub_time(hub_unix: u64, now: u64) -> Option<u64> {
    (hub_unix.abs_diff(now) <= HUB_CLOCK_WINDOW_S).then_some(hub_unix)
}

/// How long to wait after sending `bytes` in `elapsed` to stay under `bytes_per_s`.
pub fn pace_delay(bytes: u64, elapsed: Duration, bytes_per_s: u64) -> Duration {
    let due = Duration::from_secs_f64(bytes as f64 / bytes_per_s.max(1) as f64);
    due.saturating_sub(elapsed)
}

/// The wait before attempt `attempt` (0-based): 1 s doubling, times a jitter in
/// [0.5, 1.5) from `unit` in [0, 1).
pub fn backoff(attempt: u32, unit: f64) -> Duration {
    let base = 1u64 << attempt.min(8);
    Duration::from_secs_f64(base as f64 * (0.5 + unit))
}

impl Syncer {
    fn unit(&self) -> f64 {
        let mut x = self.rng.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng.set(x);
        (x >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Sends the outbox, oldest first, until it is empty, a batch fails after its
    /// retries, or `stop` is set. A batch whose sequence number the hub holds with
    /// another batch (a box whose store was rebuilt, or re-imaged with the same key,
    /// numbers from 1 again) is answered with a signed conflict naming the hub's next
    /// free number: the outbox is renumbered from there ([`Syncer::renumber`]) and sent
    /// again; nothing is dropped. An unsigned or forged conflict answer is a failed send
    /// that changes nothing.
    pub fn send(&self, now: &dyn Clock, stop: &AtomicBool) -> Result<RunReport, SyncError> {
        let mut report = RunReport::default();
        let url = format!(
            "{}{}",
            self.cfg.hub_url.trim_end_matches('/'),
            wire::BATCH_PATH
        );
        let bytes_per_s = u64::from(self.cfg.max_kbps) * 1000 / 8;
        let started = Instant::now();
        let mut renumbers = 0;
        loop {
            // Set when the hub's signed conflict answer renumbered the outbox: send it again.
            let mut again = false;
            'batches: for (seq, frame) in self.store.outbox()? {
                let frame = current_version(frame);
                let signature = wire::sign(&self.key, &frame);
                let mut attempt = 0;
                loop {
                    if stop.load(Ordering::Acquire) {
                        break 'batches;
                    }
                    let result = self
                        .agent
                        .post(&url)
                        .header(wire::DEVICE_HEADER, &self.cfg.device_id)
                        .header(wire::SIGNATURE_HEADER, &signature)
                        .header("Content-Type", "application/octet-stream")
                        .send(&frame[..]);
                    report.bytes += frame.len() as u64;
                    let failure = match result {
                        Ok(mut resp) => {
                            let status = resp.status().as_u16();
                            let body = resp
                                .body_mut()
                                .with_config()
                                .limit(64 * 1024)
                                .read_to_vec()
                                .unwrap_or_default();
                            match status {
                                200 | 409 => match wire::Answer::decode_versioned(&body) {
                                    Ok((wire::Answer::Conflict(c), version)) => {
                                        match c.check(
                                            version,
                                            &self.key,
                                            &self.cfg.device_id,
                                            seq,
                                            &frame,
                                        ) {
                                            Ok(next) if renumbers < MAX_RENUMBERS_PER_RUN => {
                                                let n = self.renumber(next)?;
                                                renumbers += 1;
                                                report.renumbered += n;
                                                tracing::warn!(
                                                "sync: the hub holds batch {seq} of {} with another batch (was this box's store rebuilt, or the box re-imaged?): renumbered the {n} waiting batch(es) from {next} and sending again",
                                                self.cfg.device_id
                                            );
                                                again = true;
                                                break 'batches;
                                            }
                                            Ok(_) => {
                                                report.error = Some(format!(
                                                "batch {seq}: the hub answered {renumbers} times in one run that this box's sequence numbers are taken by other batches: is another box sending as sync.device_id = {:?}? The batches are kept",
                                                self.cfg.device_id
                                            ));
                                                break 'batches;
                                            }
                                            Err(e) => {
                                                // A forged conflict answer changes nothing.
                                                report.error = Some(format!(
                                                    "batch {seq}: conflict answer: {e}"
                                                ));
                                                break 'batches;
                                            }
                                        }
                                    }
                                    Ok((wire::Answer::Ack(ack), version)) => match ack.check(
                                        version,
                                        &self.key,
                                        &self.cfg.device_id,
                                        seq,
                                        &frame,
                                    ) {
                                        Ok(()) => {
                                            let mut state = self.state()?;
                                            let now = now.now_unix();
                                            state.delivered += 1;
                                            state.last_sync_unix = Some(now);
                                            if let Some(t) = plausible_hub_time(ack.hub_unix, now) {
                                                state.last_good_unix = state.last_good_unix.max(t);
                                            } else {
                                                tracing::warn!(
                                                "sync: the hub's clock ({}) is more than a day from this box's ({}): not taken as a good time; check the clocks",
                                                crate::store::format_unix(ack.hub_unix),
                                                crate::store::format_unix(now)
                                            );
                                            }
                                            state.last_error = None;
                                            self.store.outbox_update(&[seq], &[], &state)?;
                                            report.delivered += 1;
                                            report.duplicates += usize::from(ack.duplicate);
                                            let wait = pace_delay(
                                                report.bytes,
                                                started.elapsed(),
                                                bytes_per_s,
                                            );
                                            if !wait.is_zero() {
                                                std::thread::sleep(wait);
                                            }
                                            continue 'batches;
                                        }
                                        Err(e) => {
                                            // Not a hiccup to retry: whoever answered will answer
                                            // the same way again.
                                            report.error = Some(format!("batch {seq}: {e}"));
                                            break 'batches;
                                        }
                                    },
                                    Err(e) => {
                                        report.error = Some(format!(
                                        "batch {seq}: HTTP {status} without a valid signed acknowledgement ({e}): hub answer not signed with this box's key: check sync.hub_url points at the hub; the batch is kept"
                                    ));
                                        break 'batches;
                                    }
                                },
                                401 | 403 => {
                                    report.error = Some(format!(
                                    "the hub refused this box (HTTP {status}: {}): check sync.device_id and sync.key against the hub's registry (sangdam-hub add-device)",
                                    String::from_utf8_lossy(&body).trim()
                                ));
                                    break 'batches;
                                }
                                400..=499 => {
                                    report.error = Some(format!(
                                    "the hub refused batch {seq} (HTTP {status}: {}): update the hub or the box so both speak the same version; the batch is kept",
                                    String::from_utf8_lossy(&body).trim()
                                ));
                                    break 'batches;
                                }
                                _ => format!("HTTP {status} from the hub"),
                            }
                        }
                        Err(e) => format!("cannot reach the hub at {}: {e}", self.cfg.hub_url),
                    };
                    attempt += 1;
                    if attempt >= self.cfg.retries.max(1) {
                        report.error = Some(format!(
                        "{failure} (after {attempt} attempts; batches are kept for the next run)"
                    ));
                        break 'batches;
                    }
                    let wait = backoff(attempt - 1, self.unit());
                    tracing::warn!(
                        "sync: batch {seq}: {failure}; retrying in {:.1} s",
                        wait.as_secs_f64()
                    );
                    let until = Instant::now() + wait;
                    while Instant::now() < until && !stop.load(Ordering::Acquire) {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
            }
            if !again {
                break;
            }
        }
        report.remaining = self.store.outbox_len();
        if let Some(e) = &report.error {
            let mut state = self.state()?;
            state.last_error = Some(e.clone());
            self.store.outbox_update(&[], &[], &state)?;
        }
        Ok(report)
    }
}
