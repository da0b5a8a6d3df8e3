//! The panel on the box's GPIO character device (feature `gpio`): linux-embedded-hal's
//! cdev pins, requested with a consumer label so `gpioinfo` shows who holds them.

use linux_embedded_hal::gpio_cdev::{Chip, LineRequestFlags};
use linux_embedded_hal::CdevPin;

use super::{Panel, PanelTiming};

/// Pin numbers (line offsets on the chip) from `[panel]` in the config.
#[derive(Debug, Clone)]
pub struct GpioPins {
    pub chip: String,
    pub led: u32,
    pub button: u32,
    pub hook: Option<u32>,
    pub hook_active_high: bool,
}

pub type GpioPanel = Panel<CdevPin, CdevPin, CdevPin>;

/// The panel's GPIO could not be opened. Each names the chip, the line and the fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GpioError {
    #[error("cannot open GPIO chip {chip} (is it the right chip? `gpiodetect` lists them; is sangdam in the gpio group?): {source}")]
    Chip {
        chip: String,
        source: linux_embedded_hal::gpio_cdev::Error,
    },
    #[error("cannot request GPIO line {offset} ({what}) on {chip}: check board/pins.md and that no other program holds it (gpioinfo): {source}")]
    Line {
        chip: String,
        offset: u32,
        what: &'static str,
        source: linux_embedded_hal::gpio_cdev::Error,
    },
}

/// Opens the chip and requests the lines. Errors name the chip, the line and the fix.
pub fn open(pins: &GpioPins, timing: PanelTiming) -> Result<GpioPanel, GpioError> {
    let mut chip = Chip::new(&pins.chip).map_err(|source| GpioError::Chip {
        chip: pins.chip.clone(),
        source,
    })?;
    let mut line = |offset: u32, flags: LineRequestFlags, what: &'static str| {
        let line_err = |source| GpioError::Line {
            chip: pins.chip.clone(),
            offset,
            what,
            source,
        };
        let handle = chip
            .get_line(offset)
            .and_then(|l| l.request(flags, 0, "sangdam"))
            .map_err(line_err)?;
        CdevPin::new(handle).map_err(line_err)
    };
    let led = line(pins.led, LineRequestFlags::OUTPUT, "status LED")?;
    let button = line(pins.button, LineRequestFlags::INPUT, "button")?;
    let hook = match pins.hook {
        Some(h) => Some(line(h, LineRequestFlags::INPUT, "off-hook line")?),
        None => None,
    };
    Ok(Panel::new(led, button, hook, pins.hook_active_high, timing))
}
