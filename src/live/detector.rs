//! Call detection, IO-free: 20 ms frames of interleaved `i16` in, call start and end
//! events out.
//!
//! With an off-hook line ([`CallDetector::set_hook`]) the line decides: a call is the time
//! the handset is off the hook. Without one, a call starts when either side talks for
//! `start_ms` and ends after `silence_timeout_s` without talk; the frames before the
//! start (`preroll_ms`) belong to the call, and of the silence at the end only
//! `tail_ms` is kept.

pub use crate::record::EndReason;

pub use super::config::DetectorConfig;

/// What the caller does with the frame it just pushed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Not in a call: keep the frame as pre-roll.
    Idle,
    /// A call starts with this frame: write the pre-roll, then the frame.
    Start,
    /// In a call: write the frame.
    Record,
    /// In a call, in a silence that may end it: hold the frame back; written if talk
    /// resumes ([`Action::Resume`]), dropped past `tail_ms` when the call ends.
    Hold,
    /// Talk resumed after held silence: write the held frames, then this one.
    Resume,
    /// The call ended before this frame; the frame is idle audio. `keep_held` of the held
    /// frames belong to the call.
    End { reason: EndReason, keep_held: usize },
}

/// The state machine. Frames must be whole 20 ms frames of the stream's format.
#[derive(Debug)]
pub struct CallDetector {
    cfg: DetectorConfig,
    channels: usize,
    frame_ms: u32,
    hook_line: bool,
    off_hook: bool,
    in_call: bool,
    /// Consecutive talk frames (voice mode, idle).
    talk_run: u32,
    /// Frames since the last talk frame in a call.
    quiet_run: u32,
    /// Frames held back since the last talk.
    held: usize,
    call_frames: u64,
    /// Frames from the start of the call to its last talk frame.
    talk_span: u64,
    /// `talk_span` of the call that ended last.
    ended_span: u64,
    frames: u64,
}

impl CallDetector {
    /// `hook_line`: a GPIO off-hook line decides when calls start and end.
    pub fn new(cfg: DetectorConfig, channels: u16, hook_line: bool) -> CallDetector {
        CallDetector {
            cfg,
            channels: channels.max(1) as usize,
            frame_ms: 20,
            hook_line,
            off_hook: false,
            in_call: false,
            talk_run: 0,
            quiet_run: 0,
            held: 0,
            call_frames: 0,
            talk_span: 0,
            ended_span: 0,
            frames: 0,
        }
    }

    pub fn in_call(&self) -> bool {
        self.in_call
    }

    /// Frames of pre-roll the caller should keep.
    pub fn preroll_frames(&self) -> usize {
        (self.cfg.preroll_ms / self.frame_ms) as usize
    }

    /// Frames held back right now.
    pub fn held(&self) -> usize {
        self.held
    }

    /// The off-hook line's (debounced) state. Takes effect on the next frame.
    pub fn set_hook(&mut self, off_hook: bool) {
        self.off_hook = off_hook;
    }

    /// Ends a call in progress for an outside reason; returns the action the caller takes
    /// (`End`, keeping `tail_ms` of held silence) or `None` when idle.
    pub fn force_end(&mut self, reason: EndReason) -> Option<Action> {
        if !self.in_call {
            return None;
        }
        let keep = self.keep_held();
        self.reset_call();
        Some(Action::End {
            reason,
            keep_held: keep,
        })
    }

    fn keep_held(&self) -> usize {
        self.held.min((self.cfg.tail_ms / self.frame_ms) as usize)
    }

    fn reset_call(&mut self) {
        self.ended_span = if self.hook_line {
            self.call_frames
        } else {
            self.talk_span
        };
        self.talk_span = 0;
        self.in_call = false;
        self.talk_run = 0;
        self.quiet_run = 0;
        self.held = 0;
        self.call_frames = 0;
    }

    /// Length of the call so far, in frames (held frames included).
    pub fn call_frames(&self) -> u64 {
        self.call_frames
    }

    /// Whether the call that ended last was long enough to keep: from its start to its
    /// last talk (voice mode), or off the hook (line mode), at least `min_call_s`.
    pub fn long_enough(&self) -> bool {
        self.ended_span as f32 * self.frame_ms as f32 / 1000.0 >= self.cfg.min_call_s
    }

    /// Loudness of the loudest channel of an interleaved frame, dBFS.
    pub fn level_dbfs(&self, frame: &[i16]) -> f32 {
        let ch = self.channels;
        let n = frame.len() / ch;
        if n == 0 {
            return -120.0;
        }
        let mut best = 0f64;
        for c in 0..ch {
            let mut sum = 0f64;
            for f in 0..n {
                let x = f64::from(frame[f * ch + c]) / 32768.0;
                sum += x * x;
            }
            best = best.max(sum / n as f64);
        }
        (10.0 * (best + 1e-12).log10()) as f32
    }

    /// Takes one 20 ms frame and says what to do with it.
    pub fn push(&mut self, frame: &[i16]) -> Action {
        self.frames += 1;
        let talk = self.level_dbfs(frame) >= self.cfg.speech_dbfs;
        let max_frames = u64::from(self.cfg.max_call_minutes) * 60_000 / u64::from(self.frame_ms);
        if self.in_call && self.call_frames >= max_frames {
            let keep = self.held;
            self.reset_call();
            // Cut: the next frame starts a new call at once if the line is still busy.
            return Action::End {
                reason: EndReason::MaxLength,
                keep_held: keep,
            };
        }
        if self.hook_line {
            return match (self.in_call, self.off_hook) {
                (false, true) => {
                    self.in_call = true;
                    self.call_frames = 1;
                    Action::Start
                }
                (true, true) => {
                    self.call_frames += 1;
                    Action::Record
                }
                (true, false) => {
                    self.reset_call();
                    Action::End {
                        reason: EndReason::OnHook,
                        keep_held: 0,
                    }
                }
                (false, false) => Action::Idle,
            };
        }
        if !self.in_call {
            self.talk_run = if talk { self.talk_run + 1 } else { 0 };
            if self.talk_run * self.frame_ms >= self.cfg.start_ms {
                self.in_call = true;
                // The talk that started it counts towards its length.
                self.call_frames = u64::from(self.talk_run);
                self.talk_span = self.call_frames;
                self.quiet_run = 0;
                self.held = 0;
                return Action::Start;
            }
            return Action::Idle;
        }
        self.call_frames += 1;
        if talk {
            self.talk_span = self.call_frames;
            self.quiet_run = 0;
            if self.held > 0 {
                self.held = 0;
                return Action::Resume;
            }
            return Action::Record;
        }
        self.quiet_run += 1;
        if self.quiet_run as f32 * self.frame_ms as f32 >= self.cfg.silence_timeout_s * 1000.0 {
            let keep = self.keep_held();
            // The frames held (the whole silence) minus the tail were never part of it.
            self.call_frames -= (self.held - keep) as u64 + 1;
            self.reset_call();
            return Action::End {
                reason: EndReason::Silence,
                keep_held: keep,
            };
        }
        self.held += 1;
        Action::Hold
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(level: i16, ch: usize) -> Vec<i16> {
        (0..320 * ch)
            .map(|i| if i % 2 == 0 { level } else { -level })
            .collect()
    }

    fn run(d: &mut CallDetector, f: &[i16], n: usize) -> Vec<Action> {
        (0..n).map(|_| d.push(f)).collect()
    }

    #[test]
    fn voice_starts_and_silence_ends_a_call() {
        let cfg = DetectorConfig {
            silence_timeout_s: 1.0,
            tail_ms: 200,
            ..Default::default()
        };
        let mut d = CallDetector::new(cfg, 1, false);
        let quiet = frame(10, 1); // about -70 dBFS
        let loud = frame(3000, 1); // about -21 dBFS
        assert!(run(&mut d, &quiet, 50).iter().all(|a| *a == Action::Idle));
        // 300 ms of talk: the 15th frame starts the call.
        let a = run(&mut d, &loud, 15);
        assert!(a[..14].iter().all(|a| *a == Action::Idle), "{a:?}");
        assert_eq!(a[14], Action::Start);
        assert!(d.in_call());
        assert_eq!(d.push(&loud), Action::Record);
        // A pause shorter than the timeout is held, then resumed.
        assert!(run(&mut d, &quiet, 10).iter().all(|a| *a == Action::Hold));
        assert_eq!(d.held(), 10);
        assert_eq!(d.push(&loud), Action::Resume);
        assert_eq!(d.held(), 0);
        // A full second of silence ends it, keeping 200 ms of the tail.
        let a = run(&mut d, &quiet, 50);
        assert!(a[..49].iter().all(|a| *a == Action::Hold));
        assert_eq!(
            a[49],
            Action::End {
                reason: EndReason::Silence,
                keep_held: 10
            }
        );
        assert!(!d.in_call());
        assert_eq!(d.push(&quiet), Action::Idle);
    }

    #[test]
    fn a_stereo_call_counts_either_side() {
        let mut d = CallDetector::new(DetectorConfig::default(), 2, false);
        // Only the customer (right channel) talks.
        let f: Vec<i16> = (0..640)
            .map(|i| {
                if i % 2 == 1 {
                    3000 * if i % 4 == 1 { 1 } else { -1 }
                } else {
                    0
                }
            })
            .collect();
        let a = run(&mut d, &f, 15);
        assert_eq!(a[14], Action::Start);
        assert!(d.level_dbfs(&f) > -25.0);
    }

    #[test]
    fn the_hook_line_decides_when_there_is_one() {
        let mut d = CallDetector::new(DetectorConfig::default(), 1, true);
        let loud = frame(3000, 1);
        let quiet = frame(0, 1);
        // Talk on the line while on the hook is not a call (a colleague at the desk).
        assert!(run(&mut d, &loud, 100).iter().all(|a| *a == Action::Idle));
        d.set_hook(true);
        assert_eq!(d.push(&quiet), Action::Start);
        // Minutes of silence do not end a call while off the hook.
        assert!(run(&mut d, &quiet, 1000)
            .iter()
            .all(|a| *a == Action::Record));
        d.set_hook(false);
        assert_eq!(
            d.push(&quiet),
            Action::End {
                reason: EndReason::OnHook,
                keep_held: 0
            }
        );
        assert_eq!(d.force_end(EndReason::Shutdown), None);
    }

    #[test]
    fn long_calls_are_cut_and_forced_ends_keep_the_call() {
        let cfg = DetectorConfig {
            max_call_minutes: 1,
            ..Default::default()
        };
        let mut d = CallDetector::new(cfg, 1, true);
        d.set_hook(true);
        let f = frame(100, 1);
        assert_eq!(d.push(&f), Action::Start);
        let a = run(&mut d, &f, 3000);
        assert!(matches!(
            a[2999],
            Action::End {
                reason: EndReason::MaxLength,
                ..
            }
        ));
        assert_eq!(d.push(&f), Action::Start);
        assert!(matches!(
            d.force_end(EndReason::DeviceLost),
            Some(Action::End {
                reason: EndReason::DeviceLost,
                ..
            })
        ));
        assert!(!d.in_call());
    }

    #[test]
    fn config_checks() {
        assert!(DetectorConfig::default().validate().is_ok());
        let bad = DetectorConfig {
            speech_dbfs: 3.0,
            ..Default::default()
        };
        assert!(bad.validate().unwrap_err().message.contains("speech_dbfs"));
        let bad = DetectorConfig {
            tail_ms: 20_000,
            ..Default::default()
        };
        assert!(bad.validate().is_err());
    }
}
