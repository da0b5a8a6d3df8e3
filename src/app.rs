//! The edge of `sangdam run`: the audio source, the desk panel and the background tasks,
//! built from the config and handed to [`Daemon`]. The daemon itself builds no device,
//! so a test (or another front end) can hand it any [`AudioSource`] and
//! [`PanelDriver`].

use crate::asr::AsrEngine;
use crate::capture::{AudioSource, GeneratorSource, Segment, SegmentKind, SourceKind, WavSource};
use crate::config::Config;
use crate::daemon::{Background, Daemon, SyncTask};
use crate::live::LiveConfig;
use crate::panel::{Panel, PanelBackend, PanelConfig, PanelDriver};
use crate::pipeline::Settings;
use crate::store::Store;
use crate::sync::Syncer;

/// What the config asks of the box that it cannot be given.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppError {
    /// A `[live]` or `[panel]` choice this build or config cannot serve; the message
    /// names the setting and the fix.
    #[error("{0}")]
    Unavailable(&'static str),
    #[cfg(feature = "gpio")]
    #[error(transparent)]
    Gpio(#[from] crate::panel::gpio::GpioError),
    #[error(transparent)]
    Sync(#[from] crate::sync::SyncError),
}

type Result<T, E = AppError> = std::result::Result<T, E>;

/// The daemon of `config`, with its source, panel and sync task. A panel that cannot be
/// opened is logged and left out (the line matters more than the LED); a source or sync
/// setting that cannot work is an error.
pub fn daemon(
    config: &Config,
    store: Store,
    engine: AsrEngine,
    settings: Settings,
) -> Result<Daemon> {
    let source = source(&config.live)?;
    let panel = match panel(&config.panel) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!("panel: {e:#}; running without it");
            None
        }
    };
    let hook_line = config.panel.backend != PanelBackend::None && config.panel.hook().is_some();
    let background = background(config, &store)?;
    Ok(Daemon {
        live: config.live.clone(),
        store,
        engine,
        settings,
        data_dir: config.store.data_dir.clone(),
        source,
        panel,
        hook_line,
        background,
    })
}

/// Upstream sync on the daemon's schedule when `sync.enabled`, else nothing.
pub fn background(config: &Config, store: &Store) -> Result<Option<Box<dyn Background>>> {
    if !config.sync.enabled {
        return Ok(None);
    }
    let syncer = Syncer::new(
        &config.sync,
        &config.insights.extra_stopwords,
        store.clone(),
    )?;
    Ok(Some(Box::new(SyncTask::new(
        syncer,
        &config.store.data_dir,
    ))))
}

/// The source `[live]` asks for.
pub fn source(l: &LiveConfig) -> Result<Box<dyn AudioSource>> {
    Ok(match l.source {
        SourceKind::Wav => {
            if l.wav.as_os_str().is_empty() {
                return Err(AppError::Unavailable(
                    "live.source = \"wav\" needs live.wav, the file to replay",
                ));
            }
            Box::new(WavSource::new(&l.wav, l.wav_speed))
        }
        SourceKind::Generator => {
            let schedule = if l.generator.is_empty() {
                // A call every 20 s: 8 s of talk, then silence.
                vec![
                    Segment::new(SegmentKind::Talk, 8.0),
                    Segment::new(SegmentKind::Silence, 12.0),
                ]
            } else {
                l.generator.clone()
            };
            Box::new(
                GeneratorSource::new(l.generator_rate, l.channels, schedule)
                    .speed(l.wav_speed)
                    .repeat(!l.exit_at_end),
            )
        }
        SourceKind::Alsa => alsa_source(l)?,
        SourceKind::Cpal => cpal_source(l)?,
    })
}

#[cfg(feature = "alsa")]
fn alsa_source(l: &LiveConfig) -> Result<Box<dyn AudioSource>> {
    Ok(Box::new(crate::capture::alsa::AlsaSource::new(
        crate::capture::alsa::AlsaSettings {
            device: l.device.clone(),
            rate: l.rate,
            channels: l.channels,
            period_frames: l.period_frames,
            buffer_frames: l.buffer_frames,
        },
    )))
}

#[cfg(not(feature = "alsa"))]
fn alsa_source(_: &LiveConfig) -> Result<Box<dyn AudioSource>> {
    Err(AppError::Unavailable(
        "this sangdam was built without ALSA: build the device binary with `cargo build --release --features device`, or set live.source = \"wav\" or \"generator\" to try the daemon on this machine",
    ))
}

#[cfg(feature = "cpal")]
fn cpal_source(l: &LiveConfig) -> Result<Box<dyn AudioSource>> {
    Ok(Box::new(crate::capture::cpal::CpalSource::new(
        crate::capture::cpal::CpalSettings {
            device: l.device.clone(),
            rate: l.rate,
            channels: l.channels,
            period_frames: l.period_frames,
        },
    )))
}

#[cfg(not(feature = "cpal"))]
fn cpal_source(_: &LiveConfig) -> Result<Box<dyn AudioSource>> {
    Err(AppError::Unavailable(
        "this sangdam was built without cpal: build with `--features device` (or `--features cpal`), or use live.source = \"alsa\"",
    ))
}

/// The panel `[panel]` asks for; `None` for `backend = "none"`.
pub fn panel(p: &PanelConfig) -> Result<Option<Box<dyn PanelDriver>>> {
    match p.backend {
        PanelBackend::None => Ok(None),
        PanelBackend::File => {
            let (led, button, hook) = crate::panel::file_pins(&p.file_dir);
            let hook = p.hook().map(|_| hook);
            Ok(Some(Box::new(Panel::new(
                led,
                button,
                hook,
                p.hook_active_high,
                p.timing(),
            ))))
        }
        PanelBackend::Gpio => gpio_panel(p),
    }
}

#[cfg(feature = "gpio")]
fn gpio_panel(p: &PanelConfig) -> Result<Option<Box<dyn PanelDriver>>> {
    let pins = crate::panel::gpio::GpioPins {
        chip: p.chip.clone(),
        led: p.led_line,
        button: p.button_line,
        hook: p.hook(),
        hook_active_high: p.hook_active_high,
    };
    Ok(Some(Box::new(crate::panel::gpio::open(&pins, p.timing())?)))
}

#[cfg(not(feature = "gpio"))]
fn gpio_panel(_: &PanelConfig) -> Result<Option<Box<dyn PanelDriver>>> {
    Err(AppError::Unavailable(
        "this sangdam was built without GPIO: build the device binary with `--features device`, or set panel.backend = \"none\" or \"file\"",
    ))
}
