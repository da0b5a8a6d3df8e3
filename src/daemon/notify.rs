//! systemd's readiness and watchdog protocol (`sd_notify`), without libsystemd: one
//! datagram per message to the socket named in `NOTIFY_SOCKET`. Outside systemd (no
//! variable) every call is a no-op.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

pub struct Notifier {
    socket: Option<(UnixDatagram, Target)>,
    watchdog: Option<Duration>,
}

enum Target {
    Path(std::path::PathBuf),
    #[cfg(target_os = "linux")]
    Abstract(Vec<u8>),
}

impl Notifier {
    /// Reads `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID` as systemd sets them.
    pub fn from_env() -> Notifier {
        let target = std::env::var_os("NOTIFY_SOCKET").and_then(|s| {
            let s = s.to_string_lossy().into_owned();
            if let Some(name) = s.strip_prefix('@') {
                #[cfg(target_os = "linux")]
                return Some(Target::Abstract(name.as_bytes().to_vec()));
                #[cfg(not(target_os = "linux"))]
                return None;
            }
            s.starts_with('/').then(|| Target::Path(s.into()))
        });
        let socket = target.and_then(|t| UnixDatagram::unbound().ok().map(|u| (u, t)));
        let for_us = std::env::var("WATCHDOG_PID")
            .ok()
            .and_then(|p| p.parse::<u32>().ok())
            .is_none_or(|p| p == std::process::id());
        let watchdog = std::env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|u| u.parse::<u64>().ok())
            .filter(|&u| u > 0 && for_us)
            .map(Duration::from_micros);
        Notifier { socket, watchdog }
    }

    /// Whether systemd listens.
    pub fn active(&self) -> bool {
        self.socket.is_some()
    }

    /// How often to send `WATCHDOG=1`: half the unit's `WatchdogSec`, if it has one.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog.map(|w| w / 2)
    }

    /// Sends one message ("READY=1", "WATCHDOG=1", "STATUS=...", "STOPPING=1").
    /// Failures are logged once per message, never fatal.
    pub fn notify(&self, msg: &str) {
        let Some((sock, target)) = &self.socket else {
            return;
        };
        let r = match target {
            Target::Path(p) => sock.send_to(msg.as_bytes(), p),
            #[cfg(target_os = "linux")]
            Target::Abstract(name) => {
                use std::os::linux::net::SocketAddrExt;
                std::os::unix::net::SocketAddr::from_abstract_name(name)
                    .and_then(|a| sock.send_to_addr(msg.as_bytes(), &a))
            }
        };
        if let Err(e) = r {
            tracing::warn!("sd_notify {msg:?} failed: {e}");
        }
    }
}
