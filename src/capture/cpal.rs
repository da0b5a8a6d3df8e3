//! The cpal capture backend (feature `cpal`), the second backend: for boards where ALSA
//! is reached through another host API, or for a laptop demo. cpal calls back on its own
//! thread; the callback copies into a fixed-capacity ring owned by this source (no
//! allocation, no lock) and [`AudioSource::read`] hands out periods from it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use heapless::spsc::{Consumer, Queue};

use super::{AudioSource, SourceError, StreamFormat, RING_SAMPLES};

#[derive(Debug, Clone)]
pub struct CpalSettings {
    /// Device name as cpal lists it, or its ALSA PCM name; "default" takes the host's
    /// default input.
    pub device: String,
    pub rate: u32,
    pub channels: u16,
    pub period_frames: usize,
}

struct Live {
    _stream: cpal::Stream,
    consumer: Consumer<'static, i16>,
    failed: Arc<AtomicBool>,
}

pub struct CpalSource {
    settings: CpalSettings,
    live: Option<Live>,
    /// Samples the callback could not queue (read side too slow).
    pub callback_overruns: Arc<AtomicU64>,
}

// SAFETY: the stream handle is only created, used and dropped by the capture thread that
// owns this source; cpal's ALSA host is thread-safe for that.
unsafe impl Send for CpalSource {}

impl CpalSource {
    pub fn new(settings: CpalSettings) -> CpalSource {
        CpalSource {
            settings,
            live: None,
            callback_overruns: Arc::default(),
        }
    }

    fn device(&self) -> Result<cpal::Device, SourceError> {
        let host = cpal::default_host();
        let name = &self.settings.device;
        if name == "default" {
            return host
                .default_input_device()
                .ok_or_else(|| SourceError::Missing("cpal default input".into()));
        }
        let devices = host
            .input_devices()
            .map_err(|e| SourceError::Other(format!("cpal {name}"), e.to_string()))?;
        for d in devices {
            // By its description, or by the ALSA PCM name (what asound.conf calls it).
            if d.description()
                .is_ok_and(|desc| desc.name() == name || desc.driver() == Some(name.as_str()))
            {
                return Ok(d);
            }
        }
        Err(SourceError::Missing(format!("cpal {name}")))
    }
}

impl AudioSource for CpalSource {
    fn describe(&self) -> String {
        format!("cpal {}", self.settings.device)
    }

    fn start(&mut self) -> Result<StreamFormat, SourceError> {
        self.live = None;
        let device = self.device()?;
        let s = &self.settings;
        let config = cpal::StreamConfig {
            channels: s.channels,
            sample_rate: s.rate,
            buffer_size: cpal::BufferSize::Fixed(s.period_frames as u32),
        };
        // One ring per stream start, leaked so that the callback may hold its producer
        // for 'static; a restart after unplugging leaks 128 KiB once per restart.
        let ring: &'static mut Queue<i16, RING_SAMPLES> = Box::leak(Box::new(Queue::new()));
        let (mut producer, consumer) = ring.split();
        let failed = Arc::new(AtomicBool::new(false));
        let overruns = self.callback_overruns.clone();
        let failed_cb = failed.clone();
        let stream = device
            .build_input_stream::<i16, _, _>(
                config,
                move |data: &[i16], _| {
                    for &x in data {
                        if producer.enqueue(x).is_err() {
                            overruns.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                },
                move |_err| failed_cb.store(true, Ordering::Release),
                None,
            )
            .map_err(|e| SourceError::Format {
                device: self.describe(),
                what: format!("{} channels at {} Hz", s.channels, s.rate),
                hint: e.to_string(),
            })?;
        stream
            .play()
            .map_err(|e| SourceError::Other(self.describe(), e.to_string()))?;
        self.live = Some(Live {
            _stream: stream,
            consumer,
            failed,
        });
        Ok(StreamFormat {
            rate: s.rate,
            channels: s.channels,
            period_frames: s.period_frames,
        })
    }

    fn read(&mut self, buf: &mut [i16]) -> Result<usize, SourceError> {
        let ch = self.settings.channels as usize;
        let want = (buf.len() / ch).min(self.settings.period_frames) * ch;
        let device = self.settings.device.as_str();
        let Some(live) = self.live.as_mut() else {
            return Ok(0);
        };
        let mut n = 0;
        let mut waited = 0;
        while n < want {
            if live.failed.load(Ordering::Acquire) {
                return Err(SourceError::Unplugged(
                    format!("cpal {device}"),
                    "the stream reported an error".into(),
                ));
            }
            match live.consumer.dequeue() {
                Some(x) => {
                    buf[n] = x;
                    n += 1;
                }
                None => {
                    std::thread::sleep(Duration::from_millis(2));
                    waited += 2;
                    if waited > 2_000 {
                        return Err(SourceError::Unplugged(
                            format!("cpal {device}"),
                            "no audio for 2 s".into(),
                        ));
                    }
                }
            }
        }
        Ok(n)
    }

    fn stop(&mut self) {
        self.live = None;
    }
}
