//! `Host` header names, and the list a server answers to: the box's report page and the
//! hub's dashboard both refuse names they were not configured for, so that a web page on
//! some other name that resolves to them (DNS rebinding) cannot read them through a
//! browser.

use std::net::{IpAddr, Ipv6Addr};

/// The `Host` header values the server answers to. Always `localhost` and every IP
/// address literal (`127.0.0.1`, `[::1]`, the box's LAN address: a rebinding page is on
/// a name, never on an address), plus the configured names; `"*"` turns the check off.
/// Names are compared without case, a trailing dot or the port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHosts {
    names: Vec<String>,
    any: bool,
}

impl Default for AllowedHosts {
    fn default() -> Self {
        AllowedHosts::new(&[])
    }
}

impl AllowedHosts {
    /// `localhost` and IP addresses plus `names` (entries that are not a host name, an
    /// address or `"*"` are left out; the config's validation names them).
    pub fn new(names: &[String]) -> AllowedHosts {
        let mut list = vec!["localhost".to_owned()];
        list.extend(names.iter().filter_map(|n| match host_name(n) {
            Some(HostName::Name(n)) => Some(n),
            _ => None,
        }));
        AllowedHosts {
            names: list,
            any: names.iter().any(|n| n.trim() == "*"),
        }
    }

    /// Whether a request with this `Host` header value is answered.
    pub fn allows(&self, host: &str) -> bool {
        match host_name(host) {
            _ if self.any => true,
            Some(HostName::Ip(_)) => true,
            Some(HostName::Name(n)) => self.names.contains(&n),
            None => false,
        }
    }
}

/// A `Host` value without its port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostName {
    Ip(IpAddr),
    /// Lower case, without a trailing dot.
    Name(String),
}

/// Parses a `Host` header value or an `insights.allowed_hosts` entry: `name`,
/// `name:port`, `1.2.3.4[:port]` or `[v6][:port]`. `None` for anything else.
pub fn host_name(value: &str) -> Option<HostName> {
    let v = value.trim();
    let port_ok = |p: &str| p.is_empty() || (p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    if let Some(rest) = v.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        let port = match after {
            "" => "",
            _ => after.strip_prefix(':')?,
        };
        if !port_ok(port) {
            return None;
        }
        return inside
            .parse::<Ipv6Addr>()
            .ok()
            .map(|a| HostName::Ip(IpAddr::V6(a)));
    }
    let (host, port) = v.split_once(':').unwrap_or((v, ""));
    if !port_ok(port) {
        return None;
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Some(HostName::Ip(ip));
    }
    let name = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    (name.len() <= 253 && name.split('.').all(label_ok)).then_some(HostName::Name(name))
}
