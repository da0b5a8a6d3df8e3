//! The desk panel: a status LED, a button, and optionally the phone's off-hook line, on
//! GPIO. Generic over embedded-hal 1.0 pins, so it runs on linux-embedded-hal's cdev
//! pins on the box ([`crate::panel::gpio`], feature `gpio`), on files for a host demo
//! ([`FilePins`]), and on embedded-hal-mock in the tests.
//!
//! Call [`Panel::tick`] every 10 ms or so with a monotonic millisecond clock; it drives the
//! LED pattern of the current [`LedState`] and returns button events.
//!
//! | state       | LED                                  |
//! |-------------|--------------------------------------|
//! | idle        | a 100 ms blink every 2 s (alive)     |
//! | in call     | on                                   |
//! | backlog     | 500 ms on, 500 ms off                |
//! | syncing     | two short blinks a second            |
//! | muted       | 1.5 s on, 0.5 s off                  |
//! | error       | 100 ms on, 100 ms off                |
//!
//! The button is debounced (its level must hold for `debounce_ms`): a press shorter than
//! `long_press_ms` marks the call for review, a longer one toggles the privacy mute
//! (reported once, while still held, so the LED answers at once).

pub mod config;
#[cfg(feature = "gpio")]
pub mod gpio;

use std::path::{Path, PathBuf};

use embedded_hal::digital::{ErrorType, InputPin, OutputPin};
use serde::{Deserialize, Serialize};

pub use config::{PanelBackend, PanelConfig};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LedState {
    Idle,
    InCall,
    Backlog,
    Syncing,
    Muted,
    Error,
}

impl LedState {
    /// (on ms, off ms) pairs of one cycle.
    fn pattern(self) -> &'static [(u32, u32)] {
        match self {
            LedState::Idle => &[(100, 1900)],
            LedState::InCall => &[(1000, 0)],
            LedState::Backlog => &[(500, 500)],
            LedState::Syncing => &[(100, 100), (100, 700)],
            LedState::Muted => &[(1500, 500)],
            LedState::Error => &[(100, 100)],
        }
    }

    /// Whether the LED is on `ms` into the pattern.
    pub fn led_on(self, ms: u64) -> bool {
        let p = self.pattern();
        let cycle: u64 = p.iter().map(|(a, b)| u64::from(a + b)).sum();
        let mut t = ms % cycle.max(1);
        for &(on, off) in p {
            if t < u64::from(on) {
                return true;
            }
            t -= u64::from(on);
            if t < u64::from(off) {
                return false;
            }
            t -= u64::from(off);
        }
        false
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PanelEvent {
    /// Short press: mark the current or last call for review.
    MarkForReview,
    /// Long press: mute or unmute recording.
    ToggleMute,
    /// The off-hook line changed (debounced).
    Hook(bool),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PanelTiming {
    pub debounce_ms: u32,
    pub long_press_ms: u32,
}

impl Default for PanelTiming {
    fn default() -> Self {
        PanelTiming {
            debounce_ms: 30,
            long_press_ms: 2_000,
        }
    }
}

/// A debounced input level.
#[derive(Debug)]
struct Debounced {
    stable: bool,
    candidate: bool,
    since: u64,
}

impl Debounced {
    fn new(level: bool) -> Self {
        Debounced {
            stable: level,
            candidate: level,
            since: 0,
        }
    }

    /// Feeds a raw level; returns the new stable level when it changed.
    fn feed(&mut self, raw: bool, now: u64, debounce: u32) -> Option<bool> {
        if raw != self.candidate {
            self.candidate = raw;
            self.since = now;
        }
        if self.candidate != self.stable && now.saturating_sub(self.since) >= u64::from(debounce) {
            self.stable = self.candidate;
            return Some(self.stable);
        }
        None
    }
}

/// The panel. `L` is the LED, `B` the button (pressed = low, with a pull-up), `H` the
/// off-hook line (off hook = low by default; `hook_active_high` flips it).
pub struct Panel<L, B, H> {
    led: L,
    button: B,
    hook: Option<H>,
    hook_active_high: bool,
    timing: PanelTiming,
    state: LedState,
    state_since: u64,
    led_is_on: Option<bool>,
    btn: Debounced,
    pressed_at: Option<u64>,
    long_reported: bool,
    hook_level: Option<Debounced>,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PanelError<E: std::fmt::Debug> {
    #[error("GPIO error: {0:?} (check the pin map in board/pins.md and that sangdam is in the gpio group)")]
    Pin(E),
}

impl<L, B, H, E> Panel<L, B, H>
where
    L: OutputPin + ErrorType<Error = E>,
    B: InputPin + ErrorType<Error = E>,
    H: InputPin + ErrorType<Error = E>,
    E: std::fmt::Debug,
{
    pub fn new(
        led: L,
        button: B,
        hook: Option<H>,
        hook_active_high: bool,
        timing: PanelTiming,
    ) -> Self {
        Panel {
            led,
            button,
            hook,
            hook_active_high,
            timing,
            state: LedState::Idle,
            state_since: 0,
            led_is_on: None,
            btn: Debounced::new(false),
            pressed_at: None,
            long_reported: false,
            hook_level: None,
        }
    }

    pub fn state(&self) -> LedState {
        self.state
    }

    /// Changes the LED pattern; the pattern restarts so a change is seen at once.
    pub fn set_state(&mut self, state: LedState, now: u64) {
        if state != self.state {
            self.state = state;
            self.state_since = now;
        }
    }

    /// Updates the LED and reads the inputs. Writes the LED only when it changes.
    pub fn tick(&mut self, now: u64) -> Result<Option<PanelEvent>, PanelError<E>> {
        let on = self.state.led_on(now.saturating_sub(self.state_since));
        if self.led_is_on != Some(on) {
            if on {
                self.led.set_high().map_err(PanelError::Pin)?;
            } else {
                self.led.set_low().map_err(PanelError::Pin)?;
            }
            self.led_is_on = Some(on);
        }
        if let Some(h) = self.hook.as_mut() {
            let raw = h.is_high().map_err(PanelError::Pin)? == self.hook_active_high;
            let deb = self.hook_level.get_or_insert_with(|| Debounced::new(false));
            if let Some(level) = deb.feed(raw, now, self.timing.debounce_ms) {
                return Ok(Some(PanelEvent::Hook(level)));
            }
        }
        let raw_pressed = self.button.is_low().map_err(PanelError::Pin)?;
        match self.btn.feed(raw_pressed, now, self.timing.debounce_ms) {
            Some(true) => {
                self.pressed_at = Some(now);
                self.long_reported = false;
            }
            Some(false) => {
                let was_long = self.long_reported;
                self.pressed_at = None;
                self.long_reported = false;
                if !was_long {
                    return Ok(Some(PanelEvent::MarkForReview));
                }
            }
            None => {
                if let Some(at) = self.pressed_at {
                    if !self.long_reported
                        && now.saturating_sub(at) >= u64::from(self.timing.long_press_ms)
                    {
                        self.long_reported = true;
                        return Ok(Some(PanelEvent::ToggleMute));
                    }
                }
            }
        }
        Ok(None)
    }

    /// Turns the LED off (shutdown).
    pub fn off(&mut self) -> Result<(), PanelError<E>> {
        self.led_is_on = Some(false);
        self.led.set_low().map_err(PanelError::Pin)
    }

    /// Gives the pins back (for the mocks' `done()` in tests).
    pub fn release(self) -> (L, B, Option<H>) {
        (self.led, self.button, self.hook)
    }
}

/// Host stand-in pins on files, for demos and tests without GPIO: the LED's level is
/// written to `DIR/led` ("1"/"0"); the button is pressed while `DIR/button` holds "1";
/// the phone is off the hook while `DIR/hook` holds "1" (a missing file reads "0").
#[derive(Debug, Clone)]
pub struct FilePin {
    path: PathBuf,
}

impl FilePin {
    pub fn new(dir: &Path, name: &str) -> FilePin {
        FilePin {
            path: dir.join(name),
        }
    }

    fn level(&self) -> bool {
        std::fs::read_to_string(&self.path).is_ok_and(|s| s.trim() == "1")
    }
}

impl ErrorType for FilePin {
    type Error = std::convert::Infallible;
}

impl OutputPin for FilePin {
    fn set_low(&mut self) -> Result<(), Self::Error> {
        let _ = std::fs::write(&self.path, "0\n");
        Ok(())
    }
    fn set_high(&mut self) -> Result<(), Self::Error> {
        let _ = std::fs::write(&self.path, "1\n");
        Ok(())
    }
}

impl InputPin for FilePin {
    /// The button file says "1" when pressed; the pin reads low then (active low).
    fn is_high(&mut self) -> Result<bool, Self::Error> {
        Ok(!self.level())
    }
    fn is_low(&mut self) -> Result<bool, Self::Error> {
        Ok(self.level())
    }
}

/// The three file pins of a host panel in `dir`. The hook pin reads like the GPIO line
/// (low = off hook), so the same `hook_active_high = false` applies.
pub fn file_pins(dir: &Path) -> (FilePin, FilePin, FilePin) {
    let _ = std::fs::create_dir_all(dir);
    (
        FilePin::new(dir, "led"),
        FilePin::new(dir, "button"),
        FilePin::new(dir, "hook"),
    )
}

/// A pin error of a panel, its pin type erased: what [`PanelDriver::tick`] returns.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PanelFault(String);

/// A panel, whatever its pins are: what the daemon drives (GPIO on the box, files on a
/// host, or anything a test hands it).
pub trait PanelDriver {
    /// [`Panel::tick`].
    fn tick(&mut self, now_ms: u64) -> Result<Option<PanelEvent>, PanelFault>;
    /// [`Panel::set_state`].
    fn set_state(&mut self, state: LedState, now_ms: u64);
    /// The LED off, at shutdown; a pin error is ignored there.
    fn off(&mut self);
}

impl<L, B, H, E> PanelDriver for Panel<L, B, H>
where
    L: OutputPin + ErrorType<Error = E>,
    B: InputPin + ErrorType<Error = E>,
    H: InputPin + ErrorType<Error = E>,
    E: std::fmt::Debug,
{
    fn tick(&mut self, now_ms: u64) -> Result<Option<PanelEvent>, PanelFault> {
        Panel::tick(self, now_ms).map_err(|e| PanelFault(e.to_string()))
    }
    fn set_state(&mut self, state: LedState, now_ms: u64) {
        Panel::set_state(self, state, now_ms)
    }
    fn off(&mut self) {
        let _ = Panel::off(self);
    }
}

#[cfg(test)]
mod tests;
