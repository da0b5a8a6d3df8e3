//! The ALSA capture backend (feature `alsa`): interleaved signed 16-bit frames by
//! `snd_pcm_readi`, blocking, one period per read.
//!
//! Xruns (`EPIPE`) and suspends (`ESTRPIPE`) are recovered with `snd_pcm_recover` and
//! reported as [`SourceError::Xrun`]; a vanished device (`ENODEV`, `EBADFD`, `EIO`) ends
//! the stream with [`SourceError::Unplugged`] so that the caller closes the call and
//! reopens the device with backoff.

use alsa::pcm::{Access, Format, HwParams, PCM};
use alsa::{Direction, ValueOr};

use super::{AudioSource, SourceError, StreamFormat};

#[derive(Debug, Clone)]
pub struct AlsaSettings {
    /// ALSA device name: `default`, `plughw:1,0`, or a PCM from an asoundrc.
    pub device: String,
    pub rate: u32,
    pub channels: u16,
    pub period_frames: usize,
    pub buffer_frames: usize,
}

pub struct AlsaSource {
    settings: AlsaSettings,
    pcm: Option<PCM>,
}

impl AlsaSource {
    pub fn new(settings: AlsaSettings) -> AlsaSource {
        AlsaSource {
            settings,
            pcm: None,
        }
    }

    fn open_error(&self, e: alsa::Error) -> SourceError {
        let dev = self.settings.device.clone();
        match e.errno() {
            libc::ENOENT | libc::ENODEV | libc::ENXIO => SourceError::Missing(dev),
            libc::EBUSY | libc::EAGAIN => SourceError::Busy(dev),
            _ => SourceError::Other(format!("alsa {dev}"), e.to_string()),
        }
    }

    fn configure(&self, pcm: &PCM) -> Result<StreamFormat, SourceError> {
        let s = &self.settings;
        let fmt_err = |what: String, e: alsa::Error| SourceError::Format {
            device: s.device.clone(),
            what,
            hint: format!("{e}; a plughw: device converts rate and channels"),
        };
        let hwp = HwParams::any(pcm).map_err(|e| self.open_error(e))?;
        hwp.set_access(Access::RWInterleaved)
            .map_err(|e| fmt_err("interleaved access".into(), e))?;
        hwp.set_format(Format::s16())
            .map_err(|e| fmt_err("16-bit samples".into(), e))?;
        hwp.set_channels(u32::from(s.channels))
            .map_err(|e| fmt_err(format!("{} channels", s.channels), e))?;
        hwp.set_rate(s.rate, ValueOr::Nearest)
            .map_err(|e| fmt_err(format!("{} Hz", s.rate), e))?;
        let period = hwp
            .set_period_size_near(s.period_frames as alsa::pcm::Frames, ValueOr::Nearest)
            .map_err(|e| fmt_err(format!("a period of {} frames", s.period_frames), e))?;
        hwp.set_buffer_size_near(s.buffer_frames.max(2 * period as usize) as alsa::pcm::Frames)
            .map_err(|e| fmt_err(format!("a buffer of {} frames", s.buffer_frames), e))?;
        pcm.hw_params(&hwp)
            .map_err(|e| fmt_err("these settings".into(), e))?;
        // The format is checked once here; `read` then uses the unchecked accessor, which
        // does not query (and allocate) hardware parameters on every period.
        pcm.io_i16()
            .map_err(|e| fmt_err("16-bit samples".into(), e))?;
        let cur = pcm.hw_params_current().map_err(|e| self.open_error(e))?;
        let rate = cur.get_rate().unwrap_or(s.rate);
        let period = cur.get_period_size().unwrap_or(period) as usize;
        Ok(StreamFormat {
            rate,
            channels: s.channels,
            period_frames: period,
        })
    }
}

impl AudioSource for AlsaSource {
    fn describe(&self) -> String {
        format!("alsa {}", self.settings.device)
    }

    fn start(&mut self) -> Result<StreamFormat, SourceError> {
        self.pcm = None;
        let pcm = PCM::new(&self.settings.device, Direction::Capture, false).map_err(|e| {
            // An unknown card number or PCM name fails to open with EINVAL or ENOENT.
            if e.errno() == libc::EINVAL {
                SourceError::Missing(self.settings.device.clone())
            } else {
                self.open_error(e)
            }
        })?;
        let fmt = self.configure(&pcm)?;
        pcm.prepare().map_err(|e| self.open_error(e))?;
        pcm.start().map_err(|e| self.open_error(e))?;
        self.pcm = Some(pcm);
        Ok(fmt)
    }

    fn read(&mut self, buf: &mut [i16]) -> Result<usize, SourceError> {
        let Some(pcm) = self.pcm.as_ref() else {
            return Ok(0);
        };
        let ch = self.settings.channels as usize;
        // SAFETY: `configure` set and verified S16 interleaved on this PCM.
        let io = unsafe { pcm.io_unchecked::<i16>() };
        loop {
            return match io.readi(buf) {
                Ok(frames) => Ok(frames * ch),
                Err(e) => match e.errno() {
                    libc::EINTR | libc::EAGAIN => continue,
                    libc::EPIPE | libc::ESTRPIPE => match pcm.try_recover(e, true) {
                        Ok(()) => {
                            let _ = pcm.start();
                            Err(SourceError::Xrun)
                        }
                        Err(e) => Err(SourceError::Unplugged(
                            self.settings.device.clone(),
                            e.to_string(),
                        )),
                    },
                    _ => Err(SourceError::Unplugged(
                        self.settings.device.clone(),
                        e.to_string(),
                    )),
                },
            };
        }
    }

    fn stop(&mut self) {
        if let Some(pcm) = self.pcm.take() {
            let _ = pcm.drop();
        }
    }
}
